/*
 * test_balance.c: the balancers and the peers' health (balance.c).
 *
 * An upstream of up to 16 peers is built in memory (shared state in
 * calloc'ed memory, as the zone would hold it), then picked from with
 * a clock the test controls. Distributions are counted over thousands of
 * picks with fixed seeds, so every run sees the same numbers. One test
 * forks: two processes racing on a peer with max_conns 1 never both hold
 * it.
 */
#include "core.h"
#include "conf.h"
#include "pool.h"
#include "ptime.h"
#include "upstream.h"

#include <check.h>

#include "unit.h"
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define T_MAXP 16
#define T_NOW  1000000 /* a monotonic ms far from 0 */

static struct pt_pool *pool;
static struct pt_conf cf;
static struct pt_upstream up;
static struct pt_upstream_rt rt;
static struct pt_upstream_peer peers[T_MAXP];
static struct pt_peer_state *states;
static char addrs[T_MAXP][32];

static void
pool_setup(void)
{
	pool = pt_pool_create();
	ck_assert_ptr_nonnull(pool);
	memset(&cf, 0, sizeof(cf));
	cf.pool = pool;
	cf.to_stderr = 1;
	states = NULL;
	rt.current = NULL;
}

static void
pool_teardown(void)
{
	pt_lb_exit_worker(&rt);
	free(states);
	pt_pool_destroy(pool);
}

/*
 * An upstream with n peers of the given weights (NULL: all 1), the last
 * nbackup of them backups, peer i at 10.0.0.(first + i):80. The state is
 * fresh; the worker state is rebuilt with a fixed seed.
 */
static void
up_make(unsigned balance, unsigned n, const unsigned *w, unsigned nbackup,
	unsigned first)
{
	unsigned i;

	ck_assert_uint_le(n, T_MAXP);
	pt_lb_exit_worker(&rt);
	free(states);
	states = calloc(n > 0 ? n : 1, sizeof(*states));
	ck_assert_ptr_nonnull(states);
	memset(&up, 0, sizeof(up));
	memset(peers, 0, sizeof(peers));
	for (i = 0; i < n; i++) {
		snprintf(addrs[i], sizeof(addrs[i]), "10.0.0.%u:80", first + i);
		peers[i].address = addrs[i];
		peers[i].weight = w ? w[i] : 1;
		peers[i].max_fails = 1;
		peers[i].fail_timeout = 10000;
		peers[i].backup = i >= n - nbackup;
		peers[i].st = &states[i];
	}
	up.name = "test";
	up.balance = balance;
	up.peers = peers;
	up.npeers = n;
	up.nprimary = n - nbackup;
	ck_assert_int_eq(pt_lb_init(&cf, &up), PT_OK);
	ck_assert_int_eq(pt_lb_init_worker(&up, &rt), PT_OK);
	rt.rng = 12345;
}

static void
ctx_init(struct pt_lb_ctx *ctx, const void *key, size_t len, int64_t now)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->u = &up;
	ctx->rt = &rt;
	ctx->key.data = key;
	ctx->key.len = len;
	ctx->now = now;
}

/* One pick for a new request; released at once when release is set. */
static int
pick(const void *key, size_t len, int64_t now, int release)
{
	struct pt_lb_ctx ctx;
	int i;

	ctx_init(&ctx, key, len, now);
	i = pt_lb_pick(&ctx);
	if (i >= 0 && release)
		pt_lb_release(&up, (unsigned)i, -1);
	return i;
}

/* Counts of n keyless picks into count[]. */
static void
count_picks(unsigned n, int release, unsigned *count)
{
	unsigned k;
	int i;

	memset(count, 0, T_MAXP * sizeof(*count));
	for (k = 0; k < n; k++) {
		i = pick(NULL, 0, T_NOW, release);
		T_CHECK(i >= 0 && i < (int)up.npeers, "pick %u: %d", k, i);
		count[i]++;
	}
}

