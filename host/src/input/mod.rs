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

pub mod json;
pub mod parquet;

pub use json::{Node, Typed};
use sha2::{Digest, Sha256};

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

/// How to read: what to tap. (A malformed line ends the read; callers that
/// skip such lines read chunks, [`read_chunks`], and parse them themselves.)
pub struct ReadOptions<'a> {
    /// Fed every raw byte (the input's fingerprint, in one pass).
    pub hasher: Option<&'a mut Sha256>,
    /// Raw bytes read so far (for progress).
    pub bytes_read: &'a AtomicU64,
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
    let ReadOptions { hasher, bytes_read } = options;
    match open(source, hasher, bytes_read)? {
        Opened::Parquet(path) => parquet::read(path, &mut each),
        Opened::Json { first: None, .. } => Ok(()),
        Opened::Json { name, reader, first: Some(b'[') } => read_array(&name, reader, &mut each),
        Opened::Json { name, reader, .. } => read_lines(&name, reader, &mut each),
    }
}

/// Raw lines of a JSON Lines input, to be parsed elsewhere (in parallel).
#[derive(Debug, Default)]
pub struct LineChunk {
    /// The lines' bytes, back to back.
    pub text: Vec<u8>,
    /// `(1-based line number, range in text)`; blank lines are left out.
    pub lines: Vec<(u64, std::ops::Range<usize>)>,
}

/// A chunk is cut at this many bytes even if it has fewer lines: chunks in
/// flight stay bounded in memory when lines are long.
pub const CHUNK_BYTES: usize = 4 << 20;

