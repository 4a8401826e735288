// A minimal Pulumi engine for running the program the way `pulumi preview`/`up` do: the test serves the
// ResourceMonitor and Engine gRPC services (with the SDK's own stubs and grpc-js), and spawns
// `node node_modules/@pulumi/pulumi/cmd/run … .` with the arguments and environment the Node.js
// language host passes (PULUMI_CONFIG with `ns:config:key` keys, PULUMI_CONFIG_SECRET_KEYS,
// PULUMI_NODEJS_TYPESCRIPT, …). Nothing is mocked inside the program process: it loads index.ts through
// ts-node exactly as the language host makes it, and talks to this engine over loopback gRPC.
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const ROOT = path.resolve(__dirname, "..", "..");
const SDK_DIR = path.dirname(require.resolve("@pulumi/pulumi/package.json", { paths: [ROOT] }));
/** The entry point the language host runs (its `defaultRunPath`). */
export const RUN_PATH = path.join(SDK_DIR, "cmd", "run");

// The SDK's own copies, so the wire format is exactly the one the program speaks.
/* eslint-disable @typescript-eslint/no-require-imports */
const sdkRequire = (id: string) => require(require.resolve(id, { paths: [SDK_DIR] }));
const grpc = sdkRequire("@grpc/grpc-js");
const resproto = sdkRequire("@pulumi/pulumi/proto/resource_pb");
const resrpc = sdkRequire("@pulumi/pulumi/proto/resource_grpc_pb");
const engrpc = sdkRequire("@pulumi/pulumi/proto/engine_grpc_pb");
const engproto = sdkRequire("@pulumi/pulumi/proto/engine_pb");
const structproto = sdkRequire("google-protobuf/google/protobuf/struct_pb");
const emptyproto = sdkRequire("google-protobuf/google/protobuf/empty_pb");
/* eslint-enable @typescript-eslint/no-require-imports */

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SEVERITY = ["debug", "info", "warning", "error"] as const;

export interface EngineRegistration {
    type: string;
    name: string;
    urn: string;
    parent: string;
    custom: boolean;
    /** Inputs as serialized on the wire (secrets still wrapped). */
    inputs: Record<string, any>;
    /** The options only the monitor sees, as the request carried them (for a replay of the same graph). */
    options: {
        provider: string;
        dependencies: string[];
        propertyDependencies: Record<string, string[]>;
        protect: boolean;
        deleteBeforeReplace?: boolean;
        ignoreChanges: string[];
        replaceOnChanges: string[];
        additionalSecretOutputs: string[];
        retainOnDelete: boolean;
        version: string;
        pluginDownloadURL: string;
        customTimeouts?: { create?: string; update?: string; delete?: string };
        aliases: string[];
    };
    /** The SDK's source position of the registration (the frame below the resource's constructor). */
    sourcePosition?: { uri: string; line: number; column: number };
    /** Milliseconds since the program process was spawned. */
    at: number;
    /** Date.now() when it arrived. */
    epoch: number;
}

export interface EngineLog {
    severity: (typeof SEVERITY)[number];
    message: string;
    urn: string;
    at: number;
    epoch: number;
}

/** What the fake providers answer for a created resource: its outputs (inputs are echoed under them). */
export type OutputsFor = (r: EngineRegistration) => Record<string, unknown>;

function propertyDependencies(req: any): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    req.getPropertydependenciesMap().forEach((v: any, k: string) => (out[k] = v.getUrnsList()));
    return out;
}

/** Unwraps secret envelopes: enough for the fake providers to compute outputs from inputs. */
export function plain(value: any): any {
    if (Array.isArray(value)) return value.map(plain);
    if (value !== null && typeof value === "object") {
        if (value[SECRET_SIG] !== undefined && "value" in value) return plain(value.value);
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
    }
    return value;
}

