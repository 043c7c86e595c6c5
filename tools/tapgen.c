/*
 * tapgen.c - a validator fleet simulator and load generator.
 *
 * It behaves as docs/PROTOCOL.md says a validator must: every tap is kept
 * until an authenticated acknowledgement gives it a final status (stored,
 * duplicate, conflict, rejected); a frame without an acknowledgement is sent
 * again with exponential back-off; an acknowledgement whose MAC fails is
 * ignored. On top it can lose acknowledgements on purpose (the validator
 * retransmits a frame that was in fact stored: its taps must come back as
 * duplicates), upload a depot backlog, and mix in bad input whose outcome it
 * checks: corrupt, forged, unknown-validator, unknown-key, truncated,
 * oversized and garbage datagrams (no acknowledgement expected), replayed QR
 * codes (rejected, qr_reuse) and conflicting records (conflict).
 *
 * All memory is sized from the options at start-up; the loop does not
 * allocate. Exit status: 0 when every tap got its final status and every
 * special tap the status it should; 1 otherwise; 2 for bad options.
 */
#include "tools/demo_fares.h"
#include "proto/proto.h"
#include "proc/proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ini.h>
#include <inttypes.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sys/stat.h>

#define IO_BATCH 64u
#define RETRY_MAX_MS 30000u /* docs/PROTOCOL.md section 8: doubling up to 30 s */

enum tap_state { TAP_PENDING = 0, TAP_INFLIGHT = 1, TAP_DONE = 2, TAP_REFUSED = 3 /* deny-listed at the validator */ };
enum tap_expect { EXPECT_ANY = 0, EXPECT_QR_REUSE = 1, EXPECT_CONFLICT = 2, EXPECT_QR_SIGNATURE = 3,
		  EXPECT_QR_FORGED_STORED = 4 /* gateway.qr_verify = after_commit: acked stored, quarantined later */ };

struct tap_slot {
	struct fp_tap tap;
	uint32_t validator;   /* index into validators */
	uint32_t next;        /* pending FIFO link, UINT32_MAX = end */
	uint8_t state, status, reason, expect;
	struct fp_key key;
	uint64_t queued_mono_us; /* when it joined the pending list */
};

struct frame {
	uint32_t taps[FP_TAPS_PER_FRAME_MAX];
	uint64_t frame_seq;
	uint64_t sent_mono_us;
	uint64_t retry_at_us;
	uint32_t retry_ms;
	uint16_t len;
	uint8_t count;
	bool active, echo; /* echo: stored, resent as if its ack was lost */
	bool refused;      /* answered busy: not in flight, goes again when the validator may send */
	uint8_t bytes[FP_FRAME_BYTES_MAX];
};

struct validator {
	uint32_t id;
	const uint8_t *key;
	uint16_t operator_id;
	uint32_t route_id, vehicle_id, stop_base;
	uint8_t kind;
	uint8_t psam_id[6];
	uint32_t psam_serial, tap_id;
	uint64_t frame_seq;
	uint64_t busy_until_us; /* a busy reply: send nothing before (docs/PROTOCOL.md section 8) */
	uint32_t window_now;    /* frames it may have in flight: 1 after a busy reply, +1 per ack */
	uint32_t pending_head, pending_tail, pending_count;
	struct frame *frames; /* window */
	/* the deny list, as a validator keeps it (docs/PROTOCOL.md section 12) */
	uint32_t deny_version, deny_n, deny_cap;
	uint64_t *deny;        /* medium << 60 | token */
	uint64_t deny_asked_us; /* a request in flight since (0: none) */
	uint64_t deny_seq;
	uint8_t deny_req[FP_DENY_REQUEST_BYTES];
};

struct rider {
	uint32_t balance_fen;
	uint16_t ctc, atc;
	uint64_t last_tap_us; /* --spread-s: a rider's taps run forward in time, as a card's CTC does */
	uint32_t entry_stop;  /* --network demo: inside the metro since this entry (0: not) */
	uint8_t entry_medium;
};

struct options {
	const char *gateway, *keys_path, *qr_key_path, *out_path, *json_path, *write_keys_path;
	uint32_t validators, first_validator, window, taps_per_frame, retry_ms, linger_ms;
	uint16_t key_id; /* the key of each validator that signs its frames */
	uint64_t first_rider; /* riders' cards and tokens are numbered from here */
	uint64_t taps, rate, seed;
	double duration_s, retransmit_rate, give_up_s;
	unsigned mix[3];
	int medium;
	bool depot, backlog, progress;
	bool demo_network;   /* validators on config/fares-demo's routes and stops */
	uint64_t spread_s;   /* tap times over the last spread_s seconds (0: now) */
	uint32_t bad_corrupt, bad_mac, bad_validator, bad_key, bad_truncated, bad_oversized, bad_garbage;
	uint32_t replay_qr, conflict, forged_qr;
	bool forged_qr_stored; /* --forged-qr-expect stored: the gateway verifies after the commit */
};

struct stats {
	uint64_t frames_sent, taps_sent, frames_retransmitted, frames_echoed;
	uint64_t status[4], reasons[FP_REASON_COUNT], echo_statuses[4];
	uint64_t busy_received, busy_ignored, sent_before_retry_after, busy_retry_after_max_ms;
	uint64_t bad_sent, acks_bad_mac, acks_unknown, unexpected, send_errors;
	uint64_t refused_denylisted, deny_requests, deny_replies, deny_changes;
	uint64_t done, special_done;
	uint64_t first_send_us, last_done_us;
};

struct gen {
	struct options o;
	struct fp_keys *keys;
	uint8_t qr_pk[32], qr_sk[64];
	bool have_qr;
	int fd;
	struct sockaddr_in gw;
	struct validator *v;
	struct tap_slot *taps;
	uint64_t taps_cap, taps_used, normal_generated;
	struct rider *riders;
	uint32_t riders_count;
	uint32_t *latencies_us;
	uint64_t latencies_count, latencies_cap;
	uint64_t rng;
	struct stats st;
	struct mmsghdr out_msgs[IO_BATCH];
	struct iovec out_iov[IO_BATCH];
	uint8_t out_scratch[IO_BATCH][FP_FRAME_BYTES_MAX + 200];
	unsigned out_count;
};

/* ------------------------------------------------------------- helpers */

static uint64_t rnd(struct gen *g)
{
	/* xorshift64*: fast, deterministic for --seed */
	g->rng ^= g->rng >> 12;
	g->rng ^= g->rng << 25;
	g->rng ^= g->rng >> 27;
	return g->rng * 0x2545F4914F6CDD1Dull;
}

static double rnd01(struct gen *g)
{
	return (double)(rnd(g) >> 11) / 9007199254740992.0;
}

static void die_usage(const char *msg, const char *arg)
{
	fprintf(stderr, "tapgen: %s%s%s\n(tapgen --help for the options)\n", msg, arg ? ": " : "",
		arg ? arg : "");
	exit(2);
}

static uint64_t parse_u64(const char *opt, const char *s, uint64_t max)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || s[0] == '-' || s[0] == 0 || v > max) {
		char msg[96];
		snprintf(msg, sizeof(msg), "option --%s wants a whole number up to %" PRIu64, opt, max);
		die_usage(msg, s);
	}
	return v;
}

static double parse_double(const char *opt, const char *s, double max)
{
	char *end;
	double v = strtod(s, &end);
	if (*end || s[0] == 0 || v < 0 || v > max) {
		char msg[96];
		snprintf(msg, sizeof(msg), "option --%s wants a number from 0 to %g", opt, max);
		die_usage(msg, s);
	}
	return v;
}

/* ------------------------------------------------------------- options */

