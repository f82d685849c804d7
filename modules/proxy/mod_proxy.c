/*
 * mod_proxy.c: the reverse proxy: settings, choosing a peer, connecting,
 * sending the request, reading the response head, errors and retries.
 * The body and the Upgrade tunnel are in proxy_io.c, the heads in
 * proxy_head.c, the upstreams in upstream.c and upconn.c.
 *
 * A request goes through attempts: pick a peer (balance.c), get a
 * connection (pooled or new), write the head and stream the body, read
 * the response head. An attempt that fails is counted against the peer
 * (passive health) and, if proxy_next_upstream allows it, the next peer
 * is tried: never once the response has started, never for a body that
 * is no longer held (streamed past the first buffer), and for a
 * non-idempotent method only when nothing was sent or when
 * "non_idempotent" is listed. A request that fails on a reused keep-alive
 * connection before any response byte is retried once on a new
 * connection to the same peer, without counting it: the backend may have
 * closed the idle connection just as we reused it (a non-idempotent
 * request only under the same rule as above).
 *
 * Statuses: 502 (refused, reset, invalid response), 503 (no live peer,
 * or every live one at max_conns), 504 (timeout).
 */
#include "core.h"
#include "conf.h"
#include "cycle.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "proxy.h"
#include "ptime.h"
#include "sockio.h"
#include "worker.h"

#include <errno.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

unsigned pt_proxy_index;
#define proxy_index pt_proxy_index

static struct proxy_main_conf *
proxy_main(const struct pt_cycle *c)
{
	return c->main_conf[proxy_index];
}

static void proxy_next(struct proxy_ctx *x);
static void proxy_send(struct proxy_ctx *x);
static void proxy_read_head(struct proxy_ctx *x);
static int proxy_fill(struct proxy_ctx *x);
static void proxy_buffer_body(struct proxy_ctx *x);

/* ---- errors and retries ---------------------------------------------------- */

enum { PROXY_ERR = 0, PROXY_TIMEOUT, PROXY_HTTP };

static int
proxy_idempotent(const struct pt_http_request *r)
{
	return (r->h.method_id & (PT_HTTP_GET | PT_HTTP_HEAD | PT_HTTP_PUT |
				  PT_HTTP_DELETE | PT_HTTP_OPTIONS |
				  PT_HTTP_TRACE)) != 0;
}

static struct proxy_try *
proxy_cur_try(struct proxy_ctx *x)
{
	return x->ntry > 0 ? &x->try[x->ntry - 1] : NULL;
}

void
pt_proxy_release(struct proxy_ctx *x, int keep)
{
	struct proxy_try *t = proxy_cur_try(x);

	pt_timer_del(x->mc->loop, &x->timer);
	if (x->uc != NULL) {
		x->uc->requests++;
		pt_upconn_release(x->uc, keep);
		x->uc = NULL;
	}
	if (x->peer >= 0) {
		int64_t us = -1;
		if (keep && t != NULL && t->header_ms >= 0)
			us = (pt_now.mono_ms - x->try_start) * 1000;
		pt_lb_release(x->u, (unsigned)x->peer, us);
		if (t != NULL && t->response_ms < 0)
			t->response_ms = pt_now.mono_ms - x->try_start;
		x->peer = -1;
	}
}

void
pt_proxy_fail(struct proxy_ctx *x, int status)
{
	struct pt_http_request *r = x->r;

	x->finished = 1;
	pt_proxy_release(x, 0);
	r->read_handler = NULL;
	r->write_handler = NULL;
	if (r->header_sent) {
		pt_http_terminate(r, status);
		return;
	}
	pt_http_finalize(r, status);
}

/* Can the request go to another peer (or again to this one)? */
static int
proxy_can_retry(struct proxy_ctx *x, unsigned cond)
{
	const struct proxy_loc_conf *lc = x->lc;

	if (x->head_done || !(lc->next_mask & cond) ||
	    (lc->next_mask & PROXY_NEXT_OFF))
		return 0;
	if (lc->next_tries > 0 && x->tries >= (unsigned)lc->next_tries)
		return 0;
	if (x->sent_any && !proxy_idempotent(x->r) &&
	    !(lc->next_mask & PROXY_NEXT_NON_IDEMPOTENT))
		return 0;
	/* the body must still be whole to send it again */
	return !x->sent_any || x->body_replay;
}

/* Rewind what was sent, for another attempt. */
static void
proxy_rewind(struct proxy_ctx *x)
{
	PT_ASSERT(!x->sent_any || x->body_replay);
	x->head_sent = 0;
	x->ubuf_pos = 0;
	x->body_sent = 0;
	x->request_sent = 0;
	x->got_bytes = 0;
	x->hbuf_last = 0;
	memset(&x->scan, 0, sizeof(x->scan));
}

/*
 * The attempt failed: how (kind), and the status it gives. Passive health
 * counts it, then the request goes to the next peer or ends.
 */
