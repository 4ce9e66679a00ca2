//! One worker: takes jobs from the queue and delivers their batches.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{JobFailure, LoadError, LoadOptions, Queued, Shared};
use crate::ledger::Record;
use crate::package::JobReader;
use crate::package::{FileFormat, JobInfo, JobState, Package, PackageError, PipelineDir};
use crate::package::{ParquetJobReader, batch_rows, to_ipc};
use crate::runtime::bindings::{BatchContext, Compression, ItemFormat, Items, JobFile, SinkError};
use crate::runtime::{CallError, JOB_DIR_GUEST, RuntimeError, SinkRuntime, convert};
use crate::runtime::{Guarded, LoadCall};
use crate::stop::Cancel;
use crate::telemetry::{Attr, Span};

/// The idempotency key of a batch: the same for the same rows of the same
/// job of the same package, whatever the attempt, run or batch size.
pub fn idempotency_key(load_id: &str, job_id: &str, start_row: u64, row_count: u64) -> String {
    let digest = Sha256::digest(format!("{load_id}\u{0}{job_id}\u{0}{start_row}\u{0}{row_count}").as_bytes());
    hex::encode(&digest[..16])
}

/// How delivering one batch ended.
enum Outcome {
    Delivered,
    /// Stopped on request; the job stays in `started_jobs/`.
    Interrupted,
    /// Give up on the job for this run; it stays in `started_jobs/`.
    Exhausted(String),
    /// Move the job to `failed_jobs/`.
    Terminal(String),
}

/// A worker's instance, created on first use and replaced after traps.
struct Slot<'a> {
    runtime: &'a SinkRuntime,
    handle_dir: Option<PathBuf>,
    instance: Option<Guarded>,
}

impl Slot<'_> {
    fn get(&mut self) -> Result<&mut Guarded, RuntimeError> {
        if self.instance.as_ref().is_some_and(Guarded::worn_out) {
            // Linear memory never shrinks: start fresh now and then.
            self.instance = None;
        }
        if self.instance.is_none() {
            self.instance = Some(self.runtime.guarded(self.handle_dir.as_deref())?);
        }
        // Just filled above.
        self.instance.as_mut().ok_or_else(|| RuntimeError::Instantiate {
            sink: self.runtime.name().into(),
            message: "no instance".into(),
        })
    }
}

pub(super) fn worker(
    runtime: &SinkRuntime,
    pipeline: &PipelineDir,
    package: &Package,
    options: &LoadOptions,
    shared: &Shared,
) {
    // Whole-file delivery: a directory of this worker's that holds only the
    // current job file, mounted read-only in the guest.
    let handle_dir = if options.batch_size == 0 {
        match tempfile::Builder::new().prefix("handles-").tempdir_in(pipeline.root().join("load")) {
            Ok(d) => Some(d),
            Err(e) => {
                return shared.fail(
                    PackageError::Io {
                        action: "create handle directory in",
                        path: pipeline.root().to_path_buf(),
                        source: e,
                    }
                    .into(),
                );
            }
        }
    } else {
        None
    };
    let mut slot = Slot { runtime, handle_dir: handle_dir.as_ref().map(|d| d.path().to_path_buf()), instance: None };
    while let Some(job) = shared.next_job() {
        let started = if job.fresh { package.move_job(&job.info, JobState::New, JobState::Started) } else { Ok(()) };
        if let Err(e) =
            started.map_err(LoadError::from).and_then(|()| deliver_job(&mut slot, package, &job, options, shared))
        {
            shared.fail(e);
        }
        shared.done(&job.info);
    }
}

