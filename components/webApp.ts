import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { AppDefinition, ContainerDefinition } from "../apps/types";
import { imageReference } from "../render/values";
import {
    HEALTHCHECK_TIMING,
    STOP_GRACE_SECONDS,
    containerHardening,
    containerRuntime,
    healthGateEntries,
    healthWaitSeconds,
    healthcheckTest,
    migrationArguments,
    releaseKey,
} from "../render/containers";
import { Route } from "../render/nginx";
import { runScript, shellQuote } from "../render/shell";
import { readHostScript } from "../hostScripts";
import { Host } from "./host";

export interface WebAppArgs {
    readonly app: AppDefinition;
    /** Image tag or digest both containers run (unless the catalog pins one). */
    readonly release: string;
    readonly provider: docker.Provider;
    /** The app's DATABASE_URL (secret), for apps with a database. */
    readonly databaseUrl?: pulumi.Output<string>;
    /** The app's own internal database network (AppDatabase.network), joined by the backend only. */
    readonly databaseNetwork?: pulumi.Input<string>;
    /** What must be done before the backend starts: PostgreSQL on the database network (AppDatabase.ready). */
    readonly databaseReady?: pulumi.Resource[];
    /**
     * The host that runs the catalog's release migration (`migrate`), with the edge whose live config
     * says what already serves. Given for one host only (the first): the database is shared, so the
     * migration runs once, and the other hosts start their new release after that host has switched.
     */
    readonly migrationHost?: Host;
}

/**
 * The host command of an app's release migration: the health gate for its new backend, then the
 * catalog's `migrate` in a one-off container of that backend (hostScripts/migrate.sh), every word
 * quoted for sh. `liveConf` is the edge's live nginx.conf, which says what already serves.
 */
export function releaseMigrationScript(app: AppDefinition, backendContainer: string, liveConf: string): string {
    const gate = runScript(readHostScript("health-gate.sh"), {
        CONTAINERS: healthGateEntries([{ host: backendContainer, healthWaitSeconds: healthWaitSeconds(app.backend) }]),
        LIVE_CONF: liveConf,
    });
    const migrate = runScript(readHostScript("migrate.sh"), { ONE_OFF_SCRIPT: readHostScript("one-off.sh"), LIVE_CONF: liveConf });
    return `${gate} </dev/null && ${migrate} migrate ${migrationArguments(app, backendContainer).map(shellQuote).join(" ")}`;
}

/**
 * An application's frontend and backend containers on a network of their own.
 *
 * Blue-green by construction: each release's containers are resources of their own (their names carry
 * the release, render/containers.ts releaseKey), so a new release starts next to the old one; the
 * catalog's migration, if any, runs once the new backend is healthy; the edge's route (built from
 * `route`, which carries the new container names and waits for the migration) switches after its
 * health gate; Pulumi deletes the old release's containers at the end of a deployment that succeeded.
 */
export class WebApp extends pulumi.ComponentResource {
    /** Catalog name of the app. */
    public readonly appName: string;
    public readonly network: docker.Network;
    public readonly frontend: docker.Container;
    public readonly backend: docker.Container;
    /** What the edge needs to route `/<app>/` and `/api/<app>/` to these containers. */
    public readonly route: pulumi.Output<Route>;

