/*
 * stats.h: server-wide counters in the shared zone "core": connections
 * accepted, active and idle, requests. They are the same for every
 * worker, survive reloads (the zone is carried over), and stay right when
 * a worker dies: each worker process writes only its own slot, and the
 * master retires the slot of a worker it reaps, keeping its totals and
 * dropping its connections.
 */
#ifndef PT_STATS_H
#define PT_STATS_H

#include "core.h"

#include <sys/types.h>

struct pt_conf;
struct pt_cycle;

#define PT_STATS_SLOTS 1024

struct pt_stats_slot {
	int32_t pid; /* 0: free */
	uint32_t unused;
	uint64_t accepted;
	uint64_t requests;
	int64_t active;  /* open client connections */
	int64_t waiting; /* of which idle keep-alive */
};

struct pt_stats {
	uint64_t retired_accepted; /* totals of workers that are gone */
	uint64_t retired_requests;
	struct pt_stats_slot slot[PT_STATS_SLOTS];
};

struct pt_stats_total {
	uint64_t accepted, requests;
	int64_t active, waiting;
};

/* Declare the zone (core module, at load). PT_OK or PT_ERROR. */
int pt_stats_declare(struct pt_conf *cf);

/* In a new worker: claim a slot for this process; NULL if none is left
 * (the counters then miss this worker, nothing else breaks). */
struct pt_stats_slot *pt_stats_claim(struct pt_cycle *c);

/* In the master, for a reaped worker. */
void pt_stats_retire(struct pt_cycle *c, pid_t pid);

/* Sum of every slot and the retired totals. */
void pt_stats_sum(const struct pt_cycle *c, struct pt_stats_total *t);

/* One writer per slot: a plain increment, made visible as one store. */
static inline void
pt_stats_add(int64_t *v, int64_t d)
{
	__atomic_store_n(v, __atomic_load_n(v, __ATOMIC_RELAXED) + d,
			 __ATOMIC_RELAXED);
}

static inline void
pt_stats_inc(uint64_t *v)
{
	__atomic_store_n(v, __atomic_load_n(v, __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
}

#endif
