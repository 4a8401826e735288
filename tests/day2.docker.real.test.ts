// The day-2 commands against the real Docker engine: containers labelled as the program labels them
// (a tiny busybox image imported with `docker import`, tagged as app1's images), reached directly (the
// local stack) and over a real OpenSSH server with the pinned host key (prod's path). status reads the
// checker's facts; logs and exec find containers by label only; exec's one-off container gets the
// backend's networks and DATABASE_URL, which never appears on a command line, and is removed; releases
// reads the history from real git; rollback records with real `pulumi config set` and git on main, then
// runs the up (a stand-in here: the real engine's up is the e2e suite's), and refuses a release whose
// images are gone unless --pull.
import * as assert from "assert";
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderSshdHardening } from "../render/cloudInit";
import { stamp } from "../render/backup";
import { SIGNATURE_SUFFIX, signBackup } from "../render/signing";
import { TEST_SIGNING_KEY } from "./support/signing";
import * as crypto from "crypto";
import { SSH_DIR_ENV, knownHostsLine, writeStackSshFiles } from "../io/sshFiles";
import { StackAccess, localShell, stackConfigHistory, stackHosts } from "../io/stackHost";
import { Day2Deps, releaseImages } from "../commands/day2Cli";
import * as status from "../commands/status";
import * as logs from "../commands/logs";
import * as exec from "../commands/exec";
import * as releases from "../commands/releases";
import * as rollback from "../commands/rollback";
import { requireBinary } from "./support/edge";
import { cleanupByLabel, docker, dockerQuiet, ensureBusyboxImage, requireDocker, waitFor } from "./support/docker";
import { SSHD, Sshd, UBUNTU_MAIN_SETTINGS, keygen, randomLoopbackAddress, startSshd } from "./support/sshd";

