# Settlement in the feed's currency (docs/SETTLEMENT.md section 2.2): the same
# day's taps rated and closed with the demo feed restated in JPY (0 minor units:
# every amount in yen, the demo's fen figures) and in KWD (3 minor units: the
# demo's amounts as dinars, 2.00 = 2000 fils). The files carry the currency: the
# clearing CSVs' headers, TIDES currency_type and amount with the currency's
# decimals, pain.001 Ccy, InstdAmt and CtrlSum (valid against the official
# schema); the files check independently (tests/settle_check.py) and reconcile.
# The JPY legs are the CNY legs, minor unit for minor unit. A day is settled in
# one currency: re-rating it with a feed of another currency is refused, and so
# is a close whose late taps were rated in another currency, before its round is
# pending.
. tests/lib.sh
SCHEMAS=$(schemas_dir) || fail "no schemas"
XSD=$SCHEMAS/pain.001.001.10.xsd
command -v xmllint >/dev/null || fail "xmllint is missing (libxml2-utils)"
D=$(business_day 108000)

# restate FEED_DIR CURRENCY SCALE: the demo feed in CURRENCY; SCALE 100 writes every decimal amount as
# an integer of its hundredths (2.00 -> 200), 1 keeps it (2.00 read as 2.000 in a 3-decimal currency)
restate() {
	cp -r config/fares-demo "$1"
	python3 - "$1" "$2" "$3" <<'PY'
import re, sys
feed, cur, scale = sys.argv[1], sys.argv[2], int(sys.argv[3])
for name in ("fare_products.txt", "tg_fare_caps.txt", "tg_promotions.txt", "tg_subsidies.txt"):
    path = f"{feed}/{name}"
    text = open(path).read()
    if scale == 100:
        text = re.sub(r"(?<![\w.])(-?)(\d+)\.(\d\d)(?![\d.])", lambda m: m[1] + str(int(m[2]) * 100 + int(m[3])), text)
    open(path, "w").write(text.replace(",CNY", "," + cur))
PY
	"$BIN/tapfare" check "$1" | grep -q "$2" || fail "the $2 feed does not load, or is not in $2"
}
restate "$T/feed-jpy" JPY 100
restate "$T/feed-kwd" KWD 1

start_gateway
tapgen --validators 64 --taps 20000 --taps-per-frame 8 --network demo --spread-s 172800 --seed 41 \
	>"$T/tg.out" 2>&1 || { cat "$T/tg.out"; fail "tapgen"; }

# settle_in CUR FEED: settle with FEED into stores and an outbox of its own
settle_in() { cur=$1 feed=$2; shift 2; "$BIN/tapsettle" -c config/tapgate.conf -o "store.path=$T/store" -o "fares.feed=$feed" \
	-o "fares.rated_path=$T/rated-$cur" -o "settle.path=$T/settle-$cur" -o "settle.outbox=$T/outbox-$cur" "$@"; }
legs() { "$BIN/tapfare" -c config/tapgate.conf -r "$T/rated-$1" legs --day "$D" --no-version; }

