// Renders the edge's complete nginx.conf from the route table. Pure: the same function feeds the
// running edge (through the apply script) and the tests that load it into a real nginx.

/**
 * Where one container listens, as nginx reaches it: an IPv4 address, or a container name that the
 * apply script resolves to its address on the shared network when it applies the config (and again
 * every minute on the server).
 */
export interface Upstream {
    readonly host: string;
    readonly port: number;
    /** How long the container may take to turn healthy before a switch to it fails (the edge's health gate); default HEALTH_WAIT_SECONDS. Not rendered. */
    readonly healthWaitSeconds?: number;
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
    /**
     * Mode `https` on one host: the file hostScripts/issue-certificate.sh writes once a real certificate
     * is installed (it holds the map entry `"" 1;`). Until it exists, as on a first `up` before the
     * domain's DNS points at the server, port 80 serves the routes over plain HTTP and no answer
     * carries HSTS: the edge's self-signed placeholder on 443 is never pinned into a browser. Once it
     * exists (a reload), port 80 redirects to HTTPS (the ACME path, /health and the loopback probes
     * excepted) and HTTPS answers carry HSTS. Included as a pattern, so a config without the file
     * loads. Unset: HTTPS and HSTS from the start.
     */
    readonly tlsReadyFile?: string;
    /** DNS server for names nginx itself looks up at run time (none today): Docker's embedded DNS in production. */
    readonly resolver: string;
    /**
     * The route switches, as nginx sees the directory: one symlink per app and role (`app1.frontend`,
     * `app1.backend`) to a directory named after the address that serves it (`../targets/10.0.0.7:3000`).
     * nginx resolves the link on every request, so the apply script switches a release by re-pointing
     * it (one atomic rename), with no reload. Always `routes` in the directory the apply script writes.
     */
    readonly routeDir: string;
    /**
     * Host names served besides `domain`. Any other Host (or TLS SNI) is refused, which also shuts out
     * DNS rebinding against the local stack. Only literal names and IPv4 addresses.
     */
    readonly aliases?: readonly string[];
    readonly pidFile: string;
    readonly errorLog: string;
    readonly accessLog: string;
    readonly tempDir: string;
    /** Requests per second per client address on /api/, and the burst allowed above it. */
    readonly apiRatePerSecond: number;
    readonly apiBurst: number;
    /** How long old workers may keep long-lived connections after a reload. */
    readonly workerShutdownTimeout: string;
    /**
     * Behind a load balancer that ends TLS (the several-hosts shape, mode `https`): `listenHttp` takes
     * the load balancer's connections only, each opened by a PROXY protocol header whose client
     * address is trusted from `trustedCidrs` alone; routes are served there with `X-Forwarded-Proto:
     * https` and HSTS; no TLS listener, no redirect server (the load balancer redirects). `localListen`
     * (e.g. `127.0.0.1:80`) keeps /health and the generation probe for the container's own checks,
     * which send no PROXY header. Unset: the output is exactly what it was before this option.
     */
    readonly behindLoadBalancer?: LoadBalancerEdge;
}

export interface LoadBalancerEdge {
    /**
     * The load balancer's own address, as /32 (several only for tests and a balancer with several
     * addresses): PROXY headers are believed from these alone, and `listenHttp` closes (444) every
     * connection that comes from anywhere else, PROXY header or not: on the private network, another
     * server must not reach the apps as if it were the balancer, nor talk past its TLS and limits.
     */
    readonly trustedCidrs: readonly string[];
    readonly localListen: string;
    /**
     * Whether the balancer ends TLS yet. False until its certificate exists (the first `up`, before
     * the domain resolves to it): requests then arrive over plain HTTP, so the edge tells the apps
     * `http` and sends no HSTS. Unset: true.
     */
    readonly tls?: boolean;
}

/** The settings of the edge container in production; tests override the paths and listen addresses. */
/** Where the host's nginx directory appears inside the edge container. */
export const EDGE_CONF_DIR = "/etc/nginx/platform";
/** The name of the file in the edge's config directory that says a real certificate is installed (EdgeSettings.tlsReadyFile). */
export const TLS_READY_FILE_NAME = "tls-ready.conf";
/** What hostScripts/issue-certificate.sh writes to it: the map entry that sets $platform_tls_ready to 1. */
export const TLS_READY_ENTRY = '"" 1;';

