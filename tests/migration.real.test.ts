// Moving from the container database to the managed one, against real PostgreSQL: one throwaway
// cluster stands in for the container database, a second for Scaleway's managed instance (with a
// non-superuser admin that has CREATEROLE and CREATEDB, as Scaleway's first user, and the app roles
// and empty databases it created the way @pulumi/postgresql does). The real hostScripts/backup.sh takes
// the backup (through the stand-in docker), the real age encrypts it; then freeze, restore, switch.
import * as assert from "assert";
import { TEST_TRUST, writeSigningKey } from "./support/signing";
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { DirectoryBackupStore, directRunner } from "../io/restore";
import { freeze, restoreIntoManaged, unfreeze } from "../commands/migrate-to-managed";
import { requireBinary } from "./support/edge";
import { Cluster, fakeDocker, requirePostgres, startCluster } from "./support/postgres";

const SCRIPT = path.join(__dirname, "..", "hostScripts", "backup.sh");
const ADMIN = "platform_admin";
const ADMIN_PASSWORD = "Admin-Pass_word.123";

function psqlAs(cluster: Cluster, user: string, password: string, database: string, sqlText: string): { status: number; stdout: string; stderr: string } {
    const r = spawnSync(path.join(cluster.binDir, "psql"), ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", cluster.host, "-p", String(cluster.port), "-U", user, "-d", database], {
        input: sqlText,
        encoding: "utf8",
        env: { ...process.env, PGPASSWORD: password },
    });
    return { status: r.status ?? -1, stdout: r.stdout.trim(), stderr: r.stderr };
}

