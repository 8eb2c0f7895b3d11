#!/bin/sh
# Every case of the hostile corpus (tests/gen/mkhostile.c) is refused by
# verify (exit 1, the expected fault), by airpack-verify, from a pipe, and by
# install, which leaves the prefix byte-for-byte unchanged and writes nothing
# outside it; a selection also by install --allow-downgrade (past the
# sequence check).
set -eu
T=$(mktemp -d)
trap 'rm -rf "$T" /tmp/airpack-hostile-*' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
"$AIRPACK_GEN_DIR/mkhostile" "$T/g" >/dev/null
G=$T/g
P=$T/prefix
[ "$(wc -l <"$G/hostile/cases.tsv")" -ge 40 ] || fail "corpus too small"

"$AIRPACK" install "$G/good.tar" -k "$G/keys" -p "$P" -q >/dev/null || fail "good install"
snapshot() {
    (cd "$P" && find . -printf '%p %y %m %s %l\n' | LC_ALL=C sort &&
        find . -type f -exec sha256sum {} + | LC_ALL=C sort)
}
snapshot >"$T/before"
TAB=$(printf '\t')
n=0
while IFS="$TAB" read -r name want; do
    n=$((n + 1))
    b=$G/hostile/$name
    for bin in "$AIRPACK" "$AIRPACK_VERIFY"; do
        set +e
        "$bin" verify "$b" -k "$G/keys" --format json >"$T/j" 2>"$T/err"; rc=$?
        set -e
        [ "$rc" = 1 ] || fail "$name: $bin verify exit $rc, want 1: $(cat "$T/err")"
        # the JSON is indented one key a line (checked by test_verify.sh with python)
        fault=$(sed -n 's/^ *"fault": "\([a-z0-9-]*\)",*$/\1/p' "$T/j")
        [ -n "$fault" ] || fail "$name: no fault in JSON: $(cat "$T/j")"
        case "|$want|" in
        *"|$fault|"*) ;;
        *) fail "$name: fault '$fault', want '$want'" ;;
        esac
        grep -q "^error: bundle" "$T/err" || fail "$name: no error message: $(cat "$T/err")"
    done
    set +e
    cat "$b" | "$AIRPACK" verify - -k "$G/keys" >/dev/null 2>&1; rc=$?
    "$AIRPACK" install "$b" -k "$G/keys" -p "$P" -q >/dev/null 2>"$T/err"; irc=$?
    set -e
    [ "$rc" = 1 ] || fail "$name: verify from a pipe exit $rc, want 1"
    [ "$irc" = 1 ] || fail "$name: install exit $irc, want 1: $(cat "$T/err")"
    snapshot >"$T/after"
    cmp -s "$T/before" "$T/after" || { diff "$T/before" "$T/after" >&2; fail "$name: prefix changed"; }
done <"$G/hostile/cases.tsv"
[ "$n" -ge 40 ] || fail "only $n cases ran"
for name in traversal.tar absolute.tar symlink-abs.tar hardlink-abs.tar device.tar setuid.tar \
    tampered-last.tar duplicate.tar extra-end.tar trailing.tar zstd-bomb.tar.zst; do
    set +e
    "$AIRPACK_VERIFY" install "$G/hostile/$name" -k "$G/keys" -p "$P" -q --allow-downgrade >/dev/null 2>&1
    rc=$?
    set -e
    [ "$rc" = 1 ] || fail "$name: airpack-verify install --allow-downgrade exit $rc, want 1"
    snapshot >"$T/after"
    cmp -s "$T/before" "$T/after" || fail "$name: prefix changed by install --allow-downgrade"
done
for f in /tmp/airpack-hostile-* "$T/evil.txt" "$T/g/evil.txt" "$P/../evil.txt"; do
    [ ! -e "$f" ] || fail "hostile bundle wrote '$f'"
done
# a hostile bundle into a fresh prefix leaves no release behind
set +e
"$AIRPACK" install "$G/hostile/tampered.tar" -k "$G/keys" -p "$T/fresh" -q >/dev/null 2>&1; rc=$?
set -e
[ "$rc" = 1 ] || fail "fresh prefix: exit $rc"
[ -z "$(ls -A "$T/fresh/releases" 2>/dev/null)" ] || fail "fresh prefix: releases left: $(ls -A "$T/fresh/releases")"
[ ! -e "$T/fresh/current" ] || [ -z "$(ls -A "$T/fresh/current")" ] || fail "fresh prefix: current set"
echo "ok: $n hostile cases refused"
