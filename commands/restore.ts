// The operator's restore command:
//   npm run restore -- --stack prod --app app1 [--backup NAME | --latest] [--dry-run] [--list]
// 1) lists the app's backups, 2) downloads one with YOUR credentials (SCW_ACCESS_KEY/SCW_SECRET_KEY),
// 3) decrypts it with YOUR age private key (--identity FILE or PLATFORM_BACKUP_IDENTITY), 4) restores it
// into a NEW database on the server, 5) checks every table's row count against the manifest, and
// 6) only then swaps it in for the app (the app's sessions are ended; its old database is renamed and
// kept). --dry-run stops after 5 and drops the copy. Any failed check leaves the app's database as it was.
//
// Where things are, per stack (each can be overridden):
//   prod:  bucket and endpoint from `pulumi stack output backupBucket/backupEndpoint`; host 0's address
//          and pinned host key from the stack state (`pulumi stack export`), reached with the program's
//          own SSH files and options (io/hostAccess.ts: a server with another host key is refused;
//          the operator's ssh config is not what trusts it). On host 0, `docker exec` runs:
//            database container (platform:database container): the PostgreSQL container's own
//              psql/pg_restore as its superuser over the local socket (no password needed, the
//              dump's version always matches the server's);
//            database managed: the client container (platform-pg-client) as the admin, whose password
//              is in that container's environment; the admin is a member of every app role.
//          Which one: `platform:database` in Pulumi.<stack>.yaml, or --database container|managed
//          (during a migration both exist).
//   local: backups in .platform/local/backups, key .platform/local/backup-identity.txt, `docker exec`.
// Overrides: --bucket B --endpoint URL [--region R] | --dir DIR; --ssh user@host (still pinned) |
//            --docker CONTAINER | --pg HOST:PORT (direct connection as PGUSER, default postgres, with PGPASSWORD).
import * as fs from "fs";
import * as path from "path";
import * as readline from "readline";
import { CONTAINER_DATABASE_TARGET, MANAGED_DATABASE_TARGET, formatBytes, isBucketName, isS3Endpoint, regionOfEndpoint } from "../render/backup";
import { HostZero, PinnedSsh, hostZeroFromState, pinnedSsh, projectName, stackDatabase } from "../io/hostAccess";
import { noTrustedKeyMessage, stackSigningKeys } from "../io/backupTrust";
import { BackupStore, BackupTrust, DirectoryBackupStore, PgRunner, S3BackupStore, directRunner, dockerExecRunner, localBackupPaths, restoreBackup, sshDockerRunner } from "../io/restore";
import { S3Client } from "../io/s3";
import { PROJECT_ROOT } from "../hostScripts";
import { pulumiJson } from "../io/pulumiCli";

export interface RestoreArgs {
    stack?: string;
    app?: string;
    backup?: string;
    latest: boolean;
    dryRun: boolean;
    list: boolean;
    /** Swap without asking (the data-loss window is still printed). */
    yes: boolean;
    /** Take the --backup named although it has no signature (one made before backups were signed). */
    allowUnsigned: boolean;
    identity?: string;
    bucket?: string;
    endpoint?: string;
    region?: string;
    dir?: string;
    ssh?: string;
    docker?: string;
    pg?: string;
    database?: "container" | "managed";
}

const USAGE = "usage: npm run restore -- --stack <prod|local> --app <app> [--backup NAME [--allow-unsigned] | --latest] [--dry-run] [--list] [--yes] [--identity FILE] [--database container|managed]";

export function parseArgs(argv: readonly string[]): RestoreArgs {
    const args: RestoreArgs = { latest: false, dryRun: false, list: false, yes: false, allowUnsigned: false };
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
        "--database": "database",
    };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--latest") args.latest = true;
        else if (a === "--dry-run") args.dryRun = true;
        else if (a === "--list") args.list = true;
        else if (a === "--yes") args.yes = true;
        else if (a === "--allow-unsigned") args.allowUnsigned = true;
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
    if (args.allowUnsigned && !args.backup) throw new Error("--allow-unsigned takes one backup only: name it with --backup NAME (the newest unsigned object is what a forger would plant)");
    if (args.database !== undefined && args.database !== "container" && args.database !== "managed") throw new Error(`--database ${JSON.stringify(args.database)} is not container or managed`);
    return args;
}

function stackOutputs(stack: string): Record<string, unknown> {
    return pulumiJson(["stack", "output", "--json", "--stack", stack], { what: `the outputs of stack ${stack}`, instead: "pass --bucket/--endpoint/--ssh" }) as Record<string, unknown>;
}

function stackExport(stack: string): unknown {
    return pulumiJson(["stack", "export", "--stack", stack], { what: `the state of stack ${stack}, which pins host 0's SSH host key` });
}

