#!/usr/bin/env bash
# Run HERE, on the machine without a GPU, before the device call (docs/gpu.md):
# builds build-cuda/sparsegrain with `make CUDA=1` and copies beside it, into
# build-cuda/libs/, the shared libraries it needs that are neither CUDA's nor the C
# runtime's (protobuf-c, cJSON, libpng, OpenMP's runtime): the GPU machine's CUDA image
# need not have them, and nothing can be installed there. Then one device call with
#   carry: ["build-cuda/sparsegrain", "build-cuda/libs"]
#   command: bash bench/gpu_run.sh
# runs the whole table.
set -euo pipefail
cd "$(dirname "$0")/.."
# -march=x86-64-v3, not native: the GPU machine's CPU is not this one's (an AVX-512
# instruction this CPU has may be missing there); a fresh build so every object gets it.
rm -rf build-cuda
make --no-print-directory -j"$(nproc)" CUDA=1 OPT="-O3 -march=x86-64-v3" build-cuda/sparsegrain
rm -rf build-cuda/libs
mkdir -p build-cuda/libs
for lib in libprotobuf-c.so.1 libcjson.so.1 libpng16.so.16 libgomp.so.1; do
    path=$(ldd build-cuda/sparsegrain | awk -v l="$lib" '$1 == l { print $3 }')
    if [ -n "$path" ]; then cp -L "$path" build-cuda/libs/; fi
done
ls -l build-cuda/libs
du -sh build-cuda/sparsegrain build-cuda/libs
