#!/bin/sh
# Runs before the PostgreSQL container is created or replaced: refuses a data volume the new server
# cannot open. A PostgreSQL major version cannot start on another major's data directory (that needs
# a dump and restore), and the server runs as PG_UID without capabilities, so the directory must
# belong to that UID. An empty volume is fine: the image initialises it on first start.
# It reads the volume through a throwaway, hardened container of the server's own image (no network,
# no capabilities, read-only root and a read-only mount).
#
# Environment (all required):
#   VOLUME   data volume, e.g. platform-pgdata
#   IMAGE    the PostgreSQL image about to run, e.g. postgres:15.10-bookworm
#   MAJOR    its major version, e.g. 15
#   PG_UID   UID the server runs as, e.g. 999
set -eu

: "${VOLUME:?set VOLUME to the data volume}" "${IMAGE:?set IMAGE to the PostgreSQL image}" "${MAJOR:?set MAJOR to its major version}" "${PG_UID:?set PG_UID to the server UID}"
fail() {
    echo "check-postgres-data: $*" >&2
    exit 1
}
case "$VOLUME" in "" | *[!A-Za-z0-9_.-]*) fail "VOLUME '$VOLUME' is not a volume name" ;; esac
case "$IMAGE" in "" | -* | *[!A-Za-z0-9_.:/@-]*) fail "IMAGE '$IMAGE' is not an image reference" ;; esac
case "$MAJOR" in "" | *[!0-9]*) fail "MAJOR '$MAJOR' is not a number" ;; esac
case "$PG_UID" in "" | *[!0-9]*) fail "PG_UID '$PG_UID' is not a number" ;; esac

# Prints one line: <state> <owner uid> [<PG_VERSION>]
# shellcheck disable=SC2016 # expanded by the helper container's shell
inspect='d=/data
if ! entries=$(ls -A "$d" 2>/dev/null); then echo "unreadable $(stat -c %u "$d")"
elif [ -z "$entries" ]; then echo "empty $(stat -c %u "$d")"
elif [ -f "$d/PG_VERSION" ]; then echo "version $(stat -c %u "$d") $(head -c 16 "$d/PG_VERSION")"
else echo "other $(stat -c %u "$d")"; fi'

out=$(docker run --rm --network none --read-only --cap-drop ALL --security-opt no-new-privileges:true \
    --memory 64m --memory-swap 64m --pids-limit 32 --user "$PG_UID:$PG_UID" \
    --volume "$VOLUME:/data:ro" --entrypoint sh "$IMAGE" -c "$inspect") ||
    fail "could not read the volume $VOLUME with $IMAGE (docker's message is above)"

state=$(printf '%s\n' "$out" | tail -n 1 | cut -d' ' -f1)
owner=$(printf '%s\n' "$out" | tail -n 1 | cut -d' ' -f2)
found=$(printf '%s\n' "$out" | tail -n 1 | cut -d' ' -f3 | tr -cd '0-9.')

chown_fix="docker run --rm --volume $VOLUME:/data $IMAGE chown -R $PG_UID:$PG_UID /data"
case "$state" in
empty)
    echo "check-postgres-data: $VOLUME is empty; PostgreSQL $MAJOR will initialise it"
    ;;
version)
    if [ "$found" != "$MAJOR" ]; then
        fail "refusing to start PostgreSQL $MAJOR ($IMAGE) on $VOLUME: it holds a PostgreSQL $found data directory, which a different major version cannot open. The running server was left as it is.
An upgrade is a dump and restore, not a new image on the old data:
  1. keep POSTGRES_IMAGE in render/postgres.ts at a $found image and deploy, so the old server runs;
  2. dump everything: docker exec platform-postgres pg_dumpall -U postgres > platform-$found.sql (and keep a copy off the host);
  3. put the old volume aside and give the new server an empty one (docker volume rm only after the dump is verified);
  4. deploy the $MAJOR image, then restore: docker exec -i platform-postgres psql -U postgres -d postgres < platform-$found.sql"
    fi
    if [ "$owner" != "$PG_UID" ]; then
        fail "$VOLUME belongs to UID $owner, but PostgreSQL runs as UID $PG_UID without capabilities and could not open it. Fix once: $chown_fix"
    fi
    echo "check-postgres-data: $VOLUME holds a PostgreSQL $found data directory owned by UID $PG_UID: ok"
    ;;
unreadable)
    fail "$VOLUME cannot be read as UID $PG_UID (it belongs to UID $owner). Fix once: $chown_fix"
    ;;
*)
    fail "$VOLUME is not empty but holds no PostgreSQL data directory (no PG_VERSION): check what is on it before deploying (docker run --rm --volume $VOLUME:/data:ro $IMAGE ls -la /data)"
    ;;
esac
