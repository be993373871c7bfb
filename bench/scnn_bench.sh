#!/usr/bin/env bash
# SCNN model speed: all 13 conv layers of VGG-16 at weight density 0.3 and
# activation density 0.4, --verify off, in every merge window (product, step, row,
# kernel) with fine pruning and the per-weight index, and with kernel pruning and the
# group index. Prints seconds and products simulated per second per mode and appends
# a row each to bench/results/scnn.csv. Target: <= 4.5 s wall with 2
# threads on an otherwise idle 2-core machine (wall time depends on the load: the CPU
# time is printed too).
# Usage: bench/scnn_bench.sh [BUILD_DIR] [THREADS] [MERGES] (e.g. "product kernel")
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
threads=${2:-0}
merges=${3:-product step row kernel}
SG=$PWD/$build/sparsegrain
[ -x "$SG" ] || { echo "build first: make -j2" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
csv=bench/results/scnn.csv
[ -f "$csv" ] || echo "date,commit,machine,threads,load_before,seconds,products,products_per_s,command,cpu_seconds" >"$csv"
machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//') x$(nproc)"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
# wall time depends on what else runs on the machine; CPU time (user + sys) much less
TIMEFORMAT='%R %U %S'
for merge in $merges; do
  for gi in "fine weight" "kernel group"; do
    read -r gran index <<<"$gi"
    cmd=(scnn --net vgg16 --granularity "$gran" --weight-density 0.3 --act-density 0.4 --seed 1
         --merge "$merge" --index "$index" --threads "$threads" --json)
    load=$(cut -d' ' -f1 /proc/loadavg)
    { time SG_NO_PROGRESS=1 "$SG" "${cmd[@]}" >"$out"; } 2>"$out.time"
    read -r wall user sys <"$out.time"
    rm -f "$out.time"
    read -r products refs <<<"$(node -e '
const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
console.log(d.total.products, d.total.memory_refs)' "$out")"
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u + s}')
    rate=$(awk -v p="$products" -v s="$wall" 'BEGIN{printf "%.4g", p / s}')
    echo "VGG-16 conv ($gran, index $index, merge $merge, w 0.3, a 0.4): $wall s wall, $cpu s CPU," \
         "$products products, $rate products/s (load average before the run $load)"
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ),$commit,\"$machine\",$threads,$load,$wall,$products,$rate,\"sparsegrain ${cmd[*]}\",$cpu" >>"$csv"
  done
done
