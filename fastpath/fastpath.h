/*
 * fastpath.h - the one public header of the fast path.
 *
 * The fast path owns everything between a datagram arriving and its
 * acknowledgement leaving: the wire protocol (frames, tap records,
 * acknowledgements, MACs), validation and authentication, the in-memory
 * dedup set, the bounded job ring to the writer thread, the writer thread
 * that group-commits to the store, and the ingress backends (io_uring,
 * recvmmsg). Every backend feeds the same function, fp_ingest_burst(), and
 * sends what fp_ingest_acks_peek() hands back: there is one data path.
 *
 * Wire format: docs/PROTOCOL.md. All integers on the wire are big-endian.
 */
#ifndef TAPGATE_FASTPATH_H
#define TAPGATE_FASTPATH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>

struct st_env;

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

/* ------------------------------------------------------------- dedup set */

/*
 * The dedup set: open addressing, linear probing, 32-byte slots, at most
 * taps_max live entries in taps_max * 3 / 2 slots: 48 bytes per tap.
 */
struct fp_dedup;

enum fp_dedup_result {
	FP_DEDUP_NEW = 0,      /* inserted */
	FP_DEDUP_DUPLICATE = 1,
	FP_DEDUP_CONFLICT = 2,
	FP_DEDUP_OTHER_VALIDATOR = 3, /* same key, seen from another validator */
	FP_DEDUP_FULL = 4,     /* not inserted: taps_max live entries */
};

struct fp_dedup *fp_dedup_create(uint64_t taps_max);
void fp_dedup_free(struct fp_dedup *d);
/* Look up key; insert it when new. */
enum fp_dedup_result fp_dedup_insert(struct fp_dedup *d, struct fp_key key, uint64_t content,
				     uint32_t tap_time_s, uint32_t validator_id);
/* Look key up without inserting it: FP_DEDUP_NEW when it is not in the set. */
enum fp_dedup_result fp_dedup_find(const struct fp_dedup *d, struct fp_key key, uint64_t content,
				   uint32_t validator_id);
/* Remove the entries whose tap time is before cutoff_s among the next
 * slots_max slots of a sweep that goes round the table. Returns removed. */
uint64_t fp_dedup_expire(struct fp_dedup *d, uint32_t cutoff_s, uint64_t slots_max);
uint64_t fp_dedup_count(const struct fp_dedup *d);
uint64_t fp_dedup_bytes(const struct fp_dedup *d);

/* ------------------------------------------------------------ the pipeline */

/* Where a datagram came from, and so where its acknowledgement goes. */
struct fp_peer {
	struct sockaddr_in6 addr; /* IPv4 as v4-mapped, or native v6 */
	uint8_t mac[6];           /* DPDK: the sender's Ethernet address; sockets: zero */
};

struct fp_rx {
	const uint8_t *data;
	uint32_t len;
	struct fp_peer peer;
};

/* An acknowledgement ready to leave: it lives in the job ring until released. */
struct fp_ack_out {
	struct fp_peer peer;
	uint16_t len;
	uint8_t bytes[FP_ACK_BYTES_MAX];
};

/* Frames dropped without an acknowledgement, by reason. */
enum fp_drop {
	FP_DROP_TRUNCATED,
	FP_DROP_OVERSIZED,
	FP_DROP_MAGIC,
	FP_DROP_VERSION,
	FP_DROP_TYPE,
	FP_DROP_MALFORMED,
	FP_DROP_VALIDATOR,
	FP_DROP_KEY,
	FP_DROP_MAC,
	FP_DROP_RING_FULL, /* back-pressure: the writer is behind */
	FP_DROP_DEDUP_FULL,
	FP_DROP_STOPPING,
	FP_DROP_VERIFYING, /* a copy of a frame whose signatures are being verified: its own ack is coming */
	FP_DROP_BUSY_FULL, /* shed, but the busy replies of this pass were all taken */
	FP_DROP_COUNT,
};
const char *fp_drop_name(unsigned drop);

/*
 * Packets the DPDK backend's own UDP/IPv4 endpoint drops before the frame
 * parser sees them, by reason (the socket backends leave this to the kernel).
 */
