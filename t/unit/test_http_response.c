/*
 * test_http_response.c: unit tests of src/http_resp.c (Check).
 *
 * Most of the coverage is data, read by two drivers that share one model
 * of a backend connection (t_run: scan, parse, framing for the request's
 * method, body by Content-Length, chunked (pt_http_chunked_parse) or until
 * the close, then the next response: after an interim 1xx, or when the
 * connection stays alive; until the input ends, a refusal, a close or a
 * switch to a tunnel):
 *   - t/unit/data/http_responses.txt, our corpus (format at its top), each
 *     case run twice, fed whole and byte by byte (each step in a fresh
 *     buffer of exactly the bytes given, so that a read past the end shows
 *     under ASan and valgrind); both runs must agree;
 *   - the llhttp response vectors, read in place from PT_VECTORS_DIR; not
 *     part of the project, so the test skips with a note when they are
 *     absent.
 * Then a mutation test over the corpus inputs, with scan and parse held
 * to the same verdict, and table tests of the status line byte by byte.
 */
#include "core.h"
#include "http_parse.h"
#include "http_resp.h"

#include <check.h>

#include "unit.h"
#include "text.h"
#include <dirent.h>

#define T_MAX_MSGS 8
#define T_MAX_HDRS 128
#define T_STR      256
#define T_BODY     4096

/* What the runner saw of one response. */
struct t_msg {
	char reason[T_STR];
	char body[T_BODY];
	size_t body_len;
	int code, version, chunked, until_close, no_body, keepalive, upgrade;
	long long content_length;
	unsigned nheaders;
};

/* What the runner saw of a connection. */
struct t_conn {
	int status;        /* PT_OK, PT_AGAIN or PT_ERROR */
	const char *stage; /* where the refusal came from */
	const char *why;   /* its message */
	unsigned heads;    /* heads parsed and framed */
	unsigned messages; /* complete responses (interim ones included) */
	size_t rest;       /* bytes after a close or a switch to a tunnel */
	int closed, upgraded, eof; /* eof: the last body ends at the close */
	struct t_msg msg[T_MAX_MSGS];
};

struct t_cfg {
	struct pt_http_limits lim;
	size_t chunk_line_max, trailers_max;
	unsigned method; /* PT_HTTP_* bit of the request answered */
};

static const struct t_cfg t_default_cfg = {
	{1024, 8192, 64}, 256, 1024, PT_HTTP_GET};

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
t_scan(struct pt_http_resp_scan *s, const char *buf, size_t n,
       const struct pt_http_limits *lim, int bytewise, const char **why)
{
	int rc = PT_AGAIN;

	memset(s, 0, sizeof(*s));
	*why = NULL;
	for (size_t l = bytewise ? 1 : n; l <= n && rc == PT_AGAIN; l++) {
		char *b = malloc(l);

		ck_assert_ptr_nonnull(b);
		memcpy(b, buf, l);
		rc = pt_http_resp_scan(s, b, l, lim, why);
		free(b);
	}
	ck_assert(rc == PT_OK || rc == PT_AGAIN || rc == PT_ERROR);
	ck_assert(rc != PT_ERROR || *why != NULL);
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
 * or PT_ERROR.
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
			return rc == PT_DONE ? PT_OK : PT_ERROR;
	}
	return rc;
}

/*
 * Parse and frame one head; fills m. The whole run parses the scanned
 * bytes with their leading empty lines, the bytewise run from the status
 * line: both forms must give the same.
 */
static int
t_head(const struct t_cfg *cfg, const char *in,
       const struct pt_http_resp_scan *s, int from_start,
       struct pt_http_resp_head *h, struct t_msg *m, struct t_conn *r)
{
	struct pt_http_header hdrs[T_MAX_HDRS];
	size_t skip = from_start ? s->start : 0, hl = s->head_len - skip;
	char *b = malloc(hl);
	int rc;

