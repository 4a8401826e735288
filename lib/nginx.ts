// Renders the edge's complete nginx.conf from the route table. Pure: the same function feeds the
// running edge (through the apply script) and the tests that load it into a real nginx.

/** Where one container listens, as nginx reaches it: a container name (resolved per request) or an IP. */
export interface Upstream {
    readonly host: string;
    readonly port: number;
}

export interface Route {
    /** `/<app>/` and `/api/<app>/`. */
    readonly app: string;
    readonly frontend: Upstream;
    readonly backend: Upstream;
    readonly apiPrefix: "keep" | "strip";
    readonly contentSecurityPolicy?: string;
}

export interface EdgeSettings {
    /** `https`: port 80 only redirects and answers ACME; `http`: routes served on port 80 (the local stack). */
    readonly mode: "https" | "http";
    readonly domain: string;
    /** `listen` arguments, e.g. `80` in the container or `127.0.0.1:18080` in a test. */
    readonly listenHttp: string;
    readonly listenHttps: string;
    /** Port clients use for HTTPS, for the redirect's Location (443 is left out of the URL). */
    readonly publicHttpsPort: number;
    readonly certificate: string;
    readonly certificateKey: string;
    /** Directory the ACME client writes HTTP-01 tokens to (served at /.well-known/acme-challenge/). */
    readonly acmeWebroot: string;
    /** DNS server for upstream names, asked on every request: Docker's embedded DNS in production. */
    readonly resolver: string;
    readonly pidFile: string;
    readonly errorLog: string;
    readonly accessLog: string;
    readonly tempDir: string;
    /** Requests per second per client address on /api/, and the burst allowed above it. */
    readonly apiRatePerSecond: number;
    readonly apiBurst: number;
    /** How long old workers may keep long-lived connections after a reload. */
    readonly workerShutdownTimeout: string;
}

/** The settings of the edge container in production; tests override the paths and listen addresses. */
export function containerEdgeSettings(mode: "https" | "http", domain: string): EdgeSettings {
    return {
        mode,
        domain,
        listenHttp: "80",
        listenHttps: "443",
        publicHttpsPort: 443,
        certificate: "/etc/platform/certs/fullchain.pem",
        certificateKey: "/etc/platform/certs/privkey.pem",
        acmeWebroot: "/var/www/acme",
        resolver: "127.0.0.11",
        pidFile: "/tmp/nginx.pid",
        errorLog: "/dev/stderr",
        accessLog: "/dev/stdout",
        tempDir: "/tmp/nginx",
        apiRatePerSecond: 20,
        apiBurst: 40,
        workerShutdownTimeout: "30s",
    };
}

export const DEFAULT_CSP =
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; " +
    "connect-src 'self'; font-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'self'";

// Raw request paths that could escape an app's prefix once decoded or normalised: dot segments,
// encoded dots, slashes and backslashes, and empty segments. Refused before routing.
// (\x5c is a backslash: nginx's quoted strings would swallow a literal one.)
const HOSTILE_PATH = String.raw`^[^?]*(%2e|%2f|%5c|\x5c|//|/\.\.?(/|\?|$))`;

// Build tools name long-cached assets with a content hash (main.3f9a1c2e.js, chunk-AB12CD34.js).
const HASHED_ASSET = String.raw`[.-][0-9A-Za-z]{8,}\.(js|mjs|css|woff2?|ttf|png|jpe?g|gif|svg|webp|avif|ico)(\?.*)?$`;

