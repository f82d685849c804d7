/*
 * test_event.c: unit tests of src/event.c: the timer heap, posted
 * callbacks and one real descriptor through epoll.
 *
 * The file under test is included (h2o style) so that the heap can be
 * checked directly after every operation, and with the clock replaced:
 * pt_loop_once() calls pt_time_update(), which here is t_time_update(), a
 * no-op, so the tests move pt_now.mono_ms by hand and nothing ever sleeps.
 * libportier.a's event.o is then not linked. Random deadlines come from a
 * fixed seed.
 */
#define pt_time_update t_time_update
#include "../../src/event.c"
#undef pt_time_update

#include <check.h>

#include "unit.h"
#include <fcntl.h>
#include <sys/eventfd.h>

void
t_time_update(void)
{
	/* the test owns the clock */
}

#define T_START 1000000 /* the clock at the start of every test */

static struct pt_loop t_loop;

static void
t_setup(void)
{
	t_rng = 0x13198A2E03707344ull;
	pt_now.mono_ms = T_START;
	/* a small heap, so that it grows during the tests */
	ck_assert_int_eq(pt_loop_init(&t_loop, 4), PT_OK);
}

static void
t_teardown(void)
{
	pt_loop_free(&t_loop);
	ck_assert_int_eq(t_loop.epfd, -1);
}

/* The heap invariants, checked after every operation. */
static void
t_heap_check(const struct pt_loop *l)
{
	T_CHECK(l->nheap <= l->heap_cap, "heap: %u > capacity %u", l->nheap,
		l->heap_cap);
	for (unsigned i = 0; i < l->nheap; i++) {
		T_CHECK(l->heap[i]->index == i + 1, "heap[%u] has index %u", i,
			l->heap[i]->index);
		if (i > 0)
			T_CHECK(l->heap[(i - 1) / 2]->deadline <=
					l->heap[i]->deadline,
				"heap[%u] (%lld) above its parent (%lld)", i,
				(long long)l->heap[i]->deadline,
				(long long)l->heap[(i - 1) / 2]->deadline);
	}
}

/* Step the clock by step ms and run the loop once. */
static void
t_step(int64_t step)
{
	pt_now.mono_ms += step;
	T_CHECK(pt_loop_once(&t_loop, 0) == PT_OK, "pt_loop_once failed");
	t_heap_check(&t_loop);
}

/* ---- timers ----------------------------------------------------------- */

#define T_N 1000

struct t_timer {
	struct pt_timer t;
	int id;
	int fired;
	int64_t deadline; /* expected */
	int64_t fired_at;
};

static struct t_timer t_timers[T_N];
static int t_order[T_N * 2];
static int t_nfired;

static void
t_fire(struct pt_timer *t)
{
	struct t_timer *tt = pt_container_of(t, struct t_timer, t);

	/* never early, never armed while running */
	T_CHECK(t->deadline <= pt_now.mono_ms, "timer %d early: %lld < %lld",
		tt->id, (long long)pt_now.mono_ms, (long long)t->deadline);
	T_CHECK(!pt_timer_armed(t), "timer %d armed in its callback", tt->id);
	tt->fired++;
	tt->fired_at = pt_now.mono_ms;
	t_order[t_nfired++] = tt->id;
}

static void
t_timers_init(int n)
{
	memset(t_timers, 0, sizeof(t_timers));
	t_nfired = 0;
	for (int i = 0; i < n; i++) {
		t_timers[i].id = i;
		t_timers[i].t.fn = t_fire;
	}
}

static void
t_arm(struct t_timer *tt, int64_t ms)
{
	T_CHECK(pt_timer_add(&t_loop, &tt->t, ms) == PT_OK, "timer_add");
	tt->deadline = pt_now.mono_ms + ms;
	T_CHECK(pt_timer_armed(&tt->t), "timer %d not armed", tt->id);
	T_CHECK(tt->t.deadline == tt->deadline, "timer %d: deadline %lld",
		tt->id, (long long)tt->t.deadline);
	t_heap_check(&t_loop);
}

