// The `platform:*` stack config, declared once. CONFIG_SCHEMA below is the single source of every key:
// its Pulumi.yaml declaration (type, default, description), whether it is a secret, a documented example,
// and the valibot schema that turns the raw string Pulumi hands the program into a typed value, with a
// message naming the key and the fix for every way it can be wrong. Rules between keys (what the scaleway
// target requires, memory and connection budgets, ...) follow as one list. `parsePlatformConfig` runs it
// all and returns the typed PlatformConfig, or throws one ConfigError listing every problem. Pure:
// nothing here declares a resource. tests/docs.test.ts checks Pulumi.yaml and the README against it.
//
// Why valibot and not zod 4: the same declarative API (schemas, pipes, custom messages, issue paths), at a
// fraction of the start-up cost every preview pays (bench/configSchema.ts: requiring zod 4 takes ~90-190 ms
// on the CI-sized machine, valibot ~15-25 ms; the note in /work/notes/config-schema.md has the runs).
import * as v from "valibot";
import { AppDefinition } from "../apps/types";
import { FORWARDER_MEMORY_MB, connectionBudgetProblems } from "../render/postgres";
import { migrationProblems } from "../render/containers";
import {
    DOMAIN,
    cidrRange,
    coversWholeInternet,
    isAgeRecipient,
    isCronSchedule,
    isEmail,
    isHeartbeatUrl,
    isRelease,
    isSshPublicKey,
} from "../render/values";
import { isTestAgeRecipient, isTestCidr, isTestSigningKey, isTestSshPublicKey } from "./testValues";
import { TrustedKey, isSigningSecretKey, parseTrustedKeys, signingPublicKey } from "../render/signing";

export type Target = "scaleway" | "local";

/** One application as a stack runs it: the catalog entry plus the release the stack pins. */
export interface DeployedApp {
    readonly definition: AppDefinition;
    /** An image tag (`1.4.3`) or digest (`sha256:…`). */
    readonly release: string;
    /** Bumped by the operator to rotate the app's database password. */
    readonly passwordVersion: number;
}

export const SCALE_DEFAULTS = { database: "container", hosts: 1, managedDatabaseNodeType: "DB-DEV-S", managedDatabaseHa: false, managedDatabaseBackupDays: 7 } as const;
export const MAX_HOSTS = 10;
export const BACKUP_DEFAULTS = { schedule: "30 3 * * *", retentionDays: 30, lockDays: 7 } as const;

