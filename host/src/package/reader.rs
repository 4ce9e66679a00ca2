//! Job files → batches of typed rows, streaming.
//!
//! A [`JobReader`] reads a job file line by line and hands out batches of at
//! most `batch_size` rows (cut short before a batch would pass
//! `max_batch_bytes`), never holding more than one batch in memory.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::{PackageError, io_err, jsonl};
use crate::schema::{Table, Value};

/// One batch read from a job file.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// 0-based index of the first row within the job.
    pub start_row: u64,
    /// Rows aligned with the table's columns.
    pub rows: Vec<Vec<Value>>,
}

/// Streams batches from one `jsonl` job file.
pub struct JobReader {
    path: PathBuf,
    reader: BufReader<Box<dyn std::io::Read + Send>>,
    next_row: u64,
    /// The current line (reused: no allocation per row).
    line: String,
    /// `line` was read past the end of the previous batch (byte cap) and
    /// is the next row.
    carry: bool,
    /// The table's escaped keys, as the writer wrote them.
    keys: jsonl::Keys,
}

impl JobReader {
    /// Opens `path` and skips its first `skip_rows` rows (already delivered).
    pub fn open(path: &Path, skip_rows: u64) -> Result<Self, PackageError> {
        let file = File::open(path).map_err(io_err("open", path))?;
        let raw: Box<dyn std::io::Read + Send> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        let mut reader = JobReader {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(1 << 16, raw),
            next_row: 0,
            line: String::new(),
            carry: false,
            keys: jsonl::Keys::default(),
        };
        while reader.next_row < skip_rows {
            if !reader.next_line()? {
                break;
            }
            reader.next_row += 1;
        }
        Ok(reader)
    }

    /// Reads the next non-empty line into `self.line` (without its line
    /// end); `false` at the end of the file.
    fn next_line(&mut self) -> Result<bool, PackageError> {
        if std::mem::take(&mut self.carry) {
            return Ok(true);
        }
        loop {
            self.line.clear();
            if self.reader.read_line(&mut self.line).map_err(io_err("read", &self.path))? == 0 {
                return Ok(false);
            }
            let end = self.line.trim_end_matches(['\n', '\r']).len();
            self.line.truncate(end);
            if !self.line.is_empty() {
                return Ok(true);
            }
        }
    }

    /// The next batch, or `None` at the end of the file. A batch holds at
    /// least one row even if that row alone passes `max_bytes`.
    pub fn next_batch(
        &mut self,
        table: &Table,
        batch_size: usize,
        max_bytes: Option<u64>,
    ) -> Result<Option<Batch>, PackageError> {
        let start_row = self.next_row;
        self.keys.update(table);
        let mut rows = Vec::with_capacity(batch_size.min(4096));
        let mut bytes = 0u64;
        while rows.len() < batch_size {
            if !self.next_line()? {
                break;
            }
            if let Some(cap) = max_bytes
                && !rows.is_empty()
                && bytes + self.line.len() as u64 > cap
            {
                self.carry = true;
                break;
            }
            bytes += self.line.len() as u64;
            let row = jsonl::read_written_row(&self.line, table, &self.keys).map_err(|e| PackageError::Damaged {
                path: self.path.clone(),
                message: format!("row {}: {e}", self.next_row + 1),
            })?;
            rows.push(row);
            self.next_row += 1;
        }
        Ok(if rows.is_empty() { None } else { Some(Batch { start_row, rows }) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Column, DataType};

    #[test]
    fn batches_resume_and_byte_caps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.jsonl");
        let lines: String = (0..12).map(|i| format!("{{\"i\":{i}}}\n")).collect();
        std::fs::write(&path, lines).expect("write");
        let mut table = Table::new("t");
        table.columns.push(Column::new("i", DataType::Bigint));

        let mut r = JobReader::open(&path, 0).expect("open");
        let sizes: Vec<usize> =
            std::iter::from_fn(|| r.next_batch(&table, 5, None).expect("batch")).map(|b| b.rows.len()).collect();
        assert_eq!(sizes, [5, 5, 2]);

        let mut r = JobReader::open(&path, 3).expect("open");
        let b = r.next_batch(&table, 5, None).expect("batch").expect("some");
        assert_eq!((b.start_row, b.rows[0][0].clone()), (3, Value::Bigint(3)));

        // Each line is 8 or 9 bytes: a 20-byte cap gives two rows per batch.
        let mut r = JobReader::open(&path, 0).expect("open");
        let b = r.next_batch(&table, 100, Some(20)).expect("batch").expect("some");
        assert_eq!(b.rows.len(), 2);
        let b = r.next_batch(&table, 100, Some(20)).expect("batch").expect("some");
        assert_eq!(b.start_row, 2);
    }
}
