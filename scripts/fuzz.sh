#!/bin/sh
# fuzz.sh - build the libFuzzer targets (clang, ASan + UBSan) and run every
# fuzz_* target for a while; docs/fuzzing.md explains the setup.
#
# usage: scripts/fuzz.sh [SECONDS] [BUILD_DIR]
#   SECONDS    time per target (default 20; CI runs 20, see docs for longer)
#   BUILD_DIR  build folder (default build/fuzz, the `fuzz` preset's)
# Environment:
#   FUZZ_JOBS=N        run N targets at once (default 1)
#   FUZZ_TARGETS="a b" run only these targets (names without fuzz_)
#   FUZZ_CRASH_DIR=D   where crash inputs go (default BUILD_DIR/fuzz-crashes)
#   FUZZ_NICE=N        run the fuzzers under nice -n N (default 10)
#   FUZZ_SKIP_BUILD=1  use the targets already built in BUILD_DIR
# Each target grows its own corpus in BUILD_DIR/fuzz-corpus/<target> (kept
# between runs) from tests/fuzz/seeds/<target> and tests/fuzz/regressions/
# <target>. A crash, leak, UB report, timeout or out-of-memory stops that
# target, leaves its input in the crash folder, and makes the script exit 1
# after every target ran; 0 when all ran clean. Without clang or libFuzzer
# the script says so and exits 0 (nothing to run).
set -eu
cd "$(dirname "$0")/.."
SRC=$(pwd)
SECS=${1:-20}
BUILD=${2:-build/fuzz}
JOBS=${FUZZ_JOBS:-1}
NICE=${FUZZ_NICE:-10}
case $SECS in ''|*[!0-9]*) echo "fuzz.sh: SECONDS must be a number, not '$SECS'" >&2; exit 2 ;; esac
case $BUILD in /*) ;; *) BUILD=$SRC/$BUILD ;; esac
CRASH=${FUZZ_CRASH_DIR:-$BUILD/fuzz-crashes}

if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz.sh: clang not found: fuzz targets not built (nothing to run)"
    exit 0
fi
# libFuzzer ships with clang's compiler-rt; probe it before configuring.
PROBE=$(mktemp -d)
trap 'rm -rf "$PROBE"' EXIT INT TERM
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
    >"$PROBE/p.c"
if ! clang -fsanitize=fuzzer,address,undefined "$PROBE/p.c" -o "$PROBE/p" >/dev/null 2>&1; then
    echo "fuzz.sh: clang cannot link libFuzzer (compiler-rt missing): nothing to run"
    exit 0
fi

if [ "${FUZZ_SKIP_BUILD:-0}" != 1 ]; then
    echo "fuzz.sh: building the fuzz targets in $BUILD"
    cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
        -DAIRPACK_FUZZ=ON -DAIRPACK_TESTS=OFF >"$PROBE/configure.log" 2>&1 ||
        { cat "$PROBE/configure.log" >&2; echo "fuzz.sh: configure failed" >&2; exit 1; }
    cmake --build "$BUILD" --target fuzz -j"$(nproc 2>/dev/null || echo 2)" >"$PROBE/build.log" 2>&1 ||
        { tail -50 "$PROBE/build.log" >&2; echo "fuzz.sh: build failed" >&2; exit 1; }
fi

# Largest input per target (bytes): above each parser's interesting sizes,
# small enough to keep executions fast.
max_len() {
    case $1 in
        minisign) echo 4200 ;;
        waivers|hfconfig) echo 16384 ;;
        bundle) echo 32768 ;;
        *) echo 65536 ;;
    esac
}

TARGETS=${FUZZ_TARGETS:-}
if [ -z "$TARGETS" ]; then
    for f in "$BUILD"/tests/fuzz/fuzz_*; do
        [ -x "$f" ] || continue
        TARGETS="$TARGETS ${f##*/fuzz_}"
    done
fi
if [ -z "$TARGETS" ]; then
    echo "fuzz.sh: no fuzz_* targets in $BUILD/tests/fuzz" >&2
    exit 1
fi
mkdir -p "$CRASH" "$BUILD/fuzz-logs"

# Run one target; its log goes to fuzz-logs/<target>.log, its status to .rc.
run_one() {
    t=$1
    bin=$BUILD/tests/fuzz/fuzz_$t
    corpus=$BUILD/fuzz-corpus/$t
    log=$BUILD/fuzz-logs/$t.log
    mkdir -p "$corpus"
    set -- -max_total_time="$SECS" -max_len="$(max_len "$t")" -timeout=25 -rss_limit_mb=2560 \
        -malloc_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$CRASH/$t-"
    [ -f "$SRC/tests/fuzz/dict/$t.dict" ] && set -- "$@" -dict="$SRC/tests/fuzz/dict/$t.dict"
    set -- "$@" "$corpus"
    [ -d "$SRC/tests/fuzz/seeds/$t" ] && set -- "$@" "$SRC/tests/fuzz/seeds/$t"
    [ -d "$SRC/tests/fuzz/regressions/$t" ] && set -- "$@" "$SRC/tests/fuzz/regressions/$t"
    rc=0
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        nice -n "$NICE" "$bin" "$@" >"$log" 2>&1 || rc=$?
    echo "$rc" >"$BUILD/fuzz-logs/$t.rc"
}

echo "fuzz.sh: running $(echo $TARGETS) for ${SECS}s each ($JOBS at a time)"
running=0
for t in $TARGETS; do
    if [ ! -x "$BUILD/tests/fuzz/fuzz_$t" ]; then
        echo "fuzz.sh: no target fuzz_$t" >&2
        exit 1
    fi
    rm -f "$BUILD/fuzz-logs/$t.rc"
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait
        running=0
    fi
done
wait

failed=0
printf '%-22s %14s %10s %8s  %s\n' target executions exec/s corpus result
for t in $TARGETS; do
    log=$BUILD/fuzz-logs/$t.log
    rc=$(cat "$BUILD/fuzz-logs/$t.rc" 2>/dev/null || echo 99)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    corpus=$(find "$BUILD/fuzz-corpus/$t" -type f | wc -l)
    if [ "$rc" = 0 ]; then
        result=ok
    else
        failed=1
        result="FAILED (exit $rc): $(grep -E '^==[0-9]+==ERROR|runtime error|ALARM|out-of-memory|leak' "$log" | head -1)"
    fi
    printf '%-22s %14s %10s %8s  %s\n' "fuzz_$t" "${execs:-?}" "${rate:-?}" "$corpus" "$result"
done
if [ "$failed" != 0 ]; then
    for t in $TARGETS; do
        if [ "$(cat "$BUILD/fuzz-logs/$t.rc" 2>/dev/null || echo 99)" != 0 ]; then
            echo "---- fuzz_$t (last lines of $BUILD/fuzz-logs/$t.log)" >&2
            tail -40 "$BUILD/fuzz-logs/$t.log" >&2
        fi
    done
    echo "fuzz.sh: a target failed; inputs that failed:" >&2
    for t in $TARGETS; do
        sed -n 's/.*Test unit written to //p' "$BUILD/fuzz-logs/$t.log" | grep -v slow-unit >&2 || true
    done
    echo "fuzz.sh: reproduce with $BUILD/tests/fuzz/fuzz_TARGET FILE; once fixed, add FILE to tests/fuzz/regressions/TARGET/" >&2
    exit 1
fi
echo "fuzz.sh: all targets ran clean"
