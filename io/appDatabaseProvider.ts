// The Pulumi dynamic provider behind every app database (components/appDatabase.ts), on the container
// server and on the managed one alike. It runs in the engine's dynamic-provider process, from a
// serialized copy of this object: so it is self-contained (node's own modules and `pg`, required
// where used) and carries no SQL of its own. The statements come rendered in its inputs
// (render/postgres.ts), where they are tested against a real PostgreSQL.
import type * as pulumi from "@pulumi/pulumi";
import type { Client } from "pg";
import type { AppDatabaseDeclaration, ManagedServerTls, SqlStep } from "../render/postgres";

/** How the admin reaches the server: through the admin channel (an SSH forward in prod). */
export interface AdminConnection {
    readonly host: string;
    readonly port: number;
    readonly user: string;
    readonly password: string;
    readonly database: string;
    /** TLS: the managed server (the container server is reached over the host's loopback and its own internal network). */
    readonly ssl: boolean;
    /** With ssl, required: what is checked of the server before the password is used (render/postgres.ts, managedServerTls). */
    readonly tls?: AdminTls;
}

/** The server's certificate against the instance's (the name being the endpoint's IP, not the forward's), and channel binding. */
export interface AdminTls extends ManagedServerTls {
    readonly channelBinding: "require";
}

/** What is read back from the server; each also a declared property. */
export type ObservedAppDatabase = Pick<AppDatabaseDeclaration, "login" | "connectionLimit" | "owner" | "publicConnect" | "adminMember">;

/** The resource's inputs and state: the declaration, and how the admin reaches the server. */
export interface AppDatabaseState extends AppDatabaseDeclaration {
    readonly admin: AdminConnection;
}

/** The properties a change of which is an update (never a replace: nothing here may delete data). */
const COMPARED_PROPERTIES = ["server", "role", "database", "connectionLimit", "passwordHash", "login", "owner", "publicConnect", "adminMember"] as const;

/**
 * The managed admin's connection through the admin channel (`channel`: the forward's end here): TLS
 * checked against the instance's certificate, the name under verify-full being the endpoint's IP.
 */
export function managedAdminConnection(channel: { readonly host: string; readonly port: number }, user: string, password: string, tls: ManagedServerTls): AdminConnection {
    return { host: channel.host, port: channel.port, user, password, database: "postgres", ssl: true, tls: { ...tls, channelBinding: "require" } };
}

/** Marks a refusal of the server (its certificate, its authentication): not worth a retry. */
const REFUSED = "will not authenticate to this server";

/**
 * One admin session, checked (with `tls`) before the password is used: the server's certificate
 * must chain to the instance's certificate and, under verify-full, name the endpoint's IP (the client
 * dials the forward's 127.0.0.1: the name to check is not the one dialed); and the server must
 * authenticate the admin with SCRAM-SHA-256-PLUS bound to this TLS channel. node-postgres's
 * `enableChannelBinding` only prefers channel binding, so the rest is enforced here: the password is
 * handed over only to a SASL request that offers SCRAM-SHA-256-PLUS (never to a cleartext or MD5
 * request), and a session the server opened without that exchange ending (trust) is closed before
 * any statement is sent.
 */
