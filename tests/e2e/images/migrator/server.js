// The migration test's backend: /health answers ok; anything else answers {"release", "method", "path"}.
"use strict";
const http = require("http");
const release = process.env.RELEASE_MARKER || "unknown";
const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
        const body = req.url === "/health" ? "ok\n" : JSON.stringify({ release, method: req.method, path: req.url }) + "\n";
        res.writeHead(200, { "content-type": req.url === "/health" ? "text/plain" : "application/json" });
        res.end(body);
    });
});
server.listen(Number(process.env.PORT || 8080));
// As an app should: a stop (SIGTERM, the platform's 30 s grace) ends it once in-flight requests are done.
process.on("SIGTERM", () => server.close(() => process.exit(0)));
