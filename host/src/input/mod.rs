//! Input files → JSON records, with the file and line each came from.
//!
//! Reads JSON Lines (one record per line; a line holding an array gives one
//! record per element) and JSON array files (`[ {...}, {...} ]`), plain or
//! gzip (detected by content), from a path or from stdin (`-`). Records are
//! pushed to a callback one at a time, so memory does not grow with the input.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::time::Duration;

pub(crate) mod json;
pub(crate) mod parquet;

pub(crate) use json::Cursor;
pub use json::{Node, Typed};
use sha2::{Digest, Sha256};

use crate::stop::Cancel;

/// Where records come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    /// A file on disk.
    File(PathBuf),
    /// The host's standard input (`-` on the command line).
    Stdin,
}

impl InputSource {
    /// Parses a command-line path; `-` is stdin.
    pub fn from_arg(arg: &Path) -> Self {
        if arg == Path::new("-") { InputSource::Stdin } else { InputSource::File(arg.to_path_buf()) }
    }

    /// The table name a file gives by default: its file name without known
    /// extensions (`events.jsonl.gz` → `events`). None for stdin.
    pub fn default_table(&self) -> Option<String> {
        let InputSource::File(path) = self else { return None };
        let mut name = path.file_name()?.to_string_lossy().into_owned();
        loop {
            let before = name.len();
            for ext in [".gz", ".jsonl", ".ndjson", ".json", ".parquet"] {
                if name.len() > ext.len() && name.to_ascii_lowercase().ends_with(ext) {
                    name.truncate(name.len() - ext.len());
                }
            }
            if name.len() == before {
                return Some(name);
            }
        }
    }
}

impl fmt::Display for InputSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputSource::File(p) => write!(f, "{}", p.display()),
            InputSource::Stdin => f.write_str("<stdin>"),
        }
    }
}

/// Reading input failed. Every variant names the input.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be opened or read.
    #[error("cannot read {source_name}: {error}")]
    Io {
        /// The input.
        source_name: String,
        /// The I/O error.
        error: io::Error,
    },
    /// A line (or the array) is not valid JSON.
    #[error("{source_name}:{line}:{column}: malformed JSON: {message}")]
    Malformed {
        /// The input.
        source_name: String,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// What the parser expected.
        message: String,
    },
    /// A record (a line, or an element of an array file) is longer than
    /// the limit. Reading stops there: nothing of the record is held.
    #[error(
        "{source_name}:{line}: a record longer than {limit} bytes; raise the limit with --max-record-bytes, or skip such records with --on-bad-line skip"
    )]
    RecordTooLarge {
        /// The input.
        source_name: String,
        /// 1-based line where the record starts.
        line: u64,
        /// The limit in bytes.
        limit: usize,
    },
    /// A Parquet input that cannot be read (damaged, or a feature arrow
    /// does not read).
    #[error("{source_name}: cannot read Parquet: {message}")]
    Parquet {
        /// The input.
        source_name: String,
        /// What the Parquet reader said.
        message: String,
    },
}

/// One input record and the line it started on. Its strings may borrow
/// from the reader's line buffer, so it lives only for one callback.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    /// 1-based line in the input.
    pub line: u64,
    /// The record.
    pub value: Node<'a>,
}

/// A JSON Lines line that is not valid JSON, when such lines are skipped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BadLine {
    /// The input.
    pub source: String,
    /// 1-based line.
    pub line: u64,
    /// What the parser said.
    pub error: String,
    /// The line itself.
    pub text: String,
}

/// How much of an oversized line is kept when it is skipped (quarantined
/// with its size; the rest is read and dropped).
pub const OVERSIZED_HEAD: usize = 4096;

/// The most bytes one record may have, so memory stays flat whatever the
/// input (a gzip file of a few MB can inflate to gigabytes without a
/// newline). The default (`--max-record-bytes` in `catalog`) is far above
/// any sane record and far below what would strain the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimit {
    /// Bytes of one JSON Lines line or array element (`--max-record-bytes`).
    pub max_bytes: usize,
    /// Go on past an oversized line (`--on-bad-line skip`): it becomes a
    /// malformed line holding its first [`OVERSIZED_HEAD`] bytes and its
    /// size. Otherwise reading stops at once with
    /// [`InputError::RecordTooLarge`]. (An oversized element of an array
    /// file always stops the read: the array's structure is lost.)
    pub skip: bool,
}

