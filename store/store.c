/*
 * store.c - the gateway's LMDB environment: tap log, quarantine, validators,
 * the QR verdicts (forged codes, the verified frontier).
 *
 * The log is append-only by commit sequence (MDB_APPEND into an
 * MDB_INTEGERKEY database), because sequence-keyed appends are an order of
 * magnitude faster than random-key inserts into a synced B-tree. A value is
 * struct st_tap_meta followed by the record's bytes, written with memcpy into
 * space LMDB reserves (MDB_RESERVE: no staging copy, no allocation per tap;
 * LMDB does not align values, so nothing here casts a value pointer).
 *
 * Readers scan in chunks of ST_READ_CHUNK records per read transaction, so a
 * reader never pins old pages for long while the writer goes on; forward
 * scans stop at the last key present when they began, so a scan is bounded
 * even while the writer appends.
 *
 * Growing the map (st_env_grow, or following another process that grew it)
 * unmaps and remaps the file: every pointer into the map dies. So every live
 * transaction of this process holds map_lock for reading, and a remap takes
 * it for writing. The lock is taken once per transaction (a batch or a
 * chunk), never per record.
 *
 * All LMDB and errno codes are mapped to the module's own negative codes
 * (st_strerror).
 */
#include "store/store.h"
#include "base/assert.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static_assert(sizeof(struct st_tap_meta) == ST_META_BYTES, "st_tap_meta is 56 bytes, no padding");
static_assert(sizeof(struct st_validator_state) == 64, "validator state is 64 bytes, no padding");
static_assert(sizeof(size_t) == sizeof(uint64_t), "log keys are native 64-bit integers (MDB_INTEGERKEY)");
static_assert(ST_RECORD_BYTES_MAX <= UINT16_MAX, "record_len is 16 bits");

#define DBS_MAX 8u
#define READERS_MAX 126u
#define MAP_BYTES_MAX ST_MDB_MAP_BYTES_MAX /* 16 TiB: st_env_grow stops doubling here */
#define MAP_RESIZED_RETRIES_MAX 8u  /* another process may grow again while we follow */
#define QUARANTINE_KEY_BYTES 24u    /* id_lo, id_hi, content_hash */
#define SCAN_KEY_BYTES_MAX QUARANTINE_KEY_BYTES
#define SCHEMA_KEY "schema_version"
#define FRONTIER_KEY "qr_verified_seq"
#define VERDICT_GROWS_MAX 8u /* map doublings one verdict commit may ask for */
#define LOCK_FILE "tapgate.lock"
#define LOCK_PATH_BYTES_MAX 4096u

struct st_wtxn {
	struct st_env *env;
	MDB_txn *txn;
};

struct st_env {
	MDB_env *env;
	MDB_dbi log, quarantine, validators, meta, qr_forged;
	bool read_only;
	bool have_forged; /* false: a read-only open of a store from before the QR verdicts */
	int lock_fd;    /* writable opens: PATH/tapgate.lock, flock()ed; -1 otherwise */
	bool have_dbs;  /* false: a read-only open before any gateway created the DBs */
	bool unmapped;  /* a remap failed: LMDB has no map left, refuse every txn */
	_Atomic uint64_t map_size_bytes;
	pthread_rwlock_t map_lock; /* read: a live txn; write: a remap */
	struct st_wtxn wtxn;       /* the one write txn: no allocation per batch */
};

const char *st_strerror(int err)
{
	switch (err) {
	case ST_OK: return "ok";
	case ST_ERR_MAP_FULL: return "store map full";
	case ST_ERR_IO: return "store I/O error (disk full or failing)";
	case ST_ERR_SCHEMA: return "store written by another schema version";
	case ST_ERR_CORRUPT: return "store corrupt (a record of the wrong size, a gap in the log, counts that disagree)";
	case ST_ERR_EXISTS: return "already stored";
	case ST_ERR_NOTFOUND: return "not found";
	case ST_ERR_OPEN: return "store cannot be opened";
	case ST_ERR_INVALID: return "invalid argument";
	case ST_ERR_READERS: return "too many store readers";
	case ST_ERR_LOCKED: return "store in use by another process";
	default: return "unknown store error";
	}
}

/* Map an LMDB or errno code to ours. Whatever the disk says (ENOSPC, EIO...) is ST_ERR_IO. */
static int st_err(int rc)
{
	switch (rc) {
	case 0: return ST_OK;
	case MDB_MAP_FULL: return ST_ERR_MAP_FULL;
	case MDB_KEYEXIST: return ST_ERR_EXISTS;
	case MDB_NOTFOUND: return ST_ERR_NOTFOUND;
	case MDB_READERS_FULL: return ST_ERR_READERS;
	case MDB_BAD_VALSIZE: return ST_ERR_INVALID;
	case MDB_CORRUPTED: case MDB_PAGE_NOTFOUND: case MDB_INVALID: return ST_ERR_CORRUPT;
	case MDB_INCOMPATIBLE: return ST_ERR_SCHEMA; /* a DB exists with other flags */
	default: return ST_ERR_IO;
	}
}

/* Writes promise ST_ERR_MAP_FULL, ST_ERR_IO, ST_ERR_INVALID, ST_ERR_EXISTS only. */
static int write_err(int rc)
{
	int err = st_err(rc);
	if (err == ST_OK || err == ST_ERR_MAP_FULL || err == ST_ERR_INVALID || err == ST_ERR_EXISTS)
		return err;
	return ST_ERR_IO;
}

/* Reads promise ST_ERR_CORRUPT, ST_ERR_READERS, ST_ERR_IO only. */
static int read_err(int err)
{
	if (err == ST_OK || err == ST_ERR_CORRUPT || err == ST_ERR_READERS)
		return err;
	return ST_ERR_IO;
}

/* st_env_open promises ST_ERR_OPEN, ST_ERR_SCHEMA or ST_ERR_IO only. */
static int open_err(int rc)
{
	switch (rc) {
	case ENOSPC: case EIO: case EDQUOT: case ENOMEM: return ST_ERR_IO;
	case MDB_INCOMPATIBLE: return ST_ERR_SCHEMA;
	default: return ST_ERR_OPEN;
	}
}

/* ------------------------------------------------------------- the map */

