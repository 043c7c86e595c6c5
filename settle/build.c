/*
 * build.c - the legs of a round become batches and their files.
 *
 * One pass over the day's legs in key order (day, medium, issuer, token,
 * revision, leg), keeping those of the round's rating runs:
 *   - QuickPass and e-SSC QR legs: one aggregated charge per token (the
 *     rider's share of its legs) to the acquirer / the QR platform;
 *   - e-purse legs: one clearing item per leg to the card's issuer city,
 *     with the CTC, TAC and PSAM of its last tap (read from the tap log);
 *   - promotion and subsidy shares: one item per leg to the funder;
 *   - every leg: a TIDES fare_transactions row and the totals of its
 *     operator; funders and operators see the rider as a pseudonym
 *     (pseudonym.c), never the token; after the pass, the operators' net receivables become one
 *     pain.001 credit transfer per operator to the payout bank.
 * Items are written in that key order, so a round's files depend only on
 * its legs and its creation time, both fixed before the first file is
 * written: a crashed round is redone into the same bytes.
 */
#include "settle/pain001.h"

#include "base/assert.h"

#include "fare/fare.h"
#include "proto/proto.h"
#include "store/store.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>


enum writer_kind { W_CHARGE, W_ISSUER, W_FUNDER, W_TIDES, W_PAYOUT };

