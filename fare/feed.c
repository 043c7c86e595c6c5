/*
 * feed.c - load and validate a GTFS-Fares v2 feed and our tg_* extension
 * files into index-only tables (fare/internal.h).
 *
 * A feed is all or nothing: the first error stops the load, names file, line
 * and column, and nothing of the feed is kept. Ids become indices here, so
 * rating never compares strings. Amounts are decimal text turned into fen
 * with integer arithmetic only. The version is XXH3-128 over the files'
 * names and bytes, so the same rules always carry the same version.
 */
#include "fare/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define FEED_FILE_BYTES_MAX (64u << 20)

/* Every file we read, in the order they are loaded (references point backwards). */
static const char *const known_files[] = {
	"feed_info.txt", "stops.txt", "areas.txt", "stop_areas.txt", "networks.txt", "routes.txt",
	"route_networks.txt", "calendar.txt", "timeframes.txt", "fare_media.txt", "rider_categories.txt",
	"fare_products.txt", "fare_leg_rules.txt", "fare_transfer_rules.txt", "tg_card_categories.txt",
	"tg_incomplete_journeys.txt", "tg_fare_caps.txt", "tg_promotions.txt", "tg_subsidies.txt", NULL,
};
static const char *const required_files[] = {
	"stops.txt", "routes.txt", "fare_media.txt", "rider_categories.txt", "fare_products.txt",
	"fare_leg_rules.txt", NULL,
};

struct loader {
	struct fare_feed *f;
	const char *label;
	char *err;
	size_t err_len;
	struct csv_table t; /* the file being loaded */
	char path[512];
};

/* --- ids */

static int32_t ids_find(const struct fare_ids *ids, const char *name)
{
	for (uint32_t i = 0; i < ids->n; i++)
		if (strcmp(ids->names[i], name) == 0)
			return (int32_t)i;
	return -1;
}

/* Returns the new index, -1 if present already, -2 out of memory. */
static int32_t ids_add(struct fare_ids *ids, const char *name)
{
	if (ids_find(ids, name) >= 0)
		return -1;
	if (ids->n == ids->cap) {
		uint32_t cap = ids->cap ? ids->cap * 2 : 16;
		char **n = realloc(ids->names, cap * sizeof(*n));
		if (!n)
			return -2;
		ids->names = n;
		ids->cap = cap;
	}
	if (!(ids->names[ids->n] = strdup(name)))
		return -2;
	return (int32_t)ids->n++;
}

static int32_t ids_intern(struct fare_ids *ids, const char *name)
{
	int32_t i = ids_find(ids, name);
	return i >= 0 ? i : ids_add(ids, name);
}

static void ids_free(struct fare_ids *ids)
{
	for (uint32_t i = 0; i < ids->n; i++)
		free(ids->names[i]);
	free(ids->names);
}

/* --- errors and fields */

static int fail(struct loader *ld, uint32_t line, int col, const char *fmt, ...)
{
	char msg[FARE_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	const char *colname = col > 0 && (uint32_t)col <= ld->t.ncols ? ld->t.header[col - 1] : NULL;
	if (colname)
		snprintf(ld->err, ld->err_len, "%s:%u:%d: %s: %s", ld->path, line, col, colname, msg);
	else
		snprintf(ld->err, ld->err_len, "%s:%u:%d: %s", ld->path, line, col, msg);
	return FARE_ERR_FEED;
}

static int col_of(const struct csv_table *t, const char *name)
{
	for (uint32_t i = 0; i < t->ncols; i++)
		if (strcmp(t->header[i], name) == 0)
			return (int)i;
	return -1;
}

/* A column: its index, or -1 when absent (and an error when required). */
static int column(struct loader *ld, const char *name, bool required, int *rc)
{
	int c = col_of(&ld->t, name);
	if (c < 0 && required && *rc == 0)
		*rc = fail(ld, 1, 0, "missing required column \"%s\"", name);
	return c;
}

static const char *fld(const struct csv_row *r, int c)
{
	return c >= 0 && (uint32_t)c < r->nfields ? r->fields[c] : "";
}

static bool parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	if (!*s)
		return false;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Decimal yuan text to fen: "2" "2.0" "2.00" "-1.00" "0.01". At most 2 decimals. */
static bool parse_amount(const char *s, int64_t *fen, const char **why)
{
	bool neg = *s == '-';
	const char *p = s + (neg || *s == '+');
	int64_t whole = 0, frac = 0;
	unsigned digits = 0, decimals = 0;
	*why = "not a decimal amount";
	for (; *p >= '0' && *p <= '9'; p++, digits++) {
		if (whole > 100000000000LL)
			return (*why = "too large"), false;
		whole = whole * 10 + (*p - '0');
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, decimals++)
			if (decimals < 2)
				frac = frac * 10 + (*p - '0');
			else if (*p != '0')
				return (*why = "has more than 2 decimals"), false;
	}
	if (*p || digits == 0)
		return false;
	if (decimals == 1)
		frac *= 10;
	*fen = (neg ? -1 : 1) * (whole * 100 + frac);
	return true;
}

static bool parse_time(const char *s, int32_t *sec)
{
	unsigned h, m, sc;
	char tail;
	if (sscanf(s, "%u:%u:%u%c", &h, &m, &sc, &tail) != 3 || m > 59 || sc > 59 || h > 24)
		return false;
	*sec = (int32_t)(h * 3600 + m * 60 + sc);
	return *sec <= 86400;
}

static bool parse_date(const char *s, uint32_t *date)
{
	int64_t v;
	if (strlen(s) != 8 || !parse_i64(s, 10000101, 99991231, &v) || !fare_date_valid((uint32_t)v))
		return false;
	*date = (uint32_t)v;
	return true;
}

/* --- per-field checks that fill a value or fail with the row's position */

#define CHECK(expr) do { if ((rc = (expr)) != 0) return rc; } while (0)

static int get_int(struct loader *ld, const struct csv_row *r, int c, int64_t min, int64_t max, bool required,
		   int64_t dflt, int64_t *out)
{
	const char *s = fld(r, c);
	if (!*s) {
		if (required)
			return fail(ld, r->line, c + 1, "required value is empty");
		*out = dflt;
		return 0;
	}
	if (!parse_i64(s, min, max, out))
		return fail(ld, r->line, c + 1, "\"%s\" is not an integer in %lld .. %lld", s, (long long)min,
			    (long long)max);
	return 0;
}

