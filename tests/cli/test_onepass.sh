#!/bin/sh
# test_onepass.sh - the one-pass build (a plain bundle file): the same bytes
# as the two-pass path (which writes to a pipe or FIFO), reproducible,
# streamable (lock first, verify from a pipe), and an input that changes between plan and write is caught: new
# content (size or mtime), mtime restored (ctime), or replaced (inode).
. "$AIRPACK_SRC/tests/cli/lib.sh"
make_demo
export SOURCE_DATE_EPOCH=1700000000
cd "$T"
run "$AIRPACK" keygen --public-key k.pub --secret-key k.sec --no-password
expect_rc 0
run "$AIRPACK" build demo/demo.yaml --secret-key k.sec --output one.airpack --quiet
expect_rc 0
run "$AIRPACK" build demo/demo.yaml --secret-key k.sec --output two.airpack --two-pass --quiet
expect_rc 0
cmp -s one.airpack two.airpack || fail "one pass and two passes differ"
run "$AIRPACK" build demo/demo.yaml --secret-key k.sec --output again.airpack --quiet
expect_rc 0
cmp -s one.airpack again.airpack || fail "one pass is not reproducible"
# --sync: the same bytes, fsynced before the rename (and the folder after);
# without it the bundle is left to the kernel's writeback, as tar leaves it
if command -v strace >/dev/null 2>&1 && strace -o /dev/null true 2>/dev/null; then
    # LeakSanitizer cannot run under ptrace: no leak check in these two runs
    noleak="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
    ASAN_OPTIONS=$noleak strace -f -e trace=fsync,fdatasync -o "$T/st-sync" "$AIRPACK" build demo/demo.yaml \
        --secret-key k.sec --output synced.airpack --quiet --sync 2>/dev/null ||
        fail "build --sync"
    [ "$(grep -c 'fsync(' "$T/st-sync")" -ge 2 ] || fail "build --sync: no fsync: $(cat "$T/st-sync")"
    ASAN_OPTIONS=$noleak strace -f -e trace=fsync,fdatasync -o "$T/st-plain" "$AIRPACK" build demo/demo.yaml \
        --secret-key k.sec --output plain.airpack --quiet 2>/dev/null || fail "build"
    ! grep -q 'fsync(' "$T/st-plain" || fail "build without --sync fsyncs: $(cat "$T/st-plain")"
    cmp -s synced.airpack one.airpack || fail "build --sync differs"
    CHECKS=$((CHECKS + 3))
else
    echo "strace not found or not allowed (ptrace): --sync checked for its bytes only"
    run "$AIRPACK" build demo/demo.yaml --secret-key k.sec --output synced.airpack --quiet --sync
    expect_rc 0
    cmp -s synced.airpack one.airpack || fail "build --sync differs"
fi
[ "$(tar -tf one.airpack | head -3 | tr '\n' ' ')" = "airpack.lock.json airpack.lock.json.minisig SHA256SUMS " ] ||
    fail "entry order: $(tar -tf one.airpack | head -3)"
cat one.airpack | "$AIRPACK" verify - -k k.pub >/dev/null || fail "one-pass bundle from a pipe"
# a pipe as the output: the two-pass path, the same bytes
"$AIRPACK" build demo/demo.yaml --secret-key k.sec --output - >piped.airpack 2>"$T/e" ||
    fail "build --output -: $(cat "$T/e")"
cmp -s piped.airpack one.airpack || fail "build to a pipe differs"
"$AIRPACK" build demo/demo.yaml --secret-key k.sec --output - 2>/dev/null |
    "$AIRPACK" verify - -k k.pub >/dev/null || fail "build | verify -"
mkfifo fifo
cat fifo >fifo.airpack &
"$AIRPACK" build demo/demo.yaml --secret-key k.sec --output fifo --quiet || fail "build into a FIFO"
wait
cmp -s fifo.airpack one.airpack || fail "build into a FIFO differs"
run "$AIRPACK" build demo/demo.yaml --secret-key k.sec --output - --volume-size 1M
expect_rc 2
mkdir x && tar -xf one.airpack -C x
(cd x && sha256sum -c --quiet SHA256SUMS) || fail "SHA256SUMS of a one-pass bundle"
minisign -Vm x/airpack.lock.json -p k.pub -q || fail "minisign on a one-pass lock"

# one pass into volumes: the head spans several small parts, filled in at
# the end; the parts and their index are what split makes of the file
mkdir v s
run "$AIRPACK" build demo/demo.yaml --secret-key k.sec --output v/one.airpack --volume-size 4096
expect_rc 0
cat v/one.airpack.0* | cmp -s - one.airpack || fail "one-pass volumes differ from the bundle"
run "$AIRPACK" split one.airpack --volume-size 4096 --secret-key k.sec --output-dir s
expect_rc 0
cmp -s v/one.airpack.parts s/one.airpack.parts || fail "one-pass parts index differs from split's"
run "$AIRPACK" verify --parts v/one.airpack.parts -k k.pub
expect_rc 0
[ -f v/one.airpack.0135 ] && [ ! -e v/one.airpack.001 ] || fail "135 parts are not named .0001 to .0135"
run "$AIRPACK" verify v/one.airpack.0001 -k k.pub
expect_rc 0
rm v/one.airpack.parts v/one.airpack.parts.minisig
run "$AIRPACK" verify v/one.airpack.0001 -k k.pub   # without the index: by number
expect_rc 0
expect_out "verified 'v/one.airpack.0001'"