static void
proxy_error(struct proxy_ctx *x, int kind, int status, int err,
	    const char *why)
{
	struct pt_http_request *r = x->r;
	struct pt_upstream_peer *p = &x->u->peers[x->peer];
	struct proxy_try *t = proxy_cur_try(x);
	unsigned cond = kind == PROXY_TIMEOUT ? PROXY_NEXT_TIMEOUT
			: kind == PROXY_ERR   ? PROXY_NEXT_ERROR
			: status == 502	      ? PROXY_NEXT_502
			: status == 503	      ? PROXY_NEXT_503
					      : PROXY_NEXT_504;
	/* the backend may have closed an idle connection as we reused it */
	int stale = kind == PROXY_ERR && x->uc != NULL && x->uc->reused &&
		    !x->got_bytes;

	/* Sending again is safe only if nothing was sent or the method is
	 * idempotent (or non_idempotent allows it): the backend may also
	 * have acted on the request and then failed (RFC 9112, 9.3.1). */
	if (stale && !x->reuse_retry && (x->body_replay || !x->sent_any) &&
	    (!x->sent_any || proxy_idempotent(r) ||
	     (x->lc->next_mask & PROXY_NEXT_NON_IDEMPOTENT))) {
		pt_http_log(r, PT_LOG_INFO, err,
			    "%s on a kept-alive connection to %s; retrying on "
			    "a new connection",
			    why, p->address);
		x->reuse_retry = 1;
		pt_timer_del(x->mc->loop, &x->timer);
		pt_upconn_release(x->uc, 0);
		x->uc = NULL;
		proxy_rewind(x);
		x->peer = -x->peer - 2; /* keep the pick: see proxy_next */
		proxy_next(x);
		return;
	}
	if (t != NULL)
		t->status = status;
	if (kind != PROXY_HTTP)
		pt_http_log(r, PT_LOG_ERR, err, "upstream \"%s\" peer %s: %s",
			    x->u->name, p->address, why);
	/* a connection closed while it was idle says nothing about the
	 * peer's health: not a failure (as nginx does for its cache) */
	if (!stale && pt_peer_failed(p, pt_now.mono_ms))
		pt_log(PT_LOG_WARN, 0,
		       "upstream \"%s\": peer %s is down for %lld ms after %u "
		       "failure(s)",
		       x->u->name, p->address, (long long)p->fail_timeout,
		       p->max_fails);
	pt_proxy_release(x, 0);
	if (r->header_sent) {
		pt_proxy_fail(x, status);
		return;
	}
	if (!proxy_can_retry(x, cond)) {
		pt_proxy_fail(x, status);
		return;
	}
	proxy_rewind(x);
	proxy_next(x);
}

static void
proxy_timeout(struct pt_timer *tm)
{
	struct proxy_ctx *x = pt_container_of(tm, struct proxy_ctx, timer);

	if (x->tunnel) {
		pt_http_log(x->r, PT_LOG_INFO, 0, "tunnel idle: closed");
		pt_proxy_fail(x, 200);
		return;
	}
	if (x->uc != NULL && x->uc->connecting)
		proxy_error(x, PROXY_TIMEOUT, 504, 0, "connect timed out");
	else if (x->uc != NULL && x->uc->handshaking)
		proxy_error(x, PROXY_TIMEOUT, 504, 0,
			    "TLS handshake timed out");
	else if (!x->request_sent)
		proxy_error(x, PROXY_TIMEOUT, 504, 0,
			    "timed out sending the request");
	else if (!x->head_done)
		proxy_error(x, PROXY_TIMEOUT, 504, 0,
			    "timed out reading the response head");
	else {
		/* as a body read error: the response started, the peer
		 * answered; not counted against it */
		pt_http_log(x->r, PT_LOG_ERR, 0,
			    "upstream \"%s\" peer %s: timed out reading the "
			    "response body",
			    x->u->name, x->u->peers[x->peer].address);
		pt_proxy_fail(x, 504);
	}
}

/* ---- events ----------------------------------------------------------------- */

/* An event while the connection is set up (connect, TLS handshake):
 * PT_OK once it is ready (the time is recorded), else handled. */
static int
proxy_setup(struct proxy_ctx *x)
{
	struct pt_upconn *uc = x->uc;
	struct proxy_try *t = proxy_cur_try(x);
	const char *why;
	int rc = pt_upconn_setup(uc, &why);

	if (rc == PT_ERROR) {
		proxy_error(x, PROXY_ERR, 502, errno, why);
		return PT_ERROR;
	}
	if (rc == PT_OK && t != NULL)
		t->connect_ms = pt_now.mono_ms - x->try_start;
	return rc;
}

static void
proxy_upstream_write(struct pt_io *io)
{
	struct pt_upconn *uc = (struct pt_upconn *)io;
	struct proxy_ctx *x = uc->owner;

	if (x == NULL)
		return;
	if (x->tunnel) {
		pt_proxy_body_pump(x);
		return;
	}
	if ((uc->connecting || uc->handshaking) && proxy_setup(x) != PT_OK)
		return;
	if (!x->request_sent)
		proxy_send(x);
}

static void
proxy_upstream_read(struct pt_io *io)
{
	struct pt_upconn *uc = (struct pt_upconn *)io;
	struct proxy_ctx *x = uc->owner;

	if (x == NULL || uc->connecting)
		return;
	if (uc->handshaking) {
		if (proxy_setup(x) == PT_OK && !x->request_sent)
			proxy_send(x);
		return;
	}
	if (x->tunnel || x->head_done)
		pt_proxy_body_pump(x);
	else
		proxy_read_head(x);
}

/* The client's socket is readable: body bytes, or a close. */
static void
proxy_client_read(struct pt_http_request *r)
{
	struct proxy_ctx *x = r->ctx[proxy_index];
	struct pt_conn *c = r->conn;
	char ch;
	ssize_t n;

	if (x->tunnel) {
		pt_proxy_body_pump(x);
		return;
	}
	if (x->buffering_body) {
		proxy_buffer_body(x);
		return;
	}
	if (!x->body_read_all && x->uc != NULL && !x->uc->connecting &&
	    !x->uc->handshaking && !x->request_sent) {
		proxy_send(x);
		return;
	}
	if (!x->body_read_all)
		return; /* read when the backend can take it */
	n = pt_sock_peek(c->io.fd, c->ssl, &ch, 1);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		pt_http_log(r, PT_LOG_INFO, n < 0 ? errno : 0,
			    "client closed the connection while the upstream "
			    "was answering");
		x->finished = 1;
		pt_proxy_release(x, 0);
		r->read_handler = NULL;
		r->write_handler = NULL;
		pt_http_terminate(r, 499);
		return;
	}
	if (n < 0 && errno == EAGAIN)
		c->io.readable = 0;
	/* else: a pipelined request; it waits in the buffer */
}

