import { AppDefinition } from "./types";

/**
 * Built only from public images, so the local stack runs without registry credentials:
 * an unprivileged nginx as the frontend and an HTTP echo server as the backend
 * (it answers with the request it saw, which makes prefix handling visible).
 * The two images are versioned independently: the stack's release picks the nginx tag,
 * the echo server is pinned here.
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
    },
    backend: {
        image: "ealen/echo-server",
        port: 8080,
        healthPath: "/health",
        healthProbe: "node",
        memoryMb: 128,
        user: "1000:1000",
        pinnedRelease: "0.9.2",
        env: { PORT: "8080" },
    },
    database: true,
    apiPrefix: "strip",
};
