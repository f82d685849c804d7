/*
 * test_pool.c: unit tests of src/pool.c, the arenas and the block free
 * list behind them.
 *
 * The file under test is included (h2o style) to reach the free list's
 * count and the size limits; libportier.a's pool.o is then not linked. Every
 * test starts and ends with an empty free list, so the tests do not depend
 * on each other when Check runs them in one process (CK_FORK=no, as under
 * valgrind). Random sizes come from a fixed seed.
 *
 * Run under valgrind to prove there is no leak:
 *   CK_FORK=no valgrind --leak-check=full --error-exitcode=1 t/unit/test_pool
 */
#include "../../src/pool.c"

#include <check.h>

#include "unit.h"

static void
t_setup(void)
{
	t_rng = 0x243F6A8885A308D3ull;
	pt_block_trim();
}

static void
t_teardown(void)
{
	pt_block_trim();
	ck_assert_uint_eq(pool_nfree, 0);
}

/* ---- allocation ------------------------------------------------------------
 */

struct t_chunk {
	unsigned char *p;
	size_t size;
	unsigned char fill;
};

/* Random sizes, small and large: aligned, disjoint, and intact at the end. */
START_TEST(test_alloc_aligned_disjoint)
{
	struct t_chunk c[2000];
	struct pt_pool *p = pt_pool_create();

	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < PT_ARRAY_SIZE(c); i++) {
		uint64_t r = t_random();
		int kind = (int)(r % 3);

		/* mostly small, now and then above the large threshold */
		c[i].size = (r >> 8) % 64 == 0
				    ? POOL_LARGE + 1 + (r >> 16) % 8192
				    : 1 + (r >> 16) % POOL_LARGE;
		c[i].fill = (unsigned char)(i * 7 + 1);
		c[i].p = kind == 0   ? pt_palloc(p, c[i].size)
			 : kind == 1 ? pt_pcalloc(p, c[i].size)
				     : pt_pnalloc(p, c[i].size);
		T_CHECK(c[i].p != NULL, "allocation %zu failed", i);
		T_CHECK(kind == 2 || ((uintptr_t)c[i].p & 15) == 0,
			"allocation %zu of %zu bytes at %p", i, c[i].size,
			(void *)c[i].p);
		for (size_t j = 0; kind == 1 && j < c[i].size; j++)
			T_CHECK(c[i].p[j] == 0, "pcalloc %zu: byte %zu set", i,
				j);
		memset(c[i].p, c[i].fill, c[i].size);
	}
	for (size_t i = 0; i < PT_ARRAY_SIZE(c); i++)
		for (size_t j = 0; j < c[i].size; j++)
			T_CHECK(c[i].p[j] == c[i].fill,
				"allocation %zu overwritten at byte %zu", i, j);
	pt_pool_destroy(p);
}
END_TEST

/* Text allocations are packed; aligned ones skip to the next 16. */
START_TEST(test_alloc_packing)
{
	struct pt_pool *p = pt_pool_create();
	char *a, *b, *c;

	a = pt_pnalloc(p, 3);
	b = pt_pnalloc(p, 5);
	ck_assert_ptr_eq(b, a + 3);
	c = pt_palloc(p, 1);
	ck_assert_ptr_eq(c, (char *)PT_ALIGN((uintptr_t)(b + 5), 16));
	/* zero bytes is a valid request and returns usable pointers */
	ck_assert_ptr_nonnull(pt_palloc(p, 0));
	ck_assert_ptr_nonnull(pt_pnalloc(p, 0));
	/* a block is filled before the next one is taken */
	ck_assert_uint_eq(pt_pool_size(p), PT_POOL_BLOCK);
	pt_pool_destroy(p);
}
END_TEST

