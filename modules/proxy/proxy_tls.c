/*
 * proxy_tls.c: TLS to backends: the "tls" group of an upstream (and the
 * implicit upstream of proxy_pass "https://host:port"), one client
 * SSL_CTX per TLS upstream, and the client sessions made from it.
 *
 * The SSL_CTX is built by the master when the configuration is read, so
 * a client key readable by root only still works and a bad file fails
 * `portier -t` and a reload at file:line; it lives as long as the cycle
 * (a pool cleanup frees it) and every worker and the health helper
 * inherit it. Each peer has the name its certificate must carry (and
 * that goes in SNI), or an IP literal that its certificate must carry as
 * an IP SAN (no SNI then). Each peer also keeps, per process, the last
 * session the peer gave (a TLS 1.2 session or a TLS 1.3 ticket, through
 * the new-session callback): a new connection offers it and saves a
 * full handshake. The process's copy of the peer table is its own after
 * fork, so no state is shared between workers. CRLs (`crl`) are loaded
 * into the verification store by tls.c's loader, checked for the whole
 * chain: a revoked server certificate fails like any other that does
 * not verify.
 */
#include "core.h"
#include "conf.h"
#include "log.h"
#include "pool.h"
#include "proxy.h"
#include "sockio.h"
#include "tls.h"
#include "tls_key.h"

#include <arpa/inet.h>
#include <errno.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct ptls_conf {
	int verify;
	const char *ca, *server_name, *cert, *key;
	struct pt_strlist protocols;
	const char *crl;
	const char *password_file;
};

#define TC(f) offsetof(struct ptls_conf, f)
const struct pt_setting pt_upstream_tls_block[] = {
	{"verify", PT_T_FLAG, PT_SCOPE_UPSTREAM, PT_STORE_UPS, TC(verify), NULL,
	 NULL},
	{"ca", PT_T_STRING, PT_SCOPE_UPSTREAM, PT_STORE_UPS, TC(ca), NULL,
	 NULL},
	{"server_name", PT_T_STRING, PT_SCOPE_UPSTREAM, PT_STORE_UPS,
	 TC(server_name), NULL, NULL},
	{"cert", PT_T_STRING, PT_SCOPE_UPSTREAM, PT_STORE_UPS, TC(cert), NULL,
	 NULL},
	{"key", PT_T_STRING, PT_SCOPE_UPSTREAM, PT_STORE_UPS, TC(key), NULL,
	 NULL},
	{"protocols", PT_T_STRLIST, PT_SCOPE_UPSTREAM, PT_STORE_UPS,
	 TC(protocols), NULL, NULL},
	{"crl", PT_T_STRING, PT_SCOPE_UPSTREAM, PT_STORE_UPS, TC(crl), NULL,
	 NULL},
	{"password_file", PT_T_STRING, PT_SCOPE_UPSTREAM, PT_STORE_UPS,
	 TC(password_file), NULL, NULL},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};
#undef TC

static const struct {
	const char *name;
	int version;
} ptls_versions[] = {
	{"TLSv1", TLS1_VERSION},
	{"TLSv1.1", TLS1_1_VERSION},
	{"TLSv1.2", TLS1_2_VERSION},
	{"TLSv1.3", TLS1_3_VERSION},
};

static void
ptls_free(void *data)
{
	struct proxy_tls *t = data;

	SSL_CTX_free(t->ctx);
	t->ctx = NULL;
}

/* A new session from the peer (a TLS 1.3 ticket, or the TLS 1.2
 * session after a full handshake): keep it for the next connection. */
static int
ptls_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct proxy_tls_peer *p = SSL_get_app_data(ssl);

	if (p == NULL)
		return 0; /* not ours to keep (a health check): freed */
	if (p->sess != NULL)
		SSL_SESSION_free(p->sess);
	p->sess = sess;
	return 1;
}

/* protocols: the lowest and highest listed, the ones between that are
 * not listed turned off. */
