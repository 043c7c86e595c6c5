/*
 * run.c - one rating run: the gateway's log in, legs and adjustments out.
 * This file: the run's state (1), failures, and fare_run, which takes the
 * phases in order; each phase is a file of its own (run.h).
 *
 * 1. undo the legs of a run that crashed while writing (meta "inprogress");
 * 2. scan the log from the cursor (or from the lowest seq of a day to rate):
 *    taps of days to rate, and late taps of rated days;
 * 3. for each late (day, token): read its legs so far, fetch their taps;
 * 4. sort every tap by (day, token, time, seq): the order of commits no
 *    longer matters; rate each token-day (rate.c);
 * 5. grant promotions over all tokens in (day, departure, token, leg) order;
 * 6. write the new days' legs (chunked transactions), then in one last
 *    transaction the adjustment legs, audits, promotion budgets, weekly totals,
 *    cards, the rated days and the cursor; sync once.
 *
 * Each write transaction is a step that leaves nothing behind when it fails:
 * on MDB_MAP_FULL the map is doubled and the step runs again (with_room). A
 * full disk fails the run (FARE_ERR_FULL): the days it marked in progress are
 * undone by the next run, which rates them again from the same cursor.
 * The log is walked with st_log_check, every tap checked: a gap, a record
 * that is not sound or counts that disagree fail the run (FARE_ERR_LOG),
 * naming the seq, before anything is written.
 */
#include "fare/run.h"
#include "proto/proto.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A failed LMDB call on the rated store (rc: its code, never 0). Returns a FARE_ERR_*. */
int fare_run_fail_store(struct run *r, const char *what, int rc)
{
	return fare_db_fail(r->db, r->err, r->err_len, what, rc);
}

/* A failed read of the gateway's log (rc: an st_error). Returns FARE_ERR_LOG or FARE_ERR_STORE. */
int fare_run_fail_log(struct run *r, const char *what, uint64_t seq, int rc)
{
	snprintf(r->err, r->err_len, "gateway log: %s, seq %llu: %s", what, (unsigned long long)seq, st_strerror(rc));
	return rc == ST_ERR_CORRUPT || rc == ST_ERR_NOTFOUND ? FARE_ERR_LOG : FARE_ERR_STORE;
}

/* A tap of the log that is not sound (bad: what fare_tap_from_log returned). Returns FARE_ERR_LOG. */
int fare_run_fail_tap(struct run *r, uint64_t seq, int bad)
{
	snprintf(r->err, r->err_len, "gateway log is not sound: seq %llu: %s (tapdump verify lists every fault)",
		 (unsigned long long)seq, fp_tap_stored_text(bad));
	return FARE_ERR_LOG;
}

/*
 * Run one write step (a whole transaction, which leaves nothing behind when
 * it fails); on MDB_MAP_FULL double the map and run it again, its counts
 * counted again. Returns an LMDB code.
 */
int fare_run_with_room(struct run *r, write_step_fn step, void *arg)
{
	struct fare_run_stats before = *r->st;
	for (unsigned grows = 0;; grows++) {
		int rc = step(r, arg);
		if (rc != MDB_MAP_FULL || grows == MAP_GROWS_MAX)
			return rc;
		*r->st = before;
		uint64_t now_bytes = 0;
		if ((rc = fare_db_grow(r->db, &now_bytes)) != 0)
			return rc;
		if (!r->opt->quiet)
			fprintf(stderr, "tapfare: rated store map full: grown to %llu MiB, writing again\n",
				(unsigned long long)(now_bytes >> 20));
	}
}

bool fare_run_set_has(const struct day_set *s, uint32_t day)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->days[i] == day)
			return true;
	return false;
}

int fare_run_set_add(struct day_set *s, uint32_t day)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint32_t *d = realloc(s->days, cap * sizeof(*d));
		if (!d)
			return FARE_ERR_NOMEM;
		s->days = d;
		s->cap = cap;
	}
	s->days[s->n++] = day;
	return 0;
}

