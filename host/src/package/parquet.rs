//! Parquet job files, with dlt's type mapping: timestamp µs UTC, decimal128
//! with the column's precision and scale (38, 9 by default), time64 µs, json
//! as UTF-8 text, binary, bool, int64, float64; nullability as the schema says.
//!
//! Rows are first written to a `jsonl` spool (a table may gain columns while
//! it is being written, and a Parquet file's schema is fixed), then converted
//! here in row groups of bounded size once the table's schema is final.
//! Reading streams record batches back, as typed rows or as Arrow IPC.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayBuilder, ArrayRef, BinaryArray, BinaryBuilder, BooleanArray, BooleanBuilder, Date32Array,
    Date32Builder, Decimal128Array, Decimal128Builder, Float64Array, Float64Builder, Int64Array, Int64Builder,
    StringArray, StringBuilder, Time64MicrosecondArray, Time64MicrosecondBuilder, TimestampMicrosecondArray,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType as ArrowType, Field, Schema as ArrowSchema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{
    ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::file::properties::WriterProperties;

use super::{PackageError, io_err, jsonl};
use crate::schema::{DataType, Table, Value};

/// Rows per row group: bounds the writer's memory.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

const DEFAULT_PRECISION: u8 = 38;
const DEFAULT_SCALE: i8 = 9;

fn damaged(path: &Path, message: impl std::fmt::Display) -> PackageError {
    PackageError::Damaged { path: path.to_path_buf(), message: message.to_string() }
}

fn decimal_shape(precision: Option<u32>, scale: Option<u32>) -> (u8, i8) {
    let p = precision.and_then(|p| u8::try_from(p).ok()).filter(|p| (1..=38).contains(p)).unwrap_or(DEFAULT_PRECISION);
    let s = scale
        .and_then(|s| i8::try_from(s).ok())
        .filter(|s| *s >= 0 && (*s as u8) <= p)
        .unwrap_or(DEFAULT_SCALE.min(p as i8));
    (p, s)
}

/// The Arrow schema of a table's Parquet file.
pub fn arrow_schema(table: &Table) -> SchemaRef {
    let fields: Vec<Field> = table
        .columns
        .iter()
        .map(|c| {
            let t = match c.data_type {
                DataType::Text | DataType::Json => ArrowType::Utf8,
                DataType::Double => ArrowType::Float64,
                DataType::Bool => ArrowType::Boolean,
                DataType::Timestamp => ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                DataType::Bigint => ArrowType::Int64,
                DataType::Binary => ArrowType::Binary,
                DataType::Decimal => {
                    let (p, s) = decimal_shape(c.precision, c.scale);
                    ArrowType::Decimal128(p, s)
                }
                DataType::Date => ArrowType::Date32,
                DataType::Time => ArrowType::Time64(TimeUnit::Microsecond),
            };
            Field::new(&c.name, t, c.nullable)
        })
        .collect();
    Arc::new(ArrowSchema::new(fields))
}

/// Parses a plain-notation decimal into an integer scaled by `scale`.
fn decimal_to_i128(text: &str, scale: i8) -> Option<i128> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let scale = scale as usize;
    if frac.len() > scale && frac[scale..].bytes().any(|b| b != b'0') {
        return None; // would lose digits
    }
    let mut frac = frac.chars().take(scale).collect::<String>();
    while frac.len() < scale {
        frac.push('0');
    }
    let v: i128 = format!("{int}{frac}").parse().ok()?;
    Some(if neg { -v } else { v })
}

fn i128_to_decimal(v: i128, scale: i8) -> String {
    let neg = v < 0;
    let digits = v.unsigned_abs().to_string();
    let scale = scale as usize;
    let s = if scale == 0 {
        digits
    } else if digits.len() > scale {
        format!("{}.{}", &digits[..digits.len() - scale], &digits[digits.len() - scale..])
    } else {
        format!("0.{}{}", "0".repeat(scale - digits.len()), digits)
    };
    if neg { format!("-{s}") } else { s }
}

