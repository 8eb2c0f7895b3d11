#!/bin/sh
# airpack push / pull / install oci:// / export against a real registry
# (Debian's docker-registry: CNCF Distribution 2.8) started on 127.0.0.1 with
# a temporary config and storage, and against tests/registry/evil_registry.py
# (a registry that lies). skopeo reads and copies what airpack wrote.
set -eu
: "${AIRPACK:?}" "${AIRPACK_GEN_DIR:?}" "${AIRPACK_SRC:?}"
T=$(mktemp -d "${TMPDIR:-/tmp}/airpack-registry.XXXXXX")
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$p" 2>/dev/null || true
    done
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL [test_registry]: $*" >&2; [ -f "$T/err" ] && head -c 3000 "$T/err" >&2; exit 1; }
CHECKS=0
ok() { CHECKS=$((CHECKS + 1)); }

REGISTRY=$(command -v docker-registry || true)
[ -n "$REGISTRY" ] || fail "docker-registry is not installed (scripts/setup.sh installs it)"
command -v skopeo >/dev/null || fail "skopeo is not installed (scripts/setup.sh installs it)"
command -v htpasswd >/dev/null || fail "htpasswd is not installed (scripts/setup.sh: apache2-utils)"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_registry NAME [AUTH]: a registry with its own storage; sets PORT
start_registry() {
    PORT=$(free_port)
    mkdir -p "$T/$1/store"
    cat >"$T/$1/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: "$T/$1/store"
  delete:
    enabled: true
http:
  addr: "127.0.0.1:$PORT"
EOF
    [ -z "${3:-}" ] || printf '  tls:\n    certificate: "%s"\n    key: "%s"\n' "$3/cert.pem" "$3/key.pem" \
        >>"$T/$1/config.yml"
    [ -z "${2:-}" ] || printf 'auth:\n  htpasswd:\n    realm: test\n    path: "%s"\n' "$2" \
        >>"$T/$1/config.yml"
    # (REGISTRY_* variables configure the registry itself: not ours)
    env -u REGISTRY_AUTH_FILE "$REGISTRY" serve "$T/$1/config.yml" >"$T/$1/log" 2>&1 &
    RPID=$!
    PIDS="$PIDS $RPID"
    i=0
    until python3 - "$PORT" <<'PY' 2>/dev/null
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.5).close()
PY
    do
        i=$((i + 1))
        [ $i -lt 100 ] && kill -0 "$RPID" 2>/dev/null ||
            fail "registry $1 did not start: $(cat "$T/$1/log")"
        sleep 0.1
    done
}

blobs_in() { find "$T/$1/store/docker/registry/v2/blobs" -name data 2>/dev/null | sort; }

"$AIRPACK_GEN_DIR/mkhostile" "$T/g" >/dev/null
G=$T/g
K=$G/trusted.pub
export REGISTRY_AUTH_FILE="$T/no-auth.json"

start_registry plain
R=127.0.0.1:$PORT

# push, then pull: byte-identical
"$AIRPACK" push "$G/good.tar" "oci://$R/site/chat:1.0.0" --insecure-registry -q >"$T/out" 2>"$T/err" ||
    fail "push"
DIGEST=$(tail -n 1 "$T/out")
case "$DIGEST" in sha256:????????????????????????????????????????????????????????????????) ;;
*) fail "push did not print the manifest digest: $(cat "$T/out")" ;; esac
ok
"$AIRPACK" pull "oci://$R/site/chat:1.0.0" --insecure-registry -o "$T/pulled.tar" -k "$K" -q \
    >"$T/out" 2>"$T/err" || fail "pull"
cmp "$G/good.tar" "$T/pulled.tar" || fail "pulled bundle differs from the pushed one"
ok
"$AIRPACK" pull "oci://$R/site/chat@$DIGEST" --insecure-registry -o "$T/pulled2.tar" -q \
    >/dev/null 2>"$T/err" || fail "pull by digest"
