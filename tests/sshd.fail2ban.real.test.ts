// The fail2ban jail the prod program renders when SSH is open to all, checked by the real fail2ban
// (Debian's 1.0.2, as Ubuntu 24.04 ships): the configuration loads, the jail reads the journal with
// the aggressive sshd patterns, and the lines a real key-only sshd logs for refused password and
// keyboard-interactive logins are what those patterns count.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as os from "os";
import * as path from "path";
import { FAIL2BAN_JAIL_PATH, SSHD_DROPIN_PATH } from "../render/cloudInit";
import { knownHostsLine } from "../io/sshFiles";
import { definePlatform } from "../components/platform";
import { requireBinary } from "./support/edge";
import { SSHD, keygen, runSsh, startSshd } from "./support/sshd";
import { T, reveal, runProgram } from "./harness";
import { PROD_RAW, parse } from "./fixtures";

const ADMIN = "203.0.113.10/32";

async function renderedOpenSsh(): Promise<{ jail: string; dropin: string; guard: string; packages: string[] }> {
    const run = await runProgram("prod", () =>
        definePlatform(parse({ ...PROD_RAW, sshFromAnywhere: "true", adminCidrs: JSON.stringify([ADMIN]) }), {
            openForward: async () => ({ host: "127.0.0.1", port: 40123, pid: 1, close: () => undefined }),
        }),
    );
    const userData = yaml.load(run.byType(T.server)[0].inputs.cloudInit) as { packages: string[]; write_files: { path: string; content: string }[] };
    const content = (p: string) => userData.write_files.find((f) => f.path === p)?.content ?? assert.fail(`cloud-init writes ${p}`);
    return { jail: content(FAIL2BAN_JAIL_PATH), dropin: content(SSHD_DROPIN_PATH), guard: reveal(run.one(T.remoteCommand, "host-ssh-guard").inputs.create), packages: userData.packages };
}

/** A copy of Debian's /etc/fail2ban with `jail` installed where the server gets it. */
function configDir(parent: string, name: string, jail: string): string {
    const dir = path.join(parent, name);
    fs.cpSync("/etc/fail2ban", dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "jail.d", path.basename(FAIL2BAN_JAIL_PATH)), jail);
    return dir;
}