static void
assert_near(unsigned got, double want, double tolerance)
{
	ck_assert_msg(
		got >= want * (1 - tolerance) && got <= want * (1 + tolerance),
		"got %u, want %.0f +- %.0f%%", got, want, tolerance * 100);
}

static const unsigned w31[] = {3, 1};

/* ---- round robin --------------------------------------------------------- */

START_TEST(test_rr_smooth_order)
{
	static const unsigned w[] = {5, 1, 1};
	static const int want[] = {0, 0, 1, 0, 2, 0, 0};
	unsigned round, k;

	up_make(PT_LB_ROUND_ROBIN, 3, w, 0, 1);
	for (round = 0; round < 3; round++)
		for (k = 0; k < PT_ARRAY_SIZE(want); k++)
			ck_assert_int_eq(pick(NULL, 0, T_NOW, 1), want[k]);
	ck_assert_uint_eq(states[0].requests, 15);
	ck_assert_int_eq(states[0].inflight, 0);
}
END_TEST

START_TEST(test_rr_ratio)
{
	unsigned count[T_MAXP];

	up_make(PT_LB_ROUND_ROBIN, 2, w31, 0, 1);
	count_picks(4000, 1, count);
	ck_assert_uint_eq(count[0], 3000);
	ck_assert_uint_eq(count[1], 1000);
}
END_TEST

/* ---- least_conn ---------------------------------------------------------- */

START_TEST(test_least_conn_ratio)
{
	unsigned count[T_MAXP];

	/* Idle peers share by weight ... */
	up_make(PT_LB_LEAST_CONN, 2, w31, 0, 1);
	count_picks(4000, 1, count);
	assert_near(count[0], 3000, 0.02);
	assert_near(count[1], 1000, 0.02);
	/* ... and busy ones hold in-flight counts in the weights' ratio. */
	up_make(PT_LB_LEAST_CONN, 2, w31, 0, 1);
	count_picks(4000, 0, count);
	assert_near(count[0], 3000, 0.02);
	assert_near(count[1], 1000, 0.02);
}
END_TEST

START_TEST(test_least_conn_follows_inflight)
{
	unsigned k;

	up_make(PT_LB_LEAST_CONN, 3, NULL, 0, 1);
	states[0].inflight = 5;
	states[1].inflight = 3;
	/* Peer 2 until it has 3, then 1 and 2 in turn until 5, ... */
	for (k = 0; k < 3; k++)
		ck_assert_int_eq(pick(NULL, 0, T_NOW, 0), 2);
	for (k = 0; k < 4; k++) {
		int i = pick(NULL, 0, T_NOW, 0);

		ck_assert(i == 1 || i == 2);
	}
	ck_assert_int_eq(states[1].inflight, 5);
	ck_assert_int_eq(states[2].inflight, 5);
	/* A peer whose requests end gets the next ones. */
	pt_lb_release(&up, 0, -1);
	pt_lb_release(&up, 0, -1);
	ck_assert_int_eq(pick(NULL, 0, T_NOW, 0), 0);
	ck_assert_int_eq(pick(NULL, 0, T_NOW, 0), 0);
}
END_TEST

/* ---- random and ewma ----------------------------------------------------- */

START_TEST(test_random_ratio)
{
	unsigned count[T_MAXP];

	up_make(PT_LB_RANDOM, 2, w31, 0, 1);
	count_picks(4000, 1, count);
	assert_near(count[0], 3000, 0.10);
	assert_near(count[1], 1000, 0.10);
	up_make(PT_LB_RANDOM, 2, w31, 0, 1);
	count_picks(4000, 0, count);
	assert_near(count[0], 3000, 0.10);
	assert_near(count[1], 1000, 0.10);
}
END_TEST

START_TEST(test_random_spreads)
{
	static const unsigned w[] = {1, 2, 3, 4, 1, 2, 3, 4};
	unsigned count[T_MAXP], k;

	/* With more than two peers: each gets about its share. */
	up_make(PT_LB_RANDOM, 8, w, 0, 1);
	count_picks(20000, 1, count);
	for (k = 0; k < 8; k++)
		assert_near(count[k], 20000.0 * w[k] / 20, 0.10);
}
END_TEST

