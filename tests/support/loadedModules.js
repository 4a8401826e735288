// Preloaded (NODE_OPTIONS=--require) into a process a test spawns: writes the file of every CommonJS module
// the process loaded, one a line, to PLATFORM_LOADED_MODULES_FILE when it exits, however it exits.
"use strict";
const file = process.env.PLATFORM_LOADED_MODULES_FILE;
if (file) {
    delete process.env.PLATFORM_LOADED_MODULES_FILE; // not for grandchildren
    process.on("exit", () => {
        try {
            require("fs").writeFileSync(file, Object.keys(require.cache).join("\n"));
        } catch {
            /* best effort */
        }
    });
}
