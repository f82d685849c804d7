/*
 * proxy_splice.c: a large response body of known length moves from the
 * backend's socket to the client's through a pipe with splice(2), never
 * through user space: no copy, and one system call pair per pipe load
 * instead of one per buffer.
 *
 * It applies when nothing needs to see the bytes: a Content-Length body
 * of at least PROXY_SPLICE_MIN bytes, not framed in chunks for the
 * client. The head (and whatever body bytes came with it) is written
 * first through the normal output; from then on the pipe is drained to
 * the client before it is filled again from the backend, so a slow
 * client holds at most one pipe's worth (64 KiB) in the kernel and
 * nothing in the worker. Pipes are kept per worker for the next
 * response once empty.
 */
#include "core.h"
#include "http.h"
#include "log.h"
#include "proxy.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#define PROXY_SPLICE_MIN (128 * 1024)
#define PROXY_PIPE_LOAD (64 * 1024)

int
pt_proxy_splice_ok(const struct proxy_ctx *x)
{
	/* TLS on either side means the bytes pass through user space */
	return x->r->conn->ssl == NULL && x->uc->ssl == NULL &&
	       !x->frame_client && !x->rh.chunked && !x->rh.until_close &&
	       x->rest >= PROXY_SPLICE_MIN && !x->r->header_only;
}

static int
splice_pipe_get(struct proxy_ctx *x)
{
	struct proxy_main_conf *mc = x->mc;

	if (mc->npipes > 0) {
		mc->npipes--;
		x->pipe[0] = mc->pipes[mc->npipes][0];
		x->pipe[1] = mc->pipes[mc->npipes][1];
	} else if (pipe2(x->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
		return PT_ERROR;
	}
	x->has_pipe = 1;
	x->pipe_bytes = 0;
	return PT_OK;
}

void
pt_proxy_splice_done(struct proxy_ctx *x)
{
	struct proxy_main_conf *mc = x->mc;

	if (!x->has_pipe)
		return;
	x->has_pipe = 0;
	if (x->pipe_bytes == 0 && mc->pipes != NULL &&
	    mc->npipes < PROXY_PIPES_KEPT) {
		mc->pipes[mc->npipes][0] = x->pipe[0];
		mc->pipes[mc->npipes][1] = x->pipe[1];
		mc->npipes++;
		return;
	}
	close(x->pipe[0]);
	close(x->pipe[1]);
}

/*
 * Move bytes as both sockets allow. Returns PT_OK (the body is all
 * written), PT_AGAIN (waiting on a socket), or a failure already handled
 * (PT_ERROR: x is finished).
 */
int
pt_proxy_splice_pump(struct proxy_ctx *x)
{
	struct pt_http_request *r = x->r;
	struct pt_conn *c = r->conn;
	ssize_t n;

	if (r->pending != NULL) {
		int rc = pt_http_flush(r);
		if (rc == PT_ERROR) {
			pt_proxy_fail(x, 499);
			return PT_ERROR;
		}
		if (rc == PT_AGAIN)
			return PT_AGAIN;
	}
	if (!x->has_pipe && splice_pipe_get(x) != PT_OK) {
		pt_http_log(r, PT_LOG_ERR, errno, "pipe2() failed");
		pt_proxy_fail(x, 500);
		return PT_ERROR;
	}
	for (;;) {
		if (x->pipe_bytes > 0) {
			n = splice(x->pipe[0], NULL, c->io.fd, NULL, x->pipe_bytes,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN) {
				/* the client's pace now: send_timeout, not
				 * the backend's read timeout */
				c->io.writable = 0;
				pt_timer_del(x->mc->loop, &x->timer);
				pt_timer_add(&c->w->loop, &c->timer,
					     pt_http_core_loc(r)->send_timeout);
				return PT_AGAIN;
			}
			if (n <= 0) {
				pt_http_log(r, PT_LOG_INFO, errno,
					    "writing the response failed");
				pt_proxy_fail(x, 499);
				return PT_ERROR;
			}
			x->pipe_bytes -= (size_t)n;
			r->bytes_sent += n;
			continue;
		}
		pt_timer_del(&c->w->loop, &c->timer);
		if (x->rest == 0)
			return PT_OK;
		n = splice(x->uc->io.fd, NULL, x->pipe[1], NULL,
			   (size_t)PT_MIN(x->rest, (int64_t)PROXY_PIPE_LOAD),
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			x->uc->io.readable = 0;
			pt_timer_add(x->mc->loop, &x->timer, x->lc->read_timeout);
			return PT_AGAIN;
		}
		if (n <= 0) {
			pt_http_log(r, PT_LOG_ERR, n < 0 ? errno : 0,
				    "upstream \"%s\" peer %s: %s before the end "
				    "of the response body",
				    x->u->name, x->u->peers[x->peer].address,
				    n < 0 ? "failed" : "closed");
			pt_proxy_fail(x, 502);
			return PT_ERROR;
		}
		x->rest -= n;
		x->pipe_bytes += (size_t)n;
	}
}
