/*
 * test_fare.c - the fare engine against hand-written cases (tests/fares/).
 *
 * Each case's taps are encoded with the gateway's own record encoder and
 * appended to a real gateway store (LMDB, in a temporary directory), rated
 * by the real run (fare_run) into a real rated store, and printed by the
 * real printer; the printed legs and audit lines must equal the case's
 * `expect` and `audit` lines, which were written by hand from the rules in
 * docs/FARES.md. Malformed feeds must be rejected with the expected
 * FILE:LINE:COL. Run from the repository's root.
 */
#include "fare/fare.h"
#include "proto/proto.h"
#include "store/store.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define CASE_FILES_MAX 32u
#define CASE_LINES_MAX 512u
#define LINE_MAX_BYTES 1024u

struct text {
	char *lines[CASE_LINES_MAX];
	unsigned n;
};

struct case_run {
	const char *name;
	struct fare_file files[CASE_FILES_MAX];
	char *bufs[CASE_FILES_MAX];
	unsigned nfiles;
	struct fare_feed *feed;
	struct fare_clock clk;
	struct st_env *log;
	struct fare_db *db;
	char dir[64];
	uint64_t seq;
	uint32_t max_day;
	struct text expect, audit;
	char err[FARE_ERR_MAX];
	bool failed;
	bool exclude_bad_rows; /* directive exclude-bad-rows: load as tapfare --exclude-bad-rows does */
};

static void case_fail(struct case_run *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "FAIL %s: ", c->name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	c->failed = true;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)n + 1);
	if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	if (b) {
		b[n] = '\0';
		*len = (size_t)n;
	}
	return b;
}

/* Every *.txt of a feed directory into memory. */
static int read_feed_dir(struct case_run *c, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		return -1;
	while ((e = readdir(d)) && c->nfiles < CASE_FILES_MAX) {
		size_t nl = strlen(e->d_name);
		char path[2048];
		if (nl < 5 || strcmp(e->d_name + nl - 4, ".txt") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		struct fare_file *f = &c->files[c->nfiles];
		snprintf(f->name, sizeof(f->name), "%s", e->d_name);
		if (!(c->bufs[c->nfiles] = slurp(path, &f->len)))
			continue;
		f->data = c->bufs[c->nfiles++];
	}
	closedir(d);
	return 0;
}

static void override_file(struct case_run *c, const char *name, char *data)
{
	unsigned i;
	for (i = 0; i < c->nfiles; i++)
		if (strcmp(c->files[i].name, name) == 0)
			break;
	if (i == c->nfiles) {
		assert_true(c->nfiles < CASE_FILES_MAX);
		c->nfiles++;
	} else {
		free(c->bufs[i]);
	}
	snprintf(c->files[i].name, sizeof(c->files[i].name), "%s", name);
	c->bufs[i] = data;
	c->files[i].data = data;
	c->files[i].len = strlen(data);
}

static const char *const categories[] = {"adult", "senior", "student", "disabled"};
static const char *const kinds[] = {"", "entry", "exit", "board", "purchase"};

static int word_index(const char *const *words, unsigned n, const char *w)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(words[i], w) == 0)
			return (int)i;
	return -1;
}