START_TEST(test_ewma_ratio)
{
	unsigned count[T_MAXP];

	/* Same latency: in-flight per weight decides. */
	up_make(PT_LB_EWMA, 2, w31, 0, 1);
	count_picks(4000, 0, count);
	assert_near(count[0], 3000, 0.10);
	assert_near(count[1], 1000, 0.10);
}
END_TEST

START_TEST(test_ewma_prefers_fast)
{
	unsigned count[T_MAXP] = {0}, k;
	int i;

	up_make(PT_LB_EWMA, 2, NULL, 0, 1);
	pt_now.mono_ms = T_NOW;
	/* Peer 1 answers in 1 ms, peer 0 in 50 ms. */
	for (k = 0; k < 3000; k++) {
		i = pick(NULL, 0, T_NOW, 0);
		ck_assert_int_ge(i, 0);
		count[i]++;
		pt_lb_release(&up, (unsigned)i, i == 1 ? 1000 : 50000);
	}
	ck_assert_int_eq(states[0].ewma_us, 50000);
	ck_assert_int_eq(states[1].ewma_us, 1000);
	ck_assert_uint_gt(count[1], 2990);
	/* A failure (no time) leaves the average alone. */
	i = pick(NULL, 0, T_NOW, 0);
	ck_assert_int_eq(i, 1);
	pt_lb_release(&up, 1, -1);
	ck_assert_int_eq(states[1].ewma_us, 1000);
	/* Under load the fast peer's queue sends some to the slow one:
	 * about 50 in flight on the fast one, then 1 on the slow one. */
	for (k = 0; k < 200; k++)
		(void)pick(NULL, 0, T_NOW, 0);
	ck_assert_int_ge(states[0].inflight, 2);
	ck_assert_int_le(states[0].inflight, 5);
}
END_TEST

START_TEST(test_ewma_decay)
{
	int64_t now = T_NOW + 100000;

	up_make(PT_LB_EWMA, 2, NULL, 0, 1);
	/* First sample: taken as is; later ones move it by their age. */
	states[0].inflight = 3;
	pt_now.mono_ms = T_NOW;
	pt_lb_release(&up, 0, 10000);
	ck_assert_int_eq(states[0].ewma_us, 10000);
	pt_now.mono_ms = T_NOW + 10000; /* one tau: halfway, x/(x+tau) */
	pt_lb_release(&up, 0, 20000);
	ck_assert_int_eq(states[0].ewma_us, 15000);
	/* Dense samples still move it (by 1/64 each). */
	pt_lb_release(&up, 0, 15000 + 6400);
	ck_assert_int_eq(states[0].ewma_us, 15100);
	/* Peer 0 fresh and fast, peer 1 slow a second ago: peer 0. */
	states[0].ewma_us = 1000;
	states[0].ewma_at = now;
	states[1].ewma_us = 50000;
	states[1].ewma_at = now - 1000;
	ck_assert_int_eq(pick(NULL, 0, now, 1), 0);
	/* Peer 1's slowness is old news (1000 s): it is tried again. */
	states[1].ewma_at = now - 1000000;
	ck_assert_int_eq(pick(NULL, 0, now, 1), 1);
}
END_TEST

/* ---- ip_hash ------------------------------------------------------------- */

START_TEST(test_ip_hash)
{
	unsigned char a[4], b[16];
	unsigned count[T_MAXP] = {0}, k;
	int i;

	up_make(PT_LB_IP_HASH, 2, w31, 0, 1);
	t_rng = 7;
	for (k = 0; k < 4000; k++) {
		uint64_t r = t_random();

		memcpy(a, &r, 4);
		i = pick(a, 4, T_NOW, 1);
		count[i]++;
		/* Sticky, and the same for the whole /24. */
		a[3] ^= 0xff;
		T_CHECK(pick(a, 4, T_NOW, 1) == i, "/24 moved");
	}
	assert_near(count[0], 3000, 0.10);
	assert_near(count[1], 1000, 0.10);

	/* IPv6: the /64 decides. */
	up_make(PT_LB_IP_HASH, 8, NULL, 0, 1);
	for (k = 0; k < 200; k++) {
		uint64_t r = t_random();

		memcpy(b, &r, 8);
		r = t_random();
		memcpy(b + 8, &r, 8);
		i = pick(b, 16, T_NOW, 1);
		b[15] ^= 0x5a;
		b[8] ^= 0xa5;
		T_CHECK(pick(b, 16, T_NOW, 1) == i, "/64 moved");
	}
}
END_TEST