/// How to read: what to tap. (A malformed line ends the read; callers that
/// skip such lines read chunks, [`read_chunks`], and parse them themselves.)
pub struct ReadOptions<'a> {
    /// Fed every raw byte (the input's fingerprint, in one pass).
    pub hasher: Option<&'a mut Sha256>,
    /// Raw bytes read so far (for progress).
    pub bytes_read: &'a AtomicU64,
    /// The most bytes one record may have.
    pub limit: RecordLimit,
    /// The run's stop request: a wait for stdin or a FIFO ends when it is set.
    pub cancel: &'a Cancel,
}

/// Reads every record of `source` and hands it to `each`. An error from
/// `each` stops the read and is returned as is.
pub fn read_records<E>(
    source: &InputSource,
    options: ReadOptions<'_>,
    mut each: impl FnMut(Record<'_>) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<InputError>,
{
    let ReadOptions { hasher, bytes_read, limit, cancel } = options;
    match open(source, hasher, bytes_read, cancel)? {
        Opened::Parquet(path) => parquet::read(path, &mut each),
        Opened::Json { first: None, .. } => Ok(()),
        Opened::Json { name, reader, first: Some(b'[') } => read_array(&name, reader, limit, &mut each),
        Opened::Json { name, reader, .. } => read_lines(&name, reader, limit, &mut each),
    }
}

/// Raw lines of a JSON Lines input, to be parsed elsewhere (in parallel).
#[derive(Debug, Default)]
pub struct LineChunk {
    /// The lines' bytes, back to back.
    pub text: Vec<u8>,
    /// `(1-based line number, range in text)`; blank lines are left out.
    pub lines: Vec<(u64, std::ops::Range<usize>)>,
    /// Lines longer than the record limit (with `skip`): the text holds
    /// their first [`OVERSIZED_HEAD`] bytes, and this what to report.
    pub oversized: Vec<MalformedLine>,
}

impl LineChunk {
    /// What is wrong with `line` when it was too long to keep.
    pub fn oversized(&self, line: u64) -> Option<&MalformedLine> {
        if self.oversized.is_empty() {
            return None;
        }
        self.oversized.iter().find(|m| m.line == line)
    }
}

/// A chunk is cut at this many bytes even if it has fewer lines: chunks in
/// flight stay bounded in memory when lines are long.
pub const CHUNK_BYTES: usize = 4 << 20;

/// Like [`read_records`], but a JSON Lines input is handed to `each_chunk`
/// unparsed, `lines_per_chunk` lines (or [`CHUNK_BYTES`]) at a time, so the caller can
/// parse chunks in parallel ([`parse_line`]). A JSON array or Parquet file
/// is still read record by record into `each_record`. `options` are used
/// as by [`read_records`]; malformed lines are the caller's to handle.
pub fn read_chunks<E>(
    source: &InputSource,
    options: ReadOptions<'_>,
    lines_per_chunk: usize,
    each_chunk: impl FnMut(LineChunk) -> Result<(), E>,
    mut each_record: impl FnMut(Record<'_>) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<InputError>,
{
    let ReadOptions { hasher, bytes_read, limit, cancel } = options;
    match open(source, hasher, bytes_read, cancel)? {
        Opened::Parquet(path) => parquet::read(path, &mut each_record),
        Opened::Json { first: None, .. } => Ok(()),
        Opened::Json { name, reader, first: Some(b'[') } => read_array(&name, reader, limit, &mut each_record),
        Opened::Json { name, reader, .. } => cut_lines(&name, reader, lines_per_chunk, limit, each_chunk),
    }
}

/// The lines of a JSON Lines reader, `lines_per_chunk` at a time.
fn cut_lines<E: From<InputError>>(
    name: &str,
    mut reader: Box<dyn BufRead + '_>,
    lines_per_chunk: usize,
    limit: RecordLimit,
    mut each_chunk: impl FnMut(LineChunk) -> Result<(), E>,
) -> Result<(), E> {
    let mut cutter = LineCutter::new(lines_per_chunk, limit);
    let too_large = |line| InputError::RecordTooLarge { source_name: name.to_string(), line, limit: limit.max_bytes };
    loop {
        let buf = reader.fill_buf().map_err(|error| InputError::Io { source_name: name.to_string(), error })?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        cutter.feed(buf);
        reader.consume(n);
        while let Some(full) = cutter.cut().map_err(too_large)? {
            each_chunk(full)?;
        }
    }
    match cutter.finish() {
        Some(last) => each_chunk(last),
        None => Ok(()),
    }
}

/// Cuts text appended to `chunk.text` into lines, and hands out chunks of
/// `lines_per_chunk` lines (or [`CHUNK_BYTES`]). The text is read in whole
/// buffers and each line found with one `memchr`: far cheaper than reading
/// line by line, which costs a call and a copy per line.
struct LineCutter {
    /// The chunk being filled; its text may end in an incomplete line.
    chunk: LineChunk,
    lines_per_chunk: usize,
    limit: RecordLimit,
    /// Bytes of an oversized line being dropped (its head is in the text).
    skipping: Option<u64>,
    /// Where in `chunk.text` the next line starts.
    line_start: usize,
    /// How far `chunk.text` has been searched for newlines.
    searched: usize,
    /// Lines seen so far (blank ones too).
    line_no: u64,
}

impl LineCutter {
    fn new(lines_per_chunk: usize, limit: RecordLimit) -> Self {
        let lines_per_chunk = lines_per_chunk.max(1);
        LineCutter {
            chunk: LineChunk {
                text: Vec::with_capacity(1 << 16),
                lines: Vec::with_capacity(lines_per_chunk),
                oversized: Vec::new(),
            },
            lines_per_chunk,
            limit,
            skipping: None,
            line_start: 0,
            searched: 0,
            line_no: 0,
        }
    }

    /// Appends a buffer read from the input. While an oversized line is
    /// being dropped, its bytes are only counted, up to its newline.
    fn feed(&mut self, mut buf: &[u8]) {
        if let Some(seen) = self.skipping.as_mut() {
            match memchr::memchr(b'\n', buf) {
                None => {
                    *seen += buf.len() as u64;
                    return;
                }
                Some(at) => {
                    let total = *seen + at as u64;
                    self.end_oversized(total);
                    self.chunk.text.push(b'\n');
                    buf = &buf[at + 1..];
                }
            }
        }
        self.chunk.text.extend_from_slice(buf);
    }

    /// Notes the oversized line being dropped as malformed, with its size.
    fn end_oversized(&mut self, total: u64) {
        self.skipping = None;
        self.chunk.oversized.push(MalformedLine {
            line: self.line_no + 1,
            column: 1,
            message: format!(
                "a record of {total} bytes is longer than --max-record-bytes ({}); its first {OVERSIZED_HEAD} bytes are kept",
                self.limit.max_bytes
            ),
        });
    }

    /// Records the lines ended in the text appended since the last call,
    /// and returns the chunk as soon as it is full; the bytes after its last
    /// line move to the next chunk. Call again until it returns `None`. An
    /// unfinished line past the limit is an error (its line number) unless
    /// the limit skips: then only its head is kept.
    fn cut(&mut self) -> Result<Option<LineChunk>, u64> {
        while let Some(at) = memchr::memchr(b'\n', &self.chunk.text[self.searched..]) {
            let end = self.searched + at;
            self.add_line(end);
            self.line_start = end + 1;
            self.searched = end + 1;
            if self.chunk.lines.len() >= self.lines_per_chunk || self.line_start >= CHUNK_BYTES {
                return Ok(Some(self.take_full()));
            }
        }
        self.searched = self.chunk.text.len();
        let open = self.chunk.text.len() - self.line_start;
        if self.skipping.is_none() && open > self.limit.max_bytes {
            if !self.limit.skip {
                return Err(self.line_no + 1);
            }
            self.skipping = Some(open as u64);
            self.chunk.text.truncate(self.line_start + OVERSIZED_HEAD.min(open));
            self.searched = self.chunk.text.len();
        }
        Ok(None)
    }

    /// The last chunk, with a last line that has no newline.
    fn finish(mut self) -> Option<LineChunk> {
        if let Some(total) = self.skipping {
            self.end_oversized(total);
        }
        if self.line_start < self.chunk.text.len() {
            self.add_line(self.chunk.text.len());
        }
        (!self.chunk.lines.is_empty()).then_some(self.chunk)
    }

    /// Counts the line `line_start..end` and keeps it unless it is blank.
    fn add_line(&mut self, mut end: usize) {
        self.line_no += 1;
        let start = self.line_start;
        while end > start && matches!(self.chunk.text[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        // Most lines start with `{`: no scan for that answer.
        let first = self.chunk.text.get(start).copied();
        if first.is_some_and(|b| !b.is_ascii_whitespace())
            || !self.chunk.text[start..end].iter().all(u8::is_ascii_whitespace)
        {
            self.chunk.lines.push((self.line_no, start..end));
        }
    }

    /// Hands out the chunk up to `line_start`, and starts the next one with
    /// the bytes after it, in a buffer sized like this one.
    fn take_full(&mut self) -> LineChunk {
        let mut text = Vec::with_capacity(self.chunk.text.capacity().max(self.line_start + (1 << 16)));
        text.extend_from_slice(&self.chunk.text[self.line_start..]);
        self.chunk.text.truncate(self.line_start);
        let next = LineChunk { text, lines: Vec::with_capacity(self.lines_per_chunk), oversized: Vec::new() };
        self.searched -= self.line_start;
        self.line_start = 0;
        std::mem::replace(&mut self.chunk, next)
    }
}

/// A JSON Lines line that is not valid JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedLine {
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// What the parser expected.
    pub message: String,
}

impl MalformedLine {
    /// The error that stops the read (`--on-bad-line fail`).
    pub fn into_error(self, source_name: &str) -> InputError {
        InputError::Malformed {
            source_name: source_name.to_string(),
            line: self.line,
            column: self.column,
            message: self.message,
        }
    }

    /// The quarantined line (`--on-bad-line skip`).
    pub fn into_bad_line(self, source_name: &str, text: &[u8]) -> BadLine {
        BadLine {
            source: source_name.to_string(),
            line: self.line,
            error: format!("column {}: {}", self.column, self.message),
            text: String::from_utf8_lossy(text).into_owned(),
        }
    }
}

/// Parses one JSON Lines line (line number `line` for the error).
pub fn parse_line(line: u64, text: &[u8]) -> Result<Node<'_>, MalformedLine> {
    Node::parse(text).map_err(|e| MalformedLine { line, column: e.column as u64, message: e.message })
}

/// An input opened for reading.
enum Opened<'a> {
    /// A Parquet file (already hashed and counted).
    Parquet(&'a Path),
    /// JSON: its name, a buffered reader at the start (gzip undone), and the
    /// first non-blank byte (`None`: the input is empty).
    Json { name: String, reader: Box<dyn BufRead + 'a>, first: Option<u8> },
}

fn open<'a>(
    source: &'a InputSource,
    hasher: Option<&'a mut Sha256>,
    bytes_read: &'a AtomicU64,
    cancel: &Cancel,
) -> Result<Opened<'a>, InputError> {
    if let InputSource::File(path) = source
        && parquet::is_parquet(path)
    {
        if let Some(h) = hasher {
            hash_file(path, h)?;
        }
        bytes_read.fetch_add(std::fs::metadata(path).map_or(0, |m| m.len()), Ordering::Relaxed);
        return Ok(Opened::Parquet(path));
    }
    let name = source.to_string();
    let io_err = |error| InputError::Io { source_name: name.clone(), error };
    let raw: Box<dyn Read> = match source {
        InputSource::File(p) => {
            let file = File::open(p).map_err(io_err)?;
            // A FIFO (or any other non-regular file) can block forever.
            if file.metadata().is_ok_and(|m| m.is_file()) { Box::new(file) } else { Pump::start(file, cancel.clone()) }
        }
        InputSource::Stdin => Pump::start(io::stdin(), cancel.clone()),
    };
    let raw: Box<dyn Read + 'a> = Box::new(CountingReader { inner: raw, count: bytes_read });
    let raw: Box<dyn Read + 'a> = match hasher {
        Some(h) => Box::new(HashingReader { inner: raw, hasher: h }),
        None => raw,
    };
    let mut reader = BufReader::with_capacity(1 << 16, raw);
    let gzip = reader.fill_buf().map_err(io_err)?.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn BufRead + 'a> = if gzip {
        Box::new(BufReader::with_capacity(1 << 16, flate2::bufread::MultiGzDecoder::new(reader)))
    } else {
        Box::new(reader)
    };
    // A UTF-8 byte order mark (Windows tools write one) is not JSON.
    if reader.fill_buf().map_err(io_err)?.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
    }
    let first = first_non_blank(&mut reader).map_err(io_err)?;
    Ok(Opened::Json { name, reader, first })
}

