/*
 * dpdk.c - the kernel-bypass ingress: a UDP/IPv4 endpoint on one DPDK port.
 *
 * One lcore polls one receive queue in bursts of 32. Each packet is checked
 * the way a host stack would check it (Ethernet address, ARP, IPv4 header and
 * checksum, no options, no fragments, our address, UDP length, port and
 * checksum) and what survives is handed, as a burst of struct fp_rx pointing
 * into the mbufs, to fp_ingest_burst(): the same parse, MAC, dedup and commit
 * path as the socket backends. The frame bytes are copied into the job ring
 * there, so the mbufs go back to the pool at once. Acknowledgements released
 * by the writer are built into fresh mbufs (Ethernet, IPv4, UDP) addressed to
 * the Ethernet and IP source of the frame they answer, with checksums done by
 * the port where it offers the offload and in software otherwise.
 *
 * Everything the lcore touches is allocated in fp_dpdk_open(); the loop
 * itself allocates nothing but mbufs from the pool. Each pass does bounded
 * work (one receive burst, one burst of acks). The port statistics functions
 * are called from the lcore only: it copies them for the metrics endpoint
 * every STATS_INTERVAL_MS and, within a pass, whenever a scrape asks for a
 * fresh copy (fp_port_stats_lock_fresh(), at the end). On stop, the
 * lcore stops the pipeline, keeps sending acks until the writer has committed
 * and every ack has left, and returns; fp_dpdk_close() stops the port and
 * calls rte_eal_cleanup().
 */
#include "fastpath/fastpath.h"
#include "fastpath/dpdk_udp.h"

#include <rte_arp.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BURST 32u
#define EAL_ARGS_MAX 64u
#define EAL_ARGS_BYTES 4096u
#define ACK_STALL_MS 100u          /* acks the port will not take for this long are given up */
#define EMPTY_PASSES_BEFORE_SLEEP 1024u
#define STATS_INTERVAL_MS 100u     /* the oldest a snapshot gets while the lcore polls */
#define MBUF_CACHE 256u
#define ETH_BYTES (sizeof(struct rte_ether_hdr))
#define IP_BYTES (sizeof(struct rte_ipv4_hdr))
#define UDP_BYTES (sizeof(struct rte_udp_hdr))

_Static_assert(ETH_BYTES + IP_BYTES + UDP_BYTES + FP_FRAME_BYTES_MAX <= RTE_MBUF_DEFAULT_DATAROOM,
	       "a whole frame fits one mbuf");

struct fp_dpdk {
	struct fp_dpdk_options opt;
	struct fp_counters *ctr;
	char eal_buf[EAL_ARGS_BYTES];
	char *eal_argv[EAL_ARGS_MAX + 1];
	bool eal_up, port_configured, port_started;
	uint16_t port;
	struct rte_mempool *pool;
	struct rte_ether_addr mac;
	rte_be32_t ipv4;
	rte_be16_t udp_port;
	bool tx_cksum_offload;
	bool promiscuous;
	uint32_t xstats_count;
	struct rte_eth_xstat *xstats;
	cpu_set_t others; /* CPUs for every thread but the polling one */

	/* the run */
	struct fp_pipeline *pipe;
	volatile sig_atomic_t *stop;
	_Atomic bool done;
	uint64_t busy_cycles;
	uint64_t ack_stall_since;
	uint64_t stats_answered; /* the last wanted_seq a snapshot answered */
	uint16_t ip_id;

	/* the polling lcore's state: fixed arrays, nothing allocated while polling */
	struct rte_mbuf *rx_pkts[BURST];
	struct rte_mbuf *held[BURST];
	struct rte_mbuf *replies[BURST];
	struct rte_mbuf *tx_pkts[BURST];
	struct fp_rx rx[BURST];
};

static void net_drop(struct fp_dpdk *d, enum fp_net_drop why)
{
	atomic_fetch_add_explicit(&d->ctr->net_dropped[why], 1, memory_order_relaxed);
}

