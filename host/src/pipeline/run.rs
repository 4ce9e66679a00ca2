//! `run`: the order that keeps reruns safe.
//!
//! 1. Finish what an earlier run left pending (a rerun after a crash
//!    resumes before it reads anything new).
//! 2. Fingerprint the input before reading it; if a package of the same
//!    input was loaded, send nothing.
//! 3. Package the input; stdin's fingerprint is known only now, so check
//!    again and drop the fresh package if that input was loaded.
//! 4. Load.
//!
//! For files (fingerprinted in step 2) steps 3 and 4 overlap: the package
//! is written in place and each job is loaded as soon as its file is
//! durable, so both cores work from the first row to the last. A package
//! whose normalizing was interrupted (a crash, a stop, a bad line) is
//! normalized again in step 1 before anything is loaded; see
//! `package`'s module doc for why no row is then sent under a second key.

use std::path::PathBuf;
use std::sync::Arc;

use super::{PipelineError, Sink};
use crate::extract::{self, ExtractError, ExtractOptions, InputSpec, Target};
use crate::input::InputSource;
use crate::load::{self, JobFailure, JobFeed, LoadOptions, LoadReport, ProgressHook};
use crate::package::{Decision, Package, PackageError, PipelineDir, Rotation};
use crate::schema::Table;
use crate::telemetry::{Attr, Span};

/// Deliver the input, or only show what a sink would get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Package and load (`host run`).
    Load,
    /// Package only (`host normalize`): a dry run that keeps the package
    /// pending and the grown schema only when `keep`.
    DryRun {
        /// Keep the package pending for `host load`.
        keep: bool,
    },
}

/// What to read and how.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The inputs, each with its table.
    pub inputs: Vec<InputSpec>,
    /// Load or dry run.
    pub mode: Mode,
    /// Package and load the input even if it was loaded before.
    pub force: bool,
    /// Skip malformed lines (kept in the package) instead of failing.
    pub skip_bad_lines: bool,
    /// The largest input record, in bytes.
    pub max_record_bytes: usize,
    /// Gzip jsonl job files.
    pub gzip_jobs: bool,
    /// Threads that parse and normalize.
    pub normalize_threads: usize,
}

impl RunRequest {
    /// Loads `inputs` with the defaults of `host run`: malformed lines
    /// fail the run, the catalog's record limit, plain job files, a
    /// normalizing thread per core.
    pub fn new(inputs: Vec<InputSpec>) -> Self {
        RunRequest {
            inputs,
            mode: Mode::Load,
            force: false,
            skip_bad_lines: false,
            max_record_bytes: crate::input::RecordLimit::default().max_bytes,
            gzip_jobs: false,
            normalize_threads: extract::default_threads(),
        }
    }
}

/// The input had been loaded before; nothing was sent for it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlreadyLoaded {
    /// The package that loaded it.
    pub load_id: String,
    /// Jobs of that package that failed terminally (their rows are in the
    /// report's `earlier_failures`).
    pub failed_jobs: usize,
}

/// The package this run wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// Input records read.
    pub records: u64,
    /// Rows written, over all tables.
    pub rows: u64,
    /// The package directory (pending).
    pub package: PathBuf,
    /// Malformed lines skipped and kept in the package.
    pub bad_lines: u64,
}

/// A table of a dry run's package.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRows {
    /// The table and its columns.
    pub table: Table,
    /// Its rows in the package.
    pub rows: u64,
}

/// What a dry run found.
#[derive(Debug, Clone, PartialEq)]
pub struct DryRun {
    /// The tables a sink would get, with their rows.
    pub tables: Vec<TableRows>,
    /// The pending package, when kept.
    pub kept: Option<PathBuf>,
}

/// The result of [`run`]. Its `report` decides the exit code.
#[derive(Debug, Clone, Default)]
pub struct RunOutcome {
    /// What was delivered and what failed.
    pub report: LoadReport,
    /// Set when the input had been loaded before.
    pub already_loaded: Option<AlreadyLoaded>,
    /// The new package, when one was written and kept.
    pub normalized: Option<Normalized>,
    /// A dry run's findings.
    pub dry_run: Option<DryRun>,
}

