#!/usr/bin/env python3
"""settle_check.py - check tapsettle's files for one business day, independently.

Reads every file of the day in the outbox (all rounds) and the day's legs as
`tapfare legs --day D --no-version` prints them, and checks, without using
any tapgate code:
  * every file has NAME.sha256 beside it, naming it, with its SHA-256;
  * every clearing CSV has its H record (batch id, day) and a T record whose
    item count, debit, credit and hash totals match its D records;
  * per counterparty, over all rounds, what the files charge or pay equals
    what the legs say: acquirer = QuickPass riders' shares, QR platform = QR
    riders' shares, issuer-CITY = e-purse riders' shares of that city,
    funder-X = X's shares, operator-N = N's receivables (TIDES rows and
    summaries), payout = the operators' positive nets;
  * every pain.001 file is valid against the schema (xmllint) and its group
    header's NbOfTxs and CtrlSum match its transfers;
  * money is conserved: riders + funders = operators;
  * every TIDES fare_transactions file is valid against the TIDES v1.0 table
    schema beside XSD (tides_check.py);
  * operators' and funders' files name riders by pseudonym only: per
    operator and per funder, the multiset of pseudonyms in the files equals
    HMAC-SHA-256(SECRET, token)[:8] of the legs' tokens, and no token in
    clear (SECRET: the settlement secret file, $SETTLE_SECRET_FILE or
    config/dev-settle.key).
  * legs held out of settlement are in no file: an unrated leg carrying no
    money, and every revision of a leg named in WRITTEN_OFF (lines "TOKEN #LEG");
  * every file is in CURRENCY (default CNY), its amounts with MINOR decimals
    (default 2): the CSV headers, the TIDES currency_type, pain.001's Ccy.
Usage: settle_check.py OUTBOX DAY LEGS_FILE XSD [CURRENCY MINOR [WRITTEN_OFF]]
"""
import collections
import csv
import json
import hashlib
import hmac
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tides_check  # noqa: E402

HASH_MOD = 10**15
PSEUDONYM_HEX = 16
SECRET = None  # the settlement secret's bytes (main)


def pseudonym(token):
    return hmac.new(SECRET, token.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]


def read_secret(path):
    lines = [x.strip() for x in open(path) if x.strip() and not x.strip().startswith("#")]
    if len(lines) != 1 or not re.fullmatch(r"[0-9a-fA-F]{64}", lines[0]):
        fail(f"{path}: not one line of 64 hex digits")
    return bytes.fromhex(lines[0])


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


CURRENCY, MINOR, WRITTEN_OFF = "CNY", 2, set()


def fen(units):
    """Decimal text in the currency's units to its minor units, exactly MINOR decimals (none for 0)."""
    neg = units.startswith("-")
    whole, dot, frac = units.lstrip("-").partition(".")
    if (MINOR == 0 and dot) or (MINOR > 0 and len(frac) != MINOR):
        fail(f"amount {units}: not {MINOR} decimals of {CURRENCY}")
    v = int(whole) * 10**MINOR + (int(frac) if frac else 0)
    return -v if neg else v


def held(f, d):
    """A leg line held out of settlement: unrated with no money, or a revision of a written-off leg."""
    if f[1] + " " + f[3] in WRITTEN_OFF:
        return True
    money = ("nominal", "concession", "transfer", "cap", "promotion", "subsidy", "rider")
    return "unrated" in f and all(int(d[k]) == 0 for k in money) and all(
        int(v) == 0 for k, v in d.items() if re.fullmatch(r"op\d+", k))


