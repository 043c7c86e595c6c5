/*
 * ingest.c - what counterparties answer: `tapsettle ingest-response FILE`
 * reads either
 *   - an acquirer's (or the QR platform's) response to a charge batch: CSV,
 *     H,BATCH_ID,CREATED,PARTY / R,ITEM_NO,TOKEN,AMOUNT_FEN,A|D,REASON / T,COUNT,APPROVED_FEN,DECLINED_FEN
 *     (docs/SETTLEMENT.md section 5); every R must match the batch's item;
 *   - or the payout bank's pain.002.001.11 status report on a pain.001.
 * A declined charge puts the token on the deny list (deny.c) with what it
 * owes and schedules debt-recovery retries (recover.c); a declined amount up
 * to the first-ride risk threshold is written off to the operator instead
 * (reported). An approval takes the token off the list.
 */
#include "settle/pain001.h"

#include "base/assert.h"

#include <errno.h>
#include <libxml/parser.h>
#include <stdlib.h>
#include <string.h>

/* --- the acquirer's response */

struct item {
	uint64_t token;
	int64_t amount; /* signed: D > 0 */
};

/* The D records of a charge batch file: item_no -> token, amount. */
static int batch_items(struct settle_ctx *c, const struct batch *b, struct item **out, size_t *n, char *err,
		       size_t err_len)
{
	char path[900];
	size_t len;
	snprintf(path, sizeof(path), "%s/%s/%s", c->outbox, b->party, b->file);
	char *data = settle_read_whole(path, &len);
	if (!data) {
		snprintf(err, err_len, "%s: %s (tapsettle resend --batch %s writes it again)", path, strerror(errno), b->id);
		return SETTLE_ERR_IO;
	}
	*out = calloc(b->items + 1, sizeof(**out));
	*n = 0;
	for (char *save = NULL, *line = strtok_r(data, "\n", &save); line && *out; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long no, token, amount;
		char dc;
		/* D,ITEM_NO,TOKEN,LEGS,FIRST,LAST,AMOUNT,DC */
		if (line[0] != 'D')
			continue;
		char *last = strrchr(line, ','), *prev;
		if (!last)
			continue;
		dc = last[1];
		*last = 0;
		prev = strrchr(line, ',');
		amount = prev ? strtoull(prev + 1, NULL, 10) : 0;
		if (sscanf(line, "D,%llu,%llu,", &no, &token) != 2 || no != *n + 1 || no > b->items)
			continue;
		(*out)[(*n)++] = (struct item){.token = token, .amount = dc == 'C' ? -(int64_t)amount : (int64_t)amount};
	}
	free(data);
	if (!*out)
		return SETTLE_ERR_NOMEM;
	if (*n != b->items) {
		snprintf(err, err_len, "%s: %zu items, the batch has %llu", path, *n, (unsigned long long)b->items);
		free(*out);
		return SETTLE_ERR_MISMATCH;
	}
	return 0;
}

/* An acquirer's response being ingested: the batch it answers, its items, and what it said so far. */
struct response {
	struct settle_ctx *c;
	const char *path;
	FILE *out;
	char *err;
	size_t err_len;
	struct batch b;
	uint8_t medium;  /* FARE_QUICKPASS or FARE_QR: whose charges */
	bool recovery;   /* a re-presentation of debts (settle_recover) */
	struct item *items;
	size_t n;
	MDB_txn *txn;
	unsigned lineno;
	uint64_t seen, approved, declined, listed, cleared, written_off;
	int64_t approved_fen, declined_fen, written_off_fen;
};

