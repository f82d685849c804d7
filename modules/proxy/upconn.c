/*
 * upconn.c: connections from a worker to backends, and the worker's
 * keep-alive pools.
 *
 * Each upstream has, per worker, a list of idle connections (rt->idle,
 * circular, the most recently used first): a request to peer i takes the
 * most recent idle connection to that peer (LIFO keeps the set of warm
 * connections small and lets the others time out), else connects. An
 * idle connection is watched by the event loop: any readiness on it (the
 * backend closed it, or sent bytes nobody asked for) closes it at once;
 * and before it is handed out, a MSG_PEEK makes sure nothing arrived that
 * the loop has not reported yet (it may be in the same batch of events as
 * the request taking the connection). The pool holds at most `keepalive` connections per upstream per
 * worker (the oldest is closed), each for at most keepalive_timeout and
 * keepalive_requests requests. What a closed-but-not-yet-seen connection
 * costs is bounded by the proxy: a request that fails on a reused
 * connection before any response byte is retried once on a fresh one.
 *
 * To a TLS upstream, a new connection is ready once its handshake is done
 * (both under proxy_connect_timeout), and a pooled one keeps its session.
 * An idle TLS connection may legitimately receive records that are not
 * data (TLS 1.3 tickets, a key update): they are read and the connection
 * stays; data or a close end it as for plain TCP.
 */
#include "core.h"
#include "log.h"
#include "proxy.h"
#include "ptime.h"
#include "sockio.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

static void
upconn_reap(struct pt_posted *p)
{
	struct proxy_main_conf *mc =
		pt_container_of(p, struct proxy_main_conf, reap);

	while (mc->dead != NULL) {
		struct pt_upconn *uc = mc->dead;
		mc->dead = uc->next;
		free(uc);
	}
}

/* Close now, free after this batch of events: a later event of the
 * batch may still point at uc (it sees io.closed and is ignored). */
static void
upconn_free(struct pt_upconn *uc)
{
	struct proxy_main_conf *mc = uc->mc;

	pt_timer_del(uc->loop, &uc->timer);
	if (uc->ssl != NULL) {
		pt_tls_close(uc->ssl);
		uc->ssl = NULL;
	}
	if (uc->io.fd >= 0)
		close(uc->io.fd);
	uc->io.fd = -1;
	uc->io.closed = 1;
	uc->next = mc->dead;
	mc->dead = uc;
	mc->reap.fn = upconn_reap;
	pt_post(uc->loop, &mc->reap);
}

void
pt_upconn_close(struct pt_upconn *uc)
{
	upconn_free(uc);
}

static void
upconn_unlink(struct pt_upconn *uc)
{
	struct pt_upstream_rt *rt = uc->rt;

	if (uc->next == uc) {
		rt->idle = NULL;
	} else {
		uc->prev->next = uc->next;
		uc->next->prev = uc->prev;
		if (rt->idle == uc)
			rt->idle = uc->next;
	}
	uc->prev = uc->next = NULL;
	rt->nidle--;
}

static int upconn_quiet(struct pt_upconn *uc);

/* Any event on an idle connection ends it, but records that are not
 * data on a TLS one. */
static void
upconn_idle_event(struct pt_io *io)
{
	struct pt_upconn *uc = (struct pt_upconn *)io;

	if (uc->ssl != NULL && !io->hup && !io->error && upconn_quiet(uc))
		return;
	upconn_unlink(uc);
	upconn_free(uc);
}

static void
upconn_idle_timeout(struct pt_timer *t)
{
	struct pt_upconn *uc = pt_container_of(t, struct pt_upconn, timer);

	upconn_unlink(uc);
	upconn_free(uc);
}

/*
 * Nothing came on the idle connection: no close, no stray bytes. The
 * event loop would tell, but not before the rest of its batch runs, and
 * a request of that same batch may be about to reuse the connection;
 * stray bytes read as its response would be a response split.
 */
