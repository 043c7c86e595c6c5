/*
 * proto.c - the wire protocol: frames, tap records, acknowledgements, busy
 * replies, deny-list messages, MACs, identity keys. docs/PROTOCOL.md is the specification; tests/test_proto.c
 * holds its worked example byte for byte, so the two cannot drift.
 *
 * Everything here reads untrusted bytes: every read is bounded by the length
 * the caller gives, before anything else is looked at. Integers on the wire
 * are big-endian; records are length-prefixed so that a medium this gateway
 * does not know can be rejected on its own without losing the frame.
 */
#include "proto/proto.h"
#include "base/assert.h"
#include "store/store.h"

#include <assert.h>
#include <pthread.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

static_assert(FP_ACK_BYTES_MAX <= FP_FRAME_BYTES_MAX, "an ack for a full frame fits a datagram");
static_assert(FP_TAP_BYTES_MAX < 256, "record_len is one byte");
static_assert(FP_FRAME_HEADER_BYTES + FP_TAP_BYTES_MAX + FP_MAC_BYTES <= FP_FRAME_BYTES_MAX,
	      "a frame holds at least one record of every medium");
static_assert(FP_FRAME_BYTES_MAX <= UINT16_MAX, "record offsets are 16 bits");
static_assert(FP_TAPS_PER_FRAME_MAX <= UINT8_MAX, "tap_count is one byte");

/* ------------------------------------------------------------- byte order */

static inline void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}
static inline void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}
static inline uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t get32(const uint8_t *p) { return ((uint32_t)get16(p) << 16) | get16(p + 2); }
static inline uint64_t get64(const uint8_t *p) { return ((uint64_t)get32(p) << 32) | get32(p + 4); }

/* ------------------------------------------------------------------ names */

const char *fp_strerror(int err)
{
	switch (err) {
	case 0: return "ok";
	case FP_ERR_TRUNCATED: return "frame truncated";
	case FP_ERR_OVERSIZED: return "frame larger than 1400 bytes";
	case FP_ERR_MAGIC: return "not a tapgate frame (magic)";
	case FP_ERR_VERSION: return "protocol version not spoken";
	case FP_ERR_TYPE: return "unexpected message type";
	case FP_ERR_MALFORMED: return "record lengths do not add up";
	case FP_ERR_MAC: return "MAC does not verify";
	case FP_ERR_VALIDATOR: return "unknown validator";
	case FP_ERR_KEY: return "unknown key id";
	case FP_ERR_NOSPACE: return "does not fit";
	case FP_ERR_INVALID: return "field out of range";
	case FP_ERR_STORED: return "stored record does not match its identity key or content hash";
	default: return "unknown protocol error";
	}
}

const char *fp_reason_name(unsigned reason)
{
	static const char *const names[FP_REASON_COUNT] = {
		"none", "medium", "length", "kind", "category", "time_future", "time_old",
		"amount", "field", "qr_signature", "qr_expired", "qr_reuse"};
	return reason < FP_REASON_COUNT ? names[reason] : "unknown";
}

const char *fp_status_name(unsigned status)
{
	static const char *const names[] = {"stored", "duplicate", "conflict", "rejected"};
	return status < 4 ? names[status] : "unknown";
}

const char *fp_medium_name(unsigned medium)
{
	switch (medium) {
	case FP_MEDIUM_EPURSE: return "epurse";
	case FP_MEDIUM_QUICKPASS: return "quickpass";
	case FP_MEDIUM_QR: return "qr";
	default: return "unknown";
	}
}

uint64_t fp_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t fp_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ------------------------------------------------------------ tap records */

size_t fp_tap_bytes(unsigned medium)
{
	switch (medium) {
	case FP_MEDIUM_EPURSE: return FP_EPURSE_BYTES;
	case FP_MEDIUM_QUICKPASS: return FP_QUICKPASS_BYTES;
	case FP_MEDIUM_QR: return FP_QR_BYTES;
	default: return 0;
	}
}