static void ctr_inc(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* ------------------------------------------------------------- start-up */

/* Split eal_args on white space into argv (argv[0] = "tapgate"). Returns argc or -1. */
static int eal_args_split(struct fp_dpdk *d, const char *args)
{
	if (strlen(args) >= sizeof(d->eal_buf))
		return -1;
	strcpy(d->eal_buf, args);
	int argc = 0;
	d->eal_argv[argc++] = "tapgate";
	for (char *s = d->eal_buf; *s;) {
		while (isspace((unsigned char)*s))
			*s++ = 0;
		if (*s == 0)
			break;
		if (argc == EAL_ARGS_MAX)
			return -1;
		d->eal_argv[argc++] = s;
		while (*s && !isspace((unsigned char)*s))
			s++;
	}
	d->eal_argv[argc] = NULL;
	return argc;
}

static int port_find(const char *name, uint16_t *port)
{
	char *end;
	unsigned long n = strtoul(name, &end, 10);
	if (*name != 0 && *end == 0)
		return n < RTE_MAX_ETHPORTS && rte_eth_dev_is_valid_port((uint16_t)n)
			       ? (*port = (uint16_t)n, 0)
			       : -1;
	return rte_eth_dev_get_port_by_name(name, port) == 0 ? 0 : -1;
}

static void ports_list(char *buf, size_t len)
{
	uint16_t p;
	size_t used = 0;
	buf[0] = 0;
	RTE_ETH_FOREACH_DEV(p) {
		char name[RTE_ETH_NAME_MAX_LEN];
		if (rte_eth_dev_get_name_by_port(p, name) == 0 && used < len)
			used += (size_t)snprintf(buf + used, len - used, " %u=%s", p, name);
	}
	if (used == 0)
		snprintf(buf, len, " none (give one with -a PCI_ADDRESS or --vdev)");
}

/* The gateway's Ethernet address: the port's own, or the configured one (filtered here if the port cannot). */
static int mac_setup(struct fp_dpdk *d, char *err, size_t err_len)
{
	if (strcmp(d->opt.mac, "port") == 0) {
		rte_eth_macaddr_get(d->port, &d->mac);
	} else if (rte_ether_unformat_addr(d->opt.mac, &d->mac) != 0) {
		snprintf(err, err_len, "dpdk.mac '%s' is not 'port' or an Ethernet address", d->opt.mac);
		return -1;
	} else if (rte_eth_dev_default_mac_addr_set(d->port, &d->mac) != 0) {
		/* The port cannot filter for it: receive everything, filter here. */
		rte_eth_promiscuous_enable(d->port);
		d->promiscuous = true;
	}
	return 0;
}

/* Extended statistics: their names now (allocated at start-up), their values copied by the lcore. */
static int xstats_setup(struct fp_dpdk *d, char *err, size_t err_len)
{
	int nx = rte_eth_xstats_get_names(d->port, NULL, 0);
	if (nx <= 0)
		return 0;
	struct rte_eth_xstat_name *names = calloc((size_t)nx, sizeof(*names));
	d->xstats = calloc((size_t)nx, sizeof(*d->xstats));
	if (names == NULL || d->xstats == NULL) {
		free(names);
		snprintf(err, err_len, "out of memory");
		return -1;
	}
	nx = rte_eth_xstats_get_names(d->port, names, (unsigned)nx);
	d->xstats_count = nx > 0 ? (uint32_t)nx : 0;
	struct fp_port_stats *ps = &d->ctr->port;
	pthread_mutex_lock(&ps->lock);
	ps->xstats_count = d->xstats_count < FP_XSTATS_MAX ? d->xstats_count : FP_XSTATS_MAX;
	for (uint32_t i = 0; i < ps->xstats_count; i++)
		snprintf(ps->xstat_names[i], FP_XSTAT_NAME_MAX, "%s", names[i].name);
	pthread_mutex_unlock(&ps->lock);
	free(names);
	return 0;
}

static int port_setup(struct fp_dpdk *d, char *err, size_t err_len)
{
	struct rte_eth_dev_info info;
	int rc = rte_eth_dev_info_get(d->port, &info);
	if (rc != 0) {
		snprintf(err, err_len, "dpdk.port '%s': no device information: %s", d->opt.port, rte_strerror(-rc));
		return -1;
	}
	const uint64_t rx_want = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
	const uint64_t tx_want = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
	struct rte_eth_conf conf = {0};
	conf.rxmode.offloads = info.rx_offload_capa & rx_want;
	d->tx_cksum_offload = (info.tx_offload_capa & tx_want) == tx_want;
	conf.txmode.offloads = d->tx_cksum_offload ? tx_want : 0;
	rc = rte_eth_dev_configure(d->port, 1, 1, &conf);
	if (rc != 0) {
		snprintf(err, err_len, "dpdk.port '%s': cannot configure: %s", d->opt.port, rte_strerror(-rc));
		return -1;
	}
	d->port_configured = true;
	uint16_t nrx = d->opt.rx_descriptors, ntx = d->opt.tx_descriptors;
	rte_eth_dev_adjust_nb_rx_tx_desc(d->port, &nrx, &ntx);
	int socket = rte_eth_dev_socket_id(d->port);
	d->pool = rte_pktmbuf_pool_create("tapgate_mbufs", d->opt.mbufs, MBUF_CACHE, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	if (d->pool == NULL) {
		snprintf(err, err_len,
			 "cannot create a pool of %u mbufs: %s (dpdk.mbufs, or more memory with -m in dpdk.eal_args)",
			 d->opt.mbufs, rte_strerror(rte_errno));
		return -1;
	}
	struct rte_eth_rxconf rxconf = info.default_rxconf;
	rxconf.offloads = conf.rxmode.offloads;
	struct rte_eth_txconf txconf = info.default_txconf;
	txconf.offloads = conf.txmode.offloads;
	rc = rte_eth_rx_queue_setup(d->port, 0, nrx, (unsigned)socket, &rxconf, d->pool);
	if (rc == 0)
		rc = rte_eth_tx_queue_setup(d->port, 0, ntx, (unsigned)socket, &txconf);
	if (rc != 0) {
		snprintf(err, err_len, "dpdk.port '%s': cannot set up its queues: %s", d->opt.port, rte_strerror(-rc));
		return -1;
	}
	if (mac_setup(d, err, err_len) != 0 || xstats_setup(d, err, err_len) != 0)
		return -1;
	pthread_mutex_lock(&d->ctr->port.lock);
	d->ctr->port.present = true;
	snprintf(d->ctr->port.driver, sizeof(d->ctr->port.driver), "%s", info.driver_name);
	pthread_mutex_unlock(&d->ctr->port.lock);
	return 0;
}

int fp_dpdk_open(struct fp_dpdk **out, const struct fp_dpdk_options *opt, struct fp_counters *ctr,
		 char *err, size_t err_len)
{
	struct fp_dpdk *d = calloc(1, sizeof(*d));
	*out = NULL;
	if (d == NULL) {
		snprintf(err, err_len, "out of memory");
		return -1;
	}
	d->opt = *opt;
	d->ctr = ctr;
	d->udp_port = rte_cpu_to_be_16(opt->udp_port);
	struct in_addr a;
	if (inet_pton(AF_INET, opt->address, &a) != 1) {
		snprintf(err, err_len, "dpdk.address '%s' is not an IPv4 address", opt->address);
		goto fail;
	}
	d->ipv4 = a.s_addr;
	int argc = eal_args_split(d, opt->eal_args);
	if (argc < 0) {
		snprintf(err, err_len, "dpdk.eal_args: more than %u arguments or %u bytes", EAL_ARGS_MAX,
			 EAL_ARGS_BYTES);
		goto fail;
	}
	cpu_set_t original;
	pthread_getaffinity_np(pthread_self(), sizeof(original), &original);
	if (rte_eal_init(argc, d->eal_argv) < 0) {
		snprintf(err, err_len, "DPDK EAL did not start (%s); check dpdk.eal_args = %s",
			 rte_strerror(rte_errno), opt->eal_args);
		goto fail;
	}
	d->eal_up = true;
	if (opt->lcore >= RTE_MAX_LCORE || !rte_lcore_is_enabled(opt->lcore)) {
		snprintf(err, err_len, "dpdk.lcore %u is not one of the EAL's lcores (set them with -l in dpdk.eal_args)",
			 opt->lcore);
		goto fail;
	}
	if (port_find(opt->port, &d->port) != 0) {
		char ports[512];
		ports_list(ports, sizeof(ports));
		snprintf(err, err_len, "dpdk.port '%s' is not a DPDK port; ports:%s", opt->port, ports);
		goto fail;
	}
	if (port_setup(d, err, err_len) != 0)
		goto fail;
	/* The EAL pinned this thread to the main lcore. Threads started from
	 * now on (the writer, metrics) get every CPU but the polling lcore's. */
	rte_cpuset_t poll_cpus = rte_lcore_cpuset(opt->lcore);
	CPU_ZERO(&d->others);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &original) && !CPU_ISSET(c, &poll_cpus))
			CPU_SET(c, &d->others);
	if (CPU_COUNT(&d->others) == 0)
		d->others = original;
	pthread_setaffinity_np(pthread_self(), sizeof(d->others), &d->others);

	char mac[RTE_ETHER_ADDR_FMT_SIZE], name[RTE_ETH_NAME_MAX_LEN];
	rte_ether_format_addr(mac, sizeof(mac), &d->mac);
	rte_eth_dev_get_name_by_port(d->port, name);
	fprintf(stderr,
		"tapgate: ingress DPDK port %u (%s, %s) MAC %s%s, UDP %s:%u, polling lcore %u, "
		"checksums: tx %s\n",
		d->port, name, ctr->port.driver, mac, d->promiscuous ? " (promiscuous)" : "", opt->address,
		opt->udp_port, opt->lcore, d->tx_cksum_offload ? "offloaded" : "software");
	*out = d;
	return 0;
fail:
	fp_dpdk_close(d);
	return -1;
}

