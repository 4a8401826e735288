// render/scale.ts: host naming that keeps host 0's names, the timing argument with its numbers, the cost model.
import * as assert from "assert";
import { LB_TIMING, costTable, hostName, hostPrefix, markDownSeconds, monthlyCost, seconds, stripPrefixLength, timingArgument } from "../render/scale";

describe("scale: pure parts", () => {
    it("host 0 keeps today's names; others are numbered; out-of-range indexes are refused", () => {
        assert.deepStrictEqual([hostName(0), hostName(1), hostName(9)], ["host", "host-1", "host-9"]);
        assert.deepStrictEqual([hostPrefix(0), hostPrefix(2)], ["", "h2-"]);
        for (const bad of [-1, 10, 1.5, NaN]) assert.throws(() => hostName(bad));
    });

    it("timing: an edge that stops is marked down within 7 s; every step of the argument holds with nginx's 30 s drain", () => {
        assert.strictEqual(markDownSeconds(LB_TIMING), 7);
        const t = timingArgument(30);
        assert.deepStrictEqual(Object.entries(t.holds).filter(([, ok]) => !ok), []);
        assert.ok(t.lines.some((l) => /within 7 s/.test(l)));
        // A drain longer than the old containers' stop grace would cut requests: the argument says so.
        assert.strictEqual(timingArgument(45).holds["old workers finish before the old containers stop"], false);
        assert.strictEqual(timingArgument(30, LB_TIMING, 1).holds["a refused connection is retried on another host"], false);
    });

    it("durations and addresses reach the provider in its format, or are refused", () => {
        assert.strictEqual(seconds(0.5), "0.5s");
        assert.throws(() => seconds(0));
        assert.strictEqual(stripPrefixLength("172.16.32.7/22"), "172.16.32.7");
        assert.throws(() => stripPrefixLength("172.16.32.700/22"));
        assert.throws(() => stripPrefixLength("x; rm -rf /"));
    });

    it("cost: the two shapes of the issue, line by line, with the date of the prices", () => {
        const single = monthlyCost({ hosts: 1, database: "container" });
        const scaled = monthlyCost({ hosts: 2, database: "managed" });
        assert.deepStrictEqual(single.lines.map((l) => l.item), ["DEV1-M instance", "flexible IPv4 (one per host)"]);
        assert.ok(scaled.lines.some((l) => /LB-S/.test(l.item)) && scaled.lines.some((l) => /managed PostgreSQL/.test(l.item)));
        assert.ok(scaled.totalEur > 2 * single.totalEur);
        const table = costTable([
            { name: "1 host + container DB", shape: { hosts: 1, database: "container" } },
            { name: "2 hosts + managed DB + LB", shape: { hosts: 2, database: "managed" } },
        ]);
        assert.match(table, /recorded \d{4}-\d{2}-\d{2}/);
    });
});
