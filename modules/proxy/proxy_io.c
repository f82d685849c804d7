/*
 * proxy_io.c: the response body from the backend to the client, and the
 * tunnel of an Upgrade (WebSocket).
 *
 * The body moves through a fixed set of slots (proxy_buffers of
 * proxy_buffer_size each; one with proxy_buffering off), the first being
 * the buffer the head was read into. A slot is filled by one recv(2),
 * its chunked coding (if any) removed in place, and queued to the
 * output; it is filled again only once the client's socket has taken
 * it. So a worker holds at most nslots * size bytes per response however
 * large the body and however slow the client, and a slow client slows
 * the reads from the backend (TCP pushes back) instead of growing
 * memory. A body of unknown length goes to an HTTP/1.1 client in chunks
 * framed here (each slot is one chunk), to an HTTP/1.0 client delimited
 * by the close. The backend's trailer fields are read and dropped.
 *
 * The tunnel copies bytes both ways with one buffer per direction; each
 * side's end-of-stream is passed on as a shutdown(SHUT_WR), and
 * proxy_read_timeout bounds the time without any traffic.
 */
#include "core.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "proxy.h"
#include "ptime.h"
#include "sockio.h"
#include "worker.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the response body ------------------------------------------------------ */

/* Is the slot's memory free again (its bytes written to the client)?
 * The output unlinks a buffer once written (without moving its pos), so
 * a slot is free when its links are no longer in the pending list,
 * which holds at most a few links per slot. */
static int
io_slot_free(const struct proxy_ctx *x, const struct proxy_slot *s)
{
	if (!s->busy)
		return 1;
	for (const struct pt_chain *cl = x->r->pending; cl != NULL;
	     cl = cl->next)
		if (cl == &s->lhdr || cl == &s->ldata)
			return 0;
	return 1;
}

static void
io_mem_buf(struct pt_buf *b, char *p, size_t n)
{
	memset(b, 0, sizeof(*b));
	b->pos = p;
	b->last = p + n;
	b->fd = -1;
}

/* Queue data [mem, mem + n) of slot s to the client. PT_OK or PT_ERROR. */
static int
io_queue(struct proxy_ctx *x, struct proxy_slot *s, size_t n)
{
	struct pt_chain *first = &s->ldata;
	int rc;

	io_mem_buf(&s->data, s->mem, n);
	s->ldata.buf = &s->data;
	s->ldata.next = NULL;
	if (x->frame_client) {
		int len = snprintf(s->line, sizeof(s->line), "%s%zx\r\n",
				   x->chunk_sent ? "\r\n" : "", n);
		x->chunk_sent = 1; /* the next line closes this chunk */
		io_mem_buf(&s->hdr, s->line, (size_t)len);
		s->lhdr.buf = &s->hdr;
		s->lhdr.next = &s->ldata;
		first = &s->lhdr;
	} else {
		io_mem_buf(&s->hdr, s->line, 0);
	}
	s->busy = 1;
	rc = pt_http_output(x->r, first);
	if (rc == PT_AGAIN) {
		/* a client that stops reading is bounded by send_timeout */
		struct pt_conn *c = x->r->conn;
		if (!pt_timer_armed(&c->timer))
			pt_timer_add(&c->w->loop, &c->timer,
				     pt_http_core_loc(x->r)->send_timeout);
	}
	return rc == PT_ERROR ? PT_ERROR : PT_OK;
}

/*
 * Take n fresh bytes at s->mem (the first `skip` bytes are not body, for
 * the slot holding the head): remove framing in place. Returns the data
 * bytes now at s->mem, or -1 for a malformed body.
 */
static ssize_t
io_decode(struct proxy_ctx *x, struct proxy_slot *s, size_t skip, size_t n)
{
	char *p = s->mem + skip, *end = s->mem + n;
	size_t out = 0;

	if (x->rh.chunked) {
		while (p < end && !x->upstream_done) {
			struct pt_str d;
			const char *q = p;
			int rc = pt_http_chunked_parse(&x->chunked, &q, end, &d);
			p = (char *)(uintptr_t)q;
			if (rc == PT_OK) {
				memmove(s->mem + out, d.data, d.len);
				out += d.len;
			} else if (rc == PT_DONE) {
				x->upstream_done = 1;
			} else if (rc != PT_AGAIN) {
				return -1;
			}
		}
		if (p < end)
			x->rh.keepalive = 0; /* bytes after the body */
		return (ssize_t)out;
	}
	out = (size_t)(end - p);
	if (!x->rh.until_close) {
		if ((int64_t)out > x->rest) {
			out = (size_t)x->rest;
			x->rh.keepalive = 0;
		}
		x->rest -= (int64_t)out;
		if (x->rest == 0)
			x->upstream_done = 1;
	}
	if (skip > 0 && out > 0)
		memmove(s->mem, s->mem + skip, out);
	return (ssize_t)out;
}

/* The backend's side is over: release it and queue the end. The request
 * may be freed when this returns. */
