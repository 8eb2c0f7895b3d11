#!/bin/sh
# airpack preflight and install's GPU preflight, against the fake NVML
# (tests/fake-nvml/, loaded through the real dlopen path with
# AIRPACK_NVML_LIBRARY): the three verdicts, target.requires, the NVML
# memory_v2 fallback, a host without NVML, --require-gpu, --skip-preflight,
# and "does not fit" leaving the prefix unchanged.
. "$AIRPACK_SRC/tests/cli/lib.sh"
: "${AIRPACK_FAKE_NVML:?the fake NVML library (tests/CMakeLists.txt)}"
make_demo
cd "$T"
D=demo/demo.yaml
"$AIRPACK" keygen --public-key k.pub --secret-key k.key --no-password --quiet
"$AIRPACK" keygen --public-key other.pub --secret-key other.key --no-password --quiet

# Bundles: the demo as is (1 x L4), planned for 2 x 48 GB with tensor
# parallel 2, and one whose KV cache needs a 48 GB GPU (concurrency 60000;
# the activation fixed, so that the KV cache decides).
sed -e 's/model: nvidia-l4$/model: nvidia-l40s/' -e 's/count: 1$/count: 2/' \
    -e 's/tensor_parallel: 1/tensor_parallel: 2/' -e 's/^  sequence: 1/  sequence: 2/' $D >demo/tp2.yaml
sed -e 's/model: nvidia-l4$/model: nvidia-l40s/' -e 's/concurrency: 4/concurrency: 60000/' \
    -e 's/^  sequence: 1/  sequence: 3/' -e 's/^      tensor_parallel: 1/      tensor_parallel: 1\n      activation_gib: 0.5/' \
    $D >demo/big.yaml
grep -q 'activation_gib: 0.5' demo/big.yaml || fail "sed did not add activation_gib"
sed -e 's/^  memory_utilization: 0.90/  memory_utilization: 0.90\n  requires: { driver: "555.42", cuda: "12.2", compute_capability: "9.0" }/' \
    -e 's/^  sequence: 1/  sequence: 4/' $D >demo/req.yaml
grep -q 'requires:' demo/req.yaml || fail "sed did not add target.requires"
for b in demo tp2 big req; do
    m=demo/$b.yaml; [ $b = demo ] && m=$D
    "$AIRPACK" build $m --secret-key k.key --output $b.tar >/dev/null 2>&1 || fail "build $b"
done

gpus() { # NAME TOTAL_GIB [EXTRA JSON KEYS]
    printf '{"driver_version": "550.54.14", "cuda_version": 12040%s,\n "gpus": [%s]}\n' "${3:-}" "$2" >"$1"
}
G24='{"name": "NVIDIA GeForce RTX 4090", "pci_device_id": "0x268410de", "memory_total_gib": 24, "memory_used_gib": 0.3, "memory_reserved_gib": 0.2, "compute_capability": "8.9"}'
G48='{"name": "NVIDIA L40S", "pci_device_id": "0x26b510de", "memory_total_gib": 48, "memory_used_gib": 0.5, "compute_capability": "8.9"}'
gpus gpu24.json "$G24"
gpus gpu48.json "$G48"
gpus gpu2x48.json "$G48, $G48"
gpus nodriver.json "$G24" ', "init_error": 9'
gpus v1only.json "$G24" ', "memory_v2": "missing"'
gpus mismatch.json "$G24" ', "memory_v2": "mismatch"'
gpus memfail.json '{"name": "X", "memory_total_gib": 24, "memory_error": 999}'
export AIRPACK_NVML_LIBRARY="$AIRPACK_FAKE_NVML"
export AIRPACK_FAKE_NVML_GPUS="$T/gpu24.json"

