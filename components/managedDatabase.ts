import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import * as scaleway from "@pulumiverse/scaleway";
import { containerHardening, containerRuntime } from "../render/containers";
import {
    DatabaseAdmin,
    FORWARDER_IMAGE,
    FORWARDER_MEMORY_MB,
    FORWARDER_SECURITY,
    ManagedServerTls,
    managedAppEndpoint,
    managedClientCommand,
    managedClientEnv,
    managedServerTls,
} from "../render/postgres";
import {
    MANAGED_ADMIN_PORT,
    MANAGED_ADMIN_USER,
    MANAGED_BACKUP_FREQUENCY_HOURS,
    MANAGED_CLIENT_CONTAINER,
    MANAGED_CLIENT_IMAGE,
    MANAGED_ENGINE,
    MANAGED_FORWARDER_CONTAINER,
    MANAGED_NETWORK,
} from "../render/scale";
import { AdminConnection, managedAdminConnection } from "../io/appDatabaseProvider";
import { AppEndpoint, DatabaseServer } from "./appDatabase";
import { Host } from "./host";
import { AdminEndpoint, OpenAdminChannel } from "./postgresServer";

export interface ManagedDatabaseArgs {
    /** Scaleway node type, e.g. `DB-DEV-S`. */
    readonly nodeType: string;
    /** Two nodes with automatic failover (changing it recreates the instance: Scaleway's rule). */
    readonly ha: boolean;
    /** Days Scaleway keeps its automated daily backups. */
    readonly backupRetentionDays: number;
    /** The only network the instance has an endpoint on. */
    readonly privateNetworkId: pulumi.Input<string>;
    /** Host 0: runs the admin forwarder (for the admin channel) and the client container (for backups). */
    readonly adminHost: Host;
    /** Opens the way from this machine to 127.0.0.1:<port> on the admin host (an SSH forward in prod). */
    readonly openAdminChannel: OpenAdminChannel;
}

/** The private endpoint of the instance, as the backends and the forwarder reach it. */
export interface PrivateEndpoint {
    readonly ip: string;
    readonly port: number;
}

/**
 * Scaleway Managed Database for PostgreSQL, on the private network only.
 *
 * - No public endpoint: the instance declares a private-network endpoint and no `loadBalancer`
 *   endpoint; the provider then deletes the public endpoint Scaleway creates by default.
 * - Encryption at rest, Scaleway's automated backups (daily, retention from config), optional HA.
 * - Protected: the instance holds every app's data.
 * - Administration: the admin (the instance's first user; CREATEROLE and CREATEDB, not a superuser)
 *   is reached through host 0, where a small relay listens on 127.0.0.1:MANAGED_ADMIN_PORT only;
 *   the SSH admin channel forwards to it, exactly as it does for the container database.
 * - Every client checks the server before it authenticates (render/postgres.ts, managedServerTls):
 *   the admin connection and the client container verify the certificate against the instance's own
 *   (verify-full when it names the endpoint's IP, else verify-ca) and require channel binding; the
 *   apps require channel binding. The relay and the SSH forward carry TCP: TLS is end to end.
 */
export class ManagedDatabase extends pulumi.ComponentResource implements DatabaseServer {
    public readonly adminPassword: random.RandomPassword;
    public readonly instance: scaleway.databases.Instance;
    public readonly endpoint: pulumi.Output<PrivateEndpoint>;
    public readonly network: docker.Network;
    public readonly forwarder: docker.Container;
    public readonly client: docker.Container;
    /** Secret. The admin's connection through host 0's relay, for every AppDatabase. */
    public readonly adminConnection: pulumi.Output<AdminConnection>;
    /** The instance's first user: CREATEROLE and CREATEDB, no superuser. */
    public readonly admin: DatabaseAdmin = { user: MANAGED_ADMIN_USER, superuser: false };
    public readonly serverId: pulumi.Output<string>;
    /** The backends connect to the private endpoint, over TLS, with channel binding required. */
    public readonly appEndpoint: pulumi.Output<AppEndpoint>;
    /** What the admin connection and the client container check of the server. */
    public readonly serverTls: pulumi.Output<ManagedServerTls>;
    public readonly ready: pulumi.Resource[];

