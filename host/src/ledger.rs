//! The resume ledger: how many rows of each job the sink has confirmed.
//!
//! One append-only file per package (`ledger.log`), so a package moved to
//! another machine resumes there. After every successful `load` call the
//! worker appends the job's new delivered-row count and fsyncs before it
//! sends the job's next batch. A record is one line:
//!
//! ```text
//! <crc32 hex of the JSON> <JSON record>\n
//! ```
//!
//! Why a log and not an embedded store: appends are the only write, an fsync
//! per batch is all durability needs, a torn write can only hit the last
//! record (dropped on open, then that batch is replayed under the same
//! idempotency key), and the file is readable with `cat`. Damage anywhere
//! else is reported, never skipped, so rows are never silently lost.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// File name inside a package.
pub const LEDGER_FILE: &str = "ledger.log";

/// The ledger cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// An I/O error.
    #[error("ledger {path}: {source}")]
    Io {
        /// The ledger file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A record other than the last one is damaged.
    #[error(
        "ledger {path} is damaged at line {line}: {message}; refusing to guess which rows were delivered (restore the file or drop the package with `host drop-pending`)"
    )]
    Damaged {
        /// The ledger file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// One ledger record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// Rows `0..rows` of `job` are delivered.
    Delivered {
        /// Job id.
        job: String,
        /// Rows delivered so far (not the batch size).
        rows: u64,
    },
    /// A call failed (the batch will be retried, or the job failed).
    Failed {
        /// Job id.
        job: String,
        /// First row of the batch.
        start_row: u64,
        /// The error.
        error: String,
    },
    /// A run started loading this package: failed attempts after it are
    /// the last run's. (Ledgers of earlier releases have none: all their
    /// attempts count as the last run's.)
    Run,
}

/// Per-job progress read from the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobProgress {
    /// Rows delivered.
    pub delivered: u64,
    /// Failed calls recorded since the last run started.
    pub failed_attempts: u64,
    /// Failed calls recorded over all runs.
    pub failed_attempts_total: u64,
    /// The last error, if any.
    pub last_error: Option<String>,
}

/// An open ledger, shared by the workers of a package.
pub struct Ledger {
    path: PathBuf,
    /// The append handle and the bytes appended so far.
    file: Mutex<(File, u64)>,
    /// A second handle for fsync, and the bytes known to be durable. Workers
    /// share fsyncs (group commit): an append returns once some fsync that
    /// started after its write has finished.
    synced: Mutex<(File, u64)>,
    progress: Mutex<HashMap<String, JobProgress>>,
}

impl Ledger {
    /// Opens (or creates) the ledger of the package in `dir`, dropping a torn
    /// last record.
    pub fn open(dir: &Path) -> Result<Self, LedgerError> {
        let path = dir.join(LEDGER_FILE);
        let io = |source| LedgerError::Io { path: path.clone(), source };
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(&path).map_err(io)?;
        let mut text = Vec::new();
        file.read_to_end(&mut text).map_err(io)?;
        let (records, good_len) = parse(&path, &text)?;
        if good_len < text.len() {
            tracing::warn!(ledger = %path.display(), "dropping a torn last ledger record; its batch will be sent again");
            file.set_len(good_len as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        let mut progress: HashMap<String, JobProgress> = HashMap::new();
        for r in records {
            apply(&mut progress, r);
        }
        let len = file.metadata().map_err(io)?.len();
        let sync_handle = file.try_clone().map_err(io)?;
        Ok(Ledger {
            path,
            file: Mutex::new((file, len)),
            synced: Mutex::new((sync_handle, len)),
            progress: Mutex::new(progress),
        })
    }

    /// Reads a ledger without changing it (for `host status`).
    pub fn read(dir: &Path) -> Result<HashMap<String, JobProgress>, LedgerError> {
        let path = dir.join(LEDGER_FILE);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(LedgerError::Io { path, source }),
        };
        let (records, _) = parse(&path, &text)?;
        let mut progress = HashMap::new();
        for r in records {
            apply(&mut progress, r);
        }
        Ok(progress)
    }

    /// Rows of `job` already delivered.
    pub fn delivered(&self, job: &str) -> u64 {
        self.progress.lock().map(|p| p.get(job).map_or(0, |j| j.delivered)).unwrap_or(0)
    }

    /// Appends a record and makes it durable before returning.
    pub fn append(&self, record: Record) -> Result<(), LedgerError> {
        let json = serde_json::to_string(&record)
            .map_err(|e| LedgerError::Io { path: self.path.clone(), source: e.into() })?;
        let line = format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes()));
        let poisoned =
            || LedgerError::Io { path: self.path.clone(), source: std::io::Error::other("ledger lock poisoned") };
        let io = |source| LedgerError::Io { path: self.path.clone(), source };
        let end = {
            let mut f = self.file.lock().map_err(|_| poisoned())?;
            f.0.write_all(line.as_bytes()).map_err(io)?;
            f.1 += line.len() as u64;
            f.1
        };
        {
            let mut synced = self.synced.lock().map_err(|_| poisoned())?;
            if synced.1 < end {
                // Everything written before this point becomes durable with
                // one fsync, including other workers' records.
                let upto = self.file.lock().map_err(|_| poisoned())?.1;
                synced.0.sync_data().map_err(io)?;
                synced.1 = upto;
            }
        }
        if let Ok(mut p) = self.progress.lock() {
            apply(&mut p, record);
        }
        Ok(())
    }
}