void fp_qr_signed_bytes(const struct fp_qr *qr, uint8_t out[FP_QR_PAYLOAD_BYTES])
{
	out[0] = qr->qr_version;
	put64(out + 1, qr->account_token);
	put32(out + 9, qr->issued_at_s);
	put32(out + 13, qr->expires_at_s);
	memcpy(out + 17, qr->qr_id, sizeof(qr->qr_id));
}

static void epurse_put(const struct fp_epurse *e, uint8_t *p)
{
	put32(p, e->issuer_code);
	put64(p + 4, e->card_number);
	put16(p + 12, e->ctc);
	put32(p + 14, e->balance_before_fen);
	put32(p + 18, e->balance_after_fen);
	put32(p + 22, e->tac);
	memcpy(p + 26, e->psam_id, 6);
	put32(p + 32, e->psam_serial);
	p[36] = e->key_version;
	p[37] = e->transaction_type;
}

static void epurse_get(const uint8_t *p, struct fp_epurse *e)
{
	e->issuer_code = get32(p);
	e->card_number = get64(p + 4);
	e->ctc = get16(p + 12);
	e->balance_before_fen = get32(p + 14);
	e->balance_after_fen = get32(p + 18);
	e->tac = get32(p + 22);
	memcpy(e->psam_id, p + 26, 6);
	e->psam_serial = get32(p + 32);
	e->key_version = p[36];
	e->transaction_type = p[37];
}

int fp_tap_encode(const struct fp_tap *tap, uint8_t *out, size_t cap)
{
	size_t len = fp_tap_bytes(tap->medium);
	if (len == 0)
		return FP_ERR_INVALID;
	if (len > cap)
		return FP_ERR_NOSPACE;
	out[0] = (uint8_t)len;
	out[1] = tap->medium;
	out[2] = tap->kind;
	out[3] = tap->category;
	put32(out + 4, tap->tap_id);
	put64(out + 8, tap->tap_time_us);
	put32(out + 16, tap->stop_id);
	put32(out + 20, tap->amount_fen);
	uint8_t *body = out + FP_TAP_COMMON_BYTES;
	switch (tap->medium) {
	case FP_MEDIUM_EPURSE:
		epurse_put(&tap->u.epurse, body);
		break;
	case FP_MEDIUM_QUICKPASS:
		put64(body, tap->u.quickpass.account_token);
		put16(body + 8, tap->u.quickpass.atc);
		put16(body + 10, tap->u.quickpass.expiry_yymm);
		body[12] = tap->u.quickpass.oda_result;
		body[13] = tap->u.quickpass.pan_sequence;
		break;
	case FP_MEDIUM_QR:
		fp_qr_signed_bytes(&tap->u.qr, body);
		memcpy(body + FP_QR_PAYLOAD_BYTES, tap->u.qr.signature, FP_QR_SIGNATURE_BYTES);
		break;
	}
	return (int)len;
}

/* Range checks of the medium's own fields. Returns 0 or FP_REASON_FIELD. */
static int medium_check(const struct fp_tap *tap)
{
	switch (tap->medium) {
	case FP_MEDIUM_EPURSE: {
		const struct fp_epurse *e = &tap->u.epurse;
		bool ok = e->card_number <= FP_CARD_NUMBER_MAX &&
			  (e->transaction_type == 6 || e->transaction_type == 9);
		return ok ? 0 : FP_REASON_FIELD;
	}
	case FP_MEDIUM_QUICKPASS: {
		unsigned month = tap->u.quickpass.expiry_yymm % 100;
		bool ok = month >= 1 && month <= 12 && tap->u.quickpass.expiry_yymm <= 9912 &&
			  tap->u.quickpass.oda_result <= 2;
		return ok ? 0 : FP_REASON_FIELD;
	}
	default: {
		const struct fp_qr *q = &tap->u.qr;
		return q->qr_version == 1 && q->issued_at_s < q->expires_at_s ? 0 : FP_REASON_FIELD;
	}
	}
}

