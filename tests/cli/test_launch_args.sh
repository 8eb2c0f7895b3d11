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

# the contradicting manifest: line 20 holds the args
sed 's|^    args: .*|    args: [--max-model-len, "131072", --gpu-memory-utilization, "0.98", --port=9000]|' \
    "$T/ok.yaml" >"$T/bad.yaml"
run "$AIRPACK" check "$T/bad.yaml"
expect_rc 1
expect_out "bad.yaml:20:12: error: [BASE-LAUNCH-ARGS] runtime 'vllm': argument '--max-model-len 131072' sets the context to 131072, but the checked plan has 2048"
expect_out "bad.yaml:20:39: error: [BASE-LAUNCH-ARGS] runtime 'vllm': argument '--gpu-memory-utilization 0.98' sets the memory utilization to 0.98, but the checked plan has 0.90"
expect_out "bad.yaml:20:73: error: [BASE-LAUNCH-ARGS] runtime 'vllm': argument '--port 9000' sets the port to 9000, but the checked plan has 8000"

run "$AIRPACK" check "$T/bad.yaml" --format sarif
expect_rc 1
printf '%s\n' "$OUT" | /usr/bin/python3 -c '
import json, sys
log = json.load(sys.stdin)
res = [r for r in log["runs"][0]["results"] if r["ruleId"] == "BASE-LAUNCH-ARGS"]
assert len(res) == 3, res
got = sorted((r["level"], r["locations"][0]["physicalLocation"]["region"]["startLine"],
              r["locations"][0]["physicalLocation"]["region"]["startColumn"]) for r in res)
assert got == [("error", 20, 12), ("error", 20, 39), ("error", 20, 73)], got
assert any("--max-model-len 131072" in r["message"]["text"] for r in res)
' || fail "SARIF results of BASE-LAUNCH-ARGS"

# build refuses it too (the check failed)
"$AIRPACK" keygen --public-key "$T/k.pub" --secret-key "$T/k.key" --no-password >/dev/null
run "$AIRPACK" build "$T/bad.yaml" --secret-key "$T/k.key" --output "$T/b.airpack"
expect_rc 1
done_ok
