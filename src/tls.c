/*
 * tls.c: TLS termination: the `tls` settings, one SSL_CTX per server on a
 * TLS address, the SNI switch between them, and the $ssl_* variables.
 *
 * Contexts are built in postconfig, that is by the master at config load
 * (keys readable only by root work, `portier -t` checks them, a reload
 * with a bad certificate fails and the old cycle keeps serving) and
 * inherited by the workers with fork. Each belongs to the cycle: a pool
 * cleanup frees it, so reloads do not leak.
 *
 * A session starts with the context of its address's default server. The
 * client hello callback looks SNI up with the same table as Host
 * (pt_http_find_server) and moves the session to the chosen server's
 * context before the version, the cipher and the certificate are chosen,
 * copying what SSL_set_SSL_CTX does not (verify mode and depth, options,
 * version bounds, the TLS 1.2 cipher list, the number of TLS 1.3
 * tickets). OpenSSL then picks among that context's certificates (ECDSA,
 * RSA) by the client's signature algorithms. The session cache and the
 * ticket key callbacks stay the default server's: OpenSSL keeps the
 * first context as the session context (each server's sessions keep
 * their own session id context, so they never cross servers).
 *
 * Client verification "optional" accepts any certificate in the handshake
 * and reports the verdict in $ssl_client_verify; "on" fails the handshake
 * without a valid one. A request whose Host names a server that verifies
 * clients differently from the SNI server gets 421 (pt_tls_check_server).
 * CRLs (`crl`) go into the verification store of client_ca with checks
 * for the whole chain; they are part of what the session id context
 * digests (tls_session.c), so a reload with a new CRL lets no session
 * made before it resume without the check.
 */
#include "core.h"
#include "conf.h"
#include "cycle.h"
#include "http.h"
#include "listen.h"
#include "log.h"
#include "pool.h"
#include "sockio.h"
#include "tls.h"
#include "tls_key.h"
#include "tls_session.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define TLS_DEFAULT_CIPHERS                                                    \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"           \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"           \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS   "X25519:P-256:P-384"
#define TLS_OCSP_MAX (64 * 1024)

/* ALPN names we speak, best first, in wire format ("h2" goes first once
 * it exists). */
static const unsigned char tls_alpn[] = "\x08http/1.1";

static const struct {
	const char *name;
	int version;
} tls_versions[] = {
	{"TLSv1", TLS1_VERSION},
	{"TLSv1.1", TLS1_1_VERSION},
	{"TLSv1.2", TLS1_2_VERSION},
	{"TLSv1.3", TLS1_3_VERSION},
};
static const char *const tls_default_protocols[] = {"TLSv1.2", "TLSv1.3"};

/* ---- settings --------------------------------------------------------------
 */

static int tls_set_group(struct pt_conf *, const struct pt_setting *,
			 const config_setting_t *, void *);
static int tls_set_certs(struct pt_conf *, const struct pt_setting *,
			 const config_setting_t *, void *);
static int tls_set_protocols(struct pt_conf *, const struct pt_setting *,
			     const config_setting_t *, void *);
static int tls_set_cache(struct pt_conf *, const struct pt_setting *,
			 const config_setting_t *, void *);
static int tls_set_noted(struct pt_conf *, const struct pt_setting *,
			 const config_setting_t *, void *);
static int tls_set_path(struct pt_conf *, const struct pt_setting *,
			const config_setting_t *, void *);

static const struct pt_setting tls_settings[] = {
	{"tls", PT_T_CUSTOM, PT_SCOPE_MAIN | PT_SCOPE_SERVER, PT_STORE_SRV, 0,
	 tls_set_group, NULL},
	{NULL, 0, 0, 0, 0, NULL, NULL}};

static const struct pt_enum tls_verify_names[] = {
	{"off", PT_TLS_VERIFY_OFF},
	{"optional", PT_TLS_VERIFY_OPTIONAL},
	{"on", PT_TLS_VERIFY_ON},
	{NULL, 0},
};
static const struct pt_range tls_depth_range = {1, 100};
static const struct pt_range tls_timeout_range = {1000, 7 * 86400 * 1000LL};

#define TLS(f)    offsetof(struct pt_tls_srv_conf, f)
#define TLS_SCOPE (PT_SCOPE_MAIN | PT_SCOPE_SERVER)
/* in the order of PT_TLS_* (tls.h): the index is the member's node */
const struct pt_setting pt_tls_members[] = {
	{"certificates", PT_T_CUSTOM, TLS_SCOPE, PT_STORE_SRV, 0, tls_set_certs,
	 NULL},
	{"protocols", PT_T_STRLIST, TLS_SCOPE, PT_STORE_SRV, TLS(protocols),
	 tls_set_protocols, NULL},
	{"ciphers", PT_T_STRING, TLS_SCOPE, PT_STORE_SRV, TLS(ciphers),
	 tls_set_noted, NULL},
	{"session_cache", PT_T_SIZE, TLS_SCOPE, PT_STORE_SRV,
	 TLS(session_cache), tls_set_cache, NULL},
	{"session_tickets", PT_T_FLAG, TLS_SCOPE, PT_STORE_SRV,
	 TLS(session_tickets), tls_set_noted, NULL},
	{"session_timeout", PT_T_DURATION, TLS_SCOPE, PT_STORE_SRV,
	 TLS(session_timeout), tls_set_noted, &tls_timeout_range},
	{"client_ca", PT_T_STRING, TLS_SCOPE, PT_STORE_SRV, TLS(client_ca),
	 tls_set_path, NULL},
	{"verify_client", PT_T_ENUM, TLS_SCOPE, PT_STORE_SRV,
	 TLS(verify_client), tls_set_noted, tls_verify_names},
	{"verify_depth", PT_T_INT, TLS_SCOPE, PT_STORE_SRV, TLS(verify_depth),
	 tls_set_noted, &tls_depth_range},
	{"ocsp_staple_file", PT_T_STRING, TLS_SCOPE, PT_STORE_SRV,
	 TLS(ocsp_staple_file), tls_set_path, NULL},
	{"crl", PT_T_STRING, TLS_SCOPE, PT_STORE_SRV, TLS(crl), tls_set_path,
	 NULL},
	{"password_file", PT_T_STRING, TLS_SCOPE, PT_STORE_SRV,
	 TLS(password_file), tls_set_path, NULL},
	{NULL, 0, 0, 0, 0, NULL, NULL}};

