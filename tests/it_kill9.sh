# kill -9 of the gateway in the middle of a load, then a restart on the same
# store: every tap acknowledged before the kill is in the store, and after the
# validators retransmit, each unique tap is there exactly once.
. tests/lib.sh
start_gateway
tapgen --validators 128 --taps 150000 --taps-per-frame 4 --retransmit-rate 0.1 --give-up-s 60 \
	--out "$T/sent.csv" --json "$T/tapgen.json" >"$T/tapgen.out" 2>&1 &
TG=$!
# Kill once some taps are durable, well before the load is over.
wait_metric_at_least tapgate_taps_stored_total 20000
before=$(metric tapgate_taps_stored_total)
kill9_gateway
echo "killed -9 after $before taps stored"
"$BIN/tapdump" -s "$T/store" counts
echo "restarting at $(date +%T.%N)"
start_gateway
echo "restarted at $(date +%T.%N)"
wait $TG || {
	cat "$T/tapgen.out"
	$NS_EXEC curl -sf --max-time 10 "http://127.0.0.1:$METRICS_PORT/metrics" | grep -v '^#' | grep -v '_bucket' >&2
	$NS_EXEC cat /proc/net/udp >&2
	$NS_EXEC ss -uanpm >&2
	ls -l /proc/$GW_PID/task >&2; for t in /proc/$GW_PID/task/*; do echo "$t $(cat $t/comm) $(cat $t/wchan) $(awk '{print $3}' $t/stat)"; done >&2
	fail "tapgen did not get every tap acknowledged"
}
cat "$T/tapgen.out"
stop_gateway
"$BIN/tapdump" -s "$T/store" export --fields identity >"$T/stored.csv"
[ "$(wc -l <"$T/sent.csv")" -eq 150001 ] || fail "tapgen wrote $(wc -l <"$T/sent.csv") lines"
cmp "$T/sent.csv" "$T/stored.csv" || fail "the store differs from what tapgen had acknowledged"
echo "ok: 150000 unique taps exactly once across kill -9 and restart"
