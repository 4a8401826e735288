// Preloaded (NODE_OPTIONS=--require) into a program process a test spawns: writes the process's peak
// resident memory (getrusage maxRSS, KiB) and CPU time (user + system, ms) to PLATFORM_PEAK_RSS_FILE as
// "<maxRSS> <cpuMs>" when it exits, however it exits.
"use strict";
const file = process.env.PLATFORM_PEAK_RSS_FILE;
if (file) {
    delete process.env.PLATFORM_PEAK_RSS_FILE; // not for grandchildren
    process.on("exit", () => {
        try {
            const usage = process.resourceUsage();
            require("fs").writeFileSync(file, `${usage.maxRSS} ${Math.round((usage.userCPUTime + usage.systemCPUTime) / 1000)}`);
        } catch {
            /* best effort */
        }
    });
}
