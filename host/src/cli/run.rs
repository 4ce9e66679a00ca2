//! `host run`: finish pending packages, normalize the input into a new
//! package, and load it. Rerunning the same command after a failure or a
//! crash is always right: pending work is finished first, and input that
//! was already packaged or loaded is not packaged again.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

use anyhow::bail;
use clap::Args;

use super::common::{MonitorArgs, PipelineArgs, SinkArgs, finish_load, finish_metrics, finish_traces};
use super::flags::ReadFlags;
use super::progress::Progress;
use crate::config::ConfigSources;
use crate::extract::InputSpec;
use crate::input::InputSource;
use crate::load::LoadReport;
use crate::pipeline::{self, AlreadyLoaded, DryRun, Mode, Normalized, Observer, RunRequest, Shard, TableRows};
use crate::settings::Resolver;
use crate::stop::Cancel;

/// `--on-bad-line` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BadLineArg {
    /// Stop with an error naming the file and line. Rows of jobs loaded
    /// while later ones were normalized stay delivered; the package stays
    /// pending and the rerun after the fix sends only the rest.
    Fail,
    /// Skip the line, report it at the end, keep it in the package.
    Skip,
}

/// Arguments of `host run`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  host run --component print.wasm --input events.jsonl\n  cat rows.jsonl | host run --component capture.wasm --input - --table rows --dir ./out::/out"
)]
pub struct RunArgs {
    /// Input files: JSON Lines, a JSON array (either optionally gzip) or
    /// Parquet (any codec), detected by content; `-` reads stdin.
    #[arg(long, value_name = "PATH", required = true)]
    pub input: Vec<PathBuf>,
    /// Root table name. Default: the input file's name without extensions
    /// (`events.jsonl.gz` → `events`). Required for stdin.
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,
    /// Route each record to the table named by this field (records without
    /// it go to --table or the file's table).
    #[arg(long, value_name = "FIELD")]
    pub table_from_field: Option<String>,
    /// What to do with a malformed JSON Lines line: `fail` (default; nothing
    /// is loaded) or `skip` (count it, report it, keep it in the package's
    /// bad_lines.jsonl).
    #[arg(long, value_name = "WHAT", default_value = "fail")]
    pub on_bad_line: BadLineArg,
    /// The settings of reading input (`--max-record-bytes`).
    #[command(flatten)]
    pub read: ReadFlags,
    /// Gzip `jsonl` job files (`.jsonl.gz`); off by default.
    #[arg(long)]
    pub gzip_jobs: bool,
    /// Threads that parse and normalize the input (default: one per core).
    /// The rows do not depend on it.
    #[arg(long, value_name = "N")]
    pub normalize_threads: Option<usize>,
    /// Load the input even if the same input was loaded before.
    #[arg(long)]
    pub force: bool,
    /// Load only this shard's share of the input files, INDEX/COUNT (0/4 …
    /// 3/4): a file belongs to one shard by a hash of its path. Each shard
    /// keeps its state in <pipeline>/shards/INDEX-of-COUNT; run every shard
    /// with the same --input list. See docs/deploy/kubernetes.md.
    #[arg(long, value_name = "INDEX/COUNT", value_parser = Shard::parse, conflicts_with = "shard_count")]
    pub shard: Option<Shard>,
    /// Like --shard, with INDEX from $JOB_COMPLETION_INDEX (a Kubernetes
    /// Indexed Job).
    #[arg(long, value_name = "COUNT", value_parser = clap::value_parser!(u32).range(1..))]
    pub shard_count: Option<u32>,
    /// `host normalize` only: keep the package pending (a later `host load`
    /// delivers it) and the grown schema; by default a dry run keeps nothing.
    #[arg(long)]
    pub keep: bool,
    /// Print the run summary as one JSON document on stdout.
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

impl RunArgs {
    /// Runs the command; returns the exit code.
    pub fn execute(self, quiet: bool, cancel: &Cancel) -> anyhow::Result<u8> {
        self.execute_mode(quiet, Mode::Load, cancel)
    }