uint64_t fp_tap_time_us(const uint8_t *rec)
{
	return get64(rec + 8);
}

int fp_tap_decode(const uint8_t *rec, size_t len, struct fp_tap *tap)
{
	memset(tap, 0, sizeof(*tap));
	if (len < FP_TAP_COMMON_BYTES || rec[0] != len)
		return FP_REASON_LENGTH;
	tap->medium = rec[1];
	tap->kind = rec[2];
	tap->category = rec[3];
	tap->tap_id = get32(rec + 4);
	tap->tap_time_us = get64(rec + 8);
	tap->stop_id = get32(rec + 16);
	tap->amount_fen = get32(rec + 20);
	size_t want = fp_tap_bytes(tap->medium);
	if (want == 0)
		return FP_REASON_MEDIUM;
	if (len != want)
		return FP_REASON_LENGTH;
	if (tap->kind < FP_KIND_ENTRY || tap->kind > FP_KIND_PURCHASE)
		return FP_REASON_KIND;
	if (tap->category > FP_CATEGORY_MAX)
		return FP_REASON_CATEGORY;
	const uint8_t *body = rec + FP_TAP_COMMON_BYTES;
	switch (tap->medium) {
	case FP_MEDIUM_EPURSE:
		epurse_get(body, &tap->u.epurse);
		break;
	case FP_MEDIUM_QUICKPASS:
		tap->u.quickpass.account_token = get64(body);
		tap->u.quickpass.atc = get16(body + 8);
		tap->u.quickpass.expiry_yymm = get16(body + 10);
		tap->u.quickpass.oda_result = body[12];
		tap->u.quickpass.pan_sequence = body[13];
		break;
	case FP_MEDIUM_QR:
		tap->u.qr.qr_version = body[0];
		tap->u.qr.account_token = get64(body + 1);
		tap->u.qr.issued_at_s = get32(body + 9);
		tap->u.qr.expires_at_s = get32(body + 13);
		memcpy(tap->u.qr.qr_id, body + 17, sizeof(tap->u.qr.qr_id));
		memcpy(tap->u.qr.signature, body + FP_QR_PAYLOAD_BYTES, FP_QR_SIGNATURE_BYTES);
		break;
	}
	return medium_check(tap);
}

/* ------------------------------------------------------------------ MACs */


/*
 * HMAC-SHA-256 (RFC 2104) over OpenSSL's SHA-256, which uses the CPU's SHA
 * instructions where it has them: about 1 us for a full frame against 4.5 us
 * with libsodium's portable SHA-256 (measured on this project's machines),
 * and the MAC is the largest cost per frame in the fast path. Each thread
 * keeps one digest context. Keys are 32 bytes, shorter than the 64-byte
 * block, so the pads are the key XOR 0x36 / 0x5c, zero-extended.
 */
static EVP_MD *mac_md;
static pthread_key_t mac_ctx_key;
static pthread_once_t mac_once = PTHREAD_ONCE_INIT;

static void mac_ctx_free(void *ctx)
{
	EVP_MD_CTX_free(ctx);
}

static void mac_start(void)
{
	mac_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (mac_md == NULL || pthread_key_create(&mac_ctx_key, mac_ctx_free) != 0)
		abort(); /* OpenSSL without SHA-256: nothing can be authenticated */
}

static void digest(EVP_MD_CTX *c, const uint8_t pad[64], const uint8_t *buf, size_t len, uint8_t out[32])
{
	if (EVP_DigestInit_ex2(c, mac_md, NULL) != 1 || EVP_DigestUpdate(c, pad, 64) != 1 ||
	    EVP_DigestUpdate(c, buf, len) != 1 || EVP_DigestFinal_ex(c, out, NULL) != 1)
		abort(); /* cannot fail for an in-memory SHA-256 short of memory corruption */
}

