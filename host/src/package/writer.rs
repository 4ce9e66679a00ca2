//! Normalized rows → job files of a new package.
//!
//! [`PackageWriter::write`] appends rows to one job file per table.
//! A package made whole ([`PackageWriter::create`]) is written in
//! `staging/`; [`PackageWriter::finish`] fsyncs everything, writes the
//! schema and state files and renames it into `normalized/`, and dropping
//! an unfinished writer deletes it, so a failed normalize leaves nothing.
//!
//! A package made in place ([`PackageWriter::create_in_place`]) is written
//! in `normalized/` and publishes each job as soon as its file is durable
//! and listed in the state, so loading can start while later jobs are
//! written. [`PackageWriter::resume`] normalizes an interrupted one again:
//! jobs listed before come out byte for byte the same or the resume fails.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::parquet::{ParquetOut, ROW_GROUP_ROWS};
use super::{
    FileFormat, JobInfo, JobState, NormalizeRecipe, Package, PackageError, PackageState, PipelineDir, io_err, sync_dir,
    write_json_atomic,
};
use crate::normalize::{NormalizeSettings, Row};
use crate::package::jsonl;
use crate::schema::{Schema, Table, Value};

/// Called with the package's directory and each job of an in-place package
/// once its file is durable and listed in the package's state: from then
/// on it may be loaded. The table is the job's table as its rows were
/// written.
pub type Publish = Box<dyn FnMut(&std::path::Path, &JobInfo, &Table) + Send>;

/// Asked (without waiting, or waiting when `true` is passed) whether the
/// jobs of an in-place package may be handed out: the input's fingerprint
/// is computed meanwhile, and its input must not have been loaded before.
pub type Verdict = Box<dyn FnMut(bool) -> Decision + Send>;

/// What a [`Verdict`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not known yet (only when not waiting).
    Pending,
    /// Hand the jobs out; the input's fingerprint.
    Publish(String),
    /// Give the package up: nothing was handed out.
    Withdraw,
}

/// Where a package is written.
enum Place {
    /// In `staging/`, renamed into this directory (`normalized/`) when finished.
    Staging(PathBuf),
    /// In `normalized/` from the start.
    InPlace(Box<InPlace>),
}

/// The state of an in-place package as on disk.
struct InPlace {
    /// Its job list grows as jobs are published.
    state: PackageState,
    publish: Publish,
    /// Asked until it decides (then gone).
    verdict: Option<Verdict>,
    /// Jobs listed but not handed out until the verdict.
    held: Vec<(JobInfo, Table)>,
    /// Jobs listed before an interruption, by file name, not made again yet.
    earlier: HashMap<String, JobInfo>,
}