static void usage(void)
{
	printf("usage: tapgen [options]\n"
	       "  --gateway ADDR:PORT     gateway to send to (127.0.0.1:7700)\n"
	       "  --keys FILE             validator key file (config/dev-validators.keys)\n"
	       "  --key-id K              the key id each validator signs with (1): rotations\n"
	       "  --first-rider N         number riders' cards and tokens from N (0): runs whose taps must not meet\n"
	       "  --qr-key FILE           QR platform keypair, to sign QR codes (config/dev-qr-platform.key)\n"
	       "  --validators N          validators to simulate (64); ids from --first-validator (1001)\n"
	       "  --taps N                unique taps to generate (10000)\n"
	       "  --duration-s S          or: generate for S seconds (with --rate)\n"
	       "  --rate TAPS_PER_S       generation rate (0: as fast as the window allows)\n"
	       "  --taps-per-frame K      taps packed per frame, at most what fits 1400 bytes (1)\n"
	       "  --window FRAMES         frames in flight per validator (4)\n"
	       "  --linger-ms MS          hold a part-full frame up to MS for more taps (0)\n"
	       "  --mix E,Q,R             percent e-purse, QuickPass, QR (60,30,10)\n"
	       "  --medium M              only one medium: epurse | quickpass | qr\n"
	       "  --retransmit-rate P     probability an acknowledged frame is sent again, as if its ack was lost (0)\n"
	       "  --depot                 bus validators upload a backlog: tap times over the last 6 hours\n"
	       "  --backlog               a recovery storm: every validator holds its taps (times over the last\n"
	       "                          6 hours) before the first is sent, then all start at once; seconds and\n"
	       "                          taps_per_s count from the first send\n"
	       "  --network demo          validators on the demo fare network (config/fares-demo): bus routes\n"
	       "                          1 2 5 11, metro line 51 gates, canteens 901 902 (for tapfare)\n"
	       "  --spread-s S            tap times spread over the last S seconds (days of taps; 0 = now)\n"
	       "  --retry-ms MS           first retransmission timeout (200), doubling to 30000, + 0..20%% jitter\n"
	       "  --give-up-s S           stop when nothing progressed for S seconds (30)\n"
	       "  --bad-corrupt N --bad-mac N --bad-validator N --bad-key N\n"
	       "  --bad-truncated N --bad-oversized N --bad-garbage N   bad datagrams (no ack expected)\n"
	       "  --replay-qr N           reuse N stored QR codes at another validator (expect rejected qr_reuse)\n"
	       "  --conflict N            resend N stored e-purse taps with another amount (expect conflict)\n"
	       "  --forged-qr N           send N new QR codes whose signature was not made by the platform\n"
	       "                          (expect rejected qr_signature, also for their retransmissions)\n"
	       "  --forged-qr-expect rejected|stored   what forged codes get: rejected qr_signature (the\n"
	       "                          default, gateway.qr_verify = before_ack) or stored (after_commit:\n"
	       "                          acknowledged stored, quarantined by the gateway's background verifier)\n"
	       "  --out FILE              CSV of the unique taps acknowledged stored or duplicate, sorted by identity\n"
	       "  --json FILE             the final figures as a JSON object\n"
	       "  --write-keys FILE       write random keys for --validators validators from --first-validator\n"
	       "                          to FILE (a fleet for the bench; the gateway loads the same file), then exit\n"
	       "  --seed N --progress --help\n"
	       "Exit: 0 all taps acknowledged with the expected status, 1 otherwise, 2 bad options.\n");
}

static void parse_mix(struct options *o, const char *s)
{
	unsigned e, q, r;
	char tail;
	if (sscanf(s, "%u,%u,%u%c", &e, &q, &r, &tail) != 3 || e + q + r != 100)
		die_usage("--mix wants three percentages that add up to 100, e.g. 60,30,10", s);
	o->mix[0] = e, o->mix[1] = q, o->mix[2] = r;
}

static void parse_medium(struct options *o, const char *s)
{
	static const struct { const char *name; unsigned mix[3]; } media[] = {
		{"epurse", {100, 0, 0}}, {"quickpass", {0, 100, 0}}, {"qr", {0, 0, 100}}};
	for (unsigned i = 0; i < 3; i++) {
		if (strcmp(s, media[i].name) == 0) {
			memcpy(o->mix, media[i].mix, sizeof(o->mix));
			return;
		}
	}
	die_usage("--medium wants epurse, quickpass or qr", s);
}

/* The long options: getopt_long returns O_BASE + 1 + the option's index in longopts. */
enum { O_BASE = 256, O_GW, O_KEYS, O_QRKEY, O_VAL, O_FIRST, O_TAPS, O_DUR, O_RATE, O_TPF, O_WIN, O_MIX,
       O_MED, O_RETX, O_DEPOT, O_BACKLOG, O_RETRY, O_GIVEUP, O_BC, O_BM, O_BV, O_BK, O_BT, O_BO, O_BG, O_RQ,
       O_CONF, O_FORGED, O_WKEYS, O_OUT, O_JSON, O_SEED, O_PROG, O_LINGER, O_HELP, O_NET, O_SPREAD, O_KEYID, O_RIDER, O_FEXPECT };
static const struct option longopts[] = {
	{"gateway", 1, 0, O_GW}, {"keys", 1, 0, O_KEYS}, {"qr-key", 1, 0, O_QRKEY},
	{"validators", 1, 0, O_VAL}, {"first-validator", 1, 0, O_FIRST}, {"taps", 1, 0, O_TAPS},
	{"duration-s", 1, 0, O_DUR}, {"rate", 1, 0, O_RATE}, {"taps-per-frame", 1, 0, O_TPF},
	{"window", 1, 0, O_WIN}, {"mix", 1, 0, O_MIX}, {"medium", 1, 0, O_MED},
	{"retransmit-rate", 1, 0, O_RETX}, {"depot", 0, 0, O_DEPOT}, {"backlog", 0, 0, O_BACKLOG}, {"retry-ms", 1, 0, O_RETRY},
	{"give-up-s", 1, 0, O_GIVEUP}, {"bad-corrupt", 1, 0, O_BC}, {"bad-mac", 1, 0, O_BM},
	{"bad-validator", 1, 0, O_BV}, {"bad-key", 1, 0, O_BK}, {"bad-truncated", 1, 0, O_BT},
	{"bad-oversized", 1, 0, O_BO}, {"bad-garbage", 1, 0, O_BG}, {"replay-qr", 1, 0, O_RQ},
	{"conflict", 1, 0, O_CONF}, {"forged-qr", 1, 0, O_FORGED}, {"write-keys", 1, 0, O_WKEYS}, {"out", 1, 0, O_OUT}, {"json", 1, 0, O_JSON},
	{"seed", 1, 0, O_SEED}, {"progress", 0, 0, O_PROG}, {"linger-ms", 1, 0, O_LINGER},
	{"help", 0, 0, O_HELP}, {"network", 1, 0, O_NET}, {"spread-s", 1, 0, O_SPREAD},
	{"key-id", 1, 0, O_KEYID}, {"first-rider", 1, 0, O_RIDER}, {"forged-qr-expect", 1, 0, O_FEXPECT}, {0}};

/* The options that send bad input on purpose (counts of each kind). Returns false if c is none of them. */
static bool option_bad(struct options *o, int c, const char *name, const char *arg)
{
	switch (c) {
	case O_BC: o->bad_corrupt = (uint32_t)parse_u64(name, arg, 1000000); break;
	case O_BM: o->bad_mac = (uint32_t)parse_u64(name, arg, 1000000); break;
	case O_BV: o->bad_validator = (uint32_t)parse_u64(name, arg, 1000000); break;
	case O_BK: o->bad_key = (uint32_t)parse_u64(name, arg, 1000000); break;
	case O_BT: o->bad_truncated = (uint32_t)parse_u64(name, arg, 1000000); break;
	case O_BO: o->bad_oversized = (uint32_t)parse_u64(name, arg, 1000000); break;
	case O_BG: o->bad_garbage = (uint32_t)parse_u64(name, arg, 1000000); break;
	case O_RQ: o->replay_qr = (uint32_t)parse_u64(name, arg, 100000); break;
	case O_CONF: o->conflict = (uint32_t)parse_u64(name, arg, 100000); break;
	case O_FORGED: o->forged_qr = (uint32_t)parse_u64(name, arg, 100000); break;
	case O_FEXPECT:
		if (strcmp(arg, "stored") != 0 && strcmp(arg, "rejected") != 0)
			die_usage("--forged-qr-expect wants rejected or stored", arg);
		o->forged_qr_stored = strcmp(arg, "stored") == 0;
		break;
	default: return false;
	}
	return true;
}

/* What the options say together: bounds no single option can check. Exits 2 (usage) on a contradiction. */
static void options_check(struct options *o)
{
	if (o->validators == 0 || o->window == 0 || o->taps_per_frame == 0)
		die_usage("--validators, --window and --taps-per-frame must be at least 1", NULL);
	if (o->duration_s > 0 && o->rate == 0)
		die_usage("--duration-s needs --rate", NULL);
	if (o->duration_s > 0)
		o->taps = (uint64_t)(o->duration_s * (double)o->rate);
	if (o->taps == 0)
		die_usage("--taps must be at least 1", NULL);
}

