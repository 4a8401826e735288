// Stand-in for ealen/echo-server 0.9.2: answers every request with what it saw, as JSON.
// Switches (environment, default true): ENABLE__HOST, ENABLE__HTTP, ENABLE__REQUEST, ENABLE__HEADER,
// ENABLE__COOKIES, ENABLE__ENVIRONMENT. Query parameters (or x-echo-* headers): echo_code (status),
// echo_body (plain body), echo_header ("Name: value", repeatable), echo_time (ms before answering).
"use strict";
const http = require("http");
const os = require("os");

const enabled = (name) => (process.env[`ENABLE__${name}`] ?? "true").toLowerCase() !== "false";
const port = Number(process.env.PORT || 80);

function cookies(header) {
    const out = {};
    for (const part of (header || "").split(";")) {
        const i = part.indexOf("=");
        if (i > 0) out[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim());
    }
    return out;
}

function parseBody(raw, type) {
    if (raw.length === 0) return {};
    const text = raw.toString("utf8");
    if (/json/i.test(type || "")) {
        try {
            return JSON.parse(text);
        } catch {
            return text;
        }
    }
    if (/x-www-form-urlencoded/i.test(type || "")) return Object.fromEntries(new URLSearchParams(text));
    return text;
}

const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
        const url = new URL(req.url, "http://localhost");
        const param = (name) => url.searchParams.getAll(name).concat(req.headers[`x-${name.replace("_", "-")}`] ?? []);
        const answer = () => {
            for (const h of param("echo_header")) {
                const i = String(h).indexOf(":");
                if (i > 0) res.setHeader(String(h).slice(0, i).trim(), String(h).slice(i + 1).trim());
            }
            const code = Number(param("echo_code")[0]);
            res.statusCode = code >= 200 && code < 600 ? code : 200;
            const body = param("echo_body")[0];
            if (body !== undefined) {
                res.setHeader("Content-Type", "text/plain; charset=utf-8");
                res.end(String(body));
                return;
            }
            const out = {};
            if (enabled("HOST")) out.host = { hostname: os.hostname(), ip: req.socket.remoteAddress, ips: [] };
            if (enabled("HTTP")) out.http = { method: req.method, baseUrl: "", originalUrl: req.url, protocol: "http" };
            if (enabled("REQUEST")) {
                out.request = { params: { 0: url.pathname }, query: Object.fromEntries(url.searchParams), body: parseBody(Buffer.concat(chunks), req.headers["content-type"]) };
                if (enabled("COOKIES")) out.request.cookies = cookies(req.headers.cookie);
                if (enabled("HEADER")) out.request.headers = req.headers;
            }
            if (enabled("ENVIRONMENT")) out.environment = { ...process.env };
            res.setHeader("Content-Type", "application/json; charset=utf-8");
            res.end(JSON.stringify(out));
        };
        const delay = Number(param("echo_time")[0]);
        if (delay > 0 && delay <= 60000) setTimeout(answer, delay);
        else answer();
    });
});
server.keepAliveTimeout = 65000;
server.listen(port, () => console.log(`Listening on port ${port}.`));
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => server.close(() => process.exit(0)));
