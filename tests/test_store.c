/*
 * test_store.c - the LMDB store against its contract in store/store.h:
 * append, commit, abort and reopen; the append-only rule (a seq out of
 * order is asserted: the process aborts); chunked scans both
 * ways across read-transaction boundaries, from any sequence, stopping
 * anywhere; quarantine and validator state; the schema version; map growth
 * after MDB_MAP_FULL with nothing lost, also under a reader thread of the
 * same process; read-only opens beside a writer, of a store without DBs yet,
 * and of a missing directory; records of the wrong size.
 *
 * Every test gets its own temporary directory under /tmp. Stores written
 * with raw LMDB calls (schema, corruption) stand for another program or an
 * older version having written the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store/store.h"
#include "tests/tmpdir.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define RECORD_BYTES 38u    /* a QuickPass tap */
#define TINY_MAP_BYTES (256u << 10)
#define MAP_BYTES (64u << 20)

static struct st_env *open_store(const char *path, uint64_t map_bytes, enum st_sync sync, bool read_only)
{
	struct st_env *env = NULL;
	struct st_options o = {.path = path, .map_size_bytes = map_bytes, .sync = sync, .read_only = read_only};
	assert_int_equal(st_env_open(&env, &o), ST_OK);
	return env;
}

/* Every field of a tap's meta and record derives from its seq, so a scan can check all of it. */
static struct st_tap_meta meta_of(uint64_t seq)
{
	return (struct st_tap_meta){.recv_time_us = 1000 + seq, .frame_seq = seq / 7, .id_lo = seq,
				    .id_hi = ~seq, .content_hash = seq * 3, .validator_id = 1001,
				    .route_id = (uint32_t)seq % 930, .vehicle_id = 77, .operator_id = 5,
				    .record_len = RECORD_BYTES};
}

static void record_of(uint64_t seq, uint8_t rec[RECORD_BYTES])
{
	for (unsigned i = 0; i < RECORD_BYTES; i++)
		rec[i] = (uint8_t)(seq * 31 + i);
}

static bool tap_intact(uint64_t seq, const struct st_tap_meta *m, const uint8_t *rec)
{
	struct st_tap_meta want = meta_of(seq);
	uint8_t want_rec[RECORD_BYTES];
	record_of(seq, want_rec);
	return memcmp(m, &want, sizeof(want)) == 0 && memcmp(rec, want_rec, RECORD_BYTES) == 0;
}

/* Append seq = first, first + step, ... (count taps) in transactions of batch taps. */
static int append_taps(struct st_env *env, uint64_t first, uint64_t step, uint64_t count, uint64_t batch)
{
	uint8_t rec[RECORD_BYTES];
	for (uint64_t done = 0; done < count;) {
		struct st_wtxn *t;
		int rc = st_wtxn_begin(env, &t);
		if (rc != 0)
			return rc;
		for (uint64_t i = 0; i < batch && done + i < count; i++) {
			uint64_t seq = first + (done + i) * step;
			struct st_tap_meta m = meta_of(seq);
			record_of(seq, rec);
			if ((rc = st_log_append(t, seq, &m, rec)) != 0) {
				st_wtxn_abort(t);
				return rc;
			}
		}
		if ((rc = st_wtxn_commit(t)) != 0)
			return rc;
		done += batch < count - done ? batch : count - done;
	}
	return 0;
}

/* Expect seqs expect_next, expect_next + step, ... with intact contents; stop after stop_after. */
struct scan_check {
	uint64_t expect_next;
	int64_t step;
	uint64_t seen, stop_after;
	bool wrong;
};

static int scan_visit(void *arg, uint64_t seq, const struct st_tap_meta *m, const uint8_t *rec)
{
	struct scan_check *c = arg;
	if (seq != c->expect_next || !tap_intact(seq, m, rec)) {
		c->wrong = true;
		return 1;
	}
	c->expect_next += (uint64_t)c->step;
	c->seen++;
	return c->stop_after != 0 && c->seen == c->stop_after;
}

