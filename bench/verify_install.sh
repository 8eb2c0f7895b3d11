#!/bin/sh
# bench/verify_install.sh - benchmark of `airpack verify` and `airpack install`
# against the manual ritual they replace (docs/install.md, "Performance").
#
#   sh bench/verify_install.sh [BUILD_DIR] [MIB]
#
# Builds two bundles of MIB MiB of model data (default 1024) with
# tests/gen/mkhostile --big: one shard, and four shards. The files are read
# once first so every contender starts from the page cache. Then, best of
# three runs each:
#   verify, 1 shard   vs  openssl dgst -sha256 of the same bundle
#                         target: at most 1.1x openssl
#   verify, 4 shards  vs  openssl dgst -sha256 of the same bundle
#                         target: faster than one openssl stream (two cores)
#   verify            vs  tar -xf + sha256sum -c by hand (the ritual)
#   install, 1 shard  vs  tar -xf followed by an fsync of each file
#                         target: at most 1.3x
#   peak RSS of verify and install   target: at most 64 MiB
# Prints a table; exit status 0 unless --strict and a target was missed.
#
# Can also be sourced: it defines bench_verify_install BUILD_DIR MIB.
set -eu

bench_vi_time() { # label, command...: best of 3 wall seconds -> $BEST, peak KiB -> $RSS
    BEST=; RSS=0
    for _i in 1 2 3; do
        /usr/bin/time -f "%e %M" -o "$BW/time" "$@" >/dev/null 2>"$BW/stderr" || {
            echo "bench: '$*' failed: $(cat "$BW/stderr")" >&2; return 1; }
        read -r _t _m <"$BW/time"
        if [ -z "$BEST" ] || awk "BEGIN{exit !($_t < $BEST)}"; then BEST=$_t; fi
        [ "$_m" -gt "$RSS" ] && RSS=$_m
        [ -n "${BENCH_AFTER:-}" ] && eval "$BENCH_AFTER"
    done
    return 0
}

bench_vi_row() { # name, ours, baseline, target-kind, target
    _r=$(awk "BEGIN{printf \"%.2f\", ($3 > 0 ? $2 / $3 : 0)}")
    case $4 in
    max) _ok=$(awk "BEGIN{print ($_r <= $5) ? \"ok\" : \"MISSED\"}") ;;
    below) _ok=$(awk "BEGIN{print ($_r < 1) ? \"ok\" : \"MISSED\"}") ;;
    *) _ok=- ;;
    esac
    [ "$_ok" = MISSED ] && BENCH_MISSED=$((BENCH_MISSED + 1))
    printf '%-44s %8ss %8ss %7sx  %s\n' "$1" "$2" "$3" "$_r" "$_ok"
}

bench_verify_install() { # BUILD_DIR MIB
    B=$1; MIB=$2
    A=$B/airpack
    BW=$(mktemp -d "${TMPDIR:-/tmp}/airpack-bench-vi.XXXXXX")
    BENCH_MISSED=0
    "$B/tests/mkhostile" --big "$BW" "$MIB" 1
    "$B/tests/mkhostile" --big "$BW" "$MIB" 4
    K=$BW/trusted.pub
    for f in "$BW"/big-1.tar "$BW"/big-4.tar; do cat "$f" >/dev/null; done
    # the by-hand ritual: a coreutils sums file of the shards (from the lock)
    mkdir "$BW/x"
    tar -xf "$BW/big-4.tar" -C "$BW/x"
    /usr/bin/python3 -c '
import json, sys
lock = json.load(open(sys.argv[1]))
for a in lock["artifacts"]:
    print(a["sha256"] + "  " + a["path"])' "$BW/x/airpack.lock.json" >"$BW/sums"
    rm -rf "$BW/x"

    echo "verify and install: $MIB MiB of model data ($(nproc) cores)"
    printf '%-44s %9s %9s %8s  %s\n' "" "airpack" "baseline" "ratio" "target"
    bench_vi_time openssl dgst -sha256 "$BW/big-1.tar"; o1=$BEST
    bench_vi_time "$A" verify -q "$BW/big-1.tar" -k "$K"; v1=$BEST; vr1=$RSS
    bench_vi_row "verify 1 shard vs openssl dgst (<= 1.1x)" "$v1" "$o1" max 1.1
    bench_vi_time openssl dgst -sha256 "$BW/big-4.tar"; o4=$BEST
    bench_vi_time "$A" verify -q "$BW/big-4.tar" -k "$K"; v4=$BEST; vr4=$RSS
    bench_vi_row "verify 4 shards vs openssl dgst (< 1x)" "$v4" "$o4" below 0
    bench_vi_time sh -c "cat '$BW/big-1.tar' | '$A' verify -q - -k '$K'"; vp=$BEST
    bench_vi_row "verify 1 shard from a pipe vs openssl" "$vp" "$o1" info 0
    BENCH_AFTER="rm -rf '$BW/h'"
    bench_vi_time sh -c "mkdir '$BW/h' && tar -xf '$BW/big-4.tar' -C '$BW/h' && cd '$BW/h' && sha256sum -c --quiet '$BW/sums'"
    hand=$BEST
    BENCH_AFTER=
    bench_vi_row "verify 4 shards vs tar -xf + sha256sum -c" "$v4" "$hand" info 0
    BENCH_AFTER="rm -rf '$BW/t'"
    bench_vi_time sh -c "mkdir '$BW/t' && tar -xf '$BW/big-1.tar' -C '$BW/t' && find '$BW/t' -type f -exec sync {} +"
    tx=$BEST
    BENCH_AFTER="rm -rf '$BW/p'"
    bench_vi_time "$A" install -q "$BW/big-1.tar" -k "$K" -p "$BW/p"; i1=$BEST; ir=$RSS
    BENCH_AFTER=
    bench_vi_row "install 1 shard vs tar -xf + fsync (<= 1.3x)" "$i1" "$tx" max 1.3
    peak=$vr1
    for r in $vr4 $ir; do [ "$r" -gt "$peak" ] && peak=$r; done
    printf '%-44s %8s KiB (verify %s, %s; install %s)  %s\n' "peak RSS (<= 65536 KiB)" "$peak" \
        "$vr1" "$vr4" "$ir" "$( [ "$peak" -le 65536 ] && echo ok || echo MISSED)"
    [ "$peak" -le 65536 ] || BENCH_MISSED=$((BENCH_MISSED + 1))
    rm -rf "$BW"
    return 0
}

case "${0##*/}" in
verify_install.sh)
    STRICT=0
    if [ "${1:-}" = --strict ]; then STRICT=1; shift; fi
    bench_verify_install "${1:-build/dev}" "${2:-1024}"
    if [ "$STRICT" = 1 ] && [ "$BENCH_MISSED" -gt 0 ]; then
        echo "bench: $BENCH_MISSED target(s) missed" >&2
        exit 1
    fi
    ;;
esac
