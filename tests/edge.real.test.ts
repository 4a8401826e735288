// The rendered edge config under a real nginx (Debian's), with Node servers standing in for containers.
import * as assert from "assert";
import * as fs from "fs";
import * as http from "http";
import * as https from "https";
import * as path from "path";
import * as tls from "tls";
import { Edge, Upstream, get, requireBinary, rolloutScenario, route, startEdge, startUpstream, waitHealthy } from "./support/edge";

describe("edge under a real nginx: routing", function () {
    let edge: Edge;
    let fe1: Upstream, be1: Upstream, fe2: Upstream, be2: Upstream;
    before(async function () {
        requireBinary(this, "nginx");
        [fe1, be1, fe2, be2] = await Promise.all([startUpstream("fe1", { spa: true }), startUpstream("be1"), startUpstream("fe2", { spa: true }), startUpstream("be2")]);
        edge = await startEdge([
            route("app1", fe1, be1, "keep"),
            route("app2", fe2, be2, "strip", "default-src 'self' https://cdn.example.com"),
            // A container that does not exist: its name does not resolve.
            route("app3", { host: "app3-frontend-gone", port: 80 }, { host: "app3-backend-gone", port: 3000 }),
        ]);
    });
    after(async () => {
        await edge?.stop();
        await Promise.all([fe1, be1, fe2, be2].filter(Boolean).map((u) => u.close()));
    });

    it("answers /health itself", async () => {
        const r = await get(edge.httpPort, "/health");
        assert.deepStrictEqual([r.status, r.body], [200, "ok\n"]);
    });
    it("keeps the API prefix for app1 and strips it for app2", async () => {
        const a = JSON.parse((await get(edge.httpPort, "/api/app1/users?x=1")).body);
        assert.deepStrictEqual([a.upstream, a.path], ["be1", "/api/app1/users?x=1"]);
        const b = JSON.parse((await get(edge.httpPort, "/api/app2/users?x=1")).body);
        assert.deepStrictEqual([b.upstream, b.path], ["be2", "/users?x=1"]);
    });
    it("passes X-Forwarded-* and a request id, keeping a well-formed one from the client", async () => {
        const h = JSON.parse((await get(edge.httpPort, "/api/app1/h", { "x-request-id": "req-12345678" })).body).headers;
        assert.strictEqual(h["x-request-id"], "req-12345678");
        assert.strictEqual(h["x-forwarded-proto"], "http");
        assert.strictEqual(h["x-forwarded-for"], "127.0.0.1");
        const generated = await get(edge.httpPort, "/api/app1/h", { "x-request-id": "bad id with spaces" });
        assert.match(String(generated.headers["x-request-id"]), /^[0-9a-f]{32}$/);
    });
    it("serves the SPA: index for routes, long cache for hashed assets, 404 for missing files", async () => {
        const page = await get(edge.httpPort, "/app1/orders/42");
        assert.deepStrictEqual([page.status, page.body], [200, "<html>fe1 index</html>"]);
        assert.strictEqual(page.headers["cache-control"], "no-cache");
        const asset = await get(edge.httpPort, "/app1/main.0123abcd.js");
        assert.strictEqual(asset.status, 200);
        assert.strictEqual(asset.headers["cache-control"], "public, max-age=31536000, immutable");
        assert.strictEqual((await get(edge.httpPort, "/app1/missing.js")).status, 404);
        assert.strictEqual((await get(edge.httpPort, "/app1")).headers.location, "/app1/");
    });
    it("sets security headers and hides the nginx version", async () => {
        const r = await get(edge.httpPort, "/app2/");
        assert.strictEqual(r.headers["x-content-type-options"], "nosniff");
        assert.strictEqual(r.headers["x-frame-options"], "DENY");
        assert.strictEqual(r.headers["referrer-policy"], "strict-origin-when-cross-origin");
        assert.strictEqual(r.headers["content-security-policy"], "default-src 'self' https://cdn.example.com", "app2 overrides the default CSP");
        const app1 = await get(edge.httpPort, "/app1/");
        assert.match(String(app1.headers["content-security-policy"]), /^default-src 'self'; .*frame-ancestors 'none'/, "app1 gets the edge default");
        assert.strictEqual(r.headers.server, "nginx");
        assert.strictEqual(r.headers["strict-transport-security"], undefined, "no HSTS on plain HTTP");
    });
    it("unknown paths get the edge's own 404", async () => {
        for (const p of ["/", "/app9/", "/api/", "/api/app9/x", "/app1x/"]) {
            const r = await get(edge.httpPort, p);
            assert.deepStrictEqual([p, r.status, r.body], [p, 404, "not found\n"]);
        }
    });
    it("hostile paths never reach another app", async () => {
        const before = { be1: be1.hits, be2: be2.hits, fe2: fe2.hits };
        for (const p of ["/app1/../api/app2/x", "/app1/%2e%2e/api/app2/x", "/app1/..%2fapi%2fapp2/x", "/app1/%2E%2E%2Fapi/app2/", "//api/app2/x", "/api/app1/..%2f..%2fapi/app2/x", "/app1/./../app2/", "/app1\\..\\app2/"]) {
            const r = await get(edge.httpPort, p);
            assert.ok(r.status === 400 || r.status === 404, `${p} answered ${r.status}`);
        }
        assert.deepStrictEqual({ be1: be1.hits, be2: be2.hits, fe2: fe2.hits }, before);
    });
    it("a missing container fails only its own routes", async () => {
        assert.strictEqual((await get(edge.httpPort, "/app3/")).status, 502);
        assert.strictEqual((await get(edge.httpPort, "/api/app1/ok")).status, 200);
    });
    it("compresses text responses", async () => {
        const big = await get(edge.httpPort, "/health", { "accept-encoding": "gzip" });
        assert.strictEqual(big.status, 200); // too small to compress; the directive is checked below
        assert.match(fs.readFileSync(path.join(edge.dir, "nginx.conf"), "utf8"), /gzip on;/);
    });
});

