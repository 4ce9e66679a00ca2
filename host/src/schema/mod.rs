//! Tables, columns and typed values: the vocabulary shared by every stage.
//!
//! The normalizer builds a [`Schema`], the package stores it as JSON next to
//! the job files, and the runtime converts it to the WIT `table-schema`.

pub(crate) mod time;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// Column types, named as dlt names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    /// dlt's `text`.
    Text,
    /// dlt's `double`.
    Double,
    /// dlt's `bool`.
    Bool,
    /// dlt's `timestamp`.
    Timestamp,
    /// dlt's `bigint`.
    Bigint,
    /// dlt's `binary`.
    Binary,
    /// dlt's `json`.
    Json,
    /// dlt's `decimal`.
    Decimal,
    /// dlt's `date`.
    Date,
    /// dlt's `time`.
    Time,
}

impl DataType {
    /// dlt's name (`text`, `bigint`, ...), also used in variant column names.
    pub fn name(self) -> &'static str {
        match self {
            DataType::Text => "text",
            DataType::Double => "double",
            DataType::Bool => "bool",
            DataType::Timestamp => "timestamp",
            DataType::Bigint => "bigint",
            DataType::Binary => "binary",
            DataType::Json => "json",
            DataType::Decimal => "decimal",
            DataType::Date => "date",
            DataType::Time => "time",
        }
    }
}

/// dlt's write disposition of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteDisposition {
    /// dlt's `append`.
    #[default]
    Append,
    /// dlt's `replace`.
    Replace,
    /// dlt's `merge`.
    Merge,
    /// dlt's `skip`.
    Skip,
}

/// One column with dlt's hints. Hints that are off are left out of the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// Name after the naming convention.
    pub name: String,
    /// Type.
    pub data_type: DataType,
    /// False when the column never holds null.
    pub nullable: bool,
    /// Part of the primary key.
    #[serde(default, skip_serializing_if = "is_false")]
    pub primary_key: bool,
    /// Values are unique.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unique: bool,
    /// The row key (`_dlt_id`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub row_key: bool,
    /// Points at the parent row (`_dlt_parent_id`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub parent_key: bool,
    /// Holds values that did not fit another column's type.
    #[serde(default, skip_serializing_if = "is_false")]
    pub variant: bool,
    /// Decimal precision (or declared length).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<u32>,
    /// Decimal scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u32>,
    /// Timestamps: a point in time in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<bool>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Column {
    /// A nullable column with no hints.
    pub fn new(name: impl Into<String>, data_type: DataType) -> Self {
        Column {
            name: name.into(),
            data_type,
            nullable: true,
            primary_key: false,
            unique: false,
            row_key: false,
            parent_key: false,
            variant: false,
            precision: None,
            scale: None,
            timezone: None,
        }
    }

    /// The precision and scale of a decimal column: as declared, else
    /// dlt's default (38, 9). The Parquet writer stores decimals in this
    /// shape, and the normalizer sends a value that does not fit it (a digit
    /// would be lost) to a variant column, so both job file formats hold the
    /// same values.
    pub fn decimal_shape(&self) -> (u32, u32) {
        let precision = self.precision.filter(|p| (1..=MAX_DECIMAL_PRECISION).contains(p)).unwrap_or(38);
        let scale = self.scale.filter(|s| *s <= precision).unwrap_or(9.min(precision));
        (precision, scale)
    }
}

/// The most digits a decimal column holds (Arrow's decimal128).
pub const MAX_DECIMAL_PRECISION: u32 = 38;

/// The timestamps there are, in microseconds since the epoch: Python's
/// datetime range (so dlt's), 0001-01-01 to 9999-12-31T23:59:59.999999 UTC.
/// A value outside is no timestamp: no job file reader or sink takes it.
pub const TIMESTAMP_RANGE: std::ops::RangeInclusive<i64> = -62_135_596_800_000_000..=253_402_300_799_999_999;

/// The same range in days since 1970-01-01, for dates.
pub const DATE_RANGE: std::ops::RangeInclusive<i32> = -719_162..=2_932_896;

/// One table: columns in delivery order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Name after the naming convention.
    pub name: String,
    /// The parent table of a child table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// dlt's write disposition.
    #[serde(default)]
    pub write_disposition: WriteDisposition,
    /// Columns in delivery order.
    pub columns: Vec<Column>,
}

impl Table {
    /// An empty root table.
    pub fn new(name: impl Into<String>) -> Self {
        Table { name: name.into(), parent: None, write_disposition: WriteDisposition::Append, columns: Vec::new() }
    }

    /// Index of the column called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// All tables of a pipeline, in the order they were first seen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    /// Tables, parents before their children.
    pub tables: Vec<Table>,
}

impl Schema {
    /// The table called `name`.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// The table called `name`, created empty (as a root table) if missing.
    pub fn table_mut(&mut self, name: &str) -> &mut Table {
        match self.tables.iter().position(|t| t.name == name) {
            Some(i) => &mut self.tables[i],
            None => {
                self.tables.push(Table::new(name));
                let last = self.tables.len() - 1;
                &mut self.tables[last]
            }
        }
    }
}

/// A typed cell value, the host-side twin of the WIT `value`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value.
    Null,
    /// A bool.
    Bool(bool),
    /// A 64-bit integer.
    Bigint(i64),
    /// A 64-bit float.
    Double(f64),
    /// Text. Inline up to 24 bytes (most names, codes, ids), so most
    /// text cells cost no allocation of their own.
    Text(CompactString),
    /// Plain decimal notation.
    Decimal(String),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// Bytes.
    Binary(Vec<u8>),
    /// JSON text.
    Json(String),
}
