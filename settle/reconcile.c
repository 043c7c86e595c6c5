/*
 * reconcile.c - recompute a closed day and say whether it all adds up.
 *
 * From the tap log: the taps of the day, against the taps its legs cover
 * (every revision), and the quarantined taps of the day (received, not
 * settled). From the rated legs: every leg in exactly one round (its rating
 * run in one round's range), and each round's batches computed again and
 * compared with the recorded ones. From the files: each file's checksum,
 * and its items added up again against its trailer (CSV) or group header
 * (pain.001) and the batch record. Money: what riders (through acquirer,
 * QR platform and issuers) and funders pay equals what operators receive.
 */
#include "settle/pain001.h"

#include "fare/fare.h"
#include "proto/proto.h"
#include "store/store.h"

#include <libxml/parser.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void settle_say(struct settle_report *r, bool bad, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 8, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 8)
		n = (int)(sizeof(line) - 8);
	r->mismatches += bad;
	fprintf(r->out, "%s%s\n", bad ? "MISMATCH " : "", line);
	size_t need = (size_t)n + 16;
	if (r->len + need > r->cap) {
		size_t cap = (r->cap + need) * 2;
		char *b = realloc(r->buf, cap);
		if (!b)
			return;
		r->buf = b;
		r->cap = cap;
	}
	r->len += (size_t)snprintf(r->buf + r->len, r->cap - r->len, "%s%s\n", bad ? "MISMATCH " : "", line);
}

/* --- taps: the log's taps of the day against the taps the legs cover */

struct u64s {
	uint64_t *v;
	size_t n, cap;
};

