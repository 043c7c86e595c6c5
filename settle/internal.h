/*
 * internal.h - what the files of settle/ share. Not a public header.
 */
#ifndef TAPGATE_SETTLE_INTERNAL_H
#define TAPGATE_SETTLE_INTERNAL_H

#include "settle/settle.h"
#include "fare/fare.h"

#include <lmdb.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>

#define BATCH_ID_MAX 128u
#define SETTLE_TIDES_CURRENCY_FIELD 5u /* currency_type's index (from 0) in a TIDES fare_transactions row */
#define PARTY_MAX 96u /* "funder-" + a GTFS id, "acquirer-" + an id of the counterparties file */
#define FILE_NAME_MAX (BATCH_ID_MAX + 32u)

/*
 * The settle store:
 *   meta     "pending" -> struct round: a round being written (redone the same at restart)
 *   rounds   day (4, BE) round (2, BE) -> struct round: a written round
 *   batches  batch id (text) -> struct batch
 *   deny     medium (1) token (8, BE) -> struct deny_entry: the deny list
 *   denylog  version (4, BE) -> struct deny_change; meta "denyver" -> u32 the list's version
 *   held     day (4, BE) round (2, BE) -> struct round_held: the unrated legs a round held out (unrated.c)
 *   writeoff day (4, BE) first_seq (8, BE) -> struct writeoff: an unrated leg written off (unrated.c)
 */
#define SETTLE_PATH_MAX 512u

struct settle_db {
	MDB_env *env;
	MDB_dbi meta, rounds, batches, deny, denylog;
	MDB_dbi held, writeoff; /* unrated.c */
	bool have_unrated_dbs;  /* false: a store written before them, opened read only (nothing held yet) */
	int lock_fd; /* tapsettle.lock, held (flock) by the one writing process; -1 read only */
	char path[SETTLE_PATH_MAX]; /* for messages */
};

struct deny_entry {
	uint64_t token;
	int64_t owed_fen;
	uint32_t declined_day, next_retry_day;
	uint16_t retries_left;
	uint8_t medium, pad;
	char reason[36];
	char batch[BATCH_ID_MAX];
};

struct round {
	uint32_t day;
	uint16_t round, pad;
	uint32_t run_lo, run_hi; /* the legs of rating runs run_lo+1 .. run_hi */
	uint64_t created_us;     /* the files' creation time (fixed when the round starts) */
	uint64_t legs;
};

/* What a round held out of its batches (docs/SETTLEMENT.md section 2.1). */
struct round_held {
	uint64_t unrated;     /* legs no rule prices, carrying no money */
	uint64_t written_off; /* revisions of legs written off before the round */
};

/* An unrated leg written off by `tapsettle write-off-unrated`: no revision of it is settled from round_from on. */
struct writeoff {
	uint64_t first_seq; /* the leg's identity: the log sequence of its first tap */
	uint64_t token, at_us;
	uint32_t day, issuer;
	uint16_t round_from; /* the day's next round when it was written off */
	uint16_t rev, leg_no, operator_id; /* the unrated revision written off, its leg number, its operator */
	uint8_t medium, pad[7];
};

/* The write-offs of one day, by first_seq (unrated.c). */
struct settle_writeoffs {
	struct writeoff *v;
	size_t n;
};

enum settle_hold { SETTLE_HOLD_NONE = 0, SETTLE_HOLD_UNRATED = 1, SETTLE_HOLD_WRITTEN_OFF = 2 };

/* A leg revision a round held out: its identity and revision (a TIDES transaction_id, SEQ-REV), and why. */
struct held_leg {
	uint64_t first_seq;
	uint16_t rev;
	uint8_t hold; /* enum settle_hold */
	uint8_t pad;
	uint16_t operator_id;
};

struct held_legs {
	struct held_leg *v;
	size_t n, cap;
	struct round_held counts;
	int64_t written_off_operator_fen; /* what the held revisions of written-off legs would have paid operators */
};

/* Open (or, with MDB_CREATE, create) the held and writeoff databases. Returns an LMDB code. */
int settle_unrated_dbs_open(struct settle_db *db, MDB_txn *txn, unsigned flags);
/* The write-offs of `day` (free with settle_writeoffs_free). Returns 0 or SETTLE_ERR_*. */
int settle_writeoffs_load(struct settle_db *db, uint32_t day, struct settle_writeoffs *w, char *err, size_t err_len);
void settle_writeoffs_free(struct settle_writeoffs *w);
const struct writeoff *settle_writeoff_find(const struct settle_writeoffs *w, uint64_t first_seq);
/*
 * Whether round `round` holds leg l out of its batches: a revision of a leg
 * written off before the round (round_from <= round), or a leg no rule
 * prices that carries no money (FARE_LEG_NORULE; a norule revision that
 * takes back an earlier fare carries money and is settled like any
 * adjustment). A function of the leg and the write-offs only, so a round
 * built again holds out the same legs.
 */
