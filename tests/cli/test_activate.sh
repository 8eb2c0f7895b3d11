#!/bin/sh
# Health-gated activation (docs/install.md "Activation"): `airpack install
# --activate` and `airpack activate` with tests/cli/supervisor.sh as the
# service manager, which starts each unit's ExecStart as a real process: the
# real demo server (tools/demo-server, llama.cpp) on 127.0.0.1, so health and
# /v1/models go over real sockets. Cases: healthy -> current; never healthy
# -> rollback and the previous release serving; serving the wrong model ->
# rollback; killed mid-activation -> the next run finishes it; a first
# install that never gets healthy is stopped.
. "$AIRPACK_SRC/tests/cli/lib.sh"

SRV="$AIRPACK_BIN/demo-runtime/bin/llama-server"
LLAMA_DIR=${AIRPACK_LLAMA_DIR:-/opt/airpack/node-llama-cpp-3.21.1}
if [ ! -x "$SRV" ]; then
    [ -f "$LLAMA_DIR/.complete" ] && fail "llama.cpp's libraries are in '$LLAMA_DIR' but '$SRV' was not built"
    echo "SKIP: the demo server is not built (llama.cpp's npm libraries are absent; scripts/setup.sh installs them)"
    exit 0
fi
command -v curl >/dev/null || fail "curl is missing (scripts/setup.sh installs it)"

export AIRPACK_SYSTEMD_DIR="$T/systemd" SUPERVISOR_STATE="$T/sv"
export AIRPACK_SERVICE_MANAGER="sh $AIRPACK_SRC/tests/cli/supervisor.sh"
mkdir -p "$AIRPACK_SYSTEMD_DIR" "$SUPERVISOR_STATE"
UNIT=airpack-demo-assistant-llama-server.service
# stop every server this test started, by its pid file
trap 'for f in "$SUPERVISOR_STATE"/*.pid; do [ -f "$f" ] && sh "$AIRPACK_SRC/tests/cli/supervisor.sh" stop "$(basename "$f" .pid)"; done 2>/dev/null; rm -rf "$T"' EXIT INT TERM

PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"

# The demo with the real server as its runtime, on a free port.
mkdir -p "$T/demo"
cp "$AIRPACK_SRC/manifests/demo.yaml" "$T/demo/demo.yaml"
"$AIRPACK_GEN_DIR/mkdemo" --runtime "$AIRPACK_BIN/demo-runtime" "$T/demo/demo" >/dev/null
sed -i "s/127.0.0.1:8080/127.0.0.1:$PORT/" "$T/demo/demo.yaml"
"$AIRPACK" keygen --public-key "$T/k.pub" --secret-key "$T/k.key" --no-password --quiet
release() { # SEQ VERSION SED-EXPRESSION...: build $T/rSEQ.tar
    seq=$1 ver=$2
    shift 2
    sed -e "s/^  version: 1.0.0/  version: $ver/" -e "s/^  sequence: 1\$/  sequence: $seq/" "$@" \
        "$T/demo/demo.yaml" >"$T/demo/r$seq.yaml"
    "$AIRPACK" build "$T/demo/r$seq.yaml" --secret-key "$T/k.key" --output "$T/r$seq.tar" >"$T/build.out" 2>&1 ||
        fail "build r$seq: $(cat "$T/build.out")"
}
release 1 1.0.0 -e 's/^      context: 2048/      context: 2048/'
release 2 1.1.0 -e 's/^      context: 2048/      context: 1024/'
# never healthy: the server refuses an argument and exits
release 3 1.2.0 -e 's/args: \[--offline, --no-webui\]/args: [--offline, --no-webui, --frobnicate]/'
# healthy, but /v1/models names another model
release 4 1.3.0 -e 's/args: \[--offline, --no-webui\]/args: [--offline, --no-webui, --alias, gpt-4o]/'
# the manifest overrides the health probe
release 5 1.4.0 -e 's/^      context: 2048/      context: 512/' -e 's|^    listen: \(.*\)$|    listen: \1\n    health: /v1/models|'
P="$T/prefix"
N=demo-assistant
served() { curl -sf --max-time 5 "$URL/v1/models"; }
current() { readlink "$P/current/$N"; }
record() { # RELEASE -> the activation record of that release's install.json
    /usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["activation"]))' \
        "$P/.airpack/receipts/$N/$1/install.json"
}

