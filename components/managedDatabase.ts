import * as docker from "@pulumi/docker";
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import * as scaleway from "@pulumiverse/scaleway";
import { containerHardening, containerRuntime } from "../render/containers";
import { FORWARDER_IMAGE, FORWARDER_MEMORY_MB, FORWARDER_SECURITY, appDatabaseNames, databaseUrl } from "../render/postgres";
import {
    MANAGED_ADMIN_PORT,
    MANAGED_ADMIN_USER,
    MANAGED_BACKUP_FREQUENCY_HOURS,
    MANAGED_CLIENT_CONTAINER,
    MANAGED_CLIENT_IMAGE,
    MANAGED_ENGINE,
    MANAGED_FORWARDER_CONTAINER,
    MANAGED_MAJOR,
    MANAGED_NETWORK,
} from "../render/scale";
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
 */
export class ManagedDatabase extends pulumi.ComponentResource {
    public readonly adminPassword: random.RandomPassword;
    public readonly instance: scaleway.databases.Instance;
    public readonly endpoint: pulumi.Output<PrivateEndpoint>;
    public readonly network: docker.Network;
    public readonly forwarder: docker.Container;
    public readonly client: docker.Container;
    public readonly provider: postgresql.Provider;
    public readonly adminUser = MANAGED_ADMIN_USER;

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
                command: ["sleep", "infinity"],
                envs: [
                    pulumi.interpolate`PGHOST=${this.endpoint.ip}`,
                    pulumi.interpolate`PGPORT=${this.endpoint.port}`,
                    `PGUSER=${MANAGED_ADMIN_USER}`,
                    "PGDATABASE=postgres",
                    "PGSSLMODE=require",
                    pulumi.secret(pulumi.interpolate`PGPASSWORD=${this.adminPassword.result}`),
                ],
                networksAdvanced: [{ name: this.network.name }],
                ...containerHardening(256, { readOnlyRootFilesystem: true }),
                ...containerRuntime(),
                labels: [{ label: "platform.role", value: "managed-database-client" }],
            },
            { ...dockerOpts, deleteBeforeReplace: true, dependsOn: [this.instance] },
        );

        const ready = pulumi.all([this.forwarder.id, this.instance.id]).apply(([id]) => id);
        const admin: pulumi.Output<AdminEndpoint> = args.openAdminChannel(MANAGED_ADMIN_PORT, ready);
        this.provider = new postgresql.Provider(
            `${name}-admin`,
            {
                host: admin.host,
                port: admin.port,
                username: MANAGED_ADMIN_USER,
                password: pulumi.secret(this.adminPassword.result),
                database: "postgres",
                // Scaleway's endpoint speaks TLS; the name checked would be the forward's, so no verify-full.
                sslmode: "require",
                // The admin is not a superuser: the provider grants itself an owner role only while it sets it.
                superuser: false,
                expectedVersion: MANAGED_MAJOR,
                connectTimeout: 10,
            },
            { parent: this, dependsOn: [this.instance, this.forwarder] },
        );

        this.registerOutputs({ instanceId: this.instance.id, endpoint: this.endpoint });
    }
}

export interface ManagedAppDatabaseArgs {
    readonly app: string;
    readonly server: ManagedDatabase;
    /** Bump to rotate the password: the role and the backends' DATABASE_URL change in one `up`. */
    readonly passwordVersion: number;
    /** Most connections the app's role may hold, over every host together. */
    readonly connectionLimit: number;
}

/**
 * One app's login role and database on the managed instance, declared through the admin channel with
 * @pulumi/postgresql (not Scaleway's Database/User/Privilege: those cannot make the app's role the
 * database's owner, nor revoke CONNECT from PUBLIC, so every user could connect to every database).
 *
 * The role owns its database; CONNECT (and TEMP) are revoked from PUBLIC. The admin is made a member
 * of the role (backupMembership): the nightly logical backups and the restore command run as the
 * admin, which is no superuser, and read and recreate what the app owns through that membership. It
 * gives the admin nothing it could not take anyway (CREATEROLE; PostgreSQL 16 makes the creator of a
 * role its admin); no app role is a member of another. Removing the app keeps role and database
 * (retainOnDelete), as on the container database.
 */
export class ManagedAppDatabase extends pulumi.ComponentResource {
    public readonly password: random.RandomPassword;
    public readonly role: postgresql.Role;
    public readonly database: postgresql.Database;
    public readonly revokePublicConnect: postgresql.Grant;
    /** The admin's membership in the app's role, for the backups and restores. */
    public readonly backupMembership: postgresql.GrantRole;
    public readonly ready: pulumi.Resource[];
    /** Secret. */
    public readonly databaseUrl: pulumi.Output<string>;
    public readonly databaseName: pulumi.Output<string>;
    public readonly roleName: pulumi.Output<string>;

    constructor(name: string, args: ManagedAppDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:database:ManagedAppDatabase", name, {}, opts);
        const { server } = args;
        const names = appDatabaseNames(args.app);
        if (!Number.isInteger(args.connectionLimit) || args.connectionLimit < 1) throw new Error(`${args.app}: connection limit ${args.connectionLimit} is not a positive whole number`);
        const pgOpts = { parent: this, provider: server.provider };

        this.password = new random.RandomPassword(
            `${name}-password`,
            { length: 32, special: false, keepers: { version: String(args.passwordVersion) } },
            { parent: this },
        );
        this.role = new postgresql.Role(
            `${name}-role`,
            {
                name: names.role,
                login: true,
                password: pulumi.secret(this.password.result),
                connectionLimit: args.connectionLimit,
                createDatabase: false,
                createRole: false,
                inherit: true,
                superuser: false,
            },
            { ...pgOpts, retainOnDelete: true },
        );
        this.database = new postgresql.Database(
            `${name}-database`,
            { name: names.database, owner: this.role.name, encoding: "UTF8", template: "template0", allowConnections: true },
            { ...pgOpts, retainOnDelete: true },
        );
        this.revokePublicConnect = new postgresql.Grant(
            `${name}-revoke-public`,
            { database: this.database.name, role: "public", objectType: "database", privileges: [] },
            pgOpts,
        );
        // After the database: the provider grants itself the owner role while it sets the owner and
        // revokes only a membership it granted, so from here on the membership stays.
        this.backupMembership = new postgresql.GrantRole(
            `${name}-backup-membership`,
            { role: server.adminUser, grantRole: this.role.name, withAdminOption: false },
            { ...pgOpts, dependsOn: [this.database, this.revokePublicConnect] },
        );
        this.ready = [this.role, this.database, this.revokePublicConnect];
        this.databaseName = this.database.name;
        this.roleName = this.role.name;
        this.databaseUrl = pulumi.secret(
            pulumi
                .all([this.password.result, server.endpoint, this.role.id, this.database.id, this.revokePublicConnect.id])
                .apply(([password, endpoint]) => databaseUrl(names.role, password, endpoint.ip, endpoint.port, names.database, "require")),
        );
        this.registerOutputs({ databaseName: this.databaseName, roleName: this.roleName, databaseUrl: this.databaseUrl });
    }
}
