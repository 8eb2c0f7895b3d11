#!/bin/sh
# test_build.sh - `airpack build` through the real binary, checked with the
# real tools: stock minisign verifies the lock, `sha256sum -c` passes in the
# extracted bundle, GNU tar lists and extracts it, a key from `minisign -G`
# signs it, two builds are byte-identical, the tar headers are
# deterministic, and every failure leaves neither the output nor a
# temporary file. Files above 4 and 8 GiB: test_build_large.sh.
set -eu
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=/usr/bin/python3
G=$AIRPACK_GEN_DIR
cd "$T"

# ---- inputs: a sharded safetensors model, a GGUF file, a runtime, files ----
mkdir -p in/rt/bin in/conf/sub out
"$G/mksafetensors" --preset tiny --shards 2 in/big >/dev/null
"$G/mkgguf" --preset tiny in/single.gguf >/dev/null
printf '#!/bin/sh\necho serve\n' >in/rt/bin/serve
chmod 750 in/rt/bin/serve
echo "license text" >in/rt/LICENSE
chmod 600 in/rt/LICENSE
echo "A=1" >in/conf/app.env
echo "b" >in/conf/sub/b.txt
echo "one" >in/one.conf
(cd in && sha256sum single.gguf >single.gguf.sha256)
cat >in/m.yaml <<'EOF'
apiVersion: airpack/v1
kind: Deployment
metadata:
  name: test-bundle
  version: 2.0.1
  sequence: 7
  description: bundle test
target:
  site: lab
  region: eu-central
  gpu:
    model: nvidia-l4
    count: 1
models:
  - name: big
    path: big/
  - name: single
    path: single.gguf
    sha256sums: single.gguf.sha256
runtimes:
  - name: rt
    kind: other
    path: rt/
files:
  - { path: conf/, target: etc/app/ }
  - { path: one.conf, target: etc/one.conf }
EOF

# A key made by stock minisign (no password).
minisign -G -W -p mk.pub -s mk.key >/dev/null 2>&1 || fail "minisign -G"

no_leftovers() { # DIR: no temporary bundle files left behind
    if ls -a "$1" | grep -q '\.tmp$'; then fail "temporary file left in $1: $(ls -a "$1")"; fi
}

# ---- a good build ----------------------------------------------------------
export SOURCE_DATE_EPOCH=1700000000
"$AIRPACK" build in/m.yaml --secret-key mk.key --output out/b.tar >stdout 2>stderr \
    || fail "build: $(cat stderr)"
[ -f out/b.tar ] || fail "no bundle written"
grep -q "bundle 'out/b.tar' written: test-bundle 2.0.1 (sequence 7), 13 artifacts" stdout \
    || fail "build summary: $(cat stdout)"
[ ! -s stderr ] || fail "progress or noise on a non-terminal stderr: $(cat stderr)"
no_leftovers out

# GNU tar lists it: exact order, modes, numeric owner 0/0, mtime from SOURCE_DATE_EPOCH.
tar --numeric-owner --full-time -tvf out/b.tar >list || fail "GNU tar cannot list the bundle"
cat >expect <<'EOF'
-rw-r--r-- 0/0 airpack.lock.json 2023-11-14 22:13:20
-rw-r--r-- 0/0 airpack.lock.json.minisig 2023-11-14 22:13:20
-rw-r--r-- 0/0 SHA256SUMS 2023-11-14 22:13:20
-rw-r--r-- 0/0 sbom.cdx.json 2023-11-14 22:13:20
-rw-r--r-- 0/0 report.sarif.json 2023-11-14 22:13:20
-rw-r--r-- 0/0 payload/models/big/config.json 2023-11-14 22:13:20
-rw-r--r-- 0/0 payload/models/big/model-00001-of-00002.safetensors 2023-11-14 22:13:20
-rw-r--r-- 0/0 payload/models/big/model-00002-of-00002.safetensors 2023-11-14 22:13:20
-rw-r--r-- 0/0 payload/models/big/model.safetensors.index.json 2023-11-14 22:13:20
-rw-r--r-- 0/0 payload/models/single/single.gguf 2023-11-14 22:13:20
-rw-r--r-- 0/0 payload/runtimes/rt/LICENSE 2023-11-14 22:13:20
-rwxr-xr-x 0/0 payload/runtimes/rt/bin/serve 2023-11-14 22:13:20
-rw-r--r-- 0/0 payload/files/etc/app/app.env 2023-11-14 22:13:20
-rw-r--r-- 0/0 payload/files/etc/app/sub/b.txt 2023-11-14 22:13:20
-rw-r--r-- 0/0 payload/files/etc/one.conf 2023-11-14 22:13:20
EOF
awk '{print $1, $2, $6, $4, $5}' list >got
diff expect got >diff.out || fail "tar listing differs: $(cat diff.out)"

