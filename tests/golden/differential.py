#!/usr/bin/env python3
"""Differential test against real dlt: random records (seeded) through dlt
1.31 and through `host run` into the `capture` sink; prints every case where
the tables, columns (names, types, order) or rows differ.

Not run by CI (it needs dlt). The goldens pin what we know; this looks for
what we do not. A case that shows a real difference becomes a golden case in
cases.py (or a documented difference in docs/normalizer.md).

    target/bench/dlt-venv/bin/python tests/golden/differential.py [CASES] [SEED]

Needs `cargo build --release` and the guest examples built (the test suite
or scripts/example.sh builds them).
"""
import json
import logging
import math
import pathlib
import random
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from make_goldens import run_case  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
HOST = ROOT / "target/release/host"
CAPTURE = ROOT / "target/guests/wasm32-wasip2/release/capture.wasm"

KEYS = [
    "id", "name", "Name", "userId", "CamelCaseID", "PErson", "Full Name", " padded ", "1abc", "a-b", "x+",
    "trail_", "h\u00e9llo", "a___b", "", "_dlt_custom", "_DLT_up", "a\u25b6b", "it's", "value", "list",
    "nested", "tags", "kids", "ts", "amount", "a.b", "UPPER", "with__double", "emoji\U0001F600",
    "line\nbreak", 'quo"te', "\u00c4\u00d6\u00dc", "k" * 200, "tab\tkey",
    # Paths with empty parts and runs of punctuation (issue 18).
    "__dunder__", "a__", "__b", "g- h", "c- _b", "x__y", "a__ __b", "___", "_", "a\u25b6\u25b6b", "\u25b6x\u25b6",
    # Named like dlt's own columns, to take values of every type.
    "_dlt_load_id", "_dlt_id", "_dlt_parent_id", "_dlt_list_idx",
]
STRINGS = [
    "text", "", " ", "7", "-3", "3.5", "1e3", "yes", "no", "true", "False", "2024-01-02", "2024-01-02T03:04:05Z",
    "2024-01-02T03:04:05+02:00", "2024-01-02 03:04:05", "2024-01-02T03:04:05.123456", "2024-13-45T99:99:99Z",
    "12:30:00", "null", "{\"k\": 1}", "\u25b6", "caf\u00e9",
    "\u0000", "line\nbreak", 'quote"', "back\\slash", "\U0001F600", "2024-01-02T03:04:05.1234567Z",
    "2024-01-02T03:04:05.5-07:30", "9999-12-31T23:59:59Z", " 7 ", "0x1F", "1_000", "+5", "-0", "Infinity", "NaN",
    # Week and ordinal dates, pendulum's other forms, json texts (issue 18).
    "2024-W01-2", "2024W012", "2024-W01", "2024W01", "2020-W53-7", "2024-W53", "2024-032", "2024032", "2023-366",
    "2024-W01-2T10:00", "2024032T1000Z", "2024-032 10:00", "2024 1:3", "2024/01/15 10:30.5", "20240102T10:00",
    "-0.0", "[-0, 1.5]", "12345678901234567890",
]


def scalar(r):
    kind = r.randrange(8)
    if kind == 0:
        return None
    if kind == 1:
        return r.random() < 0.5
    if kind == 2:
        return r.choice([0, 1, -1, 7, 42, 2**31, -(2**53), 2**62, 2**63 - 1, -(2**63), 2**53 + 1])
    if kind == 3:
        if r.random() < 0.5:
            return random_double(r)
        return r.choice([0.0, 1.5, -2.25, 3.0, 1e-7, 1e20, 123456.789, -0.0, 1e308, 5e-324, 0.1 + 0.2, 1e16])
    return r.choice(STRINGS)


