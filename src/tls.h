/*
 * tls.h: TLS termination (module "tls", a core module): the `tls` group
 * of settings at main and server level, one SSL_CTX per server that
 * listens on a TLS address (built by the master at config load), the
 * choice of a server by SNI, and the $ssl_* variables.
 *
 * The connection side (peeking the first byte, driving the handshake,
 * the 400 for plain HTTP on a TLS port) is http_request.c's; socket I/O
 * on a session is sockio.h's.
 */
#ifndef PT_TLS_H
#define PT_TLS_H

#include "core.h"
#include "module.h"

struct pt_conn;
struct pt_http_server;
struct ssl_st;
struct ssl_ctx_st;
struct x509_store_st;

enum { PT_TLS_VERIFY_OFF = 0, PT_TLS_VERIFY_OPTIONAL, PT_TLS_VERIFY_ON };

struct pt_tls_cert {
	const char *cert; /* PEM: the certificate, then its chain */
	const char *key;
	const config_setting_t *node;
};

/* The members of the `tls` group, in the order of the table in tls.c
 * (the index into nodes[]). */
enum {
	PT_TLS_CERTIFICATES = 0,
	PT_TLS_PROTOCOLS,
	PT_TLS_CIPHERS,
	PT_TLS_SESSION_CACHE,
	PT_TLS_SESSION_TICKETS,
	PT_TLS_SESSION_TIMEOUT,
	PT_TLS_CLIENT_CA,
	PT_TLS_VERIFY_CLIENT,
	PT_TLS_VERIFY_DEPTH,
	PT_TLS_OCSP_STAPLE_FILE,
	PT_TLS_CRL,
	PT_TLS_PASSWORD_FILE,
	PT_TLS_NMEMBERS
};

/* A server's TLS settings (merged key by key from main level). */
struct pt_tls_srv_conf {
	struct pt_tls_cert *certs; /* NULL: unset */
	unsigned ncerts;
	struct pt_strlist protocols;
	const char *ciphers;
	int64_t session_cache; /* bytes; 0: off */
	int session_tickets;
	int64_t session_timeout; /* ms */
	const char *client_ca;
	int verify_client; /* PT_TLS_VERIFY_* */
	int64_t verify_depth;
	const char *ocsp_staple_file;
	const char *crl; /* PEM CRLs checked against client certificates */
	const char *password_file; /* passphrases of encrypted keys */
	/* where each member was set (for errors found when building) */
	const config_setting_t *nodes[PT_TLS_NMEMBERS];

	/* built at load for a server on a TLS address; freed with the
	 * cycle's pool */
	struct ssl_ctx_st *ctx;
	unsigned char *ocsp; /* the DER response stapled, or NULL */
	size_t ocsp_len;
};

extern const struct pt_module pt_tls_module;
/* The members of the `tls` group (checked against the man page). */
extern const struct pt_setting pt_tls_members[];

/* The module's place in pt_modules[] (PT_CORE_MODULES, module.h). */
#define PT_TLS_INDEX 2
#define pt_tls_srv(srv)                                                        \
	((struct pt_tls_srv_conf *)(srv)->srv_conf[PT_TLS_INDEX])

/*
 * A TLS session for c, a new connection on a TLS address (c->addr->ssl),
 * in accept state on c's socket, with the context of the address's
 * default server until SNI picks another (c->tls_server is set to the
 * server chosen). NULL (logged) when out of memory; the caller closes c.
 * The session is freed by pt_conn_close().
 */
struct ssl_st *pt_tls_new(struct pt_conn *c);

/*
 * Whether a request on c may be served by srv, the server its Host chose:
 * PT_OK when c is plain, when srv is the server SNI chose, or when both
 * verify clients alike (mode, CA, CRL and depth); else 421 (the client
 * certificate was checked, or not, by another server's rules).
 */
int pt_tls_check_server(const struct pt_conn *c,
			const struct pt_http_server *srv);

/*
 * Read every CRL of the PEM file path into store and turn on revocation
 * checks for the whole chain (X509_V_FLAG_CRL_CHECK_ALL, as nginx: then
 * each CA of a chain, the root included, needs its CRL in the store).
 * Called by the master at config load for the server's client_ca store
 * and for an upstream's. A CRL whose nextUpdate has passed (or whose
 * lastUpdate is yet to come) is kept with a warning: verification will
 * fail with "CRL has expired" (warn 0: silently, the file was already
 * loaded once for this setting). PT_OK, or PT_ERROR reported at node
 * (file:line) for a file that can not be read, that holds no CRL or
 * one that does not parse. store keeps its own references.
 */
int pt_tls_load_crl(struct pt_conf *cf, const config_setting_t *node,
		    const char *path, struct x509_store_st *store, int warn);

#endif