/* Scan and check: returns how many taps were seen, all in the expected order and intact. */
static uint64_t scan_expect(struct st_env *env, uint64_t from, bool backward, uint64_t first_seq,
			    int64_t step, uint64_t stop_after)
{
	struct scan_check c = {.expect_next = first_seq, .step = step, .stop_after = stop_after};
	assert_int_equal(st_log_scan(env, from, backward, scan_visit, &c), ST_OK);
	if (c.wrong)
		fail_msg("scan from %llu: expected seq %llu, got another or its content differs",
			 (unsigned long long)from, (unsigned long long)c.expect_next);
	return c.seen;
}

static int count_visit(void *arg, uint64_t seq, const struct st_tap_meta *m, const uint8_t *rec)
{
	(void)seq, (void)m, (void)rec;
	(*(uint64_t *)arg)++;
	return 0;
}

static uint64_t next_seq(struct st_env *env)
{
	uint64_t seq = 0;
	assert_int_equal(st_log_next_seq(env, &seq), ST_OK);
	return seq;
}

/* ------------------------------------------------------------------ tests */

static void test_empty_store(void **state)
{
	(void)state;
	struct st_env *env = open_store(dir, MAP_BYTES, ST_SYNC_NONE, false);
	assert_int_equal(next_seq(env), 1);
	uint64_t seen = 0;
	assert_int_equal(st_log_scan(env, 1, false, count_visit, &seen), ST_OK);
	assert_int_equal(st_log_scan(env, UINT64_MAX, true, count_visit, &seen), ST_OK);
	assert_int_equal(st_quarantine_scan(env, count_visit, &seen), ST_OK);
	assert_int_equal(seen, 0);
	struct st_counts c;
	assert_int_equal(st_counts(env, &c), ST_OK);
	assert_int_equal(c.log_taps + c.quarantine + c.validators + c.last_seq, 0);
	assert_true(c.map_size_bytes >= MAP_BYTES);
	assert_true(c.used_bytes > 0 && c.used_bytes < c.map_size_bytes);
	st_env_close(env);
}

static void test_append_commit_reopen(void **state)
{
	(void)state;
	struct st_env *env = open_store(dir, MAP_BYTES, ST_SYNC_FULL, false);
	assert_int_equal(append_taps(env, 1, 1, 100, 30), ST_OK);
	assert_int_equal(next_seq(env), 101);
	/* An aborted batch leaves nothing behind. */
	struct st_wtxn *t;
	struct st_tap_meta m = meta_of(101);
	uint8_t rec[RECORD_BYTES];
	record_of(101, rec);
	assert_int_equal(st_wtxn_begin(env, &t), ST_OK);
	assert_int_equal(st_log_append(t, 101, &m, rec), ST_OK);
	st_wtxn_abort(t);
	assert_int_equal(next_seq(env), 101);
	st_env_close(env);

	env = open_store(dir, MAP_BYTES, ST_SYNC_NOMETASYNC, false);
	assert_int_equal(next_seq(env), 101);
	assert_int_equal(scan_expect(env, 1, false, 1, 1, 0), 100);
	assert_int_equal(append_taps(env, 101, 1, 5, 5), ST_OK);
	assert_int_equal(next_seq(env), 106);
	struct st_counts c;
	assert_int_equal(st_counts(env, &c), ST_OK);
	assert_int_equal(c.log_taps, 105);
	assert_int_equal(c.last_seq, 105);
	st_env_close(env);
}

/*
 * A child process appends 1..10 and commits, then appends bad_seq in a new
 * txn (after 20 when in_batch): a seq at or below the last is the writer's
 * bug, which the store asserts. True if the child died of SIGABRT there.
 */
