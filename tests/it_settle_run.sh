# tapsettle run, the daemon: it follows the log while the gateway runs, rates
# and closes each business day once its cutoff and grace have passed, writes
# nothing more while nothing is new, and stops cleanly on SIGTERM.
. tests/lib.sh
D=$(business_day 108000)
SETTLE_ARGS="$SETTLE_ARGS -o settle.poll_s=1"
start_gateway
tapgen --validators 16 --taps 8000 --taps-per-frame 8 --network demo --spread-s 172800 --seed 41 \
	>"$T/tg.out" 2>&1 || { cat "$T/tg.out"; fail "tapgen"; }
"$BIN/tapsettle" $SETTLE_ARGS run >"$T/run.out" 2>"$T/run.err" &
RUN=$!
i=0
until settle status 2>/dev/null | grep -q "^day $D round 0"; do
	i=$((i + 1))
	[ $i -lt 100 ] || { cat "$T/run.err"; fail "the daemon did not close $D in 20 s"; }
	kill -0 $RUN 2>/dev/null || { cat "$T/run.err"; fail "the daemon exited"; }
	sleep 0.2
done
echo "closed $D: $(settle status | grep -c '^batch ') batches"
sleep 3 # three more polls: nothing new, nothing written
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
