//! Type inference and coercion, as dlt does them.
//!
//! A JSON value gets the type dlt would infer ([`infer`]); a value arriving in
//! a column that already has another type is coerced when dlt would coerce
//! it ([`coerce`]), otherwise it goes to a variant column.

use base64::Engine as _;
use chrono::{NaiveTime, Timelike};
use compact_str::CompactString;

use super::datetime::{detect_timestamp, seconds_to_micros, text_to_timestamp};
use super::python::{python_float, python_float_repr, python_int, without_underscores};
use crate::input::{Node, Typed};
use crate::schema::{DataType, Value};

/// A JSON value with its inferred type; `None` for null (which has no type).
pub fn infer(v: &Node<'_>) -> Option<DataType> {
    match v {
        Node::Null => None,
        Node::Bool(_) => Some(DataType::Bool),
        Node::Int(_) | Node::BigInt(_) => Some(DataType::Bigint),
        Node::Float(_) => Some(DataType::Double),
        Node::Str(s) if detect_timestamp(s).is_some() => Some(DataType::Timestamp),
        Node::Str(_) => Some(DataType::Text),
        Node::Array(_) | Node::Object(_) => Some(DataType::Json),
        Node::Typed(t) => Some(t.data_type()),
    }
}

/// The precision and scale a new column inferred from `v` takes: a Parquet
/// decimal's own (dlt's default shape could not hold a `decimal(38, 18)`).
pub fn declared_shape(v: &Node<'_>) -> Option<(u32, u32)> {
    match v {
        Node::Typed(t) => match **t {
            Typed::Decimal { precision, scale, .. } => Some((precision, scale)),
            _ => None,
        },
        _ => None,
    }
}

/// The suffix of the variant column a value that does not fit goes to: dlt
/// names it by the value's own JSON type (`v_text` for a string, even one
/// that reads as a timestamp), and types the variant column by inference.
pub fn variant_suffix(v: &Node<'_>) -> &'static str {
    match v {
        Node::Bool(_) => "bool",
        Node::Int(_) | Node::BigInt(_) => "bigint",
        Node::Float(_) => "double",
        Node::Str(_) => "text",
        Node::Null | Node::Array(_) | Node::Object(_) => "json",
        Node::Typed(t) => t.data_type().name(),
    }
}

/// Why a value could not be turned into a typed value at all (not just "does
/// not fit this column", which makes a variant).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    /// An integer outside the signed 64-bit range meets a bigint column.
    /// We refuse rather than wrap, round or quietly retype the column
    /// (docs/normalizer.md says why); a hint takes it exactly.
    #[error(
        "integer {0} is outside the signed 64-bit range of a bigint column; declare the column `decimal` (up to 38 digits) or `text` in --schema-hints to load it exactly (docs/normalizer.md)"
    )]
    IntegerOutOfRange(String),
    /// The value fits neither its column nor the variant column for its
    /// JSON type, which already has another type (dlt stops here too).
    #[error("{value} fits neither the column nor its variant column of type {data_type}")]
    NoVariant {
        /// The value, as JSON.
        value: String,
        /// The variant column's type.
        data_type: &'static str,
    },
}

/// A number as text, the way Python's `str()` prints it (dlt's text
/// coercion): floats as `repr` does (`1e+20`, `1e-05`, `3.0`).
fn number_text(v: &Node<'_>) -> Option<String> {
    match v {
        Node::Int(i) => Some(i.to_string()),
        Node::BigInt(digits) => Some(digits.to_string()),
        Node::Float(f) => Some(python_float_repr(*f)),
        _ => None,
    }
}

/// A number's value as a float, for coercions that take any number.
fn as_f64(v: &Node<'_>) -> Option<f64> {
    match v {
        Node::Int(i) => Some(*i as f64),
        Node::BigInt(digits) => digits.parse().ok(),
        Node::Float(f) => Some(*f),
        _ => None,
    }
}

