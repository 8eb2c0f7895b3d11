#!/bin/sh
# test_parts_kill.sh - a build killed while it writes split volumes leaves
# nothing under the part or index names: over an earlier set of parts, that
# set and its index stay byte-identical and verify; in a fresh folder no
# part and no index appears. SIGTERM removes the temporary parts; after
# SIGKILL only hidden .NAME.NNN.XXXXXX.tmp files are left, which verify
# ignores, and which the next build of that output removes (ap_tmp_sweep),
# never those of a writer that is still alive (it holds a flock).
. "$AIRPACK_SRC/tests/cli/lib.sh"
make_demo
export SOURCE_DATE_EPOCH=1700000000
cd "$T"
run "$AIRPACK" keygen --public-key k.pub --secret-key k.sec --no-password
expect_rc 0
run "$AIRPACK" build demo/demo.yaml --secret-key k.sec --output one.airpack --quiet
expect_rc 0
vol=$(( $(stat -c %s one.airpack) * 2 / 5 ))   # three parts
mkdir P
run "$AIRPACK" build demo/demo.yaml --secret-key k.sec --output P/one.airpack --volume-size "$vol"
expect_rc 0
[ -f P/one.airpack.003 ] || fail "no third part: $(ls P)"
cp -r P saved

# the next release: different bytes in every part
sed -i 's/sequence: 1/sequence: 2/' demo/demo.yaml
echo "EXTRA=1" >>demo/demo/config/server.env
(cd demo/demo/config && sha256sum * >../config.sha256)

# killed_build DIR SIGNAL: start a volume build into DIR, wait until part 1
# is written and part 2 not yet begun, send SIGNAL; sets $rc.
killed_build() {
    rm -f "$T/stall"
    AIRPACK_TEST_PARTS_STALL="$T/stall" "$AIRPACK" build demo/demo.yaml --secret-key k.sec \
        --output "$1/one.airpack" --volume-size "$vol" --quiet >"$T/o" 2>"$T/e" &
    pid=$!
    n=0
    while [ ! -e "$T/stall" ]; do
        sleep 0.05; n=$((n + 1))
        [ "$n" -lt 400 ] || fail "the build never reached part 2"
    done
    ls -A "$1" | grep -q '^\.one\.airpack\.001\..*\.tmp$' || fail "part 1 is not being written: $(ls -A "$1")"
    kill "-$2" "$pid"
    set +e; wait "$pid"; rc=$?; set -e
    rm -f "$T/stall"
}

