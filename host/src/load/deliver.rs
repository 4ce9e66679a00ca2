//! One worker: takes jobs from the queue and delivers their batches.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{JobFailure, LoadOptions, Shared};
use crate::package::reader::JobReader;
use crate::package::{JobInfo, JobState, Package, PackageError, PipelineDir};
use crate::runtime::bindings::{BatchContext, Compression, Items, JobFile, SinkError};
use crate::runtime::{JOB_DIR_GUEST, RuntimeError, SinkInstance, SinkRuntime, convert};

/// The idempotency key of a batch: the same for the same rows of the same
/// job of the same package, whatever the attempt, run or batch size.
pub fn idempotency_key(load_id: &str, job_id: &str, start_row: u64, row_count: u64) -> String {
    let digest = Sha256::digest(format!("{load_id}\u{0}{job_id}\u{0}{start_row}\u{0}{row_count}").as_bytes());
    hex::encode(&digest[..16])
}

/// How delivering one batch ended.
enum Outcome {
    Delivered,
    /// Give up on the job for this run; it stays in `started_jobs/`.
    Exhausted(String),
    /// Move the job to `failed_jobs/`.
    Terminal(String),
}

/// A worker's instance, created on first use and replaced after traps.
struct Slot<'a> {
    runtime: &'a SinkRuntime,
    handle_dir: Option<PathBuf>,
    instance: Option<SinkInstance>,
}

impl Slot<'_> {
    fn get(&mut self) -> Result<&mut SinkInstance, RuntimeError> {
        if self.instance.is_none() {
            self.instance = Some(self.runtime.instance(self.handle_dir.as_deref())?);
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
                return shared.fail(PackageError::Io {
                    action: "create handle directory in",
                    path: pipeline.root().to_path_buf(),
                    source: e,
                });
            }
        }
    } else {
        None
    };
    let mut slot = Slot { runtime, handle_dir: handle_dir.as_ref().map(|d| d.path().to_path_buf()), instance: None };
    while let Some(job) = shared.next_job() {
        if let Err(e) = deliver_job(&mut slot, package, &job, options, shared) {
            shared.fail(e);
        }
    }
}

fn deliver_job(
    slot: &mut Slot<'_>,
    package: &Package,
    job: &JobInfo,
    options: &LoadOptions,
    shared: &Shared,
) -> Result<(), PackageError> {
    let Some(table) = package.schema.table(&job.table) else {
        return Err(PackageError::Damaged {
            path: package.dir().to_path_buf(),
            message: format!("table `{}` of job {} is not in the schema", job.table, job.job_id),
        });
    };
    let wit_table = convert::table(table);
    let path = package.job_path(job, JobState::Started);
    let load_id = &package.state.load_id;
    let mut ctx = BatchContext {
        load_id: load_id.clone(),
        job_id: job.job_id.clone(),
        batch_index: 0,
        start_row: 0,
        row_count: 0,
        idempotency_key: String::new(),
        attempt: 1,
    };

    if options.batch_size == 0 {
        let Some(dir) = slot.handle_dir.clone() else { return Ok(()) };
        let exposed = expose_file(&path, &dir, &job.file_name)?;
        ctx.row_count = job.rows;
        ctx.idempotency_key = idempotency_key(load_id, &job.job_id, 0, job.rows);
        let items = Items::File(JobFile {
            path: format!("{JOB_DIR_GUEST}/{}", job.file_name),
            format: convert::file_format(package.state.file_format),
            compression: Compression::None,
            row_count: job.rows,
        });
        let outcome = deliver_batch(slot, &wit_table, &mut ctx, &items, options, shared);
        let _ = std::fs::remove_file(&exposed);
        return finish(package, job, &ctx, outcome, shared, job.rows);
    }

    let mut reader = JobReader::open(&path, 0)?;
    let mut delivered = 0u64;
    while let Some(batch) = reader.next_batch(table, options.batch_size as usize, options.max_batch_bytes)? {
        ctx.start_row = batch.start_row;
        ctx.row_count = batch.rows.len() as u64;
        ctx.idempotency_key = idempotency_key(load_id, &job.job_id, ctx.start_row, ctx.row_count);
        ctx.attempt = 1;
        let items = Items::Rows(batch.rows.into_iter().map(convert::row).collect());
        match deliver_batch(slot, &wit_table, &mut ctx, &items, options, shared) {
            Outcome::Delivered => {
                delivered += ctx.row_count;
                ctx.batch_index += 1;
            }
            other => return finish(package, job, &ctx, other, shared, delivered),
        }
    }
    finish(package, job, &ctx, Outcome::Delivered, shared, delivered)
}

/// Records how a job ended and moves its file.
fn finish(
    package: &Package,
    job: &JobInfo,
    ctx: &BatchContext,
    outcome: Outcome,
    shared: &Shared,
    rows: u64,
) -> Result<(), PackageError> {
    shared.with_report(|r| r.tables.entry(job.table.clone()).or_default().rows += rows);
    let failure = |terminal, error: String| JobFailure {
        load_id: package.state.load_id.clone(),
        job_id: job.job_id.clone(),
        table: job.table.clone(),
        start_row: ctx.start_row,
        row_count: ctx.row_count,
        terminal,
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
    }
    Ok(())
}

/// Calls the sink until the batch is delivered, fails terminally, or the
/// attempts run out. A trap replaces the instance and is retried once.
fn deliver_batch(
    slot: &mut Slot<'_>,
    table: &crate::runtime::bindings::TableSchema,
    ctx: &mut BatchContext,
    items: &Items,
    options: &LoadOptions,
    shared: &Shared,
) -> Outcome {
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
        let last_error = match instance.load(table, ctx, items) {
            Ok(Ok(())) => return Outcome::Delivered,
            Ok(Err(SinkError::Terminal(message))) => {
                return Outcome::Terminal(format!("sink `{}` refused the batch: {message}", slot.runtime.name()));
            }
            Ok(Err(SinkError::Retry(r))) => {
                let wait = r.retry_after_ms.map(Duration::from_millis).unwrap_or(backoff).max(backoff);
                tracing::warn!(job = %ctx.job_id, start_row = ctx.start_row, attempt = ctx.attempt, error = %r.message, "sink asked to retry");
                if ctx.attempt < options.max_attempts {
                    std::thread::sleep(wait);
                }
                backoff = backoff.saturating_mul(2);
                format!("sink `{}` asked to retry: {}", slot.runtime.name(), r.message)
            }
            Err(trap) => {
                // A trapped instance can never be entered again.
                slot.instance = None;
                shared.with_report(|r| r.store_replacements += 1);
                traps += 1;
                tracing::warn!(job = %ctx.job_id, start_row = ctx.start_row, error = %trap, "sink trapped; replacing its instance");
                if traps >= 2 {
                    return Outcome::Terminal(trap.to_string());
                }
                trap.to_string()
            }
        };
        if ctx.attempt >= options.max_attempts {
            return Outcome::Exhausted(format!("{last_error} (gave up after {} attempts)", ctx.attempt));
        }
        ctx.attempt += 1;
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
    fn idempotency_keys_follow_rows() {
        let k = idempotency_key("1.1", "t.abc.jsonl", 10, 5);
        assert_eq!(k, idempotency_key("1.1", "t.abc.jsonl", 10, 5));
        assert_ne!(k, idempotency_key("1.1", "t.abc.jsonl", 10, 4));
        assert_ne!(k, idempotency_key("1.1", "t.abc.jsonl", 11, 5));
        assert_ne!(k, idempotency_key("1.2", "t.abc.jsonl", 10, 5));
        assert_eq!(k.len(), 32);
    }
}