/// One column builder.
enum Builder {
    Text(StringBuilder),
    Double(Float64Builder),
    Bool(BooleanBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Bigint(Int64Builder),
    Binary(BinaryBuilder),
    Decimal(Decimal128Builder, i8),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
}

impl Builder {
    fn new(t: &ArrowType) -> Self {
        match t {
            ArrowType::Float64 => Builder::Double(Float64Builder::new()),
            ArrowType::Boolean => Builder::Bool(BooleanBuilder::new()),
            ArrowType::Timestamp(..) => Builder::Timestamp(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
            ArrowType::Int64 => Builder::Bigint(Int64Builder::new()),
            ArrowType::Binary => Builder::Binary(BinaryBuilder::new()),
            ArrowType::Decimal128(p, s) => Builder::Decimal(
                Decimal128Builder::new().with_precision_and_scale(*p, *s).unwrap_or_else(|_| Decimal128Builder::new()),
                *s,
            ),
            ArrowType::Date32 => Builder::Date(Date32Builder::new()),
            ArrowType::Time64(_) => Builder::Time(Time64MicrosecondBuilder::new()),
            _ => Builder::Text(StringBuilder::new()),
        }
    }

    /// Appends a value; `false` when it does not fit the column's type.
    fn push(&mut self, v: &Value) -> bool {
        match (self, v) {
            (Builder::Text(b), Value::Null) => b.append_null(),
            (Builder::Double(b), Value::Null) => b.append_null(),
            (Builder::Bool(b), Value::Null) => b.append_null(),
            (Builder::Timestamp(b), Value::Null) => b.append_null(),
            (Builder::Bigint(b), Value::Null) => b.append_null(),
            (Builder::Binary(b), Value::Null) => b.append_null(),
            (Builder::Decimal(b, _), Value::Null) => b.append_null(),
            (Builder::Date(b), Value::Null) => b.append_null(),
            (Builder::Time(b), Value::Null) => b.append_null(),
            (Builder::Text(b), Value::Text(s) | Value::Json(s)) => b.append_value(s),
            (Builder::Double(b), Value::Double(f)) => b.append_value(*f),
            (Builder::Bool(b), Value::Bool(x)) => b.append_value(*x),
            (Builder::Timestamp(b), Value::Timestamp(t)) => b.append_value(*t),
            (Builder::Bigint(b), Value::Bigint(i)) => b.append_value(*i),
            (Builder::Binary(b), Value::Binary(x)) => b.append_value(x),
            (Builder::Decimal(b, scale), Value::Decimal(s)) => match decimal_to_i128(s, *scale) {
                Some(v) => b.append_value(v),
                None => return false,
            },
            (Builder::Date(b), Value::Date(d)) => b.append_value(*d),
            (Builder::Time(b), Value::Time(t)) => b.append_value(*t),
            _ => return false,
        }
        true
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::Double(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Timestamp(b) => Arc::new(b.finish()),
            Builder::Bigint(b) => Arc::new(b.finish()),
            Builder::Binary(b) => Arc::new(b.finish()),
            Builder::Decimal(b, _) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Builder::Text(b) => b.len(),
            Builder::Double(b) => b.len(),
            Builder::Bool(b) => b.len(),
            Builder::Timestamp(b) => b.len(),
            Builder::Bigint(b) => b.len(),
            Builder::Binary(b) => b.len(),
            Builder::Decimal(b, _) => b.len(),
            Builder::Date(b) => b.len(),
            Builder::Time(b) => b.len(),
        }
    }
}

/// Converts a `jsonl` spool of `table` into a Parquet file at `out`, in row
/// groups of at most `row_group_rows` rows. Returns the number of rows.
pub fn jsonl_to_parquet(spool: &Path, out: &Path, table: &Table, row_group_rows: usize) -> Result<u64, PackageError> {
    let schema = arrow_schema(table);
    let file = File::create_new(out).map_err(io_err("create", out))?;
    let props = WriterProperties::builder().set_max_row_group_row_count(Some(row_group_rows)).build();
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| damaged(out, e))?;
    let mut builders: Vec<Builder> = schema.fields().iter().map(|f| Builder::new(f.data_type())).collect();
    let reader = BufReader::with_capacity(1 << 16, File::open(spool).map_err(io_err("open", spool))?);
    let mut rows = 0u64;
    for line in reader.lines() {
        let line = line.map_err(io_err("read", spool))?;
        if line.is_empty() {
            continue;
        }
        let row = jsonl::read_row(&line, table).map_err(|e| damaged(spool, e))?;
        for (b, (v, col)) in builders.iter_mut().zip(row.iter().zip(&table.columns)) {
            if !b.push(v) {
                return Err(damaged(spool, format!("column `{}` cannot hold {v:?} in parquet", col.name)));
            }
        }
        rows += 1;
        if builders.first().is_some_and(|b| b.len() >= row_group_rows) {
            flush(&mut writer, &schema, &mut builders, out)?;
        }
    }
    if builders.first().is_some_and(|b| b.len() > 0) {
        flush(&mut writer, &schema, &mut builders, out)?;
    }
    let file = writer.into_inner().map_err(|e| damaged(out, e))?;
    file.sync_all().map_err(io_err("sync", out))?;
    Ok(rows)
}

fn flush(
    writer: &mut ArrowWriter<File>,
    schema: &SchemaRef,
    builders: &mut [Builder],
    out: &Path,
) -> Result<(), PackageError> {
    let columns: Vec<ArrayRef> = builders.iter_mut().map(Builder::finish).collect();
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| damaged(out, e))?;
    writer.write(&batch).map_err(|e| damaged(out, e))
}

