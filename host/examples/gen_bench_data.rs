//! Writes the benchmark input: JSON Lines rows of 13 fields (ids, strings,
//! floats, ISO timestamps, a bool, one nested object of 3 fields and one list
//! of 3 strings), about 390 bytes each, from a fixed seed, so every run and
//! every tool measures the same bytes.
//!
//! Usage: cargo run --release --example gen_bench_data -- ROWS OUT.jsonl [SEED]

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

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: gen_bench_data ROWS OUT.jsonl [SEED]");
        std::process::exit(2);
    }
    let rows: u64 = args[1].parse().map_err(|_| std::io::Error::other("ROWS must be a number"))?;
    let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(42);
    let mut rng = Rng(seed | 1);
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&args[2])?);
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
