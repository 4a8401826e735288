// The platform, composed from a validated config by one code path for every shape (issue #17):
// hosts 0..N-1 (host 0 is the default one), a database server (a container on host 0, or Scaleway's
// managed PostgreSQL), the apps on every host, an edge per host, a load balancer when N > 1, backups,
// and the outputs. `hosts: 1, database: container` is just the default: host 0 keeps the names the
// single-server stack always had (render/scale.ts), so moving between shapes replaces nothing of it.
// index.ts calls definePlatform; tests call it once per stack.
import * as pulumi from "@pulumi/pulumi";
import { AppDatabase } from "./appDatabase";
import { Backups } from "./backups";
import { Host } from "./host";
import { LocalHost } from "./localHost";
import { PlatformLoadBalancer } from "./loadBalancer";
import { resolveIpv4 } from "../io/dnsLookup";
import { ManagedDatabase } from "./managedDatabase";
import { OpenAdminChannel, PostgresServer } from "./postgresServer";
import { HostAttachment, PlatformNetwork } from "./privateNetwork";
import { ReverseProxy } from "./reverseProxy";
import { ScalewayHost } from "./scalewayHost";
import { WebApp } from "./webApp";
import { openForward, stablePort } from "../io/adminChannel";
import { DeployedApp, PlatformConfig } from "../config/platformConfig";
import { MANAGED_DATABASE_TARGET } from "../render/backup";
import { databaseConnectionLimit } from "../render/postgres";
import { MANAGED_ADMIN_PORT, hostName, hostPrefix } from "../render/scale";

/** Port the PostgreSQL forwarder publishes on the host's loopback (the server itself publishes nothing). */
export const POSTGRES_PUBLISHED_PORT = { scaleway: 5432, local: 15432 } as const;

export interface AppOutputs {
    readonly url: pulumi.Output<string>;
    readonly apiUrl: pulumi.Output<string>;
    readonly release: string;
    /** Database and role names; absent for apps without a database. */
    readonly database?: pulumi.Output<string>;
    readonly role?: pulumi.Output<string>;
}

/** What the stack exports for one app, on any shape: its URLs from the origin, its release, its database and role. */
export function appOutputs(
    origin: string,
    deployed: DeployedApp,
    database?: { readonly databaseName: pulumi.Output<string>; readonly roleName: pulumi.Output<string> },
): AppOutputs {
    const name = deployed.definition.name;
    return {
        url: pulumi.output(`${origin}/${name}/`),
        apiUrl: pulumi.output(`${origin}/api/${name}/`),
        release: deployed.release,
        database: database?.databaseName,
        role: database?.roleName,
    };
}

export interface PlatformOutputs {
    readonly publicIp: pulumi.Output<string>;
    readonly baseUrl: pulumi.Output<string>;
    readonly apps: Record<string, AppOutputs>;
    /** Secret: app name → DATABASE_URL as the app's backend sees it. */
    readonly databaseUrls: pulumi.Output<Record<string, string>>;
    /** Backups (absent without an app database): bucket name (a directory on the local stack) and its endpoint. */
    readonly backupBucket?: pulumi.Output<string>;
    readonly backupEndpoint?: pulumi.Output<string>;
    /** Several hosts: whether the load balancer has its certificate and ends TLS (false until the domain resolves to it). */
    readonly loadBalancerTls?: pulumi.Output<boolean>;
    /** Secret, prod: the backup drill's own read-only API key (`{ accessKey, secretKey }`). */
    readonly backupDrillKey?: pulumi.Output<{ accessKey: string; secretKey: string }>;
}

export interface PlatformDependencies {
    /** Opens the prod admin channel; tests replace it to observe what the program asks for. */
    readonly openForward?: typeof openForward;
    /** What DNS answers for the domain (the load balancer's certificate waits for it); by default the system's resolver. */
    readonly resolveAddresses?: (domain: string) => Promise<string[]>;
}

/**
 * prod: the provider reaches PostgreSQL through an SSH forward through host 0, opened during `up` once
 * the host and the forwarder exist. A preview opens nothing: on an empty stack the endpoint is unknown;
 * on an existing one it is the stack's stable port, so the provider's config reads as unchanged.
 */