enum settle_hold settle_leg_hold(const struct settle_writeoffs *w, const struct fare_leg *l, uint16_t round);
/* Record a held leg in h (NULL: only nothing). Returns 0 or SETTLE_ERR_NOMEM. */
int settle_held_add(struct held_legs *h, const struct fare_leg *l, enum settle_hold why);
/* What a round held out, as recorded when it was closed (zero when none). Returns 0 or SETTLE_ERR_*. */
int settle_round_held_get(struct settle_db *db, uint32_t day, uint16_t round, struct round_held *out, bool *have,
			  char *err, size_t err_len);
/* The held record of a round, in the caller's write transaction. Returns an LMDB code. */
int settle_round_held_put_txn(struct settle_db *db, MDB_txn *txn, uint32_t day, uint16_t round,
			      const struct round_held *h);

/* A leg of a day that some revision left unrated (unrated.c). */
struct unrated_leg {
	uint64_t first_seq, token;
	uint32_t issuer, unrated_run, latest_run; /* the rating runs of its first unrated and its latest revision */
	uint16_t operator_id, leg_no, unrated_rev, latest_rev;
	uint8_t medium;
	bool open; /* its latest revision is unrated: no revision priced it since */
};

struct unrated_day {
	struct unrated_leg *v;
	size_t n, cap;
};

/* Every leg of `day` that a revision left unrated, in leg key order (free u->v). Returns 0 or SETTLE_ERR_*. */
int settle_unrated_scan(struct settle_ctx *c, uint32_t day, struct unrated_day *u, char *err, size_t err_len);

/* A reconciliation report (reconcile.c): printed, kept for the outbox, its mismatches counted. */
struct settle_report {
	FILE *out;
	char *buf;     /* the report, also written to the outbox */
	size_t len, cap;
	unsigned mismatches;
};
/* One line of the report; bad: a mismatch ("MISMATCH " before it). */
__attribute__((format(printf, 3, 4))) void settle_say(struct settle_report *r, bool bad, const char *fmt, ...);

struct batch;
/* reconcile.c's checks of held legs (unrated.c): sort a held list for the checks; a round's held counts against
 * its record; an operator's TIDES file against the held legs and the currency; the day's unrated legs. */
void settle_held_sort(struct held_legs *h);
void settle_held_reconcile_round(struct settle_ctx *c, const struct round *rd, const struct round_held *h,
				 struct settle_report *r);
void settle_held_check_tides(struct settle_report *r, const struct batch *b, char *data, const struct held_legs *held,
			     const char *currency);
int settle_unrated_reconcile(struct settle_ctx *c, uint32_t day, struct settle_report *r, char *err, size_t err_len);

/* Every write-off (tapsettle status). Returns 0 or SETTLE_ERR_*. */
int settle_writeoffs_print(struct settle_ctx *c, FILE *out, char *err, size_t err_len);

enum batch_state { BATCH_OPEN = 0, BATCH_CLOSED = 1, BATCH_SENT = 2, BATCH_ACKNOWLEDGED = 3, BATCH_SETTLED = 4 };

struct batch {
	char id[BATCH_ID_MAX];
	char party[PARTY_MAX];
	char file[FILE_NAME_MAX]; /* name inside outbox/<party>/ */
	uint32_t day;
	uint16_t round, state;
	uint64_t items;
	int64_t debit_fen, credit_fen; /* what the counterparty pays / is paid */
	uint64_t hash_total;
	uint8_t sha256[32];
};

#define HASH_MOD 1000000000000000ull /* hash totals: sum of item account numbers mod 10^15 */

/* Count one money item in a batch: amount > 0 a debit (the counterparty pays), < 0 a credit. */
static inline void batch_item(struct batch *b, int64_t amount, uint64_t account)
{
	b->items++;
	if (amount >= 0)
		b->debit_fen += amount;
	else
		b->credit_fen += -amount;
	b->hash_total = (b->hash_total + account % HASH_MOD) % HASH_MOD;
}

/*
 * A line built without printf: the per-leg lines of a 10-million-tap day are
 * most of a close's time, and printf's format parsing was most of that.
 */
