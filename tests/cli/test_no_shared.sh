#!/bin/sh
# test_no_shared.sh - nothing in the build, the scripts or the tests reads
# the brief's ../shared folder: a user's `git clone` has none beside it.
# Every schema or fixture a test needs lives in the repository
# (tests/schemas). The only exception is scripts/test.sh's drift warning,
# a block marked airpack-shared-drift-check that runs only where the folder
# exists. The check must be able to fail: it first proves that it finds a
# planted reference.
set -eu
. "$AIRPACK_SRC/tests/cli/lib.sh"

# Path constructions that reach ../shared: the literal '../shared', or the
# two components joined ('..', 'shared') in Python/C/shell.
PATTERN='\.\./shared|["'"'"']\.\.["'"'"'][[:space:]]*,[[:space:]]*["'"'"']shared["'"'"']|\.\.[)][[:space:]]*/[[:space:]]*["'"'"']?shared'

scan() {    # scan ROOT: print offending lines of the guarded paths
    (cd "$1" && for p in tests scripts src cmake CMakeLists.txt CMakePresets.json bench .ci; do
        [ -e "$p" ] || continue
        grep -rnE --binary-files=without-match "$PATTERN" "$p" 2>/dev/null || true
    done) |
    grep -v '^tests/cli/test_no_shared\.sh:' |
    grep -v '^tests/schemas/README\.md:' |
    while IFS= read -r line; do
        case "$line" in
        scripts/test.sh:*)
            n=${line#scripts/test.sh:}; n=${n%%:*}
            # allowed within 8 lines of the marker
            start=$((n > 8 ? n - 8 : 1))
            if sed -n "${start},$((n + 8))p" "$1/scripts/test.sh" | grep -q airpack-shared-drift-check; then
                continue
            fi
            echo "$line" ;;
        *) echo "$line" ;;
        esac
    done
}

# 1. The guard finds a planted reference (so it can fail).
mkdir -p "$T/plant/tests" "$T/plant/scripts"
printf 'schema = open(os.path.join(src, "..", "shared", "schemas", "x.json"))\n' >"$T/plant/tests/a.py"
printf 'cat ../shared/DESIGN.md\n' >"$T/plant/scripts/b.sh"
hits=$(scan "$T/plant")
CHECKS=$((CHECKS + 1))
[ "$(printf '%s\n' "$hits" | grep -c .)" -eq 2 ] || fail "the guard missed a planted ../shared reference: $hits"

# 2. The repository has none.
hits=$(scan "$AIRPACK_SRC")
CHECKS=$((CHECKS + 1))
[ -z "$hits" ] || fail "these lines read ../shared (copy what they need into the repository):
$hits"

echo "ok: $CHECKS checks"
