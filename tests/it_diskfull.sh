# Disk full: the store lives on a 2 MiB tmpfs that fills during a load. The
# gateway acknowledges nothing it could not commit, logs it, keeps running and
# retries; once the disk has room again (remount larger), every tap is stored
# exactly once and acknowledged.
. tests/lib.sh
[ "$(id -u)" -eq 0 ] || { echo "skipped: needs root to mount a small tmpfs"; exit 77; }
mkdir "$T/small"
mount -t tmpfs -o size=2m tapgate-test "$T/small" || { echo "skipped: cannot mount a tmpfs here"; exit 77; }
cleanup_mount() {
	if [ -n "$GW_PID" ]; then kill -9 "$GW_PID" 2>/dev/null || true; wait "$GW_PID" 2>/dev/null || true; GW_PID=""; fi
	umount "$T/small" 2>/dev/null || true
	cleanup
}
trap cleanup_mount EXIT INT TERM
start_gateway -s "store.path=$T/small/store" -s store.map_size_mb=64
tapgen --validators 32 --taps 60000 --taps-per-frame 8 --give-up-s 120 --out "$T/sent.csv" >"$T/tapgen.out" 2>&1 &
TG=$!
wait_metric_at_least tapgate_commit_failures_total 1
stored=$(metric tapgate_taps_stored_total)
failures=$(metric tapgate_commit_failures_total)
# Three more failed attempts (the writer retries after 10, 20, 40... ms): none may count a tap as stored.
wait_metric_at_least tapgate_commit_failures_total $((failures + 3))
kill -0 $TG 2>/dev/null || fail "tapgen finished although the disk is full"
[ "$(metric tapgate_taps_stored_total)" = "$stored" ] || fail "taps counted as stored while every commit fails"
grep -q "commit failed" "$T/gateway.log" || fail "no log line about the failing commit"
echo "disk full after $stored taps; $(metric tapgate_commit_failures_total) failed commits so far; making room"
mount -o remount,size=256m "$T/small"
wait $TG || { cat "$T/tapgen.out"; fail "tapgen did not get every tap acknowledged after the disk had room"; }
stop_gateway
"$BIN/tapdump" -s "$T/small/store" export --fields identity >"$T/stored.csv"
cmp "$T/sent.csv" "$T/stored.csv" || fail "taps lost or doubled across the disk-full episode"
echo "ok: nothing acknowledged while the disk was full, all 60000 taps stored once afterwards"
