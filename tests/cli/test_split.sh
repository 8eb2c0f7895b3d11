#!/bin/sh
# test_split.sh - split volumes: build --volume-size and split write parts
# whose concatenation is the single-file bundle, a signed parts index that
# stock minisign verifies, verify --parts names exactly the bad or missing
# parts, verify and install stream across the parts, and missing,
# truncated, misordered parts or a foreign index are refused clearly.
. "$AIRPACK_SRC/tests/cli/lib.sh"
make_demo
export SOURCE_DATE_EPOCH=1700000000
cd "$T"
run "$AIRPACK" keygen --public-key k.pub --secret-key k.sec --no-password
expect_rc 0
run "$AIRPACK" build demo/demo.yaml --secret-key k.sec --output one.airpack --quiet
expect_rc 0
size=$(stat -c %s one.airpack)
# three parts, the last one shorter; part 1 is shorter by the signature
# reserve (a quarter of a volume below 320 KiB, rounded down to 512 bytes)
vol=$(( size * 2 / 5 ))
reserve=$(( vol / 4 / 512 * 512 ))
mkdir b s
run "$AIRPACK" build demo/demo.yaml --secret-key k.sec --output b/one.airpack --volume-size "$vol"
expect_rc 0
expect_out "3 parts of at most $vol bytes"
[ -f b/one.airpack.003 ] && [ ! -e b/one.airpack.004 ] && [ ! -e b/one.airpack ] ||
    fail "build --volume-size: not exactly three parts: $(ls b)"
[ "$(stat -c %s b/one.airpack.001)" = "$((vol - reserve))" ] ||
    fail "part 1 is not volume-size minus the reserve: $(stat -c %s b/one.airpack.001)"
[ "$(stat -c %s b/one.airpack.002)" = "$vol" ] || fail "part 2 is not volume-size bytes"
cat b/one.airpack.0* | cmp -s - one.airpack || fail "cat of the parts differs from the bundle"
# split of the single file gives the same parts and index
run "$AIRPACK" split one.airpack --volume-size "$vol" --secret-key k.sec --output-dir s
expect_rc 0
for f in one.airpack.001 one.airpack.002 one.airpack.003 one.airpack.parts; do
    cmp -s "b/$f" "s/$f" || fail "split and build --volume-size differ in $f"
done
minisign -Vm b/one.airpack.parts -p k.pub -q || fail "stock minisign does not verify the index"
# presets and units
run "$AIRPACK" split one.airpack --volume-size 100 --secret-key k.sec --output-dir s
expect_rc 2
expect_err "bad --volume-size '100'"
run "$AIRPACK" split one.airpack --volume-size fat33 --secret-key k.sec --output-dir s
expect_rc 2
run "$AIRPACK" split one.airpack --volume-size dvd --secret-key k.sec --output-dir s
expect_rc 0
expect_out "1 parts of at most 4700000000 bytes"
[ ! -e s/one.airpack.002 ] || fail "a stale part 002 survived a split into fewer parts"
cat s/one.airpack.001 | cmp -s - one.airpack || fail "one dvd part differs from the bundle"

# verify and install across the parts, from the index or the first part
for p in b/one.airpack.parts b/one.airpack.001; do
    for bin in "$AIRPACK" "$AIRPACK_VERIFY"; do
        run "$bin" verify "$p" -k k.pub
        expect_rc 0
        expect_out "verified '$p': demo-assistant 1.0.0"
    done
done
run "$AIRPACK" verify b/one.airpack.parts -k k.pub --format json
expect_rc 0
expect_out '"parts": 3'
run "$AIRPACK" verify --parts b/one.airpack.parts -k k.pub
expect_rc 0
expect_out "3 of 3 parts ok"
run "$AIRPACK" inspect b/one.airpack.parts
expect_rc 0
expect_out "demo-assistant"
run "$AIRPACK" install b/one.airpack.parts -k k.pub --prefix P1
expect_rc 0
run "$AIRPACK_VERIFY" install b/one.airpack.001 -k k.pub --prefix P3
expect_rc 0
run "$AIRPACK" install one.airpack -k k.pub --prefix P2
expect_rc 0
diff -r -x systemd P1/releases P2/releases >/dev/null || fail "split and unsplit installs differ"
diff -r -x systemd P3/releases P2/releases >/dev/null || fail "split (airpack-verify) and unsplit installs differ"
cmp -s P1/.airpack/receipts/demo-assistant/1.0.0+1/airpack.lock.json \
    P2/.airpack/receipts/demo-assistant/1.0.0+1/airpack.lock.json || fail "receipts differ"

