// Outgrowing one server (issue #12): host naming, the private network's plan, the load balancer's
// health-check and drain settings with the timing argument that justifies them, the managed
// database's settings, and the cost of each shape. Pure: the components read these values and the
// tests check the arguments made with them.
import { HEALTHCHECK_TIMING, HEALTH_WAIT_SECONDS, STOP_GRACE_SECONDS } from "./containers";

/** Most instances a stack may run (config/platformConfig.ts accepts 1..MAX_HOSTS). */
export const SCALE_MAX_HOSTS = 10;

/**
 * Resource name of host `index`. Host 0 keeps today's names ("host", "edge", "app1", ...) so that
 * going from one host to several (and back) leaves every resource of the first host, and its URN,
 * exactly as it was: nothing of it is replaced, nothing that holds data moves.
 */
export function hostName(index: number): string {
    checkIndex(index);
    return index === 0 ? "host" : `host-${index}`;
}

/** Prefix of the per-host resources (edge, app containers) of host `index`: "" for host 0, "h1-" … */
export function hostPrefix(index: number): string {
    checkIndex(index);
    return index === 0 ? "" : `h${index}-`;
}

function checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= SCALE_MAX_HOSTS) throw new Error(`host index ${index} is not from 0 to ${SCALE_MAX_HOSTS - 1}`);
}

// ---------------------------------------------------------------------------------------------
// The private network

/**
 * The private network's IPv4 subnet, fixed so the edge can name it (the load balancer's PROXY
 * protocol header is trusted from this subnet only) and so it never moves under the hosts.
 * Addresses inside it are handed out by Scaleway's IPAM.
 */
export const PRIVATE_SUBNET = "172.16.32.0/22";

/** "172.16.32.7/22" (IPAM's form) or "172.16.32.7" → "172.16.32.7". */
export function stripPrefixLength(address: string): string {
    const ip = address.split("/")[0];
    if (!/^(\d{1,3})(\.\d{1,3}){3}$/.test(ip) || ip.split(".").some((o) => Number(o) > 255)) throw new Error(`${JSON.stringify(address)} is not an IPv4 address`);
    return ip;
}

// ---------------------------------------------------------------------------------------------
// The managed database

/** Scaleway's engine name for the managed instance: the current PostgreSQL major Scaleway offers. */
export const MANAGED_ENGINE = "PostgreSQL-16";
export const MANAGED_MAJOR = "16";
/** First user of the instance: the admin the provider (and the backups) connect as. Not a superuser. */
export const MANAGED_ADMIN_USER = "platform_admin";
/** Hours between two of Scaleway's automated backups (daily). */
export const MANAGED_BACKUP_FREQUENCY_HOURS = 24;
/**
 * Loopback port on host 0 where the managed database's admin forwarder listens (the container
 * database's forwarder keeps 5432 while a stack migrates). sshd permits this forward too.
 */
export const MANAGED_ADMIN_PORT = 5433;
/** Container on host 0 that relays 127.0.0.1:MANAGED_ADMIN_PORT to the managed instance. */
export const MANAGED_FORWARDER_CONTAINER = "platform-managed-pg-forwarder";
/**
 * Container on host 0 with the PostgreSQL client programs of the managed major and the admin's
 * connection in its environment: `docker exec platform-pg-client pg_dump -d app1_db` is what
 * `docker exec platform-postgres pg_dump -U postgres -d app1_db` is to the container database.
 */
export const MANAGED_CLIENT_CONTAINER = "platform-pg-client";
export const MANAGED_CLIENT_IMAGE = `postgres:${MANAGED_MAJOR}.6-bookworm`;
/** The managed side's Docker network on host 0 (a bridge: it must route to the private network). */
export const MANAGED_NETWORK = "platform-managed-db";

// ---------------------------------------------------------------------------------------------
// The load balancer: health checks, drain and the timing argument

export interface LoadBalancerTiming {
    /** healthCheckDelay: seconds between two health checks of one backend server. */
    readonly healthCheckDelaySeconds: number;
    /** healthCheckTimeout: a check that has not answered by then failed. */
    readonly healthCheckTimeoutSeconds: number;
    /** healthCheckMaxRetries: failed checks allowed before the server is marked down. */
    readonly healthCheckMaxRetries: number;
    /** healthCheckTransientDelay: spacing of checks while a server goes up or down. */
    readonly healthCheckTransientDelaySeconds: number;
    /** timeoutConnect: how long a TCP connect to a backend server may take. */
    readonly connectTimeoutSeconds: number;
    /** timeoutServer: inactivity allowed on the server side (nginx's proxy_read_timeout is 60 s). */
    readonly serverTimeoutSeconds: number;
    /** timeoutTunnel: inactivity allowed on an upgraded (websocket) connection. */
    readonly tunnelTimeoutSeconds: number;
    /** maxRetries: retries of a failed connection to a backend server. */
    readonly connectRetries: number;
    /** redispatchAttemptCount: each retry goes to another server (1: every attempt). */
    readonly redispatchAttemptCount: number;
}

