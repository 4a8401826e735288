// The daily restore drill (.github/workflows/backup-drill.yml), runnable anywhere:
//   npm run backup:drill -- --stack prod [--apps app1,app2]
// For every app of the stack that has a database: the newest backup signed by a key the stack file pins
// (platform:backupSigningKeys) must be younger than 26 hours, and no refused one newer than it,
// decrypt with the operator's key, restore into a throwaway PostgreSQL started here, and hold exactly
// the row counts of its manifest. Any failure exits 1 with one line per problem (GitHub then notifies).
// Environment: SCW_ACCESS_KEY, SCW_SECRET_KEY (read access to the bucket), BACKUP_BUCKET,
// BACKUP_ENDPOINT (https://s3.<region>.scw.cloud), BACKUP_REGION (optional), and the age private key
// as a file (BACKUP_IDENTITY_FILE) or its text (BACKUP_IDENTITY); DRILL_HEARTBEAT_URL (optional).
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import { catalog } from "../apps";
import { MAX_BACKUP_AGE_HOURS, formatBytes, freshnessProblems, isBucketName, isS3Endpoint, regionOfEndpoint, restoreDatabaseName } from "../render/backup";
import { bytesSoFar, withProgress } from "../io/progress";
import { BackupStore, Log, PgRunner, S3BackupStore, directRunner, openBackup, restoreIntoNewDatabase, sql } from "../io/restore";
import { quoteIdentifier, quoteLiteral } from "../render/postgres";
import { S3Client } from "../io/s3";
import { startCluster } from "../io/throwawayPostgres";
import { PROJECT_ROOT } from "../hostScripts";
import { noTrustedKeyMessage, stackSigningKeys } from "../io/backupTrust";

export interface DrillOptions {
    readonly store: BackupStore;
    readonly apps: readonly string[];
    readonly identityFile: string;
    /** A throwaway server: the drill creates the app roles it needs and drops what it restored. */
    readonly runner: PgRunner;
    readonly log?: Log;
    readonly now?: () => Date;
    readonly maxAgeHours?: number;
    /** A long step prints a progress line this often (default 10 s). */
    readonly progressMs?: number;
}

/** Runs the drill; resolves with one line per problem (empty: every app passed). */
export async function runDrill(o: DrillOptions): Promise<string[]> {
    const log = o.log ?? ((l: string) => console.log(l));
    const now = o.now ?? (() => new Date());
    const problems: string[] = [];
    for (const app of o.apps) {
        const started = Date.now();
        let refs;
        try {
            refs = await o.store.list(app);
        } catch (e) {
            problems.push(`${app}: cannot list backups: ${(e as Error).message}`);
            continue;
        }
        // A refused backup newer than every trusted one is what a forgery (or a host signing with an
        // unpinned key) looks like: the drill fails on it, and still checks the newest trusted one.
        const refused = await o.store.refused(app);
        const newestTrusted = refs.length > 0 ? refs[0].createdAt.getTime() : -Infinity;
        const newer = refused.filter((r) => r.ref.createdAt.getTime() > newestTrusted);
        for (const r of newer) problems.push(`${app}: ${r.ref.name} is refused: ${r.reason}`);
        const older = refused.length - newer.length;
        if (older > 0) log(`${app}: ${older} older backup(s) refused (unsigned from before signing, or not trusted): \`npm run restore -- --list\` says why`);
        const stale = freshnessProblems([{ app, newest: refs[0] }], now(), o.maxAgeHours ?? MAX_BACKUP_AGE_HOURS);
        problems.push(...stale);
        if (refs.length === 0) continue;
        const newest = refs[0];
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-drill-"));
        try {
            const encrypted = path.join(dir, "backup.tar.age");
            const size = () => (fs.existsSync(encrypted) ? fs.statSync(encrypted).size : 0);
            await withProgress(log, `${app}: download`, () => o.store.download(newest, encrypted), { everyMs: o.progressMs, detail: () => bytesSoFar(size(), newest.bytes, formatBytes) });
            const opened = await withProgress(log, `${app}: decrypt`, () => openBackup(encrypted, o.identityFile, dir, app, newest.name), { everyMs: o.progressMs });
            const { manifest } = opened;
            // The throwaway server has none of the platform's roles: create the app's, owning nothing else.
            await sql(o.runner, "postgres", `SELECT ${quoteLiteral(`CREATE ROLE ${quoteIdentifier(manifest.role)} NOLOGIN`)} WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${quoteLiteral(manifest.role)})\\gexec\n`);
            const target = restoreDatabaseName(manifest.database, manifest.name);
            const counts = await withProgress(log, `${app}: restore`, () => restoreIntoNewDatabase(o.runner, opened, target, () => undefined), { everyMs: o.progressMs, detail: () => `pg_restore of ${formatBytes(manifest.dump.bytes)}` });
            await sql(o.runner, "postgres", `DROP DATABASE ${quoteIdentifier(target)};`);
            const rows = counts.reduce((s, c) => s + c.rows, 0);
            if (stale.length === 0) {
                log(`${app}: OK — ${newest.name} (${((now().getTime() - newest.createdAt.getTime()) / 3_600_000).toFixed(1)} h old) restored into PostgreSQL and matches its manifest: ${counts.length} table(s), ${rows} row(s), ${((Date.now() - started) / 1000).toFixed(1)} s`);
            } else {
                log(`${app}: restorable but STALE — ${newest.name}`);
            }
        } catch (e) {
            problems.push(`${app}: ${newest.name}: ${(e as Error).message}`);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    }
    for (const p of problems) log(`PROBLEM ${p}`);
    return problems;
}

/** Apps of a stack that have a database: its Pulumi.<stack>.yaml `platform:apps` keys, per the catalog. */
export function stackAppsWithDatabase(stackYaml: string): string[] {
    const doc = yaml.load(stackYaml) as { config?: Record<string, unknown> } | undefined;
    let apps = doc?.config?.["platform:apps"] ?? {};
    if (typeof apps === "string") apps = JSON.parse(apps);
    if (typeof apps !== "object" || apps === null || Array.isArray(apps)) throw new Error("platform:apps is not a map of app → release");
    return Object.keys(apps)
        .filter((name) => Object.prototype.hasOwnProperty.call(catalog, name) && catalog[name].database)
        .sort();
}

function arg(args: string[], name: string): string | undefined {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
}

export const DRILL_USAGE = "usage: npm run backup:drill -- [--stack <stack>] [--apps app1,app2]   (environment: SCW_ACCESS_KEY, SCW_SECRET_KEY, BACKUP_BUCKET, BACKUP_ENDPOINT, BACKUP_IDENTITY or BACKUP_IDENTITY_FILE)";

/** The drill's arguments: only --stack and --apps, each with a value. */
export function drillArgsProblem(argv: readonly string[]): string | undefined {
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] !== "--stack" && argv[i] !== "--apps") return `unknown argument ${JSON.stringify(argv[i])}\n${DRILL_USAGE}`;
        const value = argv[++i];
        if (value === undefined || value.startsWith("--")) return `${argv[i - 1]} needs a value\n${DRILL_USAGE}`;
    }
    return undefined;
}

