// hostScripts/health-gate.sh against a fake docker: what a switch waits for, what a failed release
// reports and that it is stopped, what it leaves alone, and the input it refuses.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { readHostScript } from "../hostScripts";
import { healthGateEntries } from "../render/containers";

// A docker that answers from files: <dir>/<name>.state ("running healthy"), <name>.probe (exit code of
// the health command run through exec), and logs every stop.
const FAKE_DOCKER = String.raw`#!/bin/sh
d=$FAKE_DIR
cmd=$1; shift
case "$cmd" in
inspect)
    fmt=$2; name=$3
    [ -f "$d/$name.state" ] || exit 1
    case "$fmt" in
    *Healthcheck.Test*) printf 'CMD\nwget\n-q\nhttp://127.0.0.1:8080/\n' ;;
    *State.Health.Log*) echo "    exit 1 at 2026-12-03T06:00:00Z: wget: server returned error: HTTP/1.1 403 Forbidden" ;;
    *State.ExitCode*) echo "0 (status running, restarts 0)" ;;
    *) cat "$d/$name.state" ;;
    esac ;;
exec) name=$1; echo "$*" >>"$d/execs"; exit "$(cat "$d/$name.probe" 2>/dev/null || echo 1)" ;;
logs) echo "nginx: [error] open() \"/usr/share/nginx/html/index.html\" failed (2: No such file or directory)" ;;
stop) shift 2; echo "$1" >>"$d/stopped"; echo "exited unhealthy" >"$d/$1.state" ;;
esac
`;

function gate(containers: string, states: Record<string, string>, opts: { live?: string[]; probe?: Record<string, number> } = {}) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "health-gate-"));
    fs.writeFileSync(path.join(dir, "docker"), FAKE_DOCKER);
    for (const [name, st] of Object.entries(states)) fs.writeFileSync(path.join(dir, `${name}.state`), st);
    for (const [name, code] of Object.entries(opts.probe ?? {})) fs.writeFileSync(path.join(dir, `${name}.probe`), String(code));
    const live = path.join(dir, "nginx.conf");
    fs.writeFileSync(live, (opts.live ?? []).map((n, i) => `# platform-route app${i}.backend ${n}:8080\n`).join(""));
    const started = Date.now();
    const r = spawnSync("sh", ["-c", readHostScript("health-gate.sh")], {
        encoding: "utf8",
        env: { PATH: process.env.PATH, FAKE_DIR: dir, CONTAINERS: containers, LIVE_CONF: live, DOCKER_CMD: `sh ${dir}/docker`, POLL_SECONDS: "0.1" },
    });
    const read = (f: string) => (fs.existsSync(path.join(dir, f)) ? fs.readFileSync(path.join(dir, f), "utf8").trim().split("\n") : []);
    return { ...r, seconds: (Date.now() - started) / 1000, stopped: read("stopped"), execs: read("execs") };
}

describe("health gate (hostScripts/health-gate.sh, fake docker)", () => {
    it("passes when every new container is healthy, or its own health command passes through exec", () => {
        const r = gate("fe-new:120 be-new:120", { "fe-new": "running healthy", "be-new": "running starting" }, { probe: { "be-new": 0 } });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.match(r.stdout, /healthy after \d+s: fe-new:120 be-new:120/);
        assert.deepStrictEqual(r.execs, ["be-new wget -q http://127.0.0.1:8080/"], "the container's own test, as its arguments");
        assert.deepStrictEqual(r.stopped, []);
    });

    it("an unhealthy new container fails the switch at once with its health output, exit code and logs, and is stopped", () => {
        const r = gate("fe-bad:120 be-ok:120", { "fe-bad": "running unhealthy", "be-ok": "running healthy" });
        assert.strictEqual(r.status, 1);
        assert.ok(r.seconds < 10, `${r.seconds} s`);
        assert.match(r.stderr, /health-gate: fe-bad is unhealthy/);
        assert.match(r.stderr, /last outputs:\n\s+exit 1 at .*403 Forbidden/);
        assert.match(r.stderr, /its exit code: 0 \(status running/);
        assert.match(r.stderr, /last 50 log lines:\n\s+nginx: \[error\]/);
        assert.deepStrictEqual(r.stopped, ["fe-bad"], "only the failed container is stopped");
    });

    it("waits no longer than the bound for a container that stays starting", () => {
        const r = gate("fe-slow:2", { "fe-slow": "running starting" }, { probe: { "fe-slow": 1 } });
        assert.strictEqual(r.status, 1);
        // The script counts whole seconds (date +%s): a 2 s bound ends after 1 to 3 s of wall time.
        assert.ok(r.seconds >= 1 && r.seconds < 8, `${r.seconds} s`);
        assert.match(r.stderr, /fe-slow did not turn healthy within 2s/);
        assert.deepStrictEqual(r.stopped, ["fe-slow"]);
    });

    it("leaves the containers the live config serves alone, even unhealthy ones: they are not this switch's", () => {
        const r = gate("fe-old:120 be-old:120", { "fe-old": "running unhealthy", "be-old": "running healthy" }, { live: ["fe-old", "be-old"] });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.deepStrictEqual(r.stopped, []);
    });

    it("a container that exited or does not exist fails the switch", () => {
        assert.match(gate("gone:120", {}).stderr, /gone does not exist/);
        const exited = gate("dead:120", { dead: "exited none" });
        assert.strictEqual(exited.status, 1);
        assert.match(exited.stderr, /dead stopped running \(exited none\)/);
    });

    it("refuses hostile entries before running anything", () => {
        for (const bad of ["x;reboot:120", "-rf:120", "name", "name:0", "name:99999", "name:1e3", "$(id):5"]) {
            const r = gate(bad, {});
            assert.strictEqual(r.status, 2, `${bad}: ${r.stderr}`);
            assert.deepStrictEqual([r.execs, r.stopped], [[], []], bad);
        }
        assert.throws(() => healthGateEntries([{ host: "a;b" }, { host: "b" }]), /not a container name/);
        assert.throws(() => healthGateEntries([{ host: "a", healthWaitSeconds: 0 }, { host: "b" }]), /1 to 3600/);
        assert.strictEqual(healthGateEntries([{ host: "a-1", healthWaitSeconds: 30 }, { host: "b-2" }]), "a-1:30 b-2:120");
    });
});