/// Reads a pipe (stdin, a FIFO) without ever blocking a stop: a thread of
/// its own does the blocking reads, and this side waits for their blocks
/// only while no stop was requested (Ctrl-C or SIGTERM must end a run whose
/// producer has gone quiet). Reads of regular files never wait long, and
/// skip this.
struct Pump {
    blocks: Receiver<io::Result<Vec<u8>>>,
    block: Vec<u8>,
    at: usize,
    ended: bool,
    cancel: Cancel,
}

impl Pump {
    /// Blocks in flight between the two threads (64 KiB each).
    const BLOCKS: usize = 4;
    /// How often a wait for input looks at the stop request.
    const POLL: Duration = Duration::from_millis(50);

    /// Starts the reading thread; if no thread can be started, `inner` is
    /// read directly.
    fn start<R: Read + Send + 'static>(inner: R, cancel: Cancel) -> Box<dyn Read> {
        let (tx, blocks) = sync_channel(Self::BLOCKS);
        let inner = std::sync::Arc::new(std::sync::Mutex::new(Some(inner)));
        let for_thread = inner.clone();
        let spawned = std::thread::Builder::new().name("input-pump".into()).spawn(move || {
            let Some(mut inner) = for_thread.lock().ok().and_then(|mut slot| slot.take()) else { return };
            loop {
                let mut block = vec![0u8; 1 << 16];
                let sent = match inner.read(&mut block) {
                    Ok(0) => break,
                    Ok(n) => {
                        block.truncate(n);
                        tx.send(Ok(block))
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                };
                if sent.is_err() {
                    break;
                }
            }
        });
        match spawned {
            Ok(_) => Box::new(Pump { blocks, block: Vec::new(), at: 0, ended: false, cancel }),
            Err(_) => match inner.lock().ok().and_then(|mut slot| slot.take()) {
                Some(inner) => Box::new(inner),
                None => Box::new(io::empty()),
            },
        }
    }
}

