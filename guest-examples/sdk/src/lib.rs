//! Rust SDK for `dlthost` sinks.
//!
//! It holds the bindings generated from the project's WIT (`wit/destination.wit`)
//! and small helpers that every example sink needs: encoding values the way the
//! capture format and the `jsonl` job files encode them, reading a whole job
//! file, and making table names safe for file names.
//!
//! A sink implements [`Guest`] and exports it:
//!
//! ```ignore
//! use dlthost_sink::{BatchContext, Guest, Items, SinkError, SinkSpec, TableSchema};
//! struct MySink;
//! impl Guest for MySink {
//!     fn spec() -> SinkSpec { dlthost_sink::default_spec("my_sink") }
//!     fn load(table: TableSchema, ctx: BatchContext, items: Items) -> Result<(), SinkError> {
//!         Ok(())
//!     }
//! }
//! dlthost_sink::export_sink!(MySink);
//! ```

/// Generated from `wit/destination.wit`; everything in it is re-exported at
/// the crate root.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "destination",
        pub_export_macro: true,
        export_macro_name: "export_sink",
        default_bindings_module: "dlthost_sink::bindings",
    });
}

pub use bindings::dlthost::destination::config;
pub use bindings::*;

pub mod capture;
#[cfg(feature = "parquet")]
mod columnar;
mod encode;
mod jobfile;

#[cfg(feature = "parquet")]
pub use columnar::{batch_rows, ipc_rows, read_parquet};

pub use encode::{
    column_to_json, context_to_json, data_type_name, file_format_name, row_to_json, safe_file_name, table_to_json,
    value_to_json, write_disposition_name,
};
pub use jobfile::read_job_file;

/// A spec with every setting left to config and dlt's defaults, typed rows and
/// no config keys: the starting point for a sink's `spec`.
pub fn default_spec(name: &str) -> SinkSpec {
    SinkSpec {
        name: name.to_string(),
        batch_size: None,
        loader_file_format: None,
        naming_convention: None,
        max_nesting_level: None,
        skip_dlt_columns_and_tables: None,
        max_batch_bytes: None,
        item_format: ItemFormat::Rows,
        config: Vec::new(),
    }
}

/// Reads a string config key, `None` if unset or not a string.
pub fn config_string(key: &str) -> Option<String> {
    match config::get(key)? {
        ConfigValue::String(s) => Some(s),
        _ => None,
    }
}

/// A retryable error with a message and no retry-after.
pub fn retry(message: impl Into<String>) -> SinkError {
    SinkError::Retry(RetryError { message: message.into(), retry_after_ms: None })
}
