#!/bin/sh
# Applies a rendered nginx.conf to a running nginx without restarting it. The candidate arrives on
# stdin; it goes live only if `nginx -t` accepts it, through an atomic rename, followed by a graceful
# reload that is confirmed by asking nginx which config it serves. On any failure the live config is
# left (or put back) as it was, nginx's own message goes to stderr and the script exits non-zero,
# which fails the deployment.
#
#   apply-nginx-config.sh < nginx.conf    apply a rendered config
#   apply-nginx-config.sh --refresh       re-resolve the live config's container names (cron, edge start)
#
# Container names. Upstream `server` lines marked `# platform-resolve NAME:PORT` get NAME's address
# from RESOLVE_CMD (as the edge sees it, so on the network it shares with the container); a name that
# does not resolve keeps a server nginx never tries, and only its routes answer 502. nginx then keeps
# connections to the apps open, which a per-request DNS lookup would not allow. A container that
# restarts may come back with another address: --refresh, run every minute, picks that up.
#
# Idempotent against what nginx has LOADED, not against the file on disk: the config is stamped with
# the hash of its content (its "generation"), nginx serves that stamp at /__platform/generation, and
# a config that is on disk but not loaded (an apply interrupted between the rename and the reload,
# a reload nginx refused at run time) is reloaded by the next run.
#
# Environment:
#   CONF_DIR        directory holding nginx.conf, as this shell sees it (required)
#   NGINX_CONF_DIR  the same directory as nginx sees it, e.g. inside its container (default: CONF_DIR)
#   NGINX_CMD       how to run nginx (not NGINX: nginx reads that variable itself), e.g. "docker exec platform-edge nginx" (default: nginx)
#   RESOLVE_CMD     prints `ADDRESS NAME` lines for a name, like `getent hosts NAME` (default: getent hosts)
#   PROBE_CMD       prints what nginx serves at /__platform/generation (default: wget -qO- -T 3 http://127.0.0.1/__platform/generation)
#   LOAD_TIMEOUT_SECONDS  how long nginx may take to serve a reloaded config (default: 10)
#   SETTLE_SECONDS  wait after the reload so new workers own every new connection (default: 2)
set -eu

: "${CONF_DIR:?set CONF_DIR to the directory holding nginx.conf}"
nginx_dir=${NGINX_CONF_DIR:-$CONF_DIR}
nginx_cmd=${NGINX_CMD:-nginx}
resolve_cmd=${RESOLVE_CMD:-getent hosts}
probe_cmd=${PROBE_CMD:-wget -qO- -T 3 http://127.0.0.1/__platform/generation}
load_timeout=${LOAD_TIMEOUT_SECONDS:-10}
settle=${SETTLE_SECONDS:-2}
live="$CONF_DIR/nginx.conf"
candidate="$CONF_DIR/nginx.conf.candidate"
previous="$CONF_DIR/nginx.conf.previous"
incoming="$CONF_DIR/.nginx.conf.incoming"
addresses="$CONF_DIR/.nginx.conf.addresses"
refresh=false
case "${1:-}" in
    --refresh) refresh=true ;;
    "") ;;
    *) echo "apply-nginx-config: unknown argument $1 (only --refresh)" >&2; exit 2 ;;
esac

mkdir -p "$CONF_DIR"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$CONF_DIR/.apply.lock"
    flock -w 60 9 || { echo "apply-nginx-config: another apply holds $CONF_DIR/.apply.lock" >&2; exit 1; }
fi
trap 'rm -f "$incoming" "$addresses" "$addresses.names"' EXIT

# A refresh reads the live file only once it holds the lock: read earlier, it could re-apply a config
# that a deployment replaced in the meantime.
if $refresh; then
    [ -f "$live" ] || { echo "apply-nginx-config: nothing to refresh, $live does not exist" >&2; exit 1; }
    cp "$live" "$incoming"
else
    cat >"$incoming"
fi
if [ ! -s "$incoming" ]; then
    echo "apply-nginx-config: no config on stdin; the live config is unchanged" >&2
    exit 1
fi

# 1. Container names to addresses. Names are taken only in the shape the renderer writes them.
: >"$addresses"
sed -n 's/.*# platform-resolve \([A-Za-z0-9][A-Za-z0-9._-]*\):[0-9][0-9]*$/\1/p' "$incoming" | sort -u >"$addresses.names"
while IFS= read -r name; do
    # shellcheck disable=SC2086
    address=$($resolve_cmd "$name" 2>/dev/null </dev/null | awk '$1 ~ /^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/ { print $1; exit }') || address=""
    if [ -n "$address" ]; then
        printf '%s %s\n' "$name" "$address" >>"$addresses"
    else
        echo "apply-nginx-config: $name does not resolve; its routes answer 502 until it does" >&2
    fi
