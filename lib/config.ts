// Parsing and validation of the `platform:*` stack config. Pure: it takes the raw strings Pulumi
// hands the program and returns a typed config, or throws one ConfigError listing every problem,
// each naming the key and the fix. Nothing here declares a resource.
import * as net from "net";
import { AppDefinition } from "../apps/types";

export type Target = "scaleway" | "local";

/** One application as a stack runs it: the catalog entry plus the release the stack pins. */
export interface DeployedApp {
    readonly definition: AppDefinition;
    /** An image tag (`1.4.3`) or digest (`sha256:…`). */
    readonly release: string;
    /** Bumped by the operator to rotate the app's database password. */
    readonly passwordVersion: number;
}

export interface PlatformConfig {
    readonly target: Target;
    readonly domain: string;
    readonly acmeEmail: string;
    readonly acmeStaging: boolean;
    readonly instanceType: string;
    readonly sshPublicKey: string;
    /** Plain text here; index.ts wraps it in pulumi.secret before any resource sees it. */
    readonly sshPrivateKey?: string;
    readonly adminCidrs: readonly string[];
    readonly apps: readonly DeployedApp[];
    readonly localHttpPort: number;
    readonly registryUsername?: string;
    readonly registryToken?: string;
    readonly memory: MemoryPlan;
}

