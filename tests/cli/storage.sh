#!/usr/bin/env bash
# storage, encode, decode end to end: sizes in --json add up, .sgz files are the
# reported streams plus the documented overhead, decode restores the model byte
# for byte (32-bit values), damaged files are refused. $SG is the binary.
set -euo pipefail
SG=${SG:-build/sparsegrain}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export SG_NO_PROGRESS=1

$SG train --model lenet5 --epochs 1 --max-images 512 --lr 0.01 -o "$tmp/m.sgm" >/dev/null

# Pruned copies written directly in the .sgm layout (src/io/sgm.c): k.sgm keeps
# whole kernels, 2 of every 4 input channels (so it is also 2:4 along C), fc 2:4,
# and records granularity=kernel; f.sgm is fine-grained at about 30%.
cat >"$tmp/prune.py" <<'PYEOF'
import random, struct, sys, zlib
# Rewrites a .sgm model with pruned conv/fc weights (layout: src/io/sgm.c):
# conv kernels kept 2 of every 4 input channels (whole RxS kernels), fc 2:4 along C,
# first layers with C < 4 keep about half; adds metadata granularity=kernel.
src, dst, mode = sys.argv[1], sys.argv[2], sys.argv[3]
b = open(src, 'rb').read()
assert b[:8] == b'SGMODEL\0'
ver, flags = struct.unpack_from('<II', b, 8)
off, secs = 24, []
while True:
    tag, _, n = struct.unpack_from('<IIQ', b, off)
    secs.append([b[off:off+4], bytearray(b[off+16:off+16+n])])
    off += 16 + n
    off += (8 - off % 8) % 8
    if b[off-16-n-(0):off-16-n+4-0] == b'END ' or secs[-1][0] == b'END ':
        break
sec = {s[0]: s for s in secs}
p = sec[b'PRMS'][1]
n, = struct.unpack_from('<I', p, 0); o = 4; params = []
for i in range(n):
    l, = struct.unpack_from('<I', p, o); name = p[o+4:o+4+l].decode(); o += 4 + l
    kind, layer, node, ndim = struct.unpack_from('<IIiI', p, o); o += 16
    dims = list(struct.unpack_from('<%dQ' % ndim, p, o)); o += 8 * ndim
    cnt = 1
    for d in dims: cnt *= d
    params.append((name, kind, layer, dims, cnt))
