#!/usr/bin/env bash
# One-command setup and demo: installs the wasm32-wasip2 target if missing,
# builds the host and the example sinks, and loads the bundled sample file
# into the `print` sink.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
cargo build --release -p host
cargo build --release --target wasm32-wasip2 \
  --manifest-path guest-examples/Cargo.toml --target-dir target/guests
target/release/host run \
  --component target/guests/wasm32-wasip2/release/print.wasm \
  --input guest-examples/print/sample.jsonl \
  --pipelines-dir target/example-pipelines
