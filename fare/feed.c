/*
 * feed.c - the finished feed: interned ids, what rating searches sorted,
 * the lookups rating uses, and the public load and name functions.
 *
 * A feed is all or nothing by default: any problem refuses it whole (a
 * half-loaded fare table never rates a tap). The loaders (load.c) record
 * every problem, so `tapfare check` lists them all. Ids become indices, so
 * rating never compares strings. The version is XXH3-128 over the files'
 * names and bytes, so the same rules always carry the same version.
 */
#include "fare/load.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define FEED_FILE_BYTES_MAX (64u << 20)

/* --- interned ids */

static uint32_t slot_of(const struct fare_ids *ids, const char *name)
{
	uint32_t mask = ids->nslots - 1, s = (uint32_t)XXH3_64bits(name, strlen(name)) & mask;
	while (ids->slots[s] && strcmp(ids->names[ids->slots[s] - 1], name) != 0)
		s = (s + 1) & mask;
	return s;
}

int32_t fare_ids_find(const struct fare_ids *ids, const char *name)
{
	if (ids->nslots == 0)
		return -1;
	uint32_t s = ids->slots[slot_of(ids, name)];
	return s ? (int32_t)(s - 1) : -1;
}

static bool rehash(struct fare_ids *ids)
{
	uint32_t nslots = ids->nslots ? ids->nslots * 2 : 64;
	uint32_t *slots = calloc(nslots, sizeof(*slots));
	if (!slots)
		return false;
	free(ids->slots);
	ids->slots = slots;
	ids->nslots = nslots;
	for (uint32_t i = 0; i < ids->n; i++)
		ids->slots[slot_of(ids, ids->names[i])] = i + 1;
	return true;
}

int32_t fare_ids_add(struct fare_ids *ids, const char *name)
{
	if (fare_ids_find(ids, name) >= 0)
		return -1;
	if (ids->n >= INT32_MAX / 2)
		return -2;
	if ((ids->n + 1) * 2 > ids->nslots && !rehash(ids))
		return -2;
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
	ids->slots[slot_of(ids, name)] = ids->n + 1;
	return (int32_t)ids->n++;
}

int32_t fare_ids_intern(struct fare_ids *ids, const char *name)
{
	int32_t i = fare_ids_find(ids, name);
	return i >= 0 ? i : fare_ids_add(ids, name);
}

void fare_ids_free(struct fare_ids *ids)
{
	for (uint32_t i = 0; i < ids->n; i++)
		free(ids->names[i]);
	free(ids->names);
	free(ids->slots);
}

/* --- finishing: sort what rating searches */

static int cmp_stop_area(const void *a, const void *b)
{
	const struct fare_stop_area *x = a, *y = b;
	if (x->stop != y->stop)
		return x->stop < y->stop ? -1 : 1;
	return x->area - y->area;
}

static int cmp_service_date(const void *a, const void *b)
{
	const struct fare_service_date *x = a, *y = b;
	if (x->service != y->service)
		return x->service - y->service;
	return x->date < y->date ? -1 : x->date > y->date;
}

/* Group the price rows by product, keeping file order within one (a stable counting sort). */
static int group_prices(struct fare_feed *f)
{
	f->price_first = calloc(f->products.n + 2, sizeof(*f->price_first));
	struct fare_price *by_product = malloc((f->nprices + 1) * sizeof(*by_product));
	uint32_t *next = calloc(f->products.n + 1, sizeof(*next));
	if (!f->price_first || !by_product || !next) {
		free(by_product);
		free(next);
		return FARE_ERR_NOMEM;
	}
	for (uint32_t i = 0; i < f->nprices; i++)
		f->price_first[f->prices[i].product + 1]++;
	for (uint32_t p = 0; p < f->products.n; p++)
		f->price_first[p + 1] += f->price_first[p];
	memcpy(next, f->price_first, f->products.n * sizeof(*next));
	for (uint32_t i = 0; i < f->nprices; i++)
		by_product[next[f->prices[i].product]++] = f->prices[i];
	free(next);
	free(f->prices);
	f->prices = by_product;
	return 0;
}