function quote(value: string): string {
    if (/["\\$\n]/.test(value)) throw new Error(`refusing to render ${JSON.stringify(value)} into nginx.conf`);
    return `"${value}"`;
}

function upstreamAddress(u: Upstream): string {
    if (!/^[A-Za-z0-9._-]+$/.test(u.host)) throw new Error(`upstream host ${JSON.stringify(u.host)} is not a hostname or IPv4 address`);
    if (!Number.isInteger(u.port) || u.port < 1 || u.port > 65535) throw new Error(`upstream port ${u.port} is not a TCP port`);
    return `${u.host}:${u.port}`;
}

function checkRoutes(routes: readonly Route[]): void {
    const seen = new Set<string>();
    for (const r of routes) {
        if (!/^[a-z][a-z0-9-]{0,30}$/.test(r.app)) throw new Error(`route name ${JSON.stringify(r.app)} is not a lowercase path segment`);
        if (r.app === "api" || r.app === "health" || r.app === ".well-known") throw new Error(`route name "${r.app}" is reserved by the edge`);
        if (seen.has(r.app)) throw new Error(`route "${r.app}" appears twice`);
        seen.add(r.app);
    }
}

function indent(lines: string[], depth: number): string[] {
    return lines.map((l) => (l === "" ? l : "    ".repeat(depth) + l));
}

function appLocations(r: Route, settings: EdgeSettings): string[] {
    const fe = upstreamAddress(r.frontend);
    const be = upstreamAddress(r.backend);
    const a = r.app;
    // A variable in proxy_pass makes nginx resolve the name per request (through `resolver`), so a
    // missing container fails only its own routes, never the whole config. With a variable the URI is
    // passed as-is, hence the explicit rewrites for prefix stripping.
    return [
        `# ${a}: frontend ${fe}, backend ${be} (API prefix ${r.apiPrefix === "keep" ? "kept" : "stripped"})`,
        `location = /${a} { return 301 /${a}/; }`,
        `location ~ ^/${a}/.*\\.[A-Za-z0-9]+$ {`,
        `    # A file: served as the frontend answers it, a missing one stays a 404.`,
        `    set $platform_upstream ${fe};`,
        `    rewrite ^/${a}(/.*)$ $1 break;`,
        `    proxy_hide_header Cache-Control;`,
        `    proxy_pass http://$platform_upstream;`,
        `}`,
        `location /${a}/ {`,
        `    # An SPA route: a 404 from the frontend falls back to the app's index.html.`,
        `    set $platform_upstream ${fe};`,
        `    rewrite ^/${a}(/.*)$ $1 break;`,
        `    proxy_hide_header Cache-Control;`,
        `    proxy_intercept_errors on;`,
        `    error_page 404 = @${a}_index;`,
        `    proxy_pass http://$platform_upstream;`,
        `}`,
        `location @${a}_index {`,
        `    set $platform_upstream ${fe};`,
        `    rewrite ^ /index.html break;`,
        `    proxy_hide_header Cache-Control;`,
        `    proxy_pass http://$platform_upstream;`,
        `}`,
        `location = /api/${a} { return 301 /api/${a}/; }`,
        `location /api/${a}/ {`,
        `    limit_req zone=api_per_client burst=${settings.apiBurst} nodelay;`,
        `    set $platform_upstream ${be};`,
        ...(r.apiPrefix === "strip" ? [`    rewrite ^/api/${a}(/.*)$ $1 break;`] : []),
        `    proxy_pass http://$platform_upstream;`,
        `}`,
    ];
}

function cacheControlMap(routes: readonly Route[]): string[] {
    const lines = ["map $request_uri $platform_cache_control {", `    default "";`, `    "~^/api/" "";`];
    for (const r of routes) {
        lines.push(`    "~^/${r.app}/.*${HASHED_ASSET}" "public, max-age=31536000, immutable";`);
        lines.push(`    "~^/${r.app}/" "no-cache";`);
    }
    lines.push("}");
    return lines;
}

function cspMap(routes: readonly Route[]): string[] {
    const lines = ["map $request_uri $platform_csp {", `    default ${quote(DEFAULT_CSP)};`, `    "~^/api/" "";`];
    for (const r of routes) {
        if (r.contentSecurityPolicy !== undefined) lines.push(`    "~^/${r.app}/" ${quote(r.contentSecurityPolicy)};`);
    }
    lines.push("}");
    return lines;
}

function commonServerLines(mode: "https" | "http"): string[] {
    return [
        `if ($request_uri ~* "${HOSTILE_PATH}") { return 400; }`,
        `add_header X-Request-ID $platform_request_id always;`,
        `add_header X-Content-Type-Options "nosniff" always;`,
        `add_header X-Frame-Options "DENY" always;`,
        `add_header Referrer-Policy "strict-origin-when-cross-origin" always;`,
        `add_header Content-Security-Policy $platform_csp always;`,
        `add_header Cache-Control $platform_cache_control;`,
        ...(mode === "https" ? [`add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;`] : []),
        `location = /health { access_log off; default_type text/plain; return 200 "ok\\n"; }`,
    ];
}

function routingServerBody(routes: readonly Route[], settings: EdgeSettings): string[] {
    return [
        ...commonServerLines(settings.mode),
        ...routes.flatMap((r) => ["", ...appLocations(r, settings)]),
        "",
        "# Anything no app claims is the edge's own 404, never another app's page.",
        `location / { default_type text/plain; return 404 "not found\\n"; }`,
    ];
}

export function renderNginxConfig(routes: readonly Route[], settings: EdgeSettings): string {
    checkRoutes(routes);
    const sorted = [...routes].sort((x, y) => x.app.localeCompare(y.app));
    const httpsPortSuffix = settings.publicHttpsPort === 443 ? "" : `:${settings.publicHttpsPort}`;
    const servers: string[] =
        settings.mode === "https"
            ? [
                  "server {",
                  ...indent(
                      [
                          `listen ${settings.listenHttp} default_server;`,
                          `server_name ${settings.domain};`,
                          `location ^~ /.well-known/acme-challenge/ { root ${settings.acmeWebroot}; default_type text/plain; try_files $uri =404; }`,
                          `location = /health { access_log off; default_type text/plain; return 200 "ok\\n"; }`,
                          `location / { return 301 https://$host${httpsPortSuffix}$request_uri; }`,
                      ],
                      1,
                  ),
                  "}",
                  "",
                  "server {",
                  ...indent(
                      [
                          `listen ${settings.listenHttps} ssl http2 default_server;`,
                          `server_name ${settings.domain};`,
                          `ssl_certificate ${settings.certificate};`,
                          `ssl_certificate_key ${settings.certificateKey};`,
                          "ssl_protocols TLSv1.2 TLSv1.3;",
                          "ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;",
                          "ssl_prefer_server_ciphers off;",
                          "ssl_session_cache shared:platform_tls:10m;",
                          "ssl_session_timeout 1d;",
                          "ssl_session_tickets off;",
                          ...routingServerBody(sorted, settings),
                      ],
                      1,
                  ),
                  "}",
              ]
            : [
                  "server {",
                  ...indent([`listen ${settings.listenHttp} default_server;`, `server_name ${settings.domain};`, ...routingServerBody(sorted, settings)], 1),
                  "}",
              ];

    const http: string[] = [
        "server_tokens off;",
        "default_type application/octet-stream;",
        "absolute_redirect off;",
        `log_format platform '$remote_addr [$time_local] "$request" $status $body_bytes_sent rt=$request_time ' 'upstream=$upstream_addr ust=$upstream_status id=$platform_request_id';`,
        `access_log ${settings.accessLog} platform;`,
        "",
        `client_body_temp_path ${settings.tempDir}/body;`,
        `proxy_temp_path ${settings.tempDir}/proxy;`,
        `fastcgi_temp_path ${settings.tempDir}/fastcgi;`,
        `uwsgi_temp_path ${settings.tempDir}/uwsgi;`,
        `scgi_temp_path ${settings.tempDir}/scgi;`,
        "",
        "client_max_body_size 10m;",
        "keepalive_timeout 65s;",
        "proxy_connect_timeout 5s;",
        "proxy_send_timeout 60s;",
        "proxy_read_timeout 60s;",
        "proxy_http_version 1.1;",
        "",
        "gzip on;",
        "gzip_comp_level 5;",
        "gzip_min_length 1024;",
        "gzip_proxied any;",
        "gzip_vary on;",
        "gzip_types text/plain text/css text/javascript application/javascript application/json application/xml image/svg+xml;",
        "",
        `resolver ${settings.resolver} valid=10s ipv6=off;`,
        "resolver_timeout 3s;",
        "",
        "map $http_upgrade $platform_connection { default upgrade; '' close; }",
        "# A well-formed X-Request-ID from the client is kept, anything else is replaced by nginx's own.",
        `map $http_x_request_id $platform_request_id { "~^[A-Za-z0-9._-]{8,128}$" $http_x_request_id; default $request_id; }`,
        ...cacheControlMap(sorted),
        ...cspMap(sorted),
        "",
        `limit_req_zone $binary_remote_addr zone=api_per_client:10m rate=${settings.apiRatePerSecond}r/s;`,
        "limit_req_status 429;",
        "",
        "proxy_set_header Host $host;",
        "proxy_set_header X-Real-IP $remote_addr;",
        "proxy_set_header X-Forwarded-For $remote_addr;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header X-Forwarded-Host $host;",
        "proxy_set_header X-Request-ID $platform_request_id;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $platform_connection;",
        "",
        ...servers,
    ];

    return [
        "# Rendered by the platform program (lib/nginx.ts). Do not edit on the host: the next deployment replaces it.",
        "worker_processes auto;",
        `pid ${settings.pidFile};`,
        `error_log ${settings.errorLog} warn;`,
        `worker_shutdown_timeout ${settings.workerShutdownTimeout};`,
        "",
        "events { worker_connections 4096; }",
        "",
        "http {",
        ...indent(http, 1),
        "}",
        "",
    ].join("\n");
}
