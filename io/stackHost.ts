// How the day-2 commands (status, releases, rollback, logs, exec) reach a stack: its outputs and state
// through the Pulumi CLI, its recorded history through git, and its hosts' Docker engines: the local
// engine for the local stack, each Scaleway host over SSH with the host key the program pinned
// (io/hostAccess.ts), never the operator's ssh config. Every remote command is a list of words, each
// quoted for the remote shell (render/shell.ts); values are checked before they get here.
import { SpawnOptions, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { shellQuote } from "../render/shell";
import { StackConfigVersion } from "../render/day2";
import { HOST_ZERO_TYPE, pinnedSsh, projectName } from "./hostAccess";
import { HOST_SCRIPTS_DIR } from "../hostScripts";

/** The project's root (also when this runs precompiled from dist/). */
export const REPO_ROOT = path.dirname(HOST_SCRIPTS_DIR);

export interface RunResult {
    readonly status: number;
    readonly stdout: string;
    readonly stderr: string;
}

/** A program that is not installed, named as such (not `spawnSync pulumi ENOENT`). */
export class MissingTool extends Error {
    constructor(tool: string, hint: string) {
        super(`${tool} is not installed or not on PATH: ${hint}`);
        this.name = "MissingTool";
    }
}

const HINTS: Record<string, string> = {
    pulumi: "install the Pulumi CLI (https://www.pulumi.com/docs/install/)",
    git: "install git",
    ssh: "install the OpenSSH client",
    docker: "install Docker (https://docs.docker.com/engine/install/)",
    gh: "install the GitHub CLI (https://cli.github.com/) and run `gh auth login`",
    sh: "this needs a POSIX shell",
};

function missing(tool: string): MissingTool {
    return new MissingTool(tool, HINTS[tool] ?? `install ${tool}`);
}

/** Runs a program with arguments (no shell), capturing output. */
export function run(program: string, args: readonly string[], o: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string; maxBuffer?: number } = {}): RunResult {
    const r = spawnSync(program, args, { input: o.input, env: o.env ?? process.env, cwd: o.cwd, encoding: "utf8", maxBuffer: o.maxBuffer ?? 256 * 1024 * 1024, stdio: ["pipe", "pipe", "pipe"] });
    if (r.error !== undefined) {
        if ((r.error as NodeJS.ErrnoException).code === "ENOENT") throw missing(program);
        throw r.error;
    }
    return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a program with the terminal attached (logs --follow, exec); resolves with its exit code. */
export function runAttached(program: string, args: readonly string[], o: { env?: NodeJS.ProcessEnv; cwd?: string; stdio?: SpawnOptions["stdio"]; onStdout?: (chunk: string) => void } = {}): Promise<number> {
    return new Promise((resolve, reject) => {
        const child = spawn(program, args, { env: o.env ?? process.env, cwd: o.cwd, stdio: o.stdio ?? (o.onStdout ? ["inherit", "pipe", "inherit"] : "inherit") });
        if (o.onStdout) child.stdout!.on("data", (d) => o.onStdout!(String(d)));
        child.once("error", (e) => reject((e as NodeJS.ErrnoException).code === "ENOENT" ? missing(program) : e));
        child.once("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
}

/** `pulumi …` with the local stack's file backend when the stack is `local` (commands/local-env.sh). */
export function pulumi(stack: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env, cwd = REPO_ROOT): RunResult {
    return run("pulumi", [...args, "--stack", stack], { env: pulumiEnv(stack, env), cwd });
}

export function pulumiEnv(stack: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
    const e: NodeJS.ProcessEnv = { PULUMI_SKIP_UPDATE_CHECK: "true", ...env };
    if (stack === "local" && !e.PULUMI_BACKEND_URL) {
        e.PULUMI_BACKEND_URL = `file://${REPO_ROOT}/.pulumi-state`;
        e.PULUMI_CONFIG_PASSPHRASE ??= "local-stack-only";
    }
    return e;
}

/** `pulumi stack output --json` (secrets stay masked: none of the commands needs one). */
export function stackOutputs(stack: string, env?: NodeJS.ProcessEnv): Record<string, any> {
    const r = pulumi(stack, ["stack", "output", "--json"], env);
    if (r.status !== 0) throw new Error(`could not read the outputs of stack ${stack} (pulumi stack output): ${r.stderr.trim()}`);
    return JSON.parse(r.stdout || "{}");
}

export function stackExport(stack: string, env?: NodeJS.ProcessEnv): unknown {
    const r = pulumi(stack, ["stack", "export"], env);
    if (r.status !== 0) throw new Error(`could not read the state of stack ${stack} (pulumi stack export), which pins the hosts' SSH keys: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout);
}

export interface StateHost {
    /** The ScalewayHost's resource name: `host`, `host-1`, … */
    readonly name: string;
    readonly address: string;
    readonly hostKey?: string;
}

/** Every ScalewayHost of the state, host 0 first. */
export function hostsFromState(exported: unknown): StateHost[] {
    const resources: any[] = (exported as any)?.deployment?.resources ?? [];
    const hosts: StateHost[] = [];
    for (const r of resources) {
        if (r?.type !== HOST_ZERO_TYPE || typeof r.urn !== "string") continue;
        const name = r.urn.slice(r.urn.lastIndexOf("::") + 2);
        const address = r.outputs?.publicAddress;
        if (!/^(host|host-\d{1,2})$/.test(name) || typeof address !== "string" || !/^[0-9a-fA-F.:]+$/.test(address)) continue;
        const key = r.outputs?.hostKey;
        hosts.push({ name, address, hostKey: typeof key === "string" && /^ssh-ed25519 [A-Za-z0-9+/]+={0,2}$/.test(key.trim()) ? key.trim() : undefined });
    }
    const index = (n: string) => (n === "host" ? 0 : Number(n.slice(5)));
    return hosts.sort((a, b) => index(a.name) - index(b.name));
}

/**
 * A host's shell: runs a list of words there (quoted for its shell when remote). The local stack's
 * host is this machine; a Scaleway host is `ssh root@<address>` with the pinned key.
 */
export interface HostShell {
    readonly name: string;
    readonly describe: string;
    /** Captures output. `input` goes to the command's stdin (how secrets and scripts travel). */
    run(words: readonly string[], input?: string): RunResult;
    /** With the terminal attached; `tty` asks ssh for one (exec of an interactive command). */
    attach(words: readonly string[], o?: { tty?: boolean; onStdout?: (chunk: string) => void }): Promise<number>;
    cleanup(): void;
}

/** `words` as one command line for a remote POSIX shell: every word single-quoted. */
export function remoteCommandLine(words: readonly string[]): string {
    if (words.length === 0) throw new Error("no command");
    return words.map(shellQuote).join(" ");
}

export function localShell(env: NodeJS.ProcessEnv = process.env): HostShell {
    return {
        name: "local",
        describe: "this machine's Docker engine",
        run: (words, input) => run(words[0], words.slice(1), { input, env }),
        attach: (words, o = {}) => runAttached(words[0], words.slice(1), { env, onStdout: o.onStdout }),
        cleanup: () => undefined,
    };
}

export function sshShell(o: { project?: string; stack: string; host: StateHost; port?: number; env?: NodeJS.ProcessEnv }): HostShell {
    const project = o.project ?? projectName(fs.readFileSync(path.join(REPO_ROOT, "Pulumi.yaml"), "utf8"));
    const pinned = pinnedSsh({ project, stack: o.stack, address: o.host.address, hostKey: o.host.hostKey, port: o.port, env: o.env });
    const env = o.env ?? process.env;
    return {
        name: o.host.name,
        describe: `${pinned.destination} (host key pinned by ${pinned.knownHostsFile})`,
        run: (words, input) => run("ssh", [...pinned.options, pinned.destination, "--", remoteCommandLine(words)], { input, env }),
        attach: (words, a = {}) => runAttached("ssh", [...pinned.options, ...(a.tty ? ["-t"] : []), pinned.destination, "--", remoteCommandLine(words)], { env, onStdout: a.onStdout }),
        cleanup: pinned.cleanup,
    };
}

export interface StackAccess {
    readonly hosts: HostShell[];
    cleanup(): void;
}

/** The stack's hosts: the local engine, or every Scaleway host of the state over pinned SSH. */
export function stackHosts(stack: string, o: { state?: () => unknown; env?: NodeJS.ProcessEnv; sshPort?: number; project?: string } = {}): StackAccess {
    if (stack === "local") return { hosts: [localShell(o.env)], cleanup: () => undefined };
    const hosts = hostsFromState((o.state ?? (() => stackExport(stack, o.env)))());
    if (hosts.length === 0) throw new Error(`the state of stack ${stack} has no Scaleway host (is it deployed? is it the local stack?)`);
    const shells = hosts.map((h) => sshShell({ stack, host: h, port: o.sshPort, env: o.env, project: o.project }));
    return { hosts: shells, cleanup: () => shells.forEach((s) => s.cleanup()) };
}

/** Pulumi.<stack>.yaml's versions, newest first, from git (the recorded history of releases). */
export function stackConfigHistory(stack: string, cwd = REPO_ROOT, limit = 500): StackConfigVersion[] {
    const file = `Pulumi.${stack}.yaml`;
    const log = run("git", ["log", `--max-count=${limit}`, "--format=%H%x09%cI%x09%s", "--", file], { cwd });
    if (log.status !== 0) throw new Error(`git log of ${file} failed: ${log.stderr.trim()}`);
    const versions: StackConfigVersion[] = [];
    for (const line of log.stdout.split("\n").filter(Boolean)) {
        const [commit, date, ...subject] = line.split("\t");
        if (!/^[0-9a-f]{40}$/.test(commit)) continue;
        const show = run("git", ["show", `${commit}:${file}`], { cwd });
        versions.push({ commit, date, subject: subject.join("\t"), yaml: show.status === 0 ? show.stdout : "" });
    }
    return versions;
}
