// The build: the program's and the operator commands' TypeScript sources, transpiled to dist/ (gitignored,
// never committed) with a source map per file. It runs after `npm ci` (package.json postinstall), on
// `npm run build`, and from launch/program.js and launch/command.js whenever a source is newer than its
// output, so `pulumi up` and every command always run what the sources say.
//
// Transpile only, file by file (what the language host's ts-node did at every run before, done once): the
// type check is `tsc --noEmit -p .`, in `npm test` and CI. Nothing that runs in production is type-checked
// at run time. Plain JavaScript with no dependency but `typescript`, loaded only when something is stale.
//
//   node launch/build.js            build what is stale, print what was built
//   node launch/build.js --check    exit 1 and name the first stale file, build nothing
//   node launch/build.js --clean    delete dist/ and build everything
"use strict";
const fs = require("fs");
const path = require("path");

const ROOT = path.resolve(__dirname, "..");
const OUT = path.join(ROOT, "dist");
/** What runs in production: the program (index.ts and the folders it imports) and the operator commands. */
const SOURCE_DIRS = ["apps", "render", "config", "hostScripts", "io", "components", "commands"];
const SOURCE_FILES = ["index.ts"];
/** Inputs that change every output: a newer one rebuilds everything. */
const GLOBAL_INPUTS = [__filename, path.join(ROOT, "tsconfig.json")];
const MANIFEST = path.join(OUT, ".build-manifest.json");

/** Every source file, relative to the root: `index.ts`, `io/s3.ts`, … (no .d.ts, no nested node_modules). */
function sources() {
    const found = SOURCE_FILES.filter((f) => fs.existsSync(path.join(ROOT, f)));
    const walk = (rel) => {
        let entries;
        try {
            entries = fs.readdirSync(path.join(ROOT, rel), { withFileTypes: true });
        } catch {
            return;
        }
        for (const e of entries) {
            const child = path.join(rel, e.name);
            if (e.isDirectory()) {
                if (e.name !== "node_modules") walk(child);
            } else if (e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) {
                found.push(child);
            }
        }
    };
    SOURCE_DIRS.forEach(walk);
    return found.sort();
}

const outputOf = (rel) => path.join(OUT, rel.replace(/\.ts$/, ".js"));
/** A file's identity for staleness: modification time and size (any change, newer or older, rebuilds). */
const identity = (file) => {
    try {
        const s = fs.statSync(file);
        return `${s.mtimeMs}:${s.size}`;
    } catch {
        return "missing";
    }
};

function readManifest() {
    try {
        return JSON.parse(fs.readFileSync(MANIFEST, "utf8"));
    } catch {
        return { inputs: {}, files: {} };
    }
}

/**
 * What needs building: every source that changed since it was built (or whose output is missing), everything
 * when a global input changed, and outputs whose source is gone. Stats only: a few milliseconds.
 */
function plan() {
    const manifest = readManifest();
    const inputs = Object.fromEntries(GLOBAL_INPUTS.map((f) => [path.relative(ROOT, f), identity(f)]));
    const all = Object.entries(inputs).some(([f, id]) => manifest.inputs?.[f] !== id);
    const list = sources();
    const ids = Object.fromEntries(list.map((rel) => [rel, identity(path.join(ROOT, rel))]));
    const stale = list.filter((rel) => all || manifest.files?.[rel] !== ids[rel] || !fs.existsSync(outputOf(rel)));
    const wanted = new Set(list.map((rel) => outputOf(rel)));
    const orphans = [];
    const walk = (dir) => {
        let entries;
        try {
            entries = fs.readdirSync(dir, { withFileTypes: true });
        } catch {
            return;
        }
        for (const e of entries) {
            const file = path.join(dir, e.name);
            if (e.isDirectory()) walk(file);
            else if (e.name.endsWith(".js") && !wanted.has(file)) orphans.push(file);
        }
    };
    walk(OUT);
    return { all, stale, orphans, total: list.length, inputs, ids };
}

