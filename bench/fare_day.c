/*
 * fare_day.c - how fast the fare engine rates a whole business day.
 *
 * Generates a business day over the demo fare network (config/fares-demo):
 * T tokens (a third each e-purse, QuickPass, e-SSC QR; mostly adults, some
 * seniors, students, disabled riders) making bus rides, metro journeys (entry
 * then exit), and seniors' canteen meals, N taps in all. The taps are
 * appended to a fresh gateway store in the order validators would commit
 * them (round by round across the tokens), then one rating run (fare_run,
 * the code tapfare rate uses) rates the day into a fresh rated store, and
 * that run is timed. Prints:
 *   fare_day taps=N tokens=T legs=L seconds=S taps_per_s=X
 * With -S, the day is then closed with the settlement worker (settle/: the
 * batches and files of every counterparty, config/counterparties.conf) and
 * that is timed too; the target is rating + closing:
 *   fare_day ... settle_seconds=S close_seconds=R+S
 * Usage: fare_day -d DIR [-n TAPS] [-t TOKENS] [-f FEED] [-S] [-v]   (-v: progress lines)
 */
#include "fare/fare.h"
#include "settle/settle.h"
#include "tools/demo_fares.h"
#include "proto/proto.h"
#include "store/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FILL_BATCH 100000u
#define DAY 20260302u /* a Monday */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct rider {
	uint64_t time_us;
	uint32_t entry_stop; /* non-zero: inside the metro */
	uint32_t balance_fen; /* e-purse */
	uint16_t ctc;
	uint8_t medium, category;
};

/* The next tap of a rider: a bus ride, a metro entry or exit, or a meal. */
static void next_tap(struct rider *r, uint32_t token, unsigned taps_left, struct fp_tap *t, struct st_tap_meta *m)
{
	static const uint32_t bus_routes[] = {1, 2, 5, 11};
	memset(t, 0, sizeof(*t));
	memset(m, 0, sizeof(*m));
	t->medium = r->medium;
	t->category = r->category;
	unsigned pick = (unsigned)(rnd() % 100);
	uint32_t adult_fen = 0; /* what an offline e-purse validator deducts, before concessions */
	if (r->entry_stop) { /* out of the metro, 10 to 40 minutes later */
		r->time_us += (600 + rnd() % 1800) * 1000000ull;
		t->kind = FP_KIND_EXIT;
		t->stop_id = 5101 + (uint32_t)(rnd() % 10);
		adult_fen = demo_metro_fen(r->entry_stop, t->stop_id);
		m->route_id = 51;
		m->operator_id = 2;
		r->entry_stop = 0;
	} else if (r->category == FP_CATEGORY_SENIOR && pick < 15) {
		r->time_us += (1200 + rnd() % 3600) * 1000000ull;
		t->kind = FP_KIND_PURCHASE;
		m->route_id = 901 + (uint32_t)(rnd() % 2);
		t->stop_id = m->route_id * 10 + 1;
		t->amount_fen = 800 + (uint32_t)(rnd() % 8) * 100;
		m->operator_id = 3;
	} else if (pick < 50 && taps_left >= 2) {
		r->time_us += (300 + rnd() % 3600) * 1000000ull;
		t->kind = FP_KIND_ENTRY;
		t->stop_id = r->entry_stop = 5101 + (uint32_t)(rnd() % 10);
		m->route_id = 51;
		m->operator_id = 2;
	} else {
		r->time_us += (300 + rnd() % 3600) * 1000000ull;
		t->kind = FP_KIND_BOARD;
		m->route_id = bus_routes[rnd() % 4];
		t->stop_id = m->route_id * 100 + 1 + (uint32_t)(rnd() % 6);
		m->operator_id = 1;
		adult_fen = DEMO_BUS_FEN;
	}
	t->tap_time_us = r->time_us;
	t->tap_id = token;
	if (t->medium == FP_MEDIUM_EPURSE) { /* paid offline: the peak fare, CTC and balance continuous */
		if (t->kind != FP_KIND_PURCHASE)
			t->amount_fen = demo_offline_fare(r->category, adult_fen);
		if (r->balance_fen < t->amount_fen)
			r->balance_fen += 10000;
		t->u.epurse.ctc = ++r->ctc;
		t->u.epurse.balance_before_fen = r->balance_fen;
		r->balance_fen -= t->amount_fen;
		t->u.epurse.balance_after_fen = r->balance_fen;
		t->u.epurse.issuer_code = 2660;
		t->u.epurse.card_number = 3100000000000000ull + token;
		t->u.epurse.transaction_type = 6;
		t->u.epurse.psam_serial = (uint32_t)rnd();
	} else if (t->medium == FP_MEDIUM_QUICKPASS) {
		t->u.quickpass.account_token = 7000000000ull + token;
		t->u.quickpass.expiry_yymm = 2912;
	} else {
		t->u.qr.qr_version = 1;
		t->u.qr.account_token = 9000000000ull + token;
		t->u.qr.issued_at_s = (uint32_t)(t->tap_time_us / 1000000u) - 10;
		t->u.qr.expires_at_s = t->u.qr.issued_at_s + 60;
	}
}

