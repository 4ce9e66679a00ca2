//! Input files → normalizer → a new pending load package.
//!
//! This is the first half of `host run` (and all of `host normalize`): it
//! reads every input, normalizes each record, writes rows into a package in
//! staging, and commits the package and the grown pipeline schema only when
//! every input was read without error.

mod parallel;

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::input::{self, BadLine, InputError, InputSource, Record};
use crate::normalize::{NormalizeError, NormalizeSettings, Normalizer, Row};
use crate::package::{FileFormat, NormalizeRecipe, Package, PackageError, PipelineDir, RecipeInput};
use crate::package::{PackageWriter, Publish, Rotation, Verdict};
use crate::stop::Cancel;

/// One input and the table its records go to (raw, before naming).
#[derive(Debug, Clone)]
pub struct InputSpec {
    /// Where to read.
    pub source: InputSource,
    /// The root table.
    pub table: String,
    /// Route each record to the table named by this field's value (records
    /// without it go to `table`).
    pub table_from_field: Option<String>,
}

/// Extraction failed; nothing was committed.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The input could not be read or parsed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A record could not be normalized.
    #[error("{source_name}:{line}: {error}")]
    Normalize {
        /// The input.
        source_name: String,
        /// The record's line.
        line: u64,
        /// What was wrong.
        error: NormalizeError,
    },
    /// Writing the package failed.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// Ctrl-C or SIGTERM arrived while normalizing.
    #[error("stopped while normalizing")]
    Interrupted,
    /// A package loaded while it is normalized is read again after an
    /// interruption, so its inputs must be files.
    #[error("a package loaded while it is normalized needs files as input, not stdin")]
    InPlaceNeedsFiles,
    /// A normalizing thread could not be started.
    #[error("cannot start a normalizing thread: {0}")]
    Thread(String),
}

/// What extraction produced.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// The input's fingerprint (content hashes plus normalization settings).
    pub fingerprint: String,
    /// The new package, or `None` when the input held no rows.
    pub package: Option<PathBuf>,
    /// Records read.
    pub records: u64,
    /// Rows written, over all tables.
    pub rows: u64,
    /// Malformed lines skipped (`--on-bad-line skip`), kept in the package's
    /// `bad_lines.jsonl`.
    pub bad_lines: u64,
}

/// A normalizer extending `schema`; its only error is bad settings.
fn new_normalizer(
    settings: &NormalizeSettings,
    schema: crate::schema::Schema,
    load_id: &str,
) -> Result<Normalizer, ExtractError> {
    Normalizer::new(settings, schema, load_id).map_err(|error| ExtractError::Normalize {
        source_name: "settings".into(),
        line: 0,
        error,
    })
}

/// A new load id: Unix time in seconds with seven decimals, as dlt's.
pub fn new_load_id(residue: Option<(u64, u64)>) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut ticks = now.as_secs() * 10_000_000 + u64::from(now.subsec_nanos() / 100);
    if let Some((index, count)) = residue.filter(|(_, count)| *count > 0) {
        ticks += (index % count + count - ticks % count) % count;
    }
    format!("{}.{:07}", ticks / 10_000_000, ticks % 10_000_000)
}

/// The fingerprint of a run's input: what it reads and how it normalizes.
/// Two runs with the same fingerprint would produce the same rows.
fn combine(settings: &NormalizeSettings, format: FileFormat, parts: &[(String, Vec<u8>)]) -> String {
    let mut h = Sha256::new();
    h.update(b"dlthost-fingerprint-v1\0");
    h.update(serde_json::to_vec(&(settings, format)).unwrap_or_default());
    for (table, digest) in parts {
        h.update(b"\0");
        h.update(table.as_bytes());
        h.update(b"\0");
        h.update(digest);
    }
    hex::encode(h.finalize())
}

/// True when every input is a regular file: it can be fingerprinted ahead
/// and read again after an interruption.
pub fn all_files(inputs: &[InputSpec]) -> bool {
    inputs.iter().all(|i| matches!(&i.source, InputSource::File(p) if std::fs::metadata(p).is_ok_and(|m| m.is_file())))
}

