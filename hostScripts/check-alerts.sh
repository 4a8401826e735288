#!/bin/sh
# The host's alerts checker: run by cron every few minutes (render/cloudInit.ts installs it with its
# settings and cron file), and by `npm run status` in --facts mode. No agent, no database, no UI: it
# reads the Docker API over its Unix socket with `nc -U` (not the docker CLI, whose Go runtime alone
# takes ~24 MiB), probes the edge from inside its network namespace with nsenter + wget, and checks
# the served certificate with openssl. It reports, one line each:
#   container   a platform container that is unhealthy, not running, or restarting in a loop
#               (RESTART_LOOP restarts or more since the previous check, or restarting right now);
#   disk        a filesystem of DISK_PATHS over DISK_MAX_PERCENT;
#   certificate the served certificate (CERT_CONNECT) or CERT_FILE expires within CERT_MIN_DAYS days;
#   backup      the newest successful backup older than BACKUP_MAX_HOURS, none at all, or a failed last run;
#   generation  nginx not serving the generation stamped in the nginx.conf on disk.
#
# Usage: check-alerts.sh [--facts] [SETTINGS_FILE]
#   default  print `alert KIND: DETAIL` lines, report them (below), exit 1 if any, 0 if none
#   --facts  also print what it measured (`container …`, `disk …`, `memory …`, `certificate …`,
#            `backup …`, `generation …`), report nothing, keep no state (npm run status reads this)
# Reports: on a run with alerts, the text is POSTed to HEARTBEAT_URL/fail (healthchecks.io-style);
# when alerts clear, HEARTBEAT_URL itself is pinged once. WEBHOOK_URL gets {"text": "..."} whenever
# the set of alerts changes (new alerts, or all clear), so a chat channel is not pinged every run.
#
# Settings (environment, or the settings file: KEY='value' lines written by the program):
#   DOCKER_SOCKET (/var/run/docker.sock), DISK_PATHS (/), DISK_MAX_PERCENT (90),
#   CERT_CONNECT (host:port, e.g. 127.0.0.1:443; empty: read CERT_FILE), CERT_SERVERNAME, CERT_FILE,
#   CERT_MIN_DAYS (14), BACKUP_LOG (backup.sh's log) or BACKUP_DIR (the local stack's directory),
#   BACKUP_MAX_HOURS (26), NGINX_CONF (the nginx.conf holding the stamp), EDGE_CONTAINER (platform-edge),
#   EDGE_HOST (Host header of the probe), PROBE_CMD (prints what nginx serves at /__platform/generation;
#   default: wget inside the edge's network namespace), RESTART_LOOP (3), STATE_DIR
#   (/var/lib/platform-alerts), HEARTBEAT_URL, WEBHOOK_URL, HOST_LABEL (name in reports, default hostname),
#   EXTRA_LABEL (KEY=VALUE: only containers that carry it too); CERT_SETTINGS_FILE and BACKUP_SETTINGS_FILE:
#   the certificate job's and the backups' settings, whose DOMAIN and HEARTBEAT_URL are used when
#   CERT_SERVERNAME and HEARTBEAT_URL are not set.
set -eu
umask 077

facts=false
case "${1:-}" in
    --facts) facts=true; shift ;;
    --help | -h) sed -n '2,/^set -eu$/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --*) echo "check-alerts: unknown option $1 (only --facts)" >&2; exit 2 ;;
