// The operator's restore command:
//   npm run restore -- --stack prod --app app1 [--backup NAME | --latest] [--dry-run] [--list]
// 1) lists the app's backups, 2) downloads one with YOUR credentials (SCW_ACCESS_KEY/SCW_SECRET_KEY),
// 3) decrypts it with YOUR age private key (--identity FILE or PLATFORM_BACKUP_IDENTITY), 4) restores it
// into a NEW database on the server, 5) checks every table's row count against the manifest, and
// 6) only then swaps it in for the app (the app's sessions are ended; its old database is renamed and
// kept). --dry-run stops after 5 and drops the copy. Any failed check leaves the app's database as it was.
//
// Where things are, per stack (each can be overridden):
//   prod:  bucket and endpoint from `pulumi stack output backupBucket/backupEndpoint`; the server over
//          `ssh root@<publicIp>` running the PostgreSQL container's own psql/pg_restore (`docker exec`),
//          so no database password is needed and the dump's version always matches the server's.
//   local: backups in .platform/local/backups, key .platform/local/backup-identity.txt, `docker exec`.
// Overrides: --bucket B --endpoint URL [--region R] | --dir DIR; --ssh user@host | --docker CONTAINER |
//            --pg HOST:PORT (direct connection as PGUSER, default postgres, with PGPASSWORD).
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { formatBytes, isBucketName, isS3Endpoint, regionOfEndpoint } from "../lib/backup";
import { BackupStore, DirectoryBackupStore, PgRunner, S3BackupStore, directRunner, dockerExecRunner, restoreBackup, sshDockerRunner } from "../lib/restore";
import { S3Client } from "../lib/s3";
import { localBackupPaths } from "../components/backups";

export interface RestoreArgs {
    stack?: string;
    app?: string;
    backup?: string;
    latest: boolean;
    dryRun: boolean;
    list: boolean;
    identity?: string;
    bucket?: string;
    endpoint?: string;
    region?: string;
    dir?: string;
    ssh?: string;
    docker?: string;
    pg?: string;
}

const USAGE = "usage: npm run restore -- --stack <prod|local> --app <app> [--backup NAME | --latest] [--dry-run] [--list] [--identity FILE]";

export function parseArgs(argv: readonly string[]): RestoreArgs {
    const args: RestoreArgs = { latest: false, dryRun: false, list: false };
    const valued: Record<string, keyof RestoreArgs> = {
        "--stack": "stack",
        "--app": "app",
        "--backup": "backup",
        "--identity": "identity",
        "--bucket": "bucket",
        "--endpoint": "endpoint",
        "--region": "region",
        "--dir": "dir",
        "--ssh": "ssh",
        "--docker": "docker",
        "--pg": "pg",
    };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--latest") args.latest = true;
        else if (a === "--dry-run") args.dryRun = true;
        else if (a === "--list") args.list = true;
        else if (a in valued) {
            const value = argv[++i];
            if (value === undefined || value.startsWith("--")) throw new Error(`${a} needs a value\n${USAGE}`);
            (args as unknown as Record<string, string>)[valued[a]] = value;
        } else throw new Error(`unknown argument ${JSON.stringify(a)}\n${USAGE}`);
    }
    if (!args.app) throw new Error(`--app is required\n${USAGE}`);
    if (!/^[a-z][a-z0-9-]{0,30}$/.test(args.app)) throw new Error(`--app ${JSON.stringify(args.app)} is not an app name`);
    if (args.stack !== undefined && !/^[A-Za-z0-9_.\/-]+$/.test(args.stack)) throw new Error(`--stack ${JSON.stringify(args.stack)} is not a stack name`);
    if (args.backup && args.latest) throw new Error("give --backup NAME or --latest, not both");
    return args;
}

function stackOutputs(stack: string): Record<string, unknown> {
    try {
        return JSON.parse(execFileSync("pulumi", ["stack", "output", "--json", "--stack", stack], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }));
    } catch (e) {
        const err = e as { stderr?: string; message: string };
        throw new Error(`could not read the outputs of stack ${stack} (pulumi stack output): ${(err.stderr ?? err.message).trim()}. Pass --bucket/--endpoint/--ssh instead.`);
    }
}

