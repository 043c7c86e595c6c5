/*
 * recover.c - debt recovery: the deny list's debts that are due are
 * presented again to the acquirer and the QR platform, in recovery batches
 * of the charge file's layout.
 */
#include "settle/internal.h"

#include <string.h>

/*
 * Present again the debts due by `day`: one recovery batch per acquirer / QR
 * platform, `R<day>-<n>-PARTY`, with one item per token (what it owes). Each
 * debt presented loses a retry and is due again retry_days later; a debt with
 * no retry left stays on the deny list and is reported.
 */
int settle_recover(struct settle_ctx *c, uint32_t day, FILE *out, char *err, size_t err_len)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = settle_txn_begin(c->db, 0, &txn);
	if (rc != 0)
		return settle_store_fail(c->db, err, err_len, "beginning a transaction", rc);
	struct batch b[2] = {0};
	struct out_file o[2];
	bool open[2] = {false, false};
	unsigned n = 0;
	/* the next free recovery number of the day */
	for (unsigned tries = 0; tries < 100; tries++, n++) {
		char id[BATCH_ID_MAX];
		snprintf(id, sizeof(id), "R%u-%02u-acquirer-%s", day, n, c->parties->acquirer);
		MDB_val bk = {.mv_size = strlen(id), .mv_data = id}, bv;
		char id2[BATCH_ID_MAX];
		snprintf(id2, sizeof(id2), "R%u-%02u-qr-%s", day, n, c->parties->qr_platform);
		MDB_val bk2 = {.mv_size = strlen(id2), .mv_data = id2};
		if (mdb_get(txn, c->db->batches, &bk, &bv) == MDB_NOTFOUND && mdb_get(txn, c->db->batches, &bk2, &bv) == MDB_NOTFOUND)
			break;
	}
	unsigned presented = 0, exhausted = 0;
	if ((rc = mdb_cursor_open(txn, c->db->deny, &cur)) != 0) {
		mdb_txn_abort(txn);
		return settle_store_fail(c->db, err, err_len, "deny list", rc);
	}
	int result = 0;
	while (result == 0 && (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		struct deny_entry e;
		if (v.mv_size != sizeof(e))
			continue;
		memcpy(&e, v.mv_data, sizeof(e));
		if (e.next_retry_day == 0 || e.next_retry_day > day)
			continue;
		if (e.retries_left == 0) {
			exhausted++;
			fprintf(out, "no retry left: %s:%llu owes %lld fen since %u; it stays deny-listed\n",
				e.medium == 2 ? "quickpass" : "qr", (unsigned long long)e.token, (long long)e.owed_fen,
				e.declined_day);
			e.next_retry_day = 0;
		} else {
			int w = e.medium == 2 ? 0 : 1;
			if (!open[w]) {
				char created[32], party[PARTY_MAX], id[BATCH_ID_MAX];
				snprintf(party, sizeof(party), "%s-%s", w == 0 ? "acquirer" : "qr",
					 w == 0 ? c->parties->acquirer : c->parties->qr_platform);
				snprintf(id, sizeof(id), "R%u-%02u-%s", day, n, party);
				memcpy(b[w].party, party, sizeof(party));
				memcpy(b[w].id, id, sizeof(id));
				snprintf(b[w].file, sizeof(b[w].file), "%s.csv", id);
				b[w].day = day;
				b[w].round = (uint16_t)n;
				b[w].state = BATCH_CLOSED;
				if ((result = settle_out_open(&o[w], NULL, c->outbox, b[w].party, b[w].file, err, err_len)) != 0)
					break;
				open[w] = true;
				snprintf(created, sizeof(created), "%04u-%02u-%02uT00:00:00Z", day / 10000, day / 100 % 100, day % 100);
				settle_out_printf(&o[w], "H,%s,%s,%s,%u,%u,CNY\n", b[w].id, created, b[w].party, day, n);
			}
			batch_item(&b[w], e.owed_fen, e.token);
			/* the charge file's item layout: TOKEN, LEGS (0: a debt), FIRST, LAST (the decline), AMOUNT, D */
			settle_out_printf(&o[w], "D,%llu,%llu,0,%s,%s,%lld,D\n", (unsigned long long)b[w].items,
				   (unsigned long long)e.token, e.batch, e.reason[0] ? e.reason : "-", (long long)e.owed_fen);
			e.retries_left--;
			e.next_retry_day = settle_day_add(day, c->retry_days);
			presented++;
		}
		MDB_val nv = {.mv_size = sizeof(e), .mv_data = &e};
		if ((rc = mdb_cursor_put(cur, &k, &nv, MDB_CURRENT)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	for (int w = 0; w < 2 && result == 0; w++) {
		if (!open[w])
			continue;
		settle_out_printf(&o[w], "T,%llu,%lld,0,%llu\n", (unsigned long long)b[w].items, (long long)b[w].debit_fen,
			   (unsigned long long)b[w].hash_total);
		if ((result = settle_out_commit(&o[w], b[w].sha256, err, err_len)) == 0 && (rc = settle_batch_put_txn(c->db, txn, &b[w])) != 0)
			break;
		open[w] = false;
	}
	for (int w = 0; w < 2; w++)
		if (open[w])
			settle_out_abort(&o[w]);
	if (result == 0 && rc != 0 && rc != MDB_NOTFOUND)
		result = settle_store_fail(c->db, err, err_len, "recovery", rc);
	if (result != 0) {
		mdb_txn_abort(txn);
		return result;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return settle_store_fail(c->db, err, err_len, "committing", rc);
	fprintf(out, "recovery on %u: %u debts presented again%s%s%s, %u with no retry left\n", day, presented,
		b[0].items ? " in " : "", b[0].items ? b[0].id : "", b[1].items ? " and the QR platform's batch" : "",
		exhausted);
	return 0;
}
