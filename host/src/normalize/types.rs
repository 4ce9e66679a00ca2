//! Type inference and coercion, as dlt does them.
//!
//! A JSON value gets the type dlt would infer ([`infer`]); a value arriving in
//! a column that already has another type is coerced when dlt would coerce
//! it ([`coerce`]), otherwise it goes to a variant column.

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use serde_json::Value as Json;

use crate::schema::{DataType, Value};

/// A JSON value with its inferred type; `None` for null (which has no type).
pub fn infer(v: &Json) -> Option<DataType> {
    match v {
        Json::Null => None,
        Json::Bool(_) => Some(DataType::Bool),
        Json::Number(n) if n.is_i64() || n.is_u64() => Some(DataType::Bigint),
        Json::Number(_) => Some(DataType::Double),
        Json::String(s) if parse_iso_timestamp(s).is_some() => Some(DataType::Timestamp),
        Json::String(_) => Some(DataType::Text),
        Json::Array(_) | Json::Object(_) => Some(DataType::Json),
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

/// Converts `v` into a value of type `to`, or `Ok(None)` if dlt would not
/// coerce it (the caller then makes a variant column).
pub fn coerce(v: &Json, to: DataType) -> Result<Option<Value>, TypeError> {
    Ok(match (to, v) {
        (_, Json::Null) => Some(Value::Null),
        (DataType::Bigint, Json::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Some(Value::Bigint(i))
            } else if n.is_u64() {
                return Err(TypeError::IntegerOutOfRange(n.to_string()));
            } else {
                n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| Value::Bigint(f as i64))
            }
        }
        (DataType::Bigint, Json::String(s)) => s.trim().parse::<i64>().ok().map(Value::Bigint),
        (DataType::Double, Json::Number(n)) => n.as_f64().map(Value::Double),
        (DataType::Double, Json::String(s)) => {
            s.trim().parse::<f64>().ok().filter(|f| f.is_finite()).map(Value::Double)
        }
        (DataType::Bool, Json::Bool(b)) => Some(Value::Bool(*b)),
        (DataType::Bool, Json::String(s)) => parse_bool(s).map(Value::Bool),
        (DataType::Bool, Json::Number(n)) => match n.as_i64() {
            Some(1) => Some(Value::Bool(true)),
            Some(0) => Some(Value::Bool(false)),
            _ => None,
        },
        (DataType::Text, Json::String(s)) => Some(Value::Text(s.clone())),
        (DataType::Text, Json::Bool(b)) => Some(Value::Text(if *b { "True" } else { "False" }.into())),
        (DataType::Text, Json::Number(n)) => Some(Value::Text(n.to_string())),
        (DataType::Text, j) => Some(Value::Text(j.to_string())),
        (DataType::Timestamp, Json::String(s)) => parse_iso_timestamp(s).map(Value::Timestamp),
        (DataType::Timestamp, Json::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite() && f.abs() < 9.2e12)
            .map(|secs| Value::Timestamp((secs * 1_000_000.0).round() as i64)),
        (DataType::Json, j @ (Json::Object(_) | Json::Array(_))) => Some(Value::Json(j.to_string())),
        (DataType::Date, Json::String(s)) => parse_date(s).map(Value::Date),
        (DataType::Time, Json::String(s)) => parse_time(s).map(Value::Time),
        (DataType::Decimal, Json::Number(n)) => plain_decimal(&n.to_string()).map(Value::Decimal),
        (DataType::Decimal, Json::String(s)) => plain_decimal(s.trim()).map(Value::Decimal),
        (DataType::Binary, Json::String(s)) => {
            base64::engine::general_purpose::STANDARD.decode(s).ok().map(Value::Binary)
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
