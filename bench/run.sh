#!/bin/sh
# make bench: the gateway against the raw LMDB bound, side by side in one run.
#
# Per round (BENCH_ROUNDS, default 3), on the same disk, with the same record
# size (a QuickPass tap: 56-byte metadata + 38-byte record) and the same
# commit batch (4096) and sync mode (full, durable):
#   bound   - bench/lmdb_bound: MDB_APPEND durable inserts/s through store/
#   gw32    - acknowledged durable taps/s, tapgen -> io_uring gateway, 32 taps/frame
#   gw1     - the same with 1 tap per frame
# then acknowledgement latency p50/p99/p999 at half of each measured maximum
# (at 32 taps per frame, validators hold a part-full frame up to 20 ms),
# and the dedup rebuild time of 10 million taps. Medians and ratios are
# printed; these machines are shared and noisy, so single figures mean little.
# Only public tools are used; figures come from the programs' own output.
set -eu
BUILD=${BUILD:-build}
BIN=$BUILD/bin
ROUNDS=${BENCH_ROUNDS:-3}
BOUND_TAPS=${BENCH_BOUND_TAPS:-1000000}
GW32_TAPS=${BENCH_GW32_TAPS:-1000000}
GW1_TAPS=${BENCH_GW1_TAPS:-200000}
REBUILD_TAPS=${BENCH_REBUILD_TAPS:-10000000}
BATCH=4096
PORT=$((30000 + $$ % 10000))
D=$(mktemp -d /var/tmp/tapgate-bench.XXXXXX)
GW=""
trap '[ -z "$GW" ] || kill -9 $GW 2>/dev/null; rm -rf "$D"' EXIT INT TERM

jget() { # jget KEY FILE: a number from tapgen's flat JSON
	sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p" "$2" | head -n 1
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

gateway_start() { # gateway_start STORE_DIR
	"$BIN/tapgate" -c config/tapgate.conf -s "store.path=$1" -s "gateway.listen_port=$PORT" \
		-s gateway.metrics_port=0 -s store.sync=full -s "store.commit_batch_taps=$BATCH" \
		-s dedup.taps_max=4194304 >>"$D/gateway.log" 2>&1 &
	GW=$!
	sleep 0.5
	kill -0 $GW || { cat "$D/gateway.log"; exit 1; }
}
gateway_stop() { kill -TERM $GW; wait $GW; GW=""; }

tapgen_run() { # tapgen_run JSON TAPS_PER_FRAME TAPS [more options]
	json=$1 tpf=$2 taps=$3
	shift 3
	"$BIN/tapgen" --gateway "127.0.0.1:$PORT" --medium quickpass --validators 256 --window 8 \
		--taps-per-frame "$tpf" --taps "$taps" --json "$json" "$@" >"$json.out" 2>&1 ||
		{ cat "$json.out"; echo "bench: tapgen failed" >&2; exit 1; }
}

echo "tapgate bench: $ROUNDS rounds, records of 94 bytes, commit batch $BATCH, sync full, in $D"
: >"$D/bound" ; : >"$D/gw32" ; : >"$D/gw1" ; : >"$D/ratio32" ; : >"$D/ratio1"
for r in $(seq "$ROUNDS"); do
	bound=$("$BIN/lmdb_bound" -d "$D/bound-$r" -n "$BOUND_TAPS" -b $BATCH -r 38 |
		sed -n 's/.*inserts_per_s=\([0-9.]*\).*/\1/p')
	rm -rf "$D/bound-$r"
	# Each measurement on a fresh gateway and store, as the bound has.
	gateway_start "$D/gw32-$r"
	tapgen_run "$D/gw32-$r.json" 32 "$GW32_TAPS"
	gateway_stop
	gateway_start "$D/gw1-$r"
	tapgen_run "$D/gw1-$r.json" 1 "$GW1_TAPS"
	gateway_stop
	rm -rf "$D/gw32-$r" "$D/gw1-$r"
	gw32=$(jget taps_per_s "$D/gw32-$r.json")
	gw1=$(jget taps_per_s "$D/gw1-$r.json")
	echo "$bound" >>"$D/bound"; echo "$gw32" >>"$D/gw32"; echo "$gw1" >>"$D/gw1"
	echo "$gw32 $bound" | awk '{ printf "%.3f\n", $1 / $2 }' >>"$D/ratio32"
	echo "$gw1 $bound" | awk '{ printf "%.3f\n", $1 / $2 }' >>"$D/ratio1"
	printf '  round %s: bound %.0f/s  gateway 32/frame %.0f/s  1/frame %.0f/s\n' "$r" "$bound" "$gw32" "$gw1"
done
B=$(median <"$D/bound"); G32=$(median <"$D/gw32"); G1=$(median <"$D/gw1")
R32=$(median <"$D/ratio32"); R1=$(median <"$D/ratio1")

# Latency at half of the measured maximum, each frame size.
half32=$(echo "$G32" | awk '{ printf "%d", $1 / 2 }')
half1=$(echo "$G1" | awk '{ printf "%d", $1 / 2 }')
gateway_start "$D/lat32"
tapgen_run "$D/lat32.json" 32 "$(echo "$half32" | awk '{ printf "%d", $1 * 5 }')" --rate "$half32" --linger-ms 20
gateway_stop
gateway_start "$D/lat1"
tapgen_run "$D/lat1.json" 1 "$(echo "$half1" | awk '{ printf "%d", $1 * 5 }')" --rate "$half1"
gateway_stop

rebuild=$("$BIN/rebuild_bench" -d "$D/rebuild" -n "$REBUILD_TAPS" -r 3 2>/dev/null)
rebuild_s=$(echo "$rebuild" | sed -n 's/.*median_seconds=\([0-9.]*\).*/\1/p')

echo
echo "== tapgate bench report (medians of $ROUNDS rounds; latency in microseconds)"
printf '%-44s %12s %8s %s\n' "measure" "value" "target" "met"
row() { printf '%-44s %12s %8s %s\n' "$1" "$2" "$3" "$4"; }
met() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { print ((op == ">=" ? v >= t : v <= t) ? "yes" : "NO") }'; }
row "LMDB MDB_APPEND durable inserts/s (bound)" "$B" "" ""
row "gateway acked taps/s, 32 taps/frame" "$G32" "" ""
row "gateway acked taps/s, 1 tap/frame" "$G1" "" ""
row "ratio gateway/bound, 32 taps/frame" "$R32" ">=0.8" "$(met "$R32" 0.8 ">=")"
row "ratio gateway/bound, 1 tap/frame" "$R1" "" ""
for f in 32 1; do
	j="$D/lat$f.json"
	row "ack latency p50 at half load, $f/frame" "$(jget latency_p50_us "$j")" "" ""
	row "ack latency p99 at half load, $f/frame" "$(jget latency_p99_us "$j")" "<=2000" "$(met "$(jget latency_p99_us "$j")" 2000 "<=")"
	row "ack latency p999 at half load, $f/frame" "$(jget latency_p999_us "$j")" "" ""
done
row "dedup rebuild of $REBUILD_TAPS taps, seconds" "$rebuild_s" "<=5" "$(met "$rebuild_s" 5 "<=")"