same_as_saved() { # $1: what happened
    for f in saved/*; do
        cmp -s "$f" "P/${f#saved/}" || fail "$1: ${f#saved/} changed"
    done
    [ "$(ls P)" = "$(ls saved)" ] || fail "$1: parts differ: $(ls P)"
    run "$AIRPACK" verify --parts P/one.airpack.parts -k k.pub
    expect_rc 0
    run "$AIRPACK" verify P/one.airpack.parts -k k.pub
    expect_rc 0
    expect_out "sequence 1"
}

killed_build P TERM
[ "$rc" = 143 ] || fail "SIGTERM: exit $rc ($(cat "$T/e"))"
same_as_saved "SIGTERM"
[ -z "$(ls -A P | grep '\.tmp$' || true)" ] || fail "SIGTERM left temporary parts: $(ls -A P)"

killed_build P KILL
[ "$rc" = 137 ] || fail "SIGKILL: exit $rc ($(cat "$T/e"))"
same_as_saved "SIGKILL"
ls -A P | grep -q '^\.one\.airpack\.001\..*\.tmp$' || fail "SIGKILL: no hidden temporary part 1: $(ls -A P)"
ls -A P | grep -v '^\.one\.airpack\.00[0-9]\.[A-Za-z0-9]*\.tmp$' | grep -q '^\.' &&
    fail "SIGKILL left something other than hidden temporary parts: $(ls -A P)"

# a fresh folder: nothing under the output names
mkdir F
killed_build F KILL
[ "$rc" = 137 ] || fail "SIGKILL (fresh): exit $rc"
[ -z "$(ls F)" ] || fail "SIGKILL (fresh) left parts or an index: $(ls F)"
run "$AIRPACK" verify F/one.airpack.parts -k k.pub
expect_rc 2

# the next build writes the complete new set, over the old one
run "$AIRPACK" build demo/demo.yaml --secret-key k.sec --output P/one.airpack --volume-size "$vol"
expect_rc 0
run "$AIRPACK" build demo/demo.yaml --secret-key k.sec --output two.airpack --quiet
expect_rc 0
cat P/one.airpack.0* | cmp -s - two.airpack || fail "the rebuilt parts are not the new bundle"
[ -z "$(ls -A P | grep '\.tmp$' || true)" ] || fail "the next build left the killed one's parts: $(ls -A P)"
run "$AIRPACK" verify --parts P/one.airpack.parts -k k.pub
expect_rc 0
run "$AIRPACK" verify P/one.airpack.parts -k k.pub
expect_rc 0
expect_out "sequence 2"

# The sweep spares a live writer: a locked bundle temporary stays, and any
# part stays while a part 1 is locked; other outputs' files are not touched.
mkdir S
: >S/.one.airpack.AbC123.tmp          # stale bundle temporary
: >S/.one.airpack.XyZ789.tmp          # a live writer's (locked below)
: >S/.one.airpack.001.Pqr456.tmp      # a live part writer's part 1 (locked)
: >S/.one.airpack.003.Stu789.tmp      # ... and its part 3
: >S/.other.airpack.Qwe123.tmp        # another output's
: >S/one.airpack.keep.tmp             # not hidden: not ours
# a lock holder that dies with its process (not a child that keeps it)
hold() {
    /usr/bin/python3 -c 'import fcntl, sys, time
f = open(sys.argv[1])
fcntl.flock(f, fcntl.LOCK_EX)
time.sleep(60)' "$1" >/dev/null 2>&1 </dev/null &
}
hold S/.one.airpack.XyZ789.tmp
h1=$!
hold S/.one.airpack.001.Pqr456.tmp
h2=$!
n=0
while flock -n -x S/.one.airpack.001.Pqr456.tmp true 2>/dev/null ||
      flock -n -x S/.one.airpack.XyZ789.tmp true 2>/dev/null; do
    sleep 0.05; n=$((n + 1)); [ "$n" -lt 200 ] || fail "the test's locks were not taken"
done
run "$AIRPACK" build demo/demo.yaml --secret-key k.sec --output S/one.airpack --quiet
expect_rc 0
run "$AIRPACK" build demo/demo.yaml --secret-key k.sec --output S/one.airpack --volume-size "$vol" --quiet
expect_rc 0
[ ! -e S/.one.airpack.AbC123.tmp ] || fail "a stale bundle temporary was not removed"
for f in .one.airpack.XyZ789.tmp .one.airpack.001.Pqr456.tmp .one.airpack.003.Stu789.tmp \
         .other.airpack.Qwe123.tmp one.airpack.keep.tmp; do
    [ -e "S/$f" ] || fail "the sweep removed $f"
done
kill "$h1" "$h2" 2>/dev/null || true
wait "$h1" "$h2" 2>/dev/null || true
run "$AIRPACK" build demo/demo.yaml --secret-key k.sec --output S/one.airpack --volume-size "$vol" --quiet
expect_rc 0
for f in .one.airpack.XyZ789.tmp .one.airpack.001.Pqr456.tmp .one.airpack.003.Stu789.tmp; do
    [ ! -e "S/$f" ] || fail "$f was not removed once its writer was gone"
done
[ -e S/.other.airpack.Qwe123.tmp ] && [ -e S/one.airpack.keep.tmp ] || fail "the sweep removed another output's file"
CHECKS=$((CHECKS + 5))
done_ok
