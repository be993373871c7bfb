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
make --no-print-directory -j"$(nproc)" CUDA=1 build-cuda/sparsegrain
rm -rf build-cuda/libs
mkdir -p build-cuda/libs
for lib in libprotobuf-c.so.1 libcjson.so.1 libpng16.so.16 libgomp.so.1; do
    path=$(ldd build-cuda/sparsegrain | awk -v l="$lib" '$1 == l { print $3 }')
    if [ -n "$path" ]; then cp -L "$path" build-cuda/libs/; fi
done
ls -l build-cuda/libs
du -sh build-cuda/sparsegrain build-cuda/libs
