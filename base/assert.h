/*
 * assert.h - the one header of base/: assertions for programmer errors.
 *
 * An operating error (a bad frame, a full disk, MDB_MAP_FULL) is handled and
 * counted; a programmer error - a broken invariant, a bound exceeded that
 * the code above promised could not be - is asserted and crashes, because a
 * gateway that goes on with a wrong ring index or a leg whose payers do not
 * equal its receivers loses or double-charges money silently (TigerBeetle's
 * TIGER_STYLE, HAProxy's BUG_ON, DPDK's RTE_VERIFY).
 *
 * TG_ASSERT stays on in production builds: use it everywhere but the
 * per-tap hot path. TG_ASSERT_HOT is the cheaper tier for the hot path: on
 * in `make check` (SAN=1 defines TG_DEBUG_HOT) and in any build with
 * -DTG_DEBUG_HOT, compiled out otherwise (its condition is still checked
 * for syntax, never evaluated).
 */
#ifndef TAPGATE_BASE_ASSERT_H
#define TAPGATE_BASE_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

/* Say what broke and where, then abort (a core dump, if enabled, shows the rest). */
static inline void tg_assert_fail(const char *cond, const char *file, int line, const char *func)
{
	fprintf(stderr, "tapgate: assertion failed: %s (%s:%d, %s): a programmer error; aborting\n", cond, file,
		line, func);
	fflush(stderr);
	abort();
}

#define TG_ASSERT(cond)                                                                                  \
	do {                                                                                             \
		if (__builtin_expect(!(cond), 0))                                                        \
			tg_assert_fail(#cond, __FILE__, __LINE__, __func__);                             \
	} while (0)

#ifdef TG_DEBUG_HOT
#define TG_ASSERT_HOT(cond) TG_ASSERT(cond)
#else
#define TG_ASSERT_HOT(cond)                                                                              \
	do {                                                                                             \
		(void)sizeof(!(cond));                                                                   \
	} while (0)
#endif

#endif
