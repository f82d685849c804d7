/*
 * util.c: string comparison and the parsers of sizes and durations used by
 * the configuration. Pure functions: no state, no allocation.
 */
#include "core.h"
#include "util.h"

#include <ctype.h>
#include <limits.h>

void
pt_assert_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "portier: assertion \"%s\" failed at %s:%d\n", expr,
		file, line);
	abort();
}

int
pt_strncasecmp(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int d = pt_tolower((unsigned char)a[i]) -
			pt_tolower((unsigned char)b[i]);
		if (d != 0)
			return d;
	}
	return 0;
}

int
pt_str_caseeq(struct pt_str a, const char *lit, size_t litlen)
{
	return a.len == litlen && pt_strncasecmp(a.data, lit, litlen) == 0;
}

int
pt_parse_uint(const char *p, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0)
		return PT_ERROR;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned char)p[i] - '0';
		if (d > 9)
			return PT_ERROR;
		/* d > max first: max - d must not wrap around */
		if (d > max || v > (max - d) / 10)
			return PT_ERROR;
		v = v * 10 + d;
	}
	*out = v;
	return PT_OK;
}

int
pt_parse_size(const char *s, int64_t *out)
{
	size_t len = strlen(s), digits = len;
	uint64_t v, mul = 1;

	if (len == 0)
		return PT_ERROR;
	switch (s[len - 1]) {
	case 'k': case 'K': mul = 1024; digits--; break;
	case 'm': case 'M': mul = 1024 * 1024; digits--; break;
	case 'g': case 'G': mul = 1024 * 1024 * 1024; digits--; break;
	default: break;
	}
	if (pt_parse_uint(s, digits, INT64_MAX / mul, &v) != PT_OK)
		return PT_ERROR;
	*out = (int64_t)(v * mul);
	return PT_OK;
}

int
pt_parse_duration(const char *s, int64_t *out_ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		      { "h", 3600000 }, { "d", 86400000 } };
	uint64_t total = 0;
	const char *p = s;

	if (*p == '\0')
		return PT_ERROR;
	while (*p != '\0') {
		const char *num = p, *u;
		uint64_t v, mul = 0;
		size_t ulen;

		while (*p >= '0' && *p <= '9')
			p++;
		if (pt_parse_uint(num, (size_t)(p - num), INT64_MAX, &v) !=
		    PT_OK)
			return PT_ERROR;
		for (u = p; isalpha((unsigned char)*p); p++)
			;
		ulen = (size_t)(p - u);
		if (ulen == 0) {
			/* a bare number means seconds, and only alone */
			if (*p != '\0' || num != s)
				return PT_ERROR;
			mul = 1000;
		}
		for (size_t i = 0; ulen && i < PT_ARRAY_SIZE(units); i++)
			if (strlen(units[i].unit) == ulen &&
			    memcmp(units[i].unit, u, ulen) == 0)
				mul = units[i].ms;
		if (mul == 0 || v > (uint64_t)(INT64_MAX - total) / mul)
			return PT_ERROR;
		total += v * mul;
	}
	*out_ms = (int64_t)total;
	return PT_OK;
}
