// Restoring a backup: where backups are (a bucket or a directory), how to reach PostgreSQL (a direct
// connection, `docker exec` on this machine, or `docker exec` on the host over SSH), and the restore
// itself: decrypt, check, restore into a NEW database, compare row counts with the manifest, and
// only then swap it in for the app (the old database is renamed and kept). Used by
// commands/restore.ts (the operator's command), commands/backup-drill.ts and the tests.
import { spawn } from "child_process";
import { bytesSoFar, withProgress } from "./progress";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
    BackupRef,
    CONTAINER_DATABASE_TARGET,
    DatabaseTarget,
    checkDatabaseTarget,
    GLOBALS_FILE,
    MANIFEST_FILE,
    Manifest,
    PIN_SEARCH_PATH_SQL,
    ROW_COUNT_SQL,
    TableCount,
    checkArchiveMembers,
    chooseBackup,
    compareRowCounts,
    dumpFileName,
    formatBytes,
    keptDatabaseName,
    newestFirst,
    parseBackupKey,
    parseManifest,
    parseRowCounts,
    restoreDatabaseName,
    sortBackups,
    totalRows,
} from "../render/backup";
import { appDatabaseNames, quoteIdentifier, quoteLiteral } from "../render/postgres";
import { S3Client } from "./s3";
import { shellQuote } from "../render/shell";
import { BackupCandidate, SIGNATURE_SUFFIX, SignatureFile, TrustedKey, checkSignedBytes, verifyBackup } from "../render/signing";

/**
 * Where the local stack keeps its backups and, when no key is configured, its generated age key pair
 * and backup signing key (with the public half its own restore trusts).
 */
export function localBackupPaths(localDir: string) {
    const root = path.resolve(localDir);
    return {
        directory: path.join(root, "backups"),
        identity: path.join(root, "backup-identity.txt"),
        recipients: path.join(root, "backup-recipient.txt"),
        signingKey: path.join(root, "backup-signing-key.pem"),
        signingPublicKey: path.join(root, "backup-signing-key.pub"),
    };
}

// ---------------------------------------------------------------------------------------------
// Where backups are, and which of them are trusted

/** Which backups a reader trusts: those signed by a pinned key (render/signing.ts verifyBackup). */
export interface BackupTrust {
    readonly keys: readonly TrustedKey[];
    readonly now?: () => Date;
    /**
     * One backup, by name, taken although it has no signature: one made before signing existed
     * (`npm run restore -- --backup NAME --allow-unsigned`). Its times must still agree with its name.
     */
    readonly allowUnsigned?: string;
}

/** A backup the listing holds but no reader may use, and why. */
export interface RefusedBackup {
    readonly ref: BackupRef;
    readonly reason: string;
}

export interface BackupStore {
    describe(): string;
    /** Every trusted backup of `app`, newest first (refused() has the others). */
    list(app: string): Promise<BackupRef[]>;
    /** The backups of `app` that are not trusted, newest first, each with the reason. */
    refused(app: string): Promise<RefusedBackup[]>;
    /** Copies one trusted backup into `file` and checks its bytes are the signed ones; returns its size. */
    download(ref: BackupRef, file: string): Promise<number>;
    /** The pinned key that signed a listed trusted backup (undefined: unsigned, allowed by name). */
    signedBy(ref: BackupRef): string | undefined;
}

/**
 * The one place backups are trusted or not: a listing becomes trusted refs (signed by a pinned key,
 * stored when their names say) and refused ones; a download must hash to what was signed. The
 * bucket and the directory differ only in how they list and copy.
 */
abstract class TrustingStore implements BackupStore {
    private readonly verdicts = new Map<string, Promise<{ trusted: BackupRef[]; refused: RefusedBackup[] }>>();
    private readonly signed = new Map<string, SignatureFile | "unsigned-allowed">();

    constructor(private readonly trust: BackupTrust) {
        if (trust === undefined || !Array.isArray(trust.keys)) throw new Error("a backup store needs the trusted signing keys (platform:backupSigningKeys)");
    }

    abstract describe(): string;
    /** Every backup object of the app with its LastModified, and its signature object when there is one. */
    protected abstract candidates(app: string): Promise<BackupCandidate[]>;
    protected abstract copy(ref: BackupRef, file: string): Promise<number>;

    /** The listing's verdicts; `fresh` lists again (a backup may have appeared since). */
    private sorted(app: string, fresh = false) {
        let v = fresh ? undefined : this.verdicts.get(app);
        if (v === undefined) {
            v = this.candidates(app).then((cs) => {
                const now = (this.trust.now ?? (() => new Date()))();
                const trusted: BackupRef[] = [];
                const refused: RefusedBackup[] = [];
                for (const c of cs) {
                    if (c.ref.app !== app) continue;
                    const verdict = verifyBackup(c, this.trust.keys, now);
                    if (verdict.trusted) {
                        this.signed.set(c.ref.key, verdict.signed);
                        trusted.push(c.ref);
                    } else if (verdict.unsigned && this.trust.allowUnsigned === c.ref.name) {
                        this.signed.set(c.ref.key, "unsigned-allowed");
                        trusted.push(c.ref);
                    } else {
                        refused.push({ ref: c.ref, reason: verdict.reason });
                    }
                }
                return { trusted: sortBackups(trusted), refused: refused.sort((a, b) => newestFirst(a.ref, b.ref)) };
            });
            this.verdicts.set(app, v);
        }
        return v;
    }

