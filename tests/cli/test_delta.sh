#!/bin/sh
# test_delta.sh - delta bundles: list --export-lock carries the installed
# lock out, build --base leaves out what the site has ("in_base": true in
# the signed lock, no bytes in the tar), verify says what the base must
# supply, install takes it from the object store after re-hashing it, and
# refuses, naming them, when the base objects are missing or wrong.
. "$AIRPACK_SRC/tests/cli/lib.sh"
make_demo
export SOURCE_DATE_EPOCH=1700000000
cd "$T"
N=demo-assistant
run "$AIRPACK" keygen --public-key k.pub --secret-key k.sec --no-password
expect_rc 0
run "$AIRPACK" build demo/demo.yaml --secret-key k.sec --output base.airpack --quiet
expect_rc 0
run "$AIRPACK" install base.airpack -k k.pub --prefix P
expect_rc 0
run "$AIRPACK" list --prefix P --export-lock base.lock
expect_rc 0
expect_out "exported the lock of $N 1.0.0+1"
cmp -s base.lock "P/.airpack/receipts/$N/1.0.0+1/airpack.lock.json" || fail "exported lock differs"
minisign -Vm base.lock -p k.pub -x base.lock.minisig -q || fail "exported lock signature"

# release 2: one config file changed
cp -r demo demo2
sed -i 's/sequence: 1/sequence: 2/; s/version: 1.0.0/version: 1.1.0/' demo2/demo.yaml
echo "EXTRA=1" >>demo2/demo/config/server.env
(cd demo2/demo/config && sha256sum * >../config.sha256)
run "$AIRPACK" build demo2/demo.yaml --secret-key k.sec --output delta.airpack --base base.lock
expect_rc 0
expect_out "artifacts,"
expect_out "left out (in_base)"
expect_out "compressed with zstd:19 (a small delta's default"
run "$AIRPACK" build demo2/demo.yaml --secret-key k.sec --output deltap.airpack --base base.lock \
    --compress none
expect_rc 0
case "$OUT" in *"compressed with"*) fail "--compress none still compressed: $OUT" ;; esac
run "$AIRPACK" build demo2/demo.yaml --secret-key k.sec --output full.airpack --quiet
expect_rc 0
run "$AIRPACK" build demo2/demo.yaml --secret-key k.sec --output deltaz.airpack --base base.lock \
    --compress zstd:19 --quiet
expect_rc 0
# the receipt folder serves as the base too: the same delta
run "$AIRPACK" build demo2/demo.yaml --secret-key k.sec --output delta-r.airpack --quiet \
    --base "P/.airpack/receipts/$N/1.0.0+1"
expect_rc 0
tar -tf delta.airpack >list
grep -q '^payload/files/etc/demo-assistant/server.env$' list || fail "the changed file is not in the delta"
[ "$(grep -c '^payload/' list)" = 1 ] || fail "the delta carries unchanged payload: $(cat list)"
# the report is the base's, byte for byte (same findings): it stays home too
! grep -q '^report.sarif.json$' list || fail "the delta carries an unchanged report"
grep -q '^sbom.cdx.json$' list && grep -q '^SHA256SUMS$' list || fail "the delta lacks sums or SBOM"
cmp -s delta.airpack delta-r.airpack || fail "a delta against the receipt folder differs"
cmp -s delta.airpack deltaz.airpack || fail "the default delta is not the --compress zstd:19 one"
[ "$(tar -tf deltap.airpack)" = "$(cat list)" ] || fail "plain and compressed deltas list differently"
# a report that differs from the base's (one policy pack fewer) travels
cp -r demo2 demo3
sed -i 's/, nist-800-53]/]/' demo3/demo.yaml
run "$AIRPACK" build demo3/demo.yaml --secret-key k.sec --output delta3.airpack --base base.lock --quiet
expect_rc 0
tar -tf delta3.airpack | grep -q '^report.sarif.json$' || fail "a changed report was left out of the delta"
dsize=$(stat -c %s deltap.airpack)
zsize=$(stat -c %s delta.airpack)
fsize=$(stat -c %s full.airpack)
echo "delta: $zsize bytes (zstd:19, the default), $dsize plain; full bundle $fsize bytes"
[ "$zsize" -lt 10240 ] || fail "a one-file delta (zstd) is $zsize bytes"
[ "$dsize" -lt 61440 ] || fail "a one-file delta (plain) is $dsize bytes"
# the lock lists everything, signed; unchanged payload is in_base
tar -xf delta.airpack airpack.lock.json airpack.lock.json.minisig
minisign -Vm airpack.lock.json -p k.pub -q || fail "the delta's lock does not verify with minisign"
/usr/bin/python3 - airpack.lock.json <<'PY' || fail "delta lock"
import json, sys
l = json.load(open(sys.argv[1]))
a = {x["path"]: x for x in l["artifacts"]}
assert a["payload/models/tiny-chat/tiny-chat.gguf"].get("in_base") is True, a
assert "in_base" not in a["payload/files/etc/demo-assistant/server.env"], a
assert "in_base" not in a["SHA256SUMS"] and "in_base" not in a["sbom.cdx.json"], a
assert a["report.sarif.json"].get("in_base") is True, a
assert l["totals"]["artifacts"] == len(l["artifacts"]), l["totals"]
PY

