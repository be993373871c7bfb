#!/usr/bin/env bash
# thin: the smaller dense model computes what the pruned one computes. PyTorch-exported
# nets (conv+BN+pools+flatten, residual adds with a projection, concat with a grouped
# conv and softmax, an MLP with BN1d) and the built-in LeNet-5, VGG-7 and ResNet-8 are
# filter-pruned (and VGG-7 channel-pruned), thinned to .sgm and .onnx, and run on the
# same inputs: outputs within 1e-5 relative, same argmax; the .onnx passes
# onnx.checker with smaller weight tensors; a model with nothing to remove is copied
# with a message; bad input gets an error naming the file. Needs /usr/bin/python3 with
# python3-torch, python3-onnx and python3-numpy (scripts/install-deps.sh installs them).
set -euo pipefail
SG=${SG:-build/sparsegrain}
B=$(dirname "$SG")
PY=/usr/bin/python3
export OMP_NUM_THREADS=2 SG_NO_PROGRESS=1
if ! $PY -c "import torch, onnx, numpy" 2>/dev/null; then
    echo "thin.sh: /usr/bin/python3 lacks torch, onnx or numpy: run scripts/install-deps.sh" >&2
    exit 1
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "thin.sh: $*" >&2; exit 1; }

# same A.npy B.npy: within 1e-5 relative and the same argmax per row
same() {
    $PY - "$1" "$2" <<'PYEOF'
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert a.shape == b.shape, (a.shape, b.shape)
err = float(np.abs(a - b).max() / max(1e-6, np.abs(a).max()))
assert err <= 1e-5, (sys.argv[2], err)
assert (a.argmax(1) == b.argmax(1)).all(), sys.argv[2]
PYEOF
}

# thin_and_compare NAME GRANULARITY INPUT.npy [FC]: prune NAME.src to filter (or
# channel) density 0.5 (fc layers: FC, default dense), thin to .sgm and .onnx, and
# compare all three
thin_and_compare() {
    local n=$1 g=$2 x=$3 fc=${4:-dense}
    "$SG" prune "$T/$n.src" -g "$g" --density 0.5 --fc "$fc" -o "$T/$n.$g.sgm" >/dev/null
    "$SG" thin "$T/$n.$g.sgm" -o "$T/$n.$g.thin.sgm" >"$T/$n.$g.out"
    "$SG" thin "$T/$n.$g.sgm" -o "$T/$n.$g.thin.onnx" >/dev/null
    grep -q "parameters (.*x smaller)" "$T/$n.$g.out" || { cat "$T/$n.$g.out"; fail "$n $g: nothing thinned"; }
    "$B/tools/sg_forward" "$T/$n.$g.sgm" "$x" "$T/$n.$g.y.npy"
    for f in thin.sgm thin.onnx; do
        "$B/tools/sg_forward" "$T/$n.$g.$f" "$x" "$T/$n.$g.$f.y.npy"
        same "$T/$n.$g.y.npy" "$T/$n.$g.$f.y.npy"
    done
    $PY -c "import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)" "$T/$n.$g.thin.onnx"
    echo "$n $g: $(tail -n 1 "$T/$n.$g.out")"
}

# 1. PyTorch nets
$PY tests/tools/make_torch_models.py "$T" >/dev/null 2>"$T/torch.log" || { cat "$T/torch.log"; exit 1; }
for n in convbnpool resnet mlp; do
    cp "$T/$n.onnx" "$T/$n.src"
    thin_and_compare "$n" filter "$T/$n.x.npy" "$([ $n = mlp ] && echo same || echo dense)"
