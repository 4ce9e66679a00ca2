#!/usr/bin/env bash
# Assembles a WIT directory for a sink whose world imports wasi 0.2
# interfaces (wasi:http for a sink that calls an API) besides ours:
#   OUT/world.wit                        (WORLD.wit, when given)
#   OUT/deps/destination/destination.wit (this repo's wit/destination.wit)
#   OUT/deps/*.wit                       (the wasi 0.2 packages)
# The wasi packages are copied from the sources of the wasmtime-wasi-http
# crate the host is built with, so the guest imports exactly what the host
# implements; nothing is vendored. Needs cargo, with the host's dependencies
# fetched (any build of the host did that), and python3.
#
#   scripts/wit-deps.sh OUT_DIR [WORLD.wit]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: scripts/wit-deps.sh OUT_DIR [WORLD.wit]}
world=${2:-}
# Only this platform's packages: the ones a build downloaded.
triple=$(rustc -vV | sed -n 's/^host: //p')
manifest=$(cargo metadata --format-version 1 --offline --filter-platform "$triple" \
  --manifest-path "$root/Cargo.toml" |
  python3 -c 'import json, sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "wasmtime-wasi-http"))')
mkdir -p "$out/deps/destination"
cp "$root/wit/destination.wit" "$out/deps/destination/destination.wit"
cp "$(dirname "$manifest")"/wit/deps/*.wit "$out/deps/"
if [ -n "$world" ]; then
  cp "$world" "$out/world.wit"
fi
