#!/bin/sh
# mkseeds.sh - regenerate the committed seed corpora in tests/fuzz/seeds/
# from the fixture generators (docs/fuzzing.md has the recipe).
#
# usage: sh tests/fuzz/mkseeds.sh GEN_DIR FUZZ_BUILD
#   GEN_DIR     folder of the tests/gen executables (a test build: BUILD/tests)
#   FUZZ_BUILD  the fuzz build folder (holds tests/fuzz/mkfuzzseeds)
# Seeds stay small (a few KiB): model files are cut to their headers
# (fuzz_gguf pads its input with a sparse hole, see targets.c), bundles use
# 512-byte tar blocks and tiny payloads.
set -eu
GEN=$1
FB=$2
SRC=$(cd "$(dirname "$0")/../.." && pwd)
S=$SRC/tests/fuzz/seeds
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM

for d in manifest policy waivers gguf safetensors stindex hfconfig sums gpus minisign lock bundle parts preflight ollama oci trust launch registry; do
    rm -rf "${S:?}/$d"
    mkdir -p "$S/$d"
done

# manifest: the example manifests and the policy test manifest
for f in "$SRC"/manifests/*.yaml; do cp "$f" "$S/manifest/ok-$(basename "$f")"; done
cp "$SRC/tests/policy/compliant.yaml" "$S/manifest/ok-compliant.yaml"

# policy: the shipped packs
for f in "$SRC"/policies/*.yaml; do cp "$f" "$S/policy/ok-$(basename "$f")"; done

# waivers
cat >"$S/waivers/ok-waivers.yaml" <<'W'
apiVersion: airpack/v1
kind: Waivers
waivers:
  - rule: EU-MODEL-JURISDICTION
    subject: models[0]
    justification: reviewed by legal, ticket LEG-42
    approver: dpo@example.eu
    expires: 2027-03-31
  - rule: AP-PLAN-FIT
    subject: qwen
    justification: capacity accepted
    approver: ops@example.eu
    expires: 2024-02-29
W

# gguf: mkgguf presets, cut after the header (the data section is zeros)
cut_zeros() { "$PY" -c 'import sys; d=open(sys.argv[1],"rb").read(1<<20).rstrip(b"\0"); open(sys.argv[2],"wb").write(d)' "$1" "$2"; }
n=0
for args in "--preset tiny --type F32" "--preset tiny --type Q4_K_M --version 2" \
            "--preset tiny --type BF16 --kv-array --rope-freqs --int-type u16" \
            "--preset tiny --type Q8_0 --alignment 64 --int-type u64 --license MIT" \
            "--preset tiny --type Q4_0 --int-type i32 --context 4096" "--preset tiny --type F16 --version 2 --int-type u32"; do
    n=$((n + 1))
    # shellcheck disable=SC2086
    "$GEN/mkgguf" $args "$T/m$n.gguf" >/dev/null
    cut_zeros "$T/m$n.gguf" "$S/gguf/ok-header-$n.gguf"
done

# safetensors: small real files (a few tensors, real data) written here,
# plus the tiny preset's header from mksafetensors
"$PY" - "$S/safetensors" <<'P'
import json, struct, sys
out = sys.argv[1]
def write(name, tensors, meta=None, extra=b""):
    hdr, data = {}, b""
    if meta is not None:
        hdr["__metadata__"] = meta
    for tname, dtype, shape, size in tensors:
        hdr[tname] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + size]}
        data += bytes((i * 7) & 0xff for i in range(size))
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    open(out + "/" + name, "wb").write(struct.pack("<Q", len(h)) + h + data + extra)
write("ok-small.safetensors", [("model.embed_tokens.weight", "BF16", [4, 2], 16),
      ("model.layers.0.self_attn.q_proj.weight", "F16", [2, 2], 8),
      ("model.layers.0.mlp.down_proj.weight", "F32", [2, 1], 8),
      ("model.norm.weight", "F8_E4M3", [3], 3),
      ("lm_head.weight", "I64", [1], 8)], {"format": "pt"})
write("ok-empty.safetensors", [], {})
write("ok-scalar.safetensors", [("s", "F32", [], 4), ("z", "BF16", [0, 3], 0),
      ("rotary_emb.inv_freq", "F32", [2], 8), ("u", "U8", [2, 2], 4), ("b", "BOOL", [1], 1)])
P
"$GEN/mksafetensors" --preset tiny "$T/st" >/dev/null
"$PY" -c 'import struct,sys; d=open(sys.argv[1],"rb").read(1<<20); n=struct.unpack("<Q",d[:8])[0]; open(sys.argv[2],"wb").write(d[:8+n])' \
    "$T/st/model.safetensors" "$S/safetensors/header-tiny.safetensors"

# stindex: indexes over the two shards fuzz_stindex writes (targets.c)
cat >"$S/stindex/ok-index.json" <<'J'
{"metadata": {"total_size": 18},
 "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
                "c": "model-00002-of-00002.safetensors"}}
J
printf '{"weight_map": {"a": "model-00001-of-00002.safetensors", "x": "model-00002-of-00002.safetensors"}}\n' \
    >"$S/stindex/missing-tensor.json"
"$GEN/mksafetensors" --preset tiny --shards 2 "$T/sh" >/dev/null
cp "$T/sh/model.safetensors.index.json" "$S/stindex/preset-tiny.json"

# sums: the demo's pin files (coreutils sha256sum format)
"$GEN/mkdemo" "$T/demo" >/dev/null
find "$T/demo" -name '*.sha256' | sort | head -4 | while read -r f; do
    cp "$f" "$S/sums/ok-$(basename "$f")"
done
printf '%s *bin/run.sh\n%s  ./a b\n' "$(printf '%064d' 0)" "$(printf 'f%063d' 1)" >"$S/sums/ok-binary-mode.sha256"

# gpus: the built-in catalogue
cp "$SRC/data/gpus.yaml" "$S/gpus/ok-gpus.yaml"

# hfconfig: config.json of every preset
for p in tiny llama-3.1-8b qwen2.5-7b mixtral-8x7b mistral-7b-v0.1; do
    "$GEN/mksafetensors" --preset "$p" --config-only "$T/c-$p" >/dev/null
    cp "$T/c-$p/config.json" "$S/hfconfig/ok-$p.json"
done
# rope_scaling (YaRN) and MTP layers, as Qwen2.5 and DeepSeek-V3 write them
printf '%s\n' '{"model_type":"qwen2","num_hidden_layers":28,"hidden_size":3584,"num_attention_heads":28,' \
    '"num_key_value_heads":4,"max_position_embeddings":32768,"num_nextn_predict_layers":1,' \
    '"rope_scaling":{"type":"yarn","factor":4.0,"original_max_position_embeddings":32768}}' >"$S/hfconfig/ok-yarn.json"

# minisign: the fuzz key pair, a signature and an encrypted key
cp "$SRC/tests/fuzz/fuzz-test.pub" "$S/minisign/ok-fuzz-test.pub"
cp "$SRC/tests/fuzz/fuzz-test.key" "$S/minisign/ok-fuzz-test.key"
"$FB/tests/fuzz/mkfuzzseeds" "$SRC/tests/fuzz/fuzz-test.key" "$S/bundle"
tar -xOf "$S/bundle/ok-good.tar" airpack.lock.json.minisig >"$S/minisign/ok-lock.minisig"
tar -xOf "$S/bundle/ok-good.tar" airpack.lock.json >"$S/lock/ok-fuzz.lock.json"
tar -xOf "$S/bundle/traversal-lock.tar" airpack.lock.json >"$S/lock/traversal.lock.json"

# registry: the index, bundle manifest and ModelPack manifest airpack export writes
"$GEN/../airpack" export "$S/bundle/ok-good.tar" --oci-layout "$T/registry" -q >/dev/null
$PY - "$T/registry" "$S/registry" <<'OCI'
import json, os, sys
src, out = sys.argv[1], sys.argv[2]
blob = lambda d: open(os.path.join(src, "blobs", "sha256", d[7:]), "rb").read()
top = json.load(open(os.path.join(src, "index.json")))["manifests"][0]["digest"]
idx = blob(top)
open(os.path.join(out, "ok-index.json"), "wb").write(idx)
for m in json.loads(idx)["manifests"]:
    kind = m["annotations"]["org.airpack.kind"]
    open(os.path.join(out, "ok-%s-manifest.json" % kind), "wb").write(blob(m["digest"]))
OCI
printf 'untrusted comment: minisign encrypted secret key\nRWRTY0IyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n' \
    >"$S/minisign/encrypted.key"
# parts: a parts index of three parts, and broken variants
H=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
parts_index() { # $1: size of part 2, $3: file name of part 3, $2: total
    printf '{\n  "format": "airpack-parts/1",\n  "bundle": "b.airpack",\n  "name": "demo",\n  "version": "1.0.0",\n  "sequence": 3,\n  "lock_sha256": "%s",\n  "volume_size": 1024,\n  "size": %s,\n  "parts": [\n    {"file": "b.airpack.001", "size": 1024, "sha256": "%s"},\n    {"file": "b.airpack.002", "size": %s, "sha256": "%s"},\n    {"file": "%s", "size": 10, "sha256": "%s"}\n  ]\n}\n' \
        "$H" "$2" "$H" "$1" "$H" "$3" "$H"
}
parts_index 1024 2058 b.airpack.003 >"$S/parts/ok-three.parts"
parts_index 1000 2034 b.airpack.003 >"$S/parts/short-middle.parts"
parts_index 1024 2058 ../b.airpack.003 >"$S/parts/traversal.parts"
parts_index 1024 9999 b.airpack.003 >"$S/parts/bad-total.parts"
# preflight: the locks of demo bundles (1 x L4; 2 x L40S with tensor
# parallel 2 and target.requires), cut to metadata, manifest and plan
mkdir -p "$T/pf"
cp "$SRC/manifests/demo.yaml" "$T/pf/demo.yaml"
"$GEN/mkdemo" "$T/pf/demo" >/dev/null
sed -e 's/model: nvidia-l4$/model: nvidia-l40s/' -e 's/count: 1$/count: 2/' -e 's/tensor_parallel: 1/tensor_parallel: 2/' \
    -e 's/^  memory_utilization: 0.90/  memory_utilization: 0.90\n  requires: { driver: "550", cuda: "12.2", compute_capability: "8.9" }/' \
    "$T/pf/demo.yaml" >"$T/pf/tp2.yaml"
"$FB/airpack" keygen --public-key "$T/pf/k.pub" --secret-key "$T/pf/k.key" --no-password --quiet
for m in demo tp2; do
    "$FB/airpack" build "$T/pf/$m.yaml" --secret-key "$T/pf/k.key" --output "$T/pf/$m.tar" >/dev/null
    tar -xOf "$T/pf/$m.tar" airpack.lock.json | $PY -c '
import json, sys
d = json.load(sys.stdin)
a = d["analysis"]
print(json.dumps({"metadata": d["metadata"], "analysis": {"manifest": a["manifest"], "plan": a["plan"]}}))' \
        >"$S/preflight/ok-$m.lock.json"
    # launch: the whole signed lock, with its launch specs
    tar -xOf "$T/pf/$m.tar" airpack.lock.json >"$S/launch/ok-$m.lock.json"
done

# ollama: a store's manifest as mksources writes it, and broken variants
"$GEN/mkgguf" --preset tiny "$T/o.gguf" >/dev/null
printf 'MIT License\n' >"$T/lic.txt"
"$GEN/mksources" ollama "$T/ollama" tiny:1b "$T/o.gguf" "$T/lic.txt" >/dev/null
cp "$T/ollama/manifests/registry.ollama.ai/library/tiny/1b" "$S/ollama/ok-tiny.json"
sed 's/sha256:/sha256:../' "$S/ollama/ok-tiny.json" >"$S/ollama/bad-digest.json"
sed 's/"size":[0-9]*/"size":-1/' "$S/ollama/ok-tiny.json" >"$S/ollama/bad-size.json"
printf '{"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:%s","size":1},{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:%s","size":2}]}' \
    "$(printf '%064d' 0)" "$(printf '%064d' 1)" >"$S/ollama/two-models.json"
