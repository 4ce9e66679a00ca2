//! Type inference and coercion, as dlt does them.
//!
//! A JSON value gets the type dlt would infer ([`infer`]); a value arriving in
//! a column that already has another type is coerced when dlt would coerce
//! it ([`coerce`]), otherwise it goes to a variant column.

use crate::input::Node;
use crate::schema::{DataType, Value};
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// A JSON value with its inferred type; `None` for null (which has no type).
pub fn infer(v: &Node<'_>) -> Option<DataType> {
    match v {
        Node::Null => None,
        Node::Bool(_) => Some(DataType::Bool),
        Node::Int(_) | Node::UInt(_) => Some(DataType::Bigint),
        Node::Float(_) => Some(DataType::Double),
        Node::Str(s) if parse_iso_timestamp(s).is_some() => Some(DataType::Timestamp),
        Node::Str(_) => Some(DataType::Text),
        Node::Array(_) | Node::Object(_) => Some(DataType::Json),
    }
}

/// Why a value could not be turned into a typed value at all (not just "does
/// not fit this column", which makes a variant).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    /// dlt refuses integers beyond 64 bits; we do too rather than wrap.
    #[error("integer {0} does not fit a signed 64-bit bigint (declare the column as decimal or text)")]
    IntegerOutOfRange(String),
}

/// A number as JSON (and serde_json) prints it.
fn number_text(v: &Node<'_>) -> Option<String> {
    match v {
        Node::Int(i) => Some(i.to_string()),
        Node::UInt(u) => Some(u.to_string()),
        Node::Float(f) => serde_json::Number::from_f64(*f).map(|n| n.to_string()),
        _ => None,
    }
}

/// Converts `v` into a value of type `to`, or `Ok(None)` if dlt would not
/// coerce it (the caller then makes a variant column).
pub fn coerce(v: &Node<'_>, to: DataType) -> Result<Option<Value>, TypeError> {
    Ok(match (to, v) {
        (_, Node::Null) => Some(Value::Null),
        (DataType::Bigint, Node::Int(i)) => Some(Value::Bigint(*i)),
        (DataType::Bigint, Node::UInt(u)) => return Err(TypeError::IntegerOutOfRange(u.to_string())),
        (DataType::Bigint, Node::Float(f)) => {
            Some(*f).filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| Value::Bigint(f as i64))
        }
        (DataType::Bigint, Node::Str(s)) => s.trim().parse::<i64>().ok().map(Value::Bigint),
        (DataType::Double, Node::Int(i)) => Some(Value::Double(*i as f64)),
        (DataType::Double, Node::UInt(u)) => Some(Value::Double(*u as f64)),
        (DataType::Double, Node::Float(f)) => Some(Value::Double(*f)),
        (DataType::Double, Node::Str(s)) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()).map(Value::Double),
        (DataType::Bool, Node::Bool(b)) => Some(Value::Bool(*b)),
        (DataType::Bool, Node::Str(s)) => parse_bool(s).map(Value::Bool),
        (DataType::Bool, Node::Int(1)) => Some(Value::Bool(true)),
        (DataType::Bool, Node::Int(0)) => Some(Value::Bool(false)),
        (DataType::Text, Node::Str(s)) => Some(Value::Text(s.to_string())),
        (DataType::Text, Node::Bool(b)) => Some(Value::Text(if *b { "True" } else { "False" }.into())),
        (DataType::Text, n @ (Node::Int(_) | Node::UInt(_) | Node::Float(_))) => number_text(n).map(Value::Text),
        (DataType::Text, j) => Some(Value::Text(j.to_json())),
        (DataType::Timestamp, Node::Str(s)) => parse_iso_timestamp(s).map(Value::Timestamp),
        (DataType::Timestamp, n @ (Node::Int(_) | Node::UInt(_) | Node::Float(_))) => {
            let secs = match n {
                Node::Int(i) => *i as f64,
                Node::UInt(u) => *u as f64,
                Node::Float(f) => *f,
                _ => f64::NAN,
            };
            Some(secs)
                .filter(|f| f.is_finite() && f.abs() < 9.2e12)
                .map(|secs| Value::Timestamp((secs * 1_000_000.0).round() as i64))
        }
        (DataType::Json, j @ (Node::Object(_) | Node::Array(_))) => Some(Value::Json(j.to_json())),
        (DataType::Date, Node::Str(s)) => parse_date(s).map(Value::Date),
        (DataType::Time, Node::Str(s)) => parse_time(s).map(Value::Time),
        (DataType::Decimal, n @ (Node::Int(_) | Node::UInt(_) | Node::Float(_))) => {
            number_text(n).and_then(|t| plain_decimal(&t)).map(Value::Decimal)
        }
        (DataType::Decimal, Node::Str(s)) => plain_decimal(s.trim()).map(Value::Decimal),
        (DataType::Binary, Node::Str(s)) => {
            base64::engine::general_purpose::STANDARD.decode(s.as_bytes()).ok().map(Value::Binary)
        }
        _ => None,
    })
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "t" | "on" | "1" => Some(true),
        "false" | "no" | "n" | "f" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Detects ISO 8601 timestamps as dlt's `iso_timestamp` detection does:
