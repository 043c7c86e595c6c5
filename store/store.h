/*
 * store.h - the one public header of the store: the gateway's LMDB
 * environment.
 *
 * The store knows nothing of the wire protocol: a tap is a metadata block
 * (struct st_tap_meta) plus the tap record's bytes exactly as they arrived.
 * Named databases:
 *   log         commit sequence (u64, MDB_INTEGERKEY) -> meta + record, append-only
 *   quarantine  identity key (16) + content hash (8) -> meta + record
 *   validators  validator id (u32, MDB_INTEGERKEY) -> struct st_validator_state
 *   meta        "schema_version" -> u32; "qr_verified_seq" -> u64 (the QR verified frontier:
 *               written by the background verifier, and in before_ack mode by the writer)
 *   qr_forged   commit sequence (u64, MDB_INTEGERKEY) -> meta + record: QR taps of the log whose
 *               signature was found forged after their commit (gateway.qr_verify = after_commit),
 *               quarantined with reason qr_signature: never rated
 * One writer thread owns the write transaction; readers (tapdump, settlement,
 * the dedup rebuild) use short read transactions, ST_READ_CHUNK records each.
 */
#ifndef TAPGATE_STORE_H
#define TAPGATE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ST_SCHEMA_VERSION 1u
#define ST_READ_CHUNK 8192u /* records per read transaction while scanning */
#define ST_RECORD_BYTES_MAX 256u

/* Errors: negative, see st_strerror(). */
enum st_error {
	ST_OK = 0,
	ST_ERR_MAP_FULL = -200, /* the map is full: st_env_grow(), then redo the batch */
	ST_ERR_IO = -201,       /* the disk refused (ENOSPC, EIO...): retry later */
	ST_ERR_SCHEMA = -202,   /* the store was written by another schema version */
	ST_ERR_CORRUPT = -203,  /* a record of the wrong size, a gap in the log, counts that disagree */
	ST_ERR_EXISTS = -204,   /* already there (quarantine) */
	ST_ERR_NOTFOUND = -205,
	ST_ERR_OPEN = -206,     /* environment cannot be opened (path, permissions) */
	ST_ERR_INVALID = -207,  /* bad argument */
	ST_ERR_READERS = -208,  /* too many readers */
	ST_ERR_LOCKED = -220,   /* a writable open: another process holds the store (st_env_lock_holder) */
};
const char *st_strerror(int err);

enum st_sync {
	ST_SYNC_FULL = 0,       /* fsync data and meta page at every commit: durable */
	ST_SYNC_NOMETASYNC = 1, /* skip the meta page fsync: a crash may lose the last commit */
	ST_SYNC_NONE = 2,       /* no fsync: the OS decides; a power cut loses acknowledged taps */
};

/* Everything the gateway learned about a tap besides its record. 56 bytes. */
struct st_tap_meta {
	uint64_t recv_time_us;
	uint64_t frame_seq;
	uint64_t id_lo, id_hi; /* identity key, XXH3-128 */
	uint64_t content_hash;
	uint32_t validator_id;
	uint32_t route_id;
	uint32_t vehicle_id;
	uint16_t operator_id;
	uint16_t record_len;
};
#define ST_META_BYTES 56u

struct st_validator_state {
	uint32_t validator_id;
	uint32_t key_id;
	uint64_t last_frame_seq;
	uint64_t first_seen_us;
	uint64_t last_seen_us;
	uint64_t taps_stored;
	uint64_t taps_duplicate;
	uint64_t taps_conflict;
	uint64_t taps_rejected;
};

struct st_env;
struct st_wtxn;

struct st_options {
	const char *path;        /* a directory; created if missing */
	uint64_t map_size_bytes; /* initial map size; grows on demand */
	enum st_sync sync;
	bool read_only;
};

/*
 * Open (a writable open: create) the environment. A writable open takes an
 * exclusive lock on PATH/tapgate.lock, held until st_env_close(), and writes
 * its pid there: one writer process per store, because two gateways on one
 * log would give taps the same sequence numbers.
 * Returns 0, ST_ERR_OPEN, ST_ERR_SCHEMA, ST_ERR_IO, ST_ERR_LOCKED.
 */
int st_env_open(struct st_env **out, const struct st_options *opt);
/* The pid recorded by the process that holds path's lock, or 0 if unknown. */
long st_env_lock_holder(const char *path);
void st_env_close(struct st_env *env);
/* Double the map size. Only with no write transaction open. Returns 0 or ST_ERR_IO. */
int st_env_grow(struct st_env *env);
uint64_t st_env_map_size(const struct st_env *env);
/* The sequence the next appended tap gets (last + 1, or 1 in an empty log). */
int st_log_next_seq(struct st_env *env, uint64_t *seq);

/* --- writing: one thread only */

