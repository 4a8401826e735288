// npm run bench:program [-- --apps 20 --small 2 --rounds 5 --node /path/to/node --compare tsnode,sourcemaps,fastfloor]
//
// What every `pulumi preview`/`up` pays before the engine can work: the prod program with N generated apps,
// run the way the language host runs it (`@pulumi/pulumi/cmd/run`, Pulumi.yaml's runtime options and main)
// against the fake engine of tests/support/fakeEngine.ts, measured from process start to the last resource
// registered, and the process's peak RSS.
//
// Its floor: bench/programFloor.js, a plain JavaScript program that replays the graph this very program
// registered (recorded in the untimed warm-up run: the same types, names, parents, inputs, options and
// dependencies) through the same SDK path, with the SDK's own stack formatting. What remains above the floor
// is the program's own cost; below it, what the program avoids that any program pays by default.
//
// The program and its floor run alternately (the order swapped every round), several rounds, with the small
// program (--small apps) in every round too, so a noisy shared machine weighs on all of them alike; figures
// are medians. --compare adds other routes to every round, for side by side figures:
//   tsnode      today's route before the build: typescript true, ts-node transpile-only (tsconfig.program.json)
//   sourcemaps  the precompiled program with node --enable-source-maps (Node maps every captured stack)
//   fastfloor   the floor with V8's native stack formatting (what an SDK that formats stacks lazily would pay)
//   typecheck   typescript true with ts-node's type check (the language host's default)
// --profile DIR writes a V8 CPU profile of every program run there.
// Prints figures; asserts nothing but that the floor replays the program's graph. The last line is the summary:
//   program: N apps, median X.XX s, peak Y MiB, floor F.FF s, program/floor R.RR (2 apps: Z.ZZ s)
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { catalog } from "../apps";
import { AppDefinition } from "../apps/types";
import { PROD_RAW, PROD_SECRET_KEYS } from "../tests/fixtures";
import { LanguageHostRun, ProjectRuntime, projectRuntime, runThroughLanguageHost } from "../tests/support/fakeEngine";
// The program runs on the fixtures' published keys: a test stack (config/testValues.ts).
import "../tests/support/testStack";

