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

use super::parquet::{ParquetOut, ROW_GROUP_ROWS};
use super::{
    FileFormat, JobInfo, JobState, PackageError, PackageState, PipelineDir, io_err, sync_dir, write_json_atomic,
};
use crate::normalize::{NormalizeSettings, Row};
use crate::package::jsonl;
use crate::schema::{Schema, Table, Value};

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
    /// Jobs closed by rotation (already durable), in the order closed.
    closed: Vec<JobInfo>,
    /// Jobs opened so far per table (the rotation sequence).
    opened: HashMap<usize, u32>,
    rotation: Rotation,
    gzip: bool,
    line: Vec<u8>,
    /// Escaped column names per table index (jsonl).
    keys: Vec<jsonl::Keys>,
    finished: bool,
}

struct OpenJob {
    info: JobInfo,
    path: PathBuf,
    out: JobOut,
    bytes: u64,
}

/// A job file being written: jsonl plain or gzip (`.jsonl.gz`), or parquet.
enum JobOut {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
    Parquet(Box<ParquetOut>),
}

impl JobOut {
    /// Appends one row; returns the bytes it took (for parquet an estimate
    /// of its uncompressed size, for `file_max_bytes`).
    fn write_row(
        &mut self,
        line: &mut Vec<u8>,
        keys: &jsonl::Keys,
        table: &Table,
        values: &[(usize, Value)],
    ) -> std::io::Result<u64> {
        if let JobOut::Parquet(p) = self {
            p.write_row(table, values).map_err(std::io::Error::other)?;
            return Ok(values.iter().map(|(_, v)| value_size(v)).sum());
        }
        line.clear();
        keys.write_row(line, values)?;
        match self {
            JobOut::Plain(w) => w.write_all(line)?,
            JobOut::Gzip(w) => w.write_all(line)?,
            JobOut::Parquet(_) => {}
        }
        Ok(line.len() as u64)
    }
}

impl OpenJob {
    /// Flushes (writing the gzip trailer or the parquet footer), fsyncs,
    /// and gives back the job's entry for the package state.
    fn close(self, table: &Table) -> Result<JobInfo, PackageError> {
        let file = match self.out {
            JobOut::Plain(w) => w.into_inner().map_err(|e| e.into_error()),
            JobOut::Gzip(w) => w.finish().and_then(|w| w.into_inner().map_err(|e| e.into_error())),
            JobOut::Parquet(p) => {
                p.finish(table)?;
                return Ok(self.info);
            }
        };
        file.and_then(|f| f.sync_all()).map_err(io_err("write", &self.path))?;
        Ok(self.info)
    }
}

/// Roughly how many bytes a value takes uncompressed.
fn value_size(v: &Value) -> u64 {
    match v {
        Value::Text(s) => s.len() as u64,
        Value::Json(s) | Value::Decimal(s) => s.len() as u64,
        Value::Binary(b) => b.len() as u64,
        Value::Null => 0,
        Value::Bool(_) => 1,
        _ => 8,
    }
}

