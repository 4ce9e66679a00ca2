//! The `jsonl` job file encoding: one JSON object per row, values encoded as
//! the capture format encodes them, so a sink in any language can read a
//! job file without our help.
//!
//! Absent keys mean null: a row only carries the columns it has a value for,
//! and columns added later in the file are simply absent from earlier rows.

use std::io::{self, Write};

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, NaiveTime, Timelike};

use crate::schema::time::{format_date, format_time, format_timestamp, parse_timestamp_digits, timestamp_digits};

use crate::schema::{DataType, Table, Value};

/// Writes one row as a JSON object line. `values` are `(column index,
/// value)`; they are written in column order, which lets [`read_row`] find
/// columns without a lookup. (The writer keeps its [`Keys`]; this is for
/// tests.)
#[cfg(test)]
pub fn write_row(out: &mut Vec<u8>, table: &Table, values: &[(usize, Value)]) -> io::Result<()> {
    let mut keys = Keys::default();
    keys.update(table);
    keys.write_row(out, values)
}

/// The JSON-escaped `"name":` of every column of one table, so writing a
/// row does not escape the same names again and again.
#[derive(Debug, Default)]
pub struct Keys {
    keys: Vec<Vec<u8>>,
}

impl Keys {
    /// Adds the columns `table` gained since the last call.
    pub fn update(&mut self, table: &Table) {
        for c in &table.columns[self.keys.len().min(table.columns.len())..] {
            let mut key = serde_json::to_vec(&c.name).unwrap_or_default();
            key.push(b':');
            self.keys.push(key);
        }
    }

    /// Writes one row (see [`write_row`]); the keys must cover its columns.
    pub fn write_row(&self, out: &mut Vec<u8>, values: &[(usize, Value)]) -> io::Result<()> {
        out.push(b'{');
        if values.windows(2).all(|w| w[0].0 < w[1].0) {
            for (i, (col, value)) in values.iter().enumerate() {
                self.write_cell(out, i, *col, value)?;
            }
        } else {
            let mut order: Vec<&(usize, Value)> = values.iter().collect();
            order.sort_by_key(|(col, _)| *col);
            for (i, (col, value)) in order.into_iter().enumerate() {
                self.write_cell(out, i, *col, value)?;
            }
        }
        out.extend_from_slice(b"}\n");
        Ok(())
    }

    fn write_cell(&self, out: &mut Vec<u8>, i: usize, col: usize, value: &Value) -> io::Result<()> {
        if i > 0 {
            out.push(b',');
        }
        let key = self.keys.get(col).ok_or_else(|| io::Error::other(format!("no column {col}")))?;
        out.extend_from_slice(key);
        write_value(out, value)
    }
}

fn write_value(out: &mut impl Write, value: &Value) -> io::Result<()> {
    match value {
        Value::Null => out.write_all(b"null"),
        Value::Bool(b) => out.write_all(if *b { b"true" } else { b"false" }),
        Value::Bigint(i) => Ok(serde_json::to_writer(out, i)?),
        Value::Double(f) if f.is_finite() => Ok(serde_json::to_writer(out, f)?),
        Value::Double(_) => out.write_all(b"null"),
        Value::Text(s) => Ok(serde_json::to_writer(out, s.as_str())?),
        Value::Decimal(s) => Ok(serde_json::to_writer(out, s)?),
        Value::Json(s) => out.write_all(s.as_bytes()),
        Value::Timestamp(us) => {
            let mut buf = [0u8; 29];
            match timestamp_digits(*us, &mut buf) {
                Some(text) => out.write_all(text),
                None => write!(out, "\"{}\"", format_timestamp(*us)),
            }
        }
        Value::Date(d) => write!(out, "\"{}\"", format_date(*d)),
        Value::Time(t) => write!(out, "\"{}\"", format_time(*t)),
        Value::Binary(b) => write!(out, "\"{}\"", base64::engine::general_purpose::STANDARD.encode(b)),
    }
}

/// A job file line that does not match its table's schema.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not a JSON object.
    #[error("not a JSON object: {0}")]
    Json(#[from] serde_json::Error),
    /// A value does not have its column's type.
    #[error("column `{column}`: expected {expected}, found {found}")]
    Type {
        /// Column name.
        column: String,
        /// The column's type.
        expected: &'static str,
        /// The JSON found.
        found: String,
    },
}

