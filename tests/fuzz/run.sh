#!/usr/bin/env bash
# Runs every libFuzzer target of BUILD_DIR/fuzz/ for SECONDS each, starting from its
# seed corpus tests/fuzz/corpus/<target>/ (new inputs go to BUILD_DIR/fuzz-work/, the
# committed corpus stays as it is). Fails on any crash, leak, timeout (> 10 s per
# input) or allocation beyond 2 GB; the failing input is kept in
# BUILD_DIR/fuzz-artifacts/ and can be replayed with `BUILD_DIR/fuzz/<target> FILE`.
# Prints one line per target with the executions it ran.
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
failed=0
total=0
printf "%-22s %8s %12s %10s  %s\n" target seconds executions exec/s result
for t in "${targets[@]}"; do
    seeds=tests/fuzz/corpus/$t
    work=$build/fuzz-work/$t
    mkdir -p "$work"
    [ -d "$seeds" ] || mkdir -p "$seeds"
    log=$build/fuzz-work/$t.log
    start=$(date +%s)
    "$build/fuzz/$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$t-" \
        "$work" "$seeds" >"$log" 2>&1
    rc=$?
    el=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    total=$((total + ${execs:-0}))
    if [ $rc -eq 0 ]; then
        printf "%-22s %8s %12s %10s  ok\n" "$t" "$el" "${execs:-?}" "${rate:-?}"
    else
        failed=$((failed + 1))
        printf "%-22s %8s %12s %10s  FAILED (exit %d)\n" "$t" "$el" "${execs:-?}" "${rate:-?}" "$rc"
        grep -E "ERROR|SUMMARY|runtime error|FUZZ_CHECK|Test unit written|^ *#[0-9]" "$log" |
            grep -vE "in fuzzer::|in __sanitizer|libc\.so|libc_start|in _start|in main " |
            head -n 30 | sed 's/^/    /'
    fi
done
echo "fuzz: ${#targets[@]} targets, $total executions, $failed failed"
[ "$failed" -eq 0 ]
