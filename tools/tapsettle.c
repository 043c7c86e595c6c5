/*
 * tapsettle.c - the settlement worker's command line (docs/SETTLEMENT.md).
 *
 *   tapsettle run                  the daemon: rate the log's new taps and close
 *                                  each day once its cutoff is fares.grace_s past
 *   tapsettle close --day D        rate through D and close it (a new round if
 *                                  anything is new; otherwise nothing is written)
 *   tapsettle status               rounds and batches
 *   tapsettle reconcile --day D    recompute the day; exit 3 on any mismatch
 *   tapsettle ingest-response FILE a counterparty's answer: declines go on the deny list
 *   tapsettle resend --batch ID    write a batch's file again, identical, and mark it sent
 *   tapsettle deny                 the deny list
 *   tapsettle recover --day D      debt recovery: present the debts due by D again
 *
 * A separate process from the gateway: it reads the gateway's store with
 * short read transactions while the gateway runs. Settings come from
 * [store], [fares] and [settle] of the config file. Exit codes: 0 done,
 * 1 bad input (day, config, counterparties), 2 store or system error,
 * 3 reconciliation mismatch, 64 usage.
 */
#include "config/config.h"
#include "fare/fare.h"
#include "settle/settle.h"
#include "store/store.h"

#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#define EXIT_INPUT 1
#define EXIT_SYSTEM 2
#define EXIT_MISMATCH 3
#define EXIT_USAGE 64

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: tapsettle [-c CONFIG] [-o section.key=value]... COMMAND\n"
		   "  run                        follow the log: rate and close each day after its cutoff + grace\n"
		   "  close --day YYYYMMDD [--force]   rate through the day and close it (batches and files);\n"
		   "                             --force: a day whose cutoff + grace has not passed yet\n"
		   "  status                     rounds and batches, with their files\n"
		   "  reconcile --day YYYYMMDD   recompute the day from the log, the legs and the files\n"
		   "  ingest-response FILE       an acquirer's response (CSV) or the bank's pain.002: deny list, states\n"
		   "  resend --batch ID          write a batch's file again (identical) and mark it sent\n"
		   "  deny                       print the deny list\n"
		   "  recover --day YYYYMMDD     present again the declined debts due by that day (recovery batches)\n"
		   "Settings: [store], [fares], [settle] of CONFIG (default config/tapgate.conf).\n");
}

struct app {
	struct cfg cfg;
	struct settle_parties parties;
	struct fare_clock clk;
	struct fare_feed *feed;
	struct st_env *log;
	struct fare_db *rated;
	struct settle_db *db;
	struct settle_ctx ctx;
};

static int parse_day(const char *s, uint32_t *day)
{
	if (fare_day_parse(s, day) == 0)
		return 0;
	fprintf(stderr, "tapsettle: \"%s\" is not a day YYYYMMDD\n", s);
	return -1;
}

static int open_all(struct app *a, bool rate, bool write)
{
	char err[SETTLE_ERR_MAX > FARE_ERR_MAX ? SETTLE_ERR_MAX : FARE_ERR_MAX];
	int rc = settle_parties_load(&a->parties, a->cfg.settle_counterparties, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "tapsettle: %s\n", err);
		return EXIT_INPUT;
	}
	rc = fare_clock_init(&a->clk, a->cfg.fares_timezone, a->cfg.fares_day_cutoff);
	if (rc != 0) {
		fprintf(stderr, "tapsettle: fares.timezone \"%s\" or fares.day_cutoff \"%s\" is not valid\n",
			a->cfg.fares_timezone, a->cfg.fares_day_cutoff);
		return EXIT_INPUT;
	}
	if (rate && (rc = fare_feed_load(&a->feed, a->cfg.fares_feed, err, sizeof(err))) != 0) {
		fprintf(stderr, "tapsettle: %s\n", err);
		return rc == FARE_ERR_FEED ? EXIT_INPUT : EXIT_SYSTEM;
	}
	struct st_options so = {.path = a->cfg.store_path, .map_size_bytes = 1ull << 20, .read_only = true};
	if ((rc = st_env_open(&a->log, &so)) != 0) {
		fprintf(stderr, "tapsettle: gateway store %s: %s\n", a->cfg.store_path, st_strerror(rc));
		return EXIT_SYSTEM;
	}
	if (fare_db_open(&a->rated, a->cfg.fares_rated_path, false, err, sizeof(err)) != 0 ||
	    settle_db_open(&a->db, a->cfg.settle_path, !write, err, sizeof(err)) != 0) {
		fprintf(stderr, "tapsettle: %s\n", err);
		return EXIT_SYSTEM;
	}
	a->ctx = (struct settle_ctx){.db = a->db, .rated = a->rated, .log = a->log, .clk = &a->clk,
				     .parties = &a->parties, .outbox = a->cfg.settle_outbox,
				     .parties_path = a->cfg.settle_counterparties,
				     .write_off_fen = a->cfg.settle_write_off_fen, .retry_count = a->cfg.settle_retry_count,
				     .retry_days = a->cfg.settle_retry_days};
	return 0;
}

