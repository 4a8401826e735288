// The README's first command on a machine without the tools it needs: it says what is missing.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

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
        const r = spawnSync("/bin/sh", [path.join(root, "scripts", "local-up.sh")], { encoding: "utf8", env: { PATH: pathWith({}) } });
        assert.notStrictEqual(r.status, 0);
        assert.match(r.stderr, /the Pulumi CLI/);
        assert.match(r.stderr, /Docker: /);
        assert.match(r.stderr, /Node\.js 20\+ with npm/);
        assert.ok(!fs.existsSync(path.join(root, ".pulumi-state", "never")), "nothing created");
    });
    it("tells a stopped Docker engine apart from a missing one", () => {
        const r = spawnSync("/bin/sh", [path.join(root, "scripts", "local-up.sh")], {
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
        const r = spawnSync("/bin/sh", [path.join(root, "scripts", "local-up.sh")], {
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
