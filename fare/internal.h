/*
 * internal.h - what the files of fare/ share and nobody else sees: the
 * loaded feed's tables (indices, never strings, once loaded), and the CSV
 * reader over libcsv.
 */
#ifndef TAPGATE_FARE_INTERNAL_H
#define TAPGATE_FARE_INTERNAL_H

#include "fare/fare.h"

#define FARE_CARD_CATEGORIES 4u
#define FARE_TIMEFRAME_GROUPS_MAX 64u /* membership is a 64-bit mask */
#define FARE_FILES_MAX 32u

/* --- CSV: a whole file parsed into rows of NUL-terminated fields */

struct csv_row {
	uint32_t line;   /* physical line where the row starts (header = 1) */
	uint32_t nfields;
	char **fields;
};

struct csv_table {
	const char *file;  /* name for messages, e.g. config/fares-demo/stops.txt */
	char **header;
	uint32_t ncols;
	struct csv_row *rows;
	uint32_t nrows;
	/* storage */
	char *arena;
	size_t arena_len, arena_cap;
};

/* Parse data into t. Returns 0 or FARE_ERR_FEED / FARE_ERR_NOMEM with err. */
int csv_table_parse(struct csv_table *t, const char *file, const char *data, size_t len, char *err,
		    size_t err_len);
void csv_table_free(struct csv_table *t);

/* --- the feed */

struct fare_ids {
	char **names;
	uint32_t n, cap;
};

struct fare_price {
	int32_t product;  /* index in products */
	int32_t category; /* -1: empty */
	int32_t media;    /* -1: empty */
	int32_t amount_fen;
};

struct fare_leg_rule {
	int32_t leg_group; /* -1: empty */
	int32_t network, from_area, to_area, from_tf, to_tf; /* -1: empty */
	int32_t product;
	int32_t priority;
};

struct fare_transfer_rule {
	int32_t from_group, to_group; /* -1: empty */
	int32_t transfer_count;       /* -1 unlimited; 0: not given */
	int32_t duration_s;           /* -1: no limit */
	int32_t duration_type;
	int32_t transfer_type;
	int32_t product;              /* -1: none (free) */
};

struct fare_timeframe {
	int32_t group;
	int32_t start_s, end_s; /* seconds of the local day */
	int32_t service;        /* -1: every day */
};

struct fare_service {
	uint8_t weekdays; /* bit 0 = Monday */
	uint32_t start_date, end_date;
};

struct fare_stop_area {
	uint32_t stop_id;
	int32_t area;
};

struct fare_route {
	uint32_t route_id;
	int32_t network; /* -1: none */
};

struct fare_incomplete {
	int32_t network;
	int32_t max_journey_s;
	int32_t product;
};

struct fare_cap {
	int32_t media, category; /* category -1: every */
	bool week;
	int32_t amount_fen;
};

struct fare_promotion {
	int32_t funder; /* index in funders */
	int32_t media, network, route_id_set; /* network -1: any */
	uint32_t route_id;                   /* when route_id_set */
	uint32_t start_date, end_date;
	int32_t rider_amount_fen;
	int32_t max_per_token_per_day;
	int64_t budget_fen;
};

struct fare_subsidy {
	int32_t funder;
	int32_t category;
	int32_t media; /* -1: any */
	int32_t route_id_set;
	uint32_t route_id;
	uint32_t start_date, end_date;
	int32_t amount_fen;
	int32_t max_per_day;
};

struct fare_feed {
	uint64_t version;
	char version_label[FARE_ID_MAX];
	struct fare_file files[FARE_FILES_MAX];
	unsigned nfiles;
	char *file_data[FARE_FILES_MAX];

	struct fare_ids products, categories, media, areas, networks, groups, tfgroups, services;
	struct fare_ids promotions, subsidies, funders, caps;
	int32_t media_of[4];          /* our medium (1..3) -> fare_media index, -1 */
	int32_t category_of[FARE_CARD_CATEGORIES]; /* card category -> rider category, -1 = default */
	int32_t default_category;

	struct fare_price *prices;    /* grouped by product, file order within one (finish_feed) */
	uint32_t nprices;
	uint32_t *price_first;        /* product -> its first row in prices; [products.n] = nprices */
	struct fare_leg_rule *leg_rules;
	uint32_t nleg_rules;
	bool have_priority;
	struct fare_transfer_rule *transfer_rules;
	uint32_t ntransfer_rules;
	struct fare_timeframe *timeframes;
	uint32_t ntimeframes;
	struct fare_service *service_rows; /* per service index */
	struct fare_stop_area *stop_areas; /* sorted by stop_id */
	uint32_t nstop_areas;
	uint32_t *stops; /* sorted stop ids */
	uint32_t nstops;
	struct fare_route *routes; /* sorted by route_id */
	uint32_t nroutes;
	struct fare_incomplete *incomplete;
	uint32_t nincomplete;
	struct fare_cap *cap_rows;
	uint32_t ncaps;
	struct fare_promotion *promotion_rows;
	uint32_t npromotions;
	struct fare_subsidy *subsidy_rows;
	uint32_t nsubsidies;
};

/* Price of product for medium (our enum) and card category. Returns false when
 * the product is not sold on that medium. */
bool fare_feed_price(const struct fare_feed *f, int32_t product, uint8_t medium, uint8_t card_category,
		     int32_t *nominal_fen, int32_t *category_fen);
int32_t fare_feed_route_network(const struct fare_feed *f, uint32_t route_id);
/* Areas of a stop: index of the first (stop_id, area) pair and how many. */
uint32_t fare_feed_stop_areas(const struct fare_feed *f, uint32_t stop_id, uint32_t *first);
/* Timeframe groups the local time is in, as a bit mask. */
uint64_t fare_feed_timeframes(const struct fare_feed *f, uint32_t sec_of_day, uint32_t date, unsigned weekday);

/* Date helpers (proleptic Gregorian, YYYYMMDD). */
bool fare_date_valid(uint32_t date);

#endif
