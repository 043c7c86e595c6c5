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
SCHEMAS=$(schemas_dir) || fail "no schemas"
XSD=$SCHEMAS/pain.001.001.10.xsd
command -v xmllint >/dev/null || fail "xmllint is missing (libxml2-utils)"
# A business day that is over (and past the grace) whatever the time now: the day of 30 hours ago.
D=$(business_day 108000)
sums() { (cd "$T/outbox" && find . -path ./reconciliation -prune -o -type f -print | sort | xargs sha256sum); }

start_gateway
tapgen --validators 64 --taps 30000 --taps-per-frame 8 --network demo --spread-s 172800 --seed 11 \
	>"$T/tg1.out" 2>&1 || { cat "$T/tg1.out"; fail "tapgen"; }
today=$(business_day 0)
rc=0; settle close --day "$today" 2>"$T/today.err" || rc=$?
[ $rc -eq 1 ] && grep -q "is not over" "$T/today.err" || fail "closing today, still open, exited $rc: $(cat "$T/today.err")"
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
echo "== the bank's pain.002: one payment rejected, then all accepted"
XSD2=$SCHEMAS/pain.002.001.11.xsd
msg=$(sed -n 's|.*<MsgId>\(.*\)</MsgId>.*|\1|p' "$T"/outbox/payout-*/"$D"-00-*.xml)
pain002() { # GRPSTS TXSTS: a status report on round 0's payout, its first transfer with TXSTS
	e2e=$(sed -n 's|.*<EndToEndId>\(.*\)</EndToEndId>.*|\1|p' "$T"/outbox/payout-*/"$D"-00-*.xml | head -n 1)
	cat <<XML
<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.11">
  <CstmrPmtStsRpt>
    <GrpHdr><MsgId>BANK-$1-$2</MsgId><CreDtTm>2026-03-03T10:00:00Z</CreDtTm></GrpHdr>
    <OrgnlGrpInfAndSts><OrgnlMsgId>$msg</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.10</OrgnlMsgNmId><GrpSts>$1</GrpSts></OrgnlGrpInfAndSts>
    <OrgnlPmtInfAndSts>
      <OrgnlPmtInfId>$msg</OrgnlPmtInfId>
      <TxInfAndSts><OrgnlEndToEndId>$e2e</OrgnlEndToEndId><TxSts>$2</TxSts><StsRsnInf><Rsn><Cd>AC04</Cd></Rsn></StsRsnInf></TxInfAndSts>
    </OrgnlPmtInfAndSts>
  </CstmrPmtStsRpt>
</Document>
XML
}
pain002 PART RJCT >"$T/p002a.xml"
pain002 ACSC ACSC >"$T/p002b.xml"
xmllint --noout --schema "$XSD2" "$T/p002a.xml" "$T/p002b.xml" || fail "the test's pain.002 files are not valid"
rc=0; settle ingest-response "$T/p002a.xml" >"$T/p002a.out" || rc=$?
cat "$T/p002a.out"
[ $rc -eq 3 ] || fail "a rejected payment: ingest-response exited $rc, expected 3"
grep -q "rejected payment TG${D}00OP" "$T/p002a.out" || fail "the rejected payment is not reported"
settle status | grep -q "^batch $D-00-payout-[a-z_0-9]* acknowledged" || fail "the payout batch is not acknowledged"
settle ingest-response "$T/p002b.xml" || fail "an accepted report: ingest-response exited $?"
settle status | grep -q "^batch $D-00-payout-[a-z_0-9]* settled" || fail "the payout batch is not settled"
b=$(settle status | awk '$1 == "batch" && $2 ~ /-00-qr-/ { print $2 }')
rm "$T"/outbox/qr-*/"$D"-00-*.csv
settle resend --batch "$b" || fail "resend exited $?"
python3 tests/settle_check.py "$T/outbox" "$D" "$T/legs.txt" "$XSD" || fail "the files after resend do not check"
settle status | grep -q "^batch $b sent" || fail "the resent batch is not marked sent"
echo "ok: day $D closed in two rounds, files checked independently, reconciled; tampering detected"
# files at rest: the stores and the outbox are not world-readable (tapsettle's own umask and modes)
open=$(find "$T/settle" "$T/rated" "$T/outbox" -perm /o+rwx | head -n 3)
[ -z "$open" ] || fail "world-accessible files at rest: $open"
echo "ok: settle store, rated store and outbox are not world-readable"
