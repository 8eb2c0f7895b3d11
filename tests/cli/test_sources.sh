#!/bin/sh
# test_sources.sh - the one input walk (issue 13, src/source/): every input
# shape goes through both `airpack check` and `airpack build`; whatever
# build refuses, check refuses first with the same message. Shapes: plain
# folders with links, a Hugging Face hub cache (a snapshot path, hf://,
# a hostile link out of the repository's blobs, a tampered LFS blob),
# include/exclude.
. "$AIRPACK_SRC/tests/cli/lib.sh"
G=$AIRPACK_GEN_DIR
cd "$T"
minisign -G -W -p k.pub -s k.key >/dev/null 2>&1 || fail "minisign -G"
mkdir -p w

head_yaml() {
    cat <<EOF
apiVersion: airpack/v1
kind: Deployment
metadata: { name: src-test, version: 1.0.0, sequence: 1 }
target: { site: lab, region: eu-central, gpu: { model: nvidia-l4, count: 1 } }
EOF
}

# model M PATH [EXTRA-YAML-LINES]: a manifest w/NAME.yaml with one model
model_manifest() {
    { head_yaml; echo "models:"; echo "  - name: m"; echo "    path: $2"; if [ $# -ge 3 ]; then printf '%s\n' "$3"; fi; } >"w/$1.yaml"
}

# agree NAME RC-CHECK TEXT: check exits RC with TEXT on stderr or stdout;
# build refuses with the same text (or, for RC 0, writes a bundle).
agree() {
    rm -f "w/$1.tar"
    run "$AIRPACK" check "w/$1.yaml"
    expect_rc "$2"
    c_out="$OUT$ERR"
    case "$c_out" in *"$3"*) ;; *) fail "check $1: lacks '$3': $c_out" ;; esac
    run "$AIRPACK" build "w/$1.yaml" --secret-key k.key --output "w/$1.tar" --quiet
    if [ "$2" = 0 ]; then
        expect_rc 0
        [ -f "w/$1.tar" ] || fail "build $1: no bundle"
    else
        [ "$RC" != 0 ] || fail "build $1 passed what check refused"
        [ ! -e "w/$1.tar" ] || fail "build $1 wrote a bundle"
        expect_err "$3"
        if [ "$2" = 2 ]; then
            # the very same message
            run "$AIRPACK" check "w/$1.yaml"
            c_err=$ERR
            run "$AIRPACK" build "w/$1.yaml" --secret-key k.key --output "w/$1.tar" --quiet
            [ "$c_err" = "$ERR" ] || fail "check and build differ for $1: '$c_err' vs '$ERR'"
        fi
    fi
}

# ---- plain folders ----
mkdir -p w/plain
"$G/mkgguf" --preset tiny w/plain/model.gguf >/dev/null
model_manifest plain plain/
agree plain 0 "passed"
# a path outside the manifest's folder: both refuse it with the same message,
# and both accept it with --allow-outside-paths (check and build take the
# same option, so what check passes build writes)
mkdir -p outside
"$G/mkgguf" --preset tiny outside/model.gguf >/dev/null
model_manifest outabs "$T/outside/model.gguf"
agree outabs 2 "is not allowed (paths are relative to the manifest's folder; see --allow-outside-paths)"
run "$AIRPACK" check w/outabs.yaml --allow-outside-paths
expect_rc 0
run "$AIRPACK" build w/outabs.yaml --secret-key k.key --output w/outabs.tar --quiet --allow-outside-paths
expect_rc 0
run "$AIRPACK" verify w/outabs.tar --public-key k.pub
expect_rc 0
mkdir -p w/linked
"$G/mkgguf" --preset tiny w/linked/real.gguf >/dev/null
ln -s real.gguf w/linked/model.gguf
model_manifest linked linked/
agree linked 2 "'model.gguf' is a symbolic link"

