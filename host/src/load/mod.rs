//! Pending packages → the sink, on a pool of worker threads.
//!
//! Jobs (job files) are spread over `workers` OS threads. Each worker owns one
//! [`SinkInstance`] (one Store), reuses it across batches and jobs, and
//! replaces it after a trap. Batches of one job are sent in order; a job's
//! file moves `new_jobs/` → `started_jobs/` → `completed_jobs/` (or
//! `failed_jobs/`), and a package whose jobs are all finished moves to
//! `loaded/`.

mod deliver;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::ledger::{Ledger, LedgerError};
use crate::package::{JobInfo, JobState, Package, PackageError, PipelineDir};
use crate::runtime::SinkRuntime;
use crate::runtime::bindings::ItemFormat;

pub use deliver::idempotency_key;

/// Set by the first Ctrl-C or SIGTERM: hand out no more batches, let calls
/// in flight finish, commit the ledger and stop.
pub static STOP: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// True once a stop was requested.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Loading failed for a reason other than the sink (disk, damaged package).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A package file could not be read or moved.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The ledger could not be read or written.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// How to load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Worker threads (each with its own Store).
    pub workers: usize,
    /// Rows per call; 0 = the whole job file.
    pub batch_size: u32,
    /// Byte cap per batch.
    pub max_batch_bytes: Option<u64>,
    /// Typed rows or Arrow IPC.
    pub item_format: ItemFormat,
    /// Calls per batch in one run before giving up on `retry` errors.
    pub max_attempts: u32,
    /// First backoff after a `retry` error; doubles each attempt.
    pub backoff: Duration,
}

/// Per-table totals of a load.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct TableReport {
    /// Rows delivered.
    pub rows: u64,
    /// Jobs completed.
    pub jobs: u64,
}

/// A job that did not complete.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct JobFailure {
    /// The package.
    pub load_id: String,
    /// The job.
    pub job_id: String,
    /// The table.
    pub table: String,
    /// First row of the batch that failed.
    pub start_row: u64,
    /// Rows in that batch.
    pub row_count: u64,
    /// Terminal (moved to failed_jobs/) or retries exhausted (still pending).
    pub terminal: bool,
    /// The last error.
    pub error: String,
}

/// What a load did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    /// Totals per table.
    pub tables: BTreeMap<String, TableReport>,
    /// Calls to the sink's `load`.
    pub calls: u64,
    /// Calls that were repeats after a `retry` error or a trap.
    pub retries: u64,
    /// Instances replaced after a trap.
    pub store_replacements: u64,
    /// Jobs that did not complete.
    pub failures: Vec<JobFailure>,
    /// Packages finished in this load, with where they are now.
    pub packages_loaded: Vec<PathBuf>,
    /// Packages still pending after this load.
    pub packages_pending: Vec<PathBuf>,
    /// Wall-clock seconds.
    pub elapsed_secs: f64,
    /// The load stopped early on Ctrl-C or SIGTERM.
    pub interrupted: bool,
}

impl LoadReport {
    /// Rows delivered in total.
    pub fn rows(&self) -> u64 {
        self.tables.values().map(|t| t.rows).sum()
    }

    /// True when every job completed.
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && !self.interrupted && self.packages_pending.is_empty()
    }
}

/// Loads every pending package of `pipeline`, oldest first, adding to
/// `report`. Stops after the first package that does not complete, so
/// packages are always delivered in order.
pub fn load_pending(
    runtime: &SinkRuntime,
    pipeline: &PipelineDir,
    options: &LoadOptions,
    report: &mut LoadReport,
) -> Result<(), LoadError> {
    let started = Instant::now();
    for package in pipeline.pending()? {
        load_package(runtime, pipeline, package, options, report)?;
        if !report.packages_pending.is_empty() || stop_requested() {
            report.interrupted |= stop_requested();
            break;
        }
    }
    report.elapsed_secs += started.elapsed().as_secs_f64();
    Ok(())
}

fn load_package(
    runtime: &SinkRuntime,
    pipeline: &PipelineDir,
    package: Package,
    options: &LoadOptions,
    report: &mut LoadReport,
) -> Result<(), LoadError> {
    let ledger = Ledger::open(package.dir())?;
    let mut queue = VecDeque::new();
    for job in &package.state.jobs {
        match package.job_state(job) {
            Some(JobState::New) => {
                package.move_job(job, JobState::New, JobState::Started)?;
                queue.push_back(job.clone());
            }
            Some(JobState::Started) => queue.push_back(job.clone()),
            Some(JobState::Completed | JobState::Failed) => {}
            None => {
                return Err(PackageError::Damaged {
                    path: package.dir().to_path_buf(),
                    message: format!("job file {} is missing", job.file_name),
                }
                .into());
            }
        }
    }
    let workers = options.workers.clamp(1, queue.len().max(1));
    let shared = Shared {
        queue: Mutex::new(queue),
        report: Mutex::new(std::mem::take(report)),
        error: Mutex::new(None),
        ledger,
    };
    std::thread::scope(|scope| {
        for n in 0..workers {
            let shared = &shared;
            let package = &package;
            std::thread::Builder::new()
                .name(format!("load-worker-{n}"))
                .spawn_scoped(scope, move || deliver::worker(runtime, pipeline, package, options, shared))
                .map(|_| ())
                .unwrap_or_else(|e| {
                    shared.fail(
                        PackageError::Io { action: "start worker for", path: package.dir().to_path_buf(), source: e }
                            .into(),
                    )
                });
        }
    });
    let Shared { report: shared_report, error, .. } = shared;
    *report = shared_report.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let unfinished =
        package.state.jobs.iter().any(|j| matches!(package.job_state(j), Some(JobState::New | JobState::Started)));
    if unfinished {
        report.packages_pending.push(package.dir().to_path_buf());
    } else {
        let failed = package.state.jobs.iter().any(|j| package.job_state(j) == Some(JobState::Failed));
        let (fingerprint, load_id) = (package.state.fingerprint.clone(), package.state.load_id.clone());
        let moved = package.complete(&pipeline.loaded_dir(), failed)?;
        pipeline.record_loaded(&fingerprint, &load_id)?;
        report.packages_loaded.push(moved);
    }
    Ok(())
}

/// State the workers of one package share.
struct Shared {
    queue: Mutex<VecDeque<JobInfo>>,
    report: Mutex<LoadReport>,
    /// The first I/O error; it stops every worker.
    error: Mutex<Option<LoadError>>,
    /// The package's ledger.
    ledger: Ledger,
}

impl Shared {
    fn next_job(&self) -> Option<JobInfo> {
        if stop_requested() || self.error.lock().map(|e| e.is_some()).unwrap_or(true) {
            return None;
        }
        self.queue.lock().ok()?.pop_front()
    }

    fn fail(&self, e: LoadError) {
        if let Ok(mut slot) = self.error.lock() {
            slot.get_or_insert(e);
        }
    }

    fn with_report(&self, f: impl FnOnce(&mut LoadReport)) {
        if let Ok(mut r) = self.report.lock() {
            f(&mut r);
        }
    }
}