static void mac_compute(const uint8_t *buf, size_t len, const uint8_t key[FP_KEY_BYTES],
			uint8_t mac[FP_MAC_BYTES])
{
	static_assert(FP_MAC_BYTES == 32 && FP_KEY_BYTES <= 64, "HMAC-SHA-256 with a key shorter than a block");
	pthread_once(&mac_once, mac_start);
	EVP_MD_CTX *c = pthread_getspecific(mac_ctx_key);
	if (c == NULL) {
		c = EVP_MD_CTX_new();
		if (c == NULL || pthread_setspecific(mac_ctx_key, c) != 0)
			abort();
	}
	uint8_t pad[64], inner[32];
	memset(pad, 0x36, sizeof(pad));
	for (unsigned i = 0; i < FP_KEY_BYTES; i++)
		pad[i] ^= key[i];
	digest(c, pad, buf, len, inner);
	for (unsigned i = 0; i < sizeof(pad); i++)
		pad[i] ^= 0x36 ^ 0x5c;
	digest(c, pad, inner, sizeof(inner), mac);
	OPENSSL_cleanse(pad, sizeof(pad));
}

int fp_mac_verify(const uint8_t *buf, size_t len, const uint8_t key[FP_KEY_BYTES])
{
	if (len < FP_MAC_BYTES)
		return FP_ERR_MAC;
	uint8_t mac[FP_MAC_BYTES];
	mac_compute(buf, len - FP_MAC_BYTES, key, mac);
	return sodium_memcmp(mac, buf + len - FP_MAC_BYTES, FP_MAC_BYTES) == 0 ? 0 : FP_ERR_MAC;
}

/* -------------------------------------------------------------- frames */

static void header_put(uint8_t *p, uint8_t type)
{
	put16(p, FP_MAGIC);
	p[2] = FP_VERSION;
	p[3] = type;
}

int fp_frame_encode(struct fp_frame_header *hdr, const struct fp_tap *taps, unsigned n,
		    const uint8_t key[FP_KEY_BYTES], uint8_t *out, size_t cap)
{
	if (n == 0 || n > FP_TAPS_PER_FRAME_MAX)
		return FP_ERR_INVALID;
	if (cap > FP_FRAME_BYTES_MAX)
		cap = FP_FRAME_BYTES_MAX;
	if (cap < FP_FRAME_HEADER_BYTES + FP_MAC_BYTES)
		return FP_ERR_NOSPACE;
	hdr->tap_count = (uint8_t)n;
	header_put(out, FP_TYPE_FRAME);
	put32(out + 4, hdr->validator_id);
	put16(out + 8, hdr->key_id);
	out[10] = hdr->tap_count;
	out[11] = hdr->flags;
	put64(out + 12, hdr->frame_seq);
	put64(out + 20, hdr->send_time_us);
	put16(out + 28, hdr->operator_id);
	put32(out + 30, hdr->route_id);
	put32(out + 34, hdr->vehicle_id);
	put16(out + 38, 0);
	size_t len = FP_FRAME_HEADER_BYTES;
	for (unsigned i = 0; i < n; i++) {
		int r = fp_tap_encode(&taps[i], out + len, cap - FP_MAC_BYTES - len);
		if (r < 0)
			return r;
		len += (size_t)r;
	}
	mac_compute(out, len, key, out + len);
	return (int)(len + FP_MAC_BYTES);
}

