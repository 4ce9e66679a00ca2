//! The JSON Lines parser: one line into a [`Node`] tree.
//!
//! Parsing was the largest cost of normalizing (about two thirds of a
//! record's time with serde_json's visitor). This parser does the same job
//! with less work per byte: the line's UTF-8 is checked once, not per
//! string; strings are scanned eight bytes at a time; the entries of an
//! object or array collect on a reused stack and move into a vector of
//! exactly their size when it closes (one allocation each, no regrowth).
//!
//! It accepts exactly RFC 8259 JSON, as serde_json does. Where they differ
//! it is on purpose, to read numbers the way Python's `json.loads` (and so
//! dlt) reads them: floats are correctly rounded (Rust's `f64::from_str`)
//! and `-0` is the integer 0. Errors are rare, so their message and column
//! come from serde_json re-reading the line: users see the same wording
//! as from the rest of the tool.

use std::borrow::Cow;

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::Node;

/// How deep arrays and objects may nest (serde_json's limit, which keeps a
/// hostile line from overflowing the stack).
const MAX_DEPTH: usize = 128;

/// Objects with more keys than this find duplicates through a hash index
/// instead of a linear scan.
const INDEX_FROM: usize = 32;

/// Why a line is not JSON: a 1-based byte column and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based column (in bytes) where reading stopped.
    pub column: usize,
    /// What was expected or found there.
    pub message: String,
}

/// Where the fast parser gave up; the message is made afterwards.
struct Stop(usize);

/// An object's entry.
pub(super) type Entry<'a> = (Cow<'a, str>, Node<'a>);

/// Parses one JSON document. Strings without escapes borrow from `bytes`.
pub fn parse(bytes: &[u8]) -> Result<Node<'_>, SyntaxError> {
    let Some(text) = utf8(bytes) else {
        let at = std::str::from_utf8(bytes).err().map_or(0, |e| e.valid_up_to());
        return Err(describe(bytes, at));
    };
    let mut p = Parser { text, bytes, pos: 0, entries: Vec::new(), items: Vec::new(), depth: 0 };
    let result = p.document();
    result.map_err(|Stop(at)| describe(bytes, at))
}

/// A place in a [`Cursor`]'s line.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    pos: usize,
    depth: usize,
}

/// `"key":` as compact JSON writes object key `key` and its colon, when
/// the key needs no escape there (no `"`, `\\` or control character);
/// `None` otherwise. It is what [`Cursor::key_is`] matches.
pub fn key_colon(key: &str) -> Option<Vec<u8>> {
    (find_special(key.as_bytes(), 0) == key.len()).then(|| format!("\"{key}\":").into_bytes())
}

/// `bytes` as text when they are UTF-8. simdutf8 checks a line many bytes
/// at a time, which std's check does not (docs/performance.md, "Choices in the hot path").
fn utf8(bytes: &[u8]) -> Option<&str> {
    simdutf8::basic::from_utf8(bytes).ok()
}

/// A reader over one line for a caller that walks a record itself (the
/// normalizer's fast path, which builds no tree for the record's own keys).
/// Each step answers `None` or `false` where the text is not what the caller
/// expects, malformed or not: the caller then falls back to [`Node::parse`],
/// which says what is wrong.
pub struct Cursor<'a> {
    parser: Parser<'a>,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`, if they are UTF-8.
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        let text = utf8(bytes)?;
        Some(Cursor { parser: Parser { text, bytes, pos: 0, entries: Vec::new(), items: Vec::new(), depth: 0 } })
    }

    /// The next byte after whitespace, not consumed.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        match self.parser.peek() {
            // Compact JSON has no whitespace: one compare says so for any
            // byte above a space (the cursor peeks dozens of times a line).
            // `skip_ws` checks the same, but calling it here first loads
            // the byte a second time (measured: docs/performance.md).
            Some(b) if b > b' ' => Some(b),
            _ => {
                self.parser.skip_ws();
                self.parser.peek()
            }
        }
    }

    /// Consumes `byte` if it comes next after whitespace.
    pub fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.parser.pos += 1;
        }
        found
    }

    /// Consumes `{` if it comes next, counting the depth as [`Node::parse`] does
    /// (so both refuse the same nesting); [`Cursor::leave`] undoes it.
    pub fn enter_object(&mut self) -> bool {
        self.peek() == Some(b'{') && self.parser.enter().is_ok()
    }

    /// Where the cursor is, to come back to with [`Cursor::rewind`].
    pub fn mark(&self) -> Mark {
        Mark { pos: self.parser.pos, depth: self.parser.depth }
    }

    /// Goes back to `mark` (of this cursor), as if nothing after it was read.
    pub fn rewind(&mut self, mark: Mark) {
        self.parser.pos = mark.pos;
        self.parser.depth = mark.depth;
    }

    /// Leaves an object entered with [`Cursor::enter_object`].
    pub fn leave(&mut self) {
        self.parser.depth -= 1;
    }

    /// A string (an object key) if one comes next.
    #[inline(always)]
    pub fn string(&mut self) -> Option<Cow<'a, str>> {
        if self.peek() != Some(b'"') {
            return None;
        }
        self.parser.string().ok()
    }

    /// Consumes the key and colon `known[..len]` (`"id":`) if those bytes
    /// come next: matching a known key in compact JSON costs one
    /// comparison, not a decoding. (Any other spelling of the same key, with
    /// escapes or spaces, does not match; the caller then reads the key.)
    /// `known` may go on past `len`: with 16 bytes on both sides, the
    /// comparison is one vector compare instead of a call to `memcmp`.
    pub fn key_is(&mut self, known: &[u8], len: usize) -> bool {
        self.parser.skip_ws();
        let p = &mut self.parser;
        let found = match (p.bytes.get(p.pos..p.pos + 16), known.get(..16)) {
            (Some(here), Some(known)) if len <= 16 => same_prefix(here, known, len),
            _ => known.get(..len).is_some_and(|k| p.bytes.get(p.pos..p.pos + len) == Some(k)),
        };
        if found {
            p.pos += len;
        }
        found
    }

    /// The next value, as a tree (a scalar costs no allocation). Numbers
    /// and literals, most of a record's cells, are read inline.
    #[inline(always)]
    pub fn value(&mut self) -> Option<Node<'a>> {
        let next = self.peek();
        let p = &mut self.parser;
        match next {
            Some(b'-' | b'0'..=b'9') => p.number().ok(),
            Some(b't') => p.literal(b"true", Node::Bool(true)).ok(),
            Some(b'f') => p.literal(b"false", Node::Bool(false)).ok(),
            _ => p.value().ok(),
        }
    }

    /// Whether only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// The next value as compact JSON text, exactly as [`Node::to_json`]
    /// prints it once parsed, without building it; `None` (the caller then
    /// builds the tree) where the text is malformed or has a repeated key
    /// or an integer beyond 64 bits.
    pub fn json_text(&mut self) -> Option<String> {
        self.parser.skip_ws();
        let start = self.parser.pos;
        // Compact input is mostly printed as it is: then one copy does.
        if self.parser.skip_canonical(0) {
            return Some(self.parser.text[start..self.parser.pos].to_string());
        }
        self.parser.pos = start;
        let mut out = String::with_capacity(64);
        self.parser.copy_value(&mut out).ok()?;
        Some(out)
    }
}

