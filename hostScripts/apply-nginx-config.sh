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
# Routes. The config's `# platform-route ROUTE NAME:PORT` lines (ROUTE is APP.frontend or
# APP.backend) name the container that serves each route. NAME's address comes from RESOLVE_CMD (as
# the edge sees it, so on the network it shares with the container; an IPv4 address is used as it
# is), and the route's switch, the symlink routes/ROUTE, is re-pointed at targets/ADDRESS:PORT with
# one atomic rename. nginx reads the link on every request (render/nginx.ts), so a release switch is
# a rename, not a reload: a reload makes the old workers close their idle keep-alive connections,
# and a client sending a request on one at that moment gets ECONNRESET. A name that does not resolve
# points its route at a refused address: only that route answers 502. A container that restarts may
# come back with another address: --refresh, run every minute on the server, picks that up, also
# without a reload.
#
# Idempotent against what nginx has LOADED, not against the file on disk: the config is stamped with
# the hash of its content without the route lines (its "generation"), nginx serves that stamp at
# /__platform/generation, and a config that is on disk but not loaded (an apply interrupted between
# the rename and the reload, a reload nginx refused at run time) is reloaded by the next run. Only a
# change of the config itself (routes added or removed, settings, certificates) reloads nginx.
#
# Environment:
#   CONF_DIR        directory holding nginx.conf, routes/ and targets/, as this shell sees it (required)
#   NGINX_CONF_DIR  the same directory as nginx sees it, e.g. inside its container (default: CONF_DIR)
#   NGINX_CMD       how to run nginx (not NGINX: nginx reads that variable itself), e.g. "docker exec platform-edge nginx" (default: nginx)
#   RESOLVE_CMD     prints `ADDRESS NAME` lines for a name, like `getent hosts NAME` (default: getent hosts)
#   PROBE_CMD       fetches a URL path from nginx on loopback: the path is appended to its last word (default: wget -qO- -T 3 http://127.0.0.1)
#   LOAD_TIMEOUT_SECONDS  how long nginx may take to serve a reloaded config or a switched route (default: 10)
#   DRAIN_SECONDS   wait after a switch or a reload, so requests already on their way to the previous
#                   release finish before it is removed (default: 2)
set -eu