void fp_dpdk_close(struct fp_dpdk *d)
{
	if (d == NULL)
		return;
	if (d->port_started)
		rte_eth_dev_stop(d->port);
	if (d->port_configured)
		rte_eth_dev_close(d->port);
	if (d->pool != NULL)
		rte_mempool_free(d->pool);
	if (d->eal_up)
		rte_eal_cleanup();
	free(d->xstats);
	free(d);
}

/* -------------------------------------------------------------- receive */

enum rx_verdict { RX_DROP, RX_FRAME, RX_REPLY };

static enum rx_verdict arp_input(struct fp_dpdk *d, struct rte_mbuf *m, struct rte_ether_hdr *eth)
{
	if (m->data_len < ETH_BYTES + sizeof(struct rte_arp_hdr)) {
		net_drop(d, FP_NET_RUNT);
		return RX_DROP;
	}
	struct rte_arp_hdr *arp = (struct rte_arp_hdr *)(eth + 1);
	struct rte_arp_ipv4 *a = &arp->arp_data;
	if (arp->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
	    arp->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) || arp->arp_hlen != RTE_ETHER_ADDR_LEN ||
	    arp->arp_plen != 4 || arp->arp_opcode != rte_cpu_to_be_16(RTE_ARP_OP_REQUEST) ||
	    a->arp_tip != d->ipv4) {
		net_drop(d, FP_NET_ARP_IGNORED);
		return RX_DROP;
	}
	/* Answer in place: the request becomes the reply. */
	arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
	a->arp_tha = a->arp_sha;
	a->arp_tip = a->arp_sip;
	a->arp_sha = d->mac;
	a->arp_sip = d->ipv4;
	eth->dst_addr = eth->src_addr;
	eth->src_addr = d->mac;
	m->ol_flags = 0;
	ctr_inc(&d->ctr->net_arp_replies, 1);
	return RX_REPLY;
}

