// npm run bench:edge — the edge's throughput, measured with a real load generator (wrk) against an
// upstream in a process of its own (a static nginx standing in for an app container), three ways in
// one run: straight to the upstream; through the edge as renderNginxConfig renders it; through a
// reference nginx reverse proxy set up for speed (an upstream block with keepalive, no logging, no
// edge features). Each target is measured several times, interleaved (edge and reference in turn
// first), and the median is reported; so are the edge/reference ratio of each round (the two measured
// back to back, so a busy moment of the machine weighs on both) and the CPU time the proxies' worker
// processes spent per request (from /proc), which depends less on what else the machine runs.
// Prints figures; asserts nothing. The last line is the summary.
import { spawn, spawnSync, ChildProcess } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { freePort, get, route, sleep, startEdge } from "../tests/support/edge";

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 25);
const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

interface Nginx {
    readonly port: number;
    /** Pids of the worker processes. */
    workers(): number[];
    stop(): Promise<void>;
}

function workersOf(master: number): number[] {
    return spawnSync("ps", ["-o", "pid=", "--ppid", String(master)], { encoding: "utf8" }).stdout.split(/\s+/).filter(Boolean).map(Number);
}

const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** User + system CPU seconds the processes have used so far. */
function cpuSeconds(pids: number[]): number {
    let ticks = 0;
    for (const pid of pids) {
        try {
            // Fields after the command name (which may hold spaces): utime and stime are the 14th and 15th.
            const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
            const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
            ticks += Number(fields[11]) + Number(fields[12]);
        } catch {
            /* gone */
        }
    }
    return ticks / CLOCK_TICKS;
}