/* Run the clock until no timer is left; check order and punctuality. */
static void
t_run_all(int64_t step)
{
	int64_t prev = INT64_MIN;
	int guard = 0;

	while (t_loop.nheap > 0) {
		int before = t_nfired;
		int64_t was = guard ? pt_now.mono_ms : INT64_MIN;
		t_step(step);
		/* what is left is all in the future */
		T_CHECK(t_loop.nheap == 0 ||
				t_loop.heap[0]->deadline > pt_now.mono_ms,
			"a due timer was left in the heap");
		/* what fired now was due, and after what fired before */
		for (int i = before; i < t_nfired; i++) {
			struct t_timer *tt = &t_timers[t_order[i]];
			T_CHECK(tt->deadline >= prev,
				"timer %d (%lld) fired after one due at %lld",
				tt->id, (long long)tt->deadline,
				(long long)prev);
			T_CHECK(tt->deadline > was,
				"timer %d (%lld) fired late, at %lld", tt->id,
				(long long)tt->deadline,
				(long long)pt_now.mono_ms);
			prev = tt->deadline;
		}
		T_CHECK(++guard < 10000000, "the timers never ran out");
	}
}

START_TEST(test_timers_fire_in_order)
{
	t_timers_init(T_N);
	for (int i = 0; i < T_N; i++)
		t_arm(&t_timers[i], (int64_t)(t_random() % 100000));
	ck_assert_uint_eq(t_loop.nheap, T_N);
	ck_assert_uint_ge(t_loop.heap_cap, T_N);
	t_run_all(37);
	ck_assert_int_eq(t_nfired, T_N);
	for (int i = 0; i < T_N; i++) {
		ck_assert_int_eq(t_timers[i].fired, 1);
		ck_assert_int_eq(t_timers[i].t.index, 0);
	}
}
END_TEST

/* Equal deadlines, zero and negative delays (already due). */
START_TEST(test_timers_due_now)
{
	t_timers_init(50);
	for (int i = 0; i < 50; i++)
		t_arm(&t_timers[i], i % 3 == 0 ? 0 : i % 3 == 1 ? -5 : 10);
	t_step(0);
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(t_timers[i].fired, i % 3 != 2);
	t_step(9);
	ck_assert_int_eq(t_nfired, 34);
	t_step(1);
	ck_assert_int_eq(t_nfired, 50);
	/* -5 ones first, then the 0 ones */
	for (int i = 0; i < 17; i++)
		ck_assert_int_eq(t_order[i] % 3, 1);
}
END_TEST

START_TEST(test_timers_rearm)
{
	t_timers_init(T_N);
	for (int i = 0; i < T_N; i++)
		t_arm(&t_timers[i], (int64_t)(t_random() % 100000));
	/* move each armed timer a few times, earlier or later */
	for (int k = 0; k < 5 * T_N; k++) {
		struct t_timer *tt = &t_timers[t_random() % T_N];
		int64_t old = tt->deadline, ms;

		ms = k % 2 ? (int64_t)(t_random() % 100000)
			   : old - pt_now.mono_ms - (int64_t)(t_random() % 50);
		t_arm(tt, ms);
		T_CHECK(t_loop.nheap == T_N, "heap size %u", t_loop.nheap);
	}
	/* same deadline again: still one entry */
	t_arm(&t_timers[0], t_timers[0].deadline - pt_now.mono_ms);
	ck_assert_uint_eq(t_loop.nheap, T_N);
	t_run_all(53);
	ck_assert_int_eq(t_nfired, T_N);
	for (int i = 0; i < T_N; i++)
		ck_assert_int_eq(t_timers[i].fired, 1);
}
END_TEST

/* Re-arming the root later and a leaf earlier, explicitly. */
START_TEST(test_timers_rearm_root_leaf)
{
	t_timers_init(7);
	for (int i = 0; i < 7; i++)
		t_arm(&t_timers[i], 10 * (i + 1));
	ck_assert_ptr_eq(t_loop.heap[0], &t_timers[0].t);
	t_arm(&t_timers[0], 1000); /* root goes to the bottom */
	ck_assert_ptr_eq(t_loop.heap[0], &t_timers[1].t);
	t_arm(&t_timers[6], 1); /* a leaf goes to the top */
	ck_assert_ptr_eq(t_loop.heap[0], &t_timers[6].t);
	t_run_all(1);
	ck_assert_int_eq(t_order[0], 6);
	ck_assert_int_eq(t_order[6], 0);
	for (int i = 1; i < 6; i++)
		ck_assert_int_eq(t_order[i], i);
}
END_TEST

