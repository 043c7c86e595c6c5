# Bad settings are fatal and name the file, line and key; --print-config works.
. tests/lib.sh
printf '[gateway]\nlisten_port = 7700\n[store]\ncommit_batch_taps = lots\n' >"$T/bad.conf"
if "$BIN/tapgate" -c "$T/bad.conf" >"$T/out" 2>&1; then fail "a bad value was accepted"; fi
grep -q "FATAL CONFIG FILE ERROR" "$T/out" || fail "no fatal banner: $(cat "$T/out")"
grep -q "$T/bad.conf:4: key 'store.commit_batch_taps'" "$T/out" || fail "file, line, key not named: $(cat "$T/out")"
if "$BIN/tapgate" -c config/tapgate.conf -s store.sync=maybe >"$T/out" 2>&1; then fail "-s accepted a bad value"; fi
grep -q "store.sync" "$T/out" || fail "-s error does not name the key: $(cat "$T/out")"
if "$BIN/tapgate" -c "$T/missing.conf" >"$T/out" 2>&1; then fail "a missing file was accepted"; fi
grep -q "missing.conf: cannot read" "$T/out" || fail "missing file not named: $(cat "$T/out")"
printf '[validator_keys]\n1001/1 = 00zz\n' >"$T/bad.keys"
if "$BIN/tapgate" -c config/tapgate.conf -s "keys.validator_key_file=$T/bad.keys" >"$T/out" 2>&1; then fail "a bad key file was accepted"; fi
grep -q "bad.keys:2" "$T/out" || fail "bad key file line not named: $(cat "$T/out")"
"$BIN/tapgate" -c config/tapgate.conf --print-config | grep -q '^commit_batch_taps = 4096$' || fail "--print-config"
echo "ok: config errors name file, line and key"
