// A real OpenSSH server on a loopback address, laid out like Ubuntu 24.04's: the main config starts
// with `Include <dir>/sshd_config.d/*.conf` (first value wins), then what a test needs (port, host key,
// authorized keys in the temp dir), then Ubuntu's own main-file settings. Throwaway, in a temp dir.
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { freePort, sleep } from "./edge";

export const SSHD = "/usr/sbin/sshd";

/** What Ubuntu 24.04's /etc/ssh/sshd_config sets after its Include line (comments dropped). */
export const UBUNTU_MAIN_SETTINGS: readonly string[] = [
    "KbdInteractiveAuthentication no",
    "UsePAM yes",
    "X11Forwarding yes",
    "PrintMotd no",
    "AcceptEnv LANG LC_* COLORTERM NO_COLOR",
    "Subsystem sftp /usr/lib/openssh/sftp-server",
];

export interface SshdOptions {
    /** Temp dir owned by the test. */
    readonly dir: string;
    /** Drop-ins, in the order sshd reads them (named so they sort in that order). */
    readonly dropins: readonly { readonly name: string; readonly content: string }[];
    readonly authorizedKeys: string;
    readonly address?: string;
    readonly port?: number;
    /** Host key file (private); one is generated in `dir` when absent. */
    readonly hostKey?: string;
    /** Lines after the test's own (default: Ubuntu's main-file settings). */
    readonly mainSettings?: readonly string[];
    /** Subdirectory of `dir` for this server's files (several servers per test dir). */
    readonly name?: string;
}

export interface Sshd {
    readonly address: string;
    readonly port: number;
    readonly configFile: string;
    readonly hostKey: string;
    /** "ssh-ed25519 AAAA…" */
    readonly hostPublicKey: string;
    /** Everything sshd logged so far (-e: to stderr). */
    log(): string;
    /** `sshd -T` of this config: effective settings, lowercase keywords. */
    effective(): Map<string, string>;
    stop(): Promise<void>;
}

export function keygen(file: string): string {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", file]);
    return fs.readFileSync(`${file}.pub`, "utf8").trim();
}

/** Writes the config without starting sshd (for `sshd -T` / `sshd -t`). */
export function writeSshdConfig(options: SshdOptions & { port: number }): { configFile: string; hostKey: string } {
    const base = path.join(options.dir, options.name ?? "sshd");
    const dropinDir = path.join(base, "sshd_config.d");
    fs.mkdirSync(dropinDir, { recursive: true });
    for (const d of options.dropins) fs.writeFileSync(path.join(dropinDir, d.name), d.content);
    const hostKey = options.hostKey ?? path.join(base, "host_key");
    if (!fs.existsSync(hostKey)) keygen(hostKey);
    fs.writeFileSync(path.join(base, "authorized_keys"), options.authorizedKeys);
    const configFile = path.join(base, "sshd_config");
    fs.writeFileSync(
        configFile,
        [
            `Include ${dropinDir}/*.conf`,
            // What the test needs, nothing the drop-in sets:
            `Port ${options.port}`,
            `ListenAddress ${options.address ?? "127.0.0.1"}`,
            `HostKey ${hostKey}`,
            `PidFile ${path.join(base, "sshd.pid")}`,
            `AuthorizedKeysFile ${path.join(base, "authorized_keys")}`,
            "StrictModes no",
            ...(options.mainSettings ?? UBUNTU_MAIN_SETTINGS),
            "",
        ].join("\n"),
    );
    return { configFile, hostKey };
}

export function effectiveSettings(configFile: string): Map<string, string> {
    const r = spawnSync(SSHD, ["-T", "-f", configFile], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`sshd -T failed: ${r.stderr}`);
    const settings = new Map<string, string>();
    for (const line of r.stdout.split("\n")) {
        const space = line.indexOf(" ");
        if (space > 0) {
            const key = line.slice(0, space);
            settings.set(key, settings.has(key) ? `${settings.get(key)}\n${line.slice(space + 1)}` : line.slice(space + 1));
        }
    }
    return settings;
}

function canConnect(address: string, port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const s = net.connect({ host: address, port });
        s.setTimeout(500);
        s.once("connect", () => (s.destroy(), resolve(true)));
        s.once("error", () => resolve(false));
        s.once("timeout", () => (s.destroy(), resolve(false)));
    });
}

export async function startSshd(options: SshdOptions): Promise<Sshd> {
    const address = options.address ?? "127.0.0.1";
    const port = options.port ?? (await freePort());
    const { configFile, hostKey } = writeSshdConfig({ ...options, address, port });
    // Before the check, which also wants it: a package installed without starting its service has not made it.
    fs.mkdirSync("/run/sshd", { recursive: true });
    const check = spawnSync(SSHD, ["-t", "-f", configFile], { encoding: "utf8" });
    if (check.status !== 0) throw new Error(`sshd -t refused the config: ${check.stderr}`);
    const child: ChildProcess = spawn(SSHD, ["-D", "-e", "-f", configFile], { stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    child.stderr!.on("data", (d) => (log += d));
    const deadline = Date.now() + 10000;
    while (!(await canConnect(address, port))) {
        if (child.exitCode !== null || Date.now() > deadline) {
            child.kill();
            throw new Error(`sshd did not start on ${address}:${port}: ${log}`);
        }
        await sleep(50);
    }
    return {
        address,
        port,
        configFile,
        hostKey,
        hostPublicKey: fs.readFileSync(`${hostKey}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" "),
        log: () => log,
        effective: () => effectiveSettings(configFile),
        stop: async () => {
            if (child.exitCode !== null || child.signalCode !== null) return;
            const exited = new Promise((r) => child.once("exit", r));
            child.kill("SIGTERM");
            await Promise.race([exited, sleep(5000)]);
            if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        },
    };
}

export interface SshResult {
    readonly status: number | null;
    readonly stdout: string;
    readonly stderr: string;
}

/** Runs the system ssh client, bounded: never prompts on a terminal (no tty), killed after `timeoutMs`. */
export function runSsh(args: readonly string[], options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<SshResult> {
    return new Promise((resolve) => {
        // setsid: no controlling terminal, so ssh can only ask SSH_ASKPASS, never /dev/tty.
        const child = spawn("setsid", ["-w", "ssh", ...args], { env: options.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 15000);
        child.on("close", (status) => {
            clearTimeout(timer);
            resolve({ status, stdout, stderr });
        });
        child.stdin.end(options.input ?? "");
    });
}

/** A random address in 127.0.0.0/8 (Linux answers on all of it), away from 127.0.0.1. */
export function randomLoopbackAddress(): string {
    const b = () => 1 + Math.floor(Math.random() * 250);
    return `127.${b()}.${b()}.${b()}`;
}