: "${CONF_DIR:?set CONF_DIR to the directory holding nginx.conf}"
nginx_dir=${NGINX_CONF_DIR:-$CONF_DIR}
nginx_cmd=${NGINX_CMD:-nginx}
resolve_cmd=${RESOLVE_CMD:-getent hosts}
probe_cmd=${PROBE_CMD:-wget -qO- -T 3 http://127.0.0.1}
load_timeout=${LOAD_TIMEOUT_SECONDS:-10}
drain=${DRAIN_SECONDS:-2}
live="$CONF_DIR/nginx.conf"
candidate="$CONF_DIR/nginx.conf.candidate"
previous="$CONF_DIR/nginx.conf.previous"
incoming="$CONF_DIR/.nginx.conf.incoming"
plan="$CONF_DIR/.routes.plan"
undo="$CONF_DIR/.routes.undo"
routes_dir="$CONF_DIR/routes"
targets_dir="$CONF_DIR/targets"
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
trap 'rm -f "$incoming" "$plan" "$undo"' EXIT

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

# 1. Each route's target: the address of the container its marker names. Only the shape the renderer
# writes is taken; anything else in a marker line is an error, never a path.
: >"$plan"
marker_re='^# platform-route [a-z][a-z0-9-]*\.(frontend|backend) [A-Za-z0-9][A-Za-z0-9._-]*:[0-9]{1,5}$'
if grep '^# platform-route ' "$incoming" | grep -Ev "$marker_re" >&2; then
    echo "apply-nginx-config: malformed route line(s) above; render the config with render/nginx.ts" >&2
    exit 1
fi
grep -E "$marker_re" "$incoming" | while read -r _ _ route target; do
    name=${target%:*} port=${target##*:}
    if printf '%s\n' "$name" | grep -Eq '^[0-9]{1,3}(\.[0-9]{1,3}){3}$'; then
        address=$name
    else
        # shellcheck disable=SC2086
        address=$($resolve_cmd "$name" 2>/dev/null </dev/null | awk '$1 ~ /^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/ { print $1; exit }') || address=""
    fi
    if [ -n "$address" ]; then
        printf '%s %s:%s\n' "$route" "$address" "$port"
    else
        echo "apply-nginx-config: $name does not resolve; its routes answer 502 until it does" >&2
        printf '%s 127.0.0.1:1\n' "$route"
    fi
done >"$plan"
cp "$incoming" "$candidate"

# 2. The generation: a hash of the content without the route lines and with the stamp blanked, so
# stamping twice gives the same, and a release switch leaves it as it is.
generation_of() { sed -n 's/.*return 200 "generation \([0-9a-z]*\)\\n".*/\1/p' "$1" | head -n 1; }
blank='s/return 200 "generation [0-9a-z]*\\n"/return 200 "generation unstamped\\n"/'
generation=$(grep -v '^# platform-route ' "$candidate" | sed "$blank" | sha256sum | cut -c1-16)
sed "$blank" "$candidate" | sed "s/return 200 \"generation unstamped\\\\n\"/return 200 \"generation $generation\\\\n\"/" >"$candidate.stamped"
mv -f "$candidate.stamped" "$candidate"
if [ "$(generation_of "$candidate")" != "$generation" ]; then
    rm -f "$candidate"
    echo "apply-nginx-config: the config has no /__platform/generation location to stamp; render it with render/nginx.ts" >&2
    exit 1
fi

# PROBE_CMD's last word is a URL prefix: the path goes right after it.
# shellcheck disable=SC2086
fetch() { $probe_cmd$1 2>/dev/null; }
probe() { fetch /__platform/generation | sed -n 's/^generation \([0-9a-z]*\)$/\1/p' | head -n 1; }
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
reload=true
if [ "$loaded" = "$generation" ]; then reload=false; fi
on_disk=false
if [ -f "$live" ] && cmp -s "$candidate" "$live"; then on_disk=true; fi

# The routes whose link does not point at their target yet, and the links of routes no longer routed.
switches=$(while read -r route target; do
    [ "$(readlink "$routes_dir/$route" 2>/dev/null || true)" = "../targets/$target" ] || printf '%s %s\n' "$route" "$target"
done <"$plan")
stale=""
if [ -d "$routes_dir" ]; then
    for link in "$routes_dir"/*; do
        [ -L "$link" ] || continue
        grep -q "^${link##*/} " "$plan" || stale="$stale ${link##*/}"
    done
fi
if ! $reload && $on_disk && [ -z "$switches" ] && [ -z "$stale" ]; then
    rm -f "$candidate"
    echo "apply-nginx-config: config unchanged (generation $generation is loaded)"
    exit 0
fi

# NGINX_CMD is a command line on purpose ("docker exec NAME nginx"), so it is split into words.
# shellcheck disable=SC2086
if $reload && ! output=$($nginx_cmd -t -q -c "$nginx_dir/nginx.conf.candidate" 2>&1); then
    rm -f "$candidate"
    printf 'apply-nginx-config: nginx rejected the new config; the live one is unchanged:\n%s\n' "$output" >&2
    exit 1
fi

# 3. The switches, before any reload: a config that routes a new app must find its link when it loads.
# A link is replaced by renaming a new one over it (GNU mv -T, BSD mv -h): at no moment is it missing.
point() { # ROUTE LINK_TARGET
    rm -f "$routes_dir/.$1.new"
    ln -s "$2" "$routes_dir/.$1.new"
    mv -T "$routes_dir/.$1.new" "$routes_dir/$1" 2>/dev/null || mv -h "$routes_dir/.$1.new" "$routes_dir/$1"
}
mkdir -p "$routes_dir" "$targets_dir"
: >"$undo"
if [ -n "$switches" ]; then
    printf '%s\n' "$switches" | while read -r route target; do
        mkdir -p "$targets_dir/$target"
        printf '%s %s\n' "$route" "$(readlink "$routes_dir/$route" 2>/dev/null || echo -)" >>"$undo"
        point "$route" "../targets/$target"
    done
fi
undo_switches() {
    while read -r route old; do
        if [ "$old" = - ]; then rm -f "$routes_dir/$route"; else point "$route" "$old"; fi
    done <"$undo"
    [ ! -s "$undo" ] || echo "; the routes point where they did"
}

if $reload; then
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
            printf 'the previous config is back in place'
        else
            printf 'the config on disk is not loaded; the next apply retries it'
        fi
        undo_switches
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
elif $on_disk; then
    rm -f "$candidate"
else
    # Only route lines differ: the file says what the links say, and nginx has nothing new to load.
    mv -f "$candidate" "$live"
fi

# Routes the loaded config no longer has: nothing reads their links any more.
for route in $stale; do rm -f "$routes_dir/$route"; done

# 4. nginx itself confirms each switch: the address it reaches through the route's link now.
if [ -n "$switches" ]; then
    printf '%s\n' "$switches" | while read -r route target; do
        waited=0
        until [ "$(fetch "/__platform/route/$route" || true)" = "$target" ]; do
            if [ "$waited" -ge "$((load_timeout * 10))" ]; then
                echo "apply-nginx-config: nginx does not reach $target through routes/$route within ${load_timeout}s (it answers '$(fetch "/__platform/route/$route" || true)')" >&2
                exit 1
            fi
            sleep 0.1
            waited=$((waited + 1))
        done
    done || { undo_switches >/dev/null; exit 1; }
fi

# Requests already on their way to the previous release finish before it is removed; then targets
# no link points at go (a request resolving a link right at the switch reads the old one intact).
if $reload || [ -n "$switches" ]; then sleep "$drain"; fi
for dir in "$targets_dir"/*; do
    [ -d "$dir" ] || continue
    referenced=false
    for link in "$routes_dir"/*; do
        if [ "$(readlink "$link" 2>/dev/null || true)" = "../targets/${dir##*/}" ]; then referenced=true; break; fi
    done
    $referenced || rmdir "$dir" 2>/dev/null || true
done

switched=$(printf '%s\n' "$switches" | awk 'NF { printf "%s%s -> %s", sep, $1, $2; sep = ", " }')
if $reload; then
    echo "apply-nginx-config: applied and reloaded (generation $generation)${switched:+; routes: $switched}"
elif [ -n "$switched" ]; then
    echo "apply-nginx-config: switched $switched without a reload (generation $generation is loaded)"
else
    echo "apply-nginx-config: config unchanged (generation $generation is loaded); removed the links of routes no longer served:$stale"
fi