# --- does not fit: planned for 2 x 48 GB, one 24 GB GPU here
run "$AIRPACK" preflight tp2.tar --public-key k.pub
expect_rc 1
expect_out "planned for 2 x nvidia-l40s"
expect_out "GPU 0  NVIDIA GeForce RTX 4090  pci 0x268410de  cc 8.9  total 24.00 GiB"
expect_out "model 'tiny-chat' (llama.cpp, 2 GPU(s)): does not fit: tensor_parallel 2 needs 2 GPUs, this host has 1"
expect_out "verdict: does not fit"
AIRPACK_FAKE_NVML_GPUS="$T/gpu2x48.json" run "$AIRPACK" preflight tp2.tar --public-key k.pub
expect_rc 0
expect_out "verdict: fits"

# --- fits only smaller: which context, which concurrency
run "$AIRPACK" preflight big.tar -k k.pub --format json
expect_rc 1
printf '%s\n' "$OUT" >big24.json
python3 - big24.json <<'PY' || fail "preflight json (24 GB): $(cat big24.json)"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["format"] == "airpack-preflight/1" and r["verdict"] == "fits-reduced", r["verdict"]
h = r["host"]
assert h["nvml"]["available"] is True and h["driver_version"] == "550.54.14" and h["cuda_version"] == "12.4", h
g = h["gpus"][0]
assert g["name"] == "NVIDIA GeForce RTX 4090" and g["pci_device_id"] == "0x268410de", g
assert g["memory_total_bytes"] == 24 << 30 and g["compute_capability"] == "8.9", g
# read through nvmlDeviceGetMemoryInfo_v2: reserved is its own field
assert g["memory_reserved_bytes"] == int(0.2 * (1 << 30)), g
assert g["memory_free_bytes"] == g["memory_total_bytes"] - g["memory_reserved_bytes"] - g["memory_used_bytes"], g
m = r["models"][0]
assert m["name"] == "tiny-chat" and m["verdict"] == "fits-reduced", m
assert 0 < m["max_concurrency"] < 60000 and m["concurrency"] == 60000 and m["context"] == 2048, m
assert 256 <= m["max_context"] < 2048, m
gp = r["gpus"][0]
assert gp["fits"] is False and gp["planned_bytes"] > gp["budget_bytes"], gp
assert gp["budget_bytes"] == int((24 << 30) * 0.9), gp
assert r["planned_for"]["model"] == "nvidia-l40s" and r["planned_for"]["count"] == 1, r["planned_for"]
PY
expect_rc 1
run "$AIRPACK" preflight big.tar -k k.pub
expect_out "fits only with a smaller context or concurrency: context at most"
expect_out "or concurrency at most"
AIRPACK_FAKE_NVML_GPUS="$T/gpu48.json" run "$AIRPACK" preflight big.tar -k k.pub
expect_rc 0
expect_out "model 'tiny-chat' (llama.cpp, 1 GPU(s)): fits: context 2048 x concurrency 60000"
# another tenant holds 30 GiB of the 48: the free memory counts
gpus busy48.json '{"name": "NVIDIA L40S", "memory_total_gib": 48, "memory_used_gib": 30}'
AIRPACK_FAKE_NVML_GPUS="$T/busy48.json" run "$AIRPACK" preflight big.tar -k k.pub
expect_rc 1
expect_out "verdict: fits only with a smaller context or concurrency"
AIRPACK_FAKE_NVML_GPUS="$T/busy48.json" run "$AIRPACK" preflight big.tar -k k.pub --ignore-free
expect_rc 0

# --- fits only smaller when the activations alone overflow at the planned
# point: llama.cpp's compute buffer grows with context x slots, so the KV
# budget there is negative, yet fewer slots fit (the planner's answers count
# every term at the point they name)
sed -e 's/model: nvidia-l4$/model: nvidia-l40s/' -e 's/concurrency: 4/concurrency: 1800/' \
    -e 's/^  sequence: 1/  sequence: 5/' $D >demo/act.yaml