export interface FakeEngine {
    readonly address: string;
    readonly registrations: EngineRegistration[];
    readonly logs: EngineLog[];
    /** URN → the outputs its last RegisterResourceOutputs carried (the stack's exports, each component's). */
    readonly outputs: Record<string, Record<string, any>>;
    /** Marks t=0 for the `at` timestamps (the spawn of the program). */
    start(): void;
    close(): Promise<void>;
}

export async function startFakeEngine(options: { project: string; stack: string; preview: boolean; outputs?: OutputsFor }): Promise<FakeEngine> {
    let t0 = performance.now();
    const now = () => performance.now() - t0;
    const registrations: EngineRegistration[] = [];
    const logs: EngineLog[] = [];
    const outputs: Record<string, Record<string, any>> = {};
    let rootUrn = "";
    let counter = 0;

    const newUrn = (parent: string, type: string, name: string) => {
        const qualified = parent ? `${parent.split("::")[2].split("$").pop()}$${type}` : type;
        return `urn:pulumi:${options.stack}::${options.project}::${qualified}::${name}`;
    };
    const ok = (callback: (e: unknown, r?: unknown) => void, response: unknown) => callback(null, response);

    const server = new grpc.Server({ "grpc.max_receive_message_length": 400 * 1024 * 1024 });
    server.addService(resrpc.ResourceMonitorService, {
        supportsFeature: (call: any, callback: any) => {
            const resp = new resproto.SupportsFeatureResponse();
            resp.setHassupport(true);
            ok(callback, resp);
        },
        registerResource: (call: any, callback: any) => {
            const req = call.request;
            const registration: EngineRegistration = {
                type: req.getType(),
                name: req.getName(),
                parent: req.getParent(),
                custom: req.getCustom(),
                urn: newUrn(req.getParent(), req.getType(), req.getName()),
                inputs: req.getObject()?.toJavaScript() ?? {},
                options: {
                    provider: req.getProvider(),
                    dependencies: req.getDependenciesList(),
                    propertyDependencies: propertyDependencies(req),
                    protect: req.getProtect() === true,
                    ...(req.getDeletebeforereplacedefined() ? { deleteBeforeReplace: req.getDeletebeforereplace() } : {}),
                    ignoreChanges: req.getIgnorechangesList(),
                    replaceOnChanges: req.getReplaceonchangesList(),
                    additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
                    retainOnDelete: req.getRetainondelete() === true,
                    version: req.getVersion(),
                    pluginDownloadURL: req.getPlugindownloadurl(),
                    ...(req.getCustomtimeouts() ? { customTimeouts: Object.fromEntries(Object.entries(req.getCustomtimeouts().toObject()).filter(([, v]) => v)) } : {}),
                    aliases: req.getAliasurnsList(),
                },
                ...(req.getSourceposition() ? { sourcePosition: { uri: req.getSourceposition().getUri(), line: req.getSourceposition().getLine(), column: req.getSourceposition().getColumn() } } : {}),
                at: now(),
                epoch: Date.now(),
            };
            registrations.push(registration);
            const resp = new resproto.RegisterResourceResponse();
            resp.setUrn(registration.urn);
            let state: Record<string, unknown> = registration.inputs;
            if (registration.custom) {
                resp.setId(options.preview ? "" : `${registration.name}-${(++counter).toString(16).padStart(8, "0")}`);
                if (!options.preview) state = { ...state, ...(options.outputs?.(registration) ?? {}) };
            }
            resp.setObject(structproto.Struct.fromJavaScript(state));
            ok(callback, resp);
        },
        registerResourceOutputs: (call: any, callback: any) => {
            outputs[call.request.getUrn()] = call.request.getOutputs()?.toJavaScript() ?? {};
            ok(callback, new emptyproto.Empty());
        },
        readResource: (call: any, callback: any) => {
            const resp = new resproto.ReadResourceResponse();
            resp.setUrn(newUrn(call.request.getParent(), call.request.getType(), call.request.getName()));
            resp.setProperties(call.request.getProperties());
            ok(callback, resp);
        },
        invoke: (call: any, callback: any) => {
            const resp = new (sdkRequire("@pulumi/pulumi/proto/provider_pb").InvokeResponse)();
            resp.setReturn(structproto.Struct.fromJavaScript({}));
            ok(callback, resp);
        },
        registerPackage: (call: any, callback: any) => {
            const resp = new resproto.RegisterPackageResponse();
            resp.setRef(`package-${call.request.getName()}`);
            ok(callback, resp);
        },
        registerStackTransform: (call: any, callback: any) => ok(callback, new emptyproto.Empty()),
        registerStackInvokeTransform: (call: any, callback: any) => ok(callback, new emptyproto.Empty()),
        registerResourceHook: (call: any, callback: any) => ok(callback, new emptyproto.Empty()),
        registerErrorHook: (call: any, callback: any) => ok(callback, new emptyproto.Empty()),
        signalAndWaitForShutdown: (call: any, callback: any) => ok(callback, new emptyproto.Empty()),
    });
    server.addService(engrpc.EngineService, {
        log: (call: any, callback: any) => {
            const req = call.request;
            logs.push({ severity: SEVERITY[req.getSeverity()] ?? "info", message: req.getMessage(), urn: req.getUrn(), at: now(), epoch: Date.now() });
            ok(callback, new emptyproto.Empty());
        },
        getRootResource: (call: any, callback: any) => {
            const resp = new engproto.GetRootResourceResponse();
            resp.setUrn(rootUrn);
            ok(callback, resp);
        },
        setRootResource: (call: any, callback: any) => {
            rootUrn = call.request.getUrn();
            ok(callback, new engproto.SetRootResourceResponse());
        },
        requirePulumiVersion: (call: any, callback: any) => ok(callback, new engproto.RequirePulumiVersionResponse()),
        startDebugging: (call: any, callback: any) => ok(callback, new emptyproto.Empty()),
    });
    const port: number = await new Promise((resolve, reject) =>
        server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e: Error | null, p: number) => (e ? reject(e) : resolve(p))),
    );
    return {
        address: `127.0.0.1:${port}`,
        registrations,
        logs,
        outputs,
        start: () => {
            t0 = performance.now();
        },
        close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
    };
}