def legs_totals(path, day):
    want = collections.Counter()
    legs_by_op = collections.Counter()
    riders = collections.Counter()  # (party, pseudonym) -> legs (operators) or items (funders)
    n = 0
    for line in open(path):
        f = line.split()
        if not f or f[0] != day:
            continue
        token = f[1]
        kv = [x.split("=", 1) for x in f[5:] if "=" in x]
        keys = [k for k, _ in kv]
        d = dict(kv)
        if held(f, d):
            continue
        n += 1
        rider = int(d["rider"])
        medium = token.split(":")[0]
        if medium == "quickpass":
            want["acquirer"] += rider
        elif medium == "qr":
            want["qr"] += rider
        else:
            want["issuer-" + token.split(":")[1]] += rider
        # the payers after rider= and before opN=: funders
        i = keys.index("rider")
        for k, v in kv[i + 1:]:
            if re.fullmatch(r"op\d+", k):
                want["operator-" + k[2:]] += int(v)
                legs_by_op["operator-" + k[2:]] += 1
                riders[("operator-" + k[2:], pseudonym(token))] += 1
                break
            if k == "?":
                fail(f"{line.strip()}: a funder's share names no funder")
            want["funder-" + k] += int(v)
            if int(v) != 0:
                riders[("funder-" + k, pseudonym(token))] += 1
    return want, legs_by_op, riders, n


def check_sum(path):
    sums = path + ".sha256"
    if not os.path.exists(sums):
        fail(f"{path}: no checksum file beside it")
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    text = open(sums).read().split()
    if len(text) != 2 or text[0] != digest or text[1] != os.path.basename(path):
        fail(f"{sums}: says {' '.join(text)}, the file's SHA-256 is {digest}")


def check_clearing_csv(path, day):
    name = os.path.basename(path)[:-4]
    lines = open(path).read().splitlines()
    h, t, d = lines[0].split(","), lines[-1].split(","), [x.split(",") for x in lines[1:-1]]
    if h[0] != "H" or h[1] != name or h[4] != day or h[6] != CURRENCY:
        fail(f"{path}: header {lines[0]}")
    if t[0] != "T" or any(r[0] != "D" for r in d):
        fail(f"{path}: records are not H, D..., T")
    debit = sum(int(r[-2]) for r in d if r[-1] == "D")
    credit = sum(int(r[-2]) for r in d if r[-1] == "C")
    # the account: a token or card number (acquirer, QR, issuer), or a rider's pseudonym in hex (funders)
    funder = os.path.basename(os.path.dirname(path)).startswith("funder-")
    if funder and any(not re.fullmatch(f"[0-9a-f]{{{PSEUDONYM_HEX}}}", r[2]) for r in d):
        fail(f"{path}: a rider that is not a {PSEUDONYM_HEX}-hex-digit pseudonym")
    accounts = [int(r[2], 16) if funder else int(r[2].split(":")[-1]) for r in d]
    hash_total = sum(a % HASH_MOD for a in accounts) % HASH_MOD
    if [int(x) for x in t[1:]] != [len(d), debit, credit, hash_total]:
        fail(f"{path}: trailer {lines[-1]}, items say {len(d)},{debit},{credit},{hash_total}")
    if [int(r[1]) for r in d] != list(range(1, len(d) + 1)):
        fail(f"{path}: item numbers are not 1..{len(d)}")
    return debit - credit


def check_pain001(path, xsd):
    r = subprocess.run(["xmllint", "--noout", "--schema", xsd, path], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"{path}: not valid against {xsd}: {r.stderr.strip()}")
    ns = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.10"}
    root = ET.parse(path).getroot()
    instd = root.findall(".//p:CdtTrfTxInf/p:Amt/p:InstdAmt", ns)
    if any(a.get("Ccy") != CURRENCY for a in instd):
        fail(f"{path}: a transfer not in {CURRENCY}")
    amounts = [fen(a.text) for a in instd]
    hdr = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", ns)
    if int(hdr.find("p:NbOfTxs", ns).text) != len(amounts) or fen(hdr.find("p:CtrlSum", ns).text) != sum(amounts):
        fail(f"{path}: group header says {hdr.find('p:NbOfTxs', ns).text} / {hdr.find('p:CtrlSum', ns).text}, "
             f"the transfers {len(amounts)} / {sum(amounts)} fen")
    e2e = [e.text for e in root.findall(".//p:EndToEndId", ns)]
    if len(set(e2e)) != len(e2e):
        fail(f"{path}: EndToEndIds repeat")
    return sum(amounts)