static void close_all(struct app *a)
{
	settle_db_close(a->db);
	if (a->rated)
		fare_db_close(a->rated);
	if (a->log)
		st_env_close(a->log);
	fare_feed_free(a->feed);
}

static int rate_through(struct app *a, uint32_t through)
{
	char err[FARE_ERR_MAX];
	struct fare_run_options opt = {.through_day = through};
	struct fare_run_stats st;
	if (fare_run(a->rated, a->log, a->feed, &a->clk, &opt, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, "tapsettle: rating: %s\n", err);
		return EXIT_SYSTEM;
	}
	if (st.taps_rated || st.adjustment_legs)
		fprintf(stderr, "tapsettle: rated %llu taps through %u: %llu legs, %llu adjustment legs\n",
			(unsigned long long)st.taps_rated, through, (unsigned long long)st.legs_written,
			(unsigned long long)st.adjustment_legs);
	return 0;
}

static int close_day(struct app *a, uint32_t day)
{
	char err[SETTLE_ERR_MAX];
	struct settle_close_stats st;
	int rc = settle_close(&a->ctx, day, &st, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "tapsettle: close %u: %s\n", day, err);
		return rc == SETTLE_ERR_INVALID || rc == SETTLE_ERR_PARTY || rc == SETTLE_ERR_CONFIG ? EXIT_INPUT
														  : EXIT_SYSTEM;
	}
	if (st.new_round)
		printf("day %u round %u: %llu legs in %llu batches, files under %s/\n", day, st.round,
		       (unsigned long long)st.legs, (unsigned long long)st.batches, a->cfg.settle_outbox);
	else
		printf("day %u: nothing new since round %u; no file written\n", day, st.round);
	return 0;
}

static uint32_t closable_day(struct app *a)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now_us = (uint64_t)ts.tv_sec * 1000000u;
	uint32_t today = fare_clock_day(&a->clk, now_us - (uint64_t)a->cfg.fares_grace_s * 1000000u);
	uint64_t noon = fare_clock_utc_us(&a->clk, today, 12 * 3600);
	return fare_clock_day(&a->clk, noon - 86400ull * 1000000u);
}

static int cmd_run(struct app *a)
{
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fprintf(stderr, "tapsettle: following %s every %u s; days close %u s after their cutoff\n", a->cfg.store_path,
		a->cfg.settle_poll_s, a->cfg.fares_grace_s);
	while (!stopping) {
		uint32_t through = closable_day(a), *days = NULL;
		size_t n = 0;
		char err[FARE_ERR_MAX];
		int rc = rate_through(a, through);
		if (rc == 0 && fare_db_rated_days(a->rated, &days, &n, err, sizeof(err)) != 0) {
			fprintf(stderr, "tapsettle: %s\n", err);
			rc = EXIT_SYSTEM;
		}
		for (size_t i = 0; i < n && rc == 0 && !stopping; i++)
			if (days[i] <= through)
				rc = close_day(a, days[i]);
		free(days);
		if (rc == 0 && !stopping && settle_recover(&a->ctx, through, stdout, err, sizeof(err)) != 0) {
			fprintf(stderr, "tapsettle: recovery: %s\n", err);
			rc = EXIT_SYSTEM;
		}
		if (rc == EXIT_SYSTEM)
			return rc;
		for (uint32_t s = 0; s < a->cfg.settle_poll_s && !stopping; s++)
			sleep(1);
	}
	fprintf(stderr, "tapsettle: stopped\n");
	return 0;
}

static bool force; /* close --force: a day that has not ended yet */