/* Returns 0, ST_ERR_IO, ST_ERR_MAP_FULL. */
int st_wtxn_begin(struct st_env *env, struct st_wtxn **out);
/* Append at seq, which must be above every seq in the log: one that is not
 * is a programmer error, asserted (the process aborts). Returns 0,
 * ST_ERR_MAP_FULL, ST_ERR_IO, ST_ERR_INVALID (record_len 0 or above
 * ST_RECORD_BYTES_MAX). */
int st_log_append(struct st_wtxn *t, uint64_t seq, const struct st_tap_meta *meta,
		  const void *record);
/* Keep a conflicting record. Returns 0, ST_ERR_EXISTS (kept already),
 * ST_ERR_MAP_FULL, ST_ERR_IO. */
int st_quarantine_put(struct st_wtxn *t, const struct st_tap_meta *meta, const void *record);
/* Returns 0, ST_ERR_MAP_FULL, ST_ERR_IO. */
int st_validator_put(struct st_wtxn *t, const struct st_validator_state *v);
/* Commit (durably, per the sync mode). The txn is gone whatever it returns.
 * Returns 0, ST_ERR_MAP_FULL, ST_ERR_IO. */
int st_wtxn_commit(struct st_wtxn *t);
void st_wtxn_abort(struct st_wtxn *t);

/* --- reading: short read transactions */

/* Called per record; return non-zero to stop the scan. */
typedef int (*st_visit_fn)(void *arg, uint64_t seq, const struct st_tap_meta *meta,
			   const uint8_t *record);

/*
 * Visit the log from seq from_seq forwards (or, backward, from from_seq down;
 * from_seq UINT64_MAX = from the end), in read transactions of ST_READ_CHUNK
 * records. Returns 0, ST_ERR_CORRUPT, ST_ERR_READERS, ST_ERR_IO.
 */
int st_log_scan(struct st_env *env, uint64_t from_seq, bool backward, st_visit_fn fn, void *arg);
/* One record of the log by its sequence (one short read transaction).
 * Returns 0, ST_ERR_NOTFOUND, ST_ERR_CORRUPT, ST_ERR_READERS, ST_ERR_IO. */
int st_log_get(struct st_env *env, uint64_t seq, struct st_tap_meta *meta, uint8_t record[ST_RECORD_BYTES_MAX]);
/*
 * Many records by sequence, in read transactions of ST_READ_CHUNK gets each
 * (settlement reads the taps of millions of legs): open, get..., close.
 * st_reader_get returns what st_log_get returns.
 */
struct st_reader;
int st_reader_open(struct st_env *env, struct st_reader **out);
int st_reader_get(struct st_reader *r, uint64_t seq, struct st_tap_meta *meta, uint8_t record[ST_RECORD_BYTES_MAX]);
void st_reader_close(struct st_reader *r);
/*
 * The log's invariant, which st_log_check walks against: the gateway appends
 * sequence numbers 1, 2, 3... with no gap, so the log holds every seq from 1
 * to its last, as many records as its last seq, each of the size its meta
 * block says. What breaks it is a fault, reported where it is.
 */
enum st_log_problem {
	ST_LOG_GAP = 1,     /* seq is missing; found_seq came next */
	ST_LOG_ORDER = 2,   /* found_seq came where seq was expected, below it: a key out of order */
	ST_LOG_SIZE = 3,    /* the record at seq is not the size its meta block says */
	ST_LOG_ENDED = 4,   /* the walk ended before seq, the last seq when it began: pages are lost */
	ST_LOG_COUNTS = 5,  /* the log's last seq is seq, but it holds found_seq records */
	ST_LOG_UNREADABLE = 6, /* the walk cannot go on at seq: the tree's pages are damaged */
};
struct st_log_fault {
	enum st_log_problem problem;
	uint64_t seq;
	uint64_t found_seq;
};
/* Called per fault; return non-zero to stop the walk. */
typedef int (*st_fault_fn)(void *arg, const struct st_log_fault *fault);
/* The fault as one line of text naming the sequence number. Returns buf. */
const char *st_log_fault_text(const struct st_log_fault *fault, char *buf, size_t cap);

/*
 * st_log_scan forward from from_seq (0 or 1: the whole log), checked: every
 * seq from from_seq on must come in turn, every record must have its size,
 * and at the end the walk must have reached the last seq it saw when it
 * began, which must equal the number of records. A record of the wrong size
 * is reported and not visited; after a fault the walk goes on unless
 * on_fault returns non-zero. fn and on_fault both get arg.
 * Returns 0 (sound), ST_ERR_CORRUPT (at least one fault was reported),
 * ST_ERR_READERS, ST_ERR_IO.
 */
int st_log_check(struct st_env *env, uint64_t from_seq, st_visit_fn fn, st_fault_fn on_fault, void *arg);
/* Visit every quarantined record (seq is 0). Same returns. */
int st_quarantine_scan(struct st_env *env, st_visit_fn fn, void *arg);