enum fp_net_drop {
	FP_NET_NOT_IPV4,      /* neither IPv4 nor ARP (IPv6, VLAN-tagged, LLDP...) */
	FP_NET_WRONG_MAC,     /* unicast to another Ethernet address */
	FP_NET_RUNT,          /* shorter than its headers say */
	FP_NET_BAD_IP_HEADER, /* version, header length or total length wrong */
	FP_NET_BAD_IP_CKSUM,
	FP_NET_IP_OPTIONS,
	FP_NET_FRAGMENT,      /* frames are never fragmented: a fragment is an attack or a bug */
	FP_NET_WRONG_ADDRESS, /* IPv4 to another address */
	FP_NET_NOT_UDP,       /* another IP protocol (or ICMP other than echo request) */
	FP_NET_WRONG_PORT,
	FP_NET_BAD_UDP_LENGTH,
	FP_NET_BAD_UDP_CKSUM,
	FP_NET_ARP_IGNORED,   /* ARP that is not a request for our address */
	FP_NET_MULTI_SEGMENT, /* larger than one mbuf: larger than any frame */
	FP_NET_DROP_COUNT,
};
const char *fp_net_drop_name(unsigned drop);

/*
 * A snapshot of the DPDK port's statistics, taken by the polling lcore (the
 * only thread that may call the port's statistics functions) every 100 ms and
 * whenever a scrape asks: fp_port_stats_lock_fresh() bumps wanted_seq and
 * waits, bounded, until the lcore has taken a snapshot that answers it. So a
 * scrape sees the figures of the moment it was made, not of the last period.
 */
#define FP_XSTATS_MAX 256u
#define FP_XSTAT_NAME_MAX 64u
struct fp_port_stats {
	pthread_mutex_t lock; /* the lcore only ever try-locks it while polling */
	pthread_cond_t taken; /* broadcast (under lock) after every snapshot; CLOCK_MONOTONIC */
	bool present;         /* a DPDK port is in use */
	bool polling;         /* the lcore is in its loop and answers requests */
	char driver[32];
	_Atomic uint64_t wanted_seq; /* requests for a fresh snapshot, bumped by scrapes */
	uint64_t taken_seq;          /* the last request the snapshot answers */
	uint64_t taken_mono_ns;      /* when it was taken (CLOCK_MONOTONIC) */
	uint64_t ipackets, opackets, ibytes, obytes, imissed, ierrors, oerrors, rx_nombuf;
	uint32_t xstats_count;
	char xstat_names[FP_XSTATS_MAX][FP_XSTAT_NAME_MAX];
	uint64_t xstat_values[FP_XSTATS_MAX];
};

/*
 * Lock the port statistics for reading, after asking the polling lcore for a
 * snapshot newer than this call and waiting up to wait_ms for it. Returns
 * true if the snapshot is that fresh; false if there is no port, the lcore is
 * not polling, or it did not answer in time (then the snapshot is the last
 * periodic one, at most about 100 ms older). Always returns with ps->lock
 * held: the caller unlocks it.
 */
bool fp_port_stats_lock_fresh(struct fp_port_stats *ps, unsigned wait_ms);

/*
 * Counters: each written by one thread only (relaxed atomics), read by the
 * metrics endpoint at any time.
 */
#define FP_HIST_BUCKETS 24 /* powers of two of microseconds: 1 us .. 8 s */
struct fp_counters {
	_Atomic uint64_t frames_received;
	_Atomic uint64_t bytes_received;
	_Atomic uint64_t taps_received;
	_Atomic uint64_t taps_stored;
	_Atomic uint64_t taps_duplicate;
	_Atomic uint64_t taps_conflict;
	_Atomic uint64_t qr_signatures_verified; /* Ed25519 verifications done (each costs ~110 us) */
	_Atomic uint64_t taps_rejected[FP_REASON_COUNT];
	_Atomic uint64_t frames_dropped[FP_DROP_COUNT];
	_Atomic uint64_t frames_acked;
	_Atomic uint64_t frames_busy; /* refused unread with a busy reply: shedding */
	_Atomic uint64_t deny_requests; /* deny-list requests answered */
	_Atomic uint64_t deny_list_version; /* deny-list thread: the version validators are told */
	_Atomic uint64_t acks_send_errors;
	_Atomic uint64_t port_stats_stale; /* metrics thread: scrapes served an older port snapshot */
	_Atomic uint64_t dedup_entries;
	_Atomic uint64_t dedup_capacity; /* dedup_taps_max, set once at create */
	_Atomic uint64_t dedup_expired;
	_Atomic uint64_t ingress_ready; /* 1 once the socket or port receives: /healthz */
	_Atomic uint64_t key_reloads; /* reloads put in force (fp_pipeline_auth_replace) */
	/* writer */
	_Atomic uint64_t commits;
	_Atomic uint64_t commit_taps;
	_Atomic uint64_t commit_failures;
	_Atomic uint64_t commit_failing; /* failed attempts in a row (map growth aside); 0 after a commit */
	_Atomic uint64_t map_grows;
	_Atomic uint64_t map_size_bytes;
	_Atomic uint64_t log_next_seq;
	_Atomic uint64_t commit_batch_hist[FP_HIST_BUCKETS];   /* taps per commit */
	_Atomic uint64_t commit_latency_hist[FP_HIST_BUCKETS]; /* us per commit */
	_Atomic uint64_t ack_latency_hist[FP_HIST_BUCKETS];    /* us receive -> ack out */
	_Atomic uint64_t commit_latency_us_sum;
	_Atomic uint64_t ack_latency_us_sum;
	/* ingress: CPU time spent doing work (sockets: the thread's CPU time;
	 * DPDK: TSC time of polling passes that found work) */
	_Atomic uint64_t ingress_busy_ns;
	/* DPDK's UDP/IPv4 endpoint */
	_Atomic uint64_t net_dropped[FP_NET_DROP_COUNT];
	_Atomic uint64_t net_arp_replies;
	_Atomic uint64_t net_icmp_echo_replies;
	_Atomic uint64_t net_udp_no_checksum; /* IPv4 UDP may omit its checksum: accepted */
	_Atomic uint64_t net_tx_no_mbuf;     /* an ack waited: the mbuf pool was empty */
	struct fp_port_stats port;
};