START_TEST(test_timers_delete)
{
	int deleted[T_N] = { 0 }, ndeleted = 0;

	t_timers_init(T_N);
	for (int i = 0; i < T_N; i++)
		t_arm(&t_timers[i], (int64_t)(t_random() % 100000));
	/* delete a third, from anywhere in the heap */
	for (int k = 0; k < T_N / 3; k++) {
		int i = (int)(t_random() % T_N);
		pt_timer_del(&t_loop, &t_timers[i].t);
		ck_assert(!pt_timer_armed(&t_timers[i].t));
		t_heap_check(&t_loop);
		ndeleted += !deleted[i];
		deleted[i] = 1;
		ck_assert_uint_eq(t_loop.nheap, (unsigned)(T_N - ndeleted));
	}
	/* deleting the last slot, the root, and an unarmed timer */
	pt_timer_del(&t_loop, t_loop.heap[t_loop.nheap - 1]);
	t_heap_check(&t_loop);
	pt_timer_del(&t_loop, t_loop.heap[0]);
	t_heap_check(&t_loop);
	for (int i = 0; i < T_N; i++)
		if (!pt_timer_armed(&t_timers[i].t) && !deleted[i]) {
			deleted[i] = 1;
			ndeleted++;
		}
	ck_assert_uint_eq(t_loop.nheap, (unsigned)(T_N - ndeleted));
	t_run_all(41);
	for (int i = 0; i < T_N; i++)
		ck_assert_int_eq(t_timers[i].fired, !deleted[i]);
	ck_assert_int_eq(t_nfired, T_N - ndeleted);
}
END_TEST

/* A deleted timer whose deadline has passed never fires. */
START_TEST(test_timers_delete_due)
{
	t_timers_init(3);
	t_arm(&t_timers[0], 5);
	t_arm(&t_timers[1], 5);
	t_arm(&t_timers[2], 5);
	pt_now.mono_ms += 10;
	pt_timer_del(&t_loop, &t_timers[1].t);
	t_step(0);
	ck_assert_int_eq(t_timers[0].fired, 1);
	ck_assert_int_eq(t_timers[1].fired, 0);
	ck_assert_int_eq(t_timers[2].fired, 1);
}
END_TEST

/* ---- timers from inside a timer callback -------------------------------- */

static struct t_timer *t_cb_other;
static int64_t t_cb_delay;
static int t_periodic_left;

/* Arms t_cb_other with t_cb_delay, then records itself. */
static void
t_fire_and_arm(struct pt_timer *t)
{
	ck_assert_int_eq(pt_timer_add(&t_loop, &t_cb_other->t, t_cb_delay),
			 PT_OK);
	t_cb_other->deadline = pt_now.mono_ms + t_cb_delay;
	t_heap_check(&t_loop);
	t_fire(t);
}

/* Deletes t_cb_other (also due), then records itself. */
static void
t_fire_and_delete(struct pt_timer *t)
{
	pt_timer_del(&t_loop, &t_cb_other->t);
	t_heap_check(&t_loop);
	t_fire(t);
}

static void
t_fire_periodic(struct pt_timer *t)
{
	t_fire(t);
	if (--t_periodic_left > 0) {
		ck_assert_int_eq(pt_timer_add(&t_loop, t, 100), PT_OK);
		pt_container_of(t, struct t_timer, t)->deadline =
			pt_now.mono_ms + 100;
	}
}

