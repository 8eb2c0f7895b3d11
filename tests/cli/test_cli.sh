#!/bin/sh
# The command-line surface: --version, help, help CMD and CMD --help for
# every command of the brief, unknown commands and options.
. "$AIRPACK_SRC/tests/cli/lib.sh"

run "$AIRPACK" --version
expect_rc 0
expect_out "airpack 0."

run "$AIRPACK" help
expect_rc 0
for c in check plan pin model keygen build inspect verify install rollback list audit sbom; do
    expect_out "  $c "
done

for c in check plan pin model keygen build inspect verify install rollback list audit sbom; do
    run "$AIRPACK" help "$c"
    expect_rc 0
    expect_out "usage: airpack $c"
    run "$AIRPACK" "$c" --help
    expect_rc 0
    expect_out "usage: airpack $c"
done

run "$AIRPACK"
expect_rc 2
expect_err "usage: airpack"

run "$AIRPACK" frobnicate
expect_rc 2
expect_err "unknown command 'frobnicate'"

run "$AIRPACK" help frobnicate
expect_rc 2

run "$AIRPACK" check --bogus-option x.yaml
expect_rc 2
expect_err "see 'airpack check --help'"

run "$AIRPACK" check
expect_rc 2
expect_err "missing MANIFEST"

run "$AIRPACK" check --format yaml x.yaml
expect_rc 2
expect_err "unknown format 'yaml'"

# airpack-verify has only the commands for inside the gap.
run "$AIRPACK_VERIFY" help
expect_rc 0
expect_out "verify"
run "$AIRPACK_VERIFY" build --help
expect_rc 2
expect_err "unknown command 'build'"

done_ok
