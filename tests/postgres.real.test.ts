// The SQL and scripts the platform runs on its PostgreSQL, against a real throwaway PostgreSQL (the installed major) on a
// loopback port. `docker` is a stand-in on PATH that runs what the host would run in the container
// locally: `docker exec -i platform-postgres psql …` runs that psql as the server's OS user over the
// cluster's socket (trusted, as inside the official image); `docker run … --volume V:/data:ro` runs
// the inner script as the given UID on a directory standing for the volume.
import * as assert from "assert";
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import { findPostgresBinDir } from "../io/throwawayPostgres";
import * as os from "os";
import * as path from "path";
import { psqlInContainerCommand, serverReconcileSql } from "../render/postgres";
import { declaredState, ensureAppDatabase, provider } from "./support/appDatabase";
import { readHostScript } from "../hostScripts";
import { runScript } from "../render/shell";
import { freePort, requireBinary, requireRoot, sleep } from "./support/edge";

// Whatever major is installed (Debian 12: 15, Ubuntu 24.04: 16); a missing one fails in CI below.
const PG_BIN = findPostgresBinDir() ?? "/usr/lib/postgresql/none/bin";
const stamp = Date.now().toString(36);
const ADMIN_INITIAL = `initial-admin-${stamp}-0123456789`;
const ADMIN_FROM_STATE = `state-admin-${stamp}-9876543210`;

interface Cluster {
    dir: string;
    dataDir: string;
    socketDir: string;
    port: number;
    log: string;
    bin: string;
    dockerLog: string;
    volumes: string;
    pgUid: number;
    pgGid: number;
}

function ids(user: string): [number, number] {
    return [Number(execFileSync("id", ["-u", user], { encoding: "utf8" }).trim()), Number(execFileSync("id", ["-g", user], { encoding: "utf8" }).trim())];
}

/** The stand-in docker: see the header. */
function writeFakeDocker(c: Cluster): void {
    fs.writeFileSync(
        path.join(c.bin, "docker"),
        `#!/bin/sh
printf '%s\\n' "$*" >> ${c.dockerLog}
cmd=$1; shift
case $cmd in
run)
  user=; vol=; script=
  while [ $# -gt 0 ]; do
    case $1 in
      --user) user=$2; shift 2 ;;
      --volume) vol=$2; shift 2 ;;
      -c) script=$2; shift 2 ;;
      *) shift ;;
    esac
  done
  dir="${c.volumes}/\${vol%%:*}"
  mkdir -p "$dir"
  script=$(printf '%s' "$script" | sed "s#/data#$dir#g")
  exec setpriv --reuid "\${user%%:*}" --regid "\${user##*:}" --clear-groups sh -c "$script"
  ;;
exec)
  [ "$1" = -i ] && shift
  [ "$1" = platform-postgres ] || { echo "no such container: $1" >&2; exit 1; }
  shift
  exec setpriv --reuid ${c.pgUid} --regid ${c.pgGid} --clear-groups env PGHOST=${c.socketDir} PGPORT=${c.port} "$@"
  ;;
esac
echo "stand-in docker: unexpected $cmd" >&2
exit 1
`,
        { mode: 0o755 },
    );
}

/** Runs a host command exactly as the Command provider does: `sh -c <create>`, stdin attached. */
function hostCommand(c: Cluster, script: string, stdin = "", extraEnv: Record<string, string> = {}) {
    return spawnSync("/bin/sh", ["-c", script], { input: stdin, encoding: "utf8", env: { ...process.env, ...extraEnv, PATH: `${c.bin}:${process.env.PATH}` } });
}

/** A client over TCP with a password, as a backend or the admin provider connects. */
function psqlTcp(c: Cluster, user: string, password: string, database: string, sql: string) {
    return spawnSync("psql", ["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(c.port), "-U", user, "-d", database, "-c", sql], {
        encoding: "utf8",
        env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: "5" },
    });
}

const reconcileCommand = `# postgres container postgres-container-id\n${psqlInContainerCommand()}`;
/** The app-database provider's create, as the superuser over TCP (the admin channel's far end). */
const ensure = (c: Cluster, app: string, password: string, limit: number) =>
    ensureAppDatabase({ host: "127.0.0.1", port: c.port, user: "postgres", password: ADMIN_FROM_STATE, database: "postgres", ssl: false }, app, password, limit);

