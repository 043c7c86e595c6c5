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
chmod 600 "$T/bad.keys" # a key file others can read is refused before its lines are read
if "$BIN/tapgate" -c config/tapgate.conf -s "keys.validator_key_file=$T/bad.keys" >"$T/out" 2>&1; then fail "a bad key file was accepted"; fi
grep -q "bad.keys:2" "$T/out" || fail "bad key file line not named: $(cat "$T/out")"
"$BIN/tapgate" -c config/tapgate.conf --print-config | grep -q '^commit_batch_taps = 4096$' || fail "--print-config"
echo "ok: config errors name file, line and key"
# DPDK settings: bad values name the key; a wrong port or lcore is fatal and says why.
if "$BIN/tapgate" -c config/tapgate.conf -s dpdk.address=10.1.2 >"$T/out" 2>&1; then fail "a bad dpdk.address was accepted"; fi
grep -q "key 'dpdk.address'" "$T/out" || fail "dpdk.address error: $(cat "$T/out")"
if "$BIN/tapgate" -c config/tapgate.conf -s dpdk.mac=02:00:00:00:00 >"$T/out" 2>&1; then fail "a bad dpdk.mac was accepted"; fi
grep -q "key 'dpdk.mac'" "$T/out" || fail "dpdk.mac error: $(cat "$T/out")"
EAL="-l 0 --no-huge -m 128 --no-pci --file-prefix tgcfg$$ --vdev=net_null0"
if "$BIN/tapgate" -c config/tapgate.conf -s "store.path=$T/store" -s gateway.metrics_port=0 -s gateway.ingress=dpdk \
	-s "dpdk.eal_args=$EAL" -s dpdk.port=net_nope -s dpdk.lcore=0 >"$T/out" 2>&1; then fail "a missing DPDK port was accepted"; fi
skip_if_eal_failed "$T/out"
grep -q "dpdk.port 'net_nope' is not a DPDK port; ports: 0=net_null0" "$T/out" || fail "DPDK port error: $(cat "$T/out")"
if "$BIN/tapgate" -c config/tapgate.conf -s "store.path=$T/store" -s gateway.metrics_port=0 -s gateway.ingress=dpdk \
	-s "dpdk.eal_args=$EAL" -s dpdk.port=net_null0 -s dpdk.lcore=1 >"$T/out" 2>&1; then fail "an lcore outside -l was accepted"; fi
grep -q "dpdk.lcore 1 is not one of the EAL's lcores" "$T/out" || fail "DPDK lcore error: $(cat "$T/out")"
echo "ok: DPDK settings are checked"
