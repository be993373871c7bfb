#!/usr/bin/env bash
# Runs the C unit tests and every command-line test in tests/cli/*.sh, SG_TEST_JOBS of
# them at a time (default: the machine's cores; a test alone uses about one core), and
# ends with one line "N passed, N failed" covering both. Each result is printed when its
# test ends; a failure prints the end of its log. The longest tests start first.
# SG_TEST_SKIP names command-line tests to leave out (printed as skipped).
# Usage: tests/run.sh BUILD_DIR [filter]
set -u
build=${1:-build}
shift || true
export SG=$PWD/$build/sparsegrain
jobs=${SG_TEST_JOBS:-$(nproc)}
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "tests/run.sh: SG_TEST_JOBS must be a positive integer, not '$jobs'" >&2; exit 2; }
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$dir"' EXIT

# The queue: the C unit tests (one job: sg_tests forks each test itself), then the
# command-line tests, the slowest first so that they do not end the run alone.
queue=(unit)
slow="study report report_browser"
for n in $slow; do [ -e "tests/cli/$n.sh" ] && queue+=("$n"); done
for t in tests/cli/*.sh; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .sh)
    [[ " $slow " == *" $name "* ]] || queue+=("$name")
done
want() { [ $# -le 1 ] || [[ " ${*:2} " == *" $1 "* ]]; }

passed=0
failed=0
declare -A name_of start_of
# Starts one job of the queue: the unit tests get the filter as their arguments.
launch() {
    local name=$1
    shift
    if [ "$name" = unit ]; then
        "$build/sg_tests" "$@" >"$dir/unit.log" 2>&1 &
    else
        want "$name" "$@" || return 0
        if [[ " ${SG_TEST_SKIP:-} " == *" $name "* ]]; then
            printf "skip  %-48s (SG_TEST_SKIP)\n" "cli/$name"
            return 0
        fi
        timeout 900 bash "tests/cli/$name.sh" >"$dir/$name.log" 2>&1 &
    fi
    name_of[$!]=$name
    start_of[$!]=$(date +%s.%N)
}

reap() {
    local pid rc name secs line p f
    wait -n -p pid
    rc=$?
    name=${name_of[$pid]}
    unset "name_of[$pid]"
    if [ "$name" = unit ]; then
        cat "$dir/unit.log"
        line=$(tail -n 1 "$dir/unit.log")
        p=$(echo "$line" | awk '{print $1}')
        f=$(echo "$line" | awk '{print $3}')
        if [[ "$p" =~ ^[0-9]+$ && "$f" =~ ^[0-9]+$ ]]; then
            passed=$((passed + p)); failed=$((failed + f))
        else
            failed=$((failed + 1)); echo "FAIL  sg_tests ended without its summary line (exit $rc)"
        fi
        return
    fi
    secs=$(awk -v s="${start_of[$pid]}" -v e="$(date +%s.%N)" 'BEGIN{print e-s}')
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1))
        printf "ok    %-48s %7.2f s\n" "cli/$name" "$secs"
    else
        failed=$((failed + 1))
        printf "FAIL  %-48s%s\n" "cli/$name" "$([ $rc -eq 124 ] && echo ' (timeout after 900 s)')"
        sed 's/^/    /' "$dir/$name.log" | tail -n 30
    fi
}

for name in "${queue[@]}"; do
    launch "$name" "$@"
    while [ ${#name_of[@]} -ge "$jobs" ]; do reap; done
done
while [ ${#name_of[@]} -gt 0 ]; do reap; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
