/**
 * What a container may do beyond the platform's default (no capabilities, no privilege gain, bounded
 * processes, no swap). The catalog states each exception next to the reason for it.
 */
export interface ContainerSecurity {
    /** Linux capabilities added back after all are dropped, e.g. `["CHOWN", "SETUID", "SETGID"]` for an image that starts as root and drops to a user. */
    readonly capabilities?: readonly string[];
    /** Mount the image's filesystem read-only; `writablePaths` become tmpfs mounts. */
    readonly readOnlyRootFilesystem?: boolean;
    /** Directories that get a private tmpfs (`/tmp` is always one when the root is read-only). */
    readonly writablePaths?: readonly string[];
    /**
     * RLIMIT_NPROC for the container's user. The kernel counts every process of that UID on the host,
     * so an image that starts as root needs room for the host's own root processes too.
     */
    readonly maxProcesses?: number;
}

/** How the container's own healthcheck probes its HTTP endpoint; it must exist inside the image. */
export type HealthProbe = "wget" | "curl" | "node";

/** One container of an application (its frontend or its backend). */
export interface ContainerDefinition {
    /** Image repository without tag or digest, e.g. `ghcr.io/acme/shop-frontend`. The stack config picks the release. */
    readonly image: string;
    /** The image needs registry credentials to pull (`platform:registryUsername` and `registryToken`). */
    readonly privateImage?: boolean;
    /** Port the container listens on inside its network. No host port is ever published. */
    readonly port: number;
    /** Path answered with 2xx once the container is ready to serve traffic. */
    readonly healthPath: string;
    /** Tool the healthcheck uses inside the image. */
    readonly healthProbe: HealthProbe;
    /** Memory limit in MiB; all limits together must fit the instance. */
    readonly memoryMb: number;
    /** `uid:gid` to run as; omit only where the image cannot start without root. */
    readonly user?: string;
    /**
     * A tag or digest fixed by the catalog, for a third-party image whose versions do not follow the app's
     * releases. Without it the container runs the release the stack config names.
     */
    readonly pinnedRelease?: string;
    /**
     * How long a new release of this container may take to turn healthy before the switch fails and the
     * container is stopped (the edge's health gate, hostScripts/health-gate.sh). Default 120 (HEALTH_WAIT_SECONDS).
     */
    readonly healthWaitSeconds?: number;
    /** Plain (non-secret) environment variables. */
    readonly env?: Readonly<Record<string, string>>;
    /** Exceptions to the default hardening (all capabilities dropped, no-new-privileges, nproc cap, no swap), each with its reason in a comment. */
    readonly security?: ContainerSecurity;
}

/** An application in the catalog: a frontend and a backend, optionally with its own database. */
export interface AppDefinition {
    /** URL path segment and resource name: lowercase letters, digits and hyphens. */
    readonly name: string;
    readonly frontend: ContainerDefinition;
    readonly backend: ContainerDefinition;
    /** Whether the app gets its own PostgreSQL database and login role (DATABASE_URL in the backend). */
    readonly database: boolean;
    /**
     * Most connections the app's role may hold at once (its pool size across every backend replica,
     * a blue-green switch included: old and new backend run side by side for a moment). Default
     * DEFAULT_DATABASE_CONNECTION_LIMIT (render/postgres.ts); all apps together must fit the server's
     * max_connections minus the admin reserve (connectionBudgetProblems).
     */
    readonly databaseConnectionLimit?: number;
    /**
     * What the backend sees for a request to `/api/<app>/users`:
     * `keep` forwards `/api/<app>/users` (a NestJS app with a global prefix), `strip` forwards `/users`.
     */
    readonly apiPrefix: "keep" | "strip";
    /** Content-Security-Policy for this app's pages, replacing the edge default. */
    readonly contentSecurityPolicy?: string;
    /**
     * A release migration, e.g. `["npm", "run", "migrate"]`: on a release change it runs once, in a
     * one-off container of the NEW backend image (its user, networks and `DATABASE_URL`), after the new
     * containers are healthy and before the edge switches to them (hostScripts/migrate.sh). The old
     * release serves meanwhile, so it must be backward compatible (README "Release migrations"). If it
     * fails, nothing switches and `up` fails with its output. Needs `database: true`.
     */
    readonly migrate?: readonly string[];
    /** How long the migration may run before it is stopped and the `up` fails. Default 600 (MIGRATE_TIMEOUT_SECONDS). */
    readonly migrateTimeoutSeconds?: number;
}
