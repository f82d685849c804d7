/*
 * test_proxy_protocol.c: unit tests of src/proxy_protocol.c.
 *
 * A table of headers (v1 text, v2 bytes) with what the parser must say:
 * a length and the source address, or PT_ERROR. Around each valid one:
 * every strict prefix is PT_AGAIN (never an error, never a header), and
 * bytes after it do not change its length. Each input is copied into a
 * buffer of exactly its length, so a read past the end shows under ASan;
 * seeded random mutations must never read past it either.
 */
#include "core.h"
#include "listen.h"
#include "proxy_protocol.h"

#include <check.h>

#include "unit.h"

#define T_SIG "\r\n\r\n\0\r\nQUIT\n"

struct t_case {
	const char *name;
	const char *in;
	size_t len;
	int result; /* header length, or PT_ERROR */
	const char *src; /* "ip port", NULL: no address */
};

#define T_TEXT(s) s, sizeof(s) - 1

static const struct t_case t_cases[] = {
	{ "v1 tcp4", T_TEXT("PROXY TCP4 192.0.2.1 198.51.100.2 1234 443\r\n"),
	  44, "192.0.2.1 1234" },
	{ "v1 tcp6", T_TEXT("PROXY TCP6 2001:db8::1 ::1 65535 0\r\n"), 36,
	  "2001:db8::1 65535" },
	{ "v1 unknown", T_TEXT("PROXY UNKNOWN\r\n"), 15, NULL },
	{ "v1 unknown+", T_TEXT("PROXY UNKNOWN a b c\r\n"), 21, NULL },
	{ "v1 empty proto", T_TEXT("PROXY \r\n"), PT_ERROR, NULL },
	{ "v1 tcp4 only", T_TEXT("PROXY TCP4\r\n"), PT_ERROR, NULL },
	{ "v1 bad ip", T_TEXT("PROXY TCP4 1.2.3 1.2.3.4 1 2\r\n"), PT_ERROR,
	  NULL },
	{ "v1 v6 in tcp4", T_TEXT("PROXY TCP4 ::1 ::1 1 2\r\n"), PT_ERROR, NULL },
	{ "v1 port", T_TEXT("PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n"),
	  PT_ERROR, NULL },
	{ "v1 port sign", T_TEXT("PROXY TCP4 1.2.3.4 1.2.3.4 -1 2\r\n"),
	  PT_ERROR, NULL },
	{ "v1 6 digits", T_TEXT("PROXY TCP4 1.2.3.4 1.2.3.4 000001 2\r\n"),
	  PT_ERROR, NULL },
	{ "v1 5 fields", T_TEXT("PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n"),
	  PT_ERROR, NULL },
	{ "v1 trailing sp", T_TEXT("PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n"),
	  PT_ERROR, NULL },
	{ "v1 tab", T_TEXT("PROXY TCP4\t1.2.3.4 1.2.3.4 1 2\r\n"), PT_ERROR,
	  NULL },
	{ "v1 lf", T_TEXT("PROXY UNKNOWN\n"), PT_ERROR, NULL },
	{ "v1 cr x", T_TEXT("PROXY UNKNOWN\rx"), PT_ERROR, NULL },
	{ "v1 nul", T_TEXT("PROXY UNK\0OWN\r\n"), PT_ERROR, NULL },
	{ "v1 case", T_TEXT("Proxy UNKNOWN\r\n"), PT_ERROR, NULL },
	{ "v1 no space", T_TEXT("PROXYUNKNOWN\r\n"), PT_ERROR, NULL },
	{ "http", T_TEXT("GET / HTTP/1.1\r\n"), PT_ERROR, NULL },
	{ "v2 tcp4",
	  T_TEXT(T_SIG "\x21\x11\x00\x0c\xc0\x00\x02\x01\xc6\x33\x64\x02"
		       "\x04\xd2\x01\xbb"),
	  28, "192.0.2.1 1234" },
	{ "v2 tcp4 tlv",
	  T_TEXT(T_SIG "\x21\x11\x00\x11\xc0\x00\x02\x01\xc6\x33\x64\x02"
		       "\x04\xd2\x01\xbb\x04\x00\x02\x00\x00"),
	  33, "192.0.2.1 1234" },
	{ "v2 tcp6",
	  T_TEXT(T_SIG "\x21\x21\x00\x24"
		       "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"
		       "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01"
		       "\x00\x50\x01\xbb"),
	  52, "2001:db8::1 80" },
	{ "v2 local", T_TEXT(T_SIG "\x20\x00\x00\x00"), 16, NULL },
	{ "v2 local junk", T_TEXT(T_SIG "\x20\x31\x00\x03" "abc"), 19, NULL },
	{ "v2 unspec", T_TEXT(T_SIG "\x21\x00\x00\x02" "ab"), 18, NULL },
	{ "v2 version 1", T_TEXT(T_SIG "\x11\x11\x00\x00"), PT_ERROR, NULL },
	{ "v2 version 3", T_TEXT(T_SIG "\x31\x11\x00\x00"), PT_ERROR, NULL },
	{ "v2 command 2", T_TEXT(T_SIG "\x22\x11\x00\x0c"), PT_ERROR, NULL },
	{ "v2 udp4", T_TEXT(T_SIG "\x21\x12\x00\x0c"), PT_ERROR, NULL },
	{ "v2 unix", T_TEXT(T_SIG "\x21\x31\x00\xd8"), PT_ERROR, NULL },
	{ "v2 short4", T_TEXT(T_SIG "\x21\x11\x00\x0b"), PT_ERROR, NULL },
	{ "v2 short6", T_TEXT(T_SIG "\x21\x21\x00\x0c"), PT_ERROR, NULL },
	{ "v2 bad sig", T_TEXT("\r\n\r\n\0\r\nQUIT\r"), PT_ERROR, NULL },
	{ "v2 cr only", T_TEXT("\rX"), PT_ERROR, NULL },
};