/// Hears about a run as it goes, to draw progress. Every method does
/// nothing by default.
pub trait Observer: Send + Sync {
    /// Pending packages are loaded before the input is read.
    fn resuming(&self) {}
    /// Reading starts; `total_bytes` of files (none for stdin).
    fn normalizing(&self, _total_bytes: Option<u64>) {}
    /// Records and bytes read so far.
    fn normalize_progress(&self, _records: u64, _bytes: u64) {}
    /// Reading ended (also on an error).
    fn normalize_done(&self) {}
    /// A package was written and will be loaded.
    fn normalized(&self, _normalized: &Normalized) {}
    /// Loading starts: rows pending over all packages.
    fn loading(&self, _rows: u64) {}
    /// After each delivered batch: the report so far.
    fn load_progress(&self, _report: &LoadReport) {}
    /// Loading ended (also on an error).
    fn load_done(&self) {}
}

/// An observer that hears nothing.
impl Observer for () {}

/// Several observers, each told everything in turn.
impl Observer for Vec<Arc<dyn Observer>> {
    fn resuming(&self) {
        self.iter().for_each(|o| o.resuming());
    }
    fn normalizing(&self, total_bytes: Option<u64>) {
        self.iter().for_each(|o| o.normalizing(total_bytes));
    }
    fn normalize_progress(&self, records: u64, bytes: u64) {
        self.iter().for_each(|o| o.normalize_progress(records, bytes));
    }
    fn normalize_done(&self) {
        self.iter().for_each(|o| o.normalize_done());
    }
    fn normalized(&self, normalized: &Normalized) {
        self.iter().for_each(|o| o.normalized(normalized));
    }
    fn loading(&self, rows: u64) {
        self.iter().for_each(|o| o.loading(rows));
    }
    fn load_progress(&self, report: &LoadReport) {
        self.iter().for_each(|o| o.load_progress(report));
    }
    fn load_done(&self) {
        self.iter().for_each(|o| o.load_done());
    }
}

/// Runs the pipeline of `sink` on `request`; see the module doc for the
/// order. Errors are those of opening, reading and packaging: a job that
/// fails is in the outcome's report, not an error.
pub fn run(sink: &Sink, request: &RunRequest, observer: Arc<dyn Observer>) -> Result<RunOutcome, PipelineError> {
    let pipeline = &sink.pipeline;
    let _lock = pipeline.lock()?;
    let shard = sink.shard.map(|s| s.dir_name()).unwrap_or_default();
    let trace = Span::default().child(
        "dlthost.run",
        &[
            Attr::Text("dlthost.sink", sink.runtime.name()),
            Attr::Text("dlthost.pipeline", &sink.pipeline_name),
            Attr::Text("dlthost.shard", &shard),
        ],
    );
    let outcome = run_traced(sink, request, observer, &trace);
    if let Ok(o) = &outcome {
        trace.set(&[Attr::Count("dlthost.rows", o.report.rows())]);
        if !o.report.ok() {
            trace.fail(if o.report.interrupted { "interrupted" } else { "failed_jobs" });
        }
    } else {
        trace.fail("error");
    }
    trace.end();
    outcome
}

