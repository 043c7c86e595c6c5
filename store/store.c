/*
 * store.c - the gateway's LMDB environment: tap log, quarantine, validators.
 *
 * The log is append-only by commit sequence (MDB_APPEND into an
 * MDB_INTEGERKEY database), because sequence-keyed appends are an order of
 * magnitude faster than random-key inserts into a synced B-tree. Values are
 * struct st_tap_meta followed by the record's bytes, copied with memcpy
 * (LMDB does not align values). Readers scan in chunks of ST_READ_CHUNK
 * records per read transaction, so a reader never pins old pages for long
 * while the writer goes on. All LMDB and errno codes are mapped to the
 * module's own negative codes (st_strerror).
 */
#include "store/store.h"

#include <assert.h>
#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static_assert(sizeof(struct st_tap_meta) == ST_META_BYTES, "st_tap_meta is 56 bytes");
static_assert(sizeof(size_t) == sizeof(uint64_t), "log keys are native 64-bit integers");

#define VALUE_BYTES_MAX (ST_META_BYTES + ST_RECORD_BYTES_MAX)

struct st_wtxn {
	struct st_env *env;
	MDB_txn *txn;
	uint8_t value[VALUE_BYTES_MAX];
};

struct st_env {
	MDB_env *env;
	MDB_dbi log, quarantine, validators, meta;
	bool read_only, have_dbs;
	uint64_t map_size_bytes;
	struct st_wtxn wtxn; /* the one write txn: no allocation per batch */
};

const char *st_strerror(int err)
{
	switch (err) {
	case ST_OK: return "ok";
	case ST_ERR_MAP_FULL: return "store map full";
	case ST_ERR_IO: return "store I/O error (disk full or failing)";
	case ST_ERR_SCHEMA: return "store written by another schema version";
	case ST_ERR_CORRUPT: return "store record of the wrong size";
	case ST_ERR_EXISTS: return "already stored";
	case ST_ERR_NOTFOUND: return "not found";
	case ST_ERR_OPEN: return "store cannot be opened";
	case ST_ERR_INVALID: return "invalid argument";
	case ST_ERR_READERS: return "too many store readers";
	default: return "unknown store error";
	}
}

/* Map an LMDB or errno code to ours. */
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
	default: return ST_ERR_IO;
	}
}

/* Begin a txn, following a map grown by another process. */
static int txn_begin(struct st_env *e, unsigned flags, MDB_txn **txn)
{
	int rc = mdb_txn_begin(e->env, NULL, flags, txn);
	if (rc == MDB_MAP_RESIZED) {
		mdb_env_set_mapsize(e->env, 0);
		rc = mdb_txn_begin(e->env, NULL, flags, txn);
	}
	return rc;
}

static int dbs_open(struct st_env *e)
{
	MDB_txn *txn;
	unsigned create = e->read_only ? 0 : MDB_CREATE;
	int rc = txn_begin(e, e->read_only ? MDB_RDONLY : 0, &txn);
	if (rc != 0)
		return st_err(rc);
	rc = mdb_dbi_open(txn, "log", create | MDB_INTEGERKEY, &e->log);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "quarantine", create, &e->quarantine);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "validators", create | MDB_INTEGERKEY, &e->validators);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "meta", create, &e->meta);
	if (rc == MDB_NOTFOUND && e->read_only) { /* a store no gateway has written yet */
		mdb_txn_abort(txn);
		return ST_OK;
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return st_err(rc);
	}
	MDB_val k = {14, "schema_version"}, v;
	uint32_t version = ST_SCHEMA_VERSION;
	rc = mdb_get(txn, e->meta, &k, &v);
	if (rc == MDB_NOTFOUND && !e->read_only) {
		v = (MDB_val){sizeof(version), &version};
		rc = mdb_put(txn, e->meta, &k, &v, 0);
	} else if (rc == 0) {
		uint32_t stored = 0;
		memcpy(&stored, v.mv_data, v.mv_size < sizeof(stored) ? v.mv_size : sizeof(stored));
		if (v.mv_size != sizeof(stored) || stored != ST_SCHEMA_VERSION) {
			mdb_txn_abort(txn);
			return ST_ERR_SCHEMA;
		}
	}
	rc = rc == 0 || rc == MDB_NOTFOUND ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
	if (rc == 0)
		e->have_dbs = true;
	return st_err(rc);
}

