/*
 * test_proxy_tls.c: the client side of TLS to backends
 * (modules/proxy/proxy_tls.c, included to reach its statics), over a
 * socketpair with an OpenSSL server made here (a self-signed P-256
 * certificate built in memory): the check that a pooled connection is
 * quiet, which must take records that are not data (a TLS 1.3 ticket or
 * key update arriving while idle) and only those; the sessions kept per
 * peer and resumed; the reason given for a certificate that does not
 * verify. Also sockio's close: one close_notify, not two. Everything
 * else is tested from outside by t/82-tls-upstream.t.
 */
#include "../../modules/proxy/proxy_tls.c"

#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tls_cert.h"
#include "unit.h"

static SSL_CTX *t_server_ctx;

/* A server context with a self-signed certificate for "backend.test". */
static SSL_CTX *
t_make_server_ctx(void)
{
	EVP_PKEY *key = t_tls_ec_key();
	X509 *crt = key ? t_tls_self_signed(key, "backend.test", 1) : NULL;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	ck_assert_ptr_nonnull(crt);
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(SSL_CTX_use_certificate(ctx, crt), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, key), 1);
	X509_free(crt);
	EVP_PKEY_free(key);
	return ctx;
}

static void
t_setup(void)
{
	signal(SIGPIPE, SIG_IGN); /* as the server's processes do */
	t_server_ctx = t_make_server_ctx();
}

static void
t_teardown(void)
{
	SSL_CTX_free(t_server_ctx);
}

/* A client conf as an upstream "tls" group makes it, one peer. */
static void
t_client(struct proxy_tls *t, struct proxy_tls_peer *peer, int verify)
{
	struct ptls_conf c = {.verify = verify};

	memset(t, 0, sizeof(*t));
	memset(peer, 0, sizeof(*peer));
	peer->name = "backend.test";
	t->peers = peer;
	t->npeers = 1;
	t->verify = verify;
	t->ctx = ptls_ctx(NULL, NULL, &c); /* no file: no config error */
	ck_assert_ptr_nonnull(t->ctx);
}

struct t_pair {
	int fd[2]; /* client, server */
	SSL *client, *server;
};

/* Connect a client of t to a new server; PT_OK or PT_ERROR (the
 * handshake failed). */
static int
t_connect(struct t_pair *p, struct proxy_tls *t)
{
	int cdone = 0, sdone = 0;

	ck_assert_int_eq(
		socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fd), 0);
	p->client = pt_proxy_tls_new(t, 0, p->fd[0], 1);
	p->server = SSL_new(t_server_ctx);
	ck_assert_ptr_nonnull(p->client);
	ck_assert_ptr_nonnull(p->server);
	SSL_set_fd(p->server, p->fd[1]);
	SSL_set_accept_state(p->server);
	for (int i = 0; i < 100 && !(cdone && sdone); i++) {
		int ww, rc;
		if (!cdone) {
			rc = pt_tls_handshake(p->client, &ww);
			if (rc == PT_ERROR)
				return PT_ERROR;
			cdone = rc == PT_OK;
		}
		if (!sdone) {
			rc = SSL_do_handshake(p->server);
			sdone = rc == 1;
			if (rc <= 0 && SSL_get_error(p->server, rc) !=
					       SSL_ERROR_WANT_READ) {
				ERR_clear_error();
				return PT_ERROR;
			}
		}
	}
	ck_assert(cdone && sdone);
	return PT_OK;
}

/* As upconn.c closes: close_notify first (a session freed without it
 * is marked not resumable by OpenSSL). */
static void
t_close(struct t_pair *p)
{
	pt_tls_close(p->client);
	pt_tls_close(p->server);
	close(p->fd[0]);
	close(p->fd[1]);
}

/* The server answers; the client reads it all (and the tickets sent
 * after the handshake with it). */
static void
t_exchange(struct t_pair *p)
{
	char buf[64];
	ssize_t n;

	ck_assert_int_eq(SSL_write(p->server, "HTTP/1.1 200 OK\r\n\r\n", 19),
			 19);
	n = pt_sock_recv(p->fd[0], p->client, buf, sizeof(buf));
	ck_assert_int_eq(n, 19);
}

