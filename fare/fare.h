/*
 * fare.h - the one public header of fare/: the fare engine.
 *
 * The engine reads a GTFS-Fares v2 feed plus our tg_* extension files
 * (docs/FARES.md), and rates the taps the gateway committed into fare legs:
 * who pays what to whom, in integer fen. It keeps its own LMDB environment
 * (the "rated" store, never the gateway's hot store): the legs, the audit
 * table, the feed versions it rated with, promotion budgets, weekly totals,
 * the e-purse cards' last CTC, and its cursor in the gateway's log.
 *
 * Objects: fare_feed (a loaded, validated, immutable feed), fare_clock
 * (business days), fare_db (the rated store), fare_run (one rating run).
 */
#ifndef TAPGATE_FARE_H
#define TAPGATE_FARE_H

#include "proto/proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FARE_ERR_MAX 512u
#define FARE_LEG_TAPS_MAX 2u   /* a metro entry and its exit */
#define FARE_ID_MAX 64u        /* longest file name, feed_version label or time zone we keep */
#define FARE_FEED_ERRORS_MAX 100u /* problems check lists before it stops */
#define FARE_TEXT_MAX 256u     /* one audit line's detail */

/* Errors: negative, see fare_strerror(). */
enum fare_error {
	FARE_ERR_FEED = -400,    /* the feed is invalid; the message names file, line, column */
	FARE_ERR_NOMEM = -401,
	FARE_ERR_STORE = -402,   /* the rated store or the gateway's store failed */
	FARE_ERR_INVALID = -403, /* bad argument */
	FARE_ERR_VERSION = -404, /* a leg's feed version is not in the rated store */
	FARE_ERR_TZ = -405,      /* unknown time zone */
	FARE_ERR_FULL = -406,    /* the rated store's disk is full: free space, run again (it resumes) */
	FARE_ERR_LOG = -407,     /* the gateway's log is not sound: the message names the seq */
};
const char *fare_strerror(int err);

/* The wire's media and kinds (proto/proto.h), under the names fare/ uses. */
enum fare_medium { FARE_EPURSE = FP_MEDIUM_EPURSE, FARE_QUICKPASS = FP_MEDIUM_QUICKPASS, FARE_QR = FP_MEDIUM_QR };
enum fare_kind { FARE_ENTRY = FP_KIND_ENTRY, FARE_EXIT = FP_KIND_EXIT, FARE_BOARD = FP_KIND_BOARD,
		 FARE_PURCHASE = FP_KIND_PURCHASE };

enum fare_leg_flag {
	FARE_LEG_INCOMPLETE = 1u << 0, /* entry without exit, exit without entry, or too long */
	FARE_LEG_NORULE = 1u << 1,     /* unrated: no rule prices it; held out of settlement, reported */
	FARE_LEG_PURCHASE = 1u << 2,   /* a canteen or shop purchase */
	FARE_LEG_VANISHED = 1u << 3,   /* adjustment of a leg the new rating no longer has */
	FARE_LEG_JOINED = 1u << 4,     /* joined to the leg before it (fare_leg_join_rules): its fare is there */
};

/* What rating needs of a tap: decoded from the gateway's log. */
struct fare_tap {
	uint64_t seq;      /* commit sequence in the gateway's log */
	uint64_t token_id; /* e-purse card number, or the QuickPass / QR account token */
	uint64_t time_us;  /* tap time, UTC */
	uint32_t issuer;   /* e-purse issuer city code; 0 for the other media */
	uint32_t day;      /* business day, YYYYMMDD (fare_clock_day) */
	uint32_t stop_id, route_id;
	uint32_t amount_fen; /* deducted by the validator, or a purchase's price */
	uint32_t balance_before_fen, balance_after_fen;
	uint16_t operator_id, ctc;
	uint8_t medium, kind, category, pad;
};