static void
proxy_client_write(struct pt_http_request *r)
{
	struct proxy_ctx *x = r->ctx[proxy_index];

	if (x->head_done && !x->finished)
		pt_proxy_body_pump(x);
}

/* ---- attempts ---------------------------------------------------------------- */

static int
proxy_key(struct proxy_ctx *x)
{
	struct pt_http_request *r = x->r;
	const struct pt_sockaddr *a = r->client;

	if (x->u->balance == PT_LB_HASH)
		return pt_tpl_eval(r, x->u->hash_key, &x->lb.key);
	if (x->u->balance != PT_LB_IP_HASH)
		return PT_OK;
	if (a->u.sa.sa_family == AF_INET) {
		x->lb.key.data = (const char *)&a->u.sin.sin_addr;
		x->lb.key.len = 4;
	} else if (a->u.sa.sa_family == AF_INET6) {
		x->lb.key.data = (const char *)&a->u.sin6.sin6_addr;
		x->lb.key.len = 16;
	}
	return PT_OK;
}

static void
proxy_next(struct proxy_ctx *x)
{
	struct pt_http_request *r = x->r;
	struct proxy_try *t;
	int rc, again = x->peer <= -2, fresh = again;

	for (;;) {
		if (again) {
			x->peer = -x->peer - 2;
			again = 0;
		} else {
			x->lb.now = pt_now.mono_ms;
			x->peer = pt_lb_pick(&x->lb);
			if (x->peer < 0) {
				int st = x->tries > 0 && proxy_cur_try(x)
						 ? proxy_cur_try(x)->status
						 : 503;
				if (x->tries == 0)
					pt_http_log(r, PT_LOG_ERR, 0,
						    "upstream \"%s\": %s",
						    x->u->name,
						    x->lb.busy ? "every live peer "
								 "is at max_conns"
							       : "no live peer");
				pt_proxy_fail(x, st);
				return;
			}
			x->tries++;
		}
		if (x->ntry < PROXY_MAX_TRIES)
			x->ntry++;
		t = proxy_cur_try(x);
		*t = (struct proxy_try){ (unsigned)x->peer, 0, -1, -1, -1 };
		x->try_start = pt_now.mono_ms;
		/* the retry after a stale pooled connection takes a new one:
		 * the others in the pool may be just as stale */
		rc = pt_upconn_get(x->mc, x->u, (unsigned)x->peer, fresh,
				   &x->uc);
		fresh = 0;
		if (rc == PT_ERROR) {
			struct pt_upstream_peer *p = &x->u->peers[x->peer];
			int err = errno;
			x->uc = NULL;
			pt_http_log(r, PT_LOG_ERR, err,
				    "upstream \"%s\" peer %s: connect() failed",
				    x->u->name, p->address);
			t->status = 502;
			if (pt_peer_failed(p, pt_now.mono_ms))
				pt_log(PT_LOG_WARN, 0,
				       "upstream \"%s\": peer %s is down for "
				       "%lld ms",
				       x->u->name, p->address,
				       (long long)p->fail_timeout);
			pt_lb_release(x->u, (unsigned)x->peer, -1);
			x->peer = -1;
			if (!proxy_can_retry(x, PROXY_NEXT_ERROR)) {
				pt_proxy_fail(x, 502);
				return;
			}
			continue;
		}
		x->uc->owner = x;
		x->uc->io.on_read = proxy_upstream_read;
		x->uc->io.on_write = proxy_upstream_write;
		if (rc == PT_AGAIN) {
			pt_timer_add(x->mc->loop, &x->timer,
				     x->lc->connect_timeout);
			return;
		}
		t->connect_ms = x->uc->reused ? 0 : pt_now.mono_ms - x->try_start;
		proxy_send(x);
		return;
	}
}

/* ---- sending ------------------------------------------------------------------ */

/* Fill ubuf from the client's body (framed in chunks when the client
 * sent chunks). PT_OK (something may be sent, or the body is all read),
 * PT_AGAIN (nothing yet), or a status. */
static int
proxy_fill(struct proxy_ctx *x)
{
	size_t frame = x->body_chunked ? 24 : 0;
	int filled = 0;

	while (!x->body_read_all) {
		size_t room, take;

		if (x->ubuf_pos > 0 && x->ubuf_size - x->ubuf_last <= frame + 5) {
			/* what was sent is dropped: no more replay */
			memmove(x->ubuf, x->ubuf + x->ubuf_pos,
				x->ubuf_last - x->ubuf_pos);
			x->ubuf_last -= x->ubuf_pos;
			x->ubuf_pos = 0;
			x->body_replay = 0;
		}
		room = x->ubuf_size - x->ubuf_last;
		if (room <= frame + 5)
			return PT_OK; /* full: send first */
		if (x->pend.len == 0 && !x->body_eof) {
			int rc = pt_http_body_next(x->r, &x->pend);
			if (rc == PT_AGAIN)
				return filled ? PT_OK : PT_AGAIN;
			if (rc == PT_DONE) {
				x->body_eof = 1;
			} else if (rc != PT_OK) {
				return rc;
			}
		}
		if (x->body_eof && x->pend.len == 0) {
			if (x->body_chunked) {
				memcpy(x->ubuf + x->ubuf_last, "0\r\n\r\n", 5);
				x->ubuf_last += 5;
			}
			x->body_read_all = 1;
			return PT_OK;
		}
		take = PT_MIN(x->pend.len, room - frame - 5);
		if (x->body_chunked)
			x->ubuf_last += (size_t)snprintf(x->ubuf + x->ubuf_last,
							 frame, "%zx\r\n", take);
		memcpy(x->ubuf + x->ubuf_last, x->pend.data, take);
		x->ubuf_last += take;
		if (x->body_chunked) {
			memcpy(x->ubuf + x->ubuf_last, "\r\n", 2);
			x->ubuf_last += 2;
		}
		x->pend.data += take;
		x->pend.len -= take;
		filled = 1;
	}
	return PT_OK;
}

