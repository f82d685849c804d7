/*
 * sockio.c: socket I/O, plain or TLS, with recv(2)/send(2) conventions
 * (sockio.h). The TLS side maps OpenSSL's results onto errno so that the
 * callers' EAGAIN handling, written for plain sockets, holds for both:
 * SSL_ERROR_WANT_READ and _WANT_WRITE are EAGAIN, a close_notify or a bare
 * close is the end of the stream, anything else is EPROTO with its reason
 * kept for the log line. SIGPIPE is ignored by the process (master.c), so
 * OpenSSL's plain write(2) to a reset socket is only EPIPE.
 *
 * Processes are single-threaded: the gather buffer and the last error are
 * per process.
 */
#include "core.h"
#include "sockio.h"

#include <errno.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static char sockio_gather[PT_TLS_RECORD];
static char sockio_error[256];

const char *
pt_tls_last_error(void)
{
	return sockio_error[0] ? sockio_error : "unknown TLS error";
}

const char *
pt_tls_reason(char *buf, size_t cap, const char *none)
{
	unsigned long e = ERR_get_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	if (r != NULL)
		snprintf(buf, cap, "%s", r);
	else if (e != 0)
		snprintf(buf, cap, "OpenSSL error %lx", e);
	else
		snprintf(buf, cap, "%s", none != NULL ? none : "unknown error");
	ERR_clear_error();
	return buf;
}

/* Keep the reason for pt_tls_last_error(), the queue emptied, so it
 * never leaks into another connection. */
static void
sockio_keep_error(const char *what)
{
	(void)pt_tls_reason(sockio_error, sizeof(sockio_error), what);
}

/* Map the result n of an SSL call to the recv/send convention. */
static ssize_t
sockio_result(struct ssl_st *ssl, int n, const char *what)
{
	int err = SSL_get_error(ssl, n);

	switch (err) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE: errno = EAGAIN; return -1;
	case SSL_ERROR_ZERO_RETURN: return 0;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		if (errno == 0 || errno == EAGAIN)
			return 0; /* a close without close_notify */
		return -1;
	default:
		if (ERR_GET_REASON(ERR_peek_error()) ==
		    SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			return 0;
		}
		sockio_keep_error(what);
		errno = EPROTO;
		return -1;
	}
}

/* recv(2), or SSL_read/SSL_peek: take the bytes, or only look. */
static ssize_t
sockio_read(int fd, struct ssl_st *ssl, void *buf, size_t len, int peek)
{
	int n;

	if (ssl == NULL)
		return recv(fd, buf, len, peek ? MSG_PEEK : 0);
	if (len > INT32_MAX)
		len = INT32_MAX;
	errno = 0;
	n = peek ? SSL_peek(ssl, buf, (int)len) : SSL_read(ssl, buf, (int)len);
	return n > 0 ? n
		     : sockio_result(ssl, n,
				     peek ? "SSL_peek() failed"
					  : "SSL_read() failed");
}

ssize_t
pt_sock_recv(int fd, struct ssl_st *ssl, void *buf, size_t len)
{
	return sockio_read(fd, ssl, buf, len, 0);
}

ssize_t
pt_sock_peek(int fd, struct ssl_st *ssl, void *buf, size_t len)
{
	return sockio_read(fd, ssl, buf, len, 1);
}

ssize_t
pt_sock_send(int fd, struct ssl_st *ssl, const void *buf, size_t len)
{
	int n;

	if (ssl == NULL)
		return send(fd, buf, len, MSG_NOSIGNAL);
	if (len == 0)
		return 0;
	if (len > INT32_MAX)
		len = INT32_MAX;
	errno = 0;
	n = SSL_write(ssl, buf, (int)len);
	if (n > 0)
		return n;
	n = (int)sockio_result(ssl, n, "SSL_write() failed");
	if (n == 0) { /* the peer is gone: a write can not end the stream */
		errno = EPIPE;
		return -1;
	}
	return n;
}

ssize_t
pt_sock_writev(int fd, struct ssl_st *ssl, const struct iovec *iov, int iovcnt)
{
	struct msghdr msg;
	size_t got = 0;

	if (ssl == NULL) {
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = (struct iovec *)(uintptr_t)iov;
		msg.msg_iovlen = (size_t)iovcnt;
		return sendmsg(fd, &msg, MSG_NOSIGNAL);
	}
	if (iovcnt == 0)
		return 0;
	/* a large first buffer goes as it is, in full records */
	if (iovcnt == 1 || iov[0].iov_len >= PT_TLS_RECORD)
		return pt_sock_send(fd, ssl, iov[0].iov_base, iov[0].iov_len);
	for (int i = 0; i < iovcnt && got < sizeof(sockio_gather); i++) {
		size_t take =
			PT_MIN(iov[i].iov_len, sizeof(sockio_gather) - got);
		memcpy(sockio_gather + got, iov[i].iov_base, take);
		got += take;
	}
	return pt_sock_send(fd, ssl, sockio_gather, got);
}

int
pt_tls_handshake(struct ssl_st *ssl, int *want_write)
{
	int n, err;

	*want_write = 0;
	errno = 0;
	n = SSL_do_handshake(ssl);
	if (n == 1)
		return PT_OK;
	err = SSL_get_error(ssl, n);
	if (err == SSL_ERROR_WANT_READ)
		return PT_AGAIN;
	if (err == SSL_ERROR_WANT_WRITE) {
		*want_write = 1;
		return PT_AGAIN;
	}
	if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
		snprintf(sockio_error, sizeof(sockio_error), "%s",
			 errno ? strerror(errno)
			       : "the peer closed the connection");
		return PT_ERROR;
	}
	sockio_keep_error("handshake failed");
	return PT_ERROR;
}

void
pt_sock_shutdown_write(int fd, struct ssl_st *ssl)
{
	if (ssl != NULL && SSL_is_init_finished(ssl)) {
		(void)SSL_shutdown(ssl);
		ERR_clear_error();
		/* sent: never again. A bare EOF read later, with
		 * SSL_OP_IGNORE_UNEXPECTED_EOF, sets the shutdown state to
		 * "received" alone (OpenSSL 3.0), and pt_tls_close would
		 * write a second close_notify. */
		SSL_set_quiet_shutdown(ssl, 1);
	}
	(void)shutdown(fd, SHUT_WR);
}

void
pt_tls_close(struct ssl_st *ssl)
{
	if (ssl == NULL)
		return;
	/* close_notify only after a clean handshake: OpenSSL refuses it
	 * during one, and after a fatal alert it must not be sent */
	if (SSL_is_init_finished(ssl) &&
	    !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
		(void)SSL_shutdown(ssl);
	ERR_clear_error();
	SSL_free(ssl);
}
