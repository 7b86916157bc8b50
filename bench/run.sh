#!/bin/sh
# bench/run.sh — build Relasi (RelWithDebInfo) and run every benchmark.
#
#   sh bench/run.sh            full size (about 15-20 minutes on 2 cores)
#   sh bench/run.sh --quick    1/10 of the data, about 2 minutes
#
# BUILD_DIR (default: build) is where the binaries are built and taken from.
# Any other arguments are passed to every benchmark script. The benchmarks
# talk to 127.0.0.1 only and remove their temporary directories when done.
set -eu
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

sh scripts/setup.sh
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j2 --target relasi relasi-hub

python3 bench/gen_dataset.py --scale 0.01 --out "${TMPDIR:-/tmp}/relasi-gen-check.$$" >/dev/null
rm -rf "${TMPDIR:-/tmp}/relasi-gen-check.$$"

status=0
python3 bench/bench_client.py --build "$BUILD_DIR" "$@" || status=1
python3 bench/bench_reports.py --build "$BUILD_DIR" "$@" || status=1
python3 bench/bench_sync.py --build "$BUILD_DIR" "$@" || status=1
python3 bench/bench_rekey.py --build "$BUILD_DIR" "$@" || status=1
python3 bench/bench_refused.py --build "$BUILD_DIR" "$@" || status=1
exit $status
