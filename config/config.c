/*
 * config.c - the gateway's settings as a table.
 *
 * Each row names a key (section.name), its kind, bounds, default and the
 * field it sets, so that the documentation (config/tapgate.conf), the
 * defaults and the checks cannot drift apart: adding a setting is adding a
 * row. The file format is INI, parsed by the inih library; this file only
 * converts and checks values. A bad value stops the gateway with a message
 * naming the file, line and key, because a gateway that guesses what its
 * operator meant can lose or double-charge taps.
 */
#include "config/config.h"
#include "base/assert.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum cfg_kind { KIND_U32, KIND_U64, KIND_STRING, KIND_ENUM, KIND_HEX32, KIND_IPV4, KIND_MAC };

struct cfg_row {
	const char *section;
	const char *name;
	enum cfg_kind kind;
	size_t offset;
	size_t size;       /* strings: buffer size */
	uint64_t min, max; /* numbers */
	const char *def;   /* default as text, parsed like a file value */
	const char *const *names; /* enums: NULL-terminated, index = value */
	bool required;
	bool reload; /* a running gateway puts a new value in force on SIGHUP */
};

static const char *const ingress_names[] = {"io_uring", "recvmmsg", "dpdk", NULL};
static const char *const switch_names[] = {"off", "on", NULL};
static const char *const sync_names[] = {"full", "nometasync", "none", NULL};
static const char *const qr_verify_names[] = {"before_ack", "after_commit", NULL};

#define NAMES_COUNT(a) (sizeof(a) / sizeof((a)[0]) - 1) /* without the NULL */
static_assert(NAMES_COUNT(ingress_names) == CFG_INGRESS_DPDK + 1, "a name for every enum cfg_ingress, in order");
static_assert(NAMES_COUNT(sync_names) == CFG_SYNC_NONE + 1, "a name for every enum cfg_sync, in order");
static_assert(NAMES_COUNT(qr_verify_names) == CFG_QR_VERIFY_AFTER_COMMIT + 1, "a name for every enum cfg_qr_verify");

#define FIELD(f) offsetof(struct cfg, f), sizeof(((struct cfg *)0)->f)

