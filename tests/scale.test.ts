// Issue #12 under mocks: the default configs' graphs are exactly the recorded ones; the managed
// database (one host) and the load-balanced shape (two hosts) with every resource, option and
// dependency; moving between 1 and 2 hosts replaces nothing that holds data; no database is reachable
// from the internet; hosts switch one after another.
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { catalog } from "../apps";
import { RawConfig, parsePlatformConfig } from "../config/platformConfig";
import { LB_TIMING, MANAGED_ADMIN_PORT, PRIVATE_SUBNET, markDownSeconds } from "../render/scale";
import { PlatformDependencies, definePlatform } from "../components/platform";
import { FAKE_IP, Registration, RunResult, STACK_REFERENCE_OUTPUTS, T, isSecretValue, reveal, runProgram, unwrap } from "./harness";
import { LOCAL_RAW, PROD_RAW, PROD_SECRET_KEYS, parse } from "./fixtures";
import { graphDifferences, graphOf, readGraphFixture, writeGraphFixture } from "./support/graph";
import { PLACEHOLDER_DB_CERTIFICATE } from "../commands/programGraph";
import { MANAGED_CLIENT_ROOT_CERT, managedClientCommand } from "../render/postgres";

const S = {
    pn: "scaleway:network/privateNetwork:PrivateNetwork",
    ipamIp: "scaleway:ipam/ip:Ip",
    nic: "scaleway:instance/privateNic:PrivateNic",
    instance: "scaleway:databases/instance:Instance",
    lbIp: "scaleway:loadbalancers/ip:Ip",
    lb: "scaleway:loadbalancers/loadBalancer:LoadBalancer",
    backend: "scaleway:loadbalancers/backend:Backend",
    frontend: "scaleway:loadbalancers/frontend:Frontend",
    certificate: "scaleway:loadbalancers/certificate:Certificate",
} as const;

const LB_ADDRESS = "51.159.10.20";
const DB_IP = "172.16.32.9";
const DB_PORT = 5432;

/** The cloud's computed outputs the program reads (the harness returns inputs as outputs). */
function withScalewayOutputs(): () => void {
    const original = pulumi.runtime.setMocks;
    let nextHost = 10;
    (pulumi.runtime as { setMocks: typeof original }).setMocks = (mocks, ...rest) =>
        original(
            {
                ...mocks,
                newResource: async (args) => {
                    const result = await mocks.newResource(args);
                    const state = { ...result.state };
                    if (args.type === S.instance) {
                        state.privateNetwork = { ...args.inputs.privateNetwork, ip: DB_IP, port: DB_PORT };
                        state.certificate = PLACEHOLDER_DB_CERTIFICATE;
                    }
                    if (args.type === S.ipamIp) state.address = `172.16.32.${nextHost++}/22`;
                    if (args.type === S.lbIp) state.ipAddress = LB_ADDRESS;
                    return { ...result, state };
                },
            },
            ...rest,
        );
    return () => ((pulumi.runtime as { setMocks: typeof original }).setMocks = original);
}

// The domain resolves to the balancer (the shapes as they run once DNS points); tests of the first up override it.
const forward = { openForward: async () => ({ host: "127.0.0.1" as const, port: 40123, pid: 1, close: () => undefined }), resolveAddresses: async () => [LB_ADDRESS] };

async function runProd(raw: RawConfig, appCatalog = catalog, deps: Partial<PlatformDependencies> = {}): Promise<RunResult & { value: ReturnType<typeof definePlatform> }> {
    const restore = withScalewayOutputs();
    try {
        return await runProgram("prod", () => definePlatform(parsePlatformConfig(raw, { catalog: appCatalog, isSecret: (k) => PROD_SECRET_KEYS.includes(k), testStack: true }), { ...forward, ...deps }));
    } finally {
        restore();
    }
}

const MANAGED: RawConfig = { ...PROD_RAW, database: "managed", managedDatabaseBackupDays: "14" };
const TWO_HOSTS: RawConfig = { ...MANAGED, hosts: "2" };

const byUrn = (run: RunResult) => new Map(run.resources.map((r) => [r.urn, r]));
const named = (run: RunResult, type: string, name: string): Registration => run.one(type, name);

