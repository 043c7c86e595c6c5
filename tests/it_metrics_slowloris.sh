# /metrics under slow clients (slow-loris, docs in gateway/metrics.c and
# README): 300 connections from one address that send a request a byte a
# second (the per-address cap holds 8, the rest are closed at once), 300 more
# from 60 other loopback addresses doing the same (all held: one epoll thread,
# no thread or select() slot per connection), 40 that send nothing and 8 that
# send a byte every 8 s (both closed by the idle timeout). Meanwhile scrapes
# from 127.0.0.1 all answer within 5 s (milliseconds unloaded; the bound is
# for a loaded machine: a blocked endpoint never answers), and a tapgen load
# is acknowledged.
. tests/lib.sh
LORIS=""
trap '[ -z "$LORIS" ] || kill "$LORIS" 2>/dev/null || true; cleanup' EXIT INT TERM
start_gateway
grep -q "tapgate: metrics: at most [0-9]* connections, 8 per client address, closed after 5 s idle" "$T/gateway.log" ||
	fail "the metrics endpoint did not say its bounds"

python3 tests/slowloris.py --port "$METRICS_PORT" --status "$T/loris" --seconds 300 \
	one:127.0.0.2:1:300:1 many:127.0.1.1:60:5:1 idle:127.0.2.1:5:8:0 slower:127.0.2.10:1:8:8 &
LORIS=$!
# field GROUP NAME: one figure of the slow clients' last status.
field() { awk -v g="$1" -v f="$2" '$1 == "group" && $2 == g { for (i = 3; i < NF; i += 2) if ($i == f) print $(i + 1) }' "$T/loris"; }
loris_ready() { kill -0 "$LORIS" 2>/dev/null || fail "slowloris.py exited"; grep -q '^ready 1' "$T/loris" 2>/dev/null; }
wait_for 60 "the slow clients to connect" loris_ready
for g in one many idle slower; do
	[ "$(field $g failed)" = 0 ] || fail "$(field $g failed) connections of group $g could not connect"
done
capped() { [ "$(field one open)" = 8 ] && [ "$(field one closed)" = 292 ] && [ "$(field many open)" = 300 ]; }
wait_until 30 capped || fail "one address holds $(field one open) connections ($(field one closed) closed)," \
	"60 others hold $(field many open) of 300; expected 8 (the cap) and 300"
echo "slow clients: one address holds 8 of 300 (292 closed at once), 60 addresses hold 300"

# scrapes N: N scrapes from 127.0.0.1, each a 200 with the counters within 5 s.
scrapes() {
	for i in $(seq "$1"); do
		out=$(curl -s -o "$T/scrape" -w '%{http_code} %{time_total}' --max-time 10 "http://127.0.0.1:$METRICS_PORT/metrics") ||
			fail "scrape $i with slow clients connected: curl failed ($out)"
		set -- "$1" $out
		[ "$2" = 200 ] && grep -q '^tapgate_taps_stored_total ' "$T/scrape" || fail "scrape $i: status $2"
		awk -v t="$3" 'BEGIN { exit !(t < 5) }' || fail "scrape $i took $3 s"
		echo "$3" >>"$T/scrape_s"
	done
}
tapgen --validators 8 --taps 8000 --taps-per-frame 4 --out "$T/sent.csv" >"$T/tapgen.out" 2>&1 &
TG=$!
scrapes 10
wait $TG || { cat "$T/tapgen.out"; fail "tapgen did not get every tap acknowledged beside the slow clients"; }
expect_metric tapgate_taps_stored_total 8000

timed_out() { [ "$(field idle closed)" = 40 ] && [ "$(field slower closed)" = 8 ]; }
wait_until 60 timed_out || fail "idle connections closed: $(field idle closed) of 40, slow ones $(field slower closed) of 8"
first=$(field idle closed_first_s)
awk -v t="$first" 'BEGIN { exit !(t >= 4) }' || fail "an idle connection was closed after $first s, before the 5 s timeout"
[ "$(field many open)" = 300 ] || fail "dribbling connections were closed: $(field many open) of 300 open"
echo "idle connections closed after $first..$(field idle closed_last_s) s, one byte every 8 s after" \
	"$(field slower closed_first_s)..$(field slower closed_last_s) s"
scrapes 5
kill "$LORIS"
wait "$LORIS" || true
LORIS=""
stop_gateway
mhd=$(grep -c '^tapgate: metrics: ' "$T/gateway.log")
[ "$mhd" -le 12 ] || fail "$mhd libmicrohttpd lines in the log: refused connections flood it"
echo "ok: 15 scrapes beside 600 slow connections, slowest $(sort -n "$T/scrape_s" | tail -n 1) s; 8000 taps acked; idle ones timed out"
