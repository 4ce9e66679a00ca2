//! `capture`: writes every call it receives to a JSON file, for debugging a
//! pipeline and for our end-to-end tests.
//!
//! Grant it a directory: `host run --dir ./captured::/out ...`. Each call
//! becomes `/out/<table>.<job_id>.<start_row>.<n>.json` (table name made
//! file-name safe, `<n>` the first number not yet taken, so a replayed batch
//! never overwrites an earlier file). The file is written under a temporary
//! name and then linked into place with create-new semantics, so a killed
//! host never leaves half a file. The format is described by
//! `capture.schema.json` next to this file; `example.json` is one such file.

use dlthost_sink::{BatchContext, FileFormat, Guest, ItemFormat, Items, JobFile, SinkError, SinkSpec, TableSchema};
use serde_json::{Map, Value as Json};

struct Capture;

impl Guest for Capture {
    fn spec() -> SinkSpec {
        let mut spec = dlthost_sink::default_spec("capture");
        // `--env CAPTURE_ITEMS=arrow-ipc` asks for Arrow IPC batches (with
        // parquet job files), to check that path end to end.
        if std::env::var("CAPTURE_ITEMS").is_ok_and(|v| v == "arrow-ipc") {
            spec.item_format = ItemFormat::ArrowIpc;
        }
        spec
    }

    fn load(table: TableSchema, ctx: BatchContext, items: Items) -> Result<(), SinkError> {
        // `--env CAPTURE_DOUBLES=bits` writes each double as the hex digits
        // of its bits, for tests that compare doubles exactly.
        let bits = std::env::var("CAPTURE_DOUBLES").is_ok_and(|v| v == "bits");
        if let Items::ArrowIpc(bytes) = &items {
            let mut rows = ipc_rows(bytes, &table).map_err(SinkError::Terminal)?;
            if bits {
                dlthost_sink::capture::doubles_as_bits(&table, &mut rows);
            }
            return dlthost_sink::capture::write_rows(&table, &ctx, rows, Json::Null);
        }
        let mut doc = dlthost_sink::capture::document(&table, &ctx, &items, read_file)?;
        if bits && let Some(Json::Array(rows)) = doc.get_mut("rows") {
            dlthost_sink::capture::doubles_as_bits(&table, rows);
        }
        dlthost_sink::capture::write_document(&table, &ctx, &doc)
    }
}

/// The rows of one Arrow IPC stream.
fn ipc_rows(bytes: &[u8], table: &TableSchema) -> Result<Vec<Json>, String> {
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
        .map_err(|e| format!("arrow-ipc: {e}"))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("arrow-ipc: {e}"))?;
        rows.extend(batch_rows(&batch, table, "arrow-ipc")?);
    }
    Ok(rows)
}

/// Whole job files: jsonl through the SDK, parquet here.
fn read_file(file: &JobFile, table: &TableSchema) -> Result<Vec<Json>, String> {
    match file.format {
        FileFormat::Parquet => read_parquet(file, table),
        FileFormat::Jsonl => dlthost_sink::read_job_file(file, table),
    }
}

/// Reads every row of a Parquet job file as JSON objects in the capture
/// encoding (every column of `table`, in file order).
fn read_parquet(file: &JobFile, table: &TableSchema) -> Result<Vec<Json>, String> {
    // WASI cannot clone file handles, which parquet's File reader needs:
    // read the file into memory (a debugging sink can afford that).
    let bytes = bytes::Bytes::from(std::fs::read(&file.path).map_err(|e| format!("{}: {e}", file.path))?);
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.with_batch_size(4096).build())
        .map_err(|e| format!("{}: {e}", file.path))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("{}: {e}", file.path))?;
        rows.extend(batch_rows(&batch, table, &file.path)?);
    }
    Ok(rows)
}

/// The rows of an Arrow record batch in the capture encoding.
fn batch_rows(
    batch: &arrow::record_batch::RecordBatch,
    table: &TableSchema,
    source: &str,
) -> Result<Vec<Json>, String> {
    use arrow::array::{
        Array, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, StringArray,
        Time64MicrosecondArray, TimestampMicrosecondArray,
    };
    use dlthost_sink::{DataType, Value};
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
                row.insert(c.name.clone(), dlthost_sink::value_to_json(&v));
            }
            rows.push(Json::Object(row));
        }
    }
    Ok(rows)
}

dlthost_sink::export_sink!(Capture);
