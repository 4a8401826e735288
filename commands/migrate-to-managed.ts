// Moving a stack from the container database to Scaleway's managed one (issue #12), built on the
// backup and restore tooling (io/restore.ts). The operator's command:
//
//   npm run migrate:managed -- --stack prod                 the whole plan, step by step (changes nothing)
//   npm run migrate:managed -- --stack prod --step 1        freeze, run the backup job, check the backups
//   npm run migrate:managed -- --stack prod --step 2        the `pulumi config set` / `pulumi up --target …` to run
//   npm run migrate:managed -- --stack prod --step 3        restore every app into the managed instance
//   npm run migrate:managed -- --stack prod --step 4        the commands that switch DATABASE_URL (blue-green)
//   npm run migrate:managed -- --stack prod --step 5        keeping, then deleting, the old volume
//   npm run migrate:managed -- --stack prod --rollback      before step 4: writes back on the old database
//   add --dry-run to steps 1, 3 and --rollback: what they would do, nothing changed (step 3's dry run
//   restores into a new database, verifies it and drops it); --apps app1,app2 to narrow; --identity FILE
//   (or PLATFORM_BACKUP_IDENTITY) is the age private key step 3 decrypts with.
//
// Steps 1 and 3 touch data and run here; 2, 4 and 5 are `pulumi` operations (and one `docker volume
// rm`) the operator reviews and runs: the command prints them exactly, the `--target` list generated
// from the program's own URNs (commands/programGraph.ts). Every SSH connection goes to host 0 with the host
// key the program pinned (io/hostAccess.ts). Step 1 records the freeze time in
// .platform/migrate-<stack>.json; step 3 refuses to run unless the old databases are still frozen and
// every app's newest backup was taken after that freeze.
//
// The data steps:
//   freeze    the apps' roles on the container database can no longer log in (NOLOGIN, which the
//             app cannot lift) and their sessions are ended: from here until the switch the apps
//             are down, and no write can land in the old database and be lost.
//   restore   each app's newest backup is restored into the managed instance by restoreBackup
//             (decrypt, check, restore into a new database owned by the app's role, compare row
//             counts with the manifest, swap in for the empty database `pulumi up` created there).
//             The managed admin is not a superuser; the stack makes it a member of every app role
//             (for the backups); on a stack without that membership it is granted for the restore
//             only and revoked again.
//   unfreeze  the rollback: the apps' roles log in again and their databases accept writes.
import * as fs from "fs";
import * as path from "path";
import { PgRunner, RestoreResult, BackupStore, BackupTrust, Log, S3BackupStore, restoreBackup, sql } from "../io/restore";
import { pinnedSigningKeys } from "../io/backupTrust";
import { BACKUP_SCRIPT_PATH, BACKUP_SETTINGS_FILE, MANAGED_DATABASE_TARGET, isBucketName, isS3Endpoint, regionOfEndpoint } from "../render/backup";
import { PinnedSsh } from "../io/hostAccess";
import { GraphResource, programResources, stackConfigFromYaml } from "./programGraph";
import { S3Client } from "../io/s3";
import { shellQuote } from "../render/shell";
import { hostName } from "../render/scale";
import { StackReaders, hostZeroRunner, wantsHelp } from "./restore";
import { stackAppsWithDatabase } from "./backup-drill";
import { appDatabaseNames, quoteIdentifier, quoteLiteral } from "../render/postgres";
import { PROJECT_ROOT } from "../hostScripts";