describe("migration container → managed against real PostgreSQL (two clusters)", function () {
    this.timeout(180000);
    let source: Cluster;
    let target: Cluster;
    let dir: string;
    let identity: string;
    let recipient: string;
    const lines: string[] = [];
    const log = (l: string) => lines.push(l);

    before(async function () {
        const binDir = requirePostgres(this);
        for (const bin of ["age", "age-keygen", "tar", "sha256sum"]) requireBinary(this, bin);
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-migration-"));
        identity = path.join(dir, "backup.key");
        execFileSync("age-keygen", ["-o", identity], { stdio: "pipe" });
        recipient = execFileSync("age-keygen", ["-y", identity], { encoding: "utf8" }).trim();

        // The container database, as the platform declares it, with data written by the apps.
        source = await startCluster(binDir);
        source.query("postgres", "CREATE ROLE app_app1 LOGIN PASSWORD 'old-app1-password'; CREATE ROLE app_app2 LOGIN PASSWORD 'old-app2-password';");
        source.query("postgres", "CREATE DATABASE app1_db OWNER app_app1; CREATE DATABASE app2_db OWNER app_app2; REVOKE ALL ON DATABASE app1_db FROM PUBLIC; REVOKE ALL ON DATABASE app2_db FROM PUBLIC;");
        source.query("app1_db", "SET ROLE app_app1; CREATE TABLE orders (id serial PRIMARY KEY, total numeric(10,2), note text); INSERT INTO orders (total, note) SELECT g * 1.5, E'it''s \\\\ ünï ' || g FROM generate_series(1, 2500) g; CREATE SCHEMA audit; CREATE TABLE audit.\"Log\" (id int); INSERT INTO audit.\"Log\" SELECT generate_series(1, 40);");
        source.query("app2_db", "SET ROLE app_app2; CREATE TABLE items (id int PRIMARY KEY, payload jsonb); INSERT INTO items SELECT g, jsonb_build_object('n', g) FROM generate_series(1, 333) g;");

        // The managed instance after step 2 (`pulumi up --target`): a non-superuser admin that
        // created the app roles (new passwords) and their empty databases, CONNECT revoked from PUBLIC.
        target = await startCluster(binDir);
        target.query("postgres", `CREATE ROLE ${ADMIN} LOGIN CREATEROLE CREATEDB PASSWORD '${ADMIN_PASSWORD}';`);
        const asAdmin = (db: string, s: string) => {
            const r = psqlAs(target, ADMIN, ADMIN_PASSWORD, db, s);
            assert.strictEqual(r.status, 0, r.stderr);
            return r.stdout;
        };
        for (const app of ["app1", "app2"]) {
            asAdmin("postgres", `CREATE ROLE app_${app} LOGIN PASSWORD 'new-${app}-password' CONNECTION LIMIT 20;`);
            // What the provider does as a non-superuser: grant itself the owner role while it sets the owner.
            asAdmin("postgres", `GRANT app_${app} TO ${ADMIN};`);
            asAdmin("postgres", `CREATE DATABASE ${app}_db OWNER app_${app} TEMPLATE template0 ENCODING 'UTF8';`);
            asAdmin("postgres", `REVOKE app_${app} FROM ${ADMIN};`);
            asAdmin("postgres", `REVOKE ALL ON DATABASE ${app}_db FROM PUBLIC;`);
        }
    });

    after(() => {
        source?.stop();
        target?.stop();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("step 1: freeze stops the apps' roles from logging in (writes cannot be lost); the data is intact", async () => {
        const runner = directRunner({ host: source.host, port: source.port, user: source.user, password: source.password, binDir: source.binDir });
        await freeze(runner, ["app1", "app2"], log);
        const write = psqlAs(source, "app_app1", "old-app1-password", "app1_db", "BEGIN READ WRITE; INSERT INTO orders (total) VALUES (1); COMMIT;");
        assert.notStrictEqual(write.status, 0);
        assert.match(write.stderr, /not permitted to log in/);
        assert.strictEqual(source.query("app1_db", "SELECT count(*) FROM orders;"), "2500");
    });

    it("step 1: the nightly backup job, run by hand, takes the frozen state of every app", () => {
        const r = spawnSync("sh", [SCRIPT], {
            env: {
                PATH: `${fakeDocker(source)}:${process.env.PATH}`,
                HOME: process.env.HOME,
                BACKUP_TARGETS: "app1=app1_db app2=app2_db",
                AGE_RECIPIENT: recipient,
                SIGNING_KEY_FILE: writeSigningKey(dir),
                BACKUP_DIR: path.join(dir, "backups"),
                WORK_DIR: dir,
            },
            encoding: "utf8",
        });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(r.stderr, /done: 2 app\(s\) backed up/);
    });

    it("step 3: restores every app into the managed stand-in as its non-superuser admin, verified, swapped in", async () => {
        const results = await restoreIntoManaged({
            store: new DirectoryBackupStore(path.join(dir, "backups"), TEST_TRUST),
            target: directRunner({ host: target.host, port: target.port, user: ADMIN, password: ADMIN_PASSWORD, binDir: target.binDir }),
            apps: ["app1", "app2"],
            identityFile: identity,
            log,
        });
        assert.deepStrictEqual(results.map((r) => [r.manifest.app, r.swapped]), [["app1", true], ["app2", true]]);
        assert.strictEqual(target.query("app1_db", "SELECT count(*) FROM orders"), "2500");
        assert.strictEqual(target.query("app1_db", `SELECT count(*) FROM audit."Log"`), "40");
        assert.strictEqual(target.query("app2_db", "SELECT count(*) FROM items"), "333");
        assert.strictEqual(target.query("app1_db", "SELECT note FROM orders WHERE id = 7"), "it's \\ ünï 7");
        // The empty database `pulumi up` created is kept, never dropped.
        assert.match(target.query("postgres", "SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'app1_db%'"), /app1_db_before_\d{8}t\d{6}z/);
    });

    it("isolation holds on the managed side: the role owns its database and its tables, PUBLIC has no CONNECT, the admin keeps no membership", () => {
        for (const app of ["app1", "app2"]) {
            assert.strictEqual(target.query("postgres", `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '${app}_db'`), `app_${app}`);
            assert.strictEqual(target.query("postgres", `SELECT has_database_privilege('public', '${app}_db', 'CONNECT')`), "f");
            assert.strictEqual(target.query("postgres", `SELECT pg_has_role('${ADMIN}', 'app_${app}', 'MEMBER')`), "f");
        }
        assert.strictEqual(target.query("app1_db", "SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables WHERE schemaname IN ('public', 'audit')"), "app_app1");
        const other = psqlAs(target, "app_app2", "new-app2-password", "app1_db", "SELECT 1;");
        assert.notStrictEqual(other.status, 0, "another app's role cannot connect");
        assert.match(other.stderr, /permission denied for database/);
    });

    it("step 4: with the new DATABASE_URL (the managed role's new password) the app reads and writes; the old database stays frozen and intact", () => {
        const write = psqlAs(target, "app_app1", "new-app1-password", "app1_db", "INSERT INTO orders (total, note) VALUES (9.99, 'after the switch') RETURNING id;");
        assert.strictEqual(write.status, 0, write.stderr);
        assert.strictEqual(target.query("app1_db", "SELECT count(*) FROM orders"), "2501");
        assert.strictEqual(source.query("app1_db", "SELECT count(*) FROM orders"), "2500", "the old data is kept as it was");
        assert.notStrictEqual(psqlAs(source, "app_app1", "old-app1-password", "app1_db", "INSERT INTO orders (total) VALUES (1);").status, 0);
        assert.ok(lines.some((l) => /\[5\/6\] verify: row counts/.test(l)), lines.join("\n"));
    });

    it("rollback before the switch: unfreeze gives the old databases their writes back", async () => {
        const runner = directRunner({ host: source.host, port: source.port, user: source.user, password: source.password, binDir: source.binDir });
        await unfreeze(runner, ["app1"], log);
        assert.strictEqual(psqlAs(source, "app_app1", "old-app1-password", "app1_db", "INSERT INTO orders (total) VALUES (1);").status, 0);
        await freeze(runner, ["app1"], log);
    });

    it("refuses names that are not catalog app names before touching anything", async () => {
        const runner = directRunner({ host: source.host, port: source.port, user: source.user, password: source.password, binDir: source.binDir });
        await assert.rejects(freeze(runner, ['app1"; DROP DATABASE app1_db; --'], log), /not a catalog name/);
        await assert.rejects(freeze(runner, [], log), /at least one app/);
    });
});
