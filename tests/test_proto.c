/*
 * test_proto.c - the wire protocol (proto/proto.c) and the validator key
 * file (proto/keys.c).
 *
 * Round trips for every medium, every error a frame or ack can be refused
 * with, every reason fp_tap_decode() can reject a tap with, MAC tampering,
 * forged acks, the identity-key rules of DESIGN.md, the largest frame of
 * each medium, and garbage input. The worked example of docs/PROTOCOL.md is
 * rendered here and compared with the document character for character, so
 * the document cannot drift from the code:
 *
 *     build/tests/test_proto --example    prints the block the doc must hold
 *
 * Run from the repository root (as make test does): it reads
 * docs/PROTOCOL.md and config/dev-validators.keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fastpath/fastpath.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------- fixtures */

/* The documented example key: bytes 0x00, 0x01, ..., 0x1f. */
static void example_key(uint8_t key[FP_KEY_BYTES])
{
	for (unsigned i = 0; i < FP_KEY_BYTES; i++)
		key[i] = (uint8_t)i;
}

static const uint8_t other_key[FP_KEY_BYTES] = {0xee, 0xee, 0xee};

/* The QR platform of the tests: an Ed25519 keypair from a fixed seed. */
static uint8_t qr_public[crypto_sign_PUBLICKEYBYTES];
static uint8_t qr_secret[crypto_sign_SECRETKEYBYTES];

/* The worked example of docs/PROTOCOL.md: frame 42 of validator 1001, a bus. */
static void example_header(struct fp_frame_header *h)
{
	memset(h, 0, sizeof(*h));
	h->validator_id = 1001;
	h->key_id = 1;
	h->frame_seq = 42;
	h->send_time_us = 1795305600000000ull; /* 2026-11-22T00:00:00Z, 08:00 in Beijing */
	h->operator_id = 1;
	h->route_id = 301;
	h->vehicle_id = 10001;
}

/* The e-purse tap of the worked example: a bus boarding, 2.00 CNY. */
static void example_epurse(struct fp_tap *t)
{
	static const uint8_t psam_id[6] = {0x37, 0x02, 0x66, 0x00, 0x00, 0x01};
	memset(t, 0, sizeof(*t));
	t->medium = FP_MEDIUM_EPURSE;
	t->kind = FP_KIND_BOARD;
	t->category = FP_CATEGORY_ADULT;
	t->tap_id = 7;
	t->tap_time_us = 1795305590123456ull; /* ten seconds before the frame left */
	t->stop_id = 100017;
	t->amount_fen = 200;
	t->u.epurse.issuer_code = 2660;
	t->u.epurse.card_number = 3104266000000012345ull;
	t->u.epurse.ctc = 18;
	t->u.epurse.balance_before_fen = 5000;
	t->u.epurse.balance_after_fen = 4800;
	t->u.epurse.tac = 0xa1b2c3d4;
	memcpy(t->u.epurse.psam_id, psam_id, sizeof(psam_id));
	t->u.epurse.psam_serial = 9001;
	t->u.epurse.key_version = 1;
	t->u.epurse.transaction_type = 6;
}

/* The acknowledgement of the worked example: tap stored. */
static void example_ack_header(struct fp_ack_header *a)
{
	memset(a, 0, sizeof(*a));
	a->validator_id = 1001;
	a->key_id = 1;
	a->tap_count = 1;
	a->frame_seq = 42;
	a->gateway_time_us = 1795305600000850ull;
}

static void sample_quickpass(struct fp_tap *t)
{
	memset(t, 0, sizeof(*t));
	t->medium = FP_MEDIUM_QUICKPASS;
	t->kind = FP_KIND_ENTRY;
	t->category = FP_CATEGORY_SENIOR;
	t->tap_id = 77001;
	t->tap_time_us = 1795319990999999ull;
	t->stop_id = 112;
	t->amount_fen = 0; /* pay later */
	t->u.quickpass.account_token = 0x8877665544332211ull;
	t->u.quickpass.atc = 0x0456;
	t->u.quickpass.expiry_yymm = 2912;
	t->u.quickpass.oda_result = 0;
	t->u.quickpass.pan_sequence = 1;
}

static void sign_qr(struct fp_qr *q)
{
	uint8_t payload[FP_QR_PAYLOAD_BYTES];
	fp_qr_signed_bytes(q, payload);
	crypto_sign_detached(q->signature, NULL, payload, sizeof(payload), qr_secret);
}

static void sample_qr(struct fp_tap *t)
{
	memset(t, 0, sizeof(*t));
	t->medium = FP_MEDIUM_QR;
	t->kind = FP_KIND_PURCHASE;
	t->category = FP_CATEGORY_DISABLED;
	t->tap_id = 9;
	t->tap_time_us = 1795319990500000ull;
	t->stop_id = 40001;
	t->amount_fen = 350;
	t->u.qr.qr_version = 1;
	t->u.qr.account_token = 0x0102030405060708ull;
	t->u.qr.issued_at_s = 1795319960;
	t->u.qr.expires_at_s = 1795320020;
	for (unsigned i = 0; i < sizeof(t->u.qr.qr_id); i++)
		t->u.qr.qr_id[i] = (uint8_t)(0xa0 + i);
	sign_qr(&t->u.qr);
}

static void sample_tap(unsigned medium, struct fp_tap *t)
{
	switch (medium) {
	case FP_MEDIUM_EPURSE: example_epurse(t); break;
	case FP_MEDIUM_QUICKPASS: sample_quickpass(t); break;
	default: sample_qr(t); break;
	}
}

static int setup_sodium(void **state)
{
	(void)state;
	static const uint8_t seed[crypto_sign_SEEDBYTES] = {0x40, 0x41, 0x42};
	if (sodium_init() < 0)
		return -1;
	return crypto_sign_seed_keypair(qr_public, qr_secret, seed);
}

/* Every field of two taps, medium by medium (structs have padding: no memcmp). */
static void assert_tap_equal(const struct fp_tap *a, const struct fp_tap *b)
{
	assert_int_equal(a->medium, b->medium);
	assert_int_equal(a->kind, b->kind);
	assert_int_equal(a->category, b->category);
	assert_int_equal(a->tap_id, b->tap_id);
	assert_int_equal(a->tap_time_us, b->tap_time_us);
	assert_int_equal(a->stop_id, b->stop_id);
	assert_int_equal(a->amount_fen, b->amount_fen);
	if (a->medium == FP_MEDIUM_EPURSE) {
		const struct fp_epurse *x = &a->u.epurse, *y = &b->u.epurse;
		assert_int_equal(x->issuer_code, y->issuer_code);
		assert_int_equal(x->card_number, y->card_number);
		assert_int_equal(x->ctc, y->ctc);
		assert_int_equal(x->balance_before_fen, y->balance_before_fen);
		assert_int_equal(x->balance_after_fen, y->balance_after_fen);
		assert_int_equal(x->tac, y->tac);
		assert_memory_equal(x->psam_id, y->psam_id, sizeof(x->psam_id));
		assert_int_equal(x->psam_serial, y->psam_serial);
		assert_int_equal(x->key_version, y->key_version);
		assert_int_equal(x->transaction_type, y->transaction_type);
	} else if (a->medium == FP_MEDIUM_QUICKPASS) {
		const struct fp_quickpass *x = &a->u.quickpass, *y = &b->u.quickpass;
		assert_int_equal(x->account_token, y->account_token);
		assert_int_equal(x->atc, y->atc);
		assert_int_equal(x->expiry_yymm, y->expiry_yymm);
		assert_int_equal(x->oda_result, y->oda_result);
		assert_int_equal(x->pan_sequence, y->pan_sequence);
	} else {
		const struct fp_qr *x = &a->u.qr, *y = &b->u.qr;
		assert_int_equal(x->qr_version, y->qr_version);
		assert_int_equal(x->account_token, y->account_token);
		assert_int_equal(x->issued_at_s, y->issued_at_s);
		assert_int_equal(x->expires_at_s, y->expires_at_s);
		assert_memory_equal(x->qr_id, y->qr_id, sizeof(x->qr_id));
		assert_memory_equal(x->signature, y->signature, sizeof(x->signature));
	}
}

static void assert_header_equal(const struct fp_frame_header *a, const struct fp_frame_header *b)
{
	assert_int_equal(a->validator_id, b->validator_id);
	assert_int_equal(a->key_id, b->key_id);
	assert_int_equal(a->tap_count, b->tap_count);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->frame_seq, b->frame_seq);
	assert_int_equal(a->send_time_us, b->send_time_us);
	assert_int_equal(a->operator_id, b->operator_id);
	assert_int_equal(a->route_id, b->route_id);
	assert_int_equal(a->vehicle_id, b->vehicle_id);
}

/* A one-tap frame of that medium with the example key. Returns its length. */
static size_t one_tap_frame(unsigned medium, uint8_t out[FP_FRAME_BYTES_MAX])
{
	struct fp_frame_header h;
	struct fp_tap t;
	uint8_t key[FP_KEY_BYTES];
	example_header(&h);
	sample_tap(medium, &t);
	example_key(key);
	int len = fp_frame_encode(&h, &t, 1, key, out, FP_FRAME_BYTES_MAX);
	assert_true(len > 0);
	return (size_t)len;
}

