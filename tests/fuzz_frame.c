/*
 * fuzz_frame.c - libFuzzer target for everything in proto/proto.c that
 * reads untrusted bytes: fp_frame_parse, fp_tap_decode on every record it
 * finds, fp_mac_verify, fp_ack_peek_validator and fp_ack_decode.
 *
 * Each input is tried twice: as it is, and re-MACed with a fixed key, so the
 * fuzzer also explores what lies behind a valid MAC (the record walk, tap
 * decoding, ack statuses). Inputs are handed over in buffers of their exact
 * size, so AddressSanitizer sees a read one byte past the end. Besides "no
 * crash", the target checks properties that must hold for any input:
 * records found by the parser lie inside the frame, and whatever decodes
 * encodes back to the very same bytes.
 *
 * Seeds: with FUZZ_WRITE_SEEDS=DIR in the environment the target writes
 * valid frames of every medium and acks into DIR before fuzzing starts
 * (tests/fuzz.sh does this). Built by `make fuzz` with clang
 * -fsanitize=fuzzer,address,undefined.
 */
#include "proto/proto.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t fuzz_key[FP_KEY_BYTES] = {0x66, 0x75, 0x7a, 0x7a}; /* "fuzz" */

/* A property every input must keep: stop with a crash the fuzzer records. */
#define MUST(cond)                                                                  \
	do {                                                                        \
		if (!(cond)) {                                                      \
			fprintf(stderr, "fuzz_frame: property failed: %s\n", #cond); \
			abort();                                                    \
		}                                                                   \
	} while (0)

/* Decode every record of a parsed frame; whatever decodes re-encodes identically. */
static void check_records(const uint8_t *buf, size_t len, const struct fp_frame_header *h,
			  const uint16_t *off, struct fp_tap *taps)
{
	unsigned decoded = 0;
	for (unsigned i = 0; i < h->tap_count; i++) {
		const uint8_t *rec = buf + off[i];
		MUST(off[i] >= FP_FRAME_HEADER_BYTES && off[i] + (size_t)rec[0] <= len - FP_MAC_BYTES);
		int reason = fp_tap_decode(rec, rec[0], &taps[i]);
		MUST(reason >= 0 && reason < FP_REASON_COUNT);
		if (reason != 0)
			continue;
		uint8_t again[FP_TAP_BYTES_MAX];
		MUST(fp_tap_encode(&taps[i], again, sizeof(again)) == rec[0]);
		MUST(memcmp(again, rec, rec[0]) == 0);
		(void)fp_tap_identity(&taps[i], h->validator_id);
		(void)fp_tap_content(rec, rec[0], h);
		decoded++;
	}
	/* A frame whose taps all decode and whose reserved bytes are 0 is what the encoder makes. */
	if (decoded != h->tap_count || buf[38] != 0 || buf[39] != 0)
		return;
	uint8_t again[FP_FRAME_BYTES_MAX];
	struct fp_frame_header copy = *h;
	int n = fp_frame_encode(&copy, taps, h->tap_count, fuzz_key, again, sizeof(again));
	MUST(n == (int)len);
	MUST(memcmp(again, buf, len - FP_MAC_BYTES) == 0);
}

static void try_frame(const uint8_t *buf, size_t len, bool mac_valid)
{
	struct fp_frame_header h;
	uint16_t off[FP_TAPS_PER_FRAME_MAX];
	static struct fp_tap taps[FP_TAPS_PER_FRAME_MAX];
	int rc = fp_frame_parse(buf, len, &h, off);
	MUST(rc <= 0 && rc >= FP_ERR_MALFORMED);
	if (rc != 0)
		return;
	MUST(h.tap_count >= 1 && h.tap_count <= FP_TAPS_PER_FRAME_MAX);
	if (mac_valid)
		MUST(fp_mac_verify(buf, len, fuzz_key) == 0);
	check_records(buf, len, &h, off, taps);
}

static void try_ack(const uint8_t *buf, size_t len)
{
	struct fp_ack_header h;
	struct fp_tap_status st[FP_TAPS_PER_FRAME_MAX];
	uint32_t validator_id;
	uint16_t key_id;
	(void)fp_ack_peek_validator(buf, len, &validator_id, &key_id);
	int rc = fp_ack_decode(buf, len, fuzz_key, &h, st);
	MUST(rc <= 0 && rc >= FP_ERR_MAC);
	if (rc != 0)
		return;
	uint8_t again[FP_ACK_BYTES_MAX];
	MUST(fp_ack_encode(&h, st, fuzz_key, again, sizeof(again)) == (int)len);
	MUST(memcmp(again, buf, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	try_frame(data, size, false);
	try_ack(data, size);
	if (size < FP_MAC_BYTES)
		return 0;
	/* The same bytes with a MAC that verifies, in a buffer of exactly their size. */
	uint8_t *buf = malloc(size);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	crypto_auth_hmacsha256(buf + size - FP_MAC_BYTES, buf, size - FP_MAC_BYTES, fuzz_key);
	MUST(fp_mac_verify(buf, size, fuzz_key) == 0);
	try_frame(buf, size, true);
	try_ack(buf, size);
	free(buf);
	return 0;
}

/* ------------------------------------------------------------------ seeds */

static void seed_write(const char *dir, const char *name, const uint8_t *buf, int len)
{
	char path[4096];
	if (len <= 0)
		return;
	snprintf(path, sizeof(path), "%s/seed-%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		return;
	fwrite(buf, 1, (size_t)len, f);
	fclose(f);
}

static void seed_tap(unsigned medium, unsigned i, struct fp_tap *t)
{
	memset(t, 0, sizeof(*t));
	t->medium = (uint8_t)medium;
	t->kind = FP_KIND_BOARD;
	t->tap_id = i;
	t->tap_time_us = 1795305600000000ull + i;
	t->amount_fen = 200;
	t->u.epurse.card_number = 3104266000000012345ull; /* harmless for the other media */
	t->u.epurse.transaction_type = 6;
	if (medium == FP_MEDIUM_QUICKPASS)
		t->u.quickpass = (struct fp_quickpass){.account_token = 77, .expiry_yymm = 2912};
	if (medium == FP_MEDIUM_QR)
		t->u.qr = (struct fp_qr){.qr_version = 1, .issued_at_s = 1, .expires_at_s = 2};
}

/* Valid frames of every medium (one tap, full, mixed) and acks (one tap, 64 taps). */
static void seeds_write(const char *dir)
{
	static const unsigned full[4] = {0, 21, 34, 10};
	static struct fp_tap taps[FP_TAPS_PER_FRAME_MAX];
	uint8_t buf[FP_FRAME_BYTES_MAX];
	char name[32];
	struct fp_frame_header h = {.validator_id = 1001, .key_id = 1, .frame_seq = 42,
				    .operator_id = 1, .route_id = 301, .vehicle_id = 10001};
	for (unsigned m = FP_MEDIUM_EPURSE; m <= FP_MEDIUM_QR; m++) {
		for (unsigned i = 0; i < full[m]; i++)
			seed_tap(m, i, &taps[i]);
		snprintf(name, sizeof(name), "frame-%s-1", fp_medium_name(m));
		seed_write(dir, name, buf, fp_frame_encode(&h, taps, 1, fuzz_key, buf, sizeof(buf)));
		snprintf(name, sizeof(name), "frame-%s-full", fp_medium_name(m));
		seed_write(dir, name, buf, fp_frame_encode(&h, taps, full[m], fuzz_key, buf, sizeof(buf)));
	}
	for (unsigned i = 0; i < 9; i++)
		seed_tap(1 + i % 3, i, &taps[i]);
	seed_write(dir, "frame-mixed", buf, fp_frame_encode(&h, taps, 9, fuzz_key, buf, sizeof(buf)));

	struct fp_ack_header a = {.validator_id = 1001, .key_id = 1, .tap_count = 1, .frame_seq = 42};
	struct fp_tap_status st[FP_TAPS_PER_FRAME_MAX];
	for (unsigned i = 0; i < FP_TAPS_PER_FRAME_MAX; i++)
		st[i] = (struct fp_tap_status){(uint8_t)(i % 4), (uint8_t)(i % 4 == 3 ? i % FP_REASON_COUNT : 0)};
	seed_write(dir, "ack-1", buf, fp_ack_encode(&a, st, fuzz_key, buf, sizeof(buf)));
	a.tap_count = FP_TAPS_PER_FRAME_MAX;
	seed_write(dir, "ack-64", buf, fp_ack_encode(&a, st, fuzz_key, buf, sizeof(buf)));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	if (sodium_init() < 0)
		abort();
	const char *dir = getenv("FUZZ_WRITE_SEEDS");
	if (dir != NULL && dir[0] != 0)
		seeds_write(dir);
	return 0;
}
