//! A parsed JSON record that borrows its strings from the input line.
//!
//! `serde_json::Value` allocates every string and hashes every key into an
//! ordered map; parsing into it cost more than half of normalizing. A
//! [`Node`] keeps object entries in a plain vector (input order, which is
//! the order dlt sees), and its strings borrow from the line whenever they
//! hold no escapes, so a typical record costs a handful of allocations.
//!
//! Duplicate keys behave as in Python's `json.loads` (and serde_json's
//! ordered map): the last value wins, at the position of the first key.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

mod parser;
pub use parser::{Cursor, SyntaxError, key_colon};

/// One JSON value. Integers that fit `i64` are [`Node::Int`]; others keep
/// their digits in [`Node::BigInt`] (a bigint column refuses them, as dlt's
/// does; a decimal or text column takes them exactly).
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer in the `i64` range.
    Int(i64),
    /// An integer outside the `i64` range, as its decimal digits (with `-`).
    BigInt(Cow<'a, str>),
    /// Any other number.
    Float(f64),
    /// A string, borrowed from the input when it had no escapes.
    Str(Cow<'a, str>),
    /// An array.
    Array(Vec<Node<'a>>),
    /// An object's entries in input order, keys unique.
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
    /// A value JSON has no type for, from a typed input (Parquet). Boxed:
    /// JSON never makes one, and a wider `Node` slows the JSON paths, in
    /// moving and dropping nodes (docs/performance.md, "Choices in the hot path").
    Typed(Box<Typed>),
}

/// A value of a type JSON cannot say, as Parquet files hold them. dlt
/// infers these types from the Python objects (`date`, `time`, `datetime`,
/// `Decimal`, `bytes`) such rows hold, so a Parquet date column stays a
/// date column instead of becoming text.
#[derive(Debug, Clone, PartialEq)]
pub enum Typed {
    /// Days since 1970-01-01, within [`crate::schema::DATE_RANGE`].
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// Microseconds since the epoch, UTC, within
    /// [`crate::schema::TIMESTAMP_RANGE`].
    Timestamp(i64),
    /// Plain decimal notation, and the precision and scale of its column.
    Decimal {
        /// The digits, with `-` and `.` as needed.
        digits: String,
        /// Digits in all.
        precision: u32,
        /// Digits after the point.
        scale: u32,
    },
    /// Bytes.
    Binary(Vec<u8>),
}

impl From<Typed> for Node<'_> {
    fn from(t: Typed) -> Self {
        Node::Typed(Box::new(t))
    }
}

impl Typed {
    /// The column type it is.
    pub fn data_type(&self) -> crate::schema::DataType {
        use crate::schema::DataType;
        match self {
            Typed::Date(_) => DataType::Date,
            Typed::Time(_) => DataType::Time,
            Typed::Timestamp(_) => DataType::Timestamp,
            Typed::Decimal { .. } => DataType::Decimal,
            Typed::Binary(_) => DataType::Binary,
        }
    }

    /// As text, the way Python prints the object (`isoformat()`, `str()`;
    /// bytes as base64): dlt's coercion into a text column, and the value's
    /// form inside JSON.
    pub fn text(&self) -> String {
        use base64::Engine as _;
        match self {
            Typed::Date(days) => crate::schema::time::format_date(*days),
            Typed::Time(us) => python_time(*us),
            Typed::Timestamp(us) => {
                let date = crate::schema::time::format_date(us.div_euclid(86_400_000_000) as i32);
                format!("{date}T{}+00:00", python_time(us.rem_euclid(86_400_000_000)))
            }
            Typed::Decimal { digits, .. } => digits.clone(),
            Typed::Binary(bytes) => base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }
}

/// `HH:MM:SS`, and `.ffffff` only when there are microseconds (Python's
/// `time.isoformat()`).
fn python_time(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let (h, m, s, micros) = (secs / 3600, (secs / 60) % 60, secs % 60, us.rem_euclid(1_000_000));
    if micros == 0 { format!("{h:02}:{m:02}:{s:02}") } else { format!("{h:02}:{m:02}:{s:02}.{micros:06}") }
}

impl<'a> Node<'a> {
    /// Parses one JSON document from `bytes`, borrowing strings from it
    /// (see `input/json/parser.rs` for how it compares with serde_json).
    pub fn parse(bytes: &'a [u8]) -> Result<Node<'a>, SyntaxError> {
        parser::parse(bytes)
    }

    /// The value of `key` when this is an object holding it.
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        match self {
            Node::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, when this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Compact JSON text, exactly as `serde_json` prints the same value.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A copy that owns its strings, free of the input's lifetime.
    pub fn into_owned(self) -> Node<'static> {
        match self {
            Node::Null => Node::Null,
            Node::Bool(b) => Node::Bool(b),
            Node::Int(i) => Node::Int(i),
            Node::BigInt(digits) => Node::BigInt(Cow::Owned(digits.into_owned())),
            Node::Float(f) => Node::Float(f),
            Node::Str(s) => Node::Str(Cow::Owned(s.into_owned())),
            Node::Array(items) => Node::Array(items.into_iter().map(Node::into_owned).collect()),
            Node::Object(entries) => {
                Node::Object(entries.into_iter().map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned())).collect())
            }
            Node::Typed(t) => Node::Typed(t),
        }
    }
}

impl<'a> From<&'a serde_json::Value> for Node<'a> {
    fn from(v: &'a serde_json::Value) -> Self {
        use serde_json::Value as J;
        match v {
            J::Null => Node::Null,
            J::Bool(b) => Node::Bool(*b),
            J::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Node::Int(i),
                (None, Some(u)) => Node::BigInt(Cow::Owned(u.to_string())),
                _ => Node::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Node::Str(Cow::Borrowed(s)),
            J::Array(items) => Node::Array(items.iter().map(Node::from).collect()),
            J::Object(map) => {
                Node::Object(map.iter().map(|(k, v)| (Cow::Borrowed(k.as_str()), Node::from(v))).collect())
            }
        }
    }
}

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => s.serialize_unit(),
            Node::Bool(b) => s.serialize_bool(*b),
            Node::Int(i) => s.serialize_i64(*i),
            // Exact up to 128 bits (serde's widest integers); wider ones
            // print as the nearest float.
            Node::BigInt(digits) => match (digits.parse::<i128>(), digits.parse::<u128>()) {
                (Ok(i), _) => s.serialize_i128(i),
                (_, Ok(u)) => s.serialize_u128(u),
                _ => s.serialize_f64(digits.parse().unwrap_or(f64::NAN)),
            },
            Node::Float(f) => s.serialize_f64(*f),
            Node::Str(text) => s.serialize_str(text),
            Node::Typed(t) => s.serialize_str(&t.text()),
            Node::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Object(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k.as_ref(), v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Node<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Node<'de>, E> {
        Ok(Node::Int(i))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Node<'de>, E> {
        Ok(i64::try_from(u).map_or_else(|_| Node::BigInt(Cow::Owned(u.to_string())), Node::Int))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Node<'de>, E> {
        Ok(Node::Float(f))
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Borrowed(s)))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(s.to_string())))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut entries: Vec<parser::Entry<'de>> = Vec::with_capacity(map.size_hint().unwrap_or(8));
        let mut keys = parser::Keys::default();
        while let Some(Key(key)) = map.next_key()? {
            let value: Node<'de> = map.next_value()?;
            keys.insert(&mut entries, 0, key, value);
        }
        Ok(Node::Object(entries))
    }
}

