#!/usr/bin/env bash
# sparsegrain infer: on a small LeNet-5 (1 epoch on 2000 MNIST images, pruned at
# kernel granularity to density 0.3), top-1 from 'infer --json' equals top-1 from
# 'eval --json' for every engine; auto writes its cache, then reads it; bench-conv
# runs and checks its own outputs; bad options are usage errors.
set -euo pipefail
SG=${SG:-build/sparsegrain}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export SG_NO_PROGRESS=1
top1() { sed -E 's/.*"top1": ([0-9.e+-]+).*/\1/'; }

"$SG" train --model lenet5 --data mnist --epochs 1 --max-images 2000 --threads 2 \
    -o "$tmp/l5.sgm" > /dev/null
"$SG" prune "$tmp/l5.sgm" --granularity kernel --density 0.3 -o "$tmp/l5k.sgm" > /dev/null
want=$("$SG" eval "$tmp/l5k.sgm" --json --threads 2 | top1)
for engine in dense sparse auto; do
    got=$("$SG" infer "$tmp/l5k.sgm" --engine "$engine" --json --threads 2 | top1)
    if [ "$got" != "$want" ]; then
        echo "infer --engine $engine: top1 $got, eval: $want" >&2
        exit 1
    fi
done
# the sparse engine really runs the kernel-level kernel on the pruned conv layer
"$SG" infer "$tmp/l5k.sgm" --engine sparse --max-images 1000 --json --threads 2 | grep -q '"name": "conv2", "engine": "sparse", "kernel": "kernel"'
# auto: the first run above wrote the cache, the next one reads it
test -s "$tmp/l5k.sgm.engine"
"$SG" infer "$tmp/l5k.sgm" --engine auto --max-images 1000 --json --threads 2 | grep -q '"cache": "read"'
# another batch size is measured again; --no-cache leaves the file alone
"$SG" infer "$tmp/l5k.sgm" --engine auto --batch 100 --max-images 1000 --json --threads 2 | grep -q '"cache": "written"'
before=$(md5sum < "$tmp/l5k.sgm.engine")
"$SG" infer "$tmp/l5k.sgm" --engine auto --no-cache --max-images 1000 --json --threads 2 | grep -q '"cache": "unused"'
test "$(md5sum < "$tmp/l5k.sgm.engine")" = "$before"
# a corrupt cache is ignored and rewritten
echo "garbage" > "$tmp/l5k.sgm.engine"
"$SG" infer "$tmp/l5k.sgm" --engine auto --max-images 1000 --json --threads 2 | grep -q '"cache": "written"'
# the human-readable form, with per-layer lines
"$SG" infer "$tmp/l5k.sgm" --max-images 500 --verbose --threads 2 | grep -q "images/s"
# bench-conv on one small VGG-16 layer
"$SG" bench-conv --layers conv5_1 -g kernel -D 0.3 --repeat 1 --json | grep -q '"kind": "winograd"'
"$SG" bench-conv --layers conv5_1 -g fine -D 0.3 --kind fine --repeat 1 --json | grep -q '"kind": "fine"'
# usage errors exit 2
set +e
"$SG" infer "$tmp/l5k.sgm" --engine bogus > /dev/null 2>&1; rc1=$?
"$SG" bench-conv --layers conv9_9 > /dev/null 2>&1; rc2=$?
"$SG" bench-conv --net alexnet > /dev/null 2>&1; rc3=$?
set -e
test $rc1 -eq 2 && test $rc2 -eq 2 && test $rc3 -eq 2
echo "infer: top-1 equals eval's for dense, sparse and auto; cache written, read, refreshed: ok"
