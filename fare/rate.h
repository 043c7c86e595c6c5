/*
 * rate.h - rating of one token's business day (rate.c), shared by the run
 * (run.c). Internal to fare/.
 */
#ifndef TAPGATE_FARE_RATE_H
#define TAPGATE_FARE_RATE_H

#include "fare/internal.h"

#define FARE_PROMOTIONS_MAX 16u
#define FARE_SUBSIDIES_MAX 16u
#define FARE_MEMO_SLOTS 16384u

/* One leg-rule match: the rule chosen and its prices for the rider. */
struct rule_match {
	int32_t rule, product, group, nominal, category;
	bool found;
	bool excluded; /* a rule check refused (exclude_bad_rows) matches: the leg is unrated */
	bool upgrade;  /* only a transfer product matched the leg alone */
};

struct rule_memo {
	uint64_t key_a, key_b, key_from_tf, key_to_tf;
	struct rule_match m;
	bool used;
};

/* Per run: the feed, the clocks, and a memo of leg-rule matches. */
struct rate_ctx {
	const struct fare_feed *feed;
	struct fare_clock *clock;      /* business days: [fares] timezone */
	struct fare_clock *feed_clock; /* timeframes: the feed's agency_timezone (may be clock) */
	struct fare_clock *zone_clock; /* timeframes at stops with a stop_timezone: [zone - 1], feed->zones.n */
	struct rule_memo *memo;        /* FARE_MEMO_SLOTS */
	bool taps_by_index;            /* taps' route_id / stop_id are feed indices (tapfare quote) */
	bool pair_exits;               /* quote: an exit after a boarding or entry ends its leg, on any network */
	bool media_fixed;              /* quote: media / category below instead of the tap's */
	int32_t media, category;
};

/* A leg while it is rated: the stored leg plus what phase 2 needs. */
struct rate_leg {
	struct fare_leg leg;
	int32_t category_price; /* for transfers: the leg's fare for the rider's category */
	int32_t group;          /* leg group, -1 none */
	int16_t promotion;      /* candidate promotion index, -1 none */
	uint16_t joined;        /* legs after it joined into its effective fare leg (fare_leg_join_rules); a joined
				   leg (FARE_LEG_JOINED) belongs to the nearest leg before it that is not joined */
	uint32_t group_index;   /* which token-day it belongs to */
	uint32_t route_ix, from_ix, to_ix; /* feed indices, FARE_NO_INDEX when the code maps to nothing */
	struct rule_match alone, as_transfer; /* the leg's rule on its own, and reached by a transfer */
	int32_t rule, transfer_rule;          /* what priced it (-1 none), for quote's explanation */
	int32_t refused_join;                 /* a refused join rule (exclude_bad_rows) would join it: unrated; -1 */
	int32_t media, category;              /* feed indices it was priced for */
};

/* What a token was charged for fares before this business day (filled by the run). */
struct rate_before {
	int64_t week_fen;  /* on earlier business days of the same week (Monday to Sunday) */
	int64_t month_fen; /* on earlier business days of the same calendar month */
};

/*
 * Rate one token's taps of one business day (sorted by time, then seq) into
 * legs (at most n). Promotions are only marked as candidates: the run grants
 * them over every token in order. Returns the number of legs.
 */
unsigned fare_rate_token_day(struct rate_ctx *ctx, const struct fare_tap *taps, unsigned n, const struct rate_before *before,
			struct rate_leg *out);

/* Clocks for the feed's stop time zones (ctx->zone_clock, free with free()). Returns 0, FARE_ERR_NOMEM,
 * FARE_ERR_TZ (err names the zone). */
int fare_rate_zone_clocks(struct rate_ctx *ctx, char *err, size_t err_len);

/* The join rule that joins leg b to the leg a before it (fare_leg_join_rules.txt index), -1 none. */
int32_t fare_rate_join_rule(const struct fare_feed *f, const struct rate_leg *a, const struct rate_leg *b);

/* Payers and receiver from the adjustments; asserts the leg is conserved. */
void fare_rate_settle_leg(struct fare_leg *leg);

/* Audit lines of an e-purse token-day; CTC and balance are checked in CTC
 * order. prev_ctc/prev_after: the card's last tap before this day (have_prev
 * false if none); *last_ctc, *last_after: its highest-CTC tap of this day.
 * Returns lines written to out. */
struct audit_line {
	char text[FARE_TEXT_MAX];
};
unsigned fare_rate_audit(struct rate_ctx *ctx, const struct fare_tap *taps, unsigned n, const struct rate_leg *legs,
		    unsigned nlegs, bool have_prev, uint16_t prev_ctc, uint32_t prev_after, struct audit_line *out,
		    unsigned cap, uint16_t *last_ctc, uint32_t *last_after);

#endif
