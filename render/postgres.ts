// Names, server settings, the connection budget and the SQL the platform runs on PostgreSQL. Pure, so
// every statement can be checked against a real PostgreSQL exactly as the host runs it.
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

/**
 * Declares an app's role and database idempotently: creates what is missing, adopts what a removed
 * app left behind (role and database are retained), and sets the role's password, limits and
 * privileges to the declared ones every time. Safe to run any number of times.
 */
export function ensureAppDatabaseSql(app: string, password: string, connectionLimit: number): string {
    const { database, role } = appDatabaseNames(app);
    checkPassword(password, `the password of ${role}`);
    if (!Number.isInteger(connectionLimit) || connectionLimit < 1 || connectionLimit > POSTGRES_MAX_CONNECTIONS) {
        throw new Error(`connection limit ${connectionLimit} of ${role} must be a whole number from 1 to ${POSTGRES_MAX_CONNECTIONS}`);
    }
    const r = quoteIdentifier(role);
    const d = quoteIdentifier(database);
    return [
        ...QUIET_SESSION,
        // CREATE DATABASE cannot run in a DO block: psql's \gexec runs the statement only when the SELECT yields it.
        `SELECT ${quoteLiteral(`CREATE ROLE ${r}`)} WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${quoteLiteral(role)})\\gexec`,
        `ALTER ROLE ${r} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT ${connectionLimit} PASSWORD ${quoteLiteral(password)};`,
        `SELECT ${quoteLiteral(`CREATE DATABASE ${d} OWNER ${r} ENCODING 'UTF8' TEMPLATE template0`)} WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = ${quoteLiteral(database)})\\gexec`,
        `REVOKE ALL ON DATABASE ${d} FROM PUBLIC;`,
        `ALTER DATABASE ${d} OWNER TO ${r};`,
        "",
    ].join("\n");
}

/** postgres://role:password@host:port/database, with the credentials URL-encoded. */
export function databaseUrl(role: string, password: string, host: string, port: number, database: string, sslmode = "disable"): string {
    return `postgres://${encodeURIComponent(role)}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}?sslmode=${sslmode}`;
}