int fare_run_push_tap(struct run *r, const struct fare_tap *t)
{
	if (r->ntaps == r->taps_cap) {
		size_t cap = r->taps_cap ? r->taps_cap * 2 : 1u << 16;
		struct fare_tap *n = realloc(r->taps, cap * sizeof(*n));
		if (!n)
			return FARE_ERR_NOMEM;
		r->taps = n;
		r->taps_cap = cap;
	}
	r->taps[r->ntaps++] = *t;
	return 0;
}

/* --- 1. state */

/* daymin_seq as long as daymin_days can grow. Returns false when out of memory. */
bool fare_run_daymin_room(struct run *r)
{
	uint64_t *grown = realloc(r->daymin_seq, r->daymin_days.cap * sizeof(uint64_t));
	if (grown)
		r->daymin_seq = grown;
	return grown != NULL;
}

static int load_state(struct run *r, MDB_txn *txn)
{
	MDB_val k = {.mv_size = 6, .mv_data = "cursor"}, v;
	MDB_cursor *c;
	int rc = mdb_get(txn, r->db->meta, &k, &v);
	r->cursor = 0;
	if (rc == 0 && v.mv_size == 8)
		memcpy(&r->cursor, v.mv_data, 8);
	MDB_val rk = {.mv_size = 4, .mv_data = "runs"}, rv;
	struct run_mark mark = {0};
	if (mdb_get(txn, r->db->meta, &rk, &rv) == 0 && rv.mv_size == sizeof(mark))
		memcpy(&mark, rv.mv_data, sizeof(mark));
	r->run_no = mark.run + 1;
	if ((rc = mdb_cursor_open(txn, r->db->days, &c)) != 0)
		return fare_run_fail_store(r, "reading the rated days", rc);
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0)
		if (fare_run_set_add(&r->rated, be32_get(k.mv_data)) != 0)
			break;
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return rc == 0 ? FARE_ERR_NOMEM : fare_run_fail_store(r, "reading the rated days", rc);
	if ((rc = mdb_cursor_open(txn, r->db->daymin, &c)) != 0)
		return fare_run_fail_store(r, "reading the days not rated yet", rc);
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
		if (fare_run_set_add(&r->daymin_days, be32_get(k.mv_data)) != 0 || !fare_run_daymin_room(r))
			break;
		memcpy(&r->daymin_seq[r->daymin_days.n - 1], v.mv_data, 8);
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return rc == 0 ? FARE_ERR_NOMEM : fare_run_fail_store(r, "reading the days not rated yet", rc);
	for (uint32_t p = 0; p < r->feed->npromotions && p < FARE_PROMOTIONS_MAX; p++) {
		const char *id = r->feed->promotions.names[p];
		MDB_val pk = {.mv_size = strlen(id), .mv_data = (void *)id};
		if (mdb_get(txn, r->db->promos, &pk, &v) == 0 && v.mv_size == sizeof(struct promo_state))
			memcpy(&r->promo[p], v.mv_data, sizeof(struct promo_state));
	}
	for (unsigned m = 1; m <= 3; m++) {
		for (uint32_t i = 0; i < r->feed->ncaps; i++)
			if (r->feed->cap_rows[i].media == r->feed->media_of[m]) {
				r->week_cascade[m] |= r->feed->cap_rows[i].period == FARE_CAP_WEEK;
				r->month_cascade[m] |= r->feed->cap_rows[i].period == FARE_CAP_MONTH;
			}
		for (uint32_t i = 0; i < r->feed->ntiers; i++)
			r->month_cascade[m] |= r->feed->tier_rows[i].media == r->feed->media_of[m];
		r->week_caps[m] = r->week_cascade[m] || r->month_cascade[m];
	}
	return 0;
}

