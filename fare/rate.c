/*
 * rate.c - one token's business day: taps to legs, legs to money.
 *
 * Pure functions of the taps, the feed and the week's earlier totals, so the
 * same input always gives the same legs (docs/FARES.md section 3): legs are
 * formed, priced by the fare leg rules (memoised: a city has few distinct
 * route/stop/time-window combinations), then transfers, caps and subsidies
 * are applied in tap order. Promotions need every token of the run, so they
 * are only marked here and granted by run.c.
 */
#include "fare/rate.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- fare leg rules */

struct leg_facts {
	int32_t network;
	uint32_t from_stop, to_stop;
	bool has_to;
	uint64_t from_tf, to_tf;
	uint8_t medium, category;
};

static bool area_of(const struct fare_feed *f, uint32_t stop, int32_t area)
{
	uint32_t first, n = fare_feed_stop_areas(f, stop, &first);
	for (uint32_t i = 0; i < n; i++)
		if (f->stop_areas[first + i].area == area)
			return true;
	return false;
}

/* Does rule field k (0 network .. 4 to timeframe) hold the leg's value? */
static bool field_matches(const struct fare_feed *f, const struct fare_leg_rule *r, int k, const struct leg_facts *lf)
{
	switch (k) {
	case 0: return r->network == lf->network;
	case 1: return area_of(f, lf->from_stop, r->from_area);
	case 2: return lf->has_to && area_of(f, lf->to_stop, r->to_area);
	case 3: return (lf->from_tf >> r->from_tf) & 1;
	default: return (lf->to_tf >> r->to_tf) & 1;
	}
}

static int32_t rule_field(const struct fare_leg_rule *r, int k)
{
	const int32_t v[5] = {r->network, r->from_area, r->to_area, r->from_tf, r->to_tf};
	return v[k];
}

/* Match: fills product, group and prices; false when no rule matches. */
static bool match_rules(const struct fare_feed *f, const struct leg_facts *lf, struct rule_memo *m)
{
	uint32_t cand[512], n = 0;
	int32_t nominal[512], catp[512];
	for (uint32_t i = 0; i < f->nleg_rules && n < 512; i++)
		if (fare_feed_price(f, f->leg_rules[i].product, lf->medium, lf->category, &nominal[n], &catp[n]))
			cand[n++] = i;
	if (f->have_priority) { /* empty = wildcard; highest priority */
		uint32_t k = 0;
		int32_t best = INT32_MIN;
		for (uint32_t i = 0; i < n; i++) {
			const struct fare_leg_rule *r = &f->leg_rules[cand[i]];
			bool ok = true;
			for (int fi = 0; fi < 5 && ok; fi++)
				ok = rule_field(r, fi) < 0 || field_matches(f, r, fi, lf);
			if (!ok || r->priority < best)
				continue;
			if (r->priority > best)
				k = 0, best = r->priority;
			nominal[k] = nominal[i], catp[k] = catp[i], cand[k++] = cand[i];
		}
		n = k;
	} else { /* one field at a time: the rules naming the value, else those leaving it empty */
		for (int fi = 0; fi < 5; fi++) {
			uint32_t k = 0;
			for (uint32_t i = 0; i < n; i++)
				if (rule_field(&f->leg_rules[cand[i]], fi) >= 0 &&
				    field_matches(f, &f->leg_rules[cand[i]], fi, lf))
					nominal[k] = nominal[i], catp[k] = catp[i], cand[k++] = cand[i];
			if (k == 0)
				for (uint32_t i = 0; i < n; i++)
					if (rule_field(&f->leg_rules[cand[i]], fi) < 0)
						nominal[k] = nominal[i], catp[k] = catp[i], cand[k++] = cand[i];
			n = k;
		}
	}
	if (n == 0)
		return false;
	uint32_t best = 0; /* cheapest for the rider's category, first in the file on a tie */
	for (uint32_t i = 1; i < n; i++)
		if (catp[i] < catp[best])
			best = i;
	m->product = f->leg_rules[cand[best]].product;
	m->group = f->leg_rules[cand[best]].leg_group;
	m->nominal = nominal[best];
	m->category = catp[best];
	return true;
}