/* Write the head and what ubuf holds. PT_OK (all written), PT_AGAIN
 * (socket full) or PT_ERROR (errno). */
static int
proxy_write(struct proxy_ctx *x)
{
	int fd = x->uc->io.fd;

	while (x->head_sent < x->head.len || x->ubuf_pos < x->ubuf_last) {
		struct iovec iov[2];
		unsigned n = 0;
		ssize_t w;

		if (x->head_sent < x->head.len) {
			iov[n].iov_base = (void *)(uintptr_t)(x->head.data + x->head_sent);
			iov[n++].iov_len = x->head.len - x->head_sent;
		}
		if (x->ubuf_pos < x->ubuf_last) {
			iov[n].iov_base = x->ubuf + x->ubuf_pos;
			iov[n++].iov_len = x->ubuf_last - x->ubuf_pos;
		}
		w = pt_sock_writev(fd, x->uc->ssl, iov, (int)n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				x->uc->io.writable = 0;
				return PT_AGAIN;
			}
			return PT_ERROR;
		}
		x->sent_any = 1;
		if (x->head_sent < x->head.len) {
			size_t h = PT_MIN((size_t)w, x->head.len - x->head_sent);
			x->head_sent += h;
			w -= (ssize_t)h;
		}
		x->ubuf_pos += (size_t)w;
		x->body_sent += w;
	}
	return PT_OK;
}

static void
proxy_send(struct proxy_ctx *x)
{
	int rc;

	for (;;) {
		rc = proxy_write(x);
		if (rc == PT_ERROR) {
			proxy_error(x, PROXY_ERR, 502, errno,
				    "sending the request failed");
			return;
		}
		if (rc == PT_AGAIN) {
			pt_timer_add(x->mc->loop, &x->timer,
				     x->lc->send_timeout);
			return;
		}
		if (x->body_read_all)
			break;
		rc = proxy_fill(x);
		if (rc == PT_AGAIN) {
			/* the client's read_handler resumes us; the client's
			 * pace is bounded by client_body_timeout */
			pt_timer_del(x->mc->loop, &x->timer);
			pt_timer_add(&x->r->conn->w->loop, &x->r->conn->timer,
				     pt_http_core_loc(x->r)->client_body_timeout);
			return;
		}
		if (rc != PT_OK) {
			pt_http_log(x->r, PT_LOG_INFO, 0,
				    "the request body failed; upstream request "
				    "abandoned");
			pt_proxy_fail(x, rc);
			return;
		}
		pt_timer_del(&x->r->conn->w->loop, &x->r->conn->timer);
	}
	x->request_sent = 1;
	if (x->head_done)
		return; /* the response is already flowing */
	pt_timer_add(x->mc->loop, &x->timer, x->lc->read_timeout);
	if (x->uc->io.readable)
		proxy_read_head(x);
}

/*
 * proxy_request_buffering: the whole body is read before a peer is
 * chosen, into memory (client_max_body_size bounds it), so that a slow
 * client never holds a backend connection and every attempt can send the
 * body again.
 */
static void
proxy_buffer_body(struct proxy_ctx *x)
{
	struct pt_http_request *r = x->r;
	struct pt_conn *c = r->conn;

	while (!x->body_read_all) {
		int rc;

		if (x->ubuf_size - x->ubuf_last <= 64) {
			size_t n = x->ubuf_size * 2;
			char *nb = pt_pnalloc(r->pool, n);
			if (nb == NULL) {
				pt_proxy_fail(x, 500);
				return;
			}
			memcpy(nb, x->ubuf, x->ubuf_last);
			x->ubuf = nb;
			x->ubuf_size = n;
		}
		rc = proxy_fill(x);
		if (rc == PT_AGAIN) {
			pt_timer_add(&c->w->loop, &c->timer,
				     pt_http_core_loc(r)->client_body_timeout);
			return;
		}
		if (rc != PT_OK) {
			pt_proxy_fail(x, rc);
			return;
		}
	}
	pt_timer_del(&c->w->loop, &c->timer);
	x->buffering_body = 0;
	proxy_next(x);
}

/* ---- the response head -------------------------------------------------------- */

/* Whether another peer may take the request: one not yet tried and
 * live. Without one, a 502/503/504 listed in proxy_next_upstream is
 * passed on as the backend wrote it (its page, its Retry-After) rather
 * than replaced by a page of ours. */
static int
proxy_have_next(const struct proxy_ctx *x)
{
	for (unsigned i = 0; i < x->u->npeers; i++)
		if (!((x->lb.tried[i / 64] >> (i % 64)) & 1) &&
		    pt_peer_live(&x->u->peers[i], pt_now.mono_ms))
			return 1;
	return 0;
}

/* The head is complete and valid: next peer, or pass it on. */
static void
proxy_got_head(struct proxy_ctx *x)
{
	struct pt_http_request *r = x->r;
	struct proxy_try *t = proxy_cur_try(x);
	int st = x->rh.status;

	if (t != NULL) {
		t->status = st;
		t->header_ms = pt_now.mono_ms - x->try_start;
	}
	if ((st == 502 && (x->lc->next_mask & PROXY_NEXT_502)) ||
	    (st == 503 && (x->lc->next_mask & PROXY_NEXT_503)) ||
	    (st == 504 && (x->lc->next_mask & PROXY_NEXT_504))) {
		unsigned cond = st == 502 ? PROXY_NEXT_502
				: st == 503 ? PROXY_NEXT_503
					    : PROXY_NEXT_504;
		if (proxy_can_retry(x, cond) && proxy_have_next(x)) {
			proxy_error(x, PROXY_HTTP, st, 0, "");
			return;
		}
	}
	pt_peer_succeeded(&x->u->peers[x->peer], pt_now.mono_ms);
	if (st == 101) {
		if (!r->h.conn_upgrade) {
			proxy_error(x, PROXY_ERR, 502, 0,
				    "101 to a request that asked no upgrade");
			return;
		}
		x->head_done = 1;
		if (pt_proxy_copy_response(r, &x->rh) != PT_OK ||
		    pt_http_send_header(r) != PT_OK) {
			pt_proxy_fail(x, 500);
			return;
		}
		pt_proxy_tunnel_start(x);
		return;
	}
	x->head_done = 1;
	if (pt_proxy_copy_response(r, &x->rh) != PT_OK) {
		pt_proxy_fail(x, 500);
		return;
	}
	if (r->out.content_length < 0)
		r->out.chunked = 1;
	if (pt_http_send_header(r) != PT_OK) {
		pt_proxy_fail(x, 500);
		return;
	}
	pt_proxy_body_start(x);
}

