/*
 * fuzz_frame.c - libFuzzer target for everything that reads untrusted bytes:
 * the frame parser, the tap record decoder and the acknowledgement decoder.
 * Half the inputs are re-MACed with a fixed key first, so the fuzzer also
 * explores what lies behind a valid MAC (record walking and decoding).
 * Built by `make fuzz` with clang -fsanitize=fuzzer,address,undefined.
 */
#include "fastpath/fastpath.h"

#include <sodium.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_records(const uint8_t *buf, size_t len)
{
	struct fp_frame_header h;
	uint16_t off[FP_TAPS_PER_FRAME_MAX];
	if (fp_frame_parse(buf, len, &h, off) != 0)
		return;
	for (unsigned i = 0; i < h.tap_count; i++) {
		struct fp_tap t;
		/* fp_frame_parse promised each record lies inside the frame. */
		if (off[i] + (size_t)buf[off[i]] > len - FP_MAC_BYTES)
			__builtin_trap();
		if (fp_tap_decode(buf + off[i], buf[off[i]], &t) == 0) {
			(void)fp_tap_identity(&t, h.validator_id);
			(void)fp_tap_content(buf + off[i], buf[off[i]], &h);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t key[FP_KEY_BYTES] = {1, 2, 3};
	uint8_t buf[FP_FRAME_BYTES_MAX + 64];
	struct fp_ack_header ah;
	struct fp_tap_status st[FP_TAPS_PER_FRAME_MAX];
	if (size > sizeof(buf))
		return 0;
	memcpy(buf, data, size);
	decode_records(buf, size);
	(void)fp_mac_verify(buf, size, key);
	(void)fp_ack_decode(buf, size, key, &ah, st);
	if (size > FP_MAC_BYTES && (size & 1)) {
		crypto_auth_hmacsha256(buf + size - FP_MAC_BYTES, buf, size - FP_MAC_BYTES, key);
		if (fp_mac_verify(buf, size, key) != 0)
			__builtin_trap();
		decode_records(buf, size);
		(void)fp_ack_decode(buf, size, key, &ah, st);
	}
	return 0;
}
