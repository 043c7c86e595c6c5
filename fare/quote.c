/*
 * quote.c - `tapfare quote`: one journey, given as taps with the feed's own
 * ids, priced by the same rating as the run (rate.c), with no store.
 *
 * For an agency checking its feed and for customer service explaining a
 * charge: each leg is printed with the fare leg rule (file line) that priced
 * it, its leg group, the transfer rule that adjusted it, and, when no rule
 * prices it, why it is unrated (never free).
 */
#include "fare/rate.h"

#include <stdlib.h>
#include <string.h>

#define QUOTE_TAPS_MAX 64u

struct quote {
	const struct fare_feed *f;
	struct fare_clock clk;
	struct rate_ctx ctx;
	struct fare_tap taps[QUOTE_TAPS_MAX];
	unsigned n;
	const struct rate_leg *legs; /* as rated */
	char *err;
	size_t err_len;
};

static int bad(struct quote *q, const char *fmt, const char *a, const char *b)
{
	snprintf(q->err, q->err_len, fmt, a, b);
	return FARE_ERR_INVALID;
}

static int col(const struct csv_table *t, const char *name)
{
	for (uint32_t i = 0; i < t->ncols; i++)
		if (strcmp(t->header[i], name) == 0)
			return (int)i;
	return -1;
}

static const char *cell(const struct csv_row *r, int c)
{
	return c >= 0 && (uint32_t)c < r->nfields ? r->fields[c] : "";
}

static int parse_tap(struct quote *q, const struct csv_row *r, const int *c, uint32_t date0, struct fare_tap *t)
{
	static const char *const kinds[] = {"", "entry", "exit", "board"};
	unsigned h, m, s = 0;
	char tail;
	uint32_t date = date0;
	int k = 0;
	for (int i = 1; i <= 3; i++)
		if (strcmp(cell(r, c[2]), kinds[i]) == 0)
			k = i;
	if (c[0] >= 0 && *cell(r, c[0]) && fare_day_parse(cell(r, c[0]), &date) != 0)
		return bad(q, "tap date \"%s\" is not YYYYMMDD%s", cell(r, c[0]), "");
	int got = sscanf(cell(r, c[1]), "%u:%u:%u%c", &h, &m, &s, &tail);
	if ((got != 2 && got != 3) || h > 47 || m > 59 || s > 59)
		return bad(q, "tap time \"%s\" is not HH:MM[:SS]%s", cell(r, c[1]), "");
	if (k == 0)
		return bad(q, "tap kind \"%s\" is not board, entry or exit%s", cell(r, c[2]), "");
	int32_t route = fare_ids_find(&q->f->routes, cell(r, c[3])), stop = fare_ids_find(&q->f->stops, cell(r, c[4]));
	if (route < 0)
		return bad(q, "route_id \"%s\" is not in the feed's routes.txt%s", cell(r, c[3]), "");
	if (stop < 0)
		return bad(q, "stop_id \"%s\" is not in the feed's stops.txt%s", cell(r, c[4]), "");
	memset(t, 0, sizeof(*t));
	t->time_us = fare_clock_utc_us(&q->clk, date, h * 3600 + m * 60 + s);
	t->day = date;
	t->kind = (uint8_t)k;
	t->route_id = (uint32_t)route;
	t->stop_id = (uint32_t)stop;
	t->medium = FARE_QUICKPASS;
	t->token_id = 1;
	return 0;
}

static int parse_taps(struct quote *q, const char *csv, size_t len, uint32_t date)
{
	struct csv_table t;
	int rc = fare_csv_table_parse(&t, "taps", csv, len, q->err, q->err_len);
	if (rc != 0)
		return rc == FARE_ERR_FEED ? FARE_ERR_INVALID : rc;
	int c[5] = {col(&t, "date"), col(&t, "time"), col(&t, "kind"), col(&t, "route_id"), col(&t, "stop_id")};
	if (c[1] < 0 || c[2] < 0 || c[3] < 0 || c[4] < 0)
		rc = bad(q, "taps need the columns time, kind, route_id, stop_id (and date)%s%s", "", "");
	if (rc == 0 && (t.nrows == 0 || t.nrows > QUOTE_TAPS_MAX))
		rc = bad(q, "a journey is 1 to 64 taps%s%s", "", "");
	for (uint32_t i = 0; i < t.nrows && rc == 0; i++) {
		rc = parse_tap(q, &t.rows[i], c, date, &q->taps[i]);
		q->taps[i].seq = i + 1;
	}
	q->n = rc == 0 ? t.nrows : 0;
	fare_csv_table_free(&t);
	return rc;
}

