//! The capture format's encoding of schemas, contexts and values as JSON.
//!
//! The same encoding is used by the host's `jsonl` job files, so a sink that
//! reads a whole job file gets values in exactly this form.

use base64::Engine as _;
use serde_json::{Map, Value as Json, json};

use crate::{BatchContext, Column, DataType, FileFormat, TableSchema, Value, WriteDisposition};

/// dlt's name of a data type (`text`, `bigint`, ...).
pub fn data_type_name(t: DataType) -> &'static str {
    match t {
        DataType::Text => "text",
        DataType::Double => "double",
        DataType::Bool => "bool",
        DataType::Timestamp => "timestamp",
        DataType::Bigint => "bigint",
        DataType::Binary => "binary",
        DataType::Json => "json",
        DataType::Decimal => "decimal",
        DataType::Date => "date",
        DataType::Time => "time",
    }
}

/// dlt's name of a write disposition.
pub fn write_disposition_name(w: WriteDisposition) -> &'static str {
    match w {
        WriteDisposition::Append => "append",
        WriteDisposition::Replace => "replace",
        WriteDisposition::Merge => "merge",
        WriteDisposition::Skip => "skip",
    }
}

/// `jsonl` or `parquet`.
pub fn file_format_name(f: FileFormat) -> &'static str {
    match f {
        FileFormat::Jsonl => "jsonl",
        FileFormat::Parquet => "parquet",
    }
}

/// A column as `{"name", "data_type", "nullable", <each hint that is set>}`.
pub fn column_to_json(c: &Column) -> Json {
    let mut m = Map::new();
    m.insert("name".into(), json!(c.name));
    m.insert("data_type".into(), json!(data_type_name(c.data_type)));
    m.insert("nullable".into(), json!(c.nullable));
    for (key, set) in [
        ("primary_key", c.primary_key),
        ("unique", c.unique),
        ("row_key", c.row_key),
        ("parent_key", c.parent_key),
        ("variant", c.variant),
    ] {
        if set {
            m.insert(key.into(), json!(true));
        }
    }
    if let Some(p) = c.precision {
        m.insert("precision".into(), json!(p));
    }
    if let Some(s) = c.scale {
        m.insert("scale".into(), json!(s));
    }
    if let Some(tz) = c.timezone {
        m.insert("timezone".into(), json!(tz));
    }
    Json::Object(m)
}

/// A table schema as `{"name", "parent", "write_disposition", "columns"}`.
pub fn table_to_json(t: &TableSchema) -> Json {
    json!({
        "name": t.name,
        "parent": t.parent,
        "write_disposition": write_disposition_name(t.write_disposition),
        "columns": t.columns.iter().map(column_to_json).collect::<Vec<_>>(),
    })
}

/// A batch context with snake_case keys.
pub fn context_to_json(c: &BatchContext) -> Json {
    json!({
        "load_id": c.load_id,
        "job_id": c.job_id,
        "batch_index": c.batch_index,
        "start_row": c.start_row,
        "row_count": c.row_count,
        "idempotency_key": c.idempotency_key,
        "attempt": c.attempt,
    })
}

/// One value in the capture encoding: numbers and bools as JSON, timestamps
/// RFC 3339 UTC with six fraction digits, dates `YYYY-MM-DD`, times
/// `HH:MM:SS.ffffff`, decimals as strings, binary as base64, json embedded.
pub fn value_to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Bigint(i) => json!(i),
        Value::Double(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Text(s) | Value::Decimal(s) => Json::String(s.clone()),
        Value::Timestamp(us) => Json::String(format_timestamp(*us)),
        Value::Date(days) => Json::String(format_date(*days)),
        Value::Time(us) => Json::String(format_time(*us)),
        Value::Binary(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        // An unparsable json value would be a host bug; keep the text rather than lose it.
        Value::Json(s) => serde_json::from_str(s).unwrap_or_else(|_| Json::String(s.clone())),
    }
}

/// A row as an object with every column of the table, in column order.
pub fn row_to_json(table: &TableSchema, row: &[Value]) -> Json {
    let mut m = Map::with_capacity(table.columns.len());
    for (i, c) in table.columns.iter().enumerate() {
        let v = row.get(i).map_or(Json::Null, value_to_json);
        m.insert(c.name.clone(), v);
    }
    Json::Object(m)
}

fn format_timestamp(us: i64) -> String {
    match chrono::DateTime::from_timestamp_micros(us) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => us.to_string(),
    }
}

fn format_date(days: i32) -> String {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    match epoch.checked_add_signed(chrono::Duration::days(i64::from(days))) {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => days.to_string(),
    }
}

fn format_time(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000);
    format!("{:02}:{:02}:{:02}.{:06}", secs / 3600, (secs / 60) % 60, secs % 60, frac)
}

/// Makes a table name safe as part of a file name, reversibly: ASCII letters,
/// digits, `_` and `-` stay, every other byte becomes `%XX`. Names longer than
/// 64 bytes after that are cut and suffixed with a hash of the full name, so
/// `<table>.<job_id>...` stays within file-name limits.
pub fn safe_file_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.len() > 64 {
        let hash = name.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3));
        out.truncate(47);
        while out.ends_with('%') || out.as_bytes()[out.len() - 2] == b'%' {
            out.pop();
        }
        out.push_str(&format!("~{hash:016x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_temporal_values() {
        assert_eq!(format_timestamp(1_704_164_645_000_000), "2024-01-02T03:04:05.000000Z");
        assert_eq!(format_date(19_724), "2024-01-02");
        assert_eq!(format_time(3_723_000_007), "01:02:03.000007");
    }

    #[test]
    fn safe_names() {
        assert_eq!(safe_file_name("a/b.c"), "a%2Fb%2Ec");
        assert_eq!(safe_file_name("plain_Name-1"), "plain_Name-1");
        assert!(safe_file_name(&"x".repeat(300)).len() <= 64);
    }
}
