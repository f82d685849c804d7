/*
 * balance.c: choosing a peer of an upstream for a request, and the health
 * of a peer as the request path sees it (passive checks, slow start).
 *
 * A pick works on one group at a time: the primaries (peers[0, nprimary))
 * and, only when not one primary is live, the backups. A primary that is
 * live but busy (at max_conns) or already tried by this request keeps the
 * request off the backups: backups stand in for primaries that are down,
 * they are not overflow capacity. (nginx also falls over to the backups
 * when the primaries are merely full or tried; with the default
 * max_fails = 1 a tried primary that failed is down anyway.)
 *
 * Each balancer only proposes a usable peer: not tried, live, below
 * max_conns as last read. The in-flight count is then taken with one
 * atomic add and given back when that overshot max_conns (another worker
 * was faster); the peer is then skipped for this pick and the balancer
 * asked again. So max_conns holds across all workers without a lock, and
 * a pick ends after at most one proposal per peer.
 *
 * Shared state (struct pt_peer_state) is only touched with __atomic
 * builtins, relaxed: counters may miss an increment under a race, and a
 * decision taken once (marking a peer down) is a compare-and-swap.
 *
 * The hash of both ip_hash and the consistent hash is MurmurHash3 (x86,
 * 32 bits): fast, well mixed, no allocation and no library on the request
 * path. The ring (ketama style) has BALANCE_RING_POINTS points per unit of
 * weight per peer, each the hash of the peer's address text seeded with
 * the point's number, so a peer's points do not depend on the other peers
 * and removing one only remaps the keys that were on it.
 *
 * Called by the upstream code of a worker: pt_lb_init() at load,
 * pt_lb_init_worker() once per worker, pick and release per request.
 * Nothing here allocates after load.
 */
#include "core.h"
#include "conf.h"
#include "log.h"
#include "pool.h"
#include "ptime.h"
#include "upstream.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

#define BALANCE_RING_POINTS    160        /* ring points per unit of weight */
#define BALANCE_RING_MAX       (1u << 20) /* points in one ring, at most */
#define BALANCE_IP_TRIES       20         /* ip_hash rehashes before RR */
#define BALANCE_EWMA_TAU       10000.0    /* ms: EWMA time constant */
#define BALANCE_EWMA_MIN_ALPHA (1.0 / 64) /* weight of a dense sample */

#define BAL_LOAD(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define BAL_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define BAL_ADD(p, v)   __atomic_add_fetch((p), (v), __ATOMIC_RELAXED)
#define BAL_SUB(p, v)   __atomic_sub_fetch((p), (v), __ATOMIC_RELAXED)
#define BAL_CAS(p, old, v)                                                     \
	__atomic_compare_exchange_n((p), (old), (v), 0, __ATOMIC_RELAXED,      \
				    __ATOMIC_RELAXED)

#define BAL_BIT(map, i) (((map)[(i) >> 6] >> ((i)&63)) & 1)
#define BAL_SET(map, i) ((map)[(i) >> 6] |= (uint64_t)1 << ((i)&63))

struct balance_point {
	uint32_t hash;
	uint32_t peer;
};

struct balance_ring {
	struct balance_point *points; /* sorted by hash */
	unsigned npoints;
};

/* u->lb_data: per group (0 primaries, 1 backups). */
struct balance_data {
	struct balance_ring ring[2]; /* PT_LB_HASH only */
	unsigned total_weight[2];    /* configured weights, for ip_hash */
};

/* One pick in one group. skip starts as ctx->tried and gains every peer
 * found unusable on the way, so a peer is examined at most once. */
struct balance_pass {
	struct pt_lb_ctx *ctx;
	struct pt_upstream *u;
	unsigned lo, hi, group;
	uint64_t skip[PT_LB_MAX_PEERS / 64];
};

/* Usable peers of a group with what the balancers compare. */
struct balance_cand {
	unsigned n;
	unsigned idx[PT_LB_MAX_PEERS];
	unsigned weight[PT_LB_MAX_PEERS];
	int64_t load[PT_LB_MAX_PEERS];
};

/* ---- hashing ------------------------------------------------------------- */

static uint32_t
balance_rotl(uint32_t x, int r)
{
	return (x << r) | (x >> (32 - r));
}

