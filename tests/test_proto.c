/*
 * test_proto.c - the wire protocol: the worked example of docs/PROTOCOL.md
 * byte for byte, round trips of every medium, every frame error and every
 * record rejection, forged acknowledgements, and the identity key rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fastpath/fastpath.h"

#include <sodium.h>
#include <string.h>

/* docs/PROTOCOL.md, "Worked example": key bytes 00 01 02 ... 1f. */
static const uint8_t example_frame[134] = {
	0x54, 0x47, 0x01, 0x01, 0x00, 0x00, 0x03, 0xe9, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x2a, 0x00, 0x06, 0x60, 0xd5, 0x82, 0xdb, 0xb0, 0x00, 0x00, 0x01, 0x00, 0x00,
	0x01, 0x2d, 0x00, 0x00, 0x27, 0x11, 0x00, 0x00, 0x3e, 0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x07,
	0x00, 0x06, 0x60, 0xd5, 0x82, 0x44, 0xfb, 0xc0, 0x00, 0x01, 0x86, 0xb1, 0x00, 0x00, 0x00, 0xc8,
	0x00, 0x00, 0x0a, 0x64, 0x2b, 0x14, 0x91, 0x7a, 0xda, 0x52, 0xd0, 0x39, 0x00, 0x12, 0x00, 0x00,
	0x13, 0x88, 0x00, 0x00, 0x12, 0xc0, 0xa1, 0xb2, 0xc3, 0xd4, 0x37, 0x02, 0x66, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x23, 0x29, 0x01, 0x06, 0x78, 0x41, 0x5e, 0xd3, 0xaf, 0x1b, 0x7d, 0x1a, 0xd7, 0x53,
	0xca, 0x36, 0xa5, 0xf3, 0x15, 0x0a, 0xa2, 0x86, 0xd9, 0xd9, 0xee, 0x9a, 0xff, 0x56, 0x6b, 0xcb,
	0xaf, 0xcc, 0x52, 0xa3, 0x15, 0x93};
static const uint8_t example_ack[66] = {
	0x54, 0x47, 0x01, 0x02, 0x00, 0x00, 0x03, 0xe9, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x2a, 0x00, 0x06, 0x60, 0xd5, 0x82, 0xdb, 0xb3, 0x52, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x2d, 0x4c, 0x17, 0x49, 0x7c, 0x59, 0x68, 0xa1, 0xb5, 0xaf, 0x52, 0x11, 0x9b, 0x4d,
	0x6d, 0x7e, 0xab, 0x95, 0xcc, 0xf5, 0xd4, 0x6c, 0x10, 0xb7, 0x6e, 0xe3, 0x77, 0x7e, 0xaf, 0x3e,
	0x56, 0x2f};

static uint8_t key[FP_KEY_BYTES];

static struct fp_frame_header example_header(void)
{
	return (struct fp_frame_header){.validator_id = 1001, .key_id = 1, .frame_seq = 42,
					.send_time_us = 1795320000000000ull, .operator_id = 1,
					.route_id = 301, .vehicle_id = 10001};
}

static struct fp_tap example_tap(void)
{
	return (struct fp_tap){
		.medium = FP_MEDIUM_EPURSE, .kind = FP_KIND_BOARD, .category = FP_CATEGORY_ADULT,
		.tap_id = 7, .tap_time_us = 1795319990123456ull, .stop_id = 100017, .amount_fen = 200,
		.u.epurse = {.issuer_code = 2660, .card_number = 3104266000000012345ull, .ctc = 18,
			     .balance_before_fen = 5000, .balance_after_fen = 4800, .tac = 0xA1B2C3D4,
			     .psam_id = {0x37, 0x02, 0x66, 0x00, 0x00, 0x01}, .psam_serial = 9001,
			     .key_version = 1, .transaction_type = 6}};
}

static int setup(void **state)
{
	(void)state;
	for (unsigned i = 0; i < FP_KEY_BYTES; i++)
		key[i] = (uint8_t)i;
	return sodium_init() < 0;
}

