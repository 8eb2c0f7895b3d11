#!/bin/sh
# tools/demo-server (the demo's llama-server on llama.cpp's C API): loads the
# demo's GGUF (tests/gen/mkdemo) and answers /health, /v1/models and
# /v1/completions with tokens the model generates; refuses unknown flags;
# stops cleanly on SIGTERM. Every wait is bounded.
. "$AIRPACK_SRC/tests/cli/lib.sh"

S="$AIRPACK_BIN/demo-runtime/bin/llama-server"
LLAMA_DIR=${AIRPACK_LLAMA_DIR:-/opt/airpack/node-llama-cpp-3.21.1}
if [ ! -x "$S" ]; then
    if [ -f "$LLAMA_DIR/.complete" ]; then
        fail "llama.cpp's libraries are in '$LLAMA_DIR' but '$S' was not built"
    fi
    echo "SKIP: llama.cpp's npm libraries are absent ('$LLAMA_DIR'; scripts/setup.sh installs them)"
    exit 0
fi
command -v curl >/dev/null || fail "curl is missing (scripts/setup.sh installs it)"

"$AIRPACK_GEN_DIR/mkdemo" "$T/demo" >/dev/null
MODEL="$T/demo/models/tiny-chat.gguf"

# The runtime folder is self-contained: bin/ finds its libraries in ../lib.
run readelf -d "$S"
expect_out 'Library runpath: [$ORIGIN/../lib]'
for lib in libllama libggml-base libggml-cpu-x64 libmicrohttpd libjansson; do
    ls "$AIRPACK_BIN/demo-runtime/lib/$lib"*.so* >/dev/null 2>&1 || fail "demo-runtime/lib lacks $lib"
done

# Bad usage: exit 2, the flag named; nothing listens.
run "$S" -m "$MODEL" --port 0 --frobnicate
expect_rc 2
expect_err "unknown option '--frobnicate'"
run "$S" --port 0
expect_rc 2
expect_err "no model"
run "$S" -m "$T/nope.gguf" --port 0
expect_rc 2
expect_err "nope.gguf"
run "$S" -m "$MODEL" -ctk f8 --port 0
expect_rc 2
expect_err "unknown KV cache type 'f8'"
run "$S" -m "$MODEL" -np 0 --port 0
expect_rc 2
expect_err "'-np'"
run "$S" -m "$MODEL" --rope-scaling cubic --port 0
expect_rc 2
expect_err "'cubic' is not none, linear or yarn"
run "$S" --help
expect_rc 0
expect_out "/v1/completions"

# A file that is not a model: exit 1, llama.cpp says why.
printf 'not a gguf' >"$T/bad.gguf"
run timeout 30 "$S" -m "$T/bad.gguf" --host 127.0.0.1 --port 0
expect_rc 1
expect_err "cannot load the model"

# start_server LOG ARGS...: background, sets PID and PORT (from the log).
start_server() {
    log=$1
    shift
    : >"$log" # exists before the background job opens it
    "$S" "$@" >"$log" 2>&1 &
    PID=$!
    PORT=""
    i=0
    while [ $i -lt 300 ]; do
        PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$log")
        [ -n "$PORT" ] && break
        kill -0 "$PID" 2>/dev/null || { cat "$log" >&2; fail "the server exited before listening"; }
        sleep 0.1
        i=$((i + 1))
    done
    [ -n "$PORT" ] || { kill "$PID"; cat "$log" >&2; fail "the server did not listen within 30 s"; }
    i=0
    until [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")" = 200 ]; do
        kill -0 "$PID" 2>/dev/null || { cat "$log" >&2; fail "the server exited while loading"; }
        i=$((i + 1))
        [ $i -lt 300 ] || { kill "$PID"; cat "$log" >&2; fail "/health not ok within 30 s"; }
        sleep 0.1
    done
}
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$T"' EXIT INT TERM

