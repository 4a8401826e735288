// npm run bench:commands [-- --rounds 7 --node /path/to/node]
//
// How fast the operator commands answer before doing any work: every package.json script that starts a
// command through launch/command.js, run as npm runs it (`node launch/command.js <name> …`, dist/ already
// built), with `--help` (usage, exit 0) and with an unknown argument (a usage error, exit non-zero). Rounds
// alternate the commands; figures are medians of wall time from spawn to exit. Prints figures; asserts only
// that each answer is the one expected. The last line is the summary:
//   commands: --help median X.XX s (max of medians Y.YY s), usage error median Z.ZZ s (max W.WW s), N commands
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

function flag(name: string, fallback: string): string {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const ROUNDS = Number(flag("rounds", "7"));
const NODE = flag("node", process.execPath);
const ROOT = path.resolve(__dirname, "..");

function median(xs: number[]): number {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function main(): void {
    const scripts = (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).scripts ?? {}) as Record<string, string>;
    const commands = Object.entries(scripts)
        .map(([script, line]) => ({ script, name: /^node launch\/command\.js ([a-z0-9-]+)$/.exec(line)?.[1] }))
        .filter((c): c is { script: string; name: string } => c.name !== undefined);
    const build = spawnSync(NODE, [path.join(ROOT, "launch", "build.js")], { encoding: "utf8" });
    if (build.status !== 0) throw new Error(`build failed: ${build.stderr}`);
    const version = spawnSync(NODE, ["--version"], { encoding: "utf8" }).stdout.trim();
    console.log(`node ${version}; ${commands.length} commands: ${commands.map((c) => c.script).join(", ")}; ${ROUNDS} rounds after one warm-up`);
    const run = (name: string, args: string[]) => {
        const started = performance.now();
        const r = spawnSync(NODE, [path.join(ROOT, "launch", "command.js"), name, ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" } });
        return { seconds: (performance.now() - started) / 1000, status: r.status, out: r.stdout, err: r.stderr };
    };
    const help = new Map<string, number[]>();
    const usage = new Map<string, number[]>();
    for (let round = 0; round <= ROUNDS; round++) {
        const order = commands.map((_, i) => commands[(i + round) % commands.length]);
        for (const c of order) {
            const h = run(c.name, ["--help"]);
            if (h.status !== 0 || !/usage/i.test(h.out)) throw new Error(`${c.script} --help: exit ${h.status}, stdout ${JSON.stringify(h.out.slice(0, 200))}, stderr ${JSON.stringify(h.err.slice(0, 300))}`);
            const u = run(c.name, ["--no-such-flag"]);
            if (u.status === 0 || !/usage|unknown/i.test(u.err + u.out)) throw new Error(`${c.script} --no-such-flag: exit ${u.status}, ${JSON.stringify((u.err + u.out).slice(0, 300))}`);
            if (round === 0) continue; // warm-up: page cache, compile cache
            help.set(c.script, [...(help.get(c.script) ?? []), h.seconds]);
            usage.set(c.script, [...(usage.get(c.script) ?? []), u.seconds]);
        }
    }
    for (const c of commands) {
        console.log(`  npm run ${c.script}: --help median ${median(help.get(c.script)!).toFixed(2)} s (max ${Math.max(...help.get(c.script)!).toFixed(2)} s), usage error median ${median(usage.get(c.script)!).toFixed(2)} s`);
    }
    const helpMedians = commands.map((c) => median(help.get(c.script)!));
    const usageMedians = commands.map((c) => median(usage.get(c.script)!));
    console.log(
        `commands: --help median ${median(helpMedians).toFixed(2)} s (max of medians ${Math.max(...helpMedians).toFixed(2)} s), usage error median ${median(usageMedians).toFixed(2)} s (max ${Math.max(...usageMedians).toFixed(2)} s), ${commands.length} commands`,
    );
}

main();