static int get_amount(struct loader *ld, const struct csv_row *r, int c, bool allow_negative, int32_t *out)
{
	const char *s = fld(r, c), *why;
	int64_t v;
	if (!*s)
		return fail(ld, r->line, c + 1, "required amount is empty");
	if (!parse_amount(s, &v, &why))
		return fail(ld, r->line, c + 1, "\"%s\" %s", s, why);
	if (v < 0 && !allow_negative)
		return fail(ld, r->line, c + 1, "\"%s\" must not be negative", s);
	if (v > INT32_MAX || v < -INT32_MAX)
		return fail(ld, r->line, c + 1, "\"%s\" is too large", s);
	*out = (int32_t)v;
	return 0;
}

static int get_amount64(struct loader *ld, const struct csv_row *r, int c, int64_t *out)
{
	const char *s = fld(r, c), *why;
	if (!*s)
		return fail(ld, r->line, c + 1, "required amount is empty");
	if (!parse_amount(s, out, &why))
		return fail(ld, r->line, c + 1, "\"%s\" %s", s, why);
	if (*out < 0)
		return fail(ld, r->line, c + 1, "\"%s\" must not be negative", s);
	return 0;
}

/* A reference to an id of ids: -1 when empty and optional. */
static int get_ref(struct loader *ld, const struct csv_row *r, int c, const struct fare_ids *ids,
		   const char *what, bool required, int32_t *out)
{
	const char *s = fld(r, c);
	*out = -1;
	if (!*s)
		return required ? fail(ld, r->line, c + 1, "required value is empty") : 0;
	if ((*out = ids_find(ids, s)) < 0)
		return fail(ld, r->line, c + 1, "unknown %s \"%s\"", what, s);
	return 0;
}

/* A new id: fails on empty or duplicate. */
static int get_new_id(struct loader *ld, const struct csv_row *r, int c, struct fare_ids *ids, int32_t *out)
{
	const char *s = fld(r, c);
	if (!*s)
		return fail(ld, r->line, c + 1, "required id is empty");
	if (strlen(s) >= FARE_ID_MAX)
		return fail(ld, r->line, c + 1, "id longer than %u bytes", FARE_ID_MAX - 1);
	int32_t i = ids_add(ids, s);
	if (i == -2)
		return FARE_ERR_NOMEM;
	if (i < 0)
		return fail(ld, r->line, c + 1, "duplicate id \"%s\"", s);
	if (out)
		*out = i;
	return 0;
}

static int get_date(struct loader *ld, const struct csv_row *r, int c, uint32_t *out)
{
	if (!parse_date(fld(r, c), out))
		return fail(ld, r->line, c + 1, "\"%s\" is not a date YYYYMMDD", fld(r, c));
	return 0;
}

static int get_decimal_id(struct loader *ld, const struct csv_row *r, int c, uint32_t *out)
{
	int64_t v;
	int rc;
	CHECK(get_int(ld, r, c, 0, UINT32_MAX, true, 0, &v));
	*out = (uint32_t)v;
	return 0;
}

/* --- files */

static const struct fare_file *file_get(const struct fare_file *files, unsigned n, const char *name)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(files[i].name, name) == 0)
			return &files[i];
	return NULL;
}

/* Parse one file into ld->t. Returns 0, 1 (absent, optional), or an error. */
static int open_table(struct loader *ld, const struct fare_file *files, unsigned n, const char *name)
{
	const struct fare_file *ff = file_get(files, n, name);
	snprintf(ld->path, sizeof(ld->path), "%s/%s", ld->label, name);
	csv_table_free(&ld->t);
	if (!ff) {
		for (unsigned i = 0; required_files[i]; i++)
			if (strcmp(required_files[i], name) == 0) {
				snprintf(ld->err, ld->err_len, "%s:0:0: required file missing", ld->path);
				return FARE_ERR_FEED;
			}
		return 1;
	}
	int rc = csv_table_parse(&ld->t, ld->path, ff->data, ff->len, ld->err, ld->err_len);
	if (rc != 0)
		return rc;
	for (uint32_t i = 0; i < ld->t.nrows; i++) {
		const struct csv_row *r = &ld->t.rows[i];
		if (r->nfields != ld->t.ncols)
			return fail(ld, r->line, 0, "%u fields, the header has %u", r->nfields, ld->t.ncols);
	}
	return 0;
}

/* Arrays grown one row at a time. */
static void *grow(void *p, uint32_t n, size_t size)
{
	if (n != 0 && (n < 8 || (n & (n - 1))))
		return p; /* capacity: 8, then doubles at each power of two */
	return realloc(p, (n ? 2 * (size_t)n : 8) * size);
}
#define PUSH(arr, n) ((arr) = grow((arr), (n), sizeof(*(arr)))) ? &(arr)[(n)++] : NULL

/* --- one loader per file: columns, then each row checked and stored */

static int load_feed_info(struct loader *ld)
{
	int rc = 0, c = column(ld, "feed_version", false, &rc);
	if (c >= 0 && ld->t.nrows > 0)
		snprintf(ld->f->version_label, sizeof(ld->f->version_label), "%s", fld(&ld->t.rows[0], c));
	return rc;
}

struct id_line {
	uint32_t id, line;
};