/// Streams record batches from a Parquet job file.
pub struct ParquetJobReader {
    path: std::path::PathBuf,
    reader: ParquetRecordBatchReader,
    next_row: u64,
}

impl ParquetJobReader {
    /// Opens `path`, skipping the first `skip_rows` rows, reading `batch_size` rows at a time.
    pub fn open(path: &Path, skip_rows: u64, batch_size: usize) -> Result<Self, PackageError> {
        let file = File::open(path).map_err(io_err("open", path))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| damaged(path, e))?;
        let total = builder.metadata().file_metadata().num_rows().max(0) as usize;
        let skip = (skip_rows as usize).min(total);
        let mut selectors = vec![RowSelector::skip(skip)];
        if total > skip {
            selectors.push(RowSelector::select(total - skip));
        }
        let reader = builder
            .with_batch_size(batch_size.max(1))
            .with_row_selection(RowSelection::from(selectors))
            .build()
            .map_err(|e| damaged(path, e))?;
        Ok(ParquetJobReader { path: path.to_path_buf(), reader, next_row: skip_rows })
    }

    /// The next record batch and the index of its first row.
    pub fn next_record_batch(&mut self) -> Result<Option<(u64, RecordBatch)>, PackageError> {
        match self.reader.next() {
            None => Ok(None),
            Some(Err(e)) => Err(damaged(&self.path, e)),
            Some(Ok(batch)) => {
                let start = self.next_row;
                self.next_row += batch.num_rows() as u64;
                Ok(Some((start, batch)))
            }
        }
    }
}

/// The rows of a record batch as host values, aligned with its columns.
pub fn batch_rows(batch: &RecordBatch, table: &Table, path: &Path) -> Result<Vec<Vec<Value>>, PackageError> {
    let mut rows: Vec<Vec<Value>> = (0..batch.num_rows()).map(|_| Vec::with_capacity(table.columns.len())).collect();
    for col in &table.columns {
        let array =
            batch.column_by_name(&col.name).ok_or_else(|| damaged(path, format!("no column `{}`", col.name)))?;
        for (r, row) in rows.iter_mut().enumerate() {
            row.push(
                cell(array.as_ref(), r, col.data_type)
                    .ok_or_else(|| damaged(path, format!("column `{}` has an unexpected type", col.name)))?,
            );
        }
    }
    Ok(rows)
}

