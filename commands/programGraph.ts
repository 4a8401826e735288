// The program's resource URNs for a stack config, without the Pulumi CLI or any cloud: the program
// runs here under the SDK's mocks (a preview), and every registration's type, name and URN is kept.
// The migration command (commands/migrate-to-managed.ts) uses it to print the exact `--target` list of
// its step 2 (what `database: managed` adds to the stack) and the volume's URN of its step 4.
//
// Nothing of the operator's machine is touched: ScalewayHost writes its SSH files under a temporary
// PLATFORM_SSH_DIR (removed afterwards), and the admin channel opens nothing (a preview). The backup
// bucket's administrators come from the stack's config (platform:backupAdministrators), as in `up`.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import type * as pulumi from "@pulumi/pulumi";
import { catalog } from "../apps";
import { RawConfig, SECRET_KEYS, SECRET_PLACEHOLDERS, parseStackConfig, placeholderSecrets } from "../config/platformConfig";
import { isTestStackEnvironment } from "../config/testValues";
import { SSH_DIR_ENV } from "../io/sshFiles";

export interface GraphResource {
    readonly type: string;
    readonly name: string;
    readonly urn: string;
    readonly custom: boolean;
}

const PLACEHOLDER_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHMbJt8HkIVb3cQzQ0k7m4eqK5QdKHnXk0t7L1CTbsRM";
/**
 * What a managed instance's `certificate` is in the program's dry evaluation: a self-signed P-256
 * certificate naming 172.16.32.9 (the mocked private endpoint), no key anywhere. The program parses
 * it (render/postgres.ts, managedServerTls) and refuses an instance without one.
 */
export const PLACEHOLDER_DB_CERTIFICATE =
    "-----BEGIN CERTIFICATE-----\nMIIBxDCCAWugAwIBAgIUGqad6SvxsrOelsyeArr4T9xgsr0wCgYIKoZIzj0EAwIw\nMDEuMCwGA1UEAwwlcGxhdGZvcm0gcGxhY2Vob2xkZXIgbWFuYWdlZCBkYXRhYmFz\nZTAgFw0yNjEyMDQyMTE1MzhaGA8yMTI2MTExMDIxMTUzOFowMDEuMCwGA1UEAwwl\ncGxhdGZvcm0gcGxhY2Vob2xkZXIgbWFuYWdlZCBkYXRhYmFzZTBZMBMGByqGSM49\nAgEGCCqGSM49AwEHA0IABAwsXrTrKsSMhhAFWkjDV0NJcBRQFj78M931GAdWpwcc\nWcLuyXnlcpgUzpGfrMy3eccOawG8Z8l5FUQczhJnV+GjYTBfMB0GA1UdDgQWBBRu\ntQ6ws+BatbSNnHkvum5drKldYDAfBgNVHSMEGDAWgBRutQ6ws+BatbSNnHkvum5d\nrKldYDAPBgNVHREECDAGhwSsECAJMAwGA1UdEwEB/wQCMAAwCgYIKoZIzj0EAwID\nRwAwRAIgQ5b7rMdg/9pKUZk+Lo3x4D/mwOvSBV5TxozhBp8HfSECIFky6Lx0bDHu\noKTUJvTyCs0pOltocdzGbhrnxeO9kr98\n-----END CERTIFICATE-----\n";

/**
 * A stack file's `config:` as the runtime hands it to the program (`namespace:key` → string; lists
 * and maps as JSON). Secret values (`secure:`) cannot be read here and do not shape any URN: they
 * become placeholders.
 */
export function stackConfigFromYaml(text: string): Record<string, string> {
    const doc = yaml.load(text) as { config?: Record<string, unknown> } | undefined;
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(doc?.config ?? {})) {
        if (typeof value === "object" && value !== null && "secure" in value) {
            const short = key.slice(key.indexOf(":") + 1);
            out[key] = SECRET_PLACEHOLDERS[short] ?? "placeholder";
        } else out[key] = typeof value === "string" ? value : JSON.stringify(value);
    }
    return out;
}

