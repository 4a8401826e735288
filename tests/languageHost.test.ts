// The program as `pulumi preview`/`up` run it: `@pulumi/pulumi/cmd/run` loads it the way Pulumi.yaml says
// (runtime options, main) and talks to a fake engine over gRPC (tests/support/fakeEngine.ts). Errors must
// reach the user as run errors (message, key or host, fix; no stack trace) within a second or two, on the
// machine's Node and on Node 24, with bounded memory: not after a minute and 3.9 GiB in Node 20's util.inspect.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as url from "url";
import * as util from "util";
import { freeLoopbackPort } from "../io/adminChannel";
import { ConfigError } from "../config/platformConfig";
import { ActionableError, markActionable, toRunError } from "../io/runErrors";
import { PROD_RAW, PROD_SECRET_KEYS } from "./fixtures";
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { build } = require("../launch/build.js") as { build(): string[] };
import { LanguageHostRun, nodeBinaries, projectRuntime, providerOutputs, runThroughLanguageHost } from "./support/fakeEngine";

const SECRET_KEYS = [...PROD_SECRET_KEYS];
const ROOT = path.resolve(__dirname, "..");
/** Generous: a correct report takes milliseconds; the bug takes 25-60 s. */
const REPORT_BOUND_MS = 2000;
/** The bug peaks at 3.5-3.9 GiB; a type-checking run stays near 400 MiB. */
const PEAK_BOUND_MIB = 1024;

function which(tool: string): string | undefined {
    for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
        const candidate = path.join(dir, tool);
        if (dir && fs.existsSync(candidate)) return candidate;
    }
    return undefined;
}

/**
 * A PATH entry whose `ssh` is the real client pointed at a loopback port nothing listens on; it records (ms since
 * the epoch) when ssh gave up, which is when the admin channel failed.
 */
async function sshToClosedPort(): Promise<{ binDir: string; failedAt: () => number }> {
    const realSsh = which("ssh");
    if (realSsh === undefined) throw new Error("ssh client not found: .ci/run installs openssh-client");
    const binDir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-ssh-shim-"));
    const stamp = path.join(binDir, "failed-at");
    // A port nothing listens on: free a moment ago, so ssh gets "connection refused".
    const port = await freeLoopbackPort();
    fs.writeFileSync(
        path.join(binDir, "ssh"),
        `#!/bin/sh\n"${realSsh}" -p ${port} "$@"\nrc=$?\ndate +%s%3N > "${stamp}"\nexit $rc\n`,
        { mode: 0o755 },
    );
    return { binDir, failedAt: () => Number(fs.readFileSync(stamp, "utf8").trim()) };
}

function describeRun(run: LanguageHostRun): string {
    return `exit ${run.exitCode}${run.timedOut ? " (timed out)" : ""}, ${run.registrations.length} registrations, errors: ${JSON.stringify(run.errors.map((e) => e.message))}\nstderr: ${run.stderr.slice(-2000)}`;
}

