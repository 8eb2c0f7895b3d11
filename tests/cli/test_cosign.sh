#!/bin/sh
# Co-signatures (issue 15, docs/bundle-format.md section 5): `airpack sign`
# adds a stock minisign signature over the same lock without rebuilding,
# rewriting only the head; verify checks every signature entry before the
# lock is parsed; inspect lists every signer; hostile heads are refused.
. "$AIRPACK_SRC/tests/cli/lib.sh"
"$AIRPACK_GEN_DIR/mkhostile" "$T/g" >/dev/null
G=$T/g
A=$AIRPACK

run "$A" keygen --public-key "$T/c.pub" --secret-key "$T/c.key" --no-password --quiet
expect_rc 0
# a key made by stock minisign signs too
command -v minisign >/dev/null || fail "minisign is not installed (scripts/setup.sh installs it)"
minisign -G -W -p "$T/m.pub" -s "$T/m.key" >/dev/null 2>&1 || fail "minisign -G"

# sign --output: the input is untouched, the output has two signatures
cp "$G/good.tar" "$T/orig.tar"
run "$A" sign "$G/good.tar" --secret-key "$T/c.key" --output "$T/s.tar"
expect_rc 0
expect_out "2 signatures"
cmp -s "$G/good.tar" "$T/orig.tar" || fail "sign --output changed its input"
# in place, with the minisign key
run "$A" sign "$T/s.tar" --secret-key "$T/m.key"
expect_rc 0
expect_out "3 signatures"
# the same key again: refused, bundle unchanged
cp "$T/s.tar" "$T/s-before.tar"
run "$A" sign "$T/s.tar" --secret-key "$T/c.key"
expect_rc 1
expect_err "already signed by key"
cmp -s "$T/s.tar" "$T/s-before.tar" || fail "a refused sign changed the bundle"

# only the head changed: the payload bytes are the same
osz=$(wc -c <"$G/good.tar")
n=$((osz - 8192))
[ "$(tail -c $n "$G/good.tar" | sha256sum)" = "$(tail -c $n "$T/s.tar" | sha256sum)" ] ||
    fail "the payload changed"
# entries: the lock, then the signature entries, then the artifacts
tar tf "$T/s.tar" >"$T/list"
sed -n 1p "$T/list" | grep -qx "airpack.lock.json" || fail "entry 1: $(sed -n 1p "$T/list")"
sed -n 2p "$T/list" | grep -qx "airpack.lock.json.minisig" || fail "entry 2: $(sed -n 2p "$T/list")"
sed -n 3,4p "$T/list" | grep -c '^airpack\.lock\.json\.[0-9A-F]\{16\}\.minisig$' | grep -qx 2 ||
    fail "co-signature entries: $(cat "$T/list")"
sed -n 5p "$T/list" | grep -qx "SHA256SUMS" || fail "entry 5: $(sed -n 5p "$T/list")"

# each signer alone verifies it, from a file and from a pipe
for k in "$G/trusted.pub" "$T/c.pub" "$T/m.pub"; do
    run "$A" verify "$T/s.tar" -k "$k"
    expect_rc 0
    cat "$T/s.tar" | "$A" verify - -k "$k" >/dev/null || fail "pipe verify with $k"
    "$AIRPACK_VERIFY" verify "$T/s.tar" -k "$k" >/dev/null || fail "airpack-verify with $k"
done
run "$A" verify "$T/s.tar" -k "$G/untrusted.pub"
expect_rc 1
expect_err "none of the 3 signatures is by a trusted key"

# stock minisign verifies every signature entry
mkdir "$T/x"
(cd "$T/x" && tar xf "$T/s.tar")
c_id=$(sed -n 's/.*minisign public key //p' "$T/c.pub")
m_id=$(sed -n 's/.*minisign public key //p' "$T/m.pub")
# stock minisign's comment drops leading zeros; entry names have all 16 digits
while [ ${#c_id} -lt 16 ]; do c_id=0$c_id; done
while [ ${#m_id} -lt 16 ]; do m_id=0$m_id; done
(cd "$T/x" && minisign -Vm airpack.lock.json -p "$G/trusted.pub" >/dev/null) || fail "minisign: build signature"
(cd "$T/x" && minisign -Vm airpack.lock.json -x "airpack.lock.json.$c_id.minisig" -p "$T/c.pub" >/dev/null) ||
    fail "minisign: airpack co-signature"
(cd "$T/x" && minisign -Vm airpack.lock.json -x "airpack.lock.json.$m_id.minisig" -p "$T/m.pub" >/dev/null) ||
    fail "minisign: co-signature by a minisign key"
(cd "$T/x" && sha256sum -c SHA256SUMS >/dev/null) || fail "sha256sum -c"

# inspect lists every signer's key id and trusted comment
run "$A" inspect "$T/s.tar"
expect_rc 0
expect_out "co-signature: key id $c_id"
expect_out "co-signature: key id $m_id"
run "$A" inspect "$T/s.tar" --format json
expect_rc 0
printf '%s' "$OUT" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
s = d["signatures"]
assert len(s) == 3, s
assert s[0]["entry"] == "airpack.lock.json.minisig", s
assert all(x["trusted_comment"].startswith("file:airpack.lock.json") and "chat-assistant" in x["trusted_comment"] for x in s), s
ids = {x["key_id"] for x in s}
assert set(sys.argv[1:]) <= ids, (ids, sys.argv)
' "$c_id" "$m_id" || fail "inspect json signatures: $OUT"
# verify --format json lists them with their state
run "$A" verify "$T/s.tar" -k "$T/c.pub" --format json
expect_rc 0
printf '%s' "$OUT" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
s = d["signatures"]
assert [x["counted"] for x in s].count(True) == 1, s
assert d["threshold"] == {"found": 1, "needed": 1}, d
' || fail "verify json signatures: $OUT"

# a zstd bundle is signed too (recompressed once)
run "$A" sign "$G/good.tar.zst" --secret-key "$T/c.key" --output "$T/s.tar.zst"
expect_rc 0
run "$A" verify "$T/s.tar.zst" -k "$T/c.pub"
expect_rc 0

# hostile heads: refused with a "signature" fault before the lock (not JSON
# in these bundles) is parsed
mkdir -p "$T/h"
"$AIRPACK_GEN_DIR/mkcosign" "$G/good.tar" "$T/h" "$G/trusted.key" "$G/other.key" ||
    fail "mkcosign"
for c in too-many oversized other-lock bad-name; do
    run "$A" verify "$T/h/$c.tar" -k "$G/keys" --format json
    expect_rc 1
    printf '%s' "$OUT" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["error"]["fault"] == "signature", d["error"]
' || fail "$c: $OUT $ERR"
done
run "$A" verify "$T/h/too-many.tar" -k "$G/keys"
expect_err "more than 16 signature entries"
run "$A" verify "$T/h/oversized.tar" -k "$G/keys"
expect_err "more than the limit of 4096"
run "$A" verify "$T/h/other-lock.tar" -k "$G/keys"
expect_err "does not verify over this lock"
# a duplicate signature by the same key verifies (it counts once)
run "$A" verify "$T/h/dup.tar" -k "$G/trusted.pub" --format json
expect_rc 0
printf '%s' "$OUT" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["threshold"]["found"] == 1, d
assert [x["counted"] for x in d["signatures"]] == [True, False], d["signatures"]
' || fail "dup: $OUT"

done_ok
