/*
 * parties.c - the counterparties file: who we pay and charge, with their
 * bank details (INI, read with inih; layout in docs/SETTLEMENT.md).
 *
 *   [clearing]      name, account, agent, acquirer, qr_platform, payout_bank
 *   [operator N]    name, account, agent   (N: the frame's operator_id)
 *
 * An unknown section or key, a bad operator number, a value too long or a
 * required key left out stops settlement with the file, line (or section)
 * and key named: paying the wrong account is worse than paying late.
 */
#include "settle/settle.h"

#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>

struct load {
	struct settle_parties *p;
	char why[SETTLE_ERR_MAX];
};

static bool put(char *dst, size_t cap, const char *value)
{
	if (strlen(value) >= cap)
		return false;
	strcpy(dst, value);
	return true;
}

static int party_key(struct settle_party *pt, const char *name, const char *value, char *why, size_t why_len)
{
	char *dst = strcmp(name, "name") == 0 ? pt->name
		    : strcmp(name, "account") == 0 ? pt->account
		    : strcmp(name, "agent") == 0 ? pt->agent
						   : NULL;
	size_t cap = dst == pt->name ? sizeof(pt->name) : SETTLE_ID_MAX;
	if (!dst) {
		snprintf(why, why_len, "unknown key '%s' (name, account, agent)", name);
		return 0;
	}
	if (!*value || !put(dst, cap, value)) {
		snprintf(why, why_len, "'%s' must be 1 to %zu characters", name, cap - 1);
		return 0;
	}
	return 1;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load *ld = user;
	struct settle_parties *p = ld->p;
	if (strcmp(section, "clearing") == 0) {
		char *dst = strcmp(name, "acquirer") == 0 ? p->acquirer
			    : strcmp(name, "qr_platform") == 0 ? p->qr_platform
			    : strcmp(name, "payout_bank") == 0 ? p->payout_bank
							       : NULL;
		if (!dst)
			return party_key(&p->clearing, name, value, ld->why, sizeof(ld->why));
		for (const char *s = value; *s; s++)
			if (!(*s >= 'a' && *s <= 'z') && !(*s >= '0' && *s <= '9') && *s != '_') {
				snprintf(ld->why, sizeof(ld->why), "'%s' must be a-z, 0-9 and _ (it names a folder)",
					 name);
				return 0;
			}
		if (!*value || !put(dst, SETTLE_ID_MAX - 16, value)) {
			snprintf(ld->why, sizeof(ld->why), "'%s' must be 1 to %u characters", name, SETTLE_ID_MAX - 17);
			return 0;
		}
		return 1;
	}
	if (strncmp(section, "operator ", 9) == 0) {
		char *end;
		errno = 0;
		unsigned long id = strtoul(section + 9, &end, 10);
		if (errno || *end || end == section + 9 || id > 65535) {
			snprintf(ld->why, sizeof(ld->why), "section [%s]: the operator number must be 0 to 65535", section);
			return 0;
		}
		unsigned i = 0;
		while (i < p->noperators && p->operator_ids[i] != id)
			i++;
		if (i == p->noperators) {
			if (p->noperators == SETTLE_OPERATORS_MAX) {
				snprintf(ld->why, sizeof(ld->why), "more than %u operators", SETTLE_OPERATORS_MAX);
				return 0;
			}
			p->operator_ids[p->noperators++] = (uint16_t)id;
			snprintf(p->operators[i].id, SETTLE_ID_MAX, "operator-%lu", id);
		}
		return party_key(&p->operators[i], name, value, ld->why, sizeof(ld->why));
	}
	snprintf(ld->why, sizeof(ld->why), "unknown section [%s] ([clearing], [operator N])", section);
	return 0;
}

static int missing(const struct settle_party *pt, const char *section, const char *path, char *err, size_t err_len)
{
	const char *key = !pt->name[0] ? "name" : !pt->account[0] ? "account" : !pt->agent[0] ? "agent" : NULL;
	if (!key)
		return 0;
	snprintf(err, err_len, "%s: [%s]: '%s' is required", path, section, key);
	return SETTLE_ERR_CONFIG;
}

int settle_parties_load(struct settle_parties *p, const char *path, char *err, size_t err_len)
{
	struct load ld = {.p = p};
	memset(p, 0, sizeof(*p));
	int line = ini_parse(path, on_key, &ld);
	if (line == -1) {
		snprintf(err, err_len, "%s: cannot be read: %s", path, strerror(errno));
		return SETTLE_ERR_CONFIG;
	}
	if (line != 0) {
		snprintf(err, err_len, "%s:%d: %s", path, line, ld.why[0] ? ld.why : "not INI syntax");
		return SETTLE_ERR_CONFIG;
	}
	int rc = missing(&p->clearing, "clearing", path, err, err_len);
	const char *key = !p->acquirer[0] ? "acquirer" : !p->qr_platform[0] ? "qr_platform"
						: !p->payout_bank[0] ? "payout_bank" : NULL;
	if (rc == 0 && key) {
		snprintf(err, err_len, "%s: [clearing]: '%s' is required", path, key);
		rc = SETTLE_ERR_CONFIG;
	}
	for (unsigned i = 0; i < p->noperators && rc == 0; i++) {
		char section[32];
		snprintf(section, sizeof(section), "operator %u", p->operator_ids[i]);
		rc = missing(&p->operators[i], section, path, err, err_len);
	}
	return rc;
}

const struct settle_party *settle_operator(const struct settle_parties *p, uint16_t operator_id)
{
	for (unsigned i = 0; i < p->noperators; i++)
		if (p->operator_ids[i] == operator_id)
			return &p->operators[i];
	return NULL;
}