static enum rx_verdict icmp_input(struct fp_dpdk *d, struct rte_mbuf *m, struct rte_ether_hdr *eth,
				  struct rte_ipv4_hdr *ip, unsigned ip_len)
{
	struct rte_icmp_hdr *icmp = (struct rte_icmp_hdr *)(ip + 1);
	unsigned len = ip_len - (unsigned)IP_BYTES;
	if (len < sizeof(*icmp) || !d->opt.icmp_echo || icmp->icmp_type != RTE_IP_ICMP_ECHO_REQUEST ||
	    icmp->icmp_code != 0) {
		net_drop(d, FP_NET_NOT_UDP);
		return RX_DROP;
	}
	if (rte_raw_cksum(icmp, len) != 0xffff) {
		net_drop(d, FP_NET_BAD_IP_CKSUM);
		return RX_DROP;
	}
	icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
	icmp->icmp_cksum = 0;
	uint16_t sum = rte_raw_cksum(icmp, len);
	icmp->icmp_cksum = sum == 0xffff ? sum : (uint16_t)~sum;
	ip->dst_addr = ip->src_addr;
	ip->src_addr = d->ipv4;
	ip->time_to_live = 64;
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	eth->dst_addr = eth->src_addr;
	eth->src_addr = d->mac;
	m->ol_flags = 0;
	ctr_inc(&d->ctr->net_icmp_echo_replies, 1);
	return RX_REPLY;
}