static const struct rule_memo *match_memo(struct rate_ctx *ctx, const struct leg_facts *lf)
{
	uint64_t a = (uint64_t)(uint32_t)lf->network << 32 | lf->from_stop;
	uint64_t b = (uint64_t)lf->to_stop << 32 | (uint64_t)lf->has_to << 16 | (uint64_t)lf->medium << 8 |
		     lf->category;
	uint64_t h = (a * 0xff51afd7ed558ccdull) ^ (b * 0xc4ceb9fe1a85ec53ull) ^
		     (lf->from_tf * 0x9e3779b97f4a7c15ull) ^ (lf->to_tf * 0xc2b2ae3d27d4eb4full);
	struct rule_memo *m = &ctx->memo[(h >> 40) & (FARE_MEMO_SLOTS - 1)];
	if (m->used && m->key_a == a && m->key_b == b && m->key_from_tf == lf->from_tf && m->key_to_tf == lf->to_tf)
		return m;
	m->used = true;
	m->key_a = a;
	m->key_b = b;
	m->key_from_tf = lf->from_tf;
	m->key_to_tf = lf->to_tf;
	m->found = match_rules(ctx->feed, lf, m);
	return m;
}

static uint64_t tf_mask(struct rate_ctx *ctx, uint64_t time_us)
{
	if (ctx->feed->ntimeframes == 0)
		return 0;
	uint32_t sec, date;
	unsigned wd;
	fare_clock_local(ctx->clock, time_us, &sec, &date, &wd);
	return fare_feed_timeframes(ctx->feed, sec, date, wd);
}

/* --- forming legs */

static const struct fare_incomplete *incomplete_of(const struct fare_feed *f, int32_t network)
{
	for (uint32_t i = 0; network >= 0 && i < f->nincomplete; i++)
		if (f->incomplete[i].network == network)
			return &f->incomplete[i];
	return NULL;
}

static void leg_init(struct rate_leg *rl, const struct fare_tap *a, const struct fare_tap *b, unsigned no)
{
	struct fare_leg *l = &rl->leg;
	memset(rl, 0, sizeof(*rl));
	rl->group = -1;
	rl->promotion = -1;
	l->day = a->day;
	l->medium = a->medium;
	l->issuer = a->issuer;
	l->token_id = a->token_id;
	l->category = a->category;
	l->first_seq = a->seq;
	l->start_us = a->time_us;
	l->end_us = b ? b->time_us : a->time_us;
	l->route_id = a->route_id;
	l->operator_id = a->operator_id;
	l->from_stop = a->stop_id;
	l->to_stop = b ? b->stop_id : a->stop_id;
	l->tap_seq[0] = a->seq;
	l->tap_seq[1] = b ? b->seq : 0;
	l->ntaps = b ? 2 : 1;
	l->leg_no = (uint16_t)no;
	l->product = l->promotion_idx = l->subsidy_idx = FARE_NONE;
}

/* Price a leg from its product, or mark it norule. */
static void price_product(struct rate_ctx *ctx, struct rate_leg *rl, int32_t product, int32_t nominal, int32_t catp)
{
	rl->leg.product = (uint16_t)product;
	rl->leg.nominal = nominal;
	rl->leg.concession = catp - nominal;
	rl->category_price = catp;
}

static void price_leg(struct rate_ctx *ctx, struct rate_leg *rl, const struct fare_tap *a, const struct fare_tap *b,
		      const struct fare_incomplete *inc)
{
	const struct fare_feed *f = ctx->feed;
	int32_t nominal, catp;
	if (a->kind == FARE_PURCHASE) {
		rl->leg.flags |= FARE_LEG_PURCHASE;
		rl->leg.nominal = (int32_t)a->amount_fen;
		rl->category_price = rl->leg.nominal;
		return;
	}
	if (rl->leg.flags & FARE_LEG_INCOMPLETE) {
		if (fare_feed_price(f, inc->product, a->medium, a->category, &nominal, &catp))
			price_product(ctx, rl, inc->product, nominal, catp);
		else
			rl->leg.flags |= FARE_LEG_NORULE;
		return;
	}
	struct leg_facts lf = {
		.network = fare_feed_route_network(f, a->route_id),
		.from_stop = a->stop_id,
		.to_stop = b ? b->stop_id : 0,
		.has_to = b != NULL,
		.medium = a->medium,
		.category = a->category,
	};
	lf.from_tf = tf_mask(ctx, a->time_us);
	lf.to_tf = b ? tf_mask(ctx, b->time_us) : lf.from_tf;
	const struct rule_memo *m = match_memo(ctx, &lf);
	if (!m->found) {
		rl->leg.flags |= FARE_LEG_NORULE;
		return;
	}
	price_product(ctx, rl, m->product, m->nominal, m->category);
	rl->group = m->group;
}

