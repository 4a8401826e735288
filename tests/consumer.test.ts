// The StackReference example reads what definePlatform exports, in the shape it exports it.
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { readPlatform } from "../examples/consumer";
import { definePlatform } from "../platform";
import { PROD_RAW, parse } from "./fixtures";
import { runProgram, unwrap } from "./harness";

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
            "consumer",
            "dev",
        );
        const { appUrl, databaseUrl } = readPlatform("acme/platform/prod", "app1");
        assert.strictEqual(await unwrap(appUrl), "https://example.com/app1/");
        assert.match(await unwrap(databaseUrl), /^postgres:\/\/app_app1:.+@postgres:5432\/app1_db\?sslmode=disable$/);
        assert.strictEqual(await pulumi.isSecret(databaseUrl), true);
    });
});
