#!/bin/sh
# Obtains (or renews) the edge's Let's Encrypt certificate by HTTP-01 through the edge's own
# /.well-known/acme-challenge/, installs it where nginx reads it and reloads nginx. Installs itself
# as a twice-daily cron job, so renewal needs no deployment. Until the first issuance succeeds the
# edge serves the routes over plain HTTP (and the self-signed certificate made at first deploy on
# 443), with no HSTS; once a real certificate is installed, this writes TLS_READY_FILE and the edge
# redirects HTTP to HTTPS and sends HSTS (render/nginx.ts, tlsReadyFile).
#
# Environment (all required): DOMAIN, EMAIL, STAGING (true|false), LETSENCRYPT_DIR, ACME_DIR,
# CERTS_DIR, EDGE_CONTAINER, EDGE_CONF (nginx.conf path inside the edge container), CERTBOT_IMAGE,
# TLS_READY_FILE (on the host, in the edge's config directory); SELF (where this script is installed,
# for cron); CRON_FILE (default /etc/cron.d/platform-certificate); SETTINGS_FILE (default
# /srv/platform/certificate.env); ACME_SERVER (an ACME directory URL instead of Let's Encrypt's: a
# test CA such as pebble; default empty).
#
# The renewal job reads its settings from SETTINGS_FILE, where each value is single-quoted for sh.
# The cron line itself holds nothing but two fixed paths: no value can inject a command, and no `%`
# (cron's newline) can reach it.
# Usage: issue-certificate.sh                         install the renewal job, then issue or renew
#        issue-certificate.sh --renew-only SETTINGS   what the cron job runs
#        issue-certificate.sh --renew-only SETTINGS --pending
#                                                     the retry every 15 minutes until a first
#                                                     certificate exists; a no-op after that
#
# The first deployment normally runs before the domain's DNS points at the server: a refusal then
# does not fail it (the edge keeps the self-signed certificate); the --pending job retries every 15
# minutes, which stays under Let's Encrypt's limit of 5 failed validations per hostname per hour.
set -eu

cron_file=${CRON_FILE:-/etc/cron.d/platform-certificate}
settings_file=${SETTINGS_FILE:-/srv/platform/certificate.env}

pending=false
if [ "${1:-}" = "--renew-only" ]; then
    # shellcheck disable=SC1090 # written by this script below, values single-quoted
    . "${2:?--renew-only needs the settings file}"
    if [ "${3:-}" = "--pending" ]; then pending=true; fi
fi
: "${DOMAIN:?}" "${EMAIL:?}" "${STAGING:?}" "${LETSENCRYPT_DIR:?}" "${ACME_DIR:?}" "${CERTS_DIR:?}"
: "${EDGE_CONTAINER:?}" "${EDGE_CONF:?}" "${CERTBOT_IMAGE:?}" "${TLS_READY_FILE:?}"
ACME_SERVER=${ACME_SERVER:-}

server_flag=""
if [ "$STAGING" = "true" ]; then server_flag="--staging"; fi
if [ -n "$ACME_SERVER" ]; then
    case $ACME_SERVER in
        https://*) ;;
        *) echo "issue-certificate: ACME_SERVER must be an https:// URL" >&2; exit 1 ;;
    esac
    if printf '%s' "$ACME_SERVER" | grep -q '[^A-Za-z0-9.:/_-]'; then echo "issue-certificate: ACME_SERVER has characters a URL of an ACME directory does not need" >&2; exit 1; fi
    server_flag="--server $ACME_SERVER"
fi

# 'it'\''s' for it's: the one quoting sh reads back exactly, whatever the value holds (but a
# newline, which no setting has and which is refused before anything is written).
quote() {
    printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}
settings="DOMAIN EMAIL STAGING LETSENCRYPT_DIR ACME_DIR CERTS_DIR EDGE_CONTAINER EDGE_CONF CERTBOT_IMAGE TLS_READY_FILE ACME_SERVER"
newline='
'
value=""
for name in $settings; do
    eval "value=\$$name"
    case $value in *"$newline"*)
        echo "issue-certificate: $name contains a newline; refusing to use it" >&2
        exit 1
        ;;
    esac
done

