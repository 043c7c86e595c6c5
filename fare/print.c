/*
 * print.c - legs and audit lines as text (docs/FARES.md sections 4 and 5),
 * read with short read transactions. Product and funder names come from the
 * feed version that rated each leg, kept in the rated store.
 */
#include "fare/db.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define VERSIONS_CACHED 8u

struct versions {
	uint64_t version[VERSIONS_CACHED];
	struct fare_feed *feed[VERSIONS_CACHED];
	unsigned n;
};

static const struct fare_feed *version_feed(struct fare_db *db, MDB_txn *txn, struct versions *vs, uint64_t v,
					    char *err, size_t err_len)
{
	for (unsigned i = 0; i < vs->n; i++)
		if (vs->version[i] == v)
			return vs->feed[i];
	struct fare_feed *f;
	if (vs->n == VERSIONS_CACHED || fare_db_feed(db, txn, v, &f, err, err_len) != 0)
		return NULL;
	vs->version[vs->n] = v;
	vs->feed[vs->n++] = f;
	return f;
}

static void hms(struct fare_clock *clk, uint64_t us, char out[16])
{
	uint32_t sec, date;
	unsigned wd;
	fare_clock_local(clk, us, &sec, &date, &wd);
	snprintf(out, 16, "%02u:%02u:%02u", sec / 3600, sec / 60 % 60, sec % 60);
}

static void print_leg(FILE *out, struct fare_clock *clk, const struct fare_feed *f, const struct fare_leg *l,
		      bool no_version)
{
	char token[64], t0[16], t1[16];
	fare_token_format(l->medium, l->issuer, l->token_id, token, sizeof(token));
	hms(clk, l->start_us, t0);
	hms(clk, l->end_us, t1);
	fprintf(out, "%u %s r%u #%u %s%s%s route=%u stops=%u", l->day, token, l->rev, l->leg_no, t0,
		l->ntaps > 1 ? "-" : "", l->ntaps > 1 ? t1 : "", l->route_id, l->from_stop);
	if (l->ntaps > 1)
		fprintf(out, "-%u", l->to_stop);
	fprintf(out, " product=%s nominal=%d transfer=%d concession=%d cap=%d promotion=%d subsidy=%d rider=%d",
		l->product == FARE_NONE ? "-" : fare_feed_product_id(f, l->product), l->nominal, l->transfer,
		l->concession, l->cap, l->promotion, l->subsidy, l->rider_fen);
	if (l->promotion_funder_fen)
		fprintf(out, " %s=%d", fare_feed_promotion_funder(f, l->promotion_idx), l->promotion_funder_fen);
	if (l->subsidy_funder_fen)
		fprintf(out, " %s=%d", fare_feed_subsidy_funder(f, l->subsidy_idx), l->subsidy_funder_fen);
	fprintf(out, " op%u=%d taps=%u%s%s%s%s", l->operator_id, l->operator_fen, l->ntaps,
		l->flags & FARE_LEG_INCOMPLETE ? " incomplete" : "", l->flags & FARE_LEG_NORULE ? " unrated" : "",
		l->flags & FARE_LEG_VANISHED ? " vanished" : "", l->flags & FARE_LEG_JOINED ? " joined" : "");
	if (!no_version)
		fprintf(out, " v=%016llx", (unsigned long long)l->version);
	fputc('\n', out);
}

static bool wanted(const struct fare_query *q, const uint8_t *key)
{
	if (q->day && be32_get(key) != q->day)
		return false;
	return !q->medium || (key[4] == q->medium && be32_get(key + 5) == q->issuer && be64_get(key + 9) == q->token_id);
}

int fare_legs_each(struct fare_db *db, const struct fare_query *q, fare_leg_fn fn, void *arg, char *err,
		   size_t err_len)
{
	MDB_txn *txn;
	MDB_cursor *c;
	struct versions vs = {0};
	uint8_t start[4];
	be32_put(start, q->day);
	MDB_val k = {.mv_size = 4, .mv_data = start}, v;
	int rc = fare_db_begin(db, MDB_RDONLY, &txn);
	if (rc == 0 && (rc = mdb_cursor_open(txn, db->legs, &c)) != 0)
		mdb_txn_abort(txn);
	if (rc != 0)
		return fare_db_fail(db, err, err_len, "reading the legs", rc);
	int result = 0;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && result == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct fare_leg l;
		if (k.mv_size != LEG_KEY_BYTES || v.mv_size != sizeof(l)) {
			snprintf(err, err_len, "rated store %s: a leg of the wrong size", db->path);
			result = FARE_ERR_STORE;
			break;
		}
		if (q->day && be32_get(k.mv_data) > q->day)
			break;
		if (!wanted(q, k.mv_data))
			continue;
		memcpy(&l, v.mv_data, sizeof(l));
		const struct fare_feed *f = version_feed(db, txn, &vs, l.version, err, err_len);
		result = f ? fn(arg, &l, f) : FARE_ERR_VERSION;
	}
	if (result == 0 && rc != 0 && rc != MDB_NOTFOUND) /* the walk broke off: never a short answer */
		result = fare_db_fail(db, err, err_len, "reading the legs", rc);
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	for (unsigned i = 0; i < vs.n; i++)
		fare_feed_free(vs.feed[i]);
	return result;
}

