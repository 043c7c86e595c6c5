/*
 * proto.h - the one public header of proto/: the wire protocol.
 *
 * Everything a validator and the gateway say to each other, and nothing
 * about how the gateway handles it: frames of tap records, acknowledgements,
 * busy replies, deny-list requests and replies; their encoding and decoding
 * (proto/proto.c), the HMAC-SHA-256 that authenticates them and the key file
 * that holds the validators' keys (proto/keys.c); the identity key and
 * content hash a tap is deduplicated by, and the check of a record read back
 * from the tap log. The medium, kind and category enums here are the only
 * ones: fare/ and settle/ use them (or static_assert their mirrors).
 *
 * It sits at the bottom of the module graph with store/ (it names struct
 * st_tap_meta for the stored-record check): fastpath/, fare/, settle/ and
 * tools/ include this header, never fastpath.h, for the wire's types.
 * Names keep the fp_ ("frame protocol") prefix of docs/PROTOCOL.md.
 *
 * Wire format: docs/PROTOCOL.md. All integers on the wire are big-endian.
 */
#ifndef TAPGATE_PROTO_H
#define TAPGATE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- protocol */

#define FP_MAGIC 0x5447u /* "TG" */
#define FP_VERSION 1u
#define FP_TYPE_FRAME 1u
#define FP_TYPE_ACK 2u
#define FP_TYPE_DENY_REQUEST 3u /* a validator asks for the deny list's changes */
#define FP_TYPE_DENY_REPLY 4u   /* the gateway answers with them */
#define FP_TYPE_BUSY 5u         /* the gateway refused a frame unread: retry after a while (section 6.1) */
#define FP_BUSY_BYTES 64u        /* 32-byte header + MAC */
#define FP_RETRY_AFTER_MS_MAX 30000u /* a busy reply never asks for more than the longest back-off */
#define FP_DENY_REQUEST_BYTES 72u  /* 40-byte header + MAC */
#define FP_DENY_ENTRY_BYTES 10u    /* medium, added, token */
#define FP_DENY_ENTRIES_MAX 12u    /* per reply: it fits an acknowledgement's buffer */
#define FP_DENY_MORE 1u            /* reply flags: more changes follow, ask again */
#define FP_DENY_RESET 2u           /* the list restarted: drop yours, these changes start it */

#define FP_FRAME_BYTES_MAX 1400u  /* one datagram, no IP fragmentation */
#define FP_FRAME_HEADER_BYTES 40u
#define FP_MAC_BYTES 32u          /* HMAC-SHA-256, full length */
#define FP_KEY_BYTES 32u
#define FP_TAPS_PER_FRAME_MAX 64u
#define FP_TAP_COMMON_BYTES 24u
#define FP_EPURSE_BYTES (FP_TAP_COMMON_BYTES + 38u)
#define FP_QUICKPASS_BYTES (FP_TAP_COMMON_BYTES + 14u)
#define FP_QR_PAYLOAD_BYTES 33u   /* the part the QR platform signs */
#define FP_QR_SIGNATURE_BYTES 64u /* Ed25519 */
#define FP_QR_BYTES (FP_TAP_COMMON_BYTES + FP_QR_PAYLOAD_BYTES + FP_QR_SIGNATURE_BYTES)
#define FP_TAP_BYTES_MAX FP_QR_BYTES
#define FP_ACK_HEADER_BYTES 32u
#define FP_ACK_BYTES_MAX (FP_ACK_HEADER_BYTES + 2u * FP_TAPS_PER_FRAME_MAX + FP_MAC_BYTES)
#define FP_CARD_NUMBER_MAX 9999999999999999999ull /* 19 decimal digits */

enum fp_medium {
	FP_MEDIUM_EPURSE = 1,    /* transport account, T-Union / PBOC e-purse */
	FP_MEDIUM_QUICKPASS = 2, /* financial account, UnionPay QuickPass */
	FP_MEDIUM_QR = 3,        /* electronic social-security card QR code */
};

enum fp_kind {
	FP_KIND_ENTRY = 1,    /* metro gate, tap in */
	FP_KIND_EXIT = 2,     /* metro gate, tap out */
	FP_KIND_BOARD = 3,    /* bus boarding */
	FP_KIND_PURCHASE = 4, /* canteen or shop */
};

enum fp_category {
	FP_CATEGORY_ADULT = 0,
	FP_CATEGORY_SENIOR = 1,
	FP_CATEGORY_STUDENT = 2,
	FP_CATEGORY_DISABLED = 3,
	FP_CATEGORY_MAX = 3,
};

/* One status per tap in an acknowledgement. */
enum fp_status {
	FP_STATUS_STORED = 0,    /* recorded durably now */
	FP_STATUS_DUPLICATE = 1, /* already recorded durably earlier */
	FP_STATUS_CONFLICT = 2,  /* same identity, other content: quarantined */
	FP_STATUS_REJECTED = 3,  /* invalid, never settled; see the reason */
};

