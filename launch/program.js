// The program's entry for `pulumi preview`/`up` (Pulumi.yaml: runtime.options.typescript false, main this
// file). The language host's `@pulumi/pulumi/cmd/run` requires it; it loads the precompiled program,
// dist/index.js (built from index.ts by launch/build.js; rebuilt here first when a source changed).
//
// Why not the sources through ts-node, and why this file at all. Start-up dominates every preview (issue 18):
// ts-node compiling took 16% of it, and 35-46% went to formatting stack traces: the SDK captures
// `new Error().stack` about 90 times per resource (runtime/debuggable.js, resource.js) and cmd/run installs
// source-map-support, whose JavaScript formatter then runs for every frame of every capture. So, before the
// program loads:
// - V8's native stack formatting is restored (source-map-support's Error.prepareStackTrace removed). Stacks
//   then name dist/…/*.js; the run-error handler (io/runErrors.ts) maps the few frames an error report shows
//   back to the .ts sources through the build's source maps, when the error is reported, not at each capture.
// - Resources' source positions, which the SDK sends the engine, are mapped to the .ts sources the same way.
// - Node's module compile cache (Node 22.1+) keeps V8's compiled code of the SDK's ~1,100 modules on disk.
"use strict";
const Module = require("module");
const path = require("path");

const ROOT = path.resolve(__dirname, "..");
// The language host runs the program in the directory of `main` (this folder); the program's relative paths
// (.platform/local, the stack files) and its error reports are relative to the project's root, as with
// `main: index.ts`.
process.chdir(ROOT);
if (typeof Module.enableCompileCache === "function") Module.enableCompileCache(path.join(ROOT, "node_modules", ".cache", "platform-compile"));
if (process.env.PLATFORM_SOURCE_MAPPED_STACKS !== "1") Error.prepareStackTrace = undefined;

require("./build").ensureBuilt();
mapResourceSourcePositions();
module.exports = require("../dist/index.js");

/**
 * Every resource's source position (and stack) that the SDK sends the engine names the .ts source, as under
 * ts-node: the SDK's Resource.stackTrace, wrapped to map the frames that fall in dist/ through the build's
 * source maps (a binary search each; once per resource, not per stack capture).
 */
function mapResourceSourcePositions() {
    let Resource;
    try {
        ({ Resource } = require(require.resolve("@pulumi/pulumi/resource", { paths: [ROOT] })));
    } catch {
        return;
    }
    if (typeof Resource?.stackTrace !== "function" || Resource.stackTrace.length !== 1) return;
    const { sourcePosition } = require("../dist/io/runErrors.js");
    const { fileURLToPath, pathToFileURL } = require("url");
    const dist = `${path.join(ROOT, "dist")}${path.sep}`;
    const original = Resource.stackTrace;
    Resource.stackTrace = function stackTrace(skip) {
        // One frame more to skip: this wrapper.
        return original.call(this, skip + 1).map((frame) => {
            if (!frame || !frame.uri || !frame.uri.startsWith("file:")) return frame;
            const file = fileURLToPath(frame.uri);
            if (!file.startsWith(dist)) return frame;
            const mapped = sourcePosition(file, frame.line, frame.column);
            return mapped ? { uri: pathToFileURL(mapped.file).toString(), line: mapped.line, column: mapped.column } : frame;
        });
    };
}
