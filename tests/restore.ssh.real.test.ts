// The restore command reaches host 0 with the host key the program pinned, against a real OpenSSH
// server (the platform's own sshd drop-in, root by key, on 127.x.y.z:22 as the program reaches port
// 22) in front of a real PostgreSQL: the managed shape's client container is a stand-in `docker` on
// the server's PATH running the cluster's psql/pg_restore as the non-superuser admin. The program's
// SSH files are written by io/sshFiles.ts exactly as ScalewayHost writes them; the state stand-in is
// what `pulumi stack export` shows for host 0. Then an impostor server with another host key at the
// same address: refused before any command runs, the database untouched.
import * as assert from "assert";
import { TEST_SIGNING_KEY, TEST_TRUST, writeSigningKey } from "./support/signing";
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { MANAGED_DATABASE_TARGET, renderBackupSettings } from "../render/backup";
import { renderSshdHardening } from "../render/cloudInit";
import { DirectoryBackupStore, restoreBackup } from "../io/restore";
import { SSH_DIR_ENV, knownHostsLine, stackSshDirectory, writeStackSshFiles } from "../io/sshFiles";
import { parseMigrateArgs, runMigration } from "../commands/migrate-to-managed";
import { parseArgs, resolveTargets } from "../commands/restore";
import { requireBinary } from "./support/edge";
import { Cluster, fakeDocker, requirePostgres, startCluster } from "./support/postgres";
import { SSHD, Sshd, UBUNTU_MAIN_SETTINGS, keygen, randomLoopbackAddress, startSshd } from "./support/sshd";

const ADMIN = "platform_admin";
const ADMIN_PASSWORD = "Admin-Pass_word.789";