esac
if [ $# -gt 0 ]; then
    # shellcheck disable=SC1090 # written by the program: single-quoted values only
    . "$1"
fi
# On a server, the domain and the heartbeat URL are the ones the program already wrote for the
# certificate job and the backups (KEY='value' files): read those two keys, nothing else from them.
setting_of() { [ -r "$1" ] && sed -n "s/^$2='\\([^']*\\)'\$/\\1/p" "$1" | head -n 1; }
if [ -n "${CERT_SETTINGS_FILE:-}" ] && [ -z "${CERT_SERVERNAME:-}" ]; then CERT_SERVERNAME=$(setting_of "$CERT_SETTINGS_FILE" DOMAIN || :); fi
if [ -n "${BACKUP_SETTINGS_FILE:-}" ] && [ -z "${HEARTBEAT_URL:-}" ]; then HEARTBEAT_URL=$(setting_of "$BACKUP_SETTINGS_FILE" HEARTBEAT_URL || :); fi
EDGE_HOST=${EDGE_HOST:-${CERT_SERVERNAME:-}}
case ${CERT_SERVERNAME:-} in *[!a-z0-9.-]*) echo "check-alerts: bad CERT_SERVERNAME" >&2; exit 2 ;; esac
for url in "${HEARTBEAT_URL:-}" "${WEBHOOK_URL:-}"; do
    case $url in *[!A-Za-z0-9.:/_~%-]*) echo "check-alerts: bad HEARTBEAT_URL or WEBHOOK_URL" >&2; exit 2 ;; esac
done

DOCKER_SOCKET=${DOCKER_SOCKET:-/var/run/docker.sock}
DISK_PATHS=${DISK_PATHS:-/}
DISK_MAX_PERCENT=${DISK_MAX_PERCENT:-90}
CERT_MIN_DAYS=${CERT_MIN_DAYS:-14}
BACKUP_MAX_HOURS=${BACKUP_MAX_HOURS:-26}
EDGE_CONTAINER=${EDGE_CONTAINER:-platform-edge}
RESTART_LOOP=${RESTART_LOOP:-3}
STATE_DIR=${STATE_DIR:-/var/lib/platform-alerts}
HOST_LABEL=${HOST_LABEL:-$(hostname 2>/dev/null || echo host)}

number() { case $2 in "" | *[!0-9]*) echo "check-alerts: $1 must be a whole number, got '$2'" >&2; exit 2 ;; esac; }
number DISK_MAX_PERCENT "$DISK_MAX_PERCENT"
number CERT_MIN_DAYS "$CERT_MIN_DAYS"
number BACKUP_MAX_HOURS "$BACKUP_MAX_HOURS"
number RESTART_LOOP "$RESTART_LOOP"
case $EDGE_CONTAINER in "" | *[!A-Za-z0-9_.-]*) echo "check-alerts: bad EDGE_CONTAINER" >&2; exit 2 ;; esac
# Only containers that also carry this label (KEY=VALUE), e.g. one test's on a shared engine.
case ${EXTRA_LABEL:-} in "") ;; *[!a-z0-9.=A-Z_-]* | *=*=* | =* | *=) echo "check-alerts: bad EXTRA_LABEL" >&2; exit 2 ;; *=*) ;; *) echo "check-alerts: EXTRA_LABEL is KEY=VALUE" >&2; exit 2 ;; esac

work=$(mktemp -d "${TMPDIR:-/tmp}/platform-alerts.XXXXXX")
trap 'rm -rf "$work"' EXIT
alerts="$work/alerts"
: >"$alerts"
now=$(date -u +%s)

fact() { if $facts; then printf '%s\n' "$*"; fi; }
# Alert text reaches JSON and chat: keep it to plain characters.
alert() { printf '%s\n' "$*" | tr -cd 'A-Za-z0-9 ._:/%()=,+\n-' >>"$alerts"; }

