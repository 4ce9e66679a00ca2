#!/usr/bin/env bash
# End-to-end benchmark: `host run` into the no-op sink on generated data,
# for jsonl and parquet job files, batch sizes 10 and 1000, default settings
# otherwise. Prints rows/s, MB/s, peak RSS and CPU utilisation (200% = both
# cores of a 2-core machine busy) per case. Not part of the test suite.
#
#   scripts/bench.sh [ROWS]        (default 1000000)
#
# Narrow the matrix with FORMATS and BATCHES, set WORKERS to pass
# --workers (e.g. "1 2"), e.g. the 10M-row run:
#   FORMATS=jsonl BATCHES=1000 scripts/bench.sh 10000000
# HOST=path/to/host compares another build (same cache, same data).
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
# shellcheck source=scripts/bench-common.sh
. scripts/bench-common.sh
host=${HOST:-target/release/host}
sink=target/guests/wasm32-wasip2/release/noop.wasm
bytes=$(stat -c %s "$data")
$host compile "$sink" --cache-dir target/bench/cache >/dev/null

printf '%-8s %-6s %-8s %12s %10s %10s %6s\n' format batch workers rows/s MB/s peak_MB cpu
for format in ${FORMATS:-jsonl parquet}; do
  for batch in ${BATCHES:-10 1000}; do
    for workers in ${WORKERS:-default}; do
      dir=$(mktemp -d target/bench/run.XXXXXX)
      flags=()
      [ "$workers" = default ] || flags=(--workers "$workers")
      start=$(date +%s.%N)
      /usr/bin/time -f '%M %P' -o "$dir/rss" "$host" -q run --component "$sink" --input "$data" \
        --pipelines-dir "$dir/p" --cache-dir target/bench/cache --loader-file-format "$format" \
        --batch-size "$batch" "${flags[@]}"
      end=$(date +%s.%N)
      secs=$(echo "$end - $start" | bc -l)
      read -r rss_kb cpu < <(tail -n1 "$dir/rss")
      printf '%-8s %-6s %-8s %12.0f %10.1f %10.1f %6s\n' "$format" "$batch" "$workers" \
        "$(echo "$rows / $secs" | bc -l)" "$(echo "$bytes / 1000000 / $secs" | bc -l)" "$(echo "$rss_kb / 1024" | bc -l)" "$cpu"
      rm -rf "$dir"
    done
  done
done