impl Read for Pump {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.block.len() {
            if self.ended {
                return Ok(0);
            }
            match self.blocks.recv_timeout(Self::POLL) {
                Ok(Ok(block)) => (self.block, self.at) = (block, 0),
                Ok(Err(e)) => return Err(e),
                Err(RecvTimeoutError::Timeout) if self.cancel.is_cancelled() => {
                    return Err(io::Error::other("reading stopped by a signal"));
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.ended = true,
            }
        }
        let n = buf.len().min(self.block.len() - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Counts raw bytes read (for progress: compressed bytes of gzip input).
struct CountingReader<'c> {
    inner: Box<dyn Read + 'c>,
    count: &'c AtomicU64,
}

impl Read for CountingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Feeds everything read through it to a hasher.
struct HashingReader<'h> {
    inner: Box<dyn Read + 'h>,
    hasher: &'h mut Sha256,
}

impl Read for HashingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Hashes a file's raw bytes (its part of an input fingerprint).
pub fn hash_file(path: &Path, hasher: &mut Sha256) -> Result<(), InputError> {
    let err = |error| InputError::Io { source_name: path.display().to_string(), error };
    let mut f = File::open(path).map_err(err)?;
    io::copy(&mut f, hasher).map_err(err)?;
    Ok(())
}

/// Peeks at the first non-whitespace byte without consuming it.
fn first_non_blank(reader: &mut (dyn BufRead + '_)) -> io::Result<Option<u8>> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        if let Some(b) = buf.iter().find(|b| !b.is_ascii_whitespace()) {
            return Ok(Some(*b));
        }
        // A whole buffer of whitespace: drop it (no line counting needed for
        // the array form; the line reader counts its own lines).
        let n = buf.len();
        reader.consume(n);
    }
}

