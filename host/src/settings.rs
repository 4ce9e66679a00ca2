//! The sink's settings for one run: what the sink's `spec` asks for, with
//! the user's overrides applied, and dlt's defaults for what nobody set.

use crate::normalize::NormalizeSettings;
use crate::normalize::naming::NamingConvention;
use crate::package::FileFormat;
use crate::runtime::bindings::{ItemFormat, SinkSpec};
use crate::runtime::convert;

/// dlt's default batch size.
pub const DEFAULT_BATCH_SIZE: u32 = 10;

/// Values set by the user for this run (command-line flags); `None` = not set.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--batch-size`.
    pub batch_size: Option<u32>,
    /// `--loader-file-format`.
    pub loader_file_format: Option<FileFormat>,
    /// `--naming-convention`.
    pub naming_convention: Option<String>,
    /// `--max-nesting-level`.
    pub max_nesting_level: Option<u32>,
    /// `--skip-dlt-columns-and-tables`.
    pub skip_dlt_columns_and_tables: Option<bool>,
}

impl Overrides {
    /// Each value of `self`, else the one of `lower`.
    pub fn or(self, lower: Overrides) -> Overrides {
        Overrides {
            batch_size: self.batch_size.or(lower.batch_size),
            loader_file_format: self.loader_file_format.or(lower.loader_file_format),
            naming_convention: self.naming_convention.or(lower.naming_convention),
            max_nesting_level: self.max_nesting_level.or(lower.max_nesting_level),
            skip_dlt_columns_and_tables: self.skip_dlt_columns_and_tables.or(lower.skip_dlt_columns_and_tables),
        }
    }
}

/// Settings in force for a run.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkSettings {
    /// Rows per call; 0 = whole job files.
    pub batch_size: u32,
    /// Format of job files.
    pub loader_file_format: FileFormat,
    /// How rows are normalized.
    pub normalize: NormalizeSettings,
    /// Byte cap per batch.
    pub max_batch_bytes: Option<u64>,
    /// Typed rows or Arrow IPC.
    pub item_format: ItemFormat,
}

/// A setting has a value we do not know.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Unknown naming convention.
    #[error("unknown naming convention `{0}` (expected `direct` or `snake_case`)")]
    Naming(String),
}

/// Applies `overrides` over `spec` over dlt's defaults.
pub fn resolve(spec: &SinkSpec, overrides: &Overrides) -> Result<SinkSettings, SettingsError> {
    let naming = overrides
        .naming_convention
        .clone()
        .or_else(|| spec.naming_convention.clone())
        .unwrap_or_else(|| NamingConvention::Direct.name().to_string());
    let naming = NamingConvention::parse(&naming).ok_or(SettingsError::Naming(naming))?.name().to_string();
    Ok(SinkSettings {
        batch_size: overrides.batch_size.or(spec.batch_size).unwrap_or(DEFAULT_BATCH_SIZE),
        loader_file_format: overrides
            .loader_file_format
            .or(spec.loader_file_format.map(convert::file_format_from))
            .unwrap_or(FileFormat::Jsonl),
        normalize: NormalizeSettings {
            naming_convention: naming,
            max_nesting_level: overrides.max_nesting_level.or(spec.max_nesting_level).unwrap_or(0),
            skip_dlt_columns_and_tables: overrides
                .skip_dlt_columns_and_tables
                .or(spec.skip_dlt_columns_and_tables)
                .unwrap_or(true),
            schema_hints: Default::default(),
        },
        max_batch_bytes: spec.max_batch_bytes,
        item_format: spec.item_format,
    })
}
