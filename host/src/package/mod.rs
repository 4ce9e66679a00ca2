//! Load packages on disk: the contract between normalizing and loading.
//!
//! Layout, like dlt's:
//!
//! ```text
//! <pipelines_dir>/<pipeline>/
//!   schemas/<pipeline>.schema.json      the pipeline's schema, grown across runs
//!   load/staging/<load_id>/             a package being written (never loaded)
//!   load/normalized/<load_id>/          packages waiting to be loaded
//!     new_jobs/ started_jobs/ completed_jobs/ failed_jobs/
//!     schema.json                       tables as they were when normalized
//!     load_package_state.json           settings and the job list
//!     start_schema.json                 (while normalizing) the schema it started from
//!   load/loaded/<load_id>/              finished packages
//! ```
//!
//! A package is written in one of two ways:
//!
//! - **Whole** (stdin, dry runs): in `staging/`, fsynced, then renamed into
//!   `normalized/`, so a crash leaves no half package.
//! - **In place** (`host run` on files, which loads while it normalizes):
//!   in `normalized/` from the start, its state carrying the
//!   [`NormalizeRecipe`] that made it. A job is listed in the state only
//!   once its file is durable, and only listed jobs are loaded. A crash
//!   leaves a package whose recipe is still set: the next run normalizes
//!   the same input again into the same load id (normalizing is
//!   deterministic, so the same job files with the same rows come out),
//!   checks that every listed job came out byte for byte the same, and
//!   only then loads the rest. So a row is never sent under a second key.
//!
//! Moving a job between states is an atomic rename.

pub(crate) mod jsonl;
pub(crate) mod parquet;
pub(crate) mod reader;
pub(crate) mod writer;

pub use jsonl::DecodeError;
pub use parquet::{ParquetJobReader, batch_rows, to_ipc};
pub use reader::JobReader;
pub use writer::{Decision, PackageWriter, Publish, Rotation, Verdict, shown_job_id};

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::normalize::NormalizeSettings;
use crate::schema::Schema;

/// File names inside a package.
const STATE_FILE: &str = "load_package_state.json";
const SCHEMA_FILE: &str = "schema.json";
const COMPLETED_FILE: &str = "package_completed.json";
const START_SCHEMA_FILE: &str = "start_schema.json";
/// Fingerprints of loaded inputs, kept outside package retention.
const LOADED_INPUTS_FILE: &str = "loaded_inputs.json";
/// Held while a `host` process works on the pipeline.
const LOCK_FILE: &str = "pipeline.lock";

/// Failure to read or change a package on disk.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// An I/O operation on a path failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Another process holds the pipeline.
    #[error("pipeline is locked by another host process (pid {holder}); wait for it to finish (lock file {path})")]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Pid of the holder.
        holder: String,
    },
    /// A name from outside (a pipeline's) cannot become a path.
    #[error(transparent)]
    Name(#[from] crate::names::NameError),
    /// An interrupted package was normalized again and one of its jobs,
    /// with rows already handed to the sink, came out different.
    #[error(
        "package {path} was being loaded while it was normalized when the host stopped; normalized again, job \
         {job} (rows of which were already handed to the sink) comes out different, so the input changed. \
         Restore the input files the package was made from and rerun, or give the package up with \
         `host drop-pending`"
    )]
    InputChanged {
        /// The package.
        path: PathBuf,
        /// The job.
        job: String,
    },
    /// An in-place package was given up before any job was listed (its
    /// input had been loaded before).
    #[error("the package was withdrawn before any of its jobs was handed out")]
    Withdrawn,
    /// A package file is not what we wrote.
    #[error("{path} is damaged: {message}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Shorthand for mapping an I/O error with its action and path.
pub(crate) fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PackageError + 'a {
    move |source| PackageError::Io { action, path: path.to_path_buf(), source }
}

/// Format of job files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// JSON Lines.
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

impl FileFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Jsonl => "jsonl",
            FileFormat::Parquet => "parquet",
        }
    }
}

/// The state a job is in: the folder its file sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Not started.
    New,
    /// Being loaded, or interrupted while loading.
    Started,
    /// Every row delivered.
    Completed,
    /// Failed terminally.
    Failed,
}

impl JobState {
    /// The folder name.
    pub fn dir_name(self) -> &'static str {
        match self {
            JobState::New => "new_jobs",
            JobState::Started => "started_jobs",
            JobState::Completed => "completed_jobs",
            JobState::Failed => "failed_jobs",
        }
    }

    const ALL: [JobState; 4] = [JobState::New, JobState::Started, JobState::Completed, JobState::Failed];
}

