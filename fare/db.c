/*
 * db.c - the rated store: an LMDB environment of the settlement side,
 * separate from the gateway's hot store (fare/db.h lists its databases).
 *
 * Runs write with MDB_NOSYNC and sync the environment once before their last
 * transaction commits the cursor, so a run is durable as a whole and a crash
 * leaves either the previous state or (for days being written) marks that
 * the next run undoes first.
 */
#include "fare/db.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RATED_MAP_BYTES (1ull << 36) /* 64 GiB of address space (a sparse file) */
#define RATED_DBS 10u

int fare_db_open(struct fare_db **out, const char *path, bool read_only, char *err, size_t err_len)
{
	struct fare_db *db = calloc(1, sizeof(*db));
	MDB_txn *txn = NULL;
	int rc;
	*out = NULL;
	if (!db)
		return FARE_ERR_NOMEM;
	db->read_only = read_only;
	if (!read_only && mkdir(path, 0750) != 0 && errno != EEXIST) {
		snprintf(err, err_len, "%s: cannot create: %s", path, strerror(errno));
		free(db);
		return FARE_ERR_STORE;
	}
	if ((rc = mdb_env_create(&db->env)) == 0 && (rc = mdb_env_set_maxdbs(db->env, RATED_DBS)) == 0 &&
	    (rc = mdb_env_set_mapsize(db->env, RATED_MAP_BYTES)) == 0)
		rc = mdb_env_open(db->env, path, MDB_NOSYNC | MDB_NOTLS | (read_only ? MDB_RDONLY : MDB_WRITEMAP), 0640);
	if (rc == 0)
		rc = mdb_txn_begin(db->env, NULL, read_only ? MDB_RDONLY : 0, &txn);
	unsigned create = read_only ? 0 : MDB_CREATE;
	struct { const char *name; MDB_dbi *dbi; } dbs[] = {
		{"meta", &db->meta}, {"feeds", &db->feeds}, {"legs", &db->legs}, {"audit", &db->audit},
		{"days", &db->days}, {"daymin", &db->daymin}, {"promos", &db->promos}, {"weeks", &db->weeks},
		{"cards", &db->cards},
	};
	for (size_t i = 0; rc == 0 && i < sizeof(dbs) / sizeof(dbs[0]); i++)
		rc = mdb_dbi_open(txn, dbs[i].name, create, dbs[i].dbi);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else if (txn)
		mdb_txn_abort(txn);
	if (rc != 0) {
		snprintf(err, err_len, "%s: rated store: %s%s", path, mdb_strerror(rc),
			 rc == MDB_NOTFOUND ? " (nothing rated yet)" : "");
		if (db->env)
			mdb_env_close(db->env);
		free(db);
		return FARE_ERR_STORE;
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
		return FARE_ERR_STORE;
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
	return fare_feed_load_files(out, label, files, n, err, err_len);
}
