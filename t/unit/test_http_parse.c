/*
 * test_http_parse.c: unit tests of src/http_parse.c (Check).
 *
 * Most of the coverage is data, read by two drivers that share one
 * "connection" runner (t_run: scan, parse, framing, host, path, body, then
 * the next pipelined request, until the input ends, a refusal, a close or
 * an upgrade):
 *   - t/unit/data/http_requests.txt, our corpus (its format is described at
 *     its top): requests, each run twice, fed whole and byte by byte (each
 *     step in a fresh buffer of exactly the bytes given, so that a read past
 *     the end shows under ASan and valgrind), and both runs must agree;
 *     and edge cases of the chunked decoder, the host parser and path
 *     normalization, each given to its helper alone;
 *   - the llhttp request vectors, read in place from PT_VECTORS_DIR; they are
 *     not part of the project and a release tarball lacks them, so the test
 *     skips with a note when the directory is absent.
 * Then a mutation test over the corpus inputs, and two table tests: the id
 * lookups, and the character classes byte by byte against the RFC grammar.
 */
#include "core.h"
#include "http_parse.h"

#include <check.h>

#include "unit.h"
#include "text.h"
#include <stddef.h>
#include <dirent.h>

#define T_MAX_MSGS 8
#define T_MAX_HDRS 128
#define T_STR      256
#define T_BODY     4096

/* What a runner saw of one message. */
struct t_msg {
	char method[T_STR], target[T_STR], scheme[T_STR], authority[T_STR];
	char path[T_STR], npath[T_STR], query[T_STR], host[T_STR], port[T_STR];
	char body[T_BODY];
	size_t body_len;
	int form, has_query, version, chunked, keepalive, upgrade, expect;
	int tunnel; /* CONNECT, or upgrade with an Upgrade field */
	long long content_length;
	unsigned nheaders;
};

/* What a runner saw of a connection. */
struct t_conn {
	int status;        /* PT_OK, PT_AGAIN or the first refusal */
	const char *stage; /* where the refusal came from */
	unsigned messages; /* complete messages */
	size_t rest;       /* bytes never read after a close or an upgrade */
	int closed, upgraded;
	struct t_msg msg[T_MAX_MSGS];
};

struct t_cfg {
	struct pt_http_limits lim;
	size_t chunk_line_max, trailers_max;
	int add_host; /* give a request without Host "Host: localhost" */
};

static const struct t_cfg t_default_cfg = {{1024, 8192, 64}, 256, 1024, 0};

/* ---- the connection runner -------------------------------------------- */

static void
t_copy(char *dst, struct pt_str s)
{
	size_t n = PT_MIN(s.len, (size_t)T_STR - 1);

	if (n > 0)
		memcpy(dst, s.data, n);
	dst[n] = '\0';
}

/*
 * Scan a head, whole or growing one byte at a time, each call on a fresh
 * buffer of exactly the bytes given (the buffer moves between calls).
 */
static int
t_scan(struct pt_http_scan *s, const char *buf, size_t n,
       const struct pt_http_limits *lim, int bytewise)
{
	int rc = PT_AGAIN;

	memset(s, 0, sizeof(*s));
	for (size_t l = bytewise ? 1 : n; l <= n && rc == PT_AGAIN; l++) {
		char *b = malloc(l);

		ck_assert_ptr_nonnull(b);
		memcpy(b, buf, l);
		rc = pt_http_scan_head(s, b, l, lim);
		free(b);
	}
	return rc;
}

static void
t_append(struct t_msg *m, struct pt_str d)
{
	ck_assert_msg(d.len > 0, "chunked: PT_OK with empty data");
	if (m->body_len < T_BODY)
		memcpy(m->body + m->body_len, d.data,
		       PT_MIN(d.len, T_BODY - m->body_len));
	m->body_len += d.len;
}

/*
 * Decode a chunked body from buf[*off..n) in pieces of `piece` bytes,
 * each in a fresh buffer. Returns PT_OK (*off after the body), PT_AGAIN
 * or 400.
 */
static int
t_chunked(const struct t_cfg *cfg, const char *buf, size_t n, size_t *off,
	  size_t piece, struct t_msg *m)
{
	struct pt_http_chunked c;
	struct pt_str d;
	int rc = PT_AGAIN;

	pt_http_chunked_init(&c, cfg->chunk_line_max, cfg->trailers_max);
	while (*off < n) {
		size_t len = PT_MIN(piece, n - *off), used;
		char *tmp = malloc(len);
		const char *p = tmp;

		ck_assert_ptr_nonnull(tmp);
		memcpy(tmp, buf + *off, len);
		do {
			rc = pt_http_chunked_parse(&c, &p, tmp + len, &d);
			if (rc == PT_OK)
				t_append(m, d);
		} while (rc == PT_OK);
		used = (size_t)(p - tmp);
		free(tmp);
		ck_assert(rc != PT_AGAIN || used == len);
		*off += used;
		if (rc != PT_AGAIN)
			return rc == PT_DONE ? PT_OK : rc;
	}
	return rc;
}

/* Parse a head, adding "Host: localhost" to it if asked and missing. */
static int
t_parse(const struct t_cfg *cfg, char **hbuf, size_t *hl,
	struct pt_http_req_head *h, struct pt_http_header *hdrs)
{
	static const char add[] = "Host: localhost\r\n\r\n";
	int rc = pt_http_parse_head(*hbuf, *hl, h, hdrs, T_MAX_HDRS);
	char *b;

