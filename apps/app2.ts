import { AppDefinition } from "./types";

/** App 2 from the original mhylle.com server: Angular frontend, NestJS backend mounted at its root. */
export const app2: AppDefinition = {
    name: "app2",
    frontend: {
        image: "ghcr.io/mhylle/app2-frontend",
        privateImage: true,
        port: 80,
        healthPath: "/",
        healthProbe: "wget",
        memoryMb: 128,
        // No `user`: the app's nginx image binds port 80 and drops to its nginx user itself.
        security: {
            // Its master process starts as root: NET_BIND_SERVICE to bind port 80, CHOWN to hand its
            // temp directories to the worker user, SETUID/SETGID to switch the workers to that user.
            capabilities: ["CHOWN", "SETUID", "SETGID", "NET_BIND_SERVICE"],
            readOnlyRootFilesystem: true,
            // nginx writes its temp files under /var/cache/nginx and its pid file under /run (/var/run links there).
            writablePaths: ["/var/cache/nginx", "/run"],
        },
    },
    backend: {
        image: "ghcr.io/mhylle/app2-backend",
        privateImage: true,
        port: 3000,
        healthPath: "/health",
        healthProbe: "node",
        memoryMb: 512,
        user: "1000:1000",
        env: { NODE_ENV: "production", PORT: "3000" },
        // A NestJS server as UID 1000 needs no capability and writes nothing but /tmp.
        security: { readOnlyRootFilesystem: true },
    },
    database: true,
    // Its TypeORM pool is 10; twice that leaves room for the old and new backend during a blue-green switch.
    databaseConnectionLimit: 20,
    apiPrefix: "strip",
};