fn deliver_job(
    slot: &mut Slot<'_>,
    package: &Package,
    queued: &Queued,
    options: &LoadOptions,
    shared: &Shared,
) -> Result<(), LoadError> {
    let (job, table) = (&queued.info, &*queued.table);
    let wit_table = std::sync::Arc::new(convert::table(table));
    let trace = shared.trace.child(
        "dlthost.job",
        &[
            Attr::Text("dlthost.table", &job.table),
            Attr::Text("dlthost.job_id", &job.job_id),
            Attr::Count("dlthost.rows", job.rows),
        ],
    );
    let path = package.job_path(job, JobState::Started);
    let load_id = &package.state.load_id;
    let already = shared.ledger.delivered(&job.job_id);
    let mut ctx = BatchContext {
        load_id: load_id.clone(),
        job_id: job.job_id.clone(),
        batch_index: 0,
        start_row: already,
        row_count: 0,
        idempotency_key: String::new(),
        attempt: 1,
    };
    if already >= job.rows {
        // Every row was confirmed before a crash; only the move is left.
        return finish(package, job, &ctx, Outcome::Delivered, shared, 0);
    }

    if options.batch_size == 0 {
        let Some(dir) = slot.handle_dir.clone() else { return Ok(()) };
        let exposed = expose_file(&path, &dir, &job.file_name)?;
        ctx.row_count = job.rows;
        ctx.idempotency_key = idempotency_key(load_id, &job.job_id, 0, job.rows);
        let items = std::sync::Arc::new(Items::File(JobFile {
            path: format!("{JOB_DIR_GUEST}/{}", job.file_name),
            format: convert::file_format(package.state.file_format),
            compression: if job.file_name.ends_with(".gz") { Compression::Gzip } else { Compression::None },
            row_count: job.rows,
        }));
        let outcome = deliver_batch(
            slot,
            &mut Batch { table: &wit_table, ctx: &mut ctx, items: &items },
            options,
            shared,
            &trace,
        );
        let _ = std::fs::remove_file(&exposed);
        let rows = match outcome {
            Outcome::Delivered => {
                shared.ledger.append(Record::Delivered { job: job.job_id.clone(), rows: job.rows })?;
                job.rows
            }
            _ => 0,
        };
        return finish(package, job, &ctx, outcome, shared, rows);
    }

    let mut batches = Batches::open(package, table, &path, already, options)?;
    loop {
        if options.cancel.is_cancelled() {
            return finish(package, job, &ctx, Outcome::Interrupted, shared, 0);
        }
        let Some((start_row, row_count, items)) = batches.next()? else { break };
        ctx.start_row = start_row;
        ctx.row_count = row_count;
        ctx.idempotency_key = idempotency_key(load_id, &job.job_id, ctx.start_row, ctx.row_count);
        ctx.attempt = 1;
        let items = std::sync::Arc::new(items);
        match deliver_batch(
            slot,
            &mut Batch { table: &wit_table, ctx: &mut ctx, items: &items },
            options,
            shared,
            &trace,
        ) {
            Outcome::Delivered => {
                // Durable before the next batch of this job is sent.
                shared
                    .ledger
                    .append(Record::Delivered { job: job.job_id.clone(), rows: ctx.start_row + ctx.row_count })?;
                shared.delivered(&job.table, ctx.row_count);
                ctx.batch_index += 1;
            }
            other => return finish(package, job, &ctx, other, shared, 0),
        }
    }
    finish(package, job, &ctx, Outcome::Delivered, shared, 0)
}

/// Batches of one job file, in the form the sink asked for.
enum Batches<'a> {
    Jsonl {
        reader: JobReader,
        table: &'a crate::schema::Table,
        batch_size: usize,
        max_bytes: Option<u64>,
    },
    Parquet {
        reader: ParquetJobReader,
        table: &'a crate::schema::Table,
        path: PathBuf,
        ipc: bool,
        max_bytes: Option<u64>,
        /// Slices of a record batch cut by `max_bytes`, not yet sent.
        queued: std::collections::VecDeque<(u64, arrow::record_batch::RecordBatch)>,
    },
}

impl<'a> Batches<'a> {
    fn open(
        package: &Package,
        table: &'a crate::schema::Table,
        path: &Path,
        skip: u64,
        options: &LoadOptions,
    ) -> Result<Self, PackageError> {
        let batch_size = options.batch_size.max(1) as usize;
        Ok(match package.state.file_format {
            FileFormat::Jsonl => Batches::Jsonl {
                reader: JobReader::open(path, skip)?,
                table,
                batch_size,
                max_bytes: options.max_batch_bytes,
            },
            FileFormat::Parquet => Batches::Parquet {
                reader: ParquetJobReader::open(path, skip, batch_size)?,
                table,
                path: path.to_path_buf(),
                ipc: options.item_format == ItemFormat::ArrowIpc,
                max_bytes: options.max_batch_bytes,
                queued: std::collections::VecDeque::new(),
            },
        })
    }

