// The renderer on its own: hostile values never reach nginx.conf, and the invariants the edge's
// guarantees rest on hold for any route table. (The real-nginx suites prove the behaviour.)
import * as assert from "assert";
import { EdgeSettings, Route, containerEdgeSettings, renderNginxConfig } from "../render/nginx";

const ok: Route = { app: "app1", frontend: { host: "app1-frontend-abc1234", port: 8080 }, backend: { host: "10.0.0.7", port: 3000 }, apiPrefix: "strip" };
const https = containerEdgeSettings("https", "example.com");

describe("edge renderer: hostile input", () => {
    const hostileNames = ["evil.com; return 200", "example.com\nserver_name x", "example.com { }", "$host", "EXAMPLE.com", "a b", "-example.com", "example..com", "ex\"ample.com", "*.example.com", "example.com#x", ""];
    it("refuses a domain or alias that is not a plain lowercase name or IPv4 address", () => {
        for (const domain of hostileNames) assert.throws(() => renderNginxConfig([ok], { ...https, domain }), /server name/, JSON.stringify(domain));
        for (const alias of [...hostileNames, "256.1.1.1", "1.2.3.4; x", "::1"]) assert.throws(() => renderNginxConfig([ok], { ...https, aliases: [alias] }), /server name/, JSON.stringify(alias));
        assert.doesNotThrow(() => renderNginxConfig([ok], { ...https, aliases: ["www.example.com", "192.0.2.1"] }));
    });
    it("refuses upstream hosts and ports that are not a hostname or IPv4 address and a TCP port", () => {
        const hosts = ["a b", "a;b", "a\nb", "a}b", "$upstream", "256.0.0.1", "1.2.3.4.5", "10.0.0.1:80", "host/x", "", "-lead", "x".repeat(64), "[::1]", "a_b"];
        for (const host of hosts) {
            assert.throws(() => renderNginxConfig([{ ...ok, backend: { host, port: 80 } }], https), /upstream host/, JSON.stringify(host));
            assert.throws(() => renderNginxConfig([{ ...ok, frontend: { host, port: 80 } }], https), /upstream host/, JSON.stringify(host));
        }
        for (const port of [0, -1, 65536, 1.5, NaN]) assert.throws(() => renderNginxConfig([{ ...ok, backend: { host: "10.0.0.1", port } }], https), /TCP port/, String(port));
    });
    it("refuses settings that would end a directive early", () => {
        const bare: (keyof EdgeSettings)[] = ["listenHttp", "listenHttps", "certificate", "certificateKey", "acmeWebroot", "resolver", "routeDir", "pidFile", "errorLog", "accessLog", "tempDir", "workerShutdownTimeout"];
        for (const key of bare) {
            for (const value of ["x; include /etc/passwd", "x\ny", "x y", "x{", "$x", "x\"", ""]) {
                assert.throws(() => renderNginxConfig([ok], { ...https, [key]: value }), /cannot hold bare/, `${key}=${JSON.stringify(value)}`);
            }
        }
        for (const [key, value] of [["publicHttpsPort", 70000], ["publicHttpsPort", 0], ["apiRatePerSecond", 1.5], ["apiBurst", -1]] as const) {
            assert.throws(() => renderNginxConfig([ok], { ...https, [key]: value }), new RegExp(key), `${key}=${value}`);
        }
    });
    it("refuses a Content-Security-Policy that could close its string", () => {
        for (const csp of ["a\" always; add_header X y", "a\\", "$host", "a\nb"]) assert.throws(() => renderNginxConfig([{ ...ok, contentSecurityPolicy: csp }], https), /refusing to render/);
    });
});