fn read_lines<E: From<InputError>>(
    name: &str,
    reader: Box<dyn BufRead + '_>,
    limit: RecordLimit,
    each: &mut impl FnMut(Record<'_>) -> Result<(), E>,
) -> Result<(), E> {
    // Parsed as bytes: a bad UTF-8 byte is a malformed line with a column,
    // not an I/O error ending the read; the records borrow from the chunk.
    cut_lines(name, reader, 1024, limit, |chunk| {
        for (line, range) in &chunk.lines {
            if let Some(bad) = chunk.oversized(*line) {
                return Err(bad.clone().into_error(name).into());
            }
            let value = parse_line(*line, &chunk.text[range.clone()]).map_err(|bad| bad.into_error(name))?;
            line_records(*line, value, &mut *each)?;
        }
        Ok(())
    })
}

/// The records of one JSON Lines line: a line holding an array gives one
/// record per element, any other value one record.
pub fn line_records<'a, E>(
    line: u64,
    value: Node<'a>,
    each: &mut impl FnMut(Record<'a>) -> Result<(), E>,
) -> Result<(), E> {
    match value {
        Node::Array(items) => items.into_iter().try_for_each(|value| each(Record { line, value })),
        value => each(Record { line, value }),
    }
}

/// Streams the elements of a top-level JSON array without holding the
/// array. A small scanner cuts each element's text out of the stream (it
/// follows strings, escapes and nesting), and our own parser reads it, so
/// a `.json` array file reads every value exactly as the same records in
/// JSON Lines do (`-0` is the integer 0, integers of any size keep their
/// digits, floats are correctly rounded). Memory holds one element.
fn read_array<E: From<InputError>>(
    name: &str,
    mut reader: Box<dyn BufRead + '_>,
    limit: RecordLimit,
    each: &mut impl FnMut(Record<'_>) -> Result<(), E>,
) -> Result<(), E> {
    let mut scan = ArrayScan { max_element: limit.max_bytes, ..ArrayScan::default() };
    loop {
        let block = reader.fill_buf().map_err(|error| InputError::Io { source_name: name.to_string(), error })?;
        if block.is_empty() {
            break;
        }
        let len = block.len();
        for &b in block {
            match scan.step(b) {
                Step::More => {}
                Step::Element => {
                    let (line, column) = scan.element_start;
                    let text = std::mem::take(&mut scan.element);
                    let value = Node::parse(&text).map_err(|e| {
                        let (line, column) = position_in(&text, e.column, line, column);
                        InputError::Malformed { source_name: name.to_string(), line, column, message: e.message }
                    })?;
                    each(Record { line, value })?;
                    scan.element = text;
                    scan.element.clear();
                }
                Step::Bad(message) => {
                    let (line, column) = (scan.line, scan.column);
                    return Err(InputError::Malformed { source_name: name.to_string(), line, column, message }.into());
                }
                Step::TooLarge => {
                    let (line, limit) = (scan.element_start.0, limit.max_bytes);
                    return Err(InputError::RecordTooLarge { source_name: name.to_string(), line, limit }.into());
                }
            }
        }
        reader.consume(len);
    }
    match scan.state {
        ArrayState::Done => Ok(()),
        _ => {
            let (line, column) = (scan.line, scan.column);
            let message = "EOF while parsing a list".to_string();
            Err(InputError::Malformed { source_name: name.to_string(), line, column, message }.into())
        }
    }
}

/// Where an array scan is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ArrayState {
    /// Before the opening `[`.
    #[default]
    Start,
    /// After `[`: an element or `]`.
    First,
    /// After `,`: an element.
    Next,
    /// Inside an element.
    Element,
    /// After the closing `]`: only white space.
    Done,
}

/// What a byte completed.
enum Step {
    /// Nothing yet.
    More,
    /// An element's text is complete in [`ArrayScan::element`].
    Element,
    /// The text is not a JSON array; the message says what was found.
    Bad(String),
    /// The element is longer than the record limit.
    TooLarge,
}

/// Cuts the elements of a top-level array out of a stream of bytes.
#[derive(Debug, Default)]
struct ArrayScan {
    state: ArrayState,
    /// The current element's text.
    element: Vec<u8>,
    /// 1-based line and column where it started.
    element_start: (u64, u64),
    /// Open `[` and `{` inside the element.
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// 1-based position of the byte being read.
    line: u64,
    column: u64,
    /// The most bytes of one element.
    max_element: usize,
}

impl ArrayScan {
    fn step(&mut self, b: u8) -> Step {
        if self.line == 0 {
            self.line = 1;
        }
        if b == b'\n' {
            self.line += 1;
            self.column = 0;
        } else {
            self.column += 1;
        }
        let blank = matches!(b, b' ' | b'\t' | b'\n' | b'\r');
        match self.state {
            ArrayState::Start if blank => Step::More,
            ArrayState::Start if b == b'[' => {
                self.state = ArrayState::First;
                Step::More
            }
            ArrayState::Start => Step::Bad(format!("expected `[`, found {}", shown(b))),
            ArrayState::First | ArrayState::Next if blank => Step::More,
            ArrayState::First if b == b']' => {
                self.state = ArrayState::Done;
                Step::More
            }
            ArrayState::First | ArrayState::Next if matches!(b, b',' | b']') => {
                Step::Bad(format!("expected value, found {}", shown(b)))
            }
            ArrayState::First | ArrayState::Next => {
                self.state = ArrayState::Element;
                self.element_start = (self.line, self.column);
                self.element.clear();
                self.element_byte(b)
            }
            ArrayState::Element => self.element_byte(b),
            ArrayState::Done if blank => Step::More,
            ArrayState::Done => Step::Bad(format!("trailing characters after the array: {}", shown(b))),
        }
    }

    fn element_byte(&mut self, b: u8) -> Step {
        if self.in_string {
            match (self.escaped, b) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => self.in_string = false,
                _ => {}
            }
            return self.keep(b);
        }
        match b {
            b',' | b']' if self.depth == 0 => {
                self.state = if b == b',' { ArrayState::Next } else { ArrayState::Done };
                return Step::Element;
            }
            b'"' => self.in_string = true,
            b'[' | b'{' => self.depth += 1,
            b']' | b'}' => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        self.keep(b)
    }

    /// Adds a byte to the element, unless that passes the limit.
    fn keep(&mut self, b: u8) -> Step {
        if self.element.len() >= self.max_element {
            return Step::TooLarge;
        }
        self.element.push(b);
        Step::More
    }
}

/// A byte as an error message shows it.
fn shown(b: u8) -> String {
    if b.is_ascii_graphic() { format!("`{}`", char::from(b)) } else { format!("byte 0x{b:02x}") }
}

/// The line and column of byte `column` (1-based) of an element's text
/// that starts at (`line`, `start_column`).
fn position_in(text: &[u8], column: usize, line: u64, start_column: u64) -> (u64, u64) {
    let before = &text[..column.saturating_sub(1).min(text.len())];
    match before.iter().rposition(|&b| b == b'\n') {
        Some(nl) => (line + before.iter().filter(|&&b| b == b'\n').count() as u64, (before.len() - nl) as u64),
        None => (line, start_column + before.len() as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Chunks hold exactly `lines_per_chunk` lines each (the last fewer),
    /// with the right numbers and text, whatever the line endings and
    /// wherever lines cross the reader's buffers.
    #[test]
    fn chunks_cut_lines_across_buffers() {
        let mut text = Vec::new();
        let mut expected = Vec::new();
        for i in 0..3000u64 {
            let body = match i % 10 {
                0 => String::new(),
                1 => "   ".into(),
                // Some lines longer than the 64 KiB read buffer.
                2 if i % 500 == 2 => format!("{{\"long\": \"{}\"}}", "x".repeat(70_000)),
                _ => format!("{{\"i\": {i}, \"pad\": \"{}\"}}", "y".repeat((i * 37 % 300) as usize)),
            };
            if !body.trim().is_empty() {
                expected.push((i + 1, body.clone()));
            }
            text.extend_from_slice(body.as_bytes());
            if i < 2999 {
                text.extend_from_slice(if i % 3 == 0 { b"\r\n" } else { b"\n" });
            }
        }
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(&text).expect("write");
        let source = InputSource::File(file.path().to_path_buf());
        let (mut got, mut sizes) = (Vec::new(), Vec::new());
        let bytes = AtomicU64::new(0);
        let cancel = Cancel::default();
        read_chunks(
            &source,
            ReadOptions { hasher: None, bytes_read: &bytes, limit: RecordLimit::default(), cancel: &cancel },
            7,
            |chunk| {
                sizes.push(chunk.lines.len());
                for (line, range) in &chunk.lines {
                    got.push((*line, String::from_utf8(chunk.text[range.clone()].to_vec()).expect("utf-8")));
                }
                Ok::<_, InputError>(())
            },
            |_| panic!("JSON Lines input"),
        )
        .expect("reads");
        assert_eq!(got, expected);
        let (last, full) = sizes.split_last().expect("chunks");
        assert!(full.iter().all(|n| *n == 7) && *last <= 7, "{sizes:?}");
    }

    fn collect(path: &Path) -> Result<Vec<Record<'static>>, InputError> {
        let mut out = Vec::new();
        let bytes = AtomicU64::new(0);
        let options =
            ReadOptions { hasher: None, bytes_read: &bytes, limit: RecordLimit::default(), cancel: &Cancel::default() };
        read_records(&InputSource::File(path.to_path_buf()), options, |r| {
            out.push(Record { line: r.line, value: r.value.into_owned() });
            Ok::<_, InputError>(())
        })?;
        Ok(out)
    }

    #[test]
    fn table_names_from_file_names() {
        let t = |p: &str| InputSource::from_arg(Path::new(p)).default_table();
        assert_eq!(t("data/events.jsonl.gz").as_deref(), Some("events"));
        assert_eq!(t("x.json").as_deref(), Some("x"));
        assert_eq!(t("a.b.csv").as_deref(), Some("a.b.csv"));
        assert_eq!(t("-"), None);
    }

    #[test]
    fn reads_lines_arrays_and_gzip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lines = dir.path().join("a.jsonl");
        std::fs::write(&lines, "{\"a\":1}\n\n[{\"a\":2},{\"a\":3}]\r\n").expect("write");
        let got = collect(&lines).expect("reads");
        assert_eq!(got.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 3, 3]);

        let array = dir.path().join("b.json");
        std::fs::write(&array, " [ {\"a\":1}, 2 ]").expect("write");
        assert_eq!(collect(&array).expect("reads").len(), 2);

        let gz = dir.path().join("c.jsonl.gz");
        let mut enc = flate2::write::GzEncoder::new(File::create(&gz).expect("create"), flate2::Compression::fast());
        enc.write_all(b"{\"a\":1}\n{\"a\":2}\n").expect("gzip");
        enc.finish().expect("finish");
        assert_eq!(collect(&gz).expect("reads").len(), 2);

        // A byte order mark before lines or an array is skipped.
        let bom = dir.path().join("d.jsonl");
        std::fs::write(&bom, b"\xEF\xBB\xBF{\"a\":1}\n{\"a\":2}\n").expect("write");
        assert_eq!(collect(&bom).expect("reads").len(), 2);
        std::fs::write(&bom, b"\xEF\xBB\xBF[{\"a\":1}]").expect("write");
        assert_eq!(collect(&bom).expect("reads").len(), 1);
    }

    /// A `.json` array file gives the records the same text gives as JSON
    /// Lines, value for value (our parser, not serde_json's defaults),
    /// with the line each element starts on, and names what is wrong.
    #[test]
    fn array_files_read_values_exactly_as_json_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let elements = [
            r#"{"n": -0, "f": 926692147331.6327, "big": 18446744073709551616, "neg": -0.0}"#,
            r#"{"s": "a ] , } [ { \" \\", "nested": [[1, {"x": "]"}], []]}"#,
            "7",
            r#""text""#,
            "[1, 2]",
        ];
        let lines = dir.path().join("l.jsonl");
        std::fs::write(&lines, elements.join("\n")).expect("write");
        let array = dir.path().join("a.json");
        std::fs::write(&array, format!("[\n{}\n]\n", elements.join(",\n"))).expect("write");
        let from_lines: Vec<Node<'_>> = collect(&lines).expect("lines").into_iter().map(|r| r.value).collect();
        let from_array = collect(&array).expect("array");
        // (The array line is an array of records as JSON Lines, one record in an array file.)
        assert_eq!(from_lines[..4], from_array.iter().map(|r| r.value.clone()).collect::<Vec<_>>()[..4]);
        assert_eq!(from_array.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3, 4, 5, 6]);
        assert_eq!(from_array[0].value.get("n"), Some(&Node::Int(0)));
        assert!(matches!(from_array[0].value.get("neg"), Some(Node::Float(f)) if f.to_bits() == (-0.0f64).to_bits()));
        assert_eq!(from_array[0].value.get("big"), Some(&Node::BigInt("18446744073709551616".into())));
        assert_eq!(from_array[0].value.get("f"), Some(&Node::Float("926692147331.6327".parse().expect("f64"))));

        for (text, at, want) in [
            ("[{\"a\":1},]", "a.json:1:10:", "expected value, found `]`"),
            ("[{\"a\":1}", "a.json:1:", "EOF while parsing a list"),
            ("[1] 2", "a.json:1:5:", "trailing characters after the array: `2`"),
            ("[1,\n  {\"a\": tru}]", "a.json:2:", "expected ident"),
            ("[1,,2]", "a.json:1:4:", "expected value, found `,`"),
        ] {
            std::fs::write(&array, text).expect("write");
            let err = collect(&array).expect_err(text).to_string();
            assert!(err.contains(at) && err.contains(want), "{text}: {err}");
        }
        std::fs::write(&array, " [ ] ").expect("write");
        assert!(collect(&array).expect("empty array").is_empty());
    }

    #[test]
    fn chunks_are_cut_by_bytes_when_lines_are_long() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("long.jsonl");
        let long = format!("{{\"s\":\"{}\"}}\n", "x".repeat(1 << 20));
        std::fs::write(&p, format!("{}\n{}", long.repeat(10), "{\"a\":1}\n".repeat(5))).expect("write");
        let bytes = AtomicU64::new(0);
        let mut chunks = Vec::new();
        let cancel = Cancel::default();
        read_chunks(
            &InputSource::File(p),
            ReadOptions { hasher: None, bytes_read: &bytes, limit: RecordLimit::default(), cancel: &cancel },
            100,
            |c| {
                chunks.push(c.lines.iter().map(|(n, _)| *n).collect::<Vec<_>>());
                Ok::<_, InputError>(())
            },
            |_| Ok(()),
        )
        .expect("reads");
        // 1 MiB lines: a chunk is cut once it holds CHUNK_BYTES (4 MiB).
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 7], "{chunks:?}");
        let lines: Vec<u64> = chunks.concat();
        assert_eq!(lines, (1..=10).chain(12..=16).collect::<Vec<_>>(), "blank line 11 left out, every other line once");
    }

    #[test]
    fn malformed_line_names_file_line_and_column() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("bad.jsonl");
        std::fs::write(&p, "{\"a\":1}\n{\"a\": tru}\n").expect("write");
        let err = collect(&p).expect_err("malformed").to_string();
        assert!(err.contains("bad.jsonl:2:"), "{err}");
        assert!(err.contains("malformed JSON"), "{err}");
    }
}
