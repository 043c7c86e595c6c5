/*
 * keys.c - the validators' MAC keys, loaded once, looked up per frame.
 *
 * The key file is INI read with inih: section [validator_keys], one line per
 * key, "VALIDATOR_ID/KEY_ID = 64 hex digits". A validator may hold up to
 * FP_KEYS_PER_VALIDATOR_MAX keys at once so that keys can be rotated: the
 * validator names the key id it used in every frame. Lookup is one probe
 * sequence in an open-addressing table sized at load time.
 */
#include "fastpath/fastpath.h"

#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_SLOTS (2 * FP_VALIDATORS_MAX) /* at most half full */

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
	unsigned validators;
};

static uint64_t slot_of(uint32_t validator_id)
{
	return (validator_id * 0x9E3779B97F4A7C15ull) >> (64 - 17);
}
_Static_assert(KEY_SLOTS == 1u << 17, "the key table has 2^17 slots");

/* The slot of validator_id, or the empty slot where it would go. */
static struct validator_keys *slot_find(const struct fp_keys *k, uint32_t validator_id)
{
	uint64_t i = slot_of(validator_id);
	for (unsigned probes = 0; probes < KEY_SLOTS; probes++) {
		struct validator_keys *v = &k->slots[i];
		if (v->validator_id == validator_id || v->validator_id == 0)
			return v;
		i = (i + 1) & (KEY_SLOTS - 1);
	}
	return NULL;
}

struct load_state {
	struct fp_keys *keys;
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

/* Parse "VALIDATOR:KEY_ID". Returns 0 or -1. */
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

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load_state *s = user;
	uint32_t validator_id;
	uint16_t key_id;
	struct key_entry e;
	if (strcmp(section, "validator_keys") != 0) {
		snprintf(s->why, sizeof(s->why), "key '%.64s': not in section [validator_keys]", name);
		return 0;
	}
	if (name_parse(name, &validator_id, &key_id) != 0) {
		snprintf(s->why, sizeof(s->why), "key '%.64s': expected VALIDATOR_ID/KEY_ID", name);
		return 0;
	}
	if (hex_key(value, e.key) != 0) {
		snprintf(s->why, sizeof(s->why), "key '%.64s': value must be %u hexadecimal digits",
			 name, 2 * FP_KEY_BYTES);
		return 0;
	}
	e.key_id = key_id;
	struct validator_keys *v = slot_find(s->keys, validator_id);
	if (v->validator_id == 0 && s->keys->validators == FP_VALIDATORS_MAX) {
		snprintf(s->why, sizeof(s->why), "key '%.64s': more than %u validators", name, FP_VALIDATORS_MAX);
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

struct fp_keys *fp_keys_load(const char *path, char *err, size_t err_len)
{
	struct load_state s = {.why = ""};
	if (sodium_init() < 0) {
		snprintf(err, err_len, "%s: libsodium cannot start", path);
		return NULL;
	}
	s.keys = calloc(1, sizeof(*s.keys));
	if (s.keys == NULL || (s.keys->slots = calloc(KEY_SLOTS, sizeof(*s.keys->slots))) == NULL) {
		free(s.keys);
		snprintf(err, err_len, "%s: out of memory", path);
		return NULL;
	}
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, err_len, "%s: cannot read: %s", path, strerror(errno));
		fp_keys_free(s.keys);
		return NULL;
	}
	int line = ini_parse_file(f, on_key, &s);
	fclose(f);
	if (line != 0) {
		snprintf(err, err_len, "%s:%d: %s", path, line, s.why[0] ? s.why : "syntax error");
		fp_keys_free(s.keys);
		return NULL;
	}
	if (s.keys->validators == 0) {
		snprintf(err, err_len, "%s: no keys in section [validator_keys]", path);
		fp_keys_free(s.keys);
		return NULL;
	}
	return s.keys;
}

void fp_keys_free(struct fp_keys *keys)
{
	if (keys == NULL)
		return;
	if (keys->slots != NULL)
		sodium_memzero(keys->slots, KEY_SLOTS * sizeof(*keys->slots));
	free(keys->slots);
	free(keys);
}

unsigned fp_keys_count(const struct fp_keys *keys)
{
	return keys->validators;
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