/* Recompute the MAC of a frame after the test changed its bytes on purpose. */
static void remac(uint8_t *buf, size_t len)
{
	uint8_t key[FP_KEY_BYTES];
	example_key(key);
	crypto_auth_hmacsha256(buf + len - FP_MAC_BYTES, buf, len - FP_MAC_BYTES, key);
}

static int parse(const uint8_t *buf, size_t len)
{
	struct fp_frame_header h;
	uint16_t off[FP_TAPS_PER_FRAME_MAX];
	return fp_frame_parse(buf, len, &h, off);
}

/* ------------------------------------------------------------- names */

static void assert_label(const char *s)
{
	assert_non_null(s);
	assert_true(s[0] != 0);
	for (const char *c = s; *c; c++)
		assert_true(islower((unsigned char)*c) || *c == '_');
}

static void test_names(void **state)
{
	(void)state;
	for (int e = FP_ERR_INVALID; e <= FP_ERR_TRUNCATED; e++) {
		assert_string_not_equal(fp_strerror(e), fp_strerror(12345));
		for (int f = e + 1; f <= FP_ERR_TRUNCATED; f++)
			assert_string_not_equal(fp_strerror(e), fp_strerror(f));
	}
	for (unsigned r = 0; r < FP_REASON_COUNT; r++)
		assert_label(fp_reason_name(r));
	assert_string_equal(fp_reason_name(FP_REASON_QR_REUSE), "qr_reuse");
	assert_string_equal(fp_reason_name(FP_REASON_COUNT), "unknown");
	for (unsigned d = 0; d < FP_DROP_COUNT; d++)
		assert_label(fp_drop_name(d));
	assert_string_equal(fp_drop_name(FP_DROP_TRUNCATED), "truncated");
	assert_string_equal(fp_drop_name(FP_DROP_RING_FULL), "ring_full");
	assert_string_equal(fp_drop_name(FP_DROP_COUNT), "unknown");
	assert_string_equal(fp_status_name(FP_STATUS_STORED), "stored");
	assert_string_equal(fp_status_name(FP_STATUS_DUPLICATE), "duplicate");
	assert_string_equal(fp_status_name(FP_STATUS_CONFLICT), "conflict");
	assert_string_equal(fp_status_name(FP_STATUS_REJECTED), "rejected");
	assert_string_equal(fp_status_name(4), "unknown");
	assert_string_equal(fp_medium_name(FP_MEDIUM_EPURSE), "epurse");
	assert_string_equal(fp_medium_name(FP_MEDIUM_QUICKPASS), "quickpass");
	assert_string_equal(fp_medium_name(FP_MEDIUM_QR), "qr");
	assert_string_equal(fp_medium_name(0), "unknown");
}

static void test_hist_bucket_and_clocks(void **state)
{
	(void)state;
	assert_int_equal(fp_hist_bucket(0), 0);
	assert_int_equal(fp_hist_bucket(1), 0);
	assert_int_equal(fp_hist_bucket(2), 1);
	assert_int_equal(fp_hist_bucket(3), 1);
	assert_int_equal(fp_hist_bucket(4), 2);
	assert_int_equal(fp_hist_bucket(1000), 9);
	assert_int_equal(fp_hist_bucket(1u << 23), 23);
	assert_int_equal(fp_hist_bucket(1ull << 40), FP_HIST_BUCKETS - 1);
	assert_int_equal(fp_hist_bucket(UINT64_MAX), FP_HIST_BUCKETS - 1);

	uint64_t wall_us = (uint64_t)time(NULL) * 1000000u;
	uint64_t now_us = fp_now_us();
	assert_true(now_us + 2000000u >= wall_us && now_us <= wall_us + 2000000u);
	uint64_t a = fp_mono_us();
	usleep(2000);
	uint64_t b = fp_mono_us();
	assert_true(b >= a + 1000 && b < a + 2000000u);
}

static void test_tap_bytes(void **state)
{
	(void)state;
	assert_int_equal(fp_tap_bytes(FP_MEDIUM_EPURSE), 62);
	assert_int_equal(fp_tap_bytes(FP_MEDIUM_QUICKPASS), 38);
	assert_int_equal(fp_tap_bytes(FP_MEDIUM_QR), 121);
	assert_int_equal(fp_tap_bytes(0), 0);
	assert_int_equal(fp_tap_bytes(4), 0);
}

/* ------------------------------------------------------------ round trips */

static void roundtrip_one(unsigned medium)
{
	struct fp_frame_header h, got;
	struct fp_tap t, back;
	uint8_t key[FP_KEY_BYTES], buf[FP_FRAME_BYTES_MAX];
	uint16_t off[FP_TAPS_PER_FRAME_MAX];
	example_header(&h);
	sample_tap(medium, &t);
	example_key(key);
	int len = fp_frame_encode(&h, &t, 1, key, buf, sizeof(buf));
	assert_int_equal(len, FP_FRAME_HEADER_BYTES + fp_tap_bytes(medium) + FP_MAC_BYTES);
	assert_int_equal(h.tap_count, 1);
	assert_int_equal(fp_frame_parse(buf, (size_t)len, &got, off), 0);
	assert_header_equal(&h, &got);
	assert_int_equal(off[0], FP_FRAME_HEADER_BYTES);
	assert_int_equal(fp_mac_verify(buf, (size_t)len, key), 0);
	assert_int_equal(fp_mac_verify(buf, (size_t)len, other_key), FP_ERR_MAC);
	assert_int_equal(fp_tap_decode(buf + off[0], buf[off[0]], &back), 0);
	assert_tap_equal(&t, &back);
}

static void test_roundtrip_epurse(void **state) { (void)state; roundtrip_one(FP_MEDIUM_EPURSE); }
static void test_roundtrip_quickpass(void **state) { (void)state; roundtrip_one(FP_MEDIUM_QUICKPASS); }
static void test_roundtrip_qr(void **state) { (void)state; roundtrip_one(FP_MEDIUM_QR); }

/* A frame mixing the three media: offsets follow the record lengths. */
static void test_roundtrip_mixed(void **state)
{
	(void)state;
	struct fp_frame_header h, got;
	struct fp_tap taps[6], back;
	uint8_t key[FP_KEY_BYTES], buf[FP_FRAME_BYTES_MAX];
	uint16_t off[FP_TAPS_PER_FRAME_MAX];
	example_header(&h);
	example_key(key);
	for (unsigned i = 0; i < 6; i++) {
		sample_tap(1 + i % 3, &taps[i]);
		taps[i].tap_id = 100 + i;
	}
	int len = fp_frame_encode(&h, taps, 6, key, buf, sizeof(buf));
	assert_int_equal(len, 40 + 2 * (62 + 38 + 121) + 32);
	assert_int_equal(fp_frame_parse(buf, (size_t)len, &got, off), 0);
	assert_int_equal(got.tap_count, 6);
	size_t at = FP_FRAME_HEADER_BYTES;
	for (unsigned i = 0; i < 6; i++) {
		assert_int_equal(off[i], at);
		assert_int_equal(fp_tap_decode(buf + off[i], buf[off[i]], &back), 0);
		assert_tap_equal(&taps[i], &back);
		at += fp_tap_bytes(taps[i].medium);
	}
	/* rec_offsets is optional */
	assert_int_equal(fp_frame_parse(buf, (size_t)len, &got, NULL), 0);
}

/*
 * The largest frame of each medium, as docs/PROTOCOL.md states it:
 * (1400 - 40 - 32) / record bytes = 21 e-purse, 34 QuickPass, 10 QR taps.
 */
static void test_max_taps_per_medium(void **state)
{
	(void)state;
	static const struct { unsigned medium, taps_max, frame_bytes; } cases[] = {
		{FP_MEDIUM_EPURSE, 21, 40 + 21 * 62 + 32},
		{FP_MEDIUM_QUICKPASS, 34, 40 + 34 * 38 + 32},
		{FP_MEDIUM_QR, 10, 40 + 10 * 121 + 32},
	};
	struct fp_tap taps[FP_TAPS_PER_FRAME_MAX];
	struct fp_frame_header h;
	uint8_t key[FP_KEY_BYTES], buf[FP_FRAME_BYTES_MAX + 512];
	example_key(key);
	for (unsigned c = 0; c < 3; c++) {
		for (unsigned i = 0; i < FP_TAPS_PER_FRAME_MAX; i++)
			sample_tap(cases[c].medium, &taps[i]);
		example_header(&h);
		int len = fp_frame_encode(&h, taps, cases[c].taps_max, key, buf, sizeof(buf));
		assert_int_equal(len, cases[c].frame_bytes);
		assert_true(len <= (int)FP_FRAME_BYTES_MAX);
		assert_int_equal(parse(buf, (size_t)len), 0);
		/* one more does not fit 1400 bytes, however large the buffer */
		assert_int_equal(fp_frame_encode(&h, taps, cases[c].taps_max + 1, key, buf, sizeof(buf)),
				 FP_ERR_NOSPACE);
	}
}

