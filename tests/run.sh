#!/usr/bin/env bash
# Runs the C unit tests, then every command-line test in tests/cli/*.sh, and ends
# with one line "N passed, N failed" covering both. Usage: tests/run.sh BUILD_DIR [filter]
set -u
build=${1:-build}
shift || true
export SG=$PWD/$build/sparsegrain
out=$(mktemp)
"$build/sg_tests" "$@" | tee "$out"
line=$(tail -n 1 "$out")
passed=$(echo "$line" | awk '{print $1}')
failed=$(echo "$line" | awk '{print $3}')
[[ "$passed" =~ ^[0-9]+$ ]] || { passed=0; failed=$((failed + 1)); }
rm -f "$out"
for t in tests/cli/*.sh; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .sh)
    if [ $# -gt 0 ] && ! [[ " $* " == *" $name "* ]]; then continue; fi
    start=$(date +%s.%N)
    log=$(mktemp)
    timeout 900 bash "$t" >"$log" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1))
        printf "ok    %-48s %7.2f s\n" "cli/$name" "$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{print e-s}')"
    else
        failed=$((failed + 1))
        printf "FAIL  %-48s%s\n" "cli/$name" "$([ $rc -eq 124 ] && echo ' (timeout after 900 s)')"
        sed 's/^/    /' "$log" | tail -n 30
    fi
    rm -f "$log"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