/* Taps to legs, in tap order. */
static unsigned form_legs(struct rate_ctx *ctx, const struct fare_tap *t, unsigned n, struct rate_leg *out)
{
	const struct fare_feed *f = ctx->feed;
	unsigned nl = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct fare_tap *a = &t[i], *b = NULL;
		int32_t network = fare_feed_route_network(f, a->route_id);
		const struct fare_incomplete *inc =
			a->kind == FARE_ENTRY || a->kind == FARE_EXIT ? incomplete_of(f, network) : NULL;
		bool incomplete = false;
		if (inc && a->kind == FARE_ENTRY) {
			if (i + 1 < n && t[i + 1].kind == FARE_EXIT &&
			    fare_feed_route_network(f, t[i + 1].route_id) == network) {
				b = &t[++i];
				incomplete = b->time_us - a->time_us > (uint64_t)inc->max_journey_s * 1000000u;
			} else {
				incomplete = true;
			}
		} else if (inc) { /* an exit without its entry */
			incomplete = true;
		}
		struct rate_leg *rl = &out[nl];
		leg_init(rl, a, b, ++nl);
		if (incomplete)
			rl->leg.flags |= FARE_LEG_INCOMPLETE;
		price_leg(ctx, rl, a, b, inc);
	}
	return nl;
}

/* --- transfers */

static bool transfer_eligible(const struct rate_leg *rl)
{
	return !(rl->leg.flags & (FARE_LEG_PURCHASE | FARE_LEG_INCOMPLETE | FARE_LEG_NORULE));
}

static bool within(const struct fare_transfer_rule *tr, const struct fare_leg *prev, const struct fare_leg *cur)
{
	if (tr->duration_s < 0)
		return true;
	uint64_t from = tr->duration_type <= 1 ? prev->start_us : prev->end_us;
	uint64_t to = tr->duration_type == 0 || tr->duration_type == 3 ? cur->end_us : cur->start_us;
	return to >= from && to - from <= (uint64_t)tr->duration_s * 1000000u;
}

/* One step of the group filter (from or to): the rules naming g if any does, else those leaving it empty. */
static bool group_step(int32_t v, int32_t g, bool named)
{
	return named ? v == g : v < 0;
}

/* Apply the best transfer rule from prev to cur; returns the rule applied or -1. */
static int32_t apply_transfer(struct rate_ctx *ctx, const struct rate_leg *prev, struct rate_leg *cur,
			      uint32_t same_group_run)
{
	const struct fare_feed *f = ctx->feed;
	bool from_named = false, to_named = false;
	for (uint32_t i = 0; i < f->ntransfer_rules && prev->group >= 0 && !from_named; i++)
		from_named = f->transfer_rules[i].from_group == prev->group;
	for (uint32_t i = 0; i < f->ntransfer_rules && cur->group >= 0 && !to_named; i++)
		to_named = group_step(f->transfer_rules[i].from_group, prev->group, from_named) &&
			   f->transfer_rules[i].to_group == cur->group;
	int32_t best = -1, best_transfer = 0;
	int32_t a = prev->category_price, b = cur->category_price;
	for (uint32_t i = 0; i < f->ntransfer_rules; i++) {
		const struct fare_transfer_rule *tr = &f->transfer_rules[i];
		if (!group_step(tr->from_group, prev->group, from_named) ||
		    !group_step(tr->to_group, cur->group, to_named))
			continue;
		bool same = tr->from_group >= 0 && tr->from_group == tr->to_group;
		if (!within(tr, &prev->leg, &cur->leg))
			continue;
		if (same && tr->transfer_count >= 0 && same_group_run >= (uint32_t)tr->transfer_count)
			continue;
		int32_t x = 0, nominal;
		if (tr->product >= 0 &&
		    !fare_feed_price(f, tr->product, cur->leg.medium, cur->leg.category, &nominal, &x))
			continue;
		int32_t t = tr->transfer_type == 0 ? x - b : tr->transfer_type == 1 ? x : x - a - b;
		if (t < -b)
			t = -b; /* never a negative fare */
		if (best < 0 || t < best_transfer)
			best = (int32_t)i, best_transfer = t;
	}
	if (best >= 0)
		cur->leg.transfer = best_transfer;
	return best;
}

