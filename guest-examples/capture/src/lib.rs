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

use dlthost_sink::{BatchContext, Guest, Items, SinkError, SinkSpec, TableSchema};

struct Capture;

impl Guest for Capture {
    fn spec() -> SinkSpec {
        dlthost_sink::default_spec("capture")
    }

    fn load(table: TableSchema, ctx: BatchContext, items: Items) -> Result<(), SinkError> {
        dlthost_sink::capture::write_call(&table, &ctx, &items)
    }
}

dlthost_sink::export_sink!(Capture);
