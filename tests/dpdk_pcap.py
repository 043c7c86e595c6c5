#!/usr/bin/python3
"""Craft and check pcap files for the DPDK ingress of tapgate, with scapy.

The DPDK integration test feeds the gateway a capture through DPDK's
``net_pcap`` virtual device (``rx_pcap=IN``) and reads what the gateway
transmitted back from another capture (``tx_pcap=OUT``). This script makes
the input capture and judges the output one.

Why scapy, and why a second encoder: the test must not trust the code it
tests. If the packets were built by tapgate's own C encoder (or by tapgen,
which links it) and the answers parsed by the same code, a mistake shared by
both sides -- a wrong offset, a byte-order slip, a checksum computed over the
wrong span -- would cancel out and the test would pass. So every layer here
comes from an independent implementation:

* Ethernet, ARP, IPv4 (with header checksum), ICMP, UDP (with pseudo-header
  checksum) and IPv6 are built and parsed by scapy (Debian python3-scapy
  2.5), a packet tool that knows nothing of tapgate.
* The tapgate frames and acknowledgements (the UDP payloads) are encoded and
  decoded below with ``struct`` and ``hmac`` straight from
  docs/PROTOCOL.md. ``selftest`` checks this encoder against the worked
  example of section 10 of that document (the hex dumps are read from the
  document itself).

Medium 3 (e-SSC QR codes) is left out: it needs Ed25519, which the standard
library does not have.

Run it with /usr/bin/python3 (the Debian interpreter that has scapy):

  dpdk_pcap.py selftest
  dpdk_pcap.py craft --keys config/dev-validators.keys --pcap in.pcap --expect expect.json \\
      --gw-mac 02:00:00:00:00:01 --gw-ip 10.77.0.2 --port 7700 \\
      --peer-mac 02:00:00:00:00:02 --peer-ip 10.77.0.1 [--frames 200] [--seed 1]
  dpdk_pcap.py check --keys config/dev-validators.keys --pcap out.pcap --expect expect.json \\
      --gw-mac ... --gw-ip ... --port 7700 --peer-mac ... --peer-ip ... [--store-export export.csv]

``check`` prints ``FAIL: ...`` and exits 1 at the first failure, otherwise
prints ``ok: ...`` and exits 0.
"""

import argparse
import collections
import configparser
import csv
import hashlib
import hmac
import json
import os
import random
import re
import struct
import sys
import time

import scapy.config

scapy.config.conf.verb = 0
from scapy.layers.inet import ICMP, IP, UDP, IPOption_Router_Alert, fragment, in4_chksum  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.l2 import ARP, Ether  # noqa: E402
from scapy.packet import Raw  # noqa: E402
from scapy.utils import checksum, rdpcap, wrpcap  # noqa: E402

# ------------------------------------------------------------------ protocol (docs/PROTOCOL.md)

MAGIC = 0x5447
VERSION = 1
TYPE_FRAME = 1
TYPE_ACK = 2
HEADER_BYTES = 40
ACK_HEADER_BYTES = 32
MAC_BYTES = 32
MAX_DATAGRAM = 1400

MEDIUM_EPURSE = 1
MEDIUM_QUICKPASS = 2
RECORD_BYTES = {MEDIUM_EPURSE: 62, MEDIUM_QUICKPASS: 38}
# As tapdump prints them (fp_medium_name in proto/proto.c).
MEDIUM_NAMES = {MEDIUM_EPURSE: "epurse", MEDIUM_QUICKPASS: "quickpass", 3: "qr"}

KIND_ENTRY, KIND_EXIT, KIND_BOARD, KIND_PURCHASE = 1, 2, 3, 4

STATUS_NAMES = {0: "stored", 1: "duplicate", 2: "conflict", 3: "rejected"}
REASON_NAMES = {0: "none", 1: "medium", 2: "length", 3: "kind", 4: "category", 5: "time_future",
                6: "time_old", 7: "amount", 8: "field", 9: "qr_signature", 10: "qr_expired",
                11: "qr_reuse"}

# Frame header (section 2), without the records and the MAC.
FRAME_HEADER = struct.Struct(">HBBIHBBQQHIIH")
# Common part of a tap record (section 3).
RECORD_COMMON = struct.Struct(">BBBBIQII")
# Medium parts: e-purse (3.1) and QuickPass (3.2); psam_id is 6 raw bytes.
EPURSE_PART = struct.Struct(">IQHIII6sIBB")
QUICKPASS_PART = struct.Struct(">QHHBB")
# Acknowledgement header (section 6), without the statuses and the MAC.
ACK_HEADER = struct.Struct(">HBBIHBBQQI")

