#!/bin/sh
# The Type=notify protocol, without systemd: the test listens on a datagram
# socket named by $NOTIFY_SOCKET, as systemd does, with WATCHDOG_USEC set.
# The gateway must say READY=1 (with its status line) only once /healthz is
# ok, WATCHDOG=1 while it runs, and STOPPING=1 on SIGTERM before it exits 0.
. tests/lib.sh
python3 - "$T/notify.sock" "$T/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        msg = s.recv(4096).decode()
        for line in msg.split("\n"):
            log.write(line + "\n")
        if "STOPPING=1" in msg:
            break
PY
LISTENER=$!
wait_for 60 "the notify socket" test -S "$T/notify.sock"
ready_logged() { grep -qx "READY=1" "$T/notify.log" 2>/dev/null; }
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=2000000 start_gateway
wait_for 60 "READY=1 on the notify socket" ready_logged
grep -q "^STATUS=ok" "$T/notify.log" || fail "READY=1 came without the status 'ok': $(cat "$T/notify.log")"
watchdog_pinged() { grep -qx "WATCHDOG=1" "$T/notify.log"; }
wait_for 60 "WATCHDOG=1 (WatchdogSec 2 s: every 0.5 s)" watchdog_pinged
stop_gateway
wait_for 60 "the listener to read STOPPING=1" exited "$LISTENER"
grep -qx "STOPPING=1" "$T/notify.log" || fail "no STOPPING=1: $(cat "$T/notify.log")"
echo "ok: READY=1, WATCHDOG=1, STOPPING=1"
