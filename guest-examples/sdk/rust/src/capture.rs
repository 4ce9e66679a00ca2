//! The capture format: one JSON file per `load` call in a granted directory.
//! Used by the `capture` example and by sinks that want the same output.

use std::io::{ErrorKind, Write};

use serde_json::{Value as Json, json};

use crate::{
    BatchContext, Items, SinkError, TableSchema, context_to_json, file_format_name, read_job_file, row_to_json,
    safe_file_name, table_to_json,
};

/// Where the granted directory must be mounted in the guest.
pub const OUT_DIR: &str = "/out";

/// Reads a whole job file into capture-encoded rows.
pub type FileReader = fn(&crate::JobFile, &TableSchema) -> Result<Vec<Json>, String>;

/// The capture document of one call; whole files are read with `read_file`.
pub fn document(
    table: &TableSchema,
    ctx: &BatchContext,
    items: &Items,
    read_file: FileReader,
) -> Result<Json, SinkError> {
    let (rows, file) = match items {
        Items::Rows(rows) => (rows.iter().map(|r| row_to_json(table, r)).collect(), Json::Null),
        Items::File(f) => {
            let rows = read_file(f, table).map_err(SinkError::Terminal)?;
            (rows, json!({"path": f.path, "format": file_format_name(f.format), "row_count": f.row_count}))
        }
        Items::ArrowIpc(_) => return Err(SinkError::Terminal("capture asks for rows, got arrow-ipc".into())),
    };
    Ok(json!({
        "table": table_to_json(table),
        "context": context_to_json(ctx),
        "rows": Json::Array(rows),
        "file": file,
    }))
}

/// Writes a call whose rows the sink decoded itself (e.g. from Arrow IPC).
pub fn write_rows(table: &TableSchema, ctx: &BatchContext, rows: Vec<Json>, file: Json) -> Result<(), SinkError> {
    let doc = json!({
        "table": crate::table_to_json(table),
        "context": crate::context_to_json(ctx),
        "rows": Json::Array(rows),
        "file": file,
    });
    write_doc(table, ctx, &doc)
}

/// Writes the call to `/out/<table>.<job_id>.<start_row>.<n>.json`
/// (whole files: jsonl only; see [`write_call_with`]).
pub fn write_call(table: &TableSchema, ctx: &BatchContext, items: &Items) -> Result<(), SinkError> {
    write_call_with(table, ctx, items, read_job_file)
}

/// Like [`write_call`], reading whole job files with `read_file`.
pub fn write_call_with(
    table: &TableSchema,
    ctx: &BatchContext,
    items: &Items,
    read_file: FileReader,
) -> Result<(), SinkError> {
    let doc = document(table, ctx, items, read_file)?;
    write_doc(table, ctx, &doc)
}

/// Replaces every double of `rows` (objects in the capture encoding) by the
/// hex digits of its bits (`f64::to_bits`), so a test compares doubles
/// exactly without parsing decimal text on the way out.
pub fn doubles_as_bits(table: &TableSchema, rows: &mut [Json]) {
    let doubles: Vec<&str> = table
        .columns
        .iter()
        .filter(|c| matches!(c.data_type, crate::DataType::Double))
        .map(|c| c.name.as_str())
        .collect();
    for row in rows {
        for name in &doubles {
            if let Some(cell) = row.get_mut(*name)
                && let Some(f) = cell.as_f64()
            {
                *cell = Json::String(format!("{:016x}", f.to_bits()));
            }
        }
    }
}

/// Writes a capture document (see [`document`]) to its file.
pub fn write_document(table: &TableSchema, ctx: &BatchContext, doc: &Json) -> Result<(), SinkError> {
    write_doc(table, ctx, doc)
}

fn write_doc(table: &TableSchema, ctx: &BatchContext, doc: &Json) -> Result<(), SinkError> {
    let stem = format!("{}.{}.{}", safe_file_name(&table.name), ctx.job_id, ctx.start_row);
    write_new_file(&stem, doc.to_string().as_bytes()).map_err(|e| {
        crate::retry(format!(
            "capture: cannot write {OUT_DIR}/{stem}.*.json: {e} (grant a directory with --dir HOST_PATH::{OUT_DIR})"
        ))
    })
}

/// Writes `bytes` durably to `<stem>.<n>.json` with the smallest free `n`:
/// to a temporary file first, then hard-linked into place, which fails if
/// the name is taken (create-new semantics) and never exposes half a file.
fn write_new_file(stem: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = format!("{OUT_DIR}/.{stem}.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    let mut n = 0u32;
    loop {
        let target = format!("{OUT_DIR}/{stem}.{n}.json");
        match std::fs::hard_link(&tmp, &target) {
            Ok(()) => break,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(e),
        }
    }
    std::fs::remove_file(&tmp)
}