static int
tls_set_group(struct pt_conf *cf, const struct pt_setting *s,
	      const config_setting_t *node, void *conf)
{
	if (!config_setting_is_group(node)) {
		pt_conf_error(cf, node, "\"%s\" expects a group { ... }",
			      s->name);
		return PT_ERROR;
	}
	return pt_conf_walk_table(cf, node, pt_tls_members, "\"tls\"", conf);
}

/* The generic setter, and where the member was set. */
static int
tls_set_noted(struct pt_conf *cf, const struct pt_setting *s,
	      const config_setting_t *node, void *conf)
{
	struct pt_tls_srv_conf *tc = conf;

	tc->nodes[s - pt_tls_members] = node;
	return pt_conf_set_generic(cf, s, node, conf);
}

/* A file name, relative to the config's directory. */
static int
tls_set_path(struct pt_conf *cf, const struct pt_setting *s,
	     const config_setting_t *node, void *conf)
{
	const char **p = (const char **)((char *)conf + s->offset);

	if (tls_set_noted(cf, s, node, conf) != PT_OK)
		return PT_ERROR;
	if (**p == '\0') {
		pt_conf_error(cf, node, "\"%s\": empty file name", s->name);
		return PT_ERROR;
	}
	*p = pt_conf_dir_path(cf, *p);
	return *p != NULL ? PT_OK : PT_ERROR;
}

static const char *
tls_member_string(struct pt_conf *cf, const config_setting_t *g,
		  const char *name)
{
	const config_setting_t *m = config_setting_get_member(g, name);
	const char *v;

	if (m == NULL || config_setting_type(m) != CONFIG_TYPE_STRING ||
	    *(v = config_setting_get_string(m)) == '\0') {
		pt_conf_error(cf, m ? m : g,
			      "\"certificates\": each entry needs \"%s\" = "
			      "\"file\"",
			      name);
		return NULL;
	}
	return pt_conf_dir_path(cf, v);
}

static int
tls_set_certs(struct pt_conf *cf, const struct pt_setting *s,
	      const config_setting_t *node, void *conf)
{
	struct pt_tls_srv_conf *tc = conf;
	int n = config_setting_length(node);

	tc->nodes[PT_TLS_CERTIFICATES] = node;
	if ((!config_setting_is_list(node) && !config_setting_is_array(node)) ||
	    n < 1) {
		pt_conf_error(cf, node,
			      "\"%s\" expects a list of groups: ( { cert = "
			      "\"file\"; key = \"file\"; } )",
			      s->name);
		return PT_ERROR;
	}
	tc->certs = pt_pcalloc(cf->pool, (size_t)n * sizeof(*tc->certs));
	if (tc->certs == NULL)
		return PT_ERROR;
	for (int i = 0; i < n; i++) {
		const config_setting_t *g =
			config_setting_get_elem(node, (unsigned)i);
		struct pt_tls_cert *c = &tc->certs[i];

		if (!config_setting_is_group(g) ||
		    config_setting_length(g) != 2) {
			pt_conf_error(cf, g,
				      "\"%s\": an entry is { cert = \"file\"; "
				      "key = \"file\"; }",
				      s->name);
			return PT_ERROR;
		}
		c->node = g;
		c->cert = tls_member_string(cf, g, "cert");
		c->key = tls_member_string(cf, g, "key");
		if (c->cert == NULL || c->key == NULL)
			return PT_ERROR;
	}
	tc->ncerts = (unsigned)n;
	return PT_OK;
}

static int
tls_version_of(const char *name)
{
	for (size_t i = 0; i < PT_ARRAY_SIZE(tls_versions); i++)
		if (strcmp(tls_versions[i].name, name) == 0)
			return tls_versions[i].version;
	return 0;
}

static int
tls_set_protocols(struct pt_conf *cf, const struct pt_setting *s,
		  const config_setting_t *node, void *conf)
{
	struct pt_tls_srv_conf *tc = conf;

	if (tls_set_noted(cf, s, node, conf) != PT_OK)
		return PT_ERROR;
	if (tc->protocols.n == 0) {
		pt_conf_error(cf, node, "\"%s\": no protocol given", s->name);
		return PT_ERROR;
	}
	for (unsigned i = 0; i < tc->protocols.n; i++)
		if (tls_version_of(tc->protocols.items[i]) == 0) {
			pt_conf_error(cf, node,
				      "\"%s\": unknown protocol \"%s\" (known: "
				      "TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)",
				      s->name, tc->protocols.items[i]);
			return PT_ERROR;
		}
	return PT_OK;
}

static int
tls_set_cache(struct pt_conf *cf, const struct pt_setting *s,
	      const config_setting_t *node, void *conf)
{
	struct pt_tls_srv_conf *tc = conf;

	if (config_setting_type(node) == CONFIG_TYPE_STRING &&
	    strcmp(config_setting_get_string(node), "off") == 0) {
		tc->nodes[PT_TLS_SESSION_CACHE] = node;
		tc->session_cache = 0;
		return PT_OK;
	}
	return tls_set_noted(cf, s, node, conf);
}

/* ---- conf structures -------------------------------------------------------
 */

