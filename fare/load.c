/*
 * load.c - one loader per feed file, each driven by its column table: the
 * columns it reads (a missing required column refuses the file), then one
 * function per row that checks and stores it.
 *
 * A row with a problem is recorded (field.c) and loading goes on, so a feed
 * is checked whole in one pass. Files are loaded in the order of `tables`,
 * so a reference always points to a file loaded before.
 */
#include "fare/load.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COLUMNS_MAX 16u

typedef int (*row_fn)(struct loader *ld, const struct csv_row *r, const int *c);

static int col_of(const struct csv_table *t, const char *name)
{
	for (uint32_t i = 0; i < t->ncols; i++)
		if (strcmp(t->header[i], name) == 0)
			return (int)i;
	return -1;
}

/* The columns of cols in ld->t, then every row through fn. Returns 0, FARE_ERR_FEED (some row or column
 * was refused), FARE_ERR_NOMEM. */
static int load_rows(struct loader *ld, const struct column_def *cols, unsigned ncols, row_fn fn)
{
	int c[COLUMNS_MAX], rc = 0;
	for (unsigned i = 0; i < ncols && i < COLUMNS_MAX; i++)
		if ((c[i] = col_of(&ld->t, cols[i].name)) < 0 && cols[i].required)
			rc = fare_fail(ld, 1, 0, "missing required column \"%s\"", cols[i].name);
	if (rc != 0)
		return rc;
	for (uint32_t i = 0; i < ld->t.nrows; i++) {
		const struct csv_row *r = &ld->t.rows[i];
		int row_rc = r->nfields != ld->t.ncols
				     ? fare_fail(ld, r->line, 0, "%u fields, the header has %u", r->nfields, ld->t.ncols)
				     : fn(ld, r, c);
		if (row_rc == FARE_ERR_NOMEM)
			return row_rc;
		if (row_rc != 0)
			rc = row_rc;
		if (ld->rep->truncated)
			break;
	}
	return rc;
}

#define LOAD(name, fn, ...)                                                          \
	static int name(struct loader *ld)                                           \
	{                                                                            \
		static const struct column_def cols[] = {__VA_ARGS__};               \
		static_assert(sizeof(cols) / sizeof(cols[0]) <= COLUMNS_MAX, #name); \
		return load_rows(ld, cols, sizeof(cols) / sizeof(cols[0]), fn);      \
	}

/* A validator number: canonical decimal text (no sign, space or leading zero). */
static bool code_of(const char *s, uint32_t *code)
{
	int64_t v;
	if (!*s || (s[0] == '0' && s[1]) || strlen(s) > 10 || !fare_parse_i64(s, 0, UINT32_MAX, &v))
		return false;
	*code = (uint32_t)v;
	return true;
}

static int add_candidate(struct code_candidate **arr, uint32_t *n, const char *text, uint32_t ix, uint8_t source)
{
	uint32_t code;
	if (!code_of(text, &code))
		return 0;
	struct code_candidate *p = PUSH(*arr, *n);
	if (!p)
		return FARE_ERR_NOMEM;
	*p = (struct code_candidate){.code = code, .ix = ix, .source = source};
	return 0;
}

/* --- feed_info.txt, agency.txt */

enum { /* the columns of feed_info, in its column table */
	FEED_INFO_FEED_VERSION
};

static int feed_info_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	if (c[FEED_INFO_FEED_VERSION] >= 0 && !ld->f->version_label[0])
		snprintf(ld->f->version_label, sizeof(ld->f->version_label), "%s", fare_field(r, c[FEED_INFO_FEED_VERSION]));
	return 0;
}
LOAD(load_feed_info, feed_info_row, [FEED_INFO_FEED_VERSION] = {"feed_version", false})

enum { /* the columns of agency, in its column table */
	AGENCY_AGENCY_TIMEZONE
};

static int agency_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	const char *tz = fare_field(r, c[AGENCY_AGENCY_TIMEZONE]);
	struct fare_feed *f = ld->f;
	if (!*tz)
		return fare_fail(ld, r->line, c[AGENCY_AGENCY_TIMEZONE] + 1, "required value is empty");
	char path[FARE_ID_MAX + 32];
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
	if (strlen(tz) >= sizeof(f->timezone) || strstr(tz, "..") || access(path, R_OK) != 0)
		return fare_fail(ld, r->line, c[AGENCY_AGENCY_TIMEZONE] + 1, "\"%s\" is not a time zone of /usr/share/zoneinfo", tz);
	if (f->timezone[0] && strcmp(f->timezone, tz) != 0)
		return fare_fail(ld, r->line, c[AGENCY_AGENCY_TIMEZONE] + 1, "\"%s\": every agency of a feed has one time zone (\"%s\")", tz,
			    f->timezone);
	snprintf(f->timezone, sizeof(f->timezone), "%s", tz);
	return 0;
}
LOAD(load_agency, agency_row, [AGENCY_AGENCY_TIMEZONE] = {"agency_timezone", true})

/* --- stops, areas, networks, routes */

/* A stop_timezone: 0 for the agency's (or none), else 1 + its index in zones. */
static int stop_zone_of(struct loader *ld, const struct csv_row *r, int c, uint8_t *zone)
{
	struct fare_feed *f = ld->f;
	const char *tz = fare_field(r, c);
	char path[FARE_ID_MAX + 32];
	*zone = 0;
	if (!*tz || strcmp(tz, f->timezone) == 0)
		return 0;
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
	if (strlen(tz) >= FARE_ID_MAX || strstr(tz, "..") || access(path, R_OK) != 0)
		return fare_fail(ld, r->line, c + 1, "\"%s\" is not a time zone of /usr/share/zoneinfo", tz);
	int32_t z = fare_ids_intern(&f->zones, tz);
	if (z < 0)
		return FARE_ERR_NOMEM;
	if ((uint32_t)z >= FARE_STOP_ZONES_MAX)
		return fare_fail(ld, r->line, c + 1, "\"%s\": more than %u stop time zones", tz, FARE_STOP_ZONES_MAX);
	*zone = (uint8_t)(z + 1);
	return 0;
}

enum { /* the columns of stops, in its column table */
	STOP_STOP_ID,
	STOP_STOP_CODE,
	STOP_PARENT_STATION,
	STOP_STOP_TIMEZONE
};

/* parent_station may name a stop further down the file: kept as -2 - row here, resolved by finish_stops. */
static int stop_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	struct fare_feed *f = ld->f;
	int32_t ix;
	uint8_t zone;
	int rc;
	if ((rc = fare_get_new_id(ld, r, c[STOP_STOP_ID], &f->stops, &ix)) != 0)
		return rc;
	if (!(f->stop_parent = fare_grow(f->stop_parent, (uint32_t)ix, sizeof(*f->stop_parent))) ||
	    !(f->stop_zone = fare_grow(f->stop_zone, (uint32_t)ix, sizeof(*f->stop_zone))))
		return FARE_ERR_NOMEM;
	f->stop_parent[ix] = *fare_field(r, c[STOP_PARENT_STATION]) ? -2 - (int32_t)(r - ld->t.rows) : -1;
	f->stop_zone[ix] = 0;
	if ((rc = stop_zone_of(ld, r, c[STOP_STOP_TIMEZONE], &zone)) != 0)
		return rc;
	f->stop_zone[ix] = zone;
	if ((rc = add_candidate(&ld->stop_cands, &ld->nstop_cands, fare_field(r, c[STOP_STOP_ID]), (uint32_t)ix, 0)) != 0)
		return rc;
	return add_candidate(&ld->stop_cands, &ld->nstop_cands, fare_field(r, c[STOP_STOP_CODE]), (uint32_t)ix, 1);
}
LOAD(load_stops, stop_row,
	[STOP_STOP_ID] = {"stop_id", true},
	[STOP_STOP_CODE] = {"stop_code", false},
	[STOP_PARENT_STATION] = {"parent_station", false},
	[STOP_STOP_TIMEZONE] = {"stop_timezone", false})

/* Once stops.txt is in (ld->t still holds it): parent_station references, and each stop's time zone
 * from its station (spec: a location with a parent station inherits the parent's stop_timezone). */
