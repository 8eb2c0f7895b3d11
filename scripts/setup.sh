#!/bin/sh
# Install the Debian 12 packages that airpack's build, tests and demo need.
# Idempotent; run as root, or as a user with sudo.
#   scripts/setup.sh          build + test dependencies
#   AIRPACK_SETUP_MIN=1 ...   only what building and the demo need
set -eu

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "setup: not root and sudo is missing; install the packages listed in $0 by hand" >&2
        exit 2
    fi
fi

BUILD_PKGS="build-essential cmake pkg-config \
    libyaml-dev libjansson-dev libarchive-dev libssl-dev libsodium-dev libzstd-dev \
    libcmocka-dev libcurl4-openssl-dev \
    libacl1-dev liblz4-dev libmicrohttpd-dev git curl \
    liblzma-dev libbz2-dev zlib1g-dev libxml2-dev"
TEST_PKGS="clang libclang-rt-14-dev valgrind minisign tar coreutils zstd \
    python3 python3-jsonschema python3-yaml chromium openssl time systemd strace \
    docker-registry skopeo apache2-utils"

# man pages, Debian packages (scripts/package.sh) and their checks
PACKAGE_PKGS="pandoc dpkg-dev lintian man-db gzip bash"

PKGS="$BUILD_PKGS"
# npm (Debian's package) installs llama.cpp's libraries for the demo server
# (scripts/setup-llama.sh); skipped where a Node.js with npm is present.
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"
[ "${AIRPACK_SETUP_MIN:-0}" = 1 ] || PKGS="$PKGS $TEST_PKGS $PACKAGE_PKGS"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    echo "setup: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $missing
else
    echo "setup: all packages present"
fi

# llama.cpp's prebuilt libraries and headers for tools/demo-server (npm).
# Only the demo's server needs them: without them (no access to the npm
# registry) airpack builds and tests as before, the demo server is not
# built, its test says SKIP and scripts/demo.sh stops, saying why.
if ! $SUDO sh "$(dirname "$0")/setup-llama.sh"; then
    echo "setup: WARNING: llama.cpp's libraries could not be installed (scripts/setup-llama.sh, above);" \
        "the demo's inference server will not be built" >&2
fi
