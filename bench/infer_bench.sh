#!/usr/bin/env bash
# Fast inference, the hook `make bench` calls (bench/run.sh): sparse kernels
# against the best dense convolution here (oneDNN and ours) on VGG-16's conv
# layers at every granularity and density 0.5/0.3/0.2/0.1, batch 1, at 2 threads
# by wall clock and at 1 thread by CPU time, with the fraction of the sgemm peak
# (bench/conv_vs_onednn.sh; rows in bench/results/conv_speedup.csv). Then, when
# a study folder has infer.csv (make study writes it), images/s dense vs sparse
# of the study's no-loss models (real speed at matched accuracy).
# Default: 2 timed runs per layer, no model training: about 2 minutes with
# BENCH_RT=1 (bench/run.sh), 7 minutes without it on this 2-core machine at load
# 6-11. --full: 5 runs in each of 3 rounds (oneDNN and ours alternating; each
# layer's fastest counts) and the VGG-7 images/s comparison (trains 2 epochs).
# Usage: bench/infer_bench.sh [BUILD_DIR] [--full] [--study DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
full=0
study=study
while [ $# -gt 0 ]; do
    case "$1" in
    --full) full=1; shift ;;
    --study) study=$2; shift 2 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
    esac
done
start=$(date +%s)
if [ "$full" = 1 ]; then
    bash bench/conv_vs_onednn.sh "$build" --repeat 5 --rounds 3
else
    bash bench/conv_vs_onednn.sh "$build" --repeat 2 --no-models
fi
if [ -s "$study/infer.csv" ]; then
    echo
    echo "The study's no-loss models ($study/infer.csv): images/s with dense and with sparse kernels"
    /usr/bin/python3 - "$study/infer.csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("%-9s %4s %8s %7s %7s %6s %8s %10s %8s" % ("gran", "seed", "density", "top1", "engine", "batch",
      "threads", "images/s", "speedup"))
for r in rows:
    print("%-9s %4s %8.4f %6.2f%% %7s %6s %8s %10.0f %7.2fx" % (r["granularity"], r["seed"],
          float(r["density"]), 100 * float(r["top1_infer"]), r["engine"], r["batch"], r["threads"],
          float(r["images_per_s"]), float(r["speedup_vs_dense"])))
EOF
else
    echo
    echo "no $study/infer.csv: run 'make study' for images/s of the study's no-loss models"
fi
echo "infer_bench: $(($(date +%s) - start)) s"