async function main(): Promise<number> {
    const args = process.argv.slice(2);
    if (args.includes("--help") || args.includes("-h")) {
        console.log(DRILL_USAGE);
        return 0;
    }
    const problem = drillArgsProblem(args);
    if (problem !== undefined) throw new Error(problem);
    const stack = arg(args, "--stack") ?? "prod";
    if (!/^[a-z0-9-]+$/.test(stack)) throw new Error(`bad stack name ${JSON.stringify(stack)}`);
    const stackYaml = fs.readFileSync(path.join(PROJECT_ROOT, `Pulumi.${stack}.yaml`), "utf8");
    const apps = arg(args, "--apps")?.split(",").filter(Boolean) ?? stackAppsWithDatabase(stackYaml);
    const keys = stackSigningKeys(stack, stackYaml);
    if (keys.length === 0) throw new Error(noTrustedKeyMessage(stack));
    const bucket = process.env.BACKUP_BUCKET ?? "";
    const endpoint = process.env.BACKUP_ENDPOINT ?? "";
    const region = process.env.BACKUP_REGION || regionOfEndpoint(endpoint) || "";
    const missing = ["SCW_ACCESS_KEY", "SCW_SECRET_KEY", "BACKUP_BUCKET", "BACKUP_ENDPOINT"].filter((k) => !process.env[k]);
    if (missing.length > 0) throw new Error(`set ${missing.join(", ")} (repository secrets/variables of the drill workflow)`);
    if (!isBucketName(bucket) || !isS3Endpoint(endpoint) || !region) throw new Error("BACKUP_BUCKET, BACKUP_ENDPOINT or BACKUP_REGION is not valid");
    let identityFile = process.env.BACKUP_IDENTITY_FILE;
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "platform-drill-key-"));
    if (!identityFile) {
        if (!process.env.BACKUP_IDENTITY) throw new Error("set BACKUP_IDENTITY (the age private key) or BACKUP_IDENTITY_FILE");
        identityFile = path.join(scratch, "identity.txt");
        fs.writeFileSync(identityFile, process.env.BACKUP_IDENTITY.trim() + "\n", { mode: 0o600 });
    }
    const store = new S3BackupStore(new S3Client({ endpoint, region, bucket, accessKey: process.env.SCW_ACCESS_KEY!, secretKey: process.env.SCW_SECRET_KEY! }), { keys });
    console.log(`drill: ${apps.length} app(s) of stack ${stack} (${apps.join(", ") || "none"}), backups in ${store.describe()}, freshness limit ${MAX_BACKUP_AGE_HOURS} h`);
    const cluster = await startCluster();
    console.log(`drill: throwaway PostgreSQL ${cluster.major} on 127.0.0.1:${cluster.port}`);
    const lines: string[] = [];
    let problems: string[];
    try {
        problems = await runDrill({
            store,
            apps,
            identityFile,
            runner: directRunner({ host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, binDir: cluster.binDir }),
            log: (l) => {
                lines.push(l);
                console.log(l);
            },
        });
        if (apps.length === 0) problems.push(`stack ${stack} has no app with a database: nothing to check (pass --apps to override)`);
    } finally {
        cluster.stop();
        fs.rmSync(scratch, { recursive: true, force: true });
    }
    if (process.env.GITHUB_STEP_SUMMARY) {
        fs.appendFileSync(process.env.GITHUB_STEP_SUMMARY, `## Backup drill: ${problems.length === 0 ? "passed" : "FAILED"}\n\n${lines.map((l) => `- ${l}`).join("\n")}\n`);
    }
    const heartbeat = process.env.DRILL_HEARTBEAT_URL;
    if (heartbeat) {
        await fetch(problems.length === 0 ? heartbeat : `${heartbeat.replace(/\/$/, "")}/fail`, { signal: AbortSignal.timeout(10_000) }).catch((e) => console.warn(`drill: heartbeat ping failed: ${e}`));
    }
    if (problems.length > 0) {
        for (const p of problems) console.error(`::error title=Backup drill::${p}`);
        return 1;
    }
    console.log("drill: every app's newest backup is fresh, decrypts, restores and matches its manifest");
    return 0;
}

if (require.main === module) {
    main().then(
        (code) => process.exit(code),
        (e) => {
            console.error(`drill: ${(e as Error).message}`);
            process.exit(1);
        },
    );
}
