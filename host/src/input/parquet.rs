//! Parquet input files → JSON records, so they go through the same
//! normalizer as JSON: one record per row, nested lists and structs as JSON
//! arrays and objects, timestamps as RFC 3339 strings (inferred back as
//! timestamps), decimals as strings, binary as base64.

use std::fs::File;
use std::path::Path;

use arrow::array::{
    Array, AsArray, BinaryArray, BooleanArray, Float32Array, Float64Array, GenericListArray, Int8Array, Int16Array,
    Int32Array, Int64Array, LargeStringArray, StringArray, StructArray, UInt8Array, UInt16Array, UInt32Array,
    UInt64Array,
};
use arrow::datatypes::{DataType as ArrowType, TimeUnit};
use base64::Engine as _;
use std::borrow::Cow;

use super::{InputError, Node, Record};
use crate::package::jsonl::{format_date, format_timestamp};

/// True when the file starts with Parquet's magic bytes.
pub fn is_parquet(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic)).is_ok() && &magic == b"PAR1"
}

/// Reads every row of a Parquet file as a JSON object.
pub fn read<E: From<InputError>>(path: &Path, each: &mut impl FnMut(Record<'_>) -> Result<(), E>) -> Result<(), E> {
    let name = path.display().to_string();
    let bad = |message: String| InputError::Malformed { source_name: name.clone(), line: 0, column: 0, message };
    let file = File::open(path).map_err(|error| InputError::Io { source_name: name.clone(), error })?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(4096).build())
        .map_err(|e| bad(format!("not a readable Parquet file: {e}")))?;
    let mut row_no = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        let schema = batch.schema();
        for r in 0..batch.num_rows() {
            row_no += 1;
            let entries = schema
                .fields()
                .iter()
                .zip(batch.columns())
                .map(|(field, column)| (Cow::Borrowed(field.name().as_str()), cell(column.as_ref(), r)))
                .collect();
            each(Record { line: row_no, value: Node::Object(entries) })?;
        }
    }
    Ok(())
}

fn list_items<O: arrow::array::OffsetSizeTrait>(l: &GenericListArray<O>, r: usize) -> Node<'static> {
    let values = l.value(r);
    Node::Array((0..values.len()).map(|i| cell(values.as_ref(), i)).collect())
}

fn text(s: impl Into<String>) -> Node<'static> {
    Node::Str(Cow::Owned(s.into()))
}

/// One cell as JSON.
fn cell(a: &dyn Array, r: usize) -> Node<'static> {
    if a.is_null(r) {
        return Node::Null;
    }
    let any = a.as_any();
    macro_rules! int {
        ($t:ty) => {
            if let Some(x) = any.downcast_ref::<$t>() {
                return Node::Int(i64::from(x.value(r)));
            }
        };
    }
    int!(Int8Array);
    int!(Int16Array);
    int!(Int32Array);
    int!(Int64Array);
    int!(UInt8Array);
    int!(UInt16Array);
    int!(UInt32Array);
    if let Some(x) = any.downcast_ref::<UInt64Array>() {
        let u = x.value(r);
        return i64::try_from(u).map_or_else(|_| Node::BigInt(u.to_string().into()), Node::Int);
    }
    if let Some(x) = any.downcast_ref::<Float32Array>() {
        return float(f64::from(x.value(r)));
    }
    if let Some(x) = any.downcast_ref::<Float64Array>() {
        return float(x.value(r));
    }
    if let Some(x) = any.downcast_ref::<BooleanArray>() {
        return Node::Bool(x.value(r));
    }
    if let Some(x) = any.downcast_ref::<StringArray>() {
        return text(x.value(r));
    }
    if let Some(x) = any.downcast_ref::<LargeStringArray>() {
        return text(x.value(r));
    }
    if let Some(x) = any.downcast_ref::<BinaryArray>() {
        return text(base64::engine::general_purpose::STANDARD.encode(x.value(r)));
    }
    match a.data_type() {
        ArrowType::List(_) => list_items(a.as_list::<i32>(), r),
        ArrowType::LargeList(_) => list_items(a.as_list::<i64>(), r),
        ArrowType::Struct(fields) => {
            let Some(s) = any.downcast_ref::<StructArray>() else { return Node::Null };
            Node::Object(
                fields
                    .iter()
                    .zip(s.columns())
                    .map(|(f, c)| (Cow::Owned(f.name().clone()), cell(c.as_ref(), r)))
                    .collect(),
            )
        }
        ArrowType::Timestamp(unit, _) => {
            // RFC 3339 UTC, so the normalizer infers a timestamp again.
            let raw = match unit {
                TimeUnit::Second => {
                    a.as_primitive::<arrow::datatypes::TimestampSecondType>().value(r).saturating_mul(1_000_000)
                }
                TimeUnit::Millisecond => {
                    a.as_primitive::<arrow::datatypes::TimestampMillisecondType>().value(r).saturating_mul(1_000)
                }
                TimeUnit::Microsecond => a.as_primitive::<arrow::datatypes::TimestampMicrosecondType>().value(r),
                TimeUnit::Nanosecond => a.as_primitive::<arrow::datatypes::TimestampNanosecondType>().value(r) / 1_000,
            };
            text(format_timestamp(raw))
        }
        ArrowType::Date32 => text(format_date(a.as_primitive::<arrow::datatypes::Date32Type>().value(r))),
        ArrowType::Decimal128(_, _) => text(a.as_primitive::<arrow::datatypes::Decimal128Type>().value_as_string(r)),
        _ => text(arrow::util::display::array_value_to_string(a, r).unwrap_or_default()),
    }
}

/// A float as JSON has it: NaN and infinities (which JSON cannot hold) are null.
fn float(f: f64) -> Node<'static> {
    if f.is_finite() { Node::Float(f) } else { Node::Null }
}