/* The chunked body bytes read with the head must decode: while the head
 * is not passed on, a malformed body is still a clean 502 rather than a
 * response cut off after its head. PT_OK or PT_ERROR (why set). */
static int
proxy_check_chunks(struct proxy_ctx *x, const char **why)
{
	struct pt_http_chunked c;
	const char *p = x->hbuf + x->scan.head_len;
	const char *end = x->hbuf + x->hbuf_last;
	struct pt_str d;

	if (!x->rh.chunked || x->rh.no_body)
		return PT_OK;
	pt_http_chunked_init(&c, 4096, 16384); /* as proxy_io.c decodes */
	while (p < end) {
		int rc = pt_http_chunked_parse(&c, &p, end, &d);
		if (rc == PT_AGAIN || rc == PT_DONE)
			break;
		if (rc != PT_OK) {
			*why = "malformed chunked body";
			return PT_ERROR;
		}
	}
	return PT_OK;
}

/* Parse a complete head in hbuf[0..head_len). PT_OK, PT_AGAIN (an
 * interim 1xx was skipped) or PT_ERROR (why set). */
static int
proxy_parse_head(struct proxy_ctx *x, const char **why)
{
	size_t len = x->scan.head_len;
	unsigned max = 100;

	if (x->rhdrs == NULL) {
		x->rhdrs = pt_palloc(x->r->pool, max * sizeof(*x->rhdrs));
		if (x->rhdrs == NULL) {
			*why = "out of memory";
			return PT_ERROR;
		}
	}
	memset(&x->rh, 0, sizeof(x->rh));
	if (pt_http_resp_parse(x->hbuf, len, &x->rh, x->rhdrs, max, why) !=
		    PT_OK ||
	    pt_http_resp_framing(&x->rh, x->r->h.method_id, why) != PT_OK)
		return PT_ERROR;
	if (x->rh.status >= 100 && x->rh.status < 200 && x->rh.status != 101) {
		/* interim (100 Continue, 103 Early Hints): not relayed */
		memmove(x->hbuf, x->hbuf + len, x->hbuf_last - len);
		x->hbuf_last -= len;
		memset(&x->scan, 0, sizeof(x->scan));
		return PT_AGAIN;
	}
	if (x->rh.known[PT_H_TRANSFER_ENCODING] != NULL && !x->rh.chunked &&
	    !x->rh.no_body) {
		/* a coding we would relay without its name (the field is
		 * hop-by-hop): the client could not decode the body */
		*why = "transfer coding other than chunked";
		return PT_ERROR;
	}
	return proxy_check_chunks(x, why);
}

static void
proxy_read_head(struct proxy_ctx *x)
{
	struct pt_http_limits lim;
	const char *why = "invalid response";
	int rc;

	lim.line_max = (size_t)x->lc->buffer_size;
	lim.head_max = (size_t)x->lc->buffer_size;
	lim.headers_max = 100;
	if (x->hbuf == NULL) {
		x->hbuf = pt_pnalloc(x->r->pool, (size_t)x->lc->buffer_size);
		if (x->hbuf == NULL) {
			pt_proxy_fail(x, 500);
			return;
		}
	}
	for (;;) {
		size_t room = (size_t)x->lc->buffer_size - x->hbuf_last;
		ssize_t n;

		if (room == 0) {
			proxy_error(x, PROXY_ERR, 502, 0,
				    "response head larger than "
				    "proxy_buffer_size");
			return;
		}
		n = pt_sock_recv(x->uc->io.fd, x->uc->ssl, x->hbuf + x->hbuf_last,
				 room);
		if (n == 0) {
			proxy_error(x, PROXY_ERR, 502, 0,
				    x->got_bytes ? "closed in the response head"
						 : "closed without a response");
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				x->uc->io.readable = 0;
				if (x->request_sent)
					pt_timer_add(x->mc->loop, &x->timer,
						     x->lc->read_timeout);
				return;
			}
			proxy_error(x, PROXY_ERR, 502, errno,
				    "reading the response failed");
			return;
		}
		x->got_bytes = 1;
		x->hbuf_last += (size_t)n;
	again:
		rc = pt_http_resp_scan(&x->scan, x->hbuf, x->hbuf_last, &lim,
				       &why);
		if (rc == PT_AGAIN)
			continue;
		if (rc == PT_OK)
			rc = proxy_parse_head(x, &why);
		if (rc == PT_AGAIN)
			goto again; /* a 1xx skipped; the rest may be here */
		if (rc != PT_OK) {
			proxy_error(x, PROXY_ERR, 502, 0, why);
			return;
		}
		pt_timer_del(x->mc->loop, &x->timer);
		proxy_got_head(x);
		return;
	}
}

/* ---- the handler ------------------------------------------------------------------ */

static void
proxy_cleanup(void *data)
{
	struct proxy_ctx *x = data;

	x->finished = 1;
	pt_proxy_splice_done(x);
	pt_proxy_release(x, 0);
}