/// Converts `v` into a value of type `to`, or `Ok(None)` if dlt would not
/// coerce it (the caller then makes a variant column). The pairs and rules
/// are dlt 1.31's `coerce_value` dispatch table.
pub fn coerce(v: &Node<'_>, to: DataType) -> Result<Option<Value>, TypeError> {
    Ok(match (to, v) {
        (_, Node::Null) => Some(Value::Null),
        (_, Node::Typed(t)) => coerce_typed(t, to),
        (DataType::Bigint, Node::Int(i)) => Some(Value::Bigint(*i)),
        (DataType::Bigint, Node::BigInt(digits)) => return Err(TypeError::IntegerOutOfRange(digits.to_string())),
        (DataType::Bigint, Node::Float(f)) => {
            Some(*f).filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| Value::Bigint(f as i64))
        }
        (DataType::Bigint, Node::Str(s)) => python_int(s).map(Value::Bigint),
        (DataType::Double, n @ (Node::Int(_) | Node::BigInt(_) | Node::Float(_))) => as_f64(n).map(Value::Double),
        (DataType::Double, Node::Str(s)) => text_to_double(s).filter(|f| f.is_finite()).map(Value::Double),
        (DataType::Bool, Node::Bool(b)) => Some(Value::Bool(*b)),
        (DataType::Bool, Node::Str(s)) => str2bool(s).map(Value::Bool),
        (DataType::Bool, n @ (Node::Int(_) | Node::BigInt(_) | Node::Float(_))) => {
            as_f64(n).map(|f| Value::Bool(f != 0.0))
        }
        (DataType::Text, Node::Str(s)) => Some(Value::Text(CompactString::from(&**s))),
        (DataType::Text, Node::Bool(b)) => Some(Value::Text(if *b { "True" } else { "False" }.into())),
        (DataType::Text, n @ (Node::Int(_) | Node::BigInt(_) | Node::Float(_))) => {
            number_text(n).map(|t| Value::Text(t.into()))
        }
        (DataType::Text, j) => Some(Value::Text(j.to_json().into())),
        (DataType::Timestamp, Node::Str(s)) => text_to_timestamp(s).map(Value::Timestamp),
        (DataType::Timestamp, n @ (Node::Int(_) | Node::BigInt(_) | Node::Float(_))) => {
            as_f64(n).and_then(seconds_to_micros).map(Value::Timestamp)
        }
        (DataType::Json, j @ (Node::Object(_) | Node::Array(_))) => Some(Value::Json(j.to_json())),
        // dlt parses text into a json column (`json.loads`); `"null"` is null.
        // Our parser reads numbers as `json.loads` does (`-0` is the integer
        // 0, floats correctly rounded, big integers exact).
        (DataType::Json, Node::Str(s)) => match Node::parse(s.as_bytes()) {
            Ok(Node::Null) => Some(Value::Null),
            Ok(parsed) => Some(Value::Json(parsed.to_json())),
            Err(_) => None,
        },
        (DataType::Date, Node::Str(s)) => parse_date(s).map(Value::Date),
        (DataType::Date, n @ (Node::Int(_) | Node::BigInt(_) | Node::Float(_))) => as_f64(n)
            .and_then(seconds_to_micros)
            .and_then(|us| i32::try_from(us.div_euclid(86_400_000_000)).ok())
            .map(Value::Date),
        (DataType::Time, Node::Str(s)) => parse_time(s).map(Value::Time),
        (DataType::Decimal, n @ (Node::Int(_) | Node::BigInt(_) | Node::Float(_))) => {
            number_text(n).and_then(|t| plain_decimal(&t)).map(Value::Decimal)
        }
        (DataType::Decimal, Node::Str(s)) => text_to_decimal(s).map(Value::Decimal),
        (DataType::Binary, Node::Str(s)) => match s.strip_prefix("0x") {
            Some(hex_digits) => hex::decode(hex_digits).ok().map(Value::Binary),
            None => base64::engine::general_purpose::STANDARD.decode(s.as_bytes()).ok().map(Value::Binary),
        },
        (DataType::Binary, Node::Int(i)) if *i >= 0 => {
            let bytes = i.to_le_bytes();
            let len = (64 - i.leading_zeros() as usize).div_ceil(8);
            Some(Value::Binary(bytes[..len].to_vec()))
        }
        _ => None,
    })
}

