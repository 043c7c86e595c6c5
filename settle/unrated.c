/*
 * unrated.c - legs no rule prices, held out of settlement (docs/SETTLEMENT.md
 * section 2.1): which legs a round holds out, what each round held, the
 * write-offs, `tapsettle write-off-unrated`, and the unrated part of status.
 *
 * A leg flagged FARE_LEG_NORULE that carries no money is never in a batch:
 * no zero item, no TIDES row. Its round records how many it held. It stays
 * open until a later revision prices it (a feed that prices it is loaded and
 * the day is rated again: `tapfare rate --rerate-unrated DAY`; the revision
 * is an adjustment of a later round, like a late tap's), or until it is
 * written off here; a written-off leg's later revisions are held out too.
 * So every leg revision is in exactly one round, and there either in its
 * batches or held out: reconciliation checks that partition (reconcile.c).
 */
#include "settle/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int settle_unrated_dbs_open(struct settle_db *db, MDB_txn *txn, unsigned flags)
{
	int rc = mdb_dbi_open(txn, "held", flags, &db->held);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "writeoff", flags, &db->writeoff);
	db->have_unrated_dbs = rc == 0;
	return rc == MDB_NOTFOUND && !(flags & MDB_CREATE) ? 0 : rc; /* read only, written before them: none */
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void held_key(uint8_t k[6], uint32_t day, uint16_t round)
{
	put_be32(k, day);
	k[4] = (uint8_t)(round >> 8), k[5] = (uint8_t)round;
}

static void writeoff_key(uint8_t k[12], uint32_t day, uint64_t first_seq)
{
	put_be32(k, day);
	put_be32(k + 4, (uint32_t)(first_seq >> 32));
	put_be32(k + 8, (uint32_t)first_seq);
}

int settle_round_held_put_txn(struct settle_db *db, MDB_txn *txn, uint32_t day, uint16_t round,
			      const struct round_held *h)
{
	uint8_t k[6];
	held_key(k, day, round);
	MDB_val kv = {.mv_size = sizeof(k), .mv_data = k}, v = {.mv_size = sizeof(*h), .mv_data = (void *)h};
	return mdb_put(txn, db->held, &kv, &v, 0);
}

int settle_round_held_get(struct settle_db *db, uint32_t day, uint16_t round, struct round_held *out, bool *have,
			  char *err, size_t err_len)
{
	MDB_txn *txn;
	uint8_t k[6];
	memset(out, 0, sizeof(*out));
	*have = false;
	if (!db->have_unrated_dbs)
		return 0;
	held_key(k, day, round);
	MDB_val kv = {.mv_size = sizeof(k), .mv_data = k}, v;
	int rc = settle_txn_begin(db, MDB_RDONLY, &txn);
	if (rc != 0)
		return settle_store_fail(db, err, err_len, "beginning a transaction", rc);
	rc = mdb_get(txn, db->held, &kv, &v);
	if (rc == 0 && v.mv_size == sizeof(*out)) {
		memcpy(out, v.mv_data, sizeof(*out));
		*have = true;
	}
	mdb_txn_abort(txn);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : settle_store_fail(db, err, err_len, "held legs", rc);
}

static int cmp_writeoff(const void *a, const void *b)
{
	const struct writeoff *x = a, *y = b;
	return x->first_seq < y->first_seq ? -1 : x->first_seq > y->first_seq;
}

