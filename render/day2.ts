// The day-2 commands' pure parts (npm run status, releases, rollback, logs, exec): their arguments,
// the checks of every value that reaches a shell, docker or a filter, the host facts the checker
// prints (hostScripts/check-alerts.sh --facts), the status screen, and the release history read from
// the recorded stack config. No I/O.
import * as yaml from "js-yaml";
import { isRelease } from "./values";
import { MAX_BACKUP_AGE_HOURS } from "./backup";

export const APP_NAME = /^[a-z][a-z0-9-]{0,30}$/;
export const STACK_NAME = /^[A-Za-z0-9_.-]{1,100}$/;
/** `docker logs --since`: a duration (10m, 2h, 90s, 1h30m) or an RFC 3339 UTC time. */
const SINCE_DURATION = /^(\d{1,6}h)?(\d{1,6}m)?(\d{1,6}s)?$/;
const SINCE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?Z$/;
/** Container names and ids as Docker writes them. */
export const CONTAINER_REF = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
export const ROLES = ["frontend", "backend"] as const;
export type Role = (typeof ROLES)[number];

export class UsageError extends Error {
    constructor(message: string, readonly usage: string) {
        super(message);
        this.name = "UsageError";
    }
}

export function isSince(value: string): boolean {
    return (value !== "" && SINCE_DURATION.test(value) && /\d/.test(value)) || (SINCE_TIME.test(value) && !Number.isNaN(Date.parse(value)));
}

/** `--flag value` and `--flag=value` options, `--bool` switches, and positionals (everything after `--` is positional and kept as is). */
export interface ParsedArgs {
    readonly options: Record<string, string>;
    readonly switches: Set<string>;
    readonly positionals: string[];
    /** Words after `--` (exec's command). */
    readonly rest: string[];
    readonly help: boolean;
}

export function parseWords(argv: readonly string[], valued: readonly string[], switches: readonly string[], usage: string): ParsedArgs {
    const options: Record<string, string> = {};
    const on = new Set<string>();
    const positionals: string[] = [];
    let rest: string[] = [];
    let help = false;
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--") {
            rest = argv.slice(i + 1);
            break;
        }
        if (a === "--help" || a === "-h") help = true;
        else if (switches.includes(a)) on.add(a);
        else if (a.startsWith("-") && a.length > 1) {
            const eq = a.indexOf("=");
            const name = eq > 0 ? a.slice(0, eq) : a;
            if (valued.includes(name)) {
                const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
                if (value === undefined || (eq < 0 && value.startsWith("--"))) throw new UsageError(`${name} needs a value`, usage);
                options[name] = value;
            } else if (switches.includes(name) && eq < 0) on.add(name);
            else throw new UsageError(`unknown option ${JSON.stringify(a)}`, usage);
        } else positionals.push(a);
    }
    return { options, switches: on, positionals, rest, help };
}

export function checkStack(stack: string | undefined, usage: string): string {
    if (stack === undefined) throw new UsageError("--stack is required (local, prod, …)", usage);
    if (!STACK_NAME.test(stack)) throw new UsageError(`--stack ${JSON.stringify(stack)} is not a stack name`, usage);
    return stack;
}

export function checkApp(app: string | undefined, usage: string, known?: readonly string[]): string {
    if (app === undefined) throw new UsageError("name the app (APP)", usage);
    if (!APP_NAME.test(app)) throw new UsageError(`${JSON.stringify(app)} is not an app name (lowercase letters, digits and -)`, usage);
    if (known !== undefined && !known.includes(app)) throw new UsageError(`app ${app} is not in the catalog (known: ${known.join(", ")})`, usage);
    return app;
}

function checkHostIndex(value: string | undefined, usage: string): number {
    if (value === undefined) return 0;
    if (!/^\d{1,2}$/.test(value)) throw new UsageError(`--host ${JSON.stringify(value)} is not a host number (0, 1, …)`, usage);
    return Number(value);
}

// ---------------------------------------------------------------------------------------------
// Each command's arguments