int st_env_open(struct st_env **out, const struct st_options *opt)
{
	struct st_env *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return ST_ERR_IO;
	e->read_only = opt->read_only;
	if (!opt->read_only && mkdir(opt->path, 0750) != 0 && errno != EEXIST)
		goto out_free;
	unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
	if (opt->read_only)
		flags |= MDB_RDONLY;
	else if (opt->sync == ST_SYNC_NOMETASYNC)
		flags |= MDB_NOMETASYNC;
	else if (opt->sync == ST_SYNC_NONE)
		flags |= MDB_NOSYNC;
	if (mdb_env_create(&e->env) != 0)
		goto out_free;
	mdb_env_set_maxdbs(e->env, 8);
	mdb_env_set_maxreaders(e->env, 126);
	if (!opt->read_only && opt->map_size_bytes)
		mdb_env_set_mapsize(e->env, opt->map_size_bytes);
	if (mdb_env_open(e->env, opt->path, flags, 0640) != 0)
		goto out_close_env;
	MDB_envinfo info;
	mdb_env_info(e->env, &info);
	e->map_size_bytes = info.me_mapsize;
	int rc = dbs_open(e);
	if (rc != 0) {
		mdb_env_close(e->env);
		free(e);
		return rc;
	}
	*out = e;
	return ST_OK;
out_close_env:
	mdb_env_close(e->env);
out_free:
	free(e);
	return ST_ERR_OPEN;
}

void st_env_close(struct st_env *e)
{
	if (e == NULL)
		return;
	mdb_env_close(e->env);
	free(e);
}

int st_env_grow(struct st_env *e)
{
	uint64_t size = e->map_size_bytes * 2;
	int rc = mdb_env_set_mapsize(e->env, size);
	if (rc != 0)
		return ST_ERR_IO;
	MDB_envinfo info;
	mdb_env_info(e->env, &info);
	e->map_size_bytes = info.me_mapsize;
	return ST_OK;
}

uint64_t st_env_map_size(const struct st_env *e)
{
	return e->map_size_bytes;
}

/* The last key of an integer-keyed db, or 0 when empty. */
static int last_key(struct st_env *e, MDB_txn *txn, uint64_t *seq)
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
	if (rc == 0)
		memcpy(seq, k.mv_data, sizeof(*seq));
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? ST_OK : st_err(rc);
}

int st_log_next_seq(struct st_env *e, uint64_t *seq)
{
	MDB_txn *txn;
	int rc = txn_begin(e, MDB_RDONLY, &txn);
	if (rc != 0)
		return st_err(rc);
	rc = last_key(e, txn, seq);
	mdb_txn_abort(txn);
	*seq += 1;
	return rc;
}

/* ---------------------------------------------------------------- writing */

int st_wtxn_begin(struct st_env *e, struct st_wtxn **out)
{
	struct st_wtxn *t = &e->wtxn;
	assert(t->txn == NULL); /* one writer, one write txn at a time */
	int rc = txn_begin(e, 0, &t->txn);
	if (rc != 0) {
		t->txn = NULL;
		return st_err(rc);
	}
	t->env = e;
	*out = t;
	return ST_OK;
}

/* meta + record into the txn's value buffer. Returns the value's length or 0. */
static size_t value_build(struct st_wtxn *t, const struct st_tap_meta *meta, const void *record)
{
	if (meta->record_len == 0 || meta->record_len > ST_RECORD_BYTES_MAX)
		return 0;
	memcpy(t->value, meta, ST_META_BYTES);
	memcpy(t->value + ST_META_BYTES, record, meta->record_len);
	return ST_META_BYTES + meta->record_len;
}

