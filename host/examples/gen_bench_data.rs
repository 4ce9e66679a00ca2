//! Writes the benchmark input (see `benches/data.rs`).
//!
//! Usage: cargo run --release --example gen_bench_data -- ROWS OUT.jsonl [SEED]

#[path = "../benches/data.rs"]
mod data;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: gen_bench_data ROWS OUT.jsonl [SEED]");
        std::process::exit(2);
    }
    let rows: u64 = args[1].parse().map_err(|_| std::io::Error::other("ROWS must be a number"))?;
    let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(42);
    data::generate(rows, std::path::Path::new(&args[2]), seed)
}
