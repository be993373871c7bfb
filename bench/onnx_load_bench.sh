#!/usr/bin/env bash
# Load time of a ~100 MB ONNX model (torchvision ResNet-50, random weights, made here
# with Debian's python3-torch) against reading the file (cat > /dev/null), both with
# the file in the page cache. Floor (issue 6): within 2x. Prints the ratio and appends
# a row to bench/results/onnx_load.csv.   usage: bench/onnx_load_bench.sh [BUILD]
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
make --no-print-directory BUILD="$BUILD" "$BUILD/tools/sg_load" >/dev/null
F=${ONNX_BENCH_FILE:-/tmp/sparsegrain-bench-resnet50.onnx}
if [ ! -s "$F" ]; then
    OMP_NUM_THREADS=2 /usr/bin/python3 - "$F" <<'PYEOF' 2>/dev/null
import sys, torch, torchvision
m = torchvision.models.resnet50(weights=None).eval()
torch.onnx.export(m, torch.randn(1, 3, 224, 224), sys.argv[1], opset_version=13,
                  input_names=["input"], dynamic_axes={"input": {0: "N"}})
PYEOF
fi
bytes=$(stat -c %s "$F")
now() { date +%s.%N; }
best_cat=999 best_load=999 inner=999
cat "$F" >/dev/null # warm the page cache
for i in 1 2 3 4 5 6 7; do
    t0=$(now); cat "$F" >/dev/null; t1=$(now)
    best_cat=$(awk -v a="$best_cat" -v b="$(awk -v s="$t0" -v e="$t1" 'BEGIN{print e-s}')" 'BEGIN{print (b<a)?b:a}')
    t0=$(now); out=$("$BUILD/tools/sg_load" "$F"); t1=$(now)
    best_load=$(awk -v a="$best_load" -v b="$(awk -v s="$t0" -v e="$t1" 'BEGIN{print e-s}')" 'BEGIN{print (b<a)?b:a}')
    inner=$(awk -v a="$inner" -v b="${out%% s,*}" 'BEGIN{print (b<a)?b:a}')
done
ratio=$(awk -v a="$best_load" -v b="$best_cat" 'BEGIN{printf "%.2f", a/b}')
echo "file: $F ($bytes bytes): $(echo "$out" | cut -d, -f2-)"
printf "cat > /dev/null        %.4f s (best of 7)\n" "$best_cat"
printf "sg_model_load_any      %.4f s process, %.4f s in the call (best of 7)\n" "$best_load" "$inner"
echo "ratio load/cat: $ratio (floor: 2)"
mkdir -p bench/results
csv=bench/results/onnx_load.csv
[ -s "$csv" ] || echo "date,commit,machine,file_bytes,cat_s,load_process_s,load_call_s,ratio,command" >"$csv"
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ),$(git rev-parse --short HEAD 2>/dev/null || echo none),$(uname -m)/$(nproc)cpu,$bytes,$best_cat,$best_load,$inner,$ratio,bench/onnx_load_bench.sh" >>"$csv"