static void test_worked_example_frame(void **state)
{
	(void)state;
	struct fp_frame_header h = example_header();
	struct fp_tap t = example_tap(), back;
	uint8_t out[FP_FRAME_BYTES_MAX];
	int len = fp_frame_encode(&h, &t, 1, key, out, sizeof(out));
	assert_int_equal(len, sizeof(example_frame));
	assert_memory_equal(out, example_frame, sizeof(example_frame));
	uint16_t off[FP_TAPS_PER_FRAME_MAX];
	struct fp_frame_header parsed;
	assert_int_equal(fp_frame_parse(example_frame, sizeof(example_frame), &parsed, off), 0);
	assert_int_equal(fp_mac_verify(example_frame, sizeof(example_frame), key), 0);
	assert_int_equal(parsed.validator_id, 1001);
	assert_int_equal(parsed.frame_seq, 42);
	assert_int_equal(parsed.route_id, 301);
	assert_int_equal(off[0], FP_FRAME_HEADER_BYTES);
	assert_int_equal(fp_tap_decode(example_frame + off[0], example_frame[off[0]], &back), 0);
	assert_memory_equal(&back.u.epurse, &t.u.epurse, sizeof(t.u.epurse));
	assert_int_equal(back.tap_time_us, t.tap_time_us);
	assert_int_equal(back.amount_fen, 200);
}

static void test_worked_example_ack(void **state)
{
	(void)state;
	struct fp_ack_header a = {.validator_id = 1001, .key_id = 1, .tap_count = 1, .frame_seq = 42,
				  .gateway_time_us = 1795320000000850ull};
	struct fp_tap_status st = {FP_STATUS_STORED, 0}, back[FP_TAPS_PER_FRAME_MAX];
	uint8_t out[FP_ACK_BYTES_MAX];
	assert_int_equal(fp_ack_encode(&a, &st, key, out, sizeof(out)), sizeof(example_ack));
	assert_memory_equal(out, example_ack, sizeof(example_ack));
	struct fp_ack_header h;
	assert_int_equal(fp_ack_decode(example_ack, sizeof(example_ack), key, &h, back), 0);
	assert_int_equal(h.frame_seq, 42);
	assert_int_equal(back[0].status, FP_STATUS_STORED);
}

static void test_forged_ack_is_refused(void **state)
{
	(void)state;
	uint8_t forged[sizeof(example_ack)], other_key[FP_KEY_BYTES] = {9};
	struct fp_ack_header h;
	struct fp_tap_status st[FP_TAPS_PER_FRAME_MAX];
	memcpy(forged, example_ack, sizeof(forged));
	forged[FP_ACK_HEADER_BYTES] = FP_STATUS_DUPLICATE; /* flip the status, keep the MAC */
	assert_int_equal(fp_ack_decode(forged, sizeof(forged), key, &h, st), FP_ERR_MAC);
	assert_int_equal(fp_ack_decode(example_ack, sizeof(example_ack), other_key, &h, st), FP_ERR_MAC);
	assert_int_equal(fp_ack_decode(example_ack, sizeof(example_ack) - 1, key, &h, st), FP_ERR_MALFORMED);
	assert_int_equal(fp_ack_decode(example_frame, sizeof(example_frame), key, &h, st), FP_ERR_TYPE);
}

static struct fp_tap tap_of(unsigned medium)
{
	struct fp_tap t = example_tap();
	t.medium = (uint8_t)medium;
	if (medium != FP_MEDIUM_EPURSE)
		memset(&t.u, 0, sizeof(t.u)); /* a decoded tap has nothing beyond its medium */
	if (medium == FP_MEDIUM_QUICKPASS)
		t.u.quickpass = (struct fp_quickpass){.account_token = 77, .atc = 5, .expiry_yymm = 2912};
	if (medium == FP_MEDIUM_QR) {
		t.u.qr = (struct fp_qr){.qr_version = 1, .account_token = 88, .issued_at_s = 100, .expires_at_s = 160};
		memset(t.u.qr.qr_id, 0x42, sizeof(t.u.qr.qr_id));
		memset(t.u.qr.signature, 0x17, sizeof(t.u.qr.signature));
	}
	return t;
}

