import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ContainerSecurity } from "../apps/types";
import { containerHardening, containerRuntime } from "../render/containers";
import {
    FORWARDER_CONTAINER,
    FORWARDER_IMAGE,
    FORWARDER_MEMORY_MB,
    FORWARDER_SECURITY,
    FORWARD_NETWORK,
    POSTGRES_ALIAS,
    POSTGRES_CONTAINER,
    POSTGRES_IMAGE,
    POSTGRES_MAJOR,
    POSTGRES_UID,
    POSTGRES_USER,
    POSTGRES_VOLUME,
    PUBLISH_NETWORK,
    postgresCommand,
    psqlInContainerCommand,
    serverReconcileSql,
    DatabaseAdmin,
} from "../render/postgres";
import { readHostScript } from "../hostScripts";
import { runScript } from "../render/shell";
import { AdminConnection } from "../io/appDatabaseProvider";
import { AppEndpoint, AppNetworkAttachment, DatabaseServer } from "./appDatabase";
import { Host } from "./host";

/** Where the admin reaches the server from the machine running Pulumi. */
export interface AdminEndpoint {
    readonly host: string;
    readonly port: number;
}

/**
 * Opens the way from this machine to the server's loopback-published port once the server is up and
 * reconciled (`after` resolves then). The local stack connects directly; the prod stack goes through
 * an SSH forward (AdminChannel).
 */
export type OpenAdminChannel = (publishedPort: number, after: pulumi.Output<string>) => pulumi.Output<AdminEndpoint>;

export interface PostgresServerArgs {
    readonly host: Host;
    /** Container memory limit in MiB; the server settings are sized from it. */
    readonly memoryMb: number;
    /** Port the admin forwarder publishes on the host's loopback only. */
    readonly publishedPort: number;
    readonly openAdminChannel: OpenAdminChannel;
}

/**
 * The server runs as the image's `postgres` user from the start (no root step, so no capability at
 * all): the data directory already belongs to it (a fresh volume takes the ownership of the image's
 * directory, an existing one was written by it; hostScripts/check-postgres-data.sh refuses anything else).
 * Its root filesystem is read-only: the data directory is the volume, the socket and lock file go to
 * a tmpfs. nproc: its processes (one per connection plus background workers) stay far below 512.
 */
export const POSTGRES_SECURITY: ContainerSecurity = {
    readOnlyRootFilesystem: true,
    writablePaths: ["/var/run/postgresql"],
    maxProcesses: 512,
};


/**
 * The one PostgreSQL server every app's database lives in. Its data volume is protected. It joins
 * internal networks only, so it has no route out: the admin port on the host's loopback is published
 * by a small forwarder, and each app's backend reaches it on that app's own database network
 * (AppDatabase attaches them, without recreating this container).
 */
export class PostgresServer extends pulumi.ComponentResource implements DatabaseServer {
    /** Where commands run and the Docker provider of the host. */
    public readonly host: Host;
    /** Internal network of the server and the forwarder. */
    public readonly forwardNetwork: docker.Network;
    /** The forwarder's bridge with a gateway, needed only to publish the loopback port. */
    public readonly publishNetwork: docker.Network;
    public readonly volume: docker.Volume;
    public readonly adminPassword: random.RandomPassword;
    /** Refuses a data volume this server cannot open (another major version, another owner). */
    public readonly dataCheck: command.remote.Command | command.local.Command;
    public readonly container: docker.Container;
    /** Sets the admin password from state and locks the maintenance databases, after every (re)start. */
    public readonly reconcile: command.remote.Command | command.local.Command;
    public readonly forwarder: docker.Container;
    /** Secret. The superuser's connection through the admin channel, for every AppDatabase. */
    public readonly adminConnection: pulumi.Output<AdminConnection>;
    public readonly admin: DatabaseAdmin = { user: "postgres", superuser: true };
    /** One container server per stack, whatever its container's id. */
    public readonly serverId = pulumi.output("container");
    /** The backends connect to `postgres`, on their own database network. */
    public readonly appEndpoint: pulumi.Output<AppEndpoint>;
    public readonly appNetworks: AppNetworkAttachment;
    public readonly ready: pulumi.Resource[];

