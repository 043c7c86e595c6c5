/*
 * rebuild_bench.c - how long the gateway takes to rebuild its dedup set from
 * the log at start-up.
 *
 * Fills a fresh store with N QuickPass taps received "now" (so all of them
 * are inside the dedup window), closes it, then times what the gateway does
 * at start-up: open the store and create the pipeline, which scans the log
 * backwards in short read transactions and inserts every identity key.
 * Prints one line: "dedup_rebuild taps=N seconds=S taps_per_s=X".
 * Usage: rebuild_bench -d DIR [-n TAPS] [-r RUNS]
 */
#include "fastpath/fastpath.h"
#include "store/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define FILL_BATCH 65536u

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* Append n taps with distinct identity keys. Returns 0 or an st_error. */
static int fill(struct st_env *env, uint64_t n)
{
	uint64_t now_us = fp_now_us();
	uint8_t rec[FP_QUICKPASS_BYTES] = {FP_QUICKPASS_BYTES, FP_MEDIUM_QUICKPASS, FP_KIND_BOARD};
	for (uint64_t seq = 1; seq <= n;) {
		struct st_wtxn *t;
		int rc = st_wtxn_begin(env, &t);
		for (uint64_t i = 0; rc == 0 && i < FILL_BATCH && seq <= n; i++, seq++) {
			put_be64(rec + 8, now_us - (seq % 86400) * 1000000u);
			XXH128_hash_t h = XXH3_128bits(&seq, sizeof(seq));
			struct st_tap_meta m = {.recv_time_us = now_us, .id_lo = h.low64 | 1, .id_hi = h.high64,
						.content_hash = seq, .validator_id = 1001 + (uint32_t)(seq % 256),
						.record_len = sizeof(rec)};
			rc = st_log_append(t, seq, &m, rec);
		}
		if (rc != 0) {
			st_wtxn_abort(t);
			return rc;
		}
		if ((rc = st_wtxn_commit(t)) != 0)
			return rc;
	}
	return 0;
}

static double rebuild_once(const char *dir, uint64_t n)
{
	struct st_env *env;
	struct st_options so = {.path = dir, .map_size_bytes = 8ull << 30, .sync = ST_SYNC_NONE};
	struct fp_counters *ctr = calloc(1, sizeof(*ctr));
	struct fp_pipeline_options opt = {.ring_frames = 64, .commit_batch_taps = 4096,
					  .dedup_window_s = 14 * 86400, .dedup_taps_max = n + n / 8,
					  .amount_fen_max = 100000};
	struct fp_pipeline *p;
	if (ctr == NULL || st_env_open(&env, &so) != 0)
		return -1;
	uint64_t start_us = fp_mono_us();
	int rc = fp_pipeline_create(&p, &opt, NULL, env, ctr);
	double seconds = (double)(fp_mono_us() - start_us) / 1e6;
	if (rc != 0 || atomic_load(&ctr->dedup_entries) != n) {
		fprintf(stderr, "rebuild_bench: rebuild gave %" PRIu64 " entries (rc %d), expected %" PRIu64 "\n",
			(uint64_t)atomic_load(&ctr->dedup_entries), rc, n);
		return -1;
	}
	fp_pipeline_destroy(p);
	st_env_close(env);
	free(ctr);
	return seconds;
}

int main(int argc, char **argv)
{
	const char *dir = NULL;
	uint64_t n = 10000000;
	int runs = 3, opt;
	while ((opt = getopt(argc, argv, "d:n:r:")) != -1) {
		switch (opt) {
		case 'd': dir = optarg; break;
		case 'n': n = strtoull(optarg, NULL, 10); break;
		case 'r': runs = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (dir == NULL || n == 0 || runs < 1 || runs > 15)
		goto usage;
	struct st_env *env;
	struct st_options so = {.path = dir, .map_size_bytes = 8ull << 30, .sync = ST_SYNC_NONE};
	if (st_env_open(&env, &so) != 0 || fill(env, n) != 0) {
		fprintf(stderr, "rebuild_bench: cannot fill a store in %s\n", dir);
		return 1;
	}
	st_env_close(env);
	double best[15];
	for (int r = 0; r < runs; r++)
		if ((best[r] = rebuild_once(dir, n)) < 0)
			return 1;
	/* Median of the runs: these machines are noisy. */
	for (int i = 0; i < runs; i++)
		for (int j = i + 1; j < runs; j++)
			if (best[j] < best[i]) {
				double t = best[i];
				best[i] = best[j];
				best[j] = t;
			}
	double median = best[runs / 2];
	printf("dedup_rebuild taps=%" PRIu64 " runs=%d median_seconds=%.2f taps_per_s=%.0f\n", n, runs,
	       median, (double)n / median);
	return 0;
usage:
	fprintf(stderr, "usage: rebuild_bench -d DIR [-n TAPS (10000000)] [-r RUNS (3, at most 15)]\n");
	return 2;
}