"$AIRPACK" build demo/act.yaml --secret-key k.key --output act.tar >/dev/null 2>&1 || fail "build act"
run "$AIRPACK" preflight act.tar -k k.pub --format json
expect_rc 1
printf '%s\n' "$OUT" >act24.json
python3 - act24.json <<'PY' || fail "preflight json (activations overflow): $(cat act24.json)"
import json, sys
r = json.load(open(sys.argv[1]))
m = r["models"][0]
assert r["verdict"] == "fits-reduced" and m["verdict"] == "fits-reduced", (r["verdict"], m)
assert 0 < m["max_concurrency"] < 1800 and m["concurrency"] == 1800, m
PY
CHECKS=$((CHECKS + 1))

# --- target.requires: driver, cuda, compute capability
run "$AIRPACK" preflight req.tar -k k.pub
expect_rc 1
expect_out "requires driver >= 555.42: found 550.54.14, NOT met"
expect_out "requires cuda >= 12.2: found 12.4, met"
expect_out "requires compute_capability >= 9.0: found 8.9, NOT met"
expect_out "verdict: does not fit"
run "$AIRPACK" check demo/req.yaml --format json
python3 -c 'import json,sys; t=json.loads(sys.argv[1])["manifest"]["target"]; assert t["requires"]=={"driver":"555.42","cuda":"12.2","compute_capability":"9.0"}, t' "$OUT" ||
    fail "target.requires in the analysis"
sed 's/cuda: "12.2"/cuda: "twelve"/' demo/req.yaml >demo/badreq.yaml
run "$AIRPACK" check demo/badreq.yaml
expect_rc 2
expect_err "'cuda' must be a version such as '12.4', not 'twelve'"
expect_err "line "
sed 's/cuda: "12.2"/cudaa: "12.2"/' demo/req.yaml >demo/badreq.yaml
run "$AIRPACK" check demo/badreq.yaml
expect_rc 2
expect_err "did you mean 'cuda'"

# --- the NVML fallbacks and failures
for f in v1only mismatch; do
    AIRPACK_FAKE_NVML_GPUS="$T/$f.json" run "$AIRPACK" preflight tp2.tar -k k.pub --format json
    expect_rc 1
    python3 -c 'import json,sys; g=json.loads(sys.argv[1])["host"]["gpus"][0]; assert g["memory_reserved_bytes"]==0 and g["memory_total_bytes"]==24<<30 and g["memory_used_bytes"]>0, g' "$OUT" ||
        fail "$f: nvmlDeviceGetMemoryInfo fallback: $OUT"
done
AIRPACK_FAKE_NVML_GPUS="$T/memfail.json" run "$AIRPACK" preflight tp2.tar -k k.pub
expect_rc 2
expect_err "nvmlDeviceGetMemoryInfo_v2 on GPU 0 failed: Unknown Error"
AIRPACK_FAKE_NVML_GPUS="$T/nodriver.json" run "$AIRPACK" preflight tp2.tar -k k.pub
expect_rc 0
expect_out "host: no NVML: nvmlInit_v2 in"
expect_out "Driver Not Loaded"
expect_err "warning: no NVML on this host"
AIRPACK_NVML_LIBRARY=$T/none/libnvidia-ml.so.1 run "$AIRPACK" preflight tp2.tar -k k.pub --require-gpu
expect_rc 1
expect_out "verdict: unknown (no NVML)"

# --- the signature comes first; usage
run "$AIRPACK" preflight tp2.tar -k other.pub
expect_rc 1
expect_err "error: "
run "$AIRPACK" preflight tp2.tar
expect_rc 2
expect_err "no trusted key"
run "$AIRPACK" preflight
expect_rc 2

# --- install: a release that does not fit is refused, the prefix unchanged
P=$T/prefix
run "$AIRPACK" install demo.tar -k k.pub -p "$P" -q
expect_rc 0
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); p=r["preflight"]; assert p["skipped"] is False and p["verdict"]=="fits" and p["host"]["gpus"][0]["name"]=="NVIDIA GeForce RTX 4090", p' \
    "$P/.airpack/receipts/demo-assistant/1.0.0+1/install.json" || fail "install record: preflight"