/// Writes one package.
pub struct PackageWriter {
    /// The package's directory (in staging or in place).
    dir: PathBuf,
    place: Place,
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
        let dir = pipeline.staging_dir().join(load_id);
        create_job_dirs(&dir)?;
        Ok(Self::new(dir, Place::Staging(pipeline.normalized_dir()), load_id, settings, format))
    }

    /// Starts a package in `normalized/` whose jobs are published (and may be
    /// loaded) while it is written; `recipe` says how to write it again
    /// after an interruption, from `start_schema` (the pipeline's schema now).
    /// Jobs are listed as they are written but handed out only once
    /// `verdict` gives the input's fingerprint, which is stored first: a
    /// package whose state has no fingerprint never handed out a job (an
    /// interrupted one is dropped, not resumed). A withdrawal fails the
    /// writing with [`PackageError::Withdrawn`].
    #[allow(clippy::too_many_arguments)]
    pub fn create_in_place(
        pipeline: &PipelineDir,
        load_id: &str,
        settings: &NormalizeSettings,
        format: FileFormat,
        recipe: NormalizeRecipe,
        start_schema: &Schema,
        verdict: Verdict,
        publish: Publish,
    ) -> Result<Self, PackageError> {
        let dir = pipeline.normalized_dir().join(load_id);
        create_job_dirs(&dir)?;
        let state = PackageState {
            load_id: load_id.to_string(),
            created_at: chrono::Utc::now().to_rfc3339(),
            normalize: settings.clone(),
            file_format: format,
            fingerprint: String::new(),
            jobs: Vec::new(),
            normalizing: Some(recipe.clone()),
        };
        write_json_atomic(&dir.join(super::START_SCHEMA_FILE), start_schema)?;
        write_json_atomic(&dir.join(super::SCHEMA_FILE), start_schema)?;
        write_json_atomic(&dir.join(super::STATE_FILE), &state)?;
        sync_dir(&dir)?;
        sync_dir(&pipeline.normalized_dir())?;
        let place = Place::InPlace(Box::new(InPlace {
            state,
            publish,
            verdict: Some(verdict),
            held: Vec::new(),
            earlier: HashMap::new(),
        }));
        Ok(Self::new(dir, place, load_id, settings, format).with_rotation(recipe.rotation).with_gzip(recipe.gzip))
    }

    /// Writes an interrupted in-place package again, with the settings it
    /// was started with. Each job listed before must come out the same
    /// (normalizing is deterministic); one that differs replaces the old
    /// file if no batch of it was handed out yet, else `finish` or `write`
    /// fails with [`PackageError::InputChanged`].
    pub fn resume(package: &Package, publish: Publish) -> Result<Self, PackageError> {
        let state = package.state.clone();
        let Some(recipe) = state.normalizing.clone() else {
            return Err(PackageError::Damaged {
                path: package.dir().join(super::STATE_FILE),
                message: "the package is not being normalized".into(),
            });
        };
        let earlier = state.jobs.iter().map(|j| (j.file_name.clone(), j.clone())).collect();
        let (settings, format) = (state.normalize.clone(), state.file_format);
        let place = Place::InPlace(Box::new(InPlace { state, publish, verdict: None, held: Vec::new(), earlier }));
        Ok(Self::new(package.dir().to_path_buf(), place, &package.state.load_id, &settings, format)
            .with_rotation(recipe.rotation)
            .with_gzip(recipe.gzip))
    }

    fn new(dir: PathBuf, place: Place, load_id: &str, settings: &NormalizeSettings, format: FileFormat) -> Self {
        PackageWriter {
            dir,
            place,
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
        }
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

    /// Closes a job file that rotation replaced (or `finish` ends).
    fn close_job(&mut self, table_idx: usize, job: OpenJob, schema: &Schema) -> Result<(), PackageError> {
        let table = &schema.tables[table_idx];
        let path = job.path.clone();
        let info = job.close(table)?;
        if let Place::InPlace(place) = &mut self.place {
            match place.earlier.remove(&info.file_name) {
                Some(earlier) => settle_earlier(&self.dir, &mut place.state, &earlier, &info, &path)?,
                None => {
                    // Durable, then listed, then handed out: a job is never
                    // loaded before a crash could lose its file or its entry.
                    sync_dir(&self.dir.join(JobState::New.dir_name()))?;
                    place.state.jobs.push(info.clone());
                    write_json_atomic(&self.dir.join(super::STATE_FILE), &place.state)?;
                    place.held.push((info.clone(), table.clone()));
                    place.hand_out(&self.dir, false)?;
                }
            }
        }
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
        let mut path = self.dir.join(JobState::New.dir_name()).join(&info.file_name);
        if let Place::InPlace(place) = &self.place {
            if place.earlier.contains_key(&info.file_name) {
                // Made again next to the listed file, then compared with it.
                path.set_file_name(format!("{}.redo", info.file_name));
            }
            // A file an interrupted run left half written.
            match fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err("remove", &path)(e)),
                _ => {}
            }
        }
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
        let path = self.dir.join("bad_lines.jsonl");
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

    /// The input's fingerprint as the package state has it (in place: from
    /// the verdict; empty before it).
    pub fn fingerprint(&self) -> &str {
        match &self.place {
            Place::InPlace(place) => &place.state.fingerprint,
            Place::Staging(_) => "",
        }
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.jobs.values().map(|j| j.info.rows).chain(self.closed.iter().map(|j| j.rows)).sum()
    }

    /// Makes the package durable and complete. Returns `None` (and leaves
    /// nothing behind) when no rows were written.
    pub fn finish(mut self, schema: &Schema, fingerprint: &str) -> Result<Option<PathBuf>, PackageError> {
        if let Place::InPlace(place) = &self.place
            && let Some(job) = place.earlier.values().next()
        {
            return Err(PackageError::InputChanged { path: self.dir.clone(), job: job.job_id.clone() });
        }
        if self.order.is_empty() {
            return Ok(None);
        }
        for idx in std::mem::take(&mut self.order) {
            if let Some(job) = self.jobs.remove(&idx) {
                self.close_job(idx, job, schema)?;
            }
        }
        if let Place::InPlace(place) = &mut self.place {
            place.hand_out(&self.dir, true)?;
        }
        write_json_atomic(&self.dir.join(super::SCHEMA_FILE), schema)?;
        match &mut self.place {
            Place::Staging(normalized_dir) => {
                let state = PackageState {
                    load_id: self.load_id.clone(),
                    created_at: chrono::Utc::now().to_rfc3339(),
                    normalize: self.settings.clone(),
                    file_format: self.format,
                    fingerprint: fingerprint.to_string(),
                    jobs: std::mem::take(&mut self.closed),
                    normalizing: None,
                };
                write_json_atomic(&self.dir.join(super::STATE_FILE), &state)?;
                sync_dir(&self.dir.join(JobState::New.dir_name()))?;
                sync_dir(&self.dir)?;
                let target = normalized_dir.join(&self.load_id);
                fs::rename(&self.dir, &target).map_err(io_err("move package", &self.dir))?;
                sync_dir(normalized_dir)?;
                self.finished = true;
                Ok(Some(target))
            }
            Place::InPlace(place) => {
                // A resumed package's input was hashed again as it was read.
                if !fingerprint.is_empty() {
                    place.state.fingerprint = fingerprint.to_string();
                }
                place.state.normalizing = None;
                write_json_atomic(&self.dir.join(super::STATE_FILE), &place.state)?;
                let _ = fs::remove_file(self.dir.join(super::START_SCHEMA_FILE));
                self.finished = true;
                Ok(Some(self.dir.clone()))
            }
        }
    }
}

