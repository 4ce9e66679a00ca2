//! Calendar arithmetic and the text forms of dates, times and timestamps,
//! in one place below every layer that reads or writes them: the input's
//! typed values print as Python does, the normalizer reads dates, and job
//! files write them (RFC 3339 UTC with six fraction digits).

use chrono::{DateTime, NaiveDate};

/// RFC 3339 UTC with exactly six fraction digits. Hand-formatted: this runs
/// for every timestamp cell, and chrono's formatter is several times slower.
pub fn format_timestamp(us: i64) -> String {
    let mut buf = [0u8; 29];
    match timestamp_digits(us, &mut buf) {
        Some(quoted) => String::from_utf8_lossy(&quoted[1..quoted.len() - 1]).into_owned(),
        None => DateTime::from_timestamp_micros(us)
            .map_or_else(|| us.to_string(), |t| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()),
    }
}

/// `"YYYY-MM-DDTHH:MM:SS.ffffffZ"` (quoted) in `buf`, for years 0–9999;
/// `None` outside them.
#[inline]
pub fn timestamp_digits(us: i64, buf: &mut [u8; 29]) -> Option<&[u8]> {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    if !(0..=9999).contains(&y) {
        return None;
    }
    fn put(buf: &mut [u8], mut v: i64) {
        for b in buf.iter_mut().rev() {
            *b = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    *buf = *b"\"0000-00-00T00:00:00.000000Z\"";
    put(&mut buf[1..5], y);
    put(&mut buf[6..8], i64::from(m));
    put(&mut buf[9..11], i64::from(d));
    put(&mut buf[12..14], rem / 3600);
    put(&mut buf[15..17], rem / 60 % 60);
    put(&mut buf[18..20], rem % 60);
    put(&mut buf[21..27], micros);
    Some(&buf[..])
}

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's algorithm.
#[inline]
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `YYYY-MM-DD`.
pub fn format_date(days: i32) -> String {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|e| e.checked_add_signed(chrono::Duration::days(i64::from(days))))
        .map_or_else(|| days.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

/// `HH:MM:SS.ffffff`.
pub fn format_time(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    format!("{:02}:{:02}:{:02}.{:06}", secs / 3600, (secs / 60) % 60, secs % 60, us.rem_euclid(1_000_000))
}

/// A leap year of the proleptic Gregorian calendar.
#[inline]
pub fn is_leap(y: i32) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// Days since 1970-01-01 of a valid calendar date (years 1–9999).
#[inline]
pub fn days_from_civil(y: i32, m: u32, d: u32) -> Option<i64> {
    const DAYS_IN_MONTH: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let month_days = DAYS_IN_MONTH[m as usize - 1] + u32::from(m == 2 && is_leap(y));
    if d > month_days {
        return None;
    }
    // Howard Hinnant's days_from_civil, in unsigned arithmetic: from year
    // 1 on, the shifted year (March-based) is never negative.
    let y = y as u32 - u32::from(m <= 2);
    let (era, yoe) = (y / 400, y % 400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(i64::from(era) * 146_097 + i64::from(doe) - 719_468)
}

/// Microseconds since the epoch of `YYYY-MM-DDTHH:MM:SS.ffffffZ` exactly
/// as [`timestamp_digits`] writes it (unquoted), for years 1–9999 and
/// seconds below 60; `None` for any other text (a caller falls back to a
/// full RFC 3339 parser, which also knows leap seconds and offsets).
#[inline]
pub fn parse_timestamp_digits(s: &[u8]) -> Option<i64> {
    let s: &[u8; 27] = s.try_into().ok()?;
    let layout = b"0000-00-00T00:00:00.000000Z";
    let mut digits = [0u32; 27];
    for (i, (&b, &l)) in s.iter().zip(layout).enumerate() {
        if l == b'0' {
            if !b.is_ascii_digit() {
                return None;
            }
            digits[i] = u32::from(b - b'0');
        } else if b != l {
            return None;
        }
    }
    let num = |from: usize, to: usize| digits[from..to].iter().fold(0u32, |n, d| n * 10 + d);
    let days = days_from_civil(i32::try_from(num(0, 4)).ok()?, num(5, 7), num(8, 10))?;
    let (h, m, sec) = (num(11, 13), num(14, 16), num(17, 19));
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    let secs = days * 86_400 + i64::from(h * 3600 + m * 60 + sec);
    Some(secs * 1_000_000 + i64::from(num(20, 26)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast parse agrees with chrono on what the writer writes, across
    /// the whole range, and refuses what it does not handle.
    #[test]
    fn timestamp_digits_parse_back_like_chrono() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let (lo, hi) = (-62_135_596_800_000_000i64, 253_402_300_799_999_999i64);
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let us = match i % 4 {
                0 => lo + (x % (hi - lo) as u64) as i64,
                1 => (x % 4_000_000_000_000_000) as i64 - 1_000_000_000_000_000,
                2 => lo + (i as i64),
                _ => hi - (i as i64),
            };
            let mut buf = [0u8; 29];
            let text = timestamp_digits(us, &mut buf).expect("years 1-9999");
            let inner = &text[1..28];
            let chrono = DateTime::parse_from_rfc3339(std::str::from_utf8(inner).expect("utf8"))
                .expect("rfc3339")
                .timestamp_micros();
            assert_eq!(parse_timestamp_digits(inner), Some(chrono), "{}", String::from_utf8_lossy(inner));
            assert_eq!(chrono, us);
        }
        for other in [
            "2024-01-02T03:04:05.000001+00:00",
            "2024-01-02T03:04:05Z",
            "2024-01-02T23:59:60.000000Z",
            "2024-02-30T00:00:00.000000Z",
            "0000-01-01T00:00:00.000000Z",
            "2024-01-02 03:04:05.000001Z",
            "2024-01-02T24:00:00.000000Z",
            "2024-0a-02T03:04:05.000001Z",
        ] {
            assert_eq!(parse_timestamp_digits(other.as_bytes()), None, "{other}");
        }
    }

    #[test]
    fn timestamps_format_like_chrono() {
        for us in
            [0i64, -1, 1_704_164_645_000_001, 951_782_400_000_000, -62_135_596_800_000_000, 253_402_300_799_999_999]
        {
            let want =
                DateTime::from_timestamp_micros(us).expect("in range").format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
            assert_eq!(format_timestamp(us), want, "{us}");
        }
    }

    /// Every date of years 1–9999 is one day after the one before it, from
    /// 0001-01-01 (719,162 days before 1970), and no other date is valid.
    #[test]
    fn days_from_civil_counts_every_day() {
        let mut expected = -719_162;
        for y in 1..=9999 {
            for m in 1..=12 {
                for d in 1..=31 {
                    let valid = chrono::NaiveDate::from_ymd_opt(y, m, d).is_some();
                    assert_eq!(days_from_civil(y, m, d), valid.then_some(expected), "{y}-{m}-{d}");
                    expected += i64::from(valid);
                }
                assert_eq!(days_from_civil(y, m, 0), None);
            }
            assert_eq!(days_from_civil(y, 0, 1), None);
            assert_eq!(days_from_civil(y, 13, 1), None);
        }
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(0, 1, 1), None);
        assert_eq!(days_from_civil(10_000, 1, 1), None);
    }
}
