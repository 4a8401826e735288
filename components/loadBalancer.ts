import * as pulumi from "@pulumi/pulumi";
import * as scaleway from "@pulumiverse/scaleway";
import { LB_HEALTH_PATH, LB_PROXY_PROTOCOL, LB_TIMING, LB_TYPE, LoadBalancerTiming, seconds, stripPrefixLength } from "../render/scale";

export interface PlatformLoadBalancerArgs {
    /** Domain served with HTTPS; its A record must point at `address` before the certificate can be issued. */
    readonly domain: string;
    readonly privateNetworkId: pulumi.Input<string>;
    /** Private addresses of the hosts' edges, in host order. */
    readonly serverIps: pulumi.Input<string>[];
    readonly timing?: LoadBalancerTiming;
    /**
     * The domain's IPv4 addresses as DNS answers now ([] when it does not resolve). The certificate is
     * requested only once they include the balancer's address: Scaleway refuses (HTTP 400) a Let's
     * Encrypt certificate for a name that does not resolve to the balancer, which would fail the first
     * `up` of every new stack.
     */
    readonly resolveAddresses: (domain: string) => Promise<string[]>;
    /**
     * Whether the previous deployment's balancer already had its certificate (the stack output
     * loadBalancerTls). Once it has one it keeps it, whatever DNS answers later: a lookup that fails
     * on a CI runner must never take HTTPS away.
     */
    readonly alreadyTls: pulumi.Input<boolean>;
}

/**
 * Scaleway Load Balancer in front of every host's edge.
 *
 * - TLS ends here, with a Let's Encrypt certificate Scaleway obtains and renews: one certificate for
 *   every host, no certificate to copy between hosts, no ACME challenge that could land on the wrong
 *   host. Port 80 redirects every request to HTTPS (301). Until the domain resolves to the balancer's
 *   address (a new stack's first `up`), there is no certificate yet: port 80 serves the apps over
 *   plain HTTP, and `tls` is false; the first `up` after the record exists adds the certificate, the
 *   HTTPS frontend and the redirect (Scaleway issues certificates only for names that resolve to it).
 * - Backends: each host's edge on port 80 of its private address, over the private network only,
 *   with PROXY protocol v2 so the edge sees (and rate-limits by) the client's address.
 * - Health: HTTP GET /health with the domain as Host (the edge refuses other names), PROXY header
 *   included, every 2 s; a host is marked down after 2 allowed failures and its sessions are closed
 *   (`shutdown_sessions`); a refused connection is retried on another host. See render/scale.ts for the
 *   timing argument.
 * - The address is protected: DNS points at it.
 */
export class PlatformLoadBalancer extends pulumi.ComponentResource {
    public readonly ip: scaleway.loadbalancers.Ip;
    public readonly privateIp: scaleway.ipam.Ip;
    public readonly loadBalancer: scaleway.loadbalancers.LoadBalancer;
    public readonly backend: scaleway.loadbalancers.Backend;
    public readonly http: scaleway.loadbalancers.Frontend;
    /** Whether the domain resolves to the balancer, so it has its certificate and ends TLS. */
    public readonly tls: pulumi.Output<boolean>;
    public readonly address: pulumi.Output<string>;
    /** Its address on the private network, without prefix length: the edges take connections and PROXY headers from it alone. */
    public readonly privateAddress: pulumi.Output<string>;

