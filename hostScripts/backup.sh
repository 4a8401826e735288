#!/bin/sh
# Nightly backup of every app database, run by cron on the host (components/backups.ts installs it).
# For each app: one read-only REPEATABLE READ transaction exports a snapshot; pg_dump --format=custom
# dumps exactly that snapshot, and the exact row count of every table is taken inside the same
# transaction, so the manifest describes precisely what the dump holds. All of it runs with
# `docker exec` in PG_CONTAINER as PG_USER: on the container database that is the PostgreSQL container
# itself as its superuser (the server's own binaries over its local socket: no network, no password);
# on the managed database it is the client container on host 0 (the managed major's binaries, the
# connection and the admin's password in its environment), as the admin, which is no superuser but a
# member of every app role, so it reads what the apps own. The dump, the globals (roles, without
# password hashes: `pg_dumpall --globals-only`; where the server refuses that to a non-superuser,
# `--roles-only`; where it refuses both, a globals.sql that says so, and the manifest's globalsMode
# records which) and the manifest are put in a tar, encrypted to an age public key (the private key
# never comes near the server) and uploaded with one signed PUT (an object appears whole or not at
# all; the bucket's object lock keeps it). Each backup is then signed with the host's Ed25519 key: the
# signature object `<object>.sig` names the object and the sha256 and size of its encrypted bytes
# (render/signing.ts), and readers trust only backups signed by a key the stack file pins. Nothing is
# uploaded for an app whose dump, check, encryption or signature failed. Exit status is non-zero if any app failed; the heartbeat URL is pinged on
# success and <url>/fail on failure.
#
# Usage: backup.sh [SETTINGS_FILE]   (the file, written by the program, holds KEY='value' lines)
# Environment (or the settings file):
#   BACKUP_TARGETS       "app1=app1_db app2=app2_db"
#   AGE_RECIPIENT        age1… public key, or AGE_RECIPIENTS_FILE (a file of them)
#   SIGNING_KEY_FILE     the host's Ed25519 signing key (PKCS#8 PEM, 0600)
#   S3_ENDPOINT, S3_BUCKET, S3_REGION, S3_CREDENTIALS_FILE (curl config holding `user = "KEY:SECRET"`, 0600)
#     or BACKUP_DIR (a local directory, same layout: the local stack)
#   HEARTBEAT_URL        optional
#   PG_CONTAINER (default platform-postgres), PG_USER (default postgres): where pg_dump runs, as whom
#   DOCKER (default docker), WORK_DIR (default /var/tmp)
#   BACKUP_DEADLINE_SECONDS (default 10800): the whole run is killed after this, and pings /fail
#   LOCK_WAIT_TIMEOUT (default 300s): how long pg_dump waits for a table lock before it fails
#   LOCK_FILE (default /run/lock/platform-backup.lock, else WORK_DIR): runs never overlap
set -eu
umask 077

if [ $# -gt 0 ]; then
    # shellcheck disable=SC1090 # written by the program: single-quoted values only
    . "$1"
fi

log() { printf '%s backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
    log "FAILED: $*"
    ping_heartbeat fail
    exit 1
}

ping_heartbeat() {
    [ -n "${HEARTBEAT_URL:-}" ] || return 0
    url=$HEARTBEAT_URL
    if [ "$1" = fail ]; then url="$HEARTBEAT_URL/fail"; fi
    curl -fsS -m 10 --retry 3 -o /dev/null "$url" || log "could not ping the heartbeat URL"
}

DOCKER=${DOCKER:-docker}
PG_CONTAINER=${PG_CONTAINER:-platform-postgres}
PG_USER=${PG_USER:-postgres}
: "${BACKUP_TARGETS:?set BACKUP_TARGETS (app=database pairs)}"
case $PG_CONTAINER in [a-z]*) ;; *) die "bad PG_CONTAINER" ;; esac
case $PG_CONTAINER in *[!a-z0-9_.-]*) die "bad PG_CONTAINER" ;; esac
case $PG_USER in [a-z_]*) ;; *) die "bad PG_USER" ;; esac
case $PG_USER in *[!a-z0-9_]*) die "bad PG_USER" ;; esac

