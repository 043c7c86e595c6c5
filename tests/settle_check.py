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
  * legs held out of settlement are in no file: an unrated leg carrying no
    money, and every revision of a leg named in WRITTEN_OFF (lines "TOKEN #LEG");
  * every file is in CURRENCY (default CNY), its amounts with MINOR decimals
    (default 2): the CSV headers, the TIDES currency_type, pain.001's Ccy.
Usage: settle_check.py OUTBOX DAY LEGS_FILE XSD [CURRENCY MINOR [WRITTEN_OFF]]
"""
import collections
import hashlib
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

HASH_MOD = 10**15


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
                break
            if k == "?":
                fail(f"{line.strip()}: a funder's share names no funder")
            want["funder-" + k] += int(v)
    return want, legs_by_op, n


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
    accounts = [int(r[2].split(":")[-1]) for r in d]
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


def main():
    global CURRENCY, MINOR, WRITTEN_OFF
    outbox, day, legs_file, xsd = sys.argv[1:5]
    if len(sys.argv) > 6:
        CURRENCY, MINOR = sys.argv[5], int(sys.argv[6])
    if len(sys.argv) > 7:
        WRITTEN_OFF = {line.strip() for line in open(sys.argv[7]) if line.strip()}
    want, legs_by_op, nlegs = legs_totals(legs_file, day)
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
            elif kind == "payout":
                paid += check_pain001(path, xsd)
            elif name.endswith("-fare_transactions.csv"):
                rows = open(path).read().splitlines()
                if not rows[0].startswith("transaction_id,service_date,event_timestamp,amount,"):
                    fail(f"{path}: not a TIDES fare_transactions header")
                for row in rows[1:]:
                    c = row.split(",")
                    if c[4] != CURRENCY:
                        fail(f"{path}: currency_type {c[4]}, not {CURRENCY}")
                    got[party] += fen(c[3])
                    tides_rows[party] += 1
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
