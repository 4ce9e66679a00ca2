//! User column hints (`--schema-hints FILE`): what JSON cannot say, the way
//! dlt's `columns=` hints say it.
//!
//! ```toml
//! [tables.orders.columns.amount]
//! data_type = "decimal"
//! precision = 12
//! scale = 2
//!
//! [tables.orders.columns.id]
//! data_type = "bigint"
//! nullable = false
//! primary_key = true
//! ```
//!
//! Hinted columns are created when their table is, in the order given, even
//! if no row has a value for them; hinted types win over inference, and
//! values that do not fit go to variant columns.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::schema::{DataType, MAX_DECIMAL_PRECISION};

/// Hints for one column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnHint {
    /// Raw column name (before the naming convention).
    #[serde(default)]
    pub name: String,
    /// The column's type.
    pub data_type: DataType,
    /// Whether the column may hold null (default true).
    #[serde(default = "yes")]
    pub nullable: bool,
    /// Part of the primary key.
    #[serde(default)]
    pub primary_key: bool,
    /// Values are unique.
    #[serde(default)]
    pub unique: bool,
    /// Decimal precision.
    #[serde(default)]
    pub precision: Option<u32>,
    /// Decimal scale.
    #[serde(default)]
    pub scale: Option<u32>,
}

fn yes() -> bool {
    true
}

/// A decimal's precision and scale must be ones a job file can hold.
fn check_decimal(h: &ColumnHint) -> Result<(), String> {
    if h.data_type != DataType::Decimal {
        return Ok(());
    }
    let precision = h.precision.unwrap_or(MAX_DECIMAL_PRECISION);
    if !(1..=MAX_DECIMAL_PRECISION).contains(&precision) {
        return Err(format!("precision {precision} is outside 1..={MAX_DECIMAL_PRECISION}"));
    }
    match h.scale {
        Some(scale) if scale > precision => Err(format!("scale {scale} is larger than precision {precision}")),
        _ => Ok(()),
    }
}

/// Hints for one table: columns in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableHints {
    /// Raw table name.
    pub name: String,
    /// Column hints in file order.
    pub columns: Vec<ColumnHint>,
}

/// All hints, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaHints {
    /// Table hints.
    pub tables: Vec<TableHints>,
}

/// A hints file is unreadable or wrong.
#[derive(Debug, thiserror::Error)]
#[error("schema hints {path}: {message}")]
pub struct HintsError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl SchemaHints {
    /// Reads a hints file.
    pub fn load(path: &Path) -> Result<Self, HintsError> {
        let err = |message: String| HintsError { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        Self::parse(&text).map_err(err)
    }

    /// Parses the TOML text of a hints file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        let mut hints = SchemaHints::default();
        for (key, value) in &doc {
            if key != "tables" {
                return Err(format!("unknown section `{key}` (expected [tables.<table>.columns.<column>])"));
            }
            let tables = value.as_table().ok_or("`tables` must be a table")?;
            for (table, body) in tables {
                let columns = body
                    .get("columns")
                    .and_then(|c| c.as_table())
                    .ok_or_else(|| format!("tables.{table}: expected a `columns` table"))?;
                let mut out = Vec::new();
                for (column, hint) in columns {
                    let mut h: ColumnHint =
                        hint.clone().try_into().map_err(|e| format!("tables.{table}.columns.{column}: {e}"))?;
                    h.name = column.clone();
                    check_decimal(&h).map_err(|e| format!("tables.{table}.columns.{column}: {e}"))?;
                    out.push(h);
                }
                hints.tables.push(TableHints { name: table.clone(), columns: out });
            }
        }
        Ok(hints)
    }

    /// True when there are no hints.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_in_file_order_and_rejects_typos() {
        let h = SchemaHints::parse(
            "[tables.t.columns.z]\ndata_type = \"decimal\"\nprecision = 10\nscale = 2\n[tables.t.columns.a]\ndata_type = \"date\"\nnullable = false\n",
        )
        .expect("parse");
        let cols: Vec<&str> = h.tables[0].columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(cols, ["z", "a"]);
        assert!(!h.tables[0].columns[1].nullable);
        assert!(SchemaHints::parse("[tables.t.columns.a]\ndata_type = \"decimals\"\n").is_err());
        assert!(SchemaHints::parse("[tables.t.columns.a]\ndata_type = \"date\"\nnulable = true\n").is_err());
        let bad = |body: &str| SchemaHints::parse(&format!("[tables.t.columns.a]\n{body}")).unwrap_err();
        assert!(bad("data_type = \"decimal\"\nprecision = 39\n").contains("precision 39 is outside 1..=38"));
        assert!(
            bad("data_type = \"decimal\"\nprecision = 4\nscale = 5\n").contains("scale 5 is larger than precision 4")
        );
    }
}
