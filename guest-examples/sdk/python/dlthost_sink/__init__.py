"""Helpers for dlthost sinks written in Python (componentize-py).

The bindings that componentize-py generates from `wit/destination.wit`
take the contract's own types: `SinkSpec(...)` with all nine fields,
`ConfigKey(default=ConfigValue_String("x"))`, `Value_Timestamp(...)`,
`Err(SinkError_Retry(RetryError(...)))`. This module wraps them in plain
Python:

    import wit_world
    import dlthost_sink as sink

    class WitWorld(wit_world.WitWorld):
        def spec(self):
            return sink.spec("orders_api", batch_size=100,
                             config=[sink.setting("base_url", "https://api.example.com"),
                                     sink.secret("api_key")])

        def load(self, table, context, items):
            key = sink.require("api_key")
            for row in sink.rows(table, items):   # dicts of Python values
                ...
            # on failure: raise sink.retry("503 from the API", after_ms=2000)
            #         or: raise sink.terminal("the API refused the rows")

Values become Python values by column type: text -> str, double -> float,
bool -> bool, bigint -> int, decimal -> decimal.Decimal, timestamp ->
datetime.datetime (UTC), date -> datetime.date, time -> datetime.time,
binary -> bytes, json -> the parsed value (dict, list, ...), null -> None.
`dumps` writes such rows back as JSON.

Module state (globals, class attributes) lives per instance: one per
worker, and a new one after a trap or every `--store-max-batches` calls.
Import modules at the top of the app module, not inside `load`: the
component is a snapshot taken after the app module was imported, and the
standard library's files are not in the sandbox at run time, so a module
first imported inside `load` is not found.
"""

import base64
import datetime
import decimal
import gzip
import json
from urllib.parse import urlsplit

from componentize_py_types import Err
from wit_world import (
    Compression,
    ConfigKey,
    FileFormat,
    Items_ArrowIpc,
    Items_File,
    Items_Rows,
    ItemFormat,
    RetryError,
    SinkError_Retry,
    SinkError_Terminal,
    SinkSpec,
)
from wit_world.imports import config as _config

# Outgoing HTTP exists only in a world that imports wasi:http (`host new
# --http`, `host wit --http`); imported here, at the top, so the snapshot
# holds it.
try:
    from componentize_py_types import Ok as _Ok
    from wit_world.imports import outgoing_handler as _outgoing, types as _http
    from wit_world.imports.streams import StreamError_Closed as _Closed
except ImportError:
    _outgoing = None

__all__ = [
    "spec",
    "setting",
    "secret",
    "get",
    "get_str",
    "get_int",
    "get_float",
    "get_bool",
    "require",
    "retry",
    "terminal",
    "rows",
    "value",
    "read_jsonl",
    "dumps",
    "safe_name",
    "http_post",
]

CONTRACT = "dlthost:destination@0.1.0"

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_EPOCH_DAY = datetime.date(1970, 1, 1)
_DATA_TYPES = ["text", "double", "bool", "timestamp", "bigint", "binary", "json", "decimal", "date", "time"]


# --- the spec -----------------------------------------------------------------


def spec(
    name,
    *,
    batch_size=None,
    file_format=None,
    naming_convention=None,
    max_nesting_level=None,
    skip_dlt_columns_and_tables=None,
    max_batch_bytes=None,
    arrow_ipc=False,
    config=(),
):
    """The sink's spec. Every argument left `None` is left to config, flags
    and dlt's defaults. `file_format` is "jsonl" or "parquet" (the format of
    job files, what batch size 0 hands over); `config` is a list of
    `setting(...)` and `secret(...)`."""
    formats = {None: None, "jsonl": FileFormat.JSONL, "parquet": FileFormat.PARQUET}
    if file_format not in formats:
        raise ValueError("file_format must be 'jsonl' or 'parquet', not %r" % (file_format,))
    for key in config:
        if not isinstance(key, ConfigKey):
            raise TypeError("config takes sink.setting(...) and sink.secret(...), not %r" % (key,))
    return SinkSpec(
        name=name,
        batch_size=batch_size,
        loader_file_format=formats[file_format],
        naming_convention=naming_convention,
        max_nesting_level=max_nesting_level,
        skip_dlt_columns_and_tables=skip_dlt_columns_and_tables,
        max_batch_bytes=max_batch_bytes,
        item_format=ItemFormat.ARROW_IPC if arrow_ipc else ItemFormat.ROWS,
        config=list(config),
    )


