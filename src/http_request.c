/*
 * http_request.c: an HTTP/1.1 connection's life: reading a head, making a
 * request of it, finishing the request, keep-alive, pipelining, discarding
 * unwanted bodies, closing.
 *
 * Memory: an idle keep-alive connection holds only its struct pt_conn.
 * The header buffer is a pool block taken when bytes arrive and given
 * back when the connection goes idle; a request's pool is created when a
 * head is complete and destroyed when its response is done. The parsed
 * head is slices of that buffer: when an unwanted body must be read from
 * the socket, the request keeps the buffer and the connection takes a new
 * one (pt_http_detach_head(), http_body.c, which reads bodies).
 *
 * Ordering: one request at a time per connection. Pipelined requests wait
 * in the header buffer (or the socket) until the previous response is
 * written, so responses leave in request order.
 *
 * A listener flagged proxy_protocol first reads the PROXY protocol
 * header into the header buffer (http_read_proxy()); what follows it
 * there is the first request's head. A connection without a valid one
 * is closed without an answer: its peer is a proxy, not a client.
 *
 * Timers: client_header_timeout from the first byte of a head (or from
 * accept, including a PROXY header) to its end, 408 if some of it came; keepalive_timeout between
 * requests; send_timeout while the socket does not drain;
 * client_body_timeout between two reads of an unwanted body; a lingering
 * close reads what the client still sends until it is silent for 5 s (30 s
 * at most) after the response, so that bytes in flight do not turn our
 * response into a reset.
 *
 * Edge-triggered reads: a read handler reads until EAGAIN, or knows the
 * socket is drained (a short read with no hang-up pending), or leaves
 * io.readable set and is posted again (input dropped in bulk, a request
 * that is busy: http_keepalive() resumes it).
 */
#include "core.h"
#include "cycle.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "proxy_protocol.h"
#include "ptime.h"
#include "sockio.h"
#include "stats.h"
#include "tls.h"
#include "worker.h"

#include <errno.h>
#include <openssl/ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINGER_TIMEOUT_MS 5000
#define LINGER_TIME_MS 30000

static void http_read_head(struct pt_io *io);
static void http_read_proxy(struct pt_io *io);
static void http_tls_detect(struct pt_io *io);
static void http_read_proxy_peek(struct pt_io *io);
static void http_request_read(struct pt_io *io);
static void http_request_write(struct pt_io *io);
static void http_request_done(struct pt_http_request *r);
static void http_close(struct pt_conn *c);
static void http_refuse_head(struct pt_conn *c, const struct pt_http_scan *scan,
			     int status);

static void
http_noop(struct pt_io *io)
{
	(void)io;
}

/*
 * An SSL_read() that had to write (a TLS 1.3 key update to answer) and
 * met a full socket returns EAGAIN like any read; the reader must then be
 * called on writability, which the loop reports to on_write, not on
 * readability: the client may well send nothing more until it has read.
 */
static int
http_tls_read_wants_write(const struct pt_conn *c)
{
	return c->ssl != NULL && SSL_want_write(c->ssl);
}

/* The write handler of a connection with nothing to write. */
static void
http_write_idle(struct pt_io *io)
{
	if (http_tls_read_wants_write((struct pt_conn *)io)) {
		io->readable = 1;
		io->on_read(io);
	}
}

static struct pt_http_srv_conf *
http_default_srv(const struct pt_conn *c)
{
	return c->addr->default_server->srv_conf[PT_HTTP_CORE_INDEX];
}

/* Copy in to out (cap bytes) with control bytes written as \xHH. */
static void
http_log_escape(char *out, size_t cap, const char *in)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	for (const char *p = in; *p != '\0' && n + 4 < cap; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch >= 0x20 && ch != 0x7f) {
			out[n++] = (char)ch;
			continue;
		}
		out[n++] = '\\';
		out[n++] = 'x';
		out[n++] = hex[ch >> 4];
		out[n++] = hex[ch & 15];
	}
	out[n] = '\0';
}

/*
 * One line for the error log about a connection, and its request if
 * there is one. Everything in it may come from the client (a decoded
 * path, a refused request line): control bytes are written as \xHH, so
 * a client can not forge lines.
 */
static void
http_logv(struct pt_conn *c, const struct pt_sockaddr *client,
	  const struct pt_str *line, int level, int err, const char *fmt,
	  va_list ap)
{
	char raw[1024], full[2048], out[2048], ip[64];

	vsnprintf(raw, sizeof(raw), fmt, ap);
	if (client == NULL)
		client = c->client != NULL ? c->client : &c->peer;
	pt_addr_ip(&client->u.sa, ip, sizeof(ip));
	if (line != NULL)
		snprintf(full, sizeof(full),
			 "*%llu %s, client: %s, request: \"%.*s\"",
			 (unsigned long long)c->number, raw, ip,
			 (int)PT_MIN(line->len, 512), line->data);
	else
		snprintf(full, sizeof(full), "*%llu %s, client: %s",
			 (unsigned long long)c->number, raw, ip);
	http_log_escape(out, sizeof(out), full);
	pt_log(level, err, "%s", out);
}

