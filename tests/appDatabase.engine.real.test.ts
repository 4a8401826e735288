// components/appDatabase.ts under the real Pulumi engine: the CLI, its nodejs language host and the
// dynamic-provider host (pulumi-resource-pulumi-nodejs) drive the one app-database resource against a
// real PostgreSQL on loopback, in a small program of its own with a local file backend. What mocks
// cannot show: the provider serializes and runs in the engine's process, `up` creates, a second
// preview is clean, a refresh reads drift and a dropped role, removing the app revokes its login and
// keeps the data, and re-adding adopts the role with the new password.
// Without the CLI or its hosts the suite skips with a notice naming what is missing (PLATFORM_E2E=require fails instead).
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Cluster, requirePostgres, startCluster } from "./support/postgres";

const REPO = path.resolve(__dirname, "..");

function missingEngine(): string[] {
    const missing: string[] = [];
    const has = (bin: string) => spawnSync("sh", ["-c", `command -v ${bin}`]).status === 0;
    if (!has("pulumi")) return ["the Pulumi CLI (pulumi on PATH)"];
    if (!has("pulumi-language-nodejs")) missing.push("the nodejs language host (pulumi-language-nodejs on PATH)");
    if (!has("pulumi-resource-pulumi-nodejs")) missing.push("the dynamic-provider host (pulumi-resource-pulumi-nodejs on PATH, shipped with the CLI)");
    const plugins = spawnSync("pulumi", ["plugin", "ls", "--json"], { encoding: "utf8", env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: "true" } });
    if (!/"name":\s*"random"/.test(plugins.stdout ?? "")) missing.push("the random provider plugin (pulumi plugin install resource random)");
    return missing;
}

/** The program: the real AppDatabase, on a server whose admin is the test cluster's superuser. */
const PROGRAM = `require("ts-node").register({ transpileOnly: true, project: ${JSON.stringify(path.join(REPO, "tsconfig.json"))} });
const pulumi = require("@pulumi/pulumi");
const { AppDatabase } = require(${JSON.stringify(path.join(REPO, "components", "appDatabase.ts"))});
const config = new pulumi.Config("test");
const admin = JSON.parse(config.require("admin"));
const server = {
    adminConnection: pulumi.secret(pulumi.output(admin)),
    admin: { user: admin.user, superuser: true },
    serverId: pulumi.output("container"),
    appEndpoint: pulumi.output({ host: admin.host, port: admin.port, sslmode: "disable" }),
    ready: [],
};
const apps = JSON.parse(config.get("apps") || "[]");
const urls = {};
for (const app of apps) {
    const db = new AppDatabase(app + "-db", { app, server, passwordVersion: config.getNumber("passwordVersion") || 0, connectionLimit: config.getNumber("limit") || 5 });
    urls[app] = db.databaseUrl;
}
exports.databaseUrls = pulumi.secret(urls);
`;

