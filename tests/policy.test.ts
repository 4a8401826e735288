// The policy pack's rules (policy/rules.ts): each refuses the hostile resource it is about, naming the
// fix, and the program's own resources, in every shape, pass every rule and hold no plain credential.
// (The end-to-end suite runs the pack on the real engine, and checks the real state for credentials.)
import * as assert from "assert";
import { definePlatform } from "../components/platform";
import { RawConfig } from "../config/platformConfig";
import { CONTAINER, PolicySubject, RULES, containerHardeningProblems, dataProtectionProblems, isSecretValue, isStateSecret, plainSecretProblems, publishedPortProblems } from "../policy/rules";
import { Registration, isSecretValue as isHarnessSecret, runProgram } from "./harness";
import { LOCAL_RAW, PROD_RAW, parse } from "./fixtures";
import { readGraphFixture } from "./support/graph";

/** What @pulumi/policy hands a rule for a secret (its class is named Secret). */
class Secret {
    constructor(readonly value: unknown) {}
}

const hardened = { capabilities: { drops: ["ALL"], adds: [] }, securityOpts: ["no-new-privileges:true"], memory: 64 };
const container = (props: Record<string, unknown>, name = "c"): PolicySubject => ({ type: CONTAINER, name, props: { ...hardened, ...props }, protect: false });

describe("policy rules: each refuses what it is about", () => {
    it("container-hardening: capabilities kept, privileges gainable, no memory limit", () => {
        assert.deepStrictEqual(containerHardeningProblems(container({})), []);
        assert.match(containerHardeningProblems(container({ capabilities: { drops: ["NET_RAW"], adds: [] } })).join(), /must drop all capabilities/);
        assert.match(containerHardeningProblems(container({ capabilities: undefined })).join(), /must drop all capabilities/);
        assert.match(containerHardeningProblems(container({ securityOpts: [] })).join(), /no-new-privileges:true/);
        assert.match(containerHardeningProblems(container({ memory: 0 })).join(), /memory limit/);
        assert.match(containerHardeningProblems(container({ memory: undefined })).join(), /memory limit/);
        // A secret wrapping does not hide a value from the rule.
        assert.deepStrictEqual(containerHardeningProblems(container({ memory: new Secret(64) })), []);
    });

    it("no-published-database: PostgreSQL or any port on every address, but the edge's 80 and 443", () => {
        assert.match(publishedPortProblems(container({ name: "platform-pg-forwarder", ports: [{ internal: 5432, external: 15432 }] })).join(), /publishes PostgreSQL's port on every address: publish it on 127\.0\.0\.1 only/);
        assert.match(publishedPortProblems(container({ ports: [{ internal: 8080, external: 8080, ip: "0.0.0.0" }] })).join(), /port 8080 on 0\.0\.0\.0/);
        assert.match(publishedPortProblems(container({ name: "platform-edge", ports: [{ internal: 5432, external: 5432 }] })).join(), /PostgreSQL/);
        assert.deepStrictEqual(publishedPortProblems(container({ name: "platform-pg-forwarder", ports: [{ internal: 5432, external: 15432, ip: "127.0.0.1" }] })), []);
        assert.deepStrictEqual(publishedPortProblems(container({ name: "platform-edge", ports: [{ internal: 80, external: 80 }, { internal: 443, external: 443 }] })), []);
        assert.match(publishedPortProblems(container({ name: "not-the-edge", ports: [{ internal: 443, external: 443 }] })).join(), /port 443/);
    });

    it("data-protected: a volume, a bucket, a managed database or a server with data on its disk, unprotected", () => {
        for (const type of ["docker:index/volume:Volume", "scaleway:object/bucket:Bucket", "scaleway:databases/instance:Instance"]) {
            assert.match(dataProtectionProblems({ type, name: "x", props: {}, protect: false }).join(), /holds data and must be protected/, type);
            assert.deepStrictEqual(dataProtectionProblems({ type, name: "x", props: {}, protect: true }), [], type);
        }
        const server = "scaleway:instance/server:Server";
        assert.match(dataProtectionProblems({ type: server, name: "host-server", props: { rootVolume: { deleteOnTermination: false } }, protect: false }).join(), /must be protected/);
        assert.deepStrictEqual(dataProtectionProblems({ type: server, name: "host-1-server", props: { rootVolume: { deleteOnTermination: true } }, protect: false }), [], "a stateless host keeps nothing");
        assert.deepStrictEqual(dataProtectionProblems({ type: "docker:index/network:Network", name: "n", props: {}, protect: false }), []);
    });

    it("no-plain-secret: keys, URLs with passwords and credential variables in plain text; the same as secrets pass", () => {
        const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----";
        const cases: [Record<string, unknown>, RegExp][] = [
            [{ connection: { privateKey: key } }, /connection\.privateKey holds a private key/],
            [{ envs: ["PORT=8080", "DATABASE_URL=postgres://app_x:pw@postgres:5432/x_db"] }, /envs\[1\] holds a URL with a password/],
            [{ envs: ["POSTGRES_PASSWORD=hunter2"] }, /envs\[0\] holds a credential variable/],
            [{ envs: ["REGISTRY_TOKEN=ghp_x"] }, /a credential variable/],
            [{ create: "export PGPASSWORD=hunter2; psql -h x" }, /a PostgreSQL password/],
        ];
        for (const [props, message] of cases) {
            assert.match(plainSecretProblems({ type: "t", name: "n", props, protect: false }).join("\n"), message, JSON.stringify(props));
            const wrapped = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, new Secret(v)]));
            assert.deepStrictEqual(plainSecretProblems({ type: "t", name: "n", props: wrapped, protect: false }), [], `as a secret: ${JSON.stringify(props)}`);
        }
        // What a script reads at run time is not a credential in the input.
        assert.deepStrictEqual(plainSecretProblems({ type: "t", name: "n", props: { create: 'read -r PGPASSWORD; PGPASSWORD="$pw" psql; echo "postgres://$user:$pw@h/db"', envs: ["PORT=8080"] }, protect: false }), []);
        assert.ok(isSecretValue(new Secret("x")) && !isSecretValue({ value: "x" }));
        // As the state holds secrets: the check takes that shape too.
        const inState = { envs: [{ "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", ciphertext: "v1:abc" }, "POSTGRES_PASSWORD=plain"] };
        assert.match(plainSecretProblems({ type: "t", name: "n", props: inState, protect: false }, isStateSecret).join(), /envs\[1\] holds a credential variable/);
    });
});

