/*
 * feed_load.c - how long loading a GTFS-Fares v2 feed takes (read, parse,
 * check, intern, finish): the largest real feed we test with is MBTA's
 * (tests/fares/real/mbta, 1.7 MB). Prints the median of -r runs.
 */
#include "fare/fare.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	const char *dir = "tests/fares/real/mbta";
	int runs = 5, c;
	while ((c = getopt(argc, argv, "f:r:")) != -1) {
		if (c == 'f')
			dir = optarg;
		else if (c == 'r' && atoi(optarg) > 0 && atoi(optarg) <= 101)
			runs = atoi(optarg);
		else {
			fprintf(stderr, "usage: feed_load [-f FEED_DIR] [-r RUNS]\n");
			return 64;
		}
	}
	double t[101];
	char err[FARE_ERR_MAX];
	for (int i = 0; i < runs; i++) {
		struct fare_feed *f;
		double t0 = now_s();
		if (fare_feed_load(&f, dir, err, sizeof(err)) != 0) {
			fprintf(stderr, "feed_load: %s\n", err);
			return 1;
		}
		t[i] = now_s() - t0;
		fare_feed_free(f);
	}
	qsort(t, (size_t)runs, sizeof(t[0]), cmp_double);
	printf("feed_load feed=%s runs=%d median_seconds=%.4f min_seconds=%.4f\n", dir, runs, t[runs / 2], t[0]);
	return 0;
}