	if (rc != PT_OK || !cfg->add_host || h->known[PT_H_HOST] != NULL)
		return rc;
	b = malloc(*hl + sizeof(add) - 3);
	ck_assert_ptr_nonnull(b);
	memcpy(b, *hbuf, *hl - 2);
	memcpy(b + *hl - 2, add, sizeof(add) - 1);
	*hl += sizeof(add) - 3;
	free(*hbuf);
	*hbuf = b;
	return pt_http_parse_head(b, *hl, h, hdrs, T_MAX_HDRS);
}

/* Head steps after the scan; fills m; returns PT_OK or a status. */
static int
t_head(const struct t_cfg *cfg, const char *head, size_t hl,
       struct pt_http_req_head *h, struct t_msg *m, const char **stage)
{
	struct pt_http_header hdrs[T_MAX_HDRS];
	char *b = malloc(hl), *np;
	size_t nl;
	int rc;

	ck_assert_ptr_nonnull(b);
	memcpy(b, head, hl);
	*stage = "parse";
	rc = t_parse(cfg, &b, &hl, h, hdrs);
	if (rc == PT_OK) {
		t_copy(m->method, h->method);
		t_copy(m->target, h->target);
		t_copy(m->scheme, h->scheme);
		t_copy(m->authority, h->authority);
		t_copy(m->path, h->path);
		t_copy(m->query, h->query);
		m->form = (int)h->target_form;
		m->has_query = h->has_query;
		m->version = (int)h->version;
		m->nheaders = h->nheaders;
		*stage = "framing";
		rc = pt_http_check_framing(h);
	}
	if (rc == PT_OK) {
		m->content_length = h->content_length;
		m->chunked = h->chunked;
		m->keepalive = h->keepalive;
		m->upgrade = h->conn_upgrade;
		m->expect = h->expect_continue;
		m->tunnel = h->method_id == PT_HTTP_CONNECT ||
			    (h->conn_upgrade && h->known[PT_H_UPGRADE] != NULL);
		*stage = "host";
		rc = pt_http_check_host(h);
	}
	if (rc == PT_OK) {
		t_copy(m->host, h->host);
		t_copy(m->port, h->port);
		*stage = "path";
		if (h->target_form == PT_TARGET_ORIGIN ||
		    h->target_form == PT_TARGET_ABSOLUTE) {
			np = malloc(h->path.len);
			ck_assert_ptr_nonnull(np);
			rc = pt_http_normalize_path(h->path.data, h->path.len,
						    np, &nl, 0);
			if (rc == PT_OK) {
				ck_assert(nl <= h->path.len);
				t_copy(m->npath, (struct pt_str){np, nl});
			}
			free(np);
		}
	}
	/* the header array dies here: keep nothing that points into it */
	h->headers = NULL;
	memset(h->known, 0, sizeof(h->known));
	free(b);
	return rc;
}

static void
t_refuse(struct t_conn *r, int rc, const char *stage)
{
	r->status = rc;
	r->stage = stage;
}

/* Run a connection over in[0..n); see the file comment. */
static void
t_run(const struct t_cfg *cfg, const char *in, size_t n, int bytewise,
      struct t_conn *r)
{
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	for (;;) {
		struct t_msg *m = &r->msg[PT_MIN(r->messages, T_MAX_MSGS - 1)];
		struct pt_http_req_head h;
		struct pt_http_scan s;
		const char *stage;
		int rc;

		if (off == n) {
			r->status = PT_OK;
			return;
		}
		rc = t_scan(&s, in + off, n - off, &cfg->lim, bytewise);
		if (rc != PT_OK) {
			t_refuse(r, rc, rc == PT_AGAIN ? NULL : "scan");
			return;
		}
		ck_assert(s.start + s.head_len <= n - off);
		memset(m, 0, sizeof(*m));
		rc = t_head(cfg, in + off + s.start, s.head_len, &h, m, &stage);
		if (rc != PT_OK) {
			t_refuse(r, rc, stage);
			return;
		}
		off += s.start + s.head_len;
		if (h.chunked) {
			rc = t_chunked(cfg, in, n, &off, bytewise ? 1 : n, m);
		} else if (h.content_length > 0) {
			size_t cl = (size_t)h.content_length;

			rc = PT_AGAIN;
			if (h.content_length <= (int64_t)(n - off)) {
				t_append(m, (struct pt_str){in + off, cl});
				off += cl;
				rc = PT_OK;
			}
		}
		if (rc != PT_OK) {
			t_refuse(r, rc, rc == PT_AGAIN ? NULL : "body");
			return;
		}
		r->messages++;
		if (m->tunnel)
			r->upgraded = 1;
		else if (!h.keepalive)
			r->closed = 1;
		else
			continue;
		r->rest = n - off;
		r->status = PT_OK;
		return;
	}
}

/* The first difference between two runs, or NULL. */
static const char *
t_diff(const struct t_conn *a, const struct t_conn *b)
{
	if (a->status != b->status)
		return "status";
	if ((a->stage == NULL) != (b->stage == NULL) ||
	    (a->stage != NULL && strcmp(a->stage, b->stage) != 0))
		return "stage";
	if (a->messages != b->messages || a->rest != b->rest ||
	    a->closed != b->closed || a->upgraded != b->upgraded)
		return "messages/rest/closed/upgraded";
	for (unsigned i = 0; i < T_MAX_MSGS; i++) {
		const struct t_msg *x = &a->msg[i], *y = &b->msg[i];

		if (strcmp(x->method, y->method) ||
		    strcmp(x->target, y->target) || strcmp(x->host, y->host) ||
		    strcmp(x->port, y->port) || strcmp(x->npath, y->npath) ||
		    strcmp(x->query, y->query))
			return "head fields";
		if (x->body_len != y->body_len ||
		    memcmp(x->body, y->body, PT_MIN(x->body_len, T_BODY)))
			return "body";
		if (x->content_length != y->content_length ||
		    x->chunked != y->chunked || x->keepalive != y->keepalive ||
		    x->version != y->version || x->nheaders != y->nheaders)
			return "framing fields";
	}
	return NULL;
}

