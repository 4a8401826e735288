#!/bin/sh
# Recovers the local stack after an interrupted `pulumi up` (Ctrl-C twice, a killed terminal, a crash),
# without any prompt:
#   1. the stack's lock: a lock whose process is gone (same host, pid no longer running) is removed;
#      a live one is left alone and named;
#   2. the operations the dead update left pending: `pulumi refresh --clear-pending-creates` drops the
#      creates it had started (a container it was creating may exist without the state knowing it:
#      `npm run local:orphans` finds it by its platform.stack label, `-- --remove` deletes it) and reads
#      every other resource back from Docker;
#   3. then `pulumi up` (or npm run local:up) finishes the change.
#   npm run local:recover
set -eu
cd "$(dirname "$0")/.."
command -v pulumi >/dev/null 2>&1 || { echo "local-recover needs the Pulumi CLI: https://www.pulumi.com/docs/install/" >&2; exit 1; }
# shellcheck source=commands/local-env.sh
. ./commands/local-env.sh

locks="$PWD/.pulumi-state/.pulumi/locks"
if [ -d "$locks" ]; then
    host=$(hostname)
    list=$(mktemp)
    find "$locks" -path "*/local/*" -name "*.json" -type f >"$list"
    # shellcheck disable=SC2094 # the list is read here and removed only on the way out
    while IFS= read -r lock; do
        # shellcheck disable=SC2016 # JavaScript, not shell
        owner=$(node -e 'const l = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(`${l.pid ?? ""} ${l.hostname ?? ""}`)' "$lock")
        pid=${owner%% *} lock_host=${owner#* }
        if [ "$lock_host" = "$host" ] && [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$lock"
            echo "local-recover: removed the lock of the dead update (pid $pid)"
        else
            echo "local-recover: the stack is locked by pid $pid on $lock_host, which may still run; left alone ($lock)" >&2
            rm -f "$list"
            exit 1
        fi
    done <"$list"
    rm -f "$list"
fi
pulumi refresh --stack local --yes --non-interactive --skip-preview --clear-pending-creates
echo "local-recover: the state matches Docker again. Next: npm run local:orphans (containers no state knows), then pulumi up."
