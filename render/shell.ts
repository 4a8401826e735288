// Turning scripts into the command strings the host runs, quoted for sh. Pure.
import * as path from "path";

export function shellQuote(value: string): string {
    return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** `K='v' … sh -c '<script>'`: runs the script with those variables; stdin passes through to it. */
export function runScript(script: string, env: Readonly<Record<string, string>>): string {
    const assignments = Object.entries(env).map(([k, v]) => {
        if (!/^[A-Z_][A-Z0-9_]*$/.test(k)) throw new Error(`bad variable name ${k}`);
        return `${k}=${shellQuote(v)}`;
    });
    return [...assignments, "sh", "-c", shellQuote(script)].join(" ");
}

/** Installs `script` at `target` on the host, then runs it from there with `env`. */
export function installAndRunScript(target: string, script: string, env: Readonly<Record<string, string>>): string {
    const marker = "PLATFORM_SCRIPT_EOF";
    if (script.includes(marker)) throw new Error("script contains the heredoc marker");
    return [
        `mkdir -p ${shellQuote(path.posix.dirname(target))}`,
        `cat > ${shellQuote(target)} <<'${marker}'`,
        script.replace(/\n$/, ""),
        marker,
        runScript(`exec sh ${shellQuote(target)}`, env),
    ].join("\n");
}
