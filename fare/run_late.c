/*
 * run_late.c - phase 3 of a rating run (run.c): for each late (day, token),
 * its legs so far and their taps, so that the token-day is rated again whole.
 */
#include "fare/run.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int fare_run_legs_of(struct fare_db *db, MDB_txn *txn, const uint8_t prefix[TOKEN_DAY_KEY_BYTES], leg_fn fn,
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
	return fare_run_cmp_tap(&tx, &ty);
}

int64_t fare_run_week_monday(uint32_t day)
{
	int64_t days = fare_days_from_date(day);
	return days - ((days % 7 + 7 + 3) % 7);
}

int64_t fare_run_month_first(uint32_t day)
{
	return fare_days_from_date(day / 100 * 100 + 1);
}

/* The last day a late tap on `day` can change: the end of its week and / or month (the day itself if neither). */
static int64_t cascade_end(const struct run *r, const struct fare_tap *t)
{
	int64_t end = fare_days_from_date(t->day);
	if (r->week_cascade[t->medium] && fare_run_week_monday(t->day) + 6 > end)
		end = fare_run_week_monday(t->day) + 6;
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
	int rc = fare_run_legs_of(r->db, txn, p, collect_old, &a);
	if (rc != 0)
		rc = fare_run_fail_store(r, "reading the legs of a late token-day", rc);
	for (size_t j = 0; j < a.n && rc == 0; j++) {
		struct st_tap_meta meta;
		uint8_t rec[ST_RECORD_BYTES_MAX];
		struct fare_tap t;
		int bad;
		if ((rc = st_log_get(r->log, a.seqs[j], &meta, rec)) != 0)
			rc = fare_run_fail_log(r, "a tap that a rated leg names", a.seqs[j], rc);
		else if ((bad = fare_tap_from_log(r->clk, a.seqs[j], &meta, rec, &t)) != 0)
			rc = fare_run_fail_tap(r, a.seqs[j], bad);
		t.pad = 2; /* rated before */
		if (rc == 0)
			rc = fare_run_push_tap(r, &t);
	}
	free(a.seqs);
	if (rc == 0 && a.n > 0)
		r->st->tokens_rerated++;
	return rc;
}

/* The legs of one token-day seen so far by unrated_scan: each identity's latest revision. */
struct latest_rev {
	uint64_t first_seq;
	uint16_t rev;
	bool unrated;
};

#define TOKEN_DAY_LEGS_MAX 1024u

/* Whether a token-day's legs leave some leg unrated: its latest revision flagged norule. */
static bool any_open_unrated(const struct latest_rev *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].unrated)
			return true;
	return false;
}

/* A tap that names a token-day (never rated: it only says which token-day to rate again). */
static int push_marker(struct fare_tap **out, size_t *n, size_t *cap, const struct fare_leg *l)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct fare_tap *g = realloc(*out, c * sizeof(*g));
		if (!g)
			return ENOMEM;
		*out = g;
		*cap = c;
	}
	(*out)[(*n)++] = (struct fare_tap){.day = l->day, .medium = l->medium, .issuer = l->issuer,
					  .token_id = l->token_id, .pad = 1};
	return 0;
}

/*
 * The token-days of r->opt->rerate_unrated_day holding a leg whose latest
 * revision is unrated (FARE_LEG_NORULE): one marker tap each in *out (free
 * it). Legs come in key order, so a token-day's revisions are together.
 * Returns 0 or an LMDB / errno code.
 */
