//! Flags shared by the commands that load (`run`, `load`) and by those that
//! only look at a pipeline (`status`), and the summary printer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;

use super::flags::SinkFlags;
use crate::load::LoadReport;
use crate::package::PipelineDir;
use crate::pipeline::{MetricsFile, Shard, Sink, SinkRequest};
use crate::runtime::DirGrant;
use crate::runtime::{AllowedHost, AllowedTcp};
use crate::runtime::{CompileCache, DEFAULT_CACHE_CAP};
use crate::stop::Cancel;
use crate::telemetry::Exporter;

/// Where the pipeline lives.
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// Pipeline name: the folder holding its schema and packages. Default:
    /// the sink's name (run, normalize, load); for the commands without a
    /// sink, the only pipeline in the pipelines directory.
    #[arg(long, value_name = "NAME")]
    pub pipeline: Option<String>,
    /// Where pipelines live. Default: `$DLTHOST_PIPELINES_DIR`, else the
    /// per-user data directory (`~/.local/share/dlthost/pipelines` on Linux).
    #[arg(long, value_name = "DIR", env = "DLTHOST_PIPELINES_DIR")]
    pub pipelines_dir: Option<PathBuf>,
}

impl PipelineArgs {
    /// Opens an existing pipeline for a command without a sink: the one
    /// `--pipeline` names, else the only one there is. An unknown name, or
    /// several pipelines and no name, is an error that lists them.
    pub fn open_named(&self, command: &str) -> anyhow::Result<PipelineDir> {
        let dir = self.pipelines_dir()?;
        let existing = existing_pipelines(&dir);
        let list = || if existing.is_empty() { "none".to_string() } else { existing.join(", ") };
        let name = match &self.pipeline {
            Some(name) if existing.contains(name) => name.clone(),
            Some(name) => bail!("no pipeline `{name}` in {}; the pipelines there: {}", dir.display(), list()),
            None => match existing.as_slice() {
                [only] => only.clone(),
                [] => bail!("no pipelines in {} yet (pass --pipelines-dir DIR if they are elsewhere)", dir.display()),
                _ => bail!(
                    "{} holds several pipelines; name one: host {command} --pipeline NAME (one of: {})",
                    dir.display(),
                    list()
                ),
            },
        };
        PipelineDir::open(&dir, &name).with_context(|| format!("cannot open pipeline `{name}` in {}", dir.display()))
    }

    /// Opens the pipeline, named `--pipeline` or else `default_name`.
    pub fn open(&self, default_name: &str) -> anyhow::Result<PipelineDir> {
        let dir = self.pipelines_dir()?;
        let name = self.pipeline.as_deref().unwrap_or(default_name);
        PipelineDir::open(&dir, name).with_context(|| format!("cannot open pipeline `{name}` in {}", dir.display()))
    }

    /// `--pipelines-dir`, else the per-user default.
    pub fn pipelines_dir(&self) -> anyhow::Result<PathBuf> {
        Ok(match &self.pipelines_dir {
            Some(d) => d.clone(),
            None => match dirs::data_dir() {
                Some(d) => d.join("dlthost").join("pipelines"),
                None => bail!("no per-user data directory on this system; pass --pipelines-dir DIR"),
            },
        })
    }
}

/// The pipelines in `dir`, by name. A directory whose name this release
/// refuses is never skipped in silence: a warning gives the command that
/// renames it.
fn existing_pipelines(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if !entry.path().join("load").is_dir() {
            continue;
        }
        let raw = entry.file_name().to_string_lossy().into_owned();
        match crate::names::check_component(&raw, "pipeline name") {
            Ok(_) => names.push(raw),
            Err(e) => {
                let fixed: String = raw
                    .trim_start_matches('.')
                    .chars()
                    .map(|c| if c.is_control() || c == '\\' { '_' } else { c })
                    .collect();
                let fixed = if fixed.is_empty() { "pipeline".to_string() } else { fixed };
                tracing::warn!(
                    "{} is not used: {e}. Rename it with: mv {} {}",
                    entry.path().display(),
                    shell_word(&entry.path().display().to_string()),
                    shell_word(&dir.join(fixed).display().to_string())
                );
            }
        }
    }
    names.sort();
    names
}