# an input changed between plan and write: refused, nothing written
F=demo/demo/config/server.env
# stalled MANIFEST ACTION MESSAGE VAR=VALUE...: build MANIFEST with the test
# hooks VAR=VALUE (one of them a *_STALL hook set to $T/stall), do ACTION
# while the build waits there, then expect exit 2, MESSAGE, nothing written
stalled() {
    m=$1 act=$2 msg=$3
    shift 3
    rm -f stall out.airpack
    env "$@" "$AIRPACK" build "$m" --secret-key k.sec --output out.airpack --quiet \
        >"$T/o" 2>"$T/e" &
    pid=$!
    n=0
    while [ ! -e stall ]; do
        sleep 0.05; n=$((n + 1))
        [ "$n" -lt 400 ] || fail "$act: the build never reached its stall point"
    done
    eval "$act"
    rm -f stall
    set +e; wait "$pid"; rc=$?; set -e
    [ "$rc" = 2 ] || fail "$act: exit $rc ($(cat "$T/e"))"
    grep -q "$msg" "$T/e" || fail "$act: message: $(cat "$T/e")"
    [ ! -e out.airpack ] || fail "$act: a bundle was written"
    ls -A >"$T/ls"; ! grep -q "^\.out\.airpack" "$T/ls" || fail "$act: temporary file left: $(cat "$T/ls")"
}
changed() { # $1: what to do to the input while the build waits; $2: expected message
    stalled demo/demo.yaml "$1" "$2" AIRPACK_TEST_BUILD_STALL="$T/stall"
}
cp "$F" orig.env
changed "echo 'B=2' >>$F" "file changed while building the bundle"
cp orig.env "$F"
touch -d '2001-01-01 00:00:00' "$F"
changed "printf X | dd of=$F bs=1 seek=0 conv=notrunc 2>/dev/null; touch -d '2001-01-01 00:00:00' $F" \
    "changed since it was planned: size, mtime or ctime differ"
cp orig.env "$F"
changed "cp $F n.env && mv n.env $F" "replaced or resized"
cp orig.env "$F"

run "$AIRPACK" build demo/demo.yaml --secret-key k.sec --output out.airpack --quiet
expect_rc 0

# hashing ahead (docs/bundle-format.md §7): the main thread hashes later
# large files while it would wait. Forced here before the first file
# (AIRPACK_TEST_HASH_AHEAD=N blocks of 64 KiB): none, the last file in
# part, the last whole and the one before in part, all whole. The bytes
# must be those of the two-pass build.
mkdir -p big/data
for f in a:5 b:6 c:7; do head -c "${f#*:}M" /dev/urandom >"big/data/${f%:*}.bin"; done
"$AIRPACK_GEN_DIR/mkgguf" --preset tiny big/tiny.gguf >/dev/null
cat >big/m.yaml <<'EOF'
apiVersion: airpack/v1
kind: Deployment
metadata: { name: ahead, version: "1.0.0", sequence: 1 }
target: { gpu: { model: nvidia-l4, count: 1 } }
models:
  - name: tiny
    path: tiny.gguf
files:
  - { path: data/, target: opt/data/ }
EOF
run "$AIRPACK" build big/m.yaml --secret-key k.sec --output big2.airpack --two-pass --quiet
expect_rc 0
for n in 0 40 150 1000; do
    AIRPACK_TEST_HASH_AHEAD=$n run "$AIRPACK" build big/m.yaml --secret-key k.sec \
        --output "big1-$n.airpack" --quiet
    expect_rc 0
    cmp -s "big1-$n.airpack" big2.airpack || fail "hashing $n blocks ahead changed the bundle"
done
run "$AIRPACK" verify big1-150.airpack -k k.pub
expect_rc 0
# a file hashed ahead, then changed before it is written: refused
ahead_changed() { # $1: what to do to c.bin; $2: expected message
    stalled big/m.yaml "$1" "$2" AIRPACK_TEST_HASH_AHEAD=1000 AIRPACK_TEST_AHEAD_STALL="$T/stall"
}
C=big/data/c.bin
touch -d '2001-01-01 00:00:00' "$C"
ahead_changed "printf X | dd of=$C bs=1 seek=100 conv=notrunc 2>/dev/null" "changed since it was planned"
ahead_changed "printf Y | dd of=$C bs=1 seek=200 conv=notrunc 2>/dev/null; touch -d '2001-01-01 00:00:00' $C" \
    "changed since it was planned: size, mtime or ctime differ"
done_ok

