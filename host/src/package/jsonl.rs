//! The `jsonl` job file encoding: one JSON object per row, values encoded as
//! the capture format encodes them, so a sink in any language can read a
//! job file without our help.
//!
//! Absent keys mean null: a row only carries the columns it has a value for,
//! and columns added later in the file are simply absent from earlier rows.

use std::io::{self, Write};

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, NaiveTime, Timelike};

use crate::schema::time::{format_date, format_time, format_timestamp, timestamp_digits};

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

/// Parses one line into a row aligned with `table.columns` (absent → null).
///
/// This is the hot path of loading: it decodes each cell straight into its
/// column's type, finds columns by walking them in order (rows are written
/// in column order), and never builds a JSON map.
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