/* The header record: the batch it answers, which must be an unsettled charge batch. Returns 0 or SETTLE_ERR_*. */
static int response_batch(struct response *r, const char *line)
{
	char id[BATCH_ID_MAX] = "";
	if (!line || sscanf(line, "H,%127[^,],", id) != 1) {
		snprintf(r->err, r->err_len, "%s:1: expected the header record H,BATCH_ID,CREATED,PARTY", r->path);
		return SETTLE_ERR_INVALID;
	}
	int rc = settle_batch_get(r->c->db, id, &r->b, r->err, r->err_len);
	if (rc != 0)
		return rc;
	if (r->b.state == BATCH_SETTLED) {
		snprintf(r->err, r->err_len, "%s:1: batch %s is settled already: a response was ingested for it", r->path, id);
		return SETTLE_ERR_INVALID;
	}
	r->medium = strncmp(r->b.party, "acquirer-", 9) == 0 ? FARE_QUICKPASS
		    : strncmp(r->b.party, "qr-", 3) == 0	 ? FARE_QR
							 : 0;
	r->recovery = strncmp(r->b.id, "R", 1) == 0;
	if (!r->medium) {
		snprintf(r->err, r->err_len, "%s:1: batch %s is not a charge batch (acquirer or QR platform)", r->path, id);
		return SETTLE_ERR_INVALID;
	}
	return 0;
}

/* The trailer record: its count and totals must be what the records said. Returns 0 or SETTLE_ERR_INVALID. */
static int response_trailer(struct response *r, const char *line)
{
	unsigned long long count, approved_fen, declined_fen;
	if (sscanf(line, "T,%llu,%llu,%llu", &count, &approved_fen, &declined_fen) == 3 && count == r->seen &&
	    (int64_t)approved_fen == r->approved_fen && (int64_t)declined_fen == r->declined_fen)
		return 0;
	snprintf(r->err, r->err_len, "%s:%u: trailer does not match the records (%llu, %lld, %lld)", r->path, r->lineno,
		 (unsigned long long)r->seen, (long long)r->approved_fen, (long long)r->declined_fen);
	return SETTLE_ERR_INVALID;
}

/* An approval: the token is off the deny list if it was on it. */
static int response_approved(struct response *r, uint64_t token, uint64_t amount)
{
	bool was;
	r->approved++;
	r->approved_fen += (int64_t)amount;
	int rc = settle_deny_remove(r->c->db, r->txn, r->medium, token, &was);
	if (rc != 0)
		return settle_store_fail(r->c->db, r->err, r->err_len, "taking a token off the deny list", rc);
	if (was) {
		r->cleared++;
		fprintf(r->out, "approved: %s:%llu is off the deny list\n", settle_medium_name(r->medium),
			(unsigned long long)token);
	}
	return 0;
}

/* A decline of item `item`: written off under the first-ride risk, or the token deny-listed with its debt. */
static int response_declined(struct response *r, const struct item *item, uint64_t amount, const char *reason)
{
	const char *medium = settle_medium_name(r->medium);
	unsigned long long token = item->token;
	r->declined++;
	r->declined_fen += (int64_t)amount;
	if (item->amount <= 0)
		return 0; /* a declined refund: nothing is owed by the rider */
	if (r->recovery) { /* the same debt, declined again: it stays, with the retries it has left */
		fprintf(r->out, "declined again: %s:%llu still owes %llu fen (%s)\n", medium, token,
			(unsigned long long)amount, reason);
		return 0;
	}
	if ((int64_t)amount <= r->c->write_off_fen) {
		r->written_off++;
		r->written_off_fen += (int64_t)amount;
		fprintf(r->out, "written off to the operators: %s:%llu, %llu fen (%s), at or under the first-ride risk of %lld fen\n",
			medium, token, (unsigned long long)amount, reason, (long long)r->c->write_off_fen);
		return 0;
	}
	struct deny_entry e = {.medium = r->medium, .token = token, .owed_fen = (int64_t)amount,
			       .declined_day = r->b.day, .retries_left = (uint16_t)r->c->retry_count,
			       .next_retry_day = settle_day_add(r->b.day, r->c->retry_days)};
	snprintf(e.reason, sizeof(e.reason), "%s", reason);
	snprintf(e.batch, sizeof(e.batch), "%s", r->b.id);
	int rc = settle_deny_add(r->c->db, r->txn, &e);
	if (rc != 0)
		return settle_store_fail(r->c->db, r->err, r->err_len, "putting a token on the deny list", rc);
	r->listed++;
	fprintf(r->out, "declined: %s:%llu owes %llu fen (%s): deny-listed, %u recovery retries from %u\n", medium, token,
		(unsigned long long)amount, reason, r->c->retry_count, e.next_retry_day);
	return 0;
}