export const LB_TIMING: LoadBalancerTiming = {
    healthCheckDelaySeconds: 2,
    healthCheckTimeoutSeconds: 1,
    healthCheckMaxRetries: 2,
    healthCheckTransientDelaySeconds: 0.5,
    connectTimeoutSeconds: 2,
    serverTimeoutSeconds: 65,
    tunnelTimeoutSeconds: 900,
    connectRetries: 3,
    redispatchAttemptCount: 1,
};

/** The edge's health endpoint: static, answered by nginx itself whatever the apps do. */
export const LB_HEALTH_PATH = "/health";
/** The Load Balancer offer: LB-S (200 Mbit/s), the smallest. */
export const LB_TYPE = "LB-S";
/** What the load balancer sends and the edge expects: PROXY protocol v2 (the client's address). */
export const LB_PROXY_PROTOCOL = "v2";

/** "2s" for the provider. */
export function seconds(value: number): string {
    if (!(value > 0) || !Number.isFinite(value)) throw new Error(`${value} is not a positive duration`);
    return `${value}s`;
}

/**
 * Worst case from "the edge stops answering" to "the load balancer sends it nothing new": the check
 * in flight when it stopped can take one delay plus its timeout to fail, and the remaining
 * maxRetries failures one delay each (the transient delay is shorter; not counted).
 */
export function markDownSeconds(t: LoadBalancerTiming = LB_TIMING): number {
    return t.healthCheckDelaySeconds + t.healthCheckTimeoutSeconds + t.healthCheckMaxRetries * t.healthCheckDelaySeconds;
}

export interface TimingArgument {
    readonly markDownSeconds: number;
    /** Least time an old app container keeps serving after its host's edge switched away from it. */
    readonly oldContainerServesAtLeastSeconds: number;
    /** How long nginx lets old workers finish requests after the switch's reload. */
    readonly nginxDrainSeconds: number;
    /** Every step of the argument, true when it holds. */
    readonly holds: Record<string, boolean>;
    readonly lines: readonly string[];
}

/**
 * Why a release reaches every host with zero failed requests at the load balancer.
 *
 * 1. The load balancer sees edges only. A release never stops an edge: on each host the new
 *    containers start next to the old ones, turn healthy, and the edge switches with a graceful
 *    reload; /health never fails, so no host is ever marked down by a release.
 * 2. After a host's switch, its old containers are deleted only at the end of the whole deployment
 *    (Pulumi deletes replaced resources last), and then with STOP_GRACE_SECONDS to finish; the old
 *    nginx workers drain in-flight requests for at most worker_shutdown_timeout, which must not
 *    exceed that grace.
 * 3. When an edge does go away (a host removed by hosts 2 → 1, an edge container replaced), the
 *    load balancer stops sending to it within markDownSeconds; until then a connection it refuses
 *    is retried on another host (maxRetries with redispatch), so it is not a failed request, and
 *    a host that is removed is first taken out of the backend (an update that runs before any
 *    delete), so the host outlives its last request.
 */
export function timingArgument(nginxWorkerShutdownSeconds: number, t: LoadBalancerTiming = LB_TIMING, hosts = 2): TimingArgument {
    const down = markDownSeconds(t);
    const oldServes = STOP_GRACE_SECONDS;
    const holds: Record<string, boolean> = {
        "old workers finish before the old containers stop": nginxWorkerShutdownSeconds <= oldServes,
        "a failed edge is marked down well within the old containers' grace": down < oldServes,
        "the health check answers within its own timeout budget": t.healthCheckTimeoutSeconds < t.healthCheckDelaySeconds,
        "a refused connection is retried on another host": t.connectRetries >= 1 && t.redispatchAttemptCount >= 1 && hosts >= 2,
        "the load balancer waits longer than nginx for a reply (the edge, not the LB, times out first)": t.serverTimeoutSeconds > 60,
        "a new container is health-gated before its host switches": HEALTH_WAIT_SECONDS > 0 && HEALTHCHECK_TIMING.retries >= 1,
    };
    const lines = [
        `health checks every ${t.healthCheckDelaySeconds} s, ${t.healthCheckTimeoutSeconds} s timeout, ${t.healthCheckMaxRetries} failures allowed: an edge that stops is marked down within ${down} s (${t.healthCheckDelaySeconds} + ${t.healthCheckTimeoutSeconds} + ${t.healthCheckMaxRetries} × ${t.healthCheckDelaySeconds})`,
        `until then a refused connection is retried up to ${t.connectRetries} times, each on another host (redispatch), so a client sees no error while one host remains up`,
        `a release stops no edge: /health keeps answering through every switch, so no host is marked down by a release at all`,
        `after a switch the old containers keep serving until the end of the deployment plus ${oldServes} s of stop grace; nginx's old workers finish in-flight requests within ${nginxWorkerShutdownSeconds} s (≤ ${oldServes} s)`,
        `hosts switch one after another: host i+1 starts its new containers only after host i's edge applied the new routes, so a release that fails its health check stops at the first host`,
    ];
    return { markDownSeconds: down, oldContainerServesAtLeastSeconds: oldServes, nginxDrainSeconds: nginxWorkerShutdownSeconds, holds, lines };
}

