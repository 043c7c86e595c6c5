/*
 * dpdk_source.c - a DPDK traffic source for the benchmark: a validator fleet
 * that speaks to the gateway over a DPDK port (net_memif, net_ring...), with
 * no kernel in between.
 *
 *   dpdk_source EAL-ARGS -- --port NAME --keys FILE --dst-mac MAC [options]
 *
 * It encodes every frame up front (QuickPass taps, --taps-per-frame each,
 * from --validators validators, frame sequence numbers from 1), then keeps
 * --window frames in flight: it sends new frames as acknowledgements come
 * back, checks each acknowledgement's MAC and that every tap was stored, and
 * resends a frame that has no acknowledgement after --retry-ms. It stops when
 * every frame is acknowledged and prints one JSON object: taps, frames,
 * retransmissions, seconds from first send to last ack, acknowledged taps
 * per second, and the TSC rate (for turning CPU time into cycles).
 * When it has nothing to do it sleeps briefly: on a small machine the
 * gateway's writer needs the CPU more than the source does.
 */
#include "fastpath/fastpath.h"
#include "fastpath/dpdk_udp.h"

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BURST 32u
#define HDR_BYTES (sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr) + sizeof(struct rte_udp_hdr))

struct frame {
	uint16_t len;
	bool acked;
	uint64_t sent_tsc;
	uint8_t bytes[FP_FRAME_BYTES_MAX];
};

struct source {
	uint16_t port;
	struct rte_mempool *pool;
	struct rte_ether_addr src_mac, dst_mac;
	rte_be32_t src_ip, dst_ip;
	uint16_t udp_port;
	const struct fp_keys *keys;
	uint32_t validators, taps_per_frame, window;
	uint64_t taps, nframes, retry_tsc;
	struct frame *frames;
	/* frames in flight, oldest first: a ring of frame indexes */
	uint64_t *fifo;
	uint64_t fifo_mask, fifo_head, fifo_tail;
	uint64_t outstanding, next, acked_frames, acked_taps, resent, bad_acks, not_stored;
	uint64_t first_tsc, last_ack_tsc;
};

static void die(const char *what)
{
	fprintf(stderr, "dpdk_source: %s\n", what);
	exit(1);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: dpdk_source EAL-ARGS -- --port NAME --keys FILE --dst-mac MAC [options]\n"
		"  --src-mac MAC        our Ethernet address (default 02:00:00:00:00:02)\n"
		"  --src-ip A / --dst-ip A   (default 10.77.0.1 -> 10.77.0.2)\n"
		"  --udp-port N         the gateway's UDP port (7700)\n"
		"  --taps N             taps to send (1000000)\n"
		"  --taps-per-frame N   1 .. 34 QuickPass taps per frame (32)\n"
		"  --validators N       validators 1001 .. (256)\n"
		"  --window N           frames in flight (2048)\n"
		"  --retry-ms N         resend an unacknowledged frame after N ms (200)\n"
		"  --json FILE          write the result there too\n");
	exit(2);
}

static void frames_encode(struct source *s)
{
	s->nframes = (s->taps + s->taps_per_frame - 1) / s->taps_per_frame;
	s->frames = calloc(s->nframes, sizeof(*s->frames));
	if (s->frames == NULL)
		die("out of memory for frames");
	uint64_t now = fp_now_us(), left = s->taps;
	uint32_t *tap_ids = calloc(s->validators, sizeof(*tap_ids));
	if (tap_ids == NULL)
		die("out of memory");
	for (uint64_t f = 0; f < s->nframes; f++) {
		uint32_t v = (uint32_t)(f % s->validators);
		struct fp_frame_header h = {.validator_id = 1001 + v, .key_id = 1, .frame_seq = f / s->validators + 1,
					    .send_time_us = now, .operator_id = 1, .route_id = 100 + v};
		struct fp_tap taps[FP_TAPS_PER_FRAME_MAX];
		unsigned n = left < s->taps_per_frame ? (unsigned)left : s->taps_per_frame;
		for (unsigned i = 0; i < n; i++) {
			uint64_t k = s->taps - left + i;
			taps[i] = (struct fp_tap){
				.medium = FP_MEDIUM_QUICKPASS, .kind = FP_KIND_BOARD, .tap_id = ++tap_ids[v],
				.tap_time_us = now - (k % 1000000u), .stop_id = 1 + (uint32_t)(k % 40),
				.u.quickpass = {.account_token = 0x7100000000ull + k % 200000u,
						.atc = (uint16_t)(k / 200000u + 1), .expiry_yymm = 2912}};
		}
		left -= n;
		int err;
		const uint8_t *key = fp_keys_find(s->keys, h.validator_id, 1, &err);
		if (key == NULL)
			die("a validator has no key in --keys (use fewer --validators)");
		int len = fp_frame_encode(&h, taps, n, key, s->frames[f].bytes, sizeof(s->frames[f].bytes));
		if (len < 0)
			die("a frame does not fit: fewer --taps-per-frame");
		s->frames[f].len = (uint16_t)len;
	}
	free(tap_ids);
}

