/*
 * run_scan.c - phases 2 and 4 of a rating run (run.c): the log scanned from
 * the cursor (taps of days to rate, late taps of rated days), and every tap
 * sorted by (day, token, time, seq).
 */
#include "fare/run.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool to_rate(const struct run *r, uint32_t day)
{
	return day <= r->opt->through_day && !fare_run_set_has(&r->rated, day);
}

/* Is the tap at seq one the gateway found forged? The scan asks in ascending seq order. */
static bool forged(struct run *r, uint64_t seq)
{
	while (r->forged_next < r->forged_n && r->forged[r->forged_next] < seq)
		r->forged_next++;
	return r->forged_next < r->forged_n && r->forged[r->forged_next] == seq;
}

static int on_tap(void *arg, uint64_t seq, const struct st_tap_meta *meta, const uint8_t *record)
{
	struct run *r = arg;
	struct fare_tap t;
	if (seq > r->qr_frontier)
		return 1; /* a QR tap from here on may have no verdict yet: a later run reads on */
	r->last_seq = seq;
	if (forged(r, seq)) {
		r->st->taps_forged++;
		return 0;
	}
	r->st->taps_scanned++;
	if (!r->opt->quiet && r->st->taps_scanned % PROGRESS_TAPS == 0)
		fprintf(stderr, "tapfare: read %llu taps of the log (seq %llu)\n",
			(unsigned long long)r->st->taps_scanned, (unsigned long long)seq);
	int bad = fare_tap_from_log(r->clk, seq, meta, record, &t);
	if (bad != 0) {
		r->scan_rc = fare_run_fail_tap(r, seq, bad);
		return 1;
	}
	if (fare_run_set_has(&r->rated, t.day)) {
		if (seq <= r->cursor)
			return 0;
		r->st->taps_late++;
		t.pad = 1; /* late */
		return (r->scan_rc = fare_run_push_tap(r, &t)) != 0;
	}
	if (to_rate(r, t.day))
		return (r->scan_rc = fare_run_push_tap(r, &t)) != 0;
	if (seq > r->cursor) { /* a day for a later run: remember where it starts */
		for (size_t i = 0; i < r->daymin_days.n; i++)
			if (r->daymin_days.days[i] == t.day) {
				if (seq < r->daymin_seq[i])
					r->daymin_seq[i] = seq;
				return 0;
			}
		if (fare_run_set_add(&r->daymin_days, t.day) != 0 || !fare_run_daymin_room(r)) {
			r->scan_rc = FARE_ERR_NOMEM;
			return 1;
		}
		r->daymin_seq[r->daymin_days.n - 1] = seq;
	}
	return 0;
}

/* A fault st_log_check found: the run fails, naming it. */
static int on_log_fault(void *arg, const struct st_log_fault *f)
{
	struct run *r = arg;
	char text[160];
	snprintf(r->err, r->err_len, "gateway log is not sound: %s (tapdump verify lists every fault)",
		 st_log_fault_text(f, text, sizeof(text)));
	r->scan_rc = FARE_ERR_LOG;
	return 1;
}

static int on_forged(void *arg, uint64_t seq, const struct st_tap_meta *meta, const uint8_t *record)
{
	struct run *r = arg;
	(void)meta, (void)record;
	if (r->forged_n == r->forged_cap) {
		size_t cap = r->forged_cap ? r->forged_cap * 2 : 256;
		uint64_t *grown = realloc(r->forged, cap * sizeof(*grown));
		if (!grown) {
			r->scan_rc = FARE_ERR_NOMEM;
			return 1;
		}
		r->forged = grown;
		r->forged_cap = cap;
	}
	r->forged[r->forged_n++] = seq;
	return 0;
}

/*
 * The gateway's QR verdicts (gateway.qr_verify = after_commit): the verified
 * frontier, and the forged taps from `from` on. Taps beyond the frontier are
 * left to a later run, with a line saying how many. Returns 0 or FARE_ERR_*.
 */
static int qr_verdicts_load(struct run *r, uint64_t from)
{
	uint64_t next = 0;
	int rc = st_qr_frontier(r->log, &r->qr_frontier);
	if (rc == 0)
		rc = st_qr_forged_scan(r->log, from, on_forged, r);
	if (r->scan_rc != 0)
		return r->scan_rc;
	if (rc == 0)
		rc = st_log_next_seq(r->log, &next);
	if (rc != 0)
		return fare_run_fail_log(r, "reading the QR verdicts from", from, rc);
	r->st->qr_frontier = r->qr_frontier;
	r->st->taps_waiting = next - 1 > r->qr_frontier ? next - 1 - r->qr_frontier : 0;
	if (r->st->taps_waiting > 0 && !r->opt->quiet)
		fprintf(stderr,
			"tapfare: %llu taps after seq %llu wait for the gateway to verify their QR signatures "
			"(tapgate_qr_signatures_pending): the next run rates them\n",
			(unsigned long long)r->st->taps_waiting, (unsigned long long)r->qr_frontier);
	return 0;
}

