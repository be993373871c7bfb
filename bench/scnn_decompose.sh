#!/usr/bin/env bash
# The third finding decomposed: on-chip memory references (SRAM accesses, and bits
# moved), partial-sum buffer accesses and energy of fine, vector and kernel
# pruning at matched density on the five ImageNet shape sets, with the dataflow
# mechanisms added one at a time (cumulative):
#   plain     --merge product --index weight   (SCNN as published)
#   +row      --merge row     --index weight   (kernel-major loop, row window)
#   +kernel   --merge kernel  --index weight   (whole-kernel window)
#   +group    --merge kernel  --index group    (one index per kept row / kernel)
# Every run is one JSON; rows go to bench/results/scnn_decompose.csv (network
# totals) and bench/results/scnn_decompose_layers.csv (per layer, VGG-16).
# Usage: bench/scnn_decompose.sh [BUILD_DIR] [SEEDS] [NETS...]
#   e.g. bench/scnn_decompose.sh build "1 2 3" vgg16 alexnet
# Environment: WD (weight density, 0.35), AD (activation density, 0.4), THREADS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
seeds=${2:-"1 2 3"}
shift $(($# < 2 ? $# : 2))
nets=("$@")
[ ${#nets[@]} -gt 0 ] || nets=(alexnet vgg16 googlenet resnet50 densenet121)
wd=${WD:-0.35}
ad=${AD:-0.4}
threads=${THREADS:-2}
SG=$PWD/$build/sparsegrain
[ -x "$SG" ] || { echo "build first: make -j2" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p bench/results
csv=bench/results/scnn_decompose.csv
lcsv=bench/results/scnn_decompose_layers.csv
head="date,commit,net,layer,granularity,step,seed,weight_density,act_density,cycles,products,memory_refs,memory_bits,psum_refs,acc_write,weight_index,act,energy_pj,psum_pj,dram_bytes"
[ -f "$csv" ] || echo "$head" >"$csv"
[ -f "$lcsv" ] || echo "$head" >"$lcsv"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
steps=("plain:product:weight" "row:row:weight" "kernel:kernel:weight" "group:kernel:group")
for net in "${nets[@]}"; do
    for seed in $seeds; do
        for st in "${steps[@]}"; do
            IFS=: read -r name merge index <<<"$st"
            for g in fine vector kernel; do
                f="$tmp/r.json"
                SG_NO_PROGRESS=1 "$SG" scnn --net "$net" --granularity "$g" --weight-density "$wd" \
                    --act-density "$ad" --seed "$seed" --merge "$merge" --index "$index" \
                    --threads "$threads" --json >"$f"
                now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
                node -e '
const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const [now, commit, net, g, step, seed, wd, ad, out, lout] = process.argv.slice(2);
const row = (layer, t) => [now, commit, net, layer, g, step, seed, wd, ad, t.cycles, t.products,
  t.memory_refs, t.memory_bits, t.psum_refs, t.refs.acc_write, t.refs.weight_index, t.refs.act,
  t.energy_pj, t.energy.psum, t.refs.dram].join(",") + "\n";
const fs = require("fs");
fs.appendFileSync(out, row("total", d.total));
if (net === "vgg16") for (const l of d.layers) fs.appendFileSync(lout, row(l.name, l));
' "$f" "$now" "$commit" "$net" "$g" "$name" "$seed" "$wd" "$ad" "$csv" "$lcsv"
                echo "$net seed $seed $g $name done" >&2
            done
        done
    done
done