def check_tides(path, schema, party, got, tides_rows, riders):
    problems = list(tides_check.check_file(schema, path))
    if problems:
        fail(f"{path}: not valid against the TIDES fare_transactions schema: " + "; ".join(problems[:5]))
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["currency_type"] != CURRENCY:
                fail(f"{path}: currency_type {row['currency_type']}, not {CURRENCY}")
            got[party] += fen(row["amount"])
            tides_rows[party] += 1
            if not re.fullmatch(f"[0-9a-f]{{{PSEUDONYM_HEX}}}", row["token_id"]):
                fail(f"{path}: token_id {row['token_id']} is not a pseudonym")
            riders[(party, row["token_id"])] += 1


def main():
    global CURRENCY, MINOR, WRITTEN_OFF, SECRET
    outbox, day, legs_file, xsd = sys.argv[1:5]
    if len(sys.argv) > 6:
        CURRENCY, MINOR = sys.argv[5], int(sys.argv[6])
    if len(sys.argv) > 7:
        WRITTEN_OFF = {line.strip() for line in open(sys.argv[7]) if line.strip()}
    SECRET = read_secret(os.environ.get("SETTLE_SECRET_FILE", "config/dev-settle.key"))
    schema = json.load(open(os.path.join(os.path.dirname(xsd), "tides-1.0-fare_transactions.schema.json")))
    want, legs_by_op, want_riders, nlegs = legs_totals(legs_file, day)
    got_riders = collections.Counter()
    got = collections.Counter()
    tides_rows = collections.Counter()
    paid = 0
    positive_nets = 0
    files = 0
    for party in sorted(os.listdir(outbox)):
        folder = os.path.join(outbox, party)
        if party == "reconciliation":
            continue
        for name in sorted(os.listdir(folder)):
            if not name.startswith(day + "-") or name.endswith(".sha256"):
                continue
            if name.startswith("."):
                fail(f"{folder}/{name}: a temporary file was left behind")
            path = os.path.join(folder, name)
            check_sum(path)
            files += 1
            kind = party.split("-")[0]
            if kind in ("acquirer", "qr", "issuer", "funder"):
                key = party if kind in ("issuer", "funder") else kind
                got[key] += check_clearing_csv(path, day)
                if kind == "funder":
                    for r in open(path).read().splitlines()[1:-1]:
                        got_riders[(party, r.split(",")[2])] += 1
            elif kind == "payout":
                paid += check_pain001(path, xsd)
            elif name.endswith("-fare_transactions.csv"):
                check_tides(path, schema, party, got, tides_rows, got_riders)
            elif name.endswith("-summary.csv"):
                rows = open(path).read().splitlines()
                c = dict(zip(rows[0].split(","), rows[1].split(",")))
                net = int(c["net_receivable_fen"])
                if int(c["paid_fen"]) != max(net, 0) or int(c["owed_fen"]) != max(-net, 0):
                    fail(f"{path}: paid/owed do not follow from the net")
                positive_nets += max(net, 0)
            else:
                fail(f"{path}: a file this check does not know")
    for key in sorted(set(want) | set(got)):
        if want[key] != got[key]:
            fail(f"{key}: the files say {got[key]} fen, the legs {want[key]} fen")
    if dict(tides_rows) != dict(legs_by_op):
        fail(f"TIDES rows per operator {dict(tides_rows)}, legs per operator {dict(legs_by_op)}")
    if got_riders != want_riders:
        diff = (got_riders - want_riders) + (want_riders - got_riders)
        fail(f"riders in operators' and funders' files are not the legs' tokens' pseudonyms: "
             f"{len(diff)} (party, pseudonym) pairs differ, e.g. {list(diff.items())[:3]}")
    if paid != positive_nets:
        fail(f"pain.001 transfers {paid} fen, operators' positive nets {positive_nets} fen")
    payers = sum(v for k, v in want.items() if not k.startswith("operator-"))
    receivers = sum(v for k, v in want.items() if k.startswith("operator-"))
    if payers != receivers:
        fail(f"money: payers {payers} fen, operators {receivers} fen")
    print(f"ok: day {day}: {files} files, {nlegs} legs; riders and funders pay {payers} fen, operators receive "
          f"{receivers} fen; paid out {paid} fen; per counterparty: " +
          ", ".join(f"{k}={want[k]}" for k in sorted(want)))


main()