describe("edge under a real nginx: websockets and rate limits", function () {
    let edge: Edge;
    let fe: Upstream, be: Upstream;
    before(async function () {
        requireBinary(this, "nginx");
        [fe, be] = await Promise.all([startUpstream("fe", { spa: true }), startUpstream("be")]);
        edge = await startEdge([route("app1", fe, be)], "http", { apiRatePerSecond: 2, apiBurst: 3 });
    });
    after(async () => {
        await edge?.stop();
        await Promise.all([fe, be].filter(Boolean).map((u) => u.close()));
    });

    it("passes a websocket upgrade through to the backend", async () => {
        const headers = await new Promise<http.IncomingHttpHeaders>((resolve, reject) => {
            const req = http.request({ host: "127.0.0.1", port: edge.httpPort, path: "/api/app1/ws", agent: false, headers: { Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==" } });
            req.on("upgrade", (res, socket) => {
                socket.destroy();
                resolve(res.headers);
            });
            req.on("response", (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
            req.on("error", reject);
            req.end();
        });
        assert.strictEqual(headers["x-upstream"], "be");
        assert.strictEqual(headers["x-seen-path"], "/ws");
    });
    it("limits /api/ per client with 429, and leaves pages alone", async () => {
        const statuses = await Promise.all(Array.from({ length: 12 }, () => get(edge.httpPort, "/api/app1/x").then((r) => r.status)));
        assert.ok(statuses.filter((s) => s === 429).length >= 6, JSON.stringify(statuses));
        assert.ok(statuses.filter((s) => s === 200).length >= 3, JSON.stringify(statuses));
        const pages = await Promise.all(Array.from({ length: 12 }, () => get(edge.httpPort, "/app1/").then((r) => r.status)));
        assert.deepStrictEqual([...new Set(pages)], [200]);
    });
});

describe("edge under a real nginx: applying configs", function () {
    let edge: Edge;
    let fe: Upstream, blue: Upstream;
    beforeEach(async function () {
        requireBinary(this, "nginx");
        [fe, blue] = await Promise.all([startUpstream("fe", { spa: true }), startUpstream("blue")]);
        edge = await startEdge([route("app1", fe, blue)]);
    });
    afterEach(async () => {
        await edge?.stop();
        await Promise.all([fe, blue].filter(Boolean).map((u) => u.close()));
    });

    it("a config that fails nginx -t is refused with nginx's message, and the old one keeps serving", async () => {
        const live = fs.readFileSync(path.join(edge.dir, "nginx.conf"), "utf8");
        const r = edge.applyRaw(live.replace("server_tokens off;", "server_tokens sideways;"));
        assert.notStrictEqual(r.status, 0);
        assert.match(r.stderr, /nginx rejected the new config/);
        assert.match(r.stderr, /invalid value "sideways" in .*nginx\.conf\.candidate/);
        assert.strictEqual(fs.readFileSync(path.join(edge.dir, "nginx.conf"), "utf8"), live);
        assert.strictEqual(JSON.parse((await get(edge.httpPort, "/api/app1/x")).body).upstream, "blue");
    });
    it("an empty config is refused", () => {
        assert.notStrictEqual(edge.applyRaw("").status, 0);
    });
    it("an unhealthy new upstream never receives a request, and the old one keeps serving", async () => {
        const green = await startUpstream("green");
        green.healthy = false;
        const gate = await waitHealthy(green.port, 1000);
        assert.strictEqual(gate, false, "the health gate holds");
        // The switch only happens after a passing gate (Docker's wait), so the config is not applied.
        for (let i = 0; i < 20; i++) assert.strictEqual(JSON.parse((await get(edge.httpPort, "/api/app1/x")).body).upstream, "blue");
        assert.strictEqual(green.hits, 0);
        await green.close();
    });
});

describe("edge under a real nginx: HTTPS", function () {
    let edge: Edge;
    let fe: Upstream, be: Upstream;
    before(async function () {
        requireBinary(this, "nginx");
        requireBinary(this, "openssl");
        [fe, be] = await Promise.all([startUpstream("fe", { spa: true }), startUpstream("be")]);
        edge = await startEdge([route("app1", fe, be)], "https");
        fs.writeFileSync(path.join(edge.settings.acmeWebroot, ".well-known", "acme-challenge", "token123"), "token123.thumbprint");
    });
    after(async () => {
        await edge?.stop();
        await Promise.all([fe, be].filter(Boolean).map((u) => u.close()));
    });

    const tlsGet = (p: string) =>
        new Promise<{ status: number; headers: Record<string, unknown> }>((resolve, reject) => {
            https
                .get({ host: "127.0.0.1", servername: "localhost", headers: { host: "localhost" }, port: edge.httpsPort, path: p, rejectUnauthorized: false, agent: false }, (res) => {
                    res.resume();
                    res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
                })
                .on("error", reject);
        });
    const handshake = (version: tls.SecureVersion) =>
        new Promise<string>((resolve) => {
            const socket = tls.connect({ host: "127.0.0.1", servername: "localhost", port: edge.httpsPort, rejectUnauthorized: false, minVersion: version, maxVersion: version }, () => {
                resolve(socket.getProtocol() ?? "?");
                socket.end();
            });
            socket.on("error", () => resolve("refused"));
        });

    it("redirects HTTP to HTTPS, except the ACME challenge and /health", async () => {
        const host = { host: "localhost" };
        const r = await get(edge.httpPort, "/app1/x?y=1", host);
        assert.strictEqual(r.status, 301);
        assert.strictEqual(r.headers.location, `https://localhost:${edge.httpsPort}/app1/x?y=1`);
        const token = await get(edge.httpPort, "/.well-known/acme-challenge/token123", host);
        assert.deepStrictEqual([token.status, token.body], [200, "token123.thumbprint"]);
        assert.strictEqual((await get(edge.httpPort, "/health", host)).status, 200);
    });
    it("serves the routes over TLS with HSTS and the security headers", async () => {
        const r = await tlsGet("/api/app1/x");
        assert.strictEqual(r.status, 200);
        assert.match(String(r.headers["strict-transport-security"]), /max-age=63072000/);
        assert.strictEqual(r.headers["x-content-type-options"], "nosniff");
    });
    it("speaks TLS 1.2 and 1.3 only", async () => {
        assert.strictEqual(await handshake("TLSv1.3"), "TLSv1.3");
        assert.strictEqual(await handshake("TLSv1.2"), "TLSv1.2");
        assert.strictEqual(await handshake("TLSv1.1"), "refused");
    });
});

describe("edge under a real nginx: a release switch under load", function () {
    this.timeout(120000);
    before(function () {
        requireBinary(this, "nginx");
    });

    it("blue-green with 25 concurrent clients: zero failed requests, every request after the switch served by green", async () => {
        const result = await rolloutScenario("blue-green", 25, 3000);
        console.log(`      blue-green: ${result.failed} failed of ${result.total}; ${result.afterSwitch.length} after the switch; ${result.retriedOnClosedKeepAlive} re-sent on a closed keep-alive connection`);
        assert.ok(result.total > 1000, `only ${result.total} requests`);
        assert.deepStrictEqual(result.failures, [], `failures: ${JSON.stringify(result.failures)}`);
        assert.strictEqual(result.failed, 0);
        assert.ok(result.afterSwitch.length > 100);
        assert.deepStrictEqual([...new Set(result.afterSwitch)], ["green"]);
    });
});