/** What resolveTargets reads besides the arguments; tests pass stand-ins. */
export interface StackReaders {
    /** `pulumi stack export` of the stack. */
    readonly state?: () => unknown;
    /** Pulumi.<stack>.yaml's text (for platform:database). */
    readonly stackYaml?: () => string;
    readonly project?: string;
    readonly env?: NodeJS.ProcessEnv;
    /** ssh port of host 0 (tests only: servers listen on 22). */
    readonly sshPort?: number;
    /** The local stack's directory (default .platform/local), for its generated signing key. */
    readonly localDir?: string;
}

/**
 * How the operator's commands reach host 0's database: a pinned ssh (io/hostAccess.ts) and the
 * container and user for `docker exec` (container database or managed client). Shared with
 * commands/migrate-to-managed.ts.
 */
export function hostZeroRunner(o: { stack: string; database: "container" | "managed"; ssh?: string; readers: StackReaders }): { runner: PgRunner; pinned: PinnedSsh; describe: string } {
    const project = o.readers.project ?? projectName(fs.readFileSync(path.join(PROJECT_ROOT, "Pulumi.yaml"), "utf8"));
    if (o.ssh !== undefined && !/^[a-z_][a-z0-9_-]*@[0-9a-fA-F.:]+$/.test(o.ssh)) throw new Error(`ssh destination ${JSON.stringify(o.ssh)} is not user@host (an IP address)`);
    let state: HostZero | undefined;
    let stateError: Error | undefined;
    try {
        state = hostZeroFromState((o.readers.state ?? (() => stackExport(o.stack)))());
    } catch (e) {
        stateError = e as Error;
    }
    let destination: string;
    if (o.ssh !== undefined) {
        destination = o.ssh;
    } else {
        if (state === undefined) throw stateError ?? new Error("no host 0 in the stack state");
        destination = `root@${state.address}`;
    }
    const [user, address] = destination.split("@");
    const hostKey = state !== undefined && state.address === address ? state.hostKey : undefined;
    const pinned = pinnedSsh({ project, stack: o.stack, address, hostKey, user, port: o.readers.sshPort, env: o.readers.env });
    const target = o.database === "managed" ? MANAGED_DATABASE_TARGET : CONTAINER_DATABASE_TARGET;
    return {
        runner: sshDockerRunner(pinned.destination, pinned.options, target),
        pinned,
        describe: `${pinned.destination}, host key pinned by ${pinned.source === "program" ? pinned.knownHostsFile : "the stack state"}`,
    };
}

export function resolveTargets(
    args: RestoreArgs,
    outputs: () => Record<string, unknown>,
    readers: StackReaders = {},
): { store: BackupStore; runner: PgRunner; identity: string | undefined; trust: BackupTrust; cleanup: () => void } {
    const isLocal = args.stack === "local";
    const local = localBackupPaths(".platform/local");
    let cached: Record<string, unknown> | undefined;
    const out = () => (cached ??= outputs());
    const stackName = args.stack ?? "prod";
    const stackYaml = (readers.stackYaml ?? (() => readStackYaml(stackName)))();
    // Only backups signed by a key this stack file pins are trusted (the local stack: also its own generated key).
    const trust: BackupTrust = { keys: stackSigningKeys(stackName, stackYaml, readers.localDir ?? ".platform/local"), allowUnsigned: args.allowUnsigned ? args.backup : undefined };

    let store: BackupStore;
    if (args.dir || (isLocal && !args.bucket)) {
        store = new DirectoryBackupStore(path.resolve(args.dir ?? local.directory), trust);
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
        store = new S3BackupStore(new S3Client({ endpoint, region, bucket, accessKey, secretKey }), trust);
    }

    // Listing reads names and sizes only: no key is needed, nor asked for.
    const identity = args.identity ?? process.env.PLATFORM_BACKUP_IDENTITY ?? (isLocal ? local.identity : undefined);
    if (!identity && !args.list) throw new Error("pass --identity FILE (or set PLATFORM_BACKUP_IDENTITY): the age private key whose public half is platform:backupPublicKey");

    let runner: PgRunner;
    let cleanup = () => undefined as void;
    if (args.pg) {
        const m = /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(args.pg);
        if (!m) throw new Error("--pg takes HOST:PORT");
        if (!process.env.PGPASSWORD) throw new Error("--pg needs PGPASSWORD (the superuser's password) in the environment");
        runner = directRunner({ host: m[1], port: Number(m[2]), user: process.env.PGUSER ?? "postgres", password: process.env.PGPASSWORD, binDir: process.env.PG_BIN_DIR });
    } else if (args.list) {
        const listing: PgRunner = { description: "(listing only)", run: () => Promise.reject(new Error("--list reaches no database")), as: () => listing };
        runner = listing;
    } else if (args.docker || (isLocal && !args.ssh)) {
        runner = dockerExecRunner(args.docker ?? "platform-postgres");
    } else {
        const stack = args.stack ?? "prod";
        const database = args.database ?? stackDatabase(stackYaml);
        const host = hostZeroRunner({ stack, database, ssh: args.ssh, readers });
        runner = host.runner;
        cleanup = host.pinned.cleanup;
    }

    return { store, runner, identity, trust, cleanup };
}