START_TEST(test_ip_hash_fallback)
{
	unsigned char a[4];
	unsigned k, moved = 0;
	int before[500], i, j;

	up_make(PT_LB_IP_HASH, 8, NULL, 0, 1);
	t_rng = 11;
	for (k = 0; k < 500; k++) {
		uint64_t r = t_random();

		memcpy(a, &r, 4);
		before[k] = pick(a, 4, T_NOW, 1);
	}
	states[3].down_until = T_NOW + 1000;
	t_rng = 11;
	for (k = 0; k < 500; k++) {
		uint64_t r = t_random();

		memcpy(a, &r, 4);
		i = pick(a, 4, T_NOW, 1);
		j = pick(a, 4, T_NOW, 1);
		T_CHECK(i != 3, "a down peer was picked");
		T_CHECK(i == j, "the fallback is not deterministic");
		T_CHECK(before[k] == 3 || before[k] == i, "a key moved");
		moved += before[k] == 3;
	}
	ck_assert_uint_gt(moved, 20);
	/* A unix-socket client (no address) goes round robin. */
	ck_assert_int_ge(pick("", 0, T_NOW, 1), 0);
}
END_TEST

/* ---- consistent hash ----------------------------------------------------- */

static int
hash_pick(unsigned k)
{
	char key[32];
	int n = snprintf(key, sizeof(key), "/object/%u", k);

	return pick(key, (size_t)n, T_NOW, 1);
}

START_TEST(test_hash_balance_and_remap)
{
	static int before[10000];
	unsigned count[T_MAXP] = {0}, k, moved = 0;
	int i;

	up_make(PT_LB_HASH, 10, NULL, 0, 1);
	for (k = 0; k < 10000; k++) {
		before[k] = hash_pick(k);
		count[before[k]]++;
		T_CHECK(hash_pick(k) == before[k], "not sticky");
	}
	for (k = 0; k < 10; k++)
		assert_near(count[k], 1000, 0.20);

	/* Without 10.0.0.5 (peer 4): only its keys move, the others stay
	 * on the same address. 10.0.0.1-4 stay peers 0-3, 10.0.0.6-10
	 * become peers 4-8. */
	up_make(PT_LB_HASH, 9, NULL, 0, 1);
	for (k = 4; k < 9; k++)
		snprintf(addrs[k], sizeof(addrs[k]), "10.0.0.%u:80", k + 2);
	ck_assert_int_eq(pt_lb_init(&cf, &up), PT_OK);
	for (k = 0; k < 10000; k++) {
		char want[32];

		i = hash_pick(k);
		if (before[k] == 4) {
			moved++;
			continue;
		}
		snprintf(want, sizeof(want), "10.0.0.%d:80", before[k] + 1);
		T_CHECK(strcmp(addrs[i], want) == 0, "key %u moved", k);
	}
	ck_assert_uint_eq(moved, count[4]);
}
END_TEST