# GNU tar extracts it; the checksums and the signature check out with the stock tools.
mkdir x
tar -xf out/b.tar -C x || fail "GNU tar cannot extract the bundle"
(cd x && sha256sum -c --strict SHA256SUMS >../sums.out 2>&1) || fail "sha256sum -c: $(cat sums.out)"
[ "$(grep -c ': OK$' sums.out)" = 12 ] || fail "SHA256SUMS lists $(grep -c ': OK$' sums.out) files, not 12"
(cd x && minisign -Vm airpack.lock.json -p ../mk.pub >../mv.out 2>&1) \
    || fail "stock minisign rejects the lock: $(cat mv.out)"
grep -q "Trusted comment: file:airpack.lock.json	name:test-bundle	version:2.0.1	sequence:7" mv.out \
    || fail "trusted comment: $(cat mv.out)"
sed -n 2p x/airpack.lock.json.minisig | base64 -d 2>/dev/null | head -c 2 | grep -q '^ED$' \
    || fail "the signature is not the prehashed ED form"
cmp -s x/payload/models/single/single.gguf in/single.gguf || fail "payload differs from its source"
cmp -s x/payload/files/etc/app/sub/b.txt in/conf/sub/b.txt || fail "files payload differs"

# The lock: format, metadata, artifacts in bundle order with sizes, modes and roles.
$PY - x/airpack.lock.json list <<'EOF' || fail "lock contents"
import hashlib, json, os, sys
lock = json.load(open(sys.argv[1]))
names = [l.split()[-1] for l in open(sys.argv[2])]
assert lock["format"] == "airpack-bundle/1", lock["format"]
md = lock["metadata"]
assert (md["name"], md["version"], md["sequence"]) == ("test-bundle", "2.0.1", 7), md
assert md["created"] == "2023-11-14T22:13:20Z", md["created"]
assert lock["target"]["site"] == "lab", lock["target"]
assert lock["analysis"]["summary"]["passed"] is True
arts = lock["artifacts"]
assert [a["path"] for a in arts] == names[2:], ([a["path"] for a in arts], names)
assert arts[0]["role"] == "checksums"
roles = {a["path"]: a["role"] for a in arts}
assert roles["payload/models/single/single.gguf"] == "model"
assert roles["payload/runtimes/rt/bin/serve"] == "runtime"
assert roles["payload/files/etc/one.conf"] == "file"
assert roles["sbom.cdx.json"] == "sbom" and roles["report.sarif.json"] == "report"
sbom = json.load(open(os.path.join(os.path.dirname(sys.argv[1]), "sbom.cdx.json")))
assert sbom["bomFormat"] == "CycloneDX", sbom.get("bomFormat")
sarif = json.load(open(os.path.join(os.path.dirname(sys.argv[1]), "report.sarif.json")))
assert sarif["version"] == "2.1.0", sarif.get("version")
modes = {a["path"]: a["mode"] for a in arts}
assert modes["payload/runtimes/rt/bin/serve"] == "0755" and modes["payload/runtimes/rt/LICENSE"] == "0644"
for a in arts:
    p = os.path.join(os.path.dirname(sys.argv[1]), a["path"])
    assert os.path.getsize(p) == a["size"], a
    assert hashlib.sha256(open(p, "rb").read()).hexdigest() == a["sha256"], a
assert lock["totals"] == {"artifacts": len(arts), "bytes": sum(a["size"] for a in arts)}
pins = {p["subject"]: p["status"] for p in lock["analysis"]["pins"]}
assert pins["models[1]"] == "ok", pins
EOF

