#!/bin/sh
# Service units (docs/install.md "Service units", docs/runtimes.md): a
# llama.cpp bundle (the demo) and a vLLM bundle install with a unit whose
# ExecStart carries the planned context, concurrency, utilization and
# tensor parallelism; systemd-analyze verify accepts both; `airpack units`
# prints them, links them (--systemd-dir) and gives JSON to start them
# without systemd; audit knows them; after rollback, current and the unit
# point at the previous release.
. "$AIRPACK_SRC/tests/cli/lib.sh"
command -v systemd-analyze >/dev/null 2>&1 ||
    fail "systemd-analyze is missing (scripts/setup.sh installs the systemd package)"
G="$AIRPACK_GEN_DIR"
P="$T/prefix"
"$AIRPACK" keygen --public-key "$T/k.pub" --secret-key "$T/k.key" --no-password >/dev/null
export SOURCE_DATE_EPOCH=1764288000

# ---- llama.cpp: the demo (context 2048, concurrency 4, one L4)
make_demo
run "$AIRPACK" build "$T/demo/demo.yaml" --secret-key "$T/k.key" --output "$T/demo1.airpack"
expect_rc 0
run "$AIRPACK" install "$T/demo1.airpack" --public-key "$T/k.pub" --prefix "$P"
expect_rc 0
PA=$(cd "$P" && pwd -P)
CUR="$PA/current/demo-assistant"
U="$CUR/systemd/airpack-demo-assistant-llama-server.service"
[ -f "$U" ] || fail "no unit in the release"
[ -f "$CUR/systemd/airpack-demo-assistant-llama-server.env" ] || fail "no env file in the release"
run "$AIRPACK" units --prefix "$P"
expect_rc 0
expect_out "ExecStart=$CUR/payload/runtimes/llama-server/bin/llama-server -m $CUR/payload/models/tiny-chat/tiny-chat.gguf --alias tiny-chat -c 8192 -np 4 -ngl 999 --split-mode none -ctk f16 -ctv f16 --host 127.0.0.1 --port 8080 --offline --no-webui"
expect_out "EnvironmentFile=$CUR/systemd/airpack-demo-assistant-llama-server.env"
expect_out "Restart=on-failure"
expect_out "DynamicUser=yes"
expect_out "NoNewPrivileges=yes"
expect_out "ProtectSystem=strict"
expect_out "IPAddressDeny=any"
expect_out "IPAddressAllow=localhost"
expect_out "DeviceAllow=/dev/nvidiactl rw"
grep -q '^HF_HUB_OFFLINE="1"$' "$CUR/systemd/airpack-demo-assistant-llama-server.env" ||
    fail "env file lacks the offline environment"
grep -q '^LLAMA_OFFLINE="1"$' "$CUR/systemd/airpack-demo-assistant-llama-server.env" ||
    fail "env file lacks LLAMA_OFFLINE"
run systemd-analyze verify "$U"
expect_rc 0

# JSON: what an activation step needs to start it without systemd
run "$AIRPACK" units --prefix "$P" demo-assistant --format json
expect_rc 0
printf '%s\n' "$OUT" | /usr/bin/python3 -c '
import json, os, sys
d = json.load(sys.stdin)
u = d["units"][0]
cur = sys.argv[1]
assert u["unit"] == "airpack-demo-assistant-llama-server.service", u
assert u["argv"][0] == cur + "/payload/runtimes/llama-server/bin/llama-server", u["argv"]
assert os.access(u["argv"][0], os.X_OK), u["argv"][0]
assert u["argv"][u["argv"].index("-c") + 1] == "8192" and u["argv"][u["argv"].index("-np") + 1] == "4"
assert u["env"]["HF_HUB_OFFLINE"] == "1" and u["env"]["CUDA_VISIBLE_DEVICES"] == "0", u["env"]
assert u["working_directory"] == cur and os.path.isdir(u["working_directory"])
assert u["listen"] == "127.0.0.1:8080" and u["host"] == "127.0.0.1" and u["port"] == 8080
assert u["health"] == "/health" and u["release"] == "1.0.0+1"
assert os.path.isfile(u["unit_file"]) and os.path.isfile(u["env_file"])
' "$CUR" || fail "units --format json"

# audit: the generated units are not drift; a changed one is
run "$AIRPACK" audit --installed "$P" --public-key "$T/k.pub"
expect_rc 0
expect_out "0 unexpected"

# --systemd-dir links the unit through current/
mkdir "$T/sd"
run "$AIRPACK" units --prefix "$P" --systemd-dir "$T/sd"
expect_rc 0
L="$T/sd/airpack-demo-assistant-llama-server.service"
[ "$(readlink "$L")" = "$U" ] || fail "link target $(readlink "$L"), want $U"

# ---- a second release with another plan, then rollback
sed -e 's/^  version: 1.0.0/  version: 1.1.0/' -e 's/^  sequence: 1$/  sequence: 2/' \
    -e 's/^      context: 2048/      context: 1024/' "$T/demo/demo.yaml" >"$T/demo/demo2.yaml"
