/*
 * dpdk_udp.h - one Ethernet + IPv4 + UDP datagram laid out in an mbuf, for
 * the DPDK ingress (its acknowledgements) and bench/dpdk_source (its frames).
 * Internal to the code that links DPDK; fastpath.h stays free of DPDK types.
 */
#ifndef TAPGATE_DPDK_UDP_H
#define TAPGATE_DPDK_UDP_H

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include <netinet/in.h>
#include <string.h>

struct fp_udp_endpoints {
	struct rte_ether_addr src_mac, dst_mac;
	rte_be32_t src_ip, dst_ip;
	rte_be16_t src_port, dst_port;
};

/*
 * Append the headers and payload to an empty mbuf: IPv4 without options,
 * don't-fragment, TTL 64, checksums left at zero for the caller (software
 * or offload). Returns the UDP header.
 */
static inline struct rte_udp_hdr *fp_udp_put(struct rte_mbuf *m, const struct fp_udp_endpoints *e,
					     uint16_t ip_id, const void *payload, uint16_t len)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)rte_pktmbuf_append(
		m, (uint16_t)(sizeof(*eth) + sizeof(struct rte_ipv4_hdr) + sizeof(struct rte_udp_hdr) + len));
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	eth->dst_addr = e->dst_mac;
	eth->src_addr = e->src_mac;
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	*ip = (struct rte_ipv4_hdr){
		.version_ihl = RTE_IPV4_VHL_DEF,
		.total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + sizeof(*udp) + len)),
		.packet_id = rte_cpu_to_be_16(ip_id),
		.fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG),
		.time_to_live = 64,
		.next_proto_id = IPPROTO_UDP,
		.src_addr = e->src_ip,
		.dst_addr = e->dst_ip,
	};
	*udp = (struct rte_udp_hdr){
		.src_port = e->src_port,
		.dst_port = e->dst_port,
		.dgram_len = rte_cpu_to_be_16((uint16_t)(sizeof(*udp) + len)),
	};
	memcpy(udp + 1, payload, len);
	return udp;
}

/* Fill both checksums in software. */
static inline void fp_udp_cksum_sw(struct rte_udp_hdr *udp)
{
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)udp - 1;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
}

#endif
