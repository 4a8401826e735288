// The operator commands at their first step, as a new user meets them: restore --list needs no key, a
// missing Pulumi CLI is named as such, the local stack's missing key says to run local:up first, and
// long steps print progress. The commands run as processes, the way `npm run restore` starts them.
import * as assert from "assert";
import { TEST_SIGNING_KEY } from "./support/signing";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { pulumiJson } from "../io/pulumiCli";
import { bytesSoFar, withProgress } from "../io/progress";
import { BackupStore, PgRunner, restoreBackup } from "../io/restore";
import { runDrill } from "../commands/backup-drill";
import { BackupRef, backupKey, formatBytes, parseBackupKey } from "../render/backup";

const ROOT = path.join(__dirname, "..");
const RESTORE = path.join(ROOT, "commands", "restore.ts");

/** A PATH holding node (and, when given, a stand-in `pulumi`) and the basic tools, but no Pulumi CLI. */
function barePath(dir: string, pulumiScript?: string): string {
    const bin = path.join(dir, pulumiScript === undefined ? "bin" : "bin-pulumi");
    if (fs.existsSync(bin)) return bin;
    fs.mkdirSync(bin, { recursive: true });
    fs.symlinkSync(process.execPath, path.join(bin, "node"));
    for (const tool of ["sh", "age", "tar"]) {
        const found = spawnSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).stdout.trim();
        if (found) fs.symlinkSync(found, path.join(bin, tool));
    }
    if (pulumiScript !== undefined) fs.writeFileSync(path.join(bin, "pulumi"), pulumiScript, { mode: 0o755 });
    return bin;
}

function runRestore(args: string[], o: { cwd: string; path: string; env?: NodeJS.ProcessEnv }) {
    const env: NodeJS.ProcessEnv = { PATH: o.path, HOME: o.cwd, TS_NODE_PROJECT: path.join(ROOT, "tsconfig.json"), ...o.env };
    return spawnSync(process.execPath, ["-r", require.resolve("ts-node/register/transpile-only"), RESTORE, ...args], { cwd: o.cwd, env, encoding: "utf8", timeout: 60000 });
}

/** A runner the test never reaches (the download fails first). */
const UNUSED_RUNNER: PgRunner = { description: "none", run: () => Promise.reject(new Error("unused")), as: () => UNUSED_RUNNER };

