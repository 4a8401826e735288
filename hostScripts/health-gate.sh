#!/bin/sh
# The health gate of a release switch, run right before the edge's new config is applied: every
# container the new config routes to that the live config does not (the new release) must turn
# healthy within its bound, or the switch does not happen. A container that fails is stopped (it
# stays, stopped, for inspection: `docker start` it or deploy again), the edge keeps serving the
# previous release, and this exits non-zero with, for each failed container, the last outputs of
# its health command, its last 50 log lines and its exit code: that is what `pulumi up` prints.
#
# Healthy means Docker reports it healthy, or the container's own health command (Docker's, read from
# the container, run the way Docker runs it) passes when run through `docker exec`: the same check,
# asked every POLL_SECONDS instead of every healthcheck interval, so a switch does not wait for the
# interval. Failure is Docker's verdict (unhealthy after its retries), the container exiting, or the
# bound passing.
#
# Environment:
#   CONTAINERS    space-separated NAME:SECONDS, the containers the new config routes to and how long
#                 each may take to turn healthy (required; may be empty)
#   LIVE_CONF     the live nginx.conf: its `# platform-route ROUTE NAME:PORT` lines name what serves now
#                 (optional; absent means nothing serves yet)
#   DOCKER_CMD    how to run docker (default: docker)
#   POLL_SECONDS  how often to ask (default: 0.5)
set -eu

docker_cmd=${DOCKER_CMD:-docker}
poll=${POLL_SECONDS:-0.5}
case "$poll" in "" | *[!0-9.]*) echo "health-gate: POLL_SECONDS '$poll' is not a number of seconds" >&2; exit 2 ;; esac
# The entries are checked before anything runs: only the shapes the program writes.
for entry in ${CONTAINERS?set CONTAINERS to NAME:SECONDS entries}; do
    name=${entry%:*} seconds=${entry##*:}
    case "$name" in "" | -* | *[!A-Za-z0-9._-]*) echo "health-gate: '$entry' does not name a container (NAME:SECONDS)" >&2; exit 2 ;; esac
    case "$seconds" in "" | *[!0-9]*) echo "health-gate: '$entry' has no whole number of seconds (NAME:SECONDS)" >&2; exit 2 ;; esac
    if [ "$entry" = "$name" ] || [ "$seconds" -lt 1 ] || [ "$seconds" -gt 3600 ]; then
        echo "health-gate: '$entry': the bound must be 1 to 3600 seconds" >&2
        exit 2
    fi
done

live_names=""
if [ -n "${LIVE_CONF:-}" ] && [ -f "$LIVE_CONF" ]; then
    live_names=$(sed -n 's/^# platform-route [a-z][a-z0-9.-]* \([A-Za-z0-9][A-Za-z0-9._-]*\):[0-9][0-9]*$/\1/p' "$LIVE_CONF" | sort -u)
fi
is_live() { printf '%s\n' "$live_names" | grep -qxF "$1"; }

# state NAME: "<status> <health>" (health "none" without a healthcheck), or "missing".
state() {
    # shellcheck disable=SC2086 # DOCKER_CMD is a command line
    $docker_cmd inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1" 2>/dev/null || echo missing
}

# probe NAME: runs the container's own health command inside it, as Docker would.
probe() {
    target=$1
    # shellcheck disable=SC2086
    test_lines=$($docker_cmd inspect --format '{{range .Config.Healthcheck.Test}}{{.}}{{"\n"}}{{end}}' "$1" 2>/dev/null) || return 1
    set --
    while IFS= read -r arg; do set -- "$@" "$arg"; done <<PLATFORM_TEST_EOF
$test_lines
PLATFORM_TEST_EOF
    kind=${1:-NONE}
    [ "$#" -ge 2 ] || return 1
    shift
    # shellcheck disable=SC2086
    case "$kind" in
    CMD) $docker_cmd exec "$target" "$@" >/dev/null 2>&1 ;;
    CMD-SHELL) $docker_cmd exec "$target" /bin/sh -c "$1" >/dev/null 2>&1 ;;
    *) return 1 ;;
    esac
}

diagnose() { # NAME REASON
    # shellcheck disable=SC2086
    {
        echo "health-gate: $1 $2."
        echo "  its health command's last outputs:"
        $docker_cmd inspect --format '{{if .State.Health}}{{range .State.Health.Log}}    exit {{.ExitCode}} at {{.End}}: {{.Output}}{{"\n"}}{{end}}{{else}}    (no health check){{"\n"}}{{end}}' "$1" 2>&1 | sed '/^[[:space:]]*$/d'
        echo "  its exit code: $($docker_cmd inspect --format '{{.State.ExitCode}} (status {{.State.Status}}, restarts {{.RestartCount}})' "$1" 2>&1)"
        echo "  its last 50 log lines:"
        $docker_cmd logs --tail 50 "$1" 2>&1 | sed 's/^/    /'
    } >&2
}

pending=""
for entry in $CONTAINERS; do
    name=${entry%:*}
    is_live "$name" || pending="$pending $entry"
done
[ -n "$pending" ] || exit 0

start=$(date +%s)
failed=""
waiting=$pending
while [ -n "$waiting" ]; do
    still=""
    now=$(date +%s)
    for entry in $waiting; do
        name=${entry%:*} seconds=${entry##*:}
        st=$(state "$name")
        case "$st" in
        "running healthy" | "running none") continue ;;
        "running starting")
            if probe "$name"; then continue; fi
            ;;
        "running unhealthy")
            failed="$failed $name"
            diagnose "$name" "is unhealthy (Docker's health check failed its retries)"
            continue
            ;;
        missing)
            failed="$failed $name"
            echo "health-gate: $name does not exist" >&2
            continue
            ;;
        exited* | dead*)
            failed="$failed $name"
            diagnose "$name" "stopped running ($st)"
            continue
            ;;
        esac
        if [ $((now - start)) -ge "$seconds" ]; then
            failed="$failed $name"
            diagnose "$name" "did not turn healthy within ${seconds}s (state: $st)"
            continue
        fi
        still="$still $entry"
    done
    waiting=$still
    [ -z "$waiting" ] || sleep "$poll"
done

if [ -n "$failed" ]; then
    for name in $failed; do
        # shellcheck disable=SC2086
        $docker_cmd stop --time 10 "$name" >/dev/null 2>&1 || true
    done
    echo "health-gate: stopped$failed; the edge still serves the previous release. Fix the release (or roll back) and run pulumi up again." >&2
    exit 1
fi
echo "health-gate: healthy after $(($(date +%s) - start))s:$pending"
