# Settlement end to end: the real gateway, a tapgen fleet over the demo fare
# network (two days of taps: all three media, transfers, caps, the 1-cent
# promotion, canteen subsidies, incomplete journeys), then tapsettle closes a
# business day while the gateway still runs. Every file is checked by an
# independent script (tests/settle_check.py: checksums, trailers, totals per
# counterparty against the legs, pain.001 against the ISO 20022 schema,
# money conserved); reconciliation passes; closing again writes nothing; a
# depot upload arriving late becomes an adjustment round; a tampered file
# makes reconciliation fail.
. tests/lib.sh
XSD=../shared/schemas/pain.001.001.10.xsd
[ -f "$XSD" ] || fail "$XSD is missing"
command -v xmllint >/dev/null || fail "xmllint is missing (libxml2-utils)"
S="-c config/tapgate.conf -o store.path=$T/store -o fares.rated_path=$T/rated -o settle.path=$T/settle -o settle.outbox=$T/outbox"
settle() { "$BIN/tapsettle" $S "$@"; }
# A business day that is over (and past the grace) whatever the time now: the day of 30 hours ago.
D=$(TZ=Asia/Shanghai date -d "@$(($(date +%s) - 30 * 3600 - 16200))" +%Y%m%d)
sums() { (cd "$T/outbox" && find . -path ./reconciliation -prune -o -type f -print | sort | xargs sha256sum); }

start_gateway
tapgen --validators 64 --taps 30000 --taps-per-frame 8 --network demo --spread-s 172800 --seed 11 \
	>"$T/tg1.out" 2>&1 || { cat "$T/tg1.out"; fail "tapgen"; }
echo "== close $D while the gateway runs"
settle close --day "$D" || fail "tapsettle close exited $?"
settle status
"$BIN/tapfare" -c config/tapgate.conf -r "$T/rated" legs --day "$D" --no-version >"$T/legs.txt"
[ -s "$T/legs.txt" ] || fail "no legs on $D"
python3 tests/settle_check.py "$T/outbox" "$D" "$T/legs.txt" "$XSD" || fail "the files of $D do not check"
rc=0; settle reconcile --day "$D" >"$T/rec0.txt" || rc=$?
[ $rc -eq 0 ] || { cat "$T/rec0.txt"; fail "reconcile exited $rc"; }
tail -n 3 "$T/rec0.txt"

echo "== close again: nothing new, every file byte-identical"
sums >"$T/sums1"
settle close --day "$D" >"$T/close2.out" || fail "second close exited $?"
grep -q "nothing new" "$T/close2.out" || fail "second close: $(cat "$T/close2.out")"
sums >"$T/sums2"
cmp "$T/sums1" "$T/sums2" || fail "closing again changed files"
[ "$(settle status | grep -c "^day $D round")" -eq 1 ] || fail "closing again made a round"

echo "== a depot upload arrives late: taps of $D after its close"
tapgen --validators 16 --taps 3000 --taps-per-frame 8 --network demo --spread-s 172800 --seed 12 \
	--first-validator 1200 >"$T/tg2.out" 2>&1 || { cat "$T/tg2.out"; fail "tapgen (late upload)"; }
settle close --day "$D" >"$T/close3.out" || fail "close after the late upload exited $?"
cat "$T/close3.out"
grep -q "round 1:" "$T/close3.out" || fail "the late taps did not make round 1"
"$BIN/tapfare" -c config/tapgate.conf -r "$T/rated" legs --day "$D" --no-version >"$T/legs.txt"
grep -q " r1 " "$T/legs.txt" || fail "no adjustment legs on $D"
python3 tests/settle_check.py "$T/outbox" "$D" "$T/legs.txt" "$XSD" || fail "the files of $D (two rounds) do not check"
rc=0; settle reconcile --day "$D" >"$T/rec1.txt" || rc=$?
[ $rc -eq 0 ] || { cat "$T/rec1.txt"; fail "reconcile after round 1 exited $rc"; }
tail -n 3 "$T/rec1.txt"
stop_gateway

echo "== a tampered file: reconciliation must fail"
f=$(ls "$T"/outbox/acquirer-*/"$D"-00-*.csv)
cp "$f" "$T/orig.csv"
awk -F, 'BEGIN { OFS = "," } $1 == "D" && !done { $(NF - 1) = $(NF - 1) + 1; done = 1 } { print }' "$T/orig.csv" >"$f"
set +e
settle reconcile --day "$D" >"$T/rec2.txt"
rc=$?
set -e
[ $rc -eq 3 ] || { cat "$T/rec2.txt"; fail "reconcile of a tampered file exited $rc, expected 3"; }
grep MISMATCH "$T/rec2.txt" | head -n 3
cp "$T/orig.csv" "$f"
settle reconcile --day "$D" >/dev/null || fail "reconcile after restoring the file exited $?"
echo "ok: day $D closed in two rounds, files checked independently, reconciled; tampering detected"