/// The sink, its sandbox and its settings for this run. Every setting of
/// the catalog can also come from the environment or `.dlt/config.toml`
/// (see docs/configuration.md); a flag wins over both.
#[derive(Debug, Clone, Args)]
pub struct SinkArgs {
    /// The sink: a WebAssembly component implementing wit/destination.wit.
    /// Default: `component` under `[destination.<name>]` in config.toml or
    /// `DESTINATION__<NAME>__COMPONENT`, with `--destination NAME`.
    #[arg(long, value_name = "PATH")]
    pub component: Option<PathBuf>,
    /// The destination name: the config section `[destination.<name>]` and
    /// the environment prefix `DESTINATION__<NAME>__`. Default: the sink's own name.
    #[arg(long, value_name = "NAME")]
    pub destination: Option<String>,
    /// The directory holding `.dlt/config.toml` and `.dlt/secrets.toml`.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub project_dir: PathBuf,
    /// Set a sink's config key for this run: KEY=VALUE (beats every other source).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Column hints (types JSON cannot express, nullability, keys), TOML:
    /// `[tables.<table>.columns.<column>] data_type = "decimal"`.
    #[arg(long, value_name = "FILE")]
    pub schema_hints: Option<PathBuf>,
    /// The settings of the catalog (`--batch-size`, `--workers`, ...).
    #[command(flatten)]
    pub settings: SinkFlags,
    /// Grant the sink a host directory, read-write: HOST_PATH::GUEST_PATH.
    #[arg(long, value_name = "HOST::GUEST")]
    pub dir: Vec<String>,
    /// Pass an environment variable to the sink: KEY=VALUE, or KEY to copy the host's value.
    #[arg(long, value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Allow HTTP requests to an origin: scheme://host[:port], `*.` for
    /// subdomains (https://*.example.com). Local addresses must be listed
    /// explicitly (http://127.0.0.1:8080). Adds to `allowed_hosts` in config.
    #[arg(long, value_name = "ORIGIN", value_parser = parse_allowed_host)]
    pub allow_host: Vec<AllowedHost>,
    /// Allow TCP connections to HOST:PORT (a database: 10.0.0.7:5432,
    /// db.example.com:5432, [::1]:6379). A name is resolved once when the
    /// run starts; the sink connects by address. Local addresses must be
    /// named as such (127.0.0.1:5432, localhost:5432). Adds to
    /// `allowed_tcp` in config. Without it every connection is refused.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_allowed_tcp)]
    pub allow_tcp: Vec<AllowedTcp>,
    /// Answer a name's lookup for the sink's HTTP requests (and the names
    /// of --allow-tcp) with a fixed
    /// address, as curl's --resolve: HOST:PORT:ADDRESS. The address is
    /// checked like any other (a local one needs an --allow-host naming it).
    #[arg(long, value_name = "HOST:PORT:ADDRESS")]
    pub resolve: Vec<String>,
    /// Where compiled components are cached. Default: the per-user cache
    /// directory (`~/.cache/dlthost/components` on Linux).
    #[arg(long, value_name = "DIR", env = "DLTHOST_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// A dry run (`host normalize`): the sink's spec is read, its keys are
    /// not resolved, so it works before any secret exists.
    #[arg(skip)]
    pub dry_run: bool,
}

impl SinkArgs {
    /// The request these arguments make: plain values, nothing read yet
    /// but the directory grants' existence and `--env KEY`'s host value.
    pub fn request(
        &self,
        pipeline: &PipelineArgs,
        cancel: &Cancel,
        shard: Option<Shard>,
    ) -> anyhow::Result<SinkRequest> {
        let set = self
            .set
            .iter()
            .map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect::<Option<_>>()
            .ok_or_else(|| anyhow::anyhow!("--set expects KEY=VALUE"))?;
        Ok(SinkRequest {
            component: self.component.clone(),
            destination: self.destination.clone(),
            pipeline: pipeline.pipeline.clone(),
            pipelines_dir: pipeline.pipelines_dir()?,
            project_dir: self.project_dir.clone(),
            environment: std::env::vars().collect(),
            flags: self.settings.0.clone(),
            set,
            schema_hints: self.schema_hints.clone(),
            dirs: self.dir.iter().map(|d| parse_dir(d)).collect::<anyhow::Result<_>>()?,
            env: self.env.iter().map(|e| parse_env(e)).collect(),
            allowed_hosts: self.allow_host.clone(),
            allowed_tcp: self.allow_tcp.clone(),
            resolve: self.resolve.clone(),
            cache: Some(compile_cache(self.cache_dir.as_deref())),
            dry_run: self.dry_run,
            cancel: cancel.clone(),
            shard,
        })
    }

    /// Opens the sink (see [`Sink::open`]).
    pub fn open(&self, pipeline: &PipelineArgs, cancel: &Cancel, shard: Option<Shard>) -> anyhow::Result<Sink> {
        Ok(Sink::open(&self.request(pipeline, cancel, shard)?)?)
    }
}

