#!/bin/sh
# The storm rows of make bench (bench/run.sh runs this last; it also runs alone):
#   mix32/mix1   acked taps/s with the default media mix 60/30/10, 32 and 1 taps/frame
#   qrh32/qrh1   the same with a QR-heavy mix 20/20/60
#   storm        the recovery storm: STORM_TAPS (10M) taps, default mix, 10,000 validators
#                (generated keys), every backlog held before the first send, all at once:
#                seconds to drain, and duplicates processed per unique tap
#   qrstorm      a QR-only storm of QR_STORM_TAPS (1M): taps/s against the machine's
#                Ed25519 verification bound measured in the same round (bench/ed25519_bound,
#                one thread per CPU)
#   latency      ack latency p50/p99 at half of the mixed 32/frame maximum
#   each of storm, qrstorm and latency twice, side by side: gateway.qr_verify = before_ack
#                (signatures verified before the ack) and after_commit (verified in the
#                background after the commit; the storm rows then also give the seconds until
#                the background verifier has given every QR tap its verdict, from the storm's start)
#   postgres     PostgreSQL 15 (Debian's) in its own directory on a free port, the same
#                number of taps as batched INSERT ... ON CONFLICT DO NOTHING, 4096 rows a
#                statement, synchronous_commit = on: rows/s, and the gateway's ratio to it
# Medians over BENCH_STORM_ROUNDS (default BENCH_ROUNDS, 3). Same store settings as the
# other rows: sync full, commit batch 4096. Only public tools; figures from the programs.
# BENCH_STORM_ONLY narrows it to some of: mix storm qrstorm latency postgres (default: all;
# latency needs mix); BENCH_STORM_MODES to some of: before_ack after_commit.
set -eu
BUILD=${BUILD:-build}
BIN=$BUILD/bin
ROUNDS=${BENCH_STORM_ROUNDS:-${BENCH_ROUNDS:-3}}
MIX32_TAPS=${BENCH_MIX32_TAPS:-300000}
MIX1_TAPS=${BENCH_MIX1_TAPS:-50000}
STORM_TAPS=${BENCH_STORM_TAPS:-10000000}
STORM_VALIDATORS=${BENCH_STORM_VALIDATORS:-10000}
QR_STORM_TAPS=${BENCH_QR_STORM_TAPS:-1000000}
PG_ROWS=${BENCH_PG_ROWS:-1000000}
ONLY=${BENCH_STORM_ONLY:-mix storm qrstorm latency postgres}
MODES=${BENCH_STORM_MODES:-before_ack after_commit}
PORT=$((40000 + $$ % 10000))
MPORT=$((PORT + 2))
D=$(mktemp -d /var/tmp/tapgate-storm.XXXXXX)
GW=""
PG=""
cleanup() {
	[ -z "$GW" ] || kill -9 "$GW" 2>/dev/null || true
	[ -z "$PG" ] || $PG_AS "$PG_BIN/pg_ctl" -D "$D/pg" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$D"
}
trap cleanup EXIT INT TERM

