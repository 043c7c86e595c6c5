/*
 * keys.c - the validators' MAC keys, loaded once, looked up per frame.
 *
 * The key file is INI read with inih: section [validator_keys], one line per
 * key, "VALIDATOR_ID/KEY_ID = 64 hex digits". A validator may hold up to
 * FP_KEYS_PER_VALIDATOR_MAX keys at once so that keys can be rotated: the
 * validator names the key id it used in every frame. Lookup is one probe
 * sequence in an open-addressing table sized at load time.
 *
 * The file is a secret: it must be a regular file that only its owner can
 * read (proc_secret_open), and no key may be all zeros (a placeholder left
 * in a template, which anyone could compute MACs with).
 */
#include "proto/proto.h"
#include "proc/proc.h"

#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The shortest line a key can take: "1/0=" and 64 hex digits, and a newline. */
#define KEY_LINE_BYTES_MIN (4u + 2u * FP_KEY_BYTES + 1u)
#define KEY_SLOTS_MIN 16u
#define KEY_SLOTS_MAX (2u * FP_VALIDATORS_MAX) /* the table is at most half full */
/* A file with a line per key of every validator allowed, and as much again of comments. */
#define KEY_FILE_BYTES_MAX (2ull * FP_VALIDATORS_MAX * FP_KEYS_PER_VALIDATOR_MAX * 160u)

struct key_entry {
	uint16_t key_id;
	uint8_t key[FP_KEY_BYTES];
};

struct validator_keys {
	uint32_t validator_id; /* 0: empty slot (0 is not a valid validator id) */
	uint32_t count;
	struct key_entry keys[FP_KEYS_PER_VALIDATOR_MAX];
};

struct fp_keys {
	struct validator_keys *slots;
	uint32_t slots_count; /* a power of two */
	unsigned slots_bits;
	unsigned validators;
	unsigned validators_max; /* slots_count / 2, or FP_VALIDATORS_MAX */
};

static uint64_t slot_of(const struct fp_keys *k, uint32_t validator_id)
{
	/* Fibonacci hashing: consecutive ids (the usual fleet) spread evenly. */
	return (validator_id * 0x9E3779B97F4A7C15ull) >> (64 - k->slots_bits);
}

/* The slot of validator_id, or the empty slot where it would go. Never NULL:
 * the table always keeps at least half of its slots empty. */
static struct validator_keys *slot_find(const struct fp_keys *k, uint32_t validator_id)
{
	uint64_t i = slot_of(k, validator_id);
	for (uint32_t probes = 0; probes < k->slots_count; probes++) {
		struct validator_keys *v = &k->slots[i];
		if (v->validator_id == validator_id || v->validator_id == 0)
			return v;
		i = (i + 1) & (k->slots_count - 1);
	}
	abort(); /* a full table: the load bound was broken */
}

/*
 * Size the table from the file's length: it cannot hold more keys than it
 * has room for lines, so a development file of 256 validators takes a few
 * pages rather than the 18 MB that FP_VALIDATORS_MAX would need.
 */
static int keys_alloc(struct fp_keys *k, uint64_t file_bytes)
{
	uint64_t lines_max = file_bytes / KEY_LINE_BYTES_MIN + 1;
	uint64_t want = 2 * lines_max;
	k->slots_count = KEY_SLOTS_MIN;
	k->slots_bits = 4;
	while (k->slots_count < want && k->slots_count < KEY_SLOTS_MAX) {
		k->slots_count *= 2;
		k->slots_bits++;
	}
	k->validators_max = k->slots_count / 2 < FP_VALIDATORS_MAX ? k->slots_count / 2 : FP_VALIDATORS_MAX;
	k->slots = calloc(k->slots_count, sizeof(*k->slots));
	return k->slots != NULL ? 0 : -1;
}
_Static_assert((KEY_SLOTS_MAX & (KEY_SLOTS_MAX - 1)) == 0, "the key table size is a power of two");

struct load_state {
	struct fp_keys *keys;
	FILE *file;
	bool at_line_start;
	int lines_read;
	int why_line; /* the line of the first handler error, which why describes */
	char why[256];
};

static int hex_key(const char *hex, uint8_t out[FP_KEY_BYTES])
{
	size_t bin_len = 0;
	if (strlen(hex) != 2 * FP_KEY_BYTES)
		return -1;
	if (sodium_hex2bin(out, FP_KEY_BYTES, hex, strlen(hex), NULL, &bin_len, NULL) != 0)
		return -1;
	return bin_len == FP_KEY_BYTES ? 0 : -1;
}

/* Parse "VALIDATOR_ID/KEY_ID" (not ':', which inih takes for '='). Returns 0 or -1. */
static int name_parse(const char *name, uint32_t *validator_id, uint16_t *key_id)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(name, &end, 10);
	if (errno || end == name || *end != '/' || v == 0 || v > UINT32_MAX || name[0] == '-')
		return -1;
	const char *k = end + 1;
	unsigned long kid = strtoul(k, &end, 10);
	if (errno || end == k || *end != 0 || kid > UINT16_MAX || k[0] == '-')
		return -1;
	*validator_id = (uint32_t)v;
	*key_id = (uint16_t)kid;
	return 0;
}

