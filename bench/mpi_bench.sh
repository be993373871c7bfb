#!/usr/bin/env bash
# Data-parallel training over MPI against threads in one process, on this machine:
# LeNet-5 on an MNIST subset and VGG-7 on a Fashion-MNIST subset, each as
# 1 process x 1 thread, 1 process x 2 threads and 2 ranks x 1 thread (mpirun, bound to
# cores); the same global batch (64) everywhere. Each case runs REPEATS times and the
# best (shortest) training time counts: the machine is shared, and other work only
# ever slows a run down. The 2-rank case runs REPEATS more times with
# SG_DIST_PROFILE=1, where a barrier before each allreduce splits the time waiting for
# the slower rank from the reduction itself. Prints a table and appends rows to
# bench/results/mpi.csv. Then a quick study (LeNet-5, 2000 images, no SCNN or
# quantisation stage) in one process with two workers against two ranks of one
# worker each: wall and CPU seconds, seconds per point, and whether the rows agree
# (rows to bench/results/mpi_study.csv).
# Usage: bench/mpi_bench.sh [MPI_BUILD_DIR] (default build-mpi); SKIP_TRAIN=1 or
# SKIP_STUDY=1 leaves a part out. On a machine with two cores nothing beyond two
# ranks can be measured.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-mpi}
REPEATS=${REPEATS:-3}
SG=$build/sparsegrain
ldd "$SG" | grep -q libmpi || { echo "$SG is not an MPI build (make MPI=1)"; exit 1; }
cc -O2 -fopenmp -Iinclude -Isrc bench/net_macs.c "$build/libsparsegrain.a" -lprotobuf-c -lcjson \
    -lz -lpng -lm -ldl -o "$build/net_macs"
export SG_NO_PROGRESS=1
MPIRUN=(mpirun -np 2 --bind-to core)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
num() { sed -E "s/.*\"$1\": ([0-9.e+-]+).*/\1/"; }

out=bench/results/mpi.csv
mkdir -p bench/results
[ -s $out ] || echo "date,commit,machine,load_before,model,data,images,batch,ranks,threads_per_rank,runs,best_train_s,images_per_s,gmac_per_s,step_ms,allreduce_ms_per_step,wait_ms_per_step,reduce_ms_per_step,weights" > $out
machine="$(nproc)x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
commit=$(git rev-parse --short HEAD)

printf "%-7s %-8s %-16s %8s %8s %7s %8s %10s %13s\n" model data case "train s" "img/s" "GMAC/s" \
    "step ms" "allred ms" "wait+red ms"