static int push(struct u64s *a, uint64_t x)
{
	if (settle_array_room(&a->v, &a->cap, a->n, sizeof(*a->v), 1 << 16) != 0)
		return -1;
	a->v[a->n++] = x;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static size_t uniq(struct u64s *a)
{
	if (a->n == 0)
		return 0; /* a->v may be NULL: qsort's argument must not be */
	qsort(a->v, a->n, sizeof(*a->v), cmp_u64);
	size_t k = 0;
	for (size_t i = 0; i < a->n; i++)
		if (k == 0 || a->v[k - 1] != a->v[i])
			a->v[k++] = a->v[i];
	return a->n = k;
}

struct log_scan {
	struct fare_clock *clk;
	uint32_t day;
	struct u64s seqs;
	struct u64s forged; /* the day's QR taps found forged after their commit, ascending */
	size_t forged_next;
	uint64_t quarantined;
	bool nomem;
	char fault[200]; /* the log is not sound: where (reconciliation fails, naming it) */
};

static int on_log(void *arg, uint64_t seq, const struct st_tap_meta *meta, const uint8_t *record)
{
	struct log_scan *s = arg;
	struct fare_tap t;
	int bad = fare_tap_from_log(s->clk, seq, meta, record, &t);
	if (bad != 0) {
		snprintf(s->fault, sizeof(s->fault), "seq %llu: %s", (unsigned long long)seq, fp_tap_stored_text(bad));
		return 1;
	}
	while (s->forged_next < s->forged.n && s->forged.v[s->forged_next] < seq)
		s->forged_next++;
	if (s->forged_next < s->forged.n && s->forged.v[s->forged_next] == seq)
		return 0; /* quarantined: counted there, never rated */
	if (t.day == s->day && push(&s->seqs, seq) != 0)
		s->nomem = true;
	return s->nomem;
}

static int on_log_fault(void *arg, const struct st_log_fault *f)
{
	struct log_scan *s = arg;
	st_log_fault_text(f, s->fault, sizeof(s->fault));
	return 1;
}

static int on_quarantine(void *arg, uint64_t seq, const struct st_tap_meta *meta, const uint8_t *record)
{
	struct log_scan *s = arg;
	struct fare_tap t;
	if (fare_tap_from_log(s->clk, seq, meta, record, &t) == 0 && t.day == s->day)
		s->quarantined++;
	return 0;
}

/* A forged QR tap of the day (gateway.qr_verify = after_commit): in the log, but quarantined. */
static int on_forged(void *arg, uint64_t seq, const struct st_tap_meta *meta, const uint8_t *record)
{
	struct log_scan *s = arg;
	struct fare_tap t;
	if (fare_tap_from_log(s->clk, seq, meta, record, &t) != 0 || t.day != s->day)
		return 0;
	s->quarantined++;
	s->nomem = push(&s->forged, seq) != 0;
	return s->nomem;
}

struct leg_scan {
	const struct round *rounds;
	unsigned nrounds;
	struct u64s seqs;
	uint64_t legs, unbatched, leg_money_bad;
	int64_t rider, funders, operators;
	char currency[8], other_currency[8]; /* the day's legs' feeds' currency; another one seen (a mismatch) */
	unsigned minor_units;
	bool nomem;
};

static int on_leg(void *arg, const struct fare_leg *l, const struct fare_feed *f)
{
	struct leg_scan *s = arg;
	unsigned minor = 2;
	const char *cur = fare_feed_currency(f, &minor);
	if (!cur[0]) /* a feed with no product: purchases only, taken as CNY (build.c) */
		cur = "CNY", minor = 2;
	if (!s->currency[0]) {
		snprintf(s->currency, sizeof(s->currency), "%s", cur);
		s->minor_units = minor;
	} else if (strcmp(s->currency, cur) != 0) {
		snprintf(s->other_currency, sizeof(s->other_currency), "%s", cur);
	}
	s->legs++;
	bool in = false;
	for (unsigned i = 0; i < s->nrounds; i++)
		in |= l->run > s->rounds[i].run_lo && l->run <= s->rounds[i].run_hi;
	s->unbatched += !in;
	s->leg_money_bad += l->rider_fen + l->promotion_funder_fen + l->subsidy_funder_fen != l->operator_fen;
	s->rider += l->rider_fen;
	s->funders += l->promotion_funder_fen + l->subsidy_funder_fen;
	s->operators += l->operator_fen;
	for (unsigned i = 0; i < l->ntaps && i < FARE_LEG_TAPS_MAX && !s->nomem; i++)
		if (push(&s->seqs, l->tap_seq[i]) != 0)
			s->nomem = true;
	return s->nomem ? SETTLE_ERR_NOMEM : 0;
}

/* --- files */

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

/* The checksum file beside a data file names it and holds its SHA-256. */
static bool check_sum(struct settle_report *r, const struct batch *b, const char *path, const char *data, size_t len)
{
	uint8_t d[32];
	unsigned dl = 0;
	char want[65], got[65], sum_path[1000];
	EVP_Digest(data, len, d, &dl, EVP_sha256(), NULL);
	hex(d, 32, got);
	hex(b->sha256, 32, want);
	snprintf(sum_path, sizeof(sum_path), "%s.sha256", path);
	size_t sl;
	char *sum = settle_read_whole(sum_path, &sl);
	bool ok = sum && sl >= 64 && memcmp(sum, got, 64) == 0 && strcmp(got, want) == 0 &&
		  strstr(sum, b->file) != NULL;
	if (!ok)
		settle_say(r, true, "%s: checksum: file %s, %s.sha256 %.64s, recorded %s", b->id, got, b->file,
		    sum ? sum : "(missing)", want);
	free(sum);
	return ok;
}

/* H / D / T records: count the D records, add up their amounts (the last two fields: fen, D or C). */
static void check_csv(struct settle_report *r, const struct batch *b, char *data, const char *currency)
{
	uint64_t items = 0, debit = 0, credit = 0, t_items = 0, t_debit = 0, t_credit = 0, t_hash = 0;
	bool header = false, trailer = false;
	for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
		if (line[0] == 'H' && line[1] == ',') {
			const char *last = strrchr(line, ',');
			header = strstr(line, b->id) != NULL && last && strcmp(last + 1, currency) == 0;
		} else if (line[0] == 'D' && line[1] == ',') {
			char *dcp = strrchr(line, ','), *amt;
			if (!dcp)
				continue;
			*dcp = 0;
			amt = strrchr(line, ',');
			uint64_t a = amt ? strtoull(amt + 1, NULL, 10) : 0;
			items++;
			if (dcp[1] == 'D')
				debit += a;
			else
				credit += a;
		} else if (line[0] == 'T' && line[1] == ',') {
			trailer = sscanf(line, "T,%lu,%lu,%lu,%lu", &t_items, &t_debit, &t_credit, &t_hash) == 4;
		}
	}
	bool ok = header && trailer && items == t_items && debit == t_debit && credit == t_credit &&
		  t_items == b->items && t_debit == (uint64_t)b->debit_fen && t_credit == (uint64_t)b->credit_fen &&
		  t_hash == b->hash_total;
	if (!ok)
		settle_say(r, true, "%s: %s: header %s, trailer %s; items %lu/%lu/%llu, debit %lu/%lu/%lld, credit %lu/%lu/%lld "
			     "(counted/trailer/recorded)",
		    b->id, b->file, header ? "ok" : "missing or wrong", trailer ? "ok" : "missing", items, t_items,
		    (unsigned long long)b->items, debit, t_debit, (long long)b->debit_fen, credit, t_credit,
		    (long long)b->credit_fen);
}