/* A rated leg, as stored (the value of the rated store's legs database). */
struct fare_leg {
	uint64_t version;   /* feed version that rated it */
	uint64_t first_seq; /* the leg's identity: the log sequence of its first tap */
	uint64_t start_us, end_us;
	uint64_t token_id;
	uint64_t tap_seq[FARE_LEG_TAPS_MAX];
	uint32_t day, issuer;
	uint32_t route_id, from_stop, to_stop;
	uint32_t run;       /* the rating run that wrote it (fare_db_last_run) */
	int32_t nominal, concession, transfer, cap, promotion, subsidy;
	int32_t rider_fen, promotion_funder_fen, subsidy_funder_fen, operator_fen;
	uint16_t rev, leg_no, operator_id;
	uint16_t product;   /* index in the version's feed; FARE_NONE for none */
	uint16_t promotion_idx, subsidy_idx; /* FARE_NONE for none */
	uint8_t medium, category, flags, ntaps;
};
#define FARE_NONE 0xffffu

/* --- feeds */

struct fare_feed;

/* One file of a feed held in memory (for versions kept in the rated store). */
struct fare_file {
	char name[FARE_ID_MAX];
	const char *data;
	size_t len;
};

/*
 * Load and validate the feed in directory dir. Returns 0, or FARE_ERR_FEED
 * with the first "FILE:LINE:COL: field: why" in err (the whole feed is
 * rejected), or FARE_ERR_NOMEM.
 */
int fare_feed_load(struct fare_feed **out, const char *dir, char *err, size_t err_len);

struct fare_load_opts {
	bool exclude_bad_rows; /* accept a feed with errors: refused rows left out (each listed), and every
				  leg a refused fare rule could have priced is unrated, never free */
	unsigned errors_max;   /* 0: FARE_FEED_ERRORS_MAX */
};

/* Every problem found: one "FILE:LINE:COL: field: why" line each (text is malloc'd; NULL if none). */
struct fare_feed_report {
	unsigned nerrors;
	bool truncated; /* more than errors_max */
	char *text;
};
void fare_feed_report_free(struct fare_feed_report *rep);

/*
 * Load the feed in dir, listing every problem (up to errors_max) in rep.
 * Returns 0 (with opts->exclude_bad_rows, also when rep lists refused rows),
 * FARE_ERR_FEED (rep says why; *out is NULL), FARE_ERR_NOMEM.
 */
int fare_feed_load_opts(struct fare_feed **out, const char *dir, const struct fare_load_opts *opts,
			struct fare_feed_report *rep);
/* The same from files in memory; label prefixes the file names in errors. */
int fare_feed_load_files(struct fare_feed **out, const char *label, const struct fare_file *files,
			 unsigned n, char *err, size_t err_len);
int fare_feed_load_files_opts(struct fare_feed **out, const char *label, const struct fare_file *files, unsigned n,
			      const struct fare_load_opts *opts, struct fare_feed_report *rep);
/* The feed's ISO 4217 currency ("" when it has no product) and its minor units. */
const char *fare_feed_currency(const struct fare_feed *f, unsigned *minor_units);
/* The minor units of an ISO 4217 code (JPY 0, CNY 2, KWD 3), or -1 for a code that is not one. */
int fare_currency_minor_units(const char *code);
/* The feed's agency_timezone ("" when agency.txt is absent). */
const char *fare_feed_timezone(const struct fare_feed *f);
void fare_feed_free(struct fare_feed *f);
uint64_t fare_feed_version(const struct fare_feed *f);
const char *fare_feed_version_label(const struct fare_feed *f); /* feed_info's, or "" */
/* The feed's files as loaded (for the rated store's copy). */
unsigned fare_feed_files(const struct fare_feed *f, const struct fare_file **files);
/* Names for printing legs: product, promotion funder, subsidy funder. */
const char *fare_feed_product_id(const struct fare_feed *f, uint16_t product);
const char *fare_feed_promotion_funder(const struct fare_feed *f, uint16_t idx);
const char *fare_feed_subsidy_funder(const struct fare_feed *f, uint16_t idx);
const char *fare_feed_promotion_id(const struct fare_feed *f, uint16_t idx);
const char *fare_feed_subsidy_id(const struct fare_feed *f, uint16_t idx);
void fare_feed_summary(const struct fare_feed *f, FILE *out);