export class ConfigError extends Error {
    constructor(readonly problems: readonly string[]) {
        super(
            `Invalid stack configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
                problems.map((p) => `  - ${p}`).join("\n"),
        );
        this.name = "ConfigError";
    }
}

/**
 * Config namespaces a stack may use: the project's own and those of the providers it runs. A key in
 * any other namespace is a typo (`platfrom:apps`) that would otherwise be ignored silently.
 */
export const CONFIG_NAMESPACES = ["platform", "scaleway", "docker", "postgresql", "command", "random", "pulumi"] as const;

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
    /** The loopback forwarder that gives the admin channel a way in while PostgreSQL has no gateway. */
    readonly forwarderMb: number;
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
        forwarderMb: FORWARDER_MEMORY_MB,
        edgeMb: EDGE_MEMORY_MB,
        totalMb: postgresMb + FORWARDER_MEMORY_MB + EDGE_MEMORY_MB + appsMb,
    };
}

const APP_NAME = /^[a-z][a-z0-9-]{0,30}$/;

/** The broadest prefix a single admin CIDR may have without the explicit opt-in. */
export const BROADEST_ADMIN_PREFIX = { 4: 8, 6: 32 } as const;

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
    /**
     * A test stack (config/testValues.ts): the test suite's published keys, recipients and documentation
     * addresses are accepted. Never true for a stack someone deploys; false when absent.
     */
    readonly testStack?: boolean;
    /**
     * Secret keys whose value is a stand-in (SECRET_PLACEHOLDERS) because this evaluation cannot
     * decrypt them (npm run check, the program graph): a rule comparing such a value with another key is skipped.
     */
    readonly unreadableSecrets?: ReadonlySet<string>;
}

/**
 * Stand-ins for secrets a dry evaluation cannot decrypt (`secure:` values of a stack file): each has its
 * key's form, and none is a key anyone holds (the signing key is 32 zero bytes). No URN depends on them.
 */
export const SECRET_PLACEHOLDERS: Readonly<Record<string, string>> = {
    backupSigningKey: `ed25519-secret:${"A".repeat(43)}=`,
};

/** The keys of a stack config (`platform:key` → value) that hold their SECRET_PLACEHOLDERS stand-in, by short name. */
export function placeholderSecrets(config: Readonly<Record<string, string | undefined>>): Set<string> {
    return new Set(Object.keys(SECRET_PLACEHOLDERS).filter((k) => config[`platform:${k}`] === SECRET_PLACEHOLDERS[k]));
}

// ---------------------------------------------------------------------------------------------------
// Building blocks. Every value arrives as a string (lists and maps as JSON); empty means unset.

type Message = (input: string) => string;
const shown = (x: unknown) => JSON.stringify(x);

/** A string key, trimmed (and optionally case-folded). */
const text = (fold?: "lower" | "upper") =>
    v.pipe(
        v.string(),
        v.trim(),
        v.transform((s: string) => (fold === "lower" ? s.toLowerCase() : fold === "upper" ? s.toUpperCase() : s)),
    );

/** A string key that must pass `test`. */
const checked = (test: (s: string) => boolean, message: Message, fold?: "lower" | "upper") =>
    v.pipe(text(fold), v.check(test, (issue) => message(issue.input as string)));

const flag = (key: string) =>
    v.pipe(
        text(),
        v.check(
            (s: string) => s === "true" || s === "false",
            (issue) => `"${issue.input}" is not true or false. Fix: pulumi config set platform:${key} true`,
        ),
        v.transform((s: string) => s === "true"),
    );

const wholeNumber = (key: string, min: number, max: number, fallback: number) =>
    v.pipe(
        text(),
        v.check(
            (s: string) => /^\d+$/.test(s) && Number(s) >= min && Number(s) <= max,
            (issue) => `"${issue.input}" is not a whole number from ${min} to ${max}. Fix: pulumi config set platform:${key} ${fallback}`,
        ),
        v.transform(Number),
    );

/** JSON for structured keys; a bare string stays a string, for the next step to report. */
const json = v.transform((s: string): unknown => {
    try {
        return JSON.parse(s);
    } catch {
        return s;
    }
});

const isMap = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/** A plain map decoded from JSON. Entries are read with Object.entries: `__proto__` is a key like any other. */
const map = (message: string) => v.pipe(text(), json, v.custom<Record<string, unknown>>(isMap, message));

/** Adds an issue at `path` (`["apps", "demo"]` is reported as `platform:apps.demo`). */
type Report = (path: readonly (string | number)[], message: string) => void;

function reporter(addIssue: (info: { message: string; path: [v.IssuePathItem, ...v.IssuePathItem[]] }) => void, input: unknown): Report {
    return (path, message) => {
        const items = path.map((key): v.IssuePathItem => ({ type: "unknown", origin: "value", input, key, value: undefined }));
        addIssue({ message, path: items as [v.IssuePathItem, ...v.IssuePathItem[]] });
    };
}

/** A check over a whole value with issues at computed paths below it (a list's items, a map's entries). */
function entries<T>(check: (value: T, report: Report) => void) {
    return v.rawCheck<T>(({ dataset, addIssue }) => {
        if (dataset.typed) check(dataset.value, reporter(addIssue, dataset.value));
    });
}

// ---------------------------------------------------------------------------------------------------
// The keys.

/** How Pulumi.yaml declares a key's type (`map` keys are declared without a type: Pulumi has no map type). */
export type DeclaredType = "string" | "boolean" | "integer" | "array" | "map";

interface KeySpec<S extends v.GenericSchema<string, unknown>> {
    readonly type: DeclaredType;
    /** The default as Pulumi.yaml declares it; "" (and [] for adminCidrs) mean unset. */
    readonly default: string | boolean | number | readonly never[] | Readonly<Record<string, never>>;
    /** Pulumi.yaml's description, word for word. */
    readonly description: string;
    readonly secret?: true;
    /** A value this key accepts, as a stack file writes it: the documented example validation is run on. */
    readonly example: string;
    readonly schema: (options: ParseOptions) => S;
}

const key = <const T extends KeySpec<v.GenericSchema<string, unknown>>>(spec: T): T => spec;

const sshPublicKeyFix = 'Fix: ssh-keygen -t ed25519 -f ~/.ssh/id_ed25519 (only if you have no key yet), then pulumi config set platform:sshPublicKey "$(cat ~/.ssh/id_ed25519.pub)"';
const signingFix = "Fix: npm run backup:signing-key -- --stack <stack> (it sets platform:backupSigningKey and pins its public half)";
const ageFix = "Fix: age-keygen -o backup.key (keep it offline), then pulumi config set platform:backupPublicKey age1…";
const cidrFix = "Fix: pulumi config set --path 'adminCidrs[0]' 203.0.113.7/32 (your office or a runner's fixed egress address)";
const optIn = "to open SSH to everyone, say so explicitly instead: pulumi config set platform:sshFromAnywhere true";
const ownAddressFix = (i: number) => `Fix: pulumi config set --path 'adminCidrs[${i}]' "$(curl -4 -fsS https://ifconfig.me)/32"`;

/** A Scaleway IAM principal as bucket policies name it. */
const PRINCIPAL = /^(user_id|application_id):[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// The program never asks Scaleway who deploys (scaleway.iam.getApiKey): a preview runs with another,
// read-only key, and would plan a policy for that key's principal instead. So the fix says how to look it up.
const administratorsFix = (i: number) =>
    `Fix: scw iam api-key get "$SCW_ACCESS_KEY" (the key you deploy with) shows its user_id or application_id, ` +
    `then pulumi config set --path 'platform:backupAdministrators[${i}]' user_id:<uuid> (or application_id:<uuid>); ` +
    "in the console: IAM, Users (or Applications), the principal's ID";

/** The placeholders the committed example stack file holds: refused with the way to make the real value. */
const isPlaceholder = (s: string) => /^<.*>$/.test(s.trim());

const secretCheck = (key: string, options: ParseOptions) =>
    v.check<string, string>(() => options.isSecret(key), `is stored in plain text. Fix: pulumi config set --secret platform:${key} … (and rotate the exposed value)`);

/**
 * Every key the program reads, in the order Pulumi.yaml declares them. Anything else in the namespace is
 * a typo. Each entry is the key's whole contract; the schema below is built from it.
 */
export const CONFIG_SCHEMA = {
    target: key({
        type: "string",
        default: "local",
        description: "Where the platform runs. `scaleway` (one instance with a flexible IP) or `local` (this machine's Docker engine).",
        example: "scaleway",
        schema: () => checked((s) => s === "scaleway" || s === "local", (s) => `"${s}" is not a target. Fix: pulumi config set platform:target scaleway (or local)`) as v.GenericSchema<string, Target>,
    }),
    domain: key({
        type: "string",
        default: "",
        description: "Domain the edge serves and gets a Let's Encrypt certificate for; its A record must point at publicIp. Required on scaleway; `localhost` on local.",
        example: "apps.example.org",
        // Which names are valid depends on the target (`localhost` is local only): see the rules.
        schema: () => text("lower"),
    }),
    acmeEmail: key({
        type: "string",
        default: "",
        description: "Email for the Let's Encrypt account (expiry notices). Required on scaleway.",
        example: "ops@example.org",
        schema: () =>
            checked(
                isEmail,
                (s) => `${shown(s)} is not a plain email address (letters, digits and . _ + - before the @, a domain after it). Fix: pulumi config set platform:acmeEmail ops@example.com`,
            ),
    }),
    acmeStaging: key({
        type: "boolean",
        default: false,
        description: "Use Let's Encrypt's staging CA (untrusted certificates, high rate limits) while trying things out.",
        example: "true",
        schema: () => flag("acmeStaging"),
    }),
    instanceType: key({
        type: "string",
        default: "DEV1-M",
        description: "Scaleway instance type. Container memory limits must fit it (DEV1-M leaves 3.5 GiB for containers).",
        example: "DEV1-L",
        schema: () =>
            checked(
                (s) => Object.prototype.hasOwnProperty.call(INSTANCE_MEMORY_MB, s),
                (s) => `"${s}" is not a supported instance type. Fix: pulumi config set platform:instanceType DEV1-M (supported: ${Object.keys(INSTANCE_MEMORY_MB).join(", ")})`,
                "upper",
            ),
    }),
    sshPublicKey: key({
        type: "string",
        default: "",
        description: "OpenSSH public key allowed to log in as root. Required on scaleway.",
        example: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPpqNifFOAL4sF4C3v8vB948BXYIKBAcbBYI1GgoJZK1 you@laptop",
        schema: (options) =>
            v.pipe(
                text(),
                v.check(
                    isSshPublicKey,
                    (issue) =>
                        isPlaceholder(issue.input as string)
                            ? `is still the example's placeholder ${issue.input}: put your own public key here (root logs in with it). ${sshPublicKeyFix}`
                            : `is not an OpenSSH public key (expected "ssh-ed25519 AAAA… comment"). ${sshPublicKeyFix}`,
                ),
                v.check(
                    (s) => options.testStack === true || !isTestSshPublicKey(s),
                    `is one of the test suite's published keys: anyone could hold its private half, or nobody, and either way this server's root login would not be yours. ${sshPublicKeyFix}`,
                ),
            ),
    }),
    adminCidrs: key({
        type: "array",
        default: [],
        description: "CIDRs allowed to reach SSH (port 22). Required on scaleway unless sshFromAnywhere is true; the deploying machine (CI) must be in it. Nothing that adds up to the whole internet is accepted.",
        example: '["203.0.113.10/32"]',
        schema: (options) =>
            v.pipe(
                text(),
                json,
                v.custom<unknown[]>(Array.isArray, (issue) => `must be a list of CIDRs, not ${shown(issue.input)}. ${cidrFix}`),
                entries<unknown[]>((cidrs, report) =>
                    cidrs.forEach((c, i) => {
                        const range = typeof c === "string" ? cidrRange(c) : undefined;
                        if (typeof c === "string" && /</.test(c)) {
                            report([i], `${shown(c)} is still the example's placeholder: put the address you deploy from here (otherwise nobody could reach SSH). ${ownAddressFix(i)}`);
                            return;
                        }
                        if (typeof c !== "string" || range === undefined) {
                            report([i], `${shown(c)} is not a CIDR. Fix: pulumi config set --path 'adminCidrs[${i}]' 203.0.113.7/32`);
                            return;
                        }
                        const prefix = Number(c.split("/")[1]);
                        if (prefix < BROADEST_ADMIN_PREFIX[range.family]) {
                            report(
                                [i],
                                `${c} opens SSH to ${prefix === 0 ? "the whole internet" : `a /${prefix}, a large part of the internet`}. Fix: use your office or CI address, e.g. 203.0.113.7/32; ${optIn}`,
                            );
                        } else if (range.hostBitsSet) {
                            report([i], `${c} has host bits set after the /${prefix}. Fix: write the network address, or /32 (/128) for one address`);
                        } else if (options.testStack !== true && isTestCidr(c)) {
                            report(
                                [i],
                                `${c} is in a documentation range (RFC 5737 / RFC 3849) that the examples and tests use: no real machine has that address, so nobody could reach SSH. ${ownAddressFix(i)}`,
                            );
                        }
                    }),
                ),
                v.transform((cidrs) => cidrs.filter((c): c is string => typeof c === "string")),
                v.check(
                    (cidrs) => !coversWholeInternet(cidrs.filter((c) => cidrRange(c) !== undefined)),
                    (issue) => `${(issue.input as string[]).join(" + ")} together cover the whole internet. Fix: list only your own addresses; ${optIn}`,
                ),
            ),
    }),
    sshFromAnywhere: key({
        type: "boolean",
        default: false,
        description: "Opt-in that opens port 22 to every address, for deploying from GitHub-hosted runners whose address changes. sshd is key-only in every mode; with this on, fail2ban also bans brute-force sources.",
        example: "true",
        schema: () => flag("sshFromAnywhere"),
    }),
    apps: key({
        type: "map",
        default: {},
        description: "Map from catalog app name (apps/) to the release that stack runs, an image tag or sha256 digest. An app runs if and only if it is listed.",
        example: '{"demo":"1.27-alpine"}',
        schema: (options) =>
            v.pipe(
                map("must be a map from app name to release. Fix: pulumi config set --path 'apps.demo' 1.27-alpine"),
                entries<Record<string, unknown>>((apps, report) => {
                    const known = Object.keys(options.catalog);
                    for (const [name, release] of Object.entries(apps)) {
                        if (!Object.prototype.hasOwnProperty.call(options.catalog, name)) {
                            const guess = closest(name, known);
                            report(
                                [name],
                                `"${name}" is not in the app catalog.${guess ? ` Did you mean "${guess}"?` : ""} Known apps: ${known.join(", ")}. ` +
                                    `Fix: add apps/${APP_NAME.test(name) ? name : "<name>"}.ts to the catalog, or pulumi config rm --path 'apps.${name}'`,
                            );
                        } else if (typeof release !== "string") {
                            // `pulumi config set --path` stores 2 as a number, and YAML reads 1.10 as 1.1: running
                            // "whatever the number prints as" could be another release than the one written.
                            report(
                                [name],
                                `${shown(release)} is a ${typeof release}, not a string: a release is an image tag, and ${typeof release === "number" ? "a number may not be the tag you wrote (1.10 reads as 1.1)" : "only a string can name one"}. ` +
                                    `Fix: pulumi config set --type string --path 'apps.${name}' <tag> (in Pulumi.<stack>.yaml, quote it: ${name}: "1.10")`,
                            );
                        } else if (!isRelease(release)) {
                            report(
                                [name],
                                `${shown(release)} is not a release: use an image tag (1.4.3) or a digest (sha256:<64 hex>). Fix: pulumi config set --type string --path 'apps.${name}' 1.4.3`,
                            );
                        }
                    }
                }),
                v.transform((apps) => new Map(Object.entries(apps).map(([name, release]) => [name, release as string]))),
            ),
    }),
    passwordVersions: key({
        type: "map",
        default: {},
        description: "Map from app name to a whole number; bump an app's number to rotate its database password.",
        example: '{"demo":1}',
        schema: () =>
            v.pipe(
                map("must be a map from app name to a whole number. Fix: pulumi config set --path 'passwordVersions.app1' 2"),
                entries<Record<string, unknown>>((versions, report) => {
                    for (const [name, n] of Object.entries(versions)) {
                        if (typeof n !== "number" || !Number.isInteger(n) || n < 0) {
                            report([name], `${shown(n)} is not a whole number. Fix: pulumi config set --path 'passwordVersions.${name}' 2`);
                        }
                    }
                }),
                // A Map, not an object: app names come from the user, and `__proto__` must stay a plain key.
                v.transform((versions) => new Map(Object.entries(versions).map(([name, n]) => [name, n as number]))),
            ),
    }),
    localHttpPort: key({
        type: "integer",
        default: 8080,
        description: "Loopback port the edge listens on, on the local stack.",
        example: "8081",
        schema: () =>
            v.pipe(
                checked((s) => /^\d+$/.test(s) && Number(s) >= 1 && Number(s) <= 65535, (s) => `"${s}" is not a TCP port. Fix: pulumi config set platform:localHttpPort 8080`),
                v.transform(Number),
            ),
    }),
    registryUsername: key({
        type: "string",
        default: "",
        description: "Username for ghcr.io, to pull private app images.",
        example: "octocat",
        schema: () => text(),
    }),
    registryToken: key({
        type: "string",
        default: "",
        description: "Token for ghcr.io (read:packages), set with --secret.",
        secret: true,
        example: "ghp_…",
        schema: (options) => v.pipe(text(), secretCheck("registryToken", options)),
    }),
    backupPublicKey: key({
        type: "string",
        default: "",
        description: "age recipient (age1…) the nightly database backups are encrypted to. Required on scaleway. Keep the private key (age-keygen) off the server.",
        example: "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
        schema: (options) =>
            v.pipe(
                text(),
                v.check(isAgeRecipient, (issue) =>
                    isPlaceholder(issue.input as string)
                        ? `is still the example's placeholder ${issue.input}: backups would be encrypted to nobody's key. ${ageFix}`
                        : `is not an age recipient (age1 followed by 58 lowercase letters and digits). ${ageFix}`,
                ),
                v.check(
                    (s) => options.testStack === true || !isTestAgeRecipient(s),
                    `is one of the test suite's published recipients: nobody holds its private key, so no backup encrypted to it could ever be restored. ${ageFix}`,
                ),
            ),
    }),
    backupAdministrators: key({
        type: "array",
        default: [],
        description: "Principals (user_id:<uuid> or application_id:<uuid>) that keep full access to the backup bucket: whoever deploys, restores or reads backups by hand. Required on scaleway. The bucket policy admits them, the host's put-only key and the drill's read-only key, nobody else.",
        example: '["user_id:11111111-2222-3333-4444-555555555555"]',
        schema: () =>
            v.pipe(
                text(),
                json,
                v.custom<unknown[]>(Array.isArray, (issue) => `must be a list of principals, not ${shown(issue.input)}. ${administratorsFix(0)}`),
                entries<unknown[]>((principals, report) => {
                    principals.forEach((p, i) => {
                        if (typeof p === "string" && /</.test(p)) {
                            report([i], `${shown(p)} is still the example's placeholder: put the principal you deploy and restore with here. ${administratorsFix(i)}`);
                        } else if (typeof p === "string" && /^SCW[A-Z0-9]{17}$/.test(p)) {
                            report([i], `${shown(p)} is an API key's access key, not a principal: the policy names who holds the key. ${administratorsFix(i)}`);
                        } else if (typeof p !== "string" || !PRINCIPAL.test(p)) {
                            report([i], `${shown(p)} is not user_id:<uuid> or application_id:<uuid> (lowercase). ${administratorsFix(i)}`);
                        } else if (principals.indexOf(p) !== i) {
                            report([i], `${p} is listed twice. Fix: pulumi config rm --path 'platform:backupAdministrators[${i}]'`);
                        }
                    });
                }),
            ),
    }),
    backupSigningKey: key({
        type: "string",
        default: "",
        description: "The host's Ed25519 key that signs every backup (ed25519-secret:…), set with --secret. Required on scaleway. npm run backup:signing-key makes one and pins its public half in backupSigningKeys.",
        secret: true,
        example: "ed25519-secret:Wf1SbBvoNbxHrdfRhHfaBSRe0G0zXtLmYThe4TJrwh8=",
        schema: (options) =>
            v.pipe(
                text(),
                secretCheck("backupSigningKey", options),
                v.check(isSigningSecretKey, `is not a backup signing key (ed25519-secret: and 44 characters of base64). ${signingFix}`),
                v.check(
                    (s) => options.testStack === true || options.unreadableSecrets?.has("backupSigningKey") === true || (!isTestSigningKey(s) && s !== SECRET_PLACEHOLDERS.backupSigningKey),
                    `is a signing key published in this repository (the test suite's, or the dry evaluation's stand-in): anyone could sign a backup your restores would trust. ${signingFix}`,
                ),
            ),
    }),
    backupSigningKeys: key({
        type: "array",
        default: [],
        description:
            "The public keys (ed25519:…) whose signatures the restore, the drill and the migration trust; any other backup is refused. A retired key is { key, retiredAt }: what it signed before that UTC time stays trusted, nothing after.",
        example: '["ed25519:o0hgdx5FX6p1h1BTn6+jTccBMDUShR5f8E+tiB35z3A="]',
        schema: () =>
            v.pipe(
                text(),
                json,
                v.rawTransform(({ dataset, addIssue, NEVER }) => {
                    try {
                        return parseTrustedKeys(dataset.value, "backupSigningKeys");
                    } catch (e) {
                        addIssue({ message: `${(e as Error).message.replace(/^backupSigningKeys ?/, "")}. ${signingFix}` });
                        return NEVER;
                    }
                }),
            ),
    }),
    backupSchedule: key({
        type: "string",
        default: BACKUP_DEFAULTS.schedule,
        description: "When the host dumps every app's database, as a five-field cron expression in UTC.",
        example: "15 2 * * *",
        schema: () =>
            v.pipe(
                checked(isCronSchedule, (s) => `${shown(s)} is not a five-field cron schedule. Fix: pulumi config set platform:backupSchedule '30 3 * * *'`),
                v.transform((s) => s.split(/\s+/).join(" ")),
            ),
    }),
    backupRetentionDays: key({
        type: "integer",
        default: BACKUP_DEFAULTS.retentionDays,
        description: "Days a backup is kept in the bucket (noncurrent versions expire after the same time).",
        example: "60",
        schema: () => wholeNumber("backupRetentionDays", 1, 3650, BACKUP_DEFAULTS.retentionDays),
    }),
    backupLockDays: key({
        type: "integer",
        default: BACKUP_DEFAULTS.lockDays,
        description: "Days a new backup is object-locked (governance mode), so the host's own key cannot delete or overwrite it. Shorter than the retention.",
        example: "14",
        schema: () => wholeNumber("backupLockDays", 0, 3650, BACKUP_DEFAULTS.lockDays),
    }),
    backupHeartbeatUrl: key({
        type: "string",
        default: "",
        description: "Optional https URL pinged after every successful backup (and <url>/fail on failure), for a dead man's switch such as healthchecks.io.",
        example: "https://hc-ping.com/5f1e-77aa",
        schema: () =>
            checked(
                isHeartbeatUrl,
                (s) => `${shown(s)} is not a plain https URL (no query, credentials or quotes). Fix: pulumi config set platform:backupHeartbeatUrl https://hc-ping.com/<uuid>`,
            ),
    }),
    alertWebhookUrl: key({
        type: "string",
        default: "",
        description: "Optional https webhook (Slack-style, {\"text\": …}) the hosts' alerts checker posts to whenever the set of alerts changes. Set with --secret: such URLs carry their token.",
        secret: true,
        example: "https://hooks.slack.com/services/T0000/B0000/XXXX",
        schema: (options) =>
            v.pipe(
                text(),
                checked(
                    isHeartbeatUrl,
                    (s) => `${shown(s)} is not a plain https URL (no query, credentials or quotes). Fix: pulumi config set --secret platform:alertWebhookUrl https://hooks.slack.com/services/<id>`,
                ),
                secretCheck("alertWebhookUrl", options),
            ),
    }),
    database: key({
        type: "string",
        default: SCALE_DEFAULTS.database,
        description: "Where PostgreSQL runs. `container` (on the host, data on a protected volume) or `managed` (Scaleway Managed Database for PostgreSQL on a private network, no public endpoint).",
        example: "managed",
        schema: () =>
            checked((s) => s === "container" || s === "managed", (s) => `"${s}" is neither container nor managed. Fix: pulumi config set platform:database managed`) as v.GenericSchema<
                string,
                "container" | "managed"
            >,
    }),
    hosts: key({
        type: "integer",
        default: SCALE_DEFAULTS.hosts,
        description: "Instances that run the edge and every app. More than one sit on a private network behind a Scaleway Load Balancer and need database managed.",
        example: "2",
        schema: () => wholeNumber("hosts", 1, MAX_HOSTS, SCALE_DEFAULTS.hosts),
    }),
    managedDatabaseNodeType: key({
        type: "string",
        default: SCALE_DEFAULTS.managedDatabaseNodeType,
        description: "Node type of the managed database (database managed only).",
        example: "DB-GP-XS",
        schema: () =>
            checked(
                (s) => /^DB-[A-Z0-9-]{2,20}$/.test(s),
                (s) => `"${s}" is not a Scaleway database node type. Fix: pulumi config set platform:managedDatabaseNodeType DB-DEV-S`,
                "upper",
            ),
    }),
    managedDatabaseHa: key({
        type: "boolean",
        default: SCALE_DEFAULTS.managedDatabaseHa,
        description: "A standby node with automatic failover for the managed database.",
        example: "true",
        schema: () => flag("managedDatabaseHa"),
    }),
    managedDatabaseBackupDays: key({
        type: "integer",
        default: SCALE_DEFAULTS.managedDatabaseBackupDays,
        description: "Days Scaleway keeps the managed database's automated backups (besides the platform's own nightly logical backups).",
        example: "14",
        schema: () => wholeNumber("managedDatabaseBackupDays", 1, 365, SCALE_DEFAULTS.managedDatabaseBackupDays),
    }),
} as const;

