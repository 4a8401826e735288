#!/bin/sh
# Tears the local stack down. The PostgreSQL data volume is protected against config changes and
# retained on delete, so `pulumi destroy` alone refuses: this unprotects the stack's resources, and
# destroy then removes everything but the volume (it leaves the stack's state, not Docker). The next
# `npm run local:up` starts on the same data; its reconcile step sets the admin password the new
# state holds, and each app's role is adopted with its new password.
#   --purge-data   also delete the data volume (every app's database): `docker volume rm`.
set -eu
cd "$(dirname "$0")/.."

VOLUME=platform-pgdata
purge=false
for arg in "$@"; do
    case "$arg" in
    --purge-data) purge=true ;;
    *)
        echo "local-down: unknown argument '$arg'. Usage: npm run local:down [-- --purge-data]" >&2
        exit 2
        ;;
    esac
done

command -v pulumi >/dev/null 2>&1 || { echo "local-down needs the Pulumi CLI: https://www.pulumi.com/docs/install/" >&2; exit 1; }
if [ "$purge" = true ] && ! command -v docker >/dev/null 2>&1; then
    echo "local-down --purge-data needs Docker to delete the volume $VOLUME" >&2
    exit 1
fi
# shellcheck source=commands/local-env.sh
. ./commands/local-env.sh

if pulumi stack select local --non-interactive >/dev/null 2>&1; then
    # Protection guards the volume against a config change; tearing down on purpose lifts it. The
    # volume is also retainOnDelete, so destroy forgets it without deleting it. No --run-program: the
    # program would declare `protect` again and destroy would refuse the volume ("cannot be deleted").
    # The local stack needs no channel the program opens (PostgreSQL is on this machine's loopback),
    # so the recorded provider settings are enough.
    pulumi state unprotect --stack local --all --yes
    pulumi destroy --stack local --yes --non-interactive
else
    echo "local-down: no local stack to destroy"
fi

if [ "$purge" = true ]; then
    if docker volume inspect "$VOLUME" >/dev/null 2>&1; then
        docker volume rm "$VOLUME" >/dev/null
        echo "local-down: deleted the data volume $VOLUME"
    else
        echo "local-down: no data volume $VOLUME to delete"
    fi
else
    echo "local-down: the data volume $VOLUME is kept; npm run local:up starts on it again (add -- --purge-data to delete it)"
fi
