// Backups: the archive and manifest format, object naming, the host's settings and cron files, the
// bucket policy, and the checks a restore and the daily drill make. Pure: no I/O, so every rule is
// unit-tested and the shell script, the restore command and the drill agree on one definition.
import { appDatabaseNames } from "./postgres";
import { MANAGED_ADMIN_USER, MANAGED_CLIENT_CONTAINER } from "./scale";
import { shellQuote } from "./shell";
import { isCronSchedule, isHeartbeatUrl } from "./values";

/** `format` of every manifest this code writes; a restore refuses any other. */
export const BACKUP_FORMAT = "platform-backup/1";
/** Installed script, settings (non-secret, sourced by the script), S3 credentials (curl config, 0600), cron file, log. */
export const BACKUP_SCRIPT_PATH = "/srv/platform/bin/backup.sh";
export const BACKUP_SETTINGS_FILE = "/srv/platform/backup/backup.env";
export const BACKUP_CREDENTIALS_FILE = "/srv/platform/backup/s3-credentials";
/** The host's backup signing key (PKCS#8 PEM, 0600), delivered like its S3 key. */
export const BACKUP_SIGNING_KEY_FILE = "/srv/platform/backup/signing-key.pem";
export const BACKUP_CRON_FILE = "/etc/cron.d/platform-backup";
export const BACKUP_LOG_FILE = "/var/log/platform-backup.log";
/** The drill fails when an app's newest backup is older than this. */
export const MAX_BACKUP_AGE_HOURS = 26;

/** Members of the tar inside each `.tar.age` object, in this order. */
export const MANIFEST_FILE = "manifest.json";
export const GLOBALS_FILE = "globals.sql";
export const dumpFileName = (database: string): string => `${database}.pgdump`;

/**
 * Pins name resolution for a privileged session in a tenant's database: the database's owner (the
 * app's role) can `ALTER DATABASE … SET search_path` and create functions and operators that are
 * closer matches than pg_catalog's (`public.format(text, name, name)`), whose body would then run
 * with the caller's privileges. Every session privileged code opens in an app's database starts
 * with this line, and its queries qualify names and operators too.
 */
export const PIN_SEARCH_PATH_SQL = "SET search_path = pg_catalog, pg_temp;";

/**
 * Exact row count of every ordinary table (and leaf partition) outside the system schemas, as one
 * line of JSON. hostScripts/backup.sh runs this same text (a test keeps them equal) inside the snapshot
 * pg_dump uses, so the manifest describes exactly what the dump holds; a restore runs it on the new
 * database and compares. It runs as the superuser (or the managed admin) in a database the tenant
 * owns: every function, type and operator is qualified with pg_catalog, so no object of the tenant's
 * can stand in for one (and the session pins search_path first, PIN_SEARCH_PATH_SQL).
 */
export const ROW_COUNT_SQL =
    "SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('schema', n.nspname, 'table', c.relname, 'rows', " +
    "(pg_catalog.xpath('/row/n/text()'::pg_catalog.text, pg_catalog.query_to_xml(pg_catalog.format('SELECT pg_catalog.count(*) AS n FROM %I.%I'::pg_catalog.text, n.nspname, c.relname), false, true, ''::pg_catalog.text)))[1]::pg_catalog.text::pg_catalog.int8) " +
    "ORDER BY n.nspname, c.relname), '[]'::pg_catalog.jsonb) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace " +
    "WHERE c.relkind OPERATOR(pg_catalog.=) 'r' AND n.nspname OPERATOR(pg_catalog.<>) 'information_schema' AND n.nspname::pg_catalog.text OPERATOR(pg_catalog.!~~) 'pg\\_%'::pg_catalog.text;";

const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;
const APP = /^[a-z][a-z0-9-]{0,30}$/;
const STAMP = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const SHA256 = /^[0-9a-f]{64}$/;

export function isAgeRecipient(value: string): boolean {
    return AGE_RECIPIENT.test(value);
}

/** S3 bucket names: 3-63 lowercase letters, digits, dots and hyphens, starting and ending alphanumeric. */
export function isBucketName(value: string): boolean {
    return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(value) && !value.includes("..");
}