assert FRAME_HEADER.size == HEADER_BYTES and ACK_HEADER.size == ACK_HEADER_BYTES
assert RECORD_COMMON.size + EPURSE_PART.size == RECORD_BYTES[MEDIUM_EPURSE]
assert RECORD_COMMON.size + QUICKPASS_PART.size == RECORD_BYTES[MEDIUM_QUICKPASS]


def mac_of(key, data):
    """Section 5: the full HMAC-SHA-256 of every byte before the MAC."""
    return hmac.new(key, data, hashlib.sha256).digest()


def encode_record(tap):
    """One tap record (section 3) from a dict with the common and the medium's fields."""
    medium = tap["medium"]
    common = RECORD_COMMON.pack(RECORD_BYTES[medium], medium, tap["kind"], tap["category"],
                                tap["tap_id"], tap["tap_time_us"], tap["stop_id"], tap["amount_fen"])
    if medium == MEDIUM_EPURSE:
        part = EPURSE_PART.pack(tap["issuer_code"], tap["card_number"], tap["ctc"],
                                tap["balance_before_fen"], tap["balance_after_fen"], tap["tac"],
                                tap["psam_id"], tap["psam_serial"], tap["key_version"],
                                tap["transaction_type"])
    elif medium == MEDIUM_QUICKPASS:
        part = QUICKPASS_PART.pack(tap["account_token"], tap["atc"], tap["expiry_yymm"],
                                   tap["oda_result"], tap["pan_sequence"])
    else:
        raise ValueError("medium %d is not supported here" % medium)
    return common + part


def encode_frame(key, validator_id, key_id, frame_seq, send_time_us, operator_id, route_id,
                 vehicle_id, taps):
    """A whole frame (section 2): header, records, HMAC-SHA-256."""
    if not 1 <= len(taps) <= 64:
        raise ValueError("a frame holds 1 .. 64 taps")
    body = FRAME_HEADER.pack(MAGIC, VERSION, TYPE_FRAME, validator_id, key_id, len(taps), 0,
                             frame_seq, send_time_us, operator_id, route_id, vehicle_id, 0)
    body += b"".join(encode_record(t) for t in taps)
    frame = body + mac_of(key, body)
    if len(frame) > MAX_DATAGRAM:
        raise ValueError("frame of %d bytes is above %d" % (len(frame), MAX_DATAGRAM))
    return frame


def encode_ack(key, validator_id, key_id, frame_seq, gateway_time_us, statuses):
    """An acknowledgement (section 6); statuses is a list of (status, reason)."""
    body = ACK_HEADER.pack(MAGIC, VERSION, TYPE_ACK, validator_id, key_id, len(statuses), 0,
                           frame_seq, gateway_time_us, 0)
    body += b"".join(struct.pack(">BB", s, r) for s, r in statuses)
    return body + mac_of(key, body)


class AckError(Exception):
    pass


def decode_ack(data, keys):
    """Check and decode an acknowledgement as a validator must (section 8, point 2).

    keys maps (validator_id, key_id) to the 32-byte key. Raises AckError on
    anything wrong; returns a dict otherwise.
    """
    if len(data) < ACK_HEADER_BYTES + 2 + MAC_BYTES:
        raise AckError("%d bytes is too short for an acknowledgement" % len(data))
    (magic, version, mtype, validator_id, key_id, tap_count, flags, frame_seq, gateway_time_us,
     denylist_version) = ACK_HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION or mtype != TYPE_ACK:
        raise AckError("magic/version/type %#06x/%d/%d, expected %#06x/%d/%d"
                       % (magic, version, mtype, MAGIC, VERSION, TYPE_ACK))
    if not 1 <= tap_count <= 64:
        raise AckError("tap_count %d" % tap_count)
    if len(data) != ACK_HEADER_BYTES + 2 * tap_count + MAC_BYTES:
        raise AckError("length %d for %d taps, expected %d"
                       % (len(data), tap_count, ACK_HEADER_BYTES + 2 * tap_count + MAC_BYTES))
    if flags != 0:
        raise AckError("flags %#x, expected 0" % flags)
    key = keys.get((validator_id, key_id))
    if key is None:
        raise AckError("no key %d/%d" % (validator_id, key_id))
    body, mac = data[:-MAC_BYTES], data[-MAC_BYTES:]
    if not hmac.compare_digest(mac, mac_of(key, body)):
        raise AckError("MAC does not verify with key %d/%d" % (validator_id, key_id))
    statuses = []
    for i in range(tap_count):
        status, reason = struct.unpack_from(">BB", data, ACK_HEADER_BYTES + 2 * i)
        if status not in STATUS_NAMES:
            raise AckError("tap %d: status %d" % (i + 1, status))
        if (status == 3) != (reason != 0):
            raise AckError("tap %d: status %s with reason %d" % (i + 1, STATUS_NAMES[status], reason))
        statuses.append((status, reason))
    return {"validator_id": validator_id, "key_id": key_id, "frame_seq": frame_seq,
            "gateway_time_us": gateway_time_us, "denylist_version": denylist_version,
            "statuses": statuses}


