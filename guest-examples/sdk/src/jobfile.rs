//! Reading a whole job file handed over with batch size 0.

use std::io::{BufRead, BufReader, Read};

use serde_json::{Map, Value as Json};

use crate::{Compression, FileFormat, JobFile, TableSchema};

/// Reads every row of a job file as a JSON object with every column of
/// `table` (absent keys become `null`), in file order.
///
/// Parquet job files need the SDK's `parquet` feature (the arrow and
/// parquet crates, which a sink that never gets whole parquet files can
/// leave out).
pub fn read_job_file(file: &JobFile, table: &TableSchema) -> Result<Vec<Json>, String> {
    if file.format == FileFormat::Parquet {
        #[cfg(feature = "parquet")]
        return crate::read_parquet(file, table);
        #[cfg(not(feature = "parquet"))]
        return Err(format!(
            "{}: a parquet job file, and this sink was built without the `parquet` feature of dlthost-sink",
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
