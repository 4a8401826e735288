// hostScripts/issue-certificate.sh with a stand-in `docker`: issuance installs the certificate and
// reloads the edge, staging is a switch, renewal is scheduled, and a refusal fails loudly.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

import { dnsRecordFor } from "../render/dns";
import { TLS_READY_ENTRY, TLS_READY_FILE_NAME } from "../render/nginx";

const SCRIPT = path.join(__dirname, "..", "hostScripts", "issue-certificate.sh");

function setup(certbotSucceeds: boolean) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-cert-"));
    const bin = path.join(dir, "bin");
    const le = path.join(dir, "letsencrypt");
    fs.mkdirSync(bin);
    for (const d of ["certs", "acme", "letsencrypt", "nginx"]) fs.mkdirSync(path.join(dir, d));
    fs.writeFileSync(path.join(dir, "certs", "fullchain.pem"), "self-signed placeholder\n");
    // Stand-in for docker: `run` plays certbot (writes live/<domain>), `exec` records the reload.
    fs.writeFileSync(
        path.join(bin, "docker"),
        `#!/bin/sh
echo "$*" >> ${dir}/docker.log
if [ "$1" = run ]; then
  ${certbotSucceeds ? "" : "echo 'Challenge failed for domain' >&2; exit 1"}
  mkdir -p ${le}/live/example.com
  echo "real chain \${CHAIN:-$(date +%s%N)}" > ${le}/live/example.com/fullchain.pem
  echo "real key" > ${le}/live/example.com/privkey.pem
fi
`,
        { mode: 0o755 },
    );
    const env = {
        PATH: `${bin}:${process.env.PATH}`,
        DOMAIN: "example.com",
        EMAIL: "ops@example.com",
        STAGING: "true",
        LETSENCRYPT_DIR: le,
        ACME_DIR: path.join(dir, "acme"),
        CERTS_DIR: path.join(dir, "certs"),
        EDGE_CONTAINER: "platform-edge",
        EDGE_CONF: "/etc/nginx/platform/nginx.conf",
        CERTBOT_IMAGE: "certbot/certbot:v2.11.0",
        SELF: "/srv/platform/bin/issue-certificate.sh",
        CRON_FILE: path.join(dir, "cron"),
        SETTINGS_FILE: path.join(dir, "srv", "certificate.env"),
        TLS_READY_FILE: path.join(dir, "nginx", "tls-ready.conf"),
    };
    const run = (args: string[] = [], extra: Record<string, string> = {}) => spawnSync("sh", [SCRIPT, ...args], { env: { ...env, ...extra }, encoding: "utf8" });
    const log = () => (fs.existsSync(path.join(dir, "docker.log")) ? fs.readFileSync(path.join(dir, "docker.log"), "utf8") : "");
    return { dir, run, log };
}

/** The command part of a /etc/cron.d line (after five time fields and the user), as cron hands it to sh. */
function cronCommand(line: string): string {
    const fields = line.trim().split(/\s+/);
    assert.strictEqual(fields[5], "root");
    const command = line.trim().split(/\s+/).slice(6).join(" ");
    // cron turns every unescaped % into a newline: a command that holds one is not what was written.
    assert.ok(!command.includes("%"), `a % in the cron command: ${command}`);
    return command;
}

