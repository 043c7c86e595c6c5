/*
 * fastpath.h - the one public header of the fast path.
 *
 * The fast path owns everything between a datagram arriving and its
 * acknowledgement leaving: validation and authentication of frames (their
 * wire format and codec are proto/'s, proto/proto.h), the in-memory
 * dedup set, the bounded job ring to the writer thread, the writer thread
 * that group-commits to the store, and the ingress backends (io_uring,
 * recvmmsg). Every backend feeds the same function, fp_ingest_burst(), and
 * sends what fp_ingest_acks_peek() hands back: there is one data path.
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

#include "proto/proto.h"

struct st_env;

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
	/* gateway.qr_verify = after_commit: QR taps committed with no verdict yet (the writer, and at
	 * start-up those found beyond the frontier), verdicts recorded durably and forged taps among
	 * them (the background verifier); pending = qr_pending_added - qr_verdicts */
	_Atomic uint64_t qr_pending_added;
	_Atomic uint64_t qr_verdicts;
	_Atomic uint64_t qr_forged;
	_Atomic uint64_t qr_frontier; /* the verified frontier, as last committed */
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
	bool qr_verify_after_commit; /* QR signatures verified after the commit, in the background */
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


#endif
