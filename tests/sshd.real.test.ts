// The sshd drop-in the prod program renders, under the real OpenSSH server: laid out as on Ubuntu
// 24.04 (Include first, later drop-ins and the main file try to loosen it), it must hold; only key
// logins work; the admin channel's forward works and nothing else can be forwarded; exec sessions
// (Docker's dial-stdio, @pulumi/command) still work.
import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { SSHD_DROPIN_PATH } from "../render/cloudInit";
import { knownHostsLine } from "../io/sshFiles";
import { definePlatform } from "../components/platform";
import { freePort, requireBinary, sleep } from "./support/edge";
import { SSHD, Sshd, effectiveSettings, keygen, runSsh, startSshd, writeSshdConfig } from "./support/sshd";
import { T, reveal, runProgram } from "./harness";
import { PROD_RAW, parse } from "./fixtures";

/** A later drop-in and settings that try to loosen everything: the platform's drop-in must win. */
const LOOSENING_DROPIN = [
    "PasswordAuthentication yes",
    "KbdInteractiveAuthentication yes",
    "PermitRootLogin yes",
    "MaxAuthTries 10",
    "LoginGraceTime 120",
    "AllowTcpForwarding yes",
    "PermitOpen any",
    "PermitListen any",
    "AllowAgentForwarding yes",
    "AllowStreamLocalForwarding yes",
    "X11Forwarding yes",
    "PermitTunnel yes",
    "GatewayPorts yes",
    "PermitUserEnvironment yes",
    "",
].join("\n");

/** What the prod program actually asks cloud-init to write as the sshd drop-in. */
export async function renderedProdDropin(): Promise<{ dropin: string; guard: string; permitOpen: string }> {
    const run = await runProgram("prod", () =>
        definePlatform(parse(PROD_RAW), { openForward: async () => ({ host: "127.0.0.1", port: 40123, pid: 1, close: () => undefined }) }),
    );
    const userData = yaml.load(run.byType(T.server)[0].inputs.cloudInit) as { write_files: { path: string; content: string }[] };
    const file = userData.write_files.find((f) => f.path === SSHD_DROPIN_PATH);
    assert.ok(file, `cloud-init writes ${SSHD_DROPIN_PATH}`);
    const guard = reveal(run.one(T.remoteCommand, "host-ssh-guard").inputs.create) as string;
    const permitOpen = /^PermitOpen (.+)$/m.exec(file.content)![1];
    return { dropin: file.content, guard, permitOpen };
}

/** A TCP echo server on `address:port`; undefined when the port is taken. */
function echoServer(address: string, port: number): Promise<net.Server | undefined> {
    return new Promise((resolve) => {
        const server = net.createServer((s) => s.pipe(s));
        server.once("error", () => resolve(undefined));
        server.listen(port, address, () => resolve(server));
    });
}

/** Sends `payload` to 127.0.0.1:`port` and returns what came back before the peer closed or 3 s passed. */
function roundTrip(port: number, payload: string): Promise<string> {
    return new Promise((resolve) => {
        let got = "";
        const s = net.connect({ host: "127.0.0.1", port }, () => s.write(payload));
        s.setEncoding("utf8");
        s.on("data", (d) => {
            got += d;
            if (got.length >= payload.length) s.end();
        });
        s.on("error", () => undefined);
        s.on("close", () => resolve(got));
        setTimeout(() => (s.destroy(), resolve(got)), 3000);
    });
}