/* Two rows of one product for the same category and medium: which price would be meant? */
static void check_prices(struct loader *ld)
{
	struct fare_feed *f = ld->f;
	snprintf(ld->path, sizeof(ld->path), "%s/fare_products.txt", ld->label);
	memset(&ld->t, 0, sizeof(ld->t));
	for (uint32_t p = 0; p < f->products.n; p++)
		for (uint32_t i = f->price_first[p]; i < f->price_first[p + 1]; i++)
			for (uint32_t j = f->price_first[p]; j < i; j++)
				if (f->prices[j].category == f->prices[i].category &&
				    f->prices[j].media == f->prices[i].media) {
					fare_fail(ld, f->prices[i].line, 1,
					     "fare_product_id: a second price of \"%s\" for the same category and media "
					     "(line %u)", f->products.names[p], f->prices[j].line);
					break;
				}
}

/* Our media: tg_media.txt's mapping, else the one fare_media of the medium's type (2 transit card =
 * e-purse, 3 cEMV = QuickPass, 4 app = e-SSC QR); two of one type and no mapping: that medium is not
 * priced by media-specific rows. */
static void map_media(struct fare_feed *f)
{
	for (unsigned m = 1; m <= 3; m++) {
		if (f->media_of[m] >= 0)
			continue;
		int32_t found = -1;
		unsigned count = 0;
		for (uint32_t i = 0; i < f->media.n; i++)
			if (f->media_type[i] == (int8_t)(m + 1))
				found = (int32_t)i, count++;
		f->media_of[m] = count == 1 ? found : -1;
	}
}

static int finish_feed(struct loader *ld)
{
	struct fare_feed *f = ld->f;
	if (f->nstop_areas > 0) /* qsort's array may not be NULL, even empty */
		qsort(f->stop_areas, f->nstop_areas, sizeof(*f->stop_areas), cmp_stop_area);
	if (f->nservice_dates > 0)
		qsort(f->service_dates, f->nservice_dates, sizeof(*f->service_dates), cmp_service_date);
	map_media(f);
	int rc = group_prices(f);
	if (rc != 0)
		return rc;
	check_prices(ld);
	if (!(f->product_in_transfer = calloc(f->products.n + 1, sizeof(bool))))
		return FARE_ERR_NOMEM;
	for (uint32_t i = 0; i < f->ntransfer_rules; i++)
		if (f->transfer_rules[i].product >= 0)
			f->product_in_transfer[f->transfer_rules[i].product] = true;
	if (f->products.n >= FARE_NONE || f->npromotions >= FARE_NONE || f->nsubsidies >= FARE_NONE)
		return fare_fail_feed(ld, "more than %u products, promotions or subsidies", FARE_NONE - 1);
	return 0;
}

/* --- lookups for rating */

int32_t fare_feed_media_of(const struct fare_feed *f, uint8_t medium)
{
	return medium >= 1 && medium <= 3 ? f->media_of[medium] : -1;
}

int32_t fare_feed_category_of(const struct fare_feed *f, uint8_t card_category)
{
	int32_t cat = card_category < FARE_CARD_CATEGORIES ? f->category_of[card_category] : -1;
	return cat < 0 ? f->default_category : cat;
}

bool fare_feed_price_ix(const struct fare_feed *f, int32_t product, int32_t media, int32_t cat,
			int32_t *nominal_fen, int32_t *category_fen, bool *own_row)
{
	if (product < 0 || (uint32_t)product >= f->products.n)
		return false;
	/* rows of the medium's own fare_media_id, else rows with fare_media_id empty */
	for (int pass = 0; pass < 2; pass++) {
		int32_t want = pass == 0 ? media : -1;
		if (pass == 0 && media < 0)
			continue;
		const struct fare_price *nominal = NULL, *mine = NULL;
		for (uint32_t i = f->price_first[product]; i < f->price_first[product + 1]; i++) {
			const struct fare_price *p = &f->prices[i];
			if (p->media != want)
				continue;
			if (cat >= 0 && p->category == cat)
				mine = p;
			if ((p->category >= 0 && p->category == f->default_category) || (p->category < 0 && !nominal))
				nominal = p;
		}
		if (!nominal && !mine)
			continue;
		if (!nominal)
			nominal = mine; /* only the category's row: it is the fare, nothing to compare with */
		*nominal_fen = nominal->amount_fen;
		*category_fen = mine ? mine->amount_fen : nominal->amount_fen;
		if (own_row)
			*own_row = mine != NULL || nominal->category < 0;
		return true;
	}
	return false;
}