export class ConfigError extends Error {
    constructor(readonly problems: readonly string[]) {
        super(
            `Invalid stack configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
                problems.map((p) => `  - ${p}`).join("\n"),
        );
        this.name = "ConfigError";
    }
}

/** Every key the program reads, with what it is for; anything else in the namespace is a typo. */
export const CONFIG_KEYS = [
    "target",
    "domain",
    "acmeEmail",
    "acmeStaging",
    "instanceType",
    "sshPublicKey",
    "sshPrivateKey",
    "adminCidrs",
    "apps",
    "passwordVersions",
    "localHttpPort",
    "registryUsername",
    "registryToken",
] as const;

/** Keys whose values must be set with `pulumi config set --secret`. */
export const SECRET_KEYS: ReadonlySet<string> = new Set(["sshPrivateKey", "registryToken"]);

/** RAM of the Scaleway instance types this platform is sized for, in MiB. */
export const INSTANCE_MEMORY_MB: Readonly<Record<string, number>> = {
    "DEV1-S": 2048,
    "DEV1-M": 4096,
    "DEV1-L": 8192,
    "DEV1-XL": 12288,
    "PLAY2-NANO": 4096,
    "PLAY2-MICRO": 8192,
    "PRO2-XXS": 8192,
    "PRO2-XS": 16384,
    "PRO2-S": 32768,
    "POP2-2C-8G": 8192,
    "POP2-4C-16G": 16384,
    "GP1-XS": 16384,
    "GP1-S": 32768,
};

/** Left to the kernel, Docker, sshd and page cache: containers share what remains. */
export const HOST_RESERVED_MB = 512;
export const EDGE_MEMORY_MB = 128;

export interface MemoryPlan {
    readonly instanceMb: number;
    /** What all container limits together may use. */
    readonly budgetMb: number;
    readonly postgresMb: number;
    readonly edgeMb: number;
    /** Sum of every container limit the stack declares. */
    readonly totalMb: number;
}

/** PostgreSQL gets a quarter of the instance (at least 256 MiB, at most 4 GiB). */
export function postgresMemoryMb(instanceMb: number): number {
    return Math.min(4096, Math.max(256, Math.floor(instanceMb / 4)));
}

export function planMemory(instanceMb: number, apps: readonly AppDefinition[]): MemoryPlan {
    const postgresMb = postgresMemoryMb(instanceMb);
    const appsMb = apps.reduce((sum, a) => sum + a.frontend.memoryMb + a.backend.memoryMb, 0);
    return {
        instanceMb,
        budgetMb: instanceMb - HOST_RESERVED_MB,
        postgresMb,
        edgeMb: EDGE_MEMORY_MB,
        totalMb: postgresMb + EDGE_MEMORY_MB + appsMb,
    };
}

const APP_NAME = /^[a-z][a-z0-9-]{0,30}$/;
// Docker's tag grammar, and a content digest.
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const SSH_KEY_TYPES = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

export function isRelease(value: string): boolean {
    return TAG.test(value) || DIGEST.test(value);
}

/** `repo:tag` or `repo@sha256:…`, whichever the release is. */
export function imageReference(repository: string, release: string): string {
    return DIGEST.test(release) ? `${repository}@${release}` : `${repository}:${release}`;
}

export function isCidr(value: string): boolean {
    const slash = value.indexOf("/");
    if (slash < 0) return false;
    const address = value.slice(0, slash);
    const bits = value.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bits)) return false;
    const family = net.isIP(address);
    if (family === 0) return false;
    return Number(bits) <= (family === 4 ? 32 : 128);
}

/** An OpenSSH public key line whose base64 blob really encodes the key type it names. */
export function isSshPublicKey(value: string): boolean {
    const parts = value.trim().split(/\s+/);
    if (parts.length < 2 || !SSH_KEY_TYPES.includes(parts[0])) return false;
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(parts[1])) return false;
    const blob = Buffer.from(parts[1], "base64");
    if (blob.length < 4) return false;
    const typeLength = blob.readUInt32BE(0);
    return blob.length >= 4 + typeLength && blob.subarray(4, 4 + typeLength).toString() === parts[0];
}

function editDistance(a: string, b: string): number {
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
        let diagonal = row[0];
        row[0] = i;
        for (let j = 1; j <= b.length; j++) {
            const above = row[j];
            row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
            diagonal = above;
        }
    }
    return row[b.length];
}

function closest(word: string, candidates: readonly string[]): string | undefined {
    let best: string | undefined;
    let bestDistance = Infinity;
    for (const c of candidates) {
        const d = editDistance(word.toLowerCase(), c.toLowerCase());
        if (d < bestDistance) {
            best = c;
            bestDistance = d;
        }
    }
    return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** What `pulumi.runtime.allConfig()` gives for the namespace, keys without the `platform:` prefix. */
export type RawConfig = Readonly<Record<string, string>>;

export interface ParseOptions {
    /** The catalog to resolve `apps` against. */
    readonly catalog: Readonly<Record<string, AppDefinition>>;
    /** Whether Pulumi holds the key as a secret (`pulumi config set --secret`). */
    readonly isSecret: (key: string) => boolean;
}

/**
 * Validates the whole namespace and returns the typed config, or throws a ConfigError naming every
 * bad key and its fix. Called before any resource is declared.
 */
export function parsePlatformConfig(raw: RawConfig, options: ParseOptions): PlatformConfig {
    const problems: string[] = [];
    const fail = (key: string, message: string) => problems.push(`platform:${key}: ${message}`);
    const text = (key: string): string | undefined => {
        const v = raw[key];
        return v === undefined || v.trim() === "" ? undefined : v.trim();
    };
    const json = (key: string): unknown => {
        const v = raw[key];
        if (v === undefined || v.trim() === "") return undefined;
        try {
            return JSON.parse(v);
        } catch {
            return v; // A bare string where structured config belongs; reported by the caller.
        }
    };

    for (const key of Object.keys(raw)) {
        if (!(CONFIG_KEYS as readonly string[]).includes(key)) {
            const guess = closest(key, CONFIG_KEYS);
            fail(
                key,
                `unknown key.${guess ? ` Did you mean "${guess}"?` : ""} Known keys: ${CONFIG_KEYS.join(", ")}. ` +
                    `Fix: pulumi config rm platform:${key}`,
            );
        }
    }

    const targetText = text("target") ?? "local";
    let target: Target = "local";
    if (targetText === "scaleway" || targetText === "local") {
        target = targetText;
    } else {
        fail("target", `"${targetText}" is not a target. Fix: pulumi config set platform:target scaleway (or local)`);
    }
    const onCloud = target === "scaleway";

    const domain = (text("domain") ?? (onCloud ? "" : "localhost")).toLowerCase();
    if (onCloud && domain === "") {
        fail("domain", "required on the scaleway target. Fix: pulumi config set platform:domain example.com");
    } else if (onCloud && !DOMAIN.test(domain)) {
        fail("domain", `"${domain}" is not a domain name. Fix: pulumi config set platform:domain example.com`);
    } else if (!onCloud && domain !== "localhost" && !DOMAIN.test(domain)) {
        fail("domain", `"${domain}" is not a domain name. Fix: pulumi config set platform:domain localhost`);
    }

    const acmeEmail = text("acmeEmail") ?? "";
    if (onCloud && acmeEmail === "") {
        fail("acmeEmail", "required on the scaleway target (Let's Encrypt account). Fix: pulumi config set platform:acmeEmail ops@example.com");
    } else if (acmeEmail !== "" && !EMAIL.test(acmeEmail)) {
        fail("acmeEmail", `"${acmeEmail}" is not an email address. Fix: pulumi config set platform:acmeEmail ops@example.com`);
    }

    const booleanKey = (key: string): boolean => {
        const v = text(key);
        if (v === undefined || v === "false") return false;
        if (v === "true") return true;
        fail(key, `"${v}" is not true or false. Fix: pulumi config set platform:${key} true`);
        return false;
    };
    const acmeStaging = booleanKey("acmeStaging");

    const instanceType = (text("instanceType") ?? "DEV1-M").toUpperCase();
    const instanceMb = INSTANCE_MEMORY_MB[instanceType];
    if (instanceMb === undefined) {
        fail(
            "instanceType",
            `"${instanceType}" is not a supported instance type. Fix: pulumi config set platform:instanceType DEV1-M ` +
                `(supported: ${Object.keys(INSTANCE_MEMORY_MB).join(", ")})`,
        );
    }

    const sshPublicKey = text("sshPublicKey") ?? "";
    if (onCloud && sshPublicKey === "") {
        fail("sshPublicKey", 'required on the scaleway target. Fix: pulumi config set platform:sshPublicKey "$(cat ~/.ssh/id_ed25519.pub)"');
    } else if (sshPublicKey !== "" && !isSshPublicKey(sshPublicKey)) {
        fail(
            "sshPublicKey",
            'is not an OpenSSH public key (expected "ssh-ed25519 AAAA… comment"). ' +
                'Fix: pulumi config set platform:sshPublicKey "$(cat ~/.ssh/id_ed25519.pub)"',
        );
    }

    const sshPrivateKey = text("sshPrivateKey");
    for (const key of SECRET_KEYS) {
        if (text(key) !== undefined && !options.isSecret(key)) {
            fail(key, `is stored in plain text. Fix: pulumi config set --secret platform:${key} … (and rotate the exposed value)`);
        }
    }
    if (sshPrivateKey !== undefined && !/^-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(sshPrivateKey)) {
        fail("sshPrivateKey", 'is not a PEM/OpenSSH private key. Fix: pulumi config set --secret platform:sshPrivateKey < ~/.ssh/id_ed25519');
    }

    const cidrs = json("adminCidrs");
    let adminCidrs: string[] = [];
    if (cidrs === undefined) {
        if (onCloud) {
            fail("adminCidrs", "required on the scaleway target: who may reach SSH. Fix: pulumi config set --path 'adminCidrs[0]' 203.0.113.7/32");
        }
    } else if (!Array.isArray(cidrs)) {
        fail("adminCidrs", `must be a list of CIDRs, not ${JSON.stringify(cidrs)}. Fix: pulumi config set --path 'adminCidrs[0]' 203.0.113.7/32`);
    } else {
        cidrs.forEach((c, i) => {
            if (typeof c !== "string" || !isCidr(c)) {
                fail(`adminCidrs[${i}]`, `${JSON.stringify(c)} is not a CIDR. Fix: pulumi config set --path 'adminCidrs[${i}]' 203.0.113.7/32`);
            } else if (/\/0$/.test(c)) {
                fail(`adminCidrs[${i}]`, `${c} opens SSH to the whole internet. Fix: use your office or CI address, e.g. 203.0.113.7/32`);
            }
        });
        adminCidrs = cidrs.filter((c): c is string => typeof c === "string");
        if (onCloud && adminCidrs.length === 0) {
            fail("adminCidrs", "is empty: nobody could reach SSH, and the deployment needs it. Fix: pulumi config set --path 'adminCidrs[0]' 203.0.113.7/32");
        }
    }

    const versions = json("passwordVersions") ?? {};
    const passwordVersions: Record<string, number> = {};
    if (typeof versions !== "object" || versions === null || Array.isArray(versions)) {
        fail("passwordVersions", "must be a map from app name to a whole number. Fix: pulumi config set --path 'passwordVersions.app1' 2");
    } else {
        for (const [name, v] of Object.entries(versions)) {
            if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
                fail(`passwordVersions.${name}`, `${JSON.stringify(v)} is not a whole number. Fix: pulumi config set --path 'passwordVersions.${name}' 2`);
            } else {
                passwordVersions[name] = v;
            }
        }
    }

    const appsValue = json("apps") ?? {};
    const apps: DeployedApp[] = [];
    if (typeof appsValue !== "object" || appsValue === null || Array.isArray(appsValue)) {
        fail("apps", "must be a map from app name to release. Fix: pulumi config set --path 'apps.demo' 1.27-alpine");
    } else {
        const known = Object.keys(options.catalog);
        for (const [name, release] of Object.entries(appsValue)) {
            const definition = options.catalog[name];
            if (definition === undefined) {
                const guess = closest(name, known);
                fail(
                    `apps.${name}`,
                    `"${name}" is not in the app catalog.${guess ? ` Did you mean "${guess}"?` : ""} Known apps: ${known.join(", ")}. ` +
                        `Fix: add apps/${APP_NAME.test(name) ? name : "<name>"}.ts to the catalog, or pulumi config rm --path 'apps.${name}'`,
                );
                continue;
            }
            if (typeof release !== "string" || !isRelease(release)) {
                fail(
                    `apps.${name}`,
                    `${JSON.stringify(release)} is not a release: use an image tag (1.4.3) or a digest (sha256:<64 hex>). ` +
                        `Fix: pulumi config set --path 'apps.${name}' 1.4.3`,
                );
                continue;
            }
            apps.push({ definition, release, passwordVersion: passwordVersions[name] ?? 0 });
        }
        for (const name of Object.keys(passwordVersions)) {
            if (!(name in appsValue)) {
                fail(`passwordVersions.${name}`, `names an app this stack does not run. Fix: pulumi config rm --path 'passwordVersions.${name}'`);
            }
        }
    }

    const portText = text("localHttpPort") ?? "8080";
    const localHttpPort = Number(portText);
    if (!/^\d+$/.test(portText) || localHttpPort < 1 || localHttpPort > 65535) {
        fail("localHttpPort", `"${portText}" is not a TCP port. Fix: pulumi config set platform:localHttpPort 8080`);
    }

    const registryUsername = text("registryUsername");
    const registryToken = text("registryToken");
    if ((registryUsername === undefined) !== (registryToken === undefined)) {
        fail(
            registryUsername === undefined ? "registryUsername" : "registryToken",
            "registryUsername and registryToken go together (ghcr.io login). Fix: set both, or remove both",
        );
    }
    const needsRegistry = apps.filter((a) => [a.definition.frontend, a.definition.backend].some((c) => c.image.startsWith("ghcr.io/")));
    if (onCloud && needsRegistry.length > 0 && registryToken === undefined) {
        fail(
            "registryToken",
            `required to pull ${needsRegistry.map((a) => a.definition.name).join(", ")} from ghcr.io. ` +
                "Fix: pulumi config set platform:registryUsername <github user> && pulumi config set --secret platform:registryToken <PAT with read:packages>",
        );
    }

    const memory = planMemory(
        instanceMb ?? 0,
        apps.map((a) => a.definition),
    );
    if (instanceMb !== undefined && memory.totalMb > memory.budgetMb) {
        const lines = apps.map((a) => `${a.definition.name} ${a.definition.frontend.memoryMb + a.definition.backend.memoryMb}`).join(", ");
        fail(
            "apps",
            `container memory limits sum to ${memory.totalMb} MiB (postgres ${memory.postgresMb}, edge ${memory.edgeMb}, ${lines}) ` +
                `but ${instanceType} leaves ${memory.budgetMb} MiB for containers. ` +
                "Fix: remove an app, lower its memoryMb in apps/, or pulumi config set platform:instanceType DEV1-L",
        );
    }

    if (problems.length > 0) throw new ConfigError(problems);
    return {
        target,
        domain,
        acmeEmail,
        acmeStaging,
        instanceType,
        sshPublicKey,
        sshPrivateKey,
        adminCidrs,
        apps,
        localHttpPort,
        registryUsername,
        registryToken,
        memory,
    };
}