def status_text(status, reason):
    if status == 3:
        return "rejected(%s)" % REASON_NAMES.get(reason, str(reason))
    return STATUS_NAMES[status]


def load_keys(path):
    """The key file (section 5): [validator_keys] VALIDATOR_ID/KEY_ID = 64 hex digits."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    with open(path, encoding="utf-8") as f:
        parser.read_file(f)
    keys = {}
    for name, value in parser.items("validator_keys"):
        vid, kid = name.split("/")
        key = bytes.fromhex(value.strip())
        if len(key) != 32:
            raise ValueError("%s: key %s is not 32 bytes" % (path, name))
        keys[(int(vid), int(kid))] = key
    return keys


# ------------------------------------------------------------------ selftest

EXAMPLE_KEY = bytes(range(32))
EXAMPLE_TAP = {
    "medium": MEDIUM_EPURSE, "kind": KIND_BOARD, "category": 0, "tap_id": 7,
    "tap_time_us": 1795305590123456, "stop_id": 100017, "amount_fen": 200,
    "issuer_code": 2660, "card_number": 3104266000000012345, "ctc": 18,
    "balance_before_fen": 5000, "balance_after_fen": 4800, "tac": 0xA1B2C3D4,
    "psam_id": bytes.fromhex("370266000001"), "psam_serial": 9001, "key_version": 1,
    "transaction_type": 6,
}


def doc_dumps(path):
    """The hex dumps of section 10 of PROTOCOL.md, as a list of bytes objects."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    start = text.index("## 10. Worked example")
    end = text.index("\n## 11.", start)
    dumps = []
    line_re = re.compile(r"^([0-9a-f]{4})  ((?:[0-9a-f]{2} )*[0-9a-f]{2})(?:\s{2,}.*)?$")
    for block in text[start:end].split("```")[1::2]:
        data = b""
        for line in block.strip("\n").splitlines():
            m = line_re.match(line)
            if not m:
                raise ValueError("unreadable dump line in %s: %r" % (path, line))
            if int(m.group(1), 16) != len(data):
                raise ValueError("dump offset %s does not follow %d bytes" % (m.group(1), len(data)))
            data += bytes.fromhex(m.group(2))
        dumps.append(data)
    return dumps


def cmd_selftest(args):
    doc = args.doc or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs",
                                   "PROTOCOL.md")
    dumps = doc_dumps(doc)
    if len(dumps) != 2:
        return fail("expected 2 hex dumps in section 10 of %s, found %d" % (doc, len(dumps)))
    doc_frame, doc_ack = dumps
    frame = encode_frame(EXAMPLE_KEY, 1001, 1, 42, 1795305600000000, 1, 301, 10001, [EXAMPLE_TAP])
    if frame != doc_frame:
        return fail("example frame differs from %s:\n  ours %s\n  doc  %s"
                    % (doc, frame.hex(), doc_frame.hex()))
    if len(frame) != 134 or mac_of(EXAMPLE_KEY, frame[:102]) != frame[102:]:
        return fail("example frame MAC is not the HMAC of bytes 0 .. 101")
    ack = encode_ack(EXAMPLE_KEY, 1001, 1, 42, 1795305600000850, [(0, 0)])
    if ack != doc_ack:
        return fail("example acknowledgement differs from %s:\n  ours %s\n  doc  %s"
                    % (doc, ack.hex(), doc_ack.hex()))
    decoded = decode_ack(doc_ack, {(1001, 1): EXAMPLE_KEY})
    if decoded["frame_seq"] != 42 or decoded["statuses"] != [(0, 0)]:
        return fail("decoded example acknowledgement is wrong: %r" % decoded)
    forged = bytearray(doc_ack)
    forged[-1] ^= 1
    try:
        decode_ack(bytes(forged), {(1001, 1): EXAMPLE_KEY})
        return fail("an acknowledgement with a flipped MAC bit was accepted")
    except AckError:
        pass
    print("ok: encoder reproduces the worked example of %s (frame %d bytes, ack %d bytes)"
          % (os.path.normpath(doc), len(frame), len(ack)))
    return 0