describe("day-2 commands on the real Docker engine (local, and over pinned SSH)", function () {
    this.timeout(300000);
    const id = `day2-${process.pid}`;
    const secret = `S3cr3t-${Math.random().toString(36).slice(2)}`;
    const databaseUrl = `postgres://app_app1:${secret}@${id}-db:5432/app1_db?sslmode=disable`;
    const current = `9.9.1-t${process.pid}`;
    const previous = `9.9.0-t${process.pid}`;
    const pruned = `9.8.0-t${process.pid}`;
    let dir: string;
    let image: string;
    let sshd: Sshd | undefined;
    let sshEnv: NodeJS.ProcessEnv;
    let address: string;
    const tags: string[] = [];
    const out: string[] = [];
    const err: string[] = [];

    const outputs = () => ({ baseUrl: "http://localhost:8080/", apps: { app1: { release: current, url: "x" } }, backupBucket: path.join(dir, "backups") });
    const deps = (over: Partial<Day2Deps> = {}): Day2Deps => ({
        outputs,
        hosts: (): StackAccess => ({ hosts: [localShell()], cleanup: () => undefined }),
        history: () => [],
        // The suite's signing key pinned, as a stack file would: the status counts trusted backups only.
        stackYaml: () => `config:\n  platform:backupSigningKeys:\n    - ${TEST_SIGNING_KEY.publicKey}\n`,
        factsSettings: () => ({ EXTRA_LABEL: `platform.test=${id}`, BACKUP_DIR: path.join(dir, "backups"), BACKUP_LOG: "", STATE_DIR: path.join(dir, "state"), DISK_PATHS: "/" }),
        extraLabel: `platform.test=${id}`,
        now: () => new Date(),
        out: (t) => out.push(t),
        err: (t) => err.push(t),
        env: process.env,
        ...over,
    });
    const remote = (over: Partial<Day2Deps> = {}) =>
        deps({
            hosts: () => stackHosts(id, { project: "platform", env: sshEnv, state: () => ({ deployment: { resources: [{ type: "platform:host:ScalewayHost", urn: `urn:pulumi:${id}::platform::platform:host:ScalewayHost::host`, outputs: { publicAddress: address, hostKey: sshd!.hostPublicKey } }] } }) }),
            factsSettings: () => ({ EXTRA_LABEL: `platform.test=${id}`, BACKUP_LOG: path.join(dir, "backup.log"), STATE_DIR: path.join(dir, "state"), DISK_PATHS: "/" }),
            ...over,
        });
    const take = () => {
        const text = out.join("");
        // PLATFORM_PRINT_OUTPUT=1 shows what the commands printed (the closing note quotes it).
        if (process.env.PLATFORM_PRINT_OUTPUT === "1") console.log(text.replace(/^/gm, "      | "));
        out.length = 0;
        return text;
    };
    const label = ["--label", `platform.test=${id}`];
    // What a previous test's refused command printed is not this test's output.
    beforeEach(() => {
        out.length = 0;
    });

    before(async function () {
        requireDocker(this);
        requireBinary(this, "git");
        image = ensureBusyboxImage(this);
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-day2-"));
        for (const release of [current, previous]) {
            for (const ref of Object.values(releaseImages("app1", release))) {
                docker("tag", image, ref);
                tags.push(ref);
            }
        }
        docker("network", "create", ...label, `${id}-app`);
        docker("network", "create", ...label, "--internal", `${id}-dbnet`);
        const app = (role: string, release: string) => ["--label", "platform.app=app1", "--label", `platform.role=${role}`, "--label", `platform.release=${release}`];
        const health = ["--health-cmd", "wget -qO /dev/null http://127.0.0.1:8080/health", "--health-interval", "1s", "--health-retries", "2"];
        // The database stand-in: only on the database network, as PostgreSQL is.
        docker("run", "-d", ...label, "--name", `${id}-db`, "--network", `${id}-dbnet`, image);
        docker("run", "-d", ...label, ...app("frontend", current), ...health, "--name", `${id}-frontend`, "--network", `${id}-app`, releaseImages("app1", current).frontend, "sh", "-c", "echo frontend up; exec httpd -f -p 8080 -h /www");
        // An old backend of the previous release still running next to the new one (a rollout's middle): never chosen.
        docker("run", "-d", ...label, ...app("backend", previous), "--name", `${id}-old-backend`, "--network", `${id}-app`, releaseImages("app1", previous).backend, "sh", "-c", "echo old backend; exec sleep 86400");
        // `-e DATABASE_URL` takes the value from docker's environment, as the one-off does: not on this command line either.
        execFileSync("docker", ["create", ...label, ...app("backend", current), ...health, "--name", `${id}-backend`, "--network", `${id}-app`, "-e", "PORT=8080", "-e", "DATABASE_URL", "--user", "65534:65534", "--memory", "64m", "--cap-drop", "ALL", releaseImages("app1", current).backend, "sh", "-c", "echo backend up on $PORT; exec httpd -f -p 8080 -h /www"], { env: { ...process.env, DATABASE_URL: databaseUrl }, stdio: "ignore" });
        execFileSync("docker", ["network", "connect", `${id}-dbnet`, `${id}-backend`]);
        execFileSync("docker", ["start", `${id}-backend`], { stdio: "ignore" });
        await waitFor("healthy containers", () => ["frontend", "backend"].every((r) => docker("inspect", "--format", "{{.State.Health.Status}}", `${id}-${r}`) === "healthy"));
        fs.mkdirSync(path.join(dir, "backups", "app1"), { recursive: true });
        const key = `app1/app1-${stamp(new Date(Date.now() - 3 * 3_600_000))}.tar.age`;
        fs.writeFileSync(path.join(dir, "backups", key), "x");
        fs.writeFileSync(path.join(dir, "backups", key + SIGNATURE_SUFFIX), signBackup(TEST_SIGNING_KEY.secretKey, { object: key, bytes: 1, sha256: crypto.createHash("sha256").update("x").digest("hex") }));
        // A newer unsigned one, planted: it must not make the status look fresher.
        fs.writeFileSync(path.join(dir, "backups", `app1/app1-${stamp(new Date(Date.now() - 60_000))}.tar.age`), "x");
        fs.writeFileSync(path.join(dir, "backup.log"), `${new Date(Date.now() - 3_600_000).toISOString().replace(/\.\d{3}Z$/, "Z")} backup: done: 1 app(s) backed up\n`);
    });

    after(async () => {
        cleanupByLabel(id);
        for (const t of tags) dockerQuiet("rmi", t);
        await sshd?.stop();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("status: the app's release, image and health, its backup; exit 0 when healthy, 1 when the backend turns unhealthy", async () => {
        const code = await status.main(["--stack", "local"], deps());
        const text = take();
        assert.strictEqual(code, 0, text);
        assert.match(text, new RegExp(`app1 +release ${current}`));
        assert.match(text, new RegExp(`frontend ok +running/healthy, 0 restarts, ${current} \\(no registry digest\\)`));
        assert.match(text, new RegExp(`backend +ok +running/healthy, 0 restarts, ${current}`));
        assert.match(text, /backup +ok +newest 3\.\d h ago/);
        assert.match(text, /memory +\d+ MiB of \d+ MiB used/);
        assert.match(text, /^healthy$/m);
        // Break the backend's health endpoint for real: the container turns unhealthy, status says so.
        docker("exec", "-u", "0", `${id}-backend`, "rm", "/www/health");
        try {
            await waitFor("unhealthy", () => docker("inspect", "--format", "{{.State.Health.Status}}", `${id}-backend`) === "unhealthy");
            assert.strictEqual(await status.main(["--stack", "local"], deps()), 1);
            const sick = take();
            assert.match(sick, /UNHEALTHY/);
            assert.match(sick, new RegExp(`app1 backend: running, unhealthy`));
            assert.match(sick, new RegExp(`container: app1/backend \\(${id}-backend\\) is unhealthy`));
        } finally {
            docker("exec", "-u", "0", `${id}-backend`, "sh", "-c", "echo ok > /www/health");
        }
        await waitFor("healthy again", () => docker("inspect", "--format", "{{.State.Health.Status}}", `${id}-backend`) === "healthy");
    });

    it("logs: found by labels (the backend of the current release, not the old one still running), --since, both roles prefixed", async () => {
        assert.strictEqual(await logs.main(["--stack", "local", "app1", "backend", "--since", "10m"], deps()), 0);
        const text = take();
        assert.match(text, /backend up on 8080/);
        assert.ok(!text.includes("old backend"), text);
        assert.strictEqual(await logs.main(["--stack", "local", "app1", "--tail", "5"], deps()), 0);
        const both = take();
        assert.match(both, /^frontend \| \S+ frontend up$/m);
        assert.match(both, /^backend  \| \S+ backend up on 8080$/m);
        assert.strictEqual(await logs.main(["--stack", "local", "app1", "--since", "2000-01-01T00:00:00Z"], deps()), 0);
        // Logs from the future are none, and that is no error.
        assert.strictEqual(await logs.main(["--stack", "local", "app1", "backend", "--since", "2099-01-01T00:00:00Z"], deps()), 0);
        assert.doesNotMatch(take().split("\n").filter((l) => l.includes("backend up")).slice(-1)[0] ?? "", /2099/);
    });

    it("exec: a fresh container of the backend's image on its networks, with its DATABASE_URL; words arrive literally; removed afterwards", async () => {
        const got: string[] = [];
        // Addresses, not names: the static busybox cannot use glibc's resolver.
        const backendIp = docker("inspect", "--format", `{{(index .NetworkSettings.Networks "${id}-app").IPAddress}}`, `${id}-backend`);
        const dbIp = docker("inspect", "--format", `{{(index .NetworkSettings.Networks "${id}-dbnet").IPAddress}}`, `${id}-db`);
        const words = ["sh", "-c", 'printf "%s|" "$DATABASE_URL" "$PORT" "$(id -u)" "$1" "$2"; wget -qO- http://$3:8080/health; wget -qO- http://$4:8080/health', "one-off", "a'b; touch /tmp/pwned", "$(id)", backendIp, dbIp];
        const code = await exec.main(["--stack", "local", "app1", "--", ...words], deps(), { tty: false, onStdout: (c) => got.push(c) });
        const text = got.join("");
        assert.strictEqual(code, 0, text + err.join(""));
        // The app's network (the backend answers) and the database network (the database stand-in answers).
        assert.strictEqual(text, `${databaseUrl}|8080|65534|a'b; touch /tmp/pwned|$(id)|ok\nok\n`);
        assert.ok(!fs.existsSync("/tmp/pwned"));
        assert.strictEqual(docker("ps", "-aq", "--filter", "label=platform.role=one-off", "--filter", "label=platform.app=app1"), "", "the one-off container is removed");
        // Its exit code is the command's.
        assert.strictEqual(await exec.main(["--stack", "local", "app1", "--", "sh", "-c", "exit 7"], deps(), { tty: false, onStdout: () => undefined }), 7);
    });

    it("exec: the DATABASE_URL is never on a command line while the one-off runs", async () => {
        const running = exec.main(["--stack", "local", "app1", "--", "sleep", "3"], deps(), { tty: false, onStdout: () => undefined });
        let seen = 0;
        let scanned = 0;
        const deadline = Date.now() + 2500;
        while (Date.now() < deadline) {
            for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
                try {
                    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
                    scanned++;
                    if (cmdline.includes(secret)) seen++;
                } catch {
                    /* gone */
                }
            }
            await new Promise((r) => setTimeout(r, 100));
        }
        assert.strictEqual(await running, 0);
        assert.ok(scanned > 100);
        assert.strictEqual(seen, 0);
        assert.ok(!err.join("").includes(secret) && !out.join("").includes(secret));
    });

    describe("releases and rollback from real git", () => {
        let repo: string;
        let pulumiEnv: NodeJS.ProcessEnv;
        const commit = (release: string, message: string) => {
            fs.writeFileSync(path.join(repo, "Pulumi.local.yaml"), `config:\n  platform:target: local\n  platform:apps:\n    app1: "${release}"\n`);
            execFileSync("git", ["-C", repo, "commit", "-qam", message]);
        };
        before(function () {
            if (spawnSync("pulumi", ["version"]).error !== undefined) {
                if (process.env.CI === "true") throw new Error("the Pulumi CLI is not installed");
                console.warn("\n  !!! SKIPPING: the Pulumi CLI is not installed. !!!\n");
                this.skip();
            }
            repo = path.join(dir, "repo");
            fs.mkdirSync(repo);
            execFileSync("git", ["-C", repo, "init", "-q", "-b", "main"]);
            execFileSync("git", ["-C", repo, "config", "user.email", "t@example.org"]);
            execFileSync("git", ["-C", repo, "config", "user.name", "t"]);
            fs.writeFileSync(path.join(repo, "Pulumi.yaml"), "name: platform\nruntime: nodejs\n");
            fs.writeFileSync(path.join(repo, "Pulumi.local.yaml"), "config:\n  platform:target: local\n");
            execFileSync("git", ["-C", repo, "add", "."]);
            execFileSync("git", ["-C", repo, "commit", "-qm", "Initial config"]);
            commit(pruned, `Deploy app1 ${pruned} to local [skip ci]`);
            commit(previous, `Deploy app1 ${previous} to local [skip ci]`);
            commit(current, `Deploy app1 ${current} to local [skip ci]`);
            fs.mkdirSync(path.join(dir, "state"), { recursive: true });
            pulumiEnv = { ...process.env, PULUMI_BACKEND_URL: `file://${path.join(dir, "state")}`, PULUMI_CONFIG_PASSPHRASE: "test-only", PULUMI_SKIP_UPDATE_CHECK: "true" };
            execFileSync("pulumi", ["stack", "init", "local", "--non-interactive"], { cwd: repo, env: pulumiEnv, stdio: "pipe" });
            // The passphrase provider writes its salt into the stack file: that is committed too.
            execFileSync("git", ["-C", repo, "commit", "-qam", "Stack init"]);
        });
        const gitDeps = (over: Partial<Day2Deps> = {}) => deps({ history: (s) => stackConfigHistory(s, repo), stackYaml: () => fs.readFileSync(path.join(repo, "Pulumi.local.yaml"), "utf8"), repo, env: pulumiEnv, ...over });

        it("releases: newest first, date and commit from git, images cached or gone", async () => {
            assert.strictEqual(await releases.main(["--stack", "local", "app1"], gitDeps()), 0);
            const text = take();
            const head = execFileSync("git", ["-C", repo, "log", "-1", "--format=%H", `--grep=Deploy app1 ${current}`], { encoding: "utf8" }).trim();
            const lines = text.split("\n");
            assert.match(lines[1], new RegExp(`^\\* ${current.replace(/\./g, "\\.")} +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d  ${head.slice(0, 12)}  images: cached  Deploy app1 ${current}`));
            assert.match(lines[2], new RegExp(`^  ${previous.replace(/\./g, "\\.")} .*images: cached`));
            assert.match(lines[3], new RegExp(`^  ${pruned.replace(/\./g, "\\.")} .*images: gone`));
        });

        it("rollback refuses a release whose images are gone, unless --pull", async () => {
            await assert.rejects(rollback.main(["--stack", "local", "app1", pruned], gitDeps()), /no longer on local .*pass --pull/);
            assert.strictEqual(await rollback.main(["--stack", "local", "app1", pruned, "--pull", "--dry-run"], gitDeps()), 0);
            assert.match(take(), /will be pulled again \(--pull\)[\s\S]*dry run: would run pulumi config set/);
        });

        it("rollback with no version: the previous release, recorded with pulumi config set and a commit on main, then the up", async () => {
            const ups: string[][] = [];
            const code = await rollback.main(["--stack", "local", "app1"], gitDeps({ pulumiAttached: async (stack, a) => (ups.push([stack, ...a]), 0) }));
            const text = take();
            assert.strictEqual(code, 0, text + err.join(""));
            assert.match(text, new RegExp(`app1 on local: ${current} -> ${previous}`));
            assert.deepStrictEqual(ups, [["local", "up", "--yes", "--non-interactive", "--diff"]]);
            const message = execFileSync("git", ["-C", repo, "log", "-1", "--format=%s"], { encoding: "utf8" }).trim();
            assert.strictEqual(message, `Roll back app1 to ${previous} on local (from ${current})`);
            assert.match(fs.readFileSync(path.join(repo, "Pulumi.local.yaml"), "utf8"), new RegExp(`app1: "?${previous.replace(/\./g, "\\.")}"?\n`));
            assert.strictEqual(execFileSync("git", ["-C", repo, "status", "--porcelain"], { encoding: "utf8" }), "");
            // A failing up (a release that never turns healthy) fails the rollback with its exit code.
            const failed = await rollback.main(["--stack", "local", "app1", current, "--local"], gitDeps({ outputs: () => ({ apps: { app1: { release: previous } } }), pulumiAttached: async () => 255 }));
            assert.strictEqual(failed, 255);
            assert.match(take(), /pulumi up failed \(exit 255\).*still serves/);
        });

        it("rollback refuses off main and with uncommitted stack config", async () => {
            fs.appendFileSync(path.join(repo, "Pulumi.local.yaml"), "# edit\n");
            await assert.rejects(rollback.main(["--stack", "local", "app1", previous, "--dry-run"], gitDeps()), /uncommitted changes/);
            execFileSync("git", ["-C", repo, "checkout", "-q", "--", "Pulumi.local.yaml"]);
            execFileSync("git", ["-C", repo, "checkout", "-qb", "feature"]);
            await assert.rejects(rollback.main(["--stack", "local", "app1", previous, "--dry-run"], gitDeps()), /recorded on main, and this checkout is on feature/);
            execFileSync("git", ["-C", repo, "checkout", "-q", "main"]);
        });
    });

    describe("over SSH with the pinned host key (prod's path)", () => {
        before(async function () {
            if (!fs.existsSync(SSHD)) requireBinary(this, "sshd");
            requireBinary(this, "ssh");
            if (process.getuid?.() !== 0) {
                console.warn("\n  !!! SKIPPING: needs root (sshd on port 22, root login). !!!\n");
                this.skip();
            }
            address = randomLoopbackAddress();
            const publicKey = keygen(path.join(dir, "id"));
            sshd = await startSshd({ dir, name: "host0", address, port: 22, dropins: [{ name: "00-platform.conf", content: renderSshdHardening() }], authorizedKeys: publicKey + "\n", mainSettings: UBUNTU_MAIN_SETTINGS });
            sshEnv = { ...process.env, [SSH_DIR_ENV]: path.join(dir, "ssh-files") };
            writeStackSshFiles({ project: "platform", stack: id, knownHosts: knownHostsLine(address, sshd.hostPublicKey), privateKey: fs.readFileSync(path.join(dir, "id"), "utf8"), env: sshEnv });
        });

        it("status, logs and exec reach the host as root@address with the stack's known_hosts", async () => {
            const code = await status.main(["--stack", id], remote());
            const text = take();
            assert.strictEqual(code, 0, text);
            assert.match(text, new RegExp(`backend +ok +running/healthy`));
            assert.match(text, /backup +ok +newest \d+ min ago \(host 0's backup log/);
            assert.match(text, /last drill: unknown/);
            assert.strictEqual(await logs.main(["--stack", id, "app1", "backend", "--since", "1h"], remote()), 0);
            assert.match(take(), /backend up on 8080/);
            const got: string[] = [];
            assert.strictEqual(await exec.main(["--stack", id, "app1", "--", "sh", "-c", 'printf "%s|%s" "$DATABASE_URL" "$1"', "x", "it's; $(reboot)"], remote(), { tty: false, onStdout: (c) => got.push(c) }), 0);
            assert.strictEqual(got.join(""), `${databaseUrl}|it's; $(reboot)`);
            assert.match(err.join(""), new RegExp(`on root@${address.replace(/\./g, "\\.")} \\(host key pinned by `));
        });

        it("a server answering with another host key is refused before anything runs", async () => {
            const impostor = deps({
                hosts: () => stackHosts(id, { project: "platform", env: sshEnv, state: () => ({ deployment: { resources: [{ type: "platform:host:ScalewayHost", urn: `urn:pulumi:${id}::platform::platform:host:ScalewayHost::host`, outputs: { publicAddress: address, hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHMbJt8HkIVb3cQzQ0k7m4eqK5QdKHnXk0t7L1CTbsRM" } }] } }) }),
            });
            const before = docker("ps", "-aq", "--filter", "label=platform.role=one-off").length;
            const code = await exec.main(["--stack", id, "app1", "--", "touch", "/tmp/should-not-run"], impostor, { tty: false }).catch(() => 255);
            assert.notStrictEqual(code, 0);
            assert.strictEqual(docker("ps", "-aq", "--filter", "label=platform.role=one-off").length, before);
        });
    });
});