static struct rte_mbuf *packet_build(struct source *s, const struct frame *f, uint16_t src_port)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(s->pool);
	if (m == NULL)
		return NULL;
	struct fp_udp_endpoints e = {.src_mac = s->src_mac, .dst_mac = s->dst_mac, .src_ip = s->src_ip,
				     .dst_ip = s->dst_ip, .src_port = rte_cpu_to_be_16(src_port),
				     .dst_port = rte_cpu_to_be_16(s->udp_port)};
	fp_udp_cksum_sw(fp_udp_put(m, &e, 0, f->bytes, f->len));
	return m;
}

/* Send frame indexes idx[0..n) now. */
static void frames_send(struct source *s, const uint64_t *idx, unsigned n)
{
	struct rte_mbuf *pkts[BURST];
	uint64_t now = rte_rdtsc();
	unsigned built = 0;
	for (unsigned i = 0; i < n; i++) {
		struct frame *f = &s->frames[idx[i]];
		uint16_t src_port = (uint16_t)(40000 + idx[i] % s->validators);
		if ((pkts[built] = packet_build(s, f, src_port)) == NULL)
			break;
		built++;
		f->sent_tsc = now;
		s->fifo[s->fifo_tail++ & s->fifo_mask] = idx[i];
	}
	unsigned sent = 0;
	uint64_t deadline = now + rte_get_tsc_hz() * 10u;
	while (sent < built) { /* the port's ring is full: wait for the gateway to poll */
		sent += rte_eth_tx_burst(s->port, 0, pkts + sent, (uint16_t)(built - sent));
		if (rte_rdtsc() > deadline)
			die("the port has taken nothing for 10 s (is the gateway still polling?)");
	}
}

static unsigned acks_receive(struct source *s)
{
	struct rte_mbuf *pkts[BURST];
	unsigned n = rte_eth_rx_burst(s->port, 0, pkts, BURST);
	for (unsigned i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
		uint32_t vid;
		uint16_t kid;
		struct fp_ack_header h;
		struct fp_tap_status st[FP_TAPS_PER_FRAME_MAX];
		const struct rte_ether_hdr *eth = (const struct rte_ether_hdr *)p;
		if (m->data_len < HDR_BYTES || eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) {
			rte_pktmbuf_free(m);
			continue; /* ARP and such: the source addresses the gateway's MAC directly */
		}
		const uint8_t *ack = p + HDR_BYTES;
		size_t len = m->data_len - HDR_BYTES;
		int err;
		const uint8_t *key = fp_ack_peek_validator(ack, len, &vid, &kid) == 0 ? fp_keys_find(s->keys, vid, kid, &err) : NULL;
		if (key == NULL || fp_ack_decode(ack, len, key, &h, st) != 0 || vid < 1001 ||
		    vid - 1001 >= s->validators || h.frame_seq == 0) {
			s->bad_acks++;
			rte_pktmbuf_free(m);
			continue;
		}
		uint64_t f = (h.frame_seq - 1) * s->validators + (vid - 1001);
		if (f < s->nframes && !s->frames[f].acked) {
			s->frames[f].acked = true;
			s->outstanding--;
			s->acked_frames++;
			s->acked_taps += h.tap_count;
			for (unsigned t = 0; t < h.tap_count; t++)
				if (st[t].status != FP_STATUS_STORED && st[t].status != FP_STATUS_DUPLICATE)
					s->not_stored++;
			s->last_ack_tsc = rte_rdtsc();
		}
		rte_pktmbuf_free(m);
	}
	return n;
}