/** `https://host[:port]` (or plain http to a loopback address, for tests): no path, query or credentials. */
export function isS3Endpoint(value: string): boolean {
    if (/^https:\/\/[a-z0-9][a-z0-9.-]*[a-z0-9](:\d{1,5})?$/.test(value)) return true;
    return /^http:\/\/127\.0\.0\.1:\d{1,5}$/.test(value);
}

export function isRegion(value: string): boolean {
    return /^[a-z]{2,}(-[a-z0-9]+){1,3}$/.test(value);
}


// One definition of each, shared with config validation: what reaches cron and curl is what was validated.
export { isCronSchedule, isHeartbeatUrl };

/** `20260102T033000Z` for a time (UTC, seconds). */
export function stamp(date: Date): string {
    return date.toISOString().replace(/\.\d{3}Z$/, "Z").replace(/[-:]/g, "");
}

export function parseStamp(value: string): Date | undefined {
    const m = STAMP.exec(value);
    if (!m) return undefined;
    const date = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
    return stamp(date) === value ? date : undefined;
}

/** One backup of one app, named after the app and the time it was taken. */
export interface BackupRef {
    readonly app: string;
    /** `app1-20260102T033000Z` */
    readonly name: string;
    /** Object key (or path below the backup directory): `app1/app1-20260102T033000Z.tar.age` */
    readonly key: string;
    readonly createdAt: Date;
    /** Size of the encrypted object, when the listing says. */
    readonly bytes?: number;
    /** When the store got the object (S3 LastModified, a file's mtime): set by the store, not the writer. */
    readonly lastModified?: Date;
}

export function backupKey(app: string, at: Date): string {
    if (!APP.test(app)) throw new Error(`app name ${JSON.stringify(app)} cannot name a backup`);
    return `${app}/${app}-${stamp(at)}.tar.age`;
}

/** The BackupRef a key names, or undefined for anything else in the bucket (foreign or partial objects). */
export function parseBackupKey(key: string, bytes?: number, lastModified?: Date): BackupRef | undefined {
    const m = /^([a-z][a-z0-9-]{0,30})\/([a-z][a-z0-9-]{0,30})-(\d{8}T\d{6}Z)\.tar\.age$/.exec(key);
    if (!m || m[1] !== m[2]) return undefined;
    const createdAt = parseStamp(m[3]);
    if (!createdAt) return undefined;
    return { app: m[1], name: `${m[1]}-${m[3]}`, key, createdAt, bytes, ...(lastModified === undefined ? {} : { lastModified }) };
}

/** The order every listing is in: newest first. */
export function newestFirst(a: BackupRef, b: BackupRef): number {
    return b.createdAt.getTime() - a.createdAt.getTime() || (a.key < b.key ? 1 : -1);
}

export function sortBackups(refs: readonly BackupRef[]): BackupRef[] {
    return [...refs].sort(newestFirst);
}

/** Picks `--backup NAME` (a name or a key) or the newest; a clear error when there is none. */
export function chooseBackup(refs: readonly BackupRef[], app: string, wanted?: string): BackupRef {
    const sorted = sortBackups(refs.filter((r) => r.app === app));
    if (sorted.length === 0) throw new Error(`no backup of ${app} found`);
    if (wanted === undefined) return sorted[0];
    const found = sorted.find((r) => r.name === wanted || r.key === wanted || r.key === `${app}/${wanted}`);
    if (!found) throw new Error(`no backup of ${app} is named ${JSON.stringify(wanted)}; the newest are: ${sorted.slice(0, 5).map((r) => r.name).join(", ")}`);
    return found;
}

// ---------------------------------------------------------------------------------------------
// The manifest

export interface TableCount {
    readonly schema: string;
    readonly table: string;
    readonly rows: number;
}

export interface FileEntry {
    readonly file: string;
    readonly bytes: number;
    readonly sha256: string;
}

export type GlobalsMode = "globals" | "roles-only" | "none";

