# Unrated legs in settlement (docs/SETTLEMENT.md section 2.1): a day rated with a
# feed that leaves some legs unpriced (the demo feed without the metro rules from
# station st5101) is closed: no batch and no file holds an unrated leg, reconcile
# lists them and reconciles. One leg is written off (twice: idempotent). The demo
# feed, which prices them, is loaded and the day rated again: the next close puts
# the re-rated legs in round 1, each leg's money over its revisions what a rating
# with that feed from the start gives, except the written-off leg, whose priced
# revision is held out too. Reconcile passes at each step and fails (exit 3) when
# a held leg is put into an operator's TIDES file, or when the rated store is
# changed under a closed round so that a held leg would now be batched.
. tests/lib.sh
SCHEMAS=$(schemas_dir) || fail "no schemas"
XSD=$SCHEMAS/pain.001.001.10.xsd
command -v mdb_dump >/dev/null && command -v mdb_load >/dev/null || fail "mdb_dump / mdb_load are missing (lmdb-utils)"
D=$(business_day 108000)
PARTIAL=$T/feed-partial
cp -r config/fares-demo "$PARTIAL"
grep -v '^metro,metro,st5101,' config/fares-demo/fare_leg_rules.txt >"$PARTIAL/fare_leg_rules.txt"
[ "$(wc -l <"$PARTIAL/fare_leg_rules.txt")" -lt "$(wc -l <config/fares-demo/fare_leg_rules.txt)" ] ||
	fail "the partial feed has every rule"
"$BIN/tapfare" check "$PARTIAL" >/dev/null || fail "the partial feed does not load"

start_gateway
tapgen --validators 64 --taps 20000 --taps-per-frame 8 --network demo --spread-s 172800 --seed 31 \
	>"$T/tg.out" 2>&1 || { cat "$T/tg.out"; fail "tapgen"; }
stop_gateway

legs() { r=$1; shift; "$BIN/tapfare" -c config/tapgate.conf -r "$r" legs --day "$D" --no-version "$@"; }
tides() { cat "$T"/outbox/operator-*/"$D"-*-fare_transactions.csv; }
reconcile_ok() { # NAME: reconcile must pass
	rc=0; settle reconcile --day "$D" >"$T/rec-$1.txt" || rc=$?
	[ $rc -eq 0 ] || { grep MISMATCH "$T/rec-$1.txt"; fail "$1: reconcile exited $rc"; }
	grep "^unrated legs:" "$T/rec-$1.txt"
}
reconcile_bad() { # NAME WORDS: reconcile must exit 3 with a MISMATCH line holding WORDS
	rc=0; settle reconcile --day "$D" >"$T/rec-$1.txt" || rc=$?
	[ $rc -eq 3 ] || { tail -n 5 "$T/rec-$1.txt"; fail "$1: reconcile exited $rc, expected 3"; }
	grep "^MISMATCH.*$2" "$T/rec-$1.txt" || { grep MISMATCH "$T/rec-$1.txt"; fail "$1: no mismatch saying '$2'"; }
}

echo "== the reference: the day rated with the demo feed from the start"
"$BIN/tapfare" -c config/tapgate.conf -s "$T/store" -r "$T/rated-full" rate --through "$D" >/dev/null 2>&1 ||
	fail "rating with the demo feed"
[ "$(legs "$T/rated-full" --unrated | wc -l)" -eq 0 ] || fail "the demo feed leaves legs unrated"