/* The one's-complement sum over pseudo-header and datagram, checksum included, is all ones. */
static bool udp_cksum_ok(const struct rte_ipv4_hdr *ip, const struct rte_udp_hdr *udp, unsigned udp_len)
{
	uint32_t sum = (uint32_t)rte_raw_cksum(udp, udp_len) + rte_ipv4_phdr_cksum(ip, 0);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

#define NET_OK FP_NET_DROP_COUNT /* a check passed: no reason to drop */

static enum rx_verdict packet_drop(struct fp_dpdk *d, enum fp_net_drop why)
{
	net_drop(d, why);
	return RX_DROP;
}

/*
 * The IPv4 header of a packet of len bytes after its Ethernet header: one
 * host's unfragmented datagram to our address, without options, whose
 * checksum holds. Returns NET_OK with its total length in *ip_len, or why
 * the packet is dropped.
 */
static enum fp_net_drop ipv4_check(const struct fp_dpdk *d, const struct rte_mbuf *m,
				   const struct rte_ether_hdr *eth, unsigned len, unsigned *ip_len)
{
	if (len < ETH_BYTES + IP_BYTES)
		return FP_NET_RUNT;
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(eth + 1);
	unsigned ihl = (ip->version_ihl & 0x0f) * 4u;
	*ip_len = rte_be_to_cpu_16(ip->total_length);
	if ((ip->version_ihl >> 4) != 4 || ihl < IP_BYTES || *ip_len < ihl)
		return FP_NET_BAD_IP_HEADER;
	if (*ip_len > len - ETH_BYTES)
		return FP_NET_RUNT;
	uint64_t ipck = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
	if (ipck == RTE_MBUF_F_RX_IP_CKSUM_BAD ||
	    (ipck != RTE_MBUF_F_RX_IP_CKSUM_GOOD && rte_raw_cksum(ip, ihl) != 0xffff))
		return FP_NET_BAD_IP_CKSUM;
	if (ihl != IP_BYTES)
		return FP_NET_IP_OPTIONS;
	if (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK))
		return FP_NET_FRAGMENT;
	if (ip->dst_addr != d->ipv4)
		return FP_NET_WRONG_ADDRESS;
	/* Never answer a source that is not one host. */
	uint8_t src_first = ((const uint8_t *)&ip->src_addr)[0];
	if (ip->src_addr == 0 || ip->src_addr == 0xffffffffu || (src_first & 0xf0) == 0xe0 ||
	    rte_is_multicast_ether_addr(&eth->src_addr))
		return FP_NET_BAD_IP_HEADER;
	return NET_OK;
}

/*
 * The UDP header of an IPv4 datagram of ip_len bytes: its length agrees with
 * the IP header's, it goes to our port, and its checksum holds (or it has
 * none: IPv4 allows that, counted). Returns NET_OK with the UDP length in
 * *udp_len, or why the packet is dropped.
 */
static enum fp_net_drop udp_check(struct fp_dpdk *d, const struct rte_mbuf *m, const struct rte_ipv4_hdr *ip,
				  const struct rte_udp_hdr *udp, unsigned ip_len, unsigned *udp_len)
{
	*udp_len = ip_len >= IP_BYTES + UDP_BYTES ? rte_be_to_cpu_16(udp->dgram_len) : 0;
	if (*udp_len < UDP_BYTES || *udp_len != ip_len - IP_BYTES)
		return FP_NET_BAD_UDP_LENGTH;
	if (udp->dst_port != d->udp_port)
		return FP_NET_WRONG_PORT;
	uint64_t l4ck = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
	if (l4ck == RTE_MBUF_F_RX_L4_CKSUM_BAD)
		return FP_NET_BAD_UDP_CKSUM;
	if (l4ck != RTE_MBUF_F_RX_L4_CKSUM_GOOD) {
		if (udp->dgram_cksum == 0)
			ctr_inc(&d->ctr->net_udp_no_checksum, 1);
		else if (!udp_cksum_ok(ip, udp, *udp_len))
			return FP_NET_BAD_UDP_CKSUM;
	}
	return NET_OK;
}

