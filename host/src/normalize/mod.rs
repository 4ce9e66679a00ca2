//! JSON records → relational rows, the way dlt's relational normalizer does it.
//!
//! [`Normalizer::push`] takes one record at a time and appends the rows it
//! yields (the root row first, then its child rows) to a buffer, growing the
//! [`Schema`] as new columns appear. Memory stays bounded by the schema and
//! the current record, never by the input size.

pub(crate) mod datetime;
mod fast;
mod fields;
pub mod hints;
pub(crate) mod naming;
pub(crate) mod python;
mod row_id;
pub(crate) mod types;

use compact_str::CompactString;
use std::borrow::Cow;

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::input::Node;
use crate::schema::{Column, DataType, Schema, Table, Value};
use fields::{FieldId, Fields, put};
pub use hints::{HintsError, SchemaHints};
use naming::Namer;
pub use naming::NamingConvention;
use row_id::RootIds;
pub use row_id::child_row_id;
pub use types::TypeError;

/// dlt bookkeeping column names.
pub const DLT_LOAD_ID: &str = "_dlt_load_id";
/// Row key of every row.
pub const DLT_ID: &str = "_dlt_id";
/// `_dlt_id` of the parent row, in child tables.
pub const DLT_PARENT_ID: &str = "_dlt_parent_id";
/// Position in the parent's list, in child tables.
pub const DLT_LIST_IDX: &str = "_dlt_list_idx";
/// The prefix dlt skips with `skip_dlt_columns_and_tables`.
pub const DLT_PREFIX: &str = "_dlt";

/// The bookkeeping cells the normalizer writes, by slot: their names and
/// types. A row gets the load id (root rows), the parent id and list
/// index (child rows) and its row id.
const BOOKKEEPING: [(&str, DataType); 4] = [
    (DLT_LOAD_ID, DataType::Text),
    (DLT_PARENT_ID, DataType::Text),
    (DLT_LIST_IDX, DataType::Bigint),
    (DLT_ID, DataType::Text),
];

/// The slot in [`BOOKKEEPING`] of column `name` when a row linked as
/// `link` gets that cell from the normalizer (with skip off).
fn bookkeeping_slot(name: &str, link: Link<'_>) -> Option<usize> {
    match (name, link) {
        (DLT_LOAD_ID, Link::Root { .. }) => Some(0),
        (DLT_PARENT_ID, Link::Child { .. }) => Some(1),
        (DLT_LIST_IDX, Link::Child { .. }) => Some(2),
        (DLT_ID, _) => Some(3),
        _ => None,
    }
}

/// Settings that change what the normalizer produces. They are recorded in
/// every load package so a resumed load never mixes two shapes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NormalizeSettings {
    /// How keys become names.
    pub naming_convention: NamingConvention,
    /// dlt's `max_nesting_level`: 0 keeps nested values whole as json.
    pub max_nesting_level: u32,
    /// Leave out `_dlt*` tables and columns.
    pub skip_dlt_columns_and_tables: bool,
    /// User column hints (`--schema-hints`).
    #[serde(default, skip_serializing_if = "SchemaHints::is_empty")]
    pub schema_hints: SchemaHints,
}

/// A record could not be normalized.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    /// A value cannot be represented in any column type.
    #[error("field `{field}`: {source}")]
    Type {
        /// The normalized column name.
        field: String,
        /// What was wrong with the value.
        source: TypeError,
    },
}

/// One output row: the index of its table in the schema and its non-null
/// values keyed by column index.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Index into [`Schema::tables`].
    pub table: usize,
    /// `(column index, value)` in the order the normalizer produced them.
    pub values: Vec<(usize, Value)>,
}

/// An object's entries, as the normalizer walks them.
type Entries<'a> = [(Cow<'a, str>, Node<'a>)];

/// A dict flattened into columns, and the lists that become child tables.
/// Inline up to typical sizes: one heap vector less per row (and child row).
struct Flattened<'r, 'a> {
    /// `(field, value)` in dlt's column order.
    fields: SmallVec<[(FieldId, &'r Node<'a>); 16]>,
    /// `(field, items)` of lists to normalize into child tables.
    lists: SmallVec<[(FieldId, &'r [Node<'a>]); 4]>,
}

/// How a row hangs in the tree, which decides its `_dlt_*` columns. The
/// `_dlt_id` is made from it only when needed: with
/// `skip_dlt_columns_and_tables` on, a row without lists never needs one
/// (most child rows: hashing their ids was the largest cost at nesting 2).
#[derive(Debug, Clone, Copy)]
enum Link<'p> {
    /// Root row number `row` (a record, or a dict item of a list that lands
    /// in a root table): `_dlt_load_id` and a random `_dlt_id`.
    Root { row: u64 },
    /// An item of a parent row's list: `_dlt_parent_id`, `_dlt_list_idx`
    /// and a `_dlt_id` derived from both.
    Child { parent_id: &'p str, idx: usize },
    /// A scalar item of a list that lands in a root table: only a random
    /// `_dlt_id` (dlt's wrapped scalars skip the load id).
    Bare { row: u64 },
}

/// Streams records into rows and a growing schema.
#[derive(Debug)]
pub struct Normalizer {
    namer: Namer,
    max_nesting: i64,
    skip_dlt: bool,
    schema: Schema,
    load_id: String,
    root_rows: u64,
    /// Root row ids, seeded from the load id.
    root_ids: RootIds,
    /// Counts the records of [`Normalizer::push_line`], to find repeated keys.
    record_stamp: u64,
    /// Column name → index per table, so a cell finds its column without
    /// scanning; extended lazily as columns are appended (they never move).
    column_lookup: Vec<FxHashMap<String, usize>>,
    /// Key paths per table.
    fields: Vec<Fields>,
    /// The last record shape per table, for the fast path.
    shapes: Vec<fast::Shape>,
    /// The table of the last [`Normalizer::push_line`].
    shape_table: Option<usize>,
    /// Table name → index.
    table_lookup: FxHashMap<String, usize>,
    /// Hinted columns by normalized table name.
    hints: std::collections::HashMap<String, Vec<Column>>,
}