/// One job: one job file of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInfo {
    /// The job id: `<safe table>.<file_id>.<format>` (dlt leaves the retry
    /// number out of the id).
    pub job_id: String,
    /// The file name: `<safe table>.<file_id>.<retry>.<format>`.
    pub file_name: String,
    /// The table's real name (the file name may be encoded).
    pub table: String,
    /// Rows in the file.
    pub rows: u64,
}

/// `load_package_state.json`: what a package is and how it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageState {
    /// The load id.
    pub load_id: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// How the rows were normalized; a resumed load keeps these.
    pub normalize: NormalizeSettings,
    /// Format of the job files.
    pub file_format: FileFormat,
    /// Fingerprint of the input it was made from.
    #[serde(default)]
    pub fingerprint: String,
    /// The jobs, in creation order.
    pub jobs: Vec<JobInfo>,
    /// Set while the package is being normalized in place (and left set
    /// when that was interrupted): how to normalize it again. Packages of
    /// earlier releases have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalizing: Option<NormalizeRecipe>,
}

/// How an in-place package is normalized: what to read again, with the
/// settings that decide its job files, after an interruption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormalizeRecipe {
    /// The input files, in order.
    pub inputs: Vec<RecipeInput>,
    /// Job file rotation (it decides job ids and rows per job).
    pub rotation: Rotation,
    /// Gzip jsonl job files.
    pub gzip: bool,
    /// Malformed lines were skipped (kept in `bad_lines.jsonl`).
    pub skip_bad_lines: bool,
    /// The largest input record, in bytes.
    pub max_record_bytes: usize,
}

/// One input file of a [`NormalizeRecipe`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipeInput {
    /// The file, as given.
    pub path: PathBuf,
    /// Its root table.
    pub table: String,
    /// Route records by this field's value.
    pub table_from_field: Option<String>,
}

/// The working directory of one pipeline.
#[derive(Debug, Clone)]
pub struct PipelineDir {
    root: PathBuf,
    name: String,
}

impl PipelineDir {
    /// `<pipelines_dir>/<name>`, created if missing.
    pub fn open(pipelines_dir: &Path, name: &str) -> Result<Self, PackageError> {
        let root = crate::names::safe_join(pipelines_dir, name, "pipeline name")?;
        for sub in ["load/staging", "load/normalized", "load/loaded", "schemas"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(io_err("create", &p))?;
        }
        Ok(PipelineDir { root, name: name.to_string() })
    }

    /// The pipeline's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The pipeline's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where packages are written before they are complete.
    pub fn staging_dir(&self) -> PathBuf {
        self.root.join("load/staging")
    }

    /// Where complete, pending packages wait.
    pub fn normalized_dir(&self) -> PathBuf {
        self.root.join("load/normalized")
    }

    /// Where finished packages go.
    pub fn loaded_dir(&self) -> PathBuf {
        self.root.join("load/loaded")
    }

    fn schema_path(&self) -> PathBuf {
        self.root.join("schemas").join(format!("{}.schema.json", self.name))
    }

    /// The pipeline's schema so far (empty on the first run).
    pub fn load_schema(&self) -> Result<Schema, PackageError> {
        read_json_or_default(&self.schema_path())
    }

    /// Stores the pipeline's schema atomically.
    pub fn save_schema(&self, schema: &Schema) -> Result<(), PackageError> {
        write_json_atomic(&self.schema_path(), schema)
    }