static void test_encode_errors(void **state)
{
	(void)state;
	struct fp_frame_header h;
	struct fp_tap taps[FP_TAPS_PER_FRAME_MAX + 1];
	uint8_t key[FP_KEY_BYTES], buf[FP_FRAME_BYTES_MAX];
	example_header(&h);
	example_key(key);
	for (unsigned i = 0; i <= FP_TAPS_PER_FRAME_MAX; i++)
		sample_quickpass(&taps[i]);
	assert_int_equal(fp_frame_encode(&h, taps, 0, key, buf, sizeof(buf)), FP_ERR_INVALID);
	assert_int_equal(fp_frame_encode(&h, taps, FP_TAPS_PER_FRAME_MAX + 1, key, buf, sizeof(buf)),
			 FP_ERR_INVALID);
	/* header + record + MAC is 110 bytes: 109 is too small */
	assert_int_equal(fp_frame_encode(&h, taps, 1, key, buf, 109), FP_ERR_NOSPACE);
	assert_int_equal(fp_frame_encode(&h, taps, 1, key, buf, 110), 110);
	assert_int_equal(fp_frame_encode(&h, taps, 1, key, buf, 10), FP_ERR_NOSPACE);
	taps[0].medium = 9;
	assert_int_equal(fp_frame_encode(&h, taps, 1, key, buf, sizeof(buf)), FP_ERR_INVALID);
	assert_int_equal(fp_tap_encode(&taps[0], buf, sizeof(buf)), FP_ERR_INVALID);
	taps[0].medium = FP_MEDIUM_QUICKPASS;
	assert_int_equal(fp_tap_encode(&taps[0], buf, 37), FP_ERR_NOSPACE);
	assert_int_equal(fp_tap_encode(&taps[0], buf, 38), 38);
	assert_int_equal(buf[0], 38);
	assert_int_equal(buf[1], FP_MEDIUM_QUICKPASS);
}

/* ----------------------------------------------------------- frame errors */

/* Checks run in a fixed order: size first, then magic, version, type, count, records. */
static void test_frame_errors_in_order(void **state)
{
	(void)state;
	uint8_t f[FP_FRAME_BYTES_MAX + 8];
	memset(f, 0xff, sizeof(f)); /* wrong magic everywhere */
	assert_int_equal(parse(f, FP_FRAME_BYTES_MAX + 1), FP_ERR_OVERSIZED);
	assert_int_equal(parse(f, 95), FP_ERR_TRUNCATED);
	assert_int_equal(parse(f, 0), FP_ERR_TRUNCATED);
	assert_int_equal(parse(NULL, 0), FP_ERR_TRUNCATED);
	assert_int_equal(parse(f, 96), FP_ERR_MAGIC);

	size_t len = one_tap_frame(FP_MEDIUM_QUICKPASS, f);
	assert_int_equal(len, 96 + 14);
	assert_int_equal(parse(f, len), 0);
	f[2] = 2;
	assert_int_equal(parse(f, len), FP_ERR_VERSION);
	f[2] = FP_VERSION, f[3] = FP_TYPE_ACK;
	assert_int_equal(parse(f, len), FP_ERR_TYPE);
	f[3] = 0;
	assert_int_equal(parse(f, len), FP_ERR_TYPE);
	f[3] = FP_TYPE_FRAME, f[10] = 0;
	assert_int_equal(parse(f, len), FP_ERR_MALFORMED);
	f[10] = FP_TAPS_PER_FRAME_MAX + 1;
	assert_int_equal(parse(f, len), FP_ERR_MALFORMED);
	f[10] = 1;
	assert_int_equal(parse(f, len), 0);
}

static void test_frame_record_walk(void **state)
{
	(void)state;
	uint8_t f[FP_FRAME_BYTES_MAX];
	size_t len = one_tap_frame(FP_MEDIUM_EPURSE, f);
	f[10] = 2; /* says two taps, holds one */
	assert_int_equal(parse(f, len), FP_ERR_MALFORMED);
	f[10] = 1;
	f[40] = FP_TAP_COMMON_BYTES - 1; /* shorter than the common part */
	assert_int_equal(parse(f, len), FP_ERR_MALFORMED);
	f[40] = 0; /* a zero length would never advance */
	assert_int_equal(parse(f, len), FP_ERR_MALFORMED);
	f[40] = 63; /* one byte into the MAC */
	assert_int_equal(parse(f, len), FP_ERR_MALFORMED);
	f[40] = 61; /* one byte short of the MAC: bytes left over */
	assert_int_equal(parse(f, len), FP_ERR_MALFORMED);
	f[40] = 255;
	assert_int_equal(parse(f, len), FP_ERR_MALFORMED);
	f[40] = 62;
	assert_int_equal(parse(f, len), 0);
	/* Two records where the header says one: the second one is left over. */
	struct fp_tap taps[2];
	struct fp_frame_header h;
	uint8_t key[FP_KEY_BYTES];
	example_header(&h);
	example_key(key);
	example_epurse(&taps[0]), example_epurse(&taps[1]);
	int len2 = fp_frame_encode(&h, taps, 2, key, f, sizeof(f));
	assert_int_equal(len2, 40 + 2 * 62 + 32);
	f[10] = 1;
	assert_int_equal(parse(f, (size_t)len2), FP_ERR_MALFORMED);
	f[10] = 3;
	assert_int_equal(parse(f, (size_t)len2), FP_ERR_MALFORMED);
}

/* A medium this gateway does not know is the tap's problem, not the frame's. */
static void test_unknown_medium_is_not_a_frame_error(void **state)
{
	(void)state;
	uint8_t f[FP_FRAME_BYTES_MAX];
	struct fp_frame_header h;
	struct fp_tap back;
	uint16_t off[FP_TAPS_PER_FRAME_MAX];
	size_t len = one_tap_frame(FP_MEDIUM_QUICKPASS, f);
	f[41] = 7;
	remac(f, len);
	assert_int_equal(fp_frame_parse(f, len, &h, off), 0);
	assert_int_equal(fp_tap_decode(f + off[0], f[off[0]], &back), FP_REASON_MEDIUM);
	assert_int_equal(back.tap_id, 77001); /* the common part is still read */
}

/* Every single flipped bit anywhere in a frame makes its MAC fail. */
static void test_mac_every_byte(void **state)
{
	(void)state;
	uint8_t f[FP_FRAME_BYTES_MAX], key[FP_KEY_BYTES];
	example_key(key);
	for (unsigned m = FP_MEDIUM_EPURSE; m <= FP_MEDIUM_QR; m++) {
		size_t len = one_tap_frame(m, f);
		for (size_t i = 0; i < len; i++) {
			for (unsigned bit = 0; bit < 8; bit += 3) {
				f[i] ^= (uint8_t)(1u << bit);
				assert_int_equal(fp_mac_verify(f, len, key), FP_ERR_MAC);
				f[i] ^= (uint8_t)(1u << bit);
			}
		}
		assert_int_equal(fp_mac_verify(f, len, key), 0);
		assert_int_equal(fp_mac_verify(f, len - 1, key), FP_ERR_MAC);
		assert_int_equal(fp_mac_verify(f, FP_MAC_BYTES - 1, key), FP_ERR_MAC);
		assert_int_equal(fp_mac_verify(f, len, other_key), FP_ERR_MAC);
	}
}

/* --------------------------------------------------------- record checks */

/* Encode t, decode it, return the reason. */
static int reason_of(const struct fp_tap *t)
{
	uint8_t rec[FP_TAP_BYTES_MAX];
	struct fp_tap back;
	int len = fp_tap_encode(t, rec, sizeof(rec));
	assert_true(len > 0);
	return fp_tap_decode(rec, (size_t)len, &back);
}

static void test_record_common_reasons(void **state)
{
	(void)state;
	struct fp_tap t;
	uint8_t rec[FP_TAP_BYTES_MAX];
	struct fp_tap back;
	example_epurse(&t);
	int len = fp_tap_encode(&t, rec, sizeof(rec));
	assert_int_equal(fp_tap_decode(rec, (size_t)len, &back), 0);
	rec[1] = 0;
	assert_int_equal(fp_tap_decode(rec, (size_t)len, &back), FP_REASON_MEDIUM);
	rec[1] = 255;
	assert_int_equal(fp_tap_decode(rec, (size_t)len, &back), FP_REASON_MEDIUM);
	rec[1] = FP_MEDIUM_QUICKPASS; /* an e-purse-sized QuickPass record */
	assert_int_equal(fp_tap_decode(rec, (size_t)len, &back), FP_REASON_LENGTH);
	rec[1] = FP_MEDIUM_EPURSE;
	assert_int_equal(fp_tap_decode(rec, (size_t)len - 1, &back), FP_REASON_LENGTH); /* len != record_len */
	assert_int_equal(fp_tap_decode(rec, 10, &back), FP_REASON_LENGTH);
	for (unsigned kind = 0; kind < 8; kind++) {
		example_epurse(&t), t.kind = (uint8_t)kind;
		assert_int_equal(reason_of(&t), kind >= 1 && kind <= 4 ? 0 : FP_REASON_KIND);
	}
	for (unsigned cat = 0; cat < 8; cat++) {
		example_epurse(&t), t.category = (uint8_t)cat;
		assert_int_equal(reason_of(&t), cat <= FP_CATEGORY_MAX ? 0 : FP_REASON_CATEGORY);
	}
	/* Times and amounts need the gateway's clock and configuration: not checked here. */
	example_epurse(&t), t.tap_time_us = 0, t.amount_fen = UINT32_MAX;
	assert_int_equal(reason_of(&t), 0);
}