static void *
tls_create_srv(struct pt_conf *cf)
{
	struct pt_tls_srv_conf *tc = pt_pcalloc(cf->pool, sizeof(*tc));

	if (tc == NULL)
		return NULL;
	tc->session_cache = PT_UNSET;
	tc->session_tickets = PT_UNSET;
	tc->session_timeout = PT_UNSET;
	tc->verify_client = PT_UNSET;
	tc->verify_depth = PT_UNSET;
	return tc;
}

/* A member the child did not set comes from the parent, with its node. */
#define TLS_MERGE(member, idx, unset, def)                                     \
	do {                                                                   \
		if (c->member == (unset)) {                                    \
			c->member = p->member != (unset) ? p->member : (def);  \
			c->nodes[idx] = p->nodes[idx];                         \
		}                                                              \
	} while (0)

static int
tls_merge_srv(struct pt_conf *cf, void *parent, void *child)
{
	struct pt_tls_srv_conf *p = parent, *c = child;

	(void)cf;
	if (c->certs == NULL) {
		c->certs = p->certs;
		c->ncerts = p->ncerts;
		c->nodes[PT_TLS_CERTIFICATES] = p->nodes[PT_TLS_CERTIFICATES];
	}
	if (c->protocols.items == NULL) {
		c->protocols = p->protocols;
		c->nodes[PT_TLS_PROTOCOLS] = p->nodes[PT_TLS_PROTOCOLS];
		if (c->protocols.items == NULL) {
			c->protocols.items =
				(const char **)(uintptr_t)tls_default_protocols;
			c->protocols.n = PT_ARRAY_SIZE(tls_default_protocols);
		}
	}
	TLS_MERGE(ciphers, PT_TLS_CIPHERS, NULL, TLS_DEFAULT_CIPHERS);
	TLS_MERGE(session_cache, PT_TLS_SESSION_CACHE, PT_UNSET,
		  10 * 1024 * 1024);
	TLS_MERGE(session_tickets, PT_TLS_SESSION_TICKETS, PT_UNSET, 1);
	TLS_MERGE(session_timeout, PT_TLS_SESSION_TIMEOUT, PT_UNSET,
		  5 * 60 * 1000);
	TLS_MERGE(client_ca, PT_TLS_CLIENT_CA, NULL, NULL);
	TLS_MERGE(verify_client, PT_TLS_VERIFY_CLIENT, PT_UNSET,
		  PT_TLS_VERIFY_OFF);
	TLS_MERGE(verify_depth, PT_TLS_VERIFY_DEPTH, PT_UNSET, 10);
	TLS_MERGE(ocsp_staple_file, PT_TLS_OCSP_STAPLE_FILE, NULL, NULL);
	TLS_MERGE(crl, PT_TLS_CRL, NULL, NULL);
	TLS_MERGE(password_file, PT_TLS_PASSWORD_FILE, NULL, NULL);
	return PT_OK;
}

/* ---- building a context
 * ------------------------------------------------------ */

/* A readable file, or an error naming it with errno's text. */
static int
tls_readable(struct pt_conf *cf, const config_setting_t *node, const char *what,
	     const char *path)
{
	if (access(path, R_OK) == 0)
		return PT_OK;
	pt_conf_error(cf, node, "tls: %s \"%s\": %s", what, path,
		      strerror(errno));
	return PT_ERROR;
}

/* Every certificate and key of the group; the password file is read
 * for the keys of this context and cleared once they are loaded. */
static int
tls_load_certs(struct pt_conf *cf, struct pt_tls_srv_conf *tc, SSL_CTX *ctx)
{
	struct pt_tls_pass pw;
	char why[256];
	int rc = PT_ERROR;

	if (pt_tls_pass_read(cf, tc->nodes[PT_TLS_PASSWORD_FILE],
			     tc->password_file, &pw) != PT_OK)
		goto fail;
	for (unsigned i = 0; i < tc->ncerts; i++) {
		const struct pt_tls_cert *c = &tc->certs[i];

		if (tls_readable(cf, c->node, "cert", c->cert) != PT_OK ||
		    tls_readable(cf, c->node, "key", c->key) != PT_OK)
			goto fail;
		if (SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1) {
			pt_conf_error(cf, c->node, "tls: cert \"%s\": %s",
				      c->cert,
				      pt_tls_reason(why, sizeof(why), NULL));
			goto fail;
		}
		if (pt_tls_key_use(cf, c->node, ctx, c->key, c->cert, &pw) !=
		    PT_OK)
			goto fail;
	}
	rc = PT_OK;
fail:
	pt_tls_pass_free(&pw);
	return rc;
}

static int
tls_set_versions(struct pt_conf *cf, struct pt_tls_srv_conf *tc, SSL_CTX *ctx)
{
	int min = 0, max = 0;

	/* the range from the oldest to the newest named */
	for (unsigned i = 0; i < tc->protocols.n; i++) {
		int v = tls_version_of(tc->protocols.items[i]);
		if (min == 0 || v < min)
			min = v;
		if (v > max)
			max = v;
	}
	if (SSL_CTX_set_min_proto_version(ctx, min) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, max) != 1) {
		char why[256];
		pt_conf_error(cf, tc->nodes[PT_TLS_PROTOCOLS],
			      "tls: protocols: %s",
			      pt_tls_reason(why, sizeof(why), NULL));
		return PT_ERROR;
	}
	return PT_OK;
}

static int
tls_verify_accept(int ok, X509_STORE_CTX *x)
{
	(void)ok;
	(void)x;
	return 1; /* "optional": the verdict is $ssl_client_verify's */
}

/* "on": the reason a certificate is refused goes to the log (the
 * handshake's own error says only "certificate verify failed"). */
static int
tls_verify_on(int ok, X509_STORE_CTX *x)
{
	SSL *ssl;
	struct pt_conn *c;

	if (ok)
		return 1;
	ssl = X509_STORE_CTX_get_ex_data(x,
					 SSL_get_ex_data_X509_STORE_CTX_idx());
	c = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
	if (c != NULL)
		pt_conn_log(c, PT_LOG_INFO, 0,
			    "client certificate refused: %s (depth %d)",
			    X509_verify_cert_error_string(
				    X509_STORE_CTX_get_error(x)),
			    X509_STORE_CTX_get_error_depth(x));
	return 0;
}

