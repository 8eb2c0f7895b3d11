#!/bin/sh
# Build airpack's two Debian packages (docs/packaging.md):
#   airpack_<version>_amd64.deb, airpack-verify_<version>_amd64.deb
# usage: sh scripts/package.sh [BUILD_DIR]     (default: build/package)
# Configures a Release build for /usr, generates the man pages and the bash
# completion, and runs CPack. Reproducible: SOURCE_DATE_EPOCH (default: the
# last commit's time) fixes every timestamp, so two runs give the same bytes.
# Needs the packages of scripts/setup.sh (pandoc, dpkg-dev among them).
set -eu
cd "$(dirname "$0")/.."
B=${1:-build/package}
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 1764288000)
fi
export SOURCE_DATE_EPOCH
JOBS=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
      -DAIRPACK_TESTS=OFF >/dev/null
cmake --build "$B" -j"$JOBS"
cmake --build "$B" --target man completion debian-doc
(cd "$B" && cpack -G DEB)
ls "$B"/*.deb
