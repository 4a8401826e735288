// The pinned SSH must not read the operator's ssh config (issue 20, point 11): a ~/.ssh/config that
// accepts any host key (KnownHostsCommand printing whatever key the server shows, a
// GlobalKnownHostsFile holding the impostor's key) or redirects the connection (Port, Hostname,
// ProxyCommand) must change nothing. The hostile config is bind-mounted over /root/.ssh in a private
// mount namespace (`unshare -m`) of the ssh process only: ssh finds ~ through the password database,
// not $HOME, and nothing outside that namespace sees it. Against real OpenSSH servers on loopback.
import * as assert from "assert";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderSshdHardening } from "../render/cloudInit";
import { knownHostsLine, strictSshOptions } from "../io/sshFiles";
import { pinnedSsh } from "../io/hostAccess";
import { requireBinary } from "./support/edge";
import { SSHD, Sshd, keygen, randomLoopbackAddress, startSshd } from "./support/sshd";

/** Runs ssh with `args` while /root/.ssh is `sshHome` (private mount namespace); resolves its status and stderr. */
function sshUnderConfig(sshHome: string, args: readonly string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
    const script = 'mount --bind "$1" "$(getent passwd "$(id -u)" | cut -d: -f6)/.ssh" && shift && exec setsid -w ssh "$@"';
    return new Promise((resolve) => {
        const child = spawn("unshare", ["-m", "--propagation", "private", "sh", "-c", script, "sh", sshHome, ...args], { stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        const timer = setTimeout(() => child.kill("SIGKILL"), 20000);
        child.on("close", (status) => {
            clearTimeout(timer);
            resolve({ status, stdout, stderr });
        });
    });
}

describe("pinned SSH under a hostile ~/.ssh/config (real OpenSSH)", function () {
    this.timeout(120000);
    let dir: string;
    let impostor: Sshd | undefined;
    let decoy: Sshd | undefined;
    let hostile: string;
    let pinnedFile: string;
    let identity: string;
    const address = randomLoopbackAddress();
    const decoyAddress = randomLoopbackAddress();

    before(async function () {
        if (!fs.existsSync(SSHD)) requireBinary(this, "sshd");
        for (const bin of ["ssh", "unshare", "setsid"]) requireBinary(this, bin);
        if (process.getuid?.() !== 0 || spawnSync("unshare", ["-m", "true"]).status !== 0) {
            if (process.env.CI === "true") throw new Error("this suite needs root and mount namespaces (unshare -m)");
            console.warn("\n  !!! SKIPPING: needs root and unshare -m (a private mount namespace). CI fails without it. !!!\n");
            this.skip();
        }
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-ssh-hostile-"));
        identity = path.join(dir, "id");
        const publicKey = keygen(identity);
        const dropins = [{ name: "00-platform.conf", content: renderSshdHardening({ permitOpen: ["127.0.0.1:5432"] }) }];
        // The impostor answers at host 0's address with a key of its own; the pin names another key.
        impostor = await startSshd({ dir, name: "impostor", address, port: 22, dropins, authorizedKeys: publicKey + "\n" });
        decoy = await startSshd({ dir, name: "decoy", address: decoyAddress, port: 22, dropins, authorizedKeys: publicKey + "\n" });
        const pinnedKey = keygen(path.join(dir, "real-host-key"));
        pinnedFile = path.join(dir, "known_hosts");
        fs.writeFileSync(pinnedFile, knownHostsLine(address, pinnedKey.split(/\s+/).slice(0, 2).join(" ")) + "\n", { mode: 0o600 });

        // The operator's ssh config, as an attacker (or a careless dotfile) left it.
        hostile = path.join(dir, "dot-ssh");
        fs.mkdirSync(hostile, { mode: 0o700 });
        const accepting = path.join(dir, "accept-anything.sh");
        fs.writeFileSync(accepting, `#!/bin/sh\n# prints the key the server showed as known: accepts anything\necho "$1 $2 $3"\n`, { mode: 0o755 });
        const globalFile = path.join(dir, "global_known_hosts");
        fs.writeFileSync(globalFile, `${address} ${impostor.hostPublicKey}\n${decoyAddress} ${decoy.hostPublicKey}\n`);
        fs.writeFileSync(
            path.join(hostile, "config"),
            [`Host *`, `  KnownHostsCommand ${accepting} %H %t %K`, `  GlobalKnownHostsFile ${globalFile}`, `  StrictHostKeyChecking no`, `  LogLevel QUIET`, ""].join("\n"),
            { mode: 0o600 },
        );
        // Premise: under that config, plain ssh accepts the impostor.
        const plain = await sshUnderConfig(hostile, ["-o", "BatchMode=yes", "-o", `UserKnownHostsFile=${pinnedFile}`, "-i", identity, `root@${address}`, "echo", "reached"]);
        assert.strictEqual(plain.stdout.trim(), "reached", `the hostile config must be effective for the premise: ${plain.stderr}`);
    });

    after(async () => {
        await impostor?.stop();
        await decoy?.stop();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("the program's options refuse the impostor: the pinned key rules, not KnownHostsCommand nor GlobalKnownHostsFile", async () => {
        const r = await sshUnderConfig(hostile, [...strictSshOptions(pinnedFile, identity), `root@${address}`, "echo", "reached"]);
        assert.notStrictEqual(r.status, 0);
        assert.strictEqual(r.stdout.trim(), "", "no command ran on the impostor");
        assert.match(r.stderr, /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No ED25519 host key is known/);
    });

    it("the operator commands' pinned options (io/hostAccess.ts) refuse it too", async () => {
        const fakeState = fs.readFileSync(pinnedFile, "utf8").trim().split(/\s+/).slice(1).join(" ");
        const p = pinnedSsh({ project: "platform", stack: "hostile", address, hostKey: fakeState, env: { PLATFORM_SSH_DIR: path.join(dir, "ssh-files") } });
        try {
            const r = await sshUnderConfig(hostile, [...p.options, "-i", identity, p.destination, "echo", "reached"]);
            assert.notStrictEqual(r.status, 0);
            assert.strictEqual(r.stdout.trim(), "");
        } finally {
            p.cleanup();
        }
    });

    it("a config that redirects the host (Hostname, Port, ProxyCommand) changes nothing either", async () => {
        fs.writeFileSync(path.join(hostile, "config"), [`Host *`, `  Hostname ${decoyAddress}`, `  Port 2`, `  ProxyCommand /bin/false`, ""].join("\n"), { mode: 0o600 });
        // Pinned to the decoy's real key at host 0's address: reaching the decoy through the config would be refused,
        // reaching host 0 (the impostor, another key) too; what matters is that ssh talked to the address it was given.
        fs.writeFileSync(pinnedFile, knownHostsLine(address, impostor!.hostPublicKey) + "\n", { mode: 0o600 });
        const r = await sshUnderConfig(hostile, [...strictSshOptions(pinnedFile, identity), `root@${address}`, "echo", "reached"]);
        assert.strictEqual(r.stdout.trim(), "reached", r.stderr);
    });
});
