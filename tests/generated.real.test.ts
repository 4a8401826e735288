// What the program generates, checked by the real tools: cloud-init's schema validator, shellcheck.
import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderCloudInit } from "../render/cloudInit";
import { PUBLIC_KEY } from "./fixtures";
import { requireBinary } from "./support/edge";

describe("cloud-init user data (cloud-init schema)", function () {
    it("the rendered user data passes `cloud-init schema`", function () {
        requireBinary(this, "cloud-init");
        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "platform-ci-")), "user-data");
        fs.writeFileSync(file, renderCloudInit({ sshPublicKey: PUBLIC_KEY }));
        const r = spawnSync("cloud-init", ["schema", "-c", file], { encoding: "utf8" });
        assert.strictEqual(r.status, 0, `${r.stdout}\n${r.stderr}`);
        assert.match(r.stdout + r.stderr, /Valid/i);
    });
    it("a broken document is caught by the same check (the check can fail)", function () {
        requireBinary(this, "cloud-init");
        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "platform-ci-")), "user-data");
        fs.writeFileSync(file, renderCloudInit({ sshPublicKey: PUBLIC_KEY }).replace("ssh_pwauth: false", "ssh_pwauth: [not, a, bool]"));
        assert.notStrictEqual(spawnSync("cloud-init", ["schema", "-c", file], { encoding: "utf8" }).status, 0);
    });
    it("refuses a key that would break out of the YAML", () => {
        assert.throws(() => renderCloudInit({ sshPublicKey: "ssh-ed25519 AAAA\nruncmd: [reboot]" }));
    });
});

describe("shell scripts (shellcheck)", function () {
    const root = path.join(__dirname, "..");
    // Every shell script of the project: the hosts' scripts, the operator's commands and the admin channel's helper.
    const scripts = ["hostScripts", "commands", "io"].flatMap((dir) =>
        fs.readdirSync(path.join(root, dir)).filter((f) => f.endsWith(".sh")).map((f) => path.join(dir, f)),
    );
    it("finds the project's shell scripts", () => assert.ok(scripts.length >= 8, scripts.join(", ")));
    for (const script of scripts) {
        it(`${script} passes shellcheck`, function () {
            requireBinary(this, "shellcheck");
            const r = spawnSync("shellcheck", ["-x", "-s", "sh", script], { cwd: root, encoding: "utf8" });
            assert.strictEqual(r.status, 0, r.stdout);
        });
    }
});
