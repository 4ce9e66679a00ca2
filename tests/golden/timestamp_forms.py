#!/usr/bin/env python3
"""Asks real dlt 1.31 (pendulum's ISO 8601 parser behind it) about every
date and time form we can think of, and writes the answers to
timestamp_forms.json, which host/src/normalize/datetime.rs's tests read.

For each text: does dlt infer a *new* column holding it as a timestamp
(`is_iso_timestamp`), and what does it become when coerced into an
*existing* timestamp column (`coerce_value("timestamp", "text", ...)`), as
microseconds since the epoch, UTC (null: dlt cannot coerce it).

Not run by CI (it needs dlt). Run it after changing the forms below:

    .venv/bin/python tests/golden/timestamp_forms.py

The candidates are built from the grammar of ISO 8601 (calendar, ordinal
and week dates, basic and extended, with times, fractions and offsets),
the other forms pendulum's fallback reads (`2024/01/15`), each with values
at and past their limits, plus seeded random mutations of them (a character
dropped, doubled or replaced, a separator swapped).
"""
import datetime
import json
import pathlib
import random

from dlt.common.data_types.type_helpers import coerce_value
from dlt.common.schema.detections import is_iso_timestamp

HERE = pathlib.Path(__file__).parent
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def dates():
    out = []
    for y in ["2024", "2023", "2020", "0001", "9999", "1970", "2021"]:
        out += [y]
        for m in ["01", "02", "12", "13", "00", "1"]:
            out += [f"{y}-{m}", f"{y}{m}"]
            for d in ["01", "02", "29", "30", "31", "32", "00", "2"]:
                out += [f"{y}-{m}-{d}", f"{y}{m}{d}", f"{y}/{m}/{d}", f"{y}-{m}{d}", f"{y}{m}-{d}"]
        for o in ["001", "032", "059", "060", "365", "366", "367", "000", "32", "0032"]:
            out += [f"{y}-{o}", f"{y}{o}"]
        for w in ["01", "1", "10", "52", "53", "54", "00"]:
            out += [f"{y}-W{w}", f"{y}W{w}", f"{y}-w{w}"]
            for d in ["1", "2", "7", "0", "8"]:
                out += [f"{y}-W{w}-{d}", f"{y}W{w}{d}", f"{y}-W{w}{d}", f"{y}W{w}-{d}"]
    return out


def times():
    out = ["10", "1", "24", "23"]
    for hm in ["10:30", "1030", "24:00", "23:59", "10:60", "10:3"]:
        out.append(hm)
        for s in [":45", "45", ":60", ":59", ":5"]:
            out.append(hm + s)
    fractions = [".5", ",5", ".123456", ".1234567", ".123456789", ".", ".x"]
    out += [t + f for t in ["10:30:45", "103045", "10:30", "10"] for f in fractions]
    return out


OFFSETS = ["", "Z", "z", "+01", "-05", "+0130", "+01:30", "-00:00", "+23:59", "+24:00", "+1", "+01:5", "+01:30:00", " +01:00", "+0", "UTC"]
SEPARATORS = ["T", " ", "t", "_", "  "]


def candidates():
    base = dates()
    out = list(base)
    rng = random.Random(8601)
    # Every date form with a few times: one year whose dates are all valid
    # forms, the edge years with fewer combinations.
    for d in base:
        year = d[:4]
        if year not in ("2024", "2020", "9999", "0001"):
            continue
        for sep in SEPARATORS if year == "2024" else ["T", " "]:
            for t in rng.sample(times(), 2 if year == "2024" else 1):
                out.append(f"{d}{sep}{t}{rng.choice(OFFSETS)}")
    # Every time and offset form behind a few dates.
    for d in ["2024-01-02", "20240102", "2024-032", "2024W012", "2024-W01-2", "2024/01/15", "9999-12-31", "0001-01-01"]:
        for sep in ["T", " "]:
            for t in times():
                for off in OFFSETS:
                    out.append(f"{d}{sep}{t}{off}")
    # Hand-picked ones from the issue and the old tests.
    out += ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05+02:00", "2024-01-02 03:04:05", "20240102T030405Z",
            "2024/01/15 10:00", "2024/01/15 10:00:00", "2024/01/15 10", "2024/01/15T10:00", "12:30:00", "7",
            "3.5", "1e3", "-1", "1700000000", "202401021030", "2024010210", "nan", "inf", "yes", "", " ",
            " 2024-01-02", "2024-01-02 ", "+2024-01-02", "24-01-02", "2024.01.15", "Jan 2024"]
    # Seeded mutations.
    alphabet = "0123456789-:T WZ+.,/"
    for s in rng.sample(out, min(3000, len(out))):
        if not s:
            continue
        i = rng.randrange(len(s))
        kind = rng.randrange(3)
        if kind == 0:
            out.append(s[:i] + s[i + 1:])
        elif kind == 1:
            out.append(s[:i] + s[i] + s[i:])
        else:
            out.append(s[:i] + rng.choice(alphabet) + s[i + 1:])
    seen = set()
    return [s for s in out if not (s in seen or seen.add(s))]


def micros(dt):
    if isinstance(dt, datetime.datetime):
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=datetime.timezone.utc)
        return (dt - EPOCH) // datetime.timedelta(microseconds=1)
    return None


def main():
    rows = []
    for text in candidates():
        detected = is_iso_timestamp(str, text) == "timestamp"
        try:
            coerced = micros(coerce_value("timestamp", "text", text))
        except Exception:
            coerced = None
        rows.append([text, detected, coerced])
    (HERE / "timestamp_forms.json").write_text(
        "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n]\n"
    )
    print(f"{len(rows)} texts, {sum(r[1] for r in rows)} detected, {sum(r[2] is not None for r in rows)} coerce")


if __name__ == "__main__":
    main()
