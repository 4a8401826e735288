// Real nginx on loopback with the rendered config, Node HTTP servers standing in for containers, and
// a bounded load generator. Shared by tests/edge.real.test.ts and bench/rollout.ts.
import { execFileSync, spawn, spawnSync, ChildProcess } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import * as tls from "tls";
import { EdgeSettings, GENERATION_PATH, Route, TLS_READY_ENTRY, TLS_READY_FILE_NAME, containerEdgeSettings, renderNginxConfig } from "../../render/nginx";

export const APPLY_SCRIPT = path.join(__dirname, "..", "..", "hostScripts", "apply-nginx-config.sh");

/** A missing binary fails under CI=true and skips loudly elsewhere. */
export function requireBinary(ctx: Mocha.Context, name: string): void {
    if (spawnSync("sh", ["-c", `command -v ${name}`]).status === 0) return;
    if (process.env.CI === "true") throw new Error(`${name} is not installed; .ci/run installs it (apt-get install ${name})`);
    console.warn(`\n  !!! SKIPPING: ${name} is not installed. Install it to run this suite (CI fails without it). !!!\n`);
    ctx.skip();
}

/**
 * A suite that needs root (a server started as another user, sshd on port 22, a mount namespace):
 * fails under CI=true, which runs as root, and skips with a notice saying so elsewhere.
 */
