//! Reading a whole job file handed over with batch size 0, row by row.

use std::io::{BufRead, BufReader, Read};

use serde_json::{Map, Value as Json};

use crate::{Compression, FileFormat, JobFile, TableSchema};

/// The rows of a job file, streamed: each item is one row as a JSON object
/// with every column of `table` (absent keys become `null`), in file order,
/// or the reason the file could not be read at that point.
///
/// `jsonl` files (plain or gzip) are read a line at a time, so memory stays
/// at one row whatever the file's size. Parquet files need the SDK's
/// `parquet` feature; the file is read into memory first (under
/// wasm32-wasip2 the parquet crate's `File` reader fails: it clones file
/// handles, which WASI cannot) and decoded 4,096 rows at a time.
pub fn job_file_rows<'a>(
    file: &JobFile,
    table: &'a TableSchema,
) -> Result<Box<dyn Iterator<Item = Result<Json, String>> + 'a>, String> {
    if file.format == FileFormat::Parquet {
        #[cfg(feature = "parquet")]
        return crate::columnar::parquet_rows(file, table);
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
    let path = file.path.clone();
    let lines = BufReader::new(reader).lines().enumerate();
    Ok(Box::new(lines.filter_map(move |(n, line)| match line {
        Err(e) => Some(Err(format!("{path}: {e}"))),
        Ok(line) if line.is_empty() => None,
        Ok(line) => Some(jsonl_row(&line, table).map_err(|e| format!("{path} line {}: {e}", n + 1))),
    })))
}

/// Reads every row of a job file into memory (see [`job_file_rows`], which
/// streams them).
pub fn read_job_file(file: &JobFile, table: &TableSchema) -> Result<Vec<Json>, String> {
    job_file_rows(file, table)?.collect()
}

/// One `jsonl` line as a row with exactly `table`'s columns.
fn jsonl_row(line: &str, table: &TableSchema) -> Result<Json, serde_json::Error> {
    let parsed: Map<String, Json> = serde_json::from_str(line)?;
    let mut row = Map::with_capacity(table.columns.len());
    for c in &table.columns {
        row.insert(c.name.clone(), parsed.get(&c.name).cloned().unwrap_or(Json::Null));
    }
    Ok(Json::Object(row))
}
