/*
 * run.c - one rating run: the gateway's log in, legs and adjustments out.
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
#include "fare/db.h"
#include "fare/rate.h"
#include "proto/proto.h"
#include "store/store.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
};

/* A failed LMDB call on the rated store (rc: its code, never 0). Returns a FARE_ERR_*. */
static int fail_store(struct run *r, const char *what, int rc)
{
	return fare_db_fail(r->db, r->err, r->err_len, what, rc);
}

/* A failed read of the gateway's log (rc: an st_error). Returns FARE_ERR_LOG or FARE_ERR_STORE. */
static int fail_log(struct run *r, const char *what, uint64_t seq, int rc)
{
	snprintf(r->err, r->err_len, "gateway log: %s, seq %llu: %s", what, (unsigned long long)seq, st_strerror(rc));
	return rc == ST_ERR_CORRUPT || rc == ST_ERR_NOTFOUND ? FARE_ERR_LOG : FARE_ERR_STORE;
}

/* A tap of the log that is not sound (bad: what fare_tap_from_log returned). Returns FARE_ERR_LOG. */
static int fail_tap(struct run *r, uint64_t seq, int bad)
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
typedef int (*write_step_fn)(struct run *r, void *arg);
static int with_room(struct run *r, write_step_fn step, void *arg)
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

static bool set_has(const struct day_set *s, uint32_t day)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->days[i] == day)
			return true;
	return false;
}

static int set_add(struct day_set *s, uint32_t day)
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

static int push_tap(struct run *r, const struct fare_tap *t)
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
static bool daymin_room(struct run *r)
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
		return fail_store(r, "reading the rated days", rc);
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0)
		if (set_add(&r->rated, be32_get(k.mv_data)) != 0)
			break;
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return rc == 0 ? FARE_ERR_NOMEM : fail_store(r, "reading the rated days", rc);
	if ((rc = mdb_cursor_open(txn, r->db->daymin, &c)) != 0)
		return fail_store(r, "reading the days not rated yet", rc);
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
		if (set_add(&r->daymin_days, be32_get(k.mv_data)) != 0 || !daymin_room(r))
			break;
		memcpy(&r->daymin_seq[r->daymin_days.n - 1], v.mv_data, 8);
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return rc == 0 ? FARE_ERR_NOMEM : fail_store(r, "reading the days not rated yet", rc);
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
static int delete_prefix(MDB_txn *txn, MDB_dbi dbi, const uint8_t *prefix, size_t len)
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
 * wrote, in one transaction. A write step (with_room). Returns an LMDB code.
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
		if ((rc = delete_prefix(txn, r->db->legs, p, 4)) == 0)
			rc = delete_prefix(txn, r->db->audit, p, 4);
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

/* --- 2. scan */

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A progress line on stderr with the seconds since the run began (none when quiet). */
__attribute__((format(printf, 2, 3))) static void progress(const struct run *r, const char *fmt, ...)
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

static bool to_rate(const struct run *r, uint32_t day)
{
	return day <= r->opt->through_day && !set_has(&r->rated, day);
}

static int on_tap(void *arg, uint64_t seq, const struct st_tap_meta *meta, const uint8_t *record)
{
	struct run *r = arg;
	struct fare_tap t;
	r->last_seq = seq;
	r->st->taps_scanned++;
	if (!r->opt->quiet && r->st->taps_scanned % PROGRESS_TAPS == 0)
		fprintf(stderr, "tapfare: read %llu taps of the log (seq %llu)\n",
			(unsigned long long)r->st->taps_scanned, (unsigned long long)seq);
	int bad = fare_tap_from_log(r->clk, seq, meta, record, &t);
	if (bad != 0) {
		r->scan_rc = fail_tap(r, seq, bad);
		return 1;
	}
	if (set_has(&r->rated, t.day)) {
		if (seq <= r->cursor)
			return 0;
		r->st->taps_late++;
		t.pad = 1; /* late */
		return (r->scan_rc = push_tap(r, &t)) != 0;
	}
	if (to_rate(r, t.day))
		return (r->scan_rc = push_tap(r, &t)) != 0;
	if (seq > r->cursor) { /* a day for a later run: remember where it starts */
		for (size_t i = 0; i < r->daymin_days.n; i++)
			if (r->daymin_days.days[i] == t.day) {
				if (seq < r->daymin_seq[i])
					r->daymin_seq[i] = seq;
				return 0;
			}
		if (set_add(&r->daymin_days, t.day) != 0 || !daymin_room(r)) {
			r->scan_rc = FARE_ERR_NOMEM;
			return 1;
		}
		r->daymin_seq[r->daymin_days.n - 1] = seq;
	}
	return 0;
}

/* A fault st_log_check found: the run fails, naming it. */
static int on_log_fault(void *arg, const struct st_log_fault *f)
{
	struct run *r = arg;
	char text[160];
	snprintf(r->err, r->err_len, "gateway log is not sound: %s (tapdump verify lists every fault)",
		 st_log_fault_text(f, text, sizeof(text)));
	r->scan_rc = FARE_ERR_LOG;
	return 1;
}