static int unrated_token_days(struct run *r, MDB_txn *txn, struct fare_tap **out, size_t *n)
{
	uint8_t prefix[4];
	struct latest_rev seen[TOKEN_DAY_LEGS_MAX];
	size_t nseen = 0, cap = 0;
	struct fare_leg prev = {0};
	MDB_cursor *c;
	be32_put(prefix, r->opt->rerate_unrated_day);
	MDB_val k = {.mv_size = 4, .mv_data = prefix}, v;
	int rc = mdb_cursor_open(txn, r->db->legs, &c);
	for (rc = rc ? rc : mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct fare_leg l;
		if (k.mv_size != LEG_KEY_BYTES || memcmp(k.mv_data, prefix, 4) != 0)
			break;
		if (v.mv_size != sizeof(l)) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(&l, v.mv_data, sizeof(l));
		if (nseen > 0 && (l.medium != prev.medium || l.issuer != prev.issuer || l.token_id != prev.token_id)) {
			if (any_open_unrated(seen, nseen) && (rc = push_marker(out, n, &cap, &prev)) != 0)
				break;
			nseen = 0;
		}
		size_t i = 0;
		while (i < nseen && seen[i].first_seq != l.first_seq)
			i++;
		if (i == nseen && nseen < TOKEN_DAY_LEGS_MAX)
			seen[nseen++] = (struct latest_rev){.first_seq = l.first_seq};
		if (i < nseen && l.rev >= seen[i].rev) /* revisions come in order: the last one stays */
			seen[i].rev = l.rev, seen[i].unrated = (l.flags & (FARE_LEG_NORULE | FARE_LEG_VANISHED)) == FARE_LEG_NORULE;
		prev = l;
	}
	if ((rc == 0 || rc == MDB_NOTFOUND) && nseen > 0 && any_open_unrated(seen, nseen))
		rc = push_marker(out, n, &cap, &prev);
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * The token-days to rate again: each late tap's, and on a medium with a
 * weekly cap, the token's later rated days of the same week (their week total
 * before them may change). Each gets the taps its legs cover, once.
 */
int fare_run_add_old_taps(struct run *r, MDB_txn *txn)
{
	size_t nlate = r->ntaps, n = 0, nmarkers = 0;
	struct fare_tap *markers = NULL;
	int rc = r->opt->rerate_unrated_day ? unrated_token_days(r, txn, &markers, &nmarkers) : 0;
	if (rc != 0) {
		free(markers);
		return fare_run_fail_store(r, "reading the unrated legs of the day to rate again", rc);
	}
	if (r->st->taps_late == 0 && nmarkers == 0)
		return 0;
	if (fare_run_sort_taps(r) != 0) {
		free(markers);
		return FARE_ERR_NOMEM;
	}
	nlate += nmarkers; /* the markers are late taps for this phase only: they are never rated */
	struct token_day *tds = malloc((nlate * 31 + 1) * sizeof(*tds));
	struct fare_tap *late = malloc(nlate * sizeof(*late) + 1);
	if (!tds || !late) {
		free(tds);
		free(late);
		free(markers);
		return FARE_ERR_NOMEM;
	}
	if (r->ntaps) /* r->taps may be NULL: only markers */
		memcpy(late, r->taps, r->ntaps * sizeof(*late)); /* fare_run_push_tap moves r->taps */
	if (nmarkers)
		memcpy(late + r->ntaps, markers, nmarkers * sizeof(*late));
	free(markers);
	for (size_t i = 0; i < nlate; i++) {
		const struct fare_tap *t = &late[i];
		if (t->pad != 1 || (i > 0 && fare_run_same_token_day(&late[i - 1], t) && late[i - 1].pad == 1))
			continue;
		tds[n++] = (struct token_day){.day = t->day, .tap = t};
		if (!r->week_caps[t->medium])
			continue;
		int64_t last = cascade_end(r, t);
		for (int64_t d = fare_days_from_date(t->day) + 1; d <= last; d++) {
			uint32_t day = fare_date_from_days(d);
			if (fare_run_set_has(&r->rated, day))
				tds[n++] = (struct token_day){.day = day, .tap = t};
		}
	}
	qsort(tds, n, sizeof(*tds), cmp_token_day);
	for (size_t i = 0; i < n && rc == 0; i++)
		if (i == 0 || cmp_token_day(&tds[i - 1], &tds[i]) != 0)
			rc = add_token_day(r, txn, &tds[i]);
	free(tds);
	free(late);
	return rc; /* add_token_day's message is in r->err */
}
