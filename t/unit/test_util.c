/*
 * test_util.c: unit tests of src/util.c (sizes, durations, unsigned
 * numbers, case-insensitive comparison) and src/ptime.c (HTTP dates).
 *
 * Every parser is fed from a table of (input, expected) rows; each input
 * is copied into a buffer of exactly its length first, so that a read past
 * the end shows under ASan and valgrind. The date round trips use a fixed
 * seed: a failure always reproduces.
 */
#include "core.h"
#include "ptime.h"
#include "util.h"

#include <check.h>

#include "unit.h"
#include <limits.h>

#define T_ERR INT64_MIN /* expected: PT_ERROR */

/* A malloc'ed copy of the first len bytes of s, without a NUL. */
static char *
t_exact(const char *s, size_t len)
{
	char *d = malloc(len ? len : 1);

	ck_assert_ptr_nonnull(d);
	memcpy(d, s, len);
	return d;
}

/* ---- sizes -------------------------------------------------------------- */

static const struct {
	const char *in;
	int64_t out;
} t_sizes[] = {
	{ "0", 0 },
	{ "1", 1 },
	{ "4096", 4096 },
	{ "1k", 1024 },
	{ "1K", 1024 },
	{ "16k", 16384 },
	{ "1m", 1048576 },
	{ "1M", 1048576 },
	{ "3g", 3LL * 1024 * 1024 * 1024 },
	{ "2G", 2LL * 1024 * 1024 * 1024 },
	{ "0k", 0 },
	{ "007k", 7168 },
	{ "9223372036854775807", INT64_MAX },
	{ "9223372036854775808", T_ERR },
	{ "99999999999999999999999", T_ERR },
	{ "9007199254740991k", 9223372036854774784LL }, /* 2^63 - 1024 */
	{ "9007199254740992k", T_ERR }, /* 2^63: overflows after * 1024 */
	{ "9007199254740991", 9007199254740991LL },
	{ "8796093022207k", 8796093022207LL * 1024 },
	{ "8589934591g", 8589934591LL * 1024 * 1024 * 1024 },
	{ "8589934592g", T_ERR }, /* 2^63: one past INT64_MAX */
	{ "", T_ERR },
	{ "k", T_ERR },
	{ "m", T_ERR },
	{ "-1", T_ERR },
	{ "+1", T_ERR },
	{ " 1", T_ERR },
	{ "1 ", T_ERR },
	{ "1 k", T_ERR },
	{ "1kb", T_ERR },
	{ "1kk", T_ERR },
	{ "1t", T_ERR },
	{ "1b", T_ERR },
	{ "1.5k", T_ERR },
	{ "0x10", T_ERR },
	{ "abc", T_ERR },
	{ "1e3", T_ERR },
};

START_TEST(test_parse_size)
{
	for (size_t i = 0; i < PT_ARRAY_SIZE(t_sizes); i++) {
		int64_t v = -12345;
		int rc = pt_parse_size(t_sizes[i].in, &v);

		if (t_sizes[i].out == T_ERR) {
			ck_assert_msg(rc == PT_ERROR,
				      "size \"%s\": accepted %lld",
				      t_sizes[i].in, (long long)v);
			ck_assert_msg(v == -12345,
				      "size \"%s\": output written",
				      t_sizes[i].in);
		} else {
			ck_assert_msg(
				rc == PT_OK && v == t_sizes[i].out,
				"size \"%s\": rc %d value %lld, want %lld",
				t_sizes[i].in, rc, (long long)v,
				(long long)t_sizes[i].out);
		}
	}
}
END_TEST

/* ---- durations ---------------------------------------------------------- */

