// Starts an operator command from its precompiled JavaScript: `node launch/command.js <name> [args…]` runs
// dist/commands/<name>.js as the main module, with these arguments (package.json's scripts: `npm run restore
// -- --help`). No ts-node and no type check at run time; dist/ is rebuilt first when a source changed
// (launch/build.js), so a command never runs code older than its sources.
"use strict";
const Module = require("module");
const path = require("path");

const ROOT = path.resolve(__dirname, "..");
// Node 22.1+: V8's compiled code of every module is cached on disk, keyed by content, for the next start.
if (typeof Module.enableCompileCache === "function") Module.enableCompileCache(path.join(ROOT, "node_modules", ".cache", "platform-compile"));

const name = process.argv[2] ?? "";
if (!/^[a-z][a-z0-9-]*$/.test(name)) {
    console.error(`usage: node launch/command.js <command> [arguments]; ${JSON.stringify(name)} is not a command name`);
    process.exit(2);
}
const file = path.join(ROOT, "dist", "commands", `${name}.js`);
try {
    require("./build").ensureBuilt();
} catch (e) {
    console.error(`${name}: could not build dist/: ${e instanceof Error ? e.message : e}`);
    process.exit(1);
}
if (!require("fs").existsSync(file)) {
    console.error(`${name}: no such command (commands/${name}.ts)`);
    process.exit(2);
}
// As `node dist/commands/<name>.js args…`: the command sees its own arguments and `require.main === module`.
process.argv.splice(1, 2, file);
Module.runMain();
