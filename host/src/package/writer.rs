//! Normalized rows → job files of a new package in `staging/`.
//!
//! [`PackageWriter::write`] appends rows to one job file per table;
//! [`PackageWriter::finish`] fsyncs everything, writes the schema and state
//! files and renames the package into `normalized/`. Dropping an unfinished
//! writer deletes the staging directory, so a failed normalize leaves nothing.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::{
    FileFormat, JobInfo, JobState, PackageError, PackageState, PipelineDir, io_err, sync_dir, write_json_atomic,
};
use crate::normalize::{NormalizeSettings, Row};
use crate::package::jsonl;
use crate::schema::Schema;

/// Writes one package.
pub struct PackageWriter {
    staging: PathBuf,
    normalized_dir: PathBuf,
    load_id: String,
    settings: NormalizeSettings,
    format: FileFormat,
    /// Open job files by table index.
    jobs: HashMap<usize, OpenJob>,
    /// Table indexes in the order their first job was opened.
    order: Vec<usize>,
    /// Jobs closed by rotation, waiting for `finish`.
    closed: Vec<(usize, OpenJob)>,
    /// Jobs opened so far per table (the rotation sequence).
    opened: HashMap<usize, u32>,
    rotation: Rotation,
    gzip: bool,
    line: Vec<u8>,
    finished: bool,
}

struct OpenJob {
    info: JobInfo,
    path: PathBuf,
    out: JobOut,
    bytes: u64,
}

/// A job file being written: plain, or gzip (`.jsonl.gz`).
enum JobOut {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
}

impl JobOut {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            JobOut::Plain(w) => w.write_all(bytes),
            JobOut::Gzip(w) => w.write_all(bytes),
        }
    }

    /// Flushes (writing the gzip trailer) and fsyncs.
    fn close(self) -> std::io::Result<()> {
        let file = match self {
            JobOut::Plain(w) => w.into_inner().map_err(|e| e.into_error())?,
            JobOut::Gzip(w) => w.finish()?.into_inner().map_err(|e| e.into_error())?,
        };
        file.sync_all()
    }
}

/// When to start a new job file for a table (dlt's `file_max_items` and
/// `file_max_bytes`), so a large table loads in parallel. Off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Rows per job file.
    pub max_items: Option<u64>,
    /// Bytes (of jsonl) per job file.
    pub max_bytes: Option<u64>,
}

impl PackageWriter {
    /// Starts a package in the pipeline's staging area.
    pub fn create(
        pipeline: &PipelineDir,
        load_id: &str,
        settings: &NormalizeSettings,
        format: FileFormat,
    ) -> Result<Self, PackageError> {
        let staging = pipeline.staging_dir().join(load_id);
        for state in [JobState::New, JobState::Started, JobState::Completed, JobState::Failed] {
            let p = staging.join(state.dir_name());
            fs::create_dir_all(&p).map_err(io_err("create", &p))?;
        }
        Ok(PackageWriter {
            staging,
            normalized_dir: pipeline.normalized_dir(),
            load_id: load_id.to_string(),
            settings: settings.clone(),
            format,
            jobs: HashMap::new(),
            order: Vec::new(),
            closed: Vec::new(),
            opened: HashMap::new(),
            rotation: Rotation::default(),
            gzip: false,
            line: Vec::with_capacity(1024),
            finished: false,
        })
    }

    /// Appends rows; `schema` must contain every table and column they use.
    /// Writes `jsonl` job files gzip-compressed (`.jsonl.gz`).
    pub fn with_gzip(mut self, gzip: bool) -> Self {
        self.gzip = gzip;
        self
    }

    /// Sets when job files rotate (default: never).
    pub fn with_rotation(mut self, rotation: Rotation) -> Self {
        self.rotation = rotation;
        self
    }