export interface LanguageHostRun {
    exitCode: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
    registrations: EngineRegistration[];
    /** URN → registered outputs (the stack's exports, each component's). */
    outputs: Record<string, Record<string, any>>;
    logs: EngineLog[];
    errors: EngineLog[];
    /** Milliseconds from spawn to the program's last RegisterResource call. */
    lastRegistrationMs: number;
    /** Milliseconds from spawn to the process's exit. */
    exitMs: number;
    /** The program process's peak resident memory (its own getrusage), in MiB; undefined if it was killed. */
    peakMiB?: number;
    /** CPU time the program process used (user + system), in ms: unlike wall time, not inflated by a busy machine. */
    cpuMs?: number;
    timedOut: boolean;
}

export interface LanguageHostOptions {
    /** The node binary (the machine's by default). */
    node?: string;
    project?: string;
    stack: string;
    preview: boolean;
    /** `key` → value in the `platform` namespace (or `ns:key` for another namespace). JSON strings for objects. */
    config: Record<string, string>;
    /** Keys (as in `config`) set with --secret. */
    secretKeys?: string[];
    /** Pulumi.yaml `runtime.options.typescript` (true in this project). */
    typescript?: boolean;
    /** Extra environment: PULUMI_NODEJS_TRANSPILE_ONLY, PULUMI_NODEJS_TSCONFIG_PATH, … */
    env?: Record<string, string | undefined>;
    /** Pulumi.yaml `runtime.options.nodeargs`, split. */
    nodeArgs?: string[];
    /** Added to NODE_OPTIONS (e.g. a test-only `--require` preload). */
    nodeOptions?: string[];
    /** The entry point the engine passes: `.` (Pulumi.yaml `main` unset or the project directory), or a path. */
    entryPoint?: string;
    outputs?: OutputsFor;
    timeoutMs?: number;
    /** Called with the child as soon as it is spawned. */
    onSpawn?: (child: ChildProcess) => void;
}

