/*
 * run_write.c - phase 6 of a rating run (run.c): the new days' legs in
 * chunked transactions, then one last transaction with the adjustment legs,
 * audits, promotion budgets, weekly totals, cards, the rated days and the
 * cursor.
 */
#include "fare/run.h"

#include "base/assert.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- 6. writing */

static int put_leg(struct run *r, MDB_txn *txn, const struct fare_leg *leg, bool *append)
{
	uint8_t key[LEG_KEY_BYTES];
	struct fare_leg stamped = *leg;
	const struct fare_leg *l = &stamped;
	/* every leg written, a new one or an adjustment (new minus old revisions, add_money), is conserved:
	   what its rider and funders pay is what its operator receives, and the operator's share is the fare
	   after its discounts (settle/ pays out what is here without recomputing it) */
	TG_ASSERT((int64_t)l->rider_fen + l->promotion_funder_fen + l->subsidy_funder_fen == (int64_t)l->operator_fen);
	TG_ASSERT((int64_t)l->nominal + l->concession + l->transfer + l->cap == (int64_t)l->operator_fen);
	TG_ASSERT(-(int64_t)l->promotion == l->promotion_funder_fen && -(int64_t)l->subsidy == l->subsidy_funder_fen);
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

/* Mark the new days in fare_run_progress (the next run undoes them if this one does not finish). A write step. */
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
		if (gr->rerate || at.i >= gr->nlegs) { /* re-rated token-days are adjustments: fare_run_write_final */
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

/* The new days' legs, in chunks: the days are marked in fare_run_progress first. Returns 0 or a FARE_ERR_*. */
int fare_run_write_new_legs(struct run *r, struct day_set *new_days)
{
	int rc = 0;
	for (size_t g = 0; g < r->ngroups; g++)
		if (!r->groups[g].rerate && !fare_run_set_has(new_days, r->taps[r->groups[g].first].day) &&
		    (rc = fare_run_set_add(new_days, r->taps[r->groups[g].first].day)) != 0)
			return rc;
	if ((rc = fare_run_with_room(r, mark_step, new_days)) != 0)
		return fare_run_fail_store(r, "marking the days being written", rc);
	struct chunk_pos pos = {.append = true};
	while (!pos.done) { /* each chunk writes WRITE_CHUNK_LEGS legs, or is the last */
		int fd;
		if ((rc = fare_run_with_room(r, chunk_step, &pos)) != 0)
			return fare_run_fail_store(r, "writing the new days' legs", rc);
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
	int rc = fare_run_legs_of(r->db, txn, p, sum_old, &a);
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
	unsigned n = fare_rate_audit(&r->ctx, &r->taps[g->first], g->n, &r->legs[g->leg_first], g->nlegs, have_prev,
				cs.last_ctc, cs.last_after_fen, lines, AUDIT_LINES_MAX, &cs.last_ctc, &cs.last_after_fen);
	token_day_key(key, t0->day, t0->medium, t0->issuer, t0->token_id);
	if (g->rerate && (rc = fare_run_delete_prefix(txn, r->db->audit, key, TOKEN_DAY_KEY_BYTES)) != 0)
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
	int64_t sum = fare_run_group_fares(r, g);
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
		if (!fare_run_set_has(new_days, r->daymin_days.days[i]))
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

int fare_run_write_final(struct run *r, struct day_set *new_days)
{
	int rc = fare_run_with_room(r, final_step, new_days);
	return rc == 0 ? 0 : fare_run_fail_store(r, "committing the run (adjustments, audits, the cursor)", rc);
}
