// The day-2 commands' pure parts: arguments (help, usage errors, hostile values), the release history
// and the previous release, the status screen from the checker's facts, the quoting of remote words
// (round-tripped through a real sh), and a missing Pulumi CLI named as such.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
    StackConfigVersion,
    UsageError,
    isSince,
    parseExecArgs,
    parseFacts,
    parseLogsArgs,
    parseReleasesArgs,
    parseRollbackArgs,
    parseStatusArgs,
    previousRelease,
    releaseHistory,
    renderReleases,
    renderStatus,
} from "../render/day2";
import { hostsFromState, remoteCommandLine } from "../io/stackHost";
import { logsCommand, oneOffCommand } from "../io/hostDocker";
import { Day2Deps, defaultDeps, reportFailure } from "../commands/day2Cli";

const KNOWN = ["app1", "app2", "demo"];
const HOSTILE = ["x;rm -rf /", "$(touch /tmp/pwned)", "`id`", "a b", "App1", "-rf", "app1\n", "../etc", "'", ""];

function usageError(f: () => unknown, re: RegExp): void {
    assert.throws(f, (e: Error) => e instanceof UsageError && re.test(e.message) && /usage: npm run/.test((e as UsageError).usage));
}

describe("day-2 command arguments", () => {
    it("--help on every command", () => {
        assert.strictEqual(parseStatusArgs(["--help"]), "help");
        assert.strictEqual(parseReleasesArgs(["-h"], KNOWN), "help");
        assert.strictEqual(parseRollbackArgs(["--stack", "prod", "--help"], KNOWN), "help");
        assert.strictEqual(parseLogsArgs(["--help"], KNOWN), "help");
        assert.strictEqual(parseExecArgs(["--help"], KNOWN), "help");
    });
    it("status: --stack is required and checked; nothing else is taken", () => {
        assert.deepStrictEqual(parseStatusArgs(["--stack", "prod"]), { stack: "prod", json: false });
        assert.deepStrictEqual(parseStatusArgs(["--stack=local", "--json"]), { stack: "local", json: true });
        usageError(() => parseStatusArgs([]), /--stack is required/);
        usageError(() => parseStatusArgs(["--stack"]), /--stack needs a value/);
        usageError(() => parseStatusArgs(["--stack", "--json"]), /--stack needs a value/);
        usageError(() => parseStatusArgs(["--stack", "prod", "extra"]), /unexpected argument/);
        usageError(() => parseStatusArgs(["--stack", "prod", "--verbose"]), /unknown option "--verbose"/);
        for (const s of ["a b", "x;y", "$(id)", "../x"]) usageError(() => parseStatusArgs(["--stack", s]), /is not a stack name/);
    });
    it("every command refuses hostile app names, naming the value", () => {
        for (const app of HOSTILE) {
            usageError(() => parseReleasesArgs(["--stack", "prod", app], KNOWN), app === "" ? /not an app name/ : /not an app name|not in the catalog|unknown option/);
            usageError(() => parseLogsArgs(["--stack", "prod", app], KNOWN), /not an app name|not in the catalog|unknown option/);
            usageError(() => parseExecArgs(["--stack", "prod", app, "--", "true"], KNOWN), /not an app name|not in the catalog|unknown option/);
            usageError(() => parseRollbackArgs(["--stack", "prod", app], KNOWN), /not an app name|not in the catalog|unknown option/);
        }
        usageError(() => parseLogsArgs(["--stack", "prod", "shop"], KNOWN), /app shop is not in the catalog \(known: app1, app2, demo\)/);
        usageError(() => parseLogsArgs(["--stack", "prod"], KNOWN), /name the app/);
    });
    it("logs: role, --since, --tail, --follow; hostile --since values are refused", () => {
        assert.deepStrictEqual(parseLogsArgs(["--stack", "prod", "app1", "backend", "--since", "10m", "--follow"], KNOWN), {
            stack: "prod",
            app: "app1",
            roles: ["backend"],
            since: "10m",
            tail: undefined,
            follow: true,
            host: 0,
        });
        const both = parseLogsArgs(["--stack", "local", "demo", "--tail", "50", "-f"], KNOWN);
        assert.ok(both !== "help" && both.roles.length === 2 && both.tail === 50 && both.follow);
        for (const ok of ["10m", "2h", "1h30m", "90s", "2026-12-01T10:00:00Z", "2026-12-01T10:00Z"]) assert.ok(isSince(ok), ok);
        for (const bad of ["", "10", "m", "10m; reboot", "$(id)", "10 m", "-1m", "10d", "2026-13-45T99:99:99Z", "10m\n", "--follow", "1h'"]) {
            assert.ok(!isSince(bad), bad);
        }
        usageError(() => parseLogsArgs(["--stack", "prod", "app1", "--since", "10m;reboot"], KNOWN), /--since "10m;reboot" is not a duration/);
        usageError(() => parseLogsArgs(["--stack", "prod", "app1", "database"], KNOWN), /"database" is not frontend or backend/);
        usageError(() => parseLogsArgs(["--stack", "prod", "app1", "--tail", "1;2"], KNOWN), /--tail/);
    });
    it("exec: the command after -- is kept word for word, hostile words included", () => {
        const words = ["sh", "-c", "echo '$DATABASE_URL'; rm -rf /", "$(id)", "a b", "--stack", "--", ""];
        const a = parseExecArgs(["--stack", "prod", "app1", "--", ...words], KNOWN);
        assert.ok(a !== "help");
        assert.deepStrictEqual(a.command, words);
        usageError(() => parseExecArgs(["--stack", "prod", "app1"], KNOWN), /give the command to run after --/);
        usageError(() => parseExecArgs(["--stack", "prod", "app1", "node"], KNOWN), /put the command after --/);
    });
    it("rollback: VERSION must be a release; --dispatch and --local exclude each other", () => {
        const a = parseRollbackArgs(["--stack", "prod", "app1", "1.4.1", "--pull", "--dry-run"], KNOWN);
        assert.deepStrictEqual(a, { stack: "prod", app: "app1", version: "1.4.1", pull: true, via: undefined, dryRun: true });
        for (const v of ["1.4;rm", "$(id)", "-x", "a b", ":latest", "sha256:abc"]) usageError(() => parseRollbackArgs(["--stack", "prod", "app1", v], KNOWN), /not an image tag|unknown option/);
        usageError(() => parseRollbackArgs(["--stack", "prod", "app1", "--dispatch", "--local"], KNOWN), /not both/);
    });
});