static int fill(struct st_env *env, struct fare_clock *clk, uint64_t ntaps, uint32_t ntokens)
{
	struct rider *riders = calloc(ntokens, sizeof(*riders));
	unsigned per = (unsigned)((ntaps + ntokens - 1) / ntokens);
	uint64_t seq = 0;
	struct st_wtxn *w = NULL;
	int rc = 0;
	if (!riders)
		return ST_ERR_INVALID;
	for (uint32_t i = 0; i < ntokens; i++) {
		unsigned c = (unsigned)(rnd() % 100);
		riders[i].medium = (uint8_t)(1 + i % 3);
		riders[i].category = c < 80 ? 0 : c < 90 ? 1 : c < 98 ? 2 : 3;
		riders[i].time_us = fare_clock_utc_us(clk, DAY, 6 * 3600 + (uint32_t)(rnd() % (3 * 3600)));
	}
	for (unsigned round = 0; round < per && rc == 0; round++) {
		for (uint32_t i = 0; i < ntokens && seq < ntaps && rc == 0; i++) {
			struct fp_tap t;
			struct st_tap_meta m;
			uint8_t rec[ST_RECORD_BYTES_MAX];
			next_tap(&riders[i], i, per - round, &t, &m);
			int len = fp_tap_encode(&t, rec, sizeof(rec));
			m.record_len = (uint16_t)len;
			m.validator_id = 1 + i % 1000;
			fp_tap_stored_seal(&m, rec); /* as the gateway keeps it: the readers check it */
			++seq;
			if (!w && (rc = st_wtxn_begin(env, &w)) != 0)
				break;
			rc = st_log_append(w, seq, &m, rec);
			if (rc == 0 && seq % FILL_BATCH == 0) {
				rc = st_wtxn_commit(w);
				w = NULL;
			}
		}
	}
	if (w)
		rc = rc == 0 ? st_wtxn_commit(w) : (st_wtxn_abort(w), rc);
	free(riders);
	return rc;
}