static void test_record_medium_fields(void **state)
{
	(void)state;
	struct fp_tap t;
	example_epurse(&t), t.u.epurse.card_number = FP_CARD_NUMBER_MAX;
	assert_int_equal(reason_of(&t), 0);
	t.u.epurse.card_number = FP_CARD_NUMBER_MAX + 1;
	assert_int_equal(reason_of(&t), FP_REASON_FIELD);
	for (unsigned type = 0; type < 16; type++) {
		example_epurse(&t), t.u.epurse.transaction_type = (uint8_t)type;
		assert_int_equal(reason_of(&t), type == 6 || type == 9 ? 0 : FP_REASON_FIELD);
	}
	static const struct { uint16_t yymm; int reason; } expiry[] = {
		{2901, 0}, {2912, 0}, {2900, FP_REASON_FIELD}, {2913, FP_REASON_FIELD},
		{ 112, 0}, {9999, FP_REASON_FIELD}, {0, FP_REASON_FIELD},
	};
	for (unsigned i = 0; i < sizeof(expiry) / sizeof(expiry[0]); i++) {
		sample_quickpass(&t), t.u.quickpass.expiry_yymm = expiry[i].yymm;
		assert_int_equal(reason_of(&t), expiry[i].reason);
	}
	for (unsigned oda = 0; oda < 5; oda++) {
		sample_quickpass(&t), t.u.quickpass.oda_result = (uint8_t)oda;
		assert_int_equal(reason_of(&t), oda <= 2 ? 0 : FP_REASON_FIELD);
	}
	sample_qr(&t), t.u.qr.qr_version = 2;
	assert_int_equal(reason_of(&t), FP_REASON_FIELD);
	sample_qr(&t), t.u.qr.expires_at_s = t.u.qr.issued_at_s;
	assert_int_equal(reason_of(&t), FP_REASON_FIELD);
	sample_qr(&t), t.u.qr.expires_at_s = t.u.qr.issued_at_s - 1;
	assert_int_equal(reason_of(&t), FP_REASON_FIELD);
	/* The signature is checked by the pipeline with the platform key, not here. */
	sample_qr(&t), t.u.qr.signature[0] ^= 1;
	assert_int_equal(reason_of(&t), 0);
}

/* The 33 signed bytes of a QR code, and that its Ed25519 signature covers all of them. */
static void test_qr_signed_bytes(void **state)
{
	(void)state;
	struct fp_tap t;
	uint8_t payload[FP_QR_PAYLOAD_BYTES], rec[FP_TAP_BYTES_MAX];
	static const uint8_t want[FP_QR_PAYLOAD_BYTES] = {
		0x01, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* version, account_token */
		0x6b, 0x02, 0x68, 0x98, 0x6b, 0x02, 0x68, 0xd4,       /* issued_at_s, expires_at_s */
		0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,       /* qr_id */
		0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf};
	sample_qr(&t);
	fp_qr_signed_bytes(&t.u.qr, payload);
	assert_memory_equal(payload, want, sizeof(want));
	/* On the wire the signed bytes follow the common part, the signature follows them. */
	assert_int_equal(fp_tap_encode(&t, rec, sizeof(rec)), FP_QR_BYTES);
	assert_memory_equal(rec + FP_TAP_COMMON_BYTES, want, sizeof(want));
	assert_memory_equal(rec + FP_TAP_COMMON_BYTES + FP_QR_PAYLOAD_BYTES, t.u.qr.signature,
			    FP_QR_SIGNATURE_BYTES);
	assert_int_equal(crypto_sign_verify_detached(t.u.qr.signature, payload, sizeof(payload), qr_public), 0);
	for (unsigned i = 0; i < sizeof(payload); i++) {
		payload[i] ^= 0x10;
		assert_int_not_equal(crypto_sign_verify_detached(t.u.qr.signature, payload, sizeof(payload),
								 qr_public), 0);
		payload[i] ^= 0x10;
	}
}

/* ------------------------------------------------------------------ acks */

static void test_ack_roundtrip_full(void **state)
{
	(void)state;
	struct fp_ack_header a, got;
	struct fp_tap_status st[FP_TAPS_PER_FRAME_MAX], back[FP_TAPS_PER_FRAME_MAX];
	uint8_t key[FP_KEY_BYTES], buf[FP_ACK_BYTES_MAX];
	example_key(key);
	example_ack_header(&a);
	a.tap_count = FP_TAPS_PER_FRAME_MAX;
	a.denylist_version = 0x01020304;
	for (unsigned i = 0; i < FP_TAPS_PER_FRAME_MAX; i++)
		st[i] = (struct fp_tap_status){(uint8_t)(i % 4), (uint8_t)(i % 4 == 3 ? 1 + i % 11 : 0)};
	int len = fp_ack_encode(&a, st, key, buf, sizeof(buf));
	assert_int_equal(len, FP_ACK_BYTES_MAX);
	assert_int_equal(FP_ACK_BYTES_MAX, 32 + 2 * 64 + 32);
	assert_int_equal(fp_ack_decode(buf, (size_t)len, key, &got, back), 0);
	assert_int_equal(got.validator_id, 1001);
	assert_int_equal(got.key_id, 1);
	assert_int_equal(got.tap_count, 64);
	assert_int_equal(got.flags, 0);
	assert_int_equal(got.frame_seq, 42);
	assert_int_equal(got.gateway_time_us, a.gateway_time_us);
	assert_int_equal(got.denylist_version, 0x01020304);
	for (unsigned i = 0; i < FP_TAPS_PER_FRAME_MAX; i++) {
		assert_int_equal(back[i].status, st[i].status);
		assert_int_equal(back[i].reason, st[i].reason);
	}
	uint32_t validator_id = 0;
	uint16_t key_id = 0;
	assert_int_equal(fp_ack_peek_validator(buf, (size_t)len, &validator_id, &key_id), 0);
	assert_int_equal(validator_id, 1001);
	assert_int_equal(key_id, 1);
}

/* The deny-list request and reply (docs/PROTOCOL.md section 12): every field comes back, a flipped bit fails. */
static void test_deny_roundtrip(void **state)
{
	(void)state;
	uint8_t key[FP_KEY_BYTES], other[FP_KEY_BYTES], buf[FP_ACK_BYTES_MAX];
	example_key(key);
	memcpy(other, key, sizeof(other));
	other[0] ^= 1;
	struct fp_deny_request rq = {.validator_id = 1001, .key_id = 1, .request_seq = 7, .send_time_us = 1772409600000000ull,
				     .since_version = 300}, rq2;
	int len = fp_deny_request_encode(&rq, key, buf, sizeof(buf));
	assert_int_equal(len, FP_DENY_REQUEST_BYTES);
	assert_int_equal(buf[3], FP_TYPE_DENY_REQUEST);
	assert_int_equal(fp_deny_request_parse(buf, (size_t)len, &rq2), 0);
	assert_int_equal(fp_mac_verify(buf, (size_t)len, key), 0);
	assert_int_equal(fp_mac_verify(buf, (size_t)len, other), FP_ERR_MAC);
	assert_int_equal(rq2.validator_id, 1001);
	assert_int_equal(rq2.key_id, 1);
	assert_int_equal(rq2.request_seq, 7);
	assert_int_equal(rq2.send_time_us, rq.send_time_us);
	assert_int_equal(rq2.since_version, 300);
	assert_int_equal(fp_deny_request_parse(buf, (size_t)len - 1, &rq2), FP_ERR_TRUNCATED);
	buf[3] = FP_TYPE_FRAME;
	assert_int_equal(fp_deny_request_parse(buf, (size_t)len, &rq2), FP_ERR_TYPE);

	struct fp_deny_reply rp = {.validator_id = 1001, .key_id = 1, .count = FP_DENY_ENTRIES_MAX, .flags = FP_DENY_MORE,
				   .request_seq = 7, .gateway_time_us = 1772409600000001ull, .version = 312}, back;
	for (unsigned i = 0; i < FP_DENY_ENTRIES_MAX; i++)
		rp.entries[i] = (struct fp_deny_entry){.medium = (uint8_t)(2 + i % 2), .added = (uint8_t)(i % 3 != 0),
						       .token = 0x7100000000ull + i};
	len = fp_deny_reply_encode(&rp, key, buf, sizeof(buf));
	assert_int_equal(len, 32 + 10 * FP_DENY_ENTRIES_MAX + 32);
	assert_true(len <= (int)FP_ACK_BYTES_MAX);
	assert_int_equal(fp_deny_reply_decode(buf, (size_t)len, key, &back), 0);
	assert_int_equal(back.count, FP_DENY_ENTRIES_MAX);
	assert_int_equal(back.flags, FP_DENY_MORE);
	assert_int_equal(back.request_seq, 7);
	assert_int_equal(back.version, 312);
	for (unsigned i = 0; i < FP_DENY_ENTRIES_MAX; i++) {
		assert_int_equal(back.entries[i].medium, rp.entries[i].medium);
		assert_int_equal(back.entries[i].added, rp.entries[i].added);
		assert_int_equal(back.entries[i].token, rp.entries[i].token);
	}
	assert_int_equal(fp_deny_reply_decode(buf, (size_t)len, other, &back), FP_ERR_MAC);
	buf[40] ^= 0x80;
	assert_int_equal(fp_deny_reply_decode(buf, (size_t)len, key, &back), FP_ERR_MAC);
	assert_int_equal(fp_deny_reply_decode(buf, (size_t)len - 10, key, &back), FP_ERR_MALFORMED);
	rp.count = FP_DENY_ENTRIES_MAX + 1;
	assert_int_equal(fp_deny_reply_encode(&rp, key, buf, sizeof(buf)), FP_ERR_INVALID);
}