static int
t_status_ok(int st)
{
	return st == PT_OK || st == PT_AGAIN || st == 400 || st == 414 ||
	       st == 417 || st == 431 || st == 501 || st == 505;
}

/* Run whole and bytewise; they must agree. Returns the whole run. */
static void
t_run_both(const struct t_cfg *cfg, const char *in, size_t n,
	   struct t_conn *whole, const char *name)
{
	struct t_conn *bytes = malloc(sizeof(*bytes));
	const char *d;

	ck_assert_ptr_nonnull(bytes);
	t_run(cfg, in, n, 0, whole);
	t_run(cfg, in, n, 1, bytes);
	d = t_diff(whole, bytes);
	ck_assert_msg(d == NULL, "%s: whole and bytewise differ in %s (%d/%d)",
		      name, d, whole->status, bytes->status);
	ck_assert_msg(t_status_ok(whole->status), "%s: status %d", name,
		      whole->status);
	free(bytes);
}

/* ---- files ------------------------------------------------------------- */




/* ---- the corpus -------------------------------------------------------- */


struct t_expect {
	unsigned msg; /* 0-based */
	char key[24];
	char *val;
	size_t len;
	unsigned line;
};

enum { T_REQUEST, T_CHUNKED, T_HOST, T_PATH };

struct t_case {
	char name[128];
	unsigned line;
	int mode;       /* T_REQUEST, or one helper alone */
	unsigned flags; /* pt_http_normalize_path() flags */
	struct t_cfg cfg;
	char *raw;
	size_t raw_len;
	struct t_expect exp[48];
	unsigned nexp, msg;
	int has_status;
};



/*
 * Append the bytes of a raw line (or of an "input" value, crlf 0), and
 * CRLF if asked and the line does not end in '\'.
 */
static void
t_case_raw(struct t_case *tc, const char *l, size_t len, unsigned line,
	   int crlf)
{
	int cont;
	long n;

	tc->raw = realloc(tc->raw, tc->raw_len + len + 2);
	ck_assert_ptr_nonnull(tc->raw);
	n = t_unescape(l, len, tc->raw + tc->raw_len, &cont);
	ck_assert_msg(n >= 0, "corpus:%u: bad escape", line);
	tc->raw_len += (size_t)n;
	if (!cont && crlf) {
		memcpy(tc->raw + tc->raw_len, "\r\n", 2);
		tc->raw_len += 2;
	}
}

/* One "key value" line of a case. */
static void
t_case_key(struct t_case *tc, char *l, size_t len, unsigned line)
{
	char *sp = memchr(l, ' ', len), *v;
	size_t kl = sp ? (size_t)(sp - l) : len;
	struct t_expect *e;
	int cont;
	long n;

	v = sp ? sp + 1 : l + len;
	l[len] = '\0';
	l[kl] = '\0';
	if (!strcmp(l, "line_max"))
		tc->cfg.lim.line_max = t_num(v, line);
	else if (!strcmp(l, "head_max"))
		tc->cfg.lim.head_max = t_num(v, line);
	else if (!strcmp(l, "headers_max"))
		tc->cfg.lim.headers_max = (unsigned)t_num(v, line);
	else if (!strcmp(l, "chunk_line_max"))
		tc->cfg.chunk_line_max = t_num(v, line);
	else if (!strcmp(l, "trailers_max"))
		tc->cfg.trailers_max = t_num(v, line);
	else if (!strcmp(l, "mode")) {
		tc->mode = !strcmp(v, "request")   ? T_REQUEST
			   : !strcmp(v, "chunked") ? T_CHUNKED
			   : !strcmp(v, "host")    ? T_HOST
			   : !strcmp(v, "path")    ? T_PATH
						   : -1;
		ck_assert_msg(tc->mode >= 0, "corpus:%u: bad mode", line);
	} else if (!strcmp(l, "merge_slashes"))
		tc->flags = t_num(v, line) ? PT_NORM_MERGE_SLASHES : 0;
	else if (!strcmp(l, "input"))
		t_case_raw(tc, v, strlen(v), line, 0);
	else if (!strcmp(l, "msg")) {
		tc->msg = (unsigned)t_num(v, line) - 1;
		ck_assert_msg(tc->msg < T_MAX_MSGS, "corpus:%u: msg", line);
	} else {
		ck_assert_msg(tc->nexp < PT_ARRAY_SIZE(tc->exp) && kl < 24,
			      "corpus:%u: too many keys", line);
		e = &tc->exp[tc->nexp++];
		e->msg = tc->msg;
		e->line = line;
		strcpy(e->key, l);
		e->val = malloc(strlen(v) + 1);
		ck_assert_ptr_nonnull(e->val);
		n = t_unescape(v, strlen(v), e->val, &cont);
		ck_assert_msg(n >= 0 && !cont, "corpus:%u: bad escape", line);
		e->len = (size_t)n;
		if (!strcmp(l, "status"))
			tc->has_status = 1;
	}
}

