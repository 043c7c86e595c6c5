# Bad input mixed into a load: forged MACs, unknown validators, unknown key
# ids, truncated, oversized, corrupted and garbage datagrams get no
# acknowledgement and are counted by reason; replayed QR codes are rejected
# (qr_reuse); conflicting records are quarantined; the gateway keeps serving.
. tests/lib.sh
# No shedding here: a frame refused unread with a busy reply is never checked, so a bad
# datagram answered busy would not be counted by its reason (it_storm tests shedding).
start_gateway -s gateway.shed_backlog_ms=0
tapgen --validators 32 --taps 20000 --taps-per-frame 4 --bad-mac 40 --bad-validator 30 --bad-key 20 \
	--bad-truncated 10 --bad-oversized 10 --bad-corrupt 25 --bad-garbage 15 --replay-qr 12 --conflict 9 \
	--out "$T/sent.csv" >"$T/tapgen.out" 2>&1 || { cat "$T/tapgen.out"; fail "tapgen exit $? (a status was not the expected one)"; }
cat "$T/tapgen.out"
expect_metric 'tapgate_taps_rejected_total{reason="qr_reuse"}' 12
expect_metric tapgate_taps_conflict_total 9
# Every bad datagram is dropped unacknowledged and counted exactly once. A
# corrupted or garbage datagram may fail on any check (MAC, magic, validator,
# length...), so each kind is a lower bound and the total is exact. tapgen
# ends when its good frames are acknowledged: a bad datagram sent last, or a
# retransmission still in flight, may be counted a moment later, so the test
# waits for the totals (each taken from one scrape) rather than reading them.
# A good frame may also be refused: with a busy reply when the gateway sheds
# load (a slow build, make check), or dropped while its copy is being
# verified, or when a queue is full; tapgen sends it again. So: the bad
# reasons add up to exactly 150, and every frame received is acknowledged,
# dropped or answered busy.
drops() { # FILE REASONS...: the sum of those drop reasons in one scrape
	f=$1
	shift
	sum=0
	for r in "$@"; do
		sum=$((sum + $(awk -v n="tapgate_frames_dropped_total{reason=\"$r\"}" '$1 == n { print $2 }' "$f")))
	done
	echo "$sum"
}
BAD="truncated oversized magic version type malformed validator key mac"
GOOD="ring_full dedup_full stopping verifying busy_full"
scrape() { curl -sf --max-time 10 "http://127.0.0.1:$METRICS_PORT/metrics" >"$T/scrape" || return 1; }
value() { awk -v n="$1" '$1 == n { print $2 }' "$T/scrape"; }
all_counted() {
	scrape && [ "$(drops "$T/scrape" $BAD)" -eq 150 ] &&
		[ "$(value tapgate_frames_acked_total)" -eq "$(($(value tapgate_frames_received_total) - 150 -
			$(drops "$T/scrape" $GOOD) - $(value tapgate_frames_busy_total)))" ]
}
wait_until 60 all_counted || fail "$(drops "$T/scrape" $BAD) bad datagrams dropped, expected 150; acked" \
	"$(value tapgate_frames_acked_total) of $(value tapgate_frames_received_total) frames, $(drops "$T/scrape" $GOOD)" \
	"good ones dropped, $(value tapgate_frames_busy_total) answered busy"
at_least() {
	v=$(value "tapgate_frames_dropped_total{reason=\"$1\"}")
	[ "$v" -ge "$2" ] || fail "dropped for $1: $v, expected at least $2"
}
at_least mac 40
at_least validator 30
at_least key 20
at_least truncated 10
at_least oversized 10
expect_metric tapgate_taps_stored_total 20000
# Still serving after all that.
tapgen --validators 8 --taps 2000 --first-validator 1100 --seed 7 >/dev/null 2>&1 || fail "the gateway stopped serving"
expect_metric tapgate_taps_stored_total 22000
"$BIN/tapdump" -s "$T/store" quarantine >"$T/q.txt"
[ "$(wc -l <"$T/q.txt")" -eq 9 ] || fail "quarantine holds $(wc -l <"$T/q.txt") records, expected 9"
stop_gateway
echo "ok: every kind of bad input counted, no ack for any, conflicts quarantined, QR reuse rejected"