type Keys = typeof CONFIG_SCHEMA;
export type ConfigKey = keyof Keys;

/** Every key the program reads; anything else in the namespace is a typo. */
export const CONFIG_KEYS = Object.keys(CONFIG_SCHEMA) as readonly ConfigKey[];

/** Keys whose values must be set with `pulumi config set --secret`. */
export const SECRET_KEYS: ReadonlySet<string> = new Set(CONFIG_KEYS.filter((k) => (CONFIG_SCHEMA[k] as KeySpec<never>).secret === true));

/** The default as the raw string Pulumi would hand over, or undefined where the default means unset. */
function rawDefault(spec: KeySpec<v.GenericSchema<string, unknown>>): string | undefined {
    const d = spec.default;
    if (d === "" || (Array.isArray(d) && d.length === 0)) return undefined;
    return typeof d === "string" ? d : JSON.stringify(d);
}

type Values = { -readonly [K in ConfigKey]: v.InferOutput<ReturnType<Keys[K]["schema"]>> | (Keys[K]["default"] extends "" | readonly never[] ? undefined : never) };

// ---------------------------------------------------------------------------------------------------
// Rules between keys. Each runs only when the keys it reads are valid, and reports at the key to change.

interface Rule {
    readonly reads: readonly ConfigKey[];
    readonly check: (c: Values, report: Report, options: ParseOptions) => void;
}