static struct t_case *
t_load_corpus(unsigned *ncases)
{
	size_t len, ll;
	char *text = t_slurp(PT_TEST_DATA "/http_requests.txt", &len);
	char *p = text, *l;
	struct t_case *cases = NULL, *tc = NULL;
	unsigned n = 0, line = 0;

	ck_assert_msg(text != NULL, "can not read %s",
		      PT_TEST_DATA "/http_requests.txt");
	while ((l = t_line(&p, text + len, &ll)) != NULL) {
		line++;
		if (ll >= 3 && !memcmp(l, "===", 3)) {
			cases = realloc(cases, (n + 1) * sizeof(*cases));
			ck_assert_ptr_nonnull(cases);
			tc = &cases[n++];
			memset(tc, 0, sizeof(*tc));
			tc->cfg = t_default_cfg;
			tc->line = line;
			snprintf(tc->name, sizeof(tc->name), "%.*s",
				 (int)(ll > 4 ? ll - 4 : 0), l + 4);
		} else if (ll == 0 || l[0] == '#') {
			continue;
		} else {
			ck_assert_msg(tc != NULL, "corpus:%u: outside a case",
				      line);
			if (l[0] == '|' && ll > 1 && l[1] == ' ')
				t_case_raw(tc, l + 2, ll - 2, line, 1);
			else if (l[0] == '|')
				t_case_raw(tc, l + 1, ll - 1, line, 1);
			else
				t_case_key(tc, l, ll, line);
		}
	}
	free(text);
	*ncases = n;
	return cases;
}

static const char *const t_forms[] = {
	"origin",
	"absolute",
	"authority",
	"asterisk",
};

static const char *
t_status_name(int st, char *buf, size_t cap)
{
	if (st == PT_OK)
		return "OK";
	if (st == PT_AGAIN)
		return "AGAIN";
	snprintf(buf, cap, "%d", st);
	return buf;
}

/* Per-message keys: where their value lives in struct t_msg. */
static const struct t_key {
	const char *key;
	char type; /* 's' string, 'i' int, 'l' long long, 'u' unsigned */
	size_t off;
} t_keys[] = {
	{"method", 's', offsetof(struct t_msg, method)},
	{"target", 's', offsetof(struct t_msg, target)},
	{"scheme", 's', offsetof(struct t_msg, scheme)},
	{"authority", 's', offsetof(struct t_msg, authority)},
	{"path", 's', offsetof(struct t_msg, path)},
	{"npath", 's', offsetof(struct t_msg, npath)},
	{"query", 's', offsetof(struct t_msg, query)},
	{"host", 's', offsetof(struct t_msg, host)},
	{"port", 's', offsetof(struct t_msg, port)},
	{"has_query", 'i', offsetof(struct t_msg, has_query)},
	{"version", 'i', offsetof(struct t_msg, version)},
	{"chunked", 'i', offsetof(struct t_msg, chunked)},
	{"keepalive", 'i', offsetof(struct t_msg, keepalive)},
	{"upgrade", 'i', offsetof(struct t_msg, upgrade)},
	{"expect_continue", 'i', offsetof(struct t_msg, expect)},
	{"content_length", 'l', offsetof(struct t_msg, content_length)},
	{"headers", 'u', offsetof(struct t_msg, nheaders)},
};

/* The actual value of an expectation's key, as text in *val, *len. */
static void
t_actual(const struct t_conn *r, const struct t_expect *e, char *out,
	 size_t cap, const char **val, size_t *len)
{
	const struct t_msg *m = &r->msg[e->msg];
	const char *base = (const char *)m;
	long long v = 0;

	*val = out;
	if (!strcmp(e->key, "body")) {
		*val = m->body;
		*len = PT_MIN(m->body_len, T_BODY);
		return;
	} else if (!strcmp(e->key, "status")) {
		*val = t_status_name(r->status, out, cap);
	} else if (!strcmp(e->key, "stage")) {
		*val = r->stage ? r->stage : "-";
	} else if (!strcmp(e->key, "form")) {
		*val = t_forms[m->form & 3];
	} else if (!strcmp(e->key, "messages")) {
		snprintf(out, cap, "%u", r->messages);
	} else if (!strcmp(e->key, "rest")) {
		snprintf(out, cap, "%zu", r->rest);
	} else {
		const struct t_key *k = NULL;

		for (unsigned i = 0; i < PT_ARRAY_SIZE(t_keys) && !k; i++)
			if (!strcmp(e->key, t_keys[i].key))
				k = &t_keys[i];
		if (k == NULL)
			ck_abort_msg("corpus:%u: unknown key '%s'", e->line,
				     e->key);
		else if (k->type == 's')
			*val = base + k->off;
		else if (k->type == 'i')
			v = *(const int *)(const void *)(base + k->off);
		else if (k->type == 'l')
			v = *(const long long *)(const void *)(base + k->off);
		else
			v = *(const unsigned *)(const void *)(base + k->off);
		if (k != NULL && k->type != 's')
			snprintf(out, cap, "%lld", v);
	}
	*len = strlen(*val);
}

/* Check a case's expectations; 1 if they hold, else print why. */
static int
t_check_case(const struct t_case *tc, const struct t_conn *r)
{
	char buf[64], a[T_BODY * 4 + 8], b[T_BODY * 4 + 8];
	int ok = 1;

	for (unsigned i = 0; i < tc->nexp; i++) {
		const struct t_expect *e = &tc->exp[i];
		const char *val;
		size_t len;

		t_actual(r, e, buf, sizeof(buf), &val, &len);
		if (len == e->len && memcmp(val, e->val, len) == 0)
			continue;
		fprintf(stderr, "corpus:%u: %s: %s%s is '%s', expected '%s'\n",
			e->line, tc->name, e->key, e->msg ? " (msg > 1)" : "",
			t_show(val, len, a, sizeof(a)),
			t_show(e->val, e->len, b, sizeof(b)));
		ok = 0;
	}
	return ok;
}