describe("remote words are quoted for the host's shell", () => {
    it("every word reaches the remote program as one literal argument (real sh)", () => {
        const words = ["printf", "%s\\n", ...HOSTILE, "it's", 'say "hi"', "\\", "*", "~", "\t", "a\nb"];
        const line = remoteCommandLine(words);
        const r = spawnSync("sh", ["-c", line], { encoding: "utf8" });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.strictEqual(r.stdout, words.slice(2).map((w) => w + "\n").join(""));
        assert.ok(!fs.existsSync("/tmp/pwned"));
    });
    it("docker logs words carry only checked values", () => {
        assert.deepStrictEqual(logsCommand("abc123", { since: "10m", tail: 20, follow: true }), ["docker", "logs", "--timestamps", "--since", "10m", "--tail", "20", "--follow", "abc123"]);
        assert.throws(() => logsCommand("abc;reboot", { follow: false }), /container/);
        assert.throws(() => logsCommand("abc", { since: "1m$(id)", follow: false }), /--since/);
    });
    it("the one-off command passes the command as words after the container id, never the secret", () => {
        const w = oneOffCommand("0123456789ab", ["psql", "-c", "select 1; drop table x"], false);
        assert.deepStrictEqual(w.slice(-4), ["0123456789ab", "psql", "-c", "select 1; drop table x"]);
        assert.ok(!w.join(" ").includes("postgres://"));
        assert.throws(() => oneOffCommand("x y", ["true"], false), /container/);
    });
});