unsigned fp_hist_bucket(uint64_t value);
/* Zero the counters and set up the port statistics lock. */
void fp_counters_init(struct fp_counters *c);

struct fp_pipeline_options {
	uint32_t ring_frames;         /* job ring slots, power of two */
	uint32_t commit_batch_taps;   /* commit when this many taps are pending */
	uint32_t commit_interval_us;  /* or when the oldest pending frame is this old */
	uint32_t dedup_window_s;      /* taps older than this are rejected, and expire */
	uint32_t clock_skew_s;        /* how far ahead of our clock a tap may be */
	uint64_t dedup_taps_max;
	uint32_t amount_fen_max;
	uint8_t qr_public_key[32];
	uint32_t verify_threads;  /* verifier lanes for QR signatures, 1 .. 64 */
	uint32_t shed_backlog_ms; /* refuse frames (busy) when the queued work exceeds this; 0: never */
	bool log_rebuild_progress;
	/* While stopping, how long the writer retries a store that refuses to
	 * commit before it gives up (0: FP_STOP_RETRY_US_DEFAULT). */
	uint64_t stop_retry_us;
};
#define FP_STOP_RETRY_US_DEFAULT 10000000u

struct fp_pipeline;

/* Errors of the pipeline: negative. */
enum fp_pipeline_error {
	FP_PIPE_ERR_NOMEM = -100,
	FP_PIPE_ERR_STORE = -101,
	FP_PIPE_ERR_THREAD = -102,
	FP_PIPE_ERR_OPTIONS = -103,
};
const char *fp_pipeline_strerror(int err);

/*
 * Create the pipeline: allocate the ring and dedup set, rebuild the dedup set
 * from the store's recent window, start the writer thread. The pipeline owns
 * keys from here on (it frees them, on failure too); env stays the caller's
 * and must outlive the pipeline.
 * Returns 0, or FP_PIPE_ERR_NOMEM, FP_PIPE_ERR_STORE, FP_PIPE_ERR_THREAD,
 * FP_PIPE_ERR_OPTIONS.
 */
int fp_pipeline_create(struct fp_pipeline **out, const struct fp_pipeline_options *opt,
		       struct fp_keys *keys, struct st_env *env, struct fp_counters *ctr);

/*
 * A reload (any thread): from the next burst on, frames are authenticated
 * with keys and QR codes checked against qr_public_key. The pipeline owns
 * keys from here on (on failure too). Frames already queued were checked with
 * the keys in force when they arrived: nothing queued is dropped or checked
 * twice. Returns 0 or FP_PIPE_ERR_NOMEM.
 */
int fp_pipeline_auth_replace(struct fp_pipeline *p, struct fp_keys *keys, const uint8_t qr_public_key[32]);

/*
 * Stop (call it from the ingress thread, between bursts): the ingress queues
 * nothing more, the writer commits everything queued, then exits. Acks for those
 * frames become available to fp_ingest_acks_peek(); the caller sends them,
 * then calls fp_pipeline_destroy().
 */
void fp_pipeline_stop(struct fp_pipeline *p);
void fp_pipeline_destroy(struct fp_pipeline *p);

/*
 * The one ingest function of every backend: parse, validate, authenticate,
 * dedup, and queue n received datagrams for the writer. Never blocks; a
 * frame that cannot be queued is dropped unacknowledged and counted.
 * Returns how many of the n were handled (always n).
 */
unsigned fp_ingest_burst(struct fp_pipeline *p, const struct fp_rx *rx, unsigned n);

/*
 * Acknowledgements whose frames are durably committed, oldest first, and not
 * yet released. Fills acks with up to max pointers; returns how many.
 */
