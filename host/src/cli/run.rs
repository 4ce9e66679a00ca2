//! `host run`: finish pending packages, normalize the input into a new
//! package, and load it. Rerunning the same command after a failure or a
//! crash is always right: pending work is finished first, and input that
//! was already packaged or loaded is not packaged again.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use super::common::{PipelineArgs, SinkArgs, finish_load};
use super::progress::Progress;
use crate::extract::{self, ExtractOptions, InputSpec};
use crate::input::InputSource;
use crate::load::{self, LoadReport, ProgressHook};
use crate::package::{Package, PipelineDir};

/// `--on-bad-line` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BadLineArg {
    /// Stop with an error naming the file and line; nothing is loaded.
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
    /// The most bytes one input record (a line, an array element) may have;
    /// a longer one stops the read, or is skipped and quarantined as its
    /// first 4 KiB and its size with --on-bad-line skip [default: 64MiB].
    #[arg(long, value_name = "SIZE", value_parser = crate::cli::units::parse_bytes)]
    pub max_record_bytes: Option<usize>,
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
    /// `host normalize` only: keep the package pending (a later `host load`
    /// delivers it) and the grown schema; by default a dry run keeps nothing.
    #[arg(long)]
    pub keep: bool,
    /// Print the run summary as one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// The sink and its settings.
    #[command(flatten)]
    pub sink: SinkArgs,
    /// The pipeline.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

impl RunArgs {
    /// Runs the command; returns the exit code.
    pub fn execute(self, quiet: bool) -> anyhow::Result<u8> {
        self.execute_mode(quiet, true)
    }

    /// `host normalize`: steps 2 only, then print the tables a sink would
    /// get. A dry run: it needs the sink's spec, not its secrets, and keeps
    /// nothing unless `--keep`.
    pub fn execute_normalize_only(mut self, quiet: bool) -> anyhow::Result<u8> {
        self.sink.dry_run = true;
        self.execute_mode(quiet, false)
    }

    fn execute_mode(self, quiet: bool, load: bool) -> anyhow::Result<u8> {
        if load && self.keep {
            bail!("--keep is for `host normalize` (a run always keeps its package until it is delivered)");
        }
        let inputs = self.inputs()?;
        let sink = self.sink.open(&self.pipeline)?;
        let pipeline = &sink.pipeline;
        let _lock = pipeline.lock()?;
        let mut report = LoadReport::default();

        // 1. Finish what an earlier run left pending.
        if load && !pipeline.pending()?.is_empty() {
            if !quiet {
                eprintln!("Resuming pending packages first.");
            }
            load::load_pending(&sink.runtime, pipeline, &sink.load, &mut report)?;
            if !report.ok() {
                return Ok(self.finish(sink.runtime.name(), &report, pipeline, quiet));
            }
        }

        // 2. Package the input, unless it is already loaded.
        let normalize = &sink.settings.normalize;
        let format = sink.settings.loader_file_format;
        let fingerprint = extract::fingerprint_files(&inputs, normalize, format)?;
        if let Some(fp) = &fingerprint
            && let Some(load_id) = pipeline.loaded_fingerprint(fp)?
            && !self.force
        {
            already_loaded(pipeline, &load_id, &mut report, quiet)?;
            return Ok(self.finish(sink.runtime.name(), &report, pipeline, quiet));
        }
        let total_bytes: u64 = inputs
            .iter()
            .filter_map(|i| match &i.source {
                InputSource::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
                InputSource::Stdin => None,
            })
            .sum();
        let bar = Progress::new("normalizing", quiet, (total_bytes > 0).then_some(total_bytes), true);
        let on_progress = |records: u64, bytes: u64| bar.update(bytes, || format!("{records} records"));
        let options = ExtractOptions {
            format,
            rotation: sink.rotation,
            known_fingerprint: fingerprint.as_deref(),
            skip_bad_lines: self.on_bad_line == BadLineArg::Skip,
            save_schema: load || self.keep,
            max_record_bytes: self.max_record_bytes.unwrap_or(crate::input::MAX_RECORD_BYTES).max(1),
            gzip: self.gzip_jobs,
            progress: &on_progress,
            threads: self
                .normalize_threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
                .max(1),
        };
        let extracted = extract::extract(pipeline, &inputs, normalize, options);
        bar.finish();
        let extracted = extracted?;
        match &extracted.package {
            None if !quiet => eprintln!("No rows in the input; nothing new to load."),
            Some(path) => {
                // Stdin's fingerprint is only known after reading it.
                if let Some(load_id) = pipeline.loaded_fingerprint(&extracted.fingerprint)?
                    && !self.force
                {
                    Package::open(path)?.discard()?;
                    already_loaded(pipeline, &load_id, &mut report, quiet)?;
                    return Ok(self.finish(sink.runtime.name(), &report, pipeline, quiet));
                }
                if !quiet {
                    eprintln!(
                        "Normalized {} records into {} rows: {}",
                        extracted.records,
                        extracted.rows,
                        path.display()
                    );
                }
                if extracted.bad_lines > 0 {
                    report.skipped_lines = extracted.bad_lines;
                    report.skipped_lines_package = path.file_name().map(|n| n.to_string_lossy().into_owned());
                    eprintln!(
                        "warning: skipped {} malformed line{}; the summary says where they are kept",
                        extracted.bad_lines,
                        if extracted.bad_lines == 1 { "" } else { "s" }
                    );
                }
            }
            None => {}
        }

        if !load {
            if let Some(path) = &extracted.package {
                let package = Package::open(path)?;
                print_tables(&package, self.json)?;
                if self.keep {
                    eprintln!("The package is pending in {}; `host load` delivers it.", path.display());
                } else {
                    package.discard()?;
                    eprintln!(
                        "Dry run: nothing was kept (no package, the pipeline's schema unchanged); pass --keep to leave the package pending for `host load`."
                    );
                }
            }
            return Ok(0);
        }

        // 3. Load it.
        let rows: u64 = pipeline.pending()?.iter().flat_map(|p| p.state.jobs.iter().map(|j| j.rows)).sum();
        let mut options = sink.load.clone();
        let bar = std::sync::Arc::new(Progress::new("loading", quiet, Some(rows), false));
        let shown = bar.clone();
        options.progress = Some(ProgressHook(std::sync::Arc::new(move |r: &LoadReport| {
            let done = r.rows();
            shown.update(done, || {
                r.tables.iter().map(|(t, s)| format!("{t}: {}", s.rows)).collect::<Vec<_>>().join(", ")
            });
        })));
        let loaded = load::load_pending(&sink.runtime, pipeline, &options, &mut report);
        bar.finish();
        loaded?;
        Ok(self.finish(sink.runtime.name(), &report, pipeline, quiet))
    }

