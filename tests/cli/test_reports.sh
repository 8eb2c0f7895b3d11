#!/bin/sh
# test_reports.sh - `airpack check --format text|json|sarif|markdown|html`
# through the real binary on the demo manifest with the four shipped packs:
# the SARIF validates against SARIF 2.1.0 (python3-jsonschema), the HTML
# report is self-contained, escapes hostile manifest strings and renders in
# headless Chromium (a non-trivial screenshot), exit codes follow the
# findings (1 with an unwaived error, 0 otherwise, in every format).
set -eu

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }
SCHEMA="$AIRPACK_SRC/tests/schemas/sarif-schema-2.1.0.json"

sarif_valid() {
    /usr/bin/python3 - "$SCHEMA" "$1" "$2" <<'PY'
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
log = json.load(open(sys.argv[2]))
jsonschema.Draft7Validator(schema).validate(log)
run = log['runs'][0]
rules = {r['id'] for r in run['tool']['driver']['rules']}
want = sys.argv[3]
if want:
    res = [r for r in run['results'] if r['ruleId'] == want]
    assert res and res[0]['level'] == 'error', res
    assert res[0]['locations'][0]['physicalLocation']['region']['startLine'] > 0
    assert want in rules
    assert run['invocations'][0]['exitCode'] == 1
else:
    assert not [r for r in run['results'] if r['level'] == 'error' and not r.get('suppressions')]
    assert run['invocations'][0]['exitCode'] == 0
# every shipped pack's rules are listed with their controls
for pre in ('BASE-', 'OFF-', 'EU-', 'NIST-'):
    assert any(r.startswith(pre) for r in rules), pre
assert all(r['properties']['tags'] is not None for r in run['tool']['driver']['rules'])
PY
}

"$AIRPACK_GEN_DIR/mkdemo" "$T/demo" >/dev/null
# the demo manifest, with a hostile description
sed 's|^  description: .*|  description: "<script>alert(1)</script> \&amp; <img src=x onerror=alert(2)>"|' \
    "$AIRPACK_SRC/manifests/demo.yaml" >"$T/demo.yaml"
grep -q '<script>' "$T/demo.yaml" || fail "test setup: no hostile description"

for fmt in text json sarif markdown html; do
    "$AIRPACK" check "$T/demo.yaml" --format "$fmt" --output "$T/ok.$fmt" \
        || fail "demo manifest fails the shipped packs in format $fmt"
    [ -s "$T/ok.$fmt" ] || fail "empty $fmt report"
done
grep -q "^passed: 0 errors" "$T/ok.text" || fail "text: $(tail -1 "$T/ok.text")"
sarif_valid "$T/ok.sarif" "" || fail "SARIF of the demo does not validate"
grep -q '^| Rule | Pack | Severity | Title | Controls | Result |' "$T/ok.markdown" || fail "markdown: no rules table"
grep -q 'PASSED' "$T/ok.markdown" || fail "markdown: no verdict"

# HTML: self-contained and escaped
H="$T/ok.html"
grep -q 'PASSED' "$H" || fail "html: no verdict"
grep -q '&lt;script&gt;alert(1)&lt;/script&gt; &amp;amp; &lt;img src=x' "$H" || fail "html: hostile description not escaped"
if grep -qi '<script' "$H"; then fail "html: contains a script"; fi
if grep -qiE '<(link|img|iframe|object|embed|video|audio|source)|<a href|url\(|@import' "$H"; then fail "html: loads external resources"; fi
grep -q 'NIST SP 800-53 SI-7' "$H" || fail "html: controls missing"
grep -q 'Memory plan' "$H" || fail "html: memory plan missing"
sha=$(sha256sum "$T/demo/models/tiny-chat.gguf" | cut -d' ' -f1)
[ -x /usr/bin/chromium ] || fail "/usr/bin/chromium is needed to render the HTML report"
HOME="$T" timeout 120 /usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic \
    --no-first-run --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage --user-data-dir="$T/chrome" --window-size=1200,1800 \
    --screenshot="$T/report.png" "file://$H" >/dev/null 2>&1 || fail "chromium could not render the report"
[ -f "$T/report.png" ] || fail "no screenshot"
size=$(wc -c <"$T/report.png")
[ "$size" -gt 20000 ] || fail "screenshot is only $size bytes"
if [ -n "${AIRPACK_KEEP_SCREENSHOT:-}" ]; then cp "$T/report.png" "$AIRPACK_KEEP_SCREENSHOT"; fi

# a violation: exit 1 in every format, an error result in SARIF, FAILED in HTML
sed 's/listen: 127.0.0.1:8080/listen: 0.0.0.0:8080/' "$T/demo.yaml" >"$T/bad.yaml"
for fmt in text json sarif markdown html; do
    rc=0
    "$AIRPACK" check "$T/bad.yaml" --format "$fmt" --output "$T/bad.$fmt" || rc=$?
    [ "$rc" = 1 ] || fail "violation: exit $rc in format $fmt, want 1"
done
sarif_valid "$T/bad.sarif" OFF-LISTEN-INTERNAL || fail "SARIF of the violation"
grep -q 'FAILED' "$T/bad.html" || fail "html: violation not FAILED"
grep -q 'OFF-LISTEN-INTERNAL' "$T/bad.html" || fail "html: rule missing"
grep -q "bad.yaml:[0-9]*:[0-9]*: error: \[OFF-LISTEN-INTERNAL\]" "$T/bad.text" || fail "text: no located error"
grep -q '| error | OFF-LISTEN-INTERNAL |' "$T/bad.markdown" || fail "markdown: no error row"
echo "ok"
