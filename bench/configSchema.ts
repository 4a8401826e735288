// npm run bench:config [-- --runs 15 --compare /path/to/other/checkout]
//
// What the config schema costs every preview before the first resource: in a fresh Node process each run,
// the time to require config/platformConfig (valibot included) and to parse the prod fixture config, from
// JavaScript compiled once with tsc (no ts-node in the measurement). With --compare, the same is measured
// on another checkout (e.g. a worktree of main before the schema), interleaved run by run so both see the
// same machine load. Also: requiring valibot alone, and zod 4 if it is installed anywhere Node can find it
// (--zod DIR: a node_modules holding zod). Prints medians and minima; asserts nothing.
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

function flag(name: string, fallback: string): string {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}
const RUNS = Number(flag("runs", "15"));
const COMPARE = flag("compare", "");
const ZOD = flag("zod", "");

/** Compiles `root` to JavaScript in a temp directory; returns it. */
function compile(root: string): string {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "platform-bench-config-"));
    const tsc = path.join(root, "node_modules", "typescript", "bin", "tsc");
    execFileSync(process.execPath, [tsc, "-p", root, "--outDir", out, "--noEmit", "false", "--noCheck", "--declaration", "false", "--sourceMap", "false"], { stdio: "inherit" });
    fs.symlinkSync(path.join(root, "node_modules"), path.join(out, "node_modules"));
    return out;
}

const PROBE = (dir: string) => `
const t0 = process.hrtime.bigint();
const c = require(${JSON.stringify(path.join(dir, "config", "platformConfig.js"))});
const t1 = process.hrtime.bigint();
const { PROD_RAW, PROD_SECRET_KEYS } = require(${JSON.stringify(path.join(dir, "tests", "fixtures.js"))});
const { catalog } = require(${JSON.stringify(path.join(dir, "apps", "index.js"))});
const t2 = process.hrtime.bigint();
const config = c.parsePlatformConfig(PROD_RAW, { catalog, isSecret: (k) => PROD_SECRET_KEYS.includes(k), testStack: true });
const t3 = process.hrtime.bigint();
if (config.apps.length !== 2) throw new Error("unexpected parse");
process.stdout.write(JSON.stringify({ require: Number(t1 - t0) / 1e6, parse: Number(t3 - t2) / 1e6 }));`;

function time(code: string): Record<string, number> {
    const r = spawnSync(process.execPath, ["-e", code], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout);
}

const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return `median ${s[(s.length - 1) >> 1].toFixed(1)} ms, min ${s[0].toFixed(1)} ms`;
};

function main(): void {
    const here = compile(path.join(__dirname, ".."));
    const other = COMPARE ? compile(path.resolve(COMPARE)) : undefined;
    const results: Record<string, number[]> = {};
    const add = (label: string, v: number) => (results[label] ??= []).push(v);
    const lib = (name: string, from: string) => `const t=process.hrtime.bigint();require(${JSON.stringify(require.resolve(name, { paths: [from] }))});process.stdout.write(JSON.stringify({ require: Number(process.hrtime.bigint()-t)/1e6 }))`;
    for (let i = 0; i < RUNS; i++) {
        const a = time(PROBE(here));
        add("this checkout: require config/platformConfig", a.require);
        add("this checkout: parse the prod fixture", a.parse);
        if (other) {
            const b = time(PROBE(other));
            add(`${COMPARE}: require config/platformConfig`, b.require);
            add(`${COMPARE}: parse the prod fixture`, b.parse);
        }
        add("require valibot alone", time(lib("valibot", here)).require);
        if (ZOD) add("require zod 4 alone", time(lib("zod", ZOD)).require);
    }
    console.log(`node ${process.version}; ${os.cpus().length} CPUs, load ${os.loadavg()[0].toFixed(2)}; ${RUNS} fresh processes each, interleaved`);
    for (const [label, xs] of Object.entries(results)) console.log(`${label}: ${stats(xs)}`);
}

main();
