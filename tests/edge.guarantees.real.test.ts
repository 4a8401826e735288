// What the edge promises the apps (issue #10), each shown under a real nginx with stand-in containers:
// one app cannot steer the edge into another, only the configured domain is served, the apps never
// see client-made forwarding headers, only websockets upgrade, dotfiles stay private, an interrupted
// apply is completed by the next one, and nginx runs on a read-only root.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import * as tls from "tls";
import { CLEARED_REQUEST_HEADERS, GENERATION_PATH, renderNginxConfig } from "../render/nginx";
import { Edge, Upstream, freePort, get, rawRequest, requireBinary, route, startEdge, startUpstream } from "./support/edge";

/** The JSON a stand-in upstream answered, from a raw HTTP/1.1 response. */
function upstreamJson(response: string): { upstream: string; path: string; headers: Record<string, string> } {
    assert.match(response, /^HTTP\/1\.1 200 /, response.slice(0, 300));
    const head = response.slice(0, response.indexOf("\r\n\r\n"));
    let body = response.slice(head.length + 4);
    if (/\r\ntransfer-encoding: chunked/i.test(head)) {
        let plain = "";
        for (let size = parseInt(body, 16); size > 0; size = parseInt(body, 16)) {
            const start = body.indexOf("\r\n") + 2;
            plain += body.slice(start, start + size);
            body = body.slice(start + size + 2);
        }
        body = plain;
    }
    return JSON.parse(body);
}

function statusOf(response: string): number {
    return Number(/^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1] ?? 0);
}

describe("edge under a real nginx: only the configured domain is served", function () {
    let httpEdge: Edge, httpsEdge: Edge;
    let fe: Upstream, be: Upstream;
    before(async function () {
        requireBinary(this, "nginx");
        requireBinary(this, "openssl");
        [fe, be] = await Promise.all([startUpstream("fe", { spa: true }), startUpstream("be")]);
        httpEdge = await startEdge([route("app1", fe, be)], "http");
        httpsEdge = await startEdge([route("app1", fe, be)], "https");
    });
    after(async () => {
        await Promise.all([httpEdge?.stop(), httpsEdge?.stop()]);
        await Promise.all([fe, be].filter(Boolean).map((u) => u.close()));
    });

    const hostile = ["evil.example", "localhost.evil.example", "evil.example:8080", "127.0.0.2", "[::1]", "localhost@evil.example", "xn--lcalhost-1za"];

    it("local stack: localhost and 127.0.0.1 are served, in any case, with or without port or trailing dot", async () => {
        for (const host of ["localhost", "LocalHost", "localhost:8080", "localhost.", "127.0.0.1", "127.0.0.1:8080"]) {
            const r = await rawRequest(httpEdge.httpPort, `GET /api/app1/x HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
            assert.strictEqual(upstreamJson(r).upstream, "be", host);
        }
    });
    it("local stack: any other Host, or none, is closed without an answer and reaches no app", async () => {
        const hits = be.hits + fe.hits;
        for (const host of hostile) {
            for (const p of ["/api/app1/x", "/app1/", "/", "/health", GENERATION_PATH, "/.well-known/acme-challenge/x"]) {
                const r = await rawRequest(httpEdge.httpPort, `GET ${p} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
                assert.strictEqual(r, "", `${host}${p} answered ${JSON.stringify(r.slice(0, 120))}`);
            }
        }
        assert.strictEqual(await rawRequest(httpEdge.httpPort, "GET /api/app1/x HTTP/1.0\r\n\r\n"), "", "HTTP/1.0 without Host");
        // The absolute form's host wins over the Host header (RFC 9112 §3.2.2): still refused.
        assert.strictEqual(await rawRequest(httpEdge.httpPort, "GET http://evil.example/api/app1/x HTTP/1.1\r\nHost: localhost\r\n\r\n"), "");
        assert.strictEqual(be.hits + fe.hits, hits, "no refused request reached an app");
    });
    it("HTTPS: port 80 redirects the configured domain only, to the configured domain, whatever the client sent", async () => {
        const r = await rawRequest(httpsEdge.httpPort, "GET /app1/x?y=1 HTTP/1.1\r\nHost: LOCALHOST:80\r\nX-Forwarded-Host: evil.example\r\nForwarded: host=evil.example\r\nConnection: close\r\n\r\n");
        assert.strictEqual(statusOf(r), 301);
        assert.match(r, new RegExp(`\r\nLocation: https://localhost:${httpsEdge.httpsPort}/app1/x\\?y=1\r\n`));
        assert.ok(!/evil|LOCALHOST/.test(r), r);
        for (const host of hostile) {
            const refused = await rawRequest(httpsEdge.httpPort, `GET /app1/ HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
            assert.strictEqual(refused, "", `${host} on port 80`);
        }
    });
    it("HTTPS: a handshake for another name, or with no name (an IP), is rejected", async () => {
        const handshake = (servername?: string) =>
            new Promise<string>((resolve) => {
                const socket = tls.connect({ host: "127.0.0.1", port: httpsEdge.httpsPort, servername, rejectUnauthorized: false }, () => {
                    resolve("accepted");
                    socket.end();
                });
                socket.on("error", (e) => resolve(`rejected: ${e.message}`));
            });
        assert.strictEqual(await handshake("localhost"), "accepted");
        for (const name of ["evil.example", "localhost.evil.example", "127.0.0.1", undefined]) {
            assert.match(await handshake(name), /^rejected: .*unrecognized name/, String(name));
        }
    });
    it("HTTPS: the right name in the handshake but another Host is closed without an answer", async () => {
        const hits = be.hits;
        const ok = await rawRequest(httpsEdge.httpsPort, "GET /api/app1/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", { servername: "localhost" });
        assert.strictEqual(upstreamJson(ok).headers["x-forwarded-proto"], "https");
        for (const host of hostile) {
            const r = await rawRequest(httpsEdge.httpsPort, `GET /api/app1/x HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, { servername: "localhost" });
            assert.strictEqual(r, "", host);
        }
        assert.strictEqual(be.hits, hits + 1);
    });
    it("the internal endpoints answer loopback clients of the served names only", async () => {
        assert.match((await get(httpEdge.httpPort, GENERATION_PATH)).body, /^generation [0-9a-z]+\n$/);
        assert.match((await get(httpsEdge.httpPort, GENERATION_PATH, { host: "localhost" })).body, /^generation [0-9a-z]+\n$/);
        assert.match(fs.readFileSync(path.join(httpEdge.dir, "nginx.conf"), "utf8"), new RegExp(`location = ${GENERATION_PATH} \\{ allow 127\\.0\\.0\\.1; deny all;`));
    });
});

