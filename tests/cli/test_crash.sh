#!/bin/sh
# A killed install never breaks the active release. The install kills
# itself with SIGKILL at its Nth durable step (AIRPACK_TEST_CRASH_AT=N, see
# src/install.h) for every N until it completes; after each kill the
# previous (or, past the switch, the new) release is active and intact, and
# the next install cleans up and succeeds. Then a few kill -9 from outside
# at arbitrary moments.
set -eu
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
"$AIRPACK_GEN_DIR/mkhostile" "$T/g" >/dev/null
G=$T/g
K="-k $G/keys"

leftovers() {
    find "$1" -name '.staging-*' -o -name '.old-*' -o -name '.tmp-*' -o -name 'state.json.tmp-*'
}
check_active() { # prefix, allowed releases...
    p=$1; shift
    t=$(readlink "$p/current/chat-assistant") || fail "N=$N: no current link"
    ok=0
    for r in "$@"; do [ "$t" = "../releases/chat-assistant/$r" ] && ok=1; done
    [ "$ok" = 1 ] || fail "N=$N: current -> '$t', want one of: $*"
    "$AIRPACK" audit --installed "$p" $K >"$T/audit" 2>&1 ||
        fail "N=$N: active release not intact: $(cat "$T/audit")"
}

# the starting point of every round: release 1.0.0+5 installed (copied,
# to keep the test fast: each install fsyncs every file and folder)
"$AIRPACK" install "$G/good.tar" $K -p "$T/template" -q >/dev/null || fail "first install"
N=0
killed=0
while :; do
    N=$((N + 1))
    [ "$N" -le 60 ] || fail "install never completed"
    P=$T/p$N
    cp -a "$T/template" "$P"
    set +e
    AIRPACK_TEST_CRASH_AT=$N "$AIRPACK" install "$G/good-v6.tar" $K -p "$P" -q >/dev/null 2>&1
    rc=$?
    set -e
    if [ "$rc" = 0 ]; then
        check_active "$P" 1.1.0+6
        [ -z "$(leftovers "$P")" ] || fail "completed install left: $(leftovers "$P")"
        rm -rf "$P"
        break
    fi
    [ "$rc" -gt 128 ] || fail "N=$N: install exit $rc, expected a kill"
    killed=$((killed + 1))
    check_active "$P" 1.0.0+5 1.1.0+6
    # the next run cleans up and ends with the new release active
    set +e
    "$AIRPACK" install "$G/good-v6.tar" $K -p "$P" -q >/dev/null 2>"$T/err"; rc=$?
    set -e
    if [ "$rc" != 0 ]; then
        grep -q "already installed and active" "$T/err" || fail "N=$N: rerun exit $rc: $(cat "$T/err")"
    fi
    check_active "$P" 1.1.0+6
    [ -z "$(leftovers "$P")" ] || fail "N=$N: leftovers after the next run: $(leftovers "$P")"
    grep -q '"highest_sequence": 6' "$P/.airpack/state.json" || fail "N=$N: state.json not at 6"
    "$AIRPACK" list --prefix "$P" >/dev/null || fail "N=$N: list failed"
    # and the old release is still there to roll back to
    if [ $((N % 4)) = 1 ]; then
        "$AIRPACK" rollback --prefix "$P" >/dev/null || fail "N=$N: rollback after crash"
        check_active "$P" 1.0.0+5
    fi
    rm -rf "$P"
done
[ "$killed" -ge 15 ] || fail "only $killed crash points"

# kill -9 from outside at arbitrary moments
for d in 0.001 0.005 0.01 0.02 0.04; do
    N=ext$d
    P=$T/x
    rm -rf "$P"
    cp -a "$T/template" "$P"
    "$AIRPACK" install "$G/good-v6.tar" $K -p "$P" -q >/dev/null 2>&1 &
    pid=$!
    sleep "$d"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    check_active "$P" 1.0.0+5 1.1.0+6
done
echo "ok: killed at $killed points"
