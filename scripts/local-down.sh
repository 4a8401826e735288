#!/bin/sh
# Removes everything the local stack created. The PostgreSQL volume is protected, so its data
# survives unless you also pass --purge-data.
set -eu
cd "$(dirname "$0")/.."
command -v pulumi >/dev/null 2>&1 || { echo "local-down needs the Pulumi CLI: https://www.pulumi.com/docs/install/" >&2; exit 1; }
# shellcheck source=scripts/local-env.sh
. ./scripts/local-env.sh
if [ "${1:-}" = "--purge-data" ]; then
    pulumi state unprotect --stack local --all --yes
fi
pulumi destroy --stack local --yes --non-interactive --run-program
