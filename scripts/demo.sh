#!/bin/sh
# Set up, build and run the main job on the shipped demo manifest:
# check the manifest (facts, VRAM plan, policies).
set -eu
cd "$(dirname "$0")/.."
AIRPACK_SETUP_MIN=1 sh scripts/setup.sh
JOBS=$(nproc 2>/dev/null || echo 2)
cmake --preset release >/dev/null
cmake --build --preset release -j"$JOBS"
B=build/release
A=$B/airpack

echo "== generating the demo's model and runtime files"
$B/tests/mkdemo manifests/demo

echo "== airpack check manifests/demo.yaml"
$A check manifests/demo.yaml
