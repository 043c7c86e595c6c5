# QR codes are verified once per unique tap: copies of decided taps (30% of
# the frames sent again, as if their acks were lost) are answered from the
# dedup set without verifying their Ed25519 signature again; forged codes are
# still rejected (qr_signature), every copy of them checked again.
. tests/lib.sh
start_gateway
tapgen --medium qr --validators 16 --taps 3000 --taps-per-frame 8 --retransmit-rate 0.3 --forged-qr 25 \
	--json "$T/tapgen.json" >"$T/tapgen.out" 2>&1 || { cat "$T/tapgen.out"; fail "tapgen exit $?"; }
cat "$T/tapgen.out"
grep -q '"unacked_taps": *0' "$T/tapgen.json" || fail "tapgen reports unacknowledged taps"
grep -q '"rejected_qr_signature": *25\.' "$T/tapgen.json" || fail "the 25 forged codes were not all rejected qr_signature"
expect_metric tapgate_taps_stored_total 3000
dups=$(metric tapgate_taps_duplicate_total)
[ "$dups" -gt 300 ] || fail "only $dups duplicates for a 30% retransmission rate"
forged=$(metric 'tapgate_taps_rejected_total{reason="qr_signature"}')
verified=$(metric tapgate_qr_signatures_verified_total)
[ "$verified" -eq $((3000 + forged)) ] ||
	fail "$verified signatures verified for 3000 unique codes and $forged forged copies ($dups duplicates)"
stop_gateway
echo "ok: $verified signatures verified for 3000 codes, $dups duplicates and $forged forged copies"
