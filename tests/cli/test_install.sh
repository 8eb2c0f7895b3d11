#!/bin/sh
# airpack install, list, rollback: the layout of the brief §5, receipts,
# rollback protection, --allow-downgrade, install from a pipe, the
# airpack-verify executable, usage errors.
set -eu
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
"$AIRPACK_GEN_DIR/mkhostile" "$T/g" >/dev/null
G=$T/g
P=$T/prefix
N=chat-assistant

"$AIRPACK" install "$G/good.tar" --public-key "$G/keys" --prefix "$P" >"$T/out" || fail "install"
grep -q "^installed $N 1.0.0+5 into '$P'" "$T/out" || fail "install output: $(cat "$T/out")"
[ "$(readlink "$P/current/$N")" = "../releases/$N/1.0.0+5" ] || fail "current link"
R=$P/releases/$N/1.0.0+5
[ -f "$R/payload/models/tiny/model.gguf" ] || fail "model not installed"
[ "$(stat -c %a "$R")" = 755 ] || fail "release folder mode $(stat -c %a "$R")"
[ "$(stat -c %a "$R/payload/runtimes/rt/bin/run.sh")" = 755 ] || fail "runtime mode"
[ "$(stat -c %a "$R/payload/files/etc/app/config.yaml")" = 644 ] || fail "file mode"
(cd "$R" && sha256sum -c --quiet SHA256SUMS) || fail "SHA256SUMS of the release"
RC=$P/.airpack/receipts/$N/1.0.0+5
for f in airpack.lock.json airpack.lock.json.minisig install.json; do
    [ -s "$RC/$f" ] || fail "receipt lacks $f"
done
# the stored lock verifies with stock minisign
if command -v minisign >/dev/null 2>&1; then
    minisign -Vm "$RC/airpack.lock.json" -p "$G/trusted.pub" -x "$RC/airpack.lock.json.minisig" -q ||
        fail "minisign does not verify the receipt"
fi
/usr/bin/python3 - "$RC/install.json" "$P/.airpack/state.json" <<'PY' || fail "receipt/state"
import json, sys
r = json.load(open(sys.argv[1])); s = json.load(open(sys.argv[2]))
assert r["format"] == "airpack-install/1" and r["sequence"] == 5 and r["release"] == "1.0.0+5", r
assert len(r["lock_sha256"]) == 64 and r["signature"]["key_id"], r
assert s["deployments"]["chat-assistant"]["highest_sequence"] == 5, s
PY
[ -z "$(find "$P" -name '.staging-*')" ] || fail "staging left behind"

# upgrade, then rollback protection
"$AIRPACK" install "$G/good-v6.tar" -k "$G/trusted.pub" -p "$P" -q >"$T/out" || fail "upgrade"
grep -q "(was 1.0.0+5)" "$T/out" || fail "upgrade output: $(cat "$T/out")"
for b in good-v4.tar good.tar; do
    set +e
    "$AIRPACK" install "$G/$b" -k "$G/keys" -p "$P" -q >/dev/null 2>"$T/err"; rc=$?
    set -e
    [ "$rc" = 1 ] || fail "downgrade to $b: exit $rc, want 1"
    grep -q "is not above the installed sequence 6" "$T/err" || fail "downgrade message: $(cat "$T/err")"
done
set +e
"$AIRPACK" install "$G/good-v6.tar" -k "$G/keys" -p "$P" -q >/dev/null 2>"$T/err"; rc=$?
set -e
[ "$rc" = 1 ] && grep -q "already installed and active" "$T/err" || fail "reinstall: exit $rc $(cat "$T/err")"
[ "$(readlink "$P/current/$N")" = "../releases/$N/1.1.0+6" ] || fail "current changed by a refused install"

