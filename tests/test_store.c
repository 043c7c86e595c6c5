/*
 * test_store.c - the LMDB store: append and reopen, the append-only rule,
 * chunked scans both ways across read-transaction boundaries, quarantine,
 * validator state, schema version, map growth after MDB_MAP_FULL, and
 * read-only opens beside a writer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store/store.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/tapgate-test-store-XXXXXX");
	return mkdtemp(dir) == NULL;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static struct st_env *open_store(uint64_t map_bytes, bool read_only)
{
	struct st_env *env = NULL;
	struct st_options o = {.path = dir, .map_size_bytes = map_bytes, .sync = ST_SYNC_NONE, .read_only = read_only};
	assert_int_equal(st_env_open(&env, &o), 0);
	return env;
}

static struct st_tap_meta meta_of(uint64_t seq)
{
	return (struct st_tap_meta){.recv_time_us = 1000 + seq, .id_lo = seq, .id_hi = ~seq,
				    .content_hash = seq * 3, .validator_id = 1001, .record_len = 38};
}

static void record_of(uint64_t seq, uint8_t rec[38])
{
	for (unsigned i = 0; i < 38; i++)
		rec[i] = (uint8_t)(seq + i);
}

/* Append seqs [from, to] in transactions of batch records. */
static int append_range(struct st_env *env, uint64_t from, uint64_t to, uint64_t batch)
{
	uint8_t rec[38];
	for (uint64_t seq = from; seq <= to;) {
		struct st_wtxn *t;
		int rc = st_wtxn_begin(env, &t);
		if (rc != 0)
			return rc;
		for (uint64_t i = 0; i < batch && seq <= to; i++, seq++) {
			struct st_tap_meta m = meta_of(seq);
			record_of(seq, rec);
			if ((rc = st_log_append(t, seq, &m, rec)) != 0) {
				st_wtxn_abort(t);
				return rc;
			}
		}
		if ((rc = st_wtxn_commit(t)) != 0)
			return rc;
	}
	return 0;
}

struct scan_check {
	uint64_t expect_next;
	int step;
	uint64_t seen, stop_after;
};

static int scan_visit(void *arg, uint64_t seq, const struct st_tap_meta *m, const uint8_t *rec)
{
	struct scan_check *c = arg;
	uint8_t want[38];
	record_of(seq, want);
	if (seq != c->expect_next || m->id_lo != seq || m->record_len != 38 || memcmp(rec, want, 38) != 0)
		fail_msg("scan: seq %llu, expected %llu, or its content is wrong", (unsigned long long)seq,
			 (unsigned long long)c->expect_next);
	c->expect_next += (uint64_t)(int64_t)c->step;
	c->seen++;
	return c->stop_after && c->seen == c->stop_after;
}

static void test_append_reopen_scan(void **state)
{
	(void)state;
	const uint64_t n = 2 * ST_READ_CHUNK + 123;
	struct st_env *env = open_store(64 << 20, false);
	uint64_t next;
	assert_int_equal(st_log_next_seq(env, &next), 0);
	assert_int_equal(next, 1);
	assert_int_equal(append_range(env, 1, n, 1000), 0);
	st_env_close(env);

	env = open_store(64 << 20, false);
	assert_int_equal(st_log_next_seq(env, &next), 0);
	assert_int_equal(next, n + 1);
	struct scan_check fwd = {.expect_next = 1, .step = 1};
	assert_int_equal(st_log_scan(env, 1, false, scan_visit, &fwd), 0);
	assert_int_equal(fwd.seen, n);
	struct scan_check back = {.expect_next = n, .step = -1};
	assert_int_equal(st_log_scan(env, UINT64_MAX, true, scan_visit, &back), 0);
	assert_int_equal(back.seen, n);
	/* From the middle, and stopping early. */
	struct scan_check mid = {.expect_next = ST_READ_CHUNK + 5, .step = -1, .stop_after = ST_READ_CHUNK + 2};
	assert_int_equal(st_log_scan(env, ST_READ_CHUNK + 5, true, scan_visit, &mid), 0);
	assert_int_equal(mid.seen, ST_READ_CHUNK + 2);
	struct st_counts c;
	assert_int_equal(st_counts(env, &c), 0);
	assert_int_equal(c.log_taps, n);
	assert_int_equal(c.last_seq, n);
	st_env_close(env);
}

static void test_append_only(void **state)
{
	(void)state;
	struct st_env *env = open_store(64 << 20, false);
	uint64_t next;
	assert_int_equal(st_log_next_seq(env, &next), 0);
	assert_int_equal(append_range(env, next, next + 9, 10), 0);
	/* A sequence at or below the last is refused: the log never changes its past. */
	assert_int_equal(append_range(env, next + 5, next + 5, 1), ST_ERR_INVALID);
	struct st_wtxn *t;
	struct st_tap_meta m = meta_of(next + 100);
	m.record_len = ST_RECORD_BYTES_MAX + 1;
	uint8_t big[ST_RECORD_BYTES_MAX + 1] = {0};
	assert_int_equal(st_wtxn_begin(env, &t), 0);
	assert_int_equal(st_log_append(t, next + 100, &m, big), ST_ERR_INVALID);
	st_wtxn_abort(t);
	st_env_close(env);
}