static const struct {
	const char *in;
	int64_t ms;
} t_durations[] = {
	{ "500ms", 500 },
	{ "0ms", 0 },
	{ "0", 0 },
	{ "2s", 2000 },
	{ "30", 30000 }, /* a bare number is seconds */
	{ "1m", 60000 },
	{ "1m30s", 90000 },
	{ "1h", 3600000 },
	{ "1d", 86400000 },
	{ "1d2h3m4s5ms", 93784005 },
	{ "1h1ms", 3600001 },
	{ "90s", 90000 },
	{ "1s1s", 2000 }, /* terms simply add up */
	{ "9223372036854775807ms", INT64_MAX },
	{ "9223372036854775808ms", T_ERR },
	{ "9223372036854775s", 9223372036854775000LL },
	{ "9223372036854776s", T_ERR },
	{ "9223372036854775s808ms", T_ERR },
	{ "9223372036854775s807ms", INT64_MAX },
	{ "106751991167d", 106751991167LL * 86400000 },
	{ "106751991168d", T_ERR },
	{ "9223372036854775", 9223372036854775000LL },
	{ "9223372036854776", T_ERR },
	{ "", T_ERR },
	{ "s", T_ERR },
	{ "ms", T_ERR },
	{ "1x", T_ERR },
	{ "1S", T_ERR }, /* units are lower case */
	{ "1M", T_ERR },
	{ "1 s", T_ERR },
	{ " 1s", T_ERR },
	{ "1s ", T_ERR },
	{ "-1", T_ERR },
	{ "-1s", T_ERR },
	{ "+1s", T_ERR },
	{ "1.5s", T_ERR },
	{ "1m30", T_ERR }, /* a bare number only alone */
	{ "1sec", T_ERR },
	{ "1min", T_ERR },
	{ "1mss", T_ERR },
	{ "m1", T_ERR },
	{ "1s,2s", T_ERR },
	{ "1w", T_ERR },
	{ "1y", T_ERR },
};

START_TEST(test_parse_duration)
{
	for (size_t i = 0; i < PT_ARRAY_SIZE(t_durations); i++) {
		int64_t v = -12345;
		int rc = pt_parse_duration(t_durations[i].in, &v);

		if (t_durations[i].ms == T_ERR) {
			ck_assert_msg(rc == PT_ERROR,
				      "duration \"%s\": accepted %lld",
				      t_durations[i].in, (long long)v);
			ck_assert_msg(v == -12345,
				      "duration \"%s\": output written",
				      t_durations[i].in);
		} else {
			ck_assert_msg(rc == PT_OK && v == t_durations[i].ms,
				      "duration \"%s\": rc %d value %lld, want "
				      "%lld",
				      t_durations[i].in, rc, (long long)v,
				      (long long)t_durations[i].ms);
		}
	}
}
END_TEST

/* ---- unsigned numbers ---------------------------------------------------- */

static const struct {
	const char *in;
	uint64_t max;
	int ok;
	uint64_t out;
} t_uints[] = {
	{ "0", 10, 1, 0 },
	{ "10", 10, 1, 10 },
	{ "11", 10, 0, 0 },
	{ "65535", 65535, 1, 65535 },
	{ "65536", 65535, 0, 0 },
	{ "0065535", 65535, 1, 65535 },
	{ "99999", 65535, 0, 0 },
	{ "5", 5, 1, 5 },
	{ "6", 5, 0, 0 },
	{ "9", 5, 0, 0 }, /* a digit above a small max */
	{ "7", 0, 0, 0 },
	{ "0", 0, 1, 0 },
	{ "18446744073709551615", UINT64_MAX, 1, UINT64_MAX },
	{ "18446744073709551616", UINT64_MAX, 0, 0 },
	{ "18446744073709551620", UINT64_MAX, 0, 0 },
	{ "9223372036854775807", INT64_MAX, 1, INT64_MAX },
	{ "9223372036854775808", INT64_MAX, 0, 0 },
	{ "", 100, 0, 0 },
	{ "-1", 100, 0, 0 },
	{ "+1", 100, 0, 0 },
	{ "1a", 100, 0, 0 },
	{ " 1", 100, 0, 0 },
	{ "1 ", 100, 0, 0 },
	{ "/", 100, 0, 0 }, /* '0' - 1 */
	{ ":", 100, 0, 0 }, /* '9' + 1 */
};