static int finish_stops(struct loader *ld)
{
	struct fare_feed *f = ld->f;
	int c = col_of(&ld->t, "parent_station"), rc = 0;
	for (uint32_t i = 0; i < f->stops.n; i++) {
		if (f->stop_parent[i] >= -1)
			continue;
		const struct csv_row *r = &ld->t.rows[-2 - f->stop_parent[i]];
		int32_t p = fare_ids_find(&f->stops, fare_field(r, c));
		f->stop_parent[i] = p >= 0 && (uint32_t)p != i ? p : -1;
		if (p < 0 || (uint32_t)p == i)
			rc = fare_fail(ld, r->line, c + 1, "%s stop_id \"%s\"", p < 0 ? "unknown" : "its own",
				  fare_field(r, c));
	}
	for (uint32_t i = 0; i < f->stops.n; i++) {
		uint32_t s = i;
		unsigned d = 0;
		for (; d <= FARE_STATION_DEPTH_MAX && f->stop_parent[s] >= 0; d++)
			s = (uint32_t)f->stop_parent[s];
		if (d > FARE_STATION_DEPTH_MAX) {
			rc = fare_fail(ld, 0, 0, "stop \"%s\": parent_station links deeper than %u (a loop?)",
				  f->stops.names[i], FARE_STATION_DEPTH_MAX);
			f->stop_parent[i] = -1;
		}
	}
	for (uint32_t i = 0; i < f->stops.n; i++)
		if (f->stop_parent[i] >= 0) /* a child's own zone is its station's: stations have no parent */
			f->stop_zone[i] = f->stop_zone[fare_feed_station(f, i)];
	return rc;
}

enum { /* the columns of areas, in its column table */
	AREA_AREA_ID
};

static int area_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	return fare_get_new_id(ld, r, c[AREA_AREA_ID], &ld->f->areas, NULL);
}
LOAD(load_areas, area_row, [AREA_AREA_ID] = {"area_id", true})

enum { /* the columns of stop_areas, in its column table */
	STOP_AREA_AREA_ID,
	STOP_AREA_STOP_ID
};

static int stop_area_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	struct fare_feed *f = ld->f;
	struct fare_stop_area sa;
	int32_t stop;
	int rc;
	if ((rc = fare_get_ref(ld, r, c[STOP_AREA_AREA_ID], &f->areas, "area_id", true, &sa.area)) != 0)
		return rc;
	if ((rc = fare_get_ref(ld, r, c[STOP_AREA_STOP_ID], &f->stops, "stop_id", true, &stop)) != 0)
		return rc;
	sa.stop = (uint32_t)stop;
	struct fare_stop_area *p = PUSH(f->stop_areas, f->nstop_areas);
	if (!p)
		return FARE_ERR_NOMEM;
	*p = sa;
	return 0;
}
LOAD(load_stop_areas, stop_area_row,
	[STOP_AREA_AREA_ID] = {"area_id", true},
	[STOP_AREA_STOP_ID] = {"stop_id", true})

enum { /* the columns of networks, in its column table */
	NETWORK_NETWORK_ID
};

static int network_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	ld->networks_file = true;
	return fare_get_new_id(ld, r, c[NETWORK_NETWORK_ID], &ld->f->networks, NULL);
}
LOAD(load_networks, network_row, [NETWORK_NETWORK_ID] = {"network_id", true})

enum { /* the columns of routes, in its column table */
	ROUTE_ROUTE_ID,
	ROUTE_NETWORK_ID,
	ROUTE_ROUTE_SHORT_NAME
};

static int route_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	struct fare_feed *f = ld->f;
	int32_t ix, net = -1;
	int rc;
	if ((rc = fare_get_new_id(ld, r, c[ROUTE_ROUTE_ID], &f->routes, &ix)) != 0)
		return rc;
	if (!(f->route_network = fare_grow(f->route_network, (uint32_t)ix, sizeof(*f->route_network))))
		return FARE_ERR_NOMEM;
	f->route_network[ix] = -1;
	if (*fare_field(r, c[ROUTE_NETWORK_ID]) && ld->networks_file) {
		if ((rc = fare_get_ref(ld, r, c[ROUTE_NETWORK_ID], &f->networks, "network_id", false, &net)) != 0)
			return rc;
	} else if (*fare_field(r, c[ROUTE_NETWORK_ID]) && (net = fare_ids_intern(&f->networks, fare_field(r, c[ROUTE_NETWORK_ID]))) < 0) {
		return FARE_ERR_NOMEM;
	}
	f->route_network[ix] = net;
	if ((rc = add_candidate(&ld->route_cands, &ld->nroute_cands, fare_field(r, c[ROUTE_ROUTE_ID]), (uint32_t)ix, 0)) != 0)
		return rc;
	return add_candidate(&ld->route_cands, &ld->nroute_cands, fare_field(r, c[ROUTE_ROUTE_SHORT_NAME]), (uint32_t)ix, 1);
}
LOAD(load_routes, route_row,
	[ROUTE_ROUTE_ID] = {"route_id", true},
	[ROUTE_NETWORK_ID] = {"network_id", false},
	[ROUTE_ROUTE_SHORT_NAME] = {"route_short_name", false})

enum { /* the columns of route_networks, in its column table */
	ROUTE_NETWORK_NETWORK_ID,
	ROUTE_NETWORK_ROUTE_ID
};

static int route_network_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	struct fare_feed *f = ld->f;
	int32_t net, route;
	int rc;
	if ((rc = fare_get_ref(ld, r, c[ROUTE_NETWORK_NETWORK_ID], &f->networks, "network_id", true, &net)) != 0)
		return rc;
	if ((rc = fare_get_ref(ld, r, c[ROUTE_NETWORK_ROUTE_ID], &f->routes, "route_id", true, &route)) != 0)
		return rc;
	if (f->route_network[route] >= 0)
		return fare_fail(ld, r->line, c[ROUTE_NETWORK_ROUTE_ID] + 1, "route %s is in network \"%s\" already", fare_field(r, c[ROUTE_NETWORK_ROUTE_ID]),
			    f->networks.names[f->route_network[route]]);
	f->route_network[route] = net;
	return 0;
}
LOAD(load_route_networks, route_network_row,
	[ROUTE_NETWORK_NETWORK_ID] = {"network_id", true},
	[ROUTE_NETWORK_ROUTE_ID] = {"route_id", true})

/* --- calendar.txt, calendar_dates.txt, timeframes.txt */

/* The service of id, interned, with its row in service_rows. */
static int service_of(struct loader *ld, const char *id, int32_t *out)
{
	struct fare_feed *f = ld->f;
	int32_t ix = fare_ids_intern(&f->services, id);
	if (ix < 0)
		return FARE_ERR_NOMEM;
	while (f->nservice_rows <= (uint32_t)ix) {
		struct fare_service *p = PUSH(f->service_rows, f->nservice_rows);
		if (!p)
			return FARE_ERR_NOMEM;
		*p = (struct fare_service){0};
	}
	*out = ix;
	return 0;
}

enum { /* the columns of calendar, in its column table */
	CALENDAR_SERVICE_ID,
	CALENDAR_MONDAY,
	CALENDAR_TUESDAY,
	CALENDAR_WEDNESDAY,
	CALENDAR_THURSDAY,
	CALENDAR_FRIDAY,
	CALENDAR_SATURDAY,
	CALENDAR_SUNDAY,
	CALENDAR_START_DATE,
	CALENDAR_END_DATE
};