# oci: the index, manifest and docker manifest.json of mksources' images
"$GEN/mksources" image oci-layout "$T/lay" >/dev/null
cp "$T/lay/index.json" "$S/oci/ok-index.json"
for b in "$T"/lay/blobs/sha256/*; do
    grep -q '"layers"' "$b" 2>/dev/null && cp "$b" "$S/oci/ok-manifest.json"
done
"$GEN/mksources" image docker-archive "$T/d.tar" >/dev/null
tar -xOf "$T/d.tar" manifest.json >"$S/oci/ok-docker-manifest.json"
sed 's/sha256:/sha512:/' "$S/oci/ok-index.json" >"$S/oci/bad-digest-alg.json"
printf '[{"Config":"../etc/passwd","Layers":[]}]' >"$S/oci/traversal-docker.json"
# trust: a trust file made and signed with the fuzz key, an unsigned draft,
# a broken variant (docs/trust.md)
AP=$GEN/../airpack
"$AP" trust init "$T/t.json" --expires 2099-01-01 --bundles-threshold 1 --root-threshold 1 >/dev/null
cp "$T/t.json" "$S/trust/ok-draft.json"
"$AP" trust add-key "$T/t.json" --public-key "$SRC/tests/fuzz/fuzz-test.pub" --name fuzz-key \
    --role bundles --role root >/dev/null
"$AP" trust revoke "$T/t.json" 0123456789ABCDEF >/dev/null
"$AP" trust sign "$T/t.json" --secret-key "$SRC/tests/fuzz/fuzz-test.key" >/dev/null
cp "$T/t.json" "$S/trust/ok-signed.json"
sed 's/"threshold": 1/"threshold": 0/' "$T/t.json" >"$S/trust/bad-threshold.json"
ls -l "$S"/*/ | awk '$5 > 16384 { print "mkseeds: large seed: " $0; bad = 1 } END { exit bad }'
