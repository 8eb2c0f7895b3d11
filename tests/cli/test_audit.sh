#!/bin/sh
# airpack audit: an intact install passes; a modified, missing or
# unexpected file, a changed mode, a symlink and a tampered receipt are
# found (exit 1); a bundle is reported on without installing it.
set -eu
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
"$AIRPACK_GEN_DIR/mkhostile" "$T/g" >/dev/null
G=$T/g
P=$T/prefix
N=chat-assistant
"$AIRPACK" install "$G/good.tar" -k "$G/keys" -p "$P" -q >/dev/null || fail "install"
R=$P/releases/$N/1.0.0+5

audit_ok() {
    "$AIRPACK" audit --installed "$P" "$@" >"$T/out" 2>&1 || fail "audit of an intact install: $(cat "$T/out")"
    grep -q "^result: intact" "$T/out" || fail "audit output: $(cat "$T/out")"
}
audit_fails() { # pattern
    set +e
    "$AIRPACK" audit --installed "$P" -k "$G/keys" >"$T/out" 2>&1; rc=$?
    set -e
    [ "$rc" = 1 ] || fail "audit exit $rc, want 1, for: $1"
    grep -q "$1" "$T/out" || fail "audit does not say '$1': $(cat "$T/out")"
}
audit_ok
audit_ok -k "$G/keys"
grep -q "from the trusted keys" "$T/out" || fail "key source not reported"
"$AIRPACK_VERIFY" audit --installed "$P" -k "$G/trusted.pub" >/dev/null || fail "airpack-verify audit"

# a modified file (same size), then restored
cp "$R/payload/files/etc/app/config.yaml" "$T/save"
sed -i 's/127.0.0.1/0.0.0.0  /' "$R/payload/files/etc/app/config.yaml"
audit_fails "modified: payload/files/etc/app/config.yaml (sha256 differs from the lock)"
"$AIRPACK" audit --installed "$P" --format json >"$T/j" 2>/dev/null || true
/usr/bin/python3 - "$T/j" <<'PY' || fail "audit json"
import json, sys
d = json.load(open(sys.argv[1]))
dep = d["deployments"][0]
assert dep["drift"] is True and dep["passed"] is False, dep
assert dep["modified"] == [{"path": "payload/files/etc/app/config.yaml", "reason": "sha256 differs from the lock"}], dep
assert dep["signature"]["valid"] is True and dep["signature"]["key_source"] == "install record", dep
assert d["summary"]["modified"] == 1 and d["summary"]["passed"] is False, d["summary"]
PY
cp "$T/save" "$R/payload/files/etc/app/config.yaml"
audit_ok

rm "$R/sbom.cdx.json"
audit_fails "missing: sbom.cdx.json"
"$AIRPACK" install "$G/good-v6.tar" -k "$G/keys" -p "$P" -q >/dev/null || fail "upgrade"
R=$P/releases/$N/1.1.0+6
audit_ok
echo '#!/bin/sh' >"$R/payload/runtimes/rt/bin/backdoor"
audit_fails "unexpected: payload/runtimes/rt/bin/backdoor"
rm "$R/payload/runtimes/rt/bin/backdoor"
ln -s /etc/passwd "$R/payload/link"
audit_fails "unexpected: payload/link"
rm "$R/payload/link"
chmod 4755 "$R/payload/runtimes/rt/bin/run.sh"
audit_fails "modified: payload/runtimes/rt/bin/run.sh (mode 4755"
chmod 755 "$R/payload/runtimes/rt/bin/run.sh"
audit_ok
# a tampered receipt (the lock edited to match changed files) fails the signature
L=$P/.airpack/receipts/$N/1.1.0+6/airpack.lock.json
cp "$L" "$T/lock.save"
sed -i 's/"version": "1.1.0"/"version": "6.6.6"/' "$L"
audit_fails "receipt signature INVALID"
cp "$T/lock.save" "$L"
# a key that is not trusted
set +e
"$AIRPACK" audit --installed "$P" -k "$G/untrusted.pub" >"$T/out" 2>&1; rc=$?
set -e
[ "$rc" = 1 ] && grep -q "not a trusted key" "$T/out" || fail "untrusted key: exit $rc $(cat "$T/out")"
audit_ok --name $N