/// Builds the error for a line the parser stopped on at byte `at`: serde_json's
/// message and column when it rejects the line too (the wording users know),
/// ours otherwise.
fn describe(bytes: &[u8], at: usize) -> SyntaxError {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Err(e) => {
            let text = e.to_string();
            let message = match text.rfind(" at line ") {
                Some(i) => text[..i].to_string(),
                None => text,
            };
            SyntaxError { column: e.column(), message }
        }
        Ok(_) => SyntaxError { column: at + 1, message: "unsupported JSON".into() },
    }
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Entries of the objects being read, innermost last.
    entries: Vec<Entry<'a>>,
    /// Items of the arrays being read, innermost last.
    items: Vec<Node<'a>>,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn document(&mut self) -> Result<Node<'a>, Stop> {
        self.skip_ws();
        let value = self.value()?;
        self.skip_ws();
        if self.pos != self.bytes.len() {
            return Err(Stop(self.pos));
        }
        Ok(value)
    }

    #[inline]
    fn skip_ws(&mut self) {
        if self.peek().is_some_and(|b| b > b' ') {
            return;
        }
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn value(&mut self) -> Result<Node<'a>, Stop> {
        match self.peek() {
            Some(b'"') => Ok(Node::Str(self.string()?)),
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal(b"true", Node::Bool(true)),
            Some(b'f') => self.literal(b"false", Node::Bool(false)),
            Some(b'n') => self.literal(b"null", Node::Null),
            _ => Err(Stop(self.pos)),
        }
    }

    #[inline]
    fn literal(&mut self, word: &[u8], node: Node<'a>) -> Result<Node<'a>, Stop> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(node)
        } else {
            Err(Stop(self.pos))
        }
    }

    fn enter(&mut self) -> Result<(), Stop> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Stop(self.pos));
        }
        self.pos += 1;
        self.skip_ws();
        Ok(())
    }

    /// Reads an array or object from its opening byte to `close`, calling
    /// `item` for each item (with its position) between the commas.
    #[inline]
    fn container(&mut self, close: u8, mut item: impl FnMut(&mut Self, usize) -> Result<(), Stop>) -> Result<(), Stop> {
        self.enter()?;
        if self.peek() == Some(close) {
            self.pos += 1;
        } else {
            let mut n = 0;
            loop {
                item(self, n)?;
                n += 1;
                if !self.next_item(close)? {
                    break;
                }
            }
        }
        self.depth -= 1;
        Ok(())
    }

    fn array(&mut self) -> Result<Node<'a>, Stop> {
        let base = self.items.len();
        self.container(b']', |p, _| {
            let item = p.value()?;
            p.items.push(item);
            Ok(())
        })?;
        Ok(Node::Array(self.items.split_off(base)))
    }

    fn object(&mut self) -> Result<Node<'a>, Stop> {
        let base = self.entries.len();
        let mut keys = Keys::default();
        self.container(b'}', |p, _| {
            let key = p.key()?;
            let value = p.value()?;
            keys.insert(&mut p.entries, base, key, value);
            Ok(())
        })?;
        Ok(Node::Object(self.entries.split_off(base)))
    }

    /// Writes the value at `pos` to `out` as serde_json prints it parsed
    /// (see [`Cursor::json_text`]).
    fn copy_value(&mut self, out: &mut String) -> Result<(), Stop> {
        match self.peek() {
            Some(b'"') => {
                let text = self.string()?;
                copy_string(out, &text, matches!(text, Cow::Owned(_)));
            }
            Some(b'{') => {
                out.push('{');
                // Few keys per object: a repeat is found by comparing them.
                let mut keys: SmallVec<[Cow<'a, str>; 8]> = SmallVec::new();
                self.container(b'}', |p, n| {
                    let key = p.key()?;
                    if keys.len() >= INDEX_FROM || keys.contains(&key) {
                        return Err(Stop(p.pos));
                    }
                    if n > 0 {
                        out.push(',');
                    }
                    copy_string(out, &key, matches!(key, Cow::Owned(_)));
                    keys.push(key);
                    out.push(':');
                    p.copy_value(out)
                })?;
                out.push('}');
            }
            Some(b'[') => {
                out.push('[');
                self.container(b']', |p, n| {
                    if n > 0 {
                        out.push(',');
                    }
                    p.copy_value(out)
                })?;
                out.push(']');
            }
            _ => match self.value()? {
                Node::Int(i) => out.push_str(itoa::Buffer::new().format(i)),
                // What serde_json writes for a (finite: the parser refuses
                // others) float.
                Node::Float(f) => out.push_str(zmij::Buffer::new().format_finite(f)),
                Node::Bool(b) => out.push_str(if b { "true" } else { "false" }),
                Node::Null => out.push_str("null"),
                _ => return Err(Stop(self.pos)),
            },
        }
        Ok(())
    }

    /// Moves past the value at `pos` and says `true` when its text is
    /// exactly what [`Parser::copy_value`] would write: no whitespace, no
    /// escapes, no repeated key, numbers as serde_json prints them. `false`
    /// (anywhere in the value) otherwise, or on malformed text; the caller
    /// then starts over with `copy_value`. `depth` counts the containers
    /// around the value (it is refused where the tree would be: deeper
    /// than [`MAX_DEPTH`] in all).
    fn skip_canonical(&mut self, depth: usize) -> bool {
        match self.peek() {
            Some(b'"') => self.skip_plain_string().is_some(),
            Some(open @ (b'{' | b'[')) => {
                let close = if open == b'{' { b'}' } else { b']' };
                if self.depth + depth >= MAX_DEPTH {
                    return false;
                }
                self.pos += 1;
                if self.peek() == Some(close) {
                    self.pos += 1;
                    return true;
                }
                let mut keys: SmallVec<[&'a str; 8]> = SmallVec::new();
                loop {
                    if open == b'{' {
                        let Some(key) = self.skip_plain_string() else { return false };
                        if keys.len() >= INDEX_FROM || has_key(&keys, key) || self.peek() != Some(b':') {
                            return false;
                        }
                        keys.push(key);
                        self.pos += 1;
                    }
                    // Strings and numbers, most items, without a call.
                    let item = match self.peek() {
                        Some(b'"') => self.skip_plain_string().is_some(),
                        Some(b'-' | b'0'..=b'9') => self.skip_canonical_number(),
                        _ => self.skip_canonical(depth + 1),
                    };
                    if !item {
                        return false;
                    }
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b) if b == close => {
                            self.pos += 1;
                            return true;
                        }
                        _ => return false,
                    }
                }
            }
            Some(b'-' | b'0'..=b'9') => self.skip_canonical_number(),
            Some(b't') => self.literal(b"true", Node::Null).is_ok(),
            Some(b'f') => self.literal(b"false", Node::Null).is_ok(),
            Some(b'n') => self.literal(b"null", Node::Null).is_ok(),
            _ => false,
        }
    }

    /// Moves past the number at `pos` and says whether serde_json prints
    /// it back as it is written (for [`Parser::skip_canonical`]). Told from
    /// the text where it can be, without reading the value: an integer of
    /// at most 18 digits (so within `i64`) prints as itself unless it is
    /// `-0`, and so does a float [`prints_as_itself`] vouches for. Other
    /// numbers are read and printed to compare.
    fn skip_canonical_number(&mut self) -> bool {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let int_start = self.pos;
        // JSON's integer part: `0`, or digits not starting with `0`.
        if self.peek() == Some(b'0') {
            self.pos += 1;
        } else {
            self.skip_digits();
        }
        let int_len = self.pos - int_start;
        let plain = match self.peek() {
            Some(b'e' | b'E') => false,
            Some(b'.') => {
                self.pos += 1;
                let frac_start = self.pos;
                self.skip_digits();
                let (int, frac) = (&self.bytes[int_start..int_start + int_len], &self.bytes[frac_start..self.pos]);
                !int.is_empty()
                    && !frac.is_empty()
                    && self.peek().is_none_or(|b| b != b'e' && b != b'E')
                    && digits_print_as_themselves(int, frac)
            }
            _ => (1..=18).contains(&int_len) && !(negative && self.bytes[int_start] == b'0'),
        };
        if plain {
            return true;
        }
        self.pos = start;
        match self.number() {
            Ok(Node::Int(i)) => itoa::Buffer::new().format(i) == &self.text[start..self.pos],
            Ok(Node::Float(f)) => {
                let text = &self.text[start..self.pos];
                prints_as_itself(text) || zmij::Buffer::new().format_finite(f) == text
            }
            _ => false,
        }
    }

    /// Moves past a run of digits.
    #[inline]
    fn skip_digits(&mut self) {
        while self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
    }

    /// A string without escapes at `pos` (its opening quote), moved past.
    /// ([`Parser::string`] less its escape handling: it is a hot part of the
    /// JSON-text copy; docs/performance.md, "Choices in the hot path".)
    #[inline(always)]
    fn skip_plain_string(&mut self) -> Option<&'a str> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.pos + 1;
        let end = find_special(self.bytes, start);
        if self.bytes.get(end) != Some(&b'"') {
            return None;
        }
        self.pos = end + 1;
        Some(&self.text[start..end])
    }

    /// An object's key and its colon, at the key's opening quote.
    fn key(&mut self) -> Result<Cow<'a, str>, Stop> {
        if self.peek() != Some(b'"') {
            return Err(Stop(self.pos));
        }
        let key = self.string()?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(Stop(self.pos));
        }
        self.pos += 1;
        self.skip_ws();
        Ok(key)
    }

    /// After an item of an array or object: `true` past a comma (another
    /// item follows), `false` past the closing byte `close`.
    fn next_item(&mut self, close: u8) -> Result<bool, Stop> {
        self.skip_ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                self.skip_ws();
                Ok(true)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(false)
            }
            _ => Err(Stop(self.pos)),
        }
    }

    /// A string starting at the opening quote; borrowed unless it has escapes.
    /// (Small enough to inline: the rare escapes are read out of line, so
    /// the common string costs no call and no saved registers.)
    #[inline(always)]
    fn string(&mut self) -> Result<Cow<'a, str>, Stop> {
        let start = self.pos + 1;
        let end = find_special(self.bytes, start);
        if self.bytes.get(end) == Some(&b'"') {
            self.pos = end + 1;
            return Ok(Cow::Borrowed(&self.text[start..end]));
        }
        self.string_not_plain(start, end)
    }

    /// The rest of [`Parser::string`] for a string whose first special byte
    /// at `end` is not its closing quote: an escape, or an error.
    #[inline(never)]
    fn string_not_plain(&mut self, start: usize, end: usize) -> Result<Cow<'a, str>, Stop> {
        match self.bytes.get(end) {
            Some(b'\\') => {
                let mut owned = String::with_capacity(end - start + 16);
                owned.push_str(&self.text[start..end]);
                self.pos = end;
                self.escaped(owned).map(Cow::Owned)
            }
            // A control character, or the end of the line.
            _ => Err(Stop(end)),
        }
    }

    /// The rest of a string with escapes, from a backslash at `pos`.
    fn escaped(&mut self, mut out: String) -> Result<String, Stop> {
        loop {
            match self.bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let c = match self.bytes.get(self.pos + 1) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 2;
                            out.push(self.unicode_escape()?);
                            continue;
                        }
                        _ => return Err(Stop(self.pos + 1)),
                    };
                    out.push(c);
                    self.pos += 2;
                }
                Some(_) => {
                    let end = find_special(self.bytes, self.pos);
                    if end == self.pos {
                        return Err(Stop(end));
                    }
                    out.push_str(&self.text[self.pos..end]);
                    self.pos = end;
                }
                None => return Err(Stop(self.pos)),
            }
        }
    }

    /// The code point of `XXXX` (after `\u`), joining a surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, Stop> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                    return Err(Stop(self.pos));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(Stop(self.pos));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(Stop(self.pos)),
            other => other,
        };
        char::from_u32(code).ok_or(Stop(self.pos))
    }

    fn hex4(&mut self) -> Result<u32, Stop> {
        let digits = self.bytes.get(self.pos..self.pos + 4).ok_or(Stop(self.pos))?;
        let mut code = 0u32;
        for d in digits {
            let v = (*d as char).to_digit(16).ok_or(Stop(self.pos))?;
            code = code * 16 + v;
        }
        self.pos += 4;
        Ok(code)
    }

    /// A number. Integers that fit `i64` are [`Node::Int`], other integers
    /// keep their digits ([`Node::BigInt`]); the rest are read as a correctly
    /// rounded `f64`.
    #[inline(always)]
    fn number(&mut self) -> Result<Node<'a>, Stop> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        // Integer part: `0` or a non-zero digit and more digits. The digits
        // are summed as they are read (exact while there are at most 19).
        let int_start = self.pos;
        let mut sum = 0u64;
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(&mut sum),
            _ => return Err(Stop(self.pos)),
        }
        let int_digits = self.pos - int_start;
        let mut frac_digits = 0;
        let mut integral = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            let frac_start = self.pos;
            self.digits(&mut sum);
            frac_digits = self.pos - frac_start;
            if frac_digits == 0 {
                return Err(Stop(self.pos));
            }
            integral = false;
        }
        let mut exponent = false;
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            let exp_start = self.pos;
            self.digits(&mut 0);
            if self.pos == exp_start {
                return Err(Stop(self.pos));
            }
            exponent = true;
            integral = false;
        }
        if !integral && !exponent && int_digits + frac_digits <= 15 {
            // Clinger's fast path: at most 15 digits in all, so the digits
            // are an integer below 2^53 and the divisor a power of ten
            // below 10^22, both exact in an f64, and one IEEE division
            // rounds correctly.
            let f = sum as f64 / POW10[frac_digits];
            return Ok(Node::Float(if negative { -f } else { f }));
        }
        if integral {
            if int_digits <= 19 {
                // At most 19 digits: `sum` did not overflow.
                if !negative && let Ok(i) = i64::try_from(sum) {
                    return Ok(Node::Int(i));
                }
                if negative && sum <= 1 << 63 {
                    return Ok(Node::Int((sum as i64).wrapping_neg()));
                }
            }
            // Python reads any integer exactly; keep the digits.
            return Ok(Node::BigInt(Cow::Borrowed(&self.text[start..self.pos])));
        }
        let f: f64 = self.text[start..self.pos].parse().map_err(|_| Stop(start))?;
        if f.is_infinite() {
            // serde_json refuses these ("number out of range"); so do we.
            return Err(Stop(start));
        }
        Ok(Node::Float(f))
    }

    /// Moves past a run of digits, adding them to `sum` (which wraps once
    /// there are more than 19 of them; callers then do not use it).
    #[inline]
    fn digits(&mut self, sum: &mut u64) {
        // In locals, so the loop keeps them in registers.
        let (mut pos, mut acc) = (self.pos, *sum);
        while let Some(&byte) = self.bytes.get(pos) {
            let digit = byte.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            acc = acc.wrapping_mul(10).wrapping_add(u64::from(digit));
            pos += 1;
        }
        (self.pos, *sum) = (pos, acc);
    }
}

