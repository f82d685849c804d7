/*
 * tls_session.h: TLS session resumption shared by the workers: a session
 * cache and ticket keys in shared memory (owned by the tlssess branch;
 * this header fixes the interface tls.c calls).
 */
#ifndef PT_TLS_SESSION_H
#define PT_TLS_SESSION_H

#include "core.h"

struct pt_conf;
struct ssl_ctx_st;

/*
 * Set up resumption on ctx, a server's SSL_CTX, at config load:
 * cache_size bytes of shared session cache (0: no cache), tickets (0/1),
 * timeout_ms the lifetime of a session (and the ticket lifetime hint),
 * sid_ctx[0..sid_ctx_len) the session id context that keeps a session to
 * its server block (at most 32 bytes). Declares the shm zones it needs.
 * PT_OK, or PT_ERROR after reporting through cf.
 */
int pt_tls_sessions_setup(struct pt_conf *cf, struct ssl_ctx_st *ctx,
			  size_t cache_size, int tickets, int64_t timeout_ms,
			  const unsigned char *sid_ctx, size_t sid_ctx_len);

#endif
