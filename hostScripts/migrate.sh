#!/bin/sh
# A release migration (the catalog's `migrate`): run once for a new backend release, after the health
# gate found its backend healthy and before the edge switches to it, in a one-off container of the NEW
# backend's image, user, networks and environment, DATABASE_URL included (hostScripts/one-off.sh).
# The old release serves the whole time, so a migration must be backward compatible with it
# (expand/contract: add, backfill, and drop only in a later release).
#
# When it fails or passes its deadline, nothing switches: this exits non-zero with its output, the
# edge keeps serving the previous release, and the new backend keeps running, unrouted, so the next
# `up` retries the migration (a new release replaces it instead). A backend that already serves (the
# live config routes to it) is never migrated again.
#
# Usage: migrate.sh APP CONTAINER SECONDS CMD [ARG…]
#   APP        the catalog app; CONTAINER its new backend; SECONDS the migration's deadline (1 to 86400)
# Environment:
#   ONE_OFF_SCRIPT  the text of hostScripts/one-off.sh (required)
#   LIVE_CONF       the live nginx.conf: its `# platform-route ROUTE NAME:PORT` lines name what serves
#   DOCKER          the docker program (default: docker)
#   POLL_SECONDS    how often the deadline is checked (default: 0.2)
set -eu
docker=${DOCKER:-docker}
poll=${POLL_SECONDS:-0.2}
[ "$#" -ge 4 ] || { echo "usage: migrate.sh APP CONTAINER SECONDS CMD [ARG…]" >&2; exit 2; }
app=$1 container=$2 seconds=$3
shift 3
case $app in "" | -* | *[!a-z0-9-]*) echo "migrate: '$app' is not an app name" >&2; exit 2 ;; esac
case $container in "" | -* | *[!A-Za-z0-9._-]*) echo "migrate: '$container' does not name a container" >&2; exit 2 ;; esac
case $seconds in "" | *[!0-9]*) echo "migrate: '$seconds' is not a whole number of seconds" >&2; exit 2 ;; esac
if [ "$seconds" -lt 1 ] || [ "$seconds" -gt 86400 ]; then echo "migrate: the deadline must be 1 to 86400 seconds, not $seconds" >&2; exit 2; fi
case "$poll" in "" | *[!0-9.]*) echo "migrate: POLL_SECONDS '$poll' is not a number of seconds" >&2; exit 2 ;; esac
: "${ONE_OFF_SCRIPT:?set ONE_OFF_SCRIPT to the text of hostScripts/one-off.sh}"

if [ -n "${LIVE_CONF:-}" ] && [ -f "$LIVE_CONF" ] && grep -qE "^# platform-route $app\\.backend $container:[0-9]+\$" "$LIVE_CONF"; then
    echo "migrate: $app: $container already serves; its migration ran before it did"
    exit 0
fi

# One migration per app at a time, under a fixed name: the deadline removes it by that name, and a
# leftover of an interrupted run (the host rebooted, the up was killed) is removed first.
name="platform-migrate-$app"
"$docker" rm -f "$name" >/dev/null 2>&1 || :
echo "migrate: $app: running '$*' in a one-off container of $container's image (deadline ${seconds}s)"
start=$(date +%s)
ONE_OFF_NAME=$name DOCKER=$docker sh -c "$ONE_OFF_SCRIPT" one-off "$container" "$@" </dev/null &
pid=$!
timed_out=false
while kill -0 "$pid" 2>/dev/null; do
    if [ $(($(date +%s) - start)) -ge "$seconds" ]; then
        timed_out=true
        "$docker" rm -f "$name" >/dev/null 2>&1 || :
        break
    fi
    sleep "$poll"
done
rc=0
wait "$pid" || rc=$?
took=$(($(date +%s) - start))
if [ "$timed_out" = true ]; then
    echo "migrate: $app: the migration passed its ${seconds}s deadline and was stopped" >&2
    [ "$rc" -ne 0 ] || rc=124
fi
if [ "$rc" -ne 0 ]; then
    echo "migrate: $app: the migration failed (exit $rc after ${took}s): nothing switched, the previous release keeps serving." >&2
    echo "migrate: $app: the new backend $container keeps running, unrouted; 'pulumi up' again retries the migration, a new release replaces it." >&2
    exit 1
fi
echo "migrate: $app: done in ${took}s"
