/*
 * test_tls_session.c: the shared TLS session cache and ticket keys.
 *
 * Workers are simulated in one process: several server SSL_CTXs set up
 * through pt_tls_sessions_setup() in one cycle share its zones (opened by
 * pt_shm_open, as the master does), and a client SSL_CTX connects to them
 * through in-memory BIO pairs. The certificate is made at start (EC
 * P-256, self-signed). The clock is pt_now, which the tests move. The
 * file includes tls_session.c to read its counters and reach its repair.
 */
#include "../../src/tls_session.c"

#include <check.h>

#include "tls_cert.h"
#include "unit.h"
#include <openssl/err.h>
#include <openssl/x509.h>
#include <sys/wait.h>
#include <unistd.h>

#define MB     (1024 * 1024)
#define MIN_MS ((int64_t)60 * 1000)

static EVP_PKEY *t_key;
static X509 *t_cert, *t_cert2; /* same key and name, another serial */

static struct pt_cycle t_cycle, t_cycle2;
static struct pt_conf t_cf, t_cf2;
static SSL_CTX *t_srv[12];
static unsigned t_nsrv;

/* ---- fixtures ---------------------------------------------------------- */

/* Before the tests run (Check's asserts work only inside them). */
static void
make_cert(void)
{
	t_key = t_tls_ec_key();
	t_cert = t_key ? t_tls_self_signed(t_key, "localhost", 1) : NULL;
	t_cert2 = t_key ? t_tls_self_signed(t_key, "localhost", 2) : NULL;
	if (t_cert == NULL || t_cert2 == NULL) {
		fprintf(stderr, "cannot make the test certificate\n");
		exit(EXIT_FAILURE);
	}
}

static void
cycle_init(struct pt_cycle *c, struct pt_conf *cf)
{
	memset(c, 0, sizeof(*c));
	memset(cf, 0, sizeof(*cf));
	c->pool = pt_pool_create();
	ck_assert_ptr_nonnull(c->pool);
	cf->cycle = c;
	cf->pool = c->pool;
	cf->to_stderr = 1;
}

static void
setup(void)
{
	pt_now.mono_ms = (int64_t)1000 * 1000 * 1000;
	cycle_init(&t_cycle, &t_cf);
	t_nsrv = 0;
}

static void
teardown(void)
{
	for (unsigned i = 0; i < t_nsrv; i++)
		SSL_CTX_free(t_srv[i]);
	pt_shm_close(&t_cycle);
	pt_pool_destroy(t_cycle.pool);
}

/* A server context of cycle cf ("a worker's view of a server block"),
 * made different by prep (its certificate is loaded after) if not NULL. */
static SSL_CTX *
server_prep(struct pt_conf *cf, size_t cache, int tickets, int64_t timeout,
	    const char *sid, X509 *(*prep)(SSL_CTX *ctx))
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	X509 *cert;

	ck_assert_ptr_nonnull(ctx);
	cert = prep != NULL ? prep(ctx) : t_cert;
	ck_assert_int_eq(SSL_CTX_use_certificate(ctx, cert), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, t_key), 1);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	ck_assert_int_eq(pt_tls_sessions_setup(cf, ctx, cache, tickets, timeout,
					       (const unsigned char *)sid,
					       strlen(sid)),
			 PT_OK);
	ck_assert_uint_lt(t_nsrv, PT_ARRAY_SIZE(t_srv));
	t_srv[t_nsrv++] = ctx;
	return ctx;
}

static SSL_CTX *
server(struct pt_conf *cf, size_t cache, int tickets, int64_t timeout,
       const char *sid)
{
	return server_prep(cf, cache, tickets, timeout, sid, NULL);
}

static void
open_zones(struct pt_cycle *c, struct pt_cycle *old)
{
	ck_assert_int_eq(pt_shm_open(c, old), PT_OK);
}

static SSL_CTX *
client(int version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	ck_assert_ptr_nonnull(ctx);
	SSL_CTX_set_min_proto_version(ctx, version);
	SSL_CTX_set_max_proto_version(ctx, version);
	return ctx;
}

static int
hs_step(SSL *ssl, int *done)
{
	int rc, err;

	if (*done)
		return 1;
	rc = SSL_do_handshake(ssl);
	if (rc == 1) {
		*done = 1;
		return 1;
	}
	err = SSL_get_error(ssl, rc);
	return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE;
}

/*
 * A handshake of a client of cctx (resuming resume if not NULL) with
 * sctx; *reused tells whether the server resumed. The client's session
 * after the handshake (with the tickets it received), for the caller to
 * free.
 */
