// How the operator's commands (npm run restore, npm run migrate:managed) reach a stack's host 0 over
// SSH: with the host key the program pinned, never with whatever the operator's ssh config would
// accept. ScalewayHost records host 0's ed25519 key at first contact (its readiness check) in the
// stack state and writes it to ~/.ssh/platform/<project>/<stack>/ (io/sshFiles.ts); the key to log in
// with comes from ssh-agent. These commands use the same files and the
// same options (strictSshOptions: BatchMode, StrictHostKeyChecking=yes, that UserKnownHostsFile,
// IdentitiesOnly with the stack's key), so a server answering with another key is refused, exactly as
// the program refuses it.
//
// Where the key comes from, in order:
//   1. the stack state (`pulumi stack export`): host 0's ScalewayHost outputs publicAddress and hostKey;
//   2. the program's known_hosts file, when the state's key is not readable (a secret without
//      --show-secrets) and the file pins that address.
// When the state has the key and the program's file does not pin exactly it for host 0 (never written
// on this machine, or written for another host), the line goes into a private temporary known_hosts
// (0700 directory, 0600 file) that the command removes when it ends; the options are otherwise the same.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import { knownHostsLine, stackSshDirectory, strictSshOptions } from "./sshFiles";

/** The ScalewayHost component of host 0 (render/scale.ts hostName(0)). */
export const HOST_ZERO_TYPE = "platform:host:ScalewayHost";
export const HOST_ZERO_NAME = "host";

export interface HostZero {
    readonly address: string;
    /** "ssh-ed25519 AAAA…", when the state shows it in clear. */
    readonly hostKey?: string;
}

const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
const IP = /^[0-9a-fA-F.:]+$/;
const HOST_KEY = /^ssh-ed25519 [A-Za-z0-9+/]+={0,2}$/;

/** Host 0's address and host key from `pulumi stack export` output (JSON text or parsed). */
export function hostZeroFromState(exported: unknown): HostZero {
    const doc = typeof exported === "string" ? JSON.parse(exported) : exported;
    const resources: any[] = (doc as any)?.deployment?.resources ?? [];
    if (!Array.isArray(resources)) throw new Error("the stack export holds no resources");
    const host = resources.find((r) => r?.type === HOST_ZERO_TYPE && typeof r.urn === "string" && r.urn.endsWith(`::${HOST_ZERO_NAME}`));
    if (host === undefined) throw new Error(`the stack state has no ${HOST_ZERO_TYPE} named ${HOST_ZERO_NAME} (is this a scaleway stack that has been deployed?)`);
    const address = host.outputs?.publicAddress;
    if (typeof address !== "string" || !IP.test(address)) throw new Error(`host 0's publicAddress in the state is not an IP address: ${JSON.stringify(address)}`);
    const key = host.outputs?.hostKey;
    if (typeof key === "object" && key !== null && SECRET_SIG_KEY in key) return { address };
    if (key === undefined) return { address };
    if (typeof key !== "string" || !HOST_KEY.test(key.trim())) throw new Error(`host 0's hostKey in the state is not an ed25519 public key: ${JSON.stringify(key)}`);
    return { address, hostKey: key.trim() };
}

export interface PinnedSsh {
    /** `root@<address>` */
    readonly destination: string;
    /** The options every ssh call of the command uses (pinned host key, BatchMode, fail fast). */
    readonly options: string[];
    /** Which known_hosts pins the key: the program's file or a private temporary one. */
    readonly knownHostsFile: string;
    readonly source: "program" | "state";
    /** Removes the temporary known_hosts, if one was written. */
    cleanup(): void;
}

/** known_hosts lines that name `host` (`addr` or `[addr]:port`) as their first field. */
function linesFor(text: string, host: string): string[] {
    return text
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l !== "" && !l.startsWith("#") && l.split(/\s+/)[0].split(",").includes(host));
}

/**
 * ssh options that reach `address` as root only if it presents the pinned host key. `port` is for
 * tests (the servers listen on 22). Throws, saying what to run, when no pinned key is known.
 */
export function pinnedSsh(args: {
    readonly project: string;
    readonly stack: string;
    readonly address: string;
    readonly hostKey?: string;
    readonly port?: number;
    readonly user?: string;
    readonly env?: NodeJS.ProcessEnv;
}): PinnedSsh {
    const port = args.port ?? 22;
    const user = args.user ?? "root";
    if (!/^[a-z_][a-z0-9_-]*$/.test(user)) throw new Error(`ssh user ${JSON.stringify(user)} is not a plain name`);
    if (!IP.test(args.address)) throw new Error(`${JSON.stringify(args.address)} is not an IP address`);
    const dir = stackSshDirectory(args.project, args.stack, args.env);
    const programFile = path.join(dir.absolute, "known_hosts");
    const identity = fs.existsSync(path.join(dir.absolute, "id")) ? `${dir.forSsh}/id` : undefined;
    const hostField = port === 22 ? args.address : `[${args.address}]:${port}`;
    const programText = fs.existsSync(programFile) ? fs.readFileSync(programFile, "utf8") : "";
    const portOptions = port === 22 ? [] : ["-p", String(port)];
    const destination = `${user}@${args.address}`;

    if (args.hostKey !== undefined) {
        const expected = knownHostsLine(args.address, args.hostKey, port);
        if (linesFor(programText, hostField).some((l) => l === expected)) {
            return { destination, options: [...strictSshOptions(`${dir.forSsh}/known_hosts`, identity), ...portOptions], knownHostsFile: `${dir.forSsh}/known_hosts`, source: "program", cleanup: () => undefined };
        }
        const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "platform-known-hosts-"));
        fs.chmodSync(tmp, 0o700);
        const file = path.join(tmp, "known_hosts");
        fs.writeFileSync(file, expected + "\n", { mode: 0o600 });
        return {
            destination,
            options: [...strictSshOptions(file, identity), ...portOptions],
            knownHostsFile: file,
            source: "state",
            cleanup: () => fs.rmSync(tmp, { recursive: true, force: true }),
        };
    }
    if (linesFor(programText, hostField).length > 0) {
        return { destination, options: [...strictSshOptions(`${dir.forSsh}/known_hosts`, identity), ...portOptions], knownHostsFile: `${dir.forSsh}/known_hosts`, source: "program", cleanup: () => undefined };
    }
    throw new Error(
        `no pinned host key for ${args.address}: neither the stack state (pulumi stack export) nor ${programFile} holds one. ` +
            `Run \`pulumi preview --stack ${args.stack}\` once on this machine (the program writes the pinned known_hosts there), then try again. ` +
            "The operator's own ssh config is never used for this host.",
    );
}

/** The project's name, as Pulumi.yaml declares it (the SSH files' directory is named after it). */
export function projectName(pulumiYaml: string): string {
    const m = /^name:\s*["']?([A-Za-z0-9_.-]+)["']?\s*$/m.exec(pulumiYaml);
    if (!m) throw new Error("Pulumi.yaml has no plain `name:`");
    return m[1];
}

/**
 * `platform:database` of a stack's Pulumi.<stack>.yaml (`container` when unset, the program's
 * default): which database the operator's commands reach on host 0.
 */
export function stackDatabase(stackYaml: string): "container" | "managed" {
    const doc = yaml.load(stackYaml) as { config?: Record<string, unknown> } | undefined;
    const value = doc?.config?.["platform:database"] ?? "container";
    if (value !== "container" && value !== "managed") throw new Error(`platform:database is ${JSON.stringify(value)}, expected container or managed`);
    return value;
}
