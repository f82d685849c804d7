/*
 * test_http_core.c: what is built from a loaded configuration: location
 * matching (nginx's rules), server selection by host name, templates
 * and variables on a hand-made request. Configs are loaded the real way
 * (conf_load.h); most of the coverage is data: tables of (uri, location),
 * (host, server) and (template, request, value).
 *
 * http_core.c is included (h2o style) to reach the static
 * pt_http_find_server(); libportier.a's http_core.o is then not linked.
 */
#include "../../src/http_core.c"

#include "conf_load.h"

/*
 * A copy of a request's string, as the matchers get it. Under ASan it is
 * exactly len bytes, so that a read past the end is caught. Otherwise (for
 * valgrind) 16 initialised bytes follow: the PCRE2 JIT's SIMD scans load
 * aligned 16-byte words that may extend past the subject (harmless: they
 * never cross a page), which valgrind reports as a use of uninitialised
 * bytes; in the server the subject is always inside a larger buffer.
 */
#ifdef __SANITIZE_ADDRESS__
#define T_SLACK 0
#else
#define T_SLACK 16
#endif

static char *
t_subject(const char *s, size_t len)
{
	char *d = malloc(len + T_SLACK + 1);

	ck_assert_ptr_nonnull(d);
	memcpy(d, s, len);
	memset(d + len, '#', T_SLACK + 1);
	return d;
}


/* ---- location matching ------------------------------------------------------
 */

static const char t_loc_conf[] =
	"servers = (\n"
	"  { listen = \"127.0.0.1:8080\";\n"
	"    locations = (\n"
	"      { path = \"= /\"; },\n"
	"      { path = \"/\"; },\n"
	"      { path = \"/docs/\"; },\n"
	"      { path = \"/docs/api/\"; },\n"
	"      { path = \"= /docs/api/\"; },\n"
	"      { path = \"^~ /static/\"; },\n"
	"      { path = \"/static/img/\"; },\n"
	"      { path = \"~ \\\\.php$\"; },\n"
	"      { path = \"~* \\\\.(png|jpg)$\"; },\n"
	"      { path = \"/images/\"; },\n"
	"      { path = \"~ ^/images/.*\\\\.gif$\"; },\n"
	"      { path = \"= /exact\"; },\n"
	"      { path = \"/exact/\"; },\n"
	"      { path = \"~ ^/docs/api/v[0-9]+/\"; },\n"
	"      { path = \"~ ^/order\"; },\n"
	"      { path = \"~ order$\"; },\n"
	"      { path = \"^~ /stop\"; },\n"
	"      { path = \"/stop/longer/\"; }\n"
	"    ); },\n"
	"  { listen = \"127.0.0.1:8080\";\n"
	"    locations = (\n"
	"      { path = \"/only/\"; },\n"
	"      { path = \"~* ^/CI/\"; }\n"
	"    ); },\n"
	"  { listen = \"127.0.0.1:8080\"; }\n"
	");\n";