static void test_ack_encode_errors(void **state)
{
	(void)state;
	struct fp_ack_header a;
	struct fp_tap_status st[FP_TAPS_PER_FRAME_MAX + 1] = {{0, 0}};
	uint8_t key[FP_KEY_BYTES], buf[FP_ACK_BYTES_MAX + 8];
	example_key(key);
	example_ack_header(&a);
	a.tap_count = FP_TAPS_PER_FRAME_MAX + 1;
	assert_int_equal(fp_ack_encode(&a, st, key, buf, sizeof(buf)), FP_ERR_INVALID);
	a.tap_count = 1;
	assert_int_equal(fp_ack_encode(&a, st, key, buf, 65), FP_ERR_NOSPACE);
	assert_int_equal(fp_ack_encode(&a, st, key, buf, 66), 66);
}

/* The busy reply (section 6.1): 64 bytes, the layout of the document, authenticated, bounded. */
static void test_busy_reply(void **state)
{
	(void)state;
	uint8_t key[FP_KEY_BYTES], buf[FP_BUSY_BYTES + 8];
	example_key(key);
	struct fp_busy b = {.validator_id = 1001, .key_id = 1, .tap_count = 32, .frame_seq = 42,
			    .gateway_time_us = 1795305600000850ull, .retry_after_ms = 250}, got;
	assert_int_equal(fp_busy_encode(&b, key, buf, FP_BUSY_BYTES - 1), FP_ERR_NOSPACE);
	assert_int_equal(fp_busy_encode(&b, key, buf, sizeof(buf)), FP_BUSY_BYTES);
	static const uint8_t head[32] = {0x54, 0x47, 1, 5, 0, 0, 0x03, 0xe9, 0, 1, 32, 0, 0, 0, 0, 0, 0, 0, 0, 42,
					 0x00, 0x06, 0x60, 0xd2, 0x28, 0x8d, 0x23, 0x52, 0, 0, 0, 250};
	assert_memory_equal(buf, head, sizeof(head));
	assert_int_equal(fp_busy_decode(buf, FP_BUSY_BYTES, key, &got), 0);
	assert_int_equal(got.retry_after_ms, 250);
	assert_int_equal(got.frame_seq, 42);
	assert_int_equal(got.tap_count, 32);
	assert_int_equal(fp_busy_decode(buf, FP_BUSY_BYTES, other_key, &got), FP_ERR_MAC);
	assert_int_equal(fp_busy_decode(buf, FP_BUSY_BYTES + 1, key, &got), FP_ERR_MALFORMED);
	assert_int_equal(fp_busy_decode(buf, FP_BUSY_BYTES - 1, key, &got), FP_ERR_TRUNCATED);
	for (size_t i = 0; i < FP_BUSY_BYTES; i++) { /* any changed byte: not a busy reply to act on */
		buf[i] ^= 0x10;
		assert_int_not_equal(fp_busy_decode(buf, FP_BUSY_BYTES, key, &got), 0);
		buf[i] ^= 0x10;
	}
	b.retry_after_ms = 0;
	assert_int_equal(fp_busy_encode(&b, key, buf, sizeof(buf)), FP_ERR_INVALID);
	b.retry_after_ms = FP_RETRY_AFTER_MS_MAX + 1;
	assert_int_equal(fp_busy_encode(&b, key, buf, sizeof(buf)), FP_ERR_INVALID);
	/* an acknowledgement is never taken for a busy reply, nor the other way round */
	b.retry_after_ms = 250;
	fp_busy_encode(&b, key, buf, sizeof(buf));
	struct fp_ack_header ah;
	struct fp_tap_status st[FP_TAPS_PER_FRAME_MAX];
	assert_int_equal(fp_ack_decode(buf, FP_BUSY_BYTES, key, &ah, st), FP_ERR_TYPE);
}

/* A validator must never delete a tap because of an ack it cannot authenticate. */
static void test_forged_and_broken_acks(void **state)
{
	(void)state;
	struct fp_ack_header a, got;
	struct fp_tap_status st = {FP_STATUS_STORED, 0}, back[FP_TAPS_PER_FRAME_MAX];
	uint8_t key[FP_KEY_BYTES], ack[FP_ACK_BYTES_MAX], f[FP_FRAME_BYTES_MAX];
	example_key(key);
	example_ack_header(&a);
	size_t len = (size_t)fp_ack_encode(&a, &st, key, ack, sizeof(ack));
	/* forged: a plausible ack made with a key the attacker guessed */
	uint8_t forged[FP_ACK_BYTES_MAX];
	assert_int_equal(fp_ack_encode(&a, &st, other_key, forged, sizeof(forged)), (int)len);
	assert_int_equal(fp_ack_decode(forged, len, key, &got, back), FP_ERR_MAC);
	/* tampered: the status of a rejected tap turned into "stored" */
	for (size_t i = 0; i < len; i++) {
		ack[i] ^= 0x04;
		int rc = fp_ack_decode(ack, len, key, &got, back);
		assert_int_not_equal(rc, 0);
		ack[i] ^= 0x04;
	}
	assert_int_equal(fp_ack_decode(ack, len, key, &got, back), 0);
	assert_int_equal(fp_ack_decode(ack, len - 1, key, &got, back), FP_ERR_MALFORMED);
	assert_int_equal(fp_ack_decode(ack, 63, key, &got, back), FP_ERR_TRUNCATED);
	ack[10] = FP_TAPS_PER_FRAME_MAX + 1;
	assert_int_equal(fp_ack_decode(ack, len, key, &got, back), FP_ERR_MALFORMED);
	ack[10] = 1, ack[0] = 0;
	assert_int_equal(fp_ack_decode(ack, len, key, &got, back), FP_ERR_MAGIC);
	ack[0] = 0x54, ack[2] = 9;
	assert_int_equal(fp_ack_decode(ack, len, key, &got, back), FP_ERR_VERSION);
	/* a frame is not an ack, even with a valid MAC */
	size_t flen = one_tap_frame(FP_MEDIUM_EPURSE, f);
	assert_int_equal(fp_ack_decode(f, flen, key, &got, back), FP_ERR_TYPE);
	uint32_t validator_id;
	uint16_t key_id;
	assert_int_equal(fp_ack_peek_validator(f, flen, &validator_id, &key_id), FP_ERR_TYPE);
	assert_int_equal(fp_ack_peek_validator(f, 10, &validator_id, &key_id), FP_ERR_TRUNCATED);
}

/* ------------------------------------------------------- identity, content */

static bool key_equal(struct fp_key a, struct fp_key b)
{
	return a.lo == b.lo && a.hi == b.hi;
}

/* Decode the first record of a frame and return its identity key. */
static struct fp_key identity_on_wire(const uint8_t *f, size_t len)
{
	struct fp_frame_header h;
	struct fp_tap t;
	uint16_t off[FP_TAPS_PER_FRAME_MAX];
	assert_int_equal(fp_frame_parse(f, len, &h, off), 0);
	assert_int_equal(fp_tap_decode(f + off[0], f[off[0]], &t), 0);
	return fp_tap_identity(&t, h.validator_id);
}

/* A retransmission, however packed, is recognised as the same transaction. */
static void test_identity_retransmission(void **state)
{
	(void)state;
	struct fp_frame_header h;
	struct fp_tap taps[3];
	uint8_t key[FP_KEY_BYTES], f1[FP_FRAME_BYTES_MAX], f2[FP_FRAME_BYTES_MAX];
	example_key(key);
	for (unsigned m = FP_MEDIUM_EPURSE; m <= FP_MEDIUM_QR; m++) {
		sample_tap(m, &taps[0]);
		example_header(&h);
		int len1 = fp_frame_encode(&h, taps, 1, key, f1, sizeof(f1));
		struct fp_frame_header h1 = h;
		/* later, in a new frame, behind another tap */
		taps[1] = taps[0], taps[0].tap_id ^= 0xffff;
		if (m == FP_MEDIUM_EPURSE)
			taps[0].u.epurse.ctc++;
		if (m == FP_MEDIUM_QR)
			taps[0].u.qr.qr_id[0] ^= 1;
		h.frame_seq = 4242, h.send_time_us += 30000000u;
		int len2 = fp_frame_encode(&h, taps, 2, key, f2, sizeof(f2));
		struct fp_frame_header h2;
		struct fp_tap back;
		uint16_t off[FP_TAPS_PER_FRAME_MAX];
		assert_int_equal(fp_frame_parse(f2, (size_t)len2, &h2, off), 0);
		assert_int_equal(fp_tap_decode(f2 + off[1], f2[off[1]], &back), 0);
		struct fp_key k1 = identity_on_wire(f1, (size_t)len1);
		assert_true(key_equal(k1, fp_tap_identity(&back, h2.validator_id)));
		assert_false(key_equal(k1, identity_on_wire(f2, (size_t)len2)));
		/* and the content is the same: a duplicate, not a conflict */
		assert_int_equal(fp_tap_content(f1 + 40, f1[40], &h1),
				 fp_tap_content(f2 + off[1], f2[off[1]], &h2));
		assert_true(k1.lo != 0 || k1.hi != 0);
	}
}