static SSL_SESSION *
handshake(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *resume, int *reused)
{
	SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
	BIO *bs, *bc;
	int sd = 0, cd = 0;
	char buf[4];
	SSL_SESSION *sess;

	ck_assert(s != NULL && c != NULL);
	ck_assert_int_eq(BIO_new_bio_pair(&bs, 0, &bc, 0), 1);
	SSL_set_bio(s, bs, bs);
	SSL_set_bio(c, bc, bc);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	if (resume != NULL)
		ck_assert_int_eq(SSL_set_session(c, resume), 1);
	for (unsigned i = 0; i < 50 && !(sd && cd); i++) {
		ck_assert_msg(hs_step(c, &cd), "client handshake failed");
		ck_assert_msg(hs_step(s, &sd), "server handshake failed");
	}
	ck_assert(sd && cd);
	/* the client takes the tickets sent after the handshake */
	ck_assert_int_eq(SSL_write(s, "x", 1), 1);
	ck_assert_int_eq(SSL_read(c, buf, sizeof(buf)), 1);
	*reused = SSL_session_reused(s);
	ck_assert_int_eq(SSL_session_reused(c), *reused);
	sess = SSL_get1_session(c);
	ck_assert_ptr_nonnull(sess);
	/* a session of a connection not shut down cleanly is dropped */
	SSL_shutdown(c);
	SSL_shutdown(s);
	SSL_free(c);
	SSL_free(s);
	return sess;
}

/* Whether a client of cctx resumes sess with sctx. */
static int
handshake_resumes(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *sess)
{
	int reused;
	SSL_SESSION *r = handshake(sctx, cctx, sess, &reused);

	SSL_SESSION_free(r);
	return reused;
}

/* Full handshake on a, then resume on b: whether it resumed. A client
 * with client_opts (SSL_OP_NO_TICKET: one that takes no tickets). */
static int
resumes_across_opts(SSL_CTX *a, SSL_CTX *b, int version, long client_opts)
{
	SSL_CTX *cctx = client(version);
	SSL_SESSION *s1, *s2;
	int reused;

	SSL_CTX_set_options(cctx, (unsigned long)client_opts);
	s1 = handshake(a, cctx, NULL, &reused);
	ck_assert_int_eq(reused, 0);
	s2 = handshake(b, cctx, s1, &reused);
	SSL_SESSION_free(s1);
	SSL_SESSION_free(s2);
	SSL_CTX_free(cctx);
	return reused;
}

static int
resumes_across(SSL_CTX *a, SSL_CTX *b, int version)
{
	return resumes_across_opts(a, b, version, 0);
}

static struct tsc_root *
cache_root(struct tls_sess_cycle *cy)
{
	return *pt_shm_user(cy->cache);
}

static struct tls_sess_cycle *
cycle_of(SSL_CTX *ctx)
{
	return tls_sess_of(ctx)->cy;
}

static int
same_ticket(SSL_SESSION *a, SSL_SESSION *b)
{
	const unsigned char *ta, *tb;
	size_t la, lb;

	SSL_SESSION_get0_ticket(a, &ta, &la);
	SSL_SESSION_get0_ticket(b, &tb, &lb);
	return la > 0 && la == lb && memcmp(ta, tb, la) == 0;
}

/* ---- resumption across workers ----------------------------------------- */

START_TEST(test_tls12_session_ids)
{
	SSL_CTX *a = server(&t_cf, MB, 0, 5 * MIN_MS, "srv1");
	SSL_CTX *b = server(&t_cf, MB, 0, 5 * MIN_MS, "srv1");

	open_zones(&t_cycle, NULL);
	ck_assert_int_eq(resumes_across(a, b, TLS1_2_VERSION), 1);
	ck_assert_uint_eq(cache_root(cycle_of(a))->hits, 1);
	ck_assert_ptr_null(cycle_of(a)->keys); /* no tickets zone */
	ck_assert(SSL_CTX_get_options(a) & SSL_OP_NO_TICKET);
}
END_TEST

START_TEST(test_tls13_stateful)
{
	SSL_CTX *a = server(&t_cf, MB, 0, 5 * MIN_MS, "srv1");
	SSL_CTX *b = server(&t_cf, MB, 0, 5 * MIN_MS, "srv1");

	open_zones(&t_cycle, NULL);
	ck_assert_int_eq(resumes_across(a, b, TLS1_3_VERSION), 1);
	ck_assert_uint_ge(cache_root(cycle_of(a))->hits, 1);
}
END_TEST

START_TEST(test_tickets)
{
	SSL_CTX *a = server(&t_cf, 0, 1, 5 * MIN_MS, "srv1");
	SSL_CTX *b = server(&t_cf, 0, 1, 5 * MIN_MS, "srv1");

	open_zones(&t_cycle, NULL);
	ck_assert_ptr_null(cycle_of(a)->cache);
	ck_assert_int_eq(resumes_across(a, b, TLS1_3_VERSION), 1);
	ck_assert_int_eq(resumes_across(b, a, TLS1_2_VERSION), 1);
}
END_TEST

/* TLS 1.3 clients use a ticket once: a resumed session gets new ones,
 * and a chain of resumptions goes on. */