echo "== close $D rated with the partial feed"
settle -o "fares.feed=$PARTIAL" close --day "$D" >"$T/close0.out" || fail "close exited $?"
cat "$T/close0.out"
legs "$T/rated" >"$T/legs0.txt"
legs "$T/rated" --unrated >"$T/unrated0.txt"
U=$(wc -l <"$T/unrated0.txt")
[ "$U" -ge 3 ] || fail "only $U unrated legs: the partial feed should leave more"
grep -q "held out of every batch: $U unrated legs" "$T/close0.out" || fail "close did not say it held $U legs"
settle status | grep "^held out: day $D round 0: $U unrated legs" || fail "status does not show the held legs"
# each unrated leg as reconcile lists it: SEQ, and none of them in a TIDES file
reconcile_ok round0
grep -q "^unrated legs: $U .*; $U open (held out of every batch, by operator: op" "$T/rec-round0.txt" || fail "reconcile does not count $U open unrated legs"
grep "^unrated leg " "$T/rec-round0.txt" | sed 's/^unrated leg \([0-9]*\):.*/\1/' >"$T/seqs"
[ "$(wc -l <"$T/seqs")" -eq "$U" ] || fail "reconcile lists $(wc -l <"$T/seqs") unrated legs, tapfare $U"
tides | cut -d, -f1 >"$T/tides-ids"
while read -r s; do ! grep -qx "$s-0" "$T/tides-ids" || fail "unrated leg $s is a TIDES row"; done <"$T/seqs"
[ "$(tides | grep -vc '^transaction_id')" -eq $(($(wc -l <"$T/legs0.txt") - U)) ] ||
	fail "TIDES rows: $(tides | grep -vc '^transaction_id'), legs less the unrated: $(($(wc -l <"$T/legs0.txt") - U))"
python3 tests/settle_check.py "$T/outbox" "$D" "$T/legs0.txt" "$XSD" || fail "the files of round 0 do not check"

echo "== write off one unrated leg; again: idempotent; a leg that is not unrated is refused"
W=$(head -n 1 "$T/seqs")
wline=$(grep "^unrated leg $W:" "$T/rec-round0.txt")
echo "$wline" | awk '{ print $5, $6 }' >"$T/written-off" # TOKEN #LEG
settle write-off-unrated --day "$D" --leg "$W" >"$T/wo1.out" || fail "write-off exited $?"
grep -q "^written off: day $D leg $W " "$T/wo1.out" || fail "write-off: $(cat "$T/wo1.out")"
settle write-off-unrated --day "$D" --leg "$W" >"$T/wo2.out" || fail "a second write-off exited $?"
grep -q "^already written off: day $D leg $W " "$T/wo2.out" && grep -q "0 unrated legs written off, 1 already" "$T/wo2.out" ||
	fail "the second write-off: $(cat "$T/wo2.out")"
other=$(tides | awk -F, 'NR > 1 && $1 ~ /-0$/ { sub(/-0$/, "", $1); print $1; exit }')
rc=0; settle write-off-unrated --day "$D" --leg "$other" 2>"$T/wo3.err" || rc=$?
[ $rc -eq 1 ] || fail "writing off priced leg $other exited $rc: $(cat "$T/wo3.err")"
settle status | grep -q "^written off: day $D leg $W " || fail "status does not list the write-off"
reconcile_ok writeoff
grep -q "; $((U - 1)) open (held out of every batch, by operator: op.*); 1 written off;" "$T/rec-writeoff.txt" || fail "reconcile does not show the write-off"
grep -q "^unrated leg $W: .*: written off" "$T/rec-writeoff.txt" || fail "reconcile does not list leg $W as written off"

echo "== the demo feed prices them: rate the day again, close: round 1"
"$BIN/tapfare" -c config/tapgate.conf -s "$T/store" -r "$T/rated" -f config/fares-demo rate --through "$D" \
	--rerate-unrated "$D" >"$T/rerate.out" 2>&1 || { cat "$T/rerate.out"; fail "rerate exited $?"; }
tail -n 1 "$T/rerate.out"
settle close --day "$D" >"$T/close1.out" || fail "close after the re-rating exited $?"
cat "$T/close1.out"
grep -q "^day $D round 1: " "$T/close1.out" || fail "the re-rated legs made no round 1"
grep -q "held out of every batch: 0 unrated legs, 1 revisions of written-off legs" "$T/close1.out" ||
	fail "round 1 did not hold the written-off leg's priced revision out"
