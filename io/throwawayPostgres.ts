// A throwaway PostgreSQL cluster, for the backup drill (commands/backup-drill.ts), the tests and the
// benches: finds the installed server binaries (whatever major is installed: `pg_config --bindir`,
// else the newest /usr/lib/postgresql/<major>/bin), initialises a cluster in a temp dir and starts it
// on a free loopback port with a password-protected superuser. Runs the server as `postgres` when
// this process is root (initdb refuses root). Runtime code: nothing here depends on tests/.
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { freeLoopbackPort } from "./adminChannel";

/** Any free port on 127.0.0.1: the admin channel's helper, which the tests use too. */
export { freeLoopbackPort };

const SERVER_PROGRAMS = ["initdb", "pg_ctl", "postgres"];

/** Directory holding initdb, pg_ctl, psql, pg_dump, pg_restore of one installed major; undefined when none is. */
export function findPostgresBinDir(): string | undefined {
    const candidates: string[] = [];
    if (process.env.PG_BIN_DIR) candidates.push(process.env.PG_BIN_DIR);
    const bindir = spawnSync("pg_config", ["--bindir"], { encoding: "utf8" });
    if (bindir.status === 0) candidates.push(bindir.stdout.trim());
    const root = "/usr/lib/postgresql";
    if (fs.existsSync(root)) {
        const majors = fs
            .readdirSync(root)
            .filter((d) => /^\d+$/.test(d))
            .sort((a, b) => Number(b) - Number(a));
        candidates.push(...majors.map((m) => path.join(root, m, "bin")));
    }
    return candidates.find((dir) => SERVER_PROGRAMS.every((p) => fs.existsSync(path.join(dir, p))));
}


export interface PsqlResult {
    readonly status: number;
    readonly stdout: string;
    readonly stderr: string;
}

export interface Cluster {
    readonly binDir: string;
    readonly host: "127.0.0.1";
    readonly port: number;
    readonly user: "postgres";
    readonly password: string;
    /** Major version of the server, e.g. "16". */
    readonly major: string;
    readonly dir: string;
    /** Environment that points libpq programs at this cluster (PGHOST, PGPORT, PGUSER, PGPASSWORD). */
    readonly env: NodeJS.ProcessEnv;
    /** psql as the superuser, SQL on stdin, unaligned tuples only; never throws. */
    psql(database: string, sql: string): PsqlResult;
    /** Like psql, but throws with psql's message on failure and returns stdout trimmed. */
    query(database: string, sql: string): string;
    stop(): void;
}

export interface ClusterOptions {
    /** Extra `-c name=value` server settings. */
    readonly settings?: Record<string, string>;
}

/** The whole environment the throwaway server gets: a PATH, a locale, a HOME, nothing else. */
export function scrubbedServerEnv(): NodeJS.ProcessEnv {
    return { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C", LC_ALL: "C", HOME: os.tmpdir() };
}

export async function startCluster(binDir = findPostgresBinDir(), options: ClusterOptions = {}): Promise<Cluster> {
    if (binDir === undefined) throw new Error("no PostgreSQL server binaries found (pg_config --bindir, /usr/lib/postgresql/<major>/bin)");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-pg-"));
    const dataDir = path.join(dir, "data");
    const password = "pw-" + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
    const port = await freeLoopbackPort();
    const asRoot = process.getuid?.() === 0;
    fs.mkdirSync(dataDir, { mode: 0o700 });
    fs.writeFileSync(path.join(dir, "pwfile"), password + "\n", { mode: 0o600 });
    // The server starts with a scrubbed environment: nothing of this process's (the drill's age key, the
    // S3 keys, CI tokens) reaches it, so code restored into it (a tenant's function) cannot read them
    // from /proc/self/environ or a COPY … TO PROGRAM. As root it runs as the `postgres` OS user.
    const serverEnv = scrubbedServerEnv();
    const run = (program: string, args: string[]) => {
        const file = path.join(binDir, program);
        return asRoot
            ? execFileSync("runuser", ["-u", "postgres", "--", "env", "-i", ...Object.entries(serverEnv).map(([k, v]) => `${k}=${v}`), file, ...args], { stdio: "pipe", env: serverEnv })
            : execFileSync(file, args, { stdio: "pipe", env: serverEnv });
    };
    if (asRoot) {
        fs.chmodSync(dir, 0o755);
        execFileSync("chown", ["-R", "postgres", dir]);
    }
    try {
        run("initdb", ["-D", dataDir, "-U", "postgres", "--auth=scram-sha-256", `--pwfile=${path.join(dir, "pwfile")}`, "-E", "UTF8", "--locale=C"]);
        const settings = Object.entries({ fsync: "off", full_page_writes: "off", synchronous_commit: "off", ...options.settings })
            .map(([k, v]) => `-c ${k}=${v}`)
            .join(" ");
        run("pg_ctl", ["-D", dataDir, "-w", "-t", "60", "-l", path.join(dir, "server.log"), "-o", `-h 127.0.0.1 -p ${port} -k ${dir} ${settings}`, "start"]);
    } catch (e) {
        const log = fs.existsSync(path.join(dir, "server.log")) ? fs.readFileSync(path.join(dir, "server.log"), "utf8") : "";
        fs.rmSync(dir, { recursive: true, force: true });
        const err = e as { stderr?: Buffer; message: string };
        throw new Error(`could not start PostgreSQL from ${binDir}: ${err.stderr?.toString() ?? err.message}\n${log}`);
    }
    const env: NodeJS.ProcessEnv = { ...process.env, PGHOST: "127.0.0.1", PGPORT: String(port), PGUSER: "postgres", PGPASSWORD: password, PGCONNECT_TIMEOUT: "5" };
    const psql = (database: string, sql: string): PsqlResult => {
        const r = spawnSync(path.join(binDir, "psql"), ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", database], { input: sql, encoding: "utf8", env, maxBuffer: 64 * 1024 * 1024 });
        return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
    };
    const major = psql("postgres", "SHOW server_version_num").stdout.trim().slice(0, -4);
    let stopped = false;
    return {
        binDir,
        host: "127.0.0.1",
        port,
        user: "postgres",
        password,
        major,
        dir,
        env,
        psql,
        query(database, sql) {
            const r = psql(database, sql);
            if (r.status !== 0) throw new Error(`psql -d ${database} failed: ${r.stderr}`);
            return r.stdout.trim();
        },
        stop() {
            if (stopped) return;
            stopped = true;
            try {
                run("pg_ctl", ["-D", dataDir, "-m", "immediate", "-w", "stop"]);
            } catch {
                // already gone
            }
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}
