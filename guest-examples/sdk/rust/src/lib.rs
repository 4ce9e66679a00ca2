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
//!     fn spec() -> SinkSpec {
//!         SinkSpec::new("my_sink").batch_size(100).setting("region", "eu").secret("api_key")
//!     }
//!     fn load(table: TableSchema, ctx: BatchContext, items: Items) -> Result<(), SinkError> {
//!         let key = dlthost_sink::require_string("api_key")?;
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
pub use jobfile::{job_file_rows, read_job_file};

/// A spec with every setting left to config and dlt's defaults, typed rows and
/// no config keys: the starting point for a sink's `spec`
/// ([`SinkSpec::new`] is the same, with builder methods).
pub fn default_spec(name: &str) -> SinkSpec {
    SinkSpec::new(name)
}

/// A builder for the spec: every method sets one field and returns the spec.
///
/// ```ignore
/// SinkSpec::new("orders_api").batch_size(100).setting("base_url", "https://api.example.com").secret("api_key")
/// ```
impl SinkSpec {
    /// Every setting left to config and dlt's defaults, typed rows, no keys.
    pub fn new(name: &str) -> SinkSpec {
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

    /// Rows per call; 0 asks for whole job files (`Items::File`).
    pub fn batch_size(mut self, rows: u32) -> SinkSpec {
        self.batch_size = Some(rows);
        self
    }

    /// The format of job files (what batch size 0 hands over).
    pub fn file_format(mut self, format: FileFormat) -> SinkSpec {
        self.loader_file_format = Some(format);
        self
    }

    /// How deep nested values become columns and child tables.
    pub fn max_nesting_level(mut self, level: u32) -> SinkSpec {
        self.max_nesting_level = Some(level);
        self
    }

    /// `direct` or `snake_case`.
    pub fn naming_convention(mut self, name: &str) -> SinkSpec {
        self.naming_convention = Some(name.to_string());
        self
    }

    /// Whether to leave out the `_dlt_*` columns and tables (dlt's default
    /// for destinations: true). A database keeps them (`false`): child
    /// tables link to their parents through `_dlt_parent_id`.
    pub fn skip_dlt_columns_and_tables(mut self, skip: bool) -> SinkSpec {
        self.skip_dlt_columns_and_tables = Some(skip);
        self
    }

    /// The most bytes one batch may take, encoded.
    pub fn max_batch_bytes(mut self, bytes: u64) -> SinkSpec {
        self.max_batch_bytes = Some(bytes);
        self
    }

    /// Batches as Arrow IPC streams instead of typed rows.
    pub fn arrow_ipc(mut self) -> SinkSpec {
        self.item_format = ItemFormat::ArrowIpc;
        self
    }

    /// An optional setting with a default; its type is the default's
    /// (`&str`, `i64`, `f64` or `bool`).
    pub fn setting(mut self, name: &str, default: impl Into<ConfigValue>) -> SinkSpec {
        let default = default.into();
        let value_type = config_type_of(&default);
        self.config.push(ConfigKey { name: name.into(), value_type, secret: false, required: false, default: Some(default) });
        self
    }

    /// A setting the run cannot start without (no default).
    pub fn required(mut self, name: &str, value_type: ConfigType) -> SinkSpec {
        self.config.push(ConfigKey { name: name.into(), value_type, secret: false, required: true, default: None });
        self
    }

    /// An optional text secret (a password some setups do without).
    pub fn optional_secret(mut self, name: &str) -> SinkSpec {
        self.config.push(ConfigKey {
            name: name.into(),
            value_type: ConfigType::String,
            secret: true,
            required: false,
            default: None,
        });
        self
    }

    /// A required text secret: from `.dlt/secrets.toml`, the environment
    /// or `--set`, never printed or stored by the host.
    pub fn secret(mut self, name: &str) -> SinkSpec {
        self.config.push(ConfigKey {
            name: name.into(),
            value_type: ConfigType::String,
            secret: true,
            required: true,
            default: None,
        });
        self
    }
}

fn config_type_of(value: &ConfigValue) -> ConfigType {
    match value {
        ConfigValue::String(_) => ConfigType::String,
        ConfigValue::Integer(_) => ConfigType::Integer,
        ConfigValue::Float(_) => ConfigType::Float,
        ConfigValue::Boolean(_) => ConfigType::Boolean,
    }
}

impl From<&str> for ConfigValue {
    fn from(v: &str) -> ConfigValue {
        ConfigValue::String(v.to_string())
    }
}

impl From<String> for ConfigValue {
    fn from(v: String) -> ConfigValue {
        ConfigValue::String(v)
    }
}

impl From<i64> for ConfigValue {
    fn from(v: i64) -> ConfigValue {
        ConfigValue::Integer(v)
    }
}

impl From<f64> for ConfigValue {
    fn from(v: f64) -> ConfigValue {
        ConfigValue::Float(v)
    }
}

impl From<bool> for ConfigValue {
    fn from(v: bool) -> ConfigValue {
        ConfigValue::Boolean(v)
    }
}

/// Reads a text config key, `None` if unset or not text.
pub fn config_string(key: &str) -> Option<String> {
    match config::get(key)? {
        ConfigValue::String(s) => Some(s),
        _ => None,
    }
}

/// Reads an integer config key, `None` if unset or not an integer.
pub fn config_i64(key: &str) -> Option<i64> {
    match config::get(key)? {
        ConfigValue::Integer(v) => Some(v),
        _ => None,
    }
}

/// Reads a float config key (an integer is widened), `None` if unset.
pub fn config_f64(key: &str) -> Option<f64> {
    match config::get(key)? {
        ConfigValue::Float(v) => Some(v),
        ConfigValue::Integer(v) => Some(v as f64),
        _ => None,
    }
}

/// Reads a boolean config key, `None` if unset or not a boolean.
pub fn config_bool(key: &str) -> Option<bool> {
    match config::get(key)? {
        ConfigValue::Boolean(v) => Some(v),
        _ => None,
    }
}

/// A text key that must be set and not empty, or a terminal error that
/// says where to set it.
pub fn require_string(key: &str) -> Result<String, SinkError> {
    match config_string(key) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(SinkError::terminal(format!(
            "`{key}` is not set: add it under this sink's section in .dlt/config.toml (or .dlt/secrets.toml for a secret)"
        ))),
    }
}

/// The two answers a failed batch can get.
impl SinkError {
    /// A transient failure: the host retries the batch with its backoff.
    pub fn retry(message: impl Into<String>) -> SinkError {
        SinkError::Retry(RetryError { message: message.into(), retry_after_ms: None })
    }

    /// A transient failure with the destination's own wait (a 429's
    /// `Retry-After`): it replaces the host's backoff for this attempt.
    pub fn retry_after(message: impl Into<String>, millis: u64) -> SinkError {
        SinkError::Retry(RetryError { message: message.into(), retry_after_ms: Some(millis) })
    }

    /// The batch can never be delivered: its job fails, the others go on.
    pub fn terminal(message: impl Into<String>) -> SinkError {
        SinkError::Terminal(message.into())
    }
}

/// A retryable error with a message and no retry-after
/// (`SinkError::retry`).
pub fn retry(message: impl Into<String>) -> SinkError {
    SinkError::retry(message)
}