int fare_run_scan_log(struct run *r)
{
	uint64_t from = r->cursor + 1;
	for (size_t i = 0; i < r->daymin_days.n; i++)
		if (to_rate(r, r->daymin_days.days[i]) && r->daymin_seq[i] < from)
			from = r->daymin_seq[i];
	r->last_seq = r->cursor;
	int rc = qr_verdicts_load(r, from);
	if (rc != 0)
		return rc;
	rc = st_log_check(r->log, from, on_tap, on_log_fault, r);
	if (r->scan_rc != 0)
		return r->scan_rc;
	if (rc != 0)
		return fare_run_fail_log(r, "reading on after", r->last_seq, rc);
	if (r->last_seq < r->cursor)
		r->last_seq = r->cursor;
	return 0;
}

/* --- 4. sorting: every tap by (day, token, time, seq) */

int fare_run_cmp_tap(const void *a, const void *b)
{
	const struct fare_tap *x = a, *y = b;
	if (x->day != y->day)
		return x->day < y->day ? -1 : 1;
	if (x->medium != y->medium)
		return x->medium < y->medium ? -1 : 1;
	if (x->issuer != y->issuer)
		return x->issuer < y->issuer ? -1 : 1;
	if (x->token_id != y->token_id)
		return x->token_id < y->token_id ? -1 : 1;
	if (x->time_us != y->time_us)
		return x->time_us < y->time_us ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Sort taps by fare_run_cmp_tap's order, fast: this is a large part of a day's rating.
 * A 24-byte key per tap (day/medium/issuer, token, index) is radix-sorted,
 * 16 bits per pass, least significant first, skipping digits every key shares
 * (most of them: one day, few issuers, tokens below 2^48); the taps are
 * gathered once in that order; each token-day's few taps are then put in
 * time order. Comparison sorts spent most of their time moving 64-byte taps.
 */
struct tap_key {
	uint64_t k0; /* day (bits 34..), medium (32..33), issuer (0..31) */
	uint64_t token;
	uint32_t idx, pad;
};

#define RADIX_DIGITS 8u /* 4 of the token, then 4 of k0 */

static unsigned key_digit(const struct tap_key *k, unsigned d)
{
	return (unsigned)((d < 4 ? k->token : k->k0) >> (16 * (d & 3))) & 0xffffu;
}


static void sort_by_time(struct fare_tap *t, size_t n)
{
	if (n > 32) {
		qsort(t, n, sizeof(*t), fare_run_cmp_tap);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		struct fare_tap x = t[i];
		size_t j = i;
		for (; j > 0 && (t[j - 1].time_us > x.time_us || (t[j - 1].time_us == x.time_us && t[j - 1].seq > x.seq));
		     j--)
			t[j] = t[j - 1];
		t[j] = x;
	}
}

int fare_run_sort_taps(struct run *r)
{
	size_t n = r->ntaps;
	if (n < 2)
		return 0;
	struct tap_key *k = n <= UINT32_MAX ? malloc(n * sizeof(*k)) : NULL, *tmp = malloc(n * sizeof(*tmp));
	uint32_t(*hist)[65536] = calloc(RADIX_DIGITS, sizeof(*hist));
	struct fare_tap *sorted = malloc(r->taps_cap * sizeof(*sorted));
	if (!k || !tmp || !hist || !sorted) {
		free(k), free(tmp), free(hist), free(sorted);
		return FARE_ERR_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct fare_tap *t = &r->taps[i];
		k[i] = (struct tap_key){.k0 = (uint64_t)t->day << 34 | (uint64_t)(t->medium & 3) << 32 | t->issuer,
					.token = t->token_id, .idx = (uint32_t)i};
		for (unsigned d = 0; d < RADIX_DIGITS; d++)
			hist[d][key_digit(&k[i], d)]++;
	}
	for (unsigned d = 0; d < RADIX_DIGITS; d++) {
		if (hist[d][key_digit(&k[0], d)] == n)
			continue; /* every key has this digit */
		uint32_t sum = 0;
		for (unsigned v = 0; v < 65536; v++) {
			uint32_t c = hist[d][v];
			hist[d][v] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			tmp[hist[d][key_digit(&k[i], d)]++] = k[i];
		struct tap_key *swap = k;
		k = tmp;
		tmp = swap;
	}
	for (size_t i = 0; i < n; i++) { /* random reads: ask for the ones ahead early */
		if (i + 16 < n)
			__builtin_prefetch(&r->taps[k[i + 16].idx]);
		sorted[i] = r->taps[k[i].idx];
	}
	free(k), free(tmp), free(hist), free(r->taps);
	r->taps = sorted;
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && fare_run_same_token_day(&sorted[i], &sorted[j]))
			j++;
		sort_by_time(&sorted[i], j - i);
		i = j;
	}
	return 0;
}

bool fare_run_same_token_day(const struct fare_tap *a, const struct fare_tap *b)
{
	return a->day == b->day && a->medium == b->medium && a->issuer == b->issuer && a->token_id == b->token_id;
}

/* Visit the legs of one token-day, every revision. */
