/*
 * reader.c - the deny list's read side: the change log and the version of
 * the settle store's deny list (deny.h has the layout), read with short
 * read-only transactions. The gateway's refresher calls it once a second
 * while tapsettle may be writing; settle/ calls deny_log_read and
 * deny_log_version on its own transactions.
 */
#include "deny/deny.h"
#include "base/assert.h"
#include "store/store.h"

#include <assert.h>
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static_assert(sizeof(struct deny_change) == 16, "a change is stored as its bytes: its size is the format");

#define DENY_PATH_MAX 512u
#define DENY_MAXDBS 8u /* as the settle store opens its environment */

struct deny_reader {
	MDB_env *env;
	MDB_dbi meta, log;
	char path[DENY_PATH_MAX]; /* for messages */
};

const char *deny_strerror(int err)
{
	switch (err) {
	case 0: return "ok";
	case DENY_ERR_ABSENT: return "no settle store yet";
	case DENY_ERR_STORE: return "settle store cannot be read";
	case DENY_ERR_NOMEM: return "out of memory";
	default: return "unknown deny-list error";
	}
}

uint32_t deny_log_version(MDB_txn *txn, unsigned meta_dbi)
{
	MDB_val k = {.mv_size = strlen(DENY_META_VERSION), .mv_data = DENY_META_VERSION}, v;
	uint32_t version = 0;
	if (mdb_get(txn, meta_dbi, &k, &v) == 0 && v.mv_size == sizeof(version))
		memcpy(&version, v.mv_data, sizeof(version));
	return version;
}

int deny_log_read(MDB_txn *txn, unsigned log_dbi, uint32_t since, deny_change_fn fn, void *arg)
{
	uint8_t first[DENY_VERSION_KEY_BYTES];
	deny_version_key(first, since + 1);
	MDB_val k = {.mv_size = sizeof(first), .mv_data = first}, v;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, log_dbi, &cur);
	if (rc != 0)
		return rc;
	int stop = 0;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && !stop;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct deny_change ch;
		if (v.mv_size != sizeof(ch) || k.mv_size != DENY_VERSION_KEY_BYTES)
			continue; /* not a change this layout knows: skipped, as settle always has */
		memcpy(&ch, v.mv_data, sizeof(ch));
		stop = fn(arg, deny_version_of_key(k.mv_data), &ch);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int reader_fail(struct deny_reader *r, char *err, size_t err_len, const char *what, int rc)
{
	char why[160];
	TG_ASSERT(rc != 0); /* a failure is never "ok" */
	st_mdb_why(r->path, rc, why, sizeof(why));
	snprintf(err, err_len, "settle store %s: %s: %s", r->path, what, why);
	return rc == ENOMEM ? DENY_ERR_NOMEM : DENY_ERR_STORE;
}

/* Open the environment read only and the two databases this module reads. Returns 0 or an LMDB error. */
static int env_open(struct deny_reader *r)
{
	MDB_txn *txn;
	int rc;
	if ((rc = mdb_env_create(&r->env)) != 0 || (rc = mdb_env_set_maxdbs(r->env, DENY_MAXDBS)) != 0 ||
	    (rc = mdb_env_open(r->env, r->path, MDB_RDONLY, 0640)) != 0 ||
	    (rc = st_mdb_txn_begin(r->env, MDB_RDONLY, &txn)) != 0)
		return rc;
	if ((rc = mdb_dbi_open(txn, DENY_DBI_META, 0, &r->meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, DENY_DBI_LOG, 0, &r->log)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn); /* keeps the handles for the transactions to come */
}

int deny_reader_open(struct deny_reader **out, const char *settle_path, char *err, size_t err_len)
{
	char data[DENY_PATH_MAX + 16];
	struct stat st;
	snprintf(data, sizeof(data), "%s/data.mdb", settle_path);
	if (stat(data, &st) != 0)
		return DENY_ERR_ABSENT; /* no settlement yet */
	struct deny_reader *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, err_len, "settle store %s: %s", settle_path, deny_strerror(DENY_ERR_NOMEM));
		return DENY_ERR_NOMEM;
	}
	snprintf(r->path, sizeof(r->path), "%s", settle_path);
	int rc = env_open(r);
	if (rc != 0) {
		rc = reader_fail(r, err, err_len, "cannot open", rc);
		if (r->env)
			mdb_env_close(r->env);
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int deny_reader_changes(struct deny_reader *r, uint32_t since, deny_change_fn fn, void *arg, uint32_t *version,
			char *err, size_t err_len)
{
	MDB_txn *txn;
	int rc = st_mdb_txn_begin(r->env, MDB_RDONLY, &txn);
	if (rc != 0)
		return reader_fail(r, err, err_len, "beginning a transaction", rc);
	*version = deny_log_version(txn, r->meta);
	rc = deny_log_read(txn, r->log, since, fn, arg);
	mdb_txn_abort(txn);
	return rc == 0 ? 0 : reader_fail(r, err, err_len, "deny list", rc);
}

void deny_reader_close(struct deny_reader *r)
{
	if (!r)
		return;
	mdb_env_close(r->env);
	free(r);
}
