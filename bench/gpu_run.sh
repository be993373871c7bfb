#!/usr/bin/env bash
# Run ON THE GPU MACHINE, in one device call (docs/gpu.md; prepare with
# bench/gpu_prepare.sh and carry build-cuda/sparsegrain and build-cuda/libs): the full
# table of bench-gpu in fp16 on VGG-16's and ResNet-50's layer shapes, every granularity,
# densities 0.5, 0.3, 0.1, 0.05. Writes to $OUT (default bench/results/gpu-run):
#   gpu.csv      every row (both networks), the GPU's model in each: copy it to
#                bench/results/gpu.csv
#   gpu_log.txt  the GPU, the libraries, the build, progress and errors
# Each part runs under a time limit: 120 s for each network's conv layers, 30 + 20 + 40 +
# 130 s for the FC layers (fc6 alone: 103M weights pruned and converted 41 times on the
# host), then at most 30 s for a text table of one layer (8.5 minutes in
# all), so that the call ends within 9 minutes on an H200 with a prebuilt binary. Rows are
# written as each operand finishes, so a part cut short still leaves its first rows (the
# log says so).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/gpu-run}
mkdir -p "$OUT"
log=$OUT/gpu_log.txt
: > "$log"
say() { echo "gpu_run: $*" | tee -a "$log"; }
start=$(date +%s)
say "$(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv >> "$log" 2>&1 || true

# Libraries: CUDA's own, then the Python wheels' (cuDNN, cuSPARSELt ship as wheels there).
site=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null || true)
libdirs=""
[ -d /usr/local/cuda/lib64 ] && libdirs=/usr/local/cuda/lib64
if [ -n "$site" ] && [ -d "$site/nvidia" ]; then
    for d in "$site"/nvidia/*/lib; do [ -d "$d" ] && libdirs="$libdirs:$d"; done
    lt=$(find "$site/nvidia" -name 'libcusparseLt.so*' 2>/dev/null | sort | head -n 1)
    if [ -n "$lt" ]; then export SG_CUSPARSELT=$lt; say "cuSPARSELt: $lt"; else say "cuSPARSELt: not found under $site/nvidia"; fi
fi
export LD_LIBRARY_PATH="$PWD/build-cuda/libs:${libdirs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

SG=build-cuda/sparsegrain
if ! "$SG" --version >> "$log" 2>&1; then
    say "no runnable $SG (bench/gpu_prepare.sh makes one); building here with make CUDA=1"
    cudnn_inc=/usr/local/cuda/include
    cudnn_lib=/usr/local/cuda/lib64
    if [ ! -e "$cudnn_inc/cudnn.h" ] && [ -n "$site" ] && [ -e "$site/nvidia/cudnn/include/cudnn.h" ]; then
        cudnn_inc=$site/nvidia/cudnn/include
        cudnn_lib=$site/nvidia/cudnn/lib
        if [ ! -e "$cudnn_lib/libcudnn.so" ]; then # the wheel has only libcudnn.so.9: link to it
            ln -sf "$(ls "$cudnn_lib"/libcudnn.so.* | head -n 1)" "$OUT/libcudnn.so"
            cudnn_lib=$OUT
        fi
    fi
    make -j"$(nproc)" CUDA=1 CUDNN_INC="$cudnn_inc" CUDNN_LIB="$cudnn_lib" build-cuda/sparsegrain >> "$log" 2>&1 ||
        { say "the build failed (the log's end says why)"; tail -n 30 "$log"; exit 1; }
fi
say "ready after $(( $(date +%s) - start )) s"

tag=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
common=(--dtype fp16 --batch 8 --warmup 3 --repeat 10 --same-shapes --tag "$tag"
        --granularity "${SG_GPU_GRAN:-dense,filter,channel,2:4,block:8,block:16,block:32,fine,vector,kernel}"
        --density "${SG_GPU_DENS:-0.5,0.3,0.1,0.05}")
# conv layers of both networks first, then the FC layers, smallest first (their host-side
# pruning and conversion of up to 100M weights takes longest), each under its own limit
rc_all=0
parts=("vgg16 conv all ${SG_GPU_CONV_S:-120}" "resnet50 conv all ${SG_GPU_CONV_S:-120}"
       "resnet50 fc all 30" "vgg16 fc fc8 20" "vgg16 fc fc7 40" "vgg16 fc fc6 ${SG_GPU_FC6_S:-130}")
files=()
for part in "${parts[@]}"; do
    read -r net kind layers limit <<< "$part"
    f=$OUT/gpu_${net}_${kind}_$layers.csv
    sel=(); [ "$layers" = all ] || sel=(--layers "$layers")
    files+=("$f")
    t0=$(date +%s)
    timeout "$limit" "$SG" bench-gpu --net "$net" --only "$kind" "${sel[@]}" "${common[@]}" --csv > "$f" 2>> "$log"
    rc=$?
    rows=$(( $(wc -l < "$f") - 1 )); [ $rows -lt 0 ] && rows=0
    if [ $rc -eq 124 ]; then say "$net $kind $layers: CUT SHORT at the $limit s limit after $rows rows"; rc_all=1
    elif [ $rc -ne 0 ]; then say "$net $kind $layers: failed (exit $rc) after $rows rows"; rc_all=1
    else say "$net $kind $layers: $rows rows in $(( $(date +%s) - t0 )) s"; fi
done
{ for f in "${files[@]}"; do head -n 1 "$f"; done | head -n 1; for f in "${files[@]}"; do tail -n +2 "$f"; done; } > "$OUT/gpu.csv"
python3 - "$OUT/gpu.csv" >> "$log" 2>&1 <<'PY' || true
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
bad = [r for r in rows if r["ok"] != "1"]
print(f"gpu_run: {len(rows)} rows, {len(bad)} did not run or did not match dense")
for r in bad[:40]:
    print(f"  {r['net']} {r['layer']} {r['granularity']} {r['format']} {r['target_density']}: {r['note']}")
PY
# the table in text for the log (not for a partial run of a few granularities)
[ -n "${SG_GPU_GRAN:-}" ] && { say "done in $(( $(date +%s) - start )) s"; exit $rc_all; }
timeout 30 "$SG" bench-gpu --net vgg16 --layers conv4_2 --repeat 5 --dtype fp16 >> "$log" 2>&1 || true
say "done in $(( $(date +%s) - start )) s"
exit $rc_all