impl Normalizer {
    /// A normalizer that extends `schema` (the pipeline's schema so far).
    pub fn new(settings: &NormalizeSettings, schema: Schema, load_id: &str) -> Result<Self, NormalizeError> {
        let mut namer = Namer::new(settings.naming_convention);
        let mut hints = std::collections::HashMap::new();
        for t in &settings.schema_hints.tables {
            let table = namer.identifier(&t.name).to_string();
            let cols = t
                .columns
                .iter()
                .map(|h| {
                    let mut c = Column::new(namer.identifier(&h.name), h.data_type);
                    c.nullable = h.nullable;
                    c.primary_key = h.primary_key;
                    c.unique = h.unique;
                    c.precision = h.precision;
                    c.scale = h.scale;
                    if h.data_type == DataType::Timestamp {
                        c.timezone = Some(true);
                    }
                    c
                })
                .collect();
            hints.insert(table, cols);
        }
        let mut normalizer = Normalizer {
            namer,
            max_nesting: i64::from(settings.max_nesting_level),
            skip_dlt: settings.skip_dlt_columns_and_tables,
            schema,
            load_id: load_id.to_string(),
            root_rows: 0,
            root_ids: RootIds::new(load_id),
            record_stamp: 0,
            shapes: Vec::new(),
            shape_table: None,
            hints,
            column_lookup: Vec::new(),
            fields: Vec::new(),
            table_lookup: FxHashMap::default(),
        };
        // Tables of earlier runs get hinted columns they lack.
        for i in 0..normalizer.schema.tables.len() {
            normalizer.apply_hints(i);
        }
        Ok(normalizer)
    }

    fn apply_hints(&mut self, table_idx: usize) {
        let table = &mut self.schema.tables[table_idx];
        let Some(cols) = self.hints.get(&table.name) else { return };
        for c in cols {
            match table.column_index(&c.name) {
                Some(i) => {
                    let existing = &mut table.columns[i];
                    existing.data_type = c.data_type;
                    existing.nullable = c.nullable;
                    existing.primary_key = c.primary_key;
                    existing.unique = c.unique;
                    existing.precision = c.precision;
                    existing.scale = c.scale;
                }
                None => table.columns.push(c.clone()),
            }
        }
    }

    /// Numbers root rows from `base` on. Root ids are derived from the row
    /// number, so chunks of one input normalized in parallel each take a
    /// base of their own (`chunk << 32`) and their ids stay unique.
    pub fn set_row_base(&mut self, base: u64) {
        self.root_rows = base;
    }

    /// Grows exactly when the schema does (tables and columns are only ever
    /// added), so comparing two readings tells whether a record changed it.
    pub fn schema_size(&self) -> usize {
        self.schema.tables.iter().map(|t| 1 + t.columns.len()).sum()
    }

    /// The schema grown so far.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Gives the schema back.
    pub fn into_schema(self) -> Schema {
        self.schema
    }

    /// The normalized name of a root table.
    pub fn table_name(&mut self, raw: &str) -> String {
        self.namer.identifier(raw).to_string()
    }

    /// Normalizes one record for root table `table` (already normalized, see
    /// [`Normalizer::table_name`]) and appends its rows to `out`. A record that
    /// is not an object becomes a row with a single `value` column. On error
    /// `out` may hold part of the record's rows: the caller drops the record.
    pub fn push(&mut self, table: &str, record: &Node<'_>, out: &mut Vec<Row>) -> Result<(), NormalizeError> {
        if self.skip_dlt && table.starts_with(DLT_PREFIX) {
            return Ok(());
        }
        self.root_rows += 1;
        let link = Link::Root { row: self.root_rows };
        let table_idx = self.table_index(table, None);
        match record {
            Node::Object(entries) => self.row(table_idx, link, entries, self.max_nesting, out),
            scalar => {
                let wrapped = [(Cow::Borrowed("value"), scalar.clone())];
                self.row(table_idx, link, &wrapped, self.max_nesting, out)
            }
        }
    }

    /// The `_dlt_id` of a row of table `table_idx` linked as `link` says.
    fn row_id(&self, table_idx: usize, link: Link<'_>) -> String {
        match link {
            Link::Root { row } | Link::Bare { row } => self.root_ids.id(row),
            Link::Child { parent_id, idx } => child_row_id(parent_id, &self.schema.tables[table_idx].name, idx),
        }
    }

    /// Normalizes one dict row of table `table_idx`, linked as `link` says.
    fn row(
        &mut self,
        table_idx: usize,
        link: Link<'_>,
        dict: &Entries<'_>,
        level: i64,
        out: &mut Vec<Row>,
    ) -> Result<(), NormalizeError> {
        let Flattened { fields, lists } = self.flatten(table_idx, dict, level);
        let mut values = Vec::with_capacity(fields.len() + 3);
        for (field, v) in fields {
            let node = &self.fields[table_idx].nodes[field as usize];
            if node.dlt {
                if self.skip_dlt {
                    continue;
                }
                // A user's key named like a bookkeeping column this row
                // gets: dlt's own value wins and the column keeps dlt's
                // type; the key only places the column, as in dlt's dict.
                if let Some(slot) = bookkeeping_slot(&node.name, link) {
                    self.dlt_column(table_idx, slot);
                    continue;
                }
            }
            // A value can coerce to null (`"null"` into a json column).
            if let Some(cell) = self.cell(table_idx, field, v)?
                && cell.1 != Value::Null
            {
                values.push(cell);
            }
        }
        self.emit(table_idx, link, values, &lists, level, out)
    }