static int cmp_id_line(const void *a, const void *b)
{
	const struct id_line *x = a, *y = b;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static bool stop_known(const struct fare_feed *f, uint32_t id)
{
	return bsearch(&id, f->stops, f->nstops, sizeof(uint32_t), cmp_u32) != NULL;
}

static int load_stops(struct loader *ld)
{
	int rc = 0, c = column(ld, "stop_id", true, &rc);
	struct fare_feed *f = ld->f;
	if (rc)
		return rc;
	struct id_line *tmp = calloc(ld->t.nrows + 1, sizeof(*tmp));
	if (!tmp || !(f->stops = calloc(ld->t.nrows + 1, sizeof(uint32_t)))) {
		free(tmp);
		return FARE_ERR_NOMEM;
	}
	for (uint32_t i = 0; i < ld->t.nrows && rc == 0; i++) {
		rc = get_decimal_id(ld, &ld->t.rows[i], c, &tmp[i].id);
		tmp[i].line = ld->t.rows[i].line;
	}
	if (rc == 0)
		qsort(tmp, ld->t.nrows, sizeof(*tmp), cmp_id_line);
	for (uint32_t i = 0; i < ld->t.nrows && rc == 0; i++) {
		if (i > 0 && tmp[i].id == tmp[i - 1].id)
			rc = fail(ld, tmp[i].line, c + 1, "duplicate id \"%u\"", tmp[i].id);
		f->stops[f->nstops++] = tmp[i].id;
	}
	free(tmp);
	return rc;
}

static int load_areas(struct loader *ld)
{
	int rc = 0, c = column(ld, "area_id", true, &rc);
	for (uint32_t i = 0; i < ld->t.nrows && rc == 0; i++)
		rc = get_new_id(ld, &ld->t.rows[i], c, &ld->f->areas, NULL);
	return rc;
}

static int load_stop_areas(struct loader *ld)
{
	int rc = 0, ca = column(ld, "area_id", true, &rc), cs = column(ld, "stop_id", true, &rc);
	struct fare_feed *f = ld->f;
	for (uint32_t i = 0; i < ld->t.nrows && rc == 0; i++) {
		const struct csv_row *r = &ld->t.rows[i];
		struct fare_stop_area sa;
		CHECK(get_ref(ld, r, ca, &f->areas, "area_id", true, &sa.area));
		CHECK(get_decimal_id(ld, r, cs, &sa.stop_id));
		if (!stop_known(f, sa.stop_id))
			return fail(ld, r->line, cs + 1, "unknown stop_id \"%u\"", sa.stop_id);
		for (uint32_t j = 0; j < f->nstop_areas; j++)
			if (f->stop_areas[j].stop_id == sa.stop_id && f->stop_areas[j].area == sa.area)
				return fail(ld, r->line, cs + 1, "stop %u is in area \"%s\" already", sa.stop_id,
					    fld(r, ca));
		struct fare_stop_area *p = PUSH(f->stop_areas, f->nstop_areas);
		if (!p)
			return FARE_ERR_NOMEM;
		*p = sa;
	}
	return rc;
}

static int load_networks(struct loader *ld)
{
	int rc = 0, c = column(ld, "network_id", true, &rc);
	for (uint32_t i = 0; i < ld->t.nrows && rc == 0; i++)
		rc = get_new_id(ld, &ld->t.rows[i], c, &ld->f->networks, NULL);
	if (rc == 0 && ld->t.nrows == 0)
		ld->f->networks.n = 0;
	return rc;
}

static struct fare_route *route_find(const struct fare_feed *f, uint32_t route_id)
{
	for (uint32_t i = 0; i < f->nroutes; i++) /* while loading; rating uses the sorted array */
		if (f->routes[i].route_id == route_id)
			return &f->routes[i];
	return NULL;
}

static int load_routes(struct loader *ld)
{
	int rc = 0, c = column(ld, "route_id", true, &rc), cn = column(ld, "network_id", false, &rc);
	struct fare_feed *f = ld->f;
	bool networks_file = f->networks.n > 0;
	for (uint32_t i = 0; i < ld->t.nrows && rc == 0; i++) {
		const struct csv_row *r = &ld->t.rows[i];
		struct fare_route rt = {.network = -1};
		CHECK(get_decimal_id(ld, r, c, &rt.route_id));
		if (route_find(f, rt.route_id))
			return fail(ld, r->line, c + 1, "duplicate id \"%u\"", rt.route_id);
		if (*fld(r, cn) && networks_file)
			CHECK(get_ref(ld, r, cn, &f->networks, "network_id", false, &rt.network));
		else if (*fld(r, cn) && (rt.network = ids_intern(&f->networks, fld(r, cn))) < 0)
			return FARE_ERR_NOMEM;
		struct fare_route *p = PUSH(f->routes, f->nroutes);
		if (!p)
			return FARE_ERR_NOMEM;
		*p = rt;
	}
	return rc;
}

static int load_route_networks(struct loader *ld)
{
	int rc = 0, cn = column(ld, "network_id", true, &rc), cr = column(ld, "route_id", true, &rc);
	for (uint32_t i = 0; i < ld->t.nrows && rc == 0; i++) {
		const struct csv_row *r = &ld->t.rows[i];
		int32_t net;
		uint32_t id;
		CHECK(get_ref(ld, r, cn, &ld->f->networks, "network_id", true, &net));
		CHECK(get_decimal_id(ld, r, cr, &id));
		struct fare_route *rt = route_find(ld->f, id);
		if (!rt)
			return fail(ld, r->line, cr + 1, "unknown route_id \"%u\"", id);
		if (rt->network >= 0)
			return fail(ld, r->line, cr + 1, "route %u is in network \"%s\" already", id,
				    ld->f->networks.names[rt->network]);
		rt->network = net;
	}
	return rc;
}

static int load_calendar(struct loader *ld)
{
	static const char *const days[] = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
					   "sunday"};
	int rc = 0, cd[7];
	int cs = column(ld, "service_id", true, &rc);
	for (int d = 0; d < 7; d++)
		cd[d] = column(ld, days[d], true, &rc);
	int cstart = column(ld, "start_date", true, &rc), cend = column(ld, "end_date", true, &rc);
	struct fare_feed *f = ld->f;
	for (uint32_t i = 0; i < ld->t.nrows && rc == 0; i++) {
		const struct csv_row *r = &ld->t.rows[i];
		struct fare_service sv = {0};
		int32_t idx;
		CHECK(get_new_id(ld, r, cs, &f->services, &idx));
		for (int d = 0; d < 7; d++) {
			int64_t v;
			CHECK(get_int(ld, r, cd[d], 0, 1, true, 0, &v));
			sv.weekdays |= (uint8_t)(v << d);
		}
		CHECK(get_date(ld, r, cstart, &sv.start_date));
		CHECK(get_date(ld, r, cend, &sv.end_date));
		if (sv.end_date < sv.start_date)
			return fail(ld, r->line, cend + 1, "end_date is before start_date");
		if (!(f->service_rows = realloc(f->service_rows, f->services.n * sizeof(*f->service_rows))))
			return FARE_ERR_NOMEM;
		f->service_rows[idx] = sv;
	}
	return rc;
}