# ---- healthy: the first release becomes current and serves
run "$AIRPACK" install "$T/r1.tar" -k "$T/k.pub" -p "$P" --activate --activate-timeout 60
expect_rc 0
expect_out "installed $N 1.0.0+1"
expect_out "activated $N 1.0.0+1"
expect_out "$UNIT: healthy at $URL, /v1/models names 'tiny-chat'"
expect_err "activate: $AIRPACK_SERVICE_MANAGER restart $UNIT"
[ "$(readlink "$AIRPACK_SYSTEMD_DIR/$UNIT")" = "$(cd "$P" && pwd -P)/current/$N/systemd/$UNIT" ] ||
    fail "unit link: $(readlink "$AIRPACK_SYSTEMD_DIR/$UNIT")"
served | grep -q '"id":"tiny-chat"' || fail "release 1 does not serve"
grep -q "^daemon-reload$" "$SUPERVISOR_STATE/calls.log" || fail "no daemon-reload"
record 1.0.0+1 | grep -q '"result": "ok"' || fail "record of 1.0.0+1: $(record 1.0.0+1)"

# ---- healthy upgrade: 1.1.0 replaces it (the server restarted with -c 4096)
run "$AIRPACK" install "$T/r2.tar" -k "$T/k.pub" -p "$P" -q --activate --activate-timeout 60
expect_rc 0
expect_out "activated $N 1.1.0+2"
[ "$(current)" = "../releases/$N/1.1.0+2" ] || fail "current $(current)"
PID2=$(cat "$SUPERVISOR_STATE/$UNIT.pid")
tr '\0' ' ' <"/proc/$PID2/cmdline" | grep -q -- "-c 4096 " || fail "release 2's server runs $(tr '\0' ' ' <"/proc/$PID2/cmdline")"

# ---- never healthy: rollback to 1.1.0, which serves again
run "$AIRPACK" install "$T/r3.tar" -k "$T/k.pub" -p "$P" -q --activate --activate-timeout 2
expect_rc 1
expect_out "installed $N 1.2.0+3"
expect_err "error: activation of '$N' 1.2.0+3 failed at health: $URL/health did not answer 200 within 2 s"
expect_err "rolled back to 1.1.0+2, which serves again"
[ "$(current)" = "../releases/$N/1.1.0+2" ] || fail "after a failed activation current is $(current)"
served | grep -q '"id":"tiny-chat"' || fail "the previous release does not serve after the rollback"
curl -sf --max-time 5 "$URL/health" >/dev/null || fail "the previous release is not healthy"
PID=$(cat "$SUPERVISOR_STATE/$UNIT.pid")
tr '\0' ' ' <"/proc/$PID/cmdline" | grep -q -- "-c 4096 " || fail "not release 2's server after the rollback"
grep -q "unknown option '--frobnicate'" "$SUPERVISOR_STATE/$UNIT.log" || fail "release 3's server did not refuse its flag"
record 1.2.0+3 >"$T/rec3"
/usr/bin/python3 - "$T/rec3" <<'PY' || fail "record of 1.2.0+3: $(cat "$T/rec3")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["result"] == "rolled-back" and r["step"] == "health" and r["release"] == "1.2.0+3", r
assert r["rollback"]["to"] == "1.1.0+2" and r["rollback"]["healthy"] is True, r
assert r["rollback"]["units"][0]["healthy"] is True, r
PY
[ ! -e "$P/.airpack/activating-$N.json" ] || fail "activation marker left behind"

# ---- healthy but serving the wrong model: rollback
run "$AIRPACK" install "$T/r4.tar" -k "$T/k.pub" -p "$P" -q --activate --activate-timeout 60
expect_rc 1
expect_err "failed at models: $URL/v1/models names 'gpt-4o', not the installed model 'tiny-chat'"
expect_err "rolled back to 1.1.0+2, which serves again"
[ "$(current)" = "../releases/$N/1.1.0+2" ] || fail "current $(current)"
served | grep -q '"id":"tiny-chat"' || fail "the previous release does not serve"

