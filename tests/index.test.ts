// index.ts as Pulumi runs it: config read from the runtime, validated before any resource exists.
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "../config/platformConfig";
import { FAKE_IP, runProgram, unwrap } from "./harness";
import { PROD_RAW, PROD_SECRET_KEYS } from "./fixtures";

function loadIndex(): Record<string, any> {
    delete require.cache[require.resolve("../index")];
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require("../index");
}

describe("index.ts (mocks)", () => {
    it("reads the local stack's config from the runtime and exports the documented outputs", async () => {
        pulumi.runtime.setAllConfig({ "platform:target": "local", "platform:apps": JSON.stringify({ demo: "1.27-alpine" }) });
        const run = await runProgram("local", loadIndex);
        assert.deepStrictEqual(Object.keys(run.value).sort(), ["apps", "backupBucket", "backupDrillKey", "backupEndpoint", "baseUrl", "databaseUrls", "dnsRecord", "loadBalancerTls", "publicIp"]);
        assert.strictEqual(await unwrap(run.value.baseUrl), "http://localhost:8080/");
        assert.strictEqual(await unwrap(run.value.dnsRecord), null, "no DNS record to create on the local stack, and still a documented value");
        assert.ok(run.resources.length > 20);
    });
    it("with no app listed, every output is a documented value: none is undefined (Pulumi would warn and drop it)", async () => {
        pulumi.runtime.setAllConfig({ "platform:target": "local", "platform:apps": JSON.stringify({}) });
        const run = await runProgram("local", loadIndex);
        for (const key of ["apps", "backupBucket", "backupDrillKey", "backupEndpoint", "baseUrl", "databaseUrls", "dnsRecord", "loadBalancerTls", "publicIp"]) {
            const value = await unwrap(run.value[key]);
            assert.notStrictEqual(value, undefined, `${key} is undefined`);
        }
        assert.strictEqual(await unwrap(run.value.backupBucket), "");
        assert.strictEqual(await unwrap(run.value.backupEndpoint), "");
    });
    it("prod: exports exactly the DNS record to create, from the domain and the public IP", async () => {
        const raw: Record<string, string> = Object.fromEntries(Object.entries(PROD_RAW).map(([k, v]) => [`platform:${k}`, v]));
        pulumi.runtime.setAllConfig(raw, Object.keys(raw).filter((k) => PROD_SECRET_KEYS.includes(k.replace(/^platform:/, ""))));
        const run = await runProgram("prod", loadIndex);
        const record = await unwrap(run.value.dnsRecord);
        assert.deepStrictEqual(record, {
            type: "A",
            name: `${PROD_RAW.domain}.`,
            value: FAKE_IP,
            record: `${PROD_RAW.domain}. 300 IN A ${FAKE_IP}`,
            check: `dig +short ${PROD_RAW.domain} A   # must print ${FAKE_IP}; until then the edge serves plain HTTP and the host retries Let's Encrypt every 15 minutes, then switches to HTTPS`,
        });
    });
    it("a bad key fails before any resource is declared, naming the key and the fix", async () => {
        pulumi.runtime.setAllConfig({ "platform:target": "local", "platform:apps": JSON.stringify({ demo: "not a release" }) });
        let error: unknown;
        const run = await runProgram("local", () => {
            try {
                return loadIndex();
            } catch (e) {
                error = e;
                return {};
            }
        });
        assert.ok(error instanceof ConfigError, String(error));
        assert.match((error as Error).message, /platform:apps\.demo: "not a release" is not a release.*Fix: pulumi config set --type string --path 'apps.demo' 1\.4\.3/);
        assert.deepStrictEqual(run.resources.map((r) => r.type), []);
    });
    it("a secret key set in plain text is refused; set as a secret it is accepted", async () => {
        const base = { "platform:target": "local", "platform:registryUsername": "bot", "platform:registryToken": "tok" };
        pulumi.runtime.setAllConfig(base);
        assert.throws(loadIndex, /platform:registryToken: is stored in plain text/);
        pulumi.runtime.setAllConfig(base, ["platform:registryToken"]);
        const run = await runProgram("local", loadIndex);
        assert.strictEqual(await unwrap(run.value.publicIp), "127.0.0.1");
    });
});
