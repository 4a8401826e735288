// Release migrations (the catalog's `migrate`) as the program declares them, and the container names
// that carry their release (releaseKey): a new release is a new resource beside the old one.
import * as assert from "assert";
import { catalog } from "../apps";
import { AppDefinition } from "../apps/types";
import { ConfigError, RawConfig, parsePlatformConfig } from "../config/platformConfig";
import { definePlatform } from "../components/platform";
import { MIGRATE_TIMEOUT_SECONDS, migrationArguments, migrationProblems, releaseKey } from "../render/containers";
import { RunResult, T, runProgram } from "./harness";
import { LOCAL_RAW, PROD_RAW, PROD_SECRET_KEYS } from "./fixtures";

const MIGRATE = ["sh", "-c", "psql \"$DATABASE_URL\" -c 'ALTER TABLE t ADD COLUMN IF NOT EXISTS c int'"];
const withMigration = (app: AppDefinition, over: Partial<AppDefinition> = {}): AppDefinition => ({ ...app, migrate: MIGRATE, ...over });
const catalogWith = (...apps: AppDefinition[]) => ({ ...catalog, ...Object.fromEntries(apps.map((a) => [a.name, a])) });

function problemsOf(raw: RawConfig, cat: Record<string, AppDefinition>): readonly string[] {
    try {
        parsePlatformConfig(raw, { catalog: cat, isSecret: () => false, testStack: true });
        return [];
    } catch (e) {
        if (e instanceof ConfigError) return e.problems;
        throw e;
    }
}

const forward = { openForward: async () => ({ host: "127.0.0.1" as const, port: 40123, pid: 1, close: () => undefined }) };
const run = (raw: RawConfig, cat: Record<string, AppDefinition>) =>
    runProgram(raw.target === "local" ? "local" : "prod", () => definePlatform(parsePlatformConfig(raw, { catalog: cat, isSecret: (k) => PROD_SECRET_KEYS.includes(k), testStack: true }), forward));

describe("release migrations: the catalog's migrate, checked before anything is declared", () => {
    const cases: [string, Partial<AppDefinition>, RegExp][] = [
        ["an empty command", { migrate: [] }, /migrate must be a command as a list of words/],
        ["a word with a control character", { migrate: ["sh", "-c", "echo \u001b[2J"] }, /migrate\[2\] must be a non-empty string .* without control characters/],
        ["an empty word", { migrate: ["npm", ""] }, /migrate\[1\]/],
        ["no database", { migrate: ["true"], database: false }, /only an app with database: true has. Fix: set database: true, or remove migrate/],
        ["a deadline of 0", { migrate: ["true"], migrateTimeoutSeconds: 0 }, /migrateTimeoutSeconds 0 must be a whole number of seconds from 1 to 86400/],
        ["a fractional deadline", { migrate: ["true"], migrateTimeoutSeconds: 1.5 }, /migrateTimeoutSeconds 1.5/],
        ["a deadline without a command", { migrateTimeoutSeconds: 60 }, /migrateTimeoutSeconds is set but there is no migrate command/],
    ];
    for (const [what, over, message] of cases) {
        it(`refuses ${what}, naming the app's key and its catalog file`, () => {
            const problems = problemsOf(LOCAL_RAW, catalogWith({ ...catalog.demo, ...over }));
            const found = problems.find((p) => message.test(p));
            assert.ok(found, problems.join("\n"));
            assert.match(found!, /^platform:apps\.demo: apps\/demo\.ts: /);
        });
    }

    it("a stack that does not run the app is not held up by its migration", () => {
        assert.deepStrictEqual(problemsOf(LOCAL_RAW, catalogWith({ ...catalog.app1, migrate: [] })), []);
    });

    it("the arguments of migrate.sh: app, container, deadline, then the words as given", () => {
        const app = withMigration(catalog.demo, { migrateTimeoutSeconds: 42 });
        assert.deepStrictEqual(migrationArguments(app, "demo-backend-x-1234abcd-0000001"), ["demo", "demo-backend-x-1234abcd-0000001", "42", ...MIGRATE]);
        assert.strictEqual(migrationArguments(withMigration(catalog.demo), "c")[2], String(MIGRATE_TIMEOUT_SECONDS));
        assert.throws(() => migrationArguments(withMigration(catalog.demo), "c;reboot"), /not a container name/);
        assert.throws(() => migrationArguments(catalog.demo, "c"), /no migrate command/);
        assert.deepStrictEqual(migrationProblems(catalog.demo), []);
    });
});

