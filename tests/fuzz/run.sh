#!/usr/bin/env bash
# Runs every libFuzzer target of BUILD_DIR/fuzz/ for SECONDS each, starting from its
# seed corpus tests/fuzz/corpus/<target>/ (new inputs go to BUILD_DIR/fuzz-work/, the
# committed corpus stays as it is). Fails on any crash, leak, timeout (> 10 s per
# input) or allocation beyond 2 GB; the failing input is kept in
# BUILD_DIR/fuzz-artifacts/ and can be replayed with `BUILD_DIR/fuzz/<target> FILE`.
# Prints one line per target with the executions it ran. The targets run
# SG_FUZZ_JOBS at a time (default: the cores; each target is one thread), so the
# wall time is about SECONDS x targets / jobs.
# Usage: tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]
set -u
build=${1:-build-fuzz}
secs=${2:-10}
shift 2 || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for b in "$build"/fuzz/fuzz_*; do [ -x "$b" ] && targets+=("$(basename "$b")"); done
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets in $build/fuzz (make fuzz-build)"; exit 1; }
# one thread everywhere: the machine is shared and runs must be reproducible
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$build/fuzz-artifacts"
jobs=${SG_FUZZ_JOBS:-$(nproc)}
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: SG_FUZZ_JOBS must be a positive integer, not '$jobs'" >&2; exit 2; }

# One target: fuzzes it, then writes its result line (and on failure the log's
# essentials) to $work.result and its executions to $work.execs; exits with the
# fuzzer's status.
one() {
    local t=$1 seeds=tests/fuzz/corpus/$1 work=$build/fuzz-work/$1
    mkdir -p "$work"
    [ -d "$seeds" ] || mkdir -p "$seeds"
    local log=$build/fuzz-work/$t.log start rc el execs rate
    start=$(date +%s)
    "$build/fuzz/$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$t-" \
        "$work" "$seeds" >"$log" 2>&1
    rc=$?
    el=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    echo "${execs:-0}" > "$work.execs"
    if [ $rc -eq 0 ]; then
        printf "%-22s %8s %12s %10s  ok\n" "$t" "$el" "${execs:-?}" "${rate:-?}" > "$work.result"
    else
        { printf "%-22s %8s %12s %10s  FAILED (exit %d)\n" "$t" "$el" "${execs:-?}" "${rate:-?}" "$rc"
          grep -E "ERROR|SUMMARY|runtime error|FUZZ_CHECK|Test unit written|^ *#[0-9]" "$log" |
              grep -vE "in fuzzer::|in __sanitizer|libc\.so|libc_start|in _start|in main " |
              head -n 30 | sed 's/^/    /'; } > "$work.result"
    fi
    return $rc
}

printf "%-22s %8s %12s %10s  %s\n" target seconds executions exec/s result
running=0
for t in "${targets[@]}"; do
    rm -f "$build/fuzz-work/$t.result" "$build/fuzz-work/$t.execs"
    one "$t" &
    running=$((running + 1))
    if [ $running -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait
# the results in the targets' order, whatever order they ended in
failed=0
total=0
for t in "${targets[@]}"; do
    r=$build/fuzz-work/$t.result
    if [ -s "$r" ]; then
        cat "$r"
        grep -q '  ok$' <(head -n 1 "$r") || failed=$((failed + 1))
    else
        failed=$((failed + 1))
        printf "%-22s %8s %12s %10s  FAILED (no result)\n" "$t" ? ? ?
    fi
    total=$((total + $(cat "$build/fuzz-work/$t.execs" 2>/dev/null || echo 0)))
done
echo "fuzz: ${#targets[@]} targets, $total executions, $failed failed"
[ "$failed" -eq 0 ]