describe("operator commands at their first step", function () {
    this.timeout(120000);
    let dir: string;
    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-commands-"));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("restore --list lists the backups without any decryption key, the refused ones with why", () => {
        const store = path.join(dir, "store");
        fs.mkdirSync(path.join(store, "app1"), { recursive: true });
        // Named in January but stored now: a name can be chosen, the store's time cannot.
        const old = backupKey("app1", new Date(Date.UTC(2026, 0, 2, 3, 30, 0)));
        fs.writeFileSync(path.join(store, old), Buffer.alloc(2048, 1));
        const fresh = backupKey("app1", new Date(Date.now() - 60_000));
        fs.writeFileSync(path.join(store, fresh), Buffer.alloc(4096, 1));
        const r = runRestore(["--stack", "prod", "--app", "app1", "--list", "--dir", store], { cwd: dir, path: barePath(dir) });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(r.stdout, /0 trusted backup\(s\) of app1 in .*store, newest first:/);
        assert.match(r.stdout, /2 refused \(no restore, drill or migration uses them\):/);
        assert.match(r.stdout, /app1-\d{8}T\d{6}Z {2}REFUSED: it is not signed \(no app1\/app1-\d{8}T\d{6}Z\.tar\.age\.sig\)/);
        assert.match(r.stdout, /app1-20260102T033000Z {2}REFUSED: the backup was stored at .*after the time its name claims \(2026-01-02T03:30:00Z\)/);
        assert.ok(!/identity/.test(r.stderr), r.stderr);
    });

    it("without --list the key is still required, naming the option", () => {
        const r = runRestore(["--stack", "prod", "--app", "app1", "--latest", "--dir", path.join(dir, "none")], { cwd: dir, path: barePath(dir) });
        assert.strictEqual(r.status, 1);
        assert.match(r.stderr, /restore: FAILED: pass --identity FILE \(or set PLATFORM_BACKUP_IDENTITY\)/);
    });

    it("a missing Pulumi CLI is named as such, with the install link and what to pass instead", () => {
        const r = runRestore(["--stack", "prod", "--app", "app1", "--list"], { cwd: dir, path: barePath(dir), env: { SCW_ACCESS_KEY: "SCWABCDEFGHIJKLMNOPQ", SCW_SECRET_KEY: "x" } });
        assert.strictEqual(r.status, 1);
        assert.match(r.stderr, /restore: FAILED: the Pulumi CLI \(pulumi\) is not installed or not on PATH, and it is needed to read the outputs of stack prod: install it \(https:\/\/www\.pulumi\.com\/docs\/install\/\)/);
        assert.match(r.stderr, /or pass --bucket\/--endpoint\/--ssh/);
        assert.ok(!/ENOENT|spawnSync/.test(r.stderr), r.stderr);
    });

    it("a Pulumi CLI that fails is quoted with what the command needed from it", () => {
        const bin = barePath(dir, "#!/bin/sh\necho \"error: no stack named 'prod' found\" >&2\nexit 255\n");
        const r = runRestore(["--stack", "prod", "--app", "app1", "--list"], { cwd: dir, path: bin });
        assert.strictEqual(r.status, 1);
        assert.match(r.stderr, /could not read the outputs of stack prod \(pulumi stack output --json --stack prod\): error: no stack named 'prod' found/);
    });

    it("pulumiJson: missing, failing, non-JSON and hostile arguments (never through a shell)", () => {
        assert.throws(() => pulumiJson(["stack", "output"], { what: "x", command: path.join(dir, "nope", "pulumi") }), /the Pulumi CLI \(.*nope\/pulumi\) is not installed or not on PATH, and it is needed to read x/);
        const notJson = path.join(dir, "pulumi-text");
        fs.writeFileSync(notJson, "#!/bin/sh\necho hello\n", { mode: 0o755 });
        assert.throws(() => pulumiJson(["stack"], { what: "y", command: notJson }), /printed something that is not JSON while reading y: hello/);
        const echo = path.join(dir, "pulumi-echo");
        fs.writeFileSync(echo, '#!/bin/sh\nprintf \'{"args":"%s"}\' "$*"\n', { mode: 0o755 });
        const marker = path.join(dir, "pwned");
        assert.deepStrictEqual(pulumiJson(["stack", `prod; touch ${marker}`], { what: "z", command: echo }), { args: `stack prod; touch ${marker}` });
        assert.ok(!fs.existsSync(marker));
    });

    it("on the local stack, a missing key says to run local:up first", () => {
        const r = runRestore(["--stack", "local", "--app", "demo", "--latest"], { cwd: dir, path: barePath(dir) });
        assert.strictEqual(r.status, 1);
        assert.match(r.stderr, /restore: FAILED: no identity file .*\.platform\/local\/backup-identity\.txt: the local stack's key pair is generated by its first deployment\. Run `npm run local:up` first/);
        const listed = runRestore(["--stack", "local", "--app", "demo", "--list"], { cwd: dir, path: barePath(dir) });
        assert.strictEqual(listed.status, 0, listed.stderr);
        assert.match(listed.stdout, /no backups of demo in .*\.platform\/local\/backups yet: `npm run local:up` takes one/);
    });

    it("an identity file given by hand that does not exist is named, without the local:up hint", () => {
        const r = runRestore(["--stack", "local", "--app", "demo", "--latest", "--identity", path.join(dir, "missing.key")], { cwd: dir, path: barePath(dir) });
        assert.strictEqual(r.status, 1);
        assert.match(r.stderr, /the age identity file .*missing\.key does not exist: pass --identity/);
        assert.ok(!/local:up/.test(r.stderr));
    });

    it("withProgress: a long step prints what it has done every interval; a short one prints nothing", async () => {
        const lines: string[] = [];
        let done = 0;
        const value = await withProgress((l) => lines.push(l), "[2/6] download", () => new Promise<number>((r) => {
            const t = setInterval(() => (done += 1024 * 1024), 20);
            setTimeout(() => (clearInterval(t), r(42)), 330);
        }), { everyMs: 100, detail: () => bytesSoFar(done, 16 * 1024 * 1024, formatBytes) });
        assert.strictEqual(value, 42);
        assert.ok(lines.length >= 2 && lines.length <= 4, lines.join("\n"));
        assert.match(lines[0], /^ {6}\[2\/6\] download: still running, \d+(\.\d)? MiB of 16\.0 MiB \(\d+%\) \(0 s\)$/);
        const quiet: string[] = [];
        await withProgress((l) => quiet.push(l), "x", async () => 1, { everyMs: 100 });
        await new Promise((r) => setTimeout(r, 150));
        assert.deepStrictEqual(quiet, [], "the timer stops with the step");
        await assert.rejects(withProgress(() => undefined, "y", async () => { throw new Error("boom"); }, { everyMs: 10 }), /boom/);
        assert.strictEqual(bytesSoFar(5, undefined, String), "5 so far");
        assert.strictEqual(bytesSoFar(30, 20, String), "30 of 20 (100%)");
    });

    const slowStore = (ref: BackupRef): BackupStore => ({
            describe: () => "slow store",
            list: async () => [ref],
            refused: async () => [],
            signedBy: () => TEST_SIGNING_KEY.publicKey,
            download: async (_r, file) => {
                const fd = fs.openSync(file, "w", 0o600);
                for (let i = 0; i < 8; i++) {
                    fs.writeSync(fd, Buffer.alloc(1024 * 1024));
                    await new Promise((r) => setTimeout(r, 40));
                }
                fs.closeSync(fd);
                return 8 * 1024 * 1024;
            },
        });

    it("a restore's slow download shows its progress in bytes before the next step", async () => {
        const ref: BackupRef = parseBackupKey(backupKey("app1", new Date(Date.now() - 3600_000)), 8 * 1024 * 1024)!;
        const slow = slowStore(ref);
        const lines: string[] = [];
        const identity = path.join(dir, "not-a-key");
        fs.writeFileSync(identity, "AGE-SECRET-KEY-1NOTAREALKEY\n");
        await assert.rejects(
            restoreBackup({ store: slow, runner: UNUSED_RUNNER, app: "app1", identityFile: identity, log: (l) => lines.push(l), progressMs: 100, workDir: dir }),
        );
        const text = lines.join("\n");
        assert.match(text, / {6}\[2\/6\] download: still running, \d+(\.\d)? MiB of 8\.0 MiB \(\d+%\)/);
        assert.match(text, /\[2\/6\] download: app1\/app1-\d{8}T\d{6}Z\.tar\.age \(8\.0 MiB\)/);
    });

    it("the drill's slow download shows its progress too", async () => {
        const ref: BackupRef = parseBackupKey(backupKey("app1", new Date(Date.now() - 3600_000)), 8 * 1024 * 1024)!;
        const identity = path.join(dir, "not-a-key");
        fs.writeFileSync(identity, "AGE-SECRET-KEY-1NOTAREALKEY\n");
        const lines: string[] = [];
        const problems = await runDrill({ store: slowStore(ref), runner: UNUSED_RUNNER, apps: ["app1"], identityFile: identity, log: (l) => lines.push(l), progressMs: 100 });
        assert.strictEqual(problems.length, 1, "the bad key is a problem");
        assert.match(lines.join("\n"), / {6}app1: download: still running, \d+(\.\d)? MiB of 8\.0 MiB \(\d+%\)/);
    });
});