/* "YYYY-MM-DD HH:MM:SS UTC", or "?" */
static const char *
tls_time_text(const ASN1_TIME *t, char *buf, size_t cap)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, cap, "?");
	return buf;
}

/* A CRL out of its dates is kept (the operator may be renewing it) but
 * said: every certificate it covers will be refused meanwhile. */
static void
tls_crl_dates(struct pt_conf *cf, const config_setting_t *node,
	      const char *path, const X509_CRL *crl)
{
	const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
	const ASN1_TIME *last = X509_CRL_get0_lastUpdate(crl);
	char issuer[256], when[64];

	if (X509_NAME_oneline(X509_CRL_get_issuer(crl), issuer,
			      sizeof(issuer)) == NULL)
		snprintf(issuer, sizeof(issuer), "?");
	if (next != NULL && X509_cmp_current_time(next) < 0)
		pt_conf_warn(cf, node,
			     "tls: crl \"%s\": the CRL of %s expired on %s: "
			     "the certificates it covers will be refused "
			     "(\"CRL has expired\")",
			     path, issuer,
			     tls_time_text(next, when, sizeof(when)));
	else if (last != NULL && X509_cmp_current_time(last) > 0)
		pt_conf_warn(cf, node,
			     "tls: crl \"%s\": the CRL of %s is valid from "
			     "%s only: the certificates it covers will be "
			     "refused (\"CRL is not yet valid\")",
			     path, issuer,
			     tls_time_text(last, when, sizeof(when)));
	ERR_clear_error();
}

int
pt_tls_load_crl(struct pt_conf *cf, const config_setting_t *node,
		const char *path, X509_STORE *store, int warn)
{
	unsigned n = 0;
	unsigned long e;
	X509_CRL *crl;
	char why[256];
	BIO *bio;

	if (tls_readable(cf, node, "crl", path) != PT_OK)
		return PT_ERROR;
	ERR_clear_error();
	bio = BIO_new_file(path, "r");
	if (bio == NULL) {
		pt_conf_error(cf, node, "tls: crl \"%s\": %s", path,
			      pt_tls_reason(why, sizeof(why), NULL));
		return PT_ERROR;
	}
	while ((crl = PEM_read_bio_X509_CRL(bio, NULL, pt_tls_no_passphrase,
					    NULL)) != NULL) {
		int added = X509_STORE_add_crl(store, crl) == 1;

		n++;
		if (added && warn)
			tls_crl_dates(cf, node, path, crl);
		X509_CRL_free(crl);
		if (!added) {
			BIO_free(bio);
			pt_conf_error(cf, node, "tls: crl \"%s\": CRL %u: %s",
				      path, n,
				      pt_tls_reason(why, sizeof(why), NULL));
			return PT_ERROR;
		}
	}
	BIO_free(bio);
	/* the end of the file is "no start line"; anything else is a CRL
	 * that does not parse */
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) != ERR_LIB_PEM ||
	    ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
		pt_conf_error(cf, node, "tls: crl \"%s\": CRL %u: %s", path,
			      n + 1, pt_tls_reason(why, sizeof(why), NULL));
		return PT_ERROR;
	}
	ERR_clear_error();
	if (n == 0) {
		pt_conf_error(cf, node,
			      "tls: crl \"%s\": no CRL in the file (PEM "
			      "\"X509 CRL\" expected)",
			      path);
		return PT_ERROR;
	}
	if (X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK |
						X509_V_FLAG_CRL_CHECK_ALL) !=
	    1) {
		pt_conf_error(cf, node, "tls: crl \"%s\": %s", path,
			      pt_tls_reason(why, sizeof(why), NULL));
		return PT_ERROR;
	}
	return PT_OK;
}

/* Whether a member node was set in the main level's tls group. */
static int
tls_at_main(const config_setting_t *node)
{
	const config_setting_t *group =
		node != NULL ? config_setting_parent(node) : NULL;
	const config_setting_t *up =
		group != NULL ? config_setting_parent(group) : NULL;

	return up != NULL && config_setting_is_root(up);
}

/* After client_ca: its store is the one the CRLs go to. The servers
 * that inherit one setting each load it: the first one warns. A crl of
 * the main level is for the servers that verify clients (as nginx's
 * ssl_crl): one without client_ca has no use for it; a server's own crl
 * without client_ca is a mistake. */
static int
tls_set_crl(struct pt_conf *cf, struct pt_tls_srv_conf *tc, SSL_CTX *ctx)
{
	const struct pt_http_main_conf *mc = cf->main_conf[PT_HTTP_CORE_INDEX];
	const config_setting_t *node = tc->nodes[PT_TLS_CRL];
	int warn = 1;

	if (tc->crl == NULL)
		return PT_OK;
	if (tc->client_ca == NULL) {
		if (tls_at_main(node))
			return PT_OK;
		pt_conf_error(cf, node, "tls: crl needs client_ca");
		return PT_ERROR;
	}
	for (unsigned i = 0; warn && i < mc->nservers; i++) {
		const struct pt_tls_srv_conf *o = pt_tls_srv(mc->servers[i]);
		if (o != tc && o->ctx != NULL && o->nodes[PT_TLS_CRL] == node)
			warn = 0;
	}
	return pt_tls_load_crl(cf, node, tc->crl, SSL_CTX_get_cert_store(ctx),
			       warn);
}

