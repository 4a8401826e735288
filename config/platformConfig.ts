// Parsing and validation of the `platform:*` stack config. Pure: it takes the raw strings Pulumi
// hands the program and returns a typed config, or throws one ConfigError listing every problem,
// each naming the key and the fix. Nothing here declares a resource.
import { AppDefinition } from "../apps/types";
import { FORWARDER_MEMORY_MB, connectionBudgetProblems } from "../render/postgres";
import { DOMAIN, cidrRange, coversWholeInternet, isCronSchedule, isEmail, isHeartbeatUrl, isRelease, isSshPublicKey } from "../render/values";

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
    /** Opt-in: port 22 open to every address (CI on hosted runners); fail2ban guards it. */
    readonly sshFromAnywhere: boolean;
    readonly apps: readonly DeployedApp[];
    readonly localHttpPort: number;
    readonly registryUsername?: string;
    readonly registryToken?: string;
    readonly memory: MemoryPlan;
    readonly backup: BackupSettings;
    readonly scale: ScaleSettings;
}

/** Where PostgreSQL runs and how many instances serve the apps. The defaults are the single-server stack. */
export interface ScaleSettings {
    /** `container`: PostgreSQL in a container on the (first) host; `managed`: Scaleway Managed Database for PostgreSQL. */
    readonly database: "container" | "managed";
    /** Instances running the edge and every app; more than one sit behind a Scaleway Load Balancer. */
    readonly hosts: number;
    /** Managed database node type, e.g. DB-DEV-S. */
    readonly managedDatabaseNodeType: string;
    /** A standby node with automatic failover. */
    readonly managedDatabaseHa: boolean;
    /** Days Scaleway keeps the managed database's automated backups. */
    readonly managedDatabaseBackupDays: number;
}

export const SCALE_DEFAULTS = { database: "container", hosts: 1, managedDatabaseNodeType: "DB-DEV-S", managedDatabaseHa: false, managedDatabaseBackupDays: 7 } as const;
export const MAX_HOSTS = 10;

/** Nightly logical backups: encrypted on the host to `publicKey`, kept `retentionDays`, locked `lockDays`. */
export interface BackupSettings {
    /** age recipient (`age1…`) the dumps are encrypted to; the private key never reaches the server. */
    readonly publicKey?: string;
    /** Five-field cron expression, in the host's time zone (UTC). */
    readonly schedule: string;
    readonly retentionDays: number;
    /** Object-lock (governance) days: nobody holding the host's credentials can delete a newer backup. */
    readonly lockDays: number;
    /** Pinged on success (and `<url>/fail` on failure), for a dead man's switch such as healthchecks.io. */
    readonly heartbeatUrl?: string;
}

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
    "sshFromAnywhere",
    "apps",
    "passwordVersions",
    "localHttpPort",
    "registryUsername",
    "registryToken",
    "backupPublicKey",
    "backupSchedule",
    "backupRetentionDays",
    "backupLockDays",
    "backupHeartbeatUrl",
    "database",
    "hosts",
    "managedDatabaseNodeType",
    "managedDatabaseHa",
    "managedDatabaseBackupDays",
] as const;

/**
 * Config namespaces a stack may use: the project's own and those of the providers it runs. A key in
 * any other namespace is a typo (`platfrom:apps`) that would otherwise be ignored silently.
 */