# ------------------------------------------------------------------ craft

VALIDATORS = list(range(1001, 1009))
UNKNOWN_VALIDATOR = 9999
OTHER_ARP_IP = "10.77.0.99"
OTHER_IP = "10.77.0.3"
OTHER_MAC = "02:00:00:00:00:09"
GW_IPV6 = "fd00:77::2"
PEER_IPV6 = "fd00:77::1"
BAD_SEQ_BASE = 1000000  # frame_seq of the frames inside bad packets: any ack of one stands out
ICMP_ID, ICMP_SEQ = 0x7467, 1
ICMP_PAYLOAD = b"tapgate dpdk_pcap echo 0123456789abcdef"


class Validator:
    """A simulated validator: its key, its context, its counters, its source port."""

    def __init__(self, vid, key_id, key, sport, rng):
        self.vid, self.key_id, self.key, self.sport, self.rng = vid, key_id, key, sport, rng
        self.operator_id = 1
        self.route_id = 300 + vid % 17
        self.vehicle_id = 10000 + vid
        self.next_seq = 1
        self.next_tap_id = 1
        self.psam_id = bytes.fromhex("37026600") + struct.pack(">H", vid % 65536)
        self.psam_serial = 9000

    def make_tap(self, now_us, serial):
        """A valid tap, e-purse or QuickPass, unique by identity (section 9)."""
        rng = self.rng
        tap = {"tap_id": self.next_tap_id, "kind": rng.choice([KIND_ENTRY, KIND_EXIT, KIND_BOARD,
                                                               KIND_PURCHASE]),
               "category": rng.randrange(4),
               "tap_time_us": now_us - rng.randrange(2000000, 30000000),
               "stop_id": rng.randrange(100000, 200000)}
        self.next_tap_id += 1
        if rng.random() < 0.5:
            self.psam_serial += 1
            amount = rng.randrange(1, 10001)
            before = rng.randrange(amount, amount + 100000)
            tap.update(medium=MEDIUM_EPURSE, amount_fen=amount, issuer_code=2660,
                       card_number=3104266000000000000 + serial, ctc=rng.randrange(65536),
                       balance_before_fen=before, balance_after_fen=before - amount,
                       tac=rng.getrandbits(32), psam_id=self.psam_id,
                       psam_serial=self.psam_serial, key_version=1,
                       transaction_type=rng.choice([6, 9]))
        else:
            tap.update(medium=MEDIUM_QUICKPASS, amount_fen=0,
                       account_token=rng.getrandbits(64), atc=rng.randrange(65536),
                       expiry_yymm=rng.randrange(27, 35) * 100 + rng.randrange(1, 13),
                       oda_result=rng.randrange(3), pan_sequence=rng.randrange(256))
        return tap

    def make_frame(self, now_us, serials, frame_seq=None, key=None, validator_id=None):
        """(frame bytes, frame_seq, taps) of 1..8 fresh taps."""
        taps = [self.make_tap(now_us, next(serials)) for _ in range(self.rng.randrange(1, 9))]
        if frame_seq is None:
            frame_seq = self.next_seq
            self.next_seq += 1
        frame = encode_frame(key or self.key, validator_id or self.vid, self.key_id, frame_seq,
                             now_us, self.operator_id, self.route_id, self.vehicle_id, taps)
        return frame, frame_seq, taps


def tap_row(vid, tap):
    """The columns of `tapdump export` other than identity."""
    return "%d,%d,%s,%d,%d" % (vid, tap["tap_id"], MEDIUM_NAMES[tap["medium"]],
                               tap["tap_time_us"], tap["amount_fen"])


