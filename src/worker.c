/*
 * worker.c: a worker process.
 *
 * Order after fork (as OpenBSD's proc_run): raise the descriptor limit
 * while still root, drop privileges, then build the event loop and accept.
 * A worker leaves with exit code 2 when it can not start at all, which
 * tells the master not to respawn it in a loop.
 *
 * Graceful exit (QUIT): stop accepting, close idle keep-alive connections
 * at once, let every other connection finish its request (responses get
 * "Connection: close"), exit when none is left or worker_shutdown_timeout
 * expires. A connection that has not sent its first request yet is not
 * idle: it is served, because the client has no way to know it should
 * retry elsewhere.
 */
#include "core.h"
#include "cycle.h"
#include "http.h"
#include "listen.h"
#include "log.h"
#include "pool.h"
#include "proc.h"
#include "ptime.h"
#include "stats.h"
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

PT_NORETURN static void
worker_exit(struct pt_worker *w, int code)
{
	struct pt_cycle *c = w->cycle;

	for (unsigned i = 0; pt_modules[i] != NULL; i++)
		if (pt_modules[i]->exit_worker != NULL)
			pt_modules[i]->exit_worker(c);
	pt_log(PT_LOG_INFO, 0, "exiting");
	exit(code);
}

void
pt_worker_accept(struct pt_worker *w, int on)
{
	struct pt_cycle *c = w->cycle;

	if ((int)w->accepting == on)
		return;
	for (unsigned i = 0; i < c->nlisteners; i++) {
		struct pt_listener *ls = &c->listeners[i];
		if (ls->io.fd < 0)
			continue;
		if (on)
			pt_io_add_listener(&w->loop, &ls->io, ls->slot < 0);
		else
			pt_io_del(&w->loop, &ls->io);
	}
	w->accepting = on ? 1 : 0;
}

void
pt_worker_conn_done(struct pt_worker *w)
{
	if (!w->accepting && !w->quitting && w->nconns < w->max_conns &&
	    !pt_timer_armed(&w->accept_timer))
		pt_worker_accept(w, 1);
}

static void
worker_shutdown_expired(struct pt_timer *t)
{
	struct pt_worker *w = pt_container_of(t, struct pt_worker,
					      shutdown_timer);

	pt_log(PT_LOG_NOTICE, 0,
	       "worker_shutdown_timeout: closing %u connections", w->nconns);
	worker_exit(w, 0);
}

static void
worker_quit(struct pt_worker *w)
{
	struct pt_cycle *c = w->cycle;

	if (w->quitting)
		return;
	pt_log(PT_LOG_INFO, 0, "gracefully shutting down");
	pt_proc_set_title("portier: worker process is shutting down");
	/*
	 * Take what is already queued before letting go of the listeners:
	 * with EPOLLEXCLUSIVE the kernel may have woken only this worker for
	 * those connections (the QUIT came in the same batch), and the other
	 * workers would not hear of them before another connection arrives.
	 * They are served like any connection in flight.
	 */
	for (unsigned i = 0; i < c->nlisteners && w->accepting; i++)
		if (c->listeners[i].io.fd >= 0)
			pt_conn_accept(&c->listeners[i].io);
	w->quitting = 1;
	pt_worker_accept(w, 0);
	for (unsigned i = 0; i < c->nlisteners; i++) {
		if (c->listeners[i].io.fd >= 0) {
			close(c->listeners[i].io.fd);
			c->listeners[i].io.fd = -1;
		}
	}
	pt_conn_close_idle(w, UINT32_MAX);
	if (c->core->worker_shutdown_timeout > 0) {
		w->shutdown_timer.fn = worker_shutdown_expired;
		pt_timer_add(&w->loop, &w->shutdown_timer,
			     c->core->worker_shutdown_timeout);
	}
}

