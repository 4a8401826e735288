// Names, server settings, the connection budget and the SQL the platform runs on PostgreSQL. Pure, so
// every statement can be checked against a real PostgreSQL exactly as the host runs it.
import * as crypto from "crypto";
import { AppDefinition } from "../apps/types";
import { ContainerSecurity } from "../apps/types";

/** Network alias the backends use to reach PostgreSQL on their own database network. */
export const POSTGRES_ALIAS = "postgres";
export const POSTGRES_MAJOR = "15";
export const POSTGRES_IMAGE = `postgres:${POSTGRES_MAJOR}.10-bookworm`;
/** Fixed container name: host commands reach the server's local socket through `docker exec`. */
export const POSTGRES_CONTAINER = "platform-postgres";
/** The protected data volume (also named by commands/local-down.sh). */
export const POSTGRES_VOLUME = "platform-pgdata";
/** UID:GID of `postgres` in the official Debian image; the data directory belongs to it. */
export const POSTGRES_USER = "999:999";
export const POSTGRES_UID = "999";

/**
 * The loopback forwarder: PostgreSQL joins internal networks only (no gateway, no route out), so the
 * admin port is published by this small relay on an internal network shared with PostgreSQL plus a
 * bridge that can publish 127.0.0.1:<port>.
 */
export const FORWARDER_IMAGE = "alpine/socat:1.8.0.3";
export const FORWARDER_CONTAINER = "platform-pg-forwarder";
/** Memory limit of the forwarder, in MiB: the memory plan adds it. */
export const FORWARDER_MEMORY_MB = 32;
/** socat as `nobody`: listens on 5432 inside its container (no NET_BIND_SERVICE), writes nothing. */
export const FORWARDER_SECURITY: ContainerSecurity = { readOnlyRootFilesystem: true };
/** Internal network of PostgreSQL and the forwarder. */
export const FORWARD_NETWORK = "platform-pg-forward";
/** The forwarder's bridge with a gateway, needed only to publish the loopback port. */
export const PUBLISH_NETWORK = "platform-pg-publish";

/** max_connections of the server, and the part of it kept for the admin (Pulumi, host commands, backups). */
export const POSTGRES_MAX_CONNECTIONS = 100;
export const ADMIN_CONNECTION_RESERVE = 10;
/** Slots only superusers may take: inside the admin reserve. */
export const SUPERUSER_RESERVED_CONNECTIONS = 5;
/** Connection limit of an app's role when its catalog entry does not set `databaseConnectionLimit`. */
export const DEFAULT_DATABASE_CONNECTION_LIMIT = 20;

export interface AppDatabaseNames {
    readonly database: string;
    readonly role: string;
}

const APP_NAME = /^[a-z][a-z0-9-]{0,30}$/;

/** `app1` → database `app1_db`, role `app_app1` (the names the seeds' server used). */
export function appDatabaseNames(app: string): AppDatabaseNames {
    if (!APP_NAME.test(app)) throw new Error(`app name ${JSON.stringify(app)} cannot name a database`);
    const base = app.replace(/-/g, "_");
    return { database: `${base}_db`, role: `app_${base}` };
}

/** `platform-db-<app>`: the internal network only this app's backend and PostgreSQL join. */
export function appDatabaseNetwork(app: string): string {
    if (!APP_NAME.test(app)) throw new Error(`app name ${JSON.stringify(app)} cannot name a network`);
    return `platform-db-${app}`;
}

/** The role's connection limit: the catalog's `databaseConnectionLimit`, or the default. */
export function databaseConnectionLimit(app: AppDefinition): number {
    return app.databaseConnectionLimit ?? DEFAULT_DATABASE_CONNECTION_LIMIT;
}

/**
 * What is wrong with the connection limits of the apps a stack runs: each must be a whole number of at
 * least 1, and together they must fit max_connections minus the admin reserve. Empty when all is well.
 * Each message names the file to change and the fix (config/platformConfig.ts reports them under `platform:apps`).
 */