struct settle_line {
	char b[1024];
	size_t n;
};
void settle_line_str(struct settle_line *l, const char *s);
void settle_line_chr(struct settle_line *l, char c);
void settle_line_u64(struct settle_line *l, uint64_t v);
void settle_line_i64(struct settle_line *l, int64_t v);
void settle_line_hex(struct settle_line *l, uint64_t v, unsigned digits);
void settle_line_yuan(struct settle_line *l, int64_t fen);      /* -1234 -> -12.34 */
void settle_line_units(struct settle_line *l, int64_t minor, unsigned minor_units); /* 3 units: -1234 -> -1.234 */
void settle_line_utc(struct settle_line *l, uint64_t us);       /* 2026-03-02T00:00:00Z */
void settle_line_token(struct settle_line *l, uint8_t medium, uint32_t issuer, uint64_t token); /* as tapfare writes it */

#define OUT_BUF_BYTES (1u << 17)
#define SETTLE_WRITER_SLOTS 64u

struct out_file;

/*
 * The writer thread of one close (out.c): it writes and digests the files'
 * full buffers while the close formats the next ones. Started and joined by
 * its owner; a file opened without one (NULL) writes its buffers itself.
 */
struct settle_writer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t work, done;
	struct {
		struct out_file *o;
		unsigned b;
		size_t n;
	} q[SETTLE_WRITER_SLOTS];
	unsigned head, tail; /* handed over: tail; written: head */
	bool running, stopping;
};
/* Start the thread; if it cannot start, files write their buffers themselves (slower, the same bytes). */
void settle_writer_start(struct settle_writer *w);
/* Write what is queued, then join the thread. The files it served must be committed or aborted first. */
void settle_writer_stop(struct settle_writer *w);

/* An outbox file written atomically: a temporary name, fsync, rename, then NAME.sha256 beside it. */
struct out_file {
	char dir[640], name[FILE_NAME_MAX], tmp[840], path[840];
	FILE *f;
	EVP_MD_CTX *md;
	struct settle_writer *wr; /* NULL: buffers are written by the caller */
	_Atomic bool failed;
	size_t n;        /* bytes in bufs[cur] */
	size_t unsynced; /* bytes written since writeback was last started (the writer thread's) */
	unsigned cur;
	_Atomic unsigned busy[2]; /* a buffer handed to the writer thread, not written yet */
	char bufs[2][OUT_BUF_BYTES];
};

int settle_out_open(struct out_file *o, struct settle_writer *wr, const char *outbox, const char *party, const char *name, char *err, size_t err_len);
void settle_out_write(struct out_file *o, const void *data, size_t len);
void settle_out_line(struct out_file *o, const struct settle_line *l);
__attribute__((format(printf, 2, 3))) void settle_out_printf(struct out_file *o, const char *fmt, ...);
/* Finish: fsync, rename, write the checksum file. sha256 gets the digest. Returns 0 or SETTLE_ERR_IO. */
int settle_out_commit(struct out_file *o, uint8_t sha256[32], char *err, size_t err_len);
void settle_out_abort(struct out_file *o);

/*
 * Build the batches of round rd (the legs of rating runs rd->run_lo+1 ..
 * rd->run_hi of day rd->day) and, unless dry, write their files. On success
 * *out holds the batches sorted by id (free it) and rd->legs the legs.
 */
int settle_build_round(struct settle_ctx *c, struct round *rd, bool dry, struct batch **out, unsigned *nout,
		       char *err, size_t err_len);
/* Every leg of round rd's day in one currency (else SETTLE_ERR_INVALID, naming both): checked before a round begins. */
int settle_day_currency(struct settle_ctx *c, const struct round *rd, char *err, size_t err_len);
/* The same, and what the round holds out (held: its legs and counts; filled, caller frees held->v). */
int settle_build_round_held(struct settle_ctx *c, struct round *rd, bool dry, struct batch **out, unsigned *nout,
			    struct held_legs *held, char *err, size_t err_len);

/*
 * settle/'s one mapping of LMDB and errno codes (rc, never 0): "settle store
 * PATH: WHAT: why" in err (a full disk or map says so). Returns
 * SETTLE_ERR_STORE, or SETTLE_ERR_NOMEM for ENOMEM.
 */
