import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { appDatabaseNames, databaseUrl } from "../lib/postgres";

export interface AppDatabaseArgs {
    /** Catalog name of the app; the database and role are named from it. */
    readonly app: string;
    /** Admin provider of the PostgresServer. */
    readonly provider: postgresql.Provider;
    /** Host and port the app's backend reaches PostgreSQL at. */
    readonly serverHost: string;
    readonly serverPort: number;
    /** Bump to rotate the password: the role and the backend's DATABASE_URL change in one `up`. */
    readonly passwordVersion: number;
}

/**
 * One app's database and login role. No other app's role can connect to it (CONNECT is revoked from
 * PUBLIC), and removing the app from a stack keeps the data: database and role are retained.
 */
export class AppDatabase extends pulumi.ComponentResource {
    public readonly password: random.RandomPassword;
    public readonly role: postgresql.Role;
    public readonly database: postgresql.Database;
    public readonly revokePublicConnect: postgresql.Grant;
    /** Secret. */
    public readonly databaseUrl: pulumi.Output<string>;
    public readonly databaseName: pulumi.Output<string>;
    public readonly roleName: pulumi.Output<string>;

    constructor(name: string, args: AppDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:database:AppDatabase", name, {}, opts);
        const names = appDatabaseNames(args.app);
        const pgOpts = { parent: this, provider: args.provider };

        this.password = new random.RandomPassword(
            `${name}-password`,
            { length: 32, special: false, keepers: { version: String(args.passwordVersion) } },
            { parent: this },
        );
        // Retained with the database: it owns the data, and DROP ROLE would fail on an owner anyway.
        this.role = new postgresql.Role(
            `${name}-role`,
            { name: names.role, login: true, password: pulumi.secret(this.password.result), connectionLimit: 50 },
            { ...pgOpts, retainOnDelete: true },
        );
        this.database = new postgresql.Database(
            `${name}-database`,
            { name: names.database, owner: this.role.name, encoding: "UTF8" },
            { ...pgOpts, retainOnDelete: true },
        );
        this.revokePublicConnect = new postgresql.Grant(
            `${name}-revoke-public`,
            { database: this.database.name, role: "public", objectType: "database", privileges: [] },
            pgOpts,
        );

        this.databaseName = this.database.name;
        this.roleName = this.role.name;
        // Built from the role's outputs, so consumers wait for the password change to reach the server.
        this.databaseUrl = pulumi.secret(
            pulumi
                .all([this.role.name, this.role.password, this.database.name, this.revokePublicConnect.id])
                .apply(([role, password, database]) => databaseUrl(role, password ?? "", args.serverHost, args.serverPort, database)),
        );
        this.registerOutputs({ databaseName: this.databaseName, roleName: this.roleName, databaseUrl: this.databaseUrl });
    }
}