impl InPlace {
    /// Hands the held jobs out once the verdict allows it (waiting for it
    /// when `wait`); the fingerprint is stored before the first goes.
    fn hand_out(&mut self, dir: &std::path::Path, wait: bool) -> Result<(), PackageError> {
        if let Some(verdict) = &mut self.verdict {
            match verdict(wait) {
                Decision::Pending => return Ok(()),
                Decision::Withdraw => return Err(PackageError::Withdrawn),
                Decision::Publish(fingerprint) => {
                    self.verdict = None;
                    self.state.fingerprint = fingerprint;
                    write_json_atomic(&dir.join(super::STATE_FILE), &self.state)?;
                }
            }
        }
        for (job, table) in std::mem::take(&mut self.held) {
            (self.publish)(dir, &job, &table);
        }
        Ok(())
    }
}

/// Creates a package directory with its job state folders.
fn create_job_dirs(dir: &std::path::Path) -> Result<(), PackageError> {
    for state in JobState::ALL {
        let p = dir.join(state.dir_name());
        fs::create_dir_all(&p).map_err(io_err("create", &p))?;
    }
    Ok(())
}

/// A job listed before an interruption was made again (at `redo`): the same
/// bytes keep the listed file; other bytes replace it if none of it was
/// handed out yet (it is still in `new_jobs/`), else the input changed
/// under rows already delivered.
fn settle_earlier(
    dir: &std::path::Path,
    state: &mut PackageState,
    earlier: &JobInfo,
    made: &JobInfo,
    redo: &std::path::Path,
) -> Result<(), PackageError> {
    let listed = JobState::ALL
        .into_iter()
        .map(|s| (s, dir.join(s.dir_name()).join(&earlier.file_name)))
        .find(|(_, p)| p.exists());
    if let Some((_, path)) = &listed
        && files_equal(redo, path)?
    {
        return fs::remove_file(redo).map_err(io_err("remove", redo));
    }
    match listed {
        None | Some((JobState::New, _)) => {
            let target = dir.join(JobState::New.dir_name()).join(&earlier.file_name);
            fs::rename(redo, &target).map_err(io_err("replace", &target))?;
            sync_dir(&dir.join(JobState::New.dir_name()))?;
            if let Some(job) = state.jobs.iter_mut().find(|j| j.file_name == earlier.file_name) {
                job.rows = made.rows;
            }
            write_json_atomic(&dir.join(super::STATE_FILE), state)
        }
        Some(_) => {
            let _ = fs::remove_file(redo);
            Err(PackageError::InputChanged { path: dir.to_path_buf(), job: earlier.job_id.clone() })
        }
    }
}

