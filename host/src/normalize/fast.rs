//! Normalizing a JSON Lines line straight from its bytes, without a tree
//! for the record itself.
//!
//! Once the schema has settled, almost every record only fills columns that
//! exist, with values of their types. Such a record needs none of what the
//! tree is for (dlt's column order for new columns, variants, colliding
//! keys, duplicate keys), so [`Normalizer::push_line`] walks the line with a
//! [`Cursor`] and turns each value into its cell as it goes. Values kept
//! whole in a json column are copied as JSON text without a tree; the items
//! of lists still become trees, and go through the same code as in
//! [`Normalizer::push`].
//!
//! The moment a record needs anything else, the fast path gives up before
//! it has changed anything, and the caller normalizes the line through the
//! tree. Both paths give the same rows and the same schema (a unit test
//! checks them against each other on random records).

use compact_str::CompactString;
use smallvec::SmallVec;

use super::fields::FieldId;
use super::{DLT_PREFIX, Link, Normalizer, Row, datetime, types};
use crate::input::Cursor;
use crate::input::Node;
use crate::schema::{Column, DataType, Value};

/// The lists of a record, with their items as trees.
type Lists<'a> = SmallVec<[(FieldId, Vec<Node<'a>>); 2]>;

/// The cells of a record, by column.
type Cells = Vec<(usize, Value)>;

/// The shape of a table's last record on the fast path: its top-level keys
/// in order, and where each value went. Records of one table mostly share
/// one shape, and the next record of it is read step by step: each key is
/// matched in the line's bytes and its value read straight into its
/// column, with no key prediction, column lookup or repeat check per key.
#[derive(Debug, Default)]
pub(super) struct Shape {
    steps: Vec<Step>,
    /// The steps' keys and colons (`"id":`), back to back, and 16 zero
    /// bytes after them.
    keys: Vec<u8>,
    /// Some step is [`StepKind::Other`]: its fields (of nested objects) may
    /// share a column with a step's, so steps keep the repeat check's stamps.
    has_other: bool,
}

#[derive(Debug, Clone, Copy)]
struct Step {
    field: FieldId,
    /// Where its `"key":` is in [`Shape::keys`].
    key: (u32, u32),
    /// The field's [`super::fields::Field::canonical`] (for the stamps).
    canonical: FieldId,
    kind: StepKind,
}

/// A column's type as a cell reader needs it: for a decimal also its
/// shape, which a value must fit. (Small and `Copy`: passing the table's
/// columns to the cell reader instead costs instructions in code that
/// never reads them; docs/performance.md, "Choices in the hot path".)
#[derive(Debug, Clone, Copy)]
struct CellType {
    data_type: DataType,
    decimal_shape: (u32, u32),
}

impl CellType {
    fn of(column: &Column) -> Self {
        let decimal_shape = if column.data_type == DataType::Decimal { column.decimal_shape() } else { (0, 0) };
        CellType { data_type: column.data_type, decimal_shape }
    }
}

/// Where a key's value went.
#[derive(Debug, Clone, Copy)]
enum StepKind {
    /// Into `column` of type `cell` as one cell (or nowhere, as a null):
    /// a scalar, or in a json column a whole object or array.
    Cell { column: usize, cell: CellType },
    /// A nested object flattened, a list, or a null with no column: the
    /// per-key code ([`Normalizer::fast_entry`]) reads it again.
    Other,
}

