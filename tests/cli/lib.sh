# tests/cli/lib.sh - helpers for CLI tests (POSIX sh). Source it:
#   . "$AIRPACK_SRC/tests/cli/lib.sh"
# It makes $T (a temporary folder removed on exit) and provides:
#   run CMD...            run, capturing $OUT (stdout), $ERR (stderr), $RC
#   expect_rc N           fail unless the last run exited N
#   expect_out TEXT       fail unless stdout contains TEXT
#   expect_err TEXT       fail unless stderr contains TEXT
#   fail MESSAGE          report and exit 1
set -eu
: "${AIRPACK:?AIRPACK must name the airpack binary}"
T=$(mktemp -d "${TMPDIR:-/tmp}/airpack-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
TESTNAME=$(basename "$0" .sh)
CHECKS=0

fail() {
    echo "FAIL [$TESTNAME]: $*" >&2
    if [ -n "${OUT_FILE:-}" ] && [ -f "$OUT_FILE" ]; then
        echo "--- stdout:" >&2; head -c 4000 "$T/.out" >&2 || true
        echo "--- stderr:" >&2; head -c 4000 "$T/.err" >&2 || true
    fi
    exit 1
}

run() {
    OUT_FILE="$T/.out"
    set +e
    "$@" >"$T/.out" 2>"$T/.err"
    RC=$?
    set -e
    OUT=$(cat "$T/.out")
    ERR=$(cat "$T/.err")
    LAST="$*"
}

expect_rc() {
    CHECKS=$((CHECKS + 1))
    [ "$RC" -eq "$1" ] || fail "'$LAST' exited $RC, expected $1"
}

expect_out() {
    CHECKS=$((CHECKS + 1))
    case "$OUT" in *"$1"*) ;; *) fail "'$LAST': stdout lacks '$1'" ;; esac
}

expect_err() {
    CHECKS=$((CHECKS + 1))
    case "$ERR" in *"$1"*) ;; *) fail "'$LAST': stderr lacks '$1'" ;; esac
}

done_ok() {
    echo "$TESTNAME: $CHECKS checks passed"
}

# Make a copy of the demo deployment in $T/demo (manifest + generated files).
make_demo() {
    mkdir -p "$T/demo"
    cp "$AIRPACK_SRC/manifests/demo.yaml" "$T/demo/demo.yaml"
    "$AIRPACK_GEN_DIR/mkdemo" "$T/demo/demo" >/dev/null
}