export function containerEdgeSettings(mode: "https" | "http", domain: string): EdgeSettings {
    return {
        mode,
        domain,
        // The local quickstart is http://localhost:8080/; http://127.0.0.1:8080/ is the same edge.
        aliases: mode === "http" && domain === "localhost" ? ["127.0.0.1"] : [],
        listenHttp: "80",
        listenHttps: "443",
        publicHttpsPort: 443,
        certificate: "/etc/platform/certs/fullchain.pem",
        certificateKey: "/etc/platform/certs/privkey.pem",
        acmeWebroot: "/var/www/acme",
        tlsReadyFile: mode === "https" ? `${EDGE_CONF_DIR}/${TLS_READY_FILE_NAME}` : undefined,
        resolver: "127.0.0.11",
        routeDir: `${EDGE_CONF_DIR}/routes`,
        // The container's root filesystem is read-only: the pid file and every temp path live on the
        // /tmp tmpfs (nginx creates only the last path component, so the temp dir is /tmp itself).
        pidFile: "/tmp/nginx.pid",
        // nginx's own `stderr` target: opening /dev/stderr fails when fd 2 is a socket.
        errorLog: "stderr",
        accessLog: "/dev/stdout",
        tempDir: "/tmp",
        apiRatePerSecond: 20,
        apiBurst: 40,
        workerShutdownTimeout: "30s",
    };
}

export const DEFAULT_CSP =
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; " +
    "connect-src 'self'; font-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'self'";

// Raw request paths that could escape an app's prefix once decoded or normalised: dot segments,
// encoded dots, slashes and backslashes (also double-encoded, for apps that decode twice), and empty
// segments. Refused before routing. (\x5c is a backslash: nginx's quoted strings would swallow a literal one.)
// Non-capturing: nginx copies no captures for it.
const HOSTILE_PATH = String.raw`^[^?]*(?:%2e|%2f|%5c|%25(?:2e|2f|5c)|\x5c|//|/\.\.?(?:/|\?|$))`;

// Dotfiles (.env, .git/, .htpasswd), checked on the raw path right after HOSTILE_PATH: with encoded
// dots, slashes and backslashes already refused, a dot starting a segment of the decoded path is a
// literal "/." in the raw one. The ACME HTTP-01 token path is the one exception.
const DOTFILE_PATH = String.raw`^(?!/\.well-known/acme-challenge/[A-Za-z0-9_-]+(?:\?|$))[^?]*/\.`;

// Build tools name long-cached assets with a content hash (main.3f9a1c2e.js, chunk-AB12CD34.js).
const HASHED_ASSET = String.raw`[.-][0-9A-Za-z]{8,}\.(js|mjs|css|woff2?|ttf|png|jpe?g|gif|svg|webp|avif|ico)$`;

/** Where the apply script reads which config nginx has loaded (loopback clients only). */
export const GENERATION_PATH = "/__platform/generation";
/** The generation a rendered config carries until the apply script stamps the hash of its content in. */
export const UNSTAMPED_GENERATION = "unstamped";
/**
 * `# platform-route ROUTE NAME:PORT` lines at the top of the config name the container each route
 * switch must point at. The apply script resolves them and re-points the links; they are comments to
 * nginx, and the config's generation leaves them out, so a release switch changes no loaded config.
 */
export const ROUTE_MARKER = "# platform-route";
/** Where the apply script asks nginx which address a route reaches now (loopback clients only). */
export const ROUTE_PROBE_PATH = "/__platform/route/";
/** What a route reaches while its container's name does not resolve: refused, so only that route answers 502. */
export const UNRESOLVED_TARGET = "127.0.0.1:1";

/**
 * Client request headers that frameworks read as facts about the connection, the original URL or the
 * method (Express/Nest/Fastify `trust proxy`, Spring, Symfony, Rails, IIS, Next.js middleware,
 * httpoxy's `Proxy`). nginx replaces each with its own value or removes it; a header set with
 * proxy_set_header drops every client copy of it, whatever its case. Names with underscores never
 * get this far: nginx discards them (ignore_invalid_headers).
 */