# Deterministic pax headers: no atime/ctime, no user or group names, no extended records.
$PY - out/b.tar <<'EOF' || fail "tar headers are not deterministic"
import tarfile, sys
t = tarfile.open(sys.argv[1])
for m in t.getmembers():
    assert m.isreg(), m.name
    assert m.uid == 0 and m.gid == 0 and m.uname == "" and m.gname == "", (m.name, m.uname)
    assert m.mtime == 1700000000, m.mtime
    assert m.mode in (0o644, 0o755), oct(m.mode)
    assert not m.pax_headers, (m.name, m.pax_headers)
EOF

# ---- reproducible: same inputs, same bytes; input mtimes and modes do not leak ----
touch in/conf/app.env in/big/config.json
chmod 700 in/rt/bin/serve
sleep 1
"$AIRPACK" build in/m.yaml --secret-key mk.key --output out/b2.tar --quiet || fail "second build"
cmp out/b.tar out/b2.tar >/dev/null || fail "two builds of the same inputs differ"
# Rebuilding onto an existing name replaces it only when complete.
"$AIRPACK" build in/m.yaml --secret-key mk.key --output out/b2.tar --quiet || fail "rebuild"
cmp out/b.tar out/b2.tar >/dev/null || fail "rebuild differs"
# The path to the manifest may be typed any way: same bytes.
(cd in && "$AIRPACK" build ./m.yaml --secret-key ../mk.key --output ../out/b3.tar --quiet) \
    || fail "build from the manifest's folder"
cmp out/b.tar out/b3.tar >/dev/null || fail "the bundle depends on how the manifest path was typed"
# Without SOURCE_DATE_EPOCH: the fixed default epoch.
env -u SOURCE_DATE_EPOCH "$AIRPACK" build in/m.yaml --secret-key mk.key --output out/d.tar --quiet \
    || fail "build without SOURCE_DATE_EPOCH"
tar --full-time -tvf out/d.tar | head -n1 | grep -q "2000-01-01 00:00:00" || fail "default epoch"
set +e
SOURCE_DATE_EPOCH=yesterday "$AIRPACK" build in/m.yaml --secret-key mk.key --output out/e.tar 2>err
rc=$?
set -e
[ "$rc" = 2 ] && grep -q "SOURCE_DATE_EPOCH" err || fail "bad SOURCE_DATE_EPOCH: exit $rc, $(cat err)"

# An airpack key (keygen) works the same; the result differs only by the signature.
"$AIRPACK" keygen --public-key ak.pub --secret-key ak.key --no-password --quiet
"$AIRPACK" build in/m.yaml --secret-key ak.key --output out/ak.tar --quiet || fail "build with airpack key"
mkdir xa && tar -xf out/ak.tar -C xa
(cd xa && minisign -Vm airpack.lock.json -p ../ak.pub >/dev/null 2>&1) || fail "minisign with airpack key"
cmp -s xa/airpack.lock.json x/airpack.lock.json || fail "the lock depends on the key"

# zstd: the whole tar compressed, still deterministic, readable by GNU tar.
"$AIRPACK" build in/m.yaml --secret-key mk.key --output out/z.tar.zst --compress zstd:5 --quiet \
    || fail "build --compress zstd:5"
"$AIRPACK" build in/m.yaml --secret-key mk.key --output out/z2.tar.zst --compress zstd:5 --quiet
cmp out/z.tar.zst out/z2.tar.zst >/dev/null || fail "zstd builds differ"
zstd -dc out/z.tar.zst | cmp - out/b.tar >/dev/null || fail "zstd bundle is not the compressed plain bundle"
set +e
"$AIRPACK" build in/m.yaml --secret-key mk.key --output out/bad.tar --compress gzip 2>err; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "bad --compress" err || fail "--compress gzip: exit $rc"

# Non-ASCII names: a standard pax path record, the same bytes whatever the locale.
cp -R in uni
echo "u" >"uni/conf/ünï-名.txt"
LC_ALL=C "$AIRPACK" build uni/m.yaml --secret-key mk.key --output out/u1.tar --quiet || fail "unicode name"
LC_ALL=C.UTF-8 "$AIRPACK" build uni/m.yaml --secret-key mk.key --output out/u2.tar --quiet \
    || fail "unicode name (UTF-8 locale)"