static int
proxy_handler(struct pt_http_request *r)
{
	struct proxy_loc_conf *lc = proxy_loc(r);
	struct proxy_main_conf *mc = proxy_main(r->conn->w->cycle);
	struct proxy_ctx *x;
	int rc;

	if (lc->upstream == NULL || mc == NULL)
		return PT_DECLINED;
	rc = pt_http_body_declared_ok(r);
	if (rc != PT_OK)
		return rc;
	x = pt_pcalloc(r->pool, sizeof(*x));
	if (x == NULL || pt_pool_cleanup_add(r->pool, proxy_cleanup, x) != PT_OK)
		return PT_ERROR;
	r->ctx[proxy_index] = x;
	x->r = r;
	x->mc = mc;
	x->lc = lc;
	x->u = lc->upstream;
	x->peer = -1;
	x->timer.fn = proxy_timeout;
	x->lb.u = x->u;
	x->lb.rt = &mc->rt[x->u->index];
	x->body_chunked = r->h.chunked;
	x->body_read_all = r->body.done;
	x->body_replay = 1;
	if (proxy_key(x) != PT_OK)
		return PT_ERROR;
	if (pt_proxy_build_request(r, &x->head, r->h.chunked) != PT_OK)
		return PT_ERROR;
	if (!r->body.done) {
		x->ubuf_size = (size_t)lc->buffer_size;
		x->ubuf = pt_pnalloc(r->pool, x->ubuf_size);
		if (x->ubuf == NULL)
			return PT_ERROR;
	}
	r->read_handler = proxy_client_read;
	r->write_handler = proxy_client_write;
	pt_timer_del(&r->conn->w->loop, &r->conn->timer);
	if (!r->body.done && lc->request_buffering) {
		x->buffering_body = 1;
		proxy_buffer_body(x);
		return PT_AGAIN;
	}
	proxy_next(x);
	return PT_AGAIN;
}

/* ---- variables ------------------------------------------------------------------ */

/* "a, b" over the attempts of r: what(t) formats one. */
static int
proxy_var_list(struct pt_http_request *r, struct pt_str *v, int kind)
{
	struct proxy_ctx *x = r->ctx[proxy_index];
	char *p, *buf;
	size_t cap;

	if (x == NULL || x->ntry == 0) {
		v->data = NULL;
		v->len = 0;
		return PT_OK;
	}
	cap = x->ntry * (PT_ADDR_TEXT + 4);
	buf = p = pt_pnalloc(r->pool, cap);
	if (buf == NULL)
		return PT_ERROR;
	for (unsigned i = 0; i < x->ntry; i++) {
		const struct proxy_try *t = &x->try[i];
		size_t room = cap - (size_t)(p - buf);
		int64_t ms = kind == 2 ? t->response_ms : t->connect_ms;
		int n;

		if (i > 0) {
			memcpy(p, ", ", 2);
			p += 2;
			room -= 2;
		}
		if (kind == 0)
			n = snprintf(p, room, "%s", x->u->peers[t->peer].address);
		else if (kind == 1)
			n = t->status ? snprintf(p, room, "%d", t->status)
				      : snprintf(p, room, "-");
		else if (ms < 0)
			n = snprintf(p, room, "-");
		else
			n = snprintf(p, room, "%lld.%03lld", (long long)(ms / 1000),
				     (long long)(ms % 1000));
		if (n < 0 || (size_t)n >= room)
			break;
		p += n;
	}
	v->data = buf;
	v->len = (size_t)(p - buf);
	return PT_OK;
}

static int
proxy_var_addr(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)a;
	return proxy_var_list(r, v, 0);
}

static int
proxy_var_status(struct pt_http_request *r, struct pt_str *v, struct pt_str a)
{
	(void)a;
	return proxy_var_list(r, v, 1);
}

static int
proxy_var_response_time(struct pt_http_request *r, struct pt_str *v,
			struct pt_str a)
{
	(void)a;
	return proxy_var_list(r, v, 2);
}

static int
proxy_var_connect_time(struct pt_http_request *r, struct pt_str *v,
		       struct pt_str a)
{
	(void)a;
	return proxy_var_list(r, v, 3);
}

static const struct pt_http_var proxy_vars[] = {
	{ "upstream_addr", 0, proxy_var_addr },
	{ "upstream_status", 0, proxy_var_status },
	{ "upstream_response_time", 0, proxy_var_response_time },
	{ "upstream_connect_time", 0, proxy_var_connect_time },
	{ NULL, 0, NULL },
};

/* ---- configuration ----------------------------------------------------------------- */

static const struct pt_enum proxy_forwarded_names[] = {
	{ "off", PROXY_FWD_OFF },
	{ "x-forwarded", PROXY_FWD_X },
	{ "rfc7239", PROXY_FWD_RFC7239 },
	{ "both", PROXY_FWD_BOTH },
	{ NULL, 0 },
};

static const struct {
	const char *name;
	unsigned bit;
} proxy_next_names[] = {
	{ "error", PROXY_NEXT_ERROR },	 { "timeout", PROXY_NEXT_TIMEOUT },
	{ "http_502", PROXY_NEXT_502 },	 { "http_503", PROXY_NEXT_503 },
	{ "http_504", PROXY_NEXT_504 },	 { "non_idempotent", PROXY_NEXT_NON_IDEMPOTENT },
	{ "off", PROXY_NEXT_OFF },
};

