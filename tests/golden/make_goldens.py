#!/usr/bin/env python3
"""Produces the golden files from real dlt 1.31: for each case in cases.py,
runs dlt with a capturing @dlt.destination and writes
<case>/input.jsonl, <case>/settings.json and <case>/expected.json.

Not run by CI (it needs dlt from PyPI). Run it after changing cases.py:

    python3 -m venv .venv && .venv/bin/pip install 'dlt==1.31.*'
    .venv/bin/python tests/golden/make_goldens.py

The documented differences between dlt and dlthost (docs/normalizer.md) are
applied here, so the goldens state what dlthost must deliver:
- a row carries every column of its table, null as null (dlt leaves nulls out);
- with skip off, row ids and load ids (random) are masked as `<id>`;
- values in the capture encoding: timestamps RFC 3339 UTC with six fraction
  digits, dates YYYY-MM-DD, decimals as strings, binary as base64, json
  values embedded.
"""
import base64
import datetime
import decimal
import json
import pathlib
import shutil
import sys
import tempfile

import dlt

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from cases import CASES  # noqa: E402

HERE = pathlib.Path(__file__).parent


def encode(v):
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        # isoformat, not strftime: glibc's %Y does not pad year 1 to 0001.
        return v.astimezone(datetime.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, datetime.time):
        return v.strftime("%H:%M:%S.%f")
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    return v


def run_case(name, case):
    captured = {}

    @dlt.destination(
        batch_size=1000,
        name="golden",
        naming_convention=case.get("naming", "direct"),
        max_table_nesting=case.get("nesting", 0),
        skip_dlt_columns_and_tables=case.get("skip", True),
    )
    def golden(items, table):
        t = captured.setdefault(table["name"], {"columns": None, "rows": []})
        t["columns"] = [[c["name"], c["data_type"]] for c in table["columns"].values()]
        for item in items:
            t["rows"].append(item)

    work = tempfile.mkdtemp()
    try:
        p = dlt.pipeline(f"golden_{name}", destination=golden, pipelines_dir=work)
        # `parts`: records loaded by successive runs of one pipeline; what
        # the last run delivers is the result (its tables list every column
        # the earlier runs added).
        for part in case["parts"] if "parts" in case else [case["records"]]:
            captured.clear()
            p.run(part, table_name=case.get("table", "items"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tables_of(captured, case.get("skip", True))


def tables_of(captured, skip=True):
    """Captured deliveries ({table: {columns, rows}}) as the expected form:
    tables by name, rows with every column (values encoded). With skip off,
    the random ids and load ids are masked (see `mask`)."""
    tables = []
    for tname, t in captured.items():
        if tname.startswith("_dlt_pipeline_state"):
            continue  # dlt's Python state: no counterpart (documented)
        cols = t["columns"]
        rows = [{c: encode(row.get(c)) for c, _ in cols} for row in t["rows"]]
        if not skip:
            rows = [mask(row) for row in rows]
        if rows:
            tables.append({"name": tname, "columns": cols, "rows": rows})
    tables.sort(key=lambda t: t["name"])
    return tables


RANDOM = ("_dlt_id", "_dlt_parent_id", "_dlt_load_id")


def mask(row):
    """Row ids and load ids differ between any two runs: `<id>` where one
    is, so a golden case compares that it is there, not its value."""
    return {k: ("<id>" if k in RANDOM and v is not None else v) for k, v in row.items()}


def main():
    for name, case in CASES.items():
        out = HERE / name
        out.mkdir(exist_ok=True)
        settings = {
            "naming_convention": case.get("naming", "direct"),
            "max_nesting_level": case.get("nesting", 0),
            "table": case.get("table", "items"),
        }
        if not case.get("skip", True):
            settings["skip_dlt_columns_and_tables"] = False
        if "parts" in case:
            # One input per run, loaded in order into one pipeline.
            settings["inputs"] = [f"input{i + 1}.jsonl" for i in range(len(case["parts"]))]
            for file, part in zip(settings["inputs"], case["parts"]):
                (out / file).write_text("".join(json.dumps(r) + "\n" for r in part))
        else:
            (out / "input.jsonl").write_text("".join(json.dumps(r) + "\n" for r in case["records"]))
        (out / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
        tables = run_case(name, case)
        (out / "expected.json").write_text(json.dumps({"tables": tables}, indent=2, ensure_ascii=False) + "\n")
        print(f"{name}: {', '.join(t['name'] for t in tables)}")


if __name__ == "__main__":
    main()