legs "$T/rated" >"$T/legs1.txt"
# each leg's operator share over its revisions = the reference's (opN= of every line, by token and leg)
opsum() { awk '{ for (i = 5; i <= NF; i++) if ($i ~ /^op[0-9]+=/) { split($i, kv, "="); s[$2 " " $4] += kv[2] } }
	END { for (k in s) print k, s[k] }' "$1" | sort; }
legs "$T/rated-full" >"$T/legs-full.txt"
opsum "$T/legs1.txt" >"$T/op1"
opsum "$T/legs-full.txt" >"$T/opfull"
diff "$T/op1" "$T/opfull" || fail "after re-rating, the legs' money differs from a rating with the demo feed"
tides | cut -d, -f1 >"$T/tides-ids"
grep -qx "$W-1" "$T/tides-ids" && fail "the written-off leg's priced revision is in a TIDES file"
n1=0
while read -r s; do
	[ "$s" = "$W" ] && continue
	grep -qx "$s-1" "$T/tides-ids" && n1=$((n1 + 1))
done <"$T/seqs"
[ "$n1" -eq $((U - 1)) ] || fail "$n1 of the $((U - 1)) re-rated legs are TIDES rows of round 1"
python3 tests/settle_check.py "$T/outbox" "$D" "$T/legs1.txt" "$XSD" CNY 2 "$T/written-off" ||
	fail "the files of rounds 0 and 1 do not check"
reconcile_ok round1
grep -q "; 0 open (held out of every batch); 1 written off; $((U - 1)) priced by a later revision;" "$T/rec-round1.txt" ||
	fail "reconcile after round 1: $(grep '^unrated legs:' "$T/rec-round1.txt")"
settle close --day "$D" | grep -q "nothing new" || fail "a third close wrote something"

echo "== tampering: a held leg put into an operator's TIDES file"
f=$(ls "$T"/outbox/operator-*/"$D"-01-*-fare_transactions.csv | head -n 1)
cp "$f" "$T/tides.orig"
row=$(sed -n 2p "$f")
echo "$W-1,${row#*,}" >>"$f"
reconcile_bad tides "legs held out of settlement"
cp "$T/tides.orig" "$f"
reconcile_ok restored

echo "== tampering: the rated store changed under round 0: a held leg no longer unrated"
mdb_dump -s legs "$T/rated" >"$T/legs.dump"
# the second unrated leg's key (day, medium, issuer, token, revision, leg: big-endian) and, in its value
# (struct fare_leg), the flags byte at offset 134: norule (2) cleared
head -n 2 "$T/unrated0.txt" | tail -n 1 >"$T/tamper-leg"
python3 - "$T/legs.dump" "$T/legs.tampered" "$T/tamper-leg" <<'PY' || fail "the leg to tamper with is not in the rated store"
import sys
dump, out, leg = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().split()
kind, *ids = leg[1].split(":")
medium = {"epurse": 1, "quickpass": 2, "qr": 3}[kind]
issuer, token = (int(ids[0]), int(ids[1])) if medium == 1 else (0, int(ids[0]))
key = int(leg[0]).to_bytes(4, "big") + bytes([medium]) + issuer.to_bytes(4, "big") + token.to_bytes(8, "big")
key = " " + (key + int(leg[2][1:]).to_bytes(2, "big") + int(leg[3][1:]).to_bytes(2, "big")).hex()
lines, done = open(dump).read().split("\n"), False
for i, line in enumerate(lines[:-1]):
    if line == key and not done:
        v = bytearray.fromhex(lines[i + 1].strip())
        v[134] &= ~2 & 0xff
        lines[i + 1], done = " " + v.hex(), True
open(out, "w").write("\n".join(lines))
sys.exit(0 if done else 1)
PY
cmp -s "$T/legs.dump" "$T/legs.tampered" && fail "the tampering changed nothing"
mdb_load -s legs -f "$T/legs.tampered" "$T/rated" 2>/dev/null || fail "mdb_load"
reconcile_bad rated "round 0: .* legs in batches (recorded"
grep "^MISMATCH round 0: held out" "$T/rec-rated.txt" || fail "the held count's change is not reported"
mdb_load -s legs -f "$T/legs.dump" "$T/rated" 2>/dev/null || fail "mdb_load (restoring)"
reconcile_ok restored2
echo "ok: $U unrated legs held out of round 0, one written off, $((U - 1)) priced in round 1; tampering detected"