/// [`run`] under its span.
fn run_traced(
    sink: &Sink,
    request: &RunRequest,
    observer: Arc<dyn Observer>,
    trace: &Span,
) -> Result<RunOutcome, PipelineError> {
    let pipeline = &sink.pipeline;
    let inputs = match sink.shard {
        Some(shard) => shard.select(request.inputs.clone())?,
        None => request.inputs.clone(),
    };
    let loading = request.mode == Mode::Load;
    let mut outcome = RunOutcome::default();
    if loading && !pipeline.pending()?.is_empty() {
        observer.resuming();
        finish_interrupted(sink, request.normalize_threads)?;
        let options = LoadOptions { trace: trace.clone(), ..sink.load.clone() };
        load::load_pending(&sink.runtime, pipeline, &options, &mut outcome.report)?;
        if !outcome.report.ok() {
            return Ok(outcome);
        }
    }
    let normalize = &sink.settings.normalize;
    let format = sink.settings.loader_file_format;
    if inputs.is_empty() {
        return Ok(outcome);
    }
    if loading && extract::all_files(&inputs) {
        load_while_packaging(sink, request, &inputs, &observer, trace, &mut outcome)?;
        return Ok(outcome);
    }
    let fingerprint = extract::fingerprint_files(&inputs, normalize, format)?;
    if let Some(fp) = &fingerprint
        && let Some(load_id) = pipeline.loaded_fingerprint(fp)?
        && !request.force
    {
        outcome.already_loaded = Some(already_loaded(pipeline, load_id, &mut outcome.report)?);
        return Ok(outcome);
    }
    let Some(package) = package_input(sink, request, &inputs, fingerprint.as_deref(), &observer, &mut outcome)? else {
        return Ok(outcome);
    };
    match request.mode {
        Mode::DryRun { keep } => outcome.dry_run = Some(dry_run(&package, keep)?),
        Mode::Load => load_pending(sink, &observer, trace, &mut outcome.report)?,
    }
    Ok(outcome)
}

/// `host load`: delivers the pipeline's pending packages and reads no
/// input. The report says what was delivered and what failed.
pub fn load(sink: &Sink, observer: Arc<dyn Observer>) -> Result<LoadReport, PipelineError> {
    let _lock = sink.pipeline.lock()?;
    finish_interrupted(sink, crate::extract::default_threads())?;
    let mut report = LoadReport::default();
    let trace = Span::default().child(
        "dlthost.load",
        &[Attr::Text("dlthost.sink", sink.runtime.name()), Attr::Text("dlthost.pipeline", &sink.pipeline_name)],
    );
    load_pending(sink, &observer, &trace, &mut report)?;
    trace.set(&[Attr::Count("dlthost.rows", report.rows())]);
    Ok(report)
}

/// Step 4: loads every pending package, telling `observer` how it goes.
fn load_pending(
    sink: &Sink,
    observer: &Arc<dyn Observer>,
    trace: &Span,
    report: &mut LoadReport,
) -> Result<(), PipelineError> {
    let rows: u64 = sink.pipeline.pending()?.iter().flat_map(|p| p.state.jobs.iter().map(|j| j.rows)).sum();
    observer.loading(rows);
    let mut options = LoadOptions { trace: trace.clone(), ..sink.load.clone() };
    let shown = observer.clone();
    options.progress = Some(ProgressHook(Arc::new(move |r: &LoadReport| shown.load_progress(r))));
    let loaded = load::load_pending(&sink.runtime, &sink.pipeline, &options, report);
    observer.load_done();
    Ok(loaded?)
}

/// Step 3: reads the input into a new pending package. `None` when there
/// was nothing to package, or the package was dropped because its input
/// (stdin, fingerprinted while read) had been loaded before.
fn package_input(
    sink: &Sink,
    request: &RunRequest,
    inputs: &[InputSpec],
    fingerprint: Option<&str>,
    observer: &Arc<dyn Observer>,
    outcome: &mut RunOutcome,
) -> Result<Option<PathBuf>, PipelineError> {
    let pipeline = &sink.pipeline;
    observer.normalizing(input_bytes(inputs));
    let progress = |records: u64, bytes: u64| observer.normalize_progress(records, bytes);
    let options = extract_options(sink, request, fingerprint, &progress, Target::Whole);
    let extracted = extract::extract(pipeline, inputs, &sink.settings.normalize, options);
    observer.normalize_done();
    let extracted = extracted?;
    let Some(path) = extracted.package.clone() else { return Ok(None) };
    if let Some(load_id) = pipeline.loaded_fingerprint(&extracted.fingerprint)?
        && !request.force
    {
        Package::open(&path)?.discard()?;
        outcome.already_loaded = Some(already_loaded(pipeline, load_id, &mut outcome.report)?);
        return Ok(None);
    }
    let normalized = normalized(&extracted, &path, &mut outcome.report);
    observer.normalized(&normalized);
    outcome.normalized = Some(normalized);
    Ok(Some(path))
}