describe("edge under a real nginx: what the apps learn about a request comes from nginx", function () {
    let edge: Edge, httpsEdge: Edge;
    let fe: Upstream, be: Upstream;
    before(async function () {
        requireBinary(this, "nginx");
        requireBinary(this, "openssl");
        [fe, be] = await Promise.all([startUpstream("fe", { spa: true }), startUpstream("be")]);
        edge = await startEdge([route("app1", fe, be, "strip")], "http");
        httpsEdge = await startEdge([route("app1", fe, be, "keep")], "https");
    });
    after(async () => {
        await Promise.all([edge?.stop(), httpsEdge?.stop()]);
        await Promise.all([fe, be].filter(Boolean).map((u) => u.close()));
    });

    // Written out here, not taken from the renderer's list, so dropping one there fails this test.
    const spoofable = [
        "Forwarded", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Prefix",
        "X-Forwarded-Server", "X-Forwarded-Ssl", "X-Forwarded-Scheme", "X-Forwarded-Protocol", "X-Forwarded-Uri", "X-Forwarded-Path",
        "X-Forwarded-Method", "X-Forwarded", "Forwarded-For", "X-Real-IP", "X-Original-URL", "X-Original-URI", "X-Rewrite-URL",
        "X-Original-Host", "X-Host", "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "X-Client-IP", "True-Client-IP",
        "CF-Connecting-IP", "X-Cluster-Client-IP", "Client-IP", "X-Original-Forwarded-For", "Front-End-Https", "X-Url-Scheme",
        "X-Middleware-Subrequest", "Proxy", "X-Request-ID",
    ];
    const oddCasings = (name: string) => [name, name.toLowerCase(), name.toUpperCase(), [...name].map((c, i) => (i % 2 ? c.toLowerCase() : c.toUpperCase())).join("")];
    const spoofedRequest = (p: string, host: string) => {
        const lines = [`GET ${p} HTTP/1.1`, `Host: ${host}`];
        for (const name of new Set([...spoofable, ...CLEARED_REQUEST_HEADERS])) {
            for (const casing of oddCasings(name)) lines.push(`${casing}: spoofed-${name.length} evil.example`);
            lines.push(`${name.replace(/-/g, "_")}: spoofed-underscore`);
        }
        return `${lines.join("\r\n")}\r\nConnection: close\r\n\r\n`;
    };
    const assertNothingSpoofed = (headers: Record<string, string>) => {
        for (const [name, value] of Object.entries(headers)) assert.ok(!/spoofed|evil/.test(value), `${name}: ${value} reached the app`);
        for (const name of CLEARED_REQUEST_HEADERS) assert.strictEqual(headers[name.toLowerCase()], undefined, name);
    };

    it("every forwarding header, in any casing, duplicated or with underscores, is nginx's value or absent (HTTP)", async () => {
        const h = upstreamJson(await rawRequest(edge.httpPort, spoofedRequest("/api/app1/x", "localhost"))).headers;
        assertNothingSpoofed(h);
        assert.strictEqual(h.host, "localhost");
        assert.strictEqual(h["x-forwarded-for"], "127.0.0.1");
        assert.strictEqual(h["x-real-ip"], "127.0.0.1");
        assert.strictEqual(h["x-forwarded-proto"], "http");
        assert.strictEqual(h["x-forwarded-host"], "localhost");
        assert.strictEqual(h.forwarded, "for=127.0.0.1;host=localhost;proto=http");
        assert.match(h["x-request-id"], /^[0-9a-f]{32}$/);
    });
    it("the same over HTTPS, and the Host the app sees is the configured domain", async () => {
        const h = upstreamJson(await rawRequest(httpsEdge.httpsPort, spoofedRequest("/api/app1/x", "LOCALHOST:443"), { servername: "localhost" })).headers;
        assertNothingSpoofed(h);
        assert.deepStrictEqual([h.host, h["x-forwarded-proto"], h["x-forwarded-host"], h.forwarded], ["localhost", "https", "localhost", "for=127.0.0.1;host=localhost;proto=https"]);
    });
    it("the frontend routes get the same treatment", async () => {
        const frontendEcho = await startUpstream("fe-echo");
        const e = await startEdge([route("app1", frontendEcho, be)], "http");
        try {
            const h = upstreamJson(await rawRequest(e.httpPort, spoofedRequest("/app1/page.json", "localhost"))).headers;
            assertNothingSpoofed(h);
        } finally {
            await Promise.all([e.stop(), frontendEcho.close()]);
        }
    });
});

