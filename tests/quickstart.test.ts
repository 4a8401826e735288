// The README's first command on a machine without the tools it needs: it says what is missing.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { POSTGRES_VOLUME } from "../render/postgres";

const root = path.join(__dirname, "..");

/** A PATH holding only the named tools (plus sh and what the scripts call to find them). */
function pathWith(tools: Record<string, string>): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-path-"));
    for (const [name, body] of Object.entries(tools)) {
        fs.writeFileSync(path.join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    }
    for (const real of ["sh", "dirname", "mkdir", "cat", "node"]) {
        const found = spawnSync("sh", ["-c", `command -v ${real}`], { encoding: "utf8" }).stdout.trim();
        if (found) fs.symlinkSync(found, path.join(dir, real));
    }
    return dir;
}

describe("local quickstart (npm run local:up)", () => {
    it("names every missing tool and exits non-zero before touching anything", () => {
        const r = spawnSync("/bin/sh", [path.join(root, "commands", "local-up.sh")], { encoding: "utf8", env: { PATH: pathWith({}) } });
        assert.notStrictEqual(r.status, 0);
        assert.match(r.stderr, /the Pulumi CLI/);
        assert.match(r.stderr, /Docker: /);
        assert.match(r.stderr, /Node\.js 24\+ with npm/);
        assert.ok(!fs.existsSync(path.join(root, ".pulumi-state", "never")), "nothing created");
    });
    it("tells a stopped Docker engine apart from a missing one", () => {
        const r = spawnSync("/bin/sh", [path.join(root, "commands", "local-up.sh")], {
            encoding: "utf8",
            env: { PATH: pathWith({ pulumi: "exit 0", npm: "exit 0", docker: 'echo "Cannot connect to the Docker daemon" >&2; exit 1' }) },
        });
        assert.notStrictEqual(r.status, 0);
        assert.match(r.stderr, /a running Docker engine/);
        assert.doesNotMatch(r.stderr, /Pulumi CLI/);
    });
    it("with the tools present, uses a file backend inside the repo and the local stack only", () => {
        const calls = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "platform-calls-")), "calls");
        const record = `echo "$PULUMI_BACKEND_URL|$*" >> ${calls}`;
        const r = spawnSync("/bin/sh", [path.join(root, "commands", "local-up.sh")], {
            encoding: "utf8",
            env: {
                PATH: pathWith({ pulumi: `${record}; case "$*" in *"stack output"*) echo '{"demo":{"url":"http://localhost:8080/demo/","apiUrl":"http://localhost:8080/api/demo/"}}';; esac`, npm: "exit 0", docker: "exit 0" }),
            },
            cwd: root,
        });
        assert.strictEqual(r.status, 0, r.stderr);
        const lines = fs.readFileSync(calls, "utf8").trim().split("\n");
        for (const l of lines) assert.ok(l.startsWith(`file://${root}/.pulumi-state|`), l);
        assert.ok(lines.some((l) => /\|up --stack local --yes/.test(l)));
        assert.ok(lines.every((l) => !/prod/.test(l)));
        assert.match(r.stdout, /demo: http:\/\/localhost:8080\/demo\/ {2}\(API http:\/\/localhost:8080\/api\/demo\/\)/);
    });
});