/// What a package holds, for the observer and the outcome; skipped lines
/// go into the report.
fn normalized(extracted: &extract::Extracted, path: &std::path::Path, report: &mut LoadReport) -> Normalized {
    if extracted.bad_lines > 0 {
        report.skipped_lines = extracted.bad_lines;
        report.skipped_lines_package = path.file_name().map(|n| n.to_string_lossy().into_owned());
    }
    Normalized {
        records: extracted.records,
        rows: extracted.rows,
        package: path.to_path_buf(),
        bad_lines: extracted.bad_lines,
    }
}

/// The bytes of the input files (none for stdin).
fn input_bytes(inputs: &[InputSpec]) -> Option<u64> {
    let total: u64 = inputs
        .iter()
        .filter_map(|i| match &i.source {
            InputSource::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            InputSource::Stdin => None,
        })
        .sum();
    (total > 0).then_some(total)
}

/// How this run extracts into `target`.
fn extract_options<'a>(
    sink: &'a Sink,
    request: &RunRequest,
    fingerprint: Option<&'a str>,
    progress: &'a dyn Fn(u64, u64),
    target: Target<'a>,
) -> ExtractOptions<'a> {
    ExtractOptions {
        format: sink.settings.loader_file_format,
        rotation: sink.rotation,
        known_fingerprint: fingerprint,
        skip_bad_lines: request.skip_bad_lines,
        save_schema: request.mode != (Mode::DryRun { keep: false }),
        max_record_bytes: request.max_record_bytes,
        gzip: request.gzip_jobs,
        progress,
        threads: request.normalize_threads.max(1),
        cancel: &sink.cancel,
        load_id_residue: sink.shard.map(|s| (u64::from(s.index), u64::from(s.count))),
        target,
    }
}

