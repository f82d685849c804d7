/*
 * http_body.c: request bodies, read as they arrive for a handler that
 * streams them (pt_http_body_next(): Content-Length or chunked, with
 * client_max_body_size, and "100 Continue" sent on the first read) or
 * discarded when nobody wants them (pt_http_discard_body(): read and
 * dropped so that the connection can be kept alive).
 *
 * A body is read into the connection's buffer, which the request's
 * parsed head also points into: before the first read from the socket
 * the request takes that buffer (pt_http_detach_head()) and the
 * connection gets a fresh one, so the head stays valid until the log
 * phase. Reads stop at EAGAIN, or after PT_HTTP_READ_BUDGET bytes when
 * discarding (the read handler is then posted again).
 */
#include "core.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "sockio.h"
#include "worker.h"

#include <errno.h>

static void
http_head_buf_free(void *data)
{
	struct pt_http_request *r = data;

	pt_block_release(r->head_buf, r->head_buf_size);
}

/*
 * The parsed head (r->h, request_line, args) is a set of slices of the
 * header buffer, read until the log phase. Before a discarded body is read
 * from the socket, the request takes that buffer (it is freed with the
 * request's pool) and the connection gets a fresh one for the body and
 * what may follow it: reading into the old one would overwrite the head.
 * Called with everything buffered consumed. PT_OK or PT_ERROR.
 */
int
pt_http_detach_head(struct pt_http_request *r)
{
	struct pt_conn *c = r->conn;

	if (r->head_buf != NULL || c->buf == NULL)
		return PT_OK;
	PT_ASSERT(c->buf_pos == c->buf_last);
	if (pt_pool_cleanup_add(r->pool, http_head_buf_free, r) != PT_OK)
		return PT_ERROR;
	r->head_buf = c->buf;
	r->head_buf_size = c->buf_size;
	c->buf = NULL;
	c->buf_size = c->buf_pos = c->buf_last = 0;
	return PT_OK;
}

/* ---- request bodies
 * ------------------------------------------------------------- */

/* A slice of body bytes from the buffer: PT_OK, PT_AGAIN (all consumed),
 * PT_DONE or a status. */
static int
http_body_slice(struct pt_http_request *r, struct pt_str *data)
{
	struct pt_conn *c = r->conn;
	const char *p = c->buf + c->buf_pos, *end = c->buf + c->buf_last;
	int64_t max = pt_http_core_loc(r)->client_max_body_size;
	int rc;

	if (!r->body.is_chunked) {
		int64_t n = PT_MIN(r->body.rest, (int64_t)(end - p));
		r->body.rest -= n;
		r->body.received += n;
		c->buf_pos += (uint32_t)n;
		r->body.done = r->body.rest == 0;
		data->data = p;
		data->len = (size_t)n;
		return n > 0 ? PT_OK : r->body.done ? PT_DONE : PT_AGAIN;
	}
	rc = pt_http_chunked_parse(&r->body.chunked, &p, end, data);
	c->buf_pos = (uint32_t)(p - c->buf);
	if (rc == PT_OK) {
		r->body.received += (int64_t)data->len;
		if (max > 0 && r->body.received > max) {
			pt_http_log(r, PT_LOG_ERR, 0,
				    "client sent too large chunked body");
			return 413;
		}
		return PT_OK;
	}
	if (rc == PT_DONE) {
		r->body.done = 1;
		return PT_DONE;
	}
	if (rc == PT_AGAIN)
		return PT_AGAIN;
	pt_http_log(r, PT_LOG_INFO, 0, "client sent a malformed chunked body");
	return 400;
}

/*
 * Everything buffered is consumed: read more body bytes into the
 * connection's buffer, from its start (once it no longer holds the
 * head). PT_OK (bytes came), PT_AGAIN (none yet) or a status.
 */
