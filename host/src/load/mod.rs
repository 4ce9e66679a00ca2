//! Pending packages → the sink, on a pool of worker threads.
//!
//! Jobs (job files) are spread over `workers` OS threads. Each worker owns one
//! [`SinkInstance`] (one Store), reuses it across batches and jobs, and
//! replaces it after a trap. Batches of one job are sent in order; a job's
//! file moves `new_jobs/` → `started_jobs/` → `completed_jobs/` (or
//! `failed_jobs/`), and a package whose jobs are all finished moves to
//! `loaded/`.
//!
//! A package is loaded either whole ([`load_pending`]) or while it is
//! normalized ([`load_while_normalizing`]): then jobs come through a
//! [`JobFeed`] as their files become durable, and workers wait for the next
//! one until the feed closes.

mod deliver;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::ledger::{Ledger, LedgerError};
use crate::package::{JobInfo, JobState, Package, PackageError, PipelineDir};
use crate::runtime::SinkRuntime;
use crate::runtime::bindings::ItemFormat;
use crate::schema::Table;

pub use deliver::idempotency_key;

use crate::stop::Cancel;
use crate::telemetry::{Attr, Span};

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
    /// The longest wait a sink's `retry-after-ms` may ask for
    /// (`--max-retry-after`): a sink's number is hostile input, and
    /// 2^64−1 ms would stall the run forever.
    pub max_retry_after: Duration,
    /// Which jobs may run at the same time.
    pub strategy: Strategy,
    /// Loaded packages to keep (older ones are deleted unless they failed).
    pub keep_loaded: usize,
    /// Called after every delivered batch with the report so far.
    pub progress: Option<ProgressHook>,
    /// The run's stop request: no batch is handed out once it is set.
    pub cancel: Cancel,
    /// The span packages are traced under (the run's); a no-op without
    /// an exporter.
    pub trace: Span,
}

/// A progress callback, called with the load report after each batch.
#[derive(Clone)]
pub struct ProgressHook(pub Arc<dyn Fn(&LoadReport) + Send + Sync>);

impl std::fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressHook")
    }
}

/// dlt's `loader_parallelism_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Any jobs at once, up to `workers`.
    #[default]
    Parallel,
    /// At most one job per table at once; tables in parallel.
    TableSequential,
    /// One job at a time.
    Sequential,
}

/// Per-table totals of a load.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct TableReport {
    /// Rows delivered.
    pub rows: u64,
    /// Jobs completed.
    pub jobs: u64,
    /// Batches the sink confirmed (calls that returned `ok`).
    pub batches: u64,
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
    /// Rows of the job not delivered.
    pub rows_left: u64,
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
    /// Malformed input lines skipped by this run (`--on-bad-line skip`).
    pub skipped_lines: u64,
    /// The package whose `bad_lines.jsonl` holds them.
    pub skipped_lines_package: Option<String>,
    /// Jobs that failed terminally in an earlier run, of the package whose
    /// input this run found already loaded: not delivered, nothing sent.
    pub earlier_failures: Vec<JobFailure>,
    /// Packages finished in this load, with where they are now.
    pub packages_loaded: Vec<PathBuf>,
    /// Packages still pending after this load.
    pub packages_pending: Vec<PathBuf>,
    /// Wall-clock seconds.
    pub elapsed_secs: f64,
    /// The load stopped early on Ctrl-C or SIGTERM.
    pub interrupted: bool,
    /// Sandbox figures of the run.
    pub sandbox: SandboxReport,
}

/// What the sandbox saw during a load.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SandboxReport {
    /// The component came from the compile cache.
    pub cache_hit: bool,
    /// Milliseconds to compile or load the component.
    pub compile_ms: f64,
    /// Sink instances created (one per worker, plus replacements).
    pub instances: u64,
    /// Most linear memory one instance used, in bytes.
    pub peak_guest_memory: u64,
    /// Seconds spent inside the sink, summed over workers.
    pub guest_secs: f64,
    /// Fuel the sink burned, summed over calls (0 unless `--fuel` is set).
    pub fuel_consumed: u64,
    /// HTTP requests sent.
    pub http_requests: u64,
    /// HTTP requests refused by the allow-list.
    pub http_denied: u64,
    /// Request body bytes sent.
    pub http_bytes_sent: u64,
    /// Answers by status class (`2xx`, `5xx`, ...; `none` for a request
    /// that got no answer).
    pub http_responses: BTreeMap<String, u64>,
}