static int load_timeframes(struct loader *ld)
{
	int rc = 0, cg = column(ld, "timeframe_group_id", true, &rc);
	int cs = column(ld, "start_time", false, &rc), ce = column(ld, "end_time", false, &rc);
	int csv = column(ld, "service_id", false, &rc);
	struct fare_feed *f = ld->f;
	for (uint32_t i = 0; i < ld->t.nrows && rc == 0; i++) {
		const struct csv_row *r = &ld->t.rows[i];
		struct fare_timeframe tf = {.start_s = 0, .end_s = 86400};
		if (!*fld(r, cg))
			return fail(ld, r->line, cg + 1, "required value is empty");
		if ((tf.group = ids_intern(&f->tfgroups, fld(r, cg))) < 0)
			return FARE_ERR_NOMEM;
		if (f->tfgroups.n > FARE_TIMEFRAME_GROUPS_MAX)
			return fail(ld, r->line, cg + 1, "more than %u timeframe groups", FARE_TIMEFRAME_GROUPS_MAX);
		bool has_s = *fld(r, cs), has_e = *fld(r, ce);
		if (has_s != has_e)
			return fail(ld, r->line, has_s ? ce + 1 : cs + 1, "start_time and end_time go together");
		if (has_s && !parse_time(fld(r, cs), &tf.start_s))
			return fail(ld, r->line, cs + 1, "\"%s\" is not a time HH:MM:SS up to 24:00:00", fld(r, cs));
		if (has_e && !parse_time(fld(r, ce), &tf.end_s))
			return fail(ld, r->line, ce + 1, "\"%s\" is not a time HH:MM:SS up to 24:00:00", fld(r, ce));
		if (tf.start_s >= tf.end_s)
			return fail(ld, r->line, ce + 1, "end_time is not after start_time");
		CHECK(get_ref(ld, r, csv, &f->services, "service_id (calendar.txt)", false, &tf.service));
		struct fare_timeframe *p = PUSH(f->timeframes, f->ntimeframes);
		if (!p)
			return FARE_ERR_NOMEM;
		*p = tf;
	}
	return rc;
}

static int load_fare_media(struct loader *ld)
{
	int rc = 0, c = column(ld, "fare_media_id", true, &rc), ct = column(ld, "fare_media_type", true, &rc);
	struct fare_feed *f = ld->f;
	for (uint32_t i = 0; i < ld->t.nrows && rc == 0; i++) {
		const struct csv_row *r = &ld->t.rows[i];
		int32_t idx;
		int64_t type;
		CHECK(get_new_id(ld, r, c, &f->media, &idx));
		CHECK(get_int(ld, r, ct, 0, 4, true, 0, &type));
		if (type >= 2) { /* 2 transit card = e-purse, 3 cEMV = QuickPass, 4 app = e-SSC QR */
			int32_t *slot = &f->media_of[type - 1];
			if (*slot >= 0)
				return fail(ld, r->line, ct + 1, "a second fare_media of type %d (\"%s\" has it)",
					    (int)type, f->media.names[*slot]);
			*slot = idx;
		}
	}
	return rc;
}

static int load_rider_categories(struct loader *ld)
{
	int rc = 0, c = column(ld, "rider_category_id", true, &rc);
	int cd = column(ld, "is_default_fare_category", false, &rc);
	struct fare_feed *f = ld->f;
	for (uint32_t i = 0; i < ld->t.nrows && rc == 0; i++) {
		const struct csv_row *r = &ld->t.rows[i];
		int32_t idx;
		int64_t dflt;
		CHECK(get_new_id(ld, r, c, &f->categories, &idx));
		CHECK(get_int(ld, r, cd, 0, 1, false, 0, &dflt));
		if (dflt && f->default_category >= 0)
			return fail(ld, r->line, cd + 1, "a second default category (\"%s\" is one)",
				    f->categories.names[f->default_category]);
		if (dflt)
			f->default_category = idx;
	}
	if (rc == 0 && f->default_category < 0)
		rc = fail(ld, 1, 0, "no rider category has is_default_fare_category = 1");
	return rc;
}

static int load_fare_products(struct loader *ld)
{
	int rc = 0, c = column(ld, "fare_product_id", true, &rc);
	int cc = column(ld, "rider_category_id", false, &rc), cm = column(ld, "fare_media_id", false, &rc);
	int ca = column(ld, "amount", true, &rc), ccur = column(ld, "currency", true, &rc);
	struct fare_feed *f = ld->f;
	for (uint32_t i = 0; i < ld->t.nrows && rc == 0; i++) {
		const struct csv_row *r = &ld->t.rows[i];
		struct fare_price pr;
		if (!*fld(r, c))
			return fail(ld, r->line, c + 1, "required value is empty");
		if ((pr.product = ids_intern(&f->products, fld(r, c))) < 0)
			return FARE_ERR_NOMEM;
		CHECK(get_ref(ld, r, cc, &f->categories, "rider_category_id", false, &pr.category));
		CHECK(get_ref(ld, r, cm, &f->media, "fare_media_id", false, &pr.media));
		CHECK(get_amount(ld, r, ca, true, &pr.amount_fen));
		if (strcmp(fld(r, ccur), "CNY") != 0)
			return fail(ld, r->line, ccur + 1, "\"%s\": only CNY is supported", fld(r, ccur));
		for (uint32_t j = 0; j < f->nprices; j++)
			if (f->prices[j].product == pr.product && f->prices[j].category == pr.category &&
			    f->prices[j].media == pr.media)
				return fail(ld, r->line, c + 1, "a second price of \"%s\" for the same category and media",
					    fld(r, c));
		struct fare_price *p = PUSH(f->prices, f->nprices);
		if (!p)
			return FARE_ERR_NOMEM;
		*p = pr;
	}
	return rc;
}

static int load_fare_leg_rules(struct loader *ld)
{
	int rc = 0, cg = column(ld, "leg_group_id", false, &rc), cn = column(ld, "network_id", false, &rc);
	int cfa = column(ld, "from_area_id", false, &rc), cta = column(ld, "to_area_id", false, &rc);
	int cft = column(ld, "from_timeframe_group_id", false, &rc);
	int ctt = column(ld, "to_timeframe_group_id", false, &rc);
	int cp = column(ld, "fare_product_id", true, &rc), cpr = column(ld, "rule_priority", false, &rc);
	struct fare_feed *f = ld->f;
	f->have_priority = cpr >= 0;
	for (uint32_t i = 0; i < ld->t.nrows && rc == 0; i++) {
		const struct csv_row *r = &ld->t.rows[i];
		struct fare_leg_rule lr = {.leg_group = -1};
		int64_t prio;
		if (*fld(r, cg) && (lr.leg_group = ids_intern(&f->groups, fld(r, cg))) < 0)
			return FARE_ERR_NOMEM;
		CHECK(get_ref(ld, r, cn, &f->networks, "network_id", false, &lr.network));
		CHECK(get_ref(ld, r, cfa, &f->areas, "area_id", false, &lr.from_area));
		CHECK(get_ref(ld, r, cta, &f->areas, "area_id", false, &lr.to_area));
		CHECK(get_ref(ld, r, cft, &f->tfgroups, "timeframe_group_id", false, &lr.from_tf));
		CHECK(get_ref(ld, r, ctt, &f->tfgroups, "timeframe_group_id", false, &lr.to_tf));
		CHECK(get_ref(ld, r, cp, &f->products, "fare_product_id", true, &lr.product));
		CHECK(get_int(ld, r, cpr, 0, INT32_MAX, false, 0, &prio));
		lr.priority = (int32_t)prio;
		struct fare_leg_rule *p = PUSH(f->leg_rules, f->nleg_rules);
		if (!p)
			return FARE_ERR_NOMEM;
		*p = lr;
	}
	return rc;
}