static int scan_log(struct run *r)
{
	uint64_t from = r->cursor + 1;
	for (size_t i = 0; i < r->daymin_days.n; i++)
		if (to_rate(r, r->daymin_days.days[i]) && r->daymin_seq[i] < from)
			from = r->daymin_seq[i];
	r->last_seq = r->cursor;
	int rc = st_log_check(r->log, from, on_tap, on_log_fault, r);
	if (r->scan_rc != 0)
		return r->scan_rc;
	if (rc != 0)
		return fail_log(r, "reading on after", r->last_seq, rc);
	if (r->last_seq < r->cursor)
		r->last_seq = r->cursor;
	return 0;
}

/* --- 3. late taps: the legs so far of their token-days */

static int cmp_tap(const void *a, const void *b)
{
	const struct fare_tap *x = a, *y = b;
	if (x->day != y->day)
		return x->day < y->day ? -1 : 1;
	if (x->medium != y->medium)
		return x->medium < y->medium ? -1 : 1;
	if (x->issuer != y->issuer)
		return x->issuer < y->issuer ? -1 : 1;
	if (x->token_id != y->token_id)
		return x->token_id < y->token_id ? -1 : 1;
	if (x->time_us != y->time_us)
		return x->time_us < y->time_us ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Sort taps by cmp_tap's order, fast: this is a large part of a day's rating.
 * A 24-byte key per tap (day/medium/issuer, token, index) is radix-sorted,
 * 16 bits per pass, least significant first, skipping digits every key shares
 * (most of them: one day, few issuers, tokens below 2^48); the taps are
 * gathered once in that order; each token-day's few taps are then put in
 * time order. Comparison sorts spent most of their time moving 64-byte taps.
 */
struct tap_key {
	uint64_t k0; /* day (bits 34..), medium (32..33), issuer (0..31) */
	uint64_t token;
	uint32_t idx, pad;
};

#define RADIX_DIGITS 8u /* 4 of the token, then 4 of k0 */

static unsigned key_digit(const struct tap_key *k, unsigned d)
{
	return (unsigned)((d < 4 ? k->token : k->k0) >> (16 * (d & 3))) & 0xffffu;
}

static bool same_token_day(const struct fare_tap *a, const struct fare_tap *b);

static void sort_by_time(struct fare_tap *t, size_t n)
{
	if (n > 32) {
		qsort(t, n, sizeof(*t), cmp_tap);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		struct fare_tap x = t[i];
		size_t j = i;
		for (; j > 0 && (t[j - 1].time_us > x.time_us || (t[j - 1].time_us == x.time_us && t[j - 1].seq > x.seq));
		     j--)
			t[j] = t[j - 1];
		t[j] = x;
	}
}

static int sort_taps(struct run *r)
{
	size_t n = r->ntaps;
	if (n < 2)
		return 0;
	struct tap_key *k = n <= UINT32_MAX ? malloc(n * sizeof(*k)) : NULL, *tmp = malloc(n * sizeof(*tmp));
	uint32_t(*hist)[65536] = calloc(RADIX_DIGITS, sizeof(*hist));
	struct fare_tap *sorted = malloc(r->taps_cap * sizeof(*sorted));
	if (!k || !tmp || !hist || !sorted) {
		free(k), free(tmp), free(hist), free(sorted);
		return FARE_ERR_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct fare_tap *t = &r->taps[i];
		k[i] = (struct tap_key){.k0 = (uint64_t)t->day << 34 | (uint64_t)(t->medium & 3) << 32 | t->issuer,
					.token = t->token_id, .idx = (uint32_t)i};
		for (unsigned d = 0; d < RADIX_DIGITS; d++)
			hist[d][key_digit(&k[i], d)]++;
	}
	for (unsigned d = 0; d < RADIX_DIGITS; d++) {
		if (hist[d][key_digit(&k[0], d)] == n)
			continue; /* every key has this digit */
		uint32_t sum = 0;
		for (unsigned v = 0; v < 65536; v++) {
			uint32_t c = hist[d][v];
			hist[d][v] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			tmp[hist[d][key_digit(&k[i], d)]++] = k[i];
		struct tap_key *swap = k;
		k = tmp;
		tmp = swap;
	}
	for (size_t i = 0; i < n; i++) { /* random reads: ask for the ones ahead early */
		if (i + 16 < n)
			__builtin_prefetch(&r->taps[k[i + 16].idx]);
		sorted[i] = r->taps[k[i].idx];
	}
	free(k), free(tmp), free(hist), free(r->taps);
	r->taps = sorted;
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && same_token_day(&sorted[i], &sorted[j]))
			j++;
		sort_by_time(&sorted[i], j - i);
		i = j;
	}
	return 0;
}

static bool same_token_day(const struct fare_tap *a, const struct fare_tap *b)
{
	return a->day == b->day && a->medium == b->medium && a->issuer == b->issuer && a->token_id == b->token_id;
}