/* "tap DATE TIME CATEGORY TOKEN KIND key=value..." into the gateway's store. */
static void add_tap(struct case_run *c, char *line)
{
	char date[16], tod[16], cat[16], token[64], kind[16];
	int used = 0;
	unsigned y, mo, d, h, mi, s;
	if (sscanf(line, "tap %15s %15s %15s %63s %15s%n", date, tod, cat, token, kind, &used) != 5 ||
	    sscanf(date, "%u-%u-%u", &y, &mo, &d) != 3 || sscanf(tod, "%u:%u:%u", &h, &mi, &s) != 3) {
		case_fail(c, "bad tap line: %s", line);
		return;
	}
	struct fp_tap t = {0};
	struct st_tap_meta meta = {0};
	uint8_t medium;
	uint32_t issuer;
	uint64_t token_id;
	int ci = word_index(categories, 4, cat), ki = word_index(kinds, 5, kind);
	if (ci < 0 || ki < 1 || fare_token_parse(token, &medium, &issuer, &token_id) != 0) {
		case_fail(c, "bad category, kind or token: %s", line);
		return;
	}
	t.medium = medium;
	t.kind = (uint8_t)ki;
	t.category = (uint8_t)ci;
	t.tap_id = (uint32_t)c->seq + 1;
	t.tap_time_us = fare_clock_utc_us(&c->clk, y * 10000 + mo * 100 + d, h * 3600 + mi * 60 + s);
	if (medium == FP_MEDIUM_EPURSE) {
		t.u.epurse.issuer_code = issuer;
		t.u.epurse.card_number = token_id;
		t.u.epurse.transaction_type = 6;
		t.u.epurse.psam_serial = (uint32_t)c->seq;
	} else if (medium == FP_MEDIUM_QUICKPASS) {
		t.u.quickpass.account_token = token_id;
		t.u.quickpass.expiry_yymm = 2912;
	} else {
		t.u.qr.qr_version = 1;
		t.u.qr.account_token = token_id;
		t.u.qr.issued_at_s = (uint32_t)(t.tap_time_us / 1000000u) - 10;
		t.u.qr.expires_at_s = t.u.qr.issued_at_s + 60;
		memcpy(t.u.qr.qr_id, &c->seq, sizeof(c->seq));
	}
	for (char *kv = strtok(line + used, " \t"); kv; kv = strtok(NULL, " \t")) {
		unsigned long v;
		char key[16];
		if (sscanf(kv, "%15[a-z]=%lu", key, &v) != 2) {
			case_fail(c, "bad key=value \"%s\"", kv);
			return;
		}
		if (!strcmp(key, "route")) meta.route_id = (uint32_t)v;
		else if (!strcmp(key, "stop")) t.stop_id = (uint32_t)v;
		else if (!strcmp(key, "op")) meta.operator_id = (uint16_t)v;
		else if (!strcmp(key, "amount")) t.amount_fen = (uint32_t)v;
		else if (!strcmp(key, "ctc")) t.u.epurse.ctc = (uint16_t)v;
		else if (!strcmp(key, "before")) t.u.epurse.balance_before_fen = (uint32_t)v;
		else if (!strcmp(key, "after")) t.u.epurse.balance_after_fen = (uint32_t)v;
		else return case_fail(c, "unknown key \"%s\"", key);
	}
	uint8_t rec[ST_RECORD_BYTES_MAX];
	int len = fp_tap_encode(&t, rec, sizeof(rec));
	assert_true(len > 0);
	meta.record_len = (uint16_t)len;
	meta.validator_id = 1;
	fp_tap_stored_seal(&meta, rec); /* as the gateway keeps it: the readers check it */
	c->seq++;
	struct st_wtxn *w;
	assert_int_equal(st_wtxn_begin(c->log, &w), 0);
	assert_int_equal(st_log_append(w, c->seq, &meta, rec), 0);
	assert_int_equal(st_wtxn_commit(w), 0);
	uint32_t day = fare_clock_day(&c->clk, t.tap_time_us);
	if (day > c->max_day)
		c->max_day = day;
}

static void rate(struct case_run *c)
{
	struct fare_run_options opt = {.through_day = c->max_day, .quiet = true};
	struct fare_run_stats st;
	if (fare_run(c->db, c->log, c->feed, &c->clk, &opt, &st, c->err, sizeof(c->err)) != 0)
		case_fail(c, "rating run failed: %s", c->err);
}

/* `rerate-unrated DAY`: the feed as the case's files are now, and a run that rates DAY's unrated token-days again. */
static void rerate(struct case_run *c, const char *day_text)
{
	struct fare_run_options opt = {.through_day = c->max_day, .quiet = true};
	struct fare_run_stats st;
	if (fare_day_parse(day_text, &opt.rerate_unrated_day) != 0) {
		case_fail(c, "rerate-unrated: \"%s\" is not a day", day_text);
		return;
	}
	fare_feed_free(c->feed);
	c->feed = NULL;
	if (fare_feed_load_files(&c->feed, "case-feed", c->files, c->nfiles, c->err, sizeof(c->err)) != 0)
		case_fail(c, "rerate-unrated: the feed is rejected: %s", c->err);
	else if (fare_run(c->db, c->log, c->feed, &c->clk, &opt, &st, c->err, sizeof(c->err)) != 0)
		case_fail(c, "rerate-unrated: the rating run failed: %s", c->err);
}

static void text_add(struct text *t, const char *s)
{
	assert_true(t->n < CASE_LINES_MAX);
	t->lines[t->n++] = strdup(s);
}

static void text_free(struct text *t)
{
	for (unsigned i = 0; i < t->n; i++)
		free(t->lines[i]);
	t->n = 0;
}

