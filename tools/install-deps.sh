#!/bin/sh
# Install the Debian packages that tapgate's build, tests and benchmarks need,
# but only those that are missing, and say which ones are being installed.
# Called by make before every build; safe to run by hand. Needs root (or sudo)
# only when something is actually missing.
set -eu

# One line per package: the build, the tests and the benchmarks need all of these.
# libdpdk-dev: the DPDK ingress (with its net_tap, net_pcap, net_memif PMDs);
# python3-scapy: the independent packet tool of the DPDK pcap test;
# libssl-dev: OpenSSL's SHA-256 (CPU SHA instructions) for the frame MACs;
# iproute2: the network namespaces of the DPDK kernel-peer test;
# libcsv-dev: the CSV parser of the fare engine's GTFS feeds (tools/pkgconfig/libcsv.pc);
# libxml2-dev: settlement's ISO 20022 pain.001 writer; libxml2-utils: xmllint, the schema check
# of the settlement test; python3: that test's independent file checker; util-linux: flock(1)
# in the settlement kill test.
PACKAGES="
build-essential
pkg-config
clang
libclang-rt-14-dev
liburing-dev
liblmdb-dev
lmdb-utils
libxxhash-dev
libsodium-dev
libssl-dev
libcmocka-dev
libmicrohttpd-dev
libinih-dev
libcsv-dev
libxml2-dev
libxml2-utils
python3
util-linux
libdpdk-dev
python3-scapy
iproute2
curl
"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

[ -z "$missing" ] && exit 0

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
