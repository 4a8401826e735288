import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { stablePort } from "../io/adminChannel";
import { definePlatform } from "../components/platform";
import { ForwardOptions } from "../io/adminChannel";
import { FAKE_HOST_KEY, FAKE_IP, Registration, RunResult, T, isSecretValue, reveal, runProgram, unwrap } from "./harness";
import { LOCAL_RAW, PROD_RAW, PROD_SECRET_KEYS, parse } from "./fixtures";
import { SqlStep, ensureAppDatabaseSteps, retireAppDatabaseSteps, scramVerifier } from "../render/postgres";

const stepsText = (steps: SqlStep[]) => steps.map((s) => `${s.sql};${s.unless ? ` -- unless ${s.unless}` : ""}`).join("\n");
/** The app-database resource's rendered statements (a secret input: they carry the password's verifier). */
const ensureSql = (r: Registration) => stepsText(reveal(r.inputs.ensure) as SqlStep[]);

const appContainers = (run: RunResult, app: string) => [run.appContainer(app, "frontend"), run.appContainer(app, "backend")];
const networksOf = (c: Registration): string[] => (c.inputs.networksAdvanced ?? []).map((n: { name: string }) => n.name);

describe("local stack (mocks)", () => {
    let run: RunResult & { value: ReturnType<typeof definePlatform> };
    before(async () => {
        run = await runProgram("local", () => definePlatform(parse(LOCAL_RAW)));
    });

    it("runs on the local Docker engine: no Scaleway resource, commands run locally", () => {
        assert.strictEqual(run.byType(T.server).length + run.byType(T.ip).length + run.byType(T.securityGroup).length, 0);
        assert.strictEqual(run.byType(T.remoteCommand).length, 0);
        assert.ok(run.byType(T.localCommand).length >= 3);
        assert.strictEqual(run.byType(T.dockerProvider).length, 1);
        assert.strictEqual(run.byType(T.dockerProvider)[0].inputs.host, undefined, "the local provider uses DOCKER_HOST or the default socket");
    });

    it("app containers are blue-green: auto-named, create-before-delete set explicitly, health-gated", () => {
        const containers = appContainers(run, "demo");
        assert.strictEqual(containers.length, 2);
        for (const c of containers) {
            assert.strictEqual(c.inputs.name, undefined, `${c.name} must not have a fixed name`);
            assert.strictEqual(c.deleteBeforeReplaceDefined, true, `${c.name}: deleteBeforeReplace must be set explicitly`);
            assert.strictEqual(c.deleteBeforeReplace, false, `${c.name}: must be replaced create-first`);
            assert.strictEqual(c.inputs.wait, false, "the edge's health gate waits for healthy, not the provider (which leaves a failed release running)");
            assert.ok(c.inputs.healthcheck.tests.length > 1);
            const routes = run.one("command:local:Command", "edge-routes");
            const gate = String(routes.inputs.create).indexOf("CONTAINERS=");
            assert.ok(gate >= 0 && gate < String(routes.inputs.create).indexOf("apply-nginx-config"), "the health gate runs before the config is applied");
            assert.match(String(routes.inputs.create), new RegExp(`CONTAINERS='[^']*\\b${c.inputs.name ?? c.name}-[0-9a-f]{7}:120\\b`));
            assert.strictEqual(c.inputs.ports, undefined, `${c.name} publishes no host port`);
            assert.strictEqual(c.inputs.restart, "unless-stopped");
            assert.ok(c.inputs.memory > 0);
            assert.strictEqual(c.inputs.logDriver, "json-file");
            assert.strictEqual(c.inputs.logOpts["max-size"], "10m");
            assert.match(c.inputs.user, /^\d+:\d+$/, "demo images run as non-root");
            assert.ok(c.dependencies.some((d) => d.includes("RemoteImage")), "the container waits for its image");
        }
    });

    it("images come from the catalog repository at the stack's release, pinned ones excepted", () => {
        const names = run.byType(T.image).map((i) => i.inputs.name).sort();
        assert.ok(names.includes("nginxinc/nginx-unprivileged:1.27-alpine"));
        assert.ok(names.includes("ealen/echo-server:0.9.2"));
        assert.ok(names.includes("nginx:1.27.3-alpine") && names.includes("postgres:15.10-bookworm"));
        for (const i of run.byType(T.image)) assert.strictEqual(i.inputs.keepLocally, true, `${i.inputs.name} stays on the host for rollbacks`);
    });

    it("isolates networks: per-app network, a per-app internal database network only its backend joins, edge never on one", () => {
        const nets = run.byType(T.network);
        const db = nets.find((n) => n.inputs.name === "platform-db-demo")!;
        assert.strictEqual(db.inputs.internal, true);
        assert.ok(!nets.some((n) => n.inputs.name === "platform-db"), "no database network shared by every app");
        const [frontend, backend] = appContainers(run, "demo");
        assert.deepStrictEqual(networksOf(frontend), ["platform-app-demo"]);
        assert.deepStrictEqual(networksOf(backend).sort(), ["platform-app-demo", "platform-db-demo"]);
        const edge = run.one(T.container, "edge-container");
        assert.ok(!networksOf(edge).some((n) => n.startsWith("platform-db") || n.startsWith("platform-pg")));
        const joins = run.byType(T.localCommand).filter((c) => c.name.startsWith("edge-joins-"));
        assert.deepStrictEqual(joins.map((j) => j.name), ["edge-joins-demo"]);
        assert.match(joins[0].inputs.create, /docker network connect platform-app-demo platform-edge/);
        for (const c of run.byType(T.localCommand)) assert.doesNotMatch(String(c.inputs.create), /connect.*platform-(db|pg)-.*platform-edge/);
        const postgres = run.one(T.container, "postgres-container");
        assert.ok(!networksOf(postgres).includes("platform-app-demo"));
    });

    it("PostgreSQL joins each app's database network by command, with the alias the DATABASE_URL names, and is never recreated for it", () => {
        const pg = run.one(T.container, "postgres-container");
        assert.deepStrictEqual(pg.ignoreChanges, ["networksAdvanced"], "attached networks must not read as a change that recreates the server");
        const join = run.one(T.localCommand, "demo-db-join");
        assert.match(join.inputs.create, /^# postgres container postgres-container-id\n/, "re-runs when the server container is recreated");
        assert.match(join.inputs.create, /docker network connect --alias 'postgres' 'platform-db-demo' 'platform-postgres' 2>\/dev\/null \|\| docker network inspect 'platform-db-demo' .*\| grep -qw 'platform-postgres'/);
        assert.strictEqual(join.inputs.update, join.inputs.create, "an update, never a replace whose late delete would detach the server");
        assert.strictEqual(join.inputs.delete, "docker network disconnect 'platform-db-demo' 'platform-postgres' || true");
        const network = run.one(T.network, "demo-db-network");
        assert.ok(join.dependencies.includes(network.urn) && join.dependencies.includes(pg.urn));
        const url = (reveal(run.appContainer("demo", "backend").inputs.envs) as string[]).find((e) => e.startsWith("DATABASE_URL="))!;
        assert.match(url, /@postgres:5432\//, "the backend's DATABASE_URL names the alias");
        const backend = run.appContainer("demo", "backend");
        assert.ok(backend.dependencies.includes(join.urn), "the backend starts once PostgreSQL is on its network");
    });

    it("PostgreSQL has no route out: every network it joins is internal; only the forwarder has a gateway, and publishes on loopback only", () => {
        const nets = new Map(run.byType(T.network).map((n) => [n.inputs.name as string, n]));
        const pg = run.one(T.container, "postgres-container");
        const joined = [
            ...networksOf(pg),
            ...run.byType(T.localCommand).flatMap((c) => [...String(c.inputs.create).matchAll(/docker network connect (?:--alias '?[a-z]+'? )?'?([a-z0-9-]+)'? '?platform-postgres'?/g)].map((m) => m[1])),
        ];
        assert.deepStrictEqual(joined.sort(), ["platform-db-demo", "platform-pg-forward"]);
        for (const name of joined) assert.strictEqual(nets.get(name)?.inputs.internal, true, `${name} must be internal`);
        assert.strictEqual(pg.inputs.ports, undefined, "the server publishes no port itself");
        const forwarder = run.one(T.container, "postgres-forwarder");
        assert.deepStrictEqual(networksOf(forwarder), ["platform-pg-forward", "platform-pg-publish"]);
        assert.notStrictEqual(nets.get("platform-pg-publish")!.inputs.internal, true, "publishing needs a gateway");
        assert.deepStrictEqual(
            forwarder.inputs.ports.map((p: any) => [p.internal, p.external, p.ip]),
            [[5432, 15432, "127.0.0.1"]],
        );
        assert.deepStrictEqual(forwarder.inputs.command, ["TCP-LISTEN:5432,fork,reuseaddr", "TCP:postgres:5432"]);
        assert.strictEqual(forwarder.inputs.name, "platform-pg-forwarder");
        assert.strictEqual(forwarder.deleteBeforeReplaceDefined && forwarder.deleteBeforeReplace, true, "it holds the loopback port");
        assert.ok(forwarder.dependencies.includes(pg.urn));
        assert.ok(run.byType(T.image).some((i) => i.inputs.name === "alpine/socat:1.8.0.3"), "a pinned forwarder image");
        for (const c of run.byType(T.container)) {
            if (c !== forwarder) assert.ok(!networksOf(c).includes("platform-pg-publish"), `${c.name} must not be on the forwarder's gateway network`);
            if (c !== forwarder && c !== pg) assert.ok(!networksOf(c).includes("platform-pg-forward"), `${c.name} must not reach the admin path`);
        }
    });

    it("PostgreSQL: pinned image, protected volume, pg_isready, delete-first, runs as its own user without capabilities on a read-only root", () => {
        const volume = run.one(T.volume, "postgres-data");
        assert.strictEqual(volume.protect, true);
        assert.strictEqual(volume.retainOnDelete, true);
        assert.strictEqual(volume.inputs.name, "platform-pgdata");
        const pg = run.one(T.container, "postgres-container");
        assert.strictEqual(pg.inputs.name, "platform-postgres");
        assert.strictEqual(pg.deleteBeforeReplaceDefined && pg.deleteBeforeReplace, true, "one server per data directory");
        assert.match(pg.inputs.healthcheck.tests.join(" "), /pg_isready -h 127\.0\.0\.1/);
        assert.strictEqual(pg.inputs.memory, 1024, "a quarter of DEV1-M");
        assert.ok(pg.inputs.command.includes("shared_buffers=256MB"));
        assert.ok(pg.inputs.command.includes("max_connections=100"));
        assert.ok(isSecretValue(pg.inputs.envs[0]) || isSecretValue(pg.inputs.envs), "the admin password stays secret in the container's env");
        assert.strictEqual(pg.inputs.user, "999:999", "started as postgres: no root step, so no capability");
        assert.deepStrictEqual(pg.inputs.capabilities, { drops: ["ALL"], adds: [] });
        assert.strictEqual(pg.inputs.readOnly, true);
        assert.deepStrictEqual(Object.keys(pg.inputs.tmpfs).sort(), ["/tmp", "/var/run/postgresql"]);
        assert.deepStrictEqual(pg.inputs.volumes.map((v: any) => [v.volumeName, v.containerPath]), [["platform-pgdata", "/var/lib/postgresql/data"]]);
    });

    it("a new PostgreSQL major on the old data directory is refused before the container is touched", () => {
        const check = run.one(T.localCommand, "postgres-data-check");
        assert.match(check.inputs.create, /^VOLUME='platform-pgdata' IMAGE='postgres:15\.10-bookworm' MAJOR='15' PG_UID='999' sh -c '/);
        assert.match(check.inputs.create, /refusing to start PostgreSQL/);
        assert.strictEqual(check.inputs.update, check.inputs.create, "re-checked whenever the image changes");
        assert.strictEqual(check.inputs.delete, "true");
        const pg = run.one(T.container, "postgres-container");
        assert.ok(pg.dependencies.includes(check.urn), "the container waits for the check");
        for (const dep of ["postgres-data", "postgres-image"]) assert.ok(check.dependencies.includes(run.resources.find((r) => r.name === dep)!.urn), `the check needs ${dep}`);
    });

    it("the admin password is reconciled from state after every start, over the local socket, SQL on stdin only", () => {
        const reconcile = run.one(T.localCommand, "postgres-reconcile");
        const password = "generated-postgres-admin-password-0";
        assert.ok(isSecretValue(reconcile.inputs.stdin), "the SQL carries the password: secret");
        const sql: string = reveal(reconcile.inputs.stdin);
        assert.ok(sql.includes(`ALTER ROLE postgres WITH PASSWORD '${password}';`));
        assert.match(sql, /REVOKE ALL ON DATABASE postgres FROM PUBLIC;\nREVOKE ALL ON DATABASE template1 FROM PUBLIC;/);
        assert.match(sql, /^SET log_statement = 'none';/);
        for (const key of ["create", "update", "delete"]) assert.ok(!String(reconcile.inputs[key]).includes(password), `${key} must not carry the password`);
        assert.strictEqual(reconcile.inputs.create, "# postgres container postgres-container-id\ndocker exec -i platform-postgres psql -X -q -v ON_ERROR_STOP=1 -U postgres -d postgres");
        assert.strictEqual(reconcile.inputs.update, reconcile.inputs.create);
        const pg = run.one(T.container, "postgres-container");
        assert.ok(reconcile.dependencies.includes(pg.urn));
        const appDatabase = run.one(T.appDatabase, "demo-db-role-database");
        for (const dep of [reconcile.urn, run.one(T.container, "postgres-forwarder").urn]) assert.ok(appDatabase.dependencies.includes(dep), `the app database waits for ${dep}`);
    });

    it("per-app database: one resource creates or adopts role and database, CONNECT revoked from PUBLIC; removal revokes the login and keeps the data", () => {
        assert.strictEqual(run.byType(T.role).length + run.byType(T.database).length + run.byType(T.grant).length, 0, "no provider Role/Database: their create fails on a retained role");
        assert.strictEqual(run.byType(T.pgProvider).length, 0, "one mechanism: no @pulumi/postgresql provider");
        const db = run.one(T.appDatabase, "demo-db-role-database");
        assert.strictEqual(db.retainOnDelete, false, "its delete runs: it revokes the role's login");
        assert.deepStrictEqual(db.inputs.retire, retireAppDatabaseSteps("demo"));
        assert.doesNotMatch(JSON.stringify(db.inputs.retire), /DROP/i, "removing the app drops nothing");
        for (const key of ["ensure", "passwordHash", "admin"]) assert.ok(isSecretValue(db.inputs[key]), `${key} is a secret`);
        assert.deepStrictEqual(reveal(db.inputs.ensure), ensureAppDatabaseSteps("demo", "generated-demo-db-password-0", 5, { user: "postgres", superuser: true }));
        const sql = ensureSql(db);
        assert.ok(sql.includes(`CREATE ROLE "app_demo"; -- unless SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'app_demo'`));
        assert.ok(
            sql.includes(`ALTER ROLE "app_demo" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 5 PASSWORD '${scramVerifier("app_demo", "generated-demo-db-password-0")}';`),
            "the catalog's limit and the password in state",
        );
        assert.ok(!sql.includes("generated-demo-db-password-0"), "only the password's verifier reaches the server");
        assert.ok(sql.includes(`REVOKE ALL ON DATABASE "demo_db" FROM PUBLIC;`));
        assert.ok(sql.includes(`ALTER DATABASE "demo_db" OWNER TO "app_demo";`));
        // What a preview compares and a refresh reads back.
        assert.deepStrictEqual(
            [db.inputs.role, db.inputs.database, db.inputs.connectionLimit, db.inputs.login, db.inputs.owner, db.inputs.publicConnect, db.inputs.adminMember],
            ["app_demo", "demo_db", 5, true, "app_demo", false, false],
        );
        assert.ok(db.dependencies.includes(run.one(T.localCommand, "postgres-reconcile").urn));
        const admin = reveal(db.inputs.admin);
        assert.deepStrictEqual([admin.host, admin.port, admin.user, admin.database, admin.ssl], ["127.0.0.1", 15432, "postgres", "postgres", false]);
        const backend = run.appContainer("demo", "backend");
        assert.ok(backend.dependencies.includes(db.urn), "the backend starts once its role has the password it is given");
    });

    it("every platform container is hardened: no capabilities but the catalog's, no-new-privileges, nproc cap, no swap", () => {
        const expected: Record<string, { adds: string[]; readOnly: boolean }> = {
            "demo-frontend": { adds: [], readOnly: true },
            "demo-backend": { adds: [], readOnly: true },
            "postgres-container": { adds: [], readOnly: true },
            "postgres-forwarder": { adds: [], readOnly: true },
        };
        for (const [name, want] of Object.entries(expected)) {
            const role = /^demo-(frontend|backend)$/.exec(name)?.[1] as "frontend" | "backend" | undefined;
            const c = role === undefined ? run.one(T.container, name) : run.appContainer("demo", role);
            assert.deepStrictEqual(c.inputs.capabilities, { drops: ["ALL"], adds: want.adds }, name);
            assert.deepStrictEqual(c.inputs.securityOpts, ["no-new-privileges:true"], name);
            const nproc = c.inputs.ulimits.find((u: any) => u.name === "nproc");
            assert.ok(nproc && nproc.soft === nproc.hard && nproc.hard <= 4096, `${name}: nproc cap`);
            assert.ok(c.inputs.memory > 0 && c.inputs.memorySwap === c.inputs.memory, `${name}: memory-swap equals memory`);
            assert.strictEqual(c.inputs.readOnly, want.readOnly, `${name}: read-only root`);
            assert.ok(c.inputs.tmpfs["/tmp"], `${name}: /tmp is a tmpfs`);
        }
        const forwarder = run.one(T.container, "postgres-forwarder");
        assert.strictEqual(forwarder.inputs.user, "65534:65534");
        assert.strictEqual(forwarder.inputs.memory, 32);
        assert.strictEqual(forwarder.inputs.wait, true);
    });

    it("the backend gets DATABASE_URL as a secret; the frontend gets nothing of it", () => {
        const backend = run.appContainer("demo", "backend");
        const env = backend.inputs.envs;
        const secretEntries = (Array.isArray(env) ? env : [env]).filter(isSecretValue);
        assert.ok(secretEntries.length > 0 || isSecretValue(env), "DATABASE_URL must reach the container as a secret");
        const plain = reveal(env) as string[];
        const url = plain.find((e) => e.startsWith("DATABASE_URL="))!;
        assert.match(url, /^DATABASE_URL=postgres:\/\/app_demo:generated-demo-db-password-0@postgres:5432\/demo_db\?sslmode=disable$/);
        const frontendEnv = JSON.stringify(reveal(run.appContainer("demo", "frontend").inputs.envs ?? []));
        assert.ok(!frontendEnv.includes("DATABASE_URL"));
    });

    it("the edge: fixed container on loopback, config applied in place, routes built from the app containers", async () => {
        const edge = run.one(T.container, "edge-container");
        assert.strictEqual(edge.inputs.name, "platform-edge");
        assert.deepStrictEqual(edge.ignoreChanges, ["networksAdvanced"]);
        assert.deepStrictEqual(
            edge.inputs.ports.map((p: any) => [p.internal, p.external, p.ip]),
            [[80, 8080, "127.0.0.1"]],
        );
        const routes = run.one(T.localCommand, "edge-routes");
        assert.strictEqual(routes.inputs.create, routes.inputs.update, "a route change updates the command, never replaces it");
        assert.strictEqual(routes.inputs.delete, "true", "removing the command must not remove the live config");
        assert.match(routes.inputs.create, /NGINX_CMD='docker exec platform-edge nginx'/);
        const frontend = await unwrap(run.value.apps.demo.url);
        assert.strictEqual(frontend, "http://localhost:8080/demo/");
        // The stdin is rendered from the containers' generated names, so Pulumi orders the switch after them.
        const feName = run.appContainer("demo", "frontend");
        const stdin: string = routes.inputs.stdin;
        // The release and the definition's digest (releaseKey), then the engine's random suffix.
        assert.match(stdin, /\bdemo-frontend-1\.27-alpine-[0-9a-f]{8}-[0-9a-f]{7}:8080\b/);
        assert.match(stdin, /\bdemo-backend-0\.9\.2-[0-9a-f]{8}-[0-9a-f]{7}:8080\b/);
        const containerUrns = appContainers(run, "demo").map((c) => c.urn);
        for (const urn of containerUrns) assert.ok(routes.dependencies.includes(urn), `edge-routes must depend on ${urn}`);
        assert.ok(feName);
        assert.ok(!edge.dependencies.some((d) => containerUrns.includes(d)), "the edge container itself never depends on app containers");
    });

    it("outputs: shape for StackReference, database URLs secret", async () => {
        assert.strictEqual(await unwrap(run.value.baseUrl), "http://localhost:8080/");
        assert.strictEqual(await unwrap(run.value.publicIp), "127.0.0.1");
        assert.strictEqual(await run.value.databaseUrls.isSecret, true);
        const urls = await unwrap(run.value.databaseUrls);
        assert.deepStrictEqual(Object.keys(urls), ["demo"]);
        assert.strictEqual(await unwrap(run.value.apps.demo.database!), "demo_db");
        assert.strictEqual(await unwrap(run.value.apps.demo.role!), "app_demo");
        assert.strictEqual(await unwrap(run.value.apps.demo.apiUrl), "http://localhost:8080/api/demo/");
    });
});

describe("removing an app from a stack (mocks)", () => {
    it("its containers, network and database network go, PostgreSQL is untouched, its database and role are retained without a login", async () => {
        const withApp = await runProgram("local", () => definePlatform(parse(LOCAL_RAW)));
        const retained = withApp.resources.filter((r) => r.retainOnDelete).map((r) => r.name).sort();
        assert.deepStrictEqual(retained, ["postgres-data"]);
        // The app database's delete only retires the role: no login, no session; role and database stay.
        const retire = stepsText(withApp.one(T.appDatabase, "demo-db-role-database").inputs.retire);
        assert.match(retire, /ALTER ROLE "app_demo" WITH NOLOGIN/);
        assert.doesNotMatch(retire, /DROP/i);
        for (const c of appContainers(withApp, "demo")) assert.strictEqual(c.retainOnDelete, false, "containers really go");

        const without = await runProgram("local", () => definePlatform(parse({ ...LOCAL_RAW, apps: "{}" })));
        assert.deepStrictEqual(without.resources.filter((r) => r.name.startsWith("demo")).map((r) => r.name), []);
        const stdin: string = without.one(T.localCommand, "edge-routes").inputs.stdin;
        assert.ok(!stdin.includes("/demo/"), "the edge stops routing to the removed app");
        assert.ok(without.byType(T.volume).some((v) => v.protect), "the data volume stays protected");
        const server = (r: RunResult) => reveal(r.one(T.container, "postgres-container").inputs);
        assert.deepStrictEqual(server(without), server(withApp), "adding or removing an app changes no input of the server container");
    });

    it("re-adding the app declares the same create-or-adopt: it adopts the retained role and database, and logs in with the password in state", async () => {
        const readded = await runProgram("local", () => definePlatform(parse({ ...LOCAL_RAW, passwordVersions: JSON.stringify({ demo: 3 }) })));
        const sql = ensureSql(readded.one(T.appDatabase, "demo-db-role-database"));
        assert.ok(sql.includes(`CREATE ROLE "app_demo"; -- unless SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'app_demo'`));
        assert.ok(sql.includes(`-- unless SELECT FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) 'demo_db'`));
        assert.ok(sql.includes(`WITH LOGIN `), "the retired role logs in again");
        assert.ok(sql.includes(`PASSWORD '${scramVerifier("app_demo", "generated-demo-db-password-3")}'`));
        const url = (reveal(readded.appContainer("demo", "backend").inputs.envs) as string[]).find((e) => e.startsWith("DATABASE_URL="))!;
        assert.ok(url.includes("generated-demo-db-password-3"), "the backend gets the password the ensure step set");
    });
});

describe("prod stack (mocks)", () => {
    let run: RunResult & { value: ReturnType<typeof definePlatform> };
    const forwards: ForwardOptions[] = [];
    before(async () => {
        run = await runProgram("prod", () =>
            definePlatform(parse(PROD_RAW), {
                openForward: async (options) => {
                    forwards.push(options);
                    return { host: "127.0.0.1", port: 40123, pid: 1, close: () => undefined };
                },
            }),
        );
    });

    it("a flexible IP (protected) and a default-deny firewall: 80/443 open, 22 only from adminCidrs", () => {
        assert.strictEqual(run.byType(T.ip)[0].protect, true);
        const sg = run.byType(T.securityGroup)[0].inputs;
        assert.strictEqual(sg.inboundDefaultPolicy, "drop");
        const rules = sg.inboundRules.map((r: any) => `${r.action} ${r.protocol} ${r.port} ${r.ipRange}`);
        assert.deepStrictEqual(rules, [
            "accept TCP 80 0.0.0.0/0",
            "accept TCP 443 0.0.0.0/0",
            "accept TCP 22 203.0.113.10/32",
            "accept TCP 22 198.51.100.0/24",
        ]);
    });

    it("an Ubuntu 24.04 server of the configured type, protected, with cloud-init installing Docker", () => {
        const server = run.byType(T.server)[0];
        assert.strictEqual(server.inputs.image, "ubuntu_noble");
        assert.strictEqual(server.inputs.type, "DEV1-M");
        assert.strictEqual(server.protect, true);
        assert.ok(server.ignoreChanges.includes("cloudInit"));
        assert.match(server.inputs.cloudInit, /- docker\.io/);
        assert.match(server.inputs.cloudInit, /PasswordAuthentication no/);
        assert.match(server.inputs.cloudInit, /Unattended-Upgrade "1"/);
        assert.strictEqual(run.byType(T.sshKey)[0].inputs.publicKey, PROD_RAW.sshPublicKey);
    });

    it("waits for cloud-init and Docker before the Docker provider or any command uses the host", () => {
        const wait = run.one(T.remoteCommand, "host-wait-for-docker");
        assert.match(wait.inputs.create, /cloud-init status --wait/);
        assert.match(wait.inputs.create, /docker info/);
        assert.ok(isSecretValue(wait.inputs.connection), "the connection carries the private key: secret");
        assert.ok(reveal(wait.inputs.connection).dialErrorLimit >= 30, "a fresh server refuses SSH for a while");
        const provider = run.byType(T.dockerProvider)[0];
        assert.ok(provider.dependencies.includes(wait.urn));
        assert.strictEqual(provider.inputs.host, `ssh://root@${FAKE_IP}`);
        const sshOpts: string[] = JSON.parse(reveal(provider.inputs.sshOpts));
        assert.ok(sshOpts.includes("StrictHostKeyChecking=yes"));
        for (const c of run.byType(T.remoteCommand).filter((c) => c !== wait)) {
            assert.ok(c.dependencies.includes(wait.urn), `${c.name} waits for the host`);
            assert.strictEqual(reveal(c.inputs.connection).hostKey, FAKE_HOST_KEY, `${c.name} pins the host key`);
        }
    });

    it("the edge owns 80 and 443, serves HTTPS and installs a certificate", () => {
        const edge = run.one(T.container, "edge-container");
        assert.deepStrictEqual(edge.inputs.ports.map((p: any) => [p.internal, p.external]), [[80, 80], [443, 443]]);
        const routes = run.one(T.remoteCommand, "edge-routes");
        assert.match(routes.inputs.stdin, /listen 443 ssl http2 default_server;/);
        const cert = run.one(T.remoteCommand, "edge-certificate");
        assert.match(cert.inputs.create, /DOMAIN='example\.com'/);
        assert.strictEqual(cert.inputs.create, cert.inputs.update);
        const cronFile = /CRON_FILE='([^']+)'/.exec(cert.inputs.create)![1];
        assert.strictEqual(cert.inputs.delete, `rm -f '${cronFile}'`, "the delete removes the very cron job the script installs");
        assert.ok(cert.dependencies.includes(routes.urn));
    });

    it("the app databases reach the server through the SSH forward, never the public IP", () => {
        for (const app of ["app1", "app2"]) {
            const admin = reveal(run.one(T.appDatabase, `${app}-db-role-database`).inputs.admin);
            assert.strictEqual(admin.host, "127.0.0.1");
            assert.notStrictEqual(admin.host, FAKE_IP);
            assert.strictEqual(admin.port, 40123);
        }
        assert.strictEqual(forwards.length, 1);
        assert.strictEqual(forwards[0].destination, `root@${FAKE_IP}`);
        assert.strictEqual(forwards[0].remote, "127.0.0.1:5432");
        assert.strictEqual(forwards[0].preferredPort, stablePort("platform", "prod"), "the same local port on every run");
        assert.ok(forwards[0].sshOptions.includes("StrictHostKeyChecking=yes"));
        const forwarder = run.one(T.container, "postgres-forwarder");
        assert.deepStrictEqual([forwarder.inputs.ports[0].ip, forwarder.inputs.ports[0].external], ["127.0.0.1", 5432]);
    });

    it("pulls from ghcr.io with the registry token as a secret, and runs each app's release", () => {
        const provider = run.byType(T.dockerProvider)[0];
        assert.ok(isSecretValue(provider.inputs.registryAuth), "the registry token is a secret");
        const auth = JSON.parse(reveal(provider.inputs.registryAuth));
        assert.strictEqual(auth[0].address, "ghcr.io");
        const images = run.byType(T.image).map((i) => i.inputs.name);
        assert.ok(images.includes("ghcr.io/mhylle/app1-backend:1.4.2"));
        assert.ok(images.includes(`ghcr.io/mhylle/app2-frontend@sha256:${"ab".repeat(32)}`));
    });

    it("two apps: separate networks, database networks, databases and roles", () => {
        assert.deepStrictEqual(networksOf(run.appContainer("app1", "backend")).sort(), ["platform-app-app1", "platform-db-app1"]);
        assert.deepStrictEqual(networksOf(run.appContainer("app2", "backend")).sort(), ["platform-app-app2", "platform-db-app2"]);
        const sql = (app: string) => ensureSql(run.one(T.appDatabase, `${app}-db-role-database`));
        assert.match(sql("app1"), /CREATE DATABASE "app1_db" OWNER "app_app1"/);
        assert.match(sql("app2"), /CREATE DATABASE "app2_db" OWNER "app_app2"/);
        for (const app of ["app1", "app2"]) {
            assert.match(sql(app), /CONNECTION LIMIT 20 /, `${app}: the catalog's limit`);
            assert.match(run.one(T.remoteCommand, `${app}-db-join`).inputs.create, new RegExp(`docker network connect --alias 'postgres' 'platform-db-${app}' 'platform-postgres'`));
        }
        const nets = run.byType(T.network);
        for (const name of ["platform-db-app1", "platform-db-app2", "platform-pg-forward"]) assert.strictEqual(nets.find((n) => n.inputs.name === name)!.inputs.internal, true, name);
        for (const c of run.byType(T.container)) {
            const onDb = networksOf(c).filter((n) => n.startsWith("platform-db-"));
            assert.ok(onDb.length <= 1, `${c.name} joins at most one app's database network`);
        }
    });

    it("the catalog's security reaches the containers: the ghcr.io nginx frontends get back only what they need", () => {
        for (const app of ["app1", "app2"]) {
            const fe = run.appContainer(`${app}`, "frontend");
            assert.strictEqual(fe.inputs.user, undefined);
            assert.deepStrictEqual(fe.inputs.capabilities, { drops: ["ALL"], adds: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_SETGID", "CAP_SETUID"] });
            assert.strictEqual(fe.inputs.ulimits[0].hard, 4096, "root processes: the count includes the host's own");
            assert.deepStrictEqual(Object.keys(fe.inputs.tmpfs).sort(), ["/run", "/tmp", "/var/cache/nginx"]);
            const be = run.appContainer(`${app}`, "backend");
            assert.deepStrictEqual(be.inputs.capabilities, { drops: ["ALL"], adds: [] });
            assert.strictEqual(be.inputs.ulimits[0].hard, 512);
            for (const c of [fe, be]) {
                assert.deepStrictEqual(c.inputs.securityOpts, ["no-new-privileges:true"]);
                assert.strictEqual(c.inputs.memorySwap, c.inputs.memory);
                assert.strictEqual(c.inputs.readOnly, true);
            }
        }
        const pg = run.one(T.container, "postgres-container");
        assert.deepStrictEqual([pg.inputs.user, pg.inputs.readOnly, pg.inputs.capabilities.adds], ["999:999", true, []]);
    });

    it("stack outputs: public IP, https URLs, secret database URLs", async () => {
        assert.strictEqual(await unwrap(run.value.publicIp), FAKE_IP);
        assert.strictEqual(await unwrap(run.value.apps.app1.url), "https://example.com/app1/");
        assert.strictEqual(await run.value.databaseUrls.isSecret, true);
        assert.deepStrictEqual(Object.keys(await unwrap(run.value.databaseUrls)).sort(), ["app1", "app2"]);
    });
});

describe("prod preview (mocks)", () => {
    it("opens no forward during preview: the database provider's endpoint stays unknown", async () => {
        let opened = 0;
        const run = await runProgram(
            "prod",
            () =>
                definePlatform(parse(PROD_RAW), {
                    openForward: async () => {
                        opened++;
                        return { host: "127.0.0.1", port: 1, pid: 1, close: () => undefined };
                    },
                }),
            { preview: true },
        );
        assert.strictEqual(opened, 0);
        const admin = reveal(run.one(T.appDatabase, "app1-db-role-database").inputs.admin);
        assert.notStrictEqual(admin.host, FAKE_IP);
        // The mocks know the container's id in preview, as an existing stack would: the endpoint is the
        // stack's stable port on loopback, with no forward behind it.
        assert.strictEqual(admin.host, "127.0.0.1");
        assert.strictEqual(admin.port, stablePort("platform", "prod"));
        assert.ok(pulumi.runtime.isDryRun());
    });
});

describe("password rotation (mocks)", () => {
    it("bumping passwordVersions changes the role's password and the backend's DATABASE_URL together", async () => {
        const before = await runProgram("local", () => definePlatform(parse(LOCAL_RAW)));
        const after = await runProgram("local", () => definePlatform(parse({ ...LOCAL_RAW, passwordVersions: JSON.stringify({ demo: 1 }) })));
        const db = (r: RunResult) => r.one(T.appDatabase, "demo-db-role-database");
        // The password as the backend's DATABASE_URL carries it.
        const pw = (r: RunResult) => decodeURIComponent(/^DATABASE_URL=postgres:\/\/[^:]+:([^@]+)@/.exec(url(r)!)![1]);
        const verifier = (r: RunResult) => reveal(db(r).inputs.passwordHash) as string;
        const url = (r: RunResult) => (reveal(r.appContainer("demo", "backend").inputs.envs) as string[]).find((e) => e.startsWith("DATABASE_URL="));
        assert.notStrictEqual(pw(before), pw(after));
        assert.strictEqual(after.one(T.password, "demo-db-password").inputs.keepers.version, "1");
        assert.ok(url(after)!.includes(pw(after)), "the new URL carries the new password");
        assert.ok(!url(after)!.includes(pw(before)));
        assert.strictEqual(verifier(before), scramVerifier("app_demo", pw(before)), "the role gets the password the URL carries");
        assert.strictEqual(verifier(after), scramVerifier("app_demo", pw(after)));
        assert.ok(ensureSql(db(after)).includes(verifier(after)), "a new password updates the role in place (the same resource, a changed input)");
        assert.strictEqual(db(after).urn, db(before).urn);
    });
});

describe("the alerts webhook reaches the hosts as a secret (mocks)", () => {
    it("only on the host-alerts command's stdin, into alerts.env; not in cloud-init, nor any command's text", async () => {
        const hook = "https://hooks.slack.com/services/T0000/B0000/secret-token";
        const run = await runProgram("prod", () =>
            definePlatform(parse({ ...PROD_RAW, alertWebhookUrl: hook }, (k) => ["alertWebhookUrl", ...PROD_SECRET_KEYS].includes(k)), {
                openForward: async () => ({ host: "127.0.0.1", port: 40123, pid: 1, close: () => undefined }),
            }),
        );
        const alerts = run.one(T.remoteCommand, "host-alerts");
        assert.ok(isSecretValue(alerts.inputs.stdin), "the settings carrying the webhook are a secret");
        assert.match(reveal(alerts.inputs.stdin), /^WEBHOOK_URL='https:\/\/hooks\.slack\.com\/services\/T0000\/B0000\/secret-token'$/m);
        for (const r of run.resources) {
            const plain = JSON.stringify(r.inputs, (_k, v) => (isSecretValue(v) ? "<secret>" : v));
            assert.ok(!plain.includes("secret-token"), `${r.name} carries the webhook outside a secret`);
        }
        const without = await runProgram("prod", () => definePlatform(parse(PROD_RAW), { openForward: async () => ({ host: "127.0.0.1", port: 40123, pid: 1, close: () => undefined }) }));
        assert.doesNotMatch(reveal(without.one(T.remoteCommand, "host-alerts").inputs.stdin), /WEBHOOK_URL/);
    });
});