/// Whether two files hold the same bytes.
fn files_equal(a: &std::path::Path, b: &std::path::Path) -> Result<bool, PackageError> {
    use std::io::Read;
    let open = |p: &std::path::Path| File::open(p).map(|f| std::io::BufReader::with_capacity(1 << 16, f));
    let (mut ra, mut rb) = (open(a).map_err(io_err("read", a))?, open(b).map_err(io_err("read", b))?);
    let (la, lb) =
        (fs::metadata(a).map_err(io_err("read", a))?.len(), fs::metadata(b).map_err(io_err("read", b))?.len());
    if la != lb {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = ra.read(&mut ba).map_err(io_err("read", a))?;
        if n == 0 {
            return Ok(true);
        }
        rb.read_exact(&mut bb[..n]).map_err(io_err("read", b))?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

impl Drop for PackageWriter {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Best effort: a leftover in staging is also removed by the next
        // run's `clean_staging`, and staging is never loaded. An in-place
        // package stays once jobs may have been handed out (its fingerprint
        // is stored): the next run normalizes it again.
        let handed_out = matches!(&self.place, Place::InPlace(p) if !p.state.fingerprint.is_empty());
        if !handed_out {
            let _ = fs::remove_dir_all(&self.dir);
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

    /// Writes `values` (one row each, two rows per job) into package `1.1`
    /// in place, or again into `resume`; stops without finishing after
    /// `stop_after` rows. Returns the jobs published.
    fn in_place(
        pipeline: &PipelineDir,
        values: &[i64],
        resume: Option<&Package>,
        stop_after: Option<usize>,
    ) -> Result<Vec<String>, PackageError> {
        let settings = flat_settings();
        let published = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = published.clone();
        let publish: Publish = Box::new(move |_, job, _| seen.lock().expect("lock").push(job.job_id.clone()));
        let schema = resume.map_or(Ok(Schema::default()), |p| p.start_schema())?;
        let mut n = Normalizer::new(&settings, schema, "1.1").expect("normalizer");
        let mut w = match resume {
            Some(p) => PackageWriter::resume(p, publish)?,
            None => {
                let recipe = NormalizeRecipe {
                    inputs: Vec::new(),
                    rotation: Rotation { max_items: Some(2), max_bytes: None },
                    gzip: false,
                    skip_bad_lines: false,
                    max_record_bytes: 1 << 20,
                };
                let verdict: Verdict = Box::new(|_| Decision::Publish("fp".into()));
                PackageWriter::create_in_place(
                    pipeline,
                    "1.1",
                    &settings,
                    FileFormat::Jsonl,
                    recipe,
                    n.schema(),
                    verdict,
                    publish,
                )?
            }
        };
        for (i, v) in values.iter().enumerate() {
            if stop_after == Some(i) {
                return Ok(published.lock().expect("lock").clone());
            }
            let mut rows = Vec::new();
            n.push("t", &crate::input::Node::from(&serde_json::json!({"a": v})), &mut rows).expect("push");
            w.write(n.schema(), &rows)?;
        }
        w.finish(n.schema(), "fp")?;
        Ok(published.lock().expect("lock").clone())
    }

    #[test]
    fn in_place_jobs_are_published_when_durable_and_a_resume_checks_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pipeline = PipelineDir::open(dir.path(), "p").expect("pipeline");
        let values = [1, 2, 3, 4, 5, 6];
        // Interrupted after five rows: two jobs durable, listed and published.
        let published = in_place(&pipeline, &values, None, Some(5)).expect("first run");
        assert_eq!(published.len(), 2);
        let pkg = pipeline.pending().expect("pending").remove(0);
        assert!(pkg.state.normalizing.is_some());
        assert_eq!(pkg.state.jobs.iter().map(|j| &j.job_id).collect::<Vec<_>>(), published.iter().collect::<Vec<_>>());
        // The first job was handed out; the second was not.
        pkg.move_job(&pkg.state.jobs[0], JobState::New, JobState::Started).expect("start");
        let first = std::fs::read(pkg.job_path(&pkg.state.jobs[0], JobState::Started)).expect("job");

        // A changed row in a job handed out: the resume fails, nothing changes.
        let err = in_place(&pipeline, &[9, 2, 3, 4, 5, 6], Some(&pkg), None).expect_err("input changed");
        assert!(matches!(err, PackageError::InputChanged { .. }), "{err}");
        assert!(err.to_string().contains("host drop-pending"), "{err}");
        assert_eq!(std::fs::read(pkg.job_path(&pkg.state.jobs[0], JobState::Started)).expect("job"), first);

        // A changed row in a job not handed out replaces it; the rest is
        // written and the package completes with the same job ids.
        let published = in_place(&pipeline, &[1, 2, 7, 4, 5, 6], Some(&pkg), None).expect("resume");
        assert_eq!(published.len(), 1, "only the job not listed before is published: {published:?}");
        let done = pipeline.pending().expect("pending").remove(0);
        assert!(done.state.normalizing.is_none());
        assert_eq!(done.state.fingerprint, "fp");
        assert_eq!(done.state.jobs.len(), 3);
        assert_eq!(done.state.jobs[..2], pkg.state.jobs[..]);
        let second = std::fs::read_to_string(done.job_path(&done.state.jobs[1], JobState::New)).expect("job");
        assert!(second.contains("\"a\":7"), "{second}");
        assert!(!done.dir().join("start_schema.json").exists());
        let leftovers: Vec<_> = std::fs::read_dir(done.dir().join("new_jobs"))
            .expect("list")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".redo"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        // Interrupted before any job was listed: nothing stays behind.
        let other = PipelineDir::open(dir.path(), "q").expect("pipeline");
        assert!(in_place(&other, &values, None, Some(1)).expect("run").is_empty());
        assert!(other.pending().expect("pending").is_empty());
    }

    /// Jobs are listed as written but handed out only once the verdict
    /// says so (with the fingerprint stored first); a withdrawal fails the
    /// writing and leaves nothing behind.
    #[test]
    fn in_place_jobs_wait_for_the_verdict_and_a_withdrawal_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = flat_settings();
        let recipe = NormalizeRecipe {
            inputs: Vec::new(),
            rotation: Rotation { max_items: Some(1), max_bytes: None },
            gzip: false,
            skip_bad_lines: false,
            max_record_bytes: 1 << 20,
        };
        for withdraw in [false, true] {
            let pipeline = PipelineDir::open(dir.path(), &format!("p{withdraw}")).expect("pipeline");
            let published = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let seen = published.clone();
            let state_path = pipeline.normalized_dir().join("1.1").join(super::super::STATE_FILE);
            let publish: Publish = Box::new(move |dir, job, _| {
                // The fingerprint is durable before any job is handed out.
                let state: PackageState =
                    serde_json::from_slice(&fs::read(dir.join(super::super::STATE_FILE)).expect("state"))
                        .expect("json");
                assert_eq!(state.fingerprint, "fp");
                seen.lock().expect("lock").push(job.job_id.clone());
            });
            let mut asked = 0;
            let verdict: Verdict = Box::new(move |wait| {
                asked += 1;
                match (wait || asked > 2, withdraw) {
                    (false, _) => Decision::Pending,
                    (true, false) => Decision::Publish("fp".into()),
                    (true, true) => Decision::Withdraw,
                }
            });
            let mut n = Normalizer::new(&settings, Schema::default(), "1.1").expect("normalizer");
            let mut w = PackageWriter::create_in_place(
                &pipeline,
                "1.1",
                &settings,
                FileFormat::Jsonl,
                recipe.clone(),
                n.schema(),
                verdict,
                publish,
            )
            .expect("writer");
            let mut outcome = Ok(());
            for v in 0..5 {
                let mut rows = Vec::new();
                n.push("t", &crate::input::Node::from(&serde_json::json!({"a": v})), &mut rows).expect("push");
                outcome = w.write(n.schema(), &rows);
                if v == 2 {
                    // Two jobs listed, none handed out: the verdict is pending.
                    let state: PackageState =
                        serde_json::from_slice(&fs::read(&state_path).expect("state")).expect("json");
                    assert_eq!((state.jobs.len(), state.fingerprint.as_str()), (2, ""));
                    assert!(published.lock().expect("lock").is_empty());
                }
                if outcome.is_err() {
                    break;
                }
            }
            if withdraw {
                assert!(matches!(outcome, Err(PackageError::Withdrawn)), "{outcome:?}");
                drop(w);
                assert!(pipeline.pending().expect("pending").is_empty(), "nothing stays");
                assert!(published.lock().expect("lock").is_empty());
            } else {
                outcome.expect("written");
                w.finish(n.schema(), "").expect("finish");
                assert_eq!(published.lock().expect("lock").len(), 5);
                assert_eq!(pipeline.pending().expect("pending")[0].state.fingerprint, "fp");
            }
        }
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
