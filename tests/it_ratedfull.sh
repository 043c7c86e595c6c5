# A full disk under the rated store: tapfare rate exits non-zero with a
# message naming the store and the full disk (no SIGBUS: the rated store is
# written with pwrite, not through a writable map); once the disk has room
# (remount larger), the next run resumes, and the legs and the audit table
# are exactly those of a run on a disk that never filled. The stores it
# creates are not world-readable.
. tests/lib.sh
[ "$(id -u)" -eq 0 ] || { echo "skipped: needs root to mount a small tmpfs"; exit 77; }
mkdir "$T/small"
mount -t tmpfs -o size=1m tapgate-rated "$T/small" || { echo "skipped: cannot mount a tmpfs here"; exit 77; }
cleanup_mount() { [ -z "$GW_PID" ] || kill -9 "$GW_PID" 2>/dev/null || true; umount "$T/small" 2>/dev/null || true; cleanup; }
trap cleanup_mount EXIT INT TERM
D=$(business_day 108000)
start_gateway
tapgen --validators 64 --taps 40000 --taps-per-frame 8 --network demo --spread-s 172800 --seed 5 \
	>"$T/tg.out" 2>&1 || { cat "$T/tg.out"; fail "tapgen"; }
stop_gateway
fare() { "$BIN/tapfare" -c config/tapgate.conf -s "$T/store" "$@"; }

fare -r "$T/ref" rate --through "$D" >"$T/ref.out" 2>&1 || { cat "$T/ref.out"; fail "reference run exited $?"; }
fare -r "$T/ref" legs --no-version >"$T/ref.legs" || fail "reference legs"
fare -r "$T/ref" audit >"$T/ref.audit" || fail "reference audit"
[ -s "$T/ref.legs" ] || fail "the reference run rated nothing"

st=0
fare -r "$T/small/rated" rate --through "$D" >"$T/full.out" 2>&1 || st=$?
cat "$T/full.out"
[ $st -ne 0 ] || fail "tapfare rate exited 0 on a full disk"
[ $st -lt 128 ] || fail "tapfare rate died of signal $((st - 128)) on a full disk"
grep -q "rated store $T/small/rated: .*No space left on device" "$T/full.out" ||
	fail "no message naming the rated store and the full disk"
echo "full disk: tapfare exited $st: $(grep 'rated store' "$T/full.out")"

mount -o remount,size=64m "$T/small"
fare -r "$T/small/rated" rate --through "$D" >"$T/again.out" 2>&1 || { cat "$T/again.out"; fail "the run after the disk had room exited $?"; }
fare -r "$T/small/rated" legs --no-version >"$T/small.legs" || fail "legs"
fare -r "$T/small/rated" audit >"$T/small.audit" || fail "audit"
cmp "$T/ref.legs" "$T/small.legs" || fail "legs differ from a run that never failed"
cmp "$T/ref.audit" "$T/small.audit" || fail "audit table differs from a run that never failed"
fare -r "$T/small/rated" rate --through "$D" >"$T/third.out" 2>&1 || fail "a third run exited $?"
grep -q "^rated 0 taps" "$T/third.out" || { cat "$T/third.out"; fail "a third run rated taps again"; }

mode=$(stat -c %a "$T/small/rated/data.mdb")
case $mode in 600 | 640) ;; *) fail "rated store data.mdb is mode $mode" ;; esac
echo "ok: full disk reported, the next run resumed: $(wc -l <"$T/ref.legs") legs and the audit table as a run that never failed; data.mdb mode $mode"
