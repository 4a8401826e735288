#!/bin/sh
# Holds an SSH local forward open for as long as the process WATCH_PID lives (the Pulumi language
# host, which outlives the program and stays until the deployment's last delete), then closes it,
# so no ssh process outlives the deployment. Also closes after MAX_SECONDS whatever happens.
#
# Usage: ssh-forward.sh LOCAL_PORT REMOTE_HOST_PORT DESTINATION [ssh options...]
#   e.g. ssh-forward.sh 40123 127.0.0.1:5432 root@203.0.113.7 -o StrictHostKeyChecking=yes ...
# Environment: WATCH_PID (required), MAX_SECONDS (default 7200).
set -u
: "${WATCH_PID:?set WATCH_PID to the process whose lifetime bounds the forward}"
max_seconds=${MAX_SECONDS:-7200}
local_port=$1
remote=$2
destination=$3
shift 3

ssh -N -o ExitOnForwardFailure=yes -L "127.0.0.1:$local_port:$remote" "$@" "$destination" &
ssh_pid=$!
trap 'kill "$ssh_pid" 2>/dev/null; exit 0' TERM INT HUP

elapsed=0
while kill -0 "$ssh_pid" 2>/dev/null && kill -0 "$WATCH_PID" 2>/dev/null && [ "$elapsed" -lt "$max_seconds" ]; do
    sleep 1
    elapsed=$((elapsed + 1))
done
if kill -0 "$ssh_pid" 2>/dev/null; then
    kill "$ssh_pid" 2>/dev/null
    wait "$ssh_pid" 2>/dev/null
    exit 0
fi
wait "$ssh_pid"
