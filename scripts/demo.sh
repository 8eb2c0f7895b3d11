#!/bin/sh
# Set up, build and run the main job on the shipped demo manifest:
#   check (facts, VRAM plan, policies; HTML report), keygen, build a signed
#   bundle, verify it, install it into a temporary prefix, audit the install,
#   then start the installed inference server (a real llama.cpp server,
#   tools/demo-server) as its signed launch spec says, ask it for its models
#   and one completion, and stop it.
# Everything it writes goes to a temporary folder it names at the end
# (or to $AIRPACK_DEMO_DIR).
set -eu
cd "$(dirname "$0")/.."
AIRPACK_SETUP_MIN=1 sh scripts/setup.sh
JOBS=$(nproc 2>/dev/null || echo 2)
cmake --preset release >/dev/null
cmake --build --preset release -j"$JOBS"
B=build/release
A=$B/airpack
W=${AIRPACK_DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/airpack-demo.XXXXXX")}
mkdir -p "$W"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1764288000}

step() { printf '\n== %s\n' "$*"; }

step "generating the demo's model, runtime and config files (tests/gen/mkdemo)"
# The runtime is the real server tools/demo-server built (bin/ + lib/).
if [ ! -x "$B/demo-runtime/bin/llama-server" ]; then
    echo "demo: $B/demo-runtime/bin/llama-server was not built (llama.cpp's libraries missing? run scripts/setup.sh)" >&2
    exit 1
fi
$B/tests/mkdemo --runtime "$B/demo-runtime" manifests/demo

step "airpack check manifests/demo.yaml   (pins, model facts, VRAM plan, policy packs)"
$A check manifests/demo.yaml
$A check manifests/demo.yaml --format html --output "$W/check-report.html"
echo "HTML report: $W/check-report.html"

step "airpack plan manifests/demo.yaml"
$A plan manifests/demo.yaml

step "airpack keygen (demo key without password)"
$A keygen --public-key "$W/demo.pub" --secret-key "$W/demo.key" --no-password

step "airpack build -> $W/demo-assistant.airpack"
$A build manifests/demo.yaml --secret-key "$W/demo.key" --output "$W/demo-assistant.airpack"

step "airpack verify"
$A verify "$W/demo-assistant.airpack" --public-key "$W/demo.pub"

step "airpack install --prefix $W/prefix"
$A install "$W/demo-assistant.airpack" --public-key "$W/demo.pub" --prefix "$W/prefix"
$A list --prefix "$W/prefix"

step "airpack audit --installed $W/prefix"
$A audit --installed "$W/prefix"
$A audit --installed "$W/prefix" --format html --output "$W/audit-report.html"
echo "HTML audit report: $W/audit-report.html"

serve() { # the installed server, started as its launch spec says
    P=$W/prefix
    R=$P/current/demo-assistant
    SPEC=$W/launch.txt
    # The launch spec, one item a line: its environment, "--", its argv.
    # From the signed lock of the installed release (the "launch" entry of
    # the runtime llama-server), with {release} = PREFIX/current/demo-assistant,
    # which is what the installed unit's ExecStart runs.
    LOCK=$(ls "$P"/.airpack/receipts/demo-assistant/*/airpack.lock.json | tail -n 1)
    rc=0
    node - "$LOCK" "$R" >"$SPEC" <<'JS' || rc=$?
const fs = require("fs");
const [lockPath, release] = process.argv.slice(2);
const lock = JSON.parse(fs.readFileSync(lockPath, "utf8"));
const spec = (lock.launch || []).find((l) => l.runtime === "llama-server");
if (!spec) process.exit(3);
const sub = (s) => String(s).split("{release}").join(release);
const env = Object.entries(spec.env || {}).map(([k, v]) => k + "=" + sub(v));
const argv = spec.argv.map(sub);
if (env.concat(argv).some((s) => /[\n\r]/.test(s))) process.exit(4);
process.stdout.write(env.concat(["--"], argv).join("\n") + "\n");
JS
    if [ $rc -eq 3 ]; then
        # A lock without launch specs (an airpack without issue 10's
        # launch spec): the manifest's flags, written out here.
        echo "(the installed lock has no launch spec: starting the server with the manifest's flags)"
        printf '%s\n' LLAMA_OFFLINE=1 HF_HUB_OFFLINE=1 -- \
            "$R/payload/runtimes/llama-server/bin/llama-server" \
            -m "$R/payload/models/tiny-chat/tiny-chat.gguf" -c 8192 -np 4 -ngl 999 \
            -ctk f16 -ctv f16 --host 127.0.0.1 --port 8080 --offline --no-webui >"$SPEC"
    elif [ $rc -ne 0 ]; then
        echo "demo: cannot read the launch spec from '$LOCK'" >&2
        return 1
    fi
    # env -i PATH=... VAR=VALUE... PROGRAM ARGS...: nothing else leaks in
    set -- env -i PATH=/usr/bin:/bin
    inargv=0
    while IFS= read -r w; do
        if [ $inargv = 0 ] && [ "$w" = "--" ]; then inargv=1; else set -- "$@" "$w"; fi
    done <"$SPEC"
    echo "environment: $(sed -n '/^--$/q;p' "$SPEC" | tr '\n' ' ')"
    echo "ExecStart:   $(sed -n '/^--$/,$p' "$SPEC" | sed 1d | tr '\n' ' ')"
    LISTEN=$(sed -n '/^--$/,$p' "$SPEC" | tr '\n' ' ' | sed -n 's/.*--host \([^ ]*\) --port \([0-9]*\).*/\1:\2/p')
    "$@" >"$W/server.log" 2>&1 &
    SPID=$!
    echo "server pid $SPID, log $W/server.log; waiting for http://$LISTEN/health"
    i=0
    until [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://$LISTEN/health")" = 200 ]; do
        if ! kill -0 "$SPID" 2>/dev/null; then
            cat "$W/server.log" >&2
            echo "demo: the server exited" >&2
            return 1
        fi
        i=$((i + 1))
        if [ $i -ge 600 ]; then
            kill "$SPID"
            echo "demo: /health not ok within 60 s" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "GET /v1/models:"
    curl -s -m 30 "http://$LISTEN/v1/models"
    echo
    echo 'POST /v1/completions {"prompt": "The air gap is", "max_tokens": 16}:'
    curl -s -m 120 -H 'Content-Type: application/json' \
        -d '{"prompt": "The air gap is", "max_tokens": 16}' \
        "http://$LISTEN/v1/completions" >"$W/answer.json"
    cat "$W/answer.json"
    echo
    answer=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).choices[0].text)' "$W/answer.json")
    echo "the model's answer (random weights: nonsense, but real tokens):$answer"
    kill -TERM "$SPID"
    rc=0
    wait "$SPID" || rc=$?
    echo "server stopped (SIGTERM, exit $rc)"
    [ $rc -eq 0 ]
}

step "serving: the installed llama.cpp server, started as the signed launch spec says"
serve

printf '\ndemo done: everything is in %s\n' "$W"