export const MIGRATION_STEPS: readonly string[] = [
    "0. Preconditions: `pulumi up` is clean on `database: container`, one host; lower the DNS TTL if you will also go to several hosts later.",
    "1. Back up (`--step 1`): freeze stops every app's role from logging in to the container database (NOLOGIN; its sessions are ended: the apps are down until step 4), then the backup job runs once more on host 0 (`sh /srv/platform/bin/backup.sh /srv/platform/backup/backup.env`): that backup is the last state of every app; the command checks it is in the bucket.",
    "2. Create the managed instance: `pulumi config set platform:database managed`, then `pulumi up --target` the new resources only (the private network, host 0's NIC, the managed database and its relay and client containers, host 0's ssh-guard, each app's role, database and grant). `pulumi preview` first: nothing of the apps may change in this step.",
    "3. Restore every app's database into it (`--step 3`): through host 0's client container as the admin, per app: restore, verify the row counts, swap in; the empty database `pulumi up` created is kept as `<app>_db_before_<time>`.",
    "4. Switch the apps' DATABASE_URL: `pulumi state unprotect` the container database's volume (its retainOnDelete keeps it on the host), then `pulumi up`: every backend is replaced blue-green with the managed DATABASE_URL (new container healthy first, the edge switches, the old one goes last); the old PostgreSQL container goes at the end of that deployment.",
    "5. Keep the old volume (`platform-pgdata`, read-only data of the last state) until you delete it: `--step 5` prints `docker volume rm platform-pgdata` over host 0's pinned ssh.",
    "Rollback before step 4 (`--rollback`): unfreeze, `pulumi config set platform:database container`; the managed instance stays (protected) until you remove it.",
];

const APP = /^[a-z][a-z0-9-]{0,30}$/;

function checkApps(apps: readonly string[]): void {
    if (apps.length === 0) throw new Error("name at least one app");
    for (const a of apps) if (!APP.test(a)) throw new Error(`app name ${JSON.stringify(a)} is not a catalog name`);
}

/**
 * Freezes every app for the move: its role can no longer log in (NOLOGIN, which only a superuser or
 * a CREATEROLE role can lift: the app cannot, unlike a database setting its role owns, and
 * `BEGIN READ WRITE` cannot bypass it as it bypasses default_transaction_read_only), and its open
 * sessions are ended, in every database. The app is down (its backend's health fails) from here until
 * the switch or the rollback: no write can land in the old database and be lost. The database is also
 * made read-only for new transactions, for the superuser's own sessions. Idempotent.
 */
export async function freeze(runner: PgRunner, apps: readonly string[], log: Log = console.log): Promise<void> {
    checkApps(apps);
    for (const app of apps) {
        const { database, role } = appDatabaseNames(app);
        await sql(runner, "postgres", `ALTER ROLE ${quoteIdentifier(role)} NOLOGIN;\nALTER DATABASE ${quoteIdentifier(database)} SET default_transaction_read_only = on;\n`);
        let ended = 0;
        for (let attempt = 0; attempt < 20; attempt++) {
            const n = Number(
                (
                    await sql(
                        runner,
                        "postgres",
                        `SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity WHERE (usename OPERATOR(pg_catalog.=) ${quoteLiteral(role)} OR datname OPERATOR(pg_catalog.=) ${quoteLiteral(database)}) AND pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid();\n`,
                    )
                ).trim(),
            );
            ended += n || 0;
            if (!n) break;
            await new Promise((r) => setTimeout(r, 100));
        }
        if (!(await isFrozen(runner, app))) throw new Error(`freeze: ${role} still has a session or can log in after NOLOGIN and ending its sessions; nothing is frozen until that holds`);
        log(`freeze: ${role} can no longer log in (NOLOGIN), ${database} is read-only for new transactions; ended ${ended} session(s); checked: no session of ${role} remains`);
    }
}

/** The rollback of freeze: the role logs in again (with its unchanged password), the database accepts writes. */
export async function unfreeze(runner: PgRunner, apps: readonly string[], log: Log = console.log): Promise<void> {
    checkApps(apps);
    for (const app of apps) {
        const { database, role } = appDatabaseNames(app);
        await sql(runner, "postgres", `ALTER DATABASE ${quoteIdentifier(database)} RESET default_transaction_read_only;\nALTER ROLE ${quoteIdentifier(role)} LOGIN;\n`);
        log(`unfreeze: ${role} logs in again and ${database} accepts writes again`);
    }
}

/** What really holds the freeze: the app's role cannot log in and has no session left anywhere. */
export async function isFrozen(runner: PgRunner, app: string): Promise<boolean> {
    const { role } = appDatabaseNames(app);
    const r = quoteLiteral(role);
    const out = await sql(
        runner,
        "postgres",
        `SELECT (SELECT NOT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) ${r}) AND NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity WHERE usename OPERATOR(pg_catalog.=) ${r});\n`,
    );
    return out.trim() === "t";
}