/* map_lock: a failure is a programmer error (a recursive write lock, a destroyed lock). */
static void map_lock_shared(struct st_env *e)
{
	int rc = pthread_rwlock_rdlock(&e->map_lock);
	TG_ASSERT(rc == 0);
	(void)rc;
}

static void map_lock_exclusive(struct st_env *e)
{
	int rc = pthread_rwlock_wrlock(&e->map_lock);
	TG_ASSERT(rc == 0);
	(void)rc;
}

static void map_unlock(struct st_env *e)
{
	int rc = pthread_rwlock_unlock(&e->map_lock);
	TG_ASSERT(rc == 0);
	(void)rc;
}

/*
 * Remap at size bytes (0: the size the file's meta page records, after
 * another process grew it). Waits until no txn of this process is live, so
 * LMDB's own refusal (EINVAL under a write txn) cannot happen: any failure
 * comes after it unmapped the old map, and leaves no map at all.
 * Returns 0 or ST_ERR_IO.
 */
static int map_resize(struct st_env *e, uint64_t size_bytes)
{
	int rc = EIO;
	map_lock_exclusive(e);
	if (!e->unmapped) {
		rc = mdb_env_set_mapsize(e->env, (size_t)size_bytes);
		e->unmapped = rc != 0;
	}
	if (rc == 0) {
		MDB_envinfo info;
		mdb_env_info(e->env, &info);
		atomic_store_explicit(&e->map_size_bytes, info.me_mapsize, memory_order_relaxed);
	}
	map_unlock(e);
	return rc == 0 ? ST_OK : ST_ERR_IO;
}

/*
 * Begin a txn holding map_lock shared until txn_end(). On MDB_MAP_RESIZED
 * (another process grew the map beyond ours) adopt the new size and retry.
 * Returns 0 or an st_error.
 */
static int txn_begin(struct st_env *e, unsigned flags, MDB_txn **txn)
{
	for (unsigned attempt = 0;; attempt++) {
		map_lock_shared(e);
		int rc = e->unmapped ? EIO : mdb_txn_begin(e->env, NULL, flags, txn);
		if (rc == 0)
			return ST_OK;
		map_unlock(e);
		if (rc != MDB_MAP_RESIZED || attempt == MAP_RESIZED_RETRIES_MAX)
			return st_err(rc);
		if ((rc = map_resize(e, 0)) != 0)
			return rc;
	}
}

/* End a read txn, or a write txn whose commit already ended it (txn NULL). */
static void txn_end(struct st_env *e, MDB_txn *txn)
{
	if (txn != NULL)
		mdb_txn_abort(txn);
	map_unlock(e);
}

/* ---------------------------------------------------------------- opening */

/* Open the four DBs in txn; read-only opens create nothing. Returns an LMDB code. */
static int dbs_open(struct st_env *e, MDB_txn *txn)
{
	unsigned create = e->read_only ? 0 : MDB_CREATE;
	int rc = mdb_dbi_open(txn, "log", create | MDB_INTEGERKEY, &e->log);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "quarantine", create, &e->quarantine);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "validators", create | MDB_INTEGERKEY, &e->validators);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "meta", create, &e->meta);
	if (rc == 0) { /* absent in a store written before the QR verdicts: nothing forged */
		int forged_rc = mdb_dbi_open(txn, "qr_forged", create | MDB_INTEGERKEY, &e->qr_forged);
		e->have_forged = forged_rc == 0;
		rc = forged_rc == MDB_NOTFOUND && e->read_only ? 0 : forged_rc;
	}
	return rc;
}

int st_mdb_schema(MDB_txn *txn, unsigned meta_dbi, uint32_t version, bool read_only, uint32_t *found)
{
	MDB_val k = {sizeof(SCHEMA_KEY) - 1, SCHEMA_KEY}, v;
	int rc = mdb_get(txn, meta_dbi, &k, &v);
	*found = 1;
	if (rc == MDB_NOTFOUND && read_only)
		return 0; /* never written to, or written before versions: version 1 */
	if (rc == MDB_NOTFOUND) {
		*found = version;
		v = (MDB_val){sizeof(version), &version};
		return mdb_put(txn, meta_dbi, &k, &v, 0);
	}
	if (rc != 0)
		return rc;
	*found = 0;
	if (v.mv_size == sizeof(*found))
		memcpy(found, v.mv_data, sizeof(*found));
	return *found == version ? 0 : MDB_VERSION_MISMATCH;
}

static int log_last_seq(struct st_env *e, MDB_txn *txn, uint64_t *seq);
static int frontier_get(struct st_env *e, MDB_txn *txn, uint64_t *seq);


/* Check (or, in a new writable store, record) the schema version. Returns 0, ST_ERR_SCHEMA, ST_ERR_IO. */
static int schema_check(struct st_env *e, MDB_txn *txn)
{
	uint32_t found;
	int rc = st_mdb_schema(txn, e->meta, ST_SCHEMA_VERSION, e->read_only, &found);
	if (rc == MDB_VERSION_MISMATCH)
		return ST_ERR_SCHEMA;
	if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL)
		return ST_ERR_IO; /* recording it in a new store */
	return rc == 0 ? ST_OK : open_err(rc);
}

/*
 * Open the DBs and check the schema in one txn. A read-only open of a store
 * whose DBs do not exist yet is an empty store (have_dbs stays false).
 * The txn is committed, read-only too: aborting would close the DB handles.
 */
static int dbs_prepare(struct st_env *e)
{
	MDB_txn *txn;
	int rc = txn_begin(e, e->read_only ? MDB_RDONLY : 0, &txn);
	if (rc != 0)
		return rc == ST_ERR_IO ? ST_ERR_IO : ST_ERR_OPEN;
	rc = dbs_open(e, txn);
	if (rc == MDB_NOTFOUND && e->read_only) {
		txn_end(e, txn);
		return ST_OK;
	}
	rc = rc == 0 ? schema_check(e, txn) : open_err(rc);
	if (rc != 0) {
		txn_end(e, txn);
		return rc;
	}
	rc = mdb_txn_commit(txn);
	txn_end(e, NULL);
	if (rc != 0)
		return open_err(rc);
	e->have_dbs = true;
	return ST_OK;
}