	ck_assert_ptr_nonnull(b);
	memcpy(b, in + skip, hl);
	r->stage = "parse";
	rc = pt_http_resp_parse(b, hl, h, hdrs, T_MAX_HDRS, &r->why);
	/* the scanner applies every rule of the parser */
	ck_assert_msg(rc == PT_OK || cfg->lim.headers_max >= T_MAX_HDRS,
		      "scan accepted, parse refused: %s", r->why);
	if (rc == PT_OK) {
		m->code = h->status;
		m->version = (int)h->version;
		t_copy(m->reason, h->reason);
		m->nheaders = h->nheaders;
		r->stage = "framing";
		rc = pt_http_resp_framing(h, cfg->method, &r->why);
	}
	if (rc == PT_OK) {
		m->content_length = h->content_length;
		m->chunked = h->chunked;
		m->until_close = h->until_close;
		m->no_body = h->no_body;
		m->keepalive = h->keepalive;
		m->upgrade = h->conn_upgrade;
		ck_assert(h->no_body + h->chunked + h->until_close +
				  (h->content_length >= 0) ==
			  1);
		ck_assert(!h->keepalive || !h->until_close);
	}
	ck_assert(rc == PT_OK || (rc == PT_ERROR && r->why != NULL));
	/* the header array dies here: keep nothing that points into it */
	h->headers = NULL;
	memset(h->known, 0, sizeof(h->known));
	free(b);
	return rc;
}

/*
 * The body of a framed response from in[*off..n); PT_OK when complete.
 * What arrived of an incomplete body is kept too, as llhttp reports it.
 */
static int
t_body(const struct t_cfg *cfg, const struct pt_http_resp_head *h,
       const char *in, size_t n, size_t *off, int bytewise, struct t_msg *m)
{
	size_t got;

	if (h->chunked)
		return t_chunked(cfg, in, n, off, bytewise ? 1 : n, m);
	if (h->content_length <= 0)
		return PT_OK;
	got = (size_t)PT_MIN((int64_t)(n - *off), h->content_length);
	if (got > 0)
		t_append(m, (struct pt_str){in + *off, got});
	*off += got;
	return (int64_t)got == h->content_length ? PT_OK : PT_AGAIN;
}