static void apply_transfers(struct rate_ctx *ctx, struct rate_leg *legs, unsigned n)
{
	const struct rate_leg *prev = NULL;
	uint32_t run = 0; /* consecutive same-group transfers ending at prev */
	for (unsigned i = 0; i < n; i++) {
		struct rate_leg *cur = &legs[i];
		if (cur->leg.flags & FARE_LEG_PURCHASE)
			continue;
		int32_t rule = -1;
		if (prev && transfer_eligible(prev) && transfer_eligible(cur))
			rule = apply_transfer(ctx, prev, cur, run);
		const struct fare_transfer_rule *tr = rule >= 0 ? &ctx->feed->transfer_rules[rule] : NULL;
		run = tr && tr->from_group >= 0 && tr->from_group == tr->to_group ? run + 1 : 0;
		prev = cur;
	}
}

/* --- caps, subsidies, promotion candidates */

static bool category_is(const struct fare_feed *f, uint8_t card_category, int32_t cat)
{
	int32_t mine = card_category < FARE_CARD_CATEGORIES ? f->category_of[card_category] : -1;
	return (mine < 0 ? f->default_category : mine) == cat;
}

static void apply_caps(struct rate_ctx *ctx, struct rate_leg *legs, unsigned n, int64_t week_before_fen)
{
	const struct fare_feed *f = ctx->feed;
	int64_t day_fen = 0;
	for (unsigned i = 0; i < n; i++) {
		struct fare_leg *l = &legs[i].leg;
		if (l->flags & FARE_LEG_PURCHASE)
			continue;
		int64_t fare = l->nominal + l->concession + l->transfer, room = INT64_MAX;
		for (uint32_t c = 0; c < f->ncaps; c++) {
			const struct fare_cap *cap = &f->cap_rows[c];
			if (cap->media != f->media_of[l->medium] || (cap->category >= 0 && !category_is(f, l->category, cap->category)))
				continue;
			int64_t r = cap->amount_fen - (cap->week ? week_before_fen + day_fen : day_fen);
			if (r < room)
				room = r;
		}
		if (room < 0)
			room = 0;
		if (fare > room)
			l->cap = (int32_t)-(fare - room);
		day_fen += fare + l->cap;
	}
}

static bool promotion_applies(const struct fare_feed *f, const struct fare_promotion *p, const struct fare_leg *l)
{
	return p->media == f->media_of[l->medium] && l->day >= p->start_date && l->day <= p->end_date &&
	       (p->network < 0 || p->network == fare_feed_route_network(f, l->route_id)) &&
	       (!p->route_id_set || p->route_id == l->route_id);
}

static void mark_promotions(struct rate_ctx *ctx, struct rate_leg *legs, unsigned n)
{
	const struct fare_feed *f = ctx->feed;
	for (unsigned i = 0; i < n; i++) {
		const struct fare_leg *l = &legs[i].leg;
		if (l->flags & (FARE_LEG_PURCHASE | FARE_LEG_NORULE))
			continue;
		for (uint32_t p = 0; p < f->npromotions; p++)
			if (promotion_applies(f, &f->promotion_rows[p], l)) {
				if (l->nominal + l->concession + l->transfer + l->cap > f->promotion_rows[p].rider_amount_fen)
					legs[i].promotion = (int32_t)p;
				break; /* the first listed that applies */
			}
	}
}

static void apply_subsidies(struct rate_ctx *ctx, struct rate_leg *legs, unsigned n)
{
	const struct fare_feed *f = ctx->feed;
	int32_t used[FARE_SUBSIDIES_MAX] = {0};
	for (unsigned i = 0; i < n; i++) {
		struct fare_leg *l = &legs[i].leg;
		if (!(l->flags & FARE_LEG_PURCHASE))
			continue;
		for (uint32_t s = 0; s < f->nsubsidies && s < FARE_SUBSIDIES_MAX; s++) {
			const struct fare_subsidy *sb = &f->subsidy_rows[s];
			if (!category_is(f, l->category, sb->category) || (sb->media >= 0 && sb->media != f->media_of[l->medium]) ||
			    (sb->route_id_set && sb->route_id != l->route_id) || l->day < sb->start_date ||
			    l->day > sb->end_date)
				continue;
			if (used[s] < sb->max_per_day) {
				used[s]++;
				l->subsidy = -(l->nominal < sb->amount_fen ? l->nominal : sb->amount_fen);
				l->subsidy_idx = (uint16_t)s;
			}
			break; /* the first listed that applies */
		}
	}
}

void rate_settle_leg(struct fare_leg *l)
{
	l->operator_fen = l->nominal + l->concession + l->transfer + l->cap;
	l->promotion_funder_fen = -l->promotion;
	l->subsidy_funder_fen = -l->subsidy;
	l->rider_fen = l->operator_fen - l->promotion_funder_fen - l->subsidy_funder_fen;
	assert(l->rider_fen + l->promotion_funder_fen + l->subsidy_funder_fen == l->operator_fen);
}