describe("release history from the recorded stack config", () => {
    const v = (commit: string, date: string, subject: string, release?: string): StackConfigVersion => ({
        commit: commit.repeat(40).slice(0, 40),
        date,
        subject,
        yaml: release === undefined ? "config:\n  platform:target: scaleway\n" : `config:\n  platform:apps:\n    app1: "${release}"\n    app2: "2.0.0"\n`,
    });
    // newest first, as git log lists them
    const versions = [
        v("f", "2026-11-30T10:00:00Z", "Deploy app2 2.0.0 to prod [skip ci]", "1.4.3"),
        v("e", "2026-11-29T10:00:00Z", "Deploy app1 1.4.3 to prod [skip ci]", "1.4.3"),
        v("d", "2026-11-28T10:00:00Z", "Roll back app1 to 1.4.1 on prod", "1.4.1"),
        v("c", "2026-11-27T10:00:00Z", "Deploy app1 1.4.2 to prod [skip ci]", "1.4.2"),
        v("b", "2026-11-26T10:00:00Z", "Deploy app1 1.4.1 to prod [skip ci]", "1.4.1"),
        v("a", "2026-11-25T10:00:00Z", "Initial config"),
    ];
    it("lists every change of the app's release, newest first, with the commit that made it", () => {
        const h = releaseHistory(versions, "app1");
        assert.deepStrictEqual(
            h.map((r) => [r.release, r.commit[0], r.date.slice(0, 10)]),
            [
                ["1.4.3", "e", "2026-11-29"],
                ["1.4.1", "d", "2026-11-28"],
                ["1.4.2", "c", "2026-11-27"],
                ["1.4.1", "b", "2026-11-26"],
            ],
        );
        assert.strictEqual(releaseHistory(versions, "app2").length, 1);
        assert.strictEqual(releaseHistory(versions, "demo").length, 0);
    });
    it("the previous release is the one before the current, not an older duplicate", () => {
        const h = releaseHistory(versions, "app1");
        assert.strictEqual(previousRelease(h, "1.4.3").release, "1.4.1");
        assert.strictEqual(previousRelease(h, "1.4.3").commit[0], "d");
        assert.strictEqual(previousRelease(h, "1.4.1").release, "1.4.2");
        assert.throws(() => previousRelease(h.slice(3), "1.4.1"), /no release before 1.4.1 is recorded/);
        assert.throws(() => previousRelease(h, "9.9.9"), /not in the recorded history/);
    });
    it("renders the list with the cache state of each release and the current one marked", () => {
        const h = releaseHistory(versions, "app1");
        const text = renderReleases("app1", "prod", h, "1.4.3", (r) => (r === "1.4.2" ? "gone" : "cached"));
        assert.match(text, /^\* 1\.4\.3 +2026-11-29 10:00:00 +eeeeeeeeeeee +images: cached/m);
        assert.match(text, /^ {2}1\.4\.2 .*images: gone/m);
        assert.strictEqual(renderReleases("demo", "prod", [], undefined, () => "?"), "demo has no recorded release on prod\n");
    });
});

describe("status screen", () => {
    const now = new Date("2026-12-03T06:00:00Z");
    const facts = (extra = "") =>
        parseFacts(
            [
                "container app1-frontend-1a2b app1 frontend 1.4.3 running healthy 0 111111111111",
                "container app1-backend-3c4d app1 backend 1.4.3 running healthy 2 222222222222",
                "container platform-edge - edge - running healthy 0 333333333333",
                "disk / 41 4100000 10000000",
                "memory 4000000 2500000",
                `certificate ${Math.round(new Date("2027-02-01T00:00:00Z").getTime() / 1000)} 60`,
                `backup ${Math.round(new Date("2026-12-03T03:30:00Z").getTime() / 1000)} ok`,
                "generation 0123456789abcdef 0123456789abcdef",
                extra,
            ].join("\n"),
        );
    const input = (hostFacts = facts(), backupAt = new Date("2026-12-03T03:30:00Z")) => ({
        stack: "prod",
        now,
        apps: [{ app: "app1", release: "1.4.3", hasDatabase: true, digests: { frontend: "ghcr.io/x/app1-frontend@sha256:" + "a".repeat(64) }, backup: { newest: backupAt, source: "bucket b" } }],
        hosts: [{ name: "host", facts: hostFacts }],
        drill: { result: "success", at: new Date("2026-12-03T07:17:00Z"), source: "GitHub" },
    });
    it("a healthy stack: every section on one screen, exit code 0", () => {
        const r = renderStatus(input());
        assert.ok(r.healthy, r.problems.join("; "));
        for (const re of [/app1 +release 1\.4\.3/, /frontend ok +running\/healthy, 0 restarts, 1\.4\.3 ghcr\.io\/x\/app1-frontend@sha256:a{64}/, /backend +ok +running\/healthy, 2 restarts/, /backup +ok +newest 2\.5 h ago/, /last drill: success/, /certificate +expires 2027-02-01 \(60 days\)/, /disk \/ +41% of 9\.5 GiB/, /memory +1465 MiB of 3906 MiB used \(38%\)/, /nginx +generation 0123456789abcdef loaded$/m, /^healthy$/m]) {
            assert.match(r.text, re);
        }
        assert.ok(r.text.split("\n").length < 40, "fits one screen");
    });
    it("each problem makes it unhealthy and is listed: a checker alert, an unhealthy container, a stale backup, a failed drill, an unreachable host", () => {
        const alerting = renderStatus(input(facts("alert certificate: the certificate served at 127.0.0.1:443 expires in 3 days (under 14)")));
        assert.ok(!alerting.healthy);
        assert.deepStrictEqual(alerting.problems, ["host: certificate: the certificate served at 127.0.0.1:443 expires in 3 days (under 14)"]);
        const sick = parseFacts(facts().containers.map((c) => `container ${c.name} ${c.app ?? "-"} ${c.role} ${c.release ?? "-"} running ${c.role === "backend" ? "unhealthy" : "healthy"} 0 x`).join("\n"));
        assert.deepStrictEqual(renderStatus(input(sick)).problems, ["app1 backend: running, unhealthy"]);
        assert.match(renderStatus(input(undefined, new Date("2026-12-01T03:30:00Z"))).problems.join(), /newest backup is 50\.5 h old/);
        assert.match(renderStatus({ ...input(), drill: { result: "failure", source: "GitHub" } }).problems.join(), /last backup drill: failure/);
        assert.match(renderStatus({ ...input(), hosts: [{ name: "host", error: "ssh: connect refused" }] }).problems.join(), /host: unreachable: ssh: connect refused/);
        const missing = parseFacts("container platform-edge - edge - running healthy 0 x\n");
        assert.deepStrictEqual(renderStatus(input(missing)).problems, ["app1 frontend: no container", "app1 backend: no container"]);
    });
});