/** A registration as the engine hands it to the pack: secrets as Secret objects. */
function subjectOf(r: Registration): PolicySubject {
    const wrap = (v: unknown): unknown => {
        if (isHarnessSecret(v)) return new Secret(wrap((v as { value: unknown }).value));
        if (Array.isArray(v)) return v.map(wrap);
        if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, wrap(x)]));
        return v;
    };
    return { type: r.type, name: r.name, props: wrap(r.inputs) as Record<string, unknown>, protect: r.protect };
}

describe("policy rules: the program's own resources pass every rule (mocks)", () => {
    const forward = { openForward: async () => ({ host: "127.0.0.1" as const, port: 40123, pid: 1, close: () => undefined }) };
    const shapes: [string, "local" | "prod", RawConfig][] = [
        ["local", "local", LOCAL_RAW],
        ["prod", "prod", PROD_RAW],
    ];
    for (const [label, stack, raw] of shapes) {
        it(`${label}: no rule reports anything, and no credential is a plain input`, async () => {
            const run = await runProgram(stack, () => definePlatform(parse(raw), forward));
            const problems = run.resources.filter((r) => r.custom).flatMap((r) => [...Object.values(RULES).flatMap((rule) => rule.check(subjectOf(r))), ...plainSecretProblems(subjectOf(r))]);
            assert.deepStrictEqual(problems, []);
            assert.ok(run.resources.filter((r) => r.type === CONTAINER).length >= 4, "the rules saw the containers");
        });
    }
});

describe("policy rules: every recorded shape's graph passes them (tests/fixtures, the scale suite's recordings)", () => {
    // The graphs mark secrets as { "<secret>": value } (tests/support/graph.ts).
    const isGraphSecret = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 1 && "<secret>" in v;
    for (const shape of ["local-default", "prod-default", "prod-managed", "prod-two-hosts", "prod-three-hosts"]) {
        it(`${shape}: no rule reports anything, and no credential is a plain input`, () => {
            const graph = readGraphFixture(shape);
            const problems = graph
                .filter((n) => n.custom)
                .flatMap((n) => {
                    const subject: PolicySubject = { type: n.type, name: n.name, props: n.inputs as Record<string, unknown>, protect: n.protect };
                    return [...Object.values(RULES).flatMap((rule) => rule.check({ ...subject, props: unwrapGraphSecrets(subject.props) as Record<string, unknown> })), ...plainSecretProblems(subject, isGraphSecret)];
                });
            assert.deepStrictEqual(problems, []);
            assert.ok(graph.filter((n) => n.type === CONTAINER).length >= 5);
        });
    }
});

/** The graph's secrets as the pack sees them: unwrapped. */
function unwrapGraphSecrets(v: unknown): unknown {
    if (Array.isArray(v)) return v.map(unwrapGraphSecrets);
    if (typeof v === "object" && v !== null) {
        const o = v as Record<string, unknown>;
        if (Object.keys(o).length === 1 && "<secret>" in o) return unwrapGraphSecrets(o["<secret>"]);
        return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unwrapGraphSecrets(x)]));
    }
    return v;
}
