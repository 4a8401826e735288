// The first `up` before DNS points, and the switch to HTTPS once it does, for real: the rendered edge
// config under the real nginx, hostScripts/issue-certificate.sh with the real certbot (Debian's, run
// where the script runs the certbot image: a `docker` shim maps the image's two mounts onto host
// directories), against pebble, Let's Encrypt's ACME test server, whose HTTP-01 validation resolves
// the domain through pebble-challtestsrv's DNS: no record at first (DNS not pointing yet), then an A
// record to the edge's loopback address. Pebble stands in for Let's Encrypt; everything else is what
// runs on the server.
import * as assert from "assert";
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as https from "https";
import * as os from "os";
import * as path from "path";
import { TLSSocket } from "tls";
import { Edge, freePort, requireBinary, route, sleep, startEdge, startUpstream, Upstream } from "./support/edge";

const SCRIPT = path.join(__dirname, "..", "hostScripts", "issue-certificate.sh");
export const PEBBLE_VERSION = "v2.10.3";
const DOMAIN = "platform.test";

/** pebble and pebble-challtestsrv: on PATH, or where .ci/run installs them (keyed by version). */
function pebbleBinary(ctx: Mocha.Context, name: string): string {
    const cached = path.join(process.env.PLATFORM_TOOLS_CACHE ?? path.join(os.homedir(), ".cache", "platform-tools"), `pebble-${PEBBLE_VERSION}`, name);
    if (fs.existsSync(cached)) return cached;
    if (spawnSync("sh", ["-c", `command -v ${name}`]).status === 0) return name;
    const install = `GOBIN=${path.dirname(cached)} go install github.com/letsencrypt/pebble/v2/cmd/${name}@${PEBBLE_VERSION}`;
    if (process.env.CI === "true") throw new Error(`${name} is not installed; .ci/run installs it (${install})`);
    console.warn(`\n  !!! SKIPPING: ${name} is not installed (${install}). CI fails without it. !!!\n`);
    ctx.skip();
}