/* Decimal text to minor units of a currency with `minor` decimals ("12.34" and 2 -> 1234). */
static int64_t units_minor(const char *s, unsigned minor)
{
	int64_t whole = 0, frac = 0, scale = 1;
	unsigned digits = 0;
	for (unsigned i = 0; i < minor; i++)
		scale *= 10;
	for (; *s >= '0' && *s <= '9'; s++)
		whole = whole * 10 + (*s - '0');
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9' && digits < minor; s++, digits++)
			frac = frac * 10 + (*s - '0');
	while (digits++ < minor)
		frac *= 10;
	return whole * scale + frac;
}

static int64_t text_minor(xmlNode *n, unsigned minor)
{
	xmlChar *t = n ? xmlNodeGetContent(n) : NULL;
	int64_t v = t ? units_minor((const char *)t, minor) : -1;
	xmlFree(t);
	return v;
}

/* Whether a transfer's InstdAmt is in the currency. */
static bool amount_in(xmlNode *amt, const char *currency)
{
	xmlChar *ccy = amt ? xmlGetProp(amt, BAD_CAST "Ccy") : NULL;
	bool same = ccy && strcmp((const char *)ccy, currency) == 0;
	xmlFree(ccy);
	return same;
}

static void check_pain001(struct settle_report *r, const struct batch *b, const char *data, size_t len,
			  const struct leg_scan *gs)
{
	xmlDoc *doc = xmlReadMemory(data, (int)len, b->file, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR);
	xmlNode *init = doc ? settle_xml_child(xmlDocGetRootElement(doc), "CstmrCdtTrfInitn") : NULL;
	xmlNode *hdr = settle_xml_child(init, "GrpHdr"), *pmt = settle_xml_child(init, "PmtInf");
	uint64_t n = 0, other_ccy = 0;
	int64_t sum = 0;
	for (xmlNode *c = pmt ? pmt->children : NULL; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "CdtTrfTxInf") != 0)
			continue;
		xmlNode *amt = settle_xml_child(settle_xml_child(c, "Amt"), "InstdAmt");
		n++;
		sum += text_minor(amt, gs->minor_units);
		other_ccy += !amount_in(amt, gs->currency);
	}
	xmlChar *nb = hdr ? xmlNodeGetContent(settle_xml_child(hdr, "NbOfTxs")) : NULL;
	int64_t ctrl = text_minor(settle_xml_child(hdr, "CtrlSum"), gs->minor_units);
	bool ok = hdr && nb && strtoull((const char *)nb, NULL, 10) == n && ctrl == sum && n == b->items &&
		  sum == b->credit_fen && other_ccy == 0;
	if (!ok)
		settle_say(r, true, "%s: %s: %llu transfers adding up to %lld (minor units of %s; %llu in another currency); "
			   "header NbOfTxs %s CtrlSum %lld; recorded %llu, %lld",
			   b->id, b->file, (unsigned long long)n, (long long)sum, gs->currency, (unsigned long long)other_ccy,
			   nb ? (const char *)nb : "?", (long long)ctrl, (unsigned long long)b->items, (long long)b->credit_fen);
	xmlFree(nb);
	xmlFreeDoc(doc);
}