/** A plain nginx with `body` (the http{} contents, with PORT and DIR filled in), in a temp dir. */
async function startNginx(name: string, http: (port: number, dir: string) => string): Promise<Nginx> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `platform-bench-${name}-`));
    const port = await freePort();
    const conf = path.join(dir, "nginx.conf");
    fs.writeFileSync(
        conf,
        [
            "worker_processes auto;",
            `pid ${dir}/nginx.pid;`,
            `error_log ${dir}/error.log warn;`,
            "events { worker_connections 4096; }",
            "http {",
            "    access_log off;",
            `    client_body_temp_path ${dir}/body;`,
            `    proxy_temp_path ${dir}/proxy;`,
            `    fastcgi_temp_path ${dir}/fastcgi;`,
            `    uwsgi_temp_path ${dir}/uwsgi;`,
            `    scgi_temp_path ${dir}/scgi;`,
            "    keepalive_requests 1000000;",
            http(port, dir),
            "}",
            "",
        ].join("\n"),
    );
    const child: ChildProcess = spawn("nginx", ["-p", dir, "-c", conf, "-g", "daemon off;"], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    const deadline = Date.now() + 10000;
    for (;;) {
        try {
            await get(port, "/health");
            break;
        } catch {
            if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${name} nginx did not start: ${stderr}`);
            await sleep(50);
        }
    }
    return {
        port,
        workers: () => workersOf(child.pid!),
        stop: async () => {
            child.kill("SIGQUIT");
            await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once("exit", r)));
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}

/** What an app's API answers: a small JSON document, as a static nginx serves it (no app code in the way). */
function startApp(): Promise<Nginx> {
    return startNginx("app", (port) =>
        [
            "    server {",
            `        listen 127.0.0.1:${port} backlog=4096;`,
            "        location = /health { return 200 \"ok\\n\"; }",
            `        location / { default_type application/json; return 200 '{"id":42,"name":"order","status":"shipped","items":[1,2,3]}'; }`,
            "    }",
        ].join("\n"),
    );
}

/** The reference: what a reverse proxy tuned only for speed looks like. */
function startReference(appPort: number): Promise<Nginx> {
    return startNginx("reference", (port) =>
        [
            `    upstream app { server 127.0.0.1:${appPort}; keepalive 32; }`,
            "    server {",
            `        listen 127.0.0.1:${port} backlog=4096;`,
            "        location = /health { return 200 \"ok\\n\"; }",
            "        location / {",
            "            proxy_pass http://app;",
            "            proxy_http_version 1.1;",
            '            proxy_set_header Connection "";',
            "        }",
            "    }",
        ].join("\n"),
    );
}

interface WrkResult {
    requestsPerSecond: number;
    requests: number;
    errors: string;
}

function wrk(url: string): WrkResult {
    const r = spawnSync("wrk", ["-t", String(THREADS), "-c", String(CONNECTIONS), "-d", `${SECONDS}s`, "--timeout", "5s", url], { encoding: "utf8", timeout: (SECONDS + 30) * 1000 });
    if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}${r.stdout}`);
    const rps = /Requests\/sec:\s+([0-9.]+)/.exec(r.stdout);
    if (!rps) throw new Error(`no Requests/sec in wrk's output:\n${r.stdout}`);
    const total = /(\d+) requests in/.exec(r.stdout);
    const errors = [/Socket errors:.*/.exec(r.stdout)?.[0], /Non-2xx or 3xx responses: \d+/.exec(r.stdout)?.[0]].filter(Boolean).join("; ");
    return { requestsPerSecond: Number(rps[1]), requests: Number(total?.[1] ?? 0), errors };
}

function median(values: number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main() {
    if (spawnSync("sh", ["-c", "command -v wrk && command -v nginx"]).status !== 0) throw new Error("bench:edge needs wrk and nginx (apt-get install wrk nginx)");
    const app = await startApp();
    const reference = await startReference(app.port);
    // The edge exactly as rendered for production, routing /api/app1/ to the app by address.
    const edge = await startEdge([route("app1", { host: "127.0.0.1", port: app.port }, { host: "127.0.0.1", port: app.port }, "keep")]);
    try {
        const targets = {
            direct: `http://127.0.0.1:${app.port}/api/app1/orders/42`,
            edge: `http://127.0.0.1:${edge.httpPort}/api/app1/orders/42`,
            reference: `http://127.0.0.1:${reference.port}/api/app1/orders/42`,
        };
        for (const [name, url] of Object.entries(targets)) {
            const r = await get(Number(new URL(url).port), new URL(url).pathname);
            if (r.status !== 200 || !r.body.includes('"order"')) throw new Error(`${name} does not answer like the app: ${r.status} ${r.body.slice(0, 200)}`);
        }
        console.log(`wrk -t${THREADS} -c${CONNECTIONS} -d${SECONDS}s, ${ROUNDS} rounds, ${os.cpus().length} CPUs; median of the rounds`);
        type Target = keyof typeof targets;
        const results: Record<Target, number[]> = { direct: [], edge: [], reference: [] };
        // Worker CPU per request of the two proxies (the direct target has none in between).
        const workers: Partial<Record<Target, () => number[]>> = { edge: () => edge.workers(), reference: () => reference.workers() };
        const cpuPerRequest: Record<Target, number[]> = { direct: [], edge: [], reference: [] };
        const ratios: number[] = [];
        for (let round = 1; round <= ROUNDS; round++) {
            const line: string[] = [];
            // Interleaved, so a slow moment of the machine does not fall on one target only; edge and
            // reference take turns going first.
            const order: Target[] = round % 2 ? ["direct", "edge", "reference"] : ["direct", "reference", "edge"];
            for (const name of order) {
                const pids = workers[name]?.() ?? [];
                const cpuBefore = cpuSeconds(pids);
                const r = wrk(targets[name]);
                if (pids.length && r.requests) cpuPerRequest[name].push(((cpuSeconds(pids) - cpuBefore) / r.requests) * 1e6);
                results[name].push(r.requestsPerSecond);
                line.push(`${name} ${r.requestsPerSecond.toFixed(0)}${r.errors ? ` (${r.errors})` : ""}`);
            }
            ratios.push(results.edge[round - 1] / results.reference[round - 1]);
            console.log(`round ${round}: ${line.join(", ")} req/s; edge/reference ${ratios[round - 1].toFixed(2)}`);
        }
        const [d, e, r] = [median(results.direct), median(results.edge), median(results.reference)];
        console.log(`worker CPU per request (median): edge ${median(cpuPerRequest.edge).toFixed(1)} µs, reference ${median(cpuPerRequest.reference).toFixed(1)} µs; edge/reference of each round, median ${median(ratios).toFixed(2)}`);
        console.log(`edge: direct ${d.toFixed(0)} req/s, edge ${e.toFixed(0)} req/s, reference ${r.toFixed(0)} req/s, edge/reference ${(e / r).toFixed(2)}`);
    } finally {
        await Promise.all([edge.stop(), reference.stop(), app.stop()]);
    }
}

main().then(
    () => process.exit(0),
    (e) => {
        console.error(e);
        process.exit(1);
    },
);
