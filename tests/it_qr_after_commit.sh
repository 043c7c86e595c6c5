# gateway.qr_verify = after_commit: QR signatures verified after the commit,
# in the background (docs/DESIGN-NOTES.md, docs/PROTOCOL.md 7).
# 1. A QR-heavy small storm (2,000 validators, every backlog at once, short
#    retransmission timeout, forged codes among them): every tap acked exactly
#    once, forged codes acked stored, the store equal to the sent set; once the
#    pending gauge is 0 every forged code is quarantined with reason
#    qr_signature, and only they.
# 2. kill -9 while verdicts are pending: the store keeps the durable frontier;
#    tapfare rates only through it (saying how many taps wait); after the
#    restart every pending tap gets its verdict, each forged one quarantined once.
# 3. Rated days with forged codes on them (the demo network): tapsettle closes
#    the day, its legs cover every genuine tap and no forged one, and
#    reconciliation passes with the forged codes counted as quarantined.
. tests/lib.sh
"$BIN/tapgen" --write-keys "$T/fleet.keys" --validators 4000 || fail "cannot write the fleet's keys"
GW="-s keys.validator_key_file=$T/fleet.keys -s gateway.qr_verify=after_commit -s gateway.shed_backlog_ms=20"
j() { sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p" "$2"; }
counts() { "$BIN/tapdump" -s "$T/store" counts | awk -v k="$1" '$1 == k { print $2 }'; }
forged_listed() { "$BIN/tapdump" -s "$T/store" quarantine | grep -c ' reason=qr_signature$' || true; }
pending_zero() { metric_is tapgate_qr_signatures_pending 0; }

echo "== 1. a QR-heavy storm in after_commit mode"
start_gateway $GW
TAPS=100000
tapgen --keys "$T/fleet.keys" --validators 2000 --taps $TAPS --mix 20,20,60 --taps-per-frame 16 --window 4 \
	--retry-ms 50 --backlog --forged-qr 50 --forged-qr-expect stored --give-up-s 120 --out "$T/sent.csv" \
	--json "$T/tg1.json" >"$T/tg1.out" 2>&1 || { cat "$T/tg1.out"; fail "tapgen exit $?"; }
[ "$(j unacked_taps "$T/tg1.json")" = 0 ] || fail "tapgen reports $(j unacked_taps "$T/tg1.json") unacknowledged taps"
[ "$(j taps_acked "$T/tg1.json")" = $TAPS ] || fail "tapgen reports $(j taps_acked "$T/tg1.json") taps acked, not $TAPS"
[ "$(j rejected_qr_signature "$T/tg1.json")" = 0 ] || fail "forged codes were rejected at the ack in after_commit mode"
expect_metric tapgate_taps_stored_total $((TAPS + 50))
wait_for 300 "tapgate_qr_signatures_pending to reach 0" pending_zero
[ "$(metric tapgate_qr_forged_total)" = 50 ] || fail "tapgate_qr_forged_total is $(metric tapgate_qr_forged_total), not 50"
grep -q "forged QR code: seq [0-9]* from validator [0-9]*" "$T/gateway.log" || fail "no forged code named in the log"
stop_gateway
"$BIN/tapdump" -s "$T/store" export --fields identity >"$T/stored.csv"
cmp "$T/sent.csv" "$T/stored.csv" || fail "the store differs from what tapgen sent"
[ "$(forged_listed)" = 50 ] || fail "tapdump quarantine lists $(forged_listed) forged codes, not 50"
[ "$(counts qr_signatures_pending)" = 0 ] || fail "tapdump counts: $(counts qr_signatures_pending) pending"
[ "$(counts qr_verified_seq)" = "$(counts last_seq)" ] || fail "the frontier is not at the log's end"

echo "== 2. kill -9 with verdicts pending"
start_gateway $GW
tapgen --keys "$T/fleet.keys" --validators 500 --first-validator 3001 --medium qr --taps 60000 --taps-per-frame 4 --seed 22 \
	--forged-qr 40 --forged-qr-expect stored --give-up-s 120 --json "$T/tg2.json" >"$T/tg2.out" 2>&1 &
TG=$!
wait_metric_at_least tapgate_taps_stored_total 5000
wait_for 120 "QR signatures pending during the load" metric_at_least tapgate_qr_signatures_pending 1
kill9_gateway
pending=$(counts qr_signatures_pending)
frontier=$(counts qr_verified_seq)
last=$(counts last_seq)
echo "killed -9: $pending QR signatures pending after seq $frontier (log ends at $last)"
[ "$pending" -gt 0 ] && [ "$frontier" -lt "$last" ] || fail "no verdict was pending in the store at the kill"
"$BIN/tapfare" -c config/tapgate.conf -s "$T/store" -r "$T/rated" rate --through "$(business_day 108000)" \
	>"$T/rate0.out" 2>"$T/rate0.err" || { cat "$T/rate0.err"; fail "tapfare rate exited $?"; }
grep -q "taps after seq $frontier wait for the gateway to verify their QR signatures" "$T/rate0.err" ||
	fail "tapfare did not say that taps wait for their verdicts: $(cat "$T/rate0.err")"
grep -q "$((last - frontier)) taps after seq $frontier waiting" "$T/rate0.out" || fail "tapfare: $(cat "$T/rate0.out")"
forged_before=$(forged_listed)
start_gateway $GW
grep -q "signatures pending after seq $frontier from an earlier run" "$T/gateway.log" ||
	fail "the restarted gateway did not resume from the durable frontier"
wait $TG || { cat "$T/tg2.out"; fail "tapgen did not get every tap acknowledged across the kill"; }
[ "$(j unacked_taps "$T/tg2.json")" = 0 ] || fail "tapgen (2) reports unacknowledged taps"
wait_for 300 "tapgate_qr_signatures_pending to reach 0 after the restart" pending_zero
stop_gateway
[ "$(counts qr_signatures_pending)" = 0 ] || fail "tapdump counts: $(counts qr_signatures_pending) pending after the restart"
[ "$(counts qr_verified_seq)" = "$(counts last_seq)" ] || fail "the frontier is not at the log's end after the restart"
[ "$(counts qr_forged)" = 90 ] || fail "$(counts qr_forged) forged codes quarantined, not 50 + 40 (before the restart: $forged_before)"
[ "$("$BIN/tapdump" -s "$T/store" quarantine | awk '/reason=qr_signature$/ { print $1 }' | sort -u | wc -l)" = 90 ] ||
	fail "a forged code is quarantined twice or not at all"

echo "== 3. rated days with forged codes on them"
D=$(business_day 108000)
start_gateway $GW
tapgen --keys "$T/fleet.keys" --validators 64 --first-validator 3601 --first-rider 3000000 --taps 20000 \
	--taps-per-frame 8 --network demo --spread-s 172800 --seed 16 --forged-qr 60 --forged-qr-expect stored \
	>"$T/tg3.out" 2>&1 || { cat "$T/tg3.out"; fail "tapgen (demo network) exit $?"; }
wait_for 300 "tapgate_qr_signatures_pending to reach 0 (demo network)" pending_zero
settle close --day "$D" >"$T/close.out" 2>&1 || { cat "$T/close.out"; fail "tapsettle close exited $?"; }
rc=0; settle reconcile --day "$D" >"$T/rec.txt" || rc=$?
[ $rc -eq 0 ] || { cat "$T/rec.txt"; fail "reconcile exited $rc"; }
grep "^.*taps: " "$T/rec.txt"
quarantined=$(sed -n 's/.*taps: .* \([0-9]*\) quarantined (conflicts and forged QR codes.*/\1/p' "$T/rec.txt")
[ -n "$quarantined" ] && [ "$quarantined" -gt 0 ] || fail "no forged code of $D counted as quarantined: $(grep 'taps: ' "$T/rec.txt")"
# Reconciliation's taps line passed: the day's legs cover exactly the log's taps of the day less
# the forged ones; a forged tap rated would be a leg's tap not in that set, and fail it.
"$BIN/tapdump" -s "$T/store" quarantine | awk '/reason=qr_signature$/ { print $1 }' | sort >"$T/forged.seqs"
stop_gateway
[ "$(wc -l <"$T/forged.seqs")" = 150 ] || fail "$(wc -l <"$T/forged.seqs") forged codes quarantined, not 150"
echo "ok: forged QR codes acked stored, quarantined with reason qr_signature after their commit (150, once each, across kill -9), never rated: $quarantined on $D"
