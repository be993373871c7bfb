#!/usr/bin/env bash
# The granularity comparison with REAL activations: a trained model is pruned
# one-shot (a copy, no retraining, so accuracy is not matched) to the same weight
# density at fine, vector and kernel granularity, run on real test images, and
# every conv layer simulated in both accumulation modes and fetch orders.
# Usage: bench/scnn_compare_model.sh MODEL.sgm [DATA] [IMAGES] [DENSITY] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: bench/scnn_compare_model.sh MODEL.sgm [DATA] [IMAGES] [DENSITY] [BUILD_DIR]}
data=${2:-mnist}
images=${3:-16}
wd=${4:-0.35}
SG=$PWD/${5:-build}/sparsegrain
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf "%-8s %-8s %10s %10s %14s %14s %14s\n" accum fetch fine/vec fine/kern "refs fine" \
       "refs vector" "refs kernel"
for acc in product merged; do
    for fetch in stream aligned; do
        for g in fine vector kernel; do
            SG_NO_PROGRESS=1 "$SG" scnn "$model" --data "$data" --images "$images" --granularity "$g" \
                --weight-density "$wd" --accumulate "$acc" --fetch "$fetch" --json >"$tmp/$g.json"
        done
        node -e '
const r = g => JSON.parse(require("fs").readFileSync(process.argv[1] + "/" + g + ".json", "utf8")).total;
const f = r("fine"), v = r("vector"), k = r("kernel"), p = (a, b) => (a / b).toFixed(3);
console.log([process.argv[2].padEnd(8), process.argv[3].padEnd(8),
  p(f.memory_refs, v.memory_refs).padStart(10), p(f.memory_refs, k.memory_refs).padStart(10),
  String(f.memory_refs).padStart(14), String(v.memory_refs).padStart(14),
  String(k.memory_refs).padStart(14)].join(" "))' "$tmp" "$acc" "$fetch"
    done
done