static bool append_aborts(uint64_t bad_seq, bool in_batch)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGABRT, SIG_DFL);
		if (!freopen("/dev/null", "w", stderr))
			_exit(3);
		struct st_env *env = open_store(dir, MAP_BYTES, ST_SYNC_NONE, false);
		if (append_taps(env, 1, 1, 10, 10) != ST_OK)
			_exit(2);
		struct st_wtxn *t;
		uint8_t rec[RECORD_BYTES] = {0};
		struct st_tap_meta m = meta_of(bad_seq);
		if (st_wtxn_begin(env, &t) != ST_OK || (in_batch && st_log_append(t, 20, &m, rec) != ST_OK))
			_exit(2);
		(void)st_log_append(t, bad_seq, &m, rec);
		_exit(0); /* not reached: the append aborts */
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void test_append_out_of_order(void **state)
{
	(void)state;
	/* At or below the last seq: a programmer error, asserted (returned, the writer would retry it forever). */
	assert_true(append_aborts(10, false));
	assert_true(append_aborts(3, false));
	/* Out of order inside one batch too. */
	assert_true(append_aborts(15, true));
	/* The log never changed its past: the ten taps of the first child, nothing of the aborted txns. */
	struct st_env *env = open_store(dir, MAP_BYTES, ST_SYNC_NONE, false);
	assert_int_equal(next_seq(env), 11);
	assert_int_equal(scan_expect(env, 1, false, 1, 1, 10), 10);
	/* Records of no bytes or above ST_RECORD_BYTES_MAX: refused, an operating error the caller handles. */
	struct st_wtxn *t;
	uint8_t big[ST_RECORD_BYTES_MAX + 1] = {0};
	struct st_tap_meta m = meta_of(30);
	assert_int_equal(st_wtxn_begin(env, &t), ST_OK);
	m.record_len = ST_RECORD_BYTES_MAX + 1;
	assert_int_equal(st_log_append(t, 30, &m, big), ST_ERR_INVALID);
	m.record_len = 0;
	assert_int_equal(st_log_append(t, 30, &m, big), ST_ERR_INVALID);
	m.record_len = ST_RECORD_BYTES_MAX; /* the largest is fine */
	assert_int_equal(st_log_append(t, 30, &m, big), ST_OK);
	assert_int_equal(st_wtxn_commit(t), ST_OK);
	assert_int_equal(next_seq(env), 31);
	assert_int_equal(scan_expect(env, 1, false, 1, 1, 10), 10);
	st_env_close(env);
}

/* Consecutive seqs, more than two read chunks: every scan's exact sequence. */
static void test_scan_chunks(void **state)
{
	(void)state;
	const uint64_t n = 2 * ST_READ_CHUNK + 123;
	struct st_env *env = open_store(dir, MAP_BYTES, ST_SYNC_NONE, false);
	assert_int_equal(append_taps(env, 1, 1, n, 4096), ST_OK);
	assert_int_equal(scan_expect(env, 1, false, 1, 1, 0), n);
	assert_int_equal(scan_expect(env, 0, false, 1, 1, 0), n);
	assert_int_equal(scan_expect(env, ST_READ_CHUNK, false, ST_READ_CHUNK, 1, 0), n - ST_READ_CHUNK + 1);
	assert_int_equal(scan_expect(env, n, false, n, 1, 0), 1);
	assert_int_equal(scan_expect(env, n + 1, false, 0, 1, 0), 0);
	assert_int_equal(scan_expect(env, UINT64_MAX, true, n, -1, 0), n);
	assert_int_equal(scan_expect(env, n + 1000, true, n, -1, 0), n);
	assert_int_equal(scan_expect(env, ST_READ_CHUNK + 5, true, ST_READ_CHUNK + 5, -1, 0), ST_READ_CHUNK + 5);
	assert_int_equal(scan_expect(env, 1, true, 1, -1, 0), 1);
	assert_int_equal(scan_expect(env, 0, true, 0, -1, 0), 0);
	/* Stopping: exactly at a chunk's end, just after it, and in the next chunk. */
	assert_int_equal(scan_expect(env, 1, false, 1, 1, ST_READ_CHUNK), ST_READ_CHUNK);
	assert_int_equal(scan_expect(env, 1, false, 1, 1, ST_READ_CHUNK + 1), ST_READ_CHUNK + 1);
	assert_int_equal(scan_expect(env, UINT64_MAX, true, n, -1, ST_READ_CHUNK + 2), ST_READ_CHUNK + 2);
	st_env_close(env);
}

