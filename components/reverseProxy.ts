import * as docker from "@pulumi/docker";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { containerHardening, containerRuntime, healthGateEntries } from "../render/containers";
import { EDGE_CONF_DIR, EdgeSettings, Route, TLS_READY_FILE_NAME, containerEdgeSettings, renderNginxConfig } from "../render/nginx";
import { readHostScript } from "../hostScripts";
import { installAndRunScript, runScript, shellQuote } from "../render/shell";
import { Host } from "./host";

export const EDGE_CONTAINER = "platform-edge";
export const EDGE_IMAGE = "nginx:1.27.3-alpine";
export const CERTBOT_IMAGE = "certbot/certbot:v2.11.0";
/** Where the certificate script is installed on the host, for its renewal cron job to run. */
export const CERTIFICATE_SCRIPT = "/srv/platform/bin/issue-certificate.sh";
/** The renewal cron job the certificate script installs and the command's delete removes. */
export const CERTIFICATE_CRON = "/etc/cron.d/platform-certificate";
/** Where the apply script is installed on the server, for the job that re-resolves container addresses. */
export const EDGE_APPLY_SCRIPT = "/srv/platform/bin/apply-nginx-config.sh";
/** The cron job that re-resolves the app containers' addresses every minute (server only). */
export const EDGE_REFRESH_CRON = "/etc/cron.d/platform-edge-refresh";
/**
 * Capabilities the edge gets back after all are dropped: the nginx master starts as root, binds
 * 80/443 (NET_BIND_SERVICE; Docker usually lowers the privileged port range in the container, other
 * engines do not), creates its temp directories on the tmpfs and hands them to the worker user (CHOWN),
 * and starts its workers as that user (SETUID, SETGID). Nothing else: no DAC_OVERRIDE, the files it
 * reads are root's or world-readable.
 */
export const EDGE_CAPABILITIES = ["NET_BIND_SERVICE", "SETUID", "SETGID", "CHOWN"] as const;

export interface AppNetworkAttachment {
    readonly app: string;
    /** Docker network name of the app (WebApp.network.name). */
    readonly network: pulumi.Input<string>;
}

export interface ReverseProxyArgs {
    readonly host: Host;
    /** `https` on a server with a domain (Let's Encrypt); `http` on the local stack. */
    readonly mode: "https" | "http";
    readonly domain: string;
    /** Let's Encrypt account email (https mode). */
    readonly acmeEmail?: string;
    /** Use Let's Encrypt's staging CA (untrusted certificates, generous rate limits). */
    readonly acmeStaging?: boolean;
    /** http mode: the loopback port the edge is published on. */
    readonly localHttpPort?: number;
    /** Routes to serve, one per app, carrying the current container names. */
    readonly routes: pulumi.Input<Route>[];
    /** App networks the edge joins (and nothing else: never the database network). */
    readonly appNetworks: readonly AppNetworkAttachment[];
    readonly memoryMb: number;
    /**
     * Several hosts: the load balancer ends TLS and holds the certificate, so the edge serves its
     * routes on port 80 to PROXY-protocol connections from the balancer's own private address only
     * (render/nginx.ts) and asks Let's Encrypt for nothing. The container itself is the same (same ports): switching
     * between one host and several changes only the config applied with a reload.
     */
    readonly behindLoadBalancer?: BehindLoadBalancerArgs;
}

export interface BehindLoadBalancerArgs {
    /** The load balancer's private IPv4 address: the only one whose connections and PROXY headers the edge takes. */
    readonly address: pulumi.Input<string>;
    /** Where the container's own checks reach nginx without a PROXY header, e.g. `127.0.0.1:80`. */
    readonly localListen: string;
    /** Whether the balancer ends TLS yet (its certificate exists); unset: it does. */
    readonly tls?: pulumi.Input<boolean>;
}

/**
 * The nginx edge. The container owns ports 80/443 and is created once; routing changes never touch
 * it. The rendered config is applied to the running nginx by hostScripts/apply-nginx-config.sh: a
 * release switch re-points the route's link (no reload, so no client connection is closed); a new
 * config (apps added or removed, settings) goes through nginx -t, an atomic swap and a graceful
 * reload. The edge joins app networks with `docker network connect`, since any change to a
 * container's own network list would recreate it and drop traffic.
 */
export class ReverseProxy extends pulumi.ComponentResource {
    public readonly container: docker.Container;
    public readonly config: pulumi.Resource;
    /** The nginx.conf applied by this deployment. */
    public readonly renderedConfig: pulumi.Output<string>;