describe("scale: the default configs' graphs are the ones recorded before the scale wiring", () => {
    for (const [fixture, stack, raw] of [
        ["prod-default", "prod", PROD_RAW],
        ["local-default", "local", LOCAL_RAW],
    ] as const) {
        it(`${fixture}: every resource, input, option and dependency as recorded`, async () => {
            const run = await runProgram(stack, () => definePlatform(parse(raw), forward));
            const graph = graphOf(run);
            if (process.env.UPDATE_GRAPH_FIXTURES === "1") writeGraphFixture(fixture, graph);
            const diff = graphDifferences(readGraphFixture(fixture), graph);
            assert.deepStrictEqual(diff, [], `the default ${stack} graph changed (re-record with UPDATE_GRAPH_FIXTURES=1 only for an intended change):\n${diff.join("\n")}`);
            assert.strictEqual(run.resources.filter((r) => r.type.startsWith("scaleway:network") || r.type.startsWith("scaleway:loadbalancers") || r.type === S.instance).length, 0);
        });
    }
});

describe("scale: the scaled shapes' graphs are the ones recorded", () => {
    // One composition builds every shape (issue #17): these keep the managed and load-balanced shapes
    // exactly as they were when they had a code path of their own.
    for (const [fixture, raw] of [
        ["prod-managed", MANAGED],
        ["prod-two-hosts", TWO_HOSTS],
        ["prod-three-hosts", { ...MANAGED, hosts: "3" }],
    ] as const) {
        it(`${fixture}: every resource, input, option and dependency as recorded`, async () => {
            const graph = graphOf(await runProd(raw));
            if (process.env.UPDATE_GRAPH_FIXTURES === "1") writeGraphFixture(fixture, graph);
            const diff = graphDifferences(readGraphFixture(fixture), graph);
            assert.deepStrictEqual(diff, [], `the ${fixture} graph changed (re-record with UPDATE_GRAPH_FIXTURES=1 only for an intended change):\n${diff.join("\n")}`);
        });
    }
});

