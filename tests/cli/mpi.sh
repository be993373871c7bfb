#!/usr/bin/env bash
# Runs over MPI (two ranks on this machine, Open MPI on loopback):
#  - a quick study split over two ranks gives the same points.jsonl rows and tables
#    as one process;
#  - the same study with one rank killed (kill -9) stops with an error, leaves a
#    well-formed points.jsonl and complete model files, and the same command resumes
#    it to the same rows;
#  - two-rank data-parallel training for 300 steps gives the weights of one process
#    with the same global batch, within float tolerance; --check-sync holds (also
#    with batch norm).
# Skips (exit 0) without an MPI build (make MPI=1 BUILD=build-mpi) or without mpirun.
set -euo pipefail
SG=${SG:-build/sparsegrain}
if ! ldd "$SG" 2>/dev/null | grep -q libmpi; then
    echo "SKIP: $SG is not an MPI build (make MPI=1 BUILD=build-mpi, then" \
         "SG=build-mpi/sparsegrain bash tests/cli/mpi.sh; .ci/run does)"
    exit 0
fi
if ! command -v mpirun >/dev/null 2>&1; then
    echo "SKIP: no mpirun (apt-get install openmpi-bin; scripts/install-deps.sh does)"
    exit 0
fi
SG=$(realpath "$SG")
WDIFF=$(dirname "$SG")/tools/sg_wdiff
export SG_NO_PROGRESS=1
# two ranks on two cores; --bind-to none lets rank 0's baseline use both cores
MPIRUN=(mpirun -np 2 --oversubscribe --bind-to none ${MPIRUN_FLAGS:-})
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)

tmp=$(mktemp -d)
mp=""
cleanup() {
    [ -n "$mp" ] && kill -9 -- "-$mp" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
rows() { sed -E 's/"seconds": [^,]*, //' "$1/points.jsonl" | sort; }
# the baseline's weights depend on its thread count: pin it (0 would take the idle cores)
Q="--quick --train-images 2000 --test-images 1000 --threads 2"

# ---- study: one process against two ranks ----
"$SG" study $Q -o "$tmp/a" > "$tmp/a.out"
"${MPIRUN[@]}" "$SG" study $Q -o "$tmp/m" > "$tmp/m.out"
diff <(rows "$tmp/a") <(rows "$tmp/m")
for f in curves.csv no_loss.csv storage.csv quantize.csv; do cmp "$tmp/a/$f" "$tmp/m/$f"; done
test "$(grep -c . "$tmp/m.out")" -eq "$(grep -c . "$tmp/a.out")" # rank 0 alone prints
echo "study: two ranks give the same $(wc -l < "$tmp/m/points.jsonl") rows as one process"

# ---- study: kill -9 one rank, check what is left, resume ----
# (the rows are what is compared: the storage, quantisation, SCNN and inference-speed
# stages after the phases are left out, they ran above)
K="$Q --scnn-images 0 --quantize none --infer-batch 0"
setsid "${MPIRUN[@]}" "$SG" study $K -o "$tmp/k" > /dev/null 2> "$tmp/k.err" &
mp=$!
rank_pid() { # the pid of rank $1 among mpirun's children
    for c in $(pgrep -P "$mp"); do
        tr '\0' '\n' < "/proc/$c/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" && echo "$c"
    done
    return 0
}
# chain i of a phase runs on rank i mod 2, so rank 1 runs the second chain (vector):
# wait for its first point, which reached points.jsonl through rank 0, then kill
# rank 1 while it works on the next one
for _ in $(seq 1200); do
    grep -q '"granularity": "vector"' "$tmp/k/points.jsonl" 2>/dev/null && break
    sleep 0.25
done
grep -q '"granularity": "vector"' "$tmp/k/points.jsonl"
r1=$(rank_pid 1)
test -n "$r1"
kill -9 "$r1"
set +e
wait "$mp"
rc=$?
set -e
mp=""
test "$rc" -ne 0
grep -q "rank 1 .*exited on signal 9" "$tmp/k.err" # mpirun names the rank that died
for _ in $(seq 40); do pgrep -f -- "-o $tmp/k" > /dev/null || break; sleep 0.25; done
if pgrep -f -- "-o $tmp/k" > /dev/null; then echo "a worker outlived the job"; exit 1; fi
# points.jsonl: complete lines of JSON; every model file complete
tail -c 1 "$tmp/k/points.jsonl" | od -c | grep -q '\\n'
if [ -x /usr/bin/python3 ]; then
    /usr/bin/python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$tmp/k/points.jsonl"
fi
n_before=$(wc -l < "$tmp/k/points.jsonl")
for f in "$tmp"/k/models/*.sgm; do "$SG" info "$f" > /dev/null; done
"${MPIRUN[@]}" "$SG" study $K -o "$tmp/k" > /dev/null
diff <(rows "$tmp/a") <(rows "$tmp/k")
echo "study: rank 1 killed after $n_before points: error, intact files, resumed to the same rows"
grep "sparsegrain: error" "$tmp/k.err" | sed 's/^/  rank 0 said: /' || true

# ---- data-parallel training: two ranks x 1 thread against one process ----
T="--epochs 1 --max-images 19200 -d mnist" # 300 steps of batch 64
for m in "lenet300" "lenet5 --momentum 0"; do
    "$SG" train -m $m $T --threads 1 -o "$tmp/one.sgm" > /dev/null
    "${MPIRUN[@]}" "$SG" train -m $m $T --threads 1 --distributed --check-sync \
        -o "$tmp/two.sgm" > /dev/null
    echo "train $m, 300 steps: $("$WDIFF" "$tmp/two.sgm" "$tmp/one.sgm" 1e-4)"
done
# batch norm: per-rank statistics, but the running ones stay the same on every rank
"${MPIRUN[@]}" "$SG" train -m vgg7 -d fashion --epochs 1 --max-images 1280 --threads 1 \
    --distributed --check-sync -o "$tmp/bn.sgm" > /dev/null
echo "mpi: study split, kill and resume, data-parallel training: ok ($SECONDS s)"
