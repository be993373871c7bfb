#!/usr/bin/env bash
# make bench: every benchmark against its peer on the same work in the same run.
# Each script prints a table and appends rows to bench/results/*.csv. Takes about
# 15 minutes on an idle 2-core machine; BENCH_RT=1 runs the timed parts at real-time
# priority (a shared machine). Usage: bench/run.sh [BUILD]
# [NAME...] where NAME is one of: train retrain prune storage onnx scnn compare infer
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
all=(train retrain prune storage onnx scnn compare infer)
want=("$@")
[ ${#want[@]} -gt 0 ] || want=("${all[@]}")
failed=0
rt=""
[ "${BENCH_RT:-0}" = 1 ] && command -v chrt >/dev/null && rt="chrt -f 20"
run() { # name, script, args...
    local name=$1
    shift
    [[ " ${want[*]} " == *" $name "* ]] || return 0
    [ -e "$1" ] || return 0
    echo "== $name: $1"
    local start=$SECONDS
    if ! $rt bash "$@"; then
        echo "!! $name failed" >&2
        failed=$((failed + 1))
    fi
    echo "   ($((SECONDS - start)) s)"
    echo
}
echo "machine: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
run train bench/train_vs_torch.sh "$build"
run retrain bench/retrain.sh "$build"
run prune bench/prune_vs_torch.sh "$build"
run storage bench/storage_bench.sh "$build"
run onnx bench/onnx_load_bench.sh "$build"
run scnn bench/scnn_bench.sh "$build"
run compare bench/scnn_compare.sh "$build" 0.35 0.4 vgg16 resnet50
run infer bench/infer_bench.sh "$build"
[ $failed -eq 0 ] || { echo "$failed benchmark(s) failed" >&2; exit 1; }