    fn finish(&self, sink: &str, report: &LoadReport, pipeline: &PipelineDir, quiet: bool) -> u8 {
        finish_load(sink, report, pipeline, self.json, quiet)
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

/// The input was loaded before, as package `load_id`. When jobs of that
/// package failed, its rows were not all delivered: they go into the
/// report (the run then exits 3, with the commands that retry them), and
/// `--force` is not offered, as it would send the delivered jobs again.
fn already_loaded(pipeline: &PipelineDir, load_id: &str, report: &mut LoadReport, quiet: bool) -> anyhow::Result<()> {
    let failed = pipeline.failed_jobs(load_id)?;
    if failed.is_empty() {
        if !quiet {
            eprintln!(
                "This input was already loaded (package {load_id}); nothing to do. Use --force to load it again."
            );
        }
        return Ok(());
    }
    for (job, error) in failed {
        report.earlier_failures.push(crate::load::JobFailure {
            load_id: load_id.to_string(),
            job_id: job.job_id.clone(),
            table: job.table.clone(),
            start_row: 0,
            row_count: job.rows,
            terminal: true,
            rows_left: job.rows,
            error: error.strip_prefix("terminal: ").unwrap_or(&error).to_string(),
        });
    }
    if !quiet {
        eprintln!(
            "This input was loaded before (package {load_id}), but {} of its jobs failed and were not delivered; nothing was sent now.",
            report.earlier_failures.len()
        );
    }
    Ok(())
}

/// Prints the tables and columns of a package (what a sink would receive).
fn print_tables(pkg: &Package, json: bool) -> anyhow::Result<()> {
    let tables: Vec<&crate::schema::Table> =
        pkg.schema.tables.iter().filter(|t| pkg.state.jobs.iter().any(|j| j.table == t.name)).collect();
    if json {
        let doc: Vec<serde_json::Value> = tables
            .iter()
            .map(|t| {
                let rows: u64 = pkg.state.jobs.iter().filter(|j| j.table == t.name).map(|j| j.rows).sum();
                serde_json::json!({"name": t.name, "parent": t.parent, "rows": rows, "columns": t.columns})
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    for t in tables {
        let rows: u64 = pkg.state.jobs.iter().filter(|j| j.table == t.name).map(|j| j.rows).sum();
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
