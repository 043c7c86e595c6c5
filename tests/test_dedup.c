/*
 * test_dedup.c - the dedup set: insert, duplicate, conflict, other
 * validator, capacity, expiry with backward-shift deletion, and the memory
 * bound of 48 bytes per tap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fastpath/fastpath.h"

#include <stdlib.h>

static struct fp_key key_of(uint64_t i)
{
	/* Spread like a hash, never zero. */
	uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull;
	return (struct fp_key){x ^ 0x5555, x};
}

static void test_new_duplicate_conflict(void **state)
{
	(void)state;
	struct fp_dedup *d = fp_dedup_create(1024);
	assert_non_null(d);
	struct fp_key k = key_of(7);
	assert_int_equal(fp_dedup_insert(d, k, 42, 1000, 1001), FP_DEDUP_NEW);
	assert_int_equal(fp_dedup_insert(d, k, 42, 1000, 1001), FP_DEDUP_DUPLICATE);
	assert_int_equal(fp_dedup_insert(d, k, 43, 1000, 1001), FP_DEDUP_CONFLICT);
	assert_int_equal(fp_dedup_insert(d, k, 42, 1000, 1002), FP_DEDUP_OTHER_VALIDATOR);
	assert_int_equal(fp_dedup_count(d), 1);
	fp_dedup_free(d);
}

static void test_capacity_and_bytes(void **state)
{
	(void)state;
	const uint64_t max = 4096;
	struct fp_dedup *d = fp_dedup_create(max);
	assert_true(fp_dedup_bytes(d) <= 48 * max);
	for (uint64_t i = 0; i < max; i++)
		assert_int_equal(fp_dedup_insert(d, key_of(i), i, 100, 1), FP_DEDUP_NEW);
	assert_int_equal(fp_dedup_insert(d, key_of(max), 0, 100, 1), FP_DEDUP_FULL);
	/* A full set still answers for what it holds. */
	for (uint64_t i = 0; i < max; i++)
		assert_int_equal(fp_dedup_insert(d, key_of(i), i, 100, 1), FP_DEDUP_DUPLICATE);
	fp_dedup_free(d);
}

/* Keys that all land in the same home slot make one long probe run. */
static void test_expire_keeps_probe_runs_intact(void **state)
{
	(void)state;
	const uint64_t max = 1024, n = 600;
	struct fp_dedup *d = fp_dedup_create(max);
	for (uint64_t i = 0; i < n; i++) {
		struct fp_key k = {i + 1, 0x10 + (i % 3)}; /* hi near 0: home slot 0 */
		assert_int_equal(fp_dedup_insert(d, k, i, (i % 2) ? 50 : 500, 1), FP_DEDUP_NEW);
	}
	uint64_t removed = 0;
	for (int round = 0; round < 4; round++)
		removed += fp_dedup_expire(d, 100, 1u << 20);
	assert_int_equal(removed, n / 2);
	assert_int_equal(fp_dedup_count(d), n / 2);
	for (uint64_t i = 0; i < n; i++) {
		struct fp_key k = {i + 1, 0x10 + (i % 3)};
		enum fp_dedup_result r = fp_dedup_insert(d, k, i, (i % 2) ? 50 : 500, 1);
		/* Survivors are still found; expired ones come back as new. */
		assert_int_equal(r, (i % 2) ? FP_DEDUP_NEW : FP_DEDUP_DUPLICATE);
	}
	fp_dedup_free(d);
}

static void test_expire_is_bounded_per_call(void **state)
{
	(void)state;
	const uint64_t max = 10000;
	struct fp_dedup *d = fp_dedup_create(max);
	for (uint64_t i = 0; i < max; i++)
		fp_dedup_insert(d, key_of(i), i, 10, 1);
	uint64_t removed = fp_dedup_expire(d, 11, 100);
	assert_true(removed <= 100);
	uint64_t total = removed;
	for (int i = 0; i < 1000 && total < max; i++)
		total += fp_dedup_expire(d, 11, 100);
	assert_int_equal(total, max);
	assert_int_equal(fp_dedup_count(d), 0);
	fp_dedup_free(d);
}

/* Random churn checked against a plain array: nothing lost, nothing invented. */
static void test_random_churn_matches_model(void **state)
{
	(void)state;
	enum { MAX = 2000, KEYS = 6000 };
	struct fp_dedup *d = fp_dedup_create(MAX);
	static uint32_t model_time[KEYS]; /* 0 = absent */
	srand(12345);
	uint32_t now = 1000;
	for (int step = 0; step < 200000; step++) {
		uint64_t k = (uint64_t)rand() % KEYS;
		now += (rand() % 16 == 0);
		uint32_t cutoff = now - 50;
		if (rand() % 64 == 0) {
			/* A call that removes nothing has looked at every slot. */
			while (fp_dedup_expire(d, cutoff, 3 * MAX) != 0)
				;
			for (int i = 0; i < KEYS; i++)
				if (model_time[i] && model_time[i] < cutoff)
					model_time[i] = 0;
		}
		enum fp_dedup_result r = fp_dedup_insert(d, key_of(k), k, now, 1);
		if (model_time[k] != 0) {
			assert_int_equal(r, FP_DEDUP_DUPLICATE);
		} else if (r == FP_DEDUP_NEW) {
			model_time[k] = now;
		} else {
			assert_int_equal(r, FP_DEDUP_FULL);
		}
	}
	fp_dedup_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_duplicate_conflict),
		cmocka_unit_test(test_capacity_and_bytes),
		cmocka_unit_test(test_expire_keeps_probe_runs_intact),
		cmocka_unit_test(test_expire_is_bounded_per_call),
		cmocka_unit_test(test_random_churn_matches_model),
	};
	return cmocka_run_group_tests_name("dedup", tests, NULL, NULL);
}
