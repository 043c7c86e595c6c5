# Least data in each file (docs/SETTLEMENT.md section 4.4): two demo days are
# closed; operators' TIDES files and funders' files name riders by a keyed
# pseudonym (HMAC-SHA-256 of the token with the settlement secret, recomputed
# here in Python), never by a card number or token, while the issuers' files
# carry the card numbers they clear; the same rider has the same pseudonym on
# both days. Every TIDES fare_transactions file validates against the TIDES
# v1.0 table schema (tests/tides_check.py), and the validator itself fails on
# broken copies (header order, enumeration, types, required fields, unique
# ids). A missing or unsafe secret stops close and --check with its name.
. tests/lib.sh
SCHEMAS=$(schemas_dir) || fail "no schemas"
SCHEMA=$SCHEMAS/tides-1.0-fare_transactions.schema.json
[ -f "$SCHEMA" ] || fail "no TIDES schema in $SCHEMAS"
D1=$(business_day 194400) # two business days that are over: 54 h and 30 h ago
D2=$(business_day 108000)

start_gateway
tapgen --validators 64 --taps 20000 --taps-per-frame 8 --network demo --spread-s 259200 --seed 21 \
	>"$T/tg.out" 2>&1 || { cat "$T/tg.out"; fail "tapgen"; }
stop_gateway
for d in "$D1" "$D2"; do
	settle close --day "$d" >/dev/null || fail "close $d exited $?"
	"$BIN/tapfare" -c config/tapgate.conf -r "$T/rated" legs --day "$d" --no-version >"$T/legs-$d.txt"
	[ -s "$T/legs-$d.txt" ] || fail "no legs on $d"
	python3 tests/settle_check.py "$T/outbox" "$d" "$T/legs-$d.txt" "$SCHEMAS/pain.001.001.10.xsd" ||
		fail "the files of $d do not check (totals, schema, pseudonyms)"
done

echo "== every TIDES file against the TIDES v1.0 table schema"
ls "$T"/outbox/operator-*/*-fare_transactions.csv >"$T/tides.list"
[ "$(wc -l <"$T/tides.list")" -ge 2 ] || fail "fewer than two TIDES files"
python3 tests/tides_check.py "$SCHEMA" $(cat "$T/tides.list") || fail "TIDES files do not validate"

echo "== no card number or token in clear outside the issuers' and charge files"
awk '{ n = split($2, p, ":"); print p[n] }' "$T"/legs-*.txt | sort -u >"$T/tokens"
[ "$(wc -l <"$T/tokens")" -gt 100 ] || fail "too few tokens in the legs"
grep -l -w -F -f "$T/tokens" -r "$T"/outbox/operator-* "$T"/outbox/funder-* >"$T/leaks" || true
[ ! -s "$T/leaks" ] || fail "tokens in clear in: $(head -n 3 "$T/leaks")"
grep -q -w -F -f "$T/tokens" "$T"/outbox/issuer-*/*.csv || fail "the issuers' files carry no card number (the check above proves nothing)"
echo "ok: $(wc -l <"$T/tokens") tokens, none in an operator's or funder's file"

echo "== the same rider, the same pseudonym on both days"
riders() { # the distinct token_id of a day's TIDES files
	python3 -c 'import csv,sys
print("\n".join(sorted({r["token_id"] for p in sys.argv[1:] for r in csv.DictReader(open(p))})))' \
		"$T"/outbox/operator-*/"$1"-*-fare_transactions.csv
}
riders "$D1" >"$T/r1"
riders "$D2" >"$T/r2"
both=$(comm -12 "$T/r1" "$T/r2" | wc -l)
# the riders of both days by token, from the legs: their pseudonyms must be the ones both files share
for d in "$D1" "$D2"; do awk '{ print $2 }' "$T/legs-$d.txt" | sort -u >"$T/t-$d"; done
want=$(comm -12 "$T/t-$D1" "$T/t-$D2" | wc -l)
[ "$want" -gt 10 ] || fail "only $want riders ride on both days"
[ "$both" -eq "$want" ] || fail "$want tokens ride on both days, but only $both pseudonyms are in both days' files"
echo "ok: $(wc -l <"$T/r1") and $(wc -l <"$T/r2") riders; $both on both days, under one pseudonym each"

