//! Normalizing one input on several threads, with exactly the result of
//! doing it on one.
//!
//! A reader thread cuts the input into chunks (raw JSON Lines lines, or
//! parsed records for JSON arrays and Parquet); worker threads parse and
//! normalize whole chunks, each against the schema committed so far; this
//! thread commits chunks in input order and writes their rows. A chunk that
//! was normalized against the schema as committed at its start is what one
//! thread would have produced, and is written as is. One that a schema
//! change overtook (it happens while the schema still grows, typically in
//! the first chunks) is normalized again here, against the committed schema.
//! So column order, types and variants never depend on thread timing; only
//! root `_dlt_id`s (random in dlt too) are numbered per chunk.
//!
//! [`run_here`] is the one-thread version (`--normalize-threads 1`): the
//! same chunks, normalized by the same [`normalize_chunk`], in turn.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, RwLock};

use sha2::Sha256;

use super::{ExtractError, RecordRouter, new_normalizer};
use crate::input::{self, BadLine, InputSource, LineChunk, Record};
use crate::normalize::{NormalizeSettings, Normalizer, Row};
use crate::package::PackageWriter;
use crate::schema::Schema;
use crate::stop::Cancel;

/// Chunks in flight (read, queued, being normalized or waiting to be
/// committed) per worker: bounds memory whatever the input size.
const IN_FLIGHT_PER_WORKER: usize = 3;

/// What a chunk holds.
enum ChunkData {
    /// Raw JSON Lines lines.
    Lines(LineChunk),
    /// Records already parsed (JSON array and Parquet inputs).
    Records(Vec<Record<'static>>),
}

struct Chunk {
    index: u64,
    data: ChunkData,
}

/// A chunk's rows and what else it produced.
struct Normalized {
    rows: Vec<Row>,
    records: u64,
    bad_lines: Vec<BadLine>,
    /// The schema after the chunk, when the chunk grew it.
    grown: Option<Schema>,
}

/// A worker's answer: the chunk (kept for a redo), the committed version
/// it was normalized against, and the outcome.
struct Done {
    chunk: Chunk,
    based_on: u64,
    outcome: Result<Normalized, ExtractError>,
}

/// The committed schema and its version, read by workers at each chunk.
type Committed = RwLock<(u64, Arc<Schema>)>;

/// What every thread needs to normalize a chunk.
pub(super) struct Context<'a> {
    pub settings: &'a NormalizeSettings,
    pub load_id: &'a str,
    pub source_name: &'a str,
    pub router: &'a RecordRouter<'a>,
    pub skip_bad_lines: bool,
    /// The most bytes one record may have (`--max-record-bytes`).
    pub max_record_bytes: usize,
    /// The number of this input's first chunk: chunks are numbered across
    /// all the inputs of a load, as root `_dlt_id`s are derived from it.
    pub first_chunk: u64,
    /// The run's stop request.
    pub cancel: &'a Cancel,
}

impl Context<'_> {
    /// The record limit of the read: skipping oversized lines when bad
    /// lines are skipped.
    pub fn record_limit(&self) -> input::RecordLimit {
        input::RecordLimit { max_bytes: self.max_record_bytes, skip: self.skip_bad_lines }
    }

    /// How to read this input: the record limit and the stop request.
    pub fn read_options<'r>(
        &'r self,
        hasher: Option<&'r mut Sha256>,
        bytes_read: &'r AtomicU64,
    ) -> input::ReadOptions<'r> {
        input::ReadOptions { hasher, bytes_read, limit: self.record_limit(), cancel: self.cancel }
    }
}

/// Where the read goes and how it is cut.
pub(super) struct Plan<'a> {
    pub source: &'a InputSource,
    pub hasher: Option<&'a mut Sha256>,
    pub bytes_read: &'a AtomicU64,
    pub workers: usize,
    pub chunk_lines: usize,
}

/// What the commit produced, for the caller's totals.
#[derive(Default)]
pub(super) struct Totals {
    pub records: u64,
    pub bad_lines: Vec<BadLine>,
    /// Chunks read.
    pub chunks: u64,
}

