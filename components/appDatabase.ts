import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { AdminConnection, AppDatabaseState, appDatabaseProvider } from "../io/appDatabaseProvider";
import { AppDatabaseDeclaration, AppEndpoint, DatabaseAdmin, appDatabaseNames, appDatabaseNetwork, databaseUrl, declareAppDatabase } from "../render/postgres";
import { shellQuote } from "../render/shell";
import { Host } from "./host";

export type { AppEndpoint };

/** The container server's way to put PostgreSQL on each app's own internal network. */
export interface AppNetworkAttachment {
    readonly host: Host;
    /** The server container (its id in the command makes a recreated server re-attach). */
    readonly container: docker.Container;
    readonly containerName: string;
    /** The alias the backends connect to on their network. */
    readonly hostname: string;
}

/** What an app database needs of its server: PostgresServer (a container) and ManagedDatabase both are one. */
export interface DatabaseServer {
    /** Secret. The admin's connection through the admin channel, once the server accepts it. */
    readonly adminConnection: pulumi.Output<AdminConnection>;
    readonly admin: DatabaseAdmin;
    /** Which server this is, stable across runs: "container", or "managed:<instance id>". */
    readonly serverId: pulumi.Output<string>;
    readonly appEndpoint: pulumi.Output<AppEndpoint>;
    /** The container server: each app gets an internal network of its own to it. */
    readonly appNetworks?: AppNetworkAttachment;
    /** What must be in place before any app database is declared. */
    readonly ready: pulumi.Resource[];
}

export interface AppDatabaseArgs {
    /** Catalog name of the app; the database, role and network are named from it. */
    readonly app: string;
    /** The server the database lives in. */
    readonly server: DatabaseServer;
    /** Bump to rotate the password: the role and the backend's DATABASE_URL change in one `up`. */
    readonly passwordVersion: number;
    /** Most connections the app's role may hold (catalog `databaseConnectionLimit`), over every host together. */
    readonly connectionLimit: number;
}

/** The type of the one resource per app database (the SDK prefixes a dynamic resource's module and type). */
export const APP_DATABASE_TYPE = "pulumi-nodejs:dynamic/database:RoleAndDatabase";

class RoleAndDatabase extends pulumi.dynamic.Resource {
    constructor(name: string, props: pulumi.Inputs, opts: pulumi.CustomResourceOptions) {
        super(appDatabaseProvider, name, props, opts, "database", "RoleAndDatabase");
    }
}

/**
 * One app's database, login role and private way to the server, the same on the container server and
 * on the managed one.
 *
 * The mechanism is one Pulumi dynamic resource (io/appDatabaseProvider.ts) running SQL rendered in
 * render/postgres.ts as the server's admin, through the admin channel. It was chosen over the two
 * it replaces (idempotent SQL in a command on the container server, @pulumi/postgresql Role and
 * Database on the managed one) for what a Pulumi user expects and what re-adding an app needs:
 * - a preview shows a change of the role's login, password, connection limit, the database's owner,
 *   PUBLIC's CONNECT or the admin's membership as an update of this resource (a command shows only
 *   that its script changed);
 * - a refresh reads them back: a role dropped by hand leaves the state and the next `up` makes it
 *   again; a role altered by hand reads as drift that the next `up` undoes;
 * - create is create-or-adopt: a removed app's retained role and database are taken over when the
 *   app comes back, data and all (a provider Role fails on a role that exists, and `import` cannot
 *   adopt during a preview);
 * - removing the app revokes the role's login and ends its sessions; role and database stay.
 * The password reaches the server only as its SCRAM verifier.
 *
 * On the container server the app also gets the network `platform-db-<app>`, internal, joined by this
 * app's backend and by PostgreSQL (alias `postgres`, through `docker network connect`, so the server is
 * never recreated when an app comes or goes). No other app's container is on it. On the managed
 * server, whose admin is no superuser, the admin is made a member of the role: it sets the owner, and
 * the backups and restores read and recreate what the app owns through that membership.
 */
