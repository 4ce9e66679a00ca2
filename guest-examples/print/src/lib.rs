//! `print`: the first example of dlt's custom destination docs, as a sink.
//!
//! It prints the table name and each row (as JSON, every column of the
//! table) to stdout, which the host forwards to its stderr with the prefix
//! `[print]`. Batch size 0 prints the rows of the whole job file.

use std::io::Write;

use dlthost_sink::{BatchContext, Guest, Items, SinkError, SinkSpec, TableSchema, read_job_file, row_to_json};

struct Print;

impl Guest for Print {
    fn spec() -> SinkSpec {
        dlthost_sink::default_spec("print")
    }

    fn load(table: TableSchema, _ctx: BatchContext, items: Items) -> Result<(), SinkError> {
        let rows = match items {
            Items::Rows(rows) => rows.iter().map(|r| row_to_json(&table, r)).collect(),
            Items::File(file) => read_job_file(&file, &table).map_err(SinkError::Terminal)?,
            Items::ArrowIpc(_) => {
                return Err(SinkError::Terminal("print asks for rows, got arrow-ipc".into()));
            }
        };
        // One buffer, one write: cheaper than a write per line.
        let mut out = format!("table {}\n", table.name);
        for row in rows {
            out.push_str(&row.to_string());
            out.push('\n');
        }
        std::io::stdout().write_all(out.as_bytes()).map_err(|e| dlthost_sink::retry(format!("stdout: {e}")))
    }
}

dlthost_sink::export_sink!(Print);