    /// Completes a row whose data cells are `values`: adds its `_dlt_*`
    /// cells, appends it to `out` (even with no cell at all), then
    /// normalizes its `lists` into child rows.
    fn emit(
        &mut self,
        table_idx: usize,
        link: Link<'_>,
        mut values: Vec<(usize, Value)>,
        lists: &[(FieldId, &[Node<'_>])],
        level: i64,
        out: &mut Vec<Row>,
    ) -> Result<(), NormalizeError> {
        let has_children = lists.iter().any(|(_, items)| !items.is_empty());
        let row_id = if !self.skip_dlt || has_children { self.row_id(table_idx, link) } else { String::new() };
        if !self.skip_dlt {
            match link {
                Link::Root { .. } => {
                    let load_id = Value::Text(CompactString::from(&*self.load_id));
                    values.push((self.dlt_column(table_idx, 0), load_id));
                }
                Link::Child { parent_id, idx } => {
                    let parent_id = Value::Text(CompactString::from(parent_id));
                    values.push((self.dlt_column(table_idx, 1), parent_id));
                    values.push((self.dlt_column(table_idx, 2), Value::Bigint(idx as i64)));
                }
                Link::Bare { .. } => {}
            }
            values.push((self.dlt_column(table_idx, 3), Value::Text(CompactString::from(&*row_id))));
        }
        // A row with no value left (all null, or only `_dlt` keys with skip
        // on) is still a row: dlt delivers it, with every column null.
        out.push(Row { table: table_idx, values });
        for &(field, items) in lists {
            if items.is_empty() {
                continue;
            }
            let child = self.child_table(table_idx, field);
            self.list(child, &row_id, items, level - 1, out)?;
        }
        Ok(())
    }

    fn list(
        &mut self,
        table_idx: usize,
        parent_id: &str,
        items: &[Node<'_>],
        level: i64,
        out: &mut Vec<Row>,
    ) -> Result<(), NormalizeError> {
        // A list under an empty key can land in a root table (see
        // `Field::empty_key`); dlt then makes its items root rows.
        let into_root = self.schema.tables[table_idx].parent.is_none();
        for (idx, item) in items.iter().enumerate() {
            let link = if into_root {
                self.root_rows += 1;
                Link::Root { row: self.root_rows }
            } else {
                Link::Child { parent_id, idx }
            };
            match item {
                Node::Object(entries) => self.row(table_idx, link, entries, level, out)?,
                other => {
                    // dlt wraps list items that are not dicts: lists of lists
                    // as `{"list": [...]}` (a middle table, one level deeper),
                    // scalars as `{"value": x}`.
                    let (key, level) =
                        if matches!(other, Node::Array(_)) { ("list", level - 1) } else { ("value", level) };
                    let wrapped = [(Cow::Borrowed(key), other.clone())];
                    // dlt gives a wrapped scalar in a root table no load id.
                    let link = match link {
                        Link::Root { row } if key == "value" => Link::Bare { row },
                        link => link,
                    };
                    self.row(table_idx, link, &wrapped, level, out)?;
                }
            }
        }
        Ok(())
    }

    /// Flattens nested dicts into `(field, value)` pairs in dlt's order and
    /// collects the lists that become child tables.
    fn flatten<'r, 'a>(&mut self, table_idx: usize, dict: &'r Entries<'a>, level: i64) -> Flattened<'r, 'a> {
        let mut fields = SmallVec::new();
        let mut lists = SmallVec::new();
        // dlt walks a stack: scalars of a dict first, then its nested dicts,
        // last one first, depth first.
        // (The stack stays unallocated for a dict without nested dicts.)
        let mut stack: Vec<(FieldId, &'r Entries<'a>, i64)> = Vec::new();
        let mut nested = Vec::new();
        let mut first = Some((0, dict, level));
        while let Some((prefix, map, lvl)) = first.take().or_else(|| stack.pop()) {
            let mut previous = None;
            for (key, v) in map {
                let field = self.next_field(table_idx, prefix, previous, key);
                previous = Some(field);
                let node = &self.fields[table_idx].nodes[field as usize];
                let (canonical, shared) =
                    (node.canonical, self.fields[table_idx].nodes[node.canonical as usize].shared);
                if matches!(v, Node::Null) {
                    // A null makes no column, but it holds its key's place
                    // (a later key that normalizes alike fills it) and
                    // erases an earlier one, as in dlt's flattened dict.
                    put(&mut fields, canonical, shared, v);
                    continue;
                }
                let keep_whole = lvl <= 0 || self.is_json_column(table_idx, field);
                match v {
                    Node::Object(inner) if !keep_whole => nested.push((field, inner.as_slice(), lvl - 1)),
                    Node::Array(items) if !keep_whole => put(&mut lists, canonical, shared, items.as_slice()),
                    _ => put(&mut fields, canonical, shared, v),
                }
            }
            stack.append(&mut nested);
        }
        Flattened { fields, lists }
    }

    /// The field for `key`, the key after `previous` under `parent` in
    /// table `table_idx`, named on first sight.
    fn next_field(&mut self, table_idx: usize, parent: FieldId, previous: Option<FieldId>, key: &str) -> FieldId {
        if self.fields.len() <= table_idx {
            self.fields.resize_with(table_idx + 1, Fields::default);
        }
        self.fields[table_idx].next(parent, previous, key, &mut self.namer)
    }

    /// The column of `field`, when it exists.
    #[inline]
    fn field_column(&mut self, table_idx: usize, field: FieldId) -> Option<usize> {
        let node = &self.fields[table_idx].nodes[field as usize];
        match node.column {
            Some(c) => Some(c),
            None if node.no_column_among == self.schema.tables[table_idx].columns.len() => None,
            None => self.find_field_column(table_idx, field),
        }
    }

    /// [`Normalizer::field_column`] for a field whose column is not known
    /// yet: looked up by name, and remembered once found (and that there
    /// was none among the table's columns so far).
    #[inline(never)]
    fn find_field_column(&mut self, table_idx: usize, field: FieldId) -> Option<usize> {
        let name = std::mem::take(&mut self.fields[table_idx].nodes[field as usize].name);
        let found = self.column(table_idx, &name);
        let node = &mut self.fields[table_idx].nodes[field as usize];
        node.name = name;
        node.column = found;
        node.no_column_among = self.schema.tables[table_idx].columns.len();
        found
    }

    /// The child table a list at `field` goes to, created on first sight.
    fn child_table(&mut self, table_idx: usize, field: FieldId) -> usize {
        if let Some(t) = self.fields[table_idx].nodes[field as usize].child_table {
            return t;
        }
        let sep = self.namer.convention().separator();
        let table = &self.schema.tables[table_idx].name;
        let nodes = &self.fields[table_idx].nodes;
        let node = &nodes[field as usize];
        let prefix = &nodes[node.parent as usize].name;
        let ident = if prefix.is_empty() { &node.name[..] } else { &node.name[prefix.len() + sep.len()..] };
        let mut name = table.clone();
        for part in [&prefix[..], if node.empty_key { "" } else { ident }] {
            if !part.is_empty() {
                name.push_str(sep);
                name.push_str(part);
            }
        }
        let parent = table.clone();
        let child = self.table_index(&name, Some(&parent));
        self.fields[table_idx].nodes[field as usize].child_table = Some(child);
        child
    }

    /// The index of column `name` of table `table_idx`.
    fn column(&mut self, table_idx: usize, name: &str) -> Option<usize> {
        if self.column_lookup.len() <= table_idx {
            self.column_lookup.resize_with(table_idx + 1, Default::default);
        }
        let lookup = &mut self.column_lookup[table_idx];
        let columns = &self.schema.tables[table_idx].columns;
        for (i, c) in columns.iter().enumerate().skip(lookup.len()) {
            lookup.insert(c.name.clone(), i);
        }
        lookup.get(name).copied()
    }

    fn is_json_column(&mut self, table_idx: usize, field: FieldId) -> bool {
        self.field_column(table_idx, field)
            .is_some_and(|i| self.schema.tables[table_idx].columns[i].data_type == DataType::Json)
    }

    fn table_index(&mut self, name: &str, parent: Option<&str>) -> usize {
        if let Some(i) = self.find_table(name) {
            return i;
        }
        let mut table = Table::new(name);
        table.parent = parent.map(str::to_string);
        self.schema.tables.push(table);
        let idx = self.schema.tables.len() - 1;
        self.table_lookup.insert(name.to_string(), idx);
        self.apply_hints(idx);
        idx
    }

    /// The index of table `name`, if it exists.
    fn find_table(&mut self, name: &str) -> Option<usize> {
        if self.table_lookup.len() < self.schema.tables.len() {
            for (i, t) in self.schema.tables.iter().enumerate() {
                self.table_lookup.entry(t.name.clone()).or_insert(i);
            }
        }
        self.table_lookup.get(name).copied()
    }

    /// Types `v` for `field`: into its column if it fits (coerced as dlt
    /// does), else into the variant column for its own type.
    fn cell(
        &mut self,
        table_idx: usize,
        field: FieldId,
        v: &Node<'_>,
    ) -> Result<Option<(usize, Value)>, NormalizeError> {
        if matches!(v, Node::Null) {
            return Ok(None);
        }
        let name = |n: &Self| n.fields[table_idx].nodes[field as usize].name.clone();
        let column = self.field_column(table_idx, field);
        // Most values fit the column they already have: coerce first, and
        // infer a type (which tries to read every string as a timestamp)
        // only for a new column or a variant.
        if let Some(idx) = column {
            let existing = &self.schema.tables[table_idx].columns[idx];
            let coerced = types::coerce(v, existing.data_type);
            match coerced.map_err(|source| NormalizeError::Type { field: name(self), source })? {
                // More digits than the declared decimal holds: a variant.
                Some(Value::Decimal(d)) if !types::decimal_fits(&d, existing.decimal_shape()) => {}
                Some(value) => return Ok(Some((idx, value))),
                None => {}
            }
        }
        let Some(inferred) = types::infer(v) else { return Ok(None) };
        if column.is_some() {
            // dlt names the variant by the value's JSON type and types it by
            // inference; a value that fits neither its column nor an existing
            // variant column stops dlt's normalize, and ours.
            let sep = self.namer.convention().separator();
            let variant = format!("{}{sep}v_{}", name(self), types::variant_suffix(v));
            let found = self.column(table_idx, &variant);
            let variant_type = found.map_or(inferred, |i| self.schema.tables[table_idx].columns[i].data_type);
            // (An integer beyond 64 bits that did not fit a decimal column
            // fits no bigint variant either: this error, not the bigint one.)
            let value = types::coerce(v, variant_type).ok().flatten().ok_or_else(|| NormalizeError::Type {
                field: variant.clone(),
                source: TypeError::NoVariant { value: v.to_json(), data_type: variant_type.name() },
            })?;
            let table = &mut self.schema.tables[table_idx];
            let idx = match found {
                Some(i) => i,
                None => {
                    let mut col = new_column(variant, inferred, v);
                    col.variant = true;
                    table.columns.push(col);
                    table.columns.len() - 1
                }
            };
            return Ok(Some((idx, value)));
        }
        let value = types::coerce(v, inferred)
            .map_err(|source| NormalizeError::Type { field: name(self), source })?
            .unwrap_or(Value::Null);
        let col = new_column(name(self), inferred, v);
        let table = &mut self.schema.tables[table_idx];
        table.columns.push(col);
        let idx = table.columns.len() - 1;
        self.fields[table_idx].nodes[field as usize].column = Some(idx);
        Ok(Some((idx, value)))
    }

    /// The column of bookkeeping cell `slot` (see [`BOOKKEEPING`]) in table
    /// `table_idx`, created on first use and cached.
    fn dlt_column(&mut self, table_idx: usize, slot: usize) -> usize {
        if self.fields.len() <= table_idx {
            self.fields.resize_with(table_idx + 1, Fields::default);
        }
        if let Some(i) = self.fields[table_idx].dlt_columns[slot] {
            return i;
        }
        let (name, data_type) = BOOKKEEPING[slot];
        let found = self.column(table_idx, name);
        let table = &mut self.schema.tables[table_idx];
        let idx = match found {
            Some(i) => i,
            None => {
                let mut col = Column::new(name, data_type);
                col.nullable = false;
                col.row_key = name == DLT_ID;
                col.unique = name == DLT_ID;
                col.parent_key = name == DLT_PARENT_ID;
                table.columns.push(col);
                table.columns.len() - 1
            }
        };
        self.fields[table_idx].dlt_columns[slot] = Some(idx);
        idx
    }
}

/// A column inferred from value `v`: timestamps are in UTC, and a Parquet
/// decimal keeps its precision and scale.
fn new_column(name: String, data_type: DataType, v: &Node<'_>) -> Column {
    let mut col = Column::new(name, data_type);
    if data_type == DataType::Timestamp {
        col.timezone = Some(true);
    }
    if let Some((precision, scale)) = types::declared_shape(v) {
        col.precision = Some(precision);
        col.scale = Some(scale);
    }
    col
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value as Json, json};

    fn settings(naming: &str, nesting: u32, skip: bool) -> NormalizeSettings {
        NormalizeSettings {
            naming_convention: NamingConvention::parse(naming).expect("a naming convention"),
            max_nesting_level: nesting,
            skip_dlt_columns_and_tables: skip,
            schema_hints: SchemaHints::default(),
        }
    }

    fn run(s: &NormalizeSettings, table: &str, records: &[Json]) -> (Schema, Vec<Row>) {
        let mut n = Normalizer::new(s, Schema::default(), "1700000000.1").expect("settings");
        let mut rows = Vec::new();
        for r in records {
            n.push(table, &Node::from(r), &mut rows).expect("normalizes");
        }
        (n.into_schema(), rows)
    }

    fn column_names(schema: &Schema, table: &str) -> Vec<String> {
        schema.table(table).expect("table").columns.iter().map(|c| c.name.clone()).collect()
    }

    #[test]
    fn nesting_zero_keeps_nested_values_as_json() {
        let (schema, rows) = run(
            &settings("direct", 0, true),
            "people",
            &[json!({"id": 1, "address": {"city": "X"}, "tags": ["a"], "nul": null})],
        );
        assert_eq!(column_names(&schema, "people"), ["id", "address", "tags"]);
        assert_eq!(schema.tables.len(), 1);
        assert_eq!(rows[0].values[1].1, Value::Json("{\"city\":\"X\"}".into()));
    }

    #[test]
    fn column_order_follows_dlt_stack() {
        let rec = json!({"a": {"x": 1, "z": {"q": 1}}, "s": 1, "L": [1], "b": {"y": 2}, "i": 2});
        let (schema, _) = run(&settings("direct", 5, false), "t", &[rec]);
        assert_eq!(column_names(&schema, "t"), ["s", "i", "b▶y", "a▶x", "a▶z▶q", "_dlt_load_id", "_dlt_id"]);
        assert_eq!(column_names(&schema, "t▶L"), ["value", "_dlt_parent_id", "_dlt_list_idx", "_dlt_id"]);
    }

    #[test]
    fn nesting_levels_match_dlt() {
        let rec = json!({"address": {"city": "X", "geo": {"lat": 1}}, "tags": ["a", "b"], "kids": [{"toys": [1, 2]}]});
        let (schema, rows) = run(&settings("direct", 1, true), "people", std::slice::from_ref(&rec));
        assert_eq!(column_names(&schema, "people"), ["address▶city", "address▶geo"]);
        assert_eq!(schema.table("people▶address▶geo"), None);
        assert_eq!(schema.table("people▶kids").map(|t| t.columns[0].data_type), Some(DataType::Json));
        assert_eq!(rows.iter().filter(|r| schema.tables[r.table].name == "people▶tags").count(), 2);
        let (schema, _) = run(&settings("snake_case", 2, true), "people", &[rec]);
        assert!(schema.table("people__kids__toys").is_some());
        assert_eq!(column_names(&schema, "people"), ["address__city", "address__geo__lat"]);
    }

    #[test]
    fn child_ids_are_dlt_deterministic() {
        let (schema, rows) = run(&settings("direct", 1, false), "t", &[json!({"l": [10]})]);
        let parent_id = match &rows[0].values.last().expect("id").1 {
            Value::Text(s) => s.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(parent_id.len(), 14);
        let child = &rows[1];
        assert_eq!(schema.tables[child.table].name, "t▶l");
        assert_eq!(child.values.last().expect("id").1, Value::Text(child_row_id(&parent_id, "t▶l", 0).into()));
    }

    #[test]
    fn variants_and_coercion() {
        let (schema, rows) = run(
            &settings("direct", 0, true),
            "t",
            &[json!({"i": 1}), json!({"i": "7"}), json!({"i": 3.7}), json!({"i": "x"})],
        );
        assert_eq!(column_names(&schema, "t"), ["i", "i▶v_double", "i▶v_text"]);
        assert!(schema.tables[0].columns[1].variant);
        assert_eq!(rows[1].values, vec![(0, Value::Bigint(7))]);
        assert_eq!(rows[2].values, vec![(1, Value::Double(3.7))]);
    }

    #[test]
    fn scalars_become_value_rows_and_dlt_names_are_skipped() {
        let (schema, rows) =
            run(&settings("direct", 0, true), "items", &[json!(1), json!({"_dlt_custom": 1, "_DLT_up": 2})]);
        assert_eq!(column_names(&schema, "items"), ["value", "_DLT_up"]);
        assert_eq!(rows.len(), 2);
        let (schema, rows) = run(&settings("direct", 0, true), "_dlt_x", &[json!({"a": 1})]);
        assert!(schema.tables.is_empty() && rows.is_empty());
    }

    #[test]
    fn hints_declare_types_order_and_nullability() {
        let mut s = settings("direct", 0, true);
        s.schema_hints = SchemaHints::parse(
            "[tables.t.columns.amount]\ndata_type = \"decimal\"\nprecision = 10\nscale = 2\n[tables.t.columns.day]\ndata_type = \"date\"\nnullable = false\n",
        )
        .expect("hints");
        let (schema, rows) =
            run(&s, "t", &[json!({"id": 1, "amount": "12.5", "day": "2024-01-02"}), json!({"amount": "lots"})]);
        assert_eq!(column_names(&schema, "t"), ["amount", "day", "id", "amount▶v_text"]);
        let t = schema.table("t").expect("t");
        assert_eq!((t.columns[0].data_type, t.columns[0].precision), (DataType::Decimal, Some(10)));
        assert!(!t.columns[1].nullable);
        assert_eq!(rows[0].values[0], (2, Value::Bigint(1)));
        assert!(rows[0].values.contains(&(0, Value::Decimal("12.5".into()))));
        assert!(rows[0].values.contains(&(1, Value::Date(19_724))));
    }

    /// A decimal column holds what its declared shape holds, on the fast
    /// path as on the tree: a value with more digits goes to its variant
    /// (the Parquet writer could not store it, and must not round it).
    #[test]
    fn decimals_beyond_their_shape_go_to_variants() {
        let mut s = settings("direct", 0, true);
        s.schema_hints = SchemaHints::parse(
            "[tables.t.columns.amount]\ndata_type = \"decimal\"\nprecision = 6\nscale = 2\n[tables.t.columns.plain]\ndata_type = \"decimal\"\n",
        )
        .expect("hints");
        let mut n = Normalizer::new(&s, Schema::default(), "1").expect("settings");
        let mut rows = Vec::new();
        let lines = [
            r#"{"amount": "1.5", "plain": 1}"#,
            r#"{"amount": "9999.99", "plain": "12345678901234567890123456789.123456789"}"#,
            r#"{"amount": 1234.50, "plain": "1.0000000000"}"#,
            r#"{"amount": "10000", "plain": "123456789012345678901234567890"}"#,
            r#"{"amount": "0.005", "plain": "0.0000000001"}"#,
            r#"{"amount": "1e999999999", "plain": 1e-10}"#,
        ];
        for line in lines {
            if !n.push_line("t", line.as_bytes(), &mut rows) {
                let parsed = crate::input::parse_line(1, line.as_bytes()).expect("valid JSON");
                n.push("t", &parsed, &mut rows).expect("normalizes");
            }
        }
        let schema = n.into_schema();
        assert_eq!(column_names(&schema, "t"), ["amount", "plain", "amount▶v_text", "plain▶v_text", "plain▶v_double"]);
        let cell = |row: usize, col: usize| rows[row].values.iter().find(|(c, _)| *c == col).map(|(_, v)| v.clone());
        let dec = |d: &str| Some(Value::Decimal(d.into()));
        let text = |t: &str| Some(Value::Text(t.into()));
        assert_eq!((cell(0, 0), cell(0, 1)), (dec("1.5"), dec("1")));
        assert_eq!((cell(1, 0), cell(1, 1)), (dec("9999.99"), dec("12345678901234567890123456789.123456789")));
        assert_eq!((cell(2, 0), cell(2, 1)), (dec("1234.5"), dec("1.0000000000")));
        assert_eq!((cell(3, 2), cell(3, 3)), (text("10000"), text("123456789012345678901234567890")));
        assert_eq!((cell(4, 2), cell(4, 3)), (text("0.005"), text("0.0000000001")));
        assert_eq!((cell(5, 2), cell(5, 4)), (text("1e999999999"), Some(Value::Double(1e-10))));
    }

    /// Arbitrary JSON (odd keys, deep nesting, mixed types, huge numbers)
    /// never panics, and every row refers to columns that exist.
    #[test]
    fn random_json_never_panics() {
        struct Lcg(u64);
        impl Lcg {
            fn next(&mut self, n: u64) -> u64 {
                self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (self.0 >> 33) % n
            }
        }
        fn value(r: &mut Lcg, depth: u32) -> Json {
            const KEYS: [&str; 10] = ["a", "A b", "", " ", "▶x", "_dlt_id", "CamelCase", "1st", "a__b", "x\"y"];
            match if depth > 5 { r.next(6) } else { r.next(9) } {
                0 => Json::Null,
                1 => json!(r.next(2) == 0),
                2 => json!(r.next(1000) as i64 - 500),
                3 => json!(r.next(1000) as f64 / 7.0),
                4 => json!(["2024-01-02T03:04:05Z", "7", "yes", "text", "1e400"][r.next(5) as usize]),
                5 => json!(18446744073709551615u64),
                6 | 7 => Json::Object(
                    (0..r.next(4)).map(|_| (KEYS[r.next(10) as usize].to_string(), value(r, depth + 1))).collect(),
                ),
                _ => Json::Array((0..r.next(4)).map(|_| value(r, depth + 1)).collect()),
            }
        }
        let mut r = Lcg(7);
        for (naming, nesting, skip) in
            [("direct", 0, true), ("snake_case", 1, false), ("direct", 3, false), ("snake_case", 1000, true)]
        {
            let mut n = Normalizer::new(&settings(naming, nesting, skip), Schema::default(), "1.0").expect("settings");
            let mut rows = Vec::new();
            for _ in 0..3000 {
                rows.clear();
                let rec = value(&mut r, 0);
                if n.push("t", &Node::from(&rec), &mut rows).is_ok() {
                    for row in &rows {
                        let table = &n.schema().tables[row.table];
                        assert!(row.values.iter().all(|(c, _)| *c < table.columns.len()));
                    }
                }
            }
        }
    }

    /// Records of a mostly stable shape, as JSON Lines text: the same keys
    /// in the same order with values of the same types, and now and then
    /// what sends a record down the tree path (a new key, another type, a
    /// repeated or escaped key, keys that normalize alike, `_dlt` keys,
    /// lists in nested objects, nulls, malformed text).
    /// The first `settled` lines hold only the usual values (the columns
    /// get their usual types), later ones an odd value 11 times in 100.
    fn shaped_line(r: &mut u64, settled: bool) -> String {
        fn next(r: &mut u64, n: u64) -> u64 {
            *r ^= *r << 13;
            *r ^= *r >> 7;
            *r ^= *r << 17;
            *r % n
        }
        let odd = |r: &mut u64, usual: String| -> String {
            if !settled {
                return usual;
            }
            match next(r, 100) {
                0 => "null".into(),
                1 => "\"2024-01-02T03:04:05Z\"".into(),
                2 => "17".into(),
                3 => "2.5".into(),
                4 => "true".into(),
                5 => "{\"k\": [1, 2]}".into(),
                6 => "[\"a\", {\"b\": 1}]".into(),
                7 => "\"null\"".into(),
                8 => "123456789012345678901234567890".into(),
                9 => "{\"d\": 1, \"d\": 2}".into(),
                10 => "{\"s\": \"\\u00e9\\\"\", \"f\": 1e20, \"big\": 123456789012345678901234567890}".into(),
                _ => usual,
            }
        };
        let id = next(r, 1000).to_string();
        let name = format!("\"n{}\\n\"", next(r, 50));
        let score = format!("{}.25", next(r, 100));
        let addr = format!("{{\"city\": \"c{}\", \"geo\": {{\"lat\": 1.5}}}}", next(r, 9));
        let tags = format!("[\"t{}\", \"u\"]", next(r, 3));
        let mut fields = vec![
            format!("\"id\": {}", odd(r, id)),
            format!("\"name\": {}", odd(r, name)),
            format!("\"when\": {}", odd(r, "\"2024-05-06T07:08:09+02:00\"".into())),
            format!("\"score\": {}", odd(r, score)),
            format!("\"addr\": {}", odd(r, addr)),
            format!("\"tags\": {}", odd(r, tags)),
            format!("\"kids\": {}", odd(r, "[{\"k\": 1, \"l\": [true]}, {\"k\": 2}]".into())),
        ];
        match if settled { next(r, 30) } else { 30 } {
            0 => fields.push(format!("\"new{}\": 1", next(r, 20))),
            1 => fields.push("\"id\": 5".into()),
            2 => fields.push("\"\\u0069d\": 6".into()),
            3 => fields.push("\"Name\": \"x\"".into()),
            4 => fields.push("\"_dlt_id\": \"x\"".into()),
            5 => fields.push("\"deep\": {\"list\": [1, 2]}".into()),
            6 => fields.push("\"addr__city\": \"y\"".into()),
            7 => fields.push("\"\": [1]".into()),
            8 => fields.push("\"nothing\": null".into()),
            _ => {}
        }
        let line = format!("{{{}}}", fields.join(", "));
        match if settled { next(r, 100) } else { 100 } {
            0 => line[..line.len() / 2].to_string(),
            1 => format!("[{line}]"),
            2 => "7".into(),
            _ => line,
        }
    }

    /// `push_line` (with `push` when it declines) against `push` alone, on
    /// the same lines: the same rows, errors and schema, in every setting.
    #[test]
    fn the_fast_path_gives_what_the_tree_gives() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for (naming, nesting, skip) in
            [("direct", 0, true), ("snake_case", 1, false), ("direct", 2, true), ("snake_case", 1000, false)]
        {
            let s = settings(naming, nesting, skip);
            let mut fast = Normalizer::new(&s, Schema::default(), "1.0").expect("settings");
            let mut tree = Normalizer::new(&s, Schema::default(), "1.0").expect("settings");
            let (mut fast_rows, mut tree_rows) = (Vec::new(), Vec::new());
            let mut taken = 0;
            for i in 0..4000 {
                let line = shaped_line(&mut seed, i >= 20);
                fast_rows.clear();
                tree_rows.clear();
                let parsed = Node::parse(line.as_bytes());
                let by_tree = |n: &mut Normalizer, rows: &mut Vec<Row>| match &parsed {
                    Ok(Node::Array(items)) => items.iter().try_for_each(|item| n.push("t", item, rows)).is_ok(),
                    Ok(record) => n.push("t", record, rows).is_ok(),
                    Err(_) => false,
                };
                let fast_ok = if fast.push_line("t", line.as_bytes(), &mut fast_rows) {
                    taken += 1;
                    true
                } else {
                    by_tree(&mut fast, &mut fast_rows)
                };
                let tree_ok = by_tree(&mut tree, &mut tree_rows);
                assert_eq!(fast_ok, tree_ok, "{line}");
                // Writers order cells by column; the paths may not.
                for row in fast_rows.iter_mut().chain(tree_rows.iter_mut()) {
                    row.values.sort_by_key(|(c, _)| *c);
                }
                assert_eq!(fast_rows, tree_rows, "{line}");
            }
            assert_eq!(
                serde_json::to_string(fast.schema()).expect("schema"),
                serde_json::to_string(tree.schema()).expect("schema"),
                "{naming} {nesting} {skip}"
            );
            assert!(taken > 1500, "{naming} {nesting} {skip}: the fast path took only {taken} of 4000");
        }
    }

    /// A table known only from the stored schema (an earlier run) has no
    /// key paths yet: its first record still takes the fast path, with the
    /// rows the tree gives.
    #[test]
    fn the_fast_path_takes_a_table_from_an_earlier_run() {
        let s = settings("direct", 0, true);
        let mut first = Normalizer::new(&s, Schema::default(), "1").expect("settings");
        let line = b"{\"a\": 1, \"b\": {\"c\": \"x\"}, \"d\": \"2024-01-02T03:04:05Z\"}";
        first.push("t", &Node::parse(line).expect("parses"), &mut Vec::new()).expect("normalizes");
        let stored = first.schema().clone();
        let (mut fast, mut tree) = (Vec::new(), Vec::new());
        let mut n = Normalizer::new(&s, stored.clone(), "2").expect("settings");
        assert!(n.push_line("t", line, &mut fast));
        Normalizer::new(&s, stored, "2")
            .expect("settings")
            .push("t", &Node::parse(line).expect("parses"), &mut tree)
            .expect("normalizes");
        assert_eq!(fast, tree);
    }

    /// A record of a known shape whose nested key lands in the column of
    /// one of the shape's own keys (`a__b` and `a.b` in snake_case): the
    /// last value wins, as in the tree, not two cells for one column.
    #[test]
    fn the_shape_path_sees_keys_that_share_a_column() {
        let s = settings("snake_case", 2, true);
        let lines: [&[u8]; 5] = [
            b"{\"a__b\": 1, \"a\": {\"c\": 2}}",
            b"{\"a__b\": 3, \"a\": {\"c\": 4}}",
            b"{\"a__b\": 5, \"a\": {\"c\": 6}}",
            b"{\"a__b\": 7, \"a\": {\"b\": 8}}",
            b"{\"a__b\": 9, \"a\": {\"c\": 10}}",
        ];
        let mut fast = Normalizer::new(&s, Schema::default(), "1").expect("settings");
        let mut tree = Normalizer::new(&s, Schema::default(), "1").expect("settings");
        for line in lines {
            let (mut by_fast, mut by_tree) = (Vec::new(), Vec::new());
            let record = Node::parse(line).expect("parses");
            if !fast.push_line("t", line, &mut by_fast) {
                fast.push("t", &record, &mut by_fast).expect("normalizes");
            }
            tree.push("t", &record, &mut by_tree).expect("normalizes");
            for row in by_fast.iter_mut().chain(by_tree.iter_mut()) {
                row.values.sort_by_key(|(c, _)| *c);
            }
            assert_eq!(by_fast, by_tree, "{}", String::from_utf8_lossy(line));
        }
    }

    /// Declining leaves no trace: not even the table of a malformed line.
    #[test]
    fn the_fast_path_declines_without_changing_anything() {
        let mut n = Normalizer::new(&settings("direct", 0, true), Schema::default(), "1").expect("settings");
        let mut rows = Vec::new();
        assert!(!n.push_line("t", b"{\"a\": 1", &mut rows));
        assert!(!n.push_line("t", b"{\"a\": 1}", &mut rows), "a new table takes the tree");
        assert!(n.schema().tables.is_empty() && rows.is_empty());
        n.push("t", &Node::parse(b"{\"a\": 1}").expect("parses"), &mut rows).expect("normalizes");
        let before = (serde_json::to_string(n.schema()).expect("schema"), rows.len());
        for line in [&b"{\"a\": 1, \"b\": 2}"[..], b"{\"a\": \"x\"}", b"{\"a\": 1, \"a\": 2}", b"{\"a\": 1} x"] {
            assert!(!n.push_line("t", line, &mut rows), "{}", String::from_utf8_lossy(line));
        }
        assert_eq!((serde_json::to_string(n.schema()).expect("schema"), rows.len()), before);
        assert!(n.push_line("t", b"{\"a\": 2}", &mut rows));
        assert_eq!(rows.len(), 2);
    }

    /// dlt names a variant by the value's JSON type and types it by
    /// inference; a string that then fits neither column stops dlt too.
    #[test]
    fn variant_of_a_timestamp_string_is_v_text_and_a_misfit_is_an_error() {
        let mut n = Normalizer::new(&settings("direct", 0, true), Schema::default(), "1").expect("settings");
        let mut rows = Vec::new();
        for rec in [json!({"n": 1}), json!({"n": "2024-01-02T03:04:05Z"})] {
            n.push("t", &Node::from(&rec), &mut rows).expect("normalizes");
        }
        let t = n.schema().table("t").expect("t");
        assert_eq!((t.columns[1].name.as_str(), t.columns[1].data_type), ("n▶v_text", DataType::Timestamp));
        let err = n.push("t", &Node::from(&json!({"n": "garbage"})), &mut rows).expect_err("fits nothing");
        assert!(err.to_string().contains("n▶v_text"), "{err}");
    }

    #[test]
    fn keys_that_normalize_alike_are_one_column_last_value_wins() {
        let (schema, rows) = run(
            &settings("snake_case", 0, true),
            "t",
            &[json!({"a-b": 1, "c": 0, "a.b": 2}), json!({"a-b": 3, "a.b": null})],
        );
        assert_eq!(column_names(&schema, "t"), ["a_b", "c"]);
        assert_eq!(rows[0].values, vec![(0, Value::Bigint(2)), (1, Value::Bigint(0))]);
        assert_eq!(rows.len(), 2, "the second record is a row, as in dlt");
        assert!(rows[1].values.is_empty(), "its value was erased by the later null: {:?}", rows[1].values);
    }

    /// dlt drops an empty key from a child table's name, so the list's items
    /// become rows of the root table: dicts as records, scalars bare.
    #[test]
    fn a_list_under_an_empty_key_lands_in_the_root_table() {
        let (schema, rows) = run(&settings("direct", 1, false), "t", &[json!({"id": 1, "": [7, {"x": 1}]})]);
        assert_eq!(schema.tables.len(), 1);
        let names =
            |r: &Row| r.values.iter().map(|(c, _)| schema.tables[0].columns[*c].name.clone()).collect::<Vec<_>>();
        assert_eq!(rows.len(), 3);
        assert_eq!(names(&rows[1]), ["value", "_dlt_id"]);
        assert_eq!(names(&rows[2]), ["x", "_dlt_load_id", "_dlt_id"]);
    }

    #[test]
    fn huge_integers_are_an_error() {
        let mut n = Normalizer::new(&settings("direct", 0, true), Schema::default(), "1").expect("settings");
        let big = json!({"big": 18446744073709551615u64});
        let err = n.push("t", &Node::from(&big), &mut Vec::new()).expect_err("too big");
        assert!(err.to_string().contains("field `big`"), "{err}");
    }
}
