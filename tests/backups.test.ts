// Backups: the resource graph under mocks (bucket, lock, policy, host key, schedule) and the pure
// rules of render/backup.ts, hostile input included.
import * as assert from "assert";
import { TEST_SIGNING_KEY } from "./support/signing";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
    MANAGED_DATABASE_TARGET,
    checkDatabaseTarget,
    backupBucketPolicy,
    backupKey,
    firstBackupEnvironment,
    IAM_PROPAGATION_WAIT_SECONDS,
    chooseBackup,
    compareRowCounts,
    freshnessProblems,
    keptDatabaseName,
    parseBackupKey,
    parseManifest,
    renderBackupCron,
    renderBackupSettings,
    renderCurlCredentials,
    restoreDatabaseName,
} from "../render/backup";
import { catalog } from "../apps";
import * as pulumi from "@pulumi/pulumi";
import { Backups } from "../components/backups";
import { definePlatform } from "../components/platform";
import { stackAppsWithDatabase } from "../commands/backup-drill";
import { BACKUP_ADMINISTRATOR, BACKUP_RECIPIENT, LOCAL_RAW, PROD_RAW, parse } from "./fixtures";
import { FAKE_PROJECT_ID, RunResult, T, isSecretValue, reveal, runProgram, unwrap } from "./harness";

const B = {
    bucket: "scaleway:object/bucket:Bucket",
    lock: "scaleway:object/bucketLockConfiguration:BucketLockConfiguration",
    policy: "scaleway:object/bucketPolicy:BucketPolicy",
    application: "scaleway:iam/application:Application",
    apiKey: "scaleway:iam/apiKey:ApiKey",
    iamPolicy: "scaleway:iam/policy:Policy",
} as const;
const OPERATOR = BACKUP_ADMINISTRATOR;
const HOST_ACCESS_KEY = "SCWABCDEFGHIJKLMNOPQ";
const HOST_SECRET_KEY = "0b2f6e1c-9a4d-4e8b-b7a2-3c5d6e7f8a9b";