int st_log_append(struct st_wtxn *t, uint64_t seq, const struct st_tap_meta *meta, const void *record)
{
	size_t len = value_build(t, meta, record);
	if (len == 0)
		return ST_ERR_INVALID;
	MDB_val k = {sizeof(seq), &seq}, v = {len, t->value};
	int rc = mdb_put(t->txn, t->env->log, &k, &v, MDB_APPEND);
	return rc == MDB_KEYEXIST ? ST_ERR_INVALID : st_err(rc);
}

int st_quarantine_put(struct st_wtxn *t, const struct st_tap_meta *meta, const void *record)
{
	size_t len = value_build(t, meta, record);
	if (len == 0)
		return ST_ERR_INVALID;
	uint64_t key[3] = {meta->id_lo, meta->id_hi, meta->content_hash};
	MDB_val k = {sizeof(key), key}, v = {len, t->value};
	return st_err(mdb_put(t->txn, t->env->quarantine, &k, &v, MDB_NOOVERWRITE));
}

int st_validator_put(struct st_wtxn *t, const struct st_validator_state *s)
{
	unsigned id = s->validator_id;
	MDB_val k = {sizeof(id), &id}, v = {sizeof(*s), (void *)s};
	return st_err(mdb_put(t->txn, t->env->validators, &k, &v, 0));
}

int st_wtxn_commit(struct st_wtxn *t)
{
	int rc = mdb_txn_commit(t->txn);
	t->txn = NULL;
	return st_err(rc);
}

void st_wtxn_abort(struct st_wtxn *t)
{
	mdb_txn_abort(t->txn);
	t->txn = NULL;
}

/* ---------------------------------------------------------------- reading */

/* Decode one value; returns ST_ERR_CORRUPT on a size that does not add up. */
static int value_parse(const MDB_val *v, struct st_tap_meta *meta, const uint8_t **record)
{
	if (v->mv_size < ST_META_BYTES)
		return ST_ERR_CORRUPT;
	memcpy(meta, v->mv_data, ST_META_BYTES);
	if (v->mv_size != ST_META_BYTES + (size_t)meta->record_len)
		return ST_ERR_CORRUPT;
	*record = (const uint8_t *)v->mv_data + ST_META_BYTES;
	return ST_OK;
}

/*
 * One chunk of a log scan in its own read txn. *next is where to start and,
 * on return, where the next chunk starts; *done is set at the end.
 */