/* The write-offs of a day, in a transaction of the caller's. Returns an LMDB or errno code. */
static int writeoffs_read(struct settle_db *db, MDB_txn *txn, uint32_t day, struct settle_writeoffs *w)
{
	uint8_t k0[12];
	MDB_cursor *cur;
	size_t cap = 0;
	writeoff_key(k0, day, 0);
	MDB_val k = {.mv_size = sizeof(k0), .mv_data = k0}, v;
	int rc = mdb_cursor_open(txn, db->writeoff, &cur);
	for (rc = rc ? rc : mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != sizeof(k0) || memcmp(k.mv_data, k0, 4) != 0 || v.mv_size != sizeof(struct writeoff))
			break;
		if (settle_array_room(&w->v, &cap, w->n, sizeof(*w->v), 16) != 0) {
			rc = ENOMEM;
			break;
		}
		memcpy(&w->v[w->n++], v.mv_data, sizeof(struct writeoff));
	}
	mdb_cursor_close(cur);
	if (w->n > 1)
		qsort(w->v, w->n, sizeof(*w->v), cmp_writeoff); /* keys are by first_seq already; cheap */
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int settle_writeoffs_load(struct settle_db *db, uint32_t day, struct settle_writeoffs *w, char *err, size_t err_len)
{
	MDB_txn *txn;
	memset(w, 0, sizeof(*w));
	if (!db->have_unrated_dbs)
		return 0;
	int rc = settle_txn_begin(db, MDB_RDONLY, &txn);
	if (rc != 0)
		return settle_store_fail(db, err, err_len, "beginning a transaction", rc);
	rc = writeoffs_read(db, txn, day, w);
	mdb_txn_abort(txn);
	if (rc != 0) {
		settle_writeoffs_free(w);
		return settle_store_fail(db, err, err_len, "reading the write-offs", rc);
	}
	return 0;
}

void settle_writeoffs_free(struct settle_writeoffs *w)
{
	free(w->v);
	w->v = NULL;
	w->n = 0;
}

const struct writeoff *settle_writeoff_find(const struct settle_writeoffs *w, uint64_t first_seq)
{
	struct writeoff key = {.first_seq = first_seq};
	return w && w->n ? bsearch(&key, w->v, w->n, sizeof(*w->v), cmp_writeoff) : NULL;
}

static bool leg_money_zero(const struct fare_leg *l)
{
	return !l->nominal && !l->concession && !l->transfer && !l->cap && !l->promotion && !l->subsidy &&
	       !l->rider_fen && !l->promotion_funder_fen && !l->subsidy_funder_fen && !l->operator_fen;
}

enum settle_hold settle_leg_hold(const struct settle_writeoffs *w, const struct fare_leg *l, uint16_t round)
{
	const struct writeoff *wo = settle_writeoff_find(w, l->first_seq);
	if (wo && wo->round_from <= round)
		return SETTLE_HOLD_WRITTEN_OFF;
	if ((l->flags & FARE_LEG_NORULE) && leg_money_zero(l))
		return SETTLE_HOLD_UNRATED;
	return SETTLE_HOLD_NONE;
}

int settle_held_add(struct held_legs *h, const struct fare_leg *l, enum settle_hold why)
{
	if (!h)
		return 0;
	if (why == SETTLE_HOLD_UNRATED) {
		h->counts.unrated++;
	} else {
		h->counts.written_off++;
		h->written_off_operator_fen += l->operator_fen;
	}
	if (settle_array_room(&h->v, &h->cap, h->n, sizeof(*h->v), 256) != 0)
		return SETTLE_ERR_NOMEM;
	h->v[h->n++] = (struct held_leg){.first_seq = l->first_seq, .rev = l->rev, .hold = (uint8_t)why,
					 .operator_id = l->operator_id};
	return 0;
}

/* --- the unrated legs of a day: each leg identity with an unrated revision */

struct scan {
	struct unrated_day *u;
	struct unrated_leg *tok; /* the legs of the token-day being read */
	bool *has_unrated;
	size_t ntok, captok;
	uint8_t medium;
	uint32_t issuer;
	uint64_t token;
};

/* The token-day read: its legs with an unrated revision go to the day's list. */
static int scan_flush(struct scan *s)
{
	for (size_t i = 0; i < s->ntok; i++) {
		if (!s->has_unrated[i])
			continue;
		if (settle_array_room(&s->u->v, &s->u->cap, s->u->n, sizeof(*s->u->v), 256) != 0)
			return SETTLE_ERR_NOMEM;
		s->u->v[s->u->n++] = s->tok[i];
	}
	s->ntok = 0;
	return 0;
}

static int scan_grow(struct scan *s)
{
	size_t cap = s->captok ? s->captok * 2 : 64;
	struct unrated_leg *g = realloc(s->tok, cap * sizeof(*g));
	if (g)
		s->tok = g;
	bool *h = g ? realloc(s->has_unrated, cap * sizeof(*h)) : NULL;
	if (h)
		s->has_unrated = h;
	if (!g || !h)
		return SETTLE_ERR_NOMEM;
	s->captok = cap;
	return 0;
}