static int calendar_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	struct fare_service sv = {.has_calendar = true};
	int32_t idx;
	int rc;
	if (*fare_field(r, c[CALENDAR_SERVICE_ID]) && fare_ids_find(&ld->f->services, fare_field(r, c[CALENDAR_SERVICE_ID])) >= 0)
		return fare_fail(ld, r->line, c[CALENDAR_SERVICE_ID] + 1, "duplicate id \"%s\"", fare_field(r, c[CALENDAR_SERVICE_ID]));
	if (!*fare_field(r, c[CALENDAR_SERVICE_ID]))
		return fare_fail(ld, r->line, c[CALENDAR_SERVICE_ID] + 1, "required id is empty");
	for (int d = 0; d < 7; d++) {
		int64_t v;
		if ((rc = fare_get_int(ld, r, c[CALENDAR_MONDAY + d], 0, 1, true, 0, &v)) != 0)
			return rc;
		sv.weekdays |= (uint8_t)(v << d);
	}
	if ((rc = fare_get_dates(ld, r, c[CALENDAR_START_DATE], c[CALENDAR_END_DATE], &sv.start_date, &sv.end_date)) != 0)
		return rc;
	if ((rc = service_of(ld, fare_field(r, c[CALENDAR_SERVICE_ID]), &idx)) != 0)
		return rc;
	ld->f->service_rows[idx] = sv;
	return 0;
}
LOAD(load_calendar, calendar_row,
	[CALENDAR_SERVICE_ID] = {"service_id", true},
	[CALENDAR_MONDAY] = {"monday", true},
	[CALENDAR_TUESDAY] = {"tuesday", true},
	[CALENDAR_WEDNESDAY] = {"wednesday", true},
	[CALENDAR_THURSDAY] = {"thursday", true},
	[CALENDAR_FRIDAY] = {"friday", true},
	[CALENDAR_SATURDAY] = {"saturday", true},
	[CALENDAR_SUNDAY] = {"sunday", true},
	[CALENDAR_START_DATE] = {"start_date", true},
	[CALENDAR_END_DATE] = {"end_date", true})

enum { /* the columns of calendar_dates, in its column table */
	CALENDAR_DATE_SERVICE_ID,
	CALENDAR_DATE_DATE,
	CALENDAR_DATE_EXCEPTION_TYPE
};

static int calendar_date_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	struct fare_service_date sd;
	int64_t type;
	int rc;
	if (!*fare_field(r, c[CALENDAR_DATE_SERVICE_ID]))
		return fare_fail(ld, r->line, c[CALENDAR_DATE_SERVICE_ID] + 1, "required value is empty");
	if ((rc = fare_get_date(ld, r, c[CALENDAR_DATE_DATE], &sd.date)) != 0)
		return rc;
	if ((rc = fare_get_int(ld, r, c[CALENDAR_DATE_EXCEPTION_TYPE], 1, 2, true, 0, &type)) != 0)
		return rc;
	if ((rc = service_of(ld, fare_field(r, c[CALENDAR_DATE_SERVICE_ID]), &sd.service)) != 0)
		return rc;
	sd.type = (uint8_t)type;
	struct fare_service_date *p = PUSH(ld->f->service_dates, ld->f->nservice_dates);
	if (!p)
		return FARE_ERR_NOMEM;
	*p = sd;
	return 0;
}
LOAD(load_calendar_dates, calendar_date_row,
	[CALENDAR_DATE_SERVICE_ID] = {"service_id", true},
	[CALENDAR_DATE_DATE] = {"date", true},
	[CALENDAR_DATE_EXCEPTION_TYPE] = {"exception_type", true})

enum { /* the columns of timeframes, in its column table */
	TIMEFRAME_TIMEFRAME_GROUP_ID,
	TIMEFRAME_START_TIME,
	TIMEFRAME_END_TIME,
	TIMEFRAME_SERVICE_ID
};

static int timeframe_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	struct fare_feed *f = ld->f;
	struct fare_timeframe tf = {.start_s = 0, .end_s = 86400};
	int rc;
	if (!*fare_field(r, c[TIMEFRAME_TIMEFRAME_GROUP_ID]))
		return fare_fail(ld, r->line, c[TIMEFRAME_TIMEFRAME_GROUP_ID] + 1, "required value is empty");
	if ((tf.group = fare_ids_intern(&f->tfgroups, fare_field(r, c[TIMEFRAME_TIMEFRAME_GROUP_ID]))) < 0)
		return FARE_ERR_NOMEM;
	if (f->tfgroups.n > FARE_TIMEFRAME_GROUPS_MAX)
		return fare_fail(ld, r->line, c[TIMEFRAME_TIMEFRAME_GROUP_ID] + 1, "more than %u timeframe groups", FARE_TIMEFRAME_GROUPS_MAX);
	bool has_s = *fare_field(r, c[TIMEFRAME_START_TIME]), has_e = *fare_field(r, c[TIMEFRAME_END_TIME]);
	if (has_s != has_e)
		return fare_fail(ld, r->line, has_s ? c[TIMEFRAME_END_TIME] + 1 : c[TIMEFRAME_START_TIME] + 1, "start_time and end_time go together");
	if (has_s && !fare_parse_time(fare_field(r, c[TIMEFRAME_START_TIME]), &tf.start_s))
		return fare_fail(ld, r->line, c[TIMEFRAME_START_TIME] + 1, "\"%s\" is not a time HH:MM:SS up to 24:00:00", fare_field(r, c[TIMEFRAME_START_TIME]));
	if (has_e && !fare_parse_time(fare_field(r, c[TIMEFRAME_END_TIME]), &tf.end_s))
		return fare_fail(ld, r->line, c[TIMEFRAME_END_TIME] + 1, "\"%s\" is not a time HH:MM:SS up to 24:00:00", fare_field(r, c[TIMEFRAME_END_TIME]));
	if (tf.start_s >= tf.end_s)
		return fare_fail(ld, r->line, c[TIMEFRAME_END_TIME] + 1, "end_time is not after start_time");
	if ((rc = fare_get_ref(ld, r, c[TIMEFRAME_SERVICE_ID], &f->services, "service_id (calendar.txt, calendar_dates.txt)", false, &tf.service)) != 0)
		return rc;
	struct fare_timeframe *p = PUSH(f->timeframes, f->ntimeframes);
	if (!p)
		return FARE_ERR_NOMEM;
	*p = tf;
	return 0;
}
LOAD(load_timeframes, timeframe_row,
	[TIMEFRAME_TIMEFRAME_GROUP_ID] = {"timeframe_group_id", true},
	[TIMEFRAME_START_TIME] = {"start_time", false},
	[TIMEFRAME_END_TIME] = {"end_time", false},
	[TIMEFRAME_SERVICE_ID] = {"service_id", false})

/* --- fare_media.txt, tg_media.txt, rider_categories.txt */

enum { /* the columns of fare_media, in its column table */
	MEDIA_FARE_MEDIA_ID,
	MEDIA_FARE_MEDIA_TYPE
};

static int media_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	struct fare_feed *f = ld->f;
	int32_t idx;
	int64_t type;
	int rc;
	if ((rc = fare_get_new_id(ld, r, c[MEDIA_FARE_MEDIA_ID], &f->media, &idx)) != 0)
		return rc;
	if (!(f->media_type = fare_grow(f->media_type, (uint32_t)idx, sizeof(*f->media_type))))
		return FARE_ERR_NOMEM;
	f->media_type[idx] = -1;
	if ((rc = fare_get_int(ld, r, c[MEDIA_FARE_MEDIA_TYPE], 0, 4, true, 0, &type)) != 0)
		return rc;
	f->media_type[idx] = (int8_t)type;
	return 0;
}
LOAD(load_fare_media, media_row,
	[MEDIA_FARE_MEDIA_ID] = {"fare_media_id", true},
	[MEDIA_FARE_MEDIA_TYPE] = {"fare_media_type", true})

enum { /* the columns of tg_media, in its column table */
	TG_MEDIA_MEDIUM,
	TG_MEDIA_FARE_MEDIA_ID
};

static int tg_media_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	static const char *const names[] = {"", "epurse", "quickpass", "qr"};
	struct fare_feed *f = ld->f;
	int medium = 0;
	for (int m = 1; m <= 3; m++)
		if (strcmp(fare_field(r, c[TG_MEDIA_MEDIUM]), names[m]) == 0)
			medium = m;
	if (medium == 0)
		return fare_fail(ld, r->line, c[TG_MEDIA_MEDIUM] + 1, "\"%s\" is not epurse, quickpass or qr", fare_field(r, c[TG_MEDIA_MEDIUM]));
	if (f->media_of[medium] >= 0)
		return fare_fail(ld, r->line, c[TG_MEDIA_MEDIUM] + 1, "%s is mapped already", names[medium]);
	return fare_get_ref(ld, r, c[TG_MEDIA_FARE_MEDIA_ID], &f->media, "fare_media_id", true, &f->media_of[medium]);
}
LOAD(load_tg_media, tg_media_row,
	[TG_MEDIA_MEDIUM] = {"medium", true},
	[TG_MEDIA_FARE_MEDIA_ID] = {"fare_media_id", true})

