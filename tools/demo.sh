#!/bin/sh
# make demo: the main job on the default embedded set-up. Starts the gateway
# on 127.0.0.1 with config/tapgate.conf and a fresh store under ./var, runs a
# tapgen validator fleet on the demo fare network (taps of the last two days)
# for a few seconds, prints what was recorded, stops the gateway cleanly with
# SIGTERM, then rates the finished business days with tapfare and prints some
# of the legs and the e-purse audit, and closes the first day with tapsettle:
# the reconciliation summary and each counterparty's files.
set -eu
BUILD=${BUILD:-build}
BIN=$BUILD/bin
CONF=config/tapgate.conf
STORE=var/store
RATED=var/rated
METRICS=http://127.0.0.1:9700

echo "== tapgate demo: fresh store in $STORE (demo data only)"
rm -rf "$STORE" "$RATED" var/settle var/outbox
mkdir -p var
chmod 600 config/dev-validators.keys config/dev-qr-platform.key config/dev-settle.key # git keeps no modes: the gateway refuses a key others can read
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

echo "== tapgen: 64 validators for 5 s on the demo fare network (bus routes, metro line, canteens), taps of the last"
echo "   two days; e-purse, QuickPass, QR; 10% lost acks; some bad frames"
"$BIN/tapgen" --gateway 127.0.0.1:7700 --validators 64 --taps 50000 --rate 10000 --taps-per-frame 8 \
	--network demo --spread-s 172800 \
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

echo "== tapfare rate: the business days that have ended (fare feed config/fares-demo, rated store $RATED)"
"$BIN/tapfare" -c "$CONF" rate
day=$("$BIN/tapfare" -c "$CONF" legs --no-version | head -n 1 | cut -d' ' -f1)
if [ -n "$day" ]; then
	echo "== legs of business day $day: $("$BIN/tapfare" -c "$CONF" legs --day "$day" | wc -l); the first 8 (tapfare legs --day $day)"
	"$BIN/tapfare" -c "$CONF" legs --day "$day" | head -n 8
	echo "== e-purse audit of $day: $("$BIN/tapfare" -c "$CONF" audit --day "$day" | wc -l) lines; the first 5"
	"$BIN/tapfare" -c "$CONF" audit --day "$day" | head -n 5
fi
if [ -n "$day" ]; then
	echo "== tapsettle close --day $day: batches per counterparty, files in var/outbox/"
	"$BIN/tapsettle" -c "$CONF" close --day "$day" 2>/dev/null
	echo "== reconciliation of $day (tapsettle reconcile --day $day)"
	"$BIN/tapsettle" -c "$CONF" reconcile --day "$day" | grep -E '^(taps|legs:|money|payouts|RESULT|MISMATCH)'
	echo "== each counterparty's files (tapsettle status)"
	"$BIN/tapsettle" -c "$CONF" status | awk '$1 == "batch" { sub("^file=", "", $NF); printf "   %-40s %s\n", $2, $NF }'
fi
echo "== done: the store stays in $STORE, the rated legs in $RATED, settlement in var/settle and var/outbox;"
echo "   build/bin/tapdump -s $STORE --help, build/bin/tapfare --help and build/bin/tapsettle --help for more"
