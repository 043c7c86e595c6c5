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
#define FARE_STOP_ZONES_MAX 8u        /* distinct stop_timezone values besides the agency's */
#define FARE_STATION_DEPTH_MAX 4u     /* boarding area -> platform -> station: parent_station links */

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
int fare_csv_table_parse(struct csv_table *t, const char *file, const char *data, size_t len, char *err,
		    size_t err_len);
void fare_csv_table_free(struct csv_table *t);

/* --- the feed */

/* Interned ids: names in load order, found through an open-addressing hash. */
struct fare_ids {
	char **names;
	uint32_t n, cap;
	uint32_t *slots; /* index + 1; 0 = empty */
	uint32_t nslots;
};

/* A validator's number (route or stop) and the feed index it stands for. */
struct fare_code {
	uint32_t code, ix;
};

struct fare_price {
	int32_t product;  /* index in products */
	int32_t category; /* -1: empty */
	int32_t media;    /* -1: empty */
	int32_t amount_fen;
	uint32_t line; /* in fare_products.txt, for messages */
};

struct fare_leg_rule {
	int32_t leg_group; /* -1: empty */
	int32_t network, from_area, to_area, from_tf, to_tf; /* -1: empty */
	int32_t product;
	int32_t priority;
	bool transfer_only; /* applies only to a leg reached by a transfer */
	uint32_t line;      /* in fare_leg_rules.txt, for quote's explanations */
	bool excluded;      /* a row refused by check, kept so its legs are unrated */
};

struct fare_transfer_rule {
	int32_t from_group, to_group; /* -1: empty */
	int32_t transfer_count;       /* -1 unlimited; 0: not given */
	int32_t duration_s;           /* -1: no limit */
	int32_t duration_type;
	int32_t transfer_type;
	int32_t product;              /* -1: none (free) */
	int32_t filter_product;       /* -1: any; else the previous leg's product */
	int8_t media_behavior;        /* 0: same medium (always so here), 1: any */
	int8_t product_behavior;      /* 0: any products, 1: both legs the same product */
	uint32_t line;                /* in fare_transfer_rules.txt */
};

/* fare_leg_join_rules.txt: consecutive legs that make one effective fare leg. */
struct fare_join_rule {
	int32_t from_network, to_network;
	int32_t from_stop, to_stop; /* -1: any (then the legs must meet at one station) */
	uint32_t line;              /* in fare_leg_join_rules.txt, for quote's explanations */
	bool excluded;              /* a row refused by check, kept so the legs it would join are unrated */
};

struct fare_timeframe {
	int32_t group;
	int32_t start_s, end_s; /* seconds of the local day */
	int32_t service;        /* -1: every day */
};

struct fare_service {
	uint8_t weekdays; /* bit 0 = Monday */
	bool has_calendar; /* a calendar.txt row; else only calendar_dates.txt */
	uint32_t start_date, end_date;
};

/* calendar_dates.txt rows, sorted by (service, date). */
struct fare_service_date {
	int32_t service;
	uint32_t date;
	uint8_t type; /* 1 added, 2 removed */
};

struct fare_stop_area {
	uint32_t stop; /* stop index */
	int32_t area;
};

struct fare_incomplete {
	int32_t network;
	int32_t max_journey_s;
	int32_t product;
	bool board_exit; /* bus validators record exits: a board and its exit make one leg */
};

struct fare_cap {
	int32_t media, category; /* category -1: every */
	uint8_t period;          /* FARE_CAP_DAY, _WEEK, _MONTH */
	int32_t amount_fen;
};
enum { FARE_CAP_DAY = 0, FARE_CAP_WEEK = 1, FARE_CAP_MONTH = 2 };

/* tg_spend_tiers.txt: a discount once a token's fares of a calendar month pass a threshold. */
struct fare_tier {
	int32_t media, category; /* category -1: every */
	int64_t threshold_fen;
	int32_t discount_pct; /* 1 .. 100 */
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
	char currency[4];  /* ISO 4217 code of every amount; "" when the feed has no product */
	uint8_t minor_units;
	char timezone[FARE_ID_MAX]; /* agency_timezone; "" when agency.txt is absent */

	struct fare_ids products, categories, media, areas, networks, groups, tfgroups, services;
	struct fare_ids promotions, subsidies, funders, caps, stops, routes, tiers;
	int32_t media_of[4];          /* our medium (1..3) -> fare_media index, -1 */
	int8_t *media_type;           /* per fare_media index: fare_media_type 0..4 */
	int32_t category_of[FARE_CARD_CATEGORIES]; /* card category -> rider category, -1 = default */
	int32_t default_category;     /* -1: rider_categories.txt absent or without a default */

