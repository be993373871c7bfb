#!/usr/bin/env bash
# The headline studies of docs/results.md (issue: the study's answers, run and committed).
#   bash bench/headline.sh lenet5|vgg7|resnet8 [ROOT] [extra study options...]
# Runs one network's full study into ROOT/NET (default runs/headline/NET): every conv layer
# but the first pruned (the study's default), fine/vector/kernel/filter, the default grid
# and protocol, seeds 5 (LeNet-5/MNIST) or 3 (VGG-7 and ResNet-8 on Fashion-MNIST). A study
# resumes: interrupted, the same command goes on from the last finished point, so a run may
# span several sittings. Each call appends to ROOT/NET/wall.log the CPU model, the binary's
# commit, the start and end times and the wall and CPU seconds of this call, then writes
# the report (ROOT/NET/report.html) from what is finished.
# SG (default build/sparsegrain) picks the binary: keep one binary for a whole study
# (copy it aside) so that every point comes from the same code.
set -euo pipefail
cd "$(dirname "$0")/.."
net=${1:?usage: bench/headline.sh lenet5|vgg7|resnet8 [ROOT] [study options...]}
root=${2:-runs/headline}
shift $(( $# >= 2 ? 2 : 1 ))
SG=${SG:-build/sparsegrain}
case $net in
    lenet5) args=(--model lenet5 --data mnist --seeds 5) ;;
    vgg7) args=(--model vgg7 --data fashion --seeds 3) ;;
    resnet8) args=(--model resnet8 --data fashion --seeds 3) ;;
    *) echo "headline.sh: unknown network '$net' (lenet5, vgg7 or resnet8)" >&2; exit 2 ;;
esac
dir=$root/$net
mkdir -p "$dir"
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
start=$(date +%s)
echo "start $(date -u '+%F %T') UTC  cpu=$cpu  binary=$SG ($($SG --version 2>&1 | head -n 1), tree $(git rev-parse --short HEAD 2>/dev/null || echo unknown))  args=${args[*]} $*" >> "$dir/wall.log"
rc=0
TIMEFORMAT="%R s wall, %U s user, %S s sys"
{ time "$SG" study "${args[@]}" "$@" -o "$dir" 2>&3 || rc=$?; } 3>&2 2>> "$dir/wall.log"
echo "end   $(date -u '+%F %T') UTC  rc=$rc  this call: $(( $(date +%s) - start )) s wall" >> "$dir/wall.log"
"$SG" report "$dir" > /dev/null || true
exit $rc