int fp_frame_parse(const uint8_t *buf, size_t len, struct fp_frame_header *hdr,
		   uint16_t rec_offsets[FP_TAPS_PER_FRAME_MAX])
{
	if (len > FP_FRAME_BYTES_MAX)
		return FP_ERR_OVERSIZED;
	if (len < FP_FRAME_HEADER_BYTES + FP_TAP_COMMON_BYTES + FP_MAC_BYTES)
		return FP_ERR_TRUNCATED;
	if (get16(buf) != FP_MAGIC)
		return FP_ERR_MAGIC;
	if (buf[2] != FP_VERSION)
		return FP_ERR_VERSION;
	if (buf[3] != FP_TYPE_FRAME)
		return FP_ERR_TYPE;
	hdr->validator_id = get32(buf + 4);
	hdr->key_id = get16(buf + 8);
	hdr->tap_count = buf[10];
	hdr->flags = buf[11];
	hdr->frame_seq = get64(buf + 12);
	hdr->send_time_us = get64(buf + 20);
	hdr->operator_id = get16(buf + 28);
	hdr->route_id = get32(buf + 30);
	hdr->vehicle_id = get32(buf + 34);
	if (hdr->tap_count == 0 || hdr->tap_count > FP_TAPS_PER_FRAME_MAX)
		return FP_ERR_MALFORMED;
	size_t at = FP_FRAME_HEADER_BYTES, end = len - FP_MAC_BYTES;
	for (unsigned i = 0; i < hdr->tap_count; i++) {
		if (at >= end || buf[at] < FP_TAP_COMMON_BYTES || buf[at] > end - at)
			return FP_ERR_MALFORMED;
		if (rec_offsets != NULL)
			rec_offsets[i] = (uint16_t)at;
		at += buf[at];
	}
	return at == end ? 0 : FP_ERR_MALFORMED;
}

/* ---------------------------------------------------------------- acks */

/* The 32-byte header of the gateway's answers (acknowledgement, deny-list reply). */
static void reply_header_put(uint8_t *out, uint8_t type, uint32_t validator_id, uint16_t key_id, uint8_t count,
			     uint8_t flags, uint64_t seq, uint64_t time_us, uint32_t version)
{
	header_put(out, type);
	put32(out + 4, validator_id);
	put16(out + 8, key_id);
	out[10] = count;
	out[11] = flags;
	put64(out + 12, seq);
	put64(out + 20, time_us);
	put32(out + 28, version);
}

int fp_ack_encode(const struct fp_ack_header *hdr, const struct fp_tap_status *statuses,
		  const uint8_t key[FP_KEY_BYTES], uint8_t *out, size_t cap)
{
	if (hdr->tap_count > FP_TAPS_PER_FRAME_MAX)
		return FP_ERR_INVALID;
	size_t len = FP_ACK_HEADER_BYTES + 2u * hdr->tap_count;
	if (cap < len + FP_MAC_BYTES)
		return FP_ERR_NOSPACE;
	reply_header_put(out, FP_TYPE_ACK, hdr->validator_id, hdr->key_id, hdr->tap_count, hdr->flags, hdr->frame_seq,
			 hdr->gateway_time_us, hdr->denylist_version);
	for (unsigned i = 0; i < hdr->tap_count; i++) {
		out[FP_ACK_HEADER_BYTES + 2 * i] = statuses[i].status;
		out[FP_ACK_HEADER_BYTES + 2 * i + 1] = statuses[i].reason;
	}
	mac_compute(out, len, key, out + len);
	return (int)(len + FP_MAC_BYTES);
}

/* The checks every gateway message starts with: length, magic, version, type. */
static int message_check(const uint8_t *buf, size_t len, size_t min_len, uint8_t type)
{
	if (len < min_len)
		return FP_ERR_TRUNCATED;
	if (get16(buf) != FP_MAGIC)
		return FP_ERR_MAGIC;
	if (buf[2] != FP_VERSION)
		return FP_ERR_VERSION;
	return buf[3] == type ? 0 : FP_ERR_TYPE;
}

int fp_ack_peek_validator(const uint8_t *buf, size_t len, uint32_t *validator_id, uint16_t *key_id)
{
	int rc = message_check(buf, len, FP_ACK_HEADER_BYTES + FP_MAC_BYTES, FP_TYPE_ACK);
	if (rc != 0)
		return rc;
	*validator_id = get32(buf + 4);
	*key_id = get16(buf + 8);
	return 0;
}

