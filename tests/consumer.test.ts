// The StackReference example reads what definePlatform exports, in the shape it exports it.
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as path from "path";
import { readPlatform } from "../examples/consumer/platform";
import { definePlatform } from "../components/platform";
import { PROD_RAW, parse } from "./fixtures";
import { runProgram, unwrap } from "./harness";

const root = path.join(__dirname, "..", "examples", "consumer");

describe("StackReference consumer example (mocks)", () => {
    it("reads an app's URL and its secret DATABASE_URL from the platform's real outputs", async () => {
        const producer = await runProgram("prod", () =>
            definePlatform(parse(PROD_RAW), { openForward: async () => ({ host: "127.0.0.1", port: 40000, pid: 1, close: () => undefined }) }),
        );
        const exported = {
            apps: await unwrap(pulumi.output(producer.value.apps)),
            databaseUrls: await unwrap(producer.value.databaseUrls),
        };
        await pulumi.runtime.setMocks(
            {
                newResource: (args) =>
                    args.type === "pulumi:pulumi:StackReference"
                        ? { id: args.inputs.name, state: { name: args.inputs.name, outputs: exported, secretOutputNames: ["databaseUrls"] } }
                        : { id: args.name, state: args.inputs },
                call: (args) => args.inputs,
            },
            "platform-consumer",
            "dev",
        );
        const { appUrl, databaseUrl } = readPlatform("acme/platform/prod", "app1");
        assert.strictEqual(await unwrap(appUrl), "https://example.com/app1/");
        assert.match(await unwrap(databaseUrl), /^postgres:\/\/app_app1:.+@postgres:5432\/app1_db\?sslmode=disable$/);
        assert.strictEqual(await pulumi.isSecret(databaseUrl), true);

        // The example project's own program, as `pulumi up` in examples/consumer runs it.
        pulumi.runtime.setAllConfig({ "platform-consumer:platformStack": "acme/platform/prod", "platform-consumer:app": "app2" });
        const program = path.join(root, "index.ts");
        delete require.cache[require.resolve(program)];
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const outputs = require(program) as { url: pulumi.Output<string>; appDatabaseUrl: pulumi.Output<string> };
        assert.strictEqual(await unwrap(outputs.url), "https://example.com/app2/");
        assert.strictEqual(await pulumi.isSecret(outputs.appDatabaseUrl), true);
    });
    it("is a Pulumi project of its own that can run: Pulumi.yaml, package.json, tsconfig", () => {
        const project = yaml.load(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8")) as any;
        assert.strictEqual(project.runtime.name, "nodejs");
        assert.ok(fs.existsSync(path.join(root, project.main)));
        assert.ok(project.config["platform-consumer:platformStack"].description);
        const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
        const rootPkg = JSON.parse(fs.readFileSync(path.join(root, "..", "..", "package.json"), "utf8"));
        assert.strictEqual(pkg.dependencies["@pulumi/pulumi"], rootPkg.dependencies["@pulumi/pulumi"], "the same SDK line as the platform");
        for (const dev of ["typescript", "ts-node", "@types/node"]) assert.ok(pkg.devDependencies[dev], dev);
        const tsconfig = JSON.parse(fs.readFileSync(path.join(root, "tsconfig.json"), "utf8"));
        assert.deepStrictEqual(tsconfig.compilerOptions.strict, true);
    });
});
