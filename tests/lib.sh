# lib.sh - helpers for the integration tests (sourced, POSIX sh).
# Each test gets a temporary directory with its own store and ports, starts the
# real gateway binary on loopback and talks to it with the real tools.
set -eu
BUILD=${BUILD:-build}
BIN=$BUILD/bin
T=$(mktemp -d /tmp/tapgate-it.XXXXXX)
# Ports from the process id, so two runs on one machine do not collide.
PORT=$((20000 + ($$ * 7) % 20000))
METRICS_PORT=$((PORT + 1))
GW_PID=""
# Set by tests that run the gateway in a network namespace: "ip netns exec NAME".
NS_EXEC=${NS_EXEC:-}

cleanup() {
	if [ -n "$GW_PID" ] && kill -0 "$GW_PID" 2>/dev/null; then kill -9 "$GW_PID" 2>/dev/null || true; fi
	rm -rf "$T"
	# The runtime directories of the DPDK tests' EAL instances (named by --file-prefix).
	for prefix in tgns tgpcap tgcfg; do rm -rf "/var/run/dpdk/$prefix$$"; done
}
trap cleanup EXIT INT TERM

# schemas_dir: the official ISO 20022 schemas, which stay outside the project
# (../shared/schemas of the project root, or of the repository a clone came
# from; TAPGATE_SCHEMAS overrides).
schemas_dir() {
	origin=$(git config --get remote.origin.url 2>/dev/null || true)
	origin=$(cd "$origin" 2>/dev/null && pwd -P || true) # a local path, as a clone here has ("/work/main/.")
	for d in ${TAPGATE_SCHEMAS:-} ../shared/schemas ${origin:+"$(dirname "$origin")/shared/schemas"}; do
		if [ -f "$d/pain.001.001.10.xsd" ] && [ -f "$d/pain.002.001.11.xsd" ]; then
			echo "$d"
			return 0
		fi
	done
	echo "FAIL: the ISO 20022 schemas are not in \$TAPGATE_SCHEMAS, ../shared/schemas or beside the origin repository" >&2
	return 1
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

# start_gateway [-s key=value ...]: start with the shipped config on a temporary store.
start_gateway() {
	$NS_EXEC "$BIN/tapgate" -c config/tapgate.conf -s "store.path=$T/store" -s "settle.path=$T/settle" -s "gateway.listen_port=$PORT" \
		-s "gateway.metrics_port=$METRICS_PORT" -s dedup.taps_max=2000000 "$@" >>"$T/gateway.log" 2>&1 &
	GW_PID=$!
	i=0
	until $NS_EXEC curl -sf "http://127.0.0.1:$METRICS_PORT/healthz" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 200 ] || fail "gateway did not come up"
		if ! kill -0 "$GW_PID" 2>/dev/null; then
			skip_if_eal_failed "$T/gateway.log"
			fail "gateway exited at start-up"
		fi
		sleep 0.05
	done
}

# stop_gateway: SIGTERM, and it must exit 0.
stop_gateway() {
	kill -TERM "$GW_PID"
	wait "$GW_PID" || fail "gateway exited with $? after SIGTERM"
	GW_PID=""
}

kill9_gateway() {
	kill -9 "$GW_PID"
	wait "$GW_PID" 2>/dev/null || true
	GW_PID=""
}

# metric NAME: the value of one sample line (name with labels as printed).
metric() {
	$NS_EXEC curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" | awk -v n="$1" '$1 == n { print $2; found=1 } END { if (!found) print "missing" }'
}

# expect_metric NAME VALUE: wait up to 5 s for the metric to equal VALUE.
expect_metric() {
	i=0
	while [ "$(metric "$1")" != "$2" ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "metric $1 is $(metric "$1"), expected $2"
		sleep 0.05
	done
}

# wait_metric_at_least NAME N: wait up to 20 s until the metric reaches N.
wait_metric_at_least() {
	i=0
	while [ "$(metric "$1")" = missing ] || [ "$(metric "$1")" -lt "$2" ]; do
		i=$((i + 1))
		[ $i -lt 400 ] || fail "metric $1 is $(metric "$1"), expected at least $2"
		sleep 0.05
	done
}

tapgen() {
	"$BIN/tapgen" --gateway "127.0.0.1:$PORT" "$@"
}

# wait_for WHAT CMD...: poll CMD until it succeeds; fail naming WHAT if it
# has not within 60 s (a bound for a hung program, not a timing assumption).
wait_for() {
	what=$1
	shift
	deadline=$(($(date +%s) + 60))
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$deadline" ] || fail "waited 60 s for $what"
		sleep 0.05
	done
}
