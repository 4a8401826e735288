// The edge behind the load balancer, under the real nginx: PROXY protocol v2/v1 from the load
// balancer's network only, the client's address from the header (logs, rate limit, X-Real-IP),
// X-Forwarded-Proto https and HSTS, /health as the load balancer asks for it, the container's own
// checks on loopback without a header, and the per-host switch (apply script, graceful reload) with
// zero failed requests; then two edges behind a stand-in round-robin balancer switched one after the
// other, and a host taken out of the balancer before it stops, with zero failed requests.
import * as assert from "assert";
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { GENERATION_PATH, Route, containerEdgeSettings, renderNginxConfig } from "../render/nginx";
import { STOP_GRACE_SECONDS } from "../render/containers";
import { timingArgument } from "../render/scale";
import { APPLY_SCRIPT, Upstream, freePort, requireBinary, route, sleep, startUpstream, waitHealthy } from "./support/edge";

interface LbEdge {
    readonly proxyPort: number;
    readonly localPort: number;
    apply(routes: Route[]): { status: number | null; stderr: string };
    stop(): Promise<void>;
}

const DOMAIN = "apps.example.com";

/** nginx in the load-balancer mode: the PROXY listener on 127.0.0.2, the container's own checks on 127.0.0.1. */
async function startLbEdge(routes: Route[], trustedCidrs = ["127.0.0.0/8"]): Promise<LbEdge> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-lb-edge-"));
    fs.chmodSync(dir, 0o755);
    fs.mkdirSync(path.join(dir, "temp"));
    const proxyPort = await freePort();
    const localPort = await freePort();
    const settings = {
        ...containerEdgeSettings("https", DOMAIN),
        listenHttp: `127.0.0.2:${proxyPort}`,
        listenHttps: `127.0.0.1:${await freePort()}`,
        certificate: path.join(dir, "unused.pem"),
        certificateKey: path.join(dir, "unused.key"),
        acmeWebroot: path.join(dir, "acme"),
        resolver: "127.0.0.1:1",
        routeDir: path.join(dir, "routes"),
        pidFile: path.join(dir, "temp", "nginx.pid"),
        errorLog: path.join(dir, "error.log"),
        accessLog: path.join(dir, "access.log"),
        tempDir: path.join(dir, "temp"),
        apiRatePerSecond: 100000,
        apiBurst: 100000,
        behindLoadBalancer: { trustedCidrs, localListen: `127.0.0.1:${localPort}` },
    };
    const conf = path.join(dir, "nginx.conf");
    fs.writeFileSync(conf, renderNginxConfig(routes, settings));
    const child: ChildProcess = spawn("nginx", ["-p", dir, "-c", conf, "-g", "daemon off;"], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    const deadline = Date.now() + 10000;
    for (;;) {
        const r = spawnSync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", `http://127.0.0.1:${localPort}/health`], { encoding: "utf8" });
        if (r.stdout === "200") break;
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`nginx did not start: ${stderr}`);
        await sleep(50);
    }
    const env = {
        ...process.env,
        CONF_DIR: dir,
        NGINX_CMD: `nginx -p ${dir}`,
        RESOLVE_CMD: "false",
        // As in production: the probe is the container's own, on loopback, without a PROXY header.
        PROBE_CMD: `curl -s --max-time 3 http://127.0.0.1:${localPort}`,
        DRAIN_SECONDS: "0",
    };
    const edge: LbEdge = {
        proxyPort,
        localPort,
        apply: (newRoutes) => {
            const r = spawnSync("sh", [APPLY_SCRIPT], { input: renderNginxConfig(newRoutes, settings), env, encoding: "utf8", timeout: 60000 });
            return { status: r.status, stderr: r.stderr };
        },
        stop: async () => {
            child.kill("SIGQUIT");
            await Promise.race([new Promise((r) => child.once("exit", r)), sleep(10000)]);
            if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
    // The route switches are the apply script's, as after the first deployment.
    const first = edge.apply(routes);
    if (first.status !== 0) throw new Error(`the first apply failed: ${first.stderr}`);
    return edge;
}

/** A PROXY protocol v2 header (what Scaleway's load balancer sends with proxy_protocol v2). */
function proxyV2(clientIp: string, clientPort: number, serverIp: string, serverPort: number): Buffer {
    const sig = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
    const addr = Buffer.alloc(12);
    clientIp.split(".").forEach((o, i) => addr.writeUInt8(Number(o), i));
    serverIp.split(".").forEach((o, i) => addr.writeUInt8(Number(o), 4 + i));
    addr.writeUInt16BE(clientPort, 8);
    addr.writeUInt16BE(serverPort, 10);
    // version 2, PROXY command; AF_INET, STREAM; 12 address bytes.
    return Buffer.concat([sig, Buffer.from([0x21, 0x11, 0x00, 0x0c]), addr]);
}

interface RawReply {
    status: number;
    headers: Record<string, string>;
    body: string;
}

function dechunk(text: string): string {
    let out = "";
    let rest = text;
    for (;;) {
        const eol = rest.indexOf("\r\n");
        const size = parseInt(rest.slice(0, eol), 16);
        if (!(size > 0)) return out;
        out += rest.slice(eol + 2, eol + 2 + size);
        rest = rest.slice(eol + 2 + size + 2);
    }
}

/** One request on its own connection to 127.0.0.2:port, preceded by `preamble` (a PROXY header, or nothing). */
function send(port: number, preamble: Buffer, pathAndQuery: string, host = DOMAIN): Promise<RawReply> {
    return new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        const socket = net.connect({ host: "127.0.0.2", port }, () => {
            socket.write(Buffer.concat([preamble, Buffer.from(`GET ${pathAndQuery} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)]));
        });
        socket.setTimeout(10000, () => socket.destroy(new Error("timeout")));
        socket.on("data", (d) => chunks.push(d));
        socket.on("error", reject);
        socket.on("close", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
            if (!m) return resolve({ status: 0, headers: {}, body: text });
            const [head, ...rest] = text.split("\r\n\r\n");
            const headers: Record<string, string> = {};
            for (const line of head.split("\r\n").slice(1)) {
                const i = line.indexOf(":");
                headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
            }
            let body = rest.join("\r\n\r\n");
            if (/chunked/i.test(headers["transfer-encoding"] ?? "")) body = dechunk(body);
            resolve({ status: Number(m[1]), headers, body });
        });
    });
}

/** Load as the load balancer sends it: each request with a PROXY v2 header, to `pick()`'s edge. */
async function lbLoad(pick: () => number, clients: number, until: Promise<void>): Promise<{ total: number; failed: number; failures: string[]; servedBy: string[] }> {
    const result = { total: 0, failed: 0, failures: [] as string[], servedBy: [] as string[] };
    let done = false;
    void until.then(() => (done = true));
    let n = 0;
    await Promise.all(
        Array.from({ length: clients }, async (_, c) => {
            while (!done) {
                const port = pick();
                try {
                    const r = await send(port, proxyV2(`203.0.113.${1 + (c % 200)}`, 40000 + (n++ % 20000), "172.16.32.2", 80), "/api/app1/orders");
                    result.total++;
                    if (r.status !== 200) {
                        result.failed++;
                        if (result.failures.length < 20) result.failures.push(`status ${r.status}`);
                    } else result.servedBy.push(JSON.parse(r.body).upstream);
                } catch (e) {
                    result.total++;
                    result.failed++;
                    if (result.failures.length < 20) result.failures.push((e as Error).message);
                }
            }
        }),
    );
    return result;
}

describe("edge behind the load balancer (real nginx)", function () {
    this.timeout(120000);
    let frontend: Upstream;
    let blue: Upstream;
    let edge: LbEdge;

    before(async function () {
        requireBinary(this, "nginx");
        requireBinary(this, "curl");
        frontend = await startUpstream("frontend", { spa: true });
        blue = await startUpstream("blue");
        edge = await startLbEdge([route("app1", frontend, blue)]);
    });
    after(async () => {
        await edge?.stop();
        await frontend?.close();
        await blue?.close();
    });

    it("takes the client's address from a PROXY v2 header, and tells the app the request was HTTPS", async () => {
        const r = await send(edge.proxyPort, proxyV2("198.51.100.23", 51000, "172.16.32.2", 80), "/api/app1/who");
        assert.strictEqual(r.status, 200, r.body);
        const seen = JSON.parse(r.body).headers;
        assert.strictEqual(seen["x-real-ip"], "198.51.100.23");
        assert.strictEqual(seen["x-forwarded-for"], "198.51.100.23");
        assert.strictEqual(seen["x-forwarded-proto"], "https");
        assert.strictEqual(seen.forwarded, `for=198.51.100.23;host=${DOMAIN};proto=https`);
        assert.match(r.headers["strict-transport-security"] ?? "", /max-age=63072000/);
    });

    it("accepts PROXY v1 too, and answers /health as the load balancer's check asks (Host = the domain, header included)", async () => {
        const r = await send(edge.proxyPort, Buffer.from("PROXY TCP4 192.0.2.9 172.16.32.2 40000 80\r\n"), "/health");
        assert.strictEqual(r.status, 200);
        assert.strictEqual(r.body.trim(), "ok");
    });

    it("refuses a connection without a PROXY header: nothing reaches an app", async () => {
        const hits = blue.hits;
        const r = await send(edge.proxyPort, Buffer.alloc(0), "/api/app1/direct").catch(() => ({ status: 0, headers: {}, body: "" }));
        assert.notStrictEqual(r.status, 200);
        assert.strictEqual(blue.hits, hits);
    });

    it("closes every connection that does not come from the load balancer's own address, whatever its PROXY header says", async () => {
        const other = await startLbEdge([route("app1", frontend, blue)], ["10.99.0.7/32"]);
        try {
            const hits = blue.hits;
            const headers = [
                proxyV2("198.51.100.23", 51000, "172.16.32.2", 80),
                // A header that names the balancer as the client changes nothing: the connection's own address counts.
                Buffer.from("PROXY TCP4 10.99.0.7 172.16.32.2 40000 80\r\n"),
            ];
            for (const header of headers) {
                for (const urlPath of ["/api/app1/who", "/app1/", "/health"]) {
                    const r = await send(other.proxyPort, header, urlPath).catch(() => ({ status: 0, headers: {}, body: "" }));
                    assert.strictEqual(r.status, 0, `${urlPath}: closed without an answer (444), got ${r.status}`);
                }
            }
            assert.strictEqual(blue.hits, hits, "nothing reached the app");
        } finally {
            await other.stop();
        }
    });

    it("refuses other Host names, as the single-server edge does", async () => {
        const r = await send(edge.proxyPort, proxyV2("198.51.100.23", 51000, "172.16.32.2", 80), "/api/app1/x", "evil.example.net");
        assert.strictEqual(r.status, 0, "closed without an answer (444)");
    });

    it("keeps the container's own healthcheck and the apply script's probe on loopback, without a header", () => {
        const health = execFileSync("curl", ["-s", `http://127.0.0.1:${edge.localPort}/health`], { encoding: "utf8" });
        assert.strictEqual(health.trim(), "ok");
        const generation = execFileSync("curl", ["-s", `http://127.0.0.1:${edge.localPort}${GENERATION_PATH}`], { encoding: "utf8" });
        assert.match(generation, /^generation /);
        const other = spawnSync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", `http://127.0.0.1:${edge.localPort}/api/app1/x`], { encoding: "utf8" });
        assert.notStrictEqual(other.stdout, "200", "loopback serves no app");
    });

    it("switches blue → green through the apply script under load from the balancer: zero failed requests", async () => {
        let stop!: () => void;
        const until = new Promise<void>((r) => (stop = r));
        const load = lbLoad(() => edge.proxyPort, 16, until);
        const green = await startUpstream("green");
        try {
            await sleep(700);
            assert.ok(await waitHealthy(green.port, 5000));
            const applied = edge.apply([route("app1", frontend, green)]);
            assert.strictEqual(applied.status, 0, applied.stderr);
            await sleep(500);
            // The old container goes only after the switch (Pulumi deletes replaced containers last).
            await blue.close();
            await sleep(700);
        } finally {
            stop();
        }
        const r = await load;
        assert.ok(r.total > 200, `only ${r.total} requests`);
        assert.strictEqual(r.failed, 0, r.failures.join("; "));
        assert.strictEqual(r.servedBy[r.servedBy.length - 1], "green");
        blue = green;
    });
});

describe("two hosts behind a stand-in round-robin balancer (real nginx)", function () {
    this.timeout(120000);

    it("a release switches host after host with zero failed requests; a host leaves the balancer before it stops", async function () {
        requireBinary(this, "nginx");
        const frontend = await startUpstream("frontend", { spa: true });
        // Each host runs its own copy of the app: v1 on both.
        const v1 = [await startUpstream("h0-v1"), await startUpstream("h1-v1")];
        const edges = [await startLbEdge([route("app1", frontend, v1[0])]), await startLbEdge([route("app1", frontend, v1[1])])];
        let members = [0, 1];
        let next = 0;
        const pick = () => edges[members[next++ % members.length]].proxyPort;
        let stop!: () => void;
        const until = new Promise<void>((r) => (stop = r));
        const load = lbLoad(pick, 16, until);
        const v2: Upstream[] = [];
        try {
            await sleep(500);
            // The rollout: host 1 starts its new containers only after host 0's edge has switched.
            for (const i of [0, 1]) {
                v2[i] = await startUpstream(`h${i}-v2`);
                assert.ok(await waitHealthy(v2[i].port, 5000));
                const applied = edges[i].apply([route("app1", frontend, v2[i])]);
                assert.strictEqual(applied.status, 0, applied.stderr);
                await sleep(400);
            }
            // End of the deployment: the old containers go, on every host.
            await Promise.all(v1.map((u) => u.close()));
            await sleep(500);
            // hosts 2 → 1: the backend is updated first (host 1 out), host 1 stops afterwards.
            members = [0];
            await sleep(300);
            await edges[1].stop();
            await sleep(500);
        } finally {
            stop();
        }
        const r = await load;
        await Promise.all([edges[0].stop(), frontend.close(), ...v2.map((u) => u.close())]);
        assert.ok(r.total > 300, `only ${r.total} requests`);
        assert.strictEqual(r.failed, 0, r.failures.join("; "));
        const last = r.servedBy.slice(-20);
        assert.ok(last.every((s) => s === "h0-v2"), `after the change only host 0's new release serves: ${last.join(",")}`);
        assert.ok(r.servedBy.includes("h1-v2"), "host 1 served the new release before it left");
    });

    it("the timing argument holds with the edge's own drain setting", () => {
        const drain = Number(containerEdgeSettings("https", DOMAIN).workerShutdownTimeout.replace(/s$/, ""));
        const t = timingArgument(drain);
        for (const [step, ok] of Object.entries(t.holds)) assert.ok(ok, step);
        assert.ok(t.markDownSeconds < STOP_GRACE_SECONDS);
    });
});