static const struct cfg_row rows[] = {
	{"gateway", "listen_address", KIND_STRING, FIELD(listen_address), 0, 0, "127.0.0.1", NULL, false, false},
	{"gateway", "listen_port", KIND_U32, FIELD(listen_port), 1, 65535, "7700", NULL, false, false},
	{"gateway", "ingress", KIND_ENUM, FIELD(ingress), 0, 0, "io_uring", ingress_names, false, false},
	{"gateway", "metrics_address", KIND_STRING, FIELD(metrics_address), 0, 0, "127.0.0.1", NULL, false, false},
	{"gateway", "metrics_port", KIND_U32, FIELD(metrics_port), 0, 65535, "9700", NULL, false, false},
	{"gateway", "log_file", KIND_STRING, FIELD(log_file), 0, 0, "-", NULL, false, true},
	{"gateway", "stop_timeout_s", KIND_U32, FIELD(stop_timeout_s), 1, 3600, "30", NULL, false, false},
	{"gateway", "verify_threads", KIND_U32, FIELD(verify_threads), 0, 64, "0", NULL, false, false},
	{"gateway", "shed_backlog_ms", KIND_U32, FIELD(shed_backlog_ms), 0, 10000, "100", NULL, false, false},
	{"gateway", "qr_verify", KIND_ENUM, FIELD(qr_verify), 0, 0, "before_ack", qr_verify_names, false, false},
	{"store", "path", KIND_STRING, FIELD(store_path), 0, 0, "var/store", NULL, false, false},
	{"store", "map_size_mb", KIND_U64, FIELD(map_size_mb), 1, 1u << 24, "1024", NULL, false, false},
	{"store", "sync", KIND_ENUM, FIELD(sync), 0, 0, "full", sync_names, false, false},
	{"store", "commit_batch_taps", KIND_U32, FIELD(commit_batch_taps), 1, 65536, "4096", NULL, false, false},
	{"store", "commit_interval_us", KIND_U32, FIELD(commit_interval_us), 0, 1000000, "200", NULL, false, false},
	{"store", "ring_frames", KIND_U32, FIELD(ring_frames), 64, 1u << 20, "16384", NULL, false, false},
	{"dedup", "window_days", KIND_U32, FIELD(dedup_window_days), 1, 365, "14", NULL, false, false},
	{"dedup", "taps_max", KIND_U64, FIELD(dedup_taps_max), 1024, 1ull << 32, "8388608", NULL, false, false},
	{"dedup", "clock_skew_s", KIND_U32, FIELD(clock_skew_s), 0, 86400, "300", NULL, false, false},
	{"taps", "amount_fen_max", KIND_U32, FIELD(amount_fen_max), 1, 100000000, "100000", NULL, false, false},
	{"keys", "validator_key_file", KIND_STRING, FIELD(validator_key_file), 0, 0, "config/dev-validators.keys", NULL, false, true},
	{"keys", "qr_platform_public_key", KIND_HEX32, FIELD(qr_public_key), 0, 0, NULL, NULL, true, true},
	{"dpdk", "eal_args", KIND_STRING, FIELD(dpdk_eal_args), 0, 0,
	 "-l 0,1 --no-huge -m 512 --no-pci --file-prefix tapgate --vdev=net_tap0,iface=tapgate0", NULL, false, false},
	{"dpdk", "port", KIND_STRING, FIELD(dpdk_port), 0, 0, "net_tap0", NULL, false, false},
	{"dpdk", "lcore", KIND_U32, FIELD(dpdk_lcore), 0, 1023, "1", NULL, false, false},
	{"dpdk", "address", KIND_IPV4, FIELD(dpdk_address), 0, 0, "10.77.0.2", NULL, false, false},
	{"dpdk", "mac", KIND_MAC, FIELD(dpdk_mac), 0, 0, "port", NULL, false, false},
	{"dpdk", "udp_port", KIND_U32, FIELD(dpdk_udp_port), 1, 65535, "7700", NULL, false, false},
	{"dpdk", "rx_descriptors", KIND_U32, FIELD(dpdk_rx_descriptors), 64, 16384, "1024", NULL, false, false},
	{"dpdk", "tx_descriptors", KIND_U32, FIELD(dpdk_tx_descriptors), 64, 16384, "1024", NULL, false, false},
	{"dpdk", "mbufs", KIND_U32, FIELD(dpdk_mbufs), 1023, 4194303, "16383", NULL, false, false},
	{"dpdk", "idle_sleep_us", KIND_U32, FIELD(dpdk_idle_sleep_us), 0, 100000, "0", NULL, false, false},
	{"dpdk", "icmp_echo", KIND_ENUM, FIELD(dpdk_icmp_echo), 0, 0, "on", switch_names, false, false},
	{"fares", "feed", KIND_STRING, FIELD(fares_feed), 0, 0, "config/fares-demo", NULL, false, false},
	{"fares", "rated_path", KIND_STRING, FIELD(fares_rated_path), 0, 0, "var/rated", NULL, false, false},
	{"fares", "timezone", KIND_STRING, FIELD(fares_timezone), 0, 0, "Asia/Shanghai", NULL, false, false},
	{"fares", "day_cutoff", KIND_STRING, FIELD(fares_day_cutoff), 0, 0, "04:30", NULL, false, false},
	{"fares", "grace_s", KIND_U32, FIELD(fares_grace_s), 0, 604800, "7200", NULL, false, false},
	{"settle", "path", KIND_STRING, FIELD(settle_path), 0, 0, "var/settle", NULL, false, false},
	{"settle", "outbox", KIND_STRING, FIELD(settle_outbox), 0, 0, "var/outbox", NULL, false, false},
	{"settle", "counterparties", KIND_STRING, FIELD(settle_counterparties), 0, 0, "config/counterparties.conf", NULL, false, false},
	{"settle", "poll_s", KIND_U32, FIELD(settle_poll_s), 1, 3600, "10", NULL, false, false},
	{"settle", "write_off_fen", KIND_U32, FIELD(settle_write_off_fen), 0, 100000000, "500", NULL, false, false},
	{"settle", "retry_count", KIND_U32, FIELD(settle_retry_count), 0, 30, "3", NULL, false, false},
	{"settle", "retry_days", KIND_U32, FIELD(settle_retry_days), 1, 30, "2", NULL, false, false},
	{"settle", "secret_file", KIND_STRING, FIELD(settle_secret_file), 0, 0, "config/dev-settle.key", NULL, false, false},
};
#define ROWS_COUNT (sizeof(rows) / sizeof(rows[0]))

static const struct cfg_row *row_find(const char *section, const char *name)
{
	for (size_t i = 0; i < ROWS_COUNT; i++)
		if (strcmp(rows[i].section, section) == 0 && strcmp(rows[i].name, name) == 0)
			return &rows[i];
	return NULL;
}

