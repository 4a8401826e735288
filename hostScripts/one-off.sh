#!/bin/sh
# A one-off container of an app's current backend release (npm run exec): the backend's image, user,
# memory limit and hardening, on every network the backend is on, with the environment the program
# gave it (DATABASE_URL included), removed when the command ends.
#
# Usage: one-off.sh CONTAINER [CMD ARG…]   (CONTAINER: the backend's id, found by its labels)
# The environment's values never reach a command line: each variable is exported into this shell and
# named to docker with `-e NAME`, so docker reads its value from its own environment, which only root
# can read in /proc. Environment: ONE_OFF_TTY=1 allocates a terminal (an interactive console);
# ONE_OFF_NAME names the container (a release migration's, so its deadline can remove it).
set -eu
docker=${DOCKER:-docker}
id=${1:?usage: one-off.sh CONTAINER [CMD ARG…]}
shift
case $id in *[!A-Za-z0-9_.-]*) echo "one-off: bad container reference" >&2; exit 2 ;; esac
container_name=${ONE_OFF_NAME:-}
case $container_name in -* | *[!A-Za-z0-9_.-]*) echo "one-off: ONE_OFF_NAME '$container_name' is not a container name" >&2; exit 2 ;; esac

image=$("$docker" inspect --format '{{.Image}}' "$id")
app=$("$docker" inspect --format '{{index .Config.Labels "platform.app"}}' "$id")
user=$("$docker" inspect --format '{{.Config.User}}' "$id")
memory=$("$docker" inspect --format '{{.HostConfig.Memory}}' "$id")
# shellcheck disable=SC2016 # a Go template, not shell
networks=$("$docker" inspect --format '{{range $name, $n := .NetworkSettings.Networks}}{{$name}} {{end}}' "$id")
case $app in "" | *[!a-z0-9-]*) echo "one-off: $id is not an app container" >&2; exit 2 ;; esac

# The variables the program set (those the image does not define itself), exported, never printed.
work=$(mktemp -d "${TMPDIR:-/tmp}/platform-one-off.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$docker" image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$image" >"$work/image-env"
"$docker" inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$id" >"$work/env"
names=""
while IFS= read -r line; do
    [ -n "$line" ] || continue
    if grep -qxF -- "$line" "$work/image-env"; then continue; fi
    name=${line%%=*}
    case $name in "" | [0-9]* | *[!A-Za-z0-9_]*) continue ;; PATH | HOME | HOSTNAME) continue ;; esac
    export "${line?}"
    names="$names $name"
done <"$work/env"
rm -f "$work/env" "$work/image-env"

first=""
for n in $networks; do first=$n; break; done
[ -n "$first" ] || { echo "one-off: $id is on no network" >&2; exit 1; }
tty=""
if [ "${ONE_OFF_TTY:-0}" = 1 ]; then tty=-t; fi
env_args=""
for name in $names; do env_args="$env_args -e $name"; done
# The command is what runs, not arguments to the image's ENTRYPOINT (a server, for most app images):
# its first word becomes the entrypoint. Without a command, the image's own entrypoint and command run.
entrypoint=""
if [ "$#" -ge 1 ]; then
    entrypoint=$1
    shift
fi
# shellcheck disable=SC2086 # $tty, $env_args: options made of checked names only
cid=$("$docker" create --rm -i $tty ${container_name:+--name "$container_name"} --network "$first" $env_args \
    --cap-drop ALL --security-opt no-new-privileges:true --memory "$memory" --memory-swap "$memory" \
    ${user:+--user "$user"} --label "platform.app=$app" --label platform.role=one-off \
    ${entrypoint:+--entrypoint "$entrypoint"} "$image" "$@")
for n in $networks; do
    [ "$n" = "$first" ] || "$docker" network connect "$n" "$cid"
done
# --rm removes it when it exits; its exit code is the command's.
rc=0
"$docker" start -a -i "$cid" || rc=$?
"$docker" rm -f "$cid" >/dev/null 2>&1 || :
exit "$rc"
