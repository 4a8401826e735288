// npm run bench:deploy — the local stack on the real Pulumi engine and Docker, from an empty state,
// several times (BENCH_RUNS, default 3): the first `local:up`, a no-op `pulumi preview`, and a release
// switch of the demo app under 8 keep-alive clients that never retry (tests/e2e/load.js, GET and POST,
// paced as tests/e2e/stack.ts's SWITCH_LOAD says),
// with the time from the start of the switch's `up` to the first response from the new release. Each
// run ends with `local:down --purge-data`. Prints the medians; asserts nothing.
//   deploy: first up X s, no-op preview P s, release switch S s (new release serving after N s), failed F/R
import { Project, SWITCH_LOAD, engineBusy, ensureImages, median, missingPrerequisites, startLoad } from "../tests/e2e/stack";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function once(run: number) {
    const p = new Project();
    try {
        const up = p.npm("local:up");
        if (up.status !== 0) throw new Error(`local:up failed:\n${up.stdout}\n${up.stderr}`);
        const preview = p.pulumi(["preview", "--expect-no-changes"]);
        if (preview.status !== 0) throw new Error(`the no-op preview found changes:\n${preview.stdout}`);
        p.setRelease("demo", "e2e-green");
        const load = await startLoad(SWITCH_LOAD.clients, "platform e2e release green", SWITCH_LOAD.getPauseMs);
        await sleep(2000);
        const started = Date.now();
        const sw = p.pulumi(["up", "--yes", "--skip-preview"]);
        await sleep(2000);
        const stats = await load.stop();
        if (sw.status !== 0) throw new Error(`the switch failed:\n${sw.stdout}\n${sw.stderr}`);
        const serving = stats.markerAt === null ? NaN : (stats.markerAt - started) / 1000;
        const figures = { firstUp: up.seconds, preview: preview.seconds, switchUp: sw.seconds, serving, failed: stats.failed, requests: stats.requests };
        console.error(`run ${run}: ${JSON.stringify({ ...figures, reasons: stats.reasons, p50: stats.p50, p99: stats.p99, max: stats.max })}`);
        return figures;
    } finally {
        p.cleanUp();
    }
}

async function main() {
    const missing = missingPrerequisites();
    if (missing.length > 0) throw new Error(`bench:deploy needs: ${missing.join("; ")}`);
    const busy = engineBusy();
    if (busy) throw new Error(`bench:deploy: ${busy}`);
    ensureImages();
    const runs = Number(process.env.BENCH_RUNS ?? 3);
    const results: Awaited<ReturnType<typeof once>>[] = [];
    for (let i = 1; i <= runs; i++) results.push(await once(i));
    const m = (k: keyof Awaited<ReturnType<typeof once>>) => median(results.map((r) => r[k])).toFixed(1);
    const failed = results.reduce((a, r) => a + r.failed, 0);
    const requests = results.reduce((a, r) => a + r.requests, 0);
    console.log(`deploy: first up ${m("firstUp")} s, no-op preview ${m("preview")} s, release switch ${m("switchUp")} s (new release serving after ${m("serving")} s), failed ${failed}/${requests}`);
}

main().then(
    () => process.exit(0),
    (e) => {
        console.error(e instanceof Error ? e.message : e);
        process.exit(1);
    },
);
