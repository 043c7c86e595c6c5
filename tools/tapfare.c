/*
 * tapfare.c - the fare engine's command line: check a feed, rate the
 * gateway's log into legs, print legs and the e-purse audit table.
 *
 * Settings come from [fares] of the config file (config/tapgate.conf), the
 * gateway's store path from [store]; options override both. Exit codes:
 * 0 done, 1 bad input (feed, token, day), 2 store or system error, 64 usage.
 */
#include "config/config.h"
#include "proc/proc.h"
#include "fare/fare.h"
#include "store/store.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#define EXIT_INPUT 1
#define EXIT_SYSTEM 2
#define EXIT_USAGE 64

static void usage(FILE *f)
{
	fprintf(f, "usage: tapfare [-c CONFIG] [-s STORE] [-r RATED] [-f FEED] [-o section.key=value] COMMAND\n"
		   "  check [FEED_DIR] [--exclude-bad-rows]\n"
		   "                                   load and validate a feed: every problem with file, line,\n"
		   "                                   column and field; its version, size and currency\n"
		   "  rate [--through YYYYMMDD] [--exclude-bad-rows] [--rerate-unrated D]\n"
		   "                                   rate the log's new taps; every unrated day up to --through\n"
		   "                                   (default: each day whose cutoff is fares.grace_s past);\n"
		   "                                   --rerate-unrated: rate again with FEED the token-days of\n"
		   "                                   day D holding an unrated leg (adjustment legs)\n"
		   "  legs [--day D] [--token T] [--no-version] [--unrated]\n"
		   "                                   print rated legs (docs/FARES.md section 4); --unrated: only\n"
		   "                                   the unrated ones\n"
		   "  quote --date YYYYMMDD [--media ID] [--category ID] (--taps FILE.csv | TAP...)\n"
		   "                                   price one journey against -f FEED, no store: each leg, the\n"
		   "                                   rule that priced it and why (section 7); TAP is\n"
		   "                                   TIME,KIND,ROUTE_ID,STOP_ID with the feed's ids, KIND board,\n"
		   "                                   entry or exit; FILE.csv has the header\n"
		   "                                   [date,]time,kind,route_id,stop_id\n"
		   "  audit [--day D] [--token T]      print the e-purse audit table (section 5)\n"
		   "Tokens: epurse:ISSUER:CARD, quickpass:N, qr:N. Days: YYYYMMDD.\n");
}

static bool exclude_bad_rows; /* --exclude-bad-rows */

struct args {
	struct cfg cfg;
	const char *store, *rated, *feed;
	uint32_t day, through, date, rerate_unrated;
	const char *media_id, *category_id, *taps_file;
	bool no_version, have_token;
	struct fare_query q;
};

static int parse_day(const char *s, uint32_t *day)
{
	if (fare_day_parse(s, day) == 0)
		return 0;
	fprintf(stderr, "tapfare: \"%s\" is not a day YYYYMMDD\n", s);
	return -1;
}