void
pt_conn_log(struct pt_conn *c, int level, int err, const char *fmt, ...)
{
	va_list ap;

	if (!pt_log_enabled(level))
		return;
	va_start(ap, fmt);
	http_logv(c, NULL, NULL, level, err, fmt, ap);
	va_end(ap);
}

void
pt_http_log(struct pt_http_request *r, int level, int err, const char *fmt,
	    ...)
{
	va_list ap;

	if (!pt_log_enabled(level))
		return;
	va_start(ap, fmt);
	http_logv(r->conn, r->client, &r->request_line, level, err, fmt, ap);
	va_end(ap);
}

/* ---- buffers --------------------------------------------------------------- */

static void
http_buf_free(struct pt_conn *c)
{
	if (c->buf == NULL)
		return;
	pt_block_release(c->buf, c->buf_size);
	c->buf = NULL;
	c->buf_size = c->buf_pos = c->buf_last = 0;
}

/* Make room at the end of the header buffer. PT_OK, or 431/414/500. */
int
pt_http_buf_room(struct pt_conn *c, size_t head_max)
{
	size_t used = c->buf_last - c->buf_pos, size;
	char *nb;

	if (c->buf == NULL) {
		c->buf = pt_block_get();
		if (c->buf == NULL)
			return 500;
		c->buf_size = PT_POOL_BLOCK;
		c->buf_pos = c->buf_last = 0;
		return PT_OK;
	}
	if (c->buf_last < c->buf_size)
		return PT_OK;
	if (c->buf_pos > 0) {
		memmove(c->buf, c->buf + c->buf_pos, used);
		c->buf_pos = 0;
		c->buf_last = (uint32_t)used;
		return PT_OK;
	}
	if (c->buf_size >= head_max)
		return 431;
	size = PT_MIN((size_t)c->buf_size * 2, head_max);
	nb = malloc(size);
	if (nb == NULL)
		return 500;
	memcpy(nb, c->buf, used);
	pt_block_release(c->buf, c->buf_size);
	c->buf = nb;
	c->buf_size = (uint32_t)size;
	return PT_OK;
}

/* ---- connections ----------------------------------------------------------- */

static void
http_timeout(struct pt_timer *t)
{
	struct pt_conn *c = pt_container_of(t, struct pt_conn, timer);
	struct pt_http_request *r = c->req;

	if (c->lingering) {
		http_close(c);
		return;
	}
	if (c->proxy_wait) {
		pt_conn_log(c, PT_LOG_INFO, 0,
			    "closing: timed out waiting for the PROXY protocol "
			    "header");
		http_close(c);
		return;
	}
	if (c->ssl != NULL && r == NULL && !SSL_is_init_finished(c->ssl)) {
		pt_conn_log(c, PT_LOG_INFO, 0, "TLS handshake timed out");
		http_close(c);
		return;
	}
	if (r != NULL) {
		pt_http_log(r, PT_LOG_INFO, 0,
			    r->pending ? "client timed out reading the response"
				       : "client timed out sending the body");
		r->keepalive = 0;
		http_close(c);
		return;
	}
	if (!c->keepalive && c->buf != NULL && c->buf_last > c->buf_pos) {
		/* part of a head came: tell the client (slowloris) */
		pt_conn_log(c, PT_LOG_INFO, 0,
			    "client timed out sending the request head");
		http_refuse_head(c, &c->scan, 408);
		return;
	}
	http_close(c);
}

static void
http_set_addr(struct pt_conn *c)
{
	const struct pt_http_port *port = c->ls->ctx;
	struct pt_sockaddr local;

	c->addr = &port->addrs[0];
	if (port->naddrs == 1)
		return;
	local.len = sizeof(local.u);
	if (getsockname(c->io.fd, &local.u.sa, &local.len) < 0)
		return;
	for (unsigned i = 0; i < port->naddrs; i++) {
		if (pt_addr_equal(&port->addrs[i].addr, &local)) {
			c->addr = &port->addrs[i];
			return;
		}
		if (pt_addr_is_wildcard(&port->addrs[i].addr))
			c->addr = &port->addrs[i];
	}
}

void
pt_http_init_conn(struct pt_conn *c)
{
	c->client = &c->peer;
	http_set_addr(c);
	c->proxy_wait = c->addr->proxy_protocol;
	if (c->proxy_wait)
		c->io.on_read = c->addr->ssl ? http_read_proxy_peek
					     : http_read_proxy;
	else
		c->io.on_read = c->addr->ssl ? http_tls_detect : http_read_head;
	c->io.on_write = http_write_idle;
	c->timer.fn = http_timeout;
	pt_timer_add(&c->w->loop, &c->timer,
		     http_default_srv(c)->client_header_timeout);
}

/* Log the request if it got an answer, then free it. */
static void
http_free_request(struct pt_conn *c)
{
	struct pt_http_request *r = c->req;

	if (r == NULL)
		return;
	if (r->out.status != 0)
		pt_http_log_phase(r);
	c->req = NULL;
	pt_pool_destroy(r->pool);
}

