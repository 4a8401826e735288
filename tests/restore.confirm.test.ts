// A restore on a stack that matters asks before it replaces live data (issue 20, point 7).
import * as assert from "assert";
import { PassThrough } from "stream";
import { confirmationPolicy, parseArgs, terminalConfirm } from "../commands/restore";

describe("restore: confirmation before the swap", () => {
    it("prod without --yes: asked on a terminal, refused without one (before anything runs)", () => {
        assert.strictEqual(confirmationPolicy(parseArgs(["--stack", "prod", "--app", "app1", "--latest"]), true), "ask");
        assert.throws(() => confirmationPolicy(parseArgs(["--stack", "prod", "--app", "app1", "--latest"]), false), /replaces its live database: writes made since the backup stay only in the kept copy\. Pass --yes/);
        assert.throws(() => confirmationPolicy(parseArgs(["--app", "app1"]), false), /stack prod/, "the default stack is prod");
    });

    it("--yes, --dry-run, --list and the local stack do not ask", () => {
        for (const argv of [["--yes"], ["--dry-run"], ["--list"], ["--stack", "local"]]) {
            assert.strictEqual(confirmationPolicy(parseArgs(["--app", "app1", ...argv]), false), "no", argv.join(" "));
        }
    });

    it("only the app's name typed back confirms", async () => {
        for (const [answer, expected] of [["app1\n", true], ["y\n", false], ["yes\n", false], ["app2\n", false], ["\n", false]] as const) {
            const input = new PassThrough();
            const output = new PassThrough();
            let shown = "";
            output.on("data", (d) => (shown += d));
            const asked = terminalConfirm("app1", input, output)("Swap? writes made to app1_db between …");
            input.end(answer);
            assert.strictEqual(await asked, expected, JSON.stringify(answer));
            assert.match(shown, /writes made to app1_db between/);
        }
    });
});
