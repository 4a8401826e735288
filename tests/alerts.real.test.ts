// The host's alerts checker (hostScripts/check-alerts.sh), each alert caused for real: a tmpfs filled
// to the brim, a container stopped, one that turns unhealthy, one restarting in a loop (the real
// Docker engine, read through its socket with nc -U), a real nginx handed an expired certificate made
// with openssl and one close to expiry, nginx serving another generation than the one stamped on disk
// (the production apply script stamps it), and a backup log whose last success is 27 h old or whose
// last run failed. Reports go to a real HTTP server standing in for the heartbeat URL and the webhook.
import * as assert from "assert";
import { execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { GENERATION_PATH } from "../render/nginx";
import { Edge, requireBinary, startEdge } from "./support/edge";
import { cleanupByLabel, docker, ensureBusyboxImage, requireDocker, waitFor } from "./support/docker";

const SCRIPT = path.join(__dirname, "..", "hostScripts", "check-alerts.sh");

interface Received {
    method: string;
    url: string;
    body: string;
}

describe("alerts checker (real Docker, nginx, tmpfs, openssl)", function () {
    this.timeout(240000);
    const id = `alerts-${process.pid}`;
    let dir: string;
    let edge: Edge;
    let tmpfs: string;
    let server: http.Server;
    let port = 0;
    const received: Received[] = [];
    let image: string;

    // Asynchronous: the report server runs in this process and must answer while the checker waits.
    const run = (env: Record<string, string>, ...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string; alerts: string[] }> =>
        new Promise((resolve) => {
            const child = spawn("sh", [SCRIPT, ...args], { env: { PATH: process.env.PATH, ...base(), ...env }, stdio: ["ignore", "pipe", "pipe"] });
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (d) => (stdout += d));
            child.stderr.on("data", (d) => (stderr += d));
            const timer = setTimeout(() => child.kill("SIGKILL"), 60000);
            child.on("close", (status) => {
                clearTimeout(timer);
                resolve({ status, stdout, stderr, alerts: stdout.split("\n").filter((l) => l.startsWith("alert ")) });
            });
        });
    const base = (): Record<string, string> => ({
        EXTRA_LABEL: `platform.test=${id}`,
        STATE_DIR: path.join(dir, "state"),
        DISK_PATHS: tmpfs,
        DISK_MAX_PERCENT: "90",
        CERT_CONNECT: `127.0.0.1:${edge.httpsPort}`,
        CERT_SERVERNAME: "localhost",
        NGINX_CONF: path.join(edge.dir, "nginx.conf"),
        PROBE_CMD: `wget -qO- -T 3 --header=Host:localhost http://127.0.0.1:${edge.httpPort}${GENERATION_PATH}`,
        BACKUP_LOG: path.join(dir, "backup.log"),
        HEARTBEAT_URL: `http://127.0.0.1:${port}/ping/abc`,
        WEBHOOK_URL: `http://127.0.0.1:${port}/hook`,
        HOST_LABEL: "test-host",
    });
    const label = ["--label", `platform.test=${id}`];
    const backupLine = (hoursAgo: number, what = "done: 2 app(s) backed up to x") =>
        `${new Date(Date.now() - hoursAgo * 3_600_000).toISOString().replace(/\.\d{3}Z$/, "Z")} backup: ${what}\n`;
    const certificate = (days: number) => {
        const key = path.join(edge.dir, "key.pem");
        const csr = path.join(dir, "c.csr");
        execFileSync("openssl", ["req", "-new", "-key", key, "-subj", "/CN=localhost", "-out", csr], { stdio: "ignore" });
        // -days -1: a certificate that expired a day ago.
        execFileSync("openssl", ["x509", "-req", "-in", csr, "-signkey", key, "-days", String(days), "-out", path.join(edge.dir, "cert.pem")], { stdio: "ignore" });
        execFileSync("nginx", ["-p", edge.dir, "-c", path.join(edge.dir, "nginx.conf"), "-s", "reload"], { stdio: "ignore" });
        // A reload is asynchronous (new workers start, old ones drain): wait until nginx serves the new one.
        const written = execFileSync("openssl", ["x509", "-noout", "-enddate", "-in", path.join(edge.dir, "cert.pem")], { encoding: "utf8" }).trim();
        const deadline = Date.now() + 15000;
        while (servedEnd() !== written) {
            if (Date.now() > deadline) throw new Error(`nginx still serves ${servedEnd()} 15 s after the reload, not ${written}`);
            execFileSync("sleep", ["0.2"]);
        }
    };
    const servedEnd = (): string => {
        try {
            return execFileSync("sh", ["-c", `openssl s_client -connect 127.0.0.1:${edge.httpsPort} -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -enddate`], { encoding: "utf8" }).trim();
        } catch {
            return "";
        }
    };

    before(async function () {
        requireDocker(this);
        for (const b of ["nginx", "openssl", "nc", "wget", "mount"]) requireBinary(this, b);
        if (process.getuid?.() !== 0) {
            if (process.env.CI === "true") throw new Error("this suite needs root (a tmpfs mount)");
            console.warn("\n  !!! SKIPPING: needs root (mounts a tmpfs). CI fails without it. !!!\n");
            this.skip();
        }
        image = ensureBusyboxImage(this);
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-alerts-"));
        tmpfs = path.join(dir, "disk");
        fs.mkdirSync(tmpfs);
        execFileSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", tmpfs]);
        edge = await startEdge([], "https");
        const applied = edge.apply([]);
        assert.strictEqual(applied.status, 0, applied.stderr);
        certificate(90);
        server = http.createServer((req, res) => {
            let body = "";
            req.on("data", (d) => (body += d)).on("end", () => {
                received.push({ method: req.method ?? "", url: req.url ?? "", body });
                res.end("OK");
            });
        });
        await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
        port = (server.address() as { port: number }).port;
        fs.writeFileSync(path.join(dir, "backup.log"), backupLine(30) + backupLine(2));
        // A healthy app container and a healthy edge-role container of this test.
        docker("run", "-d", ...label, "--label", "platform.app=app1", "--label", "platform.role=backend", "--label", "platform.release=1.0.0", "--name", `${id}-backend`, "--health-cmd", "wget -qO /dev/null http://127.0.0.1:8080/health", "--health-interval", "1s", "--health-retries", "2", image);
        await waitFor("the backend to turn healthy", () => docker("inspect", "--format", "{{.State.Health.Status}}", `${id}-backend`) === "healthy");
    });

    after(async () => {
        cleanupByLabel(id);
        await edge?.stop();
        server?.close();
        if (tmpfs) spawnSync("umount", [tmpfs]);
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("all clear: no alert, exit 0, and --facts prints what it measured", async () => {
        certificate(90);
        const r = await run({}, "--facts");
        assert.strictEqual(r.status, 0, r.stdout + r.stderr);
        assert.deepStrictEqual(r.alerts, []);
        assert.match(r.stdout, new RegExp(`^container ${id}-backend app1 backend 1\\.0\\.0 running healthy 0 [0-9a-f]{12}$`, "m"));
        assert.match(r.stdout, new RegExp(`^disk ${tmpfs.replace(/[/.]/g, "\\$&")} \\d+ \\d+ 2048$`, "m"));
        assert.match(r.stdout, /^memory \d+ \d+$/m);
        assert.match(r.stdout, /^certificate \d+ (89|90)$/m);
        assert.match(r.stdout, /^backup \d+ ok$/m);
        const gen = /^generation ([0-9a-f]{16}) ([0-9a-f]{16})$/m.exec(r.stdout);
        assert.ok(gen && gen[1] === gen[2], r.stdout);
        // Only this test's containers (EXTRA_LABEL): the engine is shared.
        assert.ok(!/^container platform-edge /m.test(r.stdout));
        const check = await run({});
        assert.strictEqual(check.status, 0, check.stdout + check.stderr);
        assert.strictEqual(received.length, 0, "nothing to report, nothing sent");
    });

    it("disk: a tmpfs filled to the brim", async () => {
        spawnSync("dd", ["if=/dev/zero", `of=${path.join(tmpfs, "fill")}`, "bs=64k", "count=64"], { stdio: "ignore" });
        try {
            const r = await run({}, "--facts");
            assert.strictEqual(r.status, 1);
            assert.deepStrictEqual(r.alerts, [`alert disk: ${tmpfs} is 100% full (threshold 90%)`]);
        } finally {
            fs.rmSync(path.join(tmpfs, "fill"));
        }
        assert.deepStrictEqual((await run({}, "--facts")).alerts, []);
    });

    it("certificate: nginx handed an expired certificate, then one expiring in 3 days", async () => {
        certificate(-1);
        let r;
        try {
            assert.match(servedEnd(), /notAfter=/);
            r = await run({}, "--facts");
            assert.deepStrictEqual(r.alerts, [`alert certificate: the certificate served at 127.0.0.1:${edge.httpsPort} has expired`]);
            certificate(3);
            r = await run({}, "--facts");
        assert.deepStrictEqual(r.alerts, [`alert certificate: the certificate served at 127.0.0.1:${edge.httpsPort} expires in ${r.alerts[0]?.includes("in 3 days") ? 3 : 2} days (under 14)`]);
        } finally {
            certificate(90);
        }
        assert.deepStrictEqual((await run({}, "--facts")).alerts, []);
    });

    it("backup: the last success 27 h ago, then a failed last run", async () => {
        const log = path.join(dir, "backup.log");
        try {
            fs.writeFileSync(log, backupLine(50) + backupLine(27));
            assert.deepStrictEqual((await run({}, "--facts")).alerts, ["alert backup: the newest backup is 27 h old (limit 26 h)"]);
            fs.writeFileSync(log, backupLine(5) + backupLine(1, "FAILED: no backup for: app1 (1 other app(s) backed up)"));
            assert.deepStrictEqual((await run({}, "--facts")).alerts, [`alert backup: the last backup run failed (see ${log})`]);
            fs.writeFileSync(log, "");
            assert.deepStrictEqual((await run({}, "--facts")).alerts, ["alert backup: no successful backup found"]);
        } finally {
            fs.writeFileSync(log, backupLine(2));
        }
        assert.deepStrictEqual((await run({}, "--facts")).alerts, []);
    });

    it("generation: nginx does not serve the generation stamped on disk", async () => {
        const conf = path.join(edge.dir, "nginx.conf");
        const text = fs.readFileSync(conf, "utf8");
        const stamped = /return 200 "generation ([0-9a-f]+)\\n"/.exec(text)![1];
        // A config on disk that nginx never loaded (an apply interrupted after its swap).
        fs.writeFileSync(conf, text.replace(`generation ${stamped}`, "generation 00000000deadbeef"));
        try {
            assert.deepStrictEqual((await run({}, "--facts")).alerts, [`alert generation: nginx serves generation ${stamped}, the config on disk is 00000000deadbeef`]);
        } finally {
            fs.writeFileSync(conf, text);
        }
        assert.deepStrictEqual((await run({ PROBE_CMD: "false" }, "--facts")).alerts, [`alert generation: nginx serves generation none, the config on disk is ${stamped}`]);
    });

    it("containers: one stopped, one unhealthy, one restarting in a loop", async () => {
        docker("run", "-d", ...label, "--label", "platform.app=app2", "--label", "platform.role=frontend", "--name", `${id}-stopped`, image);
        docker("stop", "-t", "1", `${id}-stopped`);
        docker("run", "-d", ...label, "--label", "platform.app=app2", "--label", "platform.role=backend", "--name", `${id}-sick`, "--health-cmd", "wget -qO /dev/null http://127.0.0.1:8080/missing", "--health-interval", "1s", "--health-retries", "1", image);
        await waitFor("the sick container to turn unhealthy", () => docker("inspect", "--format", "{{.State.Health.Status}}", `${id}-sick`) === "unhealthy");
        // The baseline run records restart counts; the crash loop then restarts a few times.
        assert.strictEqual((await run({})).status, 1);
        docker("run", "-d", ...label, "--label", "platform.role=database", "--name", `${id}-crash`, "--restart", "always", image, "sh", "-c", "sleep 0.2; exit 3");
        await run({});
        await waitFor("three restarts", () => Number(docker("inspect", "--format", "{{.RestartCount}}", `${id}-crash`)) >= 4, 90000);
        const r = await run({});
        assert.strictEqual(r.status, 1);
        assert.ok(r.alerts.includes(`alert container: app2/frontend (${id}-stopped) is exited`), r.alerts.join("\n"));
        assert.ok(r.alerts.includes(`alert container: app2/backend (${id}-sick) is unhealthy`), r.alerts.join("\n"));
        assert.ok(r.alerts.some((a) => new RegExp(`^alert container: database \\(${id}-crash\\) (restarted \\d+ times since the last check|is restarting)`).test(a)), r.alerts.join("\n"));
        assert.ok(!r.alerts.some((a) => a.includes(`${id}-backend`)), "the healthy one raises nothing");
    });

    it("reports: the heartbeat URL gets /fail with the alerts on every run with alerts, the webhook only when the set changes, both once when all clears", async () => {
        // The containers of the previous test still alert.
        received.length = 0;
        await run({});
        await run({});
        const fails = received.filter((r) => r.url === "/ping/abc/fail");
        assert.strictEqual(fails.length, 2, JSON.stringify(received));
        assert.match(fails[0].body, /^platform alerts on test-host: \d+\n/);
        assert.match(fails[0].body, /is unhealthy/);
        // The set did not change since the previous test's last run, so no webhook here...
        const hooksBefore = received.filter((r) => r.url === "/hook").length;
        // ...until it does: remove the stopped one.
        docker("rm", "-f", `${id}-stopped`, `${id}-crash`);
        await run({});
        const hooks = received.filter((r) => r.url === "/hook");
        assert.strictEqual(hooks.length, hooksBefore + 1);
        const payload = JSON.parse(hooks[hooks.length - 1].body);
        assert.match(payload.text, /^platform alerts on test-host:\n- container: app2\/backend/);
        assert.ok(!payload.text.includes("stopped"));
        docker("rm", "-f", `${id}-sick`);
        received.length = 0;
        const clear = await run({});
        assert.strictEqual(clear.status, 0, clear.stdout);
        assert.deepStrictEqual(
            received.map((r) => r.url),
            ["/ping/abc", "/hook"],
        );
        assert.strictEqual(JSON.parse(received[1].body).text, "platform on test-host: all clear");
        received.length = 0;
        await run({});
        assert.deepStrictEqual(received, [], "all clear again: nothing more is sent");
    });

    it("hostile settings are refused before anything runs", async () => {
        for (const [k, v] of [
            ["DISK_MAX_PERCENT", "90; touch /tmp/pwned"],
            ["EXTRA_LABEL", "a=b%22%5D"],
            ["EXTRA_LABEL", "$(id)=x"],
            ["CERT_CONNECT", "127.0.0.1:443 -proxy evil"],
            ["EDGE_CONTAINER", "x;reboot"],
        ]) {
            const r = await run({ [k]: v }, "--facts");
            assert.strictEqual(r.status, 2, `${k}=${v}: ${r.stdout}${r.stderr}`);
            assert.match(r.stderr, /check-alerts: /);
        }
        assert.ok(!fs.existsSync("/tmp/pwned"));
    });

    it("passes shellcheck", function () {
        requireBinary(this, "shellcheck");
        const r = spawnSync("shellcheck", ["-s", "sh", SCRIPT], { encoding: "utf8" });
        assert.strictEqual(r.status, 0, r.stdout);
    });
});