START_TEST(test_parse_uint)
{
	for (size_t i = 0; i < PT_ARRAY_SIZE(t_uints); i++) {
		size_t len = strlen(t_uints[i].in);
		char *in = t_exact(t_uints[i].in, len);
		uint64_t v = 424242;
		int rc = pt_parse_uint(in, len, t_uints[i].max, &v);

		if (t_uints[i].ok)
			ck_assert_msg(rc == PT_OK && v == t_uints[i].out,
				      "uint \"%s\" max %llu: rc %d value %llu",
				      t_uints[i].in,
				      (unsigned long long)t_uints[i].max, rc,
				      (unsigned long long)v);
		else
			ck_assert_msg(rc == PT_ERROR && v == 424242,
				      "uint \"%s\" max %llu: accepted %llu",
				      t_uints[i].in,
				      (unsigned long long)t_uints[i].max,
				      (unsigned long long)v);
		free(in);
	}
	/* only len bytes are read: the rest of the string does not count */
	{
		uint64_t v = 0;
		ck_assert_int_eq(pt_parse_uint("123abc", 3, 1000, &v), PT_OK);
		ck_assert_uint_eq(v, 123);
		ck_assert_int_eq(pt_parse_uint("80:", 2, 65535, &v), PT_OK);
		ck_assert_uint_eq(v, 80);
	}
}
END_TEST

/* ---- case-insensitive comparison ---------------------------------------- */

START_TEST(test_strncasecmp)
{
	ck_assert_int_eq(pt_strncasecmp("Host", "hOST", 4), 0);
	ck_assert_int_eq(pt_strncasecmp("abc", "abd", 2), 0);
	ck_assert_int_lt(pt_strncasecmp("abc", "abd", 3), 0);
	ck_assert_int_gt(pt_strncasecmp("abD", "abc", 3), 0);
	ck_assert_int_eq(pt_strncasecmp("x", "y", 0), 0);
	ck_assert_int_eq(pt_strncasecmp("A-Z", "a-z", 3), 0);
	/* only ASCII letters fold: '@' and '`' differ from each other by
	 * 0x20, as '[' and '{' do, and must stay different */
	ck_assert_int_ne(pt_strncasecmp("@", "`", 1), 0);
	ck_assert_int_ne(pt_strncasecmp("[", "{", 1), 0);
	ck_assert_int_ne(pt_strncasecmp("\xc0", "\xe0", 1), 0);
	/* the sign follows unsigned bytes, after folding */
	ck_assert_int_gt(pt_strncasecmp("\xff", "a", 1), 0);
	ck_assert_int_lt(pt_strncasecmp("Z", "\x80", 1), 0);
	/* stops at n: bytes after are never read (exact-size buffers) */
	{
		char *a = t_exact("CONTENT", 7), *b = t_exact("content", 7);
		ck_assert_int_eq(pt_strncasecmp(a, b, 7), 0);
		free(a);
		free(b);
	}
	{
		struct pt_str s = PT_STR("Keep-Alive");
		ck_assert(PT_STR_CASEEQ(s, "keep-alive"));
		ck_assert(!PT_STR_CASEEQ(s, "keep-alive2"));
		ck_assert(!PT_STR_CASEEQ(s, "keep-aliv"));
		ck_assert(PT_STR_EQ(s, "Keep-Alive"));
		ck_assert(!PT_STR_EQ(s, "keep-alive"));
	}
	for (int c = 0; c < 256; c++) {
		char a = (char)c, b = (char)pt_tolower((unsigned char)c);
		int letter = (c >= 'A' && c <= 'Z');
		ck_assert_int_eq(pt_strncasecmp(&a, &b, 1), 0);
		ck_assert_int_eq(b != a, letter);
	}
}
END_TEST

/* ---- HTTP dates ---------------------------------------------------------- */

