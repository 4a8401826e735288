import * as assert from "assert";
import { ConfigError, INSTANCE_MEMORY_MB, RawConfig, imageReference, isCidr, isSshPublicKey, planMemory } from "../lib/config";
import { catalog } from "../apps";
import { LOCAL_RAW, PROD_RAW, parse } from "./fixtures";

function problemsOf(raw: RawConfig, isSecret?: (key: string) => boolean): string[] {
    try {
        parse(raw, isSecret);
    } catch (e) {
        assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
        return [...e.problems];
    }
    return [];
}

function expectProblem(raw: RawConfig, key: string, text: RegExp, isSecret?: (key: string) => boolean) {
    const problems = problemsOf(raw, isSecret);
    const hit = problems.find((p) => p.startsWith(`platform:${key}:`));
    assert.ok(hit, `expected a problem for platform:${key}, got: ${JSON.stringify(problems)}`);
    assert.match(hit!, text);
    assert.match(hit!, /Fix: /, "every error says the fix");
}

describe("config validation", () => {
    it("accepts the prod and local fixtures", () => {
        assert.strictEqual(parse(PROD_RAW).apps.length, 2);
        assert.strictEqual(parse(LOCAL_RAW).domain, "localhost");
    });
    it("an app that is not in the catalog, with a suggestion", () => expectProblem({ ...LOCAL_RAW, apps: '{"dmeo":"1.0"}' }, "apps.dmeo", /not in the app catalog. Did you mean "demo"/));
    it("a malformed release", () => expectProblem({ ...LOCAL_RAW, apps: '{"demo":"1.0 beta"}' }, "apps.demo", /is not a release/));
    it("a malformed digest", () => expectProblem({ ...LOCAL_RAW, apps: '{"demo":"sha256:abc"}' }, "apps.demo", /is not a release/));
    it("a release that is not a string", () => expectProblem({ ...LOCAL_RAW, apps: '{"demo":1.2}' }, "apps.demo", /is not a release/));
    it("apps given as a list", () => expectProblem({ ...LOCAL_RAW, apps: '["demo"]' }, "apps", /must be a map/));
    it("an invalid domain", () => expectProblem({ ...PROD_RAW, domain: "exa mple" }, "domain", /not a domain name/));
    it("an invalid email", () => expectProblem({ ...PROD_RAW, acmeEmail: "ops-at-example.com" }, "acmeEmail", /not an email/));
    it("a CIDR that is not one", () => expectProblem({ ...PROD_RAW, adminCidrs: '["10.0.0.300/32"]' }, "adminCidrs[0]", /not a CIDR/));
    it("a CIDR without a prefix length", () => expectProblem({ ...PROD_RAW, adminCidrs: '["203.0.113.7"]' }, "adminCidrs[0]", /not a CIDR/));
    it("a CIDR open to the world", () => expectProblem({ ...PROD_RAW, adminCidrs: '["0.0.0.0/0"]' }, "adminCidrs[0]", /whole internet/));
    it("a string where a list of CIDRs belongs", () => expectProblem({ ...PROD_RAW, adminCidrs: "203.0.113.7/32" }, "adminCidrs", /must be a list/));
    it("an unknown target", () => expectProblem({ ...LOCAL_RAW, target: "aws" }, "target", /not a target/));
    it("a public key that is not one", () => expectProblem({ ...PROD_RAW, sshPublicKey: "ssh-ed25519 bm90IGEga2V5" }, "sshPublicKey", /not an OpenSSH public key/));
    it("an unknown key, with a suggestion", () => expectProblem({ ...LOCAL_RAW, domian: "example.com" }, "domian", /unknown key. Did you mean "domain"/));
    it("missing values the scaleway target needs", () => {
        const problems = problemsOf({ target: "scaleway", apps: "{}" });
        for (const key of ["domain", "acmeEmail", "sshPublicKey", "adminCidrs"]) {
            assert.ok(problems.some((p) => p.startsWith(`platform:${key}: required`)), `${key} required: ${problems.join("\n")}`);
        }
    });
    it("a registry token for ghcr.io images on scaleway", () => {
        const { registryToken, registryUsername, ...raw } = PROD_RAW;
        expectProblem(raw, "registryToken", /required to pull app1, app2 from ghcr.io/);
    });
    it("a secret stored in plain text", () => expectProblem(PROD_RAW, "sshPrivateKey", /plain text/, () => false));
    it("an unsupported instance type", () => expectProblem({ ...PROD_RAW, instanceType: "DEV9-Z" }, "instanceType", /not a supported instance type/));
    it("an invalid local port", () => expectProblem({ ...LOCAL_RAW, localHttpPort: "80000" }, "localHttpPort", /not a TCP port/));
    it("a password version for an app the stack does not run", () =>
        expectProblem({ ...LOCAL_RAW, passwordVersions: '{"app1":2}' }, "passwordVersions.app1", /does not run/));
    it("reports every problem at once", () => {
        assert.ok(problemsOf({ target: "scaleway", domain: "bad domain", apps: '{"x":"1"}', typo: "1" }).length >= 5);
    });
});

describe("memory budget", () => {
    it("DEV1-M leaves 3.5 GiB for containers and the catalog's three apps fit it", () => {
        const plan = planMemory(INSTANCE_MEMORY_MB["DEV1-M"], Object.values(catalog));
        assert.strictEqual(plan.budgetMb, 3584);
        assert.strictEqual(plan.totalMb, 1024 + 128 + (128 + 512) * 2 + 64 + 128);
        assert.ok(plan.totalMb <= plan.budgetMb);
    });
    it("the same apps do not fit a DEV1-S, and the error gives the sum, the budget and the fix", () => {
        expectProblem({ ...PROD_RAW, instanceType: "DEV1-S" }, "apps", /sum to 1920 MiB .* DEV1-S leaves 1536 MiB .*instanceType DEV1-L/);
    });
    it("counts PostgreSQL and the edge", () => {
        const plan = planMemory(4096, []);
        assert.strictEqual(plan.totalMb, plan.postgresMb + plan.edgeMb);
    });
});

describe("config helpers", () => {
    it("CIDRs, v4 and v6", () => {
        assert.ok(isCidr("203.0.113.0/24") && isCidr("2001:db8::/32"));
        assert.ok(!isCidr("203.0.113.0/33") && !isCidr("2001:db8::/129") && !isCidr("hello/8") && !isCidr("1.2.3.4/"));
    });
    it("public keys must encode the type they name", () => {
        assert.ok(isSshPublicKey(PROD_RAW.sshPublicKey));
        const [, blob] = PROD_RAW.sshPublicKey.split(" ");
        assert.ok(!isSshPublicKey(`ssh-rsa ${blob}`), "an ed25519 blob labelled ssh-rsa");
    });
    it("image references for tags and digests", () => {
        assert.strictEqual(imageReference("ghcr.io/a/b", "1.2.3"), "ghcr.io/a/b:1.2.3");
        assert.strictEqual(imageReference("ghcr.io/a/b", "sha256:" + "0".repeat(64)), `ghcr.io/a/b@sha256:${"0".repeat(64)}`);
    });
});
