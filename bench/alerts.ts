// The alerts checker's footprint: runs hostScripts/check-alerts.sh under /usr/bin/time -v against the
// real Docker engine with N labelled containers (busybox, as the test suites build it), and prints the
// peak resident set size of its largest process, its CPU time and wall time per run.
//   npx ts-node bench/alerts.ts [--containers 10] [--rounds 5]
import { execFileSync, spawnSync } from "child_process";
import * as path from "path";

const arg = (name: string, fallback: number) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const containers = arg("--containers", 10);
const rounds = arg("--rounds", 5);
const image = "platform-test-busybox:2";
const id = `bench-alerts-${process.pid}`;
const script = path.join(__dirname, "..", "hostScripts", "check-alerts.sh");

if (spawnSync("docker", ["image", "inspect", image], { stdio: "ignore" }).status !== 0) {
    console.error(`bench:alerts needs ${image}: run the alerts suite once (tests/alerts.real.test.ts builds it)`);
    process.exit(1);
}
try {
    for (let i = 0; i < containers; i++) {
        execFileSync("docker", ["run", "-d", "--label", `platform.test=${id}`, "--label", "platform.app=bench", "--label", `platform.role=${i % 2 ? "frontend" : "backend"}`, "--health-cmd", "wget -qO /dev/null http://127.0.0.1:8080/health", "--health-interval", "2s", image], { stdio: "ignore" });
    }
    const env = { PATH: process.env.PATH, EXTRA_LABEL: `platform.test=${id}`, STATE_DIR: `/tmp/${id}`, DISK_PATHS: "/", CERT_FILE: "/etc/ssl/certs/ca-certificates.crt" };
    for (const mode of [["--facts"], []]) {
        const rss: number[] = [];
        const cpu: number[] = [];
        const wall: number[] = [];
        for (let r = 0; r < rounds; r++) {
            const t = spawnSync("/usr/bin/time", ["-v", "sh", script, ...mode], { env, encoding: "utf8" });
            const field = (re: RegExp) => Number(re.exec(t.stderr)?.[1] ?? NaN);
            rss.push(field(/Maximum resident set size \(kbytes\): (\d+)/));
            cpu.push(field(/User time \(seconds\): ([\d.]+)/) + field(/System time \(seconds\): ([\d.]+)/));
            const w = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(t.stderr);
            wall.push(w ? Number(w[1] ?? 0) * 3600 + Number(w[2]) * 60 + Number(w[3]) : NaN);
        }
        const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
        console.log(`check-alerts.sh ${mode.join(" ") || "(checker mode)"}, ${containers} containers, ${rounds} runs: peak RSS median ${(med(rss) / 1024).toFixed(1)} MiB (max ${(Math.max(...rss) / 1024).toFixed(1)} MiB), CPU median ${med(cpu).toFixed(2)} s, wall median ${med(wall).toFixed(2)} s`);
    }
} finally {
    const ids = spawnSync("docker", ["ps", "-aq", "--filter", `label=platform.test=${id}`], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
    if (ids.length) spawnSync("docker", ["rm", "-f", ...ids], { stdio: "ignore" });
    spawnSync("rm", ["-rf", `/tmp/${id}`]);
}