static int scan_leg(void *arg, const struct fare_leg *l, const struct fare_feed *f)
{
	struct scan *s = arg;
	(void)f;
	int rc = 0;
	if (s->ntok && (l->medium != s->medium || l->issuer != s->issuer || l->token_id != s->token))
		rc = scan_flush(s);
	s->medium = l->medium, s->issuer = l->issuer, s->token = l->token_id;
	size_t i = 0;
	while (i < s->ntok && s->tok[i].first_seq != l->first_seq)
		i++;
	if (rc == 0 && i == s->ntok && s->ntok == s->captok)
		rc = scan_grow(s);
	if (rc != 0)
		return rc;
	/* a vanished leg's adjustment keeps its first revision's flags: it is a leg gone, not one unrated */
	bool unrated = (l->flags & (FARE_LEG_NORULE | FARE_LEG_VANISHED)) == FARE_LEG_NORULE;
	if (i == s->ntok) {
		s->ntok++;
		s->has_unrated[i] = false;
		s->tok[i] = (struct unrated_leg){.first_seq = l->first_seq, .token = l->token_id, .issuer = l->issuer,
						 .medium = l->medium};
	}
	struct unrated_leg *u = &s->tok[i];
	if (unrated && !s->has_unrated[i]) {
		s->has_unrated[i] = true;
		u->unrated_rev = l->rev, u->unrated_run = l->run;
	}
	/* revisions come in order: the last one seen is the latest */
	u->latest_rev = l->rev, u->latest_run = l->run, u->open = unrated;
	u->operator_id = l->operator_id, u->leg_no = l->leg_no;
	return 0;
}

int settle_unrated_scan(struct settle_ctx *c, uint32_t day, struct unrated_day *u, char *err, size_t err_len)
{
	struct scan s = {.u = u};
	struct fare_query q = {.day = day};
	char ferr[FARE_ERR_MAX];
	memset(u, 0, sizeof(*u));
	int rc = fare_legs_each(c->rated, &q, scan_leg, &s, ferr, sizeof(ferr));
	if (rc == 0)
		rc = scan_flush(&s);
	else if (rc != SETTLE_ERR_NOMEM) {
		snprintf(err, err_len, "rated store: %s", ferr);
		rc = SETTLE_ERR_STORE;
	}
	free(s.tok);
	free(s.has_unrated);
	if (rc != 0) {
		free(u->v);
		u->v = NULL;
	}
	return rc;
}

/* --- tapsettle write-off-unrated */

/* What a write-off of leg u says, on out. */
static void writeoff_line(FILE *out, const char *what, uint32_t day, const struct unrated_leg *u)
{
	char tok[64];
	fare_token_format(u->medium, u->issuer, u->token, tok, sizeof(tok));
	fprintf(out, "%s: day %u leg %llu (%s #%u r%u, operator %u)\n", what, day, (unsigned long long)u->first_seq, tok,
		u->leg_no, u->unrated_rev, u->operator_id);
}

struct writeoff_job {
	struct settle_ctx *c;
	uint32_t day;
	uint64_t seq; /* 0: every open unrated leg */
	uint16_t round_from;
	uint32_t closed_run; /* the last round's last rating run */
	FILE *out;
	unsigned written, already;
};