static const struct {
	unsigned server;
	const char *uri;
	const char *loc; /* NULL: none, the server's own settings */
} t_locs[] = {
	{ 0, "/", "= /" },
	{ 0, "/index.html", "/" },
	{ 0, "/docs", "/" },
	{ 0, "/docs/", "/docs/" },
	{ 0, "/docs/intro", "/docs/" },
	{ 0, "/docs/api/", "= /docs/api/" }, /* exact beats prefix */
	{ 0, "/docs/api/x", "/docs/api/" },  /* longest prefix */
	{ 0, "/docs/api/v2/x", "~ ^/docs/api/v[0-9]+/" },
	{ 0, "/docs/api/v/x", "/docs/api/" },
	{ 0, "/docs/a.php", "~ \\.php$" }, /* regex beats prefix */
	{ 0, "/static/", "^~ /static/" },
	{ 0, "/static/a.php", "^~ /static/" }, /* ^~ stops regexes */
	{ 0, "/static/a.png", "^~ /static/" },
	{ 0, "/static/img/a.png", "~* \\.(png|jpg)$" }, /* ^~ not longest */
	{ 0, "/static/img/a.txt", "/static/img/" },
	{ 0, "/staticx/a.php", "~ \\.php$" },
	{ 0, "/a.php", "~ \\.php$" },
	{ 0, "/a.PHP", "/" }, /* ~ is case-sensitive */
	{ 0, "/a.php.txt", "/" },
	{ 0, "/a.PNG", "~* \\.(png|jpg)$" }, /* ~* is not */
	{ 0, "/a.Jpg", "~* \\.(png|jpg)$" },
	{ 0, "/images/a.gif", "~ ^/images/.*\\.gif$" },
	{ 0, "/images/a.png", "~* \\.(png|jpg)$" }, /* first regex in order */
	{ 0, "/images/a.txt", "/images/" },
	{ 0, "/IMAGES/A.GIF", "/" }, /* prefixes are exact bytes */
	{ 0, "/exact", "= /exact" },
	{ 0, "/exact/", "/exact/" },
	{ 0, "/exactly", "/" },
	{ 0, "/exact/x.php", "~ \\.php$" },
	{ 0, "/order", "~ ^/order" }, /* both match: the first */
	{ 0, "/x/order", "~ order$" },
	{ 0, "/stop", "^~ /stop" },
	{ 0, "/stopper.php", "^~ /stop" }, /* a prefix, not a segment */
	{ 0, "/stop/longer/x.php", "~ \\.php$" },
	{ 0, "/stop/longer/x", "/stop/longer/" },
	{ 1, "/", NULL },
	{ 1, "/only", NULL },
	{ 1, "/only/", "/only/" },
	{ 1, "/only/x", "/only/" },
	{ 1, "/ci/x", "~* ^/CI/" },
	{ 1, "/other", NULL },
	{ 2, "/", NULL },
	{ 2, "/anything", NULL },
};

START_TEST(test_locations)
{
	struct pt_cycle *c = t_ok(t_loc_conf, NULL);
	struct pt_http_main_conf *mc = t_main(c);

	ck_assert_uint_eq(mc->nservers, 3);
	/* the tables: sorted by kind, prefixes longest first */
	ck_assert_uint_eq(mc->servers[0]->nexact, 3);
	ck_assert_uint_eq(mc->servers[0]->nregex, 6);
	ck_assert_uint_eq(mc->servers[0]->nprefix, 9);
	for (unsigned i = 1; i < mc->servers[0]->nprefix; i++)
		ck_assert_uint_ge(mc->servers[0]->prefix[i - 1]->prefix.len,
				  mc->servers[0]->prefix[i]->prefix.len);
	for (size_t i = 0; i < PT_ARRAY_SIZE(t_locs); i++) {
		struct pt_http_request r;
		struct pt_http_server *srv = mc->servers[t_locs[i].server];
		size_t len = strlen(t_locs[i].uri);
		char *uri = t_subject(t_locs[i].uri, len);

		memset(&r, 0, sizeof(r));
		r.server = srv;
		r.uri.data = uri;
		r.uri.len = len;
		T_CHECK(pt_http_find_location(&r) == PT_OK, "uri %s",
			t_locs[i].uri);
		if (t_locs[i].loc == NULL) {
			T_CHECK(r.location == NULL,
				"server %u uri \"%s\": location \"%s\", want "
				"none",
				t_locs[i].server, t_locs[i].uri,
				r.location->name);
			T_CHECK(r.loc_conf == srv->loc_conf,
				"uri \"%s\": not the server's conf",
				t_locs[i].uri);
		} else {
			T_CHECK(r.location != NULL &&
					strcmp(r.location->name,
					       t_locs[i].loc) == 0,
				"server %u uri \"%s\": location \"%s\", want "
				"\"%s\"",
				t_locs[i].server, t_locs[i].uri,
				r.location ? r.location->name : "(none)",
				t_locs[i].loc);
			T_CHECK(r.loc_conf == r.location->loc_conf,
				"uri \"%s\": not the location's conf",
				t_locs[i].uri);
			T_CHECK(t_loc(r.loc_conf)->location == r.location,
				"uri \"%s\": conf of another location",
				t_locs[i].uri);
		}
		free(uri);
	}
	pt_cycle_free(c);
}
END_TEST

/* ---- server selection -------------------------------------------------------
 */