const onCloud = (c: Values) => c.target === "scaleway";

const RULES: readonly Rule[] = [
    {
        reads: ["target", "domain"],
        check: (c, report) => {
            const domain = c.domain ?? "";
            if (onCloud(c) && domain === "") report(["domain"], "required on the scaleway target. Fix: pulumi config set platform:domain example.com");
            else if (onCloud(c) && !DOMAIN.test(domain)) report(["domain"], `"${domain}" is not a domain name. Fix: pulumi config set platform:domain example.com`);
            else if (!onCloud(c) && domain !== "" && domain !== "localhost" && !DOMAIN.test(domain)) {
                report(["domain"], `"${domain}" is not a domain name. Fix: pulumi config set platform:domain localhost`);
            }
        },
    },
    {
        reads: ["target", "acmeEmail"],
        check: (c, report) => {
            if (onCloud(c) && c.acmeEmail === undefined) {
                report(["acmeEmail"], "required on the scaleway target (Let's Encrypt account). Fix: pulumi config set platform:acmeEmail ops@example.com");
            }
        },
    },
    {
        reads: ["target", "sshPublicKey"],
        check: (c, report) => {
            if (onCloud(c) && c.sshPublicKey === undefined) report(["sshPublicKey"], `required on the scaleway target. ${sshPublicKeyFix}`);
        },
    },
    {
        reads: ["target", "adminCidrs", "sshFromAnywhere"],
        check: (c, report) => {
            if (!onCloud(c) || c.sshFromAnywhere) return;
            if (c.adminCidrs === undefined) {
                report(["adminCidrs"], `required on the scaleway target: who may reach SSH. ${cidrFix}, or opt in to SSH from anywhere: pulumi config set platform:sshFromAnywhere true`);
            } else if (c.adminCidrs.length === 0) {
                report(["adminCidrs"], `is empty: nobody could reach SSH, and the deployment needs it. ${cidrFix}`);
            }
        },
    },
    {
        reads: ["apps", "passwordVersions"],
        check: (c, report) => {
            for (const name of c.passwordVersions.keys()) {
                if (!c.apps.has(name)) report(["passwordVersions", name], `names an app this stack does not run. Fix: pulumi config rm --path 'passwordVersions.${name}'`);
            }
        },
    },
    {
        reads: ["registryUsername", "registryToken"],
        check: (c, report) => {
            if ((c.registryUsername === undefined) !== (c.registryToken === undefined)) {
                report([c.registryUsername === undefined ? "registryUsername" : "registryToken"], "registryUsername and registryToken go together (ghcr.io login). Fix: set both, or remove both");
            }
        },
    },
    {
        reads: ["target", "apps", "registryToken"],
        check: (c, report, options) => {
            const privateApps = [...c.apps.keys()].filter((name) => [options.catalog[name].frontend, options.catalog[name].backend].some((x) => x.privateImage === true));
            if (onCloud(c) && privateApps.length > 0 && c.registryToken === undefined) {
                report(
                    ["registryToken"],
                    `required to pull the private images of ${privateApps.join(", ")}. ` +
                        "Fix: pulumi config set platform:registryUsername <github user> && pulumi config set --secret platform:registryToken <PAT with read:packages>",
                );
            }
        },
    },
    {
        reads: ["apps"],
        check: (c, report, options) => {
            for (const problem of connectionBudgetProblems([...c.apps.keys()].map((name) => options.catalog[name]))) report(["apps"], problem);
            for (const name of c.apps.keys()) for (const problem of migrationProblems(options.catalog[name])) report(["apps", name], problem);
        },
    },
    {
        reads: ["apps", "instanceType"],
        check: (c, report, options) => {
            const apps = [...c.apps.keys()].map((name) => options.catalog[name]);
            const memory = planMemory(INSTANCE_MEMORY_MB[c.instanceType], apps);
            if (memory.totalMb > memory.budgetMb) {
                const lines = apps.map((a) => `${a.name} ${a.frontend.memoryMb + a.backend.memoryMb}`).join(", ");
                report(
                    ["apps"],
                    `container memory limits sum to ${memory.totalMb} MiB (postgres ${memory.postgresMb}, its forwarder ${memory.forwarderMb}, edge ${memory.edgeMb}, ${lines}) ` +
                        `but ${c.instanceType} leaves ${memory.budgetMb} MiB for containers. ` +
                        "Fix: remove an app, lower its memoryMb in apps/, or pulumi config set platform:instanceType DEV1-L",
                );
            }
        },
    },
    {
        reads: ["target", "backupPublicKey"],
        check: (c, report) => {
            if (onCloud(c) && c.backupPublicKey === undefined) {
                report(["backupPublicKey"], `required on the scaleway target: nightly backups are encrypted to it, and its private key stays with you. ${ageFix}`);
            }
        },
    },
    {
        reads: ["target", "backupAdministrators"],
        check: (c, report) => {
            // [] is what the CLI hands over when the key is unset (Pulumi.yaml's default): unset, then.
            if (onCloud(c) && (c.backupAdministrators ?? []).length === 0) {
                report(["backupAdministrators"], `required on the scaleway target: the backup bucket's policy keeps full access for these principals only; without you in it, only the Organization's owner could read or restore a backup. ${administratorsFix(0)}`);
            }
        },
    },
    {
        reads: ["target", "backupSigningKey", "backupSigningKeys"],
        check: (c, report, options) => {
            if (onCloud(c) && c.backupSigningKey === undefined) {
                report(["backupSigningKey"], `required on the scaleway target: the host signs every backup with it, and restores trust only what a pinned key signed. ${signingFix}`);
                return;
            }
            if (c.backupSigningKey === undefined || options.unreadableSecrets?.has("backupSigningKey")) return;
            const pub = signingPublicKey(c.backupSigningKey);
            const pinned = (c.backupSigningKeys ?? []).find((k) => k.publicKey === pub);
            if (pinned === undefined) {
                report(["backupSigningKeys"], `does not pin ${pub}, the public half of platform:backupSigningKey: every backup the host signs would be refused. Fix: pulumi config set --path 'platform:backupSigningKeys[${(c.backupSigningKeys ?? []).length}]' ${pub}`);
            } else if (pinned.retiredAt !== undefined) {
                report(["backupSigningKeys"], `retires ${pub} (retiredAt), yet platform:backupSigningKey is that key: every backup it signs from now on would be refused. ${signingFix}`);
            }
        },
    },
    {
        reads: ["backupRetentionDays", "backupLockDays"],
        check: (c, report) => {
            if (c.backupLockDays >= c.backupRetentionDays) {
                report(
                    ["backupLockDays"],
                    `${c.backupLockDays} days of lock is not shorter than the ${c.backupRetentionDays}-day retention. Fix: pulumi config set platform:backupLockDays ${Math.min(7, c.backupRetentionDays - 1)}`,
                );
            }
        },
    },
    {
        reads: ["target", "database", "hosts"],
        check: (c, report) => {
            if (!onCloud(c) && (c.database === "managed" || c.hosts > 1)) {
                report([c.database === "managed" ? "database" : "hosts"], "the local stack is one machine with a PostgreSQL container. Fix: pulumi config rm platform:database && pulumi config rm platform:hosts");
            }
            if (c.hosts > 1 && c.database === "container") {
                report(["hosts"], `${c.hosts} hosts need a database they can all reach: a container on one of them would make it a single point of failure. Fix: pulumi config set platform:database managed`);
            }
        },
    },
];