/* Write off the open unrated legs the job names, in txn. Returns 0, SETTLE_ERR_INVALID (err), or an LMDB code. */
static int writeoff_put(struct writeoff_job *j, MDB_txn *txn, const struct unrated_day *u, const struct settle_writeoffs *had,
			char *err, size_t err_len)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	bool named = false;
	for (size_t i = 0; i < u->n; i++) {
		const struct unrated_leg *l = &u->v[i];
		if (j->seq && l->first_seq != j->seq)
			continue;
		named = true;
		if (settle_writeoff_find(had, l->first_seq)) {
			j->already++;
			writeoff_line(j->out, "already written off", j->day, l);
			continue;
		}
		if (!l->open || l->latest_run > j->closed_run) {
			if (!j->seq)
				continue;
			snprintf(err, err_len, "leg %llu of %u is not an open unrated leg of a closed round: %s",
				 (unsigned long long)l->first_seq, j->day,
				 !l->open ? "a later revision priced it" : "rated after the last close (close the day first)");
			return SETTLE_ERR_INVALID;
		}
		struct writeoff w = {.first_seq = l->first_seq, .token = l->token, .day = j->day, .issuer = l->issuer,
				     .round_from = j->round_from, .rev = l->latest_rev, .leg_no = l->leg_no,
				     .operator_id = l->operator_id, .medium = l->medium,
				     .at_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u};
		uint8_t k[12];
		writeoff_key(k, j->day, l->first_seq);
		MDB_val kv = {.mv_size = sizeof(k), .mv_data = k}, v = {.mv_size = sizeof(w), .mv_data = &w};
		int rc = mdb_put(txn, j->c->db->writeoff, &kv, &v, 0);
		if (rc != 0)
			return rc;
		j->written++;
		writeoff_line(j->out, "written off", j->day, l);
	}
	if (j->seq && !named) {
		snprintf(err, err_len, "day %u has no unrated leg %llu (tapsettle reconcile --day %u lists them)", j->day,
			 (unsigned long long)j->seq, j->day);
		return SETTLE_ERR_INVALID;
	}
	return 0;
}

/* The day's rounds and pending state allow a write-off: closed, nothing pending. Returns 0 or SETTLE_ERR_*. */
static int writeoff_ready(struct writeoff_job *j, char *err, size_t err_len)
{
	struct round *rounds, pending;
	unsigned n;
	bool have;
	int rc = settle_pending_get(j->c->db, &pending, &have, err, err_len);
	if (rc == 0 && have) {
		snprintf(err, err_len, "day %u round %u is pending (interrupted): close again first", pending.day,
			 pending.round);
		return SETTLE_ERR_INVALID;
	}
	if (rc == 0)
		rc = settle_rounds(j->c->db, j->day, &rounds, &n, err, err_len);
	if (rc != 0)
		return rc;
	if (n == 0) {
		free(rounds);
		snprintf(err, err_len, "business day %u has not been closed (tapsettle close --day %u)", j->day, j->day);
		return SETTLE_ERR_INVALID;
	}
	j->round_from = (uint16_t)(rounds[n - 1].round + 1);
	j->closed_run = rounds[n - 1].run_hi;
	free(rounds);
	return 0;
}

int settle_write_off_unrated(struct settle_ctx *c, uint32_t day, uint64_t seq, FILE *out, char *err, size_t err_len)
{
	struct writeoff_job j = {.c = c, .day = day, .seq = seq, .out = out};
	struct unrated_day u = {0};
	struct settle_writeoffs had = {0};
	MDB_txn *txn = NULL;
	int rc = writeoff_ready(&j, err, err_len);
	if (rc == 0)
		rc = settle_unrated_scan(c, day, &u, err, err_len);
	if (rc == 0)
		rc = settle_writeoffs_load(c->db, day, &had, err, err_len);
	int lmdb_rc = rc == 0 ? settle_txn_begin(c->db, 0, &txn) : 0;
	if (rc == 0 && lmdb_rc == 0)
		lmdb_rc = writeoff_put(&j, txn, &u, &had, err, err_len);
	if (lmdb_rc == SETTLE_ERR_INVALID)
		rc = lmdb_rc, lmdb_rc = 0;
	if (rc == 0 && lmdb_rc == 0)
		lmdb_rc = mdb_txn_commit(txn), txn = NULL;
	if (txn)
		mdb_txn_abort(txn);
	if (rc == 0 && lmdb_rc != 0)
		rc = settle_store_fail(c->db, err, err_len, "recording the write-offs", lmdb_rc);
	if (rc == 0)
		fprintf(out, "day %u: %u unrated leg%s written off, %u already written off\n", day, j.written,
			j.written == 1 ? "" : "s", j.already);
	free(u.v);
	settle_writeoffs_free(&had);
	return rc;
}

/* --- status */