START_TEST(test_tls13_ticket_chain)
{
	SSL_CTX *a = server(&t_cf, 0, 1, 5 * MIN_MS, "srv1");
	SSL_CTX *b = server(&t_cf, 0, 1, 5 * MIN_MS, "srv1");
	SSL_CTX *cctx = client(TLS1_3_VERSION);
	SSL_SESSION *prev, *next;
	int reused;

	open_zones(&t_cycle, NULL);
	prev = handshake(a, cctx, NULL, &reused);
	for (unsigned i = 0; i < 4; i++) {
		next = handshake(i % 2 ? a : b, cctx, prev, &reused);
		ck_assert_int_eq(reused, 1);
		ck_assert(!same_ticket(prev, next));
		SSL_SESSION_free(prev);
		prev = next;
	}
	SSL_SESSION_free(prev);
	SSL_CTX_free(cctx);
}
END_TEST

/* Both on: a session with a ticket (TLS 1.3 or 1.2) fills no cache
 * entry; a client that takes no tickets resumes through the cache. */
START_TEST(test_cache_and_tickets)
{
	SSL_CTX *a = server(&t_cf, MB, 1, 5 * MIN_MS, "srv1");
	SSL_CTX *b = server(&t_cf, MB, 1, 5 * MIN_MS, "srv1");

	open_zones(&t_cycle, NULL);
	ck_assert_int_eq(resumes_across(a, b, TLS1_3_VERSION), 1);
	ck_assert_uint_eq(cache_root(cycle_of(a))->nentries, 0);
	ck_assert_int_eq(resumes_across(a, b, TLS1_2_VERSION), 1);
	ck_assert_uint_eq(cache_root(cycle_of(a))->nentries, 0);
	ck_assert_int_eq(
		resumes_across_opts(a, b, TLS1_2_VERSION, SSL_OP_NO_TICKET), 1);
	ck_assert_uint_eq(cache_root(cycle_of(a))->nentries, 1);
	ck_assert_uint_eq(cache_root(cycle_of(a))->hits, 1);
}
END_TEST

START_TEST(test_sid_ctx_isolates)
{
	static const struct {
		size_t cache;
		int tickets, version;
	} cases[] = {{MB, 0, TLS1_2_VERSION},
		     {MB, 0, TLS1_3_VERSION},
		     {0, 1, TLS1_2_VERSION},
		     {0, 1, TLS1_3_VERSION}};
	char long_sid[100];

	memset(long_sid, 'x', sizeof(long_sid) - 1);
	long_sid[sizeof(long_sid) - 1] = '\0';
	for (unsigned i = 0; i < PT_ARRAY_SIZE(cases); i++) {
		struct pt_cycle c;
		struct pt_conf cf;
		SSL_CTX *a, *b, *a2;

		cycle_init(&c, &cf);
		a = server(&cf, cases[i].cache, cases[i].tickets, MIN_MS,
			   "one");
		b = server(&cf, cases[i].cache, cases[i].tickets, MIN_MS,
			   "two");
		/* long contexts are hashed: equal ones still match */
		a2 = server(&cf, cases[i].cache, cases[i].tickets, MIN_MS,
			    long_sid);
		open_zones(&c, NULL);
		ck_assert_msg(!resumes_across(a, b, cases[i].version),
			      "case %u resumed across contexts", i);
		ck_assert_msg(!resumes_across(a, a2, cases[i].version),
			      "case %u resumed across contexts", i);
		ck_assert_msg(resumes_across(a2, a2, cases[i].version),
			      "case %u did not resume", i);
		while (t_nsrv > 0)
			SSL_CTX_free(t_srv[--t_nsrv]);
		pt_shm_close(&c);
		pt_pool_destroy(c.pool);
	}
}
END_TEST

/* ---- eviction and expiry ------------------------------------------------ */

START_TEST(test_eviction)
{
	SSL_CTX *a = server(&t_cf, 1, 0, 5 * MIN_MS, "srv1"); /* smallest */
	SSL_CTX *cctx = client(TLS1_2_VERSION);
	SSL_SESSION *first, *last = NULL, *s;
	struct pt_shm_stats st;
	struct tsc_root *root;
	int reused;

	open_zones(&t_cycle, NULL);
	ck_assert_uint_eq(cycle_of(a)->cache->size, PT_SHM_MIN_SIZE);
	root = cache_root(cycle_of(a));
	first = handshake(a, cctx, NULL, &reused);
	for (unsigned i = 0; i < 150; i++) {
		SSL_SESSION_free(last);
		last = handshake(a, cctx, NULL, &reused);
		ck_assert_int_eq(reused, 0);
	}
	ck_assert_uint_gt(root->evictions, 0);
	ck_assert_uint_lt(root->nentries, 150);
	ck_assert_uint_eq(root->stores, 151);
	/* every allocation is the table or a listed entry: nothing leaks */
	pt_shm_stats(cycle_of(a)->cache, &st);
	ck_assert_uint_eq(st.allocs - st.frees, root->nentries + 1);
	s = handshake(a, cctx, first, &reused);
	ck_assert_int_eq(reused, 0); /* the oldest went first */
	SSL_SESSION_free(s);
	s = handshake(a, cctx, last, &reused);
	ck_assert_int_eq(reused, 1);
	SSL_SESSION_free(s);
	SSL_SESSION_free(first);
	SSL_SESSION_free(last);
	SSL_CTX_free(cctx);
}
END_TEST