/* Run a backend connection over in[0..n); see the file comment. */
static void
t_run(const struct t_cfg *cfg, const char *in, size_t n, int bytewise,
      struct t_conn *r)
{
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	for (;;) {
		struct t_msg *m = &r->msg[PT_MIN(r->heads, T_MAX_MSGS - 1)];
		struct pt_http_resp_head h;
		struct pt_http_resp_scan s;
		int rc, st;

		r->stage = NULL;
		if (off == n) {
			r->status = PT_OK;
			return;
		}
		rc = t_scan(&s, in + off, n - off, &cfg->lim, bytewise,
			    &r->why);
		if (rc != PT_OK) {
			r->status = rc;
			r->stage = rc == PT_ERROR ? "scan" : NULL;
			return;
		}
		ck_assert(s.start < s.head_len && s.head_len <= n - off);
		memset(m, 0, sizeof(*m));
		rc = t_head(cfg, in + off, &s, bytewise, &h, m, r);
		if (rc != PT_OK) {
			r->status = rc;
			return;
		}
		r->heads++;
		r->stage = NULL;
		off += s.head_len;
		if (h.until_close) {
			if (n > off)
				t_append(m, (struct pt_str){in + off, n - off});
			r->eof = 1;
			r->status = PT_OK;
			return;
		}
		rc = t_body(cfg, &h, in, n, &off, bytewise, m);
		if (rc != PT_OK) {
			r->status = rc;
			r->stage = rc == PT_ERROR ? "body" : NULL;
			r->why = rc == PT_ERROR ? "chunked" : NULL;
			return;
		}
		r->messages++;
		st = h.status;
		if (st == 101 ||
		    ((cfg->method & PT_HTTP_CONNECT) && st >= 200 && st < 300))
			r->upgraded = 1;
		else if (st < 200 || h.keepalive)
			continue; /* interim, or the next response */
		else
			r->closed = 1;
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
	if ((a->why == NULL) != (b->why == NULL) ||
	    (a->why != NULL && strcmp(a->why, b->why) != 0))
		return "why";
	if (a->heads != b->heads || a->messages != b->messages ||
	    a->rest != b->rest || a->closed != b->closed ||
	    a->upgraded != b->upgraded || a->eof != b->eof)
		return "heads/messages/rest/closed/upgraded/eof";
	for (unsigned i = 0; i < T_MAX_MSGS; i++) {
		const struct t_msg *x = &a->msg[i], *y = &b->msg[i];

		if (strcmp(x->reason, y->reason) || x->code != y->code ||
		    x->version != y->version || x->nheaders != y->nheaders)
			return "head fields";
		if (x->body_len != y->body_len ||
		    memcmp(x->body, y->body, PT_MIN(x->body_len, T_BODY)))
			return "body";
		if (x->content_length != y->content_length ||
		    x->chunked != y->chunked ||
		    x->until_close != y->until_close ||
		    x->no_body != y->no_body || x->keepalive != y->keepalive ||
		    x->upgrade != y->upgrade)
			return "framing fields";
	}
	return NULL;
}

/* Run whole and bytewise; they must agree. *whole gets the whole run. */
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
	ck_assert_msg(
		d == NULL, "%s: whole and bytewise differ in %s (%d/%d, %s/%s)",
		name, d, whole->status, bytes->status,
		whole->why ? whole->why : "-", bytes->why ? bytes->why : "-");
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

struct t_case {
	char name[128];
	unsigned line;
	struct t_cfg cfg;
	char *raw;
	size_t raw_len;
	struct t_expect exp[48];
	unsigned nexp, msg;
	int has_status;
};



/* Append the bytes of a raw line, and CRLF unless it ends in '\'. */
static void
t_case_raw(struct t_case *tc, const char *l, size_t len, unsigned line)
{
	int cont;
	long n;

	tc->raw = realloc(tc->raw, tc->raw_len + len + 2);
	ck_assert_ptr_nonnull(tc->raw);
	n = t_unescape(l, len, tc->raw + tc->raw_len, &cont);
	ck_assert_msg(n >= 0, "corpus:%u: bad escape", line);
	tc->raw_len += (size_t)n;
	if (!cont) {
		memcpy(tc->raw + tc->raw_len, "\r\n", 2);
		tc->raw_len += 2;
	}
}

/* A setting of a case; 0 if key is not one. */
static int
t_case_setting(struct t_case *tc, const char *key, const char *v, unsigned line)
{
	if (!strcmp(key, "line_max"))
		tc->cfg.lim.line_max = t_num(v, line);
	else if (!strcmp(key, "head_max"))
		tc->cfg.lim.head_max = t_num(v, line);
	else if (!strcmp(key, "headers_max"))
		tc->cfg.lim.headers_max = (unsigned)t_num(v, line);
	else if (!strcmp(key, "chunk_line_max"))
		tc->cfg.chunk_line_max = t_num(v, line);
	else if (!strcmp(key, "trailers_max"))
		tc->cfg.trailers_max = t_num(v, line);
	else if (!strcmp(key, "method")) {
		tc->cfg.method = pt_http_method_id(v, strlen(v));
		ck_assert_msg(tc->cfg.method != 0, "corpus:%u: bad method",
			      line);
	} else if (!strcmp(key, "msg")) {
		tc->msg = (unsigned)t_num(v, line) - 1;
		ck_assert_msg(tc->msg < T_MAX_MSGS, "corpus:%u: msg", line);
	} else
		return 0;
	return 1;
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
	if (t_case_setting(tc, l, v, line))
		return;
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

static struct t_case *
t_load_corpus(unsigned *ncases)
{
	size_t len, ll;
	char *text = t_slurp(PT_TEST_DATA "/http_responses.txt", &len);
	char *p = text, *l;
	struct t_case *cases = NULL, *tc = NULL;
	unsigned n = 0, line = 0;

	ck_assert_msg(text != NULL, "can not read %s",
		      PT_TEST_DATA "/http_responses.txt");
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
			if (l[0] == '|')
				t_case_raw(tc, l + 1 + (ll > 1 && l[1] == ' '),
					   ll - 1 - (ll > 1 && l[1] == ' '),
					   line);
			else
				t_case_key(tc, l, ll, line);
		}
	}
	free(text);
	*ncases = n;
	return cases;
}

static void
t_free_cases(struct t_case *cases, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		for (unsigned k = 0; k < cases[i].nexp; k++)
			free(cases[i].exp[k].val);
		free(cases[i].raw);
	}
	free(cases);
}

