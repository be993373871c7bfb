#!/usr/bin/env bash
# Validation of the model as SCNN: SCNN over a dense accelerator of the same size
# (--arch dcnn: same PE grid, multipliers and buffers, dense dataflow) on AlexNet,
# VGG-16 and GoogLeNet, with weights and activations swept together from 1.0 to
# 0.1 (first layer dense, as an image input is). Speed-up = DCNN cycles / SCNN
# cycles, energy ratio = DCNN energy / SCNN energy. DCNN's counts do not depend on
# the data, so it runs once per network. The "rest" columns leave the first layer
# out (a dense image input, the same work on both; on AlexNet a stride-4 11x11
# layer whose Cartesian product wastes 15/16 of the pairs in both designs). Rows go
# to bench/results/scnn_validate.csv.
# Usage: bench/scnn_validate.sh [BUILD_DIR] [DENSITIES] [NETS...]
# Environment: THREADS (1), SEED (1).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
dens=${2:-"1.0 0.8 0.6 0.5 0.4 0.3 0.2 0.1"}
shift $(($# < 2 ? $# : 2))
nets=("$@")
[ ${#nets[@]} -gt 0 ] || nets=(alexnet vgg16 googlenet)
threads=${THREADS:-1}
seed=${SEED:-1}
SG=$PWD/$build/sparsegrain
[ -x "$SG" ] || { echo "build first: make -j2" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p bench/results
csv=bench/results/scnn_validate.csv
[ -f "$csv" ] || echo "date,commit,net,density,scnn_cycles,dcnn_cycles,speedup,scnn_energy_pj,dcnn_energy_pj,energy_ratio,scnn_dram_bytes,dcnn_dram_bytes,speedup_rest,energy_ratio_rest" >"$csv"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
for net in "${nets[@]}"; do
    SG_NO_PROGRESS=1 "$SG" scnn --net "$net" --arch dcnn --seed "$seed" --threads "$threads" \
        --json >"$tmp/d.json"
    for d in $dens; do
        SG_NO_PROGRESS=1 "$SG" scnn --net "$net" --weight-density "$d" --act-density "$d" \
            --seed "$seed" --threads "$threads" --json >"$tmp/s.json"
        node -e '
const fs = require("fs");
const S = JSON.parse(fs.readFileSync(process.argv[1], "utf8")), s = S.total;
const D = JSON.parse(fs.readFileSync(process.argv[2], "utf8")), d = D.total;
const rest = (L, f) => L.layers.slice(1).reduce((a, l) => a + l[f], 0);
const [now, commit, net, dens, out] = process.argv.slice(3);
const r = [now, commit, net, dens, s.cycles, d.cycles, (d.cycles / s.cycles).toFixed(3),
  s.energy_pj.toFixed(0), d.energy_pj.toFixed(0), (d.energy_pj / s.energy_pj).toFixed(3),
  s.refs.dram, d.refs.dram, (rest(D, "cycles") / rest(S, "cycles")).toFixed(3),
  (rest(D, "energy_pj") / rest(S, "energy_pj")).toFixed(3)];
fs.appendFileSync(out, r.join(",") + "\n");
console.log(net, dens, "speed-up", r[6], "energy", r[9], "without the first layer", r[12], r[13]);
' "$tmp/s.json" "$tmp/d.json" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$commit" "$net" "$d" "$csv"
    done
done