cmp "$G/good.tar" "$T/pulled2.tar" || fail "pull by digest differs"
"$AIRPACK" verify "$T/pulled.tar" -k "$K" -q >/dev/null 2>"$T/err" || fail "verify the pulled bundle"
ok
# a compressed bundle: its content goes up, pull gives the tar inside
"$AIRPACK" push "$G/good.tar.zst" "oci://$R/site/chat:zst" --insecure-registry -q >/dev/null \
    2>"$T/err" || fail "push zstd"
"$AIRPACK" pull "oci://$R/site/chat:zst" --insecure-registry -o "$T/zst.tar" -q >/dev/null \
    2>"$T/err" || fail "pull zstd"
zstd -dc "$G/good.tar.zst" | cmp - "$T/zst.tar" || fail "pull of a zstd bundle is not its tar"
ok
# a co-signed bundle: every signature entry travels; the co-signer's key alone installs
"$AIRPACK" sign "$G/good.tar" --secret-key "$G/other.key" --output "$T/cosigned.tar" -q \
    </dev/null >/dev/null 2>"$T/err" || fail "co-sign"
"$AIRPACK" push "$T/cosigned.tar" "oci://$R/site/chat:cosigned" --insecure-registry -q >/dev/null \
    2>"$T/err" || fail "push a co-signed bundle"
"$AIRPACK" pull "oci://$R/site/chat:cosigned" --insecure-registry -o "$T/cos.tar" -q \
    -k "$G/other.pub" >/dev/null 2>"$T/err" || fail "pull a co-signed bundle"
cmp "$T/cosigned.tar" "$T/cos.tar" || fail "co-signed bundle not byte-identical"
"$AIRPACK" install "oci://$R/site/chat:cosigned" --insecure-registry -k "$G/other.pub" \
    --prefix "$T/pcos" -q >/dev/null 2>"$T/err" || fail "install with the co-signer's key"
ok
# a site trust file needing both signatures (docs/trust.md): the co-signed
# release installs from the registry, the singly signed one is refused
{
    "$AIRPACK" trust init "$T/trust.json" --expires 2099-01-01 --bundles-threshold 2 \
        --root-threshold 1 &&
        "$AIRPACK" trust add-key "$T/trust.json" -k "$K" --name build --role bundles &&
        "$AIRPACK" trust add-key "$T/trust.json" -k "$G/other.pub" --name other --role bundles &&
        "$AIRPACK" trust add-key "$T/trust.json" -k "$G/untrusted.pub" --name root --role root &&
        "$AIRPACK" trust sign "$T/trust.json" --secret-key "$G/untrusted.key" </dev/null
} >/dev/null 2>"$T/err" || fail "make a trust file"
set +e
"$AIRPACK" install "oci://$R/site/chat:1.0.0" --insecure-registry --trust "$T/trust.json" \
    --prefix "$T/ptrust" -q >/dev/null 2>"$T/err"; rc=$?
set -e
[ "$rc" = 1 ] || fail "one signature of two required: exit $rc"
"$AIRPACK" install "oci://$R/site/chat:cosigned" --insecure-registry --trust "$T/trust.json" \
    --prefix "$T/ptrust" -q >/dev/null 2>"$T/err" || fail "install co-signed with a trust file"
ok

# install straight from the registry, on another prefix; digest recorded
"$AIRPACK" install "oci://$R/site/chat@$DIGEST" --insecure-registry -k "$K" --prefix "$T/p1" -q \
    >"$T/out" 2>"$T/err" || fail "install from the registry"
grep -q "^installed chat-assistant 1.0.0+5" "$T/out" || fail "install output: $(cat "$T/out")"
REC=$T/p1/.airpack/receipts/chat-assistant/1.0.0+5/install.json
grep -q "\"oci_digest\": \"$DIGEST\"" "$REC" || fail "install record lacks the digest"
(cd "$T/p1/current/chat-assistant" && sha256sum -c --quiet SHA256SUMS) || fail "installed files"
ok
# airpack-verify has no network code
if [ -n "${AIRPACK_VERIFY:-}" ]; then
    set +e
    "$AIRPACK_VERIFY" install "oci://$R/site/chat:1.0.0" -k "$K" --prefix "$T/pv" -q >/dev/null \
        2>"$T/err"; rc=$?
    set -e
    [ "$rc" = 2 ] && grep -q "airpack pull" "$T/err" && [ ! -e "$T/pv" ] ||
        fail "airpack-verify install oci://: exit $rc"
    ok