static int day_option(int argc, char **argv, uint32_t *day)
{
	static const struct option opts[] = {{"day", required_argument, NULL, 'd'}, {"force", no_argument, NULL, 'f'},
					     {NULL, 0, NULL, 0}};
	int c;
	optind = 1;
	*day = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'f' && strcmp(argv[0], "close") == 0) {
			force = true;
			continue;
		}
		if (c != 'd') {
			usage(stderr);
			return EXIT_USAGE;
		}
		if (parse_day(optarg, day) != 0)
			return EXIT_INPUT;
	}
	if (!*day) {
		fprintf(stderr, "tapsettle: %s needs --day YYYYMMDD\n", argv[0]);
		return EXIT_USAGE;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct app a = {0};
	const char *config = NULL;
	char err[CFG_ERR_MAX];
	int c;
	cfg_defaults(&a.cfg);
	umask(027); /* what it creates (stores, outbox files, CSV) is never world-readable */
	static const struct option top[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	/* settings first: -c before -o, whatever their order */
	while ((c = getopt_long(argc, argv, "+c:o:h", top, NULL)) != -1) {
		if (c == 'c')
			config = optarg;
		else if (c == 'h') {
			usage(stdout);
			return 0;
		} else if (c != 'o') {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (cfg_load(&a.cfg, config ? config : "config/tapgate.conf", err, sizeof(err)) != 0) {
		fprintf(stderr, "tapsettle: %s\n", err);
		return EXIT_INPUT;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "+c:o:h", top, NULL)) != -1)
		if (c == 'o' && cfg_set(&a.cfg, optarg, err, sizeof(err)) != 0) {
			fprintf(stderr, "tapsettle: -o %s: %s\n", optarg, err);
			return EXIT_INPUT;
		}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[optind];
	int sub_argc = argc - optind;
	char **sub_argv = argv + optind;
	uint32_t day = 0;
	int rc;
	if (strcmp(cmd, "run") == 0) {
		if ((rc = open_all(&a, true, true)) == 0)
			rc = cmd_run(&a);
	} else if (strcmp(cmd, "close") == 0) {
		if ((rc = day_option(sub_argc, sub_argv, &day)) == 0 && (rc = open_all(&a, true, true)) == 0 &&
		    day > closable_day(&a) && !force) {
			fprintf(stderr, "tapsettle: business day %u is not over: it ends at its cutoff (%s local) plus "
					"fares.grace_s (%u s) for late uploads; close it after that, or with --force\n",
				day, a.cfg.fares_day_cutoff, a.cfg.fares_grace_s);
			rc = EXIT_INPUT;
		}
		if (rc == 0 && (rc = rate_through(&a, day)) == 0)
			rc = close_day(&a, day);
	} else if (strcmp(cmd, "status") == 0) {
		if ((rc = open_all(&a, false, false)) == 0 && settle_status(&a.ctx, stdout, err, sizeof(err)) != 0) {
			fprintf(stderr, "tapsettle: %s\n", err);
			rc = EXIT_SYSTEM;
		}
	} else if (strcmp(cmd, "reconcile") == 0) {
		if ((rc = day_option(sub_argc, sub_argv, &day)) == 0 && (rc = open_all(&a, false, false)) == 0) {
			char rerr[SETTLE_ERR_MAX];
			int r = settle_reconcile(&a.ctx, day, stdout, rerr, sizeof(rerr));
			if (r == SETTLE_ERR_MISMATCH)
				rc = EXIT_MISMATCH;
			else if (r != 0) {
				fprintf(stderr, "tapsettle: reconcile %u: %s\n", day, rerr);
				rc = r == SETTLE_ERR_INVALID ? EXIT_INPUT : EXIT_SYSTEM;
			}
		}
	} else if (strcmp(cmd, "ingest-response") == 0) {
		if (sub_argc != 2) {
			usage(stderr);
			rc = EXIT_USAGE;
		} else if ((rc = open_all(&a, false, true)) == 0) {
			int r = settle_ingest(&a.ctx, sub_argv[1], stdout, err, sizeof(err));
			if (r == SETTLE_ERR_MISMATCH)
				rc = EXIT_MISMATCH;
			else if (r != 0) {
				fprintf(stderr, "tapsettle: %s\n", err);
				rc = r == SETTLE_ERR_INVALID ? EXIT_INPUT : EXIT_SYSTEM;
			}
		}
	} else if (strcmp(cmd, "resend") == 0) {
		if (sub_argc != 3 || strcmp(sub_argv[1], "--batch") != 0) {
			usage(stderr);
			rc = EXIT_USAGE;
		} else if ((rc = open_all(&a, false, true)) == 0) {
			int r = settle_resend(&a.ctx, sub_argv[2], stdout, err, sizeof(err));
			if (r != 0) {
				fprintf(stderr, "tapsettle: %s\n", err);
				rc = r == SETTLE_ERR_INVALID ? EXIT_INPUT : EXIT_SYSTEM;
			}
		}
	} else if (strcmp(cmd, "recover") == 0) {
		if ((rc = day_option(sub_argc, sub_argv, &day)) == 0 && (rc = open_all(&a, false, true)) == 0 &&
		    settle_recover(&a.ctx, day, stdout, err, sizeof(err)) != 0) {
			fprintf(stderr, "tapsettle: %s\n", err);
			rc = EXIT_SYSTEM;
		}
	} else if (strcmp(cmd, "deny") == 0) {
		if ((rc = open_all(&a, false, false)) == 0 && settle_deny_print(&a.ctx, stdout, err, sizeof(err)) != 0) {
			fprintf(stderr, "tapsettle: %s\n", err);
			rc = EXIT_SYSTEM;
		}
	} else {
		fprintf(stderr, "tapsettle: unknown command '%s'\n", cmd);
		usage(stderr);
		rc = EXIT_USAGE;
	}
	close_all(&a);
	return rc;
}
