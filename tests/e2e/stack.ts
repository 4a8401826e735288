// The local stack run for real, for the end-to-end suite (tests/e2e.real.test.ts) and bench/deploy.ts:
// the Pulumi CLI, its nodejs language host and the provider plugins, this machine's Docker engine, and
// a copy of the project in a temporary directory (its own .pulumi-state and .platform), driven through
// the same `npm run local:up` / `local:down` the README gives.
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";

export const REPO = path.resolve(__dirname, "..", "..");
export const LOCAL_URL = "http://127.0.0.1:8080";
/** The plugins the local stack loads, at the versions package-lock.json pins (read from node_modules). */
const PLUGINS = ["docker", "command", "random", "postgresql"];
/** What the local stack owns on the engine by fixed name: present means another local stack runs there. */
const FIXED_CONTAINERS = ["platform-edge", "platform-postgres", "platform-pg-forwarder"];
export const VOLUME = "platform-pgdata";

function sh(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}) {
    const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...opts });
    return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: (r.stderr ?? "") + (r.error ? String(r.error) : "") };
}

export function pluginVersion(name: string): string {
    return JSON.parse(fs.readFileSync(path.join(REPO, "node_modules", "@pulumi", name, "package.json"), "utf8")).version;
}

/** What the real run needs and this machine lacks, each named with how to get it. Empty: all there. */
export function missingPrerequisites(): string[] {
    const missing: string[] = [];
    const pulumi = sh("pulumi", ["version"]);
    if (pulumi.status !== 0) return ["the Pulumi CLI (pulumi on PATH: https://www.pulumi.com/docs/install/)"];
    if (sh("sh", ["-c", "command -v pulumi-language-nodejs"]).status !== 0) {
        missing.push("the Pulumi nodejs language host (pulumi-language-nodejs on PATH; it ships with the CLI)");
    }
    // The AppDatabase's dynamic provider runs through this script, which also ships with the CLI.
    if (sh("sh", ["-c", "command -v pulumi-resource-pulumi-nodejs"]).status !== 0) {
        missing.push("the Pulumi nodejs dynamic provider (pulumi-resource-pulumi-nodejs on PATH; it ships with the CLI)");
    }
    const listed = sh("pulumi", ["plugin", "ls", "--json"], { env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: "true" } });
    let plugins: { name: string; kind: string; version: string }[] = [];
    try {
        plugins = JSON.parse(listed.stdout || "[]") ?? [];
    } catch {
        plugins = [];
    }
    for (const name of PLUGINS) {
        const version = pluginVersion(name);
        if (!plugins.some((p) => p.kind === "resource" && p.name === name && p.version === version)) {
            missing.push(`the Pulumi ${name} provider plugin ${version} (pulumi plugin install resource ${name} ${version})`);
        }
    }
    if (sh("docker", ["version", "--format", "{{.Server.Version}}"]).status !== 0) missing.push("a running Docker engine (docker.io: dockerd)");
    return missing;
}

/** Why the engine cannot host the suite's local stack now (another local stack holds its names), or undefined. */
export function engineBusy(): string | undefined {
    const held = FIXED_CONTAINERS.filter((n) => sh("docker", ["container", "inspect", n]).status === 0);
    if (held.length > 0) return `containers ${held.join(", ")} exist: another local stack runs on this engine (npm run local:down there first)`;
    if (sh("docker", ["volume", "inspect", VOLUME]).status === 0) return `the volume ${VOLUME} exists: another local stack's data (npm run local:down -- --purge-data there, if it may go)`;
    if (sh("sh", ["-c", "ss -ltn 2>/dev/null | grep -qE '127.0.0.1:(8080|15432) '"]).status === 0) return "port 8080 or 15432 on 127.0.0.1 is taken";
    return undefined;
}

/** Builds or pulls the images the local stack runs and the release variants (tests/e2e/images/build.sh). */
export function ensureImages(): void {
    const r = sh("sh", [path.join(REPO, "tests", "e2e", "images", "build.sh")], { env: { ...process.env, DOCKER_BUILDKIT: process.env.DOCKER_BUILDKIT ?? "0" } });
    if (r.status !== 0) throw new Error(`tests/e2e/images/build.sh failed:\n${r.stderr}`);
}

