#!/bin/sh
# make install DESTDIR=$T/root PREFIX=/usr lays out the tree a Debian service
# has: the five programs (each answers --version with debian/changelog's
# version), their man pages, the config under /etc/tapgate pointed at
# /var/lib/tapgate and the installed feed, the systemd units (Type=notify,
# --check before the start, no restart on exit 78, SIGHUP reload, hardening;
# systemd-analyze verify accepts them), the system user and the monitoring
# pack. The installed gateway reads the installed config: --check exits 78
# naming the missing key file, and 0 once one exists.
. tests/lib.sh

ROOT=$T/root
make -s --no-print-directory install BUILD="$BUILD" DESTDIR="$ROOT" PREFIX=/usr >"$T/install.log" 2>&1 ||
	{ cat "$T/install.log" >&2; fail "make install failed"; }

version=$(awk 'NR == 1 { gsub(/[()]/, "", $2); print $2 }' debian/changelog)
for p in tapgate tapgen tapdump tapfare tapsettle; do
	[ -x "$ROOT/usr/bin/$p" ] || fail "/usr/bin/$p is not installed"
	out=$("$ROOT/usr/bin/$p" --version) || fail "$p --version exited $?"
	[ "$out" = "$p (tapgate) $version" ] || fail "$p --version says '$out', expected '$p (tapgate) $version'"
	"$ROOT/usr/bin/$p" --help >/dev/null || fail "$p --help exited $?"
	man=$ROOT/usr/share/man/man1/$p.1
	[ -s "$man" ] || fail "no man page $man"
	grep -q "^\.TH \"*$(echo "$p" | tr a-z A-Z)\"* .*$version" "$man" || fail "$man does not name $p $version"
done

for f in etc/tapgate/tapgate.conf etc/tapgate/counterparties.conf lib/systemd/system/tapgate.service \
	lib/systemd/system/tapsettle.service usr/lib/sysusers.d/tapgate.conf usr/share/tapgate/fares-demo/fare_leg_rules.txt \
	usr/share/tapgate/monitoring/alerts.yml usr/share/tapgate/monitoring/dashboard.json; do
	[ -f "$ROOT/$f" ] || fail "/$f is not installed"
done
[ ! -e "$ROOT/etc/tapgate/validators.keys" ] || fail "a key file was installed: each deployment makes its own"
[ ! -e "$ROOT/etc/tapgate/settle.key" ] || fail "a settlement secret was installed: each deployment makes its own"
[ "$(stat -c %a "$ROOT/etc/tapgate/tapgate.conf")" = 644 ] || fail "tapgate.conf mode $(stat -c %a "$ROOT/etc/tapgate/tapgate.conf")"
conf=$ROOT/etc/tapgate/tapgate.conf
for line in "path = /var/lib/tapgate/store" "rated_path = /var/lib/tapgate/rated" "path = /var/lib/tapgate/settle" \
	"outbox = /var/lib/tapgate/outbox" "validator_key_file = /etc/tapgate/validators.keys" \
	"secret_file = /etc/tapgate/settle.key" \
	"feed = /usr/share/tapgate/fares-demo" "counterparties = /etc/tapgate/counterparties.conf"; do
	grep -qx "$line" "$conf" || fail "the installed config lacks '$line'"
done
! grep -q "= var/\|= config/" "$conf" || fail "the installed config still has a path of the source tree: $(grep "= var/\|= config/" "$conf")"

unit=$ROOT/lib/systemd/system/tapgate.service
for line in "Type=notify" "User=tapgate" "StateDirectory=tapgate" "RestartPreventExitStatus=78" \
	"ExecStartPre=/usr/bin/tapgate -c /etc/tapgate/tapgate.conf --check" \
	"ExecStart=/usr/bin/tapgate -c /etc/tapgate/tapgate.conf" 'ExecReload=/bin/kill -HUP $MAINPID' \
	"WatchdogSec=30" "ProtectSystem=strict" "NoNewPrivileges=yes" "PrivateTmp=yes"; do
	grep -qxF "$line" "$unit" || fail "tapgate.service lacks '$line'"
