/*
 * settle.c - the settle store, closing days in rounds, status.
 *
 * Closing day D: the rating runs since D's last round (all of them for
 * round 0) make the next round. The round is first recorded as pending
 * (its run range and creation time), then its files are written, then the
 * round and its batches replace the pending record in one transaction. A
 * restart finds the pending round and writes it again from the same range
 * and time: the same bytes. Closing again with nothing new writes nothing.
 */
#include "settle/internal.h"

#define SETTLE_MAP_BYTES_INITIAL (1ull << 30) /* doubled when half full (settle_txn_begin) */

#include "fare/fare.h"
#include "store/store.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
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
	assert(rc != 0); /* a failure is never "ok" */
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
	if ((rc = mdb_env_create(&db->env)) != 0 || (rc = mdb_env_set_maxdbs(db->env, 8)) != 0 ||
	    (rc = mdb_env_open(db->env, db->path, read_only ? MDB_RDONLY : 0, 0640)) != 0 ||
	    (rc = st_mdb_map_open(db->env, SETTLE_MAP_BYTES_INITIAL, read_only)) != 0 ||
	    (rc = settle_txn_begin(db, read_only ? MDB_RDONLY : 0, &txn)) != 0)
		return rc;
	if ((rc = mdb_dbi_open(txn, "meta", create, &db->meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "rounds", create, &db->rounds)) != 0 ||
	    (rc = mdb_dbi_open(txn, "batches", create, &db->batches)) != 0 ||
	    (rc = mdb_dbi_open(txn, "deny", create, &db->deny)) != 0 ||
	    (rc = mdb_dbi_open(txn, "denylog", create, &db->denylog)) != 0) {
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

/* The rounds of a day, in order (caller frees). */
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
	unsigned cap = 0;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct round r;
		if (v.mv_size != sizeof(r))
			break;
		memcpy(&r, v.mv_data, sizeof(r));
		if (r.day != day)
			break;
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			struct round *nr = realloc(*out, cap * sizeof(*nr));
			if (!nr) {
				rc = ENOMEM;
				break;
			}
			*out = nr;
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

static int get_pending(struct settle_db *db, struct round *p, bool *have, char *err, size_t err_len)
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

static int put_pending(struct settle_db *db, const struct round *p, char *err, size_t err_len)
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
static int put_round(struct settle_db *db, const struct round *rd, const struct batch *b, unsigned n, char *err,
		     size_t err_len)
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
	for (unsigned i = 0; i < n && rc == 0; i++) {
		MDB_val bk = {.mv_size = strlen(b[i].id), .mv_data = (void *)b[i].id};
		MDB_val bv = {.mv_size = sizeof(b[i]), .mv_data = (void *)&b[i]};
		rc = mdb_put(txn, db->batches, &bk, &bv, 0);
	}
	if (rc == 0 && (rc = mdb_del(txn, db->meta, &pk, NULL)) == MDB_NOTFOUND)
		rc = 0;
	if (rc != 0) {
		mdb_txn_abort(txn);
		return settle_store_fail(db, err, err_len, "recording the round", rc);
	}
	return (rc = mdb_txn_commit(txn)) == 0 ? 0 : settle_store_fail(db, err, err_len, "committing the round", rc);
}

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
	progress(c, "day %u round %u: writing the batches of rating runs %u..%u", rd->day, rd->round, rd->run_lo + 1,
		 rd->run_hi);
	int rc = settle_build_round(c, rd, false, &b, &n, err, err_len);
	if (rc == 0 && rd->legs == 0) {
		/* runs that rated nothing of this day: no round; the pending record goes */
		MDB_txn *txn;
		MDB_val pk = {.mv_size = 7, .mv_data = "pending"};
		if ((rc = settle_txn_begin(c->db, 0, &txn)) == 0) {
			if ((rc = mdb_del(txn, c->db->meta, &pk, NULL)) == 0 || rc == MDB_NOTFOUND)
				rc = mdb_txn_commit(txn);
			else
				mdb_txn_abort(txn);
		}
		free(b);
		return rc == 0 ? 0 : settle_store_fail(c->db, err, err_len, "pending", rc);
	}
	if (rc == 0)
		rc = put_round(c->db, rd, b, n, err, err_len);
	if (rc == 0 && st) {
		st->round = rd->round;
		st->new_round = true;
		st->legs = rd->legs;
		st->batches = n;
	}
	if (rc == 0)
		progress(c, "day %u round %u: %llu legs in %u batches", rd->day, rd->round, (unsigned long long)rd->legs, n);
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
	int rc = get_pending(c->db, &pending, &have, err, err_len);
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
	if ((rc = put_pending(c->db, &rd, err, err_len)) != 0)
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
	int rc = get_pending(c->db, &p, &have, err, err_len);
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
			utc_text(p.created_us, when);
			fprintf(out, "day %u round %u: %llu legs, rating runs %u..%u, files dated %s\n", p.day, p.round,
				(unsigned long long)p.legs, p.run_lo + 1, p.run_hi, when);
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
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : settle_store_fail(c->db, err, err_len, "reading", rc);
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

int settle_batch_put(struct settle_db *db, const struct batch *b, char *err, size_t err_len)
{
	MDB_txn *txn;
	MDB_val k = {.mv_size = strlen(b->id), .mv_data = (void *)b->id};
	MDB_val v = {.mv_size = sizeof(*b), .mv_data = (void *)b};
	int rc = settle_txn_begin(db, 0, &txn);
	if (rc == 0 && (rc = mdb_put(txn, db->batches, &k, &v, 0)) != 0)
		mdb_txn_abort(txn);
	else if (rc == 0)
		rc = mdb_txn_commit(txn);
	return rc == 0 ? 0 : settle_store_fail(db, err, err_len, "recording the batch's state", rc);
}

uint32_t settle_day_add(uint32_t day, unsigned n)
{
	return fare_date_from_days(fare_days_from_date(day) + n);
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