# http METHOD PATH [BODY]: sets CODE and BODY (the response).
http() {
    if [ $# -ge 3 ]; then
        CODE=$(curl -s -m 60 -o "$T/resp" -w '%{http_code}' -X "$1" \
            -H 'Content-Type: application/json' --data-binary "$3" "http://127.0.0.1:$PORT$2")
    else
        CODE=$(curl -s -m 60 -o "$T/resp" -w '%{http_code}' -X "$1" "http://127.0.0.1:$PORT$2")
    fi
    BODY=$(cat "$T/resp")
    CHECKS=$((CHECKS + 1))
}
expect_code() {
    [ "$CODE" = "$1" ] || fail "HTTP $CODE, expected $1: $BODY"
}
# jq-like checks through python3 (json module)
py() {
    CHECKS=$((CHECKS + 1))
    code=$1
    shift
    printf '%s' "$BODY" | python3 -c "import json,sys; d=json.load(sys.stdin)
$code" "$@" || fail "response check failed: $code on $BODY"
}

# The flags the launch spec passes (issue 10: -m -c -np -ngl -ctk -ctv --host --port),
# plus llama-server flags it may add.
start_server "$T/srv.log" -m "$MODEL" -c 4096 -np 2 -ngl 999 -ctk f16 -ctv f16 \
    --host 127.0.0.1 --port 0 --offline --no-webui --alias tiny-chat -n 32 -t 1

http GET /health
expect_code 200
py 'assert d == {"status": "ok"}, d'

http GET /v1/models
expect_code 200
py 'assert d["object"] == "list" and [m["id"] for m in d["data"]] == ["tiny-chat"], d
m = d["data"][0]["meta"]; assert m["n_vocab"] == 311 and m["n_params"] == 113856, m'

http POST /v1/completions '{"model":"tiny-chat","prompt":"The air gap is","max_tokens":8}'
expect_code 200
py 'assert d["object"] == "text_completion" and d["model"] == "tiny-chat", d
c = d["choices"][0]; assert c["finish_reason"] == "length" and len(c["text"].strip()) > 0, c
u = d["usage"]; assert u["completion_tokens"] == 8 and u["prompt_tokens"] > 3 and u["total_tokens"] == u["prompt_tokens"] + 8, u
print(c["text"], file=open(sys.argv[1], "w"))' "$T/first"
FIRST=$(cat "$T/first")

# Greedy decoding is deterministic: the same prompt, the same text.
http POST /v1/completions '{"prompt":"The air gap is","max_tokens":8,"temperature":0}'
expect_code 200
SECOND=$(printf '%s' "$BODY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"])')
[ "$FIRST" = "$SECOND" ] || fail "greedy completions differ: '$FIRST' vs '$SECOND'"

# Seeded sampling: the same seed, the same text.
http POST /v1/completions '{"prompt":"hello","max_tokens":12,"temperature":0.8,"seed":7}'
expect_code 200
A=$BODY
http POST /v1/completions '{"prompt":"hello","max_tokens":12,"temperature":0.8,"seed":7}'
[ "$(printf '%s' "$A" | python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"])')" = \
  "$(printf '%s' "$BODY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"])')" ] ||
    fail "seeded completions differ"

# max_tokens is capped by -n.
http POST /v1/completions '{"prompt":["a prompt in an array"],"max_tokens":100000}'
expect_code 200
py 'assert d["usage"]["completion_tokens"] <= 32, d["usage"]'

# A stop string ends the text before it.
WORD=$(printf '%s' "$FIRST" | awk '{print $2}')
if [ -n "$WORD" ]; then
    http POST /v1/completions "{\"prompt\":\"The air gap is\",\"max_tokens\":8,\"stop\":[\"$WORD\"]}"
    expect_code 200
    py "c = d['choices'][0]; assert c['finish_reason'] == 'stop' and '$WORD' not in c['text'], c"
fi