/*
 * Create and open the LMDB environment. No MDB_NORDAHEAD: the log is
 * appended and scanned in key order, which lays its pages out mostly in file
 * order, and the dedup rebuild reads the recent window cold at start-up -
 * kernel read-around is what makes that fast. MDB_NOTLS: read txns are
 * begun and ended on any thread. Returns an LMDB or errno code.
 */
static int env_open(struct st_env *e, const struct st_options *opt)
{
	unsigned flags = MDB_NOTLS;
	if (opt->read_only)
		flags |= MDB_RDONLY;
	else if (opt->sync == ST_SYNC_NOMETASYNC)
		flags |= MDB_NOMETASYNC;
	else if (opt->sync == ST_SYNC_NONE)
		flags |= MDB_NOSYNC;
	int rc = mdb_env_create(&e->env);
	if (rc != 0)
		return rc;
	if ((rc = mdb_env_set_maxdbs(e->env, DBS_MAX)) != 0 ||
	    (rc = mdb_env_set_maxreaders(e->env, READERS_MAX)) != 0 ||
	    (rc = mdb_env_open(e->env, opt->path, flags, 0640)) != 0) {
		mdb_env_close(e->env);
		e->env = NULL;
	}
	return rc;
}

/*
 * The map is the larger of what the file records (it may have grown in an
 * earlier run: do not shrink back and hit MAP_FULL again) and what the
 * options ask for, rounded up to whole OS pages. A store never committed to
 * records only LMDB's default (1 MiB): there the options decide alone.
 */
static int map_size_initial(struct st_env *e, uint64_t want_bytes)
{
	MDB_envinfo info;
	mdb_env_info(e->env, &info);
	atomic_store_explicit(&e->map_size_bytes, info.me_mapsize, memory_order_relaxed);
	uint64_t page_bytes = (uint64_t)sysconf(_SC_PAGESIZE);
	want_bytes = (want_bytes + page_bytes - 1) / page_bytes * page_bytes;
	bool fresh = info.me_last_txnid == 0;
	if (e->read_only || want_bytes == 0 || want_bytes == info.me_mapsize ||
	    (!fresh && want_bytes < info.me_mapsize))
		return ST_OK;
	if (want_bytes > MAP_BYTES_MAX)
		return ST_ERR_OPEN;
	return map_resize(e, want_bytes);
}

static int lock_path(const char *path, char out[LOCK_PATH_BYTES_MAX])
{
	int n = snprintf(out, LOCK_PATH_BYTES_MAX, "%s/" LOCK_FILE, path);
	return n > 0 && (unsigned)n < LOCK_PATH_BYTES_MAX ? 0 : -1;
}

long st_env_lock_holder(const char *path)
{
	char lock[LOCK_PATH_BYTES_MAX], text[32] = "";
	if (lock_path(path, lock) != 0)
		return 0;
	int fd = open(lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	text[n] = 0;
	long pid = strtol(text, NULL, 10);
	return pid > 0 ? pid : 0;
}

/*
 * Take PATH/tapgate.lock (flock: released by the kernel when the process
 * dies, however it dies, so a kill -9 leaves no stale lock) and record our
 * pid in it for the message of the next process that is refused.
 * Returns the fd, ST_ERR_LOCKED, or ST_ERR_OPEN.
 */
static int lock_take(const char *path)
{
	char lock[LOCK_PATH_BYTES_MAX], pid[32];
	if (lock_path(path, lock) != 0)
		return ST_ERR_OPEN;
	int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return ST_ERR_OPEN;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int why = errno;
		close(fd);
		return why == EWOULDBLOCK ? ST_ERR_LOCKED : ST_ERR_OPEN;
	}
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		close(fd);
		return ST_ERR_OPEN;
	}
	return fd;
}

int st_env_open(struct st_env **out, const struct st_options *opt)
{
	TG_ASSERT(out != NULL && opt != NULL && opt->path != NULL);
	TG_ASSERT(opt->sync == ST_SYNC_FULL || opt->sync == ST_SYNC_NOMETASYNC || opt->sync == ST_SYNC_NONE);
	if (!opt->read_only && mkdir(opt->path, 0750) != 0 && errno != EEXIST)
		return open_err(errno);
	struct st_env *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return ST_ERR_IO;
	e->read_only = opt->read_only;
	e->lock_fd = -1;
	if (!opt->read_only && (e->lock_fd = lock_take(opt->path)) < 0) {
		int rc = e->lock_fd;
		free(e);
		return rc;
	}
	int rc = pthread_rwlock_init(&e->map_lock, NULL) != 0 ? ST_ERR_IO : ST_OK;
	if (rc != 0)
		goto out_unlock;
	int lmdb_rc = env_open(e, opt);
	if (lmdb_rc != 0) {
		rc = open_err(lmdb_rc);
		goto out_destroy_lock;
	}
	rc = map_size_initial(e, opt->map_size_bytes);
	if (rc == 0)
		rc = dbs_prepare(e);
	if (rc != 0)
		goto out_close_env;
	*out = e;
	return ST_OK;
out_close_env:
	mdb_env_close(e->env);
out_destroy_lock:
	pthread_rwlock_destroy(&e->map_lock);
out_unlock:
	if (e->lock_fd >= 0)
		close(e->lock_fd);
	free(e);
	return rc;
}

void st_env_close(struct st_env *e)
{
	if (e == NULL)
		return;
	TG_ASSERT(e->wtxn.txn == NULL); /* commit or abort first */
	mdb_env_close(e->env);
	pthread_rwlock_destroy(&e->map_lock);
	if (e->lock_fd >= 0)
		close(e->lock_fd); /* after LMDB's own close: the lock covers the whole use */
	free(e);
}

/*
 * Double the map, up to MAP_BYTES_MAX. The writer calls it between txns;
 * readers of this process finish their chunk first (map_lock), readers in
 * other processes follow on their next txn (MDB_MAP_RESIZED in txn_begin).
 * Returns 0, or ST_ERR_IO (remap refused, or already at the bound).
 */
int st_env_grow(struct st_env *e)
{
	TG_ASSERT(e->wtxn.txn == NULL); /* LMDB cannot remap under a write txn */
	TG_ASSERT(!e->read_only);
	uint64_t now_bytes = atomic_load_explicit(&e->map_size_bytes, memory_order_relaxed);
	if (now_bytes >= MAP_BYTES_MAX)
		return ST_ERR_IO;
	uint64_t want_bytes = now_bytes * 2 < MAP_BYTES_MAX ? now_bytes * 2 : MAP_BYTES_MAX;
	return map_resize(e, want_bytes);
}

