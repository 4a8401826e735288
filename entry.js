// The entry point `pulumi preview`/`up` run: Pulumi.yaml `main: entry.js` with `runtime.options.typescript:
// false`. It loads index.ts without ts-node and without a type check (tsc --noEmit does that in npm test and
// CI): each .ts file is transpiled with TypeScript's transpileModule once, and the result is cached by content
// hash under node_modules/.cache/platform-program, so a run whose sources did not change never loads the
// compiler at all. On Node >= 22.1 it also turns on V8's compile cache for every module loaded after it (the
// SDK's index, the provider packages, the program). `npm run bench:program` measures what this saves.
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const Module = require("module");

const ROOT = __dirname;
const CACHE_DIR = path.join(ROOT, "node_modules", ".cache", "platform-program");
/** Bump when the transpile settings below change. */
const LOADER_VERSION = "2";

if (typeof Module.enableCompileCache === "function") {
    Module.enableCompileCache(path.join(ROOT, "node_modules", ".cache", "node-compile-cache"));
}

/** Everything the emitted JavaScript depends on besides the file itself. */
function settingsKey() {
    const read = (p) => {
        try {
            return fs.readFileSync(p, "utf8");
        } catch {
            return "";
        }
    };
    const tsVersion = (/"version":\s*"([^"]+)"/.exec(read(path.join(ROOT, "node_modules", "typescript", "package.json"))) || [])[1];
    return `${LOADER_VERSION}\0${tsVersion}\0${read(path.join(ROOT, "tsconfig.json"))}`;
}

let settings;
let compilerOptions;
/** Output per transpiled file, for stack traces (source maps inline). */
const outputs = new Map();

function transpile(source, filename) {
    const ts = require("typescript");
    if (compilerOptions === undefined) {
        const parsed = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, "tsconfig.json"), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
        compilerOptions = {
            ...(parsed ? parsed.options : {}),
            // This package is CommonJS (no "type": "module"): what node16 emits for it.
            module: ts.ModuleKind.CommonJS,
            moduleResolution: undefined,
            sourceMap: false,
            inlineSourceMap: true,
            inlineSources: false,
            declaration: false,
            noEmit: false,
        };
    }
    const output = ts.transpileModule(source, { compilerOptions, fileName: filename }).outputText;
    // The inline map names its source relative to the output; make it the .ts file's absolute path.
    return output.replace(/(\/\/# sourceMappingURL=data:application\/json;base64,)(\S+)\s*$/, (_, prefix, data) => {
        const map = JSON.parse(Buffer.from(data, "base64").toString("utf8"));
        map.sources = [filename];
        delete map.sourceRoot;
        return prefix + Buffer.from(JSON.stringify(map)).toString("base64");
    });
}

function compiled(filename) {
    const source = fs.readFileSync(filename, "utf8");
    if (settings === undefined) settings = settingsKey();
    const key = crypto.createHash("sha256").update(settings).update("\0").update(filename).update("\0").update(source).digest("hex");
    const cached = path.join(CACHE_DIR, `${key}.js`);
    let output;
    try {
        output = fs.readFileSync(cached, "utf8");
    } catch {
        output = transpile(source, filename);
        try {
            fs.mkdirSync(CACHE_DIR, { recursive: true });
            const tmp = `${cached}.${process.pid}.tmp`;
            fs.writeFileSync(tmp, output);
            fs.renameSync(tmp, cached); // atomic: concurrent runs never read half a file
        } catch {
            /* a read-only checkout: transpile every time */
        }
    }
    outputs.set(filename, output);
    return output;
}

/** Stack traces through the transpiled files point at the .ts lines (cmd/run's source-map-support). */
function mapStackTraces() {
    try {
        const sdk = path.dirname(require.resolve("@pulumi/pulumi/package.json", { paths: [ROOT] }));
        const support = require(require.resolve("source-map-support", { paths: [sdk] }));
        support.install({ environment: "node", retrieveFile: (p) => outputs.get(p) || null });
    } catch {
        /* frames then show transpiled line numbers */
    }
}

// Under ts-node (mocha, or `typescript: true`) .ts files are already handled: leave them to it.
if (!Module._extensions[".ts"]) {
    mapStackTraces();
    Module._extensions[".ts"] = (module, filename) => module._compile(compiled(filename), filename);
}

module.exports = require("./index.ts");
