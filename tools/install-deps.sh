#!/bin/sh
# Install the Debian packages that tapgate's build, tests and benchmarks need,
# but only those that are missing, and say which ones are being installed.
# Safe to run by hand. Needs root (or sudo) only when something is missing.
#
#   tools/install-deps.sh              what the README's targets need (demo, test, check, bench,
#                                      fuzz): the build, the tests and the benchmarks; installs
#   tools/install-deps.sh --packaging  that, and the Debian packaging tools (make deb); installs
#   tools/install-deps.sh --check      installs nothing: names the packages missing for a build
#                                      and `make install`, and exits 1 if there are any
#
# make runs the first for its README targets, the second for `make deb` and
# the third for every other goal (`make`, `make install`): packagers and build
# machines do not let a build run apt-get.
set -eu

# The build (and make install): one line per package.
# libcsv-dev: the CSV parser of the fare engine's GTFS feeds (tools/pkgconfig/libcsv.pc);
# libxml2-dev: settlement's ISO 20022 pain.001 writer; libssl-dev: OpenSSL's SHA-256 (CPU SHA
# instructions) for the frame MACs; libdpdk-dev: the DPDK ingress (with its net_tap, net_pcap,
# net_memif PMDs); libsystemd-dev: sd_notify (READY, STOPPING, WATCHDOG) under systemd;
# help2man: the man pages, made from each program's --help and --version; libcmocka-dev: the
# unit tests, which `make` builds too.
BUILD_PACKAGES="
build-essential
pkg-config
liburing-dev
liblmdb-dev
libxxhash-dev
libsodium-dev
libssl-dev
libmicrohttpd-dev
libinih-dev
libcsv-dev
libxml2-dev
libdpdk-dev
libsystemd-dev
help2man
libcmocka-dev
"
# The tests, the fuzzer and the benchmarks.
# clang, libclang-rt-14-dev: the fuzzer; lmdb-utils: mdb_stat and mdb_copy in the tests;
# libxml2-utils: xmllint, the schema check of the settlement test; python3: that test's
# independent file checker; util-linux: flock(1) in the settlement kill test; python3-scapy:
# the independent packet tool of the DPDK pcap test; iproute2: the network namespaces of the
# DPDK kernel-peer test; prometheus: promtool (metric names, alert rules) and the server that
# scrapes a gateway in the monitoring test.
TEST_PACKAGES="
clang
libclang-rt-14-dev
lmdb-utils
libxml2-utils
python3
util-linux
python3-scapy
iproute2
curl
prometheus
"
# make deb: dpkg-buildpackage, debhelper's dh, lintian.
PACKAGING_PACKAGES="
dpkg-dev
debhelper
fakeroot
lintian
"

mode=${1:-all}
case $mode in
--check) PACKAGES=$BUILD_PACKAGES ;;
all) PACKAGES="$BUILD_PACKAGES $TEST_PACKAGES" ;;
--packaging) PACKAGES="$BUILD_PACKAGES $TEST_PACKAGES $PACKAGING_PACKAGES" ;;
*) echo "usage: tools/install-deps.sh [--check | --packaging]" >&2; exit 64 ;;
esac

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

[ -z "$missing" ] && exit 0

if [ "$mode" = --check ]; then
	echo "tapgate: missing Debian packages:$missing" >&2
	echo "tapgate: install them (apt-get install$missing), or run 'make test' or 'make demo', which do" >&2
	exit 1
fi

echo "tapgate: installing missing Debian packages:$missing" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "tapgate: need root to install:$missing" >&2
		exit 1
	fi
fi
export DEBIAN_FRONTEND=noninteractive
# The package lists may be stale or absent on a fresh machine.
$SUDO apt-get update -qq >&2
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >&2
echo "tapgate: installed:$missing" >&2
