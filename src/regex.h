/*
 * regex.h: PCRE2 (8-bit) patterns, compiled and JIT-compiled once at
 * configuration load; matching uses one process-wide match block, so a
 * match allocates nothing. Captures are read back through pt_regex_group()
 * until the next match.
 */
#ifndef PT_REGEX_H
#define PT_REGEX_H

#include "core.h"

struct pt_pool;

struct pt_regex {
	void *code;        /* pcre2_code * */
	const char *pattern;
	unsigned ncaptures;
};

/*
 * Compile pattern (caseless if asked) into *out, with a cleanup on pool.
 * On error returns PT_ERROR and writes the reason into err.
 */
int pt_regex_compile(struct pt_pool *pool, const char *pattern, int caseless,
		     struct pt_regex **out, char *err, size_t errlen);

/* 1 if it matches, 0 if not, PT_ERROR on a matching failure. */
int pt_regex_match(const struct pt_regex *re, const char *s, size_t len);

/* Capture n of the last match (0: whole match); empty if unset. */
struct pt_str pt_regex_group(const char *subject, unsigned n);

#endif