/* Per-response keys: where their value lives in struct t_msg. */
static const struct t_key {
	const char *key;
	char type; /* 's' string, 'i' int, 'l' long long, 'u' unsigned */
	size_t off;
} t_keys[] = {
	{"code", 'i', offsetof(struct t_msg, code)},
	{"version", 'i', offsetof(struct t_msg, version)},
	{"reason", 's', offsetof(struct t_msg, reason)},
	{"content_length", 'l', offsetof(struct t_msg, content_length)},
	{"chunked", 'i', offsetof(struct t_msg, chunked)},
	{"until_close", 'i', offsetof(struct t_msg, until_close)},
	{"no_body", 'i', offsetof(struct t_msg, no_body)},
	{"keepalive", 'i', offsetof(struct t_msg, keepalive)},
	{"upgrade", 'i', offsetof(struct t_msg, upgrade)},
	{"headers", 'u', offsetof(struct t_msg, nheaders)},
};

/* Per-connection keys that are counts or flags. */
static long long
t_conn_num(const struct t_conn *r, const char *key, int *found)
{
	*found = 1;
	if (!strcmp(key, "messages"))
		return r->messages;
	if (!strcmp(key, "heads"))
		return r->heads;
	if (!strcmp(key, "rest"))
		return (long long)r->rest;
	if (!strcmp(key, "closed"))
		return r->closed;
	if (!strcmp(key, "upgraded"))
		return r->upgraded;
	if (!strcmp(key, "eof"))
		return r->eof;
	*found = 0;
	return 0;
}

/* The actual value of an expectation's key, as text in *val, *len. */
static void
t_actual(const struct t_conn *r, const struct t_expect *e, char *out,
	 size_t cap, const char **val)
{
	const struct t_msg *m = &r->msg[e->msg];
	const char *base = (const char *)m;
	const struct t_key *k = NULL;
	long long v = 0;
	int found;

	*val = out;
	if (!strcmp(e->key, "status")) {
		*val = r->status == PT_OK      ? "OK"
		       : r->status == PT_AGAIN ? "AGAIN"
					       : "ERROR";
		return;
	}
	if (!strcmp(e->key, "stage") || !strcmp(e->key, "why")) {
		*val = e->key[0] == 's' ? r->stage : r->why;
		*val = *val != NULL ? *val : "-";
		return;
	}
	v = t_conn_num(r, e->key, &found);
	for (unsigned i = 0; i < PT_ARRAY_SIZE(t_keys) && !found && !k; i++)
		if (!strcmp(e->key, t_keys[i].key))
			k = &t_keys[i];
	if (!found && k == NULL)
		ck_abort_msg("corpus:%u: unknown key '%s'", e->line, e->key);
	else if (k != NULL && k->type == 's')
		*val = base + k->off;
	else if (k != NULL && k->type == 'i')
		v = *(const int *)(const void *)(base + k->off);
	else if (k != NULL && k->type == 'l')
		v = *(const long long *)(const void *)(base + k->off);
	else if (k != NULL)
		v = *(const unsigned *)(const void *)(base + k->off);
	if (k == NULL || k->type != 's')
		snprintf(out, cap, "%lld", v);
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

		if (!strcmp(e->key, "body")) {
			val = r->msg[e->msg].body;
			len = PT_MIN(r->msg[e->msg].body_len, T_BODY);
		} else {
			t_actual(r, e, buf, sizeof(buf), &val);
			len = strlen(val);
		}
		if (len == e->len && memcmp(val, e->val, len) == 0)
			continue;
		fprintf(stderr,
			"corpus:%u: %s: %s (response %u) is '%s', "
			"expected '%s'\n",
			e->line, tc->name, e->key, e->msg + 1,
			t_show(val, len, a, sizeof(a)),
			t_show(e->val, e->len, b, sizeof(b)));
		ok = 0;
	}
	return ok;
}

