//! `host load`: load pending packages only; never reads input.

use std::sync::Arc;

use clap::Args;

use super::common::{MonitorArgs, PipelineArgs, SinkArgs, finish_load, finish_metrics, finish_traces};
use crate::pipeline::{self, Observer};
use crate::stop::Cancel;

/// Arguments of `host load`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  host load --component capture.wasm --dir ./out::/out")]
pub struct LoadArgs {
    /// Print the summary as one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// The metrics file and traces.
    #[command(flatten)]
    pub metrics: MonitorArgs,
    /// The sink and its settings.
    #[command(flatten)]
    pub sink: SinkArgs,
    /// The pipeline.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

impl LoadArgs {
    /// Runs the command; returns the exit code.
    pub fn execute(self, quiet: bool, cancel: &Cancel) -> anyhow::Result<u8> {
        let sink = self.sink.open(&self.pipeline, cancel, None)?;
        let pipeline = &sink.pipeline;
        if pipeline.pending()?.is_empty() && !quiet {
            eprintln!("No pending packages in {}.", pipeline.root().display());
        }
        let metrics = self.metrics.start(&sink)?;
        let traces = self.metrics.traces()?;
        let observer: Arc<dyn Observer> = match &metrics {
            Some(m) => m.clone(),
            None => Arc::new(()),
        };
        let result = pipeline::load(&sink, observer);
        finish_metrics(metrics, result.as_ref().ok());
        finish_traces(traces);
        let report = result?;
        Ok(finish_load(sink.runtime.name(), &report, pipeline, self.json, quiet))
    }
}
