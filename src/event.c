/*
 * event.c: the epoll loop, the timer heap and posted callbacks.
 *
 * Invariants: heap[i]->index == i + 1 for every armed timer; a timer's
 * deadline never changes while it is in the heap except through
 * pt_timer_add(), which re-sifts it.
 *
 * Stale events: an owner may close its fd while events for it wait in the
 * current batch. Owners set io->closed and free the memory only after the
 * batch (through a posted callback), so a stale pointer is never reused
 * inside one batch.
 */
#include "core.h"
#include "event.h"
#include "log.h"
#include "ptime.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#define LOOP_EVENTS 512

int
pt_loop_init(struct pt_loop *l, unsigned max_timers)
{
	memset(l, 0, sizeof(*l));
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		return PT_ERROR;
	l->heap_cap = max_timers ? max_timers : 64;
	l->heap = calloc(l->heap_cap, sizeof(*l->heap));
	if (l->heap == NULL) {
		close(l->epfd);
		return PT_ERROR;
	}
	l->posted_tail = &l->posted;
	return PT_OK;
}

void
pt_loop_free(struct pt_loop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	free(l->heap);
	memset(l, 0, sizeof(*l));
	l->epfd = -1;
}

int
pt_io_add(struct pt_loop *l, struct pt_io *io)
{
	struct epoll_event ev;

	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.ptr = io;
	io->closed = 0;
	return epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev) == 0 ? PT_OK
								   : PT_ERROR;
}

int
pt_io_add_listener(struct pt_loop *l, struct pt_io *io, int exclusive)
{
	struct epoll_event ev;

	ev.events = EPOLLIN;
#ifdef EPOLLEXCLUSIVE
	if (exclusive)
		ev.events |= EPOLLEXCLUSIVE;
#else
	(void)exclusive;
#endif
	ev.data.ptr = io;
	io->closed = 0;
	return epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev) == 0 ? PT_OK
								   : PT_ERROR;
}

int
pt_io_del(struct pt_loop *l, struct pt_io *io)
{
	return epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL) == 0 ? PT_OK
								    : PT_ERROR;
}

/* ---- timers: binary min-heap on deadline ------------------------------ */

static void
heap_set(struct pt_loop *l, unsigned i, struct pt_timer *t)
{
	l->heap[i] = t;
	t->index = i + 1;
}

static void
heap_up(struct pt_loop *l, unsigned i)
{
	struct pt_timer *t = l->heap[i];

	while (i > 0) {
		unsigned parent = (i - 1) / 2;
		if (l->heap[parent]->deadline <= t->deadline)
			break;
		heap_set(l, i, l->heap[parent]);
		i = parent;
	}
	heap_set(l, i, t);
}

static void
heap_down(struct pt_loop *l, unsigned i)
{
	struct pt_timer *t = l->heap[i];

	for (;;) {
		unsigned c = 2 * i + 1;
		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap &&
		    l->heap[c + 1]->deadline < l->heap[c]->deadline)
			c++;
		if (t->deadline <= l->heap[c]->deadline)
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, t);
}

int
pt_timer_add(struct pt_loop *l, struct pt_timer *t, int64_t ms)
{
	/* saturate: a huge timeout means "never", not a past deadline */
	int64_t deadline = ms > INT64_MAX - pt_now.mono_ms ? INT64_MAX
							    : pt_now.mono_ms + ms;

	if (t->index != 0) {
		unsigned i = t->index - 1;
		int64_t old = t->deadline;
		t->deadline = deadline;
		if (deadline < old)
			heap_up(l, i);
		else
			heap_down(l, i);
		return PT_OK;
	}
	if (l->nheap == l->heap_cap) {
		unsigned cap = l->heap_cap * 2;
		struct pt_timer **h = realloc(l->heap, cap * sizeof(*h));
		if (h == NULL)
			return PT_ERROR;
		l->heap = h;
		l->heap_cap = cap;
	}
	t->deadline = deadline;
	heap_set(l, l->nheap++, t);
	heap_up(l, l->nheap - 1);
	return PT_OK;
}

