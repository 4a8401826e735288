import * as docker from "@pulumi/docker";
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { LOG_OPTIONS } from "../lib/containers";
import { POSTGRES_ALIAS, POSTGRES_IMAGE, POSTGRES_MAJOR, postgresCommand } from "../lib/postgres";
import { Host } from "./host";

/** Where @pulumi/postgresql reaches the server from the machine running Pulumi. */
export interface AdminEndpoint {
    readonly host: string;
    readonly port: number;
}

/**
 * Opens the way from this machine to the server's loopback-published port once the container is up
 * (`after` resolves then). The local stack connects directly; the prod stack goes through an SSH
 * forward (AdminChannel).
 */
export type OpenAdminChannel = (publishedPort: number, after: pulumi.Output<string>) => pulumi.Output<AdminEndpoint>;

export interface PostgresServerArgs {
    readonly host: Host;
    /** Container memory limit in MiB; the server settings are sized from it. */
    readonly memoryMb: number;
    /** Port PostgreSQL is published on, on the host's loopback only. */
    readonly publishedPort: number;
    readonly openAdminChannel: OpenAdminChannel;
}

/** The one PostgreSQL server every app's database lives in. Its data volume is protected. */
export class PostgresServer extends pulumi.ComponentResource {
    /** Internal network (no route out) that only database-using backends join. */
    public readonly network: docker.Network;
    public readonly volume: docker.Volume;
    public readonly adminPassword: random.RandomPassword;
    public readonly container: docker.Container;
    /** Used by every AppDatabase to create its role and database. */
    public readonly provider: postgresql.Provider;
    /** Name the backends connect to, on `network`. */
    public readonly hostname = POSTGRES_ALIAS;
    public readonly port = 5432;

    constructor(name: string, args: PostgresServerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:database:PostgresServer", name, {}, opts);
        const dockerOpts = { parent: this, provider: args.host.docker };

        this.network = new docker.Network(`${name}-network`, { name: "platform-db", internal: true, driver: "bridge" }, dockerOpts);
        // Publishing a port needs a network with a gateway; this one carries nothing but the loopback publish.
        const adminNetwork = new docker.Network(`${name}-admin-network`, { name: "platform-db-admin", driver: "bridge" }, dockerOpts);

        this.volume = new docker.Volume(
            `${name}-data`,
            { name: "platform-pgdata", labels: [{ label: "platform.data", value: "postgres" }] },
            { ...dockerOpts, protect: true, retainOnDelete: true },
        );

        this.adminPassword = new random.RandomPassword(`${name}-admin-password`, { length: 32, special: false }, { parent: this });

        const image = new docker.RemoteImage(`${name}-image`, { name: POSTGRES_IMAGE, keepLocally: true }, dockerOpts);

        // Exactly one server may own the data directory, so this container is never blue-green:
        // a fixed name and delete-before-replace, said explicitly.
        this.container = new docker.Container(
            `${name}-container`,
            {
                name: "platform-postgres",
                image: image.imageId,
                command: postgresCommand(args.memoryMb),
                envs: [pulumi.secret(pulumi.interpolate`POSTGRES_PASSWORD=${this.adminPassword.result}`), "POSTGRES_USER=postgres"],
                volumes: [{ volumeName: this.volume.name, containerPath: "/var/lib/postgresql/data" }],
                networksAdvanced: [{ name: this.network.name, aliases: [POSTGRES_ALIAS] }, { name: adminNetwork.name }],
                ports: [{ internal: 5432, external: args.publishedPort, ip: "127.0.0.1" }],
                // Over TCP: during first-boot init the entrypoint's temporary server listens on the socket only.
                healthcheck: {
                    tests: ["CMD-SHELL", "pg_isready -h 127.0.0.1 -U postgres -d postgres"],
                    interval: "5s",
                    timeout: "3s",
                    startPeriod: "30s",
                    retries: 10,
                },
                wait: true,
                waitTimeout: 180,
                memory: args.memoryMb,
                shmSize: 128,
                restart: "unless-stopped",
                stopSignal: "SIGINT",
                destroyGraceSeconds: 60,
                logDriver: "json-file",
                logOpts: { ...LOG_OPTIONS },
                labels: [{ label: "platform.role", value: "database" }],
            },
            { ...dockerOpts, deleteBeforeReplace: true },
        );

        const endpoint = args.openAdminChannel(args.publishedPort, this.container.id);
        this.provider = new postgresql.Provider(
            `${name}-admin`,
            {
                host: endpoint.host,
                port: endpoint.port,
                username: "postgres",
                password: pulumi.secret(this.adminPassword.result),
                database: "postgres",
                // Loopback (or the SSH tunnel) only: the container speaks plain TCP.
                sslmode: "disable",
                superuser: true,
                expectedVersion: POSTGRES_MAJOR,
                connectTimeout: 10,
            },
            { parent: this, dependsOn: [this.container] },
        );

        this.registerOutputs({ containerName: this.container.name, network: this.network.name });
    }
}
