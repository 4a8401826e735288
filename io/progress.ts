// Progress for the operator commands' long steps (downloads, decryption, pg_restore): a step that runs
// longer than an interval prints a line every interval, with what it has done so far when that is known,
// so a large restore never looks hung.

export type ProgressLog = (line: string) => void;

export const PROGRESS_INTERVAL_MS = 10_000;

/**
 * Runs `work`; while it runs, logs `<label>: still running, <detail> (<seconds> s)` every `everyMs`.
 * Nothing is printed for a step that ends within the first interval.
 */
export async function withProgress<T>(log: ProgressLog, label: string, work: () => Promise<T>, o: { everyMs?: number; detail?: () => string | undefined } = {}): Promise<T> {
    const every = o.everyMs ?? PROGRESS_INTERVAL_MS;
    const started = Date.now();
    const timer = setInterval(() => {
        let detail: string | undefined;
        try {
            detail = o.detail?.();
        } catch {
            detail = undefined;
        }
        log(`      ${label}: still running${detail ? `, ${detail}` : ""} (${Math.round((Date.now() - started) / 1000)} s)`);
    }, every);
    try {
        return await work();
    } finally {
        clearInterval(timer);
    }
}

/** `12.0 MiB of 34.0 MiB (35%)` from the bytes so far and the expected total (when known). */
export function bytesSoFar(done: number, total: number | undefined, format: (n: number) => string): string {
    if (total === undefined || !(total > 0)) return `${format(done)} so far`;
    return `${format(done)} of ${format(total)} (${Math.min(100, Math.floor((done / total) * 100))}%)`;
}