static const struct {
	time_t t;
	const char *text;
} t_epochs[] = {
	{ 0, "Thu, 01 Jan 1970 00:00:00 GMT" },
	{ 1, "Thu, 01 Jan 1970 00:00:01 GMT" },
	{ 784111777, "Sun, 06 Nov 1994 08:49:37 GMT" },
	{ 946684799, "Fri, 31 Dec 1999 23:59:59 GMT" },
	{ 951782400, "Tue, 29 Feb 2000 00:00:00 GMT" },
	{ 1709164800, "Thu, 29 Feb 2024 00:00:00 GMT" },
	{ 2147483647, "Tue, 19 Jan 2038 03:14:07 GMT" },
	{ 4102444800, "Fri, 01 Jan 2100 00:00:00 GMT" },
	{ 253402300799, "Fri, 31 Dec 9999 23:59:59 GMT" },
};

START_TEST(test_time_http)
{
	for (size_t i = 0; i < PT_ARRAY_SIZE(t_epochs); i++) {
		char buf[48];

		memset(buf, 'x', sizeof(buf));
		pt_time_http(t_epochs[i].t, buf);
		ck_assert_str_eq(buf, t_epochs[i].text);
	}
}
END_TEST

static const struct {
	const char *in;
	time_t t; /* -1: invalid */
} t_dates[] = {
	/* the three forms of RFC 9110 section 5.6.7 */
	{ "Sun, 06 Nov 1994 08:49:37 GMT", 784111777 },
	{ "Sunday, 06-Nov-94 08:49:37 GMT", 784111777 },
	{ "Sun Nov  6 08:49:37 1994", 784111777 },
	{ "Sun Nov 16 08:49:37 1994", 784111777 + 10 * 86400 },
	{ "Thu Jan  1 00:00:00 1970", 0 },
	{ "Tue Feb 29 00:00:00 2000", 951782400 },
	{ "Thu, 01 Jan 1970 00:00:00 GMT", 0 },
	{ "Tue, 29 Feb 2000 00:00:00 GMT", 951782400 },
	{ "Thu, 29 Feb 2024 00:00:00 GMT", 1709164800 },
	{ "Fri, 31 Dec 9999 23:59:59 GMT", 253402300799 },
	{ "Tue, 19 Jan 2038 03:14:08 GMT", 2147483648 },
	/* RFC 850: two-digit years 70..99 are 19xx, 00..69 are 20xx */
	{ "Thursday, 01-Jan-70 00:00:00 GMT", 0 },
	{ "Friday, 31-Dec-99 23:59:59 GMT", 946684799 },
	{ "Saturday, 01-Jan-00 00:00:00 GMT", 946684800 },
	{ "Tuesday, 01-Jan-69 00:00:00 GMT", 3124224000 },
	/* invalid */
	{ "", -1 },
	{ "x", -1 },
	{ "Sun, 06 Nov 1994 08:49:37", -1 },
	{ "Sun, 06 Nov 1994 08:49:37 UTC", -1 },
	{ "Sun, 06 Nov 1994 08:49:37 GMT ", -1 },
	{ "Sun, 06 Nov 1994 08:49:37 gmt", -1 },
	{ "Sun, 06 Nov 1994 08:49:37 +0000", -1 },
	{ "Sun, 6 Nov 1994 08:49:37 GMT", -1 },
	{ "Sun,  6 Nov 1994 08:49:37 GMT", -1 },
	{ "Sun, 06 Nov 94 08:49:37 GMT", -1 },
	{ "Sun, 06-Nov-1994 08:49:37 GMT", -1 },
	{ "Sun, 06 nov 1994 08:49:37 GMT", -1 },
	{ "Sun, 06 Foo 1994 08:49:37 GMT", -1 },
	{ "Sun, 06 Nov 1994 8:49:37 GMT", -1 },
	{ "Sun, 06 Nov 1994 08:49 GMT", -1 },
	{ "Sun, 06 Nov 1994 08.49.37 GMT", -1 },
	{ "Sun, 06 Nov 1994 24:00:00 GMT", -1 },
	{ "Sun, 06 Nov 1994 08:60:00 GMT", -1 },
	{ "Sun, 06 Nov 1994 08:49:61 GMT", -1 },
	{ "Sun, 00 Nov 1994 08:49:37 GMT", -1 },
	{ "Sun, 32 Nov 1994 08:49:37 GMT", -1 },
	{ "Sun, 31 Nov 1994 08:49:37 GMT", -1 }, /* November has 30 */
	{ "Tue, 30 Feb 2000 00:00:00 GMT", -1 },
	{ "Wed, 29 Feb 2023 00:00:00 GMT", -1 }, /* not a leap year */
	{ "Mon, 29 Feb 2100 00:00:00 GMT", -1 }, /* not a leap year */
	{ "Thu, 31 Apr 2001 00:00:00 GMT", -1 },
	{ "Wed, 31 Dec 1969 23:59:59 GMT", -1 }, /* before the epoch */
	{ "Sunday, 06-Nov-94 08:49:37 UTC", -1 },
	{ "Sunday, 06-Nov-94 08:49:37", -1 },
	{ "Sunday, 6-Nov-94 08:49:37 GMT", -1 },
	{ "Sunday, 06 Nov 94 08:49:37 GMT", -1 },
	{ "Sunday, 31-Jun-94 08:49:37 GMT", -1 },
	{ "Sun Nov 6 08:49:37 1994", -1 }, /* one space: 23 bytes */
	{ "Sun Nov  6 08:49:37 1994 ", -1 },
	{ "Sun Nov 06 08:49:37 94", -1 },
	{ "Sun Nov  6 08:49:37  994", -1 },
	{ "Sun Nov 6  08:49:37 1994", -1 },
	{ "Sun Nov   6 8:49:37 1994", -1 },
	{ "Sun Nov  x 08:49:37 1994", -1 },
	{ "Sun Foo  6 08:49:37 1994", -1 },
	{ "Sun Feb 30 08:49:37 1994", -1 },
	{ "Sun Nov  6 08:49:37 1969", -1 },
	{ "SunXNov  6 08:49:37 1994", -1 },
	{ "Sun,06 Nov 1994 08:49:37 GMT", -1 },
	{ ",", -1 },
	{ "Sun,", -1 },
	{ "Sunday,", -1 },
	{ "Sun, 06", -1 },
	{ "Sun, 06 Nov", -1 },
	{ "Sun, 06 Nov 1994", -1 },
	{ "Sun, 06 Nov 1994 ", -1 },
	{ "Sun, 06 Nov 1994 08:", -1 },
	{ "Sun, 06 Nov 1994 08:49:", -1 },
	{ "Sun, 06 Nov 1994 08:49:37 G", -1 },
	{ "Sunday, 06-", -1 },
	{ "Sunday, 06-Nov-", -1 },
	{ "Sunday, 06-Nov-9", -1 },
};

