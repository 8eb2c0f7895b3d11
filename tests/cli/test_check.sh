#!/bin/sh
# airpack check and airpack pin through the real binary: the demo passes,
# manifest errors give file:line:column and exit 2, changed pinned content
# exits 1 naming the file, pin writes pins that check then verifies.
. "$AIRPACK_SRC/tests/cli/lib.sh"
make_demo
M="$T/demo/demo.yaml"

run "$AIRPACK" check "$M"
expect_rc 0
expect_out "passed"

run "$AIRPACK" check --format json "$M"
expect_rc 0
printf "%s\n" "$OUT" | /usr/bin/python3 -c '
import json, sys
a = json.load(sys.stdin)
assert a["summary"]["passed"] is True, a["summary"]
assert a["manifest"]["metadata"]["name"] == "demo-assistant"
assert [p["status"] for p in a["pins"]] == ["ok", "ok", "ok"], a["pins"]
' || fail "check --format json: unexpected document"

# A typo in a key: exit 2, file, line, column and the right key.
sed 's/^    license: Apache-2.0/    licence: Apache-2.0/' "$M" > "$T/demo/typo.yaml"
run "$AIRPACK" check "$T/demo/typo.yaml"
expect_rc 2
expect_err "typo.yaml': line 24, column 5: unknown key 'licence'"
expect_err "did you mean 'license'"

# Malformed YAML: exit 2 with a position.
printf 'apiVersion: airpack/v1\nkind: [unclosed\n' > "$T/demo/broken.yaml"
run "$AIRPACK" check "$T/demo/broken.yaml"
expect_rc 2
expect_err "broken.yaml': line"

# Missing manifest: exit 2 naming it.
run "$AIRPACK" check "$T/demo/nope.yaml"
expect_rc 2
expect_err "nope.yaml"

# A pinned file whose content changed: exit 1, the file is named.
cp "$T/demo/demo/models/tiny-chat.gguf" "$T/gguf.bak"
# (a byte of tensor data, then a byte of the header: the pin is checked
# before the file is parsed, so both exit 1)
for off in 400000 100; do
    cp "$T/gguf.bak" "$T/demo/demo/models/tiny-chat.gguf"
    printf 'X' | dd of="$T/demo/demo/models/tiny-chat.gguf" bs=1 seek=$off conv=notrunc 2>/dev/null
    run "$AIRPACK" check "$M"
    expect_rc 1
    expect_out "AP-PIN-MISMATCH"
    expect_out "demo/models/tiny-chat.gguf"
done
cp "$T/gguf.bak" "$T/demo/demo/models/tiny-chat.gguf"

# A malformed model file (pins aside) is invalid input: exit 2, file named.
mkdir -p "$T/bad/m"
printf 'GGUF\003\000\000\000\377\377\377\377\377\377\377\377' > "$T/bad/m/x.gguf"
cat > "$T/bad/bad.yaml" <<'YAML'
apiVersion: airpack/v1
kind: Deployment
metadata: { name: p, version: "1", sequence: 0 }
target: { gpu: { memory_gib: 24, count: 1 } }
models:
  - { name: m, path: m/x.gguf }
YAML
run "$AIRPACK" check "$T/bad/bad.yaml"
expect_rc 2
expect_err "x.gguf"

# A file added to a pinned folder, and a pinned file removed: exit 1.
echo extra > "$T/demo/demo/config/extra.conf"
run "$AIRPACK" check "$M"
expect_rc 1
expect_out "AP-PIN-UNLISTED"
expect_out "extra.conf"
rm "$T/demo/demo/config/extra.conf"
mv "$T/demo/demo/config/prompt.txt" "$T/prompt.txt"
run "$AIRPACK" check "$M"
expect_rc 1
expect_out "AP-PIN-MISSING"
expect_out "prompt.txt"
mv "$T/prompt.txt" "$T/demo/demo/config/prompt.txt"

# A symlink inside a pinned folder is refused (exit 2).
ln -s /etc/passwd "$T/demo/demo/config/link"
run "$AIRPACK" check "$M"
expect_rc 2
expect_err "symbolic link"
rm "$T/demo/demo/config/link"

# JSON output of a failure carries the location.
printf 'Y' | dd of="$T/demo/demo/runtimes/llama.cpp/LICENSE" bs=1 seek=0 conv=notrunc 2>/dev/null
run "$AIRPACK" check --format json "$M"
expect_rc 1
printf "%s\n" "$OUT" | /usr/bin/python3 -c '
import json, sys
a = json.load(sys.stdin)
f = [f for f in a["findings"] if f["rule"] == "AP-PIN-MISMATCH"]
assert len(f) == 1, f
assert f[0]["location"]["line"] == 37, f[0]["location"]
assert "LICENSE" in f[0]["message"]
assert a["summary"]["passed"] is False
' || fail "check --format json: mismatch not reported as expected"

# --output writes the file atomically.
run "$AIRPACK" check --format json --output "$T/out.json" "$M"
expect_rc 1
[ -s "$T/out.json" ] || fail "--output did not write the file"
ls "$T" | grep -q 'out.json.tmp' && fail "temporary output left behind"

# airpack pin: strip the pins, write them anew, add the lines, check passes.
mkdir -p "$T/p/m"
cp "$T/demo/demo/models/tiny-chat.gguf" "$T/p/m/model.gguf"
echo two > "$T/p/m/b.txt"
cat > "$T/p/p.yaml" <<'YAML'
apiVersion: airpack/v1
kind: Deployment
metadata: { name: p, version: "1", sequence: 0 }
target: { gpu: { memory_gib: 24, count: 1 } }
models:
  - name: m
    path: m/
YAML
run "$AIRPACK" check --format json "$T/p/p.yaml"
expect_rc 0
expect_out '"unpinned"'
run "$AIRPACK" pin "$T/p/p.yaml"
expect_rc 0
expect_out "sha256sums: m.sha256"
[ -f "$T/p/m.sha256" ] || fail "pin did not write m.sha256"
(cd "$T/p/m" && sha256sum -c --quiet ../m.sha256) || fail "sha256sum -c rejects the pin file"
run "$AIRPACK" pin "$T/p/p.yaml"
expect_rc 2
expect_err "exists already"
printf '    sha256sums: m.sha256\n' >> "$T/p/p.yaml"
run "$AIRPACK" check "$T/p/p.yaml"
expect_rc 0
echo changed > "$T/p/m/b.txt"
run "$AIRPACK" check "$T/p/p.yaml"
expect_rc 1
expect_out "b.txt"

# Paths outside the manifest's folder: refused, unless allowed.
cat > "$T/p/out.yaml" <<YAML
apiVersion: airpack/v1
kind: Deployment
metadata: { name: p, version: "1", sequence: 0 }
target: { gpu: { memory_gib: 24, count: 1 } }
models:
  - name: m
    path: $T/p/m/model.gguf
YAML
run "$AIRPACK" check "$T/p/out.yaml"
expect_rc 2
expect_err "line 7, column 11: absolute path"
run "$AIRPACK" check --allow-outside-paths "$T/p/out.yaml"
expect_rc 0

done_ok
