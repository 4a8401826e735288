import * as assert from "assert";
import * as net from "net";
import { freeLoopbackPort, stablePort } from "../io/adminChannel";

describe("admin channel port choice", () => {
    it("a stack's port is the same on every run, in 40000-49999, and differs between stacks", () => {
        assert.strictEqual(stablePort("platform", "prod"), stablePort("platform", "prod"));
        for (const stack of ["prod", "staging", "local", "x"]) {
            const p = stablePort("platform", stack);
            assert.ok(p >= 40000 && p < 50000, `${p}`);
        }
        assert.notStrictEqual(stablePort("platform", "prod"), stablePort("platform", "staging"));
    });
    it("uses the preferred port when free and another one when it is taken", async () => {
        const preferred = await freeLoopbackPort();
        assert.strictEqual(await freeLoopbackPort(preferred), preferred);
        const blocker = net.createServer();
        await new Promise<void>((r) => blocker.listen(preferred, "127.0.0.1", () => r()));
        try {
            const other = await freeLoopbackPort(preferred);
            assert.notStrictEqual(other, preferred);
            assert.ok(other > 0);
        } finally {
            blocker.close();
        }
    });
});
