#!/usr/bin/env bash
# sparsegrain scnn: the ImageNet shapes with --verify, --json and both modes on a
# layer subset, usage and input errors, and a real model (one short MNIST epoch)
# simulated on real images. $SG is the binary; the exit code is the verdict.
set -euo pipefail
: "${SG:?set SG to the sparsegrain binary}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_rc() { # expect_rc CODE CMD...: runs CMD, fails unless it exits with CODE
    local want=$1 rc=0
    shift
    "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    [ "$rc" -eq "$want" ] || { cat "$tmp/err" >&2; fail "'$*' exited $rc, wanted $want"; }
}
export SG_NO_PROGRESS=1

# JSON check with node (a declared dependency): the documented keys, memory_refs =
# the sum of the on-chip refs, the total = the sum of the layers.
check_json() {
    node -e '
const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const keys = ["weight","weight_index","act","act_index","acc_read","acc_write","out_write","halo","dram",
              "psum_read","psum_write"];
function chk(o, what) {
  for (const k of ["cycles","products","memory_refs","memory_bits","psum_refs","energy_pj"])
    if (typeof o[k] !== "number") throw new Error(what + ": no " + k);
  for (const k of keys) if (typeof o.refs[k] !== "number") throw new Error(what + ": no refs." + k);
  const onchip = keys.filter(k => k !== "dram" && !k.startsWith("psum")).reduce((s, k) => s + o.refs[k], 0);
  if (onchip !== o.memory_refs) throw new Error(what + ": memory_refs " + o.memory_refs + " != " + onchip);
  if (o.refs.psum_read + o.refs.psum_write !== o.psum_refs) throw new Error(what + ": psum_refs");
  if (o.refs.halo !== 3 * o.halo_sums) throw new Error(what + ": halo accesses != 3 x sums");
  const e = o.energy, parts = Object.keys(e).reduce((s, k) => s + e[k], 0);
  if (Math.abs(parts - o.energy_pj) > 1e-6 * o.energy_pj) throw new Error(what + ": energy parts");
}
if (!d.config || !Array.isArray(d.layers) || !d.total) throw new Error("missing config/layers/total");
d.layers.forEach(l => chk(l, l.name));
chk(d.total, "total");
for (const k of ["cycles","products","memory_refs"]) {
  const s = d.layers.reduce((a, l) => a + l[k], 0);
  if (s !== d.total[k]) throw new Error("total." + k + " " + d.total[k] + " != sum " + s);
}
if (d.layers.length != Number(process.argv[2])) throw new Error("layers: " + d.layers.length);
for (const l of d.layers) if (process.argv[3] === "verified" && !(l.max_rel_err <= 1e-5))
  throw new Error(l.name + ": max_rel_err " + l.max_rel_err);
' "$@" || fail "JSON check of $1"
}
field() { node -e 'const d=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));
console.log(process.argv[2].split(".").reduce((o,k)=>o[k], d))' "$1" "$2"; }

# 1. human table, grouped AlexNet layers, verified
$SG scnn --net alexnet --layers conv3,conv4 --granularity kernel --verify >"$tmp/t.txt"
grep -q '^conv4 ' "$tmp/t.txt" || fail "no conv4 row"
grep -q '^total ' "$tmp/t.txt" || fail "no total row"

# 2. --json, verified, both accumulation modes and fetch orders on two layers
# (--verify runs a naive reference convolution: two of the four runs are enough)
for acc in product merged; do
    for fetch in stream aligned; do
        v=""
        [ "$acc-$fetch" = product-stream ] || [ "$acc-$fetch" = merged-aligned ] && v=--verify
        $SG scnn --net alexnet --layers conv4,conv5 --granularity vector --accumulate $acc \
            --fetch $fetch --weight-density 0.35 --act-density 0.4 $v --json \
            >"$tmp/$acc-$fetch.json"
        check_json "$tmp/$acc-$fetch.json" 2 ${v:+verified}
    done
done
p=$(field "$tmp/product-stream.json" total.products)
m=$(field "$tmp/merged-stream.json" total.products)
[ "$p" = "$m" ] || fail "the mode changed the products ($p vs $m)"
wp=$(field "$tmp/product-stream.json" total.refs.acc_write)
wm=$(field "$tmp/merged-stream.json" total.refs.acc_write)
[ "$wm" -le "$wp" ] || fail "merged writes more than product ($wm > $wp)"
[ "$(field "$tmp/merged-aligned.json" config.fetch)" = aligned ] || fail "config.fetch"

# 2b. the merge windows, the group index and the dense baseline, verified
for m in row kernel; do
    $SG scnn --net alexnet --layers conv4,conv5 --granularity kernel --merge $m --index group \
        --verify --json >"$tmp/$m.json"
    check_json "$tmp/$m.json" 2 verified
    [ "$(field "$tmp/$m.json" config.merge)" = "$m" ] || fail "config.merge"
    node -e "process.exit($(field "$tmp/$m.json" total.psum_refs) > 0 ? 0 : 1)" || fail "no psum refs ($m)"
done
wk=$(field "$tmp/kernel.json" total.refs.acc_write)
wr=$(field "$tmp/row.json" total.refs.acc_write)
[ "$wk" -le "$wr" ] || fail "kernel window writes more than row ($wk > $wr)"
$SG scnn --net alexnet --layers conv5 --arch dcnn --verify --json >"$tmp/d.json"
check_json "$tmp/d.json" 1 verified
[ "$(field "$tmp/d.json" total.refs.weight_index)" = 0 ] || fail "DCNN reads indices"
[ "$(field "$tmp/d.json" config.arch)" = dcnn ] || fail "config.arch"
# published-style per-layer densities: one per layer of the table (5 conv + 3 FC)
$SG scnn --net alexnet --layers conv2 --layer-densities -1,0.5,0.3,0.3,0.3,0.1,0.1,0.1 --json >"$tmp/ld.json"
node -e "process.exit(Math.abs($(field "$tmp/ld.json" layers.0.weight_density) - 0.5) < 1e-3 ? 0 : 1)" ||
    fail "--layer-densities"

# 3. a replacement energy table: DRAM for free lowers the energy, refs unchanged
echo '{"source": "test table", "dram_bit_pj": 0}' >"$tmp/e.json"
$SG scnn --net alexnet --layers conv5 --granularity vector --energy "$tmp/e.json" --json >"$tmp/e0.json"
e1=$(field "$tmp/product-stream.json" layers.1.energy_pj)
e0=$(field "$tmp/e0.json" total.energy_pj)
r1=$(field "$tmp/product-stream.json" layers.1.memory_refs)
r0=$(field "$tmp/e0.json" total.memory_refs)
[ "$r0" = "$r1" ] || fail "the energy table changed the memory references ($r0 vs $r1)"
node -e "process.exit($e0 < $e1 ? 0 : 1)" || fail "energy with free DRAM $e0 not below $e1"
[ "$(field "$tmp/e0.json" config.energy_table.source)" = "test table" ] || fail "energy source"

# 4. errors: usage errors exit 2, bad inputs exit 1 with a message
expect_rc 2 "$SG" scnn
expect_rc 2 "$SG" scnn --net vgg16 --bogus
expect_rc 2 "$SG" scnn --net vgg16 --pe 8by8
expect_rc 2 "$SG" scnn --net vgg16 --accumulate sometimes
expect_rc 2 "$SG" scnn --net vgg16 --merge kernel --accumulate merged
expect_rc 2 "$SG" scnn --net vgg16 --arch tpu
expect_rc 2 "$SG" scnn --net vgg16 --layer-densities 0.5,2
expect_rc 1 "$SG" scnn --net vgg16 --layer-densities 0.5,0.5
expect_rc 1 "$SG" scnn --net vgg16 --layers conv5_3 --merge kernel --psum-entries 1
grep -q "partial-sum buffer" "$tmp/err" || fail "message for a small partial-sum buffer"
expect_rc 2 "$SG" scnn --net vgg16 --images 3
expect_rc 2 "$SG" scnn --net vgg19
grep -q "unknown network" "$tmp/err" || fail "message for an unknown network"
expect_rc 1 "$SG" scnn --net vgg16 --layers conv9_9
grep -q "conv9_9" "$tmp/err" || fail "message for an unknown layer"
echo '{"dram_bit_pj": -1}' >"$tmp/bad.json"
expect_rc 1 "$SG" scnn --net vgg16 --layers conv5_3 --energy "$tmp/bad.json"
grep -q "bad.json" "$tmp/err" || fail "message for a bad energy file"
expect_rc 1 "$SG" scnn --net vgg16 --layers conv1_1 --pe 1x1

# 5. a real model: one short epoch of LeNet-5 on MNIST, 4 real test images
# (--lr 0.01: at the default 0.05 this 512-image run diverges at batch 7, seed 1)
$SG train --model lenet5 --epochs 1 --max-images 512 --lr 0.01 -o "$tmp/m.sgm" >/dev/null
$SG scnn "$tmp/m.sgm" --data mnist --images 4 --verify --json >"$tmp/m.json"
check_json "$tmp/m.json" 2 verified
[ "$(field "$tmp/m.json" layers.0.name)" = conv1 ] || fail "first layer"
[ "$(field "$tmp/m.json" config.images)" = 4 ] || fail "images"
$SG scnn "$tmp/m.sgm" --data mnist --images 2 --fc --accumulate merged >"$tmp/m.txt"
grep -q '^fc1 ' "$tmp/m.txt" || fail "--fc did not simulate fc1"
# one-shot pruning of a copy: conv1 stays dense, conv2 at the asked density
$SG scnn "$tmp/m.sgm" --data mnist --images 2 --granularity kernel --weight-density 0.3 --verify \
    --json >"$tmp/mp.json"
check_json "$tmp/mp.json" 2 verified
node -e "process.exit(Math.abs($(field "$tmp/mp.json" layers.1.weight_density) - 0.3) < 1e-3 &&
                      $(field "$tmp/mp.json" layers.0.weight_density) == 1 ? 0 : 1)" ||
    fail "one-shot pruning densities"
expect_rc 2 "$SG" scnn "$tmp/m.sgm" --data mnist --act-density 0.5
echo ok