START_TEST(test_timers_from_callback)
{
	t_timers_init(4);
	/* a timer armed in the future from a callback fires later */
	t_timers[0].t.fn = t_fire_and_arm;
	t_cb_other = &t_timers[1];
	t_cb_delay = 50;
	t_arm(&t_timers[0], 10);
	t_step(10);
	ck_assert_int_eq(t_timers[0].fired, 1);
	ck_assert_int_eq(t_timers[1].fired, 0);
	t_step(49);
	ck_assert_int_eq(t_timers[1].fired, 0);
	t_step(1);
	ck_assert_int_eq(t_timers[1].fired, 1);
	ck_assert_int_eq(t_timers[1].fired_at, T_START + 60);

	/* one already due when armed fires in the same pass, after it */
	t_timers[0].t.fn = t_fire_and_arm;
	t_cb_other = &t_timers[2];
	t_cb_delay = 0;
	t_arm(&t_timers[0], 5);
	t_step(5);
	ck_assert_int_eq(t_timers[2].fired, 1);
	ck_assert_int_eq(t_order[t_nfired - 1], 2);

	/* re-arming an armed, not yet due timer from a callback */
	t_timers[0].t.fn = t_fire_and_arm;
	t_cb_other = &t_timers[3];
	t_cb_delay = 500;
	t_arm(&t_timers[3], 20);
	t_arm(&t_timers[0], 10);
	t_step(30);
	ck_assert_int_eq(t_timers[3].fired, 0);
	t_step(499);
	ck_assert_int_eq(t_timers[3].fired, 0);
	t_step(1);
	ck_assert_int_eq(t_timers[3].fired, 1);
}
END_TEST

START_TEST(test_timers_delete_from_callback)
{
	t_timers_init(2);
	t_timers[0].t.fn = t_fire_and_delete;
	t_cb_other = &t_timers[1];
	t_arm(&t_timers[0], 10);
	t_arm(&t_timers[1], 10);
	t_step(20);
	ck_assert_int_eq(t_timers[0].fired, 1);
	ck_assert_int_eq(t_timers[1].fired, 0);
	ck_assert_uint_eq(t_loop.nheap, 0);
}
END_TEST

START_TEST(test_timers_periodic)
{
	t_timers_init(1);
	t_timers[0].t.fn = t_fire_periodic;
	t_periodic_left = 5;
	t_arm(&t_timers[0], 100);
	for (int i = 1; i <= 10; i++) {
		t_step(50);
		ck_assert_int_eq(t_timers[0].fired, PT_MIN(i / 2, 5));
	}
	ck_assert(!pt_timer_armed(&t_timers[0].t));
	ck_assert_int_eq(t_timers[0].fired_at, T_START + 500);
}
END_TEST

/* ---- posted callbacks ---------------------------------------------------- */

struct t_post {
	struct pt_posted p;
	char name;
	int runs;
};

static char t_trace[256];
static size_t t_ntrace;
static struct t_post *t_victim, *t_repost;

static void
t_posted_fn(struct pt_posted *p)
{
	struct t_post *tp = pt_container_of(p, struct t_post, p);

	ck_assert(!p->queued);
	tp->runs++;
	t_trace[t_ntrace++] = tp->name;
	t_trace[t_ntrace] = '\0';
}

static void
t_posted_self(struct pt_posted *p)
{
	t_posted_fn(p);
	pt_post(&t_loop, p);
	ck_assert(p->queued);
}

static void
t_posted_cancel_victim(struct pt_posted *p)
{
	t_posted_fn(p);
	pt_post_cancel(&t_loop, &t_victim->p);
	ck_assert(!t_victim->p.queued);
}

static void
t_posted_cancel_repost(struct pt_posted *p)
{
	t_posted_fn(p);
	pt_post_cancel(&t_loop, &t_victim->p);
	pt_post(&t_loop, &t_victim->p);
	if (t_repost != NULL)
		pt_post(&t_loop, &t_repost->p);
}

static void
t_posts_init(struct t_post *tp, size_t n, const char *names)
{
	memset(tp, 0, n * sizeof(*tp));
	t_ntrace = 0;
	t_trace[0] = '\0';
	t_victim = t_repost = NULL;
	for (size_t i = 0; i < n; i++) {
		tp[i].name = names[i];
		tp[i].p.fn = t_posted_fn;
	}
}

/* The posted list is consistent: tail, flags, no cycle. */
static void
t_posted_check(void)
{
	struct pt_posted **pp = &t_loop.posted;
	unsigned n = 0;

	while (*pp != NULL) {
		ck_assert((*pp)->queued);
		pp = &(*pp)->next;
		ck_assert_uint_lt(++n, 1000);
	}
	ck_assert_ptr_eq(t_loop.posted_tail, pp);
}