deadline=${BACKUP_DEADLINE_SECONDS:-10800}
case $deadline in "" | *[!0-9]* | 0) die "bad BACKUP_DEADLINE_SECONDS (a positive number of seconds)" ;; esac
lock_wait=${LOCK_WAIT_TIMEOUT:-300s}
case $lock_wait in [0-9]*s | [0-9]*ms | [0-9]*min) ;; *) die "bad LOCK_WAIT_TIMEOUT (e.g. 300s, 5min)" ;; esac
case $lock_wait in *[!0-9a-z]*) die "bad LOCK_WAIT_TIMEOUT (e.g. 300s, 5min)" ;; esac

# The outer run takes the lock (runs never overlap: a second one fails and pings /fail), then runs
# the work under `timeout`, which kills its whole process group (pg_dump, psql, curl) at the deadline.
# On the servers (Ubuntu) both tools exist; a laptop running the local stack may lack them (macOS has
# no flock, timeout only with coreutils): there the run says so and goes on unbounded.
if [ -z "${PLATFORM_BACKUP_INNER:-}" ]; then
    lock=${LOCK_FILE:-}
    if [ -z "$lock" ]; then
        if [ -d /run/lock ] && [ -w /run/lock ]; then lock=/run/lock/platform-backup.lock; else lock="${WORK_DIR:-/var/tmp}/platform-backup.lock"; fi
    fi
    if command -v flock >/dev/null 2>&1; then
        exec 9>>"$lock" || die "cannot open the lock file $lock"
        flock -n 9 || die "another backup run holds $lock (runs must not overlap: is one stuck?)"
    else
        log "flock is not installed: this run is not guarded against an overlapping one"
    fi
    if command -v timeout >/dev/null 2>&1; then
        set +e
        PLATFORM_BACKUP_INNER=1 timeout -k 30 "$deadline" sh "$0" "$@"
        rc=$?
        set -e
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then die "the run exceeded its deadline of $deadline s (BACKUP_DEADLINE_SECONDS) and was killed; nothing partial was uploaded"; fi
        exit "$rc"
    fi
    log "timeout is not installed: this run has no deadline"
fi

if [ -n "${AGE_RECIPIENT:-}" ]; then
    case $AGE_RECIPIENT in age1*) ;; *) die "AGE_RECIPIENT is not an age1… public key" ;; esac
    set -- -r "$AGE_RECIPIENT"
elif [ -n "${AGE_RECIPIENTS_FILE:-}" ] && [ -s "$AGE_RECIPIENTS_FILE" ]; then
    set -- -R "$AGE_RECIPIENTS_FILE"
else
    die "set AGE_RECIPIENT or AGE_RECIPIENTS_FILE"
fi

if [ -n "${BACKUP_DIR:-}" ]; then
    destination="directory $BACKUP_DIR"
else
    : "${S3_ENDPOINT:?set S3_ENDPOINT or BACKUP_DIR}" "${S3_BUCKET:?}" "${S3_REGION:?}" "${S3_CREDENTIALS_FILE:?}"
    [ -r "$S3_CREDENTIALS_FILE" ] || die "cannot read the credentials file $S3_CREDENTIALS_FILE"
    destination="$S3_ENDPOINT/$S3_BUCKET"
    auth_wait=${UPLOAD_AUTH_WAIT_SECONDS:-0} auth_retry=${UPLOAD_AUTH_RETRY_SECONDS:-15}
    case "$auth_wait$auth_retry" in *[!0-9]* | "") die "UPLOAD_AUTH_WAIT_SECONDS and UPLOAD_AUTH_RETRY_SECONDS must be whole seconds" ;; esac
    auth_deadline=$(($(date +%s) + auth_wait))
fi

for tool in "$DOCKER" age tar openssl base64; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
done

# Same value as SIGNATURE_FORMAT in render/signing.ts (a test keeps them equal).
SIGNATURE_FORMAT="platform-backup-signature/1"
: "${SIGNING_KEY_FILE:?set SIGNING_KEY_FILE (the backup signing key of the host)}"
[ -r "$SIGNING_KEY_FILE" ] || die "cannot read the signing key $SIGNING_KEY_FILE"
openssl pkey -in "$SIGNING_KEY_FILE" -noout -text 2>/dev/null | head -n 1 | grep -q '^ED25519 Private-Key' || die "SIGNING_KEY_FILE $SIGNING_KEY_FILE is not an Ed25519 private key (openssl 3 reads it)"
signing_public_key="ed25519:$(openssl pkey -in "$SIGNING_KEY_FILE" -pubout -outform DER | tail -c 32 | base64 | tr -d '\n')"
case $signing_public_key in ed25519:???????????????????????????????????????????=) ;; *) die "cannot derive the public half of the signing key" ;; esac