static int
proxy_set_next(struct pt_conf *cf, const struct pt_setting *s,
	       const config_setting_t *node, void *conf)
{
	struct proxy_loc_conf *lc = conf;

	if (pt_conf_set_generic(cf, s, node, conf) != PT_OK)
		return PT_ERROR;
	lc->next_mask = 0;
	for (unsigned i = 0; i < lc->next_upstream.n; i++) {
		unsigned k = 0;
		while (k < PT_ARRAY_SIZE(proxy_next_names) &&
		       strcmp(proxy_next_names[k].name,
			      lc->next_upstream.items[i]) != 0)
			k++;
		if (k == PT_ARRAY_SIZE(proxy_next_names)) {
			pt_conf_error(cf, node,
				      "\"%s\": unknown condition \"%s\" (error, "
				      "timeout, http_502, http_503, http_504, "
				      "non_idempotent, off)",
				      s->name, lc->next_upstream.items[i]);
			return PT_ERROR;
		}
		lc->next_mask |= proxy_next_names[k].bit;
	}
	if ((lc->next_mask & PROXY_NEXT_OFF) && lc->next_mask != PROXY_NEXT_OFF) {
		pt_conf_error(cf, node, "\"%s\": \"off\" must be alone", s->name);
		return PT_ERROR;
	}
	return PT_OK;
}

/* proxy_pass: keep the node too, for the errors (file:line) and the
 * implicit upstream's position, resolved once the locations merge. */
static int
proxy_set_pass(struct pt_conf *cf, const struct pt_setting *s,
	       const config_setting_t *node, void *conf)
{
	struct proxy_loc_conf *lc = conf;

	lc->pass_node = node;
	return pt_conf_set_generic(cf, s, node, conf);
}

/* The PROXY_SET_* bit of a field the proxy writes itself, or 0. */
static unsigned
proxy_set_bit(const char *name)
{
	static const struct {
		const char *name;
		unsigned bit;
	} own[] = {
		{ "Host", PROXY_SET_HOST },
		{ "X-Forwarded-For", PROXY_SET_XFF },
		{ "X-Forwarded-Proto", PROXY_SET_XFP },
		{ "X-Forwarded-Host", PROXY_SET_XFH },
		{ "Forwarded", PROXY_SET_FORWARDED },
		{ "Via", PROXY_SET_VIA },
	};

	for (unsigned i = 0; i < PT_ARRAY_SIZE(own); i++)
		if (strcasecmp(own[i].name, name) == 0)
			return own[i].bit;
	return 0;
}

/* proxy_set_header = { Host = "$host"; X-Real-IP = "$remote_addr"; } */
static int
proxy_set_headers(struct pt_conf *cf, const struct pt_setting *s,
		  const config_setting_t *node, void *conf)
{
	struct proxy_loc_conf *lc = conf;
	unsigned n;

	if (!config_setting_is_group(node)) {
		pt_conf_error(cf, node,
			      "\"%s\" expects a group: { Name = \"value\"; }",
			      s->name);
		return PT_ERROR;
	}
	n = (unsigned)config_setting_length(node);
	lc->set = pt_pcalloc(cf->pool, (n ? n : 1) * sizeof(*lc->set));
	if (lc->set == NULL)
		return PT_ERROR;
	lc->nset = 0;
	lc->set_mask = 0;
	lc->set_given = 1;
	for (unsigned i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(node, i);
		struct proxy_set_header *h = &lc->set[lc->nset];
		const char *v = config_setting_get_string(e);

		if (pt_http_field_tpl(cf, s, e, &h->name, &h->value) != PT_OK)
			return PT_ERROR;
		h->id = pt_http_header_id(h->name.data, h->name.len);
		h->empty = v[0] == '\0';
		lc->set_mask |= proxy_set_bit(h->name.data);
		lc->nset++;
	}
	return PT_OK;
}

static const struct pt_range proxy_r_buffers = { 1, 1024 };
static const struct pt_range proxy_r_bufsize = { 4096 + 64, 16 << 20 };
static const struct pt_range proxy_r_tries = { 0, 1000 };
static const struct pt_range proxy_r_timeout = { 1, PT_DURATION_MAX };