/* Delete every key of db starting with prefix. */
int fare_run_delete_prefix(MDB_txn *txn, MDB_dbi dbi, const uint8_t *prefix, size_t len)
{
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, dbi, &c);
	while (rc == 0) {
		MDB_val k = {.mv_size = len, .mv_data = (void *)prefix}, v;
		if ((rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE)) != 0)
			break;
		if (k.mv_size < len || memcmp(k.mv_data, prefix, len) != 0)
			break;
		rc = mdb_cursor_del(c, 0);
	}
	if (rc == 0 || rc == MDB_NOTFOUND)
		mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * A run that crashed or failed while writing days left marks: remove what it
 * wrote, in one transaction. A write step (fare_run_with_room). Returns an LMDB code.
 */
static int undo_step(struct run *r, void *arg)
{
	MDB_txn *txn;
	MDB_val k = {.mv_size = 10, .mv_data = "inprogress"}, v;
	(void)arg;
	int rc = fare_db_begin(r->db, 0, &txn);
	if (rc != 0)
		return rc;
	if ((rc = mdb_get(txn, r->db->meta, &k, &v)) == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return 0;
	}
	size_t n = rc == 0 ? v.mv_size / 4 : 0;
	uint32_t *days = rc == 0 ? malloc(v.mv_size + 4) : NULL;
	if (rc == 0 && !days)
		rc = ENOMEM;
	if (rc == 0)
		memcpy(days, v.mv_data, v.mv_size); /* v points into a page the deletes may move */
	for (size_t i = 0; i < n && rc == 0; i++) {
		uint8_t p[4];
		be32_put(p, days[i]);
		if ((rc = fare_run_delete_prefix(txn, r->db->legs, p, 4)) == 0)
			rc = fare_run_delete_prefix(txn, r->db->audit, p, 4);
	}
	free(days);
	if (rc == 0)
		rc = mdb_del(txn, r->db->meta, &k, NULL);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

/* --- progress lines */

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A fare_run_progress line on stderr with the seconds since the run began (none when quiet). */
__attribute__((format(printf, 2, 3))) void fare_run_progress(const struct run *r, const char *fmt, ...)
{
	if (r->opt->quiet || r->st->taps_scanned == 0) /* nothing new: nothing to say */
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "tapfare: %7.2f s: ", (double)(mono_ns() - r->start_ns) / 1e9);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/*
 * A day rated again (rerate_unrated_day) must be rated, and by a feed of the
 * run's currency: its adjustments are settled with its earlier legs, in one
 * currency. Returns 0, FARE_ERR_INVALID (err says why), FARE_ERR_VERSION, FARE_ERR_STORE.
 */
static int rerate_check(struct run *r, MDB_txn *txn, uint32_t day)
{
	uint8_t dk[4];
	struct day_state ds;
	struct fare_feed *was = NULL;
	be32_put(dk, day);
	MDB_val k = {.mv_size = 4, .mv_data = dk}, v;
	if (!fare_run_set_has(&r->rated, day) || mdb_get(txn, r->db->days, &k, &v) != 0 || v.mv_size != sizeof(ds)) {
		snprintf(r->err, r->err_len, "business day %u is not rated: there is nothing to rate again", day);
		return FARE_ERR_INVALID;
	}
	memcpy(&ds, v.mv_data, sizeof(ds));
	int rc = fare_db_feed(r->db, txn, ds.version, &was, r->err, r->err_len);
	if (rc != 0)
		return rc;
	const char *old_cur = fare_feed_currency(was, NULL), *new_cur = fare_feed_currency(r->feed, NULL);
	if (old_cur[0] && new_cur[0] && strcmp(old_cur, new_cur) != 0) {
		snprintf(r->err, r->err_len,
			 "business day %u was rated in %s (feed version %016llx); feed %016llx is in %s: a day is rated in "
			 "one currency", day, old_cur, (unsigned long long)ds.version,
			 (unsigned long long)r->feed->version, new_cur);
		rc = FARE_ERR_INVALID;
	}
	fare_feed_free(was);
	return rc;
}

static void run_free(struct run *r)
{
	free(r->ctx.memo);
	free(r->ctx.zone_clock);
	free(r->rated.days);
	free(r->daymin_days.days);
	free(r->daymin_seq);
	free(r->taps);
	free(r->forged);
	free(r->groups);
	free(r->legs);
}

int fare_run(struct fare_db *db, struct st_env *log, const struct fare_feed *feed, struct fare_clock *clk,
	     const struct fare_run_options *opt, struct fare_run_stats *stats, char *err, size_t err_len)
{
	struct run r = {.db = db, .log = log, .feed = feed, .clk = clk, .opt = opt, .st = stats, .err = err,
			.err_len = err_len};
	struct day_set new_days = {0};
	struct timespec ts;
	MDB_txn *txn = NULL;
	clock_gettime(CLOCK_REALTIME, &ts);
	r.now_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	memset(stats, 0, sizeof(*stats));
	err[0] = '\0';
	if (db->read_only || feed->npromotions > FARE_PROMOTIONS_MAX || feed->nsubsidies > FARE_SUBSIDIES_MAX) {
		snprintf(err, err_len, "rated store read-only, or more than %u promotions or subsidies",
			 FARE_PROMOTIONS_MAX);
		return FARE_ERR_INVALID;
	}
	r.ctx.feed = feed;
	r.ctx.clock = clk;
	struct fare_clock feed_clk;
	if (feed->timezone[0] && strcmp(feed->timezone, clk->tz) != 0 &&
	    fare_clock_init(&feed_clk, feed->timezone, "00:00") == 0)
		r.ctx.feed_clock = &feed_clk; /* timeframes are the agency's local times */
	r.start_ns = mono_ns();
	int rc = (r.ctx.memo = calloc(FARE_MEMO_SLOTS, sizeof(*r.ctx.memo))) ? 0 : FARE_ERR_NOMEM;
	if (rc == 0)
		rc = fare_rate_zone_clocks(&r.ctx, err, err_len); /* timeframes at stops with their own stop_timezone */
	if (rc == 0 && (rc = fare_run_with_room(&r, undo_step, NULL)) != 0)
		rc = fare_run_fail_store(&r, "undoing the days a run did not finish", rc);
	if (rc == 0 && (rc = fare_db_begin(db, MDB_RDONLY, &txn)) != 0)
		rc = fare_run_fail_store(&r, "beginning a read", rc);
	if (rc == 0)
		rc = load_state(&r, txn);
	if (rc == 0 && opt->rerate_unrated_day)
		rc = rerate_check(&r, txn, opt->rerate_unrated_day);
	if (rc == 0)
		rc = fare_run_scan_log(&r);
	if (rc == 0)
		fare_run_progress(&r, "read the log: %llu taps", (unsigned long long)stats->taps_scanned);
	if (rc == 0)
		rc = fare_run_add_old_taps(&r, txn);
	if (rc == 0)
		fare_run_progress(&r, "late taps: %llu, token-days to rate again: %llu", (unsigned long long)stats->taps_late, (unsigned long long)stats->tokens_rerated);
	if (rc == 0)
		rc = fare_run_rate_all(&r, txn);
	if (rc == 0)
		fare_run_progress(&r, "rated %zu taps into %zu legs", r.ntaps, r.nlegs);
	if (txn)
		mdb_txn_abort(txn);
	if (rc == 0)
		rc = fare_run_grant_promotions(&r);
	if (rc == 0)
		fare_run_progress(&r, "granted promotions");
	if (rc == 0)
		rc = fare_run_write_new_legs(&r, &new_days);
	if (rc == 0)
		fare_run_progress(&r, "wrote the new days' legs");
	if (rc == 0)
		rc = fare_run_write_final(&r, &new_days);
	if (rc == 0)
		fare_run_progress(&r, "committed: %llu legs, %llu adjustment legs, %llu audit lines", (unsigned long long)stats->legs_written, (unsigned long long)stats->adjustment_legs, (unsigned long long)stats->audit_lines);
	for (size_t i = 0; i < r.nlegs; i++)
		stats->norule_legs += (r.legs[i].leg.flags & FARE_LEG_NORULE) != 0;
	if (rc == FARE_ERR_NOMEM && err[0] == '\0')
		snprintf(err, err_len, "out of memory");
	free(new_days.days);
	run_free(&r);
	return rc;
}
