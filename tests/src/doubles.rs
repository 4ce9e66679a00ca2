//! Random doubles written as JSON number texts, in the forms real input
//! takes: shortest round-trip digits, 17 significant digits, long
//! mantissas (25 digits, more than a double holds), plain decimals,
//! upper-case exponents and explicit `+` signs. Every text has a fraction
//! or an exponent, so JSON (and Python's `json.loads`) reads it as a float.
//!
//! The value a text stands for is Rust's `str::parse::<f64>`, which is
//! correctly rounded: the oracle, independent of every JSON parser. Used
//! by the end-to-end property test (`tests/all/doubles.rs`) and by the
//! host's own unit tests of its JSON readers (included by path, so the two
//! share one generator). No dependency beyond `std`.

/// A small deterministic generator (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Values every run must include: zeros of both signs, the smallest and
/// largest subnormals, the smallest normal, the extremes, and values next
/// to powers of ten and two where readers tend to slip.
pub const SPECIAL: [f64; 16] = [
    0.0,
    -0.0,
    5e-324,
    -5e-324,
    f64::from_bits(0x000F_FFFF_FFFF_FFFF), // the largest subnormal
    f64::MIN_POSITIVE,
    f64::MAX,
    f64::MIN,
    f64::EPSILON,
    1.0,
    -1.0,
    0.1,
    9_007_199_254_740_993.0,
    1e23,
    8.988_465_674_311_579e307,
    f64::from_bits(0x0010_0000_0000_0001), // just above the smallest normal
];

/// A random finite double: a random bit pattern most of the time (every
/// exponent equally likely), else a special value or a "human" decimal.
pub fn double(rng: &mut Rng) -> f64 {
    match rng.below(10) {
        0 => SPECIAL[rng.below(SPECIAL.len() as u64) as usize],
        1 | 2 => {
            // Few digits and a small exponent, as prices and measures are.
            let digits = rng.below(10_000_000) as f64;
            let scale = 10f64.powi(rng.below(8) as i32);
            let sign = if rng.below(2) == 0 { 1.0 } else { -1.0 };
            sign * digits / scale
        }
        _ => loop {
            let f = f64::from_bits(rng.next_u64());
            if f.is_finite() {
                break f;
            }
        },
    }
}

/// `f` written in one of the forms (chosen by `rng`); never NaN or
/// infinity (the caller passes finite values).
pub fn text_of(rng: &mut Rng, f: f64) -> String {
    let text = match rng.below(6) {
        0 | 1 => format!("{f:?}"),
        2 => format!("{f:.16e}"),
        3 => format!("{f:.24e}"),
        4 if f != 0.0 && (1e-6..1e15).contains(&f.abs()) => format!("{f:.20}"),
        _ => format!("{f:e}"),
    };
    restyle(rng, text)
}

/// A random decimal that no double holds exactly: 17 to 30 significant
/// digits and an exponent anywhere from underflow to near overflow.
pub fn long_mantissa(rng: &mut Rng) -> String {
    let digits = 17 + rng.below(14) as usize;
    let mut text = String::with_capacity(digits + 8);
    if rng.below(2) == 0 {
        text.push('-');
    }
    text.push(char::from(b'1' + rng.below(9) as u8));
    text.push('.');
    for _ in 1..digits {
        text.push(char::from(b'0' + rng.below(10) as u8));
    }
    let exponent = rng.below(650) as i64 - 340;
    text.push_str(&format!("e{exponent}"));
    restyle(rng, text)
}

/// Now and then an upper-case `E`, or a `+` before a non-negative exponent.
fn restyle(rng: &mut Rng, text: String) -> String {
    let Some(at) = text.find('e') else { return text };
    let (mantissa, exponent) = text.split_at(at);
    let exponent = &exponent[1..];
    let e = if rng.below(3) == 0 { "E" } else { "e" };
    let plus = if !exponent.starts_with('-') && rng.below(2) == 0 { "+" } else { "" };
    format!("{mantissa}{e}{plus}{exponent}")
}

/// A random text of either kind and the bits of the double it stands for
/// (`str::parse::<f64>`); texts that overflow to infinity are skipped.
pub fn sample(rng: &mut Rng) -> (String, u64) {
    loop {
        let text = if rng.below(4) == 0 {
            long_mantissa(rng)
        } else {
            let f = double(rng);
            text_of(rng, f)
        };
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => return (text, f.to_bits()),
            _ => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_is_a_json_float() {
        let mut rng = Rng(7);
        for _ in 0..100_000 {
            let (text, _) = sample(&mut rng);
            let body = text.strip_prefix('-').unwrap_or(&text);
            assert!(body.contains(['.', 'e', 'E']), "{text}");
            assert!(!body.starts_with('.') && !body.starts_with('+'), "{text}");
            assert!(!(body.starts_with('0') && body.as_bytes().get(1).is_some_and(u8::is_ascii_digit)), "{text}");
        }
    }
}
