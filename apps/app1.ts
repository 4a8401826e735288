import { AppDefinition } from "./types";

/** App 1 from the original mhylle.com server: Angular frontend, NestJS backend serving under /api/app1. */
export const app1: AppDefinition = {
    name: "app1",
    frontend: {
        image: "ghcr.io/mhylle/app1-frontend",
        port: 80,
        healthPath: "/",
        healthProbe: "wget",
        memoryMb: 128,
        // No `user`: the app's nginx image binds port 80 and drops to its nginx user itself.
    },
    backend: {
        image: "ghcr.io/mhylle/app1-backend",
        port: 3000,
        healthPath: "/api/app1/health",
        healthProbe: "node",
        memoryMb: 512,
        user: "1000:1000",
        env: { NODE_ENV: "production", PORT: "3000" },
    },
    database: true,
    apiPrefix: "keep",
};
