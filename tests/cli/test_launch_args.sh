#!/bin/sh
# The baseline rule BASE-LAUNCH-ARGS (docs/runtimes.md, docs/policies.md):
# a manifest whose args contradict its plan fails `airpack check` with
# exit 1 naming the argument; each contradiction is an error-level SARIF
# result at the line and column of the argument. The same manifest
# without the contradictions passes, and the launch spec carries the plan.
. "$AIRPACK_SRC/tests/cli/lib.sh"
G="$AIRPACK_GEN_DIR"
mkdir -p "$T/models" "$T/runtimes/vllm/bin"
"$G/mksafetensors" --preset tiny --dtype BF16 --shards 1 "$T/models/tiny" >/dev/null
printf '#!/bin/sh\n' >"$T/runtimes/vllm/bin/vllm"
chmod 755 "$T/runtimes/vllm/bin/vllm"
# context 2048, concurrency 4 on one L4 at 0.90, as the issue's example
cat >"$T/ok.yaml" <<'EOF'
apiVersion: airpack/v1
kind: Deployment
metadata: { name: chat, version: 1.0.0, sequence: 1 }
target:
  gpu: { model: nvidia-l4, count: 1 }
  memory_utilization: 0.90
models:
  - name: tiny
    path: models/tiny/
    license: Apache-2.0
    serve: { runtime: vllm, context: 2048, concurrency: 4 }
runtimes:
  - name: vllm
    kind: vllm
    path: runtimes/vllm/
    program: bin/vllm
    license: Apache-2.0
    env: { VLLM_NO_USAGE_STATS: "1" }
    listen: 127.0.0.1:8000
    args: [--enforce-eager, --max-num-seqs, "4", --gpu-memory-utilization=0.9]
policies: [baseline]
EOF
run "$AIRPACK" check "$T/ok.yaml" --format json
printf '%s\n' "$OUT" | /usr/bin/python3 -c '
import json, sys
a = json.load(sys.stdin)
assert not [f for f in a["findings"] if f["rule"] in ("BASE-LAUNCH-ARGS", "AP-LAUNCH")], a["findings"]
argv = a["launch"][0]["argv"]
for flag, val in (("--max-model-len", "2048"), ("--max-num-seqs", "4"),
                  ("--gpu-memory-utilization", "0.90"), ("--tensor-parallel-size", "1")):
    assert argv[argv.index(flag) + 1] == val, (flag, argv)
' || fail "a manifest that agrees with its plan"

# the contradicting manifest: line 20 holds the args, one of each kind
sed 's|^    args: .*|    args: [--max-model-len, "131072", --gpu-memory-utilization, "0.98", --port=9000, -tp, "2", --kv-cache-dtype, fp8, --max-num-seqs, "8", --host, 0.0.0.0, --model, meta-llama/Llama-3.1-8B]|' \
    "$T/ok.yaml" >"$T/bad.yaml"
run "$AIRPACK" check "$T/bad.yaml"
expect_rc 1
expect_out "bad.yaml:20:12: error: [BASE-LAUNCH-ARGS] runtime 'vllm': argument '--max-model-len 131072' sets the context to 131072, but the checked plan has 2048"
expect_out "bad.yaml:20:39: error: [BASE-LAUNCH-ARGS] runtime 'vllm': argument '--gpu-memory-utilization 0.98' sets the memory utilization to 0.98, but the checked plan has 0.90"
expect_out "bad.yaml:20:73: error: [BASE-LAUNCH-ARGS] runtime 'vllm': argument '--port 9000' sets the port to 9000, but the checked plan has 8000"
expect_out "argument '-tp 2' sets the tensor parallel size to 2, but the checked plan has 1"
expect_out "argument '--kv-cache-dtype fp8' sets the KV cache dtype to fp8, but the checked plan has auto"
expect_out "argument '--max-num-seqs 8' sets the concurrency to 8, but the checked plan has 4"
expect_out "argument '--host 0.0.0.0' sets the host to 0.0.0.0, but the checked plan has 127.0.0.1"
expect_out "argument '--model meta-llama/Llama-3.1-8B' names a model that is not the installed model 'tiny'"

run "$AIRPACK" check "$T/bad.yaml" --format sarif
expect_rc 1
printf '%s\n' "$OUT" | /usr/bin/python3 -c '
import json, sys
line = open(sys.argv[1]).read().split("\n")[19]
log = json.load(sys.stdin)
res = [r for r in log["runs"][0]["results"] if r["ruleId"] == "BASE-LAUNCH-ARGS"]
got = sorted((r["level"], r["locations"][0]["physicalLocation"]["region"]["startLine"],
              r["locations"][0]["physicalLocation"]["region"]["startColumn"]) for r in res)
# each finding at its argument: the column of the option in line 20
want = sorted(("error", 20, line.index(a) + 1) for a in
              ("--max-model-len", "--gpu-memory-utilization", "--port=9000", "-tp", "--kv-cache-dtype",
               "--max-num-seqs", "--host", "--model,"))
assert got == want, (got, want)
' "$T/bad.yaml" || fail "SARIF results of BASE-LAUNCH-ARGS"

# llama.cpp: a remote model id, and a variable that contradicts the plan
sed -e 's|^    kind: vllm|    kind: llama.cpp|' -e 's|^    program: bin/vllm|    program: /usr/bin/llama-server|' \
    -e 's|^    path: runtimes/vllm/||' -e 's|^    env: .*|    env: { LLAMA_OFFLINE: "1", LLAMA_ARG_N_PARALLEL: "16" }|' \
    -e 's|^    args: .*|    args: [-hf, ggml-org/gemma-3-1b-it-GGUF]|' -e 's|^    listen: .*|    listen: 127.0.0.1:8080|' \
    -e 's|^    path: models/tiny/|    path: models/tiny.gguf|' "$T/ok.yaml" >"$T/bad-llama.yaml"
"$G/mkgguf" --preset tiny --type F32 "$T/models/tiny.gguf" >/dev/null
run "$AIRPACK" check "$T/bad-llama.yaml"
expect_rc 1
expect_out "argument '-hf ggml-org/gemma-3-1b-it-GGUF' names a remote model, not the installed model 'tiny'"
expect_out "variable 'LLAMA_ARG_N_PARALLEL=16' sets the concurrency to 16, but the checked plan has 4"

# build refuses it too (the check failed)
"$AIRPACK" keygen --public-key "$T/k.pub" --secret-key "$T/k.key" --no-password >/dev/null
run "$AIRPACK" build "$T/bad.yaml" --secret-key "$T/k.key" --output "$T/b.airpack"
expect_rc 1
done_ok
