// The prod admin channel against a real OpenSSH server and a real PostgreSQL 15, both throwaway,
// on loopback ports: the forward the program opens, the failures it must report fast, and the
// per-app privilege model applied with the very SQL the host runs (PostgresServer reconcile, AppDatabase ensure).
import * as assert from "assert";
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import { findPostgresBinDir } from "../io/throwawayPostgres";
import * as os from "os";
import * as path from "path";
import { Forward, openForward } from "../io/adminChannel";
import { serverReconcileSql } from "../render/postgres";
import { ensureAppDatabase } from "./support/appDatabase";
import { knownHostsLine, strictSshOptions } from "../io/sshFiles";
import { freePort, requireBinary, requireRoot, sleep } from "./support/edge";

// Whatever major is installed (Debian 12: 15, Ubuntu 24.04: 16).
const PG_BIN = findPostgresBinDir() ?? "/usr/lib/postgresql/none/bin";
const ADMIN_PASSWORD = "admin-" + Math.random().toString(36).slice(2) + Date.now();

function sshProcessesFor(port: number): string[] {
    const r = spawnSync("pgrep", ["-af", `127.0.0.1:${port}:`], { encoding: "utf8" });
    return r.stdout.split("\n").filter((l) => l.includes("ssh ") && !l.includes("pgrep"));
}

async function waitUntil(check: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
        if (check()) return true;
        await sleep(100);
    }
    return check();
}

/** A psql script on stdin, as the host's `docker exec -i … psql` runs it (meta-commands such as \\gexec included). */
function psqlScript(port: number, user: string, password: string, script: string) {
    return spawnSync("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(port), "-U", user, "-d", "postgres"], {
        encoding: "utf8",
        input: script,
        env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: "5" },
    });
}

function psql(port: number, user: string, password: string, database: string, sql: string) {
    return spawnSync("psql", ["-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(port), "-U", user, "-d", database, "-c", sql], {
        encoding: "utf8",
        env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: "5" },
    });
}