START_TEST(test_expiry)
{
	SSL_CTX *a = server(&t_cf, MB, 0, MIN_MS, "srv1");
	SSL_CTX *cctx = client(TLS1_2_VERSION);
	SSL_SESSION *s1, *s2;
	int reused;

	open_zones(&t_cycle, NULL);
	s1 = handshake(a, cctx, NULL, &reused);
	pt_now.mono_ms += MIN_MS - 1000;
	s2 = handshake(a, cctx, s1, &reused);
	ck_assert_int_eq(reused, 1);
	SSL_SESSION_free(s2);
	pt_now.mono_ms += 2000; /* now past the session's lifetime */
	s2 = handshake(a, cctx, s1, &reused);
	ck_assert_int_eq(reused, 0);
	ck_assert_uint_eq(cache_root(cycle_of(a))->expired, 1);
	SSL_SESSION_free(s1);
	SSL_SESSION_free(s2);
	SSL_CTX_free(cctx);
}
END_TEST

/* ---- ticket keys -------------------------------------------------------- */

START_TEST(test_ticket_rotation)
{
	SSL_CTX *a = server(&t_cf, 0, 1, MIN_MS, "srv1");
	SSL_CTX *b = server(&t_cf, 0, 1, MIN_MS, "srv1");
	SSL_CTX *cctx = client(TLS1_2_VERSION), *c13 = client(TLS1_3_VERSION);
	SSL_SESSION *old, *old13, *cur, *s;
	struct tk_root *root;
	int reused;

	open_zones(&t_cycle, NULL);
	root = *pt_shm_user(cycle_of(a)->keys);
	ck_assert_uint_eq(root->rotations, 1); /* made by the "master" */
	old = handshake(a, cctx, NULL, &reused);
	old13 = handshake(a, c13, NULL, &reused);
	/* the newest key is used for a rotation period (1 min here) */
	pt_now.mono_ms += MIN_MS - 1;
	s = handshake(b, cctx, NULL, &reused);
	SSL_SESSION_free(s);
	ck_assert_uint_eq(root->rotations, 1);
	pt_now.mono_ms += 2;
	cur = handshake(b, cctx, NULL, &reused);
	ck_assert_uint_eq(root->rotations, 2);
	/* the new key's ticket resumes and is kept */
	s = handshake(a, cctx, cur, &reused);
	ck_assert_int_eq(reused, 1);
	ck_assert(same_ticket(s, cur));
	SSL_SESSION_free(s);
	/* the old key's tickets resume; TLS 1.2's is renewed */
	s = handshake(a, cctx, old, &reused);
	ck_assert_int_eq(reused, 1);
	ck_assert(!same_ticket(s, old));
	SSL_SESSION_free(s);
	s = handshake(b, c13, old13, &reused);
	ck_assert_int_eq(reused, 1);
	SSL_SESSION_free(s);
	/* a ticket lifetime after the old key retired, it is gone */
	pt_now.mono_ms += MIN_MS + 1;
	s = handshake(a, cctx, old, &reused);
	ck_assert_int_eq(reused, 0);
	SSL_SESSION_free(s);
	s = handshake(b, c13, old13, &reused);
	ck_assert_int_eq(reused, 0);
	SSL_SESSION_free(s);
	/* keys in use: the newest and the one retired a minute ago */
	unsigned valid = 0;
	for (unsigned i = 0; i < TK_KEYS; i++)
		valid += root->keys[i].state == TK_VALID;
	ck_assert_uint_le(valid, 2);
	SSL_SESSION_free(old);
	SSL_SESSION_free(old13);
	SSL_SESSION_free(cur);
	SSL_CTX_free(cctx);
	SSL_CTX_free(c13);
}
END_TEST

START_TEST(test_rotation_period)
{
	ck_assert_int_eq(tk_period(1000), TK_ROTATE_MIN);
	ck_assert_int_eq(tk_period(5 * MIN_MS), 5 * MIN_MS);
	ck_assert_int_eq(tk_period(600 * MIN_MS), TK_ROTATE_MAX);
	/* a day: the keys kept for it still fit */
	ck_assert_int_ge(tk_period(1440 * MIN_MS) * (TK_KEYS - 2),
			 1440 * MIN_MS);
}
END_TEST

/* ---- garbage ------------------------------------------------------------ */

START_TEST(test_corrupt_entry)
{
	SSL_CTX *a = server(&t_cf, MB, 0, MIN_MS, "srv1");
	SSL_CTX *cctx = client(TLS1_2_VERSION);
	SSL_SESSION *s1, *s2;
	struct tsc_root *root;
	int reused, copy;
	unsigned char id[SSL_MAX_SSL_SESSION_ID_LENGTH + 1] = {0};
	SSL *ssl;

	open_zones(&t_cycle, NULL);
	root = cache_root(cycle_of(a));
	s1 = handshake(a, cctx, NULL, &reused);
	ck_assert_ptr_nonnull(root->head);
	memset(root->head->der, 0xa5, root->head->len);
	/* a miss that leaves no error behind: SSL_get_error() of the
	 * handshake that asked would take it for its own failure */
	ssl = SSL_new(a);
	ERR_clear_error();
	ck_assert_ptr_null(tsc_get_cb(ssl, root->head->id,
				      (int)root->head->id_len, &copy));
	ck_assert_uint_eq(ERR_peek_error(), 0);
	SSL_free(ssl);
	s2 = handshake(a, cctx, s1, &reused);
	ck_assert_int_eq(reused, 0);
	SSL_SESSION_free(s2);
	/* ids of no or too many bytes are not looked up */
	ssl = SSL_new(a);
	ck_assert_ptr_null(tsc_get_cb(ssl, id, 0, &copy));
	ck_assert_ptr_null(tsc_get_cb(ssl, id, (int)sizeof(id), &copy));
	ck_assert_ptr_null(tsc_get_cb(ssl, id, 32, &copy));
	SSL_free(ssl);
	SSL_SESSION_free(s1);
	SSL_CTX_free(cctx);
}
END_TEST