START_TEST(test_hash_down_and_weight)
{
	static int before[10000];
	unsigned count[T_MAXP] = {0}, k;
	int i;

	up_make(PT_LB_HASH, 10, NULL, 0, 1);
	for (k = 0; k < 10000; k++)
		before[k] = hash_pick(k);
	/* A down peer's keys spread over the others; nothing else moves. */
	states[6].down_until = T_NOW + 1;
	for (k = 0; k < 10000; k++) {
		i = hash_pick(k);
		T_CHECK(i != 6, "down peer picked");
		T_CHECK(before[k] == 6 || i == before[k], "key %u moved", k);
		if (before[k] == 6)
			count[i]++;
	}
	for (k = 0, i = 0; k < 10; k++)
		i += count[k] > 0;
	ck_assert_int_ge(i, 5);
	/* Weighted: 3:1 points, about 3:1 of the keys. */
	up_make(PT_LB_HASH, 2, w31, 0, 1);
	memset(count, 0, sizeof(count));
	for (k = 0; k < 10000; k++)
		count[hash_pick(k)]++;
	assert_near(count[0], 7500, 0.10);
}
END_TEST

/* ---- what every balancer must do ----------------------------------------- */

static const unsigned all_lb[] = {PT_LB_ROUND_ROBIN, PT_LB_LEAST_CONN,
				  PT_LB_IP_HASH,     PT_LB_HASH,
				  PT_LB_RANDOM,      PT_LB_EWMA};

START_TEST(test_tried_never_repeats)
{
	static const unsigned char ip[4] = {192, 168, 1, 1};
	struct pt_lb_ctx ctx;
	uint64_t seen;
	unsigned k;
	int i;

	up_make(all_lb[_i], 5, NULL, 0, 1);
	ctx_init(&ctx, ip, 4, T_NOW);
	for (k = 0, seen = 0; k < 5; k++) {
		i = pt_lb_pick(&ctx);
		ck_assert_int_ge(i, 0);
		ck_assert_msg(!(seen >> i & 1), "peer %d picked twice", i);
		seen |= 1ull << i;
		ck_assert_uint_eq(ctx.ntried, k + 1);
		pt_lb_release(&up, (unsigned)i, -1);
	}
	ck_assert_int_eq(pt_lb_pick(&ctx), -1);
	ck_assert_uint_eq(ctx.busy, 0);
}
END_TEST

START_TEST(test_nothing_usable)
{
	static const unsigned char ip[4] = {10, 1, 2, 3};
	struct pt_lb_ctx ctx;
	unsigned k;

	up_make(all_lb[_i], 4, NULL, 1, 1);
	for (k = 0; k < 4; k++)
		states[k].down_until = T_NOW + 1;
	states[3].checked = 1; /* the backup: down by the checks */
	ctx_init(&ctx, ip, 4, T_NOW);
	ck_assert_int_eq(pt_lb_pick(&ctx), -1);
	ck_assert_uint_eq(ctx.busy, 0);
	for (k = 0; k < 4; k++)
		ck_assert_int_eq(states[k].inflight, 0);
	/* The time passes for peer 2 only. */
	ctx.now = T_NOW + 1;
	states[0].down_until = T_NOW + 5;
	states[1].down_until = T_NOW + 5;
	ck_assert_int_eq(pt_lb_pick(&ctx), 2);
	/* Empty upstream. */
	up_make(all_lb[_i], 0, NULL, 0, 1);
	ck_assert_int_eq(pick(ip, 4, T_NOW, 1), -1);
}
END_TEST

START_TEST(test_backup)
{
	static const unsigned char ip[4] = {10, 9, 8, 7};
	struct pt_lb_ctx ctx;
	unsigned k;
	int i;

	up_make(all_lb[_i], 4, NULL, 2, 1);
	for (k = 0; k < 100; k++) {
		i = pick(ip, 4, T_NOW, 1);
		T_CHECK(i == 0 || i == 1, "backup %d while primaries live", i);
	}
	/* Primaries tried or full: no backup. */
	ctx_init(&ctx, ip, 4, T_NOW);
	ck_assert_int_lt(pt_lb_pick(&ctx), 2);
	ck_assert_int_lt(pt_lb_pick(&ctx), 2);
	ck_assert_int_eq(pt_lb_pick(&ctx), -1);
	peers[0].max_conns = 1;
	peers[1].max_conns = 1;
	ctx_init(&ctx, ip, 4, T_NOW);
	ck_assert_int_eq(pt_lb_pick(&ctx), -1);
	ck_assert_uint_eq(ctx.busy, 1);
	pt_lb_release(&up, 0, -1);
	pt_lb_release(&up, 1, -1);
	/* One primary down: the other one. */
	states[0].down_until = T_NOW + 1;
	ck_assert_int_eq(pick(ip, 4, T_NOW, 1), 1);
	/* Both down (one by checks): the backups, both of them in turn. */
	states[1].checked = 1;
	ctx_init(&ctx, ip, 4, T_NOW);
	i = pt_lb_pick(&ctx);
	ck_assert(i == 2 || i == 3);
	ck_assert_int_eq(pt_lb_pick(&ctx), 5 - i);
	ck_assert_int_eq(pt_lb_pick(&ctx), -1);
	/* The checks bring a primary back: the backups rest again. */
	states[1].check_up = 1;
	ck_assert_int_eq(pick(ip, 4, T_NOW, 1), 1);
}
END_TEST