struct writer {
	enum writer_kind kind;
	struct batch b;
	uint64_t rows;    /* item rows written: b.items again, counted on the way to the file */
	int64_t rows_fen; /* their signed amounts: b.debit_fen - b.credit_fen again */
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
	struct settle_writer writer; /* this close's writer thread (not started when dry) */
	struct writer **w;
	unsigned nw;
	size_t capw;
	struct agg agg;
	uint64_t charge_legs; /* legs aggregated into charges */
	struct op_sum ops[SETTLE_OPERATORS_MAX];
	unsigned nops;
	char service_date[16]; /* the day as TIDES writes it, YYYY-MM-DD */
	struct st_reader *reader; /* the tap log, for e-purse tap details */
	struct writer *issuer_w, *funder_w[2]; /* the last ones used, and whose */
	uint32_t issuer;
	const char *funder[2];
	struct settle_pseudonym pseudonyms; /* the settlement secret's key schedule */
	uint64_t rider;                     /* the current leg's rider, as funders and operators see it */
	struct settle_writeoffs writeoffs; /* the day's: their legs' revisions are held out */
	struct held_legs *held;            /* what the round holds out (NULL: not wanted) */
	uint64_t held_legs;
	char currency[8];       /* the round's ISO 4217 currency: its legs' feeds' */
	unsigned minor_units;   /* its minor units: the decimals of every amount written in units */
	uint64_t currency_version; /* the feed version that set it (for the message when another differs) */
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

static void write_tides_header(struct out_file *o);

/* The writer of a party in this round, opened (header written) on first use. */
static struct writer *writer_for(struct builder *bd, enum writer_kind kind, const char *party)
{
	for (unsigned i = bd->nw; i-- > 0;)
		if (bd->w[i]->kind == kind && strcmp(bd->w[i]->b.party, party) == 0)
			return bd->w[i];
	if (settle_array_room(&bd->w, &bd->capw, bd->nw, sizeof(*bd->w), 16) != 0)
		return NULL;
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
	if ((bd->rc = settle_out_open(&w->o, &bd->writer, bd->c->outbox, party, w->b.file, bd->err, bd->err_len)) != 0)
		return NULL;
	if (kind == W_PAYOUT)
		return w; /* pain.001: written whole by finish() */
	char created[32];
	settle_utc_text(bd->rd.created_us, created);
	if (kind == W_TIDES) {
		write_tides_header(&w->o);
	} else {
		settle_out_printf(&w->o, "H,%s,%s,%s,%u,%u,%s\n", w->b.id, created, party, bd->rd.day, bd->rd.round,
				  bd->currency);
	}
	return w;
}

/*
 * The file layouts, as column tables: each item line is its columns in the
 * table's order, comma separated (docs/SETTLEMENT.md section 4). A row holds
 * what any column may need; write_row puts the columns of one layout.
 */
enum column {
	COL_D,               /* the record type of an item: "D" */
	COL_ITEM_NO,         /* the item's number in its batch, from 1 */
	COL_TOKEN,           /* the account token (or card number) as a number */
	COL_RIDER,           /* the rider's pseudonym (pseudonym.c): 16 hex digits, never the token */
	COL_LEGS,            /* the legs a charge aggregates */
	COL_FIRST_TAP,       /* the charge's first leg's start, UTC */
	COL_LAST_TAP,        /* the charge's last leg's end, UTC */
	COL_REV,             /* the leg's revision (0: as first rated) */
	COL_LEG,             /* the leg's number in its token's day */
	COL_TAPS,            /* the leg's taps */
	COL_TAP_TIME,        /* an e-purse leg's last tap, UTC */
	COL_CTC,             /* ... its card transaction counter */
	COL_TAC,             /* ... its TAC, 8 hex digits */
	COL_PSAM_ID,         /* ... its PSAM id, 12 hex digits */
	COL_PSAM_SERIAL,     /* ... its PSAM serial */
	COL_DEDUCTED_FEN,    /* what the validators deducted for the leg's taps (revision 0 only) */
	COL_RATED_FEN,       /* the rider's rated share, signed */
	COL_SHARE,           /* a funder's share: promotion or subsidy */
	COL_SCHEME_ID,       /* ... and the scheme's id in the feed */
	COL_AMOUNT_FEN,      /* the item's amount, never negative */
	COL_DC,              /* D: the counterparty pays; C: it is paid */
	COL_TRANSACTION_ID,  /* TIDES: SEQ-REV, the log sequence of the leg's first tap and the revision */
	COL_SERVICE_DATE,    /* TIDES: the business day, YYYY-MM-DD */
	COL_EVENT_TIMESTAMP, /* TIDES: the leg's end, UTC */
	COL_AMOUNT_UNITS,    /* TIDES: the operator's share in the currency's units (yuan), to its minor unit */
	COL_CURRENCY,        /* TIDES: the round's ISO 4217 currency */
	COL_FARE_ACTION,     /* TIDES: Purchase, Adjust, Exit, Enter */
	COL_STOP_ID,         /* TIDES: the exit stop of a journey, else the boarding stop */
	COL_FARE_MEDIA,      /* TIDES: the medium's fare_media_id */
	COL_RIDER_CATEGORY,  /* TIDES: adult, senior, student, disabled */
	COL_FARE_PRODUCT,    /* TIDES: the feed's product id, or empty */
	COL_FARE_CAPPED,     /* TIDES: true when a cap took part of the fare */
	COL_NUM_RIDERS,      /* TIDES: 1, a leg is one rider's */
	COL_EMPTY,           /* TIDES: a field of the table we have no value for (a missing value) */
};

static const enum column charge_columns[] = {COL_D, COL_ITEM_NO, COL_TOKEN, COL_LEGS, COL_FIRST_TAP, COL_LAST_TAP,
					     COL_AMOUNT_FEN, COL_DC};
static const enum column issuer_columns[] = {COL_D, COL_ITEM_NO, COL_TOKEN, COL_REV, COL_LEG, COL_TAPS, COL_TAP_TIME,
					     COL_CTC, COL_TAC, COL_PSAM_ID, COL_PSAM_SERIAL, COL_DEDUCTED_FEN,
					     COL_RATED_FEN, COL_AMOUNT_FEN, COL_DC};
static const enum column funder_columns[] = {COL_D, COL_ITEM_NO, COL_RIDER, COL_REV, COL_LEG, COL_SHARE,
					     COL_SCHEME_ID, COL_AMOUNT_FEN, COL_DC};
/* TIDES v1.0 fare_transactions: every field of the table schema, in its order (tests/tides_check.py checks). */
static const char *const tides_fields[] = {
	"transaction_id", "service_date", "event_timestamp", "location_ping_id", "amount", "currency_type",
	"fare_action", "trip_id_performed", "trip_id_scheduled", "pattern_id", "trip_stop_sequence",
	"scheduled_stop_sequence", "vehicle_id", "device_id", "fare_id", "stop_id", "num_riders", "fare_media_id",
	"rider_category", "fare_product", "fare_period", "fare_capped", "token_id", "balance"};
static const enum column tides_columns[] = {
	COL_TRANSACTION_ID, COL_SERVICE_DATE, COL_EVENT_TIMESTAMP, COL_EMPTY, COL_AMOUNT_UNITS, COL_CURRENCY,
	COL_FARE_ACTION, COL_EMPTY, COL_EMPTY, COL_EMPTY, COL_EMPTY,
	COL_EMPTY, COL_EMPTY, COL_EMPTY, COL_EMPTY, COL_STOP_ID, COL_NUM_RIDERS, COL_FARE_MEDIA,
	COL_RIDER_CATEGORY, COL_FARE_PRODUCT, COL_EMPTY, COL_FARE_CAPPED, COL_RIDER, COL_EMPTY};
#define COLUMNS(t) (t), sizeof(t) / sizeof((t)[0])
static_assert(sizeof(tides_fields) / sizeof(tides_fields[0]) == sizeof(tides_columns) / sizeof(tides_columns[0]),
	      "a column for every TIDES field");

struct row {
	const struct builder *bd;
	const struct fare_leg *l;   /* NULL for a charge */
	const struct agg *a;        /* a charge: the token's aggregate */
	const struct fp_tap *tap;   /* an e-purse leg's last tap */
	uint64_t item_no, deducted_fen;
	int64_t amount;             /* the item's amount, signed: > 0 the counterparty pays */
	const char *share, *scheme; /* a funder's item */
	const struct fare_feed *f;
};

static char dc(int64_t amount)
{
	return amount >= 0 ? 'D' : 'C';
}

static uint64_t absv(int64_t v)
{
	return v < 0 ? (uint64_t)-v : (uint64_t)v;
}

static void write_tides_header(struct out_file *o)
{
	TG_ASSERT(tides_columns[SETTLE_TIDES_CURRENCY_FIELD] == COL_CURRENCY); /* where reconcile reads it */
	struct settle_line ln = {.n = 0};
	for (size_t i = 0; i < sizeof(tides_fields) / sizeof(tides_fields[0]); i++) {
		if (i > 0)
			settle_line_chr(&ln, ',');
		settle_line_str(&ln, tides_fields[i]);
	}
	settle_line_chr(&ln, '\n');
	settle_out_line(o, &ln);
}

static const char *fare_action(const struct fare_leg *l)
{
	return l->flags & FARE_LEG_PURCHASE ? "Purchase" : l->rev > 0 ? "Adjust" : l->ntaps == 2 ? "Exit" : "Enter";
}

/* One column of a row. */
static void put_column(struct settle_line *ln, enum column col, const struct row *r)
{
	const struct fare_leg *l = r->l;
	switch (col) {
	case COL_D: settle_line_chr(ln, 'D'); break;
	case COL_ITEM_NO: settle_line_u64(ln, r->item_no); break;
	case COL_TOKEN: settle_line_u64(ln, l ? l->token_id : r->a->token); break;
	case COL_RIDER: settle_line_hex(ln, r->bd->rider, SETTLE_PSEUDONYM_HEX); break;
	case COL_LEGS: settle_line_u64(ln, r->a->legs); break;
	case COL_FIRST_TAP: settle_line_utc(ln, r->a->first_us); break;
	case COL_LAST_TAP: settle_line_utc(ln, r->a->last_us); break;
	case COL_REV: settle_line_u64(ln, l->rev); break;
	case COL_LEG: settle_line_u64(ln, l->leg_no); break;
	case COL_TAPS: settle_line_u64(ln, l->ntaps); break;
	case COL_TAP_TIME: settle_line_utc(ln, r->tap->tap_time_us); break;
	case COL_CTC: settle_line_u64(ln, r->tap->u.epurse.ctc); break;
	case COL_TAC: settle_line_hex(ln, r->tap->u.epurse.tac, 8); break;
	case COL_PSAM_ID:
		for (int i = 0; i < 6; i++)
			settle_line_hex(ln, r->tap->u.epurse.psam_id[i], 2);
		break;
	case COL_PSAM_SERIAL: settle_line_u64(ln, r->tap->u.epurse.psam_serial); break;
	case COL_DEDUCTED_FEN: settle_line_u64(ln, l->rev == 0 ? r->deducted_fen : 0); break;
	case COL_RATED_FEN: settle_line_i64(ln, r->amount); break;
	case COL_SHARE: settle_line_str(ln, r->share); break;
	case COL_SCHEME_ID: settle_line_str(ln, r->scheme); break;
	case COL_AMOUNT_FEN: settle_line_u64(ln, absv(r->amount)); break;
	case COL_DC: settle_line_chr(ln, dc(r->amount)); break;
	case COL_TRANSACTION_ID:
		settle_line_u64(ln, l->first_seq);
		settle_line_chr(ln, '-');
		settle_line_u64(ln, l->rev);
		break;
	case COL_SERVICE_DATE: settle_line_str(ln, r->bd->service_date); break;
	case COL_EVENT_TIMESTAMP: settle_line_utc(ln, l->end_us); break;
	case COL_AMOUNT_UNITS: settle_line_units(ln, l->operator_fen, r->bd->minor_units); break;
	case COL_CURRENCY: settle_line_str(ln, r->bd->currency); break;
	case COL_FARE_ACTION: settle_line_str(ln, fare_action(l)); break;
	case COL_STOP_ID: settle_line_u64(ln, l->ntaps == 2 ? l->to_stop : l->from_stop); break;
	case COL_FARE_MEDIA: settle_line_str(ln, tides_media[l->medium <= 3 ? l->medium : 0]); break;
	case COL_RIDER_CATEGORY: settle_line_str(ln, category_names[l->category & 3]); break;
	case COL_FARE_PRODUCT: settle_line_str(ln, l->product == FARE_NONE ? "" : fare_feed_product_id(r->f, l->product)); break;
	case COL_FARE_CAPPED: settle_line_str(ln, l->cap ? "true" : "false"); break;
	case COL_NUM_RIDERS: settle_line_chr(ln, '1'); break;
	case COL_EMPTY: break;
	}
}

/* A row as one line of w's file: its columns in the layout's order, comma separated. */
static void write_row(struct writer *w, const enum column *cols, size_t ncols, const struct row *r)
{
	w->rows++;
	w->rows_fen += r->amount;
	struct settle_line ln = {.n = 0};
	for (size_t i = 0; i < ncols; i++) {
		if (i > 0)
			settle_line_chr(&ln, ',');
		put_column(&ln, cols[i], r);
	}
	settle_line_chr(&ln, '\n');
	settle_out_line(&w->o, &ln);
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
		struct row r = {.bd = bd, .a = a, .item_no = w->b.items, .amount = a->amount};
		write_row(w, COLUMNS(charge_columns), &r);
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

/* An e-purse leg: one clearing item to the card's issuer city, with its last tap's details. */
static int issuer_item(struct builder *bd, const struct fare_leg *l, const struct fare_feed *f)
{
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
	if (bd->dry)
		return 0;
	struct fp_tap t = {0};
	struct row r = {.bd = bd, .l = l, .f = f, .tap = &t, .item_no = w->b.items, .amount = l->rider_fen};
	int rc = epurse_detail(bd, l, &t, &r.deducted_fen);
	if (rc == 0)
		write_row(w, COLUMNS(issuer_columns), &r);
	return rc;
}

/* A QuickPass or QR leg: added to its token's charge (one item per token, written when the token ends). */
static void charge_add(struct builder *bd, const struct fare_leg *l)
{
	struct agg *a = &bd->agg;
	if (a->active && (a->medium != l->medium || a->token != l->token_id))
		flush_agg(bd);
	if (!a->active)
		*a = (struct agg){.active = true, .medium = l->medium, .token = l->token_id, .first_us = l->start_us,
				  .last_us = l->end_us};
	a->legs++;
	bd->charge_legs++;
	a->amount += l->rider_fen;
	a->first_us = l->start_us < a->first_us ? l->start_us : a->first_us;
	a->last_us = l->end_us > a->last_us ? l->end_us : a->last_us;
}

/* The promotion (k 0) or subsidy (k 1) share of a leg: one item to its funder. */
static int funder_item(struct builder *bd, const struct fare_leg *l, const struct fare_feed *f, int k)
{
	int32_t amount = k == 0 ? l->promotion_funder_fen : l->subsidy_funder_fen;
	if (!amount)
		return 0;
	const char *funder = k == 0 ? fare_feed_promotion_funder(f, l->promotion_idx)
				    : fare_feed_subsidy_funder(f, l->subsidy_idx);
	struct writer *w = bd->funder_w[k] && bd->funder[k] == funder ? bd->funder_w[k] : NULL;
	if (!w) { /* names are the feed's strings: the same funder, the same pointer */
		char party[PARTY_MAX];
		snprintf(party, sizeof(party), "funder-%s", funder);
		w = bd->funder_w[k] = writer_for(bd, W_FUNDER, party);
		bd->funder[k] = funder;
	}
	if (!w)
		return bd->rc ? bd->rc : SETTLE_ERR_NOMEM;
	batch_item(&w->b, amount, bd->rider); /* the funder's file names the rider by pseudonym */
	if (!bd->dry) {
		struct row r = {.bd = bd, .l = l, .f = f, .item_no = w->b.items, .amount = amount,
				.share = k == 0 ? "promotion" : "subsidy",
				.scheme = k == 0 ? fare_feed_promotion_id(f, l->promotion_idx)
						 : fare_feed_subsidy_id(f, l->subsidy_idx)};
		write_row(w, COLUMNS(funder_columns), &r);
	}
	return 0;
}

/* The operator's receivable: its totals, and a TIDES row. */
static int operator_item(struct builder *bd, const struct fare_leg *l, const struct fare_feed *f)
{
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
	batch_item(&s->tides->b, -(int64_t)l->operator_fen, bd->rider); /* the operator is paid: a credit */
	if (!bd->dry) {
		struct row r = {.bd = bd, .l = l, .f = f, .amount = -(int64_t)l->operator_fen};
		write_row(s->tides, COLUMNS(tides_columns), &r);
	}
	return 0;
}

/*
 * What a leg's payers pay equals what its receivers get: the rider's share
 * and the funders' shares are the operator's. A leg that breaks it was
 * rated wrong (fare/), and no file may carry it.
 */
static void leg_conserved(const struct fare_leg *l)
{
	TG_ASSERT((int64_t)l->rider_fen + l->promotion_funder_fen + l->subsidy_funder_fen == (int64_t)l->operator_fen);
}

/*
 * The round's currency is its day's legs' feeds': one per day (the files
 * carry one, and adjustments are settled with the legs they adjust), so a
 * leg of the day rated by a feed of another currency stops the round. A feed
 * with no fare product states none; its legs (purchases only) are taken as
 * CNY, 2 minor units, the demo network's. Returns 0 or SETTLE_ERR_INVALID.
 */
static int round_currency(struct builder *bd, const struct fare_leg *l, const struct fare_feed *f)
{
	unsigned minor = 2;
	const char *cur = fare_feed_currency(f, &minor);
	if (!cur[0])
		cur = "CNY", minor = 2;
	if (!bd->currency[0]) {
		snprintf(bd->currency, sizeof(bd->currency), "%s", cur);
		bd->minor_units = minor;
		bd->currency_version = l->version;
		return 0;
	}
	if (strcmp(bd->currency, cur) == 0)
		return 0;
	snprintf(bd->err, bd->err_len,
		 "day %u round %u would mix currencies: %s (feed version %016llx) and %s (feed version %016llx, "
		 "leg %llu r%u); a day is settled in one currency",
		 bd->rd.day, bd->rd.round, bd->currency, (unsigned long long)bd->currency_version, cur,
		 (unsigned long long)l->version, (unsigned long long)l->first_seq, l->rev);
	return SETTLE_ERR_INVALID;
}

/* One leg of the day (fare_legs_each): those of the round's rating runs become items, unless held out. */
static int on_leg(void *arg, const struct fare_leg *l, const struct fare_feed *f)
{
	struct builder *bd = arg;
	/* every leg of the day, in or out of the round: the day is settled in one currency (reconciliation's
	   dry build goes on: it reports a second currency as a mismatch) */
	int rc = round_currency(bd, l, f);
	if (rc != 0 && !bd->dry)
		return rc;
	if (l->run <= bd->rd.run_lo || l->run > bd->rd.run_hi)
		return 0;
	enum settle_hold hold = settle_leg_hold(&bd->writeoffs, l, bd->rd.round);
	if (hold != SETTLE_HOLD_NONE) { /* unrated, or written off: in no batch (section 2.1) */
		bd->held_legs++;
		return settle_held_add(bd->held, l, hold);
	}
	if (!bd->dry) /* a dry build is reconciliation's: it reports a broken leg instead */
		leg_conserved(l);
	bd->rd.legs++;
	bd->rider = settle_pseudonym(&bd->pseudonyms, l->medium, l->issuer, l->token_id);
	if (l->medium == FARE_EPURSE) {
		flush_agg(bd);
		rc = issuer_item(bd, l, f);
	} else {
		charge_add(bd, l);
	}
	for (int k = 0; k < 2 && rc == 0; k++)
		rc = funder_item(bd, l, f, k);
	if (rc == 0)
		rc = operator_item(bd, l, f);
	return rc ? rc : bd->rc;
}

static int currency_of_leg(void *arg, const struct fare_leg *l, const struct fare_feed *f)
{
	return round_currency(arg, l, f);
}

int settle_day_currency(struct settle_ctx *c, const struct round *rd, char *err, size_t err_len)
{
	struct builder *bd = calloc(1, sizeof(*bd));
	if (!bd)
		return SETTLE_ERR_NOMEM;
	*bd = (struct builder){.c = c, .rd = *rd, .err = err, .err_len = err_len};
	struct fare_query q = {.day = rd->day};
	char ferr[FARE_ERR_MAX];
	int rc = fare_legs_each(c->rated, &q, currency_of_leg, bd, ferr, sizeof(ferr));
	if (rc < 0 && rc > -500) { /* a fare error */
		snprintf(err, err_len, "rated store: %s", ferr);
		rc = SETTLE_ERR_STORE;
	}
	free(bd);
	return rc;
}

static int cmp_op(const void *a, const void *b)
{
	const struct op_sum *x = a, *y = b;
	return (int)x->op - (int)y->op;
}

/* The payout batch: one pain.001 credit transfer per operator with a positive net receivable. */
static int write_payout(struct builder *bd)
{
	struct pain001_tx tx[SETTLE_OPERATORS_MAX];
	unsigned ntx = 0;
	for (unsigned i = 0; i < bd->nops; i++) {
		struct op_sum *s = &bd->ops[i];
		if (s->net <= 0)
			continue; /* nothing to pay (an adjustment that takes back): in the summary as owed */
		struct pain001_tx *t = &tx[ntx++];
		memset(t, 0, sizeof(*t));
		t->creditor = settle_operator(bd->c->parties, s->op);
		t->amount_fen = s->net;
		snprintf(t->end_to_end_id, sizeof(t->end_to_end_id), "TG%u%02uOP%u", bd->rd.day, bd->rd.round, s->op);
		snprintf(t->remittance, sizeof(t->remittance), "tapgate fares %u round %u operator %u", bd->rd.day,
			 bd->rd.round, s->op);
	}
	if (ntx == 0)
		return 0;
	char party[PARTY_MAX];
	snprintf(party, sizeof(party), "payout-%s", bd->c->parties->payout_bank);
	struct writer *w = writer_for(bd, W_PAYOUT, party);
	if (!w)
		return bd->rc ? bd->rc : SETTLE_ERR_NOMEM;
	for (unsigned i = 0; i < ntx; i++)
		batch_item(&w->b, -tx[i].amount_fen, 0);
	if (bd->dry)
		return 0;
	struct pain001 msg = {.created_us = bd->rd.created_us, .debtor = &bd->c->parties->clearing, .tx = tx, .n = ntx,
			      .currency = bd->currency, .minor_units = bd->minor_units};
	snprintf(msg.msg_id, sizeof(msg.msg_id), "TG%u%02uPAYOUT", bd->rd.day, bd->rd.round);
	msg.exec_date = settle_day_add(bd->rd.day, 1);
	return settle_pain001_write(&w->o, &msg, bd->err, bd->err_len);
}

/*
 * The round's pair checks, after the pass: every leg is one TIDES item and
 * one rider item (an e-purse clearing item, or a leg of a charge); what
 * riders and funders pay (charges, clearing, funders) equals what operators
 * receive (their TIDES items), and the payout pays each positive net; and
 * each batch's rows, counted as they were written, equal its totals.
 */
static void round_conserved(const struct builder *bd)
{
	uint64_t tides_items = 0, issuer_items = 0;
	int64_t paid_fen = 0, tides_fen = 0, payout_fen = 0, nets_fen = 0, positive_nets_fen = 0;
	for (unsigned i = 0; i < bd->nw; i++) {
		const struct writer *w = bd->w[i];
		int64_t net = w->b.debit_fen - w->b.credit_fen;
		tides_items += w->kind == W_TIDES ? w->b.items : 0;
		tides_fen += w->kind == W_TIDES ? net : 0;
		issuer_items += w->kind == W_ISSUER ? w->b.items : 0;
		if (w->kind == W_PAYOUT)
			payout_fen += net;
		else
			paid_fen += net;
		TG_ASSERT(w->kind == W_PAYOUT || (w->rows == w->b.items && w->rows_fen == net));
	}
	for (unsigned i = 0; i < bd->nops; i++) {
		nets_fen += bd->ops[i].net;
		positive_nets_fen += bd->ops[i].net > 0 ? bd->ops[i].net : 0;
	}
	TG_ASSERT(tides_items == bd->rd.legs);
	TG_ASSERT(issuer_items + bd->charge_legs == bd->rd.legs);
	TG_ASSERT(paid_fen == 0); /* riders + funders (debits) - operators (their credits) */
	TG_ASSERT(tides_fen == -nets_fen); /* the operators' summaries are their TIDES items */
	TG_ASSERT(payout_fen == -positive_nets_fen);
}

/* Trailers of the CSV batches (TIDES files have none; pain.001 carries its own totals). */
static void write_trailers(struct builder *bd)
{
	for (unsigned i = 0; i < bd->nw; i++) {
		struct writer *w = bd->w[i];
		if (w->kind != W_TIDES && w->kind != W_PAYOUT)
			settle_out_printf(&w->o, "T,%llu,%llu,%llu,%llu\n", (unsigned long long)w->b.items,
				   (unsigned long long)w->b.debit_fen, (unsigned long long)w->b.credit_fen,
				   (unsigned long long)w->b.hash_total);
	}
}

/* The operators' summaries, beside their TIDES files. */
static int write_summaries(struct builder *bd)
{
	for (unsigned i = 0; i < bd->nops; i++) {
		const struct op_sum *s = &bd->ops[i];
		struct out_file o;
		char party[PARTY_MAX], name[FILE_NAME_MAX], id[BATCH_ID_MAX];
		uint8_t sha[32];
		snprintf(party, sizeof(party), "operator-%u", s->op);
		batch_id(id, sizeof(id), bd->rd.day, bd->rd.round, party);
		snprintf(name, sizeof(name), "%s-summary.csv", id);
		int rc = settle_out_open(&o, &bd->writer, bd->c->outbox, party, name, bd->err, bd->err_len);
		if (rc != 0)
			return rc;
		settle_out_printf(&o, "operator,business_day,round,taps,legs,gross_fen,concession_fen,transfer_fen,cap_fen,"
			       "promotion_fen,subsidy_fen,net_receivable_fen,paid_fen,owed_fen\n");
		settle_out_printf(&o, "%u,%u,%u,%llu,%llu,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld\n", s->op, bd->rd.day,
			   bd->rd.round, (unsigned long long)s->taps, (unsigned long long)s->legs, (long long)s->gross,
			   (long long)s->concession, (long long)s->transfer, (long long)s->cap, (long long)-s->promotion,
			   (long long)-s->subsidy, (long long)s->net, (long long)(s->net > 0 ? s->net : 0),
			   (long long)(s->net < 0 ? -s->net : 0));
		if ((rc = settle_out_commit(&o, sha, bd->err, bd->err_len)) != 0)
			return rc;
	}
	return 0;
}

/* After the pass: the last charge, the payout batch, the pair checks, trailers, summaries, and the files in place. */
static int finish(struct builder *bd)
{
	flush_agg(bd);
	if (bd->rc)
		return bd->rc;
	qsort(bd->ops, bd->nops, sizeof(bd->ops[0]), cmp_op);
	int rc = write_payout(bd);
	if (rc != 0)
		return rc;
	if (bd->dry)
		return 0; /* reconciliation compares what it computes, and reports */
	round_conserved(bd);
	write_trailers(bd);
	if ((rc = write_summaries(bd)) != 0)
		return rc;
	for (unsigned i = 0; i < bd->nw && rc == 0; i++)
		rc = settle_out_commit(&bd->w[i]->o, bd->w[i]->b.sha256, bd->err, bd->err_len);
	return rc;
}

static void builder_free(struct builder *bd)
{
	for (unsigned i = 0; i < bd->nw; i++) {
		if (bd->w[i]->o.f)
			settle_out_abort(&bd->w[i]->o);
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
	struct held_legs held = {0};
	int rc = settle_build_round_held(c, rd, dry, out, nout, &held, err, err_len);
	free(held.v);
	return rc;
}

int settle_build_round_held(struct settle_ctx *c, struct round *rd, bool dry, struct batch **out, unsigned *nout,
			    struct held_legs *held, char *err, size_t err_len)
{
	if (!c->secret) {
		snprintf(err, err_len, "no settlement secret loaded ([settle] secret_file): operators' and funders' files "
			 "name riders by a pseudonym made with it");
		return SETTLE_ERR_CONFIG;
	}
	struct builder *bd = calloc(1, sizeof(*bd));
	if (!bd)
		return SETTLE_ERR_NOMEM;
	settle_pseudonym_init(&bd->pseudonyms, c->secret);
	int rc = settle_writeoffs_load(c->db, rd->day, &bd->writeoffs, err, err_len);
	if (rc != 0) {
		free(bd);
		return rc;
	}
	bd->held = held;
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
	rc = dry ? 0 : st_reader_open(c->log, &bd->reader);
	if (rc != 0) {
		settle_writeoffs_free(&bd->writeoffs);
		free(bd);
		snprintf(err, err_len, "the gateway's log: %s", st_strerror(rc));
		return SETTLE_ERR_STORE;
	}
	if (!dry)
		settle_writer_start(&bd->writer);
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
	builder_free(bd); /* every file committed or aborted: the writer has nothing of them left */
	settle_writeoffs_free(&bd->writeoffs);
	if (!dry)
		settle_writer_stop(&bd->writer);
	free(bd);
	return rc;
}
