/*
 * core.h: what every portier file needs: return codes, the string slice,
 * the always-on invariant check and a few small helpers.
 *
 * Return codes are written once here and followed everywhere:
 *   PT_OK (0)        success; for a phase handler: this phase is done
 *   PT_ERROR (-1)    failure (errno or a log line says why)
 *   PT_AGAIN (-2)    not finished: wait for an event, then call again
 *   PT_DECLINED (-3) not mine: let the next handler try
 *   PT_DONE (-4)     finished: nothing more to do for this object
 * A phase handler may also return an HTTP status (100..599): finish the
 * request with that status.
 */
#ifndef PT_CORE_H
#define PT_CORE_H

#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define PT_OK 0
#define PT_ERROR (-1)
#define PT_AGAIN (-2)
#define PT_DECLINED (-3)
#define PT_DONE (-4)

/* A slice of bytes that it does not own; not NUL-terminated in general. */
struct pt_str {
	const char *data;
	size_t len;
};

#define PT_STR(lit) \
	{ (lit), sizeof(lit) - 1 }
#define PT_NULL_STR \
	{ NULL, 0 }

#define PT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define PT_MAX(a, b) ((a) > (b) ? (a) : (b))
#define PT_ALIGN(n, a) (((n) + ((a)-1)) & ~((size_t)(a)-1))

#define pt_container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#if defined(__GNUC__)
#define PT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define PT_NORETURN __attribute__((noreturn))
#define pt_likely(x) __builtin_expect(!!(x), 1)
#define pt_unlikely(x) __builtin_expect(!!(x), 0)
#else
#define PT_PRINTF(f, a)
#define PT_NORETURN
#define pt_likely(x) (x)
#define pt_unlikely(x) (x)
#endif

/*
 * PT_ASSERT checks an internal invariant, always, cheaply. Never use it for
 * anything a client, a backend or a config file can cause.
 */
PT_NORETURN void pt_assert_fail(const char *expr, const char *file, int line);
#define PT_ASSERT(e) \
	(pt_likely(e) ? (void)0 : pt_assert_fail(#e, __FILE__, __LINE__))

static inline int
pt_str_eq(struct pt_str a, const char *lit, size_t litlen)
{
	return a.len == litlen && memcmp(a.data, lit, litlen) == 0;
}

static inline unsigned char
pt_tolower(unsigned char c)
{
	return (unsigned char)(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
}

int pt_strncasecmp(const char *a, const char *b, size_t n);
int pt_str_caseeq(struct pt_str a, const char *lit, size_t litlen);

#define PT_STR_EQ(s, lit) pt_str_eq((s), (lit), sizeof(lit) - 1)
#define PT_STR_CASEEQ(s, lit) pt_str_caseeq((s), (lit), sizeof(lit) - 1)

#endif