START_TEST(test_max_conns)
{
	static const unsigned char ip[4] = {10, 9, 8, 7};
	struct pt_lb_ctx ctx;
	unsigned k, n0 = 0;
	int i;

	up_make(all_lb[_i], 2, NULL, 0, 1);
	peers[0].max_conns = 2;
	peers[1].max_conns = 3;
	for (k = 0; k < 5; k++) {
		i = pick(ip, 4, T_NOW, 0);
		ck_assert_int_ge(i, 0);
		n0 += i == 0;
	}
	ck_assert_uint_eq(n0, 2);
	ck_assert_int_eq(states[0].inflight, 2);
	ck_assert_int_eq(states[1].inflight, 3);
	ctx_init(&ctx, ip, 4, T_NOW);
	ck_assert_int_eq(pt_lb_pick(&ctx), -1);
	ck_assert_uint_eq(ctx.busy, 1);
	ck_assert_int_eq(states[0].inflight, 2);
	pt_lb_release(&up, 1, -1);
	ck_assert_int_eq(pick(ip, 4, T_NOW, 0), 1);
	/* A down peer with room does not make it "busy". */
	states[0].inflight = 0;
	states[0].down_until = T_NOW + 1;
	ctx_init(&ctx, ip, 4, T_NOW);
	ck_assert_int_eq(pt_lb_pick(&ctx), -1);
	ck_assert_uint_eq(ctx.busy, 1);
	states[1].down_until = T_NOW + 1;
	ctx_init(&ctx, ip, 4, T_NOW);
	ck_assert_int_eq(pt_lb_pick(&ctx), -1);
	ck_assert_uint_eq(ctx.busy, 0);
}
END_TEST

/* Two processes each pick the only peer (max_conns 1) 20000 times; a
 * shared counter of holders must never exceed one. */