static const char t_names_conf[] =
	"servers = (\n"
	"  { listen = \"127.0.0.1:8081\"; server_name = \"first.test\"; },\n"
	"  { listen = \"127.0.0.1:8081\";\n"
	"    server_name = [ \"example.com\", \"www.example.com\" ]; },\n"
	"  { listen = \"127.0.0.1:8081\"; server_name = \"*.example.com\"; },\n"
	"  { listen = \"127.0.0.1:8081\"; server_name = \"*.api.example.com\"; "
	"},\n"
	"  { listen = \"127.0.0.1:8081\"; server_name = \"www.example.*\"; },\n"
	"  { listen = \"127.0.0.1:8081\"; server_name = \"www.*\"; },\n"
	"  { listen = \"127.0.0.1:8081\"; server_name = \"~^api\\\\d+\\\\.\"; "
	"},\n"
	"  { listen = \"127.0.0.1:8081\"; server_name = \"~^(www|api)\\\\d\"; "
	"},\n"
	"  { listen = \"127.0.0.1:8081 default_server\";\n"
	"    server_name = \"default.test\"; },\n"
	"  { listen = \"127.0.0.1:8081\"; server_name = \"Mixed.Case.Test\"; "
	"},\n"
	"  { listen = [ \"127.0.0.1:8082\", \"127.0.0.1:8081\" ];\n"
	"    server_name = \"other.test\"; },\n"
	"  { listen = \"127.0.0.1:8082\"; server_name = \"second.test\"; }\n"
	");\n";

static const struct {
	const char *addr, *host, *server; /* server: its first name */
} t_hosts[] = {
	{ "127.0.0.1:8081", "first.test", "first.test" },
	{ "127.0.0.1:8081", "example.com", "example.com" },
	{ "127.0.0.1:8081", "www.example.com", "example.com" }, /* exact */
	{ "127.0.0.1:8081", "a.example.com", "*.example.com" },
	{ "127.0.0.1:8081", "a.b.example.com", "*.example.com" },
	{ "127.0.0.1:8081", "x.api.example.com", "*.api.example.com" },
	{ "127.0.0.1:8081", "api.example.com", "*.example.com" },
	{ "127.0.0.1:8081", "api12.example.com", "*.example.com" },
	{ "127.0.0.1:8081", "wwwexample.com", "default.test" },
	{ "127.0.0.1:8081", "www.example.org", "www.example.*" },
	{ "127.0.0.1:8081", "www.example.co.uk", "www.example.*" },
	{ "127.0.0.1:8081", "www.other.org", "www.*" },
	{ "127.0.0.1:8081", "www.example", "www.*" },
	{ "127.0.0.1:8081", "www1.test", "~^(www|api)\\d" },
	{ "127.0.0.1:8081", "api12.internal", "~^api\\d+\\." },
	{ "127.0.0.1:8081", "api1x.internal", "~^(www|api)\\d" },
	{ "127.0.0.1:8081", "apix.internal", "default.test" },
	{ "127.0.0.1:8081", "mixed.case.test", "Mixed.Case.Test" },
	{ "127.0.0.1:8081", "other.test", "other.test" },
	{ "127.0.0.1:8081", "second.test", "default.test" }, /* other addr */
	{ "127.0.0.1:8081", "nothing.test", "default.test" },
	{ "127.0.0.1:8081", "", "default.test" },
	{ "127.0.0.1:8081", "example.com.evil", "default.test" },
	{ "127.0.0.1:8081", "first.tes", "default.test" },
	{ "127.0.0.1:8081", "first.testx", "default.test" },
	{ "127.0.0.1:8082", "second.test", "second.test" },
	{ "127.0.0.1:8082", "other.test", "other.test" },
	/* without default_server, the first server listing the address */
	{ "127.0.0.1:8082", "first.test", "other.test" },
	{ "127.0.0.1:8082", "", "other.test" },
};

static const struct pt_http_addr *
t_find_addr(struct pt_cycle *c, const char *text)
{
	for (unsigned i = 0; i < c->nlisteners; i++) {
		const struct pt_http_port *port = c->listeners[i].ctx;
		for (unsigned j = 0; j < port->naddrs; j++) {
			char buf[PT_ADDR_TEXT];
			pt_addr_text(&port->addrs[j].addr.u.sa,
				     port->addrs[j].addr.len, buf, sizeof(buf));
			if (strcmp(buf, text) == 0)
				return &port->addrs[j];
		}
	}
	ck_abort_msg("no address %s", text);
	return NULL;
}

