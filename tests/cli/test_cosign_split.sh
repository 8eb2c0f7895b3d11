#!/bin/sh
# Co-signing a split bundle in place (issues 14 and 15, docs/bundle-format.md
# section 9): build and split leave a signature reserve at the end of part
# 1; `airpack sign NAME.parts|NAME.001` rewrites only part 1 and the parts
# index (signed by the signer); the other parts keep their bytes, inode and
# mtime; `cat NAME.0*` equals the single-file bundle signed the same way; a
# 2-of-3 trust file accepts the result; stock minisign and sha256sum agree;
# a full reserve and parts without one are refused, nothing changed.
. "$AIRPACK_SRC/tests/cli/lib.sh"
A=$AIRPACK
command -v minisign >/dev/null || fail "minisign is not installed (scripts/setup.sh installs it)"
export SOURCE_DATE_EPOCH=1700000000
K=$T/keys
mkdir -p "$K"
for n in build compliance ops root1; do
    "$A" keygen --public-key "$K/$n.pub" --secret-key "$K/$n.key" --no-password --quiet ||
        fail "keygen $n"
done
# the key id of a public key file, 16 hex digits (stock minisign's comment
# drops leading zeros; airpack names and prints ids with all 16)
kid() {
    _k=$(sed -n 's/.*minisign public key //p' "$K/$1.pub")
    while [ ${#_k} -lt 16 ]; do _k=0$_k; done
    echo "$_k"
}
# the site: bundles 2-of-3 (build, compliance, ops)
"$A" trust init "$T/trust.json" --expires 2099-01-01 --bundles-threshold 2 --root-threshold 1 \
    >/dev/null || fail "trust init"
for n in build compliance ops; do
    "$A" trust add-key "$T/trust.json" -k "$K/$n.pub" --name "$n" --role bundles >/dev/null ||
        fail "trust add-key $n"
done
"$A" trust add-key "$T/trust.json" -k "$K/root1.pub" --name root-1 --role root >/dev/null
"$A" trust sign "$T/trust.json" --secret-key "$K/root1.key" >/dev/null || fail "trust sign"

make_demo
cd "$T"
run "$A" build demo/demo.yaml --secret-key "$K/build.key" --output one.airpack --quiet
expect_rc 0
size=$(stat -c %s one.airpack)
vol=$(( size * 2 / 5 ))
reserve=$(( vol / 4 / 512 * 512 )) # below 320 KiB: a quarter of the volume
mkdir b
run "$A" build demo/demo.yaml --secret-key "$K/build.key" --output b/one.airpack --volume-size "$vol"
expect_rc 0
expect_out "3 parts of at most $vol bytes"
[ "$(stat -c %s b/one.airpack.001)" = "$((vol - reserve))" ] || fail "part 1 leaves no reserve"
# the unsigned (build key only) split bundle: refused by the 2-of-3 site
run "$A" verify b/one.airpack.parts --trust "$T/trust.json"
expect_rc 1
expect_err "1 valid signature of role 'bundles' found, 2 needed"

# ---- co-sign the parts: only part 1 and the index change ------------------
touch -d '2020-01-01 00:00:00' b/one.airpack.002 b/one.airpack.003
cp -p b/one.airpack.002 b/one.airpack.003 b/one.airpack.parts b/one.airpack.parts.minisig "$T/"
stat -c '%n %i %Y %s' b/one.airpack.002 b/one.airpack.003 >before
p1=$(stat -c %s b/one.airpack.001)
run "$A" sign b/one.airpack.parts --secret-key "$K/compliance.key" --output x
expect_rc 2
expect_err "--output does not apply to a split bundle"
run "$A" sign b/one.airpack.parts --secret-key "$K/compliance.key"
expect_rc 0
expect_out "2 signatures"
stat -c '%n %i %Y %s' b/one.airpack.002 b/one.airpack.003 >after
cmp -s before after || fail "parts 2 and 3 changed (inode, mtime or size): $(cat before after)"
cmp -s b/one.airpack.002 one.airpack.002 || fail "part 2's bytes changed"
cmp -s b/one.airpack.003 one.airpack.003 || fail "part 3's bytes changed"
! cmp -s b/one.airpack.parts one.airpack.parts || fail "the parts index did not change"
! cmp -s b/one.airpack.parts.minisig one.airpack.parts.minisig || fail "the index signature did not change"
grown=$(( $(stat -c %s b/one.airpack.001) - p1 ))
[ "$grown" -gt 0 ] && [ "$grown" -le "$reserve" ] || fail "part 1 grew by $grown bytes"
[ "$(stat -c %s b/one.airpack.001)" -le "$vol" ] || fail "part 1 is larger than the volume"
ls -a b | grep -q '\.tmp$' && fail "a temporary file was left: $(ls -a b)"
# cat of the parts = the single-file bundle signed by the same key
cp one.airpack s.airpack
run "$A" sign s.airpack --secret-key "$K/compliance.key"
expect_rc 0
cat b/one.airpack.0* | cmp -s - s.airpack || fail "cat of the co-signed parts differs from the co-signed bundle"
# sha256sum of the parts matches the index
/usr/bin/python3 - b/one.airpack.parts <<'EOF' >sums || fail "index unreadable"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["size"] == sum(p["size"] for p in d["parts"]), d
for p in d["parts"]:
    print("%s  b/%s" % (p["sha256"], p["file"]))
EOF
sha256sum -c sums >/dev/null || fail "sha256sum of the parts does not match the index"
# the index is signed by the signer now: stock minisign checks it
minisign -Vm b/one.airpack.parts -p "$K/compliance.pub" -q || fail "minisign: the new index signature"

# ---- the site accepts it ---------------------------------------------------
for p in b/one.airpack.parts b/one.airpack.001; do
    for bin in "$A" "$AIRPACK_VERIFY"; do
        run "$bin" verify "$p" --trust "$T/trust.json"
        expect_rc 0
        expect_out "signatures: 2 of 2 needed"
    done
done
run "$A" verify b/one.airpack.parts -k "$K/build.pub" -k "$K/compliance.pub"
expect_rc 0
run "$A" verify --parts b/one.airpack.parts -k "$K/compliance.pub"
expect_rc 0
expect_out "3 of 3 parts ok"
run "$A" verify --parts b/one.airpack.parts --trust "$T/trust.json"
expect_rc 0
expect_out "3 of 3 parts ok"
# the index's signer must be trusted: the build key alone no longer signs it
run "$A" verify --parts b/one.airpack.parts -k "$K/build.pub"
expect_rc 1
expect_err "signature does not verify"
run "$A" inspect b/one.airpack.parts
expect_rc 0
expect_out "co-signature: key id $(kid compliance)"
run "$A" install b/one.airpack.parts --trust "$T/trust.json" --prefix P1
expect_rc 0
run "$A" install s.airpack --trust "$T/trust.json" --prefix P2
expect_rc 0
diff -r -x systemd P1/releases P2/releases >/dev/null || fail "split and single co-signed installs differ"
# stock minisign verifies every signature of the joined bundle
mkdir x
cat b/one.airpack.0* | (cd x && tar xf -) || fail "tar of the parts"
(cd x && minisign -Vm airpack.lock.json -p "$K/build.pub" -q) || fail "minisign: build signature"
(cd x && minisign -Vm airpack.lock.json -x "airpack.lock.json.$(kid compliance).minisig" \
    -p "$K/compliance.pub" -q) || fail "minisign: co-signature"
# a part 1 damaged after signing is refused by sign (it signs what the index names)
cp -r b d
printf 'X' | dd of=d/one.airpack.001 bs=1 seek=70000 conv=notrunc 2>/dev/null
run "$A" sign d/one.airpack.001 --secret-key "$K/ops.key"
expect_rc 1
expect_err "part 1 does not match the parts index"

# ---- the reserve: full, absent, and the most signatures -------------------
mkdir r z
run "$A" split one.airpack --volume-size "$vol" --reserve 1024 --secret-key "$K/build.key" --output-dir r
expect_rc 0
[ "$(stat -c %s r/one.airpack.001)" = "$((vol - 1024))" ] || fail "split --reserve 1024"
run "$A" sign r/one.airpack.001 --secret-key "$K/compliance.key"
expect_rc 0
[ "$(stat -c %s r/one.airpack.001)" = "$vol" ] || fail "one co-signature fills 1024 bytes"
cp -r r r0
run "$A" sign r/one.airpack.001 --secret-key "$K/ops.key"
expect_rc 1
expect_err "the signature reserve of part 1 is full"
diff -r r r0 >/dev/null || fail "a refused sign changed the parts"
run "$A" verify r/one.airpack.parts --trust "$T/trust.json"
expect_rc 0
run "$A" split one.airpack --volume-size "$vol" --reserve 0 --secret-key "$K/build.key" --output-dir z
expect_rc 0
[ "$(stat -c %s z/one.airpack.001)" = "$vol" ] || fail "split --reserve 0"
cp -r z z0
run "$A" sign z/one.airpack.parts --secret-key "$K/compliance.key"
expect_rc 1
expect_err "written without a signature reserve"
diff -r z z0 >/dev/null || fail "a refused sign changed the parts"

# the most signatures (16) fit the default reserve; the 17th is refused
mkdir m
"$A" split one.airpack --volume-size "$vol" --secret-key "$K/build.key" --output-dir m --quiet ||
    fail "split"
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
    "$A" keygen --public-key "$K/c$i.pub" --secret-key "$K/c$i.key" --no-password --quiet ||
        fail "keygen c$i"
    "$A" sign m/one.airpack.parts --secret-key "$K/c$i.key" --quiet || fail "sign c$i"
done
[ "$(stat -c %s m/one.airpack.001)" -le "$vol" ] || fail "16 signatures overflow part 1"
run "$A" sign m/one.airpack.parts --secret-key "$K/ops.key"
expect_rc 1
expect_err "16 signatures"
run "$A" verify m/one.airpack.parts -k "$K/c15.pub"
expect_rc 0
done_ok
