// What the real Pulumi CLI does with Pulumi.yaml's `config:` declarations when a value has the wrong type
// (issue 21, item 6). A declared `type:` is checked by the CLI before the program runs: it stops at the
// first mismatch with "configuration key 'platform:hosts' must be of type 'integer'" (no value, no fix),
// pre-empting the program's messages. So Pulumi.yaml declares no types (the schema holds them), and this
// suite proves that through the CLI the program's own messages, every problem at once, reach the user,
// the very lines `npm run check` prints.
//
// Needs the Pulumi CLI and its nodejs language host on PATH; a local file backend in a temp directory,
// no cloud. .ci/run cannot install the CLI from Debian's archive, so a missing CLI skips loudly, also in
// CI, unless PLATFORM_REQUIRE_PULUMI_CLI=1 makes it a failure.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import { check } from "../commands/check";

const root = path.join(__dirname, "..");
const BAD = ["config:", "  platform:target: local", "  platform:hosts: two", '  platform:acmeStaging: "yes"', ""].join("\n");

/** A copy of the project (symlinks to the repository's files) with its own stack file, and a file backend. */
function project(projectYaml: string): { dir: string; env: NodeJS.ProcessEnv } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-cli-"));
    const work = path.join(dir, "project");
    fs.mkdirSync(work);
    for (const entry of fs.readdirSync(root)) {
        if (/^Pulumi(\..+)?\.yaml$/.test(entry) || entry === ".git" || entry.startsWith(".pulumi")) continue;
        fs.symlinkSync(path.join(root, entry), path.join(work, entry));
    }
    fs.writeFileSync(path.join(work, "Pulumi.yaml"), projectYaml);
    fs.writeFileSync(path.join(work, "Pulumi.clitest.yaml"), BAD);
    fs.mkdirSync(path.join(dir, "state"));
    const env = {
        ...process.env,
        PULUMI_BACKEND_URL: `file://${path.join(dir, "state")}`,
        PULUMI_CONFIG_PASSPHRASE: "test-only",
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        PULUMI_HOME: process.env.PULUMI_HOME ?? path.join(os.homedir(), ".pulumi"),
    };
    return { dir: work, env };
}

function preview(p: { dir: string; env: NodeJS.ProcessEnv }): string {
    const init = spawnSync("pulumi", ["stack", "init", "clitest", "--non-interactive"], { cwd: p.dir, env: p.env, encoding: "utf8" });
    assert.strictEqual(init.status, 0, init.stderr);
    const r = spawnSync("pulumi", ["preview", "--stack", "clitest", "--non-interactive", "--color", "never"], { cwd: p.dir, env: p.env, encoding: "utf8", timeout: 240_000 });
    assert.notStrictEqual(r.status, 0, "a bad config must fail the preview");
    return r.stdout + r.stderr;
}

describe("the Pulumi CLI and Pulumi.yaml's config declarations (real CLI, file backend)", function () {
    this.timeout(300_000);
    before(function () {
        const found = spawnSync("sh", ["-c", "command -v pulumi && command -v pulumi-language-nodejs || ls ~/.pulumi/bin/pulumi-language-nodejs"], { encoding: "utf8" });
        if (found.status !== 0) {
            if (process.env.PLATFORM_REQUIRE_PULUMI_CLI === "1") throw new Error("the Pulumi CLI (pulumi, pulumi-language-nodejs) is not on PATH");
            console.warn("\n  !!! SKIPPING: the Pulumi CLI is not installed (https://www.pulumi.com/docs/install/). !!!\n");
            this.skip();
        }
    });

    it("a declared type pre-empts the program: the CLI stops at its own, poorer message", () => {
        const typed = yaml.load(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8")) as { config: Record<string, Record<string, unknown>> };
        typed.config["platform:hosts"].type = "integer";
        typed.config["platform:acmeStaging"].type = "boolean";
        const out = preview(project(yaml.dump(typed)));
        assert.match(out, /configuration key 'platform:(hosts|acmeStaging)' must be of type '(integer|boolean)'/);
        assert.doesNotMatch(out, /Invalid stack configuration/, "the program never ran");
    });
    it("untyped, as Pulumi.yaml declares them: the program's messages reach the user, the same lines npm run check prints", async () => {
        const p = project(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8"));
        const out = preview(p);
        assert.doesNotMatch(out, /must be of type/);
        const checked = await check(p.dir, "clitest");
        assert.strictEqual(checked.ok, false);
        const problems = checked.output.split("\n").filter((l) => l.startsWith("  - "));
        assert.strictEqual(problems.length, 2, checked.output);
        for (const line of problems) assert.ok(out.includes(line.trim()), `the CLI's output lacks ${line.trim()}:\n${out}`);
        assert.match(out, /platform:hosts: "two" is not a whole number from 1 to 10\. Fix: pulumi config set platform:hosts 1/);
        assert.match(out, /Invalid stack configuration \(2 problems\)/);
    });
});
