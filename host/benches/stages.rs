//! Per-stage throughput: parse, normalize (nesting 0 and 2), job-file write
//! and read-back (jsonl, parquet) with file sizes, and ledger commits, on
//! the generated benchmark rows (`benches/data.rs`).
//!
//!   cargo bench --bench stages                 (1M generated rows)
//!   cargo bench --bench stages -- ROWS|FILE    (another size, or a file)
//!   STAGES=parse,normalize cargo bench --bench stages   (some stages only:
//!   parse, normalize, writers, phase, parallel, ledger; NESTING=0,2 sets
//!   the levels the normalize stage runs; REPEAT=N runs each level N times
//!   and adds the best and the median pass: on a shared VM one pass can
//!   be 25% off, and neighbours only ever slow a pass down)

#[path = "data.rs"]
mod data;

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use host::extract::{self, ExtractOptions, InputSpec};
use host::input::{self, InputError, InputSource, ReadOptions};
use host::ledger::{Ledger, Record};
use host::normalize::{NormalizeSettings, Normalizer};
use host::package::{
    FileFormat, JobReader, JobState, PackageWriter, ParquetJobReader, PipelineDir, Rotation, batch_rows,
};
use host::schema::Schema;

fn settings(nesting: u32) -> NormalizeSettings {
    NormalizeSettings {
        naming_convention: host::normalize::NamingConvention::Direct,
        max_nesting_level: nesting,
        skip_dlt_columns_and_tables: true,
        schema_hints: Default::default(),
    }
}

