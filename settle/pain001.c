/*
 * pain001.c - operator payouts as an ISO 20022 CustomerCreditTransferInitiation
 * (pain.001.001.10), written with libxml2's text writer: one payment
 * information block (us, the clearing account, as debtor) and one credit
 * transfer per payee (operator), each with its EndToEndId. The tests
 * validate every file against the official schema.
 */
#include "settle/pain001.h"

#include <libxml/xmlwriter.h>
#include <string.h>

#define NS "urn:iso:std:iso:20022:tech:xsd:pain.001.001.10"

xmlNode *settle_xml_child(xmlNode *n, const char *name)
{
	for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0)
			return c;
	return NULL;
}


/* A BIC (ISO 9362): 4 letters/digits, 2 letters, 2 letters/digits, optionally 3 more. */
static bool is_bic(const char *s)
{
	size_t n = strlen(s);
	if (n != 8 && n != 11)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool up = s[i] >= 'A' && s[i] <= 'Z', dig = s[i] >= '0' && s[i] <= '9';
		if ((i >= 4 && i < 6) ? !up : !(up || dig))
			return false;
	}
	return true;
}

#define W(call)                                                                                                   \
	do {                                                                                                      \
		if ((call) < 0)                                                                                   \
			ok = false;                                                                               \
	} while (0)

/*
 * <TAG><INNER>...</INNER></TAG> with the id as Othr/Id, or, where a BIC is
 * allowed and id is one, as BICFI: an agent (TAG/FinInstnId) or an account
 * (TAG/Id).
 */
static bool identified(xmlTextWriterPtr w, const char *tag, const char *inner, const char *id, bool bic_allowed)
{
	bool ok = true;
	W(xmlTextWriterStartElement(w, BAD_CAST tag));
	W(xmlTextWriterStartElement(w, BAD_CAST inner));
	if (bic_allowed && is_bic(id)) {
		W(xmlTextWriterWriteElement(w, BAD_CAST "BICFI", BAD_CAST id));
	} else {
		W(xmlTextWriterStartElement(w, BAD_CAST "Othr"));
		W(xmlTextWriterWriteElement(w, BAD_CAST "Id", BAD_CAST id));
		W(xmlTextWriterEndElement(w));
	}
	W(xmlTextWriterEndElement(w));
	W(xmlTextWriterEndElement(w));
	return ok;
}

static bool agent(xmlTextWriterPtr w, const char *tag, const char *id)
{
	return identified(w, tag, "FinInstnId", id, true);
}

static bool account(xmlTextWriterPtr w, const char *tag, const char *id)
{
	return identified(w, tag, "Id", id, false);
}

static bool party(xmlTextWriterPtr w, const char *tag, const char *name)
{
	bool ok = true;
	W(xmlTextWriterStartElement(w, BAD_CAST tag));
	W(xmlTextWriterWriteElement(w, BAD_CAST "Nm", BAD_CAST name));
	W(xmlTextWriterEndElement(w));
	return ok;
}

/* The group header and the payment information's header, up to the first transfer. */
static bool write_headers(xmlTextWriterPtr w, const struct pain001 *p, const char *count, const char *total)
{
	char created[32], exec[16];
	bool ok = true;
	settle_utc_text(p->created_us, created);
	snprintf(exec, sizeof(exec), "%04u-%02u-%02u", p->exec_date / 10000, p->exec_date / 100 % 100,
		 p->exec_date % 100);
	W(xmlTextWriterStartDocument(w, "1.0", "UTF-8", NULL));
	W(xmlTextWriterStartElementNS(w, NULL, BAD_CAST "Document", BAD_CAST NS));
	W(xmlTextWriterStartElement(w, BAD_CAST "CstmrCdtTrfInitn"));
	W(xmlTextWriterStartElement(w, BAD_CAST "GrpHdr"));
	W(xmlTextWriterWriteElement(w, BAD_CAST "MsgId", BAD_CAST p->msg_id));
	W(xmlTextWriterWriteElement(w, BAD_CAST "CreDtTm", BAD_CAST created));
	W(xmlTextWriterWriteElement(w, BAD_CAST "NbOfTxs", BAD_CAST count));
	W(xmlTextWriterWriteElement(w, BAD_CAST "CtrlSum", BAD_CAST total));
	ok &= party(w, "InitgPty", p->debtor->name);
	W(xmlTextWriterEndElement(w)); /* GrpHdr */
	W(xmlTextWriterStartElement(w, BAD_CAST "PmtInf"));
	W(xmlTextWriterWriteElement(w, BAD_CAST "PmtInfId", BAD_CAST p->msg_id));
	W(xmlTextWriterWriteElement(w, BAD_CAST "PmtMtd", BAD_CAST "TRF"));
	W(xmlTextWriterWriteElement(w, BAD_CAST "NbOfTxs", BAD_CAST count));
	W(xmlTextWriterWriteElement(w, BAD_CAST "CtrlSum", BAD_CAST total));
	W(xmlTextWriterStartElement(w, BAD_CAST "ReqdExctnDt"));
	W(xmlTextWriterWriteElement(w, BAD_CAST "Dt", BAD_CAST exec));
	W(xmlTextWriterEndElement(w));
	ok &= party(w, "Dbtr", p->debtor->name);
	ok &= account(w, "DbtrAcct", p->debtor->account);
	ok &= agent(w, "DbtrAgt", p->debtor->agent);
	return ok;
}

