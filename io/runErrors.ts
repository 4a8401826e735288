// How the program's errors reach the user: as Pulumi run errors, message only, within milliseconds.
//
// Why this exists. When a program error reaches the top (thrown while index.ts loads, or rejected inside an
// `apply`, which the SDK turns into an unhandled rejection), `@pulumi/pulumi/cmd/run` logs it and then adds it
// to a trace span. Every error that is not a RunError is logged through `util.inspect(err, { colors: true })`,
// and every error, RunErrors included, goes through that call once more for the span. Node 20's inspect spins
// for ~25 s and ~3.5 GiB, then throws "Invalid string length", on a stack frame whose path ends right after
// `node_modules/<name>`, which is exactly what the SDK's source maps produce (`…/node_modules/@pulumi/output.ts`)
// for any error that travelled through an `apply`. Two inspections per error: a minute before the user sees it.
//
// What this does. An error is made a run error before the SDK's handlers see it: marked as a RunError (the
// SDK logs its message alone) and given a stack with no frames, so the span's inspection is cheap too. Errors
// the program raises on purpose (`ActionableError`s, `ConfigError`s) already say what is wrong and how to fix it
// and are shown as they are; any other error keeps the frames of this program's own files (never the SDK's)
// below its message, so a bug still shows where it happened.
import * as fs from "fs";
import * as path from "path";

const RUN_ERROR = "__pulumiRunError"; // @pulumi/pulumi RunError.isInstance
const RESOURCE_ERROR = "__pulumResourceError"; // sic: @pulumi/pulumi ResourceError.isInstance
const ACTIONABLE = Symbol.for("platform.actionableError");

/** An error whose message names the key or host and the fix: shown alone, without a stack trace. */
export class ActionableError extends Error {
    constructor(message: string) {
        super(message);
        this.name = new.target.name;
        markActionable(this);
    }
}

/** Marks an existing error (e.g. a ConfigError) as actionable: its message is all the user needs. */
export function markActionable<E extends Error>(error: E): E {
    Object.defineProperty(error, ACTIONABLE, { value: true, enumerable: false, configurable: true });
    return error;
}

export function isActionable(error: unknown): boolean {
    return typeof error === "object" && error !== null && (error as Record<symbol, unknown>)[ACTIONABLE] === true;
}

interface SourceMapLike {
    findEntry(line: number, column: number): { originalSource?: string; originalLine?: number; originalColumn?: number } | undefined;
}
const sourceMaps = new Map<string, SourceMapLike | null>();

/**
 * Where a position in the build (dist/…/x.js, 1-based line and column, as V8 prints them) is in the TypeScript
 * source, from the build's source map; undefined for any other file or an unmapped position. Read only when an
 * error is reported, for the few frames it shows: the program runs with V8's own, fast stack formatting.
 */