/* Why a tap was rejected (the second byte of its status). 0 otherwise. */
enum fp_reason {
	FP_REASON_NONE = 0,
	FP_REASON_MEDIUM = 1,       /* unknown medium */
	FP_REASON_LENGTH = 2,       /* record length does not fit its medium */
	FP_REASON_KIND = 3,         /* unknown tap kind */
	FP_REASON_CATEGORY = 4,     /* unknown rider category */
	FP_REASON_TIME_FUTURE = 5,  /* tap time ahead of the gateway's clock */
	FP_REASON_TIME_OLD = 6,     /* tap time older than the dedup window */
	FP_REASON_AMOUNT = 7,       /* amount out of range */
	FP_REASON_FIELD = 8,        /* a medium field out of range */
	FP_REASON_QR_SIGNATURE = 9, /* QR signature does not verify */
	FP_REASON_QR_EXPIRED = 10,  /* tap time outside the QR's validity */
	FP_REASON_QR_REUSE = 11,    /* QR code already used at another validator */
	FP_REASON_COUNT = 12,
};

struct fp_frame_header {
	uint32_t validator_id;
	uint16_t key_id;
	uint8_t tap_count;
	uint8_t flags; /* reserved, 0 */
	uint64_t frame_seq;
	uint64_t send_time_us;
	uint16_t operator_id;
	uint32_t route_id;   /* bus route, metro line or canteen */
	uint32_t vehicle_id; /* 0 for fixed validators */
};

struct fp_epurse {
	uint32_t issuer_code; /* issuer city code */
	uint64_t card_number; /* at most 19 decimal digits */
	uint16_t ctc;         /* card transaction counter */
	uint32_t balance_before_fen;
	uint32_t balance_after_fen;
	uint32_t tac;
	uint8_t psam_id[6];
	uint32_t psam_serial;
	uint8_t key_version;
	uint8_t transaction_type; /* 6 purchase, 9 composite purchase */
};

struct fp_quickpass {
	uint64_t account_token; /* issued by the acquirer's token service: never the PAN */
	uint16_t atc;           /* application transaction counter */
	uint16_t expiry_yymm;   /* e.g. 2912 */
	uint8_t oda_result;     /* 0 ok, 1 failed, 2 not performed */
	uint8_t pan_sequence;
};

struct fp_qr {
	uint8_t qr_version;
	uint64_t account_token;
	uint32_t issued_at_s; /* Unix seconds */
	uint32_t expires_at_s;
	uint8_t qr_id[16]; /* random nonce chosen by the QR platform */
	uint8_t signature[FP_QR_SIGNATURE_BYTES];
};

struct fp_tap {
	uint8_t medium;   /* enum fp_medium */
	uint8_t kind;     /* enum fp_kind */
	uint8_t category; /* enum fp_category */
	uint32_t tap_id;  /* the validator's own id for the tap */
	uint64_t tap_time_us;
	uint32_t stop_id;
	uint32_t amount_fen; /* deducted by the validator (0 if pay-later) */
	union {
		struct fp_epurse epurse;
		struct fp_quickpass quickpass;
		struct fp_qr qr;
	} u;
};

struct fp_ack_header {
	uint32_t validator_id;
	uint16_t key_id;
	uint8_t tap_count;
	uint8_t flags;
	uint64_t frame_seq;
	uint64_t gateway_time_us;
	uint32_t denylist_version; /* 0 until the deny list exists */
};

/* A busy reply: the frame was refused before it was read, nothing of it is recorded. */
struct fp_busy {
	uint32_t validator_id;
	uint16_t key_id;
	uint8_t tap_count;  /* as in the frame */
	uint64_t frame_seq; /* as in the frame */
	uint64_t gateway_time_us;
	uint32_t retry_after_ms; /* 1 .. FP_RETRY_AFTER_MS_MAX */
};

struct fp_tap_status {
	uint8_t status; /* enum fp_status */
	uint8_t reason; /* enum fp_reason */
};

/* Errors of the protocol functions: negative, see fp_strerror(). */
enum fp_error {
	FP_ERR_TRUNCATED = -1,  /* shorter than header + a record's common part + MAC: 96 bytes */
	FP_ERR_OVERSIZED = -2,  /* longer than FP_FRAME_BYTES_MAX */
	FP_ERR_MAGIC = -3,      /* not a tapgate frame */
	FP_ERR_VERSION = -4,    /* protocol version not spoken */
	FP_ERR_TYPE = -5,       /* not the message type expected */
	FP_ERR_MALFORMED = -6,  /* record lengths do not add up to the frame */
	FP_ERR_MAC = -7,        /* MAC does not verify */
	FP_ERR_VALIDATOR = -8,  /* unknown validator */
	FP_ERR_KEY = -9,        /* unknown key id for that validator */
	FP_ERR_NOSPACE = -10,   /* encoder: output buffer too small */
	FP_ERR_INVALID = -11,   /* encoder: a field out of range */
	FP_ERR_STORED = -12,    /* a stored record: its identity key or content hash is not its own */
};

