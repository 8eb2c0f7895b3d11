#!/bin/sh
# test_package.sh - the Debian packages (scripts/package.sh, CPack): both
# build; dpkg-deb -c lists what each must hold (and airpack does not ship
# the verifier twice); airpack-verify is static and has no Depends, airpack
# depends on it and on the libraries dpkg-shlibdeps found; lintian reports
# no error; dpkg -x into a scratch root gives an airpack that runs, an
# airpack-verify that runs, and man pages (one per command) that render
# without a warning; two package builds with the same SOURCE_DATE_EPOCH
# are byte-identical.
set -eu
. "$AIRPACK_SRC/tests/cli/lib.sh"
if [ "${AIRPACK_TEST_SKIP_PACKAGE:-0}" = 1 ]; then
    echo "skip: AIRPACK_TEST_SKIP_PACKAGE=1 (packaging is checked in the dev stage)"
    exit 0
fi
for tool in cpack dpkg-deb dpkg-shlibdeps lintian pandoc man; do
    command -v "$tool" >/dev/null || fail "$tool is missing: run scripts/setup.sh"
done
export SOURCE_DATE_EPOCH=1764288000
VERSION=$("$AIRPACK" --version | awk '{print $2}')

run sh "$AIRPACK_SRC/scripts/package.sh" "$T/b1"; expect_rc 0
MAIN="$T/b1/airpack_${VERSION}_amd64.deb"
VERI="$T/b1/airpack-verify_${VERSION}_amd64.deb"
[ -f "$MAIN" ] && [ -f "$VERI" ] || fail "package names: $(ls "$T/b1"/*.deb)"

# contents
dpkg-deb -c "$MAIN" | awk '{print $6}' | sed 's|^\./|/|' >"$T/main.list"
dpkg-deb -c "$VERI" | awk '{print $6}' | sed 's|^\./|/|' >"$T/veri.list"
has() {   # has LIST PATH
    CHECKS=$((CHECKS + 1))
    grep -qx -- "$2" "$T/$1.list" || fail "$1 package lacks $2"
}
for p in /usr/bin/airpack /usr/share/airpack/gpus.yaml /usr/share/airpack/policies/baseline.yaml \
         /usr/share/airpack/policies/eu-sovereignty.yaml /usr/share/man/man1/airpack.1.gz \
         /usr/share/man/man5/airpack-manifest.5.gz /usr/share/man/man5/airpack-policy.5.gz \
         /usr/share/bash-completion/completions/airpack /usr/share/doc/airpack/copyright \
         /usr/share/doc/airpack/changelog.gz /usr/share/doc/airpack/docs/manifest.md; do
    has main "$p"
done
for p in /usr/bin/airpack-verify /usr/share/man/man1/airpack-verify.1.gz \
         /usr/share/doc/airpack-verify/copyright; do
    has veri "$p"
done
CHECKS=$((CHECKS + 1))
! grep -q 'airpack-verify' "$T/main.list" || fail "airpack ships verifier files too: $(grep airpack-verify "$T/main.list")"
# one man page per command the binary has
for c in $("$AIRPACK" help | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z-]*\)  .*/\1/p'); do
    [ "$c" = verify ] && continue
    has main "/usr/share/man/man1/airpack-$c.1.gz"
done

# dependencies
CHECKS=$((CHECKS + 1))
deps=$(dpkg-deb -f "$MAIN" Depends)
case "$deps" in *"airpack-verify (= $VERSION)"*libarchive*) ;; *) fail "airpack Depends: $deps" ;; esac
CHECKS=$((CHECKS + 1))
[ -z "$(dpkg-deb -f "$VERI" Depends)" ] || fail "airpack-verify has Depends: $(dpkg-deb -f "$VERI" Depends)"

# lintian: no errors (warnings would be listed in docs/packaging.md)
run lintian "$MAIN" "$VERI"
CHECKS=$((CHECKS + 1))
printf '%s\n' "$OUT" | grep -q '^E:' && fail "lintian errors:
$OUT"
printf '%s\n' "$OUT" | grep '^W:' >&2 || true

# unpack into a scratch root and use it
dpkg -x "$MAIN" "$T/root"
dpkg -x "$VERI" "$T/root"
run "$T/root/usr/bin/airpack" --version; expect_rc 0; expect_out "airpack $VERSION"
run "$T/root/usr/bin/airpack-verify" --help; expect_rc 0; expect_out "verify"
CHECKS=$((CHECKS + 1))
readelf -d "$T/root/usr/bin/airpack-verify" 2>/dev/null | grep -q NEEDED &&
    fail "airpack-verify is not static: $(readelf -d "$T/root/usr/bin/airpack-verify" | grep NEEDED)"
for page in "$T"/root/usr/share/man/man1/*.gz "$T"/root/usr/share/man/man5/*.gz; do
    CHECKS=$((CHECKS + 1))
    w=$(MANWIDTH=80 man -l --warnings "$page" 2>&1 >/dev/null || true)
    [ -z "$w" ] || fail "$(basename "$page") renders with warnings: $w"
    MANWIDTH=80 man -l "$page" 2>/dev/null | grep -q '^NAME' || fail "$(basename "$page") has no NAME section"
done
run sh -c "MANWIDTH=80 man -l '$T/root/usr/share/man/man1/airpack-build.1.gz'"
expect_out "--secret-key"
# the completion script installed is the binary's own
CHECKS=$((CHECKS + 1))
"$AIRPACK" completion bash | cmp -s - "$T/root/usr/share/bash-completion/completions/airpack" ||
    fail "the packaged completion differs from 'airpack completion bash'"

# reproducible: a second build gives the same bytes
run sh "$AIRPACK_SRC/scripts/package.sh" "$T/b2"; expect_rc 0
for d in "airpack_${VERSION}_amd64.deb" "airpack-verify_${VERSION}_amd64.deb"; do
    CHECKS=$((CHECKS + 1))
    cmp -s "$T/b1/$d" "$T/b2/$d" || fail "$d differs between two builds with the same SOURCE_DATE_EPOCH"
done
done_ok