// ---------------------------------------------------------------------------------------------------
// The schema: the keys, unknown keys refused with a suggestion, the rules, and the typed result.

function toPlatformConfig(c: Values, options: ParseOptions) {
    const apps: DeployedApp[] = [...c.apps].map(([name, release]) => ({ definition: options.catalog[name], release, passwordVersion: c.passwordVersions.get(name) ?? 0 }));
    return {
        target: c.target,
        domain: c.domain ?? (onCloud(c) ? "" : "localhost"),
        acmeEmail: c.acmeEmail ?? "",
        acmeStaging: c.acmeStaging,
        instanceType: c.instanceType,
        sshPublicKey: c.sshPublicKey ?? "",
        adminCidrs: (c.adminCidrs ?? []) as readonly string[],
        /** Opt-in: port 22 open to every address (CI on hosted runners); fail2ban guards it. */
        sshFromAnywhere: c.sshFromAnywhere,
        apps: apps as readonly DeployedApp[],
        localHttpPort: c.localHttpPort,
        registryUsername: c.registryUsername,
        registryToken: c.registryToken,
        memory: planMemory(INSTANCE_MEMORY_MB[c.instanceType], apps.map((a) => a.definition)),
        /** Nightly logical backups: encrypted on the host to `publicKey`, kept `retentionDays`, locked `lockDays`. */
        backup: {
            /** age recipient (`age1…`) the dumps are encrypted to; the private key never reaches the server. */
            publicKey: c.backupPublicKey,
            /** Five-field cron expression, in the host's time zone (UTC). */
            schedule: c.backupSchedule,
            retentionDays: c.backupRetentionDays,
            /** Object-lock (governance) days: nobody holding the host's credentials can delete a newer backup. */
            lockDays: c.backupLockDays,
            /** Pinged on success (and `<url>/fail` on failure), for a dead man's switch such as healthchecks.io. */
            heartbeatUrl: c.backupHeartbeatUrl,
            /** The host's signing key (plain text here; components/backups.ts wraps it in pulumi.secret). Undefined: the local stack generates one. */
            signingKey: c.backupSigningKey,
            /** The public keys readers trust (the restore, drill and migration read them from the stack file). */
            trustedKeys: (c.backupSigningKeys ?? []) as readonly TrustedKey[],
            /** scaleway: the principals the bucket policy keeps full access for (reviewed config, never looked up). */
            administrators: (c.backupAdministrators ?? []) as readonly string[],
        },
        /** Plain text here (undefined when unset); components/platform.ts wraps it in pulumi.secret. */
        alertWebhookUrl: c.alertWebhookUrl,
        /** Where PostgreSQL runs and how many instances serve the apps. The defaults are the single-server stack. */
        scale: {
            /** `container`: PostgreSQL in a container on the (first) host; `managed`: Scaleway Managed Database for PostgreSQL. */
            database: c.database,
            /** Instances running the edge and every app; more than one sit behind a Scaleway Load Balancer. */
            hosts: c.hosts,
            /** Managed database node type, e.g. DB-DEV-S. */
            managedDatabaseNodeType: c.managedDatabaseNodeType,
            /** A standby node with automatic failover. */
            managedDatabaseHa: c.managedDatabaseHa,
            /** Days Scaleway keeps the managed database's automated backups. */
            managedDatabaseBackupDays: c.managedDatabaseBackupDays,
        },
    };
}