/* --- quotes: a journey priced against a feed, no store */

struct fare_quote_opts {
	const char *media_id;    /* a fare_media_id; NULL: the feed's only medium, or none (empty-medium prices) */
	const char *category_id; /* a rider_category_id; NULL: the default category */
	uint32_t date;           /* YYYYMMDD for taps without a date */
	const char *timezone;    /* when the feed has no agency_timezone */
};

/*
 * Price the journey given as CSV taps (header: [date,]time,kind,route_id,
 * stop_id; kind board, entry, exit; ids the feed's) and print each leg with
 * the rule that priced it and why, or why it is unrated, then the total
 * (docs/FARES.md section 7). Returns 0, FARE_ERR_INVALID (bad taps or
 * options: err says which), FARE_ERR_TZ, FARE_ERR_NOMEM.
 */
int fare_quote(const struct fare_feed *f, const char *csv, size_t len, const struct fare_quote_opts *o, FILE *out,
	       char *err, size_t err_len);

/* --- business days */

struct fare_clock {
	char tz[64];      /* IANA zone name */
	int32_t cutoff_s; /* seconds after local midnight when the business day changes */
	struct {
		int64_t hour;
		int32_t offset_s;
	} cache[1024];
};

/* tz: an IANA name (Asia/Shanghai); cutoff "HH:MM". Returns 0, FARE_ERR_TZ, FARE_ERR_INVALID.
 * Several clocks of different zones may be used in one (single-threaded) process. */
int fare_clock_init(struct fare_clock *c, const char *tz, const char *cutoff);
/* Business day of a UTC time, YYYYMMDD. */
uint32_t fare_clock_day(struct fare_clock *c, uint64_t time_us);
/* Local time: seconds since local midnight, local date YYYYMMDD, weekday 0 = Monday. */
void fare_clock_local(struct fare_clock *c, uint64_t time_us, uint32_t *sec_of_day, uint32_t *date,
		      unsigned *weekday);
/* UTC microseconds of a local date and time (for tests and tools). */
uint64_t fare_clock_utc_us(struct fare_clock *c, uint32_t date, uint32_t sec_of_day);

/*
 * Fill t from a log record (fastpath/ decoder); t->day from the clock.
 * Returns 0, or non-zero when the record is not sound (does not decode, or
 * its identity key or content hash is not its own): fp_tap_stored_text names it.
 */
struct st_tap_meta;
int fare_tap_from_log(struct fare_clock *c, uint64_t seq, const struct st_tap_meta *meta,
		      const uint8_t *record, struct fare_tap *t);

/* --- the rated store */

struct fare_db;
struct st_env;

/*
 * Open the rated store at path (a directory, created 0750 if missing; files
 * 0640 at most, less under the umask). A writer's map starts at the larger of
 * what the file records, 1 GiB and twice what is used, and doubles whenever a
 * rating run fills it. Returns 0, FARE_ERR_STORE, FARE_ERR_FULL (err names
 * the path and why), FARE_ERR_NOMEM.
 */
int fare_db_open(struct fare_db **out, const char *path, bool read_only, char *err, size_t err_len);
void fare_db_close(struct fare_db *db);

/* --- rating runs */

struct fare_run_options {
	uint32_t through_day; /* rate every unrated day up to this business day */
	uint32_t rerate_unrated_day; /* 0, or a rated day: rate again, with this run's feed, its token-days that
					hold an unrated leg no later revision priced (the differences: adjustment legs) */
	bool quiet;           /* no progress lines on stderr */
};

