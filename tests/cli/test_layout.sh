#!/bin/sh
# Model layouts (docs/install.md "Model layouts", src/site/layout.c): a GGUF
# served by Ollama is registered in Ollama's store (manifest JSON, blob
# names and digests, media types as Ollama's server reads them), a model
# with hf_cache gets the Hugging Face hub cache layout; the model bytes are
# hard links of the installed file (one inode); audit knows the layouts and
# reports a changed one.
. "$AIRPACK_SRC/tests/cli/lib.sh"
G="$AIRPACK_GEN_DIR"
P="$T/prefix"
D="$T/dep"
mkdir -p "$D/models"
"$G/mkgguf" --preset tiny --type F32 "$D/models/tiny-chat.gguf" >/dev/null
"$G/mksafetensors" --preset tiny --dtype BF16 --shards 2 "$D/models/tiny-st" >/dev/null
cat >"$D/dep.yaml" <<'EOF'
apiVersion: airpack/v1
kind: Deployment
metadata: { name: layouts, version: 1.0.0, sequence: 1 }
target:
  gpu: { model: nvidia-l4, count: 1 }
models:
  - name: tiny-chat
    path: models/tiny-chat.gguf
    license: Apache-2.0
    serve: { runtime: ollama, context: 2048, concurrency: 2 }
  - name: tiny-st
    path: models/tiny-st/
    license: MIT
    hf_cache: example-org/tiny-st
runtimes:
  - name: ollama
    kind: ollama
    program: /usr/bin/ollama
    license: MIT
    env: { OLLAMA_NO_CLOUD: "1" }
    listen: 127.0.0.1:11434
EOF
run "$AIRPACK" pin "$D/dep.yaml"
expect_rc 0
sed -i -e 's|^    path: models/tiny-chat.gguf$|&\n    sha256sums: models/tiny-chat.gguf.sha256|' \
    -e 's|^    path: models/tiny-st/$|&\n    sha256sums: models/tiny-st.sha256|' "$D/dep.yaml"
"$AIRPACK" keygen --public-key "$T/k.pub" --secret-key "$T/k.key" --no-password >/dev/null
run "$AIRPACK" build "$D/dep.yaml" --secret-key "$T/k.key" --output "$T/b.airpack"
expect_rc 0
run "$AIRPACK" install "$T/b.airpack" --public-key "$T/k.pub" --prefix "$P"
expect_rc 0
R="$P/current/layouts"
O="$R/ollama"

# ---- Ollama's store
/usr/bin/python3 - "$R" <<'PY' || fail "Ollama store layout"
import hashlib, json, os, sys
r = sys.argv[1]
o = os.path.join(r, "ollama")
mpath = os.path.join(o, "manifests", "registry.ollama.ai", "library", "tiny-chat", "latest")
m = json.load(open(mpath))
assert m["schemaVersion"] == 2, m
assert m["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json", m
assert m["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json", m
types = [l["mediaType"] for l in m["layers"]]
assert types == ["application/vnd.ollama.image.model", "application/vnd.ollama.image.template",
                 "application/vnd.ollama.image.params", "application/vnd.ollama.image.license"], types
def blob(d):
    assert d.startswith("sha256:") and len(d) == 71, d
    return os.path.join(o, "blobs", "sha256-" + d[7:])
for l in [m["config"]] + m["layers"]:
    b = blob(l["digest"])
    data = open(b, "rb").read()
    assert hashlib.sha256(data).hexdigest() == l["digest"][7:], b
    assert len(data) == l["size"], (b, len(data), l["size"])
cfg = json.load(open(blob(m["config"]["digest"])))
assert cfg["model_format"] == "gguf" and cfg["model_family"] == "llama", cfg
assert cfg["model_families"] == ["llama"] and cfg["os"] == "linux" and cfg["architecture"] == "amd64", cfg
assert cfg["rootfs"] == {"type": "layers", "diff_ids": [l["digest"] for l in m["layers"]]}, cfg
assert json.load(open(blob(m["layers"][2]["digest"]))) == {"num_ctx": 2048}
assert open(blob(m["layers"][3]["digest"])).read() == "Apache-2.0"
# the model blob is the installed GGUF: same inode, the bytes exist once
g = os.stat(os.path.join(r, "payload", "models", "tiny-chat", "tiny-chat.gguf"))
b = os.stat(blob(m["layers"][0]["digest"]))
assert (g.st_dev, g.st_ino) == (b.st_dev, b.st_ino), "GGUF blob is not a hard link"
# nothing else in the store
names = sorted(os.listdir(os.path.join(o, "blobs")))
assert len(names) == 5 and all(n.startswith("sha256-") and len(n) == 71 for n in names), names
PY
run "$AIRPACK" units --prefix "$P" --format json
printf '%s\n' "$OUT" | /usr/bin/python3 -c '
import json, os, sys
u = json.load(sys.stdin)["units"][0]
assert os.path.isdir(os.path.join(u["env"]["OLLAMA_MODELS"], "manifests")), u["env"]
assert u["argv"] == ["/usr/bin/ollama", "serve"], u["argv"]
' || fail "OLLAMA_MODELS is not the store"

# ---- the Hugging Face hub cache
/usr/bin/python3 - "$R" <<'PY' || fail "hub cache layout"
import hashlib, os, sys
r = sys.argv[1]
h = os.path.join(r, "hf-cache", "models--example-org--tiny-st")
rev = open(os.path.join(h, "refs", "main")).read()
assert len(rev) == 40 and all(c in "0123456789abcdef" for c in rev), rev
src = os.path.join(r, "payload", "models", "tiny-st")
files = sorted(os.listdir(src))
snap = os.path.join(h, "snapshots", rev)
assert sorted(os.listdir(snap)) == files, (os.listdir(snap), files)
for f in files:
    a = os.stat(os.path.join(src, f))
    s = os.stat(os.path.join(snap, f))
    digest = hashlib.sha256(open(os.path.join(src, f), "rb").read()).hexdigest()
    b = os.stat(os.path.join(h, "blobs", digest))
    assert (a.st_ino, a.st_dev) == (s.st_ino, s.st_dev) == (b.st_ino, b.st_dev), f
PY

# ---- audit: the layouts are not drift; a copy instead of the link is
run "$AIRPACK" audit --installed "$P" --public-key "$T/k.pub"
expect_rc 0
expect_out "0 modified, 0 missing, 0 unexpected"
GG=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layers"][0]["digest"][7:])' \
    "$O/manifests/registry.ollama.ai/library/tiny-chat/latest")
cp "$O/blobs/sha256-$GG" "$T/copy" && rm "$O/blobs/sha256-$GG" && cp "$T/copy" "$O/blobs/sha256-$GG"
run "$AIRPACK" audit --installed "$P" --public-key "$T/k.pub"
expect_rc 1
expect_out "ollama/blobs/sha256-$GG (not a hard link of 'payload/models/tiny-chat/tiny-chat.gguf')"
echo '{}' >"$O/manifests/registry.ollama.ai/library/tiny-chat/latest"
run "$AIRPACK" audit --installed "$P" --public-key "$T/k.pub"
expect_rc 1
expect_out "ollama/manifests/registry.ollama.ai/library/tiny-chat/latest (differs from what airpack generates from the signed lock)"
done_ok