enum { /* the columns of rider_categories, in its column table */
	CATEGORY_RIDER_CATEGORY_ID,
	CATEGORY_IS_DEFAULT_FARE_CATEGORY
};

static int category_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	struct fare_feed *f = ld->f;
	int32_t idx;
	int64_t dflt;
	int rc;
	if ((rc = fare_get_new_id(ld, r, c[CATEGORY_RIDER_CATEGORY_ID], &f->categories, &idx)) != 0)
		return rc;
	if ((rc = fare_get_int(ld, r, c[CATEGORY_IS_DEFAULT_FARE_CATEGORY], 0, 1, false, 0, &dflt)) != 0)
		return rc;
	if (dflt && f->default_category >= 0)
		return fare_fail(ld, r->line, c[CATEGORY_IS_DEFAULT_FARE_CATEGORY] + 1, "a second default category (\"%s\" is one)",
			    f->categories.names[f->default_category]);
	if (dflt)
		f->default_category = idx;
	return 0;
}
LOAD(load_rider_categories, category_row,
	[CATEGORY_RIDER_CATEGORY_ID] = {"rider_category_id", true},
	[CATEGORY_IS_DEFAULT_FARE_CATEGORY] = {"is_default_fare_category", false})

/* --- fare_products.txt */

static int product_slot(struct loader *ld, int32_t product)
{
	while (ld->product_cap <= (uint32_t)product) {
		uint32_t cap = ld->product_cap ? ld->product_cap * 2 : 64;
		bool *b = realloc(ld->product_bad, cap * sizeof(*b));
		if (b)
			ld->product_bad = b;
		int32_t *m = realloc(ld->product_min, cap * sizeof(*m));
		if (m)
			ld->product_min = m;
		if (!b || !m)
			return FARE_ERR_NOMEM;
		for (uint32_t i = ld->product_cap; i < cap; i++)
			ld->product_bad[i] = false, ld->product_min[i] = INT32_MAX;
		ld->product_cap = cap;
	}
	return 0;
}

static int currency_of(struct loader *ld, const struct csv_row *r, int c)
{
	struct fare_feed *f = ld->f;
	const char *cur = fare_field(r, c);
	int units = fare_currency_minor_units(cur);
	if (units < 0)
		return fare_fail(ld, r->line, c + 1, "\"%s\" is not an ISO 4217 currency code", cur);
	if (f->currency[0] && strcmp(f->currency, cur) != 0)
		return fare_fail(ld, r->line, c + 1, "\"%s\": a feed has one currency (\"%s\" above)", cur, f->currency);
	memcpy(f->currency, cur, 4);
	f->minor_units = (uint8_t)units;
	return 0;
}

enum { /* the columns of fare_products, in its column table */
	PRODUCT_FARE_PRODUCT_ID,
	PRODUCT_RIDER_CATEGORY_ID,
	PRODUCT_FARE_MEDIA_ID,
	PRODUCT_AMOUNT,
	PRODUCT_CURRENCY
};

static int product_fields(struct loader *ld, const struct csv_row *r, const int *c, struct fare_price *pr)
{
	struct fare_feed *f = ld->f;
	int rc;
	if ((rc = fare_get_ref(ld, r, c[PRODUCT_RIDER_CATEGORY_ID], &f->categories, "rider_category_id", false, &pr->category)) != 0)
		return rc;
	if ((rc = fare_get_ref(ld, r, c[PRODUCT_FARE_MEDIA_ID], &f->media, "fare_media_id", false, &pr->media)) != 0)
		return rc;
	if ((rc = currency_of(ld, r, c[PRODUCT_CURRENCY])) != 0)
		return rc;
	return fare_get_amount(ld, r, c[PRODUCT_AMOUNT], true, &pr->amount_fen);
}

static int product_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	struct fare_feed *f = ld->f;
	struct fare_price pr;
	int rc;
	if (!*fare_field(r, c[PRODUCT_FARE_PRODUCT_ID]))
		return fare_fail(ld, r->line, c[PRODUCT_FARE_PRODUCT_ID] + 1, "required value is empty");
	if ((pr.product = fare_ids_intern(&f->products, fare_field(r, c[PRODUCT_FARE_PRODUCT_ID]))) < 0 || product_slot(ld, pr.product))
		return FARE_ERR_NOMEM;
	if ((rc = product_fields(ld, r, c, &pr)) != 0) {
		ld->product_bad[pr.product] = true;
		return rc;
	}
	if (pr.amount_fen < ld->product_min[pr.product])
		ld->product_min[pr.product] = pr.amount_fen;
	pr.line = r->line;
	struct fare_price *p = PUSH(f->prices, f->nprices);
	if (!p)
		return FARE_ERR_NOMEM;
	*p = pr;
	return 0;
}
LOAD(load_fare_products, product_row,
	[PRODUCT_FARE_PRODUCT_ID] = {"fare_product_id", true},
	[PRODUCT_RIDER_CATEGORY_ID] = {"rider_category_id", false},
	[PRODUCT_FARE_MEDIA_ID] = {"fare_media_id", false},
	[PRODUCT_AMOUNT] = {"amount", true},
	[PRODUCT_CURRENCY] = {"currency", true})

/* A product a leg is charged: its rows may not be negative (a transfer's may). */
static int leg_product(struct loader *ld, const struct csv_row *r, int c, int32_t product)
{
	if (product >= 0 && (uint32_t)product < ld->product_cap && ld->product_min[product] < 0 &&
	    ld->product_min[product] != INT32_MAX)
		return fare_fail(ld, r->line, c + 1, "\"%s\" has a negative amount: a leg's fare may not be negative",
			    fare_field(r, c));
	return 0;
}

/* --- fare_leg_rules.txt, fare_leg_join_rules.txt, fare_transfer_rules.txt */

enum { /* the columns of fare_leg_rules, in its column table */
	LEG_RULE_LEG_GROUP_ID,
	LEG_RULE_NETWORK_ID,
	LEG_RULE_FROM_AREA_ID,
	LEG_RULE_TO_AREA_ID,
	LEG_RULE_FROM_TIMEFRAME_GROUP_ID,
	LEG_RULE_TO_TIMEFRAME_GROUP_ID,
	LEG_RULE_FARE_PRODUCT_ID,
	LEG_RULE_RULE_PRIORITY,
	LEG_RULE_TRANSFER_ONLY
};

/* Each field checked on its own: a refused row is kept as excluded, its bad fields as wildcards, so that
 * with exclude_bad_rows every leg it could have priced is unrated rather than priced by another rule. */
static int leg_rule_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	struct fare_feed *f = ld->f;
	struct fare_leg_rule lr = {.leg_group = -1};
	int64_t v;
	int bad = 0;
	if (*fare_field(r, c[LEG_RULE_LEG_GROUP_ID]) && (lr.leg_group = fare_ids_intern(&f->groups, fare_field(r, c[LEG_RULE_LEG_GROUP_ID]))) < 0)
		return FARE_ERR_NOMEM;
	bad |= fare_get_ref(ld, r, c[LEG_RULE_NETWORK_ID], &f->networks, "network_id", false, &lr.network);
	bad |= fare_get_ref(ld, r, c[LEG_RULE_FROM_AREA_ID], &f->areas, "area_id", false, &lr.from_area);
	bad |= fare_get_ref(ld, r, c[LEG_RULE_TO_AREA_ID], &f->areas, "area_id", false, &lr.to_area);
	bad |= fare_get_ref(ld, r, c[LEG_RULE_FROM_TIMEFRAME_GROUP_ID], &f->tfgroups, "timeframe_group_id", false, &lr.from_tf);
	bad |= fare_get_ref(ld, r, c[LEG_RULE_TO_TIMEFRAME_GROUP_ID], &f->tfgroups, "timeframe_group_id", false, &lr.to_tf);
	bad |= fare_get_ref(ld, r, c[LEG_RULE_FARE_PRODUCT_ID], &f->products, "fare_product_id", true, &lr.product);
	bad |= leg_product(ld, r, c[LEG_RULE_FARE_PRODUCT_ID], lr.product);
	bad |= fare_get_int(ld, r, c[LEG_RULE_RULE_PRIORITY], 0, INT32_MAX, false, 0, &v);
	lr.priority = bad ? 0 : (int32_t)v;
	bad |= fare_get_int(ld, r, c[LEG_RULE_TRANSFER_ONLY], 0, 1, false, 0, &v);
	lr.transfer_only = !bad && v == 1;
	if (lr.product >= 0 && ld->product_bad[lr.product])
		lr.excluded = true; /* its product's row was refused (and reported there) */
	lr.excluded |= bad != 0;
	lr.line = r->line;
	if (bad && !ld->opts->exclude_bad_rows)
		return FARE_ERR_FEED;
	struct fare_leg_rule *p = PUSH(f->leg_rules, f->nleg_rules);
	if (!p)
		return FARE_ERR_NOMEM;
	*p = lr;
	f->nexcluded += lr.excluded;
	f->ntransfer_only += lr.transfer_only;
	return bad ? FARE_ERR_FEED : 0;
}

