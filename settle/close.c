/*
 * close.c - closing a business day: the legs of a round become batches.
 *
 * One pass over the day's legs in key order (day, medium, issuer, token,
 * revision, leg), keeping those of the round's rating runs:
 *   - QuickPass and e-SSC QR legs: one aggregated charge per token (the
 *     rider's share of its legs) to the acquirer / the QR platform;
 *   - e-purse legs: one clearing item per leg to the card's issuer city,
 *     with the CTC, TAC and PSAM of its last tap (read from the tap log);
 *   - promotion and subsidy shares: one item per leg to the funder;
 *   - every leg: a TIDES fare_transactions row and the totals of its
 *     operator; after the pass, the operators' net receivables become one
 *     pain.001 credit transfer per operator to the payout bank.
 * Items are written in that key order, so a round's files depend only on
 * its legs and its creation time, both fixed before the first file is
 * written: a crashed round is redone into the same bytes.
 */
#include "settle/pain001.h"

#include "fare/fare.h"
#include "proto/proto.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>


enum writer_kind { W_CHARGE, W_ISSUER, W_FUNDER, W_TIDES, W_PAYOUT };

struct writer {
	enum writer_kind kind;
	struct batch b;
	struct out_file o;
};

struct op_sum {
	uint16_t op;
	uint64_t taps, legs;
	int64_t gross, concession, transfer, cap, promotion, subsidy, net;
	struct writer *tides;
};

struct agg { /* the token being aggregated into a charge */
	bool active;
	uint8_t medium;
	uint64_t token;
	uint32_t legs;
	int64_t amount;
	uint64_t first_us, last_us;
};

struct builder {
	struct settle_ctx *c;
	struct round rd;
	bool dry; /* compute the batches only (reconciliation): no files */
	struct writer **w;
	unsigned nw, capw;
	struct agg agg;
	struct op_sum ops[SETTLE_OPERATORS_MAX];
	unsigned nops;
	char service_date[16]; /* the day as TIDES writes it, YYYY-MM-DD */
	struct st_reader *reader; /* the tap log, for e-purse tap details */
	struct writer *issuer_w, *funder_w[2]; /* the last ones used, and whose */
	uint32_t issuer;
	const char *funder[2];
	char *err;
	size_t err_len;
	int rc;
};

static const char *const category_names[] = {"adult", "senior", "student", "disabled"};
static const char *const tides_media[] = {"Other type", "Smart card or ticket", "Bank card", "Optical scan"};

static void batch_id(char *out, size_t cap, uint32_t day, uint16_t round, const char *party)
{
	snprintf(out, cap, "%u-%02u-%s", day, round, party);
}

/* The writer of a party in this round, opened (header written) on first use. */
static struct writer *writer_for(struct builder *bd, enum writer_kind kind, const char *party)
{
	for (unsigned i = bd->nw; i-- > 0;)
		if (bd->w[i]->kind == kind && strcmp(bd->w[i]->b.party, party) == 0)
			return bd->w[i];
	if (bd->nw == bd->capw) {
		unsigned cap = bd->capw ? bd->capw * 2 : 16;
		struct writer **n = realloc(bd->w, cap * sizeof(*n));
		if (!n)
			return NULL;
		bd->w = n;
		bd->capw = cap;
	}
	struct writer *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->kind = kind;
	snprintf(w->b.party, sizeof(w->b.party), "%s", party);
	batch_id(w->b.id, sizeof(w->b.id), bd->rd.day, bd->rd.round, party);
	snprintf(w->b.file, sizeof(w->b.file), "%s%s", w->b.id,
		 kind == W_TIDES ? "-fare_transactions.csv" : kind == W_PAYOUT ? ".xml" : ".csv");
	w->b.day = bd->rd.day;
	w->b.round = bd->rd.round;
	w->b.state = BATCH_CLOSED;
	bd->w[bd->nw++] = w;
	if (bd->dry)
		return w;
	if ((bd->rc = out_open(&w->o, bd->c->outbox, party, w->b.file, bd->err, bd->err_len)) != 0)
		return NULL;
	if (kind == W_PAYOUT)
		return w; /* pain.001: written whole by finish() */
	char created[32];
	utc_text(bd->rd.created_us, created);
	if (kind == W_TIDES)
		out_printf(&w->o, "transaction_id,service_date,event_timestamp,amount,currency_type,fare_action,stop_id,"
				  "fare_media_id,rider_category,fare_product,fare_capped,token_id\n");
	else
		out_printf(&w->o, "H,%s,%s,%s,%u,%u,CNY\n", w->b.id, created, party, bd->rd.day, bd->rd.round);
	return w;
}