typedef int (*st_validator_fn)(void *arg, const struct st_validator_state *v);
int st_validator_scan(struct st_env *env, st_validator_fn fn, void *arg);

struct st_counts {
	uint64_t log_taps;
	uint64_t quarantine;
	uint64_t validators;
	uint64_t last_seq;
	uint64_t map_size_bytes;
	uint64_t used_bytes;
	uint64_t qr_forged;   /* QR taps of the log found forged after their commit */
	uint64_t qr_frontier; /* every QR tap at or below this seq has its verdict */
};
int st_counts(struct st_env *env, struct st_counts *out);

/*
 * --- QR verdicts. With gateway.qr_verify = after_commit a QR tap is
 * committed and acknowledged before its signature is verified; the gateway's
 * background verifier walks the log in order and records here, durably, the
 * frontier (every QR tap at or below it has its verdict) and each forged tap
 * (a copy of its log record, by seq). Rating reads only through the frontier
 * and never a forged tap. A store with no frontier recorded (written before
 * this existed: every signature verified before its ack) has its whole log
 * verified; the gateway records one at start-up, before any tap of its run.
 */
struct st_qr_forged {
	uint64_t seq;
	struct st_tap_meta meta;
	uint8_t record[ST_RECORD_BYTES_MAX];
};
/* The frontier. Returns 0, ST_ERR_CORRUPT, ST_ERR_READERS, ST_ERR_IO. */
int st_qr_frontier(struct st_env *env, uint64_t *seq);
/*
 * Move the frontier to `frontier` (at or above where it is: asserted) and
 * quarantine the n forged taps (each beyond the old frontier, at or below the
 * new: asserted), in one write txn of its own beside the writer's, waiting
 * for the writer's to end. Grows the map when full. Returns 0, ST_ERR_IO,
 * ST_ERR_MAP_FULL (at the bound), ST_ERR_INVALID (a record length).
 */
int st_qr_verdicts_commit(struct st_env *env, uint64_t frontier, const struct st_qr_forged *forged, size_t n);
/* The frontier at seq, in the writer's txn: in before_ack mode, once nothing is left for the
 * background verifier, every commit moves it to its own last tap. Returns 0, ST_ERR_MAP_FULL, ST_ERR_IO. */
int st_qr_frontier_put(struct st_wtxn *t, uint64_t seq);
/* Visit the forged taps from seq from_seq up, with their seq. Returns what st_log_scan returns. */
int st_qr_forged_scan(struct st_env *env, uint64_t from_seq, st_visit_fn fn, void *arg);

/*
 * --- the map policy of tapgate's other LMDB environments (fare/'s rated
 * store, settle/'s settle store), which grow like this one: opened at the
 * larger of what the file records, an initial size and twice what is used;
 * doubled on MDB_MAP_FULL; followed on MDB_MAP_RESIZED when another process
 * grew it. Their modules call LMDB themselves, so these return LMDB codes
 * (0, MDB_MAP_FULL: at ST_MDB_MAP_BYTES_MAX already, or LMDB's errors) for
 * those modules to map to their own.
 */
struct MDB_env;
struct MDB_txn;
#define ST_MDB_MAP_BYTES_MAX (1ull << 44) /* 16 TiB */
/* Just after mdb_env_open: set the map (writers only; a reader keeps the file's). */
int st_mdb_map_open(struct MDB_env *env, uint64_t initial_bytes, bool read_only);
/* mdb_txn_begin, adopting another process's larger map (bounded retries). */
int st_mdb_txn_begin(struct MDB_env *env, unsigned flags, struct MDB_txn **txn);
/* Double the map. Only with no transaction of this process open on env. */
int st_mdb_grow(struct MDB_env *env, uint64_t *now_bytes);
/*
 * Why an LMDB call on the environment in dir failed (rc: LMDB's or errno's
 * code, not 0), as text in why, for the caller's message. LMDB turns a short
 * write on a full disk into EIO, so EIO on a file system with less than
 * ST_DISK_FULL_BYTES free is said as the full disk it is. Returns true when
 * the failure is a full disk or map (free space and run again).
 */
#define ST_DISK_FULL_BYTES (1ull << 20)
bool st_mdb_why(const char *dir, int rc, char *why, size_t cap);
/*
 * A store's on-disk format version, under "schema_version" (u32) in its meta
 * DB: recorded by a writable open that finds none (a new store, or one
 * written before its module versioned it, which is version 1), checked
 * otherwise. Returns 0; MDB_VERSION_MISMATCH when the store records another
 * version (*found says which) — the caller refuses it, touching nothing; or
 * LMDB's code. A read-only open of a store with no version reads it as 1.
 */
int st_mdb_schema(struct MDB_txn *txn, unsigned meta_dbi, uint32_t version, bool read_only, uint32_t *found);

#endif
