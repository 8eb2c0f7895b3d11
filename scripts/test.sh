#!/bin/sh
# Set up, build and run every test: the dev build (warnings are errors),
# then the same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
# Extra stages run when their tools exist: valgrind memcheck, fuzz smoke.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
JOBS=$(nproc 2>/dev/null || echo 2)

# The one place the project looks at ../shared: a warning when the vendored
# schemas drift from the brief's copies (airpack-shared-drift-check). Nothing
# needs that folder; tests/cli/test_no_shared.sh keeps it that way.
if [ -d ../shared/schemas ]; then
    for f in ../shared/schemas/*.json; do
        cmp -s "$f" "tests/schemas/$(basename "$f")" ||
            echo "warning: tests/schemas/$(basename "$f") differs from $f; refresh the vendored copy" >&2
    done
fi

echo "== dev build and tests"
cmake --preset dev >/dev/null
cmake --build --preset dev -j"$JOBS"
ctest --preset dev -j"$JOBS"

echo "== sanitizer build (ASan + UBSan) and tests"
cmake --preset asan >/dev/null
cmake --build --preset asan -j"$JOBS"
# The 8 GiB sparse-file build test measures I/O, not memory safety: once is enough.
# Packaging (two Release builds and lintian) has no memory-safety content: once is enough.
AIRPACK_TEST_SKIP_LARGE=1 AIRPACK_TEST_SKIP_PACKAGE=1 ctest --preset asan -j"$JOBS"

if [ -x scripts/valgrind.sh ]; then
    echo "== valgrind memcheck"
    sh scripts/valgrind.sh
fi
if [ -x scripts/fuzz.sh ] && [ "${AIRPACK_SKIP_FUZZ:-0}" != 1 ]; then
    echo "== fuzz smoke (${AIRPACK_FUZZ_SECONDS:-20}s per target)"
    # one target per core: each still runs its full time
    FUZZ_JOBS=${FUZZ_JOBS:-$JOBS} sh scripts/fuzz.sh "${AIRPACK_FUZZ_SECONDS:-20}"
fi
echo "all test stages passed"
