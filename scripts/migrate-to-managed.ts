// Moving a stack from the container database to Scaleway's managed one (issue #12), built on the
// backup and restore tooling (lib/restore.ts). The whole procedure is in MIGRATION_STEPS; this file
// holds the two steps that touch data:
//
//   freeze    the container database's app databases turn read-only (new transactions cannot
//             write; open sessions are ended so they reconnect read-only): from here until the
//             switch, writes fail loudly instead of being lost in the old database.
//   restore   each app's newest backup is restored into the managed instance by restoreBackup
//             (decrypt, check, restore into a new database owned by the app's role, compare row
//             counts with the manifest, swap in for the empty database `pulumi up` created there).
//             The managed admin is not a superuser: it is made a member of the app's role for the
//             restore only (to create a database it owns and to restore its objects as that role),
//             and that membership is revoked again.
//   unfreeze  the rollback: the container database's app databases accept writes again.
//
// Used by tests/migration.real.test.ts against two real clusters. There is no command-line wrapper
// yet: an operator calls freeze/restoreIntoManaged/unfreeze with lib/restore.ts's runners
// (sshDockerRunner for the container database, directRunner through `ssh -L 15433:127.0.0.1:5433
// root@<host0>` for the managed one, the admin password from PGPASSWORD).
import { PgRunner, RestoreResult, BackupStore, Log, restoreBackup, sql } from "../lib/restore";
import { appDatabaseNames, quoteIdentifier, quoteLiteral } from "../lib/postgres";

export const MIGRATION_STEPS: readonly string[] = [
    "0. Preconditions: `pulumi up` is clean on `database: container`, one host; lower the DNS TTL if you will also go to several hosts later.",
    "1. Back up: check that last night's backups exist (`npm run backup:check` or the bucket), then freeze: `freeze(sshDockerRunner('root@<host0>'), apps)` makes every app database read-only, and run the backup job once more by hand (`ssh root@<host0> sh /srv/platform/bin/backup.sh /srv/platform/backup/backup.env`): that backup is the last state of every app.",
    "2. Create the managed instance: `pulumi config set platform:database managed`, then `pulumi up --target` the new resources only (the private network, host 0's NIC, the managed database and its relay and client containers, host 0's ssh-guard, each app's role, database and grant). `pulumi preview` first: nothing of the apps may change in this step.",
    "3. Restore every app's database into it: open the admin channel (`ssh -N -L 15433:127.0.0.1:5433 root@<host0>`), then `restoreIntoManaged({ store, target: directRunner({ host: '127.0.0.1', port: 15433, user: 'platform_admin', password: process.env.PGPASSWORD }), apps, identityFile })`: per app, restore, verify the row counts, swap in; the empty database `pulumi up` created is kept as `<app>_db_before_<time>`.",
    "4. Switch the apps' DATABASE_URL: `pulumi state unprotect` the container database's volume (its retainOnDelete keeps it on the host), then `pulumi up`: every backend is replaced blue-green with the managed DATABASE_URL (new container healthy first, the edge switches, the old one goes last); the old PostgreSQL container goes at the end of that deployment.",
    "5. Keep the old volume (`platform-pgdata`, read-only data of the last state) until you delete it: `ssh root@<host0> docker volume rm platform-pgdata`.",
    "Rollback before step 4: `unfreeze(…)`, `pulumi config set platform:database container`; the managed instance stays (protected) until you remove it.",
];

const APP = /^[a-z][a-z0-9-]{0,30}$/;

function checkApps(apps: readonly string[]): void {
    if (apps.length === 0) throw new Error("name at least one app");
    for (const a of apps) if (!APP.test(a)) throw new Error(`app name ${JSON.stringify(a)} is not a catalog name`);
}

/** Makes every app database read-only for new transactions and ends its open sessions. Idempotent. */
export async function freeze(runner: PgRunner, apps: readonly string[], log: Log = console.log): Promise<void> {
    checkApps(apps);
    for (const app of apps) {
        const { database } = appDatabaseNames(app);
        await sql(runner, "postgres", `ALTER DATABASE ${quoteIdentifier(database)} SET default_transaction_read_only = on;\n`);
        const ended = await sql(
            runner,
            "postgres",
            `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = ${quoteLiteral(database)} AND pid <> pg_backend_pid();\n`,
        );
        log(`freeze: ${database} is read-only for new transactions; ended ${Number(ended.trim()) || 0} session(s)`);
    }
}

/** The rollback of freeze. */
export async function unfreeze(runner: PgRunner, apps: readonly string[], log: Log = console.log): Promise<void> {
    checkApps(apps);
    for (const app of apps) {
        const { database } = appDatabaseNames(app);
        await sql(runner, "postgres", `ALTER DATABASE ${quoteIdentifier(database)} RESET default_transaction_read_only;\n`);
        log(`unfreeze: ${database} accepts writes again`);
    }
}

export interface RestoreIntoManagedOptions {
    readonly store: BackupStore;
    /** The managed instance, as its (non-superuser) admin. */
    readonly target: PgRunner;
    readonly apps: readonly string[];
    readonly identityFile: string;
    readonly log?: Log;
    readonly now?: () => Date;
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
        // The managed stack makes the admin a member of every app role (ManagedAppDatabase's
        // backupMembership: the nightly backups read as it). A stack declared before that has no
        // membership yet: then it is granted for this restore only and revoked again; an existing one
        // is left as it is.
        const member = (await sql(o.target, "postgres", `SELECT pg_has_role(current_user, ${quoteLiteral(role)}, 'MEMBER');\n`)).trim() === "t";
        // GRANT to oneself needs ADMIN on the role: the admin created it (PostgreSQL 16 gives the creator that).
        if (!member) await sql(o.target, "postgres", `GRANT ${quoteIdentifier(role)} TO CURRENT_USER;\n`);
        try {
            results.push(await restoreBackup({ store: o.store, runner: o.target, app, identityFile: o.identityFile, log, now: o.now }));
        } finally {
            if (!member) await sql(o.target, "postgres", `REVOKE ${quoteIdentifier(role)} FROM CURRENT_USER;\n`);
        }
        log(`restore: ${app} is in the managed instance; ${member ? `the admin stays a member of ${role} (the backups read as it)` : `the admin's temporary membership in ${role} is revoked again`}`);
    }
    return results;
}