fi
# wrong key: refused before anything is written
set +e
"$AIRPACK" install "oci://$R/site/chat:1.0.0" --insecure-registry -k "$G/untrusted.pub" \
    --prefix "$T/p2" -q >/dev/null 2>"$T/err"; rc=$?
set -e
[ "$rc" = 1 ] || fail "install with an untrusted key: exit $rc"
[ ! -e "$T/p2" ] || fail "a refused install created the prefix"
ok
# plain HTTP only with --insecure-registry
set +e
"$AIRPACK" pull "oci://$R/site/chat:1.0.0" -o "$T/x.tar" -q >/dev/null 2>"$T/err"; rc=$?
set -e
[ "$rc" = 2 ] && [ ! -e "$T/x.tar" ] || fail "pull over https from a plain registry: exit $rc"
ok

# bundles pull could not give back byte for byte are refused before any tag
cp "$G/good.tar" "$T/trailing.tar" && printf x >>"$T/trailing.tar"
mkdir -p "$T/x" && tar -xf "$G/good.tar" -C "$T/x"
(cd "$T/x" && tar --format=pax -cf "$T/gnutar.tar" $(tar -tf "$G/good.tar"))
for b in trailing gnutar; do
    set +e
    "$AIRPACK" push "$T/$b.tar" "oci://$R/site/chat:$b" --insecure-registry -q >/dev/null \
        2>"$T/err"; rc=$?
    set -e
    [ "$rc" = 1 ] && grep -q "byte-identical" "$T/err" || fail "push of $b.tar: exit $rc"
    set +e
    "$AIRPACK" pull "oci://$R/site/chat:$b" --insecure-registry -o "$T/n.tar" -q >/dev/null 2>&1
    rc=$?
    set -e
    [ "$rc" = 2 ] || fail "a refused push ($b) left a tag"
done
ok

# another repository of the same registry: blobs mounted, none uploaded
"$AIRPACK" push "$G/good.tar" "oci://$R/site/other:1" --insecure-registry --mount-from site/chat \
    -q >"$T/out" 2>"$T/err" || fail "push with --mount-from"
grep -q ": 0 blobs uploaded" "$T/out" || fail "mount: $(cat "$T/out")"
"$AIRPACK" pull "oci://$R/site/other:1" --insecure-registry -o "$T/mounted.tar" -q >/dev/null \
    2>"$T/err" && cmp "$G/good.tar" "$T/mounted.tar" || fail "pull what was mounted"
ok

# a second push of a release sharing the model uploads only new blobs
blobs_in plain >"$T/before"
"$AIRPACK" push "$G/good-v6.tar" "oci://$R/site/chat:1.1.0" --insecure-registry -q >"$T/out" \
    2>"$T/err" || fail "second push"
blobs_in plain >"$T/after"
NEW=$(comm -13 "$T/before" "$T/after" | wc -l)
SENT=$(sed -n 's/.*: \([0-9]*\) blobs uploaded.*/\1/p' "$T/out")
# new storage entries = uploaded blobs + the new manifests (index, bundle manifest)
[ -n "$SENT" ] && [ "$NEW" -eq $((SENT + 2)) ] ||
    fail "second push: $NEW new blobs in storage, push says $SENT uploaded: $(cat "$T/out")"
MODEL_SHA=$(tar xOf "$G/good-v6.tar" SHA256SUMS |
    awk '/payload\/models\/tiny\/model.gguf/ {print $1}')
grep -q "/$MODEL_SHA/data" "$T/before" || fail "the model blob was not there after the first push"
comm -13 "$T/before" "$T/after" | grep -q "$MODEL_SHA" && fail "the model was uploaded again"
[ "$SENT" -le 3 ] || fail "second push uploaded $SENT blobs (only lock, signature, sums expected)"
ok

