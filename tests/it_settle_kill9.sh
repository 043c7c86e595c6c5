# kill -9 of tapsettle at random points of a close, then a restart: the final
# batches and files are exactly those of a close that was never interrupted
# (the day is rated first, and both runs start from copies of the same
# rated store; the settle store and the outbox are each run's own).
. tests/lib.sh
D=$(business_day 108000)
start_gateway
tapgen --validators 64 --taps 120000 --taps-per-frame 8 --network demo --spread-s 172800 --seed 21 \
	>"$T/tg.out" 2>&1 || { cat "$T/tg.out"; fail "tapgen"; }
stop_gateway
"$BIN/tapfare" -c config/tapgate.conf -s "$T/store" -r "$T/rated" rate --through "$D" 2>/dev/null
cp -a "$T/rated" "$T/rated2"
S="-c config/tapgate.conf -o store.path=$T/store"
ref() { "$BIN/tapsettle" $S -o "fares.rated_path=$T/rated" -o "settle.path=$T/settle1" -o "settle.outbox=$T/out1" "$@"; }
RUN="$S -o fares.rated_path=$T/rated2 -o settle.path=$T/settle2 -o settle.outbox=$T/out2"
run() { "$BIN/tapsettle" $RUN "$@"; }

t0=$(date +%s%N)
ref close --day "$D" 2>/dev/null || fail "reference close exited $?"
us=$((($(date +%s%N) - t0) / 1000))
echo "an uninterrupted close of $D took $us us"

kills=0 finished=0
for i in 1 2 3 4 5 6 7 8 9 10; do
	delay=$(awk -v s="$i$$" -v us="$us" 'BEGIN { srand(s); printf "%.6f", rand() * us * 1.2 / 1e6 }')
	# tapsettle itself in the background (not a shell function: $! would be a subshell, and the kill would miss it)
	"$BIN/tapsettle" $RUN close --day "$D" >/dev/null 2>&1 &
	P=$!
	sleep "$delay"
	kill -9 "$P" 2>/dev/null || true
	st=0
	wait "$P" 2>/dev/null || st=$?
	if [ $st -eq 137 ]; then kills=$((kills + 1)); else finished=$((finished + 1)); fi
	echo "attempt $i: kill -9 after ${delay}s; $(run status 2>/dev/null | grep -c '^pending') pending, $(run status 2>/dev/null | grep -c "^day $D round") rounds"
done
echo "$kills kills landed during a close, $finished closes finished first"
[ "$kills" -gt 0 ] || fail "no kill landed during a close"
echo "== one tapsettle at a time: a close while another process holds the store is refused"
flock "$T/settle2/tapsettle.lock" sleep 3 &
F=$!
sleep 0.5
rc=0; run close --day "$D" 2>"$T/locked.err" || rc=$?
wait $F
[ $rc -eq 2 ] && grep -q "another tapsettle process" "$T/locked.err" || fail "a second close exited $rc: $(cat "$T/locked.err")"
run close --day "$D" || fail "the close after the kills exited $?"
diff -r "$T/out1" "$T/out2" || fail "the outbox after kill -9 and restart differs from an uninterrupted close"
ref status | sed "s|$T/out1|OUT|" >"$T/status1"
run status | sed "s|$T/out2|OUT|" >"$T/status2"
diff "$T/status1" "$T/status2" || fail "the batches differ"
run reconcile --day "$D" >"$T/rec.txt" || { cat "$T/rec.txt"; fail "reconcile exited $?"; }
tail -n 1 "$T/rec.txt"
echo "ok: $kills kill -9 during closes of $D, then the same batches and byte-identical files"