/// a date, `T` or space, a time with optional seconds and fraction, and an
/// optional `Z` or offset (converted to UTC; none means UTC). Plain dates are
/// not timestamps. Returns microseconds since the epoch.
pub fn parse_iso_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    // Cheap reject first: every row's strings pass through here.
    if b.len() < 16 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%d %H:%M%:z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.timestamp_micros());
        }
    }
    let naive = s.strip_suffix('Z').unwrap_or(s);
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(naive, fmt) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    None
}

fn parse_date(s: &str) -> Option<i32> {
    let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((d - epoch).num_days()).ok()
}

fn parse_time(s: &str) -> Option<i64> {
    let t = NaiveTime::parse_from_str(s.trim(), "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(s.trim(), "%H:%M"))
        .ok()?;
    Some(i64::from(t.num_seconds_from_midnight()) * 1_000_000 + i64::from(t.nanosecond() / 1000))
}

/// A decimal in plain notation (`1e3` → `1000`), or `None` if `s` is not a number.
fn plain_decimal(s: &str) -> Option<String> {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (neg, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty()
        || !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let all: String = format!("{int_part}{frac_part}");
    let point = int_part.len() as i64 + i64::from(exp);
    let (int, frac) = if point <= 0 {
        (String::from("0"), format!("{}{}", "0".repeat((-point) as usize), all))
    } else if point as usize >= all.len() {
        (format!("{all}{}", "0".repeat(point as usize - all.len())), String::new())
    } else {
        (all[..point as usize].to_string(), all[point as usize..].to_string())
    };
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let sign = if neg { "-" } else { "" };
    Some(if frac.is_empty() { format!("{sign}{int}") } else { format!("{sign}{int}.{frac}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(v: &serde_json::Value) -> Option<DataType> {
        super::infer(&Node::from(v))
    }

    fn coerce(v: &serde_json::Value, to: DataType) -> Result<Option<Value>, TypeError> {
        super::coerce(&Node::from(v), to)
    }

    use serde_json::json;

    #[test]
    fn detects_timestamps_like_dlt() {
        assert_eq!(infer(&json!("2024-01-02T03:04:05+02:00")), Some(DataType::Timestamp));
        assert_eq!(parse_iso_timestamp("2024-01-02T03:04:05+02:00"), Some(1_704_157_445_000_000));
        assert_eq!(parse_iso_timestamp("2024-01-02 03:04:05.5Z"), Some(1_704_164_645_500_000));
        assert_eq!(infer(&json!("2024-01-02")), Some(DataType::Text));
        assert_eq!(infer(&json!("hello world, long enough")), Some(DataType::Text));
    }

    #[test]
    fn coerces_like_dlt() {
        assert_eq!(coerce(&json!(3.0), DataType::Bigint), Ok(Some(Value::Bigint(3))));
        assert_eq!(coerce(&json!("7"), DataType::Bigint), Ok(Some(Value::Bigint(7))));
        assert_eq!(coerce(&json!(3.7), DataType::Bigint), Ok(None));
        assert_eq!(coerce(&json!(true), DataType::Bigint), Ok(None));
        assert_eq!(coerce(&json!("yes"), DataType::Bool), Ok(Some(Value::Bool(true))));
        assert_eq!(coerce(&json!("maybe"), DataType::Bool), Ok(None));
        assert_eq!(coerce(&json!(5), DataType::Text), Ok(Some(Value::Text("5".into()))));
        assert_eq!(coerce(&json!({"k": 1}), DataType::Text), Ok(Some(Value::Text("{\"k\":1}".into()))));
        assert!(coerce(&json!(18446744073709551615u64), DataType::Bigint).is_err());
    }

    #[test]
    fn decimals_in_plain_notation() {
        assert_eq!(plain_decimal("1e3").as_deref(), Some("1000"));
        assert_eq!(plain_decimal("-1.25E-2").as_deref(), Some("-0.0125"));
        assert_eq!(plain_decimal("007.50").as_deref(), Some("7.50"));
        assert_eq!(plain_decimal("abc"), None);
    }
}
