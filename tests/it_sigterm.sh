# SIGTERM in the middle of a load: the gateway stops receiving, commits what is
# queued, acknowledges it and exits 0; after a restart every unique tap is
# stored exactly once.
. tests/lib.sh
start_gateway
tapgen --validators 64 --taps 100000 --taps-per-frame 8 --give-up-s 60 --out "$T/sent.csv" >"$T/tapgen.out" 2>&1 &
TG=$!
wait_metric_at_least tapgate_taps_stored_total 10000
stop_gateway
grep -q "tapgate: stopped" "$T/gateway.log" || fail "no stop summary in the log"
start_gateway
wait $TG || { cat "$T/tapgen.out"; fail "tapgen did not get every tap acknowledged"; }
stop_gateway
"$BIN/tapdump" -s "$T/store" export --fields identity >"$T/stored.csv"
cmp "$T/sent.csv" "$T/stored.csv" || fail "the store differs from what tapgen had acknowledged"
echo "ok: SIGTERM mid-load exits 0, 100000 taps exactly once after restart"
