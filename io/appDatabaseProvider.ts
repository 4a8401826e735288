// The Pulumi dynamic provider behind every app database (components/appDatabase.ts), on the container
// server and on the managed one alike. It runs in the engine's dynamic-provider process, from a
// serialized copy of this object: so it is self-contained (node's own modules and `pg`, required
// where used) and carries no SQL of its own. The statements come rendered in its inputs
// (render/postgres.ts), where they are tested against a real PostgreSQL.
import type * as pulumi from "@pulumi/pulumi";
import type { Client } from "pg";
import type { AppDatabaseDeclaration, SqlStep } from "../render/postgres";

/** How the admin reaches the server: through the admin channel (an SSH forward in prod). */
export interface AdminConnection {
    readonly host: string;
    readonly port: number;
    readonly user: string;
    readonly password: string;
    readonly database: string;
    /** TLS without verification of the name (the name seen is the forward's): the managed server. */
    readonly ssl: boolean;
}

/** What is read back from the server; each also a declared property. */
export type ObservedAppDatabase = Pick<AppDatabaseDeclaration, "login" | "connectionLimit" | "owner" | "publicConnect" | "adminMember">;

/** The resource's inputs and state: the declaration, and how the admin reaches the server. */
export interface AppDatabaseState extends AppDatabaseDeclaration {
    readonly admin: AdminConnection;
}

/** The properties a change of which is an update (never a replace: nothing here may delete data). */
const COMPARED_PROPERTIES = ["server", "role", "database", "connectionLimit", "passwordHash", "login", "owner", "publicConnect", "adminMember"] as const;

async function connect(admin: AdminConnection, what: string): Promise<Client> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pg: typeof import("pg") = require("pg");
    let lastError: unknown;
    // The forward or the server may be a moment from accepting: a bounded retry, then a clear error.
    for (let attempt = 0; attempt < 10; attempt++) {
        const client = new pg.Client({
            host: admin.host,
            port: admin.port,
            user: admin.user,
            password: admin.password,
            database: admin.database,
            ssl: admin.ssl ? { rejectUnauthorized: false } : false,
            connectionTimeoutMillis: 10_000,
            application_name: "platform-app-database",
        });
        try {
            await client.connect();
            // Only catalog objects are used, schema-qualified; no object of any app's is ever resolved.
            await client.query("SET search_path = pg_catalog, pg_temp");
            return client;
        } catch (e) {
            lastError = e;
            await client.end().catch(() => undefined);
            if (/password authentication failed|does not exist|permission denied/.test(String(e))) break;
            await new Promise((resolve) => setTimeout(resolve, 1_000 * Math.min(attempt + 1, 3)));
        }
    }
    throw new Error(
        `${what}: cannot reach PostgreSQL as ${admin.user} at ${admin.host}:${admin.port} (${(lastError as Error)?.message ?? lastError}). ` +
            "The admin channel is open only while the program runs: use `pulumi refresh --run-program` and `pulumi destroy --run-program`.",
    );
}

async function withAdmin<T>(admin: AdminConnection, what: string, work: (client: Client) => Promise<T>): Promise<T> {
    const client = await connect(admin, what);
    try {
        return await work(client);
    } finally {
        await client.end().catch(() => undefined);
    }
}

async function runSteps(client: Client, steps: readonly SqlStep[]): Promise<void> {
    for (const step of steps) {
        if (step.unless !== undefined && ((await client.query(step.unless)).rowCount ?? 0) > 0) continue;
        await client.query(step.sql);
    }
}

async function observe(client: Client, state: Pick<AppDatabaseState, "role" | "database" | "admin" | "wantsAdminMember" | "stateSql">): Promise<ObservedAppDatabase | undefined> {
    const result = await client.query(state.stateSql, [state.role, state.database, state.admin.user]);
    const row = result.rows[0];
    if (row === undefined) return undefined;
    return {
        login: row.login === true,
        connectionLimit: Number(row.connectionLimit),
        owner: row.owner ?? "",
        publicConnect: row.publicConnect === true,
        // A superuser is a member of everything: only a declared membership is observed.
        adminMember: state.wantsAdminMember ? row.adminMember === true : false,
    };
}

async function apply(inputs: AppDatabaseState): Promise<AppDatabaseState> {
    return withAdmin(inputs.admin, `app database ${inputs.database}`, async (client) => {
        await runSteps(client, inputs.ensure);
        const observed = await observe(client, inputs);
        if (observed === undefined) throw new Error(`app database ${inputs.database}: role ${inputs.role} is missing right after it was declared`);
        return { ...inputs, ...observed };
    });
}

/** Which compared properties differ between the state and the declaration. */
export function changedProperties(olds: Partial<AppDatabaseState>, news: Partial<AppDatabaseState>): string[] {
    return COMPARED_PROPERTIES.filter((key) => JSON.stringify(olds[key]) !== JSON.stringify(news[key]));
}

export const appDatabaseProvider: pulumi.dynamic.ResourceProvider = {
    async create(inputs: AppDatabaseState) {
        return { id: inputs.role, outs: await apply(inputs) };
    },
    // Only what the declaration says is compared: the admin endpoint (a forward's port), the rendered
    // statements and the provider's own code may change without the role or database changing.
    async diff(_id: string, olds: AppDatabaseState, news: AppDatabaseState) {
        return { changes: changedProperties(olds, news).length > 0 };
    },
    async update(_id: string, _olds: AppDatabaseState, news: AppDatabaseState) {
        return { outs: await apply(news) };
    },
    // A refresh reads what is in place: a dropped role leaves the state (the next `up` creates or
    // adopts it), a changed login, limit, owner or privilege reads as drift the next `up` undoes.
    async read(id: string, props: AppDatabaseState) {
        const observed = await withAdmin(props.admin, `app database ${props.database}`, (client) => observe(client, props));
        if (observed === undefined) return { id: "", props: {} };
        return { id, props: { ...props, ...observed } };
    },
    async delete(_id: string, props: AppDatabaseState) {
        await withAdmin(props.admin, `app database ${props.database}`, (client) => runSteps(client, props.retire));
    },
};