static int load_fare_leg_rules(struct loader *ld)
{
	static const struct column_def cols[] = {
		[LEG_RULE_LEG_GROUP_ID] = {"leg_group_id", false},
		[LEG_RULE_NETWORK_ID] = {"network_id", false},
		[LEG_RULE_FROM_AREA_ID] = {"from_area_id", false},
		[LEG_RULE_TO_AREA_ID] = {"to_area_id", false},
		[LEG_RULE_FROM_TIMEFRAME_GROUP_ID] = {"from_timeframe_group_id", false},
		[LEG_RULE_TO_TIMEFRAME_GROUP_ID] = {"to_timeframe_group_id", false},
		[LEG_RULE_FARE_PRODUCT_ID] = {"fare_product_id", true},
		[LEG_RULE_RULE_PRIORITY] = {"rule_priority", false},
		[LEG_RULE_TRANSFER_ONLY] = {"transfer_only", false}
	};
	static_assert(sizeof(cols) / sizeof(cols[0]) <= COLUMNS_MAX, "fare_leg_rules.txt's columns");
	ld->f->have_priority = col_of(&ld->t, "rule_priority") >= 0;
	return load_rows(ld, cols, sizeof(cols) / sizeof(cols[0]), leg_rule_row);
}

enum { /* the columns of fare_leg_join_rules, in its column table */
	JOIN_RULE_FROM_NETWORK_ID,
	JOIN_RULE_TO_NETWORK_ID,
	JOIN_RULE_FROM_STOP_ID,
	JOIN_RULE_TO_STOP_ID
};

/* As leg rules: each field checked on its own, and with exclude_bad_rows a refused row is kept as excluded
 * (its bad fields as wildcards), so every pair of legs it could have joined is unrated, not priced apart. */
static int join_rule_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	struct fare_feed *f = ld->f;
	struct fare_join_rule j = {.line = r->line};
	int bad = 0;
	bad |= fare_get_ref(ld, r, c[JOIN_RULE_FROM_NETWORK_ID], &f->networks, "network_id", true, &j.from_network);
	bad |= fare_get_ref(ld, r, c[JOIN_RULE_TO_NETWORK_ID], &f->networks, "network_id", true, &j.to_network);
	bad |= fare_get_ref(ld, r, c[JOIN_RULE_FROM_STOP_ID], &f->stops, "stop_id", false, &j.from_stop);
	bad |= fare_get_ref(ld, r, c[JOIN_RULE_TO_STOP_ID], &f->stops, "stop_id", false, &j.to_stop);
	if (!bad && (j.from_stop < 0) != (j.to_stop < 0))
		bad |= fare_fail(ld, r->line, (j.from_stop < 0 ? c[JOIN_RULE_FROM_STOP_ID] : c[JOIN_RULE_TO_STOP_ID]) + 1,
				 "from_stop_id and to_stop_id go together");
	if (bad && !ld->opts->exclude_bad_rows)
		return FARE_ERR_FEED;
	if (bad && j.from_stop != j.to_stop && (j.from_stop < 0 || j.to_stop < 0))
		j.from_stop = j.to_stop = -1; /* one of the pair refused: any station where the legs meet */
	j.excluded = bad != 0;
	struct fare_join_rule *p = PUSH(f->join_rules, f->njoin_rules);
	if (!p)
		return FARE_ERR_NOMEM;
	*p = j;
	f->nexcluded += j.excluded;
	return bad ? FARE_ERR_FEED : 0;
}
LOAD(load_fare_leg_join_rules, join_rule_row,
	[JOIN_RULE_FROM_NETWORK_ID] = {"from_network_id", true},
	[JOIN_RULE_TO_NETWORK_ID] = {"to_network_id", true},
	[JOIN_RULE_FROM_STOP_ID] = {"from_stop_id", false},
	[JOIN_RULE_TO_STOP_ID] = {"to_stop_id", false})

enum { /* the columns of fare_transfer_rules, in its column table */
	TRANSFER_RULE_FROM_LEG_GROUP_ID,
	TRANSFER_RULE_TO_LEG_GROUP_ID,
	TRANSFER_RULE_TRANSFER_COUNT,
	TRANSFER_RULE_DURATION_LIMIT,
	TRANSFER_RULE_DURATION_LIMIT_TYPE,
	TRANSFER_RULE_FARE_TRANSFER_TYPE,
	TRANSFER_RULE_FARE_PRODUCT_ID,
	TRANSFER_RULE_FILTER_FARE_PRODUCT_ID,
	TRANSFER_RULE_FARE_MEDIA_BEHAVIOR,
	TRANSFER_RULE_FARE_PRODUCT_BEHAVIOR
};

static int transfer_limits(struct loader *ld, const struct csv_row *r, const int *c, struct fare_transfer_rule *tr)
{
	int64_t v;
	int rc;
	bool same = tr->from_group >= 0 && tr->from_group == tr->to_group;
	if (same && !*fare_field(r, c[TRANSFER_RULE_TRANSFER_COUNT]))
		return fare_fail(ld, r->line, c[TRANSFER_RULE_TRANSFER_COUNT] + 1, "required when from_leg_group_id equals to_leg_group_id");
	if (!same && *fare_field(r, c[TRANSFER_RULE_TRANSFER_COUNT]))
		return fare_fail(ld, r->line, c[TRANSFER_RULE_TRANSFER_COUNT] + 1, "forbidden unless from_leg_group_id equals to_leg_group_id");
	if ((rc = fare_get_int(ld, r, c[TRANSFER_RULE_TRANSFER_COUNT], -1, 1000000, false, 0, &v)) != 0)
		return rc;
	if (same && v == 0)
		return fare_fail(ld, r->line, c[TRANSFER_RULE_TRANSFER_COUNT] + 1, "must be -1 (unlimited) or at least 1");
	tr->transfer_count = (int32_t)v;
	if ((rc = fare_get_int(ld, r, c[TRANSFER_RULE_DURATION_LIMIT], 1, INT32_MAX, false, -1, &v)) != 0)
		return rc;
	tr->duration_s = (int32_t)v;
	if (tr->duration_s < 0 && *fare_field(r, c[TRANSFER_RULE_DURATION_LIMIT_TYPE]))
		return fare_fail(ld, r->line, c[TRANSFER_RULE_DURATION_LIMIT_TYPE] + 1, "forbidden without duration_limit");
	if ((rc = fare_get_int(ld, r, c[TRANSFER_RULE_DURATION_LIMIT_TYPE], 0, 3, tr->duration_s >= 0, 0, &v)) != 0)
		return rc;
	tr->duration_type = (int32_t)v;
	return 0;
}