    /// Removes packages left half-written in staging by a crashed run.
    pub fn clean_staging(&self) -> Result<(), PackageError> {
        let dir = self.staging_dir();
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let path = entry.map_err(io_err("list", &dir))?.path();
            fs::remove_dir_all(&path).map_err(io_err("remove", &path))?;
        }
        Ok(())
    }

    /// The load id of the loaded package made from input with `fingerprint`.
    pub fn loaded_fingerprint(&self, fingerprint: &str) -> Result<Option<String>, PackageError> {
        let map: BTreeMap<String, String> = read_json_or_default(&self.root.join(LOADED_INPUTS_FILE))?;
        Ok(map.get(fingerprint).cloned())
    }

    /// Remembers that input with `fingerprint` was loaded as `load_id`.
    pub fn record_loaded(&self, fingerprint: &str, load_id: &str) -> Result<(), PackageError> {
        if fingerprint.is_empty() {
            return Ok(());
        }
        let path = self.root.join(LOADED_INPUTS_FILE);
        let mut map: BTreeMap<String, String> = read_json_or_default(&path)?;
        map.insert(fingerprint.to_string(), load_id.to_string());
        write_json_atomic(&path, &map)
    }

    /// Takes the pipeline's lock, or fails at once naming the holder's pid.
    /// The OS releases the lock when the process dies, so a lock left by a
    /// killed run is taken over.
    pub fn lock(&self) -> Result<PipelineLock, PackageError> {
        let path = self.root.join(LOCK_FILE);
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("open", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = io::Read::read_to_string(&mut file, &mut holder);
                return Err(PackageError::Locked { path, holder: holder.trim().to_string() });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err("lock", &path)(e)),
        }
        file.set_len(0).map_err(io_err("write", &path))?;
        io::Write::write_all(&mut file, std::process::id().to_string().as_bytes()).map_err(io_err("write", &path))?;
        Ok(PipelineLock { _file: file })
    }

    /// Loaded packages, oldest first, with whether any job failed.
    pub fn loaded(&self) -> Result<Vec<(PathBuf, bool)>, PackageError> {
        let dir = self.loaded_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let path = entry.map_err(io_err("list", &dir))?.path();
            if path.is_dir() {
                let status = fs::read_to_string(path.join(COMPLETED_FILE)).unwrap_or_default();
                out.push((path, status.contains("failed")));
            }
        }
        out.sort_by(|a, b| {
            let key =
                |p: &Path| load_id_key(&p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
            key(&a.0).total_cmp(&key(&b.0))
        });
        Ok(out)
    }

    /// Deletes the oldest loaded packages beyond the newest `keep`, never one
    /// with failed jobs (`host retry-failed` needs it).
    pub fn apply_retention(&self, keep: usize) -> Result<(), PackageError> {
        let loaded = self.loaded()?;
        let excess = loaded.len().saturating_sub(keep);
        for (path, failed) in loaded.into_iter().take(excess) {
            if !failed {
                fs::remove_dir_all(&path).map_err(io_err("remove", &path))?;
            }
        }
        Ok(())
    }

    /// Puts a loaded package's failed jobs back in `new_jobs/` and the
    /// package back in `normalized/`; returns how many jobs moved.
    pub fn retry_failed(&self, package_dir: &Path) -> Result<usize, PackageError> {
        let pkg = Package::open(package_dir)?;
        let mut moved = 0;
        for job in &pkg.state.jobs {
            if pkg.job_state(job) == Some(JobState::Failed) {
                pkg.move_job(job, JobState::Failed, JobState::New)?;
                let exception =
                    package_dir.join(JobState::Failed.dir_name()).join(format!("{}.exception", job.file_name));
                let _ = fs::remove_file(exception);
                moved += 1;
            }
        }
        if moved > 0 {
            let marker = package_dir.join(COMPLETED_FILE);
            let _ = fs::remove_file(marker);
            let target = self.normalized_dir().join(&pkg.state.load_id);
            fs::rename(package_dir, &target).map_err(io_err("move package", package_dir))?;
        }
        Ok(moved)
    }

    /// The failed jobs of loaded package `load_id` (empty when it has none
    /// or is not in `loaded/`), each with its last error.
    pub fn failed_jobs(&self, load_id: &str) -> Result<Vec<(JobInfo, String)>, PackageError> {
        let dir = self.loaded_dir().join(load_id);
        if !dir.join(STATE_FILE).is_file() {
            return Ok(Vec::new());
        }
        let pkg = Package::open(&dir)?;
        let mut out = Vec::new();
        for job in &pkg.state.jobs {
            if pkg.job_state(job) == Some(JobState::Failed) {
                let exception = dir.join(JobState::Failed.dir_name()).join(format!("{}.exception", job.file_name));
                let error = fs::read_to_string(exception).unwrap_or_default().trim().to_string();
                out.push((job.clone(), error));
            }
        }
        Ok(out)
    }

    /// Pending packages, oldest first.
    pub fn pending(&self) -> Result<Vec<Package>, PackageError> {
        let dir = self.normalized_dir();
        let mut ids = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            if entry.path().is_dir() {
                ids.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        ids.sort_by(|a, b| load_id_key(a).total_cmp(&load_id_key(b)).then(a.cmp(b)));
        ids.iter().map(|id| Package::open(&dir.join(id))).collect()
    }
}

