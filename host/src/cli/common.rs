//! Flags shared by the commands that load (`run`, `load`) and by those that
//! only look at a pipeline (`status`), and the summary printer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use super::units::{parse_bytes, parse_duration};
use crate::load::{LoadOptions, LoadReport, Strategy};
use crate::package::{FileFormat, PipelineDir};
use crate::runtime::bindings::ItemFormat;
use crate::runtime::cache::{self, CompileCache};
use crate::runtime::egress::AllowedHost;
use crate::runtime::{DirGrant, SandboxOptions, SinkRuntime};
use crate::settings::{self, Overrides, SinkSettings};

/// `--loader-file-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// JSON Lines (`typed-jsonl` is accepted as an alias).
    #[value(alias = "typed-jsonl")]
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

/// Where the pipeline lives.
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// Pipeline name: the folder holding its schema and packages. Default: the sink's name.
    #[arg(long, value_name = "NAME")]
    pub pipeline: Option<String>,
    /// Where pipelines live. Default: `$DLTHOST_PIPELINES_DIR`, else the
    /// per-user data directory (`~/.local/share/dlthost/pipelines` on Linux).
    #[arg(long, value_name = "DIR", env = "DLTHOST_PIPELINES_DIR")]
    pub pipelines_dir: Option<PathBuf>,
}

impl PipelineArgs {
    /// Opens the pipeline, named `--pipeline` or else `default_name`.
    pub fn open(&self, default_name: &str) -> anyhow::Result<PipelineDir> {
        let dir = match &self.pipelines_dir {
            Some(d) => d.clone(),
            None => match dirs::data_dir() {
                Some(d) => d.join("dlthost").join("pipelines"),
                None => bail!("no per-user data directory on this system; pass --pipelines-dir DIR"),
            },
        };
        let name = self.pipeline.as_deref().unwrap_or(default_name);
        PipelineDir::open(&dir, name).with_context(|| format!("cannot open pipeline `{name}` in {}", dir.display()))
    }
}

/// The sink, its sandbox and its settings for this run.
#[derive(Debug, Clone, Args)]
pub struct SinkArgs {
    /// The sink: a WebAssembly component implementing wit/destination.wit.
    #[arg(long, value_name = "PATH")]
    pub component: PathBuf,
    /// Rows per call to the sink; 0 hands over whole job files. Overrides the sink.
    #[arg(long, value_name = "N")]
    pub batch_size: Option<u32>,
    /// Format of the job files. Overrides the sink.
    #[arg(long, value_name = "FORMAT")]
    pub loader_file_format: Option<FormatArg>,
    /// `direct` or `snake_case`. Overrides the sink.
    #[arg(long, value_name = "NAME")]
    pub naming_convention: Option<String>,
    /// How deep nested objects are flattened (0 keeps them whole as json). Overrides the sink.
    #[arg(long, value_name = "N")]
    pub max_nesting_level: Option<u32>,
    /// Leave out `_dlt*` tables and columns. Overrides the sink.
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub skip_dlt_columns_and_tables: Option<bool>,
    /// Worker threads, each with its own sink instance (dlt's default: 20).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub workers: usize,
    /// Grant the sink a host directory, read-write: HOST_PATH::GUEST_PATH.
    #[arg(long, value_name = "HOST::GUEST")]
    pub dir: Vec<String>,
    /// Pass an environment variable to the sink: KEY=VALUE, or KEY to copy the host's value.
    #[arg(long, value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Allow HTTP requests to an origin: scheme://host[:port], `*.` for
    /// subdomains (https://*.example.com). Local addresses must be listed
    /// explicitly (http://127.0.0.1:8080).
    #[arg(long, value_name = "ORIGIN", value_parser = parse_allowed_host)]
    pub allow_host: Vec<AllowedHost>,
    /// Fuel per call (about one unit per wasm instruction): a deterministic
    /// budget. Default: unlimited.
    #[arg(long, value_name = "UNITS")]
    pub fuel: Option<u64>,
    /// Cap on the bytes a sink instance may print (stdout plus stderr).
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = parse_bytes)]
    pub max_guest_output: usize,
    /// Replace a sink instance after this many calls.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub store_max_batches: u64,
    /// Replace a sink instance once its memory passes this size.
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_bytes)]
    pub store_max_memory: usize,
    /// How jobs run at once: `parallel` (default), `table-sequential` (one
    /// job per table at a time) or `sequential` (one job at a time), as dlt.
    #[arg(long, value_name = "STRATEGY", default_value = "parallel")]
    pub strategy: Strategy,
    /// Where compiled components are cached. Default: the per-user cache
    /// directory (`~/.cache/dlthost/components` on Linux).
    #[arg(long, value_name = "DIR", env = "DLTHOST_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Memory limit of one sink instance, summed over its memories.
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_bytes)]
    pub memory_limit: usize,
    /// Wall-clock limit of one call to the sink.
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = parse_duration)]
    pub call_timeout: Duration,
    /// Calls per batch in one run before giving up on `retry` errors (the run
    /// then stops; rerun to resume).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub max_attempts: u32,
    /// First wait after a `retry` error; doubles on each attempt, with jitter.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub retry_backoff: Duration,
}

