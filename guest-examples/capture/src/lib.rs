//! `capture`: writes every call it receives to a JSON file, for debugging a
//! pipeline and for our end-to-end tests.
//!
//! Grant it a directory: `host run --dir ./captured::/out ...`. Each call
//! becomes `/out/<table>.<job_id>.<start_row>.<n>.json` (table name made
//! file-name safe, `<n>` the first number not yet taken, so a replayed batch
//! never overwrites an earlier file). The file is written under a temporary
//! name and then linked into place with create-new semantics, so a killed
//! host never leaves half a file. The format is described by
//! `capture.schema.json` next to this file.

use std::io::{ErrorKind, Write};

use dlthost_sink::{
    BatchContext, Guest, Items, SinkError, SinkSpec, TableSchema, context_to_json, file_format_name, read_job_file,
    row_to_json, safe_file_name, table_to_json,
};
use serde_json::{Value as Json, json};

/// Where the granted directory must be mounted in the guest.
const OUT_DIR: &str = "/out";

struct Capture;

impl Guest for Capture {
    fn spec() -> SinkSpec {
        dlthost_sink::default_spec("capture")
    }

    fn load(table: TableSchema, ctx: BatchContext, items: Items) -> Result<(), SinkError> {
        let (rows, file) = match &items {
            Items::Rows(rows) => (rows.iter().map(|r| row_to_json(&table, r)).collect(), Json::Null),
            Items::File(f) => {
                let rows = read_job_file(f, &table).map_err(SinkError::Terminal)?;
                let file = json!({
                    "path": f.path,
                    "format": file_format_name(f.format),
                    "row_count": f.row_count,
                });
                (rows, file)
            }
            Items::ArrowIpc(_) => {
                return Err(SinkError::Terminal("capture asks for rows, got arrow-ipc".into()));
            }
        };
        let doc = json!({
            "table": table_to_json(&table),
            "context": context_to_json(&ctx),
            "rows": Json::Array(rows),
            "file": file,
        });
        let stem = format!("{}.{}.{}", safe_file_name(&table.name), ctx.job_id, ctx.start_row);
        write_new_file(&stem, doc.to_string().as_bytes()).map_err(|e| {
            dlthost_sink::retry(format!(
                "capture: cannot write {OUT_DIR}/{stem}.*.json: {e} (grant a directory with --dir HOST_PATH::{OUT_DIR})"
            ))
        })
    }
}

/// Writes `bytes` durably to `<stem>.<n>.json` with the smallest free `n`.
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

dlthost_sink::export_sink!(Capture);
