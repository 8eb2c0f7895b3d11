#!/bin/sh
# test_inspect.sh - `airpack inspect` through the real binary: text and
# JSON views of a bundle's lock and signature, always marked as not
# verified; malformed and hostile bundles are refused (exit 1) without
# trusting them; unreadable files are exit 2.
set -eu
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=/usr/bin/python3
cd "$T"

mkdir -p in/rt
"$AIRPACK_GEN_DIR/mkgguf" --preset tiny in/tiny.gguf >/dev/null
printf '#!/bin/sh\n' >in/rt/run && chmod 755 in/rt/run
cat >in/m.yaml <<'EOF'
apiVersion: airpack/v1
kind: Deployment
metadata:
  name: inspect-me
  version: 3.1.4
  sequence: 42
  owner: ops@example.eu
  expires: 2099-12-31
target:
  site: lab
  region: eu-west
  gpu: { model: nvidia-l4, count: 1 }
models:
  - name: tiny
    path: tiny.gguf
runtimes:
  - name: rt
    kind: other
    path: rt/
EOF
"$AIRPACK" keygen --public-key k.pub --secret-key k.key --no-password --quiet
id=$(head -n1 k.pub | sed 's/.* //')
"$AIRPACK" build in/m.yaml --secret-key k.key --output b.tar --quiet || fail "build"
"$AIRPACK" build in/m.yaml --secret-key k.key --output b.tar.zst --compress zstd --quiet || fail "build zstd"

# Text.
"$AIRPACK" inspect b.tar >out 2>err || fail "inspect: $(cat err)"
grep -q "^WARNING: *not verified" out || fail "no 'not verified' warning: $(cat out)"
grep -q "^name: *inspect-me$" out || fail "name: $(cat out)"
grep -q "^version: *3.1.4$" out || fail "version"
grep -q "^sequence: *42$" out || fail "sequence"
grep -q "^expires: *2099-12-31T00:00:00Z$" out || fail "expires: $(cat out)"
grep -q "^owner: *ops@example.eu$" out || fail "owner"
grep -q "^signature: *key id $id, algorithm ED (not checked)$" out || fail "signature line: $(cat out)"
grep -q "trusted comment: file:airpack.lock.json	name:inspect-me	version:3.1.4	sequence:42" out \
    || fail "trusted comment"
grep -q "^  0755  runtime .*payload/runtimes/rt/run$" out || fail "artifact line: $(cat out)"
grep -q "^  0644  checksums .*SHA256SUMS$" out || fail "SHA256SUMS line"

# JSON, the same for the compressed bundle.
"$AIRPACK" inspect b.tar --format json >j1 || fail "inspect --format json"
"$AIRPACK" inspect b.tar.zst --format json >j2 || fail "inspect zstd"
$PY - j1 j2 b.tar "$id" <<'EOF' || fail "inspect JSON"
import json, sys, tarfile
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert a["verified"] is False and "not verified" in a["note"], a
assert a["metadata"]["name"] == "inspect-me" and a["metadata"]["sequence"] == 42
assert a["signature"]["key_id"] == sys.argv[4] and a["signature"]["algorithm"] == "ED"
t = tarfile.open(sys.argv[3])
names = t.getnames()
lock = json.load(t.extractfile("airpack.lock.json"))
assert [x["path"] for x in a["artifacts"]] == names[2:] == [x["path"] for x in lock["artifacts"]]
assert a["artifacts"] == lock["artifacts"]
assert a["totals"] == lock["totals"]
del a["bundle"], b["bundle"]
assert a == b
EOF

# An expired bundle still shows, marked as expired.
sed 's/expires: 2099-12-31/expires: 2001-02-03/' in/m.yaml >in/old.yaml
"$AIRPACK" build in/old.yaml --secret-key k.key --output old.tar --quiet || fail "build expired"
"$AIRPACK" inspect old.tar >out || fail "inspect expired"
grep -q "^expires: *2001-02-03T00:00:00Z (expired" out || fail "expired marker: $(cat out)"
"$AIRPACK" inspect old.tar --format json | grep -q '"expired": true' || fail "expired in JSON"
grep -q '"expired": false' j1 || fail "not expired in JSON"

# Inspect does not verify: a tampered payload still shows (verify is what refuses it).
$PY - b.tar t.tar <<'EOF'
import io, tarfile, sys
src, dst = tarfile.open(sys.argv[1]), tarfile.open(sys.argv[2], "w", format=tarfile.PAX_FORMAT)
for m in src.getmembers():
    data = src.extractfile(m).read()
    if m.name.endswith("rt/run"):
        data = data.replace(b"sh", b"xx")
    dst.addfile(m, io.BytesIO(data))
dst.close()
EOF
"$AIRPACK" inspect t.tar >out || fail "inspect of a tampered bundle"
grep -q "not verified" out || fail "tampered: no warning"

# Hostile or malformed bundles: exit 1, with the reason.
mk_bundle() { # OUT LOCKTEXT
    $PY - "$1" "$2" <<'EOF'
import io, tarfile, sys
t = tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT)
data = sys.argv[2].encode()
i = tarfile.TarInfo("airpack.lock.json"); i.size = len(data)
t.addfile(i, io.BytesIO(data))
t.close()
EOF
}
check_refused() { # FILE MESSAGE
    set +e
    "$AIRPACK" inspect "$1" >out 2>err
    rc=$?
    set -e
    [ "$rc" = 1 ] || fail "inspect '$1': exit $rc, expected 1: $(cat err)"
    grep -q "$2" err || fail "inspect '$1': expected '$2' in: $(cat err)"
}
mk_bundle h1.tar '{"format": "airpack-bundle/1", '
check_refused h1.tar "airpack.lock.json"
$PY - b.tar >evil.json <<'EOF'
import json, sys, tarfile
lock = json.load(tarfile.open(sys.argv[1]).extractfile("airpack.lock.json"))
lock["artifacts"][-1]["path"] = "payload/runtimes/rt/../../../etc/cron.d/x"
print(json.dumps(lock))
EOF
mk_bundle h2.tar "$(cat evil.json)"
check_refused h2.tar "unsafe path"
cp k.pub notabundle
check_refused notabundle "not a bundle"
$PY - h3.tar <<'EOF'
import io, tarfile, sys
t = tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT)
i = tarfile.TarInfo("payload/x"); i.size = 1
t.addfile(i, io.BytesIO(b"x"))
t.close()
EOF
check_refused h3.tar "first entry"

# Usage and unreadable input: exit 2.
set +e
"$AIRPACK" inspect missing.tar 2>err; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "missing.tar" err || fail "missing bundle: exit $rc, $(cat err)"
set +e
"$AIRPACK" inspect b.tar --format sarif 2>err; rc=$?
set -e
[ "$rc" = 2 ] || fail "bad format: exit $rc"
set +e
"$AIRPACK" inspect 2>err; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "missing BUNDLE" err || fail "no bundle: exit $rc"
echo "ok"
