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

#include "base/assert.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- fare leg rules */

struct leg_facts {
	int32_t network;
	uint32_t from_stop, to_stop; /* stop indices; FARE_NO_INDEX: unknown */
	bool has_to;
	bool transfer; /* reached by a transfer: transfer_only rules may match */
	uint64_t from_tf, to_tf;
	int32_t media, category; /* feed indices */
};

/* Whether a stop is in an area: its own stop_areas rows, else (spec) those of its station. */
static bool area_of(const struct fare_feed *f, uint32_t stop, int32_t area)
{
	uint32_t first, n = fare_feed_stop_areas(f, stop, &first);
	for (unsigned d = 0; n == 0 && d < FARE_STATION_DEPTH_MAX && f->stop_parent[stop] >= 0; d++) {
		stop = (uint32_t)f->stop_parent[stop];
		n = fare_feed_stop_areas(f, stop, &first);
	}
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

#define CANDIDATES_MAX 512u

struct candidates {
	uint32_t rule[CANDIDATES_MAX];
	int32_t nominal[CANDIDATES_MAX], catp[CANDIDATES_MAX];
	uint32_t n;
};

static void keep(struct candidates *c, uint32_t *k, uint32_t i)
{
	c->nominal[*k] = c->nominal[i], c->catp[*k] = c->catp[i], c->rule[(*k)++] = c->rule[i];
}

/* The rules whose product is sold to this rider on this medium (a refused rule always stays). */
static void collect(const struct fare_feed *f, const struct leg_facts *lf, struct candidates *c)
{
	c->n = 0;
	for (uint32_t i = 0; i < f->nleg_rules && c->n < CANDIDATES_MAX; i++) {
		const struct fare_leg_rule *r = &f->leg_rules[i];
		if (r->transfer_only && !lf->transfer)
			continue;
		c->nominal[c->n] = c->catp[c->n] = 0;
		if (r->excluded || fare_feed_price_ix(f, r->product, lf->media, lf->category, &c->nominal[c->n],
						      &c->catp[c->n], NULL))
			c->rule[c->n++] = i;
	}
}

/* GTFS's filtering: by priority, or field by field when the feed has no rule_priority column. */
static void filter(const struct fare_feed *f, const struct leg_facts *lf, struct candidates *c)
{
	uint32_t k = 0;
	if (f->have_priority) { /* empty = wildcard; highest priority */
		int32_t best = INT32_MIN;
		for (uint32_t i = 0; i < c->n; i++) {
			const struct fare_leg_rule *r = &f->leg_rules[c->rule[i]];
			bool ok = true;
			for (int fi = 0; fi < 5 && ok; fi++)
				ok = rule_field(r, fi) < 0 || field_matches(f, r, fi, lf);
			if (!ok || r->priority < best)
				continue;
			if (r->priority > best)
				k = 0, best = r->priority;
			keep(c, &k, i);
		}
		c->n = k;
		return;
	}
	for (int fi = 0; fi < 5; fi++) { /* the rules naming the value, else those leaving it empty */
		k = 0;
		for (uint32_t i = 0; i < c->n; i++)
			if (rule_field(&f->leg_rules[c->rule[i]], fi) >= 0 &&
			    field_matches(f, &f->leg_rules[c->rule[i]], fi, lf))
				keep(c, &k, i);
		if (k == 0)
			for (uint32_t i = 0; i < c->n; i++)
				if (rule_field(&f->leg_rules[c->rule[i]], fi) < 0)
					keep(c, &k, i);
		c->n = k;
	}
}

/*
 * The rider's choice among the rules that stay (docs/FARES.md 1.1): a leg
 * reached by a transfer takes a transfer_only rule when one stays; a leg on
 * its own never takes a transfer product (a fare_transfer_rules product, an
 * upgrade) while a product for the leg alone stays; then the cheapest for the
 * rider's category, the first in the file on a tie.
 */
static uint32_t choose(const struct fare_feed *f, const struct leg_facts *lf, const struct candidates *c,
		       bool *upgrade)
{
	uint32_t best = 0;
	int best_rank = INT32_MAX;
	for (uint32_t i = 0; i < c->n; i++) {
		const struct fare_leg_rule *r = &f->leg_rules[c->rule[i]];
		int rank = lf->transfer && !r->transfer_only ? 2 : 0;
		rank += !lf->transfer && f->product_in_transfer[r->product];
		if (rank < best_rank || (rank == best_rank && c->catp[i] < c->catp[best]))
			best = i, best_rank = rank;
	}
	*upgrade = best_rank == 1;
	return best;
}

static void match_rules(const struct fare_feed *f, const struct leg_facts *lf, struct rule_match *m)
{
	struct candidates c;
	collect(f, lf, &c);
	filter(f, lf, &c);
	*m = (struct rule_match){.rule = -1, .product = -1, .group = -1};
	if (c.n == 0)
		return;
	for (uint32_t i = 0; i < c.n; i++)
		if (f->leg_rules[c.rule[i]].excluded) { /* a refused rule could have priced it: unrated */
			m->excluded = true;
			m->rule = (int32_t)c.rule[i];
			return;
		}
	uint32_t best = choose(f, lf, &c, &m->upgrade);
	m->found = true;
	m->rule = (int32_t)c.rule[best];
	m->product = f->leg_rules[c.rule[best]].product;
	m->group = f->leg_rules[c.rule[best]].leg_group;
	m->nominal = c.nominal[best];
	m->category = c.catp[best];
}

static const struct rule_match *match_memo(struct rate_ctx *ctx, const struct leg_facts *lf)
{
	uint64_t a = (uint64_t)(uint32_t)lf->network << 32 | lf->from_stop;
	uint64_t b = (uint64_t)lf->to_stop << 32 | (uint64_t)lf->has_to << 31 | (uint64_t)lf->transfer << 30 |
		     (uint64_t)((uint32_t)(lf->media + 1) & 0x7fffu) << 15 | ((uint32_t)(lf->category + 1) & 0x7fffu);
	uint64_t h = (a * 0xff51afd7ed558ccdull) ^ (b * 0xc4ceb9fe1a85ec53ull) ^
		     (lf->from_tf * 0x9e3779b97f4a7c15ull) ^ (lf->to_tf * 0xc2b2ae3d27d4eb4full);
	struct rule_memo *m = &ctx->memo[(h >> 40) & (FARE_MEMO_SLOTS - 1)];
	if (m->used && m->key_a == a && m->key_b == b && m->key_from_tf == lf->from_tf && m->key_to_tf == lf->to_tf)
		return &m->m;
	m->used = true;
	m->key_a = a;
	m->key_b = b;
	m->key_from_tf = lf->from_tf;
	m->key_to_tf = lf->to_tf;
	match_rules(ctx->feed, lf, &m->m);
	return &m->m;
}

/* Timeframe groups of a tap at a stop: in the stop's time zone if it has one, else the agency's. */
static uint64_t tf_mask(struct rate_ctx *ctx, uint64_t time_us, uint32_t stop)
{
	const struct fare_feed *f = ctx->feed;
	if (f->ntimeframes == 0)
		return 0;
	uint32_t sec, date;
	unsigned wd;
	struct fare_clock *clk = ctx->feed_clock ? ctx->feed_clock : ctx->clock;
	if (stop < f->stops.n && f->stop_zone[stop] != 0)
		clk = &ctx->zone_clock[f->stop_zone[stop] - 1];
	fare_clock_local(clk, time_us, &sec, &date, &wd);
	return fare_feed_timeframes(f, sec, date, wd);
}

int fare_rate_zone_clocks(struct rate_ctx *ctx, char *err, size_t err_len)
{
	const struct fare_feed *f = ctx->feed;
	ctx->zone_clock = NULL;
	if (f->zones.n == 0)
		return 0;
	if (!(ctx->zone_clock = calloc(f->zones.n, sizeof(*ctx->zone_clock))))
		return FARE_ERR_NOMEM;
	for (uint32_t z = 0; z < f->zones.n; z++)
		if (fare_clock_init(&ctx->zone_clock[z], f->zones.names[z], "00:00") != 0) {
			snprintf(err, err_len, "stop_timezone \"%s\" is not in /usr/share/zoneinfo", f->zones.names[z]);
			free(ctx->zone_clock);
			ctx->zone_clock = NULL;
			return FARE_ERR_TZ;
		}
	return 0;
}

/* --- a tap's route and stop in the feed */

static uint32_t route_ix(const struct rate_ctx *ctx, const struct fare_tap *t)
{
	if (ctx->taps_by_index)
		return t->route_id < ctx->feed->routes.n ? t->route_id : FARE_NO_INDEX;
	return fare_feed_route_of_code(ctx->feed, t->route_id);
}

static uint32_t stop_ix(const struct rate_ctx *ctx, const struct fare_tap *t)
{
	if (ctx->taps_by_index)
		return t->stop_id < ctx->feed->stops.n ? t->stop_id : FARE_NO_INDEX;
	return fare_feed_stop_of_code(ctx->feed, t->stop_id);
}

static int32_t tap_network(const struct rate_ctx *ctx, const struct fare_tap *t)
{
	return fare_feed_route_network(ctx->feed, route_ix(ctx, t));
}

static int32_t media_ix(const struct rate_ctx *ctx, uint8_t medium)
{
	return ctx->media_fixed ? ctx->media : fare_feed_media_of(ctx->feed, medium);
}

static int32_t category_ix(const struct rate_ctx *ctx, uint8_t card_category)
{
	return ctx->media_fixed ? ctx->category : fare_feed_category_of(ctx->feed, card_category);
}

/* --- forming legs */

static const struct fare_incomplete *incomplete_of(const struct fare_feed *f, int32_t network)
{
	for (uint32_t i = 0; network >= 0 && i < f->nincomplete; i++)
		if (f->incomplete[i].network == network)
			return &f->incomplete[i];
	return NULL;
}

static void leg_init(struct rate_ctx *ctx, struct rate_leg *rl, const struct fare_tap *a, const struct fare_tap *b,
		     unsigned no)
{
	struct fare_leg *l = &rl->leg;
	memset(rl, 0, sizeof(*rl));
	rl->group = -1;
	rl->promotion = -1;
	rl->rule = rl->transfer_rule = rl->refused_join = -1;
	rl->alone.rule = rl->as_transfer.rule = -1;
	rl->route_ix = route_ix(ctx, a);
	rl->from_ix = stop_ix(ctx, a);
	rl->to_ix = b ? stop_ix(ctx, b) : rl->from_ix;
	rl->media = media_ix(ctx, a->medium);
	rl->category = category_ix(ctx, a->category);
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

/* Price a leg from a match (its product, prices and group), or mark it unrated. */
static void price_match(struct rate_leg *rl, const struct rule_match *m)
{
	if (!m->found) {
		rl->leg.flags |= FARE_LEG_NORULE;
		rl->leg.product = FARE_NONE;
		rl->leg.nominal = rl->leg.concession = 0;
		rl->category_price = 0;
		rl->group = -1;
		rl->rule = m->rule;
		return;
	}
	rl->leg.flags &= (uint8_t)~FARE_LEG_NORULE;
	rl->leg.product = (uint16_t)m->product;
	rl->leg.nominal = m->nominal;
	rl->leg.concession = m->category - m->nominal;
	rl->category_price = m->category;
	rl->group = m->group;
	rl->rule = m->rule;
}

/* Whether the feed knows the leg's route and stops (validator codes that map to something). */
static bool known(const struct rate_leg *rl)
{
	return rl->route_ix != FARE_NO_INDEX && rl->from_ix != FARE_NO_INDEX &&
	       (rl->leg.ntaps < 2 || rl->to_ix != FARE_NO_INDEX);
}

/*
 * Match the fare leg rules for the (effective) fare leg from leg `first` to leg `last` and price first by
 * it. An effective leg departs where and when first does and arrives where and when last does; it has a
 * network only when all its legs share one (spec: "each leg must have the same network_id").
 */
static void match_leg(struct rate_ctx *ctx, struct rate_leg *first, const struct rate_leg *last)
{
	const struct fare_feed *f = ctx->feed;
	bool has_to = last->leg.ntaps > 1;
	struct leg_facts lf = {
		.network = fare_feed_route_network(f, first->route_ix),
		.from_stop = first->from_ix,
		.to_stop = has_to ? last->to_ix : FARE_NO_INDEX,
		.has_to = has_to,
		.media = first->media,
		.category = first->category,
	};
	for (const struct rate_leg *p = first + 1; p <= last; p++)
		if (fare_feed_route_network(f, p->route_ix) != lf.network)
			lf.network = -1;
	lf.from_tf = tf_mask(ctx, first->leg.start_us, first->from_ix);
	lf.to_tf = tf_mask(ctx, last->leg.end_us, last->to_ix);
	first->alone = *match_memo(ctx, &lf);
	first->as_transfer = (struct rule_match){.rule = -1, .product = -1, .group = -1};
	if (f->ntransfer_only > 0 && f->ntransfer_rules > 0) { /* else the same match */
		lf.transfer = true;
		first->as_transfer = *match_memo(ctx, &lf);
	}
	price_match(first, &first->alone);
}

static void price_leg(struct rate_ctx *ctx, struct rate_leg *rl, const struct fare_tap *a,
		      const struct fare_incomplete *inc)
{
	const struct fare_feed *f = ctx->feed;
	if (a->kind == FARE_PURCHASE) {
		rl->leg.flags |= FARE_LEG_PURCHASE;
		rl->leg.nominal = (int32_t)a->amount_fen;
		rl->category_price = rl->leg.nominal;
		return;
	}
	if (rl->leg.flags & FARE_LEG_INCOMPLETE) {
		struct rule_match m = {.rule = -1, .product = inc->product, .group = -1};
		m.found = fare_feed_price_ix(f, inc->product, rl->media, rl->category, &m.nominal, &m.category, NULL);
		price_match(rl, &m);
		return;
	}
	if (!known(rl)) {
		rl->leg.flags |= FARE_LEG_NORULE; /* a validator code the feed does not know: never guessed */
		return;
	}
	match_leg(ctx, rl, rl);
}

/* Whether tap b ends the journey tap a began: an exit on the same network (on a bus, the same route). */
static bool ends(const struct rate_ctx *ctx, const struct fare_tap *a, const struct fare_tap *b, int32_t network)
{
	if (b->kind != FARE_EXIT || tap_network(ctx, b) != network)
		return false;
	return a->kind != FARE_BOARD || a->route_id == b->route_id;
}

/* Taps to legs, in tap order. */
static unsigned form_legs(struct rate_ctx *ctx, const struct fare_tap *t, unsigned n, struct rate_leg *out)
{
	const struct fare_feed *f = ctx->feed;
	unsigned nl = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct fare_tap *a = &t[i], *b = NULL;
		int32_t network = tap_network(ctx, a);
		const struct fare_incomplete *inc = a->kind != FARE_PURCHASE ? incomplete_of(f, network) : NULL;
		if (inc && a->kind == FARE_BOARD && !inc->board_exit)
			inc = NULL; /* a boarding on a network whose validators record no exit */
		bool incomplete = false;
		if (inc && a->kind != FARE_EXIT) {
			if (i + 1 < n && ends(ctx, a, &t[i + 1], network)) {
				b = &t[++i];
				incomplete = b->time_us - a->time_us > (uint64_t)inc->max_journey_s * 1000000u;
			} else {
				incomplete = true;
			}
		} else if (inc) { /* an exit without its entry */
			incomplete = true;
		} else if (ctx->pair_exits && a->kind != FARE_PURCHASE && a->kind != FARE_EXIT && i + 1 < n &&
			   ends(ctx, a, &t[i + 1], network)) {
			b = &t[++i]; /* quote: an exit given gives the leg its arrival, rule or not */
		}
		struct rate_leg *rl = &out[nl];
		leg_init(ctx, rl, a, b, ++nl);
		if (incomplete)
			rl->leg.flags |= FARE_LEG_INCOMPLETE;
		price_leg(ctx, rl, a, inc);
	}
	return nl;
}

/* --- fare_leg_join_rules.txt: effective fare legs */

#define JOIN_RUN_MAX 64u /* legs after the first of one effective leg; a longer run starts a new one */
static_assert(JOIN_RUN_MAX <= UINT16_MAX && FARE_PROMOTIONS_MAX <= INT16_MAX, "rate_leg.joined, .promotion");

/* A leg that can be part of an effective fare leg: a ride (not a purchase or incomplete journey) whose
 * route and stops the feed knows. */
static bool joinable(const struct rate_leg *rl)
{
	return !(rl->leg.flags & (FARE_LEG_PURCHASE | FARE_LEG_INCOMPLETE)) && known(rl);
}

/*
 * The first join rule the transfer from leg a to leg b matches, -1 none (spec: empty fields are
 * ignored; with from_stop_id / to_stop_id, a must end at that stop or station and b start at that one;
 * without them, a's last station and b's first station must be the same). A leg with no arrival (a
 * boarding whose exit is not recorded) ends nowhere known, so nothing joins it to the leg after it.
 */
int32_t fare_rate_join_rule(const struct fare_feed *f, const struct rate_leg *a, const struct rate_leg *b)
{
	if (a->leg.ntaps < 2)
		return -1;
	int32_t net_a = fare_feed_route_network(f, a->route_ix), net_b = fare_feed_route_network(f, b->route_ix);
	for (uint32_t i = 0; i < f->njoin_rules; i++) {
		const struct fare_join_rule *j = &f->join_rules[i];
		if ((j->from_network >= 0 && j->from_network != net_a) || (j->to_network >= 0 && j->to_network != net_b))
			continue;
		bool at = j->from_stop >= 0
				  ? fare_feed_stop_at(f, a->to_ix, (uint32_t)j->from_stop) &&
					    fare_feed_stop_at(f, b->from_ix, (uint32_t)j->to_stop)
				  : fare_feed_station(f, a->to_ix) == fare_feed_station(f, b->from_ix);
		if (at)
			return (int32_t)i;
	}
	return -1;
}

/* Legs head+1 .. last are joined to head: head is priced as the effective leg, they carry no money. */
static void join_run(struct rate_ctx *ctx, struct rate_leg *legs, unsigned head, unsigned last)
{
	match_leg(ctx, &legs[head], &legs[last]);
	legs[head].joined = (uint16_t)(last - head);
	for (unsigned i = head + 1; i <= last; i++) {
		struct rate_leg *rl = &legs[i];
		rl->leg.flags = (uint8_t)((rl->leg.flags & ~FARE_LEG_NORULE) | FARE_LEG_JOINED);
		rl->leg.nominal = rl->leg.concession = 0;
		rl->category_price = 0;
		rl->group = rl->rule = -1;
		rl->alone = rl->as_transfer = (struct rule_match){.rule = -1, .product = -1, .group = -1};
	}
}

/* Legs head .. last that a refused join rule would join: unrated, each, never priced apart. */
static void refuse_run(struct rate_leg *legs, unsigned head, unsigned last, int32_t rule)
{
	static const struct rule_match none = {.rule = -1, .product = -1, .group = -1};
	for (unsigned i = head; i <= last; i++) {
		price_match(&legs[i], &none);
		legs[i].refused_join = rule;
	}
}

/* Runs of consecutive legs each joined to the next by a join rule become one effective fare leg each. */
static void join_legs(struct rate_ctx *ctx, struct rate_leg *legs, unsigned n)
{
	const struct fare_feed *f = ctx->feed;
	if (f->njoin_rules == 0)
		return;
	for (unsigned i = 0; i < n;) {
		unsigned k = i;
		int32_t j, refused = -1;
		while (k + 1 < n && k - i < JOIN_RUN_MAX && joinable(&legs[k]) && joinable(&legs[k + 1]) &&
		       (j = fare_rate_join_rule(f, &legs[k], &legs[k + 1])) >= 0) {
			if (f->join_rules[j].excluded && refused < 0)
				refused = j;
			k++;
		}
		if (refused >= 0)
			refuse_run(legs, i, k, refused);
		else if (k > i)
			join_run(ctx, legs, i, k);
		i = k + 1;
	}
}

/* A joined leg is unrated with its effective leg and shows its product (after transfers priced the head). */
static void finish_joined(struct rate_leg *legs, unsigned n)
{
	for (unsigned i = 0, head = 0; i < n; i++) {
		if (!(legs[i].leg.flags & FARE_LEG_JOINED)) {
			head = i;
		} else {
			const struct fare_leg *h = &legs[head].leg;
			legs[i].leg.flags = (uint8_t)((legs[i].leg.flags & ~FARE_LEG_NORULE) | (h->flags & FARE_LEG_NORULE));
			legs[i].leg.product = h->product;
		}
	}
}

/* --- transfers */

static bool transfer_from(const struct rate_leg *rl)
{
	return !(rl->leg.flags & (FARE_LEG_PURCHASE | FARE_LEG_INCOMPLETE | FARE_LEG_NORULE));
}

static bool transfer_to(const struct rate_leg *rl)
{
	return !(rl->leg.flags & (FARE_LEG_PURCHASE | FARE_LEG_INCOMPLETE)) && rl->refused_join < 0 &&
	       (rl->alone.found || rl->as_transfer.found);
}

/* Departures and arrivals of (effective) fare legs: an effective leg arrives when its last leg does (legs
 * of one token-day are consecutive in memory, so its last leg is prev[prev->joined]). */
static bool within(const struct fare_transfer_rule *tr, const struct rate_leg *prev, const struct rate_leg *cur)
{
	if (tr->duration_s < 0)
		return true;
	uint64_t from = tr->duration_type <= 1 ? prev->leg.start_us : prev[prev->joined].leg.end_us;
	uint64_t to = tr->duration_type == 0 || tr->duration_type == 3 ? cur[cur->joined].leg.end_us : cur->leg.start_us;
	return to >= from && to - from <= (uint64_t)tr->duration_s * 1000000u;
}

/* One step of the group filter (from or to): the rules naming g if any does, else those leaving it empty. */
static bool group_step(int32_t v, int32_t g, bool named)
{
	return named ? v == g : v < 0;
}

struct transfer_choice {
	int32_t rule;     /* -1: none */
	int32_t transfer; /* the adjustment */
};

/* The best transfer rule from prev to cur priced by match m (docs/FARES.md 1.3). */
static struct transfer_choice best_transfer(struct rate_ctx *ctx, const struct rate_leg *prev,
					    const struct rate_leg *cur, const struct rule_match *m, uint32_t run)
{
	const struct fare_feed *f = ctx->feed;
	struct transfer_choice best = {.rule = -1};
	bool from_named = false, to_named = false;
	for (uint32_t i = 0; i < f->ntransfer_rules && prev->group >= 0 && !from_named; i++)
		from_named = f->transfer_rules[i].from_group == prev->group;
	for (uint32_t i = 0; i < f->ntransfer_rules && m->group >= 0 && !to_named; i++)
		to_named = group_step(f->transfer_rules[i].from_group, prev->group, from_named) &&
			   f->transfer_rules[i].to_group == m->group;
	int32_t a = prev->category_price, b = m->category;
	for (uint32_t i = 0; i < f->ntransfer_rules; i++) {
		const struct fare_transfer_rule *tr = &f->transfer_rules[i];
		if (!group_step(tr->from_group, prev->group, from_named) || !group_step(tr->to_group, m->group, to_named))
			continue;
		bool same = tr->from_group >= 0 && tr->from_group == tr->to_group;
		if (!within(tr, prev, cur) || (same && tr->transfer_count >= 0 && run >= (uint32_t)tr->transfer_count))
			continue;
		if ((tr->filter_product >= 0 && tr->filter_product != (int32_t)prev->leg.product) ||
		    (tr->product_behavior == 1 && (int32_t)prev->leg.product != m->product))
			continue;
		int32_t x = 0, nominal;
		if (tr->product >= 0 && !fare_feed_price_ix(f, tr->product, cur->media, cur->category, &nominal, &x, NULL))
			continue;
		int32_t t = tr->transfer_type == 0 ? x - b : tr->transfer_type == 1 ? x : x - a - b;
		if (t < -b)
			t = -b; /* never a negative fare */
		if (best.rule < 0 || t < best.transfer)
			best = (struct transfer_choice){.rule = (int32_t)i, .transfer = t};
	}
	return best;
}

/* Transfer to cur from prev: as the leg alone, or by its transfer_only rule; the cheaper for the rider. */
static int32_t apply_transfer(struct rate_ctx *ctx, const struct rate_leg *prev, struct rate_leg *cur, uint32_t run)
{
	struct transfer_choice alone = {.rule = -1}, via = {.rule = -1};
	if (cur->alone.found)
		alone = best_transfer(ctx, prev, cur, &cur->alone, run);
	if (cur->as_transfer.found && cur->as_transfer.rule != cur->alone.rule)
		via = best_transfer(ctx, prev, cur, &cur->as_transfer, run);
	int64_t cost_alone = alone.rule >= 0 ? (int64_t)cur->alone.category + alone.transfer : INT64_MAX;
	int64_t cost_via = via.rule >= 0 ? (int64_t)cur->as_transfer.category + via.transfer : INT64_MAX;
	if (via.rule >= 0 && cost_via < cost_alone) {
		price_match(cur, &cur->as_transfer);
		cur->leg.transfer = via.transfer;
		return via.rule;
	}
	if (alone.rule >= 0)
		cur->leg.transfer = alone.transfer;
	return alone.rule;
}

static void apply_transfers(struct rate_ctx *ctx, struct rate_leg *legs, unsigned n)
{
	const struct rate_leg *prev = NULL;
	uint32_t run = 0; /* consecutive same-group transfers ending at prev */
	for (unsigned i = 0; i < n; i++) {
		struct rate_leg *cur = &legs[i];
		if (cur->leg.flags & (FARE_LEG_PURCHASE | FARE_LEG_JOINED))
			continue; /* a joined leg is part of the effective leg before it */
		int32_t rule = -1;
		if (prev && transfer_from(prev) && transfer_to(cur))
			rule = apply_transfer(ctx, prev, cur, run);
		cur->transfer_rule = rule;
		const struct fare_transfer_rule *tr = rule >= 0 ? &ctx->feed->transfer_rules[rule] : NULL;
		run = tr && tr->from_group >= 0 && tr->from_group == tr->to_group ? run + 1 : 0;
		prev = cur;
	}
}

/* --- caps, subsidies, promotion candidates */

/* The spend-tier discount of a fare, in percent, once `spent` was charged this month (the best tier reached). */
static int32_t tier_pct(const struct fare_feed *f, const struct rate_leg *rl, int64_t spent)
{
	int32_t pct = 0;
	for (uint32_t t = 0; t < f->ntiers; t++) {
		const struct fare_tier *tr = &f->tier_rows[t];
		if (tr->media == rl->media && (tr->category < 0 || tr->category == rl->category) &&
		    spent >= tr->threshold_fen && tr->discount_pct > pct)
			pct = tr->discount_pct;
	}
	return pct;
}

/* Room left under the token's caps of its medium and category, after `day_fen` charged today. */
static int64_t cap_room(const struct fare_feed *f, const struct rate_leg *rl, const struct rate_before *before,
			int64_t day_fen)
{
	int64_t room = INT64_MAX;
	for (uint32_t c = 0; c < f->ncaps; c++) {
		const struct fare_cap *cap = &f->cap_rows[c];
		if (cap->media != rl->media || (cap->category >= 0 && cap->category != rl->category))
			continue;
		int64_t earlier = cap->period == FARE_CAP_WEEK ? before->week_fen
				  : cap->period == FARE_CAP_MONTH ? before->month_fen : 0;
		int64_t r = cap->amount_fen - earlier - day_fen;
		if (r < room)
			room = r;
	}
	return room < 0 ? 0 : room;
}

/* Spend tiers, then caps: both in the leg's `cap` adjustment (docs/FARES.md 3, step 4). */
static void apply_caps(struct rate_ctx *ctx, struct rate_leg *legs, unsigned n, const struct rate_before *before)
{
	const struct fare_feed *f = ctx->feed;
	int64_t day_fen = 0;
	for (unsigned i = 0; i < n; i++) {
		struct fare_leg *l = &legs[i].leg;
		if (l->flags & FARE_LEG_PURCHASE)
			continue;
		int64_t fare = l->nominal + l->concession + l->transfer, discount = 0;
		if (f->ntiers > 0 && fare > 0)
			discount = fare * tier_pct(f, &legs[i], before->month_fen + day_fen) / 100;
		fare -= discount;
		int64_t room = cap_room(f, &legs[i], before, day_fen);
		l->cap = (int32_t)-(discount + (fare > room ? fare - room : 0));
		day_fen += l->nominal + l->concession + l->transfer + l->cap;
	}
}

static bool promotion_applies(const struct fare_feed *f, const struct fare_promotion *p, const struct rate_leg *rl)
{
	const struct fare_leg *l = &rl->leg;
	return p->media == rl->media && l->day >= p->start_date && l->day <= p->end_date &&
	       (p->network < 0 || p->network == fare_feed_route_network(f, rl->route_ix)) &&
	       (!p->route_id_set || p->route_id == l->route_id);
}

static void mark_promotions(struct rate_ctx *ctx, struct rate_leg *legs, unsigned n)
{
	const struct fare_feed *f = ctx->feed;
	for (unsigned i = 0; i < n; i++) {
		const struct fare_leg *l = &legs[i].leg;
		if (l->flags & (FARE_LEG_PURCHASE | FARE_LEG_NORULE | FARE_LEG_JOINED))
			continue;
		for (uint32_t p = 0; p < f->npromotions && p < FARE_PROMOTIONS_MAX; p++)
			if (promotion_applies(f, &f->promotion_rows[p], &legs[i])) {
				if (l->nominal + l->concession + l->transfer + l->cap > f->promotion_rows[p].rider_amount_fen)
					legs[i].promotion = (int16_t)p;
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
			if (sb->category != legs[i].category || (sb->media >= 0 && sb->media != legs[i].media) ||
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

void fare_rate_settle_leg(struct fare_leg *l)
{
	l->operator_fen = l->nominal + l->concession + l->transfer + l->cap;
	l->promotion_funder_fen = -l->promotion;
	l->subsidy_funder_fen = -l->subsidy;
	l->rider_fen = l->operator_fen - l->promotion_funder_fen - l->subsidy_funder_fen;
	/* the shares above add up by construction; what can break is their inputs: a discount
	   (concession, cap: a transfer may cost extra) or a funded share (promotion, subsidy) that adds to a fare, or a
	   rider paid to ride, is a rating error, and settle/ would pass it on to the counterparties */
	TG_ASSERT(l->nominal >= 0 && l->concession <= 0 && l->cap <= 0);
	TG_ASSERT(l->promotion <= 0 && l->subsidy <= 0 && l->rider_fen >= 0);
}

unsigned fare_rate_token_day(struct rate_ctx *ctx, const struct fare_tap *taps, unsigned n, const struct rate_before *before,
			struct rate_leg *out)
{
	unsigned nl = form_legs(ctx, taps, n, out);
	join_legs(ctx, out, nl);
	apply_transfers(ctx, out, nl);
	finish_joined(out, nl);
	apply_caps(ctx, out, nl, before);
	apply_subsidies(ctx, out, nl);
	mark_promotions(ctx, out, nl);
	for (unsigned i = 0; i < nl; i++)
		fare_rate_settle_leg(&out[i].leg);
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

unsigned fare_rate_audit(struct rate_ctx *ctx, const struct fare_tap *taps, unsigned n, const struct rate_leg *legs,
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