[ "${SKIP_TRAIN:-0}" = 1 ] && specs=() || specs=("lenet5 mnist 12800" "vgg7 fashion 3200")
for spec in "${specs[@]}"; do
    read -r model data images <<< "$spec"
    read -r macs weights < <("$build/net_macs" | awk -v m="$model" '$1 == m {print $2, $3}')
    args=(train -m "$model" -d "$data" --epochs 1 --max-images "$images" --batch 64 --json -o "$tmp/m.sgm")
    steps=$(( (images + 63) / 64 ))
    for case in 1x1 1x2 2x1 2x1p; do
        best=""; json=""
        load=$(cut -d' ' -f1 /proc/loadavg)
        for _ in $(seq "$REPEATS"); do
            case $case in
            1x1) j=$("$SG" "${args[@]}" --threads 1) ;;
            1x2) j=$("$SG" "${args[@]}" --threads 2) ;;
            2x1) j=$("${MPIRUN[@]}" "$SG" "${args[@]}" --threads 1 --distributed) ;;
            2x1p) j=$("${MPIRUN[@]}" -x SG_DIST_PROFILE=1 "$SG" "${args[@]}" --threads 1 --distributed) ;;
            esac
            s=$(echo "$j" | num train_seconds)
            if [ -z "$best" ] || awk -v a="$s" -v b="$best" 'BEGIN{exit !(a < b)}'; then best=$s; json=$j; fi
        done
        ranks=${case%%x*}; thr=${case#*x}; thr=${thr%p}
        label="$ranks rank x $thr thr"; [ "$case" = 2x1p ] && label="$label (prof)"
        ar=0; wt=0
        if [ "$ranks" = 2 ]; then
            ar=$(echo "$json" | num allreduce_seconds); wt=$(echo "$json" | num allreduce_wait_seconds)
        fi
        # training MACs per image: the forward, and a backward of about twice the forward;
        # allreduce_seconds is the whole reduction, or with SG_DIST_PROFILE the part
        # after the barrier (allreduce_wait_seconds the barrier): their sum counts
        read -r ips gmac stepms arms waitms redms < <(awk -v s="$best" -v n="$images" -v m="$macs" \
            -v st="$steps" -v ar="$ar" -v w="$wt" 'BEGIN {
            printf "%.1f %.2f %.2f %.3f %.3f %.3f\n", n/s, 3*m*n/s/1e9, 1000*s/st, 1000*(ar+w)/st,
                   1000*w/st, 1000*ar/st }')
        arcol=-; wrcol=-; wcsv=","
        [ "$ranks" = 2 ] && arcol=$arms
        [ "$case" = 2x1p ] && wrcol="$waitms+$redms" && wcsv="$waitms,$redms"
        printf "%-7s %-8s %-16s %8.2f %8.1f %7.2f %8.2f %10s %13s\n" "$model" "$data" "$label" \
            "$best" "$ips" "$gmac" "$stepms" "$arcol" "$wrcol"
        echo "$(date -u +%FT%TZ),$commit,\"$machine\",$load,$model,$data,$images,64,$ranks,$thr$([ "$case" = 2x1p ] && echo ' profiled'),$REPEATS,$best,$ips,$gmac,$stepms,$([ "$ranks" = 2 ] && echo "$arms" || echo ""),$wcsv,$weights" >> $out
    done
done
echo "rows appended to $out"
[ "${SKIP_STUDY:-0}" = 1 ] && exit 0

# ---- the study: one process with two workers against two ranks of one worker ----
sout=bench/results/mpi_study.csv
[ -s $sout ] || echo "date,commit,machine,load_before,case,points,wall_s,cpu_s,s_per_point,rows_equal" > $sout
Q=(study --quick --train-images 2000 --test-images 1000 --threads 2 --scnn-images 0 --quantize none)
rows() { sed -E 's/"seconds": [^,]*, //' "$1/points.jsonl" | sort; }
printf "\n%-22s %7s %8s %8s %10s %s\n" study points "wall s" "cpu s" "s/point" "rows"
for case in 1x2 2x1; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    rm -rf "$tmp/$case"
    if [ $case = 1x2 ]; then
        /usr/bin/time -f "%e %U %S" -o "$tmp/t" "$SG" "${Q[@]}" --jobs 2 -o "$tmp/$case" > /dev/null
        label="1 process x 2 workers"
    else
        # not bound: rank 0's baseline (one seed) uses both cores, as in one process
        /usr/bin/time -f "%e %U %S" -o "$tmp/t" "${MPIRUN[@]/core/none}" "$SG" "${Q[@]}" \
            -o "$tmp/$case" > /dev/null
        label="2 ranks x 1 worker"
    fi
    read -r wall u sy < "$tmp/t"
    n=$(wc -l < "$tmp/$case/points.jsonl")
    # the points' own seconds: the work a point costs, wherever it ran
    spp=$(sed -E 's/.*"seconds": ([0-9.e+-]+).*/\1/' "$tmp/$case/points.jsonl" |
          awk '{s += $1} END {printf "%.2f", s / NR}')
    eq=-
    [ $case = 2x1 ] && { diff -q <(rows "$tmp/1x2") <(rows "$tmp/2x1") > /dev/null && eq=yes || eq=NO; }
    cpu=$(awk -v u="$u" -v s="$sy" 'BEGIN {printf "%.1f", u + s}')
    printf "%-22s %7d %8.1f %8.1f %10.2f %s\n" "$label" "$n" "$wall" "$cpu" "$spp" "$eq"
    echo "$(date -u +%FT%TZ),$commit,\"$machine\",$load,$case,$n,$wall,$cpu,$spp,$eq" >> $sout
done
echo "rows appended to $sout"