# verify: what is in the tar, and what the base must supply
run "$AIRPACK" verify delta.airpack -k k.pub
expect_rc 0
expect_out "delta bundle: needs"
run "$AIRPACK" verify delta.airpack -k k.pub --format json
expect_rc 0
printf '%s' "$OUT" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["verified"] and d["in_base"]["artifacts"] >= 3, d
assert "payload/models/tiny-chat/tiny-chat.gguf" in d["in_base"]["paths"], d' || fail "verify json in_base"
run "$AIRPACK" audit delta.airpack -k k.pub
expect_rc 0

# install on top of the base: the same tree as the full bundle
run "$AIRPACK" install delta.airpack -k k.pub --prefix P
expect_rc 0
run "$AIRPACK" install full.airpack -k k.pub --prefix F
expect_rc 0
diff -r -x systemd "P/releases/$N/1.1.0+2" "F/releases/$N/1.1.0+2" >/dev/null || fail "delta and full installs differ"
run "$AIRPACK" audit --installed P -k k.pub --all-releases
expect_rc 0
run "$AIRPACK_VERIFY" install deltaz.airpack -k k.pub --prefix P --allow-downgrade
expect_rc 1   # already installed and active
expect_err "already installed"

# refused on a prefix without the base objects, naming them
run "$AIRPACK" install delta.airpack -k k.pub --prefix Empty
expect_rc 1
expect_err "is a delta"
expect_err "'payload/models/tiny-chat/tiny-chat.gguf' (not in the store)"
[ ! -e Empty/current ] || [ -z "$(ls Empty/current)" ] || fail "a refused delta was installed"

# a damaged base object: refused, naming it
run "$AIRPACK" install base.airpack -k k.pub --prefix B
expect_rc 0
hex=$(sha256sum demo/demo/models/tiny-chat.gguf | cut -d' ' -f1)
printf 'X' | dd of="B/.airpack/objects/sha256/$hex" bs=1 seek=100 conv=notrunc 2>/dev/null
run "$AIRPACK" install delta.airpack -k k.pub --prefix B
expect_rc 1
expect_err "'payload/models/tiny-chat/tiny-chat.gguf' (store copy damaged)"

# a delta whose in_base hash is wrong (a base lock claiming content the site lacks)
/usr/bin/python3 - base.lock demo2/demo/config/server.env <<'PY'
import hashlib, json, sys
l = json.load(open(sys.argv[1]))
h = hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest()
for a in l["artifacts"]:
    if a["path"].endswith("server.env"):
        a["sha256"] = h
open("forged.lock", "w").write(json.dumps(l, indent=2) + "\n")
PY
run "$AIRPACK" build demo2/demo.yaml --secret-key k.sec --output wrong.airpack --base forged.lock --quiet
expect_rc 0
run "$AIRPACK" install base.airpack -k k.pub --prefix W
expect_rc 0
run "$AIRPACK" install wrong.airpack -k k.pub --prefix W
expect_rc 1
expect_err "'payload/files/etc/demo-assistant/server.env' (not in the store)"

# a tar that carries the bytes of an in_base artifact is hostile
/usr/bin/python3 - deltap.airpack demo/demo/models/tiny-chat.gguf <<'PY'
import io, sys, tarfile
src = tarfile.open(sys.argv[1])
out = tarfile.open("carry.airpack", "w", format=tarfile.PAX_FORMAT)
for m in src.getmembers():
    out.addfile(m, src.extractfile(m))
    if m.name == "sbom.cdx.json":
        data = open(sys.argv[2], "rb").read()
        ti = tarfile.TarInfo("payload/models/tiny-chat/tiny-chat.gguf")
        ti.size = len(data); ti.mode = 0o644; ti.mtime = m.mtime
        out.addfile(ti, io.BytesIO(data))
out.close()
PY
run "$AIRPACK" verify carry.airpack -k k.pub
expect_rc 1
expect_err "the lock marks it in_base"

# usage
run "$AIRPACK" build demo2/demo.yaml --secret-key k.sec --output x.airpack --base nosuch.lock
expect_rc 2
expect_err "base lock"
run "$AIRPACK" list --prefix Empty --export-lock x.lock
expect_rc 2
done_ok