START_TEST(test_corpus)
{
	unsigned n, failed = 0;
	struct t_case *cases = t_load_corpus(&n);
	struct t_conn *r = malloc(sizeof(*r));

	ck_assert_ptr_nonnull(r);
	ck_assert_msg(n >= 100, "corpus has %u cases, want >= 100", n);
	for (unsigned i = 0; i < n; i++) {
		struct t_case *tc = &cases[i];

		ck_assert_msg(tc->has_status, "corpus:%u: %s: no status",
			      tc->line, tc->name);
		t_run_both(&tc->cfg, tc->raw, tc->raw_len, r, tc->name);
		if (!t_check_case(tc, r))
			failed++;
	}
	printf("http_responses.txt: %u cases, %u failed\n", n, failed);
	t_free_cases(cases, n);
	free(r);
	ck_assert_msg(failed == 0, "%u corpus cases failed", failed);
}
END_TEST

/* ---- the llhttp vectors ------------------------------------------------ */

/*
 * Vectors where we part with llhttp's strict mode on purpose, by file and
 * heading: accept 0, llhttp accepts and we refuse; accept 1, the other
 * way. Each entry must match exactly one vector and behave as stated.
 */
static const struct t_exception {
	const char *file, *name;
	int accept;
	const char *why;
} t_exceptions[] = {
	{"sample.md", "RTSP response", 0, "RTSP/1.1 is not HTTP"},
	{"sample.md", "ICE response", 0, "ICE/1.1 (Icecast) is not HTTP"},
	{"sample.md", "HTTP version 0.9", 0,
	 "a backend must answer in HTTP/1.x"},
};

#define T_HEADS 8

struct t_vec {
	const char *file;
	char name[200], type[64];
	int skip_body, error, in_http, in_log;
	unsigned complete, line, nheads;
	char *http, *last;
	size_t http_len;
	struct {
		int status, major, minor;
		unsigned flags;
		unsigned long long content_length;
	} head[T_HEADS];
	char body[T_BODY];
	size_t body_len;
};

