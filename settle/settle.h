/*
 * settle.h - the one public header of settle/: the settlement worker.
 *
 * Settlement turns a business day's rated legs (fare/) into batches, one per
 * counterparty (acquirer, e-SSC QR platform, T-Union issuers by city,
 * promotion and subsidy funders, the payout bank, each operator), written as
 * files into one outbox folder per counterparty (docs/SETTLEMENT.md). Its
 * state lives in its own LMDB environment (the "settle" store).
 *
 * A day is closed in rounds: round 0 takes every leg of the day rated so
 * far, round n (an adjustment batch of that day) the legs rated after round
 * n-1. A round is fixed by a range of rating-run numbers (fare_leg.run), so
 * every leg is in exactly one round, and a round that crashed is redone
 * from the same range, with the same creation time: the same files. In its
 * round a leg is in the batches, or held out: unrated (no rule prices it),
 * or a revision of a leg written off (settle_write_off_unrated). Files carry
 * the currency of the feed that rated the day, with its minor units.
 */
#ifndef TAPGATE_SETTLE_H
#define TAPGATE_SETTLE_H

#include "deny/deny.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SETTLE_ERR_MAX 512u
#define SETTLE_ID_MAX 64u
#define SETTLE_NAME_MAX 140u

enum settle_error {
	SETTLE_ERR_CONFIG = -500,   /* the counterparties file: the message names file, line, key */
	SETTLE_ERR_STORE = -501,    /* the settle store, the rated store or the log */
	SETTLE_ERR_IO = -502,       /* writing an outbox file */
	SETTLE_ERR_NOMEM = -503,
	SETTLE_ERR_INVALID = -504,  /* bad argument (a day not rated, an unknown batch) */
	SETTLE_ERR_MISMATCH = -505, /* reconciliation found a difference */
	SETTLE_ERR_PARTY = -506,    /* a leg names a counterparty the file does not describe */
};
const char *settle_strerror(int err);

/* One counterparty's bank details, from the counterparties file. */
struct settle_party {
	char id[SETTLE_ID_MAX];     /* e.g. "operator-1", "acquirer-cup_qd" */
	char name[SETTLE_NAME_MAX];
	char account[SETTLE_ID_MAX]; /* account number (payouts: the creditor account) */
	char agent[SETTLE_ID_MAX];   /* the account's bank: a BIC, or the bank's own id */
};

#define SETTLE_OPERATORS_MAX 256u

struct settle_parties {
	struct settle_party clearing; /* us: the debtor of payouts, the creditor of charges */
	char acquirer[SETTLE_ID_MAX];  /* QuickPass charges go to acquirer-<this> */
	char qr_platform[SETTLE_ID_MAX];
	char payout_bank[SETTLE_ID_MAX];
	struct settle_party operators[SETTLE_OPERATORS_MAX];
	uint16_t operator_ids[SETTLE_OPERATORS_MAX];
	unsigned noperators;
};

/* Read the counterparties file (INI, docs/SETTLEMENT.md). Returns 0 or SETTLE_ERR_CONFIG. */
int settle_parties_load(struct settle_parties *p, const char *path, char *err, size_t err_len);
const struct settle_party *settle_operator(const struct settle_parties *p, uint16_t operator_id);

struct settle_db;
/* Open the settle store: created if missing, or read only (the gateway reads the deny list).
 * Returns 0 or SETTLE_ERR_STORE. */
int settle_db_open(struct settle_db **out, const char *path, bool read_only, char *err, size_t err_len);
void settle_db_close(struct settle_db *db);

struct fare_db;
struct st_env;
struct fare_clock;

struct settle_ctx {
	struct settle_db *db;
	struct fare_db *rated;
	struct st_env *log;
	struct fare_clock *clk;
	const struct settle_parties *parties;
	const char *outbox; /* one folder per counterparty below it */
	const char *parties_path; /* for error messages */
	bool quiet;         /* no progress lines on stderr */
	int64_t write_off_fen; /* declined charges up to this are written off to the operators */
	unsigned retry_count, retry_days; /* debt recovery: retries, days apart */
	const uint8_t *secret; /* the settlement secret (SETTLE_SECRET_BYTES): riders' pseudonyms in operators' and
				  funders' files; NULL: not loaded (close, resend and reconcile refuse to run) */
};