describe("edge renderer: invariants", () => {
    const routes: Route[] = [ok, { ...ok, app: "app2", apiPrefix: "keep", frontend: { host: "192.0.2.10", port: 80 } }];
    for (const settings of [https, containerEdgeSettings("http", "localhost")]) {
        const conf = renderNginxConfig(routes, settings);
        // https on one host serves the routes on 443 and, until its certificate is real, on 80 (tlsReadyFile).
        const routingServers = settings.tlsReadyFile !== undefined ? 2 : 1;
        it(`${settings.mode}: the Host the client sent is never echoed or forwarded`, () => {
            assert.doesNotMatch(conf, /\$host|\$http_host|\$server_name/);
        });
        it(`${settings.mode}: every proxy_set_header is at http level (one in a location would drop all the others there)`, () => {
            const lines = conf.split("\n");
            let depth = 0;
            for (const line of lines) {
                if (/^\s*proxy_set_header /.test(line)) assert.strictEqual(depth, 1, line);
                depth += (line.match(/{/g) ?? []).length - (line.match(/}/g) ?? []).length;
            }
        });
        it(`${settings.mode}: every proxy_pass goes through its route's switch; the containers are named only in route lines`, () => {
            assert.doesNotMatch(conf, /^\s*upstream /m, "no upstream block: switching one would need a reload");
            const lines = conf.split("\n").map((l) => l.trim());
            // Each proxy_pass is preceded by the root of its own route's link.
            lines.forEach((l, i) => {
                if (!l.startsWith("proxy_pass")) return;
                assert.strictEqual(l, "proxy_pass http://$platform_upstream;");
                assert.match(lines[i - 1], /^root \/etc\/nginx\/platform\/routes\/app[12]\.(frontend|backend);$/);
            });
            assert.strictEqual(lines.filter((l) => l === "root /etc/nginx/platform/routes/app1.backend;").length, routingServers);
            assert.strictEqual(lines.filter((l) => l === "root /etc/nginx/platform/routes/app2.frontend;").length, 4 * routingServers, "SPA, two file locations, index fallback");
            // A name or an address, each once, in a comment nginx never reads; nowhere else.
            assert.deepStrictEqual(
                lines.filter((l) => l.startsWith("# platform-route ")),
                ["# platform-route app1.frontend app1-frontend-abc1234:8080", "# platform-route app1.backend 10.0.0.7:3000", "# platform-route app2.frontend 192.0.2.10:80", "# platform-route app2.backend 10.0.0.7:3000"],
            );
            assert.strictEqual(conf.split("app1-frontend-abc1234").length, 2, "in the route line only");
            assert.strictEqual(conf.split("10.0.0.7").length, 3, "in the two route lines only");
        });
        it(`${settings.mode}: the probe of a route is for loopback clients and takes only a route's shape`, () => {
            assert.match(conf, /location \^~ \/__platform\/route\/ \{\n\s+allow 127\.0\.0\.1; deny all;/);
            assert.match(conf, /location ~ "\^\/__platform\/route\/\(\?<platform_route>\[a-z\]\[a-z0-9-\]\*\\\.\(\?:frontend\|backend\)\)\$"/);
        });
        it(`${settings.mode}: the default server refuses, and the routed one names only the configured names`, () => {
            assert.match(conf, /listen \S+ default_server;\n\s+return 444;/);
            assert.ok(conf.split("\n").filter((l) => /server_name /.test(l)).every((l) => l.trim() === `server_name ${[settings.domain, ...(settings.aliases ?? [])].join(" ")};`));
        });
    }
    for (const settings of [https, containerEdgeSettings("http", "localhost"), { ...https, behindLoadBalancer: { trustedCidrs: ["10.0.0.0/8"], localListen: "127.0.0.1:80" } }]) {
        const conf = renderNginxConfig(routes, settings);
        const label = settings.behindLoadBalancer ? "behind a load balancer" : settings.mode;
        const routingServers = settings.tlsReadyFile !== undefined && settings.behindLoadBalancer === undefined ? 2 : 1;
        it(`${label}: every block that sets response headers sets the whole security set (add_header there drops the inherited ones)`, () => {
            // The add_header lines directly inside each block, by brace depth.
            const blocks: Array<{ head: string; headers: string[] }> = [];
            const stack: Array<{ head: string; headers: string[] }> = [];
            for (const line of conf.split("\n").map((l) => l.trim())) {
                if (/\{$/.test(line)) {
                    stack.push({ head: line, headers: [] });
                    continue;
                }
                if (line === "}") {
                    blocks.push(stack.pop()!);
                    continue;
                }
                const m = /^add_header (\S+) /.exec(line);
                if (m && stack.length) stack[stack.length - 1].headers.push(m[1]);
            }
            const withHeaders = blocks.filter((b) => b.headers.length > 0);
            // The routing server, and per app: SPA, hashed asset, file, fallback, API redirect, API; the /api/ 404; the 5xx page.
            assert.strictEqual(withHeaders.length, (1 + routes.length * 6 + 1 + 1) * routingServers, withHeaders.map((b) => b.head).join("\n"));
            const required = ["X-Request-ID", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", ...(settings.mode === "https" ? ["Strict-Transport-Security"] : [])];
            for (const b of withHeaders) {
                for (const name of required) assert.ok(b.headers.includes(name), `${b.head} lacks ${name}`);
                assert.strictEqual(new Set(b.headers).size, b.headers.length, `${b.head} sets a header twice`);
            }
        });
        it(`${label}: response header values are static per location: no per-request map over the URI`, () => {
            assert.doesNotMatch(conf, /map \$(request_uri|uri) /);
            // $platform_hsts maps a constant (whether the certificate is real), never the request.
            assert.doesNotMatch(conf, /map \$platform_hsts|map \S*\$(request_uri|uri)\S* \$platform_hsts/);
            for (const line of conf.split("\n").filter((l) => /^\s*add_header /.test(l))) assert.match(line, /^\s*add_header \S+ (".*"|\$platform_request_id|\$platform_hsts)( always)?;$/, line);
        });
    }
    it("the IPv6 quoting of Forwarded runs only where an IPv6 client address can occur", () => {
        const plain = renderNginxConfig(routes, https);
        assert.match(plain, /proxy_set_header Forwarded "for=\$remote_addr;/);
        assert.doesNotMatch(plain, /platform_forwarded_for/);
        for (const s of [{ ...https, listenHttps: "[::]:443" }, { ...https, behindLoadBalancer: { trustedCidrs: ["10.0.0.0/8"], localListen: "127.0.0.1:80" } }]) {
            const conf = renderNginxConfig(routes, s);
            assert.match(conf, /map \$remote_addr \$platform_forwarded_for \{ "~:" '"\[\$remote_addr\]"'; default \$remote_addr; \}/);
            assert.match(conf, /proxy_set_header Forwarded "for=\$platform_forwarded_for;/);
        }
    });
    it("behind a balancer without its certificate yet: the apps are told http, and no answer carries HSTS", () => {
        const lb = { trustedCidrs: ["10.0.0.5/32"], localListen: "127.0.0.1:80" };
        const before = renderNginxConfig(routes, { ...https, behindLoadBalancer: { ...lb, tls: false } });
        assert.match(before, /proxy_set_header X-Forwarded-Proto http;/);
        assert.match(before, /proto=http";/);
        assert.doesNotMatch(before, /Strict-Transport-Security/);
        const after = renderNginxConfig(routes, { ...https, behindLoadBalancer: { ...lb, tls: true } });
        assert.match(after, /proxy_set_header X-Forwarded-Proto https;/);
        assert.match(after, /add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;/);
        assert.strictEqual(renderNginxConfig(routes, { ...https, behindLoadBalancer: lb }), after, "unset means the balancer ends TLS");
    });
    it("https: unknown SNI is rejected at the handshake, and the redirect names the configured domain", () => {
        const conf = renderNginxConfig(routes, https);
        assert.match(conf, /listen 443 ssl http2 default_server;\n[^}]*ssl_reject_handshake on;/);
        assert.match(conf, /return 301 https:\/\/example\.com\$request_uri;/);
    });
});