static int cmp_time(const void *a, const void *b)
{
	const struct fare_tap *x = a, *y = b;
	if (x->time_us != y->time_us)
		return x->time_us < y->time_us ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void money(const struct fare_feed *f, int64_t v, char *out, size_t cap)
{
	int64_t scale = 1;
	for (unsigned i = 0; i < f->minor_units; i++)
		scale *= 10;
	const char *sign = v < 0 ? "-" : "";
	int64_t a = v < 0 ? -v : v;
	if (f->minor_units == 0)
		snprintf(out, cap, "%s%lld", sign, (long long)a);
	else
		snprintf(out, cap, "%s%lld.%0*lld", sign, (long long)(a / scale), (int)f->minor_units,
			 (long long)(a % scale));
}

static void hms(struct quote *q, uint64_t us, char out[16])
{
	uint32_t sec, date;
	unsigned wd;
	fare_clock_local(&q->clk, us, &sec, &date, &wd);
	snprintf(out, 16, "%02u:%02u:%02u", sec / 3600, sec / 60 % 60, sec % 60);
}

/* Why a leg is unrated, in the feed's words. */
static void why_unrated(struct quote *q, const struct rate_leg *rl, FILE *out)
{
	const struct fare_feed *f = q->f;
	if (rl->refused_join >= 0)
		fprintf(out, " why=\"fare_leg_join_rules.txt:%u was refused by check (--exclude-bad-rows): the legs it "
			     "would join are unrated\"", f->join_rules[rl->refused_join].line);
	else if (rl->alone.excluded || rl->as_transfer.excluded)
		fprintf(out, " why=\"fare_leg_rules.txt:%u was refused by check (--exclude-bad-rows): its legs are unrated\"",
			f->leg_rules[rl->alone.excluded ? rl->alone.rule : rl->as_transfer.rule].line);
	else if (rl->as_transfer.found)
		fprintf(out, " why=\"only transfer_only rules match (fare_leg_rules.txt:%u) and no transfer rule leads to it\"",
			f->leg_rules[rl->as_transfer.rule].line);
	else if (rl->leg.flags & FARE_LEG_INCOMPLETE)
		fprintf(out, " why=\"incomplete journey and its product is not sold on this medium\"");
	else
		fprintf(out, " why=\"no fare leg rule matches network %s from %s to %s on this medium and category\"",
			fare_feed_route_network(f, rl->route_ix) >= 0
				? f->networks.names[fare_feed_route_network(f, rl->route_ix)] : "(none)",
			f->stops.names[rl->from_ix], rl->leg.ntaps > 1 ? f->stops.names[rl->to_ix] : "(no exit)");
}

static void print_leg(struct quote *q, const struct rate_leg *rl, unsigned head, FILE *out)
{
	const struct fare_feed *f = q->f;
	const struct fare_leg *l = &rl->leg;
	char a[16], b[16], fare[300], nom[300], con[300], tra[300], cap[300];
	hms(q, l->start_us, a);
	hms(q, l->end_us, b);
	money(f, l->rider_fen, fare, sizeof(fare));
	money(f, l->nominal, nom, sizeof(nom));
	money(f, l->concession, con, sizeof(con));
	money(f, l->transfer, tra, sizeof(tra));
	money(f, l->cap, cap, sizeof(cap));
	fprintf(out, "leg %u %s%s%s route=%s stops=%s%s%s", l->leg_no, a, l->ntaps > 1 ? "-" : "", l->ntaps > 1 ? b : "",
		f->routes.names[rl->route_ix], f->stops.names[rl->from_ix], l->ntaps > 1 ? "-" : "",
		l->ntaps > 1 ? f->stops.names[rl->to_ix] : "");
	if (l->flags & FARE_LEG_JOINED) {
		fprintf(out, " joined to leg %u by fare_leg_join_rules.txt:%u (one effective fare leg: its fare is there)\n",
			q->legs[head].leg.leg_no, f->join_rules[fare_rate_join_rule(f, rl - 1, rl)].line);
		return;
	}
	if (l->flags & FARE_LEG_NORULE) {
		fprintf(out, " UNRATED");
		why_unrated(q, rl, out);
		fputc('\n', out);
		return;
	}
	fprintf(out, " fare=%s %s product=%s nominal=%s concession=%s transfer=%s cap=%s", fare, f->currency,
		f->products.names[l->product], nom, con, tra, cap);
	if (rl->rule >= 0)
		fprintf(out, " rule=fare_leg_rules.txt:%u group=%s%s", f->leg_rules[rl->rule].line,
			rl->group >= 0 ? f->groups.names[rl->group] : "-",
			f->leg_rules[rl->rule].transfer_only ? " transfer_only" : "");
	if (rl->joined)
		fprintf(out, " effective_leg=%u-%u", l->leg_no, l->leg_no + rl->joined);
	if (rl->transfer_rule >= 0)
		fprintf(out, " transfer_rule=fare_transfer_rules.txt:%u type=%d", f->transfer_rules[rl->transfer_rule].line,
			f->transfer_rules[rl->transfer_rule].transfer_type);
	fprintf(out, "%s\n", l->flags & FARE_LEG_INCOMPLETE ? " incomplete" : "");
}

/* Media and category of the quote: named, or the feed's only medium / its default category. */
static int quote_rider(struct quote *q, const struct fare_quote_opts *o)
{
	const struct fare_feed *f = q->f;
	q->ctx.media = -1;
	q->ctx.category = f->default_category;
	if (o->media_id && (q->ctx.media = fare_ids_find(&f->media, o->media_id)) < 0)
		return bad(q, "fare_media_id \"%s\" is not in the feed's fare_media.txt%s", o->media_id, "");
	if (!o->media_id && f->media.n == 1)
		q->ctx.media = 0;
	else if (!o->media_id && f->media.n > 1)
		return bad(q, "the feed has several media (fare_media.txt): name one with --media, e.g. \"%s\"%s",
			   f->media.names[0], "");
	if (o->category_id && (q->ctx.category = fare_ids_find(&f->categories, o->category_id)) < 0)
		return bad(q, "rider_category_id \"%s\" is not in the feed's rider_categories.txt%s", o->category_id, "");
	q->ctx.media_fixed = true;
	return 0;
}

static void print_quote(struct quote *q, const struct rate_leg *legs, unsigned nl, FILE *out)
{
	int64_t total = 0;
	unsigned unrated = 0;
	char t[300];
	for (unsigned i = 0, head = 0; i < nl; i++) {
		head = legs[i].leg.flags & FARE_LEG_JOINED ? head : i;
		print_leg(q, &legs[i], head, out);
		total += legs[i].leg.rider_fen;
		unrated += (legs[i].leg.flags & (FARE_LEG_NORULE | FARE_LEG_JOINED)) == FARE_LEG_NORULE;
	}
	money(q->f, total, t, sizeof(t));
	fprintf(out, "total=%s %s legs=%u unrated=%u%s\n", t, q->f->currency, nl, unrated,
		unrated ? " (the total leaves the unrated legs out: they are not free, they are not priced)" : "");
}

int fare_quote(const struct fare_feed *f, const char *csv, size_t len, const struct fare_quote_opts *o, FILE *out,
	       char *err, size_t err_len)
{
	struct quote *q = calloc(1, sizeof(*q));
	struct rate_leg *legs = calloc(QUOTE_TAPS_MAX, sizeof(*legs));
	if (!q || !legs || !(q->ctx.memo = calloc(FARE_MEMO_SLOTS, sizeof(*q->ctx.memo)))) {
		free(legs);
		if (q)
			free(q->ctx.memo);
		free(q);
		return FARE_ERR_NOMEM;
	}
	q->f = f;
	q->err = err;
	q->err_len = err_len;
	const char *tz = f->timezone[0] ? f->timezone : o->timezone ? o->timezone : "UTC";
	int rc = fare_clock_init(&q->clk, tz, "00:00");
	if (rc == FARE_ERR_TZ)
		snprintf(err, err_len, "time zone \"%s\" is not in /usr/share/zoneinfo", tz);
	if (rc == 0)
		rc = quote_rider(q, o);
	q->ctx.feed = f;
	if (rc == 0)
		rc = fare_rate_zone_clocks(&q->ctx, err, err_len);
	if (rc == 0)
		rc = parse_taps(q, csv, len, o->date);
	if (rc == 0) {
		qsort(q->taps, q->n, sizeof(q->taps[0]), cmp_time);
		q->ctx.clock = q->ctx.feed_clock = &q->clk;
		q->legs = legs;
		q->ctx.taps_by_index = q->ctx.pair_exits = true;
		struct rate_before before = {0};
		unsigned nl = fare_rate_token_day(&q->ctx, q->taps, q->n, &before, legs);
		print_quote(q, legs, nl, out);
	}
	free(q->ctx.memo);
	free(q->ctx.zone_clock);
	free(q);
	free(legs);
	return rc;
}
