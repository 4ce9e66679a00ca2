//! Every double arrives exactly as it went in: a property test over about
//! a million random doubles per configuration (jsonl job files at batch
//! sizes 0, 10 and 1000, and parquet job files), compared bit for bit.
//!
//! The input texts come from `e2e::doubles` (shortest, 17-digit and long
//! mantissas, plain decimals, `E` and `e+` exponents, `-0.0`, subnormals,
//! the extremes). The expected bits are Rust's correctly rounded
//! `str::parse::<f64>` of each text, which is how Python's `json.loads`
//! (and so dlt) reads it. The capture sink reports each double it receives
//! as the hex of its bits (`CAPTURE_DOUBLES=bits`), so no decimal text is
//! parsed on the way out.
//!
//! `DOUBLES_ROWS` (rows of 64 doubles; default 16,384, about 1M doubles)
//! and `DOUBLES_SEED` run a larger or another seeded pass.

use e2e::doubles::{Rng, sample};
use e2e::{Scratch, rows_of, stderr};

const COLUMNS: usize = 64;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The input file's text and the expected bits, row by row.
fn input(rows: usize, seed: u64) -> (String, Vec<[u64; COLUMNS]>) {
    let mut rng = Rng(seed);
    let mut text = String::with_capacity(rows * COLUMNS * 28);
    let mut expected = Vec::with_capacity(rows);
    for _ in 0..rows {
        let mut bits = [0u64; COLUMNS];
        text.push('{');
        for (c, slot) in bits.iter_mut().enumerate() {
            let (number, b) = sample(&mut rng);
            if c > 0 {
                text.push(',');
            }
            text.push_str(&format!("\"c{c}\":{number}"));
            *slot = b;
        }
        text.push_str("}\n");
        expected.push(bits);
    }
    (text, expected)
}

#[test]
fn a_million_doubles_arrive_bit_for_bit_in_every_job_format_and_batch_size() {
    let rows = setting("DOUBLES_ROWS", 16_384) as usize;
    let seed = setting("DOUBLES_SEED", 0xD0_0B1E5);
    let (text, expected) = input(rows, seed);
    let configurations: [&[&str]; 4] = [
        &["--loader-file-format", "jsonl", "--batch-size", "0"],
        &["--loader-file-format", "jsonl", "--batch-size", "10"],
        &["--loader-file-format", "jsonl", "--batch-size", "1000"],
        &["--loader-file-format", "parquet", "--batch-size", "1000"],
    ];
    for config in configurations {
        let s = Scratch::new();
        let input = s.file("doubles.jsonl", &text);
        let mut args = vec!["--input", input.to_str().expect("utf8"), "--env", "CAPTURE_DOUBLES=bits"];
        args.extend_from_slice(config);
        let out = s.run_capture(&args);
        assert!(out.status.success(), "{config:?}: {}", stderr(&out));
        let got = rows_of(&s.captured(), "doubles");
        assert_eq!(got.len(), rows, "{config:?}: every row");
        let mut wrong = Vec::new();
        for (r, (row, want)) in got.iter().zip(&expected).enumerate() {
            for (c, bits) in want.iter().enumerate() {
                let cell = &row[format!("c{c}").as_str()];
                let seen = cell.as_str().and_then(|h| u64::from_str_radix(h, 16).ok());
                if seen != Some(*bits) {
                    wrong
                        .push(format!("row {r} c{c}: sent {:e} ({bits:016x}), received {cell}", f64::from_bits(*bits)));
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "{config:?}: {} of {} doubles changed (seed {seed}), first: {:#?}",
            wrong.len(),
            rows * COLUMNS,
            &wrong[..wrong.len().min(10)]
        );
    }
}