int settle_store_fail(struct settle_db *db, char *err, size_t err_len, const char *what, int rc);
/* Begin a transaction of the settle store (grows the map first when needed). Returns an LMDB code. */
int settle_txn_begin(struct settle_db *db, unsigned flags, MDB_txn **txn);
/* Record a batch (its state) in a transaction of its own. Returns 0 or SETTLE_ERR_*. */
int settle_batch_put(struct settle_db *db, const struct batch *b, char *err, size_t err_len);
/* Record a batch in the caller's write transaction. Returns an LMDB code. */
int settle_batch_put_txn(struct settle_db *db, MDB_txn *txn, const struct batch *b);

/* The pending round (a round being written): *have says whether there is one. Returns 0 or SETTLE_ERR_*. */
int settle_pending_get(struct settle_db *db, struct round *p, bool *have, char *err, size_t err_len);
/* Record p as the pending round. Returns 0 or SETTLE_ERR_*. */
int settle_pending_put(struct settle_db *db, const struct round *p, char *err, size_t err_len);
/* Forget the pending round (a round with no legs). Returns 0 or SETTLE_ERR_*. */
int settle_pending_drop(struct settle_db *db, char *err, size_t err_len);
/* The round's record and its batches, and the pending record gone: one transaction. Returns 0 or SETTLE_ERR_*. */
int settle_round_put(struct settle_db *db, const struct round *rd, const struct batch *b, unsigned n,
		     const struct round_held *held, char *err, size_t err_len);

/* The rounds of a day, in order (free *out). Returns 0 or SETTLE_ERR_*. */
int settle_rounds(struct settle_db *db, uint32_t day, struct round **out, unsigned *n, char *err, size_t err_len);
/* One batch by id. Returns 0, SETTLE_ERR_INVALID (no such batch), SETTLE_ERR_STORE. */
int settle_batch_get(struct settle_db *db, const char *id, struct batch *b, char *err, size_t err_len);

int settle_deny_add(struct settle_db *db, MDB_txn *txn, const struct deny_entry *e);
int settle_deny_remove(struct settle_db *db, MDB_txn *txn, uint8_t medium, uint64_t token, bool *was);
/* The deny list's version, in a transaction of the caller's (deny.c). */
uint32_t settle_deny_version(struct settle_db *db, MDB_txn *txn);
/*
 * Room for one more element in a growable array (*v of *cap elements of
 * elem bytes, n used): doubled from `first`. Returns 0, or -1 when out of
 * memory (*v is left as it was).
 */
static inline int settle_array_room(void *v, size_t *cap, size_t n, size_t elem, size_t first)
{
	if (n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : first;
	void *g = realloc(*(void **)v, c * elem);
	if (!g)
		return -1;
	*(void **)v = g;
	*cap = c;
	return 0;
}

/* YYYYMMDD plus n days. */
static inline uint32_t settle_day_add(uint32_t day, unsigned n)
{
	return fare_date_from_days(fare_days_from_date(day) + n);
}

/* Read a whole file (for reconciliation). Returns a malloc'd buffer or NULL. */
char *settle_read_whole(const char *path, size_t *len);

/*
 * A rider's pseudonym in operators' and funders' files (pseudonym.c):
 * HMAC-SHA-256(the settlement secret, the token as tapfare writes it), its
 * first SETTLE_PSEUDONYM_BYTES bytes, written as SETTLE_PSEUDONYM_HEX
 * lowercase hex digits; as a number, it is the item's account in hash totals.
 */
#define SETTLE_PSEUDONYM_BYTES 8u
#define SETTLE_PSEUDONYM_HEX 16u
struct settle_pseudonym {
	crypto_auth_hmacsha256_state keyed; /* the key schedule, copied for each token */
	bool have;                          /* the last token asked for, and its pseudonym */
	uint8_t medium;
	uint32_t issuer;
	uint64_t token;
	uint64_t value;
};
void settle_pseudonym_init(struct settle_pseudonym *p, const uint8_t key[SETTLE_SECRET_BYTES]);
uint64_t settle_pseudonym(struct settle_pseudonym *p, uint8_t medium, uint32_t issuer, uint64_t token);

/* "epurse", "quickpass" or "qr": a medium as tapsettle's messages name it. */
const char *settle_medium_name(uint8_t medium);

/* Fen as yuan text, exactly: -1234 -> "-12.34". */
void settle_fen_text(int64_t fen, char out[32]);
/* Minor units as text in a currency of minor_units decimals: 1234 -> "1234" (0), "12.34" (2), "1.234" (3). */
void settle_units_text(int64_t minor, unsigned minor_units, char out[32]);
/* A UTC time as ISO 8601 text: 2026-03-02T00:00:00Z. */
void settle_utc_text(uint64_t us, char out[32]);

#endif