static void
http_close(struct pt_conn *c)
{
	http_free_request(c);
	http_buf_free(c);
	pt_conn_close(c);
}

void
pt_http_terminate(struct pt_http_request *r, int status)
{
	if (!r->header_sent || r->out.status == 0)
		r->out.status = status;
	r->keepalive = 0;
	http_close(r->conn);
}

/* Call the current read handler again after this batch of events. */
static void
http_resume_read(struct pt_posted *p)
{
	struct pt_conn *c = pt_container_of(p, struct pt_conn, posted);

	c->io.on_read(&c->io);
}

void
pt_http_post_read(struct pt_conn *c)
{
	c->posted.fn = http_resume_read;
	pt_post(&c->w->loop, &c->posted);
}

static void
http_lingering_read(struct pt_io *io)
{
	struct pt_conn *c = (struct pt_conn *)io;
	char buf[4096];
	size_t got = 0;

	while (got < PT_HTTP_READ_BUDGET) {
		ssize_t n = pt_sock_recv(io->fd, c->ssl, buf, sizeof(buf));
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			io->readable = 0;
			break;
		}
		http_close(c); /* the end of the input, or an error */
		return;
	}
	if (pt_now.mono_ms >= c->lingering_end) {
		http_close(c);
		return;
	}
	if (io->readable)
		pt_http_post_read(c);
	pt_timer_add(&c->w->loop, &c->timer,
		     PT_MIN(LINGER_TIMEOUT_MS,
			    c->lingering_end - pt_now.mono_ms));
}

static void
http_lingering_close(struct pt_conn *c)
{
	http_free_request(c);
	http_buf_free(c);
	/*
	 * Even when the client has hung up its side, bytes it sent before
	 * may still wait unread: close(2) would answer them with a reset,
	 * which can destroy the response in the client's buffer. So the
	 * input is always read to its end first.
	 */
	if (c->ssl != NULL) {
		/* close_notify, then FIN */
		pt_sock_shutdown_write(c->io.fd, c->ssl);
	} else if (shutdown(c->io.fd, SHUT_WR) < 0) {
		http_close(c);
		return;
	}
	c->lingering = 1;
	c->lingering_end = pt_now.mono_ms + LINGER_TIME_MS;
	c->io.on_read = http_lingering_read;
	c->io.on_write = http_write_idle;
	pt_timer_add(&c->w->loop, &c->timer, LINGER_TIMEOUT_MS);
	if (c->io.readable || c->io.hup)
		http_lingering_read(&c->io);
}

/* ---- reading a head --------------------------------------------------------- */

static struct pt_http_request *
http_create_request(struct pt_conn *c)
{
	unsigned nmod = pt_modules_count();
	struct pt_pool *pool = pt_pool_create();
	struct pt_http_request *r;

	if (pool == NULL)
		return NULL;
	/* a connection with a request is never on the idle list, which
	 * pt_conn_close_idle() may close without asking us */
	c->keepalive = 0;
	pt_conn_set_idle(c, 0);
	r = pt_pcalloc(pool, sizeof(*r) + nmod * sizeof(void *));
	if (r == NULL) {
		pt_pool_destroy(pool);
		return NULL;
	}
	r->pool = pool;
	r->conn = c;
	r->client = c->client;
	r->ctx = (void **)(r + 1);
	r->server = c->addr->default_server;
	r->srv_conf = r->server->srv_conf;
	r->loc_conf = r->server->loc_conf;
	r->out.content_length = -1;
	r->out.last_modified = -1;
	r->out.tail = &r->out.headers;
	r->pending_tail = &r->pending;
	r->h.content_length = -1;
	r->start_ms = pt_now.mono_ms;
	pt_stats_inc(&c->w->stats->requests);
	r->start_wall_ms = pt_now.wall_ms;
	c->req = r;
	c->io.on_read = http_request_read;
	c->io.on_write = http_request_write;
	return r;
}

/* Answer an error that came before a request could be parsed; head_only:
 * the request was a HEAD, so the error page carries no body. */
static void
http_error_conn(struct pt_conn *c, int status, int head_only)
{
	struct pt_http_request *r = c->req ? c->req : http_create_request(c);

	if (r == NULL) {
		http_close(c);
		return;
	}
	pt_timer_del(&c->w->loop, &c->timer);
	r->keepalive = 0;
	if (head_only)
		r->header_only = 1;
	pt_http_finalize(r, status);
}

static void
http_set_uri(struct pt_http_request *r, int *rc)
{
	const struct pt_str path = r->h.path;
	char *u;
	size_t ulen;

	if (r->h.target_form == PT_TARGET_ASTERISK ||
	    r->h.target_form == PT_TARGET_AUTHORITY) {
		r->uri = r->h.target;
		return;
	}
	u = pt_pnalloc(r->pool, path.len + 1);
	if (u == NULL) {
		*rc = 500;
		return;
	}
	*rc = pt_http_normalize_path(path.data, path.len, u, &ulen,
				     PT_NORM_MERGE_SLASHES);
	if (*rc != PT_OK)
		return;
	u[ulen] = '\0';
	r->uri.data = u;
	r->uri.len = ulen;
	r->args = r->h.query;
	for (size_t i = ulen; i > 0 && u[i - 1] != '/'; i--) {
		if (u[i - 1] == '.') {
			r->exten.data = u + i;
			r->exten.len = ulen - i;
			break;
		}
	}
}

