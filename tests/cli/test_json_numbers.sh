#!/bin/sh
# test_json_numbers.sh - numbers print as people write them in every JSON
# output and in the plan embedded in the HTML report: 0.9, not
# 0.90000000000000002; 22.03, not 22.030000000000001. Runs the demo
# through plan, check (json, sarif, html), build, inspect, verify, install,
# list and audit, and looks at every JSON document and HTML page written.
set -eu
. "$AIRPACK_SRC/tests/cli/lib.sh"
make_demo
M="$T/demo/demo.yaml"
export SOURCE_DATE_EPOCH=1764288000

# A float printed with 16 or more digits after the point is a binary
# representation artefact, never a figure a person wrote.
long_float() { grep -Eo '[0-9]\.[0-9]{16,}' "$1" | head -3; }
no_long_floats() {   # no_long_floats FILE...
    for f in "$@"; do
        CHECKS=$((CHECKS + 1))
        bad=$(long_float "$f")
        [ -z "$bad" ] || fail "$(basename "$f") prints unrounded floats: $bad"
    done
}

run "$AIRPACK" plan "$M" --format json; expect_rc 0
printf '%s\n' "$OUT" >"$T/plan.json"
# the utilisation the manifest says, printed the way it says it
CHECKS=$((CHECKS + 1))
grep -q '"memory_utilization": 0.9[,}]*$' "$T/plan.json" || grep -q '0\.9[,]*$' "$T/plan.json" ||
    fail "plan JSON lacks 0.9: $(grep -n utilization "$T/plan.json" | head -3)"

run "$AIRPACK" check "$M" --format json --output "$T/check.json"; expect_rc 0
run "$AIRPACK" check "$M" --format sarif --output "$T/check.sarif"; expect_rc 0
run "$AIRPACK" check "$M" --format html --output "$T/check.html"; expect_rc 0
CHECKS=$((CHECKS + 1))
grep -q '0\.9\b' "$T/check.html" || fail "the HTML report's plan lacks 0.9"

run "$AIRPACK" keygen --public-key "$T/k.pub" --secret-key "$T/k.key" --no-password; expect_rc 0
run "$AIRPACK" build "$M" --secret-key "$T/k.key" --output "$T/b.airpack"; expect_rc 0
tar -xf "$T/b.airpack" -C "$T" airpack.lock.json
run "$AIRPACK" inspect "$T/b.airpack" --format json; expect_rc 0
printf '%s\n' "$OUT" >"$T/inspect.json"
run "$AIRPACK" verify "$T/b.airpack" --public-key "$T/k.pub" --format json; expect_rc 0
printf '%s\n' "$OUT" >"$T/verify.json"
run "$AIRPACK" install "$T/b.airpack" --public-key "$T/k.pub" --prefix "$T/p"; expect_rc 0
run "$AIRPACK" list --prefix "$T/p" --format json; expect_rc 0
printf '%s\n' "$OUT" >"$T/list.json"
run "$AIRPACK" audit --installed "$T/p" --format json --output "$T/audit.json"; expect_rc 0
run "$AIRPACK" audit --installed "$T/p" --format html --output "$T/audit.html"; expect_rc 0

# the check itself can fail: a planted long float is found
printf '{"x": 0.90000000000000002}\n' >"$T/planted.json"
CHECKS=$((CHECKS + 1))
[ -n "$(long_float "$T/planted.json")" ] || fail "the long-float check misses a planted value"

no_long_floats "$T/plan.json" "$T/check.json" "$T/check.sarif" "$T/check.html" \
    "$T/airpack.lock.json" "$T/inspect.json" "$T/verify.json" "$T/list.json" \
    "$T/audit.json" "$T/audit.html"
for f in $(find "$T/p/.airpack" -name '*.json'); do no_long_floats "$f"; done
done_ok
