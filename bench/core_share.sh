#!/usr/bin/env bash
# What a second busy core costs on this machine: the one-thread training step of
# MODEL at batch 32 (a thread's share of a two-thread step at batch 64), timed in
# the thread's CPU time by bench/train_profile.c, first alone, then as two
# independent processes at once (no shared data, no synchronisation: whatever
# slows them is the machine: shared caches, memory bandwidth, a host that puts the
# two virtual CPUs on one physical core). ROUNDS rounds (default 5), alone and
# paired alternating. The two-thread trainer cannot step faster than the paired
# processes do. Appends a row to bench/results/core_share.csv (CPU model in it).
# Usage: bench/core_share.sh [MODEL (default vgg7)]; env ROUNDS, STEPS (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-vgg7}
rounds=${ROUNDS:-5}
steps=${STEPS:-10}
make -s build/libsparsegrain.a
cc -O2 -fopenmp -Iinclude -Isrc bench/train_profile.c build/libsparsegrain.a -lprotobuf-c -lcjson \
    -lz -lpng -lm -ldl -o build/train_profile
cpu="$(nproc)x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
step() { build/train_profile "$model" 1 28 28 32 "$steps" 1 | sed -n 's/^total per step: \([0-9.]*\) ms.*/\1/p'; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
alone=() paired=()
for ((r = 0; r < rounds; r++)); do
    alone+=("$(step)")
    step > "$tmp/other" & pid=$!
    paired+=("$(step)")
    wait $pid
    paired+=("$(cat "$tmp/other")")
done
mm() { printf '%s\n' "$@" | sort -g | sed -n '1p;$p' | paste -sd' ' -; }
read -r a_lo a_hi < <(mm "${alone[@]}")
read -r p_lo p_hi < <(mm "${paired[@]}")
med() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
a_med=$(med "${alone[@]}") p_med=$(med "${paired[@]}")
echo "$model one-thread step at batch 32, CPU time, $cpu, $rounds rounds"
echo "  alone      ${a_lo}-${a_hi} ms (median $a_med)"
echo "  two at once ${p_lo}-${p_hi} ms (median $p_med): each $(awk -v p="$p_med" -v a="$a_med" 'BEGIN {printf "%.2f", p / a}')x the lone step (medians)"
mkdir -p bench/results
f=bench/results/core_share.csv
[ -s $f ] || echo "date,commit,machine,model,steps,rounds,alone_min_ms,alone_median_ms,alone_max_ms,paired_min_ms,paired_median_ms,paired_max_ms" > $f
echo "$(date -u +%F),$(git rev-parse --short HEAD 2>/dev/null || echo unknown),$cpu,$model,$steps,$rounds,$a_lo,$a_med,$a_hi,$p_lo,$p_med,$p_hi" >> $f