START_TEST(test_server_names)
{
	struct pt_cycle *c = t_ok(t_names_conf, NULL);

	for (size_t i = 0; i < PT_ARRAY_SIZE(t_hosts); i++) {
		const struct pt_http_addr *ha = t_find_addr(c, t_hosts[i].addr);
		size_t len = strlen(t_hosts[i].host);
		char *host = t_subject(t_hosts[i].host, len);
		struct pt_str h = { host, len };
		struct pt_http_server *srv;
		const char *name;

		srv = pt_http_find_server(ha, h);
		ck_assert_ptr_nonnull(srv);
		name = t_srv(srv->srv_conf)->server_name.items[0];
		T_CHECK(strcmp(name, t_hosts[i].server) == 0,
			"%s host \"%s\": server \"%s\", want \"%s\"",
			t_hosts[i].addr, t_hosts[i].host, name,
			t_hosts[i].server);
		free(host);
	}
	pt_cycle_free(c);
}
END_TEST

/* Through the phase handler, as a request sees it. */
START_TEST(test_server_select_phase)
{
	struct pt_cycle *c = t_ok(t_names_conf, NULL);
	struct pt_conn conn;
	struct pt_http_request r;
	struct pt_http_srv_conf *sc;

	memset(&conn, 0, sizeof(conn));
	memset(&r, 0, sizeof(r));
	conn.addr = t_find_addr(c, "127.0.0.1:8081");
	r.conn = &conn;
	r.h.host.data = "a.example.com";
	r.h.host.len = strlen(r.h.host.data);
	ck_assert_int_eq(core_select_server_phase(&r), PT_OK);
	sc = t_srv(r.srv_conf);
	ck_assert_str_eq(sc->server_name.items[0], "*.example.com");
	ck_assert_ptr_eq(sc->server, r.server);
	ck_assert_ptr_eq(r.loc_conf, r.server->loc_conf);
	pt_cycle_free(c);
}
END_TEST

/* ---- templates and variables --------------------------------------------- */

struct t_req {
	struct pt_http_request r;
	struct pt_http_header hdrs[8];
	struct pt_conn conn;
};

static void
t_req_init(struct t_req *q, const char *args, const char *const *headers)
{
	memset(q, 0, sizeof(*q));
	q->r.pool = pt_pool_create();
	ck_assert_ptr_nonnull(q->r.pool);
	q->r.conn = &q->conn;
	q->r.args.data = args;
	q->r.args.len = strlen(args);
	q->r.h.headers = q->hdrs;
	for (unsigned i = 0; headers && headers[i]; i++) {
		const char *colon = strchr(headers[i], ':');
		struct pt_http_header *h = &q->hdrs[q->r.h.nheaders++];
		h->name.data = headers[i];
		h->name.len = (size_t)(colon - headers[i]);
		h->value.data = colon + 2;
		h->value.len = strlen(colon + 2);
		h->id = pt_http_header_id(h->name.data, h->name.len);
		if (q->r.h.known[h->id] == NULL)
			q->r.h.known[h->id] = h;
	}
}

static const char *const t_hdrs[] = { "Host: example.com",
				      "X-Forwarded-For: 10.0.0.1, 10.0.0.2",
				      "Cookie: a=1; ab=2;b=3; c=",
				      "User-Agent: curl/8",
				      "x-forwarded-for: 192.0.2.1",
				      "Cookie: d=4; a=second",
				      "Authorization: Basic dXNlcjpwYXNz",
				      NULL };

