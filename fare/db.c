/*
 * db.c - the rated store: an LMDB environment of the settlement side,
 * separate from the gateway's hot store (fare/db.h lists its databases).
 *
 * Runs write with MDB_NOSYNC and sync the environment once before their last
 * transaction commits the cursor, so a run is durable as a whole and a crash
 * leaves either the previous state or (for days being written) marks that
 * the next run undoes first.
 *
 * No MDB_WRITEMAP: written through a shared map, a page the disk has no room
 * for is a SIGBUS at the store, not an error. Written with pwrite at commit,
 * a full disk is ENOSPC from the commit: the run says so, exits non-zero, and
 * the next run resumes. The map grows like the gateway's (store/store.h).
 *
 * This file is fare/'s boundary with LMDB's codes: fare_db_fail maps them to
 * the module's own (FARE_ERR_FULL, FARE_ERR_STORE) with a message naming the
 * store, and fare_db_begin/fare_db_grow are how the rest of fare/ begins a
 * transaction and grows the map.
 */
#include "fare/db.h"

#include "store/store.h"

#include "base/assert.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RATED_MAP_BYTES_INITIAL (1ull << 30) /* 1 GiB; doubled when full */
#define RATED_DBS 10u
#define RATED_SCHEMA_VERSION 1u /* docs/OPERATIONS.md section 7: a new format is a new version */

int fare_db_fail(struct fare_db *db, char *err, size_t err_len, const char *what, int rc)
{
	char why[160];
	TG_ASSERT(rc != 0); /* a failure is never "ok" */
	bool full = st_mdb_why(db->path, rc, why, sizeof(why));
	snprintf(err, err_len, "rated store %s: %s: %s", db->path, what, why);
	return full ? FARE_ERR_FULL : rc == ENOMEM ? FARE_ERR_NOMEM : FARE_ERR_STORE;
}

int fare_db_begin(struct fare_db *db, unsigned flags, MDB_txn **txn)
{
	return st_mdb_txn_begin(db->env, flags, txn);
}

int fare_db_grow(struct fare_db *db, uint64_t *now_bytes)
{
	return st_mdb_grow(db->env, now_bytes);
}

/* Open the environment and its databases, and check its format version (*found). Returns an LMDB or
 * errno code (MDB_VERSION_MISMATCH: another version). */
static int db_open_env(struct fare_db *db, const char *path, bool read_only, uint32_t *found)
{
	MDB_txn *txn = NULL;
	unsigned create = read_only ? 0 : MDB_CREATE;
	int rc = mdb_env_create(&db->env);
	if (rc == 0 && (rc = mdb_env_set_maxdbs(db->env, RATED_DBS)) == 0)
		rc = mdb_env_open(db->env, path, MDB_NOSYNC | MDB_NOTLS | (read_only ? MDB_RDONLY : 0), 0640);
	if (rc == 0)
		rc = st_mdb_map_open(db->env, RATED_MAP_BYTES_INITIAL, read_only);
	if (rc == 0)
		rc = fare_db_begin(db, read_only ? MDB_RDONLY : 0, &txn);
	struct { const char *name; MDB_dbi *dbi; } dbs[] = {
		{"meta", &db->meta}, {"feeds", &db->feeds}, {"legs", &db->legs}, {"audit", &db->audit},
		{"days", &db->days}, {"daymin", &db->daymin}, {"promos", &db->promos}, {"weeks", &db->weeks},
		{"cards", &db->cards},
	};
	for (size_t i = 0; rc == 0 && i < sizeof(dbs) / sizeof(dbs[0]); i++)
		rc = mdb_dbi_open(txn, dbs[i].name, create, dbs[i].dbi);
	if (rc == 0)
		rc = st_mdb_schema(txn, db->meta, RATED_SCHEMA_VERSION, read_only, found);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else if (txn)
		mdb_txn_abort(txn);
	return rc;
}

