#!/usr/bin/env bash
# Pruning speed: VGG-16's 138M weights at density 0.3 per layer, every granularity,
# sparsegrain against memcpy of the same bytes and against PyTorch (torch.nn.utils.prune
# and equivalent tensor code) in the same run. "x memcpy" is against a one-thread
# memcpy; "x 2t cpy" against a memcpy split over the same threads as the pruning.
# Appends rows to bench/results/prune.csv.
# BENCH_RT=1 runs both at real-time priority on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
threads=2 reps=3
rt=""
[ "${BENCH_RT:-0}" = 1 ] && command -v chrt >/dev/null && rt="chrt -f 20"
make -s "$build/libsparsegrain.a"
cc -O2 -fopenmp -Iinclude -Isrc bench/prune_bench.c "$build/libsparsegrain.a" -lprotobuf-c -lcjson -lz -lpng -lm -ldl -o "$build/prune_bench"
sg=$($rt "$build/prune_bench" $threads $reps)
pt=$(OMP_NUM_THREADS=$threads $rt /usr/bin/python3 bench/torch_prune.py $threads $reps)
echo "VGG-16 weights (138M), density 0.3 per layer, $threads threads, best of $reps"
printf "%-10s %10s %10s %9s %10s %8s\n" granularity sparsegrain "x memcpy" "x ${threads}t cpy" PyTorch speedup
f=bench/results/prune.csv
[ -s $f ] || echo "date,commit,machine,threads,granularity,sparsegrain_s,memcpy_s,x_memcpy,pytorch_s,speedup" > $f
echo "$sg" | tail -n +2 | while IFS=, read -r g s c ratio tratio; do
    p=$(echo "$pt" | awk -F, -v g="$g" '$1 == g {print $2}')
    [ -n "$p" ] || p=NA
    sp=$( [ "$p" = NA ] && echo NA || awk -v a="$p" -v b="$s" 'BEGIN{printf "%.1f", a/b}')
    printf "%-10s %9.3fs %9.2fx %8.2fx %9ss %7sx\n" "$g" "$s" "$ratio" "$tratio" "$p" "$sp"
    echo "$(date -u +%F),$(git rev-parse --short HEAD),$(nproc)x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs),$threads,$g,$s,$c,$ratio,$p,$sp" >> $f
done