struct fare_run_stats {
	uint64_t taps_scanned, taps_rated, taps_late, taps_undecodable;
	uint64_t days_rated, legs_written, adjustment_legs, audit_lines, norule_legs;
	uint64_t tokens_rerated;
	uint64_t taps_forged;  /* QR taps the gateway found forged after their commit: skipped, never rated */
	uint64_t taps_waiting; /* taps beyond the QR verified frontier: left for a later run */
	uint64_t qr_frontier;  /* the gateway's verified frontier this run read through */
};

/*
 * One rating run: read the gateway log's taps from the rated store's cursor
 * on, rate every unrated business day up to opt->through_day, re-rate the
 * token-days of late taps into adjustment legs, and commit. A crashed run is
 * undone at the next run's start, so a run that failed (a full disk) is
 * simply run again. The log is walked with st_log_check and every tap is
 * checked (fare_tap_from_log): a fault fails the run. Returns 0,
 * FARE_ERR_STORE, FARE_ERR_FULL, FARE_ERR_LOG, FARE_ERR_NOMEM, FARE_ERR_INVALID,
 * with err filled (naming the store and what failed).
 */
int fare_run(struct fare_db *db, struct st_env *log, const struct fare_feed *feed, struct fare_clock *clk,
	     const struct fare_run_options *opt, struct fare_run_stats *stats, char *err, size_t err_len);

/* --- reading */

/*
 * The number of the last committed rating run that wrote legs (0: none yet)
 * and when it began (at_us may be NULL). Returns 0 or FARE_ERR_STORE.
 */
int fare_db_last_run(struct fare_db *db, uint32_t *run, uint64_t *at_us, char *err, size_t err_len);
/* Whether business day `day` has been rated. Returns 0 or FARE_ERR_STORE. */
int fare_db_day_rated(struct fare_db *db, uint32_t day, bool *rated, char *err, size_t err_len);
/* Every rated business day, ascending (free *days). Returns 0, FARE_ERR_STORE, FARE_ERR_NOMEM. */
int fare_db_rated_days(struct fare_db *db, uint32_t **days, size_t *n, char *err, size_t err_len);

struct fare_query {
	uint32_t day;      /* 0: every day */
	uint8_t medium;    /* 0: every token */
	uint32_t issuer;
	uint64_t token_id;
	bool unrated_only; /* fare_print_legs: only the legs flagged unrated (FARE_LEG_NORULE) */
};

/*
 * Visit the legs q selects in key order (day, token, revision, leg number), in
 * one read transaction, each with the feed version that rated it. A non-zero
 * return of fn stops the walk and is returned. Returns 0, FARE_ERR_STORE,
 * FARE_ERR_VERSION with err filled.
 */
typedef int (*fare_leg_fn)(void *arg, const struct fare_leg *l, const struct fare_feed *f);
int fare_legs_each(struct fare_db *db, const struct fare_query *q, fare_leg_fn fn, void *arg, char *err,
		   size_t err_len);
/* Print the legs (docs/FARES.md section 4), with " v=..." unless no_version. Returns 0 or FARE_ERR_*. */
int fare_print_legs(struct fare_db *db, struct fare_clock *clk, const struct fare_query *q, bool no_version,
		    FILE *out, char *err, size_t err_len);
/* Print the audit table (section 5). */
int fare_print_audit(struct fare_db *db, const struct fare_query *q, FILE *out, char *err, size_t err_len);

/* Days since 1970-01-01 of a date YYYYMMDD, and back (business-day arithmetic). */
int64_t fare_days_from_date(uint32_t date);
uint32_t fare_date_from_days(int64_t days);
/* Parse a business day YYYYMMDD (a calendar-shaped date from 1970). Returns 0 or -1. */
int fare_day_parse(const char *s, uint32_t *day);
/* Parse a token "epurse:ISSUER:CARD", "quickpass:N", "qr:N". Returns 0 or -1. */
int fare_token_parse(const char *s, uint8_t *medium, uint32_t *issuer, uint64_t *token_id);
void fare_token_format(uint8_t medium, uint32_t issuer, uint64_t token_id, char *out, size_t cap);

#endif