describe("the stack's hosts from its state", () => {
    it("every ScalewayHost with a plain address, host 0 first; anything else ignored", () => {
        const state = {
            deployment: {
                resources: [
                    { type: "platform:host:ScalewayHost", urn: "urn:pulumi:prod::platform::platform:host:ScalewayHost::host-1", outputs: { publicAddress: "198.51.100.2", hostKey: "ssh-ed25519 AAAAB" } },
                    { type: "platform:host:ScalewayHost", urn: "urn:pulumi:prod::platform::platform:host:ScalewayHost::host", outputs: { publicAddress: "198.51.100.1" } },
                    { type: "platform:host:ScalewayHost", urn: "urn:pulumi:prod::platform::platform:host:ScalewayHost::host-2", outputs: { publicAddress: "1.2.3.4; reboot" } },
                    { type: "platform:host:LocalHost", urn: "urn:pulumi:prod::platform::platform:host:LocalHost::host", outputs: { publicAddress: "127.0.0.1" } },
                ],
            },
        };
        assert.deepStrictEqual(hostsFromState(state), [
            { name: "host", address: "198.51.100.1", hostKey: undefined },
            { name: "host-1", address: "198.51.100.2", hostKey: "ssh-ed25519 AAAAB" },
        ]);
    });
});

describe("a missing Pulumi CLI is named as such", () => {
    it("status without pulumi on PATH says what to install, exit 127 (not spawnSync pulumi ENOENT)", async () => {
        const empty = fs.mkdtempSync(path.join(os.tmpdir(), "platform-nopulumi-"));
        const saved = process.env.PATH;
        process.env.PATH = empty;
        const errors: string[] = [];
        try {
            // eslint-disable-next-line @typescript-eslint/no-var-requires
            const { main } = require("../commands/status") as typeof import("../commands/status");
            const deps: Day2Deps = { ...defaultDeps(), err: (t) => errors.push(t), out: () => undefined };
            const code = await main(["--stack", "prod"], deps).catch((e) => reportFailure("status", e, deps));
            assert.strictEqual(code, 127);
        } finally {
            process.env.PATH = saved;
        }
        assert.match(errors.join(""), /^status: pulumi is not installed or not on PATH: install the Pulumi CLI \(https:\/\/www\.pulumi\.com\/docs\/install\/\)\n$/);
        assert.ok(!errors.join("").includes("ENOENT"));
    });
    it("the npm scripts run the commands (status --help exits 0 and prints the usage)", function () {
        this.timeout(60000);
        const r = spawnSync("npx", ["ts-node", "--transpile-only", "commands/status.ts", "--help"], { cwd: path.join(__dirname, ".."), encoding: "utf8" });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(r.stdout, /^usage: npm run status -- --stack STACK/);
        const bad = spawnSync("npx", ["ts-node", "--transpile-only", "commands/logs.ts", "--stack", "prod", "app1", "--since", "5m;reboot"], { cwd: path.join(__dirname, ".."), encoding: "utf8" });
        assert.strictEqual(bad.status, 2);
        assert.match(bad.stderr, /^logs: --since "5m;reboot" is not a duration/);
        const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "package.json"), "utf8"));
        for (const c of ["status", "releases", "rollback", "logs", "exec"]) assert.strictEqual(pkg.scripts[c], `node launch/command.js ${c}`);
    });
});
