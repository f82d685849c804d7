/*
 * test_proxy_head.c: the pieces of the proxy's request head that are
 * pure logic (modules/proxy/proxy_head.c, included to reach its statics):
 * dot-segment removal on the raw path, the Connection token lists, and
 * the length a HEAD response announces. The heads as a whole are tested
 * from outside by t/71-proxy.t and t/73-proxy-smuggling.t.
 */
#include "../../modules/proxy/proxy_head.c"

#include <check.h>

#include "unit.h"

/* raw path as received -> what the backend is sent */
static const struct {
	const char *in, *out;
} t_paths[] = {
	{ "/", "/" },
	{ "/a/b", "/a/b" },
	{ "/a/b/", "/a/b/" },
	{ "/a//b", "/a//b" },            /* slashes are not merged */
	{ "/a/./b", "/a/b" },
	{ "/a/../b", "/b" },
	{ "/a/b/..", "/a/" },
	{ "/a/b/.", "/a/b/" },
	{ "/a/b/../../c", "/c" },
	{ "/a/%2e/b", "/a/b" },           /* an encoded dot is a dot */
	{ "/a/%2E%2e/b", "/b" },
	{ "/a/.%2e/b", "/b" },
	{ "/a/%2e./b", "/b" },
	{ "/..", "/" },                   /* never above the root */
	{ "/.%2e/x", "/x" },
	{ "/a/..b/c", "/a/..b/c" },       /* not a dot-segment */
	{ "/a/b../c", "/a/b../c" },
	{ "/a/.../c", "/a/.../c" },
	{ "/a/%2e%2e%2e/c", "/a/%2e%2e%2e/c" },
	{ "/a/%2F/../b", "/a/b" },        /* "%2F" stays a segment */
	{ "/a/%41%20b", "/a/%41%20b" },   /* percent-encoding untouched */
	{ "/a/%2", "/a/%2" },
	{ "/x/./../y/.", "/y/" },
};

START_TEST(test_path)
{
	for (unsigned i = 0; i < PT_ARRAY_SIZE(t_paths); i++) {
		const char *in = t_paths[i].in;
		char out[64];
		size_t n = head_path(in, strlen(in), out);

		T_CHECK(n <= strlen(in) + 1, "%s: grew to %zu", in, n);
		T_CHECK(n == strlen(t_paths[i].out) &&
				memcmp(out, t_paths[i].out, n) == 0,
			"%s: got \"%.*s\", want \"%s\"", in, (int)n, out,
			t_paths[i].out);
	}
}
END_TEST

START_TEST(test_dots)
{
	ck_assert(head_dots(".", 1, 1));
	ck_assert(head_dots("%2e", 3, 1));
	ck_assert(head_dots("%2E", 3, 1));
	ck_assert(head_dots("..", 2, 2));
	ck_assert(head_dots(".%2E", 4, 2));
	ck_assert(!head_dots("", 0, 1));
	ck_assert(!head_dots("..", 2, 1));
	ck_assert(!head_dots("%2", 2, 1));
	ck_assert(!head_dots("%2f", 3, 1));
	ck_assert(!head_dots(".a", 2, 1));
}
END_TEST

START_TEST(test_connection_tokens)
{
	struct pt_http_header f[2];
	struct pt_http_req_head h;

	memset(&h, 0, sizeof(h));
	memset(f, 0, sizeof(f));
	f[0].name = (struct pt_str)PT_STR("Connection");
	f[0].value = (struct pt_str)PT_STR("keep-alive, X-Foo ,x-bar");
	f[0].id = PT_H_CONNECTION;
	f[1].name = (struct pt_str)PT_STR("connection");
	f[1].value = (struct pt_str)PT_STR("\tX-Baz");
	f[1].id = PT_H_CONNECTION;
	h.headers = f;
	h.nheaders = 2;
	ck_assert(!head_in_connection(&h, (struct pt_str)PT_STR("x-foo")));
	h.known[PT_H_CONNECTION] = &f[0];
	ck_assert(head_in_connection(&h, (struct pt_str)PT_STR("x-foo")));
	ck_assert(head_in_connection(&h, (struct pt_str)PT_STR("X-BAR")));
	ck_assert(head_in_connection(&h, (struct pt_str)PT_STR("x-baz")));
	ck_assert(head_in_connection(&h, (struct pt_str)PT_STR("Keep-Alive")));
	ck_assert(!head_in_connection(&h, (struct pt_str)PT_STR("keep")));
	ck_assert(!head_in_connection(&h, (struct pt_str)PT_STR("x-fo")));
	ck_assert(!head_in_connection(&h, (struct pt_str)PT_STR("")));
}
END_TEST

START_TEST(test_head_length)
{
	ck_assert_int_eq(head_length((struct pt_str)PT_STR("0")), 0);
	ck_assert_int_eq(head_length((struct pt_str)PT_STR("1234")), 1234);
	ck_assert_int_eq(head_length((struct pt_str)PT_STR("5, 5")), 5);
	ck_assert_int_eq(head_length((struct pt_str)PT_STR("")), -1);
	ck_assert_int_eq(head_length((struct pt_str)PT_STR("x")), -1);
	ck_assert_int_eq(
		head_length((struct pt_str)PT_STR("99999999999999999999")), -1);
}
END_TEST

static Suite *
proxy_head_suite(void)
{
	Suite *s = suite_create("proxy_head");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_path);
	tcase_add_test(tc, test_dots);
	tcase_add_test(tc, test_connection_tokens);
	tcase_add_test(tc, test_head_length);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return pt_unit_run(proxy_head_suite());
}