START_TEST(test_time_parse_http)
{
	for (size_t i = 0; i < PT_ARRAY_SIZE(t_dates); i++) {
		size_t len = strlen(t_dates[i].in);
		char *in = t_exact(t_dates[i].in, len);
		time_t t = pt_time_parse_http(in, len);

		ck_assert_msg(t == t_dates[i].t, "date \"%s\": %lld, want %lld",
			      t_dates[i].in, (long long)t,
			      (long long)t_dates[i].t);
		free(in);
	}
}
END_TEST

/* Every prefix of a valid date is invalid, and read within its length. */
START_TEST(test_time_parse_prefixes)
{
	static const char *const valid[] = {
		"Sun, 06 Nov 1994 08:49:37 GMT",
		"Sunday, 06-Nov-94 08:49:37 GMT",
		"Sun Nov  6 08:49:37 1994",
	};

	for (size_t i = 0; i < PT_ARRAY_SIZE(valid); i++) {
		size_t full = strlen(valid[i]);
		for (size_t len = 0; len < full; len++) {
			char *in = t_exact(valid[i], len);
			ck_assert_msg(pt_time_parse_http(in, len) == -1,
				      "prefix %zu of \"%s\" accepted", len,
				      valid[i]);
			free(in);
		}
	}
}
END_TEST