/* The methods the server as a whole knows, for Allow. */
static const char http_allow[] = "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH";

/*
 * "OPTIONS *" asks about the server, not a resource (RFC 9110 section
 * 9.3.7): the core answers it, no location is involved.
 */
static void
http_options_asterisk(struct pt_http_request *r)
{
	struct pt_chain *cl;
	int rc = pt_http_discard_body(r);

	if (rc != PT_OK) {
		pt_http_finalize(r, rc);
		return;
	}
	r->out.status = 200;
	r->out.content_length = 0;
	if (pt_http_add_header(r, "Allow", 5, http_allow,
			       sizeof(http_allow) - 1) != PT_OK ||
	    pt_http_send_header(r) != PT_OK ||
	    (cl = pt_chain_mem(r->pool, "", 0)) == NULL) {
		pt_http_finalize(r, PT_ERROR);
		return;
	}
	cl->buf->last_buf = 1;
	pt_http_finalize(r, pt_http_output(r, cl) == PT_ERROR ? PT_ERROR
							  : PT_DONE);
}

/*
 * A plain HTTP request on a TLS address (as nginx's 497, but a 400 that
 * any client understands): the answer says why, and the connection
 * closes, since nothing on it will ever be TLS.
 */
static void
http_plain_on_tls(struct pt_http_request *r)
{
	static const char page[] =
		"<html>\r\n<head><title>400 The plain HTTP request was sent "
		"to HTTPS port</title></head>\r\n<body>\r\n<center><h1>400 "
		"Bad Request</h1></center>\r\n<center>The plain HTTP request "
		"was sent to HTTPS port</center>\r\n</body>\r\n</html>\r\n";
	struct pt_chain *cl;

	pt_http_log(r, PT_LOG_INFO, 0,
		    "client sent a plain HTTP request to a TLS port");
	r->keepalive = 0;
	r->error_page = 1;
	r->out.status = 400;
	r->out.content_type.data = "text/html";
	r->out.content_type.len = 9;
	r->out.content_length = sizeof(page) - 1;
	if (pt_http_send_header(r) != PT_OK ||
	    (cl = pt_chain_mem(r->pool, page, sizeof(page) - 1)) == NULL) {
		pt_http_finalize(r, PT_ERROR);
		return;
	}
	cl->buf->last_buf = 1;
	pt_http_finalize(r, pt_http_output(r, cl) == PT_ERROR ? PT_ERROR
							  : PT_DONE);
}

static void
http_process_head(struct pt_conn *c, const struct pt_http_scan *scan)
{
	struct pt_http_request *r = http_create_request(c);
	/* scan->head_len counts from scan->start, after the empty lines
	 * a client may send before the request line */
	char *head = c->buf + c->buf_pos + scan->start;
	size_t hlen = scan->head_len;
	struct pt_http_header *hdrs;
	const char *eol;
	int rc;

	if (r == NULL) {
		pt_conn_log(c, PT_LOG_CRIT, ENOMEM, "new request");
		http_close(c);
		return;
	}
	pt_timer_del(&c->w->loop, &c->timer);
	eol = memchr(head, '\r', hlen);
	r->request_line.data = head;
	r->request_line.len = eol ? (size_t)(eol - head) : 0;
	hdrs = pt_palloc(r->pool, (scan->lines + 1) * sizeof(*hdrs));
	c->buf_pos += (uint32_t)(scan->start + scan->head_len);
	if (hdrs == NULL) {
		pt_http_finalize(r, 500);
		return;
	}
	rc = pt_http_parse_head(head, hlen, &r->h, hdrs, scan->lines + 1);
	/* even a refused HEAD gets no body (RFC 9110 9.3.2) */
	r->header_only = (r->h.method_id & PT_HTTP_HEAD) != 0;
	if (c->plain_on_tls) {
		http_plain_on_tls(r);
		return;
	}
	if (rc == PT_OK)
		rc = pt_http_check_framing(&r->h);
	if (rc == PT_OK)
		rc = pt_http_check_host(&r->h);
	if (rc == PT_OK)
		http_set_uri(r, &rc);
	if (rc == PT_OK && (r->h.method_id & (PT_HTTP_CONNECT | PT_HTTP_TRACE))) {
		/* not a forward proxy, and TRACE only serves cross-site
		 * tracing; RFC 9110 section 15.5.6 wants Allow on a 405 */
		rc = pt_http_add_header(r, "Allow", 5, http_allow,
					sizeof(http_allow) - 1) == PT_OK
			     ? 405
			     : 500;
	}
	if (rc != PT_OK) {
		pt_http_log(r, PT_LOG_INFO, 0, "rejected request: %d", rc);
		r->keepalive = 0;
		pt_http_finalize(r, rc);
		return;
	}
	r->keepalive = r->h.keepalive;
	r->body.rest = r->h.content_length > 0 ? r->h.content_length : 0;
	r->body.is_chunked = r->h.chunked;
	r->body.done = !r->h.chunked && r->body.rest == 0;
	if (r->h.chunked)
		pt_http_chunked_init(&r->body.chunked, 4096,
				     (size_t)http_default_srv(c)
					     ->large_header_buffer);
	if (r->h.target_form == PT_TARGET_ASTERISK) {
		http_options_asterisk(r);
		return;
	}
	pt_http_run_phases(r);
}