export const STATUS_USAGE = "usage: npm run status -- --stack STACK [--json]\n  One screen: each app's release, image and container health, its last backup and drill; the certificate, disk, memory and nginx generation of each host. Exit 0 when healthy, 1 otherwise.";
export const RELEASES_USAGE = "usage: npm run releases -- --stack STACK APP\n  The releases APP has run on STACK, newest first, with the date and git commit that recorded each, and whether its images are still on the host.";
export const ROLLBACK_USAGE =
    "usage: npm run rollback -- --stack STACK APP [VERSION] [--pull] [--dispatch | --local] [--dry-run]\n" +
    "  Goes back to VERSION (default: the release before the current one) the way a deploy goes: recorded with a commit on main, then `pulumi up`\n" +
    "  (--local: here, the default on the local stack; --dispatch: the deploy workflow, the default elsewhere). Refuses a release whose images\n" +
    "  are no longer on the host unless --pull.";
export const LOGS_USAGE = "usage: npm run logs -- --stack STACK APP [frontend|backend] [--since 10m] [--tail N] [--follow] [--host N]\n  The app's current containers' logs, found by their labels.";
export const EXEC_USAGE =
    "usage: npm run exec -- --stack STACK APP [--host N] -- CMD [ARG…]\n  Runs CMD in a fresh container of APP's current backend release (same networks, same DATABASE_URL), removed afterwards.";

export interface StatusArgs {
    readonly stack: string;
    readonly json: boolean;
}
export function parseStatusArgs(argv: readonly string[]): StatusArgs | "help" {
    const p = parseWords(argv, ["--stack"], ["--json"], STATUS_USAGE);
    if (p.help) return "help";
    if (p.positionals.length > 0 || p.rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify([...p.positionals, ...p.rest][0])}`, STATUS_USAGE);
    return { stack: checkStack(p.options["--stack"], STATUS_USAGE), json: p.switches.has("--json") };
}

export interface ReleasesArgs {
    readonly stack: string;
    readonly app: string;
    readonly host: number;
}
export function parseReleasesArgs(argv: readonly string[], known?: readonly string[]): ReleasesArgs | "help" {
    const p = parseWords(argv, ["--stack", "--host"], [], RELEASES_USAGE);
    if (p.help) return "help";
    if (p.positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(p.positionals[1])}`, RELEASES_USAGE);
    return { stack: checkStack(p.options["--stack"], RELEASES_USAGE), app: checkApp(p.positionals[0], RELEASES_USAGE, known), host: checkHostIndex(p.options["--host"], RELEASES_USAGE) };
}

export interface RollbackArgs {
    readonly stack: string;
    readonly app: string;
    readonly version?: string;
    readonly pull: boolean;
    readonly via?: "dispatch" | "local";
    readonly dryRun: boolean;
}
export function parseRollbackArgs(argv: readonly string[], known?: readonly string[]): RollbackArgs | "help" {
    const p = parseWords(argv, ["--stack"], ["--pull", "--dispatch", "--local", "--dry-run"], ROLLBACK_USAGE);
    if (p.help) return "help";
    if (p.positionals.length > 2) throw new UsageError(`unexpected argument ${JSON.stringify(p.positionals[2])}`, ROLLBACK_USAGE);
    const version = p.positionals[1];
    if (version !== undefined && !isRelease(version)) throw new UsageError(`VERSION ${JSON.stringify(version)} is not an image tag (1.4.3) or a digest (sha256:<64 hex>)`, ROLLBACK_USAGE);
    if (p.switches.has("--dispatch") && p.switches.has("--local")) throw new UsageError("give --dispatch or --local, not both", ROLLBACK_USAGE);
    return {
        stack: checkStack(p.options["--stack"], ROLLBACK_USAGE),
        app: checkApp(p.positionals[0], ROLLBACK_USAGE, known),
        version,
        pull: p.switches.has("--pull"),
        via: p.switches.has("--dispatch") ? "dispatch" : p.switches.has("--local") ? "local" : undefined,
        dryRun: p.switches.has("--dry-run"),
    };
}

