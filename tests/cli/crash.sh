#!/usr/bin/env bash
# kill -9 during writes: no output is ever damaged, and an interrupted `train`
# continues with --resume to the same bytes as an uninterrupted run.
#
# Two kinds of kill:
#   at a system call   strace delivers SIGKILL on entering the n-th write, fsync or
#                      rename of the process: exactly before the data is written,
#                      before it is made durable, before the temporary file replaces
#                      the old one, and (write 2) after it did. The outcome is known
#                      and checked exactly: the old file before the rename, the new
#                      one after it.
#   at a random time   uniform over the command's measured duration (bash RANDOM,
#                      seeded: CRASH_SEED=N; the default seed is fixed); the outcome
#                      must be the old file or the new one, never anything else.
# The study's own kill -9 and resume test is tests/cli/study.sh.
# Without a working strace (not installed, or ptrace not permitted) only the random
# kills run. Prints the number of trials.
set -euo pipefail
SG=${SG:-build/sparsegrain}
SG=$(cd "$(dirname "$SG")" && pwd)/$(basename "$SG")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
export SG_NO_PROGRESS=1
seed=${CRASH_SEED:-1}
RANDOM=$seed
fail() { echo "crash.sh: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.3f", e - s }'; }
delay() { awk -v max="$1" -v r="$RANDOM" 'BEGIN { printf "%.3f", max * r / 32768 }'; }
valid_model() { "$SG" info "$1" >/dev/null 2>&1; }
md5() { md5sum < "$1" | cut -d' ' -f1; }
inject=0
if command -v strace >/dev/null 2>&1 && strace -f -qq -o /dev/null true 2>/dev/null; then inject=1; fi
kills=0

# kill_at SYSCALL N CMD...: SIGKILL on entering the N-th SYSCALL; 1 if killed, 0 if
# the command finished first (not every run makes N such calls)
kill_at() {
    local sc=$1 n=$2
    shift 2
    set +e
    { strace -f -qq -o /dev/null -e inject="$sc":signal=KILL:when="$n" "$@" >/dev/null 2>&1; } 2>/dev/null
    local rc=$?
    set -e
    [ $rc -eq 137 ] && { kills=$((kills + 1)); return 1; }
    [ $rc -eq 0 ] || fail "$* failed with exit code $rc"
    return 0
}
# kill_after SECONDS CMD...: kills the command's process group after SECONDS
kill_after() {
    local d=$1
    shift
    setsid "$@" >/dev/null 2>&1 &
    local pid=$!
    sleep "$d"
    if kill -9 -- "-$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null || true
        kills=$((kills + 1))
        return 1
    fi
    wait "$pid" 2>/dev/null || true
    return 0
}

# ---- train: checkpoints survive kills; --resume ends with the uninterrupted bytes ----
TRAIN=("$SG" train -m lenet5 --epochs 3 --max-images 256 --seed 7 -t 1 --resume -o m.sgm)
mkdir ref kill
t0=$(now)
(cd ref && "${TRAIN[@]}" >/dev/null)
T=$(elapsed "$t0")
cd kill
checks=0
check_ckpt() { # the checkpoint is absent or a whole model
    [ -e m.sgm ] || return 0
    valid_model m.sgm || fail "train killed ($1): m.sgm is damaged"
    checks=$((checks + 1))
}
if [ $inject = 1 ]; then
    # before the first checkpoint's rename: there is no m.sgm yet
    kill_at rename 1 "${TRAIN[@]}" || true
    [ ! -e m.sgm ] || fail "train killed before its first rename, yet m.sgm exists"
    # the first checkpoint in place, killed while writing the second
    kill_at rename 2 "${TRAIN[@]}" || true
    check_ckpt "rename 2"
    [ -e m.sgm ] || fail "train killed before its second rename: the first checkpoint is missing"
    kill_at fsync 1 "${TRAIN[@]}" || true # a resumed run, killed before its first fsync
    check_ckpt "fsync 1"
fi
for i in 1 2; do
    kill_after "$(delay "$T")" "${TRAIN[@]}" || true
    check_ckpt "after a random delay"
done
"${TRAIN[@]}" >/dev/null 2>&1 # (says "nothing to resume" when a random kill came too late)
cd ..
cmp -s ref/m.sgm kill/m.sgm || fail "train killed and resumed differs from the uninterrupted run"
echo "crash.sh: train killed $kills times (checkpoint valid $checks times), --resume gave the uninterrupted run's bytes"

# ---- writers: the old file or the new one, never a mix ----
"$SG" prune ref/m.sgm -g filter -D 0.5 -o pruned.sgm >/dev/null
"$SG" encode pruned.sgm --format bitmap -o pruned.sgz >/dev/null
old_ver=0 new_ver=0
# writer NAME OUT OLD_CMD NEW_CMD: both commands write OUT
writer() {
    local name=$1 out=$2 old=$3 new=$4 k0=$kills o n
    eval "$new" >/dev/null
    n=$(md5 "$out")
    cp "$out" new.copy
    eval "$old" >/dev/null
    o=$(md5 "$out")
    cp "$out" old.copy
    [ "$o" != "$n" ] || fail "$name: the old and the new version are the same"
    local expect=()
    if [ $inject = 1 ]; then
        # write 1 is the file's data (one write per file), fsync 1 makes it durable,
        # fsync 2 the directory after the rename, write 2 is the report on stdout
        for at in write:1:old fsync:1:old rename:1:old fsync:2:new write:2:new; do
            IFS=: read -r sc k want <<<"$at"
            cp old.copy "$out"
            eval "kill_at $sc $k $new" && fail "$name: was not killed at $sc $k"
            local got=$(md5 "$out") w=$o
            [ "$want" = new ] && w=$n
            [ "$got" = "$w" ] || fail "$name: killed at $sc $k, $out is not the $want version"
        done
    fi
    t0=$(now)
    cp old.copy "$out"
    eval "$new" >/dev/null
    local Tw=$(elapsed "$t0")
    for i in 1 2 3; do
        cp old.copy "$out"
        eval "kill_after $(delay "$Tw") $new" || true
        case $(md5 "$out") in
        "$o") old_ver=$((old_ver + 1)) ;;
        "$n") new_ver=$((new_ver + 1)) ;;
        *) fail "$name: killed at a random time, $out is neither the old nor the new version" ;;
        esac
    done
    echo "crash.sh: $name killed $((kills - k0)) times while overwriting $out, never damaged"
}
writer encode out.sgz "'$SG' encode ref/m.sgm --format csr -o out.sgz" "'$SG' encode pruned.sgm --format relidx -o out.sgz"
writer decode out.sgm "'$SG' export ref/m.sgm -o out.sgm" "'$SG' decode pruned.sgz -o out.sgm"
writer "export onnx" out.onnx "'$SG' export ref/m.sgm -o out.onnx" "'$SG' export pruned.sgm -o out.onnx"
writer "export npz" out.npz "'$SG' export ref/m.sgm -o out.npz" "'$SG' export pruned.sgm -o out.npz"
echo "crash.sh: $kills kill -9 trials in all (seed $seed, system-call kills: $([ $inject = 1 ] && echo yes || echo 'no, strace unavailable')), no damaged output; random kills left the old version $old_ver times, the new $new_ver times"
