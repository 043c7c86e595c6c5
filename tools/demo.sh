#!/bin/sh
# make demo: the main job on the default embedded set-up. Starts the gateway
# on 127.0.0.1 with config/tapgate.conf and a fresh store under ./var, runs a
# tapgen validator fleet for a few seconds, prints what was recorded, and
# stops the gateway cleanly with SIGTERM.
set -eu
BUILD=${BUILD:-build}
BIN=$BUILD/bin
CONF=config/tapgate.conf
STORE=var/store
METRICS=http://127.0.0.1:9700

echo "== tapgate demo: fresh store in $STORE (demo data only)"
rm -rf "$STORE"
mkdir -p var
"$BIN/tapgate" -c "$CONF" >var/gateway.log 2>&1 &
GW=$!
trap 'kill -9 $GW 2>/dev/null || true' EXIT INT TERM
i=0
until curl -sf "$METRICS/healthz" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 200 ] || ! kill -0 $GW 2>/dev/null; then
		echo "gateway did not start; var/gateway.log says:" >&2
		cat var/gateway.log >&2
		exit 1
	fi
	sleep 0.05
done
echo "== gateway up (pid $GW), log in var/gateway.log; metrics at $METRICS/metrics"

echo "== tapgen: 64 validators for 5 s: bus, metro, canteen; e-purse, QuickPass, QR; 10% lost acks; some bad frames"
"$BIN/tapgen" --gateway 127.0.0.1:7700 --validators 64 --taps 50000 --rate 10000 --taps-per-frame 8 \
	--retransmit-rate 0.1 --bad-mac 20 --bad-validator 20 --replay-qr 5 --conflict 5 --progress

echo "== store (tapdump -s $STORE counts)"
"$BIN/tapdump" -s "$STORE" counts
echo "== last 5 taps (tapdump -s $STORE last 5)"
"$BIN/tapdump" -s "$STORE" last 5
echo "== gateway counters (from /metrics)"
curl -sf "$METRICS/metrics" | grep -E '^tapgate_(taps_|frames_acked|commits_total|frames_dropped_total\{reason="(mac|validator|ring_full)"\})' |
	grep -v ' 0$' || true

echo "== stopping the gateway (SIGTERM)"
kill -TERM $GW
wait $GW
trap - EXIT
tail -n 1 var/gateway.log
echo "== done: the store stays in $STORE; build/bin/tapdump -s $STORE --help for more"
