#!/usr/bin/env bash
# End-to-end benchmark: `host run` into the no-op sink on generated data,
# for jsonl and parquet job files, batch sizes 10 and 1000, workers 1 and 2.
# Prints rows/s, MB/s and peak RSS per case. Not part of the test suite.
#
#   scripts/bench.sh [ROWS]        (default 1000000)
#
# Narrow the matrix with FORMATS, BATCHES and WORKERS, e.g. the 10M-row run:
#   FORMATS=jsonl BATCHES=1000 WORKERS=2 scripts/bench.sh 10000000
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

printf '%-8s %-6s %-8s %12s %10s %10s\n' format batch workers rows/s MB/s peak_MB
for format in ${FORMATS:-jsonl parquet}; do
  for batch in ${BATCHES:-10 1000}; do
    for workers in ${WORKERS:-1 2}; do
      dir=$(mktemp -d target/bench/run.XXXXXX)
      start=$(date +%s.%N)
      /usr/bin/time -f '%M' -o "$dir/rss" "$host" -q run --component "$sink" --input "$data" \
        --pipelines-dir "$dir/p" --cache-dir target/bench/cache --loader-file-format "$format" \
        --batch-size "$batch" --workers "$workers" --file-max-items $(( (rows + workers - 1) / workers ))
      end=$(date +%s.%N)
      secs=$(echo "$end - $start" | bc -l)
      rss_kb=$(tail -n1 "$dir/rss")
      printf '%-8s %-6s %-8s %12.0f %10.1f %10.1f\n' "$format" "$batch" "$workers" \
        "$(echo "$rows / $secs" | bc -l)" "$(echo "$bytes / 1000000 / $secs" | bc -l)" "$(echo "$rss_kb / 1024" | bc -l)"
      rm -rf "$dir"
    done
  done
done