export interface Manifest {
    readonly format: typeof BACKUP_FORMAT;
    readonly name: string;
    readonly app: string;
    readonly database: string;
    readonly role: string;
    /** ISO time the snapshot was taken. */
    readonly createdAt: string;
    readonly server: { readonly version: string; readonly versionNum: number };
    readonly pgDump: string;
    readonly tables: readonly TableCount[];
    readonly dump: FileEntry;
    readonly globals: FileEntry;
    /**
     * What globals.sql holds: `globals` (roles and tablespaces), `roles-only`, or `none` (the server
     * refused both to a non-superuser; the file then says so). Absent in backups from before it existed.
     */
    readonly globalsMode?: GlobalsMode;
}

export class ManifestError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "ManifestError";
    }
}

/** Parses and checks a manifest strictly: a restore trusts nothing in it that this did not check. */
export function parseManifest(text: string): Manifest {
    let raw: any;
    try {
        raw = JSON.parse(text);
    } catch (e) {
        throw new ManifestError(`the manifest is not JSON: ${(e as Error).message}`);
    }
    const fail = (what: string): never => {
        throw new ManifestError(`the manifest ${what}`);
    };
    if (typeof raw !== "object" || raw === null) fail("is not an object");
    if (raw.format !== BACKUP_FORMAT) fail(`has format ${JSON.stringify(raw.format)}, expected ${BACKUP_FORMAT}`);
    if (typeof raw.app !== "string" || !APP.test(raw.app)) fail("has no valid app name");
    const names = appDatabaseNames(raw.app);
    if (raw.database !== names.database) fail(`names database ${JSON.stringify(raw.database)}, but app ${raw.app}'s is ${names.database}`);
    if (raw.role !== names.role) fail(`names role ${JSON.stringify(raw.role)}, but app ${raw.app}'s is ${names.role}`);
    if (typeof raw.createdAt !== "string" || Number.isNaN(Date.parse(raw.createdAt))) fail("has no valid createdAt");
    if (typeof raw.name !== "string" || raw.name !== `${raw.app}-${stamp(new Date(raw.createdAt))}`) fail(`has name ${JSON.stringify(raw.name)} that does not match its app and time`);
    if (typeof raw.server?.version !== "string" || !Number.isInteger(raw.server?.versionNum)) fail("has no server version");
    if (typeof raw.pgDump !== "string") fail("has no pg_dump version");
    if (!Array.isArray(raw.tables)) fail("has no table list");
    for (const t of raw.tables) {
        if (typeof t?.schema !== "string" || typeof t?.table !== "string" || !Number.isSafeInteger(t?.rows) || t.rows < 0) fail(`has a bad table entry ${JSON.stringify(t)}`);
    }
    const file = (entry: any, expected: string, what: string): FileEntry => {
        if (entry?.file !== expected) fail(`${what} file is ${JSON.stringify(entry?.file)}, expected ${expected}`);
        if (!Number.isSafeInteger(entry.bytes) || entry.bytes <= 0) fail(`${what} size is not a positive number`);
        if (typeof entry.sha256 !== "string" || !SHA256.test(entry.sha256)) fail(`${what} sha256 is not 64 hex digits`);
        return { file: entry.file, bytes: entry.bytes, sha256: entry.sha256 };
    };
    return {
        format: BACKUP_FORMAT,
        name: raw.name,
        app: raw.app,
        database: raw.database,
        role: raw.role,
        createdAt: raw.createdAt,
        server: { version: raw.server.version, versionNum: raw.server.versionNum },
        pgDump: raw.pgDump,
        tables: raw.tables.map((t: TableCount) => ({ schema: t.schema, table: t.table, rows: t.rows })),
        dump: file(raw.dump, dumpFileName(names.database), "dump"),
        globals: file(raw.globals, GLOBALS_FILE, "globals"),
        ...(raw.globalsMode === undefined ? {} : { globalsMode: globalsMode(raw.globalsMode) }),
    };
}

function globalsMode(value: unknown): GlobalsMode {
    if (value === "globals" || value === "roles-only" || value === "none") return value;
    throw new ManifestError(`the manifest has globalsMode ${JSON.stringify(value)}, expected globals, roles-only or none`);
}

