#!/bin/sh
# test_policy.sh - `airpack check --policy` through the real binary: the
# compliant manifest (tests/policy/compliant.yaml) passes all four shipped
# packs; one failing variant per shipped rule (tests/policy/cases.json) is
# caught with exit 1 (error rules), a located finding and a SARIF error
# result that validates against SARIF 2.1.0; waivers (valid,
# expired) and malformed packs and waivers (exit 2 with line and column).
set -eu

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }

"$AIRPACK_GEN_DIR/mkdemo" "$T/demo" >/dev/null
/usr/bin/python3 "$AIRPACK_SRC/tests/policy/run_cases.py" "$AIRPACK" "$AIRPACK_SRC" "$T" --sarif \
    || fail "policy cases (see above)"

P="$AIRPACK_SRC/policies"
# all four packs at once on the compliant manifest: exit 0
"$AIRPACK" check "$T/compliant.yaml" --policy "$P/baseline.yaml" --policy "$P/offline-runtime.yaml" \
    --policy "$P/eu-sovereignty.yaml" --policy "$P/nist-800-53.yaml" >"$T/out.txt" \
    || fail "compliant manifest fails the four packs: $(cat "$T/out.txt")"

# a 0.0.0.0 listener, then waived, then with an expired waiver
sed 's/listen: 127.0.0.1:8000/listen: 0.0.0.0:8000/' "$T/compliant.yaml" >"$T/open.yaml"
grep -q '0.0.0.0:8000' "$T/open.yaml" || fail "test setup: no 0.0.0.0 listener"
rc=0
"$AIRPACK" check "$T/open.yaml" --policy "$P/offline-runtime.yaml" >"$T/out.txt" || rc=$?
[ "$rc" = 1 ] || fail "0.0.0.0 listener: exit $rc, want 1"
grep -q "open.yaml:[0-9]*:[0-9]*: error: \[OFF-LISTEN-INTERNAL\] runtime 'vllm': listen is '0.0.0.0:8000', which is denied" "$T/out.txt" \
    || fail "0.0.0.0 listener: message: $(cat "$T/out.txt")"

cat >"$T/waivers.yaml" <<'W'
apiVersion: airpack/v1
kind: Waivers
waivers:
  - rule: OFF-LISTEN-INTERNAL
    subject: vllm
    justification: behind the site's mTLS proxy, ticket SEC-1234
    approver: ciso@example.eu
    expires: 2999-12-31
W
"$AIRPACK" check "$T/open.yaml" --policy "$P/offline-runtime.yaml" --waivers "$T/waivers.yaml" \
    --format json >"$T/out.json" || fail "waived finding still fails the check"
/usr/bin/python3 - "$T/out.json" <<'PY' || fail "waived finding not reported as waived"
import json, sys
d = json.load(open(sys.argv[1]))
f = [x for x in d['findings'] if x['rule'] == 'OFF-LISTEN-INTERNAL']
assert f and f[0]['waived'] is True, f
assert f[0]['waiver']['approver'] == 'ciso@example.eu'
assert d['summary']['waived'] == 1 and d['summary']['passed'] is True
PY
sed 's/2999-12-31/2001-01-31/' "$T/waivers.yaml" >"$T/expired.yaml"
rc=0
"$AIRPACK" check "$T/open.yaml" --policy "$P/offline-runtime.yaml" --waivers "$T/expired.yaml" \
    >"$T/out.txt" || rc=$?
[ "$rc" = 1 ] || fail "expired waiver: exit $rc, want 1"

# site parameters: a US region allowed without editing the pack
sed 's/region: eu-central/region: us-east-1/' "$T/compliant.yaml" >"$T/us.yaml"
rc=0
"$AIRPACK" check "$T/us.yaml" --policy "$P/eu-sovereignty.yaml" >"$T/out.txt" || rc=$?
[ "$rc" = 1 ] || fail "us region: exit $rc, want 1"
grep -q "\[EU-REGION-ALLOWED\] target.region is 'us-east-1', not in the allowed list" "$T/out.txt" \
    || fail "us region: message: $(cat "$T/out.txt")"
cat >"$T/params.yaml" <<'W'
apiVersion: airpack/v1
kind: PolicyParams
packs:
  eu-sovereignty:
    allowed_regions: ['eu-*', 'us-east-1']
W
"$AIRPACK" check "$T/us.yaml" --policy "$P/eu-sovereignty.yaml" --policy-params "$T/params.yaml" \
    >"$T/out.txt" || fail "site parameters not applied: $(cat "$T/out.txt")"
printf '    allowed_regionz: [x]\n' >>"$T/params.yaml"
rc=0
"$AIRPACK" check "$T/us.yaml" --policy "$P/eu-sovereignty.yaml" --policy-params "$T/params.yaml" \
    2>"$T/err.txt" >/dev/null || rc=$?
[ "$rc" = 2 ] || fail "unknown parameter: exit $rc, want 2"
grep -q "params.yaml': line 6, column 5: pack 'eu-sovereignty' has no parameter 'allowed_regionz' (did you mean 'allowed_regions'?)" "$T/err.txt" \
    || fail "unknown parameter: message: $(cat "$T/err.txt")"

# malformed pack: unknown key, with line and column
cat >"$T/bad.yaml" <<'B'
apiVersion: airpack/v1
kind: PolicyPack
metadata: {name: bad}
rules:
  - id: X-1
    title: t
    seververity: error
B
rc=0
"$AIRPACK" check "$T/compliant.yaml" --policy "$T/bad.yaml" 2>"$T/err.txt" >/dev/null || rc=$?
[ "$rc" = 2 ] || fail "malformed pack: exit $rc, want 2"
grep -q "bad.yaml': line 7, column 5: unknown key 'seververity' in a rule (did you mean 'severity'?)" "$T/err.txt" \
    || fail "malformed pack: message: $(cat "$T/err.txt")"

# malformed waiver date
sed 's/2999-12-31/2999-02-30/' "$T/waivers.yaml" >"$T/badw.yaml"
rc=0
"$AIRPACK" check "$T/open.yaml" --policy "$P/offline-runtime.yaml" --waivers "$T/badw.yaml" \
    2>"$T/err.txt" >/dev/null || rc=$?
[ "$rc" = 2 ] || fail "malformed waiver: exit $rc, want 2"
grep -q "badw.yaml': line 8, column 14: 'expires' must be a date" "$T/err.txt" \
    || fail "malformed waiver: message: $(cat "$T/err.txt")"
echo "ok"
