#!/bin/sh
# test_keygen.sh - `airpack keygen` through the real binary, checked against
# stock minisign both ways (airpack's keys sign with minisign; an encrypted
# minisign key builds a bundle). The encrypted-key cases cost minisign's full
# scrypt work, a few seconds each.
set -eu
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$T"

# Usage errors: exit 2 and say what is missing.
set +e
"$AIRPACK" keygen --secret-key k.key --no-password >out 2>err; rc=$?
set -e
[ "$rc" = 2 ] || fail "missing --public-key: exit $rc"
grep -q "missing --public-key" err || fail "missing --public-key message: $(cat err)"
[ ! -e k.key ] || fail "a failed keygen left a file"

# Unencrypted key pair.
"$AIRPACK" keygen --public-key k.pub --secret-key k.key --no-password >out 2>err \
    || fail "keygen --no-password: $(cat err)"
grep -q "key id [0-9A-F]\{16\}" out || fail "keygen output: $(cat out)"
[ "$(stat -c %a k.key)" = 600 ] || fail "secret key mode $(stat -c %a k.key)"
head -n1 k.pub | grep -q "^untrusted comment: minisign public key [0-9A-F]\{16\}$" \
    || fail "public key comment: $(head -n1 k.pub)"
[ "$(wc -l <k.pub)" = 2 ] || fail "public key lines"
id=$(sed -n 's/.*key id \([0-9A-F]*\).*/\1/p' out)
grep -q "$id" k.pub || fail "key id $id not in the public key file"

# Stock minisign signs with airpack's secret key and verifies with its public key.
echo "some data" >msg
minisign -S -s k.key -m msg -x msg.sig -t "from airpack key" </dev/null >/dev/null 2>err \
    || fail "minisign cannot sign with airpack's key: $(cat err)"
minisign -V -p k.pub -m msg -x msg.sig >out 2>&1 || fail "minisign -V: $(cat out)"
grep -q "Trusted comment: from airpack key" out || fail "minisign output: $(cat out)"

# Never overwritten without --force; the old key stays as it was.
cp k.key k.key.orig
set +e
"$AIRPACK" keygen --public-key k.pub --secret-key k.key --no-password >out 2>err; rc=$?
set -e
[ "$rc" = 2 ] || fail "overwrite without --force: exit $rc"
grep -q "exists; use --force" err || fail "overwrite message: $(cat err)"
cmp -s k.key k.key.orig || fail "the secret key changed without --force"
"$AIRPACK" keygen --public-key k.pub --secret-key k.key --no-password --force --quiet >out 2>err \
    || fail "keygen --force: $(cat err)"
[ ! -s out ] || fail "--quiet printed: $(cat out)"
cmp -s k.key k.key.orig && fail "--force did not replace the key"
[ "$(stat -c %a k.key)" = 600 ] || fail "replaced secret key mode $(stat -c %a k.key)"

# An empty password is refused (no silent unencrypted key).
: >empty.pw
set +e
"$AIRPACK" keygen --public-key e0.pub --secret-key e0.key --password-file empty.pw >out 2>err; rc=$?
set -e
[ "$rc" = 2 ] || fail "empty password: exit $rc"
grep -q "password is empty" err || fail "empty password message: $(cat err)"
[ ! -e e0.key ] && [ ! -e e0.pub ] || fail "empty password left a key file"
set +e
"$AIRPACK" keygen --public-key e0.pub --secret-key e0.key --password-file nonexistent.pw >out 2>err; rc=$?
set -e
[ "$rc" = 2 ] || fail "missing password file: exit $rc"

# Encrypted key (password file): scrypt as minisign does it; minisign decrypts it.
printf 'correct horse\n' >pw
"$AIRPACK" keygen --public-key e.pub --secret-key e.key --password-file pw >out 2>err \
    || fail "keygen encrypted: $(cat err)"
python3 -c "import base64,sys; b=base64.b64decode(open('e.key').read().split('\n')[1]); sys.exit(0 if b[:6]==b'EdScB2' and len(b)==158 else 1)" \
    || fail "encrypted key header"
printf 'correct horse\n' | minisign -S -s e.key -m msg -x msg2.sig >/dev/null 2>err \
    || fail "minisign cannot decrypt airpack's encrypted key: $(cat err)"
minisign -V -p e.pub -m msg -x msg2.sig >out 2>&1 || fail "minisign -V (encrypted key): $(cat out)"

# The other way: an encrypted key made by stock minisign signs an airpack bundle.
printf 'minisign pw\nminisign pw\n' | minisign -G -p m.pub -s m.key >/dev/null 2>&1 || fail "minisign -G"
"$AIRPACK_GEN_DIR/mkgguf" --preset tiny tiny.gguf >/dev/null
cat >d.yaml <<'EOF'
apiVersion: airpack/v1
kind: Deployment
metadata: { name: keys, version: "1", sequence: 1 }
target: { gpu: { model: nvidia-l4, count: 1 } }
models:
  - name: tiny
    path: tiny.gguf
EOF
printf 'minisign pw\n' >m.pw
"$AIRPACK" build d.yaml --secret-key m.key --password-file m.pw --output b.tar --quiet 2>err \
    || fail "build with an encrypted minisign key: $(cat err)"
mkdir x && tar -xf b.tar -C x
(cd x && minisign -Vm airpack.lock.json -p ../m.pub >/dev/null 2>&1) || fail "minisign rejects the lock"
echo "ok"
