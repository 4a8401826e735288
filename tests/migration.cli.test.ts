// The migration command (npm run migrate:managed): its arguments, and its steps in order against real
// PostgreSQL. Two throwaway clusters stand for the container database and the managed instance (a
// non-superuser admin holding the app roles); a stand-in `ssh` on PATH records every call and runs the
// remote command here, where a stand-in `docker` sends `docker exec platform-postgres …` to the first
// cluster as the superuser and `docker exec platform-pg-client …` to the second as the admin (as
// tests/quickstart.test.ts stands in for pulumi and docker). The real backup script, age, restore
// and the program's own URNs (under mocks) do the rest.
import * as assert from "assert";
import { TEST_SIGNING_KEY, TEST_TRUST, writeSigningKey } from "./support/signing";
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderBackupSettings } from "../render/backup";
import { DirectoryBackupStore } from "../io/restore";
import { SSH_DIR_ENV, knownHostsLine, stackSshDirectory, writeStackSshFiles } from "../io/sshFiles";
import { MigrateArgs, parseMigrateArgs, runMigration, stepTwoTargets } from "../commands/migrate-to-managed";
import { BACKUP_ADMINISTRATOR, BACKUP_RECIPIENT } from "./fixtures";
import { FAKE_HOST_KEY } from "./harness";
import { requireBinary } from "./support/edge";
import { Cluster, fakeDocker, requirePostgres, startCluster } from "./support/postgres";

const ADMIN = "platform_admin";
const ADMIN_PASSWORD = "Admin-Pass_word.321";
const HOST0 = "51.15.200.7";
const STACK = "prod";

const STACK_YAML = `config:
  scaleway:region: fr-par
  platform:target: scaleway
  platform:domain: example.com
  platform:acmeEmail: ops@example.com
  platform:sshPublicKey: ${FAKE_HOST_KEY} deploy@test
  platform:adminCidrs:
    - 203.0.113.10/32
  platform:registryUsername: ci-bot
  platform:registryToken:
    secure: v1:AAAAbogus
  platform:backupPublicKey: ${BACKUP_RECIPIENT}
  platform:backupSigningKey:
    secure: v1:AAAAbogus
  platform:backupSigningKeys:
    - ${TEST_SIGNING_KEY.publicKey}
  platform:backupAdministrators:
    - ${BACKUP_ADMINISTRATOR}
  platform:apps:
    app1: "1.4.2"
    app2: "2.0.1"
`;

describe("the migration command's arguments (npm run migrate:managed)", () => {
    it("parses the documented forms", () => {
        assert.deepStrictEqual(parseMigrateArgs(["--stack", "prod"]), { stack: "prod", step: undefined, rollback: false, dryRun: false, apps: undefined, identity: undefined });
        assert.deepStrictEqual(parseMigrateArgs(["--stack", "prod", "--step", "3", "--dry-run", "--apps", "app1,app2", "--identity", "/k"]), {
            stack: "prod",
            step: 3,
            rollback: false,
            dryRun: true,
            apps: ["app1", "app2"],
            identity: "/k",
        });
        assert.strictEqual(parseMigrateArgs(["--stack", "prod", "--rollback"]).rollback, true);
    });

    it("refuses hostile, missing or contradictory arguments before anything runs", () => {
        const bad: [string[], RegExp][] = [
            [[], /--stack is required/],
            [["--stack"], /--stack needs a value/],
            [["--stack", "prod; rm -rf /"], /not a stack name/],
            [["--stack", "../prod"], /not a stack name/],
            [["--stack", "local"], /no managed database/],
            [["--stack", "prod", "--step", "6"], /not 1, 2, 3, 4 or 5/],
            [["--stack", "prod", "--step", "1;reboot"], /not 1, 2, 3, 4 or 5/],
            [["--stack", "prod", "--apps", "app1,app2;reboot"], /not a catalog name/],
            [["--stack", "prod", "--apps", ""], /not a catalog name/],
            [["--stack", "prod", "--step", "1", "--rollback"], /not both/],
            [["--stack", "prod", "--yes"], /unknown argument "--yes"/],
        ];
        for (const [argv, re] of bad) assert.throws(() => parseMigrateArgs(argv), re, JSON.stringify(argv));
    });

    it("step 2's targets: what database managed adds, plus host 0's ssh-guard; refused when nothing is added", () => {
        const r = (type: string, name: string, urn = `urn:${name}`) => ({ type, name, urn, custom: true });
        const container = [r("command:remote:Command", "host-ssh-guard"), r("docker:index/volume:Volume", "postgres-data")];
        const managed = [r("command:remote:Command", "host-ssh-guard"), r("scaleway:databases/instance:Instance", "managed-db-instance"), r("pulumi-nodejs:dynamic/database:RoleAndDatabase", "app1-db-role-database")];
        // The app database is in both graphs (same URN): it is targeted, since it moves to the managed server.
        assert.deepStrictEqual(stepTwoTargets([...container, managed[2]], managed), ["urn:host-ssh-guard", "urn:managed-db-instance", "urn:app1-db-role-database"]);
        assert.throws(() => stepTwoTargets(managed, managed), /adds no managed database instance/);
    });
});

