/*
 * clock.c - business days, local times, and taps decoded from the log.
 *
 * Local time comes from the system's time zone database (localtime_r with TZ
 * set), so the zone is configurable and DST-correct where a zone has DST.
 * localtime_r is slow next to the rest of rating, so the UTC offset is
 * cached per hour of UTC time (offsets only change on hour boundaries in
 * every zone tapgate serves).
 */
#include "fare/internal.h"
#include "proto/proto.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The process's TZ, switched only when a clock of another zone misses its cache (rarely: once an hour of
 * UTC time per clock). */
static void use_zone(const char *tz)
{
	static char current[64];
	if (strcmp(current, tz) == 0)
		return;
	snprintf(current, sizeof(current), "%s", tz);
	setenv("TZ", tz, 1);
	tzset();
}

int fare_clock_init(struct fare_clock *c, const char *tz, const char *cutoff)
{
	unsigned h, m;
	char tail;
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < sizeof(c->cache) / sizeof(c->cache[0]); i++)
		c->cache[i].hour = INT64_MIN;
	if (sscanf(cutoff, "%u:%u%c", &h, &m, &tail) != 2 || h > 23 || m > 59)
		return FARE_ERR_INVALID;
	c->cutoff_s = (int32_t)(h * 3600 + m * 60);
	char path[512];
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
	if (!*tz || strlen(tz) >= sizeof(c->tz) || strstr(tz, "..") || access(path, R_OK) != 0)
		return FARE_ERR_TZ;
	snprintf(c->tz, sizeof(c->tz), "%s", tz);
	use_zone(c->tz);
	return 0;
}

static int32_t offset_s(struct fare_clock *c, int64_t t)
{
	int64_t hour = t >= 0 ? t / 3600 : (t - 3599) / 3600;
	size_t slot = (size_t)hour & (sizeof(c->cache) / sizeof(c->cache[0]) - 1);
	if (c->cache[slot].hour != hour) {
		time_t tt = (time_t)(hour * 3600);
		use_zone(c->tz);
		struct tm tm;
		localtime_r(&tt, &tm);
		c->cache[slot].hour = hour;
		c->cache[slot].offset_s = (int32_t)tm.tm_gmtoff;
	}
	return c->cache[slot].offset_s;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a >= 0 ? a / b : -((-a + b - 1) / b);
}

uint32_t fare_clock_day(struct fare_clock *c, uint64_t time_us)
{
	int64_t t = (int64_t)(time_us / 1000000u);
	int64_t local = t + offset_s(c, t) - c->cutoff_s;
	return fare_date_from_days(floor_div(local, 86400));
}

void fare_clock_local(struct fare_clock *c, uint64_t time_us, uint32_t *sec_of_day, uint32_t *date,
		      unsigned *weekday)
{
	int64_t t = (int64_t)(time_us / 1000000u);
	int64_t local = t + offset_s(c, t);
	int64_t days = floor_div(local, 86400);
	*sec_of_day = (uint32_t)(local - days * 86400);
	*date = fare_date_from_days(days);
	*weekday = (unsigned)((days % 7 + 7 + 3) % 7); /* 1970-01-01 was a Thursday (3) */
}

uint64_t fare_clock_utc_us(struct fare_clock *c, uint32_t date, uint32_t sec_of_day)
{
	int64_t local = fare_days_from_date(date) * 86400 + sec_of_day;
	int64_t t = local - offset_s(c, local); /* offset at the guess, then corrected once */
	t = local - offset_s(c, t);
	return (uint64_t)t * 1000000u;
}

int fare_tap_from_log(struct fare_clock *c, uint64_t seq, const struct st_tap_meta *meta, const uint8_t *record,
		      struct fare_tap *t)
{
	struct fp_tap tap;
	int rc = fp_tap_stored(meta, record, &tap);
	if (rc != 0)
		return rc;
	memset(t, 0, sizeof(*t));
	t->seq = seq;
	t->time_us = tap.tap_time_us;
	t->stop_id = tap.stop_id;
	t->route_id = meta->route_id;
	t->operator_id = meta->operator_id;
	t->amount_fen = tap.amount_fen;
	t->medium = tap.medium;
	t->kind = tap.kind;
	t->category = tap.category;
	switch (tap.medium) {
	case FP_MEDIUM_EPURSE:
		t->token_id = tap.u.epurse.card_number;
		t->issuer = tap.u.epurse.issuer_code;
		t->ctc = tap.u.epurse.ctc;
		t->balance_before_fen = tap.u.epurse.balance_before_fen;
		t->balance_after_fen = tap.u.epurse.balance_after_fen;
		break;
	case FP_MEDIUM_QUICKPASS:
		t->token_id = tap.u.quickpass.account_token;
		break;
	default:
		t->token_id = tap.u.qr.account_token;
		break;
	}
	t->day = fare_clock_day(c, t->time_us);
	return 0;
}

int fare_day_parse(const char *s, uint32_t *day)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*end || strlen(s) != 8 || v < 19700101 || v > 99991231 || v % 100 == 0 || v / 100 % 100 == 0 ||
	    v / 100 % 100 > 12 || v % 100 > 31)
		return -1;
	*day = (uint32_t)v;
	return 0;
}

int fare_token_parse(const char *s, uint8_t *medium, uint32_t *issuer, uint64_t *token_id)
{
	unsigned long long a, b;
	char tail;
	*issuer = 0;
	if (sscanf(s, "epurse:%llu:%llu%c", &a, &b, &tail) == 2 && a <= UINT32_MAX) {
		*medium = FARE_EPURSE;
		*issuer = (uint32_t)a;
		*token_id = b;
		return 0;
	}
	if (sscanf(s, "quickpass:%llu%c", &a, &tail) == 1) {
		*medium = FARE_QUICKPASS;
		*token_id = a;
		return 0;
	}
	if (sscanf(s, "qr:%llu%c", &a, &tail) == 1) {
		*medium = FARE_QR;
		*token_id = a;
		return 0;
	}
	return -1;
}

void fare_token_format(uint8_t medium, uint32_t issuer, uint64_t token_id, char *out, size_t cap)
{
	if (medium == FARE_EPURSE)
		snprintf(out, cap, "epurse:%u:%llu", issuer, (unsigned long long)token_id);
	else
		snprintf(out, cap, "%s:%llu", medium == FARE_QUICKPASS ? "quickpass" : "qr",
			 (unsigned long long)token_id);
}

const char *fare_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case FARE_ERR_FEED: return "invalid fare feed";
	case FARE_ERR_NOMEM: return "out of memory";
	case FARE_ERR_STORE: return "store error";
	case FARE_ERR_INVALID: return "invalid argument";
	case FARE_ERR_VERSION: return "feed version not in the rated store";
	case FARE_ERR_TZ: return "unknown time zone";
	case FARE_ERR_FULL: return "rated store full (disk full): free space and run again";
	case FARE_ERR_LOG: return "the gateway's log is not sound";
	default: return "unknown error";
	}
}