static int
ptls_protocols(struct pt_conf *cf, const config_setting_t *node,
	       const struct pt_strlist *l, SSL_CTX *ctx)
{
	unsigned want = 0;
	int lo = -1, hi = -1;
	static const long off[] = {SSL_OP_NO_TLSv1, SSL_OP_NO_TLSv1_1,
				   SSL_OP_NO_TLSv1_2, SSL_OP_NO_TLSv1_3};

	if (l->items == NULL) {
		want = 1u << 2 | 1u << 3;
	} else {
		for (unsigned i = 0; i < l->n; i++) {
			unsigned k = 0;
			while (k < PT_ARRAY_SIZE(ptls_versions) &&
			       strcmp(ptls_versions[k].name, l->items[i]) != 0)
				k++;
			if (k == PT_ARRAY_SIZE(ptls_versions)) {
				pt_conf_error(
					cf, node,
					"tls: \"protocols\": unknown "
					"protocol \"%s\" (TLSv1, TLSv1.1, "
					"TLSv1.2, TLSv1.3)",
					l->items[i]);
				return PT_ERROR;
			}
			want |= 1u << k;
		}
	}
	if (want == 0) {
		pt_conf_error(cf, node, "tls: \"protocols\" is empty");
		return PT_ERROR;
	}
	for (unsigned k = 0; k < PT_ARRAY_SIZE(ptls_versions); k++) {
		if (!(want & (1u << k)))
			continue;
		if (lo < 0)
			lo = (int)k;
		hi = (int)k;
	}
	for (int k = lo; k <= hi; k++)
		if (!(want & (1u << k)))
			SSL_CTX_set_options(ctx, (uint64_t)off[k]);
	if (!SSL_CTX_set_min_proto_version(ctx, ptls_versions[lo].version) ||
	    !SSL_CTX_set_max_proto_version(ctx, ptls_versions[hi].version)) {
		char why[160];
		pt_conf_error(cf, node, "tls: \"protocols\": %s",
			      pt_tls_reason(why, sizeof(why), NULL));
		return PT_ERROR;
	}
	return PT_OK;
}

/* The CRLs, checked only where certificates are: with verify. */
static int
ptls_crl(struct pt_conf *cf, const config_setting_t *node,
	 const struct ptls_conf *c, SSL_CTX *ctx)
{
	const config_setting_t *m =
		node != NULL ? config_setting_get_member(node, "crl") : NULL;
	const char *f;

	if (c->crl == NULL)
		return PT_OK;
	if (m == NULL)
		m = node;
	if (!c->verify) {
		pt_conf_error(cf, m, "tls: \"crl\" needs \"verify\"");
		return PT_ERROR;
	}
	if (c->crl[0] == '\0') {
		pt_conf_error(cf, m, "tls: \"crl\": empty file name");
		return PT_ERROR;
	}
	f = pt_conf_dir_path(cf, c->crl);
	return f != NULL ? pt_tls_load_crl(cf, m, f,
					   SSL_CTX_get_cert_store(ctx), 1)
			 : PT_ERROR;
}

/* The client key, decrypted with the password file's passphrases (read
 * here, cleared once the key is loaded), and its match with cert. */
static int
ptls_key(struct pt_conf *cf, const config_setting_t *node,
	 const struct ptls_conf *c, SSL_CTX *ctx)
{
	const config_setting_t *pnode = node;
	struct pt_tls_pass pw;
	const char *f, *pf = NULL;
	int rc = PT_ERROR;

	if (c->password_file != NULL) {
		if (config_setting_is_group(node))
			pnode = config_setting_get_member(node,
							  "password_file");
		pf = pt_conf_dir_path(cf, c->password_file);
		if (pf == NULL)
			return PT_ERROR;
	}
	if (pt_tls_pass_read(cf, pnode, pf, &pw) != PT_OK)
		goto fail;
	f = pt_conf_dir_path(cf, c->key);
	if (f == NULL ||
	    pt_tls_key_use(cf, node, ctx, f, c->cert, &pw) != PT_OK)
		goto fail;
	rc = PT_OK;
fail:
	pt_tls_pass_free(&pw);
	return rc;
}