static char dc(int64_t amount)
{
	return amount >= 0 ? 'D' : 'C';
}

static uint64_t absv(int64_t v)
{
	return v < 0 ? (uint64_t)-v : (uint64_t)v;
}

static void flush_agg(struct builder *bd)
{
	struct agg *a = &bd->agg;
	if (!a->active)
		return;
	a->active = false;
	char party[PARTY_MAX];
	snprintf(party, sizeof(party), "%s-%s", a->medium == FARE_QUICKPASS ? "acquirer" : "qr",
		 a->medium == FARE_QUICKPASS ? bd->c->parties->acquirer : bd->c->parties->qr_platform);
	struct writer *w = writer_for(bd, W_CHARGE, party);
	if (!w) {
		bd->rc = bd->rc ? bd->rc : SETTLE_ERR_NOMEM;
		return;
	}
	batch_item(&w->b, a->amount, a->token);
	if (!bd->dry) {
		struct line ln = {.n = 0};
		ln_str(&ln, "D,");
		ln_u64(&ln, w->b.items);
		ln_chr(&ln, ',');
		ln_u64(&ln, a->token);
		ln_chr(&ln, ',');
		ln_u64(&ln, a->legs);
		ln_chr(&ln, ',');
		ln_utc(&ln, a->first_us);
		ln_chr(&ln, ',');
		ln_utc(&ln, a->last_us);
		ln_chr(&ln, ',');
		ln_u64(&ln, absv(a->amount));
		ln_chr(&ln, ',');
		ln_chr(&ln, dc(a->amount));
		ln_chr(&ln, '\n');
		out_line(&w->o, &ln);
	}
}

static struct op_sum *op_of(struct builder *bd, uint16_t op)
{
	for (unsigned i = 0; i < bd->nops; i++)
		if (bd->ops[i].op == op)
			return &bd->ops[i];
	if (bd->nops == SETTLE_OPERATORS_MAX)
		return NULL;
	struct op_sum *s = &bd->ops[bd->nops++];
	memset(s, 0, sizeof(*s));
	s->op = op;
	return s;
}

/* The e-purse tap details of a leg: its last tap's, and what the validators deducted. */
static int epurse_detail(struct builder *bd, const struct fare_leg *l, struct fp_tap *last, uint64_t *deducted)
{
	*deducted = 0;
	for (unsigned i = 0; i < l->ntaps && i < FARE_LEG_TAPS_MAX; i++) {
		struct st_tap_meta meta;
		uint8_t rec[ST_RECORD_BYTES_MAX];
		struct fp_tap t;
		int rc = bd->reader ? st_reader_get(bd->reader, l->tap_seq[i], &meta, rec) : ST_ERR_IO;
		int bad = rc == 0 ? fp_tap_stored(&meta, rec, &t) : 0;
		if (rc != 0 || bad != 0) {
			snprintf(bd->err, bd->err_len, "the gateway's log: seq %llu, tap of leg %u of %u epurse:%u:%llu: %s",
				 (unsigned long long)l->tap_seq[i], l->leg_no, l->day, l->issuer,
				 (unsigned long long)l->token_id, rc ? st_strerror(rc) : fp_tap_stored_text(bad));
			return SETTLE_ERR_STORE;
		}
		*deducted += t.amount_fen;
		*last = t;
	}
	return 0;
}

