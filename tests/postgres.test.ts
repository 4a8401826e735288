// The pure parts of render/postgres.ts: the connection budget the lead's config validation calls, the
// settings rendered from the same numbers, and the refusals of anything that would reach SQL or a shell.
import * as assert from "assert";
import { catalog } from "../apps";
import { AppDefinition } from "../apps/types";
import {
    ADMIN_CONNECTION_RESERVE,
    DEFAULT_DATABASE_CONNECTION_LIMIT,
    POSTGRES_IMAGE,
    POSTGRES_MAJOR,
    POSTGRES_MAX_CONNECTIONS,
    SUPERUSER_RESERVED_CONNECTIONS,
    appDatabaseNames,
    appDatabaseNetwork,
    connectionBudgetProblems,
    databaseConnectionLimit,
    declareAppDatabase,
    ensureAppDatabaseSteps,
    retireAppDatabaseSteps,
    scramVerifier,
    postgresSettings,
    psqlInContainerCommand,
    quoteIdentifier,
    quoteLiteral,
    serverReconcileSql,
} from "../render/postgres";

const app = (name: string, limit?: number, database = true): AppDefinition => ({ ...catalog.demo, name, database, databaseConnectionLimit: limit });
const PASSWORD = "a-long-enough-password-1234";
const SUPERUSER = { user: "postgres", superuser: true };
const MANAGED_ADMIN = { user: "platform_admin", superuser: false };

describe("connection budget (render/postgres.ts)", () => {
    it("max_connections is rendered from the same constant the budget uses, with the superuser slots inside the reserve", () => {
        const settings = postgresSettings(1024);
        assert.strictEqual(settings.max_connections, String(POSTGRES_MAX_CONNECTIONS));
        assert.strictEqual(settings.superuser_reserved_connections, String(SUPERUSER_RESERVED_CONNECTIONS));
        assert.ok(SUPERUSER_RESERVED_CONNECTIONS <= ADMIN_CONNECTION_RESERVE);
    });

    it("the whole catalog fits together", () => {
        assert.deepStrictEqual(connectionBudgetProblems(Object.values(catalog)), []);
        const sum = Object.values(catalog).filter((a) => a.database).reduce((s, a) => s + databaseConnectionLimit(a), 0);
        assert.ok(sum <= POSTGRES_MAX_CONNECTIONS - ADMIN_CONNECTION_RESERVE, `catalog uses ${sum}`);
    });

    it("an app without a limit gets the default; apps without a database count for nothing", () => {
        assert.strictEqual(databaseConnectionLimit(app("plain")), DEFAULT_DATABASE_CONNECTION_LIMIT);
        assert.deepStrictEqual(connectionBudgetProblems([app("a", 90), app("b", 90, false)]), []);
    });

    it("too many together: one message with the sum, each app's file, the budget and the fix", () => {
        const problems = connectionBudgetProblems([app("shop", 50), app("blog", 45)]);
        assert.strictEqual(problems.length, 1);
        assert.match(problems[0], /sum to 95 \(shop 50 in apps\/shop\.ts, blog 45 in apps\/blog\.ts\) but PostgreSQL allows 90 for apps/);
        assert.match(problems[0], /max_connections 100 minus 10 kept for the admin and backups/);
        assert.match(problems[0], /Fix: lower databaseConnectionLimit in apps\/<name>\.ts/);
    });

    it("a limit that is not a whole number in range names the app's file", () => {
        for (const bad of [0, -1, 2.5, 91, NaN]) {
            const problems = connectionBudgetProblems([app("shop", bad)]);
            assert.strictEqual(problems.length, 1, String(bad));
            assert.match(problems[0], /^apps\/shop\.ts: databaseConnectionLimit .* must be a whole number from 1 to 90\. Fix: set databaseConnectionLimit in apps\/shop\.ts/);
        }
    });
});