/// Parses one line written by [`Keys::write_row`] into a row aligned with
/// `table.columns`, with `keys` the table's escaped keys.
///
/// This is the hot path of loading. Lines exactly as the writer makes them
/// (keys in column order, no whitespace, strings without escapes) are read
/// by [`read_row_fast`] without serde; any other line, valid or not, by
/// [`read_row`], so the result never depends on which path read it.
pub fn read_written_row(line: &str, table: &Table, keys: &Keys) -> Result<Vec<Value>, DecodeError> {
    match read_row_fast(line, table, keys) {
        Some(row) => Ok(row),
        None => read_row(line, table),
    }
}

/// The fast path of [`read_written_row`]: `None` as soon as the line is
/// not in the writer's exact shape.
fn read_row_fast(line: &str, table: &Table, keys: &Keys) -> Option<Vec<Value>> {
    let columns = &table.columns;
    let mut row = vec![Value::Null; columns.len()];
    let mut rest = line.strip_prefix('{')?;
    if let Some(end) = rest.strip_prefix('}') {
        return end.is_empty().then_some(row);
    }
    let mut next = 0usize;
    loop {
        // The writer skips absent columns and keeps the order of the rest.
        let idx = (next..columns.len()).find(|&i| keys.keys.get(i).is_some_and(|k| rest.as_bytes().starts_with(k)))?;
        // A key is ASCII-delimited (`"…":`), so the cut is a char boundary.
        rest = rest.get(keys.keys[idx].len()..)?;
        let (value, used) = read_cell_fast(rest, columns[idx].data_type)?;
        row[idx] = value;
        rest = rest.get(used..)?;
        next = idx + 1;
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else {
            return (rest == "}").then_some(row);
        }
    }
}

/// One cell of type `t` at the start of `text`, and the bytes it took
/// (always up to an ASCII delimiter, so a char boundary).
fn read_cell_fast(text: &str, t: DataType) -> Option<(Value, usize)> {
    if text.starts_with("null") {
        return Some((Value::Null, 4));
    }
    match t {
        DataType::Bool if text.starts_with("true") => Some((Value::Bool(true), 4)),
        DataType::Bool if text.starts_with("false") => Some((Value::Bool(false), 5)),
        DataType::Bigint => {
            let len = number_len(text.as_bytes());
            // A fraction or exponent: the full parser reports it.
            Some((Value::Bigint(text.get(..len)?.parse().ok()?), len))
        }
        DataType::Double => {
            let len = number_len(text.as_bytes());
            let number = text.get(..len)?;
            // The writer prints every double with a fraction or an
            // exponent; an integer is left to the full parser's rules.
            if !number.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
                return None;
            }
            // Correctly rounded, like serde_json's `float_roundtrip`; out of
            // range is the full parser's error to report.
            let value: f64 = number.parse().ok()?;
            value.is_finite().then_some((Value::Double(value), len))
        }
        DataType::Json => {
            let len = json_len(text.as_bytes())?;
            Some((Value::Json(text.get(..len)?.to_string()), len))
        }
        DataType::Timestamp => {
            let (s, used) = plain_string(text)?;
            let us = match parse_timestamp_digits(s.as_bytes()) {
                Some(us) => us,
                None => DateTime::parse_from_rfc3339(s).ok()?.timestamp_micros(),
            };
            Some((Value::Timestamp(us), used))
        }
        _ => {
            let (s, used) = plain_string(text)?;
            Some((decode_str(s, t)?, used))
        }
    }
}

/// The length of the JSON number at the start of `text` (its characters).
fn number_len(text: &[u8]) -> usize {
    text.iter().position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')).unwrap_or(text.len())
}

/// A string at the start of `text` that needs no unescaping (no `\`, no
/// control character), and the bytes it took with its quotes.
fn plain_string(text: &str) -> Option<(&str, usize)> {
    let body = text.strip_prefix('"')?;
    let end = memchr::memchr2(b'"', b'\\', body.as_bytes())?;
    let s = body.get(..end)?;
    // Not `any`: a loop without an early exit is vectorized.
    let control = s.bytes().fold(false, |found, b| found | (b < 0x20));
    (body.as_bytes()[end] == b'"' && !control).then_some((s, end + 2))
}

/// The length of the compact JSON value at the start of `text`: an object
/// or array up to its matching bracket, a string, or a scalar up to the
/// next `,` or `}`. The writer's json text is serde_json's own print of the
/// value (`Node::to_json`), which reads and prints back to itself, so it is
/// copied as is instead of being parsed and printed again.
fn json_len(text: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in text.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => {
                    in_string = false;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                (false, 0..=0x1f) => return None,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b',' | b'}' | b']' if depth == 0 => return (i > 0).then_some(i),
            b' ' | b'\t' | b'\n' | b'\r' => return None,
            _ => {}
        }
    }
    None
}