# list
"$AIRPACK" list --prefix "$P" >"$T/out" || fail "list"
grep -q "^$N (highest sequence 6)" "$T/out" || fail "list output: $(cat "$T/out")"
grep -q '^  \* 1.1.0+6 ' "$T/out" || fail "list active marker: $(cat "$T/out")"
grep -q '^    1.0.0+5 ' "$T/out" || fail "list inactive: $(cat "$T/out")"
"$AIRPACK" list --prefix "$P" --format json >"$T/j" || fail "list json"
/usr/bin/python3 - "$T/j" <<'PY' || fail "list json document"
import json, sys
d = json.load(open(sys.argv[1]))
dep = d["deployments"][0]
assert dep["name"] == "chat-assistant" and dep["current"] == "1.1.0+6" and dep["highest_sequence"] == 6
assert [r["release"] for r in dep["releases"]] == ["1.0.0+5", "1.1.0+6"], dep
assert [r["active"] for r in dep["releases"]] == [False, True], dep
PY

# rollback, and the highest sequence still protects
"$AIRPACK" rollback --prefix "$P" >"$T/out" || fail "rollback"
grep -q "rolled back from 1.1.0+6 to 1.0.0+5" "$T/out" || fail "rollback output: $(cat "$T/out")"
[ "$(readlink "$P/current/$N")" = "../releases/$N/1.0.0+5" ] || fail "rollback link"
set +e
"$AIRPACK" rollback --prefix "$P" $N >/dev/null 2>&1; rc=$?
"$AIRPACK" install "$G/good-v4.tar" -k "$G/keys" -p "$P" -q >/dev/null 2>&1; rc2=$?
set -e
[ "$rc" = 1 ] || fail "rollback past the oldest: exit $rc, want 1"
[ "$rc2" = 1 ] || fail "downgrade after rollback: exit $rc2, want 1"
# --allow-downgrade, through airpack-verify, from a pipe
cat "$G/good-v4.tar" | "$AIRPACK_VERIFY" install - -k "$G/keys" -p "$P" --allow-downgrade -q >/dev/null ||
    fail "airpack-verify install --allow-downgrade from a pipe"
[ "$(readlink "$P/current/$N")" = "../releases/$N/0.9.0+4" ] || fail "downgrade link"
"$AIRPACK_VERIFY" list --prefix "$P" | grep -q '^  \* 0.9.0+4' || fail "airpack-verify list"
# a zstd bundle installs too
"$AIRPACK" install "$G/good.tar.zst" -k "$G/keys" -p "$T/z" -q >/dev/null || fail "zstd install"

# too little free space: refused before anything is written (exit 2)
set +e
AIRPACK_TEST_AVAILABLE_BYTES=100000 "$AIRPACK" install "$G/good.tar" -k "$G/keys" -p "$T/small" -q >/dev/null 2>"$T/err"
rc=$?
set -e
[ "$rc" = 2 ] && grep -q "not enough free space" "$T/err" || fail "free space: exit $rc: $(cat "$T/err")"
[ -z "$(ls -A "$T/small/releases")" ] || fail "free space: something was written"
# one writer at a time: a held prefix lock is reported, nothing changes
(flock 9 && exec sleep 5) 9>>"$P/.airpack/lock" &
holder=$!
sleep 0.3
set +e
"$AIRPACK" install "$G/good-v6.tar" -k "$G/keys" -p "$P" -q --allow-downgrade >/dev/null 2>"$T/err"
rc=$?
set -e
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
[ "$rc" = 2 ] && grep -q "in use by another airpack" "$T/err" || fail "prefix lock: exit $rc: $(cat "$T/err")"

# usage and input errors: exit 2
expect2() { set +e; "$@" >/dev/null 2>&1; rc=$?; set -e; [ "$rc" = 2 ] || fail "exit $rc, want 2: $*"; }
expect2 "$AIRPACK" install "$G/good.tar" -k "$G/keys"
expect2 "$AIRPACK" install "$G/good.tar" -p "$T/q"
expect2 "$AIRPACK" install "$T/missing.tar" -k "$G/keys" -p "$T/q"
expect2 "$AIRPACK" list
expect2 "$AIRPACK" list --prefix "$T/nonexistent"
expect2 "$AIRPACK" rollback
expect2 "$AIRPACK" rollback --prefix "$T/nonexistent"
# the airpack-verify executable has no build commands
set +e
"$AIRPACK_VERIFY" build x >/dev/null 2>&1; rc=$?
set -e
[ "$rc" = 2 ] || fail "airpack-verify build: exit $rc, want 2 (unknown command)"
echo "ok"
