//! Host types ↔ the WIT types generated in `runtime::bindings`.

use super::bindings as wit;
use crate::package::FileFormat;
use crate::schema::{DataType, Table, Value, WriteDisposition};

/// A table schema as the WIT `table-schema`.
pub fn table(t: &Table) -> wit::TableSchema {
    wit::TableSchema {
        name: t.name.clone(),
        parent: t.parent.clone(),
        write_disposition: match t.write_disposition {
            WriteDisposition::Append => wit::WriteDisposition::Append,
            WriteDisposition::Replace => wit::WriteDisposition::Replace,
            WriteDisposition::Merge => wit::WriteDisposition::Merge,
            WriteDisposition::Skip => wit::WriteDisposition::Skip,
        },
        columns: t
            .columns
            .iter()
            .map(|c| wit::Column {
                name: c.name.clone(),
                data_type: data_type(c.data_type),
                nullable: c.nullable,
                primary_key: c.primary_key,
                unique: c.unique,
                row_key: c.row_key,
                parent_key: c.parent_key,
                variant: c.variant,
                precision: c.precision,
                scale: c.scale,
                timezone: c.timezone,
            })
            .collect(),
    }
}

fn data_type(t: DataType) -> wit::DataType {
    match t {
        DataType::Text => wit::DataType::Text,
        DataType::Double => wit::DataType::Double,
        DataType::Bool => wit::DataType::Bool,
        DataType::Timestamp => wit::DataType::Timestamp,
        DataType::Bigint => wit::DataType::Bigint,
        DataType::Binary => wit::DataType::Binary,
        DataType::Json => wit::DataType::Json,
        DataType::Decimal => wit::DataType::Decimal,
        DataType::Date => wit::DataType::Date,
        DataType::Time => wit::DataType::Time,
    }
}

/// A row of host values as WIT values (moved, not copied).
pub fn row(values: Vec<Value>) -> Vec<wit::Value> {
    values.into_iter().map(value).collect()
}

fn value(v: Value) -> wit::Value {
    match v {
        Value::Null => wit::Value::Null,
        Value::Bool(b) => wit::Value::Bool(b),
        Value::Bigint(i) => wit::Value::Bigint(i),
        Value::Double(f) => wit::Value::Double(f),
        Value::Text(s) => wit::Value::Text(s.into_string()),
        Value::Decimal(s) => wit::Value::Decimal(s),
        Value::Timestamp(t) => wit::Value::Timestamp(t),
        Value::Date(d) => wit::Value::Date(d),
        Value::Time(t) => wit::Value::Time(t),
        Value::Binary(b) => wit::Value::Binary(b),
        Value::Json(s) => wit::Value::Json(s),
    }
}

/// A package file format as the WIT `file-format`.
pub fn file_format(f: FileFormat) -> wit::FileFormat {
    match f {
        FileFormat::Jsonl => wit::FileFormat::Jsonl,
        FileFormat::Parquet => wit::FileFormat::Parquet,
    }
}

/// The WIT `file-format` as ours.
pub fn file_format_from(f: wit::FileFormat) -> FileFormat {
    match f {
        wit::FileFormat::Jsonl => FileFormat::Jsonl,
        wit::FileFormat::Parquet => FileFormat::Parquet,
    }
}
