# 200,000 taps with 30% retransmissions over the real gateway: every tap is
# acknowledged, and the store holds exactly the unique set tapgen sent.
. tests/lib.sh
start_gateway
tapgen --validators 128 --taps 200000 --taps-per-frame 8 --retransmit-rate 0.3 \
	--out "$T/sent.csv" --json "$T/tapgen.json" >"$T/tapgen.out" 2>&1 || { cat "$T/tapgen.out"; fail "tapgen exit $?"; }
cat "$T/tapgen.out"
grep -q '"unacked_taps": *0' "$T/tapgen.json" || fail "tapgen reports unacknowledged taps"
expect_metric tapgate_taps_stored_total 200000
dups=$(metric tapgate_taps_duplicate_total)
[ "$dups" -gt 20000 ] || fail "only $dups duplicates for a 30% retransmission rate"
stop_gateway
"$BIN/tapdump" -s "$T/store" export --fields identity >"$T/stored.csv"
[ "$(wc -l <"$T/sent.csv")" -eq 200001 ] || fail "tapgen wrote $(wc -l <"$T/sent.csv") lines, expected 200001"
cmp "$T/sent.csv" "$T/stored.csv" || fail "the store differs from what tapgen sent (diff: $(diff "$T/sent.csv" "$T/stored.csv" | head -5))"
echo "ok: 200000 unique taps stored exactly once, $dups duplicates acknowledged"
