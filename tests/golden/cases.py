"""The golden cases: input records and settings. make_goldens.py runs each
through real dlt 1.31 and writes <case>/input.jsonl, settings.json and
expected.json; the Rust test tests/tests/all/golden.rs runs the same input
through `host run` and compares."""

CASES = {
    "flat_scalars": dict(records=[{"id": 1, "name": "a", "score": 1.5, "ok": True}, {"id": 2, "name": "b", "score": 2.0, "ok": False}]),
    "nested_nesting_0": dict(records=[{"id": 1, "address": {"city": "X", "geo": {"lat": 1.5}}, "tags": ["a", "b"]}]),
    "nested_nesting_1": dict(nesting=1, records=[{"id": 1, "address": {"city": "X", "geo": {"lat": 1.5}}, "tags": ["a", "b"], "kids": [{"name": "k", "toys": [1, 2]}]}]),
    "nested_nesting_2": dict(nesting=2, records=[{"id": 1, "address": {"city": "X", "geo": {"lat": 1.5, "deep": {"x": 1}}}, "kids": [{"name": "k", "toys": [1, 2]}, {"name": "l", "toys": []}]}]),
    "nested_snake_case": dict(nesting=2, naming="snake_case", records=[{"userId": 1, "homeAddress": {"zipCode": "1"}, "petNames": ["Rex"]}]),
    "large_nesting": dict(nesting=1000, records=[{"a": {"b": {"c": {"d": {"e": 1}}}}, "l": [[1, 2], [3]]}]),
    "column_order": dict(nesting=5, records=[{"a": {"x": 1, "z": {"q": 1}}, "s": 1, "L": [1], "b": {"y": 2}, "i": 2}]),
    "odd_keys_direct": dict(records=[{"Full Name": 1, "a\u25b6b": 2, "it's": 3, " padded ": 4, "camelCase": 5}]),
    "odd_keys_snake": dict(naming="snake_case", records=[{"PErson": 1, "CamelCaseID": 2, "1abc": 3, "a-b": 4, "x+": 5, "trail_": 6, "h\u00e9llo": 7, "a___b": 8}]),
    "empty_key": dict(records=[{"": 1, "ok": 2}]),
    "variants": dict(records=[{"i": 1}, {"i": "x"}, {"i": 3.7}, {"i": True}]),
    "coercion_bigint": dict(records=[{"i": 1}, {"i": "7"}, {"i": 3.0}]),
    "coercion_bool": dict(records=[{"b": True}, {"b": "yes"}, {"b": "no"}, {"b": "maybe"}]),
    "coercion_text": dict(records=[{"t": "a"}, {"t": 5}, {"t": 2.5}]),
    "coercion_double": dict(records=[{"f": 1.5}, {"f": 2}]),
    "timestamps": dict(records=[{"ts": "2024-01-02T03:04:05+02:00", "d": "2024-01-02", "sp": "2024-01-02 03:04:05"}, {"ts": "2024-06-01T00:00:00Z", "d": "x", "sp": "2024-01-03 00:00:00"}]),
    "timestamp_variant": dict(records=[{"ts": "2024-01-02T03:04:05Z"}, {"ts": "garbage"}]),
    "null_only_column": dict(records=[{"id": 1, "nul": None}, {"id": 2, "nul": None}]),
    "scalars_at_top": dict(records=[1, 2, 3]),
    "list_of_lists": dict(nesting=2, records=[{"id": 1, "m": [[1, 2], [3]]}]),
    "empty_containers_nesting_1": dict(nesting=1, records=[{"id": 1, "o": {}, "l": [], "n": {"x": None}}]),
    "empty_containers_nesting_0": dict(records=[{"id": 1, "o": {}, "l": []}]),
    "dlt_prefix_skipped": dict(records=[{"id": 1, "_dlt_custom": 1, "_dltx": 2, "_DLT_up": 3}]),
    "table_name_snake": dict(naming="snake_case", table="PErson", records=[{"camelCase": 1}]),
    "schema_evolution": dict(records=[{"a": 1}, {"a": 2, "b": "x"}, {"c": 3.5}]),
    # Two runs of one pipeline: the second delivers every column the first added.
    "schema_evolution_two_runs": dict(nesting=1, parts=[
        [{"a": 1, "b": "x", "l": [1]}, {"a": 2}],
        [{"a": "7", "c": 1.5, "b": 5}, {"a": "seven", "d": {"e": True}, "l": ["y"]}],
    ]),
    # Found by differential.py against dlt 1.31:
    "timestamp_detection_forms": dict(records=[{"a": "2024-01-02T03", "b": "20240102T030405Z", "c": "2024/01/15 10:00", "d": "2024-01-02T03:04:05,5+02", "e": "2024-01-02t03:04:05z", "f": "2024"}]),
    "timestamp_coercion_from_text": dict(records=[{"ts": "2024-01-02T03:04:05Z"}, {"ts": "2024-01-02"}, {"ts": "7"}, {"ts": "3.5"}, {"ts": "2024"}, {"ts": "2024/01/15"}, {"ts": "12:30:00"}, {"ts": 1700000000}]),
    "timestamp_range": dict(records=[{"ts": "2024-01-02T03:04:05Z"}, {"ts": -62135596800}, {"ts": 253402300799.99997}, {"ts": 253402300800}, {"ts": 253402300799.999999}, {"ts": "0001-01-01T00:00:00Z"}, {"ts": -62135596800.5}]),
    "bool_coercion_from_numbers": dict(records=[{"b": True}, {"b": -1}, {"b": 0.0}, {"b": 2.5}, {"b": "on"}, {"b": "TRUE"}, {"b": " yes"}]),
    "json_coercion_from_text": dict(records=[{"j": {"k": 1}}, {"j": "{\"k\": 2}"}, {"j": "7"}, {"j": "null", "id": 1}, {"j": "not json"}]),
    "variant_named_by_json_type": dict(records=[{"n": 1}, {"n": "2024-01-02T03:04:05Z"}, {"n": "2024-01-03T00:00:00Z"}, {"n": True}]),
    "text_from_numbers_python_repr": dict(records=[{"t": "a"}, {"t": 1e20}, {"t": 1e-05}, {"t": 3.0}, {"t": 0.0001}, {"t": 1e16}, {"t": 42}, {"t": False}, {"t": {"k": [1, "x"]}}]),
    "bigint_and_double_from_text": dict(records=[{"i": 1, "f": 1.5}, {"i": " 1_000 ", "f": "0x10"}, {"i": "0x1f", "f": "1_000.5"}, {"i": "7.0", "f": " 2 "}]),
    "colliding_keys_snake": dict(naming="snake_case", records=[{"a-b": 1, "a.b": 2, "c": 0}, {"a-b": "x", "a.b": None, "c": 1}, {"a.b": 5}]),
    "empty_key_list": dict(nesting=1, records=[{"id": 1, "": [10, 20]}, {"id": 2, " ": ["x"]}]),
    # Issue 18, found by a wider differential against dlt 1.31:
    # rows whose every value is null are rows (dlt delivers them), also in
    # a table that has no column at all, and list items that are empty dicts.
    "all_null_records": dict(records=[{"a": 1, "b": "x"}, {"a": None, "b": None}, {}, {"c": None}, {"a": 2}]),
    "all_null_table": dict(records=[{"a": None}, {}, {"b": None}]),
    "empty_objects_in_list": dict(nesting=1, records=[{"id": 1, "l": [{}, {}, {"x": 1}]}, {"id": 2, "l": [{}]}, {"id": 3, "m": [{}, {}]}]),
    # Week and ordinal dates (and pendulum's other forms) coerce into a
    # timestamp column; date-times of those forms make a new one.
    "week_and_ordinal_dates": dict(records=[
        {"t": "2024-01-02T00:00:00Z", "n": "2024-W01-2T10:00"},
        {"t": "2024-W01-2", "n": "2024032T1000Z"}, {"t": "2024W012"}, {"t": "2024-W01"}, {"t": "2024W01"},
        {"t": "2020-W53-7"}, {"t": "2024-W53"}, {"t": "2024-032"}, {"t": "2024032"}, {"t": "2024-366"},
        {"t": "2023-366"}, {"t": "2024-W01-2T10:00+01"}, {"t": "2024 1:3"}, {"t": "2024/01/15 10:30.5"},
        {"t": "20240102T10:00"}, {"t": "20240102T10:00:00Z"}, {"t": "2024-01-02T1030"}, {"t": "202401"},
        {"w": "2024-W01-2"}, {"w": "2024-032T10"}, {"o": "2024 1:3"},
    ]),
    # snake_case: a key is a path of `__`-separated parts, empty parts are
    # dropped, and runs of other characters become one `_`.
    "dunder_keys_snake": dict(naming="snake_case", nesting=1, records=[
        {"__dunder__": 1, "a__": 2, "__b": 3, "g- h": 4, "c- _b": 5, "x__y": 6, "a__ __b": 7, "___": 8,
         "a___": 9, "1__2": 10, "__n": {"__in__": 1}, "l__": [1, 2], "__m": [{"__q__": 1}]},
    ]),
    "dunder_keys_direct": dict(records=[{"\u25b6x\u25b6": 1, "a\u25b6\u25b6b": 2, " c \u25b6 d ": 3}]),
    # Keys named like dlt's own columns (skip off): dlt's values win and the
    # columns keep dlt's types; the user's key only places the column.
    "dlt_named_keys": dict(skip=False, nesting=1, records=[
        {"a": 1, "_dlt_load_id": 5}, {"_dlt_load_id": []}, {"_dlt_load_id": None, "a": 2},
        {"_dlt_id": None, "a": 3}, {"_dlt_load_id": {"k": 1}, "a": 4},
        {"a": 5, "l": [{"_dlt_parent_id": 2.5, "_dlt_list_idx": "x", "v": 1}, {"_dlt_parent_id": None, "v": 2}]},
    ]),
    # Text coerced into a json column is read as json.loads reads it.
    "json_from_text_numbers": dict(records=[{"j": {"a": 1}}, {"j": "-0"}, {"j": "-0.0"}, {"j": "[-0, 0.1, 1e-7]"}, {"j": "12345678901234567890"}, {"j": "926692147331.6327"}]),
}
