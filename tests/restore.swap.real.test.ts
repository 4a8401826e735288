// A restore's swap cut at any point (issue 20, point 5): a runner that loses its connection at the
// k-th call, either before the server ran it or after (the reply lost), and maybe for good. After
// each cut the app's database must be either the old one or the restored one, and accept
// connections; the error must say what the server really holds, and the SQL to finish the swap.
import * as assert from "assert";
import { PgRunner, directRunner, swapDatabase } from "../io/restore";
import { Cluster, requirePostgres, startCluster } from "./support/postgres";

type Cut = { at: number; ran: boolean; forGood: boolean };

function cutting(inner: PgRunner, cut: Cut): PgRunner & { calls: number } {
    const wrapped = {
        calls: 0,
        description: inner.description,
        as: inner.as,
        async run(program: Parameters<PgRunner["run"]>[0], args: readonly string[], stdin?: { file: string } | { text: string }) {
            const n = wrapped.calls++;
            if (n === cut.at || (cut.forGood && n > cut.at)) {
                if (cut.ran && n === cut.at) await inner.run(program, args, stdin);
                throw new Error("ssh: connection to host 0 lost");
            }
            return inner.run(program, args, stdin);
        },
    };
    return wrapped;
}

describe("a restore's swap cut at any point never leaves the app's database half swapped or closed (real PostgreSQL)", function () {
    this.timeout(180000);
    let cluster: Cluster;
    const real = () => directRunner({ host: cluster.host, port: cluster.port, user: cluster.user, password: cluster.password, binDir: cluster.binDir });
    const marker = (db: string) => cluster.query(db, "SELECT which FROM marker");
    const names = () => cluster.query("postgres", "SELECT string_agg(datname || ':' || CASE WHEN datallowconn THEN 't' ELSE 'f' END, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE 'shop%'");

    before(async function () {
        cluster = await startCluster(requirePostgres(this));
        cluster.query("postgres", "CREATE ROLE app_shop LOGIN PASSWORD 'shop-pw-123456'");
    });
    after(() => cluster?.stop());

    function reset(): void {
        const dbs = cluster.query("postgres", "SELECT string_agg(datname, ' ') FROM pg_database WHERE datname LIKE 'shop%'");
        for (const db of dbs.split(" ").filter(Boolean)) cluster.query("postgres", `DROP DATABASE "${db}" WITH (FORCE)`);
        for (const [db, which] of [["shop_db", "old"], ["shop_db_restore_x", "restored"]]) {
            cluster.query("postgres", `CREATE DATABASE ${db} OWNER app_shop`);
            cluster.query(db, `CREATE TABLE marker (which text); INSERT INTO marker VALUES ('${which}')`);
        }
    }

    // How many calls an uncut swap makes, so every cut point is tried.
    let total = 0;
    it("uncut: swapped, open, checked", async () => {
        reset();
        const r = cutting(real(), { at: -1, ran: false, forGood: false });
        const kept = await swapDatabase(r, "shop_db", "shop_db_restore_x", new Date("2026-01-01T00:00:00Z"), () => undefined);
        total = r.calls;
        assert.strictEqual(kept, "shop_db_before_20260101t000000z");
        assert.strictEqual(marker("shop_db"), "restored");
        assert.ok(total >= 2, String(total));
    });

    for (const ran of [false, true]) {
        for (const forGood of [false, true]) {
            it(`cut at every call (${ran ? "after the server ran it" : "before it ran"}${forGood ? ", connection lost for good" : ""}): old or restored, always open, the message is the truth`, async () => {
                for (let at = 0; at < total; at++) {
                    reset();
                    const r = cutting(real(), { at, ran, forGood });
                    let message = "";
                    try {
                        await swapDatabase(r, "shop_db", "shop_db_restore_x", new Date("2026-01-01T00:00:00Z"), () => undefined);
                    } catch (e) {
                        message = (e as Error).message;
                    }
                    const state = names();
                    const where = `cut at call ${at}: ${state}; ${message}`;
                    // Always open, and exactly one of the two outcomes.
                    assert.ok(!state.includes(":f"), `a database is left closed: ${where}`);
                    const swapped = state === "shop_db:t,shop_db_before_20260101t000000z:t";
                    const untouched = state === "shop_db:t,shop_db_restore_x:t";
                    assert.ok(swapped || untouched, where);
                    assert.strictEqual(marker("shop_db"), swapped ? "restored" : "old", where);
                    if (message !== "" && !/^the swap/.test(message)) {
                        // Cut before the swap's transaction: nothing may have changed.
                        assert.ok(untouched, where);
                    } else if (message !== "") {
                        if (forGood || /could not be asked/.test(message)) assert.match(message, /could not be asked .*Check with: SELECT datname, datallowconn .*swap by hand with: BEGIN;/, where);
                        else if (swapped) assert.match(message, /checked: the swap happened/, where);
                        else {
                            assert.match(message, /checked: nothing was swapped \(shop_db is unchanged and accepts connections; .*To swap by hand: BEGIN; .*ALTER DATABASE "shop_db" RENAME TO "shop_db_before_20260101t000000z"; ALTER DATABASE "shop_db_restore_x" RENAME TO "shop_db";.* COMMIT;/, where);
                            // The printed SQL works as printed.
                            const sqlText = /To swap by hand: (BEGIN;.*COMMIT;)/.exec(message)![1];
                            cluster.query("postgres", sqlText);
                            assert.strictEqual(marker("shop_db"), "restored", "the printed recovery finished the swap");
                        }
                    } else {
                        assert.ok(swapped, `no error, but not swapped: ${where}`);
                    }
                }
            });
        }
    }
});