static void check_file(struct settle_report *r, struct settle_ctx *c, const struct batch *b, const struct leg_scan *gs)
{
	char path[900];
	size_t len;
	snprintf(path, sizeof(path), "%s/%s/%s", c->outbox, b->party, b->file);
	char *data = settle_read_whole(path, &len);
	if (!data) {
		settle_say(r, true, "%s: %s cannot be read", b->id, path);
		return;
	}
	if (check_sum(r, b, path, data, len)) {
		if (strncmp(b->party, "payout-", 7) == 0)
			check_pain001(r, b, data, len, gs);
		else if (strncmp(b->party, "operator-", 9) != 0)
			check_csv(r, b, data, gs->currency);
	}
	free(data);
}

static bool same_batch(const struct batch *a, const struct batch *b)
{
	return strcmp(a->id, b->id) == 0 && a->items == b->items && a->debit_fen == b->debit_fen &&
	       a->credit_fen == b->credit_fen && a->hash_total == b->hash_total;
}

/* The day's taps in the log (and in quarantine), and its legs. Returns 0 or SETTLE_ERR_*. */
static int scan_day(struct settle_ctx *c, uint32_t day, struct log_scan *ls, struct leg_scan *gs, char *err,
		    size_t err_len)
{
	char ferr[FARE_ERR_MAX];
	struct fare_query q = {.day = day};
	int rc = st_qr_forged_scan(c->log, 1, on_forged, ls);
	if (rc == 0 && !ls->nomem)
		rc = st_log_check(c->log, 1, on_log, on_log_fault, ls);
	if (ls->fault[0]) {
		snprintf(err, err_len, "the gateway's log is not sound: %s (tapdump verify lists every fault)", ls->fault);
		rc = SETTLE_ERR_STORE;
	} else if (rc != 0 || (rc = st_quarantine_scan(c->log, on_quarantine, ls)) != 0) {
		snprintf(err, err_len, "the gateway's log: %s", st_strerror(rc));
		rc = SETTLE_ERR_STORE;
	} else if (ls->nomem) {
		rc = SETTLE_ERR_NOMEM;
	} else if ((rc = fare_legs_each(c->rated, &q, on_leg, gs, ferr, sizeof(ferr))) != 0) {
		if (rc != SETTLE_ERR_NOMEM)
			snprintf(err, err_len, "rated store: %s", ferr);
		rc = rc == SETTLE_ERR_NOMEM ? rc : SETTLE_ERR_STORE;
	}
	return rc;
}

/* Taps against legs: every tap of the day in the log is covered by a leg, and no leg covers another. */
static void say_taps_and_legs(struct settle_report *r, struct log_scan *ls, struct leg_scan *gs)
{
	uniq(&ls->seqs);
	uniq(&gs->seqs);
	size_t both = 0;
	for (size_t i = 0, j = 0; i < ls->seqs.n && j < gs->seqs.n;) {
		if (ls->seqs.v[i] == gs->seqs.v[j])
			both++, i++, j++;
		else if (ls->seqs.v[i] < gs->seqs.v[j])
			i++;
		else
			j++;
	}
	settle_say(r, ls->seqs.n != both || gs->seqs.n != both,
	    "taps: %zu recorded in the log for the day, %zu rated (covered by legs), %zu both; %llu quarantined "
	    "(conflicts and forged QR codes, not settled); every record of the log sound",
	    ls->seqs.n, gs->seqs.n, both, (unsigned long long)ls->quarantined);
	settle_say(r, gs->unbatched != 0, "legs: %llu, %llu in no round%s", (unsigned long long)gs->legs,
	    (unsigned long long)gs->unbatched, gs->unbatched ? " (rated after the last close: run tapsettle close)" : "");
	settle_say(r, gs->leg_money_bad != 0, "legs where rider + funders != operator: %llu", (unsigned long long)gs->leg_money_bad);
}

/* What the recorded batches say was paid, by whom. */
struct batch_money {
	int64_t charges, operators, paid;
};

/* The day's checks across its rounds: money in the batches, the legs held out, the operators' TIDES batches. */
struct day_check {
	const struct leg_scan *gs;
	struct batch_money m;
	struct held_legs held; /* every round's */
	struct batch *ops;     /* the operators' batches (their TIDES files are checked against held) */
	size_t nops, capops;
};