/// The keys of one object being built, to find duplicates. A key seen
/// before keeps its first position and takes the new value (Python's
/// `json.loads` builds a dict the same way).
#[derive(Default)]
pub(super) struct Keys<'a> {
    /// A bit per key so far (a one-word Bloom filter): most keys are new,
    /// and a clear bit proves it without comparing keys.
    seen: u64,
    /// Key → position, once the object has INDEX_FROM keys (a linear scan
    /// would get quadratic).
    index: Option<FxHashMap<Cow<'a, str>, usize>>,
}

impl<'a> Keys<'a> {
    /// Adds `(key, value)` to the object whose entries are `entries[base..]`.
    pub(super) fn insert(&mut self, entries: &mut Vec<Entry<'a>>, base: usize, key: Cow<'a, str>, value: Node<'a>) {
        let bit = key_bit(&key);
        let maybe_seen = self.seen & bit != 0;
        self.seen |= bit;
        if !maybe_seen && self.index.is_none() {
            entries.push((key, value));
            return;
        }
        let object = &mut entries[base..];
        if self.index.is_none() && object.len() >= INDEX_FROM {
            self.index = Some(object.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect());
        }
        let existing = match &mut self.index {
            Some(index) => match index.get(&key) {
                Some(i) => Some(*i),
                None => {
                    index.insert(key.clone(), object.len());
                    None
                }
            },
            None => object.iter().position(|(k, _)| *k == key),
        };
        match existing {
            Some(i) => object[i].1 = value,
            None => entries.push((key, value)),
        }
    }
}

