// The operator commands' calls to the Pulumi CLI (`pulumi stack output`, `pulumi stack export`), with
// errors that say what is wrong: a missing CLI is named as such (not `spawnSync pulumi ENOENT`), and a
// failing one is quoted with what the command needed it for.
import { execFileSync } from "child_process";

export const PULUMI_INSTALL_URL = "https://www.pulumi.com/docs/install/";

export interface PulumiCallOptions {
    /** What the command needs the call for, e.g. "the outputs of stack prod". */
    readonly what: string;
    /** What the operator can do instead, e.g. "pass --bucket/--endpoint/--ssh". */
    readonly instead?: string;
    /** The CLI to run (tests); default `pulumi` on PATH. */
    readonly command?: string;
    readonly env?: NodeJS.ProcessEnv;
}

/** Runs `pulumi <args>` and parses its JSON output; throws an Error whose message names the cause and the fix. */
export function pulumiJson(args: readonly string[], o: PulumiCallOptions): unknown {
    const command = o.command ?? "pulumi";
    let text: string;
    try {
        text = execFileSync(command, [...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 256 * 1024 * 1024, env: o.env ?? process.env });
    } catch (e) {
        const err = e as NodeJS.ErrnoException & { stderr?: string };
        const instead = o.instead ? `, or ${o.instead}` : "";
        if (err.code === "ENOENT") {
            throw new Error(`the Pulumi CLI (${command}) is not installed or not on PATH, and it is needed to read ${o.what}: install it (${PULUMI_INSTALL_URL}) and run \`pulumi login\` to the stack's backend${instead}`);
        }
        if (err.code === "EACCES") throw new Error(`the Pulumi CLI (${command}) cannot be run (permission denied), and it is needed to read ${o.what}${instead}`);
        throw new Error(`could not read ${o.what} (pulumi ${args.join(" ")}): ${(err.stderr || err.message).trim()}${instead ? `. Or ${o.instead}` : ""}`);
    }
    try {
        return JSON.parse(text);
    } catch {
        throw new Error(`pulumi ${args.join(" ")} printed something that is not JSON while reading ${o.what}: ${text.slice(0, 200)}`);
    }
}