export function connectionBudgetProblems(apps: readonly AppDefinition[]): string[] {
    const problems: string[] = [];
    const budget = POSTGRES_MAX_CONNECTIONS - ADMIN_CONNECTION_RESERVE;
    const withDatabase = apps.filter((a) => a.database);
    for (const app of withDatabase) {
        const limit = databaseConnectionLimit(app);
        if (!Number.isInteger(limit) || limit < 1 || limit > budget) {
            problems.push(
                `apps/${app.name}.ts: databaseConnectionLimit ${JSON.stringify(limit)} must be a whole number from 1 to ${budget}. ` +
                    `Fix: set databaseConnectionLimit in apps/${app.name}.ts (default ${DEFAULT_DATABASE_CONNECTION_LIMIT})`,
            );
        }
    }
    if (problems.length > 0) return problems;
    const total = withDatabase.reduce((sum, a) => sum + databaseConnectionLimit(a), 0);
    if (total > budget) {
        const parts = withDatabase.map((a) => `${a.name} ${databaseConnectionLimit(a)} in apps/${a.name}.ts`).join(", ");
        problems.push(
            `database connection limits sum to ${total} (${parts}) but PostgreSQL allows ${budget} for apps ` +
                `(max_connections ${POSTGRES_MAX_CONNECTIONS} minus ${ADMIN_CONNECTION_RESERVE} kept for the admin and backups). ` +
                `Fix: lower databaseConnectionLimit in apps/<name>.ts, remove an app, or raise POSTGRES_MAX_CONNECTIONS in render/postgres.ts`,
        );
    }
    return problems;
}

/** Server settings sized for the container's memory limit. */
export function postgresSettings(memoryMb: number): Record<string, string> {
    const mb = (n: number) => `${Math.max(1, Math.floor(n))}MB`;
    return {
        shared_buffers: mb(memoryMb / 4),
        effective_cache_size: mb((memoryMb * 3) / 4),
        maintenance_work_mem: mb(Math.min(memoryMb / 16, 512)),
        work_mem: mb(Math.max(2, Math.min(16, memoryMb / 256))),
        max_connections: String(POSTGRES_MAX_CONNECTIONS),
        superuser_reserved_connections: String(SUPERUSER_RESERVED_CONNECTIONS),
        wal_buffers: "16MB",
        checkpoint_completion_target: "0.9",
        password_encryption: "scram-sha-256",
        log_min_duration_statement: "1000",
    };
}

export function postgresCommand(memoryMb: number): string[] {
    return ["postgres", ...Object.entries(postgresSettings(memoryMb)).flatMap(([k, v]) => ["-c", `${k}=${v}`])];
}

export function quoteIdentifier(name: string): string {
    if (name.includes("\0")) throw new Error("an identifier cannot contain NUL");
    return `"${name.replace(/"/g, '""')}"`;
}

export function quoteLiteral(value: string): string {
    if (value.includes("\0")) throw new Error("a literal cannot contain NUL");
    return `'${value.replace(/'/g, "''")}'`;
}

/** Passwords reach psql as SQL on stdin: printable ASCII only, so no newline or control byte can end a statement or start a meta-command. */
function checkPassword(password: string, what: string): void {
    if (password.length < 16 || password.length > 128 || !/^[\x20-\x7e]+$/.test(password)) {
        throw new Error(`${what} must be 16 to 128 printable ASCII characters`);
    }
}

/**
 * Run first in every session that carries a password: no statement of it reaches the server log
 * (slow-statement logging and the statement echoed with an error included).
 */
const QUIET_SESSION = [
    "SET log_statement = 'none';",
    "SET log_min_duration_statement = -1;",
    "SET log_min_error_statement = panic;",
];

/** `docker exec` into the server as its own user, psql over the local socket (trusted inside the container), SQL on stdin. */
export function psqlInContainerCommand(container = POSTGRES_CONTAINER): string {
    if (!/^[a-z][a-z0-9-]{0,62}$/.test(container)) throw new Error(`container name ${JSON.stringify(container)} is not a plain name`);
    return `docker exec -i ${container} psql -X -q -v ON_ERROR_STOP=1 -U postgres -d postgres`;
}

/**
 * Reconciles the server after every start: the admin password from Pulumi's state (the image applies
 * POSTGRES_PASSWORD only when it initialises an empty data directory, so a new password would lock
 * the admin out), and no PUBLIC access to the maintenance databases, so app roles can only reach
 * their own database.
 */
export function serverReconcileSql(adminPassword: string): string {
    checkPassword(adminPassword, "the admin password");
    return [
        ...QUIET_SESSION,
        `ALTER ROLE postgres WITH PASSWORD ${quoteLiteral(adminPassword)};`,
        "REVOKE ALL ON DATABASE postgres FROM PUBLIC;",
        "REVOKE ALL ON DATABASE template1 FROM PUBLIC;",
        "",
    ].join("\n");
}