export interface LogsArgs {
    readonly stack: string;
    readonly app: string;
    readonly roles: readonly Role[];
    readonly since?: string;
    readonly tail?: number;
    readonly follow: boolean;
    readonly host: number;
}
export function parseLogsArgs(argv: readonly string[], known?: readonly string[]): LogsArgs | "help" {
    const p = parseWords(argv, ["--stack", "--since", "--tail", "--host"], ["--follow", "-f"], LOGS_USAGE);
    if (p.help) return "help";
    if (p.positionals.length > 2) throw new UsageError(`unexpected argument ${JSON.stringify(p.positionals[2])}`, LOGS_USAGE);
    const role = p.positionals[1];
    if (role !== undefined && !(ROLES as readonly string[]).includes(role)) throw new UsageError(`${JSON.stringify(role)} is not frontend or backend`, LOGS_USAGE);
    const since = p.options["--since"];
    if (since !== undefined && !isSince(since)) throw new UsageError(`--since ${JSON.stringify(since)} is not a duration (10m, 2h, 1h30m, 90s) or a UTC time (2026-12-01T10:00:00Z)`, LOGS_USAGE);
    const tail = p.options["--tail"];
    if (tail !== undefined && !/^\d{1,7}$/.test(tail)) throw new UsageError(`--tail ${JSON.stringify(tail)} is not a number of lines`, LOGS_USAGE);
    return {
        stack: checkStack(p.options["--stack"], LOGS_USAGE),
        app: checkApp(p.positionals[0], LOGS_USAGE, known),
        roles: role === undefined ? [...ROLES] : [role as Role],
        since,
        tail: tail === undefined ? undefined : Number(tail),
        follow: p.switches.has("--follow") || p.switches.has("-f"),
        host: checkHostIndex(p.options["--host"], LOGS_USAGE),
    };
}