/* Compare printed output with the expected lines, line by line. */
static void compare(struct case_run *c, const char *what, char *got, const struct text *want)
{
	unsigned i = 0;
	for (char *line = strtok(got, "\n"); line; line = strtok(NULL, "\n"), i++) {
		if (i >= want->n) {
			case_fail(c, "%s: unexpected line %u:\n  got:  %s", what, i + 1, line);
			return;
		}
		if (strcmp(line, want->lines[i]) != 0) {
			case_fail(c, "%s: line %u differs:\n  want: %s\n  got:  %s", what, i + 1, want->lines[i], line);
			return;
		}
	}
	if (i < want->n)
		case_fail(c, "%s: missing line %u:\n  want: %s", what, i + 1, want->lines[i]);
}

static void check_output(struct case_run *c)
{
	char *buf = NULL;
	size_t len = 0;
	struct fare_query q = {0};
	FILE *m = open_memstream(&buf, &len);
	assert_int_equal(fare_print_legs(c->db, &c->clk, &q, true, m, c->err, sizeof(c->err)), 0);
	fclose(m);
	compare(c, "legs", buf, &c->expect);
	free(buf);
	buf = NULL;
	m = open_memstream(&buf, &len);
	assert_int_equal(fare_print_audit(c->db, &q, m, c->err, sizeof(c->err)), 0);
	fclose(m);
	compare(c, "audit", buf, &c->audit);
	free(buf);
}

static bool open_stores(struct case_run *c)
{
	char path[96];
	snprintf(c->dir, sizeof(c->dir), "/tmp/test_fare.XXXXXX");
	assert_non_null(mkdtemp(c->dir));
	snprintf(path, sizeof(path), "%s/store", c->dir);
	struct st_options so = {.path = path, .map_size_bytes = 16u << 20, .sync = ST_SYNC_NONE};
	assert_int_equal(st_env_open(&c->log, &so), 0);
	snprintf(path, sizeof(path), "%s/rated", c->dir);
	assert_int_equal(fare_db_open(&c->db, path, false, c->err, sizeof(c->err)), 0);
	struct fare_load_opts opts = {.exclude_bad_rows = c->exclude_bad_rows};
	struct fare_feed_report rep;
	int rc = fare_feed_load_files_opts(&c->feed, "case-feed", c->files, c->nfiles, &opts, &rep);
	if (rc != 0 || (c->exclude_bad_rows && rep.nerrors == 0)) /* the directive wants a feed with refused rows */
		case_fail(c, "feed rejected or without refused rows: %s", rep.text ? rep.text : fare_strerror(rc));
	fare_feed_report_free(&rep);
	return !c->failed;
}

static void close_stores(struct case_run *c)
{
	char cmd[128];
	fare_feed_free(c->feed);
	if (c->db)
		fare_db_close(c->db);
	if (c->log)
		st_env_close(c->log);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", c->dir);
	assert_int_equal(system(cmd), 0);
	for (unsigned i = 0; i < c->nfiles; i++)
		free(c->bufs[i]);
	text_free(&c->expect);
	text_free(&c->audit);
}

/* The case's feed: `feed NAME`, `file NAME` ... `end` (replace or add a file), `remove NAME`. Returns whether
 * line was one of them (the file's lines are read from f). */
static bool feed_directive(struct case_run *c, char *line, FILE *f)
{
	if (!strncmp(line, "feed ", 5)) {
		char dir[LINE_MAX_BYTES + 32];
		if (!strcmp(line + 5, "demo"))
			snprintf(dir, sizeof(dir), "config/fares-demo");
		else
			snprintf(dir, sizeof(dir), "tests/fares/feeds/%s", line + 5);
		if (read_feed_dir(c, dir) != 0)
			case_fail(c, "no feed %s", dir);
	} else if (!strncmp(line, "file ", 5)) {
		char name[64], *data = NULL;
		size_t len = 0;
		snprintf(name, sizeof(name), "%.63s", line + 5);
		FILE *m = open_memstream(&data, &len);
		while (fgets(line, LINE_MAX_BYTES, f) && strncmp(line, "end", 3) != 0)
			fputs(line, m);
		fclose(m);
		override_file(c, name, data);
	} else if (!strncmp(line, "remove ", 7)) {
		unsigned i = 0;
		while (i < c->nfiles && strcmp(c->files[i].name, line + 7) != 0)
			i++;
		if (i == c->nfiles) {
			case_fail(c, "remove: the feed has no %s", line + 7);
		} else { /* the last file takes its place */
			free(c->bufs[i]);
			c->nfiles--;
			c->bufs[i] = c->bufs[c->nfiles];
			c->files[i] = c->files[c->nfiles];
		}
	} else {
		return false;
	}
	return true;
}