export function requireRoot(ctx: Mocha.Context, why: string): void {
    if (process.getuid?.() === 0) return;
    if (process.env.CI === "true") throw new Error(`this suite needs root (${why}); CI runs as root`);
    console.warn(`\n  !!! SKIPPING: needs root (${why}). Run npm test as root to include it (CI does). !!!\n`);
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

export async function startUpstream(name: string, options: { spa?: boolean; host?: string; port?: number } = {}): Promise<Upstream> {
    // Another loopback address (127.0.0.2) stands in for a container that came back with a new IP.
    const host = options.host ?? "127.0.0.1";
    const port = options.port ?? (await freePort());
    const server = http.createServer((req, res) => {
        if (req.url === "/__health") {
            res.writeHead(upstream.healthy ? 200 : 503).end();
            return;
        }
        upstream.hits++;
        const url = req.url ?? "/";
        if (options.spa) {
            // A static file server: the query string names no file.
            const file = url.split("?")[0];
            if (file === "/" || file === "/index.html") return void res.writeHead(200, { "content-type": "text/html" }).end(`<html>${name} index</html>`);
            if (/^\/main\.[0-9a-f]{8}\.js$/.test(file)) return void res.writeHead(200, { "content-type": "text/javascript", "cache-control": "no-store" }).end("x");
            // A file without a content hash, with the app's own caching (the edge replaces it).
            if (file === "/robots.txt") return void res.writeHead(200, { "content-type": "text/plain", "cache-control": "max-age=999" }).end("User-agent: *");
            return void res.writeHead(404).end("missing");
        }
        // `?cc=VALUE` makes the stand-in set its own Cache-Control (an API's caching is its own business).
        const cacheControl = new URL(url, "http://x").searchParams.get("cc");
        res.writeHead(200, { "content-type": "application/json", ...(cacheControl !== null ? { "cache-control": cacheControl } : {}) }).end(JSON.stringify({ upstream: name, path: url, headers: req.headers }));
    });
    // A websocket handshake answered just far enough to prove the upgrade crossed the edge.
    server.on("upgrade", (req, socket) => {
        socket.end(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Upstream: ${name}\r\nX-Seen-Path: ${req.url}\r\n\r\n`);
    });
    server.keepAliveTimeout = 5000;
    await new Promise<void>((r) => server.listen(port, host, () => r()));
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

export interface ApplyResult {
    status: number | null;
    signal: NodeJS.Signals | null;
    stderr: string;
    stdout: string;
}

export interface ApplyOptions {
    /** `["--refresh"]` re-resolves the live config. */
    readonly args?: string[];
    /** Extra environment for the script (e.g. a NGINX_CMD that drops the session). */
    readonly env?: Record<string, string>;
    /** Run the script in a session of its own, so a stand-in can kill it and everything it started. */
    readonly ownSession?: boolean;
}

export interface Edge {
    readonly dir: string;
    readonly settings: EdgeSettings;
    readonly httpPort: number;
    readonly httpsPort: number;
    /** nginx master's pid. */
    readonly pid: number;
    /** Renders and applies through the production apply script; resolves with its exit status and output. */
    apply(routes: Route[], options?: ApplyOptions): ApplyResult;
    applyRaw(config: string, options?: ApplyOptions): ApplyResult;
    /** What the stand-in for `getent hosts` answers for `name` from now on (undefined: nothing). */
    resolveAs(name: string, address: string | undefined): void;
    /** What nginx has loaded, as the apply script reads it. */
    loadedGeneration(): Promise<string>;
    /** nginx's stderr and error log so far. */
    errors(): string;
    /** Pids of the current worker processes (a reload replaces them). */
    workers(): number[];
    stop(): Promise<void>;
}

export interface EdgeOptions {
    /**
     * Run nginx as the edge container does: the whole filesystem read-only except a tmpfs holding the
     * pid file and temp paths (a private mount namespace; needs root, as in CI).
     */
    readonly readOnlyRoot?: boolean;
    /** https: no real certificate installed yet (no tls-ready file), as on a first `up` before DNS points. */
    readonly uncertified?: boolean;
}

export async function startEdge(routes: Route[], mode: "http" | "https" = "http", overrides: Partial<EdgeSettings> = {}, options: EdgeOptions = {}): Promise<Edge> {
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
        // Nothing answers DNS here; container names go through the apply script's RESOLVE_CMD.
        resolver: "127.0.0.1:1",
        routeDir: path.join(dir, "routes"),
        pidFile: path.join(dir, "temp", "nginx.pid"),
        errorLog: options.readOnlyRoot ? "stderr" : path.join(dir, "error.log"),
        accessLog: options.readOnlyRoot ? "/dev/stdout" : path.join(dir, "access.log"),
        tempDir: path.join(dir, "temp"),
        apiRatePerSecond: 100000,
        apiBurst: 100000,
        tlsReadyFile: mode === "https" ? path.join(dir, TLS_READY_FILE_NAME) : undefined,
        ...overrides,
    };
    // An https edge is a certified one (redirect and HSTS) unless the test says otherwise.
    if (settings.tlsReadyFile !== undefined && overrides.tlsReadyFile === undefined && !options.uncertified) fs.writeFileSync(settings.tlsReadyFile, `${TLS_READY_ENTRY}\n`);
    if (mode === "https") {
        execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", settings.certificateKey, "-out", settings.certificate], { stdio: "ignore" });
    }
    // Stand-in for `getent hosts NAME` (Docker's DNS as the edge sees it): "ADDRESS NAME" lines in hosts.txt.
    const hostsFile = path.join(dir, "hosts.txt");
    fs.writeFileSync(hostsFile, "");
    fs.writeFileSync(path.join(dir, "resolve.sh"), `awk -v n="$1" '$2 == n { print; found = 1 } END { exit !found }' ${hostsFile}\n`);
    const conf = path.join(dir, "nginx.conf");
    fs.writeFileSync(conf, renderNginxConfig(routes, settings));
    const nginxArgs = ["-p", dir, "-c", conf, "-g", "daemon off;"];
    const child: ChildProcess = options.readOnlyRoot
        ? spawn(
              "unshare",
              [
                  "--mount",
                  "--propagation",
                  "private",
                  "sh",
                  "-c",
                  // The tmpfs stands in for the container's; Debian's compiled-in temp dir is hidden
                  // behind an empty read-only mount, as nginx:alpine's /var/cache/nginx is read-only.
                  `mount -t tmpfs -o size=64m,mode=1777 tmpfs "$1" && { [ ! -d /var/lib/nginx ] || mount -t tmpfs -o ro tmpfs /var/lib/nginx; } && mount -o remount,bind,ro / && shift && exec nginx "$@"`,
                  "sh",
                  settings.tempDir,
                  ...nginxArgs,
              ],
              { stdio: ["ignore", "ignore", "pipe"] },
          )
        : spawn("nginx", nginxArgs, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    const deadline = Date.now() + 10000;
    while (!(await canGet(httpPort, settings.domain))) {
        if (child.exitCode !== null || Date.now() > deadline) {
            child.kill("SIGKILL");
            throw new Error(`nginx did not start: ${stderr}${readIfExists(settings.errorLog)}`);
        }
        await sleep(50);
    }
    // With a private mount namespace, the pid file lives on its tmpfs: signal nginx from inside it.
    const nginxCmd = options.readOnlyRoot ? `nsenter -t ${child.pid} -m nginx -p ${dir}` : `nginx -p ${dir}`;
    const probeCmd = `curl -s --max-time 3 -H Host:${settings.domain} http://127.0.0.1:${httpPort}`;
    const applyRaw = (config: string, applyOptions: ApplyOptions = {}): ApplyResult => {
        const command = applyOptions.ownSession ? "setsid" : "sh";
        const args = [...(applyOptions.ownSession ? ["sh"] : []), APPLY_SCRIPT, ...(applyOptions.args ?? [])];
        const result = spawnSync(command, args, {
            input: config,
            env: {
                ...process.env,
                CONF_DIR: dir,
                NGINX_CMD: nginxCmd,
                RESOLVE_CMD: `sh ${dir}/resolve.sh`,
                PROBE_CMD: probeCmd,
                // As in production (2 s there): after a reload, new workers must own new connections
                // before a test looks (old ones may accept a few more until they handle the quit signal).
                DRAIN_SECONDS: "0.5",
                ...applyOptions.env,
            },
            encoding: "utf8",
            timeout: 60000,
        });
        return { status: result.status, signal: result.signal, stderr: result.stderr, stdout: result.stdout };
    };
    const hosts = new Map<string, string>();
    const edge: Edge = {
        dir,
        settings,
        httpPort,
        httpsPort,
        pid: child.pid!,
        applyRaw,
        apply: (newRoutes, applyOptions) => applyRaw(renderNginxConfig(newRoutes, settings), applyOptions),
        resolveAs: (name, address) => {
            if (address === undefined) hosts.delete(name);
            else hosts.set(name, address);
            fs.writeFileSync(hostsFile, [...hosts].map(([n, a]) => `${a} ${n}\n`).join(""));
        },
        loadedGeneration: async () => (await get(httpPort, GENERATION_PATH, { host: settings.domain })).body.trim(),
        errors: () => stderr + readIfExists(settings.errorLog),
        workers: () =>
            spawnSync("ps", ["-o", "pid=", "--ppid", String(child.pid)], { encoding: "utf8" })
                .stdout.split(/\s+/)
                .filter(Boolean)
                .map(Number)
                .sort(),
        stop: async () => {
            child.kill("SIGQUIT");
            const exited = new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(undefined) : child.once("exit", r)));
            // Bounded: a worker stuck on a long-lived connection must not hang the suite.
            if ((await Promise.race([exited.then(() => true), sleep(10000).then(() => false)])) === false) child.kill("SIGKILL");
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
    // nginx started on the rendered config; the apply script points the route switches (as the first
    // deployment does after the bootstrap config) and stamps the generation.
    const first = edge.apply(routes);
    if (first.status !== 0) {
        await edge.stop();
        throw new Error(`the first apply failed: ${first.stderr}`);
    }
    return edge;
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

async function canGet(port: number, host: string): Promise<boolean> {
    try {
        await get(port, "/health", { host });
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

/**
 * Sends `request` byte for byte (exact header case, duplicates, no Host) and returns everything the
 * server sent until it closed the connection ("" when nginx closes without answering, as with 444).
 */
export function rawRequest(port: number, request: string, tlsOptions?: tls.ConnectionOptions): Promise<string> {
    return new Promise((resolve, reject) => {
        let data = "";
        const socket: net.Socket = tlsOptions
            ? tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, ...tlsOptions }, () => socket.write(request))
            : net.connect({ host: "127.0.0.1", port }, () => socket.write(request));
        socket.setEncoding("utf8");
        socket.setTimeout(5000, () => socket.destroy(new Error(`no close within 5 s; got ${JSON.stringify(data.slice(0, 200))}`)));
        socket.on("data", (d) => (data += d));
        socket.on("end", () => resolve(data));
        socket.on("close", () => resolve(data));
        socket.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" ? resolve(data) : reject(e)));
    });
}