/* Seqs with gaps: scans start at the nearest seq in their direction. */
static void test_scan_sparse(void **state)
{
	(void)state;
	const uint64_t n = 2 * ST_READ_CHUNK + 7;
	struct st_env *env = open_store(dir, MAP_BYTES, ST_SYNC_NONE, false);
	assert_int_equal(append_taps(env, 10, 10, n, 1000), ST_OK); /* 10, 20, ... 10n */
	assert_int_equal(next_seq(env), 10 * n + 1);
	assert_int_equal(scan_expect(env, 1, false, 10, 10, 0), n);
	assert_int_equal(scan_expect(env, 15, false, 20, 10, 0), n - 1);
	assert_int_equal(scan_expect(env, 10 * ST_READ_CHUNK + 5, true, 10 * ST_READ_CHUNK, -10, 0), ST_READ_CHUNK);
	assert_int_equal(scan_expect(env, 10 * n - 1, true, 10 * (n - 1), -10, 0), n - 1);
	assert_int_equal(scan_expect(env, 9, true, 0, -10, 0), 0);
	assert_int_equal(scan_expect(env, 10 * n + 1, false, 0, 10, 0), 0);
	st_env_close(env);
}

struct quarantine_seen {
	uint64_t count;
	uint64_t hashes[4];
	bool intact[4];
};

static int quarantine_visit(void *arg, uint64_t seq, const struct st_tap_meta *m, const uint8_t *rec)
{
	struct quarantine_seen *q = arg;
	assert_int_equal(seq, 0);
	if (q->count < 4) {
		struct st_tap_meta want = meta_of(m->id_lo);
		want.content_hash = m->content_hash;
		uint8_t want_rec[RECORD_BYTES];
		record_of(m->id_lo, want_rec);
		q->hashes[q->count] = m->content_hash;
		q->intact[q->count] = memcmp(m, &want, sizeof(want)) == 0 && memcmp(rec, want_rec, RECORD_BYTES) == 0;
	}
	q->count++;
	return 0;
}

static void test_quarantine(void **state)
{
	(void)state;
	struct st_env *env = open_store(dir, MAP_BYTES, ST_SYNC_NONE, false);
	struct st_wtxn *t;
	struct st_tap_meta m = meta_of(7);
	uint8_t rec[RECORD_BYTES], other[RECORD_BYTES];
	record_of(7, rec);
	memset(other, 0xee, sizeof(other));
	assert_int_equal(st_wtxn_begin(env, &t), ST_OK);
	assert_int_equal(st_quarantine_put(t, &m, rec), ST_OK);
	/* Kept already: the first copy stays as it was, and the txn goes on. */
	assert_int_equal(st_quarantine_put(t, &m, other), ST_ERR_EXISTS);
	m.content_hash = 1; /* same identity, other content: another entry */
	assert_int_equal(st_quarantine_put(t, &m, rec), ST_OK);
	assert_int_equal(st_wtxn_commit(t), ST_OK);
	assert_int_equal(st_wtxn_begin(env, &t), ST_OK);
	assert_int_equal(st_quarantine_put(t, &m, rec), ST_ERR_EXISTS); /* in a later txn too */
	assert_int_equal(st_wtxn_commit(t), ST_OK);

	struct quarantine_seen q = {0};
	assert_int_equal(st_quarantine_scan(env, quarantine_visit, &q), ST_OK);
	assert_int_equal(q.count, 2);
	assert_true(q.intact[0] && q.intact[1]);
	assert_true((q.hashes[0] == 21 && q.hashes[1] == 1) || (q.hashes[0] == 1 && q.hashes[1] == 21));
	struct st_counts c;
	assert_int_equal(st_counts(env, &c), ST_OK);
	assert_int_equal(c.quarantine, 2);
	assert_int_equal(c.log_taps, 0);
	st_env_close(env);
}

struct validators_seen {
	struct st_validator_state v[8];
	unsigned count, stop_after;
};

static int validator_visit(void *arg, const struct st_validator_state *v)
{
	struct validators_seen *s = arg;
	if (s->count < 8)
		s->v[s->count] = *v;
	s->count++;
	return s->stop_after != 0 && s->count == s->stop_after;
}