cmp out/u1.tar out/u2.tar >/dev/null || fail "the bundle depends on the locale"
mkdir xu && tar -xf out/u1.tar -C xu
[ -f "xu/payload/files/etc/app/ünï-名.txt" ] || fail "unicode name not extracted: $(ls xu/payload/files/etc/app)"
(cd xu && sha256sum -c --quiet SHA256SUMS) || fail "sha256sum -c with a unicode name"
rm -rf uni xu out/u1.tar out/u2.tar

# ---- failures leave no output and no temporary file ------------------------
expect_fail() { # CODE MESSAGE OUTPUT ARGS...
    code=$1 msg=$2 o=$3
    shift 3
    set +e
    "$AIRPACK" build "$@" --output "$o" --quiet >fout 2>ferr
    rc=$?
    set -e
    [ "$rc" = "$code" ] || fail "expected exit $code for '$msg', got $rc: $(cat ferr)"
    grep -q "$msg" ferr || fail "expected '$msg' in: $(cat ferr)"
    [ ! -e "$o" ] || fail "'$msg': output '$o' was written"
    no_leftovers "$(dirname "$o")"
}
cp -R in bad
# A missing input (named in the manifest).
rm bad/one.conf
expect_fail 2 "one.conf" out/f1.tar bad/m.yaml --secret-key mk.key
echo "one" >bad/one.conf
# A pin mismatch: exit 1.
printf 'X' >>bad/single.gguf
expect_fail 1 "pin" out/f2.tar bad/m.yaml --secret-key mk.key
cp in/single.gguf bad/single.gguf
# A symlink inside an input folder.
ln -s ../one.conf bad/conf/link.env
expect_fail 2 "link.env" out/f3.tar bad/m.yaml --secret-key mk.key
rm bad/conf/link.env
# The output's folder does not exist; the key does not exist; usage errors.
expect_fail 2 "nodir" nodir/f4.tar bad/m.yaml --secret-key mk.key
expect_fail 2 "nokey" out/f5.tar bad/m.yaml --secret-key nokey.key
expect_fail 2 "missing --secret-key" out/f6.tar bad/m.yaml
# Not enough free space: checked before anything is read or written (a sparse
# file larger than the free space).
avail_k=$(df -Pk out | awk 'NR==2 {print $4}')
if truncate -s $((avail_k + 1048576))K bad/conf/huge.bin 2>/dev/null; then
    expect_fail 2 "not enough free space" out/f7.tar bad/m.yaml --secret-key mk.key
    rm bad/conf/huge.bin
fi
# A write that fails half-way (file size limit): the temporary file is removed.
head -c 3000000 /dev/urandom >bad/conf/blob.bin
set +e
(ulimit -f 2000 && "$AIRPACK" build bad/m.yaml --secret-key mk.key --output out/f8.tar --quiet) 2>ferr
rc=$?
set -e
[ "$rc" = 2 ] || fail "write failure: exit $rc: $(cat ferr)"
grep -q "cannot write" ferr || fail "write failure message: $(cat ferr)"
[ ! -e out/f8.tar ] || fail "a failed write left the output"
no_leftovers out
# A failed build leaves an existing output as it was.
cp out/b.tar out/keep.tar
printf 'X' >>bad/single.gguf
expect_fail 1 "pin" out/keep.tar.new bad/m.yaml --secret-key mk.key
set +e
"$AIRPACK" build bad/m.yaml --secret-key mk.key --output out/keep.tar --quiet 2>/dev/null
set -e
cmp -s out/keep.tar out/b.tar || fail "a failed build changed the existing output"
cp in/single.gguf bad/single.gguf
# A signal while writing: the temporary file goes, the output never appears.
rm bad/conf/blob.bin
truncate -s 1G bad/conf/zeros.bin
"$AIRPACK" build bad/m.yaml --secret-key mk.key --output out/sig.tar --quiet 2>/dev/null &
pid=$!
i=0
while [ $i -lt 400 ] && ! ls -a out | grep -q '\.tmp$'; do sleep 0.05; i=$((i + 1)); done
kill -TERM $pid 2>/dev/null || true
set +e
wait $pid
rc=$?
set -e
[ "$rc" = 143 ] || fail "the build was not ended by SIGTERM (exit $rc; make the input larger?)"
[ ! -e out/sig.tar ] || fail "a signal left the output"
no_leftovers out
rm bad/conf/zeros.bin

echo "ok"
