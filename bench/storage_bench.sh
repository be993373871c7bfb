#!/usr/bin/env bash
# Encode/decode throughput of every storage format on a 138M-weight model
# (VGG-16 shapes), against memcpy on this machine. Builds the library, compiles
# bench/storage_bench.c against it (not part of the default build), prints a
# table and appends rows to bench/results/storage.csv.
# usage: bench/storage_bench.sh [BUILD_DIR] [storage_bench options, e.g. --values f16]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
make --no-print-directory -j2 BUILD="$build" "$build/libsparsegrain.a" >/dev/null
cc -O3 -march=native -std=c11 -D_GNU_SOURCE -Wall -Wextra -Iinclude -Isrc \
    bench/storage_bench.c "$build/libsparsegrain.a" -o "$build/storage_bench" \
    -fopenmp -lz -lpng -lm -lpthread -ldl
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || commit="$commit+dirty"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
machine="$(uname -n) $(nproc) cores $cpu"
mkdir -p bench/results
# other work on the machine slows every number here: the load average goes with the rows
load=$(cut -d' ' -f1 /proc/loadavg)
"$build/storage_bench" --csv bench/results/storage.csv --commit "$commit" --machine "$machine" \
    --load "$load" "$@"
echo
echo "appended to bench/results/storage.csv"
