/*
 * health.c: active health checks, run in the helper process only (one
 * process for the whole server, not one per worker).
 *
 * Every `interval`, each peer of an upstream with a health_check gets a
 * new connection and "GET path HTTP/1.1" with Host set to the peer's
 * address and "Connection: close"; the status line of the answer decides
 * (expect_status, default 200-399); a refused connection, a reset, an
 * invalid status line or no status line within `timeout` is a failure.
 * `rise` consecutive successes mark a peer up, `fall` consecutive
 * failures mark it down. A peer counts as up until its first verdict, so
 * a start or reload never takes traffic away. The verdict is written to
 * the peer's shared state (check_up, checked), where every worker's
 * balancer reads it at its next pick; when a peer comes back, live_since
 * starts its slow start.
 *
 * To a TLS upstream the check is made over TLS with the upstream's
 * SSL_CTX, the handshake driven by the helper's loop like the rest; a
 * handshake that fails (a peer that does not speak TLS, a certificate
 * that does not verify) is a failed check.
 */
#include "core.h"
#include "log.h"
#include "proxy.h"
#include "ptime.h"
#include "sockio.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEALTH_BUF 512

struct health {
	struct pt_io io; /* first: the event loop sees a pt_io */
	struct pt_timer timer;   /* next check, or the check's timeout */
	struct pt_loop *loop;
	struct pt_upstream *u;
	struct pt_upstream_peer *p;
	struct proxy_tls *tls;   /* NULL: plain */
	struct ssl_st *ssl;
	char req[512];
	size_t req_len, sent;
	char buf[HEALTH_BUF];
	size_t got;
	unsigned running : 1;
	unsigned connected : 1;
	unsigned handshaking : 1;
};

static void health_start(struct pt_timer *t);

static void
health_close(struct health *h)
{
	if (h->ssl != NULL) {
		pt_tls_close(h->ssl);
		h->ssl = NULL;
	}
	if (h->io.fd >= 0) {
		pt_io_del(h->loop, &h->io);
		close(h->io.fd);
		h->io.fd = -1;
	}
	h->running = 0;
}

/* Record one verdict and schedule the next check. */
static void
health_verdict(struct health *h, int ok, const char *why)
{
	struct pt_peer_state *st = h->p->st;
	const struct pt_health_check *hc = h->u->hc;
	int64_t now = pt_now.mono_ms;
	uint32_t up = __atomic_load_n(&st->check_up, __ATOMIC_RELAXED);
	uint32_t checked = __atomic_load_n(&st->checked, __ATOMIC_RELAXED);

	health_close(h);
	__atomic_store_n(&st->last_check, now, __ATOMIC_RELAXED);
	if (ok) {
		uint32_t rise = st->rise + 1;
		st->fall = 0;
		st->rise = rise;
		if ((!checked || !up) && rise >= hc->rise) {
			if (checked && !up) {
				__atomic_store_n(&st->live_since, now,
						 __ATOMIC_RELAXED);
				pt_log(PT_LOG_NOTICE, 0,
				       "upstream \"%s\": peer %s is up (%u "
				       "passed checks)",
				       h->u->name, h->p->address, rise);
			}
			__atomic_store_n(&st->check_up, 1, __ATOMIC_RELAXED);
			__atomic_store_n(&st->checked, 1, __ATOMIC_RELEASE);
		}
	} else {
		uint32_t fall = st->fall + 1;
		st->rise = 0;
		st->fall = fall;
		if ((!checked || up) && fall >= hc->fall) {
			pt_log(PT_LOG_WARN, 0,
			       "upstream \"%s\": peer %s is down (%u failed "
			       "checks; last: %s)",
			       h->u->name, h->p->address, fall, why);
			__atomic_store_n(&st->check_up, 0, __ATOMIC_RELAXED);
			__atomic_store_n(&st->checked, 1, __ATOMIC_RELEASE);
		}
	}
	h->timer.fn = health_start;
	pt_timer_add(h->loop, &h->timer, hc->interval);
}

static void
health_timeout(struct pt_timer *t)
{
	struct health *h = pt_container_of(t, struct health, timer);

	health_verdict(h, 0, "timed out");
}

/* "HTTP/1.x NNN" at the start of the answer: PT_OK, PT_AGAIN, PT_ERROR. */
static int
health_status(const struct health *h, int *status)
{
	const char *b = h->buf;

	if (h->got < 12)
		return PT_AGAIN;
	if (memcmp(b, "HTTP/1.", 7) != 0 || b[7] < '0' || b[7] > '9' ||
	    b[8] != ' ' || b[9] < '1' || b[9] > '5' || b[10] < '0' ||
	    b[10] > '9' || b[11] < '0' || b[11] > '9')
		return PT_ERROR;
	*status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
	return PT_OK;
}

static void health_write(struct pt_io *io);

static void
health_read(struct pt_io *io)
{
	struct health *h = (struct health *)io;
	int status = 0, rc;

	if (h->running && h->handshaking) {
		health_write(io); /* the handshake waits for this event */
		return;
	}
	if (!h->running || h->sent < h->req_len)
		return;
	for (;;) {
		ssize_t n = pt_sock_recv(io->fd, h->ssl, h->buf + h->got,
					 HEALTH_BUF - h->got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			io->readable = 0;
			return;
		}
		if (n <= 0) {
			health_verdict(h, 0,
				       n == 0		 ? "closed without a status line"
				       : errno == EPROTO ? pt_tls_last_error()
							 : strerror(errno));
			return;
		}
		h->got += (size_t)n;
		rc = health_status(h, &status);
		if (rc == PT_AGAIN && h->got < HEALTH_BUF)
			continue;
		if (rc != PT_OK) {
			health_verdict(h, 0, "invalid status line");
			return;
		}
		if (status < h->u->hc->status_min ||
		    status > h->u->hc->status_max) {
			char why[48];
			snprintf(why, sizeof(why), "status %d", status);
			health_verdict(h, 0, why);
			return;
		}
		health_verdict(h, 1, "");
		return;
	}
}

