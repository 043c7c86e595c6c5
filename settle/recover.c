/*
 * recover.c - debt recovery: the deny list's debts that are due are
 * presented again to the acquirer and the QR platform, in recovery batches
 * of the charge file's layout.
 */
#include "settle/internal.h"

#include <stdlib.h>
#include <string.h>

/* One recovery run: its two batches (0 the acquirer's, 1 the QR platform's) and what it did. */
struct recovery {
	struct settle_ctx *c;
	FILE *out;
	char *err;
	size_t err_len;
	MDB_txn *txn;
	uint32_t day;
	unsigned n; /* the recovery number of the day: R<day>-<n>-PARTY */
	struct batch b[2];
	struct out_file o[2];
	bool open[2];
	char currency[2][8]; /* each batch's: its debts' (the currency of the batches they were declined in) */
	unsigned presented, exhausted;
};

/* The next recovery number of the day that neither party's batch uses. */
static unsigned recovery_number(const struct recovery *r)
{
	unsigned n = 0;
	for (unsigned tries = 0; tries < 100; tries++, n++) {
		char id[BATCH_ID_MAX], id2[BATCH_ID_MAX];
		snprintf(id, sizeof(id), "R%u-%02u-acquirer-%s", r->day, n, r->c->parties->acquirer);
		snprintf(id2, sizeof(id2), "R%u-%02u-qr-%s", r->day, n, r->c->parties->qr_platform);
		MDB_val bk = {.mv_size = strlen(id), .mv_data = id}, bk2 = {.mv_size = strlen(id2), .mv_data = id2}, bv;
		if (mdb_get(r->txn, r->c->db->batches, &bk, &bv) == MDB_NOTFOUND &&
		    mdb_get(r->txn, r->c->db->batches, &bk2, &bv) == MDB_NOTFOUND)
			break;
	}
	return n;
}

/*
 * The currency of a debt: that of the batch it was declined in, as its
 * file's header says (H,...,CURRENCY). Returns 0, or SETTLE_ERR_INVALID with
 * err naming the batch when its file cannot say.
 */
static int debt_currency(struct recovery *r, const struct deny_entry *e, char cur[8])
{
	struct batch b;
	char path[900];
	size_t len = 0;
	int rc = settle_batch_get(r->c->db, e->batch, &b, r->err, r->err_len);
	if (rc != 0)
		return rc;
	snprintf(path, sizeof(path), "%s/%s/%s", r->c->outbox, b.party, b.file);
	char *data = settle_read_whole(path, &len);
	char *eol = data ? memchr(data, '\n', len) : NULL;
	if (eol)
		*eol = '\0';
	const char *last = eol && data[0] == 'H' ? strrchr(data, ',') : NULL;
	if (last && strlen(last + 1) >= 3 && strlen(last + 1) < 8 && fare_currency_minor_units(last + 1) >= 0)
		snprintf(cur, 8, "%s", last + 1);
	else
		rc = SETTLE_ERR_INVALID;
	free(data);
	if (rc != 0)
		snprintf(r->err, r->err_len, "the debt of %s:%llu: %s: no H record naming a currency (the batch it was "
			 "declined in)", settle_medium_name(e->medium), (unsigned long long)e->token, path);
	return rc;
}

/* Open batch w's file and write its header. Returns 0 or SETTLE_ERR_*. */
static int recovery_open(struct recovery *r, int w)
{
	char created[32], party[PARTY_MAX], id[BATCH_ID_MAX];
	struct batch *b = &r->b[w];
	snprintf(party, sizeof(party), "%s-%s", w == 0 ? "acquirer" : "qr",
		 w == 0 ? r->c->parties->acquirer : r->c->parties->qr_platform);
	snprintf(id, sizeof(id), "R%u-%02u-%s", r->day, r->n, party);
	memcpy(b->party, party, sizeof(party));
	memcpy(b->id, id, sizeof(id));
	snprintf(b->file, sizeof(b->file), "%s.csv", id);
	b->day = r->day;
	b->round = (uint16_t)r->n;
	b->state = BATCH_CLOSED;
	int rc = settle_out_open(&r->o[w], NULL, r->c->outbox, b->party, b->file, r->err, r->err_len);
	if (rc != 0)
		return rc;
	r->open[w] = true;
	snprintf(created, sizeof(created), "%04u-%02u-%02uT00:00:00Z", r->day / 10000, r->day / 100 % 100, r->day % 100);
	settle_out_printf(&r->o[w], "H,%s,%s,%s,%u,%u,%s\n", b->id, created, b->party, r->day, r->n, r->currency[w]);
	return 0;
}