describe("backups on the prod stack (mocks)", () => {
    let run: RunResult & { value: ReturnType<typeof definePlatform> };
    before(async () => {
        run = await runProgram("prod", () =>
            definePlatform(parse({ ...PROD_RAW, backupRetentionDays: "45", backupLockDays: "10", backupSchedule: "15 2 * * *", backupHeartbeatUrl: "https://hc-ping.com/abc-123" }), {
                openForward: async () => ({ host: "127.0.0.1", port: 40123, pid: 1, close: () => undefined }),
            }),
        );
    });

    it("a bucket that survives any config change: protected, retained on delete, versioned, object lock, lifecycle expiry of current and noncurrent versions", () => {
        const [bucket] = run.byType(B.bucket);
        assert.ok(bucket, "a bucket is declared");
        assert.strictEqual(bucket.protect, true);
        assert.strictEqual(bucket.retainOnDelete, true);
        assert.deepStrictEqual(bucket.inputs.versioning, { enabled: true });
        assert.strictEqual(bucket.inputs.objectLockEnabled, true);
        assert.strictEqual(bucket.inputs.region, "fr-par");
        assert.match(bucket.inputs.name, /^platform-backups-prod-/);
        assert.strictEqual(bucket.inputs.lifecycleRules.length, 1);
        const rule = bucket.inputs.lifecycleRules[0];
        assert.strictEqual(rule.enabled, true);
        assert.deepStrictEqual(rule.expiration, { days: 45 });
        assert.deepStrictEqual(rule.noncurrentVersionExpiration, { noncurrentDays: 45 });
    });

    it("object lock in GOVERNANCE mode for backupLockDays", () => {
        const [lock] = run.byType(B.lock);
        assert.deepStrictEqual(lock.inputs.rule, { defaultRetention: { mode: "GOVERNANCE", days: 10 } });
        assert.strictEqual(lock.inputs.bucket, run.byType(B.bucket)[0].inputs.name);
    });

    it("the host gets its own IAM application and API key; the bucket policy lets it put objects and nothing else, and keeps the operator's access", () => {
        const app = run.one(B.application, "backups-host");
        const key = run.one(B.apiKey, "backups-host-key");
        assert.ok(app && key);
        assert.strictEqual(key.inputs.applicationId, `${app.name}-id`);
        const policy = JSON.parse(run.byType(B.policy)[0].inputs.policy);
        assert.strictEqual(policy.Version, "2023-04-17");
        const bucketName = run.byType(B.bucket)[0].inputs.name;
        const host = policy.Statement.filter((s: any) => JSON.stringify(s.Principal).includes(`application_id:${app.name}-id`));
        assert.strictEqual(host.length, 1, "one statement names the host");
        assert.deepStrictEqual(host[0].Action, ["s3:PutObject"], "put only: no read, list or delete");
        assert.deepStrictEqual(host[0].Resource, [`${bucketName}/*`]);
        assert.strictEqual(host[0].Effect, "Allow");
        const admins = policy.Statement.find((s: any) => s.Sid === "AdministratorsKeepAccess");
        assert.deepStrictEqual(admins.Principal, { SCW: [OPERATOR] });
        assert.deepStrictEqual(admins.Action, ["s3:*"]);
        assert.ok(!policy.Statement.some((s: any) => s.Effect === "Deny"));
    });

    it("the host's IAM policy: ObjectStorageObjectsWrite only, scoped to the bucket's project, for the host's application; the key's default project is that project", () => {
        const app = run.one(B.application, "backups-host");
        const key = run.one(B.apiKey, "backups-host-key");
        const policies = run.byType(B.iamPolicy);
        assert.deepStrictEqual(policies.map((p) => p.name).sort(), ["backups-drill-policy", "backups-host-policy"], "the host's and the drill's");
        const policy = run.one(B.iamPolicy, "backups-host-policy");
        assert.strictEqual(policy.inputs.applicationId, `${app.name}-id`);
        assert.deepStrictEqual(policy.inputs.rules, [{ projectIds: [FAKE_PROJECT_ID], permissionSetNames: ["ObjectStorageObjectsWrite"] }]);
        assert.ok(!("organizationId" in policy.inputs.rules[0]), "never organisation-wide");
        assert.strictEqual(policy.inputs.noPrincipal, undefined);
        assert.strictEqual(key.inputs.defaultProjectId, FAKE_PROJECT_ID, "S3 clients cannot name a project: the key's default must be the bucket's");
    });

    it("the drill has a principal of its own: read-only IAM sets in the bucket's project, a bucket-policy statement for listing and reading this bucket only, and its key a secret output", async () => {
        const app = run.one(B.application, "backups-drill");
        const key = run.one(B.apiKey, "backups-drill-key");
        assert.strictEqual(key.inputs.applicationId, `${app.name}-id`);
        assert.strictEqual(key.inputs.defaultProjectId, FAKE_PROJECT_ID);
        const iam = run.one(B.iamPolicy, "backups-drill-policy");
        assert.strictEqual(iam.inputs.applicationId, `${app.name}-id`);
        assert.deepStrictEqual(iam.inputs.rules, [{ projectIds: [FAKE_PROJECT_ID], permissionSetNames: ["ObjectStorageObjectsRead", "ObjectStorageBucketsRead"] }]);
        const bucketName = run.byType(B.bucket)[0].inputs.name;
        const statement = JSON.parse(run.byType(B.policy)[0].inputs.policy).Statement.filter((st: any) => JSON.stringify(st.Principal).includes(`application_id:${app.name}-id`));
        assert.deepStrictEqual(statement, [{ Sid: "DrillReadsOnly", Effect: "Allow", Principal: { SCW: `application_id:${app.name}-id` }, Action: ["s3:ListBucket", "s3:GetObject"], Resource: [bucketName, `${bucketName}/*`] }]);
        assert.ok(!statement[0].Action.some((a: string) => /Put|Delete|\*/.test(a)), "no write, no delete");
        assert.strictEqual(await (run.value.backupDrillKey as unknown as { isSecret: Promise<boolean> }).isSecret, true);
    });

    it("the first backup waits out IAM propagation (a stated bound, 360 s) and runs only after the IAM policy exists", () => {
        const [schedule] = run.byType(T.remoteCommand).filter((c) => c.name === "backups-schedule");
        const create = String(reveal(schedule.inputs.create));
        assert.strictEqual(IAM_PROPAGATION_WAIT_SECONDS, 360);
        assert.match(create, /\nUPLOAD_AUTH_WAIT_SECONDS=360 UPLOAD_AUTH_RETRY_SECONDS=15 sh '\/srv\/platform\/bin\/backup\.sh' '\/srv\/platform\/backup\/backup\.env'\n/);
        assert.ok(schedule.dependencies.some((d) => d.includes("scaleway:iam/policy:Policy")), "after the IAM policy");
        // The nightly cron line has no wait: a refusal then fails at once.
        assert.match(create, /15 2 \* \* \* root sh \/srv\/platform\/bin\/backup\.sh /);
        assert.ok(!/UPLOAD_AUTH_WAIT_SECONDS=\d+ sh \/srv/.test(create.split("PLATFORM_BACKUP_EOF").filter((_, i) => i % 2 === 1).join("")), "no wait inside the installed files");
    });

    it("the schedule installs the script, settings and cron on the host, then runs one backup; the keys arrive on stdin as a secret only", () => {
        const [schedule] = run.byType(T.remoteCommand).filter((c) => c.name === "backups-schedule");
        assert.ok(schedule, "backups-schedule is a remote command");
        const create = String(reveal(schedule.inputs.create));
        assert.strictEqual(reveal(schedule.inputs.update), reveal(schedule.inputs.create), "updated in place, never replaced");
        assert.match(create, /cat > '\/srv\/platform\/bin\/backup\.sh\.new' <<'PLATFORM_BACKUP_EOF'/);
        assert.match(create, /15 2 \* \* \* root sh \/srv\/platform\/bin\/backup\.sh \/srv\/platform\/backup\/backup\.env >>\/var\/log\/platform-backup\.log 2>&1/);
        assert.match(create, /BACKUP_TARGETS='app1=app1_db app2=app2_db'/);
        assert.match(create, new RegExp(`AGE_RECIPIENT='${BACKUP_RECIPIENT}'`));
        assert.match(create, /S3_ENDPOINT='https:\/\/s3\.fr-par\.scw\.cloud'/);
        assert.match(create, /HEARTBEAT_URL='https:\/\/hc-ping\.com\/abc-123'/);
        assert.match(create, /\nUPLOAD_AUTH_WAIT_SECONDS=\d+ UPLOAD_AUTH_RETRY_SECONDS=\d+ sh '\/srv\/platform\/bin\/backup\.sh' '\/srv\/platform\/backup\/backup\.env'\n/);
        assert.match(String(schedule.inputs.delete), /rm -f '\/etc\/cron\.d\/platform-backup'/);
        // The secret key: only in stdin, as a secret; never in the command text.
        assert.ok(isSecretValue(schedule.inputs.stdin), "stdin is a secret");
        assert.ok(!isSecretValue(schedule.inputs.create) || !JSON.stringify(reveal(schedule.inputs.create)).includes("user ="));
        for (const field of ["create", "update", "delete"]) assert.ok(!/user = "|SCW[A-Z0-9]{17}:/.test(JSON.stringify(reveal(schedule.inputs[field]))), `${field} holds no key`);
        // It runs after the policy and lock exist, and after the app databases.
        assert.ok(schedule.dependencies.some((d) => d.includes("BucketPolicy")));
        assert.ok(schedule.dependencies.some((d) => d.includes("BucketLockConfiguration")));
        assert.ok(schedule.dependencies.some((d) => d.includes("AppDatabase")));
    });

    it("the API key's secret is a secret output and is never passed to a resource in plain text", async () => {
        const [key] = run.byType(B.apiKey);
        assert.strictEqual(key.inputs.secretKey, undefined);
        for (const r of run.resources) {
            if (r.type === B.apiKey) continue;
            for (const [name, value] of Object.entries(r.inputs)) {
                if (isSecretValue(value)) continue;
                assert.ok(!/user = "/.test(JSON.stringify(value)), `${r.name}.${name} carries credentials in plain text`);
            }
        }
    });

    it("stack outputs: the bucket name and the endpoint", async () => {
        assert.match(await unwrap(run.value.backupBucket!), /^platform-backups-prod-/);
        assert.strictEqual(await unwrap(run.value.backupEndpoint!), "https://s3.fr-par.scw.cloud");
    });

    it("the administrators are the reviewed config, never looked up: no IAM call, whatever key the environment holds", async () => {
        // A preview runs with a read-only key of its own; a lookup of the deploying key's principal
        // (scaleway:iam/getApiKey) would need IAM read and plan a policy for the wrong principal.
        const saved = process.env.SCW_ACCESS_KEY;
        process.env.SCW_ACCESS_KEY = "SCWPREVIEWKEY0000000";
        const invoked: string[] = [];
        try {
            const other = await runProgram("prod", () => {
                const monitor = pulumi.runtime.getMonitor() as any;
                const original = monitor.invoke.bind(monitor);
                monitor.invoke = (req: any, callback: any) => (invoked.push(req.getTok()), original(req, callback));
                return definePlatform(parse(PROD_RAW), { openForward: async () => ({ host: "127.0.0.1", port: 40123, pid: 1, close: () => undefined }) });
            });
            const policy = JSON.parse(other.byType(B.policy)[0].inputs.policy);
            assert.deepStrictEqual(policy.Statement.find((s: any) => s.Sid === "AdministratorsKeepAccess").Principal, { SCW: [OPERATOR] });
        } finally {
            if (saved === undefined) delete process.env.SCW_ACCESS_KEY;
            else process.env.SCW_ACCESS_KEY = saved;
        }
        assert.deepStrictEqual(invoked.filter((t) => t.startsWith("scaleway:")), [], "the program asks Scaleway nothing");
    });

    it("a Backups component on a scaleway host without administrators fails before declaring anything", async () => {
        const registered: string[] = [];
        await assert.rejects(
            runProgram("prod", () => {
                const monitor = pulumi.runtime.getMonitor() as any;
                const original = monitor.registerResource.bind(monitor);
                monitor.registerResource = (req: any, callback: any) => (registered.push(req.getType()), original(req, callback));
                return new Backups("backups", { host: { kind: "scaleway" } as any, apps: ["app1"], settings: parse(PROD_RAW).backup, region: "fr-par" });
            }),
            /platform:backupAdministrators is required on the scaleway target/,
        );
        assert.deepStrictEqual(registered.filter((t) => t !== "platform:backup:Backups"), [], "no bucket, key or policy was declared");
    });
});

describe("backups on the local stack (mocks)", () => {
    it("no backup without an app database; with one, a local command backs up into the git-ignored state dir", async () => {
        const none = await runProgram("local", () => definePlatform(parse({ ...LOCAL_RAW, apps: "{}" })));
        assert.strictEqual(none.byType(B.bucket).length, 0);
        assert.strictEqual(await unwrap(none.value.backupBucket as any), undefined);
        const withDb = await runProgram("local", () => definePlatform(parse({ ...LOCAL_RAW, apps: JSON.stringify({ app1: "1.0.0", demo: "1.27-alpine" }) })));
        assert.strictEqual(withDb.byType(B.bucket).length, 0, "no cloud resource on the local stack");
        const [now] = withDb.byType(T.localCommand).filter((c) => c.name === "backups-now");
        const create = String(now.inputs.create);
        assert.match(create, /age-keygen -o '[^']*\.platform\/local\/backup-identity\.txt'/);
        assert.match(create, /AGE_RECIPIENTS_FILE='[^']*\.platform\/local\/backup-recipient\.txt'/);
        assert.match(create, /BACKUP_DIR='[^']*\.platform\/local\/backups'/);
        assert.match(create, new RegExp(`BACKUP_TARGETS='${["app1", "demo"].filter((a) => catalog[a].database).map((a) => `${a}=${a}_db`).join(" ")}'`));
        assert.match(create, /if ! command -v age/, "a machine without age still comes up, with a notice");
        assert.match(await unwrap(withDb.value.backupEndpoint!), /^file:\/\/.*\.platform\/local\/backups$/);
    });
});

describe("backup rules (render/backup.ts)", () => {
    it("names: keys sort by time, parse back, and refuse anything else in the bucket", () => {
        const at = new Date("2026-01-02T03:30:00.123Z");
        const key = backupKey("app1", at);
        assert.strictEqual(key, "app1/app1-20260102T033000Z.tar.age");
        assert.deepStrictEqual(parseBackupKey(key, 10), { app: "app1", name: "app1-20260102T033000Z", key, createdAt: new Date("2026-01-02T03:30:00Z"), bytes: 10 });
        for (const bad of ["app1/app2-20260102T033000Z.tar.age", "app1/app1-20261302T033000Z.tar.age", "app1/app1-20260102T033000Z.tar", "../app1/app1-20260102T033000Z.tar.age", "app1/.app1-20260102T033000Z.partial"]) {
            assert.strictEqual(parseBackupKey(bad), undefined, bad);
        }
        assert.throws(() => backupKey("App1;rm", at));
        const refs = ["app1/app1-20260101T000000Z.tar.age", "app1/app1-20260103T000000Z.tar.age", "app1/app1-20260102T000000Z.tar.age"].map((k) => parseBackupKey(k)!);
        assert.strictEqual(chooseBackup(refs, "app1").name, "app1-20260103T000000Z");
        assert.strictEqual(chooseBackup(refs, "app1", "app1-20260101T000000Z").name, "app1-20260101T000000Z");
        assert.throws(() => chooseBackup(refs, "app1", "app1-2025"), /no backup of app1 is named "app1-2025"; the newest are: app1-20260103T000000Z/);
        assert.throws(() => chooseBackup([], "app1"), /no backup of app1 found/);
    });

    it("restore and kept database names are plain identifiers of at most 63 bytes", () => {
        assert.strictEqual(restoreDatabaseName("app1_db", "app1-20260102T033000Z"), "app1_db_restore_20260102t033000z");
        assert.strictEqual(keptDatabaseName("app1_db", new Date("2026-01-05T10:10:10Z")), "app1_db_before_20260105t101010z");
        const longest = "a".repeat(31).replace(/-/g, "_") + "_db";
        assert.ok(restoreDatabaseName(longest, `x-20260102T033000Z`).length <= 63);
        assert.throws(() => restoreDatabaseName("app1_db", "app1-nope"));
        assert.throws(() => keptDatabaseName('x"; DROP DATABASE y; --', new Date()));
    });

    it("the manifest is checked strictly", () => {
        const good = {
            format: "platform-backup/1",
            name: "app1-20260102T033000Z",
            app: "app1",
            database: "app1_db",
            role: "app_app1",
            createdAt: "2026-01-02T03:30:00Z",
            server: { version: "15.10", versionNum: 150010 },
            pgDump: "pg_dump (PostgreSQL) 15.10",
            tables: [{ schema: "public", table: "orders", rows: 3 }],
            dump: { file: "app1_db.pgdump", bytes: 10, sha256: "a".repeat(64) },
            globals: { file: "globals.sql", bytes: 5, sha256: "b".repeat(64) },
        };
        assert.strictEqual(parseManifest(JSON.stringify(good)).tables[0].rows, 3);
        const bad: [object, RegExp][] = [
            [{ ...good, format: "other" }, /format/],
            [{ ...good, database: "postgres" }, /names database "postgres"/],
            [{ ...good, role: "postgres" }, /names role/],
            [{ ...good, name: "app1-20250102T033000Z" }, /does not match its app and time/],
            [{ ...good, tables: [{ schema: "public", table: "orders", rows: -1 }] }, /bad table entry/],
            [{ ...good, dump: { ...good.dump, file: "../../etc/passwd" } }, /dump file/],
            [{ ...good, dump: { ...good.dump, sha256: "zz" } }, /sha256/],
        ];
        for (const [m, re] of bad) assert.throws(() => parseManifest(JSON.stringify(m)), re);
        assert.throws(() => parseManifest("not json"), /not JSON/);
    });

    it("row counts are compared table by table, both ways", () => {
        const t = (table: string, rows: number) => ({ schema: "public", table, rows });
        assert.deepStrictEqual(compareRowCounts([t("a", 1), t("b", 2)], [t("b", 2), t("a", 1)]), []);
        assert.deepStrictEqual(compareRowCounts([t("a", 1), t("b", 2)], [t("a", 0), t("c", 5)]), [
            'table "public"."a" has 0 rows, manifest says 1',
            'table "public"."b" is missing (manifest: 2 rows)',
            'table "public"."c" (5 rows) is not in the manifest',
        ]);
    });

    it("freshness: older than 26 hours, missing, or dated in the future is a problem", () => {
        const now = new Date("2026-01-03T06:00:00Z");
        const ref = (stamp: string) => parseBackupKey(`app1/app1-${stamp}.tar.age`)!;
        assert.deepStrictEqual(freshnessProblems([{ app: "app1", newest: ref("20260102T043000Z") }], now), []);
        assert.match(freshnessProblems([{ app: "app1", newest: ref("20260102T033000Z") }], now)[0], /26\.5 h old \(limit 26 h\)/);
        assert.match(freshnessProblems([{ app: "app1" }], now)[0], /app1: no backup at all/);
        assert.match(freshnessProblems([{ app: "app1", newest: ref("20260104T033000Z") }], now)[0], /in the future/);
    });

    it("the settings file: every value validated and single-quoted; the shell reads back exactly the values", () => {
        const text = renderBackupSettings({
            apps: ["app1", "app2"],
            recipient: { key: BACKUP_RECIPIENT },
            destination: { kind: "s3", endpoint: "https://s3.fr-par.scw.cloud", bucket: "platform-backups-prod-abc", region: "fr-par", credentialsFile: "/srv/platform/backup/s3-credentials" },
            signingKeyFile: "/srv/platform/backup/signing-key.pem",
            heartbeatUrl: "https://hc-ping.com/abc/",
        });
        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "platform-settings-")), "backup.env");
        fs.writeFileSync(file, text);
        const r = spawnSync("sh", ["-c", '. "$1"; printf "%s|%s|%s|%s|%s" "$BACKUP_TARGETS" "$AGE_RECIPIENT" "$S3_BUCKET" "$HEARTBEAT_URL" "$SIGNING_KEY_FILE"', "sh", file], { encoding: "utf8" });
        assert.strictEqual(r.stdout, `app1=app1_db app2=app2_db|${BACKUP_RECIPIENT}|platform-backups-prod-abc|https://hc-ping.com/abc|/srv/platform/backup/signing-key.pem`);
    });

    it("hostile values never reach the settings file, the cron line or the curl config", () => {
        const base = {
            apps: ["app1"],
            recipient: { key: BACKUP_RECIPIENT },
            destination: { kind: "s3" as const, endpoint: "https://s3.fr-par.scw.cloud", bucket: "b-ok", region: "fr-par", credentialsFile: "/srv/x" },
            signingKeyFile: "/srv/platform/backup/signing-key.pem",
        };
        const hostile: [Parameters<typeof renderBackupSettings>[0], RegExp][] = [
            [{ ...base, signingKeyFile: "/srv/x'; rm -rf / #" }, /signing key file .* is not a plain absolute path/],
            [{ ...base, signingKeyFile: "relative.pem" }, /signing key file .* is not a plain absolute path/],
            [{ ...base, apps: ["app1; rm -rf /"] }, /cannot name a database/],
            [{ ...base, recipient: { key: "age1'$(reboot)'" } }, /not an age1/],
            [{ ...base, recipient: { file: "/tmp/x'; reboot; '" } }, /plain absolute path/],
            [{ ...base, destination: { ...base.destination, endpoint: "https://evil.example/$(id)" } }, /S3 endpoint/],
            [{ ...base, destination: { ...base.destination, endpoint: "http://s3.example.com" } }, /S3 endpoint/],
            [{ ...base, destination: { ...base.destination, bucket: "b'; reboot; '" } }, /bucket name/],
            [{ ...base, destination: { ...base.destination, region: "fr-par\nreboot" } }, /region/],
            [{ ...base, destination: { kind: "directory", directory: "relative/dir" } }, /plain absolute path/],
            [{ ...base, heartbeatUrl: "https://hc-ping.com/x?token=1&y=$(id)" }, /heartbeat/],
            [{ ...base, heartbeatUrl: "http://hc-ping.com/x" }, /heartbeat/],
            [{ ...base, apps: [] }, /no app/],
        ];
        for (const [settings, re] of hostile) assert.throws(() => renderBackupSettings(settings), re);
        for (const schedule of ["30 3 * * * root reboot", "30 3 * *", "30 3 * * *\n* * * * * root reboot", "@daily", "30 3 * * % "]) {
            assert.throws(() => renderBackupCron(schedule), /cron schedule/, JSON.stringify(schedule));
        }
        assert.match(renderBackupCron(" 30  3 * * 1-5 "), /\n30 3 \* \* 1-5 root sh /);
        assert.strictEqual(renderCurlCredentials(HOST_ACCESS_KEY, HOST_SECRET_KEY), `user = "${HOST_ACCESS_KEY}:${HOST_SECRET_KEY}"\n`);
        for (const [ak, sk] of [
            ["SCWABC", HOST_SECRET_KEY],
            [HOST_ACCESS_KEY, 'x"\nurl = "https://evil'],
            [HOST_ACCESS_KEY, "not-a-uuid"],
        ]) {
            assert.throws(
                () => renderCurlCredentials(ak, sk),
                (e: Error) => !e.message.includes(sk) || sk === HOST_SECRET_KEY,
            );
        }
        assert.throws(() => renderCurlCredentials("a", 'b"\nurl="x', false), /cannot carry/);
    });

    it("the database target (container, user) reaches the settings single-quoted and validated; the shell reads back exactly the values", () => {
        const base = {
            apps: ["app1"],
            recipient: { key: BACKUP_RECIPIENT },
            destination: { kind: "s3" as const, endpoint: "https://s3.fr-par.scw.cloud", bucket: "b-ok", region: "fr-par", credentialsFile: "/srv/x" },
            signingKeyFile: "/srv/platform/backup/signing-key.pem",
        };
        assert.doesNotMatch(renderBackupSettings(base), /PG_CONTAINER|PG_USER/, "no target: the script's defaults (the container database)");
        const text = renderBackupSettings({ ...base, database: MANAGED_DATABASE_TARGET });
        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "platform-settings-")), "backup.env");
        fs.writeFileSync(file, text);
        const r = spawnSync("sh", ["-c", '. "$1"; printf "%s|%s" "$PG_CONTAINER" "$PG_USER"', "sh", file], { encoding: "utf8" });
        assert.strictEqual(r.stdout, "platform-pg-client|platform_admin");
        const hostile: [string, string, RegExp][] = [
            ["platform-pg-client; reboot", "platform_admin", /container name/],
            ["$(reboot)", "platform_admin", /container name/],
            ["-it", "platform_admin", /container name/],
            ["", "platform_admin", /container name/],
            ["platform-pg-client", "admin'; reboot; '", /database user/],
            ["platform-pg-client", "Platform_Admin", /database user/],
            ["platform-pg-client", "-U", /database user/],
            ["platform-pg-client", "a\nb", /database user/],
            ["platform-pg-client", "", /database user/],
        ];
        for (const [container, user, re] of hostile) {
            assert.throws(() => renderBackupSettings({ ...base, database: { container, user } }), re, `${container} / ${user}`);
            assert.throws(() => checkDatabaseTarget({ container, user }), re);
        }
    });

    it("the script refuses a hostile PG_CONTAINER or PG_USER from its environment before running anything", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-pgtarget-"));
        const log = path.join(dir, "docker.log");
        fs.writeFileSync(path.join(dir, "docker"), `#!/bin/sh\necho "$*" >> ${log}\nexit 1\n`, { mode: 0o755 });
        for (const [name, value] of [
            ["PG_CONTAINER", "x;touch /tmp/pwned-pg"],
            ["PG_CONTAINER", "-e"],
            ["PG_USER", "postgres -c x"],
            ["PG_USER", "$(id)"],
        ]) {
            const r = spawnSync("sh", [path.join(__dirname, "..", "hostScripts", "backup.sh")], {
                encoding: "utf8",
                env: { PATH: `${dir}:${process.env.PATH}`, BACKUP_TARGETS: "app1=app1_db", AGE_RECIPIENT: BACKUP_RECIPIENT, BACKUP_DIR: dir, [name]: value },
            });
            assert.notStrictEqual(r.status, 0, `${name}=${value}`);
            assert.match(r.stderr, new RegExp(`bad ${name}`));
        }
        assert.ok(!fs.existsSync(log), "docker never ran");
        assert.ok(!fs.existsSync("/tmp/pwned-pg"));
    });

    it("the manifest's globalsMode is optional (older backups) and one of three values", () => {
        const good = {
            format: "platform-backup/1",
            name: "app1-20260102T033000Z",
            app: "app1",
            database: "app1_db",
            role: "app_app1",
            createdAt: "2026-01-02T03:30:00Z",
            server: { version: "16.4", versionNum: 160004 },
            pgDump: "pg_dump (PostgreSQL) 16.6",
            tables: [],
            dump: { file: "app1_db.pgdump", bytes: 10, sha256: "a".repeat(64) },
            globals: { file: "globals.sql", bytes: 5, sha256: "b".repeat(64) },
        };
        assert.strictEqual(parseManifest(JSON.stringify(good)).globalsMode, undefined);
        for (const mode of ["globals", "roles-only", "none"] as const) assert.strictEqual(parseManifest(JSON.stringify({ ...good, globalsMode: mode })).globalsMode, mode);
        assert.throws(() => parseManifest(JSON.stringify({ ...good, globalsMode: "everything" })), /globalsMode "everything"/);
    });

    it("the bucket policy refuses a missing or malformed administrator", () => {
        assert.throws(() => firstBackupEnvironment(-1), /whole number of seconds/);
        assert.throws(() => firstBackupEnvironment(1.5), /whole number of seconds/);
        assert.throws(() => firstBackupEnvironment(NaN as number), /whole number of seconds/);
        assert.throws(() => firstBackupEnvironment(60, 99999), /whole number of seconds/);
        assert.throws(() => backupBucketPolicy("bucket-ok", "id", []), /at least one administrator/);
        assert.throws(() => backupBucketPolicy("bucket-ok", "id", ["*"]), /user_id:<uuid>/);
    });

    it("the drill checks the apps with a database that the stack's file lists", () => {
        const withDatabase = ["app1", "app2", "demo"].filter((a) => catalog[a].database).sort();
        assert.deepStrictEqual(stackAppsWithDatabase("config:\n  platform:apps:\n    demo: 1.27-alpine\n    app2: 1.0.0\n    app1: 1.4.2\n    nope: 1.0.0\n"), withDatabase);
        assert.deepStrictEqual(stackAppsWithDatabase("config:\n  platform:target: scaleway\n"), []);
    });
});