# the audit report and the log carry the activations
run "$AIRPACK" audit --installed "$P"
expect_rc 0
expect_out "last activation: 1.3.0+4 rolled back to 1.1.0+2 (failed at models:"
run "$AIRPACK" audit --installed "$P" --format json
/usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])["deployments"][0]
a = d["activation"]
assert a["last"]["release"] == "1.3.0+4" and a["last"]["result"] == "rolled-back", a
assert a["current"]["result"] == "ok" and a["current"]["release"] == "1.1.0+2", a
' "$OUT" || fail "audit json activation: $OUT"
run "$AIRPACK" audit --installed "$P" --format sarif
expect_rc 0
expect_out "AP-ACTIVATE-FAILED"
expect_out "the last activation, of 1.3.0+4, failed at models"
run "$AIRPACK" audit --installed "$P" --format markdown
expect_rc 0
expect_out "## At the site"
expect_out "| Last activation | 1.3.0+4 rolled back to 1.1.0+2 (failed at models:"
/usr/bin/python3 -c '
import json, sys
l = json.load(open(sys.argv[1]))["activations"]
assert [x["result"] for x in l] == ["ok", "ok", "rolled-back", "rolled-back"], l
' "$P/.airpack/activations/$N.json" || fail "activation log"

# ---- killed mid-activation: the next run finds the marker and finishes
run "$AIRPACK" install "$T/r5.tar" -k "$T/k.pub" -p "$P" -q
expect_rc 0
AIRPACK_TEST_ACTIVATE_KILL=health run "$AIRPACK" activate --prefix "$P" --timeout 60
expect_rc 137
[ -f "$P/.airpack/activating-$N.json" ] || fail "no marker after a killed activation"
run "$AIRPACK" activate --prefix "$P" --timeout 60
expect_rc 0
expect_err "resuming the interrupted activation of 1.4.0+5"
expect_out "activated $N 1.4.0+5 (an interrupted activation taken up)"
[ ! -e "$P/.airpack/activating-$N.json" ] || fail "marker left behind"
[ "$(current)" = "../releases/$N/1.4.0+5" ] || fail "current $(current)"
record 1.4.0+5 | grep -q '"health": "/v1/models"' || fail "the manifest's health probe was not used: $(record 1.4.0+5)"
expect_err "waiting for $URL/v1/models"
sed 's|health: /v1/models|health: v1/models|' "$T/demo/r5.yaml" >"$T/demo/bad.yaml"
run "$AIRPACK" check "$T/demo/bad.yaml"
expect_rc 2
expect_err "'health' must be an HTTP path such as '/health', not 'v1/models'"
PID=$(cat "$SUPERVISOR_STATE/$UNIT.pid")
tr '\0' ' ' <"/proc/$PID/cmdline" | grep -q -- "-c 2048 " || fail "not release 5's server"
# killed after a failure, before the rollback: the next run tries the
# current (failed) release again, then rolls back to the marker's previous
release 6 1.5.0 -e 's/args: \[--offline, --no-webui\]/args: [--offline, --no-webui, --alias, gpt-4o]/'
run "$AIRPACK" install "$T/r6.tar" -k "$T/k.pub" -p "$P" -q
expect_rc 0
AIRPACK_TEST_ACTIVATE_KILL=rollback run "$AIRPACK" activate --prefix "$P" --timeout 60
expect_rc 137
[ "$(current)" = "../releases/$N/1.5.0+6" ] || fail "current $(current)"
run "$AIRPACK" activate --prefix "$P" --timeout 60
expect_rc 1
expect_err "resuming the interrupted activation of 1.5.0+6"
expect_err "rolled back to 1.4.0+5, which serves again"
[ "$(current)" = "../releases/$N/1.4.0+5" ] || fail "current $(current)"
[ ! -e "$P/.airpack/activating-$N.json" ] || fail "marker left behind"
served | grep -q '"id":"tiny-chat"' || fail "1.4.0+5 does not serve"

# ---- a first install that never gets healthy: stopped, left inactive
P2="$T/prefix2"
run "$AIRPACK" install "$T/r3.tar" -k "$T/k.pub" -p "$P2" -q --activate --activate-timeout 2
expect_rc 1
expect_err "no previous release: the service is stopped"
sh "$AIRPACK_SRC/tests/cli/supervisor.sh" is-active "$UNIT" && fail "the failed service still runs"
[ "$(readlink "$P2/current/$N")" = "../releases/$N/1.2.0+3" ] || fail "first install: current"

# ---- usage
run "$AIRPACK" activate
expect_rc 2
expect_err "no --prefix given"
run "$AIRPACK" activate --prefix "$P" --timeout abc
expect_rc 2
run "$AIRPACK" activate --prefix "$T/none"
expect_rc 2
run "$AIRPACK_VERIFY" install "$T/r5.tar" -k "$T/k.pub" -p "$P" --activate
expect_rc 2
expect_err "airpack-verify does not activate"
done_ok
