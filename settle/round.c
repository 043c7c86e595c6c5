/*
 * round.c - closing a business day in rounds: the round state machine, and
 * what tapsettle status and resend say of it.
 *
 * Closing day D: the rating runs since D's last round (all of them for
 * round 0) make the next round. The round is first recorded as pending
 * (its run range and creation time), then its files are written (build.c),
 * then the round and its batches replace the pending record in one
 * transaction (db.c). A restart finds the pending round and writes it again
 * from the same range and time: the same bytes. Closing again with nothing
 * new writes nothing.
 */
#include "settle/internal.h"

#include "fare/fare.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void progress(const struct settle_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(const struct settle_ctx *c, const char *fmt, ...)
{
	if (c->quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("tapsettle: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static int write_round(struct settle_ctx *c, struct round *rd, struct settle_close_stats *st, char *err,
		       size_t err_len)
{
	struct batch *b = NULL;
	unsigned n = 0;
	struct held_legs held = {0};
	progress(c, "day %u round %u: writing the batches of rating runs %u..%u", rd->day, rd->round, rd->run_lo + 1,
		 rd->run_hi);
	int rc = settle_build_round_held(c, rd, false, &b, &n, &held, err, err_len);
	free(held.v);
	if (rc == 0 && rd->legs == 0 && held.n == 0) {
		/* runs that rated nothing of this day: no round; the pending record goes */
		free(b);
		return settle_pending_drop(c->db, err, err_len);
	}
	if (rc == 0)
		rc = settle_round_put(c->db, rd, b, n, &held.counts, err, err_len);
	if (rc == 0 && st) {
		st->round = rd->round;
		st->new_round = true;
		st->legs = rd->legs;
		st->batches = n;
		st->held_unrated = held.counts.unrated;
		st->held_written_off = held.counts.written_off;
	}
	if (rc == 0)
		progress(c, "day %u round %u: %llu legs in %u batches; held out: %llu unrated, %llu written off", rd->day,
			 rd->round, (unsigned long long)rd->legs, n, (unsigned long long)held.counts.unrated,
			 (unsigned long long)held.counts.written_off);
	free(b);
	return rc;
}

int settle_close(struct settle_ctx *c, uint32_t day, struct settle_close_stats *st, char *err, size_t err_len)
{
	char ferr[FARE_ERR_MAX];
	bool rated, have;
	uint32_t last;
	uint64_t last_at_us;
	struct round pending;
	memset(st, 0, sizeof(*st));
	int rc = settle_pending_get(c->db, &pending, &have, err, err_len);
	if (rc == 0 && have) { /* a round that did not finish: the same range, the same time */
		progress(c, "day %u round %u was interrupted: writing it again", pending.day, pending.round);
		rc = write_round(c, &pending, pending.day == day ? st : NULL, err, err_len);
	}
	if (rc != 0)
		return rc;
	if (fare_db_day_rated(c->rated, day, &rated, ferr, sizeof(ferr)) != 0 ||
	    fare_db_last_run(c->rated, &last, &last_at_us, ferr, sizeof(ferr)) != 0) {
		snprintf(err, err_len, "%s", ferr);
		return SETTLE_ERR_STORE;
	}
	if (!rated) {
		snprintf(err, err_len, "business day %u is not rated yet (tapfare rate --through %u)", day, day);
		return SETTLE_ERR_INVALID;
	}
	struct round *rounds;
	unsigned n;
	if ((rc = settle_rounds(c->db, day, &rounds, &n, err, err_len)) != 0)
		return rc;
	struct round rd = {.day = day, .round = n ? (uint16_t)(rounds[n - 1].round + 1) : 0,
			   .run_lo = n ? rounds[n - 1].run_hi : 0, .run_hi = last};
	free(rounds);
	if (rd.run_lo >= rd.run_hi) {
		if (!st->new_round)
			st->round = n ? (uint32_t)rd.round - 1 : 0;
		return 0;
	}
	/* the files' creation time: when the round's last rating run began, so that
	   the same rated legs always give the same bytes */
	rd.created_us = last_at_us;
	/* a day in two currencies is refused before its round is pending: a pending round is written again until done */
	if ((rc = settle_day_currency(c, &rd, err, err_len)) != 0 || (rc = settle_pending_put(c->db, &rd, err, err_len)) != 0)
		return rc;
	return write_round(c, &rd, st, err, err_len);
}

static const char *const state_names[] = {"open", "closed", "sent", "acknowledged", "settled"};

int settle_status(struct settle_ctx *c, FILE *out, char *err, size_t err_len)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	bool have;
	struct round p;
	int rc = settle_pending_get(c->db, &p, &have, err, err_len);
	if (rc != 0)
		return rc;
	if (have)
		fprintf(out, "pending: day %u round %u (interrupted; the next close writes it again)\n", p.day, p.round);
	if ((rc = settle_txn_begin(c->db, MDB_RDONLY, &txn)) != 0)
		return settle_store_fail(c->db, err, err_len, "beginning a transaction", rc);
	if ((rc = mdb_cursor_open(txn, c->db->rounds, &cur)) == 0) {
		while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0 && v.mv_size == sizeof(p)) {
			memcpy(&p, v.mv_data, sizeof(p));
			char when[32];
			settle_utc_text(p.created_us, when);
			fprintf(out, "day %u round %u: %llu legs, rating runs %u..%u, files dated %s\n", p.day, p.round,
				(unsigned long long)p.legs, p.run_lo + 1, p.run_hi, when);
			struct round_held h = {0};
			MDB_val hv; /* the held record's key is the round's: day, round */
			if (c->db->have_unrated_dbs && mdb_get(txn, c->db->held, &k, &hv) == 0 && hv.mv_size == sizeof(h))
				memcpy(&h, hv.mv_data, sizeof(h));
			if (h.unrated || h.written_off)
				fprintf(out, "held out: day %u round %u: %llu unrated legs, %llu revisions of written-off legs "
					     "(in no batch)\n", p.day, p.round, (unsigned long long)h.unrated,
					(unsigned long long)h.written_off);
		}
		mdb_cursor_close(cur);
	}
	if ((rc == 0 || rc == MDB_NOTFOUND) && (rc = mdb_cursor_open(txn, c->db->batches, &cur)) == 0) {
		while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0 && v.mv_size == sizeof(struct batch)) {
			struct batch b;
			memcpy(&b, v.mv_data, sizeof(b));
			fprintf(out, "batch %s %s items=%llu debit=%lld credit=%lld file=%s/%s/%s\n", b.id,
				state_names[b.state <= BATCH_SETTLED ? b.state : 0], (unsigned long long)b.items,
				(long long)b.debit_fen, (long long)b.credit_fen, c->outbox, b.party, b.file);
		}
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return settle_store_fail(c->db, err, err_len, "reading", rc);
	return settle_writeoffs_print(c, out, err, err_len);
}