static uint32_t
balance_mix(uint32_t k)
{
	k *= 0xcc9e2d51u;
	k = balance_rotl(k, 15);
	return k * 0x1b873593u;
}

/* MurmurHash3_x86_32 of len bytes at data. */
static uint32_t
balance_hash(const void *data, size_t len, uint32_t seed)
{
	const unsigned char *p = data;
	uint32_t h = seed, k = 0;
	size_t i;

	for (i = 0; i + 4 <= len; i += 4) {
		k = (uint32_t)p[i] | (uint32_t)p[i + 1] << 8 |
		    (uint32_t)p[i + 2] << 16 | (uint32_t)p[i + 3] << 24;
		h ^= balance_mix(k);
		h = balance_rotl(h, 13);
		h = h * 5 + 0xe6546b64u;
	}
	k = 0;
	if ((len & 3) >= 3)
		k ^= (uint32_t)p[i + 2] << 16;
	if ((len & 3) >= 2)
		k ^= (uint32_t)p[i + 1] << 8;
	if ((len & 3) >= 1) {
		k ^= p[i];
		h ^= balance_mix(k);
	}
	h ^= (uint32_t)len;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* xorshift64*: the worker's own generator, no shared state. */
static uint64_t
balance_random(struct pt_upstream_rt *rt)
{
	uint64_t x = rt->rng != 0 ? rt->rng : 0x9e3779b97f4a7c15ull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rt->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* ---- peer health --------------------------------------------------------- */

int
pt_peer_live(const struct pt_upstream_peer *p, int64_t now)
{
	const struct pt_peer_state *st = p->st;

	if (BAL_LOAD(&st->down_until) > now)
		return 0;
	/* Until the checks have decided, a peer is live. */
	if (BAL_LOAD(&st->checked) && !BAL_LOAD(&st->check_up))
		return 0;
	return 1;
}

unsigned
pt_peer_weight(const struct pt_upstream_peer *p, int64_t now)
{
	int64_t since, age;

	if (p->slow_start <= 0 || p->weight <= 1)
		return p->weight;
	since = BAL_LOAD(&p->st->live_since);
	if (since <= 0)
		return p->weight;
	age = now - since;
	if (age >= p->slow_start)
		return p->weight;
	if (age < 0)
		age = 0;
	return 1 + (unsigned)((int64_t)(p->weight - 1) * age / p->slow_start);
}

/* Mark p down for fail_timeout unless it is already: 1 for the one caller
 * that did it. Slow start then runs from the end of the down time. */
static int
balance_mark_down(struct pt_upstream_peer *p, int64_t now)
{
	struct pt_peer_state *st = p->st;
	int64_t old = BAL_LOAD(&st->down_until), until;

	if (p->fail_timeout <= 0 || old > now)
		return 0;
	until = now + p->fail_timeout;
	if (!BAL_CAS(&st->down_until, &old, until))
		return 0;
	BAL_STORE(&st->live_since, until);
	return 1;
}

int
pt_peer_failed(struct pt_upstream_peer *p, int64_t now)
{
	struct pt_peer_state *st = p->st;
	int64_t start;
	uint32_t n;

	BAL_ADD(&st->failures, 1);
	if (p->max_fails == 0)
		return 0;
	n = BAL_LOAD(&st->fails);
	/* fails >= max_fails: it was marked down and no request has
	 * succeeded since; the first one tried after fail_timeout failed
	 * too, so it goes down again at once (as nginx does). */
	if (n < p->max_fails) {
		start = BAL_LOAD(&st->fail_start);
		if (start == 0 || now - start >= p->fail_timeout) {
			/* A new window; a racing failure may be lost. */
			if (BAL_CAS(&st->fail_start, &start, now)) {
				BAL_STORE(&st->fails, 1);
				n = 1;
			} else {
				n = BAL_ADD(&st->fails, 1);
			}
		} else {
			n = BAL_ADD(&st->fails, 1);
		}
		if (n < p->max_fails)
			return 0;
	}
	return balance_mark_down(p, now);
}

void
pt_peer_succeeded(struct pt_upstream_peer *p, int64_t now)
{
	struct pt_peer_state *st = p->st;

	if (BAL_LOAD(&st->fails) == 0)
		return;
	/* A request that was already under way when the peer went down
	 * proves little: only a success after the down time revives it. */
	if (BAL_LOAD(&st->down_until) > now)
		return;
	BAL_STORE(&st->fails, 0);
	BAL_STORE(&st->fail_start, 0);
}

/* ---- the pass: what every balancer shares -------------------------------- */

static int
balance_usable(struct balance_pass *ps, unsigned i)
{
	const struct pt_upstream_peer *p = &ps->u->peers[i];

	if (BAL_BIT(ps->skip, i))
		return 0;
	if (!pt_peer_live(p, ps->ctx->now) ||
	    (p->max_conns != 0 &&
	     BAL_LOAD(&p->st->inflight) >= (int64_t)p->max_conns)) {
		BAL_SET(ps->skip, i);
		return 0;
	}
	return 1;
}

static void
balance_collect(struct balance_pass *ps, struct balance_cand *c)
{
	unsigned i;

	c->n = 0;
	for (i = ps->lo; i < ps->hi; i++) {
		if (!balance_usable(ps, i))
			continue;
		c->idx[c->n] = i;
		c->weight[c->n] =
			pt_peer_weight(&ps->u->peers[i], ps->ctx->now);
		c->load[c->n] = BAL_LOAD(&ps->u->peers[i].st->inflight);
		c->n++;
	}
}

/* Take a request slot on peer i: PT_OK, or PT_AGAIN when max_conns was
 * reached between the balancer's look and now. */
static int
balance_take(struct pt_upstream *u, unsigned i)
{
	struct pt_upstream_peer *p = &u->peers[i];
	int64_t n = BAL_ADD(&p->st->inflight, 1);

	if (p->max_conns != 0 && n > (int64_t)p->max_conns) {
		BAL_SUB(&p->st->inflight, 1);
		return PT_AGAIN;
	}
	BAL_ADD(&p->st->requests, 1);
	return PT_OK;
}

/* ---- the balancers ------------------------------------------------------- */

/* Smooth weighted round robin (nginx): each usable peer gains its weight,
 * the largest current weight wins and loses the total. */
static int
balance_rr(struct balance_pass *ps)
{
	int64_t *cur = ps->ctx->rt->current, total = 0;
	unsigned i, w;
	int best = -1;

	for (i = ps->lo; i < ps->hi; i++) {
		if (!balance_usable(ps, i))
			continue;
		w = pt_peer_weight(&ps->u->peers[i], ps->ctx->now);
		cur[i] += w;
		total += w;
		if (best < 0 || cur[i] > cur[best])
			best = (int)i;
	}
	if (best >= 0)
		cur[best] -= total;
	return best;
}

/* Fewest in flight per weight; a tie (idle peers) goes by smooth
 * weighted round robin among the tied, so idle peers share by weight. */
static int
balance_least_conn(struct balance_pass *ps)
{
	struct balance_cand c;
	int64_t *cur = ps->ctx->rt->current, total = 0, a, b;
	unsigned k, best = 0, ties = 1, i;
	int pick = -1;

	balance_collect(ps, &c);
	if (c.n == 0)
		return -1;
	for (k = 1; k < c.n; k++) {
		a = c.load[k] * c.weight[best];
		b = c.load[best] * c.weight[k];
		if (a < b) {
			best = k;
			ties = 1;
		} else if (a == b) {
			ties++;
		}
	}
	if (ties == 1)
		return (int)c.idx[best];
	for (k = 0; k < c.n; k++) {
		if (c.load[k] * c.weight[best] != c.load[best] * c.weight[k])
			continue;
		i = c.idx[k];
		cur[i] += c.weight[k];
		total += c.weight[k];
		if (pick < 0 || cur[i] > cur[pick])
			pick = (int)i;
	}
	cur[pick] -= total;
	return pick;
}

/* A candidate drawn with probability weight/total, other than not. */
static unsigned
balance_draw(struct pt_upstream_rt *rt, const struct balance_cand *c,
	     uint64_t total, unsigned not )
{
	uint64_t r = balance_random(rt) % total;
	unsigned k;

	for (k = 0; k < c->n; k++) {
		if (k == not )
			continue;
		if (r < c->weight[k])
			return k;
		r -= c->weight[k];
	}
	PT_ASSERT(!"weights do not add up");
	return 0;
}

/* Latency cost of candidate k: an EWMA not refreshed for a while decays
 * toward 0, so a peer once slow is tried again when the load is low. */
static double
balance_cost(struct balance_pass *ps, const struct balance_cand *c, unsigned k)
{
	const struct pt_peer_state *st = ps->u->peers[c->idx[k]].st;
	double e = (double)BAL_LOAD(&st->ewma_us);
	int64_t age = ps->ctx->now - BAL_LOAD(&st->ewma_at);

	if (age > 0)
		e = e * BALANCE_EWMA_TAU / (BALANCE_EWMA_TAU + (double)age);
	return (e + 1) * (double)(c->load[k] + 1) / c->weight[k];
}

/* Power of two choices: two distinct peers drawn by weight, the one with
 * the lower load per weight (random) or latency x load (ewma) wins. */
static int
balance_p2c(struct balance_pass *ps, int ewma)
{
	struct balance_cand c;
	uint64_t total = 0;
	unsigned k, a, b;

	balance_collect(ps, &c);
	if (c.n == 0)
		return -1;
	if (c.n == 1)
		return (int)c.idx[0];
	for (k = 0; k < c.n; k++)
		total += c.weight[k];
	a = balance_draw(ps->ctx->rt, &c, total, c.n);
	b = balance_draw(ps->ctx->rt, &c, total - c.weight[a], a);
	if (ewma) {
		if (balance_cost(ps, &c, b) < balance_cost(ps, &c, a))
			a = b;
	} else if (c.load[b] * c.weight[a] < c.load[a] * c.weight[b]) {
		a = b;
	}
	return (int)c.idx[a];
}

/* ip_hash: the client's network (IPv4 /24, IPv6 /64) picks a peer by
 * configured weight; when that one is not usable the hash is chained,
 * so a client's fallback is the same every time; then round robin. */
static int
balance_ip_hash(struct balance_pass *ps)
{
	const struct balance_data *d = ps->u->lb_data;
	struct pt_str key = ps->ctx->key;
	uint32_t h, r;
	unsigned tries, i, total = d->total_weight[ps->group];
	size_t n;

	if (key.len == 4)
		n = 3;
	else if (key.len == 16)
		n = 8;
	else
		return balance_rr(ps); /* not an IP client (unix socket) */
	if (total == 0)
		return -1;
	h = balance_hash(key.data, n, 0);
	for (tries = 0; tries < BALANCE_IP_TRIES; tries++) {
		r = h % total;
		for (i = ps->lo; i < ps->hi - 1; i++) {
			if (r < ps->u->peers[i].weight)
				break;
			r -= ps->u->peers[i].weight;
		}
		if (balance_usable(ps, i))
			return (int)i;
		h = balance_hash(key.data, n, h);
	}
	return balance_rr(ps);
}

/* Consistent hash: the first ring point at or after the key's hash, then
 * onwards, skipping peers that can not take the request. */
static int
balance_chash(struct balance_pass *ps)
{
	const struct balance_data *d = ps->u->lb_data;
	const struct balance_ring *ring = &d->ring[ps->group];
	unsigned lo = 0, hi = ring->npoints, mid, step, nrej = 0, i;
	uint32_t h;

	if (ring->npoints == 0)
		return -1;
	h = balance_hash(ps->ctx->key.data, ps->ctx->key.len, 0);
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (ring->points[mid].hash < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = ps->lo; i < ps->hi; i++)
		nrej += (unsigned)BAL_BIT(ps->skip, i);
	for (step = 0; step < ring->npoints && nrej < ps->hi - ps->lo; step++) {
		if (lo == ring->npoints)
			lo = 0;
		i = ring->points[lo++].peer;
		if (BAL_BIT(ps->skip, i))
			continue;
		if (balance_usable(ps, i))
			return (int)i;
		nrej++;
	}
	return -1;
}

/* ---- picking ------------------------------------------------------------- */

static int
balance_propose(struct balance_pass *ps)
{
	switch (ps->u->balance) {
	case PT_LB_LEAST_CONN: return balance_least_conn(ps);
	case PT_LB_IP_HASH: return balance_ip_hash(ps);
	case PT_LB_HASH: return balance_chash(ps);
	case PT_LB_RANDOM: return balance_p2c(ps, 0);
	case PT_LB_EWMA: return balance_p2c(ps, 1);
	default: return balance_rr(ps);
	}
}

static int
balance_group(struct pt_lb_ctx *ctx, unsigned group, unsigned lo, unsigned hi)
{
	struct balance_pass ps;
	int i;

	if (lo == hi)
		return -1;
	ps.ctx = ctx;
	ps.u = ctx->u;
	ps.lo = lo;
	ps.hi = hi;
	ps.group = group;
	memcpy(ps.skip, ctx->tried, sizeof(ps.skip));
	/* Each round either takes a peer or adds one to skip: it ends. */
	for (;;) {
		i = balance_propose(&ps);
		if (i < 0)
			return -1;
		PT_ASSERT((unsigned)i >= lo && (unsigned)i < hi);
		if (balance_take(ctx->u, (unsigned)i) == PT_OK) {
			BAL_SET(ctx->tried, (unsigned)i);
			ctx->ntried++;
			return i;
		}
		BAL_SET(ps.skip, (unsigned)i);
	}
}

/* After a failed pick in a group: is any peer of it live, and are live
 * peers not yet tried all at max_conns? */
static void
balance_group_state(const struct pt_lb_ctx *ctx, unsigned lo, unsigned hi,
		    unsigned *live, unsigned *full)
{
	const struct pt_upstream_peer *p;
	unsigned i;

	*live = 0;
	*full = 0;
	for (i = lo; i < hi; i++) {
		p = &ctx->u->peers[i];
		if (!pt_peer_live(p, ctx->now))
			continue;
		(*live)++;
		if (!BAL_BIT(ctx->tried, i) && p->max_conns != 0 &&
		    BAL_LOAD(&p->st->inflight) >= (int64_t)p->max_conns)
			(*full)++;
	}
}

int
pt_lb_pick(struct pt_lb_ctx *ctx)
{
	struct pt_upstream *u = ctx->u;
	unsigned live, full;
	int i;

	ctx->busy = 0;
	i = balance_group(ctx, 0, 0, u->nprimary);
	if (i >= 0)
		return i;
	balance_group_state(ctx, 0, u->nprimary, &live, &full);
	if (live == 0 && u->nprimary < u->npeers) {
		i = balance_group(ctx, 1, u->nprimary, u->npeers);
		if (i >= 0)
			return i;
		balance_group_state(ctx, u->nprimary, u->npeers, &live, &full);
	}
	ctx->busy = full > 0;
	return -1;
}

/* Time-based EWMA (tau 10 s), but a sample never weighs less than 1/64:
 * at high rates the samples are milliseconds apart and a purely time-based
 * weight would round to nothing in integer microseconds. */
static void
balance_ewma_update(struct pt_peer_state *st, int64_t sample, int64_t now)
{
	int64_t at = BAL_LOAD(&st->ewma_at);
	double e = (double)BAL_LOAD(&st->ewma_us), dt, alpha;

	if (at == 0) {
		e = (double)sample;
	} else {
		dt = (double)(now > at ? now - at : 0);
		alpha = dt / (dt + BALANCE_EWMA_TAU);
		if (alpha < BALANCE_EWMA_MIN_ALPHA)
			alpha = BALANCE_EWMA_MIN_ALPHA;
		e += alpha * ((double)sample - e);
	}
	BAL_STORE(&st->ewma_us, (int64_t)(e + 0.5));
	BAL_STORE(&st->ewma_at, now > 0 ? now : 1);
}

void
pt_lb_release(struct pt_upstream *u, unsigned i, int64_t response_us)
{
	struct pt_peer_state *st;

	PT_ASSERT(i < u->npeers);
	st = u->peers[i].st;
	BAL_SUB(&st->inflight, 1);
	if (response_us >= 0)
		balance_ewma_update(st, response_us, pt_now.mono_ms);
}

/* ---- load time ----------------------------------------------------------- */

static int
balance_point_cmp(const void *a, const void *b)
{
	const struct balance_point *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return x->peer < y->peer ? -1 : x->peer > y->peer;
}

/* The ring of peers [lo, hi): total is their configured weight. */
static int
balance_ring_build(struct pt_conf *cf, struct pt_upstream *u,
		   struct balance_ring *ring, unsigned lo, unsigned hi,
		   unsigned total)
{
	const struct pt_upstream_peer *p;
	char text[PT_ADDR_TEXT];
	const char *name;
	unsigned per = BALANCE_RING_POINTS, i, j, n = 0;

	/* A huge total weight thins the points (and the balance) rather
	 * than taking gigabytes. */
	if ((uint64_t)total * per > BALANCE_RING_MAX)
		per = PT_MAX(BALANCE_RING_MAX / total, 1u);
	ring->npoints = 0;
	ring->points = NULL;
	if (total == 0)
		return PT_OK;
	ring->points = pt_palloc(
		cf->pool, (size_t)total * per * sizeof(struct balance_point));
	if (ring->points == NULL)
		return PT_ERROR;
	for (i = lo; i < hi; i++) {
		p = &u->peers[i];
		/* The socket address when known: one configured name may
		 * stand for several addresses, each its own peer. */
		name = p->address;
		if (p->addr.len > 0) {
			pt_addr_text(&p->addr.u.sa, p->addr.len, text,
				     sizeof(text));
			name = text;
		}
		for (j = 0; j < p->weight * per; j++) {
			ring->points[n].hash = balance_hash(
				name, strlen(name), j * 0x9e3779b1u + 1);
			ring->points[n++].peer = i;
		}
	}
	qsort(ring->points, n, sizeof(*ring->points), balance_point_cmp);
	ring->npoints = n;
	return PT_OK;
}

int
pt_lb_init(struct pt_conf *cf, struct pt_upstream *u)
{
	struct balance_data *d;
	unsigned i, g;

	PT_ASSERT(u->nprimary <= u->npeers);
	if (u->npeers > PT_LB_MAX_PEERS) {
		pt_conf_error(cf, NULL,
			      "%s:%u: upstream \"%s\": %u servers, "
			      "at most %u",
			      u->file ? u->file : "?", u->line, u->name,
			      u->npeers, (unsigned)PT_LB_MAX_PEERS);
		return PT_ERROR;
	}
	d = pt_pcalloc(cf->pool, sizeof(*d));
	if (d == NULL)
		goto nomem;
	for (i = 0; i < u->npeers; i++) {
		PT_ASSERT(u->peers[i].weight >= 1);
		PT_ASSERT(u->peers[i].backup == (i >= u->nprimary));
		d->total_weight[i >= u->nprimary] += u->peers[i].weight;
	}
	if (u->balance == PT_LB_HASH) {
		for (g = 0; g < 2; g++)
			if (balance_ring_build(cf, u, &d->ring[g],
					       g ? u->nprimary : 0,
					       g ? u->npeers : u->nprimary,
					       d->total_weight[g]) != PT_OK)
				goto nomem;
	}
	u->lb_data = d;
	return PT_OK;
nomem:
	pt_conf_error(cf, NULL, "upstream \"%s\": out of memory", u->name);
	return PT_ERROR;
}

int
pt_lb_init_worker(struct pt_upstream *u, struct pt_upstream_rt *rt)
{
	struct timespec ts;
	uint64_t seed;

	rt->rr = 0;
	rt->current = calloc(u->npeers > 0 ? u->npeers : 1, sizeof(int64_t));
	if (rt->current == NULL) {
		pt_log(PT_LOG_ERR, errno, "upstream \"%s\": worker state",
		       u->name);
		return PT_ERROR;
	}
	/* Workers must not draw the same sequence: mix pid and clock. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	seed = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 32 ^
	       (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^
	       (uint64_t)u->index << 48;
	seed ^= seed >> 31;
	seed *= 0xbf58476d1ce4e5b9ull;
	seed ^= seed >> 27;
	rt->rng = seed != 0 ? seed : 0x9e3779b97f4a7c15ull;
	return PT_OK;
}

void
pt_lb_exit_worker(struct pt_upstream_rt *rt)
{
	free(rt->current);
	rt->current = NULL;
}
