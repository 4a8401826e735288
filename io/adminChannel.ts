// The admin channel to PostgreSQL on the prod host: an SSH local forward from 127.0.0.1 on the
// machine running Pulumi to the server's loopback-published PostgreSQL port. Opened once the host and
// the container are ready, held for the whole deployment (deletes included) and closed after it.
import { spawn } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { PROJECT_ROOT } from "../hostScripts";
import { ActionableError } from "./runErrors";

export interface ForwardOptions {
    /** `root@203.0.113.7` */
    readonly destination: string;
    /** Port sshd listens on. */
    readonly sshPort?: number;
    /** Where the forward lands on the server side, e.g. `127.0.0.1:5432`. */
    readonly remote: string;
    /** ssh `-o …`/`-i …` options: pinned known_hosts, identity (strictSshOptions). */
    readonly sshOptions: readonly string[];
    /** Process whose exit closes the forward; the program's parent (the language host) by default. */
    readonly watchPid?: number;
    /** How long to wait for the forward to accept connections before failing. */
    readonly openTimeoutMs?: number;
    /** Upper bound on the forward's life. */
    readonly maxSeconds?: number;
    /** Local port to use when free (see stablePort); another free one otherwise. */
    readonly preferredPort?: number;
}

export interface Forward {
    readonly host: "127.0.0.1";
    readonly port: number;
    /** PID of the supervisor (its ssh child exits with it). */
    readonly pid: number;
    close(): void;
}

/** Reported to the user as a run error: the message (destination, ssh's words, what to check), no stack. */
export class AdminChannelError extends ActionableError {}

// From the sources, also when this module runs from its build in dist/ (which holds JavaScript only).
const FORWARD_SCRIPT = path.join(PROJECT_ROOT, "io", "ssh-forward.sh");

/**
 * The local port a stack's forward uses, the same on every run: the provider's configuration then
 * does not change between deployments, so previews show no spurious provider diffs.
 */
export function stablePort(project: string, stack: string): number {
    let hash = 0x811c9dc5;
    for (const ch of `${project}/${stack}`) hash = Math.imul(hash ^ ch.charCodeAt(0), 0x01000193) >>> 0;
    return 40000 + (hash % 10000);
}

/** `preferred` if nothing listens on it on 127.0.0.1, otherwise any free loopback port. */
export function freeLoopbackPort(preferred = 0): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.once("error", (e: NodeJS.ErrnoException) => {
            if (preferred !== 0 && e.code === "EADDRINUSE") resolve(freeLoopbackPort(0));
            else reject(e);
        });
        server.listen(preferred, "127.0.0.1", () => {
            const { port } = server.address() as net.AddressInfo;
            server.close(() => resolve(port));
        });
    });
}

function canConnect(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const socket = net.connect({ host: "127.0.0.1", port });
        socket.setTimeout(1000);
        socket.once("connect", () => {
            socket.destroy();
            resolve(true);
        });
        socket.once("error", () => resolve(false));
        socket.once("timeout", () => {
            socket.destroy();
            resolve(false);
        });
    });
}

function explain(sshMessage: string, options: ForwardOptions): string {
    const hints: string[] = [];
    if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed|host key .* differs/i.test(sshMessage)) {
        hints.push("the server's host key is not the one recorded at first contact: if the server was rebuilt on purpose, run `pulumi refresh`; otherwise stop and investigate");
    }
    if (/Permission denied/i.test(sshMessage)) {
        hints.push("the key was refused: the key in your ssh-agent (SSH_AUTH_SOCK; ssh-add -l lists it) must match platform:sshPublicKey");
    }
    if (/Connection refused|timed out|No route to host|Connection closed|Could not resolve/i.test(sshMessage)) {
        hints.push(`the server did not answer SSH: check that your address is in platform:adminCidrs and that ${options.destination} is up`);
    }
    if (/forwarding failed|Address already in use/i.test(sshMessage)) {
        hints.push("the local forward could not be set up; run the deployment again");
    }
    return hints.length > 0 ? hints.join("; ") : "check SSH access to the server (platform:adminCidrs, the key in your ssh-agent)";
}

/** Opens the forward, or rejects within `openTimeoutMs` with ssh's message and what to check. Never hangs. */
export async function openForward(options: ForwardOptions): Promise<Forward> {
    const port = await freeLoopbackPort(options.preferredPort);
    const logFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "platform-forward-")), "ssh.log");
    const log = fs.openSync(logFile, "w", 0o600);
    const args = [
        FORWARD_SCRIPT,
        String(port),
        options.remote,
        options.destination,
        ...(options.sshPort === undefined ? [] : ["-p", String(options.sshPort)]),
        ...options.sshOptions,
    ];
    const child = spawn("sh", args, {
        detached: true,
        stdio: ["ignore", log, log],
        env: { ...process.env, WATCH_PID: String(options.watchPid ?? process.ppid), MAX_SECONDS: String(options.maxSeconds ?? 7200) },
    });
    fs.closeSync(log);
    child.unref();
    let exited = false;
    child.once("exit", () => (exited = true));
    const close = () => {
        try {
            process.kill(-child.pid!, "SIGTERM");
        } catch {
            /* already gone */
        }
    };

    const deadline = Date.now() + (options.openTimeoutMs ?? 20000);
    while (Date.now() < deadline) {
        if (exited) break;
        if (await canConnect(port)) {
            return { host: "127.0.0.1", port, pid: child.pid!, close };
        }
        await new Promise((r) => setTimeout(r, 200));
    }
    close();
    const message = fs.readFileSync(logFile, "utf8").trim() || (exited ? "ssh exited without a message" : `no answer within ${options.openTimeoutMs ?? 20000} ms`);
    throw new AdminChannelError(`Could not open the SSH admin channel to ${options.destination} for PostgreSQL: ${message}. What to check: ${explain(message, options)}.`);
}