work=$(mktemp -d "${WORK_DIR:-/var/tmp}/platform-backup.XXXXXX") || die "cannot create a work directory"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# Same text as PIN_SEARCH_PATH_SQL and ROW_COUNT_SQL in render/backup.ts (a test keeps them equal).
PIN_SEARCH_PATH_SQL="SET search_path = pg_catalog, pg_temp;"
ROW_COUNT_SQL="SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('schema', n.nspname, 'table', c.relname, 'rows', (pg_catalog.xpath('/row/n/text()'::pg_catalog.text, pg_catalog.query_to_xml(pg_catalog.format('SELECT pg_catalog.count(*) AS n FROM %I.%I'::pg_catalog.text, n.nspname, c.relname), false, true, ''::pg_catalog.text)))[1]::pg_catalog.text::pg_catalog.int8) ORDER BY n.nspname, c.relname), '[]'::pg_catalog.jsonb) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace WHERE c.relkind OPERATOR(pg_catalog.=) 'r' AND n.nspname OPERATOR(pg_catalog.<>) 'information_schema' AND n.nspname::pg_catalog.text OPERATOR(pg_catalog.!~~) 'pg\\_%'::pg_catalog.text;"
SERVER_SQL="SELECT pg_catalog.jsonb_build_object('version', pg_catalog.current_setting('server_version'), 'versionNum', pg_catalog.current_setting('server_version_num')::pg_catalog.int4);"

file_bytes() { wc -c <"$1" | tr -d ' '; }
if command -v sha256sum >/dev/null 2>&1; then
    file_sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
    file_sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
    die "neither sha256sum nor shasum is installed"
fi

