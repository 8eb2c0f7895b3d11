#!/bin/sh
# test_build_large.sh - `airpack build` with an input above 4 GiB and 8 GiB
# (a sparse file of 8 GiB + 8 bytes): ustar cannot hold the size, so the
# entry needs a pax size record; GNU tar must find the entry after it.
# The bundle is zstd-compressed so that the test writes kilobytes, not
# 8 GiB; hashing 8 GiB twice still takes several seconds of CPU.
# AIRPACK_TEST_SKIP_LARGE=1 skips it (prints SKIP).
set -eu
if [ "${AIRPACK_TEST_SKIP_LARGE:-0}" = 1 ]; then
    echo "SKIP: AIRPACK_TEST_SKIP_LARGE=1"
    exit 0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$T"

minisign -G -W -p k.pub -s k.key >/dev/null 2>&1 || fail "minisign -G"
"$AIRPACK_GEN_DIR/mkgguf" --preset tiny tiny.gguf >/dev/null
truncate -s 8G big.bin || fail "cannot make a sparse file"
printf 'end of b' >>big.bin                      # 8 GiB + 8 bytes, mostly a hole
echo after >z-after.txt
cat >m.yaml <<'YAML'
apiVersion: airpack/v1
kind: Deployment
metadata: { name: large, version: "1", sequence: 1 }
target: { gpu: { model: nvidia-l4, count: 1 } }
models:
  - name: tiny
    path: tiny.gguf
files:
  - { path: big.bin }
  - { path: z-after.txt }
YAML
"$AIRPACK" build m.yaml --secret-key k.key --output l.tar.zst --compress zstd:1 --quiet \
    || fail "build with a file above 8 GiB"

# The entry's header: a pax size record (8 GiB does not fit ustar's 11 octal
# digits); the lock records the exact size.
zstd -dc l.tar.zst 2>/dev/null | head -c 1048576 >head.tar || true
/usr/bin/python3 - head.tar <<'PY' || fail "pax size record or lock size of big.bin"
import io, json, sys, tarfile
data = open(sys.argv[1], "rb").read()
t = tarfile.open(fileobj=io.BytesIO(data), mode="r:")
for m in t:
    if m.name == "airpack.lock.json":
        lock = json.load(t.extractfile(m))
        sizes = {a["path"]: a["size"] for a in lock["artifacts"]}
        assert sizes["payload/files/big.bin"] == 8 * 2**30 + 8, sizes
    if m.name == "payload/files/big.bin":
        assert m.size == 8 * 2**30 + 8, m.size
        assert m.pax_headers == {"size": str(8 * 2**30 + 8)}, m.pax_headers
        break
else:
    raise SystemExit("payload/files/big.bin not found")
PY
# GNU tar walks past the 8 GiB entry and finds the next one where it belongs.
zstd -dc l.tar.zst | tar -tvf - >list || fail "GNU tar cannot list the bundle"
grep -q " 8589934600 .*payload/files/big.bin$" list || fail "GNU tar size of big.bin: $(cat list)"
grep -q " 6 .*payload/files/z-after.txt$" list || fail "entry after big.bin: $(cat list)"
echo "ok"