jget() { sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p" "$2" | head -n 1; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { echo "$1 $2" | awk '{ printf "%.3f\n", ($2 > 0 ? $1 / $2 : 0) }'; }

"$BIN/tapgen" --write-keys "$D/fleet.keys" --validators "$STORM_VALIDATORS"
wants() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }
gateway_start() { # gateway_start NAME [QR_VERIFY]: a fresh store $D/NAME, log $D/NAME.log
	"$BIN/tapgate" -c config/tapgate.conf -s "store.path=$D/$1" -s "gateway.listen_port=$PORT" \
		-s gateway.metrics_port=$MPORT -s store.sync=full -s store.commit_batch_taps=4096 \
		-s "gateway.qr_verify=${2:-before_ack}" \
		-s dedup.taps_max=16777216 -s "keys.validator_key_file=$D/fleet.keys" >"$D/$1.log" 2>&1 &
	GW=$!
	until grep -q "ingress" "$D/$1.log" 2>/dev/null; do
		kill -0 "$GW" 2>/dev/null || { cat "$D/$1.log"; exit 1; }
		sleep 0.1
	done
}
gateway_stop() { # gateway_stop NAME: the store goes, the log stays
	kill -TERM "$GW"
	wait "$GW"
	GW=""
	rm -rf "${D:?}/$1"
}
tapgen_run() { # tapgen_run NAME [options]: $D/NAME.json
	name=$1
	shift
	"$BIN/tapgen" --gateway "127.0.0.1:$PORT" --keys "$D/fleet.keys" --json "$D/$name.json" "$@" \
		>"$D/$name.out" 2>&1 || { cat "$D/$name.out"; echo "bench: tapgen failed" >&2; exit 1; }
}
# verified_s START_NS END_NS JSON: seconds from the storm's first send (tapgen's own start-up,
# generating the taps, taken off: its wall time less its "seconds") until the gateway reports no
# QR signature pending. In before_ack mode that is the drain.
pending() { curl -sf --max-time 10 "http://127.0.0.1:$MPORT/metrics" |
	awk '$1 == "tapgate_qr_signatures_pending" { print $2 }'; }
verified_s() {
	until [ "$(pending)" = 0 ]; do sleep 0.1; done
	echo "$1 $2 $(date +%s%N) $(jget seconds "$3")" |
		awk '{ setup = ($2 - $1) / 1e9 - $4; printf "%.1f\n", ($3 - $1) / 1e9 - setup }'
}
# The gateway's stop line: "... taps N stored, M duplicate, ...".
dups_per_tap() { sed -n 's/.* taps \([0-9]*\) stored, \([0-9]*\) duplicate.*/\2 \1/p' "$D/$1.log" |
	awk '{ printf "%.4f\n", ($2 > 0 ? $1 / $2 : 0) }'; }

run_mix() { # run_mix NAME MIX TPF TAPS
	gateway_start "$1"
	tapgen_run "$1" --validators 256 --window 8 --mix "$2" --taps-per-frame "$3" --taps "$4"
	gateway_stop "$1"
	jget taps_per_s "$D/$1.json" >>"$D/$5"
}

echo "tapgate storm bench: $ROUNDS rounds, in $D (rows: $ONLY; modes: $MODES)"
for r in $(seq "$ROUNDS"); do
	if wants mix; then
		run_mix "mix32-$r" 60,30,10 32 "$MIX32_TAPS" mix32
		run_mix "mix1-$r" 60,30,10 1 "$MIX1_TAPS" mix1
		run_mix "qrh32-$r" 20,20,60 32 "$MIX32_TAPS" qrh32
		run_mix "qrh1-$r" 20,20,60 1 "$MIX1_TAPS" qrh1
		printf '  round %s: mixed %s/s (1/frame %s)  QR-heavy %s/s (1/frame %s)\n' "$r" "$(tail -n 1 "$D/mix32")" \
			"$(tail -n 1 "$D/mix1")" "$(tail -n 1 "$D/qrh32")" "$(tail -n 1 "$D/qrh1")"
	fi
	for m in $MODES; do
		if wants storm; then
			gateway_start "storm-$m-$r" "$m"
			start_ns=$(date +%s%N)
			tapgen_run "storm-$m-$r" --validators "$STORM_VALIDATORS" --window 4 --taps-per-frame 32 \
				--taps "$STORM_TAPS" --backlog --give-up-s 120
			verified_s "$start_ns" "$(date +%s%N)" "$D/storm-$m-$r.json" >>"$D/storm_verified_s.$m"
			gateway_stop "storm-$m-$r"
			jget seconds "$D/storm-$m-$r.json" >>"$D/storm_s.$m"
			dups_per_tap "storm-$m-$r" >>"$D/storm_dups.$m"
			printf '  round %s, %s: storm %s s to drain, %s dup/tap, every QR verdict after %s s\n' "$r" "$m" \
				"$(tail -n 1 "$D/storm_s.$m")" "$(tail -n 1 "$D/storm_dups.$m")" "$(tail -n 1 "$D/storm_verified_s.$m")"
		fi
		if wants qrstorm; then
			bound=$("$BIN/ed25519_bound" -s 3 | sed -n 's/.*verifies_per_s=\([0-9]*\).*/\1/p')
			echo "$bound" >>"$D/ed_bound"
			gateway_start "qrstorm-$m-$r" "$m"
			start_ns=$(date +%s%N)
			tapgen_run "qrstorm-$m-$r" --validators "$STORM_VALIDATORS" --window 4 --taps-per-frame 32 --medium qr \
				--taps "$QR_STORM_TAPS" --backlog --give-up-s 120
			verified_s "$start_ns" "$(date +%s%N)" "$D/qrstorm-$m-$r.json" >>"$D/qrstorm_verified_s.$m"
			gateway_stop "qrstorm-$m-$r"
			q=$(jget taps_per_s "$D/qrstorm-$m-$r.json")
			echo "$q" >>"$D/qrstorm.$m"
			ratio "$q" "$bound" >>"$D/qrstorm_ratio.$m"
			printf '  round %s, %s: QR storm %s/s of %s verifies/s, every QR verdict after %s s\n' "$r" "$m" "$q" \
				"$bound" "$(tail -n 1 "$D/qrstorm_verified_s.$m")"
		fi
	done