static void options_parse(int argc, char **argv, struct options *o)
{
	*o = (struct options){.gateway = "127.0.0.1:7700", .keys_path = "config/dev-validators.keys",
			      .qr_key_path = "config/dev-qr-platform.key", .validators = 64,
			      .first_validator = 1001, .window = 4, .taps_per_frame = 1, .retry_ms = 200, .key_id = 1,
			      .taps = 10000, .seed = 1, .give_up_s = 30, .mix = {60, 30, 10}};
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		const char *name = c > O_BASE && c < O_HELP ? longopts[c - O_BASE - 1].name : "";
		switch (c) {
		case O_GW: o->gateway = optarg; break;
		case O_KEYS: o->keys_path = optarg; break;
		case O_QRKEY: o->qr_key_path = optarg; break;
		case O_VAL: o->validators = (uint32_t)parse_u64(name, optarg, FP_VALIDATORS_MAX); break;
		case O_FIRST: o->first_validator = (uint32_t)parse_u64(name, optarg, UINT32_MAX); break;
		case O_TAPS: o->taps = parse_u64(name, optarg, 100000000); break;
		case O_DUR: o->duration_s = parse_double(name, optarg, 86400); break;
		case O_RATE: o->rate = parse_u64(name, optarg, 100000000); break;
		case O_TPF: o->taps_per_frame = (uint32_t)parse_u64(name, optarg, FP_TAPS_PER_FRAME_MAX); break;
		case O_WIN: o->window = (uint32_t)parse_u64(name, optarg, 256); break;
		case O_MIX: parse_mix(o, optarg); break;
		case O_MED: parse_medium(o, optarg); break;
		case O_RETX: o->retransmit_rate = parse_double(name, optarg, 1); break;
		case O_DEPOT: o->depot = true; break;
		case O_BACKLOG: o->backlog = true; break;
		case O_NET:
			if (strcmp(optarg, "demo") != 0) {
				fprintf(stderr, "tapgen: --network: only \"demo\" is known\n");
				exit(64);
			}
			o->demo_network = true;
			break;
		case O_RIDER: o->first_rider = parse_u64("first-rider", optarg, 1000000000); break;
		case O_KEYID: o->key_id = (uint16_t)parse_u64("key-id", optarg, UINT16_MAX); break;
		case O_SPREAD: o->spread_s = parse_u64(name, optarg, 14 * 86400); break;
		case O_RETRY: o->retry_ms = (uint32_t)parse_u64(name, optarg, RETRY_MAX_MS); break;
		case O_GIVEUP: o->give_up_s = parse_double(name, optarg, 86400); break;
		case O_OUT: o->out_path = optarg; break;
		case O_WKEYS: o->write_keys_path = optarg; break;
		case O_JSON: o->json_path = optarg; break;
		case O_SEED: o->seed = parse_u64(name, optarg, UINT64_MAX); break;
		case O_PROG: o->progress = true; break;
		case O_LINGER: o->linger_ms = (uint32_t)parse_u64(name, optarg, 10000); break;
		case O_HELP: usage(); exit(0);
		default:
			if (!option_bad(o, c, name, optarg))
				die_usage("unknown option", argv[optind - 1]);
		}
	}
	if (optind != argc)
		die_usage("unexpected argument", argv[optind]);
	options_check(o);
}


/* ----------------------------------------------------------- set-up */

static int on_qr_key(void *user, const char *section, const char *name, const char *value)
{
	struct gen *g = user;
	size_t len = 0;
	if (strcmp(section, "qr_platform") != 0)
		return 1;
	if (strcmp(name, "public_key") == 0)
		return sodium_hex2bin(g->qr_pk, 32, value, strlen(value), NULL, &len, NULL) == 0 && len == 32;
	if (strcmp(name, "secret_key") == 0)
		return sodium_hex2bin(g->qr_sk, 64, value, strlen(value), NULL, &len, NULL) == 0 && len == 64;
	return 1;
}

static void keys_load(struct gen *g)
{
	char err[512];
	g->keys = fp_keys_load(g->o.keys_path, err, sizeof(err));
	if (g->keys == NULL) {
		fprintf(stderr, "tapgen: %s\n", err);
		exit(2);
	}
	if (g->o.mix[2] == 0 && g->o.replay_qr == 0 && g->o.forged_qr == 0)
		return;
	int line = ini_parse(g->o.qr_key_path, on_qr_key, g);
	if (line != 0) {
		fprintf(stderr, "tapgen: %s:%d: cannot read the QR platform key\n", g->o.qr_key_path, line);
		exit(2);
	}
	g->have_qr = true;
}

static void socket_setup(struct gen *g)
{
	char host[64];
	const char *colon = strrchr(g->o.gateway, ':');
	if (colon == NULL || (size_t)(colon - g->o.gateway) >= sizeof(host))
		die_usage("--gateway wants ADDR:PORT", g->o.gateway);
	snprintf(host, sizeof(host), "%.*s", (int)(colon - g->o.gateway), g->o.gateway);
	g->gw = (struct sockaddr_in){.sin_family = AF_INET,
				     .sin_port = htons((uint16_t)parse_u64("gateway", colon + 1, 65535))};
	if (inet_pton(AF_INET, host, &g->gw.sin_addr) != 1)
		die_usage("--gateway wants an IPv4 address", host);
	g->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int bytes = 16 << 20;
	setsockopt(g->fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes));
	setsockopt(g->fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes));
	if (g->fd < 0 || connect(g->fd, (struct sockaddr *)&g->gw, sizeof(g->gw)) != 0) {
		fprintf(stderr, "tapgen: cannot open a socket to %s: %s\n", g->o.gateway, strerror(errno));
		exit(1);
	}
}

/* Validators: 60% buses, 30% metro gates (entry and exit), 10% canteens. */
/* The demo fare network (config/fares-demo/README.md): role by validator
 * number, 6 in 10 on buses, 3 metro gates, 1 canteen till. */
static void demo_assign(struct validator *v, uint32_t i)
{
	static const uint32_t bus_routes[] = {1, 2, 5, 11};
	unsigned role = i % 10;
	if (role < 6) {
		v->route_id = bus_routes[i % 4];
		v->operator_id = 1;
		v->stop_base = v->route_id * 100 + 1;
	} else if (role < 9) {
		v->route_id = 51;
		v->operator_id = 2;
		v->stop_base = 5101;
	} else {
		v->route_id = 901 + i % 2;
		v->operator_id = 3;
		v->stop_base = v->route_id * 10 + 1;
	}
}

static void validators_setup(struct gen *g)
{
	g->v = calloc(g->o.validators, sizeof(*g->v));
	for (uint32_t i = 0; i < g->o.validators; i++) {
		struct validator *v = &g->v[i];
		int why;
		v->id = g->o.first_validator + i;
		v->key = fp_keys_find(g->keys, v->id, g->o.key_id, &why);
		if (v->key == NULL) {
			fprintf(stderr, "tapgen: validator %u has no key %u in %s\n", v->id, g->o.key_id, g->o.keys_path);
			exit(2);
		}
		unsigned role = i % 10;
		v->kind = role < 6 ? FP_KIND_BOARD : role < 9 ? (i % 2 ? FP_KIND_EXIT : FP_KIND_ENTRY) : FP_KIND_PURCHASE;
		v->operator_id = role < 6 ? (uint16_t)(1 + i % 2) : role < 9 ? 10 : 50;
		v->route_id = role < 6 ? 1 + (i * 7) % 930 : role < 9 ? 1 + i % 9 : 900 + i % 10;
		v->vehicle_id = role < 6 ? 10000 + i : 0;
		v->stop_base = 100000 + i * 40;
		if (g->o.demo_network)
			demo_assign(v, i);
		for (int b = 0; b < 6; b++)
			v->psam_id[b] = (uint8_t)(v->id >> (8 * (b % 4)));
		v->pending_head = v->pending_tail = UINT32_MAX;
		v->window_now = g->o.window;
		v->frames = calloc(g->o.window, sizeof(*v->frames));
		if (v->frames == NULL) {
			fprintf(stderr, "tapgen: out of memory\n");
			exit(1);
		}
	}
}

