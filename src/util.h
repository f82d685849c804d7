/*
 * util.h: small helpers shared by the core: string comparison, number,
 * size and duration parsing.
 */
#ifndef PT_UTIL_H
#define PT_UTIL_H

#include "core.h"

/*
 * Parse a size: an integer number of bytes with an optional suffix k, m or
 * g (powers of 1024, either case). Returns PT_OK or PT_ERROR (syntax,
 * overflow).
 */
int pt_parse_size(const char *s, int64_t *out);

/*
 * Parse a duration into milliseconds: one or more number+unit terms
 * ("1m30s"), units ms, s, m, h, d; a bare number means seconds. Returns
 * PT_OK or PT_ERROR.
 */
int pt_parse_duration(const char *s, int64_t *out_ms);

/*
 * Parse len bytes at p as an unsigned decimal (digits only, at least one)
 * of at most max. PT_OK, or PT_ERROR (syntax, above max).
 */
int pt_parse_uint(const char *p, size_t len, uint64_t max, uint64_t *out);

#endif