done
if wants mix; then M32=$(median <"$D/mix32"); fi
if wants latency && wants mix; then
	half=$(echo "$M32" | awk '{ printf "%d", $1 / 2 }')
	for m in $MODES; do
		gateway_start "latency-$m" "$m"
		tapgen_run "latency-$m" --validators 256 --window 8 --taps-per-frame 32 \
			--taps "$(echo "$half" | awk '{ printf "%d", $1 * 5 }')" --rate "$half" --linger-ms 20
		gateway_stop "latency-$m"
	done
fi

pg_rows_s=""
if wants postgres; then
# PostgreSQL 15: its own cluster, as a non-root user (initdb refuses root).
PG_BIN=/usr/lib/postgresql/15/bin
PG_AS=""
[ "$(id -u)" -ne 0 ] || PG_AS="runuser -u nobody --"
chmod 711 "$D"
mkdir -p "$D/pg" "$D/pgsock"
[ -z "$PG_AS" ] || chown nobody "$D/pg" "$D/pgsock"
PGPORT=$((PORT + 1))
$PG_AS "$PG_BIN/initdb" -D "$D/pg" -A trust -U bench >"$D/pg.init.log" 2>&1 || { cat "$D/pg.init.log"; exit 1; }
$PG_AS "$PG_BIN/pg_ctl" -D "$D/pg" -l "$D/pgsock/log" -w \
	-o "-p $PGPORT -k $D/pgsock -c listen_addresses= -c synchronous_commit=on -c fsync=on" start >/dev/null
PG=1
psql_run() { $PG_AS psql -q -X -v ON_ERROR_STOP=1 -h "$D/pgsock" -p "$PGPORT" -U bench -d postgres "$@"; }
psql_run -c "CREATE TABLE taps (identity bytea PRIMARY KEY, content bigint NOT NULL, seq bigint NOT NULL, record bytea NOT NULL)"
# The taps: a 16-byte identity, a content hash and a 62-byte record (an e-purse tap), 4096 to a statement.
awk -v n="$PG_ROWS" 'BEGIN { srand(1); q = sprintf("%c", 39)
	for (i = 0; i < n; i++) {
		id = ""; for (k = 0; k < 4; k++) id = id sprintf("%08x", int(rand() * 4294967295))
		rec = ""; for (k = 0; k < 16; k++) rec = rec sprintf("%08x", int(rand() * 4294967295))
		printf "%s(%s\\x%s%s, %d, %d, %s\\x%s%s)", (i % 4096 == 0 ? "INSERT INTO taps VALUES " : ", "),
			q, id, q, int(rand() * 2147483647), i, q, substr(rec, 1, 124), q
		if (i % 4096 == 4095 || i == n - 1) print " ON CONFLICT DO NOTHING;"
	} }' >"$D/taps.sql"