    /// `host normalize`: package the input, then print the tables a sink
    /// would get. A dry run: it needs the sink's spec, not its secrets, and
    /// keeps nothing unless `--keep`.
    pub fn execute_normalize_only(mut self, quiet: bool, cancel: &Cancel) -> anyhow::Result<u8> {
        self.sink.dry_run = true;
        let keep = self.keep;
        self.execute_mode(quiet, Mode::DryRun { keep }, cancel)
    }

    fn execute_mode(self, quiet: bool, mode: Mode, cancel: &Cancel) -> anyhow::Result<u8> {
        if mode == Mode::Load && self.keep {
            bail!("--keep is for `host normalize` (a run always keeps its package until it is delivered)");
        }
        let request = self.request(mode)?;
        let sink = self.sink.open(&self.pipeline, cancel, self.shard()?)?;
        let metrics = self.metrics.start(&sink)?;
        let traces = self.metrics.traces()?;
        let mut observers: Vec<Arc<dyn Observer>> = vec![Arc::new(Screen::new(quiet))];
        observers.extend(metrics.iter().map(|m| m.clone() as Arc<dyn Observer>));
        let result = pipeline::run(&sink, &request, Arc::new(observers));
        finish_metrics(metrics, result.as_ref().ok().map(|o| &o.report));
        finish_traces(traces);
        let outcome = result?;
        let sink_name = sink.runtime.name();
        if let Some(already) = &outcome.already_loaded {
            print_already_loaded(already, quiet);
        } else if outcome.normalized.is_none() && !quiet {
            eprintln!("No rows in the input; nothing new to load.");
        }
        if let Some(dry) = &outcome.dry_run {
            print_tables(&dry.tables, self.json)?;
            print_dry_run_end(dry);
            return Ok(0);
        }
        Ok(finish_load(sink_name, &outcome.report, &sink.pipeline, self.json, quiet))
    }

    /// `--shard`, or `--shard-count` with the index from the environment.
    /// A shard reads files only.
    fn shard(&self) -> anyhow::Result<Option<Shard>> {
        let shard = match (self.shard, self.shard_count) {
            (Some(shard), _) => Some(shard),
            (None, Some(count)) => {
                let index = std::env::var(pipeline::INDEX_ENV).ok();
                Some(Shard::from_environment(count, index.as_deref()).map_err(anyhow::Error::msg)?)
            }
            (None, None) => None,
        };
        if shard.is_some() && self.input.iter().any(|p| p.as_os_str() == "-") {
            bail!("stdin cannot be sharded: shards share out input files; pass files with --input");
        }
        Ok(shard)
    }

    /// What to read, and how: the library's request.
    fn request(&self, mode: Mode) -> anyhow::Result<RunRequest> {
        let resolver = Resolver::new(&self.read.0, &EMPTY);
        Ok(RunRequest {
            inputs: self.inputs()?,
            mode,
            force: self.force,
            skip_bad_lines: self.on_bad_line == BadLineArg::Skip,
            max_record_bytes: resolver.max_record_bytes()?,
            gzip_jobs: self.gzip_jobs,
            normalize_threads: self
                .normalize_threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)),
        })
    }

    fn inputs(&self) -> anyhow::Result<Vec<InputSpec>> {
        let mut inputs = Vec::new();
        for path in &self.input {
            let source = InputSource::from_arg(path);
            if let InputSource::File(p) = &source
                && !p.is_file()
            {
                bail!("input {} does not exist or is not a file", p.display());
            }
            let table = match (&self.table, source.default_table()) {
                (Some(t), _) => t.clone(),
                (None, Some(t)) => t,
                (None, None) => bail!("reading stdin needs a table name: add --table NAME"),
            };
            inputs.push(InputSpec { source, table, table_from_field: self.table_from_field.clone() });
        }
        Ok(inputs)
    }
}

/// No config sources: the settings of reading input are flags only.
static EMPTY: LazyLock<ConfigSources> = LazyLock::new(ConfigSources::default);

/// Progress of a run on stderr: a bar per phase and the lines between.
struct Screen {
    quiet: bool,
    bar: Mutex<Option<Progress>>,
}

