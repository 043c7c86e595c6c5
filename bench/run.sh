#!/bin/sh
# make bench: the gateway against the raw LMDB bound, side by side in one run.
#
# Per round (BENCH_ROUNDS, default 3), on the same disk, with the same record
# size (a QuickPass tap: 56-byte metadata + 38-byte record) and the same
# commit batch (4096) and sync mode (full, durable):
#   bound   - bench/lmdb_bound: MDB_APPEND durable inserts/s through store/
#   gw32    - acknowledged durable taps/s, tapgen -> io_uring gateway, 32 taps/frame
#   gw1     - the same with 1 tap per frame
#   dpdk32  - acknowledged durable taps/s through the DPDK ingress, fed by
#             bench/dpdk_source (a DPDK validator fleet) over net_memif, 32/frame
#   dpdk1   - the same with 1 tap per frame
# with, for each gateway row, the CPU cycles per tap spent by the ingress
# (tapgate_ingress_busy_seconds: the io_uring thread's CPU time, or the DPDK
# lcore's polling passes that found work; times the TSC rate, over the taps),
# then acknowledgement latency p50/p99/p999 at half of each measured maximum
# (at 32 taps per frame, validators hold a part-full frame up to 20 ms),
# the dedup rebuild time of 10 million taps, and the fare engine and the
# settlement worker on a generated business day (bench/fare_day -S: rating,
# then closing the day into every counterparty's files; once more while the
# gateway ingests 2000 taps/s on another store). Medians and ratios are
# printed; these machines are shared and noisy, so single figures mean little.
# Only public tools are used; figures come from the programs' own output.
# The storm rows (mixed media, QR-heavy, the recovery storm, the QR-only storm against the
# Ed25519 bound, latency at half the mixed maximum, PostgreSQL 15) are bench/storm.sh, run
# last; BENCH_ONLY=storm runs only those.
set -eu
BUILD=${BUILD:-build}
if [ "${BENCH_ONLY:-}" = storm ]; then exec sh bench/storm.sh; fi
BIN=$BUILD/bin
ROUNDS=${BENCH_ROUNDS:-3}
BOUND_TAPS=${BENCH_BOUND_TAPS:-1000000}
GW32_TAPS=${BENCH_GW32_TAPS:-1000000}
GW1_TAPS=${BENCH_GW1_TAPS:-200000}
DPDK32_TAPS=${BENCH_DPDK32_TAPS:-2000000}
DPDK1_TAPS=${BENCH_DPDK1_TAPS:-300000}
REBUILD_TAPS=${BENCH_REBUILD_TAPS:-10000000}
FARE_TAPS=${BENCH_FARE_TAPS:-10000000}
FARE_TOKENS=${BENCH_FARE_TOKENS:-1000000}
BATCH=4096
PORT=$((30000 + $$ % 10000))
D=$(mktemp -d /var/tmp/tapgate-bench.XXXXXX)
GW=""
trap '[ -z "$GW" ] || kill -9 $GW 2>/dev/null; rm -rf "$D" "/var/run/dpdk/tgbench$$" "/var/run/dpdk/tgsrc$$"' EXIT INT TERM
GW_MAC=02:00:00:00:00:01