const PEAK_RSS_PRELOAD = path.join(__dirname, "peakRss.js");

/** The directory the language host runs the program in: the project's, or that of `main` when it is a file. */
function programDirectory(entryPoint: string | undefined): string {
    const entry = path.resolve(ROOT, entryPoint ?? ".");
    return fs.existsSync(entry) && fs.statSync(entry).isFile() ? path.dirname(entry) : entry;
}

function fullKey(key: string): string {
    const [ns, name] = key.includes(":") ? key.split(/:(.*)/s) : ["platform", key];
    return `${ns}:config:${name}`;
}

/** Runs the program once, as `pulumi preview` (preview: true) or `pulumi up` would, against a fresh fake engine. */
export async function runThroughLanguageHost(options: LanguageHostOptions): Promise<LanguageHostRun> {
    const project = options.project ?? "platform";
    const engine = await startFakeEngine({ project, stack: options.stack, preview: options.preview, outputs: options.outputs });
    const rssFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "platform-langhost-")), "peak");
    const config = Object.fromEntries(Object.entries(options.config).map(([k, v]) => [fullKey(k), v]));
    const env: Record<string, string | undefined> = {
        ...process.env,
        PULUMI_CONFIG: JSON.stringify(config),
        PULUMI_CONFIG_SECRET_KEYS: JSON.stringify((options.secretKeys ?? []).map((k) => (k.includes(":") ? k : `platform:${k}`))),
        PULUMI_NODEJS_TYPESCRIPT: options.typescript === false ? undefined : "true",
        NODE_OPTIONS: [process.env.NODE_OPTIONS ?? "", `--require ${PEAK_RSS_PRELOAD}`, ...(options.nodeOptions ?? [])].join(" ").trim(),
        PLATFORM_PEAK_RSS_FILE: rssFile,
        ...options.env,
    };
    // The test runner's own ts-node settings must not leak into the program's process.
    for (const k of Object.keys(env)) if (k.startsWith("TS_NODE_")) delete env[k];
    const args = [
        ...(options.nodeArgs ?? []),
        RUN_PATH,
        "--monitor", engine.address,
        "--engine", engine.address,
        "--organization", "organization",
        "--project", project,
        "--root-directory", ROOT,
        "--stack", options.stack,
        // As the Go language host does: the program runs in the directory of `main` when main is a file.
        "--pwd", programDirectory(options.entryPoint),
        ...(options.preview ? ["--dry-run"] : []),
        "--parallel", "16",
        // A file `main` by its absolute path, since the program runs in its directory.
        programDirectory(options.entryPoint) === path.resolve(ROOT, options.entryPoint ?? ".") ? (options.entryPoint ?? ".") : path.resolve(ROOT, options.entryPoint!),
    ];
    engine.start();
    const started = performance.now();
    const child = spawn(options.node ?? process.execPath, args, { cwd: ROOT, env: env as NodeJS.ProcessEnv, stdio: ["ignore", "pipe", "pipe"] });
    options.onSpawn?.(child);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d) => (stdout += d));
    child.stderr!.on("data", (d) => (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
        timedOut = true;
        child.kill("SIGKILL");
    }, options.timeoutMs ?? 120000);
    const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once("close", (c, s) => resolve([c, s])));
    const exitMs = performance.now() - started;
    clearTimeout(timer);
    await engine.close();
    let peakMiB: number | undefined;
    let cpuMs: number | undefined;
    try {
        const [rss, cpu] = fs.readFileSync(rssFile, "utf8").trim().split(" ").map(Number);
        peakMiB = rss / 1024;
        cpuMs = cpu;
    } catch {
        peakMiB = undefined;
    }
    fs.rmSync(path.dirname(rssFile), { recursive: true, force: true });
    return {
        exitCode,
        signal,
        stdout,
        stderr,
        registrations: engine.registrations,
        outputs: engine.outputs,
        logs: engine.logs,
        errors: engine.logs.filter((l) => l.severity === "error"),
        lastRegistrationMs: Math.max(0, ...engine.registrations.map((r) => r.at)),
        exitMs,
        peakMiB,
        cpuMs,
        timedOut,
    };
}

