//! Arrow IPC batches and Parquet job files as rows (the `parquet` feature).
//!
//! Parquet job files are uncompressed today (the host writes them so), and
//! read here with the `parquet` crate's `arrow` feature only; under
//! wasm32-wasip2 the file is read into memory first, as the crate's
//! `File`-based reader clones file handles, which WASI cannot.

use serde_json::{Map, Value as Json};

use crate::{JobFile, TableSchema};

/// The rows of one Arrow IPC stream.
pub fn ipc_rows(bytes: &[u8], table: &TableSchema) -> Result<Vec<Json>, String> {
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
        .map_err(|e| format!("arrow-ipc: {e}"))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("arrow-ipc: {e}"))?;
        rows.extend(batch_rows(&batch, table, "arrow-ipc")?);
    }
    Ok(rows)
}

/// Reads every row of a Parquet job file as JSON objects in the capture
/// encoding (every column of `table`, in file order).
pub fn read_parquet(file: &JobFile, table: &TableSchema) -> Result<Vec<Json>, String> {
    parquet_rows(file, table)?.collect()
}

/// The rows of a Parquet job file, decoded one record batch (4,096 rows)
/// at a time. WASI cannot clone file handles, which parquet's `File`
/// reader needs: the file's bytes are read into memory first.
pub(crate) fn parquet_rows<'a>(
    file: &JobFile,
    table: &'a TableSchema,
) -> Result<Box<dyn Iterator<Item = Result<Json, String>> + 'a>, String> {
    let path = file.path.clone();
    let bytes = bytes::Bytes::from(std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?);
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.with_batch_size(4096).build())
        .map_err(|e| format!("{path}: {e}"))?;
    Ok(Box::new(reader.flat_map(move |batch| {
        let rows = batch.map_err(|e| format!("{path}: {e}")).and_then(|b| batch_rows(&b, table, &path));
        match rows {
            Ok(rows) => rows.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => vec![Err(e)],
        }
    })))
}

/// The rows of an Arrow record batch in the capture encoding.
pub fn batch_rows(
    batch: &arrow::record_batch::RecordBatch,
    table: &TableSchema,
    source: &str,
) -> Result<Vec<Json>, String> {
    use crate::{DataType, Value};
    use arrow::array::{
        Array, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, StringArray,
        Time64MicrosecondArray, TimestampMicrosecondArray,
    };
    let mut rows = Vec::with_capacity(batch.num_rows());
    {
        for r in 0..batch.num_rows() {
            let mut row = Map::with_capacity(table.columns.len());
            for c in &table.columns {
                let Some(a) = batch.column_by_name(&c.name) else {
                    row.insert(c.name.clone(), Json::Null);
                    continue;
                };
                let any = a.as_any();
                let bad = || format!("{source}: column {} has an unexpected type", c.name);
                let v = if a.is_null(r) {
                    Value::Null
                } else {
                    match c.data_type {
                        DataType::Text => {
                            Value::Text(any.downcast_ref::<StringArray>().ok_or_else(bad)?.value(r).into())
                        }
                        DataType::Json => {
                            Value::Json(any.downcast_ref::<StringArray>().ok_or_else(bad)?.value(r).into())
                        }
                        DataType::Double => Value::Double(any.downcast_ref::<Float64Array>().ok_or_else(bad)?.value(r)),
                        DataType::Bool => Value::Bool(any.downcast_ref::<BooleanArray>().ok_or_else(bad)?.value(r)),
                        DataType::Bigint => Value::Bigint(any.downcast_ref::<Int64Array>().ok_or_else(bad)?.value(r)),
                        DataType::Timestamp => {
                            Value::Timestamp(any.downcast_ref::<TimestampMicrosecondArray>().ok_or_else(bad)?.value(r))
                        }
                        DataType::Binary => {
                            Value::Binary(any.downcast_ref::<BinaryArray>().ok_or_else(bad)?.value(r).to_vec())
                        }
                        DataType::Date => Value::Date(any.downcast_ref::<Date32Array>().ok_or_else(bad)?.value(r)),
                        DataType::Time => {
                            Value::Time(any.downcast_ref::<Time64MicrosecondArray>().ok_or_else(bad)?.value(r))
                        }
                        DataType::Decimal => {
                            let d = any.downcast_ref::<Decimal128Array>().ok_or_else(bad)?;
                            Value::Decimal(d.value_as_string(r))
                        }
                    }
                };
                row.insert(c.name.clone(), crate::value_to_json(&v));
            }
            rows.push(Json::Object(row));
        }
    }
    Ok(rows)
}