function loadTypeScript() {
    try {
        return require(require.resolve("typescript", { paths: [ROOT] }));
    } catch {
        throw new Error(
            "dist/ is missing or older than the TypeScript sources, and the `typescript` package is not installed to build it. " +
                "Run `npm ci` (it installs typescript and builds dist/), or `npm run build` after installing it.",
        );
    }
}

/** The compiler options of tsconfig.json, for emitting (CommonJS, the target, source maps). */
function compilerOptions(ts) {
    const file = path.join(ROOT, "tsconfig.json");
    const read = ts.readConfigFile(file, ts.sys.readFile);
    if (read.error) throw new Error(`tsconfig.json: ${ts.flattenDiagnosticMessageText(read.error.messageText, "\n")}`);
    const parsed = ts.convertCompilerOptionsFromJson(read.config.compilerOptions ?? {}, ROOT, "tsconfig.json");
    if (parsed.errors.length) throw new Error(`tsconfig.json: ${parsed.errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n")).join("; ")}`);
    return { ...parsed.options, sourceMap: true, inlineSourceMap: false, inlineSources: false, declaration: false, noEmit: false, outDir: undefined, rootDir: undefined };
}

/** Writes `file` atomically (a concurrent run never loads half a module). */
function writeAtomic(file, text) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
}

function transpile(ts, options, rel) {
    const source = path.join(ROOT, rel);
    const out = outputOf(rel);
    const result = ts.transpileModule(fs.readFileSync(source, "utf8"), { compilerOptions: options, fileName: source, reportDiagnostics: true });
    const syntax = (result.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
    if (syntax.length) {
        const d = syntax[0];
        const { line, character } = d.file ? d.file.getLineAndCharacterOfPosition(d.start ?? 0) : { line: 0, character: 0 };
        throw new Error(`${rel}:${line + 1}:${character + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
    }
    const map = JSON.parse(result.sourceMapText);
    map.file = path.basename(out);
    map.sources = [path.relative(path.dirname(out), source).split(path.sep).join("/")];
    delete map.sourceRoot;
    const js = result.outputText.replace(/\/\/# sourceMappingURL=.*\s*$/, "") + `//# sourceMappingURL=${path.basename(out)}.map\n`;
    writeAtomic(`${out}.map`, JSON.stringify(map));
    writeAtomic(out, js);
}

/** Builds what is stale; returns the relative paths it built. Throws with file:line:column on a syntax error. */
function build(options = {}) {
    if (options.clean) fs.rmSync(OUT, { recursive: true, force: true });
    const p = plan();
    if (p.stale.length === 0 && p.orphans.length === 0) return [];
    const ts = loadTypeScript();
    const compiler = compilerOptions(ts);
    for (const rel of p.stale) transpile(ts, compiler, rel);
    for (const file of p.orphans) {
        fs.rmSync(file, { force: true });
        fs.rmSync(`${file}.map`, { force: true });
    }
    // Written last: an interrupted build leaves the old manifest, so the next run builds again.
    writeAtomic(MANIFEST, JSON.stringify({ typescript: ts.version, inputs: p.inputs, files: p.ids }));
    return p.stale;
}

/**
 * The launchers' call: builds what is stale (telling stderr, so stdout stays the command's), else does
 * nothing but stat the sources.
 */
function ensureBuilt() {
    const started = Date.now();
    const built = build();
    if (built.length > 0) process.stderr.write(`platform: built ${built.length} file(s) into dist/ in ${Date.now() - started} ms\n`);
}

module.exports = { ROOT, OUT, build, ensureBuilt, plan, sources };

if (require.main === module) {
    const argv = process.argv.slice(2);
    try {
        if (argv.includes("--check")) {
            const p = plan();
            const first = p.all ? "dist/ (missing or older than the build inputs)" : p.stale[0] ?? p.orphans[0];
            if (first !== undefined) {
                console.error(`stale: ${first}; run npm run build`);
                process.exit(1);
            }
            console.log(`dist/ is up to date (${p.total} files)`);
        } else {
            const started = Date.now();
            const built = build({ clean: argv.includes("--clean") });
            console.log(`dist/: built ${built.length} file(s) in ${Date.now() - started} ms`);
        }
    } catch (e) {
        console.error(e instanceof Error ? e.message : e);
        process.exit(1);
    }
}
