# tapsettle run's lifecycle: SIGHUP reloads the feed and the counterparties
# before the next cycle (and wakes the sleep between cycles); a reload of a
# broken counterparties file keeps what is in force and says why; SIGTERM
# stops it with status 0 and its stop line.
. tests/lib.sh
start_gateway
tapgen --validators 4 --taps 200 >"$T/tapgen.out" 2>&1 || { cat "$T/tapgen.out"; fail "tapgen"; }
stop_gateway
cp config/counterparties.conf "$T/parties.conf"
"$BIN/tapsettle" $SETTLE_ARGS -o settle.poll_s=3600 -o "settle.counterparties=$T/parties.conf" run \
	>"$T/run.out" 2>"$T/run.log" &
RUN=$!
wait_for 60 "tapsettle run to start" grep -q "tapsettle: following" "$T/run.log"
kill -HUP $RUN
wait_for 60 "the reload line" grep -q "tapsettle: reloaded: feed config/fares-demo (version" "$T/run.log"
printf '[clearing]\nname = \n' >"$T/parties.conf"
kill -HUP $RUN
wait_for 60 "the failed reload line" grep -q "tapsettle: reload failed, the running feed and counterparties stay in force: $T/parties.conf" "$T/run.log"
kill -0 $RUN || fail "tapsettle run ended after a failed reload"
kill -TERM $RUN
rc=0
wait $RUN || rc=$?
[ $rc -eq 0 ] || { cat "$T/run.log"; fail "tapsettle run exited $rc after SIGTERM"; }
grep -q "tapsettle: stopped$" "$T/run.log" || fail "no stop line"
echo "ok: tapsettle run reloads on SIGHUP, keeps its inputs on a broken reload, stops on SIGTERM"