    constructor(name: string, args: PostgresServerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:database:PostgresServer", name, {}, opts);
        this.host = args.host;
        const dockerOpts = { parent: this, provider: args.host.docker };

        this.forwardNetwork = new docker.Network(`${name}-forward-network`, { name: FORWARD_NETWORK, internal: true, driver: "bridge" }, dockerOpts);
        // Publishing a port needs a network with a gateway: only the forwarder joins this one.
        this.publishNetwork = new docker.Network(`${name}-publish-network`, { name: PUBLISH_NETWORK, driver: "bridge" }, dockerOpts);

        this.volume = new docker.Volume(
            `${name}-data`,
            { name: POSTGRES_VOLUME, labels: [{ label: "platform.data", value: "postgres" }] },
            { ...dockerOpts, protect: true, retainOnDelete: true },
        );

        this.adminPassword = new random.RandomPassword(`${name}-admin-password`, { length: 32, special: false }, { parent: this });

        const image = new docker.RemoteImage(`${name}-image`, { name: POSTGRES_IMAGE, keepLocally: true }, dockerOpts);

        // Before the container is created or replaced, and whenever the image changes: a new major
        // version on the old data directory is refused with what to do instead.
        const check = runScript(readHostScript("check-postgres-data.sh"), { VOLUME: POSTGRES_VOLUME, IMAGE: POSTGRES_IMAGE, MAJOR: POSTGRES_MAJOR, PG_UID: POSTGRES_UID });
        this.dataCheck = args.host.runCommand(`${name}-data-check`, { create: check, update: check, delete: "true" }, { parent: this, dependsOn: [this.volume, image] });

        // Exactly one server may own the data directory, so this container is never blue-green:
        // a fixed name and delete-before-replace, said explicitly.
        this.container = new docker.Container(
            `${name}-container`,
            {
                name: POSTGRES_CONTAINER,
                image: image.imageId,
                user: POSTGRES_USER,
                command: postgresCommand(args.memoryMb),
                // Used only when the image initialises an empty data directory; `reconcile` keeps it true afterwards.
                envs: [pulumi.secret(pulumi.interpolate`POSTGRES_PASSWORD=${this.adminPassword.result}`), "POSTGRES_USER=postgres"],
                volumes: [{ volumeName: this.volume.name, containerPath: "/var/lib/postgresql/data" }],
                // Internal networks only: no gateway, no route to the internet.
                networksAdvanced: [{ name: this.forwardNetwork.name, aliases: [POSTGRES_ALIAS] }],
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
                ...containerHardening(args.memoryMb, POSTGRES_SECURITY),
                shmSize: 128,
                ...containerRuntime(),
                stopSignal: "SIGINT",
                destroyGraceSeconds: 60,
                labels: [{ label: "platform.role", value: "database" }],
            },
            {
                ...dockerOpts,
                deleteBeforeReplace: true,
                dependsOn: [this.dataCheck],
                // App database networks are attached by AppDatabase's commands: an app added or
                // removed must not read as a change that recreates the server.
                ignoreChanges: ["networksAdvanced"],
            },
        );

        // Over the container's local socket (trusted inside it), SQL on stdin: the password is never on a command line.
        const reconcileScript = pulumi.interpolate`# postgres container ${this.container.id}
${psqlInContainerCommand(POSTGRES_CONTAINER)}`;
        this.reconcile = args.host.runCommand(
            `${name}-reconcile`,
            {
                create: reconcileScript,
                update: reconcileScript,
                stdin: pulumi.secret(this.adminPassword.result.apply(serverReconcileSql)),
                delete: "true",
            },
            { parent: this, dependsOn: [this.container] },
        );

        const forwarderImage = new docker.RemoteImage(`${name}-forwarder-image`, { name: FORWARDER_IMAGE, keepLocally: true }, dockerOpts);
        this.forwarder = new docker.Container(
            `${name}-forwarder`,
            {
                name: FORWARDER_CONTAINER,
                image: forwarderImage.imageId,
                user: "65534:65534",
                command: ["TCP-LISTEN:5432,fork,reuseaddr", `TCP:${POSTGRES_ALIAS}:5432`],
                networksAdvanced: [{ name: this.forwardNetwork.name }, { name: this.publishNetwork.name }],
                ports: [{ internal: 5432, external: args.publishedPort, ip: "127.0.0.1" }],
                // Healthy when it reaches the server: connects and closes without a byte (PostgreSQL logs nothing for that).
                healthcheck: {
                    tests: ["CMD", "socat", "-u", "OPEN:/dev/null", `TCP:${POSTGRES_ALIAS}:5432,connect-timeout=2`],
                    interval: "10s",
                    timeout: "3s",
                    startPeriod: "5s",
                    retries: 3,
                },
                wait: true,
                waitTimeout: 60,
                ...containerHardening(FORWARDER_MEMORY_MB, FORWARDER_SECURITY),
                ...containerRuntime(),
                labels: [{ label: "platform.role", value: "database-forwarder" }],
            },
            // It holds the loopback port: replaced delete-first.
            { ...dockerOpts, deleteBeforeReplace: true, dependsOn: [this.container] },
        );

        const ready = pulumi.all([this.forwarder.id, this.reconcile.id]).apply(([forwarderId]) => forwarderId);
        const endpoint = args.openAdminChannel(args.publishedPort, ready);
        // Loopback (or the SSH tunnel) only: the container speaks plain TCP.
        this.adminConnection = pulumi.secret(
            pulumi.all([endpoint, this.adminPassword.result]).apply(([e, password]) => ({ host: e.host, port: e.port, user: "postgres", password, database: "postgres", ssl: false })),
        );
        this.appEndpoint = pulumi.output({ host: POSTGRES_ALIAS, port: 5432, sslmode: "disable" });
        this.appNetworks = { host: args.host, container: this.container, containerName: POSTGRES_CONTAINER, hostname: POSTGRES_ALIAS };
        this.ready = [this.container, this.reconcile, this.forwarder];

        this.registerOutputs({ containerName: this.container.name, forwardNetwork: this.forwardNetwork.name });
    }
}
