// What a `pulumi preview` of an existing stack needs, proved on the real engine (issue 20, item 6): the
// pull_request preview runs with no SSH key and no way to write state, so nothing it does may need either.
//
// A throwaway program shaped like the prod host's: a remote.Command and a Docker provider over ssh://,
// with a RemoteImage, a Network, a Volume and a Container, neither given a private key. `up` reaches a
// real sshd on loopback with the key held only by an ssh-agent (SSH_AUTH_SOCK): both the command
// provider and the Docker provider's ssh use the agent, and no key lands in config or state. Then the
// agent and sshd are gone and the program changes (a new script, a new label): the preview still plans
// every change, and writes nothing to the backend (a read-only mount of the state when this machine
// allows one, and a byte-for-byte comparison of every state file in any case). The `up` that follows
// fails: the connection is needed to change things, never to plan them.
//
// Why, in the sources of the versions pinned here: pulumi-command dials only in Create/Update/Delete, and
// with no privateKey nor agentSocketPath signs with SSH_AUTH_SOCK (remote/connection.go,
// tryGetDefaultAgentSocket); the Docker provider's Configure builds no client and, for ssh://, pings
// nothing (MakeClient is lazy, per resource operation; kreuzwerker's docker_container, _image, _network
// and _volume have no CustomizeDiff); the self-managed backend's Preview takes no lock (only Update and
// the other writing operations call Lock) and, as a dry run, keeps no snapshot manager and writes no
// history or backup (pkg/backend/diy/backend.go, apply). There is no PULUMI_SELF_MANAGED_STATE_LOCKING
// switch in 3.276: the lock is unconditional for updates and absent for previews.
//
// Needs the Pulumi CLI with the nodejs language host, the docker and command plugins at the versions
// package-lock.json pins, sshd, ssh-agent and a Docker engine. A missing one skips loudly; OpenSSH
// fails under CI=true, the Pulumi toolchain (as for the e2e suite) with PLATFORM_E2E=require.
import * as assert from "assert";
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { BUSYBOX_IMAGE, cleanupByLabel, docker, ensureBusyboxImage, requireDocker } from "./support/docker";
import { keygen, Sshd, SSHD, startSshd } from "./support/sshd";

const root = path.join(__dirname, "..");
const STACK = "previewcreds";

const PROGRAM = `"use strict";
const pulumi = require("@pulumi/pulumi");
const command = require("@pulumi/command");
const docker = require("@pulumi/docker");
const c = new pulumi.Config();
const host = c.require("host"), port = c.requireNumber("port"), id = c.require("testId");
const script = c.require("script");
// No privateKey and no agentSocketPath, as components/scalewayHost.ts without platform:sshPrivateKey.
const cmd = new command.remote.Command("cmd", { connection: { host, port, user: "root", dialErrorLimit: 1, perDialTimeout: 5 }, create: script, update: script });
const provider = new docker.Provider("remote", {
    host: "ssh://root@" + host + ":" + port,
    sshOpts: ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"],
});
const labels = [{ label: "platform.test", value: id }];
const image = new docker.RemoteImage("image", { name: c.require("image"), keepLocally: true }, { provider });
const network = new docker.Network("net", { name: "preview-net-" + id, labels }, { provider });
const volume = new docker.Volume("vol", { name: "preview-vol-" + id, labels }, { provider });
new docker.Container("ctr", {
    name: "preview-ctr-" + id,
    image: image.imageId,
    command: ["sleep", "3600"],
    networksAdvanced: [{ name: network.name }],
    volumes: [{ volumeName: volume.name, containerPath: "/data" }],
    labels: [...labels, { label: "preview.generation", value: c.require("generation") }],
}, { provider });
exports.said = cmd.stdout;
`;

/**
 * A missing prerequisite skips loudly. What CI installs itself (OpenSSH) fails under CI=true; the
 * Pulumi CLI, its language host and the plugins are the end-to-end suite's toolchain, which no
 * package repository serves: like tests/e2e.real.test.ts, their absence fails only with PLATFORM_E2E=require.
 */
function requireOrSkip(ctx: Mocha.Context, problem: string | undefined, requiredWhen: boolean): void {
    if (problem === undefined) return;
    if (requiredWhen) throw new Error(`${problem}; this suite needs it here`);
    console.warn(`\n  !!! SKIPPING: ${problem}. !!!\n`);
    ctx.skip();
}

function missingOpenSsh(): string | undefined {
    for (const bin of ["ssh-agent", "ssh-add", SSHD]) {
        if (spawnSync("sh", ["-c", `command -v ${bin}`]).status !== 0) return `${bin} is not installed`;
    }
    return undefined;
}

