// A release migration's host command, exactly as the program renders it (releaseMigrationScript), run
// against the real Docker engine: the new backend's health gate, then the catalog's words in a one-off
// container of that backend (its image, user, networks and DATABASE_URL), removed afterwards. A failure
// or a passed deadline fails the command with the migration's output and leaves the backend running;
// a backend that already serves is never migrated again; hostile words stay words.
import * as assert from "assert";
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { catalog } from "../apps";
import { AppDefinition } from "../apps/types";
import { releaseMigrationScript } from "../components/webApp";
import { cleanupByLabel, docker, dockerQuiet, ensureBusyboxImage, requireDocker, waitFor } from "./support/docker";

describe("release migrations on the real Docker engine", function () {
    this.timeout(180000);
    const id = `migrate-${process.pid}`;
    const secret = `S3cr3t-${Math.random().toString(36).slice(2)}`;
    const databaseUrl = `postgres://app_app1:${secret}@${id}-db:5432/app1_db`;
    const label = ["--label", `platform.test=${id}`];
    const image = `platform-test-entrypoint:${process.pid}`;
    let dir: string;
    let liveConf: string;
    let backend: string;

    const app = (over: Partial<AppDefinition>): AppDefinition => ({ ...catalog.app1, migrate: ["true"], ...over });
    const migrate = (over: Partial<AppDefinition>, container = backend) => {
        const started = Date.now();
        const r = spawnSync("sh", ["-c", releaseMigrationScript(app(over), container, liveConf)], { encoding: "utf8", cwd: dir });
        return { status: r.status, stdout: r.stdout, stderr: r.stderr, all: `${r.stdout}\n${r.stderr}`, seconds: (Date.now() - started) / 1000 };
    };
    const leftovers = () => docker("ps", "-aq", "--filter", "name=^platform-migrate-app1$");

    before(async function () {
        requireDocker(this);
        // As most app images are: the server is the ENTRYPOINT, so a one-off's words must replace it, not feed it.
        const base = ensureBusyboxImage(this);
        const seed = docker("create", ...label, base);
        docker("commit", "--change", 'ENTRYPOINT ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]', "--change", "CMD []", seed, image);
        docker("rm", seed);
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-migrate-"));
        liveConf = path.join(dir, "nginx.conf");
        docker("network", "create", ...label, `${id}-app`);
        docker("network", "create", ...label, "--internal", `${id}-dbnet`);
        // The database stand-in, on the database network only, as PostgreSQL is: the migration must reach it.
        docker("run", "-d", ...label, "--name", `${id}-db`, "--network", `${id}-dbnet`, image);
        backend = `${id}-backend`;
        const health = ["--health-cmd", "wget -qO /dev/null http://127.0.0.1:8080/health", "--health-interval", "1s", "--health-retries", "2"];
        execFileSync(
            "docker",
            ["create", ...label, "--label", "platform.app=app1", "--label", "platform.role=backend", ...health, "--name", backend, "--network", `${id}-app`, "-e", "DATABASE_URL", "--user", "65534:65534", "--memory", "64m", "--cap-drop", "ALL", image],
            { env: { ...process.env, DATABASE_URL: databaseUrl }, stdio: "ignore" },
        );
        execFileSync("docker", ["network", "connect", `${id}-dbnet`, backend]);
        execFileSync("docker", ["start", backend], { stdio: "ignore" });
        await waitFor("a healthy backend", () => docker("inspect", "--format", "{{.State.Health.Status}}", backend) === "healthy");
    });

    after(() => {
        cleanupByLabel(id);
        dockerQuiet("rm", "-f", "platform-migrate-app1");
        dockerQuiet("rmi", image);
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("runs the words in a one-off of the backend: its user, its networks, its DATABASE_URL; hostile words stay words; the container is removed", () => {
        const pwned = path.join(dir, "pwned");
        const r = migrate({
            migrate: [
                "sh",
                "-c",
                'echo "user $(id -u)"; [ "$DATABASE_URL" = "$1" ] && echo "url ok"; wget -qO- "http://$2:8080/health" && echo "db reached"; echo "word: $0"',
                `x'; touch ${pwned}; '`,
                databaseUrl,
                `${id}-db`,
            ],
        });
        assert.strictEqual(r.status, 0, r.all);
        assert.match(r.stdout, /user 65534/);
        assert.match(r.stdout, /url ok/);
        assert.match(r.stdout, /db reached/);
        assert.ok(r.stdout.includes(`word: x'; touch ${pwned}; '`), r.stdout);
        assert.match(r.stdout, /migrate: app1: done in \d+s/);
        assert.ok(!fs.existsSync(pwned), "a word ran as a command on the host");
        assert.strictEqual(leftovers(), "", "the one-off container is removed");
        assert.strictEqual(docker("inspect", "--format", "{{.State.Running}}", backend), "true");
    });

    it("a failing migration fails the command with its output and exit code; nothing switches and the backend keeps running for a retry", () => {
        const r = migrate({ migrate: ["sh", "-c", "echo 'ERROR: column \"c\" already exists' >&2; exit 3"] });
        assert.strictEqual(r.status, 1, r.all);
        assert.match(r.stderr, /ERROR: column "c" already exists/);
        assert.match(r.stderr, /migrate: app1: the migration failed \(exit 3 after \d+s\): nothing switched, the previous release keeps serving/);
        assert.match(r.stderr, /'pulumi up' again retries the migration/);
        assert.strictEqual(docker("inspect", "--format", "{{.State.Running}}", backend), "true");
        assert.strictEqual(leftovers(), "");
        // The retry the message promises: the same command again, now passing.
        assert.strictEqual(migrate({ migrate: ["true"] }).status, 0);
    });

    it("a migration past its deadline is stopped and removed, and fails the command", () => {
        const r = migrate({ migrate: ["sleep", "120"], migrateTimeoutSeconds: 2 });
        assert.strictEqual(r.status, 1, r.all);
        assert.match(r.stderr, /migrate: app1: the migration passed its 2s deadline and was stopped/);
        assert.ok(r.seconds < 15, `took ${r.seconds} s`);
        assert.strictEqual(leftovers(), "", "the stopped one-off is gone");
    });

    it("a backend the live config already routes to is not migrated again", () => {
        fs.writeFileSync(liveConf, `# platform-route app1.frontend f:80\n# platform-route app1.backend ${backend}:8080\n`);
        try {
            const r = migrate({ migrate: ["sh", "-c", "echo RAN"] });
            assert.strictEqual(r.status, 0, r.all);
            assert.doesNotMatch(r.stdout, /RAN/);
            assert.match(r.stdout, /already serves; its migration ran before it did/);
        } finally {
            fs.rmSync(liveConf);
        }
    });

    it("a backend that never turns healthy fails at its health gate: the migration never runs", () => {
        const sick = `${id}-sick`;
        docker("run", "-d", ...label, "--label", "platform.app=app1", "--health-cmd", "false", "--health-interval", "1s", "--health-retries", "1", "--name", sick, "--network", `${id}-app`, "--entrypoint", "sleep", image, "600");
        const r = migrate({ migrate: ["sh", "-c", "echo RAN"], backend: { ...catalog.app1.backend, healthWaitSeconds: 20 } }, sick);
        assert.notStrictEqual(r.status, 0, r.all);
        assert.match(r.all, /health-gate: .*is unhealthy/);
        assert.doesNotMatch(r.stdout, /RAN/);
    });

    it("refuses a bad app, container or deadline before docker is asked anything", () => {
        const script = fs.readFileSync(path.join(__dirname, "..", "hostScripts", "migrate.sh"), "utf8");
        for (const args of [["App;x", backend, "5", "true"], ["app1", "-rf", "5", "true"], ["app1", backend, "0", "true"], ["app1", backend, "1e3", "true"], ["app1", backend, "5"]]) {
            const r = spawnSync("/bin/sh", ["-c", script, "migrate", ...args], { encoding: "utf8", env: { PATH: "/nonexistent", ONE_OFF_SCRIPT: "exit 99" } });
            assert.strictEqual(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
        }
    });
});