/* e-purse: the card's transaction (issuer, card, CTC, PSAM id, PSAM serial). */
static void test_identity_epurse(void **state)
{
	(void)state;
	struct fp_tap a, b;
	example_epurse(&a);
	struct fp_key k = fp_tap_identity(&a, 1001);
	b = a, b.u.epurse.ctc++;
	assert_false(key_equal(k, fp_tap_identity(&b, 1001)));
	b = a, b.u.epurse.card_number++;
	assert_false(key_equal(k, fp_tap_identity(&b, 1001)));
	b = a, b.u.epurse.issuer_code++;
	assert_false(key_equal(k, fp_tap_identity(&b, 1001)));
	b = a, b.u.epurse.psam_id[5]++;
	assert_false(key_equal(k, fp_tap_identity(&b, 1001)));
	b = a, b.u.epurse.psam_serial++;
	assert_false(key_equal(k, fp_tap_identity(&b, 1001)));
	/* not identity: what the validator adds, and the amounts (a changed one is a conflict) */
	b = a, b.tap_id++, b.tap_time_us++, b.amount_fen++, b.u.epurse.tac++, b.kind = FP_KIND_EXIT;
	assert_true(key_equal(k, fp_tap_identity(&b, 1001)));
	assert_true(key_equal(k, fp_tap_identity(&a, 1002)));
}

/* QuickPass: the validator's own tap of that account. */
static void test_identity_quickpass(void **state)
{
	(void)state;
	struct fp_tap a, b;
	sample_quickpass(&a);
	struct fp_key k = fp_tap_identity(&a, 1001);
	assert_false(key_equal(k, fp_tap_identity(&a, 1002)));
	b = a, b.tap_id++;
	assert_false(key_equal(k, fp_tap_identity(&b, 1001)));
	b = a, b.u.quickpass.account_token++;
	assert_false(key_equal(k, fp_tap_identity(&b, 1001)));
	b = a, b.u.quickpass.atc++, b.tap_time_us++, b.amount_fen++;
	assert_true(key_equal(k, fp_tap_identity(&b, 1001)));
}

/* QR: the code's id alone, wherever it is scanned (so reuse is seen). */
static void test_identity_qr(void **state)
{
	(void)state;
	struct fp_tap a, b;
	sample_qr(&a);
	struct fp_key k = fp_tap_identity(&a, 1001);
	assert_true(key_equal(k, fp_tap_identity(&a, 1002)));
	b = a, b.tap_id++, b.u.qr.account_token++, b.tap_time_us++;
	assert_true(key_equal(k, fp_tap_identity(&b, 1003)));
	b = a, b.u.qr.qr_id[15]++;
	assert_false(key_equal(k, fp_tap_identity(&b, 1001)));
}

/* The content hash covers the record and its frame context, nothing else. */
static void test_content_hash(void **state)
{
	(void)state;
	struct fp_frame_header h, h2;
	struct fp_tap t;
	uint8_t rec[FP_TAP_BYTES_MAX];
	example_header(&h);
	example_epurse(&t);
	int len = fp_tap_encode(&t, rec, sizeof(rec));
	uint64_t c = fp_tap_content(rec, (size_t)len, &h);
	h2 = h, h2.frame_seq++, h2.send_time_us++, h2.key_id++;
	assert_int_equal(c, fp_tap_content(rec, (size_t)len, &h2));
	h2 = h, h2.validator_id++;
	assert_int_not_equal(c, fp_tap_content(rec, (size_t)len, &h2));
	h2 = h, h2.operator_id++;
	assert_int_not_equal(c, fp_tap_content(rec, (size_t)len, &h2));
	h2 = h, h2.route_id++;
	assert_int_not_equal(c, fp_tap_content(rec, (size_t)len, &h2));
	h2 = h, h2.vehicle_id++;
	assert_int_not_equal(c, fp_tap_content(rec, (size_t)len, &h2));
	for (int i = 0; i < len; i++) {
		rec[i] ^= 0x80;
		assert_int_not_equal(c, fp_tap_content(rec, (size_t)len, &h));
		rec[i] ^= 0x80;
	}
}

/* ---------------------------------------------------------------- garbage */

/* Random and mutated input: only documented codes, records inside the frame, no crash
 * (make check runs this under AddressSanitizer; tests/fuzz_frame.c goes further). */
static void test_garbage(void **state)
{
	(void)state;
	uint8_t f[FP_FRAME_BYTES_MAX + 16], key[FP_KEY_BYTES];
	struct fp_frame_header h;
	struct fp_ack_header ah;
	struct fp_tap t;
	struct fp_tap_status st[FP_TAPS_PER_FRAME_MAX];
	uint16_t off[FP_TAPS_PER_FRAME_MAX];
	example_key(key);
	for (unsigned round = 0; round < 20000; round++) {
		size_t len;
		if (round % 2) {
			len = randombytes_uniform(sizeof(f) + 1);
			randombytes_buf(f, len);
		} else { /* a valid frame with a few bytes changed: gets further */
			len = one_tap_frame(1 + round % 3, f);
			for (unsigned j = 0; j < 3; j++)
				f[randombytes_uniform(40 + 2)] = (uint8_t)randombytes_uniform(256);
		}
		int rc = fp_frame_parse(f, len, &h, off);
		assert_true(rc <= 0 && rc >= FP_ERR_MALFORMED);
		for (unsigned i = 0; rc == 0 && i < h.tap_count; i++) {
			assert_true(off[i] + f[off[i]] <= len - FP_MAC_BYTES);
			int reason = fp_tap_decode(f + off[i], f[off[i]], &t);
			assert_true(reason >= 0 && reason < FP_REASON_COUNT);
		}
		rc = fp_ack_decode(f, len, key, &ah, st);
		assert_true(rc < 0);
	}
}

/* ---------------------------------------------------------- worked example */

/*
 * The annotated hex dumps of docs/PROTOCOL.md section "Worked example" are
 * rendered here from the encoder's output and a table of fields; the test
 * requires the document to hold them verbatim.
 */
enum show { SHOW_DEC, SHOW_HEX, SHOW_BYTES, SHOW_TIME_US, SHOW_FEN, SHOW_MAC };

struct field {
	uint8_t bytes;
	uint8_t show; /* enum show */
	const char *name;
	const char *note;
};

static const struct field frame_fields[] = {
	{2, SHOW_HEX, "magic", "\"TG\""}, {1, SHOW_DEC, "version", NULL},
	{1, SHOW_DEC, "type", "frame"}, {4, SHOW_DEC, "validator_id", NULL},
	{2, SHOW_DEC, "key_id", NULL}, {1, SHOW_DEC, "tap_count", NULL},
	{1, SHOW_DEC, "flags", NULL}, {8, SHOW_DEC, "frame_seq", NULL},
	{8, SHOW_TIME_US, "send_time_us", NULL}, {2, SHOW_DEC, "operator_id", NULL},
	{4, SHOW_DEC, "route_id", NULL}, {4, SHOW_DEC, "vehicle_id", NULL},
	{2, SHOW_DEC, "reserved", NULL},
	{1, SHOW_DEC, "record_len", "tap 1 begins"}, {1, SHOW_DEC, "medium", "transport e-purse"},
	{1, SHOW_DEC, "kind", "board"}, {1, SHOW_DEC, "category", "adult"},
	{4, SHOW_DEC, "tap_id", NULL}, {8, SHOW_TIME_US, "tap_time_us", NULL},
	{4, SHOW_DEC, "stop_id", NULL}, {4, SHOW_FEN, "amount_fen", NULL},
	{4, SHOW_DEC, "issuer_code", NULL}, {8, SHOW_DEC, "card_number", NULL},
	{2, SHOW_DEC, "ctc", NULL}, {4, SHOW_FEN, "balance_before_fen", NULL},
	{4, SHOW_FEN, "balance_after_fen", NULL}, {4, SHOW_HEX, "tac", NULL},
	{6, SHOW_BYTES, "psam_id", NULL}, {4, SHOW_DEC, "psam_serial", NULL},
	{1, SHOW_DEC, "key_version", NULL}, {1, SHOW_DEC, "transaction_type", "purchase"},
	{32, SHOW_MAC, "mac", NULL},
};

static const struct field ack_fields[] = {
	{2, SHOW_HEX, "magic", "\"TG\""}, {1, SHOW_DEC, "version", NULL},
	{1, SHOW_DEC, "type", "acknowledgement"}, {4, SHOW_DEC, "validator_id", NULL},
	{2, SHOW_DEC, "key_id", NULL}, {1, SHOW_DEC, "tap_count", NULL},
	{1, SHOW_DEC, "flags", NULL}, {8, SHOW_DEC, "frame_seq", NULL},
	{8, SHOW_TIME_US, "gateway_time_us", NULL}, {4, SHOW_DEC, "denylist_version", NULL},
	{1, SHOW_DEC, "status", "tap 1: stored"}, {1, SHOW_DEC, "reason", "none"},
	{32, SHOW_MAC, "mac", NULL},
};

struct text {
	char buf[8192];
	size_t len;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(t->buf + t->len, sizeof(t->buf) - t->len, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(t->buf) - t->len);
	t->len += (size_t)n;
}