static const struct {
	const char *tpl, *args, *want; /* want NULL: refused at load */
} t_tpls[] = {
	{ "$arg_a", "a=1&b=2&a=3", "1" },
	{ "$arg_A", "a=1&b=2&a=3", "1" }, /* name: any case */
	{ "$arg_a", "A=9&a=1", "9" },
	{ "$arg_b", "a=1&b=2&a=3", "2" },
	{ "$arg_c", "a=1&b=2&a=3", "" },
	{ "$arg_a", "ab=2&a=1", "1" }, /* not a prefix match */
	{ "$arg_ab", "a=1&ab=2", "2" },
	{ "$arg_e", "e&f=1", "" }, /* no value */
	{ "$arg_f", "e&f=1", "1" },
	{ "$arg_x", "x=%41+b&y", "%41+b" }, /* raw, not decoded */
	{ "$arg_x", "x==1", "=1" },
	{ "$arg_x", "", "" },
	{ "$arg_x", "&&x=2&", "2" },
	{ "[$arg_a|$arg_b]", "b=2", "[|2]" },
	{ "$http_x_forwarded_for", "", "10.0.0.1, 10.0.0.2" },
	{ "$http_X_FORWARDED_FOR", "", "10.0.0.1, 10.0.0.2" },
	{ "$http_user_agent", "", "curl/8" },
	{ "$http_host", "", "example.com" },
	{ "$http_x_none", "", "" },
	{ "$http_x", "", "" },
	{ "$cookie_a", "", "1" },
	{ "$cookie_ab", "", "2" },
	{ "$cookie_b", "", "3" },
	{ "$cookie_c", "", "" },
	{ "$cookie_d", "", "4" }, /* second Cookie field */
	{ "$cookie_A", "", "" },  /* names are case-sensitive */
	{ "$cookie_x", "", "" },
	{ "$remote_user", "", "user" },
	{ "$uri?$args", "q=1", "/p?q=1" },
	{ "cost $ 5", "", "cost $ 5" }, /* '$' + non-name: literal */
	{ "100$", "", "100$" },
	{ "$$arg_a", "a=1", "$arg_a" }, /* "$$" is a literal '$' */
	{ "$$$arg_a", "a=1", "$1" },
	{ "cost $$5", "", "cost $5" },
	{ "a$$", "", "a$" },
	{ "$$$$", "", "$$" },
	{ "$$", "", "$" },
	{ "a$-b", "", "a$-b" },
	{ "${x}", "", "${x}" }, /* no braces syntax */
	{ "$5", NULL, NULL },
	{ "cost $5", NULL, NULL },
	{ "$nosuch", NULL, NULL },
	{ "$hostx", NULL, NULL },
	{ "$host_suffix", NULL, NULL },
	{ "$arg_", NULL, NULL },
	{ "$cookie_", NULL, NULL },
};

START_TEST(test_templates)
{
	struct pt_cycle *c = t_ok(T_SRV, NULL);
	struct pt_conf cf;

	memset(&cf, 0, sizeof(cf));
	cf.cycle = c;
	cf.pool = c->pool;
	cf.main_conf = c->main_conf;
	cf.to_stderr = 1;
	for (size_t i = 0; i < PT_ARRAY_SIZE(t_tpls); i++) {
		struct pt_tpl tpl;
		struct t_req q;
		struct pt_str out;
		int rc;

		if (t_tpls[i].args == NULL)
			continue;
		rc = pt_tpl_compile(&cf, NULL, t_tpls[i].tpl, &tpl);
		ck_assert_msg(rc == PT_OK, "template \"%s\" refused",
			      t_tpls[i].tpl);
		t_req_init(&q, t_tpls[i].args, t_hdrs);
		q.r.uri.data = "/p";
		q.r.uri.len = 2;
		ck_assert_int_eq(pt_tpl_eval(&q.r, &tpl, &out), PT_OK);
		ck_assert_msg(
			out.len == strlen(t_tpls[i].want) &&
				memcmp(out.data, t_tpls[i].want, out.len) == 0,
			"template \"%s\" args \"%s\": \"%.*s\", want "
			"\"%s\"",
			t_tpls[i].tpl, t_tpls[i].args, (int)out.len, out.data,
			t_tpls[i].want);
		pt_pool_destroy(q.r.pool);
	}
	pt_cycle_free(c);
}
END_TEST