run "$AIRPACK" build "$T/demo/demo2.yaml" --secret-key "$T/k.key" --output "$T/demo2.airpack"
expect_rc 0
run "$AIRPACK" install "$T/demo2.airpack" --public-key "$T/k.pub" --prefix "$P"
expect_rc 0
grep -q -- "-c 4096 -np 4" "$L" || fail "linked unit after the second install: $(grep ExecStart "$L")"
grep -q "signed lock of demo-assistant 1.1.0+2" "$L" || fail "unit of 1.1.0+2 not active"
run "$AIRPACK" rollback --prefix "$P"
expect_rc 0
[ "$(readlink "$P/current/demo-assistant")" = "../releases/demo-assistant/1.0.0+1" ] ||
    fail "current after rollback: $(readlink "$P/current/demo-assistant")"
grep -q -- "-c 8192 -np 4" "$L" || fail "linked unit after rollback: $(grep ExecStart "$L")"
grep -q "signed lock of demo-assistant 1.0.0+1" "$L" || fail "unit after rollback is not 1.0.0+1's"
[ "$(readlink -f "$L")" = "$PA/releases/demo-assistant/1.0.0+1/systemd/airpack-demo-assistant-llama-server.service" ] ||
    fail "linked unit resolves to $(readlink -f "$L")"
run "$AIRPACK" units --prefix "$P"
expect_out "-c 8192 -np 4"

# ---- vLLM: a tiny safetensors model, tensor parallel 2 on 2 x L4
V="$T/vllm"
mkdir -p "$V/runtimes/vllm/bin" "$V/models"
"$G/mksafetensors" --preset tiny --dtype BF16 --shards 1 "$V/models/tiny" >/dev/null
printf '#!/bin/sh\nexec sleep 3600\n' >"$V/runtimes/vllm/bin/vllm"
chmod 755 "$V/runtimes/vllm/bin/vllm"
cat >"$V/vllm.yaml" <<'EOF'
apiVersion: airpack/v1
kind: Deployment
metadata: { name: vllm-chat, version: 1.0.0, sequence: 1 }
target:
  gpu: { model: nvidia-l4, count: 2 }
  memory_utilization: 0.85
models:
  - name: tiny
    path: models/tiny/
    license: Apache-2.0
    serve: { runtime: vllm, context: 1024, concurrency: 8, tensor_parallel: 2 }
runtimes:
  - name: vllm
    kind: vllm
    version: 0.6.6
    path: runtimes/vllm/
    program: bin/vllm
    license: Apache-2.0
    listen: 127.0.0.1:8000
EOF
run "$AIRPACK" pin "$V/vllm.yaml"
expect_rc 0
sed -i -e 's|^    path: models/tiny/$|    path: models/tiny/\n    sha256sums: models/tiny.sha256|' \
    -e 's|^    path: runtimes/vllm/$|    path: runtimes/vllm/\n    sha256sums: runtimes/vllm.sha256|' "$V/vllm.yaml"
run "$AIRPACK" build "$V/vllm.yaml" --secret-key "$T/k.key" --output "$T/vllm.airpack"
expect_rc 0
run "$AIRPACK" install "$T/vllm.airpack" --public-key "$T/k.pub" --prefix "$P"
expect_rc 0
VC="$PA/current/vllm-chat"
run "$AIRPACK" units --prefix "$P" vllm-chat
expect_rc 0
expect_out "ExecStart=$VC/payload/runtimes/vllm/bin/vllm serve $VC/payload/models/tiny --served-model-name tiny --max-model-len 1024 --max-num-seqs 8 --gpu-memory-utilization 0.85 --tensor-parallel-size 2 --kv-cache-dtype auto --host 127.0.0.1 --port 8000"
grep -q '^CUDA_VISIBLE_DEVICES="0,1"$' "$VC/systemd/airpack-vllm-chat-vllm.env" || fail "vLLM GPUs"
grep -q '^VLLM_NO_USAGE_STATS="1"$' "$VC/systemd/airpack-vllm-chat-vllm.env" || fail "vLLM stats"
run systemd-analyze verify "$VC/systemd/airpack-vllm-chat-vllm.service"
expect_rc 0
# both deployments listed; the inspect of the bundle shows the same command
run "$AIRPACK" units --prefix "$P" --format json
expect_rc 0
printf '%s\n' "$OUT" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
assert sorted(u["deployment"] for u in d["units"]) == ["demo-assistant", "vllm-chat"], d
' || fail "units of every deployment"
run "$AIRPACK" inspect "$T/vllm.airpack"
expect_out "--max-model-len 1024 --max-num-seqs 8 --gpu-memory-utilization 0.85 --tensor-parallel-size 2"

# usage errors
run "$AIRPACK" units
expect_rc 2
run "$AIRPACK" units --prefix "$P" nosuch
expect_rc 2
done_ok