static int load_fare_transfer_rules(struct loader *ld)
{
	int rc = 0, cf = column(ld, "from_leg_group_id", false, &rc), ct = column(ld, "to_leg_group_id", false, &rc);
	int cc = column(ld, "transfer_count", false, &rc), cd = column(ld, "duration_limit", false, &rc);
	int cdt = column(ld, "duration_limit_type", false, &rc);
	int cty = column(ld, "fare_transfer_type", true, &rc), cp = column(ld, "fare_product_id", false, &rc);
	struct fare_feed *f = ld->f;
	for (uint32_t i = 0; i < ld->t.nrows && rc == 0; i++) {
		const struct csv_row *r = &ld->t.rows[i];
		struct fare_transfer_rule tr;
		int64_t v;
		CHECK(get_ref(ld, r, cf, &f->groups, "leg_group_id", false, &tr.from_group));
		CHECK(get_ref(ld, r, ct, &f->groups, "leg_group_id", false, &tr.to_group));
		bool same = tr.from_group >= 0 && tr.from_group == tr.to_group;
		if (same && !*fld(r, cc))
			return fail(ld, r->line, cc + 1, "required when from_leg_group_id equals to_leg_group_id");
		if (!same && *fld(r, cc))
			return fail(ld, r->line, cc + 1, "forbidden unless from_leg_group_id equals to_leg_group_id");
		CHECK(get_int(ld, r, cc, -1, 1000000, false, 0, &v));
		if (same && v == 0)
			return fail(ld, r->line, cc + 1, "must be -1 (unlimited) or at least 1");
		tr.transfer_count = (int32_t)v;
		CHECK(get_int(ld, r, cd, 1, INT32_MAX, false, -1, &v));
		tr.duration_s = (int32_t)v;
		if (tr.duration_s < 0 && *fld(r, cdt))
			return fail(ld, r->line, cdt + 1, "forbidden without duration_limit");
		CHECK(get_int(ld, r, cdt, 0, 3, tr.duration_s >= 0, 0, &v));
		tr.duration_type = (int32_t)v;
		CHECK(get_int(ld, r, cty, 0, 2, true, 0, &v));
		tr.transfer_type = (int32_t)v;
		CHECK(get_ref(ld, r, cp, &f->products, "fare_product_id", false, &tr.product));
		struct fare_transfer_rule *p = PUSH(f->transfer_rules, f->ntransfer_rules);
		if (!p)
			return FARE_ERR_NOMEM;
		*p = tr;
	}
	return rc;
}

static int load_card_categories(struct loader *ld)
{
	int rc = 0, c = column(ld, "card_category", true, &rc), cr = column(ld, "rider_category_id", true, &rc);
	bool seen[FARE_CARD_CATEGORIES] = {0};
	for (uint32_t i = 0; i < ld->t.nrows && rc == 0; i++) {
		const struct csv_row *r = &ld->t.rows[i];
		int64_t cat;
		CHECK(get_int(ld, r, c, 0, FARE_CARD_CATEGORIES - 1, true, 0, &cat));
		if (seen[cat])
			return fail(ld, r->line, c + 1, "card_category %d is mapped already", (int)cat);
		seen[cat] = true;
		CHECK(get_ref(ld, r, cr, &ld->f->categories, "rider_category_id", true, &ld->f->category_of[cat]));
	}
	return rc;
}

static int load_incomplete(struct loader *ld)
{
	int rc = 0, cn = column(ld, "network_id", true, &rc), cm = column(ld, "max_journey_s", true, &rc);
	int cp = column(ld, "fare_product_id", true, &rc);
	struct fare_feed *f = ld->f;
	for (uint32_t i = 0; i < ld->t.nrows && rc == 0; i++) {
		const struct csv_row *r = &ld->t.rows[i];
		struct fare_incomplete in;
		int64_t v;
		CHECK(get_ref(ld, r, cn, &f->networks, "network_id", true, &in.network));
		for (uint32_t j = 0; j < f->nincomplete; j++)
			if (f->incomplete[j].network == in.network)
				return fail(ld, r->line, cn + 1, "network \"%s\" has a row already", fld(r, cn));
		CHECK(get_int(ld, r, cm, 1, 86400, true, 0, &v));
		in.max_journey_s = (int32_t)v;
		CHECK(get_ref(ld, r, cp, &f->products, "fare_product_id", true, &in.product));
		struct fare_incomplete *p = PUSH(f->incomplete, f->nincomplete);
		if (!p)
			return FARE_ERR_NOMEM;
		*p = in;
	}
	return rc;
}

static int load_caps(struct loader *ld)
{
	int rc = 0, c = column(ld, "cap_id", true, &rc), cm = column(ld, "fare_media_id", true, &rc);
	int cc = column(ld, "rider_category_id", false, &rc), cp = column(ld, "cap_period", true, &rc);
	int ca = column(ld, "amount", true, &rc);
	struct fare_feed *f = ld->f;
	for (uint32_t i = 0; i < ld->t.nrows && rc == 0; i++) {
		const struct csv_row *r = &ld->t.rows[i];
		struct fare_cap cap;
		CHECK(get_new_id(ld, r, c, &f->caps, NULL));
		CHECK(get_ref(ld, r, cm, &f->media, "fare_media_id", true, &cap.media));
		CHECK(get_ref(ld, r, cc, &f->categories, "rider_category_id", false, &cap.category));
		if (strcmp(fld(r, cp), "day") != 0 && strcmp(fld(r, cp), "week") != 0)
			return fail(ld, r->line, cp + 1, "\"%s\" is not day or week", fld(r, cp));
		cap.week = strcmp(fld(r, cp), "week") == 0;
		CHECK(get_amount(ld, r, ca, false, &cap.amount_fen));
		struct fare_cap *p = PUSH(f->cap_rows, f->ncaps);
		if (!p)
			return FARE_ERR_NOMEM;
		*p = cap;
	}
	return rc;
}