# two inputs that would be the same bundle entry, or an entry and a folder
mkdir -p w/conf/x && echo a >w/conf/a.txt && echo b >w/conf/x/b.txt
{ head_yaml; cat <<EOF
models:
  - { name: m, path: plain/ }
files:
  - { path: conf/a.txt, target: etc/app.conf }
  - { path: conf/x/b.txt, target: etc/app.conf }
EOF
} >w/dupentry.yaml
agree dupentry 2 "two inputs would both be bundle entry 'payload/files/etc/app.conf'"
{ head_yaml; cat <<EOF
models:
  - { name: m, path: plain/ }
files:
  - { path: conf/a.txt, target: etc/x }
  - { path: conf/x/, target: etc/x/ }
EOF
} >w/folderentry.yaml
agree folderentry 2 "bundle entry 'payload/files/etc/x' would also be the folder of 'payload/files/etc/x/b.txt'"

# ---- Hugging Face hub cache ----
mkdir -p w/src1 w/hub
"$G/mkgguf" --preset tiny w/src1/model.gguf >/dev/null
echo '{"architectures": ["LlamaForCausalLM"]}' >w/src1/extra.json
mkdir -p w/src1/sub && echo "note" >w/src1/sub/README.md
REV=$("$G/mksources" hf w/hub acme/tiny w/src1)
SNAP=hub/models--acme--tiny/snapshots/$REV
[ -L "w/$SNAP/model.gguf" ] || fail "fixture: snapshot files are not links"
model_manifest hfsnap "$SNAP/"
agree hfsnap 0 "passed"
# recorded as regular files under their snapshot names, with the revision
tar -tvf w/hfsnap.tar >w/list.txt
grep -q '^-.* payload/models/m/model.gguf$' w/list.txt || fail "hf file not a regular entry: $(cat w/list.txt)"
grep -q ' payload/models/m/sub/README.md$' w/list.txt || fail "hf nested file missing"
tar -xOf w/hfsnap.tar airpack.lock.json >w/lock.json
grep -q "\"revision\": \"$REV\"" w/lock.json || fail "revision not in the lock"
grep -q '"repo": "acme/tiny"' w/lock.json || fail "repo not in the lock"
/usr/bin/python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["analysis"]["pins"][0]["source"]; assert s["refs"] == ["main"], s' w/lock.json ||
    fail "the refs naming the revision are not in the lock"
tar -xOf w/hfsnap.tar sbom.cdx.json >w/sbom.json 2>/dev/null || tar -xOf w/hfsnap.tar $(tar -tf w/hfsnap.tar | grep -i sbom | head -1) >w/sbom.json
grep -q "$REV" w/sbom.json || fail "revision not in the SBOM"
"$AIRPACK" verify w/hfsnap.tar --public-key k.pub >/dev/null || fail "hf bundle does not verify"
"$AIRPACK" install w/hfsnap.tar --public-key k.pub --prefix w/site -q >/dev/null || fail "hf bundle does not install"

# a folder that links to a snapshot is the snapshot (found where it really is)
ln -s "$SNAP" w/tiny-link
model_manifest hflinked tiny-link/
agree hflinked 0 "passed"
tar -xOf w/hflinked.tar airpack.lock.json | grep -q "\"revision\": \"$REV\"" || fail "linked snapshot: revision"
# a single file of a snapshot, and hf:// through HF_HUB_CACHE / HF_HOME
model_manifest hffile "$SNAP/model.gguf"
agree hffile 0 "passed"
model_manifest hfref "hf://acme/tiny"
HF_HUB_CACHE="$T/w/hub" agree hfref 0 "passed"
model_manifest hfrev "hf://acme/tiny@$REV"
mkdir -p w/hfhome && ln -s ../hub w/hfhome/hub
HF_HUB_CACHE= HF_HOME="$T/w/hfhome" agree hfrev 0 "passed"
model_manifest hfmissing "hf://acme/nothere"
HF_HUB_CACHE="$T/w/hub" agree hfmissing 2 "'hf://acme/nothere' is not in the Hugging Face cache"
model_manifest hfbadrev "hf://acme/tiny@v9"
HF_HUB_CACHE="$T/w/hub" agree hfbadrev 2 "revision 'v9' is not in the cache"