/**
 * Keys the program read once and now refuses, each with why and what replaces it. sshPrivateKey: a key
 * in the stack's config is readable by every holder of the passphrase, which a pull-request preview
 * needs, and it reached the state in every remote command's connection (issue 20, item 6). The key
 * lives in ssh-agent only: the command provider and the Docker provider's ssh both use SSH_AUTH_SOCK.
 */
const RETIRED_KEYS: Readonly<Record<string, string>> = {
    sshPrivateKey:
        "is no longer read: a private key in the stack's config can be decrypted by anyone holding the passphrase (a pull-request preview has it) and was copied into the state. " +
        "Fix: ssh-add ~/.ssh/id_ed25519 (CI: the deploy job's ssh-agent step), then pulumi config rm platform:sshPrivateKey; the next up drops it from the state, " +
        "and a key that was ever in a previewed stack's config is best replaced (ssh-keygen, then pulumi config set platform:sshPublicKey)",
};

/** The whole `platform:` namespace as one valibot schema, for one catalog and one secret lookup. */
export function platformSchema(options: ParseOptions) {
    const entries = Object.fromEntries(
        CONFIG_KEYS.map((k) => {
            const spec = CONFIG_SCHEMA[k] as KeySpec<v.GenericSchema<string, unknown>>;
            return [k, v.optional(spec.schema(options), rawDefault(spec))];
        }),
    ) as unknown as { [K in ConfigKey]: v.GenericSchema<string | undefined, Values[K]> };
    return v.pipe(
        v.looseObject(entries),
        v.rawCheck(({ dataset, addIssue }) => {
            const report = reporter(addIssue, dataset.value);
            for (const k of Object.keys(dataset.value as object)) {
                if ((CONFIG_KEYS as readonly string[]).includes(k)) continue;
                if (Object.hasOwn(RETIRED_KEYS, k)) {
                    report([k], RETIRED_KEYS[k]);
                    continue;
                }
                const guess = closest(k, CONFIG_KEYS);
                report([k], `unknown key.${guess ? ` Did you mean "${guess}"?` : ""} Known keys: ${CONFIG_KEYS.join(", ")}. Fix: pulumi config rm platform:${k}`);
            }
        }),
        v.rawCheck(({ dataset, addIssue }) => {
            const failed = new Set((dataset.issues ?? []).map((i) => i.path?.[0]?.key));
            for (const rule of RULES) {
                if (rule.reads.some((k) => failed.has(k))) continue;
                rule.check(dataset.value as Values, reporter(addIssue, dataset.value), options);
            }
        }),
        v.transform((c) => toPlatformConfig(c as Values, options)),
    );
}

