# A store that fails during a stop: the store's tmpfs fills under a load, then
# SIGTERM. The gateway cannot commit what is queued; it must say so and exit
# non-zero within gateway.stop_timeout_s (here 6 s: the writer retries for a
# third of it), never hang. After the disk has room again, a restarted gateway
# takes the retransmissions: every tap stored exactly once.
. tests/lib.sh
[ "$(id -u)" -eq 0 ] || { echo "skipped: needs root to mount a small tmpfs"; exit 77; }
mkdir "$T/small"
mount -t tmpfs -o size=2m tapgate-test "$T/small" || { echo "skipped: cannot mount a tmpfs here"; exit 77; }
cleanup_mount() { [ -z "$GW_PID" ] || kill -9 "$GW_PID" 2>/dev/null || true; wait 2>/dev/null; umount "$T/small" 2>/dev/null || true; cleanup; }
trap cleanup_mount EXIT INT TERM
start_gateway -s "store.path=$T/small/store" -s store.map_size_mb=64 -s gateway.stop_timeout_s=6
tapgen --validators 32 --taps 60000 --taps-per-frame 8 --give-up-s 600 --out "$T/sent.csv" >"$T/tapgen.out" 2>&1 &
TG=$!
wait_metric_at_least tapgate_commit_failures_total 1
queued=$(metric tapgate_frames_received_total)
kill -TERM "$GW_PID"
# Bounded: 6 s of stop plus start-up slack; 60 s means it hung.
wait_for 60 "the gateway to exit after SIGTERM with a full store" exited "$GW_PID"
rc=0
wait "$GW_PID" || rc=$?
GW_PID=""
[ "$rc" -ne 0 ] || fail "the gateway exited 0 although it could not commit what was queued"
grep -q "the store refused to commit while stopping\|the stop did not finish within 6 s" "$T/gateway.log" ||
	fail "no line saying why the stop failed"
grep -q "tapgate: stopped: frames" "$T/gateway.log" || grep -q "the stop did not finish" "$T/gateway.log" ||
	fail "neither the stop summary nor the timeout line"
grep -E "giving up|refused to commit|did not finish" "$T/gateway.log"
echo "stop with a full store ended with status $rc ($queued frames received); making room"
mount -o remount,size=256m "$T/small"
start_gateway -s "store.path=$T/small/store" -s store.map_size_mb=64
wait $TG || { cat "$T/tapgen.out"; fail "tapgen did not get every tap acknowledged after the restart"; }
stop_gateway
"$BIN/tapdump" -s "$T/small/store" export --fields identity >"$T/stored.csv"
cmp "$T/sent.csv" "$T/stored.csv" || fail "taps lost or doubled across the failed stop"
echo "ok: a stop on a full store exits $rc within its bound; after a restart all 60000 taps are stored once"