/* Every write-off, for tapsettle status. Returns 0 or SETTLE_ERR_*. */
int settle_writeoffs_print(struct settle_ctx *c, FILE *out, char *err, size_t err_len)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	if (!c->db->have_unrated_dbs)
		return 0;
	int rc = settle_txn_begin(c->db, MDB_RDONLY, &txn);
	if (rc != 0)
		return settle_store_fail(c->db, err, err_len, "beginning a transaction", rc);
	if ((rc = mdb_cursor_open(txn, c->db->writeoff, &cur)) == 0) {
		while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0 && v.mv_size == sizeof(struct writeoff)) {
			struct writeoff w;
			char tok[64], when[32];
			memcpy(&w, v.mv_data, sizeof(w));
			fare_token_format(w.medium, w.issuer, w.token, tok, sizeof(tok));
			settle_utc_text(w.at_us, when);
			fprintf(out, "written off: day %u leg %llu (%s #%u r%u, operator %u) at %s, from round %u on\n", w.day,
				(unsigned long long)w.first_seq, tok, w.leg_no, w.rev, w.operator_id, when, w.round_from);
		}
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : settle_store_fail(c->db, err, err_len, "reading the write-offs", rc);
}

/* --- reconciliation's part (reconcile.c): the partition of the day's legs into batches, held, written off */

static int cmp_held(const void *a, const void *b)
{
	const struct held_leg *x = a, *y = b;
	if (x->first_seq != y->first_seq)
		return x->first_seq < y->first_seq ? -1 : 1;
	return (int)x->rev - (int)y->rev;
}

void settle_held_sort(struct held_legs *h)
{
	if (h->n > 1)
		qsort(h->v, h->n, sizeof(*h->v), cmp_held);
}

/* What round rd held out, recomputed (h), against what was recorded when it was closed. */
void settle_held_reconcile_round(struct settle_ctx *c, const struct round *rd, const struct round_held *h,
				 struct settle_report *r)
{
	struct round_held rec;
	bool have;
	char err[SETTLE_ERR_MAX];
	if (settle_round_held_get(c->db, rd->day, rd->round, &rec, &have, err, sizeof(err)) != 0) {
		settle_say(r, true, "round %u: %s", rd->round, err);
		return;
	}
	bool same = rec.unrated == h->unrated && rec.written_off == h->written_off;
	settle_say(r, !same && (have || h->unrated || h->written_off),
		   "round %u: held out of every batch: %llu unrated legs, %llu revisions of written-off legs (recorded%s "
		   "%llu, %llu)",
		   rd->round, (unsigned long long)h->unrated, (unsigned long long)h->written_off, have ? "" : ": none,",
		   (unsigned long long)rec.unrated, (unsigned long long)rec.written_off);
}

/*
 * An operator's TIDES file: no row is a held leg (its transaction_id
 * SEQ-REV is not one of held, sorted), and every row is in the currency.
 */
void settle_held_check_tides(struct settle_report *r, const struct batch *b, char *data, const struct held_legs *held,
			     const char *currency)
{
	uint64_t rows = 0, held_rows = 0, other_currency = 0;
	char first_held[48] = "";
	for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
		char *dash, *comma;
		unsigned long long seq = strtoull(line, &dash, 10);
		if (*dash != '-') /* the header */
			continue;
		rows++;
		unsigned long rev = strtoul(dash + 1, &comma, 10);
		struct held_leg key = {.first_seq = seq, .rev = (uint16_t)rev};
		if (*comma == ',' && held->n && bsearch(&key, held->v, held->n, sizeof(key), cmp_held)) {
			if (held_rows++ == 0)
				snprintf(first_held, sizeof(first_held), "%llu-%lu", seq, rev);
		}
		const char *f = line; /* currency_type: the field build.c's tides_columns put there */
		for (unsigned k = 0; k < SETTLE_TIDES_CURRENCY_FIELD && f; k++)
			f = (f = strchr(f, ',')) ? f + 1 : NULL;
		size_t cl = strlen(currency);
		if (!f || strncmp(f, currency, cl) != 0 || f[cl] != ',')
			other_currency++;
	}
	if (held_rows || other_currency)
		settle_say(r, true, "%s: %s: %llu rows are legs held out of settlement (the first: %s), %llu rows not in %s",
			   b->id, b->file, (unsigned long long)held_rows, first_held[0] ? first_held : "-",
			   (unsigned long long)other_currency, currency);
}