def cmd_craft(args):
    rng = random.Random(args.seed)
    keys = load_keys(args.keys)
    now_us = int(time.time() * 1e6)
    serials = iter(range(1, 1 << 40))  # e-purse card numbers, unique across validators

    validators = {}
    ports = rng.sample(range(40000, 60001), len(VALIDATORS) + 1)
    for vid, sport in zip(VALIDATORS, ports):
        key_ids = sorted(k for v, k in keys if v == vid)
        if not key_ids:
            return fail("%s has no key for validator %d" % (args.keys, vid))
        validators[vid] = Validator(vid, key_ids[0], keys[(vid, key_ids[0])], sport, rng)
    if any(v == UNKNOWN_VALIDATOR for v, _ in keys):
        return fail("%s has a key for validator %d, which must be unknown" % (args.keys,
                                                                              UNKNOWN_VALIDATOR))

    def udp_to_gw(payload, sport, eth_dst=None, ip_dst=None, dport=None, **ip_fields):
        return (Ether(src=args.peer_mac, dst=eth_dst or args.gw_mac)
                / IP(src=args.peer_ip, dst=ip_dst or args.gw_ip, **ip_fields)
                / UDP(sport=sport, dport=dport or args.port) / Raw(payload))

    # Valid frames: each validator's frame_seq increases from 1 in the order sent.
    sends = []  # (packet, frame record) in order
    expected_taps = []
    for _ in range(args.frames):
        v = validators[rng.choice(VALIDATORS)]
        frame, seq, taps = v.make_frame(now_us, serials)
        rec = {"validator_id": v.vid, "key_id": v.key_id, "frame_seq": seq, "sport": v.sport,
               "copy": "original", "statuses": ["stored"] * len(taps)}
        sends.append((udp_to_gw(frame, v.sport), rec))
        expected_taps += [tap_row(v.vid, t) for t in taps]

    # Retransmissions: about 20 % of the frames again, byte-identical, later on.
    for i in sorted(rng.sample(range(args.frames), round(args.frames * 0.2)), reverse=True):
        pkt, rec = sends[i]
        copy = dict(rec, copy="retransmission", statuses=["duplicate"] * len(rec["statuses"]))
        at = rng.randrange(i + 1, len(sends) + 1)
        sends.insert(at, (pkt.copy(), copy))
    # (Inserting from the highest index down keeps every earlier index valid.)

    # Bad packets: each holds a frame that would be acknowledged if it got through, with
    # fresh taps and a frame_seq from BAD_SEQ_BASE up, so that a leak shows in the store too.
    bad = collections.Counter()
    bad_packets = []
    bad_seq = iter(range(BAD_SEQ_BASE, BAD_SEQ_BASE + 1000))

    def bad_frame(**kw):
        v = validators[rng.choice(VALIDATORS)]
        frame, _, _ = v.make_frame(now_us, serials, frame_seq=next(bad_seq), **kw)
        return v, frame

    def add_bad(kind, packets):
        for p in packets:
            bad_packets.append((kind, p))
            bad[kind] += 1

    v, f = bad_frame()
    p = udp_to_gw(f, v.sport)
    good = Ether(bytes(p))[IP].chksum
    p[IP].chksum = good ^ 0x5A5A
    add_bad("ip_checksum", [p])

    v, f = bad_frame()
    p = udp_to_gw(f, v.sport)
    good = Ether(bytes(p))[UDP].chksum
    p[UDP].chksum = good ^ 0x0F0F  # never 0, which would mean "no checksum"
    add_bad("udp_checksum", [p])

    while True:  # a frame big enough to split in several fragments
        v, f = bad_frame()
        if len(f) > 400:
            break
    add_bad("ip_fragment", fragment(udp_to_gw(f, v.sport), fragsize=256))

    v, f = bad_frame()
    add_bad("ip_options", [udp_to_gw(f, v.sport, options=[IPOption_Router_Alert()])])

    v, f = bad_frame()
    add_bad("wrong_port", [udp_to_gw(f, v.sport, dport=args.port + 1)])

    v, f = bad_frame()
    add_bad("wrong_ip", [udp_to_gw(f, v.sport, ip_dst=OTHER_IP)])

    v, f = bad_frame()
    add_bad("ipv6", [Ether(src=args.peer_mac, dst=args.gw_mac)
                     / IPv6(src=PEER_IPV6, dst=GW_IPV6) / UDP(sport=v.sport, dport=args.port)
                     / Raw(f)])

    garbage = bytes(rng.getrandbits(8) for _ in range(150))
    if garbage[:2] == struct.pack(">H", MAGIC):
        garbage = b"\x00" + garbage[1:]
    add_bad("garbage", [udp_to_gw(garbage, ports[-1])])

    v, f = bad_frame()
    f = f[:-1] + bytes([f[-1] ^ 0x01])
    add_bad("bad_mac", [udp_to_gw(f, v.sport)])

    v, f = bad_frame(key=bytes(rng.getrandbits(8) for _ in range(32)),
                     validator_id=UNKNOWN_VALIDATOR)
    add_bad("unknown_validator", [udp_to_gw(f, ports[-1])])

    v, f = bad_frame()
    add_bad("wrong_ether_dst", [udp_to_gw(f, v.sport, eth_dst=OTHER_MAC)])

    # ARP: the request for us first; one for another address, which nobody here answers.
    arp_us = (Ether(src=args.peer_mac, dst="ff:ff:ff:ff:ff:ff")
              / ARP(op="who-has", hwsrc=args.peer_mac, psrc=args.peer_ip,
                    hwdst="00:00:00:00:00:00", pdst=args.gw_ip))
    arp_other = (Ether(src=args.peer_mac, dst="ff:ff:ff:ff:ff:ff")
                 / ARP(op="who-has", hwsrc=args.peer_mac, psrc=args.peer_ip,
                       hwdst="00:00:00:00:00:00", pdst=OTHER_ARP_IP))
    ping = (Ether(src=args.peer_mac, dst=args.gw_mac) / IP(src=args.peer_ip, dst=args.gw_ip)
            / ICMP(type="echo-request", id=ICMP_ID, seq=ICMP_SEQ) / Raw(ICMP_PAYLOAD))

    # Scatter the bad packets, the other ARP request and the ping among the frames, keeping
    # the fragments of one datagram in order; the ARP request for us stays first.
    stream = [("frame", p, rec) for p, rec in sends]
    extras = [("bad", p, kind) for kind, p in bad_packets] + [("arp", arp_other, None),
                                                              ("icmp", ping, None)]
    for extra in extras:
        lo = 0
        if extra[2] == "ip_fragment":  # after the previous fragment
            lo = max((i + 1 for i, s in enumerate(stream) if s[2] == "ip_fragment"), default=0)
        stream.insert(rng.randrange(lo, len(stream) + 1), extra)
    stream.insert(0, ("arp", arp_us, None))

    packets = []
    t0 = time.time()
    for i, (_, p, _) in enumerate(stream):
        p = Ether(bytes(p))  # freeze: lengths and checksums computed by scapy now
        p.time = t0 + i * 1e-4
        packets.append(p)
    wrpcap(args.pcap, packets)

    expect = {
        "gw_mac": args.gw_mac, "gw_ip": args.gw_ip, "port": args.port,
        "peer_mac": args.peer_mac, "peer_ip": args.peer_ip,
        "packets": len(packets),
        "arp": {"answered": args.gw_ip, "unanswered": [OTHER_ARP_IP]},
        "icmp": {"id": ICMP_ID, "seq": ICMP_SEQ, "payload": ICMP_PAYLOAD.hex()},
        "frames": [rec for kind, _, rec in stream if kind == "frame"],
        "taps": expected_taps,
        "bad": dict(sorted(bad.items())),
    }
    with open(args.expect, "w", encoding="utf-8") as f:
        json.dump(expect, f, indent=1)
        f.write("\n")
    n_frames = len(expect["frames"])
    print("crafted %s: %d packets: 2 ARP requests, 1 ping, %d frame sends (%d frames + %d "
          "retransmissions) of %d taps, %d bad packets (%s); expectations in %s"
          % (args.pcap, len(packets), n_frames, args.frames, n_frames - args.frames,
             len(expected_taps), sum(bad.values()),
             ", ".join("%s %d" % kv for kv in sorted(bad.items())), args.expect))
    return 0


