/*
 * db.c - the settle store: its LMDB environment and databases, the lock
 * that lets one tapsettle write at a time, and the records of rounds,
 * the pending round and batches. Every transaction of the store begins in
 * settle_txn_begin; every LMDB or errno failure is put into words by
 * settle_store_fail. The deny list's records are deny.c's.
 */
#include "settle/internal.h"

#define SETTLE_MAP_BYTES_INITIAL (1ull << 30) /* doubled when half full (settle_txn_begin) */

#include "base/assert.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

const char *settle_strerror(int err)
{
	switch (err) {
	case SETTLE_ERR_CONFIG: return "bad counterparties file";
	case SETTLE_ERR_STORE: return "store error";
	case SETTLE_ERR_IO: return "cannot write a file";
	case SETTLE_ERR_NOMEM: return "out of memory";
	case SETTLE_ERR_INVALID: return "invalid argument";
	case SETTLE_ERR_MISMATCH: return "reconciliation mismatch";
	case SETTLE_ERR_PARTY: return "unknown counterparty";
	default: return "unknown error";
	}
}

int settle_store_fail(struct settle_db *db, char *err, size_t err_len, const char *what, int rc)
{
	char why[160];
	TG_ASSERT(rc != 0); /* a failure is never "ok" */
	st_mdb_why(db->path, rc, why, sizeof(why));
	snprintf(err, err_len, "settle store %s: %s: %s", db->path, what, why);
	return rc == ENOMEM ? SETTLE_ERR_NOMEM : SETTLE_ERR_STORE;
}

/*
 * Every transaction of the settle store begins here: it follows another
 * process's growth of the map (the gateway reads the deny list while
 * tapsettle writes), and a write transaction first doubles the map when more
 * than half of it is used, so that a transaction (a round's batches, a
 * response's deny entries: small beside the store) never fills it.
 */
int settle_txn_begin(struct settle_db *db, unsigned flags, MDB_txn **txn)
{
	MDB_envinfo info;
	MDB_stat st;
	if (!(flags & MDB_RDONLY) && mdb_env_info(db->env, &info) == 0 && mdb_env_stat(db->env, &st) == 0 &&
	    2 * (uint64_t)(info.me_last_pgno + 1) * st.ms_psize > info.me_mapsize) {
		int rc = st_mdb_grow(db->env, NULL);
		if (rc != 0)
			return rc;
	}
	return st_mdb_txn_begin(db->env, flags, txn);
}