static void memory_setup(struct gen *g)
{
	g->taps_cap = g->o.taps + g->o.replay_qr + g->o.conflict + g->o.forged_qr;
	g->taps = calloc(g->taps_cap, sizeof(*g->taps));
	g->riders_count = (uint32_t)(g->o.taps / 4 + 1000);
	g->riders = calloc(g->riders_count, sizeof(*g->riders));
	g->latencies_cap = g->taps_cap * 2 + 1024;
	g->latencies_us = calloc(g->latencies_cap, sizeof(*g->latencies_us));
	if (!g->taps || !g->riders || !g->latencies_us) {
		fprintf(stderr, "tapgen: out of memory for %" PRIu64 " taps\n", g->taps_cap);
		exit(1);
	}
	for (uint32_t r = 0; r < g->riders_count; r++)
		g->riders[r].balance_fen = 5000 + (uint32_t)(rnd(g) % 20000);
}

/* ------------------------------------------------------- tap generation */

static void pending_push(struct gen *g, uint32_t vi, uint32_t t)
{
	struct validator *v = &g->v[vi];
	g->taps[t].next = UINT32_MAX;
	g->taps[t].state = TAP_PENDING;
	g->taps[t].validator = vi;
	g->taps[t].queued_mono_us = fp_mono_us();
	if (v->pending_tail == UINT32_MAX)
		v->pending_head = t;
	else
		g->taps[v->pending_tail].next = t;
	v->pending_tail = t;
	v->pending_count++;
}

static uint8_t rider_category(uint32_t r)
{
	unsigned c = r % 20;
	return c < 14 ? FP_CATEGORY_ADULT : c < 17 ? FP_CATEGORY_SENIOR : c < 19 ? FP_CATEGORY_STUDENT
							    : FP_CATEGORY_DISABLED;
}

static void epurse_fill(struct gen *g, struct validator *v, uint32_t r, struct fp_tap *t)
{
	struct rider *rd = &g->riders[r];
	struct fp_epurse *e = &t->u.epurse;
	if (rd->balance_fen < t->amount_fen)
		rd->balance_fen += 10000; /* recharged at a service point */
	e->issuer_code = 2660 + r % 3; /* Qingdao and two neighbours */
	e->card_number = 3104266000000000000ull + g->o.first_rider + r;
	e->ctc = ++rd->ctc;
	e->balance_before_fen = rd->balance_fen;
	e->balance_after_fen = rd->balance_fen - t->amount_fen;
	rd->balance_fen -= t->amount_fen;
	e->tac = (uint32_t)rnd(g);
	memcpy(e->psam_id, v->psam_id, 6);
	e->psam_serial = ++v->psam_serial;
	e->key_version = 1;
	e->transaction_type = 6;
}

static void qr_fill(struct gen *g, uint32_t r, struct fp_tap *t)
{
	struct fp_qr *q = &t->u.qr;
	uint8_t signed_bytes[FP_QR_PAYLOAD_BYTES];
	q->qr_version = 1;
	q->account_token = 0x5100000000ull + g->o.first_rider + r;
	q->issued_at_s = (uint32_t)(t->tap_time_us / 1000000u) - 5;
	q->expires_at_s = q->issued_at_s + 60;
	uint64_t a = rnd(g), b = rnd(g);
	memcpy(q->qr_id, &a, 8);
	memcpy(q->qr_id + 8, &b, 8);
	fp_qr_signed_bytes(q, signed_bytes);
	crypto_sign_detached(q->signature, NULL, signed_bytes, sizeof(signed_bytes), g->qr_sk);
}

/* A metro exit gate, or UINT32_MAX if the fleet has none. */
static uint32_t exit_validator(struct gen *g)
{
	uint32_t from = (uint32_t)(rnd(g) % g->o.validators);
	for (uint32_t k = 0; k < g->o.validators; k++) {
		uint32_t vi = (from + k) % g->o.validators;
		if (g->v[vi].kind == FP_KIND_EXIT)
			return vi;
	}
	return UINT32_MAX;
}

/* What a demo-network validator deducts offline from an e-purse: the demo
 * feed's peak fare for the card's category (no off-peak, no transfers). */
/* ------------------------------------------------------------- deny list */

static bool deny_has(const struct validator *v, uint8_t medium, uint64_t token)
{
	uint64_t k = (uint64_t)medium << 60 | token;
	for (uint32_t i = 0; i < v->deny_n; i++)
		if (v->deny[i] == k)
			return true;
	return false;
}

static void deny_apply(struct validator *v, const struct fp_deny_entry *e)
{
	uint64_t k = (uint64_t)e->medium << 60 | e->token;
	for (uint32_t i = 0; i < v->deny_n; i++)
		if (v->deny[i] == k) {
			if (!e->added)
				v->deny[i] = v->deny[--v->deny_n];
			return;
		}
	if (!e->added)
		return;
	if (v->deny_n == v->deny_cap) {
		v->deny_cap = v->deny_cap ? v->deny_cap * 2 : 16;
		v->deny = realloc(v->deny, v->deny_cap * sizeof(*v->deny));
		if (!v->deny) {
			fprintf(stderr, "tapgen: out of memory\n");
			exit(1);
		}
	}
	v->deny[v->deny_n++] = k;
}

static void out_queue(struct gen *g, const uint8_t *bytes, size_t len);

/* Ask the gateway for the changes after the version this validator holds (once at a time). */
static void deny_ask(struct gen *g, struct validator *v, uint64_t now_us)
{
	if (v->deny_asked_us && now_us - v->deny_asked_us < 500000u)
		return;
	struct fp_deny_request rq = {.validator_id = v->id, .key_id = g->o.key_id, .request_seq = ++v->deny_seq,
				     .send_time_us = fp_now_us(), .since_version = v->deny_version};
	if (fp_deny_request_encode(&rq, v->key, v->deny_req, sizeof(v->deny_req)) < 0)
		return;
	v->deny_asked_us = now_us ? now_us : 1;
	g->st.deny_requests++;
	out_queue(g, v->deny_req, FP_DENY_REQUEST_BYTES);
}