impl Normalizer {
    /// Normalizes `line`, one JSON object, for root table `table` (already
    /// normalized) like [`Normalizer::push`] would, and says `true`; or says
    /// `false` and changes nothing, when the line needs the full path: it is
    /// not a single object, or it is malformed, or it adds a column or a
    /// variant, repeats a key (or two that normalize alike), has a `_dlt`
    /// key, has a list inside a nested object, or holds a value that
    /// does not coerce. A `false` is never an error; [`Normalizer::push`]
    /// on the parsed line then does the work, and reports the error if any.
    /// (The one change a `false` can leave: a list item that fits no column
    /// fails after the list's child table was made; `push` then fails on
    /// the same item, which stops the load.)
    pub fn push_line(&mut self, table: &str, line: &[u8], out: &mut Vec<Row>) -> bool {
        if table.starts_with(DLT_PREFIX) {
            return false;
        }
        // A new table has no columns yet: its first record takes the tree.
        let table_idx = match self.shape_table {
            // Lines mostly come in runs for one table: no lookup for those.
            Some(i) if self.schema.tables[i].name == table => i,
            _ => {
                let Some(i) = self.find_table(table) else { return false };
                self.shape_table = Some(i);
                i
            }
        };
        let Some(mut cursor) = Cursor::new(line) else { return false };
        if !cursor.enter_object() {
            return false;
        }
        let start = cursor.mark();
        let mut values = Vec::with_capacity(self.schema.tables[table_idx].columns.len());
        let mut lists = Lists::new();
        if !self.by_shape(&mut cursor, table_idx, &mut values, &mut lists) {
            // Another shape (or none yet): key by key, noting the shape.
            values.clear();
            lists.clear();
            cursor.rewind(start);
            if self.shapes.len() <= table_idx {
                self.shapes.resize_with(table_idx + 1, Shape::default);
            }
            // The old shape's buffers, reused for the new one.
            let mut shape = std::mem::take(&mut self.shapes[table_idx]);
            shape.steps.clear();
            shape.keys.clear();
            self.record_stamp += 1;
            let mut record = Some(shape);
            if !self.fast_object(&mut cursor, table_idx, 0, self.max_nesting, &mut values, &mut lists, &mut record) {
                return false;
            }
            if let Some(mut shape) = record {
                shape.has_other = shape.steps.iter().any(|s| matches!(s.kind, StepKind::Other));
                // Every key has 16 bytes after its start (Cursor::key_is).
                shape.keys.extend_from_slice(&[0; 16]);
                self.shapes[table_idx] = shape;
            }
        }
        cursor.leave();
        if !cursor.at_end() {
            return false;
        }
        // From here on this is the tree path's work, in its order.
        self.root_rows += 1;
        let link = Link::Root { row: self.root_rows };
        // (Most records have no lists: no collecting for them.)
        let lists: SmallVec<[(FieldId, &[Node<'_>]); 2]> = if lists.is_empty() {
            SmallVec::new()
        } else {
            lists.iter().map(|(field, items)| (*field, items.as_slice())).collect()
        };
        let len = out.len();
        if self.emit(table_idx, link, values, &lists, self.max_nesting, out).is_err() {
            // A list's rows failed (a value that fits no column): the tree
            // path reports it, for the same record, from the start.
            out.truncate(len);
            self.root_rows -= 1;
            return false;
        }
        true
    }

    /// Reads the entries of the record whose `{` was just read by the
    /// table's [`Shape`], through its closing `}`. `false` when there is no
    /// shape yet or the record has another (the caller then rewinds).
    fn by_shape<'a>(
        &mut self,
        cursor: &mut Cursor<'a>,
        table_idx: usize,
        values: &mut Cells,
        lists: &mut Lists<'a>,
    ) -> bool {
        let Some(shape) = self.shapes.get_mut(table_idx) else { return false };
        if shape.steps.is_empty() {
            return false;
        }
        let shape = std::mem::take(shape);
        self.record_stamp += 1;
        let fit = self.walk_steps(&shape, cursor, table_idx, values, lists);
        self.shapes[table_idx] = shape;
        fit
    }

    fn walk_steps<'a>(
        &mut self,
        shape: &Shape,
        cursor: &mut Cursor<'a>,
        table_idx: usize,
        values: &mut Cells,
        lists: &mut Lists<'a>,
    ) -> bool {
        let last = shape.steps.len() - 1;
        for (i, step) in shape.steps.iter().enumerate() {
            let (start, len) = (step.key.0 as usize, (step.key.1 - step.key.0) as usize);
            match shape.keys.get(start..) {
                Some(known) if len > 0 && cursor.key_is(known, len) => {}
                _ => return false,
            }
            match step.kind {
                StepKind::Cell { column, cell } => {
                    if shape.has_other {
                        self.fields[table_idx].nodes[step.canonical as usize].seen = self.record_stamp;
                    }
                    if !read_cell(cursor, column, cell, values) {
                        return false;
                    }
                }
                StepKind::Other => {
                    if self.fast_entry(cursor, table_idx, 0, step.field, self.max_nesting, values, lists).is_none() {
                        return false;
                    }
                }
            }
            if !cursor.eat(if i == last { b'}' } else { b',' }) {
                return false;
            }
        }
        true
    }

