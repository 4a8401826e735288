// The rules of the platform's policy pack (policy/index.ts), as pure functions of one resource: its
// type, its inputs as the engine sends them to a policy (secrets as `Secret` objects, see
// `isSecretValue`) and whether it is protected. Each returns what is wrong, one message per problem,
// each naming the fix; an empty list passes. Kept apart from @pulumi/policy so the suite can feed them
// hostile resources directly.

/** One resource as a rule sees it. */
export interface PolicySubject {
    readonly type: string;
    /** The resource's name (the last part of its URN). */
    readonly name: string;
    /** Its inputs, secrets still wrapped (`isSecretValue`). */
    readonly props: Readonly<Record<string, unknown>>;
    readonly protect: boolean;
}

export const CONTAINER = "docker:index/container:Container";
/** The edge: the one container whose ports 80 and 443 are published to the world. */
export const EDGE_CONTAINER_NAME = "platform-edge";

/** @pulumi/policy's Secret (policy.js): an object with a `value`, of the class named Secret. */
export function isSecretValue(value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as { constructor?: { name?: string } }).constructor?.name === "Secret" && "value" in value;
}

function reveal(value: unknown): unknown {
    return isSecretValue(value) ? reveal((value as { value: unknown }).value) : value;
}

/** Every container drops all capabilities, cannot gain privileges, and has a memory limit. */
export function containerHardeningProblems(s: PolicySubject): string[] {
    if (s.type !== CONTAINER) return [];
    const problems: string[] = [];
    const capabilities = reveal(s.props.capabilities) as { drops?: unknown[] } | undefined;
    const drops = (capabilities?.drops ?? []).map(reveal);
    if (!drops.includes("ALL")) problems.push(`container ${s.name} must drop all capabilities (capabilities.drops ["ALL"], then add back only what the catalog names: render/containers.ts containerHardening)`);
    const securityOpts = ((reveal(s.props.securityOpts) as unknown[] | undefined) ?? []).map(reveal);
    if (!securityOpts.includes("no-new-privileges:true")) problems.push(`container ${s.name} must set securityOpts ["no-new-privileges:true"] (containerHardening)`);
    const memory = reveal(s.props.memory);
    if (typeof memory !== "number" || !(memory > 0)) problems.push(`container ${s.name} must have a memory limit (memory in MiB; the catalog's memoryMb)`);
    return problems;
}

/** No container publishes a port beyond loopback, but the edge its 80 and 443: PostgreSQL above all. */
export function publishedPortProblems(s: PolicySubject): string[] {
    if (s.type !== CONTAINER) return [];
    const name = reveal(s.props.name);
    const ports = ((reveal(s.props.ports) as unknown[] | undefined) ?? []).map((p) => reveal(p) as { internal?: unknown; external?: unknown; ip?: unknown });
    const problems: string[] = [];
    for (const p of ports) {
        const ip = reveal(p.ip);
        const loopback = ip === "127.0.0.1" || ip === "::1";
        const edgeWeb = name === EDGE_CONTAINER_NAME && (p.internal === 80 || p.internal === 443);
        if (loopback || edgeWeb) continue;
        const what = p.internal === 5432 || p.external === 5432 ? "PostgreSQL's port" : `port ${String(p.internal)}`;
        problems.push(`container ${s.name} publishes ${what} on ${ip === undefined || ip === "" ? "every address" : String(ip)}: publish it on 127.0.0.1 only (ports[].ip), or not at all`);
    }
    return problems;
}

/** Resource types that hold data, and whether a given one does. */
const DATA_HOLDERS: Readonly<Record<string, (props: Readonly<Record<string, unknown>>) => boolean>> = {
    "docker:index/volume:Volume": () => true,
    "scaleway:object/bucket:Bucket": () => true,
    "scaleway:databases/instance:Instance": () => true,
    // The stateless hosts' root volumes go with them (deleteOnTermination true): nothing to keep. Any
    // other server's disk holds data (host 0: the database volume).
    "scaleway:instance/server:Server": (props) => (reveal(props.rootVolume) as { deleteOnTermination?: unknown } | undefined)?.deleteOnTermination !== true,
};

/** Everything that holds data is protected: no config change can delete it. */
export function dataProtectionProblems(s: PolicySubject): string[] {
    const holds = DATA_HOLDERS[s.type];
    if (holds === undefined || !holds(s.props) || s.protect) return [];
    return [`${s.type} ${s.name} holds data and must be protected (protect: true; retainOnDelete too where a removal must leave it)`];
}

/** What a credential looks like in a plain string. */
const CREDENTIAL_SHAPES: readonly [RegExp, string][] = [
    [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, "a private key"],
    [/\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@$]+:[^\s@/$]+@/i, "a URL with a password"],
    // A value, not a script that expands one at run time ($VAR, "$(…)").
    [/^(?:[A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY)|DATABASE_URL)=[^$\s"']/, "a credential variable"],
    [/\bPGPASSWORD=[^$\s"']/, "a PostgreSQL password"],
];

/** Every string in `value` outside a secret, with its path. */
function plainStrings(value: unknown, at: string, isSecret: (v: unknown) => boolean, out: [string, string][]): void {
    if (isSecret(value)) return;
    if (typeof value === "string") out.push([at, value]);
    else if (Array.isArray(value)) value.forEach((v, i) => plainStrings(v, `${at}[${i}]`, isSecret, out));
    else if (value !== null && typeof value === "object") for (const [k, v] of Object.entries(value)) plainStrings(v, at ? `${at}.${k}` : k, isSecret, out);
}

/**
 * No credential in a plain input: each must be a Pulumi secret (state encrypts it, logs mask it).
 * Not a rule of the pack: @pulumi/policy 1.21 hands validateResource the inputs with every secret
 * already unwrapped (server.js: deserializeProperties(…, false)), so a policy cannot tell a secret from
 * a plain value. The suite applies it to the program's inputs under mocks (tests/policy.test.ts) and to
 * the real stack's state after `local:up` (tests/e2e.real.test.ts), `isSecret` telling each one's
 * secrets apart.
 */
export function plainSecretProblems(s: PolicySubject, isSecret: (v: unknown) => boolean = isSecretValue): string[] {
    const strings: [string, string][] = [];
    plainStrings(s.props, "", isSecret, strings);
    const problems: string[] = [];
    for (const [at, text] of strings) {
        const shape = CREDENTIAL_SHAPES.find(([re]) => re.test(text));
        if (shape !== undefined) problems.push(`${s.type} ${s.name}: ${at} holds ${shape[1]} in plain text: make it a secret (pulumi.secret, or a secret config value)`);
    }
    return problems;
}

/** A secret as `pulumi stack export` writes it: the signature key, and the ciphertext. */
export function isStateSecret(value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<string, unknown>)["4dabf18193072939515e22adb298388d"] === "1b47061264138c4ac30d75fd1eb44270";
}

/** The pack's rules, by name, as policy/index.ts registers them. */
export const RULES: Readonly<Record<string, { description: string; check: (s: PolicySubject) => string[] }>> = {
    "container-hardening": { description: "Every container drops all capabilities, sets no-new-privileges and has a memory limit.", check: containerHardeningProblems },
    "no-published-database": { description: "No container publishes a port (PostgreSQL's above all) beyond loopback, but the edge its 80 and 443.", check: publishedPortProblems },
    "data-protected": { description: "Every resource that holds data is protected.", check: dataProtectionProblems },
};