struct t_tally {
	unsigned accepted, refused, exceptions, failed, chunked;
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
 * Does an accepted run agree with llhttp's log: the same heads, status
 * and version; the same framing for responses with a body (llhttp flags:
 * 0x08 chunked, 0x20 Content-Length; neither: until the close); the same
 * body bytes, chunked ones decoded?
 */
static const char *
t_vec_same(const struct t_vec *v, const struct t_conn *r)
{
	size_t o = 0;

	if (r->heads != v->nheads)
		return "heads";
	for (unsigned k = 0; k < PT_MIN(r->heads, T_HEADS); k++) {
		const struct t_msg *m = &r->msg[k];
		unsigned f = v->head[k].flags;

		if (m->code != v->head[k].status ||
		    m->version != v->head[k].major * 10 + v->head[k].minor)
			return "status or version";
		if (m->no_body)
			continue;
		if (m->chunked != !!(f & 0x08) ||
		    m->until_close != !(f & 0x28) ||
		    (m->content_length >= 0 &&
		     (unsigned long long)m->content_length !=
			     v->head[k].content_length))
			return "framing";
		if (o + m->body_len > v->body_len ||
		    memcmp(m->body, v->body + o, m->body_len) != 0)
			return "body";
		o += m->body_len;
	}
	return o == v->body_len ? NULL : "body length";
}

/*
 * Judge one vector. Refused: an error, or data left unread after a
 * close. A lenient vector must be refused (we are strict), so must a
 * strict one whose log ends in an error; a "Pause on CONNECT/Upgrade" line
 * is not an error: the message was complete. A valid one must be accepted
 * with as many complete messages as llhttp saw, and the same heads.
 */
static void
t_vec_judge(struct t_vec *v, struct t_tally *t)
{
	struct t_cfg cfg = {{8192, 65536, 100}, 4096, 8192, PT_HTTP_GET};
	const struct t_exception *ex;
	struct t_conn *r = malloc(sizeof(*r));
	char *in = malloc(v->http_len * 2 + 1);
	const char *diff = NULL;
	int lenient, refused, ok;
	unsigned idx = 0;
	size_t n;

	ck_assert(r != NULL && in != NULL);
	lenient = !strncmp(v->type, "response-lenient", 16);
	if (strcmp(v->type, "response") && strcmp(v->type, "response-finish") &&
	    !lenient)
		goto out;
	/* llhttp's skipBody: the response to a HEAD request */
	cfg.method = v->skip_body ? PT_HTTP_HEAD : PT_HTTP_GET;
	n = t_vec_bytes(v->http, v->http_len, in);
	t_run_both(&cfg, in, n, r, v->name);
	refused = r->status == PT_ERROR || (r->closed && r->rest > 0);
	ex = t_exception(v, &idx);
	if (ex != NULL) {
		ok = ex->accept ? !refused : refused;
		t->used[idx]++;
		t->exceptions += ok;
	} else if (lenient || v->error) {
		ok = refused;
		t->refused += ok;
	} else {
		diff = refused ? "refused" : t_vec_same(v, r);
		if (diff == NULL && r->messages != v->complete)
			diff = "complete messages";
		ok = diff == NULL;
		t->accepted += ok;
		for (unsigned k = 0; ok && k < PT_MIN(r->heads, T_HEADS); k++)
			t->chunked += r->msg[k].chunked;
	}
	if (!ok) {
		t->failed++;
		fprintf(stderr,
			"llhttp %s:%u: %s (%s): %s, status %d (%s), %u of %u "
			"messages\n",
			v->file, v->line, v->name, v->type,
			ex        ? "stale exception"
			: diff    ? diff
			: refused ? "refused"
				  : "accepted",
			r->status, r->why ? r->why : "-", r->messages,
			v->complete);
	}
out:
	free(in);
	free(r);
}

/* One log line: messages, heads and body spans. */
static void
t_vec_log(struct t_vec *v, char *l, size_t len)
{
	const char *q;
	size_t blen;

	l[len] = '\0';
	if (strstr(l, " message complete") != NULL)
		v->complete++;
	q = strstr(l, " headers complete ");
	if (q != NULL && v->nheads < T_HEADS) {
		ck_assert_int_eq(sscanf(q,
					" headers complete status=%d v=%d/%d "
					"flags=%x content_length=%llu",
					&v->head[v->nheads].status,
					&v->head[v->nheads].major,
					&v->head[v->nheads].minor,
					&v->head[v->nheads].flags,
					&v->head[v->nheads].content_length),
				 5);
		v->nheads++;
	}
	q = strstr(l, " span[body]=");
	if (q != NULL && sscanf(l, "off=%*u len=%zu", &blen) == 1) {
		q += 12;
		ck_assert(v->body_len + blen <= T_BODY);
		if (*q == '"') {
			ck_assert(strlen(q) == blen + 2);
			memcpy(v->body + v->body_len, q + 1, blen);
		} else {
			ck_assert(blen == 1);
			v->body[v->body_len] = !strcmp(q, "cr") ? '\r' : '\n';
		}
		v->body_len += blen;
	}
	if (len > 0) {
		free(v->last);
		v->last = strdup(l);
	}
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
		if (len < 3 || memcmp(l, "```", 3) != 0) {
			t_vec_log(v, l, len);
			return;
		}
		v->in_log = 0;
		v->error = v->last != NULL &&
			   strstr(v->last, " error code=") != NULL &&
			   strstr(v->last, "reason=\"Pause on") == NULL;
		t_vec_judge(v, t);
		free(v->last);
		v->last = NULL;
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
		v->line = line;
	} else if (len >= 6 && !memcmp(l, "```log", 6)) {
		v->in_log = 1;
		v->complete = v->nheads = 0;
		v->body_len = 0;
	}
}


/* Read one vector file, judging each vector as its log block ends. */
static void
t_vec_file(const char *dir, const char *name, struct t_tally *t)
{
	char path[1024], *text, *p, *l;
	unsigned line = 0;
	size_t len, ll;
	struct t_vec *v = calloc(1, sizeof(*v));

	ck_assert_ptr_nonnull(v);
	v->file = name;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	text = t_slurp(path, &len);
	ck_assert_msg(text != NULL, "can not read %s", path);
	p = text;
	while ((l = t_line(&p, text + len, &ll)) != NULL)
		t_vec_line(v, l, ll, ++line, t);
	free(v->http);
	free(v->last);
	free(v);
	free(text);
}