describe("local teardown (npm run local:down)", () => {
    /** Fake pulumi and docker recording every call in one file, in order; the volume exists while its marker file does. */
    function tools(options: { destroyFails?: boolean; noStack?: boolean } = {}) {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-down-"));
        const calls = path.join(dir, "calls");
        const volume = path.join(dir, "volume-platform-pgdata");
        fs.writeFileSync(volume, "data");
        const pulumi = [
            `echo "pulumi $*" >> ${calls}`,
            `case "$*" in`,
            `  "stack select local"*) ${options.noStack ? "echo 'no stack named local found' >&2; exit 255" : "exit 0"} ;;`,
            `  destroy*) ${options.destroyFails ? "echo 'error: destroy failed' >&2; exit 1" : "exit 0"} ;;`,
            `  "state unprotect"*) exit 0 ;;`,
            `  up*) exit 0 ;;`,
            `  "stack output"*) echo '{}' ;;`,
            `esac`,
        ].join("\n");
        const docker = [
            `echo "docker $*" >> ${calls}`,
            `case "$*" in`,
            `  "volume inspect platform-pgdata") [ ! -f ${volume}.gone ] ;;`,
            `  "volume rm platform-pgdata") : > ${volume}.gone ;;`,
            `  info) exit 0 ;;`,
            `  *) exit 0 ;;`,
            `esac`,
        ].join("\n");
        const PATH = pathWith({ pulumi, docker, npm: "exit 0" });
        const run = (script: string, args: string[] = []) => spawnSync("/bin/sh", [path.join(root, "commands", script), ...args], { encoding: "utf8", env: { PATH }, cwd: root });
        const log = () => (fs.existsSync(calls) ? fs.readFileSync(calls, "utf8").trim().split("\n") : []);
        return { run, log, volumeExists: () => !fs.existsSync(`${volume}.gone`) };
    }

    it("tears the stack down although the data volume is protected, and keeps the volume; local:up then starts on it", () => {
        const t = tools();
        const r = t.run("local-down.sh");
        assert.strictEqual(r.status, 0, r.stderr);
        assert.deepStrictEqual(t.log(), [
            "pulumi stack select local --non-interactive",
            "pulumi state unprotect --stack local --all --yes",
            "pulumi destroy --stack local --yes --non-interactive",
        ]);
        assert.ok(t.volumeExists(), "the data stays");
        assert.match(r.stdout, /the data volume platform-pgdata is kept/);
        const up = t.run("local-up.sh");
        assert.strictEqual(up.status, 0, up.stderr);
        assert.ok(t.log().some((l) => l === "pulumi up --stack local --yes --non-interactive --policy-pack policy"));
        assert.ok(!t.log().some((l) => /volume (rm|create)/.test(l)), "local:up never touches the volume itself");
    });

    it("--purge-data deletes the data volume with docker, after the destroy", () => {
        const t = tools();
        const r = t.run("local-down.sh", ["--purge-data"]);
        assert.strictEqual(r.status, 0, r.stderr);
        const log = t.log();
        const destroy = log.findIndex((l) => l.startsWith("pulumi destroy"));
        const rm = log.indexOf("docker volume rm platform-pgdata");
        assert.ok(destroy >= 0 && rm > destroy, log.join("\n"));
        assert.ok(!t.volumeExists(), "the volume is really gone");
        assert.match(r.stdout, /deleted the data volume platform-pgdata/);
        const again = t.run("local-down.sh", ["--purge-data"]);
        assert.strictEqual(again.status, 0, "purging twice is fine");
        assert.match(again.stdout, /no data volume platform-pgdata to delete/);
    });

    it("a failed destroy deletes nothing, --purge-data or not", () => {
        const t = tools({ destroyFails: true });
        const r = t.run("local-down.sh", ["--purge-data"]);
        assert.notStrictEqual(r.status, 0);
        assert.ok(t.volumeExists());
        assert.ok(!t.log().some((l) => l.startsWith("docker volume rm")));
    });

    it("with no local stack, --purge-data still deletes the volume", () => {
        const t = tools({ noStack: true });
        const r = t.run("local-down.sh", ["--purge-data"]);
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(r.stdout, /no local stack to destroy/);
        assert.ok(!t.log().some((l) => l.startsWith("pulumi destroy")));
        assert.ok(!t.volumeExists());
    });

    it("an unknown argument is refused before anything runs", () => {
        const t = tools();
        for (const arg of ["--purge", "--purge-data; rm -rf /", "purge-data"]) {
            const r = t.run("local-down.sh", [arg]);
            assert.strictEqual(r.status, 2, arg);
            assert.match(r.stderr, /unknown argument .* Usage: npm run local:down \[-- --purge-data\]/);
        }
        assert.deepStrictEqual(t.log(), []);
    });

    it("names the same volume the program declares", () => {
        const script = fs.readFileSync(path.join(root, "commands", "local-down.sh"), "utf8");
        assert.match(script, new RegExp(`^VOLUME=${POSTGRES_VOLUME}$`, "m"));
        assert.strictEqual(JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")).scripts["local:down"], "sh commands/local-down.sh");
    });
});