/* ca, cert and key into ctx: file:line errors with OpenSSL's reason. */
static int
ptls_files(struct pt_conf *cf, const config_setting_t *node,
	   const struct ptls_conf *c, SSL_CTX *ctx)
{
	char why[160];
	const char *f;

	if (c->ca != NULL) {
		f = pt_conf_dir_path(cf, c->ca);
		if (f == NULL)
			return PT_ERROR;
		if (!SSL_CTX_load_verify_locations(ctx, f, NULL)) {
			pt_conf_error(cf, node, "tls: ca \"%s\": %s", f,
				      pt_tls_reason(why, sizeof(why), NULL));
			return PT_ERROR;
		}
	} else if (c->verify && !SSL_CTX_set_default_verify_paths(ctx)) {
		pt_conf_error(cf, node, "tls: the system's CA store: %s",
			      pt_tls_reason(why, sizeof(why), NULL));
		return PT_ERROR;
	}
	if (ptls_crl(cf, node, c, ctx) != PT_OK)
		return PT_ERROR;
	if ((c->cert == NULL) != (c->key == NULL)) {
		pt_conf_error(cf, node,
			      "tls: \"cert\" and \"key\" go together");
		return PT_ERROR;
	}
	if (c->password_file != NULL && c->key == NULL) {
		pt_conf_error(cf, node,
			      "tls: \"password_file\" is for \"key\", which "
			      "is not set");
		return PT_ERROR;
	}
	if (c->cert == NULL)
		return PT_OK;
	f = pt_conf_dir_path(cf, c->cert);
	if (f == NULL)
		return PT_ERROR;
	if (!SSL_CTX_use_certificate_chain_file(ctx, f)) {
		pt_conf_error(cf, node, "tls: cert \"%s\": %s", f,
			      pt_tls_reason(why, sizeof(why), NULL));
		return PT_ERROR;
	}
	return ptls_key(cf, node, c, ctx);
}

static SSL_CTX *
ptls_ctx(struct pt_conf *cf, const config_setting_t *node,
	 const struct ptls_conf *c)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char why[160];

	if (ctx == NULL) {
		pt_conf_error(cf, node, "tls: SSL_CTX_new(): %s",
			      pt_tls_reason(why, sizeof(why), NULL));
		return NULL;
	}
	/* the certificate file's reader: never OpenSSL's prompt */
	SSL_CTX_set_default_passwd_cb(ctx, pt_tls_no_passphrase);
	/* sockio's contract (partial writes, retried from a moved buffer)
	 * and no buffers held by idle pooled connections */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx,
			    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_verify(ctx, c->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
			   NULL);
	/* sessions are kept per peer by the callback, not in the ctx */
	SSL_CTX_set_session_cache_mode(
		ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, ptls_new_session);
	if (ptls_protocols(cf, node, &c->protocols, ctx) != PT_OK ||
	    ptls_files(cf, node, c, ctx) != PT_OK) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static int