/// A loaded sink with its settings.
pub struct Sink {
    /// The compiled component.
    pub runtime: SinkRuntime,
    /// Settings in force.
    pub settings: SinkSettings,
    /// How to load.
    pub load: LoadOptions,
}

impl SinkArgs {
    /// Compiles the sink, asks its spec and applies the overrides.
    pub fn open(&self) -> anyhow::Result<Sink> {
        let sandbox = SandboxOptions {
            dirs: self.dir.iter().map(|d| parse_dir(d)).collect::<anyhow::Result<_>>()?,
            env: self.env.iter().map(|e| parse_env(e)).collect(),
            allowed_hosts: self.allow_host.clone(),
            memory_limit: self.memory_limit,
            call_timeout: self.call_timeout,
            fuel: self.fuel,
            max_guest_output: self.max_guest_output as u64,
            store_max_batches: self.store_max_batches.max(1),
            store_max_memory: self.store_max_memory,
            cache: Some(compile_cache(self.cache_dir.as_deref())),
        };
        let runtime = SinkRuntime::load(&self.component, sandbox)?;
        let Some(spec) = runtime.spec() else { bail!("sink returned no spec") };
        let overrides = Overrides {
            batch_size: self.batch_size,
            loader_file_format: self.loader_file_format.map(|f| match f {
                FormatArg::Jsonl => FileFormat::Jsonl,
                FormatArg::Parquet => FileFormat::Parquet,
            }),
            naming_convention: self.naming_convention.clone(),
            max_nesting_level: self.max_nesting_level,
            skip_dlt_columns_and_tables: self.skip_dlt_columns_and_tables,
        };
        let settings = settings::resolve(spec, &overrides)?;
        if settings.loader_file_format == FileFormat::Parquet {
            bail!("parquet job files are not supported by this version yet; use --loader-file-format jsonl");
        }
        if settings.item_format == ItemFormat::ArrowIpc && settings.batch_size > 0 {
            bail!("sink `{}` asks for Arrow IPC batches, which this version does not deliver yet", runtime.name());
        }
        let load = LoadOptions {
            workers: self.workers.max(1),
            batch_size: settings.batch_size,
            max_batch_bytes: settings.max_batch_bytes,
            item_format: settings.item_format,
            max_attempts: self.max_attempts.max(1),
            backoff: self.retry_backoff,
            strategy: self.strategy,
        };
        Ok(Sink { runtime, settings, load })
    }
}

/// The compile cache in `dir`, or the per-user default.
pub fn compile_cache(dir: Option<&Path>) -> CompileCache {
    let dir = dir
        .map(Path::to_path_buf)
        .or_else(CompileCache::default_dir)
        .unwrap_or_else(|| std::env::temp_dir().join("dlthost-components"));
    CompileCache::new(dir, cache::DEFAULT_CAP)
}

fn parse_allowed_host(s: &str) -> Result<AllowedHost, String> {
    AllowedHost::parse(s).map_err(|e| e.to_string())
}

/// `HOST::GUEST` → a directory grant; the host directory must exist.
fn parse_dir(arg: &str) -> anyhow::Result<DirGrant> {
    let Some((host, guest)) = arg.split_once("::") else {
        bail!("--dir {arg}: expected HOST_PATH::GUEST_PATH, e.g. --dir ./out::/out");
    };
    let host = Path::new(host);
    if !host.is_dir() {
        bail!("--dir {arg}: {} is not a directory", host.display());
    }
    Ok(DirGrant { host: host.to_path_buf(), guest: guest.to_string() })
}

/// `KEY=VALUE`, or `KEY` to pass the host's value (empty if unset).
fn parse_env(arg: &str) -> (String, String) {
    match arg.split_once('=') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => (arg.to_string(), std::env::var(arg).unwrap_or_default()),
    }
}

/// Prints the human summary of a load on stderr.
pub fn print_summary(sink: &str, report: &LoadReport, resume_hint: &str) {
    let rows = report.rows();
    let rate = if report.elapsed_secs > 0.0 { rows as f64 / report.elapsed_secs } else { 0.0 };
    eprintln!(
        "Loaded {rows} rows into `{sink}` in {:.2}s ({rate:.0} rows/s, {} calls, {} retries)",
        report.elapsed_secs, report.calls, report.retries
    );
    for (table, t) in &report.tables {
        eprintln!("  {table}: {} rows, {} jobs", t.rows, t.jobs);
    }
    for p in &report.packages_loaded {
        eprintln!("  package: {}", p.display());
    }
    for f in &report.failures {
        let what = if f.terminal { "failed (moved to failed_jobs/)" } else { "stopped" };
        eprintln!(
            "error: job {} of table `{}` {what} at rows {}..{}: {}",
            f.job_id,
            f.table,
            f.start_row,
            f.start_row + f.row_count,
            f.error
        );
    }
    if report.interrupted {
        eprintln!("Interrupted: every confirmed batch is recorded. Resume with: {resume_hint}");
    } else if !report.packages_pending.is_empty() {
        eprintln!("hint: resume where it stopped with: {resume_hint}");
    }
}

/// The command line that was used, for "resume with" hints.
pub fn this_command() -> String {
    std::env::args().map(|a| if a.contains(' ') { format!("'{a}'") } else { a }).collect::<Vec<_>>().join(" ")
}