int cfg_hex_decode(const char *hex, uint8_t *out, size_t out_len)
{
	if (strlen(hex) != out_len * 2)
		return -1;
	for (size_t i = 0; i < out_len; i++) {
		unsigned v;
		char pair[3] = {hex[2 * i], hex[2 * i + 1], 0};
		char *end;
		v = (unsigned)strtoul(pair, &end, 16);
		if (*end != 0 || pair[0] == '+' || pair[0] == '-' || pair[0] == ' ')
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

static int parse_number(const struct cfg_row *r, const char *value, uint64_t *out, char *why,
			size_t why_len)
{
	char *end;
	if (value[0] == '-' || value[0] == 0) {
		snprintf(why, why_len, "'%s' is not a whole number from %" PRIu64 " to %" PRIu64,
			 value, r->min, r->max);
		return CFG_ERR_VALUE;
	}
	errno = 0;
	unsigned long long v = strtoull(value, &end, 10);
	if (errno != 0 || *end != 0 || v < r->min || v > r->max) {
		snprintf(why, why_len, "'%s' is not a whole number from %" PRIu64 " to %" PRIu64,
			 value, r->min, r->max);
		return CFG_ERR_VALUE;
	}
	*out = v;
	return 0;
}

static int parse_enum(const struct cfg_row *r, const char *value, uint32_t *out, char *why,
		      size_t why_len)
{
	size_t used = 0;
	for (uint32_t i = 0; r->names[i]; i++) {
		if (strcmp(r->names[i], value) == 0) {
			*out = i;
			return 0;
		}
	}
	used += (size_t)snprintf(why, why_len, "'%s' is not one of:", value);
	for (uint32_t i = 0; r->names[i] && used < why_len; i++)
		used += (size_t)snprintf(why + used, why_len - used, " %s", r->names[i]);
	return CFG_ERR_VALUE;
}

/* Convert value and store it in the row's field. Returns 0 or CFG_ERR_VALUE with why. */
static int row_apply(struct cfg *c, const struct cfg_row *r, const char *value, char *why,
		     size_t why_len)
{
	uint8_t *field = (uint8_t *)c + r->offset;
	uint64_t number;
	uint32_t index;
	int err = 0;

	switch (r->kind) {
	case KIND_U32:
	case KIND_U64:
		err = parse_number(r, value, &number, why, why_len);
		if (err == 0 && r->kind == KIND_U32) {
			uint32_t n32 = (uint32_t)number;
			memcpy(field, &n32, sizeof(n32));
		} else if (err == 0) {
			memcpy(field, &number, sizeof(number));
		}
		return err;
	case KIND_STRING:
		if (value[0] == 0 || strlen(value) >= r->size) {
			snprintf(why, why_len, "must be 1 to %zu characters", r->size - 1);
			return CFG_ERR_VALUE;
		}
		memcpy(field, value, strlen(value) + 1);
		return 0;
	case KIND_ENUM:
		err = parse_enum(r, value, &index, why, why_len);
		if (err == 0)
			memcpy(field, &index, sizeof(index));
		return err;
	case KIND_IPV4: {
		struct in_addr a;
		if (strlen(value) >= r->size || inet_pton(AF_INET, value, &a) != 1) {
			snprintf(why, why_len, "'%s' is not an IPv4 address (a.b.c.d)", value);
			return CFG_ERR_VALUE;
		}
		memcpy(field, value, strlen(value) + 1);
		return 0;
	}
	case KIND_MAC: {
		unsigned b[6];
		char tail;
		if (strcmp(value, "port") != 0 &&
		    (strlen(value) != 17 || sscanf(value, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2],
						    &b[3], &b[4], &b[5], &tail) != 6)) {
			snprintf(why, why_len, "'%s' is not 'port' or an Ethernet address (xx:xx:xx:xx:xx:xx)", value);
			return CFG_ERR_VALUE;
		}
		memcpy(field, value, strlen(value) + 1);
		return 0;
	}
	case KIND_HEX32:
		if (cfg_hex_decode(value, field, r->size) != 0) {
			snprintf(why, why_len, "must be %zu hexadecimal digits", r->size * 2);
			return CFG_ERR_VALUE;
		}
		return 0;
	}
	return CFG_ERR_VALUE;
}

/*
 * What every row of the table promises the code that reads it (a broken
 * promise is a programmer error, found at the first cfg_defaults): its field
 * lies inside struct cfg and has the size its kind writes, numbers have
 * min <= max within their width, enums and only enums have names, a row
 * without a default is required, and no key is in the table twice.
 */
static void rows_check(void)
{
	for (size_t i = 0; i < ROWS_COUNT; i++) {
		const struct cfg_row *r = &rows[i];
		TG_ASSERT(r->section != NULL && r->name != NULL);
		TG_ASSERT(r->offset + r->size <= sizeof(struct cfg));
		TG_ASSERT((r->kind == KIND_ENUM) == (r->names != NULL));
		TG_ASSERT(r->def != NULL || r->required);
		switch (r->kind) {
		case KIND_U32: TG_ASSERT(r->size == sizeof(uint32_t) && r->min <= r->max && r->max <= UINT32_MAX); break;
		case KIND_U64: TG_ASSERT(r->size == sizeof(uint64_t) && r->min <= r->max); break;
		case KIND_ENUM: TG_ASSERT(r->size == sizeof(uint32_t)); break;
		case KIND_HEX32: TG_ASSERT(r->size == 32); break;
		case KIND_STRING: case KIND_IPV4: case KIND_MAC: TG_ASSERT(r->size >= 2); break;
		}
		for (size_t j = 0; j < i; j++)
			TG_ASSERT(strcmp(rows[j].section, r->section) != 0 || strcmp(rows[j].name, r->name) != 0);
	}
}

void cfg_defaults(struct cfg *c)
{
	char why[CFG_ERR_MAX];
	rows_check();
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < ROWS_COUNT; i++) {
		if (rows[i].def == NULL)
			continue;
		/* A default that does not pass its own row is a programmer error. */
		if (row_apply(c, &rows[i], rows[i].def, why, sizeof(why)) != 0) {
			fprintf(stderr, "config: bad default for %s.%s: %s\n", rows[i].section,
				rows[i].name, why);
			abort();
		}
	}
}

