//! Parquet input files → records, so they go through the same normalizer
//! as JSON: one record per row, nested lists and structs as arrays and
//! objects, maps as objects, dictionary columns as their values, and dates,
//! times, timestamps, decimals and binary as [`Typed`] values, so their
//! columns keep their types (as dlt infers them from the Python objects of
//! `to_pylist()` rows). Every codec the files of common tools use is read
//! (snappy, zstd, gzip, lz4, brotli).

use std::fs::File;
use std::path::Path;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Float32Array, Float64Array, GenericListArray, Int8Array,
    Int16Array, Int32Array, Int64Array, LargeStringArray, StringArray, StructArray, UInt8Array, UInt16Array,
    UInt32Array, UInt64Array,
};
use arrow::datatypes::{self as types, DataType as ArrowType, TimeUnit};
use std::borrow::Cow;

use super::{InputError, Node, Record, Typed};
use crate::schema::{DATE_RANGE, TIMESTAMP_RANGE};

/// True when the file starts with Parquet's magic bytes.
pub fn is_parquet(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic)).is_ok() && &magic == b"PAR1"
}

/// Reads every row of a Parquet file as a JSON object.
pub fn read<E: From<InputError>>(path: &Path, each: &mut impl FnMut(Record<'_>) -> Result<(), E>) -> Result<(), E> {
    let name = path.display().to_string();
    let bad = |message: String| InputError::Parquet { source_name: name.clone(), message };
    let file = File::open(path).map_err(|error| InputError::Io { source_name: name.clone(), error })?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(4096).build())
        .map_err(|e| bad(e.to_string()))?;
    let mut row_no = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        let schema = batch.schema();
        // Dictionary-encoded columns (pandas categoricals, repeated
        // strings) as plain ones, once per batch rather than per cell.
        let columns = batch
            .columns()
            .iter()
            .map(|c| match c.data_type() {
                ArrowType::Dictionary(_, values) => arrow::compute::cast(c, values),
                _ => Ok(c.clone()),
            })
            .collect::<Result<Vec<ArrayRef>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        for r in 0..batch.num_rows() {
            row_no += 1;
            let entries = schema
                .fields()
                .iter()
                .zip(&columns)
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
    // A null-typed column has no validity bits: every value is null.
    if a.is_null(r) || *a.data_type() == ArrowType::Null {
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
        return bytes(x.value(r));
    }
    match a.data_type() {
        ArrowType::Float16 => float(f64::from(a.as_primitive::<types::Float16Type>().value(r).to_f32())),
        ArrowType::Utf8View => text(a.as_string_view().value(r)),
        ArrowType::LargeBinary => bytes(a.as_binary::<i64>().value(r)),
        ArrowType::FixedSizeBinary(_) => bytes(a.as_fixed_size_binary().value(r)),
        ArrowType::BinaryView => bytes(a.as_binary_view().value(r)),
        ArrowType::List(_) => list_items(a.as_list::<i32>(), r),
        ArrowType::LargeList(_) => list_items(a.as_list::<i64>(), r),
        ArrowType::FixedSizeList(_, _) => {
            let values = a.as_fixed_size_list().value(r);
            Node::Array((0..values.len()).map(|i| cell(values.as_ref(), i)).collect())
        }
        // A map is an object: its keys as text (non-text keys as JSON).
        ArrowType::Map(_, _) => {
            let entries = a.as_map().value(r);
            let (keys, values) = (entries.column(0), entries.column(1));
            Node::Object(
                (0..entries.len())
                    .map(|i| {
                        let key = match cell(keys.as_ref(), i) {
                            Node::Str(k) => k,
                            other => Cow::Owned(other.to_json()),
                        };
                        (key, cell(values.as_ref(), i))
                    })
                    .collect(),
            )
        }
        // Nested dictionaries (top-level ones are unpacked per batch).
        ArrowType::Dictionary(_, values) => match arrow::compute::cast(&a.slice(r, 1), values) {
            Ok(plain) => cell(plain.as_ref(), 0),
            Err(_) => shown(a, r),
        },
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
            let micros = match unit {
                TimeUnit::Second => a.as_primitive::<types::TimestampSecondType>().value(r).saturating_mul(1_000_000),
                TimeUnit::Millisecond => {
                    a.as_primitive::<types::TimestampMillisecondType>().value(r).saturating_mul(1_000)
                }
                TimeUnit::Microsecond => a.as_primitive::<types::TimestampMicrosecondType>().value(r),
                TimeUnit::Nanosecond => a.as_primitive::<types::TimestampNanosecondType>().value(r).div_euclid(1_000),
            };
            if TIMESTAMP_RANGE.contains(&micros) { Node::from(Typed::Timestamp(micros)) } else { shown(a, r) }
        }
        ArrowType::Date32 | ArrowType::Date64 => {
            let days = match a.data_type() {
                ArrowType::Date32 => Some(a.as_primitive::<types::Date32Type>().value(r)),
                _ => i32::try_from(a.as_primitive::<types::Date64Type>().value(r).div_euclid(86_400_000)).ok(),
            };
            match days.filter(|d| DATE_RANGE.contains(d)) {
                Some(days) => Node::from(Typed::Date(days)),
                None => shown(a, r),
            }
        }
        ArrowType::Time32(unit) | ArrowType::Time64(unit) => {
            // (`_opt`: Arrow has no 32-bit microseconds; no panic if a file says so.)
            let micros = match unit {
                TimeUnit::Second => {
                    a.as_primitive_opt::<types::Time32SecondType>().map(|t| i64::from(t.value(r)) * 1_000_000)
                }
                TimeUnit::Millisecond => {
                    a.as_primitive_opt::<types::Time32MillisecondType>().map(|t| i64::from(t.value(r)) * 1_000)
                }
                TimeUnit::Microsecond => a.as_primitive_opt::<types::Time64MicrosecondType>().map(|t| t.value(r)),
                TimeUnit::Nanosecond => a.as_primitive_opt::<types::Time64NanosecondType>().map(|t| t.value(r) / 1_000),
            };
            micros.map_or_else(|| shown(a, r), |us| Node::from(Typed::Time(us)))
        }
        ArrowType::Decimal128(precision, scale) if *scale >= 0 => Node::from(Typed::Decimal {
            digits: a.as_primitive::<types::Decimal128Type>().value_as_string(r),
            precision: u32::from(*precision),
            scale: *scale as u32,
        }),
        _ => shown(a, r),
    }
}

