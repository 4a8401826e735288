// Real nginx on loopback with the rendered config, Node HTTP servers standing in for containers, and
// a bounded load generator. Shared by tests/edge.real.test.ts and bench/rollout.ts.
import { execFileSync, spawn, spawnSync, ChildProcess } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { EdgeSettings, Route, containerEdgeSettings, renderNginxConfig } from "../../lib/nginx";

export const APPLY_SCRIPT = path.join(__dirname, "..", "..", "scripts", "apply-nginx-config.sh");

/** A missing binary fails under CI=true and skips loudly elsewhere. */
export function requireBinary(ctx: Mocha.Context, name: string): void {
    if (spawnSync("sh", ["-c", `command -v ${name}`]).status === 0) return;
    if (process.env.CI === "true") throw new Error(`${name} is not installed; .ci/run installs it (apt-get install ${name})`);
    console.warn(`\n  !!! SKIPPING: ${name} is not installed. Install it to run this suite (CI fails without it). !!!\n`);
    ctx.skip();
}

export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.once("error", reject);
        s.listen(0, "127.0.0.1", () => {
            const { port } = s.address() as net.AddressInfo;
            s.close(() => resolve(port));
        });
    });
}

/** A stand-in container: answers JSON naming itself and the path and headers it saw. */
export interface Upstream {
    readonly name: string;
    readonly port: number;
    hits: number;
    healthy: boolean;
    close(): Promise<void>;
}