static int
upconn_quiet(struct pt_upconn *uc)
{
	char c;
	ssize_t n;

	if (uc->ssl != NULL) {
		if (!pt_proxy_tls_quiet(uc->io.fd, uc->ssl))
			return 0;
		uc->io.readable = 0; /* drained */
		return 1;
	}
	n = recv(uc->io.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static struct pt_upconn *
upconn_from_pool(struct pt_upstream_rt *rt, unsigned peer)
{
	struct pt_upconn *uc = rt->idle;

	for (unsigned n = rt->nidle; n > 0; n--, uc = uc->next) {
		if (uc->peer != peer)
			continue;
		upconn_unlink(uc);
		if ((uc->io.readable && uc->ssl == NULL) || uc->io.hup ||
		    uc->io.error || !upconn_quiet(uc)) {
			/* closed by the backend, or bytes nobody asked for */
			upconn_free(uc);
			return upconn_from_pool(rt, peer);
		}
		pt_timer_del(uc->loop, &uc->timer);
		uc->reused = 1;
		return uc;
	}
	return NULL;
}

/* One step of the handshake: PT_OK, PT_AGAIN or PT_ERROR (errno 0). */
static int
upconn_tls_step(struct pt_upconn *uc)
{
	int want_write;
	int rc = pt_tls_handshake(uc->ssl, &want_write);

	if (rc == PT_AGAIN) {
		/* the socket was drained in the direction OpenSSL waits
		 * for: edge-triggered, the next edge reports it */
		if (want_write)
			uc->io.writable = 0;
		else
			uc->io.readable = 0;
		return PT_AGAIN;
	}
	if (rc == PT_OK)
		uc->handshaking = 0;
	else
		errno = 0;
	return rc;
}

/* TCP is up: the TLS handshake is next. PT_AGAIN or PT_ERROR. */
static int
upconn_tls_start(struct pt_upconn *uc)
{
	struct proxy_tls *t = uc->mc->tls[uc->u->index];

	uc->ssl = pt_proxy_tls_new(t, uc->peer, uc->io.fd, 1);
	if (uc->ssl == NULL) {
		errno = ENOMEM;
		return PT_ERROR;
	}
	uc->handshaking = 1;
	return PT_AGAIN;
}

int
pt_upconn_get(struct proxy_main_conf *mc, struct pt_upstream *u, unsigned i,
	      int fresh, struct pt_upconn **out)
{
	struct pt_upstream_rt *rt = &mc->rt[u->index];
	const struct pt_sockaddr *a = &u->peers[i].addr;
	struct pt_upconn *uc = fresh ? NULL : upconn_from_pool(rt, i);
	int fd, one = 1;

	if (uc != NULL) {
		*out = uc;
		return PT_OK;
	}
	fd = socket(a->u.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return PT_ERROR;
	if (a->u.sa.sa_family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	uc = calloc(1, sizeof(*uc));
	if (uc == NULL) {
		close(fd);
		errno = ENOMEM;
		return PT_ERROR;
	}
	uc->io.fd = fd;
	uc->mc = mc;
	uc->loop = mc->loop;
	uc->u = u;
	uc->rt = rt;
	uc->peer = i;
	*out = uc;
	if (connect(fd, &a->u.sa, a->len) == 0) {
		if (pt_io_add(mc->loop, &uc->io) != PT_OK)
			return PT_ERROR;
		if (mc->tls[u->index] == NULL)
			return PT_OK;
		/* the handshake starts at the writable event that adding
		 * the socket reports */
		if (upconn_tls_start(uc) == PT_AGAIN)
			return PT_AGAIN;
		upconn_free(uc);
		*out = NULL;
		errno = ENOMEM;
		return PT_ERROR;
	}
	if (errno != EINPROGRESS) {
		int err = errno;
		close(fd);
		free(uc);
		*out = NULL;
		errno = err;
		return PT_ERROR;
	}
	uc->connecting = 1;
	if (pt_io_add(mc->loop, &uc->io) != PT_OK)
		return PT_ERROR;
	return PT_AGAIN;
}

int
pt_upconn_setup(struct pt_upconn *uc, const char **why)
{
	struct proxy_tls *t = uc->mc->tls[uc->u->index];
	int err = 0, rc;
	socklen_t len = sizeof(err);

	*why = "connect() failed";
	if (uc->connecting) {
		if (getsockopt(uc->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			return PT_ERROR;
		if (err != 0) {
			errno = err;
			return PT_ERROR;
		}
		uc->connecting = 0;
		if (t == NULL)
			return PT_OK;
		if (upconn_tls_start(uc) != PT_AGAIN) {
			*why = "TLS setup failed";
			return PT_ERROR;
		}
	}
	if (!uc->handshaking)
		return PT_OK;
	rc = upconn_tls_step(uc);
	if (rc == PT_ERROR)
		*why = pt_proxy_tls_failed(t, uc->peer, uc->ssl);
	return rc;
}

void
pt_upconn_release(struct pt_upconn *uc, int keep)
{
	struct pt_upstream_rt *rt = uc->rt;
	struct pt_upstream *u = uc->u;

	if (uc->next != NULL) {
		/* an idle one: the pool is being emptied */
		upconn_unlink(uc);
		upconn_free(uc);
		return;
	}
	uc->owner = NULL;
	if (!keep || u->keepalive == 0 || uc->connecting || uc->handshaking ||
	    (u->keepalive_requests > 0 &&
	     uc->requests >= (uint64_t)u->keepalive_requests) ||
	    uc->io.hup || uc->io.error) {
		upconn_free(uc);
		return;
	}
	if (rt->nidle >= (uint64_t)u->keepalive) {
		struct pt_upconn *oldest = rt->idle->prev;
		upconn_unlink(oldest);
		upconn_free(oldest);
	}
	uc->io.on_read = upconn_idle_event;
	uc->io.on_write = NULL;
	uc->io.readable = 0;
	uc->timer.fn = upconn_idle_timeout;
	if (rt->idle == NULL) {
		uc->prev = uc->next = uc;
	} else {
		uc->next = rt->idle;
		uc->prev = rt->idle->prev;
		uc->prev->next = uc;
		rt->idle->prev = uc;
	}
	rt->idle = uc;
	rt->nidle++;
	pt_timer_add(uc->loop, &uc->timer, u->keepalive_timeout);
}
