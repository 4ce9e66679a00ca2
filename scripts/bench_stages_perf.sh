#!/usr/bin/env bash
# CPU per row by stage of one whole `host run` (1M rows of the benchmark
# data into the no-op sink, batch 1000), from `perf record` attributed by
# thread: normalize-* and input-reader read and normalize, the main thread
# writes job files (and hashes the input: sha2 symbols), load-worker-* read
# job files back and convert, sink-* lower values into the guest and run it.
# perf's own overhead is in the total. Not part of the test suite.
#
#   scripts/bench_stages_perf.sh [BIN] [FORMAT]   (defaults target/release/host, jsonl)
set -euo pipefail
cd "$(dirname "$0")/.."
rows=1000000
# shellcheck source=scripts/bench-common.sh
. scripts/bench-common.sh
bin=${1:-target/release/host}
format=${2:-jsonl}
work=$(mktemp -d target/bench/stages.XXXXXX)
trap 'rm -rf "$work"' EXIT
perf stat -x, -e task-clock -o "$work/stat" perf record -q -o "$work/perf.data" -F 1999 \
  "$bin" -q run --component target/guests/wasm32-wasip2/release/noop.wasm --input "$data" \
  --pipelines-dir "$work/p" --cache-dir target/bench/cache --batch-size 1000 --loader-file-format "$format"
clock_ms=$(grep task-clock "$work/stat" | cut -d, -f1)
main=$(basename "$bin" | cut -c1-15)
perf report -i "$work/perf.data" --no-children --sort comm,symbol 2>/dev/null | grep -E '^ +[0-9]' |
  awk -v c="$clock_ms" -v main="$main" -v rows="$rows" '
  { p = $1; sub("%", "", p); comm = $2; $1 = ""; $2 = ""; s = $0
    if (s ~ /sha2/) k = "fingerprint (SHA-256)"
    else if (comm ~ /^normalize|^input-reader/) k = "read input + parse + normalize"
    else if (comm == main) k = "write job files (commit thread)"
    else if (comm ~ /^load-worker/ && s ~ /\[k\]/) k = "ledger and job file I/O (kernel)"
    else if (comm ~ /^load-worker/) k = "read back + convert"
    else if (comm ~ /^sink-/ && s ~ /wasm\[|trampoline/) k = "guest code"
    else if (comm ~ /^sink-/) k = "lower into the guest"
    else k = "other (" comm ")"
    t[k] += p }
  END { for (k in t) printf "%-36s %5.1f%% %6.0f ns/row\n", k, t[k], t[k] / 100 * c * 1e6 / rows
        printf "%-36s        %6.0f ns/row\n", "total CPU", c * 1e6 / rows }' | sort -t'%' -k1,1