/** The tar must hold exactly the three members, plain names, nothing else (no paths, no links). */
export function checkArchiveMembers(members: readonly string[], database: string): string[] {
    const expected = [MANIFEST_FILE, dumpFileName(database), GLOBALS_FILE].sort();
    const got = [...members].sort();
    return JSON.stringify(got) === JSON.stringify(expected) ? [] : [`the archive holds ${JSON.stringify(members)}, expected ${JSON.stringify(expected)}`];
}

/** Parses ROW_COUNT_SQL's output. */
export function parseRowCounts(text: string): TableCount[] {
    const parsed = JSON.parse(text.trim());
    if (!Array.isArray(parsed)) throw new Error("row counts are not a list");
    return parsed.map((t: any) => ({ schema: String(t.schema), table: String(t.table), rows: Number(t.rows) }));
}

/** Differences between what the manifest recorded and what a restored database holds; empty when equal. */
export function compareRowCounts(expected: readonly TableCount[], actual: readonly TableCount[]): string[] {
    const key = (t: TableCount) => `${JSON.stringify(t.schema)}.${JSON.stringify(t.table)}`;
    const want = new Map(expected.map((t) => [key(t), t.rows]));
    const have = new Map(actual.map((t) => [key(t), t.rows]));
    const problems: string[] = [];
    for (const [k, rows] of want) {
        if (!have.has(k)) problems.push(`table ${k} is missing (manifest: ${rows} rows)`);
        else if (have.get(k) !== rows) problems.push(`table ${k} has ${have.get(k)} rows, manifest says ${rows}`);
    }
    for (const [k, rows] of have) if (!want.has(k)) problems.push(`table ${k} (${rows} rows) is not in the manifest`);
    return problems;
}

export function totalRows(tables: readonly TableCount[]): number {
    return tables.reduce((sum, t) => sum + t.rows, 0);
}

// ---------------------------------------------------------------------------------------------
// Database names a restore uses

function checkDatabaseName(name: string): string {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`${JSON.stringify(name)} cannot name a database`);
    return name;
}

/** The new database a backup is restored into: `app1_db_restore_20260102t033000z`. */
export function restoreDatabaseName(database: string, backupName: string): string {
    const at = backupName.slice(backupName.lastIndexOf("-") + 1);
    if (!parseStamp(at)) throw new Error(`backup name ${JSON.stringify(backupName)} has no time`);
    return checkDatabaseName(`${database}_restore_${at.toLowerCase()}`);
}

/** What the app's previous database is renamed to (and kept): `app1_db_before_20260105t101010z`. */
export function keptDatabaseName(database: string, now: Date): string {
    return checkDatabaseName(`${database}_before_${stamp(now).toLowerCase()}`);
}

// ---------------------------------------------------------------------------------------------
// What the host runs

export type BackupDestination =
    | { readonly kind: "s3"; readonly endpoint: string; readonly bucket: string; readonly region: string; readonly credentialsFile: string }
    | { readonly kind: "directory"; readonly directory: string };

export interface BackupSettingsFile {
    /** Apps whose database is dumped, in order. */
    readonly apps: readonly string[];
    /** age recipient, or a file of recipients (the local stack's generated key). */
    readonly recipient: { readonly key: string } | { readonly file: string };
    readonly destination: BackupDestination;
    /** The Ed25519 key every backup is signed with (a file; the key itself never goes in the settings). */
    readonly signingKeyFile: string;
    readonly heartbeatUrl?: string;
    /** Where the script keeps its temporary files (plaintext dumps live there for minutes, 0700). */
    readonly workDir?: string;
    /** Where pg_dump runs and as whom; absent: the container database (platform-postgres, postgres). */
    readonly database?: DatabaseTarget;
}

/**
 * Where the backup and the restore run PostgreSQL's programs (`docker exec <container>`) and as which
 * user. The container database: its own container, as the superuser, over the local socket. The
 * managed database: the client container on host 0, whose environment holds the private endpoint and
 * the admin's password, as the admin (no superuser; a member of every app role).
 */
export interface DatabaseTarget {
    readonly container: string;
    readonly user: string;
}

export const CONTAINER_DATABASE_TARGET: DatabaseTarget = { container: "platform-postgres", user: "postgres" };
export const MANAGED_DATABASE_TARGET: DatabaseTarget = { container: MANAGED_CLIENT_CONTAINER, user: MANAGED_ADMIN_USER };