START_TEST(test_max_conns_race)
{
	struct shared {
		struct pt_peer_state st;
		int holders, overlap;
		unsigned got[2];
	} * sh;
	pid_t pid[2];
	unsigned c, k;
	int status, i;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(sh, MAP_FAILED);
	memset(sh, 0, sizeof(*sh));
	up_make(PT_LB_ROUND_ROBIN, 1, NULL, 0, 1);
	peers[0].st = &sh->st;
	peers[0].max_conns = 1;
	for (c = 0; c < 2; c++) {
		pid[c] = fork();
		ck_assert_int_ge(pid[c], 0);
		if (pid[c] != 0)
			continue;
		for (k = 0; k < 20000; k++) {
			i = pick(NULL, 0, T_NOW, 0);
			if (i < 0)
				continue;
			if (__atomic_add_fetch(&sh->holders, 1,
					       __ATOMIC_SEQ_CST) != 1)
				__atomic_store_n(&sh->overlap, 1,
						 __ATOMIC_SEQ_CST);
			sh->got[c]++;
			__atomic_sub_fetch(&sh->holders, 1, __ATOMIC_SEQ_CST);
			pt_lb_release(&up, 0, -1);
		}
		_exit(0);
	}
	for (c = 0; c < 2; c++) {
		ck_assert_int_eq(waitpid(pid[c], &status, 0), pid[c]);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	ck_assert_int_eq(sh->overlap, 0);
	ck_assert_int_eq(sh->st.inflight, 0);
	ck_assert_uint_gt(sh->got[0] + sh->got[1], 0);
	ck_assert_uint_eq(sh->st.requests, sh->got[0] + sh->got[1]);
	munmap(sh, sizeof(*sh));
}
END_TEST

/* ---- health -------------------------------------------------------------- */

START_TEST(test_passive_health)
{
	struct pt_upstream_peer *p = &peers[0];
	int64_t t = T_NOW;

	up_make(PT_LB_ROUND_ROBIN, 2, NULL, 0, 1);
	p->max_fails = 3;
	p->fail_timeout = 10000;
	/* Two failures, then the window ends: they do not add up. */
	ck_assert_int_eq(pt_peer_failed(p, t), 0);
	ck_assert_int_eq(pt_peer_failed(p, t + 5000), 0);
	ck_assert_int_eq(pt_peer_failed(p, t + 10000), 0); /* new window */
	ck_assert_int_eq(pt_peer_live(p, t + 10000), 1);
	/* Three within one window: down, reported once. */
	ck_assert_int_eq(pt_peer_failed(p, t + 12000), 0);
	ck_assert_int_eq(pt_peer_failed(p, t + 13000), 1);
	ck_assert_int_eq(pt_peer_live(p, t + 13000), 0);
	ck_assert_int_eq(pt_peer_failed(p, t + 13001), 0);
	ck_assert_uint_eq(states[0].failures, 6);
	/* While down, picks go elsewhere; a late success revives nothing. */
	ck_assert_int_eq(pick(NULL, 0, t + 20000, 1), 1);
	ck_assert_int_eq(pick(NULL, 0, t + 20000, 1), 1);
	pt_peer_succeeded(p, t + 20000);
	ck_assert_int_eq(pt_peer_live(p, t + 23000 - 1), 0);
	/* After fail_timeout it is tried again; one failure: down again. */
	ck_assert_int_eq(pt_peer_live(p, t + 23000), 1);
	ck_assert_int_eq(pt_peer_failed(p, t + 23000), 1);
	ck_assert_int_eq(pt_peer_live(p, t + 32999), 0);
	/* Tried again and it works: fails reset, a full window again. */
	pt_peer_succeeded(p, t + 33000);
	ck_assert_uint_eq(states[0].fails, 0);
	ck_assert_int_eq(pt_peer_failed(p, t + 33000), 0);
	ck_assert_int_eq(pt_peer_failed(p, t + 33001), 0);
	ck_assert_int_eq(pt_peer_live(p, t + 33001), 1);
	/* A success in the window resets it. */
	pt_peer_succeeded(p, t + 33002);
	ck_assert_int_eq(pt_peer_failed(p, t + 33003), 0);
	ck_assert_int_eq(pt_peer_live(p, t + 33003), 1);
	/* max_fails 0: never down. */
	p = &peers[1];
	p->max_fails = 0;
	for (unsigned k = 0; k < 100; k++)
		ck_assert_int_eq(pt_peer_failed(p, t), 0);
	ck_assert_int_eq(pt_peer_live(p, t), 1);
	ck_assert_uint_eq(states[1].failures, 100);
}
END_TEST

START_TEST(test_active_health)
{
	up_make(PT_LB_ROUND_ROBIN, 2, NULL, 0, 1);
	ck_assert_int_eq(pt_peer_live(&peers[0], T_NOW), 1);
	states[0].checked = 1;
	states[0].check_up = 0;
	ck_assert_int_eq(pt_peer_live(&peers[0], T_NOW), 0);
	for (unsigned k = 0; k < 10; k++)
		ck_assert_int_eq(pick(NULL, 0, T_NOW, 1), 1);
	states[0].check_up = 1;
	ck_assert_int_eq(pt_peer_live(&peers[0], T_NOW), 1);
	/* Both verdicts needed: checks up, failures down. */
	states[0].down_until = T_NOW + 1;
	ck_assert_int_eq(pt_peer_live(&peers[0], T_NOW), 0);
}
END_TEST

START_TEST(test_slow_start)
{
	static const unsigned w[] = {10, 10};
	struct pt_upstream_peer *p = &peers[0];
	unsigned count[T_MAXP] = {0}, k;

	up_make(PT_LB_ROUND_ROBIN, 2, w, 0, 1);
	ck_assert_uint_eq(pt_peer_weight(p, T_NOW), 10); /* none set */
	p->slow_start = 10000;
	ck_assert_uint_eq(pt_peer_weight(p, T_NOW), 10); /* never down */
	states[0].live_since = T_NOW;
	ck_assert_uint_eq(pt_peer_weight(p, T_NOW - 5), 1);
	ck_assert_uint_eq(pt_peer_weight(p, T_NOW), 1);
	ck_assert_uint_eq(pt_peer_weight(p, T_NOW + 5000), 5);
	ck_assert_uint_eq(pt_peer_weight(p, T_NOW + 9999), 9);
	ck_assert_uint_eq(pt_peer_weight(p, T_NOW + 10000), 10);
	/* Picks follow the ramp: weight 1 against 10. */
	for (k = 0; k < 1100; k++)
		count[pick(NULL, 0, T_NOW, 1)]++;
	ck_assert_uint_eq(count[0], 100);
	/* Marked down by failures: the ramp starts when it comes back. */
	states[0].live_since = 0;
	ck_assert_int_eq(pt_peer_failed(p, T_NOW), 1);
	ck_assert_uint_eq(pt_peer_weight(p, T_NOW + 10000), 1);
	ck_assert_uint_eq(pt_peer_weight(p, T_NOW + 15000), 5);
	ck_assert_uint_eq(pt_peer_weight(p, T_NOW + 20000), 10);
}
END_TEST

START_TEST(test_init_limits)
{
	static struct pt_upstream_peer many[PT_LB_MAX_PEERS + 1];
	struct pt_upstream big;

	memset(&big, 0, sizeof(big));
	big.name = "big";
	big.peers = many;
	big.npeers = big.nprimary = PT_LB_MAX_PEERS + 1;
	ck_assert_int_eq(pt_lb_init(&cf, &big), PT_ERROR);
	ck_assert_uint_eq(cf.errors, 1);
}
END_TEST

static Suite *
balance_suite(void)
{
	Suite *s = suite_create("balance");
	TCase *tc = tcase_create("balance");
	unsigned n = PT_ARRAY_SIZE(all_lb);

	tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_rr_smooth_order);
	tcase_add_test(tc, test_rr_ratio);
	tcase_add_test(tc, test_least_conn_ratio);
	tcase_add_test(tc, test_least_conn_follows_inflight);
	tcase_add_test(tc, test_random_ratio);
	tcase_add_test(tc, test_random_spreads);
	tcase_add_test(tc, test_ewma_ratio);
	tcase_add_test(tc, test_ewma_prefers_fast);
	tcase_add_test(tc, test_ewma_decay);
	tcase_add_test(tc, test_ip_hash);
	tcase_add_test(tc, test_ip_hash_fallback);
	tcase_add_test(tc, test_hash_balance_and_remap);
	tcase_add_test(tc, test_hash_down_and_weight);
	tcase_add_loop_test(tc, test_tried_never_repeats, 0, (int)n);
	tcase_add_loop_test(tc, test_nothing_usable, 0, (int)n);
	tcase_add_loop_test(tc, test_backup, 0, (int)n);
	tcase_add_loop_test(tc, test_max_conns, 0, (int)n);
	tcase_add_test(tc, test_max_conns_race);
	tcase_add_test(tc, test_passive_health);
	tcase_add_test(tc, test_active_health);
	tcase_add_test(tc, test_slow_start);
	tcase_add_test(tc, test_init_limits);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return pt_unit_run(balance_suite());
}