/* Templates refused at load, with the message. */
START_TEST(test_tpl_errors)
{
	struct pt_cycle *c;

	c = t_ok(T_SRV, NULL);
	pt_cycle_free(c);
	for (size_t i = 0; i < PT_ARRAY_SIZE(t_tpls); i++) {
		char conf[512], want[256];
		const char *p = t_tpls[i].tpl;
		size_t n;

		if (t_tpls[i].args != NULL)
			continue;
		/* the first unknown name: from '$' to the last name char */
		p = strchr(p, '$');
		n = strspn(p + 1, "abcdefghijklmnopqrstuvwxyz"
				  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
		snprintf(conf, sizeof(conf),
			 "servers = ( { listen = \"127.0.0.1:8080\";\n"
			 "  return = \"200 %s\"; } );\n",
			 t_tpls[i].tpl);
		snprintf(want, sizeof(want),
			 "portier: @F:2: unknown variable \"%.*s\" (write $$ for a literal '$')\n",
			 (int)n + 1, p);
		t_fails(conf, want);
	}
	/* a name ends at the first non-name character */
	c = t_ok("servers = ( { listen = \"127.0.0.1:8080\";\n"
		 "  return = \"200 $host:$server_port/$uri.$args-x\"; } );\n",
		 NULL);
	pt_cycle_free(c);
}
END_TEST

/* More parts than the evaluator keeps on its stack. */
START_TEST(test_tpl_many_parts)
{
	struct pt_cycle *c = t_ok(T_SRV, NULL);
	struct pt_conf cf;
	struct pt_tpl tpl;
	struct t_req q;
	struct pt_str out;
	char text[1024] = "", want[1024] = "";

	memset(&cf, 0, sizeof(cf));
	cf.cycle = c;
	cf.pool = c->pool;
	cf.to_stderr = 1;
	for (int i = 0; i < 50; i++) {
		strcat(text, "<$arg_a>");
		strcat(want, "<xy>");
	}
	ck_assert_int_eq(pt_tpl_compile(&cf, NULL, text, &tpl), PT_OK);
	ck_assert_uint_eq(tpl.nparts, 51);
	t_req_init(&q, "a=xy", NULL);
	ck_assert_int_eq(pt_tpl_eval(&q.r, &tpl, &out), PT_OK);
	ck_assert_uint_eq(out.len, strlen(want));
	ck_assert(memcmp(out.data, want, out.len) == 0);
	/* with no variable, the text itself */
	ck_assert_int_eq(pt_tpl_compile(&cf, NULL, "plain", &tpl), PT_OK);
	ck_assert_uint_eq(tpl.nparts, 0);
	ck_assert_int_eq(pt_tpl_eval(&q.r, &tpl, &out), PT_OK);
	ck_assert_uint_eq(out.len, 5);
	pt_pool_destroy(q.r.pool);
	pt_cycle_free(c);
}
END_TEST

/* $server_name, and $host without a Host: the server's first name. */
START_TEST(test_server_name_var)
{
	struct pt_cycle *c =
		t_ok("servers = ( { listen = \"127.0.0.1:8080\";\n"
		     "  server_name = [ \"WWW.test\", \"b.test\" ]; } );\n",
		     NULL);
	struct pt_conf cf;
	struct pt_tpl tpl;
	struct t_req q;
	struct pt_str out;

	memset(&cf, 0, sizeof(cf));
	cf.cycle = c;
	cf.pool = c->pool;
	cf.to_stderr = 1;
	ck_assert_int_eq(pt_tpl_compile(&cf, NULL, "$server_name|$host", &tpl),
			 PT_OK);
	t_req_init(&q, "", NULL);
	q.r.server = t_main(c)->servers[0];
	ck_assert_int_eq(pt_tpl_eval(&q.r, &tpl, &out), PT_OK);
	ck_assert_str_eq(out.data, "www.test|www.test");
	pt_pool_destroy(q.r.pool);
	pt_cycle_free(c);
}
END_TEST

/* mime.c: an unreadable mime_types file is reported without the file and
 * line of the setting (STYLE.md: config errors always carry them). */
static Suite *
t_suite(void)
{
	Suite *s = suite_create("http_core");
	TCase *tc = tcase_create("load");

	tcase_add_checked_fixture(tc, t_setup, t_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_locations);
	tcase_add_test(tc, test_server_names);
	tcase_add_test(tc, test_server_select_phase);
	tcase_add_test(tc, test_templates);
	tcase_add_test(tc, test_tpl_errors);
	tcase_add_test(tc, test_tpl_many_parts);
	tcase_add_test(tc, test_server_name_var);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return pt_unit_run(t_suite());
}
