"""python_sink: the capture sink in Python, built with componentize-py.

Each `load` call becomes one JSON file in the directory granted as /out
(`host run --dir ./out::/out ...`), in the capture format described by
guest-examples/capture/capture.schema.json. Build:

    componentize-py -d ../../wit -w destination componentize app -o python_sink.wasm
"""

import base64
import datetime
import json
import os

import wit_world
from componentize_py_types import Err
from wit_world import (
    Compression,
    FileFormat,
    Items_File,
    Items_Rows,
    ItemFormat,
    SinkError_Terminal,
    SinkSpec,
)

OUT_DIR = "/out"
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

DATA_TYPES = ["text", "double", "bool", "timestamp", "bigint", "binary", "json", "decimal", "date", "time"]
DISPOSITIONS = ["append", "replace", "merge", "skip"]


def encode(v):
    """One WIT value in the capture encoding."""
    kind = type(v).__name__.removeprefix("Value_")
    if kind == "Null":
        return None
    if kind in ("Bool", "Bigint", "Double", "Text", "Decimal"):
        return v.value
    if kind == "Timestamp":
        t = EPOCH + datetime.timedelta(microseconds=v.value)
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if kind == "Date":
        return (datetime.date(1970, 1, 1) + datetime.timedelta(days=v.value)).isoformat()
    if kind == "Time":
        secs, micros = divmod(v.value, 1_000_000)
        return "%02d:%02d:%02d.%06d" % (secs // 3600, secs // 60 % 60, secs % 60, micros)
    if kind == "Binary":
        return base64.b64encode(bytes(v.value)).decode()
    if kind == "Json":
        return json.loads(v.value)
    raise ValueError("unknown value " + kind)


def column_json(c):
    out = {"name": c.name, "data_type": DATA_TYPES[c.data_type.value], "nullable": c.nullable}
    for hint in ("primary_key", "unique", "row_key", "parent_key", "variant"):
        if getattr(c, hint):
            out[hint] = True
    for hint in ("precision", "scale", "timezone"):
        if getattr(c, hint) is not None:
            out[hint] = getattr(c, hint)
    return out


def safe_file_name(name):
    out = "".join(chr(b) if (chr(b).isascii() and (chr(b).isalnum() or chr(b) in "_-")) else "%%%02X" % b for b in name.encode())
    if len(out) > 64:
        h = 0xCBF29CE484222325
        for b in name.encode():
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        out = out[:47].rstrip("%")
        while len(out) >= 2 and out[-2] == "%":
            out = out[:-2]
        out += "~%016x" % h
    return out


def read_job_file(f, table):
    if f.format != FileFormat.JSONL or f.compression != Compression.NONE:
        raise Err(SinkError_Terminal("python_sink reads plain jsonl job files only"))
    rows = []
    with open(f.path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                parsed = json.loads(line)
                rows.append({c.name: parsed.get(c.name) for c in table.columns})
    return rows


def write_new_file(stem, text):
    tmp = "%s/.%s.tmp" % (OUT_DIR, stem)
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    n = 0
    while os.path.exists("%s/%s.%d.json" % (OUT_DIR, stem, n)):
        n += 1
    os.rename(tmp, "%s/%s.%d.json" % (OUT_DIR, stem, n))


class WitWorld(wit_world.WitWorld):
    def spec(self):
        if os.environ.get("FAIL_SPEC"):
            # For the test that a failing spec() is reported as such.
            raise ValueError("spec() refused on purpose (FAIL_SPEC)")
        return SinkSpec(
            name="python_sink",
            batch_size=None,
            # Whole job files (batch size 0) as jsonl: this sink reads no parquet.
            loader_file_format=FileFormat.JSONL,
            naming_convention=None,
            max_nesting_level=None,
            skip_dlt_columns_and_tables=None,
            max_batch_bytes=None,
            item_format=ItemFormat.ROWS,
            config=[],
        )

    def load(self, table, context, items):
        if os.environ.get("FAIL_LOAD"):
            # For the test that an exception in load() is named in the job error.
            raise ValueError("load refused on purpose (FAIL_LOAD)")
        file = None
        if isinstance(items, Items_Rows):
            rows = [{c.name: encode(v) for c, v in zip(table.columns, row)} for row in items.value]
        elif isinstance(items, Items_File):
            f = items.value
            rows = read_job_file(f, table)
            file = {"path": f.path, "format": ["jsonl", "parquet"][f.format.value], "row_count": f.row_count}
        else:
            raise Err(SinkError_Terminal("python_sink asks for rows"))
        doc = {
            "table": {
                "name": table.name,
                "parent": table.parent,
                "write_disposition": DISPOSITIONS[table.write_disposition.value],
                "columns": [column_json(c) for c in table.columns],
            },
            "context": {
                "load_id": context.load_id,
                "job_id": context.job_id,
                "batch_index": context.batch_index,
                "start_row": context.start_row,
                "row_count": context.row_count,
                "idempotency_key": context.idempotency_key,
                "attempt": context.attempt,
            },
            "rows": rows,
            "file": file,
        }
        stem = "%s.%s.%d" % (safe_file_name(table.name), context.job_id, context.start_row)
        write_new_file(stem, json.dumps(doc))
