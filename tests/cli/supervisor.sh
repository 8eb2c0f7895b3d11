#!/bin/sh
# supervisor.sh - a stand-in for systemctl in the activation tests
# (tests/cli/test_activate.sh): `airpack activate --service-manager
# "sh supervisor.sh"` calls it with systemctl's verbs, and it starts and
# stops the unit's ExecStart as a real process, so the health checks go to
# a real server over real sockets.
#
#   supervisor.sh daemon-reload       re-read nothing (logged)
#   supervisor.sh restart UNIT        stop UNIT, then start it from
#                                     $AIRPACK_SYSTEMD_DIR/UNIT: WorkingDirectory=,
#                                     EnvironmentFile= (KEY="VALUE" lines) and
#                                     ExecStart= (split on blanks, as the test's
#                                     paths have none); output to STATE/UNIT.log
#   supervisor.sh stop UNIT           SIGTERM, then SIGKILL after 10 s
#   supervisor.sh is-active UNIT      exit 0 when its process runs
#
# STATE is $SUPERVISOR_STATE: UNIT.pid, UNIT.log and calls.log (one line per
# call). Exit status 1 when a unit file is missing or has no ExecStart.
set -eu
D=${AIRPACK_SYSTEMD_DIR:?AIRPACK_SYSTEMD_DIR names the unit folder}
S=${SUPERVISOR_STATE:?SUPERVISOR_STATE names the state folder}
mkdir -p "$S"
echo "$*" >>"$S/calls.log"

running() { # UNIT
    [ -f "$S/$1.pid" ] && kill -0 "$(cat "$S/$1.pid")" 2>/dev/null
}

stop() { # UNIT
    [ -f "$S/$1.pid" ] || return 0
    pid=$(cat "$S/$1.pid")
    if kill -TERM "$pid" 2>/dev/null; then
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$S/$1.pid"
}

start() { # UNIT
    f="$D/$1"
    [ -f "$f" ] || { echo "supervisor: unit '$1' not found in $D" >&2; exit 1; }
    exec_start=$(sed -n 's/^ExecStart=//p' "$f" | tail -n 1)
    env_file=$(sed -n 's/^EnvironmentFile=-\{0,1\}//p' "$f" | tail -n 1)
    wd=$(sed -n 's/^WorkingDirectory=//p' "$f" | tail -n 1)
    [ -n "$exec_start" ] || { echo "supervisor: unit '$1' has no ExecStart" >&2; exit 1; }
    (
        cd "${wd:-/}"
        if [ -n "$env_file" ] && [ -f "$env_file" ]; then
            set -a
            . "$env_file"
            set +a
        fi
        # shellcheck disable=SC2086
        exec $exec_start
    ) </dev/null >>"$S/$1.log" 2>&1 &
    echo $! >"$S/$1.pid"
}

case "${1:-}" in
daemon-reload) ;;
restart) stop "$2"; start "$2" ;;
start) running "$2" || start "$2" ;;
stop) stop "$2" ;;
is-active) running "$2" ;;
*) echo "supervisor: unknown verb '${1:-}'" >&2; exit 2 ;;
esac
