// Container settings shared by every container the platform runs. Pure.
import * as crypto from "crypto";
import { AppDefinition, ContainerDefinition, ContainerSecurity } from "../apps/types";
import { isDigest } from "./values";

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

/** A container name in the shape Docker gives (the only shape the host scripts take). */
const CONTAINER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** `NAME:SECONDS` per container for hostScripts/health-gate.sh; names only in the shape Docker gives. */
export function healthGateEntries(containers: readonly { readonly host: string; readonly healthWaitSeconds?: number }[]): string {
    return containers
        .map((u) => {
            if (!CONTAINER_NAME.test(u.host)) throw new Error(`health gate: ${JSON.stringify(u.host)} is not a container name`);
            const seconds = u.healthWaitSeconds ?? HEALTH_WAIT_SECONDS;
            if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) throw new Error(`health gate: ${JSON.stringify(seconds)} is not a bound of 1 to 3600 seconds`);
            return `${u.host}:${seconds}`;
        })
        .join(" ");
}

/** JSON with every object's keys sorted: the same value always gives the same text. */
function canonicalJson(value: unknown): string {
    if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
    if (value !== null && typeof value === "object") {
        const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
        return `{${entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
    }
    return JSON.stringify(value);
}

/**
 * The tail of a container's resource name: the release it runs (readable, for `pulumi preview` and
 * `docker ps`) and a digest of that release with the catalog's definition of the container.
 *
 * A new release, or a changed definition, is therefore a new resource beside the old one, not a
 * replacement of it: the preview names both releases, the old release's containers stay the very
 * resources they were until an `up` that succeeded deletes them, and a release declared again (back
 * to the one still serving after a failed gate or migration) finds its containers as they are, so
 * that `up` creates nothing. (Engines before v3.46 also deleted a replaced resource's predecessor
 * first thing in the next `up`, while it still served; current ones delete it at the end.)
 */
export function releaseKey(release: string, spec: ContainerDefinition): string {
    const readable = isDigest(release) ? `sha256-${release.slice(7, 19)}` : release.replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 40);
    const digest = crypto.createHash("sha256").update(canonicalJson({ release, spec })).digest("hex").slice(0, 8);
    return `${readable}-${digest}`;
}

/** How long a release migration may run by default (the catalog's `migrateTimeoutSeconds` overrides it). */
export const MIGRATE_TIMEOUT_SECONDS = 600;

/** What is wrong with an app's `migrate` and `migrateTimeoutSeconds`, each naming the fix; none without `migrate`. */
export function migrationProblems(app: AppDefinition): string[] {
    const where = `apps/${app.name}.ts`;
    const problems: string[] = [];
    if (app.migrate === undefined) {
        if (app.migrateTimeoutSeconds !== undefined) problems.push(`${where}: migrateTimeoutSeconds is set but there is no migrate command. Fix: add migrate, or remove migrateTimeoutSeconds`);
        return problems;
    }
    if (!Array.isArray(app.migrate) || app.migrate.length === 0) {
        problems.push(`${where}: migrate must be a command as a list of words, e.g. ["npm", "run", "migrate"]`);
    } else {
        app.migrate.forEach((word, i) => {
            // Quoted for the shell (render/shell.ts), so any text is safe there; control characters but
            // tab and newline are refused because they are never meant and would garble the up's output.
            if (typeof word !== "string" || word.length === 0 || word.length > 4096 || /[\x00-\x08\x0b-\x1f\x7f]/.test(word)) {
                problems.push(`${where}: migrate[${i}] must be a non-empty string of at most 4096 characters without control characters`);
            }
        });
    }
    if (!app.database) problems.push(`${where}: migrate runs with the app's DATABASE_URL, which only an app with database: true has. Fix: set database: true, or remove migrate`);
    const seconds = app.migrateTimeoutSeconds ?? MIGRATE_TIMEOUT_SECONDS;
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > 86400) problems.push(`${where}: migrateTimeoutSeconds ${JSON.stringify(seconds)} must be a whole number of seconds from 1 to 86400`);
    return problems;
}

/** The arguments of hostScripts/migrate.sh for the app's new backend container: APP CONTAINER SECONDS CMD…. */
export function migrationArguments(app: AppDefinition, backendContainer: string): string[] {
    const problems = migrationProblems(app);
    if (app.migrate === undefined || problems.length > 0) throw new Error(problems.join("\n") || `${app.name} has no migrate command`);
    if (!CONTAINER_NAME.test(backendContainer)) throw new Error(`migration: ${JSON.stringify(backendContainer)} is not a container name`);
    return [app.name, backendContainer, String(app.migrateTimeoutSeconds ?? MIGRATE_TIMEOUT_SECONDS), ...app.migrate];
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