/* Add one "VALIDATOR_ID/KEY_ID = hex" line. Returns 1, or 0 with s->why set. */
static int key_add(struct load_state *s, const char *section, const char *name, const char *value)
{
	uint32_t validator_id;
	uint16_t key_id;
	struct key_entry e;
	if (strcmp(section, "validator_keys") != 0) {
		snprintf(s->why, sizeof(s->why), "key '%.64s': not in section [validator_keys]", name);
		return 0;
	}
	if (name_parse(name, &validator_id, &key_id) != 0) {
		snprintf(s->why, sizeof(s->why),
			 "key '%.64s': expected VALIDATOR_ID/KEY_ID (INI reads a ':' as '=')", name);
		return 0;
	}
	if (hex_key(value, e.key) != 0) {
		snprintf(s->why, sizeof(s->why), "key '%.64s': value must be %u hexadecimal digits",
			 name, 2 * FP_KEY_BYTES);
		return 0;
	}
	if (sodium_is_zero(e.key, sizeof(e.key))) {
		snprintf(s->why, sizeof(s->why), "key '%.64s': all zeros is a placeholder, not a key", name);
		return 0;
	}
	e.key_id = key_id;
	struct validator_keys *v = slot_find(s->keys, validator_id);
	if (v->validator_id == 0 && s->keys->validators == s->keys->validators_max) {
		snprintf(s->why, sizeof(s->why), "key '%.64s': more than %u validators", name,
			 s->keys->validators_max);
		return 0;
	}
	for (uint32_t i = 0; i < v->count; i++) {
		if (v->keys[i].key_id == key_id) {
			snprintf(s->why, sizeof(s->why), "key '%.64s': given twice", name);
			return 0;
		}
	}
	if (v->count == FP_KEYS_PER_VALIDATOR_MAX) {
		snprintf(s->why, sizeof(s->why), "key '%.64s': more than %u keys for one validator", name,
			 FP_KEYS_PER_VALIDATOR_MAX);
		return 0;
	}
	if (v->validator_id == 0) {
		v->validator_id = validator_id;
		s->keys->validators++;
	}
	v->keys[v->count++] = e;
	return 1;
}

/* inih's handler: one call per NAME = VALUE line. Returns 1, or 0 for an error. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load_state *s = user;
	if (s->why_line != 0)
		return 0; /* inih reports the first error's line: keep its message */
	s->why_line = s->lines_read;
	int ok = key_add(s, section, name, value);
	if (ok)
		s->why_line = 0;
	return ok;
}

/* inih's line reader, counting lines so that a handler error knows its line
 * (the library's INI_HANDLER_LINENO is a build option we cannot rely on). */
static char *line_read(char *str, int num, void *stream)
{
	struct load_state *s = stream;
	char *got = fgets(str, num, s->file);
	if (got != NULL && s->at_line_start)
		s->lines_read++;
	/* inih reads an overlong line in several pieces: count it once. */
	s->at_line_start = got == NULL || strchr(got, '\n') != NULL;
	return got;
}

/* Write "FILE: why" (line 0) or "FILE:LINE: why" into err, free keys, return NULL. */
static struct fp_keys *load_fail(struct fp_keys *keys, char *err, size_t err_len, const char *path,
				 int line, const char *why)
{
	if (line > 0)
		snprintf(err, err_len, "%s:%d: %s", path, line, why);
	else
		snprintf(err, err_len, "%s: %s", path, why);
	fp_keys_free(keys);
	return NULL;
}

struct fp_keys *fp_keys_load(const char *path, char *err, size_t err_len)
{
	struct load_state s = {.at_line_start = true, .why = ""};
	struct stat st;
	int why;
	if (sodium_init() < 0) /* for sodium_hex2bin and the MACs that follow */
		return load_fail(NULL, err, err_len, path, 0, "libsodium cannot start");
	s.file = proc_secret_open(path, KEY_FILE_BYTES_MAX, &why, err, err_len);
	if (s.file == NULL)
		return NULL; /* err names the file and what is wrong with it */
	uint64_t file_bytes = fstat(fileno(s.file), &st) == 0 ? (uint64_t)st.st_size : KEY_FILE_BYTES_MAX;
	s.keys = calloc(1, sizeof(*s.keys));
	if (s.keys == NULL || keys_alloc(s.keys, file_bytes) != 0) {
		fclose(s.file);
		return load_fail(s.keys, err, err_len, path, 0, "out of memory");
	}
	int line = ini_parse_stream(line_read, &s, on_key, &s);
	fclose(s.file);
	if (line < 0)
		return load_fail(s.keys, err, err_len, path, 0, "out of memory");
	if (line > 0)
		return load_fail(s.keys, err, err_len, path, line,
				 line == s.why_line ? s.why : "syntax error, expected NAME = VALUE");
	if (s.keys->validators == 0)
		return load_fail(s.keys, err, err_len, path, 0, "no keys in section [validator_keys]");
	return s.keys;
}

void fp_keys_free(struct fp_keys *keys)
{
	if (keys == NULL)
		return;
	if (keys->slots != NULL)
		sodium_memzero(keys->slots, keys->slots_count * sizeof(*keys->slots));
	free(keys->slots);
	free(keys);
}

unsigned fp_keys_count(const struct fp_keys *keys)
{
	return keys->validators;
}

unsigned fp_keys_total(const struct fp_keys *keys)
{
	unsigned total = 0;
	for (uint32_t i = 0; i < keys->slots_count; i++)
		total += keys->slots[i].count;
	return total;
}

const uint8_t *fp_keys_find(const struct fp_keys *keys, uint32_t validator_id, uint16_t key_id, int *why)
{
	const struct validator_keys *v = validator_id ? slot_find(keys, validator_id) : NULL;
	if (v == NULL || v->validator_id != validator_id) {
		*why = FP_ERR_VALIDATOR;
		return NULL;
	}
	for (uint32_t i = 0; i < v->count; i++)
		if (v->keys[i].key_id == key_id)
			return v->keys[i].key;
	*why = FP_ERR_KEY;
	return NULL;
}
