/*
 * run_rate.c - phases 4 and 5 of a rating run (run.c): each token-day rated
 * (rate.c), then promotions granted over every token of the run.
 */
#include "fare/run.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- 4. rating */

/* What a token-day's fare legs were charged: the week total's share of the day. */
int64_t fare_run_group_fares(const struct run *r, const struct group *g)
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
		if (fare_run_same_token_day(m, &key))
			return &r->groups[mid];
		key.time_us = m->time_us;
		key.seq = m->seq;
		if (fare_run_cmp_tap(m, &key) < 0)
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
	int64_t days = fare_days_from_date(t->day), monday = fare_run_week_monday(t->day), first = fare_run_month_first(t->day);
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
			sum = fare_run_group_fares(r, g);
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

int fare_run_rate_all(struct run *r, MDB_txn *txn)
{
	if (fare_run_sort_taps(r) != 0)
		return FARE_ERR_NOMEM;
	fare_run_progress(r, "sorted %zu taps by token-day", r->ntaps);
	r->groups = calloc(r->ntaps + 1, sizeof(*r->groups));
	r->legs = calloc(r->ntaps + 1, sizeof(*r->legs));
	if (!r->groups || !r->legs)
		return FARE_ERR_NOMEM;
	for (size_t i = 0; i < r->ntaps;) {
		size_t j = i + 1;
		bool rerate = r->taps[i].pad != 0;
		while (j < r->ntaps && fare_run_same_token_day(&r->taps[i], &r->taps[j]))
			rerate |= r->taps[j++].pad != 0;
		struct group *g = &r->groups[r->ngroups];
		g->first = (uint32_t)i;
		g->n = (uint32_t)(j - i);
		g->rerate = rerate;
		if (rerate) { /* the promotion it had is its own to use again */
			uint8_t p[TOKEN_DAY_KEY_BYTES];
			token_day_key(p, r->taps[i].day, r->taps[i].medium, r->taps[i].issuer, r->taps[i].token_id);
			int rc = fare_run_legs_of(r->db, txn, p, sum_promotions, g);
			if (rc != 0)
				return fare_run_fail_store(r, "reading a late token-day's promotions", rc);
		}
		g->leg_first = (uint32_t)r->nlegs;
		struct rate_before before = period_before(r, txn, &r->taps[i]);
		g->nlegs = fare_rate_token_day(&r->ctx, &r->taps[i], g->n, &before, &r->legs[r->nlegs]);
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
	fare_rate_settle_leg(l);
}

int fare_run_grant_promotions(struct run *r)
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
