#!/bin/sh
# airpack model through the real binary, on fixture files with published
# shapes written by tests/gen (sparse: kilobytes on disk): exact parameter
# counts and weight bytes for GGUF (v2, v3, split), single and sharded
# safetensors, config.json alone; facts say where they came from;
# malformed or missing files exit 2 naming the file.
. "$AIRPACK_SRC/tests/cli/lib.sh"
G="$AIRPACK_GEN_DIR"

json_get() {   # json_get KEY: print the value of a top-level key of $OUT
    echo "$OUT" | /usr/bin/python3 -c 'import json,sys; v=json.load(sys.stdin)[sys.argv[1]]; print(json.dumps(v))' "$1"
}
expect_json() {   # expect_json KEY VALUE
    CHECKS=$((CHECKS + 1))
    got=$(json_get "$1") || fail "'$LAST': no JSON key '$1'"
    [ "$got" = "$2" ] || fail "'$LAST': $1 is $got, expected $2"
}

# GGUF v3, Q4_K_M mix, with a rope_freqs buffer that is not a parameter
"$G/mkgguf" --preset llama-3.1-8b --type Q4_K_M --rope-freqs --license llama3.1 "$T/l8.gguf"
run "$AIRPACK" model --format json "$T/l8.gguf"
expect_rc 0
expect_json format '"gguf"'
expect_json architecture '"llama"'
expect_json parameters 8030261248
expect_json weights_bytes 5172420864
expect_json layers 32
expect_json kv_heads 8
expect_json head_dim 128
expect_json context_length 131072
expect_json file_type '"Q4_K_M"'
expect_json license '"llama3.1"'
echo "$OUT" | /usr/bin/python3 -c '
import json, sys
f = json.load(sys.stdin)
assert f["sources"]["parameters"] == "gguf header", f["sources"]
assert f["sources"]["head_dim"] == "derived", f["sources"]
mix = {m["dtype"]: m for m in f["quantization_mix"]}
assert set(mix) == {"Q4_K", "Q6_K", "F32"}, mix
assert sum(m["bytes"] for m in mix.values()) == f["weights_bytes"]
' || fail "model json: quantization mix or sources"

run "$AIRPACK" model "$T/l8.gguf"
expect_rc 0
expect_out "parameters        8030261248 (8.03B)  (gguf header)"
expect_out "file_type         Q4_K_M  (gguf header)"

# GGUF v2 F16 with 64-byte alignment, u64 integers and a per-layer KV head array
"$G/mkgguf" --preset qwen2.5-7b --type F16 --version 2 --alignment 64 --int-type u64 --kv-array "$T/q.gguf"
run "$AIRPACK" model --format json "$T/q.gguf"
expect_rc 0
expect_json parameters 7615616512
expect_json gguf_version 2
expect_json gguf_alignment 64
expect_json kv_heads 4
expect_json layers 28

# split GGUF: three parts in a folder, or named by the first part
mkdir "$T/split"
"$G/mkgguf" --preset mixtral-8x7b --type Q8_0 --split 3 "$T/split/mixtral"
run "$AIRPACK" model --format json "$T/split"
expect_rc 0
expect_json parameters 46702792704
expect_json files 3
expect_json experts 8
run "$AIRPACK" model --format json "$T/split/mixtral-00001-of-00003.gguf"
expect_rc 0
expect_json parameters 46702792704
rm "$T/split/mixtral-00002-of-00003.gguf"
run "$AIRPACK" model "$T/split"
expect_rc 2
expect_err "split GGUF part 2 of 3 is missing"

# sharded safetensors; the index's total_size is wrong on purpose
"$G/mksafetensors" --preset llama-3.1-8b --shards 4 --index-total-size 123 "$T/l8st"
run "$AIRPACK" model --format json "$T/l8st"
expect_rc 0
expect_json format '"safetensors"'
expect_json parameters 8030261248
expect_json weights_bytes 16060522496
expect_json files 4
expect_json kv_heads 8
expect_json dtype '"BF16"'
echo "$OUT" | /usr/bin/python3 -c '
import json, sys
f = json.load(sys.stdin)
assert f["sources"]["layers"] == "config.json", f["sources"]
assert f["sources"]["weights_bytes"] == "safetensors header", f["sources"]
' || fail "safetensors sources"

# single safetensors file, Qwen2.5-7B with its unused sliding window
"$G/mksafetensors" --preset qwen2.5-7b "$T/qst"
run "$AIRPACK" model --format json "$T/qst/model.safetensors"
expect_rc 0
expect_json parameters 7615616512
expect_json weights_bytes 15231233024
run "$AIRPACK" model --format json "$T/qst"
expect_rc 0
expect_json sliding_window 0
expect_json kv_heads 4

# FP8 checkpoint: quantization_config and F8 tensors
"$G/mksafetensors" --preset llama-3.1-8b --dtype F8_E4M3 --shards 2 "$T/fp8"
run "$AIRPACK" model --format json "$T/fp8"
expect_rc 0
expect_json parameters 8030261248
expect_json quant_method '"fp8"'
expect_json dtype '"F8_E4M3"'

# config.json alone: facts, but no weights
"$G/mksafetensors" --preset mistral-7b-v0.1 --config-only "$T/cfg"
run "$AIRPACK" model --format json "$T/cfg"
expect_rc 0
expect_json format '"hf-config"'
expect_json parameters null
expect_json sliding_window 4096

# malformed and missing: exit 2 naming the file
head -c 3000 "$T/l8.gguf" > "$T/cut.gguf"
run "$AIRPACK" model "$T/cut.gguf"
expect_rc 2
expect_err "cut.gguf"
expect_err "truncated"
printf 'GGUF\003\000\000\000\377\377\377\377\377\377\377\377\000\000\000\000\000\000\000\000' > "$T/many.gguf"
run "$AIRPACK" model "$T/many.gguf"
expect_rc 2
expect_err "tensors is over the limit"
printf '\020\000\000\000\000\000\000\000{"a":{"dtype":"F32"' > "$T/bad.safetensors"
run "$AIRPACK" model "$T/bad.safetensors"
expect_rc 2
expect_err "bad.safetensors"
run "$AIRPACK" model "$T/nope.gguf"
expect_rc 2
expect_err "nope.gguf"
run "$AIRPACK" model --format yaml "$T/l8.gguf"
expect_rc 2
run "$AIRPACK" model
expect_rc 2

done_ok