/// Parses one line into a row aligned with `table.columns` (absent → null).
///
/// It decodes each cell straight into its column's type, finds columns by
/// walking them in order (rows are written in column order), and never
/// builds a JSON map; [`read_written_row`] is faster on the writer's lines.
pub fn read_row(line: &str, table: &Table) -> Result<Vec<Value>, DecodeError> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_str(line);
    let row = RowSeed { table }.deserialize(&mut de)?;
    de.end()?;
    Ok(row)
}

/// Decodes one JSON object into a row of `table`.
struct RowSeed<'t> {
    table: &'t Table,
}

impl<'de> serde::de::DeserializeSeed<'de> for RowSeed<'_> {
    type Value = Vec<Value>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for RowSeed<'_> {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object with one key per column")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let columns = &self.table.columns;
        let mut row = vec![Value::Null; columns.len()];
        let mut next = 0usize;
        while let Some(idx) = map.next_key_seed(KeySeed { table: self.table, hint: next })? {
            let Some(idx) = idx else {
                // A key the schema does not know: skip its value.
                map.next_value::<serde::de::IgnoredAny>()?;
                continue;
            };
            next = idx + 1;
            let col = &columns[idx];
            row[idx] = if col.data_type == DataType::Json {
                // Our borrowed tree, not serde_json's ordered map: cheaper
                // to build, printed exactly the same.
                match map.next_value::<crate::input::Node<'_>>()? {
                    crate::input::Node::Null => Value::Null,
                    j => Value::Json(j.to_json()),
                }
            } else {
                // Straight into the typed value: no intermediate JSON tree.
                map.next_value_seed(CellSeed { column: col })?
            };
        }
        Ok(row)
    }
}

/// Decodes one cell of a non-json column into its typed value.
struct CellSeed<'c> {
    column: &'c crate::schema::Column,
}

impl CellSeed<'_> {
    fn mismatch<E: serde::de::Error>(&self, found: String) -> E {
        E::custom(DecodeError::Type {
            column: self.column.name.clone(),
            expected: self.column.data_type.name(),
            found: found.chars().take(80).collect(),
        })
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for CellSeed<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for CellSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a {} value", self.column.data_type.name())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Value, E> {
        match self.column.data_type {
            DataType::Bool => Ok(Value::Bool(b)),
            _ => Err(self.mismatch(b.to_string())),
        }
    }

    fn visit_i64<E: serde::de::Error>(self, i: i64) -> Result<Value, E> {
        match self.column.data_type {
            DataType::Bigint => Ok(Value::Bigint(i)),
            DataType::Double => Ok(Value::Double(i as f64)),
            _ => Err(self.mismatch(i.to_string())),
        }
    }

    fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<Value, E> {
        match (self.column.data_type, i64::try_from(u)) {
            (DataType::Bigint, Ok(i)) => Ok(Value::Bigint(i)),
            (DataType::Double, _) => Ok(Value::Double(u as f64)),
            _ => Err(self.mismatch(u.to_string())),
        }
    }

    fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<Value, E> {
        match self.column.data_type {
            DataType::Double => Ok(Value::Double(f)),
            _ => Err(self.mismatch(f.to_string())),
        }
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Value, E> {
        decode_str(s, self.column.data_type).ok_or_else(|| self.mismatch(format!("{s:?}")))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _seq: A) -> Result<Value, A::Error> {
        Err(self.mismatch("an array".into()))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, _map: A) -> Result<Value, A::Error> {
        Err(self.mismatch("an object".into()))
    }
}

