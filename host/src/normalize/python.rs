//! Python's number literals as dlt meets them: `int()` and `float()` of
//! text, and `repr()` of a float. The normalizer's type coercions and its
//! timestamp reading both use them, so they live below both.

/// Python's `int(text.strip())` (with dlt's `0x` hex prefix), in the i64
/// range: a sign, digits, single underscores between digits.
pub fn python_int(s: &str) -> Option<i64> {
    let t = s.trim();
    if let Some(hex_digits) = t.strip_prefix("0x") {
        return i64::from_str_radix(&without_underscores(hex_digits)?, 16).ok();
    }
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return None;
    }
    without_underscores(t)?.parse().ok()
}

/// Python's `float(text)`: surrounding whitespace, `inf`, `nan`, exponents,
/// and single underscores between digits are accepted.
pub fn python_float(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    without_underscores(t)?.parse().ok()
}

/// `s` without the underscores Python allows between digits; `None` when
/// an underscore is anywhere else.
pub fn without_underscores(s: &str) -> Option<String> {
    let b = s.as_bytes();
    for (i, _) in s.match_indices('_') {
        let digit_before = i > 0 && b[i - 1].is_ascii_hexdigit();
        let digit_after = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit);
        if !digit_before || !digit_after {
            return None;
        }
    }
    Some(s.replace('_', ""))
}

/// A float as Python's `repr` prints it: the shortest round-trip digits, in
/// fixed notation for exponents -4..16 (`0.0001`, `1000000000000000.0`),
/// else scientific with a signed two-digit exponent (`1e+16`, `1.5e-07`).
pub fn python_float_repr(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "nan".into()
        } else if f > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits too: `1.5e-7`.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let text = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        format!("{sign}{text}")
    } else {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() { first.to_string() } else { format!("{first}.{rest}") };
        format!("{sign}{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}
