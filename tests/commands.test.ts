// The operator commands as npm runs them: package.json's scripts start the precompiled JavaScript through
// launch/command.js (no ts-node, no type check at run time), every command answers --help with its usage and
// exit 0, and an unknown argument is a usage error, both before loading the Pulumi SDK (which alone takes
// seconds): `npm run bench:commands` measures how fast.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const ROOT = path.resolve(__dirname, "..");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { build, plan, OUT } = require("../launch/build.js") as { build(): string[]; plan(): { stale: string[]; orphans: string[] }; OUT: string };
const scripts = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).scripts as Record<string, string>;

/** The operator commands' scripts: `<script>` → `<command>` (commands/<command>.ts). */
function launched(): [string, string][] {
    return Object.entries(scripts).flatMap(([script, line]) => {
        const m = /^node launch\/command\.js ([a-z0-9-]+)$/.exec(line);
        return m ? [[script, m[1]] as [string, string]] : [];
    });
}

function runCommand(name: string, args: string[]): { status: number | null; stdout: string; stderr: string; loaded: string[] } {
    const loadedFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "platform-cmd-")), "modules");
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: `--require ${path.join(__dirname, "support", "loadedModules.js")}`, PLATFORM_LOADED_MODULES_FILE: loadedFile };
    for (const k of Object.keys(env)) if (k.startsWith("TS_NODE_")) delete env[k];
    const r = spawnSync(process.execPath, [path.join(ROOT, "launch", "command.js"), name, ...args], { cwd: ROOT, env, encoding: "utf8", timeout: 60000 });
    const loaded = fs.existsSync(loadedFile) ? fs.readFileSync(loadedFile, "utf8").split("\n") : [];
    fs.rmSync(path.dirname(loadedFile), { recursive: true, force: true });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, loaded };
}

describe("operator commands start precompiled (launch/command.js, dist/)", function () {
    this.timeout(120000);
    before(() => build());

    it("every operator command's script starts it through the launcher, none through ts-node", () => {
        const commands = launched().map(([, c]) => c);
        for (const c of ["restore", "backup-drill", "migrate-to-managed", "check-release"]) assert.ok(commands.includes(c), `${c}: ${JSON.stringify(scripts)}`);
        for (const [script, line] of Object.entries(scripts)) {
            if (!script.startsWith("bench:") && script !== "test") assert.doesNotMatch(line, /ts-node/, `npm run ${script}`);
        }
        for (const c of commands) assert.ok(fs.existsSync(path.join(ROOT, "commands", `${c}.ts`)), `commands/${c}.ts`);
    });

    for (const [script, name] of launched()) {
        it(`npm run ${script} -- --help: its usage on stdout, exit 0, from dist/, without ts-node or the Pulumi SDK`, () => {
            const r = runCommand(name, ["--help"]);
            assert.strictEqual(r.status, 0, r.stderr);
            assert.match(r.stdout, new RegExp(`usage: npm run ${script.replace(/[:]/g, "\\:")} `), r.stdout);
            assert.ok(r.loaded.includes(path.join(OUT, "commands", `${name}.js`)), "ran the build");
            const heavy = r.loaded.filter((f) => /[\\/]node_modules[\\/](ts-node|typescript|@pulumi[\\/]pulumi)[\\/]/.test(f) || f.endsWith(".ts"));
            assert.deepStrictEqual(heavy, [], "nothing heavy before the usage");
        });
        it(`npm run ${script} -- --no-such-flag: a usage error, exit non-zero, before any work`, () => {
            const r = runCommand(name, ["--no-such-flag"]);
            assert.notStrictEqual(r.status, 0);
            assert.match(r.stderr, /--no-such-flag/);
            assert.match(r.stderr, /usage: npm run /);
            assert.deepStrictEqual(r.loaded.filter((f) => /[\\/]node_modules[\\/]@pulumi[\\/]pulumi[\\/]/.test(f)), []);
        });
    }

    it("a changed source is rebuilt before the command runs, and a deleted one's output removed", () => {
        const source = path.join(ROOT, "commands", "check-release.ts");
        const orphan = path.join(OUT, "commands", "no-such-source.js");
        const now = new Date();
        fs.utimesSync(source, now, new Date(now.getTime() + 5000)); // a new modification time: an edit
        fs.writeFileSync(orphan, "throw new Error('stale');\n");
        try {
            assert.deepStrictEqual(plan().stale, ["commands/check-release.ts"]);
            const r = runCommand("check-release", ["app1", "1.4.3"]);
            assert.strictEqual(r.status, 0, r.stderr);
            assert.match(r.stderr, /built 1 file\(s\) into dist\//);
            assert.ok(!fs.existsSync(orphan), "the orphan's output is gone");
            const after = plan();
            assert.deepStrictEqual([after.stale, after.orphans], [[], []]);
        } finally {
            fs.rmSync(orphan, { force: true });
        }
    });

    it("a syntax error names the file, line and column, and runs nothing", () => {
        const dir = fs.mkdtempSync(path.join(ROOT, "commands", "tmp-"));
        const broken = path.join(dir, "broken.ts");
        fs.writeFileSync(broken, "export const x = ;\n");
        try {
            const r = runCommand("check-release", ["app1", "1.4.3"]);
            assert.strictEqual(r.status, 1);
            assert.match(r.stderr, new RegExp(`could not build dist/: commands/${path.basename(dir)}/broken\\.ts:1:\\d+: Expression expected`));
            assert.strictEqual(r.stdout, "");
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
            build();
        }
    });
});