static char *
t_exact(const char *s, size_t len)
{
	char *d = malloc(len ? len : 1);

	ck_assert_ptr_nonnull(d);
	memcpy(d, s, len);
	return d;
}

static int
t_parse(const char *s, size_t len, struct pt_proxy_protocol *pp,
	const char **why)
{
	char *b = t_exact(s, len);
	int rc = pt_proxy_protocol_parse(b, len, pp, why);

	free(b);
	return rc;
}

START_TEST(test_table)
{
	const struct t_case *c = &t_cases[_i];
	struct pt_proxy_protocol pp;
	const char *why;
	int rc = t_parse(c->in, c->len, &pp, &why);

	ck_assert_msg(rc == c->result, "%s: %d, expected %d", c->name, rc,
		      c->result);
	if (rc == PT_ERROR) {
		ck_assert_msg(why != NULL && *why != '\0', "%s: no reason",
			      c->name);
		return;
	}
	ck_assert_msg(pp.has_addr == (c->src != NULL), "%s: has_addr",
		      c->name);
	if (c->src != NULL) {
		char ip[64], got[80];
		pt_addr_ip(&pp.src.u.sa, ip, sizeof(ip));
		snprintf(got, sizeof(got), "%s %u", ip,
			 pt_addr_port(&pp.src.u.sa));
		ck_assert_str_eq(got, c->src);
	}
}
END_TEST

/* A valid header: every prefix wants more; what follows is not taken. */
START_TEST(test_prefixes_and_suffix)
{
	const struct t_case *c = &t_cases[_i];
	struct pt_proxy_protocol pp;
	const char *why;
	char *more;

	if (c->result < 0)
		return;
	for (size_t n = 0; n < (size_t)c->result; n++) {
		int rc = t_parse(c->in, n, &pp, &why);
		T_CHECK(rc == PT_AGAIN, "%s: prefix of %zu bytes gave %d (%s)",
			c->name, n, rc, why ? why : "");
	}
	more = malloc(c->len + 20);
	ck_assert_ptr_nonnull(more);
	memcpy(more, c->in, c->len);
	memcpy(more + c->len, "GET / HTTP/1.1\r\n\r\n\r\n", 20);
	ck_assert_int_eq(t_parse(more, c->len + 20, &pp, &why), c->result);
	free(more);
}
END_TEST

START_TEST(test_v1_length)
{
	char line[200];
	struct pt_proxy_protocol pp;
	const char *why;

	/* 107 bytes with CRLF: accepted; 108: refused, even before its CR */
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	memcpy(line + 105, "\r\n", 2);
	ck_assert_int_eq(t_parse(line, 107, &pp, &why), 107);
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	memcpy(line + 106, "\r\n", 2);
	ck_assert_int_eq(t_parse(line, 108, &pp, &why), PT_ERROR);
	ck_assert_int_eq(t_parse(line, 107, &pp, &why), PT_ERROR);
	ck_assert_int_eq(t_parse(line, 106, &pp, &why), PT_AGAIN);
	ck_assert_int_eq(t_parse(line, 150, &pp, &why), PT_ERROR);
}
END_TEST

/* v2 with the largest length field: wanted until all 65551 bytes came. */
START_TEST(test_v2_large)
{
	size_t len = 16 + 65535;
	char *b = calloc(1, len);
	struct pt_proxy_protocol pp;
	const char *why;

	ck_assert_ptr_nonnull(b);
	memcpy(b, T_SIG "\x21\x11\xff\xff", 16);
	ck_assert_int_eq(t_parse(b, len - 1, &pp, &why), PT_AGAIN);
	ck_assert_int_eq(t_parse(b, len, &pp, &why), (int)len);
	ck_assert(pp.has_addr);
	free(b);
}
END_TEST

/* Random bytes flipped in valid headers: any answer, never a read past
 * the end (ASan), never a length beyond the input. */
START_TEST(test_mutations)
{
	t_rng = 0x5eed1234u;
	for (unsigned k = 0; k < 20000; k++) {
		const struct t_case *c =
			&t_cases[t_random() % PT_ARRAY_SIZE(t_cases)];
		char *b = t_exact(c->in, c->len);
		struct pt_proxy_protocol pp;
		const char *why;
		size_t len = c->len ? t_random() % (c->len + 1) : 0;
		int rc;

		for (unsigned m = t_random() % 4; m > 0 && c->len > 0; m--)
			b[t_random() % c->len] = (char)t_random();
		rc = pt_proxy_protocol_parse(b, len, &pp, &why);
		T_CHECK(rc == PT_AGAIN || rc == PT_ERROR ||
				(rc > 0 && (size_t)rc <= len),
			"%s: mutation gave %d for %zu bytes", c->name, rc, len);
		T_CHECK(rc != PT_ERROR || why != NULL, "%s: no reason",
			c->name);
		free(b);
	}
}
END_TEST

static Suite *
t_suite(void)
{
	Suite *s = suite_create("proxy_protocol");
	TCase *tc = tcase_create("all");
	int n = (int)PT_ARRAY_SIZE(t_cases);

	tcase_add_loop_test(tc, test_table, 0, n);
	tcase_add_loop_test(tc, test_prefixes_and_suffix, 0, n);
	tcase_add_test(tc, test_v1_length);
	tcase_add_test(tc, test_v2_large);
	tcase_add_test(tc, test_mutations);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return pt_unit_run(t_suite());
}