static void test_validators(void **state)
{
	(void)state;
	struct st_env *env = open_store(dir, MAP_BYTES, ST_SYNC_NONE, false);
	const uint32_t ids[3] = {3000000001u, 7, 1001};
	struct st_wtxn *t;
	assert_int_equal(st_wtxn_begin(env, &t), ST_OK);
	for (unsigned i = 0; i < 3; i++) {
		struct st_validator_state v = {.validator_id = ids[i], .key_id = i, .last_frame_seq = 99 + i,
					       .first_seen_us = 5, .last_seen_us = 6, .taps_stored = 10 * i,
					       .taps_duplicate = 1, .taps_conflict = 2, .taps_rejected = 3};
		assert_int_equal(st_validator_put(t, &v), ST_OK);
	}
	assert_int_equal(st_wtxn_commit(t), ST_OK);
	struct st_validator_state update = {.validator_id = 1001, .key_id = 2, .taps_stored = 12345};
	assert_int_equal(st_wtxn_begin(env, &t), ST_OK);
	assert_int_equal(st_validator_put(t, &update), ST_OK); /* replaces */
	assert_int_equal(st_wtxn_commit(t), ST_OK);

	struct validators_seen s = {0};
	assert_int_equal(st_validator_scan(env, validator_visit, &s), ST_OK);
	assert_int_equal(s.count, 3);
	/* In validator id order. */
	assert_int_equal(s.v[0].validator_id, 7);
	assert_int_equal(s.v[0].last_frame_seq, 100);
	assert_int_equal(s.v[0].taps_rejected, 3);
	assert_memory_equal(&s.v[1], &update, sizeof(update));
	assert_int_equal(s.v[2].validator_id, 3000000001u);
	assert_int_equal(s.v[2].taps_stored, 0);
	struct validators_seen first = {.stop_after = 1};
	assert_int_equal(st_validator_scan(env, validator_visit, &first), ST_OK);
	assert_int_equal(first.count, 1);
	struct st_counts c;
	assert_int_equal(st_counts(env, &c), ST_OK);
	assert_int_equal(c.validators, 3);
	st_env_close(env);
}