describe("SSH admin channel against real OpenSSH and PostgreSQL", function () {
    this.timeout(60000);
    let dir: string;
    let sshd: ChildProcess | undefined;
    let sshPort: number;
    let pgPort: number;
    let knownHosts: string;
    let identity: string;
    let wrongIdentity: string;
    let hostPublicKey: string;
    const user = os.userInfo().username;
    let pgDir: string;

    before(async function () {
        for (const bin of ["sshd", "ssh", "ssh-keygen", "psql", `${PG_BIN}/initdb`]) {
            if (bin === "sshd") {
                if (!fs.existsSync("/usr/sbin/sshd")) requireBinary(this, "sshd");
            } else if (bin.startsWith("/")) {
                if (!fs.existsSync(bin)) requireBinary(this, "initdb");
            } else requireBinary(this, bin);
        }
        requireRoot(this, "PostgreSQL started as the postgres user, sshd's privilege separation");
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-channel-"));
        const keygen = (file: string) => execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", file]);
        keygen(path.join(dir, "host_key"));
        keygen(path.join(dir, "id"));
        keygen(path.join(dir, "wrong_id"));
        identity = path.join(dir, "id");
        wrongIdentity = path.join(dir, "wrong_id");
        hostPublicKey = fs.readFileSync(path.join(dir, "host_key.pub"), "utf8").trim();
        fs.writeFileSync(path.join(dir, "authorized_keys"), fs.readFileSync(path.join(dir, "id.pub")));
        sshPort = await freePort();
        pgPort = await freePort();
        knownHosts = path.join(dir, "known_hosts");
        fs.writeFileSync(knownHosts, knownHostsLine("127.0.0.1", hostPublicKey, sshPort) + "\n");
        fs.writeFileSync(
            path.join(dir, "sshd_config"),
            [
                `Port ${sshPort}`,
                "ListenAddress 127.0.0.1",
                `HostKey ${path.join(dir, "host_key")}`,
                `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
                `PidFile ${path.join(dir, "sshd.pid")}`,
                "StrictModes no",
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                // What the server's sshd allows: local forwards only.
                "AllowTcpForwarding local",
                "",
            ].join("\n"),
        );
        fs.mkdirSync("/run/sshd", { recursive: true });
        sshd = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", path.join(dir, "sshd_config")], { stdio: ["ignore", "ignore", "pipe"] });
        let sshdLog = "";
        sshd.stderr!.on("data", (d) => (sshdLog += d));

        // PostgreSQL stands for the container published on the server's loopback.
        pgDir = path.join(dir, "pg");
        fs.mkdirSync(pgDir, { mode: 0o700 });
        fs.writeFileSync(path.join(dir, "pwfile"), ADMIN_PASSWORD + "\n");
        const asPostgres = (cmd: string, args: string[]) => execFileSync("runuser", ["-u", "postgres", "--", cmd, ...args], { stdio: "pipe" });
        fs.chmodSync(dir, 0o755);
        fs.chmodSync(path.join(dir, "pwfile"), 0o644);
        execFileSync("chown", ["postgres", pgDir]);
        asPostgres(`${PG_BIN}/initdb`, ["-D", pgDir, "-U", "postgres", "--auth=scram-sha-256", `--pwfile=${path.join(dir, "pwfile")}`]);
        asPostgres(`${PG_BIN}/pg_ctl`, ["-D", pgDir, "-w", "-l", path.join(pgDir, "log"), "-o", `-h 127.0.0.1 -p ${pgPort} -k ${pgDir}`, "start"]);

        const ready = await waitUntil(() => spawnSync("sh", ["-c", `exec 3<>/dev/tcp/127.0.0.1/${sshPort}`], { shell: "/bin/bash" }).status === 0 || sshdLog.includes("listening"), 5000);
        assert.ok(ready, `sshd did not start: ${sshdLog}`);
    });

    after(() => {
        sshd?.kill();
        if (pgDir && fs.existsSync(path.join(pgDir, "postmaster.pid"))) {
            spawnSync("runuser", ["-u", "postgres", "--", `${PG_BIN}/pg_ctl`, "-D", pgDir, "-m", "fast", "stop"]);
        }
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    const options = (overrides: Partial<Parameters<typeof openForward>[0]> = {}) => ({
        destination: `${user}@127.0.0.1`,
        sshPort,
        remote: `127.0.0.1:${pgPort}`,
        sshOptions: strictSshOptions(knownHosts, identity),
        openTimeoutMs: 10000,
        ...overrides,
    });

    it("opens, carries the app-database provider's statements, enforces the privilege model, and leaves no ssh behind", async () => {
        // The forward lives as long as this stand-in for the Pulumi language host.
        const languageHost = spawn("sleep", ["60"]);
        let forward: Forward | undefined;
        try {
            const preferredPort = await freePort();
            forward = await openForward(options({ watchPid: languageHost.pid, preferredPort }));
            assert.deepStrictEqual([forward.host, forward.port], ["127.0.0.1", preferredPort]);
            assert.ok(sshProcessesFor(forward.port).length >= 1, "an ssh process holds the forward");

            const passwords = { app1: "pw-app1-" + Date.now(), app2: "pw-app2-" + Date.now() };
            const reconciled = psqlScript(forward.port, "postgres", ADMIN_PASSWORD, serverReconcileSql(ADMIN_PASSWORD));
            assert.strictEqual(reconciled.status, 0, reconciled.stderr);
            for (const app of ["app1", "app2"] as const) {
                // The app-database provider, as the admin through the forward (what `up` does).
                const admin = { host: forward.host, port: forward.port, user: "postgres", password: ADMIN_PASSWORD, database: "postgres", ssl: false };
                const r = await ensureAppDatabase(admin, app, passwords[app], 20);
                assert.strictEqual(r.status, 0, `${app}: ${r.stderr}`);
            }
            const own = psql(forward.port, "app_app1", passwords.app1, "app1_db", "CREATE TABLE orders (id int); INSERT INTO orders VALUES (1); SELECT count(*) FROM orders;");
            assert.strictEqual(own.status, 0, own.stderr);
            const other = psql(forward.port, "app_app1", passwords.app1, "app2_db", "SELECT 1");
            assert.notStrictEqual(other.status, 0, "app1's role must not connect to app2's database");
            assert.match(other.stderr, /permission denied for database "app2_db"|does not have CONNECT privilege/);
            const reverse = psql(forward.port, "app_app2", passwords.app2, "app1_db", "SELECT 1");
            assert.notStrictEqual(reverse.status, 0);
            const wrongPassword = psql(forward.port, "app_app2", passwords.app1, "app2_db", "SELECT 1");
            assert.notStrictEqual(wrongPassword.status, 0);
            const maintenance = psql(forward.port, "app_app1", passwords.app1, "postgres", "SELECT 1");
            assert.notStrictEqual(maintenance.status, 0, "app roles cannot connect to the postgres database");
        } finally {
            languageHost.kill();
        }
        const port = forward!.port;
        assert.ok(await waitUntil(() => sshProcessesFor(port).length === 0, 5000), `ssh still running: ${sshProcessesFor(port).join("\n")}`);
    });

    async function expectFastFailure(opts: ReturnType<typeof options>, pattern: RegExp, hint: RegExp) {
        const started = Date.now();
        await assert.rejects(openForward(opts), (e: Error) => {
            assert.match(e.message, /Could not open the SSH admin channel/);
            assert.match(e.message, pattern);
            assert.match(e.message, hint);
            return true;
        });
        const elapsed = Date.now() - started;
        assert.ok(elapsed < 8000, `took ${elapsed} ms`);
        return elapsed;
    }

    it("a wrong key fails fast, saying which key to check", async () => {
        await expectFastFailure(options({ sshOptions: strictSshOptions(knownHosts, wrongIdentity) }), /Permission denied/, /the key in your ssh-agent/);
    });

    it("a closed port fails fast, pointing at adminCidrs", async () => {
        const closed = await freePort();
        await expectFastFailure(options({ sshPort: closed }), /Connection refused/, /platform:adminCidrs/);
    });

    it("a host key that does not match the recorded one fails fast and is never trusted", async () => {
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "impostor")]);
        const impostor = fs.readFileSync(path.join(dir, "impostor.pub"), "utf8");
        const badKnownHosts = path.join(dir, "known_hosts_bad");
        fs.writeFileSync(badKnownHosts, knownHostsLine("127.0.0.1", impostor, sshPort) + "\n");
        await expectFastFailure(options({ sshOptions: strictSshOptions(badKnownHosts, identity) }), /host key|Host key verification failed/i, /host key is not the one recorded/);
        assert.strictEqual(fs.readFileSync(badKnownHosts, "utf8").split("\n").filter(Boolean).length, 1, "nothing was added to known_hosts");
    });

    it("no ssh process is left after the failures", () => {
        const left = spawnSync("pgrep", ["-af", `UserKnownHostsFile=${dir}`], { encoding: "utf8" }).stdout.split("\n").filter((l) => l.includes("ssh -N"));
        assert.deepStrictEqual(left, []);
    });

    it("a channel that dies mid-run makes the next database call fail within seconds, not hang", async () => {
        const languageHost = spawn("sleep", ["60"]);
        try {
            const forward = await openForward(options({ watchPid: languageHost.pid }));
            assert.strictEqual(psql(forward.port, "postgres", ADMIN_PASSWORD, "postgres", "SELECT 1").status, 0);
            spawnSync("pkill", ["-f", `127.0.0.1:${forward.port}:`]);
            assert.ok(await waitUntil(() => sshProcessesFor(forward.port).length === 0, 5000));
            const started = Date.now();
            const r = psql(forward.port, "postgres", ADMIN_PASSWORD, "postgres", "SELECT 1");
            assert.notStrictEqual(r.status, 0);
            assert.match(r.stderr, /Connection refused|could not connect/i);
            assert.ok(Date.now() - started < 5000);
        } finally {
            languageHost.kill();
        }
    });
});