/* Visit the legs of one token-day, every revision. */
typedef int (*leg_fn)(void *arg, const struct fare_leg *l);
static int legs_of(struct fare_db *db, MDB_txn *txn, const uint8_t prefix[TOKEN_DAY_KEY_BYTES], leg_fn fn,
		   void *arg)
{
	MDB_cursor *c;
	MDB_val k = {.mv_size = TOKEN_DAY_KEY_BYTES, .mv_data = (void *)prefix}, v;
	int rc = mdb_cursor_open(txn, db->legs, &c);
	if (rc != 0)
		return rc;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct fare_leg l;
		if (memcmp(k.mv_data, prefix, TOKEN_DAY_KEY_BYTES) != 0)
			break;
		if (v.mv_size != sizeof(l)) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(&l, v.mv_data, sizeof(l));
		if ((rc = fn(arg, &l)) != 0)
			break;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

struct old_taps_arg {
	struct run *r;
	uint64_t *seqs;
	size_t n, cap;
};

static int collect_old(void *arg, const struct fare_leg *l)
{
	struct old_taps_arg *a = arg;
	for (unsigned i = 0; i < l->ntaps && !(l->flags & FARE_LEG_VANISHED); i++) {
		bool seen = false;
		for (size_t j = 0; j < a->n && !seen; j++)
			seen = a->seqs[j] == l->tap_seq[i];
		if (seen)
			continue;
		if (a->n == a->cap) {
			size_t cap = a->cap ? a->cap * 2 : 64;
			uint64_t *grown = realloc(a->seqs, cap * sizeof(uint64_t));
			if (!grown)
				return ENOMEM;
			a->seqs = grown;
			a->cap = cap;
		}
		a->seqs[a->n++] = l->tap_seq[i];
	}
	return 0;
}

/* A token-day to rate again: its day, and a tap of it that names the token. */
struct token_day {
	uint32_t day;
	const struct fare_tap *tap;
};

static int cmp_token_day(const void *a, const void *b)
{
	const struct token_day *x = a, *y = b;
	struct fare_tap tx = *x->tap, ty = *y->tap;
	tx.day = x->day;
	ty.day = y->day;
	tx.time_us = ty.time_us = 0;
	tx.seq = ty.seq = 0;
	return cmp_tap(&tx, &ty);
}

static int64_t week_monday(uint32_t day)
{
	int64_t days = fare_days_from_date(day);
	return days - ((days % 7 + 7 + 3) % 7);
}

static int64_t month_first(uint32_t day)
{
	return fare_days_from_date(day / 100 * 100 + 1);
}

/* The last day a late tap on `day` can change: the end of its week and / or month (the day itself if neither). */
static int64_t cascade_end(const struct run *r, const struct fare_tap *t)
{
	int64_t end = fare_days_from_date(t->day);
	if (r->week_cascade[t->medium] && week_monday(t->day) + 6 > end)
		end = week_monday(t->day) + 6;
	if (r->month_cascade[t->medium]) {
		uint32_t next = t->day / 100 % 100 == 12 ? (t->day / 10000 + 1) * 10000 + 101 : t->day / 100 * 100 + 101;
		if (fare_days_from_date(next) - 1 > end)
			end = fare_days_from_date(next) - 1;
	}
	return end;
}

/*
 * Add the taps the legs of one token-day cover (taps already there excluded).
 * Returns 0 or a FARE_ERR_* with r->err filled (a tap a leg names is missing
 * or not sound: the seq).
 */
static int add_token_day(struct run *r, MDB_txn *txn, const struct token_day *td)
{
	uint8_t p[TOKEN_DAY_KEY_BYTES];
	struct old_taps_arg a = {.r = r};
	token_day_key(p, td->day, td->tap->medium, td->tap->issuer, td->tap->token_id);
	int rc = legs_of(r->db, txn, p, collect_old, &a);
	if (rc != 0)
		rc = fail_store(r, "reading the legs of a late token-day", rc);
	for (size_t j = 0; j < a.n && rc == 0; j++) {
		struct st_tap_meta meta;
		uint8_t rec[ST_RECORD_BYTES_MAX];
		struct fare_tap t;
		int bad;
		if ((rc = st_log_get(r->log, a.seqs[j], &meta, rec)) != 0)
			rc = fail_log(r, "a tap that a rated leg names", a.seqs[j], rc);
		else if ((bad = fare_tap_from_log(r->clk, a.seqs[j], &meta, rec, &t)) != 0)
			rc = fail_tap(r, a.seqs[j], bad);
		t.pad = 2; /* rated before */
		if (rc == 0)
			rc = push_tap(r, &t);
	}
	free(a.seqs);
	if (rc == 0 && a.n > 0)
		r->st->tokens_rerated++;
	return rc;
}

/*
 * The token-days to rate again: each late tap's, and on a medium with a
 * weekly cap, the token's later rated days of the same week (their week total
 * before them may change). Each gets the taps its legs cover, once.
 */
static int add_old_taps(struct run *r, MDB_txn *txn)
{
	size_t nlate = r->ntaps, n = 0;
	if (r->st->taps_late == 0)
		return 0;
	if (sort_taps(r) != 0)
		return FARE_ERR_NOMEM;
	struct token_day *tds = malloc((nlate * 31 + 1) * sizeof(*tds));
	if (!tds)
		return FARE_ERR_NOMEM;
	struct fare_tap *late = malloc(nlate * sizeof(*late) + 1);
	if (!late) {
		free(tds);
		return FARE_ERR_NOMEM;
	}
	memcpy(late, r->taps, nlate * sizeof(*late)); /* push_tap moves r->taps */
	for (size_t i = 0; i < nlate; i++) {
		const struct fare_tap *t = &late[i];
		if (t->pad != 1 || (i > 0 && same_token_day(&late[i - 1], t) && late[i - 1].pad == 1))
			continue;
		tds[n++] = (struct token_day){.day = t->day, .tap = t};
		if (!r->week_caps[t->medium])
			continue;
		int64_t last = cascade_end(r, t);
		for (int64_t d = fare_days_from_date(t->day) + 1; d <= last; d++) {
			uint32_t day = fare_date_from_days(d);
			if (set_has(&r->rated, day))
				tds[n++] = (struct token_day){.day = day, .tap = t};
		}
	}
	qsort(tds, n, sizeof(*tds), cmp_token_day);
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		if (i == 0 || cmp_token_day(&tds[i - 1], &tds[i]) != 0)
			rc = add_token_day(r, txn, &tds[i]);
	free(tds);
	free(late);
	return rc; /* add_token_day's message is in r->err */
}

/* --- 4. rating */

/* What a token-day's fare legs were charged: the week total's share of the day. */
static int64_t group_fares(const struct run *r, const struct group *g)
{
	int64_t sum = 0;
	for (uint32_t i = 0; i < g->nlegs; i++) {
		const struct fare_leg *l = &r->legs[g->leg_first + i].leg;
		if (!(l->flags & FARE_LEG_PURCHASE))
			sum += l->nominal + l->concession + l->transfer + l->cap;
	}
	return sum;
}

/* The group rated in this run for (day, the token of t), if any. */
static const struct group *group_of(const struct run *r, uint32_t day, const struct fare_tap *t)
{
	struct fare_tap key = *t;
	key.day = day;
	size_t lo = 0, hi = r->ngroups;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct fare_tap *m = &r->taps[r->groups[mid].first];
		if (same_token_day(m, &key))
			return &r->groups[mid];
		key.time_us = m->time_us;
		key.seq = m->seq;
		if (cmp_tap(m, &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The token's fares on earlier days of its week and month: rated in this run, or stored. */
static struct rate_before period_before(struct run *r, MDB_txn *txn, const struct fare_tap *t)
{
	struct rate_before b = {0};
	if (!r->week_caps[t->medium])
		return b;
	int64_t days = fare_days_from_date(t->day), monday = week_monday(t->day), first = month_first(t->day);
	uint8_t key[17];
	key[0] = t->medium;
	be32_put(key + 1, t->issuer);
	be64_put(key + 5, t->token_id);
	if (!r->week_cascade[t->medium])
		monday = days; /* no week cap: the week's days are not needed */
	if (!r->month_cascade[t->medium])
		first = days;
	for (int64_t d = monday < first ? monday : first; d < days; d++) {
		int64_t sum = 0;
		uint32_t day = fare_date_from_days(d);
		const struct group *g = group_of(r, day, t);
		be32_put(key + 13, day);
		MDB_val k = {.mv_size = 17, .mv_data = key}, v;
		if (g)
			sum = group_fares(r, g);
		else if (mdb_get(txn, r->db->weeks, &k, &v) == 0 && v.mv_size == 8)
			memcpy(&sum, v.mv_data, 8);
		b.week_fen += d >= monday ? sum : 0;
		b.month_fen += d >= first ? sum : 0;
	}
	return b;
}

static int sum_promotions(void *arg, const struct fare_leg *l)
{
	struct group *g = arg;
	if (l->promotion_idx < FARE_PROMOTIONS_MAX)
		g->own_budget[l->promotion_idx] += -(int64_t)l->promotion;
	return 0;
}

static int rate_all(struct run *r, MDB_txn *txn)
{
	if (sort_taps(r) != 0)
		return FARE_ERR_NOMEM;
	progress(r, "sorted %zu taps by token-day", r->ntaps);
	r->groups = calloc(r->ntaps + 1, sizeof(*r->groups));
	r->legs = calloc(r->ntaps + 1, sizeof(*r->legs));
	if (!r->groups || !r->legs)
		return FARE_ERR_NOMEM;
	for (size_t i = 0; i < r->ntaps;) {
		size_t j = i + 1;
		bool rerate = r->taps[i].pad != 0;
		while (j < r->ntaps && same_token_day(&r->taps[i], &r->taps[j]))
			rerate |= r->taps[j++].pad != 0;
		struct group *g = &r->groups[r->ngroups];
		g->first = (uint32_t)i;
		g->n = (uint32_t)(j - i);
		g->rerate = rerate;
		if (rerate) { /* the promotion it had is its own to use again */
			uint8_t p[TOKEN_DAY_KEY_BYTES];
			token_day_key(p, r->taps[i].day, r->taps[i].medium, r->taps[i].issuer, r->taps[i].token_id);
			int rc = legs_of(r->db, txn, p, sum_promotions, g);
			if (rc != 0)
				return fail_store(r, "reading a late token-day's promotions", rc);
		}
		g->leg_first = (uint32_t)r->nlegs;
		struct rate_before before = period_before(r, txn, &r->taps[i]);
		g->nlegs = rate_token_day(&r->ctx, &r->taps[i], g->n, &before, &r->legs[r->nlegs]);
		for (uint32_t k = 0; k < g->nlegs; k++)
			r->legs[r->nlegs + k].group_index = (uint32_t)r->ngroups;
		r->nlegs += g->nlegs;
		r->ngroups++;
		r->st->taps_rated += g->n;
		i = j;
	}
	return 0;
}

/* --- 5. promotions, over every token of the run */

static int cmp_candidate(const void *a, const void *b, void *arg)
{
	const struct rate_leg *legs = arg;
	const struct fare_leg *x = &legs[*(const uint32_t *)a].leg, *y = &legs[*(const uint32_t *)b].leg;
	if (x->day != y->day)
		return x->day < y->day ? -1 : 1;
	if (x->start_us != y->start_us)
		return x->start_us < y->start_us ? -1 : 1;
	if (x->medium != y->medium)
		return x->medium < y->medium ? -1 : 1;
	if (x->issuer != y->issuer)
		return x->issuer < y->issuer ? -1 : 1;
	if (x->token_id != y->token_id)
		return x->token_id < y->token_id ? -1 : 1;
	return x->leg_no < y->leg_no ? -1 : x->leg_no > y->leg_no;
}

static void grant_one(struct run *r, struct rate_leg *rl)
{
	const struct fare_promotion *p = &r->feed->promotion_rows[rl->promotion];
	struct promo_state *ps = &r->promo[rl->promotion];
	struct group *g = &r->groups[rl->group_index];
	struct fare_leg *l = &rl->leg;
	int64_t need = (int64_t)l->nominal + l->concession + l->transfer + l->cap - p->rider_amount_fen;
	if (g->promo_count[rl->promotion] >= p->max_per_token_per_day)
		return;
	int64_t own = g->own_budget[rl->promotion];
	int64_t from_own = own < need ? own : need;
	if (from_own < need && (ps->exhausted_day || p->budget_fen - ps->spent_fen < need - from_own)) {
		if (!ps->exhausted_day) {
			ps->exhausted_day = l->day;
			ps->exhausted_at_us = l->start_us;
		}
		return;
	}
	g->own_budget[rl->promotion] -= from_own;
	ps->spent_fen += need - from_own;
	g->promo_count[rl->promotion]++;
	l->promotion = (int32_t)-need;
	l->promotion_idx = (uint16_t)rl->promotion;
	rate_settle_leg(l);
}

static int grant_promotions(struct run *r)
{
	uint32_t *cand = malloc((r->nlegs + 1) * sizeof(*cand));
	size_t n = 0;
	if (!cand)
		return FARE_ERR_NOMEM;
	for (size_t i = 0; i < r->nlegs; i++)
		if (r->legs[i].promotion >= 0 && (uint32_t)r->legs[i].promotion < FARE_PROMOTIONS_MAX)
			cand[n++] = (uint32_t)i;
	qsort_r(cand, n, sizeof(*cand), cmp_candidate, r->legs);
	for (size_t i = 0; i < n; i++)
		grant_one(r, &r->legs[cand[i]]);
	free(cand);
	return 0;
}

/* --- 6. writing */

static int put_leg(struct run *r, MDB_txn *txn, const struct fare_leg *leg, bool *append)
{
	uint8_t key[LEG_KEY_BYTES];
	struct fare_leg stamped = *leg;
	const struct fare_leg *l = &stamped;
	stamped.run = r->run_no;
	leg_key(key, l);
	MDB_val k = {.mv_size = sizeof(key), .mv_data = key}, v = {.mv_size = sizeof(*l), .mv_data = (void *)l};
	int rc = mdb_put(txn, r->db->legs, &k, &v, *append ? MDB_APPEND : 0);
	if (rc == MDB_KEYEXIST && *append) { /* a later day is in the store already */
		*append = false;
		rc = mdb_put(txn, r->db->legs, &k, &v, 0);
	}
	r->st->legs_written += rc == 0;
	return rc;
}

static int put_days_in_progress(struct run *r, MDB_txn *txn, const struct day_set *days)
{
	MDB_val k = {.mv_size = 10, .mv_data = "inprogress"};
	MDB_val v = {.mv_size = days->n * 4, .mv_data = days->days};
	return days->n ? mdb_put(txn, r->db->meta, &k, &v, 0) : 0;
}

/* Mark the new days in progress (the next run undoes them if this one does not finish). A write step. */
static int mark_step(struct run *r, void *arg)
{
	MDB_txn *txn;
	int rc = fare_db_begin(r->db, 0, &txn);
	if (rc == 0 && (rc = put_days_in_progress(r, txn, arg)) != 0)
		mdb_txn_abort(txn);
	return rc == 0 ? mdb_txn_commit(txn) : rc;
}

/* Where the new days' legs are written up to: group, leg of the group. */
struct chunk_pos {
	size_t g;
	uint32_t i;
	bool append, done;
};

/* Up to WRITE_CHUNK_LEGS legs from pos in one transaction; pos moves on when it commits. A write step. */
static int chunk_step(struct run *r, void *arg)
{
	struct chunk_pos *pos = arg, at = *pos;
	MDB_txn *txn;
	size_t in_txn = 0;
	int rc = fare_db_begin(r->db, 0, &txn);
	if (rc != 0)
		return rc;
	while (rc == 0 && at.g < r->ngroups && in_txn < WRITE_CHUNK_LEGS) {
		const struct group *gr = &r->groups[at.g];
		if (gr->rerate || at.i >= gr->nlegs) { /* re-rated token-days are adjustments: write_final */
			at.g++;
			at.i = 0;
			continue;
		}
		struct fare_leg *l = &r->legs[gr->leg_first + at.i].leg;
		l->version = r->feed->version;
		if ((rc = put_leg(r, txn, l, &at.append)) == 0)
			at.i++, in_txn++;
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return rc;
	at.done = at.g >= r->ngroups;
	*pos = at;
	return 0;
}

/* The new days' legs, in chunks: the days are marked in progress first. Returns 0 or a FARE_ERR_*. */
static int write_new_legs(struct run *r, struct day_set *new_days)
{
	int rc = 0;
	for (size_t g = 0; g < r->ngroups; g++)
		if (!r->groups[g].rerate && !set_has(new_days, r->taps[r->groups[g].first].day) &&
		    (rc = set_add(new_days, r->taps[r->groups[g].first].day)) != 0)
			return rc;
	if ((rc = with_room(r, mark_step, new_days)) != 0)
		return fail_store(r, "marking the days being written", rc);
	struct chunk_pos pos = {.append = true};
	while (!pos.done) { /* each chunk writes WRITE_CHUNK_LEGS legs, or is the last */
		int fd;
		if ((rc = with_room(r, chunk_step, &pos)) != 0)
			return fail_store(r, "writing the new days' legs", rc);
		/* start writing the chunk back now: the sync at the end of the run has less to wait for */
		if (mdb_env_get_fd(r->db->env, &fd) == 0)
			(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		if (!r->opt->quiet && !pos.done)
			fprintf(stderr, "tapfare: wrote %llu legs\n", (unsigned long long)r->st->legs_written);
	}
	return 0;
}

struct sum_arg {
	struct old_leg *old;
	size_t n, cap;
	uint16_t max_rev;
};

static void add_money(struct fare_leg *to, const struct fare_leg *l, int sign)
{
	to->nominal += sign * l->nominal;
	to->concession += sign * l->concession;
	to->transfer += sign * l->transfer;
	to->cap += sign * l->cap;
	to->promotion += sign * l->promotion;
	to->subsidy += sign * l->subsidy;
	to->rider_fen += sign * l->rider_fen;
	to->promotion_funder_fen += sign * l->promotion_funder_fen;
	to->subsidy_funder_fen += sign * l->subsidy_funder_fen;
	to->operator_fen += sign * l->operator_fen;
}

static int sum_old(void *arg, const struct fare_leg *l)
{
	struct sum_arg *a = arg;
	if (l->rev > a->max_rev)
		a->max_rev = l->rev;
	for (size_t i = 0; i < a->n; i++)
		if (a->old[i].sum.first_seq == l->first_seq) {
			struct fare_leg *sum = &a->old[i].sum;
			add_money(sum, l, 1);
			sum->ntaps = l->ntaps; /* the taps as the latest revision has them (revisions come in order) */
			memcpy(sum->tap_seq, l->tap_seq, sizeof(sum->tap_seq));
			if (sum->promotion_idx == FARE_NONE) /* a revision that granted what revision 0 did not */
				sum->promotion_idx = l->promotion_idx;
			if (sum->subsidy_idx == FARE_NONE)
				sum->subsidy_idx = l->subsidy_idx;
			return 0;
		}
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 16;
		a->old = realloc(a->old, a->cap * sizeof(*a->old));
	}
	a->old[a->n].sum = *l;
	a->n++;
	return 0;
}

/* Whether a new rating's leg covers the same taps as the recorded one (none recorded: no). */
static bool same_taps(const struct fare_leg *l, const struct fare_leg *old)
{
	return old && old->ntaps == l->ntaps && memcmp(old->tap_seq, l->tap_seq, l->ntaps * sizeof(l->tap_seq[0])) == 0;
}

static bool money_zero(const struct fare_leg *l)
{
	return !l->nominal && !l->concession && !l->transfer && !l->cap && !l->promotion && !l->subsidy;
}

/* A re-rated token-day: adjustment legs = new - what was recorded. */
static int write_adjustments(struct run *r, MDB_txn *txn, struct group *g)
{
	const struct fare_tap *t0 = &r->taps[g->first];
	uint8_t p[TOKEN_DAY_KEY_BYTES];
	struct sum_arg a = {0};
	bool append = false;
	token_day_key(p, t0->day, t0->medium, t0->issuer, t0->token_id);
	int rc = legs_of(r->db, txn, p, sum_old, &a);
	uint16_t rev = (uint16_t)(a.max_rev + 1);
	for (uint32_t i = 0; i < g->nlegs && rc == 0; i++) {
		struct fare_leg adj = r->legs[g->leg_first + i].leg;
		const struct fare_leg *old = NULL;
		for (size_t j = 0; j < a.n; j++)
			if (a.old[j].sum.first_seq == adj.first_seq) {
				old = &a.old[j].sum;
				add_money(&adj, &a.old[j].sum, -1);
				a.old[j].max_rev = UINT16_MAX; /* matched */
				/* a promotion or subsidy taken back names the scheme it came from */
				if (adj.promotion_idx == FARE_NONE)
					adj.promotion_idx = a.old[j].sum.promotion_idx;
				if (adj.subsidy_idx == FARE_NONE)
					adj.subsidy_idx = a.old[j].sum.subsidy_idx;
			}
		adj.rev = rev;
		adj.version = r->feed->version;
		/* a leg whose taps changed is written even when its money did not: every tap is in a leg */
		if ((!money_zero(&adj) || !same_taps(&adj, old)) && (rc = put_leg(r, txn, &adj, &append)) == 0)
			r->st->adjustment_legs++;
	}
	for (size_t j = 0; j < a.n && rc == 0; j++) {
		if (a.old[j].max_rev == UINT16_MAX || money_zero(&a.old[j].sum))
			continue;
		struct fare_leg gone = a.old[j].sum, adj = gone;
		memset(&adj.nominal, 0, sizeof(int32_t) * 10);
		add_money(&adj, &gone, -1);
		adj.rev = rev;
		adj.leg_no = (uint16_t)(g->nlegs + 1 + j); /* after the new rating's legs */
		adj.flags |= FARE_LEG_VANISHED;
		adj.version = r->feed->version;
		if ((rc = put_leg(r, txn, &adj, &append)) == 0)
			r->st->adjustment_legs++;
	}
	free(a.old);
	return rc;
}

static int write_audit(struct run *r, MDB_txn *txn, struct group *g)
{
	const struct fare_tap *t0 = &r->taps[g->first];
	uint8_t key[TOKEN_DAY_KEY_BYTES + 4], ck[16];
	struct card_state cs = {0};
	bool have_prev = false;
	int rc;
	if (t0->medium != FARE_EPURSE)
		return 0;
	/* the card's last tap before this day */
	be32_put(ck, t0->issuer);
	be64_put(ck + 4, t0->token_id);
	be32_put(ck + 12, t0->day);
	MDB_cursor *c;
	MDB_val k = {.mv_size = 16, .mv_data = ck}, v;
	if ((rc = mdb_cursor_open(txn, r->db->cards, &c)) != 0)
		return rc;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	rc = rc == 0 ? mdb_cursor_get(c, &k, &v, MDB_PREV) : mdb_cursor_get(c, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size == 16 && memcmp(k.mv_data, ck, 12) == 0 && v.mv_size == sizeof(cs)) {
		memcpy(&cs, v.mv_data, sizeof(cs));
		have_prev = true;
	}
	mdb_cursor_close(c);
	struct audit_line lines[AUDIT_LINES_MAX];
	unsigned n = rate_audit(&r->ctx, &r->taps[g->first], g->n, &r->legs[g->leg_first], g->nlegs, have_prev,
				cs.last_ctc, cs.last_after_fen, lines, AUDIT_LINES_MAX, &cs.last_ctc, &cs.last_after_fen);
	token_day_key(key, t0->day, t0->medium, t0->issuer, t0->token_id);
	if (g->rerate && (rc = delete_prefix(txn, r->db->audit, key, TOKEN_DAY_KEY_BYTES)) != 0)
		return rc;
	for (unsigned i = 0; i < n; i++) {
		be32_put(key + TOKEN_DAY_KEY_BYTES, i);
		MDB_val ak = {.mv_size = sizeof(key), .mv_data = key};
		MDB_val av = {.mv_size = strlen(lines[i].text), .mv_data = lines[i].text};
		if ((rc = mdb_put(txn, r->db->audit, &ak, &av, 0)) != 0)
			return rc;
	}
	r->st->audit_lines += n;
	k.mv_size = 16;
	k.mv_data = ck;
	v.mv_size = sizeof(cs);
	v.mv_data = &cs;
	return mdb_put(txn, r->db->cards, &k, &v, 0);
}

static int write_week(struct run *r, MDB_txn *txn, struct group *g)
{
	const struct fare_tap *t0 = &r->taps[g->first];
	if (!r->week_caps[t0->medium])
		return 0;
	int64_t sum = group_fares(r, g);
	uint8_t key[17];
	key[0] = t0->medium;
	be32_put(key + 1, t0->issuer);
	be64_put(key + 5, t0->token_id);
	be32_put(key + 13, t0->day);
	MDB_val k = {.mv_size = 17, .mv_data = key}, v = {.mv_size = 8, .mv_data = &sum};
	return mdb_put(txn, r->db->weeks, &k, &v, 0);
}

/* The last transaction's per token-day part: the feed, adjustments, audits, weeks, promotions. */
static int final_groups(struct run *r, MDB_txn *txn)
{
	int rc = r->ngroups > 0 ? fare_db_put_feed(r->db, txn, r->feed) : 0;
	for (size_t g = 0; g < r->ngroups && rc == 0; g++) {
		struct group *gr = &r->groups[g];
		if (gr->rerate)
			rc = write_adjustments(r, txn, gr);
		if (rc == 0)
			rc = write_audit(r, txn, gr);
		if (rc == 0)
			rc = write_week(r, txn, gr);
	}
	for (uint32_t p = 0; p < r->feed->npromotions && p < FARE_PROMOTIONS_MAX && rc == 0; p++) {
		const char *id = r->feed->promotions.names[p];
		MDB_val k = {.mv_size = strlen(id), .mv_data = (void *)id};
		MDB_val v = {.mv_size = sizeof(r->promo[p]), .mv_data = &r->promo[p]};
		rc = mdb_put(txn, r->db->promos, &k, &v, 0);
	}
	return rc;
}

/* The last transaction's run part: the rated days, the days still to rate, the cursor, the run mark. */
static int final_days(struct run *r, MDB_txn *txn, const struct day_set *new_days)
{
	int rc = 0;
	for (size_t i = 0; i < new_days->n && rc == 0; i++) {
		uint8_t dk[4];
		struct day_state ds = {.version = r->feed->version, .rated_at_us = r->now_us};
		be32_put(dk, new_days->days[i]);
		MDB_val k = {.mv_size = 4, .mv_data = dk}, v = {.mv_size = sizeof(ds), .mv_data = &ds};
		if ((rc = mdb_put(txn, r->db->days, &k, &v, 0)) == 0) {
			rc = mdb_del(txn, r->db->daymin, &k, NULL);
			rc = rc == MDB_NOTFOUND ? 0 : rc;
		}
		r->st->days_rated += rc == 0;
	}
	for (size_t i = 0; i < r->daymin_days.n && rc == 0; i++) {
		uint8_t dk[4];
		be32_put(dk, r->daymin_days.days[i]);
		MDB_val k = {.mv_size = 4, .mv_data = dk}, v = {.mv_size = 8, .mv_data = &r->daymin_seq[i]};
		if (!set_has(new_days, r->daymin_days.days[i]))
			rc = mdb_put(txn, r->db->daymin, &k, &v, 0);
	}
	MDB_val ck = {.mv_size = 6, .mv_data = "cursor"}, cv = {.mv_size = 8, .mv_data = &r->last_seq};
	MDB_val ik = {.mv_size = 10, .mv_data = "inprogress"};
	struct run_mark mark = {.run = r->run_no, .at_us = r->now_us};
	MDB_val rk = {.mv_size = 4, .mv_data = "runs"}, rv = {.mv_size = sizeof(mark), .mv_data = &mark};
	if (rc == 0)
		rc = mdb_put(txn, r->db->meta, &ck, &cv, 0);
	if (rc == 0 && r->st->legs_written > 0) /* a run that wrote no leg keeps no number */
		rc = mdb_put(txn, r->db->meta, &rk, &rv, 0);
	if (rc == 0 && (rc = mdb_del(txn, r->db->meta, &ik, NULL)) == MDB_NOTFOUND)
		rc = 0;
	return rc;
}

/*
 * The run's last transaction; the chunks are synced before the commit that
 * names them, and the commit after. A write step. Returns an LMDB code.
 */
static int final_step(struct run *r, void *arg)
{
	MDB_txn *txn;
	int rc = fare_db_begin(r->db, 0, &txn);
	if (rc != 0)
		return rc;
	if ((rc = final_groups(r, txn)) == 0 && (rc = final_days(r, txn, arg)) == 0)
		rc = mdb_env_sync(r->db->env, 1);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return rc;
	return mdb_env_sync(r->db->env, 1);
}

static int write_final(struct run *r, struct day_set *new_days)
{
	int rc = with_room(r, final_step, new_days);
	return rc == 0 ? 0 : fail_store(r, "committing the run (adjustments, audits, the cursor)", rc);
}

static void run_free(struct run *r)
{
	free(r->ctx.memo);
	free(r->ctx.zone_clock);
	free(r->rated.days);
	free(r->daymin_days.days);
	free(r->daymin_seq);
	free(r->taps);
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
		rc = rate_zone_clocks(&r.ctx, err, err_len); /* timeframes at stops with their own stop_timezone */
	if (rc == 0 && (rc = with_room(&r, undo_step, NULL)) != 0)
		rc = fail_store(&r, "undoing the days a run did not finish", rc);
	if (rc == 0 && (rc = fare_db_begin(db, MDB_RDONLY, &txn)) != 0)
		rc = fail_store(&r, "beginning a read", rc);
	if (rc == 0)
		rc = load_state(&r, txn);
	if (rc == 0)
		rc = scan_log(&r);
	if (rc == 0)
		progress(&r, "read the log: %llu taps", (unsigned long long)stats->taps_scanned);
	if (rc == 0)
		rc = add_old_taps(&r, txn);
	if (rc == 0)
		progress(&r, "late taps: %llu, token-days to rate again: %llu", (unsigned long long)stats->taps_late, (unsigned long long)stats->tokens_rerated);
	if (rc == 0)
		rc = rate_all(&r, txn);
	if (rc == 0)
		progress(&r, "rated %zu taps into %zu legs", r.ntaps, r.nlegs);
	if (txn)
		mdb_txn_abort(txn);
	if (rc == 0)
		rc = grant_promotions(&r);
	if (rc == 0)
		progress(&r, "granted promotions");
	if (rc == 0)
		rc = write_new_legs(&r, &new_days);
	if (rc == 0)
		progress(&r, "wrote the new days' legs");
	if (rc == 0)
		rc = write_final(&r, &new_days);
	if (rc == 0)
		progress(&r, "committed: %llu legs, %llu adjustment legs, %llu audit lines", (unsigned long long)stats->legs_written, (unsigned long long)stats->adjustment_legs, (unsigned long long)stats->audit_lines);
	for (size_t i = 0; i < r.nlegs; i++)
		stats->norule_legs += (r.legs[i].leg.flags & FARE_LEG_NORULE) != 0;
	if (rc == FARE_ERR_NOMEM && err[0] == '\0')
		snprintf(err, err_len, "out of memory");
	free(new_days.days);
	run_free(&r);
	return rc;
}