/* A name not yet in names goes to its end (file order, each once). */
static int
tls_ca_name_add(STACK_OF(X509_NAME) * names, const X509_NAME *name)
{
	X509_NAME *dup;

	for (int i = 0; i < sk_X509_NAME_num(names); i++)
		if (X509_NAME_cmp(sk_X509_NAME_value(names, i), name) == 0)
			return 1;
	dup = X509_NAME_dup(name);
	if (dup == NULL || sk_X509_NAME_push(names, dup) <= 0) {
		X509_NAME_free(dup);
		return 0;
	}
	return 1;
}

/* The subjects of client_ca's certificates, for the CertificateRequest:
 * what SSL_load_client_CA_file gives, read without its fallback to
 * OpenSSL's prompt. NULL with the reason queued. */
static STACK_OF(X509_NAME) * tls_ca_names(const char *path)
{
	STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
	BIO *bio = BIO_new_file(path, "r");
	int ok = names != NULL && bio != NULL;
	X509 *x;

	while (ok && (x = PEM_read_bio_X509(bio, NULL, pt_tls_no_passphrase,
					    NULL)) != NULL) {
		ok = tls_ca_name_add(names, X509_get_subject_name(x));
		X509_free(x);
	}
	BIO_free(bio);
	if (ok && sk_X509_NAME_num(names) > 0) {
		ERR_clear_error(); /* the end of the file */
		return names;
	}
	sk_X509_NAME_pop_free(names, X509_NAME_free);
	return NULL;
}

static int
tls_set_client_ca(struct pt_conf *cf, struct pt_tls_srv_conf *tc, SSL_CTX *ctx)
{
	const config_setting_t *node = tc->nodes[PT_TLS_CLIENT_CA];
	STACK_OF(X509_NAME) * names;
	char why[256];

	if (tc->client_ca == NULL) {
		if (tc->verify_client == PT_TLS_VERIFY_OFF)
			return PT_OK;
		pt_conf_error(cf, tc->nodes[PT_TLS_VERIFY_CLIENT],
			      "tls: verify_client needs client_ca");
		return PT_ERROR;
	}
	if (tls_readable(cf, node, "client_ca", tc->client_ca) != PT_OK)
		return PT_ERROR;
	if (SSL_CTX_load_verify_locations(ctx, tc->client_ca, NULL) != 1) {
		pt_conf_error(cf, node, "tls: client_ca \"%s\": %s",
			      tc->client_ca,
			      pt_tls_reason(why, sizeof(why), NULL));
		return PT_ERROR;
	}
	names = tls_ca_names(tc->client_ca);
	if (names == NULL) {
		pt_conf_error(cf, node, "tls: client_ca \"%s\": %s",
			      tc->client_ca,
			      pt_tls_reason(why, sizeof(why), NULL));
		return PT_ERROR;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify_depth(ctx, (int)tc->verify_depth);
	if (tc->verify_client == PT_TLS_VERIFY_ON)
		SSL_CTX_set_verify(
			ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
			tls_verify_on);
	else if (tc->verify_client == PT_TLS_VERIFY_OPTIONAL)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_accept);
	return PT_OK;
}

static int
tls_ocsp_status(SSL *ssl, void *arg)
{
	const struct pt_tls_srv_conf *tc = arg;
	unsigned char *copy;

	if (tc->ocsp == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	copy = OPENSSL_memdup(tc->ocsp, tc->ocsp_len);
	if (copy == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	/* OpenSSL frees it with the session */
	if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)tc->ocsp_len) !=
	    1) {
		OPENSSL_free(copy);
		return SSL_TLSEXT_ERR_NOACK;
	}
	return SSL_TLSEXT_ERR_OK;
}

/* Read the DER response to staple, once, and check that it parses. */
static int
tls_load_ocsp(struct pt_conf *cf, struct pt_tls_srv_conf *tc, SSL_CTX *ctx)
{
	const config_setting_t *node = tc->nodes[PT_TLS_OCSP_STAPLE_FILE];
	const char *path = tc->ocsp_staple_file;
	const unsigned char *p;
	OCSP_RESPONSE *resp;
	FILE *f;
	size_t n;

	if (path == NULL)
		return PT_OK;
	tc->ocsp = pt_palloc(cf->pool, TLS_OCSP_MAX);
	if (tc->ocsp == NULL)
		return PT_ERROR;
	f = fopen(path, "rb");
	if (f == NULL) {
		pt_conf_error(cf, node, "tls: ocsp_staple_file \"%s\": %s",
			      path, strerror(errno));
		return PT_ERROR;
	}
	n = fread(tc->ocsp, 1, TLS_OCSP_MAX, f);
	fclose(f);
	p = tc->ocsp;
	resp = n > 0 && n < TLS_OCSP_MAX ? d2i_OCSP_RESPONSE(NULL, &p, (long)n)
					 : NULL;
	if (resp == NULL) {
		ERR_clear_error();
		pt_conf_error(cf, node,
			      "tls: ocsp_staple_file \"%s\": not a DER OCSP "
			      "response",
			      path);
		return PT_ERROR;
	}
	OCSP_RESPONSE_free(resp);
	tc->ocsp_len = n;
	SSL_CTX_set_tlsext_status_cb(ctx, tls_ocsp_status);
	SSL_CTX_set_tlsext_status_arg(ctx, tc);
	return PT_OK;
}