# --- Containers: every one with a platform.role label, through the Docker API. ---
docker_get() {
    printf 'GET %s HTTP/1.0\r\nHost: docker\r\n\r\n' "$1" | nc -U -w 10 "$DOCKER_SOCKET" | tr -d '\r' | sed '1,/^$/d'
}
if [ -S "$DOCKER_SOCKET" ] && command -v nc >/dev/null 2>&1; then
    # filters={"label":["platform.role"(,"EXTRA_LABEL")]}
    extra=""
    if [ -n "${EXTRA_LABEL:-}" ]; then extra="%2C%22$(printf '%s' "$EXTRA_LABEL" | sed 's/=/%3D/')%22"; fi
    docker_get "/containers/json?all=1&filters=%7B%22label%22%3A%5B%22platform.role%22$extra%5D%7D" >"$work/list" || :
    grep -oE '"Id":"[0-9a-f]{64}"' "$work/list" | cut -d'"' -f4 >"$work/ids" || :
    if [ ! -s "$work/list" ]; then alert "container: the Docker API at $DOCKER_SOCKET did not answer"; fi
    : >"$work/inspect"
    while IFS= read -r id; do
        docker_get "/containers/$id/json" | tr -d '\n' >>"$work/inspect" || :
        echo >>"$work/inspect"
    done <"$work/ids"
    # One line per container: name app role release state health restarts restarting pid image.
    awk '
        function first(re, cut,   s) { if (match($0, re)) { s = substr($0, RSTART, RLENGTH); sub(cut, "", s); gsub(/"/, "", s); return s } return "" }
        function word(s) { gsub(/[^A-Za-z0-9_.:@+-]/, "", s); return s == "" ? "-" : s }
        NF > 0 {
            name = first("\"Name\":\"/[^\"]*\"", "^\"Name\":\"/")
            app = first("\"platform\\.app\":\"[^\"]*\"", "^\"platform\\.app\":\"")
            role = first("\"platform\\.role\":\"[^\"]*\"", "^\"platform\\.role\":\"")
            rel = first("\"platform\\.release\":\"[^\"]*\"", "^\"platform\\.release\":\"")
            state = first("\"State\":\\{\"Status\":\"[a-z]*\"", "^\"State\":\\{\"Status\":\"")
            health = first("\"Health\":\\{\"Status\":\"[a-z]*\"", "^\"Health\":\\{\"Status\":\"")
            restarts = first("\"RestartCount\":[0-9]+", "^\"RestartCount\":")
            restarting = first("\"Restarting\":(true|false)", "^\"Restarting\":")
            pid = first("\"Pid\":[0-9]+", "^\"Pid\":")
            image = first("\"Image\":\"sha256:[0-9a-f]+\"", "^\"Image\":\"sha256:")
            print word(name), word(app), word(role), word(rel), word(state), word(health == "" ? "none" : health), word(restarts == "" ? "0" : restarts), word(restarting), word(pid), word(substr(image, 1, 12))
        }' "$work/inspect" >"$work/containers"
    previous="$STATE_DIR/restarts"
    : >"$work/restarts"
    while read -r name app role rel state health restarts restarting pid image; do
        fact "container $name $app $role $rel $state $health $restarts $image"
        printf '%s %s\n' "$name" "$restarts" >>"$work/restarts"
        what=$role
        [ "$app" = - ] || what="$app/$role"
        if [ "$restarting" = true ] || [ "$state" = restarting ]; then
            alert "container: $what ($name) is restarting (restarted $restarts times)"
        elif [ "$state" != running ]; then
            alert "container: $what ($name) is $state"
        elif [ "$health" = unhealthy ]; then
            alert "container: $what ($name) is unhealthy"
        fi
        if [ -f "$previous" ]; then
            before=$(awk -v n="$name" '$1 == n { print $2 }' "$previous")
            if [ -n "$before" ] && [ "$restarts" -ge "$((before + RESTART_LOOP))" ]; then
                alert "container: $what ($name) restarted $((restarts - before)) times since the last check"
            fi
        fi
        if [ "$role" = edge ] && [ "$pid" != - ] && [ "$pid" != 0 ]; then echo "$pid" >"$work/edge-pid"; fi
    done <"$work/containers"
else
    alert "container: no Docker API at $DOCKER_SOCKET (or nc is not installed)"
fi

# --- Disk and memory. ---
for path in $DISK_PATHS; do
    line=$(df -Pk "$path" 2>/dev/null | awk 'NR == 2 { sub(/%/, "", $5); print $5, $3, $2, $6 }') || line=""
    if [ -z "$line" ]; then alert "disk: cannot read $path"; continue; fi
    # shellcheck disable=SC2086 # four numbers and a mount point, split on purpose
    set -- $line
    fact "disk $4 $1 $2 $3"
    if [ "$1" -gt "$DISK_MAX_PERCENT" ]; then alert "disk: $4 is $1% full (threshold $DISK_MAX_PERCENT%)"; fi
done
if [ -r /proc/meminfo ]; then
    fact "memory $(awk '/^MemTotal:/ { t = $2 } /^MemAvailable:/ { a = $2 } END { print t, a }' /proc/meminfo)"
fi

# A host without the certificate job (behind the load balancer) or without backups (not host 0, no
# app database) has no such settings file: those checks do not apply there.
cert_check=true backup_check=true
if [ -n "${CERT_SETTINGS_FILE:-}" ] && [ ! -f "$CERT_SETTINGS_FILE" ]; then cert_check=false; fi
if [ -n "${BACKUP_SETTINGS_FILE:-}" ] && [ ! -f "$BACKUP_SETTINGS_FILE" ]; then backup_check=false; fi

# --- Certificate: the one nginx serves (CERT_CONNECT), or the file. ---
if $cert_check && { [ -n "${CERT_CONNECT:-}" ] || [ -n "${CERT_FILE:-}" ]; }; then
    if [ -n "${CERT_CONNECT:-}" ]; then
        case $CERT_CONNECT in *[!A-Za-z0-9.:-]*) echo "check-alerts: bad CERT_CONNECT" >&2; exit 2 ;; esac
        where="served at $CERT_CONNECT"
        openssl s_client -connect "$CERT_CONNECT" ${CERT_SERVERNAME:+-servername "$CERT_SERVERNAME"} </dev/null 2>/dev/null | openssl x509 >"$work/cert.pem" 2>/dev/null || :
    else
        where=$CERT_FILE
        cp "$CERT_FILE" "$work/cert.pem" 2>/dev/null || :
    fi
    if [ -s "$work/cert.pem" ]; then
        end=$(openssl x509 -noout -enddate -in "$work/cert.pem" | sed 's/^notAfter=//')
        end_epoch=$(date -u -d "$end" +%s 2>/dev/null) || end_epoch=""
        days="?"
        if [ -n "$end_epoch" ]; then days=$(((end_epoch - now) / 86400)); fi
        fact "certificate ${end_epoch:--} $days"
        if ! openssl x509 -noout -checkend "$((CERT_MIN_DAYS * 86400))" -in "$work/cert.pem" >/dev/null; then
            if openssl x509 -noout -checkend 0 -in "$work/cert.pem" >/dev/null; then
                alert "certificate: the certificate $where expires in $days days (under $CERT_MIN_DAYS)"
            else
                alert "certificate: the certificate $where has expired"
            fi
        fi
    else
        fact "certificate - -"
        alert "certificate: no certificate $where"
    fi
fi

# --- Backups: the newest success in backup.sh's log, or the newest file of the local stack. ---
if $backup_check && { [ -n "${BACKUP_LOG:-}" ] || [ -n "${BACKUP_DIR:-}" ]; }; then
    last_ok="" result=ok
    if [ -n "${BACKUP_LOG:-}" ]; then
        if [ -r "$BACKUP_LOG" ]; then
            stamp=$(grep -E '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z backup: done: ' "$BACKUP_LOG" | tail -n 1 | cut -c1-20) || stamp=""
            if [ -n "$stamp" ]; then last_ok=$(date -u -d "$stamp" +%s 2>/dev/null) || last_ok=""; fi
            # The last run failed when its final line is a failure (backup.sh ends with `done:` or `FAILED:`).
            if grep -E ' backup: (done|FAILED): ' "$BACKUP_LOG" | tail -n 1 | grep -q ' backup: FAILED: '; then result=failed; fi
        fi
    else
        newest=$(find "$BACKUP_DIR" -name '*.tar.age' -type f 2>/dev/null | while IFS= read -r f; do echo "$(date -u -r "$f" +%s) $f"; done | sort -n | tail -n 1 | cut -d' ' -f1)
        last_ok=$newest
    fi
    if [ -z "$last_ok" ]; then
        fact "backup - $result"
        alert "backup: no successful backup found"
    else
        fact "backup $last_ok $result"
        age=$((now - last_ok))
        if [ "$age" -gt "$((BACKUP_MAX_HOURS * 3600))" ]; then alert "backup: the newest backup is $((age / 3600)) h old (limit $BACKUP_MAX_HOURS h)"; fi
    fi
    if [ "$result" = failed ]; then alert "backup: the last backup run failed (see ${BACKUP_LOG:-the backup log})"; fi
fi

# --- nginx: the generation stamped on disk must be the one it serves. ---
if [ -n "${NGINX_CONF:-}" ]; then
    stamped=$(sed -n 's/.*return 200 "generation \([0-9a-z]*\)\\n".*/\1/p' "$NGINX_CONF" 2>/dev/null | head -n 1) || stamped=""
    if [ -n "${PROBE_CMD:-}" ]; then
        # shellcheck disable=SC2086 # a command line on purpose
        served=$($PROBE_CMD 2>/dev/null | sed -n 's/^generation \([0-9a-z]*\)$/\1/p' | head -n 1) || served=""
    elif [ -f "$work/edge-pid" ]; then
        served=$(nsenter -t "$(cat "$work/edge-pid")" -n wget -qO- -T 3 --header="Host: ${EDGE_HOST:-localhost}" http://127.0.0.1/__platform/generation 2>/dev/null | sed -n 's/^generation \([0-9a-z]*\)$/\1/p' | head -n 1) || served=""
    else
        served=""
    fi
    fact "generation ${stamped:--} ${served:--}"
    if [ -z "$stamped" ]; then
        alert "generation: $NGINX_CONF holds no stamped generation"
    elif [ "$served" != "$stamped" ]; then
        alert "generation: nginx serves generation ${served:-none}, the config on disk is $stamped"
    fi
fi

sort -u "$alerts" -o "$alerts"
count=$(grep -c . "$alerts" || :)
sed 's/^/alert /' "$alerts"
if $facts; then
    [ "$count" -eq 0 ] || exit 1
    exit 0
fi

# --- Report (checker mode only). ---
mkdir -p "$STATE_DIR"
cp "$work/restarts" "$STATE_DIR/restarts"
last="$STATE_DIR/last-alerts"
[ -f "$last" ] || : >"$last"
changed=true
if cmp -s "$alerts" "$last"; then changed=false; fi

post() { # url, body file
    if command -v wget >/dev/null 2>&1; then
        wget -q -O /dev/null -T 10 -t 3 --header='Content-Type: text/plain' --post-file="$2" "$1"
    else
        curl -fsS -m 10 --retry 2 -o /dev/null -H 'Content-Type: text/plain' --data-binary "@$2" "$1"
    fi
}
{
    echo "platform alerts on $HOST_LABEL: $count"
    cat "$alerts"
} >"$work/report"
status=0
if [ -n "${HEARTBEAT_URL:-}" ]; then
    if [ "$count" -gt 0 ]; then
        post "${HEARTBEAT_URL%/}/fail" "$work/report" || { echo "check-alerts: could not reach the heartbeat URL" >&2; status=3; }
    elif [ -s "$last" ]; then
        post "${HEARTBEAT_URL%/}" "$work/report" || { echo "check-alerts: could not reach the heartbeat URL" >&2; status=3; }
    fi
fi
if [ -n "${WEBHOOK_URL:-}" ] && $changed; then
    if [ "$count" -gt 0 ]; then text="platform alerts on $HOST_LABEL:"; else text="platform on $HOST_LABEL: all clear"; fi
    # JSON: the alert lines hold plain characters only (alert() keeps them so); newlines as \n.
    printf '{"text":"%s%s"}\n' "$text" "$(sed 's/^/\\n- /' "$alerts" | tr -d '\n')" >"$work/webhook.json"
    if command -v wget >/dev/null 2>&1; then
        wget -q -O /dev/null -T 10 -t 3 --header='Content-Type: application/json' --post-file="$work/webhook.json" "$WEBHOOK_URL" || { echo "check-alerts: could not reach the webhook" >&2; status=3; }
    else
        curl -fsS -m 10 --retry 2 -o /dev/null -H 'Content-Type: application/json' --data-binary "@$work/webhook.json" "$WEBHOOK_URL" || { echo "check-alerts: could not reach the webhook" >&2; status=3; }
    fi
fi
# What was reported stays as it was when a report could not go out, so the next run retries.
if [ "$status" -eq 0 ]; then cp "$alerts" "$last"; fi
if [ "$count" -gt 0 ]; then exit 1; fi
exit "$status"
