#!/usr/bin/env bash
# bench-gpu without a GPU part (or without a GPU): a clear error, exit 1; its usage
# errors exit 2 before that; --dry-run checks the host side of the table without a GPU. report --gpu: the GPU section made from a small
# hand-written CSV in bench-gpu's columns (a test of the rendering and the sums, not a
# measurement), and a clear error for a CSV that is not bench-gpu's.
set -euo pipefail
SG=${SG:-build/sparsegrain}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

set +e
"$SG" bench-gpu --layers conv5_3 --granularity fine > "$tmp/out" 2> "$tmp/err"; rc=$?
set -e
test $rc -eq 1 || { echo "bench-gpu gave $rc, wanted 1"; cat "$tmp/err"; exit 1; }
grep -q -E "sparsegrain: error: (this build of sparsegrain has no GPU part; build it with 'make CUDA=1'|no GPU answers)" "$tmp/err"
test ! -s "$tmp/out"
for bad in "--dtype int8" "--granularity block:7" "--granularity fine,nope" "--net nope" "--layers conv9_9" \
           "--density 0" "--csv --json"; do
    set +e
    # shellcheck disable=SC2086
    "$SG" bench-gpu $bad > /dev/null 2> "$tmp/err"; rc=$?
    set -e
    test $rc -eq 2 || { echo "bench-gpu $bad gave $rc, wanted 2"; cat "$tmp/err"; exit 1; }
done
"$SG" bench-gpu --help | grep -q "make CUDA=1"
# --dry-run needs no GPU: every operand of two ResNet-50 layers (conv1: C = 3, padded for
# 2:4 and the blocks; a 3x3 one) at every granularity and density decodes back to the masked weights
"$SG" bench-gpu --dry-run --net resnet50 --layers conv1,res2a_branch2b > "$tmp/dry"
grep -q "^dry run of resnet50: 92 operands pruned, converted and decoded back in .* s on the host; 0 differ" "$tmp/dry"

