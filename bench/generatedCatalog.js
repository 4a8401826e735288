// Test-only preload for `npm run bench:program` (NODE_OPTIONS=--require): makes the program's app catalog
// (apps/index.ts) the generated one in the JSON file PLATFORM_BENCH_CATALOG, so the real program, loaded the
// way the language host loads it, runs with N apps. The program itself has no hook for this: the module is
// simply already in Node's module cache when io/readConfig.ts imports it.
"use strict";
const file = process.env.PLATFORM_BENCH_CATALOG;
if (file) {
    const fs = require("fs");
    const path = require("path");
    const Module = require("module");
    const catalog = JSON.parse(fs.readFileSync(file, "utf8"));
    // The sources (ts-node's route) and their build in dist/ (the precompiled route, launch/program.js).
    for (const filename of [path.join(__dirname, "..", "apps", "index.ts"), path.join(__dirname, "..", "dist", "apps", "index.js")]) {
        const m = new Module(filename, null);
        m.filename = filename;
        m.loaded = true;
        m.exports = { __esModule: true, catalog };
        Module._cache[filename] = m;
    }
}
