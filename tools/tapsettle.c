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
 *   tapsettle write-off-unrated --day D [--leg SEQ]   unrated legs written off, never settled
 *
 * A separate process from the gateway: it reads the gateway's store with
 * short read transactions while the gateway runs. Settings come from
 * [store], [fares] and [settle] of the config file. Exit codes: 0 done,
 * 1 bad input (day, config, counterparties), 2 store or system error,
 * 3 reconciliation mismatch, 64 usage.
 */
#include "config/config.h"
#include "fare/fare.h"
#include "proc/proc.h"
#include "settle/settle.h"
#include "store/store.h"

#include <errno.h>
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
#define EXIT_CONFIG 78 /* --check: sysexits.h EX_CONFIG */
#define SETS_MAX 64

static volatile sig_atomic_t stopping;

static void usage(FILE *f)
{
	fprintf(f, "usage: tapsettle [-c CONFIG] [-o section.key=value]... [--check] COMMAND\n"
		   "  --check                    check the settings, feed, counterparties and paths, and exit:\n"
		   "                             0, or 78 with the first error (file, line, key)\n"
		   "  run                        follow the log: rate and close each day after its cutoff + grace\n"
		   "  close --day YYYYMMDD [--force]   rate through the day and close it (batches and files);\n"
		   "                             --force: a day whose cutoff + grace has not passed yet\n"
		   "  status                     rounds and batches, with their files\n"
		   "  reconcile --day YYYYMMDD   recompute the day from the log, the legs and the files\n"
		   "  ingest-response FILE       an acquirer's response (CSV) or the bank's pain.002: deny list, states\n"
		   "  resend --batch ID          write a batch's file again (identical) and mark it sent\n"
		   "  deny                       print the deny list\n"
		   "  recover --day YYYYMMDD     present again the declined debts due by that day (recovery batches)\n"
		   "  write-off-unrated --day YYYYMMDD [--leg SEQ]\n"
		   "                             write off the day's open unrated legs (or leg SEQ): never settled\n"
		   "Settings: [store], [fares], [settle] of CONFIG (default config/tapgate.conf).\n"
		   "run: SIGTERM or SIGINT stop it between steps (within 30 s; a second one at once);\n"
		   "SIGHUP reloads the feed and the counterparties before the next cycle.\n");
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
	uint8_t secret[SETTLE_SECRET_BYTES];
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

/*
 * The settlement secret ([settle] secret_file), checked as a key file and
 * read: close, run, resend and reconcile name riders by it. Returns 0, or
 * -1 with "PATH: why" in err.
 */
static int secret_load(struct app *a, char *err, size_t err_len)
{
	int why;
	FILE *f = proc_secret_open(a->cfg.settle_secret_file, 4096, &why, err, err_len);
	if (!f)
		return -1;
	int rc = settle_secret_read(f, a->cfg.settle_secret_file, a->secret, err, err_len);
	fclose(f);
	if (rc != 0)
		return -1;
	a->ctx.secret = a->secret;
	return 0;
}

/* open_all, and the secret: the commands that write or recompute riders' pseudonyms. */
static int open_all_secret(struct app *a, bool rate, bool write)
{
	char err[SETTLE_ERR_MAX];
	int rc = open_all(a, rate, write);
	if (rc == 0 && secret_load(a, err, sizeof(err)) != 0) {
		fprintf(stderr, "tapsettle: settle.secret_file: %s\n", err);
		rc = EXIT_INPUT;
	}
	return rc;
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
	if (st.new_round && (st.held_unrated || st.held_written_off))
		printf("day %u round %u: held out of every batch: %llu unrated legs, %llu revisions of written-off legs "
		       "(tapsettle reconcile --day %u lists them)\n",
		       day, st.round, (unsigned long long)st.held_unrated, (unsigned long long)st.held_written_off, day);
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

/*
 * SIGHUP, between cycles: the feed and the counterparties again. A reload
 * that fails keeps what is in force and says why.
 */
static void inputs_reload(struct app *a)
{
	char err[SETTLE_ERR_MAX > FARE_ERR_MAX ? SETTLE_ERR_MAX : FARE_ERR_MAX];
	struct settle_parties parties;
	struct fare_feed *feed = NULL;
	if (settle_parties_load(&parties, a->cfg.settle_counterparties, err, sizeof(err)) != 0 ||
	    fare_feed_load(&feed, a->cfg.fares_feed, err, sizeof(err)) != 0) {
		fprintf(stderr, "tapsettle: reload failed, the running feed and counterparties stay in force: %s\n", err);
		return;
	}
	fare_feed_free(a->feed);
	a->feed = feed;
	a->parties = parties; /* a->ctx.parties points here */
	fprintf(stderr, "tapsettle: reloaded: feed %s (version %llu%s%s), counterparties %s (%u operators)\n",
		a->cfg.fares_feed, (unsigned long long)fare_feed_version(feed),
		fare_feed_version_label(feed)[0] ? ", " : "", fare_feed_version_label(feed), a->cfg.settle_counterparties,
		parties.noperators);
}

/* One cycle of run: rate, close each closable day, present due debts. Returns 0 or an exit status. */
static int run_cycle(struct app *a)
{
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
	return rc;
}

static int cmd_run(struct app *a)
{
	struct proc_signals *signals;
	if (proc_signals_start(&signals, "tapsettle", PROC_STOP_TIMEOUT_S_DEFAULT, &stopping, NULL, NULL) != 0) {
		fprintf(stderr, "tapsettle: %s\n", proc_strerror(PROC_ERR_THREAD));
		return EXIT_SYSTEM;
	}
	fprintf(stderr, "tapsettle: following %s every %u s; days close %u s after their cutoff\n", a->cfg.store_path,
		a->cfg.settle_poll_s, a->cfg.fares_grace_s);
	uint64_t hups = 0;
	int rc = 0;
	proc_notify_ready("following the log"); /* systemd Type=notify; nothing outside systemd */
	while (!stopping && rc != EXIT_SYSTEM) {
		proc_notify_watchdog();
		if (proc_signals_hups(signals) != hups) {
			hups = proc_signals_hups(signals);
			inputs_reload(a);
		}
		rc = run_cycle(a);
		if (rc != EXIT_SYSTEM)
			proc_signals_sleep(signals, a->cfg.settle_poll_s * 1000u, hups);
	}
	proc_notify_stopping();
	fprintf(stderr, rc == EXIT_SYSTEM ? "tapsettle: stopped by the error above\n" : "tapsettle: stopped\n");
	proc_signals_stop(signals);
	return rc == EXIT_SYSTEM ? rc : 0;
}

static bool force; /* close --force: a day that has not ended yet */

static uint64_t leg_seq; /* write-off-unrated --leg SEQ */

static int day_option(int argc, char **argv, uint32_t *day)
{
	static const struct option opts[] = {{"day", required_argument, NULL, 'd'}, {"force", no_argument, NULL, 'f'},
					     {"leg", required_argument, NULL, 'l'}, {NULL, 0, NULL, 0}};
	int c;
	optind = 1;
	*day = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'f' && strcmp(argv[0], "close") == 0) {
			force = true;
			continue;
		}
		if (c == 'l' && strcmp(argv[0], "write-off-unrated") == 0) {
			char *end;
			errno = 0;
			leg_seq = strtoull(optarg, &end, 10);
			if (errno || *end || !leg_seq || optarg[0] == '-') {
				fprintf(stderr, "tapsettle: --leg \"%s\" is not a leg's sequence number (reconcile lists them)\n",
					optarg);
				return EXIT_INPUT;
			}
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

/* Where the settings come from, for --check's messages. */
struct settings {
	const char *path;
	const char *sets[SETS_MAX];
	unsigned nsets;
	bool check;
};

static int check_path(const struct settings *st, const char *section, const char *name, const char *path, bool dir)
{
	char why[CFG_ERR_MAX], where[CFG_PATH_MAX + 64];
	if (proc_path_writable(path, dir, why, sizeof(why)) == 0)
		return 0;
	cfg_key_origin(st->path, st->sets, st->nsets, section, name, where, sizeof(where));
	printf("tapsettle: check failed: %s: %s\n", where, why);
	return EXIT_CONFIG;
}

/*
 * --check: what a start of tapsettle run needs, without opening a store for
 * writing: counterparties, business-day clock, feed, and writable paths.
 * Returns 0 or EXIT_CONFIG.
 */
static int cmd_check(struct app *a, const struct settings *st)
{
	char err[SETTLE_ERR_MAX > FARE_ERR_MAX ? SETTLE_ERR_MAX : FARE_ERR_MAX];
	if (settle_parties_load(&a->parties, a->cfg.settle_counterparties, err, sizeof(err)) != 0 ||
	    fare_feed_load(&a->feed, a->cfg.fares_feed, err, sizeof(err)) != 0) {
		printf("tapsettle: check failed: %s\n", err);
		return EXIT_CONFIG;
	}
	if (fare_clock_init(&a->clk, a->cfg.fares_timezone, a->cfg.fares_day_cutoff) != 0) {
		printf("tapsettle: check failed: fares.timezone \"%s\" or fares.day_cutoff \"%s\" is not valid\n",
		       a->cfg.fares_timezone, a->cfg.fares_day_cutoff);
		return EXIT_CONFIG;
	}
	char where[CFG_PATH_MAX + 64];
	if (secret_load(a, err, sizeof(err)) != 0) {
		cfg_key_origin(st->path, st->sets, st->nsets, "settle", "secret_file", where, sizeof(where));
		printf("tapsettle: check failed: %s: %s\n", where, err);
		return EXIT_CONFIG;
	}
	int rc = check_path(st, "fares", "rated_path", a->cfg.fares_rated_path, true);
	if (rc == 0)
		rc = check_path(st, "settle", "path", a->cfg.settle_path, true);
	if (rc == 0)
		rc = check_path(st, "settle", "outbox", a->cfg.settle_outbox, true);
	if (rc == 0 && access(a->cfg.store_path, R_OK | X_OK) != 0)
		printf("tapsettle: note: the gateway store %s cannot be read yet (%s): tapsettle run waits for none, "
		       "it fails until the gateway has created it\n", a->cfg.store_path, strerror(errno));
	if (rc == 0)
		printf("tapsettle: %s: configuration OK: feed %s (version %llu), %u operators in %s\n", st->path,
		       a->cfg.fares_feed, (unsigned long long)fare_feed_version(a->feed), a->parties.noperators,
		       a->cfg.settle_counterparties);
	return rc;
}

/* -c, -o (in order, after the file) and --check. Returns 0, or an exit status. */
static int settings_load(int argc, char **argv, struct app *a, struct settings *st)
{
	static const struct option top[] = {{"help", no_argument, NULL, 'h'}, {"check", no_argument, NULL, 't'},
					    {NULL, 0, NULL, 0}};
	char err[CFG_ERR_MAX];
	int c;
	*st = (struct settings){.path = "config/tapgate.conf"};
	cfg_defaults(&a->cfg);
	while ((c = getopt_long(argc, argv, "+c:o:h", top, NULL)) != -1) {
		if (c == 'c')
			st->path = optarg;
		else if (c == 'o' && st->nsets < SETS_MAX)
			st->sets[st->nsets++] = optarg;
		else if (c == 't')
			st->check = true;
		else if (c == 'h') {
			usage(stdout);
			exit(0);
		} else {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (cfg_load(&a->cfg, st->path, err, sizeof(err)) != 0) {
		fprintf(st->check ? stdout : stderr, "tapsettle: %s%s\n", st->check ? "check failed: " : "", err);
		return st->check ? EXIT_CONFIG : EXIT_INPUT;
	}
	for (unsigned i = 0; i < st->nsets; i++)
		if (cfg_set(&a->cfg, st->sets[i], err, sizeof(err)) != 0) {
			fprintf(st->check ? stdout : stderr, "tapsettle: %s-o %s: %s\n", st->check ? "check failed: " : "",
				st->sets[i], err);
			return st->check ? EXIT_CONFIG : EXIT_INPUT;
		}
	return 0;
}

/* A settle_* failure as tapsettle's message and exit status: bad input, or the system. */
static int settle_failed(int r, const char *err, bool input_possible)
{
	fprintf(stderr, "tapsettle: %s\n", err);
	return input_possible && r == SETTLE_ERR_INVALID ? EXIT_INPUT : EXIT_SYSTEM;
}

static int sub_run(struct app *a, int argc, char **argv)
{
	(void)argc, (void)argv;
	int rc = open_all_secret(a, true, true);
	return rc == 0 ? cmd_run(a) : rc;
}

static int sub_close(struct app *a, int argc, char **argv)
{
	uint32_t day = 0;
	int rc = day_option(argc, argv, &day);
	if (rc == 0 && (rc = open_all_secret(a, true, true)) == 0 && day > closable_day(a) && !force) {
		fprintf(stderr, "tapsettle: business day %u is not over: it ends at its cutoff (%s local) plus "
				"fares.grace_s (%u s) for late uploads; close it after that, or with --force\n",
			day, a->cfg.fares_day_cutoff, a->cfg.fares_grace_s);
		rc = EXIT_INPUT;
	}
	if (rc == 0 && (rc = rate_through(a, day)) == 0)
		rc = close_day(a, day);
	return rc;
}

static int sub_status(struct app *a, int argc, char **argv)
{
	char err[SETTLE_ERR_MAX];
	(void)argc, (void)argv;
	int rc = open_all(a, false, false), r;
	if (rc == 0 && (r = settle_status(&a->ctx, stdout, err, sizeof(err))) != 0)
		rc = settle_failed(r, err, false);
	return rc;
}

static int sub_reconcile(struct app *a, int argc, char **argv)
{
	uint32_t day = 0;
	int rc = day_option(argc, argv, &day);
	if (rc == 0 && (rc = open_all_secret(a, false, false)) == 0) {
		char rerr[SETTLE_ERR_MAX];
		int r = settle_reconcile(&a->ctx, day, stdout, rerr, sizeof(rerr));
		if (r == SETTLE_ERR_MISMATCH)
			rc = EXIT_MISMATCH;
		else if (r != 0) {
			fprintf(stderr, "tapsettle: reconcile %u: %s\n", day, rerr);
			rc = r == SETTLE_ERR_INVALID ? EXIT_INPUT : EXIT_SYSTEM;
		}
	}
	return rc;
}

static int sub_ingest(struct app *a, int argc, char **argv)
{
	char err[SETTLE_ERR_MAX];
	if (argc != 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	int rc = open_all(a, false, true);
	if (rc != 0)
		return rc;
	int r = settle_ingest(&a->ctx, argv[1], stdout, err, sizeof(err));
	return r == SETTLE_ERR_MISMATCH ? EXIT_MISMATCH : r != 0 ? settle_failed(r, err, true) : 0;
}

static int sub_resend(struct app *a, int argc, char **argv)
{
	char err[SETTLE_ERR_MAX];
	if (argc != 3 || strcmp(argv[1], "--batch") != 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	int rc = open_all_secret(a, false, true), r;
	if (rc == 0 && (r = settle_resend(&a->ctx, argv[2], stdout, err, sizeof(err))) != 0)
		rc = settle_failed(r, err, true);
	return rc;
}

static int sub_recover(struct app *a, int argc, char **argv)
{
	char err[SETTLE_ERR_MAX];
	uint32_t day = 0;
	int rc = day_option(argc, argv, &day), r;
	if (rc == 0 && (rc = open_all(a, false, true)) == 0 &&
	    (r = settle_recover(&a->ctx, day, stdout, err, sizeof(err))) != 0)
		rc = settle_failed(r, err, false);
	return rc;
}

static int sub_write_off(struct app *a, int argc, char **argv)
{
	char err[SETTLE_ERR_MAX];
	uint32_t day = 0;
	int rc = day_option(argc, argv, &day), r;
	if (rc == 0 && (rc = open_all(a, false, true)) == 0 &&
	    (r = settle_write_off_unrated(&a->ctx, day, leg_seq, stdout, err, sizeof(err))) != 0)
		rc = settle_failed(r, err, true);
	return rc;
}

static int sub_deny(struct app *a, int argc, char **argv)
{
	char err[SETTLE_ERR_MAX];
	(void)argc, (void)argv;
	int rc = open_all(a, false, false), r;
	if (rc == 0 && (r = settle_deny_print(&a->ctx, stdout, err, sizeof(err))) != 0)
		rc = settle_failed(r, err, false);
	return rc;
}

/* The commands: name, and what runs it (argv[0] is the command's name). */
static const struct command {
	const char *name;
	int (*run)(struct app *a, int argc, char **argv);
} commands[] = {
	{"run", sub_run},
	{"close", sub_close},
	{"status", sub_status},
	{"reconcile", sub_reconcile},
	{"ingest-response", sub_ingest},
	{"resend", sub_resend},
	{"recover", sub_recover},
	{"deny", sub_deny},
	{"write-off-unrated", sub_write_off},
};

int main(int argc, char **argv)
{
	static struct app a;
	static struct settings st;
	proc_version_option(argc, argv, "tapsettle");
	int rc = settings_load(argc, argv, &a, &st);
	if (rc != 0)
		return rc;
	if (st.check) {
		proc_tool_init();
		rc = cmd_check(&a, &st);
		fare_feed_free(a.feed);
		return rc;
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[optind];
	if (strcmp(cmd, "run") == 0)
		proc_init(); /* run's signal thread takes SIGTERM, SIGINT and SIGHUP */
	else
		proc_tool_init();
	const struct command *found = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, cmd) == 0)
			found = &commands[i];
	if (found) {
		rc = found->run(&a, argc - optind, argv + optind);
	} else {
		fprintf(stderr, "tapsettle: unknown command '%s'\n", cmd);
		usage(stderr);
		rc = EXIT_USAGE;
	}
	close_all(&a);
	return rc;
}
