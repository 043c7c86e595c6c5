#!/bin/sh
# docs/OPERATIONS.md as written: every alert of monitoring/alerts.yml is in
# its alert table (and nothing else is), and the backup and restore of
# section 6 work: mdb_copy -c of the gateway store while a load is being
# committed gives a store that `tapdump verify` accepts and that holds a
# prefix of the live log; a gateway started on the restored copy takes new
# taps on top of it.
. tests/lib.sh
command -v mdb_copy >/dev/null || fail "mdb_copy (Debian lmdb-utils) is not installed: tools/install-deps.sh installs it"

# 1. The alert table.
grep -o 'alert: [A-Za-z]*' monitoring/alerts.yml | cut -d' ' -f2 | sort -u >"$T/rules"
sed -n '/^## 5\. Monitor/,/^## 6\./p' docs/OPERATIONS.md | grep -o '^| `[A-Za-z]*`' | tr -d '|` ' | sort -u >"$T/documented"
[ -s "$T/rules" ] || fail "no alert rule found in monitoring/alerts.yml"
missing=$(comm -23 "$T/rules" "$T/documented")
[ -z "$missing" ] || fail "alerts without a row in docs/OPERATIONS.md section 5: $missing"
extra=$(comm -13 "$T/rules" "$T/documented")
[ -z "$extra" ] || fail "docs/OPERATIONS.md section 5 documents alerts that alerts.yml does not have: $extra"
echo "ok: $(wc -l <"$T/rules") alerts, each documented"

# 2. A backup taken while the gateway commits a load.
start_gateway
tapgen --validators 64 --taps 60000 --taps-per-frame 4 --give-up-s 60 --out "$T/sent.csv" >"$T/tapgen.out" 2>&1 &
TG=$!
wait_metric_at_least tapgate_taps_stored_total 10000
mkdir "$T/backup"
mdb_copy -c "$T/store" "$T/backup" || fail "mdb_copy -c of the running gateway's store failed"
wait $TG || { cat "$T/tapgen.out"; fail "tapgen did not get every tap acknowledged"; }
stop_gateway
"$BIN/tapdump" -s "$T/backup" verify >"$T/verify.out" 2>&1 || { cat "$T/verify.out"; fail "tapdump verify refuses the backup"; }
"$BIN/tapdump" -s "$T/store" export --fields full >"$T/live.csv"
"$BIN/tapdump" -s "$T/backup" export --fields full >"$T/backup.csv"
n_backup=$(($(wc -l <"$T/backup.csv") - 1)) n_live=$(($(wc -l <"$T/live.csv") - 1))
[ "$n_backup" -ge 10000 ] || fail "the backup holds $n_backup taps, but 10000 were stored before it began"
[ "$n_live" -eq 60000 ] || fail "the live store holds $n_live taps, expected 60000"
head -n "$((n_backup + 1))" "$T/live.csv" | cmp -s - "$T/backup.csv" ||
	fail "the backup is not the first $n_backup taps of the live log"
echo "ok: a backup taken during the load holds the log's first $n_backup of $n_live taps, and verifies"

# 3. Restore: the backup in the store's place, the gateway on it, new taps on top.
mv "$T/store" "$T/store.damaged"
mv "$T/backup" "$T/store"
start_gateway
grep -q "dedup rebuilt: $n_backup taps" "$T/gateway.log" || fail "the restored gateway did not rebuild its dedup set from the $n_backup taps"
tapgen --validators 16 --taps 5000 --first-rider 5000000 --seed 977 --give-up-s 60 >"$T/tapgen2.out" 2>&1 ||
	{ cat "$T/tapgen2.out"; fail "the gateway on the restored store did not acknowledge new taps"; }
stop_gateway
"$BIN/tapdump" -s "$T/store" verify >"$T/verify2.out" 2>&1 || { cat "$T/verify2.out"; fail "the restored store does not verify after new taps"; }
n=$("$BIN/tapdump" -s "$T/store" counts | awk '$1 == "log_taps" { print $2 }')
[ "$n" -eq $((n_backup + 5000)) ] || fail "the restored store holds $n taps, expected $n_backup + 5000"
echo "ok: restored from the backup, the gateway took 5000 new taps on top ($n in all)"

# 4. Upgrade (section 7): a store that records another format version is refused, and left as it was.
set_schema() { printf 'schema_version\n\\%02x\\00\\00\\00\n' "$2" | mdb_load -s meta -T "$1"; }
set_schema "$T/store" 2
sum_before=$(md5sum <"$T/store/data.mdb")
if "$BIN/tapdump" -s "$T/store" counts >"$T/v2.out" 2>&1; then fail "tapdump read a store of format version 2: $(cat "$T/v2.out")"; fi
grep -q "another schema version" "$T/v2.out" || fail "tapdump did not say why it refused a version-2 store: $(cat "$T/v2.out")"
if "$BIN/tapgate" -c config/tapgate.conf -s "store.path=$T/store" -s "settle.path=$T/settle" -s "gateway.listen_port=$PORT" \
	-s "gateway.metrics_port=$METRICS_PORT" >"$T/v2gw.out" 2>&1; then fail "the gateway started on a store of format version 2"; fi
grep -q "another schema version" "$T/v2gw.out" || fail "the gateway did not say why it refused a version-2 store: $(cat "$T/v2gw.out")"
[ "$(md5sum <"$T/store/data.mdb")" = "$sum_before" ] || fail "refusing a version-2 store changed it"
set_schema "$T/store" 1
"$BIN/tapdump" -s "$T/store" verify >/dev/null || fail "the store does not verify once its version is 1 again"
mkdir "$T/rated"
set_schema "$T/rated" 2
if "$BIN/tapfare" -c config/tapgate.conf -s "$T/store" -r "$T/rated" rate >"$T/v2fare.out" 2>&1; then fail "tapfare rated into a rated store of format version 2"; fi
grep -q "written in format version 2; this tapfare reads version 1" "$T/v2fare.out" || fail "tapfare did not say why: $(cat "$T/v2fare.out")"
echo "ok: stores of another format version are refused by tapdump, tapgate and tapfare, and left unchanged"
