import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { stablePort } from "../lib/adminChannel";
import { definePlatform } from "../platform";
import { ForwardOptions } from "../lib/adminChannel";
import { FAKE_HOST_KEY, FAKE_IP, Registration, RunResult, T, isSecretValue, reveal, runProgram, unwrap } from "./harness";
import { LOCAL_RAW, PROD_RAW, parse } from "./fixtures";

const appContainers = (run: RunResult, app: string) => run.byType(T.container).filter((c) => c.name === `${app}-frontend` || c.name === `${app}-backend`);
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
            assert.strictEqual(c.inputs.wait, true);
            assert.ok(c.inputs.healthcheck.tests.length > 1);
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

    it("isolates networks: per-app network, internal database network only backends join, edge never on it", () => {
        const nets = run.byType(T.network);
        const db = nets.find((n) => n.inputs.name === "platform-db")!;
        assert.strictEqual(db.inputs.internal, true);
        const [frontend, backend] = ["demo-frontend", "demo-backend"].map((n) => run.one(T.container, n));
        assert.deepStrictEqual(networksOf(frontend), ["platform-app-demo"]);
        assert.deepStrictEqual(networksOf(backend).sort(), ["platform-app-demo", "platform-db"]);
        const edge = run.one(T.container, "edge-container");
        assert.ok(!networksOf(edge).includes("platform-db"));
        const joins = run.byType(T.localCommand).filter((c) => c.name.startsWith("edge-joins-"));
        assert.deepStrictEqual(joins.map((j) => j.name), ["edge-joins-demo"]);
        assert.match(joins[0].inputs.create, /docker network connect platform-app-demo platform-edge/);
        for (const c of run.byType(T.localCommand)) assert.ok(!String(c.inputs.create).includes("connect platform-db"));
        const postgres = run.one(T.container, "postgres-container");
        assert.ok(networksOf(postgres).includes("platform-db"));
        assert.ok(!networksOf(postgres).includes("platform-app-demo"));
    });

    it("PostgreSQL: pinned image, protected volume, pg_isready, loopback-only port, delete-first", () => {
        const volume = run.one(T.volume, "postgres-data");
        assert.strictEqual(volume.protect, true);
        assert.strictEqual(volume.retainOnDelete, true);
        const pg = run.one(T.container, "postgres-container");
        assert.strictEqual(pg.inputs.name, "platform-postgres");
        assert.strictEqual(pg.deleteBeforeReplaceDefined && pg.deleteBeforeReplace, true, "one server per data directory");
        assert.match(pg.inputs.healthcheck.tests.join(" "), /pg_isready -h 127\.0\.0\.1/);
        assert.deepStrictEqual(pg.inputs.ports, [{ internal: 5432, external: 15432, ip: "127.0.0.1", protocol: "tcp" }].map(({ protocol, ...p }) => (pg.inputs.ports[0].protocol ? { ...p, protocol } : p)));
        assert.strictEqual(pg.inputs.memory, 1024, "a quarter of DEV1-M");
        assert.ok(pg.inputs.command.includes("shared_buffers=256MB"));
        assert.ok(isSecretValue(pg.inputs.envs[0]) || isSecretValue(pg.inputs.envs), "the admin password stays secret in the container's env");
    });

    it("per-app database: login role, owned database, CONNECT revoked from PUBLIC, data retained", () => {
        const role = run.one(T.role, "demo-db-role");
        assert.strictEqual(role.inputs.name, "app_demo");
        assert.strictEqual(role.inputs.login, true);
        assert.ok(isSecretValue(role.inputs.password));
        assert.strictEqual(role.retainOnDelete, true);
        const db = run.one(T.database, "demo-db-database");
        assert.deepStrictEqual([db.inputs.name, db.inputs.owner], ["demo_db", "app_demo"]);
        assert.strictEqual(db.retainOnDelete, true);
        const grant = run.one(T.grant, "demo-db-revoke-public");
        assert.deepStrictEqual([grant.inputs.role, grant.inputs.objectType, grant.inputs.privileges], ["public", "database", []]);
        const pgProvider = run.byType(T.pgProvider)[0];
        for (const r of [role, db, grant]) assert.strictEqual(r.provider.slice(0, r.provider.lastIndexOf("::")), pgProvider.urn, `${r.name} uses the server's admin provider`);
        assert.strictEqual(pgProvider.inputs.host, "127.0.0.1");
        assert.strictEqual(pgProvider.inputs.port, "15432");
        assert.strictEqual(pgProvider.inputs.sslmode, "disable");
    });

    it("the backend gets DATABASE_URL as a secret; the frontend gets nothing of it", () => {
        const backend = run.one(T.container, "demo-backend");
        const env = backend.inputs.envs;
        const secretEntries = (Array.isArray(env) ? env : [env]).filter(isSecretValue);
        assert.ok(secretEntries.length > 0 || isSecretValue(env), "DATABASE_URL must reach the container as a secret");
        const plain = reveal(env) as string[];
        const url = plain.find((e) => e.startsWith("DATABASE_URL="))!;
        assert.match(url, /^DATABASE_URL=postgres:\/\/app_demo:generated-demo-db-password-0@postgres:5432\/demo_db\?sslmode=disable$/);
        const frontendEnv = JSON.stringify(reveal(run.one(T.container, "demo-frontend").inputs.envs ?? []));
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
        const feName = run.resources.find((r) => r.name === "demo-frontend")!;
        const stdin: string = routes.inputs.stdin;
        assert.match(stdin, /set \$platform_upstream demo-frontend-[0-9a-f]{7}:8080;/);
        assert.match(stdin, /set \$platform_upstream demo-backend-[0-9a-f]{7}:8080;/);
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
    it("its containers and network are no longer declared, while its database and role were retained", async () => {
        const withApp = await runProgram("local", () => definePlatform(parse(LOCAL_RAW)));
        const retained = withApp.resources.filter((r) => r.retainOnDelete).map((r) => r.name).sort();
        assert.deepStrictEqual(retained, ["demo-db-database", "demo-db-role", "postgres-data"]);
        for (const c of appContainers(withApp, "demo")) assert.strictEqual(c.retainOnDelete, false, "containers really go");

        const without = await runProgram("local", () => definePlatform(parse({ ...LOCAL_RAW, apps: "{}" })));
        assert.deepStrictEqual(without.resources.filter((r) => r.name.startsWith("demo")).map((r) => r.name), []);
        const stdin: string = without.one(T.localCommand, "edge-routes").inputs.stdin;
        assert.ok(!stdin.includes("/demo/"), "the edge stops routing to the removed app");
        assert.ok(without.byType(T.volume).some((v) => v.protect), "the data volume stays protected");
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

    it("the postgresql provider reaches the server through the SSH forward, never the public IP", () => {
        const provider = run.byType(T.pgProvider)[0];
        assert.strictEqual(provider.inputs.host, "127.0.0.1");
        assert.notStrictEqual(provider.inputs.host, FAKE_IP);
        assert.strictEqual(provider.inputs.port, "40123");
        assert.strictEqual(forwards.length, 1);
        assert.strictEqual(forwards[0].destination, `root@${FAKE_IP}`);
        assert.strictEqual(forwards[0].remote, "127.0.0.1:5432");
        assert.strictEqual(forwards[0].preferredPort, stablePort("platform", "prod"), "the same local port on every run");
        assert.ok(forwards[0].sshOptions.includes("StrictHostKeyChecking=yes"));
        const pg = run.one(T.container, "postgres-container");
        assert.deepStrictEqual([pg.inputs.ports[0].ip, pg.inputs.ports[0].external], ["127.0.0.1", 5432]);
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

    it("two apps: separate networks, databases and roles", () => {
        assert.deepStrictEqual(networksOf(run.one(T.container, "app1-backend")).sort(), ["platform-app-app1", "platform-db"]);
        assert.deepStrictEqual(networksOf(run.one(T.container, "app2-backend")).sort(), ["platform-app-app2", "platform-db"]);
        assert.deepStrictEqual(run.byType(T.database).map((d) => d.inputs.owner).sort(), ["app_app1", "app_app2"]);
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
        const provider = run.byType(T.pgProvider)[0];
        assert.notStrictEqual(provider.inputs.host, FAKE_IP);
        // The mocks know the container's id in preview, as an existing stack would: the endpoint is the
        // stack's stable port on loopback, with no forward behind it.
        assert.strictEqual(provider.inputs.host, "127.0.0.1");
        assert.strictEqual(provider.inputs.port, String(stablePort("platform", "prod")));
        assert.ok(pulumi.runtime.isDryRun());
    });
});

describe("password rotation (mocks)", () => {
    it("bumping passwordVersions changes the role's password and the backend's DATABASE_URL together", async () => {
        const before = await runProgram("local", () => definePlatform(parse(LOCAL_RAW)));
        const after = await runProgram("local", () => definePlatform(parse({ ...LOCAL_RAW, passwordVersions: JSON.stringify({ demo: 1 }) })));
        const pw = (r: RunResult) => reveal(r.one(T.role, "demo-db-role").inputs.password);
        const url = (r: RunResult) => (reveal(r.one(T.container, "demo-backend").inputs.envs) as string[]).find((e) => e.startsWith("DATABASE_URL="));
        assert.notStrictEqual(pw(before), pw(after));
        assert.strictEqual(after.one(T.password, "demo-db-password").inputs.keepers.version, "1");
        assert.ok(url(after)!.includes(pw(after)), "the new URL carries the new password");
        assert.ok(!url(after)!.includes(pw(before)));
    });
});