# a bundle, without installing it
"$AIRPACK" audit "$G/good.tar" -k "$G/keys" >"$T/out" || fail "audit of a good bundle: $(cat "$T/out")"
grep -q "^result: intact (0 of 7 artifacts failed)" "$T/out" || fail "bundle audit: $(cat "$T/out")"
set +e
"$AIRPACK" audit "$G/good.tar" >"$T/out"; rc=$?
set -e
[ "$rc" = 1 ] && grep -q "signature not checked" "$T/out" || fail "bundle audit without key: exit $rc"
set +e
"$AIRPACK" audit "$G/hostile/tampered.tar" -k "$G/keys" --format json >"$T/j"; rc=$?
set -e
[ "$rc" = 1 ] || fail "audit of a tampered bundle: exit $rc"
/usr/bin/python3 - "$T/j" <<'PY' || fail "bundle audit json"
import json, sys
d = json.load(open(sys.argv[1]))
st = {a["path"]: a["status"] for a in d["artifacts"]}
assert st["payload/models/tiny/model.gguf"] == "sha256-mismatch", st
assert sum(1 for s in st.values() if s == "ok") == 6, st
assert d["summary"]["failed"] == 1 and d["summary"]["passed"] is False
PY
[ ! -e "$T/prefix/releases/$N/x" ]
# policy packs over the analysis the verified lock carries: the generated
# lock has no manifest, so the baseline pack finds errors (exit 1), and an
# unknown pack is a usage error (exit 2)
set +e
"$AIRPACK" audit --installed "$P" -k "$G/keys" --policy baseline >"$T/out" 2>&1; rc=$?
"$AIRPACK" audit "$G/good.tar" -k "$G/keys" --policy baseline --format json >"$T/j" 2>/dev/null; rc2=$?
"$AIRPACK" audit "$G/good.tar" -k "$G/keys" --policy no-such-pack >/dev/null 2>&1; rc3=$?
set -e
[ "$rc" = 1 ] && grep -q "policies: baseline: [1-9][0-9]* errors" "$T/out" || fail "installed --policy: exit $rc $(cat "$T/out")"
grep -q "error BASE-NAME-DEPLOYMENT" "$T/out" || fail "installed --policy findings: $(cat "$T/out")"
[ "$rc2" = 1 ] && [ "$rc3" = 2 ] || fail "bundle --policy exits $rc2 $rc3"
/usr/bin/python3 - "$T/j" <<'PY' || fail "bundle --policy json"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["policy"]["packs"][0]["name"] == "baseline", d["policy"]["packs"]
assert d["policy"]["summary"]["passed"] is False and d["summary"]["passed"] is False
assert any(f["rule"] == "BASE-NAME-DEPLOYMENT" for f in d["policy"]["findings"])
assert all(a["status"] == "ok" for a in d["artifacts"])
PY

# SARIF (validated against SARIF 2.1.0), Markdown and HTML evidence reports:
# a drifted file is an AP-AUDIT-MODIFIED error result
echo tampered >>"$R/payload/files/etc/app/config.yaml"
set +e
"$AIRPACK" audit --installed "$P" -k "$G/keys" --format sarif --output "$T/a.sarif"; rc=$?
"$AIRPACK" audit --installed "$P" -k "$G/keys" --format markdown >"$T/a.md"; rc2=$?
"$AIRPACK" audit "$G/hostile/tampered.tar" -k "$G/keys" --format html >"$T/a.html"; rc3=$?
set -e
[ "$rc" = 1 ] && [ "$rc2" = 1 ] && [ "$rc3" = 1 ] || fail "evidence reports: exits $rc $rc2 $rc3, want 1"
/usr/bin/python3 - "$AIRPACK_SRC/tests/schemas/sarif-schema-2.1.0.json" "$T/a.sarif" <<'PY' || fail "audit SARIF"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1])); log = json.load(open(sys.argv[2]))
jsonschema.Draft7Validator(schema).validate(log)
res = [r for r in log["runs"][0]["results"] if r["ruleId"] == "AP-AUDIT-MODIFIED"]
assert res and res[0]["level"] == "error", log["runs"][0]["results"]
assert "payload/files/etc/app/config.yaml" in res[0]["message"]["text"], res[0]
PY
grep -q "AP-AUDIT-MODIFIED" "$T/a.md" || fail "markdown lacks the finding"
grep -q "AP-AUDIT-ARTIFACT" "$T/a.html" && grep -q "payload/models/tiny/model.gguf" "$T/a.html" ||
    fail "html lacks the artifact finding"
cp "$T/save" "$R/payload/files/etc/app/config.yaml" 2>/dev/null || true

# usage
set +e
"$AIRPACK" audit >/dev/null 2>&1; rc=$?
"$AIRPACK" audit "$G/good.tar" --installed "$P" >/dev/null 2>&1; rc2=$?
"$AIRPACK" audit --installed "$T/none" >/dev/null 2>&1; rc3=$?
set -e
[ "$rc" = 2 ] && [ "$rc2" = 2 ] && [ "$rc3" = 2 ] || fail "usage exits $rc $rc2 $rc3"
echo "ok"