/* Options after the command. Returns 0, or an exit code. */
static int command_options(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{"through", required_argument, NULL, 't'}, {"day", required_argument, NULL, 'd'},
		{"token", required_argument, NULL, 'k'},   {"no-version", no_argument, NULL, 'n'},
		{"exclude-bad-rows", no_argument, NULL, 'x'}, {"media", required_argument, NULL, 'm'},
		{"category", required_argument, NULL, 'g'},   {"date", required_argument, NULL, 'D'},
		{"taps", required_argument, NULL, 'T'},       {"rerate-unrated", required_argument, NULL, 'R'},
		{"unrated", no_argument, NULL, 'U'},
		{NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't': if (parse_day(optarg, &a->through) != 0) return EXIT_INPUT; break;
		case 'd': if (parse_day(optarg, &a->day) != 0) return EXIT_INPUT; break;
		case 'k':
			if (fare_token_parse(optarg, &a->q.medium, &a->q.issuer, &a->q.token_id) != 0) {
				fprintf(stderr, "tapfare: \"%s\" is not a token (epurse:ISSUER:CARD, quickpass:N, qr:N)\n",
					optarg);
				return EXIT_INPUT;
			}
			break;
		case 'n': a->no_version = true; break;
		case 'x': exclude_bad_rows = true; break;
		case 'm': a->media_id = optarg; break;
		case 'g': a->category_id = optarg; break;
		case 'D': if (parse_day(optarg, &a->date) != 0) return EXIT_INPUT; break;
		case 'T': a->taps_file = optarg; break;
		case 'R': if (parse_day(optarg, &a->rerate_unrated) != 0) return EXIT_INPUT; break;
		case 'U': a->q.unrated_only = true; break;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	a->q.day = a->day;
	return 0;
}

/* Load a feed, listing every problem found; with --exclude-bad-rows a feed with problems is taken with the
 * refused rows left out (each listed here). */
static int load_feed_opts(const char *dir, bool exclude, struct fare_feed **f)
{
	struct fare_load_opts opts = {.exclude_bad_rows = exclude};
	struct fare_feed_report rep;
	int rc = fare_feed_load_opts(f, dir, &opts, &rep);
	for (const char *p = rep.text; p && *p;) {
		size_t len = strcspn(p, "\n");
		fprintf(stderr, "tapfare: %s%.*s\n", rc == 0 ? "excluded: " : "", (int)len, p);
		p += len + (p[len] == '\n');
	}
	if (rep.truncated)
		fprintf(stderr, "tapfare: more than %u problems: stopped looking\n", rep.nerrors);
	if (rc != 0 && rep.nerrors > 0)
		fprintf(stderr, "tapfare: %s: %u problem%s, feed refused%s\n", dir, rep.nerrors, rep.nerrors == 1 ? "" : "s",
			exclude ? "" : " (--exclude-bad-rows takes it without the refused rows)");
	fare_feed_report_free(&rep);
	if (rc != 0)
		return rc == FARE_ERR_FEED ? EXIT_INPUT : EXIT_SYSTEM;
	return 0;
}

static int load_feed(const char *dir, struct fare_feed **f)
{
	return load_feed_opts(dir, exclude_bad_rows, f);
}

static int init_clock(const struct args *a, struct fare_clock *clk)
{
	int rc = fare_clock_init(clk, a->cfg.fares_timezone, a->cfg.fares_day_cutoff);
	if (rc == FARE_ERR_TZ)
		fprintf(stderr, "tapfare: fares.timezone \"%s\" is not a time zone of /usr/share/zoneinfo\n",
			a->cfg.fares_timezone);
	else if (rc != 0)
		fprintf(stderr, "tapfare: fares.day_cutoff \"%s\" is not HH:MM\n", a->cfg.fares_day_cutoff);
	return rc == 0 ? 0 : EXIT_INPUT;
}

static int cmd_check(int argc, char **argv, struct args *a)
{
	struct fare_feed *f;
	int rc = load_feed(argc > 1 ? argv[1] : a->feed, &f);
	if (rc != 0)
		return rc;
	printf("%s: ", argc > 1 ? argv[1] : a->feed);
	fare_feed_summary(f, stdout);
	fare_feed_free(f);
	return 0;
}

static int cmd_rate(struct args *a)
{
	struct fare_clock clk;
	struct fare_feed *feed = NULL;
	struct st_env *log = NULL;
	struct fare_db *db = NULL;
	char err[FARE_ERR_MAX];
	int rc;
	if ((rc = init_clock(a, &clk)) != 0 || (rc = load_feed(a->feed, &feed)) != 0)
		return rc;
	if (!a->through) { /* the last day whose cutoff is grace_s past */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t now_us = (uint64_t)ts.tv_sec * 1000000u;
		uint32_t today = fare_clock_day(&clk, now_us - (uint64_t)a->cfg.fares_grace_s * 1000000u);
		uint64_t noon = fare_clock_utc_us(&clk, today, 12 * 3600);
		a->through = fare_clock_day(&clk, noon - 86400ull * 1000000u);
	}
	struct st_options so = {.path = a->store, .map_size_bytes = 1ull << 20, .read_only = true};
	if ((rc = st_env_open(&log, &so)) != 0) {
		fprintf(stderr, "tapfare: gateway store %s: %s\n", a->store, st_strerror(rc));
		fare_feed_free(feed);
		return EXIT_SYSTEM;
	}
	if (fare_db_open(&db, a->rated, false, err, sizeof(err)) != 0) {
		fprintf(stderr, "tapfare: %s\n", err);
		rc = EXIT_SYSTEM;
		goto out_close_log;
	}
	struct fare_run_options opt = {.through_day = a->through, .rerate_unrated_day = a->rerate_unrated};
	struct fare_run_stats st;
	fprintf(stderr, "tapfare: rating days up to %u with feed %016llx\n", a->through,
		(unsigned long long)fare_feed_version(feed));
	if ((rc = fare_run(db, log, feed, &clk, &opt, &st, err, sizeof(err))) != 0) {
		fprintf(stderr, "tapfare: %s\n", err);
		rc = rc == FARE_ERR_INVALID ? EXIT_INPUT : EXIT_SYSTEM;
	} else {
		printf("rated %llu taps (%llu read, %llu late, %llu undecodable), %llu days, %llu legs, "
		       "%llu adjustment legs for %llu token-days, %llu unrated legs, %llu audit lines; "
		       "%llu forged QR taps not rated, %llu taps after seq %llu waiting for their QR verdicts\n",
		       (unsigned long long)st.taps_rated, (unsigned long long)st.taps_scanned,
		       (unsigned long long)st.taps_late, (unsigned long long)st.taps_undecodable,
		       (unsigned long long)st.days_rated, (unsigned long long)st.legs_written,
		       (unsigned long long)st.adjustment_legs, (unsigned long long)st.tokens_rerated,
		       (unsigned long long)st.norule_legs, (unsigned long long)st.audit_lines,
		       (unsigned long long)st.taps_forged, (unsigned long long)st.taps_waiting,
		       (unsigned long long)st.qr_frontier);
	}
	fare_db_close(db);
out_close_log:
	st_env_close(log);
	fare_feed_free(feed);
	return rc;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0) {
		long n = ftell(f);
		if (n >= 0 && n < (1 << 20) && fseek(f, 0, SEEK_SET) == 0 && (b = malloc((size_t)n + 1)) &&
		    fread(b, 1, (size_t)n, f) == (size_t)n)
			*len = (size_t)n;
		else
			free(b), b = NULL;
	}
	fclose(f);
	return b;
}