/// A string cell of a non-json column as its typed value.
fn decode_str(s: &str, t: DataType) -> Option<Value> {
    Some(match t {
        DataType::Text => Value::Text(s.into()),
        DataType::Decimal => Value::Decimal(s.to_string()),
        DataType::Timestamp => Value::Timestamp(DateTime::parse_from_rfc3339(s).ok()?.timestamp_micros()),
        DataType::Date => {
            let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
            Value::Date(i32::try_from((d - NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days()).ok()?)
        }
        DataType::Time => {
            let t = NaiveTime::parse_from_str(s, "%H:%M:%S%.f").ok()?;
            Value::Time(i64::from(t.num_seconds_from_midnight()) * 1_000_000 + i64::from(t.nanosecond() / 1000))
        }
        DataType::Binary => Value::Binary(base64::engine::general_purpose::STANDARD.decode(s).ok()?),
        _ => return None,
    })
}

/// Resolves a key to its column index, trying the expected position first.
struct KeySeed<'t> {
    table: &'t Table,
    hint: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a column name")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self::Value, E> {
        let cols = &self.table.columns;
        if cols.get(self.hint).is_some_and(|c| c.name == key) {
            return Ok(Some(self.hint));
        }
        Ok(cols.iter().position(|c| c.name == key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Column;

    use crate::test_doubles as doubles;

    /// Every double read back from a job file is the one its text stands
    /// for, bit for bit, against Rust's correctly rounded `str::parse`
    /// (not serde_json's own reading, which is what is under test here):
    /// read directly, as a cell of a json column, and after the writer's
    /// own printing.
    #[test]
    fn doubles_read_back_exactly() {
        let mut table = Table::new("t");
        table.columns.push(Column::new("d", DataType::Double));
        table.columns.push(Column::new("j", DataType::Json));
        let mut rng = doubles::Rng(0xD0_0B1E);
        for _ in 0..300_000 {
            let (text, bits) = doubles::sample(&mut rng);
            let line = format!("{{\"d\":{text},\"j\":[{text}]}}");
            let row = read_row(&line, &table).unwrap_or_else(|e| panic!("{line}: {e}"));
            let Value::Double(d) = row[0] else { panic!("{line}: {:?}", row[0]) };
            // The fast path copies json text as written (the writer's is
            // serde_json's own print); the number in it is the same double.
            let mut keys = Keys::default();
            keys.update(&table);
            let fast = read_written_row(&line, &table, &keys).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(format!("{:?}", fast[0]), format!("{:?}", row[0]), "{line}");
            let Value::Json(j) = &fast[1] else { panic!("{line}: {:?}", fast[1]) };
            let inner: f64 = j.trim_matches(['[', ']']).parse().expect("a number");
            assert_eq!(inner.to_bits(), bits, "{text} in json (fast path): {j}");
            assert_eq!(d.to_bits(), bits, "{text}");
            let Value::Json(j) = &row[1] else { panic!("{line}: {:?}", row[1]) };
            let inner: f64 = j.trim_matches(['[', ']']).parse().expect("a number");
            assert_eq!(inner.to_bits(), bits, "{text} in json: {j}");
            // Written by the job writer and read back again.
            let mut again = Vec::new();
            write_row(&mut again, &table, &[(0, Value::Double(d))]).expect("write");
            let back = read_row(std::str::from_utf8(&again).expect("utf8").trim_end(), &table).expect("read");
            assert_eq!(back[0], Value::Double(d), "{text}");
            assert_eq!(format!("{:?}", back[0]), format!("{:?}", Value::Double(d)), "sign of zero kept: {text}");
        }
    }

    /// The table of the fast-path tests: one column of every type.
    fn every_type_table() -> Table {
        let mut table = Table::new("t");
        for (i, t) in [
            DataType::Text,
            DataType::Double,
            DataType::Bool,
            DataType::Timestamp,
            DataType::Bigint,
            DataType::Binary,
            DataType::Json,
            DataType::Decimal,
            DataType::Date,
            DataType::Time,
        ]
        .into_iter()
        .enumerate()
        {
            table.columns.push(Column::new(format!("c{i} \"x\""), t));
        }
        table
    }

    /// Reads `line` both ways; the results (doubles by their bits, errors
    /// by their text) must be the same.
    fn both_ways(line: &str, table: &Table, keys: &Keys) -> bool {
        let fast = read_written_row(line, table, keys).map(|r| format!("{r:?}")).map_err(|e| e.to_string());
        let full = read_row(line, table).map(|r| format!("{r:?}")).map_err(|e| e.to_string());
        assert_eq!(fast, full, "{line}");
        read_row_fast(line, table, keys).is_some()
    }

    /// Every line the writer writes reads the same through the fast path as
    /// through the full parser, and the fast path takes almost all of them;
    /// lines in any other shape are left to the full parser.
    #[test]
    fn the_fast_path_reads_what_the_full_parser_reads() {
        let table = every_type_table();
        let mut keys = Keys::default();
        keys.update(&table);
        let mut rng = doubles::Rng(0xFA57);
        let texts = ["", "plain", "a \"quoted\" ▶", "back\\slash", "line\nbreak", "{[\"not json\"]}", "\u{1}"];
        let jsons = ["{\"k\":[1,2.5,\"]}\"]}", "[]", "\"s\"", "12", "true", "{\"a\":{\"b\":null}}", "[\"\\\"\"]"];
        let (mut fast, mut total) = (0, 0);
        for i in 0..50_000u64 {
            let (double_text, _) = doubles::sample(&mut rng);
            let double: f64 = double_text.parse().expect("a double");
            let values = [
                Value::Text(texts[(i % 7) as usize].into()),
                Value::Double(if i % 11 == 0 { -0.0 } else { double }),
                Value::Bool(i % 2 == 0),
                Value::Timestamp((i as i64 * 7_919_993_123_457) % 253_402_300_799_999_999 - 62_135_596_800_000_000),
                Value::Bigint(if i % 13 == 0 { i64::MIN } else { i as i64 * -7_777 }),
                Value::Binary(vec![i as u8, 0, 255]),
                Value::Json(jsons[(i % 7) as usize].into()),
                Value::Decimal(format!("-{i}.50")),
                Value::Date((i % 3_000_000) as i32 - 719_162),
                Value::Time((i as i64 * 1_000_003) % 86_400_000_000),
            ];
            // Some cells absent, some null.
            let row: Vec<(usize, Value)> = values
                .into_iter()
                .enumerate()
                .filter(|(c, _)| (i >> c) % 5 != 0)
                .map(|(c, v)| (c, if (i + c as u64).is_multiple_of(17) { Value::Null } else { v }))
                .collect();
            let mut line = Vec::new();
            keys.write_row(&mut line, &row).expect("write");
            let line = String::from_utf8(line).expect("utf8");
            fast += usize::from(both_ways(line.trim_end(), &table, &keys));
            total += 1;
        }
        // Lines with an escaped text (3 texts in 7) take the full parser.
        assert!(fast * 10 > total * 4, "the fast path read {fast} of {total} lines");
        for odd in [
            "{}",
            "{ }",
            "{\"c0 \\\"x\\\"\": \"spaced\"}",
            "{\"c4 \\\"x\\\"\":1,\"c0 \\\"x\\\"\":\"out of order\"}",
            "{\"unknown\":1,\"c4 \\\"x\\\"\":2}",
            "{\"c4 \\\"x\\\"\":1.5}",
            "{\"c4 \\\"x\\\"\":99999999999999999999}",
            "{\"c1 \\\"x\\\"\":1}",
            "{\"c1 \\\"x\\\"\":-0}",
            "{\"c1 \\\"x\\\"\":1e400}",
            "{\"c2 \\\"x\\\"\":\"true\"}",
            "{\"c3 \\\"x\\\"\":\"2024-01-02T03:04:05+02:00\"}",
            "{\"c3 \\\"x\\\"\":\"2016-12-31T23:59:60.000000Z\"}",
            "{\"c6 \\\"x\\\"\":[1, 2]}",
            "{\"c6 \\\"x\\\"\":[1,2]",
            "{\"c4 \\\"x\\\"\":1}trailing",
            "{\"c4 \\\"x\\\"\":1,}",
            "not json",
        ] {
            both_ways(odd, &table, &keys);
        }
    }

    #[test]
    fn every_type_round_trips() {
        let types = [
            (DataType::Text, Value::Text("a \"quoted\" ▶".into())),
            (DataType::Double, Value::Double(2.0)),
            (DataType::Bool, Value::Bool(true)),
            (DataType::Timestamp, Value::Timestamp(1_704_164_645_000_001)),
            (DataType::Bigint, Value::Bigint(-9_223_372_036_854_775_808)),
            (DataType::Binary, Value::Binary(vec![0, 255, 7])),
            (DataType::Json, Value::Json("{\"k\":[1,2]}".into())),
            (DataType::Decimal, Value::Decimal("-12.500".into())),
            (DataType::Date, Value::Date(-3)),
            (DataType::Time, Value::Time(86_399_999_999)),
        ];
        let mut table = Table::new("t");
        let mut values = Vec::new();
        for (i, (t, v)) in types.iter().enumerate() {
            table.columns.push(Column::new(format!("c{i}"), *t));
            values.push((i, v.clone()));
        }
        table.columns.push(Column::new("absent", DataType::Text));
        let mut line = Vec::new();
        write_row(&mut line, &table, &values).expect("write");
        let text = String::from_utf8(line).expect("utf8");
        assert!(text.contains("\"c3\":\"2024-01-02T03:04:05.000001Z\""), "{text}");
        let row = read_row(text.trim_end(), &table).expect("read");
        let mut want: Vec<Value> = types.into_iter().map(|(_, v)| v).collect();
        want.push(Value::Null);
        assert_eq!(row, want);
    }
}
