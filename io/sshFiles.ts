// Files the system ssh client needs (a pinned known_hosts and, when a key is configured, an identity),
// kept at a fixed per-stack path for as long as the deployment needs them, and beyond.
//
// Why a fixed path: the paths are part of the Docker provider's `sshOpts`. A fresh temporary directory
// per run made every preview show the provider as changed.
// Why the files outlive the program: Pulumi runs the deletes of replaced and removed resources after
// the program has exited, through the same provider and the same sshOpts; so do `pulumi destroy` and
// `pulumi refresh` without --run-program. Files removed at program exit made those fail with "Host
// key verification failed". So they stay; each run rewrites them (atomically, and only when their
// content changed), and a stack whose key is no longer configured loses its identity file.
//
// Where: `~/.ssh/platform/<project>/<stack>/`, written in the options with a literal `~/`, which ssh
// expands to the home directory from the password database. The options are then the same on every
// machine (a laptop and a CI runner agree, no spurious diff between them), do not depend on the
// provider's working directory, and two stacks never share a file. PLATFORM_SSH_DIR (an absolute
// path) moves the files elsewhere, e.g. for tests or a read-only home; the options then carry it.
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/** Override of the base directory (absolute path). */
export const SSH_DIR_ENV = "PLATFORM_SSH_DIR";

/** Home-relative base, as written in ssh options (ssh expands `~/`). */
const HOME_BASE = path.posix.join(".ssh", "platform");

// Characters ssh passes through untouched in `-o UserKnownHostsFile=…` and `-i …`: no whitespace or
// quotes (option tokenizing), no `%` (ssh's percent tokens), no `$` (environment expansion).
const SAFE_PATH = /^[A-Za-z0-9._\/+-]+$/;
const NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/;

export interface StackSshDirectory {
    /** How ssh options refer to it: `~/.ssh/platform/<project>/<stack>` or the override, absolute. */
    readonly forSsh: string;
    /** Where this process writes: the same directory, absolute. */
    readonly absolute: string;
}

/** The per-stack directory, for ssh options and for writing. */
export function stackSshDirectory(project: string, stack: string, env: NodeJS.ProcessEnv = process.env): StackSshDirectory {
    for (const [what, value] of [["project", project], ["stack", stack]] as const) {
        if (!NAME.test(value) || value === "." || value === "..") throw new Error(`${what} name ${JSON.stringify(value)} cannot name a directory of SSH files`);
    }
    const override = env[SSH_DIR_ENV];
    if (override !== undefined && override !== "") {
        if (!path.isAbsolute(override) || !SAFE_PATH.test(override)) {
            throw new Error(`${SSH_DIR_ENV}=${JSON.stringify(override)} must be an absolute path of letters, digits and . _ / + - only`);
        }
        const dir = path.join(path.normalize(override), project, stack);
        return { forSsh: dir, absolute: dir };
    }
    // ssh resolves `~` from the password database, not $HOME: so does os.userInfo().
    const home = os.userInfo().homedir;
    return { forSsh: `~/${HOME_BASE}/${project}/${stack}`, absolute: path.join(home, HOME_BASE, project, stack) };
}

/** Creates `dir` (0700) if needed, and refuses one that is a symlink, another user's, or open to others. */
function privateDirectory(dir: string): void {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const stat = fs.lstatSync(dir);
    if (!stat.isDirectory()) throw new Error(`${dir} is not a directory (a symlink?): refusing to put SSH keys there`);
    const uid = process.getuid?.();
    if (uid !== undefined && stat.uid !== uid) throw new Error(`${dir} belongs to uid ${stat.uid}, not to this user: refusing to put SSH keys there`);
    if ((stat.mode & 0o777) !== 0o700) fs.chmodSync(dir, 0o700);
}

/**
 * Writes `content` to `file` (mode 0600) unless it already holds exactly that: through a new file in
 * the same directory renamed over the old one, so a reader (an ssh started by the provider at that
 * moment) sees the old file or the new one, never a partial one. Returns whether it wrote.
 */