/** One statement the admin runs for an app database; skipped when `unless` (a query) returns a row. */
export interface SqlStep {
    readonly sql: string;
    readonly unless?: string;
}

/** Who administers the server the app database lives in. */
export interface DatabaseAdmin {
    /** The admin's role name. */
    readonly user: string;
    /**
     * The container server's admin is a superuser. The managed server's is not (CREATEROLE and CREATEDB
     * only): it may set no superuser-only attribute, and must be a member of the app's role to make it
     * the database's owner and, later, to dump and restore what it owns.
     */
    readonly superuser: boolean;
    /** Most connections one role may be given (the server's max_connections less the admin's reserve). */
    readonly maxConnectionLimit?: number;
}

const SCRAM_ITERATIONS = 4096;

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 7677, as libpq's
 * PQencryptPasswordConn makes it). The role's password is set with it, so the password itself never
 * reaches the server, its logs or its statistics. The salt is derived from role and password: the same
 * inputs give the same verifier, so a plan renders identically on every run.
 */
export function scramVerifier(role: string, password: string): string {
    const salt = crypto.createHmac("sha256", password).update(`platform scram salt\0${role}`).digest().subarray(0, 16);
    const salted = crypto.pbkdf2Sync(password.normalize("NFKC"), salt, SCRAM_ITERATIONS, 32, "sha256");
    const clientKey = crypto.createHmac("sha256", salted).update("Client Key").digest();
    const storedKey = crypto.createHash("sha256").update(clientKey).digest();
    const serverKey = crypto.createHmac("sha256", salted).update("Server Key").digest();
    return `SCRAM-SHA-256$${SCRAM_ITERATIONS}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

/**
 * Declares an app's role and database idempotently: creates what is missing, adopts what a removed
 * app left behind (role and database are retained), and sets the role's login, password, limits and
 * privileges, and the database's owner, to the declared ones every time. Safe to run any number of
 * times; every name is quoted for SQL, and system objects are schema-qualified.
 */
export function ensureAppDatabaseSteps(app: string, password: string, connectionLimit: number, admin: DatabaseAdmin): SqlStep[] {
    const { database, role } = appDatabaseNames(app);
    checkPassword(password, `the password of ${role}`);
    const max = admin.maxConnectionLimit ?? POSTGRES_MAX_CONNECTIONS;
    if (!Number.isInteger(connectionLimit) || connectionLimit < 1 || connectionLimit > max) {
        throw new Error(`connection limit ${connectionLimit} of ${role} must be a whole number from 1 to ${max}`);
    }
    const r = quoteIdentifier(role);
    const d = quoteIdentifier(database);
    // Superuser-only attributes are said explicitly where the admin may (so an attribute set by hand is
    // undone); a CREATEROLE admin cannot set them at all, nor give them.
    const attributes = admin.superuser ? "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS" : "LOGIN NOCREATEDB NOCREATEROLE";
    return [
        { sql: `CREATE ROLE ${r}`, unless: `SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) ${quoteLiteral(role)}` },
        { sql: `ALTER ROLE ${r} WITH ${attributes} CONNECTION LIMIT ${connectionLimit} PASSWORD ${quoteLiteral(scramVerifier(role, password))}` },
        ...(admin.superuser ? [] : [{ sql: `GRANT ${r} TO ${quoteIdentifier(admin.user)}` }]),
        {
            sql: `CREATE DATABASE ${d} OWNER ${r} ENCODING 'UTF8' TEMPLATE template0`,
            unless: `SELECT FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) ${quoteLiteral(database)}`,
        },
        { sql: `REVOKE ALL ON DATABASE ${d} FROM PUBLIC` },
        { sql: `ALTER DATABASE ${d} OWNER TO ${r}` },
    ];
}

/**
 * When an app leaves the config: its role may no longer log in and its sessions end. Role and
 * database stay, with the data; re-adding the app adopts them and logs in again with the new password.
 */
export function retireAppDatabaseSteps(app: string): SqlStep[] {
    const { role } = appDatabaseNames(app);
    const r = quoteIdentifier(role);
    return [
        { sql: `ALTER ROLE ${r} WITH NOLOGIN`, unless: `SELECT WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) ${quoteLiteral(role)} AND rolcanlogin)` },
        { sql: `SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename OPERATOR(pg_catalog.=) ${quoteLiteral(role)}` },
    ];
}

/**
 * What is in place for an app database, as refresh and every create or update read it back: one row
 * when the role exists ($1 role, $2 database, $3 admin), none when it does not. Only catalog objects,
 * schema-qualified: the query runs as the admin in the maintenance database.
 */
export const APP_DATABASE_STATE_SQL = `SELECT r.rolcanlogin AS login, r.rolconnlimit AS "connectionLimit",
  (SELECT pg_catalog.pg_get_userbyid(d.datdba) FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) $2) AS owner,
  (SELECT pg_catalog.has_database_privilege('public', d.oid, 'CONNECT') FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) $2) AS "publicConnect",
  pg_catalog.pg_has_role($3, r.oid, 'USAGE') AS "adminMember"
FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1`;

/** An app database as declared: what the server must hold, and the statements that make and read it. */
export interface AppDatabaseDeclaration {
    /** Which server holds it ("container", or "managed:<instance id>"): moving to another is an update that declares it there. */
    readonly server: string;
    readonly role: string;
    readonly database: string;
    readonly connectionLimit: number;
    /** The SCRAM verifier the role's password is set with. */
    readonly passwordHash: string;
    readonly login: boolean;
    readonly owner: string;
    /** Whether PUBLIC may connect to the database. */
    readonly publicConnect: boolean;
    /** Whether the admin is a member of the role (declared, and observed, only where it is no superuser). */
    readonly adminMember: boolean;
    /** The admin must be a member of the role (the managed server, where it is no superuser). */
    readonly wantsAdminMember: boolean;
    /** Creates or adopts the role and database and sets everything declared. */
    readonly ensure: SqlStep[];
    /** Run when the app leaves the config: no more logins, data kept. */
    readonly retire: SqlStep[];
    /** Reads back what is in place: $1 role, $2 database, $3 admin; no row when the role is gone. */
    readonly stateSql: string;
}

/** The declaration of an app's database on a server administered by `admin`. */
export function declareAppDatabase(app: string, password: string, connectionLimit: number, admin: DatabaseAdmin, server: string): AppDatabaseDeclaration {
    const { database, role } = appDatabaseNames(app);
    return {
        server,
        role,
        database,
        connectionLimit,
        passwordHash: scramVerifier(role, password),
        login: true,
        owner: role,
        publicConnect: false,
        adminMember: !admin.superuser,
        wantsAdminMember: !admin.superuser,
        ensure: ensureAppDatabaseSteps(app, password, connectionLimit, admin),
        retire: retireAppDatabaseSteps(app),
        stateSql: APP_DATABASE_STATE_SQL,
    };
}

/** Where the backends reach the server, and how (libpq's names: the DATABASE_URL's parameters). */
export interface AppEndpoint {
    readonly host: string;
    readonly port: number;
    readonly sslmode: string;
    /** `require`: SCRAM-SHA-256-PLUS bound to the TLS channel, or no connection (libpq >= 13). */
    readonly channelBinding?: "require";
}

/** postgres://role:password@host:port/database?sslmode=…[&channel_binding=require], with the credentials URL-encoded. */
export function databaseUrl(role: string, password: string, host: string, port: number, database: string, sslmode = "disable", channelBinding?: "require"): string {
    const binding = channelBinding === undefined ? "" : `&channel_binding=${channelBinding}`;
    return `postgres://${encodeURIComponent(role)}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}?sslmode=${sslmode}${binding}`;
}

// ---------------------------------------------------------------------------------------------
// The managed server's TLS: what every client of the managed instance checks before it authenticates
//
// Two independent checks, because neither alone covers every client here:
// - The server's certificate, against the instance's own certificate as the only trusted root (the
//   `certificate` Scaleway hands out for the instance, read from the instance resource; never the
//   system's roots). verify-full also checks the name the client dials (the private endpoint's IP)
//   is in that certificate; Scaleway documents verify-full for its public endpoint's host name, and
//   says nothing of which names a private-network endpoint's certificate carries. So the mode is
//   decided from the certificate itself: verify-full when it names the endpoint's IP, else verify-ca
//   (the chain still has to end in this instance's certificate), with a warning.
// - Channel binding (SCRAM-SHA-256-PLUS, `channel_binding=require`): the client binds its SCRAM proof
//   to the certificate it saw. A man in the middle, whatever certificate it holds (even one for the
//   right name from the right CA), cannot relay the authentication to the instance (the instance
//   binds to its own certificate, the proofs differ) and cannot answer it itself without the role's
//   SCRAM verifier; a server that asks for a cleartext or MD5 password, or lets the client in
//   without authenticating it (trust), is refused before the password leaves the client. It needs
//   no file in the client and no name in the certificate, so it is the floor for every client,
//   the apps included.
// A TCP forward on the way (host 0's relay, the SSH forward) does not weaken either: TLS runs end to
// end through it. A relay that terminated TLS would fail both checks.