describe("scale: database managed, one host (mocks)", () => {
    let run: RunResult & { value: ReturnType<typeof definePlatform> };
    let base: RunResult;
    before(async () => {
        base = await runProgram("prod", () => definePlatform(parse(PROD_RAW), forward));
        run = await runProd(MANAGED);
    });

    it("declares PostgreSQL 16 with encryption at rest, automated backups from config, optional HA; protected", () => {
        const db = run.byType(S.instance);
        assert.strictEqual(db.length, 1);
        const i = db[0].inputs;
        assert.strictEqual(i.engine, "PostgreSQL-16");
        assert.strictEqual(i.nodeType, "db-dev-s");
        assert.strictEqual(i.isHaCluster, false);
        assert.strictEqual(i.encryptionAtRest, true);
        assert.strictEqual(i.disableBackup, false);
        assert.strictEqual(i.backupScheduleFrequency, 24);
        assert.strictEqual(i.backupScheduleRetention, 14);
        assert.ok(isSecretValue(i.password), "the admin password is a secret");
        assert.strictEqual(db[0].protect, true);
    });

    it("has a private-network endpoint only: no public endpoint is declared (the provider removes Scaleway's default one)", () => {
        const i = run.byType(S.instance)[0];
        const pn = run.one(S.pn, "network-pn");
        assert.deepStrictEqual(Object.keys(i.inputs.privateNetwork).sort(), ["enableIpam", "pnId"]);
        assert.strictEqual(i.inputs.privateNetwork.enableIpam, true);
        assert.strictEqual(i.inputs.loadBalancer, undefined, "a loadBalancer block is the public endpoint");
        assert.ok(i.dependencies.includes(pn.urn));
        assert.strictEqual(pn.inputs.ipv4Subnet.subnet, PRIVATE_SUBNET);
    });

    it("no database is reachable from the internet: relays publish on host 0's loopback only; no port opens in the firewall", () => {
        for (const c of run.byType(T.container)) {
            for (const p of c.inputs.ports ?? []) {
                if (c.name.startsWith("edge")) continue;
                assert.strictEqual(p.ip, "127.0.0.1", `${c.name} publishes ${p.external} beyond loopback`);
            }
        }
        const relay = run.one(T.container, "managed-db-forwarder");
        assert.deepStrictEqual(relay.inputs.ports, [{ internal: 5432, external: MANAGED_ADMIN_PORT, ip: "127.0.0.1" }]);
        assert.deepStrictEqual(relay.inputs.command, ["TCP-LISTEN:5432,fork,reuseaddr", `TCP:${DB_IP}:${DB_PORT}`]);
        const rules = run.one(T.securityGroup, "host-firewall").inputs.inboundRules as { port: number }[];
        assert.ok(!rules.some((r) => r.port === 5432 || r.port === MANAGED_ADMIN_PORT));
        assert.strictEqual(run.byType(T.container).filter((c) => c.name === "postgres-container").length, 0, "no container database on a managed stack");
    });

    it("per app: a login role that owns its database, CONNECT revoked from PUBLIC, through the admin channel; login revoked (data kept) on removal", () => {
        assert.strictEqual(run.byType(T.pgProvider).length + run.byType(T.role).length + run.byType(T.database).length + run.byType(T.grant).length, 0, "the same one mechanism as the container server");
        for (const app of ["app1", "app2"]) {
            const db = run.one(T.appDatabase, `${app}-db-role-database`);
            const admin = reveal(db.inputs.admin);
            assert.deepStrictEqual([admin.host, admin.port, admin.user, admin.ssl], ["127.0.0.1", 40123, "platform_admin", true], "TLS, through the admin channel, as the managed admin");
            // The forward's end is dialed; the instance's certificate and its endpoint's IP are what is checked.
            assert.deepStrictEqual(admin.tls, { rootCertificate: PLACEHOLDER_DB_CERTIFICATE, sslmode: "verify-full", serverName: DB_IP, channelBinding: "require" });
            assert.deepStrictEqual(
                [db.inputs.role, db.inputs.database, db.inputs.owner, db.inputs.login, db.inputs.publicConnect, db.inputs.adminMember],
                [`app_${app}`, `${app}_db`, `app_${app}`, true, false, true],
            );
            assert.ok(isSecretValue(db.inputs.passwordHash) && isSecretValue(db.inputs.ensure));
            const steps = (reveal(db.inputs.ensure) as { sql: string }[]).map((x) => x.sql);
            // The admin is no superuser: it sets only what it may, and is a member before it makes the role the owner.
            assert.ok(steps.some((x) => x.startsWith(`ALTER ROLE "app_${app}" WITH LOGIN NOCREATEDB NOCREATEROLE CONNECTION LIMIT `)));
            assert.ok(!steps.join("\n").includes("SUPERUSER"));
            assert.ok(steps.indexOf(`GRANT "app_${app}" TO "platform_admin"`) < steps.findIndex((x) => x.startsWith("CREATE DATABASE")));
            assert.ok(steps.includes(`REVOKE ALL ON DATABASE "${app}_db" FROM PUBLIC`));
            assert.strictEqual(db.retainOnDelete, false, "its delete retires the role (NOLOGIN), dropping nothing");
            assert.doesNotMatch(JSON.stringify(db.inputs.retire), /DROP/i);
            for (const dep of [run.one(S.instance, "managed-db-instance").urn, run.one(T.container, "managed-db-forwarder").urn]) assert.ok(db.dependencies.includes(dep));
            // The managed shape's component type is kept as an alias: its password keeps its URN.
            assert.ok(run.one(T.password, `${app}-db-password`).urn.includes("platform:database:AppDatabase$random:index/randomPassword:RandomPassword"));
        }
    });

    it("backends get DATABASE_URL of the private endpoint with TLS and channel binding required, as a secret, after role and database", () => {
        for (const app of ["app1", "app2"]) {
            const backend = run.appContainer(`${app}`, "backend");
            assert.ok(isSecretValue(backend.inputs.envs), "the environment carrying DATABASE_URL is a secret");
            const env = (reveal(backend.inputs.envs) as string[]).find((e) => e.startsWith("DATABASE_URL="));
            assert.match(String(env), new RegExp(`^DATABASE_URL=postgres://app_${app}:[^@]+@${DB_IP.replace(/\./g, "\\.")}:${DB_PORT}/${app}_db\\?sslmode=require&channel_binding=require$`));
            assert.ok(backend.dependencies.includes(run.one(T.appDatabase, `${app}-db-role-database`).urn), `${app}-backend waits for its role and database`);
        }
    });

    it("the backups' client container on host 0: the managed major's tools, the admin's connection, password secret, no port", () => {
        const client = run.one(T.container, "managed-db-client");
        assert.strictEqual(client.inputs.name, "platform-pg-client");
        assert.ok(isSecretValue(client.inputs.envs), "the environment carrying the admin password is a secret");
        const envs = reveal(client.inputs.envs) as string[];
        assert.ok(envs.includes(`PGHOST=${DB_IP}`) && envs.includes("PGUSER=platform_admin"));
        // The certificate names the endpoint: verify-full against the instance's certificate, and channel binding.
        for (const e of ["PGSSLMODE=verify-full", `PGSSLROOTCERT=${MANAGED_CLIENT_ROOT_CERT}`, "PGCHANNELBINDING=require", `PLATFORM_DB_ROOT_CERT=${PLACEHOLDER_DB_CERTIFICATE}`]) assert.ok(envs.includes(e), e);
        assert.deepStrictEqual(client.inputs.command, managedClientCommand());
        assert.ok(envs.some((e) => e.startsWith("PGPASSWORD=")));
        assert.strictEqual(client.inputs.ports, undefined);
        assert.ok(run.byType(T.image).some((i) => i.inputs.name === "postgres:16.6-bookworm"));
    });

    it("host 0 keeps its URNs and the inputs of everything that holds data; sshd also permits the managed relay's forward", () => {
        const now = byUrn(run);
        for (const r of base.resources.filter((x) => [T.server, T.ip, T.sshKey, T.securityGroup].includes(x.type as never))) {
            const same = now.get(r.urn);
            assert.ok(same, `${r.urn} is still declared`);
            // cloud-init runs at first boot only and is ignored after (ignoreChanges): the guard re-applies sshd.
            const drop = (x: Registration) => Object.fromEntries(Object.entries(reveal(x.inputs)).filter(([k]) => !x.ignoreChanges.includes(k)));
            assert.deepStrictEqual(drop(same), drop(r), `${r.name} is unchanged`);
            assert.deepStrictEqual(same.ignoreChanges, r.ignoreChanges);
            assert.strictEqual(same.protect, r.protect);
        }
        const guard = run.one(T.remoteCommand, "host-ssh-guard");
        assert.match(String(guard.inputs.create), /127\.0\.0\.1:5433/);
        const nic = run.one(S.nic, "host-private-nic");
        assert.ok(nic.dependencies.includes(run.one(T.server, "host-server").urn));
    });

    it("the edge container is the same container (not replaced), and the app containers keep their names", () => {
        const edge = named(run, T.container, "edge-container");
        const before = named(base, T.container, "edge-container");
        assert.strictEqual(edge.urn, before.urn);
        assert.deepStrictEqual(reveal(edge.inputs), reveal(before.inputs));
        for (const app of ["app1", "app2"]) for (const role of ["frontend", "backend"] as const) assert.strictEqual(run.appContainer(app, role).urn, base.appContainer(app, role).urn);
    });

    it("outputs keep their shape; publicIp is still the host's address with one host", async () => {
        const v = run.value;
        assert.deepStrictEqual(Object.keys(v).sort(), ["apps", "backupBucket", "backupDrillKey", "backupEndpoint", "baseUrl", "databaseUrls", "loadBalancerTls", "publicIp"]);
        assert.strictEqual(await unwrap(v.publicIp), FAKE_IP);
        assert.deepStrictEqual(Object.keys(v.apps).sort(), ["app1", "app2"]);
        assert.strictEqual(await unwrap(v.apps.app1.database!), "app1_db");
        assert.strictEqual(await unwrap(v.apps.app1.role!), "app_app1");
        assert.strictEqual(await v.databaseUrls.isSecret, true);
    });
});

