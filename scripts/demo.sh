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

# zstd: the runtime's shared libraries compress well (9.8 MB -> 3.5 MB)
step "airpack build --compress zstd -> $W/demo-assistant.airpack"
$A build manifests/demo.yaml --secret-key "$W/demo.key" --output "$W/demo-assistant.airpack" \
    --compress zstd

step "airpack verify"
$A verify "$W/demo-assistant.airpack" --public-key "$W/demo.pub"

step "airpack install --prefix $W/prefix"
$A install "$W/demo-assistant.airpack" --public-key "$W/demo.pub" --prefix "$W/prefix"
$A list --prefix "$W/prefix"

step "airpack audit --installed $W/prefix"
$A audit --installed "$W/prefix"
$A audit --installed "$W/prefix" --format html --output "$W/audit-report.html"
echo "HTML audit report: $W/audit-report.html"

serve() { # the installed server, started as its unit's ExecStart says
    P=$W/prefix
    SPEC=$W/launch.txt
    step "airpack units --prefix $W/prefix   (the service unit install wrote)"
    $A units --prefix "$P" demo-assistant | grep -E '^(ExecStart|EnvironmentFile|User|DynamicUser|IPAddress|Restart)='
    # The same launch spec as JSON (argv, env, working directory, listen,
    # health), turned into one item a line: cwd, listen, health, the
    # environment, "--", argv. Started like systemd would: exactly argv,
    # no shell, the spec's environment plus PATH, in its working directory.
    $A units --prefix "$P" demo-assistant --format json >"$W/units.json"
    node - "$W/units.json" >"$SPEC" <<'JS'
const fs = require("fs");
const doc = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const u = doc.units.find((x) => x.runtime === "llama-server");
if (!u) { console.error("demo: no unit for the runtime llama-server"); process.exit(1); }
const env = Object.entries(u.env || {}).map(([k, v]) => k + "=" + v);
const items = [u.working_directory, u.listen, u.health].concat(env, ["--"], u.argv);
if (items.some((s) => typeof s !== "string" || /[\n\r]/.test(s))) process.exit(1);
process.stdout.write(items.join("\n") + "\n");
JS
    { read -r CWD; read -r LISTEN; read -r HEALTH; } <"$SPEC"
    # env -i PATH=... VAR=VALUE... PROGRAM ARGS...: nothing else leaks in
    set -- env -i PATH=/usr/bin:/bin
    n=0
    inargv=0
    while IFS= read -r w; do
        n=$((n + 1))
        [ $n -gt 3 ] || continue
        if [ $inargv = 0 ] && [ "$w" = "--" ]; then inargv=1; else set -- "$@" "$w"; fi
    done <"$SPEC"
    step "starting the installed server in the foreground (ExecStart above, in $CWD)"
    (cd "$CWD" && exec "$@") >"$W/server.log" 2>&1 &
    SPID=$!
    echo "server pid $SPID, log $W/server.log; waiting for http://$LISTEN$HEALTH"
    i=0
    until [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://$LISTEN$HEALTH")" = 200 ]; do
        if ! kill -0 "$SPID" 2>/dev/null; then
            cat "$W/server.log" >&2
            echo "demo: the server exited (is $LISTEN in use?)" >&2
            return 1
        fi
        i=$((i + 1))
        if [ $i -ge 600 ]; then
            kill "$SPID"
            echo "demo: $HEALTH not ok within 60 s" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "GET $HEALTH: $(curl -s -m 30 "http://$LISTEN$HEALTH")"
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

serve

printf '\ndemo done: everything is in %s\n' "$W"