#define SETTLE_SECRET_BYTES 32u
/*
 * Read the settlement secret from f (opened by the caller, who checked the
 * file as a key file: proc_secret_open): '#' comment lines and one line of
 * SETTLE_SECRET_BYTES * 2 hex digits, not all zeros. Returns 0, or
 * SETTLE_ERR_CONFIG with "PATH:LINE: why" in err.
 */
int settle_secret_read(FILE *f, const char *path, uint8_t key[SETTLE_SECRET_BYTES], char *err, size_t err_len);

struct settle_close_stats {
	uint32_t round;       /* the round written, or the last one when nothing was new */
	bool new_round;       /* false: every leg of the day was in a batch already */
	uint64_t legs, batches, files;
	uint64_t held_unrated, held_written_off; /* legs the round held out of its batches (unrated, written off) */
};

/*
 * Close business day `day`: the day must be rated (fare_run through it).
 * Legs of the day not yet in a batch form a new round; none: nothing is
 * written. Returns 0, SETTLE_ERR_* with err filled.
 */
int settle_close(struct settle_ctx *c, uint32_t day, struct settle_close_stats *st, char *err, size_t err_len);

/* Print every day's rounds and batches. Returns 0 or SETTLE_ERR_STORE. */
int settle_status(struct settle_ctx *c, FILE *out, char *err, size_t err_len);

/*
 * Recompute day `day` from the tap log, the rated legs and the batch files,
 * print the report to out and write it to the outbox (reconcile/). Returns
 * 0 when everything matches, SETTLE_ERR_MISMATCH when something does not, or
 * another SETTLE_ERR_*.
 */
int settle_reconcile(struct settle_ctx *c, uint32_t day, FILE *out, char *err, size_t err_len);

/*
 * Read a counterparty's answer: an acquirer's or QR platform's response to a
 * charge batch (CSV), or the payout bank's pain.002 status report. Declines
 * update the deny list. Prints what happened. Returns 0; SETTLE_ERR_INVALID
 * (the file: file, line and why in err); SETTLE_ERR_MISMATCH (payments
 * rejected: printed); another SETTLE_ERR_*.
 */
int settle_ingest(struct settle_ctx *c, const char *path, FILE *out, char *err, size_t err_len);
/*
 * Write the files of a batch's round again (the same bytes: the same legs
 * and date), check the batch's against the recorded digest, and mark the
 * batch sent. Returns 0, SETTLE_ERR_INVALID (no such batch), SETTLE_ERR_*.
 */
int settle_resend(struct settle_ctx *c, const char *id, FILE *out, char *err, size_t err_len);
/*
 * Debt recovery: present again the debts falling due by `day` (recovery
 * batches R<day>-<n>-acquirer-ID / -qr-ID, the charge file layout; their
 * responses are ingested like any). Returns 0 or SETTLE_ERR_*.
 */
int settle_recover(struct settle_ctx *c, uint32_t day, FILE *out, char *err, size_t err_len);
/*
 * Write off unrated legs of a closed day (docs/SETTLEMENT.md section 2.1):
 * leg `seq` (its first tap's log sequence), or with seq 0 every open one.
 * Recorded in the settle store; no revision of a written-off leg is settled
 * from the day's next round on. Idempotent: a leg written off already is
 * said so. Returns 0, SETTLE_ERR_INVALID (not closed, a round pending, no
 * such open unrated leg: err says), SETTLE_ERR_*.
 */
int settle_write_off_unrated(struct settle_ctx *c, uint32_t day, uint64_t seq, FILE *out, char *err, size_t err_len);

/* Print the deny list. */
int settle_deny_print(struct settle_ctx *c, FILE *out, char *err, size_t err_len);

/* One change of the deny list: struct deny_change, deny/deny.h (the format settle/ writes). */
typedef int (*settle_deny_fn)(void *arg, uint32_t version, const struct deny_change *ch);
/* The changes after version `since`, oldest first (fn returning non-zero stops), and the current version. */
int settle_deny_changes(struct settle_db *db, uint32_t since, settle_deny_fn fn, void *arg, uint32_t *version,
			char *err, size_t err_len);

#endif