const CONTAINER_NAME = /^[a-z][a-z0-9_.-]{0,62}$/;
const PG_USER = /^[a-z_][a-z0-9_]{0,62}$/;

/** Throws unless both names are plain (they reach a shell, a settings file and `docker exec`). */
export function checkDatabaseTarget(t: DatabaseTarget): DatabaseTarget {
    if (typeof t?.container !== "string" || !CONTAINER_NAME.test(t.container)) throw new Error(`container name ${JSON.stringify(t?.container)} is not a plain name`);
    if (typeof t.user !== "string" || !PG_USER.test(t.user)) throw new Error(`database user ${JSON.stringify(t.user)} is not a plain role name`);
    return t;
}

const PLAIN_PATH = /^\/[A-Za-z0-9._/-]+$/;

/** `app1=app1_db app2=app2_db`: the script's BACKUP_TARGETS. */
export function backupTargets(apps: readonly string[]): string {
    return apps.map((app) => `${app}=${appDatabaseNames(app).database}`).join(" ");
}

/**
 * The settings file the script sources: `KEY='value'` lines, every value validated first and
 * single-quoted, so nothing in it is ever read as shell syntax. No secret goes here.
 */
export function renderBackupSettings(s: BackupSettingsFile): string {
    if (s.apps.length === 0) throw new Error("no app to back up");
    const vars: Record<string, string> = { BACKUP_TARGETS: backupTargets(s.apps) };
    if ("key" in s.recipient) {
        if (!isAgeRecipient(s.recipient.key)) throw new Error("the backup recipient is not an age1… public key");
        vars.AGE_RECIPIENT = s.recipient.key;
    } else {
        if (!PLAIN_PATH.test(s.recipient.file)) throw new Error(`recipients file ${JSON.stringify(s.recipient.file)} is not a plain absolute path`);
        vars.AGE_RECIPIENTS_FILE = s.recipient.file;
    }
    if (s.destination.kind === "s3") {
        const d = s.destination;
        if (!isS3Endpoint(d.endpoint)) throw new Error(`S3 endpoint ${JSON.stringify(d.endpoint)} is not https://host`);
        if (!isBucketName(d.bucket)) throw new Error(`bucket name ${JSON.stringify(d.bucket)} is not valid`);
        if (!isRegion(d.region)) throw new Error(`region ${JSON.stringify(d.region)} is not valid`);
        if (!PLAIN_PATH.test(d.credentialsFile)) throw new Error("the credentials file is not a plain absolute path");
        Object.assign(vars, { S3_ENDPOINT: d.endpoint, S3_BUCKET: d.bucket, S3_REGION: d.region, S3_CREDENTIALS_FILE: d.credentialsFile });
    } else {
        if (!PLAIN_PATH.test(s.destination.directory)) throw new Error(`backup directory ${JSON.stringify(s.destination.directory)} is not a plain absolute path`);
        vars.BACKUP_DIR = s.destination.directory;
    }
    if (!PLAIN_PATH.test(s.signingKeyFile)) throw new Error(`signing key file ${JSON.stringify(s.signingKeyFile)} is not a plain absolute path`);
    vars.SIGNING_KEY_FILE = s.signingKeyFile;
    if (s.heartbeatUrl !== undefined) {
        if (!isHeartbeatUrl(s.heartbeatUrl)) throw new Error("the heartbeat URL is not a plain https URL");
        vars.HEARTBEAT_URL = s.heartbeatUrl.replace(/\/$/, "");
    }
    if (s.workDir !== undefined) {
        if (!PLAIN_PATH.test(s.workDir)) throw new Error("the work directory is not a plain absolute path");
        vars.WORK_DIR = s.workDir;
    }
    if (s.database !== undefined) {
        checkDatabaseTarget(s.database);
        vars.PG_CONTAINER = s.database.container;
        vars.PG_USER = s.database.user;
    }
    return ["# Written by the platform program (components/backups.ts). Sourced by backup.sh: values only.", ...Object.entries(vars).map(([k, v]) => `${k}=${shellQuote(v)}`), ""].join("\n");
}