fn report(stage: &str, rows: u64, bytes: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!("{stage:<28} {:>12.0} rows/s {:>9.1} MB/s", rows as f64 / secs, bytes as f64 / 1e6 / secs);
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn dir_size(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() { dir_size(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}

/// The whole normalize phase (`host normalize`) of `source` into a new
/// package of `pipeline`, at nesting 0, on `threads` threads.
fn normalize_into(
    pipeline: &PipelineDir,
    source: &InputSource,
    format: FileFormat,
    threads: usize,
) -> anyhow::Result<()> {
    let inputs = [InputSpec { source: source.clone(), table: "events".into(), table_from_field: None }];
    let options = ExtractOptions {
        format,
        rotation: Rotation::default(),
        known_fingerprint: Some("bench"),
        skip_bad_lines: false,
        max_record_bytes: host::input::RecordLimit::default().max_bytes,
        save_schema: true,
        gzip: false,
        progress: &|_, _| {},
        threads,
        cancel: &host::stop::Cancel::default(),
        load_id_residue: None,
        target: extract::Target::Whole,
    };
    extract::extract(pipeline, &inputs, &settings(0), options)?;
    Ok(())
}

/// The input named on the command line (a row count or a file; cargo bench
/// adds `--bench`), else `default_rows` generated rows.
fn bench_input(default_rows: u64) -> anyhow::Result<std::path::PathBuf> {
    let arg = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    Ok(match arg {
        Some(a) => match a.parse::<u64>() {
            Ok(rows) => data::input(rows)?,
            Err(_) => std::path::PathBuf::from(a),
        },
        None => data::input(default_rows)?,
    })
}

/// Whether `stage` is to run: all of them unless `STAGES` lists some.
fn wanted(stage: &str) -> bool {
    std::env::var("STAGES").map_or(true, |list| list.split(',').any(|s| s.trim() == stage))
}

/// One pass of the normalize stage at `nesting` over `source` (`rows`
/// records, `size` bytes), as a normalizing thread does it: each line
/// straight from its bytes when the fast path takes it, else parsed and
/// pushed. Prints the pass and returns its records per second.
fn normalize_pass(
    source: &InputSource,
    counter: &AtomicU64,
    nesting: u32,
    rows: u64,
    size: u64,
) -> anyhow::Result<f64> {
    let mut n = Normalizer::new(&settings(nesting), Schema::default(), "1.0")?;
    let mut out = Vec::new();
    let (mut produced, mut fast) = (0u64, 0u64);
    let started = Instant::now();
    let mut normalize_line = |text: &[u8], line: u64| -> anyhow::Result<()> {
        out.clear();
        if n.push_line("events", text, &mut out) {
            fast += 1;
        } else {
            let record = input::parse_line(line, text).map_err(|e| anyhow::anyhow!("{}", e.message))?;
            n.push("events", &record, &mut out)?;
        }
        produced += out.len() as u64;
        Ok(())
    };
    let cancel = host::stop::Cancel::default();
    input::read_chunks(
        source,
        ReadOptions { hasher: None, bytes_read: counter, limit: input::RecordLimit::default(), cancel: &cancel },
        host::extract::CHUNK_LINES,
        |chunk| chunk.lines.iter().try_for_each(|(line, range)| normalize_line(&chunk.text[range.clone()], *line)),
        |_| Err(anyhow::anyhow!("the benchmark input is JSON Lines")),
    )?;
    let secs = started.elapsed().as_secs_f64();
    report(&format!("parse+normalize nesting {nesting}"), rows, size, started);
    println!(
        "{:<28} {produced} rows in {} tables, {:.0} output rows/s, {fast} records on the fast path",
        "",
        n.schema().tables.len(),
        produced as f64 / secs
    );
    Ok(rows as f64 / secs)
}

fn main() -> anyhow::Result<()> {
    let input = bench_input(1_000_000)?;
    let input = input.as_path();
    println!("input: {}", input.display());
    let size = std::fs::metadata(input)?.len();
    let source = InputSource::File(input.to_path_buf());

    let counter = AtomicU64::new(0);
    let cancel = host::stop::Cancel::default();
    let read_options =
        || ReadOptions { hasher: None, bytes_read: &counter, limit: input::RecordLimit::default(), cancel: &cancel };
    // Records in the input: counted by the parse stage, else by a pass that
    // only counts lines (the generated input has one record per line).
    let mut rows = 0u64;
    if wanted("parse") {
        let started = Instant::now();
        input::read_records(&source, read_options(), |_| {
            rows += 1;
            Ok::<_, InputError>(())
        })?;
        report("parse", rows, size, started);
    } else {
        let lines = std::cell::Cell::new(0u64);
        let count = |n: usize| -> Result<(), InputError> {
            lines.set(lines.get() + n as u64);
            Ok(())
        };
        let started = Instant::now();
        input::read_chunks(
            &source,
            read_options(),
            host::extract::CHUNK_LINES,
            |c| count(c.lines.len()),
            |_| count(1),
        )?;
        rows = lines.get();
        report("read lines", rows, size, started);
    }

    if wanted("normalize") {
        let levels = std::env::var("NESTING").unwrap_or_else(|_| "0,2".into());
        let repeat: usize = std::env::var("REPEAT").map_or(Ok(1), |r| r.parse())?;
        for nesting in levels.split(',').map(str::parse::<u32>) {
            let nesting = nesting?;
            let mut passes = Vec::with_capacity(repeat);
            for _ in 0..repeat.max(1) {
                passes.push(normalize_pass(&source, &counter, nesting, rows, size)?);
            }
            if passes.len() > 1 {
                passes.sort_by(f64::total_cmp);
                let (best, median) = (passes[passes.len() - 1], passes[passes.len() / 2]);
                println!(
                    "{:<28} {} passes: best {best:.0} rows/s, median {median:.0} rows/s",
                    format!("normalize nesting {nesting}"),
                    passes.len()
                );
            }
        }
    }
    if !(wanted("writers") || wanted("phase") || wanted("parallel") || wanted("ledger")) {
        println!("peak RSS {:.1} MB", peak_rss_mb());
        return Ok(());
    }

    // Job-file writers alone: rows normalized up front (the first 200k,
    // written five times over), then timed into each format.
    if wanted("writers") {
        let mut n = Normalizer::new(&settings(0), Schema::default(), "1.0")?;
        let mut sample = Vec::new();
        input::read_records(&source, read_options(), |r| {
            if sample.len() < 200_000 {
                n.push("events", &r.value, &mut sample).map_err(|e| InputError::Io {
                    source_name: e.to_string(),
                    error: std::io::Error::other("normalize"),
                })?;
            }
            Ok::<_, InputError>(())
        })?;
        let writer_dir = tempfile::tempdir()?;
        for format in [FileFormat::Jsonl, FileFormat::Parquet] {
            let pipeline = PipelineDir::open(writer_dir.path(), format.extension())?;
            let mut w = PackageWriter::create(&pipeline, "1.0", &settings(0), format)?;
            let started = Instant::now();
            for _ in 0..5 {
                w.write(n.schema(), &sample)?;
            }
            let path = w.finish(n.schema(), "bench")?.ok_or_else(|| anyhow::anyhow!("no package"))?;
            let written = 5 * sample.len() as u64;
            let bytes = dir_size(&path)?;
            report(&format!("rows -> {} file", format.extension()), written, bytes, started);
            println!("{:<28} {:.1} MB for {written} rows", "", bytes as f64 / 1e6);
        }
        drop(sample);
    }

    // Write (parse + normalize + job files), then read back.
    let work = tempfile::tempdir()?;
    if wanted("phase") {
        for format in [FileFormat::Jsonl, FileFormat::Parquet] {
            let pipeline = PipelineDir::open(work.path(), format.extension())?;
            let started = Instant::now();
            normalize_into(&pipeline, &source, format, 1)?;
            report(&format!("write {} (1 thread)", format.extension()), rows, size, started);
            let pkg = pipeline.pending()?.remove(0);
            let job = pkg.state.jobs[0].clone();
            let path = pkg.job_path(&job, JobState::New);
            let file_size = std::fs::metadata(&path)?.len();
            let table = pkg.schema.table("events").cloned().ok_or_else(|| anyhow::anyhow!("no table"))?;
            let started = Instant::now();
            let mut read = 0u64;
            match format {
                FileFormat::Jsonl => {
                    let mut r = JobReader::open(&path, 0)?;
                    while let Some(b) = r.next_batch(&table, 1000, None)? {
                        read += b.rows.len() as u64;
                        std::hint::black_box(b);
                    }
                }
                FileFormat::Parquet => {
                    let mut r = ParquetJobReader::open(&path, 0, 1000)?;
                    while let Some((_, batch)) = r.next_record_batch(&table)? {
                        let rows = batch_rows(&batch, &table, &path)?;
                        read += rows.len() as u64;
                        std::hint::black_box(rows);
                    }
                }
            }
            report(&format!("read back {}", format.extension()), read, file_size, started);
            println!("{:<28} job file {:.1} MB", "", file_size as f64 / 1e6);
        }
    }

    // The whole normalize phase on every core (what `host run` does).
    if wanted("parallel") {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        for format in [FileFormat::Jsonl, FileFormat::Parquet] {
            let pipeline = PipelineDir::open(work.path(), &format!("{}-mt", format.extension()))?;
            let started = Instant::now();
            normalize_into(&pipeline, &source, format, cores)?;
            report(&format!("write {} ({cores} threads)", format.extension()), rows, size, started);
        }
    }

    // Ledger commits (append + fsync).
    if wanted("ledger") {
        let ledger = Ledger::open(work.path())?;
        let n = 2000;
        let started = Instant::now();
        for i in 0..n {
            ledger.append(Record::Delivered { job: "events.x.jsonl".into(), rows: i * 1000 })?;
        }
        println!("{:<28} {:>12.1} µs per commit", "ledger commit", started.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    println!("peak RSS {:.1} MB", peak_rss_mb());
    Ok(())
}