static int
tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned char *sel = NULL;

	(void)ssl;
	(void)arg;
	/* our order wins; nothing in common is no ALPN, not an alert */
	if (SSL_select_next_proto(&sel, outlen, tls_alpn, sizeof(tls_alpn) - 1,
				  in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static int tls_client_hello(SSL *ssl, int *alert, void *arg);
static int tls_servername(SSL *ssl, int *alert, void *arg);

static void
tls_ctx_free(void *data)
{
	SSL_CTX_free(data);
}

/* The session id context of server number index: stable across reloads
 * of the same file, different for each server block. */
static int
tls_sid_ctx(struct pt_conf *cf, unsigned index, unsigned char *md,
	    unsigned *mdlen)
{
	char text[PATH_MAX + 32];
	int n = snprintf(text, sizeof(text), "%s#%u", cf->cycle->conf_file,
			 index);

	return EVP_Digest(text, (size_t)PT_MIN(n, (int)sizeof(text) - 1), md,
			  mdlen, EVP_sha256(), NULL) == 1
		       ? PT_OK
		       : PT_ERROR;
}

static int
tls_build_ctx(struct pt_conf *cf, struct pt_http_server *srv, unsigned index)
{
	struct pt_tls_srv_conf *tc = pt_tls_srv(srv);
	unsigned char sid[EVP_MAX_MD_SIZE];
	unsigned sidlen = 0;
	char why[256];
	SSL_CTX *ctx;

	if (tc->certs == NULL) {
		pt_conf_error(cf, NULL,
			      "%s:%u: server listens with \"ssl\" but has no "
			      "tls certificates",
			      srv->file, srv->line);
		return PT_ERROR;
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL ||
	    pt_pool_cleanup_add(cf->pool, tls_ctx_free, ctx) != PT_OK) {
		SSL_CTX_free(ctx);
		pt_conf_error(cf, NULL, "SSL_CTX_new() failed: %s",
			      pt_tls_reason(why, sizeof(why), NULL));
		return PT_ERROR;
	}
	tc->ctx = ctx;
	/* the certificate files' reader: never OpenSSL's prompt */
	SSL_CTX_set_default_passwd_cb(ctx, pt_tls_no_passphrase);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_NO_COMPRESSION |
					 SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	/* one read(2) takes what has arrived, not a record header and then
	 * its body; readers go on until EAGAIN, so bytes read ahead are
	 * never left behind an edge that will not come again */
	SSL_CTX_set_read_ahead(ctx, 1);
	if (tls_set_versions(cf, tc, ctx) != PT_OK)
		return PT_ERROR;
	if (SSL_CTX_set_cipher_list(ctx, tc->ciphers) != 1) {
		pt_conf_error(cf, tc->nodes[PT_TLS_CIPHERS],
			      "tls: ciphers \"%s\": %s", tc->ciphers,
			      pt_tls_reason(why, sizeof(why), NULL));
		return PT_ERROR;
	}
	if (SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1) {
		pt_conf_error(cf, NULL, "tls: groups " TLS_GROUPS ": %s",
			      pt_tls_reason(why, sizeof(why), NULL));
		return PT_ERROR;
	}
	if (tls_load_certs(cf, tc, ctx) != PT_OK ||
	    tls_set_client_ca(cf, tc, ctx) != PT_OK ||
	    tls_set_crl(cf, tc, ctx) != PT_OK ||
	    tls_load_ocsp(cf, tc, ctx) != PT_OK)
		return PT_ERROR;
	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, NULL);
	SSL_CTX_set_client_hello_cb(ctx, tls_client_hello, NULL);
	SSL_CTX_set_tlsext_servername_callback(ctx, tls_servername);
	if (tls_sid_ctx(cf, index, sid, &sidlen) != PT_OK)
		return PT_ERROR;
	return pt_tls_sessions_setup(cf, ctx, (size_t)tc->session_cache,
				     tc->session_tickets, tc->session_timeout,
				     sid,
				     PT_MIN(sidlen, SSL_MAX_SID_CTX_LENGTH));
}

/* A context for every server on a TLS address (once each). */
static int
tls_postconfig(struct pt_conf *cf)
{
	struct pt_http_main_conf *mc = cf->main_conf[PT_HTTP_CORE_INDEX];
	struct pt_cycle *cycle = cf->cycle;

	PT_ASSERT(pt_module_index(&pt_tls_module) == PT_TLS_INDEX);
	for (unsigned i = 0; i < cycle->nlisteners; i++) {
		const struct pt_listener *ls = &cycle->listeners[i];
		const struct pt_http_port *port = ls->ctx;

		if (ls->handler != pt_http_init_conn || port == NULL)
			continue;
		for (unsigned a = 0; a < port->naddrs; a++) {
			const struct pt_http_addr *ha = &port->addrs[a];
			for (unsigned s = 0; ha->ssl && s < ha->nservers; s++) {
				struct pt_http_server *srv = ha->servers[s];
				unsigned index = 0;
				if (pt_tls_srv(srv)->ctx != NULL)
					continue;
				while (mc->servers[index] != srv)
					index++;
				if (tls_build_ctx(cf, srv, index) != PT_OK)
					return PT_ERROR;
			}
		}
	}
	return PT_OK;
}

/* ---- sessions
 * ------------------------------------------------------------------ */

/*
 * The host_name of a server_name extension (RFC 6066 section 3), lower
 * case and without a trailing dot as Host is compared: its length, 0 if
 * there is none or it is not a plain DNS name (then the default server
 * serves), or -1 for a name no client sends, with a control byte, a
 * space, a byte outside ASCII or a path separator. OpenSSL refuses only
 * NUL: what else it accepts becomes $ssl_server_name as sent, and a CR LF
 * there would split a header that carries it to a backend. Such a name
 * fails the handshake, as nginx's Host check does.
 */
static ssize_t
tls_sni(const unsigned char *p, size_t len, char *out, size_t cap)
{
	size_t list, n;
	int plain = 1;

	if (len < 5)
		return 0;
	list = (size_t)p[0] << 8 | p[1];
	if (list + 2 != len || p[2] != 0 /* host_name */)
		return 0;
	n = (size_t)p[3] << 8 | p[4];
	if (n == 0 || n + 5 > len)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = p[5 + i];
		if (ch <= 0x20 || ch >= 0x7f || ch == '/' || ch == '\\')
			return -1;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
		      ch == '_'))
			plain = 0;
		else if (i < cap)
			out[i] = (char)pt_tolower(ch);
	}
	if (!plain || n >= cap)
		return 0;
	if (out[n - 1] == '.')
		n--;
	return (ssize_t)n;
}