done
grep -qxF "ExecStart=/usr/bin/tapsettle -c /etc/tapgate/tapgate.conf run" "$ROOT/lib/systemd/system/tapsettle.service" ||
	fail "tapsettle.service does not run 'tapsettle run'"
grep -q "^u tapgate " "$ROOT/usr/lib/sysusers.d/tapgate.conf" || fail "sysusers.d/tapgate.conf makes no user tapgate"

# systemd-analyze verify checks the units' keys and that their commands exist:
# point them at the DESTDIR's programs.
if command -v systemd-analyze >/dev/null 2>&1; then
	mkdir -p "$T/units"
	for u in tapgate tapsettle; do
		sed "s|/usr/bin/|$ROOT/usr/bin/|g" "$ROOT/lib/systemd/system/$u.service" >"$T/units/$u.service"
	done
	systemd-analyze verify --man=no "$T/units/tapgate.service" "$T/units/tapsettle.service" >"$T/verify.log" 2>&1 ||
		{ cat "$T/verify.log" >&2; fail "systemd-analyze verify refuses the units"; }
	[ ! -s "$T/verify.log" ] || { cat "$T/verify.log" >&2; fail "systemd-analyze verify has remarks on the units"; }
fi

# The installed programs with the installed config: no key file yet is a config error (78).
set +e
"$ROOT/usr/bin/tapgate" -c "$conf" -s "store.path=$T/store" -s "settle.path=$T/settle" --check >"$T/check.out" 2>&1
rc=$?
set -e
[ $rc -eq 78 ] || fail "--check without a key file exited $rc, expected 78: $(cat "$T/check.out")"
grep -q "/etc/tapgate/validators.keys" "$T/check.out" || fail "--check does not name the missing key file: $(cat "$T/check.out")"
cp config/dev-validators.keys "$T/validators.keys"
chmod 600 "$T/validators.keys"
"$ROOT/usr/bin/tapgate" -c "$conf" -s "store.path=$T/store" -s "settle.path=$T/settle" \
	-s "keys.validator_key_file=$T/validators.keys" --check >"$T/check.out" 2>&1 ||
	fail "--check of the installed config with a key file exited $?: $(cat "$T/check.out")"
tapsettle_check() {
	"$ROOT/usr/bin/tapsettle" -c "$conf" -o "store.path=$T/store" -o "fares.rated_path=$T/rated" -o "settle.path=$T/settle" \
		-o "settle.outbox=$T/outbox" -o "fares.feed=$ROOT/usr/share/tapgate/fares-demo" \
		-o "settle.counterparties=$ROOT/etc/tapgate/counterparties.conf" "$@" --check >"$T/check.out" 2>&1
}
# no settlement secret yet: a config error naming it
rc=0; tapsettle_check || rc=$?
[ $rc -eq 78 ] && grep -q "/etc/tapgate/settle.key" "$T/check.out" ||
	fail "tapsettle --check without a secret exited $rc, expected 78 naming it: $(cat "$T/check.out")"
openssl rand -hex 32 >"$T/settle.key" && chmod 600 "$T/settle.key"
tapsettle_check -o "settle.secret_file=$T/settle.key" ||
	fail "tapsettle --check of the installed config exited $?: $(cat "$T/check.out")"

# A PREFIX other than /usr keeps everything under it.
make -s --no-print-directory install BUILD="$BUILD" DESTDIR="$T/local" PREFIX=/opt/tapgate >"$T/install.log" 2>&1 ||
	{ cat "$T/install.log" >&2; fail "make install PREFIX=/opt/tapgate failed"; }
[ -x "$T/local/opt/tapgate/bin/tapgate" ] && [ -f "$T/local/opt/tapgate/etc/tapgate/tapgate.conf" ] ||
	fail "PREFIX=/opt/tapgate did not install under /opt/tapgate"
[ "$(find "$T/local" -mindepth 1 -maxdepth 1)" = "$T/local/opt" ] || fail "PREFIX=/opt/tapgate installed outside /opt: $(ls "$T/local")"
grep -qxF "ExecStart=/opt/tapgate/bin/tapgate -c /opt/tapgate/etc/tapgate/tapgate.conf" \
	"$T/local/opt/tapgate/lib/systemd/system/tapgate.service" || fail "the /opt unit does not point at /opt/tapgate"
echo "install tree sound"
