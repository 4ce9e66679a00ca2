//! `host status`: per pending package and job, rows delivered and left,
//! failed attempts and the last error.

use clap::Args;
use serde::Serialize;

use super::common::PipelineArgs;
use crate::ledger::Ledger;
use crate::package::JobState;

/// Arguments of `host status`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  host status --pipeline capture")]
pub struct StatusArgs {
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// The pipeline (`--pipeline` is required: there is no sink to name it).
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
    /// Failed calls recorded.
    pub failed_attempts: u64,
    /// Last error.
    pub last_error: Option<String>,
}

/// One pending package.
#[derive(Debug, Serialize)]
pub struct PackageStatus {
    /// Load id.
    pub load_id: String,
    /// Jobs.
    pub jobs: Vec<JobStatus>,
}

impl StatusArgs {
    /// Runs the command; returns the exit code.
    pub fn execute(self) -> anyhow::Result<u8> {
        let pipeline = self.pipeline.open_named("status")?;
        let mut packages = Vec::new();
        for pkg in pipeline.pending()? {
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
                    JobStatus {
                        job_id: job.job_id.clone(),
                        table: job.table.clone(),
                        state,
                        delivered: p.delivered,
                        left: job.rows.saturating_sub(p.delivered),
                        failed_attempts: p.failed_attempts,
                        last_error: p.last_error,
                    }
                })
                .collect();
            packages.push(PackageStatus { load_id: pkg.state.load_id.clone(), jobs });
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(&packages)?);
            return Ok(0);
        }
        if packages.is_empty() {
            println!("No pending packages in {}.", pipeline.root().display());
        }
        for p in &packages {
            println!("package {}", p.load_id);
            for j in &p.jobs {
                println!(
                    "  {:<40} {:<9} delivered {:>8}  left {:>8}  failed attempts {}",
                    j.job_id, j.state, j.delivered, j.left, j.failed_attempts
                );
                if let Some(e) = &j.last_error {
                    println!("    last error: {e}");
                }
            }
        }
        Ok(0)
    }
}
