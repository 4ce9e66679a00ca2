# Sourced by the benchmark scripts: generates the input for ROWS rows (once)
# and builds the host and the no-op sink. Sets $data.
data=target/bench/input-$rows.jsonl
if [ ! -f "$data" ]; then
  mkdir -p target/bench
  cargo run --release --quiet --example gen_bench_data -- "$rows" "$data"
fi
cargo build --release --quiet -p host
cargo build --release --quiet --target wasm32-wasip2 \
  --manifest-path guest-examples/Cargo.toml --target-dir target/guests -p noop
