#!/bin/sh
# Finds the local stack's containers that its state does not know, such as the one an interrupted
# `pulumi up` was creating when it died: every platform container carries the label
# platform.stack=<stack> (and platform.app, platform.role), so a container with that label whose id the
# state does not hold belongs to nobody. Lists them; --remove deletes them.
#   npm run local:orphans [-- --remove]
set -eu
cd "$(dirname "$0")/.."

remove=false
for arg in "$@"; do
    case "$arg" in
    --remove) remove=true ;;
    *)
        echo "local-orphans: unknown argument '$arg'. Usage: npm run local:orphans [-- --remove]" >&2
        exit 2
        ;;
    esac
done
command -v pulumi >/dev/null 2>&1 || { echo "local-orphans needs the Pulumi CLI: https://www.pulumi.com/docs/install/" >&2; exit 1; }
command -v docker >/dev/null 2>&1 || { echo "local-orphans needs Docker" >&2; exit 1; }
# shellcheck source=commands/local-env.sh
. ./commands/local-env.sh

known=$(mktemp)
trap 'rm -f "$known"' EXIT
# The container ids the state holds (current resources; pending operations have none yet).
# shellcheck disable=SC2016 # JavaScript, not shell
pulumi stack export --stack local | node -e '
let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
  for (const r of JSON.parse(s).deployment.resources ?? [])
    if (r.type === "docker:index/container:Container" && r.id) console.log(r.id);
});' >"$known"

found=0
for id in $(docker ps -aq --no-trunc --filter label=platform.stack=local); do
    grep -qxF "$id" "$known" && continue
    found=$((found + 1))
    name=$(docker inspect --format '{{.Name}} app={{index .Config.Labels "platform.app"}} role={{index .Config.Labels "platform.role"}} release={{index .Config.Labels "platform.release"}} {{.State.Status}}' "$id")
    if [ "$remove" = true ]; then
        docker rm -f "$id" >/dev/null
        echo "local-orphans: removed ${name#/}"
    else
        echo "local-orphans: not in the state: ${name#/} (npm run local:orphans -- --remove deletes it)"
    fi
done
[ "$found" -gt 0 ] || echo "local-orphans: every container labelled platform.stack=local is in the state"