/// The fingerprint of `inputs` computed before reading them, or `None` when
/// one of them is stdin or a FIFO (its fingerprint is known only after the
/// read).
pub fn fingerprint_files(
    inputs: &[InputSpec],
    settings: &NormalizeSettings,
    format: FileFormat,
) -> Result<Option<String>, ExtractError> {
    let mut parts = Vec::with_capacity(inputs.len());
    // A FIFO (or another non-regular file) can be read once: it is hashed
    // as it is read, like stdin.
    if !all_files(inputs) {
        return Ok(None);
    }
    for input in inputs {
        let InputSource::File(path) = &input.source else { return Ok(None) };
        let mut h = Sha256::new();
        input::hash_file(path, &mut h)?;
        parts.push((input.table.clone(), h.finalize().to_vec()));
    }
    Ok(Some(combine(settings, format, &parts)))
}

/// How to write the package, beyond the normalization settings.
pub struct ExtractOptions<'a> {
    /// Job file format.
    pub format: FileFormat,
    /// Job file rotation.
    pub rotation: Rotation,
    /// The input's fingerprint, when it was computed before reading (files).
    pub known_fingerprint: Option<&'a str>,
    /// Skip malformed lines instead of failing.
    pub skip_bad_lines: bool,
    /// The most bytes one record may have (`--max-record-bytes`).
    pub max_record_bytes: usize,
    /// Store the grown schema as the pipeline's (off for a dry run that
    /// keeps nothing).
    pub save_schema: bool,
    /// Gzip `jsonl` job files.
    pub gzip: bool,
    /// Called now and then with (records, bytes read).
    pub progress: &'a dyn Fn(u64, u64),
    /// Threads that parse and normalize (1: this thread only). The result
    /// does not depend on it, except for the numbering of root `_dlt_id`s.
    pub threads: usize,
    /// The run's stop request: reading ends, and nothing is committed.
    pub cancel: &'a Cancel,
    /// `(index, count)`: the load id is `index` modulo `count` in 100 ns
    /// ticks, so shards running side by side never make the same one.
    pub load_id_residue: Option<(u64, u64)>,
    /// Where the package goes and when its jobs may be loaded.
    pub target: Target<'a>,
}

/// Where [`extract`] writes the package.
pub enum Target<'a> {
    /// Whole: in staging, visible only when complete (stdin, dry runs).
    Whole,
    /// In place, each job published to `publish` once durable, so it can
    /// be loaded while later ones are written. Only for files (the input
    /// is read again after an interruption). `verdict` gives the input's
    /// fingerprint (computed meanwhile, not while reading) before the first
    /// job is listed, or withdraws the package.
    InPlace {
        /// Hears of each job once it may be loaded.
        publish: Publish,
        /// Asked before the first job is listed.
        verdict: Verdict,
    },
    /// Normalize an interrupted in-place package again from its recipe
    /// (the inputs given are ignored).
    Resume(&'a Package),
}

impl<'a> Target<'a> {
    /// A resume of `package` when it is an interrupted in-place package.
    pub fn resume_of(package: &'a Package) -> Option<Self> {
        package.state.normalizing.as_ref().map(|_| Target::Resume(package))
    }
}

/// The inputs an interrupted in-place package was made from.
pub fn recipe_inputs(recipe: &NormalizeRecipe) -> Vec<InputSpec> {
    recipe
        .inputs
        .iter()
        .map(|i| InputSpec {
            source: InputSource::File(i.path.clone()),
            table: i.table.clone(),
            table_from_field: i.table_from_field.clone(),
        })
        .collect()
}

/// Normalizing threads by default: one per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Lines (or records) per chunk when normalizing on several threads.
pub const CHUNK_LINES: usize = 2048;

/// Sends each record to its root table: the input's table, or the table
/// named by the value of `table_from_field` when the record has one.
pub(crate) struct RecordRouter<'a> {
    /// The input's table under the naming convention (named once, not per
    /// record).
    table_name: String,
    table_from_field: Option<&'a str>,
    source_name: &'a str,
}

impl RecordRouter<'_> {
    fn push(&self, normalizer: &mut Normalizer, record: &Record<'_>, rows: &mut Vec<Row>) -> Result<(), ExtractError> {
        let routed = self.table_from_field.and_then(|f| record.value.get(f)).and_then(|v| v.as_str());
        let table = match routed.filter(|name| !name.is_empty()) {
            Some(name) => std::borrow::Cow::Owned(normalizer.table_name(name)),
            None => std::borrow::Cow::Borrowed(self.table_name.as_str()),
        };
        normalizer.push(&table, &record.value, rows).map_err(|error| ExtractError::Normalize {
            source_name: self.source_name.to_string(),
            line: record.line,
            error,
        })
    }

    /// Normalizes one JSON Lines line straight from its bytes when the
    /// normalizer can ([`Normalizer::push_line`]); `false` leaves the line to
    /// be parsed and pushed. Only for a fixed table: routing by a field's
    /// value needs the parsed record.
    fn push_line(&self, normalizer: &mut Normalizer, text: &[u8], rows: &mut Vec<Row>) -> bool {
        if self.table_from_field.is_some() {
            return false;
        }
        normalizer.push_line(&self.table_name, text, rows)
    }
}

