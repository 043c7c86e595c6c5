/*
 * fuzz_feed.c - libFuzzer target for the GTFS-Fares v2 feed loader
 * (fare_feed_load_files_opts): CSV parsing, every loader, the finishing.
 *
 * An input is the files of a feed, one after the other, separated by a
 * 0x1e byte, in the order of `names` (an empty part: the file is absent).
 * Properties: the loader returns 0, FARE_ERR_FEED or FARE_ERR_NOMEM; a
 * refused feed always says why (at least one problem listed); a feed loaded
 * twice has the same version; with exclude_bad_rows it never fails for
 * anything but too many problems. With FUZZ_WRITE_SEEDS=DIR (tests/fuzz.sh)
 * it first writes the demo feed there as a seed. Built by `make fuzz`.
 */
#include "fare/fare.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
	"stops.txt", "routes.txt", "fare_products.txt", "fare_leg_rules.txt", "fare_transfer_rules.txt",
	"areas.txt", "stop_areas.txt", "networks.txt", "route_networks.txt", "timeframes.txt", "calendar.txt",
	"calendar_dates.txt", "fare_media.txt", "rider_categories.txt", "agency.txt", "tg_fare_caps.txt",
	"tg_incomplete_journeys.txt", "tg_card_categories.txt", "tg_spend_tiers.txt", "tg_media.txt",
};
#define NFILES (sizeof(names) / sizeof(names[0]))

#define MUST(cond)                                                                 \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "fuzz_feed: property failed: %s\n", #cond); \
			abort();                                                   \
		}                                                                  \
	} while (0)

/* Write config/fares-demo as one seed input. */
static void write_seed(const char *dir)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/demo-feed", dir);
	FILE *out = fopen(path, "wb");
	if (!out)
		return;
	for (size_t i = 0; i < NFILES; i++) {
		snprintf(path, sizeof(path), "config/fares-demo/%s", names[i]);
		FILE *in = fopen(path, "rb");
		char buf[4096];
		size_t n;
		while (in && (n = fread(buf, 1, sizeof(buf), in)) > 0)
			fwrite(buf, 1, n, out);
		if (in)
			fclose(in);
		if (i + 1 < NFILES)
			fputc(0x1e, out);
	}
	fclose(out);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *seeds = getenv("FUZZ_WRITE_SEEDS");
	if (seeds)
		write_seed(seeds);
	return 0;
}

static int load(const struct fare_file *files, unsigned n, bool exclude, uint64_t *version)
{
	struct fare_load_opts opts = {.exclude_bad_rows = exclude};
	struct fare_feed_report rep;
	struct fare_feed *f = NULL;
	int rc = fare_feed_load_files_opts(&f, "fuzz", files, n, &opts, &rep);
	MUST(rc == 0 || rc == FARE_ERR_FEED || rc == FARE_ERR_NOMEM);
	MUST(rc != FARE_ERR_FEED || rep.nerrors > 0);
	MUST(rc == 0 || !exclude || rep.truncated || rc == FARE_ERR_NOMEM);
	if (rc == 0) {
		*version = fare_feed_version(f);
		unsigned units;
		MUST(fare_feed_currency(f, &units) != NULL && units <= 4);
	}
	fare_feed_report_free(&rep);
	fare_feed_free(f);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fare_file files[NFILES];
	unsigned n = 0;
	size_t start = 0;
	for (size_t i = 0; i <= size && n < NFILES; i++) {
		if (i < size && data[i] != 0x1e)
			continue;
		if (i > start) {
			snprintf(files[n].name, sizeof(files[n].name), "%s", names[n]);
			files[n].data = (const char *)data + start;
			files[n].len = i - start;
			n++;
		} else {
			n++; /* an empty part: that file is absent */
			files[n - 1].name[0] = '\0';
			files[n - 1].len = 0;
			files[n - 1].data = "";
		}
		start = i + 1;
	}
	struct fare_file present[NFILES];
	unsigned k = 0;
	for (unsigned i = 0; i < n; i++)
		if (files[i].name[0])
			present[k++] = files[i];
	uint64_t v1 = 0, v2 = 0;
	int rc = load(present, k, false, &v1);
	if (rc == 0) {
		MUST(load(present, k, false, &v2) == 0);
		MUST(v1 == v2);
	}
	load(present, k, true, &v2);
	return 0;
}