/* Answer status to a head refused before it was parsed: a HEAD is known
 * by its first bytes, and its answer carries no body. */
static void
http_refuse_head(struct pt_conn *c, const struct pt_http_scan *scan,
		 int status)
{
	http_error_conn(c, status,
			c->buf != NULL &&
				c->buf_last - c->buf_pos >= scan->start + 5 &&
				memcmp(c->buf + c->buf_pos + scan->start,
				       "HEAD ", 5) == 0);
}

/* Scan what the header buffer holds; process a complete head. Returns
 * PT_AGAIN when more bytes are needed, PT_OK when it took action. */
static int
http_try_head(struct pt_conn *c, struct pt_http_scan *scan)
{
	const struct pt_http_srv_conf *sc = http_default_srv(c);
	struct pt_http_limits lim = {
		(size_t)sc->large_header_buffer,
		(size_t)sc->large_header_buffer * 4,
		(unsigned)sc->max_headers,
	};
	int rc = pt_http_scan_head(scan, c->buf + c->buf_pos,
				   c->buf_last - c->buf_pos, &lim);

	if (rc == PT_AGAIN)
		return PT_AGAIN;
	if (rc == PT_OK) {
		struct pt_http_scan done = *scan;
		/* the next head (pipelined or not) is scanned from its start */
		memset(scan, 0, sizeof(*scan));
		http_process_head(c, &done);
		return PT_OK;
	}
	pt_conn_log(c, PT_LOG_INFO, 0, "invalid request head: %d", rc);
	http_refuse_head(c, scan, rc);
	return PT_OK;
}

/*
 * Drop the empty lines a client may send after a request (RFC 9112
 * section 2.2 asks servers to ignore them before a request line): they
 * must not start client_header_timeout nor hold a buffer while the
 * connection is idle. True if nothing else is buffered (a lone CR may be
 * the first half of one more).
 */
static int
http_empty_lines(struct pt_conn *c)
{
	while (c->buf_last - c->buf_pos >= 2 && c->buf[c->buf_pos] == '\r' &&
	       c->buf[c->buf_pos + 1] == '\n')
		c->buf_pos += 2;
	return c->buf_last == c->buf_pos ||
	       (c->buf_last - c->buf_pos == 1 && c->buf[c->buf_pos] == '\r');
}

static void
http_read_head(struct pt_io *io)
{
	struct pt_conn *c = (struct pt_conn *)io;
	const struct pt_http_srv_conf *sc = http_default_srv(c);
	size_t head_max = (size_t)sc->large_header_buffer * 4;

	/* bytes already here (pipelined) are scanned before reading; the
	 * scan resumes where the last read left it, so a head that trickles
	 * in costs one pass in all, not one per read */
	if (c->buf != NULL && c->buf_last > c->buf_pos &&
	    http_try_head(c, &c->scan) == PT_OK)
		return;
	for (;;) {
		size_t room;
		ssize_t n;
		int rc = pt_http_buf_room(c, PT_MAX(head_max, PT_POOL_BLOCK));

		if (rc != PT_OK) {
			if (c->keepalive) {
				/* out of memory between requests: closing an
				 * idle connection is allowed (RFC 9112 9.3.1) */
				http_close(c);
				return;
			}
			/* 431: the head filled the largest buffer */
			http_refuse_head(c, &c->scan, rc);
			return;
		}
		room = c->buf_size - c->buf_last;
		n = pt_sock_recv(io->fd, c->ssl, c->buf + c->buf_last, room);
		if (n == 0) {
			http_close(c);
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) {
				pt_conn_log(c, PT_LOG_INFO, errno,
					    "reading the request failed");
				http_close(c);
				return;
			}
			io->readable = 0;
			if (c->buf_last == c->buf_pos)
				http_buf_free(c); /* idle: hold no buffer */
			return;
		}
		c->buf_last += (uint32_t)n;
		/* a short read drained the socket, and new bytes bring a new
		 * edge; but a FIN that came with these bytes brings none, so
		 * after a hang-up the flag stays and the next read sees EOF.
		 * A TLS read returns one record: more may wait, read on. */
		if ((size_t)n < room && !io->hup && c->ssl == NULL)
			io->readable = 0;
		if (c->keepalive) {
			if (http_empty_lines(c)) {
				/* no request yet: still idle, and the
				 * keepalive_timeout still runs */
				if (c->buf_last == c->buf_pos)
					http_buf_free(c);
				if (!io->readable)
					return;
				continue;
			}
			/* the next request begins; buf_pos may have moved */
			memset(&c->scan, 0, sizeof(c->scan));
			c->keepalive = 0;
			pt_conn_set_idle(c, 0);
			pt_timer_add(&c->w->loop, &c->timer,
				     sc->client_header_timeout);
		}
		if (http_try_head(c, &c->scan) == PT_OK)
			return;
		if (!io->readable)
			return;
	}
}

