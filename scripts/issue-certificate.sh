#!/bin/sh
# Obtains (or renews) the edge's Let's Encrypt certificate by HTTP-01 through the edge's own
# /.well-known/acme-challenge/, installs it where nginx reads it and reloads nginx. Installs itself
# as a twice-daily cron job, so renewal needs no deployment. Until the first issuance succeeds the
# edge serves the self-signed certificate made at first deploy.
#
# Environment (all required): DOMAIN, EMAIL, STAGING (true|false), LETSENCRYPT_DIR, ACME_DIR,
# CERTS_DIR, EDGE_CONTAINER, EDGE_CONF (nginx.conf path inside the edge container), CERTBOT_IMAGE;
# SELF (where this script is installed, for cron); CRON_FILE (default /etc/cron.d/platform-certificate).
set -eu
: "${DOMAIN:?}" "${EMAIL:?}" "${STAGING:?}" "${LETSENCRYPT_DIR:?}" "${ACME_DIR:?}" "${CERTS_DIR:?}"
: "${EDGE_CONTAINER:?}" "${EDGE_CONF:?}" "${CERTBOT_IMAGE:?}"

cron_file=${CRON_FILE:-/etc/cron.d/platform-certificate}
server_flag=""
if [ "$STAGING" = "true" ]; then server_flag="--staging"; fi

if [ "${1:-}" != "--renew-only" ]; then
    # Renew twice a day without a deployment: this script is installed at SELF by the program.
    : "${SELF:?set SELF to where this script is installed on the host}"
    printf '23 3,15 * * * root DOMAIN=%s EMAIL=%s STAGING=%s LETSENCRYPT_DIR=%s ACME_DIR=%s CERTS_DIR=%s EDGE_CONTAINER=%s EDGE_CONF=%s CERTBOT_IMAGE=%s sh %s --renew-only >>/var/log/platform-certificate.log 2>&1\n' \
        "$DOMAIN" "$EMAIL" "$STAGING" "$LETSENCRYPT_DIR" "$ACME_DIR" "$CERTS_DIR" "$EDGE_CONTAINER" "$EDGE_CONF" "$CERTBOT_IMAGE" "$SELF" \
        >"$cron_file"
fi

# shellcheck disable=SC2086 # server_flag is empty or one word
if ! docker run --rm \
    -v "$LETSENCRYPT_DIR:/etc/letsencrypt" -v "$ACME_DIR:/var/www/acme" \
    "$CERTBOT_IMAGE" certonly --webroot -w /var/www/acme -d "$DOMAIN" \
    --email "$EMAIL" --agree-tos --non-interactive --keep-until-expiring $server_flag; then
    echo "issue-certificate: Let's Encrypt refused $DOMAIN. Check that its DNS A record points at this server and port 80 is open; the edge keeps its current certificate." >&2
    exit 1
fi

live="$LETSENCRYPT_DIR/live/$DOMAIN"
if cmp -s "$live/fullchain.pem" "$CERTS_DIR/fullchain.pem"; then
    echo "issue-certificate: certificate for $DOMAIN is current"
    exit 0
fi
cp -L "$live/privkey.pem" "$CERTS_DIR/privkey.pem.new"
cp -L "$live/fullchain.pem" "$CERTS_DIR/fullchain.pem.new"
chmod 600 "$CERTS_DIR/privkey.pem.new"
mv -f "$CERTS_DIR/privkey.pem.new" "$CERTS_DIR/privkey.pem"
mv -f "$CERTS_DIR/fullchain.pem.new" "$CERTS_DIR/fullchain.pem"
docker exec "$EDGE_CONTAINER" nginx -c "$EDGE_CONF" -s reload
echo "issue-certificate: installed a new certificate for $DOMAIN and reloaded the edge"