#define LOC(f) offsetof(struct proxy_loc_conf, f)
static const struct pt_setting proxy_settings[] = {
	{ "upstreams", PT_T_CUSTOM, PT_SCOPE_MAIN, PT_STORE_MAIN, 0,
	  pt_proxy_set_upstreams, NULL },
	{ "proxy_pass", PT_T_STRING, PT_SCOPE_HTTP, PT_STORE_LOC, LOC(pass),
	  proxy_set_pass, NULL },
	{ "proxy_connect_timeout", PT_T_DURATION, PT_SCOPE_HTTP, PT_STORE_LOC,
	  LOC(connect_timeout), NULL, &proxy_r_timeout },
	{ "proxy_read_timeout", PT_T_DURATION, PT_SCOPE_HTTP, PT_STORE_LOC,
	  LOC(read_timeout), NULL, &proxy_r_timeout },
	{ "proxy_send_timeout", PT_T_DURATION, PT_SCOPE_HTTP, PT_STORE_LOC,
	  LOC(send_timeout), NULL, &proxy_r_timeout },
	{ "proxy_next_upstream", PT_T_STRLIST, PT_SCOPE_HTTP, PT_STORE_LOC,
	  LOC(next_upstream), proxy_set_next, NULL },
	{ "proxy_next_upstream_tries", PT_T_INT, PT_SCOPE_HTTP, PT_STORE_LOC,
	  LOC(next_tries), NULL, &proxy_r_tries },
	{ "proxy_set_header", PT_T_CUSTOM, PT_SCOPE_HTTP, PT_STORE_LOC, 0,
	  proxy_set_headers, NULL },
	{ "proxy_request_buffering", PT_T_FLAG, PT_SCOPE_HTTP, PT_STORE_LOC,
	  LOC(request_buffering), NULL, NULL },
	{ "proxy_buffering", PT_T_FLAG, PT_SCOPE_HTTP, PT_STORE_LOC,
	  LOC(buffering), NULL, NULL },
	{ "proxy_buffers", PT_T_INT, PT_SCOPE_HTTP, PT_STORE_LOC, LOC(buffers),
	  NULL, &proxy_r_buffers },
	{ "proxy_buffer_size", PT_T_SIZE, PT_SCOPE_HTTP, PT_STORE_LOC,
	  LOC(buffer_size), NULL, &proxy_r_bufsize },
	{ "hide_header", PT_T_STRLIST, PT_SCOPE_HTTP, PT_STORE_LOC, LOC(hide),
	  NULL, NULL },
	{ "forwarded", PT_T_ENUM, PT_SCOPE_HTTP, PT_STORE_LOC, LOC(forwarded),
	  NULL, proxy_forwarded_names },
	{ "via", PT_T_FLAG, PT_SCOPE_HTTP, PT_STORE_LOC, LOC(via), NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};
#undef LOC

static void *
proxy_create_main(struct pt_conf *cf)
{
	struct proxy_main_conf *mc = pt_pcalloc(cf->pool, sizeof(*mc));

	proxy_index = pt_module_index(&pt_mod_proxy);
	if (mc != NULL)
		mc->cycle = cf->cycle;
	return mc;
}

static void *
proxy_create_loc(struct pt_conf *cf)
{
	struct proxy_loc_conf *lc = pt_pcalloc(cf->pool, sizeof(*lc));

	if (lc == NULL)
		return NULL;
	lc->connect_timeout = lc->read_timeout = lc->send_timeout = PT_UNSET;
	lc->next_tries = PT_UNSET;
	lc->request_buffering = lc->buffering = PT_UNSET;
	lc->buffer_size = lc->buffers = PT_UNSET;
	lc->forwarded = lc->via = PT_UNSET;
	return lc;
}

/* proxy_pass: an upstream's name, or "http(s)://host:port". */
static int
proxy_resolve_pass(struct pt_conf *cf, struct proxy_loc_conf *lc)
{
	struct proxy_main_conf *mc = cf->main_conf[proxy_index];
	const char *p = lc->pass;

	if (p == NULL || lc->upstream != NULL)
		return PT_OK;
	if (strncmp(p, "http://", 7) == 0 || strncmp(p, "https://", 8) == 0) {
		lc->upstream = pt_proxy_upstream_implicit(cf, mc, p,
							  lc->pass_node);
		return lc->upstream ? PT_OK : PT_ERROR;
	}
	lc->upstream = pt_proxy_upstream_find(mc, p);
	if (lc->upstream == NULL) {
		pt_conf_error(cf, lc->pass_node,
			      "\"proxy_pass\": no upstream named \"%s\" (define "
			      "it in \"upstreams\", or write "
			      "\"http://host:port\")",
			      p);
		return PT_ERROR;
	}
	return PT_OK;
}

static int
proxy_merge_loc(struct pt_conf *cf, void *parent, void *child)
{
	struct proxy_loc_conf *p = parent, *c = child;

	if (c->pass == NULL) {
		c->pass = p->pass;
		c->pass_node = p->pass_node;
		c->upstream = p->upstream;
	}
	PT_MERGE_I64(c->connect_timeout, p->connect_timeout, 60000);
	PT_MERGE_I64(c->read_timeout, p->read_timeout, 60000);
	PT_MERGE_I64(c->send_timeout, p->send_timeout, 60000);
	if (c->next_upstream.items == NULL) {
		c->next_upstream = p->next_upstream;
		c->next_mask = p->next_upstream.items
				       ? p->next_mask
				       : PROXY_NEXT_ERROR | PROXY_NEXT_TIMEOUT;
	}
	PT_MERGE_I64(c->next_tries, p->next_tries, 0);
	if (!c->set_given) {
		c->set = p->set;
		c->nset = p->nset;
		c->set_mask = p->set_mask;
		c->set_given = p->set_given;
	}
	PT_MERGE_INT(c->request_buffering, p->request_buffering, 0);
	PT_MERGE_INT(c->buffering, p->buffering, 1);
	/* 32k: a 16 KiB response with its head in one read and one write
	 * (measured: about 20% less CPU per request than 16k); 4 of them
	 * bound a response's memory at 128 KiB */
	PT_MERGE_I64(c->buffers, p->buffers, 4);
	PT_MERGE_I64(c->buffer_size, p->buffer_size, 32768);
	PT_MERGE_LIST(c->hide, p->hide);
	PT_MERGE_INT(c->forwarded, p->forwarded, PROXY_FWD_X);
	PT_MERGE_INT(c->via, p->via, 0);
	return proxy_resolve_pass(cf, c);
}

static int
proxy_postconfig(struct pt_conf *cf)
{
	return pt_proxy_upstreams_ready(cf, cf->main_conf[proxy_index]);
}

static int
proxy_init_worker(struct pt_cycle *cycle)
{
	struct proxy_main_conf *mc = proxy_main(cycle);

	return pt_proxy_upstreams_worker(mc, &cycle->worker_ctx->loop);
}

static void
proxy_exit_worker(struct pt_cycle *cycle)
{
	pt_proxy_upstreams_exit(proxy_main(cycle));
}

static int
proxy_helper_wanted(const struct pt_cycle *cycle)
{
	const struct proxy_main_conf *mc = cycle->main_conf[proxy_index];

	return mc != NULL && mc->need_helper;
}

static int
proxy_init_helper(struct pt_cycle *cycle, struct pt_loop *loop)
{
	return pt_proxy_health_init(proxy_main(cycle), loop);
}

static const struct pt_hook proxy_hooks[] = {
	{ PT_PHASE_CONTENT, 500, proxy_handler, NULL, NULL },
	{ 0, 0, NULL, NULL, NULL },
};

const struct pt_module pt_mod_proxy = {
	.name = "proxy",
	.settings = proxy_settings,
	.create_main = proxy_create_main,
	.create_loc = proxy_create_loc,
	.merge_loc = proxy_merge_loc,
	.postconfig = proxy_postconfig,
	.hooks = proxy_hooks,
	.vars = proxy_vars,
	.init_worker = proxy_init_worker,
	.exit_worker = proxy_exit_worker,
	.helper_wanted = proxy_helper_wanted,
	.init_helper = proxy_init_helper,
};