/** /etc/cron.d line: the schedule (UTC), as root, the script with its settings file, output appended to the log. */
export function renderBackupCron(schedule: string, script = BACKUP_SCRIPT_PATH, settings = BACKUP_SETTINGS_FILE, log = BACKUP_LOG_FILE): string {
    if (!isCronSchedule(schedule)) throw new Error(`${JSON.stringify(schedule)} is not a five-field cron schedule`);
    for (const p of [script, settings, log]) if (!PLAIN_PATH.test(p)) throw new Error(`${JSON.stringify(p)} is not a plain absolute path`);
    const fields = schedule.trim().split(/\s+/).join(" ");
    return [
        "# Nightly encrypted database backups (platform, components/backups.ts). Times are UTC.",
        "SHELL=/bin/sh",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        `${fields} root sh ${script} ${settings} >>${log} 2>&1`,
        "",
    ].join("\n");
}

/** Scaleway access keys: SCW + 17 uppercase letters or digits; secret keys: a UUID. */
export function isAccessKey(value: string): boolean {
    return /^SCW[A-Z0-9]{17}$/.test(value);
}
export function isSecretKey(value: string): boolean {
    return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(value);
}

/**
 * The host's S3 credentials as a curl config file (`curl -K file`): the key pair never appears on a
 * command line. Errors never include the values.
 */
export function renderCurlCredentials(accessKey: string, secretKey: string, check = true): string {
    if (check && !isAccessKey(accessKey)) throw new Error("the backup access key is not a Scaleway access key (SCW + 17 characters)");
    if (check && !isSecretKey(secretKey)) throw new Error("the backup secret key is not a Scaleway secret key (a UUID)");
    if (!/^[A-Za-z0-9_.+/=-]+$/.test(accessKey) || !/^[A-Za-z0-9_.+/=-]+$/.test(secretKey)) throw new Error("the backup credentials hold characters a curl config cannot carry");
    return `user = "${accessKey}:${secretKey}"\n`;
}

/** The Scaleway S3 endpoint of a region. */
export function scalewayS3Endpoint(region: string): string {
    if (!isRegion(region)) throw new Error(`region ${JSON.stringify(region)} is not valid`);
    return `https://s3.${region}.scw.cloud`;
}

/** The region of `https://s3.<region>.scw.cloud`, if the endpoint is one. */
export function regionOfEndpoint(endpoint: string): string | undefined {
    return /^https:\/\/s3\.([a-z]{2}-[a-z]{3})\.scw\.cloud$/.exec(endpoint)?.[1];
}

/**
 * Bucket policy (version 2023-04-17: only what it allows is allowed). The host's application may
 * put objects and nothing else: no read, list or delete, so a compromised host can neither read old
 * backups nor destroy them (object lock covers overwrites). Administrators (the identity that
 * deploys, which is also who restores and runs the drill) keep full access: without them the policy
 * would lock everyone but the organisation owner out.
 */
export function backupBucketPolicy(bucket: string, hostApplicationId: string, administrators: readonly string[], drillApplicationId?: string): object {
    if (!isBucketName(bucket)) throw new Error(`bucket name ${JSON.stringify(bucket)} is not valid`);
    if (administrators.length === 0) throw new Error("a backup bucket policy needs at least one administrator, or nobody could read the backups");
    for (const a of administrators) if (!/^(user_id|application_id):[0-9a-f-]{36}$/.test(a)) throw new Error(`administrator ${JSON.stringify(a)} is not user_id:<uuid> or application_id:<uuid>`);
    return {
        Version: "2023-04-17",
        Id: "platform-backups",
        Statement: [
            {
                Sid: "HostPutsBackupsOnly",
                Effect: "Allow",
                Principal: { SCW: `application_id:${hostApplicationId}` },
                Action: ["s3:PutObject"],
                Resource: [`${bucket}/*`],
            },
            ...(drillApplicationId === undefined
                ? []
                : [
                      {
                          // The drill lists and reads backups, nothing else: not the administrators' s3:*.
                          Sid: "DrillReadsOnly",
                          Effect: "Allow",
                          Principal: { SCW: `application_id:${drillApplicationId}` },
                          Action: ["s3:ListBucket", "s3:GetObject"],
                          Resource: [bucket, `${bucket}/*`],
                      },
                  ]),
            {
                Sid: "AdministratorsKeepAccess",
                Effect: "Allow",
                Principal: { SCW: [...administrators] },
                Action: ["s3:*"],
                Resource: [bucket, `${bucket}/*`],
            },
        ],
    };
}

