// npm run bench:rollout — the release switch both ways through a real nginx on loopback, plus the
// proxy's overhead. Prints figures; asserts nothing.
import * as http from "http";
import { get, rolloutScenario, route, runLoad, sleep, startEdge, startUpstream } from "../tests/support/edge";

async function throughput(port: number, path: string, clients: number, ms: number): Promise<number> {
    const result = await runLoad(port, path, clients, sleep(ms));
    return (result.total - result.failed) / (result.durationMs / 1000);
}

async function main() {
    const clients = 25;
    const blueGreen = await rolloutScenario("blue-green", clients, 4000);
    const stopStart = await rolloutScenario("stop-start", clients, 4000);

    const fe = await startUpstream("fe", { spa: true });
    const be = await startUpstream("be");
    const edge = await startEdge([route("app1", fe, be)]);
    await get(edge.httpPort, "/api/app1/warmup");
    const direct = await throughput(be.port, "/direct", clients, 3000);
    const proxied = await throughput(edge.httpPort, "/api/app1/x", clients, 3000);
    await Promise.all([edge.stop(), fe.close(), be.close()]);
    http.globalAgent.destroy();

    console.log(`blue-green: ${blueGreen.total} requests, ${blueGreen.failed} failed, ${blueGreen.retriedOnClosedKeepAlive} re-sent on closed keep-alive connections`);
    console.log(`stop-start: ${stopStart.total} requests, ${stopStart.failed} failed (${stopStart.failures.slice(0, 3).join("; ")})`);
    console.log(`throughput: direct ${direct.toFixed(0)} req/s, through nginx ${proxied.toFixed(0)} req/s (${clients} clients)`);
    console.log(`rollout: blue-green failed ${blueGreen.failed}/${blueGreen.total}, stop-start failed ${stopStart.failed}/${stopStart.total}, proxy overhead ${(proxied / direct).toFixed(2)}`);
}

main().then(
    () => process.exit(0),
    (e) => {
        console.error(e);
        process.exit(1);
    },
);
