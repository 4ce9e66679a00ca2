//! `host test-sink`: the contract check a sink author runs on their sink.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::common::{PipelineArgs, SinkArgs};
use crate::pipeline::{CheckOptions, TEST_TABLE_PREFIX, check_sink, render_checks};
use crate::stop::Cancel;

/// Arguments of `host test-sink`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  host test-sink my_sink.wasm --dir ./out::/out --set url=http://127.0.0.1:8080/v1 --allow-host http://127.0.0.1:8080\n  host test-sink my_sink.wasm --dir ./out::/out --count-rows 'cat out/{table}.*.jsonl 2>/dev/null | wc -l'"
)]
pub struct TestSinkArgs {
    /// The sink to check (a WebAssembly component).
    #[arg(value_name = "SINK.wasm")]
    pub sink_file: PathBuf,
    /// The most one call may take (99th percentile of timed calls).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = crate::catalog::parse_duration)]
    pub call_budget: Duration,
    /// A shell command that prints the destination's row count of the
    /// table named by `{table}` (or `$DLTHOST_TEST_TABLE`): with it the
    /// checks also see the destination (exactly once after a replay, no
    /// rows held in memory past `load`'s return).
    #[arg(long, value_name = "CMD")]
    pub count_rows: Option<String>,
    /// The sink's grants and settings, as for `host run`.
    #[command(flatten)]
    pub sink: SinkArgs,
}

impl TestSinkArgs {
    /// Runs the checks; 0 when all pass, 1 when one fails.
    pub fn execute(mut self, cancel: &Cancel) -> anyhow::Result<u8> {
        self.sink.component = Some(self.sink_file.clone());
        let pipeline = PipelineArgs { pipeline: None, pipelines_dir: Some(std::env::temp_dir()) };
        let request = self.sink.request(&pipeline, cancel, None)?;
        let dirs: Vec<String> = request.dirs.iter().map(|d| format!("{} (as {})", d.host.display(), d.guest)).collect();
        let hosts: Vec<String> = request.allowed_hosts.iter().map(|h| h.to_string()).collect();
        let tcp: Vec<String> = request.allowed_tcp.iter().map(|h| h.to_string()).collect();
        let listed = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
        eprintln!(
            "Checking {}: it writes to tables named {TEST_TABLE_PREFIX}* wherever it writes (directories: {}; hosts: {}; TCP: {}).",
            self.sink_file.display(),
            listed(&dirs),
            listed(&hosts),
            listed(&tcp),
        );
        let options = CheckOptions {
            call_budget: self.call_budget,
            count_rows: self.count_rows.clone(),
            ..CheckOptions::default()
        };
        let results = check_sink(&request, &options)?;
        let (table, passed) = render_checks(&results);
        outln!("{}", table.trim_end());
        let failed = results.iter().filter(|r| !r.passed).count();
        let skipped = results.iter().filter(|r| r.skipped).count();
        if passed {
            let ran = results.len() - skipped;
            match skipped {
                0 => eprintln!("All {ran} checks passed."),
                n => eprintln!("All {ran} checks that apply passed ({n} skipped: each skip line says why)."),
            }
            Ok(0)
        } else {
            eprintln!(
                "FAILED: {failed} of {} checks; each FAIL line names the rule and what the sink did.",
                results.len()
            );
            Ok(1)
        }
    }
}
