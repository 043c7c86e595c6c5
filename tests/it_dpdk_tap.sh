# The DPDK ingress with a kernel peer: the gateway owns a TAP device through
# DPDK's net_tap, inside a network namespace this test creates; tapgen sends
# from the kernel side of that device through ordinary UDP sockets (the
# kernel resolves the gateway's address by ARP, which the gateway answers).
# Every tap is acknowledged and stored exactly once, across a kill -9 of the
# gateway in the middle of the load and a restart on the same store; then a
# SIGTERM stops it cleanly.
. tests/lib.sh
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root for a network namespace and a TAP device"; exit 77; }
[ -c /dev/net/tun ] || { echo "skip: no /dev/net/tun: the kernel cannot make TAP devices"; exit 77; }
NS=tgns$$
IFACE=tgtap$$
GW_IP=10.77.0.2
PEER_IP=10.77.0.1
ip netns add "$NS" || { echo "skip: cannot create a network namespace (ip netns add)"; exit 77; }
trap 'cleanup; ip netns del "$NS" 2>/dev/null || true' EXIT INT TERM
NS_EXEC="ip netns exec $NS"
$NS_EXEC ip link set lo up

# dpdk_start: the gateway on net_tap, then the kernel's side of the TAP device.
dpdk_start() {
	start_gateway -s gateway.ingress=dpdk -s dpdk.port=net_tap0 -s dpdk.lcore=1 \
		-s "dpdk.address=$GW_IP" -s "dpdk.udp_port=$PORT" -s dpdk.idle_sleep_us=20 \
		-s "dpdk.eal_args=-l 0,1 --no-huge -m 256 --no-pci --file-prefix $NS --vdev=net_tap0,iface=$IFACE"
	$NS_EXEC ip addr add "$PEER_IP/24" dev "$IFACE"
	$NS_EXEC ip link set "$IFACE" up
}

dpdk_start
$NS_EXEC "$BIN/tapgen" --gateway "$GW_IP:$PORT" --validators 64 --taps 60000 --taps-per-frame 4 \
	--retransmit-rate 0.1 --give-up-s 90 --out "$T/sent.csv" --json "$T/tapgen.json" >"$T/tapgen.out" 2>&1 &
TG=$!
wait_metric_at_least tapgate_taps_stored_total 10000
[ "$(metric tapgate_net_arp_replies_total)" -ge 1 ] || fail "the kernel's ARP request was not answered"
before=$(metric tapgate_taps_stored_total)
kill9_gateway
echo "killed -9 after $before taps stored"
"$BIN/tapdump" -s "$T/store" counts
# The killed gateway's TAP device goes with its last file descriptor; the restart makes it again.
tap_gone() { ! $NS_EXEC ip link show "$IFACE" >/dev/null 2>&1; }
wait_for 30 "the killed gateway's $IFACE to go" tap_gone
dpdk_start
wait $TG || { cat "$T/tapgen.out"; fail "tapgen did not get every tap acknowledged"; }
cat "$T/tapgen.out"
[ "$(metric tapgate_net_arp_replies_total)" -ge 1 ] || fail "no ARP reply after the restart"
for r in bad_ip_checksum bad_udp_checksum bad_udp_length runt; do
	[ "$(metric "tapgate_net_dropped_total{reason=\"$r\"}")" = 0 ] || fail "kernel packets dropped as $r"
done
# A scrape gets port statistics taken after it began (docs/DPDK.md): tapgen has
# had its acks, so the port has counted the frames. Only if the polling lcore
# did not answer in time (tapgate_port_stats_stale_total) may the figures be
# older, and then they are at most about 100 ms old: wait for them.
$NS_EXEC curl -sf --max-time 10 "http://127.0.0.1:$METRICS_PORT/metrics" >"$T/scrape" || fail "no scrape"
rx=$(awk '$1 == "tapgate_port_rx_packets_total{driver=\"net_tap\"}" { print $2 }' "$T/scrape")
stale=$(awk '$1 == "tapgate_port_stats_stale_total" { print $2 }' "$T/scrape")
echo "first scrape after the load: $rx packets received by the port, $(awk '$1 == "tapgate_port_stats_age_seconds" { print $2 }' "$T/scrape") s old, $stale stale scrapes"
[ "$stale" != 0 ] || [ "$rx" -gt 0 ] || fail "a fresh snapshot of the port statistics without the load's packets"
wait_metric_at_least 'tapgate_port_rx_packets_total{driver="net_tap"}' 1
stop_gateway
"$BIN/tapdump" -s "$T/store" export --fields identity >"$T/stored.csv"
[ "$(wc -l <"$T/sent.csv")" -eq 60001 ] || fail "tapgen wrote $(wc -l <"$T/sent.csv") lines"
cmp "$T/sent.csv" "$T/stored.csv" || fail "the store differs from what tapgen had acknowledged"
echo "ok: 60000 unique taps exactly once through DPDK net_tap, across kill -9 and restart"