/** Outputs a created resource gets from the fake providers: enough for every apply in the program to run. */
export function providerOutputs(overrides: { address?: string; hostKeyLine?: string } = {}): OutputsFor {
    return (r) => {
        const i = plain(r.inputs);
        switch (r.type) {
            case "docker:index/container:Container":
                return { name: i.name ?? `${r.name}-${Math.random().toString(16).slice(2, 9)}` };
            case "docker:index/remoteImage:RemoteImage":
                return { imageId: `sha256:${Buffer.from(String(i.name)).toString("hex").padEnd(64, "0").slice(0, 64)}` };
            case "docker:index/network:Network":
            case "docker:index/volume:Volume":
                return { name: i.name ?? r.name };
            case "scaleway:instance/ip:Ip":
                return { address: overrides.address ?? "51.15.200.7" };
            case "scaleway:iam/apiKey:ApiKey":
                return { accessKey: "SCWFAKEACCESSKEY0001", secretKey: "00000000-0000-4000-8000-000000000001" };
            case "random:index/randomPassword:RandomPassword":
                return { result: `generated-${r.name}` };
            case "command:remote:Command":
                return {
                    stdout: r.name.endsWith("wait-for-docker")
                        ? `cloud-init done\n${overrides.hostKeyLine ?? "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHMbJt8HkIVb3cQzQ0k7m4eqK5QdKHnXk0t7L1CTbsRM root@platform"}\n`
                        : "",
                    stderr: "",
                };
            case "command:local:Command":
                return { stdout: "", stderr: "" };
            default:
                return {};
        }
    };
}

/** How Pulumi.yaml tells the language host to run the program: `runtime.options` and `main`. */
export interface ProjectRuntime {
    typescript: boolean;
    nodeArgs: string[];
    entryPoint: string;
    env: Record<string, string>;
}

export function projectRuntime(): ProjectRuntime {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const yaml = require("js-yaml") as { load(text: string): any };
    const project = yaml.load(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")) ?? {};
    const options = (typeof project.runtime === "object" ? project.runtime?.options : undefined) ?? {};
    const env: Record<string, string> = {};
    if (typeof options.tsconfig === "string") env.PULUMI_NODEJS_TSCONFIG_PATH = options.tsconfig;
    return {
        // The language host's default is true.
        typescript: options.typescript !== false,
        nodeArgs: typeof options.nodeargs === "string" ? options.nodeargs.split(/\s+/).filter(Boolean) : [],
        entryPoint: typeof project.main === "string" ? project.main : ".",
        env,
    };
}

/**
 * Node binaries to prove a behaviour on: the one running the tests, the machine's own (PLATFORM_MACHINE_NODE,
 * set by .ci/run when it runs the suite under Node 24) and Node 24 (this one if it is 24, else
 * PLATFORM_NODE24, else the copy .ci/run caches). Under CI a missing Node 24 is an error, not a skip.
 */
export function nodeBinaries(): { label: string; path: string }[] {
    const found = new Map<string, string>();
    const add = (p: string | undefined) => {
        if (p === undefined || p === "" || !fs.existsSync(p)) return;
        const real = fs.realpathSync(p);
        if ([...found.values()].includes(real)) return;
        const version = require("child_process").execFileSync(real, ["--version"], { encoding: "utf8" }).trim();
        found.set(`node ${version}`, real);
    };
    add(process.execPath);
    add(process.env.PLATFORM_MACHINE_NODE);
    if (!process.version.startsWith("v24.")) {
        add(process.env.PLATFORM_NODE24);
        add(path.join(process.env.PLATFORM_NODE24_PREFIX ?? path.join(os.homedir(), ".cache", "platform-node24"), "node_modules", ".bin", "node"));
    }
    return [...found].map(([label, p]) => ({ label, path: p }));
}