/** The one error the program reported: a run error, logged once, with no stack trace and no object dump. */
function theRunError(run: LanguageHostRun): { message: string; epoch: number; at: number } {
    assert.strictEqual(run.errors.length, 1, describeRun(run));
    const [error] = run.errors;
    assert.doesNotMatch(error.message, /Running program .* failed with an unhandled exception/, "reported as a run error, not an unhandled exception");
    assert.doesNotMatch(error.message, /node_modules|node:internal|<ref \*1>|\[Circular|\u001b\[/, `no SDK frames, no object dump, no colors: ${error.message}`);
    // The language host's code for "the program already showed the user an actionable message".
    assert.strictEqual(run.exitCode, 32, describeRun(run));
    return error;
}

describe("toRunError: what the SDK's handlers receive", () => {
    /** The frame Node 20.20.2's util.inspect spins on: the SDK's source maps point outside its package. */
    const SDK_FRAME = "    at async applyHelperAsync (/x/node_modules/@pulumi/output.ts:516:25)";
    const root = path.resolve(__dirname, "..");

    it("an actionable error becomes its message alone, marked as a RunError, cheap to inspect on any Node", () => {
        const e = new ActionableError("Could not open the SSH admin channel to root@203.0.113.7: … What to check: platform:adminCidrs.");
        e.message = `error serializing property "host": ${e.message}`; // what the SDK does on the way up
        e.stack = `${e.name}: ${e.message}\n${SDK_FRAME}`;
        toRunError(e, root);
        assert.strictEqual(e.message, "Could not open the SSH admin channel to root@203.0.113.7: … What to check: platform:adminCidrs.");
        assert.strictEqual(e.stack, e.message);
        assert.strictEqual((e as unknown as Record<string, unknown>).__pulumiRunError, true);
        const started = performance.now();
        util.inspect(e, { colors: true });
        assert.ok(performance.now() - started < 500, "inspected in well under a second");
    });

    it("a ConfigError marked actionable keeps its problems and instanceof, and loses its stack", () => {
        const e = markActionable(new ConfigError(["platform:apps.x: bad. Fix: pulumi config set …"]));
        toRunError(e, root);
        assert.ok(e instanceof ConfigError);
        assert.deepStrictEqual(e.problems, ["platform:apps.x: bad. Fix: pulumi config set …"]);
        assert.strictEqual(e.stack, e.message);
        assert.doesNotMatch(e.message, /\n\s+at /);
    });

    it("any other error keeps this program's own frames, relative to the project, and none of the SDK's", () => {
        const e = new TypeError('error serializing property "connection": error serializing property "connection": boom');
        e.stack = `TypeError: boom\n    at ScalewayHost (${root}/components/scalewayHost.ts:116:61)\n${SDK_FRAME}\n    at node:internal/process/task_queues:95:5`;
        toRunError(e, root);
        assert.strictEqual(e.message, "TypeError: boom\n    at ScalewayHost (components/scalewayHost.ts:116:61)");
        assert.strictEqual(e.stack, e.message);
        assert.strictEqual(toRunError(e, root), e, "idempotent");
        assert.strictEqual(e.message, "TypeError: boom\n    at ScalewayHost (components/scalewayHost.ts:116:61)");
    });
});

describe("the program under the Pulumi language host (cmd/run + fake engine)", function () {
    this.timeout(240000);
    const runtime = projectRuntime();
    const nodes = nodeBinaries();
    const base = { stack: "prod", config: PROD_RAW as Record<string, string>, secretKeys: SECRET_KEYS, typescript: runtime.typescript, nodeArgs: runtime.nodeArgs, entryPoint: runtime.entryPoint };

    it("finds Node 24 to prove the behaviour on (CI installs it)", function () {
        const labels = nodes.map((n) => n.label);
        if (!labels.some((l) => l.startsWith("node v24."))) {
            if (process.env.CI === "true") assert.fail(`no Node 24 binary: ${labels.join(", ")}; .ci/run installs it (PLATFORM_NODE24)`);
            this.skip();
        }
    });

    for (const node of nodes) {
        describe(`on ${node.label}`, () => {
            it("an admin channel that cannot connect is reported within 2 s, as ssh's message and what to check", async () => {
                const ssh = await sshToClosedPort();
                try {
                    const run = await runThroughLanguageHost({
                        ...base,
                        node: node.path,
                        preview: false,
                        outputs: providerOutputs({ address: "127.0.0.1" }),
                        env: { ...runtime.env, PATH: `${ssh.binDir}${path.delimiter}${process.env.PATH}` },
                    });
                    const error = theRunError(run);
                    assert.match(error.message, /^Could not open the SSH admin channel to root@127\.0\.0\.1 for PostgreSQL: ssh: connect to host 127\.0\.0\.1 port \d+: Connection refused\. What to check: .*platform:adminCidrs/);
                    const reportMs = error.epoch - ssh.failedAt();
                    const exitAfterMs = run.exitMs - error.at;
                    console.log(`      ${node.label}: admin channel failure reported ${reportMs} ms after ssh gave up; process exited ${exitAfterMs.toFixed(0)} ms later; peak ${run.peakMiB?.toFixed(0)} MiB`);
                    assert.ok(reportMs < REPORT_BOUND_MS, `reported ${reportMs} ms after the failure`);
                    assert.ok(exitAfterMs < REPORT_BOUND_MS, `exited ${exitAfterMs} ms after reporting`);
                    assert.ok(run.peakMiB !== undefined && run.peakMiB < PEAK_BOUND_MIB, `peak ${run.peakMiB} MiB`);
                } finally {
                    fs.rmSync(ssh.binDir, { recursive: true, force: true });
                }
            });

            it("a bad host key from the readiness check is reported within 2 s, with where it was raised and no SDK frames", async () => {
                const run = await runThroughLanguageHost({ ...base, node: node.path, preview: false, env: runtime.env, outputs: providerOutputs({ hostKeyLine: "Permission denied" }) });
                const error = theRunError(run);
                assert.match(error.message, /^expected the host's ed25519 key .*"Permission denied"/, "without the SDK's `error serializing property` prefixes");
                assert.match(error.message, /\n {4}at .*components\/scalewayHost\.ts:\d+:\d+/, "the program's own frame, relative to the project");
                const readiness = run.registrations.find((r) => r.name.endsWith("wait-for-docker"));
                assert.ok(readiness, describeRun(run));
                const reportMs = error.epoch - readiness.epoch;
                console.log(`      ${node.label}: host key failure reported ${reportMs} ms after the readiness check returned; peak ${run.peakMiB?.toFixed(0)} MiB`);
                assert.ok(reportMs < REPORT_BOUND_MS, `reported ${reportMs} ms after the readiness check`);
                assert.ok(run.peakMiB !== undefined && run.peakMiB < PEAK_BOUND_MIB, `peak ${run.peakMiB} MiB`);
            });
        });
    }

    it("a config error is reported once as a run error: every problem with its fix, no stack trace, no dump", async () => {
        const run = await runThroughLanguageHost({ ...base, preview: true, env: runtime.env, config: { ...base.config, apps: JSON.stringify({ app1: "not a release" }), domian: "typo.example" } });
        const error = theRunError(run);
        assert.match(error.message, /^Invalid stack configuration \(\d+ problems?\):\n/);
        assert.match(error.message, /platform:apps\.app1: "not a release" is not a release.*Fix: pulumi config set .*'apps\.app1'/);
        assert.match(error.message, /platform:domian/);
        assert.doesNotMatch(error.message, /\n\s+at |problems: \[|ConfigError/, "message only");
        assert.deepStrictEqual(run.registrations.map((r) => r.type), ["pulumi:pulumi:Stack"], "no resource declared");
        assert.ok(run.exitMs - error.at < REPORT_BOUND_MS, `exited ${run.exitMs - error.at} ms after reporting`);
    });
});

describe("every way the language host can load the program (issue #8, point 6; issue #11)", function () {
    this.timeout(240000);
    const preview = (options: { typescript: boolean; entryPoint?: string; env?: Record<string, string> }) =>
        runThroughLanguageHost({ stack: "prod", preview: true, config: PROD_RAW as Record<string, string>, secretKeys: SECRET_KEYS, ...options });
    const declared = (run: LanguageHostRun) => {
        assert.strictEqual(run.exitCode, 0, describeRun(run));
        assert.deepStrictEqual(run.errors, []);
        return run.registrations.map((r) => `${r.type}::${r.name}`).sort();
    };
    let reference: string[];

    it("typescript: true, type-checking (the language host's default): index.ts through the project's ts-node and tsconfig", async () => {
        reference = declared(await preview({ typescript: true, env: { PULUMI_NODEJS_TRANSPILE_ONLY: "false" } }));
        assert.ok(reference.includes("scaleway:instance/server:Server::host-server"), reference.join("\n"));
    });

    it("typescript: true, transpile-only (PULUMI_NODEJS_TRANSPILE_ONLY=true): no TS5011, the same resources", async () => {
        assert.deepStrictEqual(declared(await preview({ typescript: true, env: { PULUMI_NODEJS_TRANSPILE_ONLY: "true" } })), reference);
    });

    it("typescript: true with tsconfig tsconfig.program.json (noCheck): transpile-only, the same resources", async () => {
        assert.deepStrictEqual(declared(await preview({ typescript: true, env: { PULUMI_NODEJS_TSCONFIG_PATH: "tsconfig.program.json" } })), reference);
    });

    it("typescript: false, main launch/program.js (what Pulumi.yaml says): the precompiled program, the same resources, no ts-node loaded", async () => {
        const runtime = projectRuntime();
        assert.strictEqual(runtime.typescript, false);
        // The build `npm ci` made (postinstall); only a stale one makes the entry rebuild.
        build();
        const loadedFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "platform-loaded-")), "modules");
        const run = await runThroughLanguageHost({
            stack: "prod",
            preview: true,
            config: PROD_RAW as Record<string, string>,
            secretKeys: SECRET_KEYS,
            typescript: false,
            entryPoint: runtime.entryPoint,
            env: { ...runtime.env, PLATFORM_LOADED_MODULES_FILE: loadedFile },
            nodeOptions: [`--require ${path.join(__dirname, "support", "loadedModules.js")}`],
        });
        assert.deepStrictEqual(declared(run), reference);
        const loaded = fs.readFileSync(loadedFile, "utf8").split("\n");
        fs.rmSync(path.dirname(loadedFile), { recursive: true, force: true });
        // Resources' source positions name the .ts sources, as under ts-node, not the build.
        const positions = run.registrations.flatMap((r) => (r.sourcePosition ? [r.sourcePosition] : []));
        assert.ok(positions.length > 0, "the SDK sends source positions");
        const own = positions.filter((p) => p.uri.startsWith(url.pathToFileURL(ROOT + path.sep).toString()) && !p.uri.includes("/node_modules/"));
        assert.ok(own.length > 0, JSON.stringify(positions.slice(0, 3)));
        assert.deepStrictEqual(own.filter((p) => !p.uri.endsWith(".ts") || p.uri.includes("/dist/")), [], "positions in the sources");
        assert.ok(loaded.some((f) => f.endsWith(`${path.sep}dist${path.sep}index.js`)), "dist/index.js ran");
        // (The SDK itself loads the `typescript` package, for its closure serializer, on every route.)
        assert.deepStrictEqual(loaded.filter((f) => /[\\/]node_modules[\\/]ts-node[\\/]/.test(f) || f.endsWith(".ts")), [], "no ts-node, no TypeScript source");
        assert.doesNotMatch(run.stderr, /built \d+ file/, "nothing compiled at run time");
    });

});
