// Drives the app-database provider (io/appDatabaseProvider.ts) directly against a real PostgreSQL,
// exactly as the engine's dynamic-provider process calls it: create (create or adopt), update, read,
// delete, with the declaration components/appDatabase.ts gives it.
import { AdminConnection, AppDatabaseState, appDatabaseProvider } from "../../io/appDatabaseProvider";
import { DatabaseAdmin, declareAppDatabase } from "../../render/postgres";

export function declaredState(admin: AdminConnection, app: string, password: string, connectionLimit: number, dbAdmin: DatabaseAdmin = { user: admin.user, superuser: true }): AppDatabaseState {
    return { admin, ...declareAppDatabase(app, password, connectionLimit, dbAdmin, dbAdmin.superuser ? "container" : "managed:test") };
}

export interface ProviderRun {
    readonly status: number;
    readonly stderr: string;
    readonly state?: AppDatabaseState;
}

/** `create` as the engine calls it for a new (or re-added) app: 0 and the state, or 1 and the error. */
export async function ensureAppDatabase(admin: AdminConnection, app: string, password: string, connectionLimit: number, dbAdmin?: DatabaseAdmin): Promise<ProviderRun> {
    try {
        const result = await appDatabaseProvider.create!(declaredState(admin, app, password, connectionLimit, dbAdmin));
        return { status: 0, stderr: "", state: result.outs };
    } catch (e) {
        return { status: 1, stderr: String((e as Error).message ?? e) };
    }
}

export const provider = appDatabaseProvider;
