//! Reading a whole job file handed over with batch size 0.

use std::io::{BufRead, BufReader, Read};

use serde_json::{Map, Value as Json};

use crate::{Compression, FileFormat, JobFile, TableSchema};

/// Reads every row of a `jsonl` job file as a JSON object with every column of
/// `table` (absent keys become `null`), in file order.
///
/// Parquet job files are not readable by this SDK yet: they return an error.
pub fn read_job_file(file: &JobFile, table: &TableSchema) -> Result<Vec<Json>, String> {
    if file.format != FileFormat::Jsonl {
        return Err(format!("{}: only jsonl job files can be read by this sink", file.path));
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