    /// The entries of an object whose `{` was just read, under key path
    /// `prefix`, `level` levels from the nesting limit: cells into `values`,
    /// lists into `lists`. `false` as soon as the record needs the tree.
    /// `record` (for the record's own entries) collects the steps of its
    /// [`Shape`], and is emptied when a key is written in a way no shape
    /// can match (with escapes).
    #[allow(clippy::too_many_arguments)]
    fn fast_object<'a>(
        &mut self,
        cursor: &mut Cursor<'a>,
        table_idx: usize,
        prefix: FieldId,
        level: i64,
        values: &mut Cells,
        lists: &mut Lists<'a>,
        record: &mut Option<Shape>,
    ) -> bool {
        if cursor.eat(b'}') {
            return true;
        }
        let mut previous = None;
        loop {
            // Most keys are the one that came here last time: matched in
            // the line's bytes, no key decoded nor looked up.
            let predicted = self.fields.get(table_idx).map_or(0, |f| f.predict(prefix, previous));
            let field = if predicted != 0
                && self.fields[table_idx].key_colon(predicted).is_some_and(|k| cursor.key_is(k, k.len()))
            {
                predicted
            } else {
                let Some(key) = cursor.string() else { return false };
                if !cursor.eat(b':') {
                    return false;
                }
                let field = self.next_field(table_idx, prefix, previous, &key);
                // A key no shape can match (it needs escapes in JSON).
                if self.fields[table_idx].key_colon(field).is_none() {
                    *record = None;
                }
                field
            };
            previous = Some(field);
            let Some(kind) = self.fast_entry(cursor, table_idx, prefix, field, level, values, lists) else {
                return false;
            };
            if let Some(shape) = record {
                let node = &self.fields[table_idx].nodes[field as usize];
                let start = shape.keys.len() as u32;
                shape.keys.extend_from_slice(self.fields[table_idx].key_colon(field).unwrap_or_default());
                let key = (start, shape.keys.len() as u32);
                shape.steps.push(Step { field, key, canonical: node.canonical, kind });
            }
            if cursor.eat(b',') {
                continue;
            }
            return cursor.eat(b'}');
        }
    }

    /// The value of key `field` under `prefix` (its key and colon just
    /// read), `level` levels from the nesting limit: into `values` and
    /// `lists`, as [`Normalizer::fast_object`] reads each entry. `None` as
    /// soon as the record needs the tree.
    #[allow(clippy::too_many_arguments)]
    fn fast_entry<'a>(
        &mut self,
        cursor: &mut Cursor<'a>,
        table_idx: usize,
        prefix: FieldId,
        field: FieldId,
        level: i64,
        values: &mut Cells,
        lists: &mut Lists<'a>,
    ) -> Option<StepKind> {
        let nodes = &mut self.fields[table_idx].nodes;
        let (dlt, canonical) = (nodes[field as usize].dlt, nodes[field as usize].canonical as usize);
        // A repeated key, or two keys that normalize alike (one column,
        // found through the first of them), follow dict rules: the last
        // value wins, at the first position. The tree knows them.
        if dlt || nodes[canonical].seen == self.record_stamp {
            return None;
        }
        nodes[canonical].seen = self.record_stamp;
        let column = self.field_column(table_idx, field);
        let cell_type = column.map(|c| CellType::of(&self.schema.tables[table_idx].columns[c]));
        let json_column = column.filter(|_| cell_type.is_some_and(|t| t.data_type == DataType::Json));
        let keep_whole = level <= 0 || json_column.is_some();
        let cell = column.zip(cell_type).map(|(column, cell)| StepKind::Cell { column, cell });
        match cursor.peek() {
            Some(b'{') if !keep_whole => {
                if !cursor.enter_object()
                    || !self.fast_object(cursor, table_idx, field, level - 1, values, lists, &mut None)
                {
                    return None;
                }
                cursor.leave();
                Some(StepKind::Other)
            }
            // Lists of nested objects come after the record's own lists
            // in dlt's row order; only top-level lists keep it here.
            Some(b'[') if !keep_whole => match cursor.value() {
                Some(Node::Array(items)) if prefix == 0 => {
                    lists.push((field, items));
                    Some(StepKind::Other)
                }
                _ => None,
            },
            // A value kept whole in its json column: copied as JSON text
            // without building it.
            Some(b'{' | b'[') if let Some(column) = json_column => {
                values.push((column, Value::Json(cursor.json_text()?)));
                cell
            }
            _ => match column.zip(cell_type) {
                Some((column, cell_type)) => read_cell(cursor, column, cell_type, values).then_some(cell)?,
                None => match cursor.value()? {
                    Node::Null => Some(StepKind::Other),
                    _ => None,
                },
            },
        }
    }
}