/*
 * A chunked body alone, decoded in pieces of every size from the whole
 * input down to one byte; all must agree with the whole run.
 */
static void
t_run_chunked(const struct t_case *tc, struct t_conn *r)
{
	struct t_msg *m = malloc(sizeof(*m));
	size_t n = tc->raw_len, off;

	ck_assert_ptr_nonnull(m);
	for (size_t piece = n > 0 ? n : 1; piece > 0; piece--) {
		int rc;

		memset(m, 0, sizeof(*m));
		off = 0;
		rc = t_chunked(&tc->cfg, tc->raw, n, &off, piece, m);
		if (piece == PT_MAX(n, 1)) {
			r->status = rc;
			r->rest = rc == PT_OK ? n - off : 0;
			r->msg[0] = *m;
		}
		ck_assert_msg(rc == r->status &&
				      m->body_len == r->msg[0].body_len &&
				      !memcmp(m->body, r->msg[0].body,
					      PT_MIN(m->body_len, T_BODY)) &&
				      (rc != PT_OK || n - off == r->rest),
			      "%s: pieces of %zu differ", tc->name, piece);
	}
	free(m);
}

/* The modes that give the input to one helper alone. */
static void
t_run_helper(const struct t_case *tc, struct t_conn *r)
{
	size_t n = tc->raw_len, ol;
	char *b = malloc(n > 0 ? n : 1), *out = malloc(n > 0 ? n : 1);
	struct pt_str host, port;

	ck_assert(b != NULL && out != NULL);
	memset(r, 0, sizeof(*r));
	memcpy(b, tc->raw, n);
	if (tc->mode == T_CHUNKED) {
		t_run_chunked(tc, r);
	} else if (tc->mode == T_HOST) {
		r->status = pt_http_parse_host(b, n, &host, &port);
		if (r->status == PT_OK) {
			t_copy(r->msg[0].host, host);
			t_copy(r->msg[0].port, port);
		}
	} else {
		r->status = pt_http_normalize_path(b, n, out, &ol, tc->flags);
		if (r->status == PT_OK) {
			ck_assert(ol <= n);
			t_copy(r->msg[0].npath, (struct pt_str){out, ol});
		}
	}
	free(b);
	free(out);
}

START_TEST(test_corpus)
{
	unsigned n, failed = 0;
	struct t_case *cases = t_load_corpus(&n);
	struct t_conn *r = malloc(sizeof(*r));

	ck_assert_ptr_nonnull(r);
	ck_assert_msg(n >= 150, "corpus has %u cases, want >= 150", n);
	for (unsigned i = 0; i < n; i++) {
		struct t_case *tc = &cases[i];

		ck_assert_msg(tc->has_status, "corpus:%u: %s: no status",
			      tc->line, tc->name);
		if (tc->mode == T_REQUEST)
			t_run_both(&tc->cfg, tc->raw, tc->raw_len, r, tc->name);
		else
			t_run_helper(tc, r);
		if (!t_check_case(tc, r))
			failed++;
		for (unsigned k = 0; k < tc->nexp; k++)
			free(tc->exp[k].val);
		free(tc->raw);
	}
	printf("http_requests.txt: %u cases, %u failed\n", n, failed);
	free(cases);
	free(r);
	ck_assert_msg(failed == 0, "%u corpus cases failed", failed);
}
END_TEST

/* ---- the llhttp vectors ------------------------------------------------ */

/*
 * Vectors valid for llhttp that portier refuses on purpose, by file and
 * heading. Each entry must be refused; an entry that is accepted fails the
 * test (a stale exception).
 */
static const struct t_exception {
	const char *file, *name, *why;
} t_exceptions[] = {
	{"method.md", "SOURCE request with ICE",
	 "ICE/1.0 (Icecast) is not HTTP"},
	{"method.md", "OPTIONS request with RTSP", "RTSP/1.0 is not HTTP"},
	{"method.md", "ANNOUNCE request with RTSP", "RTSP/1.0 is not HTTP"},
	{"method.md", "PRI request HTTP2",
	 "the HTTP/2 preface (RFC 9113 3.4) is no HTTP/1 request; asterisk-"
	 "form is for OPTIONS only"},
	{"method.md", "M-SEARCH request",
	 "SSDP (HTTP over UDP multicast); asterisk-form is for OPTIONS only "
	 "(RFC 9112 3.2.4)"},
	{"sample.md", "No HTTP version",
	 "HTTP/0.9 simple request: no version, not supported"},
	{"uri.md", "Fragment in URI",
	 "a fragment is never sent (RFC 9112 3.2): 400"},
	{"uri.md", "`host:port` and basic auth",
	 "userinfo in an http URI is an error (RFC 9110 4.2.4)"},
	{"transfer-encoding.md",
	 "POST with `chunked` as last transfer-encoding",
	 "deflate transfer coding not implemented: 501 (and a fragment)"},
	{"transfer-encoding.md",
	 "POST with `chunked` as last transfer-encoding (multiple headers)",
	 "deflate transfer coding not implemented: 501 (and a fragment)"},
};

struct t_vec {
	const char *file;
	char name[200], type[64];
	int skip_body, error, in_http, in_log;
	unsigned complete, line;
	char *http, *last;
	size_t http_len;
};

struct t_tally {
	unsigned accepted, refused, exceptions, failed;
	unsigned used[PT_ARRAY_SIZE(t_exceptions)];
};


static const struct t_exception *
t_exception(const struct t_vec *v, unsigned *idx)
{
	for (unsigned i = 0; i < PT_ARRAY_SIZE(t_exceptions); i++) {
		if (!strcmp(t_exceptions[i].file, v->file) &&
		    !strcmp(t_exceptions[i].name, v->name)) {
			*idx = i;
			return &t_exceptions[i];
		}
	}
	return NULL;
}