/* The frame a datagram carries, and its sender (IPv4 as v4-mapped IPv6, and its Ethernet address). */
static void rx_fill(struct fp_rx *rx, const struct rte_ether_hdr *eth, const struct rte_ipv4_hdr *ip,
		    const struct rte_udp_hdr *udp, unsigned udp_len)
{
	rx->data = (const uint8_t *)(udp + 1);
	rx->len = udp_len - (unsigned)UDP_BYTES;
	memset(&rx->peer, 0, sizeof(rx->peer));
	rx->peer.addr.sin6_family = AF_INET6;
	rx->peer.addr.sin6_port = udp->src_port;
	rx->peer.addr.sin6_addr.s6_addr[10] = 0xff;
	rx->peer.addr.sin6_addr.s6_addr[11] = 0xff;
	memcpy(&rx->peer.addr.sin6_addr.s6_addr[12], &ip->src_addr, 4);
	memcpy(rx->peer.mac, &eth->src_addr, sizeof(rx->peer.mac));
}

/* Check one packet as a host stack would; a frame for us fills rx. */
static enum rx_verdict packet_input(struct fp_dpdk *d, struct rte_mbuf *m, struct fp_rx *rx)
{
	if (m->nb_segs != 1)
		return packet_drop(d, FP_NET_MULTI_SEGMENT);
	unsigned len = m->data_len, ip_len = 0, udp_len = 0;
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	if (len < ETH_BYTES)
		return packet_drop(d, FP_NET_RUNT);
	if (!rte_is_same_ether_addr(&eth->dst_addr, &d->mac) && !rte_is_broadcast_ether_addr(&eth->dst_addr))
		return packet_drop(d, FP_NET_WRONG_MAC);
	if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP))
		return arp_input(d, m, eth);
	if (eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
		return packet_drop(d, FP_NET_NOT_IPV4);
	enum fp_net_drop why = ipv4_check(d, m, eth, len, &ip_len);
	if (why != NET_OK)
		return packet_drop(d, why);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	if (ip->next_proto_id == IPPROTO_ICMP)
		return icmp_input(d, m, eth, ip, ip_len);
	if (ip->next_proto_id != IPPROTO_UDP)
		return packet_drop(d, FP_NET_NOT_UDP);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	if ((why = udp_check(d, m, ip, udp, ip_len, &udp_len)) != NET_OK)
		return packet_drop(d, why);
	rx_fill(rx, eth, ip, udp, udp_len);
	return RX_FRAME;
}

/* One receive burst. Returns how many packets it handled. */
static unsigned rx_pass(struct fp_dpdk *d)
{
	unsigned n = rte_eth_rx_burst(d->port, 0, d->rx_pkts, BURST), nrx = 0, nreply = 0;
	for (unsigned i = 0; i < n; i++) {
		struct rte_mbuf *m = d->rx_pkts[i];
		switch (packet_input(d, m, &d->rx[nrx])) {
		case RX_FRAME: d->held[nrx++] = m; break;
		case RX_REPLY: d->replies[nreply++] = m; break;
		case RX_DROP: rte_pktmbuf_free(m); break;
		}
	}
	if (nrx > 0) {
		fp_ingest_burst(d->pipe, d->rx, nrx); /* copies what it keeps */
		rte_pktmbuf_free_bulk(d->held, nrx);
	}
	if (nreply > 0) {
		unsigned sent = rte_eth_tx_burst(d->port, 0, d->replies, (uint16_t)nreply);
		if (sent < nreply) /* ARP and ping are retried by their senders */
			rte_pktmbuf_free_bulk(d->replies + sent, nreply - sent);
	}
	return n;
}

/* ----------------------------------------------------------------- acks */