/// What existing monitoring reads: `--metrics-file` for Prometheus,
/// `--otlp-endpoint` for OpenTelemetry traces.
#[derive(Debug, Clone, Args)]
pub struct MonitorArgs {
    /// Export OpenTelemetry spans (run, package, job, batch, and the sink's
    /// HTTP requests, which get a W3C `traceparent` header) over OTLP/HTTP
    /// to this collector, e.g. http://127.0.0.1:4318. Spans carry names,
    /// counts and outcomes, never secrets, row values, messages, URL paths
    /// or header values. See docs/operations.md.
    #[arg(long, value_name = "URL", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Write the run's metrics to FILE in the Prometheus text format (for
    /// node_exporter's textfile collector), replaced atomically every
    /// --metrics-interval and at the end. See docs/operations.md.
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// How often the metrics file is rewritten while the run goes on.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::catalog::parse_duration)]
    pub metrics_interval: std::time::Duration,
}

impl MonitorArgs {
    /// Installs the span exporter, if one was asked for.
    pub fn traces(&self) -> anyhow::Result<Option<Exporter>> {
        match &self.otlp_endpoint {
            Some(url) if !url.trim().is_empty() => Ok(Some(Exporter::install(url)?)),
            _ => Ok(None),
        }
    }

    /// Starts the metrics file of `sink`'s run, if one was asked for.
    pub fn start(&self, sink: &Sink) -> anyhow::Result<Option<Arc<MetricsFile>>> {
        let Some(path) = &self.metrics_file else { return Ok(None) };
        let shard = sink.shard.map(|s| s.dir_name());
        let mut labels = vec![("pipeline", sink.pipeline_name.as_str()), ("sink", sink.runtime.name())];
        if let Some(shard) = &shard {
            labels.push(("shard", shard.as_str()));
        }
        let file = MetricsFile::start(path, self.metrics_interval.max(std::time::Duration::from_millis(50)), &labels)
            .with_context(|| format!("cannot write the metrics file {}", path.display()))?;
        Ok(Some(file))
    }
}

/// Sends the spans still buffered (a failure is a warning only).
pub fn finish_traces(exporter: Option<Exporter>) {
    if let Some(Err(e)) = exporter.map(Exporter::finish) {
        eprintln!("warning: cannot export the run's traces: {e}");
    }
}

/// Writes the metrics file a last time: the run's report, and whether it
/// delivered everything.
pub fn finish_metrics(metrics: Option<Arc<MetricsFile>>, report: Option<&LoadReport>) {
    let Some(metrics) = metrics else { return };
    let ok = report.is_some_and(|r| super::exit_code(r) == 0);
    let empty = LoadReport::default();
    if let Err(e) = metrics.finish(report.unwrap_or(&empty), ok) {
        eprintln!("warning: cannot write the metrics file: {e}");
    }
}

/// The compile cache in `dir`, or the per-user default.
pub fn compile_cache(dir: Option<&Path>) -> CompileCache {
    let dir = dir
        .map(Path::to_path_buf)
        .or_else(CompileCache::default_dir)
        .unwrap_or_else(|| std::env::temp_dir().join("dlthost-components"));
    CompileCache::new(dir, DEFAULT_CACHE_CAP)
}

fn parse_allowed_host(s: &str) -> Result<AllowedHost, String> {
    AllowedHost::parse(s).map_err(|e| e.to_string())
}