/*
 * Judge one vector. Refused: a status, or data left unread after a close.
 * A lenient vector must be refused (we are strict), so must a strict one
 * whose log ends in an error; a "Pause on CONNECT/Upgrade" or "PRI" line
 * is not an error: the message was complete. A valid one must be accepted
 * with as many complete messages as llhttp saw (unless skipBody).
 */
static void
t_vec_judge(struct t_vec *v, struct t_tally *t)
{
	static const struct t_cfg cfg = {{8192, 65536, 100}, 4096, 8192, 1};
	const struct t_exception *ex;
	struct t_conn *r = malloc(sizeof(*r));
	char *in = malloc(v->http_len * 2 + 1);
	int lenient, refused, ok;
	unsigned idx = 0;
	size_t n;

	ck_assert(r != NULL && in != NULL);
	lenient = !strncmp(v->type, "request-lenient", 15);
	if (strcmp(v->type, "request") && strcmp(v->type, "request-finish") &&
	    !lenient)
		goto out;
	n = t_vec_bytes(v->http, v->http_len, in);
	t_run_both(&cfg, in, n, r, v->name);
	refused = r->status >= 400 || (r->closed && r->rest > 0);
	ex = t_exception(v, &idx);
	if (ex != NULL) {
		ok = refused;
		t->used[idx]++;
		t->exceptions += refused;
	} else if (lenient || v->error) {
		ok = refused;
		t->refused += refused;
	} else {
		ok = !refused && (v->skip_body || r->messages == v->complete);
		t->accepted += ok;
	}
	if (!ok) {
		t->failed++;
		fprintf(stderr,
			"llhttp %s:%u: %s (%s): %s, status %d, %u of %u "
			"messages\n",
			v->file, v->line, v->name, v->type,
			ex        ? "stale exception"
			: refused ? "refused"
				  : "accepted",
			r->status, r->messages, v->complete);
	}
out:
	free(in);
	free(r);
}

/* Feed one line of a vector file to the reader. */
static void
t_vec_line(struct t_vec *v, char *l, size_t len, unsigned line,
	   struct t_tally *t)
{
	char *q;

	if (v->in_http) {
		if (len >= 3 && !memcmp(l, "```", 3)) {
			v->in_http = 0;
			return;
		}
		v->http = realloc(v->http, v->http_len + len + 1);
		ck_assert_ptr_nonnull(v->http);
		if (v->http_len > 0)
			v->http[v->http_len++] = '\n';
		memcpy(v->http + v->http_len, l, len);
		v->http_len += len;
	} else if (v->in_log) {
		if (len >= 3 && !memcmp(l, "```", 3)) {
			v->in_log = 0;
			v->error = v->last != NULL &&
				   strstr(v->last, " error code=") != NULL &&
				   strstr(v->last, "reason=\"Pause on") == NULL;
			t_vec_judge(v, t);
			free(v->last);
			v->last = NULL;
			return;
		}
		l[len] = '\0';
		if (strstr(l, " message complete") != NULL)
			v->complete++;
		if (len > 0) {
			free(v->last);
			v->last = strdup(l);
		}
	} else if (len > 0 && l[0] == '#') {
		while (len > 0 && (*l == '#' || *l == ' '))
			l++, len--;
		snprintf(v->name, sizeof(v->name), "%.*s", (int)len, l);
	} else if (len > 10 && !memcmp(l, "<!-- meta=", 10)) {
		l[len] = '\0';
		q = strstr(l, "\"type\"");
		v->type[0] = '\0';
		if (q != NULL && (q = strchr(q + 6, '"')) != NULL)
			sscanf(q + 1, "%63[^\"]", v->type);
		v->skip_body = strstr(l, "\"skipBody\": true") != NULL;
	} else if (len >= 7 && !memcmp(l, "```http", 7)) {
		v->in_http = 1;
		v->http_len = 0;
		v->complete = 0;
		v->line = line;
	} else if (len >= 6 && !memcmp(l, "```log", 6)) {
		v->in_log = 1;
	}
}


START_TEST(test_llhttp_vectors)
{
	const char *dir = PT_VECTORS_DIR "/llhttp/request";
	DIR *d = opendir(dir);
	struct dirent *de;
	char *names[64], path[1024], *text, *p, *l;
	unsigned nf = 0, line;
	struct t_tally t;
	size_t len, ll;

	if (d == NULL) {
		printf("llhttp vectors: %s absent, skipped\n", dir);
		return;
	}
	memset(&t, 0, sizeof(t));
	while ((de = readdir(d)) != NULL && nf < PT_ARRAY_SIZE(names))
		if (strlen(de->d_name) > 3 &&
		    !strcmp(de->d_name + strlen(de->d_name) - 3, ".md"))
			names[nf++] = strdup(de->d_name);
	closedir(d);
	qsort(names, nf, sizeof(names[0]), t_cmp_names);
	for (unsigned i = 0; i < nf; i++) {
		struct t_vec v;

		memset(&v, 0, sizeof(v));
		v.file = names[i];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		text = t_slurp(path, &len);
		ck_assert_msg(text != NULL, "can not read %s", path);
		p = text;
		line = 0;
		while ((l = t_line(&p, text + len, &ll)) != NULL)
			t_vec_line(&v, l, ll, ++line, &t);
		free(v.http);
		free(v.last);
		free(text);
	}
	printf("llhttp request vectors (%u files): %u accepted, %u refused, "
	       "%u exceptions\n",
	       nf, t.accepted, t.refused, t.exceptions);
	for (unsigned i = 0; i < PT_ARRAY_SIZE(t_exceptions); i++) {
		printf("  exception %s: %s: %s\n", t_exceptions[i].file,
		       t_exceptions[i].name, t_exceptions[i].why);
		ck_assert_msg(t.used[i] == 1,
			      "exception '%s' matched %u vectors",
			      t_exceptions[i].name, t.used[i]);
	}
	for (unsigned i = 0; i < nf; i++)
		free(names[i]);
	ck_assert_msg(t.failed == 0, "%u llhttp vectors failed", t.failed);
	ck_assert_msg(t.accepted + t.refused > 100, "too few vectors read");
}
END_TEST

