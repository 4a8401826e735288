import { AppDefinition } from "./types";

/** App 2 from the original mhylle.com server: Angular frontend, NestJS backend mounted at its root. */
export const app2: AppDefinition = {
    name: "app2",
    frontend: {
        image: "ghcr.io/mhylle/app2-frontend",
        port: 80,
        healthPath: "/",
        healthProbe: "wget",
        memoryMb: 128,
        // No `user`: the app's nginx image binds port 80 and drops to its nginx user itself.
    },
    backend: {
        image: "ghcr.io/mhylle/app2-backend",
        port: 3000,
        healthPath: "/health",
        healthProbe: "node",
        memoryMb: 512,
        user: "1000:1000",
        env: { NODE_ENV: "production", PORT: "3000" },
    },
    database: true,
    apiPrefix: "strip",
};