/// Steps 2, 3 and 4 at once, for files: the input is fingerprinted on one
/// thread while it is normalized on others, and each job is loaded as soon
/// as its file is durable. No job is listed (so none is loaded) before the
/// fingerprint says the input was not loaded before; if it was, the
/// package is withdrawn and nothing is sent. When normalizing fails after
/// jobs were published, the package stays pending and the error says how
/// many rows were delivered.
fn load_while_packaging(
    sink: &Sink,
    request: &RunRequest,
    inputs: &[InputSpec],
    observer: &Arc<dyn Observer>,
    trace: &Span,
    outcome: &mut RunOutcome,
) -> Result<(), PipelineError> {
    let feed = JobFeed::new();
    let publishing = feed.clone();
    // Load progress is drawn once normalizing is done (one bar at a time).
    let normalizing_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut options = LoadOptions { trace: trace.clone(), ..sink.load.clone() };
    let (shown, done) = (observer.clone(), normalizing_done.clone());
    options.progress = Some(ProgressHook(Arc::new(move |r: &LoadReport| {
        if done.load(std::sync::atomic::Ordering::Relaxed) {
            shown.load_progress(r)
        }
    })));
    observer.normalizing(input_bytes(inputs));
    let checked = Arc::new(Later::<Result<Checked, PipelineError>>::default());
    let loaded = std::thread::scope(|scope| {
        let check = checked.clone();
        scope.spawn(move || check.set(check_input(sink, inputs, request.force)));
        let answer = checked.clone();
        let verdict: crate::package::Verdict = Box::new(move |wait| {
            let checked = if wait { answer.wait() } else { answer.peek() };
            match &*checked {
                None => Decision::Pending,
                Some(Ok(Checked::New(fingerprint))) => Decision::Publish(fingerprint.clone()),
                Some(_) => Decision::Withdraw,
            }
        });
        let mut gate = TestGate::from_env();
        let normalize = || {
            let progress = |records: u64, bytes: u64| observer.normalize_progress(records, bytes);
            let publish =
                Box::new(move |dir: &std::path::Path, job: &crate::package::JobInfo, table: &crate::schema::Table| {
                    publishing.publish(dir, job, table);
                    gate.pass();
                });
            let options = extract_options(sink, request, None, &progress, Target::InPlace { publish, verdict });
            let extracted = extract::extract(&sink.pipeline, inputs, &sink.settings.normalize, options);
            observer.normalize_done();
            if let Ok(e) = &extracted {
                observer.loading(e.rows);
            }
            normalizing_done.store(true, std::sync::atomic::Ordering::Relaxed);
            extracted
        };
        let mut report = std::mem::take(&mut outcome.report);
        let loaded =
            load::load_while_normalizing(&sink.runtime, &sink.pipeline, &options, &mut report, feed, normalize);
        outcome.report = report;
        loaded
    });
    observer.load_done();
    let checked = checked.take();
    match loaded? {
        Ok(extracted) => {
            if let Some(path) = &extracted.package {
                let path = outcome
                    .report
                    .packages_loaded
                    .last()
                    .filter(|p| p.ends_with(path.file_name().unwrap_or_default()))
                    .cloned()
                    .unwrap_or_else(|| path.clone());
                let normalized = normalized(&extracted, &path, &mut outcome.report);
                observer.normalized(&normalized);
                outcome.normalized = Some(normalized);
            }
            Ok(())
        }
        Err(ExtractError::Package(PackageError::Withdrawn)) => match checked {
            Some(Ok(Checked::Loaded(load_id))) => {
                outcome.already_loaded = Some(already_loaded(&sink.pipeline, load_id, &mut outcome.report)?);
                Ok(())
            }
            Some(Err(e)) => Err(e),
            _ => Err(ExtractError::Package(PackageError::Withdrawn).into()),
        },
        Err(source) => match outcome.report.packages_pending.first() {
            Some(package) => Err(PipelineError::NormalizeStopped {
                error: Box::new(source),
                package: package.clone(),
                rows: outcome.report.rows(),
            }),
            None => Err(source.into()),
        },
    }
}

/// What step 2 found about the input.
enum Checked {
    /// Not loaded before (or `--force`): its fingerprint.
    New(String),
    /// Loaded before, by this package.
    Loaded(String),
}

/// Step 2 for files: fingerprint them and look the fingerprint up.
fn check_input(sink: &Sink, inputs: &[InputSpec], force: bool) -> Result<Checked, PipelineError> {
    let fingerprint =
        extract::fingerprint_files(inputs, &sink.settings.normalize, sink.settings.loader_file_format)?
            .ok_or_else(|| PipelineError::Usage("an input that is not a file cannot be fingerprinted ahead".into()))?;
    Ok(match sink.pipeline.loaded_fingerprint(&fingerprint)? {
        Some(load_id) if !force => Checked::Loaded(load_id),
        _ => Checked::New(fingerprint),
    })
}

/// A value one thread sets and others wait for.
struct Later<T> {
    value: std::sync::Mutex<Option<T>>,
    set: std::sync::Condvar,
}

impl<T> Default for Later<T> {
    fn default() -> Self {
        Later { value: std::sync::Mutex::new(None), set: std::sync::Condvar::new() }
    }
}

impl<T> Later<T> {
    fn set(&self, value: T) {
        if let Ok(mut slot) = self.value.lock() {
            *slot = Some(value);
        }
        self.set.notify_all();
    }

