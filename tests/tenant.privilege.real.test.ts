// A hostile tenant against the privileged code that works in its database (issue 20, point 1): the
// app's role, owning its database, plants functions that shadow pg_catalog's (format, and everything
// else through the database's own search_path), operators, a cast, CHECK and domain constraints, an
// index expression and triggers, each of which tries to make the app's role SUPERUSER and to run
// `COPY … TO PROGRAM` (a file on the server's filesystem). Then the project's own backup.sh, restore,
// drill and migration freeze run on a real PostgreSQL. Afterwards: the role has no new attribute and
// no file was written; the backup still restores and verifies.
import * as assert from "assert";
import { TEST_TRUST, writeSigningKey } from "./support/signing";
import { execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { DirectoryBackupStore, directRunner, restoreBackup } from "../io/restore";
import { runDrill } from "../commands/backup-drill";
import { freeze, isFrozen, unfreeze } from "../commands/migrate-to-managed";
import { requireBinary } from "./support/edge";
import { Cluster, fakeDocker, requirePostgres, startCluster } from "./support/postgres";

const SCRIPT = path.join(__dirname, "..", "hostScripts", "backup.sh");

/** SQL the tenant runs as its own role in its own database. `marker` is a path the attack tries to create. */
export function tenantPlants(role: string, marker: string): string {
    const payload = `
        BEGIN EXECUTE 'ALTER ROLE ${role} SUPERUSER CREATEROLE CREATEDB BYPASSRLS REPLICATION'; EXCEPTION WHEN others THEN NULL; END;
        BEGIN EXECUTE pg_catalog.format('COPY (SELECT 1) TO PROGRAM %L', 'touch ${marker}-' || current_user); EXCEPTION WHEN others THEN NULL; END;
        -- Out of a SET ROLE, back to whoever logged in, and leave something owned by it.
        BEGIN EXECUTE 'RESET ROLE'; EXECUTE 'CREATE SEQUENCE IF NOT EXISTS public.stash'; EXCEPTION WHEN others THEN NULL; END;
        BEGIN EXECUTE 'ALTER ROLE ${role} SUPERUSER'; EXCEPTION WHEN others THEN NULL; END;`;
    return `
CREATE FUNCTION public.pwn() RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN ${payload} RETURN true; END $f$;
-- Closer matches than pg_catalog's for the calls privileged code makes by unqualified name.
CREATE FUNCTION public.format(text, name, name) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); RETURN pg_catalog.format($1, $2, $3); END $f$;
CREATE FUNCTION public.query_to_xml(text, boolean, boolean, text) RETURNS xml LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); RETURN pg_catalog.query_to_xml($1, $2, $3, ''); END $f$;
CREATE FUNCTION public.pg_export_snapshot() RETURNS text LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); RETURN pg_catalog.pg_export_snapshot(); END $f$;
CREATE FUNCTION public.current_setting(text) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); RETURN pg_catalog.current_setting($1); END $f$;
CREATE FUNCTION public.agg_step(jsonb, jsonb) RETURNS jsonb LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); RETURN coalesce($1, '[]'::jsonb) || $2; END $f$;
CREATE AGGREGATE public.jsonb_agg(jsonb) (SFUNC = public.agg_step, STYPE = jsonb);
CREATE FUNCTION public.pg_terminate_backend(integer) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); RETURN pg_catalog.pg_terminate_backend($1); END $f$;
-- Operators on the types the catalog queries compare.
CREATE FUNCTION public.eq_oid(oid, oid) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); RETURN $1 OPERATOR(pg_catalog.=) $2; END $f$;
CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = public.eq_oid);
CREATE FUNCTION public.ne_name(name, text) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); RETURN $1::text OPERATOR(pg_catalog.<>) $2; END $f$;
CREATE OPERATOR public.<> (LEFTARG = name, RIGHTARG = text, FUNCTION = public.ne_name);
-- A type of its own with a cast to text (the tenant owns the type, so it may).
CREATE TYPE public.mood AS ENUM ('ok');
CREATE FUNCTION public.mood_text(public.mood) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); RETURN 'ok'; END $f$;
CREATE CAST (public.mood AS text) WITH FUNCTION public.mood_text(public.mood) AS IMPLICIT;
-- Expression code a restore evaluates while it loads the data.
CREATE FUNCTION public.ok(integer) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $f$ BEGIN PERFORM public.pwn(); RETURN true; END $f$;
CREATE DOMAIN public.checked AS integer CHECK (public.ok(VALUE));
CREATE TABLE public.trap (id integer CHECK (public.ok(id)), v public.checked, m public.mood DEFAULT 'ok');
CREATE INDEX trap_expr ON public.trap ((public.ok(id)));
CREATE FUNCTION public.trg() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); RETURN NEW; END $f$;
CREATE TRIGGER trap_row BEFORE INSERT OR UPDATE ON public.trap FOR EACH ROW EXECUTE FUNCTION public.trg();
INSERT INTO public.trap SELECT g, g FROM generate_series(1, 50) g;
-- Everything privileged code runs here resolves the tenant's schema first.
ALTER DATABASE ${role.replace(/^app_/, "")}_db SET search_path = public, pg_catalog;
`;
}

describe("a hostile tenant against backup, restore, drill and migration (real PostgreSQL)", function () {
    this.timeout(180000);
    let cluster: Cluster;
    let dir: string;
    let dockerDir: string;
    let identity: string;
    let recipient: string;
    let marker: string;
    const role = "app_evil";
    const markers = () => fs.readdirSync(path.dirname(marker)).filter((f) => f.startsWith(path.basename(marker)));
    const attributes = () => cluster.query("postgres", `SELECT concat_ws(',', rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication) FROM pg_roles WHERE rolname = '${role}'`);
    const unprivileged = "false,false,false,false,false".replace(/false/g, "f");

    before(async function () {
        const binDir = requirePostgres(this);
        for (const bin of ["age", "age-keygen", "tar", "sha256sum"]) requireBinary(this, bin);
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-tenant-"));
        fs.chmodSync(dir, 0o777);
        marker = path.join(dir, "pwned");
        cluster = await startCluster(binDir);
        cluster.query("postgres", `CREATE ROLE ${role} LOGIN PASSWORD 'evil-password-123456'; CREATE DATABASE evil_db OWNER ${role}; REVOKE ALL ON DATABASE evil_db FROM PUBLIC;`);
        // The tenant logs in as itself (its DATABASE_URL), as its migrations would.
        const asTenant = spawnSync(path.join(binDir, "psql"), ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "evil_db"], {
            input: tenantPlants(role, marker),
            env: { ...cluster.env, PGUSER: role, PGPASSWORD: "evil-password-123456" },
            encoding: "utf8",
        });
        assert.strictEqual(asTenant.status, 0, asTenant.stderr);
        // The plants ran in the tenant's own session, gaining nothing there.
        assert.strictEqual(cluster.query("evil_db", "SELECT count(*) FROM public.trap"), "50");
        assert.strictEqual(attributes(), unprivileged);
        dockerDir = fakeDocker(cluster);
        identity = path.join(dir, "key");
        execFileSync("age-keygen", ["-o", identity], { stdio: "pipe" });
        recipient = execFileSync("age-keygen", ["-y", identity], { encoding: "utf8" }).trim();
    });
    after(() => {
        cluster?.stop();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });
    afterEach(() => {
        // Repair between cases, so each case's assertion is about its own step.
        if (cluster) cluster.query("postgres", `ALTER ROLE ${role} NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS NOREPLICATION`);
        for (const f of dir && fs.existsSync(dir) ? markers() : []) fs.rmSync(path.join(dir, f));
    });

    const backupDir = () => path.join(dir, "backups");
    const runBackup = (): Promise<{ status: number | null; stderr: string }> =>
        new Promise((resolve) => {
            const child = spawn("sh", [SCRIPT], {
                env: { PATH: `${dockerDir}:${process.env.PATH}`, HOME: process.env.HOME, BACKUP_TARGETS: "evil=evil_db", AGE_RECIPIENT: recipient, SIGNING_KEY_FILE: writeSigningKey(dir), BACKUP_DIR: backupDir(), WORK_DIR: dir },
            });
            let stderr = "";
            child.stderr.on("data", (d) => (stderr += d));
            child.on("close", (status) => resolve({ status, stderr }));
        });
    const runner = () => directRunner({ host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, binDir: cluster.binDir });

    it("backup.sh (superuser, read-only snapshot): the tenant's code never runs with its privileges", async () => {
        const r = await runBackup();
        assert.strictEqual(r.status, 0, r.stderr);
        assert.deepStrictEqual(markers(), [], "no COPY TO PROGRAM ran");
        assert.strictEqual(attributes(), unprivileged);
    });

    it("restore (verify and swap): no tenant code runs as the superuser, the role gains nothing, the data is back", async () => {
        if ((await new DirectoryBackupStore(backupDir(), TEST_TRUST).list("evil")).length === 0) assert.strictEqual((await runBackup()).status, 0);
        const lines: string[] = [];
        const result = await restoreBackup({ store: new DirectoryBackupStore(backupDir(), TEST_TRUST), runner: runner(), app: "evil", identityFile: identity, log: (l) => lines.push(l), now: () => new Date(Date.now() + 2000) });
        assert.strictEqual(result.swapped, true);
        assert.deepStrictEqual(markers().filter((m) => !m.endsWith(`-${role}`)), [], "no COPY TO PROGRAM ran as a privileged user");
        assert.strictEqual(attributes(), unprivileged, lines.join("\n"));
        assert.strictEqual(cluster.query("evil_db", `SELECT count(*) FROM public.trap`), "50");
        assert.strictEqual(cluster.query("evil_db", "SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables WHERE schemaname = 'public'"), role);
        // What the tenant's code made after RESET ROLE belongs to the app's role, not to a privileged one.
        assert.match(cluster.query("evil_db", "SELECT coalesce(string_agg(pg_get_userbyid(relowner), ','), 'none') FROM pg_class WHERE relname = 'stash'"), /^(app_evil|none)$/);
        // No helper role is left behind.
        assert.strictEqual(cluster.query("postgres", "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'platform\\_restore%'"), "0");
    });

    it("the drill: the tenant's code gains nothing on the throwaway server either", async function () {
        if ((await new DirectoryBackupStore(backupDir(), TEST_TRUST).list("evil")).length === 0) assert.strictEqual((await runBackup()).status, 0);
        const drill = await startCluster(requirePostgres(this));
        try {
            const problems = await runDrill({
                store: new DirectoryBackupStore(backupDir(), TEST_TRUST),
                apps: ["evil"],
                identityFile: identity,
                runner: directRunner({ host: drill.host, port: drill.port, user: drill.user, password: drill.password, binDir: drill.binDir }),
                log: () => undefined,
            });
            assert.deepStrictEqual(problems, []);
            assert.deepStrictEqual(markers().filter((m) => !m.endsWith(`-${role}`)), [], "no COPY TO PROGRAM ran as a privileged user");
            assert.strictEqual(drill.query("postgres", `SELECT concat_ws(',', rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication) FROM pg_roles WHERE rolname = '${role}'`), unprivileged);
        } finally {
            drill.stop();
        }
    });

    it("the migration's freeze and unfreeze: the tenant's code gains nothing", async () => {
        await freeze(runner(), ["evil"], () => undefined);
        await unfreeze(runner(), ["evil"], () => undefined);
        assert.deepStrictEqual(markers(), []);
        assert.strictEqual(attributes(), unprivileged);
    });
});