/* An id that is not in the cache but falls in the bucket of e. */
static void
id_in_bucket_of(const struct tsc_root *root, const struct tsc_entry *e,
		unsigned char *id)
{
	uint32_t mask = root->nbuckets - 1;

	for (uint32_t n = 0;; n++) {
		memset(id, 0x5c, 32);
		memcpy(id, &n, sizeof(n));
		if ((tsc_hash(id, 32) & mask) == (e->hash & mask) &&
		    memcmp(id, e->id, 32) != 0)
			return;
	}
}

/*
 * Links broken without a worker dying (a scribble): a cycle in a
 * bucket, a link out of the zone, a queue link to nowhere. The worker
 * must neither loop nor fault: the cache is rebuilt from what the
 * queue still reaches, and keeps working.
 */
START_TEST(test_corrupt_links)
{
	SSL_CTX *a = server(&t_cf, MB, 0, MIN_MS, "srv1");
	SSL_CTX *cctx = client(TLS1_2_VERSION);
	unsigned char id[32];
	SSL_SESSION *s[3], *r;
	struct tsc_root *root;
	int reused, copy;
	SSL *ssl;

	SSL_CTX_set_options(cctx, SSL_OP_NO_TICKET);
	open_zones(&t_cycle, NULL);
	root = cache_root(cycle_of(a));
	for (unsigned i = 0; i < 3; i++)
		s[i] = handshake(a, cctx, NULL, &reused);
	ssl = SSL_new(a);

	/* a cycle in a bucket */
	root->head->hnext = root->head;
	id_in_bucket_of(root, root->head, id);
	ck_assert_ptr_null(tsc_get_cb(ssl, id, 32, &copy));
	ck_assert_uint_eq(root->repairs, 1);
	r = handshake(a, cctx, s[2], &reused);
	ck_assert_int_eq(reused, 1);
	SSL_SESSION_free(r);

	/* a bucket pointing out of the zone */
	root->buckets[root->head->hash & (root->nbuckets - 1)] =
		(struct tsc_entry *)(uintptr_t)0x1230;
	id_in_bucket_of(root, root->head, id);
	ck_assert_ptr_null(tsc_get_cb(ssl, id, 32, &copy));
	ck_assert_uint_eq(root->repairs, 2);
	r = handshake(a, cctx, s[1], &reused);
	ck_assert_int_eq(reused, 1);
	SSL_SESSION_free(r);

	/* the oldest, expired, links back to nowhere: dropping it */
	ck_assert_uint_ge(root->nentries, 2);
	root->tail->prev = (struct tsc_entry *)(uintptr_t)0x42;
	/* (a repair's log line set pt_now to the real clock) */
	pt_now.mono_ms = root->tail->expire_ms + 1;
	r = handshake(a, cctx, NULL, &reused);
	SSL_SESSION_free(r);
	ck_assert_uint_eq(root->repairs, 3);
	r = handshake(a, cctx, NULL, &reused);
	ck_assert_ptr_nonnull(root->head);
	ck_assert_int_eq(handshake_resumes(a, cctx, r), 1);
	SSL_SESSION_free(r);

	SSL_free(ssl);
	for (unsigned i = 0; i < 3; i++)
		SSL_SESSION_free(s[i]);
	SSL_CTX_free(cctx);
}
END_TEST

/* Change a ticket in place (OpenSSL gives it out read-only). */
static void
spoil_ticket(SSL_SESSION *s, size_t at)
{
	const unsigned char *t;
	size_t len;

	SSL_SESSION_get0_ticket(s, &t, &len);
	ck_assert_uint_gt(len, at);
	((unsigned char *)(uintptr_t)t)[at] ^= 0x55;
}

START_TEST(test_garbage_ticket)
{
	SSL_CTX *a = server(&t_cf, 0, 1, MIN_MS, "srv1");
	SSL_CTX *cctx = client(TLS1_2_VERSION);
	SSL_SESSION *s1, *s2;
	int reused;

	open_zones(&t_cycle, NULL);
	/* a byte of the key name: not ours; of the body: a bad HMAC */
	for (size_t at = 3; at < 60; at += 25) {
		s1 = handshake(a, cctx, NULL, &reused);
		spoil_ticket(s1, at);
		s2 = handshake(a, cctx, s1, &reused);
		ck_assert_int_eq(reused, 0);
		SSL_SESSION_free(s1);
		SSL_SESSION_free(s2);
	}
	SSL_CTX_free(cctx);
}
END_TEST

