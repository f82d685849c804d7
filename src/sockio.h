/*
 * sockio.h: reading and writing a connected socket that may carry TLS.
 *
 * Every connection, client or upstream, goes through these calls with its
 * fd and its TLS session (NULL for plain TCP), so the HTTP code has one
 * path for both. They follow recv(2)/send(2): a byte count, 0 at the end
 * of the stream (a TLS close_notify, or a close without one, as nginx
 * takes it), or -1 with errno: EAGAIN (wait for readiness; the caller
 * clears its io flag as for a plain socket), EINTR, or another error
 * (EPIPE/ECONNRESET for a peer that went away, EPROTO for a TLS failure,
 * whose reason pt_tls_last_error() gives).
 *
 * TLS writes go out as records of at most PT_TLS_RECORD bytes: small
 * iovecs are gathered into one record, never sent as many small ones.
 * OpenSSL requires a write that met EAGAIN to be retried with the same
 * bytes; the callers do so, since what they failed to write stays at the
 * head of what they write next (the sessions accept a moved buffer).
 */
#ifndef PT_SOCKIO_H
#define PT_SOCKIO_H

#include "core.h"

#include <sys/uio.h>

struct ssl_st;

#define PT_TLS_RECORD 16384

ssize_t pt_sock_recv(int fd, struct ssl_st *ssl, void *buf, size_t len);
ssize_t pt_sock_send(int fd, struct ssl_st *ssl, const void *buf, size_t len);
/* Look at what can be read without taking it (MSG_PEEK; SSL_peek, which
 * sees a close_notify as the end, where a raw peek would see bytes). */
ssize_t pt_sock_peek(int fd, struct ssl_st *ssl, void *buf, size_t len);
/* At most iovcnt buffers, in order; a partial write returns its count. */
ssize_t pt_sock_writev(int fd, struct ssl_st *ssl, const struct iovec *iov,
		       int iovcnt);

/*
 * One step of a non-blocking handshake on ssl: PT_OK (done), PT_AGAIN
 * (*want_write tells which readiness to wait for) or PT_ERROR (the
 * reason is in pt_tls_last_error()).
 */
int pt_tls_handshake(struct ssl_st *ssl, int *want_write);

/*
 * The first reason queued by OpenSSL (the cause; later ones are its
 * consequences) into buf, "OpenSSL error N" when it has no text, none
 * (NULL: "unknown error") when the queue is empty; the queue is emptied.
 * Returns buf.
 */
const char *pt_tls_reason(char *buf, size_t cap, const char *none);

/* End the sending direction: close_notify first on TLS, then FIN. */
void pt_sock_shutdown_write(int fd, struct ssl_st *ssl);

/* Send close_notify without waiting for the peer's, and free ssl. */
void pt_tls_close(struct ssl_st *ssl);

/* The reason of the last TLS failure of this process, as text (OpenSSL's
 * error queue, emptied), for a log line. */
const char *pt_tls_last_error(void);

#endif