if [ "${1:-}" != "--renew-only" ]; then
    # Renew twice a day without a deployment: this script is installed at SELF by the program.
    : "${SELF:?set SELF to where this script is installed on the host}"
    for fixed in "$SELF" "$settings_file"; do
        case $fixed in
            /*) ;;
            *) echo "issue-certificate: $fixed must be an absolute path" >&2; exit 1 ;;
        esac
        if printf '%s' "$fixed" | grep -q '[^A-Za-z0-9._/-]'; then
            echo "issue-certificate: refusing to put $fixed in a cron line (letters, digits, . _ / - only)" >&2
            exit 1
        fi
    done
    mkdir -p "$(dirname "$settings_file")"
    umask 077
    {
        for name in $settings; do
            eval "value=\$$name"
            printf '%s=%s\n' "$name" "$(quote "$value")"
        done
    } >"$settings_file.new"
    mv -f "$settings_file.new" "$settings_file"
    umask 022
    {
        printf '23 3,15 * * * root sh %s --renew-only %s >>/var/log/platform-certificate.log 2>&1\n' "$SELF" "$settings_file"
        printf '*/15 * * * * root sh %s --renew-only %s --pending >>/var/log/platform-certificate.log 2>&1\n' "$SELF" "$settings_file"
    } >"$cron_file.new"
    mv -f "$cron_file.new" "$cron_file"
fi

live="$LETSENCRYPT_DIR/live/$DOMAIN"
# The map entry the edge's config includes (render/nginx.ts TLS_READY_ENTRY): the certificate is real.
ready_entry='"" 1;'
# Whether the edge already knows its certificate is real; mark_ready tells it (one reload).
is_ready() { [ -f "$TLS_READY_FILE" ] && grep -qxF "$ready_entry" "$TLS_READY_FILE"; }
mark_ready() {
    printf '%s\n' "$ready_entry" >"$TLS_READY_FILE.new"
    mv -f "$TLS_READY_FILE.new" "$TLS_READY_FILE"
}
reload_edge() { docker exec "$EDGE_CONTAINER" nginx -c "$EDGE_CONF" -s reload; }

if [ "$pending" = true ] && [ -s "$live/fullchain.pem" ]; then
    # Issued and installed before (this host, or a server that predates the file): make sure the edge knows.
    if cmp -s "$live/fullchain.pem" "$CERTS_DIR/fullchain.pem" && ! is_ready; then
        mark_ready
        reload_edge
        echo "issue-certificate: the edge now redirects HTTP to HTTPS and sends HSTS for $DOMAIN"
    fi
    exit 0
fi

# shellcheck disable=SC2086 # server_flag is empty or two words
if ! docker run --rm \
    -v "$LETSENCRYPT_DIR:/etc/letsencrypt" -v "$ACME_DIR:/var/www/acme" \
    "$CERTBOT_IMAGE" certonly --webroot -w /var/www/acme -d "$DOMAIN" \
    --email "$EMAIL" --agree-tos --non-interactive --keep-until-expiring $server_flag; then
    if [ "${1:-}" != "--renew-only" ] && [ ! -s "$live/fullchain.pem" ]; then
        echo "issue-certificate: no certificate for $DOMAIN yet: Let's Encrypt could not validate it, because its DNS A record does not point at this server yet (see the stack output dnsRecord) or port 80 is closed. Until it can, the edge serves the apps over plain HTTP (no redirect, no HSTS) and its self-signed certificate on 443; this host retries every 15 minutes, installs the certificate as soon as the record resolves and then switches to HTTPS with HSTS (log: /var/log/platform-certificate.log)." >&2
        exit 0
    fi
    echo "issue-certificate: Let's Encrypt refused $DOMAIN. Check that its DNS A record points at this server and port 80 is open; the edge keeps its current certificate." >&2
    exit 1
fi

if cmp -s "$live/fullchain.pem" "$CERTS_DIR/fullchain.pem"; then
    if ! is_ready; then
        mark_ready
        reload_edge
        echo "issue-certificate: certificate for $DOMAIN is current; the edge now redirects HTTP to HTTPS and sends HSTS"
        exit 0
    fi
    echo "issue-certificate: certificate for $DOMAIN is current"
    exit 0
fi
cp -L "$live/privkey.pem" "$CERTS_DIR/privkey.pem.new"
cp -L "$live/fullchain.pem" "$CERTS_DIR/fullchain.pem.new"
chmod 600 "$CERTS_DIR/privkey.pem.new"
mv -f "$CERTS_DIR/privkey.pem.new" "$CERTS_DIR/privkey.pem"
mv -f "$CERTS_DIR/fullchain.pem.new" "$CERTS_DIR/fullchain.pem"
if is_ready; then
    reload_edge
    echo "issue-certificate: installed a new certificate for $DOMAIN and reloaded the edge"
else
    # The first real certificate: from this reload on, HTTP redirects to HTTPS and HTTPS sends HSTS.
    mark_ready
    reload_edge
    echo "issue-certificate: installed the first certificate for $DOMAIN; the edge now redirects HTTP to HTTPS and sends HSTS"
fi