/* ---- a worker dying with the lock ---------------------------------------- */

static void
die_holding(struct pt_shm_zone *z, void (*spoil)(void *root), void *root)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		pt_shm_lock(z);
		spoil(root);
		_exit(0); /* the lock dies with us */
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
}

static void
spoil_cache(void *p)
{
	struct tsc_root *root = p;

	root->busy = 1;
	root->head->next = (struct tsc_entry *)(uintptr_t)0x1238;
	root->tail = (struct tsc_entry *)(uintptr_t)0x42;
}

static void
spoil_keys(void *p)
{
	struct tk_root *root = p;

	/* half a rotation: a slot filled but not published */
	memset(&root->keys[TK_KEYS - 1], 0x33, sizeof(root->keys[0]));
	root->keys[TK_KEYS - 1].state = TK_FREE;
	root->newest = TK_KEYS - 1;
}

START_TEST(test_lock_owner_died)
{
	SSL_CTX *a = server(&t_cf, MB, 0, MIN_MS, "srv1");
	SSL_CTX *b = server(&t_cf, 0, 1, MIN_MS, "srv2");
	SSL_CTX *cctx = client(TLS1_2_VERSION);
	SSL_SESSION *s[3], *r;
	struct tsc_root *root;
	int reused;

	open_zones(&t_cycle, NULL);
	root = cache_root(cycle_of(a));
	for (unsigned i = 0; i < 3; i++)
		s[i] = handshake(a, cctx, NULL, &reused);
	die_holding(cycle_of(a)->cache, spoil_cache, root);
	/* the next user repairs: the newest entry is kept, the rest lost */
	r = handshake(a, cctx, s[2], &reused);
	ck_assert_int_eq(reused, 1);
	SSL_SESSION_free(r);
	ck_assert_uint_eq(root->repairs, 1);
	r = handshake(a, cctx, s[0], &reused);
	ck_assert_int_eq(reused, 0);
	SSL_SESSION_free(r);
	for (unsigned i = 0; i < 3; i++)
		SSL_SESSION_free(s[i]);

	/* ticket keys: the key published before stays the newest */
	s[0] = handshake(b, cctx, NULL, &reused);
	die_holding(cycle_of(b)->keys, spoil_keys,
		    *pt_shm_user(cycle_of(b)->keys));
	r = handshake(b, cctx, s[0], &reused);
	ck_assert_int_eq(reused, 1);
	ck_assert(same_ticket(r, s[0])); /* no renewal: still the newest */
	SSL_SESSION_free(r);
	/* a scribbled index of the newest key: repaired, not followed */
	((struct tk_root *)*pt_shm_user(cycle_of(b)->keys))->newest = 100000;
	r = handshake(b, cctx, s[0], &reused);
	ck_assert_int_eq(reused, 1);
	SSL_SESSION_free(r);
	SSL_SESSION_free(s[0]);
	SSL_CTX_free(cctx);
}
END_TEST

/* ---- what a session vouches for ------------------------------------------ */

static X509 *
prep_verify(SSL_CTX *ctx)
{
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL); /* "optional" */
	return t_cert;
}

static X509 *
prep_depth(SSL_CTX *ctx)
{
	SSL_CTX_set_verify_depth(ctx, 3);
	return t_cert;
}

static X509 *
prep_client_ca(SSL_CTX *ctx)
{
	ck_assert_int_eq(SSL_CTX_add_client_CA(ctx, t_cert), 1);
	return t_cert;
}

static X509 *
prep_trust(SSL_CTX *ctx)
{
	ck_assert_int_eq(
		X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), t_cert), 1);
	return t_cert;
}

static X509 *
prep_ciphers(SSL_CTX *ctx)
{
	ck_assert_int_eq(
		SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES256-GCM-SHA384"),
		1);
	ck_assert_int_eq(
		SSL_CTX_set_ciphersuites(ctx, "TLS_AES_256_GCM_SHA384"), 1);
	return t_cert;
}

static X509 *
prep_versions(SSL_CTX *ctx)
{
	ck_assert_int_eq(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION), 1);
	return t_cert;
}

static X509 *
prep_cert(SSL_CTX *ctx)
{
	(void)ctx;
	return t_cert2;
}

/* The same server block (sid) after a reload that changed how clients
 * are verified or what it serves: a session of before must not resume
 * (one made without a client certificate would pass verify_client on). */