# Bad requests: 400 with an OpenAI error object; wrong method 405; unknown path 404.
http POST /v1/completions '{"prompt": 5}'
expect_code 400
py 'assert d["error"]["code"] == 400 and "prompt" in d["error"]["message"], d'
http POST /v1/completions '{"prompt": "x", "max_tokens": -1}'
expect_code 400
http POST /v1/completions '{"prompt": "x", "stream": true}'
expect_code 400
http POST /v1/completions 'not json'
expect_code 400
py 'assert "not JSON" in d["error"]["message"], d'
http GET /v1/completions
expect_code 405
http GET /v1/chat/completions
expect_code 404
head -c 1100000 /dev/zero | tr '\0' 'a' >"$T/big"
CODE=$(curl -s -m 60 -o "$T/resp" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary @"$T/big" "http://127.0.0.1:$PORT/v1/completions")
[ "$CODE" = 413 ] || fail "a body over 1 MiB: HTTP $CODE, expected 413"

# The same port twice: the second server says so and exits 1.
run timeout 30 "$S" -m "$MODEL" --host 127.0.0.1 --port "$PORT"
expect_rc 1
expect_err "cannot listen on 127.0.0.1 port $PORT"

# SIGTERM: a clean stop, exit 0, within 10 s.
kill -TERM "$PID"
i=0
while kill -0 "$PID" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 100 ] || { kill -9 "$PID"; fail "the server did not stop within 10 s of SIGTERM"; }
    sleep 0.1
done
wait "$PID" && rc=0 || rc=$?
[ "$rc" = 0 ] || { cat "$T/srv.log" >&2; fail "the server exited $rc after SIGTERM"; }
grep -q "stopped" "$T/srv.log" || fail "no 'stopped' in the server's log"
CHECKS=$((CHECKS + 1))

# Without --alias the served name is the model's file name; the launch
# spec's other llama.cpp flags (context extension, batch, flash attention,
# split mode) are taken; SIGINT stops it too.
start_server "$T/srv2.log" -m "$MODEL" --host 127.0.0.1 --port 0 -t 1 -c 4096 \
    --rope-scaling yarn --rope-scale 2 --yarn-orig-ctx 2048 -b 256 -fa --split-mode none
http GET /v1/models
expect_code 200
py 'assert d["data"][0]["id"] == "tiny-chat.gguf", d'
http POST /v1/completions '{"prompt":"The air gap is","max_tokens":4}'
expect_code 200
py 'assert d["usage"]["completion_tokens"] == 4, d'
kill -INT "$PID"
wait "$PID" && rc=0 || rc=$?
[ "$rc" = 0 ] || fail "the server exited $rc after SIGINT"
CHECKS=$((CHECKS + 1))

# While the model loads: /health and the API answer 503, and SIGTERM stops
# the server. The model is a FIFO, so loading waits until the test writes.
mkfifo "$T/slow.gguf"
start_listening() { # like start_server, without waiting for /health
    : >"$1"
    log=$1
    shift
    "$S" "$@" >"$log" 2>&1 &
    PID=$!
    PORT=""
    i=0
    while [ -z "$PORT" ] && [ $i -lt 300 ]; do
        PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$log")
        i=$((i + 1))
        [ -n "$PORT" ] || sleep 0.1
    done
    [ -n "$PORT" ] || { kill "$PID"; fail "the server did not listen within 30 s"; }
}
start_listening "$T/slow.log" -m "$T/slow.gguf" --host 127.0.0.1 --port 0
http GET /health
expect_code 503
py 'assert d["error"]["message"] == "Loading model", d'
http GET /v1/models
expect_code 503
http POST /v1/completions '{"prompt":"x"}'
expect_code 503
kill -TERM "$PID"
# (llama.cpp may close the FIFO before reading: the writer's SIGPIPE is fine)
timeout 10 sh -c "printf 'not a model' >'$T/slow.gguf'" || true
i=0
while kill -0 "$PID" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 100 ] || { kill -9 "$PID"; fail "SIGTERM while loading: still running after 10 s"; }
    sleep 0.1
