/*
 * tapdump.c - read the gateway's store while it runs.
 *
 * Opens the LMDB environment read-only and reads it through the store's
 * scans, which use short read transactions, so the gateway's writer is never
 * held up. Commands: counts, last N, card NUMBER, token TOKEN, quarantine,
 * validators, export (CSV), verify. Amounts are printed in yuan from
 * integer fen, never through floating point.
 *
 * The commands that walk the log (export, card, token, last, verify) check
 * it as they go (st_log_check: every seq in turn, counts that agree; each
 * record decodes and matches its identity key and content hash): a reader
 * that printed 3 taps of 20,000 without a word would be worse than none.
 * The first fault ends them non-zero, naming its sequence number; verify
 * goes on through the whole log and lists up to VERIFY_FAULTS_MAX faults.
 */
#include "proto/proto.h"
#include "proc/proc.h"
#include "store/store.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define LAST_MAX 100000u
#define VERIFY_FAULTS_MAX 20u /* faults verify prints; it counts them all */

static void usage(FILE *f)
{
	fprintf(f, "usage: tapdump -s STORE_DIR COMMAND\n"
		   "  counts                 taps in the log, quarantined, validators, map size and use\n"
		   "  last [N]               the last N taps (20)\n"
		   "  card NUMBER            every tap of an e-purse card number\n"
		   "  token TOKEN            every tap of a QuickPass or QR account token\n"
		   "  quarantine             records kept aside, each with reason=: conflict (seq 0), or\n"
		   "                         qr_signature (a QR code found forged after its commit: its log seq)\n"
		   "  validators             per-validator state\n"
		   "  export [--fields identity|full]   every tap as CSV on standard output\n"
		   "  verify                 walk the whole log: seq continuity, every record sound, counts agree\n"
		   "Walking the log, the first fault (a gap, a record that does not decode or match its\n"
		   "hashes, counts that disagree) ends the command with exit 1 and its sequence number.\n");
}

/*
 * The walk's checks, shared by every command that reads the log: the
 * store's (st_log_check) and each record's (fp_tap_stored). The first fault
 * is kept for the message; verify keeps going.
 */
struct walk {
	st_visit_fn fn; /* the command's visit, for sound records only */
	void *arg;
	bool keep_going; /* verify: every fault, not only the first */
	uint64_t faults, records, first_seq, last_seq;
	char first_fault[160];
};

static void walk_fault(struct walk *w, const char *text)
{
	if (w->faults == 0)
		snprintf(w->first_fault, sizeof(w->first_fault), "%s", text);
	if (w->keep_going && w->faults < VERIFY_FAULTS_MAX)
		printf("fault: %s\n", text);
	w->faults++;
}

static int walk_on_fault(void *arg, const struct st_log_fault *f)
{
	struct walk *w = arg;
	char text[160];
	walk_fault(w, st_log_fault_text(f, text, sizeof(text)));
	return !w->keep_going;
}

static int walk_visit(void *arg, uint64_t seq, const struct st_tap_meta *m, const uint8_t *rec)
{
	struct walk *w = arg;
	struct fp_tap t;
	int rc = fp_tap_stored(m, rec, &t);
	w->records++;
	w->first_seq = w->first_seq ? w->first_seq : seq;
	w->last_seq = seq;
	if (rc != 0) {
		char text[160];
		snprintf(text, sizeof(text), "seq %" PRIu64 ": %s", seq, fp_tap_stored_text(rc));
		walk_fault(w, text);
		return !w->keep_going;
	}
	return w->fn ? w->fn(w->arg, seq, m, rec) : 0;
}

/*
 * Walk the log from seq from with every check. Returns 0, or 1 after saying
 * on stderr what failed (the store's error, or the first fault).
 */
static int walk_log(struct st_env *env, uint64_t from, struct walk *w)
{
	int rc = st_log_check(env, from, walk_visit, walk_on_fault, w);
	if (rc == 0 && w->faults == 0)
		return 0;
	if (w->faults == 0) {
		fprintf(stderr, "tapdump: reading the log failed after seq %" PRIu64 ": %s\n", w->last_seq,
			st_strerror(rc));
		return 1;
	}
	fprintf(stderr, "tapdump: the log is not sound: %s%s\n", w->first_fault,
		w->keep_going ? "" : " (tapdump verify lists every fault)");
	return 1;
}