describe("names, SQL and commands refuse hostile input (render/postgres.ts)", () => {
    it("the image's tag is of the declared major", () => {
        assert.ok(POSTGRES_IMAGE.startsWith(`postgres:${POSTGRES_MAJOR}.`));
    });

    it("app names that could not be plain identifiers or network names are refused", () => {
        for (const bad of ['a"b', "a;b", "A", "1app", "app name", "a'b", "x".repeat(40), "app\n", "../x"]) {
            assert.throws(() => appDatabaseNames(bad), /cannot name a database/, bad);
            assert.throws(() => appDatabaseNetwork(bad), /cannot name a network/, bad);
            assert.throws(() => ensureAppDatabaseSteps(bad, PASSWORD, 5, SUPERUSER));
        }
        assert.deepStrictEqual(appDatabaseNames("my-app"), { database: "my_app_db", role: "app_my_app" });
        assert.strictEqual(appDatabaseNetwork("my-app"), "platform-db-my-app");
    });

    it("quoting doubles quotes and refuses NUL", () => {
        assert.strictEqual(quoteIdentifier('a"b'), '"a""b"');
        assert.strictEqual(quoteLiteral("it's"), "'it''s'");
        assert.throws(() => quoteLiteral("a\0b"));
        assert.throws(() => quoteIdentifier("a\0b"));
    });

    it("passwords with a newline, a control byte or non-ASCII are refused (a newline could start a psql meta-command)", () => {
        for (const bad of [`${PASSWORD}\n\\! id`, `${PASSWORD}\r`, `${PASSWORD}\t`, `${PASSWORD}\u00e9`, "short", "x".repeat(129)]) {
            assert.throws(() => ensureAppDatabaseSteps("demo", bad, 5, SUPERUSER), /printable ASCII/, JSON.stringify(bad));
            assert.throws(() => serverReconcileSql(bad), /printable ASCII/, JSON.stringify(bad));
        }
    });

    it("the password never reaches the server: only its SCRAM verifier, deterministic per role and password", () => {
        const hostile = "pass'word-long-enough;--";
        const text = (steps: { sql: string; unless?: string }[]) => steps.map((s) => `${s.sql}\n${s.unless ?? ""}`).join("\n");
        for (const admin of [SUPERUSER, MANAGED_ADMIN]) {
            const sql = text(ensureAppDatabaseSteps("demo", hostile, 5, admin));
            assert.ok(!sql.includes(hostile) && !sql.includes("pass''word"), "no form of the password");
            assert.ok(sql.includes(`PASSWORD '${scramVerifier("app_demo", hostile)}'`));
        }
        assert.match(scramVerifier("app_demo", PASSWORD), /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
        assert.strictEqual(scramVerifier("app_demo", PASSWORD), scramVerifier("app_demo", PASSWORD), "the same on every run: a plan renders identically");
        assert.notStrictEqual(scramVerifier("app_demo", PASSWORD), scramVerifier("app_other", PASSWORD), "another role, another salt");
        assert.notStrictEqual(scramVerifier("app_demo", PASSWORD), scramVerifier("app_demo", PASSWORD + "x"));
    });

    it("a superuser admin resets every attribute; an admin that is no superuser sets only what it may, and becomes a member of the role", () => {
        const superSteps = ensureAppDatabaseSteps("demo", PASSWORD, 5, SUPERUSER).map((s) => s.sql);
        assert.ok(superSteps.some((s) => s.startsWith('ALTER ROLE "app_demo" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 5 ')));
        assert.ok(!superSteps.some((s) => s.startsWith("GRANT")));
        const managedSteps = ensureAppDatabaseSteps("demo", PASSWORD, 5, MANAGED_ADMIN).map((s) => s.sql);
        assert.ok(managedSteps.some((s) => s.startsWith('ALTER ROLE "app_demo" WITH LOGIN NOCREATEDB NOCREATEROLE CONNECTION LIMIT 5 ')));
        assert.ok(!managedSteps.join("\n").includes("SUPERUSER") && !managedSteps.join("\n").includes("BYPASSRLS"));
        const grant = managedSteps.indexOf('GRANT "app_demo" TO "platform_admin"');
        assert.ok(grant >= 0 && grant < managedSteps.findIndex((s) => s.startsWith("CREATE DATABASE")), "a member before it makes the role an owner");
        assert.deepStrictEqual(
            [declareAppDatabase("demo", PASSWORD, 5, SUPERUSER, "x").wantsAdminMember, declareAppDatabase("demo", PASSWORD, 5, MANAGED_ADMIN, "x").wantsAdminMember],
            [false, true],
        );
    });

    it("retiring an app revokes its login and ends its sessions, and drops nothing", () => {
        const sql = retireAppDatabaseSteps("demo").map((s) => s.sql).join("\n");
        assert.match(sql, /ALTER ROLE "app_demo" WITH NOLOGIN/);
        assert.match(sql, /pg_catalog\.pg_terminate_backend/);
        assert.doesNotMatch(sql, /DROP/i);
    });

    it("a connection limit must be a whole number in range", () => {
        for (const bad of [0, 1.5, 101, -3]) assert.throws(() => ensureAppDatabaseSteps("demo", PASSWORD, bad, SUPERUSER), /connection limit/);
    });

    it("the docker exec command takes only a plain container name, and no secret", () => {
        assert.strictEqual(psqlInContainerCommand(), "docker exec -i platform-postgres psql -X -q -v ON_ERROR_STOP=1 -U postgres -d postgres");
        for (const bad of ["x; rm -rf /", "$(id)", "-u root", ""]) assert.throws(() => psqlInContainerCommand(bad), /plain name/);
    });

    it("every session carrying a password first keeps its statements out of the server log", () => {
        const sql = serverReconcileSql(PASSWORD);
        const firstPassword = sql.indexOf(PASSWORD);
        for (const setting of ["SET log_statement = 'none';", "SET log_min_duration_statement = -1;", "SET log_min_error_statement = panic;"]) {
            const at = sql.indexOf(setting);
            assert.ok(at >= 0 && at < firstPassword, setting);
        }
    });
});