def _config_value(v):
    """A plain Python value as the contract's config-value."""
    # bool before int: True is an int in Python.
    if isinstance(v, bool):
        return _config.ConfigValue_Boolean(v), _config.ConfigType.BOOLEAN
    if isinstance(v, int):
        return _config.ConfigValue_Integer(v), _config.ConfigType.INTEGER
    if isinstance(v, float):
        return _config.ConfigValue_Float(v), _config.ConfigType.FLOAT
    if isinstance(v, str):
        return _config.ConfigValue_String(v), _config.ConfigType.STRING
    raise TypeError("a config default is str, int, float or bool, not %s" % type(v).__name__)


_TYPES = {
    str: _config.ConfigType.STRING,
    int: _config.ConfigType.INTEGER,
    float: _config.ConfigType.FLOAT,
    bool: _config.ConfigType.BOOLEAN,
}


def setting(name, default=None, *, type=None, required=False):
    """A setting under `[destination.<sink>]`. Its type is the default's
    (str, int, float, bool), or `type=` when there is no default; with
    `required=True` the run does not start until it is set."""
    if default is not None:
        wrapped, value_type = _config_value(default)
        if type is not None and _TYPES.get(type) != value_type:
            raise TypeError("setting %r: the default %r is not a %s" % (name, default, type.__name__))
    else:
        wrapped = None
        if type not in _TYPES:
            raise TypeError("setting %r: give a default or type=str|int|float|bool" % (name,))
        value_type = _TYPES[type]
    return ConfigKey(name=name, value_type=value_type, secret=False, required=required, default=wrapped)


def secret(name, *, type=str, required=True):
    """A secret: from `.dlt/secrets.toml`, the environment or `--set`, never
    printed or stored by the host. Required unless `required=False`."""
    if type not in _TYPES:
        raise TypeError("secret %r: type=str|int|float|bool" % (name,))
    return ConfigKey(name=name, value_type=_TYPES[type], secret=True, required=required, default=None)


# --- config -------------------------------------------------------------------


def get(key):
    """The value of a declared key as a plain Python value, or None when it
    is unset (or was not declared)."""
    v = _config.get(key)
    return None if v is None else v.value


def get_str(key):
    """A text key, or None."""
    v = get(key)
    return v if isinstance(v, str) else None


def get_int(key):
    """An integer key, or None."""
    v = get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def get_float(key):
    """A float key (an integer is widened), or None."""
    v = get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def get_bool(key):
    """A boolean key, or None."""
    v = get(key)
    return v if isinstance(v, bool) else None


def require(key):
    """A key that must be set (and, for text, not empty): its value, or a
    terminal error naming where to set it."""
    v = get(key)
    if v is None or v == "":
        raise terminal(
            "`%s` is not set: add it under this sink's section in .dlt/config.toml "
            "(or .dlt/secrets.toml for a secret)" % key
        )
    return v


# --- errors -------------------------------------------------------------------


def retry(message, after_ms=None):
    """An error to raise from `load` for a transient failure: the host sends
    the batch again. `after_ms` (a 429's Retry-After) replaces the host's
    backoff for this attempt."""
    return Err(SinkError_Retry(RetryError(message=str(message), retry_after_ms=after_ms)))


def terminal(message):
    """An error to raise from `load` when the batch can never be delivered:
    its job fails, the other jobs go on."""
    return Err(SinkError_Terminal(str(message)))


# --- rows ---------------------------------------------------------------------


def value(v):
    """One contract value (`Value_*`) as a plain Python value."""
    kind = type(v).__name__
    if kind == "Value_Null":
        return None
    if kind in ("Value_Bool", "Value_Bigint", "Value_Double", "Value_Text"):
        return v.value
    if kind == "Value_Decimal":
        return decimal.Decimal(v.value)
    if kind == "Value_Timestamp":
        return _EPOCH + datetime.timedelta(microseconds=v.value)
    if kind == "Value_Date":
        return _EPOCH_DAY + datetime.timedelta(days=v.value)
    if kind == "Value_Time":
        return _time(v.value)
    if kind == "Value_Binary":
        return bytes(v.value)
    if kind == "Value_Json":
        return json.loads(v.value)
    raise terminal("unknown value type " + kind)


