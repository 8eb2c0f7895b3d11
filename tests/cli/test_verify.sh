#!/bin/sh
# airpack verify: good bundles from files and pipes, key handling, JSON
# output, exit codes; the same through airpack-verify.
set -eu
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
"$AIRPACK_GEN_DIR/mkhostile" "$T/g" >/dev/null
G=$T/g

for bin in "$AIRPACK" "$AIRPACK_VERIFY"; do
    for b in good.tar good.tar.zst good-legacy.tar good-other.tar; do
        "$bin" verify "$G/$b" --public-key "$G/keys" >"$T/out" 2>"$T/err" ||
            fail "$bin verify $b: $(cat "$T/err")"
        grep -q "^verified '$G/$b': chat-assistant 1.0.0 (sequence 5), 7 artifacts" "$T/out" ||
            fail "$b: unexpected output: $(cat "$T/out")"
    done
    grep -q "legacy signature" "$T/out" || true
done
"$AIRPACK" verify "$G/good-legacy.tar" -k "$G/trusted.pub" | grep -q "legacy signature" ||
    fail "legacy Ed signature not reported as legacy"
"$AIRPACK" verify "$G/good.tar" -k "$G/trusted.pub" | grep -q "prehashed signature" ||
    fail "ED signature not reported as prehashed"

# from a pipe, plain and zstd
cat "$G/good.tar" | "$AIRPACK" verify - -k "$G/trusted.pub" >"$T/out" || fail "verify from a pipe"
grep -q "^verified '-'" "$T/out" || fail "pipe output: $(cat "$T/out")"
cat "$G/good.tar.zst" | "$AIRPACK_VERIFY" verify - -k "$G/trusted.pub" >/dev/null ||
    fail "verify zstd from a pipe"
"$AIRPACK" verify - -k "$G/trusted.pub" <"$G/good.tar" >/dev/null || fail "verify from stdin redirect"
# one thread and the default agree
"$AIRPACK" verify --threads 1 "$G/good.tar" -k "$G/trusted.pub" >/dev/null || fail "--threads 1"

# repeated --public-key: the signer is the second key
"$AIRPACK" verify "$G/good-other.tar" -k "$G/trusted.pub" -k "$G/other.pub" >/dev/null ||
    fail "second --public-key not used"
# a key that did not sign it: refused, exit 1, says why
set +e
"$AIRPACK" verify "$G/good-other.tar" -k "$G/trusted.pub" >/dev/null 2>"$T/err"; rc=$?
set -e
[ "$rc" = 1 ] || fail "untrusted signer: exit $rc, want 1"
grep -q "not a trusted key" "$T/err" || fail "untrusted signer message: $(cat "$T/err")"

# JSON output
"$AIRPACK" verify "$G/good.tar" -k "$G/keys" --format json >"$T/j" || fail "json verify"
/usr/bin/python3 - "$T/j" <<'PY' || fail "json document"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["verified"] is True, d
assert d["name"] == "chat-assistant" and d["sequence"] == 5 and d["artifacts"] == 7, d
assert d["signature"]["algorithm"] == "ED" and d["signature"]["checked"] is True, d
assert len(d["lock_sha256"]) == 64 and d["error"] is None, d
assert d["checked_artifacts"] == 7 and d["checked_bytes"] == d["bytes"], d
PY
set +e
"$AIRPACK" verify "$G/hostile/tampered.tar" -k "$G/keys" --format json >"$T/j" 2>/dev/null; rc=$?
set -e
[ "$rc" = 1 ] || fail "tampered json: exit $rc"
/usr/bin/python3 - "$T/j" <<'PY' || fail "json error document"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["verified"] is False
assert d["error"]["fault"] == "sha256-mismatch", d["error"]
assert d["error"]["artifact"] == "payload/models/tiny/model.gguf", d["error"]
PY

# usage and input errors: exit 2
expect2() { set +e; "$@" >/dev/null 2>&1; rc=$?; set -e; [ "$rc" = 2 ] || fail "exit $rc, want 2: $*"; }
expect2 "$AIRPACK" verify "$G/good.tar"
expect2 "$AIRPACK" verify -k "$G/trusted.pub"
expect2 "$AIRPACK" verify "$T/nonexistent.tar" -k "$G/trusted.pub"
expect2 "$AIRPACK" verify "$G/good.tar" -k "$T/nonexistent.pub"
expect2 "$AIRPACK" verify "$G/good.tar" -k "$G/trusted.pub" --format sarif
mkdir "$T/nokeys"
expect2 "$AIRPACK" verify "$G/good.tar" -k "$T/nokeys"
"$AIRPACK" verify --help | grep -q -- "--public-key" || fail "help text"
echo "ok"