describe("release migrations in the program (mocks)", () => {
    let local: RunResult;
    let prod: RunResult;
    before(async () => {
        local = await run(LOCAL_RAW, catalogWith(withMigration(catalog.demo)));
        prod = await run(PROD_RAW, catalogWith(withMigration(catalog.app1)));
    });

    it("one migration command per migrating app, run again for each new backend container and never undone", () => {
        const m = local.one(T.localCommand, "demo-migrate");
        const backend = local.appContainer("demo", "backend");
        assert.strictEqual(m.parent, local.resources.find((r) => r.type === "platform:app:WebApp" && r.name === "demo")!.urn);
        assert.ok(m.dependencies.includes(backend.urn), "it runs once the new backend exists");
        assert.strictEqual(m.inputs.delete, "true");
        assert.strictEqual(m.inputs.create, m.inputs.update);
        assert.strictEqual(m.inputs.triggers.length, 1, "the backend's id: a new backend replaces the command, which runs its create");
        assert.deepStrictEqual(prod.byType(T.remoteCommand).filter((c) => c.name.endsWith("-migrate")).map((c) => c.name), ["app1-migrate"], "app2 has no migrate");
    });

    it("the command is the backend's health gate, then migrate.sh in a one-off of that backend, every word quoted for sh", () => {
        const create: string = local.one(T.localCommand, "demo-migrate").inputs.create;
        const backendName = /CONTAINERS='(demo-backend-0\.9\.2-[0-9a-f]{8}-[0-9a-f]{7}):120'/.exec(create)?.[1];
        assert.ok(backendName, create.slice(0, 300));
        assert.ok(create.includes(` migrate 'demo' '${backendName}' '600' 'sh' '-c' 'psql "$DATABASE_URL" -c '\\''ALTER TABLE t ADD COLUMN IF NOT EXISTS c int'\\'''`), create.slice(-400));
        assert.match(create, /LIVE_CONF='[^']*\/nginx\.conf'/);
        assert.ok(create.indexOf("health-gate") < create.indexOf("migrate: $app"), "the gate comes first");
    });

    it("the edge switches only after the migration: its routes depend on the migration command", () => {
        for (const [r, type, name] of [
            [local, T.localCommand, "demo-migrate"],
            [prod, T.remoteCommand, "app1-migrate"],
        ] as const) {
            const migration = r.one(type, name);
            const routes = r.one(type, "edge-routes");
            assert.ok(routes.dependencies.includes(migration.urn), `edge-routes waits for ${name}`);
        }
    });
});

describe("container names carry the release and a digest of the definition (releaseKey)", () => {
    const spec = catalog.app1.backend;

    it("the same release and definition always give the same name, whatever the key order", () => {
        const reordered = Object.fromEntries(Object.entries(spec).reverse()) as typeof spec;
        assert.strictEqual(releaseKey("1.4.2", spec), releaseKey("1.4.2", reordered));
        assert.match(releaseKey("1.4.2", spec), /^1\.4\.2-[0-9a-f]{8}$/);
    });

    it("another release, or any change to the definition, is another name", () => {
        const keys = new Set([
            releaseKey("1.4.2", spec),
            releaseKey("1.4.3", spec),
            releaseKey("1.4.2", { ...spec, memoryMb: spec.memoryMb + 1 }),
            releaseKey("1.4.2", { ...spec, env: { ...spec.env, X: "1" } }),
            releaseKey("1.4.2", { ...spec, healthPath: "/ready" }),
        ]);
        assert.strictEqual(keys.size, 5);
    });

    it("a digest release is shortened, and the name stays one Docker accepts", () => {
        const key = releaseKey(`sha256:${"ab".repeat(32)}`, spec);
        assert.match(key, /^sha256-abababababab-[0-9a-f]{8}$/);
        assert.match(`app1-backend-${releaseKey("A_very.long-tag".repeat(8), spec)}-abc1234`, /^[A-Za-z0-9][A-Za-z0-9_.-]+$/);
        assert.ok(releaseKey("x".repeat(128), spec).length <= 49);
    });

    it("in the program: a release change declares a new container beside the old name, and the edge's name stays", async () => {
        const a = await run(LOCAL_RAW, catalog);
        const b = await run({ ...LOCAL_RAW, apps: JSON.stringify({ demo: "1.28-alpine" }) }, catalog);
        assert.notStrictEqual(a.appContainer("demo", "frontend").urn, b.appContainer("demo", "frontend").urn);
        assert.strictEqual(a.appContainer("demo", "backend").urn, b.appContainer("demo", "backend").urn, "the pinned backend did not change");
        assert.strictEqual(a.one(T.container, "edge-container").urn, b.one(T.container, "edge-container").urn);
    });
});
