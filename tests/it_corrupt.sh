# A damaged gateway store fails its readers loudly. 20,000 taps; a sound
# store: tapdump verify exits 0 and says so. Then two copies: one with the
# 8 bytes of seq 12345's identity key flipped inside data.mdb (wherever they
# are in the file), one with seq 12345 missing (dumped, cut, loaded again):
# tapdump verify, tapdump export and tapfare rate each exit non-zero naming
# seq 12345, and export prints no partial result as if it were whole.
. tests/lib.sh
command -v mdb_dump >/dev/null && command -v mdb_load >/dev/null || { echo "skipped: no mdb_dump/mdb_load (lmdb-utils)"; exit 77; }
SEQ=12345
start_gateway
tapgen --validators 16 --taps 20000 --taps-per-frame 8 --network demo >"$T/tg.out" 2>&1 || { cat "$T/tg.out"; fail "tapgen"; }
stop_gateway

"$BIN/tapdump" -s "$T/store" verify >"$T/verify.out" 2>&1 || { cat "$T/verify.out"; fail "verify of a sound store exited $?"; }
grep -q "^sound$" "$T/verify.out" || fail "verify did not say the store is sound"
grep -q "^records 20000 " "$T/verify.out" && grep -q "^first_seq 1$" "$T/verify.out" && grep -q "^last_seq 20000$" "$T/verify.out" ||
	{ cat "$T/verify.out"; fail "verify did not report 20000 records, seq 1 to 20000"; }

# expect_loud NAME STORE WHAT: every reader exits non-zero and names seq $SEQ.
expect_loud() {
	st=0
	"$BIN/tapdump" -s "$2" verify >"$T/$1.verify" 2>&1 || st=$?
	[ $st -eq 1 ] || { cat "$T/$1.verify"; fail "$1: verify exited $st"; }
	grep -q "seq $SEQ: $3" "$T/$1.verify" || { cat "$T/$1.verify"; fail "$1: verify does not name seq $SEQ ($3)"; }
	grep -q "^NOT SOUND$" "$T/$1.verify" || fail "$1: verify did not say NOT SOUND"
	st=0
	"$BIN/tapdump" -s "$2" export >"$T/$1.csv" 2>"$T/$1.export" || st=$?
	[ $st -ne 0 ] || fail "$1: export exited 0"
	grep -q "seq $SEQ: $3" "$T/$1.export" || { cat "$T/$1.export"; fail "$1: export does not name seq $SEQ"; }
	[ "$(wc -l <"$T/$1.csv")" -le 1 ] || fail "$1: export printed taps of a log that is not sound"
	st=0
	"$BIN/tapfare" -c config/tapgate.conf -s "$2" -r "$T/$1.rated" rate --through 20991231 >"$T/$1.fare" 2>&1 || st=$?
	[ $st -ne 0 ] || fail "$1: tapfare rate exited 0"
	grep -q "seq $SEQ: $3" "$T/$1.fare" || { cat "$T/$1.fare"; fail "$1: tapfare does not name seq $SEQ"; }
	echo "$1: verify, export and tapfare exit non-zero: $(grep -m1 "seq $SEQ" "$T/$1.verify")"
}

mdb_dump -a "$T/store" >"$T/dump.txt" || fail "mdb_dump"
key=$(printf '%016x' $SEQ | sed 's/\(..\)/\1 /g' | awk '{ for (i = NF; i > 0; i--) printf "%s", $i }')
# the value of seq 12345: meta block first, its identity key's low half at bytes 16..23
id_lo=$(awk -v k=" $key" '$0 == k { getline; print substr($1, 33, 16); exit }' "$T/dump.txt")
[ ${#id_lo} -eq 16 ] || fail "seq $SEQ not in the dump"

cp -a "$T/store" "$T/flipped"
python3 - "$T/flipped/data.mdb" "$id_lo" <<'EOF' || fail "flipping bytes"
import sys
path, pattern = sys.argv[1], bytes.fromhex(sys.argv[2])
data = bytearray(open(path, 'rb').read())
hits, at = 0, data.find(pattern)
while at >= 0:  # every copy: the live page and any stale one
    data[at:at + 8] = bytes(b ^ 0xff for b in pattern)
    hits += 1
    at = data.find(pattern, at + 8)
open(path, 'wb').write(data)
print("flipped 8 bytes at %d places" % hits)
EOF
expect_loud flipped "$T/flipped" "stored record does not match"

awk -v k=" $key" '$0 == k { getline; next } { print }' "$T/dump.txt" >"$T/gap.txt"
mkdir "$T/gap"
mdb_load -f "$T/gap.txt" "$T/gap" 2>"$T/load.err" || { cat "$T/load.err"; fail "mdb_load"; }
expect_loud gap "$T/gap" "missing from the log"
echo "ok: a sound store verifies; flipped bytes and a missing record fail verify, export and tapfare at seq $SEQ"