/* What a field's value means, e.g. "tac = 0xa1b2c3d4". */
static void field_text(struct text *t, const struct field *f, const uint8_t *p, size_t at)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < f->bytes && f->bytes <= 8; i++)
		v = v << 8 | p[i];
	switch (f->show) {
	case SHOW_DEC: text_add(t, "%s = %llu", f->name, (unsigned long long)v); break;
	case SHOW_HEX: text_add(t, "%s = 0x%0*llx", f->name, 2 * f->bytes, (unsigned long long)v); break;
	case SHOW_BYTES: text_add(t, "%s", f->name); break;
	case SHOW_FEN: text_add(t, "%s = %llu (%llu.%02llu CNY)", f->name, (unsigned long long)v,
				(unsigned long long)v / 100, (unsigned long long)v % 100); break;
	case SHOW_MAC: text_add(t, "%s = HMAC-SHA-256 of bytes 0 .. %zu", f->name, at - 1); break;
	case SHOW_TIME_US: {
		time_t s = (time_t)(v / 1000000u);
		struct tm tm;
		char iso[32];
		gmtime_r(&s, &tm);
		strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%S", &tm);
		text_add(t, "%s = %llu (%s.%06lluZ)", f->name, (unsigned long long)v, iso,
			 (unsigned long long)(v % 1000000u));
		break;
	}
	}
	if (f->note != NULL)
		text_add(t, ", %s", f->note);
}

/* One line per field, at most 16 bytes a line: "0004  00 00 03 e9   validator_id = 1001". */
static void render_dump(struct text *t, const uint8_t *buf, size_t len, const struct field *fields,
			unsigned n)
{
	size_t at = 0;
	text_add(t, "```\n");
	for (unsigned i = 0; i < n; i++) {
		for (unsigned done = 0; done < fields[i].bytes; done += 16) {
			unsigned chunk = fields[i].bytes - done < 16 ? fields[i].bytes - done : 16;
			text_add(t, "%04zx ", at + done);
			for (unsigned b = 0; b < 16; b++) {
				if (b < chunk)
					text_add(t, " %02x", buf[at + done + b]);
				else
					text_add(t, "   ");
			}
			if (done == 0) {
				text_add(t, "   ");
				field_text(t, &fields[i], buf + at, at);
			}
			while (t->len > 0 && t->buf[t->len - 1] == ' ')
				t->len--;
			text_add(t, "\n");
		}
		at += fields[i].bytes;
	}
	assert_int_equal(at, len);
	text_add(t, "```\n");
}

static size_t example_frame(uint8_t out[FP_FRAME_BYTES_MAX])
{
	struct fp_frame_header h;
	struct fp_tap t;
	uint8_t key[FP_KEY_BYTES];
	example_header(&h);
	example_epurse(&t);
	example_key(key);
	int len = fp_frame_encode(&h, &t, 1, key, out, FP_FRAME_BYTES_MAX);
	assert_int_equal(len, 134);
	return (size_t)len;
}

static size_t example_ack(uint8_t out[FP_ACK_BYTES_MAX])
{
	struct fp_ack_header a;
	struct fp_tap_status st = {FP_STATUS_STORED, FP_REASON_NONE};
	uint8_t key[FP_KEY_BYTES];
	example_ack_header(&a);
	example_key(key);
	int len = fp_ack_encode(&a, &st, key, out, FP_ACK_BYTES_MAX);
	assert_int_equal(len, 66);
	return (size_t)len;
}

static void render_examples(struct text *frame, struct text *ack)
{
	uint8_t f[FP_FRAME_BYTES_MAX], a[FP_ACK_BYTES_MAX];
	size_t flen = example_frame(f), alen = example_ack(a);
	frame->len = ack->len = 0;
	render_dump(frame, f, flen, frame_fields, sizeof(frame_fields) / sizeof(frame_fields[0]));
	render_dump(ack, a, alen, ack_fields, sizeof(ack_fields) / sizeof(ack_fields[0]));
}

/* The file at path from the repository root, wherever the test runs from. */
static FILE *repo_open(const char *path, char *found, size_t found_len)
{
	static const char *const roots[] = {"", "../", "../../"};
	for (unsigned i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		snprintf(found, found_len, "%s%s", roots[i], path);
		FILE *f = fopen(found, "r");
		if (f != NULL)
			return f;
	}
	fail_msg("%s not found: run the test from the repository root", path);
	return NULL;
}

static void test_worked_example_in_doc(void **state)
{
	(void)state;
	static struct text frame, ack;
	static char doc[256 * 1024];
	char path[256];
	render_examples(&frame, &ack);
	FILE *f = repo_open("docs/PROTOCOL.md", path, sizeof(path));
	size_t n = fread(doc, 1, sizeof(doc) - 1, f);
	fclose(f);
	doc[n] = 0;
	if (strstr(doc, frame.buf) == NULL || strstr(doc, ack.buf) == NULL) {
		fprintf(stderr, "%s\n%s", frame.buf, ack.buf);
		fail_msg("%s: the worked example differs from the encoder's output above;\n"
			 "paste what `build/tests/test_proto --example` prints", path);
	}
}

/* The example decodes back to the documented values, and its ack authenticates. */
static void test_worked_example_decodes(void **state)
{
	(void)state;
	uint8_t f[FP_FRAME_BYTES_MAX], a[FP_ACK_BYTES_MAX], key[FP_KEY_BYTES];
	struct fp_frame_header h, want_h;
	struct fp_ack_header ah;
	struct fp_tap t, want_t;
	struct fp_tap_status st[FP_TAPS_PER_FRAME_MAX];
	uint16_t off[FP_TAPS_PER_FRAME_MAX];
	size_t flen = example_frame(f), alen = example_ack(a);
	example_key(key);
	example_header(&want_h);
	want_h.tap_count = 1;
	example_epurse(&want_t);
	assert_int_equal(fp_frame_parse(f, flen, &h, off), 0);
	assert_header_equal(&h, &want_h);
	assert_int_equal(fp_mac_verify(f, flen, key), 0);
	assert_int_equal(fp_tap_decode(f + off[0], f[off[0]], &t), 0);
	assert_tap_equal(&t, &want_t);
	assert_int_equal(fp_ack_decode(a, alen, key, &ah, st), 0);
	assert_int_equal(ah.frame_seq, 42);
	assert_int_equal(st[0].status, FP_STATUS_STORED);
	/* Spot checks that do not go through the encoder: offsets of the doc's tables. */
	assert_int_equal(f[0] << 8 | f[1], 0x5447);
	assert_int_equal(f[7], 0xe9); /* validator 1001 = 0x3e9 */
	assert_int_equal(f[40], 62);  /* record_len */
	assert_int_equal(f[41], FP_MEDIUM_EPURSE);
	assert_int_equal(f[40 + 61], 6); /* transaction_type, the record's last byte */
}

/* ------------------------------------------------------------------ keys */

static char tmp_path[64];