unsigned fp_ingest_acks_peek(struct fp_pipeline *p, const struct fp_ack_out **acks, unsigned max);
/* Release the n oldest peeked acks (sent, or failed to send: counted). */
void fp_ingest_acks_release(struct fp_pipeline *p, unsigned n);

/*
 * The deny list validators fetch (FP_TYPE_DENY_REQUEST). Changes come with
 * consecutive versions from 1; the gateway's refresher appends each new one
 * from another thread (the ingress reads them without locks). Returns 0, or
 * FP_PIPE_ERR_OPTIONS (not the next version), FP_PIPE_ERR_NOMEM (the list
 * is full: FP_DENY_CHANGES_MAX changes).
 */
#define FP_DENY_CHANGES_MAX (1u << 20)
int fp_pipeline_deny_append(struct fp_pipeline *p, uint32_t version, const struct fp_deny_entry *e);
/* The version acknowledgements carry: the number of changes appended. */
uint32_t fp_pipeline_deny_version(const struct fp_pipeline *p);

/* An fd that becomes readable (eventfd) when acks may be ready; read 8 bytes to clear. */
int fp_pipeline_ack_eventfd(const struct fp_pipeline *p);
/* True when every queued frame has been committed and its ack released. */
bool fp_pipeline_idle(const struct fp_pipeline *p);
/* Is the writer thread gone (after stop)? */
bool fp_pipeline_writer_done(const struct fp_pipeline *p);
/*
 * The loop condition of every ingress backend: once *stop is set, stop the
 * pipeline (setting *stopping); true when it is stopped and drained, every
 * queued frame committed and its ack released.
 */
bool fp_ingress_done(struct fp_pipeline *p, volatile sig_atomic_t *stop, bool *stopping);
/*
 * 0, or the st_error the writer gave up with while stopping (after retrying
 * for stop_retry_us). The ingress then ends once the acks of every committed
 * frame have left; frames never committed are never acknowledged.
 */
int fp_pipeline_writer_status(const struct fp_pipeline *p);

/* ------------------------------------------------------------- ingress */

enum fp_ingress_kind {
	FP_INGRESS_IO_URING = 0,
	FP_INGRESS_RECVMMSG = 1,
};

/*
 * Run an ingress loop on a UDP socket bound to addr:port until *stop becomes
 * true, then drain: wait until every queued frame is committed and
 * acknowledged. io_uring falls back to recvmmsg, with a log line, when the
 * kernel refuses io_uring. Returns 0, or a negative errno.
 */
int fp_ingress_run(struct fp_pipeline *p, enum fp_ingress_kind kind, const char *addr,
		   uint16_t port, volatile sig_atomic_t *stop, struct fp_counters *ctr);

/* ---------------------------------------------------------------- DPDK */

/*
 * The kernel-bypass backend (fastpath/dpdk.c): a UDP/IPv4 endpoint on one
 * DPDK port, polled by one lcore, feeding fp_ingest_burst() like the socket
 * backends. fp_dpdk_open() initialises the EAL and configures the port (fast
 * failure before the pipeline rebuilds its dedup set); fp_dpdk_run() polls
 * until *stop, then drains; fp_dpdk_close() releases the port and the EAL.
 */
struct fp_dpdk_options {
	const char *eal_args;    /* whitespace-separated EAL arguments */
	const char *port;        /* device name (net_tap0, 0000:03:00.0) or port number */
	unsigned lcore;          /* the polling lcore: one of the EAL's lcores */
	const char *address;     /* the gateway's IPv4 address */
	const char *mac;         /* "port": the port's own; or xx:xx:xx:xx:xx:xx */
	uint16_t udp_port;
	uint16_t rx_descriptors, tx_descriptors;
	uint32_t mbufs;          /* mbuf pool size */
	uint32_t idle_sleep_us;  /* 0: busy-poll; else sleep this long after 1024 empty passes */
	bool icmp_echo;          /* answer pings to our address */
};
struct fp_dpdk;

/* Returns 0, or -1 with a message in err. */
int fp_dpdk_open(struct fp_dpdk **out, const struct fp_dpdk_options *opt, struct fp_counters *ctr,
		 char *err, size_t err_len);
/* Poll on the configured lcore until *stop becomes true, then drain. Returns 0 or a negative errno. */
int fp_dpdk_run(struct fp_dpdk *d, struct fp_pipeline *p, volatile sig_atomic_t *stop);
void fp_dpdk_close(struct fp_dpdk *d);

uint64_t fp_now_us(void); /* CLOCK_REALTIME in microseconds */
uint64_t fp_mono_us(void); /* CLOCK_MONOTONIC in microseconds */

#endif
