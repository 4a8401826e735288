// Files the system ssh client needs (an identity and a pinned known_hosts), written where only this
// user can read them and removed when the program exits.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

let directory: string | undefined;

function privateDirectory(): string {
    if (directory === undefined) {
        directory = fs.mkdtempSync(path.join(os.tmpdir(), "platform-ssh-"));
        fs.chmodSync(directory, 0o700);
        const dir = directory;
        process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
    }
    return directory;
}

/** Writes `content` to a 0600 file named `name` in the program's private directory and returns its path. */
export function writePrivateFile(name: string, content: string): string {
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`bad file name ${name}`);
    const file = path.join(privateDirectory(), name);
    fs.writeFileSync(file, content.endsWith("\n") ? content : content + "\n", { mode: 0o600 });
    return file;
}

/** A known_hosts line that pins `hostKey` ("ssh-ed25519 AAAA…") for `address` on `port`. */
export function knownHostsLine(address: string, hostKey: string, port = 22): string {
    const [type, blob] = hostKey.trim().split(/\s+/);
    if (type === undefined || blob === undefined) throw new Error(`host key ${JSON.stringify(hostKey)} is not "<type> <base64>"`);
    const host = port === 22 ? address : `[${address}]:${port}`;
    return `${host} ${type} ${blob}`;
}

/** ssh options shared by every connection the program opens: pinned host key, no prompts, fail fast. */
export function strictSshOptions(knownHostsFile: string, identityFile?: string): string[] {
    return [
        "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes",
        "-o", `UserKnownHostsFile=${knownHostsFile}`,
        "-o", "ConnectTimeout=10",
        "-o", "ServerAliveInterval=5",
        "-o", "ServerAliveCountMax=3",
        ...(identityFile === undefined ? [] : ["-o", "IdentitiesOnly=yes", "-i", identityFile]),
    ];
}
