import { ECHO_SERVER_SAFE_ENV } from "./echoServers";
import { AppDefinition } from "./types";

/**
 * Built only from public images, so the local stack runs without registry credentials:
 * an unprivileged nginx as the frontend and an HTTP echo server as the backend
 * (it answers with the request it saw, which makes prefix handling visible).
 * The two images are versioned independently: the stack's release picks the nginx tag,
 * the echo server is pinned here.
 *
 * The echo server answers, by default, with its whole environment (`DATABASE_URL` and its password
 * included), any variable named by `?echo_env_body=`, any file named by `?echo_file=`
 * (`/proc/self/environ`), and the request's headers and cookies (every app's cookies on the shared
 * origin, HttpOnly ones too). Its env below turns all of that off; only the method, the path it saw
 * and the host stay, which is what the demo shows. apps/echoServers.ts checks these knobs for every
 * catalog container that runs an echo image.
 */
export const demo: AppDefinition = {
    name: "demo",
    frontend: {
        image: "nginxinc/nginx-unprivileged",
        port: 8080,
        healthPath: "/",
        healthProbe: "wget",
        memoryMb: 64,
        user: "101:101",
        // The unprivileged nginx listens on 8080 as UID 101 (no capability) and keeps its pid and
        // temp files in /tmp; its entrypoint skips the config edit it cannot make on a read-only root.
        security: { readOnlyRootFilesystem: true },
    },
    backend: {
        image: "ealen/echo-server",
        port: 8080,
        healthPath: "/health",
        healthProbe: "node",
        memoryMb: 128,
        user: "1000:1000",
        pinnedRelease: "0.9.2",
        env: { PORT: "8080", ...ECHO_SERVER_SAFE_ENV },
        // A Node.js echo server as UID 1000: no capability, nothing written outside /tmp.
        security: { readOnlyRootFilesystem: true },
    },
    database: true,
    // The echo server never connects; a small limit keeps the budget for real apps.
    databaseConnectionLimit: 5,
    apiPrefix: "strip",
};