describe("AppDatabase under the real Pulumi engine (real PostgreSQL, local file backend)", function () {
    this.timeout(300_000);
    let cluster: Cluster;
    let dir: string;
    let env: NodeJS.ProcessEnv;

    const pulumi = (...args: string[]) => {
        const r = spawnSync("pulumi", [...args, "--stack", "test", "--non-interactive"], { cwd: dir, env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
        return { status: r.status ?? -1, out: `${r.stdout}\n${r.stderr}` };
    };
    const ok = (...args: string[]) => {
        const r = pulumi(...args);
        assert.strictEqual(r.status, 0, `pulumi ${args.join(" ")}:\n${r.out}`);
        return r.out;
    };
    const config = (key: string, value: string) => ok("config", "set", `test:${key}`, value);
    const url = (app: string) => JSON.parse(ok("stack", "output", "databaseUrls", "--show-secrets", "--json"))[app] as string;
    const passwordOf = (databaseUrl: string) => decodeURIComponent(/^postgres:\/\/[^:]+:([^@]+)@/.exec(databaseUrl)![1]);
    const asApp = (app: string, password: string, sql: string) =>
        spawnSync(path.join(cluster.binDir, "psql"), ["-XAtq", "-h", "127.0.0.1", "-p", String(cluster.port), "-U", `app_${app}`, "-d", `${app}_db`, "-c", sql], {
            encoding: "utf8",
            env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: "5" },
        });

    before(async function () {
        const missing = missingEngine();
        if (missing.length > 0) {
            const notice = `the real engine is not here: ${missing.join("; ")}`;
            if (process.env.PLATFORM_E2E === "require") throw new Error(notice);
            console.warn(`\n  !!! SKIPPING: ${notice}. PLATFORM_E2E=require makes this a failure. !!!\n`);
            this.skip();
        }
        requirePostgres(this);
        cluster = await startCluster();
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-appdb-engine-"));
        fs.symlinkSync(path.join(REPO, "node_modules"), path.join(dir, "node_modules"));
        fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: appdb-engine\nruntime:\n  name: nodejs\n  options:\n    typescript: false\nmain: index.js\n");
        fs.writeFileSync(path.join(dir, "index.js"), PROGRAM);
        fs.mkdirSync(path.join(dir, "state"));
        env = {
            ...process.env,
            PULUMI_BACKEND_URL: `file://${path.join(dir, "state")}`,
            PULUMI_CONFIG_PASSPHRASE: "appdb-engine-test",
            PULUMI_SKIP_UPDATE_CHECK: "true",
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
            PULUMI_HOME: process.env.PULUMI_HOME ?? path.join(os.homedir(), ".pulumi"),
        };
        ok("stack", "init");
        ok("config", "set", "--secret", "test:admin", JSON.stringify({ host: "127.0.0.1", port: cluster.port, user: "postgres", password: cluster.password, database: "postgres", ssl: false }));
        config("apps", '["shop"]');
    });

    after(() => {
        if (dir !== undefined) {
            pulumi("destroy", "--yes", "--skip-preview");
            fs.rmSync(dir, { recursive: true, force: true });
        }
        cluster?.stop();
    });

    it("up creates role and database; the app logs in with the URL's password; a second preview is clean", () => {
        ok("up", "--yes", "--skip-preview");
        const password = passwordOf(url("shop"));
        assert.strictEqual(asApp("shop", password, "CREATE TABLE orders (id int); INSERT INTO orders VALUES (7); SELECT count(*) FROM orders").stdout.trim(), "1");
        assert.strictEqual(cluster.query("postgres", "SELECT rolconnlimit || ' ' || pg_get_userbyid(datdba) FROM pg_roles, pg_database WHERE rolname = 'app_shop' AND datname = 'shop_db'"), "5 app_shop");
        const log = fs.readFileSync(path.join(cluster.dir, "server.log"), "utf8");
        assert.ok(!log.includes(password), "the password itself never reached the server");
        ok("preview", "--expect-no-changes");
    });

    it("a preview shows a new connection limit as an update of the one resource; up applies it", () => {
        config("limit", "9");
        const preview = ok("preview", "--diff");
        assert.match(preview, /~ pulumi-nodejs:dynamic\/database:RoleAndDatabase: \(update\)\n\s+\[id=app_shop\]\n\s+\[urn=[^\]]+::shop-db-role-database\]/);
        assert.match(preview, /~ connectionLimit\s*:\s*5 => 9\n/);
        assert.match(preview, /~ 1 to update/);
        ok("up", "--yes", "--skip-preview");
        assert.strictEqual(cluster.query("postgres", "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'app_shop'"), "9");
    });

    it("a refresh finds nothing on an untouched stack, reads drift made by hand, and the next up undoes it", () => {
        ok("refresh", "--yes", "--skip-preview");
        ok("preview", "--expect-no-changes");
        cluster.query("postgres", "ALTER ROLE app_shop NOLOGIN; GRANT CONNECT ON DATABASE shop_db TO PUBLIC;");
        ok("refresh", "--yes", "--skip-preview");
        const preview = pulumi("preview", "--expect-no-changes");
        assert.notStrictEqual(preview.status, 0, "the drift is a change to undo");
        ok("up", "--yes", "--skip-preview");
        assert.strictEqual(cluster.query("postgres", "SELECT rolcanlogin || ' ' || has_database_privilege('public', 'shop_db', 'CONNECT') FROM pg_roles WHERE rolname = 'app_shop'"), "true false");
    });

    it("a role dropped by hand leaves the state on refresh; the next up makes it again", () => {
        cluster.query("postgres", "CREATE ROLE keeper; REASSIGN OWNED BY app_shop TO keeper;");
        cluster.query("shop_db", "REASSIGN OWNED BY app_shop TO keeper;");
        cluster.query("postgres", "DROP OWNED BY app_shop; DROP ROLE app_shop;");
        ok("refresh", "--yes", "--skip-preview");
        assert.doesNotMatch(ok("stack", "export"), /RoleAndDatabase::shop-db-role-database/, "the dropped role left the state");
        ok("up", "--yes", "--skip-preview");
        assert.strictEqual(cluster.query("postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'shop_db'"), "app_shop", "made again, owning its database");
        assert.strictEqual(asApp("shop", passwordOf(url("shop")), "SELECT 1").stdout.trim(), "1");
        cluster.query("shop_db", "REASSIGN OWNED BY keeper TO app_shop;");
    });

    it("removing the app revokes its login and keeps role, database and data; re-adding adopts them with a new password", () => {
        const oldPassword = passwordOf(url("shop"));
        config("apps", "[]");
        ok("up", "--yes", "--skip-preview");
        const refused = asApp("shop", oldPassword, "SELECT 1");
        assert.notStrictEqual(refused.status, 0, "a removed app's role must not log in");
        assert.match(refused.stderr, /not permitted to log in/);
        assert.strictEqual(cluster.query("shop_db", "SELECT count(*) FROM orders"), "1", "the data stays");

        config("apps", '["shop"]');
        config("passwordVersion", "1");
        ok("up", "--yes", "--skip-preview");
        const newPassword = passwordOf(url("shop"));
        assert.notStrictEqual(newPassword, oldPassword);
        assert.strictEqual(asApp("shop", newPassword, "SELECT id FROM orders").stdout.trim(), "7", "adopted: the data is the app's again");
        assert.notStrictEqual(asApp("shop", oldPassword, "SELECT 1").status, 0);
        ok("preview", "--expect-no-changes");
    });
});