/* The legs round rd held out (h) join the day's; its held counts against its record. Returns 0 or SETTLE_ERR_NOMEM. */
static int add_held(struct settle_report *r, struct settle_ctx *c, const struct round *rd, struct day_check *d,
		    const struct held_legs *h)
{
	settle_held_reconcile_round(c, rd, &h->counts, r);
	for (size_t i = 0; i < h->n; i++) {
		struct fare_leg l = {.first_seq = h->v[i].first_seq, .rev = h->v[i].rev, .operator_id = h->v[i].operator_id};
		if (settle_held_add(&d->held, &l, (enum settle_hold)h->v[i].hold) != 0)
			return SETTLE_ERR_NOMEM;
	}
	d->held.written_off_operator_fen += h->written_off_operator_fen;
	return 0;
}

static int keep_operator_batch(struct day_check *d, const struct batch *b)
{
	if (settle_array_room(&d->ops, &d->capops, d->nops, sizeof(*d->ops), 16) != 0)
		return SETTLE_ERR_NOMEM;
	d->ops[d->nops++] = *b;
	return 0;
}

/* A round's batches recomputed from its legs, against the records and the files. Returns 0 or SETTLE_ERR_*. */
static int check_round(struct settle_report *r, struct settle_ctx *c, const struct round *recorded, struct day_check *d,
		       char *err, size_t err_len)
{
	struct round rd = *recorded;
	struct batch *b = NULL;
	unsigned n = 0;
	struct batch_money *m = &d->m;
	struct held_legs h = {0};
	int rc = settle_build_round_held(c, &rd, true, &b, &n, &h, err, err_len);
	if (rc == 0)
		rc = add_held(r, c, recorded, d, &h);
	free(h.v);
	if (rc != 0) {
		free(b);
		return rc;
	}
	settle_say(r, rd.legs != recorded->legs, "round %u: %llu legs in batches (recorded %llu), %u batches", rd.round,
	    (unsigned long long)rd.legs, (unsigned long long)recorded->legs, n);
	for (unsigned k = 0; k < n; k++) {
		struct batch rec;
		char berr[SETTLE_ERR_MAX];
		if (settle_batch_get(c->db, b[k].id, &rec, berr, sizeof(berr)) != 0) {
			settle_say(r, true, "%s: computed from the legs but not recorded", b[k].id);
			continue;
		}
		settle_say(r, !same_batch(&rec, &b[k]),
		    "batch %s: items %llu debit %lld credit %lld hash %llu (recomputed: %llu %lld %lld %llu)", rec.id,
		    (unsigned long long)rec.items, (long long)rec.debit_fen, (long long)rec.credit_fen,
		    (unsigned long long)rec.hash_total, (unsigned long long)b[k].items, (long long)b[k].debit_fen,
		    (long long)b[k].credit_fen, (unsigned long long)b[k].hash_total);
		check_file(r, c, &rec, d->gs);
		if (strncmp(rec.party, "operator-", 9) == 0 && strstr(rec.file, "-fare_transactions.csv") &&
		    (rc = keep_operator_batch(d, &rec)) != 0)
			break;
		if (strncmp(rec.party, "operator-", 9) == 0)
			m->operators += rec.credit_fen - rec.debit_fen;
		else if (strncmp(rec.party, "payout-", 7) == 0)
			m->paid += rec.credit_fen;
		else
			m->charges += rec.debit_fen - rec.credit_fen;
	}
	free(b);
	return rc;
}

/* No leg held out of settlement is a row of an operator's TIDES file; every row is in the day's currency. */
static void check_held_in_files(struct settle_report *r, struct settle_ctx *c, struct day_check *d)
{
	settle_held_sort(&d->held);
	for (size_t i = 0; i < d->nops; i++) {
		char path[900];
		size_t len;
		snprintf(path, sizeof(path), "%s/%s/%s", c->outbox, d->ops[i].party, d->ops[i].file);
		char *data = settle_read_whole(path, &len);
		if (data) /* a file that cannot be read is reported by check_file */
			settle_held_check_tides(r, &d->ops[i], data, &d->held, d->gs->currency);
		free(data);
	}
	settle_say(r, false, "held out: %llu unrated legs and %llu revisions of written-off legs (%lld fen their operators "
			     "would receive) are in no batch and no file", (unsigned long long)d->held.counts.unrated,
		   (unsigned long long)d->held.counts.written_off, (long long)d->held.written_off_operator_fen);
}

