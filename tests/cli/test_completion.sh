#!/bin/sh
# test_completion.sh - `airpack completion bash` through the real binary,
# loaded into a real bash: `complete -p` names the function, and the
# function (driven as bash drives it, through COMP_WORDS/COMP_CWORD)
# completes `airpack ve<TAB>` to verify, `airpack check --format <TAB>` to
# the formats, `--policy <TAB>` to the shipped packs, options per command,
# and file names for path arguments. Every command of `airpack help` is
# offered, so a new command cannot be left out.
set -eu
. "$AIRPACK_SRC/tests/cli/lib.sh"
command -v bash >/dev/null || { echo "skip: no bash"; exit 0; }

run "$AIRPACK" completion bash; expect_rc 0
printf '%s\n' "$OUT" >"$T/airpack.bash"
run "$AIRPACK" completion fish; expect_rc 2; expect_err "unknown shell 'fish'"
run "$AIRPACK" completion; expect_rc 2

mkdir -p "$T/files/sub" && : >"$T/files/bundle.airpack" && : >"$T/files/key.pub"

# complete WORDS...: the candidates bash offers for the last word
complete_words() {
    bash --norc --noprofile -c '
        . "$1"; shift
        complete -p airpack >/dev/null || { echo "no complete -p entry" >&2; exit 3; }
        COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
        _airpack
        printf "%s\n" "${COMPREPLY[@]}" | sort' bash "$T/airpack.bash" "$@"
}

check_has() {   # check_has WANT WORDS...
    want=$1; shift
    CHECKS=$((CHECKS + 1))
    got=$(cd "$T/files" && complete_words "$@")
    printf '%s\n' "$got" | grep -qx -- "$want" || fail "completing '$*' offers no '$want': $(echo $got)"
}
check_only() {  # check_only "SORTED WORDS" WORDS...
    want=$1; shift
    CHECKS=$((CHECKS + 1))
    got=$(cd "$T/files" && complete_words "$@" | tr '\n' ' ' | sed 's/ $//')
    [ "$got" = "$want" ] || fail "completing '$*' gave '$got', expected '$want'"
}

check_only "verify" airpack ve
check_only "html json markdown sarif text" airpack check --format ""
check_only "json text" airpack verify --format ""
check_has baseline airpack check --policy ""
check_has eu-sovereignty airpack check --policy ""
check_has --public-key airpack verify --
check_has --secret-key airpack build --
check_has bundle.airpack airpack verify ""
check_has key.pub airpack install bundle.airpack --public-key k
check_has sub airpack install bundle.airpack --prefix ""

# every command the binary lists is completed at position one
run "$AIRPACK" help; expect_rc 0
cmds=$(printf '%s\n' "$OUT" | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z-]*\)  .*/\1/p')
CHECKS=$((CHECKS + 1))
[ "$(printf '%s\n' "$cmds" | grep -c .)" -ge 13 ] || fail "airpack help lists too few commands: $cmds"
for c in $cmds; do
    check_has "$c" airpack ""
done

# the zsh script loads the same function through bashcompinit
run "$AIRPACK" completion zsh; expect_rc 0; expect_out "bashcompinit"; expect_out "complete -F _airpack airpack"
done_ok
