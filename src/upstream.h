/*
 * upstream.h: pools of backend servers ("upstreams"), their peers, the
 * state every worker shares about each peer, and the balancers.
 *
 * Three lifetimes meet here:
 *   - configuration (struct pt_upstream, struct pt_upstream_peer): built
 *     at load, read-only afterwards, one copy per process;
 *   - shared state (struct pt_peer_state): one per peer in the shared
 *     memory zone "upstreams", seen by every worker and by the helper
 *     process at once, and carried over a reload for a peer that is still
 *     configured (same upstream name and address);
 *   - worker state (struct pt_upstream_rt): what only one worker needs,
 *     the smooth round-robin weights and the idle keep-alive connections.
 *
 * A peer is live when it is not marked down by failures (passive health,
 * max_fails within fail_timeout) nor by the active checks (fall/rise), and
 * it can take a request when its in-flight count across all workers is
 * below max_conns. Backup peers are chosen only when no primary is live.
 */
#ifndef PT_UPSTREAM_H
#define PT_UPSTREAM_H

#include "core.h"
#include "listen.h"

struct pt_conf;
struct pt_cycle;
struct pt_tpl;
struct pt_shm_zone;
struct pt_upconn;

enum {
	PT_LB_ROUND_ROBIN = 0, /* smooth weighted round robin (nginx) */
	PT_LB_LEAST_CONN,      /* fewest in flight / weight, ties by RR */
	PT_LB_IP_HASH,         /* client address (IPv4 /24, IPv6 /64) */
	PT_LB_HASH,            /* consistent hash (ketama) of hash_key */
	PT_LB_RANDOM,          /* power of two random choices */
	PT_LB_EWMA,            /* two choices by latency EWMA x load */
};

/* Shared state of one peer (in the zone "upstreams"). Every field is
 * read and written with atomics (no lock on any request path); racing
 * updates may miscount a failure, never corrupt anything. Times are
 * CLOCK_MONOTONIC milliseconds, the same clock in every process. */
struct pt_peer_state {
	/* passive health */
	int64_t fail_start;    /* start of the current failure window */
	uint32_t fails;        /* failures in that window */
	uint32_t unused;
	int64_t down_until;    /* > now: marked down by failures */
	/* active health, written by the helper process only */
	uint32_t checked;      /* 1 once a check has decided up or down */
	uint32_t check_up;     /* the checks' verdict */
	uint32_t rise, fall;   /* consecutive successes, failures */
	int64_t last_check;
	/* slow start: when the checks last brought it up */
	int64_t live_since;
	/* balancing */
	int64_t inflight;      /* requests being served, all workers */
	int64_t ewma_us;       /* response time EWMA, microseconds */
	int64_t ewma_at;       /* when ewma_us was last updated */
	/* counters */
	uint64_t requests;
	uint64_t failures;
};

struct pt_upstream_peer {
	const char *address;   /* as configured: logs, $upstream_addr */
	struct pt_sockaddr addr;
	unsigned weight;       /* 1.. */
	unsigned max_fails;    /* 0: failures never mark it down */
	unsigned max_conns;    /* 0: no limit */
	int64_t fail_timeout;  /* ms */
	int64_t slow_start;    /* ms; 0: none */
	unsigned backup : 1;
	struct pt_peer_state *st; /* shared; set when the zone is ready */
};

struct pt_health_check {
	const char *path;
	int64_t interval, timeout; /* ms */
	unsigned rise, fall;
	int status_min, status_max;
};

struct pt_upstream {
	const char *name;
	unsigned index;        /* in the upstream module's array */
	unsigned balance;      /* PT_LB_* */
	struct pt_tpl *hash_key; /* PT_LB_HASH */
	int64_t keepalive;     /* idle connections kept per worker */
	int64_t keepalive_timeout, keepalive_requests;
	struct pt_upstream_peer *peers; /* primaries first, then backups */
	unsigned npeers, nprimary;
	struct pt_health_check *hc; /* NULL: passive health only */
	void *lb_data;         /* the balancer's load-time data */
	unsigned implicit : 1; /* made for proxy_pass "http://host:port" */
	const char *file;      /* where it was configured, for messages */
	unsigned line;
};

/* What a worker keeps per upstream. */
struct pt_upstream_rt {
	int64_t *current;      /* smooth round robin: current weights */
	unsigned rr;           /* rotation for ties and fallbacks */
	uint64_t rng;          /* per-worker random state */
	struct pt_upconn *idle; /* keep-alive connections, most recent first */
	unsigned nidle;
};

/* ---- choosing a peer ---------------------------------------------------- */

#define PT_LB_MAX_PEERS 1024

struct pt_lb_ctx {
	struct pt_upstream *u;
	struct pt_upstream_rt *rt;
	struct pt_str key;     /* hash: the evaluated hash_key; ip_hash: the
				* client address bytes (4 or 16) */
	int64_t now;           /* monotonic ms */
	uint64_t tried[PT_LB_MAX_PEERS / 64]; /* peers already tried */
	unsigned ntried;
	unsigned busy : 1;     /* out: live peers exist, all at max_conns */
};

/*
 * Pick a peer for a request: a live one, not yet tried, below max_conns,
 * primaries first. Its in-flight count is incremented (pt_lb_release()
 * undoes it) and it is marked tried. Returns the peer's index, or -1 when
 * none can take the request (ctx->busy says whether for max_conns).
 */
int pt_lb_pick(struct pt_lb_ctx *ctx);

/* The request on peer i is over: in-flight count down; on success with
 * a response time, the latency EWMA is updated. */
void pt_lb_release(struct pt_upstream *u, unsigned i, int64_t response_us);

/* Build the balancer's load-time data (the hash ring). PT_OK/PT_ERROR. */
int pt_lb_init(struct pt_conf *cf, struct pt_upstream *u);

/* Worker state of u (current weights, random seed). PT_OK or PT_ERROR. */
int pt_lb_init_worker(struct pt_upstream *u, struct pt_upstream_rt *rt);

/* Free what pt_lb_init_worker() allocated (a worker's exit). */
void pt_lb_exit_worker(struct pt_upstream_rt *rt);

/* ---- peer health ---------------------------------------------------------- */

/* Whether peer p can be chosen now (not down by failures or checks). */
int pt_peer_live(const struct pt_upstream_peer *p, int64_t now);

/* Weight of p now: its weight, ramped up during slow start. */
unsigned pt_peer_weight(const struct pt_upstream_peer *p, int64_t now);

/*
 * A request to p failed (connect, reset, timeout, invalid response): count
 * it in p's window and mark p down for fail_timeout when it reaches
 * max_fails. Returns 1 when this call marked it down (to log once).
 */
int pt_peer_failed(struct pt_upstream_peer *p, int64_t now);

/* A request to p succeeded: a peer recovering from failures is live. */
void pt_peer_succeeded(struct pt_upstream_peer *p, int64_t now);

#endif