unsigned rate_token_day(struct rate_ctx *ctx, const struct fare_tap *taps, unsigned n, int64_t week_before_fen,
			struct rate_leg *out)
{
	unsigned nl = form_legs(ctx, taps, n, out);
	apply_transfers(ctx, out, nl);
	apply_caps(ctx, out, nl, week_before_fen);
	apply_subsidies(ctx, out, nl);
	mark_promotions(ctx, out, nl);
	for (unsigned i = 0; i < nl; i++)
		rate_settle_leg(&out[i].leg);
	return nl;
}

/* --- the e-purse audit */

static void hms(struct rate_ctx *ctx, uint64_t us, char out[16])
{
	uint32_t sec, date;
	unsigned wd;
	fare_clock_local(ctx->clock, us, &sec, &date, &wd);
	snprintf(out, 16, "%02u:%02u:%02u", sec / 3600, sec / 60 % 60, sec % 60);
}

static int cmp_ctc(const void *a, const void *b, void *arg)
{
	const struct fare_tap *taps = arg, *x = &taps[*(const uint32_t *)a], *y = &taps[*(const uint32_t *)b];
	if (x->ctc != y->ctc)
		return x->ctc < y->ctc ? -1 : 1;
	if (x->time_us != y->time_us)
		return x->time_us < y->time_us ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

unsigned rate_audit(struct rate_ctx *ctx, const struct fare_tap *taps, unsigned n, const struct rate_leg *legs,
		    unsigned nlegs, bool have_prev, uint16_t prev_ctc, uint32_t prev_after, struct audit_line *out,
		    unsigned cap, uint16_t *last_ctc, uint32_t *last_after)
{
	unsigned k = 0;
	for (unsigned i = 0; i < nlegs && k < cap; i++) {
		const struct fare_leg *l = &legs[i].leg;
		int64_t deducted = 0;
		for (unsigned j = 0; j < n; j++)
			if (taps[j].seq == l->tap_seq[0] || (l->ntaps > 1 && taps[j].seq == l->tap_seq[1]))
				deducted += taps[j].amount_fen;
		if (deducted != l->rider_fen)
			snprintf(out[k++].text, FARE_TEXT_MAX, "amount leg=%u deducted=%lld rated=%d diff=%lld", l->leg_no,
				 (long long)deducted, l->rider_fen, (long long)(deducted - l->rider_fen));
	}
	/* the card's own order: CTC (then tap time, for repeats) */
	uint32_t *order = malloc((n + 1) * sizeof(*order));
	if (!order)
		return k;
	for (unsigned j = 0; j < n; j++)
		order[j] = j;
	qsort_r(order, n, sizeof(*order), cmp_ctc, (void *)taps);
	for (unsigned o = 0; o < n && k + 3 <= cap; o++) {
		const struct fare_tap *t = &taps[order[o]];
		char at[16];
		hms(ctx, t->time_us, at);
		if (have_prev && t->ctc == prev_ctc)
			snprintf(out[k++].text, FARE_TEXT_MAX, "ctc_repeat tap=%s ctc=%u", at, t->ctc);
		else if (have_prev && t->ctc != (uint16_t)(prev_ctc + 1))
			snprintf(out[k++].text, FARE_TEXT_MAX, "ctc_gap tap=%s ctc=%u previous=%u missing=%u", at, t->ctc,
				 prev_ctc, (uint16_t)(t->ctc - prev_ctc - 1));
		if (have_prev && t->balance_before_fen != prev_after)
			snprintf(out[k++].text, FARE_TEXT_MAX, "balance tap=%s ctc=%u before=%u previous_after=%u", at,
				 t->ctc, t->balance_before_fen, prev_after);
		if ((int64_t)t->balance_before_fen - t->balance_after_fen != t->amount_fen)
			snprintf(out[k++].text, FARE_TEXT_MAX, "balance tap=%s ctc=%u before=%u after=%u amount=%u", at,
				 t->ctc, t->balance_before_fen, t->balance_after_fen, t->amount_fen);
		have_prev = true;
		prev_ctc = t->ctc;
		prev_after = t->balance_after_fen;
	}
	if (last_ctc && n > 0) {
		*last_ctc = taps[order[n - 1]].ctc;
		*last_after = taps[order[n - 1]].balance_after_fen;
	}
	free(order);
	return k;
}