export interface RestoreIntoManagedOptions {
    readonly store: BackupStore;
    /** The managed instance, as its (non-superuser) admin. */
    readonly target: PgRunner;
    readonly apps: readonly string[];
    readonly identityFile: string;
    readonly log?: Log;
    readonly now?: () => Date;
    /** Restore, verify, then drop the copy: nothing of the managed instance's app databases changes. */
    readonly dryRun?: boolean;
}

/**
 * Restores each app's newest backup into the managed instance and swaps it in for the empty database
 * there. Stops at the first failure (what was restored before stays; re-running is safe: a swapped
 * app gets a fresh restore and its previous database kept).
 */
export async function restoreIntoManaged(o: RestoreIntoManagedOptions): Promise<RestoreResult[]> {
    checkApps(o.apps);
    const log = o.log ?? ((line: string) => console.log(line));
    const results: RestoreResult[] = [];
    for (const app of o.apps) {
        const { role } = appDatabaseNames(app);
        // The managed stack makes the admin a member of every app role (AppDatabase declares it: the
        // nightly backups read as it). A stack declared before that has no
        // membership yet: then it is granted for this restore only and revoked again; an existing one
        // is left as it is.
        const member = (await sql(o.target, "postgres", `SELECT pg_has_role(current_user, ${quoteLiteral(role)}, 'MEMBER');\n`)).trim() === "t";
        // GRANT to oneself needs ADMIN on the role: the admin created it (PostgreSQL 16 gives the creator that).
        if (!member) await sql(o.target, "postgres", `GRANT ${quoteIdentifier(role)} TO CURRENT_USER;\n`);
        try {
            results.push(await restoreBackup({ store: o.store, runner: o.target, app, identityFile: o.identityFile, log, now: o.now, dryRun: o.dryRun }));
        } finally {
            if (!member) await sql(o.target, "postgres", `REVOKE ${quoteIdentifier(role)} FROM CURRENT_USER;\n`);
        }
        log(`restore: ${app} is in the managed instance; ${member ? `the admin stays a member of ${role} (the backups read as it)` : `the admin's temporary membership in ${role} is revoked again`}`);
    }
    return results;
}

// ---------------------------------------------------------------------------------------------
// The command

export interface MigrateArgs {
    readonly stack: string;
    /** Undefined: print the plan. */
    readonly step?: 1 | 2 | 3 | 4 | 5;
    readonly rollback: boolean;
    readonly dryRun: boolean;
    readonly apps?: readonly string[];
    readonly identity?: string;
}

export const MIGRATE_USAGE =
    "usage: npm run migrate:managed -- --stack <stack> [--step 1|2|3|4|5 | --rollback] [--dry-run] [--apps app1,app2] [--identity FILE]";

export function parseMigrateArgs(argv: readonly string[]): MigrateArgs {
    let stack: string | undefined;
    let step: MigrateArgs["step"];
    let rollback = false;
    let dryRun = false;
    let apps: string[] | undefined;
    let identity: string | undefined;
    const value = (i: number, flag: string): string => {
        const v = argv[i];
        if (v === undefined || v.startsWith("--")) throw new Error(`${flag} needs a value\n${MIGRATE_USAGE}`);
        return v;
    };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--stack") stack = value(++i, a);
        else if (a === "--step") {
            const v = value(++i, a);
            if (!/^[1-5]$/.test(v)) throw new Error(`--step ${JSON.stringify(v)} is not 1, 2, 3, 4 or 5\n${MIGRATE_USAGE}`);
            step = Number(v) as MigrateArgs["step"];
        } else if (a === "--rollback") rollback = true;
        else if (a === "--dry-run") dryRun = true;
        else if (a === "--apps") {
            apps = value(++i, a).split(",");
            checkApps(apps);
        } else if (a === "--identity") identity = value(++i, a);
        else throw new Error(`unknown argument ${JSON.stringify(a)}\n${MIGRATE_USAGE}`);
    }
    if (stack === undefined) throw new Error(`--stack is required\n${MIGRATE_USAGE}`);
    if (!/^[a-z0-9][a-z0-9-]{0,40}$/.test(stack)) throw new Error(`--stack ${JSON.stringify(stack)} is not a stack name`);
    if (stack === "local") throw new Error("the local stack has no managed database: migrate a scaleway stack");
    if (rollback && step !== undefined) throw new Error("give --step N or --rollback, not both");
    return { stack, step, rollback, dryRun, apps, identity };
}

