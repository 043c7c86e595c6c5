#!/usr/bin/env python3
"""tides_check.py - validate CSV files against a Frictionless table schema.

Written for the TIDES v1.0 fare_transactions table schema
(../shared/schemas/tides-1.0-fare_transactions.schema.json), with no
library beyond Python's own (the frictionless package is not in Debian 12).
What it checks, as Frictionless' validate would:
  * the header: exactly the schema's field names, in the schema's order;
  * every row has one value per field (RFC 4180 quoting, as csv reads it);
  * a value in missingValues (default [""]) is missing: an error only when
    the field's constraints say required;
  * every other value is of the field's type: string, integer, number,
    boolean (trueValues / falseValues, Frictionless' defaults), date
    (YYYY-MM-DD), datetime (ISO 8601 with a time zone or Z; Frictionless'
    default format), time; and meets its constraints: enum, minimum,
    maximum, minLength, maxLength, pattern, unique (and the primaryKey's
    values are unique);
Prints one line per problem (FILE:LINE: field NAME: why, at most 20 per
file) and exits 1 when there is any; prints "ok: ..." and exits 0 otherwise.
Usage: tides_check.py SCHEMA.json FILE.csv...
"""
import csv
import datetime
import json
import re
import sys

TRUE_VALUES = ["true", "True", "TRUE", "1"]
FALSE_VALUES = ["false", "False", "FALSE", "0"]
PROBLEMS_MAX = 20


def typed(field, text):
    """The value of text as field's type, or raise ValueError saying why."""
    kind = field.get("type", "string")
    if kind == "string":
        return text
    if kind == "integer":
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError(f"'{text}' is not an integer")
        return int(text)
    if kind == "number":
        if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|NaN|INF|-INF", text):
            raise ValueError(f"'{text}' is not a number")
        return float(text)
    if kind == "boolean":
        if text in field.get("trueValues", TRUE_VALUES):
            return True
        if text in field.get("falseValues", FALSE_VALUES):
            return False
        raise ValueError(f"'{text}' is not a boolean ({'/'.join(TRUE_VALUES + FALSE_VALUES)})")
    if kind == "date":
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(f"'{text}' is not a date YYYY-MM-DD")
        return datetime.date.fromisoformat(text)
    if kind == "datetime":
        m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?)(Z|[+-]\d{2}:?\d{2})", text)
        if not m:
            raise ValueError(f"'{text}' is not an ISO 8601 datetime with its zone (YYYY-MM-DDTHH:MM:SSZ)")
        return datetime.datetime.fromisoformat(m.group(1))
    if kind == "time":
        if not re.fullmatch(r"\d{2}:\d{2}:\d{2}(\.\d+)?", text):
            raise ValueError(f"'{text}' is not a time HH:MM:SS")
        return text
    raise ValueError(f"type '{kind}' is not one this check knows")


def constraint_problems(field, text, value):
    c = field.get("constraints", {})
    if "enum" in c and text not in c["enum"]:
        yield f"'{text}' is not one of the enumeration {c['enum']}"
    if "minimum" in c and value < c["minimum"]:
        yield f"{text} is below the minimum {c['minimum']}"
    if "maximum" in c and value > c["maximum"]:
        yield f"{text} is above the maximum {c['maximum']}"
    if "minLength" in c and len(text) < c["minLength"]:
        yield f"'{text}' is shorter than {c['minLength']}"
    if "maxLength" in c and len(text) > c["maxLength"]:
        yield f"'{text}' is longer than {c['maxLength']}"
    if "pattern" in c and not re.fullmatch(c["pattern"], text):
        yield f"'{text}' does not match the pattern {c['pattern']}"


def check_file(schema, path):
    """Every problem of one file, as text lines."""
    fields = schema["fields"]
    names = [f["name"] for f in fields]
    missing = schema.get("missingValues", [""])
    key = schema.get("primaryKey")
    unique = {f["name"] for f in fields if f.get("constraints", {}).get("unique")}
    unique |= set([key] if isinstance(key, str) else key or [])
    seen = {name: {} for name in unique}
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        yield f"{path}: empty: no header"
        return
    if rows[0] != names:
        extra = [n for n in rows[0] if n not in names]
        absent = [n for n in names if n not in rows[0]]
        yield (f"{path}:1: header is not the schema's fields in order: "
               f"unknown {extra}, missing {absent}, got {rows[0]}")
        return
    for no, row in enumerate(rows[1:], start=2):
        if len(row) != len(names):
            yield f"{path}:{no}: {len(row)} values, the header has {len(names)}"
            continue
        for field, text in zip(fields, row):
            name = field["name"]
            if text in missing:
                if field.get("constraints", {}).get("required"):
                    yield f"{path}:{no}: field {name}: required, and missing ('{text}')"
                continue
            try:
                value = typed(field, text)
            except ValueError as e:
                yield f"{path}:{no}: field {name}: {e} (type {field.get('type', 'string')})"
                continue
            for why in constraint_problems(field, text, value):
                yield f"{path}:{no}: field {name}: {why}"
            if name in seen:
                if text in seen[name]:
                    yield f"{path}:{no}: field {name}: '{text}' again (line {seen[name][text]}): must be unique"
                seen[name][text] = no


def main():
    if len(sys.argv) < 3:
        print("usage: tides_check.py SCHEMA.json FILE.csv...", file=sys.stderr)
        sys.exit(64)
    schema = json.load(open(sys.argv[1]))
    bad = 0
    rows = 0
    for path in sys.argv[2:]:
        problems = list(check_file(schema, path))
        for p in problems[:PROBLEMS_MAX]:
            print(p)
        if len(problems) > PROBLEMS_MAX:
            print(f"{path}: {len(problems) - PROBLEMS_MAX} more problems not shown")
        bad += len(problems)
        rows += max(sum(1 for _ in open(path)) - 1, 0)
    if bad:
        print(f"FAIL: {bad} problems in {len(sys.argv) - 2} files against {sys.argv[1]}")
        sys.exit(1)
    print(f"ok: {len(sys.argv) - 2} files, {rows} rows valid against {schema.get('name', sys.argv[1])}")


if __name__ == "__main__":
    main()