static int on_leg(void *arg, const struct fare_leg *l, const struct fare_feed *f)
{
	struct builder *bd = arg;
	if (l->run <= bd->rd.run_lo || l->run > bd->rd.run_hi)
		return 0;
	bd->rd.legs++;
	/* rider's share */
	if (l->medium == FARE_EPURSE) {
		flush_agg(bd);
		struct writer *w = bd->issuer_w && bd->issuer == l->issuer ? bd->issuer_w : NULL;
		if (!w) {
			char party[PARTY_MAX];
			snprintf(party, sizeof(party), "issuer-%u", l->issuer);
			w = bd->issuer_w = writer_for(bd, W_ISSUER, party);
			bd->issuer = l->issuer;
		}
		if (!w)
			return bd->rc ? bd->rc : SETTLE_ERR_NOMEM;
		batch_item(&w->b, l->rider_fen, l->token_id);
		if (!bd->dry) {
			struct fp_tap t = {0};
			uint64_t deducted;
			int rc = epurse_detail(bd, l, &t, &deducted);
			if (rc != 0)
				return rc;
			const struct fp_epurse *e = &t.u.epurse;
			struct line ln = {.n = 0};
			ln_str(&ln, "D,");
			ln_u64(&ln, w->b.items);
			ln_chr(&ln, ',');
			ln_u64(&ln, l->token_id);
			ln_chr(&ln, ',');
			ln_u64(&ln, l->rev);
			ln_chr(&ln, ',');
			ln_u64(&ln, l->leg_no);
			ln_chr(&ln, ',');
			ln_u64(&ln, l->ntaps);
			ln_chr(&ln, ',');
			ln_utc(&ln, t.tap_time_us);
			ln_chr(&ln, ',');
			ln_u64(&ln, e->ctc);
			ln_chr(&ln, ',');
			ln_hex(&ln, e->tac, 8);
			ln_chr(&ln, ',');
			for (int i = 0; i < 6; i++)
				ln_hex(&ln, e->psam_id[i], 2);
			ln_chr(&ln, ',');
			ln_u64(&ln, e->psam_serial);
			ln_chr(&ln, ',');
			ln_u64(&ln, l->rev == 0 ? deducted : 0);
			ln_chr(&ln, ',');
			ln_i64(&ln, l->rider_fen);
			ln_chr(&ln, ',');
			ln_u64(&ln, absv(l->rider_fen));
			ln_chr(&ln, ',');
			ln_chr(&ln, dc(l->rider_fen));
			ln_chr(&ln, '\n');
			out_line(&w->o, &ln);
		}
	} else {
		struct agg *a = &bd->agg;
		if (a->active && (a->medium != l->medium || a->token != l->token_id))
			flush_agg(bd);
		if (!a->active)
			*a = (struct agg){.active = true, .medium = l->medium, .token = l->token_id,
					  .first_us = l->start_us, .last_us = l->end_us};
		a->legs++;
		a->amount += l->rider_fen;
		a->first_us = l->start_us < a->first_us ? l->start_us : a->first_us;
		a->last_us = l->end_us > a->last_us ? l->end_us : a->last_us;
	}
	/* funders' shares */
	for (int k = 0; k < 2; k++) {
		int32_t amount = k == 0 ? l->promotion_funder_fen : l->subsidy_funder_fen;
		if (!amount)
			continue;
		const char *funder = k == 0 ? fare_feed_promotion_funder(f, l->promotion_idx)
					    : fare_feed_subsidy_funder(f, l->subsidy_idx);
		const char *scheme = k == 0 ? fare_feed_promotion_id(f, l->promotion_idx)
					    : fare_feed_subsidy_id(f, l->subsidy_idx);
		struct writer *w = bd->funder_w[k] && bd->funder[k] == funder ? bd->funder_w[k] : NULL;
		if (!w) { /* names are the feed's strings: the same funder, the same pointer */
			char party[PARTY_MAX];
			snprintf(party, sizeof(party), "funder-%s", funder);
			w = bd->funder_w[k] = writer_for(bd, W_FUNDER, party);
			bd->funder[k] = funder;
		}
		if (!w)
			return bd->rc ? bd->rc : SETTLE_ERR_NOMEM;
		batch_item(&w->b, amount, l->token_id);
		if (!bd->dry) {
			struct line ln = {.n = 0};
			ln_str(&ln, "D,");
			ln_u64(&ln, w->b.items);
			ln_chr(&ln, ',');
			ln_token(&ln, l->medium, l->issuer, l->token_id);
			ln_chr(&ln, ',');
			ln_u64(&ln, l->rev);
			ln_chr(&ln, ',');
			ln_u64(&ln, l->leg_no);
			ln_chr(&ln, ',');
			ln_str(&ln, k == 0 ? "promotion," : "subsidy,");
			ln_str(&ln, scheme);
			ln_chr(&ln, ',');
			ln_u64(&ln, absv(amount));
			ln_chr(&ln, ',');
			ln_chr(&ln, dc(amount));
			ln_chr(&ln, '\n');
			out_line(&w->o, &ln);
		}
	}
	/* the operator's receivable */
	struct op_sum *s = op_of(bd, l->operator_id);
	if (!s) {
		snprintf(bd->err, bd->err_len, "more than %u operators in one round", SETTLE_OPERATORS_MAX);
		return SETTLE_ERR_INVALID;
	}
	if (!settle_operator(bd->c->parties, l->operator_id)) {
		snprintf(bd->err, bd->err_len, "%s: no [operator %u] section, and operator %u has legs on %u",
			 bd->c->parties_path, l->operator_id, l->operator_id, l->day);
		return SETTLE_ERR_PARTY;
	}
	s->taps += l->rev == 0 ? l->ntaps : 0;
	s->legs++;
	s->gross += l->nominal;
	s->concession += l->concession;
	s->transfer += l->transfer;
	s->cap += l->cap;
	s->promotion += l->promotion;
	s->subsidy += l->subsidy;
	s->net += l->operator_fen;
	if (!s->tides) {
		char party[PARTY_MAX];
		snprintf(party, sizeof(party), "operator-%u", l->operator_id);
		if (!(s->tides = writer_for(bd, W_TIDES, party)))
			return bd->rc ? bd->rc : SETTLE_ERR_NOMEM;
	}
	batch_item(&s->tides->b, -(int64_t)l->operator_fen, l->token_id); /* the operator is paid: a credit */
	if (!bd->dry) {
		const char *action = l->flags & FARE_LEG_PURCHASE ? "Purchase"
				     : l->rev > 0		  ? "Adjust"
				     : l->ntaps == 2		  ? "Exit"
								  : "Enter";
		struct line ln = {.n = 0};
		/* transaction_id: the leg's identity (the log sequence of its first tap) and its revision */
		ln_u64(&ln, l->first_seq);
		ln_chr(&ln, '-');
		ln_u64(&ln, l->rev);
		ln_chr(&ln, ',');
		ln_str(&ln, bd->service_date);
		ln_chr(&ln, ',');
		ln_utc(&ln, l->end_us);
		ln_chr(&ln, ',');
		ln_yuan(&ln, l->operator_fen);
		ln_str(&ln, ",CNY,");
		ln_str(&ln, action);
		ln_chr(&ln, ',');
		ln_u64(&ln, l->ntaps == 2 ? l->to_stop : l->from_stop);
		ln_chr(&ln, ',');
		ln_str(&ln, tides_media[l->medium <= 3 ? l->medium : 0]);
		ln_chr(&ln, ',');
		ln_str(&ln, category_names[l->category & 3]);
		ln_chr(&ln, ',');
		ln_str(&ln, l->product == FARE_NONE ? "" : fare_feed_product_id(f, l->product));
		ln_str(&ln, l->cap ? ",true," : ",false,");
		ln_token(&ln, l->medium, l->issuer, l->token_id);
		ln_chr(&ln, '\n');
		out_line(&s->tides->o, &ln);
	}
	return bd->rc;
}

