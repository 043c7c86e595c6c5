# A small recovery storm: 2,000 validators with generated keys, a QR-heavy
# mix (20/20/60), every validator's backlog at once, a short retransmission
# timeout (50 ms) and a shedding budget under it (20 ms). Every tap is
# acknowledged exactly once, the store holds exactly the sent set, the gateway
# answered busy and tapgen honoured every retry-after, duplicates processed
# stay under 0.1 per unique tap, and forged QR codes are still rejected.
. tests/lib.sh
"$BIN/tapgen" --write-keys "$T/fleet.keys" --validators 2000 || fail "cannot write the fleet's keys"
start_gateway -s "keys.validator_key_file=$T/fleet.keys" -s gateway.shed_backlog_ms=20
TAPS=150000
tapgen --keys "$T/fleet.keys" --validators 2000 --taps $TAPS --mix 20,20,60 --taps-per-frame 16 --window 4 \
	--retry-ms 50 --backlog --forged-qr 50 --give-up-s 120 --out "$T/sent.csv" --json "$T/tapgen.json" \
	>"$T/tapgen.out" 2>&1 || { cat "$T/tapgen.out"; fail "tapgen exit $?"; }
cat "$T/tapgen.out"
j() { sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p" "$T/tapgen.json"; }
[ "$(j unacked_taps)" = 0 ] || fail "tapgen reports $(j unacked_taps) unacknowledged taps"
[ "$(j taps_acked)" = $TAPS ] || fail "tapgen reports $(j taps_acked) taps acknowledged, not $TAPS"
[ "$(j rejected_qr_signature)" -ge 50 ] || fail "only $(j rejected_qr_signature) of 50 forged codes rejected qr_signature"
[ "$(j busy_received)" -gt 0 ] || fail "the gateway never answered busy: the storm was not a storm"
[ "$(j sent_before_retry_after)" = 0 ] || fail "tapgen sent $(j sent_before_retry_after) frames before a retry-after passed"
expect_metric tapgate_taps_stored_total $TAPS
busy=$(metric tapgate_frames_busy_total)
[ "$busy" -gt 0 ] || fail "tapgate_frames_busy_total is $busy"
dups=$(metric tapgate_taps_duplicate_total)
[ "$dups" -le $((TAPS / 10)) ] || fail "$dups duplicates processed for $TAPS unique taps (bound: 0.1 per tap)"
verified=$(metric tapgate_qr_signatures_verified_total)
forged=$(metric 'tapgate_taps_rejected_total{reason="qr_signature"}')
qr=$(grep -c ',qr,' "$T/sent.csv")
[ "$verified" -le $((qr + forged + qr / 20)) ] || fail "$verified signatures verified for $qr codes and $forged forged copies"
stop_gateway
"$BIN/tapdump" -s "$T/store" export --fields identity >"$T/stored.csv"
cmp "$T/sent.csv" "$T/stored.csv" || fail "the store differs from what tapgen sent"
echo "ok: $TAPS taps from 2000 validators stored exactly once; $busy busy replies, $dups duplicates, $verified signatures for $qr codes"