static void test_round_trip_every_medium_and_full_frames(void **state)
{
	(void)state;
	static const unsigned expect_max[4] = {0, 21, 34, 10};
	for (unsigned m = FP_MEDIUM_EPURSE; m <= FP_MEDIUM_QR; m++) {
		struct fp_tap taps[FP_TAPS_PER_FRAME_MAX], back;
		for (unsigned i = 0; i < FP_TAPS_PER_FRAME_MAX; i++) {
			taps[i] = tap_of(m);
			taps[i].tap_id = i;
		}
		uint8_t out[FP_FRAME_BYTES_MAX];
		struct fp_frame_header h = example_header();
		/* The most taps of this medium that fit 1400 bytes, and not one more. */
		assert_true(fp_frame_encode(&h, taps, expect_max[m], key, out, sizeof(out)) > 0);
		assert_int_equal(fp_frame_encode(&h, taps, expect_max[m] + 1, key, out, sizeof(out)), FP_ERR_NOSPACE);
		int len = fp_frame_encode(&h, taps, expect_max[m], key, out, sizeof(out));
		uint16_t off[FP_TAPS_PER_FRAME_MAX];
		struct fp_frame_header parsed;
		assert_int_equal(fp_frame_parse(out, (size_t)len, &parsed, off), 0);
		assert_int_equal(parsed.tap_count, expect_max[m]);
		for (unsigned i = 0; i < parsed.tap_count; i++) {
			assert_int_equal(fp_tap_decode(out + off[i], out[off[i]], &back), 0);
			assert_int_equal(back.tap_id, i);
			assert_memory_equal(&back.u, &taps[i].u, sizeof(back.u));
		}
	}
}

static void test_frame_errors(void **state)
{
	(void)state;
	uint8_t f[FP_FRAME_BYTES_MAX + 10];
	struct fp_frame_header h;
	memcpy(f, example_frame, sizeof(example_frame));
	assert_int_equal(fp_frame_parse(f, FP_FRAME_BYTES_MAX + 1, &h, NULL), FP_ERR_OVERSIZED);
	assert_int_equal(fp_frame_parse(f, 50, &h, NULL), FP_ERR_TRUNCATED);
	f[0] = 0x55;
	assert_int_equal(fp_frame_parse(f, sizeof(example_frame), &h, NULL), FP_ERR_MAGIC);
	f[0] = 0x54, f[2] = 2;
	assert_int_equal(fp_frame_parse(f, sizeof(example_frame), &h, NULL), FP_ERR_VERSION);
	f[2] = 1, f[3] = FP_TYPE_ACK;
	assert_int_equal(fp_frame_parse(f, sizeof(example_frame), &h, NULL), FP_ERR_TYPE);
	f[3] = FP_TYPE_FRAME, f[10] = 2; /* says two taps, holds one */
	assert_int_equal(fp_frame_parse(f, sizeof(example_frame), &h, NULL), FP_ERR_MALFORMED);
	f[10] = 0;
	assert_int_equal(fp_frame_parse(f, sizeof(example_frame), &h, NULL), FP_ERR_MALFORMED);
	f[10] = 1, f[40] = 10; /* record length below the common part */
	assert_int_equal(fp_frame_parse(f, sizeof(example_frame), &h, NULL), FP_ERR_MALFORMED);
	f[40] = 200; /* record runs into the MAC */
	assert_int_equal(fp_frame_parse(f, sizeof(example_frame), &h, NULL), FP_ERR_MALFORMED);
	memcpy(f, example_frame, sizeof(example_frame));
	assert_int_equal(fp_frame_parse(f, sizeof(example_frame), &h, NULL), 0);
	f[60] ^= 1; /* any changed bit: the MAC fails */
	assert_int_equal(fp_mac_verify(f, sizeof(example_frame), key), FP_ERR_MAC);
}

static void expect_reason(struct fp_tap t, int reason)
{
	uint8_t rec[FP_TAP_BYTES_MAX];
	struct fp_tap back;
	int len = fp_tap_encode(&t, rec, sizeof(rec));
	assert_true(len > 0);
	assert_int_equal(fp_tap_decode(rec, (size_t)len, &back), reason);
}