START_TEST(test_sid_ctx_covers_auth)
{
	X509 *(*preps[])(SSL_CTX *) = {
		prep_verify,  prep_depth,    prep_client_ca, prep_trust,
		prep_ciphers, prep_versions, prep_cert};
	static const struct {
		size_t cache;
		int tickets, version;
	} cases[] = {{MB, 0, TLS1_2_VERSION},
		     {MB, 0, TLS1_3_VERSION},
		     {0, 1, TLS1_2_VERSION},
		     {0, 1, TLS1_3_VERSION}};

	for (unsigned i = 0; i < PT_ARRAY_SIZE(cases); i++) {
		struct pt_cycle c;
		struct pt_conf cf;
		SSL_CTX *a, *a2, *b[PT_ARRAY_SIZE(preps)];

		cycle_init(&c, &cf);
		a = server(&cf, cases[i].cache, cases[i].tickets, MIN_MS,
			   "srv1");
		a2 = server(&cf, cases[i].cache, cases[i].tickets, MIN_MS,
			    "srv1");
		for (unsigned k = 0; k < PT_ARRAY_SIZE(preps); k++)
			b[k] = server_prep(&cf, cases[i].cache,
					   cases[i].tickets, MIN_MS, "srv1",
					   preps[k]);
		open_zones(&c, NULL);
		ck_assert_msg(resumes_across(a, a2, cases[i].version),
			      "case %u: the same context did not resume", i);
		for (unsigned k = 0; k < PT_ARRAY_SIZE(preps); k++)
			ck_assert_msg(
				!resumes_across(a, b[k], cases[i].version),
				"case %u: resumed across change %u", i, k);
		while (t_nsrv > 0)
			SSL_CTX_free(t_srv[--t_nsrv]);
		pt_shm_close(&c);
		pt_pool_destroy(c.pool);
	}
}
END_TEST

/* ---- SNI: a session started on a default server without sessions ------- */

static SSL_CTX *t_switch_to;

/* What tls.c's client hello callback does when SNI names another server. */
static int
switch_cb(SSL *ssl, int *alert, void *arg)
{
	SSL_CTX *ctx = t_switch_to;

	(void)alert;
	(void)arg;
	SSL_set_SSL_CTX(ssl, ctx);
	SSL_clear_options(ssl,
			  SSL_get_options(ssl) & ~SSL_CTX_get_options(ctx));
	SSL_set_options(ssl, SSL_CTX_get_options(ctx));
	(void)SSL_set_num_tickets(ssl, SSL_CTX_get_num_tickets(ctx));
	return SSL_CLIENT_HELLO_SUCCESS;
}

/*
 * OpenSSL calls the session callbacks of the context a session started
 * with: a default server with neither cache nor tickets must not take
 * them from the server SNI chose. The two defaults (def, def2: another
 * worker's, or after a reload) have their own OpenSSL ticket keys, so
 * only the shared ones resume across them.
 */
START_TEST(test_sni_switch)
{
	SSL_CTX *def = server(&t_cf, 0, 0, MIN_MS, "default");
	SSL_CTX *def2 = server(&t_cf, 0, 0, MIN_MS, "default");
	SSL_CTX *cache = server(&t_cf, MB, 0, MIN_MS, "cache");
	SSL_CTX *tick = server(&t_cf, 0, 1, MIN_MS, "tickets");
	SSL_CTX *long_cache = server(&t_cf, MB, 0, 10 * MIN_MS, "cache");
	SSL_CTX *long_tick = server(&t_cf, 0, 1, 10 * MIN_MS, "tickets");

	SSL_CTX_set_client_hello_cb(def, switch_cb, NULL);
	SSL_CTX_set_client_hello_cb(def2, switch_cb, NULL);
	open_zones(&t_cycle, NULL);
	t_switch_to = cache;
	ck_assert_int_eq(resumes_across_opts(def, def2, TLS1_2_VERSION,
					     SSL_OP_NO_TICKET),
			 1);
	ck_assert_int_eq(resumes_across(def, def2, TLS1_3_VERSION), 1);
	t_switch_to = tick;
	ck_assert_int_eq(resumes_across(def, def2, TLS1_2_VERSION), 1);
	ck_assert_int_eq(resumes_across(def, def2, TLS1_3_VERSION), 1);
	/* a session lives as long as the server it is with says, not
	 * the default: in the cache, and in the ticket's lifetime hint */
	for (unsigned i = 0; i < 4; i++) {
		SSL_CTX *cctx = client(i % 2 ? TLS1_3_VERSION : TLS1_2_VERSION);
		SSL_SESSION *sess;
		int reused;

		t_switch_to = i < 2 ? long_cache : long_tick;
		if (i < 2)
			SSL_CTX_set_options(cctx, SSL_OP_NO_TICKET);
		sess = handshake(def, cctx, NULL, &reused);
		if (i > 0) /* TLS 1.2 with a session id: no hint */
			ck_assert_msg(
				SSL_SESSION_get_ticket_lifetime_hint(sess) ==
					600,
				"case %u: hint %lu", i,
				SSL_SESSION_get_ticket_lifetime_hint(sess));
		if (i < 2)
			ck_assert_int_eq(
				cache_root(cycle_of(cache))->head->expire_ms,
				pt_now.mono_ms + 600 * 1000);
		SSL_SESSION_free(sess);
		SSL_CTX_free(cctx);
	}
	/* and on the default itself, still none */
	SSL_CTX_set_client_hello_cb(def, NULL, NULL);
	SSL_CTX_set_client_hello_cb(def2, NULL, NULL);
	ck_assert_int_eq(resumes_across(def, def2, TLS1_2_VERSION), 0);
	ck_assert_int_eq(resumes_across(def, def2, TLS1_3_VERSION), 0);
}
END_TEST