uint64_t st_env_map_size(const struct st_env *e)
{
	return atomic_load_explicit(&e->map_size_bytes, memory_order_relaxed);
}

/* The last seq in the log, 0 when empty. Returns 0 or an st_error. */
static int log_last_seq(struct st_env *e, MDB_txn *txn, uint64_t *seq)
{
	MDB_cursor *c;
	MDB_val k, v;
	*seq = 0;
	if (!e->have_dbs)
		return ST_OK;
	int rc = mdb_cursor_open(txn, e->log, &c);
	if (rc != 0)
		return st_err(rc);
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size != sizeof(*seq))
		rc = MDB_CORRUPTED;
	if (rc == 0)
		memcpy(seq, k.mv_data, sizeof(*seq));
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? ST_OK : st_err(rc);
}

/* Returns 0, ST_ERR_READERS, ST_ERR_IO, ST_ERR_CORRUPT. */
int st_log_next_seq(struct st_env *e, uint64_t *seq)
{
	MDB_txn *txn;
	uint64_t last = 0;
	int rc = txn_begin(e, MDB_RDONLY, &txn);
	if (rc != 0)
		return read_err(rc);
	rc = log_last_seq(e, txn, &last);
	txn_end(e, txn);
	*seq = last + 1;
	return read_err(rc);
}

/* ---------------------------------------------------------------- writing */

/* Returns 0 or ST_ERR_IO (a write txn takes no reader slot and no map space yet). */
int st_wtxn_begin(struct st_env *e, struct st_wtxn **out)
{
	struct st_wtxn *t = &e->wtxn;
	TG_ASSERT(!e->read_only && e->have_dbs);
	TG_ASSERT(t->txn == NULL); /* one writer, one write txn at a time */
	int rc = txn_begin(e, 0, &t->txn);
	if (rc != 0) {
		t->txn = NULL;
		return ST_ERR_IO;
	}
	t->env = e;
	*out = t;
	return ST_OK;
}

/* Reserve the value's space in the txn, then write meta + record into it. */
static int value_put(struct st_wtxn *t, MDB_dbi dbi, MDB_val *k, const struct st_tap_meta *meta,
		     const void *record, unsigned flags)
{
	if (meta->record_len == 0 || meta->record_len > ST_RECORD_BYTES_MAX)
		return MDB_BAD_VALSIZE;
	MDB_val v = {ST_META_BYTES + (size_t)meta->record_len, NULL};
	int rc = mdb_put(t->txn, dbi, k, &v, flags | MDB_RESERVE);
	if (rc != 0)
		return rc; /* on MDB_KEYEXIST v shows the stored value: never write it */
	memcpy(v.mv_data, meta, ST_META_BYTES);
	memcpy((uint8_t *)v.mv_data + ST_META_BYTES, record, meta->record_len);
	return 0;
}

int st_log_append(struct st_wtxn *t, uint64_t seq, const struct st_tap_meta *meta, const void *record)
{
	MDB_val k = {sizeof(seq), &seq};
	int rc = value_put(t, t->env->log, &k, meta, record, MDB_APPEND);
	/* MDB_APPEND refuses a seq at or below the log's last: the writer's bug, not the disk's.
	 * Returned, it would fail the batch, and the writer would retry the same batch forever. */
	TG_ASSERT(rc != MDB_KEYEXIST);
	return write_err(rc);
}

/* Returns 0, ST_ERR_EXISTS, ST_ERR_MAP_FULL, ST_ERR_IO, ST_ERR_INVALID (record length). */
int st_quarantine_put(struct st_wtxn *t, const struct st_tap_meta *meta, const void *record)
{
	uint64_t key[3] = {meta->id_lo, meta->id_hi, meta->content_hash};
	static_assert(sizeof(key) == QUARANTINE_KEY_BYTES, "quarantine key");
	MDB_val k = {sizeof(key), key};
	return write_err(value_put(t, t->env->quarantine, &k, meta, record, MDB_NOOVERWRITE));
}

int st_validator_put(struct st_wtxn *t, const struct st_validator_state *s)
{
	unsigned int id = s->validator_id; /* MDB_INTEGERKEY: unsigned int or size_t keys */
	MDB_val k = {sizeof(id), &id}, v = {sizeof(*s), (void *)s};
	return write_err(mdb_put(t->txn, t->env->validators, &k, &v, 0));
}

int st_wtxn_commit(struct st_wtxn *t)
{
	int rc = mdb_txn_commit(t->txn); /* frees the txn whatever it returns */
	t->txn = NULL;
	txn_end(t->env, NULL);
	return rc == MDB_MAP_FULL ? ST_ERR_MAP_FULL : rc == 0 ? ST_OK : ST_ERR_IO;
}

void st_wtxn_abort(struct st_wtxn *t)
{
	MDB_txn *txn = t->txn;
	t->txn = NULL;
	txn_end(t->env, txn);
}

/* ---------------------------------------------------------------- reading */

/* Decode one tap value. Returns 0 or ST_ERR_CORRUPT when its size does not add up. */
static int value_parse(const MDB_val *v, struct st_tap_meta *meta, const uint8_t **record)
{
	if (v->mv_size < ST_META_BYTES)
		return ST_ERR_CORRUPT;
	memcpy(meta, v->mv_data, ST_META_BYTES);
	if (meta->record_len > ST_RECORD_BYTES_MAX || v->mv_size != ST_META_BYTES + (size_t)meta->record_len)
		return ST_ERR_CORRUPT;
	*record = (const uint8_t *)v->mv_data + ST_META_BYTES;
	return ST_OK;
}

/*
 * Where a chunked scan resumes. Before the first chunk: key is the start
 * (visited if present), or from_edge starts at the first/last record. After
 * a chunk: key is the last record visited (not visited again). Forward scans
 * end at end_key, the last key when they began.
 */
struct scan_pos {
	uint8_t key[SCAN_KEY_BYTES_MAX], end_key[SCAN_KEY_BYTES_MAX];
	size_t key_bytes, end_key_bytes;
	uint64_t end_entries; /* records in the DB when the end was marked */
	bool from_edge, inclusive, backward, have_end, done;
	bool ended_early; /* a forward scan found no record before end_key: pages are lost */
};