/// A cell as Arrow displays it, as text: for the types no other form fits.
fn shown(a: &dyn Array, r: usize) -> Node<'static> {
    text(arrow::util::display::array_value_to_string(a, r).unwrap_or_default())
}

fn bytes(b: &[u8]) -> Node<'static> {
    Node::from(Typed::Binary(b.to_vec()))
}

/// A float as JSON has it: NaN and infinities (which JSON cannot hold) are null.
fn float(f: f64) -> Node<'static> {
    if f.is_finite() { Node::Float(f) } else { Node::Null }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        DictionaryArray, FixedSizeListBuilder, Int64Builder, LargeBinaryArray, MapBuilder, NullArray, StringBuilder,
    };
    use arrow::datatypes::Int32Type;
    use arrow::record_batch::RecordBatch;
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::WriterProperties;

    use super::*;

    /// Types that pandas, polars and Spark write (dictionary columns, maps,
    /// null columns, fixed-size lists, large binary), in a zstd file.
    #[test]
    fn reads_the_types_other_tools_write() {
        let cat: DictionaryArray<Int32Type> = vec![Some("x"), None, Some("x")].into_iter().collect();
        let mut map = MapBuilder::new(None, StringBuilder::new(), Int64Builder::new());
        map.keys().append_value("k");
        map.values().append_value(1);
        map.append(true).expect("map row");
        map.append(false).expect("null map");
        map.append(true).expect("empty map");
        let mut pairs = FixedSizeListBuilder::new(Int64Builder::new(), 2);
        for row in [Some([1, 2]), None, Some([3, 4])] {
            let valid = row.is_some();
            for v in row.unwrap_or_default() {
                pairs.values().append_value(v);
            }
            pairs.append(valid);
        }
        let bytes = LargeBinaryArray::from_opt_vec(vec![Some(b"\x00".as_slice()), None, Some(b"hi".as_slice())]);
        let batch = RecordBatch::try_from_iter_with_nullable([
            ("cat", Arc::new(cat) as ArrayRef, true),
            ("m", Arc::new(map.finish()) as ArrayRef, true),
            ("nul", Arc::new(NullArray::new(3)) as ArrayRef, true),
            ("pair", Arc::new(pairs.finish()) as ArrayRef, true),
            ("bytes", Arc::new(bytes) as ArrayRef, true),
        ])
        .expect("batch");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.parquet");
        let props = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build();
        let mut w =
            ArrowWriter::try_new(File::create(&path).expect("create"), batch.schema(), Some(props)).expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");

        let mut rows = Vec::new();
        read(&path, &mut |r: Record<'_>| {
            rows.push(r.value.to_json());
            Ok::<_, InputError>(())
        })
        .expect("reads");
        assert_eq!(
            rows,
            [
                r#"{"cat":"x","m":{"k":1},"nul":null,"pair":[1,2],"bytes":"AA=="}"#,
                r#"{"cat":null,"m":null,"nul":null,"pair":null,"bytes":null}"#,
                r#"{"cat":"x","m":{},"nul":null,"pair":[3,4],"bytes":"aGk="}"#,
            ]
        );
    }

    /// Dates, times, decimals, timestamps and bytes stay typed (dlt infers
    /// their types from the Python objects); a timestamp or date outside
    /// years 1-9999 is no timestamp, and arrives as text.
    #[test]
    fn typed_columns_stay_typed() {
        use arrow::array::{Date32Array, Decimal128Array, Time64MicrosecondArray, TimestampMicrosecondArray};
        let date = Date32Array::from(vec![19_724, i32::MAX]);
        assert_eq!(cell(&date, 0), Node::from(Typed::Date(19_724)));
        assert!(matches!(cell(&date, 1), Node::Str(_)));
        let time = Time64MicrosecondArray::from(vec![45_000_000_001]);
        assert_eq!(cell(&time, 0), Node::from(Typed::Time(45_000_000_001)));
        let dec = Decimal128Array::from(vec![-50]).with_precision_and_scale(10, 2).expect("decimal(10, 2)");
        assert_eq!(cell(&dec, 0), Node::from(Typed::Decimal { digits: "-0.50".into(), precision: 10, scale: 2 }));
        let ts = TimestampMicrosecondArray::from(vec![1_704_164_645_000_000, i64::MAX]).with_timezone("UTC");
        assert_eq!(cell(&ts, 0), Node::from(Typed::Timestamp(1_704_164_645_000_000)));
        assert!(matches!(cell(&ts, 1), Node::Str(_)));
        assert_eq!(
            cell(&arrow::array::BinaryArray::from(vec![b"hi".as_slice()]), 0),
            Node::from(Typed::Binary(b"hi".to_vec()))
        );
    }

    #[test]
    fn a_damaged_file_is_named_as_parquet() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.parquet");
        std::fs::write(&path, b"PAR1 not really").expect("write");
        let err = read(&path, &mut |_: Record<'_>| Ok::<_, InputError>(())).expect_err("damaged");
        assert!(err.to_string().contains("bad.parquet: cannot read Parquet:"), "{err}");
    }
}