/// Like [`read_records`], but a JSON Lines input is handed to `each_chunk`
/// unparsed, `lines_per_chunk` lines (or [`CHUNK_BYTES`]) at a time, so the caller can
/// parse chunks in parallel ([`parse_line`]). A JSON array or Parquet file
/// is still read record by record into `each_record`. `hasher` and
/// `bytes_read` are fed as by [`read_records`]; malformed lines are the
/// caller's to handle.
pub fn read_chunks<E>(
    source: &InputSource,
    hasher: Option<&mut Sha256>,
    bytes_read: &AtomicU64,
    lines_per_chunk: usize,
    each_chunk: impl FnMut(LineChunk) -> Result<(), E>,
    mut each_record: impl FnMut(Record<'_>) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<InputError>,
{
    match open(source, hasher, bytes_read)? {
        Opened::Parquet(path) => parquet::read(path, &mut each_record),
        Opened::Json { first: None, .. } => Ok(()),
        Opened::Json { name, reader, first: Some(b'[') } => read_array(&name, reader, &mut each_record),
        Opened::Json { name, reader, .. } => cut_lines(&name, reader, lines_per_chunk, each_chunk),
    }
}

/// The lines of a JSON Lines reader, `lines_per_chunk` at a time.
fn cut_lines<E: From<InputError>>(
    name: &str,
    mut reader: Box<dyn BufRead + '_>,
    lines_per_chunk: usize,
    mut each_chunk: impl FnMut(LineChunk) -> Result<(), E>,
) -> Result<(), E> {
    let mut cutter = LineCutter::new(lines_per_chunk);
    loop {
        let buf = reader.fill_buf().map_err(|error| InputError::Io { source_name: name.to_string(), error })?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        cutter.chunk.text.extend_from_slice(buf);
        reader.consume(n);
        while let Some(full) = cutter.cut() {
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
    /// Where in `chunk.text` the next line starts.
    line_start: usize,
    /// How far `chunk.text` has been searched for newlines.
    searched: usize,
    /// Lines seen so far (blank ones too).
    line_no: u64,
}

impl LineCutter {
    fn new(lines_per_chunk: usize) -> Self {
        let lines_per_chunk = lines_per_chunk.max(1);
        LineCutter {
            chunk: LineChunk { text: Vec::with_capacity(1 << 16), lines: Vec::with_capacity(lines_per_chunk) },
            lines_per_chunk,
            line_start: 0,
            searched: 0,
            line_no: 0,
        }
    }

    /// Records the lines ended in the text appended since the last call,
    /// and returns the chunk as soon as it is full; the bytes after its last
    /// line move to the next chunk. Call again until it returns `None`.
    fn cut(&mut self) -> Option<LineChunk> {
        while let Some(at) = memchr::memchr(b'\n', &self.chunk.text[self.searched..]) {
            let end = self.searched + at;
            self.add_line(end);
            self.line_start = end + 1;
            self.searched = end + 1;
            if self.chunk.lines.len() >= self.lines_per_chunk || self.line_start >= CHUNK_BYTES {
                return Some(self.take_full());
            }
        }
        self.searched = self.chunk.text.len();
        None
    }

    /// The last chunk, with a last line that has no newline.
    fn finish(mut self) -> Option<LineChunk> {
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
        let next = LineChunk { text, lines: Vec::with_capacity(self.lines_per_chunk) };
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
        InputSource::File(p) => Box::new(File::open(p).map_err(io_err)?),
        InputSource::Stdin => Box::new(io::stdin().lock()),
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
    each: &mut impl FnMut(Record<'_>) -> Result<(), E>,
) -> Result<(), E> {
    // Parsed as bytes: a bad UTF-8 byte is a malformed line with a column,
    // not an I/O error ending the read; the records borrow from the chunk.
    cut_lines(name, reader, 1024, |chunk| {
        for (line, range) in &chunk.lines {
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

/// Streams the elements of a top-level JSON array without holding the array.
fn read_array<E: From<InputError>>(
    name: &str,
    reader: Box<dyn BufRead + '_>,
    each: &mut impl FnMut(Record<'_>) -> Result<(), E>,
) -> Result<(), E> {
    use serde::de::{Deserializer as _, SeqAccess, Visitor};

    struct Elements<'a, F, E> {
        each: &'a mut F,
        stopped: &'a mut Option<E>,
    }
    impl<'de, F, E> Visitor<'de> for Elements<'_, F, E>
    where
        F: FnMut(Record<'_>) -> Result<(), E>,
    {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of records")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(value) = seq.next_element::<Node<'de>>()? {
                // The reader's exact line is not exposed mid-stream; element
                // errors carry their own line from serde_json.
                if let Err(e) = (self.each)(Record { line: 0, value }) {
                    *self.stopped = Some(e);
                    return Err(serde::de::Error::custom("stopped"));
                }
            }
            Ok(())
        }
    }

    let mut stopped = None;
    let mut de = serde_json::Deserializer::from_reader(reader);
    let result = (&mut de).deserialize_seq(Elements { each, stopped: &mut stopped }).and_then(|()| de.end());
    if let Some(e) = stopped {
        return Err(e);
    }
    result.map_err(|e| {
        if e.is_io() {
            InputError::Io { source_name: name.to_string(), error: io::Error::other(e.to_string()) }.into()
        } else {
            InputError::Malformed {
                source_name: name.to_string(),
                line: e.line() as u64,
                column: e.column() as u64,
                message: strip_position(&e),
            }
            .into()
        }
    })
}

/// serde_json appends " at line X column Y"; we print the position ourselves.
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
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
        read_chunks(
            &source,
            None,
            &AtomicU64::new(0),
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
        let options = ReadOptions { hasher: None, bytes_read: &bytes };
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

    #[test]
    fn chunks_are_cut_by_bytes_when_lines_are_long() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("long.jsonl");
        let long = format!("{{\"s\":\"{}\"}}\n", "x".repeat(1 << 20));
        std::fs::write(&p, format!("{}\n{}", long.repeat(10), "{\"a\":1}\n".repeat(5))).expect("write");
        let bytes = AtomicU64::new(0);
        let mut chunks = Vec::new();
        read_chunks(
            &InputSource::File(p),
            None,
            &bytes,
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
