// A tiny image for suites against the real Docker engine: busybox (static) in an otherwise empty root
// filesystem, brought in with `docker import` (no registry is needed), serving /www with httpd on 8080.
// A suite skips loudly when there is no Docker engine; under CI it fails only when PLATFORM_REQUIRE_DOCKER=1
// (.ci/run cannot start an engine on a fresh machine; GitHub's hosted runners have one running).
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export const BUSYBOX_IMAGE = "platform-test-busybox:2";
const APPLETS = ["sh", "wget", "httpd", "sleep", "cat", "echo", "env", "printf", "ls", "wc", "grep", "sed", "tr", "id", "true", "false", "tail", "hostname", "ip", "nc", "rm", "touch"];
// (busybox wget -T crashes in this static build: the tests call wget without it.)

export function dockerAvailable(): string | undefined {
    const v = spawnSync("docker", ["version", "--format", "{{.Server.Version}}"], { encoding: "utf8" });
    if (v.error !== undefined) return "the docker CLI is not installed";
    if (v.status !== 0) return `no Docker engine answers (${v.stderr.trim().split("\n")[0]})`;
    return undefined;
}

/** Skips loudly (or fails, when CI requires Docker) without an engine. */
export function requireDocker(ctx: Mocha.Context): void {
    const problem = dockerAvailable();
    if (problem === undefined) return;
    if (process.env.PLATFORM_REQUIRE_DOCKER === "1") throw new Error(`${problem}; this suite needs a running Docker engine`);
    console.warn(`\n  !!! SKIPPING: ${problem}. This suite needs a running Docker engine (set PLATFORM_REQUIRE_DOCKER=1 to make that a failure). !!!\n`);
    ctx.skip();
}

function busybox(): string | undefined {
    for (const p of ["/usr/bin/busybox", "/bin/busybox", "/usr/lib/busybox/busybox"]) {
        if (fs.existsSync(p) && /statically linked|static-pie/.test(spawnSync("file", ["-L", p], { encoding: "utf8" }).stdout ?? "static")) return p;
    }
    return undefined;
}

/** Builds BUSYBOX_IMAGE once (needs busybox-static; CI installs it). */
export function ensureBusyboxImage(ctx: Mocha.Context): string {
    if (spawnSync("docker", ["image", "inspect", BUSYBOX_IMAGE], { stdio: "ignore" }).status === 0) return BUSYBOX_IMAGE;
    const bin = busybox();
    if (bin === undefined) {
        if (process.env.CI === "true") throw new Error("busybox (static) is not installed; .ci/run installs it (apt-get install busybox-static)");
        console.warn("\n  !!! SKIPPING: no static busybox to build the test image (apt-get install busybox-static). CI fails without it. !!!\n");
        ctx.skip();
    }
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "platform-rootfs-"));
    try {
        for (const d of ["bin", "tmp", "www", "etc"]) fs.mkdirSync(path.join(root, d));
        fs.chmodSync(path.join(root, "tmp"), 0o1777);
        fs.copyFileSync(bin!, path.join(root, "bin", "busybox"));
        fs.chmodSync(path.join(root, "bin", "busybox"), 0o755);
        for (const a of APPLETS) fs.symlinkSync("busybox", path.join(root, "bin", a));
        fs.writeFileSync(path.join(root, "www", "health"), "ok\n");
        fs.writeFileSync(path.join(root, "etc", "passwd"), "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n");
        fs.writeFileSync(path.join(root, "etc", "group"), "root:x:0:\nnogroup:x:65534:\n");
        const tar = spawnSync("tar", ["-C", root, "-c", "."], { maxBuffer: 64 * 1024 * 1024 });
        execFileSync("docker", ["import", "-c", "ENV PATH=/bin", "-c", 'CMD ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]', "-", BUSYBOX_IMAGE], { input: tar.stdout, stdio: ["pipe", "ignore", "pipe"] });
    } finally {
        fs.rmSync(root, { recursive: true, force: true });
    }
    return BUSYBOX_IMAGE;
}

export function docker(...args: string[]): string {
    return execFileSync("docker", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

export function dockerQuiet(...args: string[]): number {
    return spawnSync("docker", args, { stdio: "ignore" }).status ?? 1;
}

/** Removes every container and network carrying label platform.test=<id>. */
export function cleanupByLabel(id: string): void {
    const ids = spawnSync("docker", ["ps", "-aq", "--filter", `label=platform.test=${id}`], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
    if (ids.length > 0) spawnSync("docker", ["rm", "-f", ...ids], { stdio: "ignore" });
    const nets = spawnSync("docker", ["network", "ls", "-q", "--filter", `label=platform.test=${id}`], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
    if (nets.length > 0) spawnSync("docker", ["network", "rm", ...nets], { stdio: "ignore" });
}

export async function waitFor(what: string, check: () => boolean, timeoutMs = 60000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 250));
    }
}
