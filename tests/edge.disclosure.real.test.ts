// Upstreams must not reveal what they run through the edge (issue 20, point 14): a hostile app
// answers every request with X-Powered-By and friends, and with version-bearing 5xx pages; the real
// nginx running the rendered config must drop those headers on every kind of location and answer 5xx
// with the platform's own page (the status kept), while 2xx, 4xx and the SPA fallback are unchanged.
import * as assert from "assert";
import * as http from "http";
import { Edge, freePort, get, requireBinary, route, startEdge } from "./support/edge";

const LEAKY_HEADERS = ["x-powered-by", "x-aspnet-version", "x-aspnetmvc-version", "x-runtime", "x-generator"];
const VERSION_PAGE = "<h1>Internal Server Error</h1><hr>Apache Tomcat/9.0.1 · Express 4.17.1 · PHP/7.2.3";

describe("edge under a real nginx: upstreams do not reveal what they run", function () {
    let edge: Edge;
    let leaky: http.Server;
    before(async function () {
        requireBinary(this, "nginx");
        const port = await freePort();
        leaky = http.createServer((req, res) => {
            const m = /status=(\d{3})/.exec(req.url ?? "");
            const status = m ? Number(m[1]) : req.url?.includes("missing") ? 404 : 200;
            res.writeHead(status, {
                "content-type": "text/html",
                "x-powered-by": "Express 4.17.1",
                "x-aspnet-version": "4.0.30319",
                "x-aspnetmvc-version": "5.2",
                "x-runtime": "0.012",
                "x-generator": "Drupal 7",
                server: "Apache/2.4.1 (Unix)",
            });
            res.end(status >= 500 ? VERSION_PAGE : `body of ${req.url}`);
        });
        await new Promise<void>((r) => leaky.listen(port, "127.0.0.1", () => r()));
        const up = { host: "127.0.0.1", port };
        edge = await startEdge([route("leaky", up, up, "strip")], "http");
    });
    after(async () => {
        await edge?.stop();
        await new Promise((r) => leaky?.close(r));
    });

    const paths = ["/leaky/", "/leaky/route", "/leaky/main.0123456789abcdef.js", "/leaky/file.txt", "/api/leaky/x"];

    for (const p of paths) {
        it(`${p}: no X-Powered-By, X-AspNet-Version, X-Runtime, X-Generator, nor the upstream's Server`, async () => {
            const r = await get(edge.httpPort, p);
            assert.strictEqual(r.status, 200, `${p}: ${r.body}`);
            assert.deepStrictEqual(LEAKY_HEADERS.filter((h) => h in r.headers), [], JSON.stringify(r.headers));
            assert.ok(!String(r.headers.server ?? "").includes("Apache"), String(r.headers.server));
        });
    }

    for (const status of [500, 502, 503, 504]) {
        for (const p of ["/leaky/page", "/leaky/app.js", "/leaky/main.0123456789abcdef.js", "/api/leaky/x"]) {
            it(`${p} answered ${status} by the app: the status stays, the body is the platform's, no version`, async () => {
                const r = await get(edge.httpPort, `${p}?status=${status}`);
                assert.strictEqual(r.status, status);
                assert.ok(!r.body.includes("Tomcat") && !r.body.includes("Express") && !r.body.includes("PHP"), r.body);
                assert.match(r.body, /the app could not answer this request/);
                assert.deepStrictEqual(LEAKY_HEADERS.filter((h) => h in r.headers), []);
                assert.strictEqual(r.headers["x-content-type-options"], "nosniff");
            });
        }
    }

    it("4xx from the app pass through as it sent them (the API's 404, a missing file's 404)", async () => {
        const api = await get(edge.httpPort, "/api/leaky/missing");
        assert.deepStrictEqual([api.status, api.body], [404, "body of /missing"]);
        const file = await get(edge.httpPort, "/leaky/missing.txt");
        assert.deepStrictEqual([file.status, file.body], [404, "body of /missing.txt"]);
    });

    it("the SPA fallback still answers a frontend 404 with the app's index", async () => {
        const r = await get(edge.httpPort, "/leaky/missing-route");
        assert.deepStrictEqual([r.status, r.body], [200, "body of /index.html"]);
    });

    it("the platform's error page is not reachable directly", async () => {
        const r = await get(edge.httpPort, "/platform-internal/upstream-error");
        assert.strictEqual(r.status, 404);
    });
});