/** The sshd jail's settings as fail2ban resolved them (`fail2ban-client -d`: one Python list per line). */
function dumpJail(dir: string): string[] {
    const r = spawnSync("fail2ban-client", ["-c", dir, "-d"], { encoding: "utf8" });
    assert.strictEqual(r.status, 0, r.stderr);
    return r.stdout.split("\n").filter((l) => l.startsWith("['add', 'sshd'") || /^\['(?:multi-)?set', 'sshd'/.test(l));
}

describe("fail2ban sshd jail (real fail2ban, the jail the prod program renders with sshFromAnywhere)", function () {
    this.timeout(60000);
    let dir: string;
    let rendered: Awaited<ReturnType<typeof renderedOpenSsh>>;

    before(async function () {
        requireBinary(this, "fail2ban-client");
        requireBinary(this, "fail2ban-regex");
        rendered = await renderedOpenSsh();
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-f2b-"));
    });
    after(() => {
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("cloud-init installs fail2ban with the systemd journal reader, and the guard installs the same jail", () => {
        assert.ok(rendered.packages.includes("fail2ban") && rendered.packages.includes("python3-systemd"));
        assert.ok(rendered.guard.includes(`<<'PLATFORM_FAIL2BAN_JAIL'\n${rendered.jail.replace(/\n$/, "")}\nPLATFORM_FAIL2BAN_JAIL\n`));
    });

    it("fail2ban-client -t accepts the configuration with the jail", () => {
        const r = spawnSync("fail2ban-client", ["-c", configDir(dir, "ok", rendered.jail), "-t"], { encoding: "utf8" });
        assert.strictEqual(r.status, 0, r.stdout + r.stderr);
        assert.match(r.stdout + r.stderr, /configuration test is successful/);
    });

    it("fail2ban-client -t refuses a broken jail (the check can fail)", () => {
        const r = spawnSync("fail2ban-client", ["-c", configDir(dir, "broken", rendered.jail.replace("backend = systemd", "backend = nonsense")), "-t"], { encoding: "utf8" });
        assert.notStrictEqual(r.status, 0);
    });

    it("as resolved: journal backend (sshd and sshd-session), aggressive patterns, bounded retries, admin CIDRs never banned", () => {
        const jail = dumpJail(configDir(dir, "dump", rendered.jail));
        const line = (cmd: string) => jail.find((l) => l.includes(`'sshd', '${cmd}'`)) ?? assert.fail(`no ${cmd} in ${jail.join("\n")}`);
        assert.ok(jail.includes("['add', 'sshd', 'systemd']"), jail.join("\n"));
        assert.strictEqual(line("addjournalmatch"), "['set', 'sshd', 'addjournalmatch', '_COMM=sshd', '+', '_COMM=sshd-session']");
        assert.ok(Number(/(\d+)\]$/.exec(line("maxretry"))![1]) <= 5, line("maxretry"));
        assert.ok(line("addignoreip").includes(`'${ADMIN}'`), line("addignoreip"));
        const failregex = line("addfailregex");
        assert.match(failregex, /Did not receive identification string/, "ddos/aggressive patterns are in");
        assert.doesNotMatch(failregex, /<mdre-/, "every pattern resolved");
        // The control: Debian's default mode lacks them.
        const normal = dumpJail(configDir(dir, "dump-normal", rendered.jail.replace(/^mode = .*$/m, "mode = normal")));
        assert.doesNotMatch(normal.find((l) => l.includes("'addfailregex'"))!, /Did not receive identification string/);
    });

    it("the lines a real key-only sshd logs for refused password logins are counted by the jail's filter", async function () {
        if (!fs.existsSync(SSHD)) requireBinary(this, "sshd");
        const work = fs.mkdtempSync(path.join(dir, "sshd-"));
        keygen(path.join(work, "id"));
        const sshd = await startSshd({ dir: work, dropins: [{ name: path.basename(SSHD_DROPIN_PATH), content: rendered.dropin }], authorizedKeys: "" });
        try {
            const kh = path.join(work, "known_hosts");
            fs.writeFileSync(kh, knownHostsLine(sshd.address, sshd.hostPublicKey, sshd.port) + "\n");
            const attempts = ["password", "keyboard-interactive", "password", "keyboard-interactive", "password", "password"];
            for (const method of attempts) {
                const r = await runSsh(["-p", String(sshd.port), "-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${kh}`, "-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no", "-o", `PreferredAuthentications=${method}`, `root@${sshd.address}`, "true"]);
                assert.strictEqual(r.status, 255);
            }
            await new Promise((r) => setTimeout(r, 300));
            // As journald hands them to fail2ban: "<host> sshd[<pid>]: <message>", with a timestamp.
            const stamp = new Date().toISOString().replace("T", " ").slice(0, 19);
            const lines = sshd.log().split("\n").filter(Boolean).map((l) => `${stamp} platform sshd[4242]: ${l}`);
            const logFile = path.join(work, "sshd.log");
            fs.writeFileSync(logFile, lines.join("\n") + "\n");
            const mode = /^mode = (\S+)$/m.exec(rendered.jail)![1];
            const regex = (m: string) => spawnSync("fail2ban-regex", ["-c", configDir(dir, `regex-${m}`, rendered.jail), "-r", logFile, `sshd[mode=${m}]`], { encoding: "utf8" });
            const counted = (out: string) => Number(/^Lines: \d+ lines, \d+ ignored, (\d+) matched/m.exec(out)?.[1] ?? "-1");
            const r = regex(mode);
            assert.strictEqual(r.status, 0, r.stderr);
            assert.ok(counted(r.stdout) >= attempts.length, `${counted(r.stdout)} of ${attempts.length} refused logins counted:\n${r.stdout}\n${sshd.log()}`);
            assert.match(r.stdout, /127\.0\.0\.1/);
            const notCounted = r.stdout.split(/\|- (?:Ignored|Missed) line\(s\):/).slice(1).join("\n");
            assert.doesNotMatch(notCounted, /authenticating user root/, "every refused root login counts");
            // The default mode would count none of them: why the jail says aggressive.
            const normal = regex("normal");
            assert.strictEqual(counted(normal.stdout), 0, normal.stdout);
        } finally {
            await sshd.stop();
        }
    });
});