int fp_ack_decode(const uint8_t *buf, size_t len, const uint8_t key[FP_KEY_BYTES],
		  struct fp_ack_header *hdr, struct fp_tap_status statuses[FP_TAPS_PER_FRAME_MAX])
{
	uint32_t validator_id;
	uint16_t key_id;
	int rc = fp_ack_peek_validator(buf, len, &validator_id, &key_id);
	if (rc != 0)
		return rc;
	unsigned count = buf[10];
	if (count > FP_TAPS_PER_FRAME_MAX || len != FP_ACK_HEADER_BYTES + 2u * count + FP_MAC_BYTES)
		return FP_ERR_MALFORMED;
	if (fp_mac_verify(buf, len, key) != 0)
		return FP_ERR_MAC;
	hdr->validator_id = validator_id;
	hdr->key_id = key_id;
	hdr->tap_count = (uint8_t)count;
	hdr->flags = buf[11];
	hdr->frame_seq = get64(buf + 12);
	hdr->gateway_time_us = get64(buf + 20);
	hdr->denylist_version = get32(buf + 28);
	for (unsigned i = 0; i < count; i++)
		statuses[i] = (struct fp_tap_status){buf[FP_ACK_HEADER_BYTES + 2 * i],
						     buf[FP_ACK_HEADER_BYTES + 2 * i + 1]};
	return 0;
}

/* --------------------------------------------------------------- busy */

int fp_busy_encode(const struct fp_busy *b, const uint8_t key[FP_KEY_BYTES], uint8_t *out, size_t cap)
{
	if (cap < FP_BUSY_BYTES)
		return FP_ERR_NOSPACE;
	if (b->retry_after_ms == 0 || b->retry_after_ms > FP_RETRY_AFTER_MS_MAX)
		return FP_ERR_INVALID;
	reply_header_put(out, FP_TYPE_BUSY, b->validator_id, b->key_id, b->tap_count, 0, b->frame_seq,
			 b->gateway_time_us, b->retry_after_ms);
	mac_compute(out, FP_BUSY_BYTES - FP_MAC_BYTES, key, out + FP_BUSY_BYTES - FP_MAC_BYTES);
	return (int)FP_BUSY_BYTES;
}

int fp_busy_decode(const uint8_t *buf, size_t len, const uint8_t key[FP_KEY_BYTES], struct fp_busy *b)
{
	int rc = message_check(buf, len, FP_BUSY_BYTES, FP_TYPE_BUSY);
	if (rc != 0)
		return rc;
	if (len != FP_BUSY_BYTES)
		return FP_ERR_MALFORMED;
	if (fp_mac_verify(buf, len, key) != 0)
		return FP_ERR_MAC;
	uint32_t retry_after_ms = get32(buf + 28);
	if (buf[11] != 0 || retry_after_ms == 0 || retry_after_ms > FP_RETRY_AFTER_MS_MAX)
		return FP_ERR_MALFORMED;
	*b = (struct fp_busy){.validator_id = get32(buf + 4), .key_id = get16(buf + 8), .tap_count = buf[10],
			      .frame_seq = get64(buf + 12), .gateway_time_us = get64(buf + 20),
			      .retry_after_ms = retry_after_ms};
	return 0;
}

/* -------------------------------------------------------- identity, content */

/*
 * The identity key names the real-world transaction, not the record: the
 * same tap sent again (any frame, any frame_seq) gets the same key. The
 * fields are written big-endian behind a medium tag so that two media can
 * never share a key by accident, and the layout is fixed forever: keys are
 * stored in the tap log and the dedup set is rebuilt from them.
 */