export function writeFileAtomically(file: string, content: string): boolean {
    try {
        const stat = fs.lstatSync(file);
        if (stat.isFile() && (stat.mode & 0o777) === 0o600 && fs.readFileSync(file, "utf8") === content) return false;
    } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(6).toString("hex")}.tmp`);
    const fd = fs.openSync(tmp, "wx", 0o600);
    try {
        fs.fchmodSync(fd, 0o600);
        fs.writeFileSync(fd, content);
        fs.fsyncSync(fd);
    } catch (e) {
        fs.closeSync(fd);
        fs.rmSync(tmp, { force: true });
        throw e;
    }
    fs.closeSync(fd);
    fs.renameSync(tmp, file);
    return true;
}

export interface StackSshFiles {
    /** Paths as ssh options must name them (see stackSshDirectory). */
    readonly knownHostsFile: string;
    readonly identityFile?: string;
    /** The directory, absolute, as this process wrote it. */
    readonly directory: string;
}

/**
 * Writes a stack's known_hosts (one pinned line) and identity (when a private key is configured; an
 * earlier identity is removed when not) and returns the paths to put in ssh options.
 */
export function writeStackSshFiles(args: {
    readonly project: string;
    readonly stack: string;
    readonly knownHosts: string;
    readonly privateKey?: string;
    readonly env?: NodeJS.ProcessEnv;
    /** One file per host of a stack (several hosts must not overwrite each other's pin); `known_hosts` for the first. */
    readonly knownHostsName?: string;
}): StackSshFiles {
    const dir = stackSshDirectory(args.project, args.stack, args.env);
    const knownHostsName = args.knownHostsName ?? "known_hosts";
    if (!/^known_hosts(-[a-z0-9-]{1,40})?$/.test(knownHostsName)) throw new Error(`known_hosts file name ${JSON.stringify(knownHostsName)} is not known_hosts or known_hosts-<host>`);
    privateDirectory(dir.absolute);
    const line = (text: string) => (text.endsWith("\n") ? text : text + "\n");
    writeFileAtomically(path.join(dir.absolute, knownHostsName), line(args.knownHosts));
    const identity = path.join(dir.absolute, "id");
    if (args.privateKey === undefined) {
        fs.rmSync(identity, { force: true });
        return { knownHostsFile: `${dir.forSsh}/${knownHostsName}`, directory: dir.absolute };
    }
    writeFileAtomically(identity, line(args.privateKey));
    return { knownHostsFile: `${dir.forSsh}/${knownHostsName}`, identityFile: `${dir.forSsh}/id`, directory: dir.absolute };
}

/** A known_hosts line that pins `hostKey` ("ssh-ed25519 AAAA…") for `address` on `port`. */
export function knownHostsLine(address: string, hostKey: string, port = 22): string {
    const [type, blob] = hostKey.trim().split(/\s+/);
    if (type === undefined || blob === undefined) throw new Error(`host key ${JSON.stringify(hostKey)} is not "<type> <base64>"`);
    if (!/^[a-z0-9@.-]+$/.test(type) || !/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) throw new Error(`host key ${JSON.stringify(hostKey)} is not "<type> <base64>"`);
    if (!/^[0-9a-fA-F.:]+$/.test(address)) throw new Error(`${JSON.stringify(address)} is not an IP address`);
    const host = port === 22 ? address : `[${address}]:${port}`;
    return `${host} ${type} ${blob}`;
}

/**
 * ssh options shared by every connection the program opens: pinned host key, no prompts, fail fast.
 * `-F none`: no ssh_config is read, neither the operator's ~/.ssh/config nor /etc/ssh/ssh_config, so
 * nothing there (a KnownHostsCommand that accepts any key, a GlobalKnownHostsFile, Hostname, Port,
 * ProxyCommand, another IdentityFile) can stand in for the pin; GlobalKnownHostsFile=/dev/null and
 * UpdateHostKeys=no say so explicitly, for any ssh that reads options from elsewhere.
 */
export function strictSshOptions(knownHostsFile: string, identityFile?: string): string[] {
    return [
        "-F", "none",
        "-o", "BatchMode=yes",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "UpdateHostKeys=no",
        "-o", "StrictHostKeyChecking=yes",
        "-o", `UserKnownHostsFile=${knownHostsFile}`,
        "-o", "ConnectTimeout=10",
        "-o", "ServerAliveInterval=5",
        "-o", "ServerAliveCountMax=3",
        ...(identityFile === undefined ? [] : ["-o", "IdentitiesOnly=yes", "-i", identityFile]),
    ];
}