/* One R record, matched to the batch's item. Returns 0 or SETTLE_ERR_*. */
static int response_record(struct response *r, const char *line)
{
	unsigned long long no, token, amount;
	char ad, reason[33] = "";
	if (sscanf(line, "R,%llu,%llu,%llu,%c,%32[^,\r]", &no, &token, &amount, &ad, reason) < 4 ||
	    (ad != 'A' && ad != 'D')) {
		snprintf(r->err, r->err_len, "%s:%u: expected R,ITEM_NO,TOKEN,AMOUNT_FEN,A|D,REASON", r->path, r->lineno);
		return SETTLE_ERR_INVALID;
	}
	if (no < 1 || no > r->n || r->items[no - 1].token != token || (uint64_t)llabs(r->items[no - 1].amount) != amount) {
		snprintf(r->err, r->err_len, "%s:%u: item %llu is not token %llu, %llu fen in batch %s", r->path, r->lineno,
			 no, token, amount, r->b.id);
		return SETTLE_ERR_INVALID;
	}
	r->seen++;
	return ad == 'A' ? response_approved(r, token, amount) : response_declined(r, &r->items[no - 1], amount, reason);
}

/* The records up to the trailer, then the batch's new state, in r->txn. Returns 0 or SETTLE_ERR_*. */
static int response_records(struct response *r, char **save)
{
	bool trailer = false;
	int rc = 0;
	for (char *line = strtok_r(NULL, "\n", save); line && rc == 0 && !trailer; line = strtok_r(NULL, "\n", save)) {
		r->lineno++;
		trailer = line[0] == 'T';
		rc = trailer ? response_trailer(r, line) : response_record(r, line);
	}
	if (rc == 0 && !trailer) {
		snprintf(r->err, r->err_len, "%s: no trailer record T,COUNT,APPROVED_FEN,DECLINED_FEN", r->path);
		rc = SETTLE_ERR_INVALID;
	}
	if (rc == 0 && r->seen != r->n) {
		snprintf(r->err, r->err_len, "%s: answers %llu of the batch's %zu items", r->path,
			 (unsigned long long)r->seen, r->n);
		rc = SETTLE_ERR_INVALID;
	}
	TG_ASSERT(rc != 0 || (r->approved + r->declined == r->seen && r->listed + r->written_off <= r->declined));
	r->b.state = r->declined ? BATCH_ACKNOWLEDGED : BATCH_SETTLED;
	if (rc == 0 && (rc = settle_batch_put_txn(r->c->db, r->txn, &r->b)) != 0)
		rc = settle_store_fail(r->c->db, r->err, r->err_len, "recording the batch's state", rc);
	return rc;
}

/* An acquirer's (or the QR platform's) response to a charge batch, in one transaction. */
static int ingest_charges(struct settle_ctx *c, const char *path, char *data, FILE *out, char *err, size_t err_len)
{
	struct response r = {.c = c, .path = path, .out = out, .err = err, .err_len = err_len, .lineno = 1};
	char *save = NULL;
	int rc = response_batch(&r, strtok_r(data, "\n", &save));
	if (rc == 0)
		rc = batch_items(c, &r.b, &r.items, &r.n, err, err_len);
	if (rc != 0)
		return rc;
	if ((rc = settle_txn_begin(c->db, 0, &r.txn)) != 0) {
		free(r.items);
		return settle_store_fail(c->db, err, err_len, "beginning a transaction", rc);
	}
	rc = response_records(&r, &save);
	free(r.items);
	if (rc != 0) {
		mdb_txn_abort(r.txn);
		return rc;
	}
	uint32_t ver = settle_deny_version(c->db, r.txn);
	if ((rc = mdb_txn_commit(r.txn)) != 0)
		return settle_store_fail(c->db, err, err_len, "committing", rc);
	fprintf(out, "batch %s %s: %llu approved (%lld fen), %llu declined (%lld fen): %llu deny-listed, %llu written off "
		     "(%lld fen), %llu taken off the list; deny list version %u\n",
		r.b.id, r.declined ? "acknowledged" : "settled", (unsigned long long)r.approved, (long long)r.approved_fen,
		(unsigned long long)r.declined, (long long)r.declined_fen, (unsigned long long)r.listed,
		(unsigned long long)r.written_off, (long long)r.written_off_fen, (unsigned long long)r.cleared, ver);
	return 0;
}

