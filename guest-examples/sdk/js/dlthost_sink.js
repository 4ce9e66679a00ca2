// dlthost_sink: helpers for dlthost sinks written in JavaScript
// (componentize-js), contract dlthost:destination@0.1.0.
//
// componentize-js hands a sink the contract's own shapes: a spec with all
// nine fields, config values as `{ tag: "string", val: "x" }`, rows as
// lists of `{ tag, val }`, errors thrown as `{ tag: "retry", val: {...} }`.
// This module wraps them in plain JavaScript:
//
//   import * as sink from "./sdk/dlthost_sink.js";
//   export function spec() {
//     return sink.spec({ name: "orders_api", batchSize: 100,
//       config: [sink.setting("base_url", "https://api.example.com"), sink.secret("api_key")] });
//   }
//   export function load(table, context, items) {
//     const key = sink.require("api_key");
//     for (const row of sink.rows(table, items)) { ... }
//     // on failure: throw sink.retry("503 from the API", 2000) or throw sink.terminal("refused")
//   }
//
// Values by column type: text, decimal, timestamp (RFC 3339 UTC, six
// fraction digits), date (YYYY-MM-DD) and time (HH:MM:SS.ffffff) as
// strings, so nothing is rounded to a Date's milliseconds; double as
// number; bigint as BigInt; bool; binary as Uint8Array; json parsed; null.
// `stringify` writes such rows as JSON (BigInt as a number, bytes base64).
//
// Module state lives per instance: one per worker, and a new one after a
// trap or every `--store-max-batches` calls. StarlingMonkey, the engine
// componentize-js embeds, has no filesystem API: a JavaScript sink takes
// typed rows (batch size above 0), never whole job files.

import { get as configGet } from "dlthost:destination/config@0.1.0";

export const CONTRACT = "dlthost:destination@0.1.0";

const CONFIG_TYPES = ["string", "integer", "float", "boolean"];

// --- the spec ----------------------------------------------------------------

export function spec(options) {
  const o = options ?? {};
  if (typeof o.name !== "string") throw new TypeError("spec({ name }) needs the sink's name");
  if (o.fileFormat !== undefined && o.fileFormat !== "jsonl" && o.fileFormat !== "parquet") {
    throw new TypeError(`fileFormat is "jsonl" or "parquet", not ${JSON.stringify(o.fileFormat)}`);
  }
  const config = o.config ?? [];
  for (const key of config) {
    if (typeof key?.name !== "string" || !CONFIG_TYPES.includes(key?.valueType)) {
      throw new TypeError("config takes sink.setting(...) and sink.secret(...)");
    }
  }
  return {
    name: o.name,
    batchSize: o.batchSize,
    loaderFileFormat: o.fileFormat,
    namingConvention: o.namingConvention,
    maxNestingLevel: o.maxNestingLevel,
    skipDltColumnsAndTables: o.skipDltColumnsAndTables,
    maxBatchBytes: o.maxBatchBytes === undefined ? undefined : BigInt(o.maxBatchBytes),
    itemFormat: o.arrowIpc ? "arrow-ipc" : "rows",
    config,
  };
}

function configValue(name, v, type) {
  const t = type ?? (typeof v === "string" ? "string" : typeof v === "boolean" ? "boolean" : typeof v === "bigint" ? "integer" : Number.isInteger(v) ? "integer" : "float");
  if (!CONFIG_TYPES.includes(t)) throw new TypeError(`setting ${name}: type is one of ${CONFIG_TYPES.join(", ")}`);
  const ok = { string: typeof v === "string", boolean: typeof v === "boolean", integer: typeof v === "bigint" || Number.isInteger(v), float: typeof v === "number" }[t];
  if (!ok) throw new TypeError(`setting ${name}: the default ${String(v)} is not ${t === "integer" ? "an" : "a"} ${t}`);
  return { type: t, value: { tag: t, val: t === "integer" ? BigInt(v) : v } };
}

// A setting under [destination.<sink>]. Its type is the default's (string,
// boolean, integer for integral numbers and BigInt, float otherwise), or
// `{ type }` when there is no default (or to make 1 a float).
export function setting(name, defaultValue, options) {
  const o = options ?? {};
  if (defaultValue === undefined || defaultValue === null) {
    if (!CONFIG_TYPES.includes(o.type)) throw new TypeError(`setting ${name}: give a default or { type }`);
    return { name, valueType: o.type, secret: false, required: !!o.required, default: undefined };
  }
  const { type, value } = configValue(name, defaultValue, o.type);
  return { name, valueType: type, secret: false, required: !!o.required, default: value };
}