/// Reads `inputs` into a new package of `pipeline`.
pub fn extract(
    pipeline: &PipelineDir,
    inputs: &[InputSpec],
    settings: &NormalizeSettings,
    options: ExtractOptions<'_>,
) -> Result<Extracted, ExtractError> {
    let ExtractOptions {
        format,
        rotation,
        known_fingerprint,
        skip_bad_lines,
        max_record_bytes,
        save_schema,
        gzip,
        progress,
        threads,
        cancel,
        load_id_residue,
        target,
    } = options;
    let bytes_read = std::sync::atomic::AtomicU64::new(0);
    let mut bad_lines: Vec<BadLine> = Vec::new();
    pipeline.clean_staging()?;
    let resumed_inputs;
    let (inputs, settings, format, skip_bad_lines, max_record_bytes) = match &target {
        Target::Resume(package) => {
            let Some(recipe) = &package.state.normalizing else {
                return Err(PackageError::Damaged {
                    path: package.dir().to_path_buf(),
                    message: "the package is not being normalized".into(),
                }
                .into());
            };
            resumed_inputs = recipe_inputs(recipe);
            let state = &package.state;
            (&resumed_inputs[..], &state.normalize, state.file_format, recipe.skip_bad_lines, recipe.max_record_bytes)
        }
        _ => (inputs, settings, format, skip_bad_lines, max_record_bytes),
    };
    let (load_id, schema) = match &target {
        Target::Resume(package) => (package.state.load_id.clone(), package.start_schema()?),
        _ => (new_load_id(load_id_residue), pipeline.load_schema()?),
    };
    let mut normalizer = new_normalizer(settings, schema, &load_id)?;
    // Files were fingerprinted before the read, or meanwhile (in place);
    // stdin, FIFOs and a resumed package are hashed as they are read.
    let hash_while_reading = known_fingerprint.is_none() && !matches!(target, Target::InPlace { .. });
    let mut writer = match target {
        Target::Whole => {
            PackageWriter::create(pipeline, &load_id, settings, format)?.with_rotation(rotation).with_gzip(gzip)
        }
        Target::InPlace { publish, verdict } => {
            let mut recipe_inputs = Vec::with_capacity(inputs.len());
            for input in inputs {
                let InputSource::File(path) = &input.source else {
                    return Err(ExtractError::InPlaceNeedsFiles);
                };
                recipe_inputs.push(RecipeInput {
                    path: path.clone(),
                    table: input.table.clone(),
                    table_from_field: input.table_from_field.clone(),
                });
            }
            let recipe = NormalizeRecipe { inputs: recipe_inputs, rotation, gzip, skip_bad_lines, max_record_bytes };
            PackageWriter::create_in_place(
                pipeline,
                &load_id,
                settings,
                format,
                recipe,
                normalizer.schema(),
                verdict,
                publish,
            )?
        }
        Target::Resume(package) => PackageWriter::resume(package, Box::new(|_, _, _| {}))?,
    };
    let mut records = 0u64;
    // Chunks are numbered across inputs (root `_dlt_id`s derive from them).
    let mut chunks = 0u64;
    let mut parts = Vec::with_capacity(inputs.len());
    for input in inputs {
        let source_name = input.source.to_string();
        let router = RecordRouter {
            table_name: normalizer.table_name(&input.table),
            table_from_field: input.table_from_field.as_deref(),
            source_name: &source_name,
        };
        let mut hasher = Sha256::new();
        let tap = if hash_while_reading { Some(&mut hasher) } else { None };
        let cx = parallel::Context {
            settings,
            load_id: &load_id,
            source_name: &source_name,
            router: &router,
            skip_bad_lines,
            max_record_bytes,
            first_chunk: chunks,
            cancel,
        };
        let before = records;
        let report = |done: u64| {
            if cancel.is_cancelled() {
                return Err(ExtractError::Interrupted);
            }
            progress(before + done, bytes_read.load(std::sync::atomic::Ordering::Relaxed));
            Ok(())
        };
        let totals = if threads > 1 {
            let plan = parallel::Plan {
                source: &input.source,
                hasher: tap,
                bytes_read: &bytes_read,
                workers: threads,
                chunk_lines: CHUNK_LINES,
            };
            parallel::run(plan, &cx, &mut normalizer, &mut writer, &mut { report })?
        } else {
            parallel::run_here(&input.source, tap, &bytes_read, &cx, &mut normalizer, &mut writer, &mut { report })?
        };
        records += totals.records;
        chunks += totals.chunks;
        bad_lines.extend(totals.bad_lines);
        parts.push((input.table.clone(), hasher.finalize().to_vec()));
    }
    let fingerprint = match known_fingerprint {
        Some(fp) => fp.to_string(),
        None if hash_while_reading => combine(settings, format, &parts),
        None => writer.fingerprint().to_string(),
    };
    let written = writer.rows();
    let schema = normalizer.into_schema();
    if !bad_lines.is_empty() {
        writer.quarantine(&bad_lines)?;
    }
    let package = writer.finish(&schema, &fingerprint)?;
    if package.is_some() && save_schema {
        pipeline.save_schema(&schema)?;
    }
    Ok(Extracted { fingerprint, package, records, rows: written, bad_lines: bad_lines.len() as u64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Never cancelled.
    static NOT_CANCELLED: std::sync::LazyLock<Cancel> = std::sync::LazyLock::new(Cancel::default);

    /// The options of these tests: jsonl, one fingerprint, `threads`.
    fn options(threads: usize, cancel: &Cancel) -> ExtractOptions<'_> {
        ExtractOptions {
            format: FileFormat::Jsonl,
            rotation: Rotation::default(),
            known_fingerprint: Some("fp"),
            skip_bad_lines: false,
            max_record_bytes: crate::input::RecordLimit::default().max_bytes,
            save_schema: true,
            gzip: false,
            progress: &|_, _| {},
            threads,
            cancel,
            load_id_residue: None,
            target: Target::Whole,
        }
    }
    use crate::package::JobState;

    fn settings() -> NormalizeSettings {
        NormalizeSettings {
            naming_convention: crate::normalize::NamingConvention::Direct,
            max_nesting_level: 2,
            skip_dlt_columns_and_tables: true,
            schema_hints: Default::default(),
        }
    }

    /// What an extraction produced, comparably.
    #[derive(Debug, PartialEq)]
    struct Outcome {
        schema: String,
        /// Each job's table and bytes.
        jobs: Vec<(String, Vec<u8>)>,
        records: u64,
        bad_lines: u64,
    }

    /// Extracts `input` with `threads`; the error as text.
    fn extract_with(input: &std::path::Path, threads: usize) -> Result<Outcome, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let pipeline = PipelineDir::open(dir.path(), "p").map_err(|e| e.to_string())?;
        let inputs = [InputSpec {
            source: InputSource::File(input.to_path_buf()),
            table: "t".into(),
            table_from_field: Some("kind".into()),
        }];
        let options = ExtractOptions { skip_bad_lines: true, ..options(threads, &NOT_CANCELLED) };
        let done = extract(&pipeline, &inputs, &settings(), options).map_err(|e| e.to_string())?;
        let pkg = pipeline.pending().map_err(|e| e.to_string())?.remove(0);
        let jobs = pkg
            .state
            .jobs
            .iter()
            .map(|j| (j.table.clone(), std::fs::read(pkg.job_path(j, JobState::New)).unwrap_or_default()))
            .collect();
        let schema = serde_json::to_string(&pkg.schema).map_err(|e| e.to_string())?;
        Ok(Outcome { schema, jobs, records: done.records, bad_lines: done.bad_lines })
    }

    /// Columns appear, types change into variants, tables are routed, lines
    /// are malformed and arrays hold several records, spread over several
    /// chunks: every thread count gives the same schema and the same rows.
    #[test]
    fn several_threads_give_exactly_what_one_gives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.jsonl");
        let mut text = String::new();
        for i in 0..(CHUNK_LINES * 5) {
            let line = match i % 997 {
                0 => format!("{{\"id\": {i}, \"new_{}\": \"x\", \"tags\": [1, \"a\"]}}", i / 997),
                1 => "{\"id\": oops}".to_string(),
                2 => format!("[{{\"id\": {i}, \"kind\": \"other\"}}, {{\"id\": \"{i}x\"}}]"),
                3 => format!("{{\"id\": {i}.5, \"nested\": {{\"deep\": {{\"v\": {i}}}}}}}"),
                _ => format!("{{\"id\": {i}, \"name\": \"n{i}\", \"when\": \"2024-01-02T03:04:05Z\"}}"),
            };
            text.push_str(&line);
            text.push('\n');
        }
        std::fs::write(&input, text).expect("write input");
        let one = extract_with(&input, 1).expect("one thread");
        assert!(
            one.jobs.len() >= 3,
            "routed and child tables: {:?}",
            one.jobs.iter().map(|j| &j.0).collect::<Vec<_>>()
        );
        assert!(one.bad_lines > 0, "malformed lines were skipped");
        for threads in [2, 3] {
            assert_eq!(extract_with(&input, threads).expect("threads"), one, "{threads} threads");
        }
    }

    #[test]
    fn a_record_that_fails_names_the_same_line_on_every_thread_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.jsonl");
        let mut text: String = (0..(CHUNK_LINES * 3)).map(|i| format!("{{\"id\": {i}}}\n")).collect();
        text.push_str("{\"id\": 18446744073709551615}\n");
        std::fs::write(&input, text).expect("write input");
        let one = extract_with(&input, 1).expect_err("too big");
        assert!(one.contains(&format!(":{}:", CHUNK_LINES * 3 + 1)), "{one}");
        assert_eq!(extract_with(&input, 2).expect_err("too big"), one);
    }

    /// A stop requested through the handle (no process-wide flag) ends
    /// the read on every thread count, and nothing is committed.
    #[test]
    fn a_cancelled_extract_commits_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.jsonl");
        let text: String = (0..(CHUNK_LINES * 3)).map(|i| format!("{{\"id\": {i}}}\n")).collect();
        std::fs::write(&input, text).expect("write input");
        let cancel = crate::stop::Cancel::new();
        cancel.cancel();
        let inputs = [InputSpec { source: InputSource::File(input), table: "t".into(), table_from_field: None }];
        for threads in [1, 2] {
            let pipeline = PipelineDir::open(dir.path(), &format!("p{threads}")).expect("pipeline");
            let options = ExtractOptions { skip_bad_lines: false, ..options(threads, &cancel) };
            let err = extract(&pipeline, &inputs, &settings(), options).expect_err("stopped");
            assert!(matches!(err, ExtractError::Interrupted), "{threads}: {err}");
            assert!(pipeline.pending().expect("pending").is_empty(), "{threads}: nothing committed");
        }
    }

    /// Root `_dlt_id`s derive from chunk numbers, so chunks are numbered
    /// across all the inputs of a load: ids stay unique whatever the thread
    /// count, and for records of a JSON array as for lines.
    #[test]
    fn root_ids_are_unique_across_inputs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write input");
            InputSpec { source: InputSource::File(path), table: "t".into(), table_from_field: None }
        };
        let inputs = [
            write("a.jsonl", "{\"n\": 1}\n{\"n\": 2}\n"),
            write("b.json", "[{\"n\": 3}, {\"n\": 4}]"),
            write("c.jsonl", "{\"n\": 5}\n{\"n\": 6}\n"),
        ];
        let keep_ids = NormalizeSettings { skip_dlt_columns_and_tables: false, ..settings() };
        for threads in [1, 2] {
            let pipeline = PipelineDir::open(dir.path(), &format!("p{threads}")).expect("pipeline");
            let options = ExtractOptions { skip_bad_lines: false, ..options(threads, &NOT_CANCELLED) };
            extract(&pipeline, &inputs, &keep_ids, options).expect("extracts");
            let pkg = pipeline.pending().expect("pending").remove(0);
            let mut ids = std::collections::HashSet::new();
            for job in &pkg.state.jobs {
                let text = std::fs::read_to_string(pkg.job_path(job, JobState::New)).expect("job file");
                for line in text.lines() {
                    let row: serde_json::Value = serde_json::from_str(line).expect("row");
                    assert!(ids.insert(row["_dlt_id"].as_str().expect("id").to_string()), "{threads}: {line}");
                }
            }
            assert_eq!(ids.len(), 6, "{threads} threads");
        }
    }
}