/** Outputs the program reads from the cloud, as a deployed stack would have them. */
function mockState(args: pulumi.runtime.MockResourceArgs, counter: { n: number }): Record<string, unknown> {
    const i: Record<string, any> = { ...args.inputs };
    switch (args.type) {
        case "docker:index/container:Container":
            return { ...i, name: i.name ?? `${args.name}-${(++counter.n).toString(16).padStart(7, "0")}` };
        case "docker:index/remoteImage:RemoteImage":
            return { ...i, imageId: `sha256:${"0".repeat(64)}` };
        case "scaleway:instance/ip:Ip":
            return { ...i, address: `51.15.200.${++counter.n % 250}` };
        case "scaleway:ipam/ip:Ip":
            return { ...i, address: `172.16.32.${10 + (++counter.n % 200)}/22` };
        case "scaleway:loadbalancers/ip:Ip":
            return { ...i, ipAddress: "51.159.10.20" };
        case "scaleway:databases/instance:Instance":
            return { ...i, privateNetwork: { ...(i.privateNetwork ?? {}), ip: "172.16.32.9", port: 5432 }, certificate: PLACEHOLDER_DB_CERTIFICATE };
        case "random:index/randomPassword:RandomPassword":
        case "random:index/randomString:RandomString":
            return { ...i, result: `placeholder${args.name.replace(/[^a-z0-9]/gi, "")}` };
        case "command:remote:Command":
            return { ...i, stdout: args.name.endsWith("wait-for-docker") ? `${PLACEHOLDER_HOST_KEY} root@platform\n` : "", stderr: "" };
        case "scaleway:iam/application:Application":
            return { ...i, id: "00000000-0000-0000-0000-000000000000" };
        default:
            return i;
    }
}

/** Every resource the program declares for `stack` with these settings, in registration order. */
export async function programResources(stack: string, project: string, stackConfig: Readonly<Record<string, string>>): Promise<GraphResource[]> {
    const sshDir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-graph-ssh-"));
    const saved = process.env[SSH_DIR_ENV];
    process.env[SSH_DIR_ENV] = sshDir;
    try {
        // Loaded here, not at the top: the SDK takes seconds to load, and the migration command's other
        // steps (and its --help) do not need it.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const pulumi = require("@pulumi/pulumi") as typeof import("@pulumi/pulumi");
        const counter = { n: 0 };
        await pulumi.runtime.setMocks(
            { newResource: (args) => ({ id: `${args.name}-id`, state: mockState(args, counter) }), call: (args) => args.inputs },
            project,
            stack,
            true,
            // The self-managed backends' organization: the several-hosts shape names its own stack with it.
            "organization",
        );
        const resources: GraphResource[] = [];
        const monitor = pulumi.runtime.getMonitor() as any;
        const original = monitor.registerResource.bind(monitor);
        monitor.registerResource = (req: any, callback: any) => {
            resources.push({ type: req.getType(), name: req.getName(), urn: monitor.newUrn(req.getParent(), req.getType(), req.getName()), custom: req.getCustom() });
            return original(req, callback);
        };
        const platform: Record<string, string> = { ...stackConfig };
        // The stack file of a checkout may lack the secrets (they live in the operator's copy): a
        // placeholder where the config needs one; no URN depends on a secret's value.
        if (platform["platform:registryUsername"] && !platform["platform:registryToken"]) platform["platform:registryToken"] = "placeholder";
        const config = parseStackConfig(platform as RawConfig, { catalog, isSecret: (key) => SECRET_KEYS.has(key), testStack: isTestStackEnvironment(process.env), unreadableSecrets: placeholderSecrets(platform) });
        // Loaded here, not at the top: the program's modules must see the mocks.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { definePlatform } = require("../components/platform") as typeof import("../components/platform");
        definePlatform(config, {
            openForward: async () => ({ host: "127.0.0.1", port: 1, pid: 0, close: () => undefined }),
            // A first `up`: no DNS record points at a balancer that does not exist yet (no certificate).
            resolveAddresses: async () => [],
        });
        await untilNoNewRegistration(() => resources.length);
        return resources;
    } finally {
        if (saved === undefined) delete process.env[SSH_DIR_ENV];
        else process.env[SSH_DIR_ENV] = saved;
        fs.rmSync(sshDir, { recursive: true, force: true });
    }
}

/**
 * Resolves once `count()` has stayed the same for 200 ms: the program has registered everything it
 * will (registrations arrive asynchronously, as outputs resolve under the mocks).
 */
export async function untilNoNewRegistration(count: () => number): Promise<void> {
    let seen = -1;
    for (let stable = 0; stable < 5; ) {
        await new Promise((r) => setTimeout(r, 40));
        if (count() === seen) stable++;
        else {
            stable = 0;
            seen = count();
        }
    }
}
