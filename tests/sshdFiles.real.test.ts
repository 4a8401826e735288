// The SSH files the Docker provider's options name must outlive the program: Pulumi runs the deletes
// of replaced and removed resources after the program process has exited, with the same options. A
// child process runs the program's ScalewayHost (under mocks, against a real hardened sshd on
// 127.x.y.z:22) and exits; afterwards ssh with exactly the provider's options, and the key in an
// ssh-agent only (the program writes no identity file), must still log in, and must still refuse a
// server with another host key. Also: atomic writes, no rewrite when unchanged, and the validation of
// everything that reaches those options.
import * as assert from "assert";
import { ChildProcess, execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { ScalewayHost } from "../components/scalewayHost";
import { renderSshdHardening } from "../render/cloudInit";
import { SSH_DIR_ENV, stackSshDirectory, writeFileAtomically, writeStackSshFiles } from "../io/sshFiles";
import { requireBinary, sleep } from "./support/edge";
import { SSHD, Sshd, keygen, randomLoopbackAddress, runSsh, startSshd } from "./support/sshd";

const CHILD_FLAG = "--ssh-files-child";

interface ChildInput {
    readonly stack: string;
    readonly address: string;
    readonly hostKey: string;
    readonly publicKey: string;
    readonly outFile: string;
}

/** The program's part that writes the files: ScalewayHost, with the state a deployed stack has. */
async function childProgram(input: ChildInput): Promise<void> {
    const captured: { sshOpts?: string; host?: string } = {};
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                const state: Record<string, unknown> = { ...args.inputs };
                if (args.type === "scaleway:instance/ip:Ip") state.address = input.address;
                if (args.type === "command:remote:Command") state.stdout = args.name.endsWith("wait-for-docker") ? `cloud-init done\n${input.hostKey} root@host\n` : "";
                if (args.type === "pulumi:providers:docker") Object.assign(captured, { sshOpts: args.inputs.sshOpts, host: args.inputs.host });
                return { id: `${args.name}-id`, state };
            },
            call: (args) => args.inputs,
        },
        "platform",
        input.stack,
        false,
    );
    new ScalewayHost("host", {
        instanceType: "DEV1-M",
        sshPublicKey: input.publicKey,
        adminCidrs: ["203.0.113.10/32"],
    });
    for (let i = 0; i < 100 && captured.sshOpts === undefined; i++) await sleep(50);
    fs.writeFileSync(input.outFile, JSON.stringify(captured));
    // Then the process ends, as the program does before the engine's deletes.
}

if (require.main === module && process.argv.includes(CHILD_FLAG)) {
    childProgram(JSON.parse(process.argv[process.argv.indexOf(CHILD_FLAG) + 1])).then(
        () => process.exit(0),
        (e) => {
            console.error(e);
            process.exit(1);
        },
    );
}