# Dumps one app into $work/<app>/<name>.tar.age. Runs in a subshell with `set -e`: any failure ends it.
backup_one() {
    app=$1
    db=$2
    dir="$work/$app"
    mkdir "$dir"
    # One reading of the clock for both the name and createdAt: two readings can straddle a second
    # boundary, and a restore refuses a manifest whose name does not match its time.
    stamps=$(date -u '+%Y%m%dT%H%M%SZ %Y-%m-%dT%H:%M:%SZ')
    at=${stamps% *}
    created=${stamps#* }
    case $at in [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z) ;; *) log "$app: unexpected date output: $stamps"; return 1 ;; esac
    name="$app-$at"
    dump="$db.pgdump"

    # A psql session holds the snapshot open while pg_dump reads it: SQL in through one fifo, one
    # line of output back through the other.
    mkfifo "$dir/sql" "$dir/out"
    "$DOCKER" exec -i "$PG_CONTAINER" psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$PG_USER" -d "$db" <"$dir/sql" >"$dir/out" 2>"$dir/psql.err" &
    exec 3>"$dir/sql" 4<"$dir/out"
    # The session runs as the superuser in a database the app owns: search_path is pinned first (the
    # app may have set its own on the database, and planted look-alikes of pg_catalog's functions),
    # and every query names pg_catalog's objects (PIN_SEARCH_PATH_SQL in render/backup.ts).
    printf '%s\n' "$PIN_SEARCH_PATH_SQL" "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;" "SELECT pg_catalog.pg_export_snapshot();" >&3
    if ! read -r snapshot <&4; then
        log "$app: psql could not open a snapshot of $db: $(cat "$dir/psql.err")"
        return 1
    fi
    case $snapshot in *[!0-9A-F-]* | "") log "$app: unexpected snapshot id"; return 1 ;; esac

    if ! "$DOCKER" exec "$PG_CONTAINER" pg_dump --format=custom --lock-wait-timeout="$lock_wait" --snapshot="$snapshot" -U "$PG_USER" -d "$db" >"$dir/$dump" 2>"$dir/pg_dump.err"; then
        log "$app: pg_dump failed: $(cat "$dir/pg_dump.err")"
        return 1
    fi
    printf '%s\n' "$ROW_COUNT_SQL" >&3
    read -r tables <&4 || { log "$app: counting rows failed: $(cat "$dir/psql.err")"; return 1; }
    printf '%s\n' "$SERVER_SQL" >&3
    read -r server <&4 || { log "$app: reading the server version failed: $(cat "$dir/psql.err")"; return 1; }
    printf 'COMMIT;\n' >&3
    exec 3>&-
    wait
    exec 4<&-

    # The archive must read back: pg_restore lists its table of contents (same binaries).
    if ! "$DOCKER" exec -i "$PG_CONTAINER" pg_restore --list <"$dir/$dump" >/dev/null 2>"$dir/pg_restore.err"; then
        log "$app: the dump does not read back: $(cat "$dir/pg_restore.err")"
        return 1
    fi
    # Globals are for reference (a restore recreates nothing from them). A non-superuser may be refused
    # the full set by a managed server: then the roles alone, then a file saying what was refused.
    if "$DOCKER" exec "$PG_CONTAINER" pg_dumpall --globals-only --no-role-passwords -U "$PG_USER" >"$dir/globals.sql" 2>"$dir/pg_dumpall.err"; then
        globals_mode=globals
    elif "$DOCKER" exec "$PG_CONTAINER" pg_dumpall --roles-only --no-role-passwords -U "$PG_USER" >"$dir/globals.sql" 2>>"$dir/pg_dumpall.err"; then
        globals_mode=roles-only
        log "$app: pg_dumpall --globals-only was refused to $PG_USER; kept the roles only (--roles-only): $(head -n 1 "$dir/pg_dumpall.err")"
    else
        globals_mode=none
        {
            printf -- '-- platform backup: the server refused pg_dumpall --globals-only and --roles-only to %s;\n' "$PG_USER"
            printf -- '-- no globals are in this backup (a restore does not need them: the platform declares the roles).\n'
            sed 's/^/-- /' "$dir/pg_dumpall.err" | head -n 4
        } >"$dir/globals.sql"
        log "$app: pg_dumpall refused to $PG_USER (globals and roles): the backup holds no globals, the manifest says so"
    fi
    pg_dump_version=$("$DOCKER" exec "$PG_CONTAINER" pg_dump --version | tr -cd 'A-Za-z0-9 ().+~:_-')

    dump_bytes=$(file_bytes "$dir/$dump")
    dump_sha=$(file_sha256 "$dir/$dump")
    globals_bytes=$(file_bytes "$dir/globals.sql")
    globals_sha=$(file_sha256 "$dir/globals.sql")
    printf '{"format":"platform-backup/1","name":"%s","app":"%s","database":"%s","role":"%s","createdAt":"%s","server":%s,"pgDump":"%s","tables":%s,"dump":{"file":"%s","bytes":%s,"sha256":"%s"},"globals":{"file":"globals.sql","bytes":%s,"sha256":"%s"},"globalsMode":"%s"}\n' \
        "$name" "$app" "$db" "app_$(printf '%s' "$app" | tr - _)" "$created" "$server" "$pg_dump_version" "$tables" "$dump" "$dump_bytes" "$dump_sha" "$globals_bytes" "$globals_sha" "$globals_mode" \
        >"$dir/manifest.json"

    tar -C "$dir" -cf "$dir/$name.tar" manifest.json "$dump" globals.sql
    rm -f "$dir/$dump"
    age "$age_args_1" "$age_args_2" -o "$dir/$name.tar.age" "$dir/$name.tar"
    rm -f "$dir/$name.tar"

    # The signed statement: the same lines as signatureStatement in render/signing.ts.
    object="$app/$name.tar.age"
    enc_bytes=$(file_bytes "$dir/$name.tar.age")
    enc_sha=$(file_sha256 "$dir/$name.tar.age")
    printf '%s\nobject %s\nbytes %s\nsha256 %s\n' "$SIGNATURE_FORMAT" "$object" "$enc_bytes" "$enc_sha" >"$dir/statement"
    if ! openssl pkeyutl -sign -rawin -inkey "$SIGNING_KEY_FILE" -in "$dir/statement" -out "$dir/signature.bin" 2>"$dir/openssl.err"; then
        log "$app: signing failed: $(cat "$dir/openssl.err")"
        return 1
    fi
    printf '{"format":"%s","object":"%s","bytes":%s,"sha256":"%s","publicKey":"%s","signature":"%s"}\n' \
        "$SIGNATURE_FORMAT" "$object" "$enc_bytes" "$enc_sha" "$signing_public_key" "$(base64 <"$dir/signature.bin" | tr -d '\n')" >"$dir/$name.tar.age.sig"
    log "$app: dumped $db ($dump_bytes bytes, snapshot $snapshot), encrypted $enc_bytes bytes, signed by $signing_public_key"
    printf '%s\n' "$name" >"$dir/name"
}

