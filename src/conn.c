/*
 * conn.c: client connections of a worker: accepting, the worker_connections
 * bound, the idle keep-alive list, closing.
 *
 * Connection structures are recycled through a free list, so steady-state
 * traffic allocates nothing here. A closed connection is not reused until
 * the current event batch is over (events for its old fd may still be in
 * the batch; they see io.closed and are dropped).
 *
 * Out of connections: the oldest idle keep-alive connection is closed to
 * make room, as nginx does; if none is idle, the listeners leave epoll
 * until a connection closes (the kernel's backlog holds the rest).
 */
#include "core.h"
#include "cycle.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "sockio.h"
#include "stats.h"
#include "worker.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONN_ACCEPT_BATCH 64
#define CONN_EMFILE_PAUSE_MS 500

static void
conn_reap(struct pt_posted *p)
{
	struct pt_worker *w = pt_container_of(p, struct pt_worker, reap);

	while (w->dead != NULL) {
		struct pt_conn *c = w->dead;
		w->dead = c->next;
		c->next = w->free_conns;
		w->free_conns = c;
	}
}

static struct pt_conn *
conn_alloc(struct pt_worker *w)
{
	struct pt_conn *c = w->free_conns;

	if (c != NULL)
		w->free_conns = c->next;
	else
		c = malloc(sizeof(*c));
	if (c != NULL)
		memset(c, 0, sizeof(*c));
	return c;
}

static void
conn_emfile_resume(struct pt_timer *t)
{
	struct pt_worker *w = pt_container_of(t, struct pt_worker,
					      accept_timer);

	if (!w->quitting)
		pt_worker_accept(w, 1);
}

/*
 * At worker_connections, a new connection may still be accepted if an
 * idle one can make room; it is closed only once accept(2) has returned a
 * connection (a wake-up with nothing to accept must not cost a client its
 * connection). With nothing idle, the listeners leave epoll: they come
 * back when a connection closes (pt_worker_conn_done()) or goes idle
 * (pt_conn_set_idle()).
 */
static int
conn_can_accept(struct pt_worker *w)
{
	if (w->nconns < w->max_conns || w->idle_head != NULL)
		return 1;
	pt_log(PT_LOG_WARN, 0,
	       "%u worker_connections are not enough: not accepting until "
	       "one closes or goes idle",
	       w->max_conns);
	pt_worker_accept(w, 0);
	return 0;
}

static void
conn_make_room(struct pt_worker *w)
{
	if (w->nconns < w->max_conns || w->idle_head == NULL)
		return;
	pt_conn_log(w->idle_head, PT_LOG_INFO, 0,
		    "closing idle keep-alive connection: "
		    "worker_connections reached");
	pt_conn_close_idle(w, 1);
}

void
pt_conn_accept(struct pt_io *io)
{
	struct pt_listener *ls = pt_container_of(io, struct pt_listener, io);
	struct pt_worker *w = ls->cycle->worker_ctx;

	for (int i = 0; i < CONN_ACCEPT_BATCH && w->accepting; i++) {
		struct pt_sockaddr peer;
		struct pt_conn *c;
		int fd;

		if (!conn_can_accept(w))
			return;
		peer.len = sizeof(peer.u);
		fd = accept4(io->fd, &peer.u.sa, &peer.len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == ECONNABORTED ||
			    errno == EINTR)
				return;
			pt_log(PT_LOG_CRIT, errno, "accept() on %s failed",
			       ls->text);
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				/* let in-flight work free descriptors */
				pt_worker_accept(w, 0);
				w->accept_timer.fn = conn_emfile_resume;
				pt_timer_add(&w->loop, &w->accept_timer,
					     CONN_EMFILE_PAUSE_MS);
			}
			return;
		}
		conn_make_room(w);
		c = conn_alloc(w);
		if (c == NULL) {
			pt_log(PT_LOG_CRIT, ENOMEM, "accept on %s", ls->text);
			close(fd);
			return;
		}
		c->io.fd = fd;
		c->ls = ls;
		c->w = w;
		c->peer = peer;
		c->number = ++w->conn_number;
		w->nconns++;
		pt_stats_inc(&w->stats->accepted);
		pt_stats_add(&w->stats->active, 1);
		if (pt_io_add(&w->loop, &c->io) != PT_OK) {
			pt_log(PT_LOG_CRIT, errno, "epoll_ctl() failed");
			c->closing = 1;
			close(fd);
			w->nconns--;
			pt_stats_add(&w->stats->active, -1);
			c->next = w->free_conns;
			w->free_conns = c;
			continue;
		}
		/* a new socket's send buffer is empty: the first response can
		 * be written by the read handler, not deferred to the EPOLLOUT
		 * of the same event */
		c->io.writable = 1;
		ls->handler(c);
	}
}

void
pt_conn_set_idle(struct pt_conn *c, int idle)
{
	struct pt_worker *w = c->w;

	if ((int)c->idle == idle)
		return;
	if (idle) {
		c->prev = w->idle_tail;
		c->next = NULL;
		if (w->idle_tail != NULL)
			w->idle_tail->next = c;
		else
			w->idle_head = c;
		w->idle_tail = c;
	} else {
		if (c->prev != NULL)
			c->prev->next = c->next;
		else
			w->idle_head = c->next;
		if (c->next != NULL)
			c->next->prev = c->prev;
		else
			w->idle_tail = c->prev;
		c->prev = c->next = NULL;
	}
	c->idle = idle ? 1 : 0;
	pt_stats_add(&w->stats->waiting, idle ? 1 : -1);
	/* at worker_connections, an idle connection can make room again */
	if (idle && !w->accepting && !w->quitting &&
	    !pt_timer_armed(&w->accept_timer))
		pt_worker_accept(w, 1);
}

void
pt_conn_close_idle(struct pt_worker *w, unsigned max)
{
	while (w->idle_head != NULL && max-- > 0)
		pt_conn_close(w->idle_head);
}

void
pt_conn_close(struct pt_conn *c)
{
	struct pt_worker *w = c->w;

	if (c->closing)
		return;
	pt_conn_set_idle(c, 0);
	pt_timer_del(&w->loop, &c->timer);
	pt_post_cancel(&w->loop, &c->posted);
	if (c->buf != NULL) {
		pt_block_release(c->buf, c->buf_size);
		c->buf = NULL;
	}
	if (c->ssl != NULL) {
		pt_tls_close(c->ssl);
		c->ssl = NULL;
	}
	c->io.closed = 1;
	c->closing = 1;
	close(c->io.fd);
	c->io.fd = -1;
	c->next = w->dead;
	w->dead = c;
	w->reap.fn = conn_reap;
	pt_post(&w->loop, &w->reap);
	w->nconns--;
	pt_stats_add(&w->stats->active, -1);
	pt_worker_conn_done(w);
}
