// npm run bench:program [-- --apps 20 --runs 7 --node /path/to/node]
//
// What every `pulumi preview`/`up` pays before the engine can work: the prod program with N generated apps,
// run the way the language host runs it (`@pulumi/pulumi/cmd/run`, Pulumi.yaml's runtime options and main)
// against the fake engine of tests/support/fakeEngine.ts. Measured per run: process start to the last
// resource registered, and the process's peak RSS. One untimed warm-up run first (caches, page cache), then
// `runs` timed runs, then one run in the language host's type-checking mode (typescript: true, no
// transpile-only) for comparison. Prints figures; asserts nothing. The last line is the summary.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { catalog } from "../apps";
import { AppDefinition } from "../apps/types";
import { PROD_RAW } from "../tests/fixtures";
import { ProjectRuntime, projectRuntime, runThroughLanguageHost } from "../tests/support/fakeEngine";

function flag(name: string, fallback: string): string {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const APPS = Number(flag("apps", "20"));
const RUNS = Number(flag("runs", "7"));
const NODE = flag("node", process.execPath);
/**
 * How the language host loads the program: `project` (what Pulumi.yaml says), `typecheck` (typescript: true,
 * main index.ts), `nocheck` (typescript: true, tsconfig tsconfig.program.json).
 */
const ROUTE = flag("route", "project");
/** `--profile DIR`: write a V8 CPU profile of every run there (open in Chrome DevTools). */
const PROFILE = flag("profile", "");

/** N apps shaped like the catalog's first one (database, private images), sized so that N fit one GP1-S. */
function generatedCatalog(n: number): Record<string, AppDefinition> {
    const template = Object.values(catalog).find((a) => a.database) ?? Object.values(catalog)[0];
    const apps: Record<string, AppDefinition> = {};
    for (let i = 1; i <= n; i++) {
        const name = `bench${String(i).padStart(2, "0")}`;
        const rename = (s: string) => s.split(template.name).join(name);
        apps[name] = JSON.parse(JSON.stringify({ ...template, name }), (_k, v) => (typeof v === "string" ? rename(v) : v));
        (apps[name].frontend as { memoryMb: number }).memoryMb = 64;
        (apps[name].backend as { memoryMb: number }).memoryMb = 128;
        // Every app's pool must fit PostgreSQL's connections together.
        if ("databaseConnectionLimit" in apps[name]) (apps[name] as { databaseConnectionLimit?: number }).databaseConnectionLimit = Math.max(1, Math.floor(80 / n));
    }
    return apps;
}

function median(xs: number[]): number {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-bench-program-"));
    const catalogFile = path.join(dir, "catalog.json");
    const apps = generatedCatalog(APPS);
    fs.writeFileSync(catalogFile, JSON.stringify(apps));
    const project = projectRuntime();
    const routes: Record<string, ProjectRuntime> = {
        project,
        typecheck: { typescript: true, entryPoint: ".", nodeArgs: [], env: { PULUMI_NODEJS_TRANSPILE_ONLY: "false" } },
        nocheck: { typescript: true, entryPoint: ".", nodeArgs: [], env: { PULUMI_NODEJS_TSCONFIG_PATH: "tsconfig.program.json" } },
    };
    const runtime = routes[ROUTE];
    if (runtime === undefined) throw new Error(`--route ${ROUTE}: one of ${Object.keys(routes).join(", ")}`);
    const preload = `--require ${path.join(__dirname, "generatedCatalog.js")}`;
    const config = {
        ...(PROD_RAW as Record<string, string>),
        instanceType: "GP1-S",
        apps: JSON.stringify(Object.fromEntries(Object.keys(apps).map((a) => [a, "1.0.0"]))),
    };
    const once = async (label: string, typeCheck = false) => {
        const run = await runThroughLanguageHost({
            node: NODE,
            stack: "prod",
            preview: true,
            config,
            secretKeys: ["sshPrivateKey", "registryToken"],
            ...(typeCheck
                ? { ...routes.typecheck, env: { ...routes.typecheck.env, PLATFORM_BENCH_CATALOG: catalogFile } }
                : { ...runtime, env: { ...runtime.env, PLATFORM_BENCH_CATALOG: catalogFile } }),
            ...(PROFILE && !typeCheck ? { nodeArgs: [...runtime.nodeArgs, "--cpu-prof", `--cpu-prof-dir=${path.resolve(PROFILE)}`] } : {}),
            nodeOptions: [preload],
            timeoutMs: 300000,
        });
        if (run.exitCode !== 0 || run.errors.length > 0) {
            throw new Error(`${label}: exit ${run.exitCode}: ${run.errors.map((e) => e.message).join("\n")}\n${run.stderr.slice(-3000)}`);
        }
        const seconds = run.lastRegistrationMs / 1000;
        console.log(`${label}: ${run.registrations.length} resources, last registered at ${seconds.toFixed(2)} s, exit at ${(run.exitMs / 1000).toFixed(2)} s, peak ${run.peakMiB?.toFixed(0)} MiB, CPU ${((run.cpuMs ?? NaN) / 1000).toFixed(2)} s`);
        return { seconds, peak: run.peakMiB ?? NaN };
    };

    const version = (await import("child_process")).execFileSync(NODE, ["--version"], { encoding: "utf8" }).trim();
    console.log(`node ${version}; route ${ROUTE}: typescript ${runtime.typescript}, main ${runtime.entryPoint}${runtime.nodeArgs.length ? `, nodeargs ${runtime.nodeArgs.join(" ")}` : ""}; ${os.cpus().length} CPUs, load ${os.loadavg()[0].toFixed(2)}`);
    await once("warm-up");
    const results = [];
    for (let i = 1; i <= RUNS; i++) results.push(await once(`run ${i}/${RUNS}`));
    const typeCheck = await once("type-checking mode", true);
    fs.rmSync(dir, { recursive: true, force: true });
    const peak = Math.max(...results.map((r) => r.peak));
    console.log(`program: ${APPS} apps, median ${median(results.map((r) => r.seconds)).toFixed(2)} s, peak ${peak.toFixed(0)} MiB (type-check ${typeCheck.seconds.toFixed(2)} s)`);
}

main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
});