fn cell(a: &dyn Array, r: usize, t: DataType) -> Option<Value> {
    if a.is_null(r) {
        return Some(Value::Null);
    }
    let any = a.as_any();
    Some(match t {
        DataType::Text => Value::Text(any.downcast_ref::<StringArray>()?.value(r).to_string()),
        DataType::Json => Value::Json(any.downcast_ref::<StringArray>()?.value(r).to_string()),
        DataType::Double => Value::Double(any.downcast_ref::<Float64Array>()?.value(r)),
        DataType::Bool => Value::Bool(any.downcast_ref::<BooleanArray>()?.value(r)),
        DataType::Timestamp => Value::Timestamp(any.downcast_ref::<TimestampMicrosecondArray>()?.value(r)),
        DataType::Bigint => Value::Bigint(any.downcast_ref::<Int64Array>()?.value(r)),
        DataType::Binary => Value::Binary(any.downcast_ref::<BinaryArray>()?.value(r).to_vec()),
        DataType::Decimal => {
            let d = any.downcast_ref::<Decimal128Array>()?;
            Value::Decimal(i128_to_decimal(d.value(r), d.scale()))
        }
        DataType::Date => Value::Date(any.downcast_ref::<Date32Array>()?.value(r)),
        DataType::Time => Value::Time(any.downcast_ref::<Time64MicrosecondArray>()?.value(r)),
    })
}

/// One Arrow IPC stream (schema message plus the batch).
pub fn to_ipc(batch: &RecordBatch) -> Result<Vec<u8>, arrow::error::ArrowError> {
    let mut out = Vec::new();
    {
        let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut out, &batch.schema())?;
        w.write(batch)?;
        w.finish()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Column;

    #[test]
    fn decimals_round_trip() {
        assert_eq!(decimal_to_i128("-12.5", 3), Some(-12_500));
        assert_eq!(i128_to_decimal(-12_500, 3), "-12.500");
        assert_eq!(i128_to_decimal(5, 9), "0.000000005");
        assert_eq!(decimal_to_i128("1.0001", 2), None);
    }

    #[test]
    fn every_type_round_trips_through_parquet_with_resume() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut table = Table::new("t");
        let values = [
            (DataType::Text, Value::Text("a ▶ b".into())),
            (DataType::Double, Value::Double(2.5)),
            (DataType::Bool, Value::Bool(false)),
            (DataType::Timestamp, Value::Timestamp(1_704_164_645_000_001)),
            (DataType::Bigint, Value::Bigint(i64::MIN)),
            (DataType::Binary, Value::Binary(vec![0, 1, 255])),
            (DataType::Json, Value::Json("{\"k\":[1]}".into())),
            (DataType::Decimal, Value::Decimal("-12.500000000".into())),
            (DataType::Date, Value::Date(19_724)),
            (DataType::Time, Value::Time(3_723_000_007)),
        ];
        for (i, (t, _)) in values.iter().enumerate() {
            table.columns.push(Column::new(format!("c{i}"), *t));
        }
        let spool = dir.path().join("t.spool");
        let mut text = Vec::new();
        for n in 0..5 {
            let row: Vec<(usize, Value)> = values
                .iter()
                .enumerate()
                .map(|(i, (_, v))| (i, if n == 2 { Value::Null } else { v.clone() }))
                .collect();
            jsonl::write_row(&mut text, &table, &row).expect("write");
        }
        std::fs::write(&spool, text).expect("spool");
        let out = dir.path().join("t.parquet");
        assert_eq!(jsonl_to_parquet(&spool, &out, &table, 2).expect("convert"), 5);
        let mut r = ParquetJobReader::open(&out, 1, 10).expect("open");
        let mut got = Vec::new();
        while let Some((start, batch)) = r.next_record_batch().expect("batch") {
            assert!(start >= 1);
            got.extend(batch_rows(&batch, &table, &out).expect("rows"));
        }
        assert_eq!(got.len(), 4, "resumed after row 0");
        let want: Vec<Value> = values.iter().map(|(_, v)| v.clone()).collect();
        assert_eq!(got[0], want);
        assert!(got[1].iter().all(|v| *v == Value::Null));
        let ipc = to_ipc(&RecordBatch::new_empty(arrow_schema(&table))).expect("ipc");
        assert!(!ipc.is_empty());
    }
}
