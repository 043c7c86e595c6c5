#!/usr/bin/env python3
"""slowloris.py - slow HTTP clients for tests/it_metrics_slowloris.sh.

Opens groups of TCP connections to 127.0.0.1:PORT, each group from its own
loopback source addresses (Linux answers on all of 127.0.0.0/8), and keeps
them slow: every DRIBBLE seconds one more byte of a request whose headers never
end, or (DRIBBLE 0) nothing at all. It reports, in a status file rewritten
every 0.2 s (write and rename), how many connections of each group the server
still holds and how many it closed, and how long after their opening:

  ready 1
  group NAME opened N open N closed N closed_first_s X closed_last_s Y failed N

usage: slowloris.py --port P --status FILE --seconds S GROUP...
  GROUP = NAME:FIRST_ADDRESS:ADDRESSES:PER_ADDRESS:DRIBBLE_S
  e.g. one:127.0.0.2:1:300:1 (300 connections from 127.0.0.2, a byte a second)
"""
import argparse
import ipaddress
import os
import random
import select
import signal
import socket
import time

REQUEST = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100000


class Conn:
    def __init__(self, group, sock, now, dribble_s):
        self.group, self.sock, self.opened = group, sock, now
        self.sent = 0
        self.closed = None
        self.next_send = now + random.uniform(0, dribble_s) if dribble_s > 0 else None


def parse_group(text):
    name, first, addresses, per_address, dribble = text.split(":")
    return name, ipaddress.IPv4Address(first), int(addresses), int(per_address), float(dribble)


def open_group(port, group, conns, stats):
    name, first, addresses, per_address, dribble = group
    for a in range(addresses):
        for _ in range(per_address):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.settimeout(5)
                s.bind((str(first + a), 0))
                s.connect(("127.0.0.1", port))
                s.setblocking(False)
            except OSError:
                s.close()
                stats[name]["failed"] += 1
                continue
            stats[name]["opened"] += 1
            conns.append(Conn(name, s, time.monotonic(), dribble))


def close_conn(c, now, stats):
    c.closed = now
    c.sock.close()
    st = stats[c.group]
    st["closed_s"].append(now - c.opened)


def service(conns, dribbles, stats, timeout_s):
    live = {c.sock.fileno(): c for c in conns if c.closed is None}
    p = select.poll()
    for fd in live:
        p.register(fd, select.POLLIN)
    for fd, _ in p.poll(timeout_s * 1000):
        c = live[fd]
        try:
            if c.sock.recv(65536):
                continue  # an error page before the close: the close follows
        except BlockingIOError:
            continue
        except OSError:
            pass
        close_conn(c, time.monotonic(), stats)
    now = time.monotonic()
    for c in conns:
        if c.closed is None and c.next_send is not None and now >= c.next_send:
            try:
                c.sock.send(REQUEST[c.sent:c.sent + 1])
                c.sent += 1
            except BlockingIOError:
                pass
            except OSError:
                close_conn(c, now, stats)
                continue
            c.next_send += dribbles[c.group]


def write_status(path, conns, stats, ready):
    lines = ["ready %d" % ready]
    for name, st in stats.items():
        held = sum(1 for c in conns if c.group == name and c.closed is None)
        cs = st["closed_s"]
        lines.append("group %s opened %d open %d closed %d closed_first_s %.3f closed_last_s %.3f failed %d" % (
            name, st["opened"], held, len(cs), min(cs) if cs else 0, max(cs) if cs else 0, st["failed"]))
    try:
        with open(path + ".tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.rename(path + ".tmp", path)
    except FileNotFoundError:
        raise SystemExit(0)  # the test is over and its directory gone


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--status", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("groups", nargs="+")
    a = ap.parse_args()
    groups = [parse_group(g) for g in a.groups]
    stats = {g[0]: {"opened": 0, "failed": 0, "closed_s": []} for g in groups}
    dribbles = {g[0]: g[4] for g in groups}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    conns = []
    end = time.monotonic() + a.seconds
    for g in groups:
        open_group(a.port, g, conns, stats)
        service(conns, dribbles, stats, 0)
    write_status(a.status, conns, stats, 1)
    last = time.monotonic()
    while not stop and time.monotonic() < end:
        service(conns, dribbles, stats, 0.05)
        if time.monotonic() - last >= 0.2:
            write_status(a.status, conns, stats, 1)
            last = time.monotonic()
    write_status(a.status, conns, stats, 1)


if __name__ == "__main__":
    main()