/**
 * The IAM side of the host's access. Scaleway checks both an IAM policy and the bucket policy: a
 * principal "must be granted access via an IAM policy, and optionally via a bucket policy". The least
 * permission set that allows PutObject is `ObjectStorageObjectsWrite` ("create and edit objects"),
 * scoped to the bucket's project only; reading, listing and deleting stay out (ObjectStorageObjectsRead,
 * ObjectStorageBucketsRead and ObjectStorageObjectsDelete are not granted), and the bucket policy
 * narrows it further to `s3:PutObject` on this one bucket.
 */
export const HOST_PERMISSION_SETS: readonly string[] = ["ObjectStorageObjectsWrite"];

/**
 * The IAM side of the backup drill's own principal: read-only sets, in the bucket's project only
 * (listing the bucket and reading objects; no write, no delete), narrowed by the bucket policy to
 * s3:ListBucket and s3:GetObject on this one bucket. Its key is the drill's, never the deploying
 * identity's, so code planted in a restored database that reads the drill's environment gets read
 * access to backups it could already see through the drill, and nothing more.
 */
export const DRILL_PERMISSION_SETS: readonly string[] = ["ObjectStorageObjectsRead", "ObjectStorageBucketsRead"];

/**
 * Scaleway applies a new IAM policy or API key to Object Storage within "up to 5 minutes". The backup
 * that runs when the schedule is installed therefore retries a refused (HTTP 403) upload for at most
 * this long, every AUTH_RETRY_INTERVAL_SECONDS; past it the deployment fails with the store's answer.
 * Nightly runs do not wait: a refusal then is a real fault.
 */
export const IAM_PROPAGATION_WAIT_SECONDS = 360;
export const AUTH_RETRY_INTERVAL_SECONDS = 15;

/** The environment prefix of the first backup's command line: how long it waits for IAM (digits only). */
export function firstBackupEnvironment(waitSeconds = IAM_PROPAGATION_WAIT_SECONDS, intervalSeconds = AUTH_RETRY_INTERVAL_SECONDS): string {
    for (const n of [waitSeconds, intervalSeconds]) if (!Number.isInteger(n) || n < 0 || n > 3600) throw new Error(`backups: ${n} is not a whole number of seconds up to 3600`);
    return `UPLOAD_AUTH_WAIT_SECONDS=${waitSeconds} UPLOAD_AUTH_RETRY_SECONDS=${intervalSeconds}`;
}

// ---------------------------------------------------------------------------------------------
// The drill

export interface FreshnessInput {
    readonly app: string;
    /** The newest backup of the app, if any. */
    readonly newest?: BackupRef;
}

/** One problem per app without a backup newer than `maxAgeHours`. */
export function freshnessProblems(apps: readonly FreshnessInput[], now: Date, maxAgeHours = MAX_BACKUP_AGE_HOURS): string[] {
    const problems: string[] = [];
    for (const { app, newest } of apps) {
        if (!newest) {
            problems.push(`${app}: no backup at all`);
            continue;
        }
        const hours = (now.getTime() - newest.createdAt.getTime()) / 3_600_000;
        if (hours > maxAgeHours) problems.push(`${app}: newest backup ${newest.name} is ${hours.toFixed(1)} h old (limit ${maxAgeHours} h): the nightly backup has stopped`);
        if (hours < -1) problems.push(`${app}: newest backup ${newest.name} is dated ${(-hours).toFixed(1)} h in the future: check the host's clock`);
    }
    return problems;
}

export function formatBytes(bytes: number): string {
    if (bytes < 1024) return `${bytes} B`;
    const units = ["KiB", "MiB", "GiB", "TiB"];
    let v = bytes / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
        v /= 1024;
        i++;
    }
    return `${v.toFixed(1)} ${units[i]}`;
}
