// Backups against real components this suite starts itself: a throwaway PostgreSQL with two app
// databases holding data, the project's hostScripts/backup.sh (through a stand-in `docker` that runs the
// cluster's own pg_dump as `docker exec platform-postgres pg_dump` would), the real `age`, and a real
// S3-compatible server (s3rver) on loopback. Then the restore: list, download, decrypt, restore into
// a new database, verify against the manifest, swap; and every way a backup can be bad.
import * as assert from "assert";
import { TEST_SIGNING_KEY, TEST_TRUST, writeSigningKey } from "./support/signing";
import { execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { BackupRef, MANIFEST_FILE, PIN_SEARCH_PATH_SQL, ROW_COUNT_SQL, backupKey, firstBackupEnvironment, parseBackupKey, parseManifest, renderCurlCredentials } from "../render/backup";
import { SIGNATURE_SUFFIX, generateSigningKey, signBackup } from "../render/signing";
import * as crypto from "crypto";
import { BackupStore, DirectoryBackupStore, S3BackupStore, countRows, directRunner, restoreBackup } from "../io/restore";
import { runDrill } from "../commands/backup-drill";
import { requireBinary } from "./support/edge";
import { Cluster, fakeDocker, freeLoopbackPort, requirePostgres, startCluster } from "./support/postgres";
import { TestS3, startS3 } from "./support/s3";

const SCRIPT = path.join(__dirname, "..", "hostScripts", "backup.sh");
const sha256 = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");

const SEED_APP1 = `
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, note text);
INSERT INTO customers (name, note) SELECT 'customer ' || g, CASE WHEN g % 7 = 0 THEN E'multi\\nline ''quoted'' \\\\ tab\\t ünïcødé' END FROM generate_series(1, 1500) g;
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int REFERENCES customers(id), total numeric(10,2), at timestamptz DEFAULT now());
INSERT INTO orders (customer_id, total) SELECT 1 + g % 1500, g * 1.25 FROM generate_series(1, 4000) g;
CREATE TABLE empty_table (id int);
CREATE SCHEMA audit;
CREATE TABLE audit."Log Entries" (id int, what text);
INSERT INTO audit."Log Entries" SELECT g, 'event ' || g FROM generate_series(1, 25) g;
`;
const SEED_APP2 = `
CREATE TABLE items (id int PRIMARY KEY, payload jsonb);
INSERT INTO items SELECT g, jsonb_build_object('n', g) FROM generate_series(1, 777) g;
`;

function keyPair(dir: string, name: string): { identity: string; recipient: string } {
    const identity = path.join(dir, `${name}.key`);
    execFileSync("age-keygen", ["-o", identity], { stdio: "pipe" });
    const recipient = execFileSync("age-keygen", ["-y", identity], { encoding: "utf8" }).trim();
    return { identity, recipient };
}

/** `A=1 B=2` (the program's command-line prefix) as an environment. */
function envOf(prefix: string): Record<string, string> {
    return Object.fromEntries(prefix.split(" ").map((pair) => pair.split("=") as [string, string]));
}

/** A tiny HTTP server recording heartbeat pings. */
async function startHeartbeat(): Promise<{ url: string; pings: string[]; close(): void }> {
    const pings: string[] = [];
    const port = await freeLoopbackPort();
    const server = http.createServer((req, res) => {
        pings.push(req.url ?? "");
        res.end("OK");
    });
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()));
    return { url: `http://127.0.0.1:${port}/ping/abc`, pings, close: () => server.close() };
}

/** A direct connection to a cluster as its superuser. */
const runnerOf = (c: Cluster) => directRunner({ host: c.host, port: c.port, user: c.user, password: c.password, binDir: c.binDir });

/** A throwaway PostgreSQL for the enclosing describe (the drill's server), started before its tests and stopped after. */
function throwawayServer(): { runner: () => ReturnType<typeof directRunner>; cluster: () => Cluster } {
    let server: Cluster;
    before(async function () {
        server = await startCluster(requirePostgres(this));
    });
    after(() => server?.stop());
    return { runner: () => runnerOf(server), cluster: () => server };
}