static void ack_build(struct fp_dpdk *d, const struct fp_ack_out *ack, struct rte_mbuf *m)
{
	struct fp_udp_endpoints e = {.src_mac = d->mac, .src_ip = d->ipv4, .src_port = d->udp_port,
				     .dst_port = ack->peer.addr.sin6_port};
	memcpy(&e.dst_mac, ack->peer.mac, sizeof(e.dst_mac));
	memcpy(&e.dst_ip, &ack->peer.addr.sin6_addr.s6_addr[12], 4);
	struct rte_udp_hdr *udp = fp_udp_put(m, &e, d->ip_id++, ack->bytes, ack->len);
	if (d->tx_cksum_offload) {
		m->l2_len = ETH_BYTES;
		m->l3_len = IP_BYTES;
		m->ol_flags = RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM;
		udp->dgram_cksum = rte_ipv4_phdr_cksum((struct rte_ipv4_hdr *)udp - 1, m->ol_flags);
	} else {
		fp_udp_cksum_sw(udp);
	}
}

/* Send one burst of released acks. Returns how many left. */
static unsigned ack_pass(struct fp_dpdk *d, uint64_t now_tsc)
{
	const struct fp_ack_out *acks[BURST];
	unsigned n = fp_ingest_acks_peek(d->pipe, acks, BURST), sent = 0;
	if (n == 0) {
		d->ack_stall_since = 0;
		return 0;
	}
	if (rte_pktmbuf_alloc_bulk(d->pool, d->tx_pkts, n) == 0) {
		for (unsigned i = 0; i < n; i++)
			ack_build(d, acks[i], d->tx_pkts[i]);
		sent = rte_eth_tx_burst(d->port, 0, d->tx_pkts, (uint16_t)n);
		if (sent < n)
			rte_pktmbuf_free_bulk(d->tx_pkts + sent, n - sent);
	} else {
		ctr_inc(&d->ctr->net_tx_no_mbuf, 1);
	}
	if (sent > 0) {
		fp_ingest_acks_release(d->pipe, sent);
		d->ack_stall_since = 0;
		return sent;
	}
	/* The port takes nothing: after a while the acks count as lost (the
	 * validators retransmit and get "duplicate"), so the ring moves on. */
	if (d->ack_stall_since == 0) {
		d->ack_stall_since = now_tsc;
	} else if (now_tsc - d->ack_stall_since > rte_get_tsc_hz() / 1000u * ACK_STALL_MS) {
		ctr_inc(&d->ctr->acks_send_errors, n);
		fp_ingest_acks_release(d->pipe, n);
		d->ack_stall_since = 0;
	}
	return 0;
}

/* ------------------------------------------------------------ the lcore */

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Copy the port statistics for the metrics endpoint, answering request
 * `wanted`. Returns false if a scrape holds the lock (the next pass tries
 * again): the lcore never waits for the metrics thread. */
static bool stats_snapshot(struct fp_dpdk *d, uint64_t hz, uint64_t wanted)
{
	struct fp_port_stats *ps = &d->ctr->port;
	if (pthread_mutex_trylock(&ps->lock) != 0)
		return false;
	atomic_store_explicit(&d->ctr->ingress_busy_ns,
			      (uint64_t)((long double)d->busy_cycles * 1e9L / (long double)hz),
			      memory_order_relaxed);
	/* The ack eventfd is for the socket backends; keep its count from growing. */
	uint64_t v;
	(void)!read(fp_pipeline_ack_eventfd(d->pipe), &v, sizeof(v));
	struct rte_eth_stats st;
	int nx = 0;
	if (rte_eth_stats_get(d->port, &st) != 0)
		memset(&st, 0, sizeof(st));
	if (d->xstats_count > 0)
		nx = rte_eth_xstats_get(d->port, d->xstats, d->xstats_count);
	ps->ipackets = st.ipackets;
	ps->opackets = st.opackets;
	ps->ibytes = st.ibytes;
	ps->obytes = st.obytes;
	ps->imissed = st.imissed;
	ps->ierrors = st.ierrors;
	ps->oerrors = st.oerrors;
	ps->rx_nombuf = st.rx_nombuf;
	for (int i = 0; i < nx; i++)
		if (d->xstats[i].id < ps->xstats_count)
			ps->xstat_values[d->xstats[i].id] = d->xstats[i].value;
	ps->taken_seq = wanted;
	ps->taken_mono_ns = mono_ns();
	pthread_cond_broadcast(&ps->taken);
	pthread_mutex_unlock(&ps->lock);
	d->stats_answered = wanted;
	return true;
}

