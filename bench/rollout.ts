// npm run bench:rollout — the release switch both ways through a real nginx on loopback, with the
// edge's upstream keep-alive connections in play. Prints figures; asserts nothing. The proxy's
// throughput is `npm run bench:edge` (wrk and an upstream in processes of their own): measured here,
// the load generator and the upstreams shared one Node process and measured mostly Node.
import * as http from "http";
import { rolloutScenario } from "../tests/support/edge";

async function main() {
    const clients = 25;
    const blueGreen = await rolloutScenario("blue-green", clients, 4000);
    const stopStart = await rolloutScenario("stop-start", clients, 4000);
    http.globalAgent.destroy();

    console.log(`blue-green: ${blueGreen.total} requests, ${blueGreen.failed} failed, ${blueGreen.retriedOnClosedKeepAlive} re-sent on closed keep-alive connections`);
    console.log(`stop-start: ${stopStart.total} requests, ${stopStart.failed} failed (${stopStart.failures.slice(0, 3).join("; ")})`);
    console.log(`rollout: blue-green failed ${blueGreen.failed}/${blueGreen.total}, stop-start failed ${stopStart.failed}/${stopStart.total} (${clients} clients; throughput: npm run bench:edge)`);
}

main().then(
    () => process.exit(0),
    (e) => {
        console.error(e);
        process.exit(1);
    },
);
