// A load generator in its own process, for the end-to-end suite and bench/deploy.ts: CLIENTS keep-alive
// clients (one socket each, as Node's and many HTTP clients behave) that NEVER retry, GETting the
// frontend as fast as it answers (or GET_PAUSE_MS apart), and POST_CLIENTS more POSTing to the API every POST_INTERVAL_MS (the
// edge limits the API to 20 requests/s per client address, and all of these come from one). Every request that does not answer 2xx counts as failed, with
// its reason. Runs until SIGTERM, then prints one JSON line: requests, failed, reasons, latency
// percentiles, and when a GET of the frontend first answered with MARKER in its body. With GET_PAUSE_MS,
// each GET client waits that long after each answer: its socket sits idle between requests, the state
// in which a reload's closing workers reset it, and the load leaves the CPU to the deployment it
// measures (on the local stack both share one machine).
// APP (default demo) names the app whose /APP/ and /api/APP/e2e are loaded.
//   node tests/e2e/load.js BASE_URL [CLIENTS] [MARKER] [GET_PAUSE_MS] [APP]
"use strict";
const http = require("http");

const base = new URL(process.argv[2] || "http://127.0.0.1:8080/");
const clients = Number(process.argv[3] || 8);
const marker = process.argv[4] || "";
const getPauseMs = Number(process.argv[5] || 0);
const app = process.argv[6] || "demo";
if (!/^[a-z][a-z0-9-]*$/.test(app)) throw new Error(`load.js: ${JSON.stringify(app)} is not an app name`);
let requests = 0;
let failed = 0;
const reasons = {};
const latencies = [];
let markerAt = null;
let stopping = false;
const body = JSON.stringify({ e2e: true, text: "x".repeat(200) });

function once(agent, method, path) {
    return new Promise((resolve) => {
        const started = process.hrtime.bigint();
        const req = http.request(
            { host: base.hostname, port: base.port || 80, path, method, agent, headers: method === "POST" ? { "content-type": "application/json", "content-length": Buffer.byteLength(body) } : {} },
            (res) => {
                const chunks = [];
                res.on("data", (c) => chunks.push(c));
                res.on("end", () => {
                    const ms = Number(process.hrtime.bigint() - started) / 1e6;
                    resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString("utf8"), ms });
                });
                res.on("error", (e) => resolve({ error: e.code || e.message }));
            },
        );
        req.on("error", (e) => resolve({ error: e.code || e.message }));
        req.setTimeout(30000, () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
        if (method === "POST") req.write(body);
        req.end();
    });
}

const POST_CLIENTS = 2;
const POST_INTERVAL_MS = 125;

async function client(get) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    while (!stopping) {
        const r = await once(agent, get ? "GET" : "POST", get ? `/${app}/` : `/api/${app}/e2e`);
        const pause = get ? getPauseMs : POST_INTERVAL_MS;
        if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
        requests++;
        if (r.error || r.status < 200 || r.status > 299) {
            failed++;
            const why = `${get ? "GET" : "POST"} ${r.error || r.status}`;
            reasons[why] = (reasons[why] || 0) + 1;
        } else {
            latencies.push(r.ms);
            if (get && marker && markerAt === null && r.text.includes(marker)) markerAt = Date.now();
        }
    }
    agent.destroy();
}

const running = [...Array.from({ length: clients }, () => client(true)), ...Array.from({ length: POST_CLIENTS }, () => client(false))];
process.on("SIGTERM", async () => {
    stopping = true;
    await Promise.all(running);
    latencies.sort((a, b) => a - b);
    const pct = (p) => (latencies.length ? Math.round(latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] * 10) / 10 : null);
    process.stdout.write(JSON.stringify({ requests, failed, reasons, p50: pct(50), p99: pct(99), max: pct(100), markerAt }) + "\n");
    process.exit(0);
});
process.stdout.write("ready\n");