struct load_state {
	struct cfg *c;
	const char *path;
	int err;
	char *msg;
	size_t msg_len;
	char why[CFG_ERR_MAX];
};

static int on_ini_value(void *user, const char *section, const char *name, const char *value)
{
	struct load_state *s = user;
	const struct cfg_row *r = row_find(section, name);
	int err;

	if (r == NULL) {
		snprintf(s->why, sizeof(s->why), "unknown key '%s.%s'", section, name);
		err = CFG_ERR_KEY;
	} else {
		char why[CFG_ERR_MAX / 2];
		err = row_apply(s->c, r, value, why, sizeof(why));
		if (err != 0)
			snprintf(s->why, sizeof(s->why), "key '%s.%s': %s", section, name, why);
	}
	if (err != 0 && s->err == 0) {
		s->err = err;
		return 0; /* inih reports this line's number */
	}
	return 1;
}

int cfg_load(struct cfg *c, const char *path, char *err, size_t err_len)
{
	struct load_state s = {.c = c, .path = path, .err = 0};
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, err_len, "%s: cannot read: %s", path, strerror(errno));
		return CFG_ERR_OPEN;
	}
	int line = ini_parse_file(f, on_ini_value, &s);
	fclose(f);
	if (line == 0)
		return 0;
	if (s.err == 0) {
		snprintf(err, err_len, "%s:%d: syntax error (expected [section] or key = value)",
			 path, line);
		return CFG_ERR_SYNTAX;
	}
	snprintf(err, err_len, "%s:%d: %s", path, line, s.why);
	return s.err;
}

struct line_find {
	const char *section, *name;
};

/* inih's handler: an "error" at the key sought makes inih return its line. */
static int on_line_find(void *user, const char *section, const char *name, const char *value)
{
	const struct line_find *f = user;
	(void)value;
	return !(strcmp(section, f->section) == 0 && strcmp(name, f->name) == 0);
}

int cfg_key_line(const char *path, const char *section, const char *name)
{
	struct line_find f = {section, name};
	int line = ini_parse(path, on_line_find, &f);
	return line > 0 ? line : 0;
}