START_TEST(test_strings)
{
	struct pt_pool *p = pt_pool_create();
	char big[3000];
	char *s;

	ck_assert_str_eq(pt_pstrdup(p, "hello"), "hello");
	ck_assert_str_eq(pt_pstrdup(p, ""), "");
	s = pt_pstrndup(p, "abcdef", 3);
	ck_assert_str_eq(s, "abc");
	ck_assert_str_eq(pt_psprintf(p, "%s-%d-%05.1f", "x", 42, 3.25),
			 "x-42-003.2");
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	s = pt_psprintf(p, "<%s>", big);
	ck_assert_uint_eq(strlen(s), sizeof(big) + 1);
	ck_assert_int_eq(s[0], '<');
	ck_assert_int_eq(s[sizeof(big)], '>');
	s = pt_pstrdup(p, big);
	ck_assert_str_eq(s, big);
	pt_pool_destroy(p);
}
END_TEST

/* ---- large allocations -------------------------------------------------- */

START_TEST(test_large)
{
	struct pt_pool *p = pt_pool_create();
	size_t base = pt_pool_size(p),
	       hdr = PT_ALIGN(sizeof(struct pool_large), 16);
	unsigned char *a, *b, *small;

	ck_assert_uint_eq(base, PT_POOL_BLOCK);
	/* the threshold itself stays in the block, one more goes out */
	small = pt_palloc(p, POOL_LARGE);
	ck_assert_ptr_nonnull(small);
	ck_assert_uint_eq(pt_pool_size(p), base);
	a = pt_palloc(p, POOL_LARGE + 1);
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(((uintptr_t)a & 15), 0);
	ck_assert_uint_eq(pt_pool_size(p), base + hdr + POOL_LARGE + 1);
	b = pt_pcalloc(p, 1 << 20);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(((uintptr_t)b & 15), 0);
	ck_assert_uint_eq(b[0] | b[(1 << 20) - 1], 0);
	memset(b, 0xab, 1 << 20);
	memset(a, 0xcd, POOL_LARGE + 1);
	ck_assert_uint_eq(pt_pool_size(p),
			  base + 2 * hdr + POOL_LARGE + 1 + (1 << 20));
	/* a large allocation does not take room from the current block */
	ck_assert_ptr_eq(pt_pnalloc(p, 1), small + POOL_LARGE);
	/* sizes that overflow with the header fail cleanly */
	ck_assert_ptr_null(pt_palloc(p, SIZE_MAX));
	ck_assert_ptr_null(pt_palloc(p, SIZE_MAX - hdr + 1));
	ck_assert_ptr_null(pt_pnalloc(p, SIZE_MAX - 1));
	/* reset frees them (valgrind: no leak, no use after) */
	pt_pool_reset(p);
	ck_assert_uint_eq(pt_pool_size(p), base);
	ck_assert_ptr_null(p->large);
	a = pt_palloc(p, 10000);
	memset(a, 1, 10000);
	pt_pool_destroy(p);
}
END_TEST

/* ---- reset and size ------------------------------------------------------ */

START_TEST(test_reset_reuse)
{
	struct pt_pool *p = pt_pool_create();
	char *first, *again;
	size_t blocks;

	first = pt_palloc(p, 100);
	/* fill several blocks */
	for (int i = 0; i < 100; i++)
		ck_assert_ptr_nonnull(pt_palloc(p, 1000));
	blocks = pt_pool_size(p) / PT_POOL_BLOCK;
	ck_assert_uint_ge(blocks, 100 * 1000 / PT_POOL_BLOCK);
	ck_assert_uint_eq(pool_nfree, 0);
	pt_pool_reset(p);
	/* every block but the first went back to the free list */
	ck_assert_uint_eq(pool_nfree, blocks - 1);
	ck_assert_uint_eq(pt_pool_size(p), PT_POOL_BLOCK);
	ck_assert_ptr_eq(p->current, &p->first);
	/* the first allocation lands where it did before */
	again = pt_palloc(p, 100);
	ck_assert_ptr_eq(again, first);
	/* growing again takes the cached blocks, not malloc */
	for (int i = 0; i < 100; i++)
		ck_assert_ptr_nonnull(pt_palloc(p, 1000));
	ck_assert_uint_eq(pool_nfree, 0);
	ck_assert_uint_eq(pt_pool_size(p) / PT_POOL_BLOCK, blocks);
	pt_pool_destroy(p);
	ck_assert_uint_eq(pool_nfree, blocks);
	/* and a new pool starts from a cached block */
	p = pt_pool_create();
	ck_assert_uint_eq(pool_nfree, blocks - 1);
	pt_pool_destroy(p);
}
END_TEST