/* Tell scrapes whether to wait for the lcore (it blocks on the lock only here, outside the loop). */
static void stats_polling(struct fp_dpdk *d, bool polling)
{
	struct fp_port_stats *ps = &d->ctr->port;
	pthread_mutex_lock(&ps->lock);
	ps->polling = polling;
	pthread_cond_broadcast(&ps->taken);
	pthread_mutex_unlock(&ps->lock);
}

static int poll_loop(void *arg)
{
	struct fp_dpdk *d = arg;
	struct fp_port_stats *ps = &d->ctr->port;
	uint64_t hz = rte_get_tsc_hz(), stats_due = 0;
	unsigned empty = 0;
	bool stopping = false;
	stats_polling(d, true);
	while (!fp_ingress_done(d->pipe, d->stop, &stopping)) {
		uint64_t t0 = rte_rdtsc();
		unsigned work = rx_pass(d);
		work += ack_pass(d, t0);
		uint64_t t1 = rte_rdtsc();
		if (work > 0) {
			d->busy_cycles += t1 - t0;
			empty = 0;
		} else if (d->opt.idle_sleep_us > 0 && ++empty >= EMPTY_PASSES_BEFORE_SLEEP) {
			rte_delay_us_sleep(d->opt.idle_sleep_us);
		}
		uint64_t wanted = atomic_load_explicit(&ps->wanted_seq, memory_order_acquire);
		if ((t1 >= stats_due || wanted != d->stats_answered) && stats_snapshot(d, hz, wanted))
			stats_due = t1 + hz / 1000u * STATS_INTERVAL_MS;
	}
	stats_polling(d, false);
	while (!stats_snapshot(d, hz, atomic_load(&ps->wanted_seq)))
		sched_yield();
	atomic_store(&d->done, true);
	return 0;
}

int fp_dpdk_run(struct fp_dpdk *d, struct fp_pipeline *p, volatile sig_atomic_t *stop)
{
	d->pipe = p;
	d->stop = stop;
	int rc = rte_eth_dev_start(d->port);
	if (rc != 0) {
		fprintf(stderr, "tapgate: cannot start DPDK port %u: %s\n", d->port, rte_strerror(-rc));
		return rc;
	}
	d->port_started = true;
	atomic_store(&d->ctr->ingress_ready, 1); /* /healthz: receiving */
	struct rte_eth_link link;
	if (rte_eth_link_get_nowait(d->port, &link) == 0)
		fprintf(stderr, "tapgate: DPDK port %u: link %s, %u Mbps\n", d->port,
			link.link_status ? "up" : "down", link.link_speed);
	if (d->opt.lcore == rte_get_main_lcore()) {
		rte_cpuset_t cpus = rte_lcore_cpuset(d->opt.lcore);
		pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
		poll_loop(d);
		pthread_setaffinity_np(pthread_self(), sizeof(d->others), &d->others);
	} else {
		rc = rte_eal_remote_launch(poll_loop, d, d->opt.lcore);
		if (rc != 0) {
			fprintf(stderr, "tapgate: cannot launch the polling lcore %u: %s\n", d->opt.lcore,
				rte_strerror(-rc));
			return rc;
		}
		/* rte_eal_wait_lcore() spins: sleep instead, the CPU is the writer's. */
		while (!atomic_load(&d->done))
			usleep(10000);
		rte_eal_wait_lcore(d->opt.lcore);
	}
	return 0;
}

/* ------------------------------------------------ the scrape's side */

bool fp_port_stats_lock_fresh(struct fp_port_stats *ps, unsigned wait_ms)
{
	pthread_mutex_lock(&ps->lock);
	if (!ps->present || !ps->polling)
		return false;
	uint64_t seq = atomic_fetch_add_explicit(&ps->wanted_seq, 1, memory_order_release) + 1;
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += wait_ms / 1000u;
	deadline.tv_nsec += (long)(wait_ms % 1000u) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	while (ps->polling && ps->taken_seq < seq)
		if (pthread_cond_timedwait(&ps->taken, &ps->lock, &deadline) != 0)
			break; /* ETIMEDOUT: the last snapshot will do */
	return ps->taken_seq >= seq;
}