def random_double(r):
    """A finite double from random bits: every exponent equally likely."""
    while True:
        f = struct.unpack("<d", r.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(f):
            return f


def value(r, depth):
    kind = r.randrange(11) if depth < 4 else 0
    if kind <= 5:
        return scalar(r)
    if kind <= 7:
        return {r.choice(KEYS): value(r, depth + 1) for _ in range(r.randrange(4))}
    if kind == 8:
        # Lists of empty dicts (each is a child row in dlt).
        return [{} for _ in range(r.randrange(1, 4))]
    return [value(r, depth + 1) for _ in range(r.randrange(4))]


def record(r, keys):
    chosen = r.sample(keys, r.randrange(1, min(6, len(keys)) + 1))
    if r.random() < 0.1:
        return {k: None for k in chosen}  # every value null: still a row
    return {k: value(r, 1) for k in chosen}


def make_case(r):
    # A few keys per case, so records share columns and types collide.
    keys = r.sample(KEYS, 6)
    records = [record(r, keys) for _ in range(r.randrange(1, 8))]
    if r.random() < 0.1:
        records.append(scalar(r) or 5)
    # Some cases load in two runs of one pipeline: schema evolution.
    cut = r.randrange(1, len(records)) if len(records) > 1 and r.random() < 0.3 else None
    return dict(
        records=records,
        parts=[records[:cut], records[cut:]] if cut else [records],
        naming=r.choice(["direct", "snake_case"]),
        nesting=r.choice([0, 1, 2, 1000]),
        table=r.choice(["items", "Items Table", "events"]),
        skip=r.random() < 0.7,
    )


def ours(case, work):
    """What the last of the case's runs delivers, as make_goldens.run_case."""
    for run, part in enumerate(case.get("parts", [case["records"]])):
        inp = work / f"input{run}.jsonl"
        inp.write_text("".join(json.dumps(x) + "\n" for x in part))
        out = work / f"out{run}"
        out.mkdir()
        cmd = [
            str(HOST), "-q", "run", "--component", str(CAPTURE), "--input", str(inp), "--table", case["table"],
            "--naming-convention", case["naming"], "--max-nesting-level", str(case["nesting"]), "--batch-size",
            "1000", "--pipelines-dir", str(work / "p"), "--dir", f"{out}::/out",
            "--skip-dlt-columns-and-tables", "true" if case["skip"] else "false",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            return "error: " + done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "error"
    tables = captured(out)
    return [{"name": n, "columns": t["columns"], "rows": t["rows"]} for n, t in sorted(tables.items())]


def captured(out):
    """What the `capture` sink wrote to `out`: {table: {columns, rows}},
    columns as the last delivery listed them, rows in delivery order."""
    tables = {}
    for f in sorted(out.glob("*.json")):
        doc = json.loads(f.read_text())
        t = tables.setdefault(doc["table"]["name"], {"columns": None, "rows": []})
        t["columns"] = [[c["name"], c["data_type"]] for c in doc["table"]["columns"]]
        t["rows"].extend(doc["rows"])
    return tables


RANDOM_IDS = ("_dlt_id", "_dlt_parent_id", "_dlt_load_id")


def comparable(tables):
    """Random ids (root `_dlt_id`, and so every child id) and load ids
    differ between any two runs: compare only that they are there. dlt's
    `_dlt_pipeline_state` table has no counterpart (documented). Doubles
    are compared by their bits."""
    if isinstance(tables, str):
        return tables
    out = []
    for t in tables:
        if t["name"].startswith("_dlt_pipeline_state"):
            continue
        rows = [{k: bits("<id>" if k in RANDOM_IDS and v is not None else v) for k, v in row.items()} for row in t["rows"]]
        out.append({"name": t["name"], "columns": t["columns"], "rows": rows})
    return out


def bits(v):
    """Doubles compared bit for bit (`-0.0` is not `0.0`), inside json too."""
    if isinstance(v, float):
        return "double:" + struct.pack(">d", v).hex()
    if isinstance(v, list):
        return [bits(x) for x in v]
    if isinstance(v, dict):
        return {k: bits(x) for k, x in v.items()}
    return v


def describe(theirs, got):
    """The differences, table by table, in a few lines."""
    if isinstance(theirs, str) or isinstance(got, str):
        return ["dlt:     " + (theirs if isinstance(theirs, str) else "ok"), "dlthost: " + (got if isinstance(got, str) else "ok")]
    a = {t["name"]: t for t in theirs}
    b = {t["name"]: t for t in got}
    out = []
    for name in sorted(set(a) | set(b)):
        if name not in b or name not in a:
            out.append(f"table {name!r} only in {'dlt' if name in a else 'dlthost'}")
            continue
        if a[name]["columns"] != b[name]["columns"]:
            out.append(f"table {name!r} columns\n  dlt:     {a[name]['columns']}\n  dlthost: {b[name]['columns']}")
        for i, (x, y) in enumerate(zip(a[name]["rows"], b[name]["rows"])):
            keys = [k for k in sorted(set(x) | set(y)) if x.get(k) != y.get(k)]
            if keys:
                out.append(f"table {name!r} row {i}: " + ", ".join(f"{k}: dlt {x.get(k)!r} / ours {y.get(k)!r}" for k in keys))
        if len(a[name]["rows"]) != len(b[name]["rows"]):
            out.append(f"table {name!r}: {len(a[name]['rows'])} rows in dlt, {len(b[name]['rows'])} in dlthost")
    return out


def main():
    cases = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    logging.getLogger("dlt").setLevel(logging.ERROR)
    r = random.Random(seed)
    differ = 0
    for i in range(cases):
        case = make_case(r)
        try:
            theirs = run_case(f"diff{i}", case)
        except Exception as e:  # dlt refuses some inputs; so may we
            cause = e
            while cause.__cause__ is not None or cause.__context__ is not None:
                cause = cause.__cause__ or cause.__context__
            theirs = f"error: {type(cause).__name__}: {str(cause).splitlines()[0][:300]}"
        with tempfile.TemporaryDirectory() as work:
            got = ours(case, pathlib.Path(work))
        theirs, got = comparable(theirs), comparable(got)
        if got != theirs and not (isinstance(got, str) and isinstance(theirs, str)):
            differ += 1
            print(f"--- case {i} (seed {seed}): {json.dumps({k: v for k, v in case.items() if k not in ('records', 'parts')})}")
            print("runs:", " | ".join(json.dumps(part, ensure_ascii=False) for part in case["parts"]))
            for line in describe(theirs, got):
                print("  " + line)
    print(f"{differ} of {cases} cases differ")


if __name__ == "__main__":
    main()
