/*
 * config.h - the one public header of config/: the gateway's settings.
 *
 * Settings are a table (config.c): one row per key with its section, name,
 * bounds, default and target field. The file is INI, read with the inih
 * library; a bad value is fatal and the message names file, line and key.
 * Every key, with its default, is documented in config/tapgate.conf.
 */
#ifndef TAPGATE_CONFIG_H
#define TAPGATE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_PATH_MAX 512
#define CFG_ERR_MAX 512

enum cfg_ingress {
	CFG_INGRESS_IO_URING = 0,
	CFG_INGRESS_RECVMMSG = 1,
	CFG_INGRESS_DPDK = 2,
};

enum cfg_qr_verify {
	CFG_QR_VERIFY_BEFORE_ACK = 0,   /* a QR signature is verified before the tap's ack */
	CFG_QR_VERIFY_AFTER_COMMIT = 1, /* after its commit, in the background, before any rating */
};

enum cfg_sync {
	CFG_SYNC_FULL = 0,
	CFG_SYNC_NOMETASYNC = 1,
	CFG_SYNC_NONE = 2,
};

struct cfg {
	/* [gateway] */
	char listen_address[64];
	uint32_t listen_port;
	uint32_t ingress; /* enum cfg_ingress */
	char metrics_address[64];
	uint32_t metrics_port; /* 0: no metrics endpoint */
	char log_file[CFG_PATH_MAX]; /* "-": standard error */
	uint32_t stop_timeout_s;
	uint32_t verify_threads;  /* QR signature verifier threads; 0: one per CPU */
	uint32_t shed_backlog_ms; /* busy replies when queued work exceeds this; 0: never */
	uint32_t qr_verify;       /* enum cfg_qr_verify */
	/* [store] */
	char store_path[CFG_PATH_MAX];
	uint64_t map_size_mb;
	uint32_t sync; /* enum cfg_sync */
	uint32_t commit_batch_taps;
	uint32_t commit_interval_us;
	uint32_t ring_frames;
	/* [dedup] */
	uint32_t dedup_window_days;
	uint64_t dedup_taps_max;
	uint32_t clock_skew_s;
	/* [taps] */
	uint32_t amount_fen_max;
	/* [keys] */
	char validator_key_file[CFG_PATH_MAX];
	uint8_t qr_public_key[32];
	/* [dpdk] (used when gateway.ingress = dpdk) */
	char dpdk_eal_args[1024];
	char dpdk_port[64];
	uint32_t dpdk_lcore;
	char dpdk_address[16];
	char dpdk_mac[18];
	uint32_t dpdk_udp_port;
	uint32_t dpdk_rx_descriptors;
	uint32_t dpdk_tx_descriptors;
	uint32_t dpdk_mbufs;
	uint32_t dpdk_idle_sleep_us;
	uint32_t dpdk_icmp_echo; /* 0 off, 1 on */
	/* [fares] (tapfare, the fare engine) */
	char fares_feed[CFG_PATH_MAX];
	char fares_rated_path[CFG_PATH_MAX];
	char fares_timezone[64];
	char fares_day_cutoff[8];
	uint32_t fares_grace_s;
	/* [settle] (tapsettle, the settlement worker) */
	char settle_path[CFG_PATH_MAX];
	char settle_outbox[CFG_PATH_MAX];
	char settle_counterparties[CFG_PATH_MAX];
	uint32_t settle_poll_s;
	uint32_t settle_write_off_fen;
	uint32_t settle_retry_count;
	uint32_t settle_retry_days;
	char settle_secret_file[CFG_PATH_MAX]; /* the settlement secret: riders' pseudonyms */
};

/* Errors: negative. */
enum cfg_error {
	CFG_ERR_OPEN = -300,  /* file cannot be read */
	CFG_ERR_VALUE = -301, /* a value out of bounds or of the wrong form */
	CFG_ERR_KEY = -302,   /* an unknown section or key */
	CFG_ERR_SYNTAX = -303,
	CFG_ERR_MISSING = -304, /* a required key has no value */
};

/* Fill every field with its default. */
void cfg_defaults(struct cfg *c);

/*
 * Read path over the current values of c (call cfg_defaults() first).
 * Returns 0, or CFG_ERR_OPEN, CFG_ERR_VALUE, CFG_ERR_KEY, CFG_ERR_SYNTAX,
 * with a message in err: "FILE:LINE: key 'section.name': why".
 */
int cfg_load(struct cfg *c, const char *path, char *err, size_t err_len);

/*
 * Set one key from "section.name=value" (command-line overrides). Returns 0,
 * CFG_ERR_VALUE, CFG_ERR_KEY, CFG_ERR_SYNTAX with a message in err.
 */
int cfg_set(struct cfg *c, const char *assignment, char *err, size_t err_len);

/*
 * The first line of path that sets section.name, or 0 if the file does not
 * set it: for messages about a value that is well-formed but unusable (a
 * path that cannot be written).
 */
int cfg_key_line(const char *path, const char *section, const char *name);

/*
 * Where section.name got its value, for a message: "command line: key 'S.N'"
 * if one of sets (the "S.N=V" overrides, applied after the file) sets it,
 * else "PATH:LINE: key 'S.N'", else "PATH: key 'S.N' (its default)".
 */
void cfg_key_origin(const char *path, const char *const *sets, unsigned nsets, const char *section,
		    const char *name, char *out, size_t out_len);

/* Check what a file cannot check line by line (required keys). Returns 0 or CFG_ERR_MISSING. */
int cfg_validate(const struct cfg *c, char *err, size_t err_len);

/*
 * Call fn for every key whose value differs between a and b, saying whether
 * a running gateway can put the new value in force by a reload (SIGHUP).
 * Returns how many keys differ.
 */
typedef void (*cfg_diff_fn)(void *arg, const char *section, const char *name, bool reloadable);
unsigned cfg_diff(const struct cfg *a, const struct cfg *b, cfg_diff_fn fn, void *arg);

/* Print every key with its current value, as a config file would hold it. */
void cfg_print(const struct cfg *c, void *file /* FILE* */);

/* Decode hex into out (exactly out_len bytes). Returns 0 or -1. */
int cfg_hex_decode(const char *hex, uint8_t *out, size_t out_len);

#endif
