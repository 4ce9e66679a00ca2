//! `host packages`, `host drop-pending`, `host retry-failed`: look after a
//! pipeline's load packages.

use clap::Args;
use serde::Serialize;

use super::common::PipelineArgs;
use crate::package::{JobState, Package};

/// Arguments of `host packages`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  host packages --pipeline capture")]
pub struct PackagesArgs {
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// The pipeline.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

/// One package as listed.
#[derive(Debug, Serialize)]
struct Listed {
    load_id: String,
    /// pending, loaded or failed.
    state: &'static str,
    jobs_new: usize,
    jobs_started: usize,
    jobs_completed: usize,
    jobs_failed: usize,
    rows: u64,
    path: String,
}

fn listed(pkg: &Package, state: &'static str) -> Listed {
    let count = |s: JobState| pkg.state.jobs.iter().filter(|j| pkg.job_state(j) == Some(s)).count();
    Listed {
        load_id: pkg.state.load_id.clone(),
        state,
        jobs_new: count(JobState::New),
        jobs_started: count(JobState::Started),
        jobs_completed: count(JobState::Completed),
        jobs_failed: count(JobState::Failed),
        rows: pkg.state.jobs.iter().map(|j| j.rows).sum(),
        path: pkg.dir().display().to_string(),
    }
}

impl PackagesArgs {
    /// Lists pending, loaded and failed packages.
    pub fn execute(self) -> anyhow::Result<u8> {
        let pipeline = self.pipeline.open_named("packages")?;
        let mut all = Vec::new();
        for pkg in pipeline.pending()? {
            all.push(listed(&pkg, if pkg.state.normalizing.is_some() { "normalizing" } else { "pending" }));
        }
        for (path, failed) in pipeline.loaded()? {
            let pkg = Package::open(&path)?;
            all.push(listed(&pkg, if failed { "failed" } else { "loaded" }));
        }
        if self.json {
            outln!("{}", serde_json::to_string_pretty(&all)?);
            return Ok(0);
        }
        if all.is_empty() {
            outln!("No packages in {}.", pipeline.root().display());
        }
        for p in &all {
            outln!(
                "{:<20} {:<8} {:>9} rows  jobs: {} new, {} started, {} completed, {} failed",
                p.load_id,
                p.state,
                p.rows,
                p.jobs_new,
                p.jobs_started,
                p.jobs_completed,
                p.jobs_failed
            );
        }
        Ok(0)
    }
}

/// Arguments of `host drop-pending`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  host drop-pending --pipeline capture --yes")]
pub struct DropPendingArgs {
    /// Really delete them (without it, only lists what would go).
    #[arg(long)]
    pub yes: bool,
    /// The pipeline.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

impl DropPendingArgs {
    /// Discards pending packages.
    pub fn execute(self) -> anyhow::Result<u8> {
        let pipeline = self.pipeline.open_named("drop-pending")?;
        let _lock = pipeline.lock()?;
        let pending = pipeline.pending()?;
        if pending.is_empty() {
            outln!("No pending packages.");
            return Ok(0);
        }
        for pkg in pending {
            let rows: u64 = pkg.state.jobs.iter().map(|j| j.rows).sum();
            if self.yes {
                outln!("Dropped package {} ({rows} rows).", pkg.state.load_id);
                pkg.discard()?;
            } else {
                outln!("Would drop package {} ({rows} rows).", pkg.state.load_id);
            }
        }
        if !self.yes {
            outln!("Nothing deleted: add --yes to drop these packages.");
        }
        Ok(0)
    }
}

/// Arguments of `host retry-failed`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  host retry-failed --pipeline capture && host load --component capture.wasm")]
pub struct RetryFailedArgs {
    /// Only this package (default: every package with failed jobs).
    #[arg(long, value_name = "LOAD_ID")]
    pub load_id: Option<String>,
    /// The pipeline.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

impl RetryFailedArgs {
    /// Moves failed jobs back to `new_jobs/` and their packages back to pending.
    pub fn execute(self) -> anyhow::Result<u8> {
        let pipeline = self.pipeline.open_named("retry-failed")?;
        let _lock = pipeline.lock()?;
        let mut total = 0;
        for (path, failed) in pipeline.loaded()? {
            let id = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if !failed || self.load_id.as_ref().is_some_and(|want| *want != id) {
                continue;
            }
            let moved = pipeline.retry_failed(&path)?;
            outln!("Package {id}: {moved} failed jobs back in new_jobs/; it is pending again.");
            total += moved;
        }
        if total == 0 {
            outln!("No failed jobs to retry.");
        } else {
            outln!("Run `host load` (or `host run` again) to deliver them; delivery resumes at the failed batch.");
        }
        Ok(0)
    }
}
