// js_sink: the capture sink in JavaScript, built with componentize-js.
//
// StarlingMonkey (the engine componentize-js embeds) has no filesystem API,
// so this sink prints each call's capture document as one line on stdout;
// the host forwards it to its stderr as `[js_sink] {...}`. Build:
//
//   componentize-js app.js --wit ../../wit --world-name destination -o js_sink.wasm

const DATA_TYPES = ["text", "double", "bool", "timestamp", "bigint", "binary", "json", "decimal", "date", "time"];

function pad(n, width) {
  return String(n).padStart(width, "0");
}

// Microseconds since the epoch (BigInt) -> RFC 3339 UTC with six fraction digits.
function timestamp(us) {
  let secs = us / 1000000n;
  let micros = us % 1000000n;
  if (micros < 0n) {
    micros += 1000000n;
    secs -= 1n;
  }
  const iso = new Date(Number(secs) * 1000).toISOString(); // ...:SS.000Z
  return iso.slice(0, 19) + "." + pad(micros, 6) + "Z";
}

function date(days) {
  return new Date(days * 86400000).toISOString().slice(0, 10);
}

function time(us) {
  const secs = us / 1000000n;
  const micros = us % 1000000n;
  return `${pad(secs / 3600n, 2)}:${pad((secs / 60n) % 60n, 2)}:${pad(secs % 60n, 2)}.${pad(micros, 6)}`;
}

function base64(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function encode(v) {
  switch (v.tag) {
    case "null":
      return null;
    case "bigint":
      return Number(v.val);
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
      return base64(v.val);
    case "json":
      return JSON.parse(v.val);
    default:
      throw { tag: "terminal", val: `js_sink: unknown value ${v.tag}` };
  }
}

function column(c) {
  const out = { name: c.name, data_type: c.dataType, nullable: c.nullable };
  for (const [key, set] of [["primary_key", c.primaryKey], ["unique", c.unique], ["row_key", c.rowKey], ["parent_key", c.parentKey], ["variant", c.variant]]) {
    if (set) out[key] = true;
  }
  if (c.precision != null) out.precision = c.precision;
  if (c.scale != null) out.scale = c.scale;
  if (c.timezone != null) out.timezone = c.timezone;
  return out;
}

export function spec() {
  return {
    name: "js_sink",
    // Typed rows only: StarlingMonkey has no filesystem API to read job files.
    batchSize: 10,
    loaderFileFormat: undefined,
    namingConvention: undefined,
    maxNestingLevel: undefined,
    skipDltColumnsAndTables: undefined,
    maxBatchBytes: undefined,
    itemFormat: "rows",
    config: [],
  };
}

export function load(table, context, items) {
  if (items.tag !== "rows") {
    throw { tag: "terminal", val: "js_sink takes rows (batch size above 0): it cannot read files" };
  }
  const rows = items.val.map((row) => {
    const out = {};
    table.columns.forEach((c, i) => {
      out[c.name] = encode(row[i]);
    });
    return out;
  });
  const doc = {
    table: {
      name: table.name,
      parent: table.parent ?? null,
      write_disposition: table.writeDisposition,
      columns: table.columns.map(column),
    },
    context: {
      load_id: context.loadId,
      job_id: context.jobId,
      batch_index: context.batchIndex,
      start_row: Number(context.startRow),
      row_count: Number(context.rowCount),
      idempotency_key: context.idempotencyKey,
      attempt: context.attempt,
    },
    rows,
    file: null,
  };
  console.log(JSON.stringify(doc));
}