/* ---- the TLS handshake -------------------------------------------------------- */

/*
 * One step of the handshake, for either readiness. Done: the request
 * head is read as on a plain connection (bytes may already wait inside
 * the session, so it is read at once). client_header_timeout, set at
 * accept, bounds the whole handshake.
 */
static void
http_tls_handshake(struct pt_io *io)
{
	struct pt_conn *c = (struct pt_conn *)io;
	int want_write, rc = pt_tls_handshake(c->ssl, &want_write);

	if (rc == PT_AGAIN) {
		/* only the readiness OpenSSL waits for calls it again: an
		 * EPOLLOUT edge after each flight would cost a read(2) */
		if (want_write) {
			io->writable = 0;
			io->on_write = http_tls_handshake;
		} else {
			io->readable = 0;
			io->on_write = http_noop;
		}
		return;
	}
	if (rc != PT_OK) {
		pt_conn_log(c, PT_LOG_INFO, 0, "TLS handshake failed: %s",
			    pt_tls_last_error());
		http_close(c);
		return;
	}
	io->on_read = http_read_head;
	io->on_write = http_write_idle;
	pt_timer_add(&c->w->loop, &c->timer,
		     http_default_srv(c)->client_header_timeout);
	http_read_head(io);
}

/*
 * The first byte of a connection on a TLS address, peeked: a TLS record
 * of type handshake (22) starts a session; anything else is taken for
 * plain HTTP, read as such and answered with a 400. A connection closed
 * before any byte (a health check) is closed quietly.
 */
static void
http_tls_detect(struct pt_io *io)
{
	struct pt_conn *c = (struct pt_conn *)io;
	unsigned char ch;
	ssize_t n;

	do
		n = recv(io->fd, &ch, 1, MSG_PEEK);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN) {
		io->readable = 0;
		return;
	}
	if (n <= 0) {
		if (n < 0)
			pt_conn_log(c, PT_LOG_INFO, errno,
				    "reading the TLS handshake failed");
		http_close(c);
		return;
	}
	if (ch != 0x16) {
		c->plain_on_tls = 1;
		io->on_read = http_read_head;
		http_read_head(io);
		return;
	}
	c->ssl = pt_tls_new(c);
	if (c->ssl == NULL) {
		http_close(c);
		return;
	}
	io->on_read = http_tls_handshake;
	http_tls_handshake(io);
}

/* ---- the PROXY protocol ------------------------------------------------------ */

/* Parse what the buffer holds: PT_OK (the header is consumed and the
 * head follows), PT_AGAIN (more to come) or PT_ERROR (logged). */
static int
http_proxy_header(struct pt_conn *c)
{
	struct pt_proxy_protocol pp;
	const char *why;
	int n = pt_proxy_protocol_parse(c->buf + c->buf_pos,
					c->buf_last - c->buf_pos, &pp, &why);

	if (n == PT_AGAIN)
		return PT_AGAIN;
	if (n < 0) {
		pt_conn_log(c, PT_LOG_INFO, 0,
			    "closing: invalid PROXY protocol header: %s", why);
		return PT_ERROR;
	}
	c->buf_pos += (uint32_t)n;
	c->proxy_wait = 0;
	if (pp.has_addr) {
		c->proxy_addr = pp.src;
		c->proxy_has_addr = 1;
		c->client = &c->proxy_addr;
	}
	return PT_OK;
}

/*
 * The first bytes of a connection on a proxy_protocol address: read
 * until a whole PROXY header is buffered, then go on as http_read_head
 * with whatever came after it. Bounded by client_header_timeout (set at
 * accept) and, for a v2 header's TLVs, by the largest head buffer.
 */
static void
http_read_proxy(struct pt_io *io)
{
	struct pt_conn *c = (struct pt_conn *)io;
	size_t head_max = (size_t)http_default_srv(c)->large_header_buffer * 4;

	for (;;) {
		ssize_t n;
		size_t room;
		int rc;

		if (c->buf != NULL && c->buf_last > c->buf_pos) {
			rc = http_proxy_header(c);
			if (rc == PT_ERROR) {
				http_close(c);
				return;
			}
			if (rc == PT_OK) {
				io->on_read = http_read_head;
				http_read_head(io);
				return;
			}
		}
		if (!io->readable && !io->hup)
			return;
		rc = pt_http_buf_room(c, PT_MAX(head_max, PT_POOL_BLOCK));
		if (rc != PT_OK) {
			pt_conn_log(c, PT_LOG_INFO, 0,
				    rc == 431 ? "closing: PROXY protocol "
						"header too long"
					      : "closing: out of memory for "
						"the PROXY protocol header");
			http_close(c);
			return;
		}
		room = c->buf_size - c->buf_last;
		n = recv(io->fd, c->buf + c->buf_last, room, 0);
		if (n == 0) {
			/* a health check that only connects is not news */
			if (c->buf != NULL && c->buf_last > c->buf_pos)
				pt_conn_log(c, PT_LOG_INFO, 0,
					    "closing: connection closed "
					    "within the PROXY protocol header");
			http_close(c);
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) {
				pt_conn_log(c, PT_LOG_INFO, errno,
					    "reading the PROXY protocol header "
					    "failed");
				http_close(c);
				return;
			}
			io->readable = 0;
			if (c->buf_last == c->buf_pos)
				http_buf_free(c);
			return;
		}
		c->buf_last += (uint32_t)n;
		/* as in http_read_head: a short read drained the socket */
		if ((size_t)n < room && !io->hup)
			io->readable = 0;
	}
}