# export -> skopeo copy to the registry and back -> pull byte-identical
"$AIRPACK_GEN_DIR/mkdemo" "$T/demo/demo" >/dev/null
cp "$AIRPACK_SRC/manifests/demo.yaml" "$T/demo/demo.yaml"
"$AIRPACK" keygen --public-key "$T/demo/k.pub" --secret-key "$T/demo/k.key" --no-password >/dev/null
"$AIRPACK" build "$T/demo/demo.yaml" --secret-key "$T/demo/k.key" --output "$T/demo/b.tar" --quiet \
    >/dev/null 2>"$T/err" || fail "build the demo bundle"
"$AIRPACK" export "$T/demo/b.tar" --oci-layout "$T/layout" --tag v1 -q >"$T/out" 2>"$T/err" ||
    fail "export"
[ -f "$T/layout/oci-layout" ] && [ -f "$T/layout/index.json" ] || fail "export: no layout"
timeout 120 skopeo copy --all --dest-tls-verify=false "oci:$T/layout:v1" \
    "docker://$R/site/demo:v1" >/dev/null 2>"$T/err" || fail "skopeo copy to the registry"
timeout 60 skopeo inspect --raw --tls-verify=false "docker://$R/site/demo:v1" >"$T/index.json" \
    2>"$T/err" || fail "skopeo inspect the index"
MODEL_DIGEST=$(python3 - "$T/index.json" <<'PY'
import json, sys
i = json.load(open(sys.argv[1]))
assert i["mediaType"] == "application/vnd.oci.image.index.v1+json", i
kinds = {m["annotations"]["org.airpack.kind"]: m for m in i["manifests"]}
assert set(kinds) == {"bundle", "model"}, kinds
print(kinds["model"]["digest"])
PY
) || fail "the index as skopeo reads it"
timeout 60 skopeo inspect --raw --tls-verify=false "docker://$R/site/demo@$MODEL_DIGEST" \
    >"$T/model.json" 2>"$T/err" || fail "skopeo inspect the model artifact"
MCFG=$(python3 - "$T/model.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json", m
assert m["artifactType"] == "application/vnd.cncf.model.manifest.v1+json", m
assert m["config"]["mediaType"] == "application/vnd.cncf.model.config.v1+json", m
l = m["layers"][0]
assert l["mediaType"] == "application/vnd.cncf.model.weight.v1.raw", l
assert l["annotations"]["org.cncf.model.filepath"] == "tiny-chat.gguf", l
print(m["config"]["digest"])
PY
) || fail "the ModelPack manifest: $(cat "$T/model.json")"
python3 - "$T/layout/blobs/sha256/${MCFG#sha256:}" "$T/model.json" <<'PY' || fail "ModelPack config"
import json, re, sys
c = json.load(open(sys.argv[1])); m = json.load(open(sys.argv[2]))
assert c["descriptor"]["name"] == "tiny-chat", c
assert c["config"]["format"] == "gguf" and c["config"]["architecture"] == "llama", c
assert re.fullmatch(r"[0-9]+(\.[0-9])?[KMBTQ]", c["config"]["paramSize"]), c
assert c["modelfs"] == {"type": "layers", "diff_ids": [l["digest"] for l in m["layers"]]}, c
PY
ok
timeout 120 skopeo copy --all --src-tls-verify=false "docker://$R/site/demo:v1" "oci:$T/back:v1" \
    >/dev/null 2>"$T/err" || fail "skopeo copy back from the registry"
"$AIRPACK" pull "oci://$R/site/demo:v1" --insecure-registry -k "$T/demo/k.pub" -o "$T/demo.tar" -q \
    >/dev/null 2>"$T/err" || fail "pull what skopeo copied"