    async list(app: string): Promise<BackupRef[]> {
        return (await this.sorted(app, true)).trusted;
    }

    async refused(app: string): Promise<RefusedBackup[]> {
        return (await this.sorted(app)).refused;
    }

    signedBy(ref: BackupRef): string | undefined {
        const signed = this.signed.get(ref.key);
        return signed === undefined || signed === "unsigned-allowed" ? undefined : signed.publicKey;
    }

    async download(ref: BackupRef, file: string): Promise<number> {
        if (!this.signed.has(ref.key)) await this.sorted(ref.app, true);
        const signed = this.signed.get(ref.key);
        if (signed === undefined) throw new BackupRejected(`${ref.name} is not a trusted backup of this store`);
        const size = await this.copy(ref, file);
        if (signed !== "unsigned-allowed") {
            const problem = checkSignedBytes(signed, size, await sha256File(file));
            if (problem !== undefined) {
                fs.rmSync(file, { force: true });
                throw new BackupRejected(problem);
            }
        }
        return size;
    }
}

/** The largest signature object read (the host's are about 400 bytes). */
const MAX_SIGNATURE_BYTES = 4096;

/** A file's first `max` bytes as text, or "" when it is longer or unreadable. */
function readCapped(file: string, max: number): string {
    let fd: number | undefined;
    try {
        fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
        const buf = Buffer.alloc(max + 1);
        const n = fs.readSync(fd, buf, 0, max + 1, 0);
        return n > max ? "" : buf.subarray(0, n).toString("utf8");
    } catch {
        return "";
    } finally {
        if (fd !== undefined) fs.closeSync(fd);
    }
}

export class S3BackupStore extends TrustingStore {
    constructor(
        private readonly client: S3Client,
        trust: BackupTrust,
    ) {
        super(trust);
    }
    describe(): string {
        return this.client.describe();
    }
    protected async candidates(app: string): Promise<BackupCandidate[]> {
        const objects = await this.client.list(`${app}/`);
        const signatures = new Map(objects.filter((o) => o.key.endsWith(SIGNATURE_SUFFIX)).map((o) => [o.key.slice(0, -SIGNATURE_SUFFIX.length), o]));
        const out: BackupCandidate[] = [];
        for (const o of objects) {
            const ref = parseBackupKey(o.key, o.size, o.lastModified);
            if (ref === undefined) continue;
            const sig = signatures.get(o.key);
            // A signature that cannot be read (too big, swapped, an archived storage class) refuses its
            // backup alone: one planted object must not make every other backup of the app unreachable.
            let text = "";
            if (sig !== undefined && sig.size <= MAX_SIGNATURE_BYTES) text = await this.client.getText(sig.key, MAX_SIGNATURE_BYTES).catch(() => "");
            out.push({ ref, signature: sig === undefined ? undefined : { text, lastModified: sig.lastModified } });
        }
        return out;
    }
    protected copy(ref: BackupRef, file: string): Promise<number> {
        return this.client.download(ref.key, file);
    }
}

/** The local stack's backups: `<directory>/<app>/<app>-<time>.tar.age` (and `.sig`), the bucket's layout. */
export class DirectoryBackupStore extends TrustingStore {
    constructor(
        private readonly directory: string,
        trust: BackupTrust,
    ) {
        super(trust);
    }
    describe(): string {
        return this.directory;
    }
    protected async candidates(app: string): Promise<BackupCandidate[]> {
        const dir = path.join(this.directory, app);
        if (!fs.existsSync(dir)) return [];
        const out: BackupCandidate[] = [];
        for (const f of fs.readdirSync(dir)) {
            const stat = fs.lstatSync(path.join(dir, f));
            const ref = parseBackupKey(`${app}/${f}`, stat.size, stat.mtime);
            if (ref === undefined || !stat.isFile()) continue;
            const sigFile = path.join(dir, f + SIGNATURE_SUFFIX);
            const sig = fs.existsSync(sigFile) ? fs.lstatSync(sigFile) : undefined;
            // Regular files only, read no further than the cap: a directory, a FIFO or a link to
            // /dev/zero where a signature should be refuses that backup, and hangs nothing.
            const signature = sig === undefined ? undefined : { text: sig.isFile() ? readCapped(sigFile, MAX_SIGNATURE_BYTES) : "", lastModified: sig.mtime };
            out.push({ ref, signature });
        }
        return out;
    }
    protected async copy(ref: BackupRef, file: string): Promise<number> {
        fs.copyFileSync(path.join(this.directory, ref.key), file);
        fs.chmodSync(file, 0o600);
        return fs.statSync(file).size;
    }
}

// ---------------------------------------------------------------------------------------------
// How to reach PostgreSQL

export type PgProgram = "psql" | "pg_restore";

