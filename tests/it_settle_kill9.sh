# kill -9 of tapsettle at random points of a close, then a restart: the final
# batches and files are exactly those of a close that was never interrupted
# (the day is rated first, and both runs start from copies of the same
# rated store; the settle store and the outbox are each run's own).
#
# A kill is aimed after the close has recorded its round as pending (it says
# "writing the batches" on stderr, read here through a FIFO, no timer), at a
# random delay up to 1.5 times what a whole close takes. A close that finishes
# before its kill is a clean run, and halves the delays that follow. The test
# runs cycles (each on a fresh settle store and outbox, each ending in an
# uninterrupted restart that must give the reference files) until three kills
# have landed mid-close, a pending round left behind: on a fast machine the
# delays shrink until kills land, so it cannot pass without any kill, nor fail
# for want of one.
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

# close_killed DELAY: a close, killed -9 DELAY seconds after it starts writing
# the batches of its (by then pending) round. Prints "landed" if it died of the
# kill leaving the round pending, "finished" if the round was done first.
close_killed() {
	rm -f "$T/err.fifo"
	mkfifo "$T/err.fifo"
	# tapsettle itself in the background (not a shell function: $! would be a subshell, and the kill would miss it)
	"$BIN/tapsettle" $RUN close --day "$D" >/dev/null 2>"$T/err.fifo" &
	P=$!
	while IFS= read -r line; do
		echo "$line" >>"$T/closes.err"
		case $line in
		*"writing the batches"*) sleep "$1"; kill -9 "$P" 2>/dev/null || true; break ;;
		esac
	done <"$T/err.fifo"
	st=0
	wait "$P" 2>/dev/null || st=$?
	if [ $st -eq 137 ] && [ "$(run status 2>/dev/null | grep -c '^pending')" -gt 0 ]; then echo landed; else echo finished; fi
}

kills=0 clean=0 cycle=0 span_us=$((us * 3 / 2))
while [ $kills -lt 3 ]; do
	cycle=$((cycle + 1))
	[ $cycle -le 20 ] || fail "only $kills kills landed during a close in 20 cycles ($clean closes finished first)"
	rm -rf "$T/settle2" "$T/out2"
	for i in 1 2 3 4 5 6 7 8; do
		delay=$(od -An -N4 -tu4 /dev/urandom | awk -v us="$span_us" '{ printf "%.6f", $1 / 4294967296 * us / 1e6 }')
		outcome=$(close_killed "$delay")
		echo "cycle $cycle attempt $i: kill -9 ${delay}s into writing the batches: $outcome;" \
			"$(run status 2>/dev/null | grep -c '^pending') pending, $(run status 2>/dev/null | grep -c "^day $D round") rounds"
		[ "$outcome" = landed ] || { clean=$((clean + 1)); span_us=$((span_us / 2)); break; }
		kills=$((kills + 1))
	done
	run close --day "$D" >/dev/null || fail "the close after the kills of cycle $cycle exited $?"
	diff -r "$T/out1" "$T/out2" || fail "cycle $cycle: the outbox after kill -9 and restart differs from an uninterrupted close"
done
echo "$kills kills landed during a close in $cycle cycles, $clean closes finished first"
echo "== one tapsettle at a time: a close while another process holds the store is refused"
# The holder says when it holds the lock, and keeps it until told (or until $T goes).
flock "$T/settle2/tapsettle.lock" sh -c ': >"$1"; while [ ! -e "$2" ] && [ -d "$3" ]; do sleep 0.05; done' \
	holder "$T/held" "$T/release" "$T" &
F=$!
wait_for 30 "flock to hold $T/settle2/tapsettle.lock" test -e "$T/held"
rc=0; run close --day "$D" 2>"$T/locked.err" || rc=$?
: >"$T/release"
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