static void iso_time(uint64_t us, char out[32])
{
	time_t s = (time_t)(us / 1000000u);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%06uZ", (unsigned)(us % 1000000u));
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

/* The medium's own fields, as text. */
static void medium_text(const struct fp_tap *t, char *out, size_t cap)
{
	char h[40];
	switch (t->medium) {
	case FP_MEDIUM_EPURSE:
		hex(t->u.epurse.psam_id, 6, h);
		snprintf(out, cap, "card=%" PRIu64 " issuer=%u ctc=%u balance=%u.%02u->%u.%02u tac=%08x psam=%s/%u",
			 t->u.epurse.card_number, t->u.epurse.issuer_code, t->u.epurse.ctc,
			 t->u.epurse.balance_before_fen / 100, t->u.epurse.balance_before_fen % 100,
			 t->u.epurse.balance_after_fen / 100, t->u.epurse.balance_after_fen % 100, t->u.epurse.tac,
			 h, t->u.epurse.psam_serial);
		break;
	case FP_MEDIUM_QUICKPASS:
		snprintf(out, cap, "token=%" PRIu64 " atc=%u expiry=%04u oda=%u", t->u.quickpass.account_token,
			 t->u.quickpass.atc, t->u.quickpass.expiry_yymm, t->u.quickpass.oda_result);
		break;
	default:
		hex(t->u.qr.qr_id, 16, h);
		snprintf(out, cap, "token=%" PRIu64 " qr=%s issued=%u expires=%u", t->u.qr.account_token, h,
			 t->u.qr.issued_at_s, t->u.qr.expires_at_s);
		break;
	}
}

static const char *kind_name(unsigned k)
{
	static const char *const names[] = {"?", "entry", "exit", "board", "purchase"};
	return k <= 4 ? names[k] : "?";
}

/* One tap as a line; reason (quarantine listings) is appended as reason=... unless NULL. */
static void tap_print_why(uint64_t seq, const struct st_tap_meta *m, const uint8_t *rec, const char *reason)
{
	struct fp_tap t;
	char recv[32], when[32], fields[200];
	int bad = fp_tap_decode(rec, m->record_len, &t);
	iso_time(m->recv_time_us, recv);
	if (bad) {
		printf("%" PRIu64 " %s validator=%u undecodable record (%s)%s%s\n", seq, recv, m->validator_id,
		       fp_reason_name((unsigned)bad), reason ? " reason=" : "", reason ? reason : "");
		return;
	}
	iso_time(t.tap_time_us, when);
	medium_text(&t, fields, sizeof(fields));
	printf("%" PRIu64 " recv=%s validator=%u %s %s cat=%u tap=%u at=%s op=%u route=%u stop=%u vehicle=%u "
	       "amount=%u.%02u %s%s%s\n",
	       seq, recv, m->validator_id, fp_medium_name(t.medium), kind_name(t.kind), t.category, t.tap_id,
	       when, m->operator_id, m->route_id, t.stop_id, m->vehicle_id, t.amount_fen / 100,
	       t.amount_fen % 100, fields, reason ? " reason=" : "", reason ? reason : "");
}

static void tap_print(uint64_t seq, const struct st_tap_meta *m, const uint8_t *rec)
{
	tap_print_why(seq, m, rec, NULL);
}

/* The quarantine: conflicts (seq 0: kept aside, never in the log), then forged QR codes (their log seq). */
static int conflict_print(void *arg, uint64_t seq, const struct st_tap_meta *m, const uint8_t *rec)
{
	(void)arg;
	tap_print_why(seq, m, rec, "conflict");
	return 0;
}

static int forged_print(void *arg, uint64_t seq, const struct st_tap_meta *m, const uint8_t *rec)
{
	(void)arg;
	tap_print_why(seq, m, rec, "qr_signature");
	return 0;
}

static int cmd_quarantine(struct st_env *env)
{
	int rc = st_quarantine_scan(env, conflict_print, NULL);
	return rc != 0 ? rc : st_qr_forged_scan(env, 1, forged_print, NULL);
}

struct pending_count {
	uint64_t qr;
};

static int pending_visit(void *arg, uint64_t seq, const struct st_tap_meta *m, const uint8_t *rec)
{
	struct pending_count *c = arg;
	(void)seq;
	c->qr += m->record_len >= 2 && rec[1] == FP_MEDIUM_QR;
	return 0;
}

/* ----------------------------------------------------------- commands */

struct last_state {
	uint64_t want, seen;
	uint64_t *seqs;
};

static int last_visit(void *arg, uint64_t seq, const struct st_tap_meta *m, const uint8_t *rec)
{
	struct last_state *s = arg;
	(void)m, (void)rec;
	s->seqs[s->seen++] = seq;
	return s->seen == s->want;
}

static int print_visit(void *arg, uint64_t seq, const struct st_tap_meta *m, const uint8_t *rec)
{
	uint64_t *until = arg;
	tap_print(seq, m, rec);
	return until != NULL && seq >= *until;
}

/* The last N in order: find where they start scanning backward, then print forward. */
static int cmd_last(struct st_env *env, uint64_t n)
{
	struct last_state s = {.want = n, .seqs = calloc(n, sizeof(uint64_t))};
	if (s.seqs == NULL)
		return 1;
	int rc = st_log_scan(env, UINT64_MAX, true, last_visit, &s);
	if (rc != 0) {
		fprintf(stderr, "tapdump: reading the log failed: %s\n", st_strerror(rc));
		rc = 1;
	} else if (s.seen > 0) {
		uint64_t until = s.seqs[0];
		struct walk w = {.fn = print_visit, .arg = &until};
		rc = walk_log(env, s.seqs[s.seen - 1], &w);
	}
	free(s.seqs);
	return rc;
}

struct match_state {
	int medium_class; /* 0 card, 1 token */
	uint64_t value, found;
};

static int match_visit(void *arg, uint64_t seq, const struct st_tap_meta *m, const uint8_t *rec)
{
	struct match_state *s = arg;
	struct fp_tap t;
	if (fp_tap_decode(rec, m->record_len, &t) != 0)
		return 1; /* checked by walk_visit already */
	bool hit = s->medium_class == 0
			   ? t.medium == FP_MEDIUM_EPURSE && t.u.epurse.card_number == s->value
			   : (t.medium == FP_MEDIUM_QUICKPASS && t.u.quickpass.account_token == s->value) ||
				     (t.medium == FP_MEDIUM_QR && t.u.qr.account_token == s->value);
	if (hit) {
		tap_print(seq, m, rec);
		s->found++;
	}
	return 0;
}

/* One row of the identity export, small enough to sort a day of taps in memory. */
struct id_row {
	uint64_t id_hi, id_lo, tap_time_us;
	uint32_t validator_id, tap_id, amount_fen;
	uint8_t medium;
};

struct export_state {
	bool full;
	struct id_row *rows;
	uint64_t count, cap;
};

static int export_visit(void *arg, uint64_t seq, const struct st_tap_meta *m, const uint8_t *rec)
{
	struct export_state *s = arg;
	struct fp_tap t;
	char fields[200];
	if (fp_tap_decode(rec, m->record_len, &t) != 0)
		return 1; /* checked by walk_visit already */
	if (!s->full) {
		if (s->count == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 65536;
			struct id_row *grown = realloc(s->rows, s->cap * sizeof(*grown));
			if (grown == NULL) {
				fprintf(stderr, "tapdump: out of memory at %" PRIu64 " taps\n", s->count);
				exit(1);
			}
			s->rows = grown;
		}
		s->rows[s->count++] = (struct id_row){m->id_hi, m->id_lo, t.tap_time_us, m->validator_id,
						      t.tap_id, t.amount_fen, t.medium};
		return 0;
	}
	medium_text(&t, fields, sizeof(fields));
	printf("%u,%u,%s,%016" PRIx64 "%016" PRIx64 ",%" PRIu64 ",%u,%" PRIu64 ",%" PRIu64 ",%s,%u,%u,%u,%u,%u,\"%s\"\n",
	       m->validator_id, t.tap_id, fp_medium_name(t.medium), m->id_hi, m->id_lo, t.tap_time_us,
	       t.amount_fen, seq, m->recv_time_us, kind_name(t.kind), t.category, m->operator_id,
	       m->route_id, t.stop_id, m->vehicle_id, fields);
	return 0;
}

static int row_cmp(const void *a, const void *b)
{
	const struct id_row *x = a, *y = b;
	if (x->id_hi != y->id_hi)
		return x->id_hi < y->id_hi ? -1 : 1;
	return x->id_lo < y->id_lo ? -1 : x->id_lo > y->id_lo;
}

/*
 * full: every field, in log order. identity: the columns of tapgen --out,
 * sorted by identity key, so that the two files can be compared with cmp.
 */
static int cmd_export(struct st_env *env, bool full)
{
	struct export_state s = {.full = full};
	printf("validator_id,tap_id,medium,identity,tap_time_us,amount_fen%s\n",
	       full ? ",seq,recv_time_us,kind,category,operator,route,stop,vehicle,fields" : "");
	struct walk w = {.fn = export_visit, .arg = &s};
	int rc = walk_log(env, 1, &w);
	if (s.count > 0) /* full exports print as they walk and keep no rows */
		qsort(s.rows, s.count, sizeof(*s.rows), row_cmp);
	for (uint64_t i = 0; rc == 0 && i < s.count; i++) {
		const struct id_row *r = &s.rows[i];
		printf("%u,%u,%s,%016" PRIx64 "%016" PRIx64 ",%" PRIu64 ",%u\n", r->validator_id, r->tap_id,
		       fp_medium_name(r->medium), r->id_hi, r->id_lo, r->tap_time_us, r->amount_fen);
	}
	free(s.rows);
	return rc;
}

/*
 * The whole log with every check, and the counts beside it. Prints what it
 * found; 0 only when the log is sound.
 */
static int cmd_verify(struct st_env *env)
{
	struct st_counts c;
	struct walk w = {.keep_going = true};
	int rc = st_counts(env, &c);
	if (rc != 0) {
		fprintf(stderr, "tapdump: counting the log failed: %s\n", st_strerror(rc));
		return 1;
	}
	rc = st_log_check(env, 1, walk_visit, walk_on_fault, &w);
	if (rc != 0 && w.faults == 0) {
		fprintf(stderr, "tapdump: reading the log failed after seq %" PRIu64 ": %s\n", w.last_seq,
			st_strerror(rc));
		return 1;
	}
	if (w.records != c.log_taps && w.faults == 0) /* the walk and the counts, each sound, disagree */
		walk_fault(&w, "the walk read a different number of records than the counts say");
	if (w.faults > VERIFY_FAULTS_MAX)
		printf("fault: ... %" PRIu64 " more\n", w.faults - VERIFY_FAULTS_MAX);
	printf("records %" PRIu64 " (counts: %" PRIu64 ", last_seq %" PRIu64 ")\nfirst_seq %" PRIu64
	       "\nlast_seq %" PRIu64 "\nquarantine %" PRIu64 "\nfaults %" PRIu64 "\n%s\n",
	       w.records, c.log_taps, c.last_seq, w.first_seq, w.last_seq, c.quarantine, w.faults,
	       w.faults ? "NOT SOUND" : "sound");
	if (w.faults)
		fprintf(stderr, "tapdump: the log is not sound: %" PRIu64 " fault%s, the first: %s\n", w.faults,
			w.faults == 1 ? "" : "s", w.first_fault);
	return w.faults ? 1 : 0;
}

static int validator_print(void *arg, const struct st_validator_state *v)
{
	char first[32], last[32];
	(void)arg;
	iso_time(v->first_seen_us, first);
	iso_time(v->last_seen_us, last);
	printf("validator=%u key=%u last_frame_seq=%" PRIu64 " first=%s last=%s stored=%" PRIu64
	       " duplicate=%" PRIu64 " conflict=%" PRIu64 " rejected=%" PRIu64 "\n",
	       v->validator_id, v->key_id, v->last_frame_seq, first, last, v->taps_stored, v->taps_duplicate,
	       v->taps_conflict, v->taps_rejected);
	return 0;
}

static int cmd_counts(struct st_env *env)
{
	struct st_counts c;
	int rc = st_counts(env, &c);
	if (rc != 0)
		return rc;
	/* QR taps beyond the verified frontier: their signatures wait for the gateway's background verifier */
	struct pending_count p = {0};
	if (c.qr_frontier < c.last_seq && (rc = st_log_scan(env, c.qr_frontier + 1, false, pending_visit, &p)) != 0)
		return rc;
	printf("log_taps %" PRIu64 "\nquarantine %" PRIu64 "\nvalidators %" PRIu64 "\nlast_seq %" PRIu64
	       "\nmap_size_bytes %" PRIu64 "\nused_bytes %" PRIu64 "\nqr_verified_seq %" PRIu64
	       "\nqr_signatures_pending %" PRIu64 "\nqr_forged %" PRIu64 "\n",
	       c.log_taps, c.quarantine, c.validators, c.last_seq, c.map_size_bytes, c.used_bytes, c.qr_frontier,
	       p.qr, c.qr_forged);
	return 0;
}

static uint64_t number_arg(const char *what, const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || s[0] == '-' || s[0] == 0) {
		fprintf(stderr, "tapdump: %s wants a whole number, not '%s'\n", what, s);
		exit(2);
	}
	return v;
}

