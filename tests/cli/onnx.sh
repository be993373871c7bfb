#!/usr/bin/env bash
# ONNX and NumPy against the reference tools: PyTorch-exported nets must give PyTorch's
# outputs (1e-4 relative); our exports must pass onnx.checker, keep pruned zeros, and
# load in numpy with the same bits. Needs /usr/bin/python3 with python3-torch,
# python3-onnx and python3-numpy (scripts/install-deps.sh installs them).
set -euo pipefail
SG=${SG:-build/sparsegrain}
B=$(dirname "$SG")
PY=/usr/bin/python3
export OMP_NUM_THREADS=2
if ! $PY -c "import torch, onnx, numpy" 2>/dev/null; then
    echo "onnx.sh: /usr/bin/python3 lacks torch, onnx or numpy: run scripts/install-deps.sh" >&2
    exit 1
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# 1. PyTorch nets: import, run, compare; export back and check again
$PY tests/tools/make_torch_models.py "$T" >/dev/null 2>"$T/torch.log" || { cat "$T/torch.log"; exit 1; }
for n in convbnpool resnet inception mlp; do
    "$B/tools/sg_forward" "$T/$n.onnx" "$T/$n.x.npy" "$T/$n.ours.npy"
    "$SG" export "$T/$n.onnx" -o "$T/$n.back.onnx" --masks >/dev/null
    "$B/tools/sg_forward" "$T/$n.back.onnx" "$T/$n.x.npy" "$T/$n.back.npy"
    $PY - "$T" "$n" <<'PYEOF'
import sys, numpy as np, onnx
t, n = sys.argv[1], sys.argv[2]
ref = np.load(f"{t}/{n}.y.npy")
for what in ("ours", "back"):
    out = np.load(f"{t}/{n}.{what}.npy")
    assert out.shape == ref.shape, (n, what, out.shape, ref.shape)
    err = float(np.abs(out - ref).max() / max(1e-6, np.abs(ref).max()))
    print(f"{n:12s} {what:5s} max relative error vs PyTorch {err:.3g}")
    assert err <= 1e-4, (n, what, err)
onnx.checker.check_model(onnx.load(f"{t}/{n}.back.onnx"))
PYEOF
done
"$SG" info "$T/resnet.onnx" | grep -q "gap\|avgpool"

# 2. built-in networks, pruned: .onnx passes onnx.checker and keeps every zero; .npz
#    loads in numpy with the same bits as the ONNX initializers
for net in lenet300 lenet5 vgg7 resnet8; do
    "$B/tools/sg_build" $net "$T/$net.sgm" 0.6
    "$SG" export "$T/$net.sgm" -o "$T/$net.onnx" >/dev/null
    "$SG" export "$T/$net.sgm" -o "$T/$net.masks.onnx" --masks >/dev/null
    "$SG" export "$T/$net.sgm" -o "$T/$net.npz" >/dev/null
    "$SG" export "$T/$net.onnx" -o "$T/$net.back.sgm" >/dev/null
    $PY - "$T" "$net" <<'PYEOF'
import sys, numpy as np, onnx
from onnx import numpy_helper
t, net = sys.argv[1], sys.argv[2]
m = onnx.load(f"{t}/{net}.onnx")
onnx.checker.check_model(m, full_check=True)
mm = onnx.load(f"{t}/{net}.masks.onnx")
onnx.checker.check_model(mm, full_check=True)
init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
masks = {i.name: numpy_helper.to_array(i) for i in mm.graph.initializer if i.name.endswith(".mask")}
z = np.load(f"{t}/{net}.npz")
weights = [k for k in z.files if not k.endswith(".mask")]
assert set(weights) == {k for k in init if not k.endswith(".ratio")}, (weights, list(init))
zeros = 0
for k in weights:
    a, mk = z[k], z[k + ".mask"]
    assert a.dtype == np.float32 and mk.dtype == np.uint8 and a.shape == mk.shape
    assert a.tobytes() == init[k].tobytes(), k           # same bits in .npz and .onnx
    assert np.array_equal(masks[k + ".mask"], mk), k     # same masks
    assert np.all(a[mk == 0] == 0), k                    # pruned weights are zero
    zeros += int((mk == 0).sum())
print(f"{net:9s} onnx.checker ok, {len(m.graph.node)} nodes, {zeros} pruned weights kept at zero")
PYEOF
    # the re-imported model has the same tensors: its .npz equals the first one
    "$SG" export "$T/$net.back.sgm" -o "$T/$net.back.npz" >/dev/null
    $PY -c "
import numpy as np, sys
a, b = np.load('$T/$net.npz'), np.load('$T/$net.back.npz')
assert a.files == b.files
for k in a.files: assert a[k].tobytes() == b[k].tobytes(), k
"
done

# 3. a graph with ops we lack: weights-only commands work, running says why
$PY - "$T" <<'PYEOF'
import sys, torch, torch.nn as nn
class M(nn.Module):
    def __init__(s):
        super().__init__(); s.c = nn.Conv2d(3, 4, 3); s.fc = nn.Linear(4, 2)
    def forward(s, x):
        x = torch.sigmoid(s.c(x))
        x = nn.functional.interpolate(x, scale_factor=2.0)
        return s.fc(x.mean((2, 3)))
torch.onnx.export(M().eval(), torch.randn(1, 3, 8, 8), f"{sys.argv[1]}/odd.onnx", opset_version=13)
PYEOF
"$SG" info "$T/odd.onnx" > "$T/odd.txt"
grep -q "unsupported_ops" "$T/odd.txt"
grep -q "Sigmoid" "$T/odd.txt"
grep -q "Resize" "$T/odd.txt"
if "$B/tools/sg_forward" "$T/odd.onnx" "$T/convbnpool.x.npy" "$T/odd.npy" 2>"$T/odd.err"; then exit 1; fi
grep -q "cannot run: ops .*Sigmoid.* are not supported (weights-only commands work)" "$T/odd.err"
"$SG" export "$T/odd.onnx" -o "$T/odd.back.onnx" >/dev/null
$PY -c "import onnx; onnx.checker.check_model(onnx.load('$T/odd.back.onnx'))"
echo "onnx.sh: all checks passed"