export interface Run {
    readonly status: number;
    readonly stdout: string;
    readonly stderr: string;
    readonly seconds: number;
}

/** A copy of the project in a temporary directory, with its own state; node_modules is shared. */
export class Project {
    readonly dir: string;
    readonly env: NodeJS.ProcessEnv;

    constructor(extraEnv: NodeJS.ProcessEnv = {}) {
        this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-e2e-"));
        const files = sh("git", ["ls-files", "-co", "--exclude-standard"], { cwd: REPO }).stdout.split("\n").filter((f) => f && !f.startsWith("node_modules/"));
        for (const f of files) {
            const from = path.join(REPO, f);
            if (!fs.existsSync(from) || fs.statSync(from).isDirectory()) continue;
            fs.mkdirSync(path.dirname(path.join(this.dir, f)), { recursive: true });
            fs.copyFileSync(from, path.join(this.dir, f));
        }
        fs.symlinkSync(path.join(REPO, "node_modules"), path.join(this.dir, "node_modules"));
        this.env = {
            ...process.env,
            PULUMI_SKIP_UPDATE_CHECK: "true",
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
            PULUMI_BACKEND_URL: `file://${this.dir}/.pulumi-state`,
            PULUMI_CONFIG_PASSPHRASE: "local-stack-only",
            PLATFORM_SSH_DIR: path.join(this.dir, ".ssh"),
            ...extraEnv,
        };
    }

