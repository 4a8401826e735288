// The migration test's backend: /health answers ok; anything else answers {"release", "method", "path"}.
"use strict";
const http = require("http");
const release = process.env.RELEASE_MARKER || "unknown";
http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
        const body = req.url === "/health" ? "ok\n" : JSON.stringify({ release, method: req.method, path: req.url }) + "\n";
        res.writeHead(200, { "content-type": req.url === "/health" ? "text/plain" : "application/json" });
        res.end(body);
    });
}).listen(Number(process.env.PORT || 8080));
