#!/bin/sh
# Install llama.cpp's prebuilt shared libraries (libllama, libggml*) and its
# C headers, for tools/demo-server (the demo's real inference server).
# Called by scripts/setup.sh (as root); idempotent.
#
# Where they come from: the npm package node-llama-cpp, pinned, with its
# prebuilt CPU package @node-llama-cpp/linux-x64, installed with
# --omit=optional (no other platform's binaries) and --ignore-scripts (its
# postinstall step would look for GPU builds; nothing else is fetched).
# The prebuilt package holds the compiled libraries; node-llama-cpp holds
# the llama.cpp source it was built from as a git bundle, from which only
# the public headers (llama.h, ggml*.h, gguf.h) and the licence are taken.
#
# Result (AIRPACK_LLAMA_DIR, default /opt/airpack/node-llama-cpp-3.21.1):
#   include/    llama.h ggml.h ggml-*.h gguf.h
#   lib ->      node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
#   LICENSE     llama.cpp's licence (MIT)
#   VERSION     the llama.cpp release the libraries and headers are from
# CMake (tools/demo-server) looks there; see docs/demo-server.md.
set -eu

NLC_VERSION=3.21.1
DIR=${AIRPACK_LLAMA_DIR:-/opt/airpack/node-llama-cpp-$NLC_VERSION}

if [ -f "$DIR/.complete" ]; then
    echo "setup-llama: llama.cpp libraries present in $DIR"
    exit 0
fi
for tool in npm node git; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "setup-llama: '$tool' is missing (scripts/setup.sh installs it)" >&2
        exit 2
    fi
done

parent=$(dirname "$DIR")
mkdir -p "$parent"
tmp=$(mktemp -d "$DIR.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "setup-llama: npm install node-llama-cpp@$NLC_VERSION @node-llama-cpp/linux-x64@$NLC_VERSION into $DIR"
echo '{"private": true, "description": "llama.cpp libraries for airpack tools/demo-server"}' >"$tmp/package.json"
(cd "$tmp" && npm install --omit=optional --ignore-scripts --no-audit --no-fund --engine-strict=false \
    --loglevel=error "node-llama-cpp@$NLC_VERSION" "@node-llama-cpp/linux-x64@$NLC_VERSION")

nm=$tmp/node_modules
bins=node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
bundle=$nm/node-llama-cpp/llama/gitRelease.bundle
for f in "$tmp/$bins/_nlcBuildMetadata.json" "$nm/node-llama-cpp/llama/llama.cpp.info.json" "$bundle"; do
    [ -f "$f" ] || { echo "setup-llama: '$f' is missing from the npm packages" >&2; exit 1; }
done
# The headers must be those of the release the libraries were built from.
lib_rel=$(node -e 'console.log(require(process.argv[1]).buildOptions.llamaCpp.release)' \
    "$tmp/$bins/_nlcBuildMetadata.json")
src_rel=$(node -e 'console.log(require(process.argv[1]).tag)' \
    "$nm/node-llama-cpp/llama/llama.cpp.info.json")
if [ "$lib_rel" != "$src_rel" ]; then
    echo "setup-llama: the prebuilt libraries are llama.cpp '$lib_rel' but the bundled source is '$src_rel'" >&2
    exit 1
fi
ls "$tmp/$bins"/libllama*.so >/dev/null 2>&1 ||
    { echo "setup-llama: no libllama*.so in '$tmp/$bins'" >&2; exit 1; }

git init -q --bare "$tmp/src.git"
git -C "$tmp/src.git" fetch -q "$bundle" HEAD
mkdir -p "$tmp/include"
for h in include/llama.h ggml/include/ggml.h ggml/include/ggml-alloc.h \
         ggml/include/ggml-backend.h ggml/include/ggml-cpu.h ggml/include/ggml-opt.h \
         ggml/include/gguf.h; do
    git -C "$tmp/src.git" show "FETCH_HEAD:$h" >"$tmp/include/$(basename "$h")"
done
git -C "$tmp/src.git" show FETCH_HEAD:LICENSE >"$tmp/LICENSE"
rm -rf "$tmp/src.git"
ln -s "$bins" "$tmp/lib"
echo "$lib_rel" >"$tmp/VERSION"
chmod -R a+rX "$tmp"
touch "$tmp/.complete"

# Another setup may have finished meanwhile; keep the first complete one
# (the lock orders two setups that finish at the same time).
exec 9>"$parent/.setup-llama.lock"
flock 9
if [ -f "$DIR/.complete" ]; then
    echo "setup-llama: llama.cpp libraries present in $DIR"
    exit 0
fi
rm -rf "$DIR"
mv -T "$tmp" "$DIR"
trap - EXIT INT TERM
echo "setup-llama: llama.cpp $lib_rel libraries and headers in $DIR"