void cfg_key_origin(const char *path, const char *const *sets, unsigned nsets, const char *section,
		    const char *name, char *out, size_t out_len)
{
	size_t ns = strlen(section), nn = strlen(name);
	for (unsigned i = nsets; i-- > 0;) {
		const char *a = sets[i];
		if (strncmp(a, section, ns) == 0 && a[ns] == '.' && strncmp(a + ns + 1, name, nn) == 0 &&
		    a[ns + 1 + nn] == '=') {
			snprintf(out, out_len, "command line: key '%s.%s'", section, name);
			return;
		}
	}
	int line = cfg_key_line(path, section, name);
	if (line > 0)
		snprintf(out, out_len, "%s:%d: key '%s.%s'", path, line, section, name);
	else
		snprintf(out, out_len, "%s: key '%s.%s' (its default)", path, section, name);
}

int cfg_set(struct cfg *c, const char *assignment, char *err, size_t err_len)
{
	char section[64], name[64], why[CFG_ERR_MAX / 2];
	const char *dot = strchr(assignment, '.');
	const char *eq = strchr(assignment, '=');
	if (dot == NULL || eq == NULL || dot > eq || (size_t)(dot - assignment) >= sizeof(section) ||
	    (size_t)(eq - dot - 1) >= sizeof(name)) {
		snprintf(err, err_len, "'%s': expected section.key=value", assignment);
		return CFG_ERR_SYNTAX;
	}
	snprintf(section, sizeof(section), "%.*s", (int)(dot - assignment), assignment);
	snprintf(name, sizeof(name), "%.*s", (int)(eq - dot - 1), dot + 1);
	const struct cfg_row *r = row_find(section, name);
	if (r == NULL) {
		snprintf(err, err_len, "unknown key '%s.%s'", section, name);
		return CFG_ERR_KEY;
	}
	int rc = row_apply(c, r, eq + 1, why, sizeof(why));
	if (rc != 0)
		snprintf(err, err_len, "key '%s.%s': %s", section, name, why);
	return rc;
}

int cfg_validate(const struct cfg *c, char *err, size_t err_len)
{
	static const uint8_t zero[32];
	if (memcmp(c->qr_public_key, zero, sizeof(zero)) == 0) {
		snprintf(err, err_len, "key 'keys.qr_platform_public_key' is required");
		return CFG_ERR_MISSING;
	}
	if ((c->ring_frames & (c->ring_frames - 1)) != 0) {
		snprintf(err, err_len, "key 'store.ring_frames': %u is not a power of two",
			 c->ring_frames);
		return CFG_ERR_VALUE;
	}
	return 0;
}

static bool row_differs(const struct cfg *a, const struct cfg *b, const struct cfg_row *r)
{
	const char *fa = (const char *)a + r->offset, *fb = (const char *)b + r->offset;
	switch (r->kind) {
	case KIND_STRING:
	case KIND_IPV4:
	case KIND_MAC:
		return strcmp(fa, fb) != 0; /* bytes after the terminator may differ */
	default:
		return memcmp(fa, fb, r->size) != 0;
	}
}

unsigned cfg_diff(const struct cfg *a, const struct cfg *b, cfg_diff_fn fn, void *arg)
{
	unsigned n = 0;
	for (size_t i = 0; i < ROWS_COUNT; i++) {
		if (!row_differs(a, b, &rows[i]))
			continue;
		n++;
		if (fn != NULL)
			fn(arg, rows[i].section, rows[i].name, rows[i].reload);
	}
	return n;
}

void cfg_print(const struct cfg *c, void *file)
{
	FILE *f = file;
	const char *section = "";
	for (size_t i = 0; i < ROWS_COUNT; i++) {
		const struct cfg_row *r = &rows[i];
		const uint8_t *field = (const uint8_t *)c + r->offset;
		uint32_t u32;
		uint64_t u64;
		if (strcmp(section, r->section) != 0)
			fprintf(f, "%s[%s]\n", i ? "\n" : "", r->section);
		section = r->section;
		fprintf(f, "%s = ", r->name);
		switch (r->kind) {
		case KIND_U32:
			memcpy(&u32, field, sizeof(u32));
			fprintf(f, "%" PRIu32 "\n", u32);
			break;
		case KIND_U64:
			memcpy(&u64, field, sizeof(u64));
			fprintf(f, "%" PRIu64 "\n", u64);
			break;
		case KIND_STRING:
		case KIND_IPV4:
		case KIND_MAC:
			fprintf(f, "%s\n", (const char *)field);
			break;
		case KIND_ENUM:
			memcpy(&u32, field, sizeof(u32));
			fprintf(f, "%s\n", r->names[u32]);
			break;
		case KIND_HEX32:
			for (size_t b = 0; b < r->size; b++)
				fprintf(f, "%02x", field[b]);
			fprintf(f, "\n");
			break;
		}
	}
}
