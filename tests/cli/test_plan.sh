#!/bin/sh
# airpack plan through the real binary on sparse fixture models with
# published shapes: the verdict, each term, headroom, the largest context
# and concurrency, in text and JSON; exit 0 when it fits, 1 when not (also
# for tensor_parallel beyond the GPUs and declared facts the files
# contradict), 2 for bad input; AIRPACK_GPU_CATALOG replaces the catalogue.
. "$AIRPACK_SRC/tests/cli/lib.sh"
G="$AIRPACK_GEN_DIR"
mkdir "$T/models"
"$G/mksafetensors" --preset llama-3.1-8b --shards 4 "$T/models/llama-3.1-8b" >/dev/null
"$G/mkgguf" --preset llama-3.1-8b --type Q4_K_M "$T/models/llama-3.1-8b-q4.gguf"

# manifest GPU COUNT CONCURRENCY TP [extra model lines...]
manifest() {
    cat > "$T/m.yaml" <<EOM
apiVersion: airpack/v1
kind: Deployment
metadata:
  name: plan-test
  version: 1.0.0
  sequence: 1
target:
  gpu:
    model: $1
    count: $2
  memory_utilization: 0.90
models:
  - name: llama
    path: models/llama-3.1-8b
    parameters: ${PARAMS:-8B}
    quantization: bf16
    serve:
      runtime: vllm
      context: ${CONTEXT:-8192}
      concurrency: $3
      tensor_parallel: $4
runtimes:
  - name: vllm
    kind: vllm
  - name: llama-server
    kind: llama.cpp
EOM
    if [ -n "${EXTRA:-}" ]; then
        # a second model on the same GPUs
        /usr/bin/python3 - "$T/m.yaml" <<'EOP'
import sys
p = sys.argv[1]
s = open(p).read()
extra = """  - name: small
    path: models/llama-3.1-8b-q4.gguf
    quantization: Q4_K_M
    serve:
      runtime: llama-server
      context: 8192
      concurrency: 4
      tensor_parallel: 1
"""
s = s.replace("runtimes:\n", extra + "runtimes:\n")
open(p, "w").write(s)
EOP
    fi
}

# fits: Llama-3.1-8B bf16 on one L40S, 8192 x 4
manifest nvidia-l40s 1 4 1
run "$AIRPACK" plan "$T/m.yaml"
expect_rc 0
expect_out "weights loaded"
expect_out "KV cache 8192 x 4 bf16"
expect_out "headroom"
expect_out "largest context at concurrency 4:"
expect_out "verdict: fits"

run "$AIRPACK" plan --format json "$T/m.yaml"
expect_rc 0
echo "$OUT" | /usr/bin/python3 -c '
import json, sys
p = json.load(sys.stdin)
assert p["fits"] is True
m = p["models"][0]
for k in ("name", "weights_bytes", "kv_bytes_per_token", "kv_budget_bytes", "fits", "max_context", "max_concurrency"):
    assert k in m, k
assert m["weights_bytes"] == 16060522496, m
assert m["kv_bytes_per_token"] == 131072, m
assert m["kv_bytes"] == 131072 * 8192 * 4, m
assert m["total_per_gpu_bytes"] == m["weights_per_gpu_bytes"] + m["kv_bytes"] + m["activation_bytes"] + m["overhead_bytes"]
assert m["max_context"] * 4 * 131072 <= m["kv_budget_bytes"] < (m["max_context"] + 1) * 4 * 131072, m
assert m["max_concurrency"] == m["kv_budget_bytes"] // (131072 * 8192), m
g = p["gpus"][0]
assert g["budget_bytes"] == round(44.39 * 0.9 * 2**30), g
assert g["headroom_bytes"] == g["budget_bytes"] - g["used_bytes"], g
assert p["gpu"]["model"] == "nvidia-l40s" and p["gpu"]["memory_source"] == "catalogue"
assert p["findings"] == [], p["findings"]
' || fail "plan json"

# does not fit: 64 sequences of 8192 tokens on one L4
manifest nvidia-l4 1 64 1
run "$AIRPACK" plan "$T/m.yaml"
expect_rc 1
expect_out "DOES NOT FIT"
expect_out "[AP-PLAN-FIT]"
run "$AIRPACK" plan --format json "$T/m.yaml"
expect_rc 1
echo "$OUT" | /usr/bin/python3 -c '
import json, sys
p = json.load(sys.stdin)
assert p["fits"] is False and p["models"][0]["fits"] is False
assert [f["rule"] for f in p["findings"]] == ["AP-PLAN-FIT"], p["findings"]
assert p["findings"][0]["level"] == "error" and p["findings"][0]["subject"] == "models[0]"
' || fail "plan json (no fit)"

