// A preview of an unchanged stack must show no change: two runs of the program with the same config
// and state must give every resource exactly the same inputs. Each run is its own process, as every
// `pulumi preview`/`up` is (state that lives in a module, such as a temp directory made once per
// process, differs between runs only then). Run as a script, this file is that program run.
import * as assert from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { stablePort } from "../io/adminChannel";
import { definePlatform } from "../components/platform";
import { T, reveal, runProgram } from "./harness";
import { LOCAL_RAW, PROD_RAW, parse } from "./fixtures";

interface Recorded {
    type: string;
    name: string;
    urn: string;
    inputs: unknown;
    provider: string;
    parent: string;
    options: unknown;
}
type Runs = Record<string, Recorded[]>;

/** One program run per stack (prod up, prod preview, local), every registration with secrets revealed. */
async function runAll(overrides: Record<string, string>): Promise<Runs> {
    const runs: Runs = {};
    const stacks: [string, string, Record<string, string>, boolean][] = [
        ["prod", "prod", { ...PROD_RAW, ...overrides }, false],
        ["prod-preview", "prod", { ...PROD_RAW, ...overrides }, true],
        ["local", "local", { ...LOCAL_RAW, ...overrides }, false],
    ];
    for (const [label, stack, raw, preview] of stacks) {
        const run = await runProgram(
            stack,
            () =>
                definePlatform(parse(raw), {
                    // The forward's port is the stack's stable one (the real one also prefers it).
                    openForward: async (o) => ({ host: "127.0.0.1", port: o.preferredPort ?? stablePort("platform", stack), pid: 1, close: () => undefined }),
                }),
            { preview },
        );
        runs[label] = run.resources.map((r) => ({
            type: r.type,
            name: r.name,
            urn: r.urn,
            inputs: reveal(r.inputs),
            provider: r.provider,
            parent: r.parent,
            options: {
                deleteBeforeReplace: r.deleteBeforeReplace,
                deleteBeforeReplaceDefined: r.deleteBeforeReplaceDefined,
                protect: r.protect,
                retainOnDelete: r.retainOnDelete,
                ignoreChanges: r.ignoreChanges,
                dependencies: r.dependencies,
            },
        }));
    }
    return runs;
}

const CHILD_FLAG = "--determinism-child";

if (require.main === module && process.argv.includes(CHILD_FLAG)) {
    const overrides = JSON.parse(process.argv[process.argv.indexOf(CHILD_FLAG) + 1]);
    const outFile = process.argv[process.argv.indexOf(CHILD_FLAG) + 2];
    runAll(overrides).then(
        (runs) => {
            fs.writeFileSync(outFile, JSON.stringify(runs));
            process.exit(0);
        },
        (e) => {
            console.error(e);
            process.exit(1);
        },
    );
}

/** Runs the program in a fresh Node process, as the Pulumi language host does for every preview/up. */
function runInChild(overrides: Record<string, string> = {}): Promise<Runs> {
    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-determinism-"));
    const outFile = path.join(outDir, "runs.json");
    return new Promise<Runs>((resolve, reject) => {
        const child = spawn(process.execPath, ["-r", "ts-node/register", __filename, CHILD_FLAG, JSON.stringify(overrides), outFile], {
            cwd: path.join(__dirname, ".."),
            stdio: ["ignore", "ignore", "pipe"],
        });
        let err = "";
        child.stderr.on("data", (d) => (err += d));
        const timer = setTimeout(() => child.kill("SIGKILL"), 120000);
        child.on("close", (code) => {
            clearTimeout(timer);
            if (code !== 0) return reject(new Error(`program run failed (${code}): ${err}`));
            resolve(JSON.parse(fs.readFileSync(outFile, "utf8")) as Runs);
        });
    }).finally(() => fs.rmSync(outDir, { recursive: true, force: true }));
}

/** Every difference between two runs, one line per resource input that differs. */
function differences(a: Runs, b: Runs): string[] {
    const diffs: string[] = [];
    for (const label of new Set([...Object.keys(a), ...Object.keys(b)])) {
        const left = new Map((a[label] ?? []).map((r) => [r.urn, r]));
        const right = new Map((b[label] ?? []).map((r) => [r.urn, r]));
        for (const urn of new Set([...left.keys(), ...right.keys()])) {
            const [l, r] = [left.get(urn), right.get(urn)];
            if (l === undefined || r === undefined) {
                diffs.push(`${label}: ${urn} only in run ${l === undefined ? 2 : 1}`);
                continue;
            }
            try {
                assert.deepStrictEqual(r, l);
            } catch {
                const keys = new Set([...Object.keys(l.inputs as object), ...Object.keys(r.inputs as object)]);
                const changed = [...keys].filter((k) => JSON.stringify((l.inputs as any)[k]) !== JSON.stringify((r.inputs as any)[k]));
                const what = changed.length > 0 ? changed.map((k) => `${k}: ${JSON.stringify((l.inputs as any)[k])} -> ${JSON.stringify((r.inputs as any)[k])}`).join("; ") : "options/provider/parent";
                diffs.push(`${label}: ${l.type} ${l.name}: ${what}`);
            }
        }
        if (JSON.stringify((a[label] ?? []).map((r) => r.urn)) !== JSON.stringify((b[label] ?? []).map((r) => r.urn))) diffs.push(`${label}: registration order differs`);
    }
    return diffs;
}

if (require.main !== module) {
    describe("determinism: two runs of the program, same config and state (separate processes)", function () {
        this.timeout(240000);
        let first: Runs;
        let second: Runs;
        before(async () => {
            [first, second] = await Promise.all([runInChild(), runInChild()]);
        });

        it("ran prod (up and preview) and local, with the resources a stack has", () => {
            for (const label of ["prod", "prod-preview", "local"]) assert.ok(first[label].length > 20, `${label}: ${first[label].length} resources`);
            assert.ok(first.prod.some((r) => r.type === T.dockerProvider && JSON.stringify(r.inputs).includes("sshOpts")));
        });

        it("every resource gets deep-equal inputs (secrets revealed), options, provider and parent", () => {
            const diffs = differences(first, second);
            assert.deepStrictEqual(diffs, [], `inputs that change between two identical runs show as a change in every preview:\n${diffs.join("\n")}`);
        });

        it("the Docker provider's ssh options name the stack's fixed files, not a temporary directory", () => {
            for (const label of ["prod", "prod-preview"]) {
                const provider = first[label].find((r) => r.type === T.dockerProvider)!;
                const opts: string[] = JSON.parse((provider.inputs as { sshOpts: string }).sshOpts);
                assert.ok(opts.includes("UserKnownHostsFile=~/.ssh/platform/platform/prod/known_hosts"), opts.join(" "));
                // No identity file: the key comes from ssh-agent, never from the config.
                assert.ok(!opts.includes("-i"), opts.join(" "));
                assert.ok(!opts.some((o) => o.includes("/tmp/") || o.includes("platform-ssh-")), opts.join(" "));
            }
        });

        it("the comparison finds a real change (a new release) in the resources it touches: the check can fail", async () => {
            const changed = await runInChild({ apps: JSON.stringify({ app1: "1.4.3", app2: "sha256:" + "ab".repeat(32) }) });
            const diffs = differences(first, changed).filter((d) => d.startsWith("prod:"));
            assert.ok(diffs.some((d) => d.includes("RemoteImage app1-backend") || /remoteImage.*app1/.test(d)), diffs.join("\n"));
            assert.ok(!diffs.some((d) => d.includes("pulumi:providers:docker")), "the provider itself does not change");
        });
    });
}
