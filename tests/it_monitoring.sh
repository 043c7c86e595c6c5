#!/bin/sh
# The monitoring pack checks out with Prometheus' own tool: the gateway's
# /metrics passes `promtool check metrics` (base units, _total counters, help
# on every family) after a load that touched every counter family, the alert
# rules pass `promtool check rules` and their unit tests
# (monitoring/alerts_test.yml), and the dashboard is valid JSON whose queries
# name only metrics the gateway serves. /metrics carries the build, process,
# dedup, store and validator figures; /healthz says ok.
. tests/lib.sh
command -v promtool >/dev/null 2>&1 || fail "promtool is missing (Debian's prometheus package; make test installs it)"

promtool check rules monitoring/alerts.yml >"$T/rules.out" 2>&1 || { cat "$T/rules.out" >&2; fail "promtool check rules"; }
promtool test rules monitoring/alerts_test.yml >"$T/rules.out" 2>&1 || { cat "$T/rules.out" >&2; fail "promtool test rules"; }

start_gateway
tapgen --validators 8 --taps 2000 --taps-per-frame 8 --retransmit-rate 0.2 --bad-mac 5 >"$T/tapgen.out" 2>&1 ||
	{ cat "$T/tapgen.out" >&2; fail "tapgen"; }
curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" >"$T/metrics.txt" || fail "no /metrics"
promtool check metrics <"$T/metrics.txt" >"$T/lint.out" 2>&1 || { cat "$T/lint.out" >&2; fail "promtool check metrics refuses /metrics"; }
[ ! -s "$T/lint.out" ] || { cat "$T/lint.out" >&2; fail "promtool check metrics has remarks on /metrics"; }

version=$(awk 'NR == 1 { gsub(/[()]/, "", $2); print $2 }' debian/changelog)
grep -qx "tapgate_build_info{version=\"$version\"} 1" "$T/metrics.txt" || fail "no tapgate_build_info for $version"
for m in process_cpu_seconds_total process_resident_memory_bytes process_open_fds process_max_fds \
	process_start_time_seconds tapgate_dedup_capacity tapgate_dedup_entries tapgate_store_used_bytes \
	tapgate_map_size_bytes tapgate_deny_list_version tapgate_validators_seen tapgate_healthy tapgate_commit_failing \
	tapgate_ack_latency_seconds_count tapgate_commit_latency_seconds_sum; do
	grep -q "^$m[ {]" "$T/metrics.txt" || fail "/metrics lacks $m"
done
! grep -q "_us[ {_]" "$T/metrics.txt" || fail "a metric in microseconds: $(grep "_us[ {_]" "$T/metrics.txt" | head -n 3)"
[ "$(metric tapgate_dedup_capacity)" = 2000000 ] || fail "tapgate_dedup_capacity is $(metric tapgate_dedup_capacity), expected dedup.taps_max 2000000"
# The validators' state reaches the store with the first commit a second after the last flush:
# send a few more taps until it has.
SEED=100
more_taps_seen() {
	SEED=$((SEED + 1))
	tapgen --validators 8 --taps 16 --seed $SEED >/dev/null 2>&1 || return 1
	metric_is tapgate_validators_seen 8
}
wait_for 60 "tapgate_validators_seen to be 8" more_taps_seen
[ "$(metric 'tapgate_validators_silent{minutes="5"}')" = 0 ] || fail "validators silent although they just sent"
[ "$(metric tapgate_healthy)" = 1 ] || fail "tapgate_healthy is $(metric tapgate_healthy)"
[ "$(metric tapgate_commit_failing)" = 0 ] || fail "tapgate_commit_failing is $(metric tapgate_commit_failing)"
[ "$(metric process_open_fds)" -gt 3 ] || fail "process_open_fds is $(metric process_open_fds)"
start=$(metric process_start_time_seconds)
now=$(date +%s)
[ "${start%.*}" -le "$now" ] && [ "${start%.*}" -gt $((now - 3600)) ] || fail "process_start_time_seconds $start is not the gateway's start"
[ "$(curl -s "http://127.0.0.1:$METRICS_PORT/healthz")" = ok ] || fail "/healthz is not ok"

# Every metric the dashboard and the alerts query is one the gateway serves (or Prometheus' own up/ALERTS).
python3 - "$T/metrics.txt" monitoring/dashboard.json monitoring/alerts.yml <<'PY' || fail "the dashboard or the alerts name a metric /metrics lacks"
import json, re, sys
served = {l.split()[2] for l in open(sys.argv[1]) if l.startswith("# TYPE ")}
dash = json.load(open(sys.argv[2]))
exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
exprs += re.findall(r"^\s*expr: (.*)$", open(sys.argv[3]).read(), re.M)
known = served | {"up", "ALERTS"}
bad = set()
for e in exprs:
    for name in re.findall(r"\b((?:tapgate|process)_[a-z_]+|up|ALERTS)\b", e):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in known and base not in known:
            bad.add(name)
if bad:
    print("unknown metrics:", sorted(bad)); sys.exit(1)
PY
stop_gateway
echo "ok: promtool accepts /metrics and the rules; dashboard and alerts query served metrics"