impl Screen {
    fn new(quiet: bool) -> Self {
        Screen { quiet, bar: Mutex::new(None) }
    }

    fn show(&self, progress: Option<Progress>) {
        if let Ok(mut bar) = self.bar.lock() {
            if let Some(old) = bar.take() {
                old.finish();
            }
            *bar = progress;
        }
    }

    fn with_bar(&self, f: impl FnOnce(&Progress)) {
        if let Ok(bar) = self.bar.lock()
            && let Some(bar) = bar.as_ref()
        {
            f(bar);
        }
    }
}

impl Observer for Screen {
    fn resuming(&self) {
        if !self.quiet {
            eprintln!("Resuming pending packages first.");
        }
    }

    fn normalizing(&self, total_bytes: Option<u64>) {
        self.show(Some(Progress::new("normalizing", self.quiet, total_bytes, true)));
    }

    fn normalize_progress(&self, records: u64, bytes: u64) {
        self.with_bar(|bar| bar.update(bytes, || format!("{records} records")));
    }

    fn normalize_done(&self) {
        self.show(None);
    }

    fn normalized(&self, n: &Normalized) {
        if !self.quiet {
            eprintln!("Normalized {} records into {} rows: {}", n.records, n.rows, n.package.display());
        }
        if n.bad_lines > 0 {
            eprintln!(
                "warning: skipped {} malformed line{}; the summary says where they are kept",
                n.bad_lines,
                if n.bad_lines == 1 { "" } else { "s" }
            );
        }
    }

    fn loading(&self, rows: u64) {
        self.show(Some(Progress::new("loading", self.quiet, Some(rows), false)));
    }

    fn load_progress(&self, r: &LoadReport) {
        self.with_bar(|bar| {
            bar.update(r.rows(), || {
                r.tables.iter().map(|(t, s)| format!("{t}: {}", s.rows)).collect::<Vec<_>>().join(", ")
            })
        });
    }

    fn load_done(&self) {
        self.show(None);
    }
}

/// The one message for input that was loaded before. When jobs of that
/// package failed, the summary lists them and `--force` is not offered
/// (it would send the delivered jobs again).
fn print_already_loaded(already: &AlreadyLoaded, quiet: bool) {
    if quiet {
        return;
    }
    let load_id = &already.load_id;
    if already.failed_jobs == 0 {
        eprintln!("This input was already loaded (package {load_id}); nothing to do. Use --force to load it again.");
    } else {
        eprintln!(
            "This input was loaded before (package {load_id}), but {} of its jobs failed and were not delivered; nothing was sent now.",
            already.failed_jobs
        );
    }
}

fn print_dry_run_end(dry: &DryRun) {
    match &dry.kept {
        Some(path) => eprintln!("The package is pending in {}; `host load` delivers it.", path.display()),
        None => eprintln!(
            "Dry run: nothing was kept (no package, the pipeline's schema unchanged); pass --keep to leave the package pending for `host load`."
        ),
    }
}

/// Prints the tables and columns of a package (what a sink would receive).
fn print_tables(tables: &[TableRows], json: bool) -> anyhow::Result<()> {
    if json {
        let doc: Vec<serde_json::Value> = tables
            .iter()
            .map(|TableRows { table: t, rows }| {
                serde_json::json!({"name": t.name, "parent": t.parent, "rows": rows, "columns": t.columns})
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    for TableRows { table: t, rows } in tables {
        outln!(
            "table {} ({rows} rows{})",
            t.name,
            t.parent.as_ref().map(|p| format!(", child of {p}")).unwrap_or_default()
        );
        for c in &t.columns {
            let mut hints = Vec::new();
            if !c.nullable {
                hints.push("not null");
            }
            if c.variant {
                hints.push("variant");
            }
            if c.primary_key {
                hints.push("primary key");
            }
            let hints = if hints.is_empty() { String::new() } else { format!("  ({})", hints.join(", ")) };
            outln!("  {:<30} {}{hints}", c.name, c.data_type.name());
        }
    }
    Ok(())
}