/* Retire acknowledged frames at the head of the fifo; resend the head if it is too old. */
static unsigned retries(struct source *s)
{
	uint64_t now = rte_rdtsc(), again[BURST];
	unsigned n = 0;
	while (s->fifo_head != s->fifo_tail && n < BURST) {
		uint64_t f = s->fifo[s->fifo_head & s->fifo_mask];
		if (s->frames[f].acked) {
			s->fifo_head++;
		} else if (now - s->frames[f].sent_tsc > s->retry_tsc) {
			s->fifo_head++;
			again[n++] = f;
		} else {
			break;
		}
	}
	if (n > 0) {
		frames_send(s, again, n);
		s->resent += n;
	}
	return n;
}

static unsigned new_frames(struct source *s)
{
	uint64_t idx[BURST];
	unsigned n = 0;
	while (n < BURST && s->next < s->nframes && s->outstanding < s->window &&
	       s->fifo_tail - s->fifo_head < s->fifo_mask) {
		idx[n++] = s->next++;
		s->outstanding++;
	}
	if (n > 0)
		frames_send(s, idx, n);
	return n;
}

/* What the options name, besides the figures kept in struct source. */
struct source_args {
	const char *port, *keys_path, *json, *dst_mac, *src_mac, *src_ip, *dst_ip;
	unsigned retry_ms;
};

/* The options after the EAL's. A bad or missing one: usage(), which exits. */
static void source_options(int argc, char **argv, struct source *s, struct source_args *a)
{
	*a = (struct source_args){.src_mac = "02:00:00:00:00:02", .src_ip = "10.77.0.1", .dst_ip = "10.77.0.2",
				  .retry_ms = 200};
	static const struct option lo[] = {
		{"port", 1, 0, 'p'}, {"keys", 1, 0, 'k'}, {"dst-mac", 1, 0, 'D'}, {"src-mac", 1, 0, 'S'},
		{"src-ip", 1, 0, 's'}, {"dst-ip", 1, 0, 'd'}, {"udp-port", 1, 0, 'u'}, {"taps", 1, 0, 'n'},
		{"taps-per-frame", 1, 0, 'f'}, {"validators", 1, 0, 'v'}, {"window", 1, 0, 'w'},
		{"retry-ms", 1, 0, 'r'}, {"json", 1, 0, 'j'}, {0}};
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 'p': a->port = optarg; break;
		case 'k': a->keys_path = optarg; break;
		case 'D': a->dst_mac = optarg; break;
		case 'S': a->src_mac = optarg; break;
		case 's': a->src_ip = optarg; break;
		case 'd': a->dst_ip = optarg; break;
		case 'u': s->udp_port = (uint16_t)atoi(optarg); break;
		case 'n': s->taps = strtoull(optarg, NULL, 10); break;
		case 'f': s->taps_per_frame = (uint32_t)atoi(optarg); break;
		case 'v': s->validators = (uint32_t)atoi(optarg); break;
		case 'w': s->window = (uint32_t)atoi(optarg); break;
		case 'r': a->retry_ms = (unsigned)atoi(optarg); break;
		case 'j': a->json = optarg; break;
		default: usage();
		}
	}
	if (a->port == NULL || a->keys_path == NULL || a->dst_mac == NULL || s->taps == 0 || s->taps_per_frame == 0 ||
	    s->taps_per_frame > FP_TAPS_PER_FRAME_MAX || s->validators == 0 || s->window == 0)
		usage();
}

/* Addresses, keys, every frame encoded and the retry fifo, all before the first send. Dies on a bad one. */
static void source_setup(struct source *s, const struct source_args *a)
{
	if (rte_eth_dev_get_port_by_name(a->port, &s->port) != 0)
		die("--port: no such DPDK port");
	if (rte_ether_unformat_addr(a->dst_mac, &s->dst_mac) != 0 || rte_ether_unformat_addr(a->src_mac, &s->src_mac) != 0)
		die("--dst-mac/--src-mac: not an Ethernet address");
	if (inet_pton(AF_INET, a->src_ip, &s->src_ip) != 1 || inet_pton(AF_INET, a->dst_ip, &s->dst_ip) != 1)
		die("--src-ip/--dst-ip: not an IPv4 address");
	char err[512];
	s->keys = fp_keys_load(a->keys_path, err, sizeof(err));
	if (s->keys == NULL)
		die(err);
	frames_encode(s);
	uint64_t fifo_size = 1;
	while (fifo_size < 4ull * s->window + BURST)
		fifo_size <<= 1;
	s->fifo = calloc(fifo_size, sizeof(*s->fifo));
	s->fifo_mask = fifo_size - 1;
	s->retry_tsc = rte_get_tsc_hz() / 1000u * a->retry_ms;
}