static void test_record_rejections(void **state)
{
	(void)state;
	struct fp_tap t = example_tap();
	uint8_t rec[FP_TAP_BYTES_MAX];
	struct fp_tap back;
	int len = fp_tap_encode(&t, rec, sizeof(rec));
	rec[1] = 9; /* a medium from the future */
	assert_int_equal(fp_tap_decode(rec, (size_t)len, &back), FP_REASON_MEDIUM);
	rec[1] = FP_MEDIUM_QUICKPASS; /* an e-purse-sized QuickPass record */
	assert_int_equal(fp_tap_decode(rec, (size_t)len, &back), FP_REASON_LENGTH);
	t.kind = 5;
	expect_reason(t, FP_REASON_KIND);
	t = example_tap(), t.category = 4;
	expect_reason(t, FP_REASON_CATEGORY);
	t = example_tap(), t.u.epurse.card_number = FP_CARD_NUMBER_MAX + 1;
	expect_reason(t, FP_REASON_FIELD);
	t = example_tap(), t.u.epurse.transaction_type = 7;
	expect_reason(t, FP_REASON_FIELD);
	t = tap_of(FP_MEDIUM_QUICKPASS), t.u.quickpass.expiry_yymm = 2913;
	expect_reason(t, FP_REASON_FIELD);
	t = tap_of(FP_MEDIUM_QUICKPASS), t.u.quickpass.oda_result = 3;
	expect_reason(t, FP_REASON_FIELD);
	t = tap_of(FP_MEDIUM_QR), t.u.qr.expires_at_s = t.u.qr.issued_at_s;
	expect_reason(t, FP_REASON_FIELD);
	t = tap_of(FP_MEDIUM_QR), t.u.qr.qr_version = 2;
	expect_reason(t, FP_REASON_FIELD);
	expect_reason(tap_of(FP_MEDIUM_QR), 0);
}

static void test_identity_rules(void **state)
{
	(void)state;
	struct fp_tap a = example_tap(), b = example_tap();
	/* Same card transaction: same key, whatever the validator's tap id or amount. */
	b.tap_id = 99, b.amount_fen = 300;
	struct fp_key ka = fp_tap_identity(&a, 1001), kb = fp_tap_identity(&b, 1001);
	assert_true(ka.lo == kb.lo && ka.hi == kb.hi);
	b = example_tap(), b.u.epurse.ctc++;
	kb = fp_tap_identity(&b, 1001);
	assert_false(ka.lo == kb.lo && ka.hi == kb.hi);
	/* QuickPass: the validator's own tap id, per validator. */
	struct fp_tap q = tap_of(FP_MEDIUM_QUICKPASS);
	struct fp_key q1 = fp_tap_identity(&q, 1001), q2 = fp_tap_identity(&q, 1002);
	assert_false(q1.lo == q2.lo && q1.hi == q2.hi);
	/* QR: the code itself, wherever it is scanned. */
	struct fp_tap r = tap_of(FP_MEDIUM_QR);
	struct fp_key r1 = fp_tap_identity(&r, 1001), r2 = fp_tap_identity(&r, 1002);
	assert_true(r1.lo == r2.lo && r1.hi == r2.hi);
	/* Content: the same record in another frame context differs. */
	struct fp_frame_header h = example_header();
	uint8_t rec[FP_TAP_BYTES_MAX];
	int len = fp_tap_encode(&a, rec, sizeof(rec));
	uint64_t c1 = fp_tap_content(rec, (size_t)len, &h);
	h.route_id++;
	assert_true(c1 != fp_tap_content(rec, (size_t)len, &h));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_worked_example_frame),
		cmocka_unit_test(test_worked_example_ack),
		cmocka_unit_test(test_forged_ack_is_refused),
		cmocka_unit_test(test_round_trip_every_medium_and_full_frames),
		cmocka_unit_test(test_frame_errors),
		cmocka_unit_test(test_record_rejections),
		cmocka_unit_test(test_identity_rules),
	};
	return cmocka_run_group_tests_name("proto", tests, setup, NULL);
}