struct fp_key fp_tap_identity(const struct fp_tap *tap, uint32_t validator_id)
{
	uint8_t b[1 + 24]; /* medium tag + the longest identity (e-purse: 24 bytes) */
	size_t n = 0;
	b[n++] = tap->medium;
	switch (tap->medium) {
	case FP_MEDIUM_EPURSE: /* the card's own transaction: issuer, card, CTC, terminal */
		put32(b + n, tap->u.epurse.issuer_code), n += 4;
		put64(b + n, tap->u.epurse.card_number), n += 8;
		put16(b + n, tap->u.epurse.ctc), n += 2;
		memcpy(b + n, tap->u.epurse.psam_id, 6), n += 6;
		put32(b + n, tap->u.epurse.psam_serial), n += 4;
		break;
	case FP_MEDIUM_QUICKPASS: /* the validator's own tap, of that account */
		put32(b + n, validator_id), n += 4;
		put32(b + n, tap->tap_id), n += 4;
		put64(b + n, tap->u.quickpass.account_token), n += 8;
		break;
	default: /* a QR code is used once, wherever: only its id */
		TG_ASSERT(tap->medium == FP_MEDIUM_QR);
		memcpy(b + n, tap->u.qr.qr_id, sizeof(tap->u.qr.qr_id)), n += sizeof(tap->u.qr.qr_id);
		break;
	}
	XXH128_hash_t h = XXH3_128bits(b, n);
	struct fp_key k = {h.low64, h.high64};
	if ((k.lo | k.hi) == 0)
		k.lo = 1; /* 0 marks an empty dedup slot */
	return k;
}

/*
 * The content hash: the frame context first (a tap re-sent under another
 * route or vehicle is not the same record), then the record as on the wire.
 */
uint64_t fp_tap_content(const uint8_t *rec, size_t len, const struct fp_frame_header *hdr)
{
	uint8_t b[14 + UINT8_MAX]; /* context + the longest record_len can say */
	TG_ASSERT(len <= UINT8_MAX);
	put32(b, hdr->validator_id);
	put16(b + 4, hdr->operator_id);
	put32(b + 6, hdr->route_id);
	put32(b + 10, hdr->vehicle_id);
	memcpy(b + 14, rec, len);
	return XXH3_64bits(b, 14 + len);
}

/* The frame fields a stored tap keeps in its meta block, as a header for fp_tap_content. */
static struct fp_frame_header stored_header(const struct st_tap_meta *meta)
{
	return (struct fp_frame_header){.validator_id = meta->validator_id, .operator_id = meta->operator_id,
					.route_id = meta->route_id, .vehicle_id = meta->vehicle_id};
}

int fp_tap_stored(const struct st_tap_meta *meta, const uint8_t *rec, struct fp_tap *tap)
{
	/* the gateway stores rec[0] bytes: a length byte that disagrees is no record of its */
	if (meta->record_len == 0 || meta->record_len > UINT8_MAX || rec[0] != meta->record_len)
		return FP_REASON_LENGTH;
	int reason = fp_tap_decode(rec, meta->record_len, tap);
	if (reason != 0)
		return reason;
	struct fp_frame_header hdr = stored_header(meta);
	struct fp_key key = fp_tap_identity(tap, meta->validator_id);
	if (key.lo != meta->id_lo || key.hi != meta->id_hi ||
	    fp_tap_content(rec, meta->record_len, &hdr) != meta->content_hash)
		return FP_ERR_STORED;
	return 0;
}

const char *fp_tap_stored_text(int rc)
{
	static const char *const undecodable[FP_REASON_COUNT] = {
		"ok", "undecodable record (unknown medium)", "undecodable record (length)",
		"undecodable record (kind)", "undecodable record (category)", "undecodable record (time)",
		"undecodable record (time)", "undecodable record (amount)", "undecodable record (a field out of range)",
		"undecodable record (QR signature)", "undecodable record (QR validity)", "undecodable record (QR reuse)"};
	if (rc >= 0)
		return rc < FP_REASON_COUNT ? undecodable[rc] : "undecodable record";
	return fp_strerror(rc);
}

void fp_tap_stored_seal(struct st_tap_meta *meta, const uint8_t *rec)
{
	struct fp_tap tap;
	struct fp_frame_header hdr = stored_header(meta);
	int reason = fp_tap_decode(rec, meta->record_len, &tap);
	TG_ASSERT(reason == 0); /* sealing is for records just encoded */
	(void)reason;
	struct fp_key key = fp_tap_identity(&tap, meta->validator_id);
	meta->id_lo = key.lo;
	meta->id_hi = key.hi;
	meta->content_hash = fp_tap_content(rec, meta->record_len, &hdr);
}