struct print_arg {
	FILE *out;
	struct fare_clock *clk;
	bool no_version, unrated_only;
};

static int print_one(void *arg, const struct fare_leg *l, const struct fare_feed *f)
{
	struct print_arg *a = arg;
	if (a->unrated_only && !(l->flags & FARE_LEG_NORULE))
		return 0;
	print_leg(a->out, a->clk, f, l, a->no_version);
	return 0;
}

int fare_print_legs(struct fare_db *db, struct fare_clock *clk, const struct fare_query *q, bool no_version,
		    FILE *out, char *err, size_t err_len)
{
	struct print_arg a = {.out = out, .clk = clk, .no_version = no_version, .unrated_only = q->unrated_only};
	return fare_legs_each(db, q, print_one, &a, err, err_len);
}

int fare_db_last_run(struct fare_db *db, uint32_t *run, uint64_t *at_us, char *err, size_t err_len)
{
	MDB_txn *txn;
	MDB_val k = {.mv_size = 4, .mv_data = "runs"}, v;
	struct run_mark mark = {0};
	int rc = fare_db_begin(db, MDB_RDONLY, &txn);
	if (rc != 0)
		return fare_db_fail(db, err, err_len, "reading the last run", rc);
	if ((rc = mdb_get(txn, db->meta, &k, &v)) == 0 && v.mv_size == sizeof(mark))
		memcpy(&mark, v.mv_data, sizeof(mark));
	mdb_txn_abort(txn);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return fare_db_fail(db, err, err_len, "reading the last run", rc);
	*run = mark.run;
	if (at_us)
		*at_us = mark.at_us;
	return 0;
}

int fare_print_audit(struct fare_db *db, const struct fare_query *q, FILE *out, char *err, size_t err_len)
{
	MDB_txn *txn;
	MDB_cursor *c;
	uint8_t start[4];
	be32_put(start, q->day);
	MDB_val k = {.mv_size = 4, .mv_data = start}, v;
	int rc = fare_db_begin(db, MDB_RDONLY, &txn);
	if (rc == 0 && (rc = mdb_cursor_open(txn, db->audit, &c)) != 0)
		mdb_txn_abort(txn);
	if (rc != 0)
		return fare_db_fail(db, err, err_len, "reading the audit table", rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const uint8_t *key = k.mv_data;
		char token[64];
		if (k.mv_size != TOKEN_DAY_KEY_BYTES + 4 || (q->day && be32_get(key) > q->day))
			break;
		if (!wanted(q, key))
			continue;
		fare_token_format(key[4], be32_get(key + 5), be64_get(key + 9), token, sizeof(token));
		fprintf(out, "%u %s %.*s\n", be32_get(key), token, (int)v.mv_size, (const char *)v.mv_data);
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : fare_db_fail(db, err, err_len, "reading the audit table", rc);
}

int fare_db_day_rated(struct fare_db *db, uint32_t day, bool *rated, char *err, size_t err_len)
{
	MDB_txn *txn;
	uint8_t dk[4];
	be32_put(dk, day);
	MDB_val k = {.mv_size = 4, .mv_data = dk}, v;
	int rc = fare_db_begin(db, MDB_RDONLY, &txn);
	if (rc == 0) {
		rc = mdb_get(txn, db->days, &k, &v);
		mdb_txn_abort(txn);
	}
	*rated = rc == 0;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return fare_db_fail(db, err, err_len, "reading the rated days", rc);
	return 0;
}

int fare_db_rated_days(struct fare_db *db, uint32_t **days, size_t *n, char *err, size_t err_len)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	size_t cap = 0;
	*days = NULL;
	*n = 0;
	int rc = fare_db_begin(db, MDB_RDONLY, &txn);
	if (rc == 0 && (rc = mdb_cursor_open(txn, db->days, &c)) != 0)
		mdb_txn_abort(txn);
	if (rc != 0)
		return fare_db_fail(db, err, err_len, "reading the rated days", rc);
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			uint32_t *d = realloc(*days, cap * sizeof(*d));
			if (!d) {
				rc = ENOMEM;
				break;
			}
			*days = d;
		}
		(*days)[(*n)++] = be32_get(k.mv_data);
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (rc != MDB_NOTFOUND) {
		free(*days);
		*days = NULL;
		if (rc == ENOMEM) {
			snprintf(err, err_len, "rated store %s: out of memory listing the rated days", db->path);
			return FARE_ERR_NOMEM;
		}
		return fare_db_fail(db, err, err_len, "reading the rated days", rc);
	}
	return 0;
}