    /// Waits until the value is set (`None` only if the lock was poisoned).
    fn wait(&self) -> std::sync::MutexGuard<'_, Option<T>> {
        let mut slot = match self.value.lock() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        while slot.is_none() {
            slot = match self.set.wait(slot) {
                Ok(slot) => slot,
                Err(poisoned) => poisoned.into_inner(),
            };
        }
        slot
    }

    /// The value as it is now (`None`: not set yet).
    fn peek(&self) -> std::sync::MutexGuard<'_, Option<T>> {
        match self.value.lock() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The value, if set.
    fn take(&self) -> Option<T> {
        self.value.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// A hook for tests that must act inside the overlap of normalizing and
/// loading (a kill at a moment they choose, not one guessed from timing):
/// with `DLTHOST_TEST_NORMALIZE_GATE` naming a FIFO, normalizing waits after
/// each published job until the test writes one byte to it.
struct TestGate(Option<std::fs::File>);

impl TestGate {
    fn from_env() -> Self {
        TestGate(std::env::var_os("DLTHOST_TEST_NORMALIZE_GATE").and_then(|p| std::fs::File::open(p).ok()))
    }

    /// Waits for the test's byte (at once without the hook, or once the test closed the FIFO).
    fn pass(&mut self) {
        if let Some(f) = &mut self.0 {
            let mut byte = [0u8; 1];
            if !matches!(std::io::Read::read(f, &mut byte), Ok(1)) {
                self.0 = None;
            }
        }
    }
}

/// Step 1's first half: normalizes again every pending package whose
/// normalizing was interrupted, so it can be loaded like any other. Its
/// input files are read again; rows already handed to the sink must come
/// out the same.
fn finish_interrupted(sink: &Sink, threads: usize) -> Result<(), PipelineError> {
    for package in sink.pipeline.pending()? {
        let Some(target) = Target::resume_of(&package) else { continue };
        if package.state.fingerprint.is_empty() {
            // Stopped before its input was checked: no job was handed out
            // (and its input may have been loaded before).
            package.discard()?;
            continue;
        }
        let options = ExtractOptions {
            format: package.state.file_format,
            // The package's recipe decides these.
            rotation: Rotation::default(),
            known_fingerprint: None,
            skip_bad_lines: false,
            max_record_bytes: 0,
            gzip: false,
            save_schema: true,
            progress: &|_, _| {},
            threads: threads.max(1),
            cancel: &sink.cancel,
            load_id_residue: None,
            target,
        };
        extract::extract(&sink.pipeline, &[], &package.state.normalize, options).map_err(|source| {
            PipelineError::Resume { package: package.dir().to_path_buf(), error: Box::new(source) }
        })?;
    }
    Ok(())
}

/// The input was loaded before, as package `load_id`. When jobs of that
/// package failed, its rows were not all delivered: they go into the
/// report's `earlier_failures` (the run then ends as a terminal failure).
fn already_loaded(
    pipeline: &PipelineDir,
    load_id: String,
    report: &mut LoadReport,
) -> Result<AlreadyLoaded, PipelineError> {
    let failed = pipeline.failed_jobs(&load_id)?;
    for (job, error) in &failed {
        report.earlier_failures.push(JobFailure {
            load_id: load_id.clone(),
            job_id: job.job_id.clone(),
            table: job.table.clone(),
            start_row: 0,
            row_count: job.rows,
            terminal: true,
            rows_left: job.rows,
            error: error.strip_prefix("terminal: ").unwrap_or(error).to_string(),
        });
    }
    Ok(AlreadyLoaded { load_id, failed_jobs: failed.len() })
}

/// A dry run's tables; the package is discarded unless `keep`.
fn dry_run(path: &std::path::Path, keep: bool) -> Result<DryRun, PipelineError> {
    let package = Package::open(path)?;
    let rows = |table: &str| package.state.jobs.iter().filter(|j| j.table == table).map(|j| j.rows).sum();
    let tables = package
        .schema
        .tables
        .iter()
        .filter(|t| package.state.jobs.iter().any(|j| j.table == t.name))
        .map(|t| TableRows { table: t.clone(), rows: rows(&t.name) })
        .collect();
    if keep {
        return Ok(DryRun { tables, kept: Some(path.to_path_buf()) });
    }
    package.discard()?;
    Ok(DryRun { tables, kept: None })
}
