/*
 * tls_session.c: STUB until the tlssess branch lands (its tls_session.c
 * replaces this file whole). Resumption is simply off: no internal cache,
 * no tickets, so no worker ever holds a session another can not resume.
 * The session id context is still set: a client certificate session
 * requires one.
 */
#include "core.h"
#include "conf.h"
#include "tls_session.h"

#include <openssl/ssl.h>

int
pt_tls_sessions_setup(struct pt_conf *cf, struct ssl_ctx_st *ctx,
		      size_t cache_size, int tickets, int64_t timeout_ms,
		      const unsigned char *sid_ctx, size_t sid_ctx_len)
{
	(void)cf;
	(void)cache_size;
	(void)tickets;
	(void)timeout_ms;
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (SSL_CTX_set_session_id_context(ctx, sid_ctx,
					   (unsigned)sid_ctx_len) != 1)
		return PT_ERROR;
	return PT_OK;
}