/* Write text to a temporary key file; returns its path. */
static const char *key_file(const char *text)
{
	snprintf(tmp_path, sizeof(tmp_path), "/tmp/test_proto_keys.XXXXXX");
	int fd = mkstemp(tmp_path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return tmp_path;
}

#define HEX_A "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define HEX_B "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f"

/* Loading text must fail with exactly "PATH:LINE: why" (line 0: "PATH: why"). */
static void expect_key_error(const char *text, int line, const char *why)
{
	char err[512], want[512];
	const char *path = key_file(text);
	assert_null(fp_keys_load(path, err, sizeof(err)));
	if (line > 0)
		snprintf(want, sizeof(want), "%s:%d: %s", path, line, why);
	else
		snprintf(want, sizeof(want), "%s: %s", path, why);
	assert_string_equal(err, want);
	unlink(path);
}

static void test_keys_errors(void **state)
{
	(void)state;
	expect_key_error("[validator_keys]\n1001/1 = " HEX_A "00\n", 2,
			 "key '1001/1': value must be 64 hexadecimal digits");
	expect_key_error("[validator_keys]\n1001/1 = zz" HEX_A "\n", 2,
			 "key '1001/1': value must be 64 hexadecimal digits");
	expect_key_error("[validator_keys]\n1001/1 = \n", 2,
			 "key '1001/1': value must be 64 hexadecimal digits");
	expect_key_error("# header\n[validator_keys]\n1001:1 = " HEX_A "\n", 3,
			 "key '1001': expected VALIDATOR_ID/KEY_ID (INI reads a ':' as '=')");
	expect_key_error("[validator_keys]\n0/1 = " HEX_A "\n", 2,
			 "key '0/1': expected VALIDATOR_ID/KEY_ID (INI reads a ':' as '=')");
	expect_key_error("[validator_keys]\n4294967296/1 = " HEX_A "\n", 2,
			 "key '4294967296/1': expected VALIDATOR_ID/KEY_ID (INI reads a ':' as '=')");
	expect_key_error("[validator_keys]\n1001/65536 = " HEX_A "\n", 2,
			 "key '1001/65536': expected VALIDATOR_ID/KEY_ID (INI reads a ':' as '=')");
	expect_key_error("[validator_keys]\n1001/1 = " HEX_A "\n1001/1 = " HEX_B "\n", 3,
			 "key '1001/1': given twice");
	expect_key_error("[validator_keys]\n1/1 = " HEX_A "\n1/2 = " HEX_A "\n1/3 = " HEX_A
			 "\n1/4 = " HEX_A "\n1/5 = " HEX_A "\n", 6,
			 "key '1/5': more than 4 keys for one validator");
	expect_key_error("[gateway]\n1001/1 = " HEX_A "\n", 2,
			 "key '1001/1': not in section [validator_keys]");
	expect_key_error("[validator_keys]\n1001/1 = " HEX_A "\nno delimiter\n", 3,
			 "syntax error, expected NAME = VALUE");
	/* inih goes on after an error; the message stays that of the first */
	expect_key_error("[validator_keys]\n\n1001/1 = 12\n\n7/7 = xx\n", 3,
			 "key '1001/1': value must be 64 hexadecimal digits");
	expect_key_error("# nothing\n", 0, "no keys in section [validator_keys]");
	char err[512];
	assert_null(fp_keys_load("/nonexistent/keys", err, sizeof(err)));
	assert_string_equal(err, "/nonexistent/keys: cannot read: No such file or directory");
}

/*
 * A key file is a secret: refused if group or others may read or write it,
 * if it is not a regular file (a FIFO would block, /dev/zero never ends),
 * and if a key is all zeros (a template's placeholder).
 */
static void test_keys_secret_checks(void **state)
{
	(void)state;
	char err[512], want[600], fifo[] = "/tmp/test_proto_fifo.XXXXXX";
	expect_key_error("[validator_keys]\n1001/1 = " HEX_A "\n1002/1 = "
			 "0000000000000000000000000000000000000000000000000000000000000000\n",
			 3, "key '1002/1': all zeros is a placeholder, not a key");
	static const unsigned modes[] = {0644, 0640, 0604, 0660, 0666, 0601};
	for (unsigned i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		const char *path = key_file("[validator_keys]\n1001/1 = " HEX_A "\n");
		assert_int_equal(chmod(path, modes[i]), 0);
		assert_null(fp_keys_load(path, err, sizeof(err)));
		snprintf(want, sizeof(want), "%s: mode %04o: a key file must not be readable or writable by group or "
					     "others; chmod 600 %s", path, modes[i], path);
		assert_string_equal(err, want);
		assert_int_equal(chmod(path, 0400), 0); /* owner-only, read-only: accepted */
		struct fp_keys *k = fp_keys_load(path, err, sizeof(err));
		assert_non_null(k);
		fp_keys_free(k);
		unlink(path);
	}
	assert_null(fp_keys_load("/dev/zero", err, sizeof(err)));
	assert_string_equal(err, "/dev/zero: not a regular file (a key file is a plain file, not a FIFO, device or directory)");
	assert_non_null(mkdtemp(fifo));
	char fifo_path[64];
	snprintf(fifo_path, sizeof(fifo_path), "%s/keys", fifo);
	assert_int_equal(mkfifo(fifo_path, 0600), 0);
	assert_null(fp_keys_load(fifo_path, err, sizeof(err))); /* returns at once: no writer needed */
	assert_non_null(strstr(err, ": not a regular file"));
	unlink(fifo_path);
	rmdir(fifo);
}

/* Two keys of one validator during a rotation; lookups say why they fail. */
static void test_keys_rotation_and_misses(void **state)
{
	(void)state;
	char err[512] = "";
	int why = 0;
	const char *path = key_file("[validator_keys]\n1001/1 = " HEX_A "\n1001/2 = " HEX_B
				    "\n  ; comment\n7/65535 = " HEX_B "\n");
	struct fp_keys *k = fp_keys_load(path, err, sizeof(err));
	unlink(path);
	assert_non_null(k);
	assert_int_equal(fp_keys_count(k), 2);
	const uint8_t *a = fp_keys_find(k, 1001, 1, &why), *b = fp_keys_find(k, 1001, 2, &why);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(a[0], 0x00);
	assert_int_equal(a[31], 0x1f);
	assert_int_equal(b[0], 0xf0);
	assert_non_null(fp_keys_find(k, 7, 65535, &why));
	assert_null(fp_keys_find(k, 1001, 3, &why));
	assert_int_equal(why, FP_ERR_KEY);
	why = 0;
	assert_null(fp_keys_find(k, 1002, 1, &why));
	assert_int_equal(why, FP_ERR_VALIDATOR);
	why = 0;
	assert_null(fp_keys_find(k, 0, 1, &why));
	assert_int_equal(why, FP_ERR_VALIDATOR);
	fp_keys_free(k);
}

/* The development key file: 1001..1256, key id 1, each as its line says. */
static void test_keys_development_file(void **state)
{
	(void)state;
	char path[256], err[512] = "", line[256];
	FILE *f = repo_open("config/dev-validators.keys", path, sizeof(path));
	struct fp_keys *k = fp_keys_load(path, err, sizeof(err));
	assert_non_null(k);
	assert_int_equal(fp_keys_count(k), 256);
	unsigned seen = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned validator_id, key_id;
		char hex[65];
		uint8_t want[FP_KEY_BYTES];
		if (sscanf(line, "%u/%u = %64s", &validator_id, &key_id, hex) != 3)
			continue;
		assert_int_equal(sodium_hex2bin(want, sizeof(want), hex, 64, NULL, NULL, NULL), 0);
		int why = 0;
		const uint8_t *key = fp_keys_find(k, validator_id, (uint16_t)key_id, &why);
		assert_non_null(key);
		assert_memory_equal(key, want, sizeof(want));
		assert_int_equal(validator_id, 1001 + seen);
		assert_int_equal(key_id, 1);
		seen++;
	}
	fclose(f);
	assert_int_equal(seen, 256);
	fp_keys_free(k);
}

/* A key file of n validators 100000, 100007, ...; key bytes 0 .. 0, i + 1 (never all zeros). */
static const char *many_keys_file(uint32_t n)
{
	snprintf(tmp_path, sizeof(tmp_path), "/tmp/test_proto_many.XXXXXX");
	int fd = mkstemp(tmp_path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f, "[validator_keys]\n");
	for (uint32_t i = 0; i < n; i++)
		fprintf(f, "%u/1 = %056x%08x\n", 100000 + i * 7, 0u, i + 1);
	fclose(f);
	return tmp_path;
}

/* The most validators the table takes, every one found, and one more refused. */
static void test_keys_capacity(void **state)
{
	(void)state;
	char err[512];
	const char *path = many_keys_file(FP_VALIDATORS_MAX + 1);
	assert_null(fp_keys_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, ": key '558752/1': more than 65536 validators"));
	unlink(path);
	path = many_keys_file(FP_VALIDATORS_MAX);
	struct fp_keys *k = fp_keys_load(path, err, sizeof(err));
	unlink(path);
	assert_non_null(k);
	assert_int_equal(fp_keys_count(k), FP_VALIDATORS_MAX);
	for (uint32_t i = 0; i < FP_VALIDATORS_MAX; i++) {
		int why = 0;
		const uint8_t *key = fp_keys_find(k, 100000 + i * 7, 1, &why);
		assert_non_null(key);
		assert_int_equal(key[30] << 8 | key[31], (i + 1) & 0xffff);
	}
	int why = 0;
	assert_null(fp_keys_find(k, 100001, 1, &why));
	assert_int_equal(why, FP_ERR_VALIDATOR);
	fp_keys_free(k);
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--example") == 0) {
		static struct text frame, ack;
		if (sodium_init() < 0)
			return 1;
		render_examples(&frame, &ack);
		printf("%s\n%s", frame.buf, ack.buf);
		return 0;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_hist_bucket_and_clocks),
		cmocka_unit_test(test_tap_bytes),
		cmocka_unit_test(test_roundtrip_epurse),
		cmocka_unit_test(test_roundtrip_quickpass),
		cmocka_unit_test(test_roundtrip_qr),
		cmocka_unit_test(test_roundtrip_mixed),
		cmocka_unit_test(test_max_taps_per_medium),
		cmocka_unit_test(test_encode_errors),
		cmocka_unit_test(test_frame_errors_in_order),
		cmocka_unit_test(test_frame_record_walk),
		cmocka_unit_test(test_unknown_medium_is_not_a_frame_error),
		cmocka_unit_test(test_mac_every_byte),
		cmocka_unit_test(test_record_common_reasons),
		cmocka_unit_test(test_record_medium_fields),
		cmocka_unit_test(test_qr_signed_bytes),
		cmocka_unit_test(test_ack_roundtrip_full),
		cmocka_unit_test(test_ack_encode_errors),
		cmocka_unit_test(test_forged_and_broken_acks),
		cmocka_unit_test(test_busy_reply),
		cmocka_unit_test(test_identity_retransmission),
		cmocka_unit_test(test_identity_epurse),
		cmocka_unit_test(test_identity_quickpass),
		cmocka_unit_test(test_identity_qr),
		cmocka_unit_test(test_content_hash),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_worked_example_decodes),
		cmocka_unit_test(test_worked_example_in_doc),
		cmocka_unit_test(test_keys_errors),
		cmocka_unit_test(test_keys_secret_checks),
		cmocka_unit_test(test_keys_rotation_and_misses),
		cmocka_unit_test(test_keys_development_file),
		cmocka_unit_test(test_keys_capacity),
		cmocka_unit_test(test_deny_roundtrip),
	};
	return cmocka_run_group_tests_name("proto", tests, setup_sodium, NULL);
}