static int count_visit(void *arg, uint64_t seq, const struct st_tap_meta *m, const uint8_t *rec)
{
	(void)seq, (void)m, (void)rec;
	(*(uint64_t *)arg)++;
	return 0;
}

static int validator_visit(void *arg, const struct st_validator_state *v)
{
	struct st_validator_state *out = arg;
	*out = *v;
	return 0;
}

static void test_quarantine_and_validators(void **state)
{
	(void)state;
	struct st_env *env = open_store(64 << 20, false);
	struct st_wtxn *t;
	struct st_tap_meta m = meta_of(7);
	uint8_t rec[38];
	record_of(7, rec);
	assert_int_equal(st_wtxn_begin(env, &t), 0);
	assert_int_equal(st_quarantine_put(t, &m, rec), 0);
	assert_int_equal(st_quarantine_put(t, &m, rec), ST_ERR_EXISTS);
	m.content_hash++;
	assert_int_equal(st_quarantine_put(t, &m, rec), 0);
	struct st_validator_state v = {.validator_id = 1001, .last_frame_seq = 99, .taps_stored = 5};
	assert_int_equal(st_validator_put(t, &v), 0);
	v.taps_stored = 6; /* an update replaces */
	assert_int_equal(st_validator_put(t, &v), 0);
	assert_int_equal(st_wtxn_commit(t), 0);
	uint64_t q = 0;
	assert_int_equal(st_quarantine_scan(env, count_visit, &q), 0);
	assert_int_equal(q, 2);
	struct st_validator_state back = {0};
	assert_int_equal(st_validator_scan(env, validator_visit, &back), 0);
	assert_int_equal(back.validator_id, 1001);
	assert_int_equal(back.taps_stored, 6);
	st_env_close(env);
}

static void test_map_full_then_grow(void **state)
{
	(void)state;
	char sub[96];
	snprintf(sub, sizeof(sub), "%s/tiny", dir);
	struct st_env *env;
	struct st_options o = {.path = sub, .map_size_bytes = 256 << 10, .sync = ST_SYNC_NONE};
	assert_int_equal(st_env_open(&env, &o), 0);
	uint64_t seq = 1, grows = 0;
	while (seq <= 20000) {
		uint64_t to = seq + 499;
		int rc = append_range(env, seq, to, 500);
		if (rc == ST_ERR_MAP_FULL) { /* the batch is gone: grow and redo it */
			uint64_t before = st_env_map_size(env);
			assert_int_equal(st_env_grow(env), 0);
			assert_true(st_env_map_size(env) > before);
			grows++;
			continue;
		}
		assert_int_equal(rc, 0);
		seq = to + 1;
	}
	assert_true(grows >= 2);
	struct scan_check all = {.expect_next = 1, .step = 1};
	assert_int_equal(st_log_scan(env, 1, false, scan_visit, &all), 0);
	assert_int_equal(all.seen, 20000);
	st_env_close(env);
}

static void test_read_only_beside_writer_and_schema(void **state)
{
	(void)state;
	struct st_env *w = open_store(64 << 20, false);
	uint64_t next;
	assert_int_equal(st_log_next_seq(w, &next), 0);
	assert_int_equal(append_range(w, next, next + 99, 50), 0);
	struct st_env *r = open_store(0, true);
	uint64_t seen = 0;
	assert_int_equal(st_log_scan(r, 1, false, count_visit, &seen), 0);
	assert_int_equal(seen, next + 99);
	st_env_close(r);
	st_env_close(w);

	/* A store of another schema version is refused, not misread. */
	MDB_env *e;
	MDB_txn *txn;
	MDB_dbi meta;
	uint32_t other = ST_SCHEMA_VERSION + 1;
	assert_int_equal(mdb_env_create(&e), 0);
	mdb_env_set_maxdbs(e, 8);
	assert_int_equal(mdb_env_open(e, dir, 0, 0640), 0);
	assert_int_equal(mdb_txn_begin(e, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	MDB_val k = {14, "schema_version"}, v = {sizeof(other), &other};
	assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(e);
	struct st_env *again = NULL;
	struct st_options o = {.path = dir, .map_size_bytes = 64 << 20};
	assert_int_equal(st_env_open(&again, &o), ST_ERR_SCHEMA);

	struct st_options missing = {.path = "/nonexistent/tapgate-store", .read_only = true};
	assert_int_equal(st_env_open(&again, &missing), ST_ERR_OPEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_reopen_scan),
		cmocka_unit_test(test_append_only),
		cmocka_unit_test(test_quarantine_and_validators),
		cmocka_unit_test(test_map_full_then_grow),
		cmocka_unit_test(test_read_only_beside_writer_and_schema),
	};
	return cmocka_run_group_tests_name("store", tests, setup, teardown);
}