fn parse_allowed_tcp(s: &str) -> Result<AllowedTcp, String> {
    AllowedTcp::parse(s).map_err(|e| e.to_string())
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
pub fn print_summary(sink: &str, report: &LoadReport, pipeline: &PipelineDir, command: &str) {
    let rows = report.rows();
    let rate = if report.elapsed_secs > 0.0 { rows as f64 / report.elapsed_secs } else { 0.0 };
    let terminal: Vec<&crate::load::JobFailure> = report.terminal_failures().collect();
    let stopped: Vec<&crate::load::JobFailure> = report.failures.iter().filter(|f| !f.terminal).collect();
    let tables = |fs: &[&crate::load::JobFailure]| {
        let mut names: Vec<String> = fs.iter().map(|f| format!("`{}`", f.table)).collect();
        names.dedup();
        names.join(", ")
    };
    let left = |fs: &[&crate::load::JobFailure]| fs.iter().map(|f| f.rows_left).sum::<u64>();
    // The first line says what failed, never a success when something did.
    if !terminal.is_empty() {
        eprintln!(
            "FAILED: {} rows of {} were not delivered: {} job{} failed terminally ({rows} other rows were delivered into `{sink}`)",
            left(&terminal),
            tables(&terminal),
            terminal.len(),
            if terminal.len() == 1 { "" } else { "s" },
        );
    } else if !stopped.is_empty() {
        eprintln!(
            "STOPPED: {} rows of {} were not delivered yet: every attempt (--max-attempts) ended in a retry, a trap or a timeout ({rows} rows were delivered into `{sink}`)",
            left(&stopped),
            tables(&stopped),
        );
    } else if report.interrupted {
        eprintln!("INTERRUPTED: {rows} rows were delivered into `{sink}` before the stop");
    }
    if terminal.is_empty() && stopped.is_empty() && !report.interrupted {
        eprintln!(
            "Loaded {rows} rows into `{sink}` in {:.2}s ({rate:.0} rows/s, {} calls, {} retries)",
            report.elapsed_secs, report.calls, report.retries
        );
    } else {
        eprintln!("  {rows} rows in {:.2}s, {} calls, {} retries", report.elapsed_secs, report.calls, report.retries);
    }
    for (table, t) in &report.tables {
        eprintln!("  {table}: {} rows, {} jobs", t.rows, t.jobs);
    }
    for p in &report.packages_loaded {
        let failed = std::fs::read_to_string(p.join("package_completed.json")).is_ok_and(|s| s.contains("failed"));
        if failed {
            eprintln!("  package with failed jobs (not done): {}", p.display());
        } else {
            eprintln!("  package: {}", p.display());
        }
    }
    if let Some(load_id) = &report.skipped_lines_package {
        // Wherever the package is now: pending, or loaded.
        let file = [pipeline.loaded_dir(), pipeline.normalized_dir()]
            .iter()
            .map(|d| d.join(load_id).join("bad_lines.jsonl"))
            .find(|f| f.is_file());
        if let Some(file) = file {
            let n = report.skipped_lines;
            eprintln!("  skipped {n} malformed line{}, kept in {}", if n == 1 { "" } else { "s" }, file.display());
        }
    }
    for f in report.failures.iter().chain(&report.earlier_failures) {
        let what = if f.terminal { "failed (moved to failed_jobs/)" } else { "stopped" };
        eprintln!(
            "error: job {} of table `{}` {what} at rows {}..{}: {}",
            crate::package::shown_job_id(&f.job_id),
            f.table,
            f.start_row,
            f.start_row + f.row_count,
            f.error
        );
    }
    if !terminal.is_empty() {
        let dir = pipeline.root().parent().map(|d| d.display().to_string()).unwrap_or_default();
        eprintln!("Fix the sink (or its settings), then send the failed jobs again with:");
        let program = std::env::args().next().map(|p| shell_word(&p)).unwrap_or_else(|| "host".into());
        eprintln!(
            "  {program} retry-failed --pipeline {} --pipelines-dir {}",
            shell_word(pipeline.name()),
            shell_word(&dir)
        );
        eprintln!("  {command}");
    } else if report.interrupted {
        eprintln!("Interrupted: every confirmed batch is recorded. Resume with: {command}");
    } else if !report.packages_pending.is_empty() {
        eprintln!("hint: resume where it stopped with: {command}");
    }
}

/// Prints a load's result (JSON on stdout with `--json`, the summary on
/// stderr unless quiet) and returns the exit code. Shared by `run` and `load`.
pub fn finish_load(sink: &str, report: &LoadReport, pipeline: &PipelineDir, json: bool, quiet: bool) -> u8 {
    let code = super::exit_code(report);
    if json {
        match json_summary(report, code) {
            Ok(s) => outln!("{s}"),
            Err(e) => eprintln!("error: cannot print the summary: {e}"),
        }
    }
    if !quiet {
        print_summary(sink, report, pipeline, &this_command());
    }
    code
}

/// The version of the `--json` summary's shape; changes to it are
/// additive, and its fields are documented in docs/json-summary.md.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// The `--json` summary: the report, its schema version, the exit code and
/// the outcome in one word.
fn json_summary(report: &LoadReport, code: u8) -> serde_json::Result<String> {
    let mut doc = serde_json::to_value(report)?;
    if let Some(fields) = doc.as_object_mut() {
        let outcome = match code {
            0 => "delivered",
            super::EXIT_INTERRUPTED => "interrupted",
            super::EXIT_TERMINAL => "terminal_failures",
            _ => "retryable_failures",
        };
        fields.insert("schema_version".into(), JSON_SCHEMA_VERSION.into());
        fields.insert("exit_code".into(), code.into());
        fields.insert("outcome".into(), outcome.into());
    }
    serde_json::to_string_pretty(&doc)
}

/// `word` quoted for a shell when it needs it.
pub fn shell_word(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The command line that was used, for "resume with" hints.
pub fn this_command() -> String {
    std::env::args().map(|a| shell_word(&a)).collect::<Vec<_>>().join(" ")
}
