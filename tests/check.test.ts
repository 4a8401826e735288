// npm run check (commands/check.ts): the program's validation and a dry evaluation, no CLI, no cloud.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { check, runtimeConfig } from "../commands/check";
import { programResources } from "../commands/programGraph";
import { ConfigError } from "../config/platformConfig";
import { runProgram } from "./harness";
import { PROD_RAW } from "./fixtures";
import { TEST_STACK_ENV, TEST_STACK_PHRASE } from "../config/testValues";

const root = path.join(__dirname, "..");

/** A project directory holding the repository's Pulumi.yaml and one stack file. */
function projectWith(stack: string, stackYaml: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-check-"));
    fs.copyFileSync(path.join(root, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    fs.writeFileSync(path.join(dir, `Pulumi.${stack}.yaml`), stackYaml);
    return dir;
}

/** What index.ts throws for this config under the runtime (as `pulumi up` runs it), or undefined. */
async function programError(config: Record<string, string>, secrets: string[]): Promise<Error | undefined> {
    pulumi.runtime.setAllConfig(config, secrets);
    let error: Error | undefined;
    await runProgram("prod", () => {
        delete require.cache[require.resolve("../index")];
        try {
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            return require("../index");
        } catch (e) {
            error = e as Error;
            return {};
        }
    });
    return error;
}

describe("npm run check (commands/check.ts)", () => {
    it("a bad config prints the program's own error, word for word, and fails", async () => {
        const stackYaml = [
            "config:",
            "  platform:target: scaleway",
            "  platform:hosts: two",
            "  platform:acmeStaging: \"yes\"",
            "  platform:registryToken: ghp_plain",
            "  platform:registryUsername: bot",
            "  platform:apps:",
            "    dmeo: \"1.0\"",
            "",
        ].join("\n");
        const result = await check(projectWith("bad", stackYaml), "bad");
        assert.strictEqual(result.ok, false);
        const { config, secrets } = runtimeConfig(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8"), stackYaml);
        const error = await programError(config, [...secrets]);
        assert.ok(error instanceof ConfigError, String(error));
        assert.strictEqual(result.output, `error: ${error.message}`);
        for (const text of [/platform:hosts: "two" is not a whole number/, /platform:acmeStaging: "yes" is not true or false/, /platform:registryToken: is stored in plain text/, /platform:apps\.dmeo: "dmeo" is not in the app catalog/, /platform:domain: required/]) {
            assert.match(result.output, text);
        }
    });
    it("the committed Pulumi.prod.yaml fails on its placeholders, naming each key", async () => {
        const result = await check(root, "prod");
        assert.strictEqual(result.ok, false);
        for (const key of ["sshPublicKey", "adminCidrs[0]", "backupPublicKey", "backupAdministrators[0]"]) assert.ok(result.output.includes(`- platform:${key}: `), `${key}: ${result.output}`);
    });
    it("a good config prints ok and what the stack would create, counted by type", async () => {
        const result = await check(root, "local");
        assert.strictEqual(result.ok, true, result.output);
        const lines = result.output.split("\n");
        const resources = await programResources("local", "platform", runtimeConfig(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8"), fs.readFileSync(path.join(root, "Pulumi.local.yaml"), "utf8")).config);
        assert.match(lines[0], new RegExp(`^ok: stack local is valid; a first \`pulumi up\` would create ${resources.length} resources`));
        const counted = Object.fromEntries(lines.slice(1).map((l) => /^\s*(\d+) (\S+)$/.exec(l)!).map((m) => [m[2], Number(m[1])]));
        const expected: Record<string, number> = {};
        for (const r of resources) expected[r.type] = (expected[r.type] ?? 0) + 1;
        assert.deepStrictEqual(counted, expected);
        assert.strictEqual(counted["docker:index/container:Container"], resources.filter((r) => r.type === "docker:index/container:Container").length);
        assert.ok(counted["platform:app:WebApp"] >= 1);
    });
    it("the several-hosts shape evaluates too, as its first up: the balancer without a certificate yet (DNS cannot point at it)", async () => {
        const raw: Record<string, string> = Object.fromEntries(Object.entries({ ...PROD_RAW, database: "managed", hosts: "2" }).map(([k, v]) => [`platform:${k}`, v]));
        const saved = process.env[TEST_STACK_ENV];
        process.env[TEST_STACK_ENV] = TEST_STACK_PHRASE;
        try {
            const resources = await programResources("prod", "platform", raw);
            const types = resources.map((r) => r.type);
            assert.ok(types.includes("scaleway:loadbalancers/loadBalancer:LoadBalancer"));
            assert.ok(!types.includes("scaleway:loadbalancers/certificate:Certificate"));
            assert.strictEqual(resources.filter((r) => r.type === "scaleway:loadbalancers/frontend:Frontend").length, 1, "port 80 only");
        } finally {
            if (saved === undefined) delete process.env[TEST_STACK_ENV];
            else process.env[TEST_STACK_ENV] = saved;
        }
    });
    it("a stack without a file is named, with the stacks there are", async () => {
        const result = await check(root, "nope");
        assert.strictEqual(result.ok, false);
        assert.match(result.output, /no Pulumi\.nope\.yaml here\. Stacks with a file: .*local.*prod.*Fix: npm run check -- --stack/);
    });
    it("--help prints the usage and exits 0; a bad argument exits 2 with the usage", () => {
        const env = { ...process.env, TS_NODE_TRANSPILE_ONLY: "true" };
        const help = spawnSync(process.execPath, ["-r", "ts-node/register", path.join(root, "commands", "check.ts"), "--help"], { cwd: root, encoding: "utf8", env });
        assert.strictEqual(help.status, 0, help.stderr);
        assert.match(help.stdout, /^usage: npm run check -- --stack <name>/);
        const bad = spawnSync(process.execPath, ["-r", "ts-node/register", path.join(root, "commands", "check.ts"), "--stack"], { cwd: root, encoding: "utf8", env });
        assert.strictEqual(bad.status, 2);
        assert.match(bad.stderr, /usage: npm run check/);
    });
});