/// A string as serde_json prints it. One without escapes in the input
/// (`escaped` false) holds nothing serde_json escapes (`"`, `\\`, control
/// characters), so it is copied as it is.
fn copy_string(out: &mut String, text: &str, escaped: bool) {
    if escaped {
        // Serializing a str cannot fail.
        out.push_str(&serde_json::to_string(text).unwrap_or_default());
    } else {
        out.push('"');
        out.push_str(text);
        out.push('"');
    }
}

/// Whether `keys` holds `key`. Keys of one object mostly differ in length
/// or first byte: those are compared first, so most pairs cost no call to
/// `memcmp`.
#[inline]
fn has_key(keys: &[&str], key: &str) -> bool {
    keys.iter().any(|k| k.len() == key.len() && k.as_bytes().first() == key.as_bytes().first() && *k == key)
}

/// Whether a float's text is surely what serde_json prints for it, told
/// from the text alone (`false` means "not sure": format and compare).
/// True for a plain decimal `-?int.frac` with at most 15 digits in all,
/// a fraction not ending in 0, and below 1 at most four zeros after the
/// point: 15 digits always survive the trip through an f64, so those digits
/// are the shortest that read back as the same float; and serde_json's
/// formatter (zmij) writes such values (first digit from 10^-5 to 10^15)
/// in plain notation, digit for digit.
fn prints_as_itself(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let Some((int, frac)) = unsigned.split_once('.') else { return false };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(int) && digits(frac) && digits_print_as_themselves(int.as_bytes(), frac.as_bytes())
}

