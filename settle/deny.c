/*
 * deny.c - the deny list, in the settle store: the tokens whose charge was
 * declined, what each owes and when its debt is presented again (recover.c).
 * The list is versioned: every change gets the next version number, kept in
 * a change log the gateway reads to tell validators (docs/PROTOCOL.md).
 * ingest.c adds and removes entries as the acquirers answer.
 */
#include "settle/internal.h"

#include <string.h>

static void deny_key(uint8_t k[9], uint8_t medium, uint64_t token)
{
	k[0] = medium;
	for (int i = 0; i < 8; i++)
		k[1 + i] = (uint8_t)(token >> (56 - 8 * i));
}

uint32_t settle_deny_version(struct settle_db *db, MDB_txn *txn)
{
	MDB_val k = {.mv_size = 7, .mv_data = "denyver"}, v;
	uint32_t ver = 0;
	if (mdb_get(txn, db->meta, &k, &v) == 0 && v.mv_size == 4)
		memcpy(&ver, v.mv_data, 4);
	return ver;
}

/* One change of the list: the next version, logged. */
static int log_change(struct settle_db *db, MDB_txn *txn, uint8_t medium, uint64_t token, bool added)
{
	uint32_t ver = settle_deny_version(db, txn) + 1;
	uint8_t vk[4] = {(uint8_t)(ver >> 24), (uint8_t)(ver >> 16), (uint8_t)(ver >> 8), (uint8_t)ver};
	struct deny_change ch = {.token = token, .medium = medium, .added = added};
	MDB_val k = {.mv_size = 4, .mv_data = vk}, v = {.mv_size = sizeof(ch), .mv_data = &ch};
	MDB_val mk = {.mv_size = 7, .mv_data = "denyver"}, mv = {.mv_size = 4, .mv_data = &ver};
	int rc = mdb_put(txn, db->denylog, &k, &v, 0);
	return rc ? rc : mdb_put(txn, db->meta, &mk, &mv, 0);
}

int settle_deny_add(struct settle_db *db, MDB_txn *txn, const struct deny_entry *e)
{
	uint8_t key[9];
	deny_key(key, e->medium, e->token);
	MDB_val k = {.mv_size = 9, .mv_data = key}, v;
	bool had = mdb_get(txn, db->deny, &k, &v) == 0;
	struct deny_entry merged = *e;
	if (had && v.mv_size == sizeof(merged)) { /* owes more: add it up, keep the first decline */
		struct deny_entry old;
		memcpy(&old, v.mv_data, sizeof(old));
		merged.owed_fen += old.owed_fen;
		merged.declined_day = old.declined_day;
	}
	v = (MDB_val){.mv_size = sizeof(merged), .mv_data = &merged};
	int rc = mdb_put(txn, db->deny, &k, &v, 0);
	return rc || had ? rc : log_change(db, txn, e->medium, e->token, true);
}

int settle_deny_remove(struct settle_db *db, MDB_txn *txn, uint8_t medium, uint64_t token, bool *was)
{
	uint8_t key[9];
	deny_key(key, medium, token);
	MDB_val k = {.mv_size = 9, .mv_data = key};
	int rc = mdb_del(txn, db->deny, &k, NULL);
	*was = rc == 0;
	if (rc == MDB_NOTFOUND)
		return 0;
	return rc ? rc : log_change(db, txn, medium, token, false);
}

int settle_deny_changes(struct settle_db *db, uint32_t since, settle_deny_fn fn, void *arg, uint32_t *version,
			char *err, size_t err_len)
{
	MDB_txn *txn;
	MDB_cursor *c;
	uint8_t vk[4] = {(uint8_t)((since + 1) >> 24), (uint8_t)((since + 1) >> 16), (uint8_t)((since + 1) >> 8),
			 (uint8_t)(since + 1)};
	MDB_val k = {.mv_size = 4, .mv_data = vk}, v;
	int rc = settle_txn_begin(db, MDB_RDONLY, &txn);
	if (rc != 0)
		return settle_store_fail(db, err, err_len, "beginning a transaction", rc);
	*version = settle_deny_version(db, txn);
	if ((rc = mdb_cursor_open(txn, db->denylog, &c)) == 0) {
		int stop = 0;
		for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && !stop;
		     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			struct deny_change ch;
			const uint8_t *p = k.mv_data;
			if (v.mv_size != sizeof(ch))
				continue;
			memcpy(&ch, v.mv_data, sizeof(ch));
			stop = fn(arg, (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3], &ch);
		}
		mdb_cursor_close(c);
	}
	mdb_txn_abort(txn);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : settle_store_fail(db, err, err_len, "deny list", rc);
}

int settle_deny_print(struct settle_ctx *c, FILE *out, char *err, size_t err_len)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = settle_txn_begin(c->db, MDB_RDONLY, &txn);
	if (rc != 0)
		return settle_store_fail(c->db, err, err_len, "beginning a transaction", rc);
	fprintf(out, "deny list version %u\n", settle_deny_version(c->db, txn));
	if ((rc = mdb_cursor_open(txn, c->db->deny, &cur)) == 0) {
		while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
			struct deny_entry e;
			if (v.mv_size != sizeof(e))
				continue;
			memcpy(&e, v.mv_data, sizeof(e));
			fprintf(out, "denied %s:%llu owes=%lld declined=%u reason=%s batch=%s retries_left=%u next_retry=%u\n",
				settle_medium_name(e.medium), (unsigned long long)e.token,
				(long long)e.owed_fen, e.declined_day, e.reason, e.batch, e.retries_left, e.next_retry_day);
		}
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : settle_store_fail(c->db, err, err_len, "deny list", rc);
}