/* A debt due: presented again (one retry fewer), or reported when it has no retry left. Returns 0 or SETTLE_ERR_*. */
static int recovery_present(struct recovery *r, struct deny_entry *e)
{
	if (e->retries_left == 0) {
		r->exhausted++;
		fprintf(r->out, "no retry left: %s:%llu owes %lld fen since %u; it stays deny-listed\n",
			settle_medium_name(e->medium), (unsigned long long)e->token, (long long)e->owed_fen, e->declined_day);
		e->next_retry_day = 0;
		return 0;
	}
	int w = e->medium == FARE_QUICKPASS ? 0 : 1, rc;
	char cur[8];
	if ((rc = debt_currency(r, e, cur)) != 0)
		return rc;
	if (r->open[w] && strcmp(cur, r->currency[w]) != 0) {
		snprintf(r->err, r->err_len, "recovery batch %s: the debt of %s:%llu is in %s, the batch in %s (one currency "
			 "a batch)", r->b[w].id, settle_medium_name(e->medium), (unsigned long long)e->token, cur,
			 r->currency[w]);
		return SETTLE_ERR_INVALID;
	}
	memcpy(r->currency[w], cur, sizeof(cur));
	if (!r->open[w] && (rc = recovery_open(r, w)) != 0)
		return rc;
	batch_item(&r->b[w], e->owed_fen, e->token);
	/* the charge file's item layout: TOKEN, LEGS (0: a debt), FIRST, LAST (the decline), AMOUNT, D */
	settle_out_printf(&r->o[w], "D,%llu,%llu,0,%s,%s,%lld,D\n", (unsigned long long)r->b[w].items,
			  (unsigned long long)e->token, e->batch, e->reason[0] ? e->reason : "-", (long long)e->owed_fen);
	e->retries_left--;
	e->next_retry_day = settle_day_add(r->day, r->c->retry_days);
	r->presented++;
	return 0;
}

/* Every deny entry due by the day. Returns 0, SETTLE_ERR_* (*lmdb_rc 0), or 0 with *lmdb_rc an LMDB failure. */
static int recovery_walk(struct recovery *r, int *lmdb_rc)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int result = 0, rc = mdb_cursor_open(r->txn, r->c->db->deny, &cur);
	if (rc != 0) {
		*lmdb_rc = rc;
		return 0;
	}
	while (result == 0 && (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		struct deny_entry e;
		if (v.mv_size != sizeof(e))
			continue;
		memcpy(&e, v.mv_data, sizeof(e));
		if (e.next_retry_day == 0 || e.next_retry_day > r->day)
			continue;
		if ((result = recovery_present(r, &e)) != 0)
			break;
		MDB_val nv = {.mv_size = sizeof(e), .mv_data = &e};
		if ((rc = mdb_cursor_put(cur, &k, &nv, MDB_CURRENT)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	*lmdb_rc = rc == MDB_NOTFOUND ? 0 : rc;
	return result;
}

/* Trailers, files in place, batches recorded. Returns 0, SETTLE_ERR_*, or 0 with *lmdb_rc an LMDB failure. */
static int recovery_finish(struct recovery *r, int *lmdb_rc)
{
	int result = 0;
	for (int w = 0; w < 2 && result == 0 && *lmdb_rc == 0; w++) {
		if (!r->open[w])
			continue;
		struct batch *b = &r->b[w];
		settle_out_printf(&r->o[w], "T,%llu,%lld,0,%llu\n", (unsigned long long)b->items, (long long)b->debit_fen,
				  (unsigned long long)b->hash_total);
		if ((result = settle_out_commit(&r->o[w], b->sha256, r->err, r->err_len)) == 0)
			*lmdb_rc = settle_batch_put_txn(r->c->db, r->txn, b);
		r->open[w] = result != 0;
	}
	return result;
}

/*
 * Present again the debts due by `day`: one recovery batch per acquirer / QR
 * platform, `R<day>-<n>-PARTY`, with one item per token (what it owes). Each
 * debt presented loses a retry and is due again retry_days later; a debt with
 * no retry left stays on the deny list and is reported.
 */
int settle_recover(struct settle_ctx *c, uint32_t day, FILE *out, char *err, size_t err_len)
{
	struct recovery r = {.c = c, .out = out, .err = err, .err_len = err_len, .day = day};
	int lmdb_rc = settle_txn_begin(c->db, 0, &r.txn);
	if (lmdb_rc != 0)
		return settle_store_fail(c->db, err, err_len, "beginning a transaction", lmdb_rc);
	r.n = recovery_number(&r);
	int result = recovery_walk(&r, &lmdb_rc);
	if (result == 0 && lmdb_rc == 0)
		result = recovery_finish(&r, &lmdb_rc);
	for (int w = 0; w < 2; w++)
		if (r.open[w])
			settle_out_abort(&r.o[w]);
	if (result == 0 && lmdb_rc != 0)
		result = settle_store_fail(c->db, err, err_len, "recovery", lmdb_rc);
	if (result != 0) {
		mdb_txn_abort(r.txn);
		return result;
	}
	if ((lmdb_rc = mdb_txn_commit(r.txn)) != 0)
		return settle_store_fail(c->db, err, err_len, "committing", lmdb_rc);
	fprintf(out, "recovery on %u: %u debts presented again%s%s%s, %u with no retry left\n", day, r.presented,
		r.b[0].items ? " in " : "", r.b[0].items ? r.b[0].id : "", r.b[1].items ? " and the QR platform's batch" : "",
		r.exhausted);
	return 0;
}