/// A typed value into a column of type `to`, as dlt coerces the Python
/// object: into its own type, into text as Python prints it, a date into a
/// timestamp at midnight and back, a decimal into a double, or into a
/// bigint when it is whole. Anything else goes to a variant.
fn coerce_typed(t: &Typed, to: DataType) -> Option<Value> {
    match (to, t) {
        (DataType::Date, Typed::Date(days)) => Some(Value::Date(*days)),
        (DataType::Time, Typed::Time(us)) => Some(Value::Time(*us)),
        (DataType::Timestamp, Typed::Timestamp(us)) => Some(Value::Timestamp(*us)),
        (DataType::Decimal, Typed::Decimal { digits, .. }) => Some(Value::Decimal(digits.clone())),
        (DataType::Binary, Typed::Binary(bytes)) => Some(Value::Binary(bytes.clone())),
        (DataType::Text, t) => Some(Value::Text(t.text().into())),
        (DataType::Json, t) => Some(Value::Json(serde_json::Value::String(t.text()).to_string())),
        (DataType::Timestamp, Typed::Date(days)) => Some(Value::Timestamp(i64::from(*days) * 86_400_000_000)),
        (DataType::Date, Typed::Timestamp(us)) => i32::try_from(us.div_euclid(86_400_000_000)).ok().map(Value::Date),
        (DataType::Double, Typed::Decimal { digits, .. }) => {
            digits.parse::<f64>().ok().filter(|f| f.is_finite()).map(Value::Double)
        }
        (DataType::Bigint, Typed::Decimal { digits, .. }) => {
            let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
            fraction.bytes().all(|b| b == b'0').then(|| whole.parse().ok()).flatten().map(Value::Bigint)
        }
        _ => None,
    }
}