start=$(date +%s.%N)
psql_run -f "$D/taps.sql"
end=$(date +%s.%N)
rows=$(psql_run -At -c "SELECT count(*) FROM taps")
$PG_AS "$PG_BIN/pg_ctl" -D "$D/pg" -m fast stop >/dev/null
PG=""
pg_rows_s=$(echo "$rows $start $end" | awk '{ printf "%.0f\n", $1 / ($3 - $2) }')

fi
echo
echo "== tapgate storm bench (medians of $ROUNDS rounds; latency in microseconds)"
row() { printf '%-58s %12s %10s %s\n' "$1" "$2" "$3" "$4"; }
met() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { print ((op == ">=" ? v >= t : v <= t) ? "yes" : "NO") }'; }
row "measure" "value" "target" "met"
if wants mix; then
	row "acked taps/s, mix 60/30/10, 32 taps/frame" "$M32" "" ""
	row "acked taps/s, mix 60/30/10, 1 tap/frame" "$(median <"$D/mix1")" "" ""
	row "acked taps/s, QR-heavy 20/20/60, 32 taps/frame" "$(median <"$D/qrh32")" "" ""
	row "acked taps/s, QR-heavy 20/20/60, 1 tap/frame" "$(median <"$D/qrh1")" "" ""
fi
if wants qrstorm; then row "Ed25519 verifies/s, all cores (bench/ed25519_bound)" "$(median <"$D/ed_bound")" "" ""; fi
for m in $MODES; do
	if wants storm; then
		S=$(median <"$D/storm_s.$m"); SD=$(median <"$D/storm_dups.$m")
		row "[$m] storm: $STORM_TAPS taps, $STORM_VALIDATORS validators, s to drain" "$S" "<=15" "$(met "$S" 15 "<=")"
		row "[$m] storm: duplicates processed per unique tap" "$SD" "<=0.1" "$(met "$SD" 0.1 "<=")"
		row "[$m] storm: s from first send to every QR verdict" "$(median <"$D/storm_verified_s.$m")" "" ""
	fi
	if wants qrstorm; then
		row "[$m] QR-only storm: $QR_STORM_TAPS taps, acked taps/s" "$(median <"$D/qrstorm.$m")" "" ""
		QR=$(median <"$D/qrstorm_ratio.$m")
		if [ "$m" = before_ack ]; then
			row "[$m] QR-only storm / verification bound" "$QR" ">=0.8" "$(met "$QR" 0.8 ">=")"
		else # acks no longer wait for verification: the ratio says how far past the bound they go
			row "[$m] QR-only storm / verification bound" "$QR" "" ""
		fi
		row "[$m] QR-only storm: s from first send to every verdict" "$(median <"$D/qrstorm_verified_s.$m")" "" ""
	fi
	if wants latency && wants mix; then
		P99=$(jget latency_p99_us "$D/latency-$m.json")
		row "[$m] ack latency p50 at half of mixed max, 32/frame" "$(jget latency_p50_us "$D/latency-$m.json")" "" ""
		row "[$m] ack latency p99 at half of mixed max, 32/frame" "$P99" "<=2000" "$(met "$P99" 2000 "<=")"
	fi
done
if wants postgres; then
	row "PostgreSQL 15 rows/s (INSERT ON CONFLICT, 4096/stmt, sync)" "$pg_rows_s" "" ""
	if wants mix; then row "gateway mixed 32/frame / PostgreSQL" "$(ratio "$M32" "$pg_rows_s")" "" ""; fi
fi