	struct fare_price *prices;    /* grouped by product, file order within one (finish_feed) */
	uint32_t nprices;
	uint32_t *price_first;        /* product -> its first row in prices; [products.n] = nprices */
	bool *product_in_transfer;    /* per product: a fare_transfer_rules fare_product_id */
	struct fare_leg_rule *leg_rules;
	uint32_t nleg_rules;
	bool have_priority;
	uint32_t ntransfer_only; /* leg rules with transfer_only = 1 */
	struct fare_transfer_rule *transfer_rules;
	uint32_t ntransfer_rules;
	struct fare_join_rule *join_rules;
	uint32_t njoin_rules;
	struct fare_timeframe *timeframes;
	uint32_t ntimeframes;
	struct fare_service *service_rows; /* per service index */
	uint32_t nservice_rows;
	struct fare_service_date *service_dates;
	uint32_t nservice_dates;
	int32_t *stop_parent;  /* per stop index: its parent_station, -1 none */
	uint8_t *stop_zone;    /* per stop index: 0 the agency's time zone, else 1 + index in zones */
	struct fare_ids zones; /* stop_timezone values other than the agency's (FARE_STOP_ZONES_MAX) */
	struct fare_stop_area *stop_areas; /* sorted by stop index */
	uint32_t nstop_areas;
	int32_t *route_network;           /* per route index: network, -1 */
	struct fare_code *stop_codes, *route_codes; /* sorted by code */
	uint32_t nstop_codes, nroute_codes;
	struct fare_incomplete *incomplete;
	uint32_t nincomplete;
	struct fare_cap *cap_rows;
	uint32_t ncaps;
	struct fare_tier *tier_rows;
	uint32_t ntiers;
	struct fare_promotion *promotion_rows;
	uint32_t npromotions;
	struct fare_subsidy *subsidy_rows;
	uint32_t nsubsidies;
	uint32_t nexcluded; /* rows refused by check and left out (fare_feed_load_opts.exclude_bad_rows) */
};

#define FARE_NO_INDEX UINT32_MAX

/* Interned ids (feed.c). Returns the index, -1 absent / present already, -2 out of memory. */
int32_t fare_ids_find(const struct fare_ids *ids, const char *name);
int32_t fare_ids_add(struct fare_ids *ids, const char *name);
int32_t fare_ids_intern(struct fare_ids *ids, const char *name);
void fare_ids_free(struct fare_ids *ids);

/* A validator's route / stop number to the feed's index; FARE_NO_INDEX when it maps to nothing. */
uint32_t fare_feed_route_of_code(const struct fare_feed *f, uint32_t code);
uint32_t fare_feed_stop_of_code(const struct fare_feed *f, uint32_t code);
/* Price of product on a feed medium (index, -1 none) for a rider category (index, -1 default). */
bool fare_feed_price_ix(const struct fare_feed *f, int32_t product, int32_t media, int32_t category,
			int32_t *nominal_fen, int32_t *category_fen, bool *own_row);
int32_t fare_feed_media_of(const struct fare_feed *f, uint8_t medium);
int32_t fare_feed_category_of(const struct fare_feed *f, uint8_t card_category);

/* Price of product for medium (our enum) and card category. Returns false when
 * the product is not sold on that medium. */
bool fare_feed_price(const struct fare_feed *f, int32_t product, uint8_t medium, uint8_t card_category,
		     int32_t *nominal_fen, int32_t *category_fen);
/* Network of a route index (FARE_NO_INDEX: none), -1 none. */
int32_t fare_feed_route_network(const struct fare_feed *f, uint32_t route);
/* The station of a stop index: its topmost parent_station, or itself. */
uint32_t fare_feed_station(const struct fare_feed *f, uint32_t stop);
/* Whether stop is `place` or one of its platforms (a parent_station chain reaches it). */
bool fare_feed_stop_at(const struct fare_feed *f, uint32_t stop, uint32_t place);
/* Areas of a stop index: index of the first (stop, area) pair and how many. */
uint32_t fare_feed_stop_areas(const struct fare_feed *f, uint32_t stop, uint32_t *first);
/* Whether a service runs on a date (calendar.txt with calendar_dates.txt exceptions). */
bool fare_feed_service_runs(const struct fare_feed *f, int32_t service, uint32_t date, unsigned weekday);
/* Timeframe groups the local time is in, as a bit mask. */
uint64_t fare_feed_timeframes(const struct fare_feed *f, uint32_t sec_of_day, uint32_t date, unsigned weekday);

/* Date helpers (proleptic Gregorian, YYYYMMDD). */
bool fare_date_valid(uint32_t date);

#endif
