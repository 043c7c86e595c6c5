#!/bin/sh
# A real Prometheus server (Debian's prometheus, on loopback, its own data
# directory, a free port, 1 s scrapes and rule evaluations) scrapes a running
# gateway with the shipped alert rules. The gateway's store is on a 2 MiB
# tmpfs that a load fills (as in it_diskfull): TapgateCommitsFailing must fire
# (waited for on the alerts API, bounded) and /healthz answer 503 while the
# store refuses commits; once the disk has room, every tap is acknowledged,
# /healthz is ok again and the alert resolves.
. tests/lib.sh
command -v prometheus >/dev/null 2>&1 || fail "prometheus is missing (Debian's prometheus package; make test installs it)"
[ "$(id -u)" -eq 0 ] || { echo "skipped: needs root to mount a small tmpfs"; exit 77; }
mkdir "$T/small"
mount -t tmpfs -o size=2m tapgate-test "$T/small" || { echo "skipped: cannot mount a tmpfs here"; exit 77; }
PROM_PID=""
cleanup_all() {
	if [ -n "$PROM_PID" ]; then kill "$PROM_PID" 2>/dev/null || true; wait "$PROM_PID" 2>/dev/null || true; fi
	if [ -n "$GW_PID" ]; then kill -9 "$GW_PID" 2>/dev/null || true; wait "$GW_PID" 2>/dev/null || true; GW_PID=""; fi
	umount "$T/small" 2>/dev/null || true
	cleanup
}
trap cleanup_all EXIT INT TERM

start_gateway -s "store.path=$T/small/store" -s store.map_size_mb=64

PROM_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$T/prometheus.yml" <<EOC
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $(pwd)/monitoring/alerts.yml
scrape_configs:
  - job_name: tapgate
    static_configs:
      - targets: ["127.0.0.1:$METRICS_PORT"]
EOC
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prometheus-data" \
	--web.listen-address="127.0.0.1:$PROM_PORT" >"$T/prometheus.log" 2>&1 &
PROM_PID=$!
API=http://127.0.0.1:$PROM_PORT/api/v1

# query EXPR: the value of the first sample of an instant query, or "none".
query() {
	curl -sf --max-time 5 -G "$API/query" --data-urlencode "query=$1" 2>/dev/null |
		python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")' 2>/dev/null ||
		echo none
}
query_is() { [ "$(query "$1")" = "$2" ]; }
# alert_state NAME: firing, pending, or none.
alert_state() {
	curl -sf --max-time 5 "$API/alerts" 2>/dev/null | python3 -c '
import json, sys
states = [a["state"] for a in json.load(sys.stdin)["data"]["alerts"] if a["labels"]["alertname"] == sys.argv[1]]
print("firing" if "firing" in states else states[0] if states else "none")' "$1" 2>/dev/null || echo none
}
alert_is() { [ "$(alert_state "$1")" = "$2" ]; }
prom_ready() { curl -sf --max-time 5 "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null 2>&1; }
healthz_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$METRICS_PORT/healthz"; }
healthz_is() { [ "$(healthz_code)" = "$1" ]; }

wait_for 60 "Prometheus to be ready" prom_ready
wait_for 60 "Prometheus to scrape the gateway (up == 1)" query_is 'up{job="tapgate"}' 1
wait_for 60 "Prometheus to have the gateway's tapgate_healthy == 1" query_is 'tapgate_healthy{job="tapgate"}' 1
alert_is TapgateCommitsFailing none || fail "TapgateCommitsFailing is $(alert_state TapgateCommitsFailing) before any failure"

tapgen --validators 32 --taps 60000 --taps-per-frame 8 --give-up-s 180 --out "$T/sent.csv" >"$T/tapgen.out" 2>&1 &
TG=$!
wait_metric_at_least tapgate_commit_failures_total 1
wait_for 60 "/healthz to answer 503 while the store refuses commits" healthz_is 503
curl -s "http://127.0.0.1:$METRICS_PORT/healthz" | grep -q "failing: the store refuses to commit" ||
	fail "/healthz does not say why: $(curl -s "http://127.0.0.1:$METRICS_PORT/healthz")"
wait_for 120 "alert TapgateCommitsFailing to fire on Prometheus' alerts API" alert_is TapgateCommitsFailing firing
echo "TapgateCommitsFailing fired after $(metric tapgate_commit_failures_total) failed commits; making room"

mount -o remount,size=256m "$T/small"
wait $TG || { cat "$T/tapgen.out"; fail "tapgen did not get every tap acknowledged after the disk had room"; }
wait_for 60 "/healthz to be ok once commits succeed" healthz_is 200
wait_for 120 "alert TapgateCommitsFailing to resolve" alert_is TapgateCommitsFailing none
stop_gateway
echo "ok: Prometheus scraped the gateway, TapgateCommitsFailing fired while the disk was full and resolved after"