/* Move ssl to ctx, with what SSL_set_SSL_CTX leaves behind. */
static void
tls_switch(SSL *ssl, const struct pt_tls_srv_conf *from,
	   const struct pt_tls_srv_conf *to)
{
	SSL_CTX *ctx = to->ctx;

	SSL_set_SSL_CTX(ssl, ctx);
	SSL_set_verify(ssl, SSL_CTX_get_verify_mode(ctx),
		       SSL_CTX_get_verify_callback(ctx));
	SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(ctx));
	SSL_clear_options(ssl,
			  SSL_get_options(ssl) & ~SSL_CTX_get_options(ctx));
	SSL_set_options(ssl, SSL_CTX_get_options(ctx));
	SSL_set_min_proto_version(ssl, SSL_CTX_get_min_proto_version(ctx));
	SSL_set_max_proto_version(ssl, SSL_CTX_get_max_proto_version(ctx));
	/* TLS 1.3 tickets: SSL_new took the count of the default server's
	 * context, 0 when it has neither cache nor tickets */
	(void)SSL_set_num_tickets(ssl, SSL_CTX_get_num_tickets(ctx));
	if (strcmp(from->ciphers, to->ciphers) != 0)
		(void)SSL_set_cipher_list(ssl, to->ciphers);
}

static int
tls_client_hello(SSL *ssl, int *alert, void *arg)
{
	struct pt_conn *c = SSL_get_app_data(ssl);
	const unsigned char *ext;
	size_t extlen;
	char name[256];
	struct pt_str host = {name, 0};
	struct pt_http_server *srv;

	(void)arg;
	if (c == NULL)
		return SSL_CLIENT_HELLO_SUCCESS;
	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext,
				      &extlen) == 1) {
		ssize_t n = tls_sni(ext, extlen, name, sizeof(name));
		if (n < 0) {
			pt_conn_log(c, PT_LOG_INFO, 0,
				    "TLS handshake refused: the SNI name holds "
				    "bytes no host name has");
			*alert = SSL_AD_UNRECOGNIZED_NAME;
			return SSL_CLIENT_HELLO_ERROR;
		}
		host.len = (size_t)n;
	}
	srv = host.len ? pt_http_find_server(c->addr, host)
		       : c->addr->default_server;
	if (srv != c->tls_server) {
		tls_switch(ssl, pt_tls_srv(c->tls_server), pt_tls_srv(srv));
		c->tls_server = srv;
	}
	return SSL_CLIENT_HELLO_SUCCESS;
}

/*
 * The server was chosen by tls_client_hello; acknowledging the name here
 * is what makes OpenSSL keep it in the session, so that a resumed TLS 1.2
 * session still reports it ($ssl_server_name).
 */
static int
tls_servername(SSL *ssl, int *alert, void *arg)
{
	(void)ssl;
	(void)alert;
	(void)arg;
	return SSL_TLSEXT_ERR_OK;
}

struct ssl_st *
pt_tls_new(struct pt_conn *c)
{
	struct pt_http_server *srv = c->addr->default_server;
	SSL *ssl = SSL_new(pt_tls_srv(srv)->ctx);
	char why[256];

	if (ssl == NULL || SSL_set_fd(ssl, c->io.fd) != 1) {
		pt_conn_log(c, PT_LOG_ERR, 0, "new TLS session: %s",
			    pt_tls_reason(why, sizeof(why), NULL));
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_app_data(ssl, c);
	SSL_set_accept_state(ssl);
	c->tls_server = srv;
	return ssl;
}

int
pt_tls_check_server(const struct pt_conn *c, const struct pt_http_server *srv)
{
	const struct pt_tls_srv_conf *a, *b;

	if (c->ssl == NULL || c->tls_server == NULL || srv == c->tls_server)
		return PT_OK;
	a = pt_tls_srv(c->tls_server);
	b = pt_tls_srv(srv);
	if (a->verify_client == PT_TLS_VERIFY_OFF &&
	    b->verify_client == PT_TLS_VERIFY_OFF)
		return PT_OK;
	if (a->verify_client == b->verify_client &&
	    a->verify_depth == b->verify_depth && a->client_ca != NULL &&
	    b->client_ca != NULL && strcmp(a->client_ca, b->client_ca) == 0 &&
	    (a->crl == b->crl ||
	     (a->crl != NULL && b->crl != NULL && strcmp(a->crl, b->crl) == 0)))
		return PT_OK;
	return 421;
}

/* ---- variables
 * ------------------------------------------------------------------ */

static int
tls_var_str(struct pt_str *v, const char *s)
{
	v->data = s != NULL ? s : "";
	v->len = s != NULL ? strlen(s) : 0;
	return PT_OK;
}

static int
tls_var_protocol(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)a;
	return tls_var_str(v,
			   r->conn->ssl ? SSL_get_version(r->conn->ssl) : NULL);
}

static int
tls_var_cipher(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)a;
	return tls_var_str(v, r->conn->ssl ? SSL_get_cipher_name(r->conn->ssl)
					   : NULL);
}

static int
tls_var_server_name(struct pt_http_request *r, struct pt_str *v,
		    struct pt_str a)
{
	(void)a;
	return tls_var_str(
		v, r->conn->ssl ? SSL_get_servername(r->conn->ssl,
						     TLSEXT_NAMETYPE_host_name)
				: NULL);
}

static int
tls_var_reused(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)a;
	if (r->conn->ssl == NULL)
		return tls_var_str(v, NULL);
	return tls_var_str(v, SSL_session_reused(r->conn->ssl) ? "r" : ".");
}

static int
tls_var_https(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)a;
	return tls_var_str(v, r->conn->ssl ? "on" : NULL);
}

static int
tls_var_client_verify(struct pt_http_request *r, struct pt_str *v,
		      struct pt_str a)
{
	SSL *ssl = r->conn->ssl;
	long res;
	char *s;

