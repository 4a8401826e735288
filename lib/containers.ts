// Container settings shared by every app container. Pure.
import { ContainerDefinition } from "../apps/types";

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

export const HEALTHCHECK_TIMING = { interval: "5s", timeout: "3s", startPeriod: "10s", retries: 3 } as const;

/** How long `docker container create` may wait for healthy before the rollout fails (and the old version stays). */
export const HEALTH_WAIT_SECONDS = 120;

/** In-flight requests get this long after SIGTERM when an old version is removed. */
export const STOP_GRACE_SECONDS = 30;