static int cmp_op(const void *a, const void *b)
{
	const struct op_sum *x = a, *y = b;
	return (int)x->op - (int)y->op;
}

/* After the pass: summaries, the payout batch, trailers. */
static int finish(struct builder *bd)
{
	flush_agg(bd);
	if (bd->rc)
		return bd->rc;
	qsort(bd->ops, bd->nops, sizeof(bd->ops[0]), cmp_op);
	struct pain001_tx tx[SETTLE_OPERATORS_MAX];
	unsigned ntx = 0;
	for (unsigned i = 0; i < bd->nops; i++) {
		struct op_sum *s = &bd->ops[i];
		const struct settle_party *p = settle_operator(bd->c->parties, s->op);
		if (s->net <= 0)
			continue; /* nothing to pay (an adjustment that takes back): in the summary as owed */
		struct pain001_tx *t = &tx[ntx++];
		memset(t, 0, sizeof(*t));
		t->creditor = p;
		t->amount_fen = s->net;
		snprintf(t->end_to_end_id, sizeof(t->end_to_end_id), "TG%u%02uOP%u", bd->rd.day, bd->rd.round, s->op);
		snprintf(t->remittance, sizeof(t->remittance), "tapgate fares %u round %u operator %u", bd->rd.day,
			 bd->rd.round, s->op);
	}
	if (ntx > 0) {
		char party[PARTY_MAX];
		snprintf(party, sizeof(party), "payout-%s", bd->c->parties->payout_bank);
		struct writer *w = writer_for(bd, W_PAYOUT, party);
		if (!w)
			return bd->rc ? bd->rc : SETTLE_ERR_NOMEM;
		for (unsigned i = 0; i < ntx; i++)
			batch_item(&w->b, -tx[i].amount_fen, 0);
		if (!bd->dry) {
			struct pain001 msg = {.created_us = bd->rd.created_us, .debtor = &bd->c->parties->clearing,
					      .tx = tx, .n = ntx};
			snprintf(msg.msg_id, sizeof(msg.msg_id), "TG%u%02uPAYOUT", bd->rd.day, bd->rd.round);
			msg.exec_date = settle_day_add(bd->rd.day, 1);
			int rc = pain001_write(&w->o, &msg, bd->err, bd->err_len);
			if (rc != 0)
				return rc;
		}
	}
	if (bd->dry)
		return 0;
	/* trailers; operator summaries beside their TIDES files */
	for (unsigned i = 0; i < bd->nw; i++) {
		struct writer *w = bd->w[i];
		if (w->kind != W_TIDES && w->kind != W_PAYOUT)
			out_printf(&w->o, "T,%llu,%llu,%llu,%llu\n", (unsigned long long)w->b.items,
				   (unsigned long long)w->b.debit_fen, (unsigned long long)w->b.credit_fen,
				   (unsigned long long)w->b.hash_total);
	}
	for (unsigned i = 0; i < bd->nops; i++) {
		const struct op_sum *s = &bd->ops[i];
		struct out_file o;
		char party[PARTY_MAX], name[FILE_NAME_MAX], id[BATCH_ID_MAX];
		uint8_t sha[32];
		snprintf(party, sizeof(party), "operator-%u", s->op);
		batch_id(id, sizeof(id), bd->rd.day, bd->rd.round, party);
		snprintf(name, sizeof(name), "%s-summary.csv", id);
		int rc = out_open(&o, bd->c->outbox, party, name, bd->err, bd->err_len);
		if (rc != 0)
			return rc;
		out_printf(&o, "operator,business_day,round,taps,legs,gross_fen,concession_fen,transfer_fen,cap_fen,"
			       "promotion_fen,subsidy_fen,net_receivable_fen,paid_fen,owed_fen\n");
		out_printf(&o, "%u,%u,%u,%llu,%llu,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld\n", s->op, bd->rd.day,
			   bd->rd.round, (unsigned long long)s->taps, (unsigned long long)s->legs, (long long)s->gross,
			   (long long)s->concession, (long long)s->transfer, (long long)s->cap, (long long)-s->promotion,
			   (long long)-s->subsidy, (long long)s->net, (long long)(s->net > 0 ? s->net : 0),
			   (long long)(s->net < 0 ? -s->net : 0));
		if ((rc = out_commit(&o, sha, bd->err, bd->err_len)) != 0)
			return rc;
	}
	for (unsigned i = 0; i < bd->nw; i++) {
		int rc = out_commit(&bd->w[i]->o, bd->w[i]->b.sha256, bd->err, bd->err_len);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static void builder_free(struct builder *bd)
{
	for (unsigned i = 0; i < bd->nw; i++) {
		if (bd->w[i]->o.f)
			out_abort(&bd->w[i]->o);
		free(bd->w[i]);
	}
	free(bd->w);
}

static int cmp_writer(const void *a, const void *b)
{
	const struct writer *x = *(struct writer *const *)a, *y = *(struct writer *const *)b;
	return strcmp(x->b.id, y->b.id);
}

/*
 * Build the batches of round rd (its legs: rating runs rd->run_lo+1 ..
 * rd->run_hi); dry: compute only. On success *out holds the batches (sorted
 * by id, caller frees) and rd->legs the legs counted.
 */
int settle_build_round(struct settle_ctx *c, struct round *rd, bool dry, struct batch **out, unsigned *nout,
		       char *err, size_t err_len)
{
	struct builder *bd = calloc(1, sizeof(*bd));
	if (!bd)
		return SETTLE_ERR_NOMEM;
	bd->c = c;
	bd->rd = *rd;
	bd->rd.legs = 0;
	bd->dry = dry;
	snprintf(bd->service_date, sizeof(bd->service_date), "%04u-%02u-%02u", rd->day / 10000, rd->day / 100 % 100,
		 rd->day % 100);
	bd->err = err;
	bd->err_len = err_len;
	struct fare_query q = {.day = rd->day};
	char ferr[FARE_ERR_MAX];
	int rc = dry ? 0 : st_reader_open(c->log, &bd->reader);
	if (rc != 0) {
		free(bd);
		snprintf(err, err_len, "the gateway's log: %s", st_strerror(rc));
		return SETTLE_ERR_STORE;
	}
	rc = fare_legs_each(c->rated, &q, on_leg, bd, ferr, sizeof(ferr));
	st_reader_close(bd->reader);
	bd->reader = NULL;
	if (rc < 0 && rc > -500) { /* a fare error */
		snprintf(err, err_len, "rated store: %s", ferr);
		rc = SETTLE_ERR_STORE;
	}
	if (rc == 0)
		rc = finish(bd);
	if (rc == 0) {
		qsort(bd->w, bd->nw, sizeof(*bd->w), cmp_writer);
		*out = calloc(bd->nw + 1, sizeof(**out));
		if (!*out)
			rc = SETTLE_ERR_NOMEM;
		for (unsigned i = 0; i < bd->nw && rc == 0; i++)
			(*out)[i] = bd->w[i]->b;
		*nout = bd->nw;
		rd->legs = bd->rd.legs;
	}
	builder_free(bd);
	free(bd);
	return rc;
}