describe("hardened sshd (real OpenSSH, the drop-in the prod program renders)", function () {
    this.timeout(60000);
    let dir: string;
    let sshd: Sshd;
    let rendered: { dropin: string; guard: string; permitOpen: string };
    let identity: string;
    const wrongIdentities: string[] = [];
    const user = os.userInfo().username;
    let knownHosts: string;
    const children: ChildProcess[] = [];

    before(async function () {
        if (!fs.existsSync(SSHD)) requireBinary(this, "sshd");
        requireBinary(this, "ssh");
        requireBinary(this, "ssh-keygen");
        requireBinary(this, "setsid");
        rendered = await renderedProdDropin();
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-sshd-"));
        identity = path.join(dir, "id");
        const pub = keygen(identity);
        for (const n of [1, 2, 3]) {
            wrongIdentities.push(path.join(dir, `wrong${n}`));
            keygen(path.join(dir, `wrong${n}`));
        }
        sshd = await startSshd({
            dir,
            dropins: [
                { name: path.basename(SSHD_DROPIN_PATH), content: rendered.dropin },
                // What cloud-init itself writes, and a hostile later file.
                { name: "50-cloud-init.conf", content: "PasswordAuthentication yes\n" },
                { name: "60-loosen.conf", content: LOOSENING_DROPIN },
            ],
            authorizedKeys: pub + "\n",
        });
        knownHosts = path.join(dir, "known_hosts");
        fs.writeFileSync(knownHosts, knownHostsLine(sshd.address, sshd.hostPublicKey, sshd.port) + "\n");
    });

    after(async () => {
        for (const c of children) c.kill("SIGKILL");
        await sshd?.stop();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    const base = () => ["-p", String(sshd.port), "-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "ConnectTimeout=5"];
    const dest = () => `${user}@${sshd.address}`;
    const withKey = (...extra: string[]) => [...base(), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", identity, ...extra];

    it("sshd -T: the drop-in's values win over cloud-init's file, a loosening later file and Ubuntu's main config", () => {
        const s = sshd.effective();
        const expected: Record<string, string> = {
            pubkeyauthentication: "yes",
            authenticationmethods: "publickey",
            passwordauthentication: "no",
            kbdinteractiveauthentication: "no",
            hostbasedauthentication: "no",
            permitemptypasswords: "no",
            permitrootlogin: "without-password",
            allowtcpforwarding: "local",
            permitopen: "127.0.0.1:5432",
            permitlisten: "none",
            gatewayports: "no",
            allowagentforwarding: "no",
            allowstreamlocalforwarding: "no",
            x11forwarding: "no",
            permittunnel: "no",
            permituserenvironment: "no",
            permituserrc: "no",
        };
        for (const [key, value] of Object.entries(expected)) assert.strictEqual(s.get(key), value, `${key}`);
        assert.ok(Number(s.get("maxauthtries")) <= 3, `maxauthtries ${s.get("maxauthtries")}`);
        assert.ok(Number(s.get("logingracetime")) > 0 && Number(s.get("logingracetime")) <= 30, `logingracetime ${s.get("logingracetime")}`);
        assert.strictEqual(rendered.permitOpen, "127.0.0.1:5432", "the admin channel's forward target (platform.ts POSTGRES_PUBLISHED_PORT)");
    });

    it("sshd -T without the drop-in shows the loose values: the check above can fail", () => {
        const { configFile } = writeSshdConfig({
            dir,
            name: "control",
            dropins: [{ name: "60-loosen.conf", content: LOOSENING_DROPIN }],
            authorizedKeys: "",
            port: 22,
        });
        const s = effectiveSettings(configFile);
        assert.strictEqual(s.get("passwordauthentication"), "yes");
        assert.strictEqual(s.get("permitopen"), "any");
        assert.strictEqual(s.get("allowtcpforwarding"), "yes");
    });

    it("the guard script installs the very same drop-in on running servers", () => {
        assert.ok(rendered.guard.includes(`<<'PLATFORM_SSHD_CONFIG'\n${rendered.dropin.replace(/\n$/, "")}\nPLATFORM_SSHD_CONFIG\n`));
    });

    it("a key login works (as root when the tests run as root: root logs in by key)", async () => {
        const r = await runSsh([...withKey(), dest(), "echo", "key-login-ok"]);
        assert.strictEqual(r.status, 0, r.stderr);
        assert.strictEqual(r.stdout.trim(), "key-login-ok");
    });

    it("an exec session streams both ways (what `docker system dial-stdio` and @pulumi/command use)", async () => {
        const payload = "x".repeat(200000) + "\nend\n";
        const r = await runSsh([...withKey(), dest(), "cat"], { input: payload });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.strictEqual(r.stdout, payload);
    });

    for (const method of ["password", "keyboard-interactive"]) {
        it(`${method} is not offered: the server lists publickey only and the login is refused`, async () => {
            const r = await runSsh([...base(), "-v", "-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no", "-o", `PreferredAuthentications=${method}`, dest(), "true"]);
            assert.strictEqual(r.status, 255);
            assert.match(r.stderr, /Authentications that can continue: publickey\r?\n/);
            assert.match(r.stderr, /Permission denied \(publickey\)/);
            assert.doesNotMatch(r.stderr, new RegExp(`Next authentication method: ${method}`));
        });
    }

    /** A scripted password attempt: ssh may ask SSH_ASKPASS (no terminal), which answers a password. */
    async function scriptedPasswordAttempt(target: Sshd, knownHostsFile: string) {
        const marker = path.join(dir, `askpass-called-${target.port}`);
        const askpass = path.join(dir, "askpass.sh");
        fs.writeFileSync(askpass, `#!/bin/sh\necho "$1" >> '${marker}'\necho 'hunter2'\n`, { mode: 0o755 });
        const r = await runSsh(
            ["-v", "-p", String(target.port), "-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${knownHostsFile}`, "-o", "BatchMode=no",
             "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=keyboard-interactive,password", "-o", "NumberOfPasswordPrompts=1",
             `${user}@${target.address}`, "true"],
            { env: { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: "force", DISPLAY: ":0" } },
        );
        return { ...r, asked: fs.existsSync(marker) ? fs.readFileSync(marker, "utf8") : "" };
    }

    it("a scripted password login (SSH_ASKPASS) is never even asked for a password", async () => {
        const r = await scriptedPasswordAttempt(sshd, knownHosts);
        assert.strictEqual(r.status, 255);
        assert.strictEqual(r.asked, "", "ssh asked for a password: the server offered a password method");
        assert.match(r.stderr, /Authentications that can continue: publickey\r?\n/);
        assert.match(r.stderr, /No more authentication methods to try/);
    });

    it("the same scripted attempt against a password-enabled sshd is asked for a password (the probe works)", async () => {
        const loose = await startSshd({ dir, name: "loose", dropins: [{ name: "60-loosen.conf", content: LOOSENING_DROPIN }], authorizedKeys: "" });
        try {
            const kh = path.join(dir, "known_hosts_loose");
            fs.writeFileSync(kh, knownHostsLine(loose.address, loose.hostPublicKey, loose.port) + "\n");
            const r = await scriptedPasswordAttempt(loose, kh);
            assert.notStrictEqual(r.status, 0);
            assert.match(r.asked, /password/i, r.stderr);
            assert.match(r.stderr, /Authentications that can continue: .*password/);
        } finally {
            await loose.stop();
        }
    });

    it(`MaxAuthTries: a client offering more than three wrong keys is cut off before the right one`, async () => {
        const ids = wrongIdentities.flatMap((f) => ["-i", f]);
        const r = await runSsh([...base(), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", ...ids, "-i", identity, dest(), "true"]);
        assert.strictEqual(r.status, 255);
        assert.match(r.stderr, /Too many authentication failures/);
    });

    /** Holds `ssh -N` with `forward` and returns it once its local side listens (or it exited). */
    async function forwardProcess(forwardArgs: string[], localPort?: number): Promise<{ child: ChildProcess; stderr: () => string; exited: () => boolean }> {
        const child = spawn("setsid", ["-w", "ssh", ...withKey("-v", "-N", "-o", "ExitOnForwardFailure=yes", ...forwardArgs), dest()], { stdio: ["ignore", "ignore", "pipe"] });
        children.push(child);
        let stderr = "";
        child.stderr!.on("data", (d) => (stderr += d));
        let exited = false;
        child.once("exit", () => (exited = true));
        const deadline = Date.now() + 10000;
        while (Date.now() < deadline && !exited) {
            if (localPort === undefined ? /Entering interactive session|remote forward (success|failure)/.test(stderr) : /Local forwarding listening on 127\.0\.0\.1 port/.test(stderr)) break;
            await sleep(50);
        }
        return { child, stderr: () => stderr, exited: () => exited };
    }

    it("the admin channel's forward (-L to 127.0.0.1:5432) is allowed", async () => {
        // Something on 5432 lets the bytes be checked; when another process owns the port, the
        // forward still must not be refused by sshd (it then reaches whatever listens there).
        const echo = await echoServer("127.0.0.1", 5432);
        const local = await freePort();
        const fwd = await forwardProcess(["-L", `127.0.0.1:${local}:127.0.0.1:5432`], local);
        try {
            const back = await roundTrip(local, "ping-through-forward");
            if (echo) assert.strictEqual(back, "ping-through-forward");
            await sleep(200);
            assert.doesNotMatch(fwd.stderr(), /administratively prohibited/);
        } finally {
            fwd.child.kill();
            echo?.close();
        }
    });

    for (const [label, target] of [
        ["another port on loopback", "127.0.0.1:PORT"],
        ["the same port by another name", "localhost:5432"],
        ["another host", "127.0.0.2:5432"],
    ] as const) {
        it(`a forward to ${label} is refused by sshd`, async () => {
            const echoPort = await freePort();
            const echo = label === "another port on loopback" ? await echoServer("127.0.0.1", echoPort) : undefined;
            const local = await freePort();
            const fwd = await forwardProcess(["-L", `127.0.0.1:${local}:${target.replace("PORT", String(echoPort))}`], local);
            try {
                const back = await roundTrip(local, "must-not-arrive");
                assert.strictEqual(back, "");
                await sleep(200);
                assert.match(fwd.stderr(), /administratively prohibited/);
            } finally {
                fwd.child.kill();
                echo?.close();
            }
        });
    }

    it("a forward to a Unix socket (e.g. the Docker socket) is refused", async () => {
        // A live socket that would echo: if sshd forwarded to it, the bytes would come back.
        const socketPath = path.join(dir, "docker.sock");
        let reached = 0;
        const server = net.createServer((s) => (reached++, s.pipe(s)));
        await new Promise<void>((r) => server.listen(socketPath, () => r()));
        const local = await freePort();
        const fwd = await forwardProcess(["-L", `127.0.0.1:${local}:${socketPath}`], local);
        try {
            assert.strictEqual(await roundTrip(local, "GET /info HTTP/1.0\r\n\r\n"), "");
            await sleep(200);
            assert.match(fwd.stderr(), /channel \d+: open failed/);
            assert.strictEqual(reached, 0, "sshd connected to the socket");
        } finally {
            fwd.child.kill();
            server.close();
        }
    });

    it("a remote forward (-R) is refused", async () => {
        const fwd = await forwardProcess(["-R", "127.0.0.1:0:127.0.0.1:22"]);
        const deadline = Date.now() + 10000;
        while (!fwd.exited() && Date.now() < deadline) await sleep(50);
        fwd.child.kill();
        assert.ok(fwd.exited(), "ssh exits: ExitOnForwardFailure");
        assert.match(fwd.stderr(), /remote port forwarding failed|Error: remote port forwarding failed/);
    });

    it("agent forwarding is not granted", async () => {
        const sock = path.join(dir, "agent.sock");
        const agent = spawn("ssh-agent", ["-D", "-a", sock], { stdio: "ignore" });
        children.push(agent);
        try {
            for (let i = 0; i < 50 && !fs.existsSync(sock); i++) await sleep(50);
            const r = await runSsh([...withKey("-A"), dest(), 'echo "agent=${SSH_AUTH_SOCK:-none}"'], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
            assert.strictEqual(r.status, 0, r.stderr);
            assert.strictEqual(r.stdout.trim(), "agent=none");
        } finally {
            agent.kill();
        }
    });
});
