# The DPDK ingress on real packets: a capture crafted by an independent tool
# (scapy, tests/dpdk_pcap.py, with its own encoder of PROTOCOL.md) holding an
# ARP request, a ping, valid frames, retransmissions, bad IP and UDP
# checksums, fragments, IP options, wrong ports and addresses, IPv6, garbage
# and forged frames is fed to the gateway through net_pcap. The packets the
# gateway transmits (its tx pcap) are parsed by scapy and checked: one correct
# ARP reply, one ping reply, one acknowledgement per valid frame with valid
# checksums and MAC and the right statuses, nothing for anything bad; and the
# store holds exactly the unique taps.
. tests/lib.sh
PY=/usr/bin/python3
"$PY" -c "import scapy" 2>/dev/null || fail "scapy is missing: tools/install-deps.sh installs python3-scapy"
"$PY" tests/dpdk_pcap.py selftest || fail "the scapy-side encoder disagrees with PROTOCOL.md"
NET="--gw-mac 02:00:00:00:00:01 --gw-ip 10.77.0.2 --port 7700 --peer-mac 02:00:00:00:00:02 --peer-ip 10.77.0.1"
# shellcheck disable=SC2086
"$PY" tests/dpdk_pcap.py craft --keys config/dev-validators.keys --pcap "$T/in.pcap" \
	--expect "$T/expect.json" --frames 300 --seed "$$" $NET || fail "craft"
packets=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['packets'])" "$T/expect.json")
sends=$("$PY" -c "import json,sys; print(len(json.load(open(sys.argv[1]))['frames']))" "$T/expect.json")

start_gateway -s gateway.ingress=dpdk -s dpdk.port=net_pcap0 -s dpdk.lcore=0 \
	-s dpdk.mac=02:00:00:00:00:01 -s dpdk.address=10.77.0.2 -s dpdk.udp_port=7700 \
	-s "dpdk.eal_args=-l 0 --no-huge -m 256 --no-pci --file-prefix tgpcap$$ --vdev=net_pcap0,rx_pcap=$T/in.pcap,tx_pcap=$T/out.pcap"
# Every packet read from the capture, every valid frame acknowledged.
all_read() {
	[ "$(metric 'tapgate_port_rx_packets_total{driver="net_pcap"}')" = "$packets" ] &&
		[ "$(metric tapgate_frames_acked_total)" = "$sends" ]
}
wait_until 60 all_read || fail "port read $(metric 'tapgate_port_rx_packets_total{driver="net_pcap"}') of $packets" \
	"packets, $(metric tapgate_frames_acked_total) of $sends frames acked (waited 60 s)"
for r in bad_ip_checksum bad_udp_checksum fragment ip_options wrong_port wrong_address not_ipv4 wrong_mac arp_ignored; do
	[ "$(metric "tapgate_net_dropped_total{reason=\"$r\"}")" -ge 1 ] || fail "nothing counted as $r"
done
[ "$(metric tapgate_net_arp_replies_total)" = 1 ] || fail "ARP replies: $(metric tapgate_net_arp_replies_total)"
stop_gateway
"$BIN/tapdump" -s "$T/store" export >"$T/export.csv"
# shellcheck disable=SC2086
"$PY" tests/dpdk_pcap.py check --keys config/dev-validators.keys --pcap "$T/out.pcap" \
	--expect "$T/expect.json" --store-export "$T/export.csv" $NET || fail "the gateway's packets or store are wrong"