# ------------------------------------------------------------------ check


class Fail(Exception):
    pass


def fail(msg):
    print("FAIL: " + msg)
    return 1


def check_ether(p, args, what):
    if p[Ether].src != args.gw_mac or p[Ether].dst != args.peer_mac:
        raise Fail("%s: Ethernet %s -> %s, expected %s -> %s"
                   % (what, p[Ether].src, p[Ether].dst, args.gw_mac, args.peer_mac))


def check_ipv4(p, args, what):
    ip = p[IP]
    if ip.src != args.gw_ip or ip.dst != args.peer_ip:
        raise Fail("%s: IP %s -> %s, expected %s -> %s" % (what, ip.src, ip.dst, args.gw_ip,
                                                           args.peer_ip))
    if ip.ihl != 5 or ip.flags.MF or ip.frag != 0:
        raise Fail("%s: IP header with options or fragmented (ihl %d, flags %s, frag %d)"
                   % (what, ip.ihl, ip.flags, ip.frag))
    header = bytes(ip)[:20]
    if checksum(header) != 0:
        raise Fail("%s: bad IP header checksum %#06x" % (what, ip.chksum))
    if ip.len != len(bytes(ip)):
        raise Fail("%s: IP total length %d, but %d bytes follow the Ethernet header"
                   % (what, ip.len, len(bytes(ip))))


