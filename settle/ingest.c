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

static int ingest_charges(struct settle_ctx *c, const char *path, char *data, FILE *out, char *err, size_t err_len)
{
	char *save = NULL, *line = strtok_r(data, "\n", &save);
	char id[BATCH_ID_MAX] = "";
	unsigned lineno = 1;
	if (!line || sscanf(line, "H,%127[^,],", id) != 1) {
		snprintf(err, err_len, "%s:1: expected the header record H,BATCH_ID,CREATED,PARTY", path);
		return SETTLE_ERR_INVALID;
	}
	struct batch b;
	int rc = settle_batch_get(c->db, id, &b, err, err_len);
	if (rc != 0)
		return rc;
	if (b.state == BATCH_SETTLED) {
		snprintf(err, err_len, "%s:1: batch %s is settled already: a response was ingested for it", path, id);
		return SETTLE_ERR_INVALID;
	}
	uint8_t medium = strncmp(b.party, "acquirer-", 9) == 0 ? 2 : strncmp(b.party, "qr-", 3) == 0 ? 3 : 0;
	bool recovery = strncmp(b.id, "R", 1) == 0; /* a re-presentation of debts (settle_recover) */
	if (!medium) {
		snprintf(err, err_len, "%s:1: batch %s is not a charge batch (acquirer or QR platform)", path, id);
		return SETTLE_ERR_INVALID;
	}
	struct item *items;
	size_t n;
	if ((rc = batch_items(c, &b, &items, &n, err, err_len)) != 0)
		return rc;
	MDB_txn *txn;
	if ((rc = settle_txn_begin(c->db, 0, &txn)) != 0) {
		free(items);
		return settle_store_fail(c->db, err, err_len, "beginning a transaction", rc);
	}
	uint64_t seen = 0, approved = 0, declined = 0, listed = 0, cleared = 0, written_off = 0;
	int64_t approved_fen = 0, declined_fen = 0, written_off_fen = 0;
	bool trailer = false;
	for (line = strtok_r(NULL, "\n", &save); line && rc == 0; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		unsigned long long no, token, amount, t_count, t_app, t_dec;
		char ad, reason[33] = "";
		if (line[0] == 'T') {
			if (sscanf(line, "T,%llu,%llu,%llu", &t_count, &t_app, &t_dec) != 3 || t_count != seen ||
			    (int64_t)t_app != approved_fen || (int64_t)t_dec != declined_fen) {
				snprintf(err, err_len, "%s:%u: trailer does not match the records (%llu, %lld, %lld)", path,
					 lineno, (unsigned long long)seen, (long long)approved_fen, (long long)declined_fen);
				rc = SETTLE_ERR_INVALID;
			}
			trailer = true;
			break;
		}
		if (sscanf(line, "R,%llu,%llu,%llu,%c,%32[^,\r]", &no, &token, &amount, &ad, reason) < 4 ||
		    (ad != 'A' && ad != 'D')) {
			snprintf(err, err_len, "%s:%u: expected R,ITEM_NO,TOKEN,AMOUNT_FEN,A|D,REASON", path, lineno);
			rc = SETTLE_ERR_INVALID;
			break;
		}
		if (no < 1 || no > n || items[no - 1].token != token || (uint64_t)llabs(items[no - 1].amount) != amount) {
			snprintf(err, err_len, "%s:%u: item %llu is not token %llu, %llu fen in batch %s", path, lineno, no,
				 token, amount, id);
			rc = SETTLE_ERR_INVALID;
			break;
		}
		seen++;
		if (ad == 'A') {
			bool was;
			approved++;
			approved_fen += (int64_t)amount;
			if ((rc = settle_deny_remove(c->db, txn, medium, token, &was)) != 0) {
				rc = settle_store_fail(c->db, err, err_len, "taking a token off the deny list", rc);
				break;
			}
			if (was) {
				cleared++;
				fprintf(out, "approved: %s:%llu is off the deny list\n", medium == 2 ? "quickpass" : "qr", token);
			}
			continue;
		}
		declined++;
		declined_fen += (int64_t)amount;
		if (items[no - 1].amount <= 0)
			continue; /* a declined refund: nothing is owed by the rider */
		if (recovery) { /* the same debt, declined again: it stays, with the retries it has left */
			fprintf(out, "declined again: %s:%llu still owes %llu fen (%s)\n", medium == 2 ? "quickpass" : "qr",
				token, amount, reason);
			continue;
		}
		if ((int64_t)amount <= c->write_off_fen) {
			written_off++;
			written_off_fen += (int64_t)amount;
			fprintf(out, "written off to the operators: %s:%llu, %llu fen (%s), at or under the first-ride risk of %lld fen\n",
				medium == 2 ? "quickpass" : "qr", token, amount, reason, (long long)c->write_off_fen);
			continue;
		}
		struct deny_entry e = {.medium = medium, .token = token, .owed_fen = (int64_t)amount,
				       .declined_day = b.day, .retries_left = (uint16_t)c->retry_count,
				       .next_retry_day = settle_day_add(b.day, c->retry_days)};
		snprintf(e.reason, sizeof(e.reason), "%s", reason);
		snprintf(e.batch, sizeof(e.batch), "%s", id);
		if ((rc = settle_deny_add(c->db, txn, &e)) != 0) {
			rc = settle_store_fail(c->db, err, err_len, "putting a token on the deny list", rc);
			break;
		}
		listed++;
		fprintf(out, "declined: %s:%llu owes %llu fen (%s): deny-listed, %u recovery retries from %u\n",
			medium == 2 ? "quickpass" : "qr", token, amount, reason, c->retry_count, e.next_retry_day);
	}
	if (rc == 0 && !trailer) {
		snprintf(err, err_len, "%s: no trailer record T,COUNT,APPROVED_FEN,DECLINED_FEN", path);
		rc = SETTLE_ERR_INVALID;
	}
	if (rc == 0 && seen != n) {
		snprintf(err, err_len, "%s: answers %llu of the batch's %zu items", path, (unsigned long long)seen, n);
		rc = SETTLE_ERR_INVALID;
	}
	if (rc == 0) {
		b.state = declined ? BATCH_ACKNOWLEDGED : BATCH_SETTLED;
		if ((rc = settle_batch_put_txn(c->db, txn, &b)) != 0)
			rc = settle_store_fail(c->db, err, err_len, "recording the batch's state", rc);
	}
	free(items);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	uint32_t ver = settle_deny_version(c->db, txn);
	if ((rc = mdb_txn_commit(txn)) != 0)
		return settle_store_fail(c->db, err, err_len, "committing", rc);
	fprintf(out, "batch %s %s: %llu approved (%lld fen), %llu declined (%lld fen): %llu deny-listed, %llu written off "
		     "(%lld fen), %llu taken off the list; deny list version %u\n",
		id, declined ? "acknowledged" : "settled", (unsigned long long)approved, (long long)approved_fen,
		(unsigned long long)declined, (long long)declined_fen, (unsigned long long)listed,
		(unsigned long long)written_off, (long long)written_off_fen, (unsigned long long)cleared, ver);
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