cmp "$T/demo/b.tar" "$T/demo.tar" || fail "skopeo round trip changed the bundle"
for f in "$T"/layout/blobs/sha256/*; do
    cmp "$f" "$T/back/blobs/sha256/$(basename "$f")" 2>/dev/null ||
        [ "$(basename "$f")" = "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"][7:])' "$T/layout/index.json")" ] ||
        fail "skopeo round trip changed blob $(basename "$f")"
done
ok

# TLS: a registry with a certificate only --ca-file trusts
mkdir -p "$T/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout "$T/tls/key.pem" -out "$T/tls/cert.pem" -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 || fail "openssl: test certificate"
start_registry tls "" "$T/tls"
RT=127.0.0.1:$PORT
set +e
"$AIRPACK" push "$G/good.tar" "oci://$RT/site/chat:1" -q >/dev/null 2>"$T/err"; rc=$?
set -e
[ "$rc" = 2 ] || fail "push to an untrusted certificate: exit $rc"
"$AIRPACK" push "$G/good.tar" "oci://$RT/site/chat:1" --ca-file "$T/tls/cert.pem" -q >/dev/null \
    2>"$T/err" || fail "push over TLS with --ca-file"
"$AIRPACK" install "oci://$RT/site/chat:1" --ca-file "$T/tls/cert.pem" -k "$K" --prefix "$T/ptls" \
    -q >/dev/null 2>"$T/err" || fail "install over TLS with --ca-file"
set +e
"$AIRPACK" pull "oci://$RT/site/chat:1" --insecure-registry -o "$T/t.tar" -q >/dev/null 2>"$T/err"
rc=$?
set -e
[ "$rc" = 2 ] || fail "plain HTTP to a TLS registry: exit $rc"
ok

# basic auth (htpasswd): valid and invalid credentials
htpasswd -Bbn pusher s3cret >"$T/htpasswd" 2>/dev/null
start_registry authed "$T/htpasswd"
RA=127.0.0.1:$PORT
printf '{"auths":{"%s":{"auth":"%s"}}}' "$RA" "$(printf pusher:s3cret | base64)" >"$T/auth-ok.json"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$RA" "$(printf pusher:wrong | base64)" >"$T/auth-bad.json"
REGISTRY_AUTH_FILE=$T/auth-ok.json "$AIRPACK" push "$G/good.tar" "oci://$RA/site/chat:1" \
    --insecure-registry -q >/dev/null 2>"$T/err" || fail "push with valid credentials"
REGISTRY_AUTH_FILE=$T/auth-ok.json "$AIRPACK" install "oci://$RA/site/chat:1" --insecure-registry \
    -k "$K" --prefix "$T/p3" -q >/dev/null 2>"$T/err" || fail "install with valid credentials"
ok
# the same credentials from ~/.docker/config.json (no REGISTRY_AUTH_FILE)
mkdir -p "$T/home/.docker"
cp "$T/auth-ok.json" "$T/home/.docker/config.json"
env -u REGISTRY_AUTH_FILE -u XDG_RUNTIME_DIR -u DOCKER_CONFIG HOME="$T/home" "$AIRPACK" pull \
    "oci://$RA/site/chat:1" --insecure-registry -o "$T/home.tar" -q >/dev/null 2>"$T/err" ||
    fail "pull with credentials from ~/.docker/config.json"
cmp "$G/good.tar" "$T/home.tar" || fail "pull with docker credentials: not identical"
ok
for a in bad none; do
    set +e
    REGISTRY_AUTH_FILE=$T/auth-$a.json "$AIRPACK" push "$G/good-v6.tar" "oci://$RA/site/chat:2" \
        --insecure-registry -q >/dev/null 2>"$T/err"; rc=$?
    set -e
    [ "$rc" = 1 ] || fail "push with $a credentials: exit $rc"
    grep -Eq "authentication failed|asks for credentials" "$T/err" || fail "auth message ($a)"
    set +e
    REGISTRY_AUTH_FILE=$T/auth-$a.json "$AIRPACK" pull "oci://$RA/site/chat:1" --insecure-registry \
        -o "$T/y.tar" -q >/dev/null 2>"$T/err"; rc=$?
    set -e
    [ "$rc" = 1 ] && [ ! -e "$T/y.tar" ] || fail "pull with $a credentials: exit $rc"
    ok
done

# a registry that lies: every lie refused, the prefix unchanged
"$AIRPACK" export "$G/good.tar" --oci-layout "$T/evil" --tag 1.0.0 -q >/dev/null 2>"$T/err" ||
    fail "export for the evil registry"
"$AIRPACK" install "$G/good-v4.tar" -k "$K" --prefix "$T/pe" -q >/dev/null 2>"$T/err" ||
    fail "install the baseline"
snapshot() { (cd "$T/pe" && find . -path ./.airpack/lock -prune -o -print | sort && cat current/*/SHA256SUMS); }
snapshot >"$T/snap0"
evil() { # evil MODE: start the lying registry; sets EP
    rm -f "$T/evil.port"
    python3 "$AIRPACK_SRC/tests/registry/evil_registry.py" "$T/evil" "$1" "$T/evil.port" \
        2>"$T/evil.log" &
    EPID=$!
    PIDS="$PIDS $EPID"
    i=0
    until [ -s "$T/evil.port" ]; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "evil registry did not start: $(cat "$T/evil.log")"
        sleep 0.1
    done
    EP=127.0.0.1:$(cat "$T/evil.port")
}
stop_evil() { kill "$EPID" 2>/dev/null || true; wait "$EPID" 2>/dev/null || true; }
for mode in tamper truncated long extra-layer wrong-size wrong-digest bad-lock foreign-index; do
    evil "$mode"
    set +e
    timeout 60 "$AIRPACK" install "oci://$EP/site/chat:1.0.0" --insecure-registry -k "$K" \
        --prefix "$T/pe" -q >"$T/out" 2>"$T/err"; rc=$?
    set -e
    [ "$rc" = 1 ] || fail "evil registry ($mode): install exited $rc: $(cat "$T/err")"
    snapshot | cmp -s - "$T/snap0" || fail "evil registry ($mode) changed the prefix"
    set +e
    timeout 60 "$AIRPACK" pull "oci://$EP/site/chat:1.0.0" --insecure-registry -k "$K" \
        -o "$T/evil.tar" -q >/dev/null 2>"$T/err2"; rc=$?
    set -e
    stop_evil
    [ "$rc" = 1 ] && [ ! -e "$T/evil.tar" ] || fail "evil registry ($mode): pull exited $rc: $(cat "$T/err2")"
    case $mode in
    tamper) grep -q "sha256" "$T/err" || fail "tamper message: $(cat "$T/err")" ;;
    truncated) grep -q "truncated" "$T/err" || fail "truncated message: $(cat "$T/err")" ;;
    extra-layer) grep -q "extra layer" "$T/err" || fail "extra-layer message: $(cat "$T/err")" ;;
    bad-lock) grep -qi "signature" "$T/err" || fail "bad-lock message: $(cat "$T/err")" ;;
    esac
    ok