/** Runs the program part in its own process, which exits; resolves with the Docker provider's inputs. */
function runProgramProcess(input: Omit<ChildInput, "outFile">, dir: string): Promise<{ sshOpts: string[]; host: string }> {
    const outFile = path.join(dir, `out-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
    return new Promise((resolve, reject) => {
        const child: ChildProcess = spawn(process.execPath, ["-r", "ts-node/register", __filename, CHILD_FLAG, JSON.stringify({ ...input, outFile })], {
            cwd: path.join(__dirname, ".."),
            stdio: ["ignore", "ignore", "pipe"],
            env: { ...process.env, [SSH_DIR_ENV]: "" },
        });
        let err = "";
        child.stderr!.on("data", (d) => (err += d));
        const timer = setTimeout(() => child.kill("SIGKILL"), 90000);
        child.on("close", (code) => {
            clearTimeout(timer);
            if (code !== 0) return reject(new Error(`program process failed (${code}): ${err}`));
            const out = JSON.parse(fs.readFileSync(outFile, "utf8"));
            resolve({ sshOpts: JSON.parse(out.sshOpts), host: out.host });
        });
    });
}

if (require.main !== module) {
    describe("SSH files outlive the program (real OpenSSH, the provider's exact options)", function () {
        this.timeout(180000);
        let dir: string;
        let sshd: Sshd | undefined;
        let stack: string;
        let stackDir: string;
        const address = randomLoopbackAddress();
        let input: Omit<ChildInput, "outFile">;
        let impostorHostKey: string;
        let agent: ChildProcess | undefined;
        /** The environment of every ssh below: the key is in this agent and nowhere else. */
        let agentEnv: NodeJS.ProcessEnv;

        before(async function () {
            if (!fs.existsSync(SSHD)) requireBinary(this, "sshd");
            requireBinary(this, "ssh");
            if (process.getuid?.() !== 0) {
                // Port 22 on a loopback address and a root login, as the provider uses them.
                if (process.env.CI === "true") throw new Error("this suite needs root (sshd on 127.x.y.z:22, root login by key)");
                console.warn("\n  !!! SKIPPING: needs root (sshd on port 22, root login). CI fails without it. !!!\n");
                this.skip();
            }
            dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-sshfiles-"));
            const publicKey = keygen(path.join(dir, "id"));
            const sock = path.join(dir, "agent.sock");
            agent = spawn("ssh-agent", ["-D", "-a", sock], { stdio: "ignore" });
            for (let i = 0; i < 100 && !fs.existsSync(sock); i++) await sleep(50);
            agentEnv = { ...process.env, SSH_AUTH_SOCK: sock };
            execFileSync("ssh-add", ["-q", path.join(dir, "id")], { env: agentEnv, stdio: "ignore" });
            fs.rmSync(path.join(dir, "id"));
            keygen(path.join(dir, "impostor_host_key"));
            impostorHostKey = path.join(dir, "impostor_host_key");
            sshd = await startSshd({ dir, name: "real", address, port: 22, dropins: [{ name: "00-platform.conf", content: renderSshdHardening() }], authorizedKeys: publicKey + "\n" });
            stack = `sshfiles-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
            stackDir = stackSshDirectory("platform", stack, {}).absolute;
            input = { stack, address, hostKey: sshd.hostPublicKey, publicKey };
            // An identity a former platform:sshPrivateKey left in the stack's directory: the program removes it.
            fs.mkdirSync(stackDir, { recursive: true, mode: 0o700 });
            fs.writeFileSync(path.join(stackDir, "id"), "stale\n", { mode: 0o600 });
        });

        after(async () => {
            agent?.kill();
            await sshd?.stop();
            if (stackDir) fs.rmSync(stackDir, { recursive: true, force: true });
            if (dir) fs.rmSync(dir, { recursive: true, force: true });
        });

        let options: { sshOpts: string[]; host: string };

        it("after the program process exits, ssh with exactly the provider's options logs in (the agent's key + pinned host key)", async () => {
            options = await runProgramProcess(input, dir);
            assert.strictEqual(options.host, `ssh://root@${address}`);
            assert.ok(options.sshOpts.includes(`UserKnownHostsFile=~/.ssh/platform/platform/${stack}/known_hosts`), options.sshOpts.join(" "));
            assert.ok(!options.sshOpts.includes("-i"), `no identity file: ${options.sshOpts.join(" ")}`);
            const r = await runSsh([...options.sshOpts, `root@${address}`, "echo", "still-here"], { env: agentEnv });
            assert.strictEqual(r.status, 0, r.stderr);
            assert.strictEqual(r.stdout.trim(), "still-here");
            // What the Docker provider does: an exec session that streams both ways.
            const stream = await runSsh([...options.sshOpts, `root@${address}`, "cat"], { input: "dial-stdio stand-in\n", env: agentEnv });
            assert.strictEqual(stream.stdout, "dial-stdio stand-in\n", stream.stderr);
        });

        it("without the agent the same options are refused: no key is on disk for ssh to find", async () => {
            const r = await runSsh([...options.sshOpts, `root@${address}`, "echo", "must-not-run"], { env: { ...process.env, SSH_AUTH_SOCK: "" } });
            assert.strictEqual(r.status, 255);
            assert.match(r.stderr, /Permission denied/);
        });

        it("the files are private: 0700 directory, a 0600 known_hosts and nothing else (the stale identity is gone), under the user's home", () => {
            assert.strictEqual(stackDir, path.join(os.userInfo().homedir, ".ssh", "platform", "platform", stack));
            assert.strictEqual(fs.statSync(stackDir).mode & 0o777, 0o700);
            assert.deepStrictEqual(fs.readdirSync(stackDir).sort(), ["known_hosts"]);
            assert.strictEqual(fs.statSync(path.join(stackDir, "known_hosts")).mode & 0o777, 0o600);
        });

        it("a second run with the same state gives the same options and does not rewrite the files", async () => {
            const before = ["known_hosts"].map((f) => fs.statSync(path.join(stackDir, f)));
            await sleep(20);
            const again = await runProgramProcess(input, dir);
            assert.deepStrictEqual(again, options);
            const after = ["known_hosts"].map((f) => fs.statSync(path.join(stackDir, f)));
            assert.deepStrictEqual(after.map((s) => [s.ino, s.mtimeMs]), before.map((s) => [s.ino, s.mtimeMs]));
        });

        it("a server with another host key at that address is refused, and nothing is added to known_hosts", async () => {
            const pinned = fs.readFileSync(path.join(stackDir, "known_hosts"), "utf8");
            await sshd!.stop();
            sshd = await startSshd({ dir, name: "impostor", address, port: 22, hostKey: impostorHostKey, dropins: [{ name: "00-platform.conf", content: renderSshdHardening() }], authorizedKeys: fs.readFileSync(path.join(dir, "id.pub"), "utf8") });
            const r = await runSsh([...options.sshOpts, `root@${address}`, "echo", "must-not-run"], { env: agentEnv });
            assert.strictEqual(r.status, 255);
            assert.match(r.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
            assert.strictEqual(r.stdout, "");
            assert.strictEqual(fs.readFileSync(path.join(stackDir, "known_hosts"), "utf8"), pinned);
        });

        it("a new host key in the state (server rebuilt, `pulumi refresh`) replaces the file atomically, and then connects", async () => {
            const old = fs.statSync(path.join(stackDir, "known_hosts"));
            const rebuilt = await runProgramProcess({ ...input, hostKey: sshd!.hostPublicKey }, dir);
            assert.deepStrictEqual(rebuilt.sshOpts, options.sshOpts, "the options (paths) stay the same");
            assert.notStrictEqual(fs.statSync(path.join(stackDir, "known_hosts")).ino, old.ino, "renamed into place, not rewritten in place");
            const r = await runSsh([...rebuilt.sshOpts, `root@${address}`, "echo", "rebuilt"], { env: agentEnv });
            assert.strictEqual(r.stdout.trim(), "rebuilt", r.stderr);
        });
    });

    describe("SSH file writing", function () {
        this.timeout(60000);
        let dir: string;
        before(() => {
            dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-sshwrite-"));
        });
        after(() => fs.rmSync(dir, { recursive: true, force: true }));

        /** A separate process reading `file` for `ms`; resolves with every distinct content it saw. */
        function readerProcess(file: string, ms: number): Promise<string[]> {
            const code = `const fs=require("fs");const seen=new Set();const end=Date.now()+${ms};while(Date.now()<end){try{seen.add(fs.readFileSync(${JSON.stringify(file)},"utf8"))}catch(e){seen.add("ERROR "+e.code)}}process.stdout.write(JSON.stringify([...seen].map(s=>s.length>60?s.slice(0,30)+"…"+s.length:s)))`;
            return new Promise((resolve) => {
                const child = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "pipe", "inherit"] });
                let out = "";
                child.stdout.on("data", (d) => (out += d));
                child.on("close", () => resolve(JSON.parse(out)));
            });
        }

        async function hammer(write: (file: string, content: string) => void): Promise<string[]> {
            const file = path.join(dir, `known_hosts-${Math.random().toString(36).slice(2)}`);
            const a = "a".repeat(400000);
            const b = "b".repeat(300000);
            write(file, a);
            const reading = readerProcess(file, 1500);
            const end = Date.now() + 1500;
            for (let i = 0; Date.now() < end; i++) {
                write(file, i % 2 ? a : b);
                await new Promise((r) => setImmediate(r));
            }
            return reading;
        }

        it("a reader in another process only ever sees a whole old or a whole new file", async () => {
            const seen = await hammer((f, c) => writeFileAtomically(f, c));
            for (const s of seen) assert.match(s, /^(a{30}…400000|b{30}…300000)$/, `partial or missing file seen: ${s}`);
            assert.strictEqual(seen.length, 2, `the reader saw both versions: ${seen}`);
        });

        it("plain writeFileSync (truncate, then write) shows readers partial files: the check can fail", async () => {
            const seen = await hammer((f, c) => fs.writeFileSync(f, c));
            assert.ok(seen.some((s) => !/^(a{30}…400000|b{30}…300000)$/.test(s)), `no partial read observed: ${seen}`);
        });

        it("no temporary file is left behind, and a file with loose permissions is rewritten 0600", () => {
            const file = path.join(dir, "perm");
            fs.writeFileSync(file, "same\n", { mode: 0o644 });
            assert.strictEqual(writeFileAtomically(file, "same\n"), true);
            assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600);
            assert.strictEqual(writeFileAtomically(file, "same\n"), false);
            assert.deepStrictEqual(fs.readdirSync(dir).filter((f) => f.endsWith(".tmp")), []);
        });

        it("removing the private key from the config removes the stack's identity file", () => {
            const env = { [SSH_DIR_ENV]: path.join(dir, "base") };
            const withKey = writeStackSshFiles({ project: "platform", stack: "prod", knownHosts: "1.2.3.4 ssh-ed25519 AAAA", privateKey: "KEY", env });
            assert.strictEqual(withKey.identityFile, path.join(dir, "base", "platform", "prod", "id"));
            assert.ok(fs.existsSync(withKey.identityFile!));
            const agent = writeStackSshFiles({ project: "platform", stack: "prod", knownHosts: "1.2.3.4 ssh-ed25519 AAAA", env });
            assert.strictEqual(agent.identityFile, undefined);
            assert.ok(!fs.existsSync(withKey.identityFile!));
        });

        it("two stacks never share a file", () => {
            const env = { [SSH_DIR_ENV]: path.join(dir, "two") };
            const a = writeStackSshFiles({ project: "platform", stack: "prod", knownHosts: "A", env });
            const b = writeStackSshFiles({ project: "platform", stack: "staging", knownHosts: "B", env });
            assert.notStrictEqual(a.knownHostsFile, b.knownHostsFile);
            assert.strictEqual(fs.readFileSync(a.knownHostsFile, "utf8"), "A\n");
        });

        it("refuses a symlinked stack directory (keys would land where it points)", () => {
            const base = path.join(dir, "sym");
            fs.mkdirSync(path.join(base, "platform"), { recursive: true });
            fs.mkdirSync(path.join(dir, "elsewhere"));
            fs.symlinkSync(path.join(dir, "elsewhere"), path.join(base, "platform", "prod"));
            assert.throws(() => writeStackSshFiles({ project: "platform", stack: "prod", knownHosts: "A", privateKey: "KEY", env: { [SSH_DIR_ENV]: base } }), /symlink/);
            assert.deepStrictEqual(fs.readdirSync(path.join(dir, "elsewhere")), []);
        });

        for (const stack of ["../escape", "a/b", "prod name", "pr%d", "$HOME", "", ".", ".."]) {
            it(`refuses stack name ${JSON.stringify(stack)} in a path ssh reads`, () => {
                assert.throws(() => stackSshDirectory("platform", stack, {}), /cannot name a directory/);
            });
        }
        for (const base of ["relative/dir", "/tmp/with space", "/tmp/%d", "/tmp/${HOME}", "/tmp/a\nb", '/tmp/"q"']) {
            it(`refuses ${SSH_DIR_ENV}=${JSON.stringify(base)}`, () => {
                assert.throws(() => stackSshDirectory("platform", "prod", { [SSH_DIR_ENV]: base }), new RegExp(SSH_DIR_ENV));
            });
        }
    });
}