/* Per record: 0 to go on, 1 to stop, or a negative st_error. */
typedef int (*scan_each_fn)(void *arg, const MDB_val *k, const MDB_val *v);
#define SCAN_STOP 1

/* Record the forward scan's end: the last key now, and how many records there are. Returns an LMDB code. */
static int scan_end_mark(MDB_cursor *c, struct scan_pos *pos)
{
	MDB_val k, v;
	MDB_stat st;
	int rc = mdb_stat(mdb_cursor_txn(c), mdb_cursor_dbi(c), &st);
	if (rc != 0)
		return rc;
	pos->end_entries = st.ms_entries;
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size > SCAN_KEY_BYTES_MAX)
		rc = MDB_CORRUPTED;
	if (rc == 0) {
		memcpy(pos->end_key, k.mv_data, k.mv_size);
		pos->end_key_bytes = k.mv_size;
		pos->have_end = true;
	}
	return rc;
}

/*
 * A forward scan found no record after pos->key: keys are never deleted, so
 * unless it is at end_key (the last key when the scan began), pages of the
 * tree are lost. Sets pos->ended_early.
 */
static void scan_end_check(MDB_txn *txn, MDB_dbi dbi, struct scan_pos *pos)
{
	MDB_val at = {pos->key_bytes, pos->key}, end = {pos->end_key_bytes, pos->end_key};
	if (!pos->have_end)
		return;
	int cmp = mdb_cmp(txn, dbi, &at, &end);
	pos->ended_early = cmp < 0 || (cmp == 0 && pos->inclusive);
}

/* Put the cursor on the first record of this chunk. Returns an LMDB code (MDB_NOTFOUND: none). */
static int scan_position(MDB_txn *txn, MDB_dbi dbi, MDB_cursor *c, struct scan_pos *pos,
			 MDB_val *k, MDB_val *v)
{
	if (pos->from_edge)
		return mdb_cursor_get(c, k, v, pos->backward ? MDB_LAST : MDB_FIRST);
	MDB_val want = {pos->key_bytes, (void *)pos->key};
	*k = want;
	int rc = mdb_cursor_get(c, k, v, MDB_SET_RANGE); /* first key >= want */
	if (!pos->backward) {
		if (rc == 0 && !pos->inclusive && mdb_cmp(txn, dbi, k, &want) == 0)
			rc = mdb_cursor_get(c, k, v, MDB_NEXT);
		if (rc == MDB_NOTFOUND)
			scan_end_check(txn, dbi, pos);
		return rc;
	}
	if (rc == MDB_NOTFOUND) /* every key is below want */
		return mdb_cursor_get(c, k, v, MDB_LAST);
	int cmp = rc == 0 ? mdb_cmp(txn, dbi, k, &want) : 0;
	if (rc == 0 && (cmp > 0 || (cmp == 0 && !pos->inclusive)))
		rc = mdb_cursor_get(c, k, v, MDB_PREV);
	return rc;
}

/*
 * Visit up to ST_READ_CHUNK records, the first already under the cursor.
 * Returns 0 or an st_error; sets pos->done when nothing follows.
 */
static int scan_records(MDB_txn *txn, MDB_dbi dbi, MDB_cursor *c, struct scan_pos *pos, MDB_val *k,
			MDB_val *v, scan_each_fn each, void *arg)
{
	MDB_val end = {pos->end_key_bytes, pos->end_key};
	int rc = 0; /* an LMDB code */
	for (unsigned n = 0; n < ST_READ_CHUNK; n++) {
		if (n > 0 && (rc = mdb_cursor_get(c, k, v, pos->backward ? MDB_PREV : MDB_NEXT)) != 0)
			break;
		if (k->mv_size > SCAN_KEY_BYTES_MAX)
			return ST_ERR_CORRUPT;
		if (!pos->backward && mdb_cmp(txn, dbi, k, &end) > 0) {
			rc = MDB_NOTFOUND; /* written after the scan began */
			break;
		}
		memcpy(pos->key, k->mv_data, k->mv_size);
		pos->key_bytes = k->mv_size;
		pos->from_edge = pos->inclusive = false;
		int visit = each(arg, k, v);
		if (visit < 0)
			return visit;
		if (visit == SCAN_STOP) {
			pos->done = true;
			return ST_OK;
		}
	}
	if (rc == 0)
		return ST_OK; /* a whole chunk: more, in a fresh txn */
	pos->done = true;
	if (rc == MDB_NOTFOUND && !pos->backward)
		scan_end_check(txn, dbi, pos);
	if (pos->ended_early)
		return ST_ERR_CORRUPT;
	return rc == MDB_NOTFOUND ? ST_OK : st_err(rc);
}

/* One chunk in its own short read txn. Returns 0 or an st_error; sets pos->done at the end. */
static int scan_chunk(struct st_env *e, MDB_dbi dbi, struct scan_pos *pos, scan_each_fn each, void *arg)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	int rc = txn_begin(e, MDB_RDONLY, &txn);
	if (rc != 0)
		return rc;
	rc = mdb_cursor_open(txn, dbi, &c);
	if (rc != 0) {
		txn_end(e, txn);
		return st_err(rc);
	}
	if (!pos->backward && !pos->have_end)
		rc = scan_end_mark(c, pos);
	if (rc == 0)
		rc = scan_position(txn, dbi, c, pos, &k, &v);
	if (rc == 0) {
		rc = scan_records(txn, dbi, c, pos, &k, &v, each, arg);
	} else {
		pos->done = true;
		rc = pos->ended_early ? ST_ERR_CORRUPT : rc == MDB_NOTFOUND ? ST_OK : st_err(rc);
	}
	mdb_cursor_close(c);
	txn_end(e, txn);
	return read_err(rc);
}

/* Scan dbi chunk by chunk. The number of chunks is bounded by the records present at the start. */
static int scan(struct st_env *e, MDB_dbi dbi, struct scan_pos *pos, scan_each_fn each, void *arg)
{
	if (!e->have_dbs)
		return ST_OK;
	while (!pos->done) {
		int rc = scan_chunk(e, dbi, pos, each, arg);
		if (rc != 0)
			return rc;
	}
	return ST_OK;
}