/// When to start a new job file for a table (dlt's `file_max_items` and
/// `file_max_bytes`), so a large table loads in parallel.
/// `Rotation::default()` never rotates; the product's default is the
/// catalog's (`settings::Resolver::rotation`).
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
            keys: Vec::new(),
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
                    || matches!(&j.out, JobOut::Parquet(p) if p.schema_is_fixed_below(table))
            });
            if full && let Some(job) = self.jobs.remove(&row.table) {
                self.close_job(row.table, job, schema)?;
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
            if self.keys.len() <= row.table {
                self.keys.resize_with(row.table + 1, jsonl::Keys::default);
            }
            let keys = &mut self.keys[row.table];
            keys.update(table);
            job.bytes +=
                job.out.write_row(&mut self.line, keys, table, &row.values).map_err(io_err("write", &job.path))?;
            job.info.rows += 1;
        }
        Ok(())
    }

    /// Closes a job file that rotation replaced.
    fn close_job(&mut self, table_idx: usize, job: OpenJob, schema: &Schema) -> Result<(), PackageError> {
        let info = job.close(&schema.tables[table_idx])?;
        self.closed.push(info);
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
        let path = self.staging.join(JobState::New.dir_name()).join(&info.file_name);
        let out = if self.format == FileFormat::Parquet {
            JobOut::Parquet(Box::new(ParquetOut::create(&path, ROW_GROUP_ROWS)?))
        } else {
            let file = BufWriter::with_capacity(1 << 16, File::create_new(&path).map_err(io_err("create", &path))?);
            if gzip {
                JobOut::Gzip(flate2::write::GzEncoder::new(file, flate2::Compression::fast()))
            } else {
                JobOut::Plain(file)
            }
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
        self.jobs.values().map(|j| j.info.rows).chain(self.closed.iter().map(|j| j.rows)).sum()
    }

    /// Makes the package durable and visible to loaders. Returns `None` (and
    /// leaves nothing behind) when no rows were written.
    pub fn finish(mut self, schema: &Schema, fingerprint: &str) -> Result<Option<PathBuf>, PackageError> {
        if self.order.is_empty() {
            return Ok(None);
        }
        let mut jobs = std::mem::take(&mut self.closed);
        for idx in std::mem::take(&mut self.order) {
            if let Some(job) = self.jobs.remove(&idx) {
                jobs.push(job.close(&schema.tables[idx])?);
            }
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

/// A job id as people read it: its table part decoded (`my table.1a2b.jsonl`
/// for `my%20table.1a2b.jsonl`), so logs and `host status` show table names
/// as written. `--json` keeps the id itself. Undecodable text stays as is.
pub fn shown_job_id(job_id: &str) -> String {
    let bytes = job_id.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| job_id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::Normalizer;
    use crate::package::Package;

    #[test]
    fn job_ids_are_shown_with_their_table_names() {
        let id = format!("{}.1a2b3c.jsonl", safe_file_name("my table▶x"));
        assert_eq!(shown_job_id(&id), "my table▶x.1a2b3c.jsonl");
        assert_eq!(shown_job_id("plain.1a.jsonl"), "plain.1a.jsonl");
        assert_eq!(shown_job_id("bad%ZZ%"), "bad%ZZ%");
    }

    #[test]
    fn safe_names_are_reversible_or_hashed() {
        assert_eq!(safe_file_name("events"), "events");
        assert_eq!(safe_file_name("a/b.c"), "a%2Fb%2Ec");
        let long = safe_file_name(&"ab".repeat(150));
        assert!(long.len() < 130 && long.contains('~'));
        assert_ne!(safe_file_name(&"ab".repeat(150)), safe_file_name(&"ab".repeat(151)));
    }

    fn flat_settings() -> NormalizeSettings {
        NormalizeSettings {
            naming_convention: crate::normalize::NamingConvention::Direct,
            max_nesting_level: 0,
            skip_dlt_columns_and_tables: true,
            schema_hints: Default::default(),
        }
    }

    #[test]
    fn package_appears_only_when_finished() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pipeline = PipelineDir::open(dir.path(), "p").expect("pipeline");
        let settings = flat_settings();
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

        // Job file names of the longest table names are taken.
        let long = format!("{}.{}.0.jsonl", safe_file_name(&"k▶".repeat(200)), "0123456789");
        assert!(long.len() > 128 && crate::names::check_file_name(&long, "job file name").is_ok(), "{}", long.len());

        // A state file edited to point a job outside the package is refused.
        let state = path.join("load_package_state.json");
        let text = std::fs::read_to_string(&state).expect("state");
        let edited = text.replace(&pkg.state.jobs[0].file_name, "../../../escape.jsonl");
        std::fs::write(&state, edited).expect("edit");
        let err = Package::open(&path).expect_err("refused").to_string();
        assert!(err.contains("job file name") && err.contains("is refused"), "{err}");
    }

    /// A parquet file's schema is fixed by its first row group: a column that
    /// appears later starts a second job file, and both read back in full.
    #[test]
    fn parquet_continues_in_a_new_file_when_a_table_grows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pipeline = PipelineDir::open(dir.path(), "p").expect("pipeline");
        let settings = flat_settings();
        let mut n = Normalizer::new(&settings, Schema::default(), "1.1").expect("normalizer");
        let mut w = PackageWriter::create(&pipeline, "1.1", &settings, FileFormat::Parquet).expect("writer");
        let mut rows = Vec::new();
        let total = ROW_GROUP_ROWS + 10;
        for i in 0..total {
            rows.clear();
            let record =
                if i < ROW_GROUP_ROWS { serde_json::json!({"a": i}) } else { serde_json::json!({"a": i, "b": "late"}) };
            n.push("t", &crate::input::Node::from(&record), &mut rows).expect("push");
            w.write(n.schema(), &rows).expect("write");
        }
        assert_eq!(w.rows(), total as u64);
        let path = w.finish(n.schema(), "fp").expect("finish").expect("a package");
        let pkg = Package::open(&path).expect("open");
        assert_eq!(pkg.state.jobs.iter().map(|j| j.rows).collect::<Vec<_>>(), [ROW_GROUP_ROWS as u64, 10]);
        let table = n.schema().table("t").expect("t");
        let mut late = 0;
        for job in &pkg.state.jobs {
            let mut r = super::super::parquet::ParquetJobReader::open(&pkg.job_path(job, JobState::New), 0, 4096)
                .expect("open");
            while let Some((_, batch)) = r.next_record_batch(table).expect("read") {
                let rows = super::super::parquet::batch_rows(&batch, table, &path).expect("rows");
                late += rows.iter().filter(|r| r[1] == Value::Text("late".into())).count();
            }
        }
        assert_eq!(late, 10);
    }
}