// ---------------------------------------------------------------------------------------------
// Cost

/**
 * Scaleway list prices in EUR excluding VAT, Paris region, per hour, as recorded on PRICES_DATE.
 * They were NOT read from https://www.scaleway.com/en/pricing/ in the session that wrote them (no
 * web access there): they are the engineer's last known list prices, to be checked against that page
 * (Instances, Managed Databases for PostgreSQL, Load Balancer, Flexible IP) before publishing, and
 * PRICES_VERIFIED set to true with the date of the check. Scaleway bills by the hour; a month is 730 h.
 */
export const PRICES_DATE = "2026-11-22";
export const PRICES_VERIFIED = false;
export const HOURS_PER_MONTH = 730;
export const HOURLY_EUR = {
    "DEV1-M": 0.0198,
    "flexible IPv4": 0.004,
    "DB-DEV-S": 0.0196,
    "DB-DEV-S HA (2 nodes)": 0.0392,
    "database storage per GB (sbs 5k)": 0.000118,
    "LB-S": 0.0133,
    "private network": 0,
    "object storage per GB (backups, standard)": 0.0000205,
} as const;

export interface CostLine {
    readonly item: string;
    readonly quantity: number;
    readonly monthlyEur: number;
}

export interface Shape {
    readonly hosts: number;
    readonly database: "container" | "managed";
    readonly managedDatabaseHa?: boolean;
    /** Storage of the managed database, GB. */
    readonly databaseStorageGb?: number;
}

const monthly = (hourly: number, quantity = 1) => Math.round(hourly * HOURS_PER_MONTH * quantity * 100) / 100;

/** Monthly cost of a shape, line by line (object storage for backups is left out: it depends on the data). */
export function monthlyCost(shape: Shape): { lines: CostLine[]; totalEur: number } {
    const lines: CostLine[] = [
        { item: "DEV1-M instance", quantity: shape.hosts, monthlyEur: monthly(HOURLY_EUR["DEV1-M"], shape.hosts) },
        { item: "flexible IPv4 (one per host)", quantity: shape.hosts, monthlyEur: monthly(HOURLY_EUR["flexible IPv4"], shape.hosts) },
    ];
    if (shape.database === "managed") {
        const node = shape.managedDatabaseHa ? HOURLY_EUR["DB-DEV-S HA (2 nodes)"] : HOURLY_EUR["DB-DEV-S"];
        lines.push({ item: `DB-DEV-S managed PostgreSQL${shape.managedDatabaseHa ? " (HA)" : ""}`, quantity: 1, monthlyEur: monthly(node) });
        const gb = shape.databaseStorageGb ?? 10;
        lines.push({ item: `database storage (${gb} GB)`, quantity: gb, monthlyEur: monthly(HOURLY_EUR["database storage per GB (sbs 5k)"], gb) });
        lines.push({ item: "private network", quantity: 1, monthlyEur: 0 });
    }
    if (shape.hosts > 1) lines.push({ item: "LB-S load balancer (its IP included)", quantity: 1, monthlyEur: monthly(HOURLY_EUR["LB-S"]) });
    const totalEur = Math.round(lines.reduce((s, l) => s + l.monthlyEur, 0) * 100) / 100;
    return { lines, totalEur };
}

/** The README's cost table (markdown). */
export function costTable(shapes: readonly { name: string; shape: Shape }[]): string {
    const rows = shapes.map(({ name, shape }) => {
        const c = monthlyCost(shape);
        return `| ${name} | ${c.lines.map((l) => `${l.item} €${l.monthlyEur.toFixed(2)}`).join("; ")} | **€${c.totalEur.toFixed(2)}** |`;
    });
    return [`| shape | items (per month, ${HOURS_PER_MONTH} h) | total |`, "| --- | --- | --- |", ...rows, "", `Scaleway list prices excluding VAT, recorded ${PRICES_DATE}${PRICES_VERIFIED ? "" : " (not yet checked against scaleway.com/en/pricing)"}.`].join("\n");
}