    /// Appends rows; `schema` must contain every table and column they use.
    pub fn write(&mut self, schema: &Schema, rows: &[Row]) -> Result<(), PackageError> {
        for row in rows {
            let table = &schema.tables[row.table];
            let full = self.jobs.get(&row.table).is_some_and(|j| {
                self.rotation.max_items.is_some_and(|m| j.info.rows >= m)
                    || self.rotation.max_bytes.is_some_and(|m| j.bytes >= m)
            });
            if full && let Some(job) = self.jobs.remove(&row.table) {
                self.closed.push((row.table, job));
            }
            if !self.jobs.contains_key(&row.table) {
                let seq = self.opened.get(&row.table).copied().unwrap_or(0) + 1;
                if seq == 1 {
                    self.order.push(row.table);
                }
                self.opened.insert(row.table, seq);
                let job = self.open_job(&table.name, seq)?;
                self.jobs.insert(row.table, job);
            }
            let Some(job) = self.jobs.get_mut(&row.table) else { continue };
            self.line.clear();
            jsonl::write_row(&mut self.line, table, &row.values).map_err(io_err("write", &job.path))?;
            job.out.write_all(&self.line).map_err(io_err("write", &job.path))?;
            job.bytes += self.line.len() as u64;
            job.info.rows += 1;
        }
        Ok(())
    }

    fn open_job(&self, table: &str, seq: u32) -> Result<OpenJob, PackageError> {
        let safe = safe_file_name(table);
        let file_id = file_id(&self.load_id, table, seq);
        let gzip = self.gzip && self.format == FileFormat::Jsonl;
        let ext = if gzip { "jsonl.gz" } else { self.format.extension() };
        let info = JobInfo {
            job_id: format!("{safe}.{file_id}.{ext}"),
            file_name: format!("{safe}.{file_id}.0.{ext}"),
            table: table.to_string(),
            rows: 0,
        };
        // Parquet needs the table's final schema: spool rows as jsonl and
        // convert when the package is finished.
        let name = match self.format {
            FileFormat::Jsonl => info.file_name.clone(),
            FileFormat::Parquet => format!("{}.spool", info.file_name),
        };
        let path = self.staging.join(JobState::New.dir_name()).join(name);
        let file = BufWriter::with_capacity(1 << 16, File::create_new(&path).map_err(io_err("create", &path))?);
        let out = if gzip {
            JobOut::Gzip(flate2::write::GzEncoder::new(file, flate2::Compression::fast()))
        } else {
            JobOut::Plain(file)
        };
        Ok(OpenJob { info, path, out, bytes: 0 })
    }

    /// Writes skipped malformed input lines to `bad_lines.jsonl` in the package.
    pub fn quarantine(&self, lines: &[crate::input::BadLine]) -> Result<(), PackageError> {
        let path = self.staging.join("bad_lines.jsonl");
        let mut out = Vec::new();
        for l in lines {
            serde_json::to_writer(&mut out, l).map_err(|e| PackageError::Io {
                action: "write",
                path: path.clone(),
                source: e.into(),
            })?;
            out.push(b'\n');
        }
        fs::write(&path, out).map_err(io_err("write", &path))
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.jobs.values().map(|j| j.info.rows).sum()
    }