    constructor(name: string, args: ReverseProxyArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:edge:ReverseProxy", name, {}, opts);
        const { host } = args;
        const dockerOpts = { parent: this, provider: host.docker };
        const settings = containerEdgeSettings(args.mode, args.domain);
        const lb = args.behindLoadBalancer;
        const routeSettings: pulumi.Output<EdgeSettings> =
            lb === undefined
                ? pulumi.output(settings)
                : pulumi
                      .all([lb.address, lb.tls ?? true])
                      .apply(([address, tls]) => ({ ...settings, behindLoadBalancer: { trustedCidrs: [`${address}/32`], localListen: lb.localListen, tls } }));
        const paths = host.paths;

        // nginx needs a valid config at its first start; the bootstrap config depends on nothing that
        // changes between deployments, so this command never re-runs.
        const bootstrapConfig = renderNginxConfig([], settings);
        const prepare = host.runCommand(
            `${name}-prepare`,
            {
                create: [
                    `mkdir -p ${Object.values(paths).map(shellQuote).join(" ")}`,
                    `[ -f ${shellQuote(paths.nginx + "/nginx.conf")} ] || cat > ${shellQuote(paths.nginx + "/nginx.conf")} <<'PLATFORM_NGINX_EOF'`,
                    bootstrapConfig.replace(/\n$/, ""),
                    "PLATFORM_NGINX_EOF",
                    ...(args.mode === "https"
                        ? [
                              // A placeholder until Let's Encrypt answers, so nginx can start with TLS.
                              `[ -f ${shellQuote(paths.certs + "/fullchain.pem")} ] || openssl req -x509 -newkey rsa:2048 -nodes -days 30 ` +
                                  `-subj ${shellQuote("/CN=" + args.domain)} -keyout ${shellQuote(paths.certs + "/privkey.pem")} -out ${shellQuote(paths.certs + "/fullchain.pem")}`,
                          ]
                        : []),
                ].join("\n"),
                delete: "true",
            },
            { parent: this },
        );

        const network = new docker.Network(`${name}-network`, { name: "platform-edge", driver: "bridge" }, dockerOpts);
        const image = new docker.RemoteImage(`${name}-image`, { name: EDGE_IMAGE, keepLocally: true }, dockerOpts);

        const ports: docker.types.input.ContainerPort[] =
            args.mode === "https"
                ? [
                      { internal: 80, external: 80 },
                      { internal: 443, external: 443 },
                  ]
                : [{ internal: 80, external: args.localHttpPort ?? 8080, ip: "127.0.0.1" }];

        this.container = new docker.Container(
            `${name}-container`,
            {
                name: EDGE_CONTAINER,
                image: image.imageId,
                command: ["nginx", "-c", `${EDGE_CONF_DIR}/nginx.conf`, "-g", "daemon off;"],
                ports,
                volumes: [
                    { hostPath: paths.nginx, containerPath: EDGE_CONF_DIR, readOnly: true },
                    { hostPath: paths.certs, containerPath: "/etc/platform/certs", readOnly: true },
                    { hostPath: paths.acme, containerPath: settings.acmeWebroot, readOnly: true },
                ],
                networksAdvanced: [{ name: network.name }],
                // The edge refuses any Host but its domain, local clients included.
                healthcheck: { tests: ["CMD", "wget", "-q", "-O", "/dev/null", "-T", "3", `--header=Host:${args.domain}`, "http://127.0.0.1/health"], interval: "5s", timeout: "3s", retries: 3 },
                wait: true,
                waitTimeout: 60,
                // Read-only root: nginx writes only its pid file and temp files, all under /tmp (a tmpfs,
                // see containerEdgeSettings). The image's entrypoint scripts find /etc/nginx read-only and skip.
                ...containerHardening(args.memoryMb, { capabilities: [...EDGE_CAPABILITIES], readOnlyRootFilesystem: true, writablePaths: ["/tmp"] }, true),
                ...containerRuntime(),
                labels: [
                    { label: "platform.role", value: "edge" },
                    { label: "platform.stack", value: pulumi.getStack() },
                ],
            },
            {
                ...dockerOpts,
                dependsOn: [prepare],
                // Two containers cannot hold ports 80/443: replacing the edge is delete-first (and rare).
                deleteBeforeReplace: true,
                // App networks are attached by the commands below; their presence in the refreshed
                // state must not read as a change that recreates the edge.
                ignoreChanges: ["networksAdvanced"],
            },
        );

        const attachments = args.appNetworks.map((attachment) => {
            const script = pulumi.interpolate`# edge container ${this.container.id}
docker network connect ${attachment.network} ${EDGE_CONTAINER} 2>/dev/null || docker network inspect ${attachment.network} --format '{{range .Containers}}{{.Name}} {{end}}' | grep -qw ${EDGE_CONTAINER}`;
            return host.runCommand(
                `${name}-joins-${attachment.app}`,
                // An update (not a replace) when the edge is recreated, so no old `delete` undoes the new connection.
                { create: script, update: script, delete: pulumi.interpolate`docker network disconnect ${attachment.network} ${EDGE_CONTAINER} || true` },
                { parent: this, dependsOn: [this.container] },
            );
        });

        this.renderedConfig = pulumi.all([pulumi.all(args.routes), routeSettings]).apply(([routes, s]) => renderNginxConfig(routes, s));
        const applyEnv = {
            CONF_DIR: paths.nginx,
            NGINX_CONF_DIR: EDGE_CONF_DIR,
            NGINX_CMD: `docker exec ${EDGE_CONTAINER} nginx`,
            // Resolved inside the edge, through Docker's DNS: the address on the network it shares with
            // the container (a backend is also on the database network), never another app's.
            RESOLVE_CMD: `docker exec ${EDGE_CONTAINER} getent hosts`,
            // One word per argument (the script splits it and appends the path): busybox wget takes --header=Host:NAME.
            PROBE_CMD: `docker exec ${EDGE_CONTAINER} wget -qO- -T 3 --header=Host:${args.domain} http://127.0.0.1`,
        };
        const apply = runScript(readHostScript("apply-nginx-config.sh"), applyEnv);
        // The health gate first: the containers the new config routes to and the live one does not
        // must turn healthy within their bounds, or nothing is applied and they are stopped.
        const gated = pulumi.all(args.routes).apply((routes) => {
            const gate = runScript(readHostScript("health-gate.sh"), { CONTAINERS: healthGateEntries(routes.flatMap((r) => [r.frontend, r.backend])), LIVE_CONF: `${paths.nginx}/nginx.conf` });
            return `${gate} </dev/null && ${apply}`;
        });
        this.config = host.runCommand(
            `${name}-routes`,
            // create and update are the same script: a route change updates this resource in place.
            // Its delete leaves the live config alone: removing it would undo a switch just made.
            { create: gated, update: gated, stdin: this.renderedConfig, delete: "true" },
            { parent: this, dependsOn: [this.container, ...attachments] },
        );

        if (host.kind === "scaleway") {
            // Container addresses are resolved when a config is applied. A container Docker restarts
            // (a crash, a reboot of the server) may come back with another address on its app network;
            // re-resolving every minute (a link re-pointed, no reload) bounds how long its routes answer
            // 502 or reach a sibling container of the same app. It also completes an interrupted apply.
            // Not on the local stack: that is a laptop's crontab; re-run the apply there.
            const refresh = [
                `mkdir -p ${shellQuote(path.posix.dirname(EDGE_APPLY_SCRIPT))}`,
                `cat > ${shellQuote(EDGE_APPLY_SCRIPT)} <<'PLATFORM_SCRIPT_EOF'`,
                readHostScript("apply-nginx-config.sh").replace(/\n$/, ""),
                "PLATFORM_SCRIPT_EOF",
                `cat > ${shellQuote(EDGE_REFRESH_CRON)} <<'PLATFORM_CRON_EOF'`,
                `* * * * * root ${runScript(`exec sh ${shellQuote(EDGE_APPLY_SCRIPT)} --refresh`, applyEnv)} 2>&1 | logger -t platform-edge-refresh`,
                "PLATFORM_CRON_EOF",
            ].join("\n");
            host.runCommand(
                `${name}-refresh`,
                // An update, not a replace: a replaced command's delete would run last and remove the new job.
                { create: refresh, update: refresh, delete: `rm -f ${shellQuote(EDGE_REFRESH_CRON)}` },
                { parent: this, dependsOn: [this.config] },
            );
        }

        if (args.mode === "https" && args.behindLoadBalancer === undefined) {
            if (!args.acmeEmail) throw new Error("ReverseProxy: https mode needs acmeEmail");
            const issue = installAndRunScript(CERTIFICATE_SCRIPT, readHostScript("issue-certificate.sh"), {
                SELF: CERTIFICATE_SCRIPT,
                CRON_FILE: CERTIFICATE_CRON,
                DOMAIN: args.domain,
                EMAIL: args.acmeEmail,
                STAGING: String(args.acmeStaging ?? false),
                LETSENCRYPT_DIR: paths.letsencrypt,
                ACME_DIR: paths.acme,
                CERTS_DIR: paths.certs,
                EDGE_CONTAINER,
                EDGE_CONF: `${EDGE_CONF_DIR}/nginx.conf`,
                CERTBOT_IMAGE,
                // The host's side of settings.tlsReadyFile: written once the certificate is real.
                TLS_READY_FILE: `${paths.nginx}/${TLS_READY_FILE_NAME}`,
            });
            host.runCommand(
                `${name}-certificate`,
                // An update, not a replace, when settings change: a replaced command's delete would
                // run last and remove the renewal job the new one just installed.
                { create: issue, update: issue, delete: `rm -f ${shellQuote(CERTIFICATE_CRON)}` },
                { parent: this, dependsOn: [this.config] },
            );
        }

        this.registerOutputs({ container: this.container.name });
    }
}
