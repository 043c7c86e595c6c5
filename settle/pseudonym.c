/*
 * pseudonym.c - riders as operators and funders see them: a keyed pseudonym.
 *
 * Operators and funders need to count riders and trips, not to know whose
 * card it was: their files (TIDES fare_transactions, funder clearing) name a
 * rider by HMAC-SHA-256(settlement secret, the token as tapfare writes it:
 * "epurse:ISSUER:CARD", "quickpass:T", "qr:T"), its first 8 bytes as 16
 * lowercase hex digits (docs/SETTLEMENT.md section 4.4). The same token is
 * the same pseudonym every day and in every file, so riders can still be
 * counted; without the secret it cannot be turned back into a card number
 * (and guessing card numbers means guessing the secret too). Only the
 * issuers' clearing files, and the charge files the acquirer and QR platform
 * charge by, carry the token itself.
 *
 * The HMAC's key schedule (the inner and outer SHA-256 states) is computed
 * once; each pseudonym copies it (two compressions), and a builder asks for
 * a token's pseudonym once per leg, in token order, so the last one is kept.
 */
#include "settle/internal.h"

#include "base/assert.h"

#include <assert.h>
#include <ctype.h>
#include <sodium.h>
#include <string.h>

static_assert(SETTLE_PSEUDONYM_BYTES * 2 == SETTLE_PSEUDONYM_HEX, "hex digits of the pseudonym's bytes");
static_assert(SETTLE_PSEUDONYM_BYTES <= 8, "a pseudonym is also a 64-bit number (hash totals)");

void settle_pseudonym_init(struct settle_pseudonym *p, const uint8_t key[SETTLE_SECRET_BYTES])
{
	TG_ASSERT(sodium_init() >= 0);
	memset(p, 0, sizeof(*p));
	crypto_auth_hmacsha256_init(&p->keyed, key, SETTLE_SECRET_BYTES);
}

uint64_t settle_pseudonym(struct settle_pseudonym *p, uint8_t medium, uint32_t issuer, uint64_t token)
{
	if (p->have && p->medium == medium && p->issuer == issuer && p->token == token)
		return p->value;
	char text[64];
	uint8_t mac[crypto_auth_hmacsha256_BYTES];
	fare_token_format(medium, issuer, token, text, sizeof(text));
	crypto_auth_hmacsha256_state st = p->keyed;
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)text, strlen(text));
	crypto_auth_hmacsha256_final(&st, mac);
	uint64_t v = 0;
	for (unsigned i = 0; i < SETTLE_PSEUDONYM_BYTES; i++)
		v = v << 8 | mac[i];
	*p = (struct settle_pseudonym){.keyed = p->keyed, .have = true, .medium = medium, .issuer = issuer,
				       .token = token, .value = v};
	return v;
}

static int hex_digit(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* One key line: exactly SETTLE_SECRET_BYTES * 2 hex digits (surrounding blanks allowed). Returns 0 or -1. */
static int key_line(const char *s, uint8_t key[SETTLE_SECRET_BYTES])
{
	while (*s == ' ' || *s == '\t')
		s++;
	for (unsigned i = 0; i < SETTLE_SECRET_BYTES; i++) {
		int hi = hex_digit(s[2 * i]), lo = hi < 0 ? -1 : hex_digit(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	for (s += 2 * SETTLE_SECRET_BYTES; *s; s++)
		if (!isspace((unsigned char)*s))
			return -1;
	return 0;
}

int settle_secret_read(FILE *f, const char *path, uint8_t key[SETTLE_SECRET_BYTES], char *err, size_t err_len)
{
	char line[512];
	unsigned no = 0, keys = 0, key_no = 0;
	while (fgets(line, sizeof(line), f)) {
		no++;
		const char *s = line + strspn(line, " \t");
		if (*s == '#' || *s == '\n' || *s == '\0')
			continue;
		if (keys++ > 0) {
			snprintf(err, err_len, "%s:%u: a second key line (line %u holds the settlement secret): one key per file",
				 path, no, key_no);
			return SETTLE_ERR_CONFIG;
		}
		key_no = no;
		if (key_line(s, key) != 0) {
			snprintf(err, err_len, "%s:%u: not %u hex digits (the %u-byte settlement secret; make one with: "
				 "openssl rand -hex %u)", path, no, SETTLE_SECRET_BYTES * 2, SETTLE_SECRET_BYTES,
				 SETTLE_SECRET_BYTES);
			return SETTLE_ERR_CONFIG;
		}
	}
	if (keys == 0) {
		snprintf(err, err_len, "%s: no key line: the file must hold the settlement secret, %u hex digits "
			 "(openssl rand -hex %u)", path, SETTLE_SECRET_BYTES * 2, SETTLE_SECRET_BYTES);
		return SETTLE_ERR_CONFIG;
	}
	uint8_t any = 0;
	for (unsigned i = 0; i < SETTLE_SECRET_BYTES; i++)
		any |= key[i];
	if (!any) {
		snprintf(err, err_len, "%s:%u: the settlement secret is all zeros: not a secret", path, key_no);
		return SETTLE_ERR_CONFIG;
	}
	return 0;
}