/** What the command reads and runs besides its arguments; tests pass stand-ins. */
export interface MigrateDeps {
    readonly readers: StackReaders;
    /** Pulumi.<stack>.yaml's text. */
    readonly stackYaml: () => string;
    /** `pulumi stack output --json` (backupBucket, backupEndpoint). */
    readonly outputs: () => Record<string, unknown>;
    /** Where the backups are; by default the stack's bucket with SCW_ACCESS_KEY/SCW_SECRET_KEY. */
    readonly store?: () => BackupStore;
    /** Runs one command on host 0 over the pinned ssh; resolves its stdout. */
    readonly runOnHost?: (pinned: PinnedSsh, command: string) => Promise<string>;
    /** The program's resources for a stack config (commands/programGraph.ts). */
    readonly resources?: (stackConfig: Record<string, string>) => Promise<GraphResource[]>;
    /** Where step 1 records the freeze (default .platform/migrate-<stack>.json). */
    readonly stateFile?: string;
    readonly log?: Log;
    readonly now?: () => Date;
    readonly env?: NodeJS.ProcessEnv;
}

interface FreezeRecord {
    readonly stack: string;
    readonly frozenAt: string;
    readonly apps: string[];
}

const quoted = (words: readonly string[]) => words.map(shellQuote).join(" ");

/** The `pulumi up --target` list of step 2: what `database: managed` adds, plus host 0's ssh-guard (it must permit the new admin forward). */
export function stepTwoTargets(container: readonly GraphResource[], managed: readonly GraphResource[]): string[] {
    const before = new Set(container.map((r) => r.urn));
    // Loaded here, not at the top: components/ loads the Pulumi SDK (seconds), which --help and the other steps do not need.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { APP_DATABASE_TYPE } = require("../components/appDatabase") as typeof import("../components/appDatabase");
    // The app databases keep their URNs and move to the managed server: an update that declares each
    // role and database there (their server is a compared property), leaving the container's as it is.
    const added = managed.filter((r) => !before.has(r.urn) || r.type === APP_DATABASE_TYPE);
    const guard = managed.find((r) => r.type === "command:remote:Command" && r.name === `${hostName(0)}-ssh-guard`);
    if (guard === undefined) throw new Error("the program declares no ssh-guard on host 0");
    if (!added.some((r) => r.type === "scaleway:databases/instance:Instance")) throw new Error("the managed config adds no managed database instance: is platform:database already managed?");
    return [guard.urn, ...added.map((r) => r.urn)];
}

function defaultRunOnHost(pinned: PinnedSsh, command: string): Promise<string> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { spawn } = require("child_process") as typeof import("child_process");
    return new Promise((resolve, reject) => {
        const child = spawn("ssh", [...pinned.options, pinned.destination, "--", command], { stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        let err = "";
        child.stdout.on("data", (d) => (out += d));
        child.stderr.on("data", (d) => (err += d));
        child.on("error", reject);
        child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`ssh ${pinned.destination} ${command}: exit ${code}: ${err.trim()}`))));
    });
}

function defaultStore(outputs: Record<string, unknown>, env: NodeJS.ProcessEnv, trust: BackupTrust): BackupStore {
    const bucket = String(outputs.backupBucket ?? "");
    const endpoint = String(outputs.backupEndpoint ?? "");
    const region = regionOfEndpoint(endpoint);
    if (!isBucketName(bucket) || !isS3Endpoint(endpoint) || !region) throw new Error(`the stack outputs name no valid backup bucket (backupBucket ${JSON.stringify(bucket)}, backupEndpoint ${JSON.stringify(endpoint)})`);
    if (!env.SCW_ACCESS_KEY || !env.SCW_SECRET_KEY) throw new Error("set SCW_ACCESS_KEY and SCW_SECRET_KEY to your own API key (the host's key cannot read backups)");
    return new S3BackupStore(new S3Client({ endpoint, region, bucket, accessKey: env.SCW_ACCESS_KEY, secretKey: env.SCW_SECRET_KEY }), trust);
}