# ---- report --gpu from a hand-written CSV (two layers; one failed variant)
mkdir -p "$tmp/s"
cat > "$tmp/s/points.jsonl" <<'J'
{"model": "lenet5", "data": "mnist", "granularity": "dense", "criterion": "l1", "control": "", "seed": 1, "step": 0, "target": 1, "density": 1, "layers": {"conv2": 1}, "top1": 0.98, "val_top1": 0.98, "top5": 1, "loss": 0.1, "epochs": 1, "seconds": 0, "file": "models/baseline-s1.sgm"}
{"model": "lenet5", "data": "mnist", "granularity": "fine", "criterion": "l1", "control": "", "seed": 1, "step": 1, "target": 0.5, "density": 0.5, "layers": {"conv2": 0.5}, "top1": 0.979, "val_top1": 0.98, "top5": 1, "loss": 0.1, "epochs": 1, "seconds": 0, "file": "models/fine-s1-01.sgm"}
{"model": "lenet5", "data": "mnist", "granularity": "kernel", "criterion": "l1", "control": "", "seed": 1, "step": 1, "target": 0.5, "density": 0.5, "layers": {"conv2": 0.5}, "top1": 0.979, "val_top1": 0.98, "top5": 1, "loss": 0.1, "epochs": 1, "seconds": 0, "file": "models/kernel-s1-01.sgm"}
J
echo '{"tolerance": 0.001}' > "$tmp/s/study.json"
h="date,tag,gpu,net,layer,m,k,n,batch,dtype,granularity,format,library,target_density,density,ms,dense_ms,speedup,tflops_kept,tflops_dense_equiv,peak_tflops,frac_peak,max_rel_err,ok,note"
{
    echo "$h"
    echo '2026-12-05,t,"TEST GPU",vgg16,a,64,576,1000,8,fp16,dense,dense,"cuBLAS GemmEx",1,1,1.5,1.5,1,,,100,,0.001,1,""'
    echo '2026-12-05,t,"TEST GPU",vgg16,b,128,1152,1000,8,fp16,dense,dense,"cuDNN algo 1",1,1,0.5,0.5,1,,,100,,0.001,1,""'
    echo '2026-12-05,t,"TEST GPU",vgg16,a,64,576,1000,8,fp16,fine,csr,"cuSPARSE csr",0.5,0.5,3,1.5,0.5,,,100,,0.001,1,""'
    echo '2026-12-05,t,"TEST GPU",vgg16,b,128,1152,1000,8,fp16,fine,csr,"cuSPARSE csr",0.5,0.5,1,0.5,0.5,,,100,,0.001,1,""'
    echo '2026-12-05,t,"TEST GPU",vgg16,a,64,576,1000,8,fp16,block:16,bsr,"cuSPARSE bsr",0.1,0.1,0.25,1.5,6,,,100,,0.001,1,""'
    echo '2026-12-05,t,"TEST GPU",vgg16,b,128,1152,1000,8,fp16,block:16,bsr,,0.1,0.1,,0.5,,,,100,,,0,"cuSPARSE bsr: refused"'
} > "$tmp/gpu.csv"
"$SG" report "$tmp/s" --no-masks --gpu "$tmp/gpu.csv" -o "$tmp/r.html" > "$tmp/out" 2> /dev/null
grep -q "GPU section from $tmp/gpu.csv" "$tmp/out"
xmllint --noout "$tmp/r.html"
grep -q '<section id="gpu">' "$tmp/r.html"
grep -q 'href="#gpu"' "$tmp/r.html"
# the summed rows: dense 2.0 ms; fine csr 4.0 ms -> 0.5x, kept 2*(64*576+128*1152)*1000*0.5 flop / 4 ms
cell() { xmllint --html --xpath "string(//table[@id='t-gpu']/tbody/tr[td[6]='$1'][td[7]='$2']/td[@data-col='$3'])" "$tmp/r.html" 2>/dev/null; }
test "$(cell 'dense dense' 1 layers_ok)" = 2 && test "$(cell 'dense dense' 1 ms)" = 2.0000
test "$(cell 'dense dense' 1 speedup)" = 1.000 && test "$(cell 'dense dense' 1 tflops_kept)" = 0.18
test "$(cell 'fine csr' 0.5 ms)" = 4.0000 && test "$(cell 'fine csr' 0.5 dense_ms)" = 2.0000
test "$(cell 'fine csr' 0.5 speedup)" = 0.500 && test "$(cell 'fine csr' 0.5 tflops_kept)" = 0.05
test "$(cell 'fine csr' 0.5 tflops_dense_equiv)" = 0.09 && test "$(cell 'fine csr' 0.5 frac_peak)" = 0.0005
# a variant that failed on a layer has no total
test "$(cell 'block:16 bsr' 0.1 layers_ok)" = 1 && test -z "$(cell 'block:16 bsr' 0.1 ms)"
test -z "$(cell 'block:16 bsr' 0.1 speedup)"
n=$(xmllint --xpath "count(//*[local-name()='svg'][starts-with(@id,'gpu-grouped')])" "$tmp/r.html")
test "$n" -eq 1
# not bench-gpu's CSV
echo "a,b" > "$tmp/bad.csv"; echo "1,2" >> "$tmp/bad.csv"
set +e
"$SG" report "$tmp/s" --no-masks --gpu "$tmp/bad.csv" -o "$tmp/r2.html" > /dev/null 2> "$tmp/err"; rc=$?
"$SG" report "$tmp/s" --no-masks --gpu "$tmp/none.csv" -o "$tmp/r3.html" > /dev/null 2> "$tmp/err3"; rc3=$?
set -e
test $rc -eq 1 && grep -q "bad.csv: no column 'gpu'; give the CSV that 'sparsegrain bench-gpu --csv' writes" "$tmp/err"
test $rc3 -eq 1 && grep -q "none.csv" "$tmp/err3"
test ! -e "$tmp/r2.html"
echo "bench-gpu errors without a GPU part; report --gpu renders and sums a hand-written gpu.csv: ok"