static int log_chunk(struct st_env *e, uint64_t *next, bool backward, st_visit_fn fn, void *arg,
		     bool *done)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k = {sizeof(*next), next}, v;
	int rc = txn_begin(e, MDB_RDONLY, &txn);
	if (rc != 0)
		return st_err(rc);
	if ((rc = mdb_cursor_open(txn, e->log, &c)) != 0) {
		mdb_txn_abort(txn);
		return st_err(rc);
	}
	uint64_t start = *next;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (backward && rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	else if (backward && rc == 0) {
		uint64_t found;
		memcpy(&found, k.mv_data, sizeof(found));
		if (found > start)
			rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
	}
	*done = true;
	for (unsigned n = 0; rc == 0 && n < ST_READ_CHUNK; n++) {
		struct st_tap_meta meta;
		const uint8_t *record;
		uint64_t seq;
		memcpy(&seq, k.mv_data, sizeof(seq));
		if ((rc = value_parse(&v, &meta, &record)) != 0)
			break;
		if (fn(arg, seq, &meta, record) != 0)
			break;
		if (backward && seq == 1)
			break;
		*next = backward ? seq - 1 : seq + 1;
		rc = mdb_cursor_get(c, &k, &v, backward ? MDB_PREV : MDB_NEXT);
		if (n + 1 == ST_READ_CHUNK && rc == 0)
			*done = false;
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return rc == MDB_NOTFOUND ? ST_OK : (rc > 0 ? st_err(rc) : rc);
}

int st_log_scan(struct st_env *e, uint64_t from_seq, bool backward, st_visit_fn fn, void *arg)
{
	if (!e->have_dbs)
		return ST_OK;
	uint64_t next = from_seq;
	if (backward && from_seq == UINT64_MAX) {
		MDB_txn *txn;
		int rc = txn_begin(e, MDB_RDONLY, &txn);
		if (rc != 0)
			return st_err(rc);
		rc = last_key(e, txn, &next);
		mdb_txn_abort(txn);
		if (rc != 0 || next == 0)
			return rc;
	}
	bool done = false;
	while (!done) {
		int rc = log_chunk(e, &next, backward, fn, arg, &done);
		if (rc != 0)
			return rc;
	}
	return ST_OK;
}

/* Visit a whole small db (quarantine, validators) in one short read txn. */
static int db_scan(struct st_env *e, MDB_dbi dbi, int (*each)(void *, const MDB_val *), void *arg)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	if (!e->have_dbs)
		return ST_OK;
	int rc = txn_begin(e, MDB_RDONLY, &txn);
	if (rc != 0)
		return st_err(rc);
	if ((rc = mdb_cursor_open(txn, dbi, &c)) != 0) {
		mdb_txn_abort(txn);
		return st_err(rc);
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
		if ((rc = each(arg, &v)) != 0)
			break;
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (rc == MDB_NOTFOUND || rc == 1)
		return ST_OK;
	return rc < 0 ? rc : st_err(rc);
}

struct visit_args {
	st_visit_fn fn;
	st_validator_fn vfn;
	void *arg;
};

static int quarantine_each(void *a, const MDB_val *v)
{
	struct visit_args *va = a;
	struct st_tap_meta meta;
	const uint8_t *record;
	int rc = value_parse(v, &meta, &record);
	if (rc != 0)
		return rc;
	return va->fn(va->arg, 0, &meta, record) != 0 ? 1 : 0;
}

static int validator_each(void *a, const MDB_val *v)
{
	struct visit_args *va = a;
	struct st_validator_state s;
	if (v->mv_size != sizeof(s))
		return ST_ERR_CORRUPT;
	memcpy(&s, v->mv_data, sizeof(s));
	return va->vfn(va->arg, &s) != 0 ? 1 : 0;
}

int st_quarantine_scan(struct st_env *e, st_visit_fn fn, void *arg)
{
	struct visit_args va = {.fn = fn, .arg = arg};
	return db_scan(e, e->quarantine, quarantine_each, &va);
}

int st_validator_scan(struct st_env *e, st_validator_fn fn, void *arg)
{
	struct visit_args va = {.vfn = fn, .arg = arg};
	return db_scan(e, e->validators, validator_each, &va);
}

int st_counts(struct st_env *e, struct st_counts *out)
{
	MDB_txn *txn;
	MDB_stat st;
	MDB_envinfo info;
	memset(out, 0, sizeof(*out));
	mdb_env_info(e->env, &info);
	mdb_env_stat(e->env, &st);
	out->map_size_bytes = info.me_mapsize;
	out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
	if (!e->have_dbs)
		return ST_OK;
	int rc = txn_begin(e, MDB_RDONLY, &txn);
	if (rc != 0)
		return st_err(rc);
	if (mdb_stat(txn, e->log, &st) == 0)
		out->log_taps = st.ms_entries;
	if (mdb_stat(txn, e->quarantine, &st) == 0)
		out->quarantine = st.ms_entries;
	if (mdb_stat(txn, e->validators, &st) == 0)
		out->validators = st.ms_entries;
	rc = last_key(e, txn, &out->last_seq);
	mdb_txn_abort(txn);
	return rc;
}