    /// `(start row, row count, items)` of the next batch.
    fn next(&mut self) -> Result<Option<(u64, u64, Items)>, PackageError> {
        match self {
            Batches::Jsonl { reader, table, batch_size, max_bytes } => {
                Ok(reader.next_batch(table, *batch_size, *max_bytes)?.map(|b| {
                    let n = b.rows.len() as u64;
                    (b.start_row, n, Items::Rows(b.rows.into_iter().map(convert::row).collect()))
                }))
            }
            Batches::Parquet { reader, table, path, ipc, max_bytes, queued } => {
                if queued.is_empty() {
                    let Some((start, batch)) = reader.next_record_batch(table)? else { return Ok(None) };
                    queued.extend(split_by_bytes(start, batch, *max_bytes));
                }
                let Some((start, batch)) = queued.pop_front() else { return Ok(None) };
                let n = batch.num_rows() as u64;
                let items = if *ipc {
                    Items::ArrowIpc(
                        to_ipc(&batch)
                            .map_err(|e| PackageError::Damaged { path: path.clone(), message: e.to_string() })?,
                    )
                } else {
                    Items::Rows(batch_rows(&batch, table, path)?.into_iter().map(convert::row).collect())
                };
                Ok(Some((start, n, items)))
            }
        }
    }
}

/// Cuts a record batch into slices of at most `max_bytes` (by Arrow's memory
/// size, pro rata per row; at least one row per slice).
fn split_by_bytes(
    start: u64,
    batch: arrow::record_batch::RecordBatch,
    max_bytes: Option<u64>,
) -> Vec<(u64, arrow::record_batch::RecordBatch)> {
    let rows = batch.num_rows();
    let size = batch.get_array_memory_size() as u64;
    let Some(cap) = max_bytes.filter(|cap| size > *cap && rows > 1) else { return vec![(start, batch)] };
    let per_slice = ((rows as u64 * cap) / size).max(1) as usize;
    (0..rows)
        .step_by(per_slice)
        .map(|offset| (start + offset as u64, batch.slice(offset, per_slice.min(rows - offset))))
        .collect()
}

/// Records how a job ended and moves its file; `rows` are delivered rows not
/// yet counted (whole-file delivery counts them here).
fn finish(
    package: &Package,
    job: &JobInfo,
    ctx: &BatchContext,
    outcome: Outcome,
    shared: &Shared,
    rows: u64,
) -> Result<(), LoadError> {
    shared.delivered(&job.table, rows);
    let failure = |terminal, error: String| JobFailure {
        load_id: package.state.load_id.clone(),
        job_id: job.job_id.clone(),
        table: job.table.clone(),
        start_row: ctx.start_row,
        row_count: ctx.row_count,
        terminal,
        rows_left: job.rows.saturating_sub(ctx.start_row),
        error,
    };
    match outcome {
        Outcome::Delivered => {
            package.move_job(job, JobState::Started, JobState::Completed)?;
            shared.with_report(|r| r.tables.entry(job.table.clone()).or_default().jobs += 1);
        }
        Outcome::Terminal(error) => {
            package.move_job(job, JobState::Started, JobState::Failed)?;
            package.record_failure(job, &format!("terminal: {error}\n"))?;
            shared.with_report(|r| r.failures.push(failure(true, error)));
        }
        Outcome::Exhausted(error) => shared.with_report(|r| r.failures.push(failure(false, error))),
        Outcome::Interrupted => shared.with_report(|r| r.interrupted = true),
    }
    Ok(())
}

/// One batch on its way: its table, its context (the attempt counts up)
/// and its rows.
struct Batch<'a> {
    table: &'a std::sync::Arc<crate::runtime::bindings::TableSchema>,
    ctx: &'a mut BatchContext,
    items: &'a std::sync::Arc<Items>,
}

