#!/bin/sh
# Stand-in images for the local stack's end-to-end suite (tests/e2e.real.test.ts).
#
# For each image the local stack runs (the exact names below, kept in step with the program by
# tests/e2e.images.test.ts), this makes sure the Docker engine has it:
#   1. already present: kept as it is (a real image, or a stand-in built earlier);
#   2. `docker pull` works: the real image;
#   3. otherwise a stand-in, built from Debian bookworm packages: a minimal root filesystem made once
#      with debootstrap (cached outside the repository, keyed by suite and recipe version), brought
#      in with `docker import`, then `docker build` of the image's directory here. Stand-ins carry
#      the label platform.standin=true; README.md says how each differs from the real image.
# Then it builds the release-test variants FROM the demo frontend (real or stand-in): a second
# release with another marker text, and a release whose health check fails; and the release-migration
# test's backend FROM the PostgreSQL image (real or stand-in), one tag per migration (README.md).
#
# Usage: sh tests/e2e/images/build.sh [--no-pull] [--variants-only]
# Environment: PLATFORM_STANDIN_CACHE (default ~/.cache/platform-standins), PLATFORM_STANDIN_MIRROR
# (default http://deb.debian.org/debian). Needs root for debootstrap (only when a stand-in is built).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
pull=true
variants_only=false
for arg in "$@"; do
    case "$arg" in
    --no-pull) pull=false ;;
    --variants-only) variants_only=true ;;
    *) echo "build.sh: unknown argument '$arg'" >&2; exit 2 ;;
    esac
done

SUITE=bookworm
# Bump when the base recipe (packages, settings) changes: the cache key includes it.
BASE_RECIPE=1
BASE_IMAGE="platform-standin-base:$SUITE-r$BASE_RECIPE"
cache=${PLATFORM_STANDIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/platform-standins}
mirror=${PLATFORM_STANDIN_MIRROR:-http://deb.debian.org/debian}

# "<image>|<directory under here>": every image the local stack pulls.
IMAGES="
nginx:1.27.3-alpine|edge
postgres:15.10-bookworm|postgres
alpine/socat:1.8.0.3|socat
nginxinc/nginx-unprivileged:1.27-alpine|frontend
ealen/echo-server:0.9.2|echo
"
# The demo frontend's release variants (tags of the same repository, so the catalog's image name holds).
FRONTEND=nginxinc/nginx-unprivileged
FRONTEND_BASE=$FRONTEND:1.27-alpine

log() { echo "build.sh: $*" >&2; }
have() { docker image inspect "$1" >/dev/null 2>&1; }

base_image() {
    have "$BASE_IMAGE" && return 0
    tarball="$cache/debian-$SUITE-minbase-r$BASE_RECIPE.tar"
    if [ ! -s "$tarball" ]; then
        command -v debootstrap >/dev/null 2>&1 || {
            log "debootstrap is missing: apt-get install debootstrap (Debian/Ubuntu)"
            exit 1
        }
        mkdir -p "$cache"
        root=$(mktemp -d "$cache/rootfs.XXXXXX")
        log "debootstrap $SUITE (minbase) from $mirror into $root"
        debootstrap --variant=minbase "$SUITE" "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
            tail -n 20 "$cache/debootstrap.log" >&2
            rm -rf "$root"
            exit 1
        }
        # Packages never start services while images are built; apt keeps no caches.
        printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
        chmod +x "$root/usr/sbin/policy-rc.d"
        printf 'deb %s %s main\ndeb %s %s-updates main\n' "$mirror" "$SUITE" "$mirror" "$SUITE" >"$root/etc/apt/sources.list"
        rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
        tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
        rm -rf "$root"
    fi
    log "docker import $tarball as $BASE_IMAGE"
    docker import --change 'CMD ["/bin/bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        "$tarball" "$BASE_IMAGE" >/dev/null
}

standin() { # image, directory
    base_image
    log "building the stand-in $1 from $here/$2"
    docker build --network host --quiet --build-arg "BASE=$BASE_IMAGE" --label platform.standin=true \
        --label "platform.standin.for=$1" -t "$1" "$here/$2" >/dev/null
}

if [ "$variants_only" = false ]; then
    for entry in $IMAGES; do
        image=${entry%%|*} dir=${entry##*|}
        if have "$image"; then
            log "$image: present"
        elif [ "$pull" = true ] && docker pull --quiet "$image" >/dev/null 2>&1; then
            log "$image: pulled"
        else
            standin "$image" "$dir"
        fi
    done
fi

# Release variants, always rebuilt from whatever the frontend image is (cheap: one layer each).
have "$FRONTEND_BASE" || { log "$FRONTEND_BASE is missing: run without --variants-only first"; exit 1; }
docker build --quiet --build-arg "BASE=$FRONTEND_BASE" --build-arg MARKER=green -t "$FRONTEND:e2e-green" "$here/release" >/dev/null
docker build --quiet --build-arg "BASE=$FRONTEND_BASE" -t "$FRONTEND:e2e-unhealthy" -f "$here/release/Dockerfile.unhealthy" "$here/release" >/dev/null
log "release variants: $FRONTEND:e2e-green, $FRONTEND:e2e-unhealthy"

# The release-migration test's backend: Node.js added to the PostgreSQL image once (keyed by recipe),
# then one cheap layer per release, each with its migration.
MIGRATOR=platform-e2e/migrator
MIGRATOR_RECIPE=3
POSTGRES_IMAGE=postgres:15.10-bookworm
have "$POSTGRES_IMAGE" || { log "$POSTGRES_IMAGE is missing: run without --variants-only first"; exit 1; }
if ! have "$MIGRATOR:base-r$MIGRATOR_RECIPE"; then
    log "building $MIGRATOR:base-r$MIGRATOR_RECIPE from $POSTGRES_IMAGE"
    docker build --network host --quiet --build-arg "BASE=$POSTGRES_IMAGE" -t "$MIGRATOR:base-r$MIGRATOR_RECIPE" "$here/migrator" >/dev/null
fi
for release in m1 m2 m3-bad; do
    docker build --quiet --build-arg "BASE=$MIGRATOR:base-r$MIGRATOR_RECIPE" --build-arg "RELEASE=$release" -t "$MIGRATOR:$release" -f "$here/migrator/Dockerfile.release" "$here/migrator" >/dev/null
done
log "migration test releases: $MIGRATOR:m1, $MIGRATOR:m2, $MIGRATOR:m3-bad"
