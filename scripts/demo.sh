#!/bin/sh
# Set up, build and run the main job on the shipped demo manifest:
#   check (facts, VRAM plan, policies; HTML report), keygen, build a signed
#   bundle, verify it, install it into a temporary prefix, audit the install.
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
$B/tests/mkdemo manifests/demo

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

printf '\ndemo done: everything is in %s\n' "$W"