/**
 * Runs one step of the migration (or prints the plan), saying at each point what it does and what the
 * operator runs next. Resolves with the exit status.
 */
export async function runMigration(args: MigrateArgs, deps: MigrateDeps): Promise<number> {
    const log = deps.log ?? ((l: string) => console.log(l));
    const now = deps.now ?? (() => new Date());
    const env = deps.env ?? process.env;
    const stack = args.stack;
    const stackYaml = deps.stackYaml();
    const stackConfig = stackConfigFromYaml(stackYaml);
    const apps = args.apps ?? stackAppsWithDatabase(stackYaml);
    checkApps(apps);
    const stateFile = deps.stateFile ?? path.join(".platform", `migrate-${stack}.json`);
    const cmd = (rest: string) => `npm run migrate:managed -- --stack ${stack} ${rest}`;
    const runOnHost = deps.runOnHost ?? defaultRunOnHost;
    const resources = deps.resources ?? ((c: Record<string, string>) => programResources(stack, deps.readers.project ?? "platform", c));
    let cachedStore: BackupStore | undefined;
    // Only backups signed by a key the stack file pins count as "taken after the freeze".
    const store = () => (cachedStore ??= deps.store ? deps.store() : defaultStore(deps.outputs(), env, { keys: pinnedSigningKeys(stackYaml), now }));
    const host = (database: "container" | "managed") => hostZeroRunner({ stack, database, readers: { ...deps.readers, env: deps.readers.env ?? env } });
    const header = (n: number, title: string) => log(`\n== Step ${n}/5: ${title}${args.dryRun && (n === 1 || n === 3) ? " (DRY RUN: nothing changes)" : ""}`);
    const youRun = (lines: string[]) => {
        log("   you run:");
        for (const l of lines) log(`     ${l}`);
    };

    if (stackConfig["platform:target"] !== "scaleway") throw new Error(`stack ${stack} is not a scaleway stack (platform:target ${JSON.stringify(stackConfig["platform:target"] ?? "local")})`);
    const current = stackConfig["platform:database"] ?? "container";
    log(`migrate: stack ${stack}, apps with a database: ${apps.join(", ")}; Pulumi.${stack}.yaml says platform:database ${current}`);

    const step1 = async () => {
        header(1, "back up (freeze the old databases, take the last backup)");
        const container = host("container");
        try {
            log(`   host 0: ${container.describe}`);
            log(`   does: makes ${apps.map((a) => appDatabaseNames(a).role).join(", ")} NOLOGIN and ends their sessions (the apps are down until the switch): from now on no write can be lost`);
            log(`   does: runs the backup job on host 0: sh ${BACKUP_SCRIPT_PATH} ${BACKUP_SETTINGS_FILE}; then checks that every app's newest backup in the bucket is newer than the freeze`);
            if (args.dryRun) {
                for (const app of apps) log(`   would freeze ${appDatabaseNames(app).role}: currently ${(await isFrozen(container.runner, app)) ? "already frozen (NOLOGIN, no session)" : "logging in"}`);
                return 0;
            }
            const frozenAt = new Date(Math.floor(now().getTime() / 1000) * 1000);
            await freeze(container.runner, apps, (l) => log(`   ${l}`));
            fs.mkdirSync(path.dirname(stateFile), { recursive: true });
            const record: FreezeRecord = { stack, frozenAt: frozenAt.toISOString(), apps: [...apps] };
            fs.writeFileSync(stateFile, JSON.stringify(record, null, 2) + "\n");
            log(`   recorded the freeze time ${record.frozenAt} in ${stateFile}`);
            const output = await runOnHost(container.pinned, quoted(["sh", BACKUP_SCRIPT_PATH, BACKUP_SETTINGS_FILE]));
            if (output.trim()) log(output.trim().replace(/^/gm, "   | "));
            for (const app of apps) {
                const newest = (await store().list(app))[0];
                if (newest === undefined || newest.createdAt.getTime() < frozenAt.getTime()) {
                    throw new Error(`${app}: no backup taken after the freeze in ${store().describe()} (newest: ${newest?.name ?? "none"}); look at the backup job's log on host 0 (/var/log/platform-backup.log), fix, and run step 1 again`);
                }
                log(`   ${app}: ${newest.name} is in ${store().describe()} (taken after the freeze)`);
            }
        } finally {
            container.pinned.cleanup();
        }
        log(`   next: ${cmd("--step 2")}`);
        return 0;
    };

    const step2 = async () => {
        header(2, "create the managed instance (new resources only; nothing of the apps changes)");
        const before = await resources({ ...stackConfig, "platform:database": "container" });
        const after = await resources({ ...stackConfig, "platform:database": "managed" });
        const targets = stepTwoTargets(before, after);
        log(`   does (through pulumi): creates the private network, host 0's NIC, the managed instance and its relay and client containers on host 0; updates host 0's sshd guard (the admin forward to 127.0.0.1:5433) and each app's database, which moves to the managed instance (its role and database are declared there, with the admin a member; the container's stay as they are)`);
        const targetArgs = targets.map((u) => `--target ${shellQuote(u)}`).join(" \\\n       ");
        youRun([
            `pulumi config set --stack ${stack} platform:database managed`,
            `pulumi preview --stack ${stack} ${targetArgs}`,
            `pulumi up --stack ${stack} ${targetArgs}`,
        ]);
        log("   check in the preview: only creates, and updates of host-ssh-guard and each *-db-role-database; no app container, no backups-schedule, nothing of PostgresServer.");
        log(`   next: ${cmd("--step 3")}`);
        return 0;
    };

    const step3 = async () => {
        header(3, "restore every app's database into the managed instance");
        if (!fs.existsSync(stateFile)) throw new Error(`no freeze recorded in ${stateFile}: run step 1 first (${cmd("--step 1")})`);
        const record = JSON.parse(fs.readFileSync(stateFile, "utf8")) as FreezeRecord;
        const frozenAt = new Date(record.frozenAt);
        if (record.stack !== stack || Number.isNaN(frozenAt.getTime())) throw new Error(`${stateFile} is not this stack's freeze record`);
        const identityFile = args.identity ?? env.PLATFORM_BACKUP_IDENTITY;
        if (!identityFile) throw new Error("pass --identity FILE (or set PLATFORM_BACKUP_IDENTITY): the age private key whose public half is platform:backupPublicKey");
        const container = host("container");
        const managed = host("managed");
        try {
            log(`   host 0: ${managed.describe}`);
            for (const app of apps) {
                const { database } = appDatabaseNames(app);
                if (!(await isFrozen(container.runner, app))) throw new Error(`${database} on the container database is not frozen (its role logs in again, or has a session, since step 1?): run step 1 again, so no write is lost`);
                const newest = (await store().list(app))[0];
                if (newest === undefined || newest.createdAt.getTime() < frozenAt.getTime()) throw new Error(`${app}: the newest backup (${newest?.name ?? "none"}) is older than the freeze at ${record.frozenAt}: run step 1 again`);
                log(`   ${app}: ${database} is frozen; restoring ${newest.name} (taken after the freeze at ${record.frozenAt})`);
            }
            log(`   does: per app, through ${MANAGED_DATABASE_TARGET.container} as ${MANAGED_DATABASE_TARGET.user}: download, decrypt, restore into a new database, verify every table's row count, ${args.dryRun ? "drop it (dry run)" : "swap it in (the empty database from step 2 is kept as <app>_db_before_<time>)"}`);
            await restoreIntoManaged({ store: store(), target: managed.runner, apps, identityFile, log: (l) => log(`   ${l}`), now, dryRun: args.dryRun });
        } finally {
            container.pinned.cleanup();
            managed.pinned.cleanup();
        }
        log(`   next: ${cmd("--step 4")}${args.dryRun ? ` (after ${cmd("--step 3")} without --dry-run)` : ""}`);
        return 0;
    };

    const step4 = async () => {
        header(4, "switch the apps' DATABASE_URL (a blue-green switch like any other)");
        const before = await resources({ ...stackConfig, "platform:database": "container" });
        const volume = before.find((r) => r.type === "docker:index/volume:Volume");
        if (volume === undefined) throw new Error("the container-database program declares no data volume");
        log("   does (through pulumi): every backend is replaced with the managed DATABASE_URL: the new container must be healthy, the edge switches, the old one goes last; the backups' cron job now dumps the managed database (and takes one backup at once); the PostgreSQL container goes at the end. Its volume is protected: unprotect it first, retainOnDelete keeps it on the host.");
        youRun([`pulumi state unprotect --stack ${stack} --yes ${shellQuote(volume.urn)}`, `pulumi up --stack ${stack}`]);
        log(`   next: ${cmd("--step 5")}`);
        return 0;
    };

    const step5 = async () => {
        header(5, "keep the old volume until you delete it");
        const container = host("container");
        try {
            log("   the volume platform-pgdata on host 0 holds the frozen last state of the container database; nothing deletes it.");
            log("   once the apps run on the managed database and you are sure:");
            youRun([`ssh ${quoted([...container.pinned.options, container.pinned.destination])} docker volume rm platform-pgdata`, `rm ${shellQuote(stateFile)}`]);
            if (container.pinned.source === "state") log("   (that known_hosts is temporary: run `pulumi preview` once so the program writes its own, then use the same options with it)");
        } finally {
            // The printed options name the program's file, which stays; a temporary one would vanish here.
            if (container.pinned.source === "program") container.pinned.cleanup();
        }
        return 0;
    };

    if (args.rollback) {
        log(`\n== Rollback (before step 4 only)${args.dryRun ? " (DRY RUN: nothing changes)" : ""}`);
        const container = host("container");
        try {
            log(`   host 0: ${container.describe}`);
            log(`   does: ${apps.map((a) => appDatabaseNames(a).database).join(", ")} accept writes again`);
            if (!args.dryRun) await unfreeze(container.runner, apps, (l) => log(`   ${l}`));
        } finally {
            container.pinned.cleanup();
        }
        youRun([`pulumi config set --stack ${stack} platform:database container`, `pulumi preview --stack ${stack}   # must show no change to the apps`]);
        log("   the managed instance stays (protected) until you remove it.");
        return 0;
    }
    const steps = [step1, step2, step3, step4, step5];
    if (args.step !== undefined) return steps[args.step - 1]();

    // The plan: every step's text and commands; nothing is run.
    log("plan (nothing is changed; run each step with --step N):");
    for (const line of MIGRATION_STEPS) log(`  ${line}`);
    await step2();
    await step4();
    log(`\nstart with: ${cmd("--step 1 --dry-run")}, then ${cmd("--step 1")}`);
    return 0;
}


async function main(): Promise<number> {
    if (wantsHelp(process.argv.slice(2))) {
        console.log(MIGRATE_USAGE);
        return 0;
    }
    const args = parseMigrateArgs(process.argv.slice(2));
    const root = PROJECT_ROOT;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { pulumiJson } = require("../io/pulumiCli") as typeof import("../io/pulumiCli");
    const stackJson = (what: string[], purpose: string) => pulumiJson([...what, "--stack", args.stack], { what: `${purpose} of stack ${args.stack}` });
    return runMigration(args, {
        readers: { state: () => stackJson(["stack", "export"], "the state") },
        stackYaml: () => fs.readFileSync(path.join(root, `Pulumi.${args.stack}.yaml`), "utf8"),
        outputs: () => stackJson(["stack", "output", "--json"], "the outputs") as Record<string, unknown>,
        stateFile: path.join(root, ".platform", `migrate-${args.stack}.json`),
    });
}

if (require.main === module) {
    main().then(
        (code) => process.exit(code),
        (e) => {
            console.error(`migrate: FAILED: ${(e as Error).message}`);
            process.exit(1);
        },
    );
}
