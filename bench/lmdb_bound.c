/*
 * lmdb_bound.c - the raw bound the gateway is measured against: durable
 * MDB_APPEND inserts per second through the same store API the writer
 * thread uses (st_wtxn_begin, st_log_append, st_wtxn_commit), with the same
 * value (tap metadata + record bytes) and the same transaction size, and
 * nothing else: no network, no parsing, no MAC, no dedup. Whatever the
 * gateway achieves is a fraction of this number.
 *
 * It opens a fresh store (refusing one that holds taps: appends must start
 * at seq 1), appends N records in transactions of B, and commits each one
 * durably per the sync mode (full by default, as the gateway's default).
 * MDB_MAP_FULL is handled as the writer does: abort, grow, redo the batch.
 *
 * Prints one line:
 *   lmdb_bound records=N batch=B record_bytes=R seconds=S inserts_per_s=X
 * Usage: lmdb_bound -d DIR [-n RECORDS] [-b BATCH] [-r RECORD_BYTES] [-s full|nometa|none]
 */
#include "proto/proto.h"
#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECORDS_MAX 1000000000ull  /* 10^9: about 100 GB of log */
#define BATCH_MAX 1000000ull
#define MAP_BYTES_INITIAL (1ull << 30)
#define GROWS_MAX 16u              /* 1 GiB doubled 16 times is 64 TiB */

struct bound_options {
	const char *dir;
	uint64_t records, batch, record_bytes;
	enum st_sync sync;
};

/* A decimal number in [min, max], the whole argument. */
static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_sync(const char *s, enum st_sync *out)
{
	if (strcmp(s, "full") == 0)
		*out = ST_SYNC_FULL;
	else if (strcmp(s, "nometa") == 0)
		*out = ST_SYNC_NOMETASYNC;
	else if (strcmp(s, "none") == 0)
		*out = ST_SYNC_NONE;
	else
		return false;
	return true;
}

static bool parse_options(int argc, char **argv, struct bound_options *o)
{
	int opt;
	while ((opt = getopt(argc, argv, "d:n:b:r:s:")) != -1) {
		bool ok = true;
		switch (opt) {
		case 'd': o->dir = optarg; break;
		case 'n': ok = parse_u64(optarg, 1, RECORDS_MAX, &o->records); break;
		case 'b': ok = parse_u64(optarg, 1, BATCH_MAX, &o->batch); break;
		case 'r': ok = parse_u64(optarg, 1, ST_RECORD_BYTES_MAX, &o->record_bytes); break;
		case 's': ok = parse_sync(optarg, &o->sync); break;
		default: ok = false;
		}
		if (!ok) {
			if (opt != '?')
				fprintf(stderr, "lmdb_bound: bad value for -%c: '%s'\n", opt, optarg);
			return false;
		}
	}
	return o->dir != NULL && optind == argc;
}

/* Append seqs [first, first + count) in one txn and commit it. Returns 0 or an st_error. */
static int batch_write(struct st_env *env, uint64_t first, uint64_t count, uint64_t record_bytes,
		       uint64_t recv_time_us, const uint8_t *record)
{
	struct st_wtxn *t;
	int rc = st_wtxn_begin(env, &t);
	if (rc != 0)
		return rc;
	for (uint64_t seq = first; seq < first + count; seq++) {
		struct st_tap_meta m = {.recv_time_us = recv_time_us + seq, .frame_seq = seq,
					.id_lo = seq * 0x9e3779b97f4a7c15ull, .id_hi = ~seq,
					.content_hash = seq ^ 0x5bd1e995u, .validator_id = 1001,
					.route_id = 12, .vehicle_id = 34, .operator_id = 5,
					.record_len = (uint16_t)record_bytes};
		/* A record that differs per tap, as real ones do, without a per-tap cost. */
		rc = st_log_append(t, seq, &m, record + (seq & 63));
		if (rc != 0) {
			st_wtxn_abort(t);
			return rc;
		}
	}
	return st_wtxn_commit(t);
}

/* Write every record. Returns 0 or an st_error. */
static int bound_run(struct st_env *env, const struct bound_options *o, const uint8_t *record)
{
	uint64_t recv_time_us = fp_now_us();
	unsigned grows = 0;
	for (uint64_t seq = 1; seq <= o->records;) {
		uint64_t count = o->records - seq + 1 < o->batch ? o->records - seq + 1 : o->batch;
		int rc = batch_write(env, seq, count, o->record_bytes, recv_time_us, record);
		if (rc == ST_ERR_MAP_FULL && grows < GROWS_MAX) {
			grows++;
			if ((rc = st_env_grow(env)) != 0)
				return rc;
			continue; /* redo the batch, as the gateway's writer does */
		}
		if (rc != 0)
			return rc;
		seq += count;
	}
	return ST_OK;
}

int main(int argc, char **argv)
{
	struct bound_options o = {.records = 1000000, .batch = 4096, .record_bytes = FP_QUICKPASS_BYTES,
				  .sync = ST_SYNC_FULL};
	if (!parse_options(argc, argv, &o)) {
		fprintf(stderr, "usage: lmdb_bound -d DIR [-n RECORDS] [-b BATCH] [-r RECORD_BYTES] "
				"[-s full|nometa|none]\n");
		return 2;
	}
	struct st_env *env;
	struct st_options so = {.path = o.dir, .map_size_bytes = MAP_BYTES_INITIAL, .sync = o.sync};
	int rc = st_env_open(&env, &so);
	if (rc != 0) {
		fprintf(stderr, "lmdb_bound: cannot open store '%s': %s\n", o.dir, st_strerror(rc));
		return 1;
	}
	uint64_t next = 0;
	if ((rc = st_log_next_seq(env, &next)) != 0 || next != 1) {
		fprintf(stderr, "lmdb_bound: '%s' %s: give a new directory\n", o.dir,
			rc != 0 ? st_strerror(rc) : "already holds taps");
		st_env_close(env);
		return 1;
	}
	static uint8_t record[ST_RECORD_BYTES_MAX + 64];
	for (unsigned i = 0; i < sizeof(record); i++)
		record[i] = (uint8_t)(i * 131 + 7);
	uint64_t start_us = fp_mono_us();
	rc = bound_run(env, &o, record);
	double seconds = (double)(fp_mono_us() - start_us) / 1e6;
	st_env_close(env);
	if (rc != 0) {
		fprintf(stderr, "lmdb_bound: writing '%s' failed: %s\n", o.dir, st_strerror(rc));
		return 1;
	}
	printf("lmdb_bound records=%" PRIu64 " batch=%" PRIu64 " record_bytes=%" PRIu64
	       " seconds=%.3f inserts_per_s=%.0f\n",
	       o.records, o.batch, o.record_bytes, seconds, (double)o.records / seconds);
	return 0;
}