/* ---- mutations --------------------------------------------------------- */


/* Mutate b[0..*n) in place (room for cap bytes): flip, cut, insert, copy. */
static void
t_mutate(uint64_t *seed, char *b, size_t *n, size_t cap)
{
	static const char pick[] = "\r\n\0 \t:;,=\"\\%/.?#*0aF\x7f\x80\xff";
	unsigned rounds = 1 + t_rand(seed) % 3;

	for (unsigned k = 0; k<rounds && * n> 0; k++) {
		size_t at = t_rand(seed) % *n, span;

		switch (t_rand(seed) % 5) {
		case 0: b[at] = pick[t_rand(seed) % (sizeof(pick) - 1)]; break;
		case 1: b[at] = (char)t_rand(seed); break;
		case 2: *n = at; break;
		case 3:
			if (*n + 2 <= cap) {
				memmove(b + at + 2, b + at, *n - at);
				memcpy(b + at, "\r\n", 2);
				*n += 2;
			}
			break;
		default:
			span = 1 + t_rand(seed) % 16; /* not inside PT_MIN */
			span = PT_MIN(*n - at, span);
			if (*n + span <= cap) {
				memmove(b + at + span, b + at, *n - at);
				*n += span;
			}
			break;
		}
	}
}

/* parse_head straight on bytes no scanner has vetted. */
static void
t_parse_raw(const char *in, size_t n)
{
	struct pt_http_header hdrs[8];
	struct pt_http_req_head h;
	char *b = malloc(n ? n : 1);
	int rc;

	ck_assert_ptr_nonnull(b);
	memcpy(b, in, n);
	rc = pt_http_parse_head(b, n, &h, hdrs, PT_ARRAY_SIZE(hdrs));
	ck_assert(rc == PT_OK || rc == 400 || rc == 431 || rc == 501 ||
		  rc == 505);
	if (rc == PT_OK) {
		rc = pt_http_check_framing(&h);
		ck_assert(rc == PT_OK || rc == 400 || rc == 417 || rc == 501);
		rc = pt_http_check_host(&h);
		ck_assert(rc == PT_OK || rc == 400);
	}
	free(b);
}

/* 600 mutations, fixed seed; PT_MUTATIONS=N asks for a longer run. */
START_TEST(test_mutations)
{
	unsigned n, runs = 0, count = 600;
	struct t_case *cases = t_load_corpus(&n);
	struct t_conn *r = malloc(sizeof(*r));
	uint64_t seed = 0x5eed2c0ffee1234ULL;
	const char *env = getenv("PT_MUTATIONS");

	ck_assert_ptr_nonnull(r);
	if (env != NULL && atoi(env) > 0)
		count = (unsigned)atoi(env);
	for (unsigned i = 0; i < count; i++) {
		struct t_case *tc = &cases[t_rand(&seed) % n];
		size_t len = tc->raw_len, cap = len + 64;
		char *b = malloc(cap);
		char name[160];

		ck_assert_ptr_nonnull(b);
		memcpy(b, tc->raw, len);
		t_mutate(&seed, b, &len, cap);
		snprintf(name, sizeof(name), "mutation %u of '%s'", i,
			 tc->name);
		t_run_both(&tc->cfg, b, len, r, name);
		t_parse_raw(b, len);
		runs++;
		free(b);
	}
	for (unsigned i = 0; i < n; i++) {
		for (unsigned k = 0; k < cases[i].nexp; k++)
			free(cases[i].exp[k].val);
		free(cases[i].raw);
	}
	printf("mutations: %u runs, each whole and bytewise\n", runs);
	free(cases);
	free(r);
}
END_TEST

/* ---- helpers, table driven --------------------------------------------- */

/* The next space-separated word of *p, or NULL at the end. */
static const char *
t_word(const char **p, size_t *len)
{
	const char *w = *p + strspn(*p, " ");

	*len = strcspn(w, " ");
	*p = w + *len;
	return *len > 0 ? w : NULL;
}