echo "== the validator fails on broken files"
f=$(head -n 1 "$T/tides.list")
broken() { # NAME AWK-PROGRAM EXPECTED-TEXT: a copy of f changed by the program must fail, naming the field
	awk -F, -v OFS=, "$2" "$f" >"$T/broken-$1.csv"
	rc=0; python3 tests/tides_check.py "$SCHEMA" "$T/broken-$1.csv" >"$T/broken-$1.out" || rc=$?
	[ $rc -eq 1 ] || fail "tides_check passed a file with $1 (exit $rc)"
	grep -q -- "$3" "$T/broken-$1.out" || fail "tides_check on $1 does not say '$3': $(head -n 2 "$T/broken-$1.out")"
	echo "refused, $1: $(head -n 1 "$T/broken-$1.out" | cut -c 1-160)"
}
broken header-order 'NR == 1 { t = $2; $2 = $3; $3 = t } { print }' "header is not the schema's fields in order"
broken header-name 'NR == 1 { $23 = "rider_id" } { print }' "unknown \['rider_id'\]"
broken fare-action 'NR == 2 { $7 = "Board" } { print }' "field fare_action: 'Board' is not one of the enumeration"
broken amount-type 'NR == 2 { $5 = "1.2.3" } { print }' "field amount: '1.2.3' is not a number"
broken boolean 'NR == 2 { $22 = "yes" } { print }' "field fare_capped: 'yes' is not a boolean"
broken date 'NR == 2 { $2 = "20260302" } { print }' "field service_date: '20260302' is not a date"
broken datetime 'NR == 2 { $3 = "2026-03-02 08:00:00" } { print }' "field event_timestamp"
broken required 'NR == 2 { $1 = "" } { print }' "field transaction_id: required, and missing"
broken media-enum 'NR == 2 { $18 = "Card" } { print }' "field fare_media_id: 'Card' is not one of"
broken unique 'NR == 3 { print prev; next } NR == 2 { prev = $0 } { print }' "must be unique"
broken minimum 'NR == 2 { $17 = "-1" } { print }' "field num_riders: -1 is below the minimum 0"
broken short-row 'NR == 2 { NF = 10 } { print }' "10 values, the header has 24"

echo "== the settlement secret: missing, unsafe, or another one"
rc=0; settle -o "settle.secret_file=$T/none.key" close --day "$D2" --force 2>"$T/nokey.err" || rc=$?
[ $rc -eq 1 ] && grep -q "settle.secret_file: $T/none.key: cannot read" "$T/nokey.err" ||
	fail "close without the secret exited $rc: $(cat "$T/nokey.err")"
rc=0; settle -o "settle.secret_file=$T/none.key" --check >"$T/check.out" 2>&1 || rc=$?
[ $rc -eq 78 ] && grep -q "key 'settle.secret_file'" "$T/check.out" ||
	fail "--check without the secret exited $rc: $(cat "$T/check.out")"
cp config/dev-settle.key "$T/open.key" && chmod 644 "$T/open.key"
rc=0; settle -o "settle.secret_file=$T/open.key" --check >"$T/check.out" 2>&1 || rc=$?
[ $rc -eq 78 ] && grep -q "mode 0644" "$T/check.out" || fail "--check of a 0644 secret exited $rc: $(cat "$T/check.out")"
printf '%064d\n' 0 >"$T/zero.key" && chmod 600 "$T/zero.key"
rc=0; settle -o "settle.secret_file=$T/zero.key" --check >"$T/check.out" 2>&1 || rc=$?
[ $rc -eq 78 ] && grep -q "all zeros" "$T/check.out" || fail "--check of an all-zero secret exited $rc: $(cat "$T/check.out")"
settle --check >"$T/check.out" || fail "--check with the dev secret exited $?: $(cat "$T/check.out")"
# reconciliation recomputes the funders' hash totals from the pseudonyms: another secret does not reconcile
openssl rand -hex 32 >"$T/other.key" && chmod 600 "$T/other.key"
settle reconcile --day "$D2" >/dev/null || fail "reconcile with the secret the files were made with exited $?"
rc=0; settle -o "settle.secret_file=$T/other.key" reconcile --day "$D2" >"$T/rec.out" || rc=$?
[ $rc -eq 3 ] && grep -q "MISMATCH batch $D2-00-funder-" "$T/rec.out" ||
	fail "reconcile with another secret exited $rc: $(grep MISMATCH "$T/rec.out" | head -n 3)"
echo "ok: least data in each file"
