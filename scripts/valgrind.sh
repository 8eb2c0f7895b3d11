#!/bin/sh
# valgrind.sh - run the unit tests and a fast, representative subset of the
# CLI tests under valgrind memcheck (docs/fuzzing.md). Any memory error, or
# a definite or indirect leak, fails the stage.
#
# usage: scripts/valgrind.sh [BUILD_DIR]
#   BUILD_DIR  a build without sanitizers (default build/valgrind, Debug)
# Environment:
#   VALGRIND_UNIT="a b"  unit tests to run (names without test_; default all)
#   VALGRIND_CLI="a b"   CLI tests to run (names without test_; default below)
#   VALGRIND_SKIP_BUILD=1  use what BUILD_DIR already holds
# The CLI tests get AIRPACK and AIRPACK_VERIFY pointing at wrappers that run
# the real binaries under valgrind with one log per process; the logs are
# checked after each test, so an error is caught even where a test accepts
# any failing exit code. Without valgrind the script says so and exits 0.
set -eu
cd "$(dirname "$0")/.."
SRC=$(pwd)
BUILD=${1:-build/valgrind}
case $BUILD in /*) ;; *) BUILD=$SRC/$BUILD ;; esac
# Fast CLI tests that still reach every command's main paths: check and
# pin, keygen, verify (good and tampered bundles), sbom of a manifest and a
# signed bundle; install's systemd units and model layouts; the GPU
# preflight through the fake NVML's dlopen path; co-signing (single file and
# split parts, trust files, split and verify --parts).
CLI_DEFAULT="preflight cosign_split cli check keygen verify sbom units"

if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind.sh: valgrind not found: memcheck stage skipped"
    exit 0
fi
JOBS=$(nproc 2>/dev/null || echo 2)
if [ "${VALGRIND_SKIP_BUILD:-0}" != 1 ]; then
    echo "valgrind.sh: building $BUILD (Debug, no sanitizers)"
    # airpack-verify linked dynamically: memcheck cannot intercept malloc
    # in a static binary (and static glibc start-up code looks uninitialised).
    cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DAIRPACK_SANITIZE=OFF -DAIRPACK_FUZZ=OFF \
        -DAIRPACK_TESTS=ON -DAIRPACK_STATIC_VERIFY=OFF >"$BUILD.configure.log" 2>&1 ||
        { cat "$BUILD.configure.log" >&2; echo "valgrind.sh: configure failed" >&2; exit 1; }
    rm -f "$BUILD.configure.log"
    cmake --build "$BUILD" -j"$JOBS" >"$BUILD/valgrind-build.log" 2>&1 ||
        { tail -50 "$BUILD/valgrind-build.log" >&2; echo "valgrind.sh: build failed" >&2; exit 1; }
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/airpack-valgrind.XXXXXX")
trap 'rm -rf "$W"' EXIT INT TERM
VG="valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --error-exitcode=99 --track-fds=no
    --num-callers=30"

# Wrappers for the CLI tests: the binary under valgrind, one log per
# process, into the folder the running test names in AIRPACK_VG_LOGS.
for b in airpack airpack-verify; do
    cat >"$W/$b" <<EOF
#!/bin/sh
exec $(echo "$VG" | tr '\n' ' ') --log-file="\$AIRPACK_VG_LOGS/$b.%p.log" "$BUILD/$b" "\$@"
EOF
    chmod +x "$W/$b"
done

# The same environment tests/CMakeLists.txt gives ctest (the fake NVML
# library; no test may see this machine's GPUs).
export AIRPACK="$W/airpack" AIRPACK_VERIFY="$W/airpack-verify" AIRPACK_GEN_DIR="$BUILD/tests" \
    AIRPACK_SRC="$SRC" AIRPACK_BIN="$BUILD" NO_COLOR=1 \
    AIRPACK_FAKE_NVML="$BUILD/tests/libnvidia-ml-fake.so" \
    AIRPACK_NVML_LIBRARY=/nonexistent/airpack-tests/libnvidia-ml.so.1

# Logs of one case that report errors (ERROR SUMMARY > 0) or a crash
# (SIGILL, SIGABRT, SIGBUS, SIGFPE, SIGSEGV; tests send SIGINT and SIGTERM
# on purpose, and a process killed that way writes no leak summary).
bad_logs() {
    for l in "$1"/*.log; do
        [ -f "$l" ] || continue
        if grep -qE 'ERROR SUMMARY: [1-9]|Process terminating with default action of signal (4|6|7|8|11) ' "$l"; then
            echo "$l"
        fi
    done
}
report() {
    for l in "$@"; do
        echo "---- $(basename "$l")"
        sed -n '/^==[0-9]*== \(Invalid\|Conditional\|Use of\|Syscall\|Mismatched\|[0-9,]* bytes in\|Source and\|Argument\|Process terminating\)/,/^==[0-9]*== $/p' \
            "$l" | head -80
        grep -E 'ERROR SUMMARY' "$l" || true
    done
}

# Run one case (unit/NAME or cli/NAME); its verdict goes to its res file.
run_case() {
    kind=$1 name=$2
    d=$W/$kind-$name
    mkdir -p "$d/logs"
    start=$(date +%s)
    rc=0
    if [ "$kind" = unit ]; then
        # shellcheck disable=SC2086
        (cd "$BUILD/tests" && $VG --log-file="$d/logs/test_$name.%p.log" "./test_$name") \
            >"$d/out" 2>&1 || rc=$?
    else
        AIRPACK_VG_LOGS=$d/logs sh "$SRC/tests/cli/test_$name.sh" >"$d/out" 2>&1 || rc=$?
    fi
    bad=$(bad_logs "$d/logs")
    n=$(find "$d/logs" -name '*.log' | wc -l)
    if [ "$rc" != 0 ] || [ -n "$bad" ]; then
        {
            echo "FAIL $kind/test_$name (exit $rc, $n processes)"
            tail -30 "$d/out"
            # shellcheck disable=SC2086
            report $bad
        } >"$d/res"
    else
        echo "ok   $kind/test_$name ($n processes, $(($(date +%s) - start))s)" >"$d/res"
    fi
}

CASES=
for c in ${VALGRIND_CLI:-$CLI_DEFAULT}; do
    if [ -f "$SRC/tests/cli/test_$c.sh" ]; then
        CASES="$CASES cli:$c"
    else
        echo "skip cli/test_$c (no such test)"
    fi
done
UNITS=${VALGRIND_UNIT:-}
if [ -z "$UNITS" ]; then
    for f in "$BUILD"/tests/test_*; do
        [ -x "$f" ] && [ -f "$f" ] || continue
        UNITS="$UNITS ${f##*/test_}"
    done
fi
for u in $UNITS; do CASES="$CASES unit:$u"; done

# The slow CLI tests first, then the unit tests, $JOBS at a time.
echo "valgrind.sh: running $(echo "$CASES" | wc -w) cases, $JOBS at a time"
running=0
for c in $CASES; do
    run_case "${c%%:*}" "${c#*:}" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait
        running=0
    fi
done
wait

failed=0
for c in $CASES; do
    r=$W/${c%%:*}-${c#*:}/res
    if [ ! -f "$r" ]; then
        echo "FAIL $c (no result)"
        failed=1
        continue
    fi
    cat "$r"
    case $(head -1 "$r") in FAIL*) failed=1 ;; esac
done

if [ "$failed" != 0 ]; then
    echo "valgrind.sh: memcheck found problems (see above)" >&2
    exit 1
fi
echo "valgrind.sh: all clean"