done
wait "$PID" && rc=0 || rc=$?
[ "$rc" = 0 ] || { cat "$T/slow.log" >&2; fail "SIGTERM while loading: exit $rc, want 0"; }
grep -q "stopping while the model loads" "$T/slow.log" || fail "SIGTERM while loading: not said"
CHECKS=$((CHECKS + 1))

# End to end, as the demo does it: the real runtime folder in a signed
# bundle, installed, and started from the installed unit's launch spec
# ('airpack units --format json': argv, env, working directory), then asked.
mkdir -p "$T/e2e"
"$AIRPACK_GEN_DIR/mkdemo" --runtime "$AIRPACK_BIN/demo-runtime" "$T/e2e/demo" >/dev/null
FREE=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed "s/listen: 127.0.0.1:8080/listen: 127.0.0.1:$FREE/" "$AIRPACK_SRC/manifests/demo.yaml" >"$T/e2e/demo.yaml"
grep -q "listen: 127.0.0.1:$FREE" "$T/e2e/demo.yaml" || fail "the demo manifest has no 'listen: 127.0.0.1:8080' to change"
run "$AIRPACK" keygen --public-key "$T/e2e/k.pub" --secret-key "$T/e2e/k.key" --no-password
expect_rc 0
run "$AIRPACK" build "$T/e2e/demo.yaml" --secret-key "$T/e2e/k.key" --output "$T/e2e/demo.airpack"
expect_rc 0
run "$AIRPACK" install "$T/e2e/demo.airpack" --public-key "$T/e2e/k.pub" --prefix "$T/e2e/prefix"
expect_rc 0
run "$AIRPACK" units --prefix "$T/e2e/prefix" demo-assistant --format json
expect_rc 0
printf '%s' "$OUT" >"$T/e2e/units.json"
# env -i PATH=/usr/bin:/bin VAR=VALUE... ARGV..., one item a line; then cwd
python3 - "$T/e2e/units.json" "$T/e2e/cmd" "$T/e2e/cwd" <<'PY'
import json, sys
u = [x for x in json.load(open(sys.argv[1]))["units"] if x["runtime"] == "llama-server"][0]
items = ["env", "-i", "PATH=/usr/bin:/bin"] + ["%s=%s" % kv for kv in u["env"].items()] + u["argv"]
assert all("\n" not in i for i in items)
assert u["argv"][0].endswith("/payload/runtimes/llama-server/bin/llama-server"), u["argv"]
open(sys.argv[2], "w").write("\n".join(items) + "\n")
open(sys.argv[3], "w").write(u["working_directory"])
PY
CHECKS=$((CHECKS + 1))
set --
while IFS= read -r w; do set -- "$@" "$w"; done <"$T/e2e/cmd"
: >"$T/e2e/srv.log"
(cd "$(cat "$T/e2e/cwd")" && exec "$@") >"$T/e2e/srv.log" 2>&1 &
PID=$!
PORT=$FREE
i=0
until [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")" = 200 ]; do
    kill -0 "$PID" 2>/dev/null || { cat "$T/e2e/srv.log" >&2; fail "the installed server exited"; }
    i=$((i + 1))
    [ $i -lt 300 ] || { kill "$PID"; cat "$T/e2e/srv.log" >&2; fail "the installed server: /health not ok within 30 s"; }
    sleep 0.1
done
http GET /v1/models
expect_code 200
# the launch spec names the model with --alias: the manifest's model name
py 'assert [m["id"] for m in d["data"]] == ["tiny-chat"], d'
http POST /v1/completions '{"prompt":"The air gap is","max_tokens":4}'
expect_code 200
py 'assert d["usage"]["completion_tokens"] == 4 and d["choices"][0]["text"].strip(), d'
kill -TERM "$PID"
wait "$PID" && rc=0 || rc=$?
[ "$rc" = 0 ] || fail "the installed server exited $rc after SIGTERM"
CHECKS=$((CHECKS + 1))

done_ok
