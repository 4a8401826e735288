import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { AppDefinition, ContainerDefinition } from "../apps/types";
import { imageReference } from "../render/values";
import { HEALTHCHECK_TIMING, STOP_GRACE_SECONDS, containerHardening, containerRuntime, healthWaitSeconds, healthcheckTest } from "../render/containers";
import { Route } from "../render/nginx";

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
}

/**
 * An application's frontend and backend containers on a network of their own.
 *
 * Blue-green by construction: the containers have no fixed name and are replaced create-first, so a
 * new release starts next to the old one and must turn healthy before `create` returns; the edge's
 * route (built from `route`, which carries the new container names) switches next; Pulumi deletes the
 * old containers at the end of the deployment.
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
            const image = new docker.RemoteImage(
                `${name}-${role}-image`,
                // Kept on the host after the switch, so a rollback needs no pull.
                { name: imageReference(spec.image, release), keepLocally: true },
                dockerOpts,
            );
            return new docker.Container(
                `${name}-${role}`,
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
                // No `name`: Pulumi auto-names, so old and new coexist. The provider's default is
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

        this.route = pulumi.all([this.frontend.name, this.backend.name]).apply(([frontendName, backendName]) => ({
            app: app.name,
            frontend: { host: frontendName, port: app.frontend.port, healthWaitSeconds: healthWaitSeconds(app.frontend) },
            backend: { host: backendName, port: app.backend.port, healthWaitSeconds: healthWaitSeconds(app.backend) },
            apiPrefix: app.apiPrefix,
            contentSecurityPolicy: app.contentSecurityPolicy,
        }));

        this.registerOutputs({ network: this.network.name, frontend: this.frontend.name, backend: this.backend.name });
    }
}
