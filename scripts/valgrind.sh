#!/bin/sh
# scripts/valgrind.sh — runs every C unit test (tests/unit) under valgrind's
# memcheck: any invalid access, use of uninitialised memory or leak fails.
# A complement to the ASan build in scripts/test.sh: valgrind sees the
# unsanitised gcc binaries as they ship. Usage: sh scripts/valgrind.sh
set -eu
cd "$(dirname "$0")/.."

sh scripts/setup.sh >/dev/null
command -v valgrind >/dev/null || apt-get install -y --no-install-recommends valgrind >/dev/null
cmake -S . -B build-valgrind -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-valgrind -j"$(nproc 2>/dev/null || echo 2)" >/dev/null

fail=0
for t in build-valgrind/tests/test_*; do
	[ -x "$t" ] || continue
	if valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
		--show-leak-kinds=definite,indirect "$t" >"$t.valgrind.log" 2>&1; then
		echo "ok   $(basename "$t")"
	else
		echo "FAIL $(basename "$t") (see $t.valgrind.log)"
		tail -n 30 "$t.valgrind.log"
		fail=1
	fi
done
exit $fail