function missingToolchain(): string | undefined {
    for (const bin of ["pulumi", "pulumi-language-nodejs"]) {
        if (spawnSync("sh", ["-c", `command -v ${bin}`]).status !== 0) return `${bin} is not installed`;
    }
    const plugins = spawnSync("pulumi", ["plugin", "ls", "--json"], { encoding: "utf8", env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: "true" } });
    if (plugins.status !== 0) return `pulumi plugin ls failed: ${plugins.stderr}`;
    const installed = (JSON.parse(plugins.stdout) as { name: string; version: string }[]).map((p) => `${p.name}@${p.version}`);
    for (const name of ["docker", "command"]) {
        const version = (JSON.parse(fs.readFileSync(path.join(root, "node_modules", "@pulumi", name, "package.json"), "utf8")) as { version: string }).version;
        if (!installed.includes(`${name}@${version}`)) return `the ${name} plugin ${version} is not installed (pulumi plugin install resource ${name} ${version})`;
    }
    return undefined;
}

/** Every file under `dir`, with its sha256: what a read-only credential would have to leave alone. */
function snapshot(dir: string): Map<string, string> {
    const files = new Map<string, string>();
    const walk = (d: string) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
            const p = path.join(d, e.name);
            if (e.isDirectory()) walk(p);
            else files.set(path.relative(dir, p), crypto.createHash("sha256").update(fs.readFileSync(p)).digest("hex"));
        }
    };
    walk(dir);
    return files;
}