/* The validator a gateway reply is addressed to (bytes 4..7), before its MAC is checked; NULL: not ours. */
static struct validator *reply_validator(struct gen *g, const uint8_t *buf, size_t len)
{
	uint32_t vid = len >= 8 ? (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 | (uint32_t)buf[6] << 8 | buf[7] : 0;
	if (vid < g->o.first_validator || vid - g->o.first_validator >= g->o.validators) {
		g->st.acks_unknown++;
		return NULL;
	}
	return &g->v[vid - g->o.first_validator];
}

static void deny_reply_handle(struct gen *g, const uint8_t *buf, size_t len, uint64_t now_us)
{
	struct fp_deny_reply rp;
	struct validator *v = reply_validator(g, buf, len);
	if (v == NULL)
		return;
	if (fp_deny_reply_decode(buf, len, v->key, &rp) != 0) {
		g->st.acks_bad_mac++;
		return;
	}
	if (rp.request_seq != v->deny_seq)
		return; /* an answer to an older request */
	g->st.deny_replies++;
	if (rp.flags & FP_DENY_RESET)
		v->deny_n = 0;
	for (unsigned i = 0; i < rp.count; i++)
		deny_apply(v, &rp.entries[i]);
	g->st.deny_changes += rp.count;
	v->deny_version = rp.version;
	v->deny_asked_us = 0;
	if (rp.flags & FP_DENY_MORE)
		deny_ask(g, v, now_us);
}

/*
 * One new tap at a random validator, by a random rider. On the demo network a
 * rider inside the metro taps out next, at an exit gate, with the medium it
 * entered with, 5 to 50 minutes later; e-purse validators deduct the peak fare.
 */
static void tap_generate(struct gen *g, uint64_t now_us)
{
	uint32_t vi = (uint32_t)(rnd(g) % g->o.validators), r = (uint32_t)(rnd(g) % g->riders_count);
	struct rider *rd = &g->riders[r];
	bool leaving = false;
	if (g->o.demo_network && rd->entry_stop != 0) {
		uint32_t x = exit_validator(g);
		if (x != UINT32_MAX) {
			vi = x;
			leaving = true;
		}
	}
	struct validator *v = &g->v[vi];
	uint32_t t = (uint32_t)g->taps_used++;
	struct fp_tap *tap = &g->taps[t].tap;
	unsigned pick = (unsigned)(rnd(g) % 100);
	memset(tap, 0, sizeof(*tap));
	tap->medium = pick < g->o.mix[0] ? FP_MEDIUM_EPURSE
		      : pick < g->o.mix[0] + g->o.mix[1] ? FP_MEDIUM_QUICKPASS : FP_MEDIUM_QR;
	if (leaving)
		tap->medium = rd->entry_medium;
	tap->kind = v->kind;
	tap->category = rider_category(r);
	tap->tap_id = ++v->tap_id;
	bool held = g->o.backlog || (g->o.depot && v->kind == FP_KIND_BOARD);
	tap->tap_time_us = now_us - (held ? rnd(g) % 21600000000ull : rnd(g) % 2000000u);
	tap->stop_id = v->stop_base + (uint32_t)(rnd(g) % 40);
	if (g->o.demo_network) /* the demo's stops: 6 per bus route, 10 metro stations, one till per canteen */
		tap->stop_id = v->stop_base + (uint32_t)(rnd(g) % (v->kind == FP_KIND_PURCHASE ? 1 : v->route_id == 51 ? 10 : 6));
	if (g->o.spread_s) { /* from the start of the spread, about 4 taps a rider: steps of up to spread/2 */
		uint64_t spread_us = g->o.spread_s * 1000000u;
		uint64_t from = rd->last_tap_us ? rd->last_tap_us : now_us - spread_us;
		uint64_t step = leaving ? 300000000u + rnd(g) % 2700000000u : 1 + rnd(g) % (spread_us / 2 + 1);
		uint64_t at = from + step;
		tap->tap_time_us = rd->last_tap_us = at <= now_us ? at : from + (now_us - from) / 2;
	}
	tap->amount_fen = v->kind == FP_KIND_PURCHASE ? 800 + (uint32_t)(rnd(g) % 8) * 100
			  : v->kind == FP_KIND_EXIT ? 200 + (uint32_t)(rnd(g) % 4) * 100
			  : v->kind == FP_KIND_ENTRY ? 0 : 200;
	if (g->o.demo_network && v->kind != FP_KIND_PURCHASE)
		tap->amount_fen = demo_offline_fare(tap->category, v->kind == FP_KIND_ENTRY ? 0
								  : v->kind == FP_KIND_BOARD ? DEMO_BUS_FEN
								  : leaving ? demo_metro_fen(rd->entry_stop, tap->stop_id)
									    : 500);
	if (g->o.demo_network)
		rd->entry_stop = v->kind == FP_KIND_ENTRY ? tap->stop_id : 0;
	rd->entry_medium = tap->medium;
	if (tap->medium != FP_MEDIUM_EPURSE && v->kind != FP_KIND_PURCHASE)
		tap->amount_fen = 0; /* tap now, pay later: the back office rates it */
	if (tap->medium == FP_MEDIUM_EPURSE)
		epurse_fill(g, v, r, tap);
	else if (tap->medium == FP_MEDIUM_QUICKPASS)
		tap->u.quickpass = (struct fp_quickpass){.account_token = 0x7100000000ull + g->o.first_rider + r,
							 .atc = ++g->riders[r].atc, .expiry_yymm = 2912};
	else
		qr_fill(g, r, tap);
	g->taps[t].key = fp_tap_identity(tap, v->id);
	g->normal_generated++;
	uint64_t token = tap->medium == FP_MEDIUM_QUICKPASS ? tap->u.quickpass.account_token
			 : tap->medium == FP_MEDIUM_QR	    ? tap->u.qr.account_token
							    : 0;
	if (token && deny_has(v, tap->medium, token)) { /* the card is refused at the validator: nothing is sent */
		g->taps[t].state = TAP_REFUSED;
		g->taps[t].validator = vi;
		g->st.refused_denylisted++;
		g->st.done++;
		return;
	}
	pending_push(g, vi, t);
}

/* ------------------------------------------------------------- sending */

static void out_flush(struct gen *g)
{
	unsigned sent = 0;
	while (sent < g->out_count) {
		int n = sendmmsg(g->fd, g->out_msgs + sent, g->out_count - sent, 0);
		if (n <= 0) { /* a full socket buffer loses the rest: the back-off resends */
			g->st.send_errors += g->out_count - sent;
			break;
		}
		sent += (unsigned)n;
	}
	g->out_count = 0;
}

/* Queue one datagram; its bytes must stay valid until out_flush(). */
static void out_queue(struct gen *g, const uint8_t *bytes, size_t len)
{
	if (g->out_count == IO_BATCH)
		out_flush(g);
	g->out_iov[g->out_count] = (struct iovec){(void *)bytes, len};
	g->out_msgs[g->out_count].msg_hdr = (struct msghdr){.msg_iov = &g->out_iov[g->out_count], .msg_iovlen = 1};
	g->out_count++;
}

static void frame_send(struct gen *g, struct validator *v, struct frame *f, uint64_t now_us)
{
	if (now_us < v->busy_until_us)
		g->st.sent_before_retry_after++; /* must stay 0: the rules of section 8 */
	f->refused = false;
	if (g->st.first_send_us == 0)
		g->st.first_send_us = now_us;
	f->sent_mono_us = now_us;
	uint32_t jitter = f->retry_ms / 5 ? (uint32_t)(rnd(g) % (f->retry_ms / 5)) : 0;
	f->retry_at_us = now_us + (uint64_t)(f->retry_ms + jitter) * 1000u;
	g->st.frames_sent++;
	g->st.taps_sent += f->count;
	out_queue(g, f->bytes, f->len);
}

/* Pack pending taps of validator v into a free window slot and send it. */
static bool frame_build(struct gen *g, struct validator *v, uint64_t now_us)
{
	struct frame *f = NULL, *refused = NULL;
	uint32_t in_flight = 0;
	if (now_us < v->busy_until_us)
		return false;
	for (uint32_t w = 0; w < g->o.window; w++) {
		struct frame *x = &v->frames[w];
		in_flight += x->active && !x->refused;
		if (x->active && x->refused && (refused == NULL || x->frame_seq < refused->frame_seq))
			refused = x;
		if (!x->active && f == NULL)
			f = x;
	}
	if (in_flight >= v->window_now)
		return false;
	if (refused != NULL) { /* the oldest refused frame goes first, as it was */
		g->st.frames_retransmitted++;
		frame_send(g, v, refused, now_us);
		return true;
	}
	if (f == NULL || v->pending_count == 0)
		return false;
	/* A part-full frame waits up to --linger-ms for more taps. */
	if (v->pending_count < g->o.taps_per_frame &&
	    g->taps[v->pending_head].queued_mono_us + (uint64_t)g->o.linger_ms * 1000u > now_us)
		return false;
	struct fp_tap taps[FP_TAPS_PER_FRAME_MAX];
	size_t bytes = FP_FRAME_HEADER_BYTES + FP_MAC_BYTES;
	f->count = 0;
	while (v->pending_head != UINT32_MAX && f->count < g->o.taps_per_frame) {
		uint32_t t = v->pending_head;
		size_t len = fp_tap_bytes(g->taps[t].tap.medium);
		if (bytes + len > FP_FRAME_BYTES_MAX)
			break;
		bytes += len;
		v->pending_head = g->taps[t].next;
		if (v->pending_head == UINT32_MAX)
			v->pending_tail = UINT32_MAX;
		v->pending_count--;
		g->taps[t].state = TAP_INFLIGHT;
		taps[f->count] = g->taps[t].tap;
		f->taps[f->count++] = t;
	}
	struct fp_frame_header h = {.validator_id = v->id, .key_id = g->o.key_id, .frame_seq = ++v->frame_seq,
				    .send_time_us = fp_now_us(), .operator_id = v->operator_id,
				    .route_id = v->route_id, .vehicle_id = v->vehicle_id};
	int len = fp_frame_encode(&h, taps, f->count, v->key, f->bytes, sizeof(f->bytes));
	if (len < 0) {
		fprintf(stderr, "tapgen: cannot encode a frame: %s\n", fp_strerror(len));
		exit(1);
	}
	f->len = (uint16_t)len;
	f->frame_seq = h.frame_seq;
	f->retry_ms = g->o.retry_ms;
	f->active = true;
	f->echo = false;
	frame_send(g, v, f, now_us);
	return true;
}

/* Frames whose acknowledgement is overdue go out again, waiting twice as long next time. */
static void retransmit_due(struct gen *g, uint64_t now_us)
{
	for (uint32_t i = 0; i < g->o.validators; i++) {
		if (now_us < g->v[i].busy_until_us)
			continue;
		for (uint32_t w = 0; w < g->o.window; w++) {
			struct frame *f = &g->v[i].frames[w];
			if (!f->active || f->refused || f->retry_at_us > now_us)
				continue;
			f->retry_ms = f->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : f->retry_ms * 2;
			g->st.frames_retransmitted++;
			frame_send(g, &g->v[i], f, now_us);
		}
	}
}

/* -------------------------------------------------------- acknowledgements */

/* What a tap with a final status should get when its frame is sent again. */
static bool echo_expected(const struct tap_slot *s, const struct fp_tap_status *st)
{
	if (s->status == FP_STATUS_STORED || s->status == FP_STATUS_DUPLICATE)
		return st->status == FP_STATUS_DUPLICATE;
	if (s->status == FP_STATUS_REJECTED && s->reason == FP_REASON_QR_REUSE)
		return st->status == FP_STATUS_REJECTED && st->reason == FP_REASON_QR_REUSE;
	return st->status == s->status;
}

static void tap_finish(struct gen *g, struct tap_slot *s, const struct fp_tap_status *st, uint64_t now_us)
{
	s->state = TAP_DONE;
	s->status = st->status;
	s->reason = st->reason;
	g->st.status[st->status & 3]++;
	g->st.reasons[st->reason < FP_REASON_COUNT ? st->reason : 0]++;
	g->st.last_done_us = now_us;
	bool ok;
	if (s->expect == EXPECT_QR_REUSE)
		ok = st->status == FP_STATUS_REJECTED && st->reason == FP_REASON_QR_REUSE;
	else if (s->expect == EXPECT_CONFLICT)
		ok = st->status == FP_STATUS_CONFLICT;
	else if (s->expect == EXPECT_QR_SIGNATURE)
		ok = st->status == FP_STATUS_REJECTED && st->reason == FP_REASON_QR_SIGNATURE;
	else if (s->expect == EXPECT_QR_FORGED_STORED)
		ok = st->status == FP_STATUS_STORED || st->status == FP_STATUS_DUPLICATE;
	else
		ok = st->status == FP_STATUS_STORED || st->status == FP_STATUS_DUPLICATE;
	if (s->expect == EXPECT_ANY)
		g->st.done++;
	else
		g->st.special_done++;
	if (!ok && ++g->st.unexpected <= 20) {
		fprintf(stderr, "tapgen: validator %u tap %u (%s): got %s/%s, not what it should get\n",
			g->v[s->validator].id, s->tap.tap_id, fp_medium_name(s->tap.medium),
			fp_status_name(st->status), fp_reason_name(st->reason));
	}
}

static struct frame *frame_find(struct gen *g, struct validator *v, uint64_t frame_seq)
{
	for (uint32_t w = 0; w < g->o.window; w++)
		if (v->frames[w].active && v->frames[w].frame_seq == frame_seq)
			return &v->frames[w];
	return NULL;
}

static void ack_handle(struct gen *g, const uint8_t *buf, size_t len, uint64_t now_us)
{
	uint32_t vid;
	uint16_t kid;
	struct fp_ack_header h;
	struct fp_tap_status st[FP_TAPS_PER_FRAME_MAX];
	if (fp_ack_peek_validator(buf, len, &vid, &kid) != 0 || vid < g->o.first_validator ||
	    vid - g->o.first_validator >= g->o.validators) {
		g->st.acks_unknown++;
		return;
	}
	struct validator *v = &g->v[vid - g->o.first_validator];
	if (fp_ack_decode(buf, len, v->key, &h, st) != 0) {
		g->st.acks_bad_mac++; /* never trusted: the taps stay until a good ack */
		return;
	}
	if (h.denylist_version != v->deny_version)
		deny_ask(g, v, now_us); /* the list changed since this validator last asked */
	struct frame *f = frame_find(g, v, h.frame_seq);
	if (f == NULL || h.tap_count != f->count)
		return; /* the ack of a retransmission already answered */
	if (g->latencies_count < g->latencies_cap)
		g->latencies_us[g->latencies_count++] = (uint32_t)(now_us - f->sent_mono_us);
	if (f->echo) {
		for (unsigned i = 0; i < f->count; i++) {
			g->st.echo_statuses[st[i].status & 3]++;
			if (!echo_expected(&g->taps[f->taps[i]], &st[i]) && ++g->st.unexpected <= 20) {
				fprintf(stderr, "tapgen: resent tap got %s, expected its first answer again\n",
					fp_status_name(st[i].status));
			}
		}
		f->active = false;
		return;
	}
	for (unsigned i = 0; i < f->count; i++)
		tap_finish(g, &g->taps[f->taps[i]], &st[i], now_us);
	if (v->window_now < g->o.window)
		v->window_now++; /* an answer: one more frame may be in flight */
	if (g->o.retransmit_rate > 0 && rnd01(g) < g->o.retransmit_rate) {
		f->echo = true; /* as if this ack was lost: the validator sends the frame again */
		f->retry_ms = g->o.retry_ms;
		g->st.frames_echoed++;
		frame_send(g, v, f, now_us);
	} else {
		f->active = false;
	}
}

/*
 * A busy reply (docs/PROTOCOL.md section 6.1), authenticated like an ack: the
 * frame was not taken. The validator sends nothing before retry_after_ms
 * times a random 1 .. 1.5, then one frame at a time until an ack comes.
 */
static void busy_handle(struct gen *g, const uint8_t *buf, size_t len, uint64_t now_us)
{
	struct fp_busy b;
	struct validator *v = reply_validator(g, buf, len);
	if (v == NULL)
		return;
	if (fp_busy_decode(buf, len, v->key, &b) != 0) {
		g->st.acks_bad_mac++;
		return;
	}
	struct frame *f = frame_find(g, v, b.frame_seq);
	if (f == NULL || f->refused || b.tap_count != f->count) {
		g->st.busy_ignored++; /* not a frame in flight: a late or forged reply changes nothing */
		return;
	}
	g->st.busy_received++;
	if (b.retry_after_ms > g->st.busy_retry_after_max_ms)
		g->st.busy_retry_after_max_ms = b.retry_after_ms;
	if (f->echo) { /* its taps are settled: the copy simply was not needed */
		f->active = false;
		return;
	}
	f->refused = true;
	f->retry_ms = f->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : f->retry_ms * 2;
	uint64_t wait_us = (uint64_t)b.retry_after_ms * 1000u;
	uint64_t until_us = now_us + wait_us + (uint64_t)(rnd01(g) * 0.5 * (double)wait_us);
	if (until_us > v->busy_until_us)
		v->busy_until_us = until_us;
	v->window_now = 1;
}

static unsigned acks_receive(struct gen *g, int timeout_ms)
{
	static uint8_t bufs[IO_BATCH][FP_ACK_BYTES_MAX + 64];
	struct mmsghdr msgs[IO_BATCH];
	struct iovec iov[IO_BATCH];
	unsigned total = 0;
	if (timeout_ms > 0) {
		struct pollfd pfd = {.fd = g->fd, .events = POLLIN};
		poll(&pfd, 1, timeout_ms);
	}
	for (unsigned round = 0; round < 256; round++) { /* until the socket is empty, within reason */
		for (unsigned i = 0; i < IO_BATCH; i++) {
			iov[i] = (struct iovec){bufs[i], sizeof(bufs[i])};
			msgs[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
		}
		int n = recvmmsg(g->fd, msgs, IO_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			break;
		uint64_t now_us = fp_mono_us();
		for (int i = 0; i < n; i++) {
			if (msgs[i].msg_len >= 4 && bufs[i][3] == FP_TYPE_DENY_REPLY)
				deny_reply_handle(g, bufs[i], msgs[i].msg_len, now_us);
			else if (msgs[i].msg_len >= 4 && bufs[i][3] == FP_TYPE_BUSY)
				busy_handle(g, bufs[i], msgs[i].msg_len, now_us);
			else
				ack_handle(g, bufs[i], msgs[i].msg_len, now_us);
		}
		total += (unsigned)n;
	}
	return total;
}

/* ---------------------------------------------------- special and bad input */

/* Taps whose outcome is known in advance: replayed QR codes, conflicting records. */
static void specials_queue(struct gen *g)
{
	uint32_t want_qr = g->o.replay_qr, want_conflict = g->o.conflict;
	for (uint64_t t = 0; t < g->normal_generated && (want_qr || want_conflict); t++) {
		struct tap_slot *src = &g->taps[t];
		if (src->state != TAP_DONE || src->status != FP_STATUS_STORED)
			continue;
		bool qr = src->tap.medium == FP_MEDIUM_QR && want_qr && g->o.validators > 1;
		bool epurse = src->tap.medium == FP_MEDIUM_EPURSE && want_conflict;
		if (!qr && !epurse)
			continue;
		uint32_t vi = qr ? (src->validator + 1) % g->o.validators : src->validator;
		uint32_t s = (uint32_t)g->taps_used++;
		g->taps[s] = *src;
		g->taps[s].tap.tap_id = ++g->v[vi].tap_id;
		if (qr) {
			g->taps[s].expect = EXPECT_QR_REUSE;
			want_qr--;
		} else {
			g->taps[s].tap.amount_fen += 100; /* same card transaction, other content */
			g->taps[s].tap.u.epurse.balance_after_fen -= 100;
			g->taps[s].expect = EXPECT_CONFLICT;
			want_conflict--;
		}
		pending_push(g, vi, s);
	}
	for (uint32_t k = 0; k < g->o.forged_qr; k++) { /* a fresh code, signed with a key of our own */
		uint32_t vi = (uint32_t)(rnd(g) % g->o.validators), s = (uint32_t)g->taps_used++;
		struct fp_tap *t = &g->taps[s].tap;
		*t = (struct fp_tap){.medium = FP_MEDIUM_QR, .kind = g->v[vi].kind, .tap_id = ++g->v[vi].tap_id,
				     .tap_time_us = fp_now_us() - 1000000u, .stop_id = g->v[vi].stop_base};
		if (g->o.spread_s) /* on the days the others are on, so a rating run meets them */
			t->tap_time_us -= rnd(g) % (g->o.spread_s * 1000000u);
		qr_fill(g, (uint32_t)(rnd(g) % g->riders_count), t);
		t->u.qr.signature[rnd(g) % FP_QR_SIGNATURE_BYTES] ^= (uint8_t)(1u << (rnd(g) % 8));
		g->taps[s].key = fp_tap_identity(t, g->v[vi].id);
		g->taps[s].expect = g->o.forged_qr_stored ? EXPECT_QR_FORGED_STORED : EXPECT_QR_SIGNATURE;
		pending_push(g, vi, s);
	}
	if (want_qr || want_conflict) {
		fprintf(stderr, "tapgen: found too few stored taps to replay %u QR codes and make %u conflicts\n",
			want_qr, want_conflict);
		g->st.unexpected += want_qr + want_conflict;
	}
}

/* One bad datagram of the next kind still owed. Returns false when none is owed. */
static bool bad_send(struct gen *g)
{
	uint32_t *owed[] = {&g->o.bad_corrupt, &g->o.bad_mac, &g->o.bad_validator, &g->o.bad_key,
			    &g->o.bad_truncated, &g->o.bad_oversized, &g->o.bad_garbage};
	unsigned kind = 0;
	while (kind < 7 && *owed[kind] == 0)
		kind++;
	if (kind == 7)
		return false;
	(*owed[kind])--;
	if (g->out_count == IO_BATCH)
		out_flush(g);
	uint8_t *buf = g->out_scratch[g->out_count], wrong_key[FP_KEY_BYTES];
	struct fp_tap tap = {.medium = FP_MEDIUM_QUICKPASS, .kind = FP_KIND_BOARD, .tap_id = 1,
			     .tap_time_us = fp_now_us(), .u.quickpass = {.account_token = 1, .expiry_yymm = 2912}};
	struct fp_frame_header h = {.validator_id = g->v[0].id, .key_id = 1, .frame_seq = 1};
	randombytes_buf(wrong_key, sizeof(wrong_key));
	if (kind == 2)
		h.validator_id = 999999;
	if (kind == 3)
		h.key_id = 9;
	int len = fp_frame_encode(&h, &tap, 1, kind == 1 || kind == 2 ? wrong_key : g->v[0].key, buf,
				  FP_FRAME_BYTES_MAX);
	if (kind == 0)
		buf[4 + rnd(g) % (uint64_t)(len - 4)] ^= (uint8_t)(1 + rnd(g) % 255);
	if (kind == 4)
		len = 30;
	if (kind == 5) {
		memset(buf + len, 0xab, FP_FRAME_BYTES_MAX + 100 - (size_t)len);
		len = FP_FRAME_BYTES_MAX + 100;
	}
	if (kind == 6) {
		len = 1 + (int)(rnd(g) % FP_FRAME_BYTES_MAX);
		randombytes_buf(buf, (size_t)len);
	}
	g->st.bad_sent++;
	out_queue(g, buf, (size_t)len);
	return true;
}

/* ------------------------------------------------------------- the loop */

static bool frames_active(const struct gen *g)
{
	for (uint32_t i = 0; i < g->o.validators; i++)
		for (uint32_t w = 0; w < g->o.window; w++)
			if (g->v[i].frames[w].active)
				return true;
	return false;
}

static void progress_line(const struct gen *g, uint64_t now_us, uint64_t start_us)
{
	fprintf(stderr, "tapgen: %5.1f s: %" PRIu64 "/%" PRIu64 " taps acknowledged, %" PRIu64
			" frames sent, %" PRIu64 " retransmitted\n",
		(double)(now_us - start_us) / 1e6, g->st.done, g->o.taps, g->st.frames_sent,
		g->st.frames_retransmitted);
}

/* Generate what the rate allows, in steps so sending starts at once. */
static void generate_due(struct gen *g, uint64_t now_us, uint64_t start_us)
{
	uint64_t allowed = g->o.taps;
	if (g->o.rate)
		allowed = (uint64_t)((double)(now_us - start_us) / 1e6 * (double)g->o.rate);
	if (allowed > g->o.taps)
		allowed = g->o.taps;
	uint64_t wall_us = fp_now_us();
	for (unsigned n = 0; g->normal_generated < allowed && n < 8192; n++)
		tap_generate(g, wall_us);
}

/* Returns true when every tap has its final status and no frame waits for an ack. */
static bool run_step(struct gen *g, uint64_t start_us, bool *specials_done)
{
	uint64_t now_us = fp_mono_us();
	generate_due(g, now_us, start_us);
	for (unsigned i = 0; i < 8 && bad_send(g); i++)
		;
	bool normal_done = g->normal_generated == g->o.taps && g->st.done == g->o.taps;
	if (normal_done && !*specials_done) {
		specials_queue(g);
		*specials_done = true;
	}
	bool sent = false;
	acks_receive(g, 0); /* answers first: a large fleet's loop must not make them look late */
	now_us = fp_mono_us();
	for (uint32_t i = 0; i < g->o.validators; i++)
		while (frame_build(g, &g->v[i], now_us))
			sent = true;
	retransmit_due(g, now_us);
	out_flush(g);
	acks_receive(g, sent ? 0 : 1);
	uint64_t specials = g->taps_used - g->normal_generated;
	return normal_done && *specials_done && g->st.special_done == specials && !frames_active(g);
}

static int run(struct gen *g)
{
	uint64_t start_us = fp_mono_us(), progress_us = start_us, last_done = 0, last_change_us = start_us;
	bool specials_done = false;
	/* as a validator does when it starts: fetch the whole deny list (up to 3 s) before taking taps */
	for (uint32_t i = 0; i < g->o.validators; i++)
		deny_ask(g, &g->v[i], start_us);
	out_flush(g);
	for (bool asking = true; asking && fp_mono_us() - start_us < 3000000u;) {
		acks_receive(g, 10);
		out_flush(g);
		asking = false;
		for (uint32_t i = 0; i < g->o.validators && !asking; i++)
			asking = g->v[i].deny_asked_us != 0;
	}
	if (g->o.backlog) { /* the whole backlog exists before anything is sent */
		uint64_t wall_us = fp_now_us();
		while (g->normal_generated < g->o.taps)
			tap_generate(g, wall_us);
	}
	for (;;) {
		if (run_step(g, start_us, &specials_done))
			return 0;
		uint64_t now_us = fp_mono_us(), done = g->st.done + g->st.special_done;
		if (done != last_done || g->normal_generated < g->o.taps) {
			last_done = done;
			last_change_us = now_us;
		} else if ((double)(now_us - last_change_us) / 1e6 > g->o.give_up_s) {
			fprintf(stderr, "tapgen: no acknowledgement for %.0f s: giving up\n", g->o.give_up_s);
			return 1;
		}
		if (g->o.progress && now_us - progress_us >= 1000000u) {
			progress_line(g, now_us, start_us);
			progress_us = now_us;
		}
	}
}

/* ------------------------------------------------------------- reporting */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static uint32_t percentile(const struct gen *g, double p)
{
	if (g->latencies_count == 0)
		return 0;
	uint64_t i = (uint64_t)(p * (double)(g->latencies_count - 1) + 0.5);
	return g->latencies_us[i];
}

static int cmp_key(const void *a, const void *b)
{
	const struct tap_slot *x = *(struct tap_slot *const *)a, *y = *(struct tap_slot *const *)b;
	if (x->key.hi != y->key.hi)
		return x->key.hi < y->key.hi ? -1 : 1;
	return x->key.lo < y->key.lo ? -1 : x->key.lo > y->key.lo;
}

/* The unique taps acknowledged stored or duplicate, in tapdump's export form (forged codes too,
 * when after_commit acknowledges them stored: they are in the log, and quarantined beside it). */
static int out_write(const struct gen *g, const char *path)
{
	struct tap_slot **sorted = malloc(g->taps_used * sizeof(*sorted) + 1);
	uint64_t n = 0;
	for (uint64_t t = 0; t < g->taps_used; t++)
		if (g->taps[t].state == TAP_DONE &&
		    (g->taps[t].status == FP_STATUS_STORED || g->taps[t].status == FP_STATUS_DUPLICATE))
			sorted[n++] = &g->taps[t];
	qsort(sorted, n, sizeof(*sorted), cmp_key);
	FILE *f = fopen(path, "w");
	if (f == NULL || sorted == NULL) {
		fprintf(stderr, "tapgen: cannot write %s: %s\n", path, strerror(errno));
		free(sorted);
		return 1;
	}
	fprintf(f, "validator_id,tap_id,medium,identity,tap_time_us,amount_fen\n");
	for (uint64_t i = 0; i < n; i++) {
		const struct tap_slot *s = sorted[i];
		fprintf(f, "%u,%u,%s,%016" PRIx64 "%016" PRIx64 ",%" PRIu64 ",%u\n", g->v[s->validator].id,
			s->tap.tap_id, fp_medium_name(s->tap.medium), s->key.hi, s->key.lo, s->tap.tap_time_us,
			s->tap.amount_fen);
	}
	free(sorted);
	return fclose(f) == 0 ? 0 : 1;
}

struct figure {
	const char *name;
	double value;
};

static void report(struct gen *g, int rc)
{
	qsort(g->latencies_us, g->latencies_count, sizeof(uint32_t), cmp_u32);
	uint64_t unacked = g->taps_used - g->st.done - g->st.special_done;
	double secs = g->st.last_done_us > g->st.first_send_us ? (double)(g->st.last_done_us - g->st.first_send_us) / 1e6 : 0;
	const struct figure figs[] = {
		{"frames_sent", (double)g->st.frames_sent}, {"taps_sent", (double)g->st.taps_sent},
		{"frames_retransmitted", (double)g->st.frames_retransmitted},
		{"frames_resent_as_lost_ack", (double)g->st.frames_echoed},
		{"taps_unique", (double)g->normal_generated}, {"taps_acked", (double)(g->st.done - g->st.refused_denylisted)},
		{"stored", (double)g->st.status[FP_STATUS_STORED]}, {"duplicate", (double)g->st.status[FP_STATUS_DUPLICATE]},
		{"conflict", (double)g->st.status[FP_STATUS_CONFLICT]}, {"rejected", (double)g->st.status[FP_STATUS_REJECTED]},
		{"rejected_qr_reuse", (double)g->st.reasons[FP_REASON_QR_REUSE]},
		{"rejected_qr_signature", (double)g->st.reasons[FP_REASON_QR_SIGNATURE]},
		{"resent_acked_duplicate", (double)g->st.echo_statuses[FP_STATUS_DUPLICATE]},
		{"busy_received", (double)g->st.busy_received}, {"busy_ignored", (double)g->st.busy_ignored},
		{"busy_retry_after_max_ms", (double)g->st.busy_retry_after_max_ms},
		{"sent_before_retry_after", (double)g->st.sent_before_retry_after},
		{"bad_datagrams_sent", (double)g->st.bad_sent}, {"acks_bad_mac", (double)g->st.acks_bad_mac},
		{"send_errors", (double)g->st.send_errors}, {"unexpected", (double)g->st.unexpected},
		{"refused_denylisted", (double)g->st.refused_denylisted},
		{"deny_requests", (double)g->st.deny_requests}, {"deny_list_changes", (double)g->st.deny_changes},
		{"unacked_taps", (double)unacked}, {"seconds", secs},
		{"taps_per_s", secs > 0 ? (double)g->st.done / secs : 0},
		{"latency_p50_us", percentile(g, 0.5)}, {"latency_p90_us", percentile(g, 0.9)},
		{"latency_p99_us", percentile(g, 0.99)}, {"latency_p999_us", percentile(g, 0.999)},
		{"latency_max_us", percentile(g, 1.0)}};
	unsigned n = sizeof(figs) / sizeof(figs[0]);
	for (unsigned i = 0; i < n; i++)
		printf("%-26s %.*f\n", figs[i].name, strcmp(figs[i].name, "seconds") == 0 ? 3 : 0, figs[i].value);
	if (g->o.json_path) {
		FILE *f = fopen(g->o.json_path, "w");
		for (unsigned i = 0; f && i < n; i++)
			fprintf(f, "%s\"%s\": %.3f%s", i ? "  " : "{ ", figs[i].name, figs[i].value, i + 1 < n ? ",\n" : " }\n");
		if (f == NULL || fclose(f) != 0)
			fprintf(stderr, "tapgen: cannot write %s\n", g->o.json_path);
	}
	if (unacked)
		fprintf(stderr, "tapgen: %" PRIu64 " taps were never acknowledged\n", unacked);
	if (rc == 0 && g->st.unexpected)
		fprintf(stderr, "tapgen: %" PRIu64 " taps got a status they should not have\n", g->st.unexpected);
}

/* A key file for a fleet: one random key per validator, in the gateway's format, mode 0600 as it wants. */
static int keys_write(const struct options *o)
{
	int fd = open(o->write_keys_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 && fchmod(fd, 0600) == 0 ? fdopen(fd, "w") : NULL;
	if (f == NULL) {
		if (fd >= 0)
			close(fd);
		fprintf(stderr, "tapgen: cannot write %s: %s\n", o->write_keys_path, strerror(errno));
		return 1;
	}
	fprintf(f, "# Generated by tapgen --write-keys: random keys for a simulated fleet. Never deploy.\n"
		   "[validator_keys]\n");
	for (uint64_t i = 0; i < o->validators; i++) {
		uint8_t key[FP_KEY_BYTES];
		char hex[2 * FP_KEY_BYTES + 1];
		randombytes_buf(key, sizeof(key));
		fprintf(f, "%" PRIu64 "/1 = %s\n", o->first_validator + i, sodium_bin2hex(hex, sizeof(hex), key, sizeof(key)));
	}
	return fclose(f) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	static struct gen g;
	proc_version_option(argc, argv, "tapgen");
	proc_tool_init(); /* umask 027; SIGTERM and SIGINT end the tool at once, with a line */
	options_parse(argc, argv, &g.o);
	if (sodium_init() < 0)
		return 1;
	if (g.o.write_keys_path)
		return keys_write(&g.o);
	g.rng = g.o.seed * 0x9E3779B97F4A7C15ull + 1;
	keys_load(&g);
	socket_setup(&g);
	validators_setup(&g);
	memory_setup(&g);
	int rc = run(&g);
	report(&g, rc);
	if (g.o.out_path && out_write(&g, g.o.out_path) != 0)
		rc = 1;
	return rc != 0 || g.st.unexpected != 0 ? 1 : 0;
}