struct visit_args {
	st_visit_fn fn;
	st_validator_fn vfn;
	st_fault_fn on_fault; /* st_log_check only */
	void *arg;
	uint64_t expect; /* st_log_check: the seq that must come next */
	uint64_t faults;
	bool stopped;    /* fn or on_fault asked to stop */
};

static int log_each(void *a, const MDB_val *k, const MDB_val *v)
{
	struct visit_args *va = a;
	struct st_tap_meta meta;
	const uint8_t *record;
	uint64_t seq;
	if (k->mv_size != sizeof(seq))
		return ST_ERR_CORRUPT;
	memcpy(&seq, k->mv_data, sizeof(seq));
	int rc = value_parse(v, &meta, &record);
	if (rc != 0)
		return rc;
	return va->fn(va->arg, seq, &meta, record) != 0 ? SCAN_STOP : 0;
}

/* Report a fault to st_log_check's caller. Returns 0 to go on or SCAN_STOP. */
static int fault_report(struct visit_args *va, enum st_log_problem problem, uint64_t seq, uint64_t found_seq)
{
	struct st_log_fault f = {.problem = problem, .seq = seq, .found_seq = found_seq};
	va->faults++;
	if (va->on_fault(va->arg, &f) == 0)
		return 0;
	va->stopped = true;
	return SCAN_STOP;
}

/* st_log_check's visit: each seq in turn, each record of its size. */
static int log_check_each(void *a, const MDB_val *k, const MDB_val *v)
{
	struct visit_args *va = a;
	struct st_tap_meta meta;
	const uint8_t *record;
	uint64_t seq;
	if (k->mv_size != sizeof(seq))
		return fault_report(va, ST_LOG_SIZE, va->expect, 0);
	memcpy(&seq, k->mv_data, sizeof(seq));
	if (seq != va->expect &&
	    fault_report(va, seq > va->expect ? ST_LOG_GAP : ST_LOG_ORDER, va->expect, seq) == SCAN_STOP)
		return SCAN_STOP;
	if (seq >= va->expect)
		va->expect = seq + 1;
	if (value_parse(v, &meta, &record) != 0)
		return fault_report(va, ST_LOG_SIZE, seq, 0);
	if (va->fn(va->arg, seq, &meta, record) == 0)
		return 0;
	va->stopped = true;
	return SCAN_STOP;
}

static int quarantine_each(void *a, const MDB_val *k, const MDB_val *v)
{
	struct visit_args *va = a;
	struct st_tap_meta meta;
	const uint8_t *record;
	if (k->mv_size != QUARANTINE_KEY_BYTES)
		return ST_ERR_CORRUPT;
	int rc = value_parse(v, &meta, &record);
	if (rc != 0)
		return rc;
	return va->fn(va->arg, 0, &meta, record) != 0 ? SCAN_STOP : 0;
}

static int validator_each(void *a, const MDB_val *k, const MDB_val *v)
{
	struct visit_args *va = a;
	struct st_validator_state s;
	if (k->mv_size != sizeof(unsigned int) || v->mv_size != sizeof(s))
		return ST_ERR_CORRUPT;
	memcpy(&s, v->mv_data, sizeof(s));
	return va->vfn(va->arg, &s) != 0 ? SCAN_STOP : 0;
}

int st_log_scan(struct st_env *e, uint64_t from_seq, bool backward, st_visit_fn fn, void *arg)
{
	struct visit_args va = {.fn = fn, .arg = arg};
	struct scan_pos pos = {.key_bytes = sizeof(from_seq), .inclusive = true, .backward = backward};
	memcpy(pos.key, &from_seq, sizeof(from_seq));
	return read_err(scan(e, e->log, &pos, log_each, &va));
}

/*
 * The walk ended (not stopped): it must have reached the last seq it saw
 * when it began, and that seq must be the number of records.
 */
static void log_check_end(struct visit_args *va, const struct scan_pos *pos)
{
	uint64_t end_seq = 0;
	if (pos->have_end && pos->end_key_bytes == sizeof(end_seq))
		memcpy(&end_seq, pos->end_key, sizeof(end_seq));
	if (va->expect <= end_seq && fault_report(va, ST_LOG_ENDED, va->expect, end_seq) == SCAN_STOP)
		return;
	if (end_seq != pos->end_entries)
		fault_report(va, ST_LOG_COUNTS, end_seq, pos->end_entries);
}

int st_log_check(struct st_env *e, uint64_t from_seq, st_visit_fn fn, st_fault_fn on_fault, void *arg)
{
	from_seq = from_seq == 0 ? 1 : from_seq;
	struct visit_args va = {.fn = fn, .on_fault = on_fault, .arg = arg, .expect = from_seq};
	struct scan_pos pos = {.key_bytes = sizeof(from_seq), .inclusive = true};
	memcpy(pos.key, &from_seq, sizeof(from_seq));
	int rc = scan(e, e->log, &pos, log_check_each, &va);
	if (rc == ST_ERR_CORRUPT && !pos.ended_early) { /* LMDB's own finding, or a key too long */
		fault_report(&va, ST_LOG_UNREADABLE, va.expect, 0);
		return ST_ERR_CORRUPT;
	}
	if (rc != 0 && rc != ST_ERR_CORRUPT)
		return read_err(rc);
	if (!va.stopped)
		log_check_end(&va, &pos); /* an early end is reported here */
	return va.faults ? ST_ERR_CORRUPT : ST_OK;
}

const char *st_log_fault_text(const struct st_log_fault *f, char *buf, size_t cap)
{
	unsigned long long seq = f->seq, found = f->found_seq;
	switch (f->problem) {
	case ST_LOG_GAP:
		snprintf(buf, cap, "seq %llu: missing from the log (a gap: seq %llu came next)", seq, found);
		break;
	case ST_LOG_ORDER:
		snprintf(buf, cap, "seq %llu: missing from the log (seq %llu came in its place, out of order)", seq, found);
		break;
	case ST_LOG_SIZE:
		snprintf(buf, cap, "seq %llu: record of the wrong size (not what its meta block says)", seq);
		break;
	case ST_LOG_ENDED:
		snprintf(buf, cap, "seq %llu: the log ends here, but its last seq is %llu (pages lost)", seq, found);
		break;
	case ST_LOG_UNREADABLE:
		snprintf(buf, cap, "seq %llu: the log cannot be read on from here (its pages are damaged)", seq);
		break;
	case ST_LOG_COUNTS:
		snprintf(buf, cap, "seq %llu: the last seq, but the log holds %llu records (counts disagree)", seq, found);
		break;
	default:
		snprintf(buf, cap, "seq %llu: unknown log fault %d", seq, (int)f->problem);
		break;
	}
	return buf;
}