describe("a preview of an existing stack needs no SSH key, no server and no write access to state (real engine)", function () {
    this.timeout(600_000);
    const id = `pv${process.pid}${Date.now().toString(36)}`;
    let dir: string;
    let work: string;
    let state: string;
    let sshd: Sshd | undefined;
    let agent: ChildProcess | undefined;
    let agentSock: string;
    let env: NodeJS.ProcessEnv;
    let readOnlyMount: string | undefined;

    const pulumi = (args: string[], extra: NodeJS.ProcessEnv = {}, timeout = 300_000) => {
        const started = Date.now();
        const r = spawnSync("pulumi", [...args, "--stack", STACK, "--non-interactive", "--color", "never"], { cwd: work, env: { ...env, ...extra }, encoding: "utf8", timeout });
        return { status: r.status, out: `${r.stdout}\n${r.stderr}`, stdout: r.stdout, ms: Date.now() - started };
    };
    const config = (key: string, value: string) => assert.strictEqual(pulumi(["config", "set", key, value]).status, 0, key);

    before(async function () {
        requireOrSkip(this, missingOpenSsh(), process.env.CI === "true");
        requireOrSkip(this, missingToolchain(), process.env.PLATFORM_E2E === "require");
        requireDocker(this);
        ensureBusyboxImage(this);
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-preview-"));
        work = path.join(dir, "project");
        state = path.join(dir, "state");
        fs.mkdirSync(work);
        fs.mkdirSync(state);
        fs.writeFileSync(path.join(work, "Pulumi.yaml"), "name: previewcreds\nruntime: nodejs\nmain: index.js\n");
        fs.writeFileSync(path.join(work, "package.json"), '{ "name": "previewcreds", "private": true }\n');
        fs.writeFileSync(path.join(work, "index.js"), PROGRAM);
        fs.symlinkSync(path.join(root, "node_modules"), path.join(work, "node_modules"));

        // The key exists on disk only until the agent holds it: afterwards nothing but the agent can sign.
        const keyFile = path.join(dir, "id");
        const publicKey = keygen(keyFile);
        sshd = await startSshd({ dir, dropins: [{ name: "10-keys.conf", content: "PermitRootLogin prohibit-password\nPasswordAuthentication no\n" }], authorizedKeys: `${publicKey}\n` });
        agentSock = path.join(dir, "agent.sock");
        agent = spawn("ssh-agent", ["-D", "-a", agentSock], { stdio: "ignore" });
        for (let i = 0; i < 100 && !fs.existsSync(agentSock); i++) await new Promise((r) => setTimeout(r, 50));
        execFileSync("ssh-add", ["-q", keyFile], { env: { ...process.env, SSH_AUTH_SOCK: agentSock }, stdio: "ignore" });
        fs.rmSync(keyFile);
        fs.rmSync(`${keyFile}.pub`);

        env = {
            ...process.env,
            PULUMI_BACKEND_URL: `file://${state}`,
            PULUMI_CONFIG_PASSPHRASE: "test-only",
            PULUMI_SKIP_UPDATE_CHECK: "true",
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
            SSH_AUTH_SOCK: agentSock,
        };
        const init = pulumi(["stack", "init"]);
        assert.strictEqual(init.status, 0, init.out);
        config("host", sshd.address);
        config("port", String(sshd.port));
        config("testId", id);
        config("image", BUSYBOX_IMAGE);
        config("script", "echo signed-by-the-agent");
        config("generation", "1");
    });

    after(async () => {
        if (readOnlyMount !== undefined) spawnSync("umount", [readOnlyMount]);
        agent?.kill();
        await sshd?.stop();
        cleanupByLabel(id);
        spawnSync("docker", ["volume", "rm", "-f", `preview-vol-${id}`], { stdio: "ignore" });
        if (dir !== undefined && readOnlyMount === undefined) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("up: the command provider and the Docker provider's ssh sign with the agent; no key is in config or state", () => {
        const up = pulumi(["up", "--yes", "--skip-preview"]);
        assert.strictEqual(up.status, 0, up.out);
        assert.strictEqual(pulumi(["stack", "output", "said"]).stdout.trim(), "signed-by-the-agent");
        assert.strictEqual(docker("inspect", "-f", "{{index .Config.Labels \"preview.generation\"}}", `preview-ctr-${id}`), "1");
        const everything = pulumi(["stack", "export", "--show-secrets"]).stdout + fs.readFileSync(path.join(work, `Pulumi.${STACK}.yaml`), "utf8");
        assert.doesNotMatch(everything, /PRIVATE KEY|privateKey"\s*:\s*"[^"]/, "neither state nor config holds a key");
    });

    it("preview, with the agent and the server gone: every change is planned, and nothing is written to the state", async () => {
        agent?.kill();
        agent = undefined;
        await sshd!.stop();
        config("script", "echo a-new-script");
        config("generation", "2");
        const before = snapshot(state);

        // A read-only view of the same state, when this machine lets us mount one (root, mount allowed).
        let backend = state;
        const ro = path.join(dir, "state-ro");
        fs.mkdirSync(ro);
        if (spawnSync("mount", ["--bind", state, ro]).status === 0) {
            readOnlyMount = ro;
            if (spawnSync("mount", ["-o", "remount,bind,ro", ro]).status === 0) backend = ro;
        }
        if (backend === state) console.warn("\n  !!! no read-only mount here (needs root): the state is compared byte for byte only. !!!\n");
        else assert.notStrictEqual(spawnSync("touch", [path.join(ro, "probe")]).status, 0, "the mount is read-only");

        const preview = pulumi(["preview", "--json"], { SSH_AUTH_SOCK: "", PULUMI_BACKEND_URL: `file://${backend}` });
        assert.strictEqual(preview.status, 0, preview.out);
        const plan = JSON.parse(preview.stdout) as { steps: { op: string; urn: string }[]; changeSummary: Record<string, number> };
        const planned = plan.steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${s.urn.split("::").pop()}`);
        // The script's change is an update, the label's a replacement (a container's labels force a new one).
        assert.deepStrictEqual(planned, ["update cmd", "replace ctr"], preview.stdout);
        // Unchanged: the stack, the Docker provider (same settings, so configured with them), image, network, volume.
        assert.deepStrictEqual(plan.changeSummary, { same: 5, update: 1, replace: 1 }, preview.stdout);
        // Nothing waited on a dial: the command allows one attempt of 5 s, ssh a 5 s connect timeout.
        console.log(`      preview of the changed program: ${plan.steps.length} steps in ${preview.ms} ms, no agent, no server`);

        assert.deepStrictEqual(snapshot(state), before, "the preview wrote nothing to the backend (no lock, no history, no checkpoint)");
        if (readOnlyMount !== undefined) {
            spawnSync("umount", [readOnlyMount]);
            readOnlyMount = undefined;
        }
    });

    it("up, in the same conditions, fails: changing the server needs the connection a preview never opens", () => {
        const up = pulumi(["up", "--yes", "--skip-preview"], { SSH_AUTH_SOCK: "" });
        assert.notStrictEqual(up.status, 0, up.out);
        // Both providers tried, each with its own connection: the Docker client's ssh, the command's dial.
        assert.match(up.out, /Error pinging Docker server[^\n]*Connection refused/, up.out);
        assert.match(up.out, /command:remote:Command cmd[^\n]*dial tcp [^\n]*connection refused/, up.out);
    });
});
