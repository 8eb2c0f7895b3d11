#!/bin/sh
# The example manifests in manifests/ against generated stand-ins of the
# real models (same tensor shapes and types, sparse data): their memory
# plans fit, with the published weight sizes, and check reports only that
# they are not pinned yet.
. "$AIRPACK_SRC/tests/cli/lib.sh"
G="$AIRPACK_GEN_DIR"
E="$T/examples"
mkdir -p "$E/models" "$E/runtimes/vllm-wheels/bin" "$E/runtimes/llama.cpp" "$E/config"
cp "$AIRPACK_SRC/manifests/vllm-l40s.yaml" "$AIRPACK_SRC/manifests/llamacpp-l4.yaml" "$T/"
"$G/mksafetensors" --preset llama-3.1-8b --dtype BF16 --shards 4 "$E/models/llama-3.1-8b-instruct" >/dev/null
"$G/mkgguf" --preset mistral-7b-v0.1 --type Q4_K_M "$E/models/mistral-7b-instruct-v0.1.Q4_K_M.gguf" >/dev/null
echo wheel > "$E/runtimes/vllm-wheels/vllm-0.6.6-cp38-abi3-manylinux1_x86_64.whl"
printf '#!/bin/sh\n' > "$E/runtimes/vllm-wheels/bin/vllm"
echo server > "$E/runtimes/llama.cpp/llama-server"
echo "max_model_len=8192" > "$E/config/serving.conf"

run "$AIRPACK" plan --format json "$T/vllm-l40s.yaml"
expect_rc 0
printf '%s\n' "$OUT" | /usr/bin/python3 -c '
import json, sys
p = json.load(sys.stdin)
assert p["fits"] is True
m = p["models"][0]
# Llama-3.1-8B: 8,030,261,248 parameters in bf16, split over 2 GPUs
assert m["weights_bytes"] == 2 * 8030261248, m["weights_bytes"]
# bf16 KV: 2 x 32 layers x 8 heads x 128 x 2 bytes = 131072 per token,
# 4 KV heads per GPU with tensor_parallel 2
assert m["kv_bytes_per_token"] == 65536, m["kv_bytes_per_token"]
assert m["max_context"] >= 8192 and m["max_concurrency"] >= 16
assert len(p["gpus"]) == 2
' || fail "vllm-l40s plan is not as published"

run "$AIRPACK" plan "$T/llamacpp-l4.yaml"
expect_rc 0
expect_out "verdict: fits"

run "$AIRPACK" model --format json "$E/models/llama-3.1-8b-instruct"
expect_rc 0
expect_out '"parameters": 8030261248'

# Not pinned yet: the baseline pack says so (exit 1), nothing else fails.
run "$AIRPACK" check --format json "$T/vllm-l40s.yaml"
expect_rc 1
printf '%s\n' "$OUT" | /usr/bin/python3 -c '
import json, sys
a = json.load(sys.stdin)
errs = sorted({f["rule"] for f in a["findings"] if f["level"] == "error" and not f.get("waived")})
assert errs == ["BASE-PIN-MODEL", "BASE-PIN-RUNTIME"], errs
' || fail "vllm-l40s: unexpected findings"

run "$AIRPACK" check "$T/llamacpp-l4.yaml"
expect_rc 1
expect_out "BASE-PIN-MODEL"

done_ok