done <"$addresses.names"
# Every marked line is rewritten from its marker, so a resolved config resolves again the same way.
awk -v addresses="$addresses" '
    BEGIN { while ((getline line < addresses) > 0) { split(line, f, " "); ip[f[1]] = f[2] } }
    /# platform-resolve [A-Za-z0-9][A-Za-z0-9._-]*:[0-9]+$/ {
        target = $0; sub(/.*# platform-resolve /, "", target)
        name = target; sub(/:[0-9]+$/, "", name)
        port = target; sub(/.*:/, "", port)
        lead = $0; sub(/[^ ].*$/, "", lead)
        server = (name in ip) ? ip[name] ":" port : "127.0.0.1:1 down"
        print lead "server " server "; # platform-resolve " target
        next
    }
    { print }' "$incoming" >"$candidate"

# 2. The generation: a hash of the content with the stamp blanked, so stamping twice gives the same.
generation_of() { sed -n 's/.*return 200 "generation \([0-9a-z]*\)\\n".*/\1/p' "$1" | head -n 1; }
blank='s/return 200 "generation [0-9a-z]*\\n"/return 200 "generation unstamped\\n"/'
generation=$(sed "$blank" "$candidate" | sha256sum | cut -c1-16)
sed "$blank" "$candidate" | sed "s/return 200 \"generation unstamped\\\\n\"/return 200 \"generation $generation\\\\n\"/" >"$candidate.stamped"
mv -f "$candidate.stamped" "$candidate"
if [ "$(generation_of "$candidate")" != "$generation" ]; then
    rm -f "$candidate"
    echo "apply-nginx-config: the config has no /__platform/generation location to stamp; render it with render/nginx.ts" >&2
    exit 1
fi

probe() {
    # shellcheck disable=SC2086
    $probe_cmd 2>/dev/null | sed -n 's/^generation \([0-9a-z]*\)$/\1/p' | head -n 1
}
# Just after a reload, old workers may still accept a connection or two and answer with the old
# stamp. nginx has loaded a generation as soon as one worker serves it, so one sighting is enough.
loaded_generation() {
    expected=$1
    for attempt in 1 2 3; do
        seen=$(probe || true)
        [ "$seen" = "$expected" ] && break
        [ "$attempt" = 3 ] || sleep 0.2
    done
    printf '%s\n' "$seen"
}
live_generation=""
if [ -f "$live" ]; then live_generation=$(generation_of "$live"); fi
loaded=$(loaded_generation "$live_generation") || loaded=""

on_disk=false
if [ -f "$live" ] && cmp -s "$candidate" "$live"; then on_disk=true; fi
if $on_disk && [ "$loaded" = "$generation" ]; then
    rm -f "$candidate"
    echo "apply-nginx-config: config unchanged (generation $generation is loaded)"
    exit 0
fi

# NGINX_CMD is a command line on purpose ("docker exec NAME nginx"), so it is split into words.
# shellcheck disable=SC2086
if ! output=$($nginx_cmd -t -q -c "$nginx_dir/nginx.conf.candidate" 2>&1); then
    rm -f "$candidate"
    printf 'apply-nginx-config: nginx rejected the new config; the live one is unchanged:\n%s\n' "$output" >&2
    exit 1
fi

swapped=false
if $on_disk; then
    rm -f "$candidate"
    echo "apply-nginx-config: the config on disk (generation $generation) is not the one nginx serves (${loaded:-none}); reloading it"
else
    # The fallback is what nginx serves now; a file that was on disk but never loaded is not one.
    if [ -n "$loaded" ] && [ "$live_generation" = "$loaded" ]; then cp -p "$live" "$previous"; fi
    mv -f "$candidate" "$live"
    swapped=true
fi

put_back() {
    if $swapped && [ -f "$previous" ] && [ "$(generation_of "$previous")" = "$loaded" ]; then
        mv -f "$previous" "$live"
        echo "the previous config is back in place"
    else
        echo "the config on disk is not loaded; the next apply retries it"
    fi
}

# shellcheck disable=SC2086
if ! output=$($nginx_cmd -c "$nginx_dir/nginx.conf" -s reload 2>&1); then
    printf 'apply-nginx-config: nginx did not reload; %s:\n%s\n' "$(put_back)" "$output" >&2
    exit 1
fi

# `nginx -s reload` only signals the master; a config it cannot load at run time (a port in use, an
# unreadable certificate) leaves the old one serving. Only the stamp nginx serves proves the switch.
waited=0
until [ "$(probe || true)" = "$generation" ]; do
    if [ "$waited" -ge "$((load_timeout * 10))" ]; then
        printf 'apply-nginx-config: nginx did not load generation %s within %ss (see its error log); %s\n' "$generation" "$load_timeout" "$(put_back)" >&2
        exit 1
    fi
    sleep 0.1
    waited=$((waited + 1))
done
sleep "$settle"
echo "apply-nginx-config: applied and reloaded (generation $generation)"