/* Money: what riders and funders pay equals what operators receive, in the batches and in the legs. */
static void say_money(struct settle_report *r, const struct day_check *d, const struct leg_scan *gs)
{
	const struct batch_money *m = &d->m;
	int64_t nets = gs->rider + gs->funders, settled = gs->operators - d->held.written_off_operator_fen;
	settle_say(r, gs->other_currency[0] != 0, "currency: %s, %u minor units%s%s", gs->currency, gs->minor_units,
		   gs->other_currency[0] ? "; legs rated in another currency too: " : "", gs->other_currency);
	settle_say(r, m->charges != m->operators || nets != gs->operators || (gs->unbatched == 0 && settled != m->operators),
	    "money (minor units): riders and funders pay %lld (acquirer, QR platform, issuers, funders), operators receive "
	    "%lld; legs: riders %lld + funders %lld = %lld, operators %lld, of which held out (written off) %lld",
	    (long long)m->charges, (long long)m->operators, (long long)gs->rider, (long long)gs->funders, (long long)nets,
	    (long long)gs->operators, (long long)d->held.written_off_operator_fen);
	settle_say(r, false, "payouts: %lld in pain.001 credit transfers; operators' net %lld", (long long)m->paid,
	    (long long)m->operators);
	settle_say(r, false, "%s", r->mismatches ? "RESULT: MISMATCHES FOUND" : "RESULT: reconciled");
}

/* The report, in the outbox too. Returns 0 or SETTLE_ERR_IO. */
static int write_report(const struct settle_report *r, struct settle_ctx *c, uint32_t day, char *err, size_t err_len)
{
	struct out_file o;
	uint8_t sha[32];
	char name[64];
	snprintf(name, sizeof(name), "%u-reconciliation.txt", day);
	int rc = settle_out_open(&o, NULL, c->outbox, "reconciliation", name, err, err_len);
	if (rc == 0) {
		settle_out_write(&o, r->buf ? r->buf : "", r->len);
		rc = settle_out_commit(&o, sha, err, err_len);
	}
	return rc;
}

int settle_reconcile(struct settle_ctx *c, uint32_t day, FILE *out, char *err, size_t err_len)
{
	struct settle_report r = {.out = out};
	struct round *rounds = NULL;
	unsigned nrounds = 0;
	int rc = settle_rounds(c->db, day, &rounds, &nrounds, err, err_len);
	if (rc != 0)
		return rc;
	if (nrounds == 0) {
		free(rounds);
		snprintf(err, err_len, "business day %u has not been closed (tapsettle close --day %u)", day, day);
		return SETTLE_ERR_INVALID;
	}
	settle_say(&r, false, "reconciliation of business day %u: %u round%s", day, nrounds, nrounds > 1 ? "s" : "");
	struct log_scan ls = {.clk = c->clk, .day = day};
	struct leg_scan gs = {.rounds = rounds, .nrounds = nrounds};
	struct day_check d = {.gs = &gs};
	rc = scan_day(c, day, &ls, &gs, err, err_len);
	if (rc == 0)
		say_taps_and_legs(&r, &ls, &gs);
	for (unsigned i = 0; i < nrounds && rc == 0; i++)
		rc = check_round(&r, c, &rounds[i], &d, err, err_len);
	if (rc == 0)
		check_held_in_files(&r, c, &d);
	if (rc == 0)
		rc = settle_unrated_reconcile(c, day, &r, err, err_len);
	if (rc == 0) {
		say_money(&r, &d, &gs);
		rc = write_report(&r, c, day, err, err_len);
	}
	if (rc == 0 && r.mismatches)
		rc = SETTLE_ERR_MISMATCH;
	free(ls.seqs.v);
	free(ls.forged.v);
	free(gs.seqs.v);
	free(d.held.v);
	free(d.ops);
	free(rounds);
	free(r.buf);
	return rc;
}
