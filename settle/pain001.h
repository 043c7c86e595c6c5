/*
 * pain001.h - ISO 20022 XML (pain001.c): payouts as pain.001.001.10, and reading
 * the messages back (reconciliation, pain.002). Internal to settle/.
 */
#ifndef TAPGATE_SETTLE_PAIN001_H
#define TAPGATE_SETTLE_PAIN001_H

#include "settle/internal.h"

#include <libxml/tree.h>

struct pain001_tx {
	const struct settle_party *creditor;
	int64_t amount_fen; /* > 0, in the message's minor units */
	char end_to_end_id[36];
	char remittance[141];
};

struct pain001 {
	char msg_id[36];
	uint64_t created_us;
	uint32_t exec_date; /* YYYYMMDD */
	const struct settle_party *debtor;
	const struct pain001_tx *tx;
	unsigned n;
	const char *currency;  /* ISO 4217: InstdAmt's Ccy */
	unsigned minor_units;  /* the decimals of InstdAmt and CtrlSum */
};

/* The first element child of n named name (NULL for none, or n NULL): reading pain.001 and pain.002. */
xmlNode *settle_xml_child(xmlNode *n, const char *name);

/* Write the message into o. Returns 0, SETTLE_ERR_NOMEM, SETTLE_ERR_IO. */
int settle_pain001_write(struct out_file *o, const struct pain001 *p, char *err, size_t err_len);

#endif