# close_in CUR MINOR FEED AMOUNT_RE: close D, check every file's currency and decimals
close_in() {
	cur=$1 minor=$2 feed=$3 re=$4 out=$T/outbox-$1
	echo "== $cur ($minor minor units)"
	settle_in "$cur" "$feed" close --day "$D" >/dev/null 2>&1 || fail "$cur: close exited $?"
	legs "$cur" >"$T/legs-$cur.txt"
	python3 tests/settle_check.py "$out" "$D" "$T/legs-$cur.txt" "$XSD" "$cur" "$minor" || fail "$cur: the files do not check"
	for f in "$out"/acquirer-*/"$D"-00-*.csv "$out"/issuer-*/"$D"-00-*.csv; do
		head -n 1 "$f" | grep -q ",$cur\$" || fail "$f: header $(head -n 1 "$f")"
	done
	bad=$(cat "$out"/operator-*/"$D"-00-*-fare_transactions.csv | awk -F, -v cur="$cur" -v re="$re" \
		'NR > 1 && $1 != "transaction_id" && ($6 != cur || $5 !~ re) { print; exit }')
	[ -z "$bad" ] || fail "$cur: a TIDES row not in $cur with $minor decimals: $bad"
	p=$(ls "$out"/payout-*/"$D"-00-*.xml)
	xmllint --noout --schema "$XSD" "$p" || fail "$cur: $p is not valid pain.001"
	[ "$(grep -o 'Ccy="[A-Z]*"' "$p" | sort -u)" = "Ccy=\"$cur\"" ] || fail "$cur: $p is not in $cur"
	ctrl=$(sed -n 's|.*<CtrlSum>\(.*\)</CtrlSum>.*|\1|p' "$p" | head -n 1)
	echo "$ctrl" | grep -Eq "$re" || fail "$cur: CtrlSum $ctrl has not $minor decimals"
	rc=0; settle_in "$cur" "$feed" reconcile --day "$D" >"$T/rec-$cur.txt" || rc=$?
	[ $rc -eq 0 ] || { grep MISMATCH "$T/rec-$cur.txt"; fail "$cur: reconcile exited $rc"; }
	grep "^currency: $cur, $minor minor units" "$T/rec-$cur.txt" || fail "$cur: reconcile does not name the currency"
	echo "$cur: pain.001 CtrlSum $ctrl; $(grep -c . "$T/legs-$cur.txt") legs"
}
close_in CNY 2 config/fares-demo '^-?[0-9]+\.[0-9][0-9]$'
close_in JPY 0 "$T/feed-jpy" '^-?[0-9]+$'
close_in KWD 3 "$T/feed-kwd" '^-?[0-9]+\.[0-9][0-9][0-9]$'
# the JPY feed is the CNY feed in its minor units: the same legs, minor unit for minor unit
cmp "$T/legs-CNY.txt" "$T/legs-JPY.txt" || fail "the JPY legs differ from the CNY legs"
[ "$(sed -n 's|.*<CtrlSum>\(.*\)</CtrlSum>.*|\1|p' "$T"/outbox-CNY/payout-*/"$D"-00-*.xml | head -n 1 | tr -d .)" = \
	"$(sed -n 's|.*<CtrlSum>\(.*\)</CtrlSum>.*|\1|p' "$T"/outbox-JPY/payout-*/"$D"-00-*.xml | head -n 1)" ] ||
	fail "the JPY payouts are not the CNY payouts in minor units"

echo "== one currency per day"
rc=0; "$BIN/tapfare" -c config/tapgate.conf -s "$T/store" -r "$T/rated-JPY" -f "$T/feed-kwd" rate --through "$D" \
	--rerate-unrated "$D" 2>"$T/rerate.err" || rc=$?
[ $rc -eq 1 ] && grep -q "rated in JPY.*is in KWD" "$T/rerate.err" || fail "re-rating a JPY day in KWD exited $rc: $(cat "$T/rerate.err")"
tapgen --validators 8 --taps 2000 --taps-per-frame 8 --network demo --spread-s 172800 --seed 42 \
	--first-validator 1200 >"$T/tg2.out" 2>&1 || { cat "$T/tg2.out"; fail "tapgen (late upload)"; }
stop_gateway
rc=0; settle_in JPY "$T/feed-kwd" close --day "$D" >/dev/null 2>"$T/mixed.err" || rc=$?
[ $rc -eq 1 ] && grep -Eq "would mix currencies: (JPY .* and KWD|KWD .* and JPY)" "$T/mixed.err" ||
	fail "a close of a day with JPY and KWD legs exited $rc: $(cat "$T/mixed.err")"
settle_in JPY "$T/feed-kwd" status | grep -q "^pending" && fail "the refused close left a pending round"
[ "$(settle_in JPY "$T/feed-kwd" status | grep -c "^day $D round")" -eq 1 ] || fail "the refused close made a round"
echo "ok: $D settled in CNY, JPY and KWD with their decimals, pain.001 valid; a day in two currencies refused"