/* Close the rated day: its settlement files in DIR/outbox, timed on top of the rating's rate_secs. Returns 0 or 1. */
static int day_settle(const char *dir, bool verbose, struct fare_db *db, struct st_env *log, struct fare_clock *clk,
		      double rate_secs)
{
	char path[1024];
	struct settle_parties parties;
	struct settle_db *sdb;
	struct settle_close_stats cs;
	char serr[SETTLE_ERR_MAX], outbox[1024];
	snprintf(path, sizeof(path), "%s/settle", dir);
	snprintf(outbox, sizeof(outbox), "%s/outbox", dir);
	if (settle_parties_load(&parties, "config/counterparties.conf", serr, sizeof(serr)) != 0 ||
	    settle_db_open(&sdb, path, false, serr, sizeof(serr)) != 0) {
		fprintf(stderr, "\nfare_day: %s\n", serr);
		return 1;
	}
	/* a fixed settlement secret: what is measured is the pseudonyms' cost, not the key */
	static const uint8_t secret[SETTLE_SECRET_BYTES] = {[0 ... SETTLE_SECRET_BYTES - 1] = 0x5a};
	struct settle_ctx ctx = {.db = sdb, .rated = db, .log = log, .clk = clk, .parties = &parties,
				 .outbox = outbox, .parties_path = "config/counterparties.conf", .quiet = !verbose,
				 .secret = secret};
	double t1 = now_s();
	if (settle_close(&ctx, DAY, &cs, serr, sizeof(serr)) != 0) {
		fprintf(stderr, "\nfare_day: close: %s\n", serr);
		return 1;
	}
	double ssecs = now_s() - t1;
	printf(" settle_seconds=%.2f close_seconds=%.2f batches=%" PRIu64, ssecs, rate_secs + ssecs, cs.batches);
	settle_db_close(sdb);
	return 0;
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *feed_dir = "config/fares-demo";
	bool verbose = false, settle = false;
	uint64_t ntaps = 10000000;
	uint32_t ntokens = 1000000;
	int c;
	while ((c = getopt(argc, argv, "d:n:t:f:vS")) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'n': ntaps = strtoull(optarg, NULL, 10); break;
		case 't': ntokens = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'f': feed_dir = optarg; break;
		case 'v': verbose = true; break;
		case 'S': settle = true; break;
		default: fprintf(stderr, "usage: fare_day -d DIR [-n TAPS] [-t TOKENS] [-f FEED] [-S] [-v]\n"); return 64;
		}
	}
	if (!dir || !ntokens || ntaps < ntokens) {
		fprintf(stderr, "usage: fare_day -d DIR [-n TAPS] [-t TOKENS] [-f FEED] [-S] [-v]\n");
		return 64;
	}
	char path[1024], err[FARE_ERR_MAX];
	struct fare_clock clk;
	struct fare_feed *feed;
	struct st_env *log;
	struct fare_db *db;
	if (fare_clock_init(&clk, "Asia/Shanghai", "04:30") != 0 || fare_feed_load(&feed, feed_dir, err, sizeof(err)) != 0) {
		fprintf(stderr, "fare_day: %s\n", err);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/store", dir);
	struct st_options so = {.path = path, .map_size_bytes = 4ull << 30, .sync = ST_SYNC_NONE};
	int rc = st_env_open(&log, &so);
	if (rc == 0)
		rc = fill(log, &clk, ntaps, ntokens);
	if (rc != 0) {
		fprintf(stderr, "fare_day: filling the gateway store: %s\n", st_strerror(rc));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/rated", dir);
	if (fare_db_open(&db, path, false, err, sizeof(err)) != 0) {
		fprintf(stderr, "fare_day: %s\n", err);
		return 1;
	}
	struct fare_run_options opt = {.through_day = DAY, .quiet = !verbose};
	struct fare_run_stats st;
	double t0 = now_s();
	rc = fare_run(db, log, feed, &clk, &opt, &st, err, sizeof(err));
	double secs = now_s() - t0;
	if (rc != 0) {
		fprintf(stderr, "fare_day: %s\n", err);
		return 1;
	}
	printf("fare_day taps=%" PRIu64 " tokens=%u legs=%" PRIu64 " norule=%" PRIu64 " seconds=%.2f taps_per_s=%.0f",
	       st.taps_rated, ntokens, st.legs_written, st.norule_legs, secs, st.taps_rated / secs);
	if (settle && day_settle(dir, verbose, db, log, &clk, secs) != 0)
		return 1;
	putchar('\n');
	fare_db_close(db);
	st_env_close(log);
	fare_feed_free(feed);
	return st.taps_rated == ntaps ? 0 : 1;
}