impl SandboxReport {
    /// Reads the runtime's counters.
    pub fn from_runtime(rt: &SinkRuntime) -> Self {
        let s = rt.stats();
        SandboxReport {
            cache_hit: rt.compiled().hit,
            compile_ms: rt.compiled().millis,
            instances: s.instances.load(Ordering::Relaxed),
            peak_guest_memory: s.peak_memory.load(Ordering::Relaxed) as u64,
            guest_secs: s.guest_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            fuel_consumed: s.fuel_consumed.load(Ordering::Relaxed),
            http_requests: s.http.requests.load(Ordering::Relaxed),
            http_denied: s.http.denied.load(Ordering::Relaxed),
            http_bytes_sent: s.http.bytes_sent.load(Ordering::Relaxed),
            http_responses: s
                .http
                .by_class
                .iter()
                .enumerate()
                .map(|(class, n)| {
                    (if class == 0 { "none".into() } else { format!("{class}xx") }, n.load(Ordering::Relaxed))
                })
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}

impl LoadReport {
    /// Rows delivered in total.
    pub fn rows(&self) -> u64 {
        self.tables.values().map(|t| t.rows).sum()
    }

    /// True when every job completed.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
            && self.earlier_failures.is_empty()
            && !self.interrupted
            && self.packages_pending.is_empty()
    }

    /// Jobs whose rows were not delivered because they failed terminally,
    /// in this run or (for input found already loaded) an earlier one.
    pub fn terminal_failures(&self) -> impl Iterator<Item = &JobFailure> {
        self.failures.iter().filter(|f| f.terminal).chain(&self.earlier_failures)
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
        if !report.packages_pending.is_empty() || options.cancel.is_cancelled() {
            report.interrupted |= options.cancel.is_cancelled();
            break;
        }
    }
    report.elapsed_secs += started.elapsed().as_secs_f64();
    report.sandbox = SandboxReport::from_runtime(runtime);
    pipeline.apply_retention(options.keep_loaded)?;
    Ok(())
}

fn load_package(
    runtime: &SinkRuntime,
    pipeline: &PipelineDir,
    package: Package,
    options: &LoadOptions,
    report: &mut LoadReport,
) -> Result<(), LoadError> {
    let trace = options.trace.child("dlthost.package", &[Attr::Text("dlthost.load_id", &package.state.load_id)]);
    let feed = JobFeed::new();
    for job in &package.state.jobs {
        match package.job_state(job) {
            Some(JobState::New) => {
                package.move_job(job, JobState::New, JobState::Started)?;
                feed.queue(job, &package, false)?;
            }
            Some(JobState::Started) => feed.queue(job, &package, false)?,
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
    feed.close();
    load_jobs(runtime, pipeline, &package, options, report, feed, &trace)?;
    settle(pipeline, package, report, &trace)
}

/// Loads a package while it is normalized. `normalize` runs on a thread
/// of its own and publishes each job to `feed` once its file is durable
/// ([`JobFeed::publish`]); the feed is closed when `normalize` returns.
/// Workers start with the first job and load each as it comes. A package
/// whose normalizing did not complete stays pending (the next run
/// normalizes it again). Returns what `normalize` returned.
pub fn load_while_normalizing<T: Send>(
    runtime: &SinkRuntime,
    pipeline: &PipelineDir,
    options: &LoadOptions,
    report: &mut LoadReport,
    feed: Arc<JobFeed>,
    normalize: impl FnOnce() -> T + Send,
) -> Result<T, LoadError> {
    let started = Instant::now();
    let (normalized, loaded) = std::thread::scope(|scope| {
        let closing = feed.clone();
        let normalizing = scope.spawn(move || {
            let _close = CloseOnDrop(closing);
            normalize()
        });
        let loaded = match feed.wait_first() {
            Some(dir) => load_fed(runtime, pipeline, &dir, options, report, &feed),
            None => Ok(()),
        };
        let normalized = normalizing.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (normalized, loaded)
    });
    loaded?;
    report.interrupted |= options.cancel.is_cancelled();
    report.elapsed_secs += started.elapsed().as_secs_f64();
    report.sandbox = SandboxReport::from_runtime(runtime);
    pipeline.apply_retention(options.keep_loaded)?;
    Ok(normalized)
}

/// The loading half of [`load_while_normalizing`], from the first job on.
fn load_fed(
    runtime: &SinkRuntime,
    pipeline: &PipelineDir,
    dir: &std::path::Path,
    options: &LoadOptions,
    report: &mut LoadReport,
    feed: &Arc<JobFeed>,
) -> Result<(), LoadError> {
    let package = Package::open(dir)?;
    let trace = options.trace.child("dlthost.package", &[Attr::Text("dlthost.load_id", &package.state.load_id)]);
    load_jobs(runtime, pipeline, &package, options, report, feed.clone(), &trace)?;
    // The state as normalizing left it: every job, or the recipe still set.
    settle(pipeline, Package::open(dir)?, report, &trace)
}

/// Closes a feed when normalizing ends, also by a panic.
struct CloseOnDrop(Arc<JobFeed>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Runs the workers of one package until `feed` is closed and empty.
fn load_jobs(
    runtime: &SinkRuntime,
    pipeline: &PipelineDir,
    package: &Package,
    options: &LoadOptions,
    report: &mut LoadReport,
    feed: Arc<JobFeed>,
    trace: &Span,
) -> Result<(), LoadError> {
    let ledger = Ledger::open(package.dir())?;
    // Attempts after this mark are this run's (`host status`).
    ledger.append(crate::ledger::Record::Run)?;
    let workers = match options.strategy {
        Strategy::Sequential => 1,
        Strategy::Parallel | Strategy::TableSequential => options.workers.max(1),
    };
    let shared = Shared {
        feed,
        report: Mutex::new(std::mem::take(report)),
        error: Mutex::new(None),
        ledger,
        progress: options.progress.clone(),
        strategy: options.strategy,
        cancel: options.cancel.clone(),
        trace: trace.clone(),
    };
    std::thread::scope(|scope| {
        // A worker (and its instance) is started only when a job waits, no
        // worker is free, and the cores are not all busy already: a
        // package fed job by job needs few, and past the cores a sink that
        // computes gains nothing from more (a sink that waits on the
        // network leaves the cores idle and gets up to `workers`).
        let gauge = CpuGauge::new();
        for n in 0..workers {
            if !shared.feed.needs_worker(n, &gauge) {
                break;
            }
            let shared = &shared;
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
    match error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// After the workers: a package with every job finished (and normalizing
/// complete) moves to `loaded/`; any other stays pending.
fn settle(pipeline: &PipelineDir, package: Package, report: &mut LoadReport, trace: &Span) -> Result<(), LoadError> {
    let unfinished = package.state.normalizing.is_some()
        || package.state.jobs.iter().any(|j| matches!(package.job_state(j), Some(JobState::New | JobState::Started)));
    trace.set(&[Attr::Text("dlthost.outcome", if unfinished { "pending" } else { "complete" })]);
    trace.end();
    if unfinished {
        report.packages_pending.push(package.dir().to_path_buf());
    } else {
        let failed = package.state.jobs.iter().any(|j| package.job_state(j) == Some(JobState::Failed));
        // Record the input as loaded before the package leaves `normalized/`:
        // a crash in between must not let a rerun package the input again
        // (that would resend every row under new idempotency keys).
        pipeline.record_loaded(&package.state.fingerprint, &package.state.load_id)?;
        let moved = package.complete(&pipeline.loaded_dir(), failed)?;
        report.packages_loaded.push(moved);
    }
    Ok(())
}

/// Whether another worker could use an idle core: the process's CPU time
/// over a window of at least [`CpuGauge::WINDOW`] since the last look.
struct CpuGauge {
    /// Cores available to the process.
    cores: usize,
    /// When the current window started, and the CPU time then.
    window: Mutex<(Instant, Duration)>,
}

impl CpuGauge {
    const WINDOW: Duration = Duration::from_millis(200);

    fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        CpuGauge { cores, window: Mutex::new((Instant::now(), process_cpu_time().unwrap_or_default())) }
    }

    /// True when a whole window has passed and the process left more than
    /// half a core idle during it; each answer starts a new window, so
    /// workers are added one per window at most, each judged by the cores
    /// the ones before it left idle. Unknown CPU time counts as idle.
    fn room(&self) -> bool {
        let Some(cpu) = process_cpu_time() else { return true };
        let Ok(mut window) = self.window.lock() else { return true };
        let now = Instant::now();
        let elapsed = now.duration_since(window.0);
        if elapsed < Self::WINDOW {
            return false;
        }
        let used = cpu.saturating_sub(window.1).as_secs_f64() / elapsed.as_secs_f64();
        *window = (now, cpu);
        used < self.cores as f64 - 0.5
    }
}

/// User plus system CPU time of this process so far.
fn process_cpu_time() -> Option<Duration> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `rusage` into the pointer it is given and
    // reads nothing from it; RUSAGE_SELF is always valid.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return None;
        }
        usage.assume_init()
    };
    let time = |t: libc::timeval| -> Option<Duration> {
        Some(Duration::from_secs(u64::try_from(t.tv_sec).ok()?) + Duration::from_micros(u64::try_from(t.tv_usec).ok()?))
    };
    Some(time(usage.ru_utime)? + time(usage.ru_stime)?)
}

/// A job handed to a worker, with its table as the job's rows were
/// written (a package loaded while normalized can grow a table between
/// jobs).
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    pub info: JobInfo,
    pub table: Arc<Table>,
    /// Still in `new_jobs/`: the worker moves it to `started_jobs/`.
    pub fresh: bool,
}

/// The jobs of one package, in order, as they become loadable.
#[derive(Debug, Default)]
pub struct JobFeed {
    state: Mutex<FeedState>,
    wake: std::sync::Condvar,
}

#[derive(Debug, Default)]
struct FeedState {
    jobs: VecDeque<Queued>,
    /// More jobs may come.
    closed: bool,
    /// Jobs handed out so far.
    handed: usize,
    /// Tables with a job running (table-sequential).
    busy_tables: Vec<String>,
    /// Workers started and not running a job.
    free_workers: usize,
    /// The package's directory, from the first published job.
    dir: Option<PathBuf>,
}

impl JobFeed {
    /// An open, empty feed.
    pub fn new() -> Arc<Self> {
        Arc::new(JobFeed::default())
    }

    /// Adds a job of the package in `dir`, being normalized; `table` as
    /// its rows were written.
    pub fn publish(&self, dir: &std::path::Path, job: &JobInfo, table: &Table) {
        if let Ok(mut s) = self.state.lock() {
            s.dir.get_or_insert_with(|| dir.to_path_buf());
        }
        self.push(Queued { info: job.clone(), table: Arc::new(table.clone()), fresh: true });
    }

    /// Adds a job of a complete package (its table from the package's schema).
    fn queue(&self, job: &JobInfo, package: &Package, fresh: bool) -> Result<(), LoadError> {
        let Some(table) = package.schema.table(&job.table) else {
            return Err(PackageError::Damaged {
                path: package.dir().to_path_buf(),
                message: format!("table `{}` of job {} is not in the schema", job.table, job.job_id),
            }
            .into());
        };
        self.push(Queued { info: job.clone(), table: Arc::new(table.clone()), fresh });
        Ok(())
    }

    fn push(&self, job: Queued) {
        if let Ok(mut s) = self.state.lock() {
            s.jobs.push_back(job);
        }
        self.wake.notify_all();
    }

    /// No more jobs will come.
    pub fn close(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.closed = true;
        }
        self.wake.notify_all();
    }

    /// Waits until a job waits with no free worker to take it and either
    /// fewer than a worker per core run or the cores are not all busy
    /// (`true`: one more worker is counted as started and free), or the
    /// feed is closed and empty (`false`). `started`: workers so far.
    fn needs_worker(&self, started: usize, gauge: &CpuGauge) -> bool {
        let Ok(mut s) = self.state.lock() else { return false };
        loop {
            if s.jobs.is_empty() && s.closed {
                return false;
            }
            if s.jobs.len() > s.free_workers && (started < gauge.cores || gauge.room()) {
                s.free_workers += 1;
                return true;
            }
            // Woken by a job or a free worker, or now and then to look at
            // the cores again.
            s = match self.wake.wait_timeout(s, CpuGauge::WINDOW) {
                Ok((s, _)) => s,
                Err(_) => return false,
            };
        }
    }

    /// Waits until the first job is published (then the package's
    /// directory) or the feed is closed without any (`None`).
    fn wait_first(&self) -> Option<PathBuf> {
        let mut s = self.state.lock().ok()?;
        loop {
            if let Some(dir) = &s.dir {
                return Some(dir.clone());
            }
            if s.closed {
                return None;
            }
            s = self.wake.wait(s).ok()?;
        }
    }
}

/// State the workers of one package share.
struct Shared {
    /// The jobs to load.
    feed: Arc<JobFeed>,
    report: Mutex<LoadReport>,
    /// The first I/O error; it stops every worker.
    error: Mutex<Option<LoadError>>,
    /// The package's ledger.
    ledger: Ledger,
    /// Progress callback.
    progress: Option<ProgressHook>,
    /// Which jobs may run at once.
    strategy: Strategy,
    /// The run's stop request.
    cancel: Cancel,
    /// The package's span.
    trace: Span,
}

impl Shared {
    /// The next job this worker may run, or `None` when there is none left
    /// (the feed is closed and empty, or the load is stopping). Waits while
    /// the feed is open and empty, and under `table-sequential` while
    /// another job of the next job's table runs.
    fn next_job(&self) -> Option<Queued> {
        let mut feed = self.feed.state.lock().ok()?;
        loop {
            if self.cancel.is_cancelled() || self.error.lock().map(|e| e.is_some()).unwrap_or(true) {
                return None;
            }
            if feed.jobs.is_empty() && feed.closed {
                return None;
            }
            let pick = match self.strategy {
                _ if feed.jobs.is_empty() => None,
                Strategy::TableSequential => feed.jobs.iter().position(|j| !feed.busy_tables.contains(&j.info.table)),
                Strategy::Parallel | Strategy::Sequential => Some(0),
            };
            if let Some(job) = pick.and_then(|i| feed.jobs.remove(i)) {
                if self.strategy == Strategy::TableSequential {
                    feed.busy_tables.push(job.info.table.clone());
                }
                feed.handed += 1;
                feed.free_workers = feed.free_workers.saturating_sub(1);
                return Some(job);
            }
            // Woken by a new job, a finished one, the close, or now and then
            // to notice a stop request.
            feed = self.feed.wake.wait_timeout(feed, Duration::from_millis(100)).ok()?.0;
        }
    }

    /// Marks a job finished (frees its table under `table-sequential`).
    fn done(&self, job: &JobInfo) {
        if let Ok(mut feed) = self.feed.state.lock() {
            feed.busy_tables.retain(|t| t != &job.table);
            feed.free_workers += 1;
        }
        self.feed.wake.notify_all();
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

    /// Counts delivered rows of `table` and reports progress.
    fn delivered(&self, table: &str, rows: u64) {
        if let Ok(mut r) = self.report.lock() {
            let t = r.tables.entry(table.to_string()).or_default();
            t.rows += rows;
            // `finish` reports a job's end with its file's rows (a whole
            // file: one batch) or with none (its batches were counted).
            t.batches += u64::from(rows > 0);
            if let Some(p) = &self.progress {
                (p.0)(&r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(table: &str, n: u32) -> JobInfo {
        JobInfo {
            job_id: format!("{table}.{n}"),
            file_name: format!("{table}.{n}.0.jsonl"),
            table: table.into(),
            rows: 1,
        }
    }

    fn shared(strategy: Strategy, jobs: Vec<JobInfo>, dir: &std::path::Path) -> Shared {
        let feed = JobFeed::new();
        for j in jobs {
            feed.publish(dir, &j, &Table::new(&j.table));
        }
        feed.close();
        Shared {
            feed,
            report: Mutex::new(LoadReport::default()),
            error: Mutex::new(None),
            ledger: Ledger::open(dir).expect("ledger"),
            progress: None,
            strategy,
            cancel: Cancel::default(),
            trace: Span::default(),
        }
    }

    #[test]
    fn table_sequential_runs_one_job_per_table_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = shared(Strategy::TableSequential, vec![job("a", 1), job("a", 2), job("b", 1)], dir.path());
        let first = s.next_job().expect("a.1").info;
        let second = s.next_job().expect("b.1, not a.2 while a.1 runs").info;
        assert_eq!((first.job_id.as_str(), second.job_id.as_str()), ("a.1", "b.1"));
        // a.2 waits until a.1 is done.
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| s.next_job().map(|j| j.info.job_id));
            std::thread::sleep(Duration::from_millis(150));
            assert!(!waiter.is_finished(), "a.2 must wait for a.1");
            s.done(&first);
            assert_eq!(waiter.join().expect("join").as_deref(), Some("a.2"));
        });
    }

    #[test]
    fn parallel_hands_out_jobs_in_order_regardless_of_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = shared(Strategy::Parallel, vec![job("a", 1), job("a", 2)], dir.path());
        assert_eq!(s.next_job().map(|j| j.info.job_id).as_deref(), Some("a.1"));
        assert_eq!(s.next_job().map(|j| j.info.job_id).as_deref(), Some("a.2"));
        assert!(s.next_job().is_none());
    }
}
