// Runs the program under Pulumi mocks and records every registration: type, name, inputs (secrets
// still wrapped), provider, and the options only the monitor sees (deleteBeforeReplace, protect,
// retainOnDelete, ignoreChanges, dependencies).
import * as pulumi from "@pulumi/pulumi";
import { untilNoNewRegistration } from "../commands/programGraph";
import { TEST_SSH_PUBLIC_KEYS } from "../config/testValues";

export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
export const FAKE_IP = "51.15.200.7";
/** The project a mocked bucket (or other project-scoped resource) lands in, as Scaleway computes it. */
export const FAKE_PROJECT_ID = "7d3c5a0e-1f2b-4c8d-9e6a-0b1c2d3e4f50";
export const FAKE_HOST_KEY = TEST_SSH_PUBLIC_KEYS.fake;

export interface Registration {
    type: string;
    name: string;
    urn: string;
    inputs: Record<string, any>;
    provider: string;
    custom: boolean;
    parent: string;
    deleteBeforeReplace: boolean;
    deleteBeforeReplaceDefined: boolean;
    protect: boolean;
    retainOnDelete: boolean;
    ignoreChanges: string[];
    dependencies: string[];
}

export interface RunResult {
    resources: Registration[];
    byType(type: string): Registration[];
    one(type: string, name: string): Registration;
    appContainer(app: string, role: "frontend" | "backend"): Registration;
}

let counter = 0;

/** Outputs a StackReference to `name` reads in the mocks (e.g. this stack's own previous outputs). */
export const STACK_REFERENCE_OUTPUTS = new Map<string, Record<string, unknown>>();

function outputsFor(args: pulumi.runtime.MockResourceArgs): Record<string, any> {
    const i = { ...args.inputs };
    switch (args.type) {
        case "docker:index/container:Container":
            // The provider auto-names containers without a name, as Pulumi's autonaming does.
            return { ...i, name: i.name ?? `${args.name}-${(++counter).toString(16).padStart(7, "0")}` };
        case "docker:index/remoteImage:RemoteImage":
            return { ...i, imageId: `sha256:${Buffer.from(String(i.name)).toString("hex").padEnd(64, "0").slice(0, 64)}` };
        case "docker:index/network:Network":
        case "docker:index/volume:Volume":
            return { ...i, name: i.name ?? args.name };
        case "scaleway:object/bucket:Bucket":
            return { ...i, projectId: i.projectId ?? FAKE_PROJECT_ID };
        case "scaleway:instance/ip:Ip":
            return { ...i, address: FAKE_IP };
        case "random:index/randomPassword:RandomPassword":
            return { ...i, result: `generated-${args.name}-${i.keepers?.version ?? "0"}` };
        case "command:remote:Command":
            return { ...i, stdout: args.name.endsWith("wait-for-docker") ? `cloud-init done\n${FAKE_HOST_KEY} root@platform\n` : "", stderr: "" };
        case "command:local:Command":
            return { ...i, stdout: "", stderr: "" };
        case "pulumi:pulumi:StackReference":
            // The stack's outputs as the previous deployment left them (none: a new stack), set per test.
            return { ...i, outputs: STACK_REFERENCE_OUTPUTS.get(String(i.name)) ?? {}, secretOutputNames: [] };
        default:
            return i;
    }
}

/** Unwraps an Output to a promise of its value (undefined while unknown). */
export function unwrap<T>(output: pulumi.Output<T> | pulumi.Input<T>): Promise<T> {
    return new Promise((resolve) => pulumi.output(output).apply((v) => resolve(v as T)));
}

export function isSecretValue(value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<string, unknown>)["4dabf18193072939515e22adb298388d"] === SECRET_SIG;
}

export function reveal(value: any): any {
    if (isSecretValue(value)) return reveal(value.value);
    if (Array.isArray(value)) return value.map(reveal);
    if (typeof value === "object" && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reveal(v)]));
    return value;
}

/**
 * Sets mocks for `stack`, runs `program`, waits until no new registration arrives, and returns
 * every registration with its options.
 */
export async function runProgram<T>(stack: string, program: () => T, options: { preview?: boolean } = {}): Promise<RunResult & { value: T }> {
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => ({ id: args.inputs.name ? `${args.name}-id` : `${args.name}-id`, state: outputsFor(args) }),
            call: (args) => args.inputs,
        },
        "platform",
        stack,
        options.preview ?? false,
        // The self-managed backends' organization, as the program's own stack name reads it.
        "organization",
    );
    const resources: Registration[] = [];
    const monitor = pulumi.runtime.getMonitor() as any;
    const original = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: any, callback: any) => {
        const type: string = req.getType();
        const name: string = req.getName();
        const parent: string = req.getParent();
        const urn = monitor.newUrn(parent, type, name);
        resources.push({
            type,
            name,
            urn,
            inputs: pulumi.runtime.deserializeProperties(req.getObject()),
            provider: req.getProvider(),
            custom: req.getCustom(),
            parent,
            deleteBeforeReplace: req.getDeletebeforereplace(),
            deleteBeforeReplaceDefined: req.getDeletebeforereplacedefined(),
            protect: req.getProtect(),
            retainOnDelete: req.getRetainondelete(),
            ignoreChanges: req.getIgnorechangesList(),
            dependencies: req.getDependenciesList(),
        });
        return original(req, callback);
    };

    const value = program();
    await untilNoNewRegistration(() => resources.length);
    const byType = (type: string) => resources.filter((r) => r.type === type);
    const one = (type: string, name: string) => {
        const found = resources.filter((r) => r.type === type && r.name === name);
        if (found.length !== 1) throw new Error(`expected one ${type} named ${name}, found ${found.length}: ${resources.map((r) => r.name).join(", ")}`);
        return found[0];
    };
    /** The container of an app's role (`demo`, `h1-app1`), whatever release its name carries (releaseKey). */
    const appContainer = (app: string, role: "frontend" | "backend") => {
        const shape = new RegExp(`^${app.replace(/[.]/g, "\\.")}-${role}-[A-Za-z0-9_.-]+-[0-9a-f]{8}$`);
        const found = resources.filter((r) => r.type === T.container && shape.test(r.name));
        if (found.length !== 1) throw new Error(`expected one ${role} container of ${app}, found ${found.length}: ${resources.map((r) => r.name).join(", ")}`);
        return found[0];
    };
    return { resources, byType, one, appContainer, value };
}

export const T = {
    container: "docker:index/container:Container",
    image: "docker:index/remoteImage:RemoteImage",
    network: "docker:index/network:Network",
    volume: "docker:index/volume:Volume",
    dockerProvider: "pulumi:providers:docker",
    pgProvider: "pulumi:providers:postgresql",
    role: "postgresql:index/role:Role",
    database: "postgresql:index/database:Database",
    grant: "postgresql:index/grant:Grant",
    /** components/appDatabase.ts's one mechanism, on both servers. */
    appDatabase: "pulumi-nodejs:dynamic/database:RoleAndDatabase",
    password: "random:index/randomPassword:RandomPassword",
    remoteCommand: "command:remote:Command",
    localCommand: "command:local:Command",
    ip: "scaleway:instance/ip:Ip",
    securityGroup: "scaleway:instance/securityGroup:SecurityGroup",
    server: "scaleway:instance/server:Server",
    sshKey: "scaleway:iam/sshKey:SshKey",
} as const;