fn apply(progress: &mut HashMap<String, JobProgress>, r: Record) {
    match r {
        Record::Delivered { job, rows } => {
            let p = progress.entry(job).or_default();
            p.delivered = p.delivered.max(rows);
        }
        Record::Failed { job, error, .. } => {
            let p = progress.entry(job).or_default();
            p.failed_attempts += 1;
            p.failed_attempts_total += 1;
            p.last_error = Some(error);
        }
        Record::Run => {
            for p in progress.values_mut() {
                p.failed_attempts = 0;
            }
        }
    }
}

/// Parses records; returns them and the byte length of the good prefix.
/// Only the last line may be bad (torn); anything else is an error.
fn parse(path: &Path, text: &[u8]) -> Result<(Vec<Record>, usize), LedgerError> {
    let mut records = Vec::new();
    let mut offset = 0usize;
    let mut line_no = 0usize;
    while offset < text.len() {
        line_no += 1;
        let end = text[offset..].iter().position(|b| *b == b'\n').map(|i| offset + i);
        let is_last = end.is_none_or(|e| e + 1 == text.len());
        let line = &text[offset..end.unwrap_or(text.len())];
        match parse_line(line) {
            Ok(r) if end.is_some() => records.push(r),
            // The last record is torn if it is bad or lacks its newline.
            _ if is_last => return Ok((records, offset)),
            Err(message) => return Err(LedgerError::Damaged { path: path.to_path_buf(), line: line_no, message }),
            Ok(_) => return Ok((records, offset)),
        }
        offset = end.map_or(text.len(), |e| e + 1);
    }
    Ok((records, offset))
}

fn parse_line(line: &[u8]) -> Result<Record, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
    let (crc, json) = text.split_once(' ').ok_or("no checksum")?;
    let want = u32::from_str_radix(crc, 16).map_err(|_| "bad checksum field".to_string())?;
    if crc32fast::hash(json.as_bytes()) != want {
        return Err("checksum mismatch".into());
    }
    serde_json::from_str(json).map_err(|e| format!("bad record: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered(job: &str, rows: u64) -> Record {
        Record::Delivered { job: job.into(), rows }
    }

    #[test]
    fn counts_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = Ledger::open(dir.path()).expect("open");
        l.append(delivered("a", 10)).expect("append");
        l.append(delivered("a", 20)).expect("append");
        l.append(Record::Failed { job: "b".into(), start_row: 0, error: "503".into() }).expect("append");
        drop(l);
        let l = Ledger::open(dir.path()).expect("reopen");
        assert_eq!(l.delivered("a"), 20);
        assert_eq!(l.delivered("b"), 0);
        let status = Ledger::read(dir.path()).expect("read");
        assert_eq!(status["b"].last_error.as_deref(), Some("503"));
    }

    #[test]
    fn torn_last_record_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = Ledger::open(dir.path()).expect("open");
        l.append(delivered("a", 10)).expect("append");
        l.append(delivered("a", 20)).expect("append");
        drop(l);
        let path = dir.path().join(LEDGER_FILE);
        let text = std::fs::read(&path).expect("read");
        std::fs::write(&path, &text[..text.len() - 5]).expect("tear");
        let l = Ledger::open(dir.path()).expect("reopen");
        assert_eq!(l.delivered("a"), 10, "the torn batch is replayed");
        l.append(delivered("a", 20)).expect("append after truncation");
        drop(l);
        assert_eq!(Ledger::open(dir.path()).expect("reopen").delivered("a"), 20);
    }

    #[test]
    fn damage_before_the_end_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = Ledger::open(dir.path()).expect("open");
        for n in 1..=3 {
            l.append(delivered("a", n * 10)).expect("append");
        }
        drop(l);
        let path = dir.path().join(LEDGER_FILE);
        let text = String::from_utf8(std::fs::read(&path).expect("read")).expect("utf8");
        std::fs::write(&path, text.replacen("\"rows\":20", "\"rows\":90", 1)).expect("damage");
        let err = Ledger::open(dir.path()).err().expect("damaged").to_string();
        assert!(err.contains("line 2") && err.contains("checksum"), "{err}");
    }
}