START_TEST(test_post_once_fifo)
{
	struct t_post tp[3];

	t_posts_init(tp, 3, "abc");
	pt_post(&t_loop, &tp[0].p);
	pt_post(&t_loop, &tp[1].p);
	pt_post(&t_loop, &tp[0].p); /* already queued: no effect */
	pt_post(&t_loop, &tp[2].p);
	pt_post(&t_loop, &tp[1].p);
	t_posted_check();
	t_step(0);
	ck_assert_str_eq(t_trace, "abc");
	ck_assert_ptr_null(t_loop.posted);
	t_posted_check();
	t_step(0);
	ck_assert_str_eq(t_trace, "abc");
	/* posted again after running: runs again */
	pt_post(&t_loop, &tp[1].p);
	t_step(0);
	ck_assert_str_eq(t_trace, "abcb");
}
END_TEST

START_TEST(test_post_cancel)
{
	struct t_post tp[4];

	t_posts_init(tp, 4, "abcd");
	/* not queued: nothing happens */
	pt_post_cancel(&t_loop, &tp[0].p);
	t_posted_check();
	/* cancel the head, the middle and the tail */
	for (int i = 0; i < 4; i++)
		pt_post(&t_loop, &tp[i].p);
	pt_post_cancel(&t_loop, &tp[0].p);
	t_posted_check();
	pt_post_cancel(&t_loop, &tp[2].p);
	t_posted_check();
	pt_post_cancel(&t_loop, &tp[3].p);
	t_posted_check();
	/* the tail moved back: a new post goes after b */
	pt_post(&t_loop, &tp[0].p);
	t_posted_check();
	t_step(0);
	ck_assert_str_eq(t_trace, "ba");
	/* cancel everything */
	pt_post(&t_loop, &tp[3].p);
	pt_post_cancel(&t_loop, &tp[3].p);
	t_posted_check();
	ck_assert_ptr_null(t_loop.posted);
	t_step(0);
	ck_assert_str_eq(t_trace, "ba");
}
END_TEST

/* A callback that re-posts itself runs once per round, not in a loop. */
START_TEST(test_post_self_next_round)
{
	struct t_post tp[2];

	t_posts_init(tp, 2, "sx");
	tp[0].p.fn = t_posted_self;
	pt_post(&t_loop, &tp[0].p);
	pt_post(&t_loop, &tp[1].p);
	t_step(0);
	ck_assert_int_eq(tp[0].runs, 1);
	ck_assert_str_eq(t_trace, "sx");
	ck_assert(tp[0].p.queued);
	t_posted_check();
	t_step(0);
	t_step(0);
	ck_assert_int_eq(tp[0].runs, 3);
	ck_assert_str_eq(t_trace, "sxss");
	pt_post_cancel(&t_loop, &tp[0].p);
	t_step(0);
	ck_assert_int_eq(tp[0].runs, 3);
}
END_TEST

/* A callback cancels one that comes later in the same round. */
START_TEST(test_post_cancel_within_round)
{
	struct t_post tp[3];

	t_posts_init(tp, 3, "abc");
	tp[0].p.fn = t_posted_cancel_victim;
	t_victim = &tp[1];
	pt_post(&t_loop, &tp[0].p);
	pt_post(&t_loop, &tp[1].p);
	pt_post(&t_loop, &tp[2].p);
	t_step(0);
	ck_assert_str_eq(t_trace, "ac");
	ck_assert_int_eq(tp[1].runs, 0);
	t_posted_check();
}
END_TEST

/*
 * A callback cancels and re-posts one later in the round: it moves to the
 * next round, and nothing else of this round is lost.
 */
START_TEST(test_post_cancel_repost_within_round)
{
	struct t_post tp[4];

	t_posts_init(tp, 4, "abcd");
	tp[0].p.fn = t_posted_cancel_repost;
	t_victim = &tp[1];
	for (int i = 0; i < 4; i++)
		pt_post(&t_loop, &tp[i].p);
	t_step(0);
	ck_assert_str_eq(t_trace, "acd");
	ck_assert(tp[1].p.queued);
	t_posted_check();
	t_step(0);
	ck_assert_str_eq(t_trace, "acdb");
	for (int i = 0; i < 4; i++)
		ck_assert(!tp[i].p.queued);
	t_posted_check();
}
END_TEST