function requirePostgres(ctx: Mocha.Context): void {
    for (const bin of ["psql", "setpriv"]) requireBinary(ctx, bin);
    if (!fs.existsSync(`${PG_BIN}/initdb`)) requireBinary(ctx, "initdb");
}

async function startCluster(): Promise<Cluster> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-pg-"));
    fs.chmodSync(dir, 0o755);
    const [pgUid, pgGid] = ids("postgres");
    const volumes = path.join(dir, "volumes");
    fs.mkdirSync(volumes);
    // The data directory is where the volume's content would be: the check script reads it there.
    const dataDir = path.join(volumes, "platform-pgdata");
    fs.mkdirSync(dataDir, { mode: 0o700 });
    fs.chownSync(dataDir, pgUid, pgGid);
    const socketDir = path.join(dir, "socket");
    fs.mkdirSync(socketDir);
    fs.chownSync(socketDir, pgUid, pgGid);
    const pwfile = path.join(dir, "pwfile");
    fs.writeFileSync(pwfile, ADMIN_INITIAL + "\n", { mode: 0o644 });
    const bin = path.join(dir, "bin");
    fs.mkdirSync(bin);
    const port = await freePort();
    const log = path.join(dir, "server.log");
    fs.writeFileSync(log, "");
    fs.chownSync(log, pgUid, pgGid);
    const asPostgres = (cmd: string, args: string[]) => execFileSync("runuser", ["-u", "postgres", "--", cmd, ...args], { stdio: "pipe" });
    // Like the official image: trust on the container's local socket, passwords over TCP.
    asPostgres(`${PG_BIN}/initdb`, ["-D", dataDir, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", `--pwfile=${pwfile}`]);
    // Every statement logged at server level: the platform's sessions must still keep passwords out.
    asPostgres(`${PG_BIN}/pg_ctl`, ["-D", dataDir, "-w", "-l", log, "-o", `-h 127.0.0.1 -p ${port} -k ${socketDir} -c log_statement=all -c log_min_error_statement=error`, "start"]);
    const c: Cluster = { dir, dataDir, socketDir, port, log, bin, dockerLog: path.join(dir, "docker.log"), volumes, pgUid, pgGid };
    writeFakeDocker(c);
    return c;
}

function stopCluster(c: Cluster | undefined): void {
    if (!c) return;
    if (fs.existsSync(path.join(c.dataDir, "postmaster.pid"))) {
        spawnSync("runuser", ["-u", "postgres", "--", `${PG_BIN}/pg_ctl`, "-D", c.dataDir, "-m", "fast", "stop"]);
    }
    fs.rmSync(c.dir, { recursive: true, force: true });
}

describe("PostgreSQL reconcile, ensure and isolation (real PostgreSQL, stand-in docker)", function () {
    this.timeout(60000);
    let c: Cluster;
    const passwords = { app1: `app1-first-${stamp}-abcdefgh`, app2: `app2-first-${stamp}-abcdefgh`, app1Readded: `app1-readded-${stamp}-zyxwvu` };

    before(async function () {
        requirePostgres(this);
        requireRoot(this, "a data directory owned by the postgres user, as in the container");
        c = await startCluster();
    });
    after(() => stopCluster(c));

    it("a cluster initialised with one admin password is reconciled to the one in state: the new one logs in, the old one is refused", () => {
        assert.strictEqual(psqlTcp(c, "postgres", ADMIN_INITIAL, "postgres", "SELECT 1").status, 0, "the starting point: the password the volume was initialised with");
        assert.notStrictEqual(psqlTcp(c, "postgres", ADMIN_FROM_STATE, "postgres", "SELECT 1").status, 0, "the image ignored the new POSTGRES_PASSWORD");
        const r = hostCommand(c, reconcileCommand, serverReconcileSql(ADMIN_FROM_STATE));
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(fs.readFileSync(c.dockerLog, "utf8"), /^exec -i platform-postgres psql -X -q -v ON_ERROR_STOP=1 -U postgres -d postgres$/m);
        assert.strictEqual(psqlTcp(c, "postgres", ADMIN_FROM_STATE, "postgres", "SELECT 1").status, 0, "the admin logs in with the password in state");
        assert.notStrictEqual(psqlTcp(c, "postgres", ADMIN_INITIAL, "postgres", "SELECT 1").status, 0, "the old password no longer works");
        const again = hostCommand(c, reconcileCommand, serverReconcileSql(ADMIN_FROM_STATE));
        assert.strictEqual(again.status, 0, `re-running is harmless: ${again.stderr}`);
    });

    it("creates each app's role and database; app1 cannot connect to postgres, template1 or app2_db, nor read app2's tables", async () => {
        for (const app of ["app1", "app2"] as const) {
            const r = (await ensure(c, app, passwords[app], 20));
            assert.strictEqual(r.status, 0, `${app}: ${r.stderr}`);
        }
        assert.strictEqual(psqlTcp(c, "app_app1", passwords.app1, "app1_db", "CREATE TABLE orders (id int); INSERT INTO orders VALUES (42);").status, 0);
        const secret = psqlTcp(c, "app_app2", passwords.app2, "app2_db", "CREATE TABLE secrets (v text); INSERT INTO secrets VALUES ('app2 only');");
        assert.strictEqual(secret.status, 0, secret.stderr);
        for (const db of ["postgres", "template1", "app2_db"]) {
            const r = psqlTcp(c, "app_app1", passwords.app1, db, "SELECT 1");
            assert.notStrictEqual(r.status, 0, `app_app1 must not connect to ${db}`);
            assert.match(r.stderr, new RegExp(`permission denied for database "${db}"`));
        }
        const read = psqlTcp(c, "app_app1", passwords.app1, "app2_db", "SELECT * FROM secrets");
        assert.notStrictEqual(read.status, 0);
        assert.doesNotMatch(read.stdout, /app2 only/);
        // Inside its own database app1 sees no object of app2's.
        const visible = psqlTcp(c, "app_app1", passwords.app1, "app1_db", "SELECT count(*) FROM pg_class WHERE relname = 'secrets'");
        assert.strictEqual(visible.stdout.trim(), "0");
        assert.notStrictEqual(psqlTcp(c, "app_app2", passwords.app2, "app1_db", "SELECT * FROM orders").status, 0);
        // The roles are plain logins with the catalog's limit.
        const role = psqlTcp(c, "postgres", ADMIN_FROM_STATE, "postgres", "SELECT rolsuper, rolcreatedb, rolcreaterole, rolconnlimit FROM pg_roles WHERE rolname = 'app_app1'");
        assert.strictEqual(role.stdout.trim(), "f|f|f|20");
        const owner = psqlTcp(c, "postgres", ADMIN_FROM_STATE, "postgres", "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'app1_db'");
        assert.strictEqual(owner.stdout.trim(), "app_app1|UTF8");
    });

    it("removed: the role can no longer log in and its sessions end, role and database stay; re-added with a new password: adopted, data kept, isolation holds", async () => {
        const admin = { host: "127.0.0.1", port: c.port, user: "postgres", password: ADMIN_FROM_STATE, database: "postgres", ssl: false };
        // A session of the app's, open while the app is removed.
        const session: ChildProcess = spawn("psql", ["-X", "-h", "127.0.0.1", "-p", String(c.port), "-U", "app_app1", "-d", "app1_db", "-c", "SELECT pg_sleep(30)"], {
            env: { ...process.env, PGPASSWORD: passwords.app1 },
            stdio: "ignore",
        });
        const ended = new Promise<void>((resolve) => session.on("exit", () => resolve()));
        try {
            for (let i = 0; i < 40; i++) {
                if (psqlTcp(c, "postgres", ADMIN_FROM_STATE, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app_app1'").stdout.trim() === "1") break;
                await sleep(100);
            }
            // Removal: the engine deletes the resource, which retires the role.
            await provider.delete!("app_app1", declaredState(admin, "app1", passwords.app1, 20));
            await Promise.race([ended, sleep(5000).then(() => assert.fail("the removed app's session was not ended"))]);
            const refused = psqlTcp(c, "app_app1", passwords.app1, "app1_db", "SELECT 1");
            assert.notStrictEqual(refused.status, 0, "a removed app's role must not log in");
            assert.match(refused.stderr, /not permitted to log in/);
            assert.strictEqual(psqlTcp(c, "postgres", ADMIN_FROM_STATE, "app1_db", "SELECT id FROM orders").stdout.trim(), "42", "the data stays");
            // Deleting again (a retried destroy) is harmless.
            await provider.delete!("app_app1", declaredState(admin, "app1", passwords.app1, 20));
        } finally {
            session.kill();
        }
        // Re-adding declares the role with the new password in state; it must not fail on what exists.
        const r = (await ensure(c, "app1", passwords.app1Readded, 20));
        assert.strictEqual(r.status, 0, `no "already exists": ${r.stderr}`);
        assert.strictEqual(r.state?.login, true);
        const data = psqlTcp(c, "app_app1", passwords.app1Readded, "app1_db", "SELECT id FROM orders");
        assert.strictEqual(data.status, 0, data.stderr);
        assert.strictEqual(data.stdout.trim(), "42", "the data survived the removal");
        assert.notStrictEqual(psqlTcp(c, "app_app1", passwords.app1, "app1_db", "SELECT 1").status, 0, "the old password is gone");
        for (const db of ["postgres", "app2_db"]) assert.notStrictEqual(psqlTcp(c, "app_app1", passwords.app1Readded, db, "SELECT 1").status, 0, `still no access to ${db}`);
        const twice = (await ensure(c, "app1", passwords.app1Readded, 20));
        assert.strictEqual(twice.status, 0, `idempotent: ${twice.stderr}`);
    });

    it("a refresh reads drift back (login, limit, PUBLIC CONNECT) and a dropped role leaves the state; a preview diffs only what is declared", async () => {
        const admin = { host: "127.0.0.1", port: c.port, user: "postgres", password: ADMIN_FROM_STATE, database: "postgres", ssl: false };
        const declared = declaredState(admin, "app2", passwords.app2, 20);
        const clean = await provider.read!("app_app2", declared);
        assert.strictEqual(clean.id, "app_app2");
        assert.deepStrictEqual((await provider.diff!("app_app2", clean.props, declared)).changes, false, "as declared: no change");
        // Another forward port and re-rendered statements are no change either.
        assert.strictEqual((await provider.diff!("app_app2", clean.props, { ...declared, admin: { ...admin, port: admin.port + 1 }, ensure: [] })).changes, false);
        assert.strictEqual((await provider.diff!("app_app2", clean.props, declaredState(admin, "app2", passwords.app2, 7))).changes, true, "a new limit is a change");
        assert.strictEqual((await provider.diff!("app_app2", clean.props, declaredState(admin, "app2", passwords.app1Readded, 20))).changes, true, "a new password is a change");

        assert.strictEqual(psqlTcp(c, "postgres", ADMIN_FROM_STATE, "postgres", "ALTER ROLE app_app2 NOLOGIN CONNECTION LIMIT 3; GRANT CONNECT ON DATABASE app2_db TO PUBLIC;").status, 0);
        const drifted = await provider.read!("app_app2", declared);
        assert.deepStrictEqual([drifted.props.login, drifted.props.connectionLimit, drifted.props.publicConnect], [false, 3, true]);
        assert.strictEqual((await provider.diff!("app_app2", drifted.props, declared)).changes, true, "drift reads as a change the next up undoes");
        await provider.update!("app_app2", drifted.props, declared);
        assert.strictEqual(psqlTcp(c, "postgres", ADMIN_FROM_STATE, "postgres", "SELECT rolcanlogin, rolconnlimit, has_database_privilege('public', 'app2_db', 'CONNECT') FROM pg_roles WHERE rolname = 'app_app2'").stdout.trim(), "t|20|f");

        // A role dropped by hand (a scratch app, so app2's data stays for the next tests).
        assert.strictEqual((await ensure(c, "scratch", passwords.app2, 5)).status, 0);
        for (const drop of ["DROP DATABASE scratch_db", "DROP ROLE app_scratch"]) assert.strictEqual(psqlTcp(c, "postgres", ADMIN_FROM_STATE, "postgres", drop).status, 0, drop);
        const gone = await provider.read!("app_scratch", declaredState(admin, "scratch", passwords.app2, 5));
        assert.strictEqual(gone.id, "", "a dropped role leaves the state");
        // Deleting what is gone is harmless too.
        await provider.delete!("app_scratch", declaredState(admin, "scratch", passwords.app2, 5));
    });

    it("an admin that is no superuser (CREATEROLE, CREATEDB: the managed server's) declares, owns through membership, and reads back its membership", async () => {
        const adminPassword = `managed-admin-${stamp}-0123456789`;
        assert.strictEqual(psqlTcp(c, "postgres", ADMIN_FROM_STATE, "postgres", `CREATE ROLE platform_admin LOGIN CREATEROLE CREATEDB PASSWORD '${adminPassword}'; GRANT CONNECT ON DATABASE postgres TO platform_admin;`).status, 0);
        const admin = { host: "127.0.0.1", port: c.port, user: "platform_admin", password: adminPassword, database: "postgres", ssl: false };
        const managed = { user: "platform_admin", superuser: false };
        const r = await ensureAppDatabase(admin, "managed", passwords.app2, 10, managed);
        assert.strictEqual(r.status, 0, r.stderr);
        assert.deepStrictEqual([r.state?.owner, r.state?.adminMember, r.state?.login, r.state?.connectionLimit], ["app_managed", true, true, 10]);
        assert.strictEqual(psqlTcp(c, "app_managed", passwords.app2, "managed_db", "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").stdout.trim(), "f");
        assert.strictEqual(psqlTcp(c, "postgres", ADMIN_FROM_STATE, "postgres", "REVOKE app_managed FROM platform_admin").status, 0);
        const state = declaredState(admin, "managed", passwords.app2, 10, managed);
        const read = await provider.read!("app_managed", state);
        assert.strictEqual(read.props.adminMember, false, "a lost membership reads as drift");
        assert.strictEqual((await provider.diff!("app_managed", read.props, state)).changes, true);
        assert.strictEqual((await ensureAppDatabase(admin, "managed", passwords.app2, 10, managed)).state?.adminMember, true, "and the next up grants it again");
    });

    it("a role whose privileges drifted (superuser, public CONNECT) is put back by the next ensure", async () => {
        assert.strictEqual(psqlTcp(c, "postgres", ADMIN_FROM_STATE, "postgres", "ALTER ROLE app_app2 SUPERUSER; GRANT CONNECT ON DATABASE app2_db TO PUBLIC;").status, 0);
        assert.strictEqual((await ensure(c, "app2", passwords.app2, 20)).status, 0);
        assert.strictEqual(psqlTcp(c, "postgres", ADMIN_FROM_STATE, "postgres", "SELECT rolsuper FROM pg_roles WHERE rolname = 'app_app2'").stdout.trim(), "f");
        assert.notStrictEqual(psqlTcp(c, "app_app1", passwords.app1Readded, "app2_db", "SELECT 1").status, 0);
    });

    it("the connection limit is enforced by the server", async () => {
        assert.strictEqual((await ensure(c, "app2", passwords.app2, 1)).status, 0);
        const holder: ChildProcess = spawn("psql", ["-X", "-h", "127.0.0.1", "-p", String(c.port), "-U", "app_app2", "-d", "app2_db", "-c", "SELECT pg_sleep(5)"], {
            env: { ...process.env, PGPASSWORD: passwords.app2 },
            stdio: "ignore",
        });
        try {
            let held = false;
            for (let i = 0; i < 40 && !held; i++) {
                await sleep(100);
                held = psqlTcp(c, "postgres", ADMIN_FROM_STATE, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app_app2'").stdout.trim() === "1";
            }
            assert.ok(held, "the first connection is open");
            const second = psqlTcp(c, "app_app2", passwords.app2, "app2_db", "SELECT 1");
            assert.notStrictEqual(second.status, 0);
            assert.match(second.stderr, /too many connections for role "app_app2"/);
            assert.strictEqual(psqlTcp(c, "postgres", ADMIN_FROM_STATE, "postgres", "SELECT 1").status, 0, "the admin still gets in");
        } finally {
            holder.kill();
        }
        assert.strictEqual((await ensure(c, "app2", passwords.app2, 20)).status, 0);
    });

    it("a hostile password is stored literally: no statement or psql meta-command escapes the literal", async () => {
        const marker = path.join(c.dir, "pwned");
        const hostile = `x'; DROP ROLE app_app2; -- \\! touch ${marker} \\gexec "$(id)" \\\\ end`;
        const r = (await ensure(c, "app1", hostile, 20));
        assert.strictEqual(r.status, 0, r.stderr);
        assert.ok(!fs.existsSync(marker), "no shell escape ran");
        assert.strictEqual(psqlTcp(c, "app_app1", hostile, "app1_db", "SELECT 1").status, 0, "the exact string is the password");
        assert.strictEqual(psqlTcp(c, "postgres", ADMIN_FROM_STATE, "postgres", "SELECT count(*) FROM pg_roles WHERE rolname = 'app_app2'").stdout.trim(), "1");
        assert.strictEqual((await ensure(c, "app1", passwords.app1Readded, 20)).status, 0);
    });

    it("no password reached the server log, though it logs every statement", () => {
        const log = fs.readFileSync(c.log, "utf8");
        assert.match(log, /statement: SET log_statement = 'none'/, "the server does log statements");
        for (const secret of [ADMIN_FROM_STATE, passwords.app1, passwords.app2, passwords.app1Readded]) assert.ok(!log.includes(secret), `${secret.slice(0, 8)}… leaked into the log`);
    });
});

describe("hostScripts/check-postgres-data.sh (real data directory from initdb, stand-in docker)", function () {
    this.timeout(60000);
    let c: Cluster;
    // The installed server's major stands in for the image's: the data directory comes from its initdb.
    let major: string;
    let image: string;
    const other = (delta: number) => String(Number(major) + delta);
    before(async function () {
        requirePostgres(this);
        requireRoot(this, "a data directory owned by the postgres user, as in the container");
        c = await startCluster();
        major = fs.readFileSync(path.join(c.dataDir, "PG_VERSION"), "utf8").trim();
        image = `postgres:${major}.10-bookworm`;
    });
    after(() => stopCluster(c));

    const check = (env: Record<string, string>) => {
        fs.writeFileSync(c.dockerLog, "");
        const command = runScript(readHostScript("check-postgres-data.sh"), { VOLUME: "platform-pgdata", IMAGE: image, MAJOR: major, PG_UID: String(c.pgUid), ...env });
        return hostCommand(c, command);
    };

    it("the same major and owner pass, reading the volume through a hardened, network-less, read-only helper", () => {
        const r = check({});
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`holds a PostgreSQL ${major} data directory owned by UID \\d+: ok`));
        const call = fs.readFileSync(c.dockerLog, "utf8");
        assert.match(call, /^run --rm --network none --read-only --cap-drop ALL --security-opt no-new-privileges:true --memory 64m --memory-swap 64m --pids-limit 32 --user \d+:\d+ --volume platform-pgdata:\/data:ro --entrypoint sh postgres:\d+\.10-bookworm -c /);
        assert.ok(call.includes(` ${image} -c `), call);
    });

    it("a new major version is refused, naming both versions and the dump-and-restore path", () => {
        const newer = other(1);
        const r = check({ MAJOR: newer, IMAGE: `postgres:${newer}.6-bookworm` });
        assert.notStrictEqual(r.status, 0);
        assert.ok(r.stderr.includes(`refusing to start PostgreSQL ${newer} (postgres:${newer}.6-bookworm) on platform-pgdata: it holds a PostgreSQL ${major} data directory`), r.stderr);
        assert.ok(r.stderr.includes(`keep POSTGRES_IMAGE in render/postgres.ts at a ${major} image`), r.stderr);
        assert.match(r.stderr, /pg_dumpall/);
        assert.match(r.stderr, /restore/);
        const older = check({ MAJOR: other(-1), IMAGE: `postgres:${other(-1)}.15-bookworm` });
        assert.notStrictEqual(older.status, 0, "a downgrade too");
    });

    it("a data directory the server's UID cannot open is refused with the one-time fix", () => {
        const r = check({ PG_UID: "65534" });
        assert.notStrictEqual(r.status, 0);
        assert.match(r.stderr, /platform-pgdata cannot be read as UID 65534 \(it belongs to UID \d+\)\. Fix once: docker run --rm --volume platform-pgdata:\/data postgres:\d+\.10-bookworm chown -R 65534:65534 \/data/);
    });

    it("an empty volume passes (the image initialises it); a volume with something else on it is refused", () => {
        const empty = check({ VOLUME: "fresh-volume" });
        assert.strictEqual(empty.status, 0, empty.stderr);
        assert.ok(empty.stdout.includes(`fresh-volume is empty; PostgreSQL ${major} will initialise it`), empty.stdout);
        fs.writeFileSync(path.join(c.volumes, "fresh-volume", "notes.txt"), "not a cluster");
        const other = check({ VOLUME: "fresh-volume" });
        assert.notStrictEqual(other.status, 0);
        assert.match(other.stderr, /holds no PostgreSQL data directory/);
    });

    it("hostile settings are refused before docker is called", () => {
        const hostile: Record<string, string>[] = [{ VOLUME: "pgdata; touch /tmp/x" }, { IMAGE: "--privileged" }, { IMAGE: "postgres:15 $(id)" }, { MAJOR: "15 || true" }, { PG_UID: "0:0" }];
        for (const env of hostile) {
            const r = check(env);
            assert.notStrictEqual(r.status, 0, JSON.stringify(env));
            assert.match(r.stderr, /check-postgres-data: /);
            assert.strictEqual(fs.readFileSync(c.dockerLog, "utf8"), "", `docker must not run for ${JSON.stringify(env)}`);
        }
    });
});