START_TEST(test_ids)
{
	/* field names in the order of their ids, any case */
	const char *hdr = "X-Other Host connection CONTENT-LENGTH "
			  "Transfer-Encoding Expect Upgrade TE Keep-Alive "
			  "Proxy-Connection If-Modified-Since "
			  "If-Unmodified-Since If-None-Match If-Match Range "
			  "If-Range Cookie user-agent Referer Authorization "
			  "Accept-Encoding X-Forwarded-For";
	const char *no_hdr = "Hos Hostx Content-Lengt Content_Length Accept "
			     "Upgrade-Insecure-Requests";
	/* methods in the order of their bits, then other registered ones */
	const char *bit =
		"GET HEAD POST PUT DELETE OPTIONS TRACE CONNECT PATCH";
	const char *other =
		"PURGE M-SEARCH QUERY PROPFIND SOURCE PRI ACL "
		"VERSION-CONTROL UPDATEREDIRECTREF BASELINE-CONTROL";
	const char *unknown = "get Get GETS GE ANNOUNCE DESCRIBE SETUP MKCOLA "
			      "FOO";
	const char *w;
	unsigned i = 0;
	size_t n;

	for (; (w = t_word(&hdr, &n)) != NULL; i++)
		ck_assert_msg(pt_http_header_id(w, n) == i, "header %.*s",
			      (int)n, w);
	ck_assert_uint_eq(i, PT_H__COUNT);
	while ((w = t_word(&no_hdr, &n)) != NULL)
		ck_assert_msg(pt_http_header_id(w, n) == PT_H_OTHER,
			      "header %.*s", (int)n, w);
	for (i = 0; (w = t_word(&bit, &n)) != NULL; i++)
		ck_assert_msg(pt_http_method_id(w, n) == 1u << i, "method %.*s",
			      (int)n, w);
	ck_assert_uint_eq(1u << i, PT_HTTP_OTHER);
	while ((w = t_word(&other, &n)) != NULL)
		ck_assert_msg(pt_http_method_id(w, n) == PT_HTTP_OTHER,
			      "method %.*s", (int)n, w);
	while ((w = t_word(&unknown, &n)) != NULL)
		ck_assert_msg(pt_http_method_id(w, n) == 0, "method %.*s",
			      (int)n, w);
	ck_assert_uint_eq(pt_http_header_id("", 0), PT_H_OTHER);
	ck_assert_uint_eq(pt_http_method_id("", 0), 0);
}
END_TEST

/* Status of one request built around byte c, through t_run. */
static int
t_byte_status(const char *fmt, unsigned char c)
{
	char in[256];
	struct t_conn *r = malloc(sizeof(*r));
	int n = 0, st;

	ck_assert_ptr_nonnull(r);
	for (const char *f = fmt; *f != '\0'; f++)
		in[n++] = *f == '@' ? (char)c : *f;
	t_run(&t_default_cfg, in, (size_t)n, 0, r);
	st = r->status;
	free(r);
	return st;
}

/*
 * The character classes, checked byte by byte against the RFC grammar
 * written out again here: tchar in field names, field-vchar in values,
 * the request-target, methods.
 */
START_TEST(test_char_classes)
{
	for (unsigned c = 0; c < 256; c++) {
		int alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			    (c >= 'A' && c <= 'Z');
		int tchar = alnum || (c && strchr("!#$%&'*+-.^_`|~", (int)c));
		int vchar = (c > 0x20 && c < 0x7f) || c >= 0x80;
		int upper = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			    c == '-' || c == '_';
		int st;

		st = t_byte_status(
			"GET / HTTP/1.1\r\nHost: h\r\nA@b: x\r\n\r\n",
			(unsigned char)c);
		/* ':' ends the name early: "A" and value "b: x" */
		ck_assert_msg((st == PT_OK) == (tchar || c == ':'),
			      "name byte %02x: %d", c, st);
		/* short values, and long ones read eight bytes at a time */
		for (unsigned k = 0; k < 3; k++) {
			static const char *const v[] = {
				"GET / HTTP/1.1\r\nHost: h\r\nA: x@y\r\n\r\n",
				"GET / HTTP/1.1\r\nHost: h\r\nA: "
				"0123456789ab@de\r\n\r\n",
				"GET / HTTP/1.1\r\nHost: h\r\nA: "
				"0123456@89abcdef01234\r\n\r\n",
			};

			st = t_byte_status(v[k], (unsigned char)c);
			ck_assert_msg((st == PT_OK) ==
					      (vchar || c == ' ' || c == '\t'),
				      "value byte %02x (%u): %d", c, k, st);
		}
		st = t_byte_status("GET /a?b@c HTTP/1.1\r\nHost: h\r\n\r\n",
				   (unsigned char)c);
		ck_assert_msg((st == PT_OK) ==
				      (c > 0x20 && c < 0x7f && c != '#'),
			      "query byte %02x: %d", c, st);
		st = t_byte_status("GET /a@b HTTP/1.1\r\nHost: h\r\n\r\n",
				   (unsigned char)c);
		/* '%' must start an escape: refused by normalize_path */
		ck_assert_msg((st == PT_OK) ==
				      (c > 0x20 && c < 0x7f && c != '#' &&
				       c != '\\' && c != '%'),
			      "path byte %02x: %d", c, st);
		st = t_byte_status("GE@ / HTTP/1.1\r\nHost: h\r\n\r\n",
				   (unsigned char)c);
		/* "GE" + SP is a well-formed unknown method too */
		ck_assert_msg(c == 'T'            ? st == PT_OK
			      : upper || c == ' ' ? st == 501
						  : st == 400,
			      "method byte %02x: %d", c, st);
		st = t_byte_status("GET / HTTP/1.@\r\nHost: h\r\n\r\n",
				   (unsigned char)c);
		ck_assert_msg((st == PT_OK) == (c >= '0' && c <= '9'),
			      "minor version byte %02x: %d", c, st);
		st = t_byte_status("GET / HTTP/@.1\r\nHost: h\r\n\r\n",
				   (unsigned char)c);
		ck_assert_msg(c == '1'               ? st == PT_OK
			      : c >= '0' && c <= '9' ? st == 505
						     : st == 400,
			      "major version byte %02x: %d", c, st);
	}
}
END_TEST

static Suite *
t_suite(void)
{
	Suite *s = suite_create("http_parse");
	TCase *tc = tcase_create("all");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_corpus);
	tcase_add_test(tc, test_llhttp_vectors);
	tcase_add_test(tc, test_mutations);
	tcase_add_test(tc, test_ids);
	tcase_add_test(tc, test_char_classes);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return pt_unit_run(t_suite());
}