/* A store call's result as the command's: 0, or 1 after saying what failed. */
static int store_result(int rc, const char *what)
{
	if (rc == 0)
		return 0;
	fprintf(stderr, "tapdump: reading %s failed: %s\n", what, st_strerror(rc));
	return 1;
}

/* Run one command. Returns its exit code (0, or 1 after a message on stderr). */
static int dispatch(struct st_env *env, int argc, char **argv)
{
	const char *cmd = argv[0];
	if (strcmp(cmd, "counts") == 0)
		return store_result(cmd_counts(env), "the counts");
	if (strcmp(cmd, "last") == 0) {
		uint64_t n = argc > 1 ? number_arg("last", argv[1]) : 20;
		return cmd_last(env, n == 0 ? 1 : n > LAST_MAX ? LAST_MAX : n);
	}
	if ((strcmp(cmd, "card") == 0 || strcmp(cmd, "token") == 0) && argc == 2) {
		struct match_state s = {.medium_class = cmd[0] == 't', .value = number_arg(cmd, argv[1])};
		struct walk w = {.fn = match_visit, .arg = &s};
		int rc = walk_log(env, 1, &w);
		fprintf(stderr, "tapdump: %" PRIu64 " taps\n", s.found);
		return rc;
	}
	if (strcmp(cmd, "verify") == 0)
		return cmd_verify(env);
	if (strcmp(cmd, "quarantine") == 0)
		return store_result(cmd_quarantine(env), "the quarantine");
	if (strcmp(cmd, "validators") == 0)
		return store_result(st_validator_scan(env, validator_print, NULL), "the validators");
	if (strcmp(cmd, "export") == 0) {
		bool full = argc == 3 && strcmp(argv[1], "--fields") == 0 && strcmp(argv[2], "full") == 0;
		bool identity = argc == 1 || (argc == 3 && strcmp(argv[1], "--fields") == 0 &&
					      strcmp(argv[2], "identity") == 0);
		if (!full && !identity) {
			usage(stderr);
			exit(2);
		}
		return cmd_export(env, full);
	}
	fprintf(stderr, "tapdump: unknown command '%s'\n", cmd);
	usage(stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *dir = NULL;
	int opt;
	proc_version_option(argc, argv, "tapdump");
	proc_tool_init(); /* umask 027; SIGTERM and SIGINT end the tool at once, with a line */
	if (argc > 1 && strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	while ((opt = getopt(argc, argv, "+s:h")) != -1) {
		switch (opt) {
		case 's': dir = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (dir == NULL || optind >= argc) {
		usage(stderr);
		return 2;
	}
	struct stat sb;
	if (stat(dir, &sb) != 0) {
		fprintf(stderr, "tapdump: store '%s': %s\n", dir, strerror(errno));
		return 1;
	}
	struct st_env *env;
	struct st_options so = {.path = dir, .read_only = true};
	int rc = st_env_open(&env, &so);
	if (rc != 0) {
		fprintf(stderr, "tapdump: cannot open store '%s': %s\n", dir, st_strerror(rc));
		return 1;
	}
	rc = dispatch(env, argc - optind, argv + optind);
	st_env_close(env);
	if (rc != 0)
		fprintf(stderr, "tapdump: %s on store '%s' failed\n", argv[optind], dir);
	return rc;
}
