// Preloaded (NODE_OPTIONS=--require) into a program process a test spawns: writes the process's peak
// resident memory (getrusage maxRSS, KiB) to PLATFORM_PEAK_RSS_FILE when it exits, however it exits.
"use strict";
const file = process.env.PLATFORM_PEAK_RSS_FILE;
if (file) {
    delete process.env.PLATFORM_PEAK_RSS_FILE; // not for grandchildren
    process.on("exit", () => {
        try {
            require("fs").writeFileSync(file, String(process.resourceUsage().maxRSS));
        } catch {
            /* best effort */
        }
    });
}
