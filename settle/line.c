/*
 * line.c - the text of settlement files: lines built without printf (the
 * per-leg lines of a 10-million-tap day are most of a close's time, and
 * printf's format parsing was most of that), amounts in yuan and UTC times.
 */
#include "settle/internal.h"

#include <string.h>

/* A line's text as a string (at most 31 characters: amounts and times). */
static void line_text(const struct settle_line *l, char out[32])
{
	size_t n = l->n < 31 ? l->n : 31;
	memcpy(out, l->b, n);
	out[n] = '\0';
}

void settle_fen_text(int64_t fen, char out[32])
{
	settle_units_text(fen, 2, out);
}

void settle_units_text(int64_t minor, unsigned minor_units, char out[32])
{
	struct settle_line l = {.n = 0};
	settle_line_units(&l, minor, minor_units);
	line_text(&l, out);
}

void settle_utc_text(uint64_t us, char out[32])
{
	struct settle_line l = {.n = 0};
	settle_line_utc(&l, us);
	line_text(&l, out);
}


void settle_line_str(struct settle_line *l, const char *s)
{
	size_t n = strlen(s);
	if (n > sizeof(l->b) - l->n)
		n = sizeof(l->b) - l->n;
	memcpy(l->b + l->n, s, n);
	l->n += n;
}

void settle_line_chr(struct settle_line *l, char c)
{
	if (l->n < sizeof(l->b))
		l->b[l->n++] = c;
}

static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
				     "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
				     "8081828384858687888990919293949596979899";

/* Two digits at a time, in 32-bit arithmetic below 10^8: tokens and card numbers have 10 to 19 digits. */
void settle_line_u64(struct settle_line *l, uint64_t v)
{
	char t[24];
	int i = 24;
	while (v >= 100000000u) {
		uint32_t low = (uint32_t)(v % 100000000u);
		v /= 100000000u;
		for (int k = 0; k < 4; k++, low /= 100) {
			i -= 2;
			memcpy(t + i, digit_pairs + 2 * (low % 100), 2);
		}
	}
	uint32_t w = (uint32_t)v;
	while (w >= 100) {
		i -= 2;
		memcpy(t + i, digit_pairs + 2 * (w % 100), 2);
		w /= 100;
	}
	if (w >= 10) {
		i -= 2;
		memcpy(t + i, digit_pairs + 2 * w, 2);
	} else {
		t[--i] = (char)('0' + w);
	}
	size_t n = (size_t)(24 - i);
	if (n > sizeof(l->b) - l->n)
		n = sizeof(l->b) - l->n;
	memcpy(l->b + l->n, t + i, n);
	l->n += n;
}

void settle_line_i64(struct settle_line *l, int64_t v)
{
	if (v < 0) {
		settle_line_chr(l, '-');
		settle_line_u64(l, (uint64_t)0 - (uint64_t)v);
	} else {
		settle_line_u64(l, (uint64_t)v);
	}
}

void settle_line_hex(struct settle_line *l, uint64_t v, unsigned digits)
{
	static const char hexd[] = "0123456789abcdef";
	while (digits-- > 0)
		settle_line_chr(l, hexd[(v >> (4 * digits)) & 15]);
}

/* Minor units as the currency's units, to the minor unit: 2 decimals "-12.34", 0 "1234", 3 "1.234". */
void settle_line_units(struct settle_line *l, int64_t minor, unsigned minor_units)
{
	if (minor_units == 2) {
		settle_line_yuan(l, minor); /* the common case, kept as fast as it was */
		return;
	}
	uint64_t a = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor, scale = 1;
	for (unsigned i = 0; i < minor_units; i++)
		scale *= 10;
	if (minor < 0)
		settle_line_chr(l, '-');
	settle_line_u64(l, a / scale);
	if (minor_units == 0)
		return;
	settle_line_chr(l, '.');
	for (uint64_t d = scale / 10; d > 0; d /= 10)
		settle_line_chr(l, (char)('0' + a / d % 10));
}

void settle_line_yuan(struct settle_line *l, int64_t fen)
{
	uint64_t a = fen < 0 ? (uint64_t)0 - (uint64_t)fen : (uint64_t)fen;
	if (fen < 0)
		settle_line_chr(l, '-');
	settle_line_u64(l, a / 100);
	settle_line_chr(l, '.');
	settle_line_chr(l, (char)('0' + a % 100 / 10));
	settle_line_chr(l, (char)('0' + a % 10));
}

/* UTC, to the second; the civil date from the day number by arithmetic (H. Hinnant's days-to-civil). */
void settle_line_utc(struct settle_line *l, uint64_t us)
{
	int64_t secs = (int64_t)(us / 1000000u), z = secs / 86400 + 719468, sod = secs % 86400;
	int64_t era = z / 146097, doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
	int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9, y = yoe + era * 400 + (m <= 2);
	char b[20];
	memcpy(b, digit_pairs + 2 * (y / 100 % 100), 2);
	memcpy(b + 2, digit_pairs + 2 * (y % 100), 2);
	b[4] = '-';
	memcpy(b + 5, digit_pairs + 2 * m, 2);
	b[7] = '-';
	memcpy(b + 8, digit_pairs + 2 * d, 2);
	b[10] = 'T';
	memcpy(b + 11, digit_pairs + 2 * (sod / 3600), 2);
	b[13] = ':';
	memcpy(b + 14, digit_pairs + 2 * (sod / 60 % 60), 2);
	b[16] = ':';
	memcpy(b + 17, digit_pairs + 2 * (sod % 60), 2);
	b[19] = 'Z';
	size_t n = sizeof(b) <= sizeof(l->b) - l->n ? sizeof(b) : sizeof(l->b) - l->n;
	memcpy(l->b + l->n, b, n);
	l->n += n;
}

void settle_line_token(struct settle_line *l, uint8_t medium, uint32_t issuer, uint64_t token)
{
	if (medium == FARE_EPURSE) {
		settle_line_str(l, "epurse:");
		settle_line_u64(l, issuer);
		settle_line_chr(l, ':');
	} else {
		settle_line_str(l, medium == FARE_QUICKPASS ? "quickpass:" : "qr:");
	}
	settle_line_u64(l, token);
}

const char *settle_medium_name(uint8_t medium)
{
	return medium == FARE_QUICKPASS ? "quickpass" : medium == FARE_QR ? "qr" : "epurse";
}