# tensor parallel: 2 x L4 splits the weights; 4 > 2 GPUs is an error
manifest nvidia-l4 2 4 2
run "$AIRPACK" plan --format json "$T/m.yaml"
expect_rc 0
echo "$OUT" | /usr/bin/python3 -c '
import json, sys
p = json.load(sys.stdin)
m = p["models"][0]
assert m["weights_per_gpu_bytes"] == 16060522496 // 2 and m["kv_bytes_per_token"] == 65536, m
assert [g["models"] for g in p["gpus"]] == [["llama"], ["llama"]], p["gpus"]
' || fail "plan json (tp 2)"
manifest nvidia-l4 2 4 4
run "$AIRPACK" plan "$T/m.yaml"
expect_rc 1
expect_out "[AP-PLAN-TP]"

# two models on GPU 0 add up
EXTRA=1 manifest nvidia-h100-sxm 1 4 1
run "$AIRPACK" plan --format json "$T/m.yaml"
expect_rc 0
echo "$OUT" | /usr/bin/python3 -c '
import json, sys
p = json.load(sys.stdin)
a, b = p["models"]
assert b["runtime"] == "llama.cpp" and b["kv_cache_dtype"] == "f16", b
assert p["gpus"][0]["used_bytes"] == a["total_per_gpu_bytes"] + b["total_per_gpu_bytes"], p["gpus"]
assert a["other_models_bytes"] == b["total_per_gpu_bytes"]
' || fail "plan json (two models)"

# declared facts that disagree with the files; context beyond the maximum
PARAMS=13B CONTEXT=262144 manifest nvidia-h200 1 1 1
run "$AIRPACK" plan "$T/m.yaml"
expect_rc 1
expect_out "[AP-MODEL-PARAMS]"
expect_out "[AP-MODEL-CONTEXT]"

# bad input: unknown GPU (with a hint), malformed manifest
manifest nvidia-l40 1 4 1
run "$AIRPACK" plan "$T/m.yaml"
expect_rc 2
expect_err "unknown GPU 'nvidia-l40'"
expect_err "did you mean 'nvidia-l40s'"
printf 'apiVersion: [\n' > "$T/bad.yaml"
run "$AIRPACK" plan "$T/bad.yaml"
expect_rc 2
expect_err "bad.yaml"

# a malformed model file: exit 2 naming the model and the file
EXTRA=1 manifest nvidia-h100-sxm 1 4 1
head -c 2000 "$T/models/llama-3.1-8b-q4.gguf" > "$T/cut.gguf"
mv "$T/cut.gguf" "$T/models/llama-3.1-8b-q4.gguf"
run "$AIRPACK" plan "$T/m.yaml"
expect_rc 2
expect_err "model 'small'"
expect_err "llama-3.1-8b-q4.gguf"

# runtime memory models: the version selects the profile, the terms carry their sources,
# an unknown version uses the nearest profile and says so; YaRN in serve.rope_scaling
manifest nvidia-h100-sxm 1 16 1
sed -i 's/^    kind: vllm$/    kind: vllm\n    version: 0.25.1/' "$T/m.yaml"
run "$AIRPACK" plan "$T/m.yaml"
expect_rc 0
expect_out "memory model: vllm 0.17 (V1); vLLM 0.25.1 is newer than the newest profile"
expect_out "CUDA graphs (outside the budget)"
expect_out "AP-PLAN-PROFILE"
run "$AIRPACK" plan --format json "$T/m.yaml"
expect_rc 0
echo "$OUT" | /usr/bin/python3 -c '
import json, sys
p = json.load(sys.stdin)
m = p["models"][0]
assert m["verdict"] == "fits", m["verdict"]
assert m["profile"] == "vllm 0.17 (V1)", m["profile"]
assert "newer than the newest profile" in m["profile_note"]
assert m["checkpoint_bytes"] == 16060522496 and m["loaded_bytes_per_gpu"] == 16060522496
for t in ("weights", "kv_cache", "activation", "non_torch", "cuda_graphs"):
    assert m["terms"][t]["source"], t