/// [`prints_as_itself`] for the digits before and after the point, both
/// already known to be non-empty runs of ASCII digits.
#[inline]
fn digits_print_as_themselves(int: &[u8], frac: &[u8]) -> bool {
    if frac.last() == Some(&b'0') || int.len() + frac.len() > 15 {
        return false;
    }
    if int == b"0" {
        return frac.iter().take_while(|b| **b == b'0').count() <= 4;
    }
    int.first() != Some(&b'0')
}

/// Powers of ten exact in an f64, for the short-decimal fast path.
const POW10: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/// One of 64 bits for an object key, from its length and its first and
/// last bytes (cheap, and enough to tell apart the keys of one object).
#[inline]
fn key_bit(key: &str) -> u64 {
    let bytes = key.as_bytes();
    let (first, last) = match bytes {
        [] => (0, 0),
        [first, .., last] => (*first, *last),
        [only] => (*only, *only),
    };
    let h = (bytes.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ u64::from(first).wrapping_mul(0xBF58_476D_1CE4_E5B9)
        ^ u64::from(last).wrapping_mul(0x94D0_49BB_1331_11EB);
    1 << (h >> 58)
}

/// The index of the first `"`, `\\` or control character at or after `from`
/// (or the length), a block of bytes per step, as a string's bytes are
/// mostly none of those.
#[inline]
fn find_special(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(block) = bytes.get(i..i + BLOCK) {
        if let Some(at) = special_in_block(block) {
            return i + at;
        }
        i += BLOCK;
    }
    while let Some(b) = bytes.get(i) {
        if *b == b'"' || *b == b'\\' || *b < 0x20 {
            return i;
        }
        i += 1;
    }
    i
}

/// Whether the first `len` (at most 16) of two 16-byte blocks are equal.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
fn same_prefix(a: &[u8], b: &[u8], len: usize) -> bool {
    use safe_arch::{cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i};
    let (Ok(a), Ok(b)) = (<&[u8; 16]>::try_from(a), <&[u8; 16]>::try_from(b)) else { return false };
    let equal = move_mask_i8_m128i(cmp_eq_mask_i8_m128i(load_unaligned_m128i(a), load_unaligned_m128i(b))) as u32;
    let wanted = (1u32 << len) - 1;
    equal & wanted == wanted
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
fn same_prefix(a: &[u8], b: &[u8], len: usize) -> bool {
    a.get(..len).is_some_and(|a| b.get(..len) == Some(a))
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
const BLOCK: usize = 16;
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
const BLOCK: usize = 8;

/// The first special byte of a 16-byte block, by SSE2 compares (every
/// x86_64 has them; safe_arch wraps them without `unsafe`).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
fn special_in_block(block: &[u8]) -> Option<usize> {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, min_u8_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
    };
    let bytes: &[u8; 16] = block.try_into().ok()?;
    let v = load_unaligned_m128i(bytes);
    let quote = cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(b'"' as i8));
    let backslash = cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(b'\\' as i8));
    // Below 0x20 exactly when the unsigned minimum with 0x1f is the byte.
    let control = cmp_eq_mask_i8_m128i(min_u8_m128i(v, set_splat_i8_m128i(0x1f)), v);
    let mask = move_mask_i8_m128i(bitor_m128i(bitor_m128i(quote, backslash), control));
    (mask != 0).then(|| mask.trailing_zeros() as usize)
}

