#!/bin/sh
# test_sbom.sh - `airpack sbom` through the real binary: the SBOM of a
# manifest and of a signed bundle validates against CycloneDX 1.6
# (tests/schemas, python3-jsonschema), carries the model as a
# machine-learning-model component with the file's real SHA-256, says
# whether the bundle was verified and by which key, and a tampered bundle
# or bad usage is refused.
set -eu

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }
SCHEMAS="$AIRPACK_SRC/tests/schemas"

validate() {
    /usr/bin/python3 - "$SCHEMAS" "$1" <<'PY'
import json, sys
from jsonschema import Draft7Validator, RefResolver
d = sys.argv[1]
store = {}
for n in ['bom-1.6.schema.json', 'spdx.schema.json', 'jsf-0.82.schema.json']:
    s = json.load(open(d + '/' + n)); store[s.get('$id', n)] = s; store[n] = s
bom = store['bom-1.6.schema.json']
v = Draft7Validator(bom, resolver=RefResolver(base_uri=bom.get('$id', ''), referrer=bom, store=store))
errs = list(v.iter_errors(json.load(open(sys.argv[2]))))
for e in errs[:5]:
    print(list(e.path), e.message[:300], file=sys.stderr)
sys.exit(1 if errs else 0)
PY
}

"$AIRPACK_GEN_DIR/mkdemo" "$T/demo" >/dev/null
cp "$AIRPACK_SRC/tests/policy/compliant.yaml" "$T/m.yaml"
want=$(sha256sum "$T/demo/models/tiny-chat.gguf" | cut -d' ' -f1)

# the validator refuses a broken SBOM (so a pass below means something)
echo '{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"type": "model"}]}' >"$T/bad.json"
if validate "$T/bad.json" 2>/dev/null; then fail "the validator accepts a broken SBOM"; fi

# from a manifest
"$AIRPACK" sbom "$T/m.yaml" --output "$T/m.cdx.json" || fail "sbom of a manifest"
validate "$T/m.cdx.json" || fail "SBOM of the manifest does not validate"
/usr/bin/python3 - "$T/m.cdx.json" "$want" <<'PY' || fail "SBOM of the manifest: content"
import json, sys
d = json.load(open(sys.argv[1]))
m = [c for c in d['components'] if c['type'] == 'machine-learning-model']
assert len(m) == 1 and m[0]['name'] == 'tiny-chat', m
assert m[0]['hashes'] == [{'alg': 'SHA-256', 'content': sys.argv[2]}], m[0].get('hashes')
assert m[0]['licenses'] == [{'license': {'id': 'Apache-2.0'}}]
props = {p['name']: p['value'] for p in m[0]['properties']}
assert props['airpack:origin:jurisdiction'] == 'DE', props
# model card parameters from the facts read from the GGUF file
card = m[0]['modelCard']
assert card['modelParameters']['modelArchitecture'] == 'llama', card
cp = {p['name']: p['value'] for p in card['properties']}
assert int(cp['airpack:parameters']) > 0 and cp['airpack:layers'] == '2' and cp['airpack:format'] == 'gguf', cp
rts = [c['name'] for c in d['components'] if c['type'] == 'application']
assert rts == ['llama-server', 'vllm', 'ollama', 'tgi', 'triton', 'sglang'], rts
assert d['dependencies'][0]['ref'] == 'deployment:policy-test'
PY
# deterministic: the same SBOM twice
"$AIRPACK" sbom "$T/m.yaml" >"$T/m2.cdx.json"
cmp -s "$T/m.cdx.json" "$T/m2.cdx.json" || fail "two SBOMs of the same manifest differ"

# from a signed bundle
(cd "$T" && "$AIRPACK" keygen --public-key k.pub --secret-key k.sec --no-password >/dev/null 2>&1) \
    || fail "keygen"
(cd "$T" && "$AIRPACK" build m.yaml --secret-key k.sec --output b.tar >/dev/null 2>&1) || fail "build"
"$AIRPACK" sbom "$T/b.tar" --public-key "$T/k.pub" >"$T/b.cdx.json" 2>"$T/err.txt" \
    || fail "sbom of a bundle: $(cat "$T/err.txt")"
validate "$T/b.cdx.json" || fail "SBOM of the bundle does not validate"
/usr/bin/python3 - "$T/b.cdx.json" "$want" <<'PY' || fail "SBOM of the bundle: content"
import json, sys
d = json.load(open(sys.argv[1]))
props = {p['name']: p['value'] for p in d['metadata']['properties']}
assert props['airpack:source'] == 'bundle' and props['airpack:bundle-verified'] == 'true', props
assert len(props['airpack:signer-keyid']) == 16
m = [c for c in d['components'] if c['type'] == 'machine-learning-model'][0]
assert m['hashes'][0]['content'] == sys.argv[2]
r = [c for c in d['components'] if c['name'] == 'llama-server'][0]
assert len(r['components']) >= 1 and all(len(c['hashes'][0]['content']) == 64 for c in r['components'])
assert 'timestamp' in d['metadata']
PY
# without a key: consistent but unverified, and said so
"$AIRPACK" sbom "$T/b.tar" >"$T/u.cdx.json" 2>"$T/err.txt" || fail "sbom of an unsigned check"
grep -q "unverified bundle" "$T/err.txt" || fail "no warning for an unverified bundle"
grep -q '"value": "false"' "$T/u.cdx.json" || fail "unverified bundle not marked"

# a tampered bundle is refused with exit 1
/usr/bin/python3 - "$T/b.tar" "$T/t.tar" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
i = b.find(b'GGUF\x03\x00\x00\x00')
assert i > 0
b[i + 64] ^= 0xff
open(sys.argv[2], 'wb').write(b)
PY
rc=0
"$AIRPACK" sbom "$T/t.tar" --public-key "$T/k.pub" >/dev/null 2>"$T/err.txt" || rc=$?
[ "$rc" = 1 ] || fail "tampered bundle: exit $rc, want 1 ($(cat "$T/err.txt"))"

# usage
rc=0; "$AIRPACK" sbom >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "no argument: exit $rc, want 2"
rc=0; "$AIRPACK" sbom "$T/nope.yaml" >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "missing manifest: exit $rc, want 2"
echo "ok"