function sshAdminChannel(host: ScalewayHost, open: typeof openForward): OpenAdminChannel {
    const port = stablePort(pulumi.getProject(), pulumi.getStack());
    return (publishedPort, after) =>
        pulumi.all([host.publicAddress, host.sshOptions, after]).apply(async ([address, sshOptions]) => {
            if (pulumi.runtime.isDryRun()) return { host: "127.0.0.1", port };
            const forward = await open({ destination: `root@${address}`, remote: `127.0.0.1:${publishedPort}`, sshOptions, preferredPort: port });
            return { host: forward.host, port: forward.port };
        });
}

/** local: PostgreSQL is published on this machine's loopback. */
const directAdminChannel: OpenAdminChannel = (publishedPort, after) => after.apply(() => ({ host: "127.0.0.1", port: publishedPort }));

/**
 * Makes every container of a component wait for `after` (the previous host's switch): a transformation
 * reaches the component's children, which a component's own dependsOn does not.
 */
function startsAfter(after: pulumi.Resource): pulumi.ResourceTransformation {
    return (args) =>
        args.type === "docker:index/container:Container" ? { props: args.props, opts: pulumi.mergeOptions(args.opts, { dependsOn: [after] }) } : undefined;
}

export function definePlatform(config: PlatformConfig, deps: PlatformDependencies = {}): PlatformOutputs {
    const onCloud = config.target === "scaleway";
    // config/platformConfig.ts refuses several hosts on the container database, and both on the local target.
    const managed = onCloud && config.scale.database === "managed";
    const hostCount = onCloud ? config.scale.hosts : 1;
    const behindLoadBalancer = hostCount > 1;
    const registryAuth =
        config.registryUsername && config.registryToken
            ? [{ address: "ghcr.io", username: config.registryUsername, password: pulumi.secret(config.registryToken) }]
            : undefined;

    // --- Hosts, and the private network the managed database and the load balancer need. ---
    const network = managed ? new PlatformNetwork("network") : undefined;
    const hosts: Host[] = [];
    const attachments: HostAttachment[] = [];
    let openAdminChannel: OpenAdminChannel = directAdminChannel;
    if (!onCloud) hosts.push(new LocalHost("host", { stateDir: ".platform/local", registryAuth }));
    for (let i = 0; onCloud && i < hostCount; i++) {
        const containerForward = `127.0.0.1:${POSTGRES_PUBLISHED_PORT.scaleway}`;
        const host = new ScalewayHost(hostName(i), {
            instanceType: config.instanceType,
            alertWebhookUrl: config.alertWebhookUrl ? pulumi.secret(config.alertWebhookUrl) : undefined,
            sshPublicKey: config.sshPublicKey,
            adminCidrs: config.adminCidrs,
            sshFromAnywhere: config.sshFromAnywhere,
            // The forwards sshd permits: the admin channel's (sshAdminChannel's `remote`). Host 0 of the
            // managed shape keeps the container database's (a migrating stack still has it) and adds the managed one's.
            sshPermitOpen: managed && i === 0 ? [containerForward, `127.0.0.1:${MANAGED_ADMIN_PORT}`] : [containerForward],
            registryAuth,
            publicWeb: behindLoadBalancer ? false : undefined,
            stateless: i > 0 ? true : undefined,
        });
        hosts.push(host);
        if (network !== undefined) attachments.push(new HostAttachment(`${hostName(i)}-private`, { privateNetworkId: network.privateNetwork.id, serverId: host.server.id }));
        if (i === 0) openAdminChannel = sshAdminChannel(host, deps.openForward ?? openForward);
    }
    const defaultHost = hosts[0];

    // --- The database server and one database per app. ---
    const server = managed
        ? new ManagedDatabase(
              "managed-db",
              {
                  nodeType: config.scale.managedDatabaseNodeType,
                  ha: config.scale.managedDatabaseHa,
                  backupRetentionDays: config.scale.managedDatabaseBackupDays,
                  privateNetworkId: network!.privateNetwork.id,
                  adminHost: defaultHost,
                  openAdminChannel,
              },
              // Host 0's relay reaches the instance through its private NIC.
              { dependsOn: [attachments[0].nic] },
          )
        : new PostgresServer("postgres", {
              host: defaultHost,
              memoryMb: config.memory.postgresMb,
              publishedPort: POSTGRES_PUBLISHED_PORT[config.target],
              openAdminChannel,
          });

    const origin = onCloud ? `https://${config.domain}` : `http://localhost:${config.localHttpPort}`;
    const apps: Record<string, AppOutputs> = {};
    const databaseUrls: Record<string, pulumi.Output<string>> = {};
    const appDatabases = new Map<string, AppDatabase>();
    for (const deployed of config.apps) {
        const name = deployed.definition.name;
        const db = deployed.definition.database
            ? new AppDatabase(`${name}-db`, {
                  app: name,
                  server,
                  passwordVersion: deployed.passwordVersion,
                  connectionLimit: databaseConnectionLimit(deployed.definition),
              })
            : undefined;
        if (db !== undefined) {
            appDatabases.set(name, db);
            databaseUrls[name] = db.databaseUrl;
        }
        apps[name] = appOutputs(origin, deployed, db);
    }

    // In front of several hosts; declared before the edges, which take its connections alone.
    const loadBalancer = behindLoadBalancer
        ? new PlatformLoadBalancer("lb", {
              domain: config.domain,
              privateNetworkId: network!.privateNetwork.id,
              serverIps: attachments.map((a) => a.address),
              resolveAddresses: deps.resolveAddresses ?? resolveIpv4,
              // This stack's own outputs as the last deployment left them: a certificate once issued stays.
              alreadyTls: new pulumi.StackReference("lb-previous-deployment", { name: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}` })
                  .getOutput("loadBalancerTls")
                  .apply((v) => v === true),
          })
        : undefined;

    // --- The apps and an edge on every host, one host after another: host i's containers start only
    // once host i-1's edge has applied the new routes, so a release that fails its health check stops
    // at the first host (render/scale.ts). ---
    let previousSwitch: pulumi.Resource | undefined;
    hosts.forEach((host, i) => {
        const chain = previousSwitch === undefined ? undefined : { transformations: [startsAfter(previousSwitch)] };
        const webApps = config.apps.map((deployed) => {
            const db = appDatabases.get(deployed.definition.name);
            return new WebApp(
                `${hostPrefix(i)}${deployed.definition.name}`,
                {
                    app: deployed.definition,
                    release: deployed.release,
                    provider: host.docker,
                    databaseUrl: db?.databaseUrl,
                    databaseNetwork: db?.network?.name,
                    databaseReady: db?.ready,
                    // The first host migrates; the next ones start once it has switched (startsAfter).
                    migrationHost: i === 0 ? host : undefined,
                },
                chain,
            );
        });
        const edge = new ReverseProxy(
            `${hostPrefix(i)}edge`,
            {
                host,
                mode: onCloud ? "https" : "http",
                domain: config.domain,
                acmeEmail: config.acmeEmail,
                acmeStaging: config.acmeStaging,
                localHttpPort: config.localHttpPort,
                routes: webApps.map((w) => w.route),
                appNetworks: webApps.map((w) => ({ app: w.appName, network: w.network.name })),
                memoryMb: config.memory.edgeMb,
                behindLoadBalancer: loadBalancer === undefined ? undefined : { address: loadBalancer.privateAddress, localListen: "127.0.0.1:80", tls: loadBalancer.tls },
            },
            chain,
        );
        previousSwitch = edge.config;
    });

    // --- Nightly encrypted backups of every app database, from host 0: the same bucket, lock, put-only
    // host key and policy on every shape (a stack moving to the managed database keeps it, URN and all).
    // On the managed shape the cron job dumps through the client container as the admin, a member of
    // every app role. ---
    const backups =
        appDatabases.size === 0
            ? undefined
            : new Backups("backups", {
                  host: defaultHost,
                  apps: [...appDatabases.keys()],
                  settings: config.backup,
                  region: new pulumi.Config("scaleway").get("region"),
                  administrators: onCloud ? config.backup.administrators : undefined,
                  localDir: managed ? undefined : ".platform/local",
                  database: managed ? MANAGED_DATABASE_TARGET : undefined,
                  dependsOn: [...(server instanceof ManagedDatabase ? [server.client] : []), ...appDatabases.values()],
              });

    const publicIp = loadBalancer === undefined ? defaultHost.publicAddress : loadBalancer.address;

    return {
        publicIp,
        baseUrl: pulumi.output(`${origin}/`),
        apps,
        databaseUrls: pulumi.secret(pulumi.all(databaseUrls)),
        backupBucket: backups?.bucket,
        backupEndpoint: backups?.endpoint,
        backupDrillKey: backups?.drillKey,
        loadBalancerTls: loadBalancer?.tls,
    };
}