/* Run one .case file. Returns true when it passed. */
static bool run_case(const char *path)
{
	struct case_run c = {.name = path};
	char line[LINE_MAX_BYTES];
	FILE *f = fopen(path, "r");
	bool opened = false;
	assert_non_null(f);
	assert_int_equal(fare_clock_init(&c.clk, "Asia/Shanghai", "04:30"), 0);
	while (fgets(line, sizeof(line), f) && !c.failed) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (feed_directive(&c, line, f)) {
			continue;
		} else if (!strncmp(line, "tap ", 4)) {
			if (!opened && !(opened = open_stores(&c)))
				break;
			add_tap(&c, line);
		} else if (!strcmp(line, "rate") || !strncmp(line, "rate ", 5)) {
			if (!opened && !(opened = open_stores(&c)))
				break;
			rate(&c);
		} else if (!strncmp(line, "rerate-unrated ", 15) && opened) {
			rerate(&c, line + 15);
		} else if (!strcmp(line, "exclude-bad-rows")) {
			c.exclude_bad_rows = true;
		} else if (!strncmp(line, "expect ", 7)) {
			text_add(&c.expect, line + 7);
		} else if (!strncmp(line, "audit ", 6)) {
			text_add(&c.audit, line + 6);
		} else {
			case_fail(&c, "unknown directive: %s", line);
		}
	}
	fclose(f);
	if (opened && !c.failed)
		check_output(&c);
	if (!opened && !c.failed)
		case_fail(&c, "no taps");
	bool ok = !c.failed;
	if (opened || c.nfiles)
		close_stores(&c);
	if (ok)
		fprintf(stderr, "ok   %s\n", path);
	return ok;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in dir ending with suffix, sorted. */
static unsigned list_dir(const char *dir, const char *suffix, char **names, unsigned cap)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned n = 0;
	if (!d)
		return 0;
	while ((e = readdir(d)) && n < cap) {
		size_t nl = strlen(e->d_name), sl = strlen(suffix);
		if (nl > sl && strcmp(e->d_name + nl - sl, suffix) == 0)
			names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_str);
	return n;
}

static void run_cases(const char *dir, unsigned at_least)
{
	char *names[512];
	unsigned n = list_dir(dir, ".case", names, 512), failed = 0;
	for (unsigned i = 0; i < n; i++) {
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		failed += !run_case(path);
		free(names[i]);
	}
	fprintf(stderr, "%s: %u cases, %u failed\n", dir, n, failed);
	assert_true(n >= at_least);
	assert_int_equal(failed, 0);
}

static void test_golden_rider_days(void **state)
{
	run_cases("tests/fares/golden", 40); /* issue 4 asks for at least 40 */
}

static void test_rule_units(void **state)
{
	run_cases("tests/fares/units", 42); /* every GTFS-Fares v2 rule type and extension file */
}

/*
 * One bad case (tests/fares/bad/NAME.case): its feed (the demo feed and the
 * case's overrides) must be rejected whole, with the `error FILE:LINE:COL:
 * [WORD]` line's place and word in the message. Returns true when it passed.
 */
static bool run_bad_case(const char *path)
{
	struct case_run c = {.name = path};
	char line[LINE_MAX_BYTES], want[256] = "", word[128] = "", err[FARE_ERR_MAX], label[512];
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) && !c.failed) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0' || feed_directive(&c, line, f))
			continue;
		if (strncmp(line, "error ", 6) != 0 || sscanf(line + 6, "%255s %127s", want, word) < 1)
			case_fail(&c, "unknown directive: %s", line);
	}
	fclose(f);
	snprintf(label, sizeof(label), "%.*s", (int)(strlen(path) - 5), path); /* errors name tests/fares/bad/NAME/FILE */
	struct fare_feed *feed = NULL;
	int rc = c.failed ? 0 : fare_feed_load_files(&feed, label, c.files, c.nfiles, err, sizeof(err));
	char needle[300];
	snprintf(needle, sizeof(needle), "/%s", want);
	bool ok = !c.failed && want[0] && rc == FARE_ERR_FEED && strstr(err, needle) && (!word[0] || strstr(err, word));
	if (!c.failed)
		fprintf(stderr, "%s %s: want \"%s\" %s, got rc %d: %s\n", ok ? "ok  " : "FAIL", path, want, word, rc,
			rc ? err : "(accepted)");
	fare_feed_free(feed);
	for (unsigned i = 0; i < c.nfiles; i++)
		free(c.bufs[i]);
	return ok;
}