# a hostile link out of the repository's blobs
mkdir -p w/src2 w/hub2
"$G/mkgguf" --preset tiny w/src2/model.gguf >/dev/null
REV2=$("$G/mksources" hf w/hub2 evil/repo w/src2 --hostile)
model_manifest hfhostile "hub2/models--evil--repo/snapshots/$REV2/"
agree hfhostile 2 "'evil.json' is a symbolic link to '../../../outside.json', which is outside the repository's blobs folder"
# a link into another repository's blobs is refused as well
ln -s "../../../../hub/models--acme--tiny/blobs/$(basename "$(readlink "w/$SNAP/model.gguf")")" \
    "w/hub2/models--evil--repo/snapshots/$REV2/other.gguf"
rm "w/hub2/models--evil--repo/snapshots/$REV2/evil.json"
agree hfhostile 2 "'other.gguf' is a symbolic link to"

# a tampered LFS blob: its name is its pin
cp -r w/hub w/hub3
BLOB=$(readlink "w/hub3/models--acme--tiny/snapshots/$REV/model.gguf")
"$G/mksources" tamper "w/hub3/models--acme--tiny/snapshots/$REV/model.gguf"
model_manifest hftamper "hub3/models--acme--tiny/snapshots/$REV/"
agree hftamper 1 "file 'hub3/models--acme--tiny/snapshots/$REV/model.gguf' does not match the blob digest"

# ---- an HF folder with original/ and a consolidated file; include/exclude ----
mkdir -p w/src4/original w/hub4
"$G/mksafetensors" --preset tiny --shards 2 w/src4 >/dev/null
cp w/src4/model-00001-of-00002.safetensors w/src4/consolidated.safetensors
head -c 70000 /dev/zero | tr '\0' 'x' >w/src4/original/consolidated.00.pth
echo '{}' >w/src4/original/params.json
REV4=$("$G/mksources" hf w/hub4 meta/llama w/src4)
SNAP4=hub4/models--meta--llama/snapshots/$REV4
model_manifest dup "$SNAP4/"
agree dup 0 "AP-DUPLICATE-WEIGHTS"
run "$AIRPACK" check w/dup.yaml
expect_out "safetensors shards and a consolidated.safetensors"
expect_out 'exclude: ["consolidated.safetensors"]'
expect_out "70000 bytes"
expect_out 'exclude: ["original/"]'
PARAMS_ALL=$("$AIRPACK" check --format json w/dup.yaml | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["manifest"]["models"][0]["facts"]["parameters"])')
model_manifest nodup "$SNAP4/" '    exclude: [original/, consolidated.safetensors]'
agree nodup 0 "passed"
run "$AIRPACK" check w/nodup.yaml
case "$OUT" in *AP-DUPLICATE-WEIGHTS*) fail "warning despite the exclude lines" ;; esac
expect_out "left out 'original/consolidated.00.pth' (70000 bytes, pattern 'original/')"
tar -tf w/nodup.tar >w/list.txt
grep -q 'consolidated' w/list.txt && fail "excluded file shipped: $(cat w/list.txt)"
grep -q 'payload/models/m/model-00002-of-00002.safetensors' w/list.txt || fail "shard missing"
grep -q 'original/' w/list.txt && fail "excluded folder shipped"
tar -xOf w/nodup.tar airpack.lock.json | grep -q 'consolidated.00.pth' || fail "the lock does not say what was left out"
run "$AIRPACK" inspect w/nodup.tar
expect_out "left out by include/exclude: 3 files"
expect_out "original/consolidated.00.pth  (pattern 'original/')"
"$AIRPACK" verify w/nodup.tar --public-key k.pub >/dev/null || fail "nodup does not verify"
PARAMS=$("$AIRPACK" check --format json w/nodup.yaml | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["manifest"]["models"][0]["facts"]["parameters"])')
[ "$PARAMS" = "$PARAMS_ALL" ] || fail "facts changed by excluding copies: $PARAMS vs $PARAMS_ALL"
# airpack pin walks the same files: a pin file without the excluded ones
cp w/nodup.yaml w/pinned.yaml
run "$AIRPACK" pin w/pinned.yaml
expect_rc 0
grep -q consolidated "w/$SNAP4.sha256" && fail "pin: excluded files pinned"
grep -q 'model-00001-of-00002.safetensors' "w/$SNAP4.sha256" || fail "pin: shard not pinned"
echo "    sha256sums: $SNAP4.sha256" >>w/pinned.yaml
agree pinned 0 "passed"
run "$AIRPACK" check --format json w/pinned.yaml
expect_out '"status": "ok"'
# without an index, the facts read every .safetensors: the excluded copy is not read
mkdir -p w/noidx
"$G/mksafetensors" --preset tiny --shards 2 w/noidx >/dev/null
rm w/noidx/model.safetensors.index.json
cp w/noidx/model-00001-of-00002.safetensors w/noidx/consolidated.safetensors
model_manifest noidx noidx/
run "$AIRPACK" check w/noidx.yaml
[ "$RC" != 0 ] || fail "noidx: the copy was not read (test cannot fail)"
model_manifest noidxex noidx/ '    exclude: [consolidated.safetensors]'
agree noidxex 0 "passed"
run "$AIRPACK" plan w/noidxex.yaml
expect_rc 0
# a sub-folder of a snapshot, as a files[] entry
{ head_yaml; cat <<EOF
models:
  - { name: m, path: plain/ }
files:
  - { path: $SNAP4/original/, target: etc/orig/ }
EOF
} >w/hfsub.yaml
agree hfsub 0 "passed"
tar -tf w/hfsub.tar | grep -qx payload/files/etc/orig/consolidated.00.pth || fail "hf sub-folder: $(tar -tf w/hfsub.tar)"
# include: only the listed files (and an excluded file's sums line is ignored)
model_manifest inc "$SNAP4/" '    include: ["*.json", "model-*.safetensors"]
    exclude: ["original/**"]'