    run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}): Run {
        const started = process.hrtime.bigint();
        const r = sh(cmd, args, { cwd: this.dir, env: { ...this.env, ...opts.env }, input: opts.input });
        return { ...r, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
    }

    npm(script: string, args: string[] = [], env?: NodeJS.ProcessEnv): Run {
        return this.run("npm", ["run", "--silent", script, ...(args.length ? ["--", ...args] : [])], { env });
    }

    pulumi(args: string[], env?: NodeJS.ProcessEnv): Run {
        return this.run("pulumi", [...args, "--stack", "local", "--non-interactive"], { env });
    }

    /** Starts `pulumi up` without waiting (for an interrupted up). */
    startUp(): ChildProcess {
        return spawn("pulumi", ["up", "--stack", "local", "--yes", "--non-interactive"], { cwd: this.dir, env: this.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    }

    setRelease(app: string, release: string): void {
        const r = this.pulumi(["config", "set", "--type", "string", "--path", `platform:apps.${app}`, release]);
        if (r.status !== 0) throw new Error(r.stderr);
    }

    /** Adds an entry to this copy's catalog: apps/<name>.ts holding `definition`, listed in apps/index.ts. */
    addCatalogApp(name: string, definition: string): void {
        if (!/^[a-z][a-z0-9]*$/.test(name)) throw new Error(`${name}: not a simple app name`);
        fs.writeFileSync(path.join(this.dir, "apps", `${name}.ts`), `import { AppDefinition } from "./types";\n\nexport const ${name}: AppDefinition = ${definition};\n`);
        const index = path.join(this.dir, "apps", "index.ts");
        const text = fs.readFileSync(index, "utf8").replace(/^(import \{ demo \} from "\.\/demo";)$/m, `$1\nimport { ${name} } from "./${name}";`).replace(/\[app1, app2, demo\]/, `[app1, app2, demo, ${name}]`);
        if (!text.includes(`from "./${name}"`) || !text.includes(`demo, ${name}]`)) throw new Error("apps/index.ts no longer has the shape addCatalogApp edits");
        fs.writeFileSync(index, text);
    }

    removeApp(app: string): void {
        const r = this.pulumi(["config", "rm", "--path", `platform:apps.${app}`]);
        if (r.status !== 0) throw new Error(r.stderr);
    }

    outputs(): Record<string, any> {
        const r = this.pulumi(["stack", "output", "--json", "--show-secrets"]);
        if (r.status !== 0) throw new Error(r.stderr);
        return JSON.parse(r.stdout);
    }

    /** Tears the stack down and deletes its data: leaves the engine as it found it. */
    cleanUp(): void {
        if (fs.existsSync(path.join(this.dir, ".pulumi-state")) && this.npm("local:down", ["--purge-data"]).status !== 0) {
            // A step that failed half-way (an interrupted up): recover, then down again.
            this.npm("local:recover");
            this.npm("local:down", ["--purge-data"]);
        }
        // Whatever is still there is this run's (the engine was free when it started).
        const left = docker(["ps", "-aq", "--filter", "label=platform.stack=local"]).stdout.split("\n").filter(Boolean);
        const fixed = FIXED_CONTAINERS.filter((n) => docker(["container", "inspect", n]).status === 0);
        if (left.length + fixed.length > 0) docker(["rm", "-f", ...left, ...fixed]);
        for (const net of docker(["network", "ls", "--format", "{{.Name}}"]).stdout.split("\n").filter((n) => /^platform-(edge|app-|db-|pg-)/.test(n))) docker(["network", "rm", net]);
        docker(["volume", "rm", VOLUME]);
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}

export function docker(args: string[], input?: string) {
    return sh("docker", args, { input });
}

/** Containers of the local stack's app, as `name release state health` lines. */
export function appContainers(app: string): { name: string; release: string; state: string; health: string }[] {
    const ids = docker(["ps", "-aq", "--filter", `label=platform.app=${app}`, "--filter", "label=platform.stack=local"]).stdout.split("\n").filter(Boolean);
    return ids.map((id) => {
        const [name, release, state, health] = docker([
            "inspect",
            "--format",
            '{{.Name}} {{index .Config.Labels "platform.release"}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}',
            id,
        ]).stdout.trim().replace(/^\//, "").split(" ");
        return { name, release, state, health };
    });
}

/** SQL as the server's admin, over its local socket inside the container. */
export function psql(database: string, sql: string): string {
    const r = docker(["exec", "-i", "platform-postgres", "psql", "-v", "ON_ERROR_STOP=1", "-X", "-qtA", "-U", "postgres", "-d", database], sql);
    if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
    return r.stdout.trim();
}

/** A GET through the edge on a fresh connection (no pooled socket outlives a recreated edge): status and body. */
export function get(urlPath: string): Promise<{ status: number; text: string }> {
    return new Promise((resolve) => {
        const req = http.get(`${LOCAL_URL}${urlPath}`, { agent: false, timeout: 10000 }, (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c) => chunks.push(c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
            res.on("error", (e) => resolve({ status: 0, text: String(e) }));
        });
        req.on("timeout", () => req.destroy(new Error("timeout")));
        req.on("error", (e) => resolve({ status: 0, text: String(e) }));
    });
}

export interface LoadStats {
    requests: number;
    failed: number;
    reasons: Record<string, number>;
    p50: number | null;
    p99: number | null;
    max: number | null;
    markerAt: number | null;
}

/**
 * The load of a release switch (the suite's and bench:deploy's): 8 keep-alive GET clients that never
 * retry, each pausing 50 ms after each answer (about 150 requests/s), plus the POST clients. Paced on
 * purpose: between requests each socket sits idle, the state in which a reload's closing workers reset
 * it, and the switch keeps the CPU it is timed on. On the local stack the load generator, the edge,
 * the containers and `pulumi up` share one machine; unpaced, the load takes every core (on 2 cores the
 * same switch then serves after about 15 s instead of 7).
 */
export const SWITCH_LOAD = { clients: 8, getPauseMs: 50 } as const;

/** tests/e2e/load.js in its own process; `stop` ends it and returns its figures. */
export async function startLoad(clients = 8, marker = "", getPauseMs = 0, app = "demo"): Promise<{ stop: () => Promise<LoadStats> }> {
    const child = spawn(process.execPath, [path.join(__dirname, "load.js"), LOCAL_URL + "/", String(clients), marker, String(getPauseMs), app], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    await new Promise<void>((resolve, reject) => {
        const t = setInterval(() => out.includes("ready") && (clearInterval(t), resolve()), 20);
        child.on("exit", (code) => (clearInterval(t), reject(new Error(`load generator exited ${code}`))));
    });
    return {
        stop: () =>
            new Promise<LoadStats>((resolve) => {
                child.removeAllListeners("exit");
                child.on("exit", () => resolve(JSON.parse(out.trim().split("\n").pop()!)));
                child.kill("SIGTERM");
            }),
    };
}

export const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
