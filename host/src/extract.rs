//! Input files → normalizer → a new pending load package.
//!
//! This is the first half of `host run` (and all of `host normalize`): it
//! reads every input, normalizes each record, writes rows into a package in
//! staging, and commits the package and the grown pipeline schema only when
//! every input was read without error.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::input::{self, BadLine, InputError, InputSource, ReadOptions};
use crate::normalize::{NormalizeError, NormalizeSettings, Normalizer, Row};
use crate::package::writer::{PackageWriter, Rotation};
use crate::package::{FileFormat, PackageError, PipelineDir};

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

/// A new load id: Unix time in seconds with seven decimals, as dlt's.
pub fn new_load_id() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:07}", now.as_secs(), now.subsec_nanos() / 100)
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

/// The fingerprint of `inputs` computed before reading them, or `None` when
/// one of them is stdin (its fingerprint is known only after the read).
pub fn fingerprint_files(
    inputs: &[InputSpec],
    settings: &NormalizeSettings,
    format: FileFormat,
) -> Result<Option<String>, ExtractError> {
    let mut parts = Vec::with_capacity(inputs.len());
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
    /// Gzip `jsonl` job files.
    pub gzip: bool,
    /// Called now and then with (records, bytes read).
    pub progress: &'a dyn Fn(u64, u64),
}

/// Reads `inputs` into a new package of `pipeline`.
pub fn extract(
    pipeline: &PipelineDir,
    inputs: &[InputSpec],
    settings: &NormalizeSettings,
    options: ExtractOptions<'_>,
) -> Result<Extracted, ExtractError> {
    let ExtractOptions { format, rotation, known_fingerprint, skip_bad_lines, gzip, progress } = options;
    let bytes_read = std::sync::atomic::AtomicU64::new(0);
    let mut bad_lines: Vec<BadLine> = Vec::new();
    pipeline.clean_staging()?;
    let load_id = new_load_id();
    let schema = pipeline.load_schema()?;
    let mut normalizer = Normalizer::new(settings, schema, &load_id).map_err(|error| ExtractError::Normalize {
        source_name: "settings".into(),
        line: 0,
        error,
    })?;
    let mut writer =
        PackageWriter::create(pipeline, &load_id, settings, format)?.with_rotation(rotation).with_gzip(gzip);
    let mut rows: Vec<Row> = Vec::with_capacity(64);
    let mut records = 0u64;
    let mut parts = Vec::with_capacity(inputs.len());
    for input in inputs {
        let table = normalizer.table_name(&input.table);
        let source_name = input.source.to_string();
        // Files were fingerprinted before the read; only stdin is hashed as it streams.
        let mut hasher = Sha256::new();
        let tap = if known_fingerprint.is_none() { Some(&mut hasher) } else { None };
        let mut quarantine = |bad: BadLine| bad_lines.push(bad);
        let options = ReadOptions {
            hasher: tap,
            bytes_read: &bytes_read,
            on_bad_line: if skip_bad_lines { Some(&mut quarantine) } else { None },
        };
        input::read_records(&input.source, options, |record| -> Result<(), ExtractError> {
            records += 1;
            let routed = match &input.table_from_field {
                Some(field) => match record.value.get(field).and_then(|v| v.as_str()) {
                    Some(name) if !name.is_empty() => Some(normalizer.table_name(name)),
                    _ => None,
                },
                None => None,
            };
            let table = routed.as_deref().unwrap_or(&table);
            if records.is_multiple_of(4096) {
                if crate::load::stop_requested() {
                    return Err(ExtractError::Interrupted);
                }
                progress(records, bytes_read.load(std::sync::atomic::Ordering::Relaxed));
            }
            rows.clear();
            normalizer.push(table, &record.value, &mut rows).map_err(|error| ExtractError::Normalize {
                source_name: source_name.clone(),
                line: record.line,
                error,
            })?;
            writer.write(normalizer.schema(), &rows)?;
            Ok(())
        })?;
        parts.push((input.table.clone(), hasher.finalize().to_vec()));
    }
    let fingerprint = known_fingerprint.map_or_else(|| combine(settings, format, &parts), str::to_string);
    let written = writer.rows();
    let schema = normalizer.into_schema();
    if !bad_lines.is_empty() {
        writer.quarantine(&bad_lines)?;
    }
    let package = writer.finish(&schema, &fingerprint)?;
    if package.is_some() {
        pipeline.save_schema(&schema)?;
    }
    Ok(Extracted { fingerprint, package, records, rows: written, bad_lines: bad_lines.len() as u64 })
}
