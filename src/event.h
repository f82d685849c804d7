/*
 * event.h: one event loop per process: epoll in edge-triggered mode, a
 * binary min-heap of timers and a queue of posted callbacks.
 *
 * An I/O source (struct pt_io) is registered once for both directions.
 * Edge-triggered epoll reports a change of readiness; the loop records it in
 * io->readable / io->writable and calls the handler. Handlers clear the flag
 * when read/write meets EAGAIN, and must keep working until then or keep the
 * flag set (the loop does not report a level again).
 *
 * Timers and posted callbacks are embedded in their owner; nothing here
 * allocates after pt_loop_init().
 */
#ifndef PT_EVENT_H
#define PT_EVENT_H

#include "core.h"

struct pt_loop;
struct pt_io;
struct pt_timer;
struct pt_posted;

typedef void (*pt_io_fn)(struct pt_io *io);
typedef void (*pt_timer_fn)(struct pt_timer *t);
typedef void (*pt_posted_fn)(struct pt_posted *p);

struct pt_io {
	int fd;
	unsigned readable : 1;
	unsigned writable : 1;
	unsigned hup : 1;    /* peer closed its side (EPOLLRDHUP/EPOLLHUP) */
	unsigned error : 1;  /* EPOLLERR */
	unsigned closed : 1; /* fd closed: ignore stale events for it */
	pt_io_fn on_read;
	pt_io_fn on_write;
};

struct pt_timer {
	int64_t deadline; /* monotonic ms */
	unsigned index;   /* position in the heap + 1; 0 = not armed */
	pt_timer_fn fn;
};

struct pt_posted {
	struct pt_posted *next;
	unsigned queued : 1;
	pt_posted_fn fn;
};

struct pt_loop {
	int epfd;
	struct pt_timer **heap;
	unsigned nheap, heap_cap;
	struct pt_posted *posted, **posted_tail;
};

int pt_loop_init(struct pt_loop *l, unsigned max_timers);
void pt_loop_free(struct pt_loop *l);

/* Register io->fd for edge-triggered read and write readiness. */
int pt_io_add(struct pt_loop *l, struct pt_io *io);
/* Register a listening socket (level-triggered, optionally exclusive). */
int pt_io_add_listener(struct pt_loop *l, struct pt_io *io, int exclusive);
/* Stop watching io->fd (closing the fd does it too). */
int pt_io_del(struct pt_loop *l, struct pt_io *io);

/* Arm (or re-arm) t to fire after ms milliseconds. PT_OK or PT_ERROR. */
int pt_timer_add(struct pt_loop *l, struct pt_timer *t, int64_t ms);
/* Disarm t; a timer that is not armed is left alone. */
void pt_timer_del(struct pt_loop *l, struct pt_timer *t);
#define pt_timer_armed(t) ((t)->index != 0)

/* Run p->fn after the current batch of events (once, however often
 * posted). */
void pt_post(struct pt_loop *l, struct pt_posted *p);
/* Take p out of the queue, also during the round that runs it. */
void pt_post_cancel(struct pt_loop *l, struct pt_posted *p);

/*
 * Wait for events for at most max_wait ms (-1: until the next timer),
 * dispatch them, then expired timers, then posted callbacks. Returns PT_OK
 * or PT_ERROR (epoll failed for a reason other than EINTR).
 */
int pt_loop_once(struct pt_loop *l, int64_t max_wait);

#endif
