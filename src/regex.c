/*
 * regex.c: PCRE2 wrapper. Patterns are JIT-compiled when the JIT is
 * available; the interpreter is the fallback. The match block is shared
 * by the whole process (single-threaded) and sized for 32 captures.
 */
#include "core.h"
#include "pool.h"
#include "regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define REGEX_MAX_CAPTURES 32

static pcre2_match_data *regex_md;

static void
regex_free(void *data)
{
	pcre2_code_free(data);
}

int
pt_regex_compile(struct pt_pool *pool, const char *pattern, int caseless,
		 struct pt_regex **out, char *err, size_t errlen)
{
	uint32_t opts = caseless ? PCRE2_CASELESS : 0;
	PCRE2_SIZE off;
	uint32_t ncap;
	int rc;
	pcre2_code *code;
	struct pt_regex *re;

	code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts,
			     &rc, &off, NULL);
	if (code == NULL) {
		PCRE2_UCHAR msg[128];
		pcre2_get_error_message(rc, msg, sizeof(msg));
		snprintf(err, errlen, "invalid regex \"%s\" at offset %zu: %s",
			 pattern, (size_t)off, (const char *)msg);
		return PT_ERROR;
	}
	if (pt_pool_cleanup_add(pool, regex_free, code) != PT_OK) {
		pcre2_code_free(code);
		snprintf(err, errlen, "out of memory");
		return PT_ERROR;
	}
	/* the JIT is an optimisation: without it, matching still works */
	(void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
	pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &ncap);
	if (ncap >= REGEX_MAX_CAPTURES) {
		snprintf(err, errlen, "regex \"%s\" has too many captures",
			 pattern);
		return PT_ERROR;
	}
	re = pt_palloc(pool, sizeof(*re));
	if (re == NULL) {
		snprintf(err, errlen, "out of memory");
		return PT_ERROR;
	}
	re->code = code;
	re->pattern = pt_pstrdup(pool, pattern);
	re->ncaptures = ncap;
	*out = re;
	return PT_OK;
}

int
pt_regex_match(const struct pt_regex *re, const char *s, size_t len)
{
	int rc;

	if (regex_md == NULL) {
		regex_md = pcre2_match_data_create(REGEX_MAX_CAPTURES, NULL);
		if (regex_md == NULL)
			return PT_ERROR;
	}
	rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, 0, 0, regex_md, NULL);
	if (rc >= 0)
		return 1;
	return rc == PCRE2_ERROR_NOMATCH ? 0 : PT_ERROR;
}

struct pt_str
pt_regex_group(const char *subject, unsigned n)
{
	struct pt_str g = { "", 0 };
	PCRE2_SIZE *ov;

	if (regex_md == NULL || n >= REGEX_MAX_CAPTURES ||
	    n >= pcre2_get_ovector_count(regex_md))
		return g;
	ov = pcre2_get_ovector_pointer(regex_md);
	if (ov[2 * n] == PCRE2_UNSET)
		return g;
	g.data = subject + ov[2 * n];
	g.len = ov[2 * n + 1] - ov[2 * n];
	return g;
}