done
# blobs behind redirects (object storage)
evil redirect
timeout 60 "$AIRPACK" pull "oci://$EP/site/chat:1.0.0" --insecure-registry -k "$K" -o "$T/r.tar" -q \
    >/dev/null 2>"$T/err" || fail "pull through redirects"
stop_evil
cmp "$G/good.tar" "$T/r.tar" || fail "pull through redirects: not identical"
ok
# an honest server, and the bearer-token flow
evil token
printf '{"auths":{"%s":{"auth":"%s"}}}' "$EP" "$(printf user:secret | base64)" >"$T/auth-evil.json"
REGISTRY_AUTH_FILE=$T/auth-evil.json timeout 60 "$AIRPACK" install "oci://$EP/site/chat:1.0.0" \
    --insecure-registry -k "$K" --prefix "$T/pe" -q >/dev/null 2>"$T/err" ||
    fail "install through the bearer-token flow"
set +e
timeout 60 "$AIRPACK" pull "oci://$EP/site/chat:1.0.0" --insecure-registry -o "$T/z.tar" -q \
    >/dev/null 2>"$T/err"; rc=$?
set -e
stop_evil
[ "$rc" = 1 ] || fail "token flow without credentials: exit $rc"
ok

echo "test_registry: $CHECKS checks passed"
