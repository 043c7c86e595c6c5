# The recvmmsg ingress (the fallback where io_uring is refused) runs the same
# pipeline: 30000 taps with retransmissions, each stored exactly once.
. tests/lib.sh
start_gateway -s gateway.ingress=recvmmsg
grep -q "ingress recvmmsg" "$T/gateway.log" || fail "the gateway did not say it uses recvmmsg"
tapgen --validators 32 --taps 30000 --taps-per-frame 4 --retransmit-rate 0.2 --out "$T/sent.csv" >"$T/tapgen.out" 2>&1 ||
	{ cat "$T/tapgen.out"; fail "tapgen exit $?"; }
stop_gateway
"$BIN/tapdump" -s "$T/store" export --fields identity >"$T/stored.csv"
cmp "$T/sent.csv" "$T/stored.csv" || fail "the store differs from what tapgen sent"
echo "ok: recvmmsg ingress, 30000 taps exactly once"