    /// Makes the package durable and visible to loaders. Returns `None` (and
    /// leaves nothing behind) when no rows were written.
    pub fn finish(mut self, schema: &Schema, fingerprint: &str) -> Result<Option<PathBuf>, PackageError> {
        if self.order.is_empty() {
            return Ok(None);
        }
        let mut pending = std::mem::take(&mut self.closed);
        for idx in std::mem::take(&mut self.order) {
            if let Some(job) = self.jobs.remove(&idx) {
                pending.push((idx, job));
            }
        }
        let mut jobs = Vec::with_capacity(pending.len());
        for (idx, job) in pending {
            job.out.close().map_err(io_err("write", &job.path))?;
            if self.format == FileFormat::Parquet {
                let out = self.staging.join(JobState::New.dir_name()).join(&job.info.file_name);
                let table = &schema.tables[idx];
                super::parquet::jsonl_to_parquet(&job.path, &out, table, super::parquet::ROW_GROUP_ROWS)?;
                fs::remove_file(&job.path).map_err(io_err("remove", &job.path))?;
            }
            jobs.push(job.info);
        }
        let state = PackageState {
            load_id: self.load_id.clone(),
            created_at: chrono::Utc::now().to_rfc3339(),
            normalize: self.settings.clone(),
            file_format: self.format,
            fingerprint: fingerprint.to_string(),
            jobs,
        };
        write_json_atomic(&self.staging.join(super::SCHEMA_FILE), schema)?;
        write_json_atomic(&self.staging.join(super::STATE_FILE), &state)?;
        sync_dir(&self.staging.join(JobState::New.dir_name()))?;
        sync_dir(&self.staging)?;
        let target = self.normalized_dir.join(&self.load_id);
        fs::rename(&self.staging, &target).map_err(io_err("move package", &self.staging))?;
        sync_dir(&self.normalized_dir)?;
        self.finished = true;
        Ok(Some(target))
    }
}

impl Drop for PackageWriter {
    fn drop(&mut self) {
        if !self.finished {
            // Best effort: a leftover is also removed by the next run's
            // `clean_staging`, and staging is never loaded.
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

/// dlt-style 10 hex character file id, unique per load and table.
fn file_id(load_id: &str, table: &str, seq: u32) -> String {
    let digest = Sha256::digest(format!("{load_id}\u{0}{table}\u{0}{seq}").as_bytes());
    hex::encode(&digest[..5])
}

/// Makes a table name safe as a file name part, reversibly where it can:
/// ASCII letters, digits, `_` and `-` stay, any other byte becomes `%XX`.
/// Names longer than 120 bytes are cut and suffixed with a hash; the real
/// name is always recorded in the package's job list.
pub fn safe_file_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.len() > 120 {
        let digest = Sha256::digest(name.as_bytes());
        let mut cut = 100;
        while out.as_bytes()[cut - 1] == b'%' || out.as_bytes()[cut - 2] == b'%' {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('~');
        out.push_str(&hex::encode(&digest[..8]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::Normalizer;
    use crate::package::Package;

    #[test]
    fn safe_names_are_reversible_or_hashed() {
        assert_eq!(safe_file_name("events"), "events");
        assert_eq!(safe_file_name("a/b.c"), "a%2Fb%2Ec");
        let long = safe_file_name(&"ab".repeat(150));
        assert!(long.len() < 130 && long.contains('~'));
        assert_ne!(safe_file_name(&"ab".repeat(150)), safe_file_name(&"ab".repeat(151)));
    }

    #[test]
    fn package_appears_only_when_finished() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pipeline = PipelineDir::open(dir.path(), "p").expect("pipeline");
        let settings = NormalizeSettings {
            naming_convention: "direct".into(),
            max_nesting_level: 0,
            skip_dlt_columns_and_tables: true,
            schema_hints: Default::default(),
        };
        let mut n = Normalizer::new(&settings, Schema::default(), "1.1").expect("normalizer");
        let mut w = PackageWriter::create(&pipeline, "1.1", &settings, FileFormat::Jsonl).expect("writer");
        let mut rows = Vec::new();
        n.push("t", &crate::input::Node::from(&serde_json::json!({"a": 1})), &mut rows).expect("push");
        w.write(n.schema(), &rows).expect("write");
        assert!(pipeline.pending().expect("pending").is_empty());
        let path = w.finish(n.schema(), "fp").expect("finish").expect("a package");
        let pkg = Package::open(&path).expect("open");
        assert_eq!(pkg.state.jobs.len(), 1);
        assert_eq!(pkg.state.jobs[0].rows, 1);
        assert_eq!(pipeline.pending().expect("pending").len(), 1);

        // An abandoned writer leaves nothing behind.
        let w = PackageWriter::create(&pipeline, "2.2", &settings, FileFormat::Jsonl).expect("writer");
        drop(w);
        assert!(!pipeline.staging_dir().join("2.2").exists());
    }
}