ptls_is_ip(const char *s)
{
	unsigned char b[16];

	return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

/* The host of "host:port" or "[v6]:port", or NULL (unix:, no port). */
static char *
ptls_host(struct pt_pool *pool, const char *address)
{
	const char *colon = strrchr(address, ':');

	if (strncmp(address, "unix:", 5) == 0 || colon == NULL)
		return NULL;
	if (address[0] == '[' && colon > address + 1 && colon[-1] == ']')
		return pt_pstrndup(pool, address + 1,
				   (size_t)(colon - address - 2));
	return pt_pstrndup(pool, address, (size_t)(colon - address));
}

struct proxy_tls *
pt_proxy_tls_conf(struct pt_conf *cf, struct pt_upstream *u,
		  const config_setting_t *node, const char *server_name)
{
	struct ptls_conf c = {.verify = PT_UNSET};
	struct proxy_tls *t;
	char block[160];

	snprintf(block, sizeof(block), "the tls of upstream \"%s\"", u->name);
	if (config_setting_is_group(node)) {
		if (pt_conf_walk_table(cf, node, pt_upstream_tls_block, block,
				       &c) != PT_OK)
			return NULL;
	} else if (server_name == NULL) {
		pt_conf_error(cf, node, "\"tls\" must be a group { ... }");
		return NULL;
	}
	if (c.server_name != NULL)
		server_name = c.server_name;
	c.verify = c.verify != 0; /* default: on */
	t = pt_pcalloc(cf->pool, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->peers = pt_pcalloc(cf->pool, u->npeers * sizeof(*t->peers));
	if (t->peers == NULL)
		return NULL;
	t->npeers = u->npeers;
	t->verify = c.verify;
	for (unsigned i = 0; i < u->npeers; i++) {
		struct proxy_tls_peer *p = &t->peers[i];
		p->name = server_name
				  ? pt_pstrdup(cf->pool, server_name)
				  : ptls_host(cf->pool, u->peers[i].address);
		if (p->name == NULL && c.verify) {
			pt_conf_error(cf, node,
				      "%s: server %s has no name to verify; "
				      "set \"server_name\"",
				      block, u->peers[i].address);
			return NULL;
		}
		p->ip = p->name != NULL && ptls_is_ip(p->name);
		/* OpenSSL refuses such a name for SNI at each connection */
		if (p->name != NULL && !p->ip &&
		    (p->name[0] == '\0' ||
		     strlen(p->name) > TLSEXT_MAXLEN_host_name)) {
			pt_conf_error(cf, node,
				      "%s: server_name \"%s\": a name sent as "
				      "SNI has 1 to 255 bytes",
				      block, p->name);
			return NULL;
		}
	}
	t->ctx = ptls_ctx(cf, node, &c);
	if (t->ctx == NULL)
		return NULL;
	if (pt_pool_cleanup_add(cf->pool, ptls_free, t) != PT_OK) {
		SSL_CTX_free(t->ctx);
		return NULL;
	}
	return t;
}

struct ssl_st *
pt_proxy_tls_new(struct proxy_tls *t, unsigned peer, int fd, int session)
{
	struct proxy_tls_peer *p = &t->peers[peer];
	SSL *ssl = SSL_new(t->ctx);
	X509_VERIFY_PARAM *vp;
	char why[160];

	if (ssl == NULL)
		goto fail;
	if (!SSL_set_fd(ssl, fd))
		goto fail;
	SSL_set_connect_state(ssl);
	vp = SSL_get0_param(ssl);
	if (p->name != NULL && p->ip) {
		if (t->verify && !X509_VERIFY_PARAM_set1_ip_asc(vp, p->name))
			goto fail;
	} else if (p->name != NULL) {
		if (!SSL_set_tlsext_host_name(ssl, p->name))
			goto fail;
		X509_VERIFY_PARAM_set_hostflags(
			vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (t->verify && !X509_VERIFY_PARAM_set1_host(vp, p->name, 0))
			goto fail;
	}
	if (session) {
		SSL_set_app_data(ssl, p);
		if (p->sess != NULL && SSL_SESSION_is_resumable(p->sess) &&
		    !SSL_set_session(ssl, p->sess))
			ERR_clear_error(); /* a full handshake then */
	}
	return ssl;
fail:
	pt_log(PT_LOG_ERR, 0, "TLS to a backend: %s",
	       pt_tls_reason(why, sizeof(why), NULL));
	SSL_free(ssl);
	return NULL;
}

const char *
pt_proxy_tls_failed(struct proxy_tls *t, unsigned peer, struct ssl_st *ssl)
{
	static char why[384];
	long v = SSL_get_verify_result(ssl);
	struct proxy_tls_peer *p = &t->peers[peer];

	/* a session the peer refuses to resume is of no further use */
	if (p->sess != NULL && SSL_get_app_data(ssl) == p) {
		SSL_SESSION_free(p->sess);
		p->sess = NULL;
	}
	if (t->verify && v != X509_V_OK)
		snprintf(why, sizeof(why), "TLS handshake failed: %s: %s",
			 pt_tls_last_error(), X509_verify_cert_error_string(v));
	else
		snprintf(why, sizeof(why), "TLS handshake failed: %s",
			 pt_tls_last_error());
	return why;
}

int
pt_proxy_tls_quiet(int fd, struct ssl_st *ssl)
{
	char scratch[64];
	ssize_t n;

	/* records that are not data (a TLS 1.3 NewSessionTicket, a
	 * KeyUpdate) are taken by SSL_read and leave it wanting more */
	n = pt_sock_recv(fd, ssl, scratch, sizeof(scratch));
	return n < 0 && errno == EAGAIN;
}

void
pt_proxy_tls_exit(struct proxy_tls *t)
{
	if (t == NULL)
		return;
	for (unsigned i = 0; i < t->npeers; i++) {
		if (t->peers[i].sess != NULL)
			SSL_SESSION_free(t->peers[i].sess);
		t->peers[i].sess = NULL;
	}
}