fn load_id_key(id: &str) -> f64 {
    id.parse().unwrap_or(f64::MAX)
}

/// Held for as long as a command works on a pipeline.
#[derive(Debug)]
pub struct PipelineLock {
    _file: fs::File,
}

/// A complete package on disk.
#[derive(Debug, Clone)]
pub struct Package {
    dir: PathBuf,
    /// Its state file.
    pub state: PackageState,
    /// Its schema.
    pub schema: Schema,
}

impl Package {
    /// Opens the package in `dir`.
    pub fn open(dir: &Path) -> Result<Self, PackageError> {
        let state: PackageState = read_json(&dir.join(STATE_FILE))?;
        // Job file names become paths: each must be one plain name, so no
        // edited state file can point the host outside the package.
        for job in &state.jobs {
            crate::names::check_file_name(&job.file_name, "job file name")
                .map_err(|e| PackageError::Damaged { path: dir.join(STATE_FILE), message: e.to_string() })?;
        }
        let schema = read_json(&dir.join(SCHEMA_FILE))?;
        Ok(Package { dir: dir.to_path_buf(), state, schema })
    }

    /// The package's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The schema an in-place package started from (its normalizing is
    /// redone from it, as the first time).
    pub fn start_schema(&self) -> Result<Schema, PackageError> {
        read_json(&self.dir.join(START_SCHEMA_FILE))
    }

    /// The state a job is in, by where its file is.
    pub fn job_state(&self, job: &JobInfo) -> Option<JobState> {
        JobState::ALL.into_iter().find(|s| self.job_path(job, *s).exists())
    }

    /// Where a job's file is when in `state`.
    pub fn job_path(&self, job: &JobInfo, state: JobState) -> PathBuf {
        self.dir.join(state.dir_name()).join(&job.file_name)
    }

    /// Moves a job's file between states (an atomic rename).
    pub fn move_job(&self, job: &JobInfo, from: JobState, to: JobState) -> Result<(), PackageError> {
        let src = self.job_path(job, from);
        fs::rename(&src, self.job_path(job, to)).map_err(io_err("move job", &src))
    }

    /// Deletes the package (used when its input turned out to be loaded already).
    pub fn discard(self) -> Result<(), PackageError> {
        fs::remove_dir_all(&self.dir).map_err(io_err("remove", &self.dir))
    }

    /// Saves why a job failed next to it in `failed_jobs/`.
    pub fn record_failure(&self, job: &JobInfo, message: &str) -> Result<(), PackageError> {
        let path = self.dir.join(JobState::Failed.dir_name()).join(format!("{}.exception", job.file_name));
        fs::write(&path, message).map_err(io_err("write", &path))
    }

    /// Marks the package finished and moves it to `loaded/`. Returns the new
    /// directory.
    pub fn complete(self, loaded_dir: &Path, failed: bool) -> Result<PathBuf, PackageError> {
        let marker = self.dir.join(COMPLETED_FILE);
        let status = if failed { "failed" } else { "loaded" };
        fs::write(&marker, serde_json::to_vec(status).unwrap_or_default()).map_err(io_err("write", &marker))?;
        let target = loaded_dir.join(&self.state.load_id);
        fs::rename(&self.dir, &target).map_err(io_err("move package", &self.dir))?;
        Ok(target)
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, PackageError> {
    let bytes = fs::read(path).map_err(io_err("read", path))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| PackageError::Damaged { path: path.to_path_buf(), message: e.to_string() })
}

fn read_json_or_default<T: Default + for<'de> Deserialize<'de>>(path: &Path) -> Result<T, PackageError> {
    if path.exists() { read_json(path) } else { Ok(T::default()) }
}

/// Writes `value` as JSON to a temporary file, fsyncs it and renames it over
/// `path`, so readers see the old or the new file, never a torn one.
pub(crate) fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), PackageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err("create temp in", dir))?;
    serde_json::to_writer_pretty(&mut tmp, value).map_err(|e| PackageError::Io {
        action: "write",
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    tmp.as_file().sync_all().map_err(io_err("sync", path))?;
    tmp.persist(path).map_err(|e| PackageError::Io { action: "replace", path: path.to_path_buf(), source: e.error })?;
    Ok(())
}

/// fsyncs a directory so renames inside it survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), PackageError> {
    fs::File::open(dir).and_then(|f| f.sync_all()).map_err(io_err("sync", dir))
}