int settle_resend(struct settle_ctx *c, const char *id, FILE *out, char *err, size_t err_len)
{
	struct batch b;
	struct round *rounds;
	unsigned n;
	int rc = settle_batch_get(c->db, id, &b, err, err_len);
	if (rc == 0)
		rc = settle_rounds(c->db, b.day, &rounds, &n, err, err_len);
	if (rc != 0)
		return rc;
	struct round rd = {0};
	for (unsigned i = 0; i < n; i++)
		if (rounds[i].round == b.round)
			rd = rounds[i];
	free(rounds);
	if (rd.day != b.day) {
		snprintf(err, err_len, "batch %s: its round %u is not recorded", id, b.round);
		return SETTLE_ERR_STORE;
	}
	/* the round's files again, from the same legs and date: the same bytes */
	struct batch *bs = NULL;
	unsigned nb = 0;
	if ((rc = settle_build_round(c, &rd, false, &bs, &nb, err, err_len)) != 0)
		return rc;
	const struct batch *again = NULL;
	for (unsigned i = 0; i < nb; i++)
		if (strcmp(bs[i].id, id) == 0)
			again = &bs[i];
	if (!again || memcmp(again->sha256, b.sha256, 32) != 0) {
		free(bs);
		snprintf(err, err_len, "batch %s: written again, its file differs from the one recorded", id);
		return SETTLE_ERR_MISMATCH;
	}
	free(bs);
	if (b.state < BATCH_SENT) {
		b.state = BATCH_SENT;
		if ((rc = settle_batch_put(c->db, &b, err, err_len)) != 0)
			return rc;
	}
	fprintf(out, "batch %s: %s/%s/%s written again, identical to the recorded file; state %s\n", id, c->outbox, b.party,
		b.file, b.state == BATCH_SENT ? "sent" : b.state == BATCH_ACKNOWLEDGED ? "acknowledged" : "settled");
	return 0;
}