data, mask = sec[b'DATA'][1], sec[b'MASK'][1]
rng = random.Random(7)
doff = moff = 0
for name, kind, layer, dims, cnt in params:
    if kind == 0 and layer != 0:
        K, C = dims[0], dims[1]
        RS = dims[2] * dims[3] if len(dims) == 4 else 1
        keep = [0] * cnt
        for k in range(K):
            for c0 in range(0, C, 4):
                g = list(range(c0, min(C, c0 + 4)))
                if mode == 'fine':
                    for c in g:
                        for rs in range(RS):
                            keep[(k * C + c) * RS + rs] = 1 if rng.random() < 0.3 else 0
                    continue
                chosen = rng.sample(g, 2) if len(g) >= 4 else [c for c in g if rng.random() < 0.5]
                for c in chosen:
                    for rs in range(RS):
                        keep[(k * C + c) * RS + rs] = 1
        for j in range(cnt):
            if not keep[j]:
                struct.pack_into('<f', data, doff + 4 * j, 0.0)
        mb = bytearray((cnt + 7) // 8)
        for j in range(cnt):
            if keep[j]: mb[j // 8] |= 1 << (j % 8)
        mask[moff:moff + len(mb)] = mb
    doff += 4 * cnt
    moff += (cnt + 7) // 8
if mode != 'fine':
    m = sec[b'META'][1]
    cnt, = struct.unpack_from('<I', m, 0)
    struct.pack_into('<I', m, 0, cnt + 1)
    for s in (b'granularity', b'kernel'):
        m += struct.pack('<I', len(s)) + s
out = bytearray(b'SGMODEL\0' + struct.pack('<IIQ', ver, flags, 0))
for tag, pay in secs:
    out += tag + struct.pack('<IQ', 0, len(pay)) + pay
    out += b'\0' * ((8 - len(out) % 8) % 8)
struct.pack_into('<Q', out, 16, len(out) + 4)
out += struct.pack('<I', zlib.crc32(bytes(out)) & 0xffffffff)
open(dst, 'wb').write(out)
PYEOF
"$PY" "$tmp/prune.py" "$tmp/m.sgm" "$tmp/k.sgm" kernel
"$PY" "$tmp/prune.py" "$tmp/m.sgm" "$tmp/f.sgm" fine

# 1. storage --json: bits add up to bytes, totals are sums, best is the minimum,
#    and coarse groups save index bits (the paper's "index saving").
$SG storage "$tmp/k.sgm" --json >"$tmp/k.json"
$SG storage "$tmp/f.sgm" --json >"$tmp/f.json"
"$PY" - "$tmp/k.json" "$tmp/f.json" <<'PYEOF'
import json, sys
k = json.load(open(sys.argv[1])); f = json.load(open(sys.argv[2]))
keys = ('values', 'value_bits', 'index_bits', 'filler_bits', 'meta_bits', 'bytes')
for d in (k, f):
    tot = {}
    for L in d['layers']:
        w = L['weights']
        ok = {n: s for n, s in L['formats'].items() if s is not None}
        for n, s in ok.items():
            bits = s['value_bits'] + s['index_bits'] + s['filler_bits'] + s['meta_bits'] + s['pad_bits']
            assert bits == 8 * s['bytes'] and 0 <= s['pad_bits'] < 8, (L['name'], n, s)
            assert abs(s['ratio'] - 4 * w / s['bytes']) < 1e-9, (L['name'], n)
            for key in keys:
                tot.setdefault(n, {}).setdefault(key, 0)
                tot[n][key] += s[key]
        assert L['best'] == min(ok, key=lambda n: ok[n]['bytes']), L['name']
        assert ok['dense']['values'] == w and ok['bitmap']['values'] == L['kept']
    for n, s in d['total'].items():
        if s is None:
            continue
        for key in keys:
            assert s[key] == tot[n][key], (n, key)
conv = [L for L in k['layers'] if L['shape'][2] > 1]
for L in conv:
    assert L['tile'] == '1x1x%dx%d' % (L['shape'][2], L['shape'][3]), L['tile']  # from metadata
    g, r = L['formats']['group'], L['formats']['relidx']
    assert g['index_bits'] * 25 == r['index_bits'], (g, r)  # one index per 5x5 kernel
    assert g['bytes'] < r['bytes']
assert all(s is not None for s in k['total'].values())
assert f['total']['nm'] is None  # fine 30% random is not 2:4
assert f['layers'][0]['formats']['nm'] is not None  # conv1 has C = 1: any mask is 1:1
print('storage json ok')
PYEOF

# 2. encode/decode every format: byte-identical .sgm, size = streams + overhead
for fmt in dense relidx group csr bitmap rle4 nm bcsr; do
    $SG encode "$tmp/k.sgm" --format "$fmt" -o "$tmp/k.$fmt.sgz" --json >"$tmp/enc.$fmt.json"
    $SG decode "$tmp/k.$fmt.sgz" -o "$tmp/k.$fmt.sgm" >/dev/null
    cmp "$tmp/k.sgm" "$tmp/k.$fmt.sgm"
done
$SG info "$tmp/k.sgm" --json >"$tmp/info.json"
"$PY" - "$tmp" <<'PYEOF'
import json, os, struct, sys
t = sys.argv[1]
st = json.load(open(t + '/k.json')); info = json.load(open(t + '/info.json'))
layers = {L['name'] for L in st['layers']}
other = sum(p['count'] * 4 + (p['count'] + 7) // 8 for p in info['params'] if p['name'] not in layers)
for fmt in st['total']:
    path = '%s/k.%s.sgz' % (t, fmt)
    size = os.path.getsize(path)
    hdr = open(path, 'rb').read(128)
    arch = struct.unpack_from('<Q', hdr, 96)[0]
    overhead = 128 + 16 * len(layers) + arch + other + 4
    assert size == st['total'][fmt]['bytes'] + overhead, (fmt, size, st['total'][fmt]['bytes'], overhead)
    e = json.load(open('%s/enc.%s.json' % (t, fmt)))
    assert e['bytes'] == size and e['layer_bytes'] == st['total'][fmt]['bytes']
    assert e['overhead'] == {'header': 128, 'table': 16 * len(layers), 'arch': arch, 'other': other, 'crc': 4}, e
print('sgz sizes ok')
PYEOF

# 3. lossy value codings and auto index widths: masks survive, sizes still match
for opt in "--value-bits 16" "--value-bits 8" "--codebook-bits 5" "--index-bits auto" "--granularity block:2x2x5x5"; do
    # shellcheck disable=SC2086
    $SG storage "$tmp/k.sgm" --formats group,relidx,bcsr $opt --json >"$tmp/s.json"
    # shellcheck disable=SC2086
    $SG encode "$tmp/k.sgm" --format group $opt -o "$tmp/q.sgz" --json >"$tmp/e.json"
    $SG decode "$tmp/q.sgz" -o "$tmp/q.sgm" >/dev/null
    $SG storage "$tmp/q.sgm" --formats dense --json >"$tmp/qs.json"
    "$PY" - "$tmp/s.json" "$tmp/e.json" "$tmp/qs.json" <<'PYEOF'
import json, sys
s, e, q = (json.load(open(p)) for p in sys.argv[1:])
assert e['layer_bytes'] == s['total']['group']['bytes'], (e, s['total'])
assert [L['kept'] for L in s['layers']] == [L['kept'] for L in q['layers']]  # masks survive
PYEOF
done
cmp "$tmp/k.sgm" "$tmp/q.sgm" # the last one (block tiles) kept 32-bit values: lossless

# 4. errors: nm on a mask that is not 2:4, damaged files, bad options
if $SG encode "$tmp/f.sgm" --format nm -o "$tmp/x.sgz" 2>"$tmp/err"; then exit 1; fi
grep -q "not 2:4" "$tmp/err"
head -c 1000 "$tmp/k.group.sgz" >"$tmp/cut.sgz"
if $SG decode "$tmp/cut.sgz" -o "$tmp/x.sgm" 2>"$tmp/err"; then exit 1; fi
grep -q "cut.sgz" "$tmp/err" && grep -q "sparsegrain: error:" "$tmp/err"
cp "$tmp/k.group.sgz" "$tmp/flip.sgz"
printf '\x55' | dd of="$tmp/flip.sgz" bs=1 seek=5000 conv=notrunc 2>/dev/null
if $SG decode "$tmp/flip.sgz" -o "$tmp/x.sgm" 2>"$tmp/err"; then exit 1; fi
grep -q "checksum" "$tmp/err"
[ ! -e "$tmp/x.sgm" ]
set +e
$SG storage "$tmp/k.sgm" --formats zip >/dev/null 2>&1; [ $? -eq 2 ] || exit 1
$SG storage "$tmp/k.sgm" --value-bits 12 >/dev/null 2>&1; [ $? -eq 2 ] || exit 1
$SG storage "$tmp/k.sgm" --granularity block:1x2 >/dev/null 2>&1; [ $? -eq 2 ] || exit 1
set -e
$SG storage "$tmp/k.sgm" --csv | "$PY" -c 'import csv,sys; r=list(csv.reader(sys.stdin)); assert len(r)==1+5*8 and r[0][0]=="layer", len(r)'
echo "storage cli ok"
