/*
 * worker.h: a worker process: one event loop, its connections, and the
 * graceful exit. Only worker.c and conn.c touch struct pt_worker.
 */
#ifndef PT_WORKER_H
#define PT_WORKER_H

#include "core.h"
#include "event.h"

#include <sys/types.h>

struct pt_cycle;
struct pt_conn;

struct pt_worker {
	struct pt_cycle *cycle;
	struct pt_loop loop;
	int slot;
	pid_t master;        /* the parent: its death makes us quit */
	unsigned nconns;     /* open client connections */
	unsigned max_conns;  /* worker_connections */
	struct pt_conn *free_conns;
	struct pt_conn *idle_head, *idle_tail; /* keep-alive, oldest first */
	struct pt_conn *dead;   /* closed in this batch, freed after it */
	struct pt_posted reap;
	struct pt_io sig;       /* signalfd */
	struct pt_timer shutdown_timer;
	struct pt_timer accept_timer; /* resume after EMFILE */
	uint64_t conn_number;
	struct pt_stats_slot *stats; /* this process's counters */
	unsigned quitting : 1;  /* graceful: finish what is in flight */
	unsigned accepting : 1; /* listeners are in epoll */
	unsigned log_flush_due : 1;
};

/* Run a worker for slot in the child that master forked; never returns. */
PT_NORETURN void pt_worker_run(struct pt_cycle *cycle, int slot,
			       pid_t master);

/* ---- connections (conn.c) ---------------------------------------------- */

/* The listener's read handler: accept what is pending. */
void pt_conn_accept(struct pt_io *io);
/* Close now; the memory is reused after the current event batch. The
 * protocol's state (c->req, its pool) is the caller's to free first. */
void pt_conn_close(struct pt_conn *c);
/* Move c to or from the idle list (keep-alive with no buffer). */
void pt_conn_set_idle(struct pt_conn *c, int idle);
/* Close idle keep-alive connections (graceful exit, out of conns). */
void pt_conn_close_idle(struct pt_worker *w, unsigned max);
/* Stop or resume accepting on every listener of the worker. */
void pt_worker_accept(struct pt_worker *w, int on);
/* A connection closed: resume accepting if the bound had stopped it. */
void pt_worker_conn_done(struct pt_worker *w);

#endif