START_TEST(test_pool_size)
{
	struct pt_pool *p = pt_pool_create();
	size_t before;

	ck_assert_uint_eq(pt_pool_size(p), PT_POOL_BLOCK);
	/* three quarter-block allocations fit after the pool header, a
	 * fourth does not: it starts the second block, the fifth joins it */
	for (int i = 0; i < 3; i++)
		pt_pnalloc(p, POOL_LARGE);
	ck_assert_uint_eq(pt_pool_size(p), PT_POOL_BLOCK);
	pt_pnalloc(p, POOL_LARGE);
	pt_pnalloc(p, POOL_LARGE);
	ck_assert_uint_eq(pt_pool_size(p), 2 * PT_POOL_BLOCK);
	before = pt_pool_size(p);
	pt_pnalloc(p, 5000);
	ck_assert_uint_eq(pt_pool_size(p),
			  before + 5000 +
				  PT_ALIGN(sizeof(struct pool_large), 16));
	pt_pool_destroy(p);
}
END_TEST

/* Allocations of two pools used in turn never overlap. */
START_TEST(test_two_pools)
{
	struct pt_pool *a = pt_pool_create(), *b = pt_pool_create();
	unsigned char *pa[500], *pb[500];

	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 500; i++) {
			size_t n = 1 + t_random() % 200;
			pa[i] = pt_palloc(a, 200);
			pb[i] = pt_pnalloc(b, n);
			memset(pa[i], 'a', 200);
			memset(pb[i], 'b', n);
			pb[i][0] = (unsigned char)i;
		}
		for (int i = 0; i < 500; i++) {
			T_CHECK(pb[i][0] == (unsigned char)i,
				"b[%d] overwritten", i);
			for (int j = 0; j < 200; j++)
				T_CHECK(pa[i][j] == 'a', "a[%d] overwritten",
					i);
		}
		/* b's blocks go back and a takes them over */
		pt_pool_reset(b);
	}
	pt_pool_destroy(a);
	pt_pool_destroy(b);
	pt_pool_destroy(NULL);
}
END_TEST

/* ---- cleanups -------------------------------------------------------------
 */

struct t_log {
	char order[64];
	size_t n;
};

struct t_cleanup {
	struct t_log *log;
	char name;
	const char *pool_text; /* pool memory, still readable in the cleanup */
};

static void
t_cleanup_fn(void *data)
{
	struct t_cleanup *c = data;

	ck_assert_str_eq(c->pool_text, "still here");
	c->log->order[c->log->n++] = c->name;
	c->log->order[c->log->n] = '\0';
}

static void
t_add_cleanups(struct pt_pool *p, struct t_log *log, const char *names)
{
	for (const char *n = names; *n; n++) {
		struct t_cleanup *c = pt_palloc(p, sizeof(*c));
		ck_assert_ptr_nonnull(c);
		c->log = log;
		c->name = *n;
		/* some in the first block, some far away in later ones and
		 * in large allocations */
		c->pool_text = pt_pstrdup(p, "still here");
		pt_palloc(p, (size_t)(n - names) * 900);
		ck_assert_int_eq(pt_pool_cleanup_add(p, t_cleanup_fn, c),
				 PT_OK);
	}
}