/** A login of its own for one restore: a role that is a member of the app's role only (createRestoreLogin). */
export interface PgLogin {
    readonly user: string;
    readonly password: string;
}

/** Runs psql or pg_restore as the server's superuser (or the managed admin); stdin from a file or text; resolves stdout. */
export interface PgRunner {
    readonly description: string;
    run(program: PgProgram, args: readonly string[], stdin?: { file: string } | { text: string }): Promise<string>;
    /**
     * The same way to the server, logged in as `login` instead (its password never on a command line:
     * in the environment, or on the remote command's stdin for ssh). Used to run the tenant's restore
     * with the tenant's rights only.
     */
    as(login: PgLogin): PgRunner;
}

type Stdin = { file: string; prefix?: string } | { text: string };

function runProcess(file: string, args: readonly string[], env: NodeJS.ProcessEnv, stdin?: Stdin): Promise<string> {
    return new Promise((resolve, reject) => {
        const child = spawn(file, [...args], { env, stdio: ["pipe", "pipe", "pipe"] });
        const out: Buffer[] = [];
        let err = "";
        child.stdout.on("data", (d: Buffer) => out.push(d));
        child.stderr.on("data", (d: Buffer) => (err += d.toString()));
        child.stdin.on("error", () => undefined); // the exit status tells
        child.on("error", (e) => reject(new Error(`${file}: ${e.message}`)));
        child.on("close", (code) => {
            if (code === 0) resolve(Buffer.concat(out).toString("utf8"));
            else reject(new Error(`${path.basename(file)} exited with ${code}: ${err.trim()}`));
        });
        if (stdin === undefined) child.stdin.end();
        else if ("text" in stdin) child.stdin.end(stdin.text);
        else {
            if (stdin.prefix !== undefined) child.stdin.write(stdin.prefix);
            fs.createReadStream(stdin.file).on("error", reject).pipe(child.stdin);
        }
    });
}

/** A direct connection (tests, the drill): the password goes in PGPASSWORD, never on a command line. */
export function directRunner(conn: { host: string; port: number; user: string; password: string; binDir?: string }): PgRunner {
    const env = { ...process.env, PGPASSWORD: conn.password, PGCONNECT_TIMEOUT: "10" };
    const bin = (p: string) => (conn.binDir ? path.join(conn.binDir, p) : p);
    return {
        description: `${conn.user}@${conn.host}:${conn.port}`,
        run: (program, args, stdin) => runProcess(bin(program), ["-h", conn.host, "-p", String(conn.port), "-U", conn.user, ...args], env, stdin),
        as: (login) => directRunner({ ...conn, user: login.user, password: login.password }),
    };
}

function target(t: DatabaseTarget | string): DatabaseTarget {
    return checkDatabaseTarget(typeof t === "string" ? { ...CONTAINER_DATABASE_TARGET, container: t } : t);
}

/**
 * `docker exec -i <container>` on this machine (the local stack): the container database's own
 * binaries over its local socket as the superuser, or (a target naming another container and user)
 * the managed client container as the admin.
 */
export function dockerExecRunner(where: DatabaseTarget | string = CONTAINER_DATABASE_TARGET, docker = "docker"): PgRunner {
    const t = target(where);
    return {
        description: `docker exec ${t.container} as ${t.user}`,
        run: (program, args, stdin) => runProcess(docker, ["exec", "-i", t.container, program, "-U", t.user, ...args], process.env, stdin),
        as: (login) => {
            checkLoginName(login.user);
            return {
                description: `docker exec ${t.container} as ${login.user}`,
                // `-e PGPASSWORD` without a value: docker passes this process's value, never the command line's.
                run: (program, args, stdin) => runProcess(docker, ["exec", "-i", "-e", "PGPASSWORD", t.container, program, "-U", login.user, ...args], { ...process.env, PGPASSWORD: login.password }, stdin),
                as: () => {
                    throw new Error("a restore login cannot switch again");
                },
            };
        },
    };
}

function checkLoginName(user: string): void {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(user)) throw new Error(`login ${JSON.stringify(user)} is not a plain role name`);
}

/**
 * `ssh <destination> docker exec -i <container> …` on the server (host 0 on a scaled stack): the
 * container database's own pg_restore over its local socket as the superuser (no password needed, the
 * dump's version always matches), or the managed client container as the admin (its password is in
 * that container's environment, never on this machine). `sshOptions` pin the host key
 * (io/hostAccess.ts); BatchMode is always on. The remote command is one string, every word
 * shell-quoted; the dump travels on stdin.
 */