static void
worker_signal(struct pt_io *io)
{
	struct pt_worker *w = pt_container_of(io, struct pt_worker, sig);
	struct signalfd_siginfo si;

	while (read(io->fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGQUIT:
			worker_quit(w);
			break;
		case SIGTERM:
		case SIGINT:
			worker_exit(w, 0);
			break;
		case SIGUSR1:
			pt_cycle_reopen_errlog(w->cycle);
			for (unsigned i = 0; pt_modules[i] != NULL; i++)
				if (pt_modules[i]->reopen != NULL)
					pt_modules[i]->reopen(w->cycle);
			break;
		default:
			break;
		}
	}
	io->readable = 0;
}

static int
worker_signals(struct pt_worker *w)
{
	w->sig.fd = pt_proc_child_signals(w->master);
	if (w->sig.fd < 0)
		return PT_ERROR;
	w->sig.on_read = worker_signal;
	return pt_io_add(&w->loop, &w->sig);
}

static int
worker_limits(struct pt_cycle *c)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)c->core->worker_rlimit_nofile;

	if (want == 0)
		return PT_OK;
	rl.rlim_cur = rl.rlim_max = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		pt_log(PT_LOG_CRIT, errno, "setrlimit(RLIMIT_NOFILE, %llu)",
		       (unsigned long long)want);
		return PT_ERROR;
	}
	return PT_OK;
}

/* Counted into when the shared slots run out: nothing reads it. */
static struct pt_stats_slot worker_no_stats;

static int
worker_init(struct pt_worker *w)
{
	struct pt_cycle *c = w->cycle;

	if (worker_limits(c) != PT_OK)
		return PT_ERROR;
	if (c->core->switch_user &&
	    pt_proc_drop_privileges(c->core->uid, c->core->gid,
				    c->core->user) != PT_OK)
		return PT_ERROR;
	if (pt_loop_init(&w->loop, w->max_conns + 16) != PT_OK) {
		pt_log(PT_LOG_CRIT, errno, "event loop");
		return PT_ERROR;
	}
	if (worker_signals(w) != PT_OK) {
		pt_log(PT_LOG_CRIT, errno, "signalfd");
		return PT_ERROR;
	}
	for (unsigned i = 0; pt_modules[i] != NULL; i++)
		if (pt_modules[i]->init_worker != NULL &&
		    pt_modules[i]->init_worker(c) != PT_OK)
			return PT_ERROR;
	/* keep only this slot's reuseport sockets and the shared ones */
	for (unsigned i = 0; i < c->nlisteners; i++) {
		struct pt_listener *ls = &c->listeners[i];
		if (ls->slot >= 0 && ls->slot != w->slot && ls->io.fd >= 0) {
			close(ls->io.fd);
			ls->io.fd = -1;
		}
		ls->io.on_read = pt_conn_accept;
		ls->io.on_write = NULL;
	}
	w->stats = pt_stats_claim(c);
	if (w->stats == NULL)
		w->stats = &worker_no_stats;
	pt_worker_accept(w, 1);
	return PT_OK;
}

void
pt_worker_run(struct pt_cycle *cycle, int slot, pid_t master)
{
	static struct pt_worker w;
	char role[32];

	snprintf(role, sizeof(role), "worker %d", slot);
	pt_log_set_role(role);
	pt_proc_set_title("portier: worker process");
	w.cycle = cycle;
	w.slot = slot;
	w.master = master;
	w.max_conns = (unsigned)cycle->core->worker_connections;
	cycle->worker_ctx = &w;
	pt_time_update();
	if (worker_init(&w) != PT_OK)
		/* _exit: a worker that never started has nothing to flush,
		 * and exit handlers (a sanitizer's, say) may need the very
		 * descriptors whose lack stopped it */
		_exit(2);
	while (!(w.quitting && w.nconns == 0)) {
		if (pt_loop_once(&w.loop, -1) != PT_OK) {
			pt_log(PT_LOG_CRIT, errno, "epoll_wait() failed");
			worker_exit(&w, 1);
		}
	}
	worker_exit(&w, 0);
}