START_TEST(test_llhttp_vectors)
{
	const char *dir = PT_VECTORS_DIR "/llhttp/response";
	DIR *d = opendir(dir);
	struct dirent *de;
	char *names[64];
	unsigned nf = 0;
	struct t_tally t;

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
	for (unsigned i = 0; i < nf; i++)
		t_vec_file(dir, names[i], &t);
	printf("llhttp response vectors (%u files): %u accepted (%u chunked "
	       "bodies), %u refused, %u exceptions\n",
	       nf, t.accepted, t.chunked, t.refused, t.exceptions);
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
	ck_assert_msg(t.accepted + t.refused > 60, "too few vectors read");
}
END_TEST

/* ---- mutations --------------------------------------------------------- */


/* Mutate b[0..*n) in place (room for cap bytes): flip, cut, insert, copy. */
static void
t_mutate(uint64_t *seed, char *b, size_t *n, size_t cap)
{
	static const char pick[] = "\r\n\0 \t:;,=\"\\0159HTP/.\x7f\x80\xff";
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
			span = 1 + t_rand(seed) % 16;
			span = PT_MIN(*n - at, span);
			if (*n + span <= cap) {
				memmove(b + at + span, b + at, *n - at);
				*n += span;
			}
			break;
		}
	}
}

/*
 * Parse bytes no scanner has vetted, and hold scan and parse to one
 * verdict: parse accepts buf[0..n) as a head exactly when the scanner
 * (without limits) finds a head of n bytes in it.
 */
static void
t_cross(const char *in, size_t n)
{
	static const unsigned methods[] = {PT_HTTP_GET, PT_HTTP_HEAD,
					   PT_HTTP_CONNECT};
	struct pt_http_limits lim = {n + 1, n + 1, 1000};
	struct pt_http_header hdrs[16];
	struct pt_http_resp_head h;
	struct pt_http_resp_scan s;
	const char *why = NULL, *swhy = NULL;
	char *b = malloc(n ? n : 1);
	int rc, src;

	ck_assert_ptr_nonnull(b);
	memcpy(b, in, n);
	memset(&s, 0, sizeof(s));
	src = pt_http_resp_scan(&s, b, n, &lim, &swhy);
	rc = pt_http_resp_parse(b, n, &h, hdrs, PT_ARRAY_SIZE(hdrs), &why);
	ck_assert(rc == PT_OK || (rc == PT_ERROR && why != NULL));
	if (rc == PT_OK) {
		ck_assert_msg(src == PT_OK && s.head_len == n,
			      "parse accepted what the scan did not: %s",
			      swhy ? swhy : "-");
		for (unsigned i = 0; i < PT_ARRAY_SIZE(methods); i++) {
			why = NULL;
			rc = pt_http_resp_framing(&h, methods[i], &why);
			ck_assert(rc == PT_OK ||
				  (rc == PT_ERROR && why != NULL));
		}
	} else if (src == PT_OK && s.head_len == n) {
		ck_assert_msg(s.lines > PT_ARRAY_SIZE(hdrs),
			      "scan accepted what the parse did not: %s", why);
	}
	free(b);
}

/* 600 mutations, fixed seed; PT_MUTATIONS=N asks for a longer run. */
START_TEST(test_mutations)
{
	unsigned n, runs = 0, count = 600;
	struct t_case *cases = t_load_corpus(&n);
	struct t_conn *r = malloc(sizeof(*r));
	uint64_t seed = 0x7e5b0c0ffee4321ULL;
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
		if (len > 0)
			memcpy(b, tc->raw, len);
		t_mutate(&seed, b, &len, cap);
		snprintf(name, sizeof(name), "mutation %u of '%s'", i,
			 tc->name);
		t_run_both(&tc->cfg, b, len, r, name);
		t_cross(b, len);
		/* and the head alone, as the scanner cut it */
		for (size_t k = 3; k < len; k++)
			if (!memcmp(b + k - 3, "\r\n\r\n", 4)) {
				t_cross(b, k + 1);
				break;
			}
		runs++;
		free(b);
	}
	printf("mutations: %u runs, each whole and bytewise\n", runs);
	t_free_cases(cases, n);
	free(r);
}
END_TEST

/* ---- the status line, byte by byte ------------------------------------- */

