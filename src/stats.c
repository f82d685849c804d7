/*
 * stats.c: the server-wide counters (stats.h) and their zone.
 *
 * Slots are claimed with a compare-and-swap on pid, so workers of two
 * generations (a reload in progress) never share one. The master is the
 * only writer of the retired totals and of a slot's release.
 */
#include "core.h"
#include "conf.h"
#include "cycle.h"
#include "log.h"
#include "shm.h"
#include "stats.h"

#include <unistd.h>

static int
stats_zone_init(struct pt_shm_zone *z, void *data, int reused)
{
	struct pt_cycle *c = data;
	struct pt_stats *st;

	if (reused) {
		c->stats = *pt_shm_user(z);
		return c->stats != NULL ? PT_OK : PT_ERROR;
	}
	st = pt_shm_calloc(z, sizeof(*st));
	if (st == NULL) {
		pt_log(PT_LOG_CRIT, 0, "zone \"%s\" too small for counters",
		       z->name);
		return PT_ERROR;
	}
	*pt_shm_user(z) = st;
	c->stats = st;
	return PT_OK;
}

int
pt_stats_declare(struct pt_conf *cf)
{
	size_t size = PT_ALIGN(sizeof(struct pt_stats), 4096) + 4 * 4096;

	return pt_shm_zone_add(cf, "core", size, stats_zone_init, cf->cycle)
		       ? PT_OK
		       : PT_ERROR;
}

struct pt_stats_slot *
pt_stats_claim(struct pt_cycle *c)
{
	int32_t me = (int32_t)getpid();

	if (c->stats == NULL)
		return NULL;
	for (unsigned i = 0; i < PT_STATS_SLOTS; i++) {
		struct pt_stats_slot *s = &c->stats->slot[i];
		int32_t free_pid = 0;
		if (__atomic_compare_exchange_n(&s->pid, &free_pid, me, 0,
						__ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED))
			return s;
	}
	pt_log(PT_LOG_WARN, 0, "no free counter slot: this worker's "
			       "connections are not counted");
	return NULL;
}

void
pt_stats_retire(struct pt_cycle *c, pid_t pid)
{
	struct pt_stats *st = c->stats;

	if (st == NULL)
		return;
	for (unsigned i = 0; i < PT_STATS_SLOTS; i++) {
		struct pt_stats_slot *s = &st->slot[i];
		if (__atomic_load_n(&s->pid, __ATOMIC_ACQUIRE) != (int32_t)pid)
			continue;
		__atomic_fetch_add(&st->retired_accepted,
				   __atomic_load_n(&s->accepted,
						   __ATOMIC_RELAXED),
				   __ATOMIC_RELAXED);
		__atomic_fetch_add(&st->retired_requests,
				   __atomic_load_n(&s->requests,
						   __ATOMIC_RELAXED),
				   __ATOMIC_RELAXED);
		s->accepted = s->requests = 0;
		s->active = s->waiting = 0;
		__atomic_store_n(&s->pid, 0, __ATOMIC_RELEASE);
		return;
	}
}

void
pt_stats_sum(const struct pt_cycle *c, struct pt_stats_total *t)
{
	const struct pt_stats *st = c->stats;

	memset(t, 0, sizeof(*t));
	if (st == NULL)
		return;
	t->accepted = __atomic_load_n(&st->retired_accepted, __ATOMIC_RELAXED);
	t->requests = __atomic_load_n(&st->retired_requests, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < PT_STATS_SLOTS; i++) {
		const struct pt_stats_slot *s = &st->slot[i];
		if (__atomic_load_n(&s->pid, __ATOMIC_ACQUIRE) == 0)
			continue;
		t->accepted += __atomic_load_n(&s->accepted, __ATOMIC_RELAXED);
		t->requests += __atomic_load_n(&s->requests, __ATOMIC_RELAXED);
		t->active += __atomic_load_n(&s->active, __ATOMIC_RELAXED);
		t->waiting += __atomic_load_n(&s->waiting, __ATOMIC_RELAXED);
	}
}
