/*
 * tls_session.h: TLS session resumption shared by all workers.
 *
 * Two shared memory zones, declared when the first server needs them and
 * carried over by a reload (same name and size): "tls_session_cache"
 * holds serialized sessions by session id (TLS 1.2 session ids and the
 * stateful tickets of TLS 1.3 when tickets are off), "tls_ticket_keys"
 * holds the keys that encrypt session tickets, rotated lazily. Every
 * worker sees both, so a session made with one worker resumes on any
 * other, and across a HUP.
 */
#ifndef PT_TLS_SESSION_H
#define PT_TLS_SESSION_H

#include "core.h"

#include <openssl/ssl.h>

struct pt_conf;

/*
 * Attach the shared session cache and/or the shared ticket keys to ctx.
 * cache_size: bytes of the shm cache (0: no session cache); tickets: 1 to
 * issue and accept tickets; timeout_ms: session lifetime and ticket
 * lifetime hint; sid_ctx: this server block's session id context (any
 * length). The session id context set is a digest of sid_ctx and of
 * ctx's certificates, verify mode and depth, client CA names and trust
 * store (its certificates, CRLs and flags): call this last, once ctx has all of
 * them, and a session never resumes where any of them differ (across a reload,
 * too). Every context gets the callbacks, even with neither cache nor tickets:
 * OpenSSL calls those of the context a session started with, and the
 * callbacks apply the settings of the context SNI moved it to.
 * Declares the zones on first use in the cycle being configured (cf):
 * the cache zone is sized by the largest cache_size given in the cycle
 * (at least PT_SHM_MIN_SIZE); the ticket keys rotate after the largest
 * timeout_ms of the cycle's servers with tickets, clamped to [1 min, 1 h],
 * and are kept as long as a ticket they encrypted may live.
 * Call it in the master, at config load, before the zones are opened;
 * ctx must live as long as the cycle. PT_OK or PT_ERROR (reported with
 * pt_conf_error).
 */
int pt_tls_sessions_setup(struct pt_conf *cf, SSL_CTX *ctx, size_t cache_size,
			  int tickets, int64_t timeout_ms,
			  const unsigned char *sid_ctx, size_t sid_ctx_len);

#endif