/// [`try_batch`] in a span of its own under the job's: the batch's table,
/// rows, idempotency key, attempts and outcome (never the sink's message).
fn deliver_batch(
    slot: &mut Slot<'_>,
    batch: &mut Batch<'_>,
    options: &LoadOptions,
    shared: &Shared,
    job: &Span,
) -> Outcome {
    let (table, ctx) = (batch.table, &batch.ctx);
    let span = job.child(
        "dlthost.batch",
        &[
            Attr::Text("dlthost.sink", slot.runtime.name()),
            Attr::Text("dlthost.table", &table.name),
            Attr::Count("dlthost.start_row", ctx.start_row),
            Attr::Count("dlthost.rows", ctx.row_count),
            Attr::Text("dlthost.idempotency_key", &ctx.idempotency_key),
        ],
    );
    let outcome = try_batch(slot, batch, options, shared, &span);
    span.set(&[Attr::Count("dlthost.attempt", u64::from(batch.ctx.attempt))]);
    match &outcome {
        Outcome::Delivered => span.set(&[Attr::Text("dlthost.outcome", "delivered")]),
        Outcome::Interrupted => span.fail("interrupted"),
        Outcome::Exhausted(_) => span.fail("retries_exhausted"),
        Outcome::Terminal(_) => span.fail("terminal"),
    }
    span.end();
    outcome
}

/// Calls the sink until the batch is delivered, fails terminally, or the
/// attempts run out. A trap replaces the instance and is retried once.
fn try_batch(
    slot: &mut Slot<'_>,
    batch: &mut Batch<'_>,
    options: &LoadOptions,
    shared: &Shared,
    span: &Span,
) -> Outcome {
    let (table, items, ctx) = (batch.table, batch.items, &mut *batch.ctx);
    let runtime = slot.runtime;
    let mut traps = 0;
    let mut backoff = options.backoff;
    loop {
        let instance = match slot.get() {
            Ok(i) => i,
            Err(e) => return Outcome::Terminal(e.to_string()),
        };
        shared.with_report(|r| {
            r.calls += 1;
            if ctx.attempt > 1 {
                r.retries += 1;
            }
        });
        let call = LoadCall { table: table.clone(), ctx: ctx.clone(), items: items.clone() };
        instance.set_trace(span);
        let last_error = match instance.load(call) {
            Ok(Ok(())) => return Outcome::Delivered,
            Ok(Err(SinkError::Terminal(message))) => {
                let message = runtime.sink_text(&with_denials(message, instance.take_denials()));
                return Outcome::Terminal(format!("sink `{}` refused the batch: {message}", slot.runtime.name()));
            }
            Ok(Err(SinkError::Retry(mut r))) => {
                r.message = runtime.sink_text(&with_denials(r.message, instance.take_denials()));
                // Honour the sink's retry-after; otherwise back off
                // exponentially with jitter so workers do not retry in step.
                let wait = match r.retry_after_ms {
                    Some(ms) if Duration::from_millis(ms) > options.max_retry_after => {
                        tracing::warn!(
                            job = %crate::package::shown_job_id(&ctx.job_id),
                            "sink `{}` asked to wait {ms} ms before retrying; waiting {:?} (the cap, --max-retry-after)",
                            slot.runtime.name(),
                            options.max_retry_after
                        );
                        options.max_retry_after
                    }
                    Some(ms) => Duration::from_millis(ms),
                    None => jitter(backoff),
                };
                tracing::warn!(job = %crate::package::shown_job_id(&ctx.job_id), start_row = ctx.start_row, attempt = ctx.attempt, error = %r.message, "sink asked to retry");
                if ctx.attempt < options.max_attempts {
                    sleep_unless_stopped(wait, &options.cancel);
                }
                backoff = backoff.saturating_mul(2);
                format!("sink `{}` asked to retry: {}", slot.runtime.name(), r.message)
            }
            Err(stopped @ CallError::Stopped { .. }) => {
                // Abandoned on a stop: the batch is not recorded, so the
                // next run sends it again under the same key.
                tracing::warn!(job = %crate::package::shown_job_id(&ctx.job_id), start_row = ctx.start_row, "{stopped}");
                slot.instance = None;
                return Outcome::Interrupted;
            }
            Err(trap) => {
                // A trapped instance can never be entered again.
                slot.instance = None;
                shared.with_report(|r| r.store_replacements += 1);
                tracing::warn!(job = %crate::package::shown_job_id(&ctx.job_id), start_row = ctx.start_row, error = %trap, "sink trapped; replacing its instance");
                if matches!(trap, CallError::Timeout { .. }) {
                    // A slow destination is transient: back off like `retry`.
                    sleep_unless_stopped(jitter(backoff), &options.cancel);
                    backoff = backoff.saturating_mul(2);
                } else {
                    traps += 1;
                    if traps >= 2 {
                        return Outcome::Terminal(format!("{trap} (twice on this batch)"));
                    }
                }
                trap.to_string()
            }
        };
        let record = Record::Failed { job: ctx.job_id.clone(), start_row: ctx.start_row, error: last_error.clone() };
        if let Err(e) = shared.ledger.append(record) {
            tracing::warn!(error = %e, "cannot record a failed attempt in the ledger");
        }
        if ctx.attempt >= options.max_attempts {
            return Outcome::Exhausted(format!("{last_error} (gave up after {} attempts)", ctx.attempt));
        }
        ctx.attempt += 1;
    }
}