/* Take the n bytes of a PROXY header peeked at; PT_OK or PT_ERROR. */
static int
http_proxy_consume(struct pt_conn *c, size_t n)
{
	ssize_t got;

	do
		got = recv(c->io.fd, c->buf, n, 0);
	while (got < 0 && errno == EINTR);
	return got == (ssize_t)n ? PT_OK : PT_ERROR;
}

/*
 * On a TLS address the PROXY header is peeked at, not read: what follows
 * it is the handshake, which OpenSSL reads from the socket itself. Each
 * readiness peeks from the start again (the header is short); once it is
 * whole, exactly its bytes are taken and the TLS detection follows.
 */
static void
http_read_proxy_peek(struct pt_io *io)
{
	struct pt_conn *c = (struct pt_conn *)io;
	size_t head_max = (size_t)http_default_srv(c)->large_header_buffer * 4;

	for (;;) {
		ssize_t n;
		int rc = PT_OK;

		if (c->buf == NULL || c->buf_last == c->buf_size)
			rc = pt_http_buf_room(c, PT_MAX(head_max, PT_POOL_BLOCK));
		if (rc != PT_OK) {
			pt_conn_log(c, PT_LOG_INFO, 0,
				    "closing: PROXY protocol header too long");
			http_close(c);
			return;
		}
		n = recv(io->fd, c->buf, c->buf_size, MSG_PEEK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			io->readable = 0;
			return;
		}
		if (n <= 0) {
			if (n < 0 || c->buf_last > 0)
				pt_conn_log(c, PT_LOG_INFO, n < 0 ? errno : 0,
					    "closing: connection closed or "
					    "failed within the PROXY protocol "
					    "header");
			http_close(c);
			return;
		}
		c->buf_pos = 0;
		c->buf_last = (uint32_t)n;
		rc = http_proxy_header(c);
		if (rc == PT_OK) {
			if (http_proxy_consume(c, c->buf_pos) != PT_OK) {
				pt_conn_log(c, PT_LOG_INFO, errno,
					    "closing: reading the PROXY "
					    "protocol header failed");
				http_close(c);
				return;
			}
			http_buf_free(c);
			io->on_read = http_tls_detect;
			http_tls_detect(io);
			return;
		}
		if (rc == PT_ERROR || io->hup) {
			if (rc != PT_ERROR)
				pt_conn_log(c, PT_LOG_INFO, 0,
					    "closing: connection closed "
					    "within the PROXY protocol header");
			http_close(c);
			return;
		}
		if ((size_t)n < c->buf_size) {
			/* all there is was seen: wait for more */
			io->readable = 0;
			return;
		}
	}
}

/* ---- finishing ----------------------------------------------------------------- */

void
pt_http_keepalive_check(struct pt_http_request *r)
{
	struct pt_http_loc_conf *lc = pt_http_core_loc(r);
	struct pt_conn *c = r->conn;

	if (!r->keepalive)
		return;
	if (lc->keepalive_timeout == 0 || c->w->quitting ||
	    (lc->keepalive_requests > 0 &&
	     c->nrequests + 1 >= (uint64_t)lc->keepalive_requests))
		r->keepalive = 0;
}

static void
http_keepalive(struct pt_conn *c)
{
	struct pt_http_request *r = c->req;
	int64_t timeout = pt_http_core_loc(r)->keepalive_timeout;

	c->req = NULL;
	pt_pool_destroy(r->pool);
	/*
	 * Nagle's algorithm only delays the tail of the next response on a
	 * persistent connection: off, once, when the connection first turns
	 * keep-alive (as nginx's tcp_nodelay). Measured with contrib/bench,
	 * 1 MiB files: it cost 20% more CPU per request.
	 */
	if (c->nrequests++ == 0 && c->peer.u.sa.sa_family != AF_UNIX) {
		int one = 1;
		(void)setsockopt(c->io.fd, IPPROTO_TCP, TCP_NODELAY, &one,
				 sizeof(one));
	}
	c->io.on_read = http_read_head;
	c->io.on_write = http_write_idle;
	if (c->buf != NULL && !http_empty_lines(c)) {
		/* a pipelined request is already here */
		pt_timer_add(&c->w->loop, &c->timer,
			     http_default_srv(c)->client_header_timeout);
		pt_http_post_read(c);
		return;
	}
	if (c->buf != NULL && c->buf_last == c->buf_pos)
		http_buf_free(c); /* a lone CR stays for the LF to come */
	c->keepalive = 1;
	pt_conn_set_idle(c, 1);
	pt_timer_add(&c->w->loop, &c->timer, timeout);
	if (c->io.readable)
		pt_http_post_read(c);
}