/* Run one response built around byte c ('@' in fmt); its status. */
static int
t_byte_run(const char *fmt, unsigned char c, struct t_conn *r)
{
	char in[256];
	size_t n = 0;

	for (const char *f = fmt; *f != '\0'; f++)
		in[n++] = *f == '@' ? (char)c : *f;
	t_run_both(&t_default_cfg, in, n, r, fmt);
	return r->status;
}

START_TEST(test_bytes)
{
	struct t_conn *r = malloc(sizeof(*r));

	ck_assert_ptr_nonnull(r);
	for (unsigned c = 0; c < 256; c++) {
		int alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			    (c >= 'A' && c <= 'Z');
		int tchar = alnum || (c && strchr("!#$%&'*+-.^_`|~", (int)c));
		int vchar = (c > 0x20 && c < 0x7f) || c >= 0x80;
		int digit = c >= '0' && c <= '9';
		int st;

		st = t_byte_run("HTTP/1.1 200 O@K\r\nContent-Length: 0\r\n\r\n",
				(unsigned char)c, r);
		T_CHECK((st == PT_OK) == (vchar || c == ' ' || c == '\t'),
			"reason byte %02x: %d", c, st);
		st = t_byte_run("HTTP/1.@ 200 OK\r\nContent-Length: 0\r\n\r\n",
				(unsigned char)c, r);
		T_CHECK((st == PT_OK) == digit &&
				(!digit ||
				 r->msg[0].version == (c == '0' ? 10 : 11)),
			"minor version byte %02x: %d", c, st);
		st = t_byte_run("HTTP/@.1 200 OK\r\nContent-Length: 0\r\n\r\n",
				(unsigned char)c, r);
		T_CHECK((st == PT_OK) == (c == '1'), "major byte %02x: %d", c,
			st);
		st = t_byte_run("HTTP/1.1 2@0 OK\r\nContent-Length: 0\r\n\r\n",
				(unsigned char)c, r);
		T_CHECK((st == PT_OK) == digit, "code byte %02x: %d", c, st);
		st = t_byte_run("HTTP/1.1 200@OK\r\nContent-Length: 0\r\n\r\n",
				(unsigned char)c, r);
		T_CHECK((st == PT_OK) == (c == ' '), "SP byte %02x: %d", c, st);
		st = t_byte_run("@TTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
				(unsigned char)c, r);
		T_CHECK((st == PT_OK) == (c == 'H'), "first byte %02x: %d", c,
			st);
		/* ':' ends the name early: "A" and value "b: x" */
		st = t_byte_run("HTTP/1.1 204 OK\r\nA@b: x\r\n\r\n",
				(unsigned char)c, r);
		T_CHECK((st == PT_OK) == (tchar || c == ':'),
			"name byte %02x: %d", c, st);
		st = t_byte_run("HTTP/1.1 204 OK\r\nA: 0123456789ab@de\r\n\r\n",
				(unsigned char)c, r);
		T_CHECK((st == PT_OK) == (vchar || c == ' ' || c == '\t'),
			"value byte %02x: %d", c, st);
	}
	free(r);
}
END_TEST

/* Every three-digit status: 100..599 pass, and are read right. */
START_TEST(test_codes)
{
	struct t_conn *r = malloc(sizeof(*r));
	char in[64];

	ck_assert_ptr_nonnull(r);
	for (int code = 0; code < 1000; code++) {
		int n = snprintf(in, sizeof(in),
				 "HTTP/1.1 %03d X\r\nContent-Length: 0\r\n\r\n",
				 code);

		t_run(&t_default_cfg, in, (size_t)n, 0, r);
		T_CHECK((r->status == PT_OK) == (code >= 100 && code < 600),
			"status %03d: %d", code, r->status);
		T_CHECK(r->status != PT_OK || r->msg[0].code == code,
			"status %03d read as %d", code, r->msg[0].code);
	}
	free(r);
}
END_TEST

static Suite *
t_suite(void)
{
	Suite *s = suite_create("http_response");
	TCase *tc = tcase_create("all");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_corpus);
	tcase_add_test(tc, test_llhttp_vectors);
	tcase_add_test(tc, test_mutations);
	tcase_add_test(tc, test_bytes);
	tcase_add_test(tc, test_codes);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return pt_unit_run(t_suite());
}