/* One log record in an open read txn. Returns what st_log_get returns. */
static int log_get_in(struct st_env *e, MDB_txn *txn, uint64_t seq, struct st_tap_meta *meta,
		      uint8_t record[ST_RECORD_BYTES_MAX])
{
	MDB_val k = {.mv_size = sizeof(seq), .mv_data = &seq}, v;
	const uint8_t *rec;
	int rc = mdb_get(txn, e->log, &k, &v);
	if (rc == 0 && (rc = value_parse(&v, meta, &rec)) == 0)
		memcpy(record, rec, meta->record_len);
	else if (rc == MDB_NOTFOUND)
		rc = ST_ERR_NOTFOUND;
	else if (rc > 0)
		rc = st_err(rc);
	return rc == ST_ERR_NOTFOUND ? rc : read_err(rc);
}

int st_log_get(struct st_env *e, uint64_t seq, struct st_tap_meta *meta, uint8_t record[ST_RECORD_BYTES_MAX])
{
	MDB_txn *txn;
	if (!e->have_dbs)
		return ST_ERR_NOTFOUND;
	int rc = txn_begin(e, MDB_RDONLY, &txn);
	if (rc != 0)
		return read_err(rc);
	rc = log_get_in(e, txn, seq, meta, record);
	txn_end(e, txn);
	return rc;
}

struct st_reader {
	struct st_env *e;
	MDB_txn *txn; /* NULL between chunks */
	unsigned gets;
};

int st_reader_open(struct st_env *e, struct st_reader **out)
{
	struct st_reader *r = calloc(1, sizeof(*r));
	if (!r)
		return ST_ERR_IO;
	r->e = e;
	*out = r;
	return ST_OK;
}

int st_reader_get(struct st_reader *r, uint64_t seq, struct st_tap_meta *meta, uint8_t record[ST_RECORD_BYTES_MAX])
{
	struct st_env *e = r->e;
	if (!e->have_dbs)
		return ST_ERR_NOTFOUND;
	if (r->txn && r->gets >= ST_READ_CHUNK) { /* keep read transactions short */
		txn_end(e, r->txn);
		r->txn = NULL;
	}
	if (!r->txn) {
		int rc = txn_begin(e, MDB_RDONLY, &r->txn);
		if (rc != 0) {
			r->txn = NULL;
			return read_err(rc);
		}
		r->gets = 0;
	}
	r->gets++;
	return log_get_in(e, r->txn, seq, meta, record);
}

void st_reader_close(struct st_reader *r)
{
	if (!r)
		return;
	if (r->txn)
		txn_end(r->e, r->txn);
	free(r);
}

int st_quarantine_scan(struct st_env *e, st_visit_fn fn, void *arg)
{
	struct visit_args va = {.fn = fn, .arg = arg};
	struct scan_pos pos = {.from_edge = true};
	return read_err(scan(e, e->quarantine, &pos, quarantine_each, &va));
}

int st_validator_scan(struct st_env *e, st_validator_fn fn, void *arg)
{
	struct visit_args va = {.vfn = fn, .arg = arg};
	struct scan_pos pos = {.from_edge = true};
	return read_err(scan(e, e->validators, &pos, validator_each, &va));
}

/* Returns 0, ST_ERR_READERS, ST_ERR_IO, ST_ERR_CORRUPT. */
int st_counts(struct st_env *e, struct st_counts *out)
{
	MDB_txn *txn;
	MDB_stat st;
	MDB_envinfo info;
	memset(out, 0, sizeof(*out));
	int rc = txn_begin(e, MDB_RDONLY, &txn); /* also keeps the map still for env_info */
	if (rc != 0)
		return read_err(rc);
	mdb_env_info(e->env, &info);
	mdb_env_stat(e->env, &st);
	out->map_size_bytes = info.me_mapsize;
	out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
	if (e->have_dbs) {
		if ((rc = mdb_stat(txn, e->log, &st)) == 0)
			out->log_taps = st.ms_entries;
		if (rc == 0 && (rc = mdb_stat(txn, e->quarantine, &st)) == 0)
			out->quarantine = st.ms_entries;
		if (rc == 0 && (rc = mdb_stat(txn, e->validators, &st)) == 0)
			out->validators = st.ms_entries;
		if (rc == 0 && e->have_forged && (rc = mdb_stat(txn, e->qr_forged, &st)) == 0)
			out->qr_forged = st.ms_entries;
		rc = rc == 0 ? log_last_seq(e, txn, &out->last_seq) : st_err(rc);
		if (rc == 0)
			rc = frontier_get(e, txn, &out->qr_frontier);
	}
	txn_end(e, txn);
	return read_err(rc);
}

/* ------------------------------------------------------------ QR verdicts */

/* The frontier in an open txn: the key, or the whole log when there is none. Returns an st_error. */
static int frontier_get(struct st_env *e, MDB_txn *txn, uint64_t *seq)
{
	MDB_val k = {sizeof(FRONTIER_KEY) - 1, FRONTIER_KEY}, v;
	int rc = e->have_dbs ? mdb_get(txn, e->meta, &k, &v) : MDB_NOTFOUND;
	if (rc == MDB_NOTFOUND)
		return log_last_seq(e, txn, seq);
	if (rc != 0)
		return st_err(rc);
	if (v.mv_size != sizeof(*seq))
		return ST_ERR_CORRUPT;
	memcpy(seq, v.mv_data, sizeof(*seq));
	return ST_OK;
}

int st_qr_frontier(struct st_env *e, uint64_t *seq)
{
	MDB_txn *txn;
	*seq = 0;
	int rc = txn_begin(e, MDB_RDONLY, &txn);
	if (rc != 0)
		return read_err(rc);
	rc = frontier_get(e, txn, seq);
	txn_end(e, txn);
	return read_err(rc);
}

