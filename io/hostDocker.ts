// What the day-2 commands ask a host's Docker engine, through a HostShell (local or pinned SSH). Every
// word is checked here before it is sent: app names, roles, container ids, image references, --since.
import { readHostScript } from "../hostScripts";
import { APP_NAME, CONTAINER_REF, HostFacts, Role, isSince, parseFacts } from "../render/day2";
import { HostShell } from "./stackHost";

const IMAGE_REF = /^[a-z0-9][a-z0-9._\/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$/;
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
const ENV_VALUE = /^[A-Za-z0-9_.:\/@%+=,-]*$/;

function check(value: string, re: RegExp, what: string): string {
    if (!re.test(value)) throw new Error(`${what} ${JSON.stringify(value)} is not valid`);
    return value;
}

/** Runs hostScripts/check-alerts.sh --facts on the host (the script on stdin, settings as `env` words). */
export function hostFacts(shell: HostShell, settings: Readonly<Record<string, string>>): { facts?: HostFacts; error?: string } {
    const words = ["env"];
    for (const [k, v] of Object.entries(settings)) {
        check(k, ENV_NAME, "setting name");
        // PROBE_CMD is a command line (spaces); everything else is a plain value.
        if (k === "PROBE_CMD" || k === "DISK_PATHS") check(v, /^[A-Za-z0-9_.:\/@%+=, -]*$/, k);
        else check(v, ENV_VALUE, k);
        words.push(`${k}=${v}`);
    }
    words.push("sh", "-s", "--", "--facts");
    const r = shell.run(words, readHostScript("check-alerts.sh"));
    if (r.status !== 0 && r.status !== 1) return { error: (r.stderr.trim() || `exit ${r.status}`).split("\n").slice(-3).join(" ") };
    return { facts: parseFacts(r.stdout) };
}

/** `repo@sha256:…` digests of an image (short or long id), or undefined when the engine has none. */
export function imageDigests(shell: HostShell, image: string): string | undefined {
    check(image, /^[0-9a-f]{12,64}$/, "image id");
    const r = shell.run(["docker", "image", "inspect", "--format", '{{join .RepoDigests " "}}', image]);
    if (r.status !== 0) return undefined;
    return r.stdout.trim().split(/\s+/).filter(Boolean)[0] ?? "(no registry digest)";
}

/** Whether the engine still holds each image reference. */
export function imagesPresent(shell: HostShell, refs: readonly string[]): Record<string, boolean> {
    const out: Record<string, boolean> = {};
    for (const ref of refs) {
        check(ref, IMAGE_REF, "image reference");
        out[ref] = shell.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref]).status === 0;
    }
    return out;
}

export interface AppContainer {
    readonly id: string;
    readonly name: string;
    readonly state: string;
    readonly release: string;
    readonly role: Role;
}

/** The app's containers of a role, by label (newest first, as docker ps lists them). */
export function appContainers(shell: HostShell, app: string, role: Role, extraLabel?: string): AppContainer[] {
    check(app, APP_NAME, "app name");
    if (role !== "frontend" && role !== "backend") throw new Error(`role ${JSON.stringify(role)} is not frontend or backend`);
    const filters = ["--filter", `label=platform.app=${app}`, "--filter", `label=platform.role=${role}`];
    if (extraLabel !== undefined) filters.push("--filter", `label=${check(extraLabel, /^[a-z0-9.]+=[A-Za-z0-9._-]+$/, "label")}`);
    const r = shell.run(["docker", "ps", "-a", ...filters, "--format", '{{.ID}}\t{{.Names}}\t{{.State}}\t{{.Label "platform.release"}}']);
    if (r.status !== 0) throw new Error(`docker ps on ${shell.name} failed: ${r.stderr.trim()}`);
    return r.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => l.split("\t"))
        .filter(([id, name]) => CONTAINER_REF.test(id) && CONTAINER_REF.test(name))
        .map(([id, name, state, release]) => ({ id, name, state, release, role }));
}

/** The container serving now: running, of the stack's release when one is, else the newest running. */
export function pickCurrent(containers: readonly AppContainer[], release?: string): AppContainer | undefined {
    const running = containers.filter((c) => c.state === "running");
    return running.find((c) => release !== undefined && c.release === release) ?? running[0];
}

/** `docker logs` words for a container. */
export function logsCommand(id: string, o: { since?: string; tail?: number; follow: boolean }): string[] {
    check(id, CONTAINER_REF, "container");
    const words = ["docker", "logs", "--timestamps"];
    if (o.since !== undefined) {
        if (!isSince(o.since)) throw new Error(`--since ${JSON.stringify(o.since)} is not valid`);
        words.push("--since", o.since);
    }
    if (o.tail !== undefined) {
        if (!Number.isInteger(o.tail) || o.tail < 0) throw new Error("--tail must be a number of lines");
        words.push("--tail", String(o.tail));
    }
    if (o.follow) words.push("--follow");
    words.push(id);
    return words;
}

/** The host words that run hostScripts/one-off.sh for the backend container `id` and `command`. */
export function oneOffCommand(id: string, command: readonly string[], tty: boolean): string[] {
    check(id, CONTAINER_REF, "container");
    if (command.length === 0) throw new Error("no command to run");
    return ["env", `ONE_OFF_TTY=${tty ? "1" : "0"}`, "sh", "-c", readHostScript("one-off.sh"), "one-off", id, ...command];
}