describe("certificate issuance script (stand-in docker)", () => {
    it("hostile settings never become commands: the cron line is run by the real sh and every value arrives intact", () => {
        const hostile = [
            "ops@x.com;touch${IFS}/tmp/PWNED;#",
            "ops@x.com' ; touch /tmp/PWNED ; echo '",
            "ops%40x.com",
            "$(touch /tmp/PWNED)@x.com",
            "`touch /tmp/PWNED`@x.com",
            "ops@x.com\\' \"$(id)\"",
            "100% sure@x.com",
        ];
        for (const email of hostile) {
            const { dir, run, log } = setup(true);
            const marker = path.join(dir, "PWNED");
            const value = email.split("/tmp/PWNED").join(marker);
            const install = run([], { EMAIL: value });
            assert.strictEqual(install.status, 0, install.stderr);
            assert.ok(!fs.existsSync(marker), `installing with ${value} ran a command`);
            // What cron would run, through the real sh, with the same stand-in docker on PATH.
            const line = fs.readFileSync(path.join(dir, "cron"), "utf8").split("\n")[0];
            fs.writeFileSync(path.join(dir, "docker.log"), "");
            const renewal = spawnSync("sh", ["-c", cronCommand(line).replace(">>/var/log/platform-certificate.log 2>&1", "").replace("/srv/platform/bin/issue-certificate.sh", SCRIPT)], {
                env: { PATH: `${dir}/bin:${process.env.PATH}`, CHAIN: "same" },
                encoding: "utf8",
            });
            assert.strictEqual(renewal.status, 0, renewal.stderr);
            assert.ok(!fs.existsSync(marker), `the renewal job with ${value} ran a command`);
            assert.ok(log().includes(`--email ${value} --agree-tos`), `certbot got the value as written: ${log()}`);
        }
    });
    it("refuses a setting with a newline, before writing anything", () => {
        const { dir, run } = setup(true);
        const r = run([], { DOMAIN: "example.com\n23 * * * * root touch /tmp/x" });
        assert.notStrictEqual(r.status, 0);
        assert.match(r.stderr, /DOMAIN contains a newline/);
        assert.ok(!fs.existsSync(path.join(dir, "cron")));
    });
    it("refuses to put an odd path in the cron line", () => {
        const { dir, run } = setup(true);
        const r = run([], { SELF: "/srv/platform/bin/x.sh; touch /tmp/x" });
        assert.notStrictEqual(r.status, 0);
        assert.match(r.stderr, /refusing to put/);
        assert.ok(!fs.existsSync(path.join(dir, "cron")));
    });
    it("issues through the webroot, installs the certificate, reloads the edge and schedules renewal", () => {
        const { dir, run, log } = setup(true);
        const r = run();
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(log(), /run --rm .*certonly --webroot -w \/var\/www\/acme -d example\.com --email ops@example\.com --agree-tos --non-interactive --keep-until-expiring --staging/);
        assert.match(log(), /exec platform-edge nginx -c \/etc\/nginx\/platform\/nginx\.conf -s reload/);
        assert.match(fs.readFileSync(path.join(dir, "certs", "fullchain.pem"), "utf8"), /real chain/);
        assert.strictEqual(fs.statSync(path.join(dir, "certs", "privkey.pem")).mode & 0o777, 0o600);
        const cron = fs.readFileSync(path.join(dir, "cron"), "utf8");
        assert.strictEqual(
            cron,
            `23 3,15 * * * root sh /srv/platform/bin/issue-certificate.sh --renew-only ${dir}/srv/certificate.env >>/var/log/platform-certificate.log 2>&1\n` +
                `*/15 * * * * root sh /srv/platform/bin/issue-certificate.sh --renew-only ${dir}/srv/certificate.env --pending >>/var/log/platform-certificate.log 2>&1\n`,
        );
        assert.strictEqual(fs.statSync(path.join(dir, "srv", "certificate.env")).mode & 0o777, 0o600);
    });
    it("a renewal reloads only when the certificate changed", () => {
        const { dir, run, log } = setup(true);
        const reloads = () => log().split("\n").filter((l) => l.startsWith("exec")).length;
        assert.strictEqual(run([], { CHAIN: "one" }).status, 0);
        assert.strictEqual(reloads(), 1);
        const settings = path.join(dir, "srv", "certificate.env");
        const same = run(["--renew-only", settings], { CHAIN: "one" });
        assert.strictEqual(same.status, 0);
        assert.match(same.stdout, /certificate for example\.com is current/);
        assert.strictEqual(reloads(), 1, "nothing new: no reload");
        const renewed = run(["--renew-only", settings], { CHAIN: "two" });
        assert.strictEqual(renewed.status, 0);
        assert.match(renewed.stdout, /installed a new certificate for example\.com and reloaded the edge/);
        assert.strictEqual(reloads(), 2, "a renewed certificate is installed and reloaded");
        // A server that had its certificate before the edge knew of tls-ready.conf: the next run tells it, once.
        fs.rmSync(path.join(dir, "nginx", "tls-ready.conf"));
        assert.match(run(["--renew-only", settings], { CHAIN: "two" }).stdout, /is current; the edge now redirects HTTP to HTTPS and sends HSTS/);
        assert.strictEqual(reloads(), 3);
        assert.strictEqual(run(["--renew-only", settings, "--pending"], { CHAIN: "two" }).status, 0);
        assert.strictEqual(reloads(), 3, "nothing to tell: no reload");
    });
    it("the first deployment, before DNS points: a refusal does not fail it, says what to create, keeps the placeholder and leaves the 15-minute retry", () => {
        const { dir, run, log } = setup(false);
        const r = run();
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(r.stderr, /no certificate for example\.com yet: .*DNS A record does not point at this server yet \(see the stack output dnsRecord\).*retries every 15 minutes/);
        assert.strictEqual(fs.readFileSync(path.join(dir, "certs", "fullchain.pem"), "utf8"), "self-signed placeholder\n");
        assert.doesNotMatch(log(), /exec/);
        assert.ok(!fs.existsSync(path.join(dir, "nginx", "tls-ready.conf")), "no HTTPS redirect or HSTS over the placeholder");
        assert.match(r.stderr, /the edge serves the apps over plain HTTP \(no redirect, no HSTS\)/);
        assert.match(fs.readFileSync(path.join(dir, "cron"), "utf8"), /^\*\/15 \* \* \* \* root sh \S+ --renew-only \S+ --pending /m);
    });
    it("the retry job: fails loudly while refused, installs and reloads once DNS points, then is a no-op (no Let's Encrypt call)", () => {
        const refused = setup(false);
        assert.strictEqual(refused.run().status, 0);
        const settings = path.join(refused.dir, "srv", "certificate.env");
        const again = refused.run(["--renew-only", settings, "--pending"]);
        assert.notStrictEqual(again.status, 0, "logged as a failure in the certificate log");
        assert.match(again.stderr, /Let's Encrypt refused example\.com\. Check that its DNS A record points at this server/);
        // DNS now points: the same settings, a certbot that succeeds.
        const ok = setup(true);
        fs.copyFileSync(settings, path.join(ok.dir, "certificate.env"));
        const envText = fs.readFileSync(path.join(ok.dir, "certificate.env"), "utf8").split(refused.dir).join(ok.dir);
        fs.writeFileSync(path.join(ok.dir, "certificate.env"), envText);
        const issued = ok.run(["--renew-only", path.join(ok.dir, "certificate.env"), "--pending"]);
        assert.strictEqual(issued.status, 0, issued.stderr);
        assert.match(issued.stdout, /installed the first certificate for example\.com; the edge now redirects HTTP to HTTPS and sends HSTS/);
        // The entry the edge's config includes (render/nginx.ts): the script and the renderer agree on it.
        assert.strictEqual(fs.readFileSync(path.join(ok.dir, "nginx", TLS_READY_FILE_NAME), "utf8"), `${TLS_READY_ENTRY}\n`, "the edge is told the certificate is real");
        assert.match(fs.readFileSync(path.join(ok.dir, "certs", "fullchain.pem"), "utf8"), /real chain/);
        const calls = ok.log().split("\n").filter((l) => l.startsWith("run")).length;
        const after = ok.run(["--renew-only", path.join(ok.dir, "certificate.env"), "--pending"]);
        assert.strictEqual(after.status, 0);
        assert.strictEqual(ok.log().split("\n").filter((l) => l.startsWith("run")).length, calls, "no certbot run once a certificate exists");
    });
    it("a renewal refused (cron) fails with what to check, and keeps the current certificate", () => {
        const { dir, run, log } = setup(false);
        assert.strictEqual(run().status, 0);
        const r = run(["--renew-only", path.join(dir, "srv", "certificate.env")]);
        assert.notStrictEqual(r.status, 0);
        assert.match(r.stderr, /Let's Encrypt refused example\.com\. Check that its DNS A record points at this server and port 80 is open/);
        assert.strictEqual(fs.readFileSync(path.join(dir, "certs", "fullchain.pem"), "utf8"), "self-signed placeholder\n");
        assert.doesNotMatch(log(), /exec/);
    });
    it("the DNS record to create: the domain's A record to the public IP; hostile values refused", () => {
        assert.deepStrictEqual(dnsRecordFor("apps.example.org", "51.15.200.7").record, "apps.example.org. 300 IN A 51.15.200.7");
        for (const bad of ["", "localhost", "a..b.org", "x.org\nevil. IN A 1.2.3.4", "x.org; rm -rf /", "-x.org", "x.org."]) assert.throws(() => dnsRecordFor(bad, "51.15.200.7"), /is not a domain name/, bad);
        for (const bad of ["", "256.1.1.1", "1.2.3", "1.2.3.4\n", "::1", "01.2.3.4", "1.2.3.4 ; x"]) assert.throws(() => dnsRecordFor("x.org", bad), /is not an IPv4 address/, bad);
    });
    it("the production CA unless staging is asked for", () => {
        const { run, log } = setup(true);
        assert.strictEqual(run([], { STAGING: "false" }).status, 0);
        assert.match(log(), /certonly /);
        assert.doesNotMatch(log(), /--staging/);
    });
    it("refuses to run without its settings", () => {
        const r = spawnSync("sh", [SCRIPT], { env: { PATH: process.env.PATH }, encoding: "utf8" });
        assert.notStrictEqual(r.status, 0);
        assert.match(r.stderr, /DOMAIN/);
    });
});
