//! Reading a whole job file handed over with batch size 0.

use std::io::{BufRead, BufReader, Read};

use serde_json::{Map, Value as Json};

use crate::{Compression, FileFormat, JobFile, TableSchema};

/// Reads every row of a `jsonl` job file as a JSON object with every column of
/// `table` (absent keys become `null`), in file order.
///
/// Parquet job files need the arrow and parquet crates; the `capture`
/// example shows how (kept out of the SDK so other sinks stay small).
pub fn read_job_file(file: &JobFile, table: &TableSchema) -> Result<Vec<Json>, String> {
    if file.format == FileFormat::Parquet {
        return Err(format!(
            "{}: this sink reads jsonl job files only (see the capture example for reading parquet)",
            file.path
        ));
    }
    let f = std::fs::File::open(&file.path).map_err(|e| format!("{}: {e}", file.path))?;
    let reader: Box<dyn Read> = match file.compression {
        Compression::None => Box::new(f),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(f)),
    };
    let mut rows = Vec::new();
    for (n, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", file.path))?;
        if line.is_empty() {
            continue;
        }
        let parsed: Map<String, Json> =
            serde_json::from_str(&line).map_err(|e| format!("{} line {}: {e}", file.path, n + 1))?;
        let mut row = Map::with_capacity(table.columns.len());
        for c in &table.columns {
            row.insert(c.name.clone(), parsed.get(&c.name).cloned().unwrap_or(Json::Null));
        }
        rows.push(Json::Object(row));
    }
    Ok(rows)
}