static bool leg_open(const struct unrated_leg *l, const struct settle_writeoffs *w)
{
	return l->open && !settle_writeoff_find(w, l->first_seq);
}

/* Open unrated legs by operator, as " by operator: op1=3 op2=5" ("" when none). */
static void open_by_operator(const struct unrated_day *u, const struct settle_writeoffs *w, char *out, size_t cap)
{
	size_t len = 0;
	out[0] = '\0';
	for (size_t i = 0; i < u->n; i++) {
		uint16_t op = u->v[i].operator_id;
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = u->v[j].operator_id == op && leg_open(&u->v[j], w);
		if (seen || !leg_open(&u->v[i], w))
			continue;
		unsigned n = 0;
		for (size_t j = i; j < u->n; j++)
			n += u->v[j].operator_id == op && leg_open(&u->v[j], w);
		if (len < cap)
			len += (size_t)snprintf(out + len, cap - len, "%sop%u=%u", len ? " " : ", by operator: ", op, n);
	}
}

#define UNRATED_LISTED_MAX 200u /* legs listed one per line; the rest are counted */

static void say_unrated_leg(struct settle_report *r, uint32_t day, const struct unrated_leg *l, const char *state)
{
	char tok[64];
	fare_token_format(l->medium, l->issuer, l->token, tok, sizeof(tok));
	settle_say(r, false, "unrated leg %llu: %u %s #%u r%u operator %u: %s", (unsigned long long)l->first_seq, day, tok,
		   l->leg_no, l->unrated_rev, l->operator_id, state);
}

/*
 * The unrated legs of the day: how many, by operator, which are open (held
 * out, waiting for a feed that prices them or a write-off), written off or
 * priced by a later revision; and every write-off names an unrated leg.
 * Returns 0 or SETTLE_ERR_* (a store error: err).
 */
int settle_unrated_reconcile(struct settle_ctx *c, uint32_t day, struct settle_report *r, char *err, size_t err_len)
{
	struct unrated_day u;
	struct settle_writeoffs w;
	int rc = settle_unrated_scan(c, day, &u, err, err_len);
	if (rc == 0 && (rc = settle_writeoffs_load(c->db, day, &w, err, err_len)) != 0)
		free(u.v);
	if (rc != 0)
		return rc;
	uint64_t open = 0, written_off = 0, priced = 0, listed = 0, stray = 0;
	char by_op[512];
	for (size_t i = 0; i < u.n; i++) {
		const struct unrated_leg *l = &u.v[i];
		bool wo = settle_writeoff_find(&w, l->first_seq) != NULL;
		const char *state = wo ? "written off" : l->open ? "open: held out of every batch" : "priced by a later revision";
		open += !wo && l->open;
		written_off += wo;
		priced += !wo && !l->open;
		if ((wo || l->open) && listed++ < UNRATED_LISTED_MAX)
			say_unrated_leg(r, day, l, state);
	}
	for (size_t i = 0; i < w.n; i++) {
		bool found = false;
		for (size_t j = 0; j < u.n && !found; j++)
			found = u.v[j].first_seq == w.v[i].first_seq;
		if (!found && stray++ == 0)
			settle_say(r, true, "write-off of leg %llu (r%u): the day has no such unrated leg",
				   (unsigned long long)w.v[i].first_seq, w.v[i].rev);
	}
	open_by_operator(&u, &w, by_op, sizeof(by_op));
	settle_say(r, stray != 0,
		   "unrated legs: %zu (no rule priced a revision); %llu open (held out of every batch%s); %llu written off; "
		   "%llu priced by a later revision; %llu write-offs name no unrated leg%s",
		   u.n, (unsigned long long)open, by_op, (unsigned long long)written_off,
		   (unsigned long long)priced, (unsigned long long)stray,
		   listed > UNRATED_LISTED_MAX ? " (the first 200 listed above)" : "");
	free(u.v);
	settle_writeoffs_free(&w);
	return 0;
}