/* Each bad feed is rejected whole, with the expected FILE:LINE:COL: and word. */
static void test_malformed_feeds(void **state)
{
	char *names[512];
	unsigned n = list_dir("tests/fares/bad", ".case", names, 512), failed = 0;
	for (unsigned i = 0; i < n; i++) {
		char path[1024];
		snprintf(path, sizeof(path), "tests/fares/bad/%s", names[i]);
		failed += !run_bad_case(path);
		free(names[i]);
	}
	fprintf(stderr, "tests/fares/bad: %u feeds, %u failed\n", n, failed);
	assert_true(n >= 19);
	assert_int_equal(failed, 0);
}

/* A feed with three defects in three files: all three are listed, each with file, line, column and field;
 * refused by default, accepted with exclude_bad_rows (its refused leg rule kept as excluded). */
static void test_every_error_listed(void **state)
{
	struct fare_feed *f = NULL;
	struct fare_feed_report rep;
	const char *dir = "tests/fares/multi/three-errors";
	assert_int_equal(fare_feed_load_opts(&f, dir, NULL, &rep), FARE_ERR_FEED);
	assert_null(f);
	fprintf(stderr, "%s", rep.text);
	assert_int_equal(rep.nerrors, 3);
	assert_non_null(strstr(rep.text, "/timeframes.txt:2:3: end_time: \"26:00:00\""));
	assert_non_null(strstr(rep.text, "/fare_products.txt:3:5: amount: \"2.001\""));
	assert_non_null(strstr(rep.text, "/fare_leg_rules.txt:"));
	assert_non_null(strstr(rep.text, ":3: from_area_id: unknown area_id \"st9999\""));
	fare_feed_report_free(&rep);
	struct fare_load_opts opts = {.exclude_bad_rows = true};
	assert_int_equal(fare_feed_load_opts(&f, dir, &opts, &rep), 0);
	assert_int_equal(rep.nerrors, 3);
	fare_feed_report_free(&rep);
	fare_feed_free(f);
	struct fare_load_opts one = {.errors_max = 1};
	assert_int_equal(fare_feed_load_opts(&f, dir, &one, &rep), FARE_ERR_FEED);
	assert_int_equal(rep.nerrors, 1);
	assert_true(rep.truncated);
	fare_feed_report_free(&rep);
}

/* A feed file that is a FIFO is refused at once, not waited on. */
static void test_fifo_refused(void **state)
{
	char dir[] = "/tmp/tapgate-fifo-XXXXXX", path[128], err[FARE_ERR_MAX];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/stops.txt", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	struct fare_feed *f = NULL;
	assert_int_equal(fare_feed_load(&f, dir, err, sizeof(err)), FARE_ERR_FEED);
	assert_non_null(strstr(err, "not a regular file"));
	unlink(path);
	rmdir(dir);
}

/* The demo feed loads, and loading is deterministic (same version twice). */
static void test_demo_feed(void **state)
{
	struct fare_feed *a, *b;
	char err[FARE_ERR_MAX];
	assert_int_equal(fare_feed_load(&a, "config/fares-demo", err, sizeof(err)), 0);
	assert_int_equal(fare_feed_load(&b, "config/fares-demo", err, sizeof(err)), 0);
	assert_true(fare_feed_version(a) == fare_feed_version(b));
	fare_feed_free(a);
	fare_feed_free(b);
}

/* test_fare CASE...: run just those cases (with their diffs) */
int main(int argc, char **argv)
{
	if (argc > 1) {
		int failed = 0;
		for (int i = 1; i < argc; i++)
			failed += !run_case(argv[i]);
		return failed != 0;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_demo_feed),
		cmocka_unit_test(test_malformed_feeds),
		cmocka_unit_test(test_every_error_listed),
		cmocka_unit_test(test_fifo_refused),
		cmocka_unit_test(test_rule_units),
		cmocka_unit_test(test_golden_rider_days),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