def cmd_check(args):
    try:
        summary = run_check(args)
    except Fail as e:
        return fail(str(e))
    print("ok: " + summary)
    return 0


def run_check(args):
    with open(args.expect, encoding="utf-8") as f:
        expect = json.load(f)
    for name in ("gw_mac", "gw_ip", "port", "peer_mac", "peer_ip"):
        if expect[name] != getattr(args, name):
            raise Fail("--%s %s, but %s was crafted with %s"
                       % (name.replace("_", "-"), getattr(args, name), args.expect, expect[name]))
    keys = load_keys(args.keys)
    packets = rdpcap(args.pcap)

    # (validator_id, frame_seq) -> list of expected sends still unanswered
    pending = collections.defaultdict(list)
    for rec in expect["frames"]:
        pending[(rec["validator_id"], rec["frame_seq"])].append(rec)

    arp_replies = icmp_replies = acks = 0
    status_count = collections.Counter()
    for n, p in enumerate(packets, 1):
        what = "packet %d" % n
        if Ether not in p:
            raise Fail("%s: not an Ethernet frame: %r" % (what, bytes(p)[:32]))
        if ARP in p:
            a = p[ARP]
            what += " (ARP %s)" % a.sprintf("%op%")
            if a.op != 2:
                raise Fail("%s: the gateway sent ARP op %d, only replies (2) are expected"
                           % (what, a.op))
            if a.psrc != args.gw_ip:
                raise Fail("%s: ARP reply for %s, which is not the gateway's address"
                           % (what, a.psrc))
            if (a.hwsrc, a.hwdst, a.pdst) != (args.gw_mac, args.peer_mac, args.peer_ip):
                raise Fail("%s: ARP reply %s is-at %s to %s/%s, expected %s is-at %s to %s/%s"
                           % (what, a.psrc, a.hwsrc, a.hwdst, a.pdst, args.gw_ip, args.gw_mac,
                              args.peer_mac, args.peer_ip))
            check_ether(p, args, what)
            arp_replies += 1
            continue
        if IP not in p:
            raise Fail("%s: neither ARP nor IPv4: %s" % (what, p.summary()))
        check_ether(p, args, what)
        check_ipv4(p, args, what)
        if ICMP in p:
            what += " (ICMP)"
            icmp = p[ICMP]
            if icmp.type != 0 or icmp.code != 0:
                raise Fail("%s: ICMP type %d code %d, expected an echo reply"
                           % (what, icmp.type, icmp.code))
            if checksum(bytes(icmp)) != 0:
                raise Fail("%s: bad ICMP checksum %#06x" % (what, icmp.chksum))
            e = expect["icmp"]
            if (icmp.id, icmp.seq, bytes(icmp.payload).hex()) != (e["id"], e["seq"], e["payload"]):
                raise Fail("%s: echo reply id %d seq %d payload %s, expected %d/%d/%s"
                           % (what, icmp.id, icmp.seq, bytes(icmp.payload).hex(), e["id"],
                              e["seq"], e["payload"]))
            icmp_replies += 1
            continue
        if UDP not in p:
            raise Fail("%s: IPv4 protocol %d is neither ICMP nor UDP" % (what, p[IP].proto))
        udp = p[UDP]
        what += " (UDP to port %d)" % udp.dport
        if udp.sport != args.port:
            raise Fail("%s: from UDP port %d, expected %d" % (what, udp.sport, args.port))
        if udp.len != len(bytes(udp)):
            raise Fail("%s: UDP length %d, but %d bytes" % (what, udp.len, len(bytes(udp))))
        if udp.chksum == 0:
            raise Fail("%s: UDP checksum 0 (none)" % what)
        if in4_chksum(17, p[IP], bytes(udp)) != 0:
            raise Fail("%s: bad UDP checksum %#06x" % (what, udp.chksum))
        try:
            ack = decode_ack(bytes(udp.payload), keys)
        except AckError as e:
            raise Fail("%s: not a valid acknowledgement: %s" % (what, e))
        ident = (ack["validator_id"], ack["frame_seq"])
        what += " (ack of validator %d frame %d)" % ident
        candidates = pending.get(ident)
        if not candidates:
            sent = sum(1 for r in expect["frames"]
                       if (r["validator_id"], r["frame_seq"]) == ident)
            if ident[1] >= BAD_SEQ_BASE:
                raise Fail("%s: a bad packet was acknowledged" % what)
            raise Fail("%s: more acks than the %d sends of that frame" % (what, sent))
        got = [status_text(s, r) for s, r in ack["statuses"]]
        match = next((r for r in candidates if r["statuses"] == got), None)
        if match is None:
            raise Fail("%s: statuses %s, expected %s"
                       % (what, got, " or ".join(str(r["statuses"]) for r in candidates)))
        if ack["key_id"] != match["key_id"]:
            raise Fail("%s: MAC'd with key %d, the frame named key %d"
                       % (what, ack["key_id"], match["key_id"]))
        if udp.dport != match["sport"]:
            raise Fail("%s: sent to port %d, the frame came from port %d"
                       % (what, udp.dport, match["sport"]))
        candidates.remove(match)
        acks += 1
        status_count.update(got)

    if arp_replies != 1:
        raise Fail("%d ARP replies for %s, expected exactly 1" % (arp_replies, args.gw_ip))
    if icmp_replies != 1:
        raise Fail("%d ICMP echo replies, expected exactly 1" % icmp_replies)
    missing = [(k, r["copy"]) for k, recs in pending.items() for r in recs]
    if missing:
        raise Fail("%d frame sends got no acknowledgement, e.g. validator %d frame %d (%s)"
                   % (len(missing), missing[0][0][0], missing[0][0][1], missing[0][1]))
    if acks != len(expect["frames"]):  # cannot happen after the two checks above
        raise Fail("%d acks for %d frame sends" % (acks, len(expect["frames"])))

    summary = ("%d packets from the gateway: 1 ARP reply, 1 echo reply, %d acks (%s) for %d "
               "frame sends, none for %d bad packets"
               % (len(packets), acks, ", ".join("%s %d" % kv for kv in sorted(status_count.items())),
                  len(expect["frames"]), sum(expect["bad"].values())))
    if args.store_export:
        summary += "; " + check_export(args.store_export, expect["taps"])
    return summary