/* The port with one queue each way, started; waits for the link (memif: the peer has connected). */
static void port_start(struct source *s)
{
	s->pool = rte_pktmbuf_pool_create("source", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	struct rte_eth_conf conf = {0};
	if (s->fifo == NULL || s->pool == NULL || rte_eth_dev_configure(s->port, 1, 1, &conf) != 0 ||
	    rte_eth_rx_queue_setup(s->port, 0, 1024, (unsigned)rte_eth_dev_socket_id(s->port), NULL, s->pool) != 0 ||
	    rte_eth_tx_queue_setup(s->port, 0, 1024, (unsigned)rte_eth_dev_socket_id(s->port), NULL) != 0 ||
	    rte_eth_dev_start(s->port) != 0)
		die("cannot set up the port");
	for (unsigned i = 0; i < 3000; i++) {
		struct rte_eth_link link;
		if (rte_eth_link_get_nowait(s->port, &link) == 0 && link.link_status)
			break;
		if (i == 2999)
			die("the link did not come up (is the gateway running?)");
		usleep(10000);
	}
}

/* Send, retransmit and count acknowledgements until every frame has one; 600 s at most. */
static void source_run(struct source *s)
{
	s->first_tsc = rte_rdtsc();
	uint64_t give_up = s->first_tsc + rte_get_tsc_hz() * 600u;
	while (s->acked_frames < s->nframes) {
		unsigned work = acks_receive(s);
		work += retries(s);
		work += new_frames(s);
		if (work == 0)
			usleep(1); /* nothing in flight has come back: give the CPU to the gateway */
		if (rte_rdtsc() > give_up)
			die("frames still unacknowledged after 600 s");
	}
}

/* The figures as one JSON object, on standard output and in the --json file. */
static void source_report(const struct source *s, const char *json)
{
	double secs = (double)(s->last_ack_tsc - s->first_tsc) / (double)rte_get_tsc_hz();
	char out[1024];
	snprintf(out, sizeof(out),
		 "{\"taps\": %" PRIu64 ", \"frames\": %" PRIu64 ", \"taps_per_frame\": %u, \"acked_taps\": %" PRIu64
		 ", \"retransmitted_frames\": %" PRIu64 ", \"bad_acks\": %" PRIu64 ", \"taps_not_stored\": %" PRIu64
		 ", \"seconds\": %.4f, \"taps_per_s\": %.0f, \"tsc_hz\": %" PRIu64 "}\n",
		 s->taps, s->nframes, s->taps_per_frame, s->acked_taps, s->resent, s->bad_acks, s->not_stored, secs,
		 (double)s->acked_taps / secs, rte_get_tsc_hz());
	fputs(out, stdout);
	if (json != NULL) {
		FILE *f = fopen(json, "w");
		if (f == NULL || fputs(out, f) < 0 || fclose(f) != 0)
			die("cannot write --json");
	}
}

int main(int argc, char **argv)
{
	int used = rte_eal_init(argc, argv);
	if (used < 0)
		die(rte_strerror(rte_errno));
	argc -= used;
	argv += used;
	struct source s = {.udp_port = 7700, .taps = 1000000, .taps_per_frame = 32, .validators = 256, .window = 2048};
	struct source_args a;
	source_options(argc, argv, &s, &a);
	source_setup(&s, &a);
	port_start(&s);
	fprintf(stderr, "dpdk_source: %" PRIu64 " taps in %" PRIu64 " frames of %u, %u validators, window %u\n",
		s.taps, s.nframes, s.taps_per_frame, s.validators, s.window);
	source_run(&s);
	source_report(&s, a.json);
	rte_eth_dev_stop(s.port);
	rte_eth_dev_close(s.port);
	rte_eal_cleanup();
	return s.not_stored == 0 && s.bad_acks == 0 ? 0 : 1;
}