function request(url: string, options: https.RequestOptions & { ca?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; issuer?: string }> {
    return new Promise((resolve, reject) => {
        const lib = url.startsWith("https:") ? https : http;
        const req = lib.request(url, { agent: false, timeout: 10000, ...options }, (res) => {
            const chunks: Buffer[] = [];
            const issuer = res.socket instanceof TLSSocket ? res.socket.getPeerCertificate().issuer?.CN : undefined;
            res.on("data", (c) => chunks.push(c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8"), issuer: Array.isArray(issuer) ? issuer.join(",") : issuer }));
        });
        req.on("timeout", () => req.destroy(new Error("timeout")));
        req.on("error", reject);
        req.end();
    });
}

describe("the certificate on the real nginx and certbot, against pebble: HTTP until DNS points, then HTTPS with HSTS", function () {
    this.timeout(180000);
    let dir: string;
    let edge: Edge;
    let fe: Upstream;
    let be: Upstream;
    const children: ChildProcess[] = [];
    let env: NodeJS.ProcessEnv;
    let caPem: string;
    let acmeDirectory: string;
    let challtestManagement: number;
    let pebbleManagement: number;

    const run = (args: string[]) => spawnSync("sh", [SCRIPT, ...args], { env, encoding: "utf8" });
    const plain = (p: string) => request(`http://127.0.0.1:${edge.httpPort}${p}`, { headers: { host: DOMAIN } });

    before(async function () {
        for (const tool of ["nginx", "openssl", "certbot"]) requireBinary(this, tool);
        const pebble = pebbleBinary(this, "pebble");
        const challtestsrv = pebbleBinary(this, "pebble-challtestsrv");
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-pebble-"));
        fs.chmodSync(dir, 0o755);
        for (const d of ["bin", "certs", "letsencrypt", "pki"]) fs.mkdirSync(path.join(dir, d));

        // Pebble's own API certificate, from a CA made here (certbot must trust the ACME server).
        const pki = (f: string) => path.join(dir, "pki", f);
        execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=platform test ACME API CA", "-keyout", pki("ca.key"), "-out", pki("ca.pem")], { stdio: "ignore" });
        execFileSync("openssl", ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", pki("api.key"), "-out", pki("api.csr")], { stdio: "ignore" });
        fs.writeFileSync(pki("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
        execFileSync("openssl", ["x509", "-req", "-in", pki("api.csr"), "-CA", pki("ca.pem"), "-CAkey", pki("ca.key"), "-CAcreateserial", "-days", "2", "-extfile", pki("san.ext"), "-out", pki("api.pem")], { stdio: "ignore" });
        caPem = fs.readFileSync(pki("ca.pem"), "utf8");

        // The edge: the routes of one app, https mode for DOMAIN, no real certificate yet.
        [fe, be] = await Promise.all([startUpstream("fe", { spa: true }), startUpstream("be")]);
        edge = await startEdge([route("app1", fe, be)], "https", { domain: DOMAIN, certificate: path.join(dir, "certs", "fullchain.pem"), certificateKey: path.join(dir, "certs", "privkey.pem") }, { uncertified: true });

        const [dnsPort, acmePort, tlsPort] = await Promise.all([freePort(), freePort(), freePort()]);
        [challtestManagement, pebbleManagement] = await Promise.all([freePort(), freePort()]);
        // DNS with no answer for DOMAIN until a record is added: the domain does not point here yet.
        const dns = spawn(challtestsrv, ["-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "", "-dnsserver", `127.0.0.1:${dnsPort}`, "-management", `127.0.0.1:${challtestManagement}`, "-defaultIPv4", "", "-defaultIPv6", ""], { stdio: "ignore" });
        children.push(dns);
        fs.writeFileSync(
            path.join(dir, "pebble.json"),
            JSON.stringify({
                pebble: {
                    listenAddress: `127.0.0.1:${acmePort}`,
                    managementListenAddress: `127.0.0.1:${pebbleManagement}`,
                    certificate: pki("api.pem"),
                    privateKey: pki("api.key"),
                    // HTTP-01 validation connects to the domain's address on this port: the edge's port 80.
                    httpPort: edge.httpPort,
                    tlsPort,
                    ocspResponderURL: "",
                    externalAccountBindingRequired: false,
                },
            }),
        );
        const ca = spawn(pebble, ["-config", path.join(dir, "pebble.json"), "-dnsserver", `127.0.0.1:${dnsPort}`], { stdio: "ignore", env: { ...process.env, PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0" } });
        children.push(ca);
        acmeDirectory = `https://127.0.0.1:${acmePort}/dir`;
        for (let i = 0; ; i++) {
            try {
                // Any answer: it listens (the directory answers 400 to a client that sends no User-Agent).
                if ((await request(acmeDirectory, { ca: caPem })).status > 0) break;
            } catch {
                /* not listening yet */
            }
            if (i > 100) throw new Error("pebble did not start");
            await sleep(100);
        }

        // Where the script runs the certbot image, the host's certbot on the same two directories;
        // `docker exec EDGE nginx … -s reload` reloads this edge.
        fs.writeFileSync(
            path.join(dir, "bin", "docker"),
            `#!/bin/sh
set -eu
case $1 in
run)
    shift
    le="" acme=""
    while [ "$#" -gt 0 ]; do
        case $1 in
        --rm) shift ;;
        -v) case $2 in *:/etc/letsencrypt) le=\${2%:/etc/letsencrypt} ;; *:/var/www/acme) acme=\${2%:/var/www/acme} ;; esac; shift 2 ;;
        *) break ;;
        esac
    done
    shift # the image
    for arg in "$@"; do
        shift
        if [ "$arg" = /var/www/acme ]; then set -- "$@" "$acme"; else set -- "$@" "$arg"; fi
    done
    exec certbot --config-dir "$le" --work-dir "$le/work" --logs-dir "$le/logs" "$@"
    ;;
exec) exec nginx -p ${edge.dir} -c ${path.join(edge.dir, "nginx.conf")} -s reload ;;
*) echo "docker shim: $*" >&2; exit 1 ;;
esac
`,
            { mode: 0o755 },
        );
        env = {
            PATH: `${path.join(dir, "bin")}:${process.env.PATH}`,
            HOME: dir,
            // certbot (python requests) trusts pebble's API through this CA only.
            REQUESTS_CA_BUNDLE: pki("ca.pem"),
            DOMAIN,
            EMAIL: "ops@example.com",
            STAGING: "false",
            ACME_SERVER: acmeDirectory,
            LETSENCRYPT_DIR: path.join(dir, "letsencrypt"),
            ACME_DIR: edge.settings.acmeWebroot,
            CERTS_DIR: path.join(dir, "certs"),
            EDGE_CONTAINER: "platform-edge",
            EDGE_CONF: "/etc/nginx/platform/nginx.conf",
            CERTBOT_IMAGE: "certbot/certbot:v2.11.0",
            TLS_READY_FILE: edge.settings.tlsReadyFile!,
            SELF: "/srv/platform/bin/issue-certificate.sh",
            CRON_FILE: path.join(dir, "cron"),
            SETTINGS_FILE: path.join(dir, "certificate.env"),
        };
    });

    after(async () => {
        for (const c of children) c.kill("SIGTERM");
        await edge?.stop();
        await Promise.all([fe, be].filter(Boolean).map((u) => u.close()));
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("before DNS points: the first run does not fail, the apps are served over plain HTTP, and nothing sends HSTS", async () => {
        const first = run([]);
        assert.strictEqual(first.status, 0, first.stderr);
        assert.match(first.stderr, /no certificate for platform\.test yet: .*the edge serves the apps over plain HTTP \(no redirect, no HSTS\)/);
        // certbot says why: the CA could not resolve the name.
        assert.match(first.stdout + first.stderr, /could not resolve|DNS problem|NXDOMAIN/i, first.stdout);
        assert.ok(!fs.existsSync(edge.settings.tlsReadyFile!));
        const page = await plain("/app1/");
        assert.strictEqual(page.status, 200, page.body);
        assert.match(page.body, /fe/);
        assert.strictEqual(page.headers["strict-transport-security"], undefined);
        const api = await plain("/api/app1/x");
        assert.strictEqual(api.status, 200);
        const tlsPage = await request(`https://127.0.0.1:${edge.httpsPort}/app1/`, { servername: DOMAIN, headers: { host: DOMAIN }, rejectUnauthorized: false });
        assert.strictEqual(tlsPage.status, 200);
        assert.strictEqual(tlsPage.headers["strict-transport-security"], undefined, "no HSTS over the self-signed placeholder");
        // The retry job, still refused: logged as a failure, nothing changes.
        const retry = run(["--renew-only", env.SETTINGS_FILE!, "--pending"]);
        assert.notStrictEqual(retry.status, 0);
        assert.strictEqual((await plain("/app1/")).status, 200);
    });

    it("once the record points here, the retry job gets a certificate from the CA and the edge switches to HTTPS with HSTS", async () => {
        await new Promise<void>((resolve, reject) => {
            const req = http.request({ host: "127.0.0.1", port: challtestManagement, path: "/add-a", method: "POST", headers: { "content-type": "application/json" } }, (res) => (res.resume(), res.statusCode === 200 ? resolve() : reject(new Error(`add-a: ${res.statusCode}`))));
            req.on("error", reject);
            req.end(JSON.stringify({ host: `${DOMAIN}.`, addresses: ["127.0.0.1"] }));
        });
        const issued = run(["--renew-only", env.SETTINGS_FILE!, "--pending"]);
        assert.strictEqual(issued.status, 0, issued.stderr);
        assert.match(issued.stdout, /installed the first certificate for platform\.test; the edge now redirects HTTP to HTTPS and sends HSTS/);

        let redirect = await plain("/app1/x?y=1");
        for (let i = 0; redirect.status !== 301 && i < 50; i++) {
            await sleep(100);
            redirect = await plain("/app1/x?y=1");
        }
        assert.strictEqual(redirect.status, 301);
        assert.strictEqual(redirect.headers.location, `https://${DOMAIN}:${edge.httpsPort}/app1/x?y=1`);
        // Renewals still validate over HTTP, and the container's checks still answer there.
        fs.writeFileSync(path.join(edge.settings.acmeWebroot, ".well-known", "acme-challenge", "tok_123"), "tok_123.thumb");
        const token = await plain("/.well-known/acme-challenge/tok_123");
        assert.deepStrictEqual([token.status, token.body], [200, "tok_123.thumb"]);
        assert.strictEqual((await plain("/health")).status, 200);

        // The CA's own root, as a browser would trust Let's Encrypt's: the served chain verifies for the domain.
        const root = await request(`https://127.0.0.1:${pebbleManagement}/roots/0`, { ca: caPem });
        assert.strictEqual(root.status, 200);
        const page = await request(`https://127.0.0.1:${edge.httpsPort}/app1/`, { servername: DOMAIN, headers: { host: DOMAIN }, ca: root.body });
        assert.strictEqual(page.status, 200, page.body);
        assert.match(String(page.issuer), /Pebble/i, `issued by ${page.issuer}`);
        assert.strictEqual(page.headers["strict-transport-security"], "max-age=63072000; includeSubDomains");

        // The retry job from now on: nothing to do, no CA call, no reload.
        const after = run(["--renew-only", env.SETTINGS_FILE!, "--pending"]);
        assert.strictEqual(after.status, 0, after.stderr);
        assert.strictEqual(after.stdout, "");
    });
});

describe("the pebble this suite runs is the one CI builds", () => {
    it(".ci/run builds the same version the suite looks for", () => {
        const ci = fs.readFileSync(path.join(__dirname, "..", ".ci", "run"), "utf8");
        assert.strictEqual(/^pebble_version=(\S+)$/m.exec(ci)?.[1], PEBBLE_VERSION);
    });
});