/* One verdict commit's transaction. Returns an LMDB code, or ST_ERR_INVALID. */
static int verdicts_put(struct st_env *e, MDB_txn *txn, uint64_t frontier, const struct st_qr_forged *forged,
			size_t n)
{
	uint64_t before = 0;
	int rc = frontier_get(e, txn, &before);
	if (rc != 0)
		return MDB_CORRUPTED;
	TG_ASSERT(frontier >= before); /* the verifier only moves forward */
	for (size_t i = 0; i < n; i++) {
		/* every forged tap is in the log, beyond the frontier: found by walking it */
		TG_ASSERT(forged[i].seq > before && forged[i].seq <= frontier);
		MDB_val k = {sizeof(forged[i].seq), (void *)&forged[i].seq};
		struct st_wtxn t = {.env = e, .txn = txn};
		if ((rc = value_put(&t, e->qr_forged, &k, &forged[i].meta, forged[i].record, 0)) != 0)
			return rc;
	}
	MDB_val k = {sizeof(FRONTIER_KEY) - 1, FRONTIER_KEY}, v = {sizeof(frontier), &frontier};
	return mdb_put(txn, e->meta, &k, &v, 0);
}

/*
 * Its own write txn, beside the writer's: LMDB lets one write txn live at a
 * time and makes the other thread wait in mdb_txn_begin, so the caller
 * batches (one commit, one fsync, per few thousand verdicts). On MAP_FULL the
 * map is doubled here (map_resize waits for every txn of the process to end,
 * the writer's too) and the txn done again.
 */
int st_qr_verdicts_commit(struct st_env *e, uint64_t frontier, const struct st_qr_forged *forged, size_t n)
{
	TG_ASSERT(!e->read_only && e->have_dbs && e->have_forged);
	for (unsigned grows = 0;; grows++) {
		MDB_txn *txn;
		int rc = txn_begin(e, 0, &txn);
		if (rc != 0)
			return ST_ERR_IO;
		rc = verdicts_put(e, txn, frontier, forged, n);
		if (rc == 0) {
			rc = mdb_txn_commit(txn);
			txn = NULL;
		}
		txn_end(e, txn);
		if (rc != MDB_MAP_FULL || grows == VERDICT_GROWS_MAX)
			return write_err(rc);
		uint64_t now_bytes = atomic_load_explicit(&e->map_size_bytes, memory_order_relaxed);
		if (now_bytes >= MAP_BYTES_MAX || map_resize(e, now_bytes * 2 < MAP_BYTES_MAX ? now_bytes * 2
											 : MAP_BYTES_MAX) != 0)
			return ST_ERR_MAP_FULL;
	}
}

int st_qr_frontier_put(struct st_wtxn *t, uint64_t seq)
{
	struct st_env *e = t->env;
	TG_ASSERT(e->have_forged);
	MDB_val k = {sizeof(FRONTIER_KEY) - 1, FRONTIER_KEY}, v = {sizeof(seq), &seq};
	return write_err(mdb_put(t->txn, e->meta, &k, &v, 0));
}

int st_qr_forged_scan(struct st_env *e, uint64_t from_seq, st_visit_fn fn, void *arg)
{
	if (!e->have_forged)
		return ST_OK;
	struct visit_args va = {.fn = fn, .arg = arg};
	struct scan_pos pos = {.key_bytes = sizeof(from_seq), .inclusive = true};
	memcpy(pos.key, &from_seq, sizeof(from_seq));
	return read_err(scan(e, e->qr_forged, &pos, log_each, &va));
}

/* ------------------------------------------- the other environments' maps */

int st_mdb_map_open(MDB_env *env, uint64_t initial_bytes, bool read_only)
{
	MDB_envinfo info;
	MDB_stat st;
	if (read_only)
		return 0;
	int rc = mdb_env_info(env, &info);
	if (rc == 0)
		rc = mdb_env_stat(env, &st);
	if (rc != 0)
		return rc;
	uint64_t used_bytes = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize, want_bytes = initial_bytes;
	if (want_bytes < 2 * used_bytes)
		want_bytes = 2 * used_bytes; /* room for a transaction as large as the store */
	if (want_bytes > ST_MDB_MAP_BYTES_MAX)
		want_bytes = ST_MDB_MAP_BYTES_MAX;
	return want_bytes > info.me_mapsize ? mdb_env_set_mapsize(env, (size_t)want_bytes) : 0;
}

int st_mdb_txn_begin(MDB_env *env, unsigned flags, MDB_txn **txn)
{
	int rc = 0;
	for (unsigned attempt = 0; attempt <= MAP_RESIZED_RETRIES_MAX; attempt++) {
		rc = mdb_txn_begin(env, NULL, flags, txn);
		if (rc != MDB_MAP_RESIZED)
			return rc;
		if ((rc = mdb_env_set_mapsize(env, 0)) != 0) /* 0: the size the file records now */
			return rc;
	}
	return rc;
}

int st_mdb_grow(MDB_env *env, uint64_t *now_bytes)
{
	MDB_envinfo info;
	int rc = mdb_env_info(env, &info);
	if (rc != 0)
		return rc;
	if (info.me_mapsize >= ST_MDB_MAP_BYTES_MAX)
		return MDB_MAP_FULL;
	uint64_t want_bytes = 2 * (uint64_t)info.me_mapsize;
	want_bytes = want_bytes < ST_MDB_MAP_BYTES_MAX ? want_bytes : ST_MDB_MAP_BYTES_MAX;
	if ((rc = mdb_env_set_mapsize(env, (size_t)want_bytes)) == 0 && now_bytes)
		*now_bytes = want_bytes;
	return rc;
}

bool st_mdb_why(const char *dir, int rc, char *why, size_t cap)
{
	struct statvfs fs;
	if (rc == EIO && statvfs(dir, &fs) == 0 && (uint64_t)fs.f_bavail * fs.f_frsize < ST_DISK_FULL_BYTES)
		rc = ENOSPC;
	bool full = rc == ENOSPC || rc == EDQUOT || rc == MDB_MAP_FULL;
	snprintf(why, cap, "%s%s", mdb_strerror(rc), full ? " (free space and run again: what failed was not recorded)" : "");
	return full;
}