/// Reads the next value into `column` of `data_type` as one cell (nothing
/// for a null), for shape steps and the key-by-key path alike; `false`
/// when the tree is needed (an object or list outside a json column, a
/// value that does not fit). A value of the column's own type skips
/// coerce's dispatch, and each cell is pushed where it is made: moving
/// cells through `Option`s cost more than making them (stalls on copies
/// of the enum). `columns` are the table's (for a decimal's shape).
#[inline(always)]
fn read_cell(cursor: &mut Cursor<'_>, column: usize, cell_type: CellType, values: &mut Cells) -> bool {
    let data_type = cell_type.data_type;
    match (data_type, cursor.peek()) {
        (DataType::Text, Some(b'"')) => match cursor.string() {
            Some(s) => values.push((column, Value::Text(CompactString::from(&*s)))),
            None => return false,
        },
        (DataType::Timestamp, Some(b'"')) => match cursor.string().and_then(|s| datetime::text_to_timestamp(&s)) {
            Some(t) => values.push((column, Value::Timestamp(t))),
            None => return false,
        },
        (DataType::Json, Some(b'{' | b'[')) => match cursor.json_text() {
            Some(text) => values.push((column, Value::Json(text))),
            None => return false,
        },
        (_, Some(b'{' | b'[')) => return false,
        _ => {
            let Some(node) = cursor.value() else { return false };
            // Numbers and bools, most of these cells, are read out by hand
            // and the node is not dropped: a `Node`'s drop is an out-of-line
            // call (its glue is not inlined), which cost 60 instructions a
            // record here. Nodes that hold heap data take the last arm.
            let node = std::mem::ManuallyDrop::new(node);
            match (&*node, data_type) {
                (Node::Int(i), DataType::Bigint) => values.push((column, Value::Bigint(*i))),
                (Node::Float(f), DataType::Double) => values.push((column, Value::Double(*f))),
                (Node::Bool(b), DataType::Bool) => values.push((column, Value::Bool(*b))),
                (Node::Null, _) => {}
                _ => return coerce_cell(&std::mem::ManuallyDrop::into_inner(node), column, cell_type, values),
            }
        }
    }
    true
}

/// A value of another type than its column's, coerced into it as
/// [`read_cell`] pushes cells; `false` when the tree is needed.
fn coerce_cell(value: &Node<'_>, column: usize, cell_type: CellType, values: &mut Cells) -> bool {
    match types::coerce(value, cell_type.data_type) {
        // A value can coerce to null (`"null"` into json).
        Ok(Some(Value::Null)) => true,
        // Too many digits for the column: the tree makes a variant.
        Ok(Some(Value::Decimal(d))) if !types::decimal_fits(&d, cell_type.decimal_shape) => false,
        Ok(Some(cell)) => {
            values.push((column, cell));
            true
        }
        Ok(None) | Err(_) => false,
    }
}