static int transfer_rule_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	struct fare_feed *f = ld->f;
	struct fare_transfer_rule tr;
	int64_t v;
	int rc;
	if ((rc = fare_get_ref(ld, r, c[TRANSFER_RULE_FROM_LEG_GROUP_ID], &f->groups, "leg_group_id", false, &tr.from_group)) != 0)
		return rc;
	if ((rc = fare_get_ref(ld, r, c[TRANSFER_RULE_TO_LEG_GROUP_ID], &f->groups, "leg_group_id", false, &tr.to_group)) != 0)
		return rc;
	if ((rc = transfer_limits(ld, r, c, &tr)) != 0)
		return rc;
	if ((rc = fare_get_int(ld, r, c[TRANSFER_RULE_FARE_TRANSFER_TYPE], 0, 2, true, 0, &v)) != 0)
		return rc;
	tr.transfer_type = (int32_t)v;
	if ((rc = fare_get_ref(ld, r, c[TRANSFER_RULE_FARE_PRODUCT_ID], &f->products, "fare_product_id", false, &tr.product)) != 0)
		return rc;
	if ((rc = fare_get_ref(ld, r, c[TRANSFER_RULE_FILTER_FARE_PRODUCT_ID], &f->products, "fare_product_id", false, &tr.filter_product)) != 0)
		return rc;
	if ((rc = fare_get_int(ld, r, c[TRANSFER_RULE_FARE_MEDIA_BEHAVIOR], 0, 1, false, 0, &v)) != 0)
		return rc;
	tr.media_behavior = (int8_t)v;
	if ((rc = fare_get_int(ld, r, c[TRANSFER_RULE_FARE_PRODUCT_BEHAVIOR], 0, 1, false, 0, &v)) != 0)
		return rc;
	tr.product_behavior = (int8_t)v;
	tr.line = r->line;
	struct fare_transfer_rule *p = PUSH(f->transfer_rules, f->ntransfer_rules);
	if (!p)
		return FARE_ERR_NOMEM;
	*p = tr;
	return 0;
}
LOAD(load_fare_transfer_rules, transfer_rule_row,
	[TRANSFER_RULE_FROM_LEG_GROUP_ID] = {"from_leg_group_id", false},
	[TRANSFER_RULE_TO_LEG_GROUP_ID] = {"to_leg_group_id", false},
	[TRANSFER_RULE_TRANSFER_COUNT] = {"transfer_count", false},
	[TRANSFER_RULE_DURATION_LIMIT] = {"duration_limit", false},
	[TRANSFER_RULE_DURATION_LIMIT_TYPE] = {"duration_limit_type", false},
	[TRANSFER_RULE_FARE_TRANSFER_TYPE] = {"fare_transfer_type", true},
	[TRANSFER_RULE_FARE_PRODUCT_ID] = {"fare_product_id", false},
	[TRANSFER_RULE_FILTER_FARE_PRODUCT_ID] = {"filter_fare_product_id", false},
	[TRANSFER_RULE_FARE_MEDIA_BEHAVIOR] = {"fare_media_behavior", false},
	[TRANSFER_RULE_FARE_PRODUCT_BEHAVIOR] = {"fare_product_behavior", false})

/* --- tg_validator_codes.txt: validators' numbers for routes and stops */

enum { /* the columns of codes, in its column table */
	CODE_KIND,
	CODE_CODE,
	CODE_ID
};

static int code_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	bool stop = strcmp(fare_field(r, c[CODE_KIND]), "stop") == 0;
	int32_t ix;
	uint32_t code;
	int rc;
	if (!stop && strcmp(fare_field(r, c[CODE_KIND]), "route") != 0)
		return fare_fail(ld, r->line, c[CODE_KIND] + 1, "\"%s\" is not stop or route", fare_field(r, c[CODE_KIND]));
	if (!code_of(fare_field(r, c[CODE_CODE]), &code))
		return fare_fail(ld, r->line, c[CODE_CODE] + 1, "\"%s\" is not a decimal number", fare_field(r, c[CODE_CODE]));
	if ((rc = fare_get_ref(ld, r, c[CODE_ID], stop ? &ld->f->stops : &ld->f->routes, stop ? "stop_id" : "route_id", true, &ix)) != 0)
		return rc;
	if (stop && !ld->stop_codes_explicit)
		ld->stop_codes_explicit = true, ld->nstop_cands = 0;
	if (!stop && !ld->route_codes_explicit)
		ld->route_codes_explicit = true, ld->nroute_cands = 0;
	struct code_candidate **arr = stop ? &ld->stop_cands : &ld->route_cands;
	uint32_t *n = stop ? &ld->nstop_cands : &ld->nroute_cands;
	for (uint32_t i = 0; i < *n; i++)
		if ((*arr)[i].code == code)
			return fare_fail(ld, r->line, c[CODE_CODE] + 1, "%s code %u is mapped already", fare_field(r, c[CODE_KIND]), code);
	struct code_candidate *p = PUSH(*arr, *n);
	if (!p)
		return FARE_ERR_NOMEM;
	*p = (struct code_candidate){.code = code, .ix = (uint32_t)ix, .source = 0};
	return 0;
}
LOAD(load_codes, code_row,
	[CODE_KIND] = {"kind", true},
	[CODE_CODE] = {"code", true},
	[CODE_ID] = {"id", true})

/* --- our extension files */

enum { /* the columns of card_categories, in its column table */
	CARD_CATEGORY_CARD_CATEGORY,
	CARD_CATEGORY_RIDER_CATEGORY_ID
};

static int card_category_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	int64_t cat;
	int rc;
	if ((rc = fare_get_int(ld, r, c[CARD_CATEGORY_CARD_CATEGORY], 0, FARE_CARD_CATEGORIES - 1, true, 0, &cat)) != 0)
		return rc;
	if (ld->f->category_of[cat] >= 0)
		return fare_fail(ld, r->line, c[CARD_CATEGORY_CARD_CATEGORY] + 1, "card_category %d is mapped already", (int)cat);
	return fare_get_ref(ld, r, c[CARD_CATEGORY_RIDER_CATEGORY_ID], &ld->f->categories, "rider_category_id", true, &ld->f->category_of[cat]);
}
LOAD(load_card_categories, card_category_row,
	[CARD_CATEGORY_CARD_CATEGORY] = {"card_category", true},
	[CARD_CATEGORY_RIDER_CATEGORY_ID] = {"rider_category_id", true})

enum { /* the columns of incomplete, in its column table */
	INCOMPLETE_NETWORK_ID,
	INCOMPLETE_MAX_JOURNEY_S,
	INCOMPLETE_FARE_PRODUCT_ID,
	INCOMPLETE_BOARD_EXIT
};

static int incomplete_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	struct fare_feed *f = ld->f;
	struct fare_incomplete in;
	int64_t v;
	int rc;
	if ((rc = fare_get_ref(ld, r, c[INCOMPLETE_NETWORK_ID], &f->networks, "network_id", true, &in.network)) != 0)
		return rc;
	for (uint32_t j = 0; j < f->nincomplete; j++)
		if (f->incomplete[j].network == in.network)
			return fare_fail(ld, r->line, c[INCOMPLETE_NETWORK_ID] + 1, "network \"%s\" has a row already", fare_field(r, c[INCOMPLETE_NETWORK_ID]));
	if ((rc = fare_get_int(ld, r, c[INCOMPLETE_MAX_JOURNEY_S], 1, 86400, true, 0, &v)) != 0)
		return rc;
	in.max_journey_s = (int32_t)v;
	if ((rc = fare_get_ref(ld, r, c[INCOMPLETE_FARE_PRODUCT_ID], &f->products, "fare_product_id", true, &in.product)) != 0)
		return rc;
	if ((rc = leg_product(ld, r, c[INCOMPLETE_FARE_PRODUCT_ID], in.product)) != 0)
		return rc;
	if ((rc = fare_get_int(ld, r, c[INCOMPLETE_BOARD_EXIT], 0, 1, false, 0, &v)) != 0)
		return rc;
	in.board_exit = v == 1;
	struct fare_incomplete *p = PUSH(f->incomplete, f->nincomplete);
	if (!p)
		return FARE_ERR_NOMEM;
	*p = in;
	return 0;
}
LOAD(load_incomplete, incomplete_row,
	[INCOMPLETE_NETWORK_ID] = {"network_id", true},
	[INCOMPLETE_MAX_JOURNEY_S] = {"max_journey_s", true},
	[INCOMPLETE_FARE_PRODUCT_ID] = {"fare_product_id", true},
	[INCOMPLETE_BOARD_EXIT] = {"board_exit", false})

enum { /* the columns of caps, in its column table */
	CAP_CAP_ID,
	CAP_FARE_MEDIA_ID,
	CAP_RIDER_CATEGORY_ID,
	CAP_CAP_PERIOD,
	CAP_AMOUNT
};