const char *fp_strerror(int err);
const char *fp_reason_name(unsigned reason);
const char *fp_status_name(unsigned status);
const char *fp_medium_name(unsigned medium);

/* Size on the wire of a record of that medium; 0 for an unknown medium. */
size_t fp_tap_bytes(unsigned medium);

/*
 * Encode a tap record at out (cap bytes). Returns its length, or
 * FP_ERR_NOSPACE, FP_ERR_INVALID (unknown medium).
 */
int fp_tap_encode(const struct fp_tap *tap, uint8_t *out, size_t cap);

/*
 * Decode one tap record of exactly len bytes and check its fields' ranges
 * (not times, not the QR signature: those need the gateway's clock and key).
 * Returns 0, or the positive enum fp_reason the tap is rejected with.
 */
int fp_tap_decode(const uint8_t *rec, size_t len, struct fp_tap *tap);

/*
 * Encode a whole frame: header, taps, HMAC-SHA-256 with key. hdr->tap_count
 * is set from n. Returns the frame's length, or FP_ERR_NOSPACE (does not
 * fit cap or FP_FRAME_BYTES_MAX), FP_ERR_INVALID (n is 0 or too large).
 */
int fp_frame_encode(struct fp_frame_header *hdr, const struct fp_tap *taps, unsigned n,
		    const uint8_t key[FP_KEY_BYTES], uint8_t *out, size_t cap);

/*
 * Check a frame's structure without its MAC: length bounds, magic, version,
 * type, and that the record lengths add up to the tap count. Fills hdr and,
 * when rec_offsets is given, the offset of each record.
 * Returns 0, or FP_ERR_TRUNCATED, FP_ERR_OVERSIZED, FP_ERR_MAGIC,
 * FP_ERR_VERSION, FP_ERR_TYPE, FP_ERR_MALFORMED.
 */
int fp_frame_parse(const uint8_t *buf, size_t len, struct fp_frame_header *hdr,
		   uint16_t rec_offsets[FP_TAPS_PER_FRAME_MAX]);

/* Verify the trailing MAC of a frame or ack of len bytes. Returns 0 or FP_ERR_MAC. */
int fp_mac_verify(const uint8_t *buf, size_t len, const uint8_t key[FP_KEY_BYTES]);

/*
 * Encode an acknowledgement with its MAC. Returns its length, or
 * FP_ERR_NOSPACE, FP_ERR_INVALID (tap_count above FP_TAPS_PER_FRAME_MAX).
 */
int fp_ack_encode(const struct fp_ack_header *hdr, const struct fp_tap_status *statuses,
		  const uint8_t key[FP_KEY_BYTES], uint8_t *out, size_t cap);

/*
 * Parse an acknowledgement and verify its MAC with key (a validator's side).
 * Returns 0, or FP_ERR_TRUNCATED, FP_ERR_MAGIC, FP_ERR_VERSION, FP_ERR_TYPE,
 * FP_ERR_MALFORMED, FP_ERR_MAC.
 */
int fp_ack_decode(const uint8_t *buf, size_t len, const uint8_t key[FP_KEY_BYTES],
		  struct fp_ack_header *hdr, struct fp_tap_status statuses[FP_TAPS_PER_FRAME_MAX]);

/* The deny list (docs/PROTOCOL.md section 12): tokens validators must refuse. */
struct fp_deny_request {
	uint32_t validator_id;
	uint16_t key_id;
	uint64_t request_seq;   /* any: echoed in the reply */
	uint64_t send_time_us;
	uint32_t since_version; /* the version the validator holds (0: none) */
};

struct fp_deny_entry {
	uint8_t medium; /* 2 QuickPass, 3 QR */
	uint8_t added;  /* 1 refuse it from now on, 0 accept it again */
	uint64_t token; /* the account token */
};

struct fp_deny_reply {
	uint32_t validator_id;
	uint16_t key_id;
	uint8_t count; /* entries, 0 .. FP_DENY_ENTRIES_MAX */
	uint8_t flags; /* FP_DENY_MORE, FP_DENY_RESET */
	uint64_t request_seq;
	uint64_t gateway_time_us;
	uint32_t version; /* the version the validator holds after applying the entries */
	struct fp_deny_entry entries[FP_DENY_ENTRIES_MAX];
};