/** What every client of the managed instance checks of the server. */
export interface ManagedServerTls {
    /** PEM: the instance's certificate as Scaleway hands it out, the one root the clients trust. */
    readonly rootCertificate: string;
    /** libpq's sslmode: verify-full when that certificate names the endpoint's IP, else verify-ca. */
    readonly sslmode: "verify-full" | "verify-ca";
    /** The name the server's certificate must carry under verify-full: the private endpoint's IP. */
    readonly serverName: string;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g;

/**
 * The checks for the instance's certificate (PEM, one or more certificates) and its private
 * endpoint's IP. Throws when there is no certificate to check against: no client connects unchecked.
 */
export function managedServerTls(certificate: string, endpointIp: string): ManagedServerTls {
    if (!/^(\d{1,3})(\.\d{1,3}){3}$/.test(endpointIp)) throw new Error(`${JSON.stringify(endpointIp)} is not the endpoint's IPv4 address`);
    const pems = (certificate ?? "").match(PEM_CERTIFICATE) ?? [];
    if (pems.length === 0) throw new Error("the managed instance reports no TLS certificate: its clients would have nothing to check the server against");
    // Only a SAN IP entry counts (what node's TLS checks for an IP; libpq >= 14 does the same when SANs exist).
    const named = pems.some((pem) => new crypto.X509Certificate(pem).checkIP(endpointIp) !== undefined);
    return { rootCertificate: pems.join("\n") + "\n", sslmode: named ? "verify-full" : "verify-ca", serverName: endpointIp };
}

/** The apps' way to the managed instance: TLS and channel binding required (see above for why not verify-full). */
export function managedAppEndpoint(ip: string, port: number): AppEndpoint {
    // verify-full would need the instance's certificate as a file inside every app's image, at a
    // path each driver is told; channel binding needs nothing of the app but a driver that honours
    // `channel_binding=require` (libpq >= 13 does; README lists what other drivers need).
    return { host: ip, port, sslmode: "require", channelBinding: "require" };
}

/** Where the client container writes the instance's certificate at start (its /tmp is a tmpfs; the root is read-only). */
export const MANAGED_CLIENT_ROOT_CERT = "/tmp/platform-managed-db-root.crt";

/**
 * The client container's environment (libpq's variables) but for PGPASSWORD: pg_dump, pg_restore and
 * psql run there by the backups, the restore and the migration check the server's certificate
 * against the instance's and bind SCRAM to the channel. The certificate comes in as
 * PLATFORM_DB_ROOT_CERT (public) and is written to PGSSLROOTCERT by managedClientCommand.
 */
export function managedClientEnv(endpoint: { readonly ip: string; readonly port: number }, tls: ManagedServerTls, user: string): string[] {
    return [
        `PGHOST=${endpoint.ip}`,
        `PGPORT=${endpoint.port}`,
        `PGUSER=${user}`,
        "PGDATABASE=postgres",
        `PGSSLMODE=${tls.sslmode}`,
        `PGSSLROOTCERT=${MANAGED_CLIENT_ROOT_CERT}`,
        "PGCHANNELBINDING=require",
        `PLATFORM_DB_ROOT_CERT=${tls.rootCertificate}`,
    ];
}

/** The client container's command: writes the certificate where PGSSLROOTCERT points, then idles for `docker exec`. */
export function managedClientCommand(): string[] {
    // Until the file is there libpq refuses to connect (no root certificate): it fails closed.
    return ["sh", "-c", 'umask 022 && printf "%s" "$PLATFORM_DB_ROOT_CERT" > "$PGSSLROOTCERT" && exec sleep infinity'];
}