describe("backups against real PostgreSQL, age and S3 (s3rver)", function () {
    this.timeout(120000);
    let cluster: Cluster;
    let s3: TestS3;
    let dir: string;
    let dockerDir: string;
    let credentials: string;
    let main: { identity: string; recipient: string };
    let other: { identity: string; recipient: string };
    let heartbeat: Awaited<ReturnType<typeof startHeartbeat>>;
    let signingKeyFile: string;
    const lines: string[] = [];
    const log = (line: string) => lines.push(line);

    before(async function () {
        const binDir = requirePostgres(this);
        for (const bin of ["age", "age-keygen", "tar", "curl", "openssl", "sha256sum"]) requireBinary(this, bin);
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-backup-test-"));
        cluster = await startCluster(binDir);
        cluster.query("postgres", "CREATE ROLE app_app1 LOGIN PASSWORD 'app1-password-123456'; CREATE ROLE app_app2 LOGIN PASSWORD 'app2-password-123456';");
        cluster.query("postgres", "CREATE DATABASE app1_db OWNER app_app1; CREATE DATABASE app2_db OWNER app_app2; REVOKE ALL ON DATABASE app1_db FROM PUBLIC; REVOKE ALL ON DATABASE app2_db FROM PUBLIC;");
        // Objects are created by the app's role, as the app's migrations would.
        cluster.query("app1_db", `SET ROLE app_app1; ${SEED_APP1}`);
        cluster.query("app2_db", `SET ROLE app_app2; ${SEED_APP2}`);
        s3 = await startS3();
        dockerDir = fakeDocker(cluster);
        credentials = path.join(dir, "s3-credentials");
        fs.writeFileSync(credentials, renderCurlCredentials(s3.accessKey, s3.secretKey, false), { mode: 0o600 });
        main = keyPair(dir, "main");
        other = keyPair(dir, "other");
        heartbeat = await startHeartbeat();
        signingKeyFile = writeSigningKey(dir);
    });

    after(async () => {
        cluster?.stop();
        await s3?.stop();
        heartbeat?.close();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    const scriptEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
        PATH: `${dockerDir}:${process.env.PATH}`,
        HOME: process.env.HOME,
        BACKUP_TARGETS: "app1=app1_db app2=app2_db",
        AGE_RECIPIENT: main.recipient,
        SIGNING_KEY_FILE: signingKeyFile,
        S3_ENDPOINT: s3.endpoint,
        S3_BUCKET: s3.bucket,
        S3_REGION: s3.region,
        S3_CREDENTIALS_FILE: credentials,
        HEARTBEAT_URL: heartbeat.url,
        WORK_DIR: dir,
        ...extra,
    });
    /** Runs hostScripts/backup.sh without blocking the event loop (s3rver answers from this process). */
    const runScript = (extra: Record<string, string> = {}): Promise<{ status: number | null; stderr: string; stdout: string }> =>
        new Promise((resolve) => {
            const child = spawn("sh", [SCRIPT], { env: scriptEnv(extra) });
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (d) => (stdout += d));
            child.stderr.on("data", (d) => (stderr += d));
            child.on("close", (status) => resolve({ status, stdout, stderr }));
        });
    const store = (): BackupStore => new S3BackupStore(s3.client(), TEST_TRUST);
    const runner = () => runnerOf(cluster);
    const count = (db: string, table: string) => Number(cluster.query(db, `SELECT count(*) FROM ${table}`));
    const objectKeys = async () => (await s3.client().list("")).map((o) => o.key).sort();

    it("the script's row-count query is the library's", () => {
        const script = fs.readFileSync(SCRIPT, "utf8");
        const inScript = /^ROW_COUNT_SQL="(.*)"$/m.exec(script)![1].replace(/\\\\/g, "\\");
        assert.strictEqual(inScript, ROW_COUNT_SQL);
        assert.strictEqual(/^PIN_SEARCH_PATH_SQL="(.*)"$/m.exec(script)![1], PIN_SEARCH_PATH_SQL);
    });

    let firstBackups: BackupRef[] = [];
    it("dumps both apps, encrypts to the age key, uploads one object and its signature per app, and pings the heartbeat", async () => {
        const r = await runScript();
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(r.stderr, /app1: stored app1\/app1-\d{8}T\d{6}Z\.tar\.age and its signature/);
        assert.match(r.stderr, new RegExp(`signed by ${TEST_SIGNING_KEY.publicKey.replace(/[+/]/g, "\\$&")}`));
        assert.match(r.stderr, /done: 2 app\(s\) backed up/);
        assert.deepStrictEqual(heartbeat.pings, ["/ping/abc"]);
        const keys = await objectKeys();
        assert.strictEqual(keys.length, 4, keys.join(", "));
        assert.match(keys[0], /^app1\/app1-\d{8}T\d{6}Z\.tar\.age$/);
        assert.strictEqual(keys[1], `${keys[0]}.sig`);
        assert.match(keys[2], /^app2\/app2-\d{8}T\d{6}Z\.tar\.age$/);
        assert.strictEqual(keys[3], `${keys[2]}.sig`);
        firstBackups = [...(await store().list("app1")), ...(await store().list("app2"))];
        assert.deepStrictEqual([...(await store().refused("app1")), ...(await store().refused("app2"))], [], "every backup is trusted");
        // No plaintext left behind in the work directory.
        assert.deepStrictEqual(fs.readdirSync(dir).filter((f) => f.startsWith("platform-backup.")), []);
    });

    it("the object is age ciphertext; decrypted, its manifest has the server version, exact counts, size and sha256", async () => {
        const encrypted = path.join(dir, "app1.tar.age");
        await s3.client().download(firstBackups[0].key, encrypted);
        assert.match(fs.readFileSync(encrypted).subarray(0, 40).toString("latin1"), /^age-encryption\.org\/v1/);
        assert.ok(!fs.readFileSync(encrypted).includes(Buffer.from("customer 1")), "no plaintext in the object");
        const tar = path.join(dir, "app1.tar");
        execFileSync("age", ["-d", "-i", main.identity, "-o", tar, encrypted]);
        const members = execFileSync("tar", ["-tf", tar], { encoding: "utf8" }).split("\n").filter(Boolean);
        assert.deepStrictEqual(members, ["manifest.json", "app1_db.pgdump", "globals.sql"]);
        const manifest = parseManifest(execFileSync("tar", ["-xOf", tar, MANIFEST_FILE], { encoding: "utf8" }));
        assert.strictEqual(manifest.database, "app1_db");
        assert.strictEqual(manifest.role, "app_app1");
        assert.strictEqual(String(manifest.server.versionNum).slice(0, -4), cluster.major);
        assert.match(manifest.pgDump, new RegExp(`pg_dump \\(PostgreSQL\\) ${cluster.major}\\.`));
        assert.deepStrictEqual(
            manifest.tables.map((t) => `${t.schema}.${t.table}=${t.rows}`),
            ["audit.Log Entries=25", "public.customers=1500", "public.empty_table=0", "public.orders=4000"],
        );
        const globals = execFileSync("tar", ["-xOf", tar, "globals.sql"], { encoding: "utf8" });
        assert.match(globals, /CREATE ROLE app_app1/);
        assert.ok(!/SCRAM-SHA-256\$/.test(globals), "no password hashes in the globals");
    });

    it("restores: lists, downloads, decrypts, restores into a new database, verifies, swaps; the old one is kept", async () => {
        // Changes made after the backup: the restore must bring back the backup's state.
        cluster.query("app1_db", "INSERT INTO orders (customer_id, total) VALUES (1, 1); DELETE FROM customers WHERE id > 1400 AND id NOT IN (SELECT customer_id FROM orders);");
        const before = count("app1_db", "orders");
        assert.strictEqual(before, 4001);
        // An app session that the swap must end.
        lines.length = 0;
        const result = await restoreBackup({ store: store(), runner: runner(), app: "app1", identityFile: main.identity, log, now: () => new Date(Date.now() + 1000) });
        const output = lines.join("\n");
        for (const step of ["[1/6] list", "[2/6] download", "[3/6] decrypt", "[4/6] restore", "[5/6] verify", "[6/6] swap"]) assert.ok(output.includes(step), `${step} printed:\n${output}`);
        assert.strictEqual(result.swapped, true);
        assert.strictEqual(count("app1_db", "orders"), 4000);
        assert.strictEqual(count("app1_db", "customers"), 1500);
        assert.strictEqual(count("app1_db", `audit."Log Entries"`), 25);
        assert.strictEqual(cluster.query("app1_db", "SELECT note FROM customers WHERE id = 7"), "multi\nline 'quoted' \\ tab\t ünïcødé");
        // The previous database is kept, with the changes made after the backup.
        assert.ok(result.kept);
        assert.strictEqual(count(result.kept!, "orders"), 4001);
        // Ownership, privileges: the role owns the database and its tables, PUBLIC has no CONNECT.
        assert.strictEqual(cluster.query("postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app1_db'"), "app_app1");
        assert.strictEqual(cluster.query("app1_db", "SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables WHERE schemaname IN ('public', 'audit')"), "app_app1");
        assert.strictEqual(cluster.query("postgres", "SELECT has_database_privilege('public', 'app1_db', 'CONNECT')"), "f");
        // The app's role can log in and use it; app2's role cannot connect.
        const env = { ...process.env, PGHOST: cluster.host, PGPORT: String(cluster.port) };
        const asApp1 = spawnSync(path.join(cluster.binDir, "psql"), ["-XAtq", "-U", "app_app1", "-d", "app1_db", "-c", "INSERT INTO orders (customer_id, total) VALUES (2, 2) RETURNING id > 0"], { env: { ...env, PGPASSWORD: "app1-password-123456" }, encoding: "utf8" });
        assert.strictEqual(asApp1.status, 0, asApp1.stderr);
        const asApp2 = spawnSync(path.join(cluster.binDir, "psql"), ["-XAtq", "-U", "app_app2", "-d", "app1_db", "-c", "SELECT 1"], { env: { ...env, PGPASSWORD: "app2-password-123456" }, encoding: "utf8" });
        assert.notStrictEqual(asApp2.status, 0);
        // No restore database left behind.
        assert.strictEqual(cluster.query("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_restore\\_%'"), "0");
    });

    it("the swap ends the app's open sessions", async () => {
        const session = spawn(path.join(cluster.binDir, "psql"), ["-XAtq", "-U", "app_app2", "-d", "app2_db", "-c", "SELECT pg_sleep(60)"], {
            env: { ...process.env, PGHOST: cluster.host, PGPORT: String(cluster.port), PGPASSWORD: "app2-password-123456" },
        });
        const exited = new Promise<number | null>((r) => session.on("exit", (code) => r(code)));
        for (let i = 0; i < 50 && cluster.query("postgres", "SELECT count(*) FROM pg_stat_activity WHERE datname = 'app2_db'") === "0"; i++) await new Promise((r) => setTimeout(r, 100));
        lines.length = 0;
        const result = await restoreBackup({ store: store(), runner: runner(), app: "app2", identityFile: main.identity, log });
        assert.notStrictEqual(await exited, 0, "the session was terminated");
        assert.match(lines.join("\n"), /ended 1 session\(s\) on app2_db/);
        assert.strictEqual(count("app2_db", "items"), 777);
        assert.ok(result.kept);
    });

    it("--dry-run restores and verifies, then drops the copy: the app's database is untouched", async () => {
        cluster.query("app1_db", "INSERT INTO orders (customer_id, total) VALUES (3, 3)");
        const before = count("app1_db", "orders");
        const databases = cluster.query("postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database");
        lines.length = 0;
        const result = await restoreBackup({ store: store(), runner: runner(), app: "app1", identityFile: main.identity, dryRun: true, log });
        assert.strictEqual(result.swapped, false);
        assert.match(lines.join("\n"), /\[6\/6\] swap: skipped \(dry run\)/);
        assert.strictEqual(count("app1_db", "orders"), before);
        assert.strictEqual(cluster.query("postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database"), databases);
    });

    it("asks before the swap, naming the data-loss window; a no leaves the app's database untouched and no copy behind", async () => {
        cluster.query("app2_db", "INSERT INTO items VALUES (999999, '{}')");
        const before = count("app2_db", "items");
        const databases = cluster.query("postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database");
        const questions: string[] = [];
        lines.length = 0;
        const refused = await restoreBackup({ store: store(), runner: runner(), app: "app2", identityFile: main.identity, log, confirm: async (q) => (questions.push(q), false) });
        assert.strictEqual(refused.swapped, false);
        assert.strictEqual(questions.length, 1);
        assert.match(questions[0], /^Swap app2_db_restore_\S+ in for app2_db\? writes made to app2_db between the backup \(\d{4}-\d\d-\d\dT[\d:]+Z\) and now \(\d{4}-\d\d-\d\dT[\d:]+Z, \d+\.\d h\) will no longer be in app2_db: they stay only in the kept copy app2_db_before_\d{8}t\d{6}z\.$/);
        assert.match(lines.join("\n"), /\[6\/6\] swap: NOT confirmed; dropped app2_db_restore_/);
        assert.strictEqual(count("app2_db", "items"), before);
        assert.strictEqual(cluster.query("postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database"), databases);
        const confirmed = await restoreBackup({ store: store(), runner: runner(), app: "app2", identityFile: main.identity, log, confirm: async () => true });
        assert.strictEqual(confirmed.swapped, true);
        assert.strictEqual(count(confirmed.kept!, "items"), before, "the write since the backup is in the kept copy");
    });

    /**
     * Puts a modified copy of the newest app1 backup in a directory store, as a newer backup, signed
     * with the trusted key: what a thief of the host's signing key could upload. The checks after the
     * signature (decryption, manifest, row counts) must hold on their own.
     */
    async function tamperedStore(modify: (bytes: Buffer, name: string) => Buffer): Promise<BackupStore> {
        const source = path.join(dir, "source.tar.age");
        await s3.client().download(firstBackups[0].key, source);
        const root = fs.mkdtempSync(path.join(dir, "store-"));
        fs.mkdirSync(path.join(root, "app1"));
        const key = backupKey("app1", new Date(Date.now() + 60_000));
        const bytes = modify(fs.readFileSync(source), parseBackupKey(key)!.name);
        fs.writeFileSync(path.join(root, key), bytes);
        fs.writeFileSync(path.join(root, key + SIGNATURE_SUFFIX), signBackup(TEST_SIGNING_KEY.secretKey, { object: key, bytes: bytes.length, sha256: sha256(bytes) }));
        return new DirectoryBackupStore(root, TEST_TRUST);
    }

    async function expectRejected(s: BackupStore, pattern: RegExp, identity = main.identity) {
        const before = cluster.query("app1_db", ROW_COUNT_SQL);
        const databases = cluster.query("postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database");
        await assert.rejects(restoreBackup({ store: s, runner: runner(), app: "app1", identityFile: identity, log: () => undefined }), (e: Error) => {
            assert.match(e.message, pattern);
            return true;
        });
        assert.strictEqual(cluster.query("app1_db", ROW_COUNT_SQL), before, "app1_db untouched");
        assert.strictEqual(cluster.query("postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database"), databases, "no database created or renamed");
    }

    it("a corrupted backup is detected and the app's database is left untouched", async () => {
        await expectRejected(
            await tamperedStore((b) => {
                const copy = Buffer.from(b);
                copy[Math.floor(copy.length / 2)] ^= 0x55;
                return copy;
            }),
            /cannot be decrypted: it is corrupted or truncated/,
        );
    });

    it("a truncated backup is detected and the app's database is left untouched", async () => {
        await expectRejected(await tamperedStore((b) => b.subarray(0, b.length - 100)), /cannot be decrypted: it is corrupted or truncated/);
    });

    it("a backup encrypted for another key is refused with a clear message", async () => {
        await expectRejected(await tamperedStore((b) => b), /not encrypted for the key in .*other\.key/, other.identity);
    });

    it("a backup whose counts differ from its manifest is refused after the trial restore, which is dropped", async () => {
        // A well-formed backup (right key, right hashes) whose manifest claims a row the dump lacks.
        const work = fs.mkdtempSync(path.join(dir, "forge-"));
        const s = await tamperedStore((b, name) => {
            fs.writeFileSync(path.join(work, "in.age"), b);
            execFileSync("age", ["-d", "-i", main.identity, "-o", path.join(work, "in.tar"), path.join(work, "in.age")]);
            execFileSync("tar", ["-xf", path.join(work, "in.tar"), "-C", work]);
            const manifest = JSON.parse(fs.readFileSync(path.join(work, "manifest.json"), "utf8"));
            manifest.name = name;
            manifest.createdAt = parseBackupKey(`app1/${name}.tar.age`)!.createdAt.toISOString().replace(/\.\d{3}Z$/, "Z");
            manifest.tables.find((t: any) => t.table === "orders").rows += 1;
            fs.writeFileSync(path.join(work, "manifest.json"), JSON.stringify(manifest));
            execFileSync("tar", ["-C", work, "-cf", path.join(work, "out.tar"), "manifest.json", "app1_db.pgdump", "globals.sql"]);
            execFileSync("age", ["-r", main.recipient, "-o", path.join(work, "out.age"), path.join(work, "out.tar")]);
            return fs.readFileSync(path.join(work, "out.age"));
        });
        await expectRejected(s, /does not match the manifest: table "public"\."orders" has 4000 rows, manifest says 4001/);
    });

    it("a dump that fails uploads nothing for that app, still backs up the others, exits non-zero and pings /fail", async () => {
        const keys = await objectKeys();
        heartbeat.pings.length = 0;
        const r = await runScript({ FAKE_DOCKER_FAIL: "pg_dump" });
        assert.notStrictEqual(r.status, 0);
        assert.match(r.stderr, /app1: pg_dump failed: pg_dump: simulated failure/);
        assert.match(r.stderr, /FAILED: no backup for: app1 app2/);
        assert.deepStrictEqual(await objectKeys(), keys, "nothing uploaded");
        assert.deepStrictEqual(heartbeat.pings, ["/ping/abc/fail"]);
    });

    it("an app whose database is missing fails alone; the other app is backed up", async () => {
        const before = (await objectKeys()).length;
        const r = await runScript({ BACKUP_TARGETS: "ghost=ghost_db app2=app2_db" });
        assert.notStrictEqual(r.status, 0);
        assert.match(r.stderr, /ghost: psql could not open a snapshot of ghost_db: .*ghost_db/);
        assert.match(r.stderr, /FAILED: no backup for: ghost \(1 other app\(s\) backed up\)/);
        assert.strictEqual((await objectKeys()).length, before + 2, "app2's backup and its signature");
    });

    it("an upload refused by the object store (bad credentials) fails loudly and leaves no object", async () => {
        const bad = path.join(dir, "bad-credentials");
        fs.writeFileSync(bad, renderCurlCredentials("WRONGKEY", "wrong", false), { mode: 0o600 });
        const keys = await objectKeys();
        const r = await runScript({ S3_CREDENTIALS_FILE: bad });
        assert.notStrictEqual(r.status, 0);
        assert.match(r.stderr, /app1: upload of app1\/app1-\d{8}T\d{6}Z\.tar\.age failed: .*(InvalidAccessKeyId|SignatureDoesNotMatch)/);
        assert.deepStrictEqual(await objectKeys(), keys);
    });

    /**
     * An S3 endpoint standing in for Object Storage while IAM propagates: it answers PUTs with 403
     * AccessDenied (as Scaleway does before a new policy or key applies) until `refuse` returns false, then
     * forwards every request unchanged (Host included, so the signature still verifies) to s3rver.
     */
    async function refusingProxy(refuse: () => boolean): Promise<{ endpoint: string; refused: number; close(): void }> {
        const state = { refused: 0 };
        const target = new URL(s3.endpoint);
        const port = await freeLoopbackPort();
        const server = http.createServer((req, res) => {
            if (req.method === "PUT" && refuse()) {
                state.refused++;
                req.resume();
                res.writeHead(403, { "Content-Type": "application/xml" });
                res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
                return;
            }
            const upstream = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
                res.writeHead(r.statusCode ?? 502, r.headers);
                r.pipe(res);
            });
            upstream.on("error", () => res.destroy());
            req.pipe(upstream);
        });
        await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()));
        return {
            endpoint: `http://127.0.0.1:${port}`,
            get refused() {
                return state.refused;
            },
            close: () => server.close(),
        };
    }

    it("the first backup waits out IAM propagation: refused uploads (403) are retried within UPLOAD_AUTH_WAIT_SECONDS, then stored", async () => {
        const refuseUntil = Date.now() + 4000;
        const proxy = await refusingProxy(() => Date.now() < refuseUntil);
        try {
            const keys = await objectKeys();
            const started = Date.now();
            const r = await runScript({ S3_ENDPOINT: proxy.endpoint, ...envOf(firstBackupEnvironment(30, 1)) });
            const seconds = (Date.now() - started) / 1000;
            assert.strictEqual(r.status, 0, r.stderr);
            assert.ok(proxy.refused >= 2, `the store refused ${proxy.refused} time(s)`);
            assert.match(r.stderr, /app1: upload refused \(403\): the host's IAM policy or API key may not have reached Object Storage yet; retrying in 1s/);
            assert.match(r.stderr, /done: 2 app\(s\) backed up/);
            const added = (await objectKeys()).filter((k) => !keys.includes(k));
            assert.strictEqual(added.length, 4, `one new object and its signature per app: ${added.join(", ")}`);
            assert.ok(seconds >= 3.5 && seconds < 30, `took ${seconds}s: it waited for the store, within the bound`);
        } finally {
            proxy.close();
        }
    });

    it("a store that keeps refusing fails the first backup after the stated bound, saying why; nightly runs (no wait) fail at the first refusal", async () => {
        const proxy = await refusingProxy(() => true);
        try {
            const keys = await objectKeys();
            const started = Date.now();
            const r = await runScript({ S3_ENDPOINT: proxy.endpoint, ...envOf(firstBackupEnvironment(3, 1)) });
            const seconds = (Date.now() - started) / 1000;
            assert.notStrictEqual(r.status, 0);
            // The script counts whole seconds (date +%s): a 3 s bound that starts late in a second ends just over 2 s later.
            assert.ok(seconds >= 2 && seconds < 15, `gave up after ${seconds}s (bound 3s per the deadline, counted in whole seconds, plus the dumps)`);
            assert.match(r.stderr, /still refused \(403\) after waiting 3s for the host's IAM policy and API key to apply/);
            assert.match(r.stderr, /upload of app1\/app1-\d{8}T\d{6}Z\.tar\.age failed: .*AccessDenied/);
            assert.match(r.stderr, /FAILED: no backup for: app1 app2/);
            assert.deepStrictEqual(await objectKeys(), keys, "nothing stored");

            const before = proxy.refused;
            const nightly = await runScript({ S3_ENDPOINT: proxy.endpoint });
            assert.notStrictEqual(nightly.status, 0);
            assert.strictEqual(proxy.refused - before, 2, "one refused PUT per app, no retry");
            assert.ok(!/retrying in/.test(nightly.stderr));
        } finally {
            proxy.close();
        }
    });

    it("hostile wait settings are refused before anything runs", async () => {
        for (const bad of ["5; touch /tmp/x", "-1", "1e3", "$(id)"]) {
            const r = await runScript({ UPLOAD_AUTH_WAIT_SECONDS: bad });
            assert.notStrictEqual(r.status, 0);
            assert.match(r.stderr, /UPLOAD_AUTH_WAIT_SECONDS and UPLOAD_AUTH_RETRY_SECONDS must be whole seconds/);
        }
    });

    it("the credentials never appear on a command line: curl reads them from the 0600 file", () => {
        const script = fs.readFileSync(SCRIPT, "utf8");
        assert.match(script, /curl [^\n]*-K "\$S3_CREDENTIALS_FILE"/);
        assert.ok(!/--user|-u "/.test(script));
    });

    it("hostile BACKUP_TARGETS are refused before anything runs", async () => {
        for (const targets of ["app1=app1_db;touch${IFS}/tmp/pwned", "app1=$(id)", "../x=app1_db", "app1=app1 db"]) {
            const r = await runScript({ BACKUP_TARGETS: targets, FAKE_DOCKER_LOG: path.join(dir, "docker.log") });
            assert.notStrictEqual(r.status, 0, targets);
            assert.match(r.stderr, /bad (app|database) name in BACKUP_TARGETS|no backup for/, targets);
        }
        assert.ok(!fs.existsSync("/tmp/pwned"));
    });

    it("the local stack's layout: a directory destination and a recipients file work the same way", async () => {
        const backupDir = path.join(dir, "local-backups");
        const recipients = path.join(dir, "recipients.txt");
        fs.writeFileSync(recipients, main.recipient + "\n");
        const r = await runScript({ BACKUP_DIR: backupDir, AGE_RECIPIENT: "", AGE_RECIPIENTS_FILE: recipients, S3_ENDPOINT: "" });
        assert.strictEqual(r.status, 0, r.stderr);
        const local = new DirectoryBackupStore(backupDir, TEST_TRUST);
        assert.strictEqual((await local.list("app2")).length, 1);
        lines.length = 0;
        await restoreBackup({ store: local, runner: runner(), app: "app2", identityFile: main.identity, dryRun: true, log });
        assert.match(lines.join("\n"), /\[5\/6\] verify: row counts of 1 table\(s\) match the manifest: public\.items=777/);
        assert.deepStrictEqual(fs.readdirSync(path.join(backupDir, "app2")).filter((f) => f.startsWith(".")), [], "no partial file left");
    });

    it("a second boundary between clock readings cannot split a backup's name from its createdAt (a fake date ticks on every call)", async () => {
        const bin = fs.mkdtempSync(path.join(dir, "clock-"));
        const counter = path.join(bin, "calls");
        fs.writeFileSync(counter, "0");
        const real = execFileSync("sh", ["-c", "command -v date"], { encoding: "utf8" }).trim();
        // Every call is one second later than the one before: any two readings straddle a boundary.
        fs.writeFileSync(
            path.join(bin, "date"),
            `#!/bin/sh\nn=$(cat '${counter}'); echo $((n + 1)) >'${counter}'\nfor a; do case $a in +*) f=$a ;; esac; done\nexec '${real}' -u -d "@$((1767225590 + n))" "$f"\n`,
            { mode: 0o755 },
        );
        const backupDir = path.join(dir, "clock-backups");
        const r = await runScript({ BACKUP_DIR: backupDir, BACKUP_TARGETS: "app2=app2_db", PATH: `${bin}:${dockerDir}:${process.env.PATH}` });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.ok(Number(fs.readFileSync(counter, "utf8")) >= 3, "the fake clock was read");
        // The store's clock agrees with the host's: the files were stored at the fake time, not today.
        for (const f of fs.readdirSync(path.join(backupDir, "app2"))) fs.utimesSync(path.join(backupDir, "app2", f), 1767225600, 1767225600);
        const local = new DirectoryBackupStore(backupDir, { ...TEST_TRUST, now: () => new Date(1767225600_000) });
        const [ref] = await local.list("app2");
        assert.match(ref.name, /^app2-20251231T2359\d\dZ$/);
        // The restore checks the manifest's name against its createdAt and the object's name.
        const result = await restoreBackup({ store: local, runner: runner(), app: "app2", identityFile: main.identity, dryRun: true, log: () => undefined });
        assert.strictEqual(result.manifest.name, ref.name);
        assert.strictEqual(result.manifest.createdAt.replace(/[-:]/g, ""), ref.name.slice("app2-".length));
    });

    describe("bounds: a lock wait, a deadline, no overlapping runs", () => {
        /** A session holding ACCESS EXCLUSIVE on app2's table (an app's migration, stuck). */
        async function holdLock(): Promise<() => void> {
            const locker = spawn(path.join(cluster.binDir, "psql"), ["-XAtq", "-d", "app2_db", "-c", "BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60);"], { env: cluster.env });
            for (let i = 0; i < 100 && cluster.query("postgres", "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'items' AND l.mode = 'AccessExclusiveLock' AND l.granted") === "0"; i++) await new Promise((r) => setTimeout(r, 100));
            return () => {
                cluster.query("postgres", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE '%LOCK TABLE items%' AND pid <> pg_backend_pid()");
                locker.kill();
            };
        }

        it("pg_dump waits for a table lock at most LOCK_WAIT_TIMEOUT, then the app fails and /fail is pinged", async () => {
            const release = await holdLock();
            try {
                heartbeat.pings.length = 0;
                const started = Date.now();
                const r = await runScript({ BACKUP_TARGETS: "app2=app2_db", BACKUP_DIR: path.join(dir, "bounded"), LOCK_WAIT_TIMEOUT: "1s" });
                assert.notStrictEqual(r.status, 0);
                // pg_dump applies --lock-wait-timeout as the statement timeout of its LOCK TABLE.
                assert.match(r.stderr, /app2: pg_dump failed: .*canceling statement due to (statement|lock) timeout[\s\S]*LOCK TABLE public\.items/);
                assert.ok(Date.now() - started < 30000, `took ${Date.now() - started} ms`);
                assert.deepStrictEqual(heartbeat.pings, ["/ping/abc/fail"]);
            } finally {
                release();
            }
        });

        it("a run stuck past BACKUP_DEADLINE_SECONDS is killed (pg_dump too), uploads nothing, leaves no plaintext, pings /fail", async () => {
            const release = await holdLock();
            try {
                heartbeat.pings.length = 0;
                const started = Date.now();
                const out = path.join(dir, "deadline");
                const r = await runScript({ BACKUP_TARGETS: "app2=app2_db", BACKUP_DIR: out, LOCK_WAIT_TIMEOUT: "120s", BACKUP_DEADLINE_SECONDS: "3" });
                const took = Date.now() - started;
                assert.notStrictEqual(r.status, 0);
                assert.match(r.stderr, /FAILED: the run exceeded its deadline of 3 s/);
                assert.ok(took < 40000, `took ${took} ms`);
                assert.deepStrictEqual(heartbeat.pings, ["/ping/abc/fail"]);
                assert.ok(!fs.existsSync(path.join(out, "app2")) || fs.readdirSync(path.join(out, "app2")).length === 0, "nothing stored");
                assert.deepStrictEqual(fs.readdirSync(dir).filter((f) => f.startsWith("platform-backup.")), [], "no work directory left");
                // The killed pg_dump is gone from the server.
                for (let i = 0; i < 50 && cluster.query("postgres", "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump'") !== "0"; i++) await new Promise((res) => setTimeout(res, 100));
                assert.strictEqual(cluster.query("postgres", "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump'"), "0");
            } finally {
                release();
            }
        });

        it("a second run while one holds the lock fails at once and pings /fail", async () => {
            const lockFile = path.join(dir, "backup.lock");
            // Its own process group: flock's child (sleep) holds the lock too, so the whole group is ended.
            const holder = spawn("flock", [lockFile, "sleep", "30"], { detached: true, stdio: "ignore" });
            try {
                for (let i = 0; i < 50 && !fs.existsSync(lockFile); i++) await new Promise((r) => setTimeout(r, 50));
                await new Promise((r) => setTimeout(r, 200));
                heartbeat.pings.length = 0;
                const r = await runScript({ BACKUP_TARGETS: "app2=app2_db", BACKUP_DIR: path.join(dir, "overlap"), LOCK_FILE: lockFile });
                assert.notStrictEqual(r.status, 0);
                assert.match(r.stderr, /another backup run holds .*backup\.lock/);
                assert.deepStrictEqual(heartbeat.pings, ["/ping/abc/fail"]);
                assert.ok(!fs.existsSync(path.join(dir, "overlap")), "nothing ran");
            } finally {
                process.kill(-holder.pid!, "SIGTERM");
            }
            // Once the holder is gone, the lock is free again.
            await new Promise((r) => setTimeout(r, 200));
            const again = await runScript({ BACKUP_TARGETS: "app2=app2_db", BACKUP_DIR: path.join(dir, "overlap"), LOCK_FILE: lockFile });
            assert.strictEqual(again.status, 0, again.stderr);
        });
    });

    it("counts taken by the backup are those of its snapshot, even with writes running during the dump", async () => {
        // A writer inserts rows while the script runs; the manifest and the dump must still agree.
        const writer = spawn(path.join(cluster.binDir, "psql"), ["-XAtq", "-d", "app2_db", "-c", "DO $$ BEGIN FOR i IN 1000..3000 LOOP INSERT INTO items VALUES (i, '{}'); COMMIT; PERFORM pg_sleep(0.001); END LOOP; END $$;"], { env: cluster.env });
        const backupDir = path.join(dir, "concurrent");
        const r = await runScript({ BACKUP_DIR: backupDir, BACKUP_TARGETS: "app2=app2_db" });
        await new Promise((res) => writer.on("exit", res));
        assert.strictEqual(r.status, 0, r.stderr);
        await restoreBackup({ store: new DirectoryBackupStore(backupDir, TEST_TRUST), runner: runner(), app: "app2", identityFile: main.identity, dryRun: true, log: () => undefined });
    });

    describe("the drill", () => {
        const drill = throwawayServer();
        const drillRunner = drill.runner;

        it("passes on fresh backups: every app restored into a throwaway server and checked against its manifest", async () => {
            lines.length = 0;
            const problems = await runDrill({ store: store(), apps: ["app1", "app2"], identityFile: main.identity, runner: drillRunner(), log });
            assert.deepStrictEqual(problems, []);
            assert.match(lines.join("\n"), /app1: OK/);
            assert.match(lines.join("\n"), /app2: OK/);
            // The throwaway server holds nothing afterwards.
            assert.strictEqual(drill.cluster().query("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'app%'"), "0");
        });

        it("fails on a stale backup, a missing app and an undecryptable backup", async () => {
            const inTwoDays = () => new Date(Date.now() + 48 * 3_600_000);
            const problems = await runDrill({ store: store(), apps: ["app1", "app3"], identityFile: main.identity, runner: drillRunner(), log: () => undefined, now: inTwoDays });
            assert.strictEqual(problems.length, 2, problems.join("\n"));
            assert.match(problems[0], /app1: newest backup app1-\d{8}T\d{6}Z is 4\d\.\d h old \(limit 26 h\)/);
            assert.match(problems[1], /app3: no backup at all/);
            const wrongKey = await runDrill({ store: store(), apps: ["app2"], identityFile: other.identity, runner: drillRunner(), log: () => undefined });
            assert.match(wrongKey.join("\n"), /app2: .*not encrypted for the key/);
        });

        it("fails on an old backup renamed to look fresh (even signed with the host's key): its manifest names another time", async () => {
            const s = await tamperedStore((b) => b);
            const [renamed] = await s.list("app1");
            const problems = await runDrill({ store: s, apps: ["app1"], identityFile: main.identity, runner: drillRunner(), log: () => undefined });
            assert.strictEqual(problems.length, 1, problems.join("\n"));
            assert.match(problems[0], new RegExp(`app1: ${renamed.name}: the manifest names backup app1-\\d{8}T\\d{6}Z, but the object is ${renamed.name}`));
        });
    });

    describe("signed backups: what can put objects cannot plant one (issue 20, item 3)", () => {
        const drill = throwawayServer();
        const drillRunner = drill.runner;

        /** A bucket of its own holding copies of app1's genuine newest backup and its signature (stored now, minutes after its name's time). */
        async function bucketWithGenuine(name: string): Promise<{ client: ReturnType<TestS3["client"]>; genuine: BackupRef; bytes: Buffer; signature: string }> {
            const client = s3.client(name);
            await client.createBucket();
            const genuine = firstBackups[0];
            const file = path.join(dir, `${name}-genuine.tar.age`);
            await s3.client().download(genuine.key, file);
            const bytes = fs.readFileSync(file);
            const signature = await s3.client().getText(genuine.key + SIGNATURE_SUFFIX, 4096);
            await client.put(genuine.key, bytes);
            await client.put(genuine.key + SIGNATURE_SUFFIX, Buffer.from(signature));
            return { client, genuine, bytes, signature };
        }
        const keyAt = (msFromNow: number) => backupKey("app1", new Date(Date.now() + msFromNow));
        const signed = (secretKey: string, key: string, bytes: Buffer) => Buffer.from(signBackup(secretKey, { object: key, bytes: bytes.length, sha256: sha256(bytes) }));

        it("unsigned, signed by another key, future-dated, back-dated and renamed backups are all refused; --latest restores the genuine one; the drill names every newer forgery", async () => {
            const { client, genuine, bytes, signature } = await bucketWithGenuine("forgeries");
            // Anyone holding the age public key (Pulumi.prod.yaml) and a put-only key: a decryptable, newer, unsigned backup.
            const unsigned = keyAt(30_000);
            await client.put(unsigned, bytes);
            // A key of the forger's own.
            const forger = generateSigningKey();
            const otherKey = keyAt(40_000);
            await client.put(otherKey, bytes);
            await client.put(otherKey + SIGNATURE_SUFFIX, signed(forger.secretKey, otherKey, bytes));
            // The host's own key, stolen: a backup dated far ahead, and one dated long before it was stored.
            const future = backupKey("app1", new Date("2099-12-31T23:59:59Z"));
            await client.put(future, bytes);
            await client.put(future + SIGNATURE_SUFFIX, signed(TEST_SIGNING_KEY.secretKey, future, bytes));
            const backdated = backupKey("app1", new Date("2026-01-01T00:00:00Z"));
            await client.put(backdated, bytes);
            await client.put(backdated + SIGNATURE_SUFFIX, signed(TEST_SIGNING_KEY.secretKey, backdated, bytes));
            // The genuine backup and its genuine signature, copied under a newer name.
            const renamed = keyAt(50_000);
            await client.put(renamed, bytes);
            await client.put(renamed + SIGNATURE_SUFFIX, Buffer.from(signature));

            const store = new S3BackupStore(client, TEST_TRUST);
            assert.deepStrictEqual((await store.list("app1")).map((r) => r.name), [genuine.name], "only the genuine backup is trusted");
            const reasons = new Map((await store.refused("app1")).map((r) => [r.ref.key, r.reason]));
            assert.match(reasons.get(unsigned)!, /it is not signed/);
            assert.match(reasons.get(otherKey)!, new RegExp(`signed by ${forger.publicKey.replace(/[+/]/g, "\\$&")}, which is not pinned in platform:backupSigningKeys`));
            assert.match(reasons.get(future)!, /dated 2099-12-31T23:59:59Z, in the future/);
            assert.match(reasons.get(backdated)!, /stored at .*h after the time its name claims \(2026-01-01T00:00:00Z\)/);
            assert.match(reasons.get(renamed)!, new RegExp(`signature is of another object \\(${genuine.key}\\)`));

            lines.length = 0;
            const result = await restoreBackup({ store, runner: runner(), app: "app1", identityFile: main.identity, dryRun: true, log });
            assert.strictEqual(result.backup.name, genuine.name, "--latest restores the newest trusted backup");
            const output = lines.join("\n");
            for (const k of [unsigned, otherKey, future, renamed]) assert.match(output, new RegExp(`WARNING: skipped ${parseBackupKey(k)!.name}, newer than ${genuine.name}`));
            assert.match(output, new RegExp(`its sha256 is the one signed by ${TEST_SIGNING_KEY.publicKey.replace(/[+/]/g, "\\$&")}`));
            await assert.rejects(restoreBackup({ store, runner: runner(), app: "app1", identityFile: main.identity, backup: parseBackupKey(unsigned)!.name, dryRun: true, log: () => undefined }), /is refused: it is not signed .*--allow-unsigned/);

            const problems = await runDrill({ store: new S3BackupStore(client, TEST_TRUST), apps: ["app1"], identityFile: main.identity, runner: drillRunner(), log: () => undefined });
            assert.strictEqual(problems.length, 4, problems.join("\n"));
            for (const k of [unsigned, otherKey, future, renamed]) assert.ok(problems.some((p) => p.startsWith(`app1: ${parseBackupKey(k)!.name} is refused: `)), `${k}: ${problems.join("\n")}`);
            assert.ok(!problems.some((p) => p.includes(parseBackupKey(backdated)!.name)), "an older refused backup is logged, not a problem");
        });

        it("bytes swapped under a valid signature are refused after the download, before decryption", async () => {
            const { client, genuine, bytes } = await bucketWithGenuine("swapped");
            const key = keyAt(30_000);
            const swapped = Buffer.from(bytes);
            swapped[swapped.length - 1] ^= 1;
            await client.put(key, swapped);
            await client.put(key + SIGNATURE_SUFFIX, signed(TEST_SIGNING_KEY.secretKey, key, bytes));
            const store = new S3BackupStore(client, TEST_TRUST);
            assert.strictEqual((await store.list("app1"))[0].key, key, "the listing alone cannot tell");
            await assert.rejects(restoreBackup({ store, runner: runner(), app: "app1", identityFile: main.identity, dryRun: true, log: () => undefined }), /the downloaded backup is not the one signed/);
            assert.strictEqual((await store.list("app1"))[1].name, genuine.name);
        });

        it("a retired key: what it signed before retiredAt stays trusted, nothing after", async () => {
            const { client, genuine } = await bucketWithGenuine("retired");
            const retiredBefore = new S3BackupStore(client, { keys: [{ publicKey: TEST_SIGNING_KEY.publicKey, retiredAt: new Date(Date.now() - 3_600_000) }] });
            assert.deepStrictEqual(await retiredBefore.list("app1"), []);
            assert.match((await retiredBefore.refused("app1"))[0].reason, /after its signing key .* was retired/);
            const retiredAfter = new S3BackupStore(client, { keys: [{ publicKey: TEST_SIGNING_KEY.publicKey, retiredAt: new Date(Date.now() + 3_600_000) }] });
            assert.deepStrictEqual((await retiredAfter.list("app1")).map((r) => r.name), [genuine.name]);
        });

        it("a backup from before signing is restored only when named with --allow-unsigned", async () => {
            const client = s3.client("legacy");
            await client.createBucket();
            const genuine = firstBackups[0];
            const file = path.join(dir, "legacy.tar.age");
            await s3.client().download(genuine.key, file);
            await client.put(genuine.key, fs.readFileSync(file));
            await assert.rejects(restoreBackup({ store: new S3BackupStore(client, TEST_TRUST), runner: runner(), app: "app1", identityFile: main.identity, dryRun: true, log: () => undefined }), /no trusted backup of app1: 1 refused, the newest .*: it is not signed/);
            lines.length = 0;
            const result = await restoreBackup({ store: new S3BackupStore(client, { ...TEST_TRUST, allowUnsigned: genuine.name }), runner: runner(), app: "app1", backup: genuine.name, identityFile: main.identity, dryRun: true, log });
            assert.strictEqual(result.backup.name, genuine.name);
            assert.match(lines.join("\n"), /UNSIGNED, taken because --allow-unsigned names it/);
        });
    });

    it("verifies the restored counts with the same query the backup used", async () => {
        const counts = await countRows(runner(), "app2_db");
        assert.deepStrictEqual(counts.map((c) => c.table), ["items"]);
    });
});