/* Encode with the validator's key. Returns the length, or FP_ERR_NOSPACE. */
int fp_deny_request_encode(const struct fp_deny_request *r, const uint8_t key[FP_KEY_BYTES], uint8_t *out, size_t cap);
/* Parse a request's fields (the caller verifies the MAC with the validator's key). Returns 0 or FP_ERR_*. */
int fp_deny_request_parse(const uint8_t *buf, size_t len, struct fp_deny_request *r);
int fp_deny_reply_encode(const struct fp_deny_reply *r, const uint8_t key[FP_KEY_BYTES], uint8_t *out, size_t cap);
/* Decode and verify a reply. Returns 0, FP_ERR_MAC, or another FP_ERR_*. */
int fp_deny_reply_decode(const uint8_t *buf, size_t len, const uint8_t key[FP_KEY_BYTES], struct fp_deny_reply *r);

/* Encode a busy reply with the frame's key. Returns FP_BUSY_BYTES, FP_ERR_NOSPACE or FP_ERR_INVALID. */
int fp_busy_encode(const struct fp_busy *b, const uint8_t key[FP_KEY_BYTES], uint8_t *out, size_t cap);
/* Decode and verify one. Returns 0, FP_ERR_MAC, FP_ERR_MALFORMED (length, flags or retry_after_ms
 * out of range), or FP_ERR_TRUNCATED, FP_ERR_MAGIC, FP_ERR_VERSION, FP_ERR_TYPE. */
int fp_busy_decode(const uint8_t *buf, size_t len, const uint8_t key[FP_KEY_BYTES], struct fp_busy *b);

/* The validator id of an acknowledgement, before its MAC is checked (to pick the key). */
int fp_ack_peek_validator(const uint8_t *buf, size_t len, uint32_t *validator_id, uint16_t *key_id);

/* The tap time of a record already checked by fp_frame_parse() or stored in the log. */
uint64_t fp_tap_time_us(const uint8_t *rec);

/* The bytes a QR platform signs: the QR fields without the signature. */
void fp_qr_signed_bytes(const struct fp_qr *qr, uint8_t out[FP_QR_PAYLOAD_BYTES]);

/*
 * Identity key (XXH3-128 over the fields that identify the real-world
 * transaction) and content hash (XXH3-64 over the record and its frame
 * context). validator_id and the context take part as DESIGN.md says.
 */
struct fp_key {
	uint64_t lo, hi;
};
struct fp_key fp_tap_identity(const struct fp_tap *tap, uint32_t validator_id);
uint64_t fp_tap_content(const uint8_t *rec, size_t len, const struct fp_frame_header *hdr);

/*
 * A record read back from the store (tapdump, the fare engine, settlement),
 * checked against what the gateway computed when it stored it: it decodes,
 * and the identity key and content hash kept beside it in meta are its own
 * (the content hash also covers meta's frame fields), so a flipped byte in
 * the record or in them is found. Returns 0 with tap filled, a positive enum
 * fp_reason (the record does not decode), or FP_ERR_STORED.
 */
struct st_tap_meta;
int fp_tap_stored(const struct st_tap_meta *meta, const uint8_t *rec, struct fp_tap *tap);
/* What fp_tap_stored found, as text: "ok", "undecodable record (medium)", ... */
const char *fp_tap_stored_text(int rc);
/* Fill meta's identity key and content hash as the gateway does (tests and benches writing a log). */
void fp_tap_stored_seal(struct st_tap_meta *meta, const uint8_t *rec);

/* ------------------------------------------------------------------ keys */

/*
 * Validator keys: loaded from the key file (INI, see
 * config/dev-validators.keys) at start-up and at each reload (SIGHUP),
 * looked up per frame.
 */
#define FP_VALIDATORS_MAX 65536u
#define FP_KEYS_PER_VALIDATOR_MAX 4u

struct fp_keys;

/*
 * Load a key file. It must be a regular file readable by its owner only
 * (mode 0600 or 0400), and no key may be all zeros. On error returns NULL
 * and writes a message naming the file, line and key into err.
 */
struct fp_keys *fp_keys_load(const char *path, char *err, size_t err_len);
void fp_keys_free(struct fp_keys *keys);
unsigned fp_keys_count(const struct fp_keys *keys); /* validators */
unsigned fp_keys_total(const struct fp_keys *keys); /* keys of all validators */
/* The key, or NULL: *why is set to FP_ERR_VALIDATOR or FP_ERR_KEY. */
const uint8_t *fp_keys_find(const struct fp_keys *keys, uint32_t validator_id, uint16_t key_id,
			    int *why);

/* ----------------------------------------------------------------- clocks */

/* The wire's times are Unix microseconds (CLOCK_REALTIME). */
uint64_t fp_now_us(void); /* CLOCK_REALTIME in microseconds */
uint64_t fp_mono_us(void); /* CLOCK_MONOTONIC in microseconds */

#endif