/* route_id of a promotion or subsidy: optional, must be a route of routes.txt. */
static int get_route(struct loader *ld, const struct csv_row *r, int c, int32_t *set, uint32_t *route_id)
{
	int rc;
	*set = 0;
	if (!*fld(r, c))
		return 0;
	CHECK(get_decimal_id(ld, r, c, route_id));
	if (!route_find(ld->f, *route_id))
		return fail(ld, r->line, c + 1, "unknown route_id \"%u\"", *route_id);
	*set = 1;
	return 0;
}

static int get_dates(struct loader *ld, const struct csv_row *r, int cs, int ce, uint32_t *start, uint32_t *end)
{
	int rc;
	CHECK(get_date(ld, r, cs, start));
	CHECK(get_date(ld, r, ce, end));
	return *end < *start ? fail(ld, r->line, ce + 1, "end_date is before start_date") : 0;
}

static int load_promotions(struct loader *ld)
{
	int rc = 0, c = column(ld, "promotion_id", true, &rc), cf = column(ld, "funder_id", true, &rc);
	int cm = column(ld, "fare_media_id", true, &rc), cn = column(ld, "network_id", false, &rc);
	int cr = column(ld, "route_id", false, &rc), cs = column(ld, "start_date", true, &rc);
	int ce = column(ld, "end_date", true, &rc), ca = column(ld, "rider_amount", true, &rc);
	int cx = column(ld, "max_per_token_per_day", true, &rc), cb = column(ld, "budget", true, &rc);
	struct fare_feed *f = ld->f;
	for (uint32_t i = 0; i < ld->t.nrows && rc == 0; i++) {
		const struct csv_row *r = &ld->t.rows[i];
		struct fare_promotion pm;
		int64_t v;
		CHECK(get_new_id(ld, r, c, &f->promotions, NULL));
		if (!*fld(r, cf))
			return fail(ld, r->line, cf + 1, "required value is empty");
		if ((pm.funder = ids_intern(&f->funders, fld(r, cf))) < 0)
			return FARE_ERR_NOMEM;
		CHECK(get_ref(ld, r, cm, &f->media, "fare_media_id", true, &pm.media));
		CHECK(get_ref(ld, r, cn, &f->networks, "network_id", false, &pm.network));
		CHECK(get_route(ld, r, cr, &pm.route_id_set, &pm.route_id));
		CHECK(get_dates(ld, r, cs, ce, &pm.start_date, &pm.end_date));
		CHECK(get_amount(ld, r, ca, false, &pm.rider_amount_fen));
		CHECK(get_int(ld, r, cx, 1, 1000, true, 0, &v));
		pm.max_per_token_per_day = (int32_t)v;
		CHECK(get_amount64(ld, r, cb, &pm.budget_fen));
		struct fare_promotion *p = PUSH(f->promotion_rows, f->npromotions);
		if (!p)
			return FARE_ERR_NOMEM;
		*p = pm;
	}
	return rc;
}

static int load_subsidies(struct loader *ld)
{
	int rc = 0, c = column(ld, "subsidy_id", true, &rc), cf = column(ld, "funder_id", true, &rc);
	int cc = column(ld, "rider_category_id", true, &rc), cm = column(ld, "fare_media_id", false, &rc);
	int cr = column(ld, "route_id", false, &rc), cs = column(ld, "start_date", true, &rc);
	int ce = column(ld, "end_date", true, &rc), ca = column(ld, "amount_per_meal", true, &rc);
	int cx = column(ld, "max_meals_per_day", true, &rc);
	struct fare_feed *f = ld->f;
	for (uint32_t i = 0; i < ld->t.nrows && rc == 0; i++) {
		const struct csv_row *r = &ld->t.rows[i];
		struct fare_subsidy sb;
		int64_t v;
		CHECK(get_new_id(ld, r, c, &f->subsidies, NULL));
		if (!*fld(r, cf))
			return fail(ld, r->line, cf + 1, "required value is empty");
		if ((sb.funder = ids_intern(&f->funders, fld(r, cf))) < 0)
			return FARE_ERR_NOMEM;
		CHECK(get_ref(ld, r, cc, &f->categories, "rider_category_id", true, &sb.category));
		CHECK(get_ref(ld, r, cm, &f->media, "fare_media_id", false, &sb.media));
		CHECK(get_route(ld, r, cr, &sb.route_id_set, &sb.route_id));
		CHECK(get_dates(ld, r, cs, ce, &sb.start_date, &sb.end_date));
		CHECK(get_amount(ld, r, ca, false, &sb.amount_fen));
		if (sb.amount_fen == 0)
			return fail(ld, r->line, ca + 1, "must be above 0");
		CHECK(get_int(ld, r, cx, 1, 100, true, 0, &v));
		sb.max_per_day = (int32_t)v;
		struct fare_subsidy *p = PUSH(f->subsidy_rows, f->nsubsidies);
		if (!p)
			return FARE_ERR_NOMEM;
		*p = sb;
	}
	return rc;
}

static int cmp_route(const void *a, const void *b)
{
	return cmp_u32(&((const struct fare_route *)a)->route_id, &((const struct fare_route *)b)->route_id);
}

static int cmp_stop_area(const void *a, const void *b)
{
	const struct fare_stop_area *x = a, *y = b;
	if (x->stop_id != y->stop_id)
		return x->stop_id < y->stop_id ? -1 : 1;
	return x->area - y->area;
}

/* After every file: sort what rating searches. */
static int finish_feed(struct loader *ld)
{
	struct fare_feed *f = ld->f;
	qsort(f->routes, f->nroutes, sizeof(*f->routes), cmp_route);
	qsort(f->stop_areas, f->nstop_areas, sizeof(*f->stop_areas), cmp_stop_area);
	/* group the price rows by product, keeping file order within one (a stable counting sort) */
	f->price_first = calloc(f->products.n + 2, sizeof(*f->price_first));
	struct fare_price *by_product = malloc((f->nprices + 1) * sizeof(*by_product));
	if (!f->price_first || !by_product) {
		free(by_product);
		return FARE_ERR_NOMEM;
	}
	for (uint32_t i = 0; i < f->nprices; i++)
		f->price_first[f->prices[i].product + 1]++;
	for (uint32_t p = 0; p < f->products.n; p++)
		f->price_first[p + 1] += f->price_first[p];
	uint32_t *next = calloc(f->products.n + 1, sizeof(*next));
	if (!next) {
		free(by_product);
		return FARE_ERR_NOMEM;
	}
	memcpy(next, f->price_first, f->products.n * sizeof(*next));
	for (uint32_t i = 0; i < f->nprices; i++)
		by_product[next[f->prices[i].product]++] = f->prices[i];
	free(next);
	free(f->prices);
	f->prices = by_product;
	if (f->products.n >= FARE_NONE || f->npromotions >= FARE_NONE || f->nsubsidies >= FARE_NONE) {
		snprintf(ld->err, ld->err_len, "%s:0:0: more than %u products, promotions or subsidies", ld->label,
			 FARE_NONE - 1);
		return FARE_ERR_FEED;
	}
	return 0;
}