/// dlt's `str2bool`: exactly these words, any case, no trimming.
fn str2bool(s: &str) -> Option<bool> {
    match s.to_lowercase().as_str() {
        "yes" | "true" | "t" | "y" | "1" => Some(true),
        "no" | "false" | "f" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// dlt's text → double: `0x` hex, else Python's `float()`.
fn text_to_double(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.strip_prefix("0x") {
        Some(hex_digits) => i64::from_str_radix(&without_underscores(hex_digits)?, 16).ok().map(|i| i as f64),
        None => python_float(t),
    }
}

/// dlt's text → decimal: `0x` hex, else Python's `Decimal()` (plain notation).
fn text_to_decimal(s: &str) -> Option<String> {
    let t = s.trim();
    match t.strip_prefix("0x") {
        Some(hex_digits) => i128::from_str_radix(hex_digits, 16).ok().map(|i| i.to_string()),
        None => plain_decimal(&without_underscores(t)?),
    }
}

/// dlt's text → date: an ISO date, else the UTC day of a timestamp.
fn parse_date(s: &str) -> Option<i32> {
    let t = s.trim();
    let b = t.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<u32>().ok();
        let days = crate::schema::time::days_from_civil(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)?;
        return i32::try_from(days).ok();
    }
    text_to_timestamp(t).and_then(|us| i32::try_from(us.div_euclid(86_400_000_000)).ok())
}

fn parse_time(s: &str) -> Option<i64> {
    let t = NaiveTime::parse_from_str(s.trim(), "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(s.trim(), "%H:%M"))
        .ok()?;
    // chrono reads a leap second (`23:59:60`) as a second past 59, which
    // would be `24:00:00`, a time no job file takes; Python refuses it.
    if t.nanosecond() >= 1_000_000_000 {
        return None;
    }
    Some(i64::from(t.num_seconds_from_midnight()) * 1_000_000 + i64::from(t.nanosecond() / 1000))
}

/// Whether `plain`, a decimal as [`coerce`] writes it, fits a column of
/// `(precision, scale)` without losing or rounding a digit.
pub fn decimal_fits(plain: &str, (precision, scale): (u32, u32)) -> bool {
    let digits = plain.strip_prefix('-').unwrap_or(plain);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int_digits = int.trim_start_matches('0').len();
    let frac_digits = frac.trim_end_matches('0').len();
    int_digits + scale as usize <= precision as usize && frac_digits <= scale as usize
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
    // `1e999999999` would be a billion digits; no decimal column holds more
    // than 38, so such a value is no decimal at all (it goes to a variant).
    if point.unsigned_abs() > 2 * u64::from(crate::schema::MAX_DECIMAL_PRECISION) + all.len() as u64 {
        return None;
    }
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
        assert_eq!(detect_timestamp("2024-01-02T03:04:05+02:00"), Some(1_704_157_445_000_000));
        assert_eq!(detect_timestamp("2024-01-02 03:04:05.5Z"), Some(1_704_164_645_500_000));
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

    /// Checked against dlt 1.31's `coerce_value` (see tests/golden/differential.py).
    #[test]
    fn coercions_follow_dlts_dispatch_table() {
        assert_eq!(coerce(&json!(-1), DataType::Bool), Ok(Some(Value::Bool(true))));
        assert_eq!(coerce(&json!(0.0), DataType::Bool), Ok(Some(Value::Bool(false))));
        assert_eq!(coerce(&json!("on"), DataType::Bool), Ok(None), "str2bool has no on/off");
        assert_eq!(coerce(&json!(" yes"), DataType::Bool), Ok(None), "str2bool does not trim");
        assert_eq!(coerce(&json!("TRUE"), DataType::Bool), Ok(Some(Value::Bool(true))));
        assert_eq!(coerce(&json!(" 1_000 "), DataType::Bigint), Ok(Some(Value::Bigint(1000))));
        assert_eq!(coerce(&json!("0x1f"), DataType::Bigint), Ok(Some(Value::Bigint(31))));
        assert_eq!(coerce(&json!("7.0"), DataType::Bigint), Ok(None));
        assert_eq!(coerce(&json!("0x10"), DataType::Double), Ok(Some(Value::Double(16.0))));
        assert_eq!(
            coerce(&json!("2024-01-02"), DataType::Timestamp),
            Ok(Some(Value::Timestamp(1_704_153_600_000_000)))
        );
        assert_eq!(coerce(&json!("7"), DataType::Timestamp), Ok(Some(Value::Timestamp(7_000_000))));
        assert_eq!(coerce(&json!("{\"k\": 1}"), DataType::Json), Ok(Some(Value::Json("{\"k\":1}".into()))));
        assert_eq!(coerce(&json!("null"), DataType::Json), Ok(Some(Value::Null)));
        assert_eq!(coerce(&json!("x"), DataType::Json), Ok(None));
        assert_eq!(coerce(&json!("0x0102"), DataType::Binary), Ok(Some(Value::Binary(vec![1, 2]))));
        assert_eq!(coerce(&json!(258), DataType::Binary), Ok(Some(Value::Binary(vec![2, 1]))));
    }

    #[test]
    fn floats_print_as_python_repr() {
        let cases = [
            (1e20, "1e+20"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e-7, "1e-07"),
            (123456.789, "123456.789"),
            (2.5, "2.5"),
            (-0.0, "-0.0"),
            (3.0, "3.0"),
            (1.5e300, "1.5e+300"),
            (-2.25, "-2.25"),
        ];
        for (f, want) in cases {
            assert_eq!(python_float_repr(f), want, "{f}");
        }
        assert_eq!(coerce(&json!(1e20), DataType::Text), Ok(Some(Value::Text("1e+20".into()))));
    }

    #[test]
    fn decimals_in_plain_notation() {
        assert_eq!(plain_decimal("1e3").as_deref(), Some("1000"));
        assert_eq!(plain_decimal("-1.25E-2").as_deref(), Some("-0.0125"));
        assert_eq!(plain_decimal("007.50").as_deref(), Some("7.50"));
        assert_eq!(plain_decimal("abc"), None);
    }

    #[test]
    fn integers_beyond_64_bits_keep_their_digits() {
        let big = crate::input::Node::parse(b"-123456789012345678901234567890").expect("parses");
        assert_eq!(super::infer(&big), Some(DataType::Bigint));
        assert_eq!(
            super::coerce(&big, DataType::Bigint),
            Err(TypeError::IntegerOutOfRange("-123456789012345678901234567890".into()))
        );
        assert_eq!(
            super::coerce(&big, DataType::Decimal),
            Ok(Some(Value::Decimal("-123456789012345678901234567890".into())))
        );
        assert_eq!(
            super::coerce(&big, DataType::Text),
            Ok(Some(Value::Text("-123456789012345678901234567890".into())))
        );
        assert_eq!(super::coerce(&big, DataType::Double), Ok(Some(Value::Double(-1.2345678901234568e29))));
    }

    #[test]
    fn decimals_fit_their_shape_digit_for_digit() {
        assert!(decimal_fits("1234.56", (6, 2)));
        assert!(decimal_fits("-0.5", (1, 1)));
        assert!(decimal_fits("00012.300", (5, 1)), "leading and trailing zeros are no digits");
        assert!(!decimal_fits("12345.6", (6, 2)), "five integer digits where four fit");
        assert!(!decimal_fits("0.001", (6, 2)), "a third fraction digit would be lost");
        assert!(decimal_fits("0", (1, 0)));
        // No billion-digit string for a huge exponent: not a decimal at all.
        assert_eq!(plain_decimal("1e999999999"), None);
        assert_eq!(plain_decimal("1e-999999999"), None);
        assert_eq!(plain_decimal("1.5e3").as_deref(), Some("1500"));
    }

    /// What dlt 1.31 does with the Python objects of a Parquet row (a
    /// `date`, `time`, `datetime`, `Decimal`, `bytes`), seen through a
    /// `@dlt.destination` sink.
    #[test]
    fn typed_values_infer_and_coerce_as_dlt_does_python_objects() {
        let date = Node::from(Typed::Date(19_724)); // 2024-01-02
        let time = Node::from(Typed::Time(45_000_000_000)); // 12:30
        let ts = Node::from(Typed::Timestamp(1_704_164_645_000_000)); // 2024-01-02T03:04:05Z
        let dec = Node::from(Typed::Decimal { digits: "1.25".into(), precision: 10, scale: 2 });
        let whole = Node::from(Typed::Decimal { digits: "3.00".into(), precision: 10, scale: 2 });
        let bytes = Node::from(Typed::Binary(vec![0, 255]));
        for (v, t, suffix) in [
            (&date, DataType::Date, "date"),
            (&time, DataType::Time, "time"),
            (&ts, DataType::Timestamp, "timestamp"),
            (&dec, DataType::Decimal, "decimal"),
            (&bytes, DataType::Binary, "binary"),
        ] {
            assert_eq!((super::infer(v), variant_suffix(v)), (Some(t), suffix));
        }
        let text = |v: &Node<'_>| super::coerce(v, DataType::Text).expect("coerces");
        assert_eq!(text(&date), Some(Value::Text("2024-01-02".into())));
        assert_eq!(text(&time), Some(Value::Text("12:30:00".into())));
        assert_eq!(text(&ts), Some(Value::Text("2024-01-02T03:04:05+00:00".into())));
        assert_eq!(text(&dec), Some(Value::Text("1.25".into())));
        assert_eq!(text(&bytes), Some(Value::Text("AP8=".into())));
        assert_eq!(super::coerce(&dec, DataType::Double), Ok(Some(Value::Double(1.25))));
        assert_eq!(super::coerce(&whole, DataType::Bigint), Ok(Some(Value::Bigint(3))));
        assert_eq!(super::coerce(&dec, DataType::Bigint), Ok(None), "1.25 is no bigint: v_decimal");
        assert_eq!(super::coerce(&date, DataType::Timestamp), Ok(Some(Value::Timestamp(1_704_153_600_000_000))));
        assert_eq!(super::coerce(&ts, DataType::Date), Ok(Some(Value::Date(19_724))));
        for (v, to) in [(&date, DataType::Double), (&time, DataType::Timestamp), (&dec, DataType::Timestamp)] {
            assert_eq!(super::coerce(v, to), Ok(None), "{v:?} into {to:?} makes a variant in dlt");
        }
        assert_eq!(super::coerce(&date, DataType::Json), Ok(Some(Value::Json("\"2024-01-02\"".into()))));
        assert_eq!(declared_shape(&dec), Some((10, 2)));
    }

    /// Times of day as Python's `time` takes them: no leap second (chrono
    /// would read `23:59:60` as `24:00:00`, which no job file takes), and
    /// fractions cut to microseconds.
    #[test]
    fn times_of_day_stay_within_the_day() {
        let time = |s: &str| coerce(&json!(s), DataType::Time).expect("coerces");
        assert_eq!(time("12:30"), Some(Value::Time(45_000_000_000)));
        assert_eq!(time("23:59:59.9999999"), Some(Value::Time(86_399_999_999)));
        for bad in ["23:59:60", "12:30:60", "23:59:60.5", "24:00:00"] {
            assert_eq!(time(bad), None, "{bad}");
        }
    }
}