// A secret: from .dlt/secrets.toml, the environment or --set, never printed
// or stored by the host. Required unless `{ required: false }`.
export function secret(name, options) {
  const o = options ?? {};
  const type = o.type ?? "string";
  if (!CONFIG_TYPES.includes(type)) throw new TypeError(`secret ${name}: type is one of ${CONFIG_TYPES.join(", ")}`);
  return { name, valueType: type, secret: true, required: o.required ?? true, default: undefined };
}

// --- config ------------------------------------------------------------------

// The value of a declared key (string, BigInt, number or boolean), or
// undefined when unset.
export function get(key) {
  return configGet(key)?.val;
}

export function getString(key) {
  const v = configGet(key);
  return v?.tag === "string" ? v.val : undefined;
}

export function getInteger(key) {
  const v = configGet(key);
  return v?.tag === "integer" ? v.val : undefined;
}

export function getFloat(key) {
  const v = configGet(key);
  if (v?.tag === "float") return v.val;
  return v?.tag === "integer" ? Number(v.val) : undefined;
}

export function getBoolean(key) {
  const v = configGet(key);
  return v?.tag === "boolean" ? v.val : undefined;
}

// A key that must be set (and, for text, not empty), or a terminal error
// naming where to set it.
export function require(key) {
  const v = get(key);
  if (v === undefined || v === "") {
    throw terminal(`\`${key}\` is not set: add it under this sink's section in .dlt/config.toml (or .dlt/secrets.toml for a secret)`);
  }
  return v;
}

// --- errors ------------------------------------------------------------------

// Throw it from load for a transient failure: the host sends the batch
// again. `afterMs` (a 429's Retry-After) replaces the host's backoff.
export function retry(message, afterMs) {
  return { tag: "retry", val: { message: String(message), retryAfterMs: afterMs === undefined ? undefined : BigInt(afterMs) } };
}

// Throw it from load when the batch can never be delivered: its job fails,
// the other jobs go on.
export function terminal(message) {
  return { tag: "terminal", val: String(message) };
}

// --- rows --------------------------------------------------------------------

function pad(n, width) {
  return String(n).padStart(width, "0");
}

function timestamp(us) {
  let secs = us / 1000000n;
  let micros = us % 1000000n;
  if (micros < 0n) {
    micros += 1000000n;
    secs -= 1n;
  }
  const d = new Date(Number(secs) * 1000);
  const year = d.getUTCFullYear();
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z, or ±YYYYYY-... outside 0..9999
  const body = year >= 0 && year <= 9999 ? iso.slice(0, 19) : iso.slice(0, iso.indexOf("."));
  return `${body}.${pad(micros, 6)}Z`;
}

function date(days) {
  const iso = new Date(days * 86400000).toISOString();
  return iso.slice(0, iso.indexOf("T"));
}

function time(us) {
  const secs = us / 1000000n;
  return `${pad(secs / 3600n, 2)}:${pad((secs / 60n) % 60n, 2)}:${pad(secs % 60n, 2)}.${pad(us % 1000000n, 6)}`;
}

// One contract value ({ tag, val }) as a plain JavaScript value.
export function value(v) {
  switch (v.tag) {
    case "null":
      return null;
    case "bigint":
    case "bool":
    case "double":
    case "text":
    case "decimal":
      return v.val;
    case "timestamp":
      return timestamp(v.val);
    case "date":
      return date(v.val);
    case "time":
      return time(v.val);
    case "binary":
      return new Uint8Array(v.val);
    case "json":
      return JSON.parse(v.val);
    default:
      throw terminal(`unknown value type ${v.tag}`);
  }
}

// The rows of a batch as objects { column: value }, in order.
export function rows(table, items) {
  if (items.tag === "rows") {
    const names = table.columns.map((c) => c.name);
    return items.val.map((row) => {
      const out = {};
      names.forEach((n, i) => {
        out[n] = value(row[i]);
      });
      return out;
    });
  }
  if (items.tag === "file") {
    throw terminal("a JavaScript sink takes typed rows, not whole job files: use a batch size above 0");
  }
  throw terminal(`this sink reads typed rows; it was given ${items.tag}`);
}

function base64(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

// JSON text of rows from `rows`: BigInt as a JSON number (exact), bytes
// as base64, everything else as JSON.stringify writes it.
export function stringify(v) {
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Uint8Array) return JSON.stringify(base64(v));
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? "null" : stringify(x))).join(",")}]`;
  if (v !== null && typeof v === "object" && typeof v.toJSON !== "function") {
    const parts = Object.entries(v)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => `${JSON.stringify(k)}:${stringify(x)}`);
    return `{${parts.join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}