    constructor(name: string, args: ManagedDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:database:ManagedDatabase", name, {}, opts);
        const dockerOpts = { parent: this, provider: args.adminHost.docker };

        // Scaleway requires upper and lower case, a digit and a symbol; the symbols are URL-safe.
        this.adminPassword = new random.RandomPassword(
            `${name}-admin-password`,
            { length: 32, special: true, overrideSpecial: "-_.~", minUpper: 2, minLower: 2, minNumeric: 2, minSpecial: 2 },
            { parent: this },
        );

        this.instance = new scaleway.databases.Instance(
            `${name}-instance`,
            {
                name: "platform",
                engine: MANAGED_ENGINE,
                nodeType: args.nodeType.toLowerCase(),
                isHaCluster: args.ha,
                userName: MANAGED_ADMIN_USER,
                password: pulumi.secret(this.adminPassword.result),
                encryptionAtRest: true,
                disableBackup: false,
                backupScheduleFrequency: MANAGED_BACKUP_FREQUENCY_HOURS,
                backupScheduleRetention: args.backupRetentionDays,
                backupSameRegion: true,
                // Private network only; IPAM hands out the address (a static `ipNet` is not routed in the VPC).
                privateNetwork: { pnId: args.privateNetworkId, enableIpam: true },
                settings: { password_encryption: "scram-sha-256" },
                tags: ["platform"],
            },
            { parent: this, protect: true, additionalSecretOutputs: ["password"] },
        );

        this.endpoint = this.instance.privateNetwork.apply((pn) => {
            if (pn === undefined || !pn.ip || !pn.port) throw new Error("the managed database has no private-network endpoint yet");
            return { ip: pn.ip, port: pn.port };
        });

        // The instance's certificate is public: not a secret. Without one nothing connects (managedServerTls throws).
        this.serverTls = pulumi.all([this.instance.certificate, this.endpoint]).apply(([certificate, e]) => {
            const tls = managedServerTls(certificate, e.ip);
            if (tls.sslmode !== "verify-full") {
                pulumi.log.warn(
                    `the managed database's certificate does not name its private endpoint ${e.ip}: the admin connection and the backups verify the certificate chain (verify-ca) ` +
                        "and require channel binding, but not the name. Renewing the instance's TLS certificate (the console's Renew under TLS certificate) once the endpoint exists may add it; the clients must then get the new one (`pulumi up`).",
                    this,
                );
            }
            return tls;
        });

        // A bridge (not internal): the relay and the client must route to the private network.
        this.network = new docker.Network(`${name}-network`, { name: MANAGED_NETWORK, driver: "bridge" }, dockerOpts);

        const relayImage = new docker.RemoteImage(`${name}-forwarder-image`, { name: FORWARDER_IMAGE, keepLocally: true }, dockerOpts);
        this.forwarder = new docker.Container(
            `${name}-forwarder`,
            {
                name: MANAGED_FORWARDER_CONTAINER,
                image: relayImage.imageId,
                user: "65534:65534",
                command: this.endpoint.apply((e) => ["TCP-LISTEN:5432,fork,reuseaddr", `TCP:${e.ip}:${e.port}`]),
                networksAdvanced: [{ name: this.network.name }],
                // The host's loopback only: the SSH admin channel is the one way in.
                ports: [{ internal: 5432, external: MANAGED_ADMIN_PORT, ip: "127.0.0.1" }],
                // The same relay as the container database's forwarder, with the same limits.
                ...containerHardening(FORWARDER_MEMORY_MB, FORWARDER_SECURITY),
                ...containerRuntime(),
                labels: [{ label: "platform.role", value: "managed-database-forwarder" }],
            },
            // It holds the loopback port: replaced delete-first.
            { ...dockerOpts, deleteBeforeReplace: true, dependsOn: [this.instance] },
        );

        // The PostgreSQL client programs of the managed major, connected as the admin: the nightly
        // logical backups and the restore command run pg_dump/pg_restore/psql in it with `docker exec`.
        const clientImage = new docker.RemoteImage(`${name}-client-image`, { name: MANAGED_CLIENT_IMAGE, keepLocally: true }, dockerOpts);
        this.client = new docker.Container(
            `${name}-client`,
            {
                name: MANAGED_CLIENT_CONTAINER,
                image: clientImage.imageId,
                user: "999:999",
                // Writes the instance's certificate to PGSSLROOTCERT, then idles: pg_dump/psql check the server with it.
                command: managedClientCommand(),
                envs: pulumi.secret(
                    pulumi
                        .all([this.endpoint, this.serverTls, this.adminPassword.result])
                        .apply(([e, tls, password]) => [...managedClientEnv(e, tls, MANAGED_ADMIN_USER), `PGPASSWORD=${password}`]),
                ),
                networksAdvanced: [{ name: this.network.name }],
                ...containerHardening(256, { readOnlyRootFilesystem: true }),
                ...containerRuntime(),
                labels: [{ label: "platform.role", value: "managed-database-client" }],
            },
            { ...dockerOpts, deleteBeforeReplace: true, dependsOn: [this.instance] },
        );

        const ready = pulumi.all([this.forwarder.id, this.instance.id]).apply(([id]) => id);
        const admin: pulumi.Output<AdminEndpoint> = args.openAdminChannel(MANAGED_ADMIN_PORT, ready);
        // TLS runs end to end through the SSH forward and the relay (both carry TCP only), so the
        // provider checks the instance's own certificate, and under verify-full the endpoint's IP (not
        // the forward's 127.0.0.1) as the name, and requires channel binding (io/appDatabaseProvider.ts).
        this.adminConnection = pulumi.secret(
            pulumi.all([admin, this.adminPassword.result, this.serverTls]).apply(([a, password, tls]) => managedAdminConnection(a, MANAGED_ADMIN_USER, password, tls)),
        );
        this.serverId = pulumi.interpolate`managed:${this.instance.id}`;
        this.appEndpoint = this.endpoint.apply((e) => managedAppEndpoint(e.ip, e.port));
        this.ready = [this.instance, this.forwarder];

        this.registerOutputs({ instanceId: this.instance.id, endpoint: this.endpoint });
    }
}
