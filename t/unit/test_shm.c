/*
 * test_shm.c: the shared memory slab allocator and its robust lock.
 *
 * The allocator is driven by a seeded random sequence against a shadow
 * list of live blocks: blocks never overlap, their contents survive other
 * operations, and when everything is freed every page is free again in
 * one run (coalescing works). The lock is tested across fork(): a child
 * that dies holding it does not wedge the parent.
 */
#include "core.h"
#include "shm.h"

#include <check.h>

#include "unit.h"
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define ZONE_SIZE (1024 * 1024)

static struct pt_shm_zone zone;

static void
zone_setup(void)
{
	void *m = mmap(NULL, ZONE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(m, MAP_FAILED);
	ck_assert_int_eq(pt_shm_format(m, ZONE_SIZE), PT_OK);
	zone.name = "test";
	zone.size = ZONE_SIZE;
	zone.addr = m;
}

static void
zone_teardown(void)
{
	munmap(zone.addr, ZONE_SIZE);
}


struct live {
	unsigned char *p;
	size_t size;
	unsigned char fill;
};

START_TEST(test_small_and_large)
{
	struct pt_shm_stats st;
	void *a = pt_shm_alloc(&zone, 1), *b = pt_shm_alloc(&zone, 16);
	void *c = pt_shm_alloc(&zone, 2049), *d = pt_shm_alloc(&zone, 100000);

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq((uintptr_t)a % 16, 0);
	ck_assert_uint_eq((uintptr_t)c % 4096, 0);
	ck_assert_uint_eq((uintptr_t)d % 4096, 0);
	memset(d, 0xab, 100000);
	pt_shm_free(&zone, a);
	pt_shm_free(&zone, b);
	pt_shm_free(&zone, c);
	pt_shm_free(&zone, d);
	pt_shm_stats(&zone, &st);
	ck_assert_uint_eq(st.free_pages, st.pages);
	ck_assert_uint_eq(st.used_bytes, 0);
	ck_assert_uint_eq(st.allocs, 4);
	ck_assert_uint_eq(st.frees, 4);
}
END_TEST

START_TEST(test_exhaustion)
{
	struct pt_shm_stats st;
	void *blocks[4096];
	unsigned n = 0;

	/* fill with 2 KiB objects until the zone says no */
	while (n < 4096 && (blocks[n] = pt_shm_alloc(&zone, 2048)) != NULL)
		n++;
	ck_assert_uint_lt(n, 4096);
	pt_shm_stats(&zone, &st);
	ck_assert_uint_eq(st.free_pages, 0);
	ck_assert_uint_eq(st.failures, 1);
	ck_assert_uint_eq(n, st.pages * 2);
	/* a large allocation fails too; freeing one page makes room */
	ck_assert_ptr_null(pt_shm_alloc(&zone, 5000));
	pt_shm_free(&zone, blocks[0]);
	pt_shm_free(&zone, blocks[1]);
	ck_assert_ptr_nonnull(pt_shm_alloc(&zone, 4096));
}
END_TEST

/* A size whose page count overflows when rounded up must fail, not
 * hand out a page that stays on the free list. */
START_TEST(test_huge_size)
{
	struct pt_shm_stats st;
	size_t sizes[] = { SIZE_MAX, SIZE_MAX - 4095, SIZE_MAX / 2,
			   (size_t)UINT32_MAX * 4096 + 1, ZONE_SIZE + 1 };

	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		ck_assert_ptr_null(pt_shm_alloc(&zone, sizes[i]));
	pt_shm_stats(&zone, &st);
	ck_assert_uint_eq(st.free_pages, st.pages);
	ck_assert_uint_eq(st.used_bytes, 0);
	ck_assert_uint_eq(st.failures, sizeof(sizes) / sizeof(sizes[0]));
}
END_TEST

static int
overlaps(const struct live *a, const struct live *b)
{
	return a->p < b->p + b->size && b->p < a->p + a->size;
}

START_TEST(test_random_against_shadow)
{
	static struct live live[2000];
	unsigned nlive = 0;
	struct pt_shm_stats st;

	for (unsigned step = 0; step < 30000; step++) {
		if (nlive > 0 && (nlive == 2000 || t_random() % 100 < 45)) {
			unsigned k = (unsigned)(t_random() % nlive);
			struct live *l = &live[k];
			size_t bad = 0;
			/* one assert per block: Check reports every assert
			 * through a pipe, which is slow in a hot loop */
			for (size_t i = 0; i < l->size; i++)
				bad += l->p[i] != l->fill;
			ck_assert_uint_eq(bad, 0);
			pt_shm_free(&zone, l->p);
			live[k] = live[--nlive];
			continue;
		}
		size_t size = t_random() % 100 < 90
				      ? 1 + t_random() % 2048
				      : 2049 + t_random() % 20000;
		unsigned char *p = pt_shm_alloc(&zone, size);
		if (p == NULL)
			continue; /* full: fine, frees will follow */
		struct live nl = { p, size, (unsigned char)t_random() };
		unsigned clash = 0;
		for (unsigned j = 0; j < nlive; j++)
			clash += overlaps(&nl, &live[j]);
		ck_assert_uint_eq(clash, 0);
		memset(p, nl.fill, size);
		live[nlive++] = nl;
	}
	while (nlive > 0)
		pt_shm_free(&zone, live[--nlive].p);
	pt_shm_stats(&zone, &st);
	ck_assert_uint_eq(st.free_pages, st.pages);
	ck_assert_uint_eq(st.used_bytes, 0);
	/* coalesced back into one run: the whole zone can be taken at once */
	void *all = pt_shm_alloc(&zone, st.pages * 4096);
	ck_assert_ptr_nonnull(all);
	pt_shm_free(&zone, all);
}
END_TEST

START_TEST(test_shared_across_fork)
{
	int *counter = pt_shm_calloc(&zone, sizeof(int));
	pid_t pids[4];

	ck_assert_ptr_nonnull(counter);
	*pt_shm_user(&zone) = counter;
	for (int i = 0; i < 4; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			for (int k = 0; k < 2000; k++) {
				if (pt_shm_lock(&zone) == PT_ERROR)
					_exit(1);
				(*(int *)*pt_shm_user(&zone))++;
				pt_shm_unlock(&zone);
			}
			_exit(0);
		}
	}
	for (int i = 0; i < 4; i++) {
		int status;
		waitpid(pids[i], &status, 0);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	ck_assert_int_eq(*counter, 8000);
}
END_TEST

START_TEST(test_robust_lock)
{
	int pipefd[2], status;
	char c;
	pid_t pid;

	ck_assert_int_eq(pipe(pipefd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		pt_shm_lock(&zone);
		if (write(pipefd[1], "x", 1) != 1)
			_exit(1);
		kill(getpid(), SIGKILL); /* die holding the lock */
		_exit(1);
	}
	ck_assert_int_eq(read(pipefd[0], &c, 1), 1);
	waitpid(pid, &status, 0);
	ck_assert(WIFSIGNALED(status));
	/* the lock is not wedged: recovered once, then normal */
	ck_assert_int_eq(pt_shm_lock(&zone), PT_SHM_RECOVERED);
	pt_shm_unlock(&zone);
	ck_assert_int_eq(pt_shm_lock(&zone), PT_OK);
	pt_shm_unlock(&zone);
	ck_assert_ptr_nonnull(pt_shm_alloc(&zone, 64));
	close(pipefd[0]);
	close(pipefd[1]);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("shm");
	TCase *tc = tcase_create("zone");

	tcase_add_checked_fixture(tc, zone_setup, zone_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_small_and_large);
	tcase_add_test(tc, test_exhaustion);
	tcase_add_test(tc, test_huge_size);
	tcase_add_test(tc, test_random_against_shadow);
	tcase_add_test(tc, test_shared_across_fork);
	tcase_add_test(tc, test_robust_lock);
	suite_add_tcase(s, tc);
	return pt_unit_run(s);
}