/** The typed config every component reads: what the schema returns. */
export type PlatformConfig = Readonly<v.InferOutput<ReturnType<typeof platformSchema>>>;
export type BackupSettings = PlatformConfig["backup"];
export type ScaleSettings = PlatformConfig["scale"];

/** `platform:adminCidrs[0]`, `platform:apps.demo`: an issue's key path as `pulumi config set --path` writes it. */
function keyPath(path: readonly v.IssuePathItem[] | undefined): string {
    const [first, ...rest] = (path ?? []).map((p) => p.key as string | number);
    return `platform:${String(first)}${rest.map((k) => (typeof k === "number" ? `[${k}]` : `.${k}`)).join("")}`;
}

/**
 * Validates the whole namespace and returns the typed config, or throws a ConfigError naming every
 * bad key and its fix. Called before any resource is declared.
 */
export function parsePlatformConfig(raw: RawConfig, options: ParseOptions): PlatformConfig {
    // Unset and empty are the same to Pulumi's users (`pulumi config set platform:domain ""`).
    const input = Object.fromEntries(Object.entries(raw).filter(([, value]) => value.trim() !== ""));
    const result = v.safeParse(platformSchema(options), input);
    if (!result.success) throw new ConfigError(result.issues.map((issue) => `${keyPath(issue.path)}: ${issue.message}`));
    return result.output;
}

