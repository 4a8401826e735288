// The prod program's SSH exposure (mocks): port 22 from adminCidrs only by default, from every
// address only with platform:sshFromAnywhere; the guard that keeps the hardening applied on running
// servers runs before anything else connects.
import * as assert from "assert";
import { FAIL2BAN_JAIL_PATH, renderSshGuardScript } from "../render/cloudInit";
import { definePlatform } from "../components/platform";
import { RunResult, T, reveal, runProgram } from "./harness";
import { PROD_RAW, parse } from "./fixtures";

const forward = { openForward: async () => ({ host: "127.0.0.1" as const, port: 40123, pid: 1, close: () => undefined }) };
const sshRules = (run: RunResult) =>
    run.byType(T.securityGroup)[0].inputs.inboundRules.filter((r: { port: number }) => r.port === 22).map((r: { ipRange: string }) => r.ipRange);

describe("SSH exposure of the prod host (mocks)", () => {
    it("default: port 22 only from adminCidrs, no fail2ban", async () => {
        const run = await runProgram("prod", () => definePlatform(parse(PROD_RAW), forward));
        assert.deepStrictEqual(sshRules(run), ["203.0.113.10/32", "198.51.100.0/24"]);
        const guard = reveal(run.one(T.remoteCommand, "host-ssh-guard").inputs);
        assert.strictEqual(guard.create, renderSshGuardScript({ sshFromAnywhere: false, adminCidrs: ["203.0.113.10/32", "198.51.100.0/24"], permitOpen: ["127.0.0.1:5432"] }));
        assert.doesNotMatch(run.byType(T.server)[0].inputs.cloudInit, /fail2ban/);
    });

    it("sshFromAnywhere with no adminCidrs: port 22 from every address, fail2ban in cloud-init and in the guard", async () => {
        const raw = { ...PROD_RAW, sshFromAnywhere: "true" } as Record<string, string>;
        delete raw.adminCidrs;
        const run = await runProgram("prod", () => definePlatform(parse(raw), forward));
        assert.deepStrictEqual(sshRules(run), ["0.0.0.0/0"]);
        assert.match(run.byType(T.securityGroup)[0].inputs.description, /22 from anywhere/);
        assert.ok(run.byType(T.server)[0].inputs.cloudInit.includes(FAIL2BAN_JAIL_PATH));
        assert.match(reveal(run.one(T.remoteCommand, "host-ssh-guard").inputs.create), /fail2ban-client -t/);
    });

    it("sshFromAnywhere with adminCidrs: one rule for everyone, the admin CIDRs are fail2ban's ignore list", async () => {
        const run = await runProgram("prod", () => definePlatform(parse({ ...PROD_RAW, sshFromAnywhere: "true" }), forward));
        assert.deepStrictEqual(sshRules(run), ["0.0.0.0/0"]);
        assert.match(run.byType(T.server)[0].inputs.cloudInit, /ignoreip = 127\.0\.0\.1\/8 ::1 203\.0\.113\.10\/32 198\.51\.100\.0\/24/);
    });

    it("the guard runs once the host is ready, is updated in place (never replaced), and everything else that connects waits for it", async () => {
        const run = await runProgram("prod", () => definePlatform(parse(PROD_RAW), forward));
        const wait = run.one(T.remoteCommand, "host-wait-for-docker");
        const guard = run.one(T.remoteCommand, "host-ssh-guard");
        assert.ok(guard.dependencies.includes(wait.urn));
        assert.strictEqual(reveal(guard.inputs).update, reveal(guard.inputs).create, "an update script: a changed setting updates, not replaces");
        assert.strictEqual(guard.inputs.delete, undefined, "removing it leaves the server as it is");
        assert.ok(run.byType(T.dockerProvider)[0].dependencies.includes(guard.urn), "the Docker provider waits for the guard");
        for (const c of run.byType(T.remoteCommand).filter((c) => c !== wait && c !== guard)) {
            assert.ok(c.dependencies.includes(guard.urn), `${c.name} waits for the guard (sshd may reload)`);
        }
    });
});
