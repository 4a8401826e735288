// The images tests/e2e/images/build.sh provides are exactly the ones the local stack pulls.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { runProgram } from "./harness";
import { LOCAL_RAW, parse } from "./fixtures";
import { definePlatform } from "../components/platform";

describe("e2e stand-in images (tests/e2e/images/build.sh)", () => {
    it("covers every image the default local stack pulls, by its exact name, and nothing else", async () => {
        const script = fs.readFileSync(path.join(__dirname, "e2e", "images", "build.sh"), "utf8");
        const listed = script.split("IMAGES=\"")[1].split('"')[0].trim().split("\n").map((l) => l.split("|")[0]);
        const run = await runProgram("local", () => definePlatform(parse(LOCAL_RAW)));
        const pulled = run.byType("docker:index/remoteImage:RemoteImage").map((i) => i.inputs.name);
        assert.deepStrictEqual([...new Set(pulled)].sort(), [...listed].sort());
        for (const entry of script.split("IMAGES=\"")[1].split('"')[0].trim().split("\n")) {
            const dir = entry.split("|")[1];
            assert.ok(fs.existsSync(path.join(__dirname, "e2e", "images", dir, "Dockerfile")), `${entry}: no Dockerfile`);
        }
    });
});
