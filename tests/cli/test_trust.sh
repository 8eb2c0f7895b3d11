#!/bin/sh
# The site trust file (issue 15, docs/trust.md): k-of-n bundle signatures,
# roles, duplicates, revocation, rotation carried in bundles (v1 -> v2 -> v3,
# rollback refused, root threshold), recording in the prefix, expiry, audit
# under the file in force; every signature checked with stock minisign.
. "$AIRPACK_SRC/tests/cli/lib.sh"
A=$AIRPACK
command -v minisign >/dev/null || fail "minisign is not installed (scripts/setup.sh installs it)"
K=$T/keys
mkdir -p "$K"
for n in build compliance ops newops root1 root2; do
    "$A" keygen --public-key "$K/$n.pub" --secret-key "$K/$n.key" --no-password --quiet ||
        fail "keygen $n"
done
# one key made by stock minisign
minisign -G -W -p "$K/mini.pub" -s "$K/mini.key" >/dev/null 2>&1 || fail "minisign -G"
# the key id of a public key file, 16 hex digits (stock minisign's comment
# drops leading zeros; airpack names and prints ids with all 16)
kid() {
    _k=$(sed -n 's/.*minisign public key //p' "$K/$1.pub")
    while [ ${#_k} -lt 16 ]; do _k=0$_k; done
    echo "$_k"
}

# ---- v1: bundles 2-of-3 (build, compliance, ops), root 2-of-2 --------------
run "$A" trust init "$T/v1.json" --expires 2099-01-01 --bundles-threshold 2 --root-threshold 2
expect_rc 0
for n in build compliance ops; do
    run "$A" trust add-key "$T/v1.json" --public-key "$K/$n.pub" --name "$n" --role bundles
    expect_rc 0
done
"$A" trust add-key "$T/v1.json" -k "$K/root1.pub" --name root-1 --role root >/dev/null
"$A" trust add-key "$T/v1.json" -k "$K/root2.pub" --name root-2 --role root >/dev/null
run "$A" trust show "$T/v1.json"
expect_rc 1
expect_out "NOT VALID"
"$A" trust sign "$T/v1.json" --secret-key "$K/root1.key" >/dev/null
# one root signature of two: not valid, and verify refuses to use it
run "$A" trust show "$T/v1.json"
expect_rc 1
expect_out "1 valid signature of its own 'root' role, 2 needed"
"$A" trust sign "$T/v1.json" --secret-key "$K/root2.key" >/dev/null
run "$A" trust show "$T/v1.json" --format json
expect_rc 0
printf '%s' "$OUT" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["version"] == 1 and d["valid"] and d["thresholds"] == {"bundles": 2, "root": 2}, d
assert [s["status"] for s in d["signatures"]] == ["valid", "valid"], d
' || fail "show json: $OUT"
# the small verifier inside the gap shows and checks it too
run "$AIRPACK_VERIFY" trust show "$T/v1.json"
expect_rc 0
expect_out "status:      valid"
# its signatures are stock minisign signatures over the canonical bytes
run "$A" trust show "$T/v1.json" --export "$T/ex1"
expect_rc 0
for r in root1 root2; do
    minisign -Vm "$T/ex1/trust.signed.json" -x "$T/ex1/trust.signed.json.$(kid $r).minisig" \
        -p "$K/$r.pub" >/dev/null || fail "minisign: v1 signature by $r"
done

# ---- bundles ---------------------------------------------------------------
make_demo
seq_build() { # SEQ OUT [--trust-file F]: a demo bundle of sequence SEQ, built with the build key
    s=$1 o=$2
    shift 2
    sed "s/^  sequence: .*/  sequence: $s/" "$AIRPACK_SRC/manifests/demo.yaml" >"$T/demo/demo.yaml"
    "$A" build "$T/demo/demo.yaml" --secret-key "$K/build.key" --output "$o" --quiet "$@" ||
        fail "build sequence $s"
}
cosign() { # BUNDLE KEY...
    b=$1
    shift
    for k in "$@"; do "$A" sign "$b" --secret-key "$K/$k.key" --quiet || fail "sign $b $k"; done
}
seq_build 1 "$T/b1.tar"

# 2-of-3: one signer refused, naming found, needed and the signer
run "$A" verify "$T/b1.tar" --trust "$T/v1.json"
expect_rc 1
expect_err "1 valid signature of role 'bundles' found, 2 needed"
expect_err "build (counted)"
run "$A" install "$T/b1.tar" --trust "$T/v1.json" --prefix "$T/p"
expect_rc 1
[ ! -e "$T/p/.airpack/trust.json" ] && [ ! -e "$T/p/current" ] || fail "a refused install changed the prefix"
# a key outside the role (root-1) does not count
cp "$T/b1.tar" "$T/b1-root.tar"
cosign "$T/b1-root.tar" root1
run "$A" verify "$T/b1-root.tar" --trust "$T/v1.json"
expect_rc 1
expect_err "not in role 'bundles'"
# a key not in the file at all (minisign's) does not count either
cp "$T/b1.tar" "$T/b1-mini.tar"
cosign "$T/b1-mini.tar" mini
run "$A" verify "$T/b1-mini.tar" --trust "$T/v1.json"
expect_rc 1
expect_err "unknown key"
# the same key twice counts once
mkdir -p "$T/h"
"$AIRPACK_GEN_DIR/mkcosign" "$T/b1.tar" "$T/h" "$K/build.key" "$K/ops.key" || fail "mkcosign"
run "$A" verify "$T/h/dup.tar" --trust "$T/v1.json"
expect_rc 1
expect_err "duplicate"
# two signers of the role: accepted
cosign "$T/b1.tar" compliance
run "$A" verify "$T/b1.tar" --trust "$T/v1.json"
expect_rc 0
expect_out "signatures: 2 of 2 needed"
# install records the trust file in the prefix
run "$A" install "$T/b1.tar" --trust "$T/v1.json" --prefix "$T/p"
expect_rc 0
cmp -s "$T/v1.json" "$T/p/.airpack/trust.json" || fail "trust file not recorded"
# the prefix's file is used by default; --public-key is refused there
seq_build 2 "$T/b2.tar"
run "$A" install "$T/b2.tar" --prefix "$T/p"
expect_rc 1
expect_err "1 valid signature of role 'bundles' found, 2 needed"
run "$A" install "$T/b2.tar" --public-key "$K/build.pub" --prefix "$T/p"
expect_rc 1
expect_err "is governed by its trust file"
cosign "$T/b2.tar" ops
run "$A" install "$T/b2.tar" --prefix "$T/p"
expect_rc 0

# ---- rotation: v2 revokes compliance, adds newops ---------------------------
cp "$T/v1.json" "$T/v2.json"
run "$A" trust revoke "$T/v2.json" "$(kid compliance)"
expect_rc 0
expect_out "version 2"
"$A" trust add-key "$T/v2.json" -k "$K/newops.pub" --name newops --role bundles >/dev/null
# v2 signed by one of the two root keys: refused, prefix unchanged (the
# content store may keep verified objects of the refused bundle; prune drops them)
cp "$T/v2.json" "$T/v2-half.json"
"$A" trust sign "$T/v2-half.json" -s "$K/root1.key" >/dev/null
seq_build 3 "$T/b3-half.tar" --trust-file "$T/v2-half.json"
cosign "$T/b3-half.tar" ops
cp -a "$T/p" "$T/p-before"
run "$A" install "$T/b3-half.tar" --prefix "$T/p"
expect_rc 1
expect_err "1 valid signature by root keys of the installed version 1, 2 needed"
diff -r -x objects "$T/p" "$T/p-before" >/dev/null || fail "refused rotation changed the prefix"
run "$A" install "$T/b2.tar" --trust "$T/v2-half.json" --prefix "$T/p" --allow-downgrade
expect_rc 1
"$A" trust sign "$T/v2.json" -s "$K/root1.key" >/dev/null
"$A" trust sign "$T/v2.json" -s "$K/root2.key" >/dev/null
# a rotation bundle must satisfy the new file too: compliance is revoked in v2
seq_build 3 "$T/b3-bad.tar" --trust-file "$T/v2.json"
cosign "$T/b3-bad.tar" compliance
run "$A" install "$T/b3-bad.tar" --prefix "$T/p"
expect_rc 1
expect_err "revoked"
diff -r -x objects "$T/p" "$T/p-before" >/dev/null || fail "refused rotation bundle changed the prefix"
# v1 -> v2 with build + ops
seq_build 3 "$T/b3.tar" --trust-file "$T/v2.json"
cosign "$T/b3.tar" ops
run "$A" install "$T/b3.tar" --prefix "$T/p"
expect_rc 0
cmp -s "$T/v2.json" "$T/p/.airpack/trust.json" || fail "v2 not recorded"
[ -f "$T/p/.airpack/trust-history/2.json" ] || fail "v2 not in the history"
grep -q '"version": 2' "$T/p/.airpack/receipts/demo-assistant/1.0.0+3/install.json" ||
    fail "install record lacks the trust version"
# revoked at once: build + compliance no longer enough
seq_build 4 "$T/b4-rev.tar"
cosign "$T/b4-rev.tar" compliance
run "$A" install "$T/b4-rev.tar" --prefix "$T/p"
expect_rc 1
expect_err "$(kid compliance) compliance (revoked)"

# ---- v2 -> v3 (a later expiry), then v3 -> v2 refused
cp "$T/v2.json" "$T/v3.json"
run "$A" trust set "$T/v3.json" --expires 2099-06-01
expect_rc 0
expect_out "version 3"
"$A" trust sign "$T/v3.json" -s "$K/root1.key" >/dev/null
"$A" trust sign "$T/v3.json" -s "$K/root2.key" >/dev/null
seq_build 4 "$T/b4.tar" --trust-file "$T/v3.json"
cosign "$T/b4.tar" newops
run "$A" install "$T/b4.tar" --prefix "$T/p"
expect_rc 0
cmp -s "$T/v3.json" "$T/p/.airpack/trust.json" || fail "v3 not recorded"
cp -a "$T/p" "$T/p-v3"
seq_build 5 "$T/b5-old.tar" --trust-file "$T/v2.json"
cosign "$T/b5-old.tar" newops
run "$A" install "$T/b5-old.tar" --prefix "$T/p"
expect_rc 1
expect_err "rollback of the trust file is refused"
diff -r -x objects "$T/p" "$T/p-v3" >/dev/null || fail "refused rollback changed the prefix"
run "$A" install "$T/b4.tar" --trust "$T/v2.json" --prefix "$T/p" --allow-downgrade
expect_rc 1
expect_err "rollback of the trust file is refused"

# ---- audit under the file in force -----------------------------------------
run "$A" audit --installed "$T/p"
expect_rc 0
expect_out "from the trust file"
# a v4 that revokes build and newops: the current release (build + newops)
# is signed only by revoked keys now
cp "$T/v3.json" "$T/v4.json"
"$A" trust revoke "$T/v4.json" "$(kid build)" >/dev/null
"$A" trust revoke "$T/v4.json" "$(kid newops)" >/dev/null
"$A" trust sign "$T/v4.json" -s "$K/root1.key" >/dev/null
"$A" trust sign "$T/v4.json" -s "$K/root2.key" >/dev/null
run "$A" audit --installed "$T/p" --trust "$T/v4.json"
expect_rc 1
expect_out "signed only by keys that are now revoked"

# ---- expiry ----------------------------------------------------------------
cp "$T/v1.json" "$T/old.json"
"$A" trust set "$T/old.json" --expires 2001-02-03 >/dev/null
"$A" trust sign "$T/old.json" -s "$K/root1.key" >/dev/null
"$A" trust sign "$T/old.json" -s "$K/root2.key" >/dev/null
run "$A" verify "$T/b1.tar" --trust "$T/old.json"
expect_rc 1
expect_err "expired at 2001-02-03T00:00:00Z"
run "$A" install "$T/b1.tar" --trust "$T/old.json" --prefix "$T/p2"
expect_rc 1
expect_err "expired at 2001-02-03T00:00:00Z"

# ---- every signature involved verifies with stock minisign -----------------
mkdir "$T/x"
(cd "$T/x" && tar xf "$T/b4.tar")
(cd "$T/x" && minisign -Vm airpack.lock.json -p "$K/build.pub" >/dev/null) || fail "minisign: build"
(cd "$T/x" && minisign -Vm airpack.lock.json -x "airpack.lock.json.$(kid newops).minisig" \
    -p "$K/newops.pub" >/dev/null) || fail "minisign: newops co-signature"
"$A" trust show "$T/x/trust.json" --export "$T/ex3" >/dev/null || fail "show carried v3"
for r in root1 root2; do
    minisign -Vm "$T/ex3/trust.signed.json" -x "$T/ex3/trust.signed.json.$(kid $r).minisig" \
        -p "$K/$r.pub" >/dev/null || fail "minisign: v3 signature by $r"
done

done_ok
