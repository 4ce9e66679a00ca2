#!/usr/bin/env python3
"""Hinted coercions against real dlt: every hinted column type (date, time,
decimal with and without a shape, binary, timestamp, bigint, double, bool,
text, json) against a set of odd values, through dlt 1.31 (`columns=` on
the resource) and through `host run --schema-hints` into the `capture`
sink; prints every case where tables, columns or rows differ.

Not run by CI (it needs dlt). What it finds becomes a fix with a test, or a
row in the differences table of docs/normalizer.md.

    target/bench/dlt-venv/bin/python tests/golden/hint_coercions.py

Needs `cargo build --release` and the guest examples built.
"""
import copy
import json
import logging
import pathlib
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import dlt  # noqa: E402
from differential import CAPTURE, HOST, STRINGS, captured, comparable, describe  # noqa: E402
from make_goldens import tables_of  # noqa: E402

VALUES = STRINGS + [
    0, 1, -1, 7, 1.5, -2.25, 3.0, 1e-7, 1e20, 1700000000, 253402300799, True, False, None, {"k": 1}, [1, 2],
    "2024-01-02", "2024-01-02T03:04:05Z", "12:30", "12:30:00.5", "23:59:60", "1.25", "-0.005",
    "12345678901234567890", "aGk=", "0xff", "hi!", "2024-02-30", "2024/01/15",
]
HINTS = [
    {"data_type": "date"}, {"data_type": "time"}, {"data_type": "decimal"},
    {"data_type": "decimal", "precision": 6, "scale": 2}, {"data_type": "binary"}, {"data_type": "timestamp"},
    {"data_type": "bigint"}, {"data_type": "double"}, {"data_type": "bool"}, {"data_type": "text"},
    {"data_type": "json"},
]


def theirs(records, hint):
    delivered = {}

    @dlt.destination(batch_size=1000, name="golden", max_table_nesting=0, skip_dlt_columns_and_tables=True)
    def golden(items, table):
        t = delivered.setdefault(table["name"], {"columns": None, "rows": []})
        t["columns"] = [[c["name"], c["data_type"]] for c in table["columns"].values()]
        t["rows"].extend(items)

    work = tempfile.mkdtemp()
    try:
        p = dlt.pipeline("hint_coercions", destination=golden, pipelines_dir=work)
        # dlt adds keys to the hint it is given: a copy.
        p.run(dlt.resource(records, name="items", columns={"x": copy.deepcopy(hint)}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tables_of(delivered)


def ours(records, hint):
    with tempfile.TemporaryDirectory() as work:
        work = pathlib.Path(work)
        (work / "out").mkdir()
        (work / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        toml = '[tables.items.columns."x"]\n' + "".join(f"{k} = {json.dumps(v)}\n" for k, v in hint.items())
        (work / "hints.toml").write_text(toml)
        cmd = [
            str(HOST), "-q", "run", "--component", str(CAPTURE), "--input", str(work / "in.jsonl"), "--table",
            "items", "--max-nesting-level", "0", "--schema-hints", str(work / "hints.toml"), "--pipelines-dir",
            str(work / "p"), "--dir", f"{work / 'out'}::/out",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            return "error: " + done.stderr.strip()[-300:]
        return tables_of(captured(work / "out"))


def main():
    logging.getLogger("dlt").setLevel(logging.CRITICAL)
    differ = 0
    for hint in HINTS:
        for value in VALUES:
            records = [{"x": value}]
            try:
                want = theirs(records, hint)
            except Exception as e:  # dlt fails on some; so may we
                cause = e
                while cause.__cause__ is not None or cause.__context__ is not None:
                    cause = cause.__cause__ or cause.__context__
                want = f"error: {type(cause).__name__}: {str(cause)[:150]}"
            got = ours(records, hint)
            want, got = comparable(want), comparable(got)
            if want != got and not (isinstance(want, str) and isinstance(got, str)):
                differ += 1
                print("==", json.dumps(hint), json.dumps(value))
                for line in describe(want, got):
                    print("   ", line[:300])
    print(f"{differ} of {len(HINTS) * len(VALUES)} cases differ")


if __name__ == "__main__":
    main()