done
# the concatenation feeds a grouped conv, whose groups must stay equal, and the fc a
# softmax: nothing can go, and the command says why
"$SG" prune "$T/inception.onnx" -g filter --density 0.5 --fc dense -o "$T/inception.filter.sgm" >/dev/null
"$SG" thin "$T/inception.filter.sgm" -o "$T/inception.filter.thin.onnx" >"$T/inception.filter.out"
grep -q "nothing to thin" "$T/inception.filter.out" || { cat "$T/inception.filter.out"; fail "inception: thinned"; }
"$B/tools/sg_forward" "$T/inception.filter.sgm" "$T/inception.x.npy" "$T/inc.y.npy"
"$B/tools/sg_forward" "$T/inception.filter.thin.onnx" "$T/inception.x.npy" "$T/inc.thin.y.npy"
same "$T/inc.y.npy" "$T/inc.thin.y.npy"
# the conv+BN net: c2 (16 filters, 8 kept) and the fc's 8*4*4 matching inputs go
$PY - "$T" <<'PYEOF'
import sys, onnx
from onnx import numpy_helper
m = onnx.load(f"{sys.argv[1]}/convbnpool.filter.thin.onnx")
shapes = {i.name: numpy_helper.to_array(i).shape for i in m.graph.initializer}
c2 = [s for k, s in shapes.items() if len(s) == 4 and s[1] != 3]
fc = [s for k, s in shapes.items() if len(s) == 2]
assert c2 and c2[0][0] == 8, shapes
assert fc and fc[0] == (10, 8 * 4 * 4), shapes
PYEOF
# the residual net: zero channels before an add with a live shortcut stay, and say why
grep -q "^kept: .*zero or unused channels\? kept: tied to" "$T/resnet.filter.out" ||
    { cat "$T/resnet.filter.out"; fail "resnet: no line on the channels kept at the add"; }
grep -q "^kept: /b/Conv: 4 zero or unused channels kept: tied to '/Concat' (a grouped convolution" "$T/inception.filter.out" ||
    { cat "$T/inception.filter.out"; fail "inception: no line on the grouped convolution"; }

# 2. built-in networks (random weights), filter pruning; VGG-7 channel pruning too
$PY -c "import numpy as np; np.save('$T/x28.npy', np.random.default_rng(1).standard_normal((5, 1, 28, 28)).astype(np.float32))"
for net in lenet5 vgg7 resnet8; do
    "$B/tools/sg_build" $net "$T/$net.src"
    thin_and_compare "$net" filter "$T/x28.npy"
done
thin_and_compare vgg7 channel "$T/x28.npy"
grep -q "^conv2 .* 32 -> 16 " "$T/vgg7.channel.out" || { cat "$T/vgg7.channel.out"; fail "vgg7 channel: conv2 keeps 32 filters"; }

# --json: one object with the same totals
"$SG" thin "$T/vgg7.filter.sgm" -o "$T/j.sgm" --json | $PY -c "
import json, sys
j = json.load(sys.stdin)
assert j['changed'] and j['parameters'][1] < j['parameters'][0], j
assert [l['layer'] for l in j['layers']][:2] == ['conv1', 'conv2'], j
"

# 3. nothing to thin: a message and an identical copy
"$SG" thin "$T/vgg7.src" -o "$T/same.sgm" >"$T/same.out"
grep -q "nothing to thin" "$T/same.out" || { cat "$T/same.out"; fail "no message for a dense model"; }
cmp "$T/vgg7.src" "$T/same.sgm" || fail "the copy of a dense model differs from it"

# 4. bad input: errors naming the file
set +e
"$SG" thin "$T/none.sgm" -o "$T/x.sgm" 2>"$T/e1"; rc1=$?
head -c 100 "$T/vgg7.src" >"$T/cut.sgm"
"$SG" thin "$T/cut.sgm" -o "$T/x.sgm" 2>"$T/e2"; rc2=$?
"$SG" export "$T/vgg7.src" -o "$T/w.npz" >/dev/null
"$SG" thin "$T/w.npz" -o "$T/x.sgm" 2>"$T/e3"; rc3=$?
"$SG" thin "$T/vgg7.src" -o "$T/x.npz" 2>"$T/e4"; rc4=$?
"$SG" thin "$T/vgg7.src" 2>/dev/null; rc5=$?
set -e
test $rc1 -eq 1 && grep -q "sparsegrain: error: .*none.sgm" "$T/e1" || { cat "$T/e1"; fail "missing file"; }
test $rc2 -eq 1 && grep -q "sparsegrain: error: .*cut.sgm" "$T/e2" || { cat "$T/e2"; fail "truncated file"; }
test $rc3 -eq 1 && grep -q "sparsegrain: error: .*w.npz.*weights only" "$T/e3" || { cat "$T/e3"; fail "weights only"; }
test $rc4 -eq 2 && grep -q "must end in .sgm or .onnx" "$T/e4" || { cat "$T/e4"; fail "bad suffix"; }
test $rc5 -eq 2
[ ! -e "$T/x.sgm" ] || fail "a failed thin left an output file"
echo "thin: PyTorch nets and built-ins keep their outputs, copies and errors: ok"