static void
io_finish(struct proxy_ctx *x)
{
	struct pt_http_request *r = x->r;
	struct pt_buf *b = &x->ltail_buf;
	int keep = x->rh.keepalive && x->request_sent && !x->rh.until_close;
	struct proxy_try *t = x->ntry ? &x->try[x->ntry - 1] : NULL;

	if (t != NULL)
		t->response_ms = pt_now.mono_ms - x->try_start;
	x->finished = 1;
	pt_proxy_splice_done(x);
	pt_proxy_release(x, keep);
	r->read_handler = NULL;
	r->write_handler = NULL;
	if (x->frame_client) {
		const char *end = x->chunk_sent ? "\r\n0\r\n\r\n" : "0\r\n\r\n";
		io_mem_buf(b, (char *)(uintptr_t)end, strlen(end));
	} else {
		io_mem_buf(b, x->tail, 0);
	}
	b->last_buf = 1;
	x->ltail.buf = b;
	x->ltail.next = NULL;
	if (pt_http_output(r, &x->ltail) == PT_ERROR) {
		pt_http_terminate(r, r->out.status);
		return;
	}
	pt_http_finalize(r, PT_DONE);
}

/* A slot to fill: the next in FIFO order, if the client took it. */
static struct proxy_slot *
io_next_slot(struct proxy_ctx *x)
{
	struct proxy_slot *s = &x->slots[x->next_slot];

	if (!io_slot_free(x, s))
		return NULL;
	if (s->mem == NULL) {
		s->mem = pt_pnalloc(x->r->pool, (size_t)x->lc->buffer_size);
		if (s->mem == NULL)
			return NULL;
	}
	s->busy = 0;
	return s;
}

void
pt_proxy_body_pump(struct proxy_ctx *x)
{
	struct pt_http_request *r = x->r;
	size_t size = (size_t)x->lc->buffer_size;

	if (x->finished)
		return;
	if (x->tunnel) {
		pt_proxy_tunnel_pump(x);
		return;
	}
	if (x->splicing) {
		int rc = pt_proxy_splice_pump(x);
		if (rc == PT_OK) {
			x->upstream_done = 1;
			io_finish(x);
		}
		return;
	}
	while (!x->upstream_done) {
		struct proxy_slot *s = io_next_slot(x);
		ssize_t n, d;

		if (s == NULL) {
			/* every slot waits for the client: its socket
			 * paces us (send_timeout bounds it) */
			pt_timer_del(x->mc->loop, &x->timer);
			return;
		}
		n = pt_sock_recv(x->uc->io.fd, x->uc->ssl, s->mem, size);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				x->uc->io.readable = 0;
				pt_timer_add(x->mc->loop, &x->timer,
					     x->lc->read_timeout);
				return;
			}
			pt_http_log(r, PT_LOG_ERR, errno,
				    "upstream \"%s\" peer %s: reading the "
				    "response body failed",
				    x->u->name, x->u->peers[x->peer].address);
			pt_proxy_fail(x, 502);
			return;
		}
		if (n == 0) {
			if (x->rh.until_close) {
				x->upstream_done = 1;
				break;
			}
			pt_http_log(r, PT_LOG_ERR, 0,
				    "upstream \"%s\" peer %s: closed before the "
				    "end of the response body",
				    x->u->name, x->u->peers[x->peer].address);
			pt_proxy_fail(x, 502);
			return;
		}
		d = io_decode(x, s, 0, (size_t)n);
		if (d < 0)
			goto bad;
		if (d > 0) {
			if (io_queue(x, s, (size_t)d) != PT_OK) {
				pt_proxy_fail(x, 499);
				return;
			}
			x->next_slot = (x->next_slot + 1) % x->nslots;
		}
	}
	io_finish(x);
	return;
bad:
	pt_http_log(r, PT_LOG_ERR, 0,
		    "upstream \"%s\" peer %s: malformed chunked body",
		    x->u->name, x->u->peers[x->peer].address);
	pt_proxy_fail(x, 502);
}

void
pt_proxy_body_start(struct proxy_ctx *x)
{
	struct pt_http_request *r = x->r;
	size_t head = x->scan.head_len;
	unsigned n = x->lc->buffering ? (unsigned)x->lc->buffers : 1;
	ssize_t d;

	x->frame_client = r->out.chunked;
	x->rest = x->rh.content_length;
	if (x->rh.no_body || r->header_only) {
		/* HEAD, 204, 304: nothing follows (and a body to a HEAD
		 * would be a backend bug: the connection is not kept) */
		if (!x->rh.no_body)
			x->rh.keepalive = 0;
		x->frame_client = 0;
		x->upstream_done = 1;
		io_finish(x);
		return;
	}
	if (x->rh.chunked)
		pt_http_chunked_init(&x->chunked, 4096, 16384);
	x->slots = pt_pcalloc(r->pool, n * sizeof(*x->slots));
	if (x->slots == NULL) {
		pt_proxy_fail(x, 500);
		return;
	}
	x->nslots = n;
	x->slots[0].mem = x->hbuf;
	if (!x->rh.until_close && !x->rh.chunked && x->rest == 0)
		x->upstream_done = 1;
	if (x->hbuf_last > head && !x->upstream_done) {
		d = io_decode(x, &x->slots[0], head, x->hbuf_last);
		if (d < 0) {
			pt_http_log(r, PT_LOG_ERR, 0,
				    "upstream \"%s\" peer %s: malformed "
				    "chunked body",
				    x->u->name, x->u->peers[x->peer].address);
			pt_proxy_fail(x, 502);
			return;
		}
		if (d > 0) {
			if (io_queue(x, &x->slots[0], (size_t)d) != PT_OK) {
				pt_proxy_fail(x, 499);
				return;
			}
			x->next_slot = 1 % n;
		}
	} else if (x->hbuf_last > head) {
		x->rh.keepalive = 0; /* bytes after a body-less response */
	}
	if (x->upstream_done) {
		io_finish(x);
		return;
	}
	x->splicing = pt_proxy_splice_ok(x);
	pt_proxy_body_pump(x);
}

