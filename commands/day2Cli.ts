// What the day-2 commands share: how they reach the stack (injectable, so tests run them against real
// Docker engines and a real sshd with stand-in outputs), the app catalog, and how they end: usage
// errors with the usage (exit 2), a missing tool named as such (exit 127), other failures (exit 1).
import * as path from "path";
import { catalog } from "../apps";
import { imageReference } from "../render/values";
import { Role, StackConfigVersion, UsageError, appReleaseOf } from "../render/day2";
import { HostShell, MissingTool, REPO_ROOT, StackAccess, stackConfigHistory, stackHosts, stackOutputs } from "../io/stackHost";
import * as fs from "fs";

export interface Day2Deps {
    /** `pulumi stack output --json` of the stack. */
    readonly outputs: (stack: string) => Record<string, any>;
    readonly hosts: (stack: string) => StackAccess;
    /** Pulumi.<stack>.yaml's recorded versions, newest first. */
    readonly history: (stack: string) => StackConfigVersion[];
    /** Pulumi.<stack>.yaml now. */
    readonly stackYaml: (stack: string) => string;
    /** Settings for check-alerts.sh --facts on the stack's hosts. */
    readonly factsSettings: (stack: string, outputs: Record<string, any>) => Record<string, string>;
    /** Only containers carrying this label too (tests share a Docker engine with others). */
    readonly extraLabel?: string;
    readonly now: () => Date;
    readonly out: (text: string) => void;
    readonly err: (text: string) => void;
    readonly env: NodeJS.ProcessEnv;
    /** The git checkout whose main records releases (the repository by default). */
    readonly repo?: string;
    /** Runs `pulumi ARGS --stack STACK` with the terminal attached (rollback's up); resolves with its exit code. */
    readonly pulumiAttached?: (stack: string, args: readonly string[]) => Promise<number>;
}

export const LOCAL_DIR = path.join(REPO_ROOT, ".platform", "local");

export function defaultFactsSettings(stack: string, outputs: Record<string, any>): Record<string, string> {
    const base = String(outputs.baseUrl ?? "");
    const domain = /^https?:\/\/([a-z0-9.-]+)/.exec(base)?.[1] ?? "localhost";
    if (stack === "local") {
        return {
            NGINX_CONF: path.join(LOCAL_DIR, "nginx", "nginx.conf"),
            BACKUP_DIR: path.join(LOCAL_DIR, "backups"),
            // No nsenter on a laptop: the probe goes through docker exec, like the apply script's.
            PROBE_CMD: `docker exec platform-edge wget -qO- -T 3 --header=Host:${domain} http://127.0.0.1/__platform/generation`,
            DISK_PATHS: "/",
        };
    }
    return {
        NGINX_CONF: "/srv/platform/nginx/nginx.conf",
        BACKUP_LOG: "/var/log/platform-backup.log",
        CERT_CONNECT: "127.0.0.1:443",
        CERT_SERVERNAME: domain,
        EDGE_HOST: domain,
        DISK_PATHS: "/",
    };
}

export const defaultDeps = (): Day2Deps => ({
    outputs: (stack) => stackOutputs(stack),
    hosts: (stack) => stackHosts(stack),
    history: (stack) => stackConfigHistory(stack),
    stackYaml: (stack) => {
        const f = path.join(REPO_ROOT, `Pulumi.${stack}.yaml`);
        return fs.existsSync(f) ? fs.readFileSync(f, "utf8") : "";
    },
    factsSettings: defaultFactsSettings,
    now: () => new Date(),
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    env: process.env,
});

export const knownApps = (): string[] => Object.keys(catalog).sort();

/** The release the stack runs: its outputs, else its config file. */
export function currentRelease(deps: Day2Deps, stack: string, app: string, outputs?: Record<string, any>): string | undefined {
    let o = outputs;
    if (o === undefined) {
        try {
            o = deps.outputs(stack);
        } catch {
            o = {};
        }
    }
    const fromOutputs = o?.apps?.[app]?.release;
    if (typeof fromOutputs === "string") return fromOutputs;
    return appReleaseOf(deps.stackYaml(stack), app);
}

/** The image references an app's release runs (a catalog pin wins, as in components/webApp.ts). */
export function releaseImages(app: string, release: string): Record<Role, string> {
    const def = catalog[app];
    if (def === undefined) throw new Error(`app ${app} is not in the catalog`);
    return {
        frontend: imageReference(def.frontend.image, def.frontend.pinnedRelease ?? release),
        backend: imageReference(def.backend.image, def.backend.pinnedRelease ?? release),
    };
}

/** Runs a command's main and exits with its code; prints usage errors, missing tools and failures plainly. */
/** Runs `work` with the stack's hosts, and lets the stack's access (SSH files, forwards) go afterwards. */
export async function withStackHosts<T>(deps: Day2Deps, stack: string, work: (hosts: readonly HostShell[]) => Promise<T> | T): Promise<T> {
    const access = deps.hosts(stack);
    try {
        return await work(access.hosts);
    } finally {
        access.cleanup();
    }
}

/** Runs `work` on host `host` of the stack (0 is the default one). */
export function onStackHost<T>(deps: Day2Deps, stack: string, host: number, work: (shell: HostShell) => Promise<T> | T): Promise<T> {
    return withStackHosts(deps, stack, (hosts) => {
        const shell = hosts[host];
        if (shell === undefined) throw new Error(`stack ${stack} has no host ${host}`);
        return work(shell);
    });
}

export function runCommand(name: string, main: (argv: string[], deps: Day2Deps) => Promise<number>): void {
    const deps = defaultDeps();
    main(process.argv.slice(2), deps).then(
        (code) => process.exit(code),
        (e) => process.exit(reportFailure(name, e, deps)),
    );
}

export function reportFailure(name: string, e: unknown, deps: Pick<Day2Deps, "err">): number {
    if (e instanceof UsageError) {
        deps.err(`${name}: ${e.message}\n${e.usage}\n`);
        return 2;
    }
    if (e instanceof MissingTool) {
        deps.err(`${name}: ${e.message}\n`);
        return 127;
    }
    deps.err(`${name}: FAILED: ${(e as Error).message}\n`);
    return 1;
}