describe("the backup drill workflow (.github/workflows/backup-drill.yml)", () => {
    const text = fs.readFileSync(path.join(__dirname, "..", ".github", "workflows", "backup-drill.yml"), "utf8");
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const wf = (require("js-yaml") as typeof import("js-yaml")).load(text) as any;

    it("runs daily and on demand, read-only, one at a time, failing the run on any problem", () => {
        assert.match(wf.on.schedule[0].cron, /^\d+ \d+ \* \* \*$/);
        assert.ok("workflow_dispatch" in wf.on);
        assert.deepStrictEqual(wf.permissions, { contents: "read" });
        assert.strictEqual(wf.jobs.drill.permissions, undefined, "no job widens the permissions");
        assert.strictEqual(wf.concurrency["cancel-in-progress"], false);
        const drill = wf.jobs.drill.steps.find((s: any) => typeof s.run === "string" && s.run.includes("backup:drill"));
        assert.match(drill.run, /^npm run backup:drill -- --stack prod$/);
        assert.ok(!/continue-on-error/.test(text), "a failure must fail the run");
    });

    it("third-party actions are pinned by full commit SHA with the version in a comment", () => {
        const uses = text.split("\n").filter((l) => /^\s*-?\s*uses:/.test(l));
        assert.ok(uses.length >= 2);
        for (const line of uses) assert.match(line, /uses: [\w.-]+\/[\w.-]+@[0-9a-f]{40} # v\d+(\.\d+)*$/, line);
    });

    it("secrets reach the drill through env only, never inlined into a script", () => {
        for (const step of wf.jobs.drill.steps) if (typeof step.run === "string") assert.ok(!/\$\{\{/.test(step.run), step.run);
        const env = wf.jobs.drill.steps.find((s: any) => s.env?.BACKUP_IDENTITY).env;
        assert.strictEqual(env.BACKUP_IDENTITY, "${{ secrets.BACKUP_AGE_IDENTITY }}");
        // The drill's own read-only key (stack output backupDrillKey), never the deploying identity's.
        assert.strictEqual(env.SCW_ACCESS_KEY, "${{ secrets.DRILL_SCW_ACCESS_KEY }}");
        assert.strictEqual(env.SCW_SECRET_KEY, "${{ secrets.DRILL_SCW_SECRET_KEY }}");
        assert.doesNotMatch(JSON.stringify(wf), /secrets\.SCW_(ACCESS|SECRET)_KEY/);
    });
});

describe("the restore command's arguments (commands/restore.ts)", () => {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { checkTrust, parseArgs, resolveTargets } = require("../commands/restore") as typeof import("../commands/restore");

    it("parses the documented forms", () => {
        assert.deepStrictEqual(parseArgs(["--stack", "prod", "--app", "app1", "--latest", "--dry-run"]), { stack: "prod", app: "app1", latest: true, dryRun: true, list: false, yes: false, allowUnsigned: false });
        assert.strictEqual(parseArgs(["--app", "app1", "--backup", "app1-20260102T033000Z", "--allow-unsigned"]).allowUnsigned, true);
        assert.throws(() => parseArgs(["--app", "app1", "--latest", "--allow-unsigned"]), /--allow-unsigned takes one backup only: name it with --backup NAME/);
        assert.strictEqual(parseArgs(["--app", "app1", "--latest", "--yes"]).yes, true);
        assert.strictEqual(parseArgs(["--app", "app1", "--backup", "app1-20260102T033000Z"]).backup, "app1-20260102T033000Z");
    });

    it("refuses hostile or ambiguous input before anything runs", () => {
        for (const argv of [[], ["--app"], ["--app", "app1;reboot"], ["--app", "app1", "--stack", "prod; reboot"], ["--app", "app1", "--backup", "x", "--latest"], ["--app", "app1", "--bogus"]]) {
            assert.throws(() => parseArgs(argv), Error, JSON.stringify(argv));
        }
        const outputs = () => ({ backupBucket: "b'; reboot", backupEndpoint: "https://s3.fr-par.scw.cloud", publicIp: "1.2.3.4" });
        assert.throws(() => resolveTargets(parseArgs(["--stack", "prod", "--app", "app1", "--identity", "/k"]), outputs), /no valid backup bucket/);
        assert.throws(() => resolveTargets(parseArgs(["--app", "app1", "--ssh", "root@1.2.3.4;reboot", "--dir", "/tmp", "--identity", "/k"]), outputs), /not user@host/);
    });

    it("prod: reads bucket, endpoint and host from the stack outputs, needs the operator's own keys and age key", () => {
        const outputs = () => ({ backupBucket: "platform-backups-prod-abc", backupEndpoint: "https://s3.fr-par.scw.cloud", publicIp: "51.15.200.7" });
        const saved = { ak: process.env.SCW_ACCESS_KEY, sk: process.env.SCW_SECRET_KEY, id: process.env.PLATFORM_BACKUP_IDENTITY };
        try {
            delete process.env.SCW_ACCESS_KEY;
            delete process.env.PLATFORM_BACKUP_IDENTITY;
            assert.throws(() => resolveTargets(parseArgs(["--stack", "prod", "--app", "app1", "--identity", "/k"]), outputs), /set SCW_ACCESS_KEY and SCW_SECRET_KEY/);
            process.env.SCW_ACCESS_KEY = "SCWABCDEFGHIJKLMNOPQ";
            process.env.SCW_SECRET_KEY = "0b2f6e1c-9a4d-4e8b-b7a2-3c5d6e7f8a9b";
            assert.throws(() => resolveTargets(parseArgs(["--stack", "prod", "--app", "app1"]), outputs), /--identity FILE/);
            // Host 0's address and pinned key come from the state (pulumi stack export), not from publicIp
            // (the load balancer's address on a several-host stack); platform:database picks the container.
            const sshBase = fs.mkdtempSync(path.join(os.tmpdir(), "platform-restore-args-"));
            const state = () => ({
                deployment: {
                    resources: [{ urn: "urn:pulumi:prod::platform::platform:host:ScalewayHost::host", type: "platform:host:ScalewayHost", outputs: { publicAddress: "51.15.200.8", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHMbJt8HkIVb3cQzQ0k7m4eqK5QdKHnXk0t7L1CTbsRM" } }],
                },
            });
            const pins = `  platform:backupSigningKeys:\n    - ${TEST_SIGNING_KEY.publicKey}\n`;
            const readers = (database?: string) => ({ state, project: "platform", env: { PLATFORM_SSH_DIR: sshBase }, stackYaml: () => `config:\n${pins}${database ? `  platform:database: ${database}\n` : ""}` });
            // Nothing pinned: no backup can be trusted, and the restore says how to pin one before anything runs.
            const unpinned = resolveTargets(parseArgs(["--stack", "prod", "--app", "app1", "--identity", "/k"]), outputs, { ...readers(), stackYaml: () => "config: {}\n" });
            unpinned.cleanup();
            assert.throws(() => checkTrust(parseArgs(["--stack", "prod", "--app", "app1"]), unpinned.trust), /pins no backup signing key .*npm run backup:signing-key -- --stack prod/);
            assert.doesNotThrow(() => checkTrust(parseArgs(["--stack", "prod", "--app", "app1", "--list"]), unpinned.trust), "listing needs no pin");
            const t = resolveTargets(parseArgs(["--stack", "prod", "--app", "app1", "--identity", "/k"]), outputs, readers());
            assert.strictEqual(t.store.describe(), "s3://platform-backups-prod-abc at https://s3.fr-par.scw.cloud");
            assert.strictEqual(t.runner.description, "ssh root@51.15.200.8 docker exec platform-postgres as postgres");
            t.cleanup();
            const managed = resolveTargets(parseArgs(["--stack", "prod", "--app", "app1", "--identity", "/k"]), outputs, readers("managed"));
            assert.strictEqual(managed.runner.description, "ssh root@51.15.200.8 docker exec platform-pg-client as platform_admin");
            managed.cleanup();
            const overridden = resolveTargets(parseArgs(["--stack", "prod", "--app", "app1", "--identity", "/k", "--database", "container"]), outputs, readers("managed"));
            assert.strictEqual(overridden.runner.description, "ssh root@51.15.200.8 docker exec platform-postgres as postgres");
            overridden.cleanup();
            assert.throws(() => parseArgs(["--app", "app1", "--database", "both"]), /not container or managed/);
            assert.throws(() => resolveTargets(parseArgs(["--stack", "prod", "--app", "app1", "--identity", "/k"]), outputs, { ...readers(), stackYaml: () => "config:\n  platform:database: mysql\n" }), /platform:database is "mysql"/);
            // --list needs no host at all.
            const listing = resolveTargets(parseArgs(["--stack", "prod", "--app", "app1", "--identity", "/k", "--list"]), outputs, { state: () => { throw new Error("not read"); } });
            assert.strictEqual(listing.runner.description, "(listing only)");
            fs.rmSync(sshBase, { recursive: true, force: true });
            const localDir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-restore-local-"));
            const before = resolveTargets(parseArgs(["--stack", "local", "--app", "app1"]), () => ({}), { localDir, stackYaml: () => "config: {}\n" });
            assert.throws(() => checkTrust(parseArgs(["--stack", "local", "--app", "app1"]), before.trust), /no backup signing key yet.*npm run local:up/);
            fs.writeFileSync(path.join(localDir, "backup-signing-key.pub"), `${TEST_SIGNING_KEY.publicKey}\n`);
            const local = resolveTargets(parseArgs(["--stack", "local", "--app", "app1"]), () => ({}), { localDir, stackYaml: () => "config: {}\n" });
            assert.deepStrictEqual(local.trust.keys, [{ publicKey: TEST_SIGNING_KEY.publicKey }], "the local stack trusts the key its deployment generated");
            assert.match(local.store.describe(), /\.platform\/local\/backups$/);
            assert.strictEqual(local.runner.description, "docker exec platform-postgres as postgres");
            assert.match(local.identity ?? "", /\.platform\/local\/backup-identity\.txt$/);
            fs.rmSync(localDir, { recursive: true, force: true });
        } finally {
            for (const [k, v] of [["SCW_ACCESS_KEY", saved.ak], ["SCW_SECRET_KEY", saved.sk], ["PLATFORM_BACKUP_IDENTITY", saved.id]] as const) {
                if (v === undefined) delete process.env[k];
                else process.env[k] = v;
            }
        }
    });
});