# part 2 damaged: --parts names part 2 only; the whole bundle is refused
cp -r b c
printf 'X' | dd of=c/one.airpack.002 bs=1 seek=1000 conv=notrunc 2>/dev/null
run "$AIRPACK" verify --parts c/one.airpack.parts -k k.pub
expect_rc 1
expect_out "BAD      one.airpack.002: sha256 mismatch"
expect_out "ok       one.airpack.001"
expect_out "ok       one.airpack.003"
expect_out "copy again: one.airpack.002"
case "$OUT" in *"copy again: one.airpack.002 "*|*"BAD      one.airpack.001"*|*"BAD      one.airpack.003"*)
    fail "--parts blames more than part 2: $OUT" ;; esac
run "$AIRPACK" verify --parts c/one.airpack.parts -k k.pub --format json
expect_rc 1
printf "%s" "$OUT" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["ok"] is False and d["parts_bad"] == 1, d
assert [p["state"] for p in d["parts"]] == ["ok", "sha256-mismatch", "ok"], d' ||
    fail "--parts json"
for p in c/one.airpack.parts c/one.airpack.001; do
    run "$AIRPACK" verify "$p" -k k.pub
    expect_rc 1
    expect_err "bad parts: 'one.airpack.002' (sha256 mismatch"
done
run "$AIRPACK" install c/one.airpack.parts -k k.pub --prefix P4
expect_rc 1
[ ! -e P4/current ] || [ -z "$(ls P4/current)" ] || fail "a damaged split bundle was installed"

# a part missing: named; --parts works with only some parts present
cp -r b m
rm m/one.airpack.003
run "$AIRPACK" verify --parts m/one.airpack.parts -k k.pub
expect_rc 1
expect_out "MISSING  one.airpack.003: missing"
expect_out "2 of 3 parts ok"
run "$AIRPACK" verify m/one.airpack.parts -k k.pub
expect_rc 1
expect_err "part 'm/one.airpack.003' is missing"
rm m/one.airpack.parts m/one.airpack.parts.minisig m/one.airpack.002
cp b/one.airpack.003 m/
run "$AIRPACK" verify m/one.airpack.001 -k k.pub   # no index, part 2 missing
expect_rc 1
expect_err "part 'm/one.airpack.002' is missing"

# a part truncated
cp -r b t
truncate -s 1000 t/one.airpack.002
run "$AIRPACK" verify t/one.airpack.001 -k k.pub
expect_rc 1
expect_err "part 't/one.airpack.002' is truncated: 1000 bytes, the parts index says $vol"
run "$AIRPACK" verify --parts t/one.airpack.parts -k k.pub
expect_rc 1
expect_out "BAD      one.airpack.002: 1000 bytes, the index says $vol (truncated)"
# a part too long
cp -r b l
printf 'junk' >>l/one.airpack.003
run "$AIRPACK" verify l/one.airpack.parts -k k.pub
expect_rc 1
expect_err "part 'l/one.airpack.003' is longer than the parts index says"

# parts in the wrong order
cp -r b o
mv o/one.airpack.001 o/x && mv o/one.airpack.002 o/one.airpack.001 && mv o/x o/one.airpack.002
run "$AIRPACK" verify o/one.airpack.parts -k k.pub
expect_rc 1
expect_err "parts in the wrong order"
run "$AIRPACK" verify --parts o/one.airpack.parts -k k.pub
expect_rc 1
expect_out "BAD      one.airpack.001: holds the content of part 2 ('one.airpack.002'): parts in the wrong order"

# an index that is not signed by a trusted key, or belongs to another bundle
cp -r b x
sed -i 's/"sequence": 1,/"sequence": 2,/' x/one.airpack.parts
run "$AIRPACK" verify x/one.airpack.parts -k k.pub
expect_rc 1
expect_err "signature does not verify"
run "$AIRPACK" verify --parts x/one.airpack.parts -k k.pub
expect_rc 1
cp -r b y
rm -f y/one.airpack.parts.minisig
/usr/bin/python3 - y/one.airpack.parts <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
o["lock_sha256"] = "0" * 64
open(sys.argv[1], "w").write(json.dumps(o, indent=2) + "\n")
PY
minisign -S -s k.sec -m y/one.airpack.parts >/dev/null 2>&1 </dev/null ||
    fail "stock minisign cannot sign the test index"
run "$AIRPACK" verify y/one.airpack.parts -k k.pub
expect_rc 1
expect_err "belongs to another bundle"
done_ok