describe("the migration freeze holds against the app's own role (real PostgreSQL)", function () {
    this.timeout(120000);
    let cluster: Cluster;
    const password = "frozen-app-password-1";
    const asApp = (database: string, text: string) =>
        spawnSync(path.join(cluster.binDir, "psql"), ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", database], { input: text, env: { ...cluster.env, PGUSER: "app_shop", PGPASSWORD: password }, encoding: "utf8" });
    const runner = () => directRunner({ host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, binDir: cluster.binDir });
    const rows = () => cluster.query("shop_db", "SELECT count(*) FROM orders");

    before(async function () {
        cluster = await startCluster(requirePostgres(this));
        cluster.query("postgres", `CREATE ROLE app_shop LOGIN PASSWORD '${password}'; CREATE DATABASE shop_db OWNER app_shop; REVOKE ALL ON DATABASE shop_db FROM PUBLIC;`);
        assert.strictEqual(asApp("shop_db", "CREATE TABLE orders (id serial PRIMARY KEY); INSERT INTO orders DEFAULT VALUES;").status, 0);
    });
    after(() => cluster?.stop());

    it("after freeze: BEGIN READ WRITE, lifting the database setting, and a session opened before all fail; isFrozen says so", async () => {
        // A session the app opened before the freeze, idle in the pool.
        const pooled = spawn(path.join(cluster.binDir, "psql"), ["-X", "-q", "-d", "shop_db"], { env: { ...cluster.env, PGUSER: "app_shop", PGPASSWORD: password } });
        const pooledExit = new Promise<number | null>((r) => pooled.on("exit", r));
        for (let i = 0; i < 50 && cluster.query("postgres", "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app_shop'") === "0"; i++) await new Promise((r) => setTimeout(r, 100));
        await freeze(runner(), ["shop"], () => undefined);
        assert.strictEqual(await isFrozen(runner(), "shop"), true);
        // The writes a frozen app would try: each would be lost in the move.
        const readWrite = asApp("shop_db", "BEGIN READ WRITE; INSERT INTO orders DEFAULT VALUES; COMMIT;");
        assert.notStrictEqual(readWrite.status, 0, "BEGIN READ WRITE wrote");
        const lifted = asApp("postgres", "ALTER DATABASE shop_db RESET default_transaction_read_only;");
        assert.notStrictEqual(lifted.status, 0, "the app lifted the freeze from another database");
        const setting = asApp("shop_db", "SET default_transaction_read_only = off; INSERT INTO orders DEFAULT VALUES;");
        assert.notStrictEqual(setting.status, 0);
        pooled.stdin.end("INSERT INTO orders DEFAULT VALUES;\n");
        await pooledExit;
        assert.strictEqual(rows(), "1", "no write landed");
        // Something (a `pulumi up`) gives the role its login back: isFrozen notices.
        cluster.query("postgres", "ALTER ROLE app_shop LOGIN");
        assert.strictEqual(await isFrozen(runner(), "shop"), false);
        await freeze(runner(), ["shop"], () => undefined);
        await unfreeze(runner(), ["shop"], () => undefined);
        assert.strictEqual(asApp("shop_db", "INSERT INTO orders DEFAULT VALUES;").status, 0, "unfreeze gives the writes back");
        assert.strictEqual(rows(), "2");
    });
});

describe("the drill's throwaway PostgreSQL gets none of the drill's secrets (real PostgreSQL)", function () {
    this.timeout(60000);
    it("the server's environment holds no age key, S3 key or token of the process that started it", async function () {
        const binDir = requirePostgres(this);
        const secrets = { BACKUP_IDENTITY: "AGE-SECRET-KEY-1DRILLTESTSECRET", SCW_SECRET_KEY: "scw-secret-drill-test", SCW_ACCESS_KEY: "SCWDRILLTEST", GITHUB_TOKEN: "ghs_drilltest" };
        const saved = Object.fromEntries(Object.keys(secrets).map((k) => [k, process.env[k]]));
        Object.assign(process.env, secrets);
        let cluster: Cluster | undefined;
        try {
            cluster = await startCluster(binDir);
            // What code running in the server (a tenant's function, as the superuser here) can read: the
            // server's real environment, as a program it starts inherits it (PostgreSQL overwrites
            // /proc/<pid>/environ with its process title, so that file would prove nothing).
            const out = path.join(cluster.dir, "server-env.txt");
            cluster.query("postgres", `COPY (SELECT 1) TO PROGRAM 'env > ${out}'`);
            const environ = fs.readFileSync(out, "utf8");
            for (const [k, v] of Object.entries(secrets)) {
                assert.ok(!environ.includes(v) && !environ.includes(`${k}=`), `${k} reached the server`);
            }
            assert.match(environ, /PATH=/, "the environment was read");
            // Started by root, it runs as another OS user (postgres), not as the drill's.
            const uid = /^Uid:\s+(\d+)/m.exec(cluster.query("postgres", "SELECT pg_read_file('/proc/' || pg_backend_pid() || '/status')"))![1];
            if (process.getuid?.() === 0) assert.notStrictEqual(uid, "0");
        } finally {
            cluster?.stop();
            for (const [k, v] of Object.entries(saved)) {
                if (v === undefined) delete process.env[k];
                else process.env[k] = v;
            }
        }
    });
});
