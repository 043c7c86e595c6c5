/*
 * db.h - the rated store's databases and keys (db.c), shared by run.c and
 * print.c. Internal to fare/.
 *
 *   meta     "cursor" -> u64 last log seq read; "inprogress" -> u32 days being written;
 *            "runs" -> struct run_mark: the last run that wrote legs (legs carry their run's number)
 *   feeds    version (8, BE) + file name -> file bytes: every feed version rated with
 *   legs     day (4) medium (1) issuer (4) token (8) rev (2) leg (2), BE -> struct fare_leg
 *   audit    day medium issuer token (17) + n (4) -> text
 *   days     day (4) -> struct day_state: the day is rated
 *   daymin   day (4) -> u64: lowest log seq seen of a day not rated yet
 *   promos   promotion_id -> struct promo_state
 *   weeks    medium issuer token (13) + day (4) -> i64 fares charged that day (capped media)
 *   cards    issuer (4) card (8) + day (4) -> struct card_state: last CTC and balance of the day
 */
#ifndef TAPGATE_FARE_DB_H
#define TAPGATE_FARE_DB_H

#include "fare/internal.h"

#include <lmdb.h>

#define LEG_KEY_BYTES 21u
#define TOKEN_DAY_KEY_BYTES 17u

#define FARE_DB_PATH_MAX 512u

struct fare_db {
	MDB_env *env;
	MDB_dbi meta, feeds, legs, audit, days, daymin, promos, weeks, cards;
	bool read_only;
	char path[FARE_DB_PATH_MAX]; /* for messages */
};

/*
 * fare/'s one mapping of LMDB and errno codes (rc, not 0): "rated store PATH:
 * WHAT: why" in err. Returns FARE_ERR_FULL (a full disk or map), FARE_ERR_NOMEM
 * (ENOMEM) or FARE_ERR_STORE.
 */
int fare_db_fail(struct fare_db *db, char *err, size_t err_len, const char *what, int rc);
/* Begin a transaction, following another process's map growth. Returns an LMDB code. */
int fare_db_begin(struct fare_db *db, unsigned flags, MDB_txn **txn);
/* Double the map (no transaction of this process open). Returns an LMDB code. */
int fare_db_grow(struct fare_db *db, uint64_t *now_bytes);

struct run_mark {
	uint32_t run, pad;
	uint64_t at_us; /* when it began */
};

struct day_state {
	uint64_t version;
	uint64_t legs;
	uint64_t rated_at_us;
};

struct promo_state {
	int64_t spent_fen;
	uint32_t exhausted_day; /* 0: not exhausted */
	uint32_t pad;
	uint64_t exhausted_at_us;
};

struct card_state {
	uint16_t last_ctc;
	uint16_t pad;
	uint32_t last_after_fen;
};

static inline void be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static inline uint32_t be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void be64_put(uint8_t *p, uint64_t v)
{
	be32_put(p, (uint32_t)(v >> 32));
	be32_put(p + 4, (uint32_t)v);
}

static inline uint64_t be64_get(const uint8_t *p)
{
	return (uint64_t)be32_get(p) << 32 | be32_get(p + 4);
}

/* day + token: the first 17 bytes of leg and audit keys. */
static inline void token_day_key(uint8_t k[TOKEN_DAY_KEY_BYTES], uint32_t day, uint8_t medium, uint32_t issuer,
				 uint64_t token)
{
	be32_put(k, day);
	k[4] = medium;
	be32_put(k + 5, issuer);
	be64_put(k + 9, token);
}

static inline void leg_key(uint8_t k[LEG_KEY_BYTES], const struct fare_leg *l)
{
	token_day_key(k, l->day, l->medium, l->issuer, l->token_id);
	k[17] = (uint8_t)(l->rev >> 8), k[18] = (uint8_t)l->rev;
	k[19] = (uint8_t)(l->leg_no >> 8), k[20] = (uint8_t)l->leg_no;
}

/* Load a feed version kept in the store (for printing and re-rating). */
int fare_db_feed(struct fare_db *db, MDB_txn *txn, uint64_t version, struct fare_feed **out, char *err,
		 size_t err_len);
int fare_db_put_feed(struct fare_db *db, MDB_txn *txn, const struct fare_feed *f);

#endif