static int cap_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	static const char *const periods[] = {"day", "week", "month"};
	struct fare_feed *f = ld->f;
	struct fare_cap cap = {.period = 0xff};
	int rc;
	if ((rc = fare_get_new_id(ld, r, c[CAP_CAP_ID], &f->caps, NULL)) != 0)
		return rc;
	if ((rc = fare_get_ref(ld, r, c[CAP_FARE_MEDIA_ID], &f->media, "fare_media_id", true, &cap.media)) != 0)
		return rc;
	if ((rc = fare_get_ref(ld, r, c[CAP_RIDER_CATEGORY_ID], &f->categories, "rider_category_id", false, &cap.category)) != 0)
		return rc;
	for (uint8_t p = 0; p < 3; p++)
		if (strcmp(fare_field(r, c[CAP_CAP_PERIOD]), periods[p]) == 0)
			cap.period = p;
	if (cap.period == 0xff)
		return fare_fail(ld, r->line, c[CAP_CAP_PERIOD] + 1, "\"%s\" is not day, week or month", fare_field(r, c[CAP_CAP_PERIOD]));
	if ((rc = fare_get_amount(ld, r, c[CAP_AMOUNT], false, &cap.amount_fen)) != 0)
		return rc;
	struct fare_cap *p = PUSH(f->cap_rows, f->ncaps);
	if (!p)
		return FARE_ERR_NOMEM;
	*p = cap;
	return 0;
}
LOAD(load_caps, cap_row,
	[CAP_CAP_ID] = {"cap_id", true},
	[CAP_FARE_MEDIA_ID] = {"fare_media_id", true},
	[CAP_RIDER_CATEGORY_ID] = {"rider_category_id", false},
	[CAP_CAP_PERIOD] = {"cap_period", true},
	[CAP_AMOUNT] = {"amount", true})

enum { /* the columns of tiers, in its column table */
	TIER_TIER_ID,
	TIER_FARE_MEDIA_ID,
	TIER_RIDER_CATEGORY_ID,
	TIER_THRESHOLD,
	TIER_DISCOUNT_PERCENT
};

static int tier_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	struct fare_feed *f = ld->f;
	struct fare_tier t;
	int64_t v;
	int rc;
	if ((rc = fare_get_new_id(ld, r, c[TIER_TIER_ID], &f->tiers, NULL)) != 0)
		return rc;
	if ((rc = fare_get_ref(ld, r, c[TIER_FARE_MEDIA_ID], &f->media, "fare_media_id", true, &t.media)) != 0)
		return rc;
	if ((rc = fare_get_ref(ld, r, c[TIER_RIDER_CATEGORY_ID], &f->categories, "rider_category_id", false, &t.category)) != 0)
		return rc;
	if ((rc = fare_get_amount64(ld, r, c[TIER_THRESHOLD], &t.threshold_fen)) != 0)
		return rc;
	if ((rc = fare_get_int(ld, r, c[TIER_DISCOUNT_PERCENT], 1, 100, true, 0, &v)) != 0)
		return rc;
	t.discount_pct = (int32_t)v;
	struct fare_tier *p = PUSH(f->tier_rows, f->ntiers);
	if (!p)
		return FARE_ERR_NOMEM;
	*p = t;
	return 0;
}
LOAD(load_tiers, tier_row,
	[TIER_TIER_ID] = {"tier_id", true},
	[TIER_FARE_MEDIA_ID] = {"fare_media_id", true},
	[TIER_RIDER_CATEGORY_ID] = {"rider_category_id", false},
	[TIER_THRESHOLD] = {"threshold", true},
	[TIER_DISCOUNT_PERCENT] = {"discount_percent", true})

/* route_id of a promotion or subsidy: optional, a validator's route number that maps to a route. */
static int get_route(struct loader *ld, const struct csv_row *r, int c, int32_t *set, uint32_t *route_id)
{
	*set = 0;
	if (!*fare_field(r, c))
		return 0;
	if (!code_of(fare_field(r, c), route_id) || fare_feed_route_of_code(ld->f, *route_id) == FARE_NO_INDEX)
		return fare_fail(ld, r->line, c + 1, "unknown route_id \"%s\"", fare_field(r, c));
	*set = 1;
	return 0;
}

enum { /* the columns of promotions, in its column table */
	PROMOTION_PROMOTION_ID,
	PROMOTION_FUNDER_ID,
	PROMOTION_FARE_MEDIA_ID,
	PROMOTION_NETWORK_ID,
	PROMOTION_ROUTE_ID,
	PROMOTION_START_DATE,
	PROMOTION_END_DATE,
	PROMOTION_RIDER_AMOUNT,
	PROMOTION_MAX_PER_TOKEN_PER_DAY,
	PROMOTION_BUDGET
};

static int promotion_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	struct fare_feed *f = ld->f;
	struct fare_promotion pm;
	int64_t v;
	int rc;
	if ((rc = fare_get_new_id(ld, r, c[PROMOTION_PROMOTION_ID], &f->promotions, NULL)) != 0)
		return rc;
	if (!*fare_field(r, c[PROMOTION_FUNDER_ID]))
		return fare_fail(ld, r->line, c[PROMOTION_FUNDER_ID] + 1, "required value is empty");
	if ((pm.funder = fare_ids_intern(&f->funders, fare_field(r, c[PROMOTION_FUNDER_ID]))) < 0)
		return FARE_ERR_NOMEM;
	if ((rc = fare_get_ref(ld, r, c[PROMOTION_FARE_MEDIA_ID], &f->media, "fare_media_id", true, &pm.media)) != 0)
		return rc;
	if ((rc = fare_get_ref(ld, r, c[PROMOTION_NETWORK_ID], &f->networks, "network_id", false, &pm.network)) != 0)
		return rc;
	if ((rc = get_route(ld, r, c[PROMOTION_ROUTE_ID], &pm.route_id_set, &pm.route_id)) != 0)
		return rc;
	if ((rc = fare_get_dates(ld, r, c[PROMOTION_START_DATE], c[PROMOTION_END_DATE], &pm.start_date, &pm.end_date)) != 0)
		return rc;
	if ((rc = fare_get_amount(ld, r, c[PROMOTION_RIDER_AMOUNT], false, &pm.rider_amount_fen)) != 0)
		return rc;
	if ((rc = fare_get_int(ld, r, c[PROMOTION_MAX_PER_TOKEN_PER_DAY], 1, 1000, true, 0, &v)) != 0)
		return rc;
	pm.max_per_token_per_day = (int32_t)v;
	if ((rc = fare_get_amount64(ld, r, c[PROMOTION_BUDGET], &pm.budget_fen)) != 0)
		return rc;
	struct fare_promotion *p = PUSH(f->promotion_rows, f->npromotions);
	if (!p)
		return FARE_ERR_NOMEM;
	*p = pm;
	return 0;
}
LOAD(load_promotions, promotion_row,
	[PROMOTION_PROMOTION_ID] = {"promotion_id", true},
	[PROMOTION_FUNDER_ID] = {"funder_id", true},
	[PROMOTION_FARE_MEDIA_ID] = {"fare_media_id", true},
	[PROMOTION_NETWORK_ID] = {"network_id", false},
	[PROMOTION_ROUTE_ID] = {"route_id", false},
	[PROMOTION_START_DATE] = {"start_date", true},
	[PROMOTION_END_DATE] = {"end_date", true},
	[PROMOTION_RIDER_AMOUNT] = {"rider_amount", true},
	[PROMOTION_MAX_PER_TOKEN_PER_DAY] = {"max_per_token_per_day", true},
	[PROMOTION_BUDGET] = {"budget", true})

enum { /* the columns of subsidies, in its column table */
	SUBSIDY_SUBSIDY_ID,
	SUBSIDY_FUNDER_ID,
	SUBSIDY_RIDER_CATEGORY_ID,
	SUBSIDY_FARE_MEDIA_ID,
	SUBSIDY_ROUTE_ID,
	SUBSIDY_START_DATE,
	SUBSIDY_END_DATE,
	SUBSIDY_AMOUNT_PER_MEAL,
	SUBSIDY_MAX_MEALS_PER_DAY
};