/* ----------------------------------------------------------- deny list */

int fp_deny_request_encode(const struct fp_deny_request *r, const uint8_t key[FP_KEY_BYTES], uint8_t *out, size_t cap)
{
	if (cap < FP_DENY_REQUEST_BYTES)
		return FP_ERR_NOSPACE;
	memset(out, 0, FP_FRAME_HEADER_BYTES);
	header_put(out, FP_TYPE_DENY_REQUEST);
	put32(out + 4, r->validator_id);
	put16(out + 8, r->key_id);
	put64(out + 12, r->request_seq);
	put64(out + 20, r->send_time_us);
	put32(out + 28, r->since_version);
	mac_compute(out, FP_FRAME_HEADER_BYTES, key, out + FP_FRAME_HEADER_BYTES);
	return (int)FP_DENY_REQUEST_BYTES;
}

int fp_deny_request_parse(const uint8_t *buf, size_t len, struct fp_deny_request *r)
{
	int rc = message_check(buf, len, FP_DENY_REQUEST_BYTES, FP_TYPE_DENY_REQUEST);
	if (rc != 0)
		return rc;
	if (len > FP_DENY_REQUEST_BYTES)
		return FP_ERR_MALFORMED;
	r->validator_id = get32(buf + 4);
	r->key_id = get16(buf + 8);
	r->request_seq = get64(buf + 12);
	r->send_time_us = get64(buf + 20);
	r->since_version = get32(buf + 28);
	return 0;
}

int fp_deny_reply_encode(const struct fp_deny_reply *r, const uint8_t key[FP_KEY_BYTES], uint8_t *out, size_t cap)
{
	if (r->count > FP_DENY_ENTRIES_MAX)
		return FP_ERR_INVALID;
	size_t len = FP_ACK_HEADER_BYTES + FP_DENY_ENTRY_BYTES * r->count;
	if (cap < len + FP_MAC_BYTES)
		return FP_ERR_NOSPACE;
	reply_header_put(out, FP_TYPE_DENY_REPLY, r->validator_id, r->key_id, r->count, r->flags, r->request_seq,
			 r->gateway_time_us, r->version);
	for (unsigned i = 0; i < r->count; i++) {
		uint8_t *e = out + FP_ACK_HEADER_BYTES + FP_DENY_ENTRY_BYTES * i;
		e[0] = r->entries[i].medium;
		e[1] = r->entries[i].added;
		put64(e + 2, r->entries[i].token);
	}
	mac_compute(out, len, key, out + len);
	return (int)(len + FP_MAC_BYTES);
}

int fp_deny_reply_decode(const uint8_t *buf, size_t len, const uint8_t key[FP_KEY_BYTES], struct fp_deny_reply *r)
{
	int rc = message_check(buf, len, FP_ACK_HEADER_BYTES + FP_MAC_BYTES, FP_TYPE_DENY_REPLY);
	if (rc != 0)
		return rc;
	unsigned count = buf[10];
	if (count > FP_DENY_ENTRIES_MAX || len != FP_ACK_HEADER_BYTES + FP_DENY_ENTRY_BYTES * count + FP_MAC_BYTES)
		return FP_ERR_MALFORMED;
	if (fp_mac_verify(buf, len, key) != 0)
		return FP_ERR_MAC;
	r->validator_id = get32(buf + 4);
	r->key_id = get16(buf + 8);
	r->count = (uint8_t)count;
	r->flags = buf[11];
	r->request_seq = get64(buf + 12);
	r->gateway_time_us = get64(buf + 20);
	r->version = get32(buf + 28);
	for (unsigned i = 0; i < count; i++) {
		const uint8_t *e = buf + FP_ACK_HEADER_BYTES + FP_DENY_ENTRY_BYTES * i;
		r->entries[i] = (struct fp_deny_entry){.medium = e[0], .added = e[1], .token = get64(e + 2)};
	}
	return 0;
}
