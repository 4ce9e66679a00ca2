//! The key paths the normalizer has seen, per table, and what it knows
//! about each: a repeated key costs one hash lookup instead of naming,
//! joining and looking up its column on every row.

use rustc_hash::FxHashMap;
use smallvec::{Array, SmallVec};

use super::DLT_PREFIX;
use super::naming::Namer;
use crate::input::json;

/// Index of a [`Field`] in its table's [`Fields`].
pub(super) type FieldId = u32;

/// A key path seen in a table (`address` → `city`), with what is known about
/// it, so a repeated key costs one hash lookup instead of naming, joining
/// and looking up its column on every row.
#[derive(Debug)]
pub(super) struct Field {
    /// The joined, normalized column name (the child table's path for lists).
    pub(super) name: String,
    /// Starts with `_dlt` (skipped under `skip_dlt_columns_and_tables`).
    pub(super) dlt: bool,
    /// The column, once it exists (columns never move).
    pub(super) column: Option<usize>,
    /// While `column` is `None`: how many columns the table had when the
    /// last lookup found none (`usize::MAX`: not looked up yet). Columns
    /// are only ever appended, so until the table has more, there is still
    /// none: nested objects and lists, whose paths are not columns, are not
    /// looked up by name again for every row.
    pub(super) no_column_among: usize,
    /// The child table a list at this path goes to, once it exists.
    pub(super) child_table: Option<usize>,
    /// The raw key (empty for the root).
    raw: Box<str>,
    /// `"raw":` as compact JSON writes the key and its colon
    /// ([`json::key_colon`]): the fast path matches it against a line's
    /// bytes without decoding the line's key. Empty when the key needs
    /// escapes.
    key_colon: Box<[u8]>,
    /// Raw key → field one level down.
    pub(super) children: FxHashMap<Box<str>, FieldId>,
    /// The field whose key came first under this one in the last record
    /// that had any (0: none yet), and the key that followed this one
    /// under the same parent. Records mostly repeat their key order, so
    /// these predictions spare most hash lookups.
    first_child: FieldId,
    next_sibling: FieldId,
    /// The field one level up (0 at the top).
    pub(super) parent: FieldId,
    /// The raw key was empty or blank (or separators only): `_empty` as a column, but no path
    /// fragment at all in a child table's name (dlt drops it, so such a
    /// list's rows land in the table that holds the list).
    pub(super) empty_key: bool,
    /// The first field with the same name: keys that normalize alike
    /// (`a-b` and `a.b` in snake_case) are one column, and within a row the
    /// last value wins, at the first key's position (a Python dict).
    pub(super) canonical: FieldId,
    /// Other fields share this (canonical) field's name.
    pub(super) shared: bool,
    /// The last record (by [`super::Normalizer`]'s stamp) in which the fast
    /// path met this key: meeting it twice in one record means a repeat.
    pub(super) seen: u64,
}

impl Field {
    fn new(name: String, raw: &str, parent: FieldId, canonical: FieldId) -> Self {
        Field {
            dlt: name.starts_with(DLT_PREFIX),
            name,
            raw: raw.into(),
            key_colon: json::key_colon(raw).unwrap_or_default().into_boxed_slice(),
            first_child: 0,
            next_sibling: 0,
            column: None,
            no_column_among: usize::MAX,
            child_table: None,
            children: FxHashMap::default(),
            parent,
            empty_key: raw.trim().is_empty(),
            canonical,
            shared: false,
            seen: 0,
        }
    }
}

/// The key-path tree of one table; field 0 is the root (empty path).
#[derive(Debug, Default)]
pub(super) struct Fields {
    pub(super) nodes: Vec<Field>,
    /// Column name → the first field with it.
    pub(super) by_name: FxHashMap<String, FieldId>,
    /// `_dlt_load_id`, `_dlt_parent_id`, `_dlt_list_idx`, `_dlt_id` columns.
    pub(super) dlt_columns: [Option<usize>; 4],
}

impl Fields {
    /// The field for raw `key` under `parent`, named on first sight (field 0,
    /// the root, is made on first use).
    pub(super) fn get_or_add(&mut self, parent: FieldId, key: &str, namer: &mut Namer) -> FieldId {
        if self.nodes.is_empty() {
            let mut root = Field::new(String::new(), "", 0, 0);
            root.empty_key = false;
            self.nodes.push(root);
        }
        if let Some(id) = self.nodes[parent as usize].children.get(key) {
            return *id;
        }
        let sep = namer.convention().separator();
        let ident = namer.identifier(key);
        let prefix = &self.nodes[parent as usize].name;
        let name = if prefix.is_empty() { ident.to_string() } else { format!("{prefix}{sep}{ident}") };
        let id = self.nodes.len() as FieldId;
        self.nodes[parent as usize].children.insert(key.into(), id);
        let canonical = match self.by_name.get(&name) {
            Some(first) => {
                self.nodes[*first as usize].shared = true;
                *first
            }
            None => {
                self.by_name.insert(name.clone(), id);
                id
            }
        };
        let mut field = Field::new(name, key, parent, canonical);
        field.empty_key = namer.convention().is_blank(key);
        self.nodes.push(field);
        id
    }

    /// The field whose key came after `previous` (`None`: first) under
    /// `parent` last time, or 0 (none known).
    pub(super) fn predict(&self, parent: FieldId, previous: Option<FieldId>) -> FieldId {
        match previous {
            None => self.nodes.get(parent as usize).map_or(0, |p| p.first_child),
            Some(p) => self.nodes[p as usize].next_sibling,
        }
    }

    /// `"key":` of `field` in compact JSON, when it has no escapes.
    pub(super) fn key_colon(&self, field: FieldId) -> Option<&[u8]> {
        let node = &self.nodes[field as usize];
        (!node.key_colon.is_empty()).then_some(&*node.key_colon)
    }

    /// [`Fields::get_or_add`] for the key after `previous` (`None`: the
    /// first key) under `parent`: checks the key that came there last time
    /// before looking `key` up.
    pub(super) fn next(&mut self, parent: FieldId, previous: Option<FieldId>, key: &str, namer: &mut Namer) -> FieldId {
        let predicted = self.predict(parent, previous);
        if predicted != 0 && *self.nodes[predicted as usize].raw == *key {
            return predicted;
        }
        let id = self.get_or_add(parent, key, namer);
        match previous {
            None => self.nodes[parent as usize].first_child = id,
            Some(p) => self.nodes[p as usize].next_sibling = id,
        }
        id
    }
}

/// Adds `(field, value)` to a flattened row, or replaces the value of a
/// field with the same name already in it (`shared` says one may be).
pub(super) fn put<T, A: Array<Item = (FieldId, T)>>(out: &mut SmallVec<A>, field: FieldId, shared: bool, value: T) {
    if shared && let Some(slot) = out.iter_mut().find(|(f, _)| *f == field) {
        slot.1 = value;
        return;
    }
    out.push((field, value));
}