def check_export(path, expected_rows):
    """The store holds exactly the expected taps, each once (identity column ignored)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        want = ["validator_id", "tap_id", "medium", "identity", "tap_time_us", "amount_fen"]
        if header is None or header[:6] != want:
            raise Fail("%s: header %s, expected %s" % (path, header, ",".join(want)))
        rows = collections.Counter(",".join(r[:3] + r[4:6]) for r in reader if r)
    dups = [r for r, c in rows.items() if c > 1]
    if dups:
        raise Fail("%s: %d taps stored more than once, e.g. %s" % (path, len(dups), dups[0]))
    expected = set(expected_rows)
    if len(expected) != len(expected_rows):
        raise Fail("the expectations list a tap twice")
    missing = sorted(expected - set(rows))
    extra = sorted(set(rows) - expected)
    if missing:
        raise Fail("%s: %d expected taps missing, e.g. %s" % (path, len(missing), missing[0]))
    if extra:
        raise Fail("%s: %d taps stored that were not expected, e.g. %s"
                   % (path, len(extra), extra[0]))
    return "store holds the %d expected taps exactly once" % len(expected)


# ------------------------------------------------------------------ command line


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    st = sub.add_parser("selftest", help="check the encoder against PROTOCOL.md section 10")
    st.add_argument("--doc", help="PROTOCOL.md (default: ../docs/PROTOCOL.md from this script)")

    for name, text in (("craft", "write the input pcap and the expectations"),
                       ("check", "check the gateway's output pcap against the expectations")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--keys", required=True, help="validator key file ([validator_keys])")
        p.add_argument("--pcap", required=True,
                       help="pcap to write (craft) or the gateway's tx pcap (check)")
        p.add_argument("--expect", required=True, help="expectations JSON (written by craft)")
        p.add_argument("--gw-mac", required=True)
        p.add_argument("--gw-ip", required=True)
        p.add_argument("--port", type=int, required=True, help="the gateway's UDP port")
        p.add_argument("--peer-mac", required=True)
        p.add_argument("--peer-ip", required=True)
        if name == "craft":
            p.add_argument("--frames", type=int, default=200, help="valid frames (200)")
            p.add_argument("--seed", type=int, default=1, help="random seed (1)")
        else:
            p.add_argument("--store-export",
                           help="CSV from `tapdump -s STORE export` to compare with the taps")

    args = ap.parse_args()
    for name in ("gw_mac", "peer_mac"):
        if hasattr(args, name):
            setattr(args, name, getattr(args, name).lower())
    if args.command == "selftest":
        return cmd_selftest(args)
    if args.command == "craft":
        if args.frames < 1:
            ap.error("--frames must be at least 1")
        return cmd_craft(args)
    return cmd_check(args)


if __name__ == "__main__":
    sys.exit(main())