/**
 * Validates the whole stack config as the runtime hands it over (`namespace:key`): keys in a namespace
 * that is neither the project's nor a provider's are typos, reported with the key they probably meant;
 * the `platform:` namespace is then parsed by parsePlatformConfig. All problems come in one ConfigError.
 */
export function parseStackConfig(all: Readonly<Record<string, string>>, options: ParseOptions): PlatformConfig {
    const problems: string[] = [];
    const platform: Record<string, string> = {};
    for (const [fullKey, value] of Object.entries(all)) {
        const colon = fullKey.indexOf(":");
        const namespace = colon < 0 ? "" : fullKey.slice(0, colon);
        const key = fullKey.slice(colon + 1);
        if (namespace === "platform") {
            platform[key] = value;
        } else if (!(CONFIG_NAMESPACES as readonly string[]).includes(namespace)) {
            const guess = closest(namespace, CONFIG_NAMESPACES);
            const intended = guess === undefined ? undefined : `${guess}:${key}`;
            problems.push(
                `${fullKey}: unknown config namespace "${namespace}"${intended ? `; did you mean ${intended}?` : ""} ` +
                    `Keys outside ${CONFIG_NAMESPACES.map((n) => `${n}:`).join(", ")} are never read, so this value would be ignored. ` +
                    `Fix: pulumi config rm ${fullKey}${intended ? ` and set ${intended} instead` : ""}`,
            );
        }
    }
    let config: PlatformConfig | undefined;
    try {
        config = parsePlatformConfig(platform, options);
    } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        problems.push(...e.problems);
    }
    if (config === undefined || problems.length > 0) throw new ConfigError(problems);
    return config;
}
