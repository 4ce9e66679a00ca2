//! What the sandbox costs: the same job files delivered into the no-op
//! WebAssembly sink and into a native no-op callback (same reader, same
//! conversion to WIT values), with 1, 2 and 4 workers; instantiation from a
//! warm cache; the whole `pipeline::run` (normalize and load) as the CLI
//! calls it; cold compile and cached load of the example sinks.
//!
//! Usage (the guests built, e.g. by the test suite):
//!   cargo bench --bench sandbox                       (200k generated rows)
//!   cargo bench --bench sandbox -- INPUT.jsonl [EXTRA.wasm ...]

#[path = "data.rs"]
mod data;

use std::path::{Path, PathBuf};
use std::time::Instant;

use host::catalog;
use host::extract::{self, ExtractOptions, InputSpec};
use host::input::InputSource;
use host::load::{self, LoadOptions, LoadReport};
use host::normalize::NormalizeSettings;
use host::package::{FileFormat, JobReader, JobState, PipelineDir, Rotation};
use host::pipeline::{self, RunRequest, Sink, SinkRequest};
use host::runtime::{CompileCache, SandboxOptions, SinkRuntime, convert};
use host::settings::FlagValues;

const BATCH: u32 = 1000;

fn package(dir: &Path, input: &Path, jobs: u64, rows: u64) -> anyhow::Result<PipelineDir> {
    let pipeline = PipelineDir::open(dir, "bench")?;
    let settings = NormalizeSettings {
        naming_convention: host::normalize::NamingConvention::Direct,
        max_nesting_level: 0,
        skip_dlt_columns_and_tables: true,
        schema_hints: Default::default(),
    };
    let inputs =
        [InputSpec { source: InputSource::File(input.to_path_buf()), table: "events".into(), table_from_field: None }];
    let options = ExtractOptions {
        format: FileFormat::Jsonl,
        rotation: Rotation { max_items: Some(rows.div_ceil(jobs)), max_bytes: None },
        known_fingerprint: None,
        skip_bad_lines: false,
        max_record_bytes: host::input::RecordLimit::default().max_bytes,
        save_schema: true,
        gzip: false,
        progress: &|_, _| {},
        threads: 1,
        cancel: &host::stop::Cancel::default(),
        load_id_residue: None,
        target: extract::Target::Whole,
    };
    extract::extract(&pipeline, &inputs, &settings, options)?;
    Ok(pipeline)
}

fn count_rows(input: &Path) -> anyhow::Result<u64> {
    Ok(std::fs::read_to_string(input)?.lines().count() as u64)
}

