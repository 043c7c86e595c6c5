# The process lifecycle against the real binaries: --check on good and broken
# settings (exit 0 or 78 with file, line and key), key files refused at start
# (group/other readable, a FIFO, /dev/zero, an all-zero key) without hanging,
# stores created without world access whatever the caller's umask, one
# gateway per store, SIGHUP that reloads instead of killing, and a clean stop.
. tests/lib.sh

# expect_exit CODE TEXT CMD...: CMD must end (within 60 s: never hang) with
# exit status CODE, printing TEXT.
expect_exit() {
	code=$1 text=$2
	shift 2
	rc=0
	timeout 60 "$@" >"$T/out" 2>&1 || rc=$?
	[ "$rc" != 124 ] || fail "hung (killed after 60 s): $*"
	[ "$rc" = "$code" ] || fail "exit $rc, not $code: $*: $(cat "$T/out")"
	grep -qF -- "$text" "$T/out" || fail "no \"$text\" from $*: $(cat "$T/out")"
}
GW="$BIN/tapgate -c config/tapgate.conf -s store.path=$T/store -s settle.path=$T/settle"

# --check
expect_exit 0 "configuration OK: 256 validators" $GW --check
printf '[store]\npath = %s/store\n\nsync = sometimes\n' "$T" >"$T/bad.conf"
printf '[keys]\nqr_platform_public_key = %s\n' "$(awk '/^qr_platform_public_key/ { print $3 }' config/tapgate.conf)" >>"$T/bad.conf"
expect_exit 78 "bad.conf:4: key 'store.sync'" "$BIN/tapgate" --check -c "$T/bad.conf"
touch "$T/plainfile"
expect_exit 78 "command line: key 'store.path': $T/plainfile/store: Not a directory" \
	"$BIN/tapgate" -c config/tapgate.conf -s "store.path=$T/plainfile/store" --check
expect_exit 78 "command line: key 'gateway.listen_address': 'localhost:x' is not an IPv4 or IPv6" \
	$GW -s gateway.listen_address=localhost:x --check
expect_exit 0 "configuration OK" "$BIN/tapsettle" -c config/tapgate.conf -o "settle.path=$T/settle" \
	-o "settle.outbox=$T/outbox" -o "fares.rated_path=$T/rated" --check
expect_exit 78 "missing.conf" "$BIN/tapsettle" -c config/tapgate.conf -o "settle.counterparties=$T/missing.conf" --check
expect_exit 78 "command line: key 'settle.outbox'" "$BIN/tapsettle" -c config/tapgate.conf -o "settle.path=$T/settle" \
	-o "fares.rated_path=$T/rated" -o "settle.outbox=$T/plainfile/outbox" --check

# Key files refused at start, at once.
cp config/dev-validators.keys "$T/keys"
chmod 644 "$T/keys"
expect_exit 78 "mode 0644: a key file must not be readable or writable by group or others" \
	$GW -s "keys.validator_key_file=$T/keys" --check
expect_exit 1 "mode 0644" $GW -s "keys.validator_key_file=$T/keys"
chmod 660 "$T/keys"
expect_exit 1 "mode 0660" $GW -s "keys.validator_key_file=$T/keys"
expect_exit 1 "/dev/zero: not a regular file" $GW -s keys.validator_key_file=/dev/zero
mkfifo "$T/fifo.keys"
expect_exit 1 "fifo.keys: not a regular file" $GW -s "keys.validator_key_file=$T/fifo.keys"
printf '[validator_keys]\n1001/1 = %064d\n' 0 >"$T/zero.keys"
chmod 600 "$T/zero.keys"
expect_exit 1 "zero.keys:2: key '1001/1': all zeros" $GW -s "keys.validator_key_file=$T/zero.keys"

# The programs' own umask: nothing world-readable even when started under umask 000.
umask 000
start_gateway
umask 077
for f in "$T/store" "$T/store/data.mdb" "$T/store/lock.mdb" "$T/store/tapgate.lock"; do
	mode=$(stat -c %a "$f")
	[ $((0$mode & 07)) -eq 0 ] || fail "$f has mode $mode: others may access it"
done

# One gateway per store.
expect_exit 1 "in use by another process (pid $GW_PID holds $T/store/tapgate.lock)" \
	$GW -s gateway.listen_port=$((PORT + 2)) -s gateway.metrics_port=$((PORT + 3))
kill -0 "$GW_PID" || fail "the first gateway died when a second one was refused"

# SIGHUP reloads, it does not kill.
kill -HUP "$GW_PID"
wait_for 60 "the reload line" grep -q "tapgate: reloaded: 256 validators" "$T/gateway.log"
tapgen --validators 8 --taps 2000 --taps-per-frame 4 >"$T/tapgen.out" 2>&1 || { cat "$T/tapgen.out"; fail "taps after SIGHUP"; }
stop_gateway
grep -q "tapgate: stopped: frames" "$T/gateway.log" || fail "no stop line"
# The log file: reopened on SIGHUP (logrotate renames it first); a changed key
# that cannot be reloaded is named as such and keeps its running value.
cp config/tapgate.conf "$T/gw.conf"
wait_for 30 "UDP port $PORT to be released by the previous gateway" udp_port_free "$PORT"
"$BIN/tapgate" -c "$T/gw.conf" -s "store.path=$T/store" -s "settle.path=$T/settle" -s "gateway.listen_port=$PORT" \
	-s "gateway.metrics_port=$METRICS_PORT" -s dedup.taps_max=100000 -s "gateway.log_file=$T/gw.file.log" \
	>"$T/gateway.log" 2>&1 &
GW_PID=$!
wait_for 60 "the gateway on a log file to come up" grep -q "tapgate: ingress" "$T/gw.file.log"
grep -q "tapgate: 256 validators" "$T/gw.file.log" || fail "the start-up line is not in gateway.log_file"
[ ! -s "$T/gateway.log" ] || fail "standard error got lines although gateway.log_file is set: $(cat "$T/gateway.log")"
mv "$T/gw.file.log" "$T/gw.file.log.1"
sed -i 's/^commit_batch_taps = 4096$/commit_batch_taps = 1024/' "$T/gw.conf"
kill -HUP "$GW_PID"
wait_for 60 "the reload line in the reopened log" grep -q "tapgate: reloaded:.*log reopened" "$T/gw.file.log"
grep -q "store.commit_batch_taps changed, but cannot be reloaded" "$T/gw.file.log" || fail "a key that needs a restart was not named"
[ "$(stat -c %a "$T/gw.file.log")" = 640 ] || fail "the log file has mode $(stat -c %a "$T/gw.file.log")"
stop_gateway
grep -q "tapgate: stopped: frames" "$T/gw.file.log" || fail "no stop line in the reopened log"
grep -q "tapgate: reloaded" "$T/gw.file.log.1" && fail "the rotated log got lines after the reload"

echo "ok: --check 0/78 with file, line and key; key files refused at once; stores 0640 at most; one gateway per store; SIGHUP reloads and reopens the log"