void
pt_timer_del(struct pt_loop *l, struct pt_timer *t)
{
	unsigned i;
	struct pt_timer *last;

	if (t->index == 0)
		return;
	i = t->index - 1;
	t->index = 0;
	last = l->heap[--l->nheap];
	if (i == l->nheap)
		return;
	heap_set(l, i, last);
	if (i > 0 && l->heap[(i - 1) / 2]->deadline > last->deadline)
		heap_up(l, i);
	else
		heap_down(l, i);
}

static void
loop_expire(struct pt_loop *l)
{
	while (l->nheap > 0 && l->heap[0]->deadline <= pt_now.mono_ms) {
		struct pt_timer *t = l->heap[0];
		pt_timer_del(l, t);
		t->fn(t);
	}
}

/* ---- posted callbacks -------------------------------------------------- */

void
pt_post(struct pt_loop *l, struct pt_posted *p)
{
	if (p->queued)
		return;
	p->queued = 1;
	p->next = NULL;
	*l->posted_tail = p;
	l->posted_tail = &p->next;
}

void
pt_post_cancel(struct pt_loop *l, struct pt_posted *p)
{
	struct pt_posted **pp;

	if (!p->queued)
		return;
	for (pp = &l->posted; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			if (l->posted_tail == &p->next)
				l->posted_tail = pp;
			break;
		}
	}
	p->queued = 0;
}

static void
loop_run_posted(struct pt_loop *l)
{
	/*
	 * Callbacks posted while running wait for the next round, so a
	 * callback that re-posts itself can not starve the loop: a marker
	 * closes this round's batch. The batch stays on l->posted while it
	 * runs, so a callback may still cancel (or cancel and re-post) one
	 * that comes after it in the batch.
	 */
	struct pt_posted mark = { NULL, 0, NULL }, *p;

	if (l->posted == NULL)
		return;
	pt_post(l, &mark);
	while ((p = l->posted) != &mark) {
		l->posted = p->next; /* never NULL: the marker follows */
		p->queued = 0;
		p->fn(p);
	}
	l->posted = mark.next;
	if (l->posted_tail == &mark.next)
		l->posted_tail = &l->posted;
}

/* ---- the loop ---------------------------------------------------------- */

static void
loop_dispatch(struct epoll_event *ev)
{
	struct pt_io *io = ev->data.ptr;
	uint32_t e = ev->events;

	if (io->closed)
		return;
	if (e & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
		io->hup = 1;
		if (e & EPOLLERR)
			io->error = 1;
		/* let the handlers see the condition through read/write */
		e |= EPOLLIN | EPOLLOUT;
	}
	/* both flags first: a read handler may answer at once */
	if (e & EPOLLIN)
		io->readable = 1;
	if (e & EPOLLOUT)
		io->writable = 1;
	if ((e & EPOLLIN) && io->on_read != NULL)
		io->on_read(io);
	if ((e & EPOLLOUT) && !io->closed && io->on_write != NULL)
		io->on_write(io);
}

int
pt_loop_once(struct pt_loop *l, int64_t max_wait)
{
	struct epoll_event events[LOOP_EVENTS];
	int64_t wait = max_wait;
	int n;

	if (l->posted != NULL)
		wait = 0;
	else if (l->nheap > 0) {
		int64_t t = l->heap[0]->deadline - pt_now.mono_ms;
		if (t < 0)
			t = 0;
		if (wait < 0 || t < wait)
			wait = t;
	}
	if (wait > 86400000)
		wait = 86400000;
	n = epoll_wait(l->epfd, events, LOOP_EVENTS, (int)wait);
	pt_time_update();
	if (n < 0) {
		if (errno != EINTR)
			return PT_ERROR;
		n = 0;
	}
	for (int i = 0; i < n; i++)
		loop_dispatch(&events[i]);
	loop_expire(l);
	loop_run_posted(l);
	return PT_OK;
}