export function sourcePosition(file: string, line: number, column: number): { file: string; line: number; column: number } | undefined {
    if (!file.endsWith(".js") || !file.includes(`${path.sep}dist${path.sep}`)) return undefined;
    let map = sourceMaps.get(file);
    if (map === undefined) {
        try {
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const { SourceMap } = require("module") as { SourceMap: new (payload: unknown) => SourceMapLike };
            map = new SourceMap(JSON.parse(fs.readFileSync(`${file}.map`, "utf8")));
        } catch {
            map = null;
        }
        sourceMaps.set(file, map);
    }
    const entry = map?.findEntry(line - 1, column - 1);
    if (entry?.originalSource === undefined || entry.originalLine === undefined) return undefined;
    const source = path.resolve(path.dirname(file), entry.originalSource.replace(/^file:\/\//, ""));
    return { file: source, line: entry.originalLine + 1, column: (entry.originalColumn ?? 0) + 1 };
}

/**
 * Frames of this program's own files (no node_modules, no Node internals), relative to `root`; a frame in the
 * build (dist/) is shown at its place in the TypeScript source.
 */
export function programFrames(stack: string | undefined, root: string, limit = 3): string[] {
    const frames: string[] = [];
    for (const line of (stack ?? "").split("\n")) {
        const m = /^\s+at (?:(.*?) \()?(\/[^()]*?):(\d+):(\d+)\)?$/.exec(line);
        if (m === null) continue;
        const [, fn] = m;
        let [, , file, row, col] = m;
        if (file.includes(`${path.sep}node_modules${path.sep}`) || !file.startsWith(root + path.sep)) continue;
        const mapped = sourcePosition(file, Number(row), Number(col));
        if (mapped !== undefined) [file, row, col] = [mapped.file, String(mapped.line), String(mapped.column)];
        const where = `${path.relative(root, file)}:${row}:${col}`;
        frames.push(fn ? `    at ${fn.replace(/^async /, "")} (${where})` : `    at ${where}`);
        if (frames.length >= limit) break;
    }
    return frames;
}

/**
 * Turns `error` into a run error in place (the SDK's handlers receive this very object): marked as a RunError,
 * its stack replaced by its message, without the SDK's `error serializing property "x": ` prefixes.
 * Actionable errors keep their message as is; other errors get this program's frames appended. Idempotent.
 */
export function toRunError(error: unknown, root: string = process.cwd()): unknown {
    if (typeof error !== "object" || error === null || !(error instanceof Error || "message" in error)) return error;
    const e = error as Error & Record<string, unknown>;
    if (e[RUN_ERROR] === true && e.stack === e.message) return e;
    try {
        // The SDK prefixes the message each time it meets the error while serializing a resource's inputs;
        // an error shared by many resources collects dozens of these.
        let message = String(e.message ?? "").replace(/^(?:error serializing property "[^"]*": )+/, "");
        if (isActionable(e)) {
            // shown as it is
        } else if (e[RESOURCE_ERROR] !== true || e.hideStack !== true) {
            const frames = programFrames(typeof e.stack === "string" ? e.stack : undefined, root);
            const label = e.name && e.name !== "Error" ? `${e.name}: ` : "";
            message = [`${label}${message}`, ...frames].join("\n");
        }
        // Own data properties shadow both V8's stack accessor and Error.prototype.message.
        Object.defineProperty(e, "message", { value: message, writable: true, enumerable: false, configurable: true });
        Object.defineProperty(e, "stack", { value: message, writable: true, enumerable: false, configurable: true });
        if (e[RESOURCE_ERROR] === true) {
            // Logged against its resource, without the stack, by the SDK's ResourceError path.
            e.hideStack = true;
        } else {
            Object.defineProperty(e, RUN_ERROR, { value: true, enumerable: false, configurable: true });
        }
    } catch {
        /* a frozen or exotic object: leave it to the SDK */
    }
    return error;
}

let installed = false;

/**
 * From now on, every error that reaches the top of this process (uncaught exception, unhandled rejection, in
 * particular any error thrown in an `apply`) is converted by `toRunError` before the SDK's handlers run.
 * Installed by index.ts only when the Pulumi language host runs the program (`@pulumi/pulumi/cmd/run`), so
 * test runners keep their own error reporting.
 */
export function reportErrorsAsRunErrors(options: { force?: boolean } = {}): void {
    if (installed) return;
    if (!options.force && !runByLanguageHost()) return;
    installed = true;
    const root = process.cwd();
    const convert = (error: unknown) => void toRunError(error, root);
    process.prependListener("uncaughtException", convert);
    process.prependListener("unhandledRejection", convert);
}

/** True when this process is `node …/@pulumi/pulumi/cmd/run …`, the way `pulumi preview`/`up` run the program. */
export function runByLanguageHost(): boolean {
    return /[\\/]@pulumi[\\/]pulumi[\\/]cmd[\\/]run[\\/]index\.js$/.test(require.main?.filename ?? "");
}