export interface ExecArgs {
    readonly stack: string;
    readonly app: string;
    readonly command: readonly string[];
    readonly host: number;
}
export function parseExecArgs(argv: readonly string[], known?: readonly string[]): ExecArgs | "help" {
    const p = parseWords(argv, ["--stack", "--host"], [], EXEC_USAGE);
    if (p.help) return "help";
    if (p.positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(p.positionals[1])} (put the command after --)`, EXEC_USAGE);
    if (p.rest.length === 0) throw new UsageError("give the command to run after --, e.g. -- node scripts/console.js", EXEC_USAGE);
    for (const w of p.rest) if (w.includes("\0")) throw new UsageError("the command holds a NUL byte", EXEC_USAGE);
    return { stack: checkStack(p.options["--stack"], EXEC_USAGE), app: checkApp(p.positionals[0], EXEC_USAGE, known), command: p.rest, host: checkHostIndex(p.options["--host"], EXEC_USAGE) };
}

// ---------------------------------------------------------------------------------------------
// Host facts (check-alerts.sh --facts)

export interface ContainerFact {
    readonly name: string;
    readonly app?: string;
    readonly role: string;
    readonly release?: string;
    readonly state: string;
    readonly health: string;
    readonly restarts: number;
    readonly image: string;
}

export interface HostFacts {
    readonly containers: ContainerFact[];
    readonly disks: { mount: string; percent: number; usedKb: number; sizeKb: number }[];
    readonly memory?: { totalKb: number; availableKb: number };
    readonly certificate?: { notAfter?: Date; days?: number };
    readonly backup?: { lastOk?: Date; result: string };
    readonly generation?: { stamped?: string; served?: string };
    readonly alerts: string[];
}

const dash = (v: string | undefined) => (v === undefined || v === "-" ? undefined : v);

export function parseFacts(text: string): HostFacts {
    const facts: HostFacts = { containers: [], disks: [], alerts: [] };
    const f = facts as { -readonly [K in keyof HostFacts]: HostFacts[K] };
    for (const line of text.split("\n")) {
        const w = line.trim().split(/\s+/);
        switch (w[0]) {
            case "container":
                if (w.length >= 9) f.containers.push({ name: w[1], app: dash(w[2]), role: w[3], release: dash(w[4]), state: w[5], health: w[6], restarts: Number(w[7]) || 0, image: w[8] });
                break;
            case "disk":
                if (w.length >= 5 && !f.disks.some((d) => d.mount === w[1])) f.disks.push({ mount: w[1], percent: Number(w[2]), usedKb: Number(w[3]), sizeKb: Number(w[4]) });
                break;
            case "memory":
                if (w.length >= 3) f.memory = { totalKb: Number(w[1]), availableKb: Number(w[2]) };
                break;
            case "certificate": {
                const at = dash(w[1]);
                f.certificate = { notAfter: at === undefined ? undefined : new Date(Number(at) * 1000), days: dash(w[2]) === undefined || w[2] === "?" ? undefined : Number(w[2]) };
                break;
            }
            case "backup": {
                const at = dash(w[1]);
                f.backup = { lastOk: at === undefined ? undefined : new Date(Number(at) * 1000), result: w[2] ?? "unknown" };
                break;
            }
            case "generation":
                f.generation = { stamped: dash(w[1]), served: dash(w[2]) };
                break;
            case "alert":
                f.alerts.push(line.trim().slice("alert ".length));
                break;
        }
    }
    return facts;
}

/** The app's current container of a role: a running one of the release the stack names, else the newest-looking running one. */
export function currentContainer(containers: readonly ContainerFact[], app: string, role: string, release?: string): ContainerFact | undefined {
    const mine = containers.filter((c) => c.app === app && c.role === role);
    return mine.find((c) => c.state === "running" && (release === undefined || c.release === release)) ?? mine.find((c) => c.state === "running") ?? mine[0];
}

// ---------------------------------------------------------------------------------------------
// The status screen

export interface AppStatusInput {
    readonly app: string;
    /** The release the stack outputs say it runs. */
    readonly release: string;
    /** Image digests (repo@sha256:…) per role, when the host knows them. */
    readonly digests?: Partial<Record<Role, string>>;
    readonly backup?: { readonly newest?: Date; readonly source: string } | { readonly error: string };
    readonly hasDatabase: boolean;
}

export interface DrillStatus {
    readonly at?: Date;
    readonly result: string;
    readonly source: string;
}

export interface HostStatusInput {
    readonly name: string;
    readonly facts?: HostFacts;
    readonly error?: string;
}

export interface StatusInput {
    readonly stack: string;
    readonly now: Date;
    readonly apps: readonly AppStatusInput[];
    readonly hosts: readonly HostStatusInput[];
    readonly drill?: DrillStatus;
}

export interface StatusReport {
    readonly text: string;
    readonly problems: string[];
    readonly healthy: boolean;
}

function ago(now: Date, at: Date): string {
    const s = Math.round((now.getTime() - at.getTime()) / 1000);
    if (s < 0) return `in ${Math.round(-s / 60)} min`;
    if (s < 120) return `${s} s ago`;
    if (s < 7200) return `${Math.round(s / 60)} min ago`;
    if (s < 172800) return `${(s / 3600).toFixed(1)} h ago`;
    return `${Math.round(s / 86400)} d ago`;
}

const mib = (kb: number) => `${Math.round(kb / 1024)} MiB`;
const gib = (kb: number) => `${(kb / 1048576).toFixed(1)} GiB`;

/** The one-screen status and the problems that make it unhealthy. */
export function renderStatus(s: StatusInput): StatusReport {
    const problems: string[] = [];
    const lines: string[] = [`stack ${s.stack} — ${s.now.toISOString().replace(/\.\d{3}Z$/, "Z")}`, "", "apps"];
    for (const a of s.apps) {
        lines.push(`  ${a.app}  release ${a.release}`);
        for (const role of ROLES) {
            const per = s.hosts.map((h) => ({ host: h.name, c: h.facts === undefined ? undefined : currentContainer(h.facts.containers, a.app, role, a.release) }));
            for (const { host, c } of per) {
                const where = s.hosts.length > 1 ? ` @${host}` : "";
                if (c === undefined) {
                    if (s.hosts.find((h) => h.name === host)?.facts !== undefined) problems.push(`${a.app} ${role}${where}: no container`);
                    lines.push(`    ${role.padEnd(8)}${where} no container`);
                    continue;
                }
                const ok = c.state === "running" && (c.health === "healthy" || c.health === "none");
                if (!ok) problems.push(`${a.app} ${role}${where}: ${c.state}${c.health === "none" ? "" : `, ${c.health}`}`);
                if (c.release !== undefined && c.release !== a.release && role === "frontend") problems.push(`${a.app} ${role}${where}: serves ${c.release}, the stack says ${a.release}`);
                const digest = a.digests?.[role] ?? `image ${c.image}`;
                lines.push(`    ${role.padEnd(8)}${where} ${ok ? "ok  " : "FAIL"} ${c.state}/${c.health}, ${c.restarts} restart${c.restarts === 1 ? "" : "s"}, ${c.release ?? "?"} ${digest}`);
            }
        }
        if (!a.hasDatabase) lines.push("    backup   (no database)");
        else if (a.backup === undefined) lines.push("    backup   unknown");
        else if ("error" in a.backup) {
            lines.push(`    backup   unknown: ${a.backup.error}`);
        } else if (a.backup.newest === undefined) {
            problems.push(`${a.app}: no backup in ${a.backup.source}`);
            lines.push(`    backup   FAIL none in ${a.backup.source}`);
        } else {
            const hours = (s.now.getTime() - a.backup.newest.getTime()) / 3_600_000;
            const fresh = hours <= MAX_BACKUP_AGE_HOURS;
            if (!fresh) problems.push(`${a.app}: newest backup is ${hours.toFixed(1)} h old (limit ${MAX_BACKUP_AGE_HOURS} h)`);
            lines.push(`    backup   ${fresh ? "ok  " : "FAIL"} newest ${ago(s.now, a.backup.newest)} (${a.backup.source})`);
        }
    }
    if (s.drill !== undefined) {
        const bad = s.drill.result !== "success" && s.drill.result !== "unknown" && s.drill.result !== "n/a";
        if (bad) problems.push(`last backup drill: ${s.drill.result}`);
        lines.push(`  last drill: ${s.drill.result}${s.drill.at ? ` ${ago(s.now, s.drill.at)}` : ""} (${s.drill.source})`);
    }
    lines.push("", "platform");
    for (const h of s.hosts) {
        lines.push(`  ${h.name}`);
        if (h.facts === undefined) {
            problems.push(`${h.name}: unreachable: ${h.error ?? "no facts"}`);
            lines.push(`    FAIL unreachable: ${h.error ?? "no facts"}`);
            continue;
        }
        const f = h.facts;
        if (f.certificate !== undefined) {
            lines.push(`    certificate  ${f.certificate.notAfter ? `expires ${f.certificate.notAfter.toISOString().slice(0, 10)} (${f.certificate.days ?? "?"} days)` : "none"}`);
        }
        for (const d of f.disks) lines.push(`    disk ${d.mount.padEnd(8)} ${d.percent}% of ${gib(d.sizeKb)} used`);
        if (f.memory) lines.push(`    memory       ${mib(f.memory.totalKb - f.memory.availableKb)} of ${mib(f.memory.totalKb)} used (${Math.round((100 * (f.memory.totalKb - f.memory.availableKb)) / f.memory.totalKb)}%)`);
        if (f.generation) lines.push(`    nginx        generation ${f.generation.served ?? "none"} loaded${f.generation.served === f.generation.stamped ? "" : ` (on disk: ${f.generation.stamped ?? "none"})`}`);
        const platformContainers = f.containers.filter((c) => c.app === undefined);
        for (const c of platformContainers) lines.push(`    ${c.role.padEnd(12)} ${c.state}/${c.health}, ${c.restarts} restarts (${c.name})`);
        if (f.backup) lines.push(`    backup job   last success ${f.backup.lastOk ? ago(s.now, f.backup.lastOk) : "never"}, last run ${f.backup.result}`);
        for (const a of f.alerts) problems.push(`${h.name}: ${a}`);
    }
    const unique = [...new Set(problems)];
    lines.push("", unique.length === 0 ? "healthy" : `UNHEALTHY: ${unique.length} problem(s)`);
    for (const p of unique) lines.push(`  - ${p}`);
    return { text: lines.join("\n") + "\n", problems: unique, healthy: unique.length === 0 };
}

// ---------------------------------------------------------------------------------------------
// Release history: the stack config as git recorded it

export interface StackConfigVersion {
    readonly commit: string;
    /** ISO commit date */
    readonly date: string;
    readonly subject: string;
    /** Pulumi.<stack>.yaml at that commit (empty when the file did not exist). */
    readonly yaml: string;
}

export interface ReleaseRecord {
    readonly release: string;
    readonly commit: string;
    readonly date: string;
    readonly subject: string;
}

/** `platform:apps[app]` of a stack file's text, or undefined. */
export function appReleaseOf(stackYaml: string, app: string): string | undefined {
    let doc: any;
    try {
        doc = yaml.load(stackYaml);
    } catch {
        return undefined;
    }
    let apps = doc?.config?.["platform:apps"];
    if (typeof apps === "string") {
        try {
            apps = JSON.parse(apps);
        } catch {
            return undefined;
        }
    }
    const v = apps?.[app];
    return typeof v === "string" && isRelease(v) ? v : typeof v === "number" ? String(v) : undefined;
}

/**
 * Every change of the app's release, newest first: the commit that set it, its date and subject.
 * `versions` are the file's versions newest first (git log order).
 */
export function releaseHistory(versions: readonly StackConfigVersion[], app: string): ReleaseRecord[] {
    const oldestFirst = [...versions].reverse();
    const records: ReleaseRecord[] = [];
    let current: string | undefined;
    for (const v of oldestFirst) {
        const release = appReleaseOf(v.yaml, app);
        if (release !== undefined && release !== current) records.push({ release, commit: v.commit, date: v.date, subject: v.subject });
        current = release;
    }
    return records.reverse();
}

/**
 * The release to roll back to: the newest recorded release before the current one that differs from
 * it. Throws, saying why, when there is none.
 */
export function previousRelease(history: readonly ReleaseRecord[], current: string): ReleaseRecord {
    const at = history.findIndex((r) => r.release === current);
    if (at < 0) throw new Error(`the current release ${current} is not in the recorded history; name the version to go back to`);
    const before = history.slice(at + 1).find((r) => r.release !== current);
    if (before === undefined) throw new Error(`no release before ${current} is recorded; name the version to go back to`);
    return before;
}

export function renderReleases(app: string, stack: string, history: readonly ReleaseRecord[], current: string | undefined, cached: (release: string) => string): string {
    if (history.length === 0) return `${app} has no recorded release on ${stack}\n`;
    const lines = [`${app} on ${stack}, newest first:`];
    for (const r of history) {
        const mark = r.release === current ? "*" : " ";
        lines.push(`${mark} ${r.release.padEnd(14)} ${r.date.slice(0, 19).replace("T", " ")}  ${r.commit.slice(0, 12)}  images: ${cached(r.release)}  ${r.subject}`);
    }
    lines.push("(* the release the stack runs now)");
    return lines.join("\n") + "\n";
}

/** The commit message a recorded rollback carries (deploy.yml records releases the same way). */
export function rollbackCommitMessage(app: string, release: string, stack: string, from: string | undefined): string {
    return `Roll back ${app} to ${release} on ${stack}${from === undefined ? "" : ` (from ${from})`}`;
}