static int
http_body_recv(struct pt_http_request *r)
{
	struct pt_conn *c = r->conn;

	if (pt_http_detach_head(r) != PT_OK ||
	    pt_http_buf_room(c, PT_POOL_BLOCK) != PT_OK)
		return 500;
	c->buf_pos = c->buf_last = 0;
	for (;;) {
		ssize_t n = pt_sock_recv(c->io.fd, c->ssl, c->buf, c->buf_size);

		if (n > 0) {
			c->buf_last = (uint32_t)n;
			return PT_OK;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			c->io.readable = 0;
			return PT_AGAIN;
		}
		pt_http_log(r, PT_LOG_INFO, n < 0 ? errno : 0,
			    n == 0 ? "client closed before the end of the body"
				   : "reading the request body failed");
		r->keepalive = 0;
		return 400;
	}
}

/* Drop body bytes until EAGAIN, the end, or the read budget (then the
 * read handler is posted). PT_OK or a status. */
int
pt_http_discard_more(struct pt_http_request *r)
{
	struct pt_conn *c = r->conn;
	size_t got = 0;

	for (;;) {
		struct pt_str d;
		int rc;

		while (!r->body.done && c->buf != NULL &&
		       c->buf_pos < c->buf_last) {
			rc = http_body_slice(r, &d);
			if (rc != PT_OK && rc != PT_AGAIN && rc != PT_DONE)
				return rc;
		}
		if (r->body.done || !c->io.readable)
			return PT_OK;
		if (got >= PT_HTTP_READ_BUDGET) {
			pt_http_post_read(c);
			return PT_OK;
		}
		rc = http_body_recv(r);
		if (rc == PT_AGAIN)
			return PT_OK;
		if (rc != PT_OK)
			return rc;
		got += c->buf_last;
	}
}

/* Queue "100 Continue" ahead of the response, once. PT_OK or PT_ERROR. */
static int
http_send_continue(struct pt_http_request *r)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	struct pt_chain *cl;

	r->expect_tested = 1;
	if (r->header_sent)
		return PT_OK;
	cl = pt_chain_mem(r->pool, cont, sizeof(cont) - 1);
	if (cl == NULL)
		return PT_ERROR;
	*r->pending_tail = cl;
	r->pending_tail = &cl->next;
	return pt_http_flush(r) == PT_ERROR ? PT_ERROR : PT_OK;
}

int
pt_http_body_next(struct pt_http_request *r, struct pt_str *data)
{
	struct pt_conn *c = r->conn;

	if (r->body.done)
		return PT_DONE;
	if (r->h.expect_continue && !r->expect_tested &&
	    http_send_continue(r) != PT_OK)
		return 500;
	for (;;) {
		int rc;

		if (c->buf != NULL && c->buf_pos < c->buf_last) {
			rc = http_body_slice(r, data);
			if (rc != PT_AGAIN)
				return rc;
		}
		if (!c->io.readable)
			return PT_AGAIN;
		rc = http_body_recv(r);
		if (rc != PT_OK)
			return rc;
	}
}

int
pt_http_body_declared_ok(struct pt_http_request *r)
{
	int64_t max = pt_http_core_loc(r)->client_max_body_size;

	if (max > 0 && r->h.content_length > max) {
		pt_http_log(r, PT_LOG_ERR, 0,
			    "client intended to send too large body: %lld "
			    "bytes",
			    (long long)r->h.content_length);
		r->keepalive = 0;
		return 413;
	}
	return PT_OK;
}

int
pt_http_discard_body(struct pt_http_request *r)
{
	int rc;

	if (r->body.done || r->discarding)
		return PT_OK;
	/* FIND_LOCATION already checked, but answers given before it (a
	 * server-level return, "OPTIONS *") must not read any length */
	rc = pt_http_body_declared_ok(r);
	if (rc != PT_OK)
		return rc;
	if (r->h.expect_continue && !r->expect_tested) {
		/*
		 * The client waits for a "100 Continue" it will not get: it
		 * may never send the body, or send it late. Answer at once
		 * and close (portier.conf(5)); the lingering close drains
		 * whatever comes meanwhile.
		 */
		r->keepalive = 0;
		return PT_OK;
	}
	r->discarding = 1;
	rc = pt_http_discard_more(r);
	if (rc != PT_OK)
		r->keepalive = 0;
	return rc;
}