def _time(micros):
    secs, us = divmod(micros, 1_000_000)
    return datetime.time(secs // 3600, secs // 60 % 60, secs % 60, us)


def rows(table, items):
    """The rows of a batch as dicts {column name: Python value}, in order:
    typed rows (batch size above 0) or a whole jsonl job file (batch size
    0). Parquet job files and Arrow IPC batches need a columnar library;
    they raise a terminal error (declare `file_format="jsonl"`)."""
    if isinstance(items, Items_Rows):
        names = [c.name for c in table.columns]
        return ({n: value(v) for n, v in zip(names, row)} for row in items.value)
    if isinstance(items, Items_File):
        return read_jsonl(items.value, table)
    if isinstance(items, Items_ArrowIpc):
        raise terminal("this sink reads typed rows; it was given Arrow IPC (drop arrow_ipc=True from its spec)")
    raise terminal("unknown items " + type(items).__name__)


def read_jsonl(file, table):
    """Streams the rows of a jsonl job file (plain or gzip) as dicts of
    Python values, one line at a time."""
    if file.format != FileFormat.JSONL:
        raise terminal(
            "%s is a parquet job file; this sink reads jsonl ones: declare file_format=\"jsonl\" in its spec"
            % file.path
        )
    if file.compression == Compression.GZIP:
        fh = gzip.open(file.path, "rt", encoding="utf-8")
    else:
        fh = open(file.path, encoding="utf-8")
    types = [(c.name, _DATA_TYPES[c.data_type.value]) for c in table.columns]
    with fh:
        for line in fh:
            if line.strip():
                parsed = json.loads(line)
                yield {n: _from_json(parsed.get(n), t) for n, t in types}


def _from_json(v, data_type):
    """A job file's JSON value as the Python value `value` gives for the
    same column."""
    if v is None or data_type in ("text", "bool", "bigint", "json"):
        return v
    if data_type == "double":
        return float(v)
    if data_type == "decimal":
        return decimal.Decimal(str(v))
    if data_type == "timestamp":
        return datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
    if data_type == "date":
        return datetime.date.fromisoformat(v)
    if data_type == "time":
        return datetime.time.fromisoformat(v)
    if data_type == "binary":
        return base64.b64decode(v)
    return v


def _json_default(v):
    if isinstance(v, datetime.datetime):
        return v.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(v, (datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(v).decode()
    raise TypeError("cannot write %s as JSON" % type(v).__name__)


def dumps(obj):
    """Compact JSON text of rows from `rows`: timestamps RFC 3339 UTC with six
    fraction digits, dates and times ISO, decimals as strings, bytes as
    base64."""
    return json.dumps(obj, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def safe_name(name):
    """A table name or key made safe as part of a file name: ASCII letters,
    digits, `_` and `-` stay, every other byte becomes `%XX`."""
    return "".join(
        chr(b) if (chr(b).isascii() and (chr(b).isalnum() or chr(b) in "_-")) else "%%%02X" % b
        for b in name.encode()
    )


# --- outgoing HTTP (worlds that import wasi:http) -----------------------------

_SECOND_NS = 1_000_000_000


def http_post(url, headers, body, connect_timeout_s=10):
    """POSTs `body` (bytes) to `url` through the host, which allows only the
    origins granted with --allow-host. Returns (status, {lower-cased header:
    value}, body bytes); raises OSError for network errors and refusals
    (retry those). `headers` is a list of (name, value) pairs."""
    if _outgoing is None:
        raise RuntimeError("this sink's world does not import wasi:http: build it against `host wit --http`")
    parts = urlsplit(url)
    request = _http.OutgoingRequest(_http.Fields.from_list([(k, v.encode()) for k, v in headers]))
    request.set_method(_http.Method_Post())
    request.set_scheme(_http.Scheme_Https() if parts.scheme == "https" else _http.Scheme_Http())
    request.set_authority(parts.netloc)
    request.set_path_with_query(parts.path + ("?" + parts.query if parts.query else ""))
    options = _http.RequestOptions()
    options.set_connect_timeout(int(connect_timeout_s * _SECOND_NS))
    out_body = request.body()
    future = _outgoing.handle(request, options)
    with out_body.write() as stream:
        # blocking-write-and-flush takes at most 4096 bytes a call.
        for i in range(0, len(body), 4096):
            stream.blocking_write_and_flush(body[i : i + 4096])
    _http.OutgoingBody.finish(out_body, None)
    with future:
        result = future.get()
        while result is None:
            with future.subscribe() as pollable:
                pollable.block()
            result = future.get()
    if not isinstance(result, _Ok) or not isinstance(result.value, _Ok):
        error = result.value.value if isinstance(result, _Ok) else result.value
        raise OSError("POST %s: %s" % (url, error))
    with result.value.value as response:
        status = response.status()
        with response.headers() as h:
            got = {k.lower(): v.decode(errors="replace") for k, v in h.entries()}
        data = b""
        incoming = response.consume()
        with incoming.stream() as s:
            while True:
                try:
                    data += s.blocking_read(16384)
                except Err as e:
                    if isinstance(e.value, _Closed):
                        break
                    raise OSError("reading the answer of POST %s failed" % url)
        _http.IncomingBody.finish(incoming)
    return status, got, data
