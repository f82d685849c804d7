/*
 * unit.h: what every Check unit test shares: a failure-only assert for
 * hot loops, a seeded generator, and the runner.
 */
#ifndef PT_UNIT_H
#define PT_UNIT_H

#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#define T_UNUSED __attribute__((unused))

/*
 * Check records every passed ck_assert (a write to its pipe): loops that
 * check thousands of values only call it on a failure.
 */
#define T_CHECK(cond, ...)                         \
	do {                                       \
		if (!(cond))                       \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

/* Deterministic pseudo-random numbers (xorshift64*): set t_rng to seed. */
static uint64_t t_rng T_UNUSED = 0x9e3779b97f4a7c15ull;

T_UNUSED static uint64_t
t_random(void)
{
	t_rng ^= t_rng >> 12;
	t_rng ^= t_rng << 25;
	t_rng ^= t_rng >> 27;
	return t_rng * 2685821657736338717ull;
}

/* Run a suite: the exit status for main(). */
T_UNUSED static int
pt_unit_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