/** A restore needs a pinned key (or one backup taken unsigned by name); listing does not. */
export function checkTrust(args: RestoreArgs, trust: BackupTrust): void {
    if (trust.keys.length > 0 || args.list || args.allowUnsigned) return;
    throw new Error(noTrustedKeyMessage(args.stack ?? "prod"));
}

/**
 * Whether the restore asks before it replaces live data: on any stack but local, unless --yes or
 * --dry-run. Without a terminal to ask on, it refuses before anything runs.
 */
export function confirmationPolicy(args: RestoreArgs, interactive: boolean): "ask" | "no" {
    const stack = args.stack ?? "prod";
    if (args.dryRun || args.list || args.yes || stack === "local") return "no";
    if (!interactive) {
        throw new Error(`restoring ${args.app} on stack ${stack} replaces its live database: writes made since the backup stay only in the kept copy. Pass --yes to confirm (or run it in a terminal to be asked), or --dry-run to check the backup only`);
    }
    return "ask";
}

/** Asks on the terminal; only the app's name, typed back, confirms. */
export function terminalConfirm(app: string, input: NodeJS.ReadableStream = process.stdin, output: NodeJS.WritableStream = process.stdout): (question: string) => Promise<boolean> {
    return (question) =>
        new Promise((resolve) => {
            const rl = readline.createInterface({ input, output });
            rl.question(`${question}\nType the app's name (${app}) to swap, anything else to stop: `, (answer) => {
                rl.close();
                resolve(answer.trim() === app);
            });
        });
}

/** The identity file must exist; on the local stack, its generated key appears with the first `local:up`. */
export function checkIdentity(args: RestoreArgs, identity: string | undefined, local = localBackupPaths(".platform/local")): asserts identity is string {
    if (!identity) throw new Error("pass --identity FILE (or set PLATFORM_BACKUP_IDENTITY): the age private key whose public half is platform:backupPublicKey");
    if (fs.existsSync(identity)) return;
    if (args.stack === "local" && path.resolve(identity) === local.identity) {
        throw new Error(`no identity file ${identity}: the local stack's key pair is generated by its first deployment. Run \`npm run local:up\` first (it takes a backup too), then restore`);
    }
    throw new Error(`the age identity file ${identity} does not exist: pass --identity with the private key whose public half is platform:backupPublicKey`);
}

function readStackYaml(stack: string): string {
    const file = path.join(PROJECT_ROOT, `Pulumi.${stack}.yaml`);
    return fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
}

/** `--help`/`-h` anywhere in the arguments. */
export function wantsHelp(argv: readonly string[]): boolean {
    return argv.includes("--help") || argv.includes("-h");
}

async function main(): Promise<void> {
    if (wantsHelp(process.argv.slice(2))) {
        console.log(USAGE);
        return;
    }
    const args = parseArgs(process.argv.slice(2));
    const app = args.app!;
    const { store, runner, identity, trust, cleanup } = resolveTargets(args, () => stackOutputs(args.stack ?? "prod"));
    try {
        if (args.list) {
            const refs = await store.list(app);
            if (refs.length === 0 && args.stack === "local") console.log(`no backups of ${app} in ${store.describe()} yet: \`npm run local:up\` takes one when it deploys`);
            console.log(`${refs.length} trusted backup(s) of ${app} in ${store.describe()}, newest first:`);
            for (const r of refs) console.log(`  ${r.name}  ${r.createdAt.toISOString()}  ${r.bytes === undefined ? "" : formatBytes(r.bytes)}  signed by ${store.signedBy(r) ?? "nobody (--allow-unsigned)"}`);
            const refused = await store.refused(app);
            if (refused.length > 0) console.log(`${refused.length} refused (no restore, drill or migration uses them):`);
            for (const r of refused) console.log(`  ${r.ref.name}  REFUSED: ${r.reason}`);
            return;
        }
        // What is missing first (the key), then whether to go ahead: both before anything is downloaded.
        checkIdentity(args, identity);
        checkTrust(args, trust);
        const policy = confirmationPolicy(args, Boolean(process.stdin.isTTY && process.stdout.isTTY));
        const result = await restoreBackup({ store, runner, app, backup: args.backup, identityFile: identity!, dryRun: args.dryRun, confirm: policy === "ask" ? terminalConfirm(app) : undefined });
        if (!args.dryRun && !result.swapped) process.exitCode = 1;
    } finally {
        cleanup();
    }
}

if (require.main === module) {
    main().catch((e) => {
        console.error(`restore: FAILED: ${(e as Error).message}`);
        process.exit(1);
    });
}
