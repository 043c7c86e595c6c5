/*
 * load.h - what the feed loader's files share (field.c, load.c, feed.c):
 * the loader's state while one feed is read, the error report, and the
 * field parsers. Internal to fare/.
 *
 * Every problem is recorded with file, line, column and field, and loading
 * goes on with the next row, so `tapfare check` lists them all (up to
 * errors_max) instead of only the first.
 */
#ifndef TAPGATE_FARE_LOAD_H
#define TAPGATE_FARE_LOAD_H

#include "fare/internal.h"

struct loader {
	struct fare_feed *f;
	const char *label;
	const struct fare_load_opts *opts;
	struct fare_feed_report *rep;
	size_t rep_cap;
	unsigned errors_max;
	struct csv_table t; /* the file being loaded */
	char path[512];
	const char *file; /* its name, e.g. stops.txt */
	/* validator numbers seen while loading (decimal ids and codes), resolved by build_codes */
	struct code_candidate {
		uint32_t code, ix;
		uint8_t source; /* 0 the id itself, 1 stop_code / route_short_name */
	} *stop_cands, *route_cands;
	uint32_t nstop_cands, nroute_cands;
	bool stop_codes_explicit, route_codes_explicit; /* tg_validator_codes.txt names them */
	bool *product_bad;   /* per product: one of its rows was refused */
	int32_t *product_min; /* per product: its lowest amount */
	uint32_t product_cap;
	bool networks_file; /* networks.txt has rows: routes.txt's network_id must name one */
};

/* One column a loader reads: its name and whether a file without it is refused. */
struct column_def {
	const char *name;
	bool required;
};

/* Record a problem at line/column of the current file (col 0: the whole row or file). Returns FARE_ERR_FEED. */
int fare_fail(struct loader *ld, uint32_t line, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A problem already formatted "FILE:LINE:COL: why" (the CSV reader's). */
int fare_fail_line(struct loader *ld, const char *line);
/* The same for a problem of the feed as a whole (no file). */
int fare_fail_feed(struct loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *fare_field(const struct csv_row *r, int c);
bool fare_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
bool fare_parse_time(const char *s, int32_t *sec);
bool fare_parse_date(const char *s, uint32_t *date);
/* Minor units of an ISO 4217 currency code, or -1 when it is not one. */
int fare_currency_minor_units(const char *code);

int fare_get_int(struct loader *ld, const struct csv_row *r, int c, int64_t min, int64_t max, bool required, int64_t dflt,
	    int64_t *out);
/* An amount in the feed's currency (minor_units decimals at most). */
int fare_get_amount(struct loader *ld, const struct csv_row *r, int c, bool allow_negative, int32_t *out);
int fare_get_amount64(struct loader *ld, const struct csv_row *r, int c, int64_t *out);
int fare_get_ref(struct loader *ld, const struct csv_row *r, int c, const struct fare_ids *ids, const char *what,
	    bool required, int32_t *out);
int fare_get_new_id(struct loader *ld, const struct csv_row *r, int c, struct fare_ids *ids, int32_t *out);
int fare_get_date(struct loader *ld, const struct csv_row *r, int c, uint32_t *out);
int fare_get_dates(struct loader *ld, const struct csv_row *r, int cs, int ce, uint32_t *start, uint32_t *end);

/* Arrays grown one row at a time. */
void *fare_grow(void *p, uint32_t n, size_t size);
#define PUSH(arr, n) ((arr) = fare_grow((arr), (n), sizeof(*(arr)))) ? &(arr)[(n)++] : NULL

/* Load every known file of files into ld->f (load.c). Returns 0, FARE_ERR_FEED, FARE_ERR_NOMEM. */
int fare_load_tables(struct loader *ld, const struct fare_file *files, unsigned n);
/* The i-th file a feed may have (load order), NULL past the last. */
const char *fare_feed_known_file(unsigned i);

#endif