export async function openAdminSession(admin: AdminConnection): Promise<Client> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pg: typeof import("pg") = require("pg");
    const tls = admin.tls;
    if (admin.ssl && tls === undefined) {
        throw new Error(`${REFUSED}: the state holds a TLS admin connection without the server's certificate (written before the platform checked the managed server); run \`pulumi up\` (without --refresh) once`);
    }
    if (tls === undefined) {
        const client = new pg.Client({ host: admin.host, port: admin.port, user: admin.user, password: admin.password, database: admin.database, ssl: false, connectionTimeoutMillis: 10_000, application_name: "platform-app-database" });
        await client.connect();
        return client;
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const nodeTls: typeof import("tls") = require("tls");
    const seen: { asked?: string; mechanisms?: string[]; finished: boolean } = { finished: false };
    const client = new pg.Client({
        host: admin.host,
        port: admin.port,
        user: admin.user,
        database: admin.database,
        // Asked for only when the server requests a password; the request must be the bound SCRAM one.
        password: async () => {
            if (seen.asked !== "SASL" || !(seen.mechanisms ?? []).includes("SCRAM-SHA-256-PLUS")) {
                const offered = seen.asked === "SASL" ? `SASL ${(seen.mechanisms ?? []).join(", ")}` : seen.asked;
                throw new Error(`${REFUSED}: it asked for ${offered ?? "a password"}, not SCRAM-SHA-256-PLUS (channel binding is required)`);
            }
            return admin.password;
        },
        ssl: {
            ca: tls.rootCertificate,
            rejectUnauthorized: true,
            checkServerIdentity: (_dialed: string, cert: import("tls").PeerCertificate) => (tls.sslmode === "verify-full" ? nodeTls.checkServerIdentity(tls.serverName, cert) : undefined),
        },
        enableChannelBinding: true,
        connectionTimeoutMillis: 10_000,
        application_name: "platform-app-database",
    });
    // The connection exists before connect(); these run before the client's own handlers.
    const connection = (client as unknown as { connection: import("events").EventEmitter }).connection;
    connection.on("authenticationCleartextPassword", () => (seen.asked = "a cleartext password"));
    connection.on("authenticationMD5Password", () => (seen.asked = "an MD5 password"));
    connection.on("authenticationSASL", (msg: { mechanisms: string[] }) => {
        seen.asked = "SASL";
        seen.mechanisms = msg.mechanisms;
    });
    // The client checks the server's final SCRAM signature right after this; a wrong one fails connect().
    connection.on("authenticationSASLFinal", () => (seen.finished = true));
    await client.connect();
    if (!seen.finished || !(seen.mechanisms ?? []).includes("SCRAM-SHA-256-PLUS")) {
        await client.end().catch(() => undefined);
        throw new Error(`${REFUSED}: it let ${admin.user} in without a SCRAM-SHA-256-PLUS exchange (channel binding is required)`);
    }
    return client;
}

async function connect(admin: AdminConnection, what: string): Promise<Client> {
    let lastError: unknown;
    // The forward or the server may be a moment from accepting: a bounded retry, then a clear error.
    for (let attempt = 0; attempt < 10; attempt++) {
        let client: Client | undefined;
        try {
            client = await openAdminSession(admin);
            // Only catalog objects are used, schema-qualified; no object of any app's is ever resolved.
            await client.query("SET search_path = pg_catalog, pg_temp");
            return client;
        } catch (e) {
            lastError = e;
            await client?.end().catch(() => undefined);
            // A server that fails the checks is not a moment from accepting.
            const code = String((e as { code?: unknown }).code ?? "");
            if (/password authentication failed|does not exist|permission denied|will not authenticate|certificate|Hostname\/IP does not match|SCRAM|SASL/.test(String(e)) || /CERT|SELF_SIGNED|ALTNAME/.test(code)) break;
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

/** Whether the way the admin checks the server differs between the state and the declaration. */
export function adminTlsChanged(olds: Partial<AppDatabaseState>, news: Partial<AppDatabaseState>): boolean {
    return JSON.stringify(olds.admin?.tls ?? null) !== JSON.stringify(news.admin?.tls ?? null);
}

export const appDatabaseProvider: pulumi.dynamic.ResourceProvider = {
    async create(inputs: AppDatabaseState) {
        return { id: inputs.role, outs: await apply(inputs) };
    },
    // Only what the declaration says is compared: the admin endpoint (a forward's port), the rendered
    // statements and the provider's own code may change without the role or database changing.
    // One exception: how the server is checked (the admin's tls). A state without it (written before
    // the checks) must take the new one, or a later refresh or delete would connect with the old.
    async diff(_id: string, olds: AppDatabaseState, news: AppDatabaseState) {
        return { changes: changedProperties(olds, news).length > 0 || adminTlsChanged(olds, news) };
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