/* One tapsettle at a time: two closes would write the same files. Returns 0 or SETTLE_ERR_STORE. */
static int lock_take(struct settle_db *db, char *err, size_t err_len)
{
	char lock[SETTLE_PATH_MAX + 32];
	snprintf(lock, sizeof(lock), "%s/tapsettle.lock", db->path);
	db->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (db->lock_fd >= 0 && flock(db->lock_fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	snprintf(err, err_len, "%s: %s", lock,
		 db->lock_fd < 0 ? strerror(errno) : "another tapsettle process is using this settle store; wait for it, or stop it");
	if (db->lock_fd >= 0)
		close(db->lock_fd);
	db->lock_fd = -1;
	return SETTLE_ERR_STORE;
}

/* The environment and its databases. Returns an LMDB or errno code. */
static int env_open(struct settle_db *db, bool read_only)
{
	MDB_txn *txn = NULL;
	unsigned create = read_only ? 0 : MDB_CREATE;
	int rc;
	if ((rc = mdb_env_create(&db->env)) != 0 || (rc = mdb_env_set_maxdbs(db->env, 16)) != 0 ||
	    (rc = mdb_env_open(db->env, db->path, read_only ? MDB_RDONLY : 0, 0640)) != 0 ||
	    (rc = st_mdb_map_open(db->env, SETTLE_MAP_BYTES_INITIAL, read_only)) != 0 ||
	    (rc = settle_txn_begin(db, read_only ? MDB_RDONLY : 0, &txn)) != 0)
		return rc;
	if ((rc = mdb_dbi_open(txn, "meta", create, &db->meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "rounds", create, &db->rounds)) != 0 ||
	    (rc = mdb_dbi_open(txn, "batches", create, &db->batches)) != 0 ||
	    (rc = mdb_dbi_open(txn, "deny", create, &db->deny)) != 0 ||
	    (rc = mdb_dbi_open(txn, "denylog", create, &db->denylog)) != 0 ||
	    (rc = settle_unrated_dbs_open(db, txn, create)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

int settle_db_open(struct settle_db **out, const char *path, bool read_only, char *err, size_t err_len)
{
	struct settle_db *db = calloc(1, sizeof(*db));
	if (!db)
		return SETTLE_ERR_NOMEM;
	snprintf(db->path, sizeof(db->path), "%s", path);
	db->lock_fd = -1;
	int rc = 0;
	if (!read_only && mkdir(path, 0750) != 0 && errno != EEXIST)
		rc = settle_store_fail(db, err, err_len, "cannot create its directory", errno);
	if (rc == 0 && !read_only)
		rc = lock_take(db, err, err_len);
	int lmdb_rc = rc == 0 ? env_open(db, read_only) : 0;
	if (lmdb_rc != 0)
		rc = settle_store_fail(db, err, err_len, "cannot open", lmdb_rc);
	if (rc != 0) {
		if (db->env)
			mdb_env_close(db->env);
		if (db->lock_fd >= 0)
			close(db->lock_fd);
		free(db);
		return rc;
	}
	*out = db;
	return 0;
}

void settle_db_close(struct settle_db *db)
{
	if (!db)
		return;
	mdb_env_close(db->env);
	if (db->lock_fd >= 0)
		close(db->lock_fd); /* the lock goes with it */
	free(db);
}

static void round_key(uint8_t k[6], uint32_t day, uint16_t round)
{
	k[0] = (uint8_t)(day >> 24), k[1] = (uint8_t)(day >> 16), k[2] = (uint8_t)(day >> 8), k[3] = (uint8_t)day;
	k[4] = (uint8_t)(round >> 8), k[5] = (uint8_t)round;
}

int settle_rounds(struct settle_db *db, uint32_t day, struct round **out, unsigned *n, char *err, size_t err_len)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	uint8_t k0[6];
	round_key(k0, day, 0);
	MDB_val k = {.mv_size = 6, .mv_data = k0}, v;
	*out = NULL;
	*n = 0;
	int rc = settle_txn_begin(db, MDB_RDONLY, &txn);
	if (rc == 0 && (rc = mdb_cursor_open(txn, db->rounds, &cur)) != 0)
		mdb_txn_abort(txn);
	if (rc != 0)
		return settle_store_fail(db, err, err_len, "rounds", rc);
	size_t cap = 0;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct round r;
		if (v.mv_size != sizeof(r))
			break;
		memcpy(&r, v.mv_data, sizeof(r));
		if (r.day != day)
			break;
		if (settle_array_room(out, &cap, *n, sizeof(**out), 8) != 0) {
			rc = ENOMEM;
			break;
		}
		(*out)[(*n)++] = r;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		free(*out);
		*out = NULL;
		return rc == ENOMEM ? SETTLE_ERR_NOMEM : settle_store_fail(db, err, err_len, "rounds", rc);
	}
	return 0;
}

int settle_pending_get(struct settle_db *db, struct round *p, bool *have, char *err, size_t err_len)
{
	MDB_txn *txn;
	MDB_val k = {.mv_size = 7, .mv_data = "pending"}, v;
	int rc = settle_txn_begin(db, MDB_RDONLY, &txn);
	if (rc != 0)
		return settle_store_fail(db, err, err_len, "beginning a transaction", rc);
	rc = mdb_get(txn, db->meta, &k, &v);
	*have = rc == 0 && v.mv_size == sizeof(*p);
	if (*have)
		memcpy(p, v.mv_data, sizeof(*p));
	mdb_txn_abort(txn);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : settle_store_fail(db, err, err_len, "pending", rc);
}

int settle_pending_put(struct settle_db *db, const struct round *p, char *err, size_t err_len)
{
	MDB_txn *txn;
	MDB_val k = {.mv_size = 7, .mv_data = "pending"}, v = {.mv_size = sizeof(*p), .mv_data = (void *)p};
	int rc = settle_txn_begin(db, 0, &txn);
	if (rc == 0 && (rc = mdb_put(txn, db->meta, &k, &v, 0)) != 0)
		mdb_txn_abort(txn);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	return rc == 0 ? 0 : settle_store_fail(db, err, err_len, "recording a pending round", rc);
}

/* The round's record and batches, and the pending record gone: one transaction. */
int settle_round_put(struct settle_db *db, const struct round *rd, const struct batch *b, unsigned n,
		     const struct round_held *held, char *err, size_t err_len)
{
	MDB_txn *txn;
	uint8_t rk[6];
	round_key(rk, rd->day, rd->round);
	MDB_val k = {.mv_size = 6, .mv_data = rk}, v = {.mv_size = sizeof(*rd), .mv_data = (void *)rd};
	MDB_val pk = {.mv_size = 7, .mv_data = "pending"};
	int rc = settle_txn_begin(db, 0, &txn);
	if (rc != 0)
		return settle_store_fail(db, err, err_len, "beginning a transaction", rc);
	rc = mdb_put(txn, db->rounds, &k, &v, 0);
	for (unsigned i = 0; i < n && rc == 0; i++)
		rc = settle_batch_put_txn(db, txn, &b[i]);
	if (rc == 0 && held)
		rc = settle_round_held_put_txn(db, txn, rd->day, rd->round, held);
	if (rc == 0 && (rc = mdb_del(txn, db->meta, &pk, NULL)) == MDB_NOTFOUND)
		rc = 0;
	if (rc != 0) {
		mdb_txn_abort(txn);
		return settle_store_fail(db, err, err_len, "recording the round", rc);
	}
	return (rc = mdb_txn_commit(txn)) == 0 ? 0 : settle_store_fail(db, err, err_len, "committing the round", rc);
}

int settle_pending_drop(struct settle_db *db, char *err, size_t err_len)
{
	MDB_txn *txn;
	MDB_val pk = {.mv_size = 7, .mv_data = "pending"};
	int rc = settle_txn_begin(db, 0, &txn);
	if (rc == 0) {
		if ((rc = mdb_del(txn, db->meta, &pk, NULL)) == 0 || rc == MDB_NOTFOUND)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	return rc == 0 ? 0 : settle_store_fail(db, err, err_len, "pending", rc);
}

int settle_batch_get(struct settle_db *db, const char *id, struct batch *b, char *err, size_t err_len)
{
	MDB_txn *txn;
	MDB_val k = {.mv_size = strlen(id), .mv_data = (void *)id}, v;
	int rc = settle_txn_begin(db, MDB_RDONLY, &txn);
	if (rc != 0)
		return settle_store_fail(db, err, err_len, "beginning a transaction", rc);
	rc = mdb_get(txn, db->batches, &k, &v);
	if (rc == 0 && v.mv_size == sizeof(*b))
		memcpy(b, v.mv_data, sizeof(*b));
	mdb_txn_abort(txn);
	if (rc == MDB_NOTFOUND) {
		snprintf(err, err_len, "no batch '%s' (tapsettle status lists them)", id);
		return SETTLE_ERR_INVALID;
	}
	return rc == 0 ? 0 : settle_store_fail(db, err, err_len, "batch", rc);
}

int settle_batch_put_txn(struct settle_db *db, MDB_txn *txn, const struct batch *b)
{
	MDB_val k = {.mv_size = strlen(b->id), .mv_data = (void *)b->id};
	MDB_val v = {.mv_size = sizeof(*b), .mv_data = (void *)b};
	return mdb_put(txn, db->batches, &k, &v, 0);
}

int settle_batch_put(struct settle_db *db, const struct batch *b, char *err, size_t err_len)
{
	MDB_txn *txn;
	int rc = settle_txn_begin(db, 0, &txn);
	if (rc == 0 && (rc = settle_batch_put_txn(db, txn, b)) != 0)
		mdb_txn_abort(txn);
	else if (rc == 0)
		rc = mdb_txn_commit(txn);
	return rc == 0 ? 0 : settle_store_fail(db, err, err_len, "recording the batch's state", rc);
}