/* ---- cycles ------------------------------------------------------------- */

START_TEST(test_sizes_in_one_cycle)
{
	SSL_CTX *a = server(&t_cf, 64 * 1024, 1, 2 * MIN_MS, "a");
	SSL_CTX *b, *c;

	server(&t_cf, 2 * MB, 0, 90 * MIN_MS, "b");
	b = server(&t_cf, 100 * 1024, 1, 10 * MIN_MS, "c");
	c = server(&t_cf, 0, 0, MIN_MS, "d");
	open_zones(&t_cycle, NULL);
	ck_assert_ptr_eq(cycle_of(a), cycle_of(b));
	ck_assert_uint_eq(cycle_of(a)->cache->size, 2 * MB);
	ck_assert_int_eq(cycle_of(a)->ticket_life_ms, 10 * MIN_MS);
	ck_assert_int_eq(SSL_CTX_get_timeout(a), 120);
	/* neither: nothing to resume, whatever is sent (the callbacks
	 * are there for sessions that SNI moves to another context) */
	ck_assert(!tls_sess_of(c)->cache && !tls_sess_of(c)->tickets);
	ck_assert(SSL_CTX_get_options(c) & SSL_OP_NO_TICKET);
	ck_assert_int_eq(resumes_across(c, c, TLS1_3_VERSION), 0);
	ck_assert_int_eq(resumes_across(c, c, TLS1_2_VERSION), 0);
}
END_TEST

/* A reload with unchanged sizes keeps the sessions and the keys; a new
 * cache size starts an empty cache, the keys still hold. */
START_TEST(test_reload)
{
	SSL_CTX *a = server(&t_cf, MB, 1, MIN_MS, "srv1");
	SSL_CTX *c12 = client(TLS1_2_VERSION), *c13 = client(TLS1_3_VERSION);
	SSL_CTX *n;
	SSL_SESSION *sid, *tick, *s;
	struct pt_cycle c3;
	struct pt_conf cf3;
	int reused;

	open_zones(&t_cycle, NULL);
	/* a TLS 1.2 session id: only the cache can resume it */
	SSL_CTX_set_options(c12, SSL_OP_NO_TICKET);
	sid = handshake(a, c12, NULL, &reused);
	tick = handshake(a, c13, NULL, &reused);

	cycle_init(&t_cycle2, &t_cf2);
	n = server(&t_cf2, MB, 1, MIN_MS, "srv1");
	open_zones(&t_cycle2, &t_cycle);
	ck_assert_ptr_eq(cycle_of(n)->cache->addr, cycle_of(a)->cache->addr);
	s = handshake(n, c12, sid, &reused);
	ck_assert_int_eq(reused, 1);
	SSL_SESSION_free(s);
	s = handshake(n, c13, tick, &reused);
	ck_assert_int_eq(reused, 1);
	SSL_SESSION_free(s);

	cycle_init(&c3, &cf3);
	n = server(&cf3, 2 * MB, 1, MIN_MS, "srv1");
	open_zones(&c3, &t_cycle2);
	s = handshake(n, c12, sid, &reused);
	ck_assert_int_eq(reused, 0);
	SSL_SESSION_free(s);
	s = handshake(n, c13, tick, &reused);
	ck_assert_int_eq(reused, 1);
	SSL_SESSION_free(s);

	SSL_SESSION_free(sid);
	SSL_SESSION_free(tick);
	SSL_CTX_free(c12);
	SSL_CTX_free(c13);
	while (t_nsrv > 1)
		SSL_CTX_free(t_srv[--t_nsrv]);
	pt_shm_close(&c3);
	pt_shm_close(&t_cycle2);
	pt_pool_destroy(c3.pool);
	pt_pool_destroy(t_cycle2.pool);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("tls_session");
	TCase *tc = tcase_create("resumption");

	make_cert();
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_tls12_session_ids);
	tcase_add_test(tc, test_tls13_stateful);
	tcase_add_test(tc, test_tickets);
	tcase_add_test(tc, test_tls13_ticket_chain);
	tcase_add_test(tc, test_cache_and_tickets);
	tcase_add_test(tc, test_sid_ctx_isolates);
	tcase_add_test(tc, test_sid_ctx_covers_auth);
	tcase_add_test(tc, test_sni_switch);
	tcase_add_test(tc, test_eviction);
	tcase_add_test(tc, test_expiry);
	tcase_add_test(tc, test_ticket_rotation);
	tcase_add_test(tc, test_rotation_period);
	tcase_add_test(tc, test_corrupt_entry);
	tcase_add_test(tc, test_corrupt_links);
	tcase_add_test(tc, test_garbage_ticket);
	tcase_add_test(tc, test_lock_owner_died);
	tcase_add_test(tc, test_sizes_in_one_cycle);
	tcase_add_test(tc, test_reload);
	suite_add_tcase(s, tc);
	return pt_unit_run(s);
}