/* --- lookups for rating */

bool fare_feed_price(const struct fare_feed *f, int32_t product, uint8_t medium, uint8_t card_category,
		     int32_t *nominal_fen, int32_t *category_fen)
{
	int32_t media = medium >= 1 && medium <= 3 ? f->media_of[medium] : -1;
	int32_t cat = card_category < FARE_CARD_CATEGORIES ? f->category_of[card_category] : -1;
	if (cat < 0)
		cat = f->default_category;
	/* rows of the medium's own fare_media_id, else rows with fare_media_id empty */
	for (int pass = 0; pass < 2; pass++) {
		int32_t want = pass == 0 ? media : -1;
		if (pass == 0 && media < 0)
			continue;
		const struct fare_price *nominal = NULL, *mine = NULL;
		if (product < 0 || (uint32_t)product >= f->products.n)
			return false;
		for (uint32_t i = f->price_first[product]; i < f->price_first[product + 1]; i++) {
			const struct fare_price *p = &f->prices[i];
			if (p->media != want)
				continue;
			if (p->category == cat)
				mine = p;
			if (p->category == f->default_category || (p->category < 0 && !nominal))
				nominal = p;
		}
		if (!nominal && !mine)
			continue;
		if (!nominal)
			nominal = mine; /* only the category's row: it is the fare, nothing to compare with */
		*nominal_fen = nominal->amount_fen;
		*category_fen = mine ? mine->amount_fen : nominal->amount_fen;
		return true;
	}
	return false;
}

int32_t fare_feed_route_network(const struct fare_feed *f, uint32_t route_id)
{
	struct fare_route key = {.route_id = route_id};
	const struct fare_route *r = bsearch(&key, f->routes, f->nroutes, sizeof(key), cmp_route);
	return r ? r->network : -1;
}

uint32_t fare_feed_stop_areas(const struct fare_feed *f, uint32_t stop_id, uint32_t *first)
{
	uint32_t lo = 0, hi = f->nstop_areas;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (f->stop_areas[mid].stop_id < stop_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*first = lo;
	uint32_t n = 0;
	while (lo + n < f->nstop_areas && f->stop_areas[lo + n].stop_id == stop_id)
		n++;
	return n;
}

uint64_t fare_feed_timeframes(const struct fare_feed *f, uint32_t sec_of_day, uint32_t date, unsigned weekday)
{
	uint64_t mask = 0;
	for (uint32_t i = 0; i < f->ntimeframes; i++) {
		const struct fare_timeframe *tf = &f->timeframes[i];
		if ((int32_t)sec_of_day < tf->start_s || (int32_t)sec_of_day >= tf->end_s)
			continue;
		if (tf->service >= 0) {
			const struct fare_service *sv = &f->service_rows[tf->service];
			if (!(sv->weekdays & (1u << weekday)) || date < sv->start_date || date > sv->end_date)
				continue;
		}
		mask |= 1ull << tf->group;
	}
	return mask;
}

/* Days since 1970-01-01 of a civil date (H. Hinnant's algorithm). */
int64_t fare_days_from_date(uint32_t date)
{
	int64_t y = date / 10000, m = date / 100 % 100, d = date % 100;
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

uint32_t fare_date_from_days(int64_t z)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1, m = mp + (mp < 10 ? 3 : -9);
	return (uint32_t)((y + (m <= 2)) * 10000 + m * 100 + d);
}

bool fare_date_valid(uint32_t date)
{
	uint32_t m = date / 100 % 100, d = date % 100;
	return m >= 1 && m <= 12 && d >= 1 && d <= 31 && fare_date_from_days(fare_days_from_date(date)) == date;
}

/* --- public */

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct fare_file *)a)->name, ((const struct fare_file *)b)->name);
}

typedef int (*table_fn)(struct loader *ld);
static const struct {
	const char *name;
	table_fn fn;
} tables[] = {
	{"feed_info.txt", load_feed_info},
	{"stops.txt", load_stops},
	{"areas.txt", load_areas},
	{"stop_areas.txt", load_stop_areas},
	{"networks.txt", load_networks},
	{"routes.txt", load_routes},
	{"route_networks.txt", load_route_networks},
	{"calendar.txt", load_calendar},
	{"timeframes.txt", load_timeframes},
	{"fare_media.txt", load_fare_media},
	{"rider_categories.txt", load_rider_categories},
	{"fare_products.txt", load_fare_products},
	{"fare_leg_rules.txt", load_fare_leg_rules},
	{"fare_transfer_rules.txt", load_fare_transfer_rules},
	{"tg_card_categories.txt", load_card_categories},
	{"tg_incomplete_journeys.txt", load_incomplete},
	{"tg_fare_caps.txt", load_caps},
	{"tg_promotions.txt", load_promotions},
	{"tg_subsidies.txt", load_subsidies},
};

static int load_all(struct loader *ld, const struct fare_file *files, unsigned n)
{
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		int rc = open_table(ld, files, n, tables[i].name);
		if (rc == 1)
			continue;
		if (rc == 0)
			rc = tables[i].fn(ld);
		if (rc != 0)
			return rc;
	}
	return finish_feed(ld);
}