/* One credit transfer to an operator. */
static bool write_transfer(xmlTextWriterPtr w, const struct pain001 *p, const struct pain001_tx *tx)
{
	bool ok = true;
	char amount[32];
	settle_units_text(tx->amount_fen, p->minor_units, amount);
	W(xmlTextWriterStartElement(w, BAD_CAST "CdtTrfTxInf"));
	W(xmlTextWriterStartElement(w, BAD_CAST "PmtId"));
	W(xmlTextWriterWriteElement(w, BAD_CAST "EndToEndId", BAD_CAST tx->end_to_end_id));
	W(xmlTextWriterEndElement(w));
	W(xmlTextWriterStartElement(w, BAD_CAST "Amt"));
	W(xmlTextWriterStartElement(w, BAD_CAST "InstdAmt"));
	W(xmlTextWriterWriteAttribute(w, BAD_CAST "Ccy", BAD_CAST p->currency));
	W(xmlTextWriterWriteString(w, BAD_CAST amount));
	W(xmlTextWriterEndElement(w));
	W(xmlTextWriterEndElement(w));
	ok &= agent(w, "CdtrAgt", tx->creditor->agent);
	ok &= party(w, "Cdtr", tx->creditor->name);
	ok &= account(w, "CdtrAcct", tx->creditor->account);
	W(xmlTextWriterStartElement(w, BAD_CAST "RmtInf"));
	W(xmlTextWriterWriteElement(w, BAD_CAST "Ustrd", BAD_CAST tx->remittance));
	W(xmlTextWriterEndElement(w));
	W(xmlTextWriterEndElement(w)); /* CdtTrfTxInf */
	return ok;
}

int settle_pain001_write(struct out_file *o, const struct pain001 *p, char *err, size_t err_len)
{
	xmlBufferPtr buf = xmlBufferCreate();
	xmlTextWriterPtr w = buf ? xmlNewTextWriterMemory(buf, 0) : NULL;
	if (!w) {
		if (buf)
			xmlBufferFree(buf);
		snprintf(err, err_len, "pain.001: out of memory");
		return SETTLE_ERR_NOMEM;
	}
	char total[32], count[24];
	int64_t sum = 0;
	for (unsigned i = 0; i < p->n; i++)
		sum += p->tx[i].amount_fen;
	settle_units_text(sum, p->minor_units, total);
	snprintf(count, sizeof(count), "%u", p->n);
	xmlTextWriterSetIndent(w, 1);
	xmlTextWriterSetIndentString(w, BAD_CAST "  ");
	bool ok = write_headers(w, p, count, total);
	for (unsigned i = 0; i < p->n && ok; i++)
		ok = write_transfer(w, p, &p->tx[i]);
	if (xmlTextWriterEndDocument(w) < 0)
		ok = false;
	xmlFreeTextWriter(w);
	if (ok)
		settle_out_write(o, xmlBufferContent(buf), (size_t)xmlBufferLength(buf));
	xmlBufferFree(buf);
	if (!ok) {
		snprintf(err, err_len, "pain.001 %s: the XML writer failed", p->msg_id);
		return SETTLE_ERR_IO;
	}
	return 0;
}
