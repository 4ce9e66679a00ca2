#!/usr/bin/env bash
# The same work in dlt 1.31 (installed from PyPI into target/bench/dlt-venv),
# a no-op @dlt.destination(batch_size=...) at dlt's defaults, so both tools
# are measured on one machine in one run. Prints rows/s, peak RSS and CPU
# utilisation (200% = both cores of a 2-core machine), then
# the ratio against `host run` into the no-op sink. Not part of the tests.
#
#   scripts/bench_dlt.sh [ROWS] [BATCH]     (defaults 100000, 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-100000}
batch=${2:-1000}
venv=target/bench/dlt-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "dlt==1.31.*" pyarrow
fi
# shellcheck source=scripts/bench-common.sh
. scripts/bench-common.sh

for format in typed-jsonl parquet; do
  dir=$(mktemp -d target/bench/dlt.XXXXXX)
  cat > "$dir/run.py" <<PY
import json, sys, time, dlt

@dlt.destination(batch_size=$batch, loader_file_format="$format")
def noop(items, table):
    pass

def rows():
    with open("$data") as f:
        for line in f:
            yield json.loads(line)

p = dlt.pipeline("bench", destination=noop, pipelines_dir="$dir/p")
t = time.time()
p.run(rows(), table_name="events")
print(f"{$rows / (time.time() - t):.0f}")
PY
  dlt_rate=$(/usr/bin/time -f '%M %P' -o "$dir/rss" "$venv/bin/python" "$dir/run.py" | tail -n1)
  read -r dlt_kb dlt_cpu < <(tail -n1 "$dir/rss")
  dlt_rss=$(( dlt_kb / 1024 ))
  ours_format=${format#typed-}
  start=$(date +%s.%N)
  /usr/bin/time -f '%M %P' -o "$dir/rss2" target/release/host -q run \
    --component target/guests/wasm32-wasip2/release/noop.wasm --input "$data" \
    --pipelines-dir "$dir/ours" --loader-file-format "$ours_format" --batch-size "$batch"
  end=$(date +%s.%N)
  ours_rate=$(echo "$rows / ($end - $start)" | bc -l)
  read -r ours_kb ours_cpu < <(tail -n1 "$dir/rss2")
  ours_rss=$(( ours_kb / 1024 ))
  printf '%-12s dlt %8.0f rows/s %5d MB %5s CPU | dlthost %8.0f rows/s %5d MB %5s CPU | ratio %.1fx\n' \
    "$format" "$dlt_rate" "$dlt_rss" "$dlt_cpu" "$ours_rate" "$ours_rss" "$ours_cpu" "$(echo "$ours_rate / $dlt_rate" | bc -l)"
  rm -rf "$dir"
done