export const CLEARED_REQUEST_HEADERS: readonly string[] = [
    "X-Forwarded-Port",
    "X-Forwarded-Prefix",
    "X-Forwarded-Server",
    "X-Forwarded-Ssl",
    "X-Forwarded-Scheme",
    "X-Forwarded-Protocol",
    "X-Forwarded-Path",
    "X-Forwarded-Uri",
    "X-Forwarded-Method",
    "X-Forwarded-By",
    "X-Forwarded-Client-Cert",
    "X-Forwarded-Tls-Client-Cert",
    "X-Forwarded",
    "Forwarded-For",
    "X-Original-Forwarded-For",
    "X-Scheme",
    "X-Url-Scheme",
    "Front-End-Https",
    "X-Arr-Ssl",
    "X-Original-URL",
    "X-Original-URI",
    "X-Rewrite-URL",
    "X-Original-Host",
    "X-Original-Method",
    "X-Original-Proto",
    "X-Original-Remote-Addr",
    "X-Host",
    "X-Http-Host-Override",
    "X-HTTP-Method-Override",
    "X-HTTP-Method",
    "X-Method-Override",
    "X-Client-IP",
    "X-Cluster-Client-IP",
    "Client-IP",
    "True-Client-IP",
    "CF-Connecting-IP",
    "Fastly-Client-IP",
    "X-ProxyUser-Ip",
    "X-Remote-Addr",
    "X-Remote-IP",
    "X-Originating-IP",
    "X-Envoy-External-Address",
    "X-Envoy-Original-Path",
    "X-Middleware-Subrequest",
    "X-Accel-Redirect",
    "Proxy",
    "Via",
];

/** Upstream response headers that would make nginx redirect internally or change how it serves: never honoured. */
export const IGNORED_RESPONSE_HEADERS: readonly string[] = ["X-Accel-Redirect", "X-Accel-Expires", "X-Accel-Limit-Rate", "X-Accel-Buffering", "X-Accel-Charset"];

const IPV4 = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/;
// RFC 1123 labels; Docker container names also allow `_` and `.` but Pulumi's generated names never use `_`.
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const DOMAIN = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

