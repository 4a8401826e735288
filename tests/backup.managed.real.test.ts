// Backups and restores of the managed database, against real PostgreSQL: the admin is NOT a superuser
// (CREATEROLE, CREATEDB, as Scaleway's first user) and is a member of every app role (what
// ManagedAppDatabase's backupMembership declares). The real hostScripts/backup.sh runs through a stand-in
// `docker exec platform-pg-client …` whose environment holds the admin's password (as the client
// container's does), with the settings the program renders for the managed stack; the restore runs
// through dockerExecRunner(MANAGED_DATABASE_TARGET) the same way. Then the globals fallbacks, and what
// fails without the membership.
import * as assert from "assert";
import { TEST_TRUST, writeSigningKey } from "./support/signing";
import { execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { MANAGED_DATABASE_TARGET, MANIFEST_FILE, parseManifest, renderBackupSettings } from "../render/backup";
import { DirectoryBackupStore, dockerExecRunner, restoreBackup } from "../io/restore";
import { restoreIntoManaged } from "../commands/migrate-to-managed";
import { requireBinary } from "./support/edge";
import { Cluster, fakeDocker, requirePostgres, startCluster } from "./support/postgres";

const SCRIPT = path.join(__dirname, "..", "hostScripts", "backup.sh");
const ADMIN = "platform_admin";
const ADMIN_PASSWORD = "Admin-Pass_word.456";

describe("backups of the managed database: a non-superuser admin that holds the app roles (real PostgreSQL)", function () {
    this.timeout(180000);
    let cluster: Cluster;
    let dir: string;
    let identity: string;
    let recipient: string;
    let dockerDir: string;
    let settingsFile: string;
    const lines: string[] = [];
    const log = (l: string) => lines.push(l);

    const asAdmin = (db: string, sqlText: string) => {
        const r = spawnSync(path.join(cluster.binDir, "psql"), ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", cluster.host, "-p", String(cluster.port), "-U", ADMIN, "-d", db], {
            input: sqlText,
            encoding: "utf8",
            env: { ...process.env, PGPASSWORD: ADMIN_PASSWORD },
        });
        assert.strictEqual(r.status, 0, r.stderr);
        return r.stdout.trim();
    };

    /** Runs the script as cron does on host 0: `sh backup.sh backup.env`, the settings file rendered by the program. */
    const runScript = (extra: Record<string, string> = {}): Promise<{ status: number | null; stderr: string }> =>
        new Promise((resolve) => {
            const child = spawn("sh", [SCRIPT, settingsFile], { env: { PATH: `${dockerDir}:${process.env.PATH}`, HOME: process.env.HOME, ...extra } });
            let stderr = "";
            child.stderr.on("data", (d) => (stderr += d));
            child.on("close", (status) => resolve({ status, stderr }));
        });

    const backupDir = () => path.join(dir, "backups");
    const runner = () => dockerExecRunner(MANAGED_DATABASE_TARGET, path.join(dockerDir, "docker"));
    const newest = async (app: string) => (await new DirectoryBackupStore(backupDir(), TEST_TRUST).list(app))[0];
    const manifestOf = async (app: string) => {
        const ref = await newest(app);
        const tar = path.join(dir, `${app}.tar`);
        execFileSync("age", ["-d", "-i", identity, "-o", tar, path.join(backupDir(), ref.key)]);
        const manifest = parseManifest(execFileSync("tar", ["-xOf", tar, MANIFEST_FILE], { encoding: "utf8" }));
        const globals = execFileSync("tar", ["-xOf", tar, "globals.sql"], { encoding: "utf8" });
        return { manifest, globals };
    };

    before(async function () {
        const binDir = requirePostgres(this);
        for (const bin of ["age", "age-keygen", "tar", "sha256sum"]) requireBinary(this, bin);
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-managed-backup-"));
        identity = path.join(dir, "backup.key");
        execFileSync("age-keygen", ["-o", identity], { stdio: "pipe" });
        recipient = execFileSync("age-keygen", ["-y", identity], { encoding: "utf8" }).trim();

        cluster = await startCluster(binDir);
        cluster.query("postgres", `CREATE ROLE ${ADMIN} LOGIN CREATEROLE CREATEDB PASSWORD '${ADMIN_PASSWORD}';`);
        // What `pulumi up` declares through the admin channel: roles, the admin's membership
        // (backupMembership), databases owned by the roles, CONNECT revoked from PUBLIC.
        for (const app of ["app1", "app2"]) {
            asAdmin("postgres", `CREATE ROLE app_${app} LOGIN PASSWORD '${app}-password-123' CONNECTION LIMIT 20;`);
            asAdmin("postgres", `GRANT app_${app} TO ${ADMIN};`);
            asAdmin("postgres", `CREATE DATABASE ${app}_db OWNER app_${app} TEMPLATE template0 ENCODING 'UTF8';`);
            asAdmin("postgres", `REVOKE ALL ON DATABASE ${app}_db FROM PUBLIC;`);
        }
        // The apps' own data, created by their roles (their migrations).
        cluster.query("app1_db", "SET ROLE app_app1; CREATE TABLE orders (id serial PRIMARY KEY, note text); INSERT INTO orders (note) SELECT 'order ' || g FROM generate_series(1, 1200) g; CREATE SCHEMA audit; CREATE TABLE audit.\"Log\" (id int); INSERT INTO audit.\"Log\" SELECT generate_series(1, 30); CREATE SEQUENCE invoice_no; SELECT setval('invoice_no', 77);");
        cluster.query("app2_db", "SET ROLE app_app2; CREATE TABLE items (id int PRIMARY KEY, payload jsonb); INSERT INTO items SELECT g, jsonb_build_object('n', g) FROM generate_series(1, 444) g;");

        dockerDir = fakeDocker(cluster, MANAGED_DATABASE_TARGET.container, { user: ADMIN, password: ADMIN_PASSWORD });
        settingsFile = path.join(dir, "backup.env");
        fs.writeFileSync(
            settingsFile,
            renderBackupSettings({
                apps: ["app1", "app2"],
                recipient: { key: recipient },
                destination: { kind: "directory", directory: backupDir() },
                workDir: dir,
                database: MANAGED_DATABASE_TARGET,
                signingKeyFile: writeSigningKey(dir),
            }),
            { mode: 0o600 },
        );
    });

    after(() => {
        cluster?.stop();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("the admin is no superuser and holds the app roles (the premise of everything below)", () => {
        assert.strictEqual(cluster.query("postgres", `SELECT rolsuper FROM pg_roles WHERE rolname = '${ADMIN}'`), "f");
        for (const app of ["app1", "app2"]) assert.strictEqual(cluster.query("postgres", `SELECT pg_has_role('${ADMIN}', 'app_${app}', 'MEMBER')`), "t");
    });

    it("the nightly job dumps every app through the client container as the admin: exact counts, full globals", async () => {
        const log = path.join(dir, "docker.log");
        const r = await runScript({ FAKE_DOCKER_LOG: log });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(r.stderr, /done: 2 app\(s\) backed up/);
        const calls = fs.readFileSync(log, "utf8").trim().split("\n");
        for (const c of calls) assert.match(c, /^exec (-i )?platform-pg-client /, c);
        assert.ok(calls.filter((c) => / (psql|pg_dump --format|pg_dumpall) /.test(c)).every((c) => c.includes(`-U ${ADMIN}`)), calls.join("\n"));
        assert.ok(!calls.some((c) => /-U postgres/.test(c)));
        const { manifest, globals } = await manifestOf("app1");
        assert.deepStrictEqual(manifest.tables.map((t) => `${t.schema}.${t.table}=${t.rows}`), ["audit.Log=30", "public.orders=1200"]);
        assert.strictEqual(manifest.globalsMode, "globals");
        assert.match(globals, /CREATE ROLE app_app1;/);
        assert.ok(!/SCRAM-SHA-256\$/.test(globals), "no password hashes");
        assert.strictEqual((await manifestOf("app2")).manifest.tables[0].rows, 444);
    });

    it("restore through the client container as the admin: verified, swapped in, owned by the app's role; the admin stays a member", async () => {
        cluster.query("app1_db", "SET ROLE app_app1; INSERT INTO orders (note) VALUES ('after the backup');");
        lines.length = 0;
        const result = await restoreBackup({ store: new DirectoryBackupStore(backupDir(), TEST_TRUST), runner: runner(), app: "app1", identityFile: identity, log, now: () => new Date(Date.now() + 1000) });
        assert.strictEqual(result.swapped, true, lines.join("\n"));
        assert.match(lines.join("\n"), /server via docker exec platform-pg-client as platform_admin/);
        assert.strictEqual(cluster.query("app1_db", "SELECT count(*) FROM orders"), "1200");
        assert.strictEqual(cluster.query("app1_db", "SELECT last_value FROM invoice_no"), "77");
        assert.strictEqual(cluster.query(result.kept!, "SELECT count(*) FROM orders"), "1201", "the previous database is kept with its later write");
        assert.strictEqual(cluster.query("postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app1_db'"), "app_app1");
        assert.strictEqual(cluster.query("app1_db", "SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables WHERE schemaname IN ('public', 'audit')"), "app_app1");
        assert.strictEqual(cluster.query("postgres", "SELECT has_database_privilege('public', 'app1_db', 'CONNECT')"), "f");
        assert.strictEqual(cluster.query("postgres", `SELECT pg_has_role('${ADMIN}', 'app_app1', 'MEMBER')`), "t");
    });

    it("the migration's restore leaves an existing membership in place (the backups need it)", async () => {
        const results = await restoreIntoManaged({ store: new DirectoryBackupStore(backupDir(), TEST_TRUST), target: runner(), apps: ["app2"], identityFile: identity, log });
        assert.strictEqual(results[0].swapped, true);
        assert.strictEqual(cluster.query("postgres", `SELECT pg_has_role('${ADMIN}', 'app_app2', 'MEMBER')`), "t");
        assert.match(lines.join("\n"), /the admin stays a member of app_app2/);
    });

    it("where the server refuses --globals-only to the admin, the roles alone are kept and the manifest says roles-only", async () => {
        const r = await runScript({ FAKE_DOCKER_FAIL_MATCH: "--globals-only", BACKUP_TARGETS: "app2=app2_db" });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(r.stderr, /app2: pg_dumpall --globals-only was refused to platform_admin; kept the roles only \(--roles-only\)/);
        const { manifest, globals } = await manifestOf("app2");
        assert.strictEqual(manifest.globalsMode, "roles-only");
        assert.match(globals, /CREATE ROLE app_app2;/);
    });

    it("where it refuses both, the backup still holds the dump, and globals.sql and the manifest say none; it restores", async () => {
        const r = await runScript({ FAKE_DOCKER_FAIL: "pg_dumpall", BACKUP_TARGETS: "app2=app2_db" });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(r.stderr, /app2: pg_dumpall refused to platform_admin \(globals and roles\): the backup holds no globals/);
        const { manifest, globals } = await manifestOf("app2");
        assert.strictEqual(manifest.globalsMode, "none");
        assert.match(globals, /^-- platform backup: the server refused pg_dumpall --globals-only and --roles-only to platform_admin;/);
        lines.length = 0;
        await restoreBackup({ store: new DirectoryBackupStore(backupDir(), TEST_TRUST), runner: runner(), app: "app2", identityFile: identity, dryRun: true, log });
        assert.match(lines.join("\n"), /\[5\/6\] verify: row counts of 1 table\(s\) match the manifest: public\.items=444/);
    });

    it("without the membership the admin cannot read an app's data: that app's backup fails alone, and a restore refuses with the fix", async () => {
        asAdmin("postgres", `REVOKE app_app2 FROM ${ADMIN};`);
        try {
            const before = (await new DirectoryBackupStore(backupDir(), TEST_TRUST).list("app2")).length;
            const r = await runScript();
            assert.notStrictEqual(r.status, 0);
            assert.match(r.stderr, /app2: psql could not open a snapshot of app2_db: .*permission denied for database "app2_db"/);
            assert.match(r.stderr, /FAILED: no backup for: app2 \(1 other app\(s\) backed up\)/);
            assert.strictEqual((await new DirectoryBackupStore(backupDir(), TEST_TRUST).list("app2")).length, before);
            const databases = cluster.query("postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database");
            await assert.rejects(
                restoreBackup({ store: new DirectoryBackupStore(backupDir(), TEST_TRUST), runner: runner(), app: "app2", identityFile: identity, log: () => undefined }),
                /neither a superuser nor a member of app_app2.*pulumi up/,
            );
            assert.strictEqual(cluster.query("postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database"), databases, "nothing created or renamed");
        } finally {
            asAdmin("postgres", `GRANT app_app2 TO ${ADMIN};`);
        }
    });
});