agree inc 0 "passed"
tar -tf w/inc.tar | grep -c '^payload/models/m/' | grep -qx 4 || fail "include: $(tar -tf w/inc.tar)"
# a pattern on a single file is refused
model_manifest badglob "$SNAP4/config.json" '    exclude: ["*.pth"]'
agree badglob 2 "'exclude' selects files of a folder"

# ---- an Ollama store with a GGUF model layer ----
"$G/mkgguf" --preset tiny w/o.gguf >/dev/null
printf 'LLAMA 3.1 COMMUNITY LICENSE AGREEMENT\nLlama 3.1 Version Release Date: July 23, 2024\n' >w/lic.txt
MD=$("$G/mksources" ollama w/ollama tiny:1b w/o.gguf w/lic.txt)
export OLLAMA_MODELS="$T/w/ollama"
model_manifest ollama "ollama://tiny:1b"
agree ollama 0 "passed"
tar -tf w/ollama.tar >w/list.txt
for f in model.gguf template params.json license config.json manifest.json; do
    grep -qx "payload/models/m/$f" w/list.txt || fail "ollama: $f not carried: $(cat w/list.txt)"
done
tar -xOf w/ollama.tar airpack.lock.json >w/lock.json
grep -q "\"model_digest\": \"sha256:$MD\"" w/lock.json || fail "ollama model digest not in the lock"
grep -q '"license": "LicenseRef-llama3.1-community"' w/lock.json || fail "licence layer not read"
"$AIRPACK" verify w/ollama.tar --public-key k.pub >/dev/null || fail "ollama bundle does not verify"
# the licence text feeds the licence policies
run "$AIRPACK" check w/ollama.yaml --policy eu-sovereignty
expect_out "license is 'LicenseRef-llama3.1-community', which is denied"
# facts come from the GGUF model layer
run "$AIRPACK" check --format json w/ollama.yaml
expect_out '"format": "gguf"'
# airpack model reads a store reference too
run "$AIRPACK" model ollama://tiny:1b --format json
expect_rc 0
expect_out '"format": "gguf"'
HF_HUB_CACHE="$T/w/hub" run "$AIRPACK" model hf://acme/tiny
expect_rc 0
run "$AIRPACK" model ollama://nothere
expect_rc 2
# a tampered blob (same size): the digest is its pin
cp -r w/ollama w/ollama2
"$G/mksources" tamper "w/ollama2/blobs/sha256-$MD"
OLLAMA_MODELS="$T/w/ollama2" agree ollama 1 "file 'ollama://tiny:1b/model.gguf' does not match the blob digest"
# a layer missing from the store, a layer of the wrong size, a bad manifest
TB=$(ls w/ollama2/blobs | grep -v "$MD" | head -1)
rm "w/ollama2/blobs/sha256-$MD"
OLLAMA_MODELS="$T/w/ollama2" agree ollama 2 "layer 'application/vnd.ollama.image.model' of 'ollama://tiny:1b' is missing from the store"
cp -r w/ollama w/ollama3
for b in w/ollama3/blobs/*; do
    if grep -q eot_id "$b" 2>/dev/null && [ "$(wc -c <"$b")" -lt 1000 ]; then echo x >>"$b"; break; fi
done
OLLAMA_MODELS="$T/w/ollama3" agree ollama 2 "bytes, its manifest says"
echo '{"layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:../../etc", "size": 1}]}' \
    >w/ollama3/manifests/registry.ollama.ai/library/tiny/1b
OLLAMA_MODELS="$T/w/ollama3" agree ollama 2 "has no valid digest"
model_manifest ollamamissing "ollama://nothere:7b"
agree ollamamissing 2 "'ollama://nothere:7b' is not in the Ollama store"

# ---- container images as runtimes: OCI layout, oci-archive, docker-archive ----
"$G/mkgguf" --preset tiny w/rtm.gguf >/dev/null
# runtime_manifest NAME PATH: a vLLM runtime whose files are an image
runtime_manifest() {
    { head_yaml; cat <<EOF
models:
  - { name: m, path: rtm.gguf, serve: { runtime: vllm } }
runtimes:
  - name: vllm
    kind: vllm
    path: $2
    env: { VLLM_NO_USAGE_STATS: "1" }
EOF
    } >"w/$1.yaml"
}
for k in oci-layout oci-archive docker-archive; do
    case $k in oci-layout) f=img-$k ;; *) f=img-$k.tar ;; esac
    CFG=$("$G/mksources" image $k "w/$f")
    "$G/mksources" image $k "w/bad-$f" --corrupt >/dev/null
    "$G/mksources" image $k "w/miss-$f" --missing >/dev/null
    runtime_manifest "$k" "$f"
    agree "$k" 0 "passed"
    tar -xOf "w/$k.tar" airpack.lock.json >w/lock.json
    grep -q "\"config_digest\": \"$CFG\"" w/lock.json || fail "$k: config digest not in the lock"
    grep -q '"platform": "linux/amd64"' w/lock.json || fail "$k: platform not in the lock"
    grep -q '"kind": "'$k'"' w/lock.json || fail "$k: kind not in the lock"
    tar -xOf "w/$k.tar" sbom.cdx.json >w/sbom.json
    /usr/bin/python3 - w/sbom.json "$CFG" <<'PY' || fail "$k: no container component in the SBOM"
import json, sys
bom = json.load(open(sys.argv[1]))
def walk(cs):
    for c in cs:
        yield c
        yield from walk(c.get("components", []))
cs = [c for c in walk(bom["components"]) if c["type"] == "container"]
assert cs and cs[0]["hashes"][0]["content"] == sys.argv[2][7:], cs
PY
    # the offline policies see the image's Env (HF_HUB_OFFLINE=1 set by the image)
    run "$AIRPACK" check "w/$k.yaml" --policy offline-runtime
    case "$OUT" in *OFF-HF-OFFLINE*) fail "$k: the image's Env was not read" ;; esac
    run "$AIRPACK" check --format json "w/$k.yaml"
    expect_out '"VLLM_USAGE_SOURCE": "production-docker-image"'
    runtime_manifest "bad-$k" "bad-$f"
    case $k in
    oci-layout) agree "bad-$k" 1 "does not match the blob digest it is stored under" ;;
    docker-archive) agree "bad-$k" 1 "does not match its digest" ;;
    *) agree "bad-$k" 1 "does not match its digest: its sha-256 is" ;;
    esac
    runtime_manifest "miss-$k" "miss-$f"
    agree "miss-$k" 2 "points at a missing blob"
done
# the verification names the file
run "$AIRPACK" check w/bad-oci-archive.yaml
expect_err "runtime 'vllm': 'bad-img-oci-archive.tar': blob 'blobs/sha256/"
# a hostile image tar: an entry that climbs out, a link out of the archive
/usr/bin/python3 - "$T/w" <<'PY'
import io, sys, tarfile
def add(t, name, data=b"{}", link=None):
    i = tarfile.TarInfo(name)
    if link:
        i.type, i.linkname = tarfile.SYMTYPE, link
        t.addfile(i)
    else:
        i.size = len(data)
        t.addfile(i, io.BytesIO(data))
with tarfile.open(sys.argv[1] + "/climb-img.tar", "w", format=tarfile.USTAR_FORMAT) as t:
    add(t, "manifest.json", b'[{"Config": "c.json", "Layers": []}]')
    add(t, "../../etc/c.json")
with tarfile.open(sys.argv[1] + "/linkout-img.tar", "w", format=tarfile.USTAR_FORMAT) as t:
    add(t, "manifest.json", b'[{"Config": "c.json", "RepoTags": [], "Layers": []}]')
    add(t, "c.json", link="/etc/passwd")
PY
runtime_manifest climb climb-img.tar
agree climb 2 "entry '../../etc/c.json' is not a safe relative name"
runtime_manifest linkout linkout-img.tar
agree linkout 2 "points at a missing blob 'c.json'"
# a tar that is no image is a plain file of the runtime
tar -cf "$T/w/data.tar" -C "$T/w" rtm.gguf
runtime_manifest notimg data.tar
agree notimg 0 "passed"
tar -tf w/notimg.tar | grep -qx payload/runtimes/vllm/data.tar || fail "plain tar runtime not carried"

# ---- done when: one manifest naming an HF cache snapshot, an ollama://
# model and an image archive builds a bundle that verifies and installs;
# excluded files are not in it; a tampered blob in any is refused at check
{ head_yaml; cat <<EOF
models:
  - name: llama
    path: $SNAP4/
    exclude: [original/, consolidated.safetensors]
    serve: { runtime: vllm }
  - name: tiny
    path: ollama://tiny:1b
    serve: { runtime: ollama }
runtimes:
  - name: vllm
    kind: vllm
    path: img-docker-archive.tar
    env: { VLLM_NO_USAGE_STATS: "1" }
  - name: ollama
    kind: ollama
    env: { OLLAMA_NO_CLOUD: "1" }
EOF
} >w/all.yaml
agree all 0 "passed"
tar -tf w/all.tar >w/list.txt
grep -q 'consolidated' w/list.txt && fail "all: excluded files shipped"
for e in payload/models/llama/model-00001-of-00002.safetensors payload/models/tiny/model.gguf \
    payload/runtimes/vllm/img-docker-archive.tar; do
    grep -qx "$e" w/list.txt || fail "all: $e missing"
done
"$AIRPACK" verify w/all.tar --public-key k.pub >/dev/null || fail "all: does not verify"
# a docker-archive runtime starts as that image (podman, docker-archive transport)
tar -xOf w/all.tar airpack.lock.json | /usr/bin/python3 -c '
import json, sys
l = [s for s in json.load(sys.stdin)["launch"] if s["runtime"] == "vllm"][0]
assert l["start"] == "container" and l["image"].endswith("/payload/runtimes/vllm/img-docker-archive.tar"), l
assert any(a.startswith("docker-archive:") for a in l["argv"]), l["argv"]' || fail "all: the image runtime does not start as a container"
# its SBOM (hub cache revision, Ollama digests, a container component) is valid CycloneDX 1.6
tar -xOf w/all.tar sbom.cdx.json >w/all.cdx.json
/usr/bin/python3 - "$AIRPACK_SRC/tests/schemas" w/all.cdx.json "$REV4" <<'PY' || fail "all: the SBOM does not validate"
import json, sys
from jsonschema import Draft7Validator, RefResolver
d = sys.argv[1]
store = {}
for n in ['bom-1.6.schema.json', 'spdx.schema.json', 'jsf-0.82.schema.json']:
    s = json.load(open(d + '/' + n)); store[s.get('$id', n)] = s; store[n] = s
bom = store['bom-1.6.schema.json']
v = Draft7Validator(bom, resolver=RefResolver(base_uri=bom.get('$id', ''), referrer=bom, store=store))
doc = json.load(open(sys.argv[2]))
errs = list(v.iter_errors(doc))
for e in errs[:5]:
    print(list(e.path), e.message[:300], file=sys.stderr)
props = {p['name']: p['value'] for c in doc['components'] for p in c.get('properties', [])}
assert props.get('airpack:source:revision') == sys.argv[3], props
assert props.get('airpack:source:kind') in ('hf-cache', 'ollama', 'docker-archive'), props
sys.exit(1 if errs else 0)
PY
run "$AIRPACK" install w/all.tar --public-key k.pub --prefix w/site-all -q
expect_rc 0
[ -f w/site-all/current/src-test/payload/models/tiny/model.gguf ] ||
    [ -n "$(find w/site-all -name model.gguf -path '*tiny*' | head -1)" ] || fail "all: not installed"
[ -z "$(find w/site-all -name 'consolidated*')" ] || fail "all: excluded files installed"
# the installed Ollama store is the carried one: its own manifest, template, licence
IM=$(find w/site-all -path '*/ollama/manifests/registry.ollama.ai/library/tiny/latest' | head -1)
[ -n "$IM" ] || fail "all: no Ollama store laid out: $(find w/site-all | head -50)"
cmp "$IM" w/ollama/manifests/registry.ollama.ai/library/tiny/1b || fail "all: the Ollama manifest is not the carried one"
SD=$(dirname "$(dirname "$(dirname "$(dirname "$(dirname "$IM")")")")")
for d in $(/usr/bin/python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(" ".join(x["digest"][7:] for x in [m["config"]] + m["layers"]))' "$IM"); do
    [ -e "$SD/blobs/sha256-$d" ] || fail "all: blob $d missing from the laid-out store"
    cmp "$SD/blobs/sha256-$d" "w/ollama/blobs/sha256-$d" || fail "all: blob $d differs"
done
# a tampered blob in any of the three: refused at check, naming the file
cp w/all.yaml w/all-hf.yaml
sed -i "s|$SNAP4/|hub3/models--acme--tiny/snapshots/$REV/|; /exclude:/d" w/all-hf.yaml
agree all-hf 1 "file 'hub3/models--acme--tiny/snapshots/$REV/model.gguf' does not match the blob digest"
cp -r w/ollama w/ollama4
"$G/mksources" tamper "w/ollama4/blobs/sha256-$MD"
OLLAMA_MODELS="$T/w/ollama4" agree all 1 "file 'ollama://tiny:1b/model.gguf' does not match the blob digest"
sed 's|img-docker-archive.tar|bad-img-docker-archive.tar|' w/all.yaml >w/all-img.yaml
agree all-img 1 "'bad-img-docker-archive.tar': layer"

done_ok