function flag(name: string, fallback: string): string {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const APPS = Number(flag("apps", "20"));
const SMALL = Number(flag("small", "2"));
const ROUNDS = Number(flag("rounds", "5"));
const NODE = flag("node", process.execPath);
const COMPARE = flag("compare", "").split(",").filter(Boolean);
const PROFILE = flag("profile", "");
const ROOT = path.resolve(__dirname, "..");

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

interface Route {
    label: string;
    runtime: ProjectRuntime;
    apps: number;
    /** Replays the recorded graph instead of running the program. */
    floor?: boolean;
}

interface Figures {
    seconds: number;
    exit: number;
    peak: number;
    cpu: number;
    run: LanguageHostRun;
}

async function main(): Promise<void> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-bench-program-"));
    const catalogs: Record<number, string> = {};
    for (const n of [APPS, SMALL]) {
        catalogs[n] = path.join(dir, `catalog-${n}.json`);
        fs.writeFileSync(catalogs[n], JSON.stringify(generatedCatalog(n)));
    }
    const graphFile = path.join(dir, "graph.json");
    const reportFile = path.join(dir, "floor-report.json");
    execFileSync(process.execPath, [path.join(ROOT, "launch", "build.js")], { stdio: "inherit" });

    const project = projectRuntime();
    const floorRuntime = (env: Record<string, string> = {}): ProjectRuntime => ({ typescript: false, entryPoint: path.join(__dirname, "programFloor.js"), nodeArgs: [], env: { PLATFORM_FLOOR_GRAPH: graphFile, PLATFORM_FLOOR_REPORT: reportFile, ...env } });
    const tsnode: ProjectRuntime = { typescript: true, entryPoint: ".", nodeArgs: [], env: { PULUMI_NODEJS_TSCONFIG_PATH: "tsconfig.program.json" } };
    const compare: Record<string, Route> = {
        tsnode: { label: "ts-node transpile-only (before)", runtime: tsnode, apps: APPS },
        sourcemaps: { label: "precompiled, --enable-source-maps", runtime: { ...project, nodeArgs: [...project.nodeArgs, "--enable-source-maps"] }, apps: APPS },
        fastfloor: { label: "floor, native stack formatting", runtime: floorRuntime({ PLATFORM_FLOOR_NATIVE_STACKS: "1" }), apps: APPS, floor: true },
        typecheck: { label: "ts-node type-checking", runtime: { typescript: true, entryPoint: ".", nodeArgs: [], env: { PULUMI_NODEJS_TRANSPILE_ONLY: "false" } }, apps: APPS },
    };
    for (const c of COMPARE) if (!(c in compare)) throw new Error(`--compare ${c}: one of ${Object.keys(compare).join(", ")}`);
    const program: Route = { label: `program (${project.typescript ? "typescript" : "precompiled"}, main ${project.entryPoint})`, runtime: project, apps: APPS };
    const floor: Route = { label: "floor (plain JS replay, SDK formatting)", runtime: floorRuntime(), apps: APPS, floor: true };
    const small: Route = { label: `program, ${SMALL} apps`, runtime: project, apps: SMALL };
    const routes: Route[] = [program, floor, small, ...COMPARE.map((c) => compare[c])];

    const config = (n: number) => ({
        ...(PROD_RAW as Record<string, string>),
        instanceType: "GP1-S",
        apps: JSON.stringify(Object.fromEntries(Object.keys(generatedCatalog(n)).map((a) => [a, "1.0.0"]))),
    });
    const once = async (route: Route, tag: string): Promise<Figures> => {
        const runtime = route.runtime;
        const profiling = PROFILE && !route.floor ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(PROFILE)}`] : [];
        const run = await runThroughLanguageHost({
            node: NODE,
            stack: "prod",
            preview: true,
            config: config(route.apps),
            secretKeys: [...PROD_SECRET_KEYS],
            typescript: runtime.typescript,
            entryPoint: runtime.entryPoint,
            nodeArgs: [...runtime.nodeArgs, ...profiling],
            env: { ...runtime.env, PLATFORM_BENCH_CATALOG: catalogs[route.apps] },
            nodeOptions: route.floor ? [] : [`--require ${path.join(__dirname, "generatedCatalog.js")}`],
            timeoutMs: 300000,
        });
        if (run.exitCode !== 0 || run.errors.length > 0) {
            throw new Error(`${route.label}: exit ${run.exitCode}: ${run.errors.map((e) => e.message).join("\n")}\n${run.stderr.slice(-3000)}`);
        }
        const f = { seconds: run.lastRegistrationMs / 1000, exit: run.exitMs / 1000, peak: run.peakMiB ?? NaN, cpu: (run.cpuMs ?? NaN) / 1000, run };
        console.log(`${tag} ${route.label}: ${run.registrations.length} resources, last registered at ${f.seconds.toFixed(2)} s, exit at ${f.exit.toFixed(2)} s, peak ${f.peak.toFixed(0)} MiB, CPU ${f.cpu.toFixed(2)} s`);
        return f;
    };

    const version = execFileSync(NODE, ["--version"], { encoding: "utf8" }).trim();
    console.log(`node ${version}; ${os.cpus().length} CPUs, load ${os.loadavg()[0].toFixed(2)}; ${ROUNDS} rounds; program: typescript ${project.typescript}, main ${project.entryPoint}`);
    // Warm-up (untimed): page cache, compile cache; it records the graph the floor replays.
    const recorded = await once(program, "warm-up");
    const key = (r: { type: string; name: string; parent: string }) => `${r.type}::${r.name}<${r.parent}`;
    fs.writeFileSync(graphFile, JSON.stringify({ registrations: recorded.run.registrations, outputs: recorded.run.outputs }));
    const replay = await once(floor, "warm-up");
    const [want, got] = [recorded, replay].map((f) => f.run.registrations.map(key).sort());
    if (JSON.stringify(want) !== JSON.stringify(got)) {
        throw new Error(`the floor did not replay the program's graph: ${want.filter((k) => !got.includes(k)).slice(0, 5).join(", ")} missing, ${got.filter((k) => !want.includes(k)).slice(0, 5).join(", ")} extra`);
    }
    const inputsOf = (f: Figures) => new Map(f.run.registrations.map((r) => [key(r), JSON.stringify(r.inputs)]));
    const [programInputs, floorInputs] = [inputsOf(recorded), inputsOf(replay)];
    const differ = [...programInputs].filter(([k, v]) => floorInputs.get(k) !== v).map(([k]) => k);
    const through = JSON.parse(fs.readFileSync(reportFile, "utf8")) as { klass: number; generic: number };
    console.log(`floor: replays all ${want.length} registrations (${through.klass} through their package's class, ${through.generic} generic custom, the rest providers and components); inputs identical for ${want.length - differ.length}${differ.length ? `, differ for ${differ.slice(0, 3).join(", ")}…` : ""}`);
    for (const r of routes.slice(2)) await once(r, "warm-up");

    const results = new Map<Route, Figures[]>(routes.map((r) => [r, []]));
    for (let round = 1; round <= ROUNDS; round++) {
        // Rotate the order so that no route always runs first (or right after the heaviest).
        const order = routes.map((_, i) => routes[(i + round - 1) % routes.length]);
        const ratio: number[] = [];
        for (const r of order) {
            const f = await once(r, `round ${round}/${ROUNDS}`);
            results.get(r)!.push(f);
        }
        ratio.push(results.get(program)![round - 1].seconds / results.get(floor)![round - 1].seconds);
        console.log(`round ${round}/${ROUNDS}: program/floor ${ratio[0].toFixed(2)}, load ${os.loadavg()[0].toFixed(2)}`);
    }
    fs.rmSync(dir, { recursive: true, force: true });

    console.log("\nmedians (last registration; exit; peak; CPU):");
    for (const r of routes) {
        const fs_ = results.get(r)!;
        console.log(`  ${r.label}: ${median(fs_.map((f) => f.seconds)).toFixed(2)} s; exit ${median(fs_.map((f) => f.exit)).toFixed(2)} s; peak ${Math.max(...fs_.map((f) => f.peak)).toFixed(0)} MiB; CPU ${median(fs_.map((f) => f.cpu)).toFixed(2)} s`);
    }
    const p = results.get(program)!;
    const programMedian = median(p.map((f) => f.seconds));
    const floorMedian = median(results.get(floor)!.map((f) => f.seconds));
    const peak = Math.max(...p.map((f) => f.peak));
    const smallMedian = median(results.get(small)!.map((f) => f.seconds));
    console.log(`program: ${APPS} apps, median ${programMedian.toFixed(2)} s, peak ${peak.toFixed(0)} MiB, floor ${floorMedian.toFixed(2)} s, program/floor ${(programMedian / floorMedian).toFixed(2)} (${SMALL} apps: ${smallMedian.toFixed(2)} s)`);
}

main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
});
