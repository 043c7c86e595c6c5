#!/bin/sh
# make deb: dpkg-buildpackage -us -uc -b builds the package (with -Werror and
# dpkg-buildflags' hardening), lintian finds no error in it, and the package
# holds what an `apt install ./tapgate_*.deb` needs: the programs, man pages,
# /etc/tapgate as conffiles, the units (enabled by the maintainer scripts),
# the system user made by systemd-sysusers before the state directory.
# Skipped (77) where the packaging tools are missing: `make deb` installs them.
. tests/lib.sh

for tool in dpkg-buildpackage dh lintian fakeroot; do
	command -v "$tool" >/dev/null 2>&1 || { echo "skip: $tool is not installed (make deb installs the packaging tools)"; exit 77; }
done
version=$(awk 'NR == 1 { gsub(/[()]/, "", $2); print $2 }' debian/changelog)
make -s --no-print-directory deb BUILD="$T/build" >"$T/deb.log" 2>&1 || { tail -n 40 "$T/deb.log" >&2; fail "make deb failed"; }
deb=$(ls "$T"/build/deb/tapgate_"$version"_*.deb)
[ -f "$deb" ] || fail "no tapgate_${version}_*.deb"
grep -q "^E: " "$T/deb.log" && fail "lintian errors: $(grep '^E: ' "$T/deb.log")"

dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|' >"$T/contents"
for f in /usr/bin/tapgate /usr/bin/tapgen /usr/bin/tapdump /usr/bin/tapfare /usr/bin/tapsettle \
	/usr/share/man/man1/tapgate.1.gz /usr/share/man/man1/tapsettle.1.gz /etc/tapgate/tapgate.conf \
	/etc/tapgate/counterparties.conf /lib/systemd/system/tapgate.service /lib/systemd/system/tapsettle.service \
	/usr/lib/sysusers.d/tapgate.conf /usr/share/tapgate/monitoring/alerts.yml /usr/share/doc/tapgate/copyright; do
	grep -qx "$f" "$T/contents" || fail "the package lacks $f"
done
mkdir -p "$T/control"
dpkg-deb -e "$deb" "$T/control"
grep -qx /etc/tapgate/tapgate.conf "$T/control/conffiles" || fail "/etc/tapgate/tapgate.conf is not a conffile"
grep -q "systemd-sysusers.*tapgate.conf" "$T/control/postinst" || fail "postinst does not create the system user"
grep -q "deb-systemd-helper enable 'tapgate.service'" "$T/control/postinst" || fail "postinst does not enable tapgate.service"
grep -q "install -d -o tapgate -g tapgate -m 0750 /var/lib/tapgate" "$T/control/postinst" || fail "postinst makes no /var/lib/tapgate"
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "package version $(dpkg-deb -f "$deb" Version), expected $version"
dpkg-deb -f "$deb" Depends | grep -q libsystemd0 || fail "the package does not depend on libsystemd0"
# The packaged gateway is the one built with the package's flags, and it runs.
dpkg-deb -x "$deb" "$T/x"
[ "$("$T/x/usr/bin/tapgate" --version)" = "tapgate (tapgate) $version" ] || fail "the packaged tapgate --version: $("$T/x/usr/bin/tapgate" --version)"
echo "package sound: $(basename "$deb"), $(wc -l <"$T/contents") entries, lintian: $(grep -c '^[EW]: ' "$T/deb.log" || true) errors or warnings"