describe("the migration command, step by step, against real PostgreSQL (stand-in ssh and docker)", function () {
    this.timeout(240000);
    let source: Cluster;
    let target: Cluster;
    let dir: string;
    let identity: string;
    let sshLog: string;
    let sshBase: string;
    let stateFile: string;
    let savedPath: string | undefined;
    let lines: string[] = [];

    const psqlAs = (cluster: Cluster, user: string, password: string, db: string, text: string) =>
        spawnSync(path.join(cluster.binDir, "psql"), ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", cluster.host, "-p", String(cluster.port), "-U", user, "-d", db], { input: text, encoding: "utf8", env: { ...process.env, PGPASSWORD: password } });

    const run = async (argv: string[]): Promise<{ code: number; out: string }> => {
        lines = [];
        const args: MigrateArgs = parseMigrateArgs(["--stack", STACK, ...argv]);
        const code = await runMigration(args, {
            readers: {
                project: "platform",
                env: { [SSH_DIR_ENV]: sshBase },
                state: () => ({ deployment: { resources: [{ urn: "urn:pulumi:prod::platform::platform:host:ScalewayHost::host", type: "platform:host:ScalewayHost", outputs: { publicAddress: HOST0, hostKey: FAKE_HOST_KEY } }] } }),
            },
            stackYaml: () => STACK_YAML,
            outputs: () => {
                throw new Error("the test's store is a directory");
            },
            store: () => new DirectoryBackupStore(path.join(dir, "backups"), TEST_TRUST),
            stateFile,
            log: (l) => lines.push(l),
            env: { PLATFORM_BACKUP_IDENTITY: identity },
        });
        return { code, out: lines.join("\n") };
    };
    const sshCalls = () => (fs.existsSync(sshLog) ? fs.readFileSync(sshLog, "utf8").trim().split("\n").filter(Boolean) : []);

    before(async function () {
        const binDir = requirePostgres(this);
        for (const bin of ["age", "age-keygen", "tar", "sha256sum"]) requireBinary(this, bin);
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-migrate-cli-"));
        identity = path.join(dir, "backup.key");
        execFileSync("age-keygen", ["-o", identity], { stdio: "pipe" });
        const recipient = execFileSync("age-keygen", ["-y", identity], { encoding: "utf8" }).trim();
        stateFile = path.join(dir, "state", "migrate-prod.json");
        sshBase = path.join(dir, "ssh-files");
        // What ScalewayHost wrote on this machine: host 0's pinned key (the stand-in ssh checks the options name it).
        writeStackSshFiles({ project: "platform", stack: STACK, knownHosts: knownHostsLine(HOST0, FAKE_HOST_KEY), env: { [SSH_DIR_ENV]: sshBase } });

        source = await startCluster(binDir);
        source.query("postgres", "CREATE ROLE app_app1 LOGIN PASSWORD 'old-app1'; CREATE ROLE app_app2 LOGIN PASSWORD 'old-app2'; CREATE DATABASE app1_db OWNER app_app1; CREATE DATABASE app2_db OWNER app_app2; REVOKE ALL ON DATABASE app1_db FROM PUBLIC; REVOKE ALL ON DATABASE app2_db FROM PUBLIC;");
        source.query("app1_db", "SET ROLE app_app1; CREATE TABLE orders (id serial PRIMARY KEY, note text); INSERT INTO orders (note) SELECT 'o' || g FROM generate_series(1, 1234) g;");
        source.query("app2_db", "SET ROLE app_app2; CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 56);");

        target = await startCluster(binDir);
        target.query("postgres", `CREATE ROLE ${ADMIN} LOGIN CREATEROLE CREATEDB PASSWORD '${ADMIN_PASSWORD}';`);
        for (const app of ["app1", "app2"]) {
            for (const text of [`CREATE ROLE app_${app} LOGIN PASSWORD 'new-${app}';`, `GRANT app_${app} TO ${ADMIN};`, `CREATE DATABASE ${app}_db OWNER app_${app} TEMPLATE template0;`, `REVOKE ALL ON DATABASE ${app}_db FROM PUBLIC;`]) {
                const r = psqlAs(target, ADMIN, ADMIN_PASSWORD, "postgres", text);
                assert.strictEqual(r.status, 0, r.stderr);
            }
        }

        // The backup job's settings on host 0 (the container stack's: no PG_CONTAINER, the defaults).
        const settings = path.join(dir, "backup.env");
        fs.writeFileSync(settings, renderBackupSettings({ apps: ["app1", "app2"], recipient: { key: recipient }, destination: { kind: "directory", directory: path.join(dir, "backups") }, workDir: dir, signingKeyFile: writeSigningKey(dir) }));
        const containerDocker = path.join(fakeDocker(source, "platform-postgres"), "docker");
        const clientDocker = path.join(fakeDocker(target, "platform-pg-client", { user: ADMIN, password: ADMIN_PASSWORD }), "docker");
        const bin = path.join(dir, "bin");
        fs.mkdirSync(bin);
        fs.writeFileSync(path.join(bin, "docker"), `#!/bin/sh\n# the container is the first argument after exec and its options (-i, -e NAME)\nc=""; n=0; skip=0\nfor a; do n=$((n + 1)); [ $n = 1 ] && continue; if [ $skip = 1 ]; then skip=0; continue; fi; case $a in -i) ;; -e) skip=1 ;; *) c=$a; break ;; esac; done\nif [ "$c" = platform-pg-client ]; then exec ${clientDocker} "$@"; fi\nexec ${containerDocker} "$@"\n`, { mode: 0o755 });
        sshLog = path.join(dir, "ssh.log");
        const script = path.join(__dirname, "..", "hostScripts", "backup.sh");
        fs.writeFileSync(
            path.join(bin, "ssh"),
            [
                "#!/bin/sh",
                "# stand-in ssh: records its arguments; runs the remote command (the last argument) here",
                `printf '%s\\n' "$*" >> ${sshLog}`,
                'for a; do cmd=$a; done',
                `cmd=$(printf '%s' "$cmd" | sed -e 's#/srv/platform/bin/backup.sh#${script}#' -e 's#/srv/platform/backup/backup.env#${settings}#')`,
                `PATH=${bin}:$PATH exec sh -c "$cmd"`,
                "",
            ].join("\n"),
            { mode: 0o755 },
        );
        savedPath = process.env.PATH;
        process.env.PATH = `${bin}:${process.env.PATH}`;
    });

    after(() => {
        if (savedPath !== undefined) process.env.PATH = savedPath;
        source?.stop();
        target?.stop();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("without --step: prints the plan, the step 2 targets from the program's URNs and step 4's unprotect; runs nothing", async () => {
        const { code, out } = await run([]);
        assert.strictEqual(code, 0);
        for (const n of [1, 2, 3, 4, 5]) assert.match(out, new RegExp(`\\n  ${n}\\. `), `step ${n} is described`);
        assert.match(out, /pulumi config set --stack prod platform:database managed/);
        const up = out.split("\n").findIndex((l) => l.includes("pulumi up --stack prod --target"));
        assert.ok(up >= 0, out);
        const targets = [...out.matchAll(/--target '([^']+)'/g)].map((m) => m[1]);
        const unique = [...new Set(targets)];
        for (const expected of [
            "urn:pulumi:prod::platform::platform:host:ScalewayHost$command:remote:Command::host-ssh-guard",
            "urn:pulumi:prod::platform::platform:database:ManagedDatabase$scaleway:databases/instance:Instance::managed-db-instance",
            "urn:pulumi:prod::platform::platform:database:ManagedDatabase$docker:index/container:Container::managed-db-client",
            "urn:pulumi:prod::platform::platform:database:AppDatabase$pulumi-nodejs:dynamic/database:RoleAndDatabase::app2-db-role-database",
            "urn:pulumi:prod::platform::platform:network:HostAttachment$scaleway:instance/privateNic:PrivateNic::host-private-nic",
        ]) {
            assert.ok(unique.includes(expected), `${expected} is targeted`);
        }
        assert.ok(!unique.some((u) => /backups-schedule|app1-backend|app1-frontend|edge|PostgresServer/.test(u)), `nothing of the apps, the backups or the old database: ${unique.join("\n")}`);
        assert.match(out, /pulumi state unprotect --stack prod --yes 'urn:pulumi:prod::platform::platform:database:PostgresServer\$docker:index\/volume:Volume::postgres-data'/);
        assert.deepStrictEqual(sshCalls(), [], "the plan connects nowhere");
        assert.ok(!fs.existsSync(stateFile));
    });

    it("step 3 before step 1 is refused: no freeze recorded", async () => {
        await assert.rejects(run(["--step", "3"]), /no freeze recorded .*run step 1 first/);
    });

    it("step 1 --dry-run reads, changes nothing", async () => {
        const { out } = await run(["--step", "1", "--dry-run"]);
        assert.match(out, /would freeze app_app1: currently logging in/);
        assert.strictEqual(psqlAs(source, "app_app1", "old-app1", "app1_db", "INSERT INTO orders (note) VALUES ('still writable');").status, 0);
        assert.ok(!fs.existsSync(stateFile));
        assert.deepStrictEqual(fs.existsSync(path.join(dir, "backups")) ? fs.readdirSync(path.join(dir, "backups")) : [], []);
    });

    it("step 1 freezes the old databases, runs the backup job on host 0, checks the backups and records the freeze", async () => {
        const { out } = await run(["--step", "1"]);
        assert.match(out, /freeze: app_app1 can no longer log in \(NOLOGIN\), app1_db is read-only for new transactions; ended \d+ session\(s\); checked: no session of app_app1 remains/);
        assert.match(out, /app1: app1-\d{8}T\d{6}Z is in .* \(taken after the freeze\)/);
        assert.match(out, /next: npm run migrate:managed -- --stack prod --step 2/);
        const write = psqlAs(source, "app_app1", "old-app1", "app1_db", "INSERT INTO orders (note) VALUES ('lost?');");
        assert.notStrictEqual(write.status, 0);
        assert.match(write.stderr, /not permitted to log in/);
        assert.strictEqual(JSON.parse(fs.readFileSync(stateFile, "utf8")).stack, "prod");
        assert.ok(sshCalls().some((c) => c.endsWith(`'sh' '/srv/platform/bin/backup.sh' '/srv/platform/backup/backup.env'`)), sshCalls().join("\n"));
    });

    it("step 2 prints what to run and runs nothing", async () => {
        const before = sshCalls().length;
        const { out } = await run(["--step", "2"]);
        assert.match(out, /pulumi preview --stack prod --target/);
        assert.match(out, /next: npm run migrate:managed -- --stack prod --step 3/);
        assert.strictEqual(sshCalls().length, before);
    });

    it("step 3 --dry-run restores and verifies each app, then drops the copies: the managed databases stay empty", async () => {
        const { out } = await run(["--step", "3", "--dry-run"]);
        assert.match(out, /app1: app1_db is frozen; restoring app1-\d{8}T\d{6}Z/);
        assert.match(out, /\[6\/6\] swap: skipped \(dry run\)/);
        assert.strictEqual(target.query("app1_db", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), "0");
    });

    it("step 3 restores every app into the managed instance as its admin: row counts verified, swapped in, the admin keeps its membership", async () => {
        const { out } = await run(["--step", "3"]);
        assert.match(out, /through platform-pg-client as platform_admin/);
        assert.strictEqual(target.query("app1_db", "SELECT count(*) FROM orders"), "1235", "the frozen state, with the write made before the freeze");
        assert.strictEqual(target.query("app2_db", "SELECT count(*) FROM items"), "56");
        assert.strictEqual(target.query("postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app1_db'"), "app_app1");
        assert.strictEqual(target.query("postgres", `SELECT pg_has_role('${ADMIN}', 'app_app1', 'MEMBER')`), "t");
        const write = psqlAs(target, "app_app1", "new-app1", "app1_db", "INSERT INTO orders (note) VALUES ('on managed') RETURNING id > 0;");
        assert.strictEqual(write.status, 0, write.stderr);
        assert.match(out, /next: npm run migrate:managed -- --stack prod --step 4/);
    });

    it("steps 4 and 5 print the switch and the volume's deletion with the pinned ssh options", async () => {
        const four = await run(["--step", "4"]);
        assert.match(four.out, /blue-green/);
        assert.match(four.out, /pulumi state unprotect --stack prod --yes '.*::postgres-data'\n\s+pulumi up --stack prod/);
        const five = await run(["--step", "5"]);
        const known = `${stackSshDirectory("platform", STACK, { [SSH_DIR_ENV]: sshBase }).forSsh}/known_hosts`;
        assert.match(five.out, new RegExp(`ssh .*'StrictHostKeyChecking=yes' .*'UserKnownHostsFile=${known.replace(/[.+]/g, "\\$&")}'.* 'root@${HOST0.replace(/\./g, "\\.")}' docker volume rm platform-pgdata`));
    });

    it("every ssh call went to host 0 with the program's pinned known_hosts and strict options", () => {
        const calls = sshCalls();
        assert.ok(calls.length >= 6, calls.join("\n"));
        const known = `${stackSshDirectory("platform", STACK, { [SSH_DIR_ENV]: sshBase }).forSsh}/known_hosts`;
        for (const c of calls) {
            for (const o of ["BatchMode=yes", "StrictHostKeyChecking=yes", `UserKnownHostsFile=${known}`]) assert.ok(c.includes(o), `${o} missing: ${c}`);
            assert.match(c, new RegExp(` root@${HOST0.replace(/\./g, "\\.")} -- `));
        }
    });

    it("--rollback gives the old databases their writes back; step 3 then refuses (a write could be lost)", async () => {
        await run(["--rollback"]);
        assert.match(lines.join("\n"), /pulumi config set --stack prod platform:database container/);
        assert.strictEqual(psqlAs(source, "app_app1", "old-app1", "app1_db", "INSERT INTO orders (note) VALUES ('writable again');").status, 0);
        await assert.rejects(run(["--step", "3"]), /app1_db on the container database is not frozen/);
    });
});