/// Adds what the sandbox refused during the call to the sink's message, so
/// the user sees the cause even when the sink's own message is vague.
fn with_denials(message: String, denials: Vec<String>) -> String {
    if denials.is_empty() { message } else { format!("{message} [sandbox denied: {}]", denials.join(", ")) }
}

/// A duration between half and all of `d`, chosen from the clock's nanos.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |t| t.subsec_nanos());
    d.mul_f64(0.5 + f64::from(nanos % 1000) / 2000.0)
}

/// Sleeps `d`, waking early when a stop is requested.
fn sleep_unless_stopped(d: Duration, cancel: &Cancel) {
    let until = std::time::Instant::now() + d;
    while !cancel.is_cancelled() {
        let now = std::time::Instant::now();
        if now >= until {
            break;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(50)));
    }
}

/// Makes `file` visible as `<dir>/<name>` (a hard link, or a copy across
/// file systems), removing whatever the directory held before.
fn expose_file(file: &Path, dir: &Path, name: &str) -> Result<PathBuf, PackageError> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let target = dir.join(name);
    if std::fs::hard_link(file, &target).is_err() {
        std::fs::copy(file, &target).map_err(|e| PackageError::Io {
            action: "expose job file",
            path: file.to_path_buf(),
            source: e,
        })?;
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parquet_batches_are_cut_by_bytes() {
        use std::sync::Arc;
        let col: arrow::array::ArrayRef = Arc::new(arrow::array::Int64Array::from((0..100).collect::<Vec<i64>>()));
        let batch = arrow::record_batch::RecordBatch::try_from_iter([("i", col)]).expect("batch");
        let size = batch.get_array_memory_size() as u64;
        let slices = split_by_bytes(10, batch.clone(), Some(size / 4));
        assert!(slices.len() >= 4, "{}", slices.len());
        assert_eq!(slices.iter().map(|(_, b)| b.num_rows()).sum::<usize>(), 100);
        assert_eq!(slices[1].0, 10 + slices[0].1.num_rows() as u64, "start rows follow the slices");
        assert_eq!(split_by_bytes(0, batch, None).len(), 1);
    }

    #[test]
    fn idempotency_keys_follow_rows() {
        let k = idempotency_key("1.1", "t.abc.jsonl", 10, 5);
        assert_eq!(k, idempotency_key("1.1", "t.abc.jsonl", 10, 5));
        assert_ne!(k, idempotency_key("1.1", "t.abc.jsonl", 10, 4));
        assert_ne!(k, idempotency_key("1.1", "t.abc.jsonl", 11, 5));
        assert_ne!(k, idempotency_key("1.2", "t.abc.jsonl", 10, 5));
        assert_eq!(k.len(), 32);
    }
}