/// The first special byte of an 8-byte block, by word arithmetic: a byte
/// is zero in `x` exactly when it has its high bit set in
/// `(x - ONES) & !x & HIGH` (for the lowest such byte, the one we look
/// for; higher ones may be false positives).
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
fn special_in_block(block: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut word = [0u8; 8];
    word.copy_from_slice(block);
    let w = u64::from_le_bytes(word);
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    let found = (quote.wrapping_sub(ONES) & !quote)
        | (backslash.wrapping_sub(ONES) & !backslash)
        | (w.wrapping_sub(ONES * 0x20) & !w);
    let found = found & HIGH;
    (found != 0).then(|| (found.trailing_zeros() / 8) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_doubles as doubles;

    /// Floats are correctly rounded: compared bit for bit with Rust's
    /// `str::parse::<f64>` (an independent reference) on random texts of
    /// every form, through the line parser, the cursor the fast path uses,
    /// and the serde route that JSON array files take.
    #[test]
    fn floats_match_a_correctly_rounded_reference() {
        let mut rng = doubles::Rng(0xF10A7);
        for _ in 0..300_000 {
            let (text, bits) = doubles::sample(&mut rng);
            let want = Node::Float(f64::from_bits(bits));
            let got = parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e:?}"));
            assert!(matches!(got, Node::Float(f) if f.to_bits() == bits), "{text}: {got:?}, want {want:?}");
            let mut cursor = Cursor::new(text.as_bytes()).expect("utf8");
            let got = cursor.value().expect("a value");
            assert!(matches!(got, Node::Float(f) if f.to_bits() == bits), "cursor {text}: {got:?}");
            let got: Node<'_> = serde_json::from_str(&text).expect("serde reads it");
            assert!(matches!(got, Node::Float(f) if f.to_bits() == bits), "serde {text}: {got:?}");
        }
    }

    /// Compares the printed form: floats in it come from two correctly
    /// rounded readers (see the test above) printed by one printer.
    fn same_as_serde(text: &str) {
        let ours = parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        let theirs: serde_json::Value = serde_json::from_str(text).expect("serde parses");
        assert_eq!(ours.to_json(), theirs.to_string(), "{text}");
    }

    #[test]
    fn reads_what_serde_json_reads() {
        for text in [
            r#"{"a":1,"b":[1.5,-2,true,null],"c":{"d":"x\"y\u00e9\ud83d\ude00"},"e":1e20,"f":18446744073709551615}"#,
            r#" [0.1, 3.0 ,-0.5,1E-7,"\n\t\\\/\b\f\r", {} , [ ] ,"" ] "#,
            "\"\u{e9}\u{1F600} plain\"",
            "-9223372036854775808",
            "1.7976931348623157e308",
            "{\"k\": \"ends with escape\\\\\", \"l\":\"01234567\\u0041bcdefghijk\"}",
        ] {
            same_as_serde(text);
        }
    }

    #[test]
    fn numbers_as_python_reads_them() {
        assert_eq!(parse(b"-0").expect("int"), Node::Int(0));
        assert_eq!(parse(b"-0.0").expect("float"), Node::Float(-0.0));
        assert_eq!(parse(b"9223372036854775807").expect("i64"), Node::Int(i64::MAX));
        assert_eq!(parse(b"-9223372036854775808").expect("i64"), Node::Int(i64::MIN));
        for big in
            ["9223372036854775808", "-9223372036854775809", "18446744073709551616", "-123456789012345678901234567890"]
        {
            assert_eq!(parse(big.as_bytes()).expect("big"), Node::BigInt(big.into()));
            // Printed back exactly, as Python's json.dumps prints an int.
            assert_eq!(parse(big.as_bytes()).expect("big").to_json(), big);
        }
        // Correctly rounded (this one is where fast float readers slip).
        assert_eq!(
            parse(b"2.2250738585072011e-308").expect("float"),
            Node::Float(f64::from_bits(0x000F_FFFF_FFFF_FFFF))
        );
        assert_eq!(parse(b"0.1").expect("float"), Node::Float(0.1));
        // The short-decimal fast path agrees with the full reader.
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..100_000 {
            let int = next(&mut seed, 1_000_000_000);
            let frac_len = next(&mut seed, 16) as usize;
            let frac =
                format!("{:0width$}", next(&mut seed, 10u64.pow(frac_len as u32).max(1)), width = frac_len.max(1));
            for text in [format!("{int}.{frac}"), format!("-0.{frac}"), format!("{}.{frac}", int % 100)] {
                let expected: f64 = text.parse().expect("float");
                assert_eq!(parse(text.as_bytes()).expect("float"), Node::Float(expected), "{text}");
            }
        }
    }

    #[test]
    fn rejects_what_serde_json_rejects_with_its_message() {
        for (text, column, message) in [
            ("{\"a\": tru}", 10, "expected ident"),
            ("{\"a\":1,}", 8, "trailing comma"),
            ("{\"a\" 1}", 6, "expected `:`"),
            ("[1 2]", 4, "expected `,` or `]`"),
            ("{\"a\":1} x", 9, "trailing characters"),
            ("\"a\tb\"", 3, "control character"),
            ("\"\\x\"", 3, "invalid escape"),
            ("\"\\ud800\"", 8, "unexpected end of hex escape"),
            ("01", 2, "invalid number"),
            ("1.", 2, "EOF while parsing a value"),
            ("1e400", 5, "number out of range"),
            ("{\"a\":", 5, "EOF while parsing a value"),
            ("", 0, "EOF while parsing a value"),
        ] {
            let e = parse(text.as_bytes()).expect_err(text);
            assert!(e.message.contains(message), "{text}: {e:?}");
            assert_eq!(e.column, column, "{text}: {e:?}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(parse(deep.as_bytes()).expect_err("deep").message.contains("recursion limit"));
        let e = parse(b"{\"a\":\"\xff\"}").expect_err("utf-8");
        assert!(e.message.contains("invalid unicode"), "{e:?}");
    }

    /// Random JSON text from a small grammar, with the pieces that trip
    /// parsers: escapes, surrogate pairs, non-ASCII, number edges, blanks.
    fn next(seed: &mut u64, n: u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed % n
    }

    fn random_json(seed: &mut u64, depth: u32, out: &mut String) {
        let pick = if depth > 3 { next(seed, 6) } else { next(seed, 8) };
        match pick {
            0 => out.push_str(["null", "true", "false"][next(seed, 3) as usize]),
            1 => out.push_str(
                ["0", "-1", "7", "-12", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "1e3"]
                    [next(seed, 8) as usize],
            ),
            2 => out.push_str(
                ["1.5", "-0.25", "3.0", "2E-2", "6.125e+1", "1.8446744073709552e19", "0.5"][next(seed, 7) as usize],
            ),
            3..=5 => {
                out.push('"');
                for _ in 0..next(seed, 12) {
                    out.push_str(
                        ["a", "é", "😀", "\\n", "\\\"", "\\\\", "\\u00e9", "\\ud83d\\ude00", "\\/", " ", "xyzxyzxyz"]
                            [next(seed, 11) as usize],
                    );
                }
                out.push('"');
            }
            6 => {
                out.push('[');
                for i in 0..next(seed, 5) {
                    if i > 0 {
                        out.push_str([",", " , "][next(seed, 2) as usize]);
                    }
                    random_json(seed, depth + 1, out);
                }
                out.push(']');
            }
            _ => {
                out.push('{');
                for i in 0..next(seed, 5) {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(["\"a\"", "\"b\"", "\"a\"", "\"\\u0061\"", "\"ключ\""][next(seed, 5) as usize]);
                    out.push_str([":", " : "][next(seed, 2) as usize]);
                    random_json(seed, depth + 1, out);
                }
                out.push('}');
            }
        }
    }

    #[test]
    fn floats_said_to_print_as_themselves_do() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut said = 0;
        for _ in 0..200_000 {
            let int = match next(&mut seed, 3) {
                0 => "0".to_string(),
                _ => {
                    let len = next(&mut seed, 16) as u32;
                    next(&mut seed, 10u64.pow(len)).to_string()
                }
            };
            let zeros = "0".repeat(next(&mut seed, 7) as usize);
            let len = next(&mut seed, 16) as u32;
            let frac = format!("{zeros}{}", next(&mut seed, 10u64.pow(len).max(2)));
            let sign = if next(&mut seed, 2) == 0 { "-" } else { "" };
            let text = format!("{sign}{int}.{frac}");
            if prints_as_itself(&text) {
                said += 1;
                let f: f64 = text.parse().expect("float");
                assert_eq!(zmij::Buffer::new().format_finite(f), text);
            }
        }
        assert!(said > 50_000, "{said}");
        for not_sure in ["1.50", "5.0", "0.000001", "1e5", "1234567890123456.5", "00.5", "1.", ".5"] {
            assert!(!prints_as_itself(not_sure), "{not_sure}");
        }
    }

    #[test]
    fn key_is_matches_the_bytes() {
        // Keys of every length up to 20, at the start and near the end of
        // lines (fewer than 16 bytes left), equal or off in one byte.
        let alphabet = b"abcdefghijklmnopqrst";
        for len in 1..=20 {
            let key = &alphabet[..len];
            let mut known = key.to_vec();
            known.extend_from_slice(b"\0zzzzzzzzzzzzzzzzzzzz");
            for tail in [0, 3, 30] {
                for off in 0..=len {
                    let mut line = key.to_vec();
                    if off < len {
                        line[off] ^= 1;
                    }
                    line.extend(std::iter::repeat_n(b' ', tail));
                    // With the 16-byte window and with the key alone.
                    for known in [&known[..], key] {
                        let mut cursor = Cursor::new(&line).expect("UTF-8");
                        assert_eq!(cursor.key_is(known, len), off == len, "{len} {tail} {off}");
                        assert_eq!(cursor.mark().pos, if off == len { len } else { 0 });
                    }
                }
            }
        }
    }

    #[test]
    fn json_text_prints_numbers_as_the_tree_does() {
        // Copied as they are only when already printed so; else re-printed.
        for text in [
            "[-0]",
            "[-0.0]",
            "[1.0]",
            "[1.50]",
            "[1e5]",
            "[0.00001]",
            "[0.000001]",
            "[1E2]",
            "[123456789012345.6]",
            "[1234567890123456.7]",
            "[0.1,2,-3.25,{\"a\":[true,null]}]",
            "{\"a\":1,\"b\":{\"c\":\"x\"}}",
            "{\"a\": 1}",
            "[0,-1,123456789012345678,1234567890123456789,-9223372036854775808]",
            "[{\"a\":{},\"b\":[[]],\"c\":{\"a\":{\"a\":1}}},{\"a\":2}]",
        ] {
            let copied = Cursor::new(text.as_bytes()).and_then(|mut c| c.json_text()).expect("copies");
            assert_eq!(copied, parse(text.as_bytes()).expect("parses").to_json(), "{text}");
        }
        // Malformed numbers, repeated keys and integers beyond 64 bits are
        // not copied (the tree then reports or keeps them).
        for text in [
            "[05]",
            "[-05]",
            "[01.5]",
            "[-]",
            "[1.]",
            "[-.5]",
            "[1e]",
            "[9223372036854775808]",
            "{\"a\":1,\"a\":2}",
            "{\"a\":{\"b\":1,\"b\":2}}",
        ] {
            assert_eq!(Cursor::new(text.as_bytes()).and_then(|mut c| c.json_text()), None, "{text}");
        }
        // Nesting as deep as the tree allows is copied, one more is not.
        for (depth, copies) in [(MAX_DEPTH, true), (MAX_DEPTH + 1, false)] {
            let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let copied = Cursor::new(text.as_bytes()).and_then(|mut c| c.json_text());
            assert_eq!(copied.is_some(), copies, "{depth}");
            assert_eq!(parse(text.as_bytes()).is_ok(), copies, "{depth}");
        }
    }

    #[test]
    fn random_documents_and_corruptions_agree_with_serde_json() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            let mut text = String::new();
            random_json(&mut seed, 0, &mut text);
            // (`-0`, the one number read differently, is not generated.)
            same_as_serde(&text);
            // Copied as text, it prints as the tree does (or declines).
            let mut cursor = Cursor::new(text.as_bytes()).expect("UTF-8");
            if let Some(copied) = cursor.json_text() {
                assert_eq!(copied, parse(text.as_bytes()).expect("parses").to_json(), "{text}");
            } else {
                // Only for a key that may repeat, or an integer beyond 64 bits.
                let may_repeat = text.matches(':').count() >= 2;
                assert!(may_repeat || text.contains("9223372036854775808"), "declined {text}");
            }
            // Cut or corrupt it: both must refuse or both accept.
            let mut bytes = text.into_bytes();
            seed = seed.rotate_left(7) ^ 0x5555;
            let at = (seed % (bytes.len() as u64 + 1)) as usize;
            match seed % 3 {
                0 => bytes.truncate(at),
                1 if at < bytes.len() => bytes[at] = b"{}[],:\"\\x0 "[(seed >> 8) as usize % 11],
                _ => bytes.insert(at, b"{}[],:\"\\x0 "[(seed >> 8) as usize % 11]),
            }
            let ours = parse(&bytes);
            let theirs = serde_json::from_slice::<serde_json::Value>(&bytes);
            assert_eq!(ours.is_ok(), theirs.is_ok(), "{:?}: {ours:?} / {theirs:?}", String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn finds_specials_at_every_offset() {
        for len in 0..40 {
            for special in [b'"', b'\\', b'\n', 0u8, 0x1f] {
                let mut bytes = vec![b'a'; len];
                bytes.push(special);
                bytes.extend_from_slice(b"zz\"");
                assert_eq!(find_special(&bytes, 0), len, "{len} {special}");
            }
            // Bytes at and above 0x20 are never special (including UTF-8).
            let plain: Vec<u8> = (0..len).map(|i| [b' ', b'~', 0x7f, 0xc3, 0xa9, b'!', b'#', b']'][i % 8]).collect();
            assert_eq!(find_special(&plain, 0), len);
        }
    }
}
