import * as assert from "assert";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { ConfigError, INSTANCE_MEMORY_MB, RawConfig, parsePlatformConfig, parseStackConfig, planMemory } from "../config/platformConfig";
import { coversWholeInternet, imageReference, isCidr, isSshPublicKey } from "../render/values";
import { catalog } from "../apps";
import { TEST_SIGNING_KEYS, TEST_STACK_ENV, TEST_STACK_PHRASE, isTestStackEnvironment } from "../config/testValues";
import { generateSigningKey } from "../render/signing";
import { BACKUP_ADMINISTRATOR, LOCAL_RAW, PROD_RAW, PUBLIC_KEY, REAL_KEYS, parse } from "./fixtures";

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
    it("a release that is not a string: a number (1.10 read as 1.1) is refused with a fix that stores a string", () => {
        expectProblem({ ...LOCAL_RAW, apps: '{"demo":1.1}' }, "apps.demo", /is a number, not a string.*--type string --path 'apps\.demo'/);
        expectProblem({ ...LOCAL_RAW, apps: '{"demo":2}' }, "apps.demo", /is a number, not a string/);
        expectProblem({ ...LOCAL_RAW, apps: '{"demo":true}' }, "apps.demo", /is a boolean, not a string/);
        expectProblem({ ...LOCAL_RAW, apps: '{"demo":{"tag":"1"}}' }, "apps.demo", /is a object, not a string/);
        assert.strictEqual(parse({ ...LOCAL_RAW, apps: '{"demo":"1.10"}' }).apps[0].release, "1.10", "the string is kept exactly as written");
    });
    it("apps given as a list", () => expectProblem({ ...LOCAL_RAW, apps: '["demo"]' }, "apps", /must be a map/));
    it("an invalid domain", () => expectProblem({ ...PROD_RAW, domain: "exa mple" }, "domain", /not a domain name/));
    it("an invalid email", () => expectProblem({ ...PROD_RAW, acmeEmail: "ops-at-example.com" }, "acmeEmail", /not a plain email/));
    it("hostile emails that look plausible never pass (they reach a cron line and certbot)", () => {
        for (const email of ["ops@x.com;touch${IFS}/tmp/pwned;#", "ops%1@example.com", "o'ps@example.com", "ops@example.com\n* * * * * root id", "$(id)@example.com", "ops@exa mple.com", "ops@example.com #", "`id`@example.com", "ops@@example.com", ".ops@example.com", "ops..x@example.com"]) {
            expectProblem({ ...PROD_RAW, acmeEmail: email }, "acmeEmail", /not a plain email/);
        }
        for (const email of ["ops@example.com", "first.last+certs@sub.example.co.uk", "a_b-c@example.io"]) assert.strictEqual(parse({ ...PROD_RAW, acmeEmail: email }).acmeEmail, email);
    });
    it("app names are looked up as the catalog's own entries only", () => {
        for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf"]) {
            const problems = problemsOf({ ...LOCAL_RAW, apps: `{"${name}":"1.0"}` });
            assert.ok(problems.some((p) => p.startsWith(`platform:apps.${name}: "${name}" is not in the app catalog`)), `${name}: ${problems.join("\n")}`);
            const versions = problemsOf({ ...LOCAL_RAW, passwordVersions: `{"${name}":1}` });
            assert.ok(versions.some((p) => p.startsWith(`platform:passwordVersions.${name}: names an app this stack does not run`)), `${name}: ${versions.join("\n")}`);
        }
    });
    it("backup settings: an age recipient, a cron schedule, retention longer than the lock, an https heartbeat", () => {
        const { backupPublicKey, ...raw } = PROD_RAW;
        expectProblem(raw, "backupPublicKey", /required on the scaleway target.*age-keygen/);
        expectProblem({ ...PROD_RAW, backupPublicKey: "age1short" }, "backupPublicKey", /not an age recipient/);
        expectProblem({ ...PROD_RAW, backupPublicKey: "ssh-ed25519 AAAA" }, "backupPublicKey", /not an age recipient/);
        for (const schedule of ["30 3 * *", "61 3 * * *", "30 3 * * * root id", "30 3 * * *;id", "@daily", "30 3 * * 8", "30 5-3 * * *", "*/0 * * * *", "30 3 % * *"]) {
            expectProblem({ ...PROD_RAW, backupSchedule: schedule }, "backupSchedule", /not a five-field cron schedule/);
        }
        assert.strictEqual(parse({ ...PROD_RAW, backupSchedule: "15  2,14 * * 1-5" }).backup.schedule, "15 2,14 * * 1-5");
        expectProblem({ ...PROD_RAW, backupRetentionDays: "7", backupLockDays: "7" }, "backupLockDays", /not shorter than the 7-day retention/);
        expectProblem({ ...PROD_RAW, backupRetentionDays: "thirty" }, "backupRetentionDays", /not a whole number/);
        for (const url of ["http://hc-ping.com/x", "https://hc-ping.com/x?y=1", "https://u:p@hc-ping.com/x", "https://hc-ping.com/x';id;'", "https://hc-ping.com/$(id)"]) {
            expectProblem({ ...PROD_RAW, backupHeartbeatUrl: url }, "backupHeartbeatUrl", /not a plain https URL/);
        }
        const backup = parse({ ...PROD_RAW, backupHeartbeatUrl: "https://hc-ping.com/5f1e-77aa" }).backup;
        assert.deepStrictEqual(backup, {
            publicKey: PROD_RAW.backupPublicKey,
            schedule: "30 3 * * *",
            retentionDays: 30,
            lockDays: 7,
            heartbeatUrl: "https://hc-ping.com/5f1e-77aa",
            signingKey: PROD_RAW.backupSigningKey,
            trustedKeys: [{ publicKey: TEST_SIGNING_KEYS.fixture.publicKey }],
            administrators: [BACKUP_ADMINISTRATOR],
        });
    });
    it("backup signing: a secret Ed25519 key on scaleway whose public half is pinned and not retired; malformed pins are named", () => {
        const secret = (k: string) => ["sshPrivateKey", "registryToken", "backupSigningKey"].includes(k);
        const { backupSigningKey, ...unsigned } = PROD_RAW;
        expectProblem(unsigned, "backupSigningKey", /required on the scaleway target.*npm run backup:signing-key/, secret);
        expectProblem(PROD_RAW, "backupSigningKey", /stored in plain text\. Fix: pulumi config set --secret platform:backupSigningKey/, (k) => k !== "backupSigningKey" && secret(k));
        for (const bad of ["ed25519:" + "A".repeat(43) + "=", "ed25519-secret:short", "-----BEGIN PRIVATE KEY-----", "ed25519-secret:" + "A".repeat(43) + "=' ; id"]) {
            expectProblem({ ...PROD_RAW, backupSigningKey: bad }, "backupSigningKey", /not a backup signing key/, secret);
        }
        const other = generateSigningKey();
        expectProblem({ ...PROD_RAW, backupSigningKey: other.secretKey }, "backupSigningKeys", new RegExp(`does not pin ${other.publicKey.replace(/[+/]/g, "\\$&")}.*Fix: pulumi config set --path 'platform:backupSigningKeys\\[1\\]'`), secret);
        const retired = JSON.stringify([{ key: TEST_SIGNING_KEYS.fixture.publicKey, retiredAt: "2026-12-01T00:00:00Z" }]);
        expectProblem({ ...PROD_RAW, backupSigningKeys: retired }, "backupSigningKeys", /retires .* yet platform:backupSigningKey is that key/, secret);
        for (const [pins, re] of [
            ['["ed25519:nope"]', /\[0\] is not a backup signing public key/],
            ['[{"key": "ed25519:nope"}]', /\[0\]\.key is not/],
            [JSON.stringify([{ key: other.publicKey, retiredAt: "yesterday" }]), /\[0\]\.retiredAt is not a UTC time/],
            [JSON.stringify([{ key: other.publicKey, until: "2026-12-01T00:00:00Z" }]), /unknown field\(s\) until/],
            ['{"a": 1}', /not a list/],
        ] as const) {
            expectProblem({ ...PROD_RAW, backupSigningKeys: pins }, "backupSigningKeys", re, secret);
        }
        // A rotation: the old key retired, the new one pinned and set.
        const rotated = parse({ ...PROD_RAW, backupSigningKey: other.secretKey, backupSigningKeys: JSON.stringify([{ key: TEST_SIGNING_KEYS.fixture.publicKey, retiredAt: "2026-12-01T00:00:00Z" }, other.publicKey]) }, secret);
        assert.deepStrictEqual(rotated.backup.trustedKeys, [{ publicKey: TEST_SIGNING_KEYS.fixture.publicKey, retiredAt: new Date("2026-12-01T00:00:00Z") }, { publicKey: other.publicKey }]);
        // The local stack needs none (it generates its own); one set there must be pinned all the same.
        assert.strictEqual(parse(LOCAL_RAW).backup.signingKey, undefined);
        expectProblem({ ...LOCAL_RAW, backupSigningKey: other.secretKey }, "backupSigningKeys", /does not pin/, secret);
    });
    it("backup administrators: reviewed principals, required on scaleway, each user_id:<uuid> or application_id:<uuid>, with how to find yours", () => {
        const { backupAdministrators, ...raw } = PROD_RAW;
        const lookup = /scw iam api-key get "\$SCW_ACCESS_KEY".*pulumi config set --path 'platform:backupAdministrators\[0\]' user_id:<uuid>/;
        expectProblem(raw, "backupAdministrators", new RegExp(`required on the scaleway target.*${lookup.source}`));
        // What the CLI hands over for the unset key (Pulumi.yaml's default).
        expectProblem({ ...raw, backupAdministrators: "[]" }, "backupAdministrators", /required on the scaleway target/);
        assert.deepStrictEqual(parse({ ...LOCAL_RAW, backupAdministrators: "[]" }).backup.administrators, [], "not needed on the local stack");
        const uuid = "0b2f6e1c-9a4d-4e8b-b7a2-3c5d6e7f8a9b";
        const both = [`user_id:${uuid}`, `application_id:${uuid}`];
        assert.deepStrictEqual(parse({ ...PROD_RAW, backupAdministrators: JSON.stringify(both) }).backup.administrators, both);
        const at = (list: unknown) => ({ ...PROD_RAW, backupAdministrators: JSON.stringify(list) });
        expectProblem(at([`user_id:${uuid}`, "user_id:<your Scaleway user or application id>"]), "backupAdministrators[1]", /still the example's placeholder.*backupAdministrators\[1\]/);
        expectProblem(at(["SCWABCDEFGHIJKLMNOPQ"]), "backupAdministrators[0]", /an API key's access key, not a principal/);
        for (const bad of [uuid, `user_id:${uuid.toUpperCase()}`, `api_key:${uuid}`, `user_id:${uuid}x`, "*", `user_id:${uuid} `, 7]) {
            expectProblem(at([bad]), "backupAdministrators[0]", /is not user_id:<uuid> or application_id:<uuid>/);
        }
        expectProblem(at([`user_id:${uuid}`, `user_id:${uuid}`]), "backupAdministrators[1]", /listed twice/);
        expectProblem({ ...PROD_RAW, backupAdministrators: JSON.stringify(`user_id:${uuid}`) }, "backupAdministrators", /must be a list of principals/);
    });
    it("the alerts webhook: an https URL without query or quotes, set as a secret", () => {
        const secret = (k: string) => k === "alertWebhookUrl" || k === "registryToken" || k === "backupSigningKey";
        const hook = "https://hooks.slack.com/services/T0000/B0000/XXXX";
        expectProblem({ ...PROD_RAW, alertWebhookUrl: hook }, "alertWebhookUrl", /stored in plain text\. Fix: pulumi config set --secret platform:alertWebhookUrl/, () => false);
        for (const url of ["http://hooks.slack.com/x", "https://hooks.slack.com/x?y=1", "https://u:p@hooks.slack.com/x", "https://x.org/a';id;'", "https://x.org/$(id)"]) {
            expectProblem({ ...PROD_RAW, alertWebhookUrl: url }, "alertWebhookUrl", /not a plain https URL.*--secret/, secret);
        }
        assert.strictEqual(parse({ ...PROD_RAW, alertWebhookUrl: hook }, secret).alertWebhookUrl, hook);
        assert.ok(!parse(PROD_RAW).alertWebhookUrl, "unset: no webhook");
    });
    it("a CIDR that is not one", () => expectProblem({ ...PROD_RAW, adminCidrs: '["10.0.0.300/32"]' }, "adminCidrs[0]", /not a CIDR/));
    it("a CIDR without a prefix length", () => expectProblem({ ...PROD_RAW, adminCidrs: '["203.0.113.7"]' }, "adminCidrs[0]", /not a CIDR/));
    it("a CIDR open to the world, however it is written", () => {
        for (const c of ["0.0.0.0/0", "0.0.0.0/00", "::/0", "::/000", "0:0:0:0:0:0:0:0/0"]) {
            expectProblem({ ...PROD_RAW, adminCidrs: JSON.stringify([c]) }, "adminCidrs[0]", /whole internet.*sshFromAnywhere true/);
        }
    });
    it("CIDRs that together cover the whole internet are refused, however they are split", () => {
        const splits = [
            ["0.0.0.0/1", "128.0.0.0/1"],
            ["128.0.0.0/2", "0.0.0.0/1", "192.0.0.0/2"],
            ["::/1", "8000::/1"],
            ["0.0.0.0/1", "128.0.0.0/01"],
        ];
        for (const split of splits) {
            const problems = problemsOf({ ...PROD_RAW, adminCidrs: JSON.stringify(split) });
            assert.ok(problems.some((p) => /cover the whole internet|large part of the internet/.test(p)), `${split}: ${problems.join("\n")}`);
        }
        assert.ok(coversWholeInternet(["0.0.0.0/1", "128.0.0.0/1"]) && coversWholeInternet(["::/1", "8000::/1"]));
        assert.ok(!coversWholeInternet(["0.0.0.0/1", "128.0.0.0/2"]) && !coversWholeInternet(["203.0.113.0/24", "::/1"]));
        // Every /8 of IPv4 is each acceptable alone; all 256 together are the whole internet.
        const all = Array.from({ length: 256 }, (_, i) => `${i}.0.0.0/8`);
        assert.ok(coversWholeInternet(all));
        expectProblem({ ...PROD_RAW, adminCidrs: JSON.stringify(all) }, "adminCidrs", /together cover the whole internet/);
    });
    it("a broad prefix or a CIDR with host bits is refused; a /32, a /24 and an IPv6 /64 are fine", () => {
        expectProblem({ ...PROD_RAW, adminCidrs: '["10.0.0.0/7"]' }, "adminCidrs[0]", /a \/7, a large part/);
        expectProblem({ ...PROD_RAW, adminCidrs: '["2001:db8::/16"]' }, "adminCidrs[0]", /a \/16/);
        expectProblem({ ...PROD_RAW, adminCidrs: '["203.0.113.7/24"]' }, "adminCidrs[0]", /host bits/);
        assert.deepStrictEqual(parse({ ...PROD_RAW, adminCidrs: '["203.0.113.7/32","198.51.100.0/24","2001:db8:1:2::/64"]' }).adminCidrs.length, 3);
    });
    it("sshFromAnywhere is the only way to open SSH to everyone: it needs no adminCidrs and must be a boolean", () => {
        const { adminCidrs, ...raw } = PROD_RAW;
        assert.strictEqual(parse({ ...raw, sshFromAnywhere: "true" }).sshFromAnywhere, true);
        assert.strictEqual(parse(PROD_RAW).sshFromAnywhere, false);
        expectProblem(raw, "adminCidrs", /required.*sshFromAnywhere true/);
        expectProblem({ ...PROD_RAW, sshFromAnywhere: "yes" }, "sshFromAnywhere", /not true or false/);
        expectProblem({ ...PROD_RAW, sshFromAnywhere: "true", adminCidrs: '["0.0.0.0/0"]' }, "adminCidrs[0]", /whole internet/);
    });
    it("a string where a list of CIDRs belongs", () => expectProblem({ ...PROD_RAW, adminCidrs: "203.0.113.7/32" }, "adminCidrs", /must be a list/));
    it("an unknown target", () => expectProblem({ ...LOCAL_RAW, target: "aws" }, "target", /not a target/));
    it("a public key that is not one", () => expectProblem({ ...PROD_RAW, sshPublicKey: "ssh-ed25519 bm90IGEga2V5" }, "sshPublicKey", /not an OpenSSH public key/));
    it("a truncated public key is refused, however it was cut", () => {
        const [type, blob, comment] = PUBLIC_KEY.split(" ");
        const bytes = Buffer.from(blob, "base64");
        for (let cut = 1; cut < bytes.length; cut += 3) {
            const truncated = bytes.subarray(0, bytes.length - cut).toString("base64");
            assert.ok(!isSshPublicKey(`${type} ${truncated} ${comment}`), `cut ${cut} bytes`);
        }
        assert.ok(!isSshPublicKey(`${type} ${blob.slice(0, -4)}`), "base64 cut on a quad boundary");
        assert.ok(!isSshPublicKey(`${type} ${blob.slice(0, -1)}`), "base64 cut mid-quad");
        assert.ok(!isSshPublicKey(`${type} ${Buffer.concat([bytes, Buffer.from([0, 0, 0, 1, 7])]).toString("base64")}`), "extra bytes after the key");
        assert.ok(!isSshPublicKey(`${type} ${blob} a'b`), "a comment with a quote");
        assert.ok(!isSshPublicKey(`${type}\t${blob} c`) && !isSshPublicKey(`${type} ${blob}\nssh-ed25519 ${blob}`), "control characters");
    });
    it("real keys of every common type are accepted", () => {
        for (const key of REAL_KEYS) assert.ok(isSshPublicKey(key), key.slice(0, 40));
    });
    it("a key in a misspelled namespace is refused, naming the key it was meant to be", () => {
        const all = { "platform:target": "local", "platfrom:apps": '{"demo":"1.0"}', "scaleway:region": "fr-par", "pulumi:tags": "{}" };
        try {
            parseStackConfig(all, { catalog, isSecret: () => false });
            assert.fail("expected a ConfigError");
        } catch (e) {
            assert.ok(e instanceof ConfigError);
            assert.strictEqual(e.problems.length, 1, e.message);
            assert.match(e.problems[0], /^platfrom:apps: unknown config namespace "platfrom"; did you mean platform:apps\? .*Fix: pulumi config rm platfrom:apps/);
        }
        assert.throws(() => parseStackConfig({ "sclaeway:zone": "fr-par-1", "platform:apps": "[]" }, { catalog, isSecret: () => false }), (e: ConfigError) => e.problems.length === 2 && /did you mean scaleway:zone/.test(e.message));
        assert.strictEqual(parseStackConfig({ "platform:target": "local", "docker:host": "unix:///x" }, { catalog, isSecret: () => false }).target, "local");
    });
    it("an unknown key, with a suggestion", () => expectProblem({ ...LOCAL_RAW, domian: "example.com" }, "domian", /unknown key. Did you mean "domain"/));
    it("missing values the scaleway target needs", () => {
        const problems = problemsOf({ target: "scaleway", apps: "{}" });
        for (const key of ["domain", "acmeEmail", "sshPublicKey", "adminCidrs"]) {
            assert.ok(problems.some((p) => p.startsWith(`platform:${key}: required`)), `${key} required: ${problems.join("\n")}`);
        }
    });
    it("a registry token for ghcr.io images on scaleway", () => {
        const { registryToken, registryUsername, ...raw } = PROD_RAW;
        expectProblem(raw, "registryToken", /required to pull the private images of app1, app2/);
    });
    it("no registry token where every image is public, on either target", () => {
        const { registryToken, registryUsername, ...raw } = PROD_RAW;
        assert.strictEqual(parse({ ...raw, apps: '{"demo":"1.27-alpine"}' }).registryToken, undefined);
    });
    it("a secret stored in plain text", () => expectProblem(PROD_RAW, "registryToken", /plain text/, () => false));
    it("platform:sshPrivateKey is refused on every target, secret or not: the key lives in ssh-agent, never in config or state", () => {
        const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----";
        for (const raw of [PROD_RAW, LOCAL_RAW]) {
            expectProblem({ ...raw, sshPrivateKey: key }, "sshPrivateKey", /decrypted by anyone holding the passphrase.*Fix: ssh-add ~\/\.ssh\/id_ed25519.*pulumi config rm platform:sshPrivateKey/, (k) => k === "sshPrivateKey" || k === "registryToken");
        }
        assert.doesNotMatch(problemsOf({ ...PROD_RAW, sshPrivateKey: key }).join("\n"), /unknown key/, "a retired key says why, not just that it is unknown");
    });
    it("an unsupported instance type", () => expectProblem({ ...PROD_RAW, instanceType: "DEV9-Z" }, "instanceType", /not a supported instance type/));
    it("an invalid local port", () => expectProblem({ ...LOCAL_RAW, localHttpPort: "80000" }, "localHttpPort", /not a TCP port/));
    it("a password version for an app the stack does not run", () =>
        expectProblem({ ...LOCAL_RAW, passwordVersions: '{"app1":2}' }, "passwordVersions.app1", /does not run/));
    it("scale: defaults are today's single server; several hosts need the managed database; the local stack stays one machine", () => {
        assert.deepStrictEqual(parse(PROD_RAW).scale, { database: "container", hosts: 1, managedDatabaseNodeType: "DB-DEV-S", managedDatabaseHa: false, managedDatabaseBackupDays: 7 });
        const scaled = parse({ ...PROD_RAW, database: "managed", hosts: "2", managedDatabaseHa: "true", managedDatabaseNodeType: "db-gp-xs" }).scale;
        assert.deepStrictEqual(scaled, { database: "managed", hosts: 2, managedDatabaseNodeType: "DB-GP-XS", managedDatabaseHa: true, managedDatabaseBackupDays: 7 });
        expectProblem({ ...PROD_RAW, hosts: "2" }, "hosts", /need a database they can all reach.*database managed/);
        expectProblem({ ...PROD_RAW, hosts: "0" }, "hosts", /not a whole number from 1 to 10/);
        expectProblem({ ...PROD_RAW, hosts: "2.5" }, "hosts", /not a whole number/);
        expectProblem({ ...PROD_RAW, database: "rds" }, "database", /neither container nor managed/);
        expectProblem({ ...LOCAL_RAW, database: "managed" }, "database", /local stack is one machine/);
        expectProblem({ ...PROD_RAW, database: "managed", managedDatabaseNodeType: "DB;rm" }, "managedDatabaseNodeType", /not a Scaleway database node type/);
    });
    it("the apps' database connection limits must fit max_connections minus the admin's reserve", () => {
        const many = Object.fromEntries(["a1", "a2", "a3", "a4", "a5"].map((n) => [n, { ...catalog.app1, name: n }]));
        const raw = { target: "local", apps: JSON.stringify(Object.fromEntries(Object.keys(many).map((n) => [n, "1.0"]))) };
        assert.throws(
            () => parsePlatformConfig(raw, { catalog: many, isSecret: () => false }),
            (e: ConfigError) => e.problems.some((p) => /^platform:apps: database connection limits sum to 100 .* allows 90 for apps .*Fix: /.test(p)),
        );
        const four = Object.fromEntries(Object.entries(many).slice(0, 4));
        const fits = { target: "local", instanceType: "DEV1-L", apps: JSON.stringify(Object.fromEntries(Object.keys(four).map((n) => [n, "1.0"]))) };
        assert.strictEqual(parsePlatformConfig(fits, { catalog: four, isSecret: () => false }).apps.length, 4);
    });
    it("reports every problem at once", () => {
        assert.ok(problemsOf({ target: "scaleway", domain: "bad domain", apps: '{"x":"1"}', typo: "1" }).length >= 5);
    });
});