/// Reads, normalizes and writes one input. `normalizer` holds the committed
/// state before and after (its schema is the result); `progress` is called
/// after each chunk with the records committed so far.
pub(super) fn run(
    plan: Plan<'_>,
    cx: &Context<'_>,
    normalizer: &mut Normalizer,
    writer: &mut PackageWriter,
    progress: &mut dyn FnMut(u64) -> Result<(), ExtractError>,
) -> Result<Totals, ExtractError> {
    let Plan { source, hasher, bytes_read, workers, chunk_lines } = plan;
    let first_chunk = cx.first_chunk;
    let workers = workers.max(1);
    let committed: Committed = RwLock::new((0, Arc::new(normalizer.schema().clone())));
    let in_flight = workers * IN_FLIGHT_PER_WORKER;
    let (chunk_tx, chunk_rx) = sync_channel::<Chunk>(in_flight);
    let (done_tx, done_rx) = sync_channel::<Done>(in_flight);
    let (ticket_tx, ticket_rx) = sync_channel::<()>(in_flight);
    for _ in 0..in_flight {
        let _ = ticket_tx.send(());
    }
    let chunk_rx = Mutex::new(chunk_rx);
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("input-reader".into())
            .spawn_scoped(scope, move || {
                read(source, cx.read_options(hasher, bytes_read), chunk_lines, first_chunk, &chunk_tx, &ticket_rx)
            })
            .map_err(|e| ExtractError::Thread(e.to_string()))?;
        for i in 0..workers {
            let done_tx = done_tx.clone();
            let (chunk_rx, committed) = (&chunk_rx, &committed);
            std::thread::Builder::new()
                .name(format!("normalize-{i}"))
                .spawn_scoped(scope, move || work(cx, chunk_rx, committed, &done_tx))
                .map_err(|e| ExtractError::Thread(e.to_string()))?;
        }
        drop(done_tx);
        let committing = commit(cx, done_rx, ticket_tx, &committed, normalizer, writer, progress);
        // The reader's error (I/O) counts only when committing went well:
        // a commit that stopped early also stops the reader.
        let reading = reader.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let totals = committing?;
        reading?;
        Ok(totals)
    })
}

/// The same work on this thread alone (`--normalize-threads 1`): chunks of
/// lines are read, normalized and written in turn, records of a JSON array
/// or Parquet file one by one (they take one chunk number).
pub(super) fn run_here(
    source: &InputSource,
    hasher: Option<&mut Sha256>,
    bytes_read: &AtomicU64,
    cx: &Context<'_>,
    normalizer: &mut Normalizer,
    writer: &mut PackageWriter,
    progress: &mut dyn FnMut(u64) -> Result<(), ExtractError>,
) -> Result<Totals, ExtractError> {
    // Both callbacks below write through the same state: the normalizer,
    // the writer, the progress callback, the totals, the next chunk number.
    let state = RefCell::new((normalizer, writer, progress, Totals::default(), cx.first_chunk));
    let mut records_started = false;
    let mut rows = Vec::new();
    input::read_chunks(
        source,
        cx.read_options(hasher, bytes_read),
        super::CHUNK_LINES,
        |lines| {
            let (normalizer, writer, progress, totals, next) = &mut *state.borrow_mut();
            let chunk = Chunk { index: *next, data: ChunkData::Lines(lines) };
            *next += 1;
            let normalized = normalize_chunk(cx, normalizer, &chunk)?;
            writer.write(normalizer.schema(), &normalized.rows)?;
            totals.records += normalized.records;
            totals.chunks += 1;
            totals.bad_lines.extend(normalized.bad_lines);
            progress(totals.records)
        },
        |record| {
            let (normalizer, writer, progress, totals, next) = &mut *state.borrow_mut();
            if !records_started {
                records_started = true;
                normalizer.set_row_base(*next << 32);
                *next += 1;
                totals.chunks += 1;
            }
            totals.records += 1;
            rows.clear();
            cx.router.push(normalizer, &record, &mut rows)?;
            writer.write(normalizer.schema(), &rows)?;
            if totals.records.is_multiple_of(4096) {
                progress(totals.records)?;
            }
            Ok(())
        },
    )?;
    Ok(state.into_inner().3)
}

/// The reader thread: cuts the input into chunks, one ticket each.
fn read(
    source: &InputSource,
    options: input::ReadOptions<'_>,
    chunk_lines: usize,
    first_chunk: u64,
    chunk_tx: &SyncSender<Chunk>,
    ticket_rx: &Receiver<()>,
) -> Result<(), ExtractError> {
    let next = std::cell::Cell::new(first_chunk);
    let send = |data: ChunkData| -> Result<(), ExtractError> {
        // A closed channel means the commit stopped; its error is the one reported.
        ticket_rx.recv().map_err(|_| ExtractError::Interrupted)?;
        chunk_tx.send(Chunk { index: next.get(), data }).map_err(|_| ExtractError::Interrupted)?;
        next.set(next.get() + 1);
        Ok(())
    };
    let records = std::cell::RefCell::new(Vec::new());
    input::read_chunks(
        source,
        options,
        chunk_lines,
        |lines| send(ChunkData::Lines(lines)),
        |record| {
            let mut buf = records.borrow_mut();
            buf.push(Record { line: record.line, value: record.value.into_owned() });
            if buf.len() >= chunk_lines {
                let full = std::mem::take(&mut *buf);
                drop(buf);
                send(ChunkData::Records(full))?;
            }
            Ok(())
        },
    )?;
    let rest = records.take();
    if !rest.is_empty() {
        send(ChunkData::Records(rest))?;
    }
    Ok(())
}