START_TEST(test_cleanups_lifo)
{
	struct t_log log = { "", 0 };
	struct pt_pool *p = pt_pool_create();

	t_add_cleanups(p, &log, "abcde");
	ck_assert_str_eq(log.order, "");
	pt_pool_reset(p);
	ck_assert_str_eq(log.order, "edcba");
	/* a reset pool has no cleanups left: none runs twice */
	log.n = 0;
	log.order[0] = '\0';
	pt_pool_reset(p);
	ck_assert_str_eq(log.order, "");
	t_add_cleanups(p, &log, "xyz");
	pt_pool_destroy(p);
	ck_assert_str_eq(log.order, "zyx");
}
END_TEST

/* A cleanup that closes a descriptor: the classic use. */
static void
t_count(void *data)
{
	(*(int *)data)++;
}

START_TEST(test_cleanups_many)
{
	struct pt_pool *p = pt_pool_create();
	int n = 0;

	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(pt_pool_cleanup_add(p, t_count, &n), PT_OK);
	pt_pool_destroy(p);
	ck_assert_int_eq(n, 1000);
}
END_TEST

/* ---- the block free list ------------------------------------------------ */

START_TEST(test_blocks)
{
	void *a, *b, *c, *blocks[POOL_FREE_MAX + 10];

	ck_assert_uint_eq(pool_nfree, 0);
	a = pt_block_get();
	b = pt_block_get();
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_ne(a, b);
	memset(a, 1, PT_POOL_BLOCK);
	memset(b, 2, PT_POOL_BLOCK);
	pt_block_put(a);
	pt_block_put(b);
	pt_block_put(NULL);
	ck_assert_uint_eq(pool_nfree, 2);
	/* LIFO: the most recently returned (cache-warm) block comes first */
	c = pt_block_get();
	ck_assert_ptr_eq(c, b);
	ck_assert_ptr_eq(pt_block_get(), a);
	ck_assert_uint_eq(pool_nfree, 0);
	pt_block_put(a);
	pt_block_put(b);
	pt_block_trim();
	ck_assert_uint_eq(pool_nfree, 0);
	ck_assert_ptr_null(pool_free);

	/* the cache is capped: blocks beyond it go back to the system */
	for (size_t i = 0; i < PT_ARRAY_SIZE(blocks); i++) {
		blocks[i] = pt_block_get();
		ck_assert_ptr_nonnull(blocks[i]);
	}
	for (size_t i = 0; i < PT_ARRAY_SIZE(blocks); i++)
		pt_block_put(blocks[i]);
	ck_assert_uint_eq(pool_nfree, POOL_FREE_MAX);
	/* every cached block is distinct and usable */
	for (size_t i = 0; i < POOL_FREE_MAX; i++) {
		blocks[i] = pt_block_get();
		memset(blocks[i], (int)i, PT_POOL_BLOCK);
	}
	ck_assert_uint_eq(pool_nfree, 0);
	for (size_t i = 0; i < POOL_FREE_MAX; i++)
		T_CHECK(((unsigned char *)blocks[i])[PT_POOL_BLOCK - 1] ==
				(unsigned char)i,
			"cached block %zu shared", i);
	for (size_t i = 0; i < POOL_FREE_MAX; i++)
		pt_block_put(blocks[i]);
}
END_TEST

static Suite *
t_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("all");

	tcase_add_checked_fixture(tc, t_setup, t_teardown);
	tcase_add_test(tc, test_alloc_aligned_disjoint);
	tcase_add_test(tc, test_alloc_packing);
	tcase_add_test(tc, test_strings);
	tcase_add_test(tc, test_large);
	tcase_add_test(tc, test_reset_reuse);
	tcase_add_test(tc, test_pool_size);
	tcase_add_test(tc, test_two_pools);
	tcase_add_test(tc, test_cleanups_lifo);
	tcase_add_test(tc, test_cleanups_many);
	tcase_add_test(tc, test_blocks);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return pt_unit_run(t_suite());
}
