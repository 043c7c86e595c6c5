/*
 * test_deny.c - the deny list's read side (deny/deny.h) against a store laid
 * out as settle/ writes it: no store yet, an empty list, the changes after a
 * version in order, a walk that stops early, the version key's byte order,
 * and a store without the change log (an error with the path named).
 *
 * The store is written here with raw LMDB calls: it stands for tapsettle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "deny/deny.h"
#include "tests/tmpdir.h"

#include <lmdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Write a settle store whose list has had n changes: change v adds (odd v) or removes token 100 + v. */
static void store_write(uint32_t n, bool with_log)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi meta, log;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0640), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, DENY_DBI_META, MDB_CREATE, &meta), 0);
	if (with_log) {
		assert_int_equal(mdb_dbi_open(txn, DENY_DBI_LOG, MDB_CREATE, &log), 0);
		for (uint32_t v = 1; v <= n; v++) {
			uint8_t key[DENY_VERSION_KEY_BYTES];
			deny_version_key(key, v);
			struct deny_change ch = {.token = 100 + v, .medium = 2 + v % 2, .added = v % 2};
			MDB_val k = {sizeof(key), key}, val = {sizeof(ch), &ch};
			assert_int_equal(mdb_put(txn, log, &k, &val, 0), 0);
		}
		MDB_val k = {strlen(DENY_META_VERSION), DENY_META_VERSION}, val = {sizeof(n), &n};
		assert_int_equal(mdb_put(txn, meta, &k, &val, 0), 0);
	}
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

struct seen {
	uint32_t versions[16];
	unsigned n, stop_after;
};

static int on_change(void *arg, uint32_t version, const struct deny_change *ch)
{
	struct seen *s = arg;
	assert_true(s->n < 16);
	assert_int_equal(ch->token, 100 + version);
	assert_int_equal(ch->added, version % 2);
	s->versions[s->n++] = version;
	return s->stop_after != 0 && s->n == s->stop_after;
}

static void test_no_store(void **state)
{
	(void)state;
	struct deny_reader *r;
	char err[600] = "";
	assert_int_equal(deny_reader_open(&r, dir, err, sizeof(err)), DENY_ERR_ABSENT);
	assert_string_equal(err, ""); /* absent is not an error to report */
}

static void test_changes_since(void **state)
{
	(void)state;
	store_write(5, true);
	struct deny_reader *r;
	char err[600];
	assert_int_equal(deny_reader_open(&r, dir, err, sizeof(err)), 0);
	struct seen s = {0};
	uint32_t version = 0;
	assert_int_equal(deny_reader_changes(r, 2, on_change, &s, &version, err, sizeof(err)), 0);
	assert_int_equal(version, 5);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.versions[0], 3);
	assert_int_equal(s.versions[2], 5);
	s = (struct seen){.stop_after = 2}; /* fn's non-zero return stops the walk */
	assert_int_equal(deny_reader_changes(r, 0, on_change, &s, &version, err, sizeof(err)), 0);
	assert_int_equal(s.n, 2);
	s = (struct seen){0}; /* nothing after the current version */
	assert_int_equal(deny_reader_changes(r, 5, on_change, &s, &version, err, sizeof(err)), 0);
	assert_int_equal(s.n, 0);
	deny_reader_close(r);
}

static void test_version_key_order(void **state)
{
	(void)state;
	uint8_t k[DENY_VERSION_KEY_BYTES];
	deny_version_key(k, 0x01020304u);
	assert_int_equal(k[0], 1); /* big-endian: LMDB's byte order is the versions' order */
	assert_int_equal(k[3], 4);
	assert_int_equal(deny_version_of_key(k), 0x01020304u);
}

static void test_store_without_log(void **state)
{
	(void)state;
	store_write(0, false);
	struct deny_reader *r;
	char err[600];
	assert_int_equal(deny_reader_open(&r, dir, err, sizeof(err)), DENY_ERR_STORE);
	assert_non_null(strstr(err, dir));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changes_since, setup, teardown),
		cmocka_unit_test(test_version_key_order),
		cmocka_unit_test_setup_teardown(test_store_without_log, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