	(void)a;
	if (ssl == NULL)
		return tls_var_str(v, NULL);
	if (SSL_get0_peer_certificate(ssl) == NULL)
		return tls_var_str(v, "NONE");
	res = SSL_get_verify_result(ssl);
	if (res == X509_V_OK)
		return tls_var_str(v, "SUCCESS");
	s = pt_psprintf(r->pool, "FAILED:%s",
			X509_verify_cert_error_string(res));
	return s != NULL ? tls_var_str(v, s) : PT_ERROR;
}

/* The client certificate's subject (or issuer) name, RFC 2253. */
static int
tls_var_dn(struct pt_http_request *r, struct pt_str *v, int issuer)
{
	X509 *cert =
		r->conn->ssl ? SSL_get0_peer_certificate(r->conn->ssl) : NULL;
	BIO *bio;
	char *mem, *s;
	long n;

	if (cert == NULL)
		return tls_var_str(v, NULL);
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL)
		return PT_ERROR;
	if (X509_NAME_print_ex(bio,
			       issuer ? X509_get_issuer_name(cert)
				      : X509_get_subject_name(cert),
			       0, XN_FLAG_RFC2253) < 0) {
		BIO_free(bio);
		ERR_clear_error();
		return PT_ERROR;
	}
	n = BIO_get_mem_data(bio, &mem);
	s = n > 0 ? pt_pstrndup(r->pool, mem, (size_t)n) : NULL;
	BIO_free(bio);
	if (n > 0 && s == NULL)
		return PT_ERROR;
	v->data = s != NULL ? s : "";
	v->len = n > 0 ? (size_t)n : 0;
	return PT_OK;
}

static int
tls_var_client_s_dn(struct pt_http_request *r, struct pt_str *v,
		    struct pt_str a)
{
	(void)a;
	return tls_var_dn(r, v, 0);
}

static int
tls_var_client_i_dn(struct pt_http_request *r, struct pt_str *v,
		    struct pt_str a)
{
	(void)a;
	return tls_var_dn(r, v, 1);
}

/* Bytes as hex digits into the request's pool. */
static int
tls_var_hex(struct pt_http_request *r, struct pt_str *v, const unsigned char *p,
	    size_t n, const char *digits)
{
	char *s = pt_pnalloc(r->pool, n * 2 + 1);

	if (s == NULL)
		return PT_ERROR;
	for (size_t i = 0; i < n; i++) {
		s[2 * i] = digits[p[i] >> 4];
		s[2 * i + 1] = digits[p[i] & 15];
	}
	v->data = s;
	v->len = n * 2;
	return PT_OK;
}

/* The serial number in upper-case hex, as nginx and openssl print it. */
static int
tls_var_client_serial(struct pt_http_request *r, struct pt_str *v,
		      struct pt_str a)
{
	X509 *cert =
		r->conn->ssl ? SSL_get0_peer_certificate(r->conn->ssl) : NULL;
	const ASN1_INTEGER *serial;
	unsigned char buf[64];
	BIGNUM *bn;
	int n;

	(void)a;
	if (cert == NULL)
		return tls_var_str(v, NULL);
	serial = X509_get0_serialNumber(cert);
	bn = ASN1_INTEGER_to_BN(serial, NULL);
	n = bn != NULL ? BN_num_bytes(bn) : -1;
	if (n < 0 || n > (int)sizeof(buf)) {
		BN_free(bn);
		ERR_clear_error();
		return tls_var_str(v, NULL);
	}
	n = BN_bn2bin(bn, buf);
	BN_free(bn);
	if (n == 0) { /* a zero serial: "00" */
		buf[0] = 0;
		n = 1;
	}
	return tls_var_hex(r, v, buf, (size_t)n, "0123456789ABCDEF");
}

/* The SHA-1 of the certificate, lower-case hex, as nginx's. */
static int
tls_var_client_fingerprint(struct pt_http_request *r, struct pt_str *v,
			   struct pt_str a)
{
	X509 *cert =
		r->conn->ssl ? SSL_get0_peer_certificate(r->conn->ssl) : NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;

	(void)a;
	if (cert == NULL)
		return tls_var_str(v, NULL);
	if (X509_digest(cert, EVP_sha1(), md, &n) != 1) {
		ERR_clear_error();
		return tls_var_str(v, NULL);
	}
	return tls_var_hex(r, v, md, n, "0123456789abcdef");
}

static int
tls_var_alpn(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	const unsigned char *p = NULL;
	unsigned n = 0;

	(void)a;
	if (r->conn->ssl != NULL)
		SSL_get0_alpn_selected(r->conn->ssl, &p, &n);
	v->data = p != NULL ? (const char *)p : "";
	v->len = p != NULL ? n : 0;
	return PT_OK;
}

static const struct pt_http_var tls_vars[] = {
	{"ssl_protocol", 0, tls_var_protocol},
	{"ssl_cipher", 0, tls_var_cipher},
	{"ssl_server_name", 0, tls_var_server_name},
	{"ssl_client_verify", 0, tls_var_client_verify},
	{"ssl_client_s_dn", 0, tls_var_client_s_dn},
	{"ssl_client_i_dn", 0, tls_var_client_i_dn},
	{"ssl_client_serial", 0, tls_var_client_serial},
	{"ssl_client_fingerprint", 0, tls_var_client_fingerprint},
	{"ssl_alpn_protocol", 0, tls_var_alpn},
	{"ssl_session_reused", 0, tls_var_reused},
	{"https", 0, tls_var_https},
	{NULL, 0, NULL},
};

const struct pt_module pt_tls_module = {
	.name = "tls",
	.settings = tls_settings,
	.create_srv = tls_create_srv,
	.merge_srv = tls_merge_srv,
	.postconfig = tls_postconfig,
	.vars = tls_vars,
};
