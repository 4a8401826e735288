// Container settings shared by every container the platform runs. Pure.
import { ContainerDefinition, ContainerSecurity } from "../apps/types";

/** Docker healthcheck `test` for a container: an HTTP GET of its health path, from inside the container. */
export function healthcheckTest(c: ContainerDefinition): string[] {
    if (!c.healthPath.startsWith("/") || /['"\s\\`$]/.test(c.healthPath)) throw new Error(`health path ${JSON.stringify(c.healthPath)} must be a plain absolute path`);
    const url = `http://127.0.0.1:${c.port}${c.healthPath}`;
    switch (c.healthProbe) {
        case "wget":
            return ["CMD", "wget", "-q", "-O", "/dev/null", "-T", "3", url];
        case "curl":
            return ["CMD", "curl", "-fsS", "-o", "/dev/null", "-m", "3", url];
        case "node":
            return ["CMD", "node", "-e", `fetch('${url}').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`];
    }
}

/** json-file with rotation: a chatty app cannot fill the disk. */
export const LOG_OPTIONS = { "max-size": "10m", "max-file": "3" } as const;

/** How every platform container runs: back after a crash or a reboot, with rotated json-file logs. */
export function containerRuntime() {
    return { restart: "unless-stopped", logDriver: "json-file", logOpts: { ...LOG_OPTIONS } };
}

export const HEALTHCHECK_TIMING = { interval: "5s", timeout: "3s", startPeriod: "10s", retries: 3 } as const;

/**
 * How long a new release's container may take to turn healthy before the switch fails, by default
 * (the catalog's `healthWaitSeconds` overrides it per container). The edge's health gate
 * (hostScripts/health-gate.sh) waits at most this long, then stops the container and fails the `up`
 * with its health output, logs and exit code; the previous release keeps serving.
 */
export const HEALTH_WAIT_SECONDS = 120;

/** The health gate's bound for a container: the catalog's `healthWaitSeconds`, or the default; 1 to 3600 s. */
export function healthWaitSeconds(c: ContainerDefinition): number {
    const seconds = c.healthWaitSeconds ?? HEALTH_WAIT_SECONDS;
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) throw new Error(`healthWaitSeconds ${JSON.stringify(seconds)} must be a whole number of seconds from 1 to 3600`);
    return seconds;
}

/** In-flight requests get this long after SIGTERM when an old version is removed. */
export const STOP_GRACE_SECONDS = 30;


/** nproc for containers that run as their own non-root UID. */
export const DEFAULT_MAX_PROCESSES = 512;
/** nproc for containers whose processes run as root (the count includes the host's root processes). */
export const ROOT_MAX_PROCESSES = 4096;

const CAPABILITY = /^[A-Z_]{2,32}$/;
const WRITABLE_PATH = /^\/[A-Za-z0-9._/-]{1,200}$/;

/**
 * Capabilities as Docker reports them on inspect: `CAP_` prefix, sorted, no duplicates. The provider
 * reads them back that way on `pulumi refresh`; declaring them in any other spelling or order reads as
 * a change that replaces the container (delete-first for the edge, which owns the published port).
 */
export function dockerCapabilities(capabilities: readonly string[]): string[] {
    return [...new Set(capabilities.map((c) => (c.startsWith("CAP_") ? c : `CAP_${c}`)))].sort();
}

/** The hardening inputs of a docker.Container, from a memory limit and the catalog's exceptions. */
export function containerHardening(memoryMb: number, security: ContainerSecurity = {}, runsAsRoot = false) {
    for (const cap of security.capabilities ?? []) {
        if (!CAPABILITY.test(cap)) throw new Error(`capability ${JSON.stringify(cap)} is not a Linux capability name (e.g. NET_BIND_SERVICE, no CAP_ prefix)`);
    }
    const writable = security.readOnlyRootFilesystem ? [...new Set(["/tmp", ...(security.writablePaths ?? [])])] : [...(security.writablePaths ?? [])];
    for (const p of writable) {
        if (!WRITABLE_PATH.test(p) || p.split("/").includes("..")) throw new Error(`writable path ${JSON.stringify(p)} must be a plain absolute path`);
    }
    const nproc = security.maxProcesses ?? (runsAsRoot ? ROOT_MAX_PROCESSES : DEFAULT_MAX_PROCESSES);
    return {
        capabilities: { drops: ["ALL"], adds: dockerCapabilities(security.capabilities ?? []) },
        securityOpts: ["no-new-privileges:true"],
        ulimits: [{ name: "nproc", soft: nproc, hard: nproc }],
        memory: memoryMb,
        // memory + swap: equal to memory means no swap, so a leak ends in an OOM kill, not a thrashing host.
        memorySwap: memoryMb,
        readOnly: security.readOnlyRootFilesystem ?? false,
        tmpfs: writable.length === 0 ? undefined : Object.fromEntries(writable.map((p) => [p, "rw,nosuid,nodev,size=64m"])),
    };
}