/// A worker thread: normalizes chunks against the committed schema.
fn work(cx: &Context<'_>, chunk_rx: &Mutex<Receiver<Chunk>>, committed: &Committed, done_tx: &SyncSender<Done>) {
    // The worker's normalizer and the committed version it mirrors; `None`
    // after a chunk grew it (its schema is then ahead of the committed one).
    let mut local: Option<(u64, Normalizer)> = None;
    loop {
        let chunk = match chunk_rx.lock().map(|rx| rx.recv()) {
            Ok(Ok(chunk)) => chunk,
            _ => return,
        };
        let (version, schema) = match committed.read() {
            Ok(c) => (c.0, c.1.clone()),
            Err(_) => return,
        };
        let normalizer = match &mut local {
            Some((v, n)) if *v == version => n,
            _ => match new_normalizer(cx.settings, (*schema).clone(), cx.load_id) {
                Ok(n) => &mut local.insert((version, n)).1,
                Err(error) => {
                    let _ = done_tx.send(Done { chunk, based_on: version, outcome: Err(error) });
                    return;
                }
            },
        };
        let outcome = normalize_chunk(cx, normalizer, &chunk);
        if outcome.as_ref().map_or(true, |n| n.grown.is_some()) {
            local = None;
        }
        if done_tx.send(Done { chunk, based_on: version, outcome }).is_err() {
            return;
        }
    }
}

/// This thread: commits chunks in input order, redoing stale ones.
fn commit(
    cx: &Context<'_>,
    done_rx: Receiver<Done>,
    ticket_tx: SyncSender<()>,
    committed: &Committed,
    normalizer: &mut Normalizer,
    writer: &mut PackageWriter,
    progress: &mut dyn FnMut(u64) -> Result<(), ExtractError>,
) -> Result<Totals, ExtractError> {
    let mut totals = Totals::default();
    let mut waiting: BTreeMap<u64, Done> = BTreeMap::new();
    let mut next = cx.first_chunk;
    let mut version = 0u64;
    // `normalizer` mirrors the committed schema except right after a worker's
    // grown chunk is accepted; it is rebuilt only when a redo needs it.
    let mut normalizer_version = 0u64;
    for done in done_rx {
        waiting.insert(done.chunk.index, done);
        while let Some(done) = waiting.remove(&next) {
            let normalized = if done.based_on == version {
                done.outcome?
            } else {
                if normalizer_version != version {
                    let schema = committed.read().map(|c| (*c.1).clone()).unwrap_or_default();
                    *normalizer = new_normalizer(cx.settings, schema, cx.load_id)?;
                    normalizer_version = version;
                }
                let redone = normalize_chunk(cx, normalizer, &done.chunk)?;
                if redone.grown.is_some() {
                    normalizer_version = version + 1;
                }
                redone
            };
            if let Some(schema) = normalized.grown {
                version += 1;
                if let Ok(mut c) = committed.write() {
                    *c = (version, Arc::new(schema));
                }
            }
            let schema = committed.read().map(|c| c.1.clone()).unwrap_or_default();
            writer.write(&schema, &normalized.rows)?;
            totals.records += normalized.records;
            totals.bad_lines.extend(normalized.bad_lines);
            next += 1;
            totals.chunks += 1;
            let _ = ticket_tx.send(());
            progress(totals.records)?;
        }
    }
    // The final schema is the committed one.
    if normalizer_version != version {
        let schema = committed.read().map(|c| (*c.1).clone()).unwrap_or_default();
        *normalizer = new_normalizer(cx.settings, schema, cx.load_id)?;
    }
    Ok(totals)
}

/// Parses (for raw lines) and normalizes one chunk with `normalizer`.
fn normalize_chunk(cx: &Context<'_>, normalizer: &mut Normalizer, chunk: &Chunk) -> Result<Normalized, ExtractError> {
    normalizer.set_row_base(chunk.index << 32);
    let size_before = normalizer.schema_size();
    let mut out = Normalized { rows: Vec::new(), records: 0, bad_lines: Vec::new(), grown: None };
    let push = |normalizer: &mut Normalizer, record: &Record<'_>, out: &mut Normalized| {
        out.records += 1;
        cx.router.push(normalizer, record, &mut out.rows)
    };
    match &chunk.data {
        ChunkData::Lines(lines) => {
            for (line, range) in &lines.lines {
                let text = &lines.text[range.clone()];
                if let Some(bad) = lines.oversized(*line) {
                    // Only with skip: a longer line stops the read itself.
                    out.bad_lines.push(bad.clone().into_bad_line(cx.source_name, text));
                    continue;
                }
                if cx.router.push_line(normalizer, text, &mut out.rows) {
                    out.records += 1;
                    continue;
                }
                let value = match input::parse_line(*line, text) {
                    Ok(v) => v,
                    Err(bad) if cx.skip_bad_lines => {
                        out.bad_lines.push(bad.into_bad_line(cx.source_name, text));
                        continue;
                    }
                    Err(bad) => return Err(bad.into_error(cx.source_name).into()),
                };
                input::line_records(*line, value, &mut |record| push(normalizer, &record, &mut out))?;
            }
        }
        ChunkData::Records(records) => {
            for record in records {
                push(normalizer, record, &mut out)?;
            }
        }
    }
    if normalizer.schema_size() != size_before {
        out.grown = Some(normalizer.schema().clone());
    }
    Ok(out)
}
