/*
 * field.c - the feed's fields: each value checked and converted, or a
 * problem recorded with file, line, column and field name.
 *
 * Numbers are parsed strictly (no leading space or sign where none is
 * meant, no wrap-around: "4294967312:00:00" is an error, not 16:00).
 * Amounts are decimal text turned into minor units of the feed's ISO 4217
 * currency with integer arithmetic only.
 */
#include "fare/load.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* --- the report */

static void report_add(struct loader *ld, const char *line)
{
	struct fare_feed_report *rep = ld->rep;
	if (rep->nerrors >= ld->errors_max) {
		rep->truncated = true;
		return;
	}
	size_t len = strlen(line), have = rep->text ? strlen(rep->text) : 0;
	if (have + len + 2 > ld->rep_cap) {
		size_t cap = ld->rep_cap ? ld->rep_cap * 2 : 4096;
		while (cap < have + len + 2)
			cap *= 2;
		char *t = realloc(rep->text, cap);
		if (!t)
			return; /* the count stays right; only the text is short */
		if (!rep->text)
			t[0] = '\0';
		rep->text = t;
		ld->rep_cap = cap;
	}
	memcpy(rep->text + have, line, len);
	rep->text[have + len] = '\n';
	rep->text[have + len + 1] = '\0';
	rep->nerrors++;
}