function quote(value: string): string {
    if (/["\\$\n\r\0]/.test(value)) throw new Error(`refusing to render ${JSON.stringify(value)} into nginx.conf`);
    return `"${value}"`;
}

function isIpv4(host: string): boolean {
    return IPV4.test(host);
}

function checkUpstream(u: Upstream): void {
    if (!isIpv4(u.host) && (!HOSTNAME.test(u.host) || /^[0-9.]+$/.test(u.host))) throw new Error(`upstream host ${JSON.stringify(u.host)} is not a hostname or IPv4 address`);
    if (!Number.isInteger(u.port) || u.port < 1 || u.port > 65535) throw new Error(`upstream port ${u.port} is not a TCP port`);
}

/** The names a server block answers to: the domain and its aliases, validated (they are rendered bare). */
function serverNames(settings: EdgeSettings): string[] {
    const names = [settings.domain, ...(settings.aliases ?? [])];
    for (const n of names) {
        if (/^[0-9.]+$/.test(n) ? !isIpv4(n) : !DOMAIN.test(n)) throw new Error(`server name ${JSON.stringify(n)} is not a lowercase domain name or IPv4 address`);
    }
    return [...new Set(names)];
}

function checkSettings(settings: EdgeSettings): void {
    // Every other setting is rendered bare (paths, listen arguments): one character too many would
    // end the directive early and let the value add its own.
    const bare: Array<[string, string]> = [
        ["listenHttp", settings.listenHttp],
        ["listenHttps", settings.listenHttps],
        ["certificate", settings.certificate],
        ["certificateKey", settings.certificateKey],
        ["acmeWebroot", settings.acmeWebroot],
        ...(settings.tlsReadyFile !== undefined ? ([["tlsReadyFile", settings.tlsReadyFile]] as Array<[string, string]>) : []),
        ["resolver", settings.resolver],
        ["routeDir", settings.routeDir],
        ["pidFile", settings.pidFile],
        ["errorLog", settings.errorLog],
        ["accessLog", settings.accessLog],
        ["tempDir", settings.tempDir],
        ["workerShutdownTimeout", settings.workerShutdownTimeout],
    ];
    for (const [key, value] of bare) {
        if (!/^[A-Za-z0-9_./:[\]-]{1,300}$/.test(value)) throw new Error(`edge setting ${key} ${JSON.stringify(value)} has characters nginx.conf cannot hold bare`);
    }
    for (const [key, value] of [["publicHttpsPort", settings.publicHttpsPort], ["apiRatePerSecond", settings.apiRatePerSecond], ["apiBurst", settings.apiBurst]] as const) {
        if (!Number.isInteger(value) || value < 1) throw new Error(`edge setting ${key} ${value} is not a positive integer`);
    }
    if (settings.publicHttpsPort > 65535) throw new Error(`publicHttpsPort ${settings.publicHttpsPort} is not a TCP port`);
    const lb = settings.behindLoadBalancer;
    if (lb !== undefined) {
        if (settings.mode !== "https") throw new Error("behindLoadBalancer: the load balancer serves HTTPS, so the edge's mode must be https");
        if (lb.trustedCidrs.length === 0) throw new Error("behindLoadBalancer: trustedCidrs is empty: no PROXY header would be trusted");
        for (const c of lb.trustedCidrs) {
            const [ip, bits] = c.split("/");
            if (bits === undefined || !isIpv4(ip) || !/^(3[0-2]|[12]?[0-9])$/.test(bits)) throw new Error(`behindLoadBalancer: ${JSON.stringify(c)} is not an IPv4 CIDR`);
        }
        if (!/^[A-Za-z0-9_.:[\]-]{1,300}$/.test(lb.localListen)) throw new Error(`behindLoadBalancer: localListen ${JSON.stringify(lb.localListen)} has characters nginx.conf cannot hold bare`);
        if (lb.localListen === settings.listenHttp) throw new Error("behindLoadBalancer: localListen must differ from listenHttp (one takes PROXY headers, the other does not)");
    }
}

function checkRoutes(routes: readonly Route[]): void {
    const seen = new Set<string>();
    for (const r of routes) {
        if (!/^[a-z][a-z0-9-]{0,30}$/.test(r.app)) throw new Error(`route name ${JSON.stringify(r.app)} is not a lowercase path segment`);
        if (r.app === "api" || r.app === "health" || r.app === ".well-known") throw new Error(`route name "${r.app}" is reserved by the edge`);
        if (seen.has(r.app)) throw new Error(`route "${r.app}" appears twice`);
        seen.add(r.app);
        checkUpstream(r.frontend);
        checkUpstream(r.backend);
    }
}

function indent(lines: string[], depth: number): string[] {
    return lines.map((l) => (l === "" ? l : "    ".repeat(depth) + l));
}

type Role = "frontend" | "backend";

function routeMarker(app: string, role: Role, u: Upstream): string {
    return `${ROUTE_MARKER} ${app}.${role} ${u.host}:${u.port}`;
}

/**
 * How a location reaches its container: through the route's switch, a symlink nginx resolves on every
 * request ($realpath_root), whose target's name is the address ($platform_upstream, mapped at http
 * level). Why not an `upstream` block: a release switch would then need a reload, and a reload makes
 * the old workers close their idle keep-alive connections, which fails the request a client is
 * sending on one at that moment (ECONNRESET for clients that do not retry: Node's, most HTTP
 * libraries', any POST). A link is re-pointed with one rename, and no client connection notices. The
 * price: nginx opens a connection to the app per request (no upstream keep-alive); bench:edge
 * measures it. `root` is only read for $realpath_root here: nothing is served from it.
 */
function proxyTo(settings: EdgeSettings, app: string, role: Role): string[] {
    return [`root ${settings.routeDir}/${app}.${role};`, "proxy_pass http://$platform_upstream;"];
}

/**
 * The response headers of one kind of location, rendered whole: an `add_header` in a location drops
 * every inherited one, so each location that sets its own carries the full set. Static values (no
 * map over the URI evaluated per response): `csp` undefined means none (the API answers for itself),
 * `cacheControl` undefined leaves the app's own Cache-Control alone.
 */
/** Whether answers carry HSTS: never over plain HTTP, always behind the balancer, else once certified. */
type Hsts = "never" | "always" | "once-certified";

function hstsOf(settings: EdgeSettings): Hsts {
    if (settings.mode === "http") return "never";
    const lb = settings.behindLoadBalancer;
    if (lb !== undefined) return lb.tls === false ? "never" : "always";
    return settings.tlsReadyFile !== undefined ? "once-certified" : "always";
}

function responseHeaders(hsts: Hsts, csp: string | undefined, cacheControl?: string): string[] {
    return [
        `add_header X-Request-ID $platform_request_id always;`,
        `add_header X-Content-Type-Options "nosniff" always;`,
        `add_header X-Frame-Options "DENY" always;`,
        `add_header Referrer-Policy "strict-origin-when-cross-origin" always;`,
        ...(csp !== undefined ? [`add_header Content-Security-Policy ${quote(csp)} always;`] : []),
        // Not `always`: as for any add_header without it, only on 2xx and 3xx answers.
        ...(cacheControl !== undefined ? [`add_header Cache-Control ${quote(cacheControl)};`] : []),
        ...(hsts === "always" ? [`add_header Strict-Transport-Security ${quote(HSTS_VALUE)} always;`] : []),
        // An empty value adds no header: none until the certificate is real (see tlsReadyFile).
        ...(hsts === "once-certified" ? ["add_header Strict-Transport-Security $platform_hsts always;"] : []),
    ];
}

const IMMUTABLE = "public, max-age=31536000, immutable";
const HSTS_VALUE = "max-age=63072000; includeSubDomains";

/**
 * What an upstream must not tell the world about itself: these response headers name its software
 * and version, and its own 5xx pages often do too (a framework's stack trace, "Apache Tomcat/9.0.1").
 * Every proxied location drops the headers (a location's own proxy_hide_header replaces the inherited
 * ones, so each carries the full list) and answers a 5xx with the platform's page, the status kept.
 * 4xx answers pass as the app sent them (an API's 404 or 422 body is the app's contract).
 */
export const HIDDEN_UPSTREAM_HEADERS: readonly string[] = ["X-Powered-By", "X-AspNet-Version", "X-AspNetMvc-Version", "X-Runtime", "X-Generator"];
export const UPSTREAM_ERROR_PAGE = "/platform-internal/upstream-error";
const UPSTREAM_ERROR_STATUSES = "500 502 503 504";

function hideUpstreamDetails(): string[] {
    return [...HIDDEN_UPSTREAM_HEADERS.map((h) => `proxy_hide_header ${h};`), `error_page ${UPSTREAM_ERROR_STATUSES} ${UPSTREAM_ERROR_PAGE};`];
}

function appLocations(r: Route, settings: EdgeSettings): string[] {
    const fe = proxyTo(settings, r.app, "frontend");
    const be = proxyTo(settings, r.app, "backend");
    const a = r.app;
    const csp = r.contentSecurityPolicy ?? DEFAULT_CSP;
    const page = responseHeaders(hstsOf(settings), csp, "no-cache");
    const api = responseHeaders(hstsOf(settings), undefined);
    // proxy_pass without a URI passes the client's URI as sent, or the rewritten one after
    // `rewrite ... break`, which is how the prefix is stripped. The file locations are nested in the
    // app's prefix, so no other request runs their regexes; they set everything they need themselves
    // (a nested location would inherit proxy_intercept_errors and error_page).
    // A file location nested in the app's prefix: the prefix stripped, the frontend's own Cache-Control
    // replaced by `headers`, and only the 5xx intercepted (a missing file stays the frontend's 404).
    const fileLocation = (pattern: string, headers: string[]) => [
        `    location ~ ${pattern} {`,
        `        rewrite ^/${a}(/.*)$ $1 break;`,
        `        proxy_hide_header Cache-Control;`,
        `        # Only the 5xx below are intercepted here: a missing file stays the frontend's 404.`,
        `        proxy_intercept_errors on;`,
        ...indent(hideUpstreamDetails(), 2),
        ...indent(fe, 2),
        ...indent(headers, 2),
        `    }`,
    ];
    return [
        // Not the containers: they are in the route lines only, so a release switch changes no loaded config.
        `# ${a}: its frontend and backend through routes/${a}.frontend and routes/${a}.backend (API prefix ${r.apiPrefix === "keep" ? "kept" : "stripped"})`,
        `location = /${a} { return 301 /${a}/; }`,
        `location /${a}/ {`,
        `    # An SPA route: a 404 from the frontend falls back to the app's index.html.`,
        `    rewrite ^/${a}(/.*)$ $1 break;`,
        `    proxy_hide_header Cache-Control;`,
        `    proxy_intercept_errors on;`,
        `    error_page 404 = @${a}_index;`,
        ...indent(hideUpstreamDetails(), 1),
        ...indent(fe, 1),
        ...indent(page, 1),
        `    # A file named with a content hash: cached for good.`,
        ...fileLocation(`"^/${a}/.*${HASHED_ASSET}"`, responseHeaders(hstsOf(settings), csp, IMMUTABLE)),
        `    # Any other file: served as the frontend answers it, a missing one stays a 404.`,
        ...fileLocation(`^/${a}/.*\\.[A-Za-z0-9]+$`, page),
        `}`,
        `location @${a}_index {`,
        `    rewrite ^ /index.html break;`,
        `    proxy_hide_header Cache-Control;`,
        `    proxy_intercept_errors on;`,
        ...indent(hideUpstreamDetails(), 1),
        ...indent(fe, 1),
        ...indent(page, 1),
        `}`,
        `location = /api/${a} {`,
        ...indent(api, 1),
        `    return 301 /api/${a}/;`,
        `}`,
        `location ^~ /api/${a}/ {`,
        `    limit_req zone=api_per_client burst=${settings.apiBurst} nodelay;`,
        ...(r.apiPrefix === "strip" ? [`    rewrite ^/api/${a}(/.*)$ $1 break;`] : []),
        `    proxy_intercept_errors on;`,
        ...indent(hideUpstreamDetails(), 1),
        ...indent(be, 1),
        ...indent(api, 1),
        `}`,
    ];
}

/** The edge's own endpoints for the container healthcheck and the apply script, from loopback only. */
function internalLocations(settings: EdgeSettings): string[] {
    return [
        `location = /health { access_log off; default_type text/plain; return 200 "ok\\n"; }`,
        `location = ${GENERATION_PATH} { allow 127.0.0.1; deny all; access_log off; default_type text/plain; return 200 "generation ${UNSTAMPED_GENERATION}\\n"; }`,
        // The address a route reaches now, read through the same link and map as the route itself.
        // Nested: only requests under the prefix run its regex.
        `location ^~ ${ROUTE_PROBE_PATH} {`,
        "    allow 127.0.0.1; deny all; access_log off; default_type text/plain;",
        `    location ~ "^${ROUTE_PROBE_PATH}(?<platform_route>[a-z][a-z0-9-]*\\.(?:frontend|backend))$" { root ${settings.routeDir}/$platform_route; return 200 "$platform_upstream\\n"; }`,
        `    return 404 "no such route\\n";`,
        "}",
    ];
}

function commonServerLines(settings: EdgeSettings): string[] {
    const hsts = hstsOf(settings);
    return [
        // Two anchored regexes on the raw path, compiled with pcre_jit: the only ones every request runs.
        `if ($request_uri ~* "${HOSTILE_PATH}") { return 400; }`,
        "# Dotfiles (.env, .git/, .htpasswd) of any app, encoded or not: never served.",
        `if ($request_uri ~ "${DOTFILE_PATH}") { return 404; }`,
        // What every location without its own headers answers with (the edge's own pages, redirects).
        ...responseHeaders(hsts, DEFAULT_CSP),
        ...internalLocations(settings),
        "# The page an app's 5xx is answered with (its status kept): no upstream's version or stack trace.",
        `location = ${UPSTREAM_ERROR_PAGE} {`,
        "    internal;",
        ...indent(responseHeaders(hsts, undefined), 1),
        "    default_type text/plain;",
        `    return 200 "the app could not answer this request\\n";`,
        "}",
    ];
}

function routingServerBody(routes: readonly Route[], settings: EdgeSettings): string[] {
    return [
        ...commonServerLines(settings),
        ...routes.flatMap((r) => ["", ...appLocations(r, settings)]),
        "",
        "# Anything no app claims is the edge's own 404, never another app's page (no CSP under /api/, as for the apps' APIs).",
        "location ^~ /api/ {",
        ...indent(responseHeaders(hstsOf(settings), undefined), 1),
        `    default_type text/plain;`,
        `    return 404 "not found\\n";`,
        "}",
        `location / { default_type text/plain; return 404 "not found\\n"; }`,
    ];
}

function acmeLocation(settings: EdgeSettings): string {
    return `location ^~ /.well-known/acme-challenge/ { root ${settings.acmeWebroot}; default_type text/plain; try_files $uri =404; }`;
}

/**
 * Requests for any name but the configured ones (or none) land here: no page, no redirect, nothing
 * that echoes the Host they sent; nginx closes the connection (444). Local clients too: the container
 * healthcheck and the apply script name the domain.
 */
function refusingServer(listen: string): string[] {
    return ["server {", ...indent([`listen ${listen} default_server;`, "return 444;"], 1), "}"];
}

export function renderNginxConfig(routes: readonly Route[], settings: EdgeSettings): string {
    checkRoutes(routes);
    checkSettings(settings);
    const names = serverNames(settings).join(" ");
    const sorted = [...routes].sort((x, y) => x.app.localeCompare(y.app));
    const httpsPortSuffix = settings.publicHttpsPort === 443 ? "" : `:${settings.publicHttpsPort}`;
    const lb = settings.behindLoadBalancer;
    const servers: string[] =
        lb !== undefined
            ? [
                  "# Connections come from the load balancer only, each opened by a PROXY protocol header.",
                  ...refusingServer(`${settings.listenHttp} proxy_protocol`),
                  "",
                  "# The container's own checks (healthcheck, generation probe): loopback, no PROXY header.",
                  "server {",
                  ...indent([`listen ${lb.localListen};`, ...internalLocations(settings), "location / { return 444; }"], 1),
                  "}",
                  "",
                  "server {",
                  ...indent(
                      [
                          `listen ${settings.listenHttp} proxy_protocol;`,
                          `server_name ${names};`,
                          "# Only the load balancer's connections are served ($realip_remote_addr: the connection's own address).",
                          "if ($platform_from_load_balancer = 0) { return 444; }",
                          ...routingServerBody(sorted, settings),
                      ],
                      1,
                  ),
                  "}",
              ]
            : settings.mode === "https"
            ? [
                  ...refusingServer(settings.listenHttp),
                  "",
                  "server {",
                  ...indent(
                      settings.tlsReadyFile !== undefined
                          ? [
                                `listen ${settings.listenHttp};`,
                                `server_name ${names};`,
                                "# Served over HTTP until a real certificate is installed; redirected to HTTPS from then on",
                                "# (the ACME path, /health and the loopback probes stay here).",
                                `if ($platform_to_https) { return 301 https://${settings.domain}${httpsPortSuffix}$request_uri; }`,
                                acmeLocation(settings),
                                ...routingServerBody(sorted, settings),
                            ]
                          : [
                                `listen ${settings.listenHttp};`,
                                `server_name ${names};`,
                                acmeLocation(settings),
                                ...internalLocations(settings),
                                // The configured domain, never $host: a redirect must not repeat what the client sent.
                                `location / { return 301 https://${settings.domain}${httpsPortSuffix}$request_uri; }`,
                            ],
                      1,
                  ),
                  "}",
                  "",
                  "server {",
                  ...indent(
                      [
                          `listen ${settings.listenHttps} ssl http2 default_server;`,
                          "# TLS for any other name (or none: clients send no SNI for an IP) fails at the handshake.",
                          "ssl_reject_handshake on;",
                          "return 444;",
                      ],
                      1,
                  ),
                  "}",
                  "",
                  "server {",
                  ...indent(
                      [
                          `listen ${settings.listenHttps} ssl http2;`,
                          `server_name ${names};`,
                          `ssl_certificate ${settings.certificate};`,
                          `ssl_certificate_key ${settings.certificateKey};`,
                          ...routingServerBody(sorted, settings),
                      ],
                      1,
                  ),
                  "}",
              ]
            : [
                  ...refusingServer(settings.listenHttp),
                  "",
                  "server {",
                  ...indent([`listen ${settings.listenHttp};`, `server_name ${names};`, acmeLocation(settings), ...routingServerBody(sorted, settings)], 1),
                  "}",
              ];

    const forwardedHost = settings.domain;
    // Behind the load balancer every routed request arrived over HTTPS (port 80 only redirects there), once it ends TLS.
    const scheme = lb !== undefined ? (lb.tls === false ? "http" : "https") : "$scheme";
    // A client address is IPv6 (or a unix socket's "unix:") only through an IPv6 or unix listener, or
    // from the load balancer's PROXY header: otherwise RFC 7239's quoting of such a node needs no
    // per-request regex.
    const ipv6Clients = lb !== undefined || [settings.listenHttp, settings.listenHttps].some((l) => l.includes("[") || l.startsWith("unix:"));
    const http: string[] = [
        "server_tokens off;",
        "default_type application/octet-stream;",
        "absolute_redirect off;",
        `log_format platform '$remote_addr [$time_local] "$request" $status $body_bytes_sent rt=$request_time ' 'upstream=$upstream_addr ust=$upstream_status id=$platform_request_id';`,
        // Buffered: one write per 64 KiB or per second instead of one per request (a pipe to Docker's log driver in production).
        `access_log ${settings.accessLog} platform buffer=64k flush=1s;`,
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
        "# HTTP/1.1 to the apps: needed for websocket upgrades.",
        "proxy_http_version 1.1;",
        "",
        ...(lb !== undefined
            ? [
                  "# TLS ends at the load balancer: the client's address comes from its PROXY header, trusted from the balancer only.",
                  ...lb.trustedCidrs.map((c) => `set_real_ip_from ${c};`),
                  "real_ip_header proxy_protocol;",
                  "geo $realip_remote_addr $platform_from_load_balancer {",
                  "    default 0;",
                  ...lb.trustedCidrs.map((c) => `    ${c} 1;`),
                  "}",
                  "",
              ]
            : settings.mode === "https"
            ? [
                  "# At http level: the handshake starts before SNI picks a server.",
                  "ssl_protocols TLSv1.2 TLSv1.3;",
                  "ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;",
                  "ssl_prefer_server_ciphers off;",
                  "ssl_session_cache shared:platform_tls:10m;",
                  "ssl_session_timeout 1d;",
                  "ssl_session_tickets off;",
                  "",
                  ...(settings.tlsReadyFile !== undefined
                      ? [
                            `# 1 once ${TLS_READY_FILE_NAME} says a real certificate is installed (hostScripts/issue-certificate.sh writes it).`,
                            'map "" $platform_tls_ready {',
                            "    default 0;",
                            "    # A pattern: a server without the file yet loads all the same.",
                            `    include ${settings.tlsReadyFile}*;`,
                            "}",
                            `map $platform_tls_ready $platform_hsts { 1 ${quote(HSTS_VALUE)}; default ""; }`,
                            `map "$platform_tls_ready:$uri" $platform_to_https { default 0; "~^1:/(?!\.well-known/acme-challenge/|health$|__platform/)" 1; }`,
                            "",
                        ]
                      : []),
              ]
            : []),
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
        "# Only a websocket upgrade is passed on; anything else (h2c, ...) is a plain request on a connection",
        "# of its own, which the app closes (so its TIME_WAIT is the app's, not the edge's ports).",
        `map $http_upgrade $platform_upgrade { "~*^websocket$" "websocket"; default ""; }`,
        `map $http_upgrade $platform_connection { "~*^websocket$" "upgrade"; default "close"; }`,
        "# A route's address: the name of the directory its switch links to (see the `root` of each route).",
        `map $realpath_root $platform_upstream { "~/((?:[0-9]{1,3}\\.){3}[0-9]{1,3}:[0-9]{1,5})$" $1; default ${UNRESOLVED_TARGET}; }`,
        "# A well-formed X-Request-ID from the client is kept, anything else is replaced by nginx's own.",
        `map $http_x_request_id $platform_request_id { "~^[A-Za-z0-9._-]{8,128}$" $http_x_request_id; default $request_id; }`,
        ...(ipv6Clients
            ? ["# RFC 7239 quotes an IPv6 node.", `map $remote_addr $platform_forwarded_for { "~:" '"[$remote_addr]"'; default $remote_addr; }`]
            : []),
        "",
        `limit_req_zone $binary_remote_addr zone=api_per_client:10m rate=${settings.apiRatePerSecond}r/s;`,
        "limit_req_status 429;",
        "",
        "# What the apps learn about the request comes from nginx, never from the client. Set here only:",
        "# one proxy_set_header in a location would silently drop every line below for that location.",
        `proxy_set_header Host ${forwardedHost};`,
        "proxy_set_header X-Real-IP $remote_addr;",
        "proxy_set_header X-Forwarded-For $remote_addr;",
        `proxy_set_header X-Forwarded-Proto ${scheme};`,
        `proxy_set_header X-Forwarded-Host ${forwardedHost};`,
        `proxy_set_header Forwarded "for=${ipv6Clients ? "$platform_forwarded_for" : "$remote_addr"};host=${forwardedHost};proto=${scheme}";`,
        "proxy_set_header X-Request-ID $platform_request_id;",
        "proxy_set_header Upgrade $platform_upgrade;",
        "proxy_set_header Connection $platform_connection;",
        ...CLEARED_REQUEST_HEADERS.map((h) => `proxy_set_header ${h} "";`),
        "# An app's response never redirects the edge internally (X-Accel-Redirect into another app) or changes how it serves.",
        `proxy_ignore_headers ${IGNORED_RESPONSE_HEADERS.join(" ")};`,
        "",
        ...servers,
    ];

    return [
        "# Rendered by the platform program (render/nginx.ts). Do not edit on the host: the next deployment replaces it.",
        ...(sorted.length > 0 ? ["# The containers each route switch points at (hostScripts/apply-nginx-config.sh):"] : []),
        ...sorted.flatMap((r) => [routeMarker(r.app, "frontend", r.frontend), routeMarker(r.app, "backend", r.backend)]),
        "worker_processes auto;",
        "# A few regexes run per request (hostile paths, dotfiles, an app's file locations, header checks): compiled, they cost little.",
        "pcre_jit on;",
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
