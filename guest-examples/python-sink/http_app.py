"""python_http_sink: the reverse-ETL sink in Python, over wasi:http.

POSTs each batch as JSON to `<url>/<table>`, exactly as the Rust http_sink:

    POST <url>/<table>
    Content-Type: application/json
    Idempotency-Key: <the batch's idempotency key>
    Authorization: Bearer <api_key>     (unless the host injects it)

    {"table": "<table>", "rows": [{<column>: <value>, ...}, ...]}

and maps the response: 2xx -> ok; 408, 429, 5xx and network errors -> retry
(with Retry-After seconds as the retry-after); other 4xx -> terminal with the
response body. Values use the capture encoding (`app.encode`).

Config: `url` (required), `api_key` (secret, required). The host must allow
the API's origin (`--allow-host`). Build (the world adds
`wasi:http/outgoing-handler` to `destination`; `host wit --http` writes it
and the packages it uses):

    host wit --out build-wit --http --world python-http-sink
    componentize-py -d build-wit -w python-http-sink componentize -p . -p ../sdk/python http_app -o python_http_sink.wasm
"""

import json
from urllib.parse import quote

import wit_world
from app import encode
from componentize_py_types import Err

# POST through the host's wasi:http: the SDK's helper (guest-examples/sdk/python).
from dlthost_sink import http_post as post
from wit_world import (
    ConfigKey,
    ItemFormat,
    Items_Rows,
    RetryError,
    SinkError_Retry,
    SinkError_Terminal,
    SinkSpec,
)
from wit_world.imports import config
from wit_world.imports.config import ConfigType


def retry(message, retry_after_ms=None):
    return Err(SinkError_Retry(RetryError(message=message, retry_after_ms=retry_after_ms)))


def config_string(key):
    v = config.get(key)
    return v.value if v is not None and isinstance(v.value, str) else None


class WitWorld(wit_world.WitWorld):
    def spec(self):
        return SinkSpec(
            name="python_http_sink",
            batch_size=None,
            loader_file_format=None,
            naming_convention=None,
            max_nesting_level=None,
            skip_dlt_columns_and_tables=None,
            max_batch_bytes=None,
            item_format=ItemFormat.ROWS,
            config=[
                ConfigKey(name="url", value_type=ConfigType.STRING, secret=False, required=True, default=None),
                ConfigKey(name="api_key", value_type=ConfigType.STRING, secret=True, required=True, default=None),
            ],
        )

    def load(self, table, context, items):
        if not isinstance(items, Items_Rows):
            raise Err(SinkError_Terminal("python_http_sink asks for rows"))
        url = config_string("url")
        if not url:
            raise Err(SinkError_Terminal("python_http_sink: `url` is not set"))
        endpoint = "%s/%s" % (url.rstrip("/"), quote(table.name, safe="-_.~"))
        rows = [{c.name: encode(v) for c, v in zip(table.columns, row)} for row in items.value]
        body = json.dumps({"table": table.name, "rows": rows}).encode()
        headers = [("content-type", "application/json"), ("idempotency-key", context.idempotency_key)]
        # With `auth_header` configured the host adds the header itself and
        # does not hand us the key.
        key = config_string("api_key")
        if key:
            headers.append(("authorization", "Bearer " + key))
        try:
            status, got_headers, text = post(endpoint, headers, body)
        except OSError as e:
            raise retry(str(e))
        if 200 <= status < 300:
            return
        if status in (408, 429) or status >= 500:
            after = got_headers.get("retry-after", "").strip()
            raise retry("POST %s: HTTP %d" % (endpoint, status), int(after) * 1000 if after.isdigit() else None)
        raise Err(SinkError_Terminal("POST %s: HTTP %d: %s" % (endpoint, status, text.decode(errors="replace")[:500])))