describe("memory budget", () => {
    it("DEV1-M leaves 3.5 GiB for containers and the catalog's three apps fit it", () => {
        const plan = planMemory(INSTANCE_MEMORY_MB["DEV1-M"], Object.values(catalog));
        assert.strictEqual(plan.budgetMb, 3584);
        assert.strictEqual(plan.totalMb, 1024 + 32 + 128 + (128 + 512) * 2 + 64 + 128);
        assert.ok(plan.totalMb <= plan.budgetMb);
    });
    it("the same apps do not fit a DEV1-S, and the error gives the sum, the budget and the fix", () => {
        expectProblem({ ...PROD_RAW, instanceType: "DEV1-S" }, "apps", /sum to 1952 MiB .* DEV1-S leaves 1536 MiB .*instanceType DEV1-L/);
    });
    it("counts PostgreSQL and the edge", () => {
        const plan = planMemory(4096, []);
        assert.strictEqual(plan.totalMb, plan.postgresMb + plan.forwarderMb + plan.edgeMb);
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

describe("published keys never guard a real server (issue 21, item 3)", () => {
    const root = path.join(__dirname, "..");
    /** A well-formed ed25519 public key and age recipient made here, so nobody else has them. */
    const ownKey = () => {
        const type = Buffer.from("ssh-ed25519");
        const header = Buffer.alloc(4);
        header.writeUInt32BE(type.length);
        const size = Buffer.alloc(4);
        size.writeUInt32BE(32);
        return `ssh-ed25519 ${Buffer.concat([header, type, size, crypto.randomBytes(32)]).toString("base64")} me@laptop`;
    };
    const ownRecipient = () => "age1" + Array.from(crypto.randomBytes(58), (b) => "qpzry9x8gf2tvdw0s3jn54khce6mua7l"[b % 32]).join("");
    const real = (raw: RawConfig) => parsePlatformConfig(raw, { catalog, isSecret: (k) => ["registryToken", "backupSigningKey"].includes(k) });
    const ownSigning = generateSigningKey();
    const OWN: RawConfig = {
        ...PROD_RAW,
        sshPublicKey: ownKey(),
        backupPublicKey: ownRecipient(),
        adminCidrs: '["192.168.77.0/24"]',
        backupSigningKey: ownSigning.secretKey,
        backupSigningKeys: JSON.stringify([ownSigning.publicKey]),
    };
    const problemsOfReal = (raw: RawConfig): string[] => {
        try {
            real(raw);
            return [];
        } catch (e) {
            assert.ok(e instanceof ConfigError, String(e));
            return [...e.problems];
        }
    };

    /** Every SSH public key and age recipient written anywhere in the repository's sources and docs. */
    function publishedValues(): { keys: string[]; recipients: string[] } {
        const files: string[] = [];
        const walk = (dir: string) => {
            for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
                // dist/ is the build of these sources (gitignored), not a source of its own.
                if (["node_modules", ".git", ".pulumi-state", ".platform", "dist"].includes(e.name)) continue;
                const p = path.join(dir, e.name);
                if (e.isDirectory()) walk(p);
                else if (/\.(ts|js|json|ya?ml|md|sh)$/.test(e.name)) files.push(p);
            }
        };
        walk(root);
        const text = files.map((f) => fs.readFileSync(f, "utf8")).join("\n");
        const keys = [...new Set([...text.matchAll(/(?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+|sk-ssh-ed25519@openssh\.com) AAAA[A-Za-z0-9+/=]+/g)].map((m) => m[0]))].filter((k) => isSshPublicKey(k));
        const recipients = [...new Set([...text.matchAll(/age1[02-9ac-hj-np-z]{58}/g)].map((m) => m[0]))];
        return { keys, recipients };
    }

    it("a stack with its own keys and address passes without being a test stack", () => {
        assert.strictEqual(real(OWN).target, "scaleway");
    });
    it("every public key and age recipient in the repository is refused on a real stack, naming the key and how to make one", () => {
        const { keys, recipients } = publishedValues();
        assert.ok(keys.length >= 6 && recipients.length >= 2, `found ${keys.length} keys, ${recipients.length} recipients`);
        for (const key of keys) {
            const problems = problemsOfReal({ ...OWN, sshPublicKey: `${key} deploy@platform` });
            assert.ok(problems.some((p) => /^platform:sshPublicKey: is one of the test suite's published keys.*ssh-keygen -t ed25519/.test(p)), `${key.slice(0, 40)}…: ${problems.join("\n")}`);
            assert.strictEqual(parse({ ...OWN, sshPublicKey: key }).sshPublicKey, key, "a test stack accepts it");
        }
        for (const recipient of recipients) {
            const problems = problemsOfReal({ ...OWN, backupPublicKey: recipient });
            assert.ok(problems.some((p) => /^platform:backupPublicKey: is one of the test suite's published recipients.*age-keygen/.test(p)), `${recipient}: ${problems.join("\n")}`);
        }
    });
    it("every backup signing key published in the repository is refused on a real stack", () => {
        for (const secretKey of [...Object.values(TEST_SIGNING_KEYS).map((k) => k.secretKey), `ed25519-secret:${"A".repeat(43)}=`]) {
            const problems = problemsOfReal({ ...OWN, backupSigningKey: secretKey });
            assert.ok(problems.some((p) => /^platform:backupSigningKey: is a signing key published in this repository.*npm run backup:signing-key/.test(p)), `${secretKey}: ${problems.join("\n")}`);
        }
    });
    it("addresses from the documentation ranges are refused on a real stack: nobody could reach SSH", () => {
        for (const cidr of ["203.0.113.10/32", "198.51.100.0/24", "192.0.2.7/32", "2001:db8:1:2::/64"]) {
            const problems = problemsOfReal({ ...OWN, adminCidrs: JSON.stringify(["192.168.77.0/24", cidr]) });
            assert.ok(problems.some((p) => /^platform:adminCidrs\[1\]: .* documentation range.*Fix: pulumi config set --path 'adminCidrs\[1\]' "\$\(curl -4/.test(p)), `${cidr}: ${problems.join("\n")}`);
        }
        // A range that merely contains a documentation block is someone's real network.
        assert.strictEqual(real({ ...OWN, adminCidrs: '["203.0.0.0/8"]' }).adminCidrs.length, 1);
    });
    it("a test stack is the exact phrase in PLATFORM_TEST_STACK, nothing looser", () => {
        assert.ok(isTestStackEnvironment({ [TEST_STACK_ENV]: TEST_STACK_PHRASE }));
        for (const value of [undefined, "", "1", "true", "yes", ` ${TEST_STACK_PHRASE}`, TEST_STACK_PHRASE.toUpperCase()]) {
            assert.ok(!isTestStackEnvironment({ [TEST_STACK_ENV]: value }), String(value));
        }
        assert.ok(!isTestStackEnvironment({ CI: "true", NODE_ENV: "test" }), "CI and NODE_ENV do not make a test stack");
    });
    it("nothing a deployment runs sets it: only the test set-up, the benchmarks and its definition name it", () => {
        const allowed = new Set(["config/testValues.ts", "tests/support/testStack.ts", "tests/config.test.ts", ".mocharc.json", "bench/program.ts"]);
        const offenders: string[] = [];
        const walk = (dir: string) => {
            for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
                // dist/ is the build of these sources (gitignored), not a source of its own.
                if (["node_modules", ".git", ".pulumi-state", ".platform", "dist"].includes(e.name)) continue;
                const p = path.join(dir, e.name);
                if (e.isDirectory()) walk(p);
                else {
                    const text = fs.readFileSync(p, "utf8");
                    const rel = path.relative(root, p);
                    if ((text.includes(TEST_STACK_ENV) || text.includes(TEST_STACK_PHRASE) || text.includes("tests/support/testStack")) && !allowed.has(rel)) offenders.push(rel);
                }
            }
        };
        walk(root);
        assert.deepStrictEqual(offenders, []);
    });
});