bool fare_feed_price(const struct fare_feed *f, int32_t product, uint8_t medium, uint8_t card_category,
		     int32_t *nominal_fen, int32_t *category_fen)
{
	return fare_feed_price_ix(f, product, fare_feed_media_of(f, medium), fare_feed_category_of(f, card_category),
				  nominal_fen, category_fen, NULL);
}

static uint32_t code_lookup(const struct fare_code *codes, uint32_t n, uint32_t code)
{
	uint32_t lo = 0, hi = n;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (codes[mid].code < code)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && codes[lo].code == code ? codes[lo].ix : FARE_NO_INDEX;
}

uint32_t fare_feed_route_of_code(const struct fare_feed *f, uint32_t code)
{
	return code_lookup(f->route_codes, f->nroute_codes, code);
}

uint32_t fare_feed_stop_of_code(const struct fare_feed *f, uint32_t code)
{
	return code_lookup(f->stop_codes, f->nstop_codes, code);
}

int32_t fare_feed_route_network(const struct fare_feed *f, uint32_t route)
{
	return route < f->routes.n ? f->route_network[route] : -1;
}

uint32_t fare_feed_station(const struct fare_feed *f, uint32_t stop)
{
	for (unsigned d = 0; d < FARE_STATION_DEPTH_MAX && stop < f->stops.n && f->stop_parent[stop] >= 0; d++)
		stop = (uint32_t)f->stop_parent[stop];
	return stop;
}

bool fare_feed_stop_at(const struct fare_feed *f, uint32_t stop, uint32_t place)
{
	for (unsigned d = 0; d <= FARE_STATION_DEPTH_MAX && stop < f->stops.n; d++) {
		if (stop == place)
			return true;
		if (f->stop_parent[stop] < 0)
			return false;
		stop = (uint32_t)f->stop_parent[stop];
	}
	return false;
}

uint32_t fare_feed_stop_areas(const struct fare_feed *f, uint32_t stop, uint32_t *first)
{
	uint32_t lo = 0, hi = f->nstop_areas;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (f->stop_areas[mid].stop < stop)
			lo = mid + 1;
		else
			hi = mid;
	}
	*first = lo;
	uint32_t n = 0;
	while (lo + n < f->nstop_areas && f->stop_areas[lo + n].stop == stop)
		n++;
	return n;
}

bool fare_feed_service_runs(const struct fare_feed *f, int32_t service, uint32_t date, unsigned weekday)
{
	uint32_t lo = 0, hi = f->nservice_dates;
	while (lo < hi) { /* an exception of calendar_dates.txt decides */
		uint32_t mid = (lo + hi) / 2;
		const struct fare_service_date *d = &f->service_dates[mid];
		if (d->service < service || (d->service == service && d->date < date))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < f->nservice_dates && f->service_dates[lo].service == service && f->service_dates[lo].date == date)
		return f->service_dates[lo].type == 1;
	const struct fare_service *sv = &f->service_rows[service];
	return sv->has_calendar && (sv->weekdays & (1u << weekday)) && date >= sv->start_date && date <= sv->end_date;
}

