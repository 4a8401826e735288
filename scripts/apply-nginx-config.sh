#!/bin/sh
# Applies a rendered nginx.conf to a running nginx without restarting it. The candidate arrives on
# stdin; it goes live only if `nginx -t` accepts it, through an atomic rename, followed by a graceful
# reload. On any failure the live config is left (or put back) as it was, nginx's own message goes
# to stderr and the script exits non-zero, which fails the deployment.
#
# Environment:
#   CONF_DIR        directory holding nginx.conf, as this shell sees it (required)
#   NGINX_CONF_DIR  the same directory as nginx sees it, e.g. inside its container (default: CONF_DIR)
#   NGINX_CMD       how to run nginx (not NGINX: nginx reads that variable itself), e.g. "docker exec platform-edge nginx" (default: nginx)
#   SETTLE_SECONDS  wait after the reload so new workers own every new connection (default: 2)
set -eu

: "${CONF_DIR:?set CONF_DIR to the directory holding nginx.conf}"
nginx_dir=${NGINX_CONF_DIR:-$CONF_DIR}
nginx_cmd=${NGINX_CMD:-nginx}
settle=${SETTLE_SECONDS:-2}
live="$CONF_DIR/nginx.conf"
candidate="$CONF_DIR/nginx.conf.candidate"
previous="$CONF_DIR/nginx.conf.previous"

mkdir -p "$CONF_DIR"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$CONF_DIR/.apply.lock"
    flock -w 60 9 || { echo "apply-nginx-config: another apply holds $CONF_DIR/.apply.lock" >&2; exit 1; }
fi

cat >"$candidate"
if [ ! -s "$candidate" ]; then
    rm -f "$candidate"
    echo "apply-nginx-config: no config on stdin; the live config is unchanged" >&2
    exit 1
fi
if [ -f "$live" ] && cmp -s "$candidate" "$live"; then
    rm -f "$candidate"
    echo "apply-nginx-config: config unchanged"
    exit 0
fi

# NGINX_CMD is a command line on purpose ("docker exec NAME nginx"), so it is split into words.
# shellcheck disable=SC2086
if ! output=$($nginx_cmd -t -q -c "$nginx_dir/nginx.conf.candidate" 2>&1); then
    rm -f "$candidate"
    printf 'apply-nginx-config: nginx rejected the new config; the live one is unchanged:\n%s\n' "$output" >&2
    exit 1
fi

if [ -f "$live" ]; then cp -p "$live" "$previous"; fi
mv -f "$candidate" "$live"

# shellcheck disable=SC2086
if ! output=$($nginx_cmd -c "$nginx_dir/nginx.conf" -s reload 2>&1); then
    if [ -f "$previous" ]; then mv -f "$previous" "$live"; fi
    printf 'apply-nginx-config: nginx did not reload; the previous config is back in place:\n%s\n' "$output" >&2
    exit 1
fi
sleep "$settle"
echo "apply-nginx-config: applied and reloaded"