export class AppDatabase extends pulumi.ComponentResource {
    public readonly password: random.RandomPassword;
    /** Internal network of this app's backend and PostgreSQL (the container server only). */
    public readonly network?: docker.Network;
    /** Attaches PostgreSQL to `network` as `postgres`; detaches it when the app goes. */
    public readonly join?: command.remote.Command | command.local.Command;
    /** Creates or adopts the role and database and keeps them as declared. */
    public readonly roleAndDatabase: pulumi.dynamic.Resource;
    /** What the backend must wait for: the server reachable on its network, role and database in place. */
    public readonly ready: pulumi.Resource[];
    /** Secret. */
    public readonly databaseUrl: pulumi.Output<string>;
    public readonly databaseName: pulumi.Output<string>;
    public readonly roleName: pulumi.Output<string>;

    constructor(name: string, args: AppDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
        // The managed shape had a component type of its own; its children keep their URNs.
        const aliases = args.server.appNetworks === undefined ? [{ type: "platform:database:ManagedAppDatabase" }] : [];
        super("platform:database:AppDatabase", name, {}, pulumi.mergeOptions(opts, { aliases }));
        const { server } = args;
        const names = appDatabaseNames(args.app);

        const attach = server.appNetworks;
        if (attach !== undefined) {
            const networkName = appDatabaseNetwork(args.app);
            this.network = new docker.Network(`${name}-network`, { name: networkName, internal: true, driver: "bridge" }, { parent: this, provider: attach.host.docker });
            // Re-run (an update, never a replace: a replaced command's delete would run last and undo the
            // new connection) whenever the server container is recreated, since a new container starts on
            // its own networks only.
            const network = shellQuote(networkName);
            const container = shellQuote(attach.containerName);
            const connect = pulumi.interpolate`# postgres container ${attach.container.id}
docker network connect --alias ${shellQuote(attach.hostname)} ${network} ${container} 2>/dev/null || docker network inspect ${network} --format '{{range .Containers}}{{.Name}} {{end}}' | grep -qw ${container}`;
            this.join = attach.host.runCommand(
                `${name}-join`,
                { create: connect, update: connect, delete: `docker network disconnect ${network} ${container} || true` },
                { parent: this, dependsOn: [this.network, attach.container] },
            );
        }

        this.password = new random.RandomPassword(
            `${name}-password`,
            { length: 32, special: false, keepers: { version: String(args.passwordVersion) } },
            { parent: this },
        );

        const declaration = pulumi
            .all([this.password.result, server.serverId])
            .apply(([password, serverId]) => declareAppDatabase(args.app, password, args.connectionLimit, server.admin, serverId));
        // Derived from the password (a secret): only the verifier and the statements carrying it stay secret.
        const plain = <K extends keyof AppDatabaseDeclaration>(key: K) => pulumi.unsecret(declaration.apply((d) => d[key]));
        const declared: { [K in keyof AppDatabaseState]: pulumi.Input<AppDatabaseState[K]> } = {
            admin: pulumi.secret(server.adminConnection),
            server: plain("server"),
            role: plain("role"),
            database: plain("database"),
            connectionLimit: plain("connectionLimit"),
            passwordHash: pulumi.secret(declaration.apply((d) => d.passwordHash)),
            login: plain("login"),
            owner: plain("owner"),
            publicConnect: plain("publicConnect"),
            adminMember: plain("adminMember"),
            wantsAdminMember: plain("wantsAdminMember"),
            ensure: pulumi.secret(declaration.apply((d) => d.ensure)),
            retire: plain("retire"),
            stateSql: plain("stateSql"),
        };
        this.roleAndDatabase = new RoleAndDatabase(`${name}-role-database`, declared, {
            parent: this,
            dependsOn: [...server.ready, ...(this.join ? [this.join] : [])],
            additionalSecretOutputs: ["admin", "passwordHash", "ensure"],
        });

        this.ready = [...(this.join ? [this.join] : []), this.roleAndDatabase];
        this.databaseName = pulumi.output(this.roleAndDatabase.id).apply(() => names.database);
        this.roleName = pulumi.output(this.roleAndDatabase.id).apply(() => names.role);
        // Built after the role is in place, so consumers wait for the password to reach the server.
        this.databaseUrl = pulumi.secret(
            pulumi
                .all([this.password.result, server.appEndpoint, this.roleAndDatabase.id])
                .apply(([password, endpoint]) => databaseUrl(names.role, password, endpoint.host, endpoint.port, names.database, endpoint.sslmode, endpoint.channelBinding)),
        );
        this.registerOutputs({ databaseName: this.databaseName, roleName: this.roleName, databaseUrl: this.databaseUrl });
    }
}