/* ---- the tunnel ------------------------------------------------------------- */

/* Move bytes from one socket to another through buf. Returns 1 on
 * progress, 0 when both sides wait, -1 on an error; sets *eof when the
 * source ended (and passes the end on). */
static int
io_copy(struct pt_io *fio, struct ssl_st *fssl, struct pt_io *tio,
	struct ssl_st *tssl, char *buf, size_t size, size_t *pos,
	size_t *last, unsigned *eof)
{
	int progress = 0;

	for (;;) {
		ssize_t n;

		if (*pos < *last) {
			n = pt_sock_send(tio->fd, tssl, buf + *pos, *last - *pos);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN) {
					tio->writable = 0;
					return progress;
				}
				return -1;
			}
			*pos += (size_t)n;
			progress = 1;
			continue;
		}
		*pos = *last = 0;
		if (*eof)
			return progress;
		n = pt_sock_recv(fio->fd, fssl, buf, size);
		if (n == 0) {
			*eof = 1;
			pt_sock_shutdown_write(tio->fd, tssl);
			return 1;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				fio->readable = 0;
				return progress;
			}
			return -1;
		}
		*last = (size_t)n;
		progress = 1;
	}
}

void
pt_proxy_tunnel_pump(struct proxy_ctx *x)
{
	struct pt_http_request *r = x->r;
	struct pt_conn *c = r->conn;
	size_t size = (size_t)x->lc->buffer_size;
	int a = 0, b = 0;
	unsigned ceof = x->client_eof, beof = x->backend_eof;

	if (r->pending != NULL) {
		/* the 101 head first */
		int rc = pt_http_flush(r);
		if (rc == PT_ERROR) {
			pt_proxy_fail(x, 101);
			return;
		}
		if (rc == PT_AGAIN)
			return;
	}
	do {
		a = io_copy(&x->uc->io, x->uc->ssl, &c->io, c->ssl, x->hbuf,
			    size, &x->bc_pos, &x->hbuf_last, &beof);
		b = io_copy(&c->io, c->ssl, &x->uc->io, x->uc->ssl, x->tbuf,
			    size, &x->tbuf_pos, &x->tbuf_last, &ceof);
		if (a > 0 || b > 0)
			pt_timer_add(x->mc->loop, &x->timer,
				     x->lc->read_timeout);
	} while ((a > 0 || b > 0) && !(beof && ceof));
	x->client_eof = ceof;
	x->backend_eof = beof;
	if (a < 0 || b < 0 || (beof && ceof && x->bc_pos == x->hbuf_last &&
			       x->tbuf_pos == x->tbuf_last))
		pt_proxy_fail(x, 101);
}

void
pt_proxy_tunnel_start(struct proxy_ctx *x)
{
	struct pt_http_request *r = x->r;
	struct pt_conn *c = r->conn;
	size_t size = (size_t)x->lc->buffer_size;
	size_t head = x->scan.head_len;

	x->tunnel = 1;
	x->tbuf = pt_pnalloc(r->pool, size);
	if (x->tbuf == NULL) {
		pt_proxy_fail(x, 500);
		return;
	}
	/* what the backend sent after its head goes first */
	memmove(x->hbuf, x->hbuf + head, x->hbuf_last - head);
	x->hbuf_last -= head;
	x->bc_pos = 0;
	/* and what the client sent after its request */
	if (c->buf != NULL && c->buf_pos < c->buf_last) {
		size_t n = PT_MIN((size_t)(c->buf_last - c->buf_pos), size);
		memcpy(x->tbuf, c->buf + c->buf_pos, n);
		c->buf_pos += (uint32_t)n;
		x->tbuf_last = n;
	}
	/* the tunnel's own pace: no client timers */
	pt_timer_del(&c->w->loop, &c->timer);
	pt_timer_add(x->mc->loop, &x->timer, x->lc->read_timeout);
	c->io.readable = 1;
	x->uc->io.readable = 1;
	pt_proxy_tunnel_pump(x);
}