/// An object key, borrowed when it can be (serde's own `Cow<str>` always
/// copies).
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_serde_json() {
        for text in [
            r#"{"a":1,"b":[1.5,-2,true,null],"c":{"d":"x\"y\u00e9"},"e":1e20,"f":18446744073709551615}"#,
            r#"[0.1,3.0,-0.0,1e-7,"\n"]"#,
        ] {
            let ours = Node::parse(text.as_bytes()).expect("parses").to_json();
            let theirs: serde_json::Value = serde_json::from_str(text).expect("parses");
            assert_eq!(ours, theirs.to_string());
        }
    }

    #[test]
    fn strings_borrow_and_duplicate_keys_keep_first_position() {
        let node = Node::parse(br#"{"a":"plain","b":"esc\naped","a":2}"#).expect("parses");
        let Node::Object(entries) = &node else { panic!("{node:?}") };
        assert_eq!(entries.len(), 2);
        assert!(matches!(&entries[0], (Cow::Borrowed("a"), Node::Int(2))));
        assert!(matches!(&entries[1].1, Node::Str(Cow::Owned(_))));

        let many: String = (0..100).map(|i| format!("\"k{}\":{i},", i % 40)).collect();
        let text = format!("{{{many}\"z\":0}}");
        let node = Node::parse(text.as_bytes()).expect("parses");
        let Node::Object(entries) = &node else { panic!("{node:?}") };
        assert_eq!(entries.len(), 41);
        assert_eq!(node.get("k0"), Some(&Node::Int(80)));
        // The same through serde (JSON array files, job read-back).
        let through_serde: Node = serde_json::from_str(&text).expect("parses");
        assert_eq!(through_serde, node);
    }

    #[test]
    fn integer_ranges() {
        assert_eq!(Node::parse(b"9223372036854775807").expect("i64"), Node::Int(i64::MAX));
        assert_eq!(Node::parse(b"9223372036854775808").expect("big"), Node::BigInt("9223372036854775808".into()));
        assert_eq!(Node::parse(b"-1").expect("neg"), Node::Int(-1));
    }
}
