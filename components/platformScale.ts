// The platform outgrown one server (issue #12): `database: managed` and/or `hosts` > 1 on the
// scaleway target. platform.ts hands over to defineScaledPlatform for those configs only, so the
// default config's graph is untouched. Host 0 keeps every name it has in the single-server stack, so
// moving between 1 and several hosts replaces nothing of it.
import * as pulumi from "@pulumi/pulumi";
import { Backups, deployingIdentity } from "./backups";
import { ReverseProxy } from "./reverseProxy";
import { HostAttachment, PlatformNetwork } from "./privateNetwork";
import { ManagedAppDatabase, ManagedDatabase } from "./managedDatabase";
import { PlatformLoadBalancer } from "./loadBalancer";
import { OpenAdminChannel } from "./postgresServer";
import { ScalewayHost } from "./scalewayHost";
import { WebApp } from "./webApp";
import { openForward, stablePort } from "../io/adminChannel";
import { MANAGED_DATABASE_TARGET } from "../render/backup";
import { PlatformConfig } from "../config/platformConfig";
import { databaseConnectionLimit } from "../render/postgres";
import { MANAGED_ADMIN_PORT, hostName, hostPrefix } from "../render/scale";
import { appOutputs } from "./platform";
import type { AppOutputs, PlatformDependencies, PlatformOutputs } from "./platform";

/** Port of the container database's forwarder on host 0 (platform.ts's POSTGRES_PUBLISHED_PORT.scaleway). */
const CONTAINER_DB_PORT = 5432;

/** Whether a config takes the scaled path (everything else is platform.ts's single-server stack). */
export function isScaled(config: PlatformConfig): boolean {
    return config.target === "scaleway" && (config.scale.database === "managed" || config.scale.hosts > 1);
}

/** The SSH admin channel through host 0, as platform.ts opens it (same stable local port). */
function sshAdminChannel(host: ScalewayHost, open: typeof openForward): OpenAdminChannel {
    const port = stablePort(pulumi.getProject(), pulumi.getStack());
    return (publishedPort, after) =>
        pulumi.all([host.publicAddress, host.sshOptions, after]).apply(async ([address, sshOptions]) => {
            if (pulumi.runtime.isDryRun()) return { host: "127.0.0.1", port };
            const forward = await open({ destination: `root@${address}`, remote: `127.0.0.1:${publishedPort}`, sshOptions, preferredPort: port });
            return { host: forward.host, port: forward.port };
        });
}

/**
 * Makes every container of a component wait for `after` (the previous host's switch): a transformation
 * reaches the component's children, which a component's own dependsOn does not.
 */
function startsAfter(after: pulumi.Resource): pulumi.ResourceTransformation {
    return (args) =>
        args.type === "docker:index/container:Container" ? { props: args.props, opts: pulumi.mergeOptions(args.opts, { dependsOn: [after] }) } : undefined;
}