    constructor(name: string, args: PlatformLoadBalancerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:edge:PlatformLoadBalancer", name, {}, opts);
        const t = args.timing ?? LB_TIMING;
        if (!/^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/.test(args.domain)) {
            throw new Error(`load balancer: ${JSON.stringify(args.domain)} is not a lowercase domain name`);
        }
        const child = { parent: this };

        this.ip = new scaleway.loadbalancers.Ip(`${name}-ip`, { tags: ["platform"] }, { ...child, protect: true });
        this.privateIp = new scaleway.ipam.Ip(`${name}-private-ip`, { sources: [{ privateNetworkId: args.privateNetworkId }], tags: ["platform"] }, child);
        this.privateAddress = this.privateIp.address.apply(stripPrefixLength);
        this.loadBalancer = new scaleway.loadbalancers.LoadBalancer(
            `${name}-lb`,
            {
                name: "platform",
                type: LB_TYPE,
                ipIds: [this.ip.id],
                privateNetworks: [{ privateNetworkId: args.privateNetworkId, ipamIds: this.privateIp.id }],
                sslCompatibilityLevel: "ssl_compatibility_level_intermediate",
                description: "platform: TLS and health-checked balancing in front of every host's edge",
                tags: ["platform"],
            },
            child,
        );

        this.backend = new scaleway.loadbalancers.Backend(
            `${name}-edges`,
            {
                lbId: this.loadBalancer.id,
                name: "edges",
                forwardProtocol: "http",
                forwardPort: 80,
                forwardPortAlgorithm: "roundrobin",
                stickySessions: "none",
                serverIps: args.serverIps,
                proxyProtocol: LB_PROXY_PROTOCOL,
                healthCheckPort: 80,
                healthCheckHttp: { uri: LB_HEALTH_PATH, method: "GET", code: 200, hostHeader: args.domain },
                healthCheckSendProxy: true,
                healthCheckDelay: seconds(t.healthCheckDelaySeconds),
                healthCheckTimeout: seconds(t.healthCheckTimeoutSeconds),
                healthCheckMaxRetries: t.healthCheckMaxRetries,
                healthCheckTransientDelay: seconds(t.healthCheckTransientDelaySeconds),
                onMarkedDownAction: "shutdown_sessions",
                timeoutConnect: seconds(t.connectTimeoutSeconds),
                timeoutServer: seconds(t.serverTimeoutSeconds),
                timeoutTunnel: seconds(t.tunnelTimeoutSeconds),
                maxRetries: t.connectRetries,
                redispatchAttemptCount: t.redispatchAttemptCount,
            },
            child,
        );

        // Whether the domain points here yet, asked in every preview and up once the address is known.
        this.tls = pulumi.all([this.ip.ipAddress, args.alreadyTls]).apply(async ([address, already]) => {
            if (already) return true;
            const answers = await args.resolveAddresses(args.domain);
            const pointing = answers.includes(address);
            if (!pointing) {
                pulumi.log.warn(
                    `load balancer: ${args.domain} does not resolve to ${address} yet (DNS answers ${answers.length ? answers.join(", ") : "nothing"}), so it has no certificate: ` +
                        `it serves the apps over plain HTTP until then. Create the record in the stack output dnsRecord, then run pulumi up again for its certificate and HTTPS.`,
                    this,
                );
            }
            return pointing;
        });
        const certified = this.tls.apply((pointing) => {
            if (!pointing) return undefined;
            // Create-before-delete (Pulumi's default, said explicitly): a renamed domain gets its new
            // certificate before the frontend lets go of the old one.
            const certificate = new scaleway.loadbalancers.Certificate(
                `${name}-certificate`,
                { lbId: this.loadBalancer.id, name: args.domain, letsencrypt: { commonName: args.domain } },
                { ...child, deleteBeforeReplace: false },
            );
            const https = new scaleway.loadbalancers.Frontend(
                `${name}-https`,
                {
                    lbId: this.loadBalancer.id,
                    backendId: this.backend.id,
                    name: "https",
                    inboundPort: 443,
                    certificateIds: [certificate.id],
                    timeoutClient: seconds(t.serverTimeoutSeconds),
                },
                child,
            );
            return https.id;
        });
        this.http = new scaleway.loadbalancers.Frontend(
            `${name}-http`,
            {
                lbId: this.loadBalancer.id,
                backendId: this.backend.id,
                name: "http-redirect",
                inboundPort: 80,
                timeoutClient: seconds(t.serverTimeoutSeconds),
                // Only once the HTTPS frontend exists: before, port 80 is the only way in.
                acls: pulumi.all([this.tls, certified]).apply(([pointing]) =>
                    pointing
                        ? [
                              {
                                  name: "https-only",
                                  description: "every plain-HTTP request is redirected to HTTPS",
                                  action: { type: "redirect", redirects: [{ type: "scheme", target: "https", code: 301 }] },
                                  match: { ipSubnets: ["0.0.0.0/0", "::/0"] },
                              },
                          ]
                        : [],
                ),
            },
            child,
        );

        this.address = this.ip.ipAddress;
        this.registerOutputs({ address: this.address });
    }
}