/* Bytes wait on the client's socket (what a raw MSG_PEEK sees). */
static int
t_raw_pending(struct t_pair *p)
{
	char c;

	return recv(p->fd[0], &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

START_TEST(test_quiet_takes_records_that_are_not_data)
{
	struct proxy_tls t;
	struct proxy_tls_peer peer;
	struct t_pair p;

	t_client(&t, &peer, 0);
	ck_assert_int_eq(t_connect(&p, &t), PT_OK);
	t_exchange(&p);
	ck_assert(!t_raw_pending(&p));
	ck_assert_int_eq(pt_proxy_tls_quiet(p.fd[0], p.client), 1);

	/* a ticket while idle: a raw peek would call it stray bytes */
	ck_assert_int_eq(SSL_new_session_ticket(p.server), 1);
	ck_assert_int_eq(SSL_do_handshake(p.server), 1);
	ck_assert(t_raw_pending(&p));
	ck_assert_int_eq(pt_proxy_tls_quiet(p.fd[0], p.client), 1);
	ck_assert(!t_raw_pending(&p));

	/* a key update, the same */
	ck_assert_int_eq(SSL_key_update(p.server, SSL_KEY_UPDATE_NOT_REQUESTED),
			 1);
	ck_assert_int_eq(SSL_do_handshake(p.server), 1);
	ck_assert(t_raw_pending(&p));
	ck_assert_int_eq(pt_proxy_tls_quiet(p.fd[0], p.client), 1);

	/* data nobody asked for: not quiet */
	ck_assert_int_eq(SSL_write(p.server, "x", 1), 1);
	ck_assert_int_eq(pt_proxy_tls_quiet(p.fd[0], p.client), 0);
	t_close(&p);

	/* close_notify: not quiet */
	ck_assert_int_eq(t_connect(&p, &t), PT_OK);
	t_exchange(&p);
	(void)SSL_shutdown(p.server);
	ck_assert_int_eq(pt_proxy_tls_quiet(p.fd[0], p.client), 0);
	t_close(&p);

	/* a bare close: not quiet */
	ck_assert_int_eq(t_connect(&p, &t), PT_OK);
	t_exchange(&p);
	close(p.fd[1]);
	p.fd[1] = -1;
	ck_assert_int_eq(pt_proxy_tls_quiet(p.fd[0], p.client), 0);
	t_close(&p);

	pt_proxy_tls_exit(&t);
	SSL_CTX_free(t.ctx);
}
END_TEST

START_TEST(test_sessions_kept_and_resumed)
{
	struct proxy_tls t;
	struct proxy_tls_peer peer;
	struct t_pair p;

	t_client(&t, &peer, 0);
	ck_assert_int_eq(t_connect(&p, &t), PT_OK);
	ck_assert_int_eq(SSL_session_reused(p.client), 0);
	t_exchange(&p);
	ck_assert_ptr_nonnull(peer.sess); /* the tickets came with it */
	ck_assert_str_eq(
		SSL_get_servername(p.server, TLSEXT_NAMETYPE_host_name),
		"backend.test");
	t_close(&p);

	ck_assert_int_eq(t_connect(&p, &t), PT_OK);
	ck_assert_int_eq(SSL_session_reused(p.client), 1);
	t_exchange(&p);
	t_close(&p);

	pt_proxy_tls_exit(&t);
	ck_assert_ptr_null(peer.sess);
	SSL_CTX_free(t.ctx);
}
END_TEST

START_TEST(test_verify_failure_reason)
{
	struct proxy_tls t;
	struct proxy_tls_peer peer;
	struct t_pair p;
	const char *why;

	t_client(&t, &peer, 1); /* no CA: the self-signed one fails */
	ck_assert_int_eq(t_connect(&p, &t), PT_ERROR);
	why = pt_proxy_tls_failed(&t, 0, p.client);
	ck_assert_msg(strstr(why, "TLS handshake failed: certificate verify "
				  "failed: self-signed certificate") == why,
		      "%s", why);
	t_close(&p);
	SSL_CTX_free(t.ctx);
}
END_TEST

/* A side that sent its close_notify (pt_sock_shutdown_write, the
 * lingering close) and then read a bare EOF must not send another when
 * it is freed. With SSL_OP_IGNORE_UNEXPECTED_EOF (as tls.c sets on
 * client connections) OpenSSL 3.0 overwrites the shutdown state with
 * "received", forgetting "sent": the second close_notify cost a failed
 * write on every Connection: close request. */
START_TEST(test_one_close_notify)
{
	struct proxy_tls t;
	struct proxy_tls_peer peer;
	struct t_pair p;
	BIO *out;
	char buf[64];

	t_client(&t, &peer, 0);
	ck_assert_int_eq(t_connect(&p, &t), PT_OK);
	SSL_set_options(p.server, SSL_OP_IGNORE_UNEXPECTED_EOF);
	t_exchange(&p);
	pt_sock_shutdown_write(p.fd[1], p.server);
	ck_assert_int_eq(pt_sock_recv(p.fd[0], p.client, buf, sizeof(buf)), 0);
	/* the client goes away without its own close_notify */
	ck_assert_int_eq(shutdown(p.fd[0], SHUT_WR), 0);
	ck_assert_int_eq(pt_sock_recv(p.fd[1], p.server, buf, sizeof(buf)), 0);
	/* what the server writes from now on goes to memory */
	out = BIO_new(BIO_s_mem());
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(BIO_up_ref(out), 1);
	SSL_set0_wbio(p.server, out);
	pt_tls_close(p.server);
	ck_assert_int_eq((int)BIO_ctrl_pending(out), 0);
	BIO_free(out);
	p.server = NULL;
	t_close(&p);
	pt_proxy_tls_exit(&t);
	SSL_CTX_free(t.ctx);
}
END_TEST

static Suite *
proxy_tls_suite(void)
{
	Suite *s = suite_create("proxy_tls");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, t_setup, t_teardown);
	tcase_add_test(tc, test_quiet_takes_records_that_are_not_data);
	tcase_add_test(tc, test_sessions_kept_and_resumed);
	tcase_add_test(tc, test_verify_failure_reason);
	tcase_add_test(tc, test_one_close_notify);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return pt_unit_run(proxy_tls_suite());
}