export function resolveTargets(args: RestoreArgs, outputs: () => Record<string, unknown>): { store: BackupStore; runner: PgRunner; identity: string } {
    const isLocal = args.stack === "local";
    const local = localBackupPaths(".platform/local");
    let cached: Record<string, unknown> | undefined;
    const out = () => (cached ??= outputs());

    let store: BackupStore;
    if (args.dir || (isLocal && !args.bucket)) {
        store = new DirectoryBackupStore(path.resolve(args.dir ?? local.directory));
    } else {
        const bucket = args.bucket ?? String(out().backupBucket ?? "");
        const endpoint = args.endpoint ?? String(out().backupEndpoint ?? "");
        const region = args.region ?? regionOfEndpoint(endpoint);
        if (!isBucketName(bucket)) throw new Error(`no valid backup bucket (got ${JSON.stringify(bucket)}): pass --bucket`);
        if (!isS3Endpoint(endpoint)) throw new Error(`no valid S3 endpoint (got ${JSON.stringify(endpoint)}): pass --endpoint`);
        if (!region) throw new Error("cannot tell the region from the endpoint: pass --region");
        const accessKey = process.env.SCW_ACCESS_KEY;
        const secretKey = process.env.SCW_SECRET_KEY;
        if (!accessKey || !secretKey) throw new Error("set SCW_ACCESS_KEY and SCW_SECRET_KEY to your own API key (the host's key cannot read backups)");
        store = new S3BackupStore(new S3Client({ endpoint, region, bucket, accessKey, secretKey }));
    }

    let runner: PgRunner;
    if (args.pg) {
        const m = /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(args.pg);
        if (!m) throw new Error("--pg takes HOST:PORT");
        if (!process.env.PGPASSWORD) throw new Error("--pg needs PGPASSWORD (the superuser's password) in the environment");
        runner = directRunner({ host: m[1], port: Number(m[2]), user: process.env.PGUSER ?? "postgres", password: process.env.PGPASSWORD, binDir: process.env.PG_BIN_DIR });
    } else if (args.ssh) {
        runner = sshDockerRunner(args.ssh);
    } else if (args.docker || isLocal) {
        runner = dockerExecRunner(args.docker ?? "platform-postgres");
    } else {
        const ip = String(out().publicIp ?? "");
        if (!/^[0-9a-fA-F.:]+$/.test(ip)) throw new Error(`stack has no publicIp output (got ${JSON.stringify(ip)}): pass --ssh root@<host>`);
        runner = sshDockerRunner(`root@${ip}`);
    }

    const identity = args.identity ?? process.env.PLATFORM_BACKUP_IDENTITY ?? (isLocal ? local.identity : undefined);
    if (!identity) throw new Error("pass --identity FILE (or set PLATFORM_BACKUP_IDENTITY): the age private key whose public half is platform:backupPublicKey");
    return { store, runner, identity };
}

async function main(): Promise<void> {
    const args = parseArgs(process.argv.slice(2));
    const app = args.app!;
    const { store, runner, identity } = resolveTargets(args, () => stackOutputs(args.stack ?? "prod"));
    if (args.list) {
        const refs = await store.list(app);
        console.log(`${refs.length} backup(s) of ${app} in ${store.describe()}, newest first:`);
        for (const r of refs) console.log(`  ${r.name}  ${r.createdAt.toISOString()}  ${r.bytes === undefined ? "" : formatBytes(r.bytes)}`);
        return;
    }
    if (!fs.existsSync(identity)) throw new Error(`the age identity file ${identity} does not exist`);
    await restoreBackup({ store, runner, app, backup: args.backup, identityFile: identity, dryRun: args.dryRun });
}

if (require.main === module) {
    main().catch((e) => {
        console.error(`restore: FAILED: ${(e as Error).message}`);
        process.exit(1);
    });
}
