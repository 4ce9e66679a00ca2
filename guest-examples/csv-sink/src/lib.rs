//! `csv_sink`: the seed's "simple local file" destination. Each table goes
//! to `/out/<table>.csv` in the directory granted with `--dir HOST::/out`.
//!
//! - The header is the table's columns when the file is created. When a later
//!   load adds columns, rows go to a new file `<table>.<n>.csv` whose header
//!   has them all, so every file stays rectangular.
//! - Rows are appended and the file is fsynced before `load` returns (the
//!   contract: ok means durable).
//! - The batch's idempotency key is then appended to `/out/.<table>.keys`;
//!   a batch whose key is already there is skipped, so a replay after a
//!   crash does not write rows twice.
//!
//! Values use the capture encoding (timestamps RFC 3339, json as JSON text);
//! null is an empty field.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};

use dlthost_sink::{
    BatchContext, Guest, Items, SinkError, SinkSpec, TableSchema, read_job_file, row_to_json, safe_file_name,
};
use serde_json::Value as Json;

const OUT_DIR: &str = "/out";

struct CsvSink;

fn io_err(what: &str, e: std::io::Error) -> SinkError {
    dlthost_sink::retry(format!("csv_sink: {what}: {e} (grant a directory with --dir HOST_PATH::{OUT_DIR})"))
}

/// Quotes a field when it contains a separator, quote or line break.
fn field(v: &Json) -> String {
    let text = match v {
        Json::Null => return String::new(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
}

/// The file for these columns: the first `<table>[.<n>].csv` that is new or
/// has exactly this header.
fn target_file(table: &str, header: &str) -> Result<String, SinkError> {
    let base = safe_file_name(table);
    for n in 0.. {
        let path = if n == 0 { format!("{OUT_DIR}/{base}.csv") } else { format!("{OUT_DIR}/{base}.{n}.csv") };
        match File::open(&path) {
            Err(_) => return Ok(path),
            Ok(f) => {
                let mut first = String::new();
                BufReader::new(f).read_line(&mut first).map_err(|e| io_err(&path, e))?;
                if first.trim_end_matches(['\r', '\n']) == header {
                    return Ok(path);
                }
            }
        }
    }
    unreachable!("the loop above returns")
}

fn seen_key(keys_path: &str, key: &str) -> bool {
    File::open(keys_path).is_ok_and(|f| BufReader::new(f).lines().map_while(Result::ok).any(|l| l == key))
}

impl Guest for CsvSink {
    fn spec() -> SinkSpec {
        let mut spec = dlthost_sink::default_spec("csv_sink");
        spec.batch_size = Some(1000);
        spec
    }

    fn load(table: TableSchema, ctx: BatchContext, items: Items) -> Result<(), SinkError> {
        let keys_path = format!("{OUT_DIR}/.{}.keys", safe_file_name(&table.name));
        if seen_key(&keys_path, &ctx.idempotency_key) {
            return Ok(());
        }
        let rows: Vec<Json> = match &items {
            Items::Rows(rows) => rows.iter().map(|r| row_to_json(&table, r)).collect(),
            Items::File(f) => read_job_file(f, &table).map_err(SinkError::Terminal)?,
            Items::ArrowIpc(_) => return Err(SinkError::Terminal("csv_sink asks for rows".into())),
        };
        let header: String =
            table.columns.iter().map(|c| field(&Json::String(c.name.clone()))).collect::<Vec<_>>().join(",");
        let path = target_file(&table.name, &header)?;
        let is_new = File::open(&path).is_err();
        let mut out = String::new();
        if is_new {
            out.push_str(&header);
            out.push('\n');
        }
        for row in &rows {
            let fields: Vec<String> = table.columns.iter().map(|c| field(&row[&c.name])).collect();
            out.push_str(&fields.join(","));
            out.push('\n');
        }
        let mut f = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| io_err(&path, e))?;
        f.write_all(out.as_bytes()).map_err(|e| io_err(&path, e))?;
        f.sync_all().map_err(|e| io_err(&path, e))?;
        let mut k = OpenOptions::new().create(true).append(true).open(&keys_path).map_err(|e| io_err(&keys_path, e))?;
        writeln!(k, "{}", ctx.idempotency_key).map_err(|e| io_err(&keys_path, e))?;
        k.sync_all().map_err(|e| io_err(&keys_path, e))
    }
}

dlthost_sink::export_sink!(CsvSink);
