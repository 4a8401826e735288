// Makes the host's backup signing key and pins its public half, through the Pulumi CLI:
//   npm run backup:signing-key -- --stack prod [--rotate]
// 1) generates an Ed25519 key pair here; 2) `pulumi config set --secret platform:backupSigningKey`
// with the private key on stdin (never on a command line, never printed); 3) appends the public key
// to platform:backupSigningKeys in Pulumi.<stack>.yaml (a reviewed diff: the pin is what the restore,
// the drill and the migration trust). --rotate also retires every key pinned so far (retiredAt = now):
// what they signed before stays trusted, nothing they sign from now on; --retired-at TIME retires them
// from an earlier time instead: after a theft, when it may have begun, so that nothing the thief
// signed since counts. Then `pulumi up` at once: it installs the new key and takes a signed backup
// (until then the host signs with the retired key, and those backups are refused).
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { PROJECT_ROOT } from "../hostScripts";
import { PULUMI_INSTALL_URL } from "../io/pulumiCli";
import { pinnedSigningKeys } from "../io/backupTrust";
import { TrustedKey, generateSigningKey } from "../render/signing";

export const SIGNING_KEY_USAGE = "usage: npm run backup:signing-key -- --stack <stack> [--rotate [--retired-at 2026-12-01T00:00:00Z]]   (needs the Pulumi CLI, logged in to the stack's backend, and PULUMI_CONFIG_PASSPHRASE if the stack uses a passphrase)";

export interface SigningKeyArgs {
    readonly stack: string;
    readonly rotate: boolean;
    /** When the old keys stop being trusted (default: now). After a theft: when it may have begun. */
    readonly retiredAt?: Date;
}

export function parseSigningKeyArgs(argv: readonly string[]): SigningKeyArgs | "help" {
    if (argv.includes("--help") || argv.includes("-h")) return "help";
    let stack: string | undefined;
    let rotate = false;
    let retiredAt: Date | undefined;
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === "--rotate") rotate = true;
        else if (argv[i] === "--retired-at") {
            const v = argv[++i];
            if (v === undefined || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(v) || Number.isNaN(new Date(v).getTime())) throw new Error(`--retired-at takes a UTC time like 2026-12-01T00:00:00Z\n${SIGNING_KEY_USAGE}`);
            retiredAt = new Date(v);
            if (retiredAt.getTime() > Date.now()) throw new Error("--retired-at is in the future: the old key would go on signing trusted backups until then");
        }
        else if (argv[i] === "--stack") {
            stack = argv[++i];
            if (stack === undefined || stack.startsWith("--")) throw new Error(`--stack needs a value\n${SIGNING_KEY_USAGE}`);
        } else throw new Error(`unknown argument ${JSON.stringify(argv[i])}\n${SIGNING_KEY_USAGE}`);
    }
    if (stack === undefined) throw new Error(`--stack is required\n${SIGNING_KEY_USAGE}`);
    if (!/^[a-z0-9][a-z0-9_.-]{0,99}$/i.test(stack)) throw new Error(`--stack ${JSON.stringify(stack)} is not a stack name`);
    if (retiredAt !== undefined && !rotate) throw new Error(`--retired-at goes with --rotate\n${SIGNING_KEY_USAGE}`);
    return retiredAt === undefined ? { stack, rotate } : { stack, rotate, retiredAt };
}

/** The pins after adding `publicKey`: earlier ones kept, or (rotate) retired at `now` unless retired already. */
export function nextPins(current: readonly TrustedKey[], publicKey: string, rotate: boolean, now: Date): TrustedKey[] {
    const kept = current.map((k) => (rotate && k.retiredAt === undefined ? { publicKey: k.publicKey, retiredAt: new Date(Math.floor(now.getTime() / 1000) * 1000) } : k));
    return [...kept, { publicKey }];
}

export interface SigningKeyDeps {
    /** The project directory (Pulumi.yaml and Pulumi.<stack>.yaml). */
    readonly root?: string;
    readonly pulumi?: string;
    readonly env?: NodeJS.ProcessEnv;
    readonly now?: () => Date;
    readonly log?: (line: string) => void;
}

export function runSigningKey(args: SigningKeyArgs, deps: SigningKeyDeps = {}): void {
    const root = deps.root ?? PROJECT_ROOT;
    const log = deps.log ?? ((l: string) => console.log(l));
    const pulumi = deps.pulumi ?? "pulumi";
    const stackFile = path.join(root, `Pulumi.${args.stack}.yaml`);
    const current = fs.existsSync(stackFile) ? pinnedSigningKeys(fs.readFileSync(stackFile, "utf8")) : [];
    const call = (cliArgs: string[], input?: string) => {
        const r = spawnSync(pulumi, [...cliArgs, "--stack", args.stack, "--cwd", root, "--non-interactive"], { input, encoding: "utf8", env: deps.env ?? process.env });
        if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT") throw new Error(`the Pulumi CLI (${pulumi}) is not installed or not on PATH: install it (${PULUMI_INSTALL_URL}) and log in to the stack's backend`);
        if (r.status !== 0) throw new Error(`pulumi ${cliArgs.join(" ")}: ${(r.stderr || r.stdout || String(r.error)).trim()}`);
    };
    const { secretKey, publicKey } = generateSigningKey();
    // The private key goes on stdin: not in the process list, the shell history or this output.
    call(["config", "set", "--secret", "platform:backupSigningKey"], secretKey);
    const pins = nextPins(current, publicKey, args.rotate, args.retiredAt ?? (deps.now ?? (() => new Date()))());
    // The whole list is written again, entry by entry, so a retired key can become { key, retiredAt }.
    if (current.length > 0) call(["config", "rm", "platform:backupSigningKeys"]);
    pins.forEach((k, i) => {
        if (k.retiredAt === undefined) call(["config", "set", "--path", `platform:backupSigningKeys[${i}]`, k.publicKey]);
        else {
            call(["config", "set", "--path", `platform:backupSigningKeys[${i}].key`, k.publicKey]);
            call(["config", "set", "--path", `platform:backupSigningKeys[${i}].retiredAt`, k.retiredAt.toISOString().replace(/\.\d{3}Z$/, "Z")]);
        }
    });
    log(`backup:signing-key: platform:backupSigningKey set (secret) for stack ${args.stack}; pinned ${publicKey} in ${path.basename(stackFile)}`);
    const retired = pins.filter((k, i) => i < current.length && k.retiredAt !== undefined && current[i].retiredAt === undefined);
    for (const k of retired) log(`backup:signing-key: retired ${k.publicKey}: what it signed before ${k.retiredAt!.toISOString()} stays trusted, nothing after`);
    log(`backup:signing-key: next: commit ${path.basename(stackFile)} (the pin is a reviewed change), then pulumi up --stack ${args.stack}: it installs the key on the host and takes a signed backup`);
}

if (require.main === module) {
    try {
        const args = parseSigningKeyArgs(process.argv.slice(2));
        if (args === "help") console.log(SIGNING_KEY_USAGE);
        else runSigningKey(args);
    } catch (e) {
        console.error(`backup:signing-key: FAILED: ${(e as Error).message}`);
        process.exit(1);
    }
}