    constructor(name: string, args: WebAppArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:app:WebApp", name, {}, opts);
        const { app } = args;
        this.appName = app.name;
        if (app.database !== (args.databaseUrl !== undefined)) {
            throw new Error(`WebApp ${app.name}: a databaseUrl must be given exactly when the app declares database: true`);
        }
        const dockerOpts = { parent: this, provider: args.provider };

        // Shared by this app's containers and the edge only: two apps never share a network.
        this.network = new docker.Network(`${name}-network`, { name: `platform-app-${app.name}`, driver: "bridge" }, dockerOpts);

        const container = (
            role: "frontend" | "backend",
            spec: ContainerDefinition,
            extra: { envs?: pulumi.Input<string>[]; networks: docker.types.input.ContainerNetworksAdvanced[]; dependsOn?: pulumi.Resource[] },
        ) => {
            const release = spec.pinnedRelease ?? args.release;
            const key = releaseKey(release, spec);
            const image = new docker.RemoteImage(
                `${name}-${role}-image-${key}`,
                // Kept on the host after the switch, so a rollback needs no pull.
                { name: imageReference(spec.image, release), keepLocally: true },
                dockerOpts,
            );
            return new docker.Container(
                `${name}-${role}-${key}`,
                {
                    image: image.imageId,
                    envs: extra.envs,
                    user: spec.user,
                    networksAdvanced: extra.networks,
                    healthcheck: { tests: healthcheckTest(spec), ...HEALTHCHECK_TIMING },
                    // Not the provider's wait: the edge's health gate waits for healthy before it switches
                    // (hostScripts/health-gate.sh), within the catalog's bound, and stops a release that
                    // fails, reporting its health output, logs and exit code. The provider's wait would
                    // leave a failed container running and say only "failed to be in healthy state".
                    wait: false,
                    ...containerRuntime(),
                    // No capabilities but those the catalog states, no privilege gain, an nproc cap, no
                    // swap, and a read-only root where the catalog says the image allows it.
                    ...containerHardening(spec.memoryMb, spec.security, spec.user === undefined),
                    destroyGraceSeconds: STOP_GRACE_SECONDS,
                    labels: [
                        { label: "platform.app", value: app.name },
                        { label: "platform.role", value: role },
                        { label: "platform.release", value: release },
                        // With the app and role: finds this stack's containers, also one no state knows
                        // (an interrupted up), e.g. docker ps -af label=platform.stack=local.
                        { label: "platform.stack", value: pulumi.getStack() },
                    ],
                },
                // No `name`: Pulumi auto-names, so old and new coexist. A change the resource name does
                // not carry (the DATABASE_URL's password) replaces it; the provider's default there is
                // delete-first, which would take the app down for the whole rollout: override it.
                { ...dockerOpts, deleteBeforeReplace: false, dependsOn: extra.dependsOn },
            );
        };

        const plainEnv = (spec: ContainerDefinition) => Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`);

        this.frontend = container("frontend", app.frontend, { envs: plainEnv(app.frontend), networks: [{ name: this.network.name }] });

        const backendNetworks: docker.types.input.ContainerNetworksAdvanced[] = [{ name: this.network.name }];
        if (args.databaseNetwork !== undefined) backendNetworks.push({ name: args.databaseNetwork });
        const backendEnv: pulumi.Input<string>[] = plainEnv(app.backend);
        if (args.databaseUrl !== undefined) backendEnv.push(pulumi.secret(pulumi.interpolate`DATABASE_URL=${args.databaseUrl}`));
        this.backend = container("backend", app.backend, { envs: backendEnv, networks: backendNetworks, dependsOn: args.databaseReady });

        // The release migration: once per new backend (the trigger), after its health gate, before the
        // switch (the route waits for it). A failure fails this command; the edge keeps the old release.
        let migrated: pulumi.Output<string> = pulumi.output("");
        if (app.migrate !== undefined && args.migrationHost !== undefined) {
            const liveConf = `${args.migrationHost.paths.nginx}/nginx.conf`;
            const script = this.backend.name.apply((backendName) => releaseMigrationScript(app, backendName, liveConf));
            const migration = args.migrationHost.runCommand(
                `${name}-migrate`,
                // An update (the platform's scripts changed) runs it again; the script skips a backend that already serves.
                { create: script, update: script, delete: "true", triggers: [this.backend.id] },
                // What the app's migration prints is the app's; state keeps it secret.
                { parent: this, additionalSecretOutputs: ["stdout", "stderr"] },
            );
            migrated = migration.id;
        }

        this.route = pulumi.all([this.frontend.name, this.backend.name, migrated]).apply(([frontendName, backendName]) => ({
            app: app.name,
            frontend: { host: frontendName, port: app.frontend.port, healthWaitSeconds: healthWaitSeconds(app.frontend) },
            backend: { host: backendName, port: app.backend.port, healthWaitSeconds: healthWaitSeconds(app.backend) },
            apiPrefix: app.apiPrefix,
            contentSecurityPolicy: app.contentSecurityPolicy,
        }));

        this.registerOutputs({ network: this.network.name, frontend: this.frontend.name, backend: this.backend.name });
    }
}
