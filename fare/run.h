/*
 * run.h - what the files of one rating run share (run.c and its phases
 * run_scan.c, run_late.c, run_rate.c, run_write.c): the run's state and
 * each phase's entry points. Internal to fare/.
 */
#ifndef TAPGATE_FARE_RUN_H
#define TAPGATE_FARE_RUN_H

#include "fare/db.h"
#include "fare/rate.h"
#include "store/store.h"

#define WRITE_CHUNK_LEGS 200000u
#define AUDIT_LINES_MAX 256u
#define PROGRESS_TAPS 2000000u
#define MAP_GROWS_MAX 16u /* 1 GiB doubled 16 times is past ST_MDB_MAP_BYTES_MAX */

struct day_set {
	uint32_t *days;
	size_t n, cap;
};

struct group {
	uint32_t first, n;     /* taps[first .. first+n) */
	uint32_t leg_first, nlegs;
	bool rerate;
	uint8_t promo_count[FARE_PROMOTIONS_MAX];
	int64_t own_budget[FARE_PROMOTIONS_MAX]; /* re-rates: promotion the token had already */
};

struct old_leg { /* sum of a leg's revisions, by identity */
	struct fare_leg sum;
	uint16_t max_rev;
};

struct run {
	uint64_t start_ns; /* for the progress lines' elapsed seconds */
	uint32_t run_no;   /* this run's number: meta "runs" + 1, stamped on every leg it writes */
	struct fare_db *db;
	struct st_env *log;
	const struct fare_feed *feed;
	struct fare_clock *clk;
	const struct fare_run_options *opt;
	struct fare_run_stats *st;
	char *err;
	size_t err_len;
	struct rate_ctx ctx;
	uint64_t cursor, last_seq;
	struct day_set rated, daymin_days;
	uint64_t *daymin_seq;
	struct fare_tap *taps;
	size_t ntaps, taps_cap;
	struct group *groups;
	size_t ngroups;
	struct rate_leg *legs;
	size_t nlegs;
	struct promo_state promo[FARE_PROMOTIONS_MAX];
	bool week_caps[4];  /* the medium has a week or month cap or a spend tier: keep day totals */
	bool week_cascade[4], month_cascade[4]; /* a late tap re-rates the rest of the week / month */
	uint64_t now_us;
	int scan_rc; /* why the log walk stopped early: FARE_ERR_LOG, FARE_ERR_NOMEM (err says) */
	/* the gateway's QR verdicts: rate only through the frontier, never a forged tap */
	uint64_t qr_frontier;
	uint64_t *forged; /* seqs of the forged taps from the scan's start, ascending */
	size_t forged_n, forged_cap, forged_next;
};

/* Run one write step (a whole transaction); on MDB_MAP_FULL the map is doubled and it runs again. */
typedef int (*write_step_fn)(struct run *r, void *arg);
typedef int (*leg_fn)(void *arg, const struct fare_leg *l);

/* run.c: failures, day sets, state, progress */
bool fare_run_daymin_room(struct run *r);
int fare_run_delete_prefix(MDB_txn *txn, MDB_dbi dbi, const uint8_t *prefix, size_t len);
int fare_run_fail_log(struct run *r, const char *what, uint64_t seq, int rc);
int fare_run_fail_store(struct run *r, const char *what, int rc);
int fare_run_fail_tap(struct run *r, uint64_t seq, int bad);
__attribute__((format(printf, 2, 3))) void fare_run_progress(const struct run *r, const char *fmt, ...);
int fare_run_push_tap(struct run *r, const struct fare_tap *t);
int fare_run_set_add(struct day_set *s, uint32_t day);
bool fare_run_set_has(const struct day_set *s, uint32_t day);
int fare_run_with_room(struct run *r, write_step_fn step, void *arg);

/* run_scan.c: 2. the log scanned, 4. taps sorted */
int fare_run_cmp_tap(const void *a, const void *b);
bool fare_run_same_token_day(const struct fare_tap *a, const struct fare_tap *b);
int fare_run_scan_log(struct run *r);
int fare_run_sort_taps(struct run *r);

/* run_late.c: 3. late taps: the legs so far of their token-days */
int fare_run_add_old_taps(struct run *r, MDB_txn *txn);
int fare_run_legs_of(struct fare_db *db, MDB_txn *txn, const uint8_t prefix[TOKEN_DAY_KEY_BYTES], leg_fn fn,
		   void *arg);
int64_t fare_run_month_first(uint32_t day);
int64_t fare_run_week_monday(uint32_t day);

/* run_rate.c: 4. rating, 5. promotions */
int fare_run_grant_promotions(struct run *r);
int64_t fare_run_group_fares(const struct run *r, const struct group *g);
int fare_run_rate_all(struct run *r, MDB_txn *txn);

/* run_write.c: 6. writing */
int fare_run_write_final(struct run *r, struct day_set *new_days);
int fare_run_write_new_legs(struct run *r, struct day_set *new_days);

#endif
