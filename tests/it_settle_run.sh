# tapsettle run, the daemon: it follows the log while the gateway runs, rates
# and closes each business day once its cutoff and grace have passed, writes
# nothing more while nothing is new, and stops cleanly on SIGTERM.
. tests/lib.sh
D=$(business_day 108000)
SETTLE_ARGS="$SETTLE_ARGS -o settle.poll_s=1"
start_gateway
tapgen --validators 16 --taps 8000 --taps-per-frame 8 --network demo --spread-s 172800 --seed 41 \
	>"$T/tg.out" 2>&1 || { cat "$T/tg.out"; fail "tapgen"; }
# Line-buffered stdout (stdbuf), so that each poll's line is in run.out when
# it is made; under AddressSanitizer (make check) the preloaded stdbuf library
# must be allowed to come before the ASan runtime.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
	stdbuf -oL "$BIN/tapsettle" $SETTLE_ARGS run >"$T/run.out" 2>"$T/run.err" &
RUN=$!
daemon_closed() {
	kill -0 $RUN 2>/dev/null || { cat "$T/run.err"; fail "the daemon exited"; }
	settle status 2>/dev/null | grep -q "^day $D round 0"
}
wait_for 120 "the daemon to close $D" daemon_closed
echo "closed $D: $(settle status | grep -c '^batch ') batches"
# Three more polls (each prints a line per closable day): nothing new, nothing written.
polls_after_close() { [ "$(grep -c "^day $D: nothing new" "$T/run.out")" -ge 3 ]; }
wait_for 120 "three more polls of the daemon after the close" polls_after_close
[ "$(settle status | grep -c "^day $D round")" -eq 1 ] || fail "the daemon made a second round with nothing new"
kill -TERM $RUN
rc=0
wait $RUN || rc=$?
[ $rc -eq 0 ] || { cat "$T/run.err"; fail "the daemon exited $rc on SIGTERM"; }
grep -q "tapsettle: stopped" "$T/run.err" || fail "no stop line"
stop_gateway
settle reconcile --day "$D" >"$T/rec.txt" || { cat "$T/rec.txt"; fail "reconcile exited $?"; }
tail -n 1 "$T/rec.txt"
echo "ok: the daemon closed $D once and stopped on SIGTERM"
