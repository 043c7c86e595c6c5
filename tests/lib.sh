# lib.sh - helpers for the integration tests (sourced, POSIX sh).
# Each test gets a temporary directory with its own store and ports, starts the
# real gateway binary on loopback and talks to it with the real tools.
#
# No test sleeps for a fixed time: each waits for the condition it needs
# (wait_for), with a deadline generous enough for a slow or loaded machine,
# and fails naming what it waited for. Ports are tried before they are used.
set -eu
BUILD=${BUILD:-build}
BIN=$BUILD/bin
T=$(mktemp -d /tmp/tapgate-it.XXXXXX)
GW_PID=""
# Set by tests that run the gateway in a network namespace: "ip netns exec NAME".
NS_EXEC=${NS_EXEC:-}

cleanup() {
	if [ -n "$GW_PID" ] && kill -0 "$GW_PID" 2>/dev/null; then kill -9 "$GW_PID" 2>/dev/null || true; fi
	# Whatever else the test left running in the background (a tapgen load, tapsettle run, a
	# listener): a failed test must not leave processes behind that hold its output open.
	# (jobs -p into a file: in $(...) it would run in a subshell, which has no jobs)
	jobs -p >"$T/.jobs" 2>/dev/null || true
	for p in $(cat "$T/.jobs" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$T"
	# The runtime directories of the DPDK tests' EAL instances (named by --file-prefix).
	for prefix in tgns tgpcap tgcfg; do rm -rf "/var/run/dpdk/$prefix$$"; done
}
trap cleanup EXIT INT TERM

# pick_ports: PORT (UDP, the gateway's) and METRICS_PORT = PORT + 1 (TCP), a
# pair that binds on 127.0.0.1 right now. Chosen at random below the kernel's
# ephemeral range, so no outgoing connection takes it meanwhile; a gateway
# that still finds one taken (another test picked it since) is started again
# on a new pair by start_gateway.
pick_ports() {
	PORT=$(python3 - <<'PY'
import random, socket, sys
lo, hi = 20000, 32766
try:
    first = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    if first - 2 > lo + 1000:
        hi = min(hi, first - 2)
except (OSError, ValueError):
    pass
for _ in range(500):
    p = random.randrange(lo, hi)
    socks = []
    try:
        for kind, port in ((socket.SOCK_DGRAM, p), (socket.SOCK_STREAM, p + 1)):
            s = socket.socket(socket.AF_INET, kind)
            socks.append(s)
            s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(p)
    sys.exit(0)
sys.exit(1)
PY
	) || { echo "FAIL: no free pair of ports between 20000 and 32767" >&2; exit 1; }
	METRICS_PORT=$((PORT + 1))
}
pick_ports
PORTS_USED="" # set once a gateway has run on them: from then on a test's tools use them

# wait_until SECONDS COMMAND [ARG...]: run COMMAND until it succeeds; at once
# if it already does, then every 50 ms. Returns 1 if SECONDS pass first.
wait_until() {
	_wu_end=$(($(date +%s) + $1))
	shift
	until "$@"; do
		[ "$(date +%s)" -lt "$_wu_end" ] || return 1
		sleep 0.05
	done
}

# wait_for SECONDS WHAT COMMAND [ARG...]: wait_until, and fail naming WHAT.
wait_for() {
	_wf_secs=$1 _wf_what=$2
	shift 2
	wait_until "$_wf_secs" "$@" || fail "waited ${_wf_secs}s for $_wf_what"
}

# exited PID: the process is gone or a zombie (kill -0 succeeds on a zombie).
exited() {
	! kill -0 "$1" 2>/dev/null || [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" = Z ]
}

# schemas_dir: the official ISO 20022 schemas, which stay outside the project
# (../shared/schemas of the project root, or beside the repository this
# checkout, or the one it was cloned from, belongs to: a git worktree's main
# repository counts; TAPGATE_SCHEMAS overrides).
schemas_dir() {
	origin=$(git config --get remote.origin.url 2>/dev/null || true)
	origin=$(cd "$origin" 2>/dev/null && pwd -P || true) # a local path, as a clone here has ("/work/main/.")
	for d in ${TAPGATE_SCHEMAS:-} ../shared/schemas $(beside_repo .) ${origin:+$(beside_repo "$origin")}; do
		if [ -f "$d/pain.001.001.10.xsd" ] && [ -f "$d/pain.002.001.11.xsd" ]; then
			echo "$d"
			return 0
		fi
	done
	echo "FAIL: the ISO 20022 schemas are not in \$TAPGATE_SCHEMAS, ../shared/schemas or beside the origin repository" >&2
	return 1
}

# beside_repo DIR: shared/schemas beside DIR and beside the main repository of DIR's git worktree.
beside_repo() {
	_br_main=$(cd "$1" 2>/dev/null && cd "$(git rev-parse --git-common-dir 2>/dev/null || echo .)/.." 2>/dev/null && pwd -P || true)
	echo "$(dirname "$1")/shared/schemas" ${_br_main:+"$(dirname "$_br_main")/shared/schemas"}
}

# business_day SECONDS_AGO: the business day (Asia/Shanghai, cutoff 04:30) of that many seconds ago.
# A closed day whatever the time now: business_day 108000 (30 hours ago: over, and past its grace).
business_day() {
	TZ=Asia/Shanghai date -d "@$(($(date +%s) - $1 - 16200))" +%Y%m%d
}

# settle ARGS...: tapsettle on this test's stores (gateway log, rated legs, settle store, outbox).
SETTLE_ARGS="-c config/tapgate.conf -o store.path=$T/store -o fares.rated_path=$T/rated -o settle.path=$T/settle -o settle.outbox=$T/outbox"
settle() {
	"$BIN/tapsettle" $SETTLE_ARGS "$@"
}

fail() {
	echo "FAIL: $*" >&2
	if [ -f "$T/gateway.log" ]; then echo "--- gateway log:" >&2; tail -n 20 "$T/gateway.log" >&2; fi
	exit 1
}

# skip_if_eal_failed LOG: the one environment failure a test may skip for
# (exit 77, saying why): DPDK's EAL cannot start on this machine.
skip_if_eal_failed() {
	if grep -q "DPDK EAL did not start" "$1"; then
		echo "skip: $(grep -A1 'FATAL DPDK' "$1" | tail -n 1)"
		exit 77
	fi
}

# start_gateway [-s key=value ...]: start with the shipped config on a
# temporary store, and return once it serves /healthz and its ingress is
# receiving (the UDP socket is bound after the metrics endpoint starts).
# Ports found taken on the first start are replaced by a new pair.
start_gateway() {
	_sg_try=1
	until start_gateway_once "$@"; do
		[ -z "$PORTS_USED" ] && [ $_sg_try -lt 5 ] || fail "gateway cannot bind its ports ($PORT, $METRICS_PORT)"
		echo "ports $PORT/$METRICS_PORT were taken; trying another pair" >&2
		_sg_try=$((_sg_try + 1))
		pick_ports
	done
	PORTS_USED=1
}

# udp_port_free PORT: a UDP socket can bind 127.0.0.1:PORT (in the test's network namespace).
udp_port_free() {
	$NS_EXEC python3 -c 'import socket, sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind(("127.0.0.1", int(sys.argv[1])))' \
		"$1" 2>/dev/null
}

# Returns 1 if the gateway exited because a port was taken; fails on any other exit.
start_gateway_once() {
	# A gateway that has just exited may still hold its UDP socket: the kernel
	# tears an io_uring instance down after its process, asynchronously.
	if [ -n "$PORTS_USED" ]; then
		wait_for 30 "UDP port $PORT to be released by the previous gateway" udp_port_free "$PORT"
	fi
	_sg_log_from=1
	if [ -f "$T/gateway.log" ]; then _sg_log_from=$(($(wc -c <"$T/gateway.log") + 1)); fi
	$NS_EXEC "$BIN/tapgate" -c config/tapgate.conf -s "store.path=$T/store" -s "settle.path=$T/settle" -s "gateway.listen_port=$PORT" \
		-s "gateway.metrics_port=$METRICS_PORT" -s dedup.taps_max=2000000 "$@" >>"$T/gateway.log" 2>&1 &
	GW_PID=$!
	_sg_end=$(($(date +%s) + 60))
	until gateway_ready; do
		if exited "$GW_PID"; then
			wait "$GW_PID" 2>/dev/null || true
			GW_PID=""
			skip_if_eal_failed "$T/gateway.log"
			if tail -c "+$_sg_log_from" "$T/gateway.log" | grep -q "cannot bind UDP\|cannot serve metrics"; then return 1; fi
			fail "gateway exited at start-up"
		fi
		[ "$(date +%s)" -lt "$_sg_end" ] || fail "gateway did not come up in 60 s"
		sleep 0.05
	done
}

gateway_ready() {
	tail -c "+$_sg_log_from" "$T/gateway.log" 2>/dev/null | grep -Eq "tapgate: ingress (io_uring|recvmmsg)|tapgate: DPDK port [0-9]+: link" &&
		$NS_EXEC curl -sf --max-time 5 "http://127.0.0.1:$METRICS_PORT/healthz" >/dev/null 2>&1
}

# stop_gateway: SIGTERM, and it must exit 0 within 60 s.
stop_gateway() {
	kill -TERM "$GW_PID"
	wait_for 60 "the gateway to exit after SIGTERM" exited "$GW_PID"
	wait "$GW_PID" || fail "gateway exited with $? after SIGTERM"
	GW_PID=""
}

kill9_gateway() {
	kill -9 "$GW_PID"
	wait "$GW_PID" 2>/dev/null || true
	GW_PID=""
}

# metric NAME: the value of one sample line (name with labels as printed), or "missing".
metric() {
	$NS_EXEC curl -sf --max-time 10 "http://127.0.0.1:$METRICS_PORT/metrics" |
		awk -v n="$1" '$1 == n { print $2; found=1 } END { if (!found) print "missing" }'
}

# metric_is NAME VALUE, metric_at_least NAME N: true if the metric is VALUE, at least N.
metric_is() {
	[ "$(metric "$1")" = "$2" ]
}
metric_at_least() {
	_m=$(metric "$1")
	[ "$_m" != missing ] && [ "$_m" -ge "$2" ]
}

# expect_metric NAME VALUE: wait up to 60 s for the metric to equal VALUE.
expect_metric() {
	wait_until 60 metric_is "$1" "$2" || fail "metric $1 is $(metric "$1"), expected $2 (waited 60 s)"
}

# wait_metric_at_least NAME N: wait up to 120 s until the metric reaches N.
wait_metric_at_least() {
	wait_until 120 metric_at_least "$1" "$2" || fail "metric $1 is $(metric "$1"), expected at least $2 (waited 120 s)"
}

tapgen() {
	"$BIN/tapgen" --gateway "127.0.0.1:$PORT" "$@"
}