/* Posting from a timer callback runs in the same pt_loop_once(). */
static struct t_post *t_from_timer;

static void
t_timer_posts(struct pt_timer *t)
{
	(void)t;
	pt_post(&t_loop, &t_from_timer->p);
}

START_TEST(test_post_from_timer)
{
	struct t_post tp[1];
	struct pt_timer t = { 0, 0, t_timer_posts };

	t_posts_init(tp, 1, "t");
	t_from_timer = &tp[0];
	ck_assert_int_eq(pt_timer_add(&t_loop, &t, 10), PT_OK);
	t_step(9);
	ck_assert_str_eq(t_trace, "");
	t_step(1);
	ck_assert_str_eq(t_trace, "t");
}
END_TEST

/* ---- a real descriptor ------------------------------------------------- */

struct t_io {
	struct pt_io io;
	int reads, writes;
	uint64_t got;
};

static void
t_on_read(struct pt_io *io)
{
	struct t_io *ti = pt_container_of(io, struct t_io, io);
	uint64_t v;

	ti->reads++;
	/* edge-triggered: read until EAGAIN, then clear the flag */
	while (read(io->fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		ti->got += v;
	ck_assert_int_eq(errno, EAGAIN);
	io->readable = 0;
}

static void
t_on_write(struct pt_io *io)
{
	struct t_io *ti = pt_container_of(io, struct t_io, io);

	ti->writes++;
}

START_TEST(test_io_eventfd)
{
	struct t_io ti;
	uint64_t one = 1;

	memset(&ti, 0, sizeof(ti));
	ti.io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ck_assert_int_ge(ti.io.fd, 0);
	ti.io.on_read = t_on_read;
	ti.io.on_write = t_on_write;
	ck_assert_int_eq(pt_io_add(&t_loop, &ti.io), PT_OK);
	/* registering reports the initial state: writable, not readable */
	ck_assert_int_eq(pt_loop_once(&t_loop, 0), PT_OK);
	ck_assert_int_eq(ti.writes, 1);
	ck_assert_int_eq(ti.reads, 0);
	/* nothing new: no event (edge-triggered) */
	ck_assert_int_eq(pt_loop_once(&t_loop, 0), PT_OK);
	ck_assert_int_eq(ti.reads + ti.writes, 1);
	/* ready before the call: epoll_wait returns at once, even with a
	 * long maximum wait */
	ck_assert_int_eq(write(ti.io.fd, &one, sizeof(one)), sizeof(one));
	ck_assert_int_eq(write(ti.io.fd, &one, sizeof(one)), sizeof(one));
	ck_assert_int_eq(pt_loop_once(&t_loop, 60000), PT_OK);
	ck_assert_int_eq(ti.reads, 1);
	ck_assert_uint_eq(ti.got, 2);
	ck_assert(!ti.io.hup);
	/* closed by its owner while an event is pending: ignored */
	ck_assert_int_eq(write(ti.io.fd, &one, sizeof(one)), sizeof(one));
	ti.io.closed = 1;
	ck_assert_int_eq(pt_loop_once(&t_loop, 0), PT_OK);
	ck_assert_int_eq(ti.reads, 1);
	ti.io.closed = 0;
	/* removed: no more events */
	ck_assert_int_eq(pt_io_del(&t_loop, &ti.io), PT_OK);
	ck_assert_int_eq(write(ti.io.fd, &one, sizeof(one)), sizeof(one));
	ck_assert_int_eq(pt_loop_once(&t_loop, 0), PT_OK);
	ck_assert_int_eq(ti.reads, 1);
	ck_assert_int_eq(pt_io_del(&t_loop, &ti.io), PT_ERROR);
	close(ti.io.fd);
}
END_TEST

static void
t_on_read_pipe(struct pt_io *io)
{
	struct t_io *ti = pt_container_of(io, struct t_io, io);
	char buf[64];
	ssize_t n;

	ti->reads++;
	while ((n = read(io->fd, buf, sizeof(buf))) > 0)
		ti->got += (uint64_t)n;
	io->readable = 0;
}

START_TEST(test_io_pipe_hup)
{
	struct t_io ti;
	int fds[2];

	memset(&ti, 0, sizeof(ti));
	ck_assert_int_eq(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	ti.io.fd = fds[0];
	ti.io.on_read = t_on_read_pipe;
	ck_assert_int_eq(pt_io_add(&t_loop, &ti.io), PT_OK);
	ck_assert_int_eq(pt_loop_once(&t_loop, 0), PT_OK);
	ck_assert_int_eq(ti.reads, 0);
	ck_assert_int_eq(write(fds[1], "hello", 5), 5);
	ck_assert_int_eq(pt_loop_once(&t_loop, 0), PT_OK);
	ck_assert_int_eq(ti.reads, 1);
	ck_assert_uint_eq(ti.got, 5);
	ck_assert(!ti.io.hup);
	/* the writer goes away: the reader hears of it */
	close(fds[1]);
	ck_assert_int_eq(pt_loop_once(&t_loop, 0), PT_OK);
	ck_assert_int_eq(ti.reads, 2);
	ck_assert(ti.io.hup);
	ck_assert(!ti.io.error);
	close(fds[0]);
}
END_TEST

/* The order inside one pt_loop_once(): I/O, then timers, then posted. */
static char t_seq[8];
static size_t t_nseq;
static struct pt_posted t_seq_post;
static struct pt_timer t_seq_timer;

static void
t_seq_read(struct pt_io *io)
{
	uint64_t v;

	while (read(io->fd, &v, sizeof(v)) > 0)
		;
	io->readable = 0;
	t_seq[t_nseq++] = 'i';
	/* posted from I/O: runs after the timers of this same round */
	pt_post(&t_loop, &t_seq_post);
}

static void
t_seq_timer_fn(struct pt_timer *t)
{
	(void)t;
	t_seq[t_nseq++] = 't';
}

static void
t_seq_post_fn(struct pt_posted *p)
{
	(void)p;
	t_seq[t_nseq++] = 'p';
}

START_TEST(test_loop_order)
{
	struct pt_io io;
	uint64_t one = 1;

	memset(&io, 0, sizeof(io));
	memset(t_seq, 0, sizeof(t_seq));
	t_nseq = 0;
	io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	io.on_read = t_seq_read;
	t_seq_post.fn = t_seq_post_fn;
	t_seq_timer.fn = t_seq_timer_fn;
	ck_assert_int_eq(pt_io_add(&t_loop, &io), PT_OK);
	ck_assert_int_eq(pt_timer_add(&t_loop, &t_seq_timer, 0), PT_OK);
	ck_assert_int_eq(write(io.fd, &one, sizeof(one)), sizeof(one));
	ck_assert_int_eq(pt_loop_once(&t_loop, 0), PT_OK);
	ck_assert_str_eq(t_seq, "itp");
	close(io.fd);
}
END_TEST

static Suite *
t_suite(void)
{
	Suite *s = suite_create("event");
	TCase *tc = tcase_create("all");

	tcase_add_checked_fixture(tc, t_setup, t_teardown);
	tcase_add_test(tc, test_timers_fire_in_order);
	tcase_add_test(tc, test_timers_due_now);
	tcase_add_test(tc, test_timers_rearm);
	tcase_add_test(tc, test_timers_rearm_root_leaf);
	tcase_add_test(tc, test_timers_delete);
	tcase_add_test(tc, test_timers_delete_due);
	tcase_add_test(tc, test_timers_from_callback);
	tcase_add_test(tc, test_timers_delete_from_callback);
	tcase_add_test(tc, test_timers_periodic);
	tcase_add_test(tc, test_post_once_fifo);
	tcase_add_test(tc, test_post_cancel);
	tcase_add_test(tc, test_post_self_next_round);
	tcase_add_test(tc, test_post_cancel_within_round);
	tcase_add_test(tc, test_post_cancel_repost_within_round);
	tcase_add_test(tc, test_post_from_timer);
	tcase_add_test(tc, test_io_eventfd);
	tcase_add_test(tc, test_io_pipe_hup);
	tcase_add_test(tc, test_loop_order);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return pt_unit_run(t_suite());
}
