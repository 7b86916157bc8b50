#!/bin/sh
# scripts/fuzz.sh — fuzz every parser of untrusted input (fuzz/README.md).
#
#   sh scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Builds the libFuzzer targets of fuzz/ with clang, -fsanitize=fuzzer and
# ASan + UBSan (-fno-sanitize-recover=all, leaks checked) in build-fuzz/,
# then runs each TARGET (default: all of them) for SECONDS (default 60),
# starting from the committed seeds (fuzz/corpus/NAME) plus what earlier
# runs found (build-fuzz/corpus/NAME, where new inputs go). FUZZ_JOBS=2
# runs two targets at a time (one per core on the build machines).
#
# Prints, per target, the executions, the coverage (cov: edges, ft:
# features) from libFuzzer's final stats, and the seconds it ran. A crash,
# leak or failed check leaves its input in build-fuzz/artifacts/NAME/ and
# makes the script exit 1: fix the bug, then copy the input into
# fuzz/corpus/NAME/ as a regression seed (ctest replays it from then on).
#
# Not part of scripts/test.sh: the normal test command replays the corpus
# (ctest fuzz.*) and needs no libFuzzer.
set -eu
cd "$(dirname "$0")/.."

secs=${1:-60}
[ $# -gt 0 ] && shift
case $secs in
    ''|*[!0-9]*) echo "usage: sh scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac
# Every target of fuzz/CMakeLists.txt (RELASI_FUZZ_TARGETS), in its order.
all="wire csv import vcard token valid hub_push dev_sync dev_batches snapshot chunk push page pushed
     enroll bundle restore rule image merge"
targets=${*:-$all}
jobs=${FUZZ_JOBS:-1}

# The longest input worth trying, per target: a little above the limit the
# parser enforces where there is one (16 KiB before authentication, 8 KiB
# tokens), a few KiB where bigger inputs only repeat structure.
max_len() {
    case $1 in
        wire) echo 20000 ;;
        token) echo 9000 ;;
        enroll) echo 12000 ;;
        valid) echo 256 ;;
        rule) echo 600 ;;
        import) echo 4096 ;;
        hub_push|dev_sync|dev_batches|snapshot|bundle) echo 16384 ;;
        restore) echo 32768 ;;
        *) echo 8192 ;;
    esac
}

sh scripts/setup.sh
echo "== building the fuzz targets (clang, libFuzzer, ASan + UBSan) in build-fuzz =="
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
      -DRELASI_SANITIZE=ON -DRELASI_FUZZ=ON -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link \
      >/dev/null
cmake --build build-fuzz -j"$(nproc 2>/dev/null || echo 2)" --target fuzzers

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

run_one() {
    name=$1
    # Artifacts are this run's findings only (earlier ones were dealt with).
    rm -rf "build-fuzz/artifacts/$name"
    mkdir -p "build-fuzz/corpus/$name" "build-fuzz/artifacts/$name"
    start=$(date +%s)
    set +e
    "build-fuzz/fuzz/fuzz_$name" -max_total_time="$secs" -max_len="$(max_len "$name")" \
        -timeout=30 -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$name/" \
        "build-fuzz/corpus/$name" "fuzz/corpus/$name" >"build-fuzz/fuzz_$name.log" 2>&1
    echo $? >"build-fuzz/fuzz_$name.rc"
    set -e
    echo $(($(date +%s) - start)) >"build-fuzz/fuzz_$name.secs"
}

echo "== fuzzing: $targets for ${secs}s each, $jobs at a time =="
running=0
for t in $targets; do
    if [ ! -d "fuzz/corpus/$t" ]; then
        echo "fuzz.sh: no target '$t' (one of: $all)" >&2
        exit 2
    fi
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait
        running=0
    fi
done
wait

status=0
printf '%-10s %12s %8s %8s %8s  %s\n' target executions cov ft seconds result
for t in $targets; do
    log="build-fuzz/fuzz_$t.log"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 || true)
    cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    rc=$(cat "build-fuzz/fuzz_$t.rc")
    if [ "$rc" = 0 ]; then
        result=ok
    else
        result="FAILED (exit $rc): see $log and build-fuzz/artifacts/$t/"
        status=1
    fi
    printf '%-10s %12s %8s %8s %8s  %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" \
        "$(cat "build-fuzz/fuzz_$t.secs")" "$result"
done
exit $status
