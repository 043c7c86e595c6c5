# The deny list end to end: the acquirer declines charges of a closed day;
# tapsettle ingest-response deny-lists those tokens; the gateway picks the
# list up from the settle store and puts its version in acknowledgements;
# tapgen's validators fetch it (deny-list request, docs/PROTOCOL.md section
# 12) and refuse the tokens' next taps at the validator, so the store gets
# none; presented again when due (debt recovery) and approved, they come off
# the list and ride again.
. tests/lib.sh
D=$(business_day 108000)
start_gateway
tapgen --validators 32 --taps 20000 --taps-per-frame 8 --network demo --spread-s 172800 --seed 31 \
	>"$T/tg1.out" 2>&1 || { cat "$T/tg1.out"; fail "tapgen"; }
settle close --day "$D" >/dev/null 2>&1 || fail "close exited $?"
acq=$(ls "$T"/outbox/acquirer-*/"$D"-00-*.csv)

echo "== the acquirer declines every charge over 5 yuan"
awk -F, 'BEGIN { OFS = "," }
	$1 == "H" { print "H", $2, "2026-01-01T00:00:00Z", $4; next }
	$1 == "D" { st = $7 > 500 ? "D" : "A"; if (st == "A") a += $7; else d += $7; n++; print "R", $2, $3, $7, st, st == "D" ? "51" : "" }
	END { print "T", n, a + 0, d + 0 }' "$acq" >"$T/resp1.csv"
declined=$(grep -c ',D,51$' "$T/resp1.csv")
[ "$declined" -gt 5 ] || fail "only $declined charges over 5 yuan to decline"
settle ingest-response "$T/resp1.csv" >"$T/ingest1.out" || { cat "$T/ingest1.out"; fail "ingest-response exited $?"; }
tail -n 1 "$T/ingest1.out"
settle deny >"$T/deny1.txt"
listed=$(grep -c '^denied quickpass:' "$T/deny1.txt")
[ "$listed" -eq "$declined" ] || fail "$declined declined, $listed on the deny list"
grep '^denied' "$T/deny1.txt" | head -n 20 | sed 's/^denied quickpass:\([0-9]*\) .*/\1/' >"$T/denied"
for tok in $(cat "$T/denied"); do "$BIN/tapdump" -s "$T/store" token "$tok" | grep -c . ; done >"$T/before"
# The gateway reads the list once a second: wait until it serves this version.
deny_version() { settle deny | sed -n 's/^deny list version //p'; }
expect_metric tapgate_deny_list_version "$(deny_version)"

echo "== validators fetch the list and refuse those tokens"
tapgen --validators 32 --taps 20000 --taps-per-frame 8 --network demo --spread-s 172800 --seed 32 \
	--first-validator 1100 --json "$T/tg2.json" >"$T/tg2.out" 2>&1 || { cat "$T/tg2.out"; fail "tapgen (deny list)"; }
grep -E '^(refused_denylisted|deny_requests|deny_list_changes|taps_acked) ' "$T/tg2.out"
refused=$(awk '$1 == "refused_denylisted" { print $2 }' "$T/tg2.out")
changes=$(awk '$1 == "deny_list_changes" { print $2 }' "$T/tg2.out")
[ "$changes" -ge "$listed" ] || fail "validators got $changes changes of the list, $listed are listed"
[ "$refused" -gt 0 ] || fail "no tap of a deny-listed token was refused"
[ "$(metric tapgate_deny_requests_total)" -gt 0 ] || fail "the gateway answered no deny-list request"
for tok in $(cat "$T/denied"); do "$BIN/tapdump" -s "$T/store" token "$tok" | grep -c . ; done >"$T/after"
cmp "$T/before" "$T/after" || fail "the store got taps of deny-listed tokens"

echo "== debt recovery: the debts are presented again when due, the acquirer approves them"
settle recover --day "$D" | tail -n 1 | grep -q "0 debts presented" || fail "debts presented before they were due"
due=$(TZ=UTC date -d "${D} + 2 days" +%Y%m%d)
settle recover --day "$due" >"$T/recover.out" || fail "recover exited $?"
tail -n 1 "$T/recover.out"
rec=$(ls "$T"/outbox/acquirer-*/R"$due"-00-*.csv) || fail "no recovery batch"
[ "$(grep -c '^D,' "$rec")" -eq "$listed" ] || fail "the recovery batch has $(grep -c '^D,' "$rec") items, $listed debts"
settle recover --day "$due" | tail -n 1 | grep -q "0 debts presented" || fail "debts presented twice on one day"
awk -F, 'BEGIN { OFS = "," }
	$1 == "H" { print "H", $2, "2026-01-01T00:00:00Z", $4; next }
	$1 == "D" { a += $7; n++; print "R", $2, $3, $7, "A", "" }
	END { print "T", n, a + 0, 0 }' "$rec" >"$T/resp2.csv"
settle ingest-response "$T/resp2.csv" >"$T/ingest2.out" || { cat "$T/ingest2.out"; fail "ingesting the recovery response exited $?"; }
tail -n 1 "$T/ingest2.out"
[ "$(settle deny | grep -c '^denied')" -eq 0 ] || fail "tokens are still on the deny list"
expect_metric tapgate_deny_list_version "$(deny_version)"
tapgen --validators 32 --taps 20000 --taps-per-frame 8 --network demo --spread-s 172800 --seed 33 \
	--first-validator 1150 >"$T/tg3.out" 2>&1 || { cat "$T/tg3.out"; fail "tapgen (cleared)"; }
refused=$(awk '$1 == "refused_denylisted" { print $2 }' "$T/tg3.out")
[ "$refused" -eq 0 ] || fail "$refused taps refused after the approvals"
stop_gateway
echo "ok: $listed tokens deny-listed, their taps refused at the validators; approved, they ride again"