uint64_t fare_feed_timeframes(const struct fare_feed *f, uint32_t sec_of_day, uint32_t date, unsigned weekday)
{
	uint64_t mask = 0;
	for (uint32_t i = 0; i < f->ntimeframes; i++) {
		const struct fare_timeframe *tf = &f->timeframes[i];
		if ((int32_t)sec_of_day < tf->start_s || (int32_t)sec_of_day >= tf->end_s)
			continue;
		if (tf->service >= 0 && !fare_feed_service_runs(f, tf->service, date, weekday))
			continue;
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

static struct fare_feed *feed_new(void)
{
	struct fare_feed *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->default_category = -1;
	f->minor_units = 2;
	for (unsigned i = 0; i < 4; i++)
		f->media_of[i] = f->category_of[i] = -1;
	return f;
}

static void loader_free(struct loader *ld)
{
	fare_csv_table_free(&ld->t);
	free(ld->stop_cands);
	free(ld->route_cands);
	free(ld->product_bad);
	free(ld->product_min);
}

int fare_feed_load_files_opts(struct fare_feed **out, const char *label, const struct fare_file *files, unsigned n,
			      const struct fare_load_opts *opts, struct fare_feed_report *rep)
{
	static const struct fare_load_opts none = {0};
	struct loader ld = {.label = label, .opts = opts ? opts : &none, .rep = rep};
	memset(rep, 0, sizeof(*rep));
	ld.errors_max = ld.opts->errors_max ? ld.opts->errors_max : FARE_FEED_ERRORS_MAX;
	*out = NULL;
	if (!(ld.f = feed_new()))
		return FARE_ERR_NOMEM;
	int rc = keep_files(ld.f, files, n);
	if (rc == FARE_ERR_INVALID)
		rc = fare_fail_feed(&ld, "more than %u files", FARE_FILES_MAX);
	if (rc == 0)
		rc = fare_load_tables(&ld, ld.f->files, ld.f->nfiles);
	if (rc != FARE_ERR_NOMEM) {
		int frc = finish_feed(&ld);
		rc = frc == FARE_ERR_NOMEM || rc == 0 ? frc : rc;
	}
	if (rc == 0 && rep->nerrors > 0)
		rc = FARE_ERR_FEED;
	loader_free(&ld);
	if (rc == FARE_ERR_NOMEM)
		fare_fail_feed(&ld, "out of memory loading the feed");
	if (rc == FARE_ERR_FEED && ld.opts->exclude_bad_rows && !rep->truncated)
		rc = 0; /* the refused rows are listed in rep and left out */
	if (rc != 0) {
		fare_feed_free(ld.f);
		return rc;
	}
	*out = ld.f;
	return 0;
}

static void first_line(const struct fare_feed_report *rep, char *err, size_t err_len)
{
	const char *t = rep->text ? rep->text : "";
	size_t len = strcspn(t, "\n");
	snprintf(err, err_len, "%.*s", (int)len, t);
}

int fare_feed_load_files(struct fare_feed **out, const char *label, const struct fare_file *files, unsigned n,
			 char *err, size_t err_len)
{
	struct fare_feed_report rep;
	int rc = fare_feed_load_files_opts(out, label, files, n, NULL, &rep);
	if (rc != 0)
		first_line(&rep, err, err_len);
	fare_feed_report_free(&rep);
	return rc;
}

void fare_feed_report_free(struct fare_feed_report *rep)
{
	free(rep->text);
	memset(rep, 0, sizeof(*rep));
}

/* Read a regular file whole; a FIFO, device or directory is refused without blocking on it. */
static int read_file(const char *path, char **data, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? 1 : -errno;
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > FEED_FILE_BYTES_MAX) {
		close(fd);
		return S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
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

static int read_dir(const char *dir, struct fare_file *files, char **bufs, unsigned *n, struct fare_feed_report *rep)
{
	struct stat st;
	char line[1200];
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(line, sizeof(line), "%s:0:0: not a feed directory\n", dir);
		return (rep->text = strdup(line)) ? (rep->nerrors = 1, FARE_ERR_FEED) : FARE_ERR_NOMEM;
	}
	for (unsigned i = 0; fare_feed_known_file(i) && *n < FARE_FILES_MAX; i++) {
		char path[1024];
		size_t len = 0;
		snprintf(path, sizeof(path), "%s/%s", dir, fare_feed_known_file(i));
		int r = read_file(path, &bufs[*n], &len);
		if (r == 1)
			continue;
		if (r < 0) {
			snprintf(line, sizeof(line), "%s:0:0: cannot read: %s\n", path,
				 r == -EINVAL ? "not a regular file" : strerror(-r));
			return (rep->text = strdup(line)) ? (rep->nerrors = 1, FARE_ERR_FEED) : FARE_ERR_NOMEM;
		}
		snprintf(files[*n].name, sizeof(files[*n].name), "%s", fare_feed_known_file(i));
		files[*n].data = bufs[*n];
		files[*n].len = len;
		(*n)++;
	}
	return 0;
}

int fare_feed_load_opts(struct fare_feed **out, const char *dir, const struct fare_load_opts *opts,
			struct fare_feed_report *rep)
{
	struct fare_file files[FARE_FILES_MAX];
	char *bufs[FARE_FILES_MAX];
	unsigned n = 0;
	memset(rep, 0, sizeof(*rep));
	*out = NULL;
	int rc = read_dir(dir, files, bufs, &n, rep);
	if (rc == 0)
		rc = fare_feed_load_files_opts(out, dir, files, n, opts, rep);
	for (unsigned i = 0; i < n; i++)
		free(bufs[i]);
	return rc;
}

int fare_feed_load(struct fare_feed **out, const char *dir, char *err, size_t err_len)
{
	struct fare_feed_report rep;
	int rc = fare_feed_load_opts(out, dir, NULL, &rep);
	if (rc != 0)
		first_line(&rep, err, err_len);
	fare_feed_report_free(&rep);
	return rc;
}

void fare_feed_free(struct fare_feed *f)
{
	if (!f)
		return;
	for (unsigned i = 0; i < FARE_FILES_MAX; i++)
		free(f->file_data[i]);
	struct fare_ids *all[] = {&f->products, &f->categories, &f->media,    &f->areas,     &f->networks,
				  &f->groups,   &f->tfgroups,   &f->services, &f->promotions, &f->subsidies,
				  &f->funders,  &f->caps,       &f->stops,    &f->routes,     &f->tiers,
				  &f->zones};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		fare_ids_free(all[i]);
	void *arrays[] = {f->media_type,   f->prices,        f->price_first,  f->product_in_transfer,
			  f->leg_rules,    f->transfer_rules, f->join_rules,  f->timeframes,
			  f->service_rows, f->service_dates, f->stop_areas,   f->route_network,
			  f->stop_codes,   f->route_codes,   f->incomplete,   f->cap_rows,
			  f->tier_rows,    f->promotion_rows, f->subsidy_rows, f->stop_parent,
			  f->stop_zone};
	for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++)
		free(arrays[i]);
	free(f);
}

const char *fare_feed_currency(const struct fare_feed *f, unsigned *minor_units)
{
	if (minor_units)
		*minor_units = f->minor_units;
	return f->currency;
}

const char *fare_feed_timezone(const struct fare_feed *f)
{
	return f->timezone;
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
		     "%u leg rules%s, %u transfer rules, %u join rules, %u timeframes, %u caps, %u spend tiers, "
		     "%u promotions, %u subsidies; currency %s (%u decimals)%s%s%s\n",
		(unsigned long long)f->version, f->version_label[0] ? " feed_version " : "", f->version_label,
		f->stops.n, f->routes.n, f->networks.n, f->areas.n, f->products.n, f->nprices, f->nleg_rules,
		f->have_priority ? " (rule_priority)" : "", f->ntransfer_rules, f->njoin_rules, f->ntimeframes,
		f->ncaps, f->ntiers, f->npromotions, f->nsubsidies, f->currency[0] ? f->currency : "-",
		f->minor_units, f->timezone[0] ? "; time zone " : "", f->timezone,
		f->nexcluded ? "; SOME RULES EXCLUDED (their legs are unrated)" : "");
}