describe("edge under a real nginx: only websockets upgrade", function () {
    let edge: Edge;
    let fe: Upstream, be: Upstream;
    before(async function () {
        requireBinary(this, "nginx");
        [fe, be] = await Promise.all([startUpstream("fe", { spa: true }), startUpstream("be")]);
        edge = await startEdge([route("app1", fe, be)]);
    });
    after(async () => {
        await edge?.stop();
        await Promise.all([fe, be].filter(Boolean).map((u) => u.close()));
    });

    it("Upgrade: h2c (and anything but websocket) is not passed on: a plain request, no tunnel", async () => {
        // The stand-in answers 101 to any request that carries Upgrade, so a forwarded one would show.
        for (const proto of ["h2c", "HTTP/2.0", "TLS/1.2", "websocketx", "websocket, h2c", "foo"]) {
            const r = await rawRequest(edge.httpPort, `GET /api/app1/x HTTP/1.1\r\nHost: localhost\r\nConnection: close, Upgrade, HTTP2-Settings\r\nUpgrade: ${proto}\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`);
            const h = upstreamJson(r).headers;
            assert.strictEqual(h.upgrade, undefined, proto);
            assert.ok(!/upgrade/i.test(h.connection ?? ""), `${proto}: connection ${h.connection}`);
            assert.strictEqual(h["http2-settings"] === undefined || !/upgrade/i.test(h.connection ?? ""), true);
        }
    });
    it("a websocket upgrade in any case still switches protocols", async () => {
        for (const proto of ["websocket", "WebSocket"]) {
            const r = await rawRequest(edge.httpPort, `GET /api/app1/ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: ${proto}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
            assert.strictEqual(statusOf(r), 101, r);
            assert.match(r, /X-Upstream: be/);
        }
    });
    it("plain requests reach the app with Connection: close and no Upgrade (each on a connection of its own, which the app closes)", async () => {
        const h = JSON.parse((await get(edge.httpPort, "/api/app1/x")).body).headers;
        assert.strictEqual(h.connection, "close");
        assert.strictEqual(h.upgrade, undefined);
    });
});

describe("edge under a real nginx: an app's response never steers the edge", function () {
    let edge: Edge;
    let app1Fe: Upstream, app1Be: Upstream;
    let hostile: http.Server;
    let hostilePort: number;
    before(async function () {
        requireBinary(this, "nginx");
        [app1Fe, app1Be] = await Promise.all([startUpstream("app1-fe", { spa: true }), startUpstream("app1-be")]);
        hostilePort = await freePort();
        // app2 asks nginx for internal redirects into app1 (and for the other X-Accel-* controls).
        hostile = http.createServer((req, res) => {
            res.writeHead(200, {
                "content-type": "text/plain",
                "x-accel-redirect": req.url?.includes("named") ? "@app1_index" : "/api/app1/secret",
                "x-accel-buffering": "no",
                "x-accel-limit-rate": "1",
                "x-accel-expires": "1000",
                "x-accel-charset": "koi8-r",
            });
            res.end("app2's own body");
        });
        await new Promise<void>((r) => hostile.listen(hostilePort, "127.0.0.1", () => r()));
        edge = await startEdge([route("app1", app1Fe, app1Be), route("app2", { host: "127.0.0.1", port: hostilePort }, { host: "127.0.0.1", port: hostilePort })]);
    });
    after(async () => {
        await edge?.stop();
        await Promise.all([app1Fe, app1Be].filter(Boolean).map((u) => u.close()));
        await new Promise((r) => hostile?.close(r));
    });

    it("X-Accel-Redirect (path or named location) and the other X-Accel-* headers are ignored and not passed on", async () => {
        const before = [app1Fe.hits, app1Be.hits];
        for (const p of ["/api/app2/x", "/app2/", "/app2/file.txt", "/api/app2/named"]) {
            const r = await get(edge.httpPort, p);
            assert.deepStrictEqual([p, r.status, r.body], [p, 200, "app2's own body"]);
            assert.deepStrictEqual(Object.keys(r.headers).filter((h) => h.startsWith("x-accel")), [], p);
        }
        assert.deepStrictEqual([app1Fe.hits, app1Be.hits], before, "app1 never saw a request");
    });
});

describe("edge under a real nginx: dotfiles", function () {
    let edge: Edge, httpsEdge: Edge;
    let fe: Upstream, be: Upstream;
    before(async function () {
        requireBinary(this, "nginx");
        requireBinary(this, "openssl");
        [fe, be] = await Promise.all([startUpstream("fe", { spa: true }), startUpstream("be")]);
        edge = await startEdge([route("app1", fe, be, "keep")]);
        httpsEdge = await startEdge([route("app1", fe, be, "keep")], "https");
        for (const e of [edge, httpsEdge]) fs.writeFileSync(path.join(e.settings.acmeWebroot, ".well-known", "acme-challenge", "tok-EN_123"), "tok-EN_123.thumbprint");
    });
    after(async () => {
        await Promise.all([edge?.stop(), httpsEdge?.stop()]);
        await Promise.all([fe, be].filter(Boolean).map((u) => u.close()));
    });

    const dotfiles = [
        "/.env", "/.git/config", "/.git/HEAD", "/.htpasswd", "/app1/.env", "/app1/.git/config", "/app1/assets/.env.production",
        "/api/app1/.git/HEAD", "/api/app1/.env", "/api/app1/users/.ssh/id_rsa", "/app1/%2eenv", "/app1/%2Egit/config", "/api/app1/%2e%65nv",
        "/app1/%252eenv", "/api/app1/%252Egit/HEAD", "/app1/.%65nv", "/app1/x/..%2f.env", "/app1/.well-known/anything", "/.well-known/security.txt",
        "/app1/.env?x=1", "/api/app1/.git/HEAD;x", "/app1/x%2f.env", "/app1\\.env", "/.well-known/acme-challenge/../../.env",
    ];

    it("are refused for every app, encoded or not, and never reach an app", async () => {
        const hits = fe.hits + be.hits;
        for (const p of dotfiles) {
            const r = await get(edge.httpPort, p, { host: "localhost" });
            assert.ok(r.status === 400 || r.status === 404, `${p} answered ${r.status}`);
            assert.ok(!r.body.includes("upstream"), p);
        }
        assert.strictEqual(fe.hits + be.hits, hits);
    });
    it("over HTTPS too", async () => {
        const hits = fe.hits + be.hits;
        for (const p of dotfiles) {
            const r = await rawRequest(httpsEdge.httpsPort, `GET ${p} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`, { servername: "localhost" });
            assert.ok([400, 404].includes(statusOf(r)), `${p} answered ${r.slice(0, 60)}`);
        }
        assert.strictEqual(fe.hits + be.hits, hits);
    });
    it("the ACME challenge still works on port 80, in both modes", async () => {
        for (const e of [edge, httpsEdge]) {
            const r = await get(e.httpPort, "/.well-known/acme-challenge/tok-EN_123", { host: "localhost" });
            assert.deepStrictEqual([r.status, r.body], [200, "tok-EN_123.thumbprint"]);
        }
        assert.strictEqual((await get(httpsEdge.httpPort, "/.well-known/acme-challenge/missing", { host: "localhost" })).status, 404);
    });
    it("ordinary paths with dots in names still work", async () => {
        assert.strictEqual((await get(edge.httpPort, "/app1/main.0123abcd.js")).status, 200);
        assert.strictEqual(JSON.parse((await get(edge.httpPort, "/api/app1/v1.2/users.json")).body).path, "/api/app1/v1.2/users.json");
    });
});

describe("edge under a real nginx: container names resolved at apply time", function () {
    let edge: Edge;
    let first: Upstream, restarted: Upstream, fe: Upstream, other: Upstream;
    before(async function () {
        requireBinary(this, "nginx");
        requireBinary(this, "curl");
        first = await startUpstream("first");
        // The same container after a restart: another address on its network, same port.
        restarted = await startUpstream("restarted", { host: "127.0.0.2", port: first.port });
        [fe, other] = await Promise.all([startUpstream("fe", { spa: true }), startUpstream("other")]);
        edge = await startEdge([route("other", fe, other)]);
    });
    after(async () => {
        await edge?.stop();
        await Promise.all([first, restarted, fe, other].filter(Boolean).map((u) => u.close()));
    });
    const app1 = () => route("app1", { host: "app1-frontend-abc1234", port: fe.port }, { host: "app1-backend-abc1234", port: first.port });

    it("a name that does not resolve fails only its own routes, and says so", async () => {
        const r = edge.apply([app1(), route("other", fe, other)]);
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(r.stderr, /app1-backend-abc1234 does not resolve; its routes answer 502/);
        assert.strictEqual((await get(edge.httpPort, "/api/app1/x")).status, 502);
        assert.strictEqual(JSON.parse((await get(edge.httpPort, "/api/other/x")).body).upstream, "other");
    });
    it("once it resolves, a refresh routes to its address, and to its new one after a restart", async () => {
        edge.resolveAs("app1-backend-abc1234", "127.0.0.1");
        edge.resolveAs("app1-frontend-abc1234", "127.0.0.1");
        let r = edge.applyRaw("", { args: ["--refresh"] });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.strictEqual(JSON.parse((await get(edge.httpPort, "/api/app1/x")).body).upstream, "first");
        assert.strictEqual(fs.readlinkSync(path.join(edge.dir, "routes", "app1.backend")), `../targets/127.0.0.1:${first.port}`);
        const workers = edge.workers();
        edge.resolveAs("app1-backend-abc1234", "127.0.0.2");
        r = edge.applyRaw("", { args: ["--refresh"] });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(r.stdout, /switched app1\.backend -> 127\.0\.0\.2:\d+ without a reload/);
        assert.strictEqual(JSON.parse((await get(edge.httpPort, "/api/app1/x")).body).upstream, "restarted");
        assert.deepStrictEqual(edge.workers(), workers, "a new address needs no reload");
        assert.deepStrictEqual(fs.readdirSync(path.join(edge.dir, "targets")).sort(), [`127.0.0.1:${fe.port}`, `127.0.0.1:${other.port}`, `127.0.0.2:${first.port}`].sort(), "the old target is pruned");
        r = edge.applyRaw("", { args: ["--refresh"] });
        assert.match(r.stdout, /config unchanged/);
    });
    it("a refresh keeps the routes of the config it finds; the rendered config resolves the same way", async () => {
        const again = edge.apply([app1(), route("other", fe, other)]);
        assert.match(again.stdout, /config unchanged/, "rendered (unresolved) and live (resolved) are the same config");
    });
});

describe("edge under a real nginx: applies are idempotent against what nginx has loaded", function () {
    let edge: Edge;
    let fe: Upstream, blue: Upstream, green: Upstream;
    beforeEach(async function () {
        requireBinary(this, "nginx");
        requireBinary(this, "curl");
        requireBinary(this, "setsid");
        [fe, blue, green] = await Promise.all([startUpstream("fe", { spa: true }), startUpstream("blue"), startUpstream("green")]);
        edge = await startEdge([route("app1", fe, blue)]);
        const first = edge.apply([route("app1", fe, blue)]);
        assert.strictEqual(first.status, 0, first.stderr);
    });
    afterEach(async () => {
        await edge?.stop();
        await Promise.all([fe, blue, green].filter(Boolean).map((u) => u.close()));
    });
    const servedBy = async () => JSON.parse((await get(edge.httpPort, "/api/app1/x")).body).upstream;

    it("an apply killed between the swap and the reload (a dropped SSH session) is completed by the next apply of the same config", async () => {
        // A stand-in nginx command that, asked to reload, kills the whole session first: the new
        // config (a second app) is in place on disk and nginx never heard of it.
        const dropper = path.join(edge.dir, "nginx-then-drop-session");
        fs.writeFileSync(dropper, `case "$*" in *"-s reload"*) kill -s KILL 0 ;; esac\nexec nginx -p ${edge.dir} "$@"\n`);
        const routes = [route("app1", fe, green), route("app2", fe, blue)];
        const killed = edge.apply(routes, { ownSession: true, env: { NGINX_CMD: `sh ${dropper}` } });
        assert.strictEqual(killed.signal, "SIGKILL", `${killed.status} ${killed.stderr}`);
        assert.match(fs.readFileSync(path.join(edge.dir, "nginx.conf"), "utf8"), /location \^~ \/api\/app2\//, "swapped on disk");
        assert.strictEqual((await get(edge.httpPort, "/api/app2/x")).status, 404, "but not loaded");
        // The switches come before the reload (a new config must find its links), so app1's is done.
        assert.strictEqual(await servedBy(), "green");

        const next = edge.apply(routes);
        assert.strictEqual(next.status, 0, next.stderr);
        assert.match(next.stdout, /not the one nginx serves .*; reloading it/);
        assert.match(next.stdout, /applied and reloaded/);
        for (let i = 0; i < 10; i++) assert.strictEqual(await servedBy(), "green");
        assert.strictEqual(JSON.parse((await get(edge.httpPort, "/api/app2/x")).body).upstream, "blue");
        assert.match(edge.apply(routes).stdout, /config unchanged/, "and a third run has nothing to do");
    });
    it("a reload that nginx refuses at run time (a port in use) is detected; the previous config is put back and keeps serving", async () => {
        const busy = http.createServer();
        const busyPort = await freePort();
        await new Promise<void>((r) => busy.listen(busyPort, "127.0.0.1", () => r()));
        try {
            const live = fs.readFileSync(path.join(edge.dir, "nginx.conf"), "utf8");
            // nginx -t does not bind, so only the running master finds out, and `nginx -s reload` still exits 0.
            const config = renderNginxConfig([route("app1", fe, green), route("app2", fe, green)], edge.settings).replace(/\n}\n$/, `\n    server { listen 127.0.0.1:${busyPort}; return 404; }\n}\n`);
            const r = edge.applyRaw(config, { env: { LOAD_TIMEOUT_SECONDS: "2" } });
            assert.notStrictEqual(r.status, 0);
            assert.match(r.stderr, /nginx did not load generation [0-9a-f]+ within 2s .*the previous config is back in place; the routes point where they did/);
            assert.strictEqual(fs.readFileSync(path.join(edge.dir, "nginx.conf"), "utf8"), live);
            assert.strictEqual(await servedBy(), "blue", "the switch made with the refused config is undone");
            assert.deepStrictEqual(fs.readdirSync(path.join(edge.dir, "routes")).sort(), ["app1.backend", "app1.frontend"], "and the new app's links are gone");
            const good = edge.apply([route("app1", fe, green)]);
            assert.strictEqual(good.status, 0, good.stderr);
            assert.strictEqual(await servedBy(), "green");
        } finally {
            await new Promise((r) => busy.close(r));
        }
    });
    it("the stamp nginx serves is the hash of the config on disk; an unchanged config is not reloaded", async () => {
        const stamped = /return 200 "generation ([0-9a-f]{16})\\n"/.exec(fs.readFileSync(path.join(edge.dir, "nginx.conf"), "utf8"))?.[1];
        assert.ok(stamped);
        assert.strictEqual(await edge.loadedGeneration(), `generation ${stamped}`);
        const workers = edge.workers();
        assert.ok(workers.length > 0);
        assert.match(edge.apply([route("app1", fe, blue)]).stdout, /config unchanged/);
        assert.deepStrictEqual(edge.workers(), workers, "no reload: the same workers");
        const switched = edge.apply([route("app1", fe, green)]);
        assert.strictEqual(switched.status, 0, switched.stderr);
        assert.match(switched.stdout, /switched app1\.backend -> 127\.0\.0\.1:\d+ without a reload/);
        assert.strictEqual(await servedBy(), "green");
        assert.deepStrictEqual(edge.workers(), workers, "a release switch is no reload: the same workers");
        assert.strictEqual(edge.apply([route("app1", fe, green), route("app2", fe, blue)]).status, 0);
        assert.notDeepStrictEqual(edge.workers(), workers, "a new app does reload (the check can fail)");
    });
});

describe("edge under a real nginx: read-only root filesystem", function () {
    let edge: Edge;
    let server: http.Server;
    let port: number;
    let unshareWorks = false;
    before(async function () {
        requireBinary(this, "nginx");
        requireBinary(this, "unshare");
        requireBinary(this, "nsenter");
        requireBinary(this, "curl");
        // A private mount namespace needs root (CI runs as root); elsewhere this suite skips loudly.
        unshareWorks = spawnSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", "mount -t tmpfs tmpfs /mnt"]).status === 0;
        if (!unshareWorks) {
            if (process.env.CI === "true") throw new Error("cannot create a mount namespace (run as root)");
            console.warn("\n  !!! SKIPPING: no mount namespace (needs root). !!!\n");
            this.skip();
        }
        port = await freePort();
        // An app that reads request bodies and sends large responses: both go through nginx's temp files.
        server = http.createServer((req, res) => {
            let length = 0;
            req.on("data", (d) => (length += d.length));
            req.on("end", () => {
                if (req.url?.endsWith("/big")) return void res.writeHead(200, { "content-type": "application/octet-stream" }).end(Buffer.alloc(4 * 1024 * 1024, 120));
                res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ upstream: "app", received: length }));
            });
        });
        await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()));
        const app = { host: "127.0.0.1", port };
        edge = await startEdge([route("app1", app, app)], "http", {}, { readOnlyRoot: true });
    });
    after(async () => {
        await edge?.stop();
        // Skipped before the server existed: nothing to close (a promise waiting on it would never end).
        if (server) await new Promise((r) => server.close(r));
    });
    const insideEdge = (cmd: string) => spawnSync("nsenter", ["-t", String(edge.pid), "-m", "sh", "-c", cmd], { encoding: "utf8" });

    it("outside the tmpfs nothing is writable for nginx (the check can fail)", () => {
        const outside = insideEdge(`touch ${edge.dir}/x`);
        assert.notStrictEqual(outside.status, 0);
        assert.match(outside.stderr, /Read-only file system/);
        assert.strictEqual(insideEdge(`touch ${edge.settings.tempDir}/x && rm ${edge.settings.tempDir}/x`).status, 0);
    });
    it("serves buffered request bodies and large responses through temp files on the tmpfs only", async () => {
        const body = Buffer.alloc(2 * 1024 * 1024, 97);
        const posted = await new Promise<{ status: number; text: string }>((resolve, reject) => {
            const req = http.request({ host: "127.0.0.1", port: edge.httpPort, path: "/api/app1/upload", method: "POST", headers: { "content-length": body.length, host: "localhost" } }, (res) => {
                let text = "";
                res.on("data", (d) => (text += d));
                res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
            });
            req.on("error", reject);
            req.end(body);
        });
        assert.deepStrictEqual([posted.status, JSON.parse(posted.text).received], [200, body.length]);
        const big = await new Promise<number>((resolve, reject) => {
            // Read slowly at first so nginx must spill the response to its temp file.
            http.get({ host: "127.0.0.1", port: edge.httpPort, path: "/api/app1/big", headers: { host: "localhost" } }, (res) => {
                let n = 0;
                res.pause();
                setTimeout(() => res.resume(), 300);
                res.on("data", (d) => (n += d.length));
                res.on("end", () => resolve(n));
            }).on("error", reject);
        });
        assert.strictEqual(big, 4 * 1024 * 1024);
        const made = insideEdge(`ls ${edge.settings.tempDir}`).stdout.split(/\s+/).filter(Boolean).sort();
        assert.deepStrictEqual(made.filter((d) => d !== "nginx.pid"), ["body", "fastcgi", "proxy", "scgi", "uwsgi"]);
    });
    it("applies and reloads a new config, and nginx never complained about a write", async () => {
        const app = { host: "127.0.0.1", port };
        const r = edge.apply([route("app1", app, app), route("app2", app, app)]);
        assert.strictEqual(r.status, 0, r.stderr);
        assert.strictEqual((await get(edge.httpPort, "/api/app2/x")).status, 200);
        assert.doesNotMatch(edge.errors(), /Read-only file system|\[(crit|alert|emerg)\]/);
    });
});

describe("edge under a real nginx: response headers on every kind of route", function () {
    // The CSP and Cache-Control values are rendered per location (no map over the URI per response);
    // an add_header in a location drops every inherited one, so each kind of location is checked for
    // the whole set, in both modes.
    const APP2_CSP = "default-src 'self' https://cdn.example.com";
    let edge: Edge, httpsEdge: Edge;
    let fe1: Upstream, be1: Upstream, fe2: Upstream, be2: Upstream;
    before(async function () {
        requireBinary(this, "nginx");
        requireBinary(this, "openssl");
        [fe1, be1, fe2, be2] = await Promise.all([startUpstream("fe1", { spa: true }), startUpstream("be1"), startUpstream("fe2", { spa: true }), startUpstream("be2")]);
        const routes = [route("app1", fe1, be1, "keep"), route("app2", fe2, be2, "strip", APP2_CSP)];
        [edge, httpsEdge] = await Promise.all([startEdge(routes), startEdge(routes, "https")]);
    });
    after(async () => {
        await Promise.all([edge?.stop(), httpsEdge?.stop()]);
        await Promise.all([fe1, be1, fe2, be2].filter(Boolean).map((u) => u.close()));
    });

    const DEFAULT = "default";
    // path, status, CSP (DEFAULT: the edge's default policy; undefined: none), Cache-Control (undefined: none).
    const table: Array<[string, number, string | undefined, string | undefined]> = [
        ["/app1/", 200, DEFAULT, "no-cache"],
        ["/app1/orders/42", 200, DEFAULT, "no-cache"], // SPA fallback: the named location answers
        ["/app1/main.0123abcd.js", 200, DEFAULT, "public, max-age=31536000, immutable"],
        ["/app1/main.0123abcd.js?v=2", 200, DEFAULT, "public, max-age=31536000, immutable"],
        ["/app1/robots.txt", 200, DEFAULT, "no-cache"], // the app's max-age=999 is replaced
        ["/app1/missing.js", 404, DEFAULT, undefined], // Cache-Control only on 2xx/3xx, as before
        // A route whose query string ends like an asset name is a route (the map over $request_uri that
        // this replaced answered it with the immutable policy).
        ["/app1/orders/42?x=main.0123abcd.js", 200, DEFAULT, "no-cache"],
        ["/app2/", 200, APP2_CSP, "no-cache"],
        ["/app2/deep/route", 200, APP2_CSP, "no-cache"],
        ["/app2/main.0123abcd.js", 200, APP2_CSP, "public, max-age=31536000, immutable"],
        ["/app2/robots.txt", 200, APP2_CSP, "no-cache"],
        ["/api/app1/x", 200, undefined, undefined],
        ["/api/app1/x?cc=private,%20max-age=5", 200, undefined, "private, max-age=5"],
        ["/api/app2/x?cc=no-store", 200, undefined, "no-store"],
        ["/api/app1", 301, undefined, undefined],
        ["/api/app9/x", 404, undefined, undefined],
        ["/app1", 301, DEFAULT, undefined],
        ["/", 404, DEFAULT, undefined],
        ["/nope/x", 404, DEFAULT, undefined],
        ["/health", 200, DEFAULT, undefined],
        ["/app1/.env", 404, DEFAULT, undefined],
        ["/app1/%2e%2e/api/app2/x", 400, DEFAULT, undefined],
    ];

    for (const mode of ["http", "https"] as const) {
        it(`${mode}: security headers and a request id everywhere, each app's CSP on its pages, cache headers as rendered`, async () => {
            const e = mode === "http" ? edge : httpsEdge;
            for (const [p, status, csp, cacheControl] of table) {
                const request = `GET ${p} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`;
                const raw = mode === "http" ? await rawRequest(e.httpPort, request) : await rawRequest(e.httpsPort, request, { servername: "localhost" });
                const head = raw.slice(0, raw.indexOf("\r\n\r\n")).split("\r\n");
                const h = new Map<string, string[]>();
                for (const line of head.slice(1)) {
                    const i = line.indexOf(":");
                    const name = line.slice(0, i).toLowerCase();
                    h.set(name, [...(h.get(name) ?? []), line.slice(i + 1).trim()]);
                }
                const one = (name: string) => {
                    const v = h.get(name);
                    assert.ok(v === undefined || v.length === 1, `${p}: ${name} sent ${v?.length} times`);
                    return v?.[0];
                };
                assert.strictEqual(statusOf(raw), status, `${mode} ${p}: ${head[0]}`);
                assert.match(one("x-request-id") ?? "", /^[0-9a-f]{32}$/, p);
                assert.strictEqual(one("x-content-type-options"), "nosniff", p);
                assert.strictEqual(one("x-frame-options"), "DENY", p);
                assert.strictEqual(one("referrer-policy"), "strict-origin-when-cross-origin", p);
                const gotCsp = one("content-security-policy");
                if (csp === DEFAULT) assert.match(gotCsp ?? "", /^default-src 'self'; .*frame-ancestors 'none'/, `${p}: ${gotCsp}`);
                else assert.strictEqual(gotCsp, csp, p);
                assert.strictEqual(one("cache-control"), cacheControl, p);
                assert.strictEqual(one("strict-transport-security"), mode === "https" ? "max-age=63072000; includeSubDomains" : undefined, p);
            }
        });
    }
});