snapshot() { (cd "$P" && find . -printf '%p %y %s %l\n' | sort && find . -type f -exec sha256sum {} + | sort); }
snapshot >before
run "$AIRPACK" install tp2.tar -k k.pub -p "$P" -q
expect_rc 1
expect_err "model 'tiny-chat' (llama.cpp, 2 GPU(s)): does not fit"
expect_err "error: GPU preflight: 'demo-assistant' 1.0.0+2 does not fit this host's GPUs (--skip-preflight overrides)"
snapshot >after
cmp -s before after || fail "a refused install changed the prefix: $(diff before after | head)"
run "$AIRPACK" install big.tar -k k.pub -p "$P" -q
expect_rc 1
expect_err "fits only with a smaller context or concurrency on this host's GPUs"
snapshot >after
cmp -s before after || fail "a refused install changed the prefix"
# the active release's own budget counts as free: a busy GPU running it still fits
run "$AIRPACK" preflight --installed "$P"
expect_rc 0
expect_out "verdict: fits"
# --skip-preflight installs, and says so in the record
run "$AIRPACK" install tp2.tar -k k.pub -p "$P" -q --skip-preflight
expect_rc 0
expect_err "GPU preflight skipped"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["preflight"]=={"skipped": True, "verdict": None}, r' \
    "$P/.airpack/receipts/demo-assistant/1.0.0+2/install.json" || fail "install record: skipped"
run "$AIRPACK" preflight --installed "$P" demo-assistant --public-key k.pub
expect_rc 1
expect_out "does not fit"
# no NVML: a warning, unless --require-gpu
AIRPACK_NVML_LIBRARY=$T/none.so run "$AIRPACK" install big.tar -k k.pub -p "$P" -q --require-gpu
expect_rc 1
expect_err "no NVML on this host and --require-gpu given"
AIRPACK_NVML_LIBRARY=$T/none.so run "$AIRPACK" install big.tar -k k.pub -p "$P" -q
expect_rc 0
expect_err "warning: no NVML on this host"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["preflight"]["verdict"]=="unknown", r' \
    "$P/.airpack/receipts/demo-assistant/1.0.0+3/install.json" || fail "install record: unknown"

# audit: the preflight at install and now
run "$AIRPACK" audit --installed "$P"
expect_rc 0
expect_out "GPU preflight at install: not checked, no NVML"
expect_out "GPU preflight now: fits only with a smaller context or concurrency (1 GPU(s), NVIDIA GeForce RTX 4090, driver 550.54.14): model 'tiny-chat'"
run "$AIRPACK" audit --installed "$P" --format json
python3 -c '
import json, sys
d = json.loads(sys.argv[1])["deployments"][0]
p = d["preflight"]
assert p["install_preflight"]["verdict"] == "unknown" and p["now"]["verdict"] == "fits-reduced", p
f = [x for x in d["evidence"]["findings"] if x["rule"] == "AP-PREFLIGHT-FIT"]
assert len(f) == 1 and f[0]["level"] == "warning", f
' "$OUT" || fail "audit json preflight: $OUT"
run "$AIRPACK" audit --installed "$P" --format sarif
expect_out "AP-PREFLIGHT-FIT"
run "$AIRPACK" audit --installed "$P" --format html
expect_rc 0
expect_out "<h2>At the site</h2>"
expect_out "<th>GPU preflight now</th><td>fits only with a smaller context or concurrency (1 GPU(s), NVIDIA GeForce RTX 4090, driver 550.54.14): model &#39;tiny-chat&#39;"
AIRPACK_FAKE_NVML_GPUS="$T/gpu48.json" run "$AIRPACK" audit --installed "$P"
expect_rc 0
expect_out "GPU preflight now: fits (1 GPU(s), NVIDIA L40S, driver 550.54.14)"

# airpack-verify carries the preflight too (dlopen from the static build)
run "$AIRPACK_VERIFY" preflight tp2.tar -k k.pub
expect_rc 1
expect_out "verdict: does not fit"
done_ok