/// The native baseline: read the same batches and build the same WIT values.
fn native(pipeline: &PipelineDir, workers: usize) -> anyhow::Result<u64> {
    let pkg = pipeline.pending()?.remove(0);
    let jobs = pkg.state.jobs.clone();
    let table = pkg.schema.table("events").cloned().ok_or_else(|| anyhow::anyhow!("no table"))?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let total = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while let Some(job) = jobs.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                    let Ok(mut reader) = JobReader::open(&pkg.job_path(job, JobState::New), 0) else { return };
                    while let Ok(Some(batch)) = reader.next_batch(&table, BATCH as usize, None) {
                        let n = batch.rows.len() as u64;
                        let items: Vec<_> = batch.rows.into_iter().map(convert::row).collect();
                        std::hint::black_box(items);
                        total.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    Ok(total.into_inner())
}

fn main() -> anyhow::Result<()> {
    // cargo bench passes `--bench`.
    let args: Vec<PathBuf> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).map(PathBuf::from).collect();
    let generated = data::input(200_000)?;
    let input = args.first().unwrap_or(&generated);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let noop = root.join("target/guests/wasm32-wasip2/release/noop.wasm");
    let rows = count_rows(input)?;
    let work = tempfile::tempdir()?;
    let cache = CompileCache::new(work.path().join("cache"), 1 << 30);
    let sandbox = SandboxOptions { cache: Some(cache.clone()), ..SandboxOptions::default() };

    println!("{rows} rows, batch {BATCH}, 4 job files");
    println!("{:<8} {:>14} {:>14} {:>7}", "workers", "wasm rows/s", "native rows/s", "ratio");
    for workers in [1usize, 2, 4] {
        let runtime = SinkRuntime::load(&noop, sandbox.clone())?;
        let dir = work.path().join(format!("w{workers}"));
        let pipeline = package(&dir, input, 4, rows)?;
        let started = Instant::now();
        let delivered = native(&pipeline, workers)?;
        let native_rate = delivered as f64 / started.elapsed().as_secs_f64();
        let options = LoadOptions {
            workers,
            batch_size: BATCH,
            max_attempts: 1,
            backoff: std::time::Duration::from_millis(10),
            keep_loaded: 1,
            ..LoadOptions::default()
        };
        let mut report = LoadReport::default();
        let started = Instant::now();
        load::load_pending(&runtime, &pipeline, &options, &mut report)?;
        let wasm_rate = report.rows() as f64 / started.elapsed().as_secs_f64();
        println!("{workers:<8} {wasm_rate:>14.0} {native_rate:>14.0} {:>6.2}x", native_rate / wasm_rate);
    }

    let runtime = SinkRuntime::load(&noop, sandbox.clone())?;
    let n = 1000;
    let started = Instant::now();
    for _ in 0..n {
        std::hint::black_box(runtime.instance(None)?);
    }
    println!(
        "instantiate noop (warm cache, new Store each): {:.1} µs",
        started.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );

    // The whole operation, as `host run` calls it: normalize and load.
    for workers in [1usize, 2] {
        let rate = whole_run(&noop, input, &work.path().join(format!("run{workers}")), &cache, workers)?;
        println!("pipeline::run, {workers} workers (normalize + load): {rate:.0} rows/s");
    }

    let mut components = vec![noop];
    components.extend(args.iter().skip(1).cloned());
    println!("{:<40} {:>10} {:>12} {:>12}", "component", "size", "compile ms", "cached ms");
    for c in components {
        let bytes = std::fs::read(&c)?;
        let fresh = CompileCache::new(work.path().join("fresh").join(c.file_name().unwrap_or_default()), 1 << 30);
        let engine = host::runtime::engine(false).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let cold = fresh.fill(&engine, &bytes).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let warm = fresh.fill(&engine, &bytes).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        println!("{:<40} {:>10} {:>12.1} {:>12.2}", c.display(), bytes.len(), cold.millis, warm.millis);
    }
    Ok(())
}

/// `pipeline::run` of `input` into `sink` with batch [`BATCH`]: rows/s.
fn whole_run(sink: &Path, input: &Path, dir: &Path, cache: &CompileCache, workers: usize) -> anyhow::Result<f64> {
    let mut flags = FlagValues::default();
    flags.set(&catalog::BATCH_SIZE, BATCH.to_string());
    flags.set(&catalog::WORKERS, workers.to_string());
    flags.set(&catalog::FILE_MAX_ITEMS, count_rows(input)?.div_ceil(workers as u64).to_string());
    let request = SinkRequest {
        component: Some(sink.to_path_buf()),
        pipelines_dir: dir.to_path_buf(),
        project_dir: dir.to_path_buf(),
        flags,
        cache: Some(cache.clone()),
        ..SinkRequest::default()
    };
    let opened = Sink::open(&request)?;
    let inputs = vec![InputSpec {
        source: InputSource::File(input.to_path_buf()),
        table: "events".into(),
        table_from_field: None,
    }];
    let run = RunRequest { normalize_threads: 2, ..RunRequest::new(inputs) };
    let started = Instant::now();
    let outcome = pipeline::run(&opened, &run, std::sync::Arc::new(()))?;
    Ok(outcome.report.rows() as f64 / started.elapsed().as_secs_f64())
}