export function sshDockerRunner(destination: string, sshOptions: readonly string[] = [], where: DatabaseTarget | string = CONTAINER_DATABASE_TARGET): PgRunner {
    if (!/^[a-z_][a-z0-9_-]*@[A-Za-z0-9.:-]+$/.test(destination)) throw new Error(`ssh destination ${JSON.stringify(destination)} is not user@host`);
    const t = target(where);
    return {
        description: `ssh ${destination} docker exec ${t.container} as ${t.user}`,
        run: (program, args, stdin) => {
            const remote = ["docker", "exec", "-i", t.container, program, "-U", t.user, ...args].map(shellQuote).join(" ");
            return runProcess("ssh", ["-o", "BatchMode=yes", ...sshOptions, destination, "--", remote], process.env, stdin);
        },
        as: (login) => {
            checkLoginName(login.user);
            if (!/^[A-Za-z0-9_-]+$/.test(login.password)) throw new Error("a restore login's password must be plain (letters, digits, _ and -)");
            return {
                description: `ssh ${destination} docker exec ${t.container} as ${login.user}`,
                // The password is the first line of the remote command's stdin: the remote shell reads it
                // (byte by byte, so the rest stays for pg_restore) into the environment `docker exec -e` passes on.
                run: (program, args, stdin) => {
                    const exec = ["docker", "exec", "-i", "-e", "PGPASSWORD", t.container, program, "-U", login.user, ...args].map(shellQuote).join(" ");
                    const remote = `IFS= read -r PGPASSWORD && export PGPASSWORD && exec ${exec}`;
                    const line = `${login.password}\n`;
                    const input: Stdin = stdin === undefined ? { text: line } : "text" in stdin ? { text: line + stdin.text } : { file: stdin.file, prefix: line };
                    return runProcess("ssh", ["-o", "BatchMode=yes", ...sshOptions, destination, "--", remote], process.env, input);
                },
                as: () => {
                    throw new Error("a restore login cannot switch again");
                },
            };
        },
    };
}

/**
 * Runs SQL (on stdin) in `database`; unaligned tuples only. The session pins search_path first
 * (PIN_SEARCH_PATH_SQL): an app database's owner can set its own and plant look-alikes of pg_catalog's
 * functions and operators, which must never run with the admin's rights.
 */
export function sql(runner: PgRunner, database: string, text: string): Promise<string> {
    return runner.run("psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", database], { text: `${PIN_SEARCH_PATH_SQL}\n${text}` });
}

