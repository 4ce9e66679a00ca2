//! The benchmark input: JSON Lines rows of 13 fields (ids, strings, floats,
//! ISO timestamps, a bool, one nested object of 3 fields and one list of 3
//! strings), about 396 bytes each, from a fixed seed, so every run and every
//! tool measures the same bytes. Shared by `benches/` and the
//! `gen_bench_data` example (which the shell scripts call).

use std::io::{BufWriter, Write};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: fast, deterministic, good enough for test data.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn word(&mut self, len: usize) -> String {
        (0..len).map(|_| char::from(b'a' + self.below(26) as u8)).collect()
    }
}

const COUNTRIES: [&str; 8] = ["DE", "US", "FR", "PL", "JP", "BR", "IN", "NG"];

/// Writes `rows` generated rows to `path` (seed 42 unless given).
pub fn generate(rows: u64, path: &std::path::Path, seed: u64) -> std::io::Result<()> {
    let mut rng = Rng(seed | 1);
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    for id in 0..rows {
        let day = 1 + rng.below(28);
        let (h, m, s) = (rng.below(24), rng.below(60), rng.below(60));
        writeln!(
            out,
            concat!(
                r#"{{"id":{},"user_id":{},"name":"{} {}","email":"{}@{}.example","#,
                r#""score":{:.4},"amount":{:.2},"created_at":"2024-03-{:02}T{:02}:{:02}:{:02}Z","#,
                r#""updated_at":"2024-04-{:02}T{:02}:{:02}:{:02}+02:00","active":{},"country":"{}","#,
                r#""address":{{"city":"{}","zip":"{:05}","lat":{:.5}}},"tags":["{}","{}","{}"],"note":"{}"}}"#
            ),
            id,
            rng.below(1_000_000),
            rng.word(6),
            rng.word(9),
            rng.word(8),
            rng.word(7),
            rng.below(1_000_000) as f64 / 1000.0,
            rng.below(10_000_000) as f64 / 100.0,
            day,
            h,
            m,
            s,
            day,
            m % 24,
            s,
            h,
            rng.below(2) == 0,
            COUNTRIES[rng.below(8) as usize],
            rng.word(10),
            rng.below(100_000),
            rng.below(180_000_000) as f64 / 1_000_000.0 - 90.0,
            rng.word(5),
            rng.word(6),
            rng.word(4),
            rng.word(60),
        )?;
    }
    out.flush()
}

/// `target/bench/input-<rows>.jsonl`, generated on first use.
#[allow(dead_code)] // not every bench uses it
pub fn input(rows: u64) -> std::io::Result<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("input-{rows}.jsonl"));
    if !path.exists() {
        let tmp = dir.join(format!(".input-{rows}.jsonl.tmp"));
        generate(rows, &tmp, 42)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(path)
}