export const CONFIG_NAMESPACES = ["platform", "scaleway", "docker", "postgresql", "command", "random", "pulumi"] as const;

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
const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;

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
    } else if (acmeEmail !== "" && !isEmail(acmeEmail)) {
        fail(
            "acmeEmail",
            `${JSON.stringify(acmeEmail)} is not a plain email address (letters, digits and . _ + - before the @, a domain after it). ` +
                "Fix: pulumi config set platform:acmeEmail ops@example.com",
        );
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

    const sshFromAnywhere = booleanKey("sshFromAnywhere");
    const cidrs = json("adminCidrs");
    let adminCidrs: string[] = [];
    const cidrFix = "Fix: pulumi config set --path 'adminCidrs[0]' 203.0.113.7/32 (your office or a runner's fixed egress address)";
    if (cidrs === undefined) {
        if (onCloud && !sshFromAnywhere) {
            fail("adminCidrs", `required on the scaleway target: who may reach SSH. ${cidrFix}, or opt in to SSH from anywhere: pulumi config set platform:sshFromAnywhere true`);
        }
    } else if (!Array.isArray(cidrs)) {
        fail("adminCidrs", `must be a list of CIDRs, not ${JSON.stringify(cidrs)}. ${cidrFix}`);
    } else {
        const optIn = "to open SSH to everyone, say so explicitly instead: pulumi config set platform:sshFromAnywhere true";
        cidrs.forEach((c, i) => {
            const range = typeof c === "string" ? cidrRange(c) : undefined;
            if (typeof c !== "string" || range === undefined) {
                fail(`adminCidrs[${i}]`, `${JSON.stringify(c)} is not a CIDR. Fix: pulumi config set --path 'adminCidrs[${i}]' 203.0.113.7/32`);
                return;
            }
            const prefix = Number(c.split("/")[1]);
            if (prefix < BROADEST_ADMIN_PREFIX[range.family]) {
                fail(
                    `adminCidrs[${i}]`,
                    `${c} opens SSH to ${prefix === 0 ? "the whole internet" : `a /${prefix}, a large part of the internet`}. ` +
                        `Fix: use your office or CI address, e.g. 203.0.113.7/32; ${optIn}`,
                );
            } else if (range.hostBitsSet) {
                fail(`adminCidrs[${i}]`, `${c} has host bits set after the /${prefix}. Fix: write the network address, or /32 (/128) for one address`);
            }
        });
        adminCidrs = cidrs.filter((c): c is string => typeof c === "string");
        if (coversWholeInternet(adminCidrs.filter((c) => cidrRange(c) !== undefined))) {
            fail("adminCidrs", `${adminCidrs.join(" + ")} together cover the whole internet. Fix: list only your own addresses; ${optIn}`);
        }
        if (onCloud && adminCidrs.length === 0 && !sshFromAnywhere) {
            fail("adminCidrs", `is empty: nobody could reach SSH, and the deployment needs it. ${cidrFix}`);
        }
    }

    const versions = json("passwordVersions") ?? {};
    // Maps, not objects: app names come from the user, and `__proto__` or `constructor` must be plain keys.
    const passwordVersions = new Map<string, number>();
    if (typeof versions !== "object" || versions === null || Array.isArray(versions)) {
        fail("passwordVersions", "must be a map from app name to a whole number. Fix: pulumi config set --path 'passwordVersions.app1' 2");
    } else {
        for (const [name, v] of Object.entries(versions)) {
            if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
                fail(`passwordVersions.${name}`, `${JSON.stringify(v)} is not a whole number. Fix: pulumi config set --path 'passwordVersions.${name}' 2`);
            } else {
                passwordVersions.set(name, v);
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
            const definition = Object.prototype.hasOwnProperty.call(options.catalog, name) ? options.catalog[name] : undefined;
            if (definition === undefined) {
                const guess = closest(name, known);
                fail(
                    `apps.${name}`,
                    `"${name}" is not in the app catalog.${guess ? ` Did you mean "${guess}"?` : ""} Known apps: ${known.join(", ")}. ` +
                        `Fix: add apps/${APP_NAME.test(name) ? name : "<name>"}.ts to the catalog, or pulumi config rm --path 'apps.${name}'`,
                );
                continue;
            }
            if (typeof release !== "string") {
                // `pulumi config set --path` stores 2 as a number, and YAML reads 1.10 as 1.1: running
                // "whatever the number prints as" could be another release than the one written.
                fail(
                    `apps.${name}`,
                    `${JSON.stringify(release)} is a ${typeof release}, not a string: a release is an image tag, and ${typeof release === "number" ? "a number may not be the tag you wrote (1.10 reads as 1.1)" : "only a string can name one"}. ` +
                        `Fix: pulumi config set --type string --path 'apps.${name}' <tag> (in Pulumi.<stack>.yaml, quote it: ${name}: "1.10")`,
                );
                continue;
            }
            if (!isRelease(release)) {
                fail(
                    `apps.${name}`,
                    `${JSON.stringify(release)} is not a release: use an image tag (1.4.3) or a digest (sha256:<64 hex>). ` +
                        `Fix: pulumi config set --type string --path 'apps.${name}' 1.4.3`,
                );
                continue;
            }
            apps.push({ definition, release, passwordVersion: passwordVersions.get(name) ?? 0 });
        }
        for (const name of passwordVersions.keys()) {
            if (!Object.prototype.hasOwnProperty.call(appsValue, name)) {
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
    const needsRegistry = apps.filter((a) => [a.definition.frontend, a.definition.backend].some((c) => c.privateImage === true));
    if (onCloud && needsRegistry.length > 0 && registryToken === undefined) {
        fail(
            "registryToken",
            `required to pull the private images of ${needsRegistry.map((a) => a.definition.name).join(", ")}. ` +
                "Fix: pulumi config set platform:registryUsername <github user> && pulumi config set --secret platform:registryToken <PAT with read:packages>",
        );
    }

    for (const problem of connectionBudgetProblems(apps.map((a) => a.definition))) fail("apps", problem);

    const memory = planMemory(
        instanceMb ?? 0,
        apps.map((a) => a.definition),
    );
    if (instanceMb !== undefined && memory.totalMb > memory.budgetMb) {
        const lines = apps.map((a) => `${a.definition.name} ${a.definition.frontend.memoryMb + a.definition.backend.memoryMb}`).join(", ");
        fail(
            "apps",
            `container memory limits sum to ${memory.totalMb} MiB (postgres ${memory.postgresMb}, its forwarder ${memory.forwarderMb}, edge ${memory.edgeMb}, ${lines}) ` +
                `but ${instanceType} leaves ${memory.budgetMb} MiB for containers. ` +
                "Fix: remove an app, lower its memoryMb in apps/, or pulumi config set platform:instanceType DEV1-L",
        );
    }

    const backupPublicKey = text("backupPublicKey");
    if (backupPublicKey !== undefined && !AGE_RECIPIENT.test(backupPublicKey)) {
        fail("backupPublicKey", "is not an age recipient (age1 followed by 58 lowercase letters and digits). Fix: age-keygen -o backup.key, then pulumi config set platform:backupPublicKey age1…");
    } else if (backupPublicKey === undefined && onCloud) {
        fail(
            "backupPublicKey",
            "required on the scaleway target: nightly backups are encrypted to it, and its private key stays with you. " +
                "Fix: age-keygen -o backup.key (keep it offline), then pulumi config set platform:backupPublicKey age1…",
        );
    }
    const backupSchedule = text("backupSchedule") ?? BACKUP_DEFAULTS.schedule;
    if (!isCronSchedule(backupSchedule)) {
        fail("backupSchedule", `${JSON.stringify(backupSchedule)} is not a five-field cron schedule. Fix: pulumi config set platform:backupSchedule '30 3 * * *'`);
    }
    const wholeNumber = (key: string, fallback: number, min: number, max: number): number => {
        const v = text(key);
        if (v === undefined) return fallback;
        if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
            fail(key, `"${v}" is not a whole number from ${min} to ${max}. Fix: pulumi config set platform:${key} ${fallback}`);
            return fallback;
        }
        return Number(v);
    };
    const retentionDays = wholeNumber("backupRetentionDays", BACKUP_DEFAULTS.retentionDays, 1, 3650);
    const lockDays = wholeNumber("backupLockDays", BACKUP_DEFAULTS.lockDays, 0, 3650);
    if (lockDays >= retentionDays) {
        fail("backupLockDays", `${lockDays} days of lock is not shorter than the ${retentionDays}-day retention. Fix: pulumi config set platform:backupLockDays ${Math.min(7, retentionDays - 1)}`);
    }
    const backupHeartbeatUrl = text("backupHeartbeatUrl");
    if (backupHeartbeatUrl !== undefined && !isHeartbeatUrl(backupHeartbeatUrl)) {
        fail("backupHeartbeatUrl", `${JSON.stringify(backupHeartbeatUrl)} is not a plain https URL (no query, credentials or quotes). Fix: pulumi config set platform:backupHeartbeatUrl https://hc-ping.com/<uuid>`);
    }

    const databaseText = text("database") ?? SCALE_DEFAULTS.database;
    let database: ScaleSettings["database"] = SCALE_DEFAULTS.database;
    if (databaseText === "container" || databaseText === "managed") database = databaseText;
    else fail("database", `"${databaseText}" is neither container nor managed. Fix: pulumi config set platform:database managed`);
    const hosts = wholeNumber("hosts", SCALE_DEFAULTS.hosts, 1, MAX_HOSTS);
    const nodeType = (text("managedDatabaseNodeType") ?? SCALE_DEFAULTS.managedDatabaseNodeType).toUpperCase();
    if (!/^DB-[A-Z0-9-]{2,20}$/.test(nodeType)) {
        fail("managedDatabaseNodeType", `"${nodeType}" is not a Scaleway database node type. Fix: pulumi config set platform:managedDatabaseNodeType DB-DEV-S`);
    }
    const managedDatabaseHa = booleanKey("managedDatabaseHa");
    const managedDatabaseBackupDays = wholeNumber("managedDatabaseBackupDays", SCALE_DEFAULTS.managedDatabaseBackupDays, 1, 365);
    if (!onCloud && (database === "managed" || hosts > 1)) {
        fail(database === "managed" ? "database" : "hosts", "the local stack is one machine with a PostgreSQL container. Fix: pulumi config rm platform:database && pulumi config rm platform:hosts");
    }
    if (hosts > 1 && database === "container") {
        fail("hosts", `${hosts} hosts need a database they can all reach: a container on one of them would make it a single point of failure. Fix: pulumi config set platform:database managed`);
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
        sshFromAnywhere,
        apps,
        localHttpPort,
        registryUsername,
        registryToken,
        memory,
        backup: { publicKey: backupPublicKey, schedule: backupSchedule.trim().split(/\s+/).join(" "), retentionDays, lockDays, heartbeatUrl: backupHeartbeatUrl },
        scale: { database, hosts, managedDatabaseNodeType: nodeType, managedDatabaseHa, managedDatabaseBackupDays },
    };
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
