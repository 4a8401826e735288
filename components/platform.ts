// Composes the platform from a validated config. index.ts calls it; tests call it once per stack.
import * as pulumi from "@pulumi/pulumi";
import { AppDatabase } from "./appDatabase";
import { Backups, deployingIdentity } from "./backups";
import { Host } from "./host";
import { LocalHost } from "./localHost";
import { OpenAdminChannel, PostgresServer } from "./postgresServer";
import { ReverseProxy } from "./reverseProxy";
import { ScalewayHost } from "./scalewayHost";
import { WebApp } from "./webApp";
import { openForward, stablePort } from "../io/adminChannel";
import { DeployedApp, PlatformConfig } from "../config/platformConfig";
import { databaseConnectionLimit } from "../render/postgres";
import { defineScaledPlatform, isScaled } from "./platformScale";

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
}

/**
 * prod: the provider reaches PostgreSQL through an SSH forward opened during `up`, once the host and
 * the container exist. A preview opens nothing: on an empty stack the endpoint is unknown; on an
 * existing one it is the stack's stable port, so the provider's config reads as unchanged.
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

export interface PlatformDependencies {
    /** Opens the prod admin channel; tests replace it to observe what the program asks for. */
    readonly openForward?: typeof openForward;
    /** Principals keeping full access to the backup bucket; by default the identity of SCW_ACCESS_KEY. */
    readonly backupAdministrators?: pulumi.Input<string[]>;
}

export function definePlatform(config: PlatformConfig, deps: PlatformDependencies = {}): PlatformOutputs {
    // Managed database and/or several hosts (issue #12): composed in platformScale.ts; the default
    // config (database container, one host) never reaches it.
    if (isScaled(config)) return defineScaledPlatform(config, deps);
    const registryAuth =
        config.registryUsername && config.registryToken
            ? [{ address: "ghcr.io", username: config.registryUsername, password: pulumi.secret(config.registryToken) }]
            : undefined;

    let host: Host;
    let openAdminChannel: OpenAdminChannel;
    if (config.target === "scaleway") {
        const scalewayHost = new ScalewayHost("host", {
            instanceType: config.instanceType,
            sshPublicKey: config.sshPublicKey,
            sshPrivateKey: config.sshPrivateKey === undefined ? undefined : pulumi.secret(config.sshPrivateKey),
            adminCidrs: config.adminCidrs,
            sshFromAnywhere: config.sshFromAnywhere,
            // The one forward sshd permits: the admin channel's (sshAdminChannel's `remote`).
            sshPermitOpen: [`127.0.0.1:${POSTGRES_PUBLISHED_PORT.scaleway}`],
            registryAuth,
        });
        host = scalewayHost;
        openAdminChannel = sshAdminChannel(scalewayHost, deps.openForward ?? openForward);
    } else {
        host = new LocalHost("host", { stateDir: ".platform/local", registryAuth });
        openAdminChannel = directAdminChannel;
    }

    const postgres = new PostgresServer("postgres", {
        host,
        memoryMb: config.memory.postgresMb,
        publishedPort: POSTGRES_PUBLISHED_PORT[config.target],
        openAdminChannel,
    });

    const scheme = config.target === "scaleway" ? "https" : "http";
    const origin = config.target === "scaleway" ? `https://${config.domain}` : `http://localhost:${config.localHttpPort}`;

    const apps: Record<string, AppOutputs> = {};
    const databaseUrls: Record<string, pulumi.Output<string>> = {};
    const webApps: WebApp[] = [];
    const appDatabases: { app: string; database: AppDatabase }[] = [];
    for (const deployed of config.apps) {
        const name = deployed.definition.name;
        const database = deployed.definition.database
            ? new AppDatabase(`${name}-db`, {
                  app: name,
                  server: postgres,
                  passwordVersion: deployed.passwordVersion,
                  connectionLimit: databaseConnectionLimit(deployed.definition),
              })
            : undefined;
        const webApp = new WebApp(name, {
            app: deployed.definition,
            release: deployed.release,
            provider: host.docker,
            databaseUrl: database?.databaseUrl,
            databaseNetwork: database?.network.name,
            databaseReady: database?.ready,
        });
        webApps.push(webApp);
        if (database !== undefined) databaseUrls[name] = database.databaseUrl;
        if (database !== undefined) appDatabases.push({ app: name, database });
        apps[name] = appOutputs(origin, deployed, database);
    }

    new ReverseProxy("edge", {
        host,
        mode: scheme,
        domain: config.domain,
        acmeEmail: config.acmeEmail,
        acmeStaging: config.acmeStaging,
        localHttpPort: config.localHttpPort,
        routes: webApps.map((w) => w.route),
        appNetworks: webApps.map((w) => ({ app: w.appName, network: w.network.name })),
        memoryMb: config.memory.edgeMb,
    });

    const backups =
        appDatabases.length === 0
            ? undefined
            : new Backups("backups", {
                  host,
                  apps: appDatabases.map((d) => d.app),
                  settings: config.backup,
                  region: new pulumi.Config("scaleway").get("region"),
                  administrators: config.target === "scaleway" ? (deps.backupAdministrators ?? deployingIdentity()) : undefined,
                  localDir: ".platform/local",
                  dependsOn: appDatabases.map((d) => d.database),
              });

    return {
        publicIp: host.publicAddress,
        baseUrl: pulumi.output(`${origin}/`),
        apps,
        databaseUrls: pulumi.secret(pulumi.all(databaseUrls)),
        backupBucket: backups?.bucket,
        backupEndpoint: backups?.endpoint,
    };
}
