//! `host status`: per pending package, and per loaded package with failed
//! jobs, each job's rows delivered and left, failed attempts and the last
//! error; and the commands that finish them.

use clap::Args;
use serde::Serialize;

use super::common::{PipelineArgs, shell_word};
use crate::ledger::Ledger;
use crate::package::JobState;

/// Arguments of `host status`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  host status --pipeline capture")]
pub struct StatusArgs {
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// The pipeline (default: the only one in the pipelines directory).
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

/// One job's state.
#[derive(Debug, Serialize)]
pub struct JobStatus {
    /// Job id.
    pub job_id: String,
    /// Table.
    pub table: String,
    /// new, started, completed or failed.
    pub state: &'static str,
    /// Rows delivered.
    pub delivered: u64,
    /// Rows left.
    pub left: u64,
    /// Failed calls of the last run.
    pub failed_attempts: u64,
    /// Failed calls over all runs.
    pub failed_attempts_total: u64,
    /// Last error.
    pub last_error: Option<String>,
}

/// One package that is not done.
#[derive(Debug, Serialize)]
pub struct PackageStatus {
    /// Load id.
    pub load_id: String,
    /// `pending` (in `normalized/`; a load delivers it) or `failed` (in
    /// `loaded/` with failed jobs; `host retry-failed` puts them back).
    pub state: &'static str,
    /// Jobs.
    pub jobs: Vec<JobStatus>,
}

impl StatusArgs {
    /// Runs the command; returns the exit code.
    pub fn execute(self) -> anyhow::Result<u8> {
        let pipeline = self.pipeline.open_named("status")?;
        let mut packages = Vec::new();
        let mut failed_dirs = Vec::new();
        for (dir, failed) in pipeline.loaded()? {
            if failed {
                failed_dirs.push(crate::package::Package::open(&dir)?);
            }
        }
        let pending = pipeline.pending()?;
        // A package whose normalizing was interrupted is normalized again
        // (from the input files its state names) before it is loaded.
        let pending_state =
            |p: &crate::package::Package| if p.state.normalizing.is_some() { "normalizing" } else { "pending" };
        for (pkg, state) in
            pending.iter().map(|p| (p, pending_state(p))).chain(failed_dirs.iter().map(|p| (p, "failed")))
        {
            let progress = Ledger::read(pkg.dir())?;
            let jobs = pkg
                .state
                .jobs
                .iter()
                .map(|job| {
                    let p = progress.get(&job.job_id).cloned().unwrap_or_default();
                    let state = match pkg.job_state(job) {
                        Some(JobState::New) => "new",
                        Some(JobState::Started) => "started",
                        Some(JobState::Completed) => "completed",
                        Some(JobState::Failed) => "failed",
                        None => "missing",
                    };
                    let exception =
                        pkg.dir().join(JobState::Failed.dir_name()).join(format!("{}.exception", job.file_name));
                    let last_error =
                        std::fs::read_to_string(exception).ok().map(|e| e.trim().to_string()).or(p.last_error);
                    let delivered = if state == "completed" { job.rows } else { p.delivered };
                    JobStatus {
                        job_id: job.job_id.clone(),
                        table: job.table.clone(),
                        state,
                        delivered,
                        left: job.rows.saturating_sub(delivered),
                        failed_attempts: p.failed_attempts,
                        failed_attempts_total: p.failed_attempts_total,
                        last_error,
                    }
                })
                .collect();
            packages.push(PackageStatus { load_id: pkg.state.load_id.clone(), state, jobs });
        }
        if self.json {
            outln!("{}", serde_json::to_string_pretty(&packages)?);
            return Ok(0);
        }
        if packages.is_empty() {
            outln!("No pending or failed packages in {}: everything was delivered.", pipeline.root().display());
        }
        for p in &packages {
            if p.state == "normalizing" {
                outln!(
                    "package {} (pending; its normalizing was interrupted: the next run or load reads its input files again, checks that jobs already handed out come out the same, and loads the rest)",
                    p.load_id
                );
            } else {
                outln!("package {} ({})", p.load_id, p.state);
            }
            for j in &p.jobs {
                outln!(
                    "  {:<40} {:<9} delivered {:>8}  left {:>8}  failed attempts {} (last run), {} (all runs)",
                    crate::package::shown_job_id(&j.job_id),
                    j.state,
                    j.delivered,
                    j.left,
                    j.failed_attempts,
                    j.failed_attempts_total
                );
                if let Some(e) = &j.last_error {
                    outln!("    last error: {e}");
                }
            }
        }
        let dir = pipeline.root().parent().map(|d| d.display().to_string()).unwrap_or_default();
        let where_ = format!("--pipeline {} --pipelines-dir {}", shell_word(pipeline.name()), shell_word(&dir));
        if !failed_dirs.is_empty() {
            outln!(
                "Failed jobs are not delivered. Fix the sink, then: host retry-failed {where_} && host load --component SINK {where_}"
            );
        } else if !pending.is_empty() {
            outln!(
                "Pending packages are delivered by: host load --component SINK {where_} (or the same `host run` again)"
            );
        }
        Ok(0)
    }
}