static void
http_request_done(struct pt_http_request *r)
{
	struct pt_conn *c = r->conn;

	pt_timer_del(&c->w->loop, &c->timer);
	pt_http_log_phase(r);
	/* a graceful exit began after the head was sent: idle connections
	 * are not waited for, so this one must not become idle */
	if (r->keepalive && (!r->body.done || c->w->quitting))
		r->keepalive = 0;
	if (r->keepalive)
		http_keepalive(c);
	else
		http_lingering_close(c);
}

/* The response is written; maybe a body is still being discarded. */
static void
http_response_written(struct pt_http_request *r)
{
	struct pt_conn *c = r->conn;

	if (r->keepalive && !r->body.done && !r->discarding &&
	    pt_http_discard_body(r) != PT_OK)
		r->keepalive = 0;
	if (r->keepalive && !r->body.done) {
		/* the rest of the body is read by http_request_read */
		pt_timer_add(&c->w->loop, &c->timer,
			     pt_http_core_loc(r)->client_body_timeout);
		return;
	}
	http_request_done(r);
}

void
pt_http_finalize(struct pt_http_request *r, int rc)
{
	struct pt_conn *c = r->conn;

	if (rc == PT_AGAIN)
		return;
	if (rc == PT_ERROR)
		rc = 500;
	if (rc >= 100) {
		if (r->header_sent) {
			/* a client that went away was logged (info) where the
			 * write failed; anything else is ours */
			if (!r->client_gone)
				pt_http_log(r, PT_LOG_ERR, 0,
					    "response failed after its head "
					    "was sent");
			http_close(c);
			return;
		}
		if (pt_http_special_response(r, rc) != PT_OK) {
			http_close(c);
			return;
		}
	} else if (rc != PT_DONE) {
		PT_ASSERT(!"unexpected finalize code");
	}
	r->finalized = 1;
	if (r->pending != NULL) {
		int frc = pt_http_flush(r);
		if (frc == PT_ERROR) {
			http_close(c);
			return;
		}
		if (frc == PT_AGAIN) {
			pt_timer_add(&c->w->loop, &c->timer,
				     pt_http_core_loc(r)->send_timeout);
			return;
		}
	}
	if (!r->body_sent_all) {
		/* PT_DONE means the last buffer is queued (http.h): nothing
		 * would ever complete this request, so do not wait for it */
		pt_http_log(r, PT_LOG_CRIT, 0,
			    "a handler finished without the end of its body");
		http_close(c);
		return;
	}
	http_response_written(r);
}

static void
http_request_write(struct pt_io *io)
{
	struct pt_conn *c = (struct pt_conn *)io;
	struct pt_http_request *r = c->req;
	int rc;

	if (r == NULL)
		return;
	if (r->pending == NULL) {
		/* a read that had to write can go on now; posted, since the
		 * producer below may end the request (c->posted is cancelled
		 * if the connection closes) */
		if (http_tls_read_wants_write(c)) {
			io->readable = 1;
			pt_http_post_read(c);
		}
		/* a tunnel writes the socket itself */
		if (r->write_handler != NULL && !r->finalized)
			r->write_handler(r);
		return;
	}
	rc = pt_http_flush(r);
	if (rc == PT_ERROR) {
		http_close(c);
		return;
	}
	if (rc == PT_AGAIN) {
		pt_timer_add(&c->w->loop, &c->timer,
			     pt_http_core_loc(r)->send_timeout);
		/* some of it may have gone: a streaming producer refills */
		if (r->write_handler != NULL && !r->finalized)
			r->write_handler(r);
		return;
	}
	pt_timer_del(&c->w->loop, &c->timer);
	if (r->write_handler != NULL && !r->finalized) {
		r->write_handler(r);
		return;
	}
	if (r->finalized && r->body_sent_all)
		http_response_written(r);
}

static void
http_request_read(struct pt_io *io)
{
	struct pt_conn *c = (struct pt_conn *)io;
	struct pt_http_request *r = c->req;
	int written;

	if (r != NULL && r->read_handler != NULL && !r->discarding) {
		r->read_handler(r);
		return;
	}
	if (r == NULL || !r->discarding || r->body.done)
		return; /* pipelined bytes wait in the socket */
	written = r->finalized && r->body_sent_all && r->pending == NULL;
	if (pt_http_discard_more(r) != PT_OK) {
		r->keepalive = 0;
		r->discarding = 0; /* the framing is lost: read no more */
		if (written)
			http_request_done(r);
		return;
	}
	if (r->body.done) {
		if (written)
			http_request_done(r);
		return;
	}
	/* client_body_timeout bounds a pause, not the whole body; while
	 * the response is still being written, send_timeout runs instead */
	if (written)
		pt_timer_add(&c->w->loop, &c->timer,
			     pt_http_core_loc(r)->client_body_timeout);
}
