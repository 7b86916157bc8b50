#!/bin/sh
# coverage.sh — which lines of the product the test suite runs.
#
#   sh scripts/coverage.sh            build build-cov, run the whole suite, report
#   sh scripts/coverage.sh -R cli.    only the tests ctest -R selects
#
# A gcc build with --coverage (-DRELASI_COVERAGE=ON) in build-cov/; the
# suite runs there as scripts/test.sh runs it (every process of every test
# adds its counts); then scripts/coverage_report.py prints, per source file
# of client/, hub/ and sync/, the lines run and never run, and writes the
# never-run ranges, with their functions, to build-cov/coverage/. Counts
# start from zero at every run. A process killed with SIGKILL (the crash
# tests do that on purpose) leaves no counts: what only such a process ran
# shows as never run. Not part of the test command: it is for reading.
set -eu
cd "$(dirname "$0")/.."

sh scripts/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build-cov -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=gcc \
      -DRELASI_COVERAGE=ON -DRELASI_WERROR=ON >/dev/null
cmake --build build-cov -j"$jobs"
find build-cov -name '*.gcda' -delete
status=0
(cd build-cov && ctest --output-on-failure -j"$((jobs + 2))" "$@") || status=$?
python3 scripts/coverage_report.py build-cov --out build-cov/coverage
[ "$status" = 0 ] || echo "coverage.sh: some tests failed (ctest exit $status); the counts are of the run as it went" >&2
exit "$status"