int fare_fail(struct loader *ld, uint32_t line, int col, const char *fmt, ...)
{
	char msg[FARE_ERR_MAX], out[FARE_ERR_MAX + 600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	const char *colname = col > 0 && (uint32_t)col <= ld->t.ncols ? ld->t.header[col - 1] : NULL;
	if (colname)
		snprintf(out, sizeof(out), "%s:%u:%d: %s: %s", ld->path, line, col, colname, msg);
	else
		snprintf(out, sizeof(out), "%s:%u:%d: %s", ld->path, line, col, msg);
	report_add(ld, out);
	return FARE_ERR_FEED;
}

int fare_fail_line(struct loader *ld, const char *line)
{
	report_add(ld, line);
	return FARE_ERR_FEED;
}

int fare_fail_feed(struct loader *ld, const char *fmt, ...)
{
	char msg[FARE_ERR_MAX], out[FARE_ERR_MAX + 600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(out, sizeof(out), "%s:0:0: %s", ld->label, msg);
	report_add(ld, out);
	return FARE_ERR_FEED;
}

/* --- values */

const char *fare_field(const struct csv_row *r, int c)
{
	return c >= 0 && (uint32_t)c < r->nfields ? r->fields[c] : "";
}

bool fare_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	if (!((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9')))
		return false; /* strtoll would take " 2" and "+2" */
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Decimal text to minor units: "2" "2.0" "2.00" "-1.00" "0.01"; at most `units` decimals (extra zeros allowed). */
static bool parse_amount(const char *s, unsigned units, int64_t *out, const char **why)
{
	bool neg = *s == '-';
	const char *p = s + neg;
	int64_t whole = 0, frac = 0;
	unsigned digits = 0, decimals = 0;
	*why = "not a decimal amount";
	for (; *p >= '0' && *p <= '9'; p++, digits++) {
		if (whole > 100000000000LL)
			return (*why = "too large"), false;
		whole = whole * 10 + (*p - '0');
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, decimals++)
			if (decimals < units)
				frac = frac * 10 + (*p - '0');
			else if (*p != '0')
				return (*why = "has more decimals than the currency's minor units"), false;
	}
	if (*p || digits == 0)
		return false;
	int64_t scale = 1;
	for (unsigned i = 0; i < units; i++)
		scale *= 10;
	for (unsigned i = decimals; i < units; i++)
		frac *= 10;
	*out = (neg ? -1 : 1) * (whole * scale + frac);
	return true;
}

/* HH:MM:SS with at most two digits for minutes and seconds and hours up to 24. */
bool fare_parse_time(const char *s, int32_t *sec)
{
	unsigned v[3] = {0}, k = 0, digits = 0;
	for (const char *p = s;; p++) {
		if (*p >= '0' && *p <= '9') {
			if (++digits > 2)
				return false;
			v[k] = v[k] * 10 + (unsigned)(*p - '0');
		} else if ((*p == ':' && k < 2) || (*p == '\0' && k == 2)) {
			if (digits == 0)
				return false;
			if (*p == '\0')
				break;
			k++;
			digits = 0;
		} else {
			return false;
		}
	}
	if (v[1] > 59 || v[2] > 59 || v[0] > 24)
		return false;
	*sec = (int32_t)(v[0] * 3600 + v[1] * 60 + v[2]);
	return *sec <= 86400;
}

bool fare_parse_date(const char *s, uint32_t *date)
{
	int64_t v;
	if (strlen(s) != 8 || !fare_parse_i64(s, 10000101, 99991231, &v) || !fare_date_valid((uint32_t)v))
		return false;
	*date = (uint32_t)v;
	return true;
}

/* ISO 4217 (2024): every active code; those without 2 minor units are listed by their units. */
static const char currencies_2[] =
	"AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD "
	"CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL "
	"GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD "
	"LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN "
	"PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL "
	"THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL";
static const char currencies_0[] = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF";
static const char currencies_3[] = "BHD IQD JOD KWD LYD OMR TND";
static const char currencies_4[] = "CLF UYW";

static bool in_list(const char *list, const char *code)
{
	for (const char *p = list; *p; p += p[3] ? 4 : 3)
		if (memcmp(p, code, 3) == 0)
			return true;
	return false;
}

int fare_currency_minor_units(const char *code)
{
	if (strlen(code) != 3)
		return -1;
	if (in_list(currencies_2, code))
		return 2;
	if (in_list(currencies_0, code))
		return 0;
	if (in_list(currencies_3, code))
		return 3;
	return in_list(currencies_4, code) ? 4 : -1;
}

/* --- per-field checks that fill a value or record a problem at the row's position */

int fare_get_int(struct loader *ld, const struct csv_row *r, int c, int64_t min, int64_t max, bool required, int64_t dflt,
	    int64_t *out)
{
	const char *s = fare_field(r, c);
	if (!*s) {
		if (required)
			return fare_fail(ld, r->line, c + 1, "required value is empty");
		*out = dflt;
		return 0;
	}
	if (!fare_parse_i64(s, min, max, out))
		return fare_fail(ld, r->line, c + 1, "\"%s\" is not an integer in %lld .. %lld", s, (long long)min,
			    (long long)max);
	return 0;
}

static int amount_of(struct loader *ld, const struct csv_row *r, int c, int64_t *v)
{
	const char *s = fare_field(r, c), *why;
	if (!*s)
		return fare_fail(ld, r->line, c + 1, "required amount is empty");
	if (!parse_amount(s, ld->f->minor_units, v, &why))
		return fare_fail(ld, r->line, c + 1, "\"%s\" %s", s, why);
	return 0;
}

int fare_get_amount(struct loader *ld, const struct csv_row *r, int c, bool allow_negative, int32_t *out)
{
	int64_t v;
	int rc;
	if ((rc = amount_of(ld, r, c, &v)) != 0)
		return rc;
	if (v < 0 && !allow_negative)
		return fare_fail(ld, r->line, c + 1, "\"%s\" must not be negative", fare_field(r, c));
	if (v > INT32_MAX || v < -INT32_MAX)
		return fare_fail(ld, r->line, c + 1, "\"%s\" is too large", fare_field(r, c));
	*out = (int32_t)v;
	return 0;
}

int fare_get_amount64(struct loader *ld, const struct csv_row *r, int c, int64_t *out)
{
	int rc;
	if ((rc = amount_of(ld, r, c, out)) != 0)
		return rc;
	return *out < 0 ? fare_fail(ld, r->line, c + 1, "\"%s\" must not be negative", fare_field(r, c)) : 0;
}

int fare_get_ref(struct loader *ld, const struct csv_row *r, int c, const struct fare_ids *ids, const char *what,
	    bool required, int32_t *out)
{
	const char *s = fare_field(r, c);
	*out = -1;
	if (!*s)
		return required ? fare_fail(ld, r->line, c + 1, "required value is empty") : 0;
	if ((*out = fare_ids_find(ids, s)) < 0)
		return fare_fail(ld, r->line, c + 1, "unknown %s \"%s\"", what, s);
	return 0;
}

int fare_get_new_id(struct loader *ld, const struct csv_row *r, int c, struct fare_ids *ids, int32_t *out)
{
	const char *s = fare_field(r, c);
	if (!*s)
		return fare_fail(ld, r->line, c + 1, "required id is empty");
	int32_t i = fare_ids_add(ids, s);
	if (i == -2)
		return FARE_ERR_NOMEM;
	if (i < 0)
		return fare_fail(ld, r->line, c + 1, "duplicate id \"%s\"", s);
	if (out)
		*out = i;
	return 0;
}

int fare_get_date(struct loader *ld, const struct csv_row *r, int c, uint32_t *out)
{
	if (!fare_parse_date(fare_field(r, c), out))
		return fare_fail(ld, r->line, c + 1, "\"%s\" is not a date YYYYMMDD", fare_field(r, c));
	return 0;
}

int fare_get_dates(struct loader *ld, const struct csv_row *r, int cs, int ce, uint32_t *start, uint32_t *end)
{
	int rc;
	if ((rc = fare_get_date(ld, r, cs, start)) != 0)
		return rc;
	if ((rc = fare_get_date(ld, r, ce, end)) != 0)
		return rc;
	return *end < *start ? fare_fail(ld, r->line, ce + 1, "end_date is before start_date") : 0;
}

void *fare_grow(void *p, uint32_t n, size_t size)
{
	if (n != 0 && (n < 8 || (n & (n - 1))))
		return p; /* capacity: 8, then doubles at each power of two */
	return realloc(p, (n ? 2 * (size_t)n : 8) * size);
}