describe("scale: two hosts behind the load balancer (mocks)", () => {
    let one: RunResult;
    let two: RunResult & { value: ReturnType<typeof definePlatform> };
    before(async () => {
        one = await runProd(MANAGED);
        two = await runProd(TWO_HOSTS);
    });

    it("two instances on the private network, each running the edge and every app's containers", () => {
        assert.deepStrictEqual(two.byType(T.server).map((s) => s.name).sort(), ["host-1-server", "host-server"]);
        assert.strictEqual(two.byType(S.nic).length, 2);
        for (const prefix of ["", "h1-"]) {
            for (const app of ["app1", "app2"]) for (const role of ["frontend", "backend"] as const) two.appContainer(`${prefix}${app}`, role);
            named(two, T.container, `${prefix}edge-container`);
        }
        const h1 = two.appContainer("h1-app1", "backend");
        assert.ok(h1.provider.includes("host-1-docker"), "host 1's containers run on host 1's engine");
    });

    it("a release migration runs once, from host 0 (the database is shared); host 1's new backend starts after host 0 switched", async () => {
        const migrating = await runProd(TWO_HOSTS, { ...catalog, app1: { ...catalog.app1, migrate: ["npm", "run", "migrate"] } });
        const migrations = migrating.byType(T.remoteCommand).filter((c) => c.name.endsWith("-migrate"));
        assert.deepStrictEqual(migrations.map((c) => c.name), ["app1-migrate"]);
        assert.ok(migrations[0].dependencies.includes(migrating.appContainer("app1", "backend").urn), "host 0's backend");
        assert.ok(migrating.one(T.remoteCommand, "edge-routes").dependencies.includes(migrations[0].urn), "host 0 switches after the migration");
        assert.ok(migrating.appContainer("h1-app1", "backend").dependencies.includes(migrating.one(T.remoteCommand, "edge-routes").urn), "host 1 starts after host 0 switched");
    });

    it("each host's Docker provider pins that host's key in a known_hosts of its own: a second host never overwrites the first's", () => {
        const knownHosts = two.byType(T.dockerProvider).map((p) => {
            const options: string[] = typeof p.inputs.sshOpts === "string" ? JSON.parse(p.inputs.sshOpts) : p.inputs.sshOpts;
            const option = options.find((o) => o.startsWith("UserKnownHostsFile="));
            assert.ok(option, `${p.name}: ${options.join(" ")}`);
            return `${p.name} ${option}`;
        });
        assert.deepStrictEqual(knownHosts.sort(), [
            "host-1-docker UserKnownHostsFile=~/.ssh/platform/platform/prod/known_hosts-host-1",
            "host-docker UserKnownHostsFile=~/.ssh/platform/platform/prod/known_hosts",
        ].map((l) => (process.env.PLATFORM_SSH_DIR ? l.replace("~/.ssh/platform/platform/prod", `${process.env.PLATFORM_SSH_DIR}/platform/prod`) : l)).sort());
    });

    it("the security groups accept 80/443 from nowhere on the internet (the load balancer comes over the private network); SSH as configured", () => {
        for (const sg of two.byType(T.securityGroup)) {
            const rules = sg.inputs.inboundRules as { port: number; ipRange: string }[];
            assert.deepStrictEqual(rules.map((r) => `${r.port} ${r.ipRange}`), ["22 203.0.113.10/32", "22 198.51.100.0/24"]);
            assert.strictEqual(sg.inputs.inboundDefaultPolicy, "drop");
        }
    });

    it("load balancer: TLS with Let's Encrypt at the LB, HTTP → HTTPS, HTTP health checks on /health, marked down and sessions shut, retries elsewhere", () => {
        const lb = two.one(S.lb, "lb-lb");
        const ip = two.one(S.lbIp, "lb-ip");
        assert.strictEqual(ip.protect, true, "DNS points at it");
        assert.strictEqual(lb.inputs.type, "LB-S");
        assert.ok(lb.dependencies.includes(ip.urn));
        assert.strictEqual(lb.inputs.privateNetworks.length, 1);
        const b = two.one(S.backend, "lb-edges").inputs;
        assert.deepStrictEqual(
            [b.forwardProtocol, b.forwardPort, b.proxyProtocol, b.healthCheckSendProxy, b.onMarkedDownAction, b.stickySessions],
            ["http", 80, "v2", true, "shutdown_sessions", "none"],
        );
        assert.deepStrictEqual(b.healthCheckHttp, { uri: "/health", method: "GET", code: 200, hostHeader: "example.com" });
        assert.deepStrictEqual(
            [b.healthCheckDelay, b.healthCheckTimeout, b.healthCheckMaxRetries, b.healthCheckTransientDelay, b.timeoutConnect, b.timeoutServer, b.maxRetries, b.redispatchAttemptCount],
            ["2s", "1s", 2, "0.5s", "2s", "65s", 3, 1],
        );
        assert.strictEqual(b.serverIps.length, 2);
        for (const a of b.serverIps) assert.match(a, /^172\.16\.3[2-5]\.\d+$/);
        const cert = two.one(S.certificate, "lb-certificate");
        assert.deepStrictEqual(cert.inputs.letsencrypt, { commonName: "example.com" });
        assert.strictEqual(cert.deleteBeforeReplaceDefined && cert.deleteBeforeReplace, false, "a new certificate exists before the old one goes");
        const https = two.one(S.frontend, "lb-https");
        assert.strictEqual(https.inputs.inboundPort, 443);
        assert.ok(https.dependencies.includes(cert.urn));
        const http = two.one(S.frontend, "lb-http");
        assert.strictEqual(http.inputs.inboundPort, 80);
        assert.deepStrictEqual(http.inputs.acls[0].action, { type: "redirect", redirects: [{ type: "scheme", target: "https", code: 301 }] });
        assert.deepStrictEqual(http.inputs.acls[0].match.ipSubnets, ["0.0.0.0/0", "::/0"]);
        assert.strictEqual(http.inputs.certificateIds, undefined);
        assert.ok(markDownSeconds(LB_TIMING) <= 7);
    });

    it("once the domain resolves to the balancer: its certificate, the HTTPS frontend, port 80 redirecting after it, and the edges tell the apps https with HSTS", async () => {
        const cert = two.one(S.certificate, "lb-certificate");
        assert.deepStrictEqual(cert.inputs.letsencrypt, { commonName: PROD_RAW.domain });
        const https = two.byType(S.frontend).find((f) => f.name === "lb-https")!;
        assert.strictEqual(https.inputs.inboundPort, 443);
        const http = two.byType(S.frontend).find((f) => f.name === "lb-http")!;
        assert.strictEqual(http.inputs.acls[0].action.redirects[0].target, "https");
        assert.ok(http.dependencies.includes(https.urn), "the redirect comes after the HTTPS frontend exists");
        const conf = String(reveal(two.one(T.remoteCommand, "edge-routes").inputs.stdin));
        assert.match(conf, /proxy_set_header X-Forwarded-Proto https;/);
        assert.match(conf, /Strict-Transport-Security/);
        assert.strictEqual(await unwrap(two.value.loadBalancerTls!), true);
    });

    it("the first up, before the domain resolves to it: no certificate (Scaleway would refuse it and fail the up), port 80 serves HTTP, the edges say http and send no HSTS, and a warning names the record", async () => {
        const warnings: string[] = [];
        const warn = pulumi.log.warn;
        (pulumi.log as { warn: typeof warn }).warn = async (message: string) => void warnings.push(message);
        let first: RunResult & { value: ReturnType<typeof definePlatform> };
        try {
            first = await runProd(TWO_HOSTS, catalog, { resolveAddresses: async () => [] });
        } finally {
            (pulumi.log as { warn: typeof warn }).warn = warn;
        }
        assert.deepStrictEqual(first.byType(S.certificate), []);
        assert.deepStrictEqual(first.byType(S.frontend).map((f) => f.name), ["lb-http"]);
        assert.deepStrictEqual(first.one(S.frontend, "lb-http").inputs.acls, [], "no redirect to an HTTPS nobody serves");
        for (const prefix of ["", "h1-"]) {
            const conf = String(reveal(first.one(T.remoteCommand, `${prefix}edge-routes`).inputs.stdin));
            assert.match(conf, /proxy_set_header X-Forwarded-Proto http;/);
            assert.doesNotMatch(conf, /Strict-Transport-Security/);
        }
        assert.strictEqual(await unwrap(first.value.loadBalancerTls!), false);
        assert.ok(warnings.some((w) => new RegExp(`${PROD_RAW.domain.replace(/\./g, "\\.")} does not resolve to ${LB_ADDRESS.replace(/\./g, "\\.")} yet .*stack output dnsRecord, then run pulumi up again`).test(w)), warnings.join("\n"));
    });

    it("a certificate once issued stays, whatever DNS answers later (a runner whose lookup fails must not take HTTPS away)", async () => {
        STACK_REFERENCE_OUTPUTS.set(`organization/platform/prod`, { loadBalancerTls: true });
        try {
            const later = await runProd(TWO_HOSTS, catalog, { resolveAddresses: async () => [] });
            assert.strictEqual(later.byType(S.certificate).length, 1);
            assert.strictEqual(await unwrap(later.value.loadBalancerTls!), true);
        } finally {
            STACK_REFERENCE_OUTPUTS.clear();
        }
    });

    it("every edge serves the load balancer (PROXY protocol from the balancer's own address only) and asks Let's Encrypt for nothing", () => {
        const trusted = new Set<string>();
        const serverIps: string[] = two.one(S.backend, "lb-edges").inputs.serverIps;
        for (const prefix of ["", "h1-"]) {
            const routes = named(two, T.remoteCommand, `${prefix}edge-routes`);
            const conf = String(reveal(routes.inputs.stdin));
            assert.match(conf, /listen 80 proxy_protocol;/);
            // Not the subnet: another server on the private network is not the balancer.
            assert.doesNotMatch(conf, new RegExp(`set_real_ip_from ${PRIVATE_SUBNET.replace(/\./g, "\\.")};`));
            const address = /set_real_ip_from (172\.16\.3[2-5]\.\d+)\/32;/.exec(conf)?.[1];
            assert.ok(address !== undefined, conf);
            assert.ok(!serverIps.includes(address), "the balancer's address, not a host's");
            trusted.add(address);
            assert.match(conf, new RegExp(`geo \\$realip_remote_addr \\$platform_from_load_balancer \\{\\n\\s+default 0;\\n\\s+${address.replace(/\./g, "\\.")}/32 1;\\n\\s*\\}`));
            assert.match(conf, /listen 80 proxy_protocol;\n\s+server_name [^\n]+\n[^\n]*\n\s+if \(\$platform_from_load_balancer = 0\) \{ return 444; \}/);
            assert.match(conf, /listen 127\.0\.0\.1:80;/);
            assert.doesNotMatch(conf, /ssl_certificate/);
            assert.strictEqual(two.resources.filter((r) => r.name === `${prefix}edge-certificate`).length, 0);
        }
        assert.strictEqual(trusted.size, 1, "both edges trust the same balancer");
        assert.strictEqual(one.resources.filter((r) => r.name === "edge-certificate").length, 1, "one host: the edge still gets its certificate");
    });

    it("rollout: host 1's containers start only after host 0's edge applied the new routes; host 0 waits for nothing of host 1", () => {
        const switch0 = named(two, T.remoteCommand, "edge-routes");
        for (const c of two.byType(T.container).filter((x) => x.name.startsWith("h1-"))) {
            assert.ok(c.dependencies.includes(switch0.urn), `${c.name} waits for host 0's switch`);
        }
        const host1 = new Set(two.resources.filter((r) => r.name.startsWith("h1-") || r.name.startsWith("host-1")).map((r) => r.urn));
        for (const c of two.resources.filter((r) => !r.name.startsWith("h1-") && !r.name.startsWith("host-1") && !r.name.startsWith("lb-"))) {
            assert.ok(!c.dependencies.some((d) => host1.has(d)), `${c.name} must not wait for host 1`);
        }
        for (const c of two.byType(T.container).filter((x) => /(frontend|backend)$/.test(x.name))) {
            assert.strictEqual(c.deleteBeforeReplaceDefined && c.deleteBeforeReplace === false, true, `${c.name} is blue-green`);
        }
    });

    it("1 → 2 → 1 hosts replaces nothing that holds data: host 0, the database, the private network keep URN and inputs", () => {
        const a = byUrn(one);
        const b = byUrn(two);
        const holders = [...one.resources.filter((r) => [T.server, T.ip, S.instance, S.pn, T.sshKey].includes(r.type as never))];
        assert.ok(holders.length >= 5);
        for (const r of holders) {
            const other = b.get(r.urn);
            assert.ok(other, `${r.urn} is still declared with two hosts`);
            assert.deepStrictEqual(reveal(other.inputs), reveal(r.inputs), `${r.name} is unchanged`);
            assert.strictEqual(other.protect, r.protect);
        }
        // Back to one host: everything of host 1 goes, and none of it is protected or holds data.
        const removed = two.resources.filter((r) => !a.has(r.urn));
        assert.ok(removed.some((r) => r.name === "host-1-server"));
        for (const r of removed) {
            assert.strictEqual(r.protect && r.type !== S.lbIp, false, `${r.name} would block hosts 2 → 1`);
            assert.ok(![S.instance, T.volume].includes(r.type as never), `${r.name} holds data`);
        }
        const h1 = two.one(T.server, "host-1-server");
        assert.strictEqual(h1.inputs.rootVolume.deleteOnTermination, true);
        assert.strictEqual(one.one(T.server, "host-server").inputs.rootVolume.deleteOnTermination, false);
    });

    it("publicIp becomes the load balancer's address; the other outputs keep their shape", async () => {
        assert.strictEqual(await unwrap(two.value.publicIp), LB_ADDRESS);
        assert.strictEqual(await unwrap(two.value.baseUrl), "https://example.com/");
        assert.deepStrictEqual(Object.keys(two.value).sort(), ["apps", "backupBucket", "backupDrillKey", "backupEndpoint", "baseUrl", "databaseUrls", "loadBalancerTls", "publicIp"]);
    });
});