/* Open path with raw LMDB, as another program would; the named DB name with flags. */
static void raw_put(const char *path, const char *db, unsigned db_flags, MDB_val k, MDB_val v)
{
	MDB_env *e;
	MDB_txn *txn;
	MDB_dbi dbi;
	assert_int_equal(mdb_env_create(&e), 0);
	assert_int_equal(mdb_env_set_maxdbs(e, 8), 0);
	assert_int_equal(mdb_env_open(e, path, 0, 0640), 0);
	assert_int_equal(mdb_txn_begin(e, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, db, db_flags | MDB_CREATE, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(e);
}

static void test_schema_mismatch(void **state)
{
	(void)state;
	struct st_env *env = open_store(dir, MAP_BYTES, ST_SYNC_NONE, false);
	assert_int_equal(append_taps(env, 1, 1, 3, 3), ST_OK);
	st_env_close(env);
	uint32_t other = ST_SCHEMA_VERSION + 1;
	raw_put(dir, "meta", 0, (MDB_val){14, "schema_version"}, (MDB_val){sizeof(other), &other});
	/* Refused, not misread: by the gateway and by tapdump. */
	struct st_options o = {.path = dir, .map_size_bytes = MAP_BYTES};
	assert_int_equal(st_env_open(&env, &o), ST_ERR_SCHEMA);
	o.read_only = true;
	assert_int_equal(st_env_open(&env, &o), ST_ERR_SCHEMA);
	uint64_t wide = ST_SCHEMA_VERSION; /* the right number in the wrong width */
	raw_put(dir, "meta", 0, (MDB_val){14, "schema_version"}, (MDB_val){sizeof(wide), &wide});
	o.read_only = false;
	assert_int_equal(st_env_open(&env, &o), ST_ERR_SCHEMA);
	uint32_t right = ST_SCHEMA_VERSION;
	raw_put(dir, "meta", 0, (MDB_val){14, "schema_version"}, (MDB_val){sizeof(right), &right});
	assert_int_equal(st_env_open(&env, &o), ST_OK);
	assert_int_equal(next_seq(env), 4);
	st_env_close(env);
}

static void test_corrupt_record(void **state)
{
	(void)state;
	struct st_env *env = open_store(dir, MAP_BYTES, ST_SYNC_NONE, false);
	assert_int_equal(append_taps(env, 1, 1, 3, 3), ST_OK);
	st_env_close(env);
	uint8_t value[ST_META_BYTES + RECORD_BYTES + 1];
	struct st_tap_meta m = meta_of(4);
	memcpy(value, &m, sizeof(m));
	size_t seq = 4;
	/* One byte more than meta.record_len says. */
	raw_put(dir, "log", MDB_INTEGERKEY, (MDB_val){sizeof(seq), &seq}, (MDB_val){sizeof(value), value});
	env = open_store(dir, MAP_BYTES, ST_SYNC_NONE, false);
	uint64_t seen = 0;
	assert_int_equal(st_log_scan(env, 1, false, count_visit, &seen), ST_ERR_CORRUPT);
	assert_int_equal(seen, 3);
	st_env_close(env);
	/* Shorter than a meta block. */
	raw_put(dir, "log", MDB_INTEGERKEY, (MDB_val){sizeof(seq), &seq}, (MDB_val){10, value});
	env = open_store(dir, MAP_BYTES, ST_SYNC_NONE, true);
	seen = 0;
	assert_int_equal(st_log_scan(env, UINT64_MAX, true, count_visit, &seen), ST_ERR_CORRUPT);
	assert_int_equal(seen, 0);
	st_env_close(env);
}

/* Fill a tiny map: MAP_FULL, abort, grow, redo the batch; nothing lost or doubled. */
static uint64_t fill_with_growth(struct st_env *env, uint64_t taps, uint64_t batch)
{
	uint64_t seq = next_seq(env), last = seq + taps - 1, grows = 0;
	while (seq <= last) {
		uint64_t count = last - seq + 1 < batch ? last - seq + 1 : batch;
		int rc = append_taps(env, seq, 1, count, batch);
		if (rc == ST_ERR_MAP_FULL) {
			uint64_t before = st_env_map_size(env);
			assert_int_equal(st_env_grow(env), ST_OK);
			assert_int_equal(st_env_map_size(env), 2 * before);
			assert_int_equal(next_seq(env), seq); /* the failed batch left nothing */
			grows++;
			assert_true(grows < 32);
			continue;
		}
		assert_int_equal(rc, ST_OK);
		seq += count;
	}
	return grows;
}

static void test_map_full_then_grow(void **state)
{
	(void)state;
	const uint64_t n = 20000;
	struct st_env *env = open_store(dir, TINY_MAP_BYTES, ST_SYNC_NONE, false);
	assert_int_equal(st_env_map_size(env), TINY_MAP_BYTES);
	assert_true(fill_with_growth(env, n, 500) >= 2);
	assert_int_equal(scan_expect(env, 1, false, 1, 1, 0), n);
	uint64_t grown_bytes = st_env_map_size(env);
	st_env_close(env);
	/* Reopened with the small configured size: the grown map stays. */
	env = open_store(dir, TINY_MAP_BYTES, ST_SYNC_NONE, false);
	assert_int_equal(st_env_map_size(env), grown_bytes);
	assert_int_equal(scan_expect(env, UINT64_MAX, true, n, -1, 0), n);
	struct st_counts c;
	assert_int_equal(st_counts(env, &c), ST_OK);
	assert_int_equal(c.map_size_bytes, grown_bytes);
	assert_true(c.used_bytes <= grown_bytes);
	st_env_close(env);
}

struct reader_thread {
	struct st_env *env;
	atomic_bool stop;
	_Atomic uint64_t scans;
	uint64_t errors, wrong;
};

/* Scan the whole log over and over while the writer grows the map under it. */
static void *reader_main(void *arg)
{
	struct reader_thread *r = arg;
	while (!atomic_load(&r->stop)) {
		struct scan_check c = {.expect_next = 1, .step = 1};
		if (st_log_scan(r->env, 1, false, scan_visit, &c) != ST_OK)
			r->errors++;
		if (c.wrong)
			r->wrong++;
		atomic_fetch_add(&r->scans, 1);
	}
	return NULL;
}

/*
 * Same-process readers survive growth: a remap while a reader thread is
 * inside a read txn would leave it reading unmapped memory. The writer keeps
 * appending and growing until the reader has scanned many times.
 */
static void test_grow_under_reader_thread(void **state)
{
	(void)state;
	struct reader_thread r = {.env = open_store(dir, TINY_MAP_BYTES, ST_SYNC_NONE, false)};
	assert_int_equal(append_taps(r.env, 1, 1, 1000, 1000), ST_OK);
	pthread_t reader;
	assert_int_equal(pthread_create(&reader, NULL, reader_main, &r), 0);
	while (atomic_load(&r.scans) == 0)
		usleep(100);
	uint64_t taps = 1000, grows = 0;
	for (unsigned round = 0; round < 400 && (atomic_load(&r.scans) < 200 || grows < 5); round++) {
		grows += fill_with_growth(r.env, 500, 100);
		taps += 500;
	}
	atomic_store(&r.stop, true);
	pthread_join(reader, NULL);
	assert_true(grows >= 5);
	assert_true(atomic_load(&r.scans) >= 2);
	assert_int_equal(r.errors, 0);
	assert_int_equal(r.wrong, 0);
	assert_int_equal(scan_expect(r.env, 1, false, 1, 1, 0), taps);
	st_env_close(r.env);
}

static void test_read_only_beside_writer(void **state)
{
	(void)state;
	struct st_env *w = open_store(dir, TINY_MAP_BYTES, ST_SYNC_NONE, false);
	assert_int_equal(append_taps(w, 1, 1, 100, 50), ST_OK);
	struct st_env *r = open_store(dir, 0, ST_SYNC_FULL, true);
	assert_int_equal(next_seq(r), 101);
	assert_int_equal(scan_expect(r, 1, false, 1, 1, 0), 100);
	/* The writer goes on and grows the map far beyond the reader's: the reader follows. */
	assert_true(fill_with_growth(w, 10000, 1000) >= 2);
	assert_int_equal(scan_expect(r, UINT64_MAX, true, 10100, -1, 0), 10100);
	struct st_counts c;
	assert_int_equal(st_counts(r, &c), ST_OK);
	assert_int_equal(c.log_taps, 10100);
	assert_int_equal(c.map_size_bytes, st_env_map_size(w));
	st_env_close(r);
	st_env_close(w);
}

static void test_read_only_missing_or_empty(void **state)
{
	(void)state;
	char path[96];
	struct st_env *env = NULL;
	snprintf(path, sizeof(path), "%s/missing", dir);
	struct st_options o = {.path = path, .read_only = true};
	assert_int_equal(st_env_open(&env, &o), ST_ERR_OPEN);
	struct stat sb;
	assert_int_not_equal(stat(path, &sb), 0); /* and it was not created */

	/* An environment no gateway has written to: its DBs do not exist yet. */
	MDB_env *raw;
	assert_int_equal(mdb_env_create(&raw), 0);
	assert_int_equal(mdb_env_open(raw, dir, 0, 0640), 0);
	mdb_env_close(raw);
	env = open_store(dir, 0, ST_SYNC_FULL, true);
	assert_int_equal(next_seq(env), 1);
	uint64_t seen = 0;
	assert_int_equal(st_log_scan(env, 1, false, count_visit, &seen), ST_OK);
	assert_int_equal(st_log_scan(env, UINT64_MAX, true, count_visit, &seen), ST_OK);
	assert_int_equal(st_quarantine_scan(env, count_visit, &seen), ST_OK);
	assert_int_equal(seen, 0);
	struct st_counts c;
	assert_int_equal(st_counts(env, &c), ST_OK);
	assert_int_equal(c.log_taps, 0);
	st_env_close(env);

	/* A writable open creates the last path component. */
	env = open_store(path, MAP_BYTES, ST_SYNC_NONE, false);
	assert_int_equal(next_seq(env), 1);
	st_env_close(env);
	assert_int_equal(stat(path, &sb), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_empty_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_commit_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_chunks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_sparse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quarantine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_validators, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_full_then_grow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grow_under_reader_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only_beside_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only_missing_or_empty, setup, teardown),
	};
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