/* Keep a private copy of the files, in name order, and hash them. */
static int keep_files(struct fare_feed *f, const struct fare_file *files, unsigned n)
{
	if (n > FARE_FILES_MAX)
		return FARE_ERR_INVALID;
	XXH3_state_t *st = XXH3_createState();
	if (!st)
		return FARE_ERR_NOMEM;
	XXH3_128bits_reset(st);
	for (unsigned i = 0; i < n; i++) {
		f->files[i] = files[i];
		if (!(f->file_data[i] = malloc(files[i].len + 1))) {
			XXH3_freeState(st);
			return FARE_ERR_NOMEM;
		}
		memcpy(f->file_data[i], files[i].data, files[i].len);
		f->file_data[i][files[i].len] = '\0';
		f->files[i].data = f->file_data[i];
		f->nfiles = i + 1;
	}
	/* data pointers move with the sort together with their names; file_data is freed by index */
	qsort(f->files, f->nfiles, sizeof(f->files[0]), cmp_name);
	for (unsigned i = 0; i < f->nfiles; i++) {
		uint64_t len = f->files[i].len;
		XXH3_128bits_update(st, f->files[i].name, strlen(f->files[i].name) + 1);
		XXH3_128bits_update(st, &len, sizeof(len));
		XXH3_128bits_update(st, f->files[i].data, f->files[i].len);
	}
	f->version = XXH3_128bits_digest(st).high64;
	XXH3_freeState(st);
	return 0;
}

int fare_feed_load_files(struct fare_feed **out, const char *label, const struct fare_file *files, unsigned n,
			 char *err, size_t err_len)
{
	struct loader ld = {.label = label, .err = err, .err_len = err_len};
	*out = NULL;
	if (!(ld.f = calloc(1, sizeof(*ld.f))))
		return FARE_ERR_NOMEM;
	ld.f->default_category = -1;
	for (unsigned i = 0; i < 4; i++)
		ld.f->media_of[i] = ld.f->category_of[i] = -1;
	int rc = keep_files(ld.f, files, n);
	if (rc == 0)
		rc = load_all(&ld, ld.f->files, ld.f->nfiles);
	csv_table_free(&ld.t);
	if (rc == FARE_ERR_NOMEM)
		snprintf(err, err_len, "%s: out of memory loading the feed", label);
	if (rc != 0) {
		fare_feed_free(ld.f);
		return rc;
	}
	*out = ld.f;
	return 0;
}

static int read_file(const char *path, char **data, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 1 : -errno;
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) != 0 || st.st_size > FEED_FILE_BYTES_MAX) {
		close(fd);
		return -EFBIG;
	}
	*len = (size_t)st.st_size;
	if (!(*data = malloc(*len + 1))) {
		close(fd);
		return -ENOMEM;
	}
	size_t got = 0;
	while (got < *len && rc == 0) {
		ssize_t r = read(fd, *data + got, *len - got);
		if (r <= 0)
			rc = r < 0 ? -errno : -EIO;
		else
			got += (size_t)r;
	}
	close(fd);
	if (rc != 0)
		free(*data);
	return rc;
}

int fare_feed_load(struct fare_feed **out, const char *dir, char *err, size_t err_len)
{
	struct fare_file files[FARE_FILES_MAX];
	char *bufs[FARE_FILES_MAX];
	unsigned n = 0;
	int rc = 0;
	struct stat st;
	*out = NULL;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, err_len, "%s:0:0: not a feed directory", dir);
		return FARE_ERR_FEED;
	}
	for (unsigned i = 0; known_files[i] && rc == 0; i++) {
		char path[1024];
		size_t len = 0;
		snprintf(path, sizeof(path), "%s/%s", dir, known_files[i]);
		int r = read_file(path, &bufs[n], &len);
		if (r == 1)
			continue;
		if (r < 0) {
			snprintf(err, err_len, "%s:0:0: cannot read: %s", path, strerror(-r));
			rc = FARE_ERR_FEED;
			break;
		}
		snprintf(files[n].name, sizeof(files[n].name), "%s", known_files[i]);
		files[n].data = bufs[n];
		files[n].len = len;
		n++;
	}
	if (rc == 0)
		rc = fare_feed_load_files(out, dir, files, n, err, err_len);
	for (unsigned i = 0; i < n; i++)
		free(bufs[i]);
	return rc;
}

void fare_feed_free(struct fare_feed *f)
{
	if (!f)
		return;
	for (unsigned i = 0; i < FARE_FILES_MAX; i++)
		free(f->file_data[i]);
	struct fare_ids *all[] = {&f->products, &f->categories, &f->media, &f->areas, &f->networks, &f->groups,
				  &f->tfgroups, &f->services, &f->promotions, &f->subsidies, &f->funders, &f->caps};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		ids_free(all[i]);
	free(f->prices);
	free(f->price_first);
	free(f->leg_rules);
	free(f->transfer_rules);
	free(f->timeframes);
	free(f->service_rows);
	free(f->stop_areas);
	free(f->stops);
	free(f->routes);
	free(f->incomplete);
	free(f->cap_rows);
	free(f->promotion_rows);
	free(f->subsidy_rows);
	free(f);
}

uint64_t fare_feed_version(const struct fare_feed *f)
{
	return f->version;
}

const char *fare_feed_version_label(const struct fare_feed *f)
{
	return f->version_label;
}

unsigned fare_feed_files(const struct fare_feed *f, const struct fare_file **files)
{
	*files = f->files;
	return f->nfiles;
}

const char *fare_feed_product_id(const struct fare_feed *f, uint16_t product)
{
	return product < f->products.n ? f->products.names[product] : "-";
}

const char *fare_feed_promotion_funder(const struct fare_feed *f, uint16_t idx)
{
	return idx < f->npromotions ? f->funders.names[f->promotion_rows[idx].funder] : "?";
}

const char *fare_feed_subsidy_funder(const struct fare_feed *f, uint16_t idx)
{
	return idx < f->nsubsidies ? f->funders.names[f->subsidy_rows[idx].funder] : "?";
}

const char *fare_feed_promotion_id(const struct fare_feed *f, uint16_t idx)
{
	return idx < f->npromotions ? f->promotions.names[idx] : "?";
}

const char *fare_feed_subsidy_id(const struct fare_feed *f, uint16_t idx)
{
	return idx < f->nsubsidies ? f->subsidies.names[idx] : "?";
}

void fare_feed_summary(const struct fare_feed *f, FILE *out)
{
	fprintf(out, "version %016llx%s%s: %u stops, %u routes, %u networks, %u areas, %u products, %u prices, "
		     "%u leg rules%s, %u transfer rules, %u timeframes, %u caps, %u promotions, %u subsidies\n",
		(unsigned long long)f->version, f->version_label[0] ? " feed_version " : "", f->version_label,
		f->nstops, f->nroutes, f->networks.n, f->areas.n, f->products.n, f->nprices, f->nleg_rules,
		f->have_priority ? " (rule_priority)" : "", f->ntransfer_rules, f->ntimeframes, f->ncaps,
		f->npromotions, f->nsubsidies);
}
