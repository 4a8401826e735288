// The alerts checker as cloud-init installs it on a server: the script byte for byte, its settings
// (which sh reads back as written), a cron job every 5 minutes, and the packages it needs. Run with
// exactly those settings on a machine that is not a configured server, the checks that do not apply
// (no certificate job, no backups) stay silent.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import { ALERTS_CRON_PATH, ALERTS_SCRIPT_PATH, ALERTS_SETTINGS_PATH, renderAlertsInstallScript, renderAlertsSettings, renderCloudInit } from "../render/cloudInit";
import { readHostScript } from "../hostScripts";
import { PUBLIC_KEY } from "./fixtures";
import { requireBinary } from "./support/edge";

describe("alerts checker in the server's user data", () => {
    const script = readHostScript("check-alerts.sh");
    const data = yaml.load(renderCloudInit({ sshPublicKey: PUBLIC_KEY, alertsScript: script })) as { packages: string[]; write_files: { path: string; permissions: string; content: string }[] };
    const file = (p: string) => data.write_files.find((f) => f.path === p);

    it("installs the script as it is, executable, with a cron job every 5 minutes and nc + wget", () => {
        assert.strictEqual(file(ALERTS_SCRIPT_PATH)?.content, script);
        assert.strictEqual(file(ALERTS_SCRIPT_PATH)?.permissions, "0755");
        assert.strictEqual(file(ALERTS_CRON_PATH)?.content, `*/5 * * * * root sh ${ALERTS_SCRIPT_PATH} ${ALERTS_SETTINGS_PATH} 2>&1 | logger -t platform-alerts\n`);
        for (const p of ["netcat-openbsd", "wget"]) assert.ok(data.packages.includes(p), p);
        // Without the script (the default render), nothing of it.
        const plain = yaml.load(renderCloudInit({ sshPublicKey: PUBLIC_KEY })) as { write_files: { path: string }[] };
        assert.ok(!plain.write_files.some((f) => f.path === ALERTS_SCRIPT_PATH));
    });

    it("its settings read back through sh as written", () => {
        const settings = file(ALERTS_SETTINGS_PATH)!.content;
        assert.strictEqual(settings, renderAlertsSettings());
        const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "platform-alerts-env-")), "alerts.env");
        fs.writeFileSync(f, settings);
        const r = spawnSync("sh", ["-c", `. "$1"; printf '%s|' "$CERT_CONNECT" "$CERT_SETTINGS_FILE" "$BACKUP_SETTINGS_FILE" "$NGINX_CONF" "$DISK_MAX_PERCENT"`, "sh", f], { encoding: "utf8" });
        assert.strictEqual(r.stdout, "127.0.0.1:443|/srv/platform/certificate.env|/srv/platform/backup/backup.env|/srv/platform/nginx/nginx.conf|90|");
    });

    it("the webhook URL: only in the settings the host-alerts command sends on stdin, checked; never in cloud-init or the script", () => {
        const hook = "https://hooks.slack.com/services/T0000/B0000/secret-token";
        const settings = renderAlertsSettings({ webhookUrl: hook });
        assert.match(settings, /^WEBHOOK_URL='https:\/\/hooks\.slack\.com\/services\/T0000\/B0000\/secret-token'$/m);
        assert.doesNotMatch(renderAlertsSettings(), /WEBHOOK_URL/, "unset: no line");
        assert.ok(!renderAlertsInstallScript(script).includes("WEBHOOK_URL=") && !renderCloudInit({ sshPublicKey: PUBLIC_KEY, alertsScript: script }).includes(hook));
        for (const bad of ["http://hooks.example.org/x", "https://x.org/a'b", "https://x.org/$(id)", "https://user:pw@x.org/", "https://x.org/?q=1", "https://x.org/a\nb"]) {
            assert.throws(() => renderAlertsSettings({ webhookUrl: bad }), /not a plain https URL/, bad);
        }
    });

    it("passes cloud-init schema", function () {
        requireBinary(this, "cloud-init");
        const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "platform-ci-")), "user-data");
        fs.writeFileSync(f, renderCloudInit({ sshPublicKey: PUBLIC_KEY, alertsScript: script }));
        const r = spawnSync("cloud-init", ["schema", "-c", f], { encoding: "utf8" });
        assert.strictEqual(r.status, 0, r.stdout + r.stderr);
    });

    it("with those settings, a host without the certificate job or backups raises neither alert; with them, reads their domain and heartbeat URL", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-alerts-settings-"));
        const settings = path.join(dir, "alerts.env");
        const rewrite = (text: string) => text.replace(/\/srv\/platform/g, dir).replace("/var/lib/platform-alerts", path.join(dir, "state")).replace("/var/run/docker.sock", path.join(dir, "no-docker.sock"));
        fs.writeFileSync(settings, rewrite(renderAlertsSettings()));
        const run = () => spawnSync("sh", [path.join(__dirname, "..", "hostScripts", "check-alerts.sh"), "--facts", settings], { encoding: "utf8" });
        let r = run();
        const alerts = r.stdout.split("\n").filter((l) => l.startsWith("alert "));
        assert.ok(!alerts.some((a) => /certificate|backup/.test(a)), alerts.join("\n"));
        assert.ok(alerts.some((a) => /^alert container: no Docker API/.test(a)), alerts.join("\n"));
        fs.mkdirSync(path.join(dir, "backup"));
        fs.writeFileSync(path.join(dir, "certificate.env"), "DOMAIN='apps.example.org'\nEMAIL='ops@example.org'\n");
        fs.writeFileSync(path.join(dir, "backup", "backup.env"), "BACKUP_TARGETS='app1=app1_db'\nHEARTBEAT_URL='https://hc-ping.com/abc'\n");
        r = run();
        assert.match(r.stdout, /^alert certificate: no certificate served at 127\.0\.0\.1:443$/m);
        assert.match(r.stdout, /^alert backup: no successful backup found$/m);
        // A hostile value in the files the checker reads is refused, not used.
        fs.writeFileSync(path.join(dir, "certificate.env"), "DOMAIN='x;reboot'\n");
        r = run();
        assert.strictEqual(r.status, 2);
        assert.match(r.stderr, /bad CERT_SERVERNAME/);
        fs.rmSync(dir, { recursive: true, force: true });
    });

    it("the in-place install (servers older than the checker) writes the same three files as cloud-init, and passes shellcheck", function () {
        const root = fs.mkdtempSync(path.join(os.tmpdir(), "platform-alerts-install-"));
        const moved = (p: string) => path.join(root, p);
        const install = renderAlertsInstallScript(script).replace(/\/srv\/platform/g, moved("srv")).replace(/\/etc\/cron\.d/g, moved("cron"));
        fs.mkdirSync(moved("cron"));
        // The settings come on stdin, as the host-alerts command gives them (a secret: they may carry the webhook).
        const r = spawnSync("sh", ["-c", install], { input: renderAlertsSettings().replace(/\/srv\/platform/g, moved("srv")).replace(/\/etc\/cron\.d/g, moved("cron")), encoding: "utf8", env: { PATH: process.env.PATH } });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.notStrictEqual(spawnSync("sh", ["-c", install], { input: "", encoding: "utf8", env: { PATH: process.env.PATH } }).status, 0, "no settings on stdin: refused, the old file stays");
        for (const p of [ALERTS_SCRIPT_PATH, ALERTS_SETTINGS_PATH, ALERTS_CRON_PATH]) {
            const local = p.replace("/srv/platform", moved("srv")).replace("/etc/cron.d", moved("cron"));
            assert.strictEqual(fs.readFileSync(local, "utf8"), file(p)!.content.replace(/\/srv\/platform/g, moved("srv")).replace(/\/etc\/cron\.d/g, moved("cron")), p);
            assert.strictEqual((fs.statSync(local).mode & 0o777).toString(8), file(p)!.permissions.slice(1), p);
        }
        fs.rmSync(root, { recursive: true, force: true });
        requireBinary(this, "shellcheck");
        const sc = spawnSync("shellcheck", ["-s", "sh", "-"], { input: renderAlertsInstallScript(script), encoding: "utf8" });
        assert.strictEqual(sc.status, 0, sc.stdout);
    });
});
