# A 1 MiB map fills within the first thousands of taps: the writer grows the
# map and goes on, and no tap is lost.
. tests/lib.sh
start_gateway -s store.map_size_mb=1
tapgen --validators 32 --taps 60000 --taps-per-frame 8 --out "$T/sent.csv" >"$T/tapgen.out" 2>&1 ||
	{ cat "$T/tapgen.out"; fail "tapgen exit $?"; }
grows=$(metric tapgate_map_grows_total)
[ "$grows" != missing ] && [ "$grows" -ge 2 ] || fail "map grown $grows times, expected at least 2"
grep -q "map full, grown" "$T/gateway.log" || fail "no log line about the map growing"
stop_gateway
"$BIN/tapdump" -s "$T/store" export --fields identity >"$T/stored.csv"
cmp "$T/sent.csv" "$T/stored.csv" || fail "taps lost or doubled across map growth"
echo "ok: map grown $grows times, 60000 taps stored"
