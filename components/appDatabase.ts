import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { appDatabaseNames, appDatabaseNetwork, databaseUrl, ensureAppDatabaseSql, psqlInContainerCommand } from "../render/postgres";
import { shellQuote } from "../render/shell";
import { PostgresServer } from "./postgresServer";

export interface AppDatabaseArgs {
    /** Catalog name of the app; the database, role and network are named from it. */
    readonly app: string;
    /** The server the database lives in. */
    readonly server: PostgresServer;
    /** Bump to rotate the password: the role and the backend's DATABASE_URL change in one `up`. */
    readonly passwordVersion: number;
    /** Most connections the app's role may hold (catalog `databaseConnectionLimit`). */
    readonly connectionLimit: number;
}

/**
 * One app's database, login role and private way to the server.
 *
 * - Network: `platform-db-<app>`, internal, joined by this app's backend and by PostgreSQL (with the
 *   alias `postgres`, through `docker network connect`, so the server is never recreated when an app
 *   comes or goes). No other app's container is on it.
 * - Role and database: declared with idempotent SQL over the server's local socket (`ensure`), so a
 *   removed app's retained role and database are adopted when it comes back: the role gets the
 *   password in state, the data stays. No other role can connect to the database (CONNECT is revoked
 *   from PUBLIC, also on the maintenance databases by the server's reconcile step).
 * - Removing the app keeps role and database (retainOnDelete; `ensure` has nothing to undo).
 */
export class AppDatabase extends pulumi.ComponentResource {
    public readonly password: random.RandomPassword;
    /** Internal network of this app's backend and PostgreSQL. */
    public readonly network: docker.Network;
    /** Attaches PostgreSQL to `network` as `postgres`; detaches it when the app goes. */
    public readonly join: command.remote.Command | command.local.Command;
    /** Creates or adopts the role and database and sets the declared password, limit and privileges. */
    public readonly ensure: command.remote.Command | command.local.Command;
    public readonly revokePublicConnect: postgresql.Grant;
    /** What the backend must wait for: PostgreSQL reachable on `network`, role and database in place. */
    public readonly ready: pulumi.Resource[];
    /** Secret. */
    public readonly databaseUrl: pulumi.Output<string>;
    public readonly databaseName: pulumi.Output<string>;
    public readonly roleName: pulumi.Output<string>;

    constructor(name: string, args: AppDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:database:AppDatabase", name, {}, opts);
        const { server } = args;
        const names = appDatabaseNames(args.app);
        const networkName = appDatabaseNetwork(args.app);

        this.network = new docker.Network(`${name}-network`, { name: networkName, internal: true, driver: "bridge" }, { parent: this, provider: server.host.docker });

        // Re-run (an update, never a replace: a replaced command's delete would run last and undo the
        // new connection) whenever the server container is recreated, since a new container starts on
        // its own networks only.
        const network = shellQuote(networkName);
        const container = shellQuote(server.containerName);
        const connect = pulumi.interpolate`# postgres container ${server.container.id}
docker network connect --alias ${shellQuote(server.hostname)} ${network} ${container} 2>/dev/null || docker network inspect ${network} --format '{{range .Containers}}{{.Name}} {{end}}' | grep -qw ${container}`;
        this.join = server.host.runCommand(
            `${name}-join`,
            { create: connect, update: connect, delete: `docker network disconnect ${network} ${container} || true` },
            { parent: this, dependsOn: [this.network, server.container] },
        );

        this.password = new random.RandomPassword(
            `${name}-password`,
            { length: 32, special: false, keepers: { version: String(args.passwordVersion) } },
            { parent: this },
        );
        const psql = psqlInContainerCommand(server.containerName);
        this.ensure = server.host.runCommand(
            `${name}-ensure`,
            {
                create: psql,
                update: psql,
                // The password travels only on stdin, as a secret.
                stdin: pulumi.secret(this.password.result.apply((password) => ensureAppDatabaseSql(args.app, password, args.connectionLimit))),
                // Retained: the role owns the data, which outlives the app's removal.
                delete: "true",
            },
            { parent: this, dependsOn: [server.reconcile], retainOnDelete: true },
        );

        // Kept from the provider-managed design: it reads back the database's grants on refresh.
        this.revokePublicConnect = new postgresql.Grant(
            `${name}-revoke-public`,
            { database: names.database, role: "public", objectType: "database", privileges: [] },
            { parent: this, provider: server.provider, dependsOn: [this.ensure] },
        );

        this.ready = [this.join, this.ensure];
        this.databaseName = pulumi.output(this.ensure.id).apply(() => names.database);
        this.roleName = pulumi.output(this.ensure.id).apply(() => names.role);
        // Built after `ensure`, so consumers wait for the password to reach the server.
        this.databaseUrl = pulumi.secret(
            pulumi
                .all([this.password.result, this.ensure.id, this.revokePublicConnect.id])
                .apply(([password]) => databaseUrl(names.role, password, server.hostname, server.port, names.database)),
        );
        this.registerOutputs({ databaseName: this.databaseName, roleName: this.roleName, databaseUrl: this.databaseUrl, network: this.network.name });
    }
}
