/*
 * lmdb_bound.c - the raw bound the gateway is measured against: durable
 * MDB_APPEND inserts per second through the same store API the writer thread
 * uses, with the same value size (tap metadata + record) and transaction
 * size, and nothing else (no network, no parsing, no dedup).
 * Prints: "lmdb_bound records=N batch=B record_bytes=R seconds=S inserts_per_s=X".
 * Usage: lmdb_bound -d DIR [-n RECORDS] [-b BATCH] [-r RECORD_BYTES] [-s full|none]
 */
#include "fastpath/fastpath.h"
#include "store/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *dir = NULL;
	uint64_t n = 1000000, batch = 4096, record_bytes = FP_QUICKPASS_BYTES;
	enum st_sync sync = ST_SYNC_FULL;
	int opt;
	while ((opt = getopt(argc, argv, "d:n:b:r:s:")) != -1) {
		switch (opt) {
		case 'd': dir = optarg; break;
		case 'n': n = strtoull(optarg, NULL, 10); break;
		case 'b': batch = strtoull(optarg, NULL, 10); break;
		case 'r': record_bytes = strtoull(optarg, NULL, 10); break;
		case 's': sync = strcmp(optarg, "none") == 0 ? ST_SYNC_NONE : ST_SYNC_FULL; break;
		default: goto usage;
		}
	}
	if (dir == NULL || n == 0 || batch == 0 || record_bytes == 0 || record_bytes > ST_RECORD_BYTES_MAX)
		goto usage;
	struct st_env *env;
	struct st_options so = {.path = dir, .map_size_bytes = 4ull << 30, .sync = sync};
	int rc = st_env_open(&env, &so);
	if (rc != 0) {
		fprintf(stderr, "lmdb_bound: %s: %s\n", dir, st_strerror(rc));
		return 1;
	}
	uint8_t record[ST_RECORD_BYTES_MAX];
	memset(record, 0x5a, sizeof(record));
	uint64_t start_us = fp_mono_us();
	for (uint64_t seq = 1; seq <= n;) {
		struct st_wtxn *t;
		if ((rc = st_wtxn_begin(env, &t)) != 0)
			break;
		for (uint64_t i = 0; i < batch && seq <= n && rc == 0; i++, seq++) {
			struct st_tap_meta m = {.recv_time_us = start_us, .id_lo = seq, .id_hi = ~seq,
						.content_hash = seq, .validator_id = 1001,
						.record_len = (uint16_t)record_bytes};
			rc = st_log_append(t, seq, &m, record);
		}
		if (rc != 0) {
			st_wtxn_abort(t);
			break;
		}
		if ((rc = st_wtxn_commit(t)) != 0)
			break;
	}
	double seconds = (double)(fp_mono_us() - start_us) / 1e6;
	st_env_close(env);
	if (rc != 0) {
		fprintf(stderr, "lmdb_bound: %s\n", st_strerror(rc));
		return 1;
	}
	printf("lmdb_bound records=%" PRIu64 " batch=%" PRIu64 " record_bytes=%" PRIu64
	       " seconds=%.3f inserts_per_s=%.0f\n", n, batch, record_bytes, seconds, (double)n / seconds);
	return 0;
usage:
	fprintf(stderr, "usage: lmdb_bound -d DIR [-n RECORDS] [-b BATCH] [-r RECORD_BYTES] [-s full|none]\n");
	return 2;
}
