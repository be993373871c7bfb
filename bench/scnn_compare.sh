#!/usr/bin/env bash
# The paper's comparison on the SCNN model: on-chip memory references of fine,
# vector and kernel pruning at matched density (weights 0.35, activations 0.4 by
# default) on all five ImageNet shape sets, in both accumulation modes (and both
# fetch orders), with the ratios fine/vector and fine/kernel. Writes
# bench/results/scnn_compare.csv (one row per run) and prints a summary.
# Usage: bench/scnn_compare.sh [BUILD_DIR] [WEIGHT_DENSITY] [ACT_DENSITY] [NETS...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
wd=${2:-0.35}
ad=${3:-0.4}
shift $(($# < 3 ? $# : 3))
nets=("$@")
[ ${#nets[@]} -gt 0 ] || nets=(alexnet vgg16 googlenet resnet50 densenet121)
SG=$PWD/$build/sparsegrain
[ -x "$SG" ] || { echo "build first: make -j2" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
csv=bench/results/scnn_compare.csv
[ -f "$csv" ] || echo "date,commit,net,granularity,accumulate,fetch,weight_density,act_density,cycles,products,memory_refs,acc_write,weight_reads,energy_pj,dram_bytes" >"$csv"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
printf "%-12s %-8s %-8s %10s %10s %16s %16s %16s %8s %8s\n" net accum fetch "fine/vec" "fine/kern" \
       "refs fine" "refs vector" "refs kernel" "E f/v" "E f/k"
for net in "${nets[@]}"; do
    for acc in product merged; do
        for fetch in stream aligned; do
            for g in fine vector kernel; do
                f="$tmp/$net-$acc-$fetch-$g.json"
                SG_NO_PROGRESS=1 "$SG" scnn --net "$net" --granularity "$g" --weight-density "$wd" \
                    --act-density "$ad" --accumulate "$acc" --fetch "$fetch" --json >"$f"
                node -e '
const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")), t = d.total;
console.log([process.argv[2], process.argv[3], process.argv[4], process.argv[5], process.argv[6],
  process.argv[7], process.argv[8], t.cycles, t.products, t.memory_refs, t.refs.acc_write,
  t.refs.weight, t.energy_pj, t.refs.dram].join(","))' "$f" "$now" "$commit" "$net" "$g" "$acc" \
                    "$fetch" "$wd,$ad" >>"$csv"
            done
            node -e '
const r = g => JSON.parse(require("fs").readFileSync(process.argv[1] + g + ".json", "utf8")).total;
const f = r("fine"), v = r("vector"), k = r("kernel");
const p = (a, b) => (a / b).toFixed(3);
console.log([process.argv[2].padEnd(12), process.argv[3].padEnd(8), process.argv[4].padEnd(8),
  p(f.memory_refs, v.memory_refs).padStart(10), p(f.memory_refs, k.memory_refs).padStart(10),
  String(f.memory_refs).padStart(16), String(v.memory_refs).padStart(16),
  String(k.memory_refs).padStart(16), p(f.energy_pj, v.energy_pj).padStart(8),
  p(f.energy_pj, k.energy_pj).padStart(8)].join(" "))' "$tmp/$net-$acc-$fetch-" "$net" "$acc" "$fetch"
        done
    done
done
