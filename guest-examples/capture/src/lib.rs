//! `capture`: writes every call it receives to a JSON file, for debugging a
//! pipeline and for our end-to-end tests.
//!
//! Grant it a directory: `host run --dir ./captured::/out ...`. Each call
//! becomes `/out/<table>.<job_id>.<start_row>.<n>.json` (table name made
//! file-name safe, `<n>` the first number not yet taken, so a replayed batch
//! never overwrites an earlier file). The file is written under a temporary
//! name and then linked into place with create-new semantics, so a killed
//! host never leaves half a file. The format is described by
//! `capture.schema.json` next to this file; `example.json` is one such file.

use dlthost_sink::{BatchContext, Guest, ItemFormat, Items, SinkError, SinkSpec, TableSchema};
use serde_json::Value as Json;

struct Capture;

impl Guest for Capture {
    fn spec() -> SinkSpec {
        let mut spec = dlthost_sink::default_spec("capture");
        // `--env CAPTURE_ITEMS=arrow-ipc` asks for Arrow IPC batches (with
        // parquet job files), to check that path end to end.
        if std::env::var("CAPTURE_ITEMS").is_ok_and(|v| v == "arrow-ipc") {
            spec.item_format = ItemFormat::ArrowIpc;
        }
        spec
    }

    fn load(table: TableSchema, ctx: BatchContext, items: Items) -> Result<(), SinkError> {
        // `--env CAPTURE_DOUBLES=bits` writes each double as the hex digits
        // of its bits, for tests that compare doubles exactly.
        let bits = std::env::var("CAPTURE_DOUBLES").is_ok_and(|v| v == "bits");
        if let Items::ArrowIpc(bytes) = &items {
            let mut rows = dlthost_sink::ipc_rows(bytes, &table).map_err(SinkError::Terminal)?;
            if bits {
                dlthost_sink::capture::doubles_as_bits(&table, &mut rows);
            }
            return dlthost_sink::capture::write_rows(&table, &ctx, rows, Json::Null);
        }
        let mut doc = dlthost_sink::capture::document(&table, &ctx, &items, dlthost_sink::read_job_file)?;
        if bits && let Some(Json::Array(rows)) = doc.get_mut("rows") {
            dlthost_sink::capture::doubles_as_bits(&table, rows);
        }
        dlthost_sink::capture::write_document(&table, &ctx, &doc)
    }
}

dlthost_sink::export_sink!(Capture);
