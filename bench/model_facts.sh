#!/bin/sh
# bench/model_facts.sh - how long `airpack model` takes to read the facts of
# a 30-shard model (Llama-3.1-70B shapes, 141 GB of sparse safetensors: only
# the headers are read), and of a 40 GB GGUF. A benchmark, not a test.
#
# usage: bench/model_facts.sh [BUILD_DIR] [RUNS]   (default build/dev, 20 runs)
set -eu
B=${1:-build/dev}
RUNS=${2:-20}
AIRPACK="$B/airpack"
G="$B/tests"
[ -x "$AIRPACK" ] && [ -x "$G/mksafetensors" ] && [ -x "$G/mkgguf" ] || {
    echo "error: build airpack and tests/gen first (missing in '$B')" >&2
    exit 2
}
T=$(mktemp -d "${TMPDIR:-/tmp}/airpack-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM

"$G/mksafetensors" --preset llama-3.1-70b --shards 30 "$T/llama-70b"
"$G/mkgguf" --preset llama-3.1-70b --type Q4_K_M "$T/llama-70b.gguf"
echo "fixtures: $(ls "$T/llama-70b" | grep -c '\.safetensors$') shards, $(du -sk "$T" | cut -f1) KiB on disk" \
     "for $(du -sk --apparent-size "$T" | cut -f1) KiB of model"

now_ns() { date +%s%N; }
bench() {
    label=$1
    shift
    "$@" >/dev/null   # warm the page cache
    t0=$(now_ns)
    i=0
    while [ "$i" -lt "$RUNS" ]; do
        "$@" >/dev/null
        i=$((i + 1))
    done
    t1=$(now_ns)
    echo "$label: $(( (t1 - t0) / RUNS / 1000 )) us per run (mean of $RUNS, process start included)"
}
bench "baseline: airpack --version (process start)" "$AIRPACK" --version
bench "30-shard safetensors + config.json" "$AIRPACK" model --format json "$T/llama-70b"
bench "GGUF Q4_K_M (80 layers, 128256-token vocabulary)" "$AIRPACK" model --format json "$T/llama-70b.gguf"
"$AIRPACK" model "$T/llama-70b" | sed -n '1,8p'