/** SCRAM-SHA-256 verifier of `password` (RFC 5802/7677, PostgreSQL's format): the server never sees the password itself. */
export function scramVerifier(password: string, salt = crypto.randomBytes(16), iterations = 4096): string {
    const salted = crypto.pbkdf2Sync(password, salt, iterations, 32, "sha256");
    const clientKey = crypto.createHmac("sha256", salted).update("Client Key").digest();
    const storedKey = crypto.createHash("sha256").update(clientKey).digest();
    const serverKey = crypto.createHmac("sha256", salted).update("Server Key").digest();
    return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

/**
 * A login role for one restore: a member of the app's role and of nothing else, no attribute (no
 * SUPERUSER, CREATEROLE, CREATEDB, BYPASSRLS, REPLICATION), a random password (only its SCRAM
 * verifier reaches the server), valid for two hours. pg_restore runs as it with `--role <app role>`,
 * so every expression the dump holds (CHECK and domain constraints, index expressions, the tenant's
 * functions) runs with the app's rights, never the superuser's or the managed admin's (who is a member
 * of every app role: a restore of app1 must not reach app2 through it). Not SET ROLE from an admin
 * session: code running there could RESET ROLE back to the admin.
 */
export async function createRestoreLogin(runner: PgRunner, role: string): Promise<PgLogin> {
    const user = `platform_restore_${crypto.randomBytes(6).toString("hex")}`;
    const password = crypto.randomBytes(24).toString("base64url");
    const until = new Date(Date.now() + 2 * 3_600_000).toISOString();
    await sql(
        runner,
        "postgres",
        `CREATE ROLE ${quoteIdentifier(user)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT CONNECTION LIMIT 2 VALID UNTIL ${quoteLiteral(until)} PASSWORD ${quoteLiteral(scramVerifier(password))} IN ROLE ${quoteIdentifier(role)};\n`,
    );
    return { user, password };
}

/**
 * Ends the login's sessions and drops it. pg_restore ran under `--role` the app's role, so the login
 * owns nothing unless the tenant's code switched back to it: then what it came to own goes to the
 * app's role first (the admin takes the login's membership to be allowed to, and drops it with the login).
 */
export async function dropRestoreLogin(runner: PgRunner, login: PgLogin, role: string, databases: readonly string[]): Promise<void> {
    const u = quoteIdentifier(login.user);
    const l = quoteLiteral(login.user);
    await sql(runner, "postgres", `SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity WHERE usename OPERATOR(pg_catalog.=) ${l};\n`);
    const owns = (await sql(runner, "postgres", `SELECT count(*) FROM pg_catalog.pg_shdepend d JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) d.refobjid WHERE r.rolname OPERATOR(pg_catalog.=) ${l} AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_authid'::pg_catalog.regclass AND d.deptype OPERATOR(pg_catalog.<>) 'r'::"char";\n`)).trim();
    if (owns !== "0") {
        await sql(runner, "postgres", `GRANT ${u} TO CURRENT_USER;\n`);
        for (const db of [...databases, "postgres"]) {
            if (await databaseExists(runner, db)) await sql(runner, db, `REASSIGN OWNED BY ${u} TO ${quoteIdentifier(role)};\nDROP OWNED BY ${u};\n`);
        }
    }
    await sql(runner, "postgres", `DROP ROLE ${u};\n`);
}

export async function countRows(runner: PgRunner, database: string): Promise<TableCount[]> {
    return parseRowCounts(await sql(runner, database, ROW_COUNT_SQL));
}

// ---------------------------------------------------------------------------------------------
// Decrypting and checking a downloaded backup

export class BackupRejected extends Error {
    constructor(message: string) {
        super(message);
        this.name = "BackupRejected";
    }
}

export interface OpenedBackup {
    readonly manifest: Manifest;
    readonly dumpFile: string;
    readonly globalsFile: string;
}

function sha256File(file: string): Promise<string> {
    return new Promise((resolve, reject) => {
        const hash = crypto.createHash("sha256");
        fs.createReadStream(file)
            .on("data", (d) => hash.update(d))
            .on("error", reject)
            .on("end", () => resolve(hash.digest("hex")));
    });
}

/**
 * Decrypts `encrypted` with the age identity file into `dir` and checks it: only the three expected
 * members, a valid manifest for `app`, and a dump whose size and sha256 are the manifest's. Any
 * failure is a BackupRejected that says what is wrong; nothing has touched a database yet.
 */
export async function openBackup(encrypted: string, identityFile: string, dir: string, app: string, expectedName?: string, age = "age", tar = "tar"): Promise<OpenedBackup> {
    if (!fs.existsSync(identityFile)) throw new BackupRejected(`the age identity file ${identityFile} does not exist (the private key that matches platform:backupPublicKey)`);
    const tarFile = path.join(dir, "backup.tar");
    try {
        await runProcess(age, ["--decrypt", "-i", identityFile, "-o", tarFile, encrypted], process.env);
    } catch (e) {
        const message = (e as Error).message;
        fs.rmSync(tarFile, { force: true });
        if (/no identity matched/i.test(message)) {
            throw new BackupRejected(`this backup was not encrypted for the key in ${identityFile}: use the private key whose public half is platform:backupPublicKey (age said: ${message.replace(/^.*?: /, "")})`);
        }
        throw new BackupRejected(`this backup cannot be decrypted: it is corrupted or truncated (age said: ${message.replace(/^.*?: /, "")})`);
    }
    const { database } = appDatabaseNames(app);
    const members = (await runProcess(tar, ["-tf", tarFile], process.env)).split("\n").filter(Boolean);
    const problems = checkArchiveMembers(members, database);
    if (problems.length > 0) throw new BackupRejected(problems.join("; "));
    await runProcess(tar, ["-xf", tarFile, "-C", dir, "--no-same-owner", "--no-same-permissions", MANIFEST_FILE, dumpFileName(database), GLOBALS_FILE], process.env);
    fs.rmSync(tarFile);
    let manifest: Manifest;
    try {
        manifest = parseManifest(fs.readFileSync(path.join(dir, MANIFEST_FILE), "utf8"));
    } catch (e) {
        throw new BackupRejected((e as Error).message);
    }
    if (manifest.app !== app) throw new BackupRejected(`this backup is of app ${manifest.app}, not ${app}`);
    // An old backup copied under a newer name must not pass for a fresh one.
    if (expectedName !== undefined && manifest.name !== expectedName) throw new BackupRejected(`the manifest names backup ${manifest.name}, but the object is ${expectedName}`);
    const dumpFile = path.join(dir, manifest.dump.file);
    const globalsFile = path.join(dir, GLOBALS_FILE);
    for (const [file, entry] of [
        [dumpFile, manifest.dump],
        [globalsFile, manifest.globals],
    ] as const) {
        const size = fs.statSync(file).size;
        const sha = await sha256File(file);
        if (size !== entry.bytes || sha !== entry.sha256) {
            throw new BackupRejected(`${entry.file} does not match the manifest (${size} bytes, sha256 ${sha.slice(0, 12)}…; manifest: ${entry.bytes} bytes, ${entry.sha256.slice(0, 12)}…)`);
        }
    }
    return { manifest, dumpFile, globalsFile };
}

// ---------------------------------------------------------------------------------------------
// Restoring

export type Log = (line: string) => void;

async function databaseExists(runner: PgRunner, name: string): Promise<boolean> {
    return (await sql(runner, "postgres", `SELECT 1 FROM pg_database WHERE datname = ${quoteLiteral(name)};`)).trim() === "1";
}

async function roleExists(runner: PgRunner, name: string): Promise<boolean> {
    return (await sql(runner, "postgres", `SELECT 1 FROM pg_roles WHERE rolname = ${quoteLiteral(name)};`)).trim() === "1";
}

/**
 * Creates `target` owned by the app's role (CONNECT revoked from PUBLIC, as the platform declares
 * app databases), restores the dump into it in one transaction, and compares every table's row
 * count with the manifest. On any failure the new database is dropped and the error says why; the
 * app's own database is never touched here.
 */
export async function restoreIntoNewDatabase(runner: PgRunner, opened: OpenedBackup, target: string, log: Log): Promise<TableCount[]> {
    const { manifest } = opened;
    if (!(await roleExists(runner, manifest.role))) {
        throw new Error(`role ${manifest.role} does not exist on the server: deploy the app first (pulumi up), then restore`);
    }
    // A non-superuser admin (the managed database's) acts through its membership in the app's role.
    const access = (await sql(runner, "postgres", `SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) OR pg_has_role(current_user, ${quoteLiteral(manifest.role)}, 'MEMBER');`)).trim();
    if (access !== "t") {
        throw new Error(`the connecting user is neither a superuser nor a member of ${manifest.role}, so it cannot create a database owned by it: on the managed database run \`pulumi up\` (it makes the admin a member of every app role, for the backups and restores)`);
    }
    if (await databaseExists(runner, target)) throw new Error(`database ${target} already exists (an earlier restore of this backup?): drop or rename it first`);
    await sql(
        runner,
        "postgres",
        [
            `CREATE DATABASE ${quoteIdentifier(target)} OWNER ${quoteIdentifier(manifest.role)} ENCODING 'UTF8' TEMPLATE template0;`,
            `REVOKE ALL ON DATABASE ${quoteIdentifier(target)} FROM PUBLIC;`,
            "",
        ].join("\n"),
    );
    try {
        const started = Date.now();
        // As a login of its own that holds the app's rights only, objects owned by the app's role.
        const login = await createRestoreLogin(runner, manifest.role);
        try {
            await runner
                .as(login)
                .run("pg_restore", ["--dbname", target, "--exit-on-error", "--single-transaction", "--no-password", "--no-owner", `--role=${manifest.role}`], { file: opened.dumpFile });
        } finally {
            await dropRestoreLogin(runner, login, manifest.role, [target]);
        }
        log(`      pg_restore finished in ${((Date.now() - started) / 1000).toFixed(1)} s, as ${login.user} (a member of ${manifest.role} only, dropped since)`);
        const counts = await countRows(runner, target);
        const problems = compareRowCounts(manifest.tables, counts);
        if (problems.length > 0) throw new BackupRejected(`the restored database does not match the manifest: ${problems.join("; ")}`);
        return counts;
    } catch (e) {
        await sql(runner, "postgres", `DROP DATABASE IF EXISTS ${quoteIdentifier(target)};`).catch(() => undefined);
        log(`      dropped ${target} (the restore failed); ${manifest.database} was not touched`);
        throw e;
    }
}

/** SQL that swaps `restored` in for `database` in one transaction: either all of it happens or none. */
export function swapSql(database: string, restored: string, kept: string): string {
    const d = quoteIdentifier(database);
    return [
        "BEGIN;",
        // Ended inside the transaction: RENAME waits (up to 5 s) for them to go, and a session that
        // comes back before the rename makes it fail, which rolls everything back (then it is retried).
        `SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity WHERE datname OPERATOR(pg_catalog.=) ANY (ARRAY[${quoteLiteral(database)}, ${quoteLiteral(restored)}]::pg_catalog.name[]) AND pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid();`,
        `ALTER DATABASE ${d} RENAME TO ${quoteIdentifier(kept)};`,
        `ALTER DATABASE ${quoteIdentifier(restored)} RENAME TO ${d};`,
        `ALTER DATABASE ${d} WITH ALLOW_CONNECTIONS true;`,
        `REVOKE ALL ON DATABASE ${d} FROM PUBLIC;`,
        "COMMIT;",
        "",
    ].join("\n");
}

interface SwapState {
    /** name → accepts connections */
    readonly databases: ReadonlyMap<string, boolean>;
}

async function swapState(runner: PgRunner, names: readonly string[]): Promise<SwapState> {
    const out = await sql(runner, "postgres", `SELECT datname, datallowconn FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) ANY (ARRAY[${names.map(quoteLiteral).join(", ")}]::pg_catalog.name[]);\n`);
    const databases = new Map<string, boolean>();
    for (const line of out.split("\n").filter(Boolean)) {
        const [name, allow] = line.split("|");
        databases.set(name, allow === "t");
    }
    return { databases };
}

/** What the server says now, in words, with the exact SQL that finishes or undoes the swap. */
function describeSwap(state: SwapState | undefined, database: string, restored: string, kept: string): string {
    const check = `SELECT datname, datallowconn FROM pg_database WHERE datname IN (${[database, restored, kept].map(quoteLiteral).join(", ")});`;
    const reopen = `ALTER DATABASE ${quoteIdentifier(database)} WITH ALLOW_CONNECTIONS true;`;
    if (state === undefined) {
        return `the server could not be asked what state it is in. Check with: ${check} — if ${restored} is still there, swap by hand with: ${swapSql(database, restored, kept).replace(/\n/g, " ").trim()}; if ${database} shows datallowconn f, run: ${reopen}`;
    }
    const has = (n: string) => state.databases.has(n);
    const open = state.databases.get(database) === true;
    if (has(database) && !has(restored) && has(kept)) {
        return `checked: the swap happened (${database} is the restored copy${open ? ", accepting connections" : ", NOT accepting connections: run " + reopen}; the previous one is ${kept})`;
    }
    if (has(database) && has(restored) && !has(kept)) {
        return `checked: nothing was swapped (${database} is unchanged and ${open ? "accepts connections" : "does NOT accept connections: run " + reopen}; ${restored} holds the checked restore). To swap by hand: ${swapSql(database, restored, kept).replace(/\n/g, " ").trim()}`;
    }
    return `checked: unexpected state (${[database, restored, kept].map((n) => `${n}: ${has(n) ? (state.databases.get(n) ? "present, open" : "present, closed") : "absent"}`).join("; ")}); look with: ${check}`;
}

/**
 * Puts `restored` in place of the app's database in ONE transaction: the app's sessions are ended,
 * old → kept and restored → the app's name are renamed, CONNECT revoked from PUBLIC, then COMMIT. An
 * interruption anywhere (a cut SSH session, a killed command) rolls all of it back on the server, so
 * the swap is never half done, and the database never stays closed. Every message about the outcome
 * is checked against the server first, and a failure prints the exact SQL that finishes the swap.
 * The old database is kept, never dropped. Returns the name it was kept under (undefined when the app
 * had no database, e.g. on a rebuilt server).
 */
export async function swapDatabase(runner: PgRunner, database: string, restored: string, now: Date, log: Log): Promise<string | undefined> {
    const d = quoteIdentifier(database);
    const r = quoteIdentifier(restored);
    if (!(await databaseExists(runner, database))) {
        await sql(runner, "postgres", `ALTER DATABASE ${r} RENAME TO ${d};\nREVOKE ALL ON DATABASE ${d} FROM PUBLIC;\n`);
        log(`      ${database} did not exist: ${restored} renamed to ${database}`);
        return undefined;
    }
    const kept = keptDatabaseName(database, now);
    let terminated = 0;
    for (let attempt = 1; ; attempt++) {
        try {
            terminated += Number((await sql(runner, "postgres", swapSql(database, restored, kept))).trim()) || 0;
            break;
        } catch (e) {
            if (attempt < 40 && /being accessed by other users/.test((e as Error).message)) {
                await new Promise((res) => setTimeout(res, 250));
                continue;
            }
            const state = await swapState(runner, [database, restored, kept]).catch(() => undefined);
            throw new Error(`the swap did not complete (${(e as Error).message.trim()}); ${describeSwap(state, database, restored, kept)}`);
        }
    }
    const state = await swapState(runner, [database, restored, kept]).catch(() => undefined);
    const done = state !== undefined && state.databases.get(database) === true && state.databases.has(kept) && !state.databases.has(restored);
    if (!done) throw new Error(`the swap's transaction returned, but ${describeSwap(state, database, restored, kept)}`);
    log(`      ended ${terminated} session(s) on ${database}; ${database} → ${kept} (kept); ${restored} → ${database}; CONNECT revoked from PUBLIC (checked on the server)`);
    return kept;
}

export interface RestoreOptions {
    readonly store: BackupStore;
    readonly runner: PgRunner;
    readonly app: string;
    /** A backup name (`app1-20260102T033000Z`) or key; the newest when undefined. */
    readonly backup?: string;
    /** age identity file (the private key). */
    readonly identityFile: string;
    /** Restore and check, then drop the restored copy: the app's database is not swapped. */
    readonly dryRun?: boolean;
    readonly log?: Log;
    readonly now?: () => Date;
    /** Where the plaintext lives during the restore (a private temp dir by default, removed after). */
    readonly workDir?: string;
    /**
     * Asked after the checks, right before the swap, with the data-loss window in words (writes since
     * the backup was taken stay only in the kept database). false: nothing is swapped, the checked
     * copy is dropped. Undefined: no question (the command asks it on a stack that matters, or takes --yes).
     */
    readonly confirm?: (question: string) => Promise<boolean>;
    /** A long step (download, decrypt, pg_restore) prints a progress line this often (default 10 s). */
    readonly progressMs?: number;
}

export interface RestoreResult {
    readonly backup: BackupRef;
    readonly manifest: Manifest;
    readonly restoredInto: string;
    readonly swapped: boolean;
    /** Name the app's previous database was kept under. */
    readonly kept?: string;
    readonly counts: readonly TableCount[];
    readonly seconds: { download: number; restore: number; total: number };
}

/** The operator's restore, step by step, each step printed. Throws (having changed nothing of the app) on any failed check. */
export async function restoreBackup(o: RestoreOptions): Promise<RestoreResult> {
    const log = o.log ?? ((line: string) => console.log(line));
    const now = o.now ?? (() => new Date());
    const started = Date.now();
    const { database, role } = appDatabaseNames(o.app);
    log(`restore: app ${o.app} (database ${database}, role ${role}); backups in ${o.store.describe()}; server via ${o.runner.description}${o.dryRun ? "; DRY RUN (no swap)" : ""}`);

    const refs = await o.store.list(o.app);
    const refused = await o.store.refused(o.app);
    const wantedRefused = o.backup === undefined ? undefined : refused.find((r) => r.ref.name === o.backup || r.ref.key === o.backup || r.ref.key === `${o.app}/${o.backup}`);
    if (wantedRefused !== undefined) {
        const hint = /not signed/.test(wantedRefused.reason) ? " (a backup made before signing existed: add --allow-unsigned to take it anyway)" : "";
        throw new BackupRejected(`${wantedRefused.ref.name} is refused: ${wantedRefused.reason}${hint}`);
    }
    if (refs.length === 0 && refused.length > 0) {
        throw new BackupRejected(`no trusted backup of ${o.app}: ${refused.length} refused, the newest ${refused[0].ref.name}: ${refused[0].reason}`);
    }
    const chosen = chooseBackup(refs, o.app, o.backup);
    for (const r of refused.filter((r) => r.ref.createdAt.getTime() > chosen.createdAt.getTime())) log(`WARNING: skipped ${r.ref.name}, newer than ${chosen.name}: ${r.reason}`);
    const ageHours = (now().getTime() - chosen.createdAt.getTime()) / 3_600_000;
    log(`[1/6] list: ${refs.length} trusted backup(s) of ${o.app}${refused.length ? ` (${refused.length} refused)` : ""}; newest ${refs[0].name}; using ${chosen.name} (${ageHours.toFixed(1)} h old${chosen.bytes === undefined ? "" : `, ${formatBytes(chosen.bytes)}`})`);

    const dir = fs.mkdtempSync(path.join(o.workDir ?? os.tmpdir(), "platform-restore-"));
    fs.chmodSync(dir, 0o700);
    try {
        const encrypted = path.join(dir, path.basename(chosen.key));
        const t0 = Date.now();
        const sizeSoFar = () => (fs.existsSync(encrypted) ? fs.statSync(encrypted).size : 0);
        const bytes = await withProgress(log, "[2/6] download", () => o.store.download(chosen, encrypted), { everyMs: o.progressMs, detail: () => bytesSoFar(sizeSoFar(), chosen.bytes, formatBytes) });
        const download = (Date.now() - t0) / 1000;
        log(`[2/6] download: ${chosen.key} (${formatBytes(bytes)}) in ${download.toFixed(1)} s; ${o.store.signedBy(chosen) === undefined ? "UNSIGNED, taken because --allow-unsigned names it" : `its sha256 is the one signed by ${o.store.signedBy(chosen)}`}`);

        const opened = await withProgress(log, "[3/6] decrypt", () => openBackup(encrypted, o.identityFile, dir, o.app, chosen.name), { everyMs: o.progressMs });
        fs.rmSync(encrypted);
        const m = opened.manifest;
        log(
            `[3/6] decrypt: with ${o.identityFile}; manifest ${m.name}: ${m.database} taken ${m.createdAt} from PostgreSQL ${m.server.version} by ${m.pgDump}; ` +
                `${m.tables.length} table(s), ${totalRows(m.tables)} row(s); dump ${formatBytes(m.dump.bytes)}, sha256 matches`,
        );

        const target = restoreDatabaseName(m.database, m.name);
        const t1 = Date.now();
        log(`[4/6] restore: into new database ${target} (owner ${m.role}, CONNECT revoked from PUBLIC)`);
        const counts = await withProgress(log, "[4/6] restore", () => restoreIntoNewDatabase(o.runner, opened, target, log), { everyMs: o.progressMs, detail: () => `pg_restore of ${formatBytes(m.dump.bytes)}` });
        const restore = (Date.now() - t1) / 1000;
        log(`[5/6] verify: row counts of ${counts.length} table(s) match the manifest: ${counts.map((c) => `${c.schema}.${c.table}=${c.rows}`).join(", ") || "(no tables)"}`);

        let kept: string | undefined;
        if (o.dryRun) {
            await sql(o.runner, "postgres", `DROP DATABASE ${quoteIdentifier(target)};`);
            log(`[6/6] swap: skipped (dry run); dropped ${target}; ${m.database} untouched`);
        } else {
            const at = now();
            const hours = (at.getTime() - new Date(m.createdAt).getTime()) / 3_600_000;
            const window = `writes made to ${m.database} between the backup (${m.createdAt}) and now (${at.toISOString().replace(/\.\d{3}Z$/, "Z")}, ${hours.toFixed(1)} h) will no longer be in ${m.database}: they stay only in the kept copy ${keptDatabaseName(m.database, at)}`;
            if (o.confirm !== undefined && !(await o.confirm(`Swap ${target} in for ${m.database}? ${window}.`))) {
                await sql(o.runner, "postgres", `DROP DATABASE ${quoteIdentifier(target)};`);
                log(`[6/6] swap: NOT confirmed; dropped ${target}; ${m.database} untouched`);
                return { backup: chosen, manifest: m, restoredInto: target, swapped: false, kept: undefined, counts, seconds: { download, restore, total: (Date.now() - started) / 1000 } };
            }
            log(`[6/6] swap: ${target} becomes ${m.database}; ${window}`);
            kept = await swapDatabase(o.runner, m.database, target, at, log);
        }
        const total = (Date.now() - started) / 1000;
        log(`restore: done in ${total.toFixed(1)} s${kept ? `; the previous database is kept as ${kept} (drop it by hand once you are sure)` : ""}`);
        return { backup: chosen, manifest: m, restoredInto: o.dryRun ? target : m.database, swapped: !o.dryRun, kept, counts, seconds: { download, restore, total } };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}