jget() { # jget KEY FILE: a number from tapgen's flat JSON
	sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p" "$2" | head -n 1
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

gateway_start() { # gateway_start STORE_DIR [more -s settings]: logs to STORE_DIR.log
	store=$1
	shift
	"$BIN/tapgate" -c config/tapgate.conf -s "store.path=$store" -s "gateway.listen_port=$PORT" \
		-s gateway.metrics_port=0 -s store.sync=full -s "store.commit_batch_taps=$BATCH" \
		-s dedup.taps_max=4194304 "$@" >"$store.log" 2>&1 &
	GW=$!
	sleep 1
	kill -0 $GW || { cat "$store.log"; exit 1; }
}
gateway_stop() { kill -TERM $GW; wait $GW; GW=""; }
# The gateway's stop line: "... taps N stored, ...; ingress busy S s".
busy_s() { sed -n 's/.*ingress busy \([0-9.]*\) s.*/\1/p' "$1.log"; }
stored() { sed -n 's/.* taps \([0-9]*\) stored.*/\1/p' "$1.log"; }
cycles_per_tap() { # cycles_per_tap STORE_DIR
	echo "$(busy_s "$1") $TSC_HZ $(stored "$1")" | awk '{ printf "%.0f\n", $1 * $2 / $3 }'
}

dpdk_gateway_start() { # dpdk_gateway_start STORE_DIR: the DPDK ingress as a memif server
	gateway_start "$1" -s gateway.ingress=dpdk -s dpdk.port=net_memif0 -s dpdk.lcore=1 \
		-s "dpdk.mac=$GW_MAC" -s "dpdk.udp_port=$PORT" \
		-s "dpdk.eal_args=-l 0,1 --no-huge -m 512 --no-pci --file-prefix tgbench$$ --vdev=net_memif0,role=server,socket=$D/memif.sock"
}
dpdk_source_run() { # dpdk_source_run JSON TAPS_PER_FRAME TAPS
	"$BIN/dpdk_source" -l 0 --no-huge -m 256 --no-pci --file-prefix tgsrc$$ \
		--vdev=net_memif0,role=client,socket="$D/memif.sock" -- --port net_memif0 \
		--keys config/dev-validators.keys --dst-mac "$GW_MAC" --udp-port "$PORT" \
		--taps-per-frame "$2" --taps "$3" --json "$1" >"$1.out" 2>&1 ||
		{ cat "$1.out"; echo "bench: dpdk_source failed" >&2; exit 1; }
}

tapgen_run() { # tapgen_run JSON TAPS_PER_FRAME TAPS [more options]
	json=$1 tpf=$2 taps=$3
	shift 3
	"$BIN/tapgen" --gateway "127.0.0.1:$PORT" --medium quickpass --validators 256 --window 8 \
		--taps-per-frame "$tpf" --taps "$taps" --json "$json" "$@" >"$json.out" 2>&1 ||
		{ cat "$json.out"; echo "bench: tapgen failed" >&2; exit 1; }
}

echo "tapgate bench: $ROUNDS rounds, records of 94 bytes, commit batch $BATCH, sync full, in $D"
: >"$D/bound" ; : >"$D/gw32" ; : >"$D/gw1" ; : >"$D/ratio32" ; : >"$D/ratio1"
: >"$D/dpdk32" ; : >"$D/dpdk1" ; : >"$D/dratio32" ; : >"$D/dratio1"
: >"$D/cyc_gw32" ; : >"$D/cyc_gw1" ; : >"$D/cyc_dpdk32" ; : >"$D/cyc_dpdk1"
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
	dpdk_gateway_start "$D/dpdk32-$r"
	dpdk_source_run "$D/dpdk32-$r.json" 32 "$DPDK32_TAPS"
	gateway_stop
	dpdk_gateway_start "$D/dpdk1-$r"
	dpdk_source_run "$D/dpdk1-$r.json" 1 "$DPDK1_TAPS"
	gateway_stop
	rm -rf "$D/gw32-$r" "$D/gw1-$r" "$D/dpdk32-$r" "$D/dpdk1-$r"
	TSC_HZ=$(jget tsc_hz "$D/dpdk32-$r.json")
	gw32=$(jget taps_per_s "$D/gw32-$r.json")
	gw1=$(jget taps_per_s "$D/gw1-$r.json")
	dpdk32=$(jget taps_per_s "$D/dpdk32-$r.json")
	dpdk1=$(jget taps_per_s "$D/dpdk1-$r.json")
	echo "$bound" >>"$D/bound"; echo "$gw32" >>"$D/gw32"; echo "$gw1" >>"$D/gw1"
	echo "$dpdk32" >>"$D/dpdk32"; echo "$dpdk1" >>"$D/dpdk1"
	for x in gw32 gw1 dpdk32 dpdk1; do cycles_per_tap "$D/$x-$r" >>"$D/cyc_$x"; done
	echo "$gw32 $bound" | awk '{ printf "%.3f\n", $1 / $2 }' >>"$D/ratio32"
	echo "$gw1 $bound" | awk '{ printf "%.3f\n", $1 / $2 }' >>"$D/ratio1"
	echo "$dpdk32 $bound" | awk '{ printf "%.3f\n", $1 / $2 }' >>"$D/dratio32"
	echo "$dpdk1 $bound" | awk '{ printf "%.3f\n", $1 / $2 }' >>"$D/dratio1"
	printf '  round %s: bound %.0f/s  io_uring 32/frame %.0f/s  1/frame %.0f/s  DPDK 32/frame %.0f/s  1/frame %.0f/s\n' \
		"$r" "$bound" "$gw32" "$gw1" "$dpdk32" "$dpdk1"
	printf '           ingress cycles/tap: io_uring %s, %s  DPDK %s, %s\n' "$(tail -n 1 "$D/cyc_gw32")" \
		"$(tail -n 1 "$D/cyc_gw1")" "$(tail -n 1 "$D/cyc_dpdk32")" "$(tail -n 1 "$D/cyc_dpdk1")"
done
D32=$(median <"$D/dpdk32"); D1=$(median <"$D/dpdk1")
DR32=$(median <"$D/dratio32"); DR1=$(median <"$D/dratio1")
CG32=$(median <"$D/cyc_gw32"); CG1=$(median <"$D/cyc_gw1")
CD32=$(median <"$D/cyc_dpdk32"); CD1=$(median <"$D/cyc_dpdk1")
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

# Loading the largest real GTFS-Fares v2 feed we test with (MBTA, 1.7 MB), median of 11.
feed_load=$("$BIN/feed_load" -f tests/fares/real/mbta -r 11)
feed_load_s=$(echo "$feed_load" | sed -n 's/.*median_seconds=\([0-9.]*\).*/\1/p')

# Fare engine and settlement: rate a generated business day over the demo
# feed, then close it (median of 3 runs).
fare_s="" fare_tps="" close_s=""
for i in 1 2 3; do
	rm -rf "$D/fare"
	mkdir -p "$D/fare"
	echo "fare day run $i: $FARE_TAPS taps from $FARE_TOKENS tokens, rated and closed" >&2
	out=$("$BIN/fare_day" -d "$D/fare" -n "$FARE_TAPS" -t "$FARE_TOKENS" -S) || { echo "fare_day failed: $out" >&2; exit 1; }
	echo "$out" >&2
	fare_s="$fare_s $(echo "$out" | sed -n 's/.* seconds=\([0-9.]*\).*/\1/p')"
	fare_tps="$fare_tps $(echo "$out" | sed -n 's/.*taps_per_s=\([0-9]*\).*/\1/p')"
	close_s="$close_s $(echo "$out" | sed -n 's/.*close_seconds=\([0-9.]*\).*/\1/p')"
done
median3() { echo "$@" | tr ' ' '\n' | grep . | sort -g | sed -n 2p; }
fare_s=$(median3 $fare_s)
fare_tps=$(median3 $fare_tps)
close_s=$(median3 $close_s)
# Once more while the gateway ingests (2000 taps/s from 32 validators, its own store).
rm -rf "$D/fare"
mkdir -p "$D/fare"
gateway_start "$D/busy"
"$BIN/tapgen" --gateway "127.0.0.1:$PORT" --validators 32 --duration-s 300 --rate 2000 --taps-per-frame 8 \
	>"$D/busy.tapgen" 2>&1 &
TG=$!
out=$("$BIN/fare_day" -d "$D/fare" -n "$FARE_TAPS" -t "$FARE_TOKENS" -S) || { echo "fare_day failed: $out" >&2; exit 1; }
kill -TERM $TG 2>/dev/null || true
wait $TG 2>/dev/null || true
gateway_stop
echo "$out (while the gateway ingested: $(stored "$D/busy") taps stored)" >&2
busy_close_s=$(echo "$out" | sed -n 's/.*close_seconds=\([0-9.]*\).*/\1/p')
rm -rf "$D/fare"

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
row "DPDK (memif) acked taps/s, 32 taps/frame" "$D32" "" ""
row "DPDK (memif) acked taps/s, 1 tap/frame" "$D1" "" ""
row "ratio DPDK/bound, 32 taps/frame" "$DR32" ">=0.8" "$(met "$DR32" 0.8 ">=")"
row "ratio DPDK/bound, 1 tap/frame" "$DR1" "" ""
row "ingress cycles/tap, io_uring, 32 taps/frame" "$CG32" "" ""
row "ingress cycles/tap, DPDK, 32 taps/frame" "$CD32" "<$CG32" "$(met "$CD32" "$((CG32 - 1))" "<=")"
row "ingress cycles/tap, io_uring, 1 tap/frame" "$CG1" "" ""
row "ingress cycles/tap, DPDK, 1 tap/frame" "$CD1" "<$CG1" "$(met "$CD1" "$((CG1 - 1))" "<=")"
for f in 32 1; do
	j="$D/lat$f.json"
	row "ack latency p50 at half load, $f/frame" "$(jget latency_p50_us "$j")" "" ""
	row "ack latency p99 at half load, $f/frame" "$(jget latency_p99_us "$j")" "<=2000" "$(met "$(jget latency_p99_us "$j")" 2000 "<=")"
	row "ack latency p999 at half load, $f/frame" "$(jget latency_p999_us "$j")" "" ""
done
row "dedup rebuild of $REBUILD_TAPS taps, seconds" "$rebuild_s" "<=5" "$(met "$rebuild_s" 5 "<=")"
row "fare rating, taps/s ($FARE_TAPS taps, $FARE_TOKENS tokens)" "$fare_tps" "" ""
row "load the MBTA feed (1.7 MB), seconds" "$feed_load_s" "<=0.2" "$(met "$feed_load_s" 0.2 "<=")"
row "fare rating of the whole day, seconds" "$fare_s" "<=20" "$(met "$fare_s" 20 "<=")"
row "closing the day (rating + batches + files), s" "$close_s" "" ""
row "closing the day while the gateway ingests, s" "$busy_close_s" "<=30" "$(met "$busy_close_s" 30 "<=")"
row "gateway acked taps/s above: QuickPass taps only (--medium quickpass)" "" "" ""
echo
sh bench/storm.sh
