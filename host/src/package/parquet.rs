//! Parquet job files, with dlt's type mapping: timestamp µs UTC, decimal128
//! with the column's precision and scale (38, 9 by default), time64 µs, json
//! as UTF-8 text, binary, bool, int64, float64; nullability as the schema says.
//!
//! [`ParquetOut`] buffers normalized rows in Arrow column builders and writes
//! a row group whenever [`ROW_GROUP_ROWS`] rows are buffered. A Parquet
//! file's schema is fixed once its first row group is written, so a table
//! that gains a column after that continues in a new job file (as dlt's
//! writers do); [`ParquetJobReader`] gives every batch the table's full
//! column list, nulls where a file lacks a column.
//! Reading streams record batches back, as typed rows or as Arrow IPC.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryBuilder, BooleanArray, BooleanBuilder, Date32Array, Date32Builder,
    Decimal128Array, Decimal128Builder, Float64Array, Float64Builder, Int64Array, Int64Builder, StringArray,
    StringBuilder, Time64MicrosecondArray, Time64MicrosecondBuilder, TimestampMicrosecondArray,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType as ArrowType, Field, Schema as ArrowSchema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{
    ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::file::properties::WriterProperties;

use super::{PackageError, io_err};
use crate::schema::{DataType, Table, Value};

/// Rows per row group: bounds the writer's memory.
pub const ROW_GROUP_ROWS: usize = 16 * 1024;

fn damaged(path: &Path, message: impl std::fmt::Display) -> PackageError {
    PackageError::Damaged { path: path.to_path_buf(), message: message.to_string() }
}

/// The Arrow field of one column.
fn arrow_field(c: &crate::schema::Column) -> Field {
    let t = match c.data_type {
        DataType::Text | DataType::Json => ArrowType::Utf8,
        DataType::Double => ArrowType::Float64,
        DataType::Bool => ArrowType::Boolean,
        DataType::Timestamp => ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        DataType::Bigint => ArrowType::Int64,
        DataType::Binary => ArrowType::Binary,
        DataType::Decimal => {
            let (precision, scale) = c.decimal_shape();
            // Both at most 38 (MAX_DECIMAL_PRECISION).
            ArrowType::Decimal128(precision as u8, scale as i8)
        }
        DataType::Date => ArrowType::Date32,
        DataType::Time => ArrowType::Time64(TimeUnit::Microsecond),
    };
    Field::new(&c.name, t, c.nullable)
}

/// The Arrow schema of a table's Parquet file.
pub fn arrow_schema(table: &Table) -> SchemaRef {
    arrow_schema_of(&table.columns)
}

fn arrow_schema_of(columns: &[crate::schema::Column]) -> SchemaRef {
    Arc::new(ArrowSchema::new(columns.iter().map(arrow_field).collect::<Vec<_>>()))
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
    fn for_column(c: &crate::schema::Column) -> Self {
        Builder::new(&arrow_field(c).data_type().clone())
    }

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
            (Builder::Text(b), Value::Text(s)) => b.append_value(s),
            (Builder::Text(b), Value::Json(s)) => b.append_value(s),
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
}

/// A Parquet job file being written from normalized rows of one table.
pub struct ParquetOut {
    path: PathBuf,
    /// The file until its first row group is written, then the writer.
    file: Option<File>,
    writer: Option<ArrowWriter<File>>,
    /// The file's schema: the table's first `builders.len()` columns when
    /// the first row group was written.
    schema: Option<SchemaRef>,
    /// One builder per table column seen so far, each `buffered` long.
    builders: Vec<Builder>,
    buffered: usize,
    /// Per column, the last buffered row that set it (scratch for nulls).
    set_in_row: Vec<usize>,
    row_group_rows: usize,
}

impl ParquetOut {
    /// Creates `path` (which must not exist).
    pub fn create(path: &Path, row_group_rows: usize) -> Result<Self, PackageError> {
        let file = File::create_new(path).map_err(io_err("create", path))?;
        Ok(ParquetOut {
            path: path.to_path_buf(),
            file: Some(file),
            writer: None,
            schema: None,
            builders: Vec::new(),
            buffered: 0,
            set_in_row: Vec::new(),
            row_group_rows: row_group_rows.max(1),
        })
    }

    /// True when a row of `table` cannot go into this file: the table has
    /// columns the file's (already fixed) schema lacks.
    pub fn schema_is_fixed_below(&self, table: &Table) -> bool {
        self.schema.as_ref().is_some_and(|s| s.fields().len() < table.columns.len())
    }

    /// Buffers one row (values by column index); writes a row group when full.
    pub fn write_row(&mut self, table: &Table, values: &[(usize, Value)]) -> Result<(), PackageError> {
        while self.builders.len() < table.columns.len() {
            let mut b = Builder::for_column(&table.columns[self.builders.len()]);
            for _ in 0..self.buffered {
                b.push(&Value::Null);
            }
            self.builders.push(b);
            self.set_in_row.push(usize::MAX);
        }
        let row = self.buffered;
        for (idx, v) in values {
            let (Some(b), Some(set)) = (self.builders.get_mut(*idx), self.set_in_row.get_mut(*idx)) else {
                return Err(damaged(&self.path, format!("row refers to column {idx} of `{}`", table.name)));
            };
            if !b.push(v) {
                let name = &table.columns[*idx].name;
                return Err(damaged(&self.path, format!("column `{name}` cannot hold {v:?} in parquet")));
            }
            *set = row;
        }
        for (b, set) in self.builders.iter_mut().zip(&self.set_in_row) {
            if *set != row {
                b.push(&Value::Null);
            }
        }
        self.buffered += 1;
        if self.buffered >= self.row_group_rows {
            self.flush(table)?;
        }
        Ok(())
    }

    /// Writes the buffered rows as one row group.
    fn flush(&mut self, table: &Table) -> Result<(), PackageError> {
        if self.buffered == 0 {
            return Ok(());
        }
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        let schema = match &self.schema {
            Some(s) => s.clone(),
            None => {
                let s = arrow_schema_of(&table.columns[..self.builders.len()]);
                let file = self.file.take().ok_or_else(|| damaged(&self.path, "file already closed"))?;
                let mut props = WriterProperties::builder()
                    .set_max_row_group_row_count(Some(self.row_group_rows))
                    .set_dictionary_enabled(false);
                for (field, column) in s.fields().iter().zip(&columns) {
                    if repeats(column.as_ref()) {
                        props = props.set_column_dictionary_enabled(field.name().as_str().into(), true);
                    }
                }
                self.writer = Some(
                    ArrowWriter::try_new(file, s.clone(), Some(props.build())).map_err(|e| damaged(&self.path, e))?,
                );
                self.schema = Some(s.clone());
                s
            }
        };
        self.buffered = 0;
        self.set_in_row.iter_mut().for_each(|s| *s = usize::MAX);
        let batch = RecordBatch::try_new(schema, columns).map_err(|e| damaged(&self.path, e))?;
        let writer = self.writer.as_mut().ok_or_else(|| damaged(&self.path, "file already closed"))?;
        writer.write(&batch).map_err(|e| damaged(&self.path, e))?;
        // Flush the row group now: the buffered rows are bounded by us, not the writer.
        writer.flush().map_err(|e| damaged(&self.path, e))
    }

    /// Writes what is buffered, the footer, and fsyncs.
    pub fn finish(mut self, table: &Table) -> Result<(), PackageError> {
        self.flush(table)?;
        if let Some(writer) = self.writer.take() {
            let file = writer.into_inner().map_err(|e| damaged(&self.path, e))?;
            file.sync_all().map_err(io_err("sync", &self.path))?;
        } else if let Some(file) = self.file.take() {
            // No rows: still a valid, empty Parquet file of the table.
            let mut writer =
                ArrowWriter::try_new(file, arrow_schema(table), None).map_err(|e| damaged(&self.path, e))?;
            writer.flush().map_err(|e| damaged(&self.path, e))?;
            writer.into_inner().map_err(|e| damaged(&self.path, e))?.sync_all().map_err(io_err("sync", &self.path))?;
        }
        Ok(())
    }
}

/// Whether dictionary encoding pays for a column, judged on the first row
/// group: text or integers whose first values repeat (countries, statuses).
/// Dictionary-encoding unique values (ids, names, notes) costs half the
/// writer's time and makes the file bigger, so it is off for those.
fn repeats(column: &dyn Array) -> bool {
    const SAMPLE: usize = 4096;
    let n = column.len().min(SAMPLE);
    let any = column.as_any();
    let distinct = if let Some(a) = any.downcast_ref::<StringArray>() {
        (0..n).filter(|i| a.is_valid(*i)).map(|i| a.value(i)).collect::<rustc_hash::FxHashSet<&str>>().len()
    } else if let Some(a) = any.downcast_ref::<Int64Array>() {
        (0..n).filter(|i| a.is_valid(*i)).map(|i| a.value(i)).collect::<rustc_hash::FxHashSet<i64>>().len()
    } else {
        return false;
    };
    n > 0 && distinct * 2 <= n
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

    /// The next record batch, with exactly `table`'s columns in its order
    /// (nulls for columns the file lacks), and the index of its first row.
    pub fn next_record_batch(&mut self, table: &Table) -> Result<Option<(u64, RecordBatch)>, PackageError> {
        match self.reader.next() {
            None => Ok(None),
            Some(Err(e)) => Err(damaged(&self.path, e)),
            Some(Ok(batch)) => {
                let start = self.next_row;
                self.next_row += batch.num_rows() as u64;
                Ok(Some((start, conform(batch, table, &self.path)?)))
            }
        }
    }
}

/// `batch` with `table`'s columns: a job file written before a column
/// appeared lacks it.
fn conform(batch: RecordBatch, table: &Table, path: &Path) -> Result<RecordBatch, PackageError> {
    let complete = batch.num_columns() == table.columns.len()
        && batch.schema().fields().iter().zip(&table.columns).all(|(f, c)| f.name() == &c.name);
    if complete {
        return Ok(batch);
    }
    let schema = arrow_schema(table);
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(a) => a.clone(),
            None => arrow::array::new_null_array(f.data_type(), batch.num_rows()),
        })
        .collect();
    // A column missing from the file is null there even if declared not null.
    let relaxed = Arc::new(ArrowSchema::new(
        schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(relaxed, columns).map_err(|e| damaged(path, e))
}

/// The rows of a record batch as host values, aligned with its columns.
pub fn batch_rows(batch: &RecordBatch, table: &Table, path: &Path) -> Result<Vec<Vec<Value>>, PackageError> {
    let mut rows: Vec<Vec<Value>> = (0..batch.num_rows()).map(|_| Vec::with_capacity(table.columns.len())).collect();
    for col in &table.columns {
        let array =
            batch.column_by_name(&col.name).ok_or_else(|| damaged(path, format!("no column `{}`", col.name)))?;
        push_column(&mut rows, array.as_ref(), col.data_type)
            .ok_or_else(|| damaged(path, format!("column `{}` has an unexpected type", col.name)))?;
    }
    Ok(rows)
}

/// Appends one column's cells to `rows`: the array is cast to its type once,
/// not once per cell. `None` when the array is not of the column's type.
fn push_column(rows: &mut [Vec<Value>], a: &dyn Array, t: DataType) -> Option<()> {
    let any = a.as_any();
    let nulls = a.logical_nulls();
    let mut each = |cell: &dyn Fn(usize) -> Value| {
        for (r, row) in rows.iter_mut().enumerate() {
            row.push(if nulls.as_ref().is_some_and(|n| n.is_null(r)) { Value::Null } else { cell(r) });
        }
    };
    match t {
        DataType::Text => {
            let a = any.downcast_ref::<StringArray>()?;
            each(&|r| Value::Text(a.value(r).into()));
        }
        DataType::Json => {
            let a = any.downcast_ref::<StringArray>()?;
            each(&|r| Value::Json(a.value(r).to_string()));
        }
        DataType::Double => {
            let a = any.downcast_ref::<Float64Array>()?;
            each(&|r| Value::Double(a.value(r)));
        }
        DataType::Bool => {
            let a = any.downcast_ref::<BooleanArray>()?;
            each(&|r| Value::Bool(a.value(r)));
        }
        DataType::Timestamp => {
            let a = any.downcast_ref::<TimestampMicrosecondArray>()?;
            each(&|r| Value::Timestamp(a.value(r)));
        }
        DataType::Bigint => {
            let a = any.downcast_ref::<Int64Array>()?;
            each(&|r| Value::Bigint(a.value(r)));
        }
        DataType::Binary => {
            let a = any.downcast_ref::<BinaryArray>()?;
            each(&|r| Value::Binary(a.value(r).to_vec()));
        }
        DataType::Decimal => {
            let a = any.downcast_ref::<Decimal128Array>()?;
            each(&|r| Value::Decimal(i128_to_decimal(a.value(r), a.scale())));
        }
        DataType::Date => {
            let a = any.downcast_ref::<Date32Array>()?;
            each(&|r| Value::Date(a.value(r)));
        }
        DataType::Time => {
            let a = any.downcast_ref::<Time64MicrosecondArray>()?;
            each(&|r| Value::Time(a.value(r)));
        }
    }
    Some(())
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
        let out = dir.path().join("t.parquet");
        let mut w = ParquetOut::create(&out, 2).expect("create");
        for n in 0..5 {
            // Row 2 is all null by leaving every column out.
            let row: Vec<(usize, Value)> =
                values.iter().enumerate().filter(|_| n != 2).map(|(i, (_, v))| (i, v.clone())).collect();
            w.write_row(&table, &row).expect("write");
        }
        w.finish(&table).expect("finish");
        let mut r = ParquetJobReader::open(&out, 1, 10).expect("open");
        let mut got = Vec::new();
        while let Some((start, batch)) = r.next_record_batch(&table).expect("batch") {
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

    #[test]
    fn dictionary_only_for_repeating_columns() {
        let countries = StringArray::from_iter_values((0..1000).map(|i| ["DE", "US", "FR"][i % 3]));
        let ids = Int64Array::from_iter_values(0..1000);
        assert!(repeats(&countries));
        assert!(!repeats(&ids));
        assert!(!repeats(&Float64Array::from(vec![1.0; 10])), "only text and integers");
    }

    #[test]
    fn a_column_added_after_the_first_row_group_reads_back_as_null() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("t.parquet");
        let mut table = Table::new("t");
        table.columns.push(Column::new("a", DataType::Bigint));
        let mut w = ParquetOut::create(&out, 1).expect("create");
        w.write_row(&table, &[(0, Value::Bigint(1))]).expect("write");
        table.columns.push(Column::new("b", DataType::Text));
        assert!(w.schema_is_fixed_below(&table), "the first row group fixed the file's schema");
        w.finish(&table).expect("finish");
        let mut r = ParquetJobReader::open(&out, 0, 10).expect("open");
        let (_, batch) = r.next_record_batch(&table).expect("read").expect("a batch");
        assert_eq!(batch_rows(&batch, &table, &out).expect("rows"), [vec![Value::Bigint(1), Value::Null]]);
    }
}