/* --- the payout bank's pain.002 */

static void text(xmlNode *n, char *out, size_t cap)
{
	xmlChar *t = n ? xmlNodeGetContent(n) : NULL;
	snprintf(out, cap, "%s", t ? (const char *)t : "");
	xmlFree(t);
}

static int ingest_pain002(struct settle_ctx *c, const char *path, const char *data, size_t len, FILE *out, char *err,
			  size_t err_len)
{
	xmlDoc *doc = xmlReadMemory(data, (int)len, path, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR);
	xmlNode *rpt = doc ? settle_xml_child(xmlDocGetRootElement(doc), "CstmrPmtStsRpt") : NULL;
	xmlNode *grp = settle_xml_child(rpt, "OrgnlGrpInfAndSts");
	char msg[64], sts[16], id[BATCH_ID_MAX];
	unsigned day, round;
	int rc = 0;
	text(settle_xml_child(grp, "OrgnlMsgId"), msg, sizeof(msg));
	text(settle_xml_child(grp, "GrpSts"), sts, sizeof(sts));
	if (!grp || sscanf(msg, "TG%8u%2uPAYOUT", &day, &round) != 2) {
		snprintf(err, err_len, "%s: not a pain.002 status report on a tapgate payout (OrgnlMsgId \"%s\")", path, msg);
		xmlFreeDoc(doc);
		return SETTLE_ERR_INVALID;
	}
	snprintf(id, sizeof(id), "%u-%02u-payout-%s", day, round, c->parties->payout_bank);
	struct batch b;
	if ((rc = settle_batch_get(c->db, id, &b, err, err_len)) != 0) {
		xmlFreeDoc(doc);
		return rc;
	}
	unsigned rejected = 0, accepted = 0;
	for (xmlNode *pmt = rpt->children; pmt; pmt = pmt->next) {
		if (pmt->type != XML_ELEMENT_NODE || strcmp((const char *)pmt->name, "OrgnlPmtInfAndSts") != 0)
			continue;
		for (xmlNode *tx = pmt->children; tx; tx = tx->next) {
			if (tx->type != XML_ELEMENT_NODE || strcmp((const char *)tx->name, "TxInfAndSts") != 0)
				continue;
			char e2e[64], txsts[16], reason[64];
			text(settle_xml_child(tx, "OrgnlEndToEndId"), e2e, sizeof(e2e));
			text(settle_xml_child(tx, "TxSts"), txsts, sizeof(txsts));
			text(settle_xml_child(settle_xml_child(settle_xml_child(tx, "StsRsnInf"), "Rsn"), "Cd"), reason, sizeof(reason));
			if (strcmp(txsts, "RJCT") == 0) {
				rejected++;
				fprintf(out, "rejected payment %s (%s): pay it again by hand or correct the operator's account\n", e2e,
					reason[0] ? reason : "no reason given");
			} else {
				accepted++;
			}
		}
	}
	xmlFreeDoc(doc);
	bool settled = strcmp(sts, "ACSC") == 0 && rejected == 0;
	bool bad = strcmp(sts, "RJCT") == 0;
	b.state = settled ? BATCH_SETTLED : bad ? BATCH_CLOSED : BATCH_ACKNOWLEDGED;
	if ((rc = settle_batch_put(c->db, &b, err, err_len)) != 0)
		return rc;
	fprintf(out, "batch %s: bank status %s, %u payments accepted, %u rejected: %s\n", id, sts[0] ? sts : "(none)",
		accepted, rejected, settled ? "settled" : bad ? "rejected whole, still closed" : "acknowledged");
	return rejected || bad ? SETTLE_ERR_MISMATCH : 0;
}

int settle_ingest(struct settle_ctx *c, const char *path, FILE *out, char *err, size_t err_len)
{
	size_t len;
	char *data = settle_read_whole(path, &len);
	if (!data) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return SETTLE_ERR_INVALID;
	}
	int rc;
	const char *p = data;
	while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
		p++;
	if (*p == '<')
		rc = ingest_pain002(c, path, data, len, out, err, err_len);
	else
		rc = ingest_charges(c, path, data, out, err, err_len);
	free(data);
	return rc;
}
