#!/bin/sh
# test_store.sh - the content-addressed store of an install prefix: three
# releases sharing a model take its space once (du), an in-place change of
# a shared file shows in every release that shares it (audit
# --all-releases), prune keeps the active and the previous release and
# frees unused objects, a kill -9 at any point of prune leaves every
# remaining release intact, install's free-space check counts only bytes
# not in the store, and a damaged object is never linked into a release.
. "$AIRPACK_SRC/tests/cli/lib.sh"
make_demo
export SOURCE_DATE_EPOCH=1700000000
cd "$T"
N=demo-assistant
MODEL=payload/models/tiny-chat/tiny-chat.gguf
run "$AIRPACK" keygen --public-key k.pub --secret-key k.sec --no-password
expect_rc 0
for s in 1 2 3 4; do
    sed "s/sequence: 1/sequence: $s/; s/version: 1.0.0/version: 1.0.$s/" demo/demo.yaml >demo/d$s.yaml
    run "$AIRPACK" build demo/d$s.yaml --secret-key k.sec --output r$s.airpack --quiet
    expect_rc 0
done
# releases 1 to 3 installed into a fresh prefix (a copied prefix would not
# audit clean: installed units name their prefix)
three() {
    for s in 1 2 3; do
        run "$AIRPACK" install r$s.airpack -k k.pub --prefix "$1"
        expect_rc 0
    done
}
three P
msize=$(stat -c %s "P/releases/$N/1.0.1+1/$MODEL")
ino1=$(stat -c %i "P/releases/$N/1.0.1+1/$MODEL")
ino3=$(stat -c %i "P/releases/$N/1.0.3+3/$MODEL")
[ "$ino1" = "$ino3" ] || fail "the model is not shared between releases"
hex=$(sha256sum "P/releases/$N/1.0.1+1/$MODEL" | cut -d' ' -f1)
[ "$(stat -c %i "P/.airpack/objects/sha256/$hex")" = "$ino1" ] || fail "the model is not the store object"
[ "$(stat -c %h "P/.airpack/objects/sha256/$hex")" = 4 ] || fail "object link count is not 1 + 3 releases"
used=$(du -sb P | cut -f1)
[ "$used" -lt $((2 * msize)) ] || fail "three releases take $used bytes for a $msize-byte model"
run "$AIRPACK" audit --installed P -k k.pub --all-releases
expect_rc 0
expect_out "$N 1.0.1+1: receipt signature valid"
expect_out "$N 1.0.3+3: receipt signature valid"

# a shared file changed in place: every release that links it reports it
three Q
printf 'X' | dd of="Q/releases/$N/1.0.3+3/$MODEL" bs=1 seek=500 conv=notrunc 2>/dev/null
run "$AIRPACK" audit --installed Q -k k.pub --all-releases --format json
expect_rc 1
printf "%s" "$OUT" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
mods = {x["release"]: [m["path"] for m in x["modified"]] for x in d["deployments"]}
assert len(mods) == 3 and all("'"$MODEL"'" in v for v in mods.values()), mods
assert d["summary"]["modified"] >= 3, d["summary"]' || fail "in-place change not reported in each release"
run "$AIRPACK" audit --installed Q -k k.pub
expect_rc 1
expect_out "modified: $MODEL (sha256 differs from the lock (the file is shared with 2 other releases"
# installing a new release never links the damaged object: fresh bytes replace it
run "$AIRPACK" install r4.airpack -k k.pub --prefix Q
expect_rc 0
run "$AIRPACK" audit --installed Q -k k.pub
expect_rc 0
[ "$(stat -c %i "Q/releases/$N/1.0.4+4/$MODEL")" != "$(stat -c %i "Q/releases/$N/1.0.3+3/$MODEL")" ] ||
    fail "the new release links the damaged object"
[ "$(stat -c %i "Q/.airpack/objects/sha256/$hex")" = "$(stat -c %i "Q/releases/$N/1.0.4+4/$MODEL")" ] ||
    fail "the store does not hold the fresh copy"

# free space: bytes already in the store do not count
bytes=$(stat -c %s r4.airpack)
AIRPACK_TEST_AVAILABLE_BYTES=$((bytes / 2)) run "$AIRPACK" install r4.airpack -k k.pub --prefix Fresh
expect_rc 2
expect_err "not enough free space"
three P4
AIRPACK_TEST_AVAILABLE_BYTES=$((bytes / 2)) run "$AIRPACK" install r4.airpack -k k.pub --prefix P4
expect_rc 0

# prune: the active and the previous release stay, the rest goes, unused objects go
run "$AIRPACK" prune --prefix P --keep 1
expect_rc 0
expect_out "removed $N 1.0.1+1"
expect_out "kept $N 1.0.3+3 (active)"
expect_out "kept $N 1.0.2+2 (previous)"
expect_out "unused objects"
[ ! -e "P/releases/$N/1.0.1+1" ] && [ ! -e "P/.airpack/receipts/$N/1.0.1+1" ] ||
    fail "pruned release or receipt still there"
[ -f "P/.airpack/objects/sha256/$hex" ] || fail "prune removed an object still in use"
for f in P/.airpack/objects/sha256/*; do
    [ "$(stat -c %h "$f")" -gt 1 ] || fail "unused object $f left"
done
run "$AIRPACK" audit --installed P -k k.pub --all-releases
expect_rc 0
run "$AIRPACK" rollback --prefix P
expect_rc 0
run "$AIRPACK" prune --prefix P --format json
expect_rc 0
expect_out '"releases_removed": []'
run "$AIRPACK_VERIFY" prune --prefix P
expect_rc 0

# kill -9 at every checkpoint of prune: what remains is intact
i=1
while :; do
    rm -rf C
    three C
    AIRPACK_TEST_CRASH_AT=$i run "$AIRPACK" prune --prefix C --keep 1
    if [ "$RC" = 0 ]; then break; fi
    [ "$RC" = 137 ] || fail "prune crash point $i: exit $RC ($ERR)"
    run "$AIRPACK" audit --installed C -k k.pub --all-releases
    expect_rc 0
    run "$AIRPACK" list --prefix C
    expect_rc 0
    run "$AIRPACK" prune --prefix C --keep 1
    expect_rc 0
    [ ! -e "C/releases/$N/1.0.1+1" ] || fail "crash point $i: the next prune did not finish"
    [ -z "$(ls -A "C/releases/$N" | grep '^\.')" ] || fail "crash point $i: leftovers $(ls -A "C/releases/$N")"
    run "$AIRPACK" audit --installed C -k k.pub --all-releases
    expect_rc 0
    i=$((i + 1))
    [ "$i" -lt 40 ] || fail "prune never finished"
done
[ "$i" -gt 4 ] || fail "only $i crash points in prune"

run "$AIRPACK" prune --prefix P --keep 0
expect_rc 2
run "$AIRPACK" prune --prefix P nosuch
expect_rc 2
expect_err "'nosuch' is not installed"
done_ok
