#!/usr/bin/env bash
# SCNN model speed: all 13 conv layers of VGG-16 at weight density 0.3 (fine) and
# activation density 0.4, --verify off. Prints seconds and products simulated per
# second and appends a row to bench/results/scnn.csv. Target: <= 4.5 s wall with 2
# threads on an otherwise idle 2-core machine (wall time depends on the load: the CPU
# time is printed too).
# Usage: bench/scnn_bench.sh [BUILD_DIR] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
threads=${2:-0}
SG=$PWD/$build/sparsegrain
[ -x "$SG" ] || { echo "build first: make -j2" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cmd=(scnn --net vgg16 --granularity fine --weight-density 0.3 --act-density 0.4 --seed 1
     --threads "$threads" --json)
load=$(cut -d' ' -f1 /proc/loadavg)
# wall time depends on what else runs on the machine; CPU time (user + sys) much less
TIMEFORMAT='%R %U %S'
{ time SG_NO_PROGRESS=1 "$SG" "${cmd[@]}" >"$out"; } 2>"$out.time"
read -r wall user sys <"$out.time"
rm -f "$out.time"
read -r products refs <<<"$(node -e '
const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
console.log(d.total.products, d.total.memory_refs)' "$out")"
secs=$wall
cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u + s}')
rate=$(awk -v p="$products" -v s="$secs" 'BEGIN{printf "%.4g", p / s}')
echo "VGG-16 conv layers (fine, w 0.3, a 0.4): $secs s wall, $cpu s CPU, $products products," \
     "$rate products/s (memory refs $refs; load average before the run $load)"
csv=bench/results/scnn.csv
[ -f "$csv" ] || echo "date,commit,machine,threads,load_before,seconds,products,products_per_s,command,cpu_seconds" >"$csv"
machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//') x$(nproc)"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ),$commit,\"$machine\",$threads,$load,$secs,$products,$rate,\"sparsegrain ${cmd[*]}\",$cpu" >>"$csv"