assert m["terms"]["cuda_graphs"]["outside_budget"] is True
assert m["sampler_seqs"] == 1024, m["sampler_seqs"]   # the vLLM default on an H100, not serve.concurrency
assert m["context_limit"] == 131072
' || fail "runtime memory model in the JSON"
CONTEXT=262144 manifest nvidia-h100-sxm 4 1 4
run "$AIRPACK" plan "$T/m.yaml"
expect_rc 1
expect_out "AP-MODEL-CONTEXT"
sed -i 's/^      tensor_parallel: 4$/      tensor_parallel: 4\n      rope_scaling: { type: yarn, factor: 2 }/' "$T/m.yaml"
run "$AIRPACK" plan --format json "$T/m.yaml"
expect_rc 0
echo "$OUT" | /usr/bin/python3 -c '
import json, sys
p = json.load(sys.stdin)
assert p["models"][0]["context_limit"] == 262144, p["models"][0]["context_limit"]
assert not [f for f in p["findings"] if f["rule"] == "AP-MODEL-CONTEXT"], p["findings"]
' || fail "rope_scaling extends the context"

# the demo (llama.cpp on one L4): the largest concurrency and context are exact
# under the whole per-GPU total, the compute buffer growing with context x slots;
# the same answers whether the planned point fits or not
mkdir "$T/pc"
"$AIRPACK_GEN_DIR/mkdemo" "$T/pc/demo" >/dev/null
# democonc CONCURRENCY [CONTEXT]: $T/pc/c.yaml
democonc() {
    sed -e "s/concurrency: 4\$/concurrency: $1/" -e "s/context: 2048\$/context: ${2:-2048}/" \
        "$AIRPACK_SRC/tests/policy/compliant.yaml" > "$T/pc/c.yaml"
}
# headroom CONCURRENCY CONTEXT: the GPU's headroom in bytes
headroom() {
    democonc "$1" "$2"
    "$AIRPACK" plan --format json "$T/pc/c.yaml" | /usr/bin/python3 -c '
import json, sys
print(json.load(sys.stdin)["gpus"][0]["headroom_bytes"])'
}
democonc 900
run "$AIRPACK" plan "$T/pc/c.yaml"
expect_rc 0
expect_out "largest concurrency at context 2048: "
run "$AIRPACK" plan --format json "$T/pc/c.yaml"
expect_rc 0
MQ=$(echo "$OUT" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["models"][0]["max_concurrency"])')
# 900 fits, 1000 does not: the answer lies between
[ "$MQ" -ge 900 ] && [ "$MQ" -lt 1000 ] || fail "demo: largest concurrency $MQ not in [900, 1000)"
[ "$(headroom "$MQ" 2048)" -ge 0 ] || fail "demo: concurrency $MQ does not fit"
[ "$(headroom $((MQ + 1)) 2048)" -lt 0 ] || fail "demo: concurrency $((MQ + 1)) fits"
CHECKS=$((CHECKS + 1))
democonc 1000
run "$AIRPACK" plan "$T/pc/c.yaml"
expect_rc 1
run "$AIRPACK" plan --format json "$T/pc/c.yaml"
expect_rc 1
MC=$(echo "$OUT" | /usr/bin/python3 -c '
import json, sys
m = json.load(sys.stdin)["models"][0]
assert m["max_concurrency"] == '"$MQ"', m["max_concurrency"]
assert 0 < m["max_context"] < 2048, m["max_context"]
print(m["max_context"])') || fail "demo at concurrency 1000: $OUT"
[ "$(headroom 1000 "$MC")" -ge 0 ] || fail "demo: context $MC at 1000 does not fit"
[ "$(headroom 1000 $((MC + 1)))" -lt 0 ] || fail "demo: context $((MC + 1)) at 1000 fits"
CHECKS=$((CHECKS + 1))

# a catalogue of one's own
manifest lab-gpu 1 4 1
printf 'gpus:\n  - name: lab-gpu\n    memory_gb: 200\n    usable_gib: 190\n' > "$T/gpus.yaml"
AIRPACK_GPU_CATALOG="$T/gpus.yaml"
export AIRPACK_GPU_CATALOG
run "$AIRPACK" plan --format json "$T/m.yaml"
expect_rc 0
echo "$OUT" | /usr/bin/python3 -c '
import json, sys
p = json.load(sys.stdin)
assert p["gpu"]["memory_gib"] == 190, p["gpu"]
' || fail "catalogue override"
unset AIRPACK_GPU_CATALOG

done_ok