static int subsidy_row(struct loader *ld, const struct csv_row *r, const int *c)
{
	struct fare_feed *f = ld->f;
	struct fare_subsidy sb;
	int64_t v;
	int rc;
	if ((rc = fare_get_new_id(ld, r, c[SUBSIDY_SUBSIDY_ID], &f->subsidies, NULL)) != 0)
		return rc;
	if (!*fare_field(r, c[SUBSIDY_FUNDER_ID]))
		return fare_fail(ld, r->line, c[SUBSIDY_FUNDER_ID] + 1, "required value is empty");
	if ((sb.funder = fare_ids_intern(&f->funders, fare_field(r, c[SUBSIDY_FUNDER_ID]))) < 0)
		return FARE_ERR_NOMEM;
	if ((rc = fare_get_ref(ld, r, c[SUBSIDY_RIDER_CATEGORY_ID], &f->categories, "rider_category_id", true, &sb.category)) != 0)
		return rc;
	if ((rc = fare_get_ref(ld, r, c[SUBSIDY_FARE_MEDIA_ID], &f->media, "fare_media_id", false, &sb.media)) != 0)
		return rc;
	if ((rc = get_route(ld, r, c[SUBSIDY_ROUTE_ID], &sb.route_id_set, &sb.route_id)) != 0)
		return rc;
	if ((rc = fare_get_dates(ld, r, c[SUBSIDY_START_DATE], c[SUBSIDY_END_DATE], &sb.start_date, &sb.end_date)) != 0)
		return rc;
	if ((rc = fare_get_amount(ld, r, c[SUBSIDY_AMOUNT_PER_MEAL], false, &sb.amount_fen)) != 0)
		return rc;
	if (sb.amount_fen == 0)
		return fare_fail(ld, r->line, c[SUBSIDY_AMOUNT_PER_MEAL] + 1, "must be above 0");
	if ((rc = fare_get_int(ld, r, c[SUBSIDY_MAX_MEALS_PER_DAY], 1, 100, true, 0, &v)) != 0)
		return rc;
	sb.max_per_day = (int32_t)v;
	struct fare_subsidy *p = PUSH(f->subsidy_rows, f->nsubsidies);
	if (!p)
		return FARE_ERR_NOMEM;
	*p = sb;
	return 0;
}
LOAD(load_subsidies, subsidy_row,
	[SUBSIDY_SUBSIDY_ID] = {"subsidy_id", true},
	[SUBSIDY_FUNDER_ID] = {"funder_id", true},
	[SUBSIDY_RIDER_CATEGORY_ID] = {"rider_category_id", true},
	[SUBSIDY_FARE_MEDIA_ID] = {"fare_media_id", false},
	[SUBSIDY_ROUTE_ID] = {"route_id", false},
	[SUBSIDY_START_DATE] = {"start_date", true},
	[SUBSIDY_END_DATE] = {"end_date", true},
	[SUBSIDY_AMOUNT_PER_MEAL] = {"amount_per_meal", true},
	[SUBSIDY_MAX_MEALS_PER_DAY] = {"max_meals_per_day", true})

/* --- validator codes, once stops, routes and tg_validator_codes.txt are in */

static int cmp_candidate(const void *a, const void *b)
{
	const struct code_candidate *x = a, *y = b;
	if (x->code != y->code)
		return x->code < y->code ? -1 : 1;
	if (x->source != y->source)
		return x->source - y->source;
	return x->ix < y->ix ? -1 : x->ix > y->ix;
}

/* A number maps to the feed id equal to it; else to the one stop_code / route_short_name equal to it;
 * a number two of those share maps to nothing (such taps are unrated, never guessed). */
static int build_codes(struct code_candidate *cands, uint32_t n, struct fare_code **out, uint32_t *nout)
{
	if (n > 0)
		qsort(cands, n, sizeof(*cands), cmp_candidate);
	if (!(*out = malloc((n + 1) * sizeof(**out))))
		return FARE_ERR_NOMEM;
	*nout = 0;
	for (uint32_t i = 0; i < n;) {
		uint32_t j = i;
		while (j < n && cands[j].code == cands[i].code)
			j++;
		bool unique = cands[i].source == 0 || j - i == 1;
		if (unique)
			(*out)[(*nout)++] = (struct fare_code){.code = cands[i].code, .ix = cands[i].ix};
		i = j;
	}
	return 0;
}

static int finish_codes(struct loader *ld)
{
	struct fare_feed *f = ld->f;
	int rc = build_codes(ld->stop_cands, ld->nstop_cands, &f->stop_codes, &f->nstop_codes);
	return rc ? rc : build_codes(ld->route_cands, ld->nroute_cands, &f->route_codes, &f->nroute_codes);
}

/* --- all files */

typedef int (*table_fn)(struct loader *ld);
static const struct {
	const char *name;
	table_fn fn;
	bool required;
} tables[] = {
	{"feed_info.txt", load_feed_info, false},
	{"agency.txt", load_agency, false},
	{"stops.txt", load_stops, true},
	{"areas.txt", load_areas, false},
	{"stop_areas.txt", load_stop_areas, false},
	{"networks.txt", load_networks, false},
	{"routes.txt", load_routes, true},
	{"route_networks.txt", load_route_networks, false},
	{"calendar.txt", load_calendar, false},
	{"calendar_dates.txt", load_calendar_dates, false},
	{"timeframes.txt", load_timeframes, false},
	{"fare_media.txt", load_fare_media, false},
	{"tg_media.txt", load_tg_media, false},
	{"rider_categories.txt", load_rider_categories, false},
	{"fare_products.txt", load_fare_products, true},
	{"fare_leg_rules.txt", load_fare_leg_rules, true},
	{"fare_leg_join_rules.txt", load_fare_leg_join_rules, false},
	{"fare_transfer_rules.txt", load_fare_transfer_rules, false},
	{"tg_validator_codes.txt", load_codes, false},
	{"tg_card_categories.txt", load_card_categories, false},
	{"tg_incomplete_journeys.txt", load_incomplete, false},
	{"tg_fare_caps.txt", load_caps, false},
	{"tg_spend_tiers.txt", load_tiers, false},
	{"tg_promotions.txt", load_promotions, false},
	{"tg_subsidies.txt", load_subsidies, false},
};

const char *fare_feed_known_file(unsigned i)
{
	return i < sizeof(tables) / sizeof(tables[0]) ? tables[i].name : NULL;
}

static const struct fare_file *file_get(const struct fare_file *files, unsigned n, const char *name)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(files[i].name, name) == 0)
			return &files[i];
	return NULL;
}

/* Parse one file into ld->t and load it. Returns 0, or FARE_ERR_FEED / FARE_ERR_NOMEM. */
static int load_one(struct loader *ld, const struct fare_file *files, unsigned n, unsigned i)
{
	const struct fare_file *ff = file_get(files, n, tables[i].name);
	snprintf(ld->path, sizeof(ld->path), "%s/%s", ld->label, tables[i].name);
	ld->file = tables[i].name;
	fare_csv_table_free(&ld->t);
	if (!ff)
		return tables[i].required ? fare_fail(ld, 0, 0, "required file missing") : 0;
	char err[FARE_ERR_MAX];
	int rc = fare_csv_table_parse(&ld->t, ld->path, ff->data, ff->len, err, sizeof(err));
	if (rc == FARE_ERR_FEED)
		return fare_fail_line(ld, err); /* err names its own line and column */
	return rc != 0 ? rc : tables[i].fn(ld);
}

int fare_load_tables(struct loader *ld, const struct fare_file *files, unsigned n)
{
	int rc = 0;
	for (unsigned i = 0; i < sizeof(tables) / sizeof(tables[0]) && !ld->rep->truncated; i++) {
		int r = load_one(ld, files, n, i);
		if (r == FARE_ERR_NOMEM)
			return r;
		if (r != 0)
			rc = r;
		if (strcmp(tables[i].name, "tg_validator_codes.txt") == 0 && (r = finish_codes(ld)) != 0)
			return r;
		if (strcmp(tables[i].name, "stops.txt") == 0 && ld->t.nrows > 0 && (r = finish_stops(ld)) != 0) {
			if (r == FARE_ERR_NOMEM)
				return r;
			rc = r;
		}
	}
	fare_csv_table_free(&ld->t);
	return rc;
}