int fare_db_open(struct fare_db **out, const char *path, bool read_only, char *err, size_t err_len)
{
	struct fare_db *db = calloc(1, sizeof(*db));
	*out = NULL;
	if (!db)
		return FARE_ERR_NOMEM;
	db->read_only = read_only;
	snprintf(db->path, sizeof(db->path), "%s", path);
	if (!read_only && mkdir(path, 0750) != 0 && errno != EEXIST) {
		int rc = fare_db_fail(db, err, err_len, "cannot create its directory", errno);
		free(db);
		return rc;
	}
	uint32_t found = 0;
	int rc = db_open_env(db, path, read_only, &found);
	if (rc == MDB_VERSION_MISMATCH) {
		snprintf(err, err_len, "rated store %s: written in format version %u; this tapfare reads version %u "
			 "(docs/OPERATIONS.md section 7): nothing was changed", path, found, RATED_SCHEMA_VERSION);
		mdb_env_close(db->env);
		free(db);
		return FARE_ERR_STORE;
	}
	if (rc != 0) {
		int frc = fare_db_fail(db, err, err_len, rc == MDB_NOTFOUND ? "nothing rated yet" : "cannot open", rc);
		if (db->env)
			mdb_env_close(db->env);
		free(db);
		return frc;
	}
	*out = db;
	return 0;
}

void fare_db_close(struct fare_db *db)
{
	if (!db)
		return;
	mdb_env_close(db->env);
	free(db);
}

int fare_db_put_feed(struct fare_db *db, MDB_txn *txn, const struct fare_feed *f)
{
	const struct fare_file *files;
	unsigned n = fare_feed_files(f, &files);
	for (unsigned i = 0; i < n; i++) {
		uint8_t key[8 + FARE_ID_MAX];
		size_t nl = strlen(files[i].name);
		be64_put(key, f->version);
		memcpy(key + 8, files[i].name, nl);
		MDB_val k = {.mv_size = 8 + nl, .mv_data = key};
		MDB_val v = {.mv_size = files[i].len, .mv_data = (void *)files[i].data};
		int rc = mdb_put(txn, db->feeds, &k, &v, 0);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int fare_db_feed(struct fare_db *db, MDB_txn *txn, uint64_t version, struct fare_feed **out, char *err,
		 size_t err_len)
{
	struct fare_file files[FARE_FILES_MAX];
	unsigned n = 0;
	uint8_t key[8];
	MDB_cursor *c;
	MDB_val k = {.mv_size = 8, .mv_data = key}, v;
	be64_put(key, version);
	int rc = mdb_cursor_open(txn, db->feeds, &c);
	if (rc != 0)
		return fare_db_fail(db, err, err_len, "reading the feed versions", rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && n < FARE_FILES_MAX;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size <= 8 || be64_get(k.mv_data) != version || k.mv_size - 8 >= FARE_ID_MAX)
			break;
		memcpy(files[n].name, (const char *)k.mv_data + 8, k.mv_size - 8);
		files[n].name[k.mv_size - 8] = '\0';
		files[n].data = v.mv_data;
		files[n].len = v.mv_size;
		n++;
	}
	mdb_cursor_close(c);
	if (n == 0) {
		snprintf(err, err_len, "feed version %016llx is not in the rated store", (unsigned long long)version);
		return FARE_ERR_VERSION;
	}
	char label[64];
	snprintf(label, sizeof(label), "rated-store:%016llx", (unsigned long long)version);
	/* a version was stored because it rated: perhaps taken with --exclude-bad-rows, so it is read back
	 * the same way (a feed without problems loads the same either way) */
	struct fare_load_opts opts = {.exclude_bad_rows = true};
	struct fare_feed_report rep;
	rc = fare_feed_load_files_opts(out, label, files, n, &opts, &rep);
	if (rc != 0)
		snprintf(err, err_len, "%.*s", rep.text ? (int)strcspn(rep.text, "\n") : 0, rep.text ? rep.text : "");
	if (rc != 0 && !err[0])
		snprintf(err, err_len, "%s", fare_strerror(rc));
	fare_feed_report_free(&rep);
	return rc;
}