export function defineScaledPlatform(config: PlatformConfig, deps: PlatformDependencies = {}): PlatformOutputs {
    if (!isScaled(config)) throw new Error("defineScaledPlatform: this config is the single-server stack (platform.ts)");
    // config/platformConfig.ts refuses several hosts on the container database; the scaled path is always managed.
    if (config.scale.database !== "managed") throw new Error("several hosts need platform:database managed");
    const scale = config.scale;
    const behindLoadBalancer = scale.hosts > 1;
    const registryAuth =
        config.registryUsername && config.registryToken
            ? [{ address: "ghcr.io", username: config.registryUsername, password: pulumi.secret(config.registryToken) }]
            : undefined;

    const network = new PlatformNetwork("network");
    const hosts: ScalewayHost[] = [];
    const attachments: HostAttachment[] = [];
    for (let i = 0; i < scale.hosts; i++) {
        const host = new ScalewayHost(hostName(i), {
            instanceType: config.instanceType,
            sshPublicKey: config.sshPublicKey,
            sshPrivateKey: config.sshPrivateKey === undefined ? undefined : pulumi.secret(config.sshPrivateKey),
            adminCidrs: config.adminCidrs,
            sshFromAnywhere: config.sshFromAnywhere,
            // Host 0 keeps the container database's forward (a migrating stack still has it) and adds the managed one's.
            sshPermitOpen: i === 0 ? [`127.0.0.1:${CONTAINER_DB_PORT}`, `127.0.0.1:${MANAGED_ADMIN_PORT}`] : [`127.0.0.1:${CONTAINER_DB_PORT}`],
            registryAuth,
            publicWeb: behindLoadBalancer ? false : undefined,
            stateless: i > 0 ? true : undefined,
        });
        hosts.push(host);
        attachments.push(new HostAttachment(`${hostName(i)}-private`, { privateNetworkId: network.privateNetwork.id, serverId: host.server.id }));
    }

    const database = new ManagedDatabase(
        "managed-db",
        {
            nodeType: scale.managedDatabaseNodeType,
            ha: scale.managedDatabaseHa,
            backupRetentionDays: scale.managedDatabaseBackupDays,
            privateNetworkId: network.privateNetwork.id,
            adminHost: hosts[0],
            openAdminChannel: sshAdminChannel(hosts[0], deps.openForward ?? openForward),
        },
        // Host 0's relay reaches the instance through its private NIC.
        { dependsOn: [attachments[0].nic] },
    );

    const origin = `https://${config.domain}`;
    const apps: Record<string, AppOutputs> = {};
    const databaseUrls: Record<string, pulumi.Output<string>> = {};
    const appDatabases = new Map<string, ManagedAppDatabase>();
    for (const deployed of config.apps) {
        const name = deployed.definition.name;
        const db = deployed.definition.database
            ? new ManagedAppDatabase(`${name}-db`, {
                  app: name,
                  server: database,
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

    // One host after another: host i's containers start only once host i-1's edge has applied the new
    // routes, so a release that fails its health check stops at the first host (render/scale.ts).
    let previousSwitch: pulumi.Resource | undefined;
    hosts.forEach((host, i) => {
        const chain = previousSwitch === undefined ? undefined : { transformations: [startsAfter(previousSwitch)] };
        const webApps = config.apps.map((deployed) => {
            const db = appDatabases.get(deployed.definition.name);
            return new WebApp(
                `${hostPrefix(i)}${deployed.definition.name}`,
                { app: deployed.definition, release: deployed.release, provider: host.docker, databaseUrl: db?.databaseUrl, databaseReady: db?.ready },
                chain,
            );
        });
        const edge = new ReverseProxy(
            `${hostPrefix(i)}edge`,
            {
                host,
                mode: "https",
                domain: config.domain,
                acmeEmail: config.acmeEmail,
                acmeStaging: config.acmeStaging,
                localHttpPort: config.localHttpPort,
                routes: webApps.map((w) => w.route),
                appNetworks: webApps.map((w) => ({ app: w.appName, network: w.network.name })),
                memoryMb: config.memory.edgeMb,
                behindLoadBalancer: behindLoadBalancer ? { trustedCidrs: [network.subnet], localListen: "127.0.0.1:80" } : undefined,
            },
            chain,
        );
        previousSwitch = edge.config;
    });

    // Nightly logical backups of the managed databases (issue #12), with the single-server stack's
    // design and names: the same bucket (a stack moving from the container database keeps it, URN and
    // all), lock, put-only host key and policy; the cron job on host 0 dumps through the client
    // container as the admin, a member of every app role.
    const backups =
        appDatabases.size === 0
            ? undefined
            : new Backups("backups", {
                  host: hosts[0],
                  apps: [...appDatabases.keys()],
                  settings: config.backup,
                  region: new pulumi.Config("scaleway").get("region"),
                  administrators: deps.backupAdministrators ?? deployingIdentity(),
                  database: MANAGED_DATABASE_TARGET,
                  dependsOn: [database.client, ...[...appDatabases.values()].flatMap((d) => [...d.ready, d.backupMembership])],
              });

    const publicIp = behindLoadBalancer
        ? new PlatformLoadBalancer("lb", { domain: config.domain, privateNetworkId: network.privateNetwork.id, serverIps: attachments.map((a) => a.address) }).address
        : hosts[0].publicAddress;

    return {
        publicIp,
        baseUrl: pulumi.output(`${origin}/`),
        apps,
        databaseUrls: pulumi.secret(pulumi.all(databaseUrls)),
        backupBucket: backups?.bucket,
        backupEndpoint: backups?.endpoint,
    };
}