export async function startUpstream(name: string, options: { spa?: boolean } = {}): Promise<Upstream> {
    const port = await freePort();
    const server = http.createServer((req, res) => {
        if (req.url === "/__health") {
            res.writeHead(upstream.healthy ? 200 : 503).end();
            return;
        }
        upstream.hits++;
        const url = req.url ?? "/";
        if (options.spa) {
            if (url === "/" || url === "/index.html") return void res.writeHead(200, { "content-type": "text/html" }).end(`<html>${name} index</html>`);
            if (/^\/main\.[0-9a-f]{8}\.js$/.test(url)) return void res.writeHead(200, { "content-type": "text/javascript", "cache-control": "no-store" }).end("x");
            return void res.writeHead(404).end("missing");
        }
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ upstream: name, path: url, headers: req.headers }));
    });
    // A websocket handshake answered just far enough to prove the upgrade crossed the edge.
    server.on("upgrade", (req, socket) => {
        socket.end(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Upstream: ${name}\r\nX-Seen-Path: ${req.url}\r\n\r\n`);
    });
    server.keepAliveTimeout = 5000;
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()));
    const upstream: Upstream = {
        name,
        port,
        hits: 0,
        healthy: true,
        // Graceful: stop accepting, let in-flight requests finish (as `docker stop` with a grace period).
        close: () =>
            new Promise<void>((r) => {
                server.close(() => r());
                server.closeIdleConnections();
            }),
    };
    return upstream;
}

export interface Edge {
    readonly dir: string;
    readonly settings: EdgeSettings;
    readonly httpPort: number;
    readonly httpsPort: number;
    /** Renders and applies through the production apply script; resolves with its exit status and output. */
    apply(routes: Route[], settle?: number): { status: number; stderr: string; stdout: string };
    applyRaw(config: string): { status: number; stderr: string; stdout: string };
    stop(): Promise<void>;
}

export async function startEdge(routes: Route[], mode: "http" | "https" = "http", overrides: Partial<EdgeSettings> = {}): Promise<Edge> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-edge-"));
    // nginx workers run as an unprivileged user and must read the ACME webroot.
    fs.chmodSync(dir, 0o755);
    fs.mkdirSync(path.join(dir, "temp"));
    fs.mkdirSync(path.join(dir, "acme", ".well-known", "acme-challenge"), { recursive: true });
    const httpPort = await freePort();
    const httpsPort = await freePort();
    const settings: EdgeSettings = {
        ...containerEdgeSettings(mode, "localhost"),
        listenHttp: `127.0.0.1:${httpPort}`,
        listenHttps: `127.0.0.1:${httpsPort}`,
        publicHttpsPort: httpsPort,
        certificate: path.join(dir, "cert.pem"),
        certificateKey: path.join(dir, "key.pem"),
        acmeWebroot: path.join(dir, "acme"),
        // Nothing answers DNS here: container names fail to resolve, IPs need no resolver.
        resolver: "127.0.0.1:1",
        pidFile: path.join(dir, "nginx.pid"),
        errorLog: path.join(dir, "error.log"),
        accessLog: path.join(dir, "access.log"),
        tempDir: path.join(dir, "temp"),
        apiRatePerSecond: 100000,
        apiBurst: 100000,
        ...overrides,
    };
    if (mode === "https") {
        execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", settings.certificateKey, "-out", settings.certificate], { stdio: "ignore" });
    }
    const conf = path.join(dir, "nginx.conf");
    fs.writeFileSync(conf, renderNginxConfig(routes, settings));
    const child: ChildProcess = spawn("nginx", ["-p", dir, "-c", conf, "-g", "daemon off;"], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    const deadline = Date.now() + 10000;
    while (!(await canGet(httpPort))) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`nginx did not start: ${stderr}${readIfExists(settings.errorLog)}`);
        await sleep(50);
    }
    const applyRaw = (config: string) => {
        const result = spawnSync("sh", [APPLY_SCRIPT], {
            input: config,
            env: { ...process.env, CONF_DIR: dir, NGINX_CMD: `nginx -p ${dir}`, SETTLE_SECONDS: "0" },
            encoding: "utf8",
        });
        return { status: result.status ?? -1, stderr: result.stderr, stdout: result.stdout };
    };
    return {
        dir,
        settings,
        httpPort,
        httpsPort,
        applyRaw,
        apply: (newRoutes) => applyRaw(renderNginxConfig(newRoutes, settings)),
        stop: async () => {
            child.kill("SIGQUIT");
            await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once("exit", r)));
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}

function readIfExists(file: string): string {
    try {
        return fs.readFileSync(file, "utf8");
    } catch {
        return "";
    }
}

export function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}

async function canGet(port: number): Promise<boolean> {
    try {
        await get(port, "/health");
        return true;
    } catch {
        return false;
    }
}

export interface Reply {
    status: number;
    headers: http.IncomingHttpHeaders;
    body: string;
}

/** One GET on a fresh connection, with the raw path as given (no client-side normalisation). */
export function get(port: number, rawPath: string, headers: Record<string, string> = {}): Promise<Reply> {
    return new Promise((resolve, reject) => {
        const req = http.request({ host: "127.0.0.1", port, path: rawPath, headers, agent: false }, (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (d) => (body += d));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        });
        req.setTimeout(10000, () => req.destroy(new Error("timeout")));
        req.on("error", reject);
        req.end();
    });
}

export interface LoadResult {
    total: number;
    failed: number;
    /** Upstream name per successful request, in completion order. */
    servedBy: string[];
    /** When each request in servedBy was sent (ms since epoch). */
    sentAt: number[];
    /** Failure descriptions (status or error), at most 20. */
    failures: string[];
    /**
     * GETs re-sent once because the connection closed before any byte of a response (a graceful
     * nginx reload closes idle keep-alive connections; the request may cross the close). RFC 9112
     * §9.3.1 lets clients retry idempotent requests then, and browsers do for keep-alive connections.
     * Counted and reported, not hidden; a second failure, an error status or anything else fails.
     */
    retriedOnClosedKeepAlive: number;
    durationMs: number;
}

/**
 * `clients` concurrent loops of GETs against `path` until `stop()` resolves (bounded by `maxMs`).
 * A request fails on a network error or any status other than 200.
 */
export async function runLoad(port: number, path: string, clients: number, until: Promise<void>, maxMs = 60000): Promise<LoadResult> {
    const result: LoadResult = { total: 0, failed: 0, servedBy: [], sentAt: [], failures: [], durationMs: 0, retriedOnClosedKeepAlive: 0 };
    let done = false;
    void until.then(() => (done = true));
    const started = Date.now();
    const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
    const one = (retried = false): Promise<void> =>
        new Promise<void>((resolve) => {
            const sent = Date.now();
            let responded = false;
            // A retry goes out on a new connection: the pool's other idle sockets may be closing too.
            const req = http.request({ host: "127.0.0.1", port, path, agent: retried ? false : agent }, (res) => {
                responded = true;
                let body = "";
                res.setEncoding("utf8");
                res.on("data", (d) => (body += d));
                res.on("end", () => {
                    result.total++;
                    if (res.statusCode === 200) {
                        result.sentAt.push(sent);
                        try {
                            result.servedBy.push(JSON.parse(body).upstream);
                        } catch {
                            result.servedBy.push("?");
                        }
                    } else {
                        result.failed++;
                        if (result.failures.length < 20) result.failures.push(`status ${res.statusCode}`);
                    }
                    resolve();
                });
            });
            req.setTimeout(10000, () => req.destroy(new Error("timeout")));
            req.on("error", (e: NodeJS.ErrnoException) => {
                if (!retried && !responded && (e.code === "ECONNRESET" || e.message === "socket hang up")) {
                    result.retriedOnClosedKeepAlive++;
                    resolve(one(true));
                    return;
                }
                result.total++;
                result.failed++;
                if (result.failures.length < 20) result.failures.push(e.message);
                resolve();
            });
            req.end();
        });
    await Promise.all(
        Array.from({ length: clients }, async () => {
            while (!done && Date.now() - started < maxMs) await one();
        }),
    );
    agent.destroy();
    result.durationMs = Date.now() - started;
    return result;
}

/** Polls `GET /__health` on an upstream like Docker's healthcheck gate: healthy within `timeoutMs` or false. */
export async function waitHealthy(port: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        try {
            if ((await get(port, "/__health")).status === 200) return true;
        } catch {
            /* not listening yet */
        }
        await sleep(100);
    }
    return false;
}

export function route(
    app: string,
    frontend: Upstream | { host: string; port: number },
    backend: Upstream | { host: string; port: number },
    apiPrefix: "keep" | "strip" = "strip",
    contentSecurityPolicy?: string,
): Route {
    const addr = (u: Upstream | { host: string; port: number }) => ("host" in u ? { host: u.host, port: u.port } : { host: "127.0.0.1", port: u.port });
    return { app, frontend: addr(frontend), backend: addr(backend), apiPrefix, contentSecurityPolicy };
}

/**
 * The rollout scenario: load on /api/<app>/ while the backend goes from `blue` to a new upstream.
 * blue-green: start green, gate on health, switch the edge through the apply script, then stop blue.
 * stop-start: stop blue, then start green and switch (as `docker compose down && up` would).
 */
export async function rolloutScenario(strategy: "blue-green" | "stop-start", clients: number, loadMs: number): Promise<LoadResult & { afterSwitch: string[] }> {
    const frontend = await startUpstream("frontend", { spa: true });
    const blue = await startUpstream("blue");
    const edge = await startEdge([route("app1", frontend, blue)]);
    let switchedAt = Infinity;
    let resolveStop!: () => void;
    const stop = new Promise<void>((r) => (resolveStop = r));
    const load = runLoad(edge.httpPort, "/api/app1/orders", clients, stop, loadMs * 3);
    let green: Upstream | undefined;
    try {
        await sleep(loadMs / 3);
        if (strategy === "blue-green") {
            green = await startUpstream("green");
            if (!(await waitHealthy(green.port, 5000))) throw new Error("green never turned healthy");
            const applied = edge.apply([route("app1", frontend, green)]);
            if (applied.status !== 0) throw new Error(`apply failed: ${applied.stderr}`);
            // What the apply script's settle wait gives in production: new workers own new connections.
            await sleep(500);
            switchedAt = Date.now();
            await blue.close();
        } else {
            await blue.close();
            // Time for the new container to start (kept short; real containers take seconds).
            await sleep(300);
            green = await startUpstream("green");
            await waitHealthy(green.port, 5000);
            const applied = edge.apply([route("app1", frontend, green)]);
            if (applied.status !== 0) throw new Error(`apply failed: ${applied.stderr}`);
            switchedAt = Date.now();
        }
        await sleep(loadMs / 3);
    } finally {
        resolveStop();
    }
    const result = await load;
    const afterSwitch = result.servedBy.filter((_, i) => result.sentAt[i] > switchedAt);
    await Promise.all([frontend.close(), green?.close(), edge.stop()]);
    return { ...result, afterSwitch };
}