/* The taps of the command line as CSV under quote's header. */
static char *taps_csv(int argc, char **argv, size_t *len)
{
	size_t cap = 64;
	for (int i = 0; i < argc; i++)
		cap += strlen(argv[i]) + 1;
	char *b = malloc(cap);
	if (!b)
		return NULL;
	*len = (size_t)snprintf(b, cap, "time,kind,route_id,stop_id\n");
	for (int i = 0; i < argc; i++)
		*len += (size_t)snprintf(b + *len, cap - *len, "%s\n", argv[i]);
	return b;
}

static int cmd_quote(int argc, char **argv, struct args *a)
{
	struct fare_feed *feed;
	char err[FARE_ERR_MAX];
	size_t len = 0;
	if (!a->date && !a->taps_file) {
		fprintf(stderr, "tapfare: quote needs --date YYYYMMDD (or a date column in --taps)\n");
		return EXIT_USAGE;
	}
	int rc = load_feed(a->feed, &feed);
	if (rc != 0)
		return rc;
	char *csv = a->taps_file ? slurp(a->taps_file, &len) : taps_csv(argc, argv, &len);
	if (!csv) {
		fprintf(stderr, "tapfare: %s: cannot read the taps\n", a->taps_file ? a->taps_file : "quote");
		fare_feed_free(feed);
		return EXIT_INPUT;
	}
	struct fare_quote_opts o = {.media_id = a->media_id, .category_id = a->category_id, .date = a->date,
				    .timezone = a->cfg.fares_timezone};
	if ((rc = fare_quote(feed, csv, len, &o, stdout, err, sizeof(err))) != 0)
		fprintf(stderr, "tapfare: quote: %s\n", err);
	free(csv);
	fare_feed_free(feed);
	return rc == 0 ? 0 : rc == FARE_ERR_NOMEM ? EXIT_SYSTEM : EXIT_INPUT;
}

static int cmd_print(struct args *a, bool legs)
{
	struct fare_clock clk;
	struct fare_db *db;
	char err[FARE_ERR_MAX];
	int rc = init_clock(a, &clk);
	if (rc != 0)
		return rc;
	if (fare_db_open(&db, a->rated, true, err, sizeof(err)) != 0) {
		fprintf(stderr, "tapfare: %s\n", err);
		return EXIT_SYSTEM;
	}
	rc = legs ? fare_print_legs(db, &clk, &a->q, a->no_version, stdout, err, sizeof(err))
		  : fare_print_audit(db, &a->q, stdout, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "tapfare: %s\n", err);
	fare_db_close(db);
	return rc == 0 ? 0 : EXIT_SYSTEM;
}

int main(int argc, char **argv)
{
	struct args a = {0};
	const char *config = NULL;
	char err[CFG_ERR_MAX];
	int c;
	proc_version_option(argc, argv, "tapfare");
	proc_tool_init(); /* umask 027; SIGTERM and SIGINT end the tool at once, with a line */
	cfg_defaults(&a.cfg);
	if (argc > 1 && strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	while ((c = getopt(argc, argv, "+c:s:r:f:o:h")) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 's': a.store = optarg; break;
		case 'r': a.rated = optarg; break;
		case 'f': a.feed = optarg; break;
		case 'o':
			if (cfg_set(&a.cfg, optarg, err, sizeof(err)) != 0) {
				fprintf(stderr, "tapfare: %s\n", err);
				return EXIT_INPUT;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (config && cfg_load(&a.cfg, config, err, sizeof(err)) != 0) {
		fprintf(stderr, "tapfare: *** FATAL CONFIG FILE ERROR *** %s\n", err);
		return EXIT_INPUT;
	}
	a.store = a.store ? a.store : a.cfg.store_path;
	a.rated = a.rated ? a.rated : a.cfg.fares_rated_path;
	a.feed = a.feed ? a.feed : a.cfg.fares_feed;
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	argc -= optind;
	argv += optind;
	const char *cmd = argv[0];
	int rc = command_options(argc, argv, &a);
	if (rc != 0)
		return rc;
	if (strcmp(cmd, "check") == 0)
		return cmd_check(argc - optind + 1, argv + optind - 1, &a);
	if (strcmp(cmd, "rate") == 0)
		return cmd_rate(&a);
	if (strcmp(cmd, "quote") == 0)
		return cmd_quote(argc - optind, argv + optind, &a);
	if (strcmp(cmd, "legs") == 0 || strcmp(cmd, "audit") == 0)
		return cmd_print(&a, strcmp(cmd, "legs") == 0);
	fprintf(stderr, "tapfare: unknown command \"%s\"\n", cmd);
	usage(stderr);
	return EXIT_USAGE;
}