describe("scale: nightly backups of the managed database (mocks)", () => {
    const B = {
        bucket: "scaleway:object/bucket:Bucket",
        lock: "scaleway:object/bucketLockConfiguration:BucketLockConfiguration",
        policy: "scaleway:object/bucketPolicy:BucketPolicy",
        apiKey: "scaleway:iam/apiKey:ApiKey",
        grantRole: "postgresql:index/grantRole:GrantRole",
    } as const;
    let base: RunResult & { value: ReturnType<typeof definePlatform> };
    let one: RunResult & { value: ReturnType<typeof definePlatform> };
    let two: RunResult & { value: ReturnType<typeof definePlatform> };
    before(async () => {
        base = await runProgram("prod", () => definePlatform(parse(PROD_RAW), forward));
        one = await runProd(MANAGED);
        two = await runProd(TWO_HOSTS);
    });

    it("the same bucket, lock, put-only host key and policy as the single-server stack: same URNs and inputs, so a migrating stack keeps its backups", () => {
        for (const run of [one, two]) {
            for (const type of [B.bucket, B.lock, B.policy, B.apiKey]) {
                const [now] = run.byType(type);
                const [before] = base.byType(type);
                assert.ok(now, `${type} is declared`);
                assert.strictEqual(now.urn, before.urn);
                assert.deepStrictEqual(reveal(now.inputs), reveal(before.inputs), `${now.name} keeps its inputs`);
                assert.strictEqual(now.protect, before.protect);
                assert.strictEqual(now.retainOnDelete, before.retainOnDelete);
            }
            assert.strictEqual(run.byType(B.bucket).length, 1, "one bucket, however many hosts");
        }
    });

    it("the cron job runs on host 0 only, dumping through the client container as the admin; updated in place, keys on stdin only", () => {
        for (const run of [one, two]) {
            const schedules = run.byType(T.remoteCommand).filter((c) => c.name === "backups-schedule");
            assert.strictEqual(schedules.length, 1);
            const [schedule] = schedules;
            assert.strictEqual(schedule.urn, base.one(T.remoteCommand, "backups-schedule").urn, "same command as before the move: updated, not replaced");
            const connection = reveal(schedule.inputs.connection);
            assert.strictEqual(connection.host, FAKE_IP, "host 0's address");
            const create = String(reveal(schedule.inputs.create));
            assert.strictEqual(reveal(schedule.inputs.update), reveal(schedule.inputs.create));
            assert.match(create, /\nPG_CONTAINER='platform-pg-client'\nPG_USER='platform_admin'\n/);
            assert.match(create, /BACKUP_TARGETS='app1=app1_db app2=app2_db'/);
            assert.ok(isSecretValue(schedule.inputs.stdin));
            assert.ok(!/PGPASSWORD|generated-managed-db-admin-password/.test(create), "the admin password never reaches the command: it lives in the client container's environment");
            const client = run.one(T.container, "managed-db-client");
            assert.ok(schedule.dependencies.includes(client.urn), "the first backup waits for the client container");
            for (const app of ["app1", "app2"]) {
                assert.ok(schedule.dependencies.includes(run.one(T.appDatabase, `${app}-db-role-database`).urn), `it waits for the admin's membership in app_${app}`);
            }
        }
        // The single-server stack's settings name no container: the script's defaults (platform-postgres, postgres).
        assert.doesNotMatch(String(reveal(base.one(T.remoteCommand, "backups-schedule").inputs.create)), /\nPG_CONTAINER='|\nPG_USER='/);
        assert.ok(!two.resources.some((r) => r.name === "h1-backups-schedule" || (r.type === T.remoteCommand && r.name.includes("backups") && r.urn.includes("host-1"))));
    });

    it("the admin becomes a member of each app role (no admin option), through the admin channel; the container server's superuser needs none", () => {
        for (const app of ["app1", "app2"]) {
            const db = one.one(T.appDatabase, `${app}-db-role-database`);
            assert.strictEqual(db.inputs.wantsAdminMember, true);
            assert.ok((reveal(db.inputs.ensure) as { sql: string }[]).some((x) => x.sql === `GRANT "app_${app}" TO "platform_admin"`), "no WITH ADMIN OPTION");
            assert.strictEqual(reveal(db.inputs.admin).port, 40123);
        }
        for (const db of base.byType(T.appDatabase)) assert.strictEqual(db.inputs.wantsAdminMember, false, "the container database needs none (backups run as its superuser)");
    });

    it("stack outputs name the bucket and its endpoint, as on the single-server stack", async () => {
        assert.match(await unwrap(one.value.backupBucket!), /^platform-backups-prod-/);
        assert.strictEqual(await unwrap(two.value.backupEndpoint!), "https://s3.fr-par.scw.cloud");
    });
});
