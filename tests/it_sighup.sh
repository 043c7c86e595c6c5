# Key rotation by SIGHUP while validators send: a validator signing with key 1
# is acknowledged across a reload that adds key 2, a fleet signing with key 2
# is acknowledged after it, key 1 frames are dropped (never acknowledged, never
# stored) once a reload revokes it, and a reload of a broken key file keeps
# the keys in force. In the store: every tap acknowledged, exactly once, and
# nothing of the revoked key.
. tests/lib.sh
N=16
new_key() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
# keys_file FILE KEYIDS...: the validators 1001..1000+N with the given key ids
# (1: the development key; 2: the one generated for this run), written
# beside FILE and renamed over it, as a deployment tool would.
keys_file() {
	out=$1
	shift
	{
		echo "[validator_keys]"
		for id in "$@"; do
			if [ "$id" = 1 ]; then grep -E "^10(0[1-9]|1[0-6])/1 " config/dev-validators.keys; fi
			if [ "$id" = 2 ]; then cat "$T/key2.lines"; fi
		done
	} >"$out.new"
	chmod 600 "$out.new"
	mv "$out.new" "$out"
}
v=1001
while [ $v -le $((1000 + N)) ]; do echo "$v/2 = $(new_key)"; v=$((v + 1)); done >"$T/key2.lines"
keys_file "$T/keys" 1
start_gateway -s "keys.validator_key_file=$T/keys"
reloads() { grep -c "tapgate: reloaded:" "$T/gateway.log" || true; }

# A load signed with key 1 runs across a reload that adds key 2.
tapgen --validators $N --taps 40000 --taps-per-frame 4 --rate 10000 --seed 11 --first-rider 0 --out "$T/a.csv" >"$T/a.out" 2>&1 &
TG=$!
wait_metric_at_least tapgate_taps_stored_total 4000
keys_file "$T/keys" 1 2
kill -HUP "$GW_PID"
wait_metric_at_least tapgate_key_reloads_total 1
kill -0 $TG 2>/dev/null || fail "the key-1 load ended before the reload took effect: nothing was sent across it"
wait $TG || { cat "$T/a.out"; fail "key-1 frames were not all acknowledged across the reload"; }
tapgen --validators $N --taps 5000 --taps-per-frame 4 --key-id 2 --keys "$T/keys" --seed 12 --first-rider 100000 --out "$T/b.csv" \
	>"$T/b.out" 2>&1 || { cat "$T/b.out"; fail "key-2 frames after the reload"; }

# Revoke key 1: its frames are dropped unacknowledged from then on.
keys_file "$T/keys" 2
before=$(reloads)
kill -HUP "$GW_PID"
wait_for 60 "the second reload" sh -c "[ \$(grep -c 'tapgate: reloaded:' '$T/gateway.log') -gt $before ]"
dropped=$(metric 'tapgate_frames_dropped_total{reason="key"}')
tapgen --validators $N --taps 500 --taps-per-frame 4 --seed 13 --first-rider 200000 --give-up-s 600 --out "$T/c.csv" >"$T/c.out" 2>&1 &
TG=$!
wait_metric_at_least 'tapgate_frames_dropped_total{reason="key"}' $((dropped + N))
kill $TG 2>/dev/null || true
wait $TG 2>/dev/null && fail "tapgen with a revoked key got every tap acknowledged"
tapgen --validators $N --taps 5000 --taps-per-frame 4 --key-id 2 --keys "$T/keys" --seed 14 --first-rider 300000 --out "$T/d.csv" \
	>"$T/d.out" 2>&1 || { cat "$T/d.out"; fail "key-2 frames after key 1 was revoked"; }

# A broken key file: the reload fails, says why, and key 2 stays in force.
printf '[validator_keys]\n1001/2 = not-hex\n' >"$T/keys.new"
chmod 600 "$T/keys.new"
mv "$T/keys.new" "$T/keys"
kill -HUP "$GW_PID"
wait_for 60 "the failed reload line" grep -q "reload failed, the running settings and keys stay in force: $T/keys:2" "$T/gateway.log"
tapgen --validators $N --taps 2000 --taps-per-frame 4 --key-id 2 --keys "$T/keys.kept" --seed 15 --first-rider 400000 --out "$T/e.csv" \
	>"$T/e.out" 2>&1 && fail "tapgen read a key file that does not exist"
keys_file "$T/keys.kept" 2
tapgen --validators $N --taps 2000 --taps-per-frame 4 --key-id 2 --keys "$T/keys.kept" --seed 15 --first-rider 400000 --out "$T/e.csv" \
	>"$T/e.out" 2>&1 || { cat "$T/e.out"; fail "key 2 after a failed reload"; }
stop_gateway

# Each CSV has a header line; the rows are sorted by identity.
"$BIN/tapdump" -s "$T/store" export --fields identity | tail -n +2 >"$T/stored.csv"
for f in a b d e; do tail -n +2 "$T/$f.csv"; done | sort >"$T/acked.csv"
sort "$T/stored.csv" >"$T/stored.sorted"
[ "$(wc -l <"$T/acked.csv")" -eq 52000 ] || fail "$(wc -l <"$T/acked.csv") taps acknowledged, not 52000"
cmp "$T/acked.csv" "$T/stored.sorted" || fail "the store differs from what was acknowledged"
[ "$(sort -u "$T/stored.sorted" | wc -l)" -eq 52000 ] || fail "a tap stored twice"
echo "ok: key 1 acked across the reload, key 2 after it, key 1 refused once revoked, a bad key file kept the keys; 52000 taps stored once each"