# One signed PUT (curl retries transient errors itself). A refusal (HTTP 403) is retried only until
# auth_deadline: UPLOAD_AUTH_WAIT_SECONDS after the script started, set for the backup that runs when the
# schedule is installed, because a new IAM policy or API key takes up to 5 minutes to reach Object
# Storage. Nightly runs have no wait: a refusal fails at once.
put_object() {
    while :; do
        code=$(curl -sS --fail-with-body -o "$work/$1/put.out" -w '%{http_code}' -K "$S3_CREDENTIALS_FILE" --aws-sigv4 "aws:amz:$S3_REGION:s3" \
            --retry 3 --retry-delay 5 --retry-connrefused -m 3600 \
            -H "Content-MD5: $4" -H "x-amz-content-sha256: $5" -H "Content-Type: application/octet-stream" \
            -T "$2" "$S3_ENDPOINT/$S3_BUCKET/$3") && return 0
        now=$(date +%s)
        if [ "$code" != 403 ] || [ "$now" -ge "$auth_deadline" ]; then
            [ "$code" != 403 ] || [ "$auth_wait" -eq 0 ] || log "$1: still refused (403) after waiting ${auth_wait}s for the host's IAM policy and API key to apply"
            return 1
        fi
        log "$1: upload refused (403): the host's IAM policy or API key may not have reached Object Storage yet; retrying in ${auth_retry}s (giving up after $((auth_deadline - now))s more)"
        sleep "$auth_retry"
    done
}

# Uploads $work/<app>/<name>.tar.age to <app>/<name>.tar.age. One PUT with Content-MD5: the object
# store refuses a body that arrived different, and a broken transfer leaves no object.
upload_one() {
    app=$1
    name=$(cat "$work/$app/name")
    file="$work/$app/$name.tar.age"
    key="$app/$name.tar.age"
    # The backup first, then its signature: a reader never sees a signature without its object.
    for suffix in "" .sig; do
        if [ -n "${BACKUP_DIR:-}" ]; then
            mkdir -p "$BACKUP_DIR/$app"
            cp "$file$suffix" "$BACKUP_DIR/$app/.$name$suffix.partial"
            mv -f "$BACKUP_DIR/$app/.$name$suffix.partial" "$BACKUP_DIR/$key$suffix"
        else
            md5=$(openssl dgst -md5 -binary "$file$suffix" | base64)
            # Signed payload hash: the store refuses a body that is not the one signed.
            sha=$(file_sha256 "$file$suffix")
            if ! put_object "$app" "$file$suffix" "$key$suffix" "$md5" "$sha"; then
                log "$app: upload of $key$suffix failed: $(tr '\n' ' ' <"$work/$app/put.out" 2>/dev/null)"
                return 1
            fi
        fi
    done
    log "$app: stored $key and its signature in $destination"
}

age_args_1=$1
age_args_2=$2
failed=""
ok=0
for target in $BACKUP_TARGETS; do
    app=${target%%=*}
    db=${target#*=}
    case $app in "" | *[!a-z0-9-]*) die "bad app name in BACKUP_TARGETS" ;; esac
    case $db in "" | *[!a-z0-9_]*) die "bad database name in BACKUP_TARGETS" ;; esac
    set +e
    (
        set -e
        backup_one "$app" "$db"
        upload_one "$app"
    )
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then ok=$((ok + 1)); else failed="$failed $app"; fi
    rm -rf "${work:?}/$app"
done

if [ -n "$failed" ]; then
    die "no backup for:$failed ($ok other app(s) backed up)"
fi
log "done: $ok app(s) backed up to $destination"
ping_heartbeat ok