export function stateWithHostZero(address: string, hostKey: unknown): unknown {
    return {
        version: 3,
        deployment: {
            resources: [
                { urn: "urn:pulumi:prod::platform::pulumi:pulumi:Stack::platform-prod", type: "pulumi:pulumi:Stack", outputs: {} },
                { urn: "urn:pulumi:prod::platform::platform:host:ScalewayHost::host-1", type: "platform:host:ScalewayHost", outputs: { publicAddress: "198.51.100.99", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherHostOtherKey" } },
                { urn: "urn:pulumi:prod::platform::platform:host:ScalewayHost::host", type: "platform:host:ScalewayHost", outputs: { publicAddress: address, hostKey, serverId: "fr-par-1/x" } },
            ],
        },
    };
}

describe("restore over SSH pins host 0's key (real OpenSSH, real PostgreSQL, managed shape)", function () {
    this.timeout(180000);
    let dir: string;
    let cluster: Cluster;
    let sshd: Sshd | undefined;
    let identity: string;
    let backupDir: string;
    let sshBase: string;
    let fakeDir: string;
    let publicKey: string;
    const stack = `restore-${process.pid}`;
    const address = randomLoopbackAddress();
    const mainSettings = () => [...UBUNTU_MAIN_SETTINGS, `SetEnv PATH=${fakeDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`];
    const env = () => ({ [SSH_DIR_ENV]: sshBase });
    const args = (...extra: string[]) => parseArgs(["--stack", stack, "--app", "app1", "--identity", identity, "--dir", backupDir, "--database", "managed", ...extra]);
    const noOutputs = () => {
        throw new Error("outputs are not needed with --dir");
    };

    before(async function () {
        if (!fs.existsSync(SSHD)) requireBinary(this, "sshd");
        requireBinary(this, "ssh");
        for (const bin of ["age", "age-keygen", "tar", "sha256sum"]) requireBinary(this, bin);
        const binDir = requirePostgres(this);
        if (process.getuid?.() !== 0) {
            if (process.env.CI === "true") throw new Error("this suite needs root (sshd on 127.x.y.z:22, root login by key)");
            console.warn("\n  !!! SKIPPING: needs root (sshd on port 22, root login). CI fails without it. !!!\n");
            this.skip();
        }
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-restore-ssh-"));
        sshBase = path.join(dir, "ssh-files");
        identity = path.join(dir, "backup.key");
        execFileSync("age-keygen", ["-o", identity], { stdio: "pipe" });
        const recipient = execFileSync("age-keygen", ["-y", identity], { encoding: "utf8" }).trim();

        cluster = await startCluster(binDir);
        cluster.query("postgres", `CREATE ROLE ${ADMIN} LOGIN CREATEROLE CREATEDB PASSWORD '${ADMIN_PASSWORD}'; CREATE ROLE app_app1 LOGIN PASSWORD 'app1-pw'; GRANT app_app1 TO ${ADMIN};`);
        cluster.query("postgres", "CREATE DATABASE app1_db OWNER app_app1; REVOKE ALL ON DATABASE app1_db FROM PUBLIC;");
        cluster.query("app1_db", "SET ROLE app_app1; CREATE TABLE orders (id serial PRIMARY KEY, note text); INSERT INTO orders (note) SELECT 'o' || g FROM generate_series(1, 321) g;");
        fakeDir = fakeDocker(cluster, MANAGED_DATABASE_TARGET.container, { user: ADMIN, password: ADMIN_PASSWORD });

        // Last night's backup, taken by the real script as the managed admin.
        backupDir = path.join(dir, "backups");
        const settings = path.join(dir, "backup.env");
        fs.writeFileSync(settings, renderBackupSettings({ apps: ["app1"], recipient: { key: recipient }, destination: { kind: "directory", directory: backupDir }, workDir: dir, database: MANAGED_DATABASE_TARGET, signingKeyFile: writeSigningKey(dir) }));
        const r = spawnSync("sh", [path.join(__dirname, "..", "hostScripts", "backup.sh"), settings], { env: { PATH: `${fakeDir}:${process.env.PATH}` }, encoding: "utf8" });
        assert.strictEqual(r.status, 0, r.stderr);

        publicKey = keygen(path.join(dir, "id"));
        sshd = await startSshd({ dir, name: "host0", address, port: 22, dropins: [{ name: "00-platform.conf", content: renderSshdHardening({ permitOpen: ["127.0.0.1:5432", "127.0.0.1:5433"] }) }], authorizedKeys: publicKey + "\n", mainSettings: mainSettings() });
        // What ScalewayHost writes during `pulumi up`/`preview`: the pinned line and the identity.
        writeStackSshFiles({ project: "platform", stack, knownHosts: knownHostsLine(address, sshd.hostPublicKey), privateKey: fs.readFileSync(path.join(dir, "id"), "utf8"), env: env() });
    });

    after(async () => {
        await sshd?.stop();
        cluster?.stop();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("reaches host 0 with the program's known_hosts and identity (strict options), and restores through the client container as the admin", async () => {
        const pins = `config:\n  platform:backupSigningKeys:\n    - ${TEST_SIGNING_KEY.publicKey}\n`;
        const t = resolveTargets(args("--dry-run"), noOutputs, { state: () => stateWithHostZero(address, sshd!.hostPublicKey), project: "platform", env: env(), stackYaml: () => pins });
        try {
            assert.strictEqual(t.runner.description, `ssh root@${address} docker exec platform-pg-client as platform_admin`);
            const lines: string[] = [];
            const result = await restoreBackup({ store: t.store, runner: t.runner, app: "app1", identityFile: t.identity!, dryRun: true, log: (l) => lines.push(l) });
            assert.strictEqual(result.counts[0].rows, 321, lines.join("\n"));
            assert.match(lines.join("\n"), /\[6\/6\] swap: skipped \(dry run\)/);
        } finally {
            t.cleanup();
        }
    });

    it("the options are the program's: BatchMode, StrictHostKeyChecking=yes, the stack's known_hosts, IdentitiesOnly with the stack's key", () => {
        // eslint-disable-next-line @typescript-eslint/no-var-requires
        const { hostZeroRunner } = require("../commands/restore") as typeof import("../commands/restore");
        const h = hostZeroRunner({ stack, database: "managed", readers: { state: () => stateWithHostZero(address, sshd!.hostPublicKey), project: "platform", env: env() } });
        const dirForSsh = stackSshDirectory("platform", stack, env()).forSsh;
        assert.strictEqual(h.pinned.source, "program");
        const o = h.pinned.options.join(" ");
        for (const expected of ["BatchMode=yes", "StrictHostKeyChecking=yes", `UserKnownHostsFile=${dirForSsh}/known_hosts`, "IdentitiesOnly=yes", `-i ${dirForSsh}/id`]) assert.ok(o.includes(expected), `${expected} in ${o}`);
    });

    it("with no program file on this machine, the state's key is pinned in a private temporary known_hosts, removed afterwards", async () => {
        const elsewhere = { [SSH_DIR_ENV]: path.join(dir, "empty-ssh-base") };
        // eslint-disable-next-line @typescript-eslint/no-var-requires
        const { hostZeroRunner } = require("../commands/restore") as typeof import("../commands/restore");
        const h = hostZeroRunner({ stack, database: "managed", readers: { state: () => stateWithHostZero(address, sshd!.hostPublicKey), project: "platform", env: elsewhere } });
        try {
            assert.strictEqual(h.pinned.source, "state");
            assert.strictEqual(fs.statSync(h.pinned.knownHostsFile).mode & 0o777, 0o600);
            assert.strictEqual(fs.readFileSync(h.pinned.knownHostsFile, "utf8"), `${address} ${sshd!.hostPublicKey}\n`);
            assert.ok(h.pinned.options.join(" ").includes(`UserKnownHostsFile=${h.pinned.knownHostsFile}`));
            // Prove the pin with a real connection: the test's key stands in for the operator's agent.
            const r = spawnSync("ssh", [...h.pinned.options, "-o", "IdentitiesOnly=yes", "-i", path.join(dir, "id"), h.pinned.destination, "--", "echo pinned-by-state"], { encoding: "utf8", timeout: 20000 });
            assert.strictEqual(r.stdout.trim(), "pinned-by-state", r.stderr);
        } finally {
            h.pinned.cleanup();
        }
        assert.ok(!fs.existsSync(h.pinned.knownHostsFile), "the temporary known_hosts is removed");
    });

    it("a server with another host key at host 0's address is refused before any command runs; the database is untouched", async () => {
        const knownHosts = path.join(stackSshDirectory("platform", stack, env()).absolute, "known_hosts");
        const pinned = fs.readFileSync(knownHosts, "utf8");
        const databases = cluster.query("postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database");
        const genuineKey = sshd!.hostPublicKey;
        await sshd!.stop();
        const log = path.join(dir, "impostor-docker.log");
        sshd = await startSshd({
            dir,
            name: "impostor",
            address,
            port: 22,
            dropins: [{ name: "00-platform.conf", content: renderSshdHardening() }],
            authorizedKeys: publicKey + "\n",
            mainSettings: [...UBUNTU_MAIN_SETTINGS, `SetEnv PATH=${fakeDir}:/usr/bin:/bin FAKE_DOCKER_LOG=${log}`],
        });
        assert.notStrictEqual(sshd.hostPublicKey, genuineKey);
        for (const source of ["program", "state"] as const) {
            const readers = { state: () => stateWithHostZero(address, genuineKey), project: "platform", env: source === "program" ? env() : { [SSH_DIR_ENV]: path.join(dir, "empty-ssh-base") } };
            const t = resolveTargets(args(), noOutputs, readers);
            try {
                await assert.rejects(
                    restoreBackup({ store: new DirectoryBackupStore(backupDir, TEST_TRUST), runner: t.runner, app: "app1", identityFile: identity, log: () => undefined }),
                    (e: Error) => {
                        assert.match(e.message, /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/, source);
                        return true;
                    },
                );
            } finally {
                t.cleanup();
            }
        }
        // The migration command reaches host 0 the same way: its first step refuses the impostor too.
        const migrating = runMigration(parseMigrateArgs(["--stack", stack, "--step", "1", "--dry-run"]), {
            readers: { state: () => stateWithHostZero(address, genuineKey), project: "platform", env: env() },
            stackYaml: () => `config:\n  platform:target: scaleway\n  platform:apps:\n    app1: "1.0.0"\n`,
            outputs: () => ({}),
            log: () => undefined,
        });
        await assert.rejects(migrating, /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
        assert.ok(!fs.existsSync(log), "no command ran on the impostor");
        assert.strictEqual(cluster.query("postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database"), databases);
        assert.strictEqual(cluster.query("app1_db", "SELECT count(*) FROM orders"), "321");
        assert.strictEqual(fs.readFileSync(knownHosts, "utf8"), pinned, "nothing was added to the pinned file");
        // Whereas the operator's own ssh, trusting on first use, would have run the command there.
        const tofu = spawnSync("ssh", ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new", "-o", `UserKnownHostsFile=${path.join(dir, "operator_known_hosts")}`, "-i", path.join(dir, "id"), `root@${address}`, "--", "docker exec -i platform-pg-client psql -At -c 'select 1' -d postgres"], { encoding: "utf8", timeout: 20000 });
        assert.strictEqual(tofu.stdout.trim(), "1", tofu.stderr);
        assert.ok(fs.existsSync(log), "the unpinned client did reach the impostor");
    });

    it("refuses when no pinned key is known: the state's key unreadable (secret) and no program file for the address", () => {
        const secret = { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", ciphertext: "v1:abc" };
        assert.throws(
            () => resolveTargets(args(), noOutputs, { state: () => stateWithHostZero(address, secret), project: "platform", env: { [SSH_DIR_ENV]: path.join(dir, "empty-ssh-base") } }),
            /no pinned host key for 127\.\d+\.\d+\.\d+: .*pulumi preview --stack/,
        );
        // With the secret key, the program's file still pins it.
        const t = resolveTargets(args(), noOutputs, { state: () => stateWithHostZero(address, secret), project: "platform", env: env() });
        assert.match(t.runner.description, /^ssh root@/);
        t.cleanup();
    });
});