/* xorshift64*, fixed seed: a failing time is printed and reproduces. */
START_TEST(test_time_round_trip)
{
	static const char *const wday_long[] = { "Sunday",   "Monday",
						 "Tuesday",  "Wednesday",
						 "Thursday", "Friday",
						 "Saturday" };

	for (int i = 0; i < 20000; i++) {
		/* up to 9999-12-31; every fourth in 1970..2069 for RFC 850 */
		time_t t = (time_t)(t_random() %
				    (i % 4 ? 253402300800ull : 3155760000ull));
		char buf[48], alt[64];
		struct tm tm;

		pt_time_http(t, buf);
		T_CHECK(pt_time_parse_http(buf, strlen(buf)) == t,
			"IMF-fixdate round trip of %lld: \"%s\"", (long long)t,
			buf);

		gmtime_r(&t, &tm);
		/* asctime: day padded with a space */
		snprintf(alt, sizeof(alt), "%.3s %.3s %2d %02d:%02d:%02d %04d",
			 buf, buf + 8, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, tm.tm_year + 1900);
		T_CHECK(pt_time_parse_http(alt, strlen(alt)) == t,
			"asctime round trip of %lld: \"%s\"", (long long)t,
			alt);
		if (i % 4)
			continue;
		snprintf(alt, sizeof(alt),
			 "%s, %02d-%.3s-%02d %02d:%02d:%02d GMT",
			 wday_long[tm.tm_wday], tm.tm_mday, buf + 8,
			 tm.tm_year % 100, tm.tm_hour, tm.tm_min, tm.tm_sec);
		T_CHECK(pt_time_parse_http(alt, strlen(alt)) == t,
			"RFC 850 round trip of %lld: \"%s\"", (long long)t,
			alt);
	}
}
END_TEST

/* The cached clock: formatted fields agree with each other. */
START_TEST(test_time_update)
{
	char buf[48];
	time_t t;

	pt_time_update();
	ck_assert_int_gt(pt_now.mono_ms, 0);
	ck_assert_int_eq(pt_now.wall_sec, pt_now.wall_ms / 1000);
	pt_time_http(pt_now.wall_sec, buf);
	ck_assert_str_eq(pt_now.http_date, buf);
	t = pt_time_parse_http(pt_now.http_date, strlen(pt_now.http_date));
	ck_assert_int_eq(t, pt_now.wall_sec);
	ck_assert_uint_eq(strlen(pt_now.log_time), 19);
	ck_assert_uint_eq(strlen(pt_now.clf_time), 26);
	ck_assert_uint_eq(strlen(pt_now.iso8601), 25);
	/* the same second in all of them */
	ck_assert(memcmp(pt_now.log_time + 11, pt_now.http_date + 17, 8) == 0);
	ck_assert(memcmp(pt_now.iso8601 + 11, pt_now.http_date + 17, 8) == 0);
	ck_assert(memcmp(pt_now.clf_time + 12, pt_now.http_date + 17, 8) == 0);
	ck_assert(memcmp(pt_now.clf_time + 3, pt_now.http_date + 8, 3) == 0);
}
END_TEST

static Suite *
t_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("all");

	tcase_add_test(tc, test_parse_size);
	tcase_add_test(tc, test_parse_duration);
	tcase_add_test(tc, test_parse_uint);
	tcase_add_test(tc, test_strncasecmp);
	tcase_add_test(tc, test_time_http);
	tcase_add_test(tc, test_time_parse_http);
	tcase_add_test(tc, test_time_parse_prefixes);
	tcase_add_test(tc, test_time_round_trip);
	tcase_add_test(tc, test_time_update);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return pt_unit_run(t_suite());
}