/* Connected (and, to a TLS upstream, the handshake done): PT_OK; else
 * PT_AGAIN, or PT_ERROR once the verdict is given. */
static int
health_connect(struct health *h)
{
	int err = 0, want_write, rc;
	socklen_t len = sizeof(err);

	if (!h->connected) {
		if (getsockopt(h->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ||
		    err != 0) {
			health_verdict(h, 0, strerror(err ? err : errno));
			return PT_ERROR;
		}
		h->connected = 1;
		if (h->tls != NULL) {
			unsigned i = (unsigned)(h->p - h->u->peers);
			h->ssl = pt_proxy_tls_new(h->tls, i, h->io.fd, 0);
			if (h->ssl == NULL) {
				health_verdict(h, 0, "TLS setup failed");
				return PT_ERROR;
			}
			h->handshaking = 1;
		}
	}
	if (!h->handshaking)
		return PT_OK;
	rc = pt_tls_handshake(h->ssl, &want_write);
	if (rc == PT_AGAIN) {
		if (want_write)
			h->io.writable = 0;
		else
			h->io.readable = 0;
		return PT_AGAIN;
	}
	if (rc == PT_ERROR) {
		unsigned i = (unsigned)(h->p - h->u->peers);
		health_verdict(h, 0, pt_proxy_tls_failed(h->tls, i, h->ssl));
		return PT_ERROR;
	}
	h->handshaking = 0;
	return PT_OK;
}

static void
health_write(struct pt_io *io)
{
	struct health *h = (struct health *)io;

	if (!h->running || h->sent == h->req_len)
		return;
	if (health_connect(h) != PT_OK)
		return;
	while (h->sent < h->req_len) {
		ssize_t n = pt_sock_send(io->fd, h->ssl, h->req + h->sent,
					 h->req_len - h->sent);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			io->writable = 0;
			return;
		}
		if (n < 0) {
			health_verdict(h, 0, strerror(errno));
			return;
		}
		h->sent += (size_t)n;
	}
	if (io->readable)
		health_read(io);
}

static void
health_start(struct pt_timer *t)
{
	struct health *h = pt_container_of(t, struct health, timer);
	const struct pt_sockaddr *a = &h->p->addr;
	int fd;

	pt_time_update();
	h->got = h->sent = 0;
	h->connected = h->handshaking = 0;
	fd = socket(a->u.sa.sa_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		pt_log(PT_LOG_ERR, errno, "health check socket()");
		h->timer.fn = health_start;
		pt_timer_add(h->loop, &h->timer, h->u->hc->interval);
		return;
	}
	h->io = (struct pt_io){ .fd = fd, .on_read = health_read,
				.on_write = health_write };
	h->running = 1;
	h->timer.fn = health_timeout;
	pt_timer_add(h->loop, &h->timer, h->u->hc->timeout);
	if (connect(fd, &a->u.sa, a->len) < 0 && errno != EINPROGRESS) {
		health_verdict(h, 0, strerror(errno));
		return;
	}
	if (pt_io_add(h->loop, &h->io) != PT_OK)
		health_verdict(h, 0, "epoll");
}

static int
health_peer(struct pt_loop *loop, struct pt_upstream *u,
	    struct proxy_tls *tls, struct pt_upstream_peer *p, unsigned i)
{
	struct health *h = calloc(1, sizeof(*h));
	const char *host = p->addr.u.sa.sa_family == AF_UNIX ? "localhost"
							       : p->address;
	int n;

	if (h == NULL)
		return PT_ERROR;
	h->io.fd = -1;
	h->loop = loop;
	h->u = u;
	h->p = p;
	h->tls = tls;
	n = snprintf(h->req, sizeof(h->req),
		     "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
		     "User-Agent: portier-health-check\r\n\r\n",
		     u->hc->path, host);
	if (n < 0 || (size_t)n >= sizeof(h->req)) {
		pt_log(PT_LOG_ERR, 0,
		       "upstream \"%s\": health check path too long", u->name);
		free(h);
		return PT_ERROR;
	}
	h->req_len = (size_t)n;
	h->timer.fn = health_start;
	/* spread the first checks over the interval, not all at once */
	return pt_timer_add(loop, &h->timer,
			    (int64_t)i * 37 % (u->hc->interval + 1));
}

int
pt_proxy_health_init(struct proxy_main_conf *mc, struct pt_loop *loop)
{
	unsigned n = 0;

	for (unsigned i = 0; i < mc->nups; i++) {
		struct pt_upstream *u = mc->ups[i];
		if (u->hc == NULL)
			continue;
		for (unsigned k = 0; k < u->npeers; k++, n++)
			if (health_peer(loop, u, mc->tls[i], &u->peers[k], n) !=
			    PT_OK)
				return PT_ERROR;
	}
	pt_log(PT_LOG_INFO, 0, "health checks: %u peers", n);
	return PT_OK;
}
