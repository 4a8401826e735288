// Names, server settings and the SQL equivalent of what AppDatabase declares. Pure, so the privilege
// model can be checked against a real PostgreSQL with exactly these statements.

/** Network alias the backends use to reach PostgreSQL on the internal database network. */
export const POSTGRES_ALIAS = "postgres";
export const POSTGRES_IMAGE = "postgres:15.10-bookworm";
export const POSTGRES_MAJOR = "15";

export interface AppDatabaseNames {
    readonly database: string;
    readonly role: string;
}

/** `app1` → database `app1_db`, role `app_app1` (the names the seeds' server used). */
export function appDatabaseNames(app: string): AppDatabaseNames {
    if (!/^[a-z][a-z0-9-]{0,30}$/.test(app)) throw new Error(`app name ${JSON.stringify(app)} cannot name a database`);
    const base = app.replace(/-/g, "_");
    return { database: `${base}_db`, role: `app_${base}` };
}

/** Server settings sized for the container's memory limit. */
export function postgresSettings(memoryMb: number): Record<string, string> {
    const mb = (n: number) => `${Math.max(1, Math.floor(n))}MB`;
    return {
        shared_buffers: mb(memoryMb / 4),
        effective_cache_size: mb((memoryMb * 3) / 4),
        maintenance_work_mem: mb(Math.min(memoryMb / 16, 512)),
        work_mem: mb(Math.max(2, Math.min(16, memoryMb / 256))),
        max_connections: "100",
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
    return `"${name.replace(/"/g, '""')}"`;
}

export function quoteLiteral(value: string): string {
    return `'${value.replace(/'/g, "''")}'`;
}

/** What the declared Role, Database and Grant amount to, as SQL run by a superuser. */
export function appDatabaseStatements(app: string, password: string): string[] {
    const { database, role } = appDatabaseNames(app);
    return [
        `CREATE ROLE ${quoteIdentifier(role)} LOGIN PASSWORD ${quoteLiteral(password)}`,
        `CREATE DATABASE ${quoteIdentifier(database)} OWNER ${quoteIdentifier(role)}`,
        `REVOKE ALL ON DATABASE ${quoteIdentifier(database)} FROM PUBLIC`,
    ];
}

/** postgres://role:password@host:port/database, with the credentials URL-encoded. */
export function databaseUrl(role: string, password: string, host: string, port: number, database: string, sslmode = "disable"): string {
    return `postgres://${encodeURIComponent(role)}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}?sslmode=${sslmode}`;
}
