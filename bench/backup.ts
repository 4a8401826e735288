// `npm run bench:backup [-- --mb 100]`: backup and restore times and sizes for an app database of at
// least 100 MB, with the real pieces: a throwaway PostgreSQL, hostScripts/backup.sh (stand-in docker
// running the cluster's own pg_dump), age, s3rver on loopback, and the operator's restore
// (io/restore.ts restoreBackup, what `npm run restore` runs, printing its steps: in this process, because
// the command trusts only the keys a stack file pins and this bench signs with the suite's key) doing a
// full restore and swap. The signature's own cost is timed apart: signing and verifying one statement.
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { execFileSync } from "child_process";
import { formatBytes, renderCurlCredentials } from "../render/backup";
import { fakeDocker, startCluster } from "../tests/support/postgres";
import { TEST_SIGNING_KEY, TEST_TRUST, writeSigningKey } from "../tests/support/signing";
import { S3BackupStore, directRunner, restoreBackup } from "../io/restore";
import { signBackup, verifyBackup } from "../render/signing";
import { parseBackupKey } from "../render/backup";
import { startS3 } from "../tests/support/s3";

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; out: string; err: string; seconds: number }> {
    const started = Date.now();
    return new Promise((resolve) => {
        const child = spawn(cmd, args, { env });
        let out = "";
        let err = "";
        child.stdout.on("data", (d) => (out += d));
        child.stderr.on("data", (d) => (err += d));
        child.on("close", (status) => resolve({ status, out, err, seconds: (Date.now() - started) / 1000 }));
    });
}

async function main(): Promise<void> {
    const i = process.argv.indexOf("--mb");
    const targetMb = i > 0 ? Number(process.argv[i + 1]) : 100;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-bench-backup-"));
    const cluster = await startCluster();
    const s3 = await startS3();
    try {
        console.log(`bench:backup: PostgreSQL ${cluster.major} (${cluster.binDir}), s3rver on ${s3.endpoint}, target ≥ ${targetMb} MB`);
        cluster.query("postgres", "CREATE ROLE app_app1 LOGIN PASSWORD 'bench-password-123456'; CREATE DATABASE app1_db OWNER app_app1; REVOKE ALL ON DATABASE app1_db FROM PUBLIC;");
        const t0 = Date.now();
        cluster.query(
            "app1_db",
            `SET ROLE app_app1;
             CREATE TABLE customers (id int PRIMARY KEY, name text, email text);
             INSERT INTO customers SELECT g, 'customer ' || g, md5(g::text) || '@example.com' FROM generate_series(1, 100000) g;
             CREATE TABLE events (id bigserial PRIMARY KEY, customer_id int REFERENCES customers(id), at timestamptz, kind text, payload jsonb);
             CREATE INDEX events_customer ON events (customer_id);`,
        );
        let rows = 0;
        while (Number(cluster.query("postgres", "SELECT pg_database_size('app1_db')")) < targetMb * 1024 * 1024) {
            cluster.query(
                "app1_db",
                `INSERT INTO events (customer_id, at, kind, payload)
                 SELECT 1 + (g::bigint * 7919) % 100000, now() - (g || ' seconds')::interval, (ARRAY['view','click','buy'])[1 + g % 3],
                        jsonb_build_object('session', md5(g::text), 'ref', md5((g::bigint * 31)::text), 'n', g)
                 FROM generate_series(${rows + 1}, ${rows + 200000}) g;`,
            );
            rows += 200000;
        }
        const dbBytes = Number(cluster.query("postgres", "SELECT pg_database_size('app1_db')"));
        console.log(`database app1_db: ${formatBytes(dbBytes)} (${rows} events + 100000 customers), loaded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

        const identity = path.join(dir, "backup.key");
        execFileSync("age-keygen", ["-o", identity], { stdio: "pipe" });
        const recipient = execFileSync("age-keygen", ["-y", identity], { encoding: "utf8" }).trim();
        const credentials = path.join(dir, "s3-credentials");
        fs.writeFileSync(credentials, renderCurlCredentials(s3.accessKey, s3.secretKey, false), { mode: 0o600 });
        const backup = await run("sh", [path.join(__dirname, "..", "hostScripts", "backup.sh")], {
            PATH: `${fakeDocker(cluster)}:${process.env.PATH}`,
            BACKUP_TARGETS: "app1=app1_db",
            AGE_RECIPIENT: recipient,
            SIGNING_KEY_FILE: writeSigningKey(dir),
            S3_ENDPOINT: s3.endpoint,
            S3_BUCKET: s3.bucket,
            S3_REGION: s3.region,
            S3_CREDENTIALS_FILE: credentials,
            WORK_DIR: dir,
        });
        if (backup.status !== 0) throw new Error(`backup.sh failed:\n${backup.err}`);
        const [object] = await s3.client().list("app1/");
        const dumpBytes = Number(/dumped app1_db \((\d+) bytes/.exec(backup.err)?.[1]);
        console.log(backup.err.trim());

        const restoreStarted = Date.now();
        const lines: string[] = [];
        await restoreBackup({
            store: new S3BackupStore(s3.client(), TEST_TRUST),
            runner: directRunner({ host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, binDir: cluster.binDir }),
            app: "app1",
            identityFile: identity,
            log: (l) => lines.push(l),
        });
        const restoreSeconds = (Date.now() - restoreStarted) / 1000;
        console.log("\nrestore (io/restore.ts restoreBackup, as npm run restore runs it):");
        console.log(lines.join("\n"));
        // The signature alone: sign and verify one statement, 1000 times each.
        const ref = parseBackupKey(object.key, object.size, new Date())!;
        const statement = { object: object.key, bytes: object.size, sha256: "ab".repeat(32) };
        let t = process.hrtime.bigint();
        let text = "";
        for (let n = 0; n < 1000; n++) text = signBackup(TEST_SIGNING_KEY.secretKey, statement);
        const signUs = Number(process.hrtime.bigint() - t) / 1000 / 1000;
        t = process.hrtime.bigint();
        for (let n = 0; n < 1000; n++) verifyBackup({ ref, signature: { text, lastModified: new Date() } }, TEST_TRUST.keys, new Date());
        const verifyUs = Number(process.hrtime.bigint() - t) / 1000 / 1000;
        console.log("\nfigures");
        console.log(`  database size            ${formatBytes(dbBytes)}`);
        console.log(`  dump (custom format)     ${formatBytes(dumpBytes)}`);
        console.log(`  encrypted object         ${formatBytes(object.size)}`);
        console.log(`  backup.sh (dump, counts, encrypt, upload)  ${backup.seconds.toFixed(1)} s`);
        console.log(`  restore (list and verify signatures, download and check the signed sha256, decrypt, restore, verify, swap)  ${restoreSeconds.toFixed(1)} s`);
        console.log(`  one signature: sign ${signUs.toFixed(0)} µs, verify ${verifyUs.toFixed(0)} µs (Node's Ed25519)`);
    } finally {
        cluster.stop();
        await s3.stop();
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

main().catch((e) => {
    console.error(`bench:backup: ${(e as Error).message}`);
    process.exit(1);
});
